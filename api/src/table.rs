//! Server-side printing: the `meta.k8s.io/v1` `Table` answer to
//! `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`, which is what `kubectl get` shows.
//!
//! Three table convertors exist upstream and are reproduced here:
//! - the built-in printers of `pkg/printers/internalversion/printers.go` (always called with
//!   `Wide: true` by the API server, so `-o wide` columns are part of every answer);
//! - the CustomResourceDefinition convertor (`additionalPrinterColumns`, simple JSONPath);
//! - the default convertor (`Name`, `Created At`) for every other resource.
//!
//! Every built-in printer is a table of column definitions plus one row function
//! (`Printer`); `printer_for` maps `(group, resource)` to it.

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::{json, Map, Value};

/// What each row carries in `object`, from the `includeObject` query parameter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IncludeObject {
    /// `object` is `null`.
    None,
    /// `object` is a `meta.k8s.io/v1` `PartialObjectMetadata` (upstream's default).
    #[default]
    Metadata,
    /// `object` is the full object.
    Object,
}

impl IncludeObject {
    /// Parses the `includeObject` query parameter; a missing or empty value means `Metadata`.
    /// The error is upstream's BadRequest message.
    pub fn parse(s: Option<&str>) -> Result<IncludeObject, String> {
        match s {
            None | Some("") | Some("Metadata") => Ok(IncludeObject::Metadata),
            Some("None") => Ok(IncludeObject::None),
            Some("Object") => Ok(IncludeObject::Object),
            Some(other) => Err(format!("unrecognized includeObject value: {other:?}")),
        }
    }
}

/// Builds a full `meta.k8s.io/v1` Table for a list (or a single object: pass one item).
///
/// `group` is `""` for the core group and `resource` is the plural. `list_metadata` becomes the
/// Table's `metadata` as given (resourceVersion, continue, remainingItemCount).
/// `custom_columns` are a CustomResourceDefinition version's `additionalPrinterColumns`
/// (`name`, `type`, `format`, `description`, `priority`, `jsonPath`); pass `None` for
/// built-in resources. `now` is the time ages are measured against.
pub fn render_table(
    group: &str,
    resource: &str,
    items: &[Value],
    include: IncludeObject,
    list_metadata: Value,
    custom_columns: Option<&[Value]>,
    now: DateTime<Utc>,
) -> Value {
    let ctx = Ctx { now };
    let (columns, rows) = match custom_columns {
        Some(defs) => match CustomColumns::new(defs) {
            Some(custom) => (
                custom.definitions(),
                custom_rows(&custom, items, include, &ctx),
            ),
            // Upstream falls back to the default convertor when a column does not parse.
            None => default_table(items, include),
        },
        None => match printer_for(group, resource) {
            Some(printer) => printer_table(&printer, group, resource, items, include, &ctx),
            None => default_table(items, include),
        },
    };
    let metadata = match list_metadata {
        Value::Null => Value::Object(Map::new()),
        other => other,
    };
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": columns,
        "rows": rows,
    })
}

/// `duration.HumanDuration` of k8s.io/apimachinery: a succinct duration with ~2-3 significant
/// figures ("5s", "3m20s", "2d5h", "<invalid>" for more than a second in the future).
pub fn human_duration(d: TimeDelta) -> String {
    // Go's time.Duration saturates at about 292 years.
    const MAX_MS: i64 = i64::MAX / 1_000_000;
    let seconds = d.num_milliseconds().clamp(-MAX_MS, MAX_MS) / 1000;
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    if seconds < 0 {
        return "0s".to_string();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

// ---------------------------------------------------------------------------------------------
// Rows and row objects

fn printer_table(
    printer: &Printer,
    group: &str,
    resource: &str,
    items: &[Value],
    include: IncludeObject,
    ctx: &Ctx,
) -> (Value, Value) {
    let mut order: Vec<&Value> = items.iter().collect();
    if group == "flowcontrol.apiserver.k8s.io" && resource == "flowschemas" {
        // printFlowSchemaList sorts by matching precedence, then name.
        order.sort_by(|a, b| {
            (matching_precedence(a), a.s("metadata.name"))
                .cmp(&(matching_precedence(b), b.s("metadata.name")))
        });
    }
    let daemon_sets = group == "apps" && resource == "daemonsets";
    let rows = order
        .into_iter()
        .map(|item| {
            let cells = (printer.cells)(item, ctx);
            let conditions = printer.conditions.and_then(|f| f(item));
            if daemon_sets && include == IncludeObject::Metadata {
                table_row(cells, conditions, &internal_daemon_set(item), include)
            } else {
                table_row(cells, conditions, item, include)
            }
        })
        .collect();
    (column_definitions(printer.columns), Value::Array(rows))
}

/// Upstream builds PartialObjectMetadata from the internal object, in which a DaemonSet keeps
/// its template generation in the spec rather than in the apps/v1 annotation.
fn internal_daemon_set(item: &Value) -> Value {
    const ANNOTATION: &str = "deprecated.daemonset.template.generation";
    let mut internal = item.clone();
    if let Some(metadata) = internal.get_mut("metadata").and_then(Value::as_object_mut) {
        let now_empty = match metadata
            .get_mut("annotations")
            .and_then(Value::as_object_mut)
        {
            Some(annotations) => {
                annotations.shift_remove(ANNOTATION);
                annotations.is_empty()
            }
            None => false,
        };
        if now_empty {
            metadata.shift_remove("annotations");
        }
    }
    internal
}

/// `rest.NewDefaultTableConvertor`: Name and Created At (an RFC 3339 time, not an age).
fn default_table(items: &[Value], include: IncludeObject) -> (Value, Value) {
    const COLUMNS: &[Column] = &[NAME_COLUMN, col("Created At", "date", D_AGE)];
    let rows: Vec<Value> = items
        .iter()
        .map(|item| {
            let created = parse_time(item.s("metadata.creationTimestamp"))
                .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
                .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_string());
            table_row(
                vec![item.s("metadata.name").into(), created.into()],
                None,
                item,
                include,
            )
        })
        .collect();
    // The default convertor leaves `rows` nil for an empty list, which Go writes as null.
    let rows = if rows.is_empty() {
        Value::Null
    } else {
        Value::Array(rows)
    };
    (column_definitions(COLUMNS), rows)
}

fn table_row(
    cells: Vec<Value>,
    conditions: Option<Value>,
    item: &Value,
    include: IncludeObject,
) -> Value {
    let mut row = Map::new();
    row.insert("cells".into(), Value::Array(cells));
    if let Some(conditions) = conditions {
        row.insert("conditions".into(), conditions);
    }
    let object = match include {
        IncludeObject::None => Value::Null,
        IncludeObject::Object => item.clone(),
        IncludeObject::Metadata => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": ordered_metadata(item.get("metadata")),
        }),
    };
    row.insert("object".into(), object);
    Value::Object(row)
}

/// The `metadata` of a PartialObjectMetadata as Go writes an ObjectMeta: its fields in struct
/// order, empty ones omitted, a missing creationTimestamp as `null`, other keys dropped.
fn ordered_metadata(metadata: Option<&Value>) -> Value {
    const OBJECT_META: &[&str] = &[
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    ];
    const OWNER_REFERENCE: &[&str] = &[
        "apiVersion",
        "kind",
        "name",
        "uid",
        "controller",
        "blockOwnerDeletion",
    ];
    const MANAGED_FIELDS_ENTRY: &[&str] = &[
        "manager",
        "operation",
        "apiVersion",
        "time",
        "fieldsType",
        "fieldsV1",
        "subresource",
    ];
    let empty = Map::new();
    let source = match metadata {
        Some(Value::Object(source)) => source,
        _ => &empty,
    };
    let mut out = Map::new();
    for key in OBJECT_META {
        let value = source.get(*key).filter(|v| match *key {
            // A pointer: only nil is omitted.
            "deletionGracePeriodSeconds" => !v.is_null(),
            _ => !is_go_empty(v),
        });
        match (value, *key) {
            (Some(v), _) => {
                out.insert((*key).to_string(), v.clone());
            }
            // metav1.Time is a struct: never omitted, written as null when zero.
            (None, "creationTimestamp") => {
                out.insert((*key).to_string(), Value::Null);
            }
            (None, _) => {}
        }
    }
    for (key, order) in [
        ("ownerReferences", OWNER_REFERENCE),
        ("managedFields", MANAGED_FIELDS_ENTRY),
    ] {
        if let Some(Value::Array(entries)) = out.get_mut(key) {
            for entry in entries.iter_mut() {
                if let Value::Object(fields) = entry {
                    *fields = ordered(fields, order);
                }
            }
        }
    }
    Value::Object(out)
}

/// What Go's `omitempty` leaves out.
fn is_go_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        Value::Bool(b) => !b,
    }
}

/// `source` with the keys of `order` first, in that order, then the others as they were.
fn ordered(source: &Map<String, Value>, order: &[&str]) -> Map<String, Value> {
    let mut out = Map::new();
    for key in order {
        if let Some(v) = source.get(*key) {
            out.insert((*key).to_string(), v.clone());
        }
    }
    for (k, v) in source {
        if !out.contains_key(k) {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Columns

#[derive(Clone, Copy, Debug)]
struct Column {
    name: &'static str,
    kind: &'static str,
    format: &'static str,
    description: &'static str,
    priority: u8,
}

const fn col(name: &'static str, kind: &'static str, description: &'static str) -> Column {
    Column {
        name,
        kind,
        format: "",
        description,
        priority: 0,
    }
}

/// A column shown only by `-o wide` (priority 1).
const fn wide(name: &'static str, kind: &'static str, description: &'static str) -> Column {
    Column {
        name,
        kind,
        format: "",
        description,
        priority: 1,
    }
}

const NAME_COLUMN: Column = Column {
    name: "Name",
    kind: "string",
    format: "name",
    description: D_NAME,
    priority: 0,
};

const AGE_COLUMN: Column = col("Age", "string", D_AGE);

fn column_definitions(columns: &[Column]) -> Value {
    Value::Array(
        columns
            .iter()
            .map(|c| {
                json!({
                    "name": c.name,
                    "type": c.kind,
                    "format": c.format,
                    "description": c.description,
                    "priority": c.priority,
                })
            })
            .collect(),
    )
}

// ---------------------------------------------------------------------------------------------
// Column tables (descriptions as upstream's `SwaggerDoc()` gives them)

const D_NAME: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const D_AGE: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const D_CONTAINERS: &str = "Names of each container in the template.";
const D_IMAGES: &str = "Images referenced by each container in the template.";
const APISERVICE_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col(
        "Service",
        "string",
        "The reference to the service that hosts this API endpoint.",
    ),
    col("Available", "string", "Whether this service is available."),
    AGE_COLUMN,
];
const CLUSTERROLEBINDING_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Role", "string", "roleRef can only reference a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error."),
    AGE_COLUMN,
    wide("Users", "string", "Users in the clusterRoleBinding"),
    wide("Groups", "string", "Groups in the clusterRoleBinding"),
    wide("ServiceAccounts", "string", "ServiceAccounts in the clusterRoleBinding"),
];
const CLUSTERTRUSTBUNDLE_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("SignerName", "string", "signerName indicates the associated signer, if any.\n\nIn order to create or update a ClusterTrustBundle that sets signerName, you must have the following cluster-scoped permission: group=certificates.k8s.io resource=signers resourceName=<the signer name> verb=attest.\n\nIf signerName is not empty, then the ClusterTrustBundle object must be named with the signer name as a prefix (translating slashes to colons). For example, for the signer name `example.com/foo`, valid ClusterTrustBundle object names include `example.com:foo:abc` and `example.com:foo:v1`.\n\nIf signerName is empty, then the ClusterTrustBundle object's name must not have such a prefix.\n\nList/watch requests for ClusterTrustBundles can filter on this field using a `spec.signerName=NAME` field selector."),
];
const COMPONENTSTATUS_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Status", "string", "Status of the component conditions"),
    col("Message", "string", "Message of the component conditions"),
    col("Error", "string", "Error of the component conditions"),
];
const CONFIGMAP_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Data", "string", "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process."),
    AGE_COLUMN,
];
const CONTROLLERREVISION_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Controller", "string", "Controller of the object"),
    col(
        "Revision",
        "string",
        "Revision indicates the revision of the state represented by Data.",
    ),
    AGE_COLUMN,
];
const CRONJOB_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Schedule", "string", "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron."),
    col("Timezone", "string", "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones. If not specified, this will default to the time zone of the kube-controller-manager process. The set of valid time zone names and the time zone offset is loaded from the system-wide time zone database by the API server during CronJob validation and the controller manager during execution. If no system-wide time zone database can be found a bundled version of the database is used instead. If the time zone name becomes invalid during the lifetime of a CronJob or due to a change in host configuration, the controller will stop creating new new Jobs and will create a system event with the reason UnknownTimeZone. More information can be found in https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/#time-zones"),
    col("Suspend", "boolean", "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions.  Defaults to false."),
    col("Active", "integer", "A list of pointers to currently running jobs."),
    col("Last Schedule", "string", "Information when was the last time the job was successfully scheduled."),
    AGE_COLUMN,
    wide("Containers", "string", D_CONTAINERS),
    wide("Images", "string", D_IMAGES),
    wide("Selector", "string", "A label query over pods that should match the pod count. Normally, the system sets this field for you. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors"),
];
const CSIDRIVER_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("AttachRequired", "boolean", "attachRequired indicates this CSI volume driver requires an attach operation (because it implements the CSI ControllerPublishVolume() method), and that the Kubernetes attach detach controller should call the attach volume interface which checks the volumeattachment status and waits until the volume is attached before proceeding to mounting. The CSI external-attacher coordinates with CSI volume driver and updates the volumeattachment status when the attach operation is complete. If the value is specified to false, the attach operation will be skipped. Otherwise the attach operation will be called.\n\nThis field is immutable."),
    col("PodInfoOnMount", "boolean", "podInfoOnMount indicates this CSI volume driver requires additional pod information (like podName, podUID, etc.) during mount operations, if set to true. If set to false, pod information will not be passed on mount. Default is false.\n\nThe CSI driver specifies podInfoOnMount as part of driver deployment. If true, Kubelet will pass pod information as VolumeContext in the CSI NodePublishVolume() calls. The CSI driver is responsible for parsing and validating the information passed in as VolumeContext.\n\nThe following VolumeContext will be passed if podInfoOnMount is set to true. This list might grow, but the prefix will be used. \"csi.storage.k8s.io/pod.name\": pod.Name \"csi.storage.k8s.io/pod.namespace\": pod.Namespace \"csi.storage.k8s.io/pod.uid\": string(pod.UID) \"csi.storage.k8s.io/ephemeral\": \"true\" if the volume is an ephemeral inline volume\n                                defined by a CSIVolumeSource, otherwise \"false\"\n\n\"csi.storage.k8s.io/ephemeral\" is a new feature in Kubernetes 1.16. It is only required for drivers which support both the \"Persistent\" and \"Ephemeral\" VolumeLifecycleMode. Other drivers can leave pod info disabled and/or ignore this field. As Kubernetes 1.15 doesn't support this field, drivers can only support one mode when deployed on such a cluster and the deployment determines which mode that is, for example via a command line parameter of the driver.\n\nThis field was immutable in Kubernetes < 1.29 and now is mutable."),
    col("StorageCapacity", "boolean", "storageCapacity indicates that the CSI volume driver wants pod scheduling to consider the storage capacity that the driver deployment will report by creating CSIStorageCapacity objects with capacity information, if set to true.\n\nThe check can be enabled immediately when deploying a driver. In that case, provisioning new volumes with late binding will pause until the driver deployment has published some suitable CSIStorageCapacity object.\n\nAlternatively, the driver can be deployed with the field unset or false and it can be flipped later when storage capacity information has been published.\n\nThis field was immutable in Kubernetes <= 1.22 and now is mutable."),
    col("TokenRequests", "string", "tokenRequests indicates the CSI driver needs pods' service account tokens it is mounting volume for to do necessary authentication. Kubelet will pass the tokens in VolumeContext in the CSI NodePublishVolume calls. The CSI driver should parse and validate the following VolumeContext: \"csi.storage.k8s.io/serviceAccount.tokens\": {\n  \"<audience>\": {\n    \"token\": <token>,\n    \"expirationTimestamp\": <expiration timestamp in RFC3339>,\n  },\n  ...\n}\n\nNote: Audience in each TokenRequest should be different and at most one token is empty string. To receive a new token after expiry, RequiresRepublish can be used to trigger NodePublishVolume periodically."),
    col("RequiresRepublish", "boolean", "requiresRepublish indicates the CSI driver wants `NodePublishVolume` being periodically called to reflect any possible change in the mounted volume. This field defaults to false.\n\nNote: After a successful initial NodePublishVolume call, subsequent calls to NodePublishVolume should only update the contents of the volume. New mount points will not be seen by a running container."),
    col("Modes", "string", "volumeLifecycleModes defines what kind of volumes this CSI volume driver supports. The default if the list is empty is \"Persistent\", which is the usage defined by the CSI specification and implemented in Kubernetes via the usual PV/PVC mechanism.\n\nThe other mode is \"Ephemeral\". In this mode, volumes are defined inline inside the pod spec with CSIVolumeSource and their lifecycle is tied to the lifecycle of that pod. A driver has to be aware of this because it is only going to get a NodePublishVolume call for such a volume.\n\nFor more information about implementing this mode, see https://kubernetes-csi.github.io/docs/ephemeral-local-volumes.html A driver can support one or more of these modes and more modes may be added in the future.\n\nThis field is beta. This field is immutable."),
    AGE_COLUMN,
];
const CSINODE_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col(
        "Drivers",
        "integer",
        "Drivers indicates the number of CSI drivers registered on the node",
    ),
    AGE_COLUMN,
];
const CSISTORAGECAPACITY_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("StorageClassName", "string", "storageClassName represents the name of the StorageClass that the reported capacity applies to. It must meet the same requirements as the name of a StorageClass object (non-empty, DNS subdomain). If that object no longer exists, the CSIStorageCapacity object is obsolete and should be removed by its creator. This field is immutable."),
    col("Capacity", "string", "capacity is the value reported by the CSI driver in its GetCapacityResponse for a GetCapacityRequest with topology and parameters that match the previous fields.\n\nThe semantic is currently (CSI spec 1.2) defined as: The available capacity, in bytes, of the storage that can be used to provision volumes. If not set, that information is currently unavailable."),
];
const CSR_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    AGE_COLUMN,
    col("SignerName", "string", "signerName indicates the requested signer, and is a qualified name.\n\nList/watch requests for CertificateSigningRequests can filter on this field using a \"spec.signerName=NAME\" fieldSelector.\n\nWell-known Kubernetes signers are:\n 1. \"kubernetes.io/kube-apiserver-client\": issues client certificates that can be used to authenticate to kube-apiserver.\n  Requests for this signer are never auto-approved by kube-controller-manager, can be issued by the \"csrsigning\" controller in kube-controller-manager.\n 2. \"kubernetes.io/kube-apiserver-client-kubelet\": issues client certificates that kubelets use to authenticate to kube-apiserver.\n  Requests for this signer can be auto-approved by the \"csrapproving\" controller in kube-controller-manager, and can be issued by the \"csrsigning\" controller in kube-controller-manager.\n 3. \"kubernetes.io/kubelet-serving\" issues serving certificates that kubelets use to serve TLS endpoints, which kube-apiserver can connect to securely.\n  Requests for this signer are never auto-approved by kube-controller-manager, and can be issued by the \"csrsigning\" controller in kube-controller-manager.\n\nMore details are available at https://k8s.io/docs/reference/access-authn-authz/certificate-signing-requests/#kubernetes-signers\n\nCustom signerNames can also be specified. The signer defines:\n 1. Trust distribution: how trust (CA bundles) are distributed.\n 2. Permitted subjects: and behavior when a disallowed subject is requested.\n 3. Required, permitted, or forbidden x509 extensions in the request (including whether subjectAltNames are allowed, which types, restrictions on allowed values) and behavior when a disallowed extension is requested.\n 4. Required, permitted, or forbidden key usages / extended key usages.\n 5. Expiration/certificate lifetime: whether it is fixed by the signer, configurable by the admin.\n 6. Whether or not requests for CA certificates are allowed."),
    col("Requestor", "string", "request contains an x509 certificate signing request encoded in a \"CERTIFICATE REQUEST\" PEM block. When serialized as JSON or YAML, the data is additionally base64-encoded."),
    col("RequestedDuration", "string", "expirationSeconds is the requested duration of validity of the issued certificate. The certificate signer may issue a certificate with a different validity duration so a client must check the delta between the notBefore and and notAfter fields in the issued certificate to determine the actual duration.\n\nThe v1.22+ in-tree implementations of the well-known Kubernetes signers will honor this field as long as the requested duration is not greater than the maximum duration they will honor per the --cluster-signing-duration CLI flag to the Kubernetes controller manager.\n\nCertificate signers may not honor this field for various reasons:\n\n  1. Old signer that is unaware of the field (such as the in-tree\n     implementations prior to v1.22)\n  2. Signer whose configured maximum is shorter than the requested duration\n  3. Signer whose configured minimum is longer than the requested duration\n\nThe minimum valid value for expirationSeconds is 600, i.e. 10 minutes."),
    col("Condition", "string", "conditions applied to the request. Known conditions are \"Approved\", \"Denied\", and \"Failed\"."),
];
const DAEMONSET_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Desired", "integer", "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod). More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/"),
    col("Current", "integer", "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod. More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/"),
    col("Ready", "integer", "numberReady is the number of nodes that should be running the daemon pod and have one or more of the daemon pod running with a Ready Condition."),
    col("Up-to-date", "integer", "The total number of nodes that are running updated daemon pod"),
    col("Available", "integer", "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)"),
    col("Node Selector", "string", "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which must match a node's labels for the pod to be scheduled on that node. More info: https://kubernetes.io/docs/concepts/configuration/assign-pod-node/"),
    AGE_COLUMN,
    wide("Containers", "string", D_CONTAINERS),
    wide("Images", "string", D_IMAGES),
    wide("Selector", "string", "A label query over pods that are managed by the daemon set. Must match in order to be controlled. It must match the pod template's labels. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors"),
];
const DEPLOYMENT_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Ready", "string", "Number of the pod with ready state"),
    col("Up-to-date", "string", "Total number of non-terminating pods targeted by this deployment that have the desired template spec."),
    col("Available", "string", "Total number of available non-terminating pods (ready for at least minReadySeconds) targeted by this deployment."),
    AGE_COLUMN,
    wide("Containers", "string", D_CONTAINERS),
    wide("Images", "string", D_IMAGES),
    wide("Selector", "string", "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment. It must match the pod template's labels."),
];
const DEVICECLASS_COLUMNS: &[Column] = &[NAME_COLUMN, AGE_COLUMN];
const ENDPOINTS_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Endpoints", "string", "The set of all endpoints is the union of all subsets. Addresses are placed into subsets according to the IPs they share. A single address with multiple ports, some of which are ready and some of which are not (because they come from different containers) will result in the address being displayed in different subsets for the different ports. No address will appear in both Addresses and NotReadyAddresses in the same subset. Sets of addresses and ports that comprise a service."),
    AGE_COLUMN,
];
const ENDPOINTSLICE_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("AddressType", "string", "addressType specifies the type of address carried by this EndpointSlice. All addresses in this slice must be the same type. This field is immutable after creation. The following address types are currently supported: * IPv4: Represents an IPv4 Address. * IPv6: Represents an IPv6 Address. * FQDN: Represents a Fully Qualified Domain Name. (Deprecated) The EndpointSlice controller only generates, and kube-proxy only processes, slices of addressType \"IPv4\" and \"IPv6\". No semantics are defined for the \"FQDN\" type."),
    col("Ports", "string", "ports specifies the list of network ports exposed by each endpoint in this slice. Each port must have a unique name. Each slice may include a maximum of 100 ports. Services always have at least 1 port, so EndpointSlices generated by the EndpointSlice controller will likewise always have at least 1 port. EndpointSlices used for other purposes may have an empty ports list."),
    col("Endpoints", "string", "endpoints is a list of unique endpoints in this slice. Each slice may include a maximum of 1000 endpoints."),
    AGE_COLUMN,
];
const EVENT_COLUMNS: &[Column] = &[
    col("Last Seen", "string", "The time at which the most recent occurrence of this event was recorded."),
    col("Type", "string", "Type of this event (Normal, Warning), new types could be added in the future"),
    col("Reason", "string", "This should be a short, machine understandable string that gives the reason for the transition into the object's current status."),
    col("Object", "string", "The object that this event is about."),
    wide("Subobject", "string", "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the object reference is to a container within a pod, this would take on a value like: \"spec.containers{name}\" (where \"name\" refers to the name of the container that triggered the event) or if no container name is specified \"spec.containers[2]\" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object."),
    wide("Source", "string", "The component reporting this event. Should be a short machine understandable string."),
    col("Message", "string", "A human-readable description of the status of this operation."),
    wide("First Seen", "string", "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)"),
    wide("Count", "string", "The number of times this event has occurred."),
    Column { name: "Name", kind: "string", format: "name", description: D_NAME, priority: 1 },
];
const FLOWSCHEMA_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("PriorityLevel", "string", "`name` is the name of the priority level configuration being referenced Required."),
    col("MatchingPrecedence", "string", "`matchingPrecedence` is used to choose among the FlowSchemas that match a given request. The chosen FlowSchema is among those with the numerically lowest (which we take to be logically highest) MatchingPrecedence.  Each MatchingPrecedence value must be ranged in [1,10000]. Note that if the precedence is not specified, it will be set to 1000 as default."),
    col("DistinguisherMethod", "string", "`distinguisherMethod` defines how to compute the flow distinguisher for requests that match this schema. `nil` specifies that the distinguisher is disabled and thus will always be the empty string."),
    AGE_COLUMN,
    col("MissingPL", "string", "references a broken or non-existent PriorityLevelConfiguration"),
];
const HPA_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Reference", "string", "scaleTargetRef points to the target resource to scale, and is used to the pods for which metrics should be collected, as well as to actually change the replica count."),
    col("Targets", "string", "metrics contains the specifications for which to use to calculate the desired replica count (the maximum replica count across all metrics will be used).  The desired replica count is calculated multiplying the ratio between the target value and the current value by the current number of pods.  Ergo, metrics used must decrease as the pod count is increased, and vice-versa.  See the individual metric source types for more information about how each type of metric must respond. If not set, the default metric will be set to 80% average CPU utilization."),
    col("MinPods", "string", "minReplicas is the lower limit for the number of replicas to which the autoscaler can scale down.  It defaults to 1 pod.  minReplicas is allowed to be 0 if the alpha feature gate HPAScaleToZero is enabled and at least one Object or External metric is configured.  Scaling is active as long as at least one metric value is available."),
    col("MaxPods", "string", "maxReplicas is the upper limit for the number of replicas to which the autoscaler can scale up. It cannot be less that minReplicas."),
    col("Replicas", "string", "currentReplicas is current number of replicas of pods managed by this autoscaler, as last seen by the autoscaler."),
    AGE_COLUMN,
];
const INGRESS_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col(
        "Class",
        "string",
        "The name of the IngressClass resource that should be used for additional configuration",
    ),
    col(
        "Hosts",
        "string",
        "Hosts that incoming requests are matched against before the ingress rule",
    ),
    col(
        "Address",
        "string",
        "Address is a list containing ingress points for the load-balancer",
    ),
    col("Ports", "string", "Ports of TLS configurations that open"),
    AGE_COLUMN,
];
const INGRESSCLASS_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col(
        "Controller",
        "string",
        "Controller that is responsible for handling this class",
    ),
    col(
        "Parameters",
        "string",
        "A reference to a resource with additional parameters",
    ),
    AGE_COLUMN,
];
const IPADDRESS_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("ParentRef", "string", "ParentRef references the resource that an IPAddress is attached to. An IPAddress must reference a parent object."),
];
const JOB_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Status", "string", "Status of the job."),
    col("Completions", "string", "The number of pods which reached phase Succeeded. The value increases monotonically for a given spec. However, it may decrease in reaction to scale down of elastic indexed jobs."),
    col("Duration", "string", "Time required to complete the job."),
    AGE_COLUMN,
    wide("Containers", "string", D_CONTAINERS),
    wide("Images", "string", D_IMAGES),
    wide("Selector", "string", "A label query over pods that should match the pod count. Normally, the system sets this field for you. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors"),
];
const LEASE_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Holder", "string", "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field."),
    AGE_COLUMN,
];
const LEASECANDIDATE_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("LeaseName", "string", "LeaseName is the name of the lease for which this candidate is contending. The limits on this field are the same as on Lease.name. Multiple lease candidates may reference the same Lease.name. This field is immutable."),
    col("BinaryVersion", "string", ""),
    col("EmulationVersion", "string", ""),
    AGE_COLUMN,
];
const MAP_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col(
        "Mutations",
        "integer",
        "Mutation indicates the number of mutations rules defined in this configuration",
    ),
    col(
        "ParamKind",
        "string",
        "ParamKind specifies the kind of resources used to parameterize this policy",
    ),
    AGE_COLUMN,
];
const NAMESPACE_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Status", "string", "The status of the namespace"),
    AGE_COLUMN,
];
const NETWORKPOLICY_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Pod-Selector", "string", "podSelector selects the pods to which this NetworkPolicy object applies. The array of rules is applied to any pods selected by this field. An empty selector matches all pods in the policy's namespace. Multiple network policies can select the same set of pods. In this case, the ingress rules for each are combined additively. This field is optional. If it is not specified, it defaults to an empty selector."),
    AGE_COLUMN,
];
const NODE_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Status", "string", "The status of the node"),
    col("Roles", "string", "The roles of the node"),
    AGE_COLUMN,
    col("Version", "string", "Kubelet Version reported by the node."),
    wide("Internal-IP", "string", "List of addresses reachable to the node. Queried from cloud provider, if available. More info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is declared as mergeable, but the merge key is not sufficiently unique, which can cause data corruption when it is merged. Callers should instead use a full-replacement patch. See https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can change during the lifetime of a Node. However, there are some exceptions where this may not be possible, such as Pods that inherit a Node's address in its own status or consumers of the downward API (status.hostIP)."),
    wide("External-IP", "string", "List of addresses reachable to the node. Queried from cloud provider, if available. More info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is declared as mergeable, but the merge key is not sufficiently unique, which can cause data corruption when it is merged. Callers should instead use a full-replacement patch. See https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can change during the lifetime of a Node. However, there are some exceptions where this may not be possible, such as Pods that inherit a Node's address in its own status or consumers of the downward API (status.hostIP)."),
    wide("OS-Image", "string", "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy))."),
    wide("Kernel-Version", "string", "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64)."),
    wide("Container-Runtime", "string", "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2)."),
];
const PDB_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col(
        "Min Available",
        "string",
        "The minimum number of pods that must be available.",
    ),
    col(
        "Max Unavailable",
        "string",
        "The maximum number of pods that may be unavailable.",
    ),
    col(
        "Allowed Disruptions",
        "integer",
        "Calculated number of pods that may be disrupted at this time.",
    ),
    AGE_COLUMN,
];
const POD_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
    col("Status", "string", "The aggregate status of the containers in this pod."),
    col("Restarts", "string", "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
    AGE_COLUMN,
    wide("IP", "string", "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated."),
    wide("Node", "string", "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for this node becomes responsible for the lifecycle of this pod. This field should not be used to express a desire for the pod to be scheduled on a specific node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename"),
    wide("Nominated Node", "string", "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on this node to a higher priority pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when the pod is scheduled."),
    wide("Readiness Gates", "string", "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to \"True\" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates"),
];
const PODTEMPLATE_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Containers", "string", D_CONTAINERS),
    col("Images", "string", D_IMAGES),
    col("Pod Labels", "string", "The labels for the pod template."),
];
const POLICYBINDING_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col(
        "PolicyName",
        "string",
        "PolicyName indicates the policy definition which the policy binding binded to",
    ),
    col(
        "ParamRef",
        "string",
        "ParamRef indicates the param resource which sets the configration param",
    ),
    AGE_COLUMN,
];
const PRIORITYCLASS_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Value", "integer", "value represents the integer value of this priority class. This is the actual priority that pods receive when they have the name of this class in their pod spec."),
    col("Global-Default", "boolean", "globalDefault specifies whether this PriorityClass should be considered as the default priority for pods that do not have any priority class. Only one PriorityClass can be marked as `globalDefault`. However, if more than one PriorityClasses exists with their `globalDefault` field set to true, the smallest value of such global default PriorityClasses will be used as the default priority."),
    AGE_COLUMN,
    col("PreemptionPolicy", "string", "preemptionPolicy is the Policy for preempting pods with lower priority. One of Never, PreemptLowerPriority. Defaults to PreemptLowerPriority if unset."),
];
const PRIORITYLEVEL_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Type", "string", "`type` indicates whether this priority level is subject to limitation on request execution.  A value of `\"Exempt\"` means that requests of this priority level are not subject to a limit (and thus are never queued) and do not detract from the capacity made available to other priority levels.  A value of `\"Limited\"` means that (a) requests of this priority level _are_ subject to limits and (b) some of the server's limited capacity is made available exclusively to this priority level. Required."),
    col("NominalConcurrencyShares", "string", "`nominalConcurrencyShares` (NCS) contributes to the computation of the NominalConcurrencyLimit (NominalCL) of this level. This is the number of execution seats available at this priority level. This is used both for requests dispatched from this priority level as well as requests dispatched from other priority levels borrowing seats from this level. The server's concurrency limit (ServerCL) is divided among the Limited priority levels in proportion to their NCS values:\n\nNominalCL(i)  = ceil( ServerCL * NCS(i) / sum_ncs ) sum_ncs = sum[priority level k] NCS(k)\n\nBigger numbers mean a larger nominal concurrency limit, at the expense of every other priority level.\n\nIf not specified, this field defaults to a value of 30.\n\nSetting this field to zero supports the construction of a \"jail\" for this priority level that is used to hold some request(s)"),
    col("Queues", "string", "`queues` is the number of queues for this priority level. The queues exist independently at each apiserver. The value must be positive.  Setting it to 1 effectively precludes shufflesharding and thus makes the distinguisher method of associated flow schemas irrelevant.  This field has a default value of 64."),
    col("HandSize", "string", "`handSize` is a small positive number that configures the shuffle sharding of requests into queues.  When enqueuing a request at this priority level the request's flow identifier (a string pair) is hashed and the hash value is used to shuffle the list of queues and deal a hand of the size specified here.  The request is put into one of the shortest queues in that hand. `handSize` must be no larger than `queues`, and should be significantly smaller (so that a few heavy flows do not saturate most of the queues).  See the user-facing documentation for more extensive guidance on setting this field.  This field has a default value of 8."),
    col("QueueLengthLimit", "string", "`queueLengthLimit` is the maximum number of requests allowed to be waiting in a given queue of this priority level at a time; excess requests are rejected.  This value must be positive.  If not specified, it will be defaulted to 50."),
    AGE_COLUMN,
];
const PV_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Capacity", "string", "capacity is the description of the persistent volume's resources and capacity. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#capacity"),
    col("Access Modes", "string", "accessModes contains all ways the volume can be mounted. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes"),
    col("Reclaim Policy", "string", "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its claim. Valid options are Retain (default for manually created PersistentVolumes), Delete (default for dynamically provisioned PersistentVolumes), and Recycle (deprecated). Recycle must be supported by the volume plugin underlying this PersistentVolume. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#reclaiming"),
    col("Status", "string", "phase indicates if a volume is available, bound to a claim, or released by a claim. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#phase"),
    col("Claim", "string", "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim. Expected to be non-nil when bound. claim.VolumeName is the authoritative bind between PV and PVC. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#binding"),
    col("StorageClass", "string", "StorageClass of the pv"),
    col("VolumeAttributesClass", "string", "VolumeAttributesClass of the pv"),
    col("Reason", "string", "reason is a brief CamelCase string that describes any failure and is meant for machine parsing and tidy display in the CLI."),
    AGE_COLUMN,
    wide("VolumeMode", "string", "volumeMode defines if a volume is intended to be used with a formatted filesystem or to remain in raw block state. Value of Filesystem is implied when not included in spec."),
];
const PVC_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Status", "string", "phase represents the current phase of PersistentVolumeClaim."),
    col("Volume", "string", "volumeName is the binding reference to the PersistentVolume backing this claim."),
    col("Capacity", "string", "capacity represents the actual resources of the underlying volume."),
    col("Access Modes", "string", "accessModes contains the actual access modes the volume backing the PVC has. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes-1"),
    col("StorageClass", "string", "StorageClass of the pvc"),
    col("VolumeAttributesClass", "string", "VolumeAttributesClass of the pvc"),
    AGE_COLUMN,
    wide("VolumeMode", "string", "volumeMode defines what type of volume is required by the claim. Value of Filesystem is implied when not included in claim spec."),
];
const RC_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Desired", "integer", "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller"),
    col("Current", "integer", "Replicas is the most recently observed number of replicas. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller"),
    col("Ready", "integer", "The number of ready replicas for this replication controller."),
    AGE_COLUMN,
    wide("Containers", "string", D_CONTAINERS),
    wide("Images", "string", D_IMAGES),
    wide("Selector", "string", "Selector is a label query over pods that should match the Replicas count. If Selector is empty, it is defaulted to the labels present on the Pod template. Label keys and values that must match in order to be controlled by this replication controller, if empty defaulted to labels on Pod template. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors"),
];
const REPLICASET_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Desired", "integer", "Replicas is the number of desired pods. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicaset"),
    col("Current", "integer", "Replicas is the most recently observed number of non-terminating pods. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicaset"),
    col("Ready", "integer", "The number of non-terminating pods targeted by this ReplicaSet with a Ready Condition."),
    AGE_COLUMN,
    wide("Containers", "string", D_CONTAINERS),
    wide("Images", "string", D_IMAGES),
    wide("Selector", "string", "Selector is a label query over pods that should match the replica count. Label keys and values that must match in order to be controlled by this replica set. It must match the pod template's labels. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors"),
];
const RESOURCECLAIM_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col(
        "State",
        "string",
        "A summary of the current state (allocated, pending, reserved, etc.).",
    ),
    AGE_COLUMN,
];
const RESOURCECLAIMTEMPLATE_COLUMNS: &[Column] = &[NAME_COLUMN, AGE_COLUMN];
const RESOURCEQUOTA_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Request", "string", "Request represents a minimum amount of cpu/memory that a container may consume."),
    col("Limit", "string", "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node."),
    AGE_COLUMN,
];
const RESOURCESLICE_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Node", "string", "NodeName identifies the node which provides the resources in this pool. A field selector can be used to list only ResourceSlice objects belonging to a certain node.\n\nThis field can be used to limit access from nodes to ResourceSlices with the same node name. It also indicates to autoscalers that adding new nodes of the same type as some old node might also make new resources available.\n\nExactly one of NodeName, NodeSelector, AllNodes, and PerDeviceNodeSelection must be set. This field is immutable."),
    col("Driver", "string", "Driver identifies the DRA driver providing the capacity information. A field selector can be used to list only ResourceSlice objects with a certain driver name.\n\nMust be a DNS subdomain and should end with a DNS domain owned by the vendor of the driver. It should use only lower case characters. This field is immutable."),
    col("Pool", "string", "Name is used to identify the pool. For node-local devices, this is often the node name, but this is not required.\n\nIt must not be longer than 253 characters and must consist of one or more DNS sub-domains separated by slashes. This field is immutable."),
    AGE_COLUMN,
];
const ROLEBINDING_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Role", "string", "roleRef can reference a Role in the current namespace or a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error."),
    AGE_COLUMN,
    wide("Users", "string", "Users in the roleBinding"),
    wide("Groups", "string", "Groups in the roleBinding"),
    wide("ServiceAccounts", "string", "ServiceAccounts in the roleBinding"),
];
const RUNTIMECLASS_COLUMNS: &[Column] = &[NAME_COLUMN, col("Handler", "string", ""), AGE_COLUMN];
const SECRET_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Type", "string", "Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types"),
    col("Data", "string", "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4"),
    AGE_COLUMN,
];
const SERVICE_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Type", "string", "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer. \"ClusterIP\" allocates a cluster-internal IP address for load-balancing to endpoints. Endpoints are determined by the selector or if that is not specified, by manual construction of an Endpoints object or EndpointSlice objects. If clusterIP is \"None\", no virtual IP is allocated and the endpoints are published as a set of endpoints rather than a virtual IP. \"NodePort\" builds on ClusterIP and allocates a port on every node which routes to the same endpoints as the clusterIP. \"LoadBalancer\" builds on NodePort and creates an external load-balancer (if supported in the current cloud) which routes to the same endpoints as the clusterIP. \"ExternalName\" aliases this service to the specified externalName. Several other fields do not apply to ExternalName services. More info: https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types"),
    col("Cluster-IP", "string", "clusterIP is the IP address of the service and is usually assigned randomly. If an address is specified manually, is in-range (as per system configuration), and is not in use, it will be allocated to the service; otherwise creation of the service will fail. This field may not be changed through updates unless the type field is also being changed to ExternalName (which requires this field to be blank) or the type field is being changed from ExternalName (in which case this field may optionally be specified, as describe above).  Valid values are \"None\", empty string (\"\"), or a valid IP address. Setting this to \"None\" makes a \"headless service\" (no virtual IP), which is useful when direct endpoint connections are preferred and proxying is not required.  Only applies to types ClusterIP, NodePort, and LoadBalancer. If this field is specified when creating a Service of type ExternalName, creation will fail. This field will be wiped when updating a Service to type ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies"),
    col("External-IP", "string", "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.  These IPs are not managed by Kubernetes.  The user is responsible for ensuring that traffic arrives at a node with this IP.  A common example is external load-balancers that are not part of the Kubernetes system."),
    col("Port(s)", "string", "The list of ports that are exposed by this service. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies"),
    AGE_COLUMN,
    wide("Selector", "string", "Route service traffic to pods with label keys and values matching this selector. If empty or not present, the service is assumed to have an external process managing its endpoints, which Kubernetes will not modify. Only applies to types ClusterIP, NodePort, and LoadBalancer. Ignored if type is ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/"),
];
const SERVICEACCOUNT_COLUMNS: &[Column] = &[NAME_COLUMN, AGE_COLUMN];
const SERVICECIDR_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("CIDRs", "string", "CIDRs defines the IP blocks in CIDR notation (e.g. \"192.168.0.0/24\" or \"2001:db8::/64\") from which to assign service cluster IPs. Max of two CIDRs is allowed, one of each IP family. This field is immutable."),
    AGE_COLUMN,
];
const STATEFULSET_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Ready", "string", "Number of the pod with ready state"),
    AGE_COLUMN,
    wide("Containers", "string", D_CONTAINERS),
    wide("Images", "string", D_IMAGES),
];
const STORAGECLASS_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Provisioner", "string", "provisioner indicates the type of the provisioner."),
    col("ReclaimPolicy", "string", "reclaimPolicy controls the reclaimPolicy for dynamically provisioned PersistentVolumes of this storage class. Defaults to Delete."),
    col("VolumeBindingMode", "string", "volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound.  When unset, VolumeBindingImmediate is used. This field is only honored by servers that enable the VolumeScheduling feature."),
    col("AllowVolumeExpansion", "string", "allowVolumeExpansion shows whether the storage class allow volume expand."),
    AGE_COLUMN,
];
const STORAGEVERSION_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("CommonEncodingVersion", "string", "commonEncodingVersion is set to an encoding storage version if all API server instances share that same version. If they don't share one storage version, this field is left empty. API servers should finish updating its storageVersionStatus entry before serving write operations, so that this field will be in sync with the reality."),
    col("StorageVersions", "string", "storageVersions lists the reported versions per API server instance."),
    AGE_COLUMN,
];
const VAP_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col(
        "Validations",
        "integer",
        "Validations indicates the number of validation rules defined in this configuration",
    ),
    col(
        "ParamKind",
        "string",
        "ParamKind specifies the kind of resources used to parameterize this policy",
    ),
    AGE_COLUMN,
];
const VOLUMEATTACHMENT_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    Column { name: "Attacher", kind: "string", format: "name", description: "attacher indicates the name of the volume driver that MUST handle this request. This is the name returned by GetPluginName().", priority: 0 },
    col("PV", "string", "persistentVolumeName represents the name of the persistent volume to attach."),
    col("Node", "string", "nodeName represents the node that the volume should be attached to."),
    col("Attached", "boolean", "attached indicates the volume is successfully attached. This field must only be set by the entity completing the attach operation, i.e. the external-attacher."),
    AGE_COLUMN,
];
const VOLUMEATTRIBUTESCLASS_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col(
        "DriverName",
        "string",
        "Name of the CSI driver This field is immutable.",
    ),
    AGE_COLUMN,
];
const WEBHOOK_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col(
        "Webhooks",
        "integer",
        "Webhooks indicates the number of webhooks registered in this configuration",
    ),
    AGE_COLUMN,
];

// ---------------------------------------------------------------------------------------------
// Built-in printers

type CellsFn = fn(&Value, &Ctx) -> Vec<Value>;
type ConditionsFn = fn(&Value) -> Option<Value>;

/// One upstream printer: its column definitions and the function that fills a row.
struct Printer {
    columns: &'static [Column],
    cells: CellsFn,
    conditions: Option<ConditionsFn>,
}

const fn printer(columns: &'static [Column], cells: CellsFn) -> Printer {
    Printer {
        columns,
        cells,
        conditions: None,
    }
}

/// The printer upstream registers for a resource; `None` means the default convertor.
/// (Roles, ClusterRoles, LimitRanges and CustomResourceDefinitions use the default convertor
/// upstream too.)
fn printer_for(group: &str, resource: &str) -> Option<Printer> {
    let p = match (group, resource) {
        ("", "pods") => Printer {
            conditions: Some(pod_conditions),
            ..printer(POD_COLUMNS, pod_cells)
        },
        ("", "podtemplates") => printer(PODTEMPLATE_COLUMNS, pod_template_cells),
        ("", "replicationcontrollers") => printer(RC_COLUMNS, replication_controller_cells),
        ("", "services") => printer(SERVICE_COLUMNS, service_cells),
        ("", "endpoints") => printer(ENDPOINTS_COLUMNS, endpoints_cells),
        ("", "nodes") => printer(NODE_COLUMNS, node_cells),
        ("", "events") => printer(EVENT_COLUMNS, core_event_cells),
        ("events.k8s.io", "events") => printer(EVENT_COLUMNS, events_v1_event_cells),
        ("", "namespaces") => printer(NAMESPACE_COLUMNS, namespace_cells),
        ("", "secrets") => printer(SECRET_COLUMNS, secret_cells),
        ("", "serviceaccounts") => printer(SERVICEACCOUNT_COLUMNS, name_age_cells),
        ("", "persistentvolumes") => printer(PV_COLUMNS, persistent_volume_cells),
        ("", "persistentvolumeclaims") => printer(PVC_COLUMNS, persistent_volume_claim_cells),
        ("", "componentstatuses") => printer(COMPONENTSTATUS_COLUMNS, component_status_cells),
        ("", "configmaps") => printer(CONFIGMAP_COLUMNS, config_map_cells),
        ("", "resourcequotas") => printer(RESOURCEQUOTA_COLUMNS, resource_quota_cells),
        ("apps", "deployments") => printer(DEPLOYMENT_COLUMNS, deployment_cells),
        ("apps", "replicasets") => printer(REPLICASET_COLUMNS, replica_set_cells),
        ("apps", "statefulsets") => printer(STATEFULSET_COLUMNS, stateful_set_cells),
        ("apps", "daemonsets") => printer(DAEMONSET_COLUMNS, daemon_set_cells),
        ("apps", "controllerrevisions") => {
            printer(CONTROLLERREVISION_COLUMNS, controller_revision_cells)
        }
        ("batch", "jobs") => printer(JOB_COLUMNS, job_cells),
        ("batch", "cronjobs") => printer(CRONJOB_COLUMNS, cron_job_cells),
        ("autoscaling", "horizontalpodautoscalers") => printer(HPA_COLUMNS, hpa_cells),
        ("policy", "poddisruptionbudgets") => printer(PDB_COLUMNS, pdb_cells),
        ("networking.k8s.io", "ingresses") => printer(INGRESS_COLUMNS, ingress_cells),
        ("networking.k8s.io", "ingressclasses") => {
            printer(INGRESSCLASS_COLUMNS, ingress_class_cells)
        }
        ("networking.k8s.io", "networkpolicies") => {
            printer(NETWORKPOLICY_COLUMNS, network_policy_cells)
        }
        ("networking.k8s.io", "servicecidrs") => printer(SERVICECIDR_COLUMNS, service_cidr_cells),
        // Upstream's IPAddress printer declares two columns but fills three cells.
        ("networking.k8s.io", "ipaddresses") => printer(IPADDRESS_COLUMNS, ip_address_cells),
        ("discovery.k8s.io", "endpointslices") => {
            printer(ENDPOINTSLICE_COLUMNS, endpoint_slice_cells)
        }
        ("rbac.authorization.k8s.io", "rolebindings") => {
            printer(ROLEBINDING_COLUMNS, role_binding_cells)
        }
        ("rbac.authorization.k8s.io", "clusterrolebindings") => {
            printer(CLUSTERROLEBINDING_COLUMNS, role_binding_cells)
        }
        ("certificates.k8s.io", "certificatesigningrequests") => printer(CSR_COLUMNS, csr_cells),
        ("certificates.k8s.io", "clustertrustbundles") => {
            printer(CLUSTERTRUSTBUNDLE_COLUMNS, cluster_trust_bundle_cells)
        }
        ("coordination.k8s.io", "leases") => printer(LEASE_COLUMNS, lease_cells),
        ("coordination.k8s.io", "leasecandidates") => {
            printer(LEASECANDIDATE_COLUMNS, lease_candidate_cells)
        }
        ("storage.k8s.io", "storageclasses") => printer(STORAGECLASS_COLUMNS, storage_class_cells),
        ("storage.k8s.io", "volumeattributesclasses") => {
            printer(VOLUMEATTRIBUTESCLASS_COLUMNS, volume_attributes_class_cells)
        }
        ("storage.k8s.io", "volumeattachments") => {
            printer(VOLUMEATTACHMENT_COLUMNS, volume_attachment_cells)
        }
        ("storage.k8s.io", "csinodes") => printer(CSINODE_COLUMNS, csi_node_cells),
        ("storage.k8s.io", "csidrivers") => printer(CSIDRIVER_COLUMNS, csi_driver_cells),
        ("storage.k8s.io", "csistoragecapacities") => {
            printer(CSISTORAGECAPACITY_COLUMNS, csi_storage_capacity_cells)
        }
        ("scheduling.k8s.io", "priorityclasses") => {
            printer(PRIORITYCLASS_COLUMNS, priority_class_cells)
        }
        ("node.k8s.io", "runtimeclasses") => printer(RUNTIMECLASS_COLUMNS, runtime_class_cells),
        ("admissionregistration.k8s.io", "mutatingwebhookconfigurations")
        | ("admissionregistration.k8s.io", "validatingwebhookconfigurations") => {
            printer(WEBHOOK_COLUMNS, webhook_configuration_cells)
        }
        ("admissionregistration.k8s.io", "validatingadmissionpolicies") => {
            printer(VAP_COLUMNS, validating_admission_policy_cells)
        }
        ("admissionregistration.k8s.io", "mutatingadmissionpolicies") => {
            printer(MAP_COLUMNS, mutating_admission_policy_cells)
        }
        ("admissionregistration.k8s.io", "validatingadmissionpolicybindings")
        | ("admissionregistration.k8s.io", "mutatingadmissionpolicybindings") => {
            printer(POLICYBINDING_COLUMNS, admission_policy_binding_cells)
        }
        ("flowcontrol.apiserver.k8s.io", "flowschemas") => {
            printer(FLOWSCHEMA_COLUMNS, flow_schema_cells)
        }
        ("flowcontrol.apiserver.k8s.io", "prioritylevelconfigurations") => {
            printer(PRIORITYLEVEL_COLUMNS, priority_level_cells)
        }
        ("internal.apiserver.k8s.io", "storageversions") => {
            printer(STORAGEVERSION_COLUMNS, storage_version_cells)
        }
        ("resource.k8s.io", "deviceclasses") => printer(DEVICECLASS_COLUMNS, name_age_cells),
        ("resource.k8s.io", "resourceclaims") => {
            printer(RESOURCECLAIM_COLUMNS, resource_claim_cells)
        }
        ("resource.k8s.io", "resourceclaimtemplates") => {
            printer(RESOURCECLAIMTEMPLATE_COLUMNS, name_age_cells)
        }
        ("resource.k8s.io", "resourceslices") => {
            printer(RESOURCESLICE_COLUMNS, resource_slice_cells)
        }
        // kube-aggregator's own convertor.
        ("apiregistration.k8s.io", "apiservices") => printer(APISERVICE_COLUMNS, api_service_cells),
        _ => return None,
    };
    Some(p)
}

/// What a row function needs besides the object.
struct Ctx {
    now: DateTime<Utc>,
}

impl Ctx {
    /// `translateTimestampSince`: "<unknown>" for a missing (zero) time.
    fn since(&self, timestamp: &str) -> String {
        match parse_time(timestamp) {
            Some(t) => human_duration(self.now.signed_duration_since(t)),
            None => "<unknown>".to_string(),
        }
    }

    fn age(&self, obj: &Value) -> Value {
        self.since(obj.s("metadata.creationTimestamp")).into()
    }
}

fn name(obj: &Value) -> Value {
    obj.s("metadata.name").into()
}

fn name_age_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    vec![name(o), ctx.age(o)]
}

// --- core ------------------------------------------------------------------------------------

fn pod_conditions(pod: &Value) -> Option<Value> {
    let (reason, message) = match pod.s("status.phase") {
        "Succeeded" => ("Succeeded", "The pod has completed successfully."),
        "Failed" => ("Failed", "The pod failed."),
        _ => return None,
    };
    Some(json!([{
        "type": "Completed",
        "status": "True",
        "reason": reason,
        "message": message,
    }]))
}

fn pod_cells(pod: &Value, ctx: &Ctx) -> Vec<Value> {
    let init_specs = pod.items("spec.initContainers");
    let is_restartable = |container: &str| {
        init_specs
            .iter()
            .rev()
            .find(|c| c.s("name") == container)
            .is_some_and(|c| c.s("restartPolicy") == "Always")
    };
    let total = pod.items("spec.containers").len()
        + init_specs
            .iter()
            .filter(|c| c.s("restartPolicy") == "Always")
            .count();
    let mut ready = 0usize;
    let mut restarts = 0i64;
    let mut sidecar_restarts = 0i64;
    let mut last_restart: Option<DateTime<Utc>> = None;
    let mut sidecar_last_restart: Option<DateTime<Utc>> = None;

    let phase = pod.s("status.phase");
    let mut reason = if pod.s("status.reason").is_empty() {
        phase.to_string()
    } else {
        pod.s("status.reason").to_string()
    };
    if pod
        .items("status.conditions")
        .iter()
        .any(|c| c.s("type") == "PodScheduled" && c.s("reason") == "SchedulingGated")
    {
        reason = "SchedulingGated".to_string();
    }

    let mut initializing = false;
    for (i, status) in pod.items("status.initContainerStatuses").iter().enumerate() {
        restarts += status.i("restartCount");
        let finished = status.s("lastState.terminated.finishedAt");
        if status.at("lastState.terminated").is_some() {
            later(&mut last_restart, finished);
        }
        let restartable = is_restartable(status.s("name"));
        if restartable {
            sidecar_restarts += status.i("restartCount");
            if status.at("lastState.terminated").is_some() {
                later(&mut sidecar_last_restart, finished);
            }
        }
        let terminated = status.at("state.terminated");
        if terminated.is_some_and(|t| t.i("exitCode") == 0) {
            continue;
        }
        if restartable && status.flag("started") == Some(true) {
            if status.flag("ready") == Some(true) {
                ready += 1;
            }
            continue;
        }
        let waiting_reason = status.s("state.waiting.reason");
        reason = if let Some(t) = terminated {
            if !t.s("reason").is_empty() {
                format!("Init:{}", t.s("reason"))
            } else if t.i("signal") != 0 {
                format!("Init:Signal:{}", t.i("signal"))
            } else {
                format!("Init:ExitCode:{}", t.i("exitCode"))
            }
        } else if status.at("state.waiting").is_some()
            && !waiting_reason.is_empty()
            && waiting_reason != "PodInitializing"
        {
            format!("Init:{waiting_reason}")
        } else {
            format!("Init:{}/{}", i, init_specs.len())
        };
        initializing = true;
        break;
    }

    let initialized = pod
        .items("status.conditions")
        .iter()
        .find(|c| c.s("type") == "Initialized")
        .is_some_and(|c| c.s("status") == "True");
    if !initializing || initialized {
        restarts = sidecar_restarts;
        last_restart = sidecar_last_restart;
        let mut has_running = false;
        for status in pod.items("status.containerStatuses").iter().rev() {
            restarts += status.i("restartCount");
            if status.at("lastState.terminated").is_some() {
                later(
                    &mut last_restart,
                    status.s("lastState.terminated.finishedAt"),
                );
            }
            let waiting = status.at("state.waiting");
            let terminated = status.at("state.terminated");
            if waiting.is_some_and(|w| !w.s("reason").is_empty()) {
                reason = status.s("state.waiting.reason").to_string();
            } else if let Some(t) = terminated {
                reason = if !t.s("reason").is_empty() {
                    t.s("reason").to_string()
                } else if t.i("signal") != 0 {
                    format!("Signal:{}", t.i("signal"))
                } else {
                    format!("ExitCode:{}", t.i("exitCode"))
                };
            } else if status.flag("ready") == Some(true) && status.at("state.running").is_some() {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            let pod_ready = pod
                .items("status.conditions")
                .iter()
                .any(|c| c.s("type") == "Ready" && c.s("status") == "True");
            reason = if pod_ready { "Running" } else { "NotReady" }.to_string();
        }
    }

    let deleting = pod.at("metadata.deletionTimestamp").is_some();
    if deleting && pod.s("status.reason") == "NodeLost" {
        reason = "Unknown".to_string();
    } else if deleting && phase != "Failed" && phase != "Succeeded" {
        reason = "Terminating".to_string();
    }

    let restarts_cell = match last_restart {
        Some(t) if restarts != 0 => format!(
            "{restarts} ({} ago)",
            human_duration(ctx.now.signed_duration_since(t))
        ),
        _ => restarts.to_string(),
    };

    let readiness_gates = pod.items("spec.readinessGates");
    let gates = if readiness_gates.is_empty() {
        "<none>".to_string()
    } else {
        let conditions = pod.items("status.conditions");
        let true_conditions = readiness_gates
            .iter()
            .filter(|gate| {
                conditions
                    .iter()
                    .find(|c| c.s("type") == gate.s("conditionType"))
                    .is_some_and(|c| c.s("status") == "True")
            })
            .count();
        format!("{true_conditions}/{}", readiness_gates.len())
    };
    let pod_ip = pod
        .items("status.podIPs")
        .first()
        .map(|ip| ip.s("ip"))
        .unwrap_or("");

    vec![
        name(pod),
        format!("{ready}/{total}").into(),
        reason.into(),
        restarts_cell.into(),
        ctx.age(pod),
        or_none(pod_ip),
        or_none(pod.s("spec.nodeName")),
        or_none(pod.s("status.nominatedNodeName")),
        gates.into(),
    ]
}

/// Moves `latest` forward to `timestamp` when that is later (`metav1.Time.Before`).
fn later(latest: &mut Option<DateTime<Utc>>, timestamp: &str) {
    if let Some(t) = parse_time(timestamp) {
        if latest.is_none_or(|l| l < t) {
            *latest = Some(t);
        }
    }
}

fn pod_template_cells(o: &Value, _ctx: &Ctx) -> Vec<Value> {
    let (names, images) = container_cells(o.items("template.spec.containers"));
    vec![
        name(o),
        names.into(),
        images.into(),
        format_labels(o.at("template.metadata.labels")).into(),
    ]
}

fn replication_controller_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    let (names, images) = container_cells(o.items("spec.template.spec.containers"));
    vec![
        name(o),
        o.int_or("spec.replicas", 1).into(),
        o.i("status.replicas").into(),
        o.i("status.readyReplicas").into(),
        ctx.age(o),
        names.into(),
        images.into(),
        format_labels(o.at("spec.selector")).into(),
    ]
}

fn service_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    let kind = o.str_or("spec.type", "ClusterIP");
    // clusterIPs is defaulted from clusterIP; fall back to it for objects stored without.
    let cluster_ip = o
        .items("spec.clusterIPs")
        .first()
        .and_then(Value::as_str)
        .or_else(|| o.at("spec.clusterIP").and_then(Value::as_str))
        .filter(|ip| !ip.is_empty())
        .unwrap_or("<none>");
    let external_ips = strings(o.items("spec.externalIPs"));
    let external = match kind {
        "ClusterIP" | "NodePort" if !external_ips.is_empty() => external_ips.join(","),
        "ClusterIP" | "NodePort" => "<none>".to_string(),
        "LoadBalancer" => {
            let lb = load_balancer_ingress(o.items("status.loadBalancer.ingress"));
            if !external_ips.is_empty() {
                lb.into_iter()
                    .chain(external_ips.iter().map(|s| s.to_string()))
                    .collect::<Vec<_>>()
                    .join(",")
            } else if !lb.is_empty() {
                lb.join(",")
            } else {
                "<pending>".to_string()
            }
        }
        "ExternalName" => o.s("spec.externalName").to_string(),
        _ => "<unknown>".to_string(),
    };
    let ports: Vec<String> = o
        .items("spec.ports")
        .iter()
        .map(|p| {
            let protocol = p.str_or("protocol", "TCP");
            if p.i("nodePort") > 0 {
                format!("{}:{}/{protocol}", p.i("port"), p.i("nodePort"))
            } else {
                format!("{}/{protocol}", p.i("port"))
            }
        })
        .collect();
    let ports = if ports.is_empty() {
        "<none>".to_string()
    } else {
        ports.join(",")
    };
    vec![
        name(o),
        kind.into(),
        cluster_ip.into(),
        external.into(),
        ports.into(),
        ctx.age(o),
        format_labels(o.at("spec.selector")).into(),
    ]
}

/// The sorted, de-duplicated IPs (or hostnames) of a load balancer status; the server always
/// prints wide, so nothing is clipped.
fn load_balancer_ingress(ingress: &[Value]) -> Vec<String> {
    let mut out: Vec<String> = ingress
        .iter()
        .filter_map(|i| {
            if !i.s("ip").is_empty() {
                Some(i.s("ip").to_string())
            } else if !i.s("hostname").is_empty() {
                Some(i.s("hostname").to_string())
            } else {
                None
            }
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

fn endpoints_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    const MAX: usize = 3;
    let subsets = o.items("subsets");
    let text = if subsets.is_empty() {
        "<none>".to_string()
    } else {
        let mut list: Vec<String> = Vec::new();
        let mut more = false;
        let mut count = 0usize;
        for subset in subsets {
            let addresses = subset.items("addresses");
            let ports = subset.items("ports");
            if ports.is_empty() {
                count += addresses.len();
                for a in addresses {
                    if list.len() == MAX {
                        more = true;
                        break;
                    }
                    list.push(a.s("ip").to_string());
                }
                continue;
            }
            for port in ports {
                count += addresses.len();
                for a in addresses {
                    if list.len() == MAX {
                        more = true;
                        break;
                    }
                    list.push(join_host_port(a.s("ip"), port.i("port")));
                }
            }
        }
        let joined = list.join(",");
        if more {
            format!("{joined} + {} more...", count - MAX)
        } else {
            joined
        }
    };
    vec![name(o), text.into(), ctx.age(o)]
}

fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn node_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    let mut status: Vec<String> = Vec::new();
    if let Some(ready) = o
        .items("status.conditions")
        .iter()
        .rev()
        .find(|c| c.s("type") == "Ready")
    {
        status.push(if ready.s("status") == "True" {
            "Ready".to_string()
        } else {
            "NotReady".to_string()
        });
    }
    if status.is_empty() {
        status.push("Unknown".to_string());
    }
    if o.flag("spec.unschedulable") == Some(true) {
        status.push("SchedulingDisabled".to_string());
    }
    let mut roles: Vec<&str> = o
        .at("metadata.labels")
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .iter()
                .filter_map(|(k, v)| {
                    if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                        (!role.is_empty()).then_some(role)
                    } else if k == "kubernetes.io/role" {
                        v.as_str().filter(|v| !v.is_empty())
                    } else {
                        None
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    roles.sort_unstable();
    roles.dedup();
    let address = |kind: &str| {
        o.items("status.addresses")
            .iter()
            .find(|a| a.s("type") == kind)
            .map(|a| a.s("address"))
            .unwrap_or("<none>")
    };
    let unknown = |path: &str| match o.s(path) {
        "" => "<unknown>",
        v => v,
    };
    vec![
        name(o),
        status.join(",").into(),
        if roles.is_empty() {
            "<none>".to_string()
        } else {
            roles.join(",")
        }
        .into(),
        ctx.age(o),
        o.s("status.nodeInfo.kubeletVersion").into(),
        address("InternalIP").into(),
        address("ExternalIP").into(),
        unknown("status.nodeInfo.osImage").into(),
        unknown("status.nodeInfo.kernelVersion").into(),
        unknown("status.nodeInfo.containerRuntimeVersion").into(),
    ]
}

/// Field names of an Event in core/v1 and in events.k8s.io/v1 (the same internal type upstream).
struct EventFields {
    regarding: &'static str,
    note: &'static str,
    source: &'static str,
    first: &'static str,
    last: &'static str,
    count: &'static str,
    reporting_controller: &'static str,
}

fn core_event_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    event_cells(
        o,
        ctx,
        &EventFields {
            regarding: "involvedObject",
            note: "message",
            source: "source",
            first: "firstTimestamp",
            last: "lastTimestamp",
            count: "count",
            reporting_controller: "reportingComponent",
        },
    )
}

fn events_v1_event_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    event_cells(
        o,
        ctx,
        &EventFields {
            regarding: "regarding",
            note: "note",
            source: "deprecatedSource",
            first: "deprecatedFirstTimestamp",
            last: "deprecatedLastTimestamp",
            count: "deprecatedCount",
            reporting_controller: "reportingController",
        },
    )
}

fn event_cells(o: &Value, ctx: &Ctx, f: &EventFields) -> Vec<Value> {
    let field = |k: &str| o.get(k).filter(|v| !v.is_null());
    let text = |k: &str| field(k).and_then(Value::as_str).unwrap_or("");
    let first = if parse_time(text(f.first)).is_some() {
        ctx.since(text(f.first))
    } else {
        ctx.since(text("eventTime"))
    };
    let mut last = if parse_time(text(f.last)).is_some() {
        ctx.since(text(f.last))
    } else {
        first.clone()
    };
    let mut count = field(f.count).map(|_| o.i(f.count)).unwrap_or(0);
    if let Some(series) = field("series") {
        last = ctx.since(series.s("lastObservedTime"));
        count = series.i("count");
    } else if count == 0 {
        count = 1;
    }
    let regarding = field(f.regarding);
    let kind = regarding.map(|r| r.s("kind")).unwrap_or("").to_lowercase();
    let regarding_name = regarding.map(|r| r.s("name")).unwrap_or("");
    let target = if regarding_name.is_empty() {
        kind
    } else {
        format!("{kind}/{regarding_name}")
    };
    let source = field(f.source);
    let component = first_non_empty(
        source.map(|s| s.s("component")).unwrap_or(""),
        text(f.reporting_controller),
    );
    let instance = first_non_empty(
        source.map(|s| s.s("host")).unwrap_or(""),
        text("reportingInstance"),
    );
    let source_text = if instance.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {instance}")
    };
    vec![
        last.into(),
        text("type").into(),
        text("reason").into(),
        target.into(),
        regarding.map(|r| r.s("fieldPath")).unwrap_or("").into(),
        source_text.into(),
        text(f.note).trim().into(),
        first.into(),
        count.into(),
        name(o),
    ]
}

fn first_non_empty<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.is_empty() {
        b
    } else {
        a
    }
}

fn namespace_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    vec![name(o), o.s("status.phase").into(), ctx.age(o)]
}

fn secret_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    vec![
        name(o),
        o.str_or("type", "Opaque").into(),
        o.len("data").into(),
        ctx.age(o),
    ]
}

fn config_map_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    vec![
        name(o),
        (o.len("data") + o.len("binaryData")).into(),
        ctx.age(o),
    ]
}

fn persistent_volume_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    let claim = match o.at("spec.claimRef") {
        Some(c) => format!("{}/{}", c.s("namespace"), c.s("name")),
        None => String::new(),
    };
    let phase = if o.at("metadata.deletionTimestamp").is_some() {
        "Terminating"
    } else {
        o.s("status.phase")
    };
    vec![
        name(o),
        quantity(o.at("spec.capacity.storage")).into(),
        access_modes(o.items("spec.accessModes")).into(),
        o.str_or("spec.persistentVolumeReclaimPolicy", "Retain")
            .into(),
        phase.into(),
        claim.into(),
        storage_class(o).into(),
        o.str_or("spec.volumeAttributesClassName", "<unset>").into(),
        o.s("status.reason").into(),
        ctx.age(o),
        o.str_or("spec.volumeMode", "Filesystem").into(),
    ]
}

fn persistent_volume_claim_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    let phase = if o.at("metadata.deletionTimestamp").is_some() {
        "Terminating"
    } else {
        o.s("status.phase")
    };
    let volume = o.s("spec.volumeName");
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            quantity(o.at("status.capacity.storage")),
            access_modes(o.items("status.accessModes")),
        )
    };
    vec![
        name(o),
        phase.into(),
        volume.into(),
        capacity.into(),
        modes.into(),
        storage_class(o).into(),
        o.str_or("spec.volumeAttributesClassName", "<unset>").into(),
        ctx.age(o),
        o.str_or("spec.volumeMode", "Filesystem").into(),
    ]
}

/// `helper.GetPersistentVolume(Claim)Class`: the beta annotation wins over the field.
fn storage_class(o: &Value) -> &str {
    match o
        .at("metadata.annotations")
        .and_then(|a| a.get("volume.beta.kubernetes.io/storage-class"))
        .and_then(Value::as_str)
    {
        Some(class) => class,
        None => o.s("spec.storageClassName"),
    }
}

/// `helper.GetAccessModesAsString`.
fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| has(mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

/// A `resource.Quantity` as stored; a missing one prints as "0".
fn quantity(q: Option<&Value>) -> String {
    match q {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "0".to_string(),
    }
}

fn component_status_cells(o: &Value, _ctx: &Ctx) -> Vec<Value> {
    let (status, message, error) = match o
        .items("conditions")
        .iter()
        .find(|c| c.s("type") == "Healthy")
    {
        Some(c) => (
            if c.s("status") == "True" {
                "Healthy"
            } else {
                "Unhealthy"
            },
            c.s("message"),
            c.s("error"),
        ),
        None => ("Unknown", "", ""),
    };
    vec![name(o), status.into(), message.into(), error.into()]
}

fn resource_quota_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    let mut resources: Vec<&String> = o
        .at("status.hard")
        .and_then(Value::as_object)
        .map(|hard| hard.keys().collect())
        .unwrap_or_default();
    resources.sort();
    let mut requests = Vec::new();
    let mut limits = Vec::new();
    for resource in resources {
        let used = quantity(o.at("status.used").and_then(|u| u.get(resource.as_str())));
        let hard = quantity(o.at("status.hard").and_then(|h| h.get(resource.as_str())));
        let text = format!("{resource}: {used}/{hard}");
        let pieces: Vec<&str> = resource.split('.').collect();
        if pieces.len() > 1 && pieces[0] == "limits" {
            limits.push(text);
        } else {
            requests.push(text);
        }
    }
    vec![
        name(o),
        requests.join(", ").into(),
        limits.join(", ").into(),
        ctx.age(o),
    ]
}

// --- apps, batch, autoscaling, policy ----------------------------------------------------------

fn deployment_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    let (names, images) = container_cells(o.items("spec.template.spec.containers"));
    let selector = match o.at("spec.selector") {
        Some(s) => selector_string(s).unwrap_or_else(|| "<invalid>".to_string()),
        None => String::new(),
    };
    vec![
        name(o),
        format!(
            "{}/{}",
            o.i("status.readyReplicas"),
            o.int_or("spec.replicas", 1)
        )
        .into(),
        o.i("status.updatedReplicas").into(),
        o.i("status.availableReplicas").into(),
        ctx.age(o),
        names.into(),
        images.into(),
        selector.into(),
    ]
}

fn replica_set_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    let (names, images) = container_cells(o.items("spec.template.spec.containers"));
    vec![
        name(o),
        o.int_or("spec.replicas", 1).into(),
        o.i("status.replicas").into(),
        o.i("status.readyReplicas").into(),
        ctx.age(o),
        names.into(),
        images.into(),
        format_label_selector(o.at("spec.selector")).into(),
    ]
}

fn stateful_set_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    let (names, images) = container_cells(o.items("spec.template.spec.containers"));
    vec![
        name(o),
        format!(
            "{}/{}",
            o.i("status.readyReplicas"),
            o.int_or("spec.replicas", 1)
        )
        .into(),
        ctx.age(o),
        names.into(),
        images.into(),
    ]
}

fn daemon_set_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    let (names, images) = container_cells(o.items("spec.template.spec.containers"));
    vec![
        name(o),
        o.i("status.desiredNumberScheduled").into(),
        o.i("status.currentNumberScheduled").into(),
        o.i("status.numberReady").into(),
        o.i("status.updatedNumberScheduled").into(),
        o.i("status.numberAvailable").into(),
        format_labels(o.at("spec.template.spec.nodeSelector")).into(),
        ctx.age(o),
        names.into(),
        images.into(),
        format_label_selector(o.at("spec.selector")).into(),
    ]
}

fn controller_revision_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    let controller = o
        .items("metadata.ownerReferences")
        .iter()
        .find(|r| r.flag("controller") == Some(true))
        .map(|r| {
            let api_version = r.s("apiVersion");
            let group = match api_version.split_once('/') {
                Some((group, _)) => group,
                None => "",
            };
            let kind = r.s("kind");
            if kind.is_empty() && group.is_empty() {
                r.s("name").to_string()
            } else if group.is_empty() {
                format!("{}/{}", kind.to_lowercase(), r.s("name"))
            } else {
                format!(
                    "{}/{}",
                    format!("{kind}.{group}").to_lowercase(),
                    r.s("name")
                )
            }
        })
        .unwrap_or_else(|| "<none>".to_string());
    vec![
        name(o),
        controller.into(),
        o.i("revision").into(),
        ctx.age(o),
    ]
}

fn job_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    let succeeded = o.i("status.succeeded");
    let completions = match o.at("spec.completions") {
        Some(_) => format!("{succeeded}/{}", o.i("spec.completions")),
        None if o.at("spec.parallelism").is_none() => format!("{succeeded}/1"),
        None => {
            let parallelism = o.i("spec.parallelism");
            if parallelism > 1 {
                format!("{succeeded}/1 of {parallelism}")
            } else {
                format!("{succeeded}/1")
            }
        }
    };
    let start = parse_time(o.s("status.startTime"));
    let duration = match (start, parse_time(o.s("status.completionTime"))) {
        (None, _) => String::new(),
        (Some(start), None) => human_duration(ctx.now.signed_duration_since(start)),
        (Some(start), Some(end)) => human_duration(end.signed_duration_since(start)),
    };
    let conditions = o.items("status.conditions");
    let has = |kind: &str| {
        conditions
            .iter()
            .find(|c| c.s("type") == kind)
            .is_some_and(|c| c.s("status") == "True")
    };
    let status = if has("Complete") {
        "Complete"
    } else if has("Failed") {
        "Failed"
    } else if o.at("metadata.deletionTimestamp").is_some() {
        "Terminating"
    } else if has("Suspended") {
        "Suspended"
    } else if has("FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (names, images) = container_cells(o.items("spec.template.spec.containers"));
    vec![
        name(o),
        status.into(),
        completions.into(),
        duration.into(),
        ctx.age(o),
        names.into(),
        images.into(),
        format_label_selector(o.at("spec.selector")).into(),
    ]
}

fn cron_job_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    let last_schedule = match o.at("status.lastScheduleTime") {
        Some(_) => ctx.since(o.s("status.lastScheduleTime")),
        None => "<none>".to_string(),
    };
    let suspend = match o.flag("spec.suspend") {
        Some(true) => "True",
        // Defaulted to false.
        _ => "False",
    };
    let (names, images) =
        container_cells(o.items("spec.jobTemplate.spec.template.spec.containers"));
    vec![
        name(o),
        o.s("spec.schedule").into(),
        o.str_or("spec.timeZone", "<none>").into(),
        suspend.into(),
        o.len("status.active").into(),
        last_schedule.into(),
        ctx.age(o),
        names.into(),
        images.into(),
        format_label_selector(o.at("spec.jobTemplate.spec.selector")).into(),
    ]
}

fn hpa_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    let reference = format!(
        "{}/{}",
        o.s("spec.scaleTargetRef.kind"),
        o.s("spec.scaleTargetRef.name")
    );
    let (specs, statuses) = if o.s("apiVersion") == "autoscaling/v1" {
        hpa_v1_metrics(o)
    } else {
        (
            o.items("spec.metrics").to_vec(),
            o.items("status.currentMetrics").to_vec(),
        )
    };
    let min_pods = match o.at("spec.minReplicas") {
        Some(_) => o.i("spec.minReplicas").to_string(),
        None => "1".to_string(),
    };
    vec![
        name(o),
        reference.into(),
        format_hpa_metrics(&specs, &statuses).into(),
        min_pods.into(),
        o.i("spec.maxReplicas").into(),
        o.i("status.currentReplicas").into(),
        ctx.age(o),
    ]
}

/// An autoscaling/v1 HPA's CPU target and current CPU use, as autoscaling/v2 metrics.
fn hpa_v1_metrics(o: &Value) -> (Vec<Value>, Vec<Value>) {
    let mut specs = Vec::new();
    let mut statuses = Vec::new();
    if o.at("spec.targetCPUUtilizationPercentage").is_some() {
        specs.push(
            json!({"type": "Resource", "resource": {"name": "cpu", "target": {
                "type": "Utilization",
                "averageUtilization": o.i("spec.targetCPUUtilizationPercentage"),
            }}}),
        );
        if o.at("status.currentCPUUtilizationPercentage").is_some() {
            statuses.push(
                json!({"type": "Resource", "resource": {"name": "cpu", "current": {
                    "averageUtilization": o.i("status.currentCPUUtilizationPercentage"),
                }}}),
            );
        }
    }
    (specs, statuses)
}

fn format_hpa_metrics(specs: &[Value], statuses: &[Value]) -> String {
    const MAX: usize = 2;
    if specs.is_empty() {
        return "<none>".to_string();
    }
    let mut list: Vec<String> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        // The status with the same index, if it has the same source.
        let status = |source: &str| statuses.get(i).and_then(|s| s.at(source));
        let qty = |v: Option<&Value>| match v {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => "<nil>".to_string(),
        };
        let text = match spec.s("type") {
            kind @ ("External" | "Object") => {
                let source = if kind == "External" {
                    "external"
                } else {
                    "object"
                };
                if let Some(target) = spec.at(&format!("{source}.target.averageValue")) {
                    let current = status(source)
                        .and_then(|s| s.at("current.averageValue"))
                        .map(|q| qty(Some(q)))
                        .unwrap_or_else(|| "<unknown>".to_string());
                    format!("{current}/{} (avg)", qty(Some(target)))
                } else {
                    let current = status(source)
                        .map(|s| qty(s.at("current.value")))
                        .unwrap_or_else(|| "<unknown>".to_string());
                    format!(
                        "{current}/{}",
                        qty(spec.at(&format!("{source}.target.value")))
                    )
                }
            }
            "Pods" => {
                let current = status("pods")
                    .map(|s| qty(s.at("current.averageValue")))
                    .unwrap_or_else(|| "<unknown>".to_string());
                format!("{current}/{}", qty(spec.at("pods.target.averageValue")))
            }
            kind @ ("Resource" | "ContainerResource") => {
                let source = if kind == "Resource" {
                    "resource"
                } else {
                    "containerResource"
                };
                let resource = spec.s(&format!("{source}.name")).to_string();
                if let Some(target) = spec.at(&format!("{source}.target.averageValue")) {
                    let current = status(source)
                        .map(|s| qty(s.at("current.averageValue")))
                        .unwrap_or_else(|| "<unknown>".to_string());
                    format!("{resource}: {current}/{}", qty(Some(target)))
                } else {
                    let current = status(source)
                        .and_then(|s| s.at("current.averageUtilization"))
                        .and_then(Value::as_i64)
                        .map(|u| format!("{u}%"))
                        .unwrap_or_else(|| "<unknown>".to_string());
                    let target = spec
                        .at(&format!("{source}.target.averageUtilization"))
                        .and_then(Value::as_i64)
                        .map(|u| format!("{u}%"))
                        .unwrap_or_else(|| "<auto>".to_string());
                    format!("{resource}: {current}/{target}")
                }
            }
            _ => "<unknown type>".to_string(),
        };
        list.push(text);
    }
    let count = list.len();
    if count > MAX {
        list.truncate(MAX);
        format!("{} + {} more...", list.join(", "), count - MAX)
    } else {
        list.join(", ")
    }
}

fn pdb_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    let int_or_string = |path: &str| match o.at(path) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "N/A".to_string(),
    };
    vec![
        name(o),
        int_or_string("spec.minAvailable").into(),
        int_or_string("spec.maxUnavailable").into(),
        o.i("status.disruptionsAllowed").into(),
        ctx.age(o),
    ]
}

// --- networking, discovery -------------------------------------------------------------------

fn ingress_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    const MAX: usize = 3;
    let rules = o.items("spec.rules");
    let mut hosts: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if hosts.len() == MAX {
            more = true;
        }
        if !more && !rule.s("host").is_empty() {
            hosts.push(rule.s("host"));
        }
    }
    let hosts = if hosts.is_empty() {
        "*".to_string()
    } else if more {
        format!("{} + {} more...", hosts.join(","), rules.len() - MAX)
    } else {
        hosts.join(",")
    };
    let ports = if o.items("spec.tls").is_empty() {
        "80"
    } else {
        "80, 443"
    };
    vec![
        name(o),
        o.str_or("spec.ingressClassName", "<none>").into(),
        hosts.into(),
        load_balancer_ingress(o.items("status.loadBalancer.ingress"))
            .join(",")
            .into(),
        ports.into(),
        ctx.age(o),
    ]
}

fn ingress_class_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    let parameters = match o.at("spec.parameters") {
        Some(p) => {
            let mut text = p.s("kind").to_string();
            if let Some(group) = p.get("apiGroup").and_then(Value::as_str) {
                text = format!("{text}.{group}");
            }
            format!("{text}/{}", p.s("name"))
        }
        None => "<none>".to_string(),
    };
    vec![
        name(o),
        o.s("spec.controller").into(),
        parameters.into(),
        ctx.age(o),
    ]
}

fn network_policy_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    // The pod selector is a struct, never nil: a missing one formats as an empty selector.
    let empty = json!({});
    let selector = o.at("spec.podSelector").unwrap_or(&empty);
    vec![
        name(o),
        format_label_selector(Some(selector)).into(),
        ctx.age(o),
    ]
}

fn service_cidr_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    vec![
        name(o),
        strings(o.items("spec.cidrs")).join(",").into(),
        ctx.age(o),
    ]
}

fn ip_address_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    let parent = match o.at("spec.parentRef") {
        Some(p) => {
            let resource = if p.s("group").is_empty() {
                p.s("resource").to_string()
            } else {
                format!("{}.{}", p.s("resource"), p.s("group"))
            };
            let mut text = resource.to_lowercase();
            if !p.s("namespace").is_empty() {
                text = format!("{text}/{}", p.s("namespace"));
            }
            format!("{text}/{}", p.s("name"))
        }
        None => "<none>".to_string(),
    };
    vec![name(o), parent.into(), ctx.age(o)]
}

fn endpoint_slice_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    let ports: Vec<String> = o
        .items("ports")
        .iter()
        .map(
            |p| match (p.get("port").and_then(Value::as_i64), p.get("name")) {
                (Some(port), _) => port.to_string(),
                (None, Some(Value::String(name))) => name.clone(),
                _ => "*".to_string(),
            },
        )
        .collect();
    let addresses: Vec<String> = o
        .items("endpoints")
        .iter()
        .flat_map(|e| strings(e.items("addresses")))
        .map(str::to_string)
        .collect();
    vec![
        name(o),
        o.s("addressType").into(),
        list_with_more(ports).into(),
        list_with_more(addresses).into(),
        ctx.age(o),
    ]
}

/// `listWithMoreString` with a maximum of three entries; "<unset>" when empty.
fn list_with_more(list: Vec<String>) -> String {
    const MAX: usize = 3;
    if list.len() > MAX {
        format!("{} + {} more...", list[..MAX].join(","), list.len() - MAX)
    } else if list.is_empty() {
        "<unset>".to_string()
    } else {
        list.join(",")
    }
}

// --- rbac, certificates, coordination --------------------------------------------------------

fn role_binding_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    let mut users = Vec::new();
    let mut groups = Vec::new();
    let mut service_accounts = Vec::new();
    for subject in o.items("subjects") {
        match subject.s("kind") {
            "ServiceAccount" => {
                service_accounts.push(format!("{}/{}", subject.s("namespace"), subject.s("name")))
            }
            "User" => users.push(subject.s("name").to_string()),
            "Group" => groups.push(subject.s("name").to_string()),
            _ => {}
        }
    }
    vec![
        name(o),
        format!("{}/{}", o.s("roleRef.kind"), o.s("roleRef.name")).into(),
        ctx.age(o),
        users.join(", ").into(),
        groups.join(", ").into(),
        service_accounts.join(", ").into(),
    ]
}

fn csr_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    let conditions = o.items("status.conditions");
    let has = |kind: &str| conditions.iter().any(|c| c.s("type") == kind);
    let mut status = if has("Denied") {
        "Denied"
    } else if has("Approved") {
        "Approved"
    } else {
        "Pending"
    }
    .to_string();
    if has("Failed") {
        status.push_str(",Failed");
    }
    if !o.s("status.certificate").is_empty() {
        status.push_str(",Issued");
    }
    let requested = match o.at("spec.expirationSeconds") {
        Some(_) => human_duration(TimeDelta::seconds(o.i("spec.expirationSeconds"))),
        None => "<none>".to_string(),
    };
    vec![
        name(o),
        ctx.age(o),
        or_none(o.s("spec.signerName")),
        o.s("spec.username").into(),
        requested.into(),
        status.into(),
    ]
}

fn cluster_trust_bundle_cells(o: &Value, _ctx: &Ctx) -> Vec<Value> {
    vec![name(o), or_none(o.s("spec.signerName"))]
}

fn lease_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    vec![name(o), o.s("spec.holderIdentity").into(), ctx.age(o)]
}

fn lease_candidate_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    vec![
        name(o),
        o.s("spec.leaseName").into(),
        o.s("spec.binaryVersion").into(),
        o.s("spec.emulationVersion").into(),
        ctx.age(o),
    ]
}

// --- storage, scheduling, node ---------------------------------------------------------------

fn annotation_is_true(o: &Value, key: &str) -> bool {
    o.at("metadata.annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
        == Some("true")
}

fn storage_class_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    let mut display = o.s("metadata.name").to_string();
    if annotation_is_true(o, "storageclass.kubernetes.io/is-default-class")
        || annotation_is_true(o, "storageclass.beta.kubernetes.io/is-default-class")
    {
        display.push_str(" (default)");
    }
    vec![
        display.into(),
        o.s("provisioner").into(),
        o.str_or("reclaimPolicy", "Delete").into(),
        o.str_or("volumeBindingMode", "Immediate").into(),
        (o.flag("allowVolumeExpansion") == Some(true)).into(),
        ctx.age(o),
    ]
}

fn volume_attributes_class_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    let mut display = o.s("metadata.name").to_string();
    if annotation_is_true(o, "storage.kubernetes.io/is-default-class") {
        display.push_str(" (default)");
    }
    vec![display.into(), o.s("driverName").into(), ctx.age(o)]
}

fn volume_attachment_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    vec![
        name(o),
        o.s("spec.attacher").into(),
        o.s("spec.source.persistentVolumeName").into(),
        o.s("spec.nodeName").into(),
        (o.flag("status.attached") == Some(true)).into(),
        ctx.age(o),
    ]
}

fn csi_node_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    vec![name(o), o.len("spec.drivers").into(), ctx.age(o)]
}

fn csi_driver_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    let token_requests = match o.at("spec.tokenRequests") {
        Some(_) => o
            .items("spec.tokenRequests")
            .iter()
            .map(|t| t.s("audience"))
            .collect::<Vec<_>>()
            .join(","),
        None => "<unset>".to_string(),
    };
    let modes = strings(o.items("spec.volumeLifecycleModes")).join(",");
    vec![
        name(o),
        o.flag("spec.attachRequired").unwrap_or(true).into(),
        o.flag("spec.podInfoOnMount").unwrap_or(false).into(),
        o.flag("spec.storageCapacity").unwrap_or(false).into(),
        token_requests.into(),
        o.flag("spec.requiresRepublish").unwrap_or(false).into(),
        if modes.is_empty() {
            "<none>".to_string()
        } else {
            modes
        }
        .into(),
        ctx.age(o),
    ]
}

fn csi_storage_capacity_cells(o: &Value, _ctx: &Ctx) -> Vec<Value> {
    let capacity = match o.at("capacity") {
        Some(q) => quantity(Some(q)),
        None => "<unset>".to_string(),
    };
    vec![name(o), o.s("storageClassName").into(), capacity.into()]
}

fn priority_class_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    vec![
        name(o),
        o.i("value").into(),
        (o.flag("globalDefault") == Some(true)).into(),
        ctx.age(o),
        o.str_or("preemptionPolicy", "PreemptLowerPriority").into(),
    ]
}

fn runtime_class_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    vec![name(o), o.s("handler").into(), ctx.age(o)]
}

// --- admission, flow control, internal, resource, aggregation --------------------------------

fn webhook_configuration_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    vec![name(o), o.len("webhooks").into(), ctx.age(o)]
}

fn param_kind(o: &Value) -> String {
    match o.at("spec.paramKind") {
        Some(p) => format!("{}/{}", p.s("apiVersion"), p.s("kind")),
        None => "<unset>".to_string(),
    }
}

fn validating_admission_policy_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    vec![
        name(o),
        o.len("spec.validations").into(),
        param_kind(o).into(),
        ctx.age(o),
    ]
}

fn mutating_admission_policy_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    vec![
        name(o),
        o.len("spec.mutations").into(),
        param_kind(o).into(),
        ctx.age(o),
    ]
}

fn admission_policy_binding_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    let param = match o.at("spec.paramRef") {
        Some(p) if !p.s("name").is_empty() => {
            let namespace = if p.s("namespace").is_empty() {
                "*"
            } else {
                p.s("namespace")
            };
            format!("{namespace}/{}", p.s("name"))
        }
        Some(p) => match p.at("selector") {
            Some(selector) => go_label_selector_debug(selector),
            None => "<unset>".to_string(),
        },
        None => "<unset>".to_string(),
    };
    vec![
        name(o),
        o.s("spec.policyName").into(),
        param.into(),
        ctx.age(o),
    ]
}

/// The gogo-protobuf `String()` of a `metav1.LabelSelector`.
fn go_label_selector_debug(selector: &Value) -> String {
    let mut labels: Vec<(&String, &str)> = selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k, v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    labels.sort();
    let labels: String = labels.iter().map(|(k, v)| format!("{k}: {v},")).collect();
    let expressions: String = selector
        .items("matchExpressions")
        .iter()
        .map(|e| {
            format!(
                "LabelSelectorRequirement{{Key:{},Operator:{},Values:[{}],}},",
                e.s("key"),
                e.s("operator"),
                strings(e.items("values")).join(" ")
            )
        })
        .collect();
    format!(
        "&LabelSelector{{MatchLabels:map[string]string{{{labels}}},MatchExpressions:[]LabelSelectorRequirement{{{expressions}}},}}"
    )
}

fn flow_schema_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    let distinguisher = match o.at("spec.distinguisherMethod") {
        Some(d) => d.s("type").to_string(),
        None => "<none>".to_string(),
    };
    let missing = o
        .items("status.conditions")
        .iter()
        .find(|c| c.s("type") == "Dangling")
        .map(|c| c.s("status"))
        .unwrap_or("?");
    vec![
        name(o),
        o.s("spec.priorityLevelConfiguration.name").into(),
        matching_precedence(o).into(),
        distinguisher.into(),
        ctx.age(o),
        missing.into(),
    ]
}

/// A FlowSchema's matching precedence (defaulted to 1000).
fn matching_precedence(o: &Value) -> i64 {
    o.int_or("spec.matchingPrecedence", 1000)
}

fn priority_level_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    let none = || Value::from("<none>");
    let (mut shares, mut queues, mut hand_size, mut queue_length) =
        (none(), none(), none(), none());
    if let Some(limited) = o.at("spec.limited") {
        shares = limited.int_or("nominalConcurrencyShares", 30).into();
        if let Some(q) = limited.at("limitResponse.queuing") {
            queues = q.int_or("queues", 64).into();
            hand_size = q.int_or("handSize", 8).into();
            queue_length = q.int_or("queueLengthLimit", 50).into();
        }
    }
    vec![
        name(o),
        o.s("spec.type").into(),
        shares,
        queues,
        hand_size,
        queue_length,
        ctx.age(o),
    ]
}

fn storage_version_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    let versions: Vec<String> = o
        .items("status.storageVersions")
        .iter()
        .map(|sv| format!("{}={}", sv.s("apiServerID"), sv.s("encodingVersion")))
        .collect();
    vec![
        name(o),
        o.str_or("status.commonEncodingVersion", "<unset>").into(),
        list_with_more(versions).into(),
        ctx.age(o),
    ]
}

fn resource_claim_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    let deleted = o.at("metadata.deletionTimestamp").is_some();
    let mut states = Vec::new();
    if deleted {
        states.push("deleted");
    }
    if o.at("status.allocation").is_none() {
        if !deleted {
            states.push("pending");
        }
    } else {
        states.push("allocated");
        if !o.items("status.reservedFor").is_empty() {
            states.push("reserved");
        }
    }
    vec![name(o), states.join(",").into(), ctx.age(o)]
}

fn resource_slice_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    vec![
        name(o),
        o.s("spec.nodeName").into(),
        o.s("spec.driver").into(),
        o.s("spec.pool.name").into(),
        ctx.age(o),
    ]
}

fn api_service_cells(o: &Value, ctx: &Ctx) -> Vec<Value> {
    let service = match o.at("spec.service") {
        Some(s) => format!("{}/{}", s.s("namespace"), s.s("name")),
        None => "Local".to_string(),
    };
    let available = match o
        .items("status.conditions")
        .iter()
        .find(|c| c.s("type") == "Available")
    {
        Some(c) if c.s("status") == "True" => c.s("status").to_string(),
        Some(c) if !c.s("reason").is_empty() => format!("{} ({})", c.s("status"), c.s("reason")),
        Some(c) => c.s("status").to_string(),
        None => "Unknown".to_string(),
    };
    vec![name(o), service.into(), available.into(), ctx.age(o)]
}

// ---------------------------------------------------------------------------------------------
// Shared formatting

fn or_none(s: &str) -> Value {
    if s.is_empty() { "<none>" } else { s }.into()
}

fn strings(values: &[Value]) -> Vec<&str> {
    values.iter().filter_map(Value::as_str).collect()
}

/// `layoutContainerCells`: container names and images, comma separated.
fn container_cells(containers: &[Value]) -> (String, String) {
    let names: Vec<&str> = containers.iter().map(|c| c.s("name")).collect();
    let images: Vec<&str> = containers.iter().map(|c| c.s("image")).collect();
    (names.join(","), images.join(","))
}

/// `labels.FormatLabels`: sorted `k=v` pairs, or "<none>".
fn format_labels(labels: Option<&Value>) -> String {
    let mut pairs: Vec<String> = labels
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    if pairs.is_empty() {
        return "<none>".to_string();
    }
    pairs.sort();
    pairs.join(",")
}

/// `metav1.FormatLabelSelector`: "<none>" for a missing or empty selector, "<error>" for an
/// invalid one.
fn format_label_selector(selector: Option<&Value>) -> String {
    let Some(selector) = selector else {
        return "<none>".to_string();
    };
    match selector_string(selector) {
        Some(s) if s.is_empty() => "<none>".to_string(),
        Some(s) => s,
        None => "<error>".to_string(),
    }
}

/// `metav1.LabelSelectorAsSelector(selector).String()`; `None` for an invalid selector.
fn selector_string(selector: &Value) -> Option<String> {
    let mut requirements: Vec<(String, String)> = Vec::new();
    if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in labels {
            requirements.push((k.clone(), format!("{k}={}", v.as_str().unwrap_or(""))));
        }
    }
    for e in selector.items("matchExpressions") {
        let key = e.s("key");
        let mut values = strings(e.items("values"));
        let text = match e.s("operator") {
            op @ ("In" | "NotIn") => {
                if values.is_empty() {
                    return None;
                }
                values.sort_unstable();
                let op = if op == "In" { "in" } else { "notin" };
                format!("{key} {op} ({})", values.join(","))
            }
            "Exists" if values.is_empty() => key.to_string(),
            "DoesNotExist" if values.is_empty() => format!("!{key}"),
            _ => return None,
        };
        requirements.push((key.to_string(), text));
    }
    requirements.sort_by(|a, b| a.0.cmp(&b.0));
    Some(
        requirements
            .into_iter()
            .map(|(_, text)| text)
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// An RFC 3339 time; `None` when missing, unparsable or Go's zero time.
fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    if s.is_empty() {
        return None;
    }
    // Go's zero time.Time, 0001-01-01T00:00:00Z, is "unset".
    const ZERO_UNIX_SECONDS: i64 = -62_135_596_800;
    let t = DateTime::parse_from_rfc3339(s).ok()?.with_timezone(&Utc);
    (t.timestamp() != ZERO_UNIX_SECONDS || t.timestamp_subsec_nanos() != 0).then_some(t)
}

/// Dotted-path access to JSON objects; `null` counts as missing, like a nil Go pointer.
trait JsonPathExt {
    fn at(&self, path: &str) -> Option<&Value>;
    /// The string at `path`, or "".
    fn s(&self, path: &str) -> &str;
    /// The string at `path`, or `default` when missing (a defaulted field).
    fn str_or<'a>(&'a self, path: &str, default: &'a str) -> &'a str;
    /// The integer at `path`, or 0.
    fn i(&self, path: &str) -> i64;
    /// The integer at `path`, or `default` when missing (a defaulted field).
    fn int_or(&self, path: &str, default: i64) -> i64;
    fn flag(&self, path: &str) -> Option<bool>;
    /// The array at `path`, or an empty slice.
    fn items(&self, path: &str) -> &[Value];
    /// The number of entries of the array or object at `path`.
    fn len(&self, path: &str) -> i64;
}

impl JsonPathExt for Value {
    fn at(&self, path: &str) -> Option<&Value> {
        path.split('.')
            .try_fold(self, |v, key| v.get(key))
            .filter(|v| !v.is_null())
    }

    fn s(&self, path: &str) -> &str {
        self.at(path).and_then(Value::as_str).unwrap_or("")
    }

    fn str_or<'a>(&'a self, path: &str, default: &'a str) -> &'a str {
        self.at(path).and_then(Value::as_str).unwrap_or(default)
    }

    fn i(&self, path: &str) -> i64 {
        self.int_or(path, 0)
    }

    fn int_or(&self, path: &str, default: i64) -> i64 {
        match self.at(path) {
            Some(v) => v
                .as_i64()
                .or_else(|| v.as_f64().map(|f| f as i64))
                .unwrap_or(0),
            None => default,
        }
    }

    fn flag(&self, path: &str) -> Option<bool> {
        self.at(path).and_then(Value::as_bool)
    }

    fn items(&self, path: &str) -> &[Value] {
        self.at(path)
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    fn len(&self, path: &str) -> i64 {
        let n = match self.at(path) {
            Some(Value::Array(a)) => a.len(),
            Some(Value::Object(m)) => m.len(),
            _ => 0,
        };
        i64::try_from(n).unwrap_or(i64::MAX)
    }
}

// ---------------------------------------------------------------------------------------------
// CustomResourceDefinition columns (apiextensions-apiserver's tableconvertor)

struct CustomColumn {
    name: String,
    kind: String,
    format: String,
    description: String,
    priority: i64,
    path: Vec<Step>,
}

struct CustomColumns {
    columns: Vec<CustomColumn>,
}

impl CustomColumns {
    /// The columns of `additionalPrinterColumns`; an empty list gets upstream's default Age
    /// column. `None` when a JSONPath does not parse.
    fn new(defs: &[Value]) -> Option<CustomColumns> {
        let default_age = [json!({
            "name": "Age",
            "type": "date",
            "description": D_AGE,
            "jsonPath": ".metadata.creationTimestamp",
        })];
        let defs = if defs.is_empty() {
            &default_age[..]
        } else {
            defs
        };
        let columns = defs
            .iter()
            .map(|d| {
                let json_path = d.s("jsonPath");
                let description = match d.s("description") {
                    "" => format!(
                        "Custom resource definition column (in JSONPath format): {json_path}"
                    ),
                    text => text.to_string(),
                };
                Some(CustomColumn {
                    name: d.s("name").to_string(),
                    kind: d.s("type").to_string(),
                    format: d.s("format").to_string(),
                    description,
                    priority: d.i("priority"),
                    path: parse_json_path(json_path)?,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(CustomColumns { columns })
    }

    fn definitions(&self) -> Value {
        let mut defs = vec![json!({
            "name": NAME_COLUMN.name,
            "type": NAME_COLUMN.kind,
            "format": NAME_COLUMN.format,
            "description": NAME_COLUMN.description,
            "priority": 0,
        })];
        defs.extend(self.columns.iter().map(|c| {
            json!({
                "name": c.name,
                "type": c.kind,
                "format": c.format,
                "description": c.description,
                "priority": c.priority,
            })
        }));
        Value::Array(defs)
    }
}

fn custom_rows(
    custom: &CustomColumns,
    items: &[Value],
    include: IncludeObject,
    ctx: &Ctx,
) -> Value {
    Value::Array(
        items
            .iter()
            .map(|item| {
                let mut cells = vec![name(item)];
                cells.extend(custom.columns.iter().map(|c| custom_cell(c, item, ctx)));
                table_row(cells, None, item, include)
            })
            .collect(),
    )
}

/// `cellForJSONValue`, and JSONPath's text output for `string` columns.
fn custom_cell(column: &CustomColumn, item: &Value, ctx: &Ctx) -> Value {
    let results = eval_json_path(&column.path, item);
    let Some(value) = results.first() else {
        return Value::Null;
    };
    match (column.kind.as_str(), value) {
        ("string", v) => go_text(v).into(),
        ("integer", Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .map_or(Value::Null, Value::from),
        ("number", Value::Number(n)) => match n.as_i64() {
            Some(i) => i.into(),
            None => n.as_f64().map_or(Value::Null, go_float_value),
        },
        ("boolean", Value::Bool(b)) => (*b).into(),
        ("date", Value::String(s)) => {
            if s.is_empty() || s == "null" {
                "<unknown>".into()
            } else if DateTime::parse_from_rfc3339(s).is_err() {
                "<invalid>".into()
            } else {
                ctx.since(s).into()
            }
        }
        _ => Value::Null,
    }
}

/// A float64 cell as Go's encoding/json writes it (integral values without a fraction).
fn go_float_value(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        Value::from(f as i64)
    } else {
        Value::from(f)
    }
}

/// What client-go's JSONPath prints for one value: strings as they are, numbers and booleans
/// with Go's `fmt`, objects and arrays as compact JSON, and "<no value>" for null.
fn go_text(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (None, Some(u), _) => u.to_string(),
            (None, None, Some(f)) => go_fmt_float(f),
            _ => n.to_string(),
        },
        Value::Array(_) | Value::Object(_) => {
            let mut out = String::new();
            go_json(v, &mut out);
            out
        }
    }
}

/// Go's `%v` of a float64 (`%g` with the shortest precision): exponent form below 1e-4 and
/// from 1e6 on.
fn go_fmt_float(f: f64) -> String {
    if f == 0.0 || !f.is_finite() {
        return format!("{f}");
    }
    let scientific = format!("{f:e}");
    let exp = scientific
        .split_once('e')
        .and_then(|(_, e)| e.parse::<i32>().ok())
        .unwrap_or(0);
    if (-4..6).contains(&exp) {
        format!("{f}")
    } else {
        go_exponent(&scientific, 2)
    }
}

/// Rewrites Rust's `1.5e-7` as Go's `1.5e-07` (`min_digits` digits in the exponent at least).
fn go_exponent(rust: &str, min_digits: usize) -> String {
    match rust.split_once('e') {
        Some((mantissa, exp)) => {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            format!("{mantissa}e{sign}{digits:0>min_digits$}")
        }
        None => rust.to_string(),
    }
}

/// Go's `json.Marshal` of a decoded JSON value: keys sorted, HTML characters escaped.
fn go_json(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => out.push_str(&i.to_string()),
            (None, Some(u), _) => out.push_str(&u.to_string()),
            (None, None, Some(f)) => {
                let abs = f.abs();
                if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
                    out.push_str(&go_exponent(&format!("{f:e}"), 1));
                } else {
                    out.push_str(&format!("{f}"));
                }
            }
            _ => out.push_str(&n.to_string()),
        },
        Value::String(s) => go_json_string(s, out),
        Value::Array(a) => {
            out.push('[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_json(item, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_json_string(k, out);
                out.push(':');
                if let Some(item) = m.get(k) {
                    go_json(item, out);
                }
            }
            out.push('}');
        }
    }
}

fn go_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

// ---------------------------------------------------------------------------------------------
// JSONPath, the subset CRD printer columns use

#[derive(Clone, Debug, PartialEq)]
enum Step {
    /// `.name` or `['name']`; an empty name keeps the current value.
    Field(String),
    /// `.*` or `[*]`
    Wildcard,
    /// `[start:end]`; a plain index `[i]` is `[i:i+1]`.
    Slice(Option<i64>, Option<i64>),
    /// `[?(@.path op literal)]`, or `[?(@.path)]` for existence.
    Filter(Vec<Step>, Option<(CompareOp, Value)>),
    /// `..`: the current value and everything below it.
    Descendants,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// Parses a printer column's JSONPath (without the surrounding braces); `None` when it is not
/// in the supported subset.
fn parse_json_path(path: &str) -> Option<Vec<Step>> {
    let chars: Vec<char> = path.trim().chars().collect();
    let mut steps = Vec::new();
    let mut i = 0;
    if matches!(chars.first(), Some('$') | Some('@')) {
        i = 1;
    }
    while i < chars.len() {
        match chars[i] {
            '.' => {
                if chars.get(i + 1) == Some(&'.') {
                    steps.push(Step::Descendants);
                    i += 2;
                    if chars.get(i) == Some(&'[') {
                        continue;
                    }
                } else {
                    i += 1;
                }
                let (field, next) = parse_field(&chars, i);
                steps.push(if field == "*" {
                    Step::Wildcard
                } else {
                    Step::Field(field)
                });
                i = next;
            }
            '[' => {
                let end = matching_bracket(&chars, i)?;
                let inner: String = chars[i + 1..end].iter().collect();
                steps.push(parse_bracket(inner.trim())?);
                i = end + 1;
            }
            c if c.is_alphanumeric() || c == '_' => {
                let (field, next) = parse_field(&chars, i);
                steps.push(Step::Field(field));
                i = next;
            }
            _ => return None,
        }
    }
    Some(steps)
}

/// A field name up to the next `.` or `[`; a backslash escapes the next character.
fn parse_field(chars: &[char], mut i: usize) -> (String, usize) {
    let mut field = String::new();
    while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
        if chars[i] == '\\' && i + 1 < chars.len() {
            i += 1;
        }
        field.push(chars[i]);
        i += 1;
    }
    (field, i)
}

fn matching_bracket(chars: &[char], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    for (j, &c) in chars.iter().enumerate().skip(open) {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '\'' | '"' => quote = Some(c),
                '[' => depth += 1,
                ']' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(j);
                    }
                }
                _ => {}
            },
        }
    }
    None
}

fn parse_bracket(inner: &str) -> Option<Step> {
    if inner == "*" {
        return Some(Step::Wildcard);
    }
    if let Some(filter) = inner.strip_prefix("?(").and_then(|f| f.strip_suffix(')')) {
        return parse_filter(filter.trim());
    }
    if let Some(name) = unquote(inner) {
        return Some(Step::Field(name));
    }
    let number = |s: &str| -> Option<Option<i64>> {
        let s = s.trim();
        if s.is_empty() {
            Some(None)
        } else {
            s.parse::<i64>().ok().map(Some)
        }
    };
    let parts: Vec<&str> = inner.split(':').collect();
    match parts.as_slice() {
        [index] => {
            let index = number(index)??;
            Some(Step::Slice(
                Some(index),
                Some(if index == -1 {
                    i64::MAX
                } else {
                    index.saturating_add(1)
                }),
            ))
        }
        [start, end] => Some(Step::Slice(number(start)?, number(end)?)),
        _ => None,
    }
}

fn unquote(s: &str) -> Option<String> {
    let quote = s.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let body = s.strip_prefix(quote)?.strip_suffix(quote)?;
    (!body.contains(quote)).then(|| body.to_string())
}

fn parse_filter(filter: &str) -> Option<Step> {
    const OPS: &[(&str, CompareOp)] = &[
        ("==", CompareOp::Eq),
        ("!=", CompareOp::Ne),
        ("<=", CompareOp::Le),
        (">=", CompareOp::Ge),
        ("<", CompareOp::Lt),
        (">", CompareOp::Gt),
    ];
    let found = OPS
        .iter()
        .filter_map(|(text, op)| filter.find(text).map(|at| (at, *text, *op)))
        .min_by_key(|(at, text, _)| (*at, usize::MAX - text.len()));
    let (left, comparison) = match found {
        Some((at, text, op)) => {
            let right = filter[at + text.len()..].trim();
            let literal = match unquote(right) {
                Some(s) => Value::String(s),
                None => serde_json::from_str::<Value>(right).ok()?,
            };
            (filter[..at].trim(), Some((op, literal)))
        }
        None => (filter, None),
    };
    let path = parse_json_path(left.strip_prefix('@')?)?;
    Some(Step::Filter(path, comparison))
}

fn eval_json_path<'a>(steps: &[Step], root: &'a Value) -> Vec<&'a Value> {
    let mut current = vec![root];
    for step in steps {
        let mut next = Vec::new();
        for value in current {
            apply_step(step, value, &mut next);
        }
        current = next;
    }
    current
}

fn apply_step<'a>(step: &Step, value: &'a Value, out: &mut Vec<&'a Value>) {
    match step {
        Step::Field(name) if name.is_empty() => out.push(value),
        Step::Field(name) => {
            if let Some(v) = value.as_object().and_then(|m| m.get(name)) {
                out.push(v);
            }
        }
        Step::Wildcard => match value {
            Value::Object(m) => out.extend(m.values()),
            Value::Array(a) => out.extend(a.iter()),
            _ => {}
        },
        Step::Slice(start, end) => {
            if let Value::Array(a) = value {
                let len = i64::try_from(a.len()).unwrap_or(i64::MAX);
                let clamp = |i: i64| {
                    if i < 0 {
                        i.saturating_add(len).max(0)
                    } else {
                        i.min(len)
                    }
                };
                let from = clamp(start.unwrap_or(0));
                let to = clamp(end.unwrap_or(len));
                if start.is_some_and(|s| s >= len || s < -len) {
                    return;
                }
                for i in from..to {
                    if let Some(v) = usize::try_from(i).ok().and_then(|i| a.get(i)) {
                        out.push(v);
                    }
                }
            }
        }
        Step::Filter(path, comparison) => {
            let candidates: Vec<&Value> = match value {
                Value::Array(a) => a.iter().collect(),
                Value::Object(m) => m.values().collect(),
                _ => Vec::new(),
            };
            for candidate in candidates {
                let found = eval_json_path(path, candidate);
                let pass = match (comparison, found.as_slice()) {
                    (None, found) => !found.is_empty(),
                    (Some((op, literal)), [left]) => compare(left, *op, literal),
                    _ => false,
                };
                if pass {
                    out.push(candidate);
                }
            }
        }
        Step::Descendants => descendants(value, out),
    }
}

fn descendants<'a>(value: &'a Value, out: &mut Vec<&'a Value>) {
    let children: Vec<&Value> = match value {
        Value::Object(m) => m.values().collect(),
        Value::Array(a) => a.iter().collect(),
        _ => return,
    };
    if children.is_empty() {
        return;
    }
    out.push(value);
    for child in children {
        descendants(child, out);
    }
}

fn compare(left: &Value, op: CompareOp, right: &Value) -> bool {
    use std::cmp::Ordering;
    let ordering = match (left, right) {
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (Value::Number(a), Value::Number(b)) => a
            .as_f64()
            .zip(b.as_f64())
            .and_then(|(a, b)| a.partial_cmp(&b)),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        _ => None,
    };
    match (op, ordering) {
        (CompareOp::Eq, Some(o)) => o == Ordering::Equal,
        (CompareOp::Ne, Some(o)) => o != Ordering::Equal,
        (CompareOp::Ne, None) => true,
        (CompareOp::Lt, Some(o)) => o == Ordering::Less,
        (CompareOp::Le, Some(o)) => o != Ordering::Greater,
        (CompareOp::Gt, Some(o)) => o == Ordering::Greater,
        (CompareOp::Ge, Some(o)) => o != Ordering::Less,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn upstream_dir() -> PathBuf {
        PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/upstream"
        ))
    }

    fn load(relative: &str) -> Value {
        let path = upstream_dir().join(relative);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
    }

    fn time(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("test timestamp")
            .with_timezone(&Utc)
    }

    /// Shortly after the golden captures were taken.
    fn capture_now() -> DateTime<Utc> {
        time("2026-11-28T08:50:51Z")
    }

    /// `(group, resource)` of a request path such as `/apis/apps/v1/namespaces/x/deployments`.
    fn group_resource(path: &str) -> (String, String) {
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let (group, rest) = if parts[0] == "api" {
            ("", &parts[2..])
        } else {
            (parts[1], &parts[3..])
        };
        let rest = if rest[0] == "namespaces" && rest.len() >= 3 {
            &rest[2..]
        } else {
            rest
        };
        (group.to_string(), rest[0].to_string())
    }

    /// The widgets CRD's additionalPrinterColumns, as captured.
    fn widget_columns() -> Vec<Value> {
        let crds = load("table/customresourcedefinitions-includeObject-Object.json");
        crds["response"]["body"]["rows"][0]["object"]["spec"]["versions"][0]
            ["additionalPrinterColumns"]
            .as_array()
            .expect("printer columns")
            .clone()
    }

    /// Columns whose cells are relative to the time of the request.
    const TIME_COLUMNS: &[&str] = &[
        "Age",
        "Last Seen",
        "First Seen",
        "Duration",
        "Last Schedule",
    ];

    fn is_human_duration(s: &str) -> bool {
        if s == "<invalid>" || s == "<unknown>" {
            return true;
        }
        let units = ['y', 'd', 'h', 'm', 's'];
        let mut rest = s;
        let mut last_unit = None;
        if rest.is_empty() {
            return false;
        }
        while !rest.is_empty() {
            let digits = rest.chars().take_while(char::is_ascii_digit).count();
            let Some(unit) = rest[digits..].chars().next() else {
                return false;
            };
            let Some(position) = units.iter().position(|u| *u == unit) else {
                return false;
            };
            if digits == 0 || last_unit.is_some_and(|l| l >= position) {
                return false;
            }
            last_unit = Some(position);
            rest = &rest[digits + 1..];
        }
        true
    }

    /// Replaces the cells of time-relative columns by a marker, after checking that both tables
    /// have a human duration (or nothing, or "<none>") there.
    fn normalize_times(table: &mut Value) {
        let columns: Vec<String> = table["columnDefinitions"]
            .as_array()
            .map(|c| {
                c.iter()
                    .map(|c| c["name"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default();
        let Some(rows) = table["rows"].as_array_mut() else {
            return;
        };
        for row in rows {
            let Some(cells) = row["cells"].as_array_mut() else {
                continue;
            };
            for (i, cell) in cells.iter_mut().enumerate() {
                let is_time = columns
                    .get(i)
                    .is_some_and(|c| TIME_COLUMNS.contains(&c.as_str()));
                if !is_time {
                    continue;
                }
                let text = cell.as_str().expect("time cells are strings");
                assert!(
                    text.is_empty() || text == "<none>" || is_human_duration(text),
                    "{text:?} is no human duration"
                );
                if !text.is_empty() && text != "<none>" {
                    *cell = json!("<time>");
                }
            }
        }
    }

    fn render_capture_items(
        body: &Value,
        path: &str,
        items: &[Value],
        include: IncludeObject,
        now: DateTime<Utc>,
    ) -> Value {
        let (group, resource) = group_resource(path);
        let custom = (group == "golden.example.com").then(widget_columns);
        render_table(
            &group,
            &resource,
            items,
            include,
            body["metadata"].clone(),
            custom.as_deref(),
            now,
        )
    }

    fn capture_files(suffix: &str) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(upstream_dir().join("table"))
            .expect("upstream/table")
            .map(|e| e.expect("dir entry").path())
            .filter(|p| p.to_string_lossy().ends_with(suffix))
            .collect();
        files.sort();
        files
    }

    fn relative(p: &std::path::Path) -> String {
        format!(
            "table/{}",
            p.file_name().expect("file name").to_string_lossy()
        )
    }

    #[test]
    fn include_object_captures_match_upstream() {
        let files = capture_files("-includeObject-Object.json");
        assert!(files.len() >= 23, "only {} captures", files.len());
        for file in files {
            let name = relative(&file);
            let capture = load(&name);
            let body = &capture["response"]["body"];
            let items: Vec<Value> = body["rows"]
                .as_array()
                .expect("rows")
                .iter()
                .map(|r| r["object"].clone())
                .collect();
            let path = capture["request"]["path"].as_str().expect("path");
            let mut ours =
                render_capture_items(body, path, &items, IncludeObject::Object, Utc::now());
            assert_eq!(
                ours["columnDefinitions"], body["columnDefinitions"],
                "{name}: column definitions"
            );
            let mut theirs = body.clone();
            normalize_times(&mut ours);
            normalize_times(&mut theirs);
            assert_eq!(
                serde_json::to_string(&ours).expect("json"),
                serde_json::to_string(&theirs).expect("json"),
                "{name}"
            );
        }
    }

    #[test]
    fn include_object_captures_match_exactly_at_capture_time() {
        for file in capture_files("-includeObject-Object.json") {
            let name = relative(&file);
            let capture = load(&name);
            let body = &capture["response"]["body"];
            let items: Vec<Value> = body["rows"]
                .as_array()
                .expect("rows")
                .iter()
                .map(|r| r["object"].clone())
                .collect();
            let path = capture["request"]["path"].as_str().expect("path");
            let ours =
                render_capture_items(body, path, &items, IncludeObject::Object, capture_now());
            assert_eq!(
                serde_json::to_string(&ours).expect("json"),
                serde_json::to_string(body).expect("json"),
                "{name}"
            );
        }
    }

    /// The default (`includeObject=Metadata`) captures, built from the objects of the
    /// `includeObject=Object` captures.
    #[test]
    fn metadata_captures_match_upstream() {
        let mut checked = 0;
        for object_file in capture_files("-includeObject-Object.json") {
            let object_name = relative(&object_file);
            let plain_names: Vec<String> = if object_name.starts_with("table/pods-") {
                vec![
                    "table/pods.json".to_string(),
                    "table/pods-accept-v1-only.json".to_string(),
                    "table/pod-single.json".to_string(),
                ]
            } else {
                vec![object_name.replace("-includeObject-Object", "")]
            };
            let objects = load(&object_name);
            let all_items: Vec<Value> = objects["response"]["body"]["rows"]
                .as_array()
                .expect("rows")
                .iter()
                .map(|r| r["object"].clone())
                .collect();
            for plain_name in plain_names {
                let capture = load(&plain_name);
                let body = &capture["response"]["body"];
                // Feed exactly the objects the capture lists (a single GET lists one).
                let items: Vec<Value> = body["rows"]
                    .as_array()
                    .expect("rows")
                    .iter()
                    .map(|r| {
                        let wanted = &r["object"]["metadata"]["name"];
                        all_items
                            .iter()
                            .find(|o| &o["metadata"]["name"] == wanted)
                            .cloned()
                            .expect("object in the includeObject capture")
                    })
                    .collect();
                let path = capture["request"]["path"].as_str().expect("path");
                let mut ours =
                    render_capture_items(body, path, &items, IncludeObject::default(), Utc::now());
                assert_eq!(
                    ours["columnDefinitions"], body["columnDefinitions"],
                    "{plain_name}: column definitions"
                );
                let mut theirs = body.clone();
                normalize_times(&mut ours);
                normalize_times(&mut theirs);
                assert_eq!(
                    serde_json::to_string(&ours).expect("json"),
                    serde_json::to_string(&theirs).expect("json"),
                    "{plain_name}"
                );
                let exact = render_capture_items(
                    body,
                    path,
                    &items,
                    IncludeObject::default(),
                    capture_now(),
                );
                assert_eq!(&exact, body, "{plain_name} at capture time");
                checked += 1;
            }
        }
        assert!(checked >= 25, "checked {checked}");
    }

    #[test]
    fn paged_configmap_table_keeps_list_metadata() {
        let capture = load("list/configmaps-limit2-page1-table.json");
        let body = &capture["response"]["body"];
        let objects = load("table/configmaps-includeObject-Object.json");
        let items: Vec<Value> = body["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .filter_map(|r| {
                objects["response"]["body"]["rows"]
                    .as_array()?
                    .iter()
                    .map(|o| o["object"].clone())
                    .find(|o| o["metadata"]["name"] == r["object"]["metadata"]["name"])
            })
            .collect();
        assert_eq!(items.len(), 2);
        let ours = render_table(
            "",
            "configmaps",
            &items,
            IncludeObject::Metadata,
            body["metadata"].clone(),
            None,
            capture_now(),
        );
        assert_eq!(ours["metadata"], body["metadata"]);
        assert_eq!(ours["columnDefinitions"], body["columnDefinitions"]);
        for (a, b) in ours["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .zip(body["rows"].as_array().expect("rows"))
        {
            assert_eq!(a["cells"][0], b["cells"][0]);
            assert_eq!(a["cells"][1], b["cells"][1]);
            assert_eq!(a["object"]["kind"], "PartialObjectMetadata");
        }
    }

    #[test]
    fn human_duration_matches_upstream() {
        let cases: &[(i64, &str)] = &[
            (-3, "<invalid>"),
            (-2, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (1, "1s"),
            (70, "70s"),
            (119, "119s"),
            (120, "2m"),
            (190, "3m10s"),
            (200, "3m20s"),
            (599, "9m59s"),
            (600, "10m"),
            (70 * 60, "70m"),
            (179 * 60 + 59, "179m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 30 * 60, "3h30m"),
            (7 * 3600 + 59 * 60, "7h59m"),
            (8 * 3600, "8h"),
            (47 * 3600, "47h"),
            (48 * 3600, "2d"),
            (49 * 3600, "2d1h"),
            ((2 * 24 + 5) * 3600, "2d5h"),
            ((7 * 24 + 23) * 3600, "7d23h"),
            ((8 * 24 + 2) * 3600, "8d"),
            ((367 * 24 + 2) * 3600, "367d"),
            ((729 * 24) * 3600, "729d"),
            ((365 * 2 * 24) * 3600, "2y"),
            ((365 * 2 * 24 + 25) * 3600, "2y1d"),
            ((365 * 8 * 24 + 2) * 3600, "8y"),
            ((365 * 300 * 24) * 3600, "292y"),
        ];
        for (seconds, want) in cases {
            assert_eq!(
                human_duration(TimeDelta::seconds(*seconds)),
                *want,
                "{seconds}s"
            );
        }
        // Sub-second parts truncate toward zero, as Go's int(d.Seconds()) does.
        assert_eq!(human_duration(TimeDelta::milliseconds(1999)), "1s");
        assert_eq!(human_duration(TimeDelta::milliseconds(-1999)), "0s");
        assert_eq!(human_duration(TimeDelta::milliseconds(-2000)), "<invalid>");
    }

    #[test]
    fn include_object_parsing() {
        assert_eq!(IncludeObject::parse(None), Ok(IncludeObject::Metadata));
        assert_eq!(IncludeObject::parse(Some("")), Ok(IncludeObject::Metadata));
        assert_eq!(
            IncludeObject::parse(Some("Metadata")),
            Ok(IncludeObject::Metadata)
        );
        assert_eq!(IncludeObject::parse(Some("None")), Ok(IncludeObject::None));
        assert_eq!(
            IncludeObject::parse(Some("Object")),
            Ok(IncludeObject::Object)
        );
        assert_eq!(
            IncludeObject::parse(Some("object")),
            Err("unrecognized includeObject value: \"object\"".to_string())
        );
    }

    fn now() -> DateTime<Utc> {
        time("2030-01-01T00:00:00Z")
    }

    /// Renders one object with a built-in printer and returns (column names, cells).
    fn one(group: &str, resource: &str, object: Value) -> (Vec<String>, Vec<Value>) {
        let table = render_table(
            group,
            resource,
            &[object],
            IncludeObject::None,
            json!({}),
            None,
            now(),
        );
        let names = table["columnDefinitions"]
            .as_array()
            .expect("columns")
            .iter()
            .map(|c| c["name"].as_str().expect("name").to_string())
            .collect();
        let cells = table["rows"][0]["cells"].as_array().expect("cells").clone();
        assert_eq!(table["rows"][0]["object"], Value::Null);
        (names, cells)
    }

    fn cells(group: &str, resource: &str, object: Value) -> Vec<Value> {
        one(group, resource, object).1
    }

    fn pod(status: Value) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "creationTimestamp": "2029-12-31T23:59:00Z"},
            "spec": {"containers": [{"name": "a", "image": "busybox"}, {"name": "b", "image": "nginx"}]},
            "status": status,
        })
    }

    #[test]
    fn pod_running_with_restarts() {
        let c = cells(
            "",
            "pods",
            pod(json!({
                "phase": "Running",
                "podIPs": [{"ip": "10.1.0.5"}, {"ip": "fd00::5"}],
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [
                    {"name": "a", "ready": true, "restartCount": 2, "state": {"running": {}},
                     "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2029-12-31T23:55:00Z"}}},
                    {"name": "b", "ready": true, "restartCount": 1, "state": {"running": {}}},
                ],
            })),
        );
        assert_eq!(
            c,
            vec![
                json!("p"),
                json!("2/2"),
                json!("Running"),
                json!("3 (5m ago)"),
                json!("60s"),
                json!("10.1.0.5"),
                json!("<none>"),
                json!("<none>"),
                json!("<none>"),
            ]
        );
    }

    #[test]
    fn pod_waiting_terminated_and_completed() {
        let crash = pod(json!({"phase": "Running", "containerStatuses": [
            {"name": "a", "ready": false, "restartCount": 4, "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
            {"name": "b", "ready": true, "state": {"running": {}}},
        ]}));
        let c = cells("", "pods", crash);
        assert_eq!(c[1], json!("1/2"));
        assert_eq!(c[2], json!("CrashLoopBackOff"));
        // No lastState: no "(... ago)".
        assert_eq!(c[3], json!("4"));

        let signal = pod(json!({"phase": "Failed", "containerStatuses": [
            {"name": "a", "state": {"terminated": {"exitCode": 137, "signal": 9}}},
        ]}));
        assert_eq!(cells("", "pods", signal)[2], json!("Signal:9"));

        let exit = pod(json!({"phase": "Failed", "containerStatuses": [
            {"name": "a", "state": {"terminated": {"exitCode": 3}}},
        ]}));
        assert_eq!(cells("", "pods", exit)[2], json!("ExitCode:3"));

        let completed_but_running = pod(json!({"phase": "Running", "containerStatuses": [
            {"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
            {"name": "b", "ready": true, "state": {"running": {}}},
        ]}));
        // Statuses are walked from the last; the first container's "Completed" wins, but a
        // running container turns it back to NotReady without a Ready condition.
        assert_eq!(
            cells("", "pods", completed_but_running)[2],
            json!("NotReady")
        );
    }

    #[test]
    fn pod_init_containers_and_sidecars() {
        let mut p = pod(json!({"phase": "Pending", "initContainerStatuses": [
            {"name": "init1", "state": {"terminated": {"exitCode": 0}}},
            {"name": "init2", "state": {"waiting": {"reason": "PodInitializing"}}},
        ]}));
        p["spec"]["initContainers"] = json!([{"name": "init1"}, {"name": "init2"}]);
        assert_eq!(cells("", "pods", p.clone())[2], json!("Init:1/2"));

        p["status"]["initContainerStatuses"][1]["state"] =
            json!({"waiting": {"reason": "ImagePullBackOff"}});
        assert_eq!(
            cells("", "pods", p.clone())[2],
            json!("Init:ImagePullBackOff")
        );

        p["status"]["initContainerStatuses"][1]["state"] = json!({"terminated": {"exitCode": 2}});
        assert_eq!(cells("", "pods", p.clone())[2], json!("Init:ExitCode:2"));

        // A sidecar (restartable init container) counts as a container and is ready.
        let mut s = pod(json!({"phase": "Running",
        "conditions": [{"type": "Initialized", "status": "True"}],
        "initContainerStatuses": [
            {"name": "sidecar", "started": true, "ready": true, "restartCount": 1, "state": {"running": {}}},
        ],
        "containerStatuses": [
            {"name": "a", "ready": true, "state": {"running": {}}},
            {"name": "b", "ready": true, "state": {"running": {}}},
        ]}));
        s["spec"]["initContainers"] = json!([{"name": "sidecar", "restartPolicy": "Always"}]);
        let c = cells("", "pods", s);
        assert_eq!(c[1], json!("3/3"));
        assert_eq!(c[2], json!("Running"));
        assert_eq!(c[3], json!("1"));
    }

    #[test]
    fn pod_terminating_gated_and_conditions() {
        let mut p = pod(json!({"phase": "Running"}));
        p["metadata"]["deletionTimestamp"] = json!("2030-01-01T00:00:00Z");
        assert_eq!(cells("", "pods", p.clone())[2], json!("Terminating"));
        p["status"]["reason"] = json!("NodeLost");
        assert_eq!(cells("", "pods", p)[2], json!("Unknown"));

        let gated = pod(json!({"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}));
        assert_eq!(cells("", "pods", gated)[2], json!("SchedulingGated"));

        let mut gates = pod(json!({"phase": "Running", "conditions": [
            {"type": "www.example.com/feature-1", "status": "True"},
            {"type": "www.example.com/feature-2", "status": "False"}]}));
        gates["spec"]["readinessGates"] = json!([
            {"conditionType": "www.example.com/feature-1"},
            {"conditionType": "www.example.com/feature-2"}]);
        gates["spec"]["nodeName"] = json!("n1");
        let c = cells("", "pods", gates);
        assert_eq!(c[6], json!("n1"));
        assert_eq!(c[8], json!("1/2"));

        let done = pod(json!({"phase": "Succeeded"}));
        let table = render_table(
            "",
            "pods",
            &[done],
            IncludeObject::Metadata,
            json!({"resourceVersion": "7"}),
            None,
            now(),
        );
        let row = serde_json::to_string(&table["rows"][0]).expect("json");
        assert!(
            row.starts_with(
                r#"{"cells":["p","0/2","Succeeded","0","60s","<none>","<none>","<none>","<none>"],"conditions":[{"type":"Completed","status":"True","reason":"Succeeded","message":"The pod has completed successfully."}],"object":{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":{"name":"p","#
            ),
            "{row}"
        );
        assert_eq!(table["metadata"], json!({"resourceVersion": "7"}));
    }

    #[test]
    fn partial_object_metadata_is_written_like_go() {
        let object = json!({"metadata": {
            "x-unknown": 1, "labels": {}, "finalizers": [], "uid": "", "generation": 0,
            "deletionGracePeriodSeconds": 0, "namespace": "ns", "name": "n",
            "ownerReferences": [{"uid": "u", "name": "o", "kind": "K", "apiVersion": "v1", "controller": true}],
        }});
        let table = render_table(
            "",
            "configmaps",
            &[object],
            IncludeObject::Metadata,
            json!({}),
            None,
            now(),
        );
        assert_eq!(
            serde_json::to_string(&table["rows"][0]["object"]).expect("json"),
            r#"{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":{"name":"n","namespace":"ns","creationTimestamp":null,"deletionGracePeriodSeconds":0,"ownerReferences":[{"apiVersion":"v1","kind":"K","name":"o","uid":"u","controller":true}]}}"#
        );
    }

    #[test]
    fn empty_lists() {
        let printed = render_table(
            "",
            "pods",
            &[],
            IncludeObject::Metadata,
            json!({}),
            None,
            now(),
        );
        assert_eq!(printed["rows"], json!([]));
        let default = render_table(
            "rbac.authorization.k8s.io",
            "roles",
            &[],
            IncludeObject::Metadata,
            json!({}),
            None,
            now(),
        );
        assert_eq!(default["rows"], Value::Null);
        assert_eq!(default["columnDefinitions"][1]["name"], "Created At");
        let custom = render_table(
            "x.io",
            "things",
            &[],
            IncludeObject::Metadata,
            Value::Null,
            Some(&[]),
            now(),
        );
        assert_eq!(custom["rows"], json!([]));
        assert_eq!(custom["metadata"], json!({}));
    }

    #[test]
    fn default_convertor_for_kinds_without_printer() {
        let (names, c) = one(
            "",
            "limitranges",
            json!({"metadata": {"name": "lr", "creationTimestamp": "2029-12-31T23:00:00.5Z"}}),
        );
        assert_eq!(names, vec!["Name", "Created At"]);
        assert_eq!(c, vec![json!("lr"), json!("2029-12-31T23:00:00Z")]);
        let (_, c) = one(
            "rbac.authorization.k8s.io",
            "clusterroles",
            json!({"metadata": {"name": "cr"}}),
        );
        assert_eq!(c, vec![json!("cr"), json!("0001-01-01T00:00:00Z")]);
    }

    #[test]
    fn uncaptured_core_printers() {
        let (names, c) = one(
            "",
            "persistentvolumes",
            json!({
                "metadata": {"name": "pv1", "creationTimestamp": "2029-12-31T00:00:00Z",
                             "annotations": {"volume.beta.kubernetes.io/storage-class": "slow"}},
                "spec": {"capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
                         "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "fast",
                         "claimRef": {"namespace": "ns", "name": "claim"}, "volumeMode": "Block"},
                "status": {"phase": "Bound"},
            }),
        );
        assert_eq!(
            names,
            vec![
                "Name",
                "Capacity",
                "Access Modes",
                "Reclaim Policy",
                "Status",
                "Claim",
                "StorageClass",
                "VolumeAttributesClass",
                "Reason",
                "Age",
                "VolumeMode"
            ]
        );
        assert_eq!(
            c,
            vec![
                json!("pv1"),
                json!("5Gi"),
                json!("RWO,RWX"),
                json!("Delete"),
                json!("Bound"),
                json!("ns/claim"),
                json!("slow"),
                json!("<unset>"),
                json!(""),
                json!("24h"),
                json!("Block")
            ]
        );

        let c = cells(
            "",
            "replicationcontrollers",
            json!({"metadata": {"name": "rc"}, "spec": {"replicas": 3, "selector": {"b": "2", "a": "1"},
                   "template": {"spec": {"containers": [{"name": "x", "image": "i1"}, {"name": "y", "image": "i2"}]}}},
                   "status": {"replicas": 2, "readyReplicas": 1}}),
        );
        assert_eq!(
            c,
            vec![
                json!("rc"),
                json!(3),
                json!(2),
                json!(1),
                json!("<unknown>"),
                json!("x,y"),
                json!("i1,i2"),
                json!("a=1,b=2")
            ]
        );

        let c = cells(
            "",
            "podtemplates",
            json!({"metadata": {"name": "pt"}, "template": {"metadata": {"labels": {"app": "x"}},
                   "spec": {"containers": [{"name": "c", "image": "img"}]}}}),
        );
        assert_eq!(
            c,
            vec![json!("pt"), json!("c"), json!("img"), json!("app=x")]
        );

        let c = cells(
            "",
            "resourcequotas",
            json!({"metadata": {"name": "q"}, "status": {
                "hard": {"requests.cpu": "2", "pods": "10", "limits.memory": "2Gi", "limits.cpu": "4"},
                "used": {"requests.cpu": "500m", "limits.cpu": "1"}}}),
        );
        assert_eq!(
            c,
            vec![
                json!("q"),
                json!("pods: 0/10, requests.cpu: 500m/2"),
                json!("limits.cpu: 1/4, limits.memory: 0/2Gi"),
                json!("<unknown>")
            ]
        );

        let c = cells(
            "",
            "services",
            json!({"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer", "clusterIPs": ["10.0.0.1"],
                   "ports": [{"port": 443, "nodePort": 30443, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}],
                   "externalIPs": ["1.2.3.4"]},
                   "status": {"loadBalancer": {"ingress": [{"ip": "5.6.7.8"}, {"hostname": "lb.example.com"}]}}}),
        );
        assert_eq!(c[3], json!("5.6.7.8,lb.example.com,1.2.3.4"));
        assert_eq!(c[4], json!("443:30443/TCP,53/UDP"));
        assert_eq!(c[6], json!("<none>"));
        let c = cells(
            "",
            "services",
            json!({"metadata": {"name": "ext"}, "spec": {"type": "ExternalName", "externalName": "db.example.com"}}),
        );
        assert_eq!(
            c[2..5],
            [json!("<none>"), json!("db.example.com"), json!("<none>")]
        );

        let c = cells(
            "",
            "endpoints",
            json!({"metadata": {"name": "e"}, "subsets": [
                {"addresses": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}], "ports": [{"port": 80}, {"port": 443}]}]}),
        );
        assert_eq!(
            c[1],
            json!("10.0.0.1:80,[fd00::1]:80,10.0.0.1:443 + 1 more...")
        );

        let c = cells(
            "",
            "nodes",
            json!({"metadata": {"name": "n", "labels": {"node-role.kubernetes.io/control-plane": "",
                   "node-role.kubernetes.io/": "", "kubernetes.io/role": "worker"}},
                   "spec": {"unschedulable": true},
                   "status": {"conditions": [{"type": "Ready", "status": "False"}],
                              "addresses": [{"type": "InternalIP", "address": "192.168.1.2"}],
                              "nodeInfo": {"kubeletVersion": "v1.36.0", "osImage": "Debian"}}}),
        );
        assert_eq!(
            c,
            vec![
                json!("n"),
                json!("NotReady,SchedulingDisabled"),
                json!("control-plane,worker"),
                json!("<unknown>"),
                json!("v1.36.0"),
                json!("192.168.1.2"),
                json!("<none>"),
                json!("Debian"),
                json!("<unknown>"),
                json!("<unknown>")
            ]
        );

        let c = cells(
            "",
            "componentstatuses",
            json!({"metadata": {"name": "etcd-0"}, "conditions": [{"type": "Healthy", "status": "True", "message": "ok"}]}),
        );
        assert_eq!(
            c,
            vec![json!("etcd-0"), json!("Healthy"), json!("ok"), json!("")]
        );
    }

    #[test]
    fn events_in_both_api_groups() {
        let core = json!({"metadata": {"name": "e1"}, "type": "Warning", "reason": "BackOff",
            "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{app}"},
            "source": {"component": "kubelet", "host": "node1"},
            "message": "  Back-off restarting\n", "firstTimestamp": "2029-12-31T23:00:00Z",
            "lastTimestamp": "2029-12-31T23:59:00Z", "count": 7});
        assert_eq!(
            cells("", "events", core),
            vec![
                json!("60s"),
                json!("Warning"),
                json!("BackOff"),
                json!("pod/web"),
                json!("spec.containers{app}"),
                json!("kubelet, node1"),
                json!("Back-off restarting"),
                json!("60m"),
                json!(7),
                json!("e1")
            ]
        );
        let v1 = json!({"apiVersion": "events.k8s.io/v1", "metadata": {"name": "e2"}, "type": "Normal",
            "reason": "Scheduled", "regarding": {"kind": "Pod", "name": "web"}, "note": "assigned",
            "eventTime": "2029-12-31T23:58:00.000000Z", "reportingController": "default-scheduler",
            "series": {"count": 3, "lastObservedTime": "2029-12-31T23:59:30.000000Z"}});
        assert_eq!(
            cells("events.k8s.io", "events", v1),
            vec![
                json!("30s"),
                json!("Normal"),
                json!("Scheduled"),
                json!("pod/web"),
                json!(""),
                json!("default-scheduler"),
                json!("assigned"),
                json!("2m"),
                json!(3),
                json!("e2")
            ]
        );
    }

    #[test]
    fn uncaptured_workload_and_policy_printers() {
        let c = cells(
            "apps",
            "controllerrevisions",
            json!({"metadata": {"name": "ds-5d4f", "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "ds", "controller": true}]},
                "revision": 2}),
        );
        assert_eq!(
            c,
            vec![
                json!("ds-5d4f"),
                json!("daemonset.apps/ds"),
                json!(2),
                json!("<unknown>")
            ]
        );

        let c = cells(
            "policy",
            "poddisruptionbudgets",
            json!({"metadata": {"name": "pdb"}, "spec": {"minAvailable": "50%"}, "status": {"disruptionsAllowed": 1}}),
        );
        assert_eq!(
            c,
            vec![
                json!("pdb"),
                json!("50%"),
                json!("N/A"),
                json!(1),
                json!("<unknown>")
            ]
        );

        let job = json!({"metadata": {"name": "j", "creationTimestamp": "2029-12-31T23:00:00Z"},
            "spec": {"parallelism": 3, "selector": {"matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["web", "api"]},
                {"key": "canary", "operator": "DoesNotExist"}], "matchLabels": {"app": "x"}},
                "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}},
            "status": {"succeeded": 1, "startTime": "2029-12-31T23:00:00Z", "completionTime": "2029-12-31T23:03:20Z",
                       "conditions": [{"type": "Complete", "status": "True"}]}});
        assert_eq!(
            cells("batch", "jobs", job),
            vec![
                json!("j"),
                json!("Complete"),
                json!("1/1 of 3"),
                json!("3m20s"),
                json!("60m"),
                json!("c"),
                json!("i"),
                json!("app=x,!canary,tier in (api,web)")
            ]
        );

        let hpa = json!({"apiVersion": "autoscaling/v2", "metadata": {"name": "h"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 4, "metrics": [
                {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}}},
                {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "10"}}},
                {"type": "External", "external": {"metric": {"name": "q"}, "target": {"type": "Value", "value": "5"}}}]},
            "status": {"currentReplicas": 2, "currentMetrics": [
                {"type": "Resource", "resource": {"name": "memory", "current": {"averageValue": "50Mi"}}}]}});
        assert_eq!(
            cells("autoscaling", "horizontalpodautoscalers", hpa)[2..5],
            [
                json!("memory: 50Mi/100Mi, <unknown>/10 + 1 more..."),
                json!("1"),
                json!(4)
            ]
        );
        let v1 = json!({"apiVersion": "autoscaling/v1", "metadata": {"name": "h"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 2, "maxReplicas": 4,
                     "targetCPUUtilizationPercentage": 70},
            "status": {"currentReplicas": 2, "currentCPUUtilizationPercentage": 35}});
        assert_eq!(
            cells("autoscaling", "horizontalpodautoscalers", v1)[2..4],
            [json!("cpu: 35%/70%"), json!("2")]
        );
    }

    #[test]
    fn uncaptured_cluster_printers() {
        let (names, c) = one(
            "rbac.authorization.k8s.io",
            "clusterrolebindings",
            json!({"metadata": {"name": "crb"}, "roleRef": {"kind": "ClusterRole", "name": "admin"},
                   "subjects": [{"kind": "User", "name": "alice"}, {"kind": "Group", "name": "devs"},
                                {"kind": "ServiceAccount", "namespace": "ns", "name": "sa"},
                                {"kind": "User", "name": "bob"}]}),
        );
        assert_eq!(
            names,
            vec!["Name", "Role", "Age", "Users", "Groups", "ServiceAccounts"]
        );
        assert_eq!(
            c,
            vec![
                json!("crb"),
                json!("ClusterRole/admin"),
                json!("<unknown>"),
                json!("alice, bob"),
                json!("devs"),
                json!("ns/sa")
            ]
        );

        let c = cells(
            "storage.k8s.io",
            "storageclasses",
            json!({"metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
                   "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"}),
        );
        assert_eq!(
            c,
            vec![
                json!("standard (default)"),
                json!("rancher.io/local-path"),
                json!("Delete"),
                json!("WaitForFirstConsumer"),
                json!(false),
                json!("<unknown>")
            ]
        );

        let c = cells(
            "scheduling.k8s.io",
            "priorityclasses",
            json!({"metadata": {"name": "high"}, "value": 1000000, "globalDefault": true}),
        );
        assert_eq!(
            c,
            vec![
                json!("high"),
                json!(1000000),
                json!(true),
                json!("<unknown>"),
                json!("PreemptLowerPriority")
            ]
        );

        let c = cells(
            "node.k8s.io",
            "runtimeclasses",
            json!({"metadata": {"name": "gvisor"}, "handler": "runsc"}),
        );
        assert_eq!(c, vec![json!("gvisor"), json!("runsc"), json!("<unknown>")]);

        let c = cells(
            "admissionregistration.k8s.io",
            "validatingwebhookconfigurations",
            json!({"metadata": {"name": "w"}, "webhooks": [{"name": "a"}, {"name": "b"}]}),
        );
        assert_eq!(c, vec![json!("w"), json!(2), json!("<unknown>")]);

        let c = cells(
            "certificates.k8s.io",
            "certificatesigningrequests",
            json!({"metadata": {"name": "csr"}, "spec": {"signerName": "kubernetes.io/kube-apiserver-client",
                   "username": "alice", "expirationSeconds": 86400},
                   "status": {"conditions": [{"type": "Approved", "status": "True"}], "certificate": "LS0t"}}),
        );
        assert_eq!(
            c,
            vec![
                json!("csr"),
                json!("<unknown>"),
                json!("kubernetes.io/kube-apiserver-client"),
                json!("alice"),
                json!("24h"),
                json!("Approved,Issued")
            ]
        );

        let c = cells(
            "networking.k8s.io",
            "ingressclasses",
            json!({"metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-nginx",
                   "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "p"}}}),
        );
        assert_eq!(
            c[1..3],
            [
                json!("k8s.io/ingress-nginx"),
                json!("IngressParameters.k8s.example.com/p")
            ]
        );

        let c = cells(
            "networking.k8s.io",
            "networkpolicies",
            json!({"metadata": {"name": "deny"}, "spec": {}}),
        );
        assert_eq!(c[1], json!("<none>"));

        let c = cells(
            "apiregistration.k8s.io",
            "apiservices",
            json!({"metadata": {"name": "v1beta1.metrics.k8s.io"},
                   "spec": {"service": {"namespace": "kube-system", "name": "metrics-server"}},
                   "status": {"conditions": [{"type": "Available", "status": "False", "reason": "MissingEndpoints"}]}}),
        );
        assert_eq!(
            c[1..3],
            [
                json!("kube-system/metrics-server"),
                json!("False (MissingEndpoints)")
            ]
        );

        let c = cells(
            "flowcontrol.apiserver.k8s.io",
            "prioritylevelconfigurations",
            json!({"metadata": {"name": "exempt"}, "spec": {"type": "Exempt"}}),
        );
        assert_eq!(
            c[1..6],
            [
                json!("Exempt"),
                json!("<none>"),
                json!("<none>"),
                json!("<none>"),
                json!("<none>")
            ]
        );

        let schemas = [
            json!({"metadata": {"name": "b"}, "spec": {"matchingPrecedence": 500, "priorityLevelConfiguration": {"name": "x"}}}),
            json!({"metadata": {"name": "a"}, "spec": {"matchingPrecedence": 900, "priorityLevelConfiguration": {"name": "y"},
                   "distinguisherMethod": {"type": "ByUser"}}, "status": {"conditions": [{"type": "Dangling", "status": "False"}]}}),
            json!({"metadata": {"name": "a2"}, "spec": {"matchingPrecedence": 500, "priorityLevelConfiguration": {"name": "x"}}}),
        ];
        let table = render_table(
            "flowcontrol.apiserver.k8s.io",
            "flowschemas",
            &schemas,
            IncludeObject::Object,
            json!({}),
            None,
            now(),
        );
        let order: Vec<&Value> = table["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|r| &r["cells"][0])
            .collect();
        assert_eq!(order, vec!["a2", "b", "a"]);
        assert_eq!(table["rows"][2]["cells"][3], "ByUser");
        assert_eq!(table["rows"][2]["cells"][5], "False");
        assert_eq!(table["rows"][2]["object"]["metadata"]["name"], "a");
    }

    #[test]
    fn label_selectors() {
        assert_eq!(format_label_selector(None), "<none>");
        assert_eq!(format_label_selector(Some(&json!({}))), "<none>");
        assert_eq!(
            format_label_selector(Some(
                &json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]})
            )),
            "<error>"
        );
        assert_eq!(
            format_label_selector(Some(
                &json!({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]})
            )),
            "env notin (prod)"
        );
        assert_eq!(
            format_labels(Some(&json!({"a": "2", "a.b": "1"}))),
            "a.b=1,a=2"
        );
        assert_eq!(
            go_label_selector_debug(&json!({"matchLabels": {"b": "2", "a": "1"},
                "matchExpressions": [{"key": "k", "operator": "In", "values": ["x", "y"]}]})),
            "&LabelSelector{MatchLabels:map[string]string{a: 1,b: 2,},MatchExpressions:[]LabelSelectorRequirement{LabelSelectorRequirement{Key:k,Operator:In,Values:[x y],},},}"
        );
    }

    fn custom(columns: Value, object: Value) -> Value {
        let columns = columns.as_array().expect("columns").clone();
        render_table(
            "example.com",
            "things",
            &[object],
            IncludeObject::None,
            json!({}),
            Some(&columns),
            now(),
        )
    }

    #[test]
    fn custom_resource_columns() {
        let object = json!({"metadata": {"name": "t", "creationTimestamp": "2029-12-31T22:00:00Z"},
            "spec": {"replicas": 3, "ratio": 0.25, "big": 2500000.0, "enabled": true, "tags": ["a", "b"],
                     "nested": {"z": 1, "a": "<x>"}, "nothing": null, "when": "not a time",
                     "dotted": {"app.kubernetes.io/name": "web"}},
            "status": {"conditions": [
                {"type": "Synced", "status": "False"},
                {"type": "Ready", "status": "True", "message": "all good"}]}});
        let table = custom(
            json!([
                {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
                {"name": "Ratio", "type": "number", "jsonPath": ".spec.ratio"},
                {"name": "RatioText", "type": "string", "jsonPath": ".spec.ratio"},
                {"name": "Big", "type": "string", "jsonPath": ".spec.big"},
                {"name": "Enabled", "type": "boolean", "jsonPath": ".spec.enabled"},
                {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"},
                {"name": "Message", "type": "string", "jsonPath": ".status.conditions[?(@.type=='Ready')].message"},
                {"name": "First", "type": "string", "jsonPath": ".spec.tags[0]"},
                {"name": "Last", "type": "string", "jsonPath": ".spec.tags[-1]"},
                {"name": "Out", "type": "string", "jsonPath": ".spec.tags[5]"},
                {"name": "Tags", "type": "string", "jsonPath": ".spec.tags"},
                {"name": "Nested", "type": "string", "jsonPath": ".spec.nested"},
                {"name": "Null", "type": "string", "jsonPath": ".spec.nothing"},
                {"name": "Missing", "type": "string", "jsonPath": ".spec.missing"},
                {"name": "When", "type": "date", "jsonPath": ".spec.when"},
                {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp", "description": "how old", "priority": 1},
                {"name": "App", "type": "string", "jsonPath": ".spec.dotted['app.kubernetes.io/name']"},
                {"name": "Escaped", "type": "string", "jsonPath": ".spec.dotted.app\\.kubernetes\\.io/name"},
                {"name": "Deep", "type": "string", "jsonPath": "..message"},
                {"name": "WrongType", "type": "integer", "jsonPath": ".spec.enabled"}
            ]),
            object,
        );
        assert_eq!(
            table["rows"][0]["cells"],
            json!([
                "t",
                3,
                0.25,
                "0.25",
                "2.5e+06",
                true,
                "True",
                "all good",
                "a",
                "b",
                null,
                "[\"a\",\"b\"]",
                "{\"a\":\"\\u003cx\\u003e\",\"z\":1}",
                "<no value>",
                null,
                "<invalid>",
                "120m",
                "web",
                "web",
                "all good",
                null
            ])
        );
        let defs = &table["columnDefinitions"];
        assert_eq!(defs[0]["format"], "name");
        assert_eq!(
            defs[1],
            json!({"name": "Replicas", "type": "integer", "format": "",
                   "description": "Custom resource definition column (in JSONPath format): .spec.replicas",
                   "priority": 0})
        );
        assert_eq!(defs[16]["description"], "how old");
        assert_eq!(defs[16]["priority"], 1);
    }

    #[test]
    fn custom_resource_defaults_and_fallback() {
        let object =
            json!({"metadata": {"name": "t", "creationTimestamp": "2029-12-31T23:59:30Z"}});
        let table = custom(json!([]), object.clone());
        assert_eq!(table["columnDefinitions"][1]["name"], "Age");
        assert_eq!(table["columnDefinitions"][1]["type"], "date");
        assert_eq!(table["columnDefinitions"][1]["description"], D_AGE);
        assert_eq!(table["rows"][0]["cells"], json!(["t", "30s"]));

        // An unparsable column falls back to the default convertor.
        let table = custom(
            json!([{"name": "X", "type": "string", "jsonPath": ".spec[?(@.a"}]),
            object,
        );
        assert_eq!(table["columnDefinitions"][1]["name"], "Created At");
        assert_eq!(
            table["rows"][0]["cells"],
            json!(["t", "2029-12-31T23:59:30Z"])
        );
    }

    #[test]
    fn go_formatting() {
        assert_eq!(go_fmt_float(0.5), "0.5");
        assert_eq!(go_fmt_float(123456.0), "123456");
        assert_eq!(go_fmt_float(1e6), "1e+06");
        assert_eq!(go_fmt_float(0.0001), "0.0001");
        assert_eq!(go_fmt_float(0.00001), "1e-05");
        let mut out = String::new();
        go_json(&json!({"b": [1.5, 1e21, 1e-7], "a": "&"}), &mut out);
        assert_eq!(out, r#"{"a":"\u0026","b":[1.5,1e+21,1e-7]}"#);
    }
}
