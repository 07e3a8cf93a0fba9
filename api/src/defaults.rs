//! Defaulting of the built-in kinds, as kube-apiserver v1.36 applies it when it decodes a
//! request body and again when it decodes the stored object it answers with.
//!
//! Three layers, all on `serde_json::Value` objects of the kind's served version:
//! - the `SetDefaults_*` functions of `k8s.io/kubernetes/pkg/apis/*/v*/defaults.go` (and the
//!   declarative `+default` tags of `k8s.io/api`);
//! - the conversion quirks that show in the output (`serviceAccount` mirrors
//!   `serviceAccountName`, `podIP`/`podIPs`, Secret `stringData` folded into `data`, the
//!   canonical form of resource quantities);
//! - the zero values Go's JSON encoder writes for non-pointer struct fields and for fields
//!   without `omitempty` (`status: {}` of a Deployment, `resources: {}` of a container,
//!   `metadata: {}` of a pod template, `reportingComponent: ""` of an Event, ...).
//!
//! Keys are put in the order of the Go struct fields (as upstream writes them), and the keys
//! of Go maps (labels, selectors, resource lists, data) are sorted, as Go's encoder sorts them.
//!
//! Beside [`apply_defaults`] this module carries what upstream does in admission plugins and
//! registry strategies that shape a new object the same way: [`service_account_admission`],
//! [`default_toleration_seconds`], [`priority_admission`], [`taint_nodes_by_condition`],
//! [`storage_object_in_use_protection`], [`default_storage_class`], [`default_ingress_class`],
//! [`prepare_for_create`] (Job selector, DaemonSet template generation),
//! [`prepare_for_update`] and [`service_update_carry_over`]; and, for custom resources,
//! [`apply_crd_schema_defaults`] and [`sort_keys_recursively`].
//!
//! The upstream order on create is: decode (defaults) → mutating admission → strategy
//! `PrepareForCreate` / `Validate` → store → decode of the stored bytes (defaults again). The
//! second pass matters: a Job's `metadata.labels` are copied from the template labels the
//! strategy generated, a CRD's `status.storedVersions` is set after the strategy reset the
//! status. [`apply_defaults`] is idempotent, so calling it before admission and once more
//! after the strategy reproduces that.

use base64::Engine;
use serde_json::{json, Map, Value};

type Obj = Map<String, Value>;

// ---------------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------------

/// Applies upstream's defaulting to `obj`, an object of `group`/`version`/`kind` (the group is
/// `""` for the core group). Kinds without defaults (and custom resources) are left untouched.
/// Idempotent.
pub fn apply_defaults(group: &str, version: &str, kind: &str, obj: &mut Value) {
    let Some(o) = obj.as_object_mut() else { return };
    let top: &[&str] = match (group, kind) {
        ("", "Pod") => {
            pod(o);
            TOP_SPEC_STATUS
        }
        ("", "PodTemplate") => {
            if let Some(t) = ensure_obj(o, "template") {
                pod_template(t);
            }
            &["kind", "apiVersion", "metadata", "template"]
        }
        ("", "ReplicationController") => {
            replication_controller(o);
            TOP_SPEC_STATUS
        }
        ("", "Service") => {
            service(o);
            TOP_SPEC_STATUS
        }
        ("", "Endpoints") => {
            endpoints(o);
            &["kind", "apiVersion", "metadata", "subsets"]
        }
        ("", "Secret") => {
            secret(o);
            &[
                "kind",
                "apiVersion",
                "metadata",
                "immutable",
                "data",
                "stringData",
                "type",
            ]
        }
        ("", "ConfigMap") => {
            sort_map(o, "data");
            sort_map(o, "binaryData");
            &[
                "kind",
                "apiVersion",
                "metadata",
                "immutable",
                "data",
                "binaryData",
            ]
        }
        ("", "ServiceAccount") => &[
            "kind",
            "apiVersion",
            "metadata",
            "secrets",
            "imagePullSecrets",
            "automountServiceAccountToken",
        ],
        ("", "Namespace") => {
            namespace(o);
            TOP_SPEC_STATUS
        }
        ("", "Node") => {
            node(o);
            TOP_SPEC_STATUS
        }
        ("", "PersistentVolume") => {
            persistent_volume(o);
            TOP_SPEC_STATUS
        }
        ("", "PersistentVolumeClaim") => {
            persistent_volume_claim(o);
            TOP_SPEC_STATUS
        }
        ("", "Event") => {
            core_event(o);
            CORE_EVENT_ORDER
        }
        ("events.k8s.io", "Event") => {
            events_event(o);
            EVENTS_EVENT_ORDER
        }
        ("", "LimitRange") => {
            limit_range(o);
            TOP_SPEC_STATUS
        }
        ("", "ResourceQuota") => {
            resource_quota(o);
            TOP_SPEC_STATUS
        }
        ("apps", "Deployment") => {
            deployment(o);
            TOP_SPEC_STATUS
        }
        ("apps", "ReplicaSet") => {
            replica_set(o);
            TOP_SPEC_STATUS
        }
        ("apps", "StatefulSet") => {
            stateful_set(o);
            TOP_SPEC_STATUS
        }
        ("apps", "DaemonSet") => {
            daemon_set(o);
            TOP_SPEC_STATUS
        }
        ("batch", "Job") => {
            job(o);
            TOP_SPEC_STATUS
        }
        ("batch", "CronJob") => {
            cron_job(o);
            TOP_SPEC_STATUS
        }
        ("autoscaling", "HorizontalPodAutoscaler") => {
            if version == "v1" {
                hpa_v1(o);
            } else {
                hpa_v2(o);
            }
            TOP_SPEC_STATUS
        }
        ("policy", "PodDisruptionBudget") => {
            pod_disruption_budget(o);
            TOP_SPEC_STATUS
        }
        ("networking.k8s.io", "NetworkPolicy") => {
            network_policy(o);
            TOP_SPEC_STATUS
        }
        ("networking.k8s.io", "Ingress") => {
            ingress(o);
            TOP_SPEC_STATUS
        }
        ("networking.k8s.io", "IngressClass") => {
            ingress_class(o);
            TOP_SPEC_STATUS
        }
        ("discovery.k8s.io", "EndpointSlice") => {
            endpoint_slice(o);
            &[
                "kind",
                "apiVersion",
                "metadata",
                "addressType",
                "endpoints",
                "ports",
            ]
        }
        ("coordination.k8s.io", "Lease") => {
            ensure_obj(o, "spec");
            TOP_SPEC_STATUS
        }
        ("scheduling.k8s.io", "PriorityClass") => {
            default_value(o, "preemptionPolicy", json!("PreemptLowerPriority"));
            &[
                "kind",
                "apiVersion",
                "metadata",
                "value",
                "globalDefault",
                "description",
                "preemptionPolicy",
            ]
        }
        ("storage.k8s.io", "StorageClass") => {
            default_value(o, "reclaimPolicy", json!("Delete"));
            default_value(o, "volumeBindingMode", json!("Immediate"));
            sort_map(o, "parameters");
            &[
                "kind",
                "apiVersion",
                "metadata",
                "provisioner",
                "parameters",
                "reclaimPolicy",
                "mountOptions",
                "allowVolumeExpansion",
                "volumeBindingMode",
                "allowedTopologies",
            ]
        }
        ("storage.k8s.io", "CSIDriver") => {
            csi_driver(o);
            TOP_SPEC_STATUS
        }
        ("rbac.authorization.k8s.io", "Role") | ("rbac.authorization.k8s.io", "ClusterRole") => {
            rbac_role(o);
            &["kind", "apiVersion", "metadata", "rules", "aggregationRule"]
        }
        ("rbac.authorization.k8s.io", "RoleBinding")
        | ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            rbac_binding(o);
            &["kind", "apiVersion", "metadata", "subjects", "roleRef"]
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            custom_resource_definition(o);
            TOP_SPEC_STATUS
        }
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration") => {
            webhooks(o, false);
            &["kind", "apiVersion", "metadata", "webhooks"]
        }
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration") => {
            webhooks(o, true);
            &["kind", "apiVersion", "metadata", "webhooks"]
        }
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy")
        | ("admissionregistration.k8s.io", "MutatingAdmissionPolicy") => {
            admission_policy(o);
            TOP_SPEC_STATUS
        }
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding")
        | ("admissionregistration.k8s.io", "MutatingAdmissionPolicyBinding") => {
            admission_policy_binding(o);
            TOP_SPEC_STATUS
        }
        ("apiregistration.k8s.io", "APIService") => {
            if let Some(svc) = obj_at(o, &["spec", "service"]) {
                default_value(svc, "port", json!(443));
                reorder(svc, &["namespace", "name", "port"]);
            }
            ensure_obj(o, "status");
            TOP_SPEC_STATUS
        }
        ("flowcontrol.apiserver.k8s.io", "FlowSchema") => {
            if let Some(spec) = obj_at(o, &["spec"]) {
                default_num(spec, "matchingPrecedence", 1000);
            }
            ensure_obj(o, "status");
            TOP_SPEC_STATUS
        }
        ("certificates.k8s.io", "CertificateSigningRequest")
        | ("networking.k8s.io", "ServiceCIDR") => {
            ensure_obj(o, "status");
            TOP_SPEC_STATUS
        }
        ("node.k8s.io", "RuntimeClass") => {
            if let Some(overhead) = child(o, "overhead") {
                resource_list_at(overhead, "podFixed");
            }
            &[
                "kind",
                "apiVersion",
                "metadata",
                "handler",
                "overhead",
                "scheduling",
            ]
        }
        ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration") => {
            priority_level_configuration(o, version);
            ensure_obj(o, "status");
            TOP_SPEC_STATUS
        }
        _ => return,
    };
    if let Some(m) = child(o, "metadata") {
        object_meta(m);
    }
    reorder(o, top);
}

/// The ServiceAccount admission plugin on pod create: sets `serviceAccountName` (default
/// `default`) and, unless automounting is turned off by the pod, mounts the
/// `kube-api-access-<suffix>` projected volume into every init and regular container.
/// `token_volume_suffix` is the 5 random characters upstream draws (the caller chooses them).
/// The caller checks that the ServiceAccount exists (403 otherwise, as upstream).
pub fn service_account_admission(pod: &mut Value, token_volume_suffix: &str) {
    service_account_admission_with(pod, token_volume_suffix, None);
}

/// [`service_account_admission`] given the pod's ServiceAccount object, whose
/// `automountServiceAccountToken` and `imagePullSecrets` are honoured as upstream.
pub fn service_account_admission_with(
    pod: &mut Value,
    token_volume_suffix: &str,
    service_account: Option<&Value>,
) {
    let Some(o) = pod.as_object_mut() else { return };
    // Mirror pods are left alone (upstream only validates them).
    let mirror = o
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get("kubernetes.io/config.mirror"))
        .is_some();
    if mirror {
        return;
    }
    let Some(spec) = ensure_obj(o, "spec") else {
        return;
    };
    if str_of(spec, "serviceAccountName").is_empty() {
        spec.insert("serviceAccountName".into(), json!("default"));
    }
    let sa_name = str_of(spec, "serviceAccountName").to_string();
    spec.insert("serviceAccount".into(), json!(sa_name));

    let automount = match spec
        .get("automountServiceAccountToken")
        .and_then(Value::as_bool)
    {
        Some(b) => b,
        None => service_account
            .and_then(|sa| sa.get("automountServiceAccountToken"))
            .and_then(Value::as_bool)
            .unwrap_or(true),
    };
    if automount {
        mount_service_account_token(spec, token_volume_suffix);
    }

    let pod_has_pull_secrets = spec
        .get("imagePullSecrets")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    if !pod_has_pull_secrets {
        let from_sa: Vec<Value> = service_account
            .and_then(|sa| sa.get("imagePullSecrets"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|s| json!({"name": s.get("name").cloned().unwrap_or(json!(""))}))
                    .collect()
            })
            .unwrap_or_default();
        if !from_sa.is_empty() {
            spec.insert("imagePullSecrets".into(), Value::Array(from_sa));
        }
    }
    reorder(spec, POD_SPEC_ORDER);
}

const SERVICE_ACCOUNT_VOLUME_PREFIX: &str = "kube-api-access-";
const SERVICE_ACCOUNT_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Whether the token volume carries an `openshift-service-ca.crt` projection, as the v1.36
/// captures in `shared/upstream/defaults/pod-*.json` show (the capture cluster added it).
/// Plain upstream Kubernetes projects only the token, `kube-root-ca.crt` and the namespace,
/// and so does meso: nothing publishes that ConfigMap.
pub const TOKEN_VOLUME_WITH_SERVICE_CA: bool = false;

/// The projected volume source of the service account token volume.
pub fn token_volume_source() -> Value {
    let mut sources = vec![
        json!({"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}),
        json!({"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}),
        json!({"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}),
    ];
    if TOKEN_VOLUME_WITH_SERVICE_CA {
        sources.push(json!({"configMap": {"name": "openshift-service-ca.crt", "items": [{"key": "service-ca.crt", "path": "service-ca.crt"}]}}));
    }
    json!({"sources": sources, "defaultMode": 420})
}

fn mount_service_account_token(spec: &mut Obj, suffix: &str) {
    let existing = spec
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.get("name").and_then(Value::as_str))
        .find(|n| n.starts_with(SERVICE_ACCOUNT_VOLUME_PREFIX))
        .map(str::to_string);
    let has_volume = existing.is_some();
    let volume_name =
        existing.unwrap_or_else(|| format!("{SERVICE_ACCOUNT_VOLUME_PREFIX}{suffix}"));
    let mount =
        json!({"name": volume_name, "readOnly": true, "mountPath": SERVICE_ACCOUNT_MOUNT_PATH});
    let mut needs_volume = false;
    for list in ["initContainers", "containers"] {
        for c in objects_in(spec, list) {
            let mounted = c
                .get("volumeMounts")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|m| {
                    m.get("mountPath").and_then(Value::as_str) == Some(SERVICE_ACCOUNT_MOUNT_PATH)
                });
            if mounted {
                continue;
            }
            let Some(mounts) = ensure_array(c, "volumeMounts") else {
                continue;
            };
            mounts.push(mount.clone());
            needs_volume = true;
            reorder(c, CONTAINER_ORDER);
        }
    }
    if needs_volume && !has_volume {
        if let Some(volumes) = ensure_array(spec, "volumes") {
            volumes.push(json!({"name": volume_name, "projected": token_volume_source()}));
        }
    }
}

/// The DefaultTolerationSeconds admission plugin: pods that do not tolerate the
/// `node.kubernetes.io/not-ready` / `unreachable` NoExecute taints get tolerations of 300 s.
pub fn default_toleration_seconds(pod: &mut Value) {
    let Some(spec) = pod.as_object_mut().and_then(|o| ensure_obj(o, "spec")) else {
        return;
    };
    let mut not_ready = false;
    let mut unreachable = false;
    for t in spec
        .get("tolerations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = t.get("key").and_then(Value::as_str).unwrap_or("");
        let effect = t.get("effect").and_then(Value::as_str).unwrap_or("");
        let no_execute = effect == "NoExecute" || effect.is_empty();
        if no_execute && (key == "node.kubernetes.io/not-ready" || key.is_empty()) {
            not_ready = true;
        }
        if no_execute && (key == "node.kubernetes.io/unreachable" || key.is_empty()) {
            unreachable = true;
        }
    }
    if not_ready && unreachable {
        return;
    }
    let Some(tolerations) = ensure_array(spec, "tolerations") else {
        return;
    };
    for (present, key) in [
        (not_ready, "node.kubernetes.io/not-ready"),
        (unreachable, "node.kubernetes.io/unreachable"),
    ] {
        if !present {
            tolerations.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}));
        }
    }
    reorder(spec, POD_SPEC_ORDER);
}

/// The Priority admission plugin on pod create. `class` is the PriorityClass the pod names in
/// `spec.priorityClassName` (looked up by the caller; `None` if there is none of that name), or,
/// when the pod names none, the class marked `globalDefault` if one exists. Without a class the
/// pod gets priority 0 and `PreemptLowerPriority`. Errors carry upstream's message (403).
pub fn priority_admission(pod: &mut Value, class: Option<&Value>) -> Result<(), String> {
    let Some(spec) = pod.as_object_mut().and_then(|o| ensure_obj(o, "spec")) else {
        return Ok(());
    };
    let named = str_of(spec, "priorityClassName").to_string();
    let (priority, policy) = match class {
        Some(pc) => {
            let value = pc.get("value").and_then(Value::as_i64).unwrap_or(0);
            let policy = pc
                .get("preemptionPolicy")
                .and_then(Value::as_str)
                .unwrap_or("PreemptLowerPriority")
                .to_string();
            if named.is_empty() {
                if let Some(n) = pc
                    .get("metadata")
                    .and_then(|m| m.get("name"))
                    .and_then(Value::as_str)
                {
                    spec.insert("priorityClassName".into(), json!(n));
                }
            }
            (value, policy)
        }
        None if !named.is_empty() => {
            return Err(format!("no PriorityClass with name {named} was found"));
        }
        None => (0, "PreemptLowerPriority".to_string()),
    };
    if let Some(given) = spec.get("priority").and_then(Value::as_i64) {
        if given != priority {
            return Err(format!("the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {priority} from the given PriorityClass name"));
        }
    }
    spec.insert("priority".into(), json!(priority));
    if let Some(given) = spec.get("preemptionPolicy").and_then(Value::as_str) {
        if given != policy {
            return Err(format!("the string value of PreemptionPolicy ({given}) must not be provided in pod spec; priority admission controller computed {policy} from the given PriorityClass name"));
        }
    }
    spec.insert("preemptionPolicy".into(), json!(policy));
    reorder(spec, POD_SPEC_ORDER);
    Ok(())
}

/// The Priority admission plugin on pod update: keeps `priority` and `preemptionPolicy` of
/// the stored pod when the update omits them.
pub fn priority_admission_update(pod: &mut Value, old: &Value) {
    let Some(spec) = pod.as_object_mut().and_then(|o| ensure_obj(o, "spec")) else {
        return;
    };
    for key in ["priority", "preemptionPolicy"] {
        if is_unset(spec.get(key)) {
            if let Some(v) = old.get("spec").and_then(|s| s.get(key)) {
                spec.insert(key.into(), v.clone());
            }
        }
    }
    reorder(spec, POD_SPEC_ORDER);
}

/// The PriorityClasses every cluster has (created by the API server at start-up).
pub fn system_priority_classes() -> Vec<Value> {
    [
        (
            "system-node-critical",
            2_000_001_000i64,
            "Used for system critical pods that must not be moved from their current node.",
        ),
        (
            "system-cluster-critical",
            2_000_000_000i64,
            "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
        ),
    ]
    .iter()
    .map(|(name, value, description)| {
        json!({
            "kind": "PriorityClass",
            "apiVersion": "scheduling.k8s.io/v1",
            "metadata": {"name": name},
            "value": value,
            "description": description,
            "preemptionPolicy": "PreemptLowerPriority",
        })
    })
    .collect()
}

/// The TaintNodesByCondition admission plugin on node create: a new node carries the
/// `node.kubernetes.io/not-ready:NoSchedule` taint until its kubelet reports Ready.
pub fn taint_nodes_by_condition(node: &mut Value) {
    let Some(spec) = node.as_object_mut().and_then(|o| ensure_obj(o, "spec")) else {
        return;
    };
    let present = spec
        .get("taints")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|t| {
            t.get("key").and_then(Value::as_str) == Some("node.kubernetes.io/not-ready")
                && t.get("effect").and_then(Value::as_str) == Some("NoSchedule")
        });
    if present {
        return;
    }
    if let Some(taints) = ensure_array(spec, "taints") {
        taints.push(json!({"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}));
    }
    reorder(spec, NODE_SPEC_ORDER);
}

/// The StorageObjectInUseProtection admission plugin on create: PersistentVolumeClaims get the
/// `kubernetes.io/pvc-protection` finalizer, PersistentVolumes `kubernetes.io/pv-protection`.
pub fn storage_object_in_use_protection(kind: &str, obj: &mut Value) {
    let finalizer = match kind {
        "PersistentVolumeClaim" => "kubernetes.io/pvc-protection",
        "PersistentVolume" => "kubernetes.io/pv-protection",
        _ => return,
    };
    let Some(meta) = obj.as_object_mut().and_then(|o| ensure_obj(o, "metadata")) else {
        return;
    };
    let Some(list) = ensure_array(meta, "finalizers") else {
        return;
    };
    if !list.iter().any(|f| f.as_str() == Some(finalizer)) {
        list.push(json!(finalizer));
    }
    reorder(meta, OBJECT_META_ORDER);
}

/// The DefaultStorageClass admission plugin on PVC create: a claim without
/// `spec.storageClassName` (absent or null; `""` asks for no class) and without the beta
/// storage-class annotation gets the default StorageClass, `default_class`: the newest class
/// annotated `storageclass.kubernetes.io/is-default-class: "true"`, looked up by the caller.
pub fn default_storage_class(pvc: &mut Value, default_class: Option<&str>) {
    let Some(name) = default_class else { return };
    let annotated = pvc
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get("volume.beta.kubernetes.io/storage-class"))
        .is_some();
    if annotated {
        return;
    }
    if let Some(spec) = pvc.as_object_mut().and_then(|o| ensure_obj(o, "spec")) {
        if is_unset(spec.get("storageClassName")) {
            spec.insert("storageClassName".into(), json!(name));
            reorder(spec, PVC_SPEC_ORDER);
        }
    }
}

/// The DefaultIngressClass admission plugin on Ingress create: an Ingress without
/// `spec.ingressClassName` and without the `kubernetes.io/ingress.class` annotation gets the
/// default IngressClass, `default_class` (annotated
/// `ingressclass.kubernetes.io/is-default-class: "true"`, looked up by the caller).
pub fn default_ingress_class(ingress: &mut Value, default_class: Option<&str>) {
    let Some(name) = default_class else { return };
    let annotated = ingress
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get("kubernetes.io/ingress.class"))
        .is_some();
    if annotated {
        return;
    }
    if let Some(spec) = ingress.as_object_mut().and_then(|o| ensure_obj(o, "spec")) {
        if is_unset(spec.get("ingressClassName")) {
            spec.insert("ingressClassName".into(), json!(name));
            reorder(
                spec,
                &["ingressClassName", "defaultBackend", "tls", "rules"],
            );
        }
    }
}

/// What upstream's registry strategies add to a new object beyond defaulting, for the kinds
/// meso's generic strategy does not cover: a Job's generated selector and template labels
/// (from its `uid`; the name must be final), a DaemonSet's template generation annotation.
pub fn prepare_for_create(group: &str, kind: &str, obj: &mut Value, uid: &str) {
    let Some(o) = obj.as_object_mut() else { return };
    match (group, kind) {
        ("batch", "Job") => job_generate_selector(o, uid),
        ("apps", "DaemonSet") => {
            let generation = daemon_set_template_generation(o).filter(|g| *g >= 1);
            set_daemon_set_template_generation(o, generation.unwrap_or(1));
        }
        _ => {}
    }
}

/// What upstream's registry strategies change on update beyond defaulting: a DaemonSet's
/// template generation is the stored one, plus one when the pod template changed.
/// Call after [`apply_defaults`] on both objects.
pub fn prepare_for_update(group: &str, kind: &str, new: &mut Value, old: &Value) {
    if (group, kind) != ("apps", "DaemonSet") {
        return;
    }
    let old_generation = old
        .as_object()
        .and_then(daemon_set_template_generation)
        .unwrap_or(0);
    let template_changed = new.get("spec").and_then(|s| s.get("template"))
        != old.get("spec").and_then(|s| s.get("template"));
    let generation = if template_changed {
        old_generation + 1
    } else {
        old_generation
    };
    if let Some(o) = new.as_object_mut() {
        if generation > 0 {
            set_daemon_set_template_generation(o, generation);
        } else if let Some(a) = obj_at(o, &["metadata", "annotations"]) {
            a.shift_remove(DAEMON_SET_TEMPLATE_GENERATION);
        }
    }
}

/// Upstream's Service update keeps what the stored Service was given when the update omits
/// it: `clusterIP`/`clusterIPs` (while both need one) and `ipFamilyPolicy`. Call before
/// [`apply_defaults`] on updates. (NodePorts and `healthCheckNodePort` are the allocator's.)
pub fn service_update_carry_over(new: &mut Value, old: &Value) {
    let (Some(spec), Some(old_spec)) = (
        new.as_object_mut().and_then(|o| ensure_obj(o, "spec")),
        old.get("spec").and_then(Value::as_object),
    ) else {
        return;
    };
    let needs_ip = |s: &Obj| str_of(s, "type") != "ExternalName";
    if needs_ip(spec) && needs_ip(old_spec) {
        if str_of(spec, "clusterIP").is_empty() {
            if let Some(v) = old_spec.get("clusterIP") {
                spec.insert("clusterIP".into(), v.clone());
            }
        }
        let new_ips_empty = spec
            .get("clusterIPs")
            .and_then(Value::as_array)
            .is_none_or(|a| a.is_empty());
        if new_ips_empty {
            if let Some(v) = old_spec
                .get("clusterIPs")
                .filter(|v| v.as_array().is_some_and(|a| !a.is_empty()))
            {
                spec.insert("clusterIPs".into(), v.clone());
            }
        }
        if is_unset(spec.get("ipFamilyPolicy")) {
            if let Some(v) = old_spec.get("ipFamilyPolicy") {
                spec.insert("ipFamilyPolicy".into(), v.clone());
            }
        }
    }
    reorder(spec, SERVICE_SPEC_ORDER);
}

/// Sorts the keys of every object in `v`, as upstream writes custom resources (unstructured
/// objects are Go maps, whose keys the encoder sorts). Built-in kinds are not sorted this way.
pub fn sort_keys_recursively(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.sort_keys();
            for child in m.values_mut() {
                sort_keys_recursively(child);
            }
        }
        Value::Array(a) => {
            for child in a {
                sort_keys_recursively(child);
            }
        }
        _ => {}
    }
}

/// Structural-schema defaulting of a custom resource, as the apiextensions server applies it
/// to request bodies and stored objects: every property whose schema has a `default` and that
/// is absent (or null while not `nullable`) gets a copy of the default, recursively through
/// `properties`, `additionalProperties` and `items`. `schema` is the served version's
/// `openAPIV3Schema`. Afterwards, nulls of non-nullable fields without a default are dropped
/// (upstream's `PruneNonNullableNullsWithoutDefaults`).
pub fn apply_crd_schema_defaults(schema: &Value, obj: &mut Value) {
    schema_default(obj, schema, true);
    prune_non_nullable_nulls(obj, schema, true);
}

fn schema_default(x: &mut Value, s: &Value, root: bool) {
    match x {
        Value::Object(m) => {
            if let Some(props) = s.get("properties").and_then(Value::as_object) {
                for (k, prop) in props {
                    if root && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                        continue;
                    }
                    let Some(default) = prop.get("default").filter(|d| !d.is_null()) else {
                        continue;
                    };
                    let nullable = prop.get("nullable").and_then(Value::as_bool) == Some(true);
                    let missing = match m.get(k) {
                        None => true,
                        Some(Value::Null) => !nullable,
                        Some(_) => false,
                    };
                    if missing {
                        m.insert(k.clone(), default.clone());
                    }
                }
            }
            let props = s.get("properties").and_then(Value::as_object);
            let additional = s.get("additionalProperties").filter(|a| a.is_object());
            for (k, v) in m.iter_mut() {
                if root && k == "metadata" {
                    continue;
                }
                match props.and_then(|p| p.get(k)) {
                    Some(prop) => schema_default(v, prop, false),
                    None => {
                        if let Some(a) = additional {
                            schema_default(v, a, false);
                        }
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = s.get("items").filter(|i| i.is_object()) {
                for v in items {
                    schema_default(v, item_schema, false);
                }
            }
        }
        _ => {}
    }
}

fn prune_non_nullable_nulls(x: &mut Value, s: &Value, root: bool) {
    match x {
        Value::Object(m) => {
            let props = s.get("properties").and_then(Value::as_object);
            let additional = s.get("additionalProperties").filter(|a| a.is_object());
            m.retain(|k, v| {
                if !v.is_null() || (root && k == "metadata") {
                    return true;
                }
                match props.and_then(|p| p.get(k)) {
                    Some(p) => {
                        p.get("nullable").and_then(Value::as_bool) == Some(true)
                            || p.get("default").is_some_and(|d| !d.is_null())
                    }
                    None => true,
                }
            });
            for (k, v) in m.iter_mut() {
                if root && k == "metadata" {
                    continue;
                }
                if let Some(p) = props.and_then(|p| p.get(k)).or(additional) {
                    prune_non_nullable_nulls(v, p, false);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = s.get("items").filter(|i| i.is_object()) {
                for v in items {
                    prune_non_nullable_nulls(v, item_schema, false);
                }
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Field orders (Go struct order)
// ---------------------------------------------------------------------------------------------

const TOP_SPEC_STATUS: &[&str] = &["kind", "apiVersion", "metadata", "spec", "status"];

const OBJECT_META_ORDER: &[&str] = &[
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

const POD_SPEC_ORDER: &[&str] = &[
    "volumes",
    "initContainers",
    "containers",
    "ephemeralContainers",
    "restartPolicy",
    "terminationGracePeriodSeconds",
    "activeDeadlineSeconds",
    "dnsPolicy",
    "nodeSelector",
    "serviceAccountName",
    "serviceAccount",
    "automountServiceAccountToken",
    "nodeName",
    "hostNetwork",
    "hostPID",
    "hostIPC",
    "shareProcessNamespace",
    "securityContext",
    "imagePullSecrets",
    "hostname",
    "subdomain",
    "affinity",
    "schedulerName",
    "tolerations",
    "hostAliases",
    "priorityClassName",
    "priority",
    "dnsConfig",
    "readinessGates",
    "runtimeClassName",
    "enableServiceLinks",
    "preemptionPolicy",
    "overhead",
    "topologySpreadConstraints",
    "setHostnameAsFQDN",
    "os",
    "hostUsers",
    "schedulingGates",
    "resourceClaims",
    "resources",
    "hostnameOverride",
    "workloadRef",
];

const CONTAINER_ORDER: &[&str] = &[
    "name",
    "image",
    "command",
    "args",
    "workingDir",
    "ports",
    "envFrom",
    "env",
    "resources",
    "resizePolicy",
    "restartPolicy",
    "restartPolicyRules",
    "volumeMounts",
    "volumeDevices",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "imagePullPolicy",
    "securityContext",
    "stdin",
    "stdinOnce",
    "tty",
    "targetContainerName",
];

const VOLUME_ORDER: &[&str] = &[
    "name",
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
];

const PROBE_ORDER: &[&str] = &[
    "exec",
    "httpGet",
    "tcpSocket",
    "grpc",
    "initialDelaySeconds",
    "timeoutSeconds",
    "periodSeconds",
    "successThreshold",
    "failureThreshold",
    "terminationGracePeriodSeconds",
];

const SERVICE_SPEC_ORDER: &[&str] = &[
    "ports",
    "selector",
    "clusterIP",
    "clusterIPs",
    "type",
    "externalIPs",
    "sessionAffinity",
    "loadBalancerIP",
    "loadBalancerSourceRanges",
    "externalName",
    "externalTrafficPolicy",
    "healthCheckNodePort",
    "publishNotReadyAddresses",
    "sessionAffinityConfig",
    "ipFamilies",
    "ipFamilyPolicy",
    "allocateLoadBalancerNodePorts",
    "loadBalancerClass",
    "internalTrafficPolicy",
    "trafficDistribution",
];

const NODE_SPEC_ORDER: &[&str] = &[
    "podCIDR",
    "podCIDRs",
    "providerID",
    "unschedulable",
    "taints",
    "configSource",
    "externalID",
];

const PVC_SPEC_ORDER: &[&str] = &[
    "accessModes",
    "selector",
    "resources",
    "volumeName",
    "storageClassName",
    "volumeMode",
    "dataSource",
    "dataSourceRef",
    "volumeAttributesClassName",
];

const CORE_EVENT_ORDER: &[&str] = &[
    "kind",
    "apiVersion",
    "metadata",
    "involvedObject",
    "reason",
    "message",
    "source",
    "firstTimestamp",
    "lastTimestamp",
    "count",
    "type",
    "eventTime",
    "series",
    "action",
    "related",
    "reportingComponent",
    "reportingInstance",
];

const EVENTS_EVENT_ORDER: &[&str] = &[
    "kind",
    "apiVersion",
    "metadata",
    "eventTime",
    "series",
    "reportingController",
    "reportingInstance",
    "action",
    "reason",
    "regarding",
    "related",
    "note",
    "type",
    "deprecatedSource",
    "deprecatedFirstTimestamp",
    "deprecatedLastTimestamp",
    "deprecatedCount",
];

const OBJECT_REFERENCE_ORDER: &[&str] = &[
    "kind",
    "namespace",
    "name",
    "uid",
    "apiVersion",
    "resourceVersion",
    "fieldPath",
];

const LABEL_SELECTOR_ORDER: &[&str] = &["matchLabels", "matchExpressions"];

// ---------------------------------------------------------------------------------------------
// JSON helpers
// ---------------------------------------------------------------------------------------------

fn is_unset(v: Option<&Value>) -> bool {
    matches!(v, None | Some(Value::Null))
}

/// Unset, or the empty string (Go's zero value of a string field).
fn is_empty_str(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        _ => false,
    }
}

fn str_of<'a>(m: &'a Obj, key: &str) -> &'a str {
    m.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Sets `key` when it is absent or null (a nil pointer, slice or map in Go).
fn default_value(m: &mut Obj, key: &str, v: Value) {
    if is_unset(m.get(key)) {
        m.insert(key.into(), v);
    }
}

/// Sets a string field that is absent, null or empty.
fn default_str(m: &mut Obj, key: &str, v: &str) {
    if is_empty_str(m.get(key)) {
        m.insert(key.into(), json!(v));
    }
}

/// Sets a number field that is absent, null or zero.
fn default_num(m: &mut Obj, key: &str, v: i64) {
    let zero = match m.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        _ => false,
    };
    if zero {
        m.insert(key.into(), json!(v));
    }
}

fn child<'a>(m: &'a mut Obj, key: &str) -> Option<&'a mut Obj> {
    m.get_mut(key).and_then(Value::as_object_mut)
}

/// The object at `key`, inserting `{}` when absent or null; `None` when it is something else.
fn ensure_obj<'a>(m: &'a mut Obj, key: &str) -> Option<&'a mut Obj> {
    if is_unset(m.get(key)) {
        m.insert(key.into(), Value::Object(Map::new()));
    }
    m.get_mut(key).and_then(Value::as_object_mut)
}

/// The array at `key`, inserting `[]` when absent or null.
fn ensure_array<'a>(m: &'a mut Obj, key: &str) -> Option<&'a mut Vec<Value>> {
    if is_unset(m.get(key)) {
        m.insert(key.into(), Value::Array(Vec::new()));
    }
    m.get_mut(key).and_then(Value::as_array_mut)
}

/// The object at a path of existing objects.
fn obj_at<'a>(m: &'a mut Obj, path: &[&str]) -> Option<&'a mut Obj> {
    let mut cur = m;
    for key in path {
        cur = cur.get_mut(*key)?.as_object_mut()?;
    }
    Some(cur)
}

/// The objects in the array at `key`.
fn objects_in<'a>(m: &'a mut Obj, key: &str) -> impl Iterator<Item = &'a mut Obj> {
    m.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

/// Puts the keys of `m` in `order`; keys not listed keep their relative order after them.
fn reorder(m: &mut Obj, order: &[&str]) {
    let rank = |k: &str| order.iter().position(|o| *o == k).unwrap_or(order.len());
    // Usually in order already (an object read back from the store): nothing to move.
    let mut last = 0;
    let sorted = m.keys().all(|k| {
        let r = rank(k);
        let ok = r >= last;
        last = r;
        ok
    });
    if !sorted {
        let mut entries: Vec<(String, Value)> = std::mem::take(m).into_iter().collect();
        // Stable: the keys not listed keep their relative order after the listed ones.
        entries.sort_by_cached_key(|(k, _)| rank(k));
        m.extend(entries);
    }
}

/// Sorts the keys of the map at `key` (Go writes map keys sorted).
fn sort_map(m: &mut Obj, key: &str) {
    if let Some(inner) = child(m, key) {
        inner.sort_keys();
    }
}

fn object_meta(m: &mut Obj) {
    drop_zero_values(
        m,
        &[
            "generateName",
            "labels",
            "annotations",
            "ownerReferences",
            "finalizers",
        ],
    );
    sort_map(m, "labels");
    sort_map(m, "annotations");
    reorder(m, OBJECT_META_ORDER);
}

/// Drops the listed fields when they hold their Go zero value (`""`, `false`, `0`, `[]`, `{}`
/// or null): fields that are neither pointers nor written without `omitempty`, which Go's
/// encoder leaves out.
fn drop_zero_values(m: &mut Obj, keys: &[&str]) {
    for key in keys {
        let zero = match m.get(*key) {
            Some(Value::Null) => true,
            Some(Value::String(s)) => s.is_empty(),
            Some(Value::Bool(b)) => !b,
            Some(Value::Number(n)) => n.as_f64() == Some(0.0),
            Some(Value::Array(a)) => a.is_empty(),
            Some(Value::Object(o)) => o.is_empty(),
            None => false,
        };
        if zero {
            m.shift_remove(*key);
        }
    }
}

fn label_selector(m: &mut Obj) {
    sort_map(m, "matchLabels");
    for e in objects_in(m, "matchExpressions") {
        reorder(e, &["key", "operator", "values"]);
    }
    reorder(m, LABEL_SELECTOR_ORDER);
}

fn selector_at(m: &mut Obj, key: &str) {
    if let Some(s) = child(m, key) {
        label_selector(s);
    }
}

// ---------------------------------------------------------------------------------------------
// Pods and pod templates
// ---------------------------------------------------------------------------------------------

fn pod(o: &mut Obj) {
    if let Some(spec) = ensure_obj(o, "spec") {
        pod_only_defaults(spec);
        pod_spec(spec);
    }
    if let Some(status) = ensure_obj(o, "status") {
        pod_status(status);
    }
}

/// `SetDefaults_Pod`: what only a Pod (not a pod template) gets.
fn pod_only_defaults(spec: &mut Obj) {
    for list in ["containers", "initContainers"] {
        for c in objects_in(spec, list) {
            requests_from_limits(c);
        }
    }
    pod_level_requests(spec);
    default_value(spec, "enableServiceLinks", json!(true));
    if spec.get("hostNetwork").and_then(Value::as_bool) == Some(true) {
        for list in ["containers", "initContainers"] {
            for c in objects_in(spec, list) {
                for p in objects_in(c, "ports") {
                    let zero = p.get("hostPort").and_then(Value::as_i64).unwrap_or(0) == 0;
                    if zero {
                        if let Some(cp) = p.get("containerPort").cloned() {
                            p.insert("hostPort".into(), cp);
                        }
                    }
                }
            }
        }
    }
}

/// Container requests default to the container's limits.
fn requests_from_limits(c: &mut Obj) {
    let Some(res) = child(c, "resources") else {
        return;
    };
    let Some(limits) = res.get("limits").and_then(Value::as_object).cloned() else {
        return;
    };
    let Some(requests) = ensure_obj(res, "requests") else {
        return;
    };
    for (k, v) in limits {
        requests.entry(k).or_insert(v);
    }
}

/// Pod-level requests default to the pod-level limits for the resources no container requests
/// (the PodLevelResources feature).
fn pod_level_requests(spec: &mut Obj) {
    let mut requested: Vec<String> = Vec::new();
    for list in ["containers", "initContainers"] {
        for c in spec
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(r) = c
                .get("resources")
                .and_then(|r| r.get("requests"))
                .and_then(Value::as_object)
            {
                requested.extend(r.keys().cloned());
            }
        }
    }
    let Some(res) = child(spec, "resources") else {
        return;
    };
    let Some(limits) = res
        .get("limits")
        .and_then(Value::as_object)
        .filter(|l| !l.is_empty())
        .cloned()
    else {
        return;
    };
    let supported = |k: &str| k == "cpu" || k == "memory" || k.starts_with("hugepages-");
    let additions: Vec<(String, Value)> = limits
        .into_iter()
        .filter(|(k, _)| supported(k) && !requested.contains(k))
        .collect();
    if additions.is_empty() {
        return;
    }
    if let Some(requests) = ensure_obj(res, "requests") {
        for (k, v) in additions {
            requests.entry(k).or_insert(v);
        }
    }
}

fn pod_template(t: &mut Obj) {
    if let Some(m) = ensure_obj(t, "metadata") {
        object_meta(m);
    }
    if let Some(spec) = ensure_obj(t, "spec") {
        pod_spec(spec);
    }
    reorder(t, &["metadata", "spec"]);
}

/// `SetDefaults_PodSpec` and everything nested in a PodSpec.
fn pod_spec(spec: &mut Obj) {
    default_str(spec, "dnsPolicy", "ClusterFirst");
    default_str(spec, "restartPolicy", "Always");
    default_value(spec, "securityContext", json!({}));
    default_value(spec, "terminationGracePeriodSeconds", json!(30));
    default_str(spec, "schedulerName", "default-scheduler");

    // serviceAccount is the deprecated alias of serviceAccountName.
    if str_of(spec, "serviceAccountName").is_empty() {
        let alias = str_of(spec, "serviceAccount").to_string();
        if !alias.is_empty() {
            spec.insert("serviceAccountName".into(), json!(alias));
        }
    }
    let name = str_of(spec, "serviceAccountName").to_string();
    if name.is_empty() {
        spec.shift_remove("serviceAccount");
    } else {
        spec.insert("serviceAccount".into(), json!(name));
    }

    for v in objects_in(spec, "volumes") {
        volume(v);
    }
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for c in objects_in(spec, list) {
            container(c);
        }
    }
    resource_list_at(spec, "overhead");
    if let Some(res) = child(spec, "resources") {
        resource_requirements(res);
    }
    sort_map(spec, "nodeSelector");
    for t in objects_in(spec, "tolerations") {
        drop_zero_values(t, &["key", "operator", "value", "effect"]);
        reorder(
            t,
            &["key", "operator", "value", "effect", "tolerationSeconds"],
        );
    }
    drop_zero_values(
        spec,
        &[
            "volumes",
            "initContainers",
            "ephemeralContainers",
            "nodeSelector",
            "serviceAccountName",
            "serviceAccount",
            "nodeName",
            "hostNetwork",
            "hostPID",
            "hostIPC",
            "imagePullSecrets",
            "hostname",
            "subdomain",
            "tolerations",
            "hostAliases",
            "priorityClassName",
            "readinessGates",
            "overhead",
            "topologySpreadConstraints",
            "schedulingGates",
            "resourceClaims",
        ],
    );
    reorder(spec, POD_SPEC_ORDER);
}

fn container(c: &mut Obj) {
    if is_empty_str(c.get("imagePullPolicy")) {
        let image = str_of(c, "image");
        let policy = pull_policy_for(image);
        c.insert("imagePullPolicy".into(), json!(policy));
    }
    default_str(c, "terminationMessagePath", "/dev/termination-log");
    default_str(c, "terminationMessagePolicy", "File");
    for p in objects_in(c, "ports") {
        default_str(p, "protocol", "TCP");
        drop_zero_values(p, &["name", "hostPort", "hostIP"]);
        reorder(
            p,
            &["name", "hostPort", "containerPort", "protocol", "hostIP"],
        );
    }
    for e in objects_in(c, "env") {
        if let Some(from) = child(e, "valueFrom") {
            if let Some(f) = child(from, "fieldRef") {
                object_field_selector(f);
            }
            reorder(
                from,
                &[
                    "fieldRef",
                    "resourceFieldRef",
                    "configMapKeyRef",
                    "secretKeyRef",
                    "fileKeyRef",
                ],
            );
        }
        drop_zero_values(e, &["value"]);
        reorder(e, &["name", "value", "valueFrom"]);
    }
    if let Some(res) = ensure_obj(c, "resources") {
        resource_requirements(res);
    }
    for probe_key in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = child(c, probe_key) {
            probe(p);
        }
    }
    if let Some(l) = child(c, "lifecycle") {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = child(l, hook) {
                if let Some(g) = child(h, "httpGet") {
                    http_get(g);
                }
                reorder(h, &["exec", "httpGet", "tcpSocket", "sleep"]);
            }
        }
        reorder(l, &["postStart", "preStop", "stopSignal"]);
    }
    for m in objects_in(c, "volumeMounts") {
        drop_zero_values(m, &["readOnly", "subPath", "subPathExpr"]);
        reorder(
            m,
            &[
                "name",
                "readOnly",
                "recursiveReadOnly",
                "mountPath",
                "subPath",
                "mountPropagation",
                "subPathExpr",
            ],
        );
    }
    drop_zero_values(
        c,
        &[
            "image",
            "command",
            "args",
            "workingDir",
            "ports",
            "envFrom",
            "env",
            "resizePolicy",
            "volumeMounts",
            "volumeDevices",
            "restartPolicyRules",
            "stdin",
            "stdinOnce",
            "tty",
            "targetContainerName",
        ],
    );
    reorder(c, CONTAINER_ORDER);
}

fn probe(p: &mut Obj) {
    drop_zero_values(p, &["initialDelaySeconds"]);
    default_num(p, "timeoutSeconds", 1);
    default_num(p, "periodSeconds", 10);
    default_num(p, "successThreshold", 1);
    default_num(p, "failureThreshold", 3);
    if let Some(g) = child(p, "httpGet") {
        http_get(g);
    }
    if let Some(g) = child(p, "grpc") {
        default_value(g, "service", json!(""));
        reorder(g, &["port", "service"]);
    }
    reorder(p, PROBE_ORDER);
}

fn http_get(g: &mut Obj) {
    default_str(g, "path", "/");
    default_str(g, "scheme", "HTTP");
    reorder(g, &["path", "port", "host", "scheme", "httpHeaders"]);
}

fn object_field_selector(f: &mut Obj) {
    default_str(f, "apiVersion", "v1");
    reorder(f, &["apiVersion", "fieldPath"]);
}

fn resource_requirements(res: &mut Obj) {
    resource_list_at(res, "limits");
    resource_list_at(res, "requests");
    drop_zero_values(res, &["limits", "requests", "claims"]);
    reorder(res, &["limits", "requests", "claims"]);
}

/// The pull policy upstream picks for an image without one: `Always` for `:latest` (or no tag
/// and no digest), `IfNotPresent` otherwise (also for references it cannot parse).
pub fn pull_policy_for(image: &str) -> &'static str {
    if image_tag(image).as_deref() == Some("latest") {
        "Always"
    } else {
        "IfNotPresent"
    }
}

/// The tag of an image reference as `parsers.ParseImageName` reports it: the explicit tag,
/// `latest` when there is neither tag nor digest, empty with only a digest; `None` when the
/// reference does not parse.
fn image_tag(image: &str) -> Option<String> {
    if image.is_empty() || image.len() > 4096 {
        return None;
    }
    let (rest, digest) = match image.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (image, None),
    };
    if let Some(d) = digest {
        let (algo, hex) = d.split_once(':')?;
        let algo_ok = !algo.is_empty()
            && algo.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && algo
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_+.".contains(c));
        if !algo_ok || hex.len() < 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
    }
    let (name, tag) = match rest.rfind(':') {
        Some(i) if !rest[i + 1..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest, None),
    };
    if let Some(t) = tag {
        let ok = !t.is_empty()
            && t.len() <= 128
            && t.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-');
        if !ok {
            return None;
        }
    }
    if name.is_empty() || name.len() > 255 {
        return None;
    }
    let mut components: Vec<&str> = name.split('/').collect();
    if components.len() > 1 {
        let first = components[0];
        let is_domain = first.contains('.')
            || first.contains(':')
            || first == "localhost"
            || first.chars().any(|c| c.is_ascii_uppercase());
        if is_domain {
            if !valid_domain(first) {
                return None;
            }
            components.remove(0);
        }
    }
    if components.is_empty() || !components.iter().all(|c| valid_path_component(c)) {
        return None;
    }
    let remote = components.join("/");
    if remote.len() == 64 && remote.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    Some(match tag {
        Some(t) => t.to_string(),
        None if digest.is_some() => String::new(),
        None => "latest".to_string(),
    })
}

fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (h, Some(p)),
        _ => (d, None),
    };
    if let Some(p) = port {
        if p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()) {
            return false;
        }
    }
    if host.starts_with('[') && host.ends_with(']') {
        return host.len() > 2
            && host[1..host.len() - 1]
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.');
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn valid_path_component(c: &str) -> bool {
    let alnum = |ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit();
    let bytes: Vec<char> = c.chars().collect();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        let ch = bytes[i];
        if alnum(ch) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__" or one or more "-".
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep: String = bytes[start..i].iter().collect();
        let ok = sep == "." || sep == "_" || sep == "__" || sep.chars().all(|s| s == '-');
        if !ok {
            return false;
        }
    }
    true
}

fn volume(v: &mut Obj) {
    let has_source = v.iter().any(|(k, val)| k != "name" && !val.is_null());
    if !has_source {
        v.insert("emptyDir".into(), json!({}));
    }
    if let Some(s) = child(v, "hostPath") {
        default_value(s, "type", json!(""));
        reorder(s, &["path", "type"]);
    }
    if let Some(s) = child(v, "emptyDir") {
        if let Some(q) = s.get_mut("sizeLimit") {
            canonicalize_quantity_value(q, false);
        }
        reorder(s, &["medium", "sizeLimit"]);
    }
    if let Some(s) = child(v, "secret") {
        default_value(s, "defaultMode", json!(420));
        key_to_paths(s);
        reorder(s, &["secretName", "items", "defaultMode", "optional"]);
    }
    if let Some(s) = child(v, "configMap") {
        default_value(s, "defaultMode", json!(420));
        key_to_paths(s);
        reorder(s, &["name", "items", "defaultMode", "optional"]);
    }
    if let Some(s) = child(v, "downwardAPI") {
        default_value(s, "defaultMode", json!(420));
        downward_api_items(s);
        reorder(s, &["items", "defaultMode"]);
    }
    if let Some(s) = child(v, "projected") {
        default_value(s, "defaultMode", json!(420));
        for src in objects_in(s, "sources") {
            if let Some(d) = child(src, "downwardAPI") {
                downward_api_items(d);
            }
            if let Some(t) = child(src, "serviceAccountToken") {
                default_value(t, "expirationSeconds", json!(3600));
                reorder(t, &["audience", "expirationSeconds", "path"]);
            }
            for k in ["secret", "configMap"] {
                if let Some(p) = child(src, k) {
                    key_to_paths(p);
                    reorder(p, &["name", "items", "optional"]);
                }
            }
            reorder(
                src,
                &[
                    "secret",
                    "downwardAPI",
                    "configMap",
                    "serviceAccountToken",
                    "clusterTrustBundle",
                    "podCertificate",
                ],
            );
        }
        reorder(s, &["sources", "defaultMode"]);
    }
    if let Some(s) = child(v, "iscsi") {
        default_str(s, "iscsiInterface", "default");
    }
    if let Some(s) = child(v, "rbd") {
        rbd_defaults(s);
    }
    if let Some(s) = child(v, "azureDisk") {
        azure_disk_defaults(s);
    }
    if let Some(s) = child(v, "scaleIO") {
        scale_io_defaults(s);
    }
    if let Some(s) = child(v, "image") {
        if is_empty_str(s.get("pullPolicy")) {
            let policy = pull_policy_for(str_of(s, "reference"));
            s.insert("pullPolicy".into(), json!(policy));
        }
        reorder(s, &["reference", "pullPolicy"]);
    }
    if let Some(t) = obj_at(v, &["ephemeral", "volumeClaimTemplate"]) {
        if let Some(m) = ensure_obj(t, "metadata") {
            object_meta(m);
        }
        if let Some(spec) = ensure_obj(t, "spec") {
            pvc_spec(spec);
        }
        reorder(t, &["metadata", "spec"]);
    }
    reorder(v, VOLUME_ORDER);
}

fn key_to_paths(s: &mut Obj) {
    for i in objects_in(s, "items") {
        reorder(i, &["key", "path", "mode"]);
    }
}

fn downward_api_items(s: &mut Obj) {
    for i in objects_in(s, "items") {
        if let Some(f) = child(i, "fieldRef") {
            object_field_selector(f);
        }
        reorder(i, &["path", "fieldRef", "resourceFieldRef", "mode"]);
    }
}

fn rbd_defaults(s: &mut Obj) {
    default_str(s, "pool", "rbd");
    default_str(s, "user", "admin");
    default_str(s, "keyring", "/etc/ceph/keyring");
}

fn azure_disk_defaults(s: &mut Obj) {
    default_value(s, "cachingMode", json!("ReadWrite"));
    default_value(s, "kind", json!("Shared"));
    default_value(s, "fsType", json!("ext4"));
    default_value(s, "readOnly", json!(false));
}

fn scale_io_defaults(s: &mut Obj) {
    default_str(s, "storageMode", "ThinProvisioned");
    default_str(s, "fsType", "xfs");
}

fn pod_status(status: &mut Obj) {
    // podIP/podIPs and hostIP/hostIPs mirror each other through conversion.
    for (single, plural) in [("podIP", "podIPs"), ("hostIP", "hostIPs")] {
        let ip = str_of(status, single).to_string();
        let plural_empty = status
            .get(plural)
            .and_then(Value::as_array)
            .is_none_or(|a| a.is_empty());
        if plural_empty && !ip.is_empty() {
            status.insert(plural.into(), json!([{"ip": ip}]));
        }
        let first = status
            .get(plural)
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(|p| p.get("ip"))
            .and_then(Value::as_str)
            .map(str::to_string);
        if let Some(first) = first {
            status.insert(single.into(), json!(first));
        }
    }
    for list in [
        "initContainerStatuses",
        "containerStatuses",
        "ephemeralContainerStatuses",
    ] {
        for cs in objects_in(status, list) {
            resource_list_at(cs, "allocatedResources");
            if let Some(r) = child(cs, "resources") {
                resource_requirements(r);
            }
        }
    }
    reorder(
        status,
        &[
            "observedGeneration",
            "phase",
            "conditions",
            "message",
            "reason",
            "nominatedNodeName",
            "hostIP",
            "hostIPs",
            "podIP",
            "podIPs",
            "startTime",
            "initContainerStatuses",
            "containerStatuses",
            "qosClass",
            "ephemeralContainerStatuses",
            "resize",
            "resourceClaimStatuses",
            "extendedResourceClaimStatus",
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// Core kinds
// ---------------------------------------------------------------------------------------------

fn replication_controller(o: &mut Obj) {
    let template_labels = o
        .get("spec")
        .and_then(|s| s.get("template"))
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .filter(|l| !l.is_empty())
        .cloned();
    if let Some(labels) = template_labels {
        if let Some(spec) = ensure_obj(o, "spec") {
            let empty = spec
                .get("selector")
                .and_then(Value::as_object)
                .is_none_or(|s| s.is_empty());
            if empty {
                spec.insert("selector".into(), Value::Object(labels.clone()));
            }
        }
        if let Some(meta) = ensure_obj(o, "metadata") {
            let empty = meta
                .get("labels")
                .and_then(Value::as_object)
                .is_none_or(|l| l.is_empty());
            if empty {
                meta.insert("labels".into(), Value::Object(labels));
            }
        }
    }
    if let Some(spec) = ensure_obj(o, "spec") {
        default_value(spec, "replicas", json!(1));
        sort_map(spec, "selector");
        if let Some(t) = child(spec, "template") {
            pod_template(t);
        }
        reorder(
            spec,
            &["replicas", "minReadySeconds", "selector", "template"],
        );
    }
    if let Some(status) = ensure_obj(o, "status") {
        default_value(status, "replicas", json!(0));
        reorder(
            status,
            &[
                "replicas",
                "fullyLabeledReplicas",
                "readyReplicas",
                "availableReplicas",
                "observedGeneration",
                "conditions",
            ],
        );
    }
}

fn service(o: &mut Obj) {
    let Some(spec) = ensure_obj(o, "spec") else {
        return;
    };
    default_str(spec, "sessionAffinity", "None");
    match str_of(spec, "sessionAffinity") {
        "None" => {
            spec.shift_remove("sessionAffinityConfig");
        }
        "ClientIP" => {
            let has_timeout = spec
                .get("sessionAffinityConfig")
                .and_then(|c| c.get("clientIP"))
                .and_then(|c| c.get("timeoutSeconds"))
                .is_some_and(|t| !t.is_null());
            if !has_timeout {
                spec.insert(
                    "sessionAffinityConfig".into(),
                    json!({"clientIP": {"timeoutSeconds": 10800}}),
                );
            }
        }
        _ => {}
    }
    default_str(spec, "type", "ClusterIP");
    for p in objects_in(spec, "ports") {
        default_str(p, "protocol", "TCP");
        let unset = match p.get("targetPort") {
            None | Some(Value::Null) => true,
            Some(Value::Number(n)) => n.as_i64() == Some(0),
            Some(Value::String(s)) => s.is_empty(),
            _ => false,
        };
        if unset {
            if let Some(port) = p.get("port").cloned() {
                p.insert("targetPort".into(), port);
            }
        }
        drop_zero_values(p, &["name", "nodePort"]);
        reorder(
            p,
            &[
                "name",
                "protocol",
                "appProtocol",
                "port",
                "targetPort",
                "nodePort",
            ],
        );
    }
    let svc_type = str_of(spec, "type").to_string();
    let has_external_ips = spec
        .get("externalIPs")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    let externally_accessible = svc_type == "LoadBalancer"
        || svc_type == "NodePort"
        || (svc_type == "ClusterIP" && has_external_ips);
    if externally_accessible {
        default_str(spec, "externalTrafficPolicy", "Cluster");
    }
    if matches!(svc_type.as_str(), "NodePort" | "LoadBalancer" | "ClusterIP") {
        default_value(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if svc_type == "LoadBalancer" {
        default_value(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    if svc_type != "ExternalName" {
        service_ip_families(spec);
    }
    sort_map(spec, "selector");
    drop_zero_values(
        spec,
        &[
            "ports",
            "selector",
            "clusterIP",
            "clusterIPs",
            "externalIPs",
            "loadBalancerIP",
            "loadBalancerSourceRanges",
            "externalName",
            "externalTrafficPolicy",
            "healthCheckNodePort",
            "publishNotReadyAddresses",
        ],
    );
    reorder(spec, SERVICE_SPEC_ORDER);

    if let Some(status) = ensure_obj(o, "status") {
        if let Some(lb) = ensure_obj(status, "loadBalancer") {
            if svc_type == "LoadBalancer" {
                for ing in objects_in(lb, "ingress") {
                    if !str_of(ing, "ip").is_empty() {
                        default_value(ing, "ipMode", json!("VIP"));
                    }
                }
            }
            for ing in objects_in(lb, "ingress") {
                reorder(ing, &["ip", "hostname", "ipMode", "ports"]);
            }
        }
        reorder(status, &["loadBalancer", "conditions"]);
    }
}

/// The IP family fields upstream's Service REST fills on create (`normalizeClusterIPs` and
/// `initIPFamilyFields`) on a single-stack IPv4 cluster.
fn service_ip_families(spec: &mut Obj) {
    let cluster_ip = str_of(spec, "clusterIP").to_string();
    let ips_empty = spec
        .get("clusterIPs")
        .and_then(Value::as_array)
        .is_none_or(|a| a.is_empty());
    if ips_empty && !cluster_ip.is_empty() {
        spec.insert("clusterIPs".into(), json!([cluster_ip]));
    }
    let selectorless = spec
        .get("selector")
        .and_then(Value::as_object)
        .is_none_or(|s| s.is_empty());
    let headless_selectorless = cluster_ip == "None" && selectorless;
    if is_unset(spec.get("ipFamilyPolicy")) {
        let policy = if headless_selectorless {
            "RequireDualStack"
        } else {
            let many = |k: &str| {
                spec.get(k)
                    .and_then(Value::as_array)
                    .is_some_and(|a| a.len() > 1)
            };
            if many("clusterIPs") || many("ipFamilies") {
                "RequireDualStack"
            } else {
                "SingleStack"
            }
        };
        spec.insert("ipFamilyPolicy".into(), json!(policy));
    }
    let ips: Vec<String> = spec
        .get("clusterIPs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    let mut families: Vec<Value> = spec
        .get("ipFamilies")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (i, ip) in ips.iter().enumerate() {
        if ip == "None" {
            break;
        }
        if i >= families.len() {
            families.push(json!(if ip.contains(':') { "IPv6" } else { "IPv4" }));
        }
    }
    if families.is_empty() {
        families.push(json!("IPv4"));
    }
    let single = str_of(spec, "ipFamilyPolicy") == "SingleStack";
    if headless_selectorless && families.len() < 2 && !single {
        let alt = if families[0] == "IPv4" {
            "IPv6"
        } else {
            "IPv4"
        };
        families.push(json!(alt));
    }
    spec.insert("ipFamilies".into(), Value::Array(families));
}

fn endpoints(o: &mut Obj) {
    for s in objects_in(o, "subsets") {
        for list in ["addresses", "notReadyAddresses"] {
            for a in objects_in(s, list) {
                if let Some(r) = child(a, "targetRef") {
                    reorder(r, OBJECT_REFERENCE_ORDER);
                }
                reorder(a, &["ip", "hostname", "nodeName", "targetRef"]);
            }
        }
        for p in objects_in(s, "ports") {
            default_str(p, "protocol", "TCP");
            reorder(p, &["name", "port", "protocol", "appProtocol"]);
        }
        reorder(s, &["addresses", "notReadyAddresses", "ports"]);
    }
}

fn secret(o: &mut Obj) {
    // stringData is write-only: conversion folds it into data.
    if let Some(Value::Object(sd)) = o.shift_remove("stringData") {
        if let Some(data) = ensure_obj(o, "data") {
            for (k, v) in sd {
                let s = match &v {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                let encoded = base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
                data.insert(k, json!(encoded));
            }
        }
    }
    default_str(o, "type", "Opaque");
    sort_map(o, "data");
}

fn namespace(o: &mut Obj) {
    let name = o
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if !name.is_empty() {
        if let Some(labels) = ensure_obj(o, "metadata").and_then(|m| ensure_obj(m, "labels")) {
            labels.insert("kubernetes.io/metadata.name".into(), json!(name));
        }
    }
    if let Some(spec) = ensure_obj(o, "spec") {
        reorder(spec, &["finalizers"]);
    }
    if let Some(status) = ensure_obj(o, "status") {
        default_str(status, "phase", "Active");
        reorder(status, &["phase", "conditions"]);
    }
}

fn node(o: &mut Obj) {
    if let Some(spec) = ensure_obj(o, "spec") {
        let cidr = str_of(spec, "podCIDR").to_string();
        let cidrs_empty = spec
            .get("podCIDRs")
            .and_then(Value::as_array)
            .is_none_or(|a| a.is_empty());
        if cidrs_empty && !cidr.is_empty() {
            spec.insert("podCIDRs".into(), json!([cidr]));
        }
        let first = spec
            .get("podCIDRs")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            .map(str::to_string);
        if let Some(first) = first {
            spec.insert("podCIDR".into(), json!(first));
        }
        for t in objects_in(spec, "taints") {
            reorder(t, &["key", "value", "effect", "timeAdded"]);
        }
        reorder(spec, NODE_SPEC_ORDER);
    }
    if let Some(status) = ensure_obj(o, "status") {
        if is_unset(status.get("allocatable")) {
            if let Some(cap) = status.get("capacity").filter(|c| c.is_object()).cloned() {
                status.insert("allocatable".into(), cap);
            }
        }
        resource_list_at(status, "capacity");
        resource_list_at(status, "allocatable");
        if let Some(de) = ensure_obj(status, "daemonEndpoints") {
            if let Some(ke) = ensure_obj(de, "kubeletEndpoint") {
                default_value(ke, "Port", json!(0));
            }
        }
        if let Some(info) = ensure_obj(status, "nodeInfo") {
            for key in NODE_INFO_ORDER.iter().take(10) {
                default_value(info, key, json!(""));
            }
            reorder(info, NODE_INFO_ORDER);
        }
        reorder(
            status,
            &[
                "capacity",
                "allocatable",
                "phase",
                "conditions",
                "addresses",
                "daemonEndpoints",
                "nodeInfo",
                "images",
                "volumesInUse",
                "volumesAttached",
                "config",
                "runtimeHandlers",
                "features",
                "declaredFeatures",
            ],
        );
    }
}

const NODE_INFO_ORDER: &[&str] = &[
    "machineID",
    "systemUUID",
    "bootID",
    "kernelVersion",
    "osImage",
    "containerRuntimeVersion",
    "kubeletVersion",
    "kubeProxyVersion",
    "operatingSystem",
    "architecture",
    "swap",
];

fn persistent_volume(o: &mut Obj) {
    if let Some(spec) = ensure_obj(o, "spec") {
        default_str(spec, "persistentVolumeReclaimPolicy", "Retain");
        default_value(spec, "volumeMode", json!("Filesystem"));
        resource_list_at(spec, "capacity");
        if let Some(s) = child(spec, "hostPath") {
            default_value(s, "type", json!(""));
        }
        if let Some(s) = child(spec, "rbd") {
            rbd_defaults(s);
        }
        if let Some(s) = child(spec, "iscsi") {
            default_str(s, "iscsiInterface", "default");
        }
        if let Some(s) = child(spec, "azureDisk") {
            azure_disk_defaults(s);
        }
        if let Some(s) = child(spec, "scaleIO") {
            scale_io_defaults(s);
        }
    }
    if let Some(status) = ensure_obj(o, "status") {
        default_str(status, "phase", "Pending");
    }
}

fn persistent_volume_claim(o: &mut Obj) {
    if let Some(spec) = ensure_obj(o, "spec") {
        pvc_spec(spec);
    }
    if let Some(status) = ensure_obj(o, "status") {
        pvc_status(status);
    }
}

fn pvc_spec(spec: &mut Obj) {
    default_value(spec, "volumeMode", json!("Filesystem"));
    if let Some(res) = ensure_obj(spec, "resources") {
        resource_list_at(res, "limits");
        resource_list_at(res, "requests");
        reorder(res, &["limits", "requests"]);
    }
    selector_at(spec, "selector");
    reorder(spec, PVC_SPEC_ORDER);
}

fn pvc_status(status: &mut Obj) {
    default_str(status, "phase", "Pending");
    resource_list_at(status, "capacity");
    resource_list_at(status, "allocatedResources");
    reorder(
        status,
        &[
            "phase",
            "accessModes",
            "capacity",
            "conditions",
            "allocatedResources",
            "allocatedResourceStatuses",
            "currentVolumeAttributesClassName",
            "modifyVolumeStatus",
        ],
    );
}

fn core_event(o: &mut Obj) {
    if let Some(r) = ensure_obj(o, "involvedObject") {
        reorder(r, OBJECT_REFERENCE_ORDER);
    }
    if let Some(s) = ensure_obj(o, "source") {
        reorder(s, &["component", "host"]);
    }
    if let Some(r) = child(o, "related") {
        reorder(r, OBJECT_REFERENCE_ORDER);
    }
    for key in ["firstTimestamp", "lastTimestamp", "eventTime"] {
        if !o.contains_key(key) {
            o.insert(key.into(), Value::Null);
        }
    }
    for key in ["reportingComponent", "reportingInstance"] {
        default_value(o, key, json!(""));
    }
}

fn events_event(o: &mut Obj) {
    for key in [
        "eventTime",
        "deprecatedFirstTimestamp",
        "deprecatedLastTimestamp",
    ] {
        if !o.contains_key(key) {
            o.insert(key.into(), Value::Null);
        }
    }
    if let Some(r) = ensure_obj(o, "regarding") {
        reorder(r, OBJECT_REFERENCE_ORDER);
    }
    if let Some(r) = child(o, "related") {
        reorder(r, OBJECT_REFERENCE_ORDER);
    }
    if let Some(s) = ensure_obj(o, "deprecatedSource") {
        reorder(s, &["component", "host"]);
    }
}

fn limit_range(o: &mut Obj) {
    let Some(spec) = ensure_obj(o, "spec") else {
        return;
    };
    for item in objects_in(spec, "limits") {
        for key in [
            "max",
            "min",
            "default",
            "defaultRequest",
            "maxLimitRequestRatio",
        ] {
            resource_list_at(item, key);
        }
        if str_of(item, "type") == "Container" {
            let max = item.get("max").and_then(Value::as_object).cloned();
            let min = item.get("min").and_then(Value::as_object).cloned();
            if let Some(default) = ensure_obj(item, "default") {
                for (k, v) in max.into_iter().flatten() {
                    default.entry(k).or_insert(v);
                }
            }
            let default = item.get("default").and_then(Value::as_object).cloned();
            if let Some(request) = ensure_obj(item, "defaultRequest") {
                for (k, v) in default.into_iter().flatten() {
                    request.entry(k).or_insert(v);
                }
                for (k, v) in min.into_iter().flatten() {
                    request.entry(k).or_insert(v);
                }
            }
            for key in ["default", "defaultRequest"] {
                let empty = item
                    .get(key)
                    .and_then(Value::as_object)
                    .is_some_and(|m| m.is_empty());
                if empty {
                    item.shift_remove(key);
                } else {
                    sort_map(item, key);
                }
            }
        }
        reorder(
            item,
            &[
                "type",
                "max",
                "min",
                "default",
                "defaultRequest",
                "maxLimitRequestRatio",
            ],
        );
    }
}

fn resource_quota(o: &mut Obj) {
    if let Some(spec) = child(o, "spec") {
        resource_list_at(spec, "hard");
        reorder(spec, &["hard", "scopes", "scopeSelector"]);
    }
    if let Some(status) = ensure_obj(o, "status") {
        resource_list_at(status, "hard");
        resource_list_at(status, "used");
    }
}

// ---------------------------------------------------------------------------------------------
// apps
// ---------------------------------------------------------------------------------------------

fn deployment(o: &mut Obj) {
    if let Some(spec) = ensure_obj(o, "spec") {
        drop_zero_values(spec, &["minReadySeconds", "paused"]);
        default_value(spec, "replicas", json!(1));
        if let Some(strategy) = ensure_obj(spec, "strategy") {
            default_str(strategy, "type", "RollingUpdate");
            if str_of(strategy, "type") == "RollingUpdate" {
                if let Some(ru) = ensure_obj(strategy, "rollingUpdate") {
                    default_value(ru, "maxUnavailable", json!("25%"));
                    default_value(ru, "maxSurge", json!("25%"));
                    reorder(ru, &["maxUnavailable", "maxSurge"]);
                }
            }
            reorder(strategy, &["type", "rollingUpdate"]);
        }
        default_value(spec, "revisionHistoryLimit", json!(10));
        default_value(spec, "progressDeadlineSeconds", json!(600));
        selector_at(spec, "selector");
        if let Some(t) = ensure_obj(spec, "template") {
            pod_template(t);
        }
        reorder(
            spec,
            &[
                "replicas",
                "selector",
                "template",
                "strategy",
                "minReadySeconds",
                "revisionHistoryLimit",
                "paused",
                "progressDeadlineSeconds",
            ],
        );
    }
    if let Some(status) = ensure_obj(o, "status") {
        reorder(
            status,
            &[
                "observedGeneration",
                "replicas",
                "updatedReplicas",
                "readyReplicas",
                "availableReplicas",
                "unavailableReplicas",
                "terminatingReplicas",
                "conditions",
                "collisionCount",
            ],
        );
    }
}

fn replica_set(o: &mut Obj) {
    if let Some(spec) = ensure_obj(o, "spec") {
        drop_zero_values(spec, &["minReadySeconds"]);
        default_value(spec, "replicas", json!(1));
        selector_at(spec, "selector");
        if let Some(t) = ensure_obj(spec, "template") {
            pod_template(t);
        }
        reorder(
            spec,
            &["replicas", "minReadySeconds", "selector", "template"],
        );
    }
    if let Some(status) = ensure_obj(o, "status") {
        default_value(status, "replicas", json!(0));
        reorder(
            status,
            &[
                "replicas",
                "fullyLabeledReplicas",
                "readyReplicas",
                "availableReplicas",
                "terminatingReplicas",
                "observedGeneration",
                "conditions",
            ],
        );
    }
}

fn stateful_set(o: &mut Obj) {
    if let Some(spec) = ensure_obj(o, "spec") {
        drop_zero_values(spec, &["minReadySeconds"]);
        default_str(spec, "podManagementPolicy", "OrderedReady");
        if let Some(us) = ensure_obj(spec, "updateStrategy") {
            if is_empty_str(us.get("type")) {
                us.insert("type".into(), json!("RollingUpdate"));
                default_value(us, "rollingUpdate", json!({}));
            }
            if str_of(us, "type") == "RollingUpdate" {
                if let Some(ru) = child(us, "rollingUpdate") {
                    default_value(ru, "partition", json!(0));
                    reorder(ru, &["partition", "maxUnavailable"]);
                }
            }
            reorder(us, &["type", "rollingUpdate"]);
        }
        if let Some(p) = ensure_obj(spec, "persistentVolumeClaimRetentionPolicy") {
            default_str(p, "whenDeleted", "Retain");
            default_str(p, "whenScaled", "Retain");
            reorder(p, &["whenDeleted", "whenScaled"]);
        }
        default_value(spec, "replicas", json!(1));
        default_value(spec, "revisionHistoryLimit", json!(10));
        default_value(spec, "serviceName", json!(""));
        selector_at(spec, "selector");
        if let Some(t) = ensure_obj(spec, "template") {
            pod_template(t);
        }
        for pvc in objects_in(spec, "volumeClaimTemplates") {
            if let Some(m) = ensure_obj(pvc, "metadata") {
                object_meta(m);
            }
            if let Some(s) = ensure_obj(pvc, "spec") {
                pvc_spec(s);
            }
            if let Some(s) = ensure_obj(pvc, "status") {
                pvc_status(s);
            }
            reorder(pvc, TOP_SPEC_STATUS);
        }
        reorder(
            spec,
            &[
                "replicas",
                "selector",
                "template",
                "volumeClaimTemplates",
                "serviceName",
                "podManagementPolicy",
                "updateStrategy",
                "revisionHistoryLimit",
                "minReadySeconds",
                "persistentVolumeClaimRetentionPolicy",
                "ordinals",
            ],
        );
    }
    if let Some(status) = ensure_obj(o, "status") {
        default_value(status, "replicas", json!(0));
        default_value(status, "availableReplicas", json!(0));
        reorder(
            status,
            &[
                "observedGeneration",
                "replicas",
                "readyReplicas",
                "currentReplicas",
                "updatedReplicas",
                "currentRevision",
                "updateRevision",
                "collisionCount",
                "conditions",
                "availableReplicas",
            ],
        );
    }
}

fn daemon_set(o: &mut Obj) {
    if let Some(spec) = ensure_obj(o, "spec") {
        drop_zero_values(spec, &["minReadySeconds"]);
        if let Some(us) = ensure_obj(spec, "updateStrategy") {
            default_str(us, "type", "RollingUpdate");
            if str_of(us, "type") == "RollingUpdate" {
                if let Some(ru) = ensure_obj(us, "rollingUpdate") {
                    default_value(ru, "maxUnavailable", json!(1));
                    default_value(ru, "maxSurge", json!(0));
                    reorder(ru, &["maxUnavailable", "maxSurge"]);
                }
            }
            reorder(us, &["type", "rollingUpdate"]);
        }
        default_value(spec, "revisionHistoryLimit", json!(10));
        selector_at(spec, "selector");
        if let Some(t) = ensure_obj(spec, "template") {
            pod_template(t);
        }
        reorder(
            spec,
            &[
                "selector",
                "template",
                "updateStrategy",
                "minReadySeconds",
                "revisionHistoryLimit",
            ],
        );
    }
    if let Some(status) = ensure_obj(o, "status") {
        for key in [
            "currentNumberScheduled",
            "numberMisscheduled",
            "desiredNumberScheduled",
            "numberReady",
        ] {
            default_value(status, key, json!(0));
        }
        reorder(
            status,
            &[
                "currentNumberScheduled",
                "numberMisscheduled",
                "desiredNumberScheduled",
                "numberReady",
                "observedGeneration",
                "updatedNumberScheduled",
                "numberAvailable",
                "numberUnavailable",
                "collisionCount",
                "conditions",
            ],
        );
    }
}

const DAEMON_SET_TEMPLATE_GENERATION: &str = "deprecated.daemonset.template.generation";

fn daemon_set_template_generation(o: &Obj) -> Option<i64> {
    o.get("metadata")?
        .get("annotations")?
        .get(DAEMON_SET_TEMPLATE_GENERATION)?
        .as_str()?
        .parse()
        .ok()
}

fn set_daemon_set_template_generation(o: &mut Obj, generation: i64) {
    if let Some(meta) = ensure_obj(o, "metadata") {
        if let Some(a) = ensure_obj(meta, "annotations") {
            a.insert(
                DAEMON_SET_TEMPLATE_GENERATION.into(),
                json!(generation.to_string()),
            );
        }
        object_meta(meta);
    }
}

// ---------------------------------------------------------------------------------------------
// batch
// ---------------------------------------------------------------------------------------------

const JOB_SPEC_ORDER: &[&str] = &[
    "parallelism",
    "completions",
    "activeDeadlineSeconds",
    "podFailurePolicy",
    "successPolicy",
    "backoffLimit",
    "backoffLimitPerIndex",
    "maxFailedIndexes",
    "selector",
    "manualSelector",
    "template",
    "ttlSecondsAfterFinished",
    "completionMode",
    "suspend",
    "podReplacementPolicy",
    "managedBy",
];

fn job(o: &mut Obj) {
    let template_labels = o
        .get("spec")
        .and_then(|s| s.get("template"))
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .filter(|l| !l.is_empty())
        .cloned();
    if let Some(labels) = template_labels {
        if let Some(meta) = ensure_obj(o, "metadata") {
            let empty = meta
                .get("labels")
                .and_then(Value::as_object)
                .is_none_or(|l| l.is_empty());
            if empty {
                meta.insert("labels".into(), Value::Object(labels));
            }
        }
    }
    if let Some(spec) = ensure_obj(o, "spec") {
        if is_unset(spec.get("completions")) && is_unset(spec.get("parallelism")) {
            spec.insert("completions".into(), json!(1));
            spec.insert("parallelism".into(), json!(1));
        }
        default_value(spec, "parallelism", json!(1));
        if is_unset(spec.get("backoffLimit")) {
            let limit = if is_unset(spec.get("backoffLimitPerIndex")) {
                6
            } else {
                i64::from(i32::MAX)
            };
            spec.insert("backoffLimit".into(), json!(limit));
        }
        default_value(spec, "completionMode", json!("NonIndexed"));
        default_value(spec, "suspend", json!(false));
        let has_failure_policy = !is_unset(spec.get("podFailurePolicy"));
        if let Some(pfp) = child(spec, "podFailurePolicy") {
            for rule in objects_in(pfp, "rules") {
                for pattern in objects_in(rule, "onPodConditions") {
                    default_str(pattern, "status", "True");
                    reorder(pattern, &["type", "status"]);
                }
                reorder(rule, &["action", "onExitCodes", "onPodConditions"]);
            }
        }
        default_value(
            spec,
            "podReplacementPolicy",
            json!(if has_failure_policy {
                "Failed"
            } else {
                "TerminatingOrFailed"
            }),
        );
        default_value(spec, "manualSelector", json!(false));
        selector_at(spec, "selector");
        if let Some(t) = ensure_obj(spec, "template") {
            pod_template(t);
        }
        reorder(spec, JOB_SPEC_ORDER);
    }
    if let Some(status) = ensure_obj(o, "status") {
        reorder(
            status,
            &[
                "conditions",
                "startTime",
                "completionTime",
                "active",
                "succeeded",
                "failed",
                "terminating",
                "completedIndexes",
                "failedIndexes",
                "uncountedTerminatedPods",
                "ready",
            ],
        );
    }
}

fn job_generate_selector(o: &mut Obj, uid: &str) {
    let name = o
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let Some(spec) = ensure_obj(o, "spec") else {
        return;
    };
    if spec.get("manualSelector").and_then(Value::as_bool) == Some(true) {
        return;
    }
    if let Some(labels) = ensure_obj(spec, "template")
        .and_then(|t| ensure_obj(t, "metadata"))
        .and_then(|m| ensure_obj(m, "labels"))
    {
        for key in ["job-name", "batch.kubernetes.io/job-name"] {
            labels.entry(key).or_insert_with(|| json!(name));
        }
        for key in ["controller-uid", "batch.kubernetes.io/controller-uid"] {
            labels.entry(key).or_insert_with(|| json!(uid));
        }
        labels.sort_keys();
    }
    if let Some(ml) = ensure_obj(spec, "selector").and_then(|s| ensure_obj(s, "matchLabels")) {
        ml.entry("batch.kubernetes.io/controller-uid")
            .or_insert_with(|| json!(uid));
        ml.sort_keys();
    }
    selector_at(spec, "selector");
    if let Some(t) = child(spec, "template") {
        reorder(t, &["metadata", "spec"]);
    }
    reorder(spec, JOB_SPEC_ORDER);
}

fn cron_job(o: &mut Obj) {
    if let Some(spec) = ensure_obj(o, "spec") {
        default_str(spec, "concurrencyPolicy", "Allow");
        default_value(spec, "suspend", json!(false));
        default_value(spec, "successfulJobsHistoryLimit", json!(3));
        default_value(spec, "failedJobsHistoryLimit", json!(1));
        if let Some(jt) = ensure_obj(spec, "jobTemplate") {
            if let Some(m) = ensure_obj(jt, "metadata") {
                object_meta(m);
            }
            if let Some(js) = ensure_obj(jt, "spec") {
                selector_at(js, "selector");
                if let Some(t) = ensure_obj(js, "template") {
                    pod_template(t);
                }
                reorder(js, JOB_SPEC_ORDER);
            }
            reorder(jt, &["metadata", "spec"]);
        }
        reorder(
            spec,
            &[
                "schedule",
                "timeZone",
                "startingDeadlineSeconds",
                "concurrencyPolicy",
                "suspend",
                "jobTemplate",
                "successfulJobsHistoryLimit",
                "failedJobsHistoryLimit",
            ],
        );
    }
    if let Some(status) = ensure_obj(o, "status") {
        reorder(
            status,
            &["active", "lastScheduleTime", "lastSuccessfulTime"],
        );
    }
}

// ---------------------------------------------------------------------------------------------
// autoscaling, policy, networking, discovery
// ---------------------------------------------------------------------------------------------

fn hpa_v2(o: &mut Obj) {
    if let Some(spec) = ensure_obj(o, "spec") {
        default_value(spec, "minReplicas", json!(1));
        let no_metrics = spec
            .get("metrics")
            .and_then(Value::as_array)
            .is_none_or(|a| a.is_empty());
        if no_metrics {
            spec.insert(
                "metrics".into(),
                json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]),
            );
        }
        for m in objects_in(spec, "metrics") {
            metric_spec(m);
        }
        if let Some(b) = child(spec, "behavior") {
            let up = json!({"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
                {"type": "Pods", "value": 4, "periodSeconds": 15},
                {"type": "Percent", "value": 100, "periodSeconds": 15}]});
            let down = json!({"selectPolicy": "Max", "policies": [
                {"type": "Percent", "value": 100, "periodSeconds": 15}]});
            for (key, defaults) in [("scaleUp", up), ("scaleDown", down)] {
                let Value::Object(mut rules) = defaults else {
                    continue;
                };
                if let Some(given) = b.get(key).and_then(Value::as_object) {
                    for (k, v) in given {
                        if !v.is_null() {
                            rules.insert(k.clone(), v.clone());
                        }
                    }
                }
                for p in objects_in(&mut rules, "policies") {
                    reorder(p, &["type", "value", "periodSeconds"]);
                }
                reorder(
                    &mut rules,
                    &[
                        "stabilizationWindowSeconds",
                        "selectPolicy",
                        "policies",
                        "tolerance",
                    ],
                );
                b.insert(key.into(), Value::Object(rules));
            }
            reorder(b, &["scaleUp", "scaleDown"]);
        }
        if let Some(r) = child(spec, "scaleTargetRef") {
            reorder(r, &["kind", "name", "apiVersion"]);
        }
        reorder(
            spec,
            &[
                "scaleTargetRef",
                "minReplicas",
                "maxReplicas",
                "metrics",
                "behavior",
            ],
        );
    }
    if let Some(status) = ensure_obj(o, "status") {
        default_value(status, "desiredReplicas", json!(0));
        if !status.contains_key("currentMetrics") {
            status.insert("currentMetrics".into(), Value::Null);
        }
        reorder(
            status,
            &[
                "observedGeneration",
                "lastScaleTime",
                "currentReplicas",
                "desiredReplicas",
                "currentMetrics",
                "conditions",
            ],
        );
    }
}

fn metric_spec(m: &mut Obj) {
    for source in [
        "object",
        "pods",
        "resource",
        "containerResource",
        "external",
    ] {
        if let Some(s) = child(m, source) {
            if let Some(t) = child(s, "target") {
                for q in ["value", "averageValue"] {
                    if let Some(v) = t.get_mut(q) {
                        canonicalize_quantity_value(v, false);
                    }
                }
                reorder(t, &["type", "value", "averageValue", "averageUtilization"]);
            }
            reorder(
                s,
                &["name", "describedObject", "metric", "target", "container"],
            );
        }
    }
    reorder(
        m,
        &[
            "type",
            "object",
            "pods",
            "resource",
            "containerResource",
            "external",
        ],
    );
}

fn hpa_v1(o: &mut Obj) {
    if let Some(spec) = ensure_obj(o, "spec") {
        default_value(spec, "minReplicas", json!(1));
        // Stored as autoscaling/v2, whose defaulting adds the 80% CPU target the v1 form shows.
        default_value(spec, "targetCPUUtilizationPercentage", json!(80));
        if let Some(r) = child(spec, "scaleTargetRef") {
            reorder(r, &["kind", "name", "apiVersion"]);
        }
        reorder(
            spec,
            &[
                "scaleTargetRef",
                "minReplicas",
                "maxReplicas",
                "targetCPUUtilizationPercentage",
            ],
        );
    }
    if let Some(status) = ensure_obj(o, "status") {
        default_value(status, "currentReplicas", json!(0));
        default_value(status, "desiredReplicas", json!(0));
        reorder(
            status,
            &[
                "observedGeneration",
                "lastScaleTime",
                "currentReplicas",
                "desiredReplicas",
                "currentCPUUtilizationPercentage",
            ],
        );
    }
}

fn pod_disruption_budget(o: &mut Obj) {
    if let Some(spec) = child(o, "spec") {
        selector_at(spec, "selector");
        reorder(
            spec,
            &[
                "minAvailable",
                "selector",
                "maxUnavailable",
                "unhealthyPodEvictionPolicy",
            ],
        );
    }
    if let Some(status) = ensure_obj(o, "status") {
        for key in [
            "disruptionsAllowed",
            "currentHealthy",
            "desiredHealthy",
            "expectedPods",
        ] {
            default_value(status, key, json!(0));
        }
        reorder(
            status,
            &[
                "observedGeneration",
                "disruptedPods",
                "disruptionsAllowed",
                "currentHealthy",
                "desiredHealthy",
                "expectedPods",
                "conditions",
            ],
        );
    }
}

fn network_policy(o: &mut Obj) {
    let Some(spec) = ensure_obj(o, "spec") else {
        return;
    };
    if let Some(s) = ensure_obj(spec, "podSelector") {
        label_selector(s);
    }
    for (rules, peers) in [("ingress", "from"), ("egress", "to")] {
        for rule in objects_in(spec, rules) {
            for p in objects_in(rule, "ports") {
                default_value(p, "protocol", json!("TCP"));
                reorder(p, &["protocol", "port", "endPort"]);
            }
            for peer in objects_in(rule, peers) {
                selector_at(peer, "podSelector");
                selector_at(peer, "namespaceSelector");
                reorder(peer, &["podSelector", "namespaceSelector", "ipBlock"]);
            }
            reorder(rule, &["ports", peers]);
        }
    }
    let no_types = spec
        .get("policyTypes")
        .and_then(Value::as_array)
        .is_none_or(|a| a.is_empty());
    if no_types {
        let has_egress = spec
            .get("egress")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        let types = if has_egress {
            json!(["Ingress", "Egress"])
        } else {
            json!(["Ingress"])
        };
        spec.insert("policyTypes".into(), types);
    }
    reorder(spec, &["podSelector", "ingress", "egress", "policyTypes"]);
}

fn ingress(o: &mut Obj) {
    if let Some(spec) = child(o, "spec") {
        reorder(
            spec,
            &["ingressClassName", "defaultBackend", "tls", "rules"],
        );
    }
    if let Some(status) = ensure_obj(o, "status") {
        ensure_obj(status, "loadBalancer");
    }
}

fn ingress_class(o: &mut Obj) {
    if let Some(p) = obj_at(o, &["spec", "parameters"]) {
        default_value(p, "scope", json!("Cluster"));
        reorder(p, &["apiGroup", "kind", "name", "scope", "namespace"]);
    }
}

fn endpoint_slice(o: &mut Obj) {
    for key in ["endpoints", "ports"] {
        if !o.contains_key(key) {
            o.insert(key.into(), Value::Null);
        }
    }
    for e in objects_in(o, "endpoints") {
        if let Some(c) = ensure_obj(e, "conditions") {
            reorder(c, &["ready", "serving", "terminating"]);
        }
        if let Some(r) = child(e, "targetRef") {
            reorder(r, OBJECT_REFERENCE_ORDER);
        }
        sort_map(e, "deprecatedTopology");
        reorder(
            e,
            &[
                "addresses",
                "conditions",
                "hostname",
                "targetRef",
                "deprecatedTopology",
                "nodeName",
                "zone",
                "hints",
            ],
        );
    }
    for p in objects_in(o, "ports") {
        default_value(p, "name", json!(""));
        default_value(p, "protocol", json!("TCP"));
        reorder(p, &["name", "protocol", "port", "appProtocol"]);
    }
}

// ---------------------------------------------------------------------------------------------
// storage, rbac, apiextensions, admissionregistration, flowcontrol
// ---------------------------------------------------------------------------------------------

fn csi_driver(o: &mut Obj) {
    let Some(spec) = ensure_obj(o, "spec") else {
        return;
    };
    default_value(spec, "attachRequired", json!(true));
    default_value(spec, "podInfoOnMount", json!(false));
    default_value(spec, "storageCapacity", json!(false));
    default_value(spec, "fsGroupPolicy", json!("ReadWriteOnceWithFSType"));
    let no_modes = spec
        .get("volumeLifecycleModes")
        .and_then(Value::as_array)
        .is_none_or(|a| a.is_empty());
    if no_modes {
        spec.insert("volumeLifecycleModes".into(), json!(["Persistent"]));
    }
    default_value(spec, "requiresRepublish", json!(false));
    default_value(spec, "seLinuxMount", json!(false));
    reorder(
        spec,
        &[
            "attachRequired",
            "podInfoOnMount",
            "volumeLifecycleModes",
            "storageCapacity",
            "fsGroupPolicy",
            "tokenRequests",
            "requiresRepublish",
            "seLinuxMount",
            "nodeAllocatableUpdatePeriodSeconds",
            "serviceAccountTokenInSecrets",
        ],
    );
}

fn rbac_role(o: &mut Obj) {
    if !o.contains_key("rules") {
        o.insert("rules".into(), Value::Null);
    }
    for r in objects_in(o, "rules") {
        reorder(
            r,
            &[
                "verbs",
                "apiGroups",
                "resources",
                "resourceNames",
                "nonResourceURLs",
            ],
        );
    }
    if let Some(a) = child(o, "aggregationRule") {
        for s in objects_in(a, "clusterRoleSelectors") {
            label_selector(s);
        }
    }
}

fn rbac_binding(o: &mut Obj) {
    for s in objects_in(o, "subjects") {
        if is_empty_str(s.get("apiGroup")) {
            match str_of(s, "kind") {
                "User" | "Group" => {
                    s.insert("apiGroup".into(), json!("rbac.authorization.k8s.io"));
                }
                "ServiceAccount" => {
                    s.shift_remove("apiGroup");
                }
                _ => {}
            }
        }
        reorder(s, &["kind", "apiGroup", "name", "namespace"]);
    }
    if let Some(r) = ensure_obj(o, "roleRef") {
        default_str(r, "apiGroup", "rbac.authorization.k8s.io");
        reorder(r, &["apiGroup", "kind", "name"]);
    }
}

fn custom_resource_definition(o: &mut Obj) {
    let mut stored: Option<String> = None;
    if let Some(spec) = ensure_obj(o, "spec") {
        if let Some(names) = ensure_obj(spec, "names") {
            let kind = str_of(names, "kind").to_string();
            default_str(names, "singular", &kind.to_lowercase());
            if !kind.is_empty() {
                default_str(names, "listKind", &format!("{kind}List"));
            }
            reorder(names, CRD_NAMES_ORDER);
        }
        if let Some(conv) = ensure_obj(spec, "conversion") {
            default_str(conv, "strategy", "None");
            if let Some(w) = child(conv, "webhook") {
                if let Some(svc) = obj_at(w, &["clientConfig", "service"]) {
                    default_value(svc, "port", json!(443));
                    reorder(svc, &["namespace", "name", "path", "port"]);
                }
                reorder(w, &["clientConfig", "conversionReviewVersions"]);
            }
            reorder(conv, &["strategy", "webhook"]);
        }
        for v in objects_in(spec, "versions") {
            if stored.is_none() && v.get("storage").and_then(Value::as_bool) == Some(true) {
                stored = Some(str_of(v, "name").to_string());
            }
            if let Some(schema) = obj_at(v, &["schema", "openAPIV3Schema"]) {
                json_schema_props(schema);
            }
            for c in objects_in(v, "additionalPrinterColumns") {
                reorder(
                    c,
                    &[
                        "name",
                        "type",
                        "format",
                        "description",
                        "priority",
                        "jsonPath",
                    ],
                );
            }
            if let Some(sub) = child(v, "subresources") {
                if let Some(scale) = child(sub, "scale") {
                    reorder(
                        scale,
                        &[
                            "specReplicasPath",
                            "statusReplicasPath",
                            "labelSelectorPath",
                        ],
                    );
                }
                reorder(sub, &["status", "scale"]);
            }
            reorder(
                v,
                &[
                    "name",
                    "served",
                    "storage",
                    "deprecated",
                    "deprecationWarning",
                    "schema",
                    "subresources",
                    "additionalPrinterColumns",
                    "selectableFields",
                ],
            );
        }
        reorder(
            spec,
            &[
                "group",
                "names",
                "scope",
                "versions",
                "conversion",
                "preserveUnknownFields",
            ],
        );
    }
    if let Some(status) = ensure_obj(o, "status") {
        if !status.contains_key("conditions") {
            status.insert("conditions".into(), Value::Null);
        }
        if let Some(accepted) = ensure_obj(status, "acceptedNames") {
            default_value(accepted, "plural", json!(""));
            default_value(accepted, "kind", json!(""));
            reorder(accepted, CRD_NAMES_ORDER);
        }
        let no_stored = status
            .get("storedVersions")
            .and_then(Value::as_array)
            .is_none_or(|a| a.is_empty());
        if no_stored {
            let v = stored.map_or(Value::Null, |s| json!([s]));
            if !v.is_null() || !status.contains_key("storedVersions") {
                status.insert("storedVersions".into(), v);
            }
        }
        reorder(status, &["conditions", "acceptedNames", "storedVersions"]);
    }
}

const JSON_SCHEMA_PROPS_ORDER: &[&str] = &[
    "id",
    "$schema",
    "$ref",
    "description",
    "type",
    "format",
    "title",
    "default",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "multipleOf",
    "enum",
    "maxProperties",
    "minProperties",
    "required",
    "items",
    "allOf",
    "oneOf",
    "anyOf",
    "not",
    "properties",
    "additionalProperties",
    "patternProperties",
    "dependencies",
    "additionalItems",
    "definitions",
    "externalDocs",
    "example",
    "nullable",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource",
    "x-kubernetes-int-or-string",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-list-type",
    "x-kubernetes-map-type",
    "x-kubernetes-validations",
];

/// A CRD's OpenAPI schema as upstream writes it back: struct fields in order, map-valued
/// fields sorted, `false`/empty values of `omitempty` fields dropped, free-form values
/// (`default`, `example`, `enum`) with sorted keys.
fn json_schema_props(s: &mut Obj) {
    for key in [
        "exclusiveMaximum",
        "exclusiveMinimum",
        "uniqueItems",
        "nullable",
        "x-kubernetes-embedded-resource",
        "x-kubernetes-int-or-string",
    ] {
        if s.get(key) == Some(&Value::Bool(false)) {
            s.shift_remove(key);
        }
    }
    for key in [
        "id",
        "$schema",
        "description",
        "type",
        "format",
        "title",
        "pattern",
    ] {
        if s.get(key).and_then(Value::as_str) == Some("") {
            s.shift_remove(key);
        }
    }
    for key in [
        "enum",
        "required",
        "allOf",
        "oneOf",
        "anyOf",
        "x-kubernetes-list-map-keys",
        "x-kubernetes-validations",
        "properties",
        "patternProperties",
        "dependencies",
        "definitions",
    ] {
        let empty = match s.get(key) {
            Some(Value::Array(a)) => a.is_empty(),
            Some(Value::Object(m)) => m.is_empty(),
            Some(Value::Null) => true,
            _ => false,
        };
        if empty {
            s.shift_remove(key);
        }
    }
    for key in ["default", "example", "enum"] {
        if let Some(v) = s.get_mut(key) {
            sort_keys_recursively(v);
        }
    }
    for key in ["properties", "patternProperties", "definitions"] {
        if let Some(m) = child(s, key) {
            m.sort_keys();
            for v in m.values_mut().filter_map(Value::as_object_mut) {
                json_schema_props(v);
            }
        }
    }
    if let Some(m) = child(s, "dependencies") {
        m.sort_keys();
        for v in m.values_mut().filter_map(Value::as_object_mut) {
            json_schema_props(v);
        }
    }
    for key in ["items", "not", "additionalProperties", "additionalItems"] {
        match s.get_mut(key) {
            Some(Value::Object(m)) => json_schema_props(m),
            Some(Value::Array(a)) if key == "items" => {
                for v in a.iter_mut().filter_map(Value::as_object_mut) {
                    json_schema_props(v);
                }
            }
            _ => {}
        }
    }
    for key in ["allOf", "oneOf", "anyOf"] {
        for v in objects_in(s, key) {
            json_schema_props(v);
        }
    }
    if let Some(d) = child(s, "externalDocs") {
        reorder(d, &["description", "url"]);
    }
    for r in objects_in(s, "x-kubernetes-validations") {
        reorder(
            r,
            &[
                "rule",
                "message",
                "messageExpression",
                "reason",
                "fieldPath",
                "optionalOldSelf",
            ],
        );
    }
    reorder(s, JSON_SCHEMA_PROPS_ORDER);
}

const CRD_NAMES_ORDER: &[&str] = &[
    "plural",
    "singular",
    "shortNames",
    "kind",
    "listKind",
    "categories",
];

fn webhooks(o: &mut Obj, mutating: bool) {
    for w in objects_in(o, "webhooks") {
        default_value(w, "failurePolicy", json!("Fail"));
        default_value(w, "matchPolicy", json!("Equivalent"));
        default_value(w, "namespaceSelector", json!({}));
        default_value(w, "objectSelector", json!({}));
        default_value(w, "timeoutSeconds", json!(10));
        if mutating {
            default_value(w, "reinvocationPolicy", json!("Never"));
        }
        for key in ["namespaceSelector", "objectSelector"] {
            selector_at(w, key);
        }
        if let Some(svc) = obj_at(w, &["clientConfig", "service"]) {
            default_value(svc, "port", json!(443));
            reorder(svc, &["namespace", "name", "path", "port"]);
        }
        if let Some(cc) = child(w, "clientConfig") {
            reorder(cc, &["url", "service", "caBundle"]);
        }
        for r in objects_in(w, "rules") {
            rule_with_operations(r);
        }
        let order: &[&str] = if mutating {
            &[
                "name",
                "clientConfig",
                "rules",
                "failurePolicy",
                "matchPolicy",
                "namespaceSelector",
                "objectSelector",
                "sideEffects",
                "timeoutSeconds",
                "admissionReviewVersions",
                "reinvocationPolicy",
                "matchConditions",
            ]
        } else {
            &[
                "name",
                "clientConfig",
                "rules",
                "failurePolicy",
                "matchPolicy",
                "namespaceSelector",
                "objectSelector",
                "sideEffects",
                "timeoutSeconds",
                "admissionReviewVersions",
                "matchConditions",
            ]
        };
        reorder(w, order);
    }
}

fn rule_with_operations(r: &mut Obj) {
    default_value(r, "scope", json!("*"));
    reorder(
        r,
        &[
            "resourceNames",
            "operations",
            "apiGroups",
            "apiVersions",
            "resources",
            "scope",
        ],
    );
}

fn match_resources(m: &mut Obj) {
    default_value(m, "namespaceSelector", json!({}));
    default_value(m, "objectSelector", json!({}));
    default_value(m, "matchPolicy", json!("Equivalent"));
    for key in ["namespaceSelector", "objectSelector"] {
        selector_at(m, key);
    }
    for list in ["resourceRules", "excludeResourceRules"] {
        for r in objects_in(m, list) {
            rule_with_operations(r);
        }
    }
    reorder(
        m,
        &[
            "namespaceSelector",
            "objectSelector",
            "resourceRules",
            "excludeResourceRules",
            "matchPolicy",
        ],
    );
}

fn admission_policy(o: &mut Obj) {
    let validating = o.get("kind").and_then(Value::as_str) == Some("ValidatingAdmissionPolicy");
    if let Some(spec) = ensure_obj(o, "spec") {
        default_value(spec, "failurePolicy", json!("Fail"));
        if let Some(m) = child(spec, "matchConstraints") {
            match_resources(m);
        }
    }
    if validating {
        ensure_obj(o, "status");
    }
}

fn admission_policy_binding(o: &mut Obj) {
    if let Some(m) = obj_at(o, &["spec", "matchResources"]) {
        match_resources(m);
    }
}

fn priority_level_configuration(o: &mut Obj, version: &str) {
    let Some(spec) = ensure_obj(o, "spec") else {
        return;
    };
    let shares_key = if version == "v1" || version == "v1beta3" {
        "nominalConcurrencyShares"
    } else {
        "assuredConcurrencyShares"
    };
    if let Some(limited) = child(spec, "limited") {
        default_value(limited, shares_key, json!(30));
        default_value(limited, "lendablePercent", json!(0));
        if let Some(lr) = child(limited, "limitResponse") {
            if let Some(q) = child(lr, "queuing") {
                default_num(q, "queues", 64);
                default_num(q, "handSize", 8);
                default_num(q, "queueLengthLimit", 50);
                reorder(q, &["queues", "handSize", "queueLengthLimit"]);
            }
            reorder(lr, &["type", "queuing"]);
        }
        reorder(
            limited,
            &[
                shares_key,
                "limitResponse",
                "lendablePercent",
                "borrowingLimitPercent",
            ],
        );
    }
    if let Some(exempt) = child(spec, "exempt") {
        default_value(exempt, shares_key, json!(0));
        default_value(exempt, "lendablePercent", json!(0));
        reorder(exempt, &[shares_key, "lendablePercent"]);
    }
    reorder(spec, &["type", "limited", "exempt"]);
}

// ---------------------------------------------------------------------------------------------
// Resource quantities
// ---------------------------------------------------------------------------------------------

/// Puts every quantity of the resource list at `key` in upstream's canonical form (rounded up
/// to milli units, as `SetDefaults_ResourceList` does) and sorts its keys.
fn resource_list_at(m: &mut Obj, key: &str) {
    if let Some(list) = child(m, key) {
        for v in list.values_mut() {
            canonicalize_quantity_value(v, true);
        }
        list.sort_keys();
    }
}

fn canonicalize_quantity_value(v: &mut Value, round_to_milli: bool) {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return,
    };
    match canonical_quantity(&text, round_to_milli) {
        Some(c) => *v = Value::String(c),
        None => {
            if v.is_number() {
                *v = Value::String(text);
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum QuantityFormat {
    DecimalSi,
    BinarySi,
    DecimalExponent,
}

/// The serialized form of a `resource.Quantity` parsed from `text`, as upstream's
/// `Quantity.MarshalJSON` writes it after `ParseQuantity` (and, for resource lists,
/// `RoundUp(-3)`): `1000m` → `1`, `1024Mi` → `1Gi`, `0.5` → `500m`, `1.5Gi` → `1536Mi`.
/// `None` when the text is not a quantity (validation reports it) or is out of range here.
pub fn canonical_quantity(text: &str, round_to_milli: bool) -> Option<String> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    if t == "0" {
        return Some("0".into());
    }
    let (positive, num, denom, suffix) = parse_quantity_string(t)?;
    let (base, exponent, mut format) = interpret_suffix(suffix)?;
    let binary = base == 2;

    let precision: i32 = match format {
        QuantityFormat::DecimalSi | QuantityFormat::DecimalExponent => {
            18 - (num.len() + denom.len()) as i32
        }
        QuantityFormat::BinarySi => {
            if exponent >= 0 && denom.is_empty() {
                15 - num.len() as i32 - ((exponent as f32) * 3.0 / 10.0) as i32 - 1
            } else {
                -1
            }
        }
    };

    // value = mantissa × 10^scale, exactly.
    let mut value: Option<(i128, i32)> = None;
    let mut keep_text = false;
    let mut int_path = false;
    if precision >= 0 {
        let scale = if binary { 0 } else { exponent } - denom.len() as i32;
        if scale >= -9 {
            let shifted = format!("{num}{denom}");
            let parsed: i64 = shifted.parse().ok()?;
            let multiplier: i64 = if binary {
                1i64.checked_shl(exponent as u32)?
            } else {
                1
            };
            if let Some(result) = parsed.checked_mul(multiplier) {
                let result = if positive { result } else { -result };
                keep_text = if binary {
                    exponent % 10 == 0 && (parsed & 0x07) != 0
                } else {
                    scale % 3 == 0 && !shifted.ends_with("000") && !shifted.starts_with('0')
                };
                value = Some((i128::from(result), scale));
                int_path = true;
            }
        }
    }
    let (mut m, mut s) = match value {
        Some(v) => v,
        None => {
            let digits = format!("{num}{denom}");
            let mut m: i128 = digits.parse().ok()?;
            if binary {
                m = m.checked_mul(1i128.checked_shl(exponent as u32)?)?;
            }
            let s = if binary { 0 } else { exponent } - denom.len() as i32;
            let m = if positive { m } else { -m };
            let (m, s) = round_up_to_scale(m, s, -9)?;
            let below_one = s < 0 && m != 0 && pow10(-s).is_none_or(|d| m.abs() < d);
            if binary && below_one {
                format = QuantityFormat::DecimalSi;
            }
            (m, s)
        }
    };
    if round_to_milli && s < -3 {
        let (rm, rs) = round_up_to_scale(m, s, -3)?;
        m = rm;
        s = rs;
        keep_text = false;
    }
    if keep_text && int_path {
        return Some(t.to_string());
    }
    render_quantity(m, s, format)
}

fn pow10(exp: i32) -> Option<i128> {
    if !(0..=38).contains(&exp) {
        return None;
    }
    10i128.checked_pow(exp as u32)
}

/// Rounds `m × 10^s` away from zero to scale `target` (when `s < target`).
fn round_up_to_scale(m: i128, s: i32, target: i32) -> Option<(i128, i32)> {
    if s >= target {
        return Some((m, s));
    }
    let shift = target - s;
    if shift > 38 {
        return Some((if m == 0 { 0 } else { m.signum() }, target));
    }
    let d = pow10(shift)?;
    let q = m / d;
    let r = m % d;
    let q = if r == 0 { q } else { q + m.signum() };
    Some((q, target))
}

fn render_quantity(m: i128, s: i32, format: QuantityFormat) -> Option<String> {
    if m == 0 {
        return Some("0".into());
    }
    let mut format = format;
    if format == QuantityFormat::BinarySi {
        // |value| < 1024, or not an integer: written as DecimalSI.
        let integer = if s >= 0 {
            m.checked_mul(pow10(s)?)
        } else {
            let d = pow10(-s)?;
            (m % d == 0).then_some(m / d)
        };
        match integer {
            Some(v) if v.abs() >= 1024 => {
                let (mut amount, mut exp) = (v, 0);
                while amount % 1024 == 0 {
                    amount /= 1024;
                    exp += 1;
                }
                let suffix = match exp {
                    0 => "",
                    1 => "Ki",
                    2 => "Mi",
                    3 => "Gi",
                    4 => "Ti",
                    5 => "Pi",
                    6 => "Ei",
                    _ => return None,
                };
                return Some(format!("{amount}{suffix}"));
            }
            _ => format = QuantityFormat::DecimalSi,
        }
    }
    let (mut amount, mut exp) = (m, s);
    while amount % 10 == 0 {
        amount /= 10;
        exp += 1;
    }
    match exp.rem_euclid(3) {
        1 => {
            amount = amount.checked_mul(10)?;
            exp -= 1;
        }
        2 => {
            amount = amount.checked_mul(100)?;
            exp -= 2;
        }
        _ => {}
    }
    let suffix = match format {
        QuantityFormat::DecimalExponent => {
            if exp == 0 {
                String::new()
            } else {
                format!("e{exp}")
            }
        }
        _ => match exp {
            -9 => "n".into(),
            -6 => "u".into(),
            -3 => "m".into(),
            0 => String::new(),
            3 => "k".into(),
            6 => "M".into(),
            9 => "G".into(),
            12 => "T".into(),
            15 => "P".into(),
            18 => "E".into(),
            _ => return None,
        },
    };
    Some(format!("{amount}{suffix}"))
}

/// Splits a quantity into sign, numerator digits (leading zeros stripped), denominator
/// digits and suffix, as upstream's `parseQuantityString`.
fn parse_quantity_string(s: &str) -> Option<(bool, String, String, &str)> {
    let b = s.as_bytes();
    let end = b.len();
    let mut pos = 0;
    let mut positive = true;
    if pos < end {
        match b[0] {
            b'-' => {
                positive = false;
                pos += 1;
            }
            b'+' => pos += 1,
            _ => {}
        }
    }
    while pos < end && b[pos] == b'0' {
        pos += 1;
    }
    if pos >= end {
        return Some((positive, "0".into(), String::new(), ""));
    }
    let start = pos;
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    let mut num = s[start..pos].to_string();
    if num.is_empty() {
        num = "0".into();
    }
    let mut denom = String::new();
    if pos < end && b[pos] == b'.' {
        pos += 1;
        let dstart = pos;
        while pos < end && b[pos].is_ascii_digit() {
            pos += 1;
        }
        denom = s[dstart..pos].to_string();
    }
    let suffix_start = pos;
    while pos < end && b"eEinumkKMGTP".contains(&b[pos]) {
        pos += 1;
    }
    if pos < end && (b[pos] == b'-' || b[pos] == b'+') {
        pos += 1;
    }
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos < end {
        return None;
    }
    Some((positive, num, denom, &s[suffix_start..]))
}

fn interpret_suffix(suffix: &str) -> Option<(i32, i32, QuantityFormat)> {
    let dec = match suffix {
        "n" => Some(-9),
        "u" => Some(-6),
        "m" => Some(-3),
        "" => Some(0),
        "k" => Some(3),
        "M" => Some(6),
        "G" => Some(9),
        "T" => Some(12),
        "P" => Some(15),
        "E" => Some(18),
        _ => None,
    };
    if let Some(e) = dec {
        return Some((10, e, QuantityFormat::DecimalSi));
    }
    let bin = match suffix {
        "Ki" => Some(10),
        "Mi" => Some(20),
        "Gi" => Some(30),
        "Ti" => Some(40),
        "Pi" => Some(50),
        "Ei" => Some(60),
        _ => None,
    };
    if let Some(e) = bin {
        return Some((2, e, QuantityFormat::BinarySi));
    }
    let mut chars = suffix.chars();
    match chars.next() {
        Some('e') | Some('E') if suffix.len() > 1 => {
            let e: i64 = chars.as_str().parse().ok()?;
            let e = i32::try_from(e).ok()?;
            Some((10, e, QuantityFormat::DecimalExponent))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn reorder_puts_listed_keys_first_and_keeps_the_rest_in_place() {
        let order = &["a", "b", "c"];
        let mut m: Obj = serde_json::from_str(r#"{"y":1,"c":2,"x":3,"a":4}"#).unwrap();
        reorder(&mut m, order);
        assert_eq!(m.keys().collect::<Vec<_>>(), ["a", "c", "y", "x"]);
        reorder(&mut m, order);
        assert_eq!(m.keys().collect::<Vec<_>>(), ["a", "c", "y", "x"]);
        assert_eq!(m["y"], 1);
        let mut m: Obj = serde_json::from_str(r#"{"z":1,"b":2}"#).unwrap();
        reorder(&mut m, order);
        assert_eq!(m.keys().collect::<Vec<_>>(), ["b", "z"]);
    }

    fn upstream() -> PathBuf {
        PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/upstream"
        ))
    }

    fn load(rel: &str) -> Value {
        let text = std::fs::read_to_string(upstream().join(rel)).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn captures(dir: &str) -> Vec<(String, Value)> {
        let mut out: Vec<(String, Value)> = std::fs::read_dir(upstream().join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|n| n.ends_with(".json"))
            .map(|n| {
                let rel = format!("{dir}/{n}");
                let v = load(&rel);
                (rel, v)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    fn gvk(obj: &Value) -> (String, String, String) {
        let api_version = obj["apiVersion"].as_str().unwrap_or("");
        let (g, v) = api_version.split_once('/').unwrap_or(("", api_version));
        let kind = obj["kind"].as_str().unwrap_or("");
        (g.to_string(), v.to_string(), kind.to_string())
    }

    fn defaults(obj: &mut Value) {
        let (g, v, k) = gvk(obj);
        apply_defaults(&g, &v, &k, obj);
    }

    /// Removes what the server assigns (and what meso's generic strategy sets).
    fn strip_server_fields(obj: &mut Value) {
        let kind = obj["kind"].as_str().unwrap_or("").to_string();
        if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            for k in [
                "uid",
                "resourceVersion",
                "creationTimestamp",
                "generation",
                "managedFields",
                "namespace",
            ] {
                m.shift_remove(k);
            }
        }
        let Some(o) = obj.as_object_mut() else { return };
        match kind.as_str() {
            "Pod" => {
                o.shift_remove("status");
                // The capture cluster's extra projection (see TOKEN_VOLUME_WITH_SERVICE_CA).
                if !TOKEN_VOLUME_WITH_SERVICE_CA {
                    if let Some(vols) = o
                        .get_mut("spec")
                        .and_then(|s| s.get_mut("volumes"))
                        .and_then(Value::as_array_mut)
                    {
                        for v in vols {
                            if let Some(srcs) = v
                                .get_mut("projected")
                                .and_then(|p| p.get_mut("sources"))
                                .and_then(Value::as_array_mut)
                            {
                                srcs.retain(|s| {
                                    s.get("configMap").and_then(|c| c.get("name"))
                                        != Some(&json!("openshift-service-ca.crt"))
                                });
                            }
                        }
                    }
                }
            }
            "Namespace" => {
                if let Some(spec) = child(o, "spec") {
                    spec.shift_remove("finalizers");
                }
            }
            "Service" => {
                if let Some(spec) = child(o, "spec") {
                    if spec.get("clusterIP").and_then(Value::as_str) != Some("None") {
                        spec.shift_remove("clusterIP");
                        spec.shift_remove("clusterIPs");
                    }
                    for p in objects_in(spec, "ports") {
                        p.shift_remove("nodePort");
                    }
                }
            }
            _ => {}
        }
    }

    /// The create path: defaults, admission, strategy, defaults of the stored object.
    fn create(request: &Value, response: &Value) -> Value {
        let (g, _, k) = gvk(request);
        let mut obj = request.clone();
        defaults(&mut obj);
        match k.as_str() {
            "Pod" => {
                let suffix = response["spec"]["volumes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v["name"].as_str())
                    .find_map(|n| n.strip_prefix(SERVICE_ACCOUNT_VOLUME_PREFIX))
                    .unwrap_or("abcde")
                    .to_string();
                service_account_admission(&mut obj, &suffix);
                default_toleration_seconds(&mut obj);
                priority_admission(&mut obj, None).unwrap();
            }
            "Node" => taint_nodes_by_condition(&mut obj),
            "PersistentVolumeClaim" | "PersistentVolume" => {
                storage_object_in_use_protection(&k, &mut obj)
            }
            _ => {}
        }
        let uid = response["metadata"]["uid"]
            .as_str()
            .unwrap_or("")
            .to_string();
        prepare_for_create(&g, &k, &mut obj, &uid);
        defaults(&mut obj);
        if g.contains('.') && !g.ends_with(".k8s.io") {
            sort_keys_recursively(&mut obj);
        }
        obj
    }

    fn pretty(v: &Value) -> String {
        serde_json::to_string_pretty(v).unwrap()
    }

    fn check_create(name: &str, request: &Value, response: &Value) {
        let mut got = create(request, response);
        let mut again = got.clone();
        defaults(&mut again);
        assert_eq!(
            serde_json::to_string(&again).unwrap(),
            serde_json::to_string(&got).unwrap(),
            "{name}: not idempotent"
        );
        let mut want = response.clone();
        strip_server_fields(&mut got);
        strip_server_fields(&mut want);
        assert!(
            got == want,
            "{name}: defaulted request differs from the response\n--- got\n{}\n--- want\n{}",
            pretty(&got),
            pretty(&want)
        );
        assert_eq!(
            serde_json::to_string(&got).unwrap(),
            serde_json::to_string(&want).unwrap(),
            "{name}: key order differs"
        );
    }

    #[test]
    fn defaults_captures_reproduce_the_responses() {
        let mut checked = 0;
        for (name, capture) in captures("defaults") {
            let request = &capture["request"];
            if request["method"] != "POST" || !request["body"].is_object() {
                continue;
            }
            check_create(&name, &request["body"], &capture["response"]["body"]);
            checked += 1;
        }
        assert!(checked >= 30, "only {checked} captures checked");
    }

    #[test]
    fn create_captures_of_apply_and_patch_reproduce_the_responses() {
        for rel in ["patch/00-create.json", "patch/kubectl-apply-1-post.json"] {
            let capture = load(rel);
            check_create(
                rel,
                &capture["request"]["body"],
                &capture["response"]["body"],
            );
        }
        // The server-side apply create: the applied YAML defaulted is the created object.
        let capture = load("apply/01-alice-create.json");
        let yaml = capture["request"]["body"].as_str().unwrap();
        let request: Value = serde_yaml::from_str(yaml).unwrap();
        check_create(
            "apply/01-alice-create.json",
            &request,
            &capture["response"]["body"],
        );
    }

    /// Every object a v1.36 server answered with is already defaulted: defaulting it again
    /// changes nothing, not even the key order.
    #[test]
    fn upstream_objects_are_fixpoints() {
        let mut objects: Vec<(String, Value)> = Vec::new();
        for dir in [
            "defaults",
            "apply",
            "patch",
            "subresources",
            "table",
            "watch",
        ] {
            for (name, capture) in captures(dir) {
                let body = &capture["response"]["body"];
                let mut push = |o: &Value| {
                    if o.get("kind").is_some() && o.get("metadata").is_some() {
                        objects.push((name.clone(), o.clone()));
                    }
                };
                match body {
                    Value::Object(b) if b.get("kind") == Some(&json!("Table")) => {
                        for row in body["rows"].as_array().into_iter().flatten() {
                            push(&row["object"]);
                        }
                    }
                    Value::Object(_) => push(body),
                    Value::Array(events) => {
                        for e in events {
                            push(&e["object"]);
                        }
                    }
                    _ => {}
                }
            }
        }
        assert!(objects.len() > 60, "only {} objects", objects.len());
        for (name, object) in objects {
            let mut again = object.clone();
            defaults(&mut again);
            assert_eq!(
                serde_json::to_string(&again).unwrap(),
                serde_json::to_string(&object).unwrap(),
                "{name}: {} changed by defaulting",
                object["kind"]
            );
        }
    }

    #[test]
    fn image_pull_policy_by_tag() {
        for (image, policy) in [
            ("busybox", "Always"),
            ("busybox:latest", "Always"),
            ("busybox:1.36", "IfNotPresent"),
            ("docker.io/library/nginx", "Always"),
            ("registry.example.com:5000/team/app", "Always"),
            ("registry.example.com:5000/team/app:v2", "IfNotPresent"),
            ("localhost/app:latest", "Always"),
            (
                "nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "IfNotPresent",
            ),
            (
                "nginx:latest@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "Always",
            ),
            ("Nginx", "IfNotPresent"),
            ("", "IfNotPresent"),
            ("nginx:", "IfNotPresent"),
        ] {
            assert_eq!(pull_policy_for(image), policy, "{image}");
        }
    }

    #[test]
    fn quantities_are_canonical() {
        for (given, want) in [
            ("1000m", "1"),
            ("1024Mi", "1Gi"),
            ("0.5", "500m"),
            ("1.5Gi", "1536Mi"),
            ("2.5Gi", "2560Mi"),
            ("1000", "1k"),
            ("100m", "100m"),
            ("128974848", "128974848"),
            ("129e6", "129e6"),
            ("1G", "1G"),
            ("0.1", "100m"),
            ("1.5", "1500m"),
            ("512Ki", "512Ki"),
            ("1Ki", "1Ki"),
            ("8Ki", "8Ki"),
            ("0.5Ki", "512"),
            ("0.1Ki", "102400m"),
            ("007", "007"),
            ("0", "0"),
            ("0Gi", "0"),
            ("1e3", "1e3"),
            ("1E3", "1E3"),
            ("12e2", "1200"),
            ("-1", "-1"),
            ("100u", "1m"),
            ("0.0001", "1m"),
            ("2", "2"),
        ] {
            assert_eq!(
                canonical_quantity(given, true).as_deref(),
                Some(want),
                "{given}"
            );
        }
        assert_eq!(canonical_quantity("100u", false).as_deref(), Some("100u"));
        assert_eq!(canonical_quantity("1n", false).as_deref(), Some("1n"));
        assert_eq!(canonical_quantity("0.1n", false).as_deref(), Some("1n"));
        for bad in ["", "abc", "1Kb", "1.2.3", "1 Gi", "K"] {
            assert_eq!(canonical_quantity(bad, true), None, "{bad}");
        }
        let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a", "image": "x:1",
                "resources": {"limits": {"memory": "1024Mi", "cpu": 2}}}]}});
        defaults(&mut pod);
        let res = &pod["spec"]["containers"][0]["resources"];
        assert_eq!(res["limits"], json!({"cpu": "2", "memory": "1Gi"}));
        assert_eq!(res["requests"], json!({"cpu": "2", "memory": "1Gi"}));
    }

    #[test]
    fn pod_spec_nested_defaults() {
        let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {
            "serviceAccount": "builder",
            "hostNetwork": true,
            "initContainers": [{"name": "i", "image": "x:latest"}],
            "containers": [{"name": "a", "image": "x:1",
                "ports": [{"containerPort": 8080}],
                "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                "livenessProbe": {"httpGet": {"port": 8080}},
                "readinessProbe": {"grpc": {"port": 9000}, "periodSeconds": 5},
                "lifecycle": {"preStop": {"httpGet": {"port": "http"}}}}],
            "ephemeralContainers": [{"name": "dbg", "image": "busybox"}],
            "volumes": [
                {"name": "e"},
                {"name": "h", "hostPath": {"path": "/x"}},
                {"name": "s", "secret": {"secretName": "s"}},
                {"name": "c", "configMap": {"name": "c"}},
                {"name": "d", "downwardAPI": {"items": [{"path": "l", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
                {"name": "p", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}},
                {"name": "i", "image": {"reference": "quay.io/x/y"}},
                {"name": "eph", "ephemeral": {"volumeClaimTemplate": {"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1024Mi"}}}}}}
            ]}});
        defaults(&mut pod);
        let spec = &pod["spec"];
        assert_eq!(spec["serviceAccountName"], "builder");
        assert_eq!(spec["serviceAccount"], "builder");
        assert_eq!(spec["enableServiceLinks"], true);
        let c = &spec["containers"][0];
        assert_eq!(
            c["ports"][0],
            json!({"hostPort": 8080, "containerPort": 8080, "protocol": "TCP"})
        );
        assert_eq!(c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
        assert_eq!(
            c["livenessProbe"],
            json!({"httpGet": {"path": "/", "port": 8080, "scheme": "HTTP"},
                "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
        );
        assert_eq!(
            c["readinessProbe"]["grpc"],
            json!({"port": 9000, "service": ""})
        );
        assert_eq!(c["readinessProbe"]["periodSeconds"], 5);
        assert_eq!(c["lifecycle"]["preStop"]["httpGet"]["scheme"], "HTTP");
        assert_eq!(spec["initContainers"][0]["imagePullPolicy"], "Always");
        assert_eq!(spec["ephemeralContainers"][0]["resources"], json!({}));
        assert_eq!(
            spec["ephemeralContainers"][0]["terminationMessagePolicy"],
            "File"
        );
        let v = &spec["volumes"];
        assert_eq!(v[0], json!({"name": "e", "emptyDir": {}}));
        assert_eq!(v[1]["hostPath"], json!({"path": "/x", "type": ""}));
        assert_eq!(v[2]["secret"]["defaultMode"], 420);
        assert_eq!(v[3]["configMap"]["defaultMode"], 420);
        assert_eq!(v[4]["downwardAPI"]["defaultMode"], 420);
        assert_eq!(
            v[4]["downwardAPI"]["items"][0]["fieldRef"]["apiVersion"],
            "v1"
        );
        assert_eq!(
            v[5]["projected"],
            json!({"sources": [{"serviceAccountToken": {"expirationSeconds": 3600, "path": "t"}}], "defaultMode": 420})
        );
        assert_eq!(v[6]["image"]["pullPolicy"], "Always");
        assert_eq!(
            v[7]["ephemeral"]["volumeClaimTemplate"],
            json!({"metadata": {}, "spec": {"accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}}, "volumeMode": "Filesystem"}})
        );
    }

    #[test]
    fn go_zero_values_of_omitempty_fields_are_dropped() {
        let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "annotations": {}, "labels": {"a": "b"}},
            "spec": {"paused": false, "minReadySeconds": 0, "selector": {"matchLabels": {"a": "b"}},
                "template": {"metadata": {"labels": {"a": "b"}, "annotations": {}},
                    "spec": {"hostNetwork": false, "imagePullSecrets": [], "nodeSelector": {},
                        "tolerations": [], "affinity": {}, "serviceAccountName": "",
                        "containers": [{"name": "c", "image": "x:1", "args": [], "stdin": false,
                            "env": [{"name": "E", "value": ""}],
                            "ports": [{"containerPort": 80, "hostPort": 0, "name": ""}],
                            "resources": {"limits": {}},
                            "livenessProbe": {"tcpSocket": {"port": 80}, "initialDelaySeconds": 0},
                            "volumeMounts": [{"name": "v", "mountPath": "/v", "readOnly": false}]}]}}}});
        defaults(&mut d);
        assert_eq!(d["metadata"], json!({"name": "d", "labels": {"a": "b"}}));
        let spec = &d["spec"];
        assert!(spec.get("paused").is_none() && spec.get("minReadySeconds").is_none());
        let t = &spec["template"];
        assert_eq!(t["metadata"], json!({"labels": {"a": "b"}}));
        let ps = t["spec"].as_object().unwrap();
        for gone in [
            "hostNetwork",
            "imagePullSecrets",
            "nodeSelector",
            "tolerations",
            "serviceAccountName",
            "serviceAccount",
        ] {
            assert!(!ps.contains_key(gone), "{gone}");
        }
        assert_eq!(ps["affinity"], json!({}));
        let c = &ps["containers"][0];
        assert!(c.get("args").is_none() && c.get("stdin").is_none());
        assert_eq!(c["env"], json!([{"name": "E"}]));
        assert_eq!(
            c["ports"],
            json!([{"containerPort": 80, "protocol": "TCP"}])
        );
        assert_eq!(c["resources"], json!({}));
        assert!(c["livenessProbe"].get("initialDelaySeconds").is_none());
        assert_eq!(c["volumeMounts"], json!([{"name": "v", "mountPath": "/v"}]));

        let mut svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
            "spec": {"type": "NodePort", "clusterIP": "", "publishNotReadyAddresses": false,
                "ports": [{"port": 80, "nodePort": 0, "name": ""}]}});
        defaults(&mut svc);
        assert!(svc["spec"].get("clusterIP").is_none());
        assert!(svc["spec"].get("publishNotReadyAddresses").is_none());
        assert_eq!(
            svc["spec"]["ports"],
            json!([{"protocol": "TCP", "port": 80, "targetPort": 80}])
        );
    }

    #[test]
    fn templates_get_podspec_defaults_but_not_pod_ones() {
        let mut rc = json!({"apiVersion": "v1", "kind": "ReplicationController",
            "metadata": {"name": "rc"},
            "spec": {"template": {"metadata": {"labels": {"app": "x"}},
                "spec": {"containers": [{"name": "a", "image": "x:1",
                    "resources": {"limits": {"cpu": "1"}}}]}}}});
        defaults(&mut rc);
        assert_eq!(rc["spec"]["replicas"], 1);
        assert_eq!(rc["spec"]["selector"], json!({"app": "x"}));
        assert_eq!(rc["metadata"]["labels"], json!({"app": "x"}));
        assert_eq!(rc["status"], json!({"replicas": 0}));
        let spec = &rc["spec"]["template"]["spec"];
        assert!(spec.get("enableServiceLinks").is_none());
        assert!(spec["containers"][0]["resources"].get("requests").is_none());
        assert_eq!(spec["dnsPolicy"], "ClusterFirst");

        let mut pt = json!({"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t"},
            "template": {"spec": {"containers": [{"name": "a", "image": "x"}]}}});
        defaults(&mut pt);
        assert_eq!(pt["template"]["metadata"], json!({}));
        assert_eq!(pt["template"]["spec"]["schedulerName"], "default-scheduler");
    }

    #[test]
    fn service_variants() {
        let mut lb = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
            "spec": {"type": "LoadBalancer", "sessionAffinity": "ClientIP",
                "ports": [{"port": 443, "targetPort": "https", "protocol": "UDP"}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}});
        defaults(&mut lb);
        let spec = &lb["spec"];
        assert_eq!(spec["externalTrafficPolicy"], "Cluster");
        assert_eq!(spec["allocateLoadBalancerNodePorts"], true);
        assert_eq!(
            spec["sessionAffinityConfig"],
            json!({"clientIP": {"timeoutSeconds": 10800}})
        );
        assert_eq!(
            spec["ports"][0],
            json!({"protocol": "UDP", "port": 443, "targetPort": "https"})
        );
        assert_eq!(lb["status"]["loadBalancer"]["ingress"][0]["ipMode"], "VIP");

        let mut headless = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "h"},
            "spec": {"clusterIP": "None"}});
        defaults(&mut headless);
        assert_eq!(headless["spec"]["ipFamilyPolicy"], "RequireDualStack");
        assert_eq!(headless["spec"]["ipFamilies"], json!(["IPv4", "IPv6"]));
        assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));

        let mut ext = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "e"},
            "spec": {"type": "ExternalName", "externalName": "example.com"}});
        defaults(&mut ext);
        assert_eq!(
            ext["spec"],
            json!({"type": "ExternalName", "sessionAffinity": "None", "externalName": "example.com"})
        );

        let mut ext_ips = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"},
            "spec": {"externalIPs": ["5.6.7.8"], "ports": [{"port": 80}]}});
        defaults(&mut ext_ips);
        assert_eq!(ext_ips["spec"]["externalTrafficPolicy"], "Cluster");

        // On update the stored policy and addresses are kept.
        let old = json!({"spec": {"clusterIP": "10.43.0.10", "clusterIPs": ["10.43.0.10"],
            "ipFamilyPolicy": "PreferDualStack"}});
        let mut new = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "u"},
            "spec": {"ports": [{"port": 80}], "selector": {"a": "b"}}});
        service_update_carry_over(&mut new, &old);
        defaults(&mut new);
        assert_eq!(new["spec"]["clusterIPs"], json!(["10.43.0.10"]));
        assert_eq!(new["spec"]["ipFamilyPolicy"], "PreferDualStack");
        assert_eq!(new["spec"]["ipFamilies"], json!(["IPv4"]));
    }

    #[test]
    fn workload_variants() {
        let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"strategy": {"type": "Recreate"}, "selector": {"matchLabels": {"a": "b"}},
                "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}});
        defaults(&mut d);
        assert_eq!(d["spec"]["strategy"], json!({"type": "Recreate"}));

        let mut sts = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "s"},
            "spec": {"updateStrategy": {"type": "RollingUpdate"}, "serviceName": "s",
                "selector": {"matchLabels": {"a": "b"}},
                "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}},
                "volumeClaimTemplates": [{"metadata": {"name": "data"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}});
        defaults(&mut sts);
        assert_eq!(
            sts["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate"})
        );
        assert_eq!(
            sts["spec"]["volumeClaimTemplates"][0],
            json!({"metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, "volumeMode": "Filesystem"},
                "status": {"phase": "Pending"}})
        );

        let mut job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
            "spec": {"completions": 5, "backoffLimitPerIndex": 1, "completionMode": "Indexed",
                "podFailurePolicy": {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]},
                "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x"}]}}}});
        defaults(&mut job);
        let spec = &job["spec"];
        assert_eq!(spec["parallelism"], 1);
        assert_eq!(spec["completions"], 5);
        assert_eq!(spec["backoffLimit"], 2147483647);
        assert_eq!(spec["podReplacementPolicy"], "Failed");
        assert_eq!(
            spec["podFailurePolicy"]["rules"][0]["onPodConditions"][0]["status"],
            "True"
        );

        let mut manual = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "m"},
            "spec": {"manualSelector": true, "selector": {"matchLabels": {"x": "y"}},
                "template": {"metadata": {"labels": {"x": "y"}}, "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x"}]}}}});
        defaults(&mut manual);
        prepare_for_create("batch", "Job", &mut manual, "uid-1");
        assert_eq!(
            manual["spec"]["selector"],
            json!({"matchLabels": {"x": "y"}})
        );
        assert_eq!(manual["metadata"]["labels"], json!({"x": "y"}));
    }

    #[test]
    fn daemon_set_template_generation_follows_the_template() {
        let mut ds = load("defaults/daemonset.json")["response"]["body"].clone();
        let old = ds.clone();
        prepare_for_update("apps", "DaemonSet", &mut ds, &old);
        assert_eq!(
            ds["metadata"]["annotations"][DAEMON_SET_TEMPLATE_GENERATION],
            "1"
        );
        ds["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.27");
        ds["metadata"]["annotations"] = json!({});
        prepare_for_update("apps", "DaemonSet", &mut ds, &old);
        assert_eq!(
            ds["metadata"]["annotations"][DAEMON_SET_TEMPLATE_GENERATION],
            "2"
        );
    }

    #[test]
    fn admission_plugins() {
        // Automount turned off by the pod: no volume, still the service account name.
        let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"automountServiceAccountToken": false, "containers": [{"name": "a", "image": "x"}]}});
        service_account_admission(&mut pod, "abcde");
        assert_eq!(pod["spec"]["serviceAccountName"], "default");
        assert!(pod["spec"].get("volumes").is_none());

        // Turned off by the ServiceAccount; its pull secrets are copied.
        let sa =
            json!({"automountServiceAccountToken": false, "imagePullSecrets": [{"name": "reg"}]});
        let mut pod = json!({"spec": {"serviceAccountName": "builder", "containers": [{"name": "a", "image": "x"}]}});
        service_account_admission_with(&mut pod, "abcde", Some(&sa));
        assert!(pod["spec"].get("volumes").is_none());
        assert_eq!(pod["spec"]["imagePullSecrets"], json!([{"name": "reg"}]));
        assert_eq!(pod["spec"]["serviceAccount"], "builder");

        // A container that mounts the path itself is left alone; init containers get it.
        let mut pod = json!({"spec": {
            "initContainers": [{"name": "i", "image": "x"}],
            "containers": [{"name": "a", "image": "x", "volumeMounts": [{"name": "own", "mountPath": SERVICE_ACCOUNT_MOUNT_PATH}]}]}});
        service_account_admission(&mut pod, "xyz12");
        assert_eq!(
            pod["spec"]["containers"][0]["volumeMounts"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            pod["spec"]["initContainers"][0]["volumeMounts"][0]["name"],
            "kube-api-access-xyz12"
        );
        assert_eq!(pod["spec"]["volumes"][0]["name"], "kube-api-access-xyz12");

        // Mirror pods are untouched.
        let mut mirror = json!({"metadata": {"annotations": {"kubernetes.io/config.mirror": "x"}},
            "spec": {"containers": [{"name": "a", "image": "x"}]}});
        let before = mirror.clone();
        service_account_admission(&mut mirror, "abcde");
        assert_eq!(mirror, before);

        // A wildcard toleration covers both taints.
        let mut pod = json!({"spec": {"tolerations": [{"operator": "Exists"}]}});
        default_toleration_seconds(&mut pod);
        assert_eq!(pod["spec"]["tolerations"].as_array().unwrap().len(), 1);
        let mut pod = json!({"spec": {"tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10}]}});
        default_toleration_seconds(&mut pod);
        assert_eq!(pod["spec"]["tolerations"].as_array().unwrap().len(), 2);
        assert_eq!(pod["spec"]["tolerations"][0]["tolerationSeconds"], 10);

        // Priority.
        let classes = system_priority_classes();
        let mut pod = json!({"spec": {"priorityClassName": "system-node-critical"}});
        priority_admission(&mut pod, Some(&classes[0])).unwrap();
        assert_eq!(pod["spec"]["priority"], 2_000_001_000i64);
        let mut pod = json!({"spec": {"priorityClassName": "missing"}});
        assert_eq!(
            priority_admission(&mut pod, None).unwrap_err(),
            "no PriorityClass with name missing was found"
        );
        let mut pod = json!({"spec": {"priority": 5}});
        assert!(priority_admission(&mut pod, None).is_err());
        let global =
            json!({"metadata": {"name": "high"}, "value": 100, "preemptionPolicy": "Never"});
        let mut pod = json!({"spec": {}});
        priority_admission(&mut pod, Some(&global)).unwrap();
        assert_eq!(
            pod["spec"],
            json!({"priorityClassName": "high", "priority": 100, "preemptionPolicy": "Never"})
        );
        let mut updated = json!({"spec": {}});
        priority_admission_update(&mut updated, &pod);
        assert_eq!(updated["spec"]["priority"], 100);
    }

    #[test]
    fn custom_resource_schema_defaults() {
        let schema = json!({"type": "object", "properties": {
            "spec": {"type": "object", "default": {}, "properties": {
                "replicas": {"type": "integer", "default": 1},
                "mode": {"type": "string", "default": "fast"},
                "note": {"type": "string"},
                "opt": {"type": "string", "nullable": true, "default": "x"},
                "ports": {"type": "array", "items": {"type": "object", "properties": {
                    "protocol": {"type": "string", "default": "TCP"}}}},
                "labels": {"type": "object", "additionalProperties": {"type": "object",
                    "properties": {"weight": {"type": "integer", "default": 5}}}}}}}});
        let mut cr = json!({"apiVersion": "x.example.com/v1", "kind": "X", "metadata": {"name": "a"},
            "spec": {"mode": null, "note": null, "opt": null, "ports": [{"port": 80}], "labels": {"a": {}}}});
        apply_crd_schema_defaults(&schema, &mut cr);
        assert_eq!(
            cr["spec"],
            json!({"mode": "fast", "opt": null, "ports": [{"port": 80, "protocol": "TCP"}],
                "labels": {"a": {"weight": 5}}, "replicas": 1})
        );
        let mut empty =
            json!({"apiVersion": "x.example.com/v1", "kind": "X", "metadata": {"name": "b"}});
        apply_crd_schema_defaults(&schema, &mut empty);
        assert_eq!(
            empty["spec"],
            json!({"replicas": 1, "mode": "fast", "opt": "x"})
        );
    }

    #[test]
    fn default_classes() {
        let mut pvc = json!({"spec": {"accessModes": ["ReadWriteOnce"]}});
        default_storage_class(&mut pvc, Some("local-path"));
        assert_eq!(pvc["spec"]["storageClassName"], "local-path");
        let mut none = json!({"spec": {"storageClassName": ""}});
        default_storage_class(&mut none, Some("local-path"));
        assert_eq!(none["spec"]["storageClassName"], "");
        let mut ing = json!({"metadata": {"annotations": {"kubernetes.io/ingress.class": "nginx"}}, "spec": {}});
        default_ingress_class(&mut ing, Some("traefik"));
        assert!(ing["spec"].get("ingressClassName").is_none());
        let mut ing = json!({"spec": {"rules": []}});
        default_ingress_class(&mut ing, Some("traefik"));
        assert_eq!(ing["spec"]["ingressClassName"], "traefik");
    }

    #[test]
    fn other_kinds() {
        let mut hpa = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "h"},
            "spec": {"maxReplicas": 3, "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}},
                "metrics": [{"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "1024Mi"}}}]}});
        defaults(&mut hpa);
        assert_eq!(
            hpa["spec"]["behavior"],
            json!({
                "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
                    {"type": "Pods", "value": 4, "periodSeconds": 15},
                    {"type": "Percent", "value": 100, "periodSeconds": 15}]},
                "scaleDown": {"stabilizationWindowSeconds": 60, "selectPolicy": "Max", "policies": [
                    {"type": "Percent", "value": 100, "periodSeconds": 15}]}})
        );
        assert_eq!(
            hpa["spec"]["metrics"][0]["resource"]["target"]["averageValue"],
            "1Gi"
        );

        let mut hpa1 = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "h"}, "spec": {"maxReplicas": 3}});
        defaults(&mut hpa1);
        assert_eq!(hpa1["spec"]["minReplicas"], 1);
        assert_eq!(
            hpa1["status"],
            json!({"currentReplicas": 0, "desiredReplicas": 0})
        );

        let mut np = json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "n"},
            "spec": {"egress": [{"ports": [{"port": 53}]}]}});
        defaults(&mut np);
        assert_eq!(np["spec"]["podSelector"], json!({}));
        assert_eq!(np["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
        assert_eq!(np["spec"]["egress"][0]["ports"][0]["protocol"], "TCP");

        let mut crb = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "b"}, "roleRef": {"kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "User", "name": "alice"}, {"kind": "Group", "name": "devs"}]});
        defaults(&mut crb);
        assert_eq!(crb["roleRef"]["apiGroup"], "rbac.authorization.k8s.io");
        assert_eq!(crb["subjects"][0]["apiGroup"], "rbac.authorization.k8s.io");
        assert_eq!(crb["subjects"][1]["apiGroup"], "rbac.authorization.k8s.io");

        let mut cr = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "agg"}, "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"a": "b"}}]}});
        defaults(&mut cr);
        assert_eq!(cr["rules"], Value::Null);
        assert!(cr.as_object().unwrap().contains_key("rules"));

        let mut vwc = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": "w"}, "webhooks": [{"name": "a.example.com", "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "clientConfig": {"service": {"namespace": "ns", "name": "svc"}},
                "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}]}]});
        defaults(&mut vwc);
        let w = &vwc["webhooks"][0];
        assert_eq!(w["failurePolicy"], "Fail");
        assert_eq!(w["matchPolicy"], "Equivalent");
        assert_eq!(w["namespaceSelector"], json!({}));
        assert_eq!(w["objectSelector"], json!({}));
        assert_eq!(w["timeoutSeconds"], 10);
        assert_eq!(w["reinvocationPolicy"], "Never");
        assert_eq!(w["clientConfig"]["service"]["port"], 443);
        assert_eq!(w["rules"][0]["scope"], "*");

        let mut ev = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
            "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "c", "reportingInstance": "i",
            "action": "A", "reason": "R"});
        defaults(&mut ev);
        assert_eq!(ev["regarding"], json!({}));
        assert_eq!(ev["deprecatedSource"], json!({}));
        assert_eq!(ev["deprecatedFirstTimestamp"], Value::Null);

        let mut csi = json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver", "metadata": {"name": "c"}, "spec": {}});
        defaults(&mut csi);
        assert_eq!(csi["spec"]["attachRequired"], true);
        assert_eq!(csi["spec"]["volumeLifecycleModes"], json!(["Persistent"]));

        let mut lr = json!({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "l"},
            "spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "64Mi"}}]}});
        defaults(&mut lr);
        assert_eq!(lr["spec"]["limits"][0]["default"], json!({"cpu": "2"}));
        assert_eq!(
            lr["spec"]["limits"][0]["defaultRequest"],
            json!({"cpu": "2", "memory": "64Mi"})
        );

        let mut node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"},
            "spec": {"podCIDR": "10.42.0.0/24"}, "status": {"capacity": {"cpu": "4000m"}}});
        defaults(&mut node);
        assert_eq!(node["spec"]["podCIDRs"], json!(["10.42.0.0/24"]));
        assert_eq!(node["status"]["allocatable"], json!({"cpu": "4"}));

        let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": []}, "status": {"podIP": "10.42.0.5", "hostIPs": [{"ip": "192.168.1.2"}]}});
        defaults(&mut pod);
        assert_eq!(pod["status"]["podIPs"], json!([{"ip": "10.42.0.5"}]));
        assert_eq!(pod["status"]["hostIP"], "192.168.1.2");

        // Unknown kinds and custom resources are left alone.
        let mut widget =
            json!({"apiVersion": "golden.example.com/v1", "kind": "Widget", "spec": {"size": 3}});
        let before = widget.clone();
        defaults(&mut widget);
        assert_eq!(widget, before);
    }
}
