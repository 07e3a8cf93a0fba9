//! The OpenAPI documents of the API server: `GET /openapi/v2` (Swagger 2.0), the index
//! `GET /openapi/v3` and the per group-version documents `GET /openapi/v3/{path}` (OpenAPI
//! 3.0), shaped as a Kubernetes v1.36 apiserver serves them.
//!
//! What goes in:
//! - **Definitions** (component schemas) come from `k8s-openapi`'s `schemars::JsonSchema`
//!   implementations of the built-in types, named as upstream names them
//!   (`io.k8s.api.core.v1.Pod`). They are completed with the upstream extensions that drive
//!   strategic merge patch, server-side apply and `kubectl explain`
//!   (`x-kubernetes-patch-strategy`, `x-kubernetes-patch-merge-key`, `x-kubernetes-list-type`,
//!   `x-kubernetes-list-map-keys`, `x-kubernetes-map-type`, `x-kubernetes-group-version-kind`),
//!   all taken from [`crate::schema_meta`], the same table the patch and apply code reads, and
//!   with upstream's `enum` lists (`ENUMS`, which `kubectl explain` shows). The `*List` kinds
//!   (which `k8s-openapi` models as a generic `List<T>`) are written here. Not carried: the v3
//!   `default`s of zero values and upstream's `x-kubernetes-unions` hints.
//!   Custom resources get a schema from their CustomResourceDefinition when one is given
//!   ([`OpenApi::build_with_custom`]), otherwise an object that keeps unknown fields
//!   (`x-kubernetes-preserve-unknown-fields`).
//! - **Paths** come from the [`ResourceTable`]: for every resource the operations upstream's
//!   apiserver installs for its verbs and subresources, with upstream's `operationId`s, tags,
//!   `x-kubernetes-action`, `x-kubernetes-group-version-kind`, query parameters (descriptions
//!   verbatim), request bodies, responses and content types. In v2 the shared parameters are
//!   `$ref`s into the top-level `parameters` section under upstream's names.
//!
//! Caching: documents are rendered on first use and kept as serialized bytes only. Each has a
//! hash, the upper-case hex SHA-512 of its bytes, exactly as upstream computes it. The v3 index
//! links every document as `/openapi/v3/{path}?hash={HASH}`; handlers answer `ETag: "{HASH}"`
//! (quoted), `304 Not Modified` to a matching `If-None-Match`, and, when the request's `hash`
//! query parameter equals the current hash, `Cache-Control: public, immutable` (upstream
//! redirects a stale `hash` with `301` to the current URL). Building the index renders every
//! document once to hash it, keeping only the hash; rendering is deterministic, so a document
//! rendered again later has the same bytes and hash. `/openapi/v2` is also served as gnostic
//! protobuf (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`, which client-go's
//! `OpenAPISchema()` asks for; see `openapi_proto`), derived from the JSON document and keeping
//! its ETag as upstream; the v3 documents are JSON only.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use k8s_openapi::api::admissionregistration::v1 as admissionregistration;
use k8s_openapi::api::apps::v1 as apps;
use k8s_openapi::api::authentication::v1 as authentication;
use k8s_openapi::api::authorization::v1 as authorization;
use k8s_openapi::api::autoscaling::v1 as autoscaling_v1;
use k8s_openapi::api::autoscaling::v2 as autoscaling_v2;
use k8s_openapi::api::batch::v1 as batch;
use k8s_openapi::api::certificates::v1 as certificates;
use k8s_openapi::api::coordination::v1 as coordination;
use k8s_openapi::api::core::v1 as core_v1;
use k8s_openapi::api::discovery::v1 as discovery;
use k8s_openapi::api::events::v1 as events;
use k8s_openapi::api::flowcontrol::v1 as flowcontrol;
use k8s_openapi::api::networking::v1 as networking;
use k8s_openapi::api::node::v1 as node;
use k8s_openapi::api::policy::v1 as policy;
use k8s_openapi::api::rbac::v1 as rbac;
use k8s_openapi::api::resource::v1 as resource;
use k8s_openapi::api::scheduling::v1 as scheduling;
use k8s_openapi::api::storage::v1 as storage;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1 as apiregistration;
use k8s_openapi::Resource;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Map, Value};

use crate::resources::{ResourceInfo, ResourceTable, SubresourceInfo};
use crate::schema_meta;

/// `info.version` of every document: the binary's major.minor, as upstream writes it.
const INFO_VERSION: &str = "1.36";

const V2_REF_PREFIX: &str = "#/definitions/";
const V3_REF_PREFIX: &str = "#/components/schemas/";

const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";
const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
const API_RESOURCE_LIST: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList";
const API_GROUP: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroup";
const API_GROUP_LIST: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroupList";
const API_VERSIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIVersions";
const VERSION_INFO: &str = "io.k8s.apimachinery.pkg.version.Info";
const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";

const API_VERSION_DESCRIPTION: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DESCRIPTION: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const OBJECT_META_DESCRIPTION: &str = "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const LIST_META_DESCRIPTION: &str = "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

// ---------------------------------------------------------------------------------------------
// Public API.

/// The OpenAPI schema of one version of a custom resource, from its CustomResourceDefinition
/// (`spec.versions[].schema.openAPIV3Schema`).
#[derive(Debug, Clone, PartialEq)]
pub struct CustomSchema {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub schema: Value,
}

/// The server's OpenAPI documents for one state of the resource table. Rebuild it (cheap: no
/// document is rendered until asked for) when the table changes.
pub struct OpenApi {
    model: Model,
    v2: OnceLock<Doc>,
    /// The v2 document as gnostic protobuf (its ETag is the JSON document's, as upstream).
    v2_protobuf: OnceLock<Vec<u8>>,
    /// Sorted by key.
    v3: Vec<V3Entry>,
}

impl std::fmt::Debug for OpenApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenApi")
            .field("resources", &self.model.resources.len())
            .field("custom_schemas", &self.model.custom.len())
            .field("v3_documents", &self.v3.len())
            .finish()
    }
}

impl OpenApi {
    /// The documents for `table`. Nothing is rendered yet.
    pub fn build(table: &ResourceTable) -> OpenApi {
        OpenApi::build_with_custom(table, &[])
    }

    /// As [`OpenApi::build`], with the schemas of custom resources (from their
    /// CustomResourceDefinitions) for `kubectl explain` and clients' validation.
    pub fn build_with_custom(table: &ResourceTable, custom: &[CustomSchema]) -> OpenApi {
        let model = Model {
            // metrics.k8s.io (built-in metrics-server) publishes no schemas, as meso's
            // OpenAPI documents only what it validates.
            resources: table
                .iter()
                .filter(|r| r.group != crate::metrics_server::GROUP)
                .cloned()
                .collect(),
            custom: custom.to_vec(),
        };
        let mut v3: Vec<V3Entry> = Vec::new();
        let mut add = |key: String, target: Target| {
            v3.push(V3Entry {
                key,
                target,
                hash: OnceLock::new(),
                doc: OnceLock::new(),
            })
        };
        add(
            ".well-known/openid-configuration".into(),
            Target::OpenIdConfiguration,
        );
        add("openid/v1/jwks".into(), Target::OpenIdKeys);
        add("version".into(), Target::Version);
        add("api".into(), Target::CoreVersions);
        add("apis".into(), Target::Groups);
        let mut group_versions: BTreeSet<(String, String)> = BTreeSet::new();
        for r in &model.resources {
            group_versions.insert((r.group.clone(), r.version.clone()));
        }
        let mut groups: BTreeSet<String> = BTreeSet::new();
        for (group, version) in group_versions {
            if group.is_empty() {
                add(
                    format!("api/{version}"),
                    Target::GroupVersion(group, version),
                );
            } else {
                groups.insert(group.clone());
                add(
                    format!("apis/{group}/{version}"),
                    Target::GroupVersion(group, version),
                );
            }
        }
        for group in groups {
            add(format!("apis/{group}"), Target::Group(group));
        }
        v3.sort_by(|a, b| a.key.cmp(&b.key));
        OpenApi {
            model,
            v2: OnceLock::new(),
            v2_protobuf: OnceLock::new(),
            v3,
        }
    }

    /// `GET /openapi/v2`: the Swagger 2.0 document (JSON) and its ETag header value (the
    /// quoted upper-case hex SHA-512 of the bytes, as upstream answers). Rendered on the first
    /// call, then kept.
    pub fn v2(&self) -> (&[u8], &str) {
        let doc = self.v2.get_or_init(|| Doc::new(self.model.render_v2()));
        (&doc.bytes, &doc.etag)
    }

    /// `GET /openapi/v2` with `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`:
    /// the same document as gnostic's `openapi.v2.Document` message, and the JSON document's
    /// ETag (upstream derives the protobuf answer from the JSON one and keeps its ETag).
    pub fn v2_protobuf(&self) -> (&[u8], &str) {
        let (json, etag) = self.v2();
        let bytes = self.v2_protobuf.get_or_init(|| {
            let doc: Value = serde_json::from_slice(json).unwrap_or(Value::Null);
            crate::openapi_proto::encode_document(&doc)
        });
        (bytes, etag)
    }

    /// `GET /openapi/v3`: the index of the v3 documents, `{"paths": {"api/v1":
    /// {"serverRelativeURL": "/openapi/v3/api/v1?hash=HASH"}, …}}`. The first call renders
    /// every document once to hash it (keeping only the hashes).
    pub fn v3_index(&self) -> Value {
        let mut paths = Map::new();
        for entry in &self.v3 {
            let hash = entry.hash(&self.model);
            paths.insert(
                entry.key.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{}?hash={}", entry.key, hash)}),
            );
        }
        json!({ "paths": paths })
    }

    /// `GET /openapi/v3/{path}` (`path` as in the index: `"api/v1"`, `"apis/apps/v1"`,
    /// `"apis/apps"`, `"api"`, `"apis"`, `"version"`, …): the OpenAPI 3.0 document (JSON) and
    /// its hash (upper-case hex SHA-512 of the bytes; the ETag header is this value quoted).
    /// `None` for a path that is not in the index. Rendered on the first call, then kept.
    pub fn v3_doc(&self, path: &str) -> Option<(&[u8], &str)> {
        let path = path.trim_matches('/');
        let i = self
            .v3
            .binary_search_by(|e| e.key.as_str().cmp(path))
            .ok()?;
        let entry = self.v3.get(i)?;
        let doc = entry.doc.get_or_init(|| {
            let doc = Doc::new(self.model.render_v3(&entry.target));
            let _ = entry.hash.set(doc.hash.clone());
            doc
        });
        Some((&doc.bytes, &doc.hash))
    }

    /// The keys of the v3 index, sorted.
    pub fn v3_paths(&self) -> impl Iterator<Item = &str> {
        self.v3.iter().map(|e| e.key.as_str())
    }
}

/// A rendered document.
struct Doc {
    bytes: Vec<u8>,
    hash: String,
    etag: String,
}

impl Doc {
    fn new(bytes: Vec<u8>) -> Doc {
        let hash = hex_upper(&sha512(&bytes));
        let etag = format!("\"{hash}\"");
        Doc { bytes, hash, etag }
    }
}

struct V3Entry {
    key: String,
    target: Target,
    hash: OnceLock<String>,
    doc: OnceLock<Doc>,
}

impl V3Entry {
    fn hash(&self, model: &Model) -> &str {
        self.hash
            .get_or_init(|| hex_upper(&sha512(&model.render_v3(&self.target))))
    }
}

/// What a v3 document describes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// `/api/`
    CoreVersions,
    /// `/apis/`
    Groups,
    /// `/apis/{group}/`
    Group(String),
    /// `/api/v1/…` or `/apis/{group}/{version}/…`
    GroupVersion(String, String),
    /// `/version/`
    Version,
    /// `/.well-known/openid-configuration/`
    OpenIdConfiguration,
    /// `/openid/v1/jwks/`
    OpenIdKeys,
}

// ---------------------------------------------------------------------------------------------
// The built-in types whose schemas `k8s-openapi` provides.

type SchemaFn = fn(&mut SchemaGenerator) -> Schema;
type NameFn = fn() -> Cow<'static, str>;

fn subschema<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// A kind with its definition.
struct KnownKind {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    name: NameFn,
    schema: SchemaFn,
}

macro_rules! known_kinds {
    ($($t:ty),* $(,)?) => {
        &[$(KnownKind {
            group: <$t as Resource>::GROUP,
            version: <$t as Resource>::VERSION,
            kind: <$t as Resource>::KIND,
            name: <$t as JsonSchema>::schema_name,
            schema: subschema::<$t>,
        }),*]
    };
}

/// Every kind the built-in resources and their subresources read and write.
static KNOWN_KINDS: &[KnownKind] = known_kinds![
    core_v1::Binding,
    core_v1::ComponentStatus,
    core_v1::ConfigMap,
    core_v1::Endpoints,
    core_v1::Event,
    core_v1::LimitRange,
    core_v1::Namespace,
    core_v1::Node,
    core_v1::PersistentVolume,
    core_v1::PersistentVolumeClaim,
    core_v1::Pod,
    core_v1::PodTemplate,
    core_v1::ReplicationController,
    core_v1::ResourceQuota,
    core_v1::Secret,
    core_v1::Service,
    core_v1::ServiceAccount,
    apiregistration::APIService,
    apps::ControllerRevision,
    apps::DaemonSet,
    apps::Deployment,
    apps::ReplicaSet,
    apps::StatefulSet,
    events::Event,
    authentication::SelfSubjectReview,
    authentication::TokenRequest,
    authentication::TokenReview,
    authorization::LocalSubjectAccessReview,
    authorization::SelfSubjectAccessReview,
    authorization::SelfSubjectRulesReview,
    authorization::SubjectAccessReview,
    autoscaling_v1::HorizontalPodAutoscaler,
    autoscaling_v1::Scale,
    autoscaling_v2::HorizontalPodAutoscaler,
    batch::CronJob,
    batch::Job,
    certificates::CertificateSigningRequest,
    networking::IPAddress,
    networking::Ingress,
    networking::IngressClass,
    networking::NetworkPolicy,
    networking::ServiceCIDR,
    policy::Eviction,
    policy::PodDisruptionBudget,
    rbac::ClusterRole,
    rbac::ClusterRoleBinding,
    rbac::Role,
    rbac::RoleBinding,
    storage::CSIDriver,
    storage::CSINode,
    storage::CSIStorageCapacity,
    storage::StorageClass,
    storage::VolumeAttachment,
    storage::VolumeAttributesClass,
    admissionregistration::MutatingAdmissionPolicy,
    admissionregistration::MutatingAdmissionPolicyBinding,
    admissionregistration::MutatingWebhookConfiguration,
    admissionregistration::ValidatingAdmissionPolicy,
    admissionregistration::ValidatingAdmissionPolicyBinding,
    admissionregistration::ValidatingWebhookConfiguration,
    apiextensions::CustomResourceDefinition,
    scheduling::PriorityClass,
    coordination::Lease,
    node::RuntimeClass,
    discovery::EndpointSlice,
    resource::DeviceClass,
    resource::ResourceClaim,
    resource::ResourceClaimTemplate,
    resource::ResourceSlice,
    flowcontrol::FlowSchema,
    flowcontrol::PriorityLevelConfiguration,
];

/// The other definitions operations refer to directly.
static META_TYPES: &[(NameFn, SchemaFn)] = &[
    (
        <meta::DeleteOptions as JsonSchema>::schema_name,
        subschema::<meta::DeleteOptions>,
    ),
    (
        <meta::Status as JsonSchema>::schema_name,
        subschema::<meta::Status>,
    ),
    (
        <meta::WatchEvent<()> as JsonSchema>::schema_name,
        subschema::<meta::WatchEvent<()>>,
    ),
    (
        <meta::Patch as JsonSchema>::schema_name,
        subschema::<meta::Patch>,
    ),
    (
        <meta::APIResourceList as JsonSchema>::schema_name,
        subschema::<meta::APIResourceList>,
    ),
    (
        <meta::APIGroup as JsonSchema>::schema_name,
        subschema::<meta::APIGroup>,
    ),
    (
        <meta::APIGroupList as JsonSchema>::schema_name,
        subschema::<meta::APIGroupList>,
    ),
    (
        <meta::APIVersions as JsonSchema>::schema_name,
        subschema::<meta::APIVersions>,
    ),
    (
        <k8s_openapi::apimachinery::pkg::version::Info as JsonSchema>::schema_name,
        subschema::<k8s_openapi::apimachinery::pkg::version::Info>,
    ),
];

fn known_kind(group: &str, version: &str, kind: &str) -> Option<&'static KnownKind> {
    KNOWN_KINDS
        .iter()
        .find(|k| k.group == group && k.version == version && k.kind == kind)
}

/// Built-in resources whose DELETE answers with the deleted object rather than a Status:
/// `(group, plural)`.
const RETURNS_DELETED_OBJECT: &[(&str, &str)] = &[
    ("", "persistentvolumeclaims"),
    ("", "persistentvolumes"),
    ("", "pods"),
    ("", "podtemplates"),
    ("", "resourcequotas"),
    ("", "serviceaccounts"),
    ("", "services"),
    ("resource.k8s.io", "deviceclasses"),
    ("resource.k8s.io", "resourceclaims"),
    ("resource.k8s.io", "resourceclaimtemplates"),
    ("resource.k8s.io", "resourceslices"),
    ("storage.k8s.io", "csidrivers"),
    ("storage.k8s.io", "csinodes"),
    ("storage.k8s.io", "storageclasses"),
    ("storage.k8s.io", "volumeattachments"),
    ("storage.k8s.io", "volumeattributesclasses"),
];

/// Definitions in which `k8s-openapi` marks `name` required although upstream does not (it
/// is "effectively required, but due to backwards compatibility is allowed to be empty").
const NAME_NOT_REQUIRED: &[&str] = &[
    "io.k8s.api.core.v1.ConfigMapEnvSource",
    "io.k8s.api.core.v1.ConfigMapKeySelector",
    "io.k8s.api.core.v1.ConfigMapProjection",
    "io.k8s.api.core.v1.ConfigMapVolumeSource",
    "io.k8s.api.core.v1.LocalObjectReference",
    "io.k8s.api.core.v1.SecretEnvSource",
    "io.k8s.api.core.v1.SecretKeySelector",
    "io.k8s.api.core.v1.SecretProjection",
];

/// The only definition upstream requires `metadata` of (`k8s-openapi` requires it of every
/// kind).
const METADATA_REQUIRED: &[&str] = &["io.k8s.api.core.v1.Event"];

const WATCH_EVENT_OBJECT_DESCRIPTION: &str = "Object is:\n * If Type is Added or Modified: the new state of the object.\n * If Type is Deleted: the state of the object immediately before deletion.\n * If Type is Error: *Status is recommended; other types may make sense\n   depending on context.";

/// Definitions whose required fields `k8s-openapi` leaves optional: `(definition, field)`.
const ALSO_REQUIRED: &[(&str, &str)] = &[("io.k8s.api.events.v1.Event", "eventTime")];

/// Definitions that hold any JSON value; upstream describes them without a type.
const UNTYPED: &[&str] = &[
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrArray",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrBool",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrStringArray",
];

/// Upstream's `enum` lists, which `k8s-openapi` does not carry (they make `kubectl explain` show
/// an ENUM section): `(definition, property, place, values)`, where `place` is `""` for the
/// property itself, `"items"` for the elements of an array, `"additionalProperties"` for the
/// values of a map. Extracted from a Kubernetes v1.36 apiserver's `/openapi/v2`.
#[rustfmt::skip]
static ENUMS: &[(&str, &str, &str, &[&str])] = &[
    ("io.k8s.api.admissionregistration.v1.MatchResources", "matchPolicy", "", &["Equivalent", "Exact"]),
    ("io.k8s.api.admissionregistration.v1.MutatingAdmissionPolicySpec", "failurePolicy", "", &["Fail", "Ignore"]),
    ("io.k8s.api.admissionregistration.v1.MutatingAdmissionPolicySpec", "reinvocationPolicy", "", &["IfNeeded", "Never"]),
    ("io.k8s.api.admissionregistration.v1.MutatingWebhook", "failurePolicy", "", &["Fail", "Ignore"]),
    ("io.k8s.api.admissionregistration.v1.MutatingWebhook", "matchPolicy", "", &["Equivalent", "Exact"]),
    ("io.k8s.api.admissionregistration.v1.MutatingWebhook", "reinvocationPolicy", "", &["IfNeeded", "Never"]),
    ("io.k8s.api.admissionregistration.v1.MutatingWebhook", "sideEffects", "", &["None", "NoneOnDryRun", "Some", "Unknown"]),
    ("io.k8s.api.admissionregistration.v1.Mutation", "patchType", "", &["ApplyConfiguration", "JSONPatch"]),
    ("io.k8s.api.admissionregistration.v1.NamedRuleWithOperations", "operations", "items", &["*", "CONNECT", "CREATE", "DELETE", "UPDATE"]),
    ("io.k8s.api.admissionregistration.v1.NamedRuleWithOperations", "scope", "", &["*", "Cluster", "Namespaced"]),
    ("io.k8s.api.admissionregistration.v1.RuleWithOperations", "operations", "items", &["*", "CONNECT", "CREATE", "DELETE", "UPDATE"]),
    ("io.k8s.api.admissionregistration.v1.RuleWithOperations", "scope", "", &["*", "Cluster", "Namespaced"]),
    ("io.k8s.api.admissionregistration.v1.ValidatingAdmissionPolicyBindingSpec", "validationActions", "items", &["Audit", "Deny", "Warn"]),
    ("io.k8s.api.admissionregistration.v1.ValidatingAdmissionPolicySpec", "failurePolicy", "", &["Fail", "Ignore"]),
    ("io.k8s.api.admissionregistration.v1.ValidatingWebhook", "failurePolicy", "", &["Fail", "Ignore"]),
    ("io.k8s.api.admissionregistration.v1.ValidatingWebhook", "matchPolicy", "", &["Equivalent", "Exact"]),
    ("io.k8s.api.admissionregistration.v1.ValidatingWebhook", "sideEffects", "", &["None", "NoneOnDryRun", "Some", "Unknown"]),
    ("io.k8s.api.apps.v1.DaemonSetUpdateStrategy", "type", "", &["OnDelete", "RollingUpdate"]),
    ("io.k8s.api.apps.v1.DeploymentStrategy", "type", "", &["Recreate", "RollingUpdate"]),
    ("io.k8s.api.apps.v1.StatefulSetSpec", "podManagementPolicy", "", &["OrderedReady", "Parallel"]),
    ("io.k8s.api.apps.v1.StatefulSetUpdateStrategy", "type", "", &["OnDelete", "RollingUpdate"]),
    ("io.k8s.api.batch.v1.CronJobSpec", "concurrencyPolicy", "", &["Allow", "Forbid", "Replace"]),
    ("io.k8s.api.batch.v1.JobSpec", "completionMode", "", &["Indexed", "NonIndexed"]),
    ("io.k8s.api.batch.v1.JobSpec", "podReplacementPolicy", "", &["Failed", "TerminatingOrFailed"]),
    ("io.k8s.api.batch.v1.PodFailurePolicyOnExitCodesRequirement", "operator", "", &["In", "NotIn"]),
    ("io.k8s.api.batch.v1.PodFailurePolicyRule", "action", "", &["Count", "FailIndex", "FailJob", "Ignore"]),
    ("io.k8s.api.certificates.v1.CertificateSigningRequestSpec", "usages", "items", &["any", "cert sign", "client auth", "code signing", "content commitment", "crl sign", "data encipherment", "decipher only", "digital signature", "email protection", "encipher only", "ipsec end system", "ipsec tunnel", "ipsec user", "key agreement", "key encipherment", "microsoft sgc", "netscape sgc", "ocsp signing", "s/mime", "server auth", "signing", "timestamping"]),
    ("io.k8s.api.core.v1.AppArmorProfile", "type", "", &["Localhost", "RuntimeDefault", "Unconfined"]),
    ("io.k8s.api.core.v1.AzureDiskVolumeSource", "cachingMode", "", &["None", "ReadOnly", "ReadWrite"]),
    ("io.k8s.api.core.v1.AzureDiskVolumeSource", "kind", "", &["Dedicated", "Managed", "Shared"]),
    ("io.k8s.api.core.v1.Container", "imagePullPolicy", "", &["Always", "IfNotPresent", "Never"]),
    ("io.k8s.api.core.v1.Container", "terminationMessagePolicy", "", &["FallbackToLogsOnError", "File"]),
    ("io.k8s.api.core.v1.ContainerPort", "protocol", "", &["SCTP", "TCP", "UDP"]),
    ("io.k8s.api.core.v1.ContainerStatus", "stopSignal", "", &["SIGABRT", "SIGALRM", "SIGBUS", "SIGCHLD", "SIGCLD", "SIGCONT", "SIGFPE", "SIGHUP", "SIGILL", "SIGINT", "SIGIO", "SIGIOT", "SIGKILL", "SIGPIPE", "SIGPOLL", "SIGPROF", "SIGPWR", "SIGQUIT", "SIGRTMAX", "SIGRTMAX-1", "SIGRTMAX-10", "SIGRTMAX-11", "SIGRTMAX-12", "SIGRTMAX-13", "SIGRTMAX-14", "SIGRTMAX-2", "SIGRTMAX-3", "SIGRTMAX-4", "SIGRTMAX-5", "SIGRTMAX-6", "SIGRTMAX-7", "SIGRTMAX-8", "SIGRTMAX-9", "SIGRTMIN", "SIGRTMIN+1", "SIGRTMIN+10", "SIGRTMIN+11", "SIGRTMIN+12", "SIGRTMIN+13", "SIGRTMIN+14", "SIGRTMIN+15", "SIGRTMIN+2", "SIGRTMIN+3", "SIGRTMIN+4", "SIGRTMIN+5", "SIGRTMIN+6", "SIGRTMIN+7", "SIGRTMIN+8", "SIGRTMIN+9", "SIGSEGV", "SIGSTKFLT", "SIGSTOP", "SIGSYS", "SIGTERM", "SIGTRAP", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG", "SIGUSR1", "SIGUSR2", "SIGVTALRM", "SIGWINCH", "SIGXCPU", "SIGXFSZ"]),
    ("io.k8s.api.core.v1.EndpointPort", "protocol", "", &["SCTP", "TCP", "UDP"]),
    ("io.k8s.api.core.v1.EphemeralContainer", "imagePullPolicy", "", &["Always", "IfNotPresent", "Never"]),
    ("io.k8s.api.core.v1.EphemeralContainer", "terminationMessagePolicy", "", &["FallbackToLogsOnError", "File"]),
    ("io.k8s.api.core.v1.HTTPGetAction", "scheme", "", &["HTTP", "HTTPS"]),
    ("io.k8s.api.core.v1.HostPathVolumeSource", "type", "", &["", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate", "Socket"]),
    ("io.k8s.api.core.v1.ImageVolumeSource", "pullPolicy", "", &["Always", "IfNotPresent", "Never"]),
    ("io.k8s.api.core.v1.Lifecycle", "stopSignal", "", &["SIGABRT", "SIGALRM", "SIGBUS", "SIGCHLD", "SIGCLD", "SIGCONT", "SIGFPE", "SIGHUP", "SIGILL", "SIGINT", "SIGIO", "SIGIOT", "SIGKILL", "SIGPIPE", "SIGPOLL", "SIGPROF", "SIGPWR", "SIGQUIT", "SIGRTMAX", "SIGRTMAX-1", "SIGRTMAX-10", "SIGRTMAX-11", "SIGRTMAX-12", "SIGRTMAX-13", "SIGRTMAX-14", "SIGRTMAX-2", "SIGRTMAX-3", "SIGRTMAX-4", "SIGRTMAX-5", "SIGRTMAX-6", "SIGRTMAX-7", "SIGRTMAX-8", "SIGRTMAX-9", "SIGRTMIN", "SIGRTMIN+1", "SIGRTMIN+10", "SIGRTMIN+11", "SIGRTMIN+12", "SIGRTMIN+13", "SIGRTMIN+14", "SIGRTMIN+15", "SIGRTMIN+2", "SIGRTMIN+3", "SIGRTMIN+4", "SIGRTMIN+5", "SIGRTMIN+6", "SIGRTMIN+7", "SIGRTMIN+8", "SIGRTMIN+9", "SIGSEGV", "SIGSTKFLT", "SIGSTOP", "SIGSYS", "SIGTERM", "SIGTRAP", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG", "SIGUSR1", "SIGUSR2", "SIGVTALRM", "SIGWINCH", "SIGXCPU", "SIGXFSZ"]),
    ("io.k8s.api.core.v1.ModifyVolumeStatus", "status", "", &["InProgress", "Infeasible", "Pending"]),
    ("io.k8s.api.core.v1.NamespaceStatus", "phase", "", &["Active", "Terminating"]),
    ("io.k8s.api.core.v1.NodeSelectorRequirement", "operator", "", &["DoesNotExist", "Exists", "Gt", "In", "Lt", "NotIn"]),
    ("io.k8s.api.core.v1.NodeStatus", "phase", "", &["Pending", "Running", "Terminated"]),
    ("io.k8s.api.core.v1.PersistentVolumeClaimSpec", "accessModes", "items", &["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"]),
    ("io.k8s.api.core.v1.PersistentVolumeClaimSpec", "volumeMode", "", &["Block", "Filesystem"]),
    ("io.k8s.api.core.v1.PersistentVolumeClaimStatus", "accessModes", "items", &["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"]),
    ("io.k8s.api.core.v1.PersistentVolumeClaimStatus", "allocatedResourceStatuses", "additionalProperties", &["ControllerResizeInProgress", "ControllerResizeInfeasible", "NodeResizeInProgress", "NodeResizeInfeasible", "NodeResizePending"]),
    ("io.k8s.api.core.v1.PersistentVolumeClaimStatus", "phase", "", &["Bound", "Lost", "Pending"]),
    ("io.k8s.api.core.v1.PersistentVolumeSpec", "accessModes", "items", &["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"]),
    ("io.k8s.api.core.v1.PersistentVolumeSpec", "persistentVolumeReclaimPolicy", "", &["Delete", "Recycle", "Retain"]),
    ("io.k8s.api.core.v1.PersistentVolumeSpec", "volumeMode", "", &["Block", "Filesystem"]),
    ("io.k8s.api.core.v1.PersistentVolumeStatus", "phase", "", &["Available", "Bound", "Failed", "Pending", "Released"]),
    ("io.k8s.api.core.v1.PodSecurityContext", "fsGroupChangePolicy", "", &["Always", "OnRootMismatch"]),
    ("io.k8s.api.core.v1.PodSecurityContext", "supplementalGroupsPolicy", "", &["Merge", "Strict"]),
    ("io.k8s.api.core.v1.PodSpec", "dnsPolicy", "", &["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"]),
    ("io.k8s.api.core.v1.PodSpec", "preemptionPolicy", "", &["Never", "PreemptLowerPriority"]),
    ("io.k8s.api.core.v1.PodSpec", "restartPolicy", "", &["Always", "Never", "OnFailure"]),
    ("io.k8s.api.core.v1.PodStatus", "phase", "", &["Failed", "Pending", "Running", "Succeeded", "Unknown"]),
    ("io.k8s.api.core.v1.PodStatus", "qosClass", "", &["BestEffort", "Burstable", "Guaranteed"]),
    ("io.k8s.api.core.v1.PortStatus", "protocol", "", &["SCTP", "TCP", "UDP"]),
    ("io.k8s.api.core.v1.ResourceQuotaSpec", "scopes", "items", &["BestEffort", "CrossNamespacePodAffinity", "NotBestEffort", "NotTerminating", "PriorityClass", "Terminating", "VolumeAttributesClass"]),
    ("io.k8s.api.core.v1.ScopedResourceSelectorRequirement", "operator", "", &["DoesNotExist", "Exists", "In", "NotIn"]),
    ("io.k8s.api.core.v1.ScopedResourceSelectorRequirement", "scopeName", "", &["BestEffort", "CrossNamespacePodAffinity", "NotBestEffort", "NotTerminating", "PriorityClass", "Terminating", "VolumeAttributesClass"]),
    ("io.k8s.api.core.v1.SeccompProfile", "type", "", &["Localhost", "RuntimeDefault", "Unconfined"]),
    ("io.k8s.api.core.v1.SecurityContext", "procMount", "", &["Default", "Unmasked"]),
    ("io.k8s.api.core.v1.ServicePort", "protocol", "", &["SCTP", "TCP", "UDP"]),
    ("io.k8s.api.core.v1.ServiceSpec", "externalTrafficPolicy", "", &["Cluster", "Local"]),
    ("io.k8s.api.core.v1.ServiceSpec", "internalTrafficPolicy", "", &["Cluster", "Local"]),
    ("io.k8s.api.core.v1.ServiceSpec", "ipFamilies", "items", &["", "IPv4", "IPv6"]),
    ("io.k8s.api.core.v1.ServiceSpec", "ipFamilyPolicy", "", &["PreferDualStack", "RequireDualStack", "SingleStack"]),
    ("io.k8s.api.core.v1.ServiceSpec", "sessionAffinity", "", &["ClientIP", "None"]),
    ("io.k8s.api.core.v1.ServiceSpec", "type", "", &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]),
    ("io.k8s.api.core.v1.Taint", "effect", "", &["NoExecute", "NoSchedule", "PreferNoSchedule"]),
    ("io.k8s.api.core.v1.Toleration", "effect", "", &["NoExecute", "NoSchedule", "PreferNoSchedule"]),
    ("io.k8s.api.core.v1.Toleration", "operator", "", &["Equal", "Exists", "Gt", "Lt"]),
    ("io.k8s.api.core.v1.TopologySpreadConstraint", "nodeAffinityPolicy", "", &["Honor", "Ignore"]),
    ("io.k8s.api.core.v1.TopologySpreadConstraint", "nodeTaintsPolicy", "", &["Honor", "Ignore"]),
    ("io.k8s.api.core.v1.TopologySpreadConstraint", "whenUnsatisfiable", "", &["DoNotSchedule", "ScheduleAnyway"]),
    ("io.k8s.api.core.v1.VolumeMount", "mountPropagation", "", &["Bidirectional", "HostToContainer", "None"]),
    ("io.k8s.api.discovery.v1.EndpointPort", "protocol", "", &["SCTP", "TCP", "UDP"]),
    ("io.k8s.api.discovery.v1.EndpointSlice", "addressType", "", &["FQDN", "IPv4", "IPv6"]),
    ("io.k8s.api.networking.v1.HTTPIngressPath", "pathType", "", &["Exact", "ImplementationSpecific", "Prefix"]),
    ("io.k8s.api.networking.v1.IngressPortStatus", "protocol", "", &["SCTP", "TCP", "UDP"]),
    ("io.k8s.api.networking.v1.NetworkPolicyPort", "protocol", "", &["SCTP", "TCP", "UDP"]),
    ("io.k8s.api.networking.v1.NetworkPolicySpec", "policyTypes", "items", &["Egress", "Ingress"]),
    ("io.k8s.api.policy.v1.PodDisruptionBudgetSpec", "unhealthyPodEvictionPolicy", "", &["AlwaysAllow", "IfHealthyBudget"]),
    ("io.k8s.api.resource.v1.DeviceAllocationConfiguration", "source", "", &["FromClaim", "FromClass"]),
    ("io.k8s.api.resource.v1.DeviceSubRequest", "allocationMode", "", &["All", "ExactCount"]),
    ("io.k8s.api.resource.v1.DeviceTaint", "effect", "", &["NoExecute", "NoSchedule", "None"]),
    ("io.k8s.api.resource.v1.DeviceToleration", "effect", "", &["NoExecute", "NoSchedule", "None"]),
    ("io.k8s.api.resource.v1.DeviceToleration", "operator", "", &["Equal", "Exists"]),
    ("io.k8s.api.resource.v1.ExactDeviceRequest", "allocationMode", "", &["All", "ExactCount"]),
    ("io.k8s.api.scheduling.v1.PriorityClass", "preemptionPolicy", "", &["Never", "PreemptLowerPriority"]),
    ("io.k8s.api.storage.v1.StorageClass", "reclaimPolicy", "", &["Delete", "Recycle", "Retain"]),
    ("io.k8s.api.storage.v1.StorageClass", "volumeBindingMode", "", &["Immediate", "WaitForFirstConsumer"]),
    ("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.ValidationRule", "reason", "", &["FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid", "FieldValueRequired"]),
];

// ---------------------------------------------------------------------------------------------
// Parameters: upstream's, with their descriptions and (for v2) the names of the shared
// parameters they are referenced by.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Loc {
    Path,
    Query,
}

impl Loc {
    fn as_str(self) -> &'static str {
        match self {
            Loc::Path => "path",
            Loc::Query => "query",
        }
    }
}

#[derive(Debug)]
struct Param {
    name: &'static str,
    loc: Loc,
    /// `string`, `boolean` or `integer`.
    ty: &'static str,
    description: &'static str,
    /// The key under `#/parameters/` in v2, for the parameters upstream shares.
    v2_key: Option<&'static str>,
}

/// A parameter of an operation.
#[derive(Debug, Clone)]
enum Arg {
    Fixed(&'static Param),
    /// The `name` path parameter: "name of the {kind}".
    Name(String),
}

impl Arg {
    fn name(&self) -> &str {
        match self {
            Arg::Fixed(p) => p.name,
            Arg::Name(_) => "name",
        }
    }

    fn loc(&self) -> Loc {
        match self {
            Arg::Fixed(p) => p.loc,
            Arg::Name(_) => Loc::Path,
        }
    }

    fn key(&self) -> (String, Loc) {
        (self.name().to_string(), self.loc())
    }

    fn v2(&self, shared: &mut BTreeSet<&'static str>) -> Value {
        match self {
            Arg::Fixed(p) => match p.v2_key {
                Some(key) => {
                    shared.insert(key);
                    json!({ "$ref": format!("#/parameters/{key}") })
                }
                None => v2_param(p.name, p.loc, p.ty, p.description),
            },
            Arg::Name(kind) => {
                v2_param("name", Loc::Path, "string", &format!("name of the {kind}"))
            }
        }
    }

    fn v3(&self) -> Value {
        let (name, loc, ty, description): (&str, Loc, &str, Cow<str>) = match self {
            Arg::Fixed(p) => (p.name, p.loc, p.ty, Cow::Borrowed(p.description)),
            Arg::Name(kind) => (
                "name",
                Loc::Path,
                "string",
                Cow::Owned(format!("name of the {kind}")),
            ),
        };
        let mut m = Map::new();
        m.insert("name".into(), name.into());
        m.insert("in".into(), loc.as_str().into());
        m.insert("description".into(), description.into());
        if loc == Loc::Path {
            m.insert("required".into(), true.into());
        }
        m.insert("schema".into(), json!({"type": ty, "uniqueItems": true}));
        Value::Object(m)
    }
}

fn v2_param(name: &str, loc: Loc, ty: &str, description: &str) -> Value {
    let mut m = Map::new();
    m.insert("uniqueItems".into(), true.into());
    m.insert("type".into(), ty.into());
    m.insert("description".into(), description.into());
    m.insert("name".into(), name.into());
    m.insert("in".into(), loc.as_str().into());
    if loc == Loc::Path {
        m.insert("required".into(), true.into());
    }
    Value::Object(m)
}

/// The shared v2 body parameters.
const V2_DELETE_OPTIONS_BODY: &str = "body-2Y1dVQaQ";
const V2_PATCH_BODY: &str = "body-78PwaGsr";

fn v2_shared_param(key: &str) -> Option<Value> {
    if key == V2_DELETE_OPTIONS_BODY {
        return Some(json!({
            "name": "body",
            "in": "body",
            "schema": {"$ref": format!("{V2_REF_PREFIX}{DELETE_OPTIONS}")},
        }));
    }
    if key == V2_PATCH_BODY {
        return Some(json!({
            "name": "body",
            "in": "body",
            "required": true,
            "schema": {"$ref": format!("{V2_REF_PREFIX}{PATCH}")},
        }));
    }
    ALL_PARAMS
        .iter()
        .find(|p| p.v2_key == Some(key))
        .map(|p| v2_param(p.name, p.loc, p.ty, p.description))
}

static ALLOW_WATCH_BOOKMARKS: Param = Param {
    name: "allowWatchBookmarks",
    loc: Loc::Query,
    ty: "boolean",
    description: "allowWatchBookmarks requests watch events with type \"BOOKMARK\". Servers that do not implement bookmarks may ignore this flag and bookmarks are sent at the server's discretion. Clients should not assume bookmarks are returned at any specific interval, nor may they assume the server will send any BOOKMARK event during a session. If this is not a watch, this field is ignored.",
    v2_key: Some("allowWatchBookmarks-HC2hJt-J"),
};
static ATTACH_CONTAINER: Param = Param {
    name: "container",
    loc: Loc::Query,
    ty: "string",
    description: "The container in which to execute the command. Defaults to only container if there is only one container in the pod.",
    v2_key: Some("container-_Q-EJ3nR"),
};
static ATTACH_STDERR: Param = Param {
    name: "stderr",
    loc: Loc::Query,
    ty: "boolean",
    description: "Stderr if true indicates that stderr is to be redirected for the attach call. Defaults to true.",
    v2_key: Some("stderr-26jJhFUR"),
};
static ATTACH_STDIN: Param = Param {
    name: "stdin",
    loc: Loc::Query,
    ty: "boolean",
    description: "Stdin if true, redirects the standard input stream of the pod for this call. Defaults to false.",
    v2_key: Some("stdin-sEFnN3IS"),
};
static ATTACH_STDOUT: Param = Param {
    name: "stdout",
    loc: Loc::Query,
    ty: "boolean",
    description: "Stdout if true indicates that stdout is to be redirected for the attach call. Defaults to true.",
    v2_key: Some("stdout-005YMKE6"),
};
static ATTACH_TTY: Param = Param {
    name: "tty",
    loc: Loc::Query,
    ty: "boolean",
    description: "TTY if true indicates that a tty will be allocated for the attach call. This is passed through the container runtime so the tty is allocated on the worker node by the container runtime. Defaults to false.",
    v2_key: Some("tty-g7MlET_l"),
};
static COMMAND: Param = Param {
    name: "command",
    loc: Loc::Query,
    ty: "string",
    description:
        "Command is the remote command to execute. argv array. Not executed within a shell.",
    v2_key: Some("command-Py3eQybp"),
};
static CONTINUE: Param = Param {
    name: "continue",
    loc: Loc::Query,
    ty: "string",
    description: "The continue option should be set when retrieving more results from the server. Since this value is server defined, clients may only use the continue value from a previous query result with identical query parameters (except for the value of continue) and the server may reject a continue value it does not recognize. If the specified continue value is no longer valid whether due to expiration (generally five to fifteen minutes) or a configuration change on the server, the server will respond with a 410 ResourceExpired error together with a continue token. If the client needs a consistent list, it must restart their list without the continue field. Otherwise, the client may send another list request with the token received with the 410 error, the server will respond with a list starting from the next key, but from the latest snapshot, which is inconsistent from the previous list results - objects that are created, modified, or deleted after the first list request will be included in the response, as long as their keys are after the \"next key\".\n\nThis field is not supported when watch is true. Clients may start a watch from the last resourceVersion value returned by the server and not miss any modifications.",
    v2_key: Some("continue-QfD61s0i"),
};
static DRY_RUN: Param = Param {
    name: "dryRun",
    loc: Loc::Query,
    ty: "string",
    description: "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed",
    v2_key: None,
};
static EXEC_CONTAINER: Param = Param {
    name: "container",
    loc: Loc::Query,
    ty: "string",
    description: "Container in which to execute the command. Defaults to only container if there is only one container in the pod.",
    v2_key: Some("container-i5dOmRiM"),
};
static EXEC_STDERR: Param = Param {
    name: "stderr",
    loc: Loc::Query,
    ty: "boolean",
    description: "Redirect the standard error stream of the pod for this call.",
    v2_key: Some("stderr-W_1TNlWc"),
};
static EXEC_STDIN: Param = Param {
    name: "stdin",
    loc: Loc::Query,
    ty: "boolean",
    description: "Redirect the standard input stream of the pod for this call. Defaults to false.",
    v2_key: Some("stdin-PSzNhyUC"),
};
static EXEC_STDOUT: Param = Param {
    name: "stdout",
    loc: Loc::Query,
    ty: "boolean",
    description: "Redirect the standard output stream of the pod for this call.",
    v2_key: Some("stdout--EZLRwV1"),
};
static EXEC_TTY: Param = Param {
    name: "tty",
    loc: Loc::Query,
    ty: "boolean",
    description:
        "TTY if true indicates that a tty will be allocated for the exec call. Defaults to false.",
    v2_key: Some("tty-s0flW37O"),
};
static FIELD_MANAGER: Param = Param {
    name: "fieldManager",
    loc: Loc::Query,
    ty: "string",
    description: "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.",
    v2_key: Some("fieldManager-Qy4HdaTW"),
};
static FIELD_MANAGER_PATCH: Param = Param {
    name: "fieldManager",
    loc: Loc::Query,
    ty: "string",
    description: "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint. This field is required for apply requests (application/apply-patch) but optional for non-apply patch types (JsonPatch, MergePatch, StrategicMergePatch).",
    v2_key: Some("fieldManager-7c6nTn1T"),
};
static FIELD_SELECTOR: Param = Param {
    name: "fieldSelector",
    loc: Loc::Query,
    ty: "string",
    description: "A selector to restrict the list of returned objects by their fields. Defaults to everything.",
    v2_key: Some("fieldSelector-xIcQKXFG"),
};
static FIELD_VALIDATION: Param = Param {
    name: "fieldValidation",
    loc: Loc::Query,
    ty: "string",
    description: "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. This is the default behavior prior to v1.23. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default in v1.23+ - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.",
    v2_key: None,
};
static FOLLOW: Param = Param {
    name: "follow",
    loc: Loc::Query,
    ty: "boolean",
    description: "Follow the log stream of the pod. Defaults to false.",
    v2_key: Some("follow-9OIXh_2R"),
};
static FORCE: Param = Param {
    name: "force",
    loc: Loc::Query,
    ty: "boolean",
    description: "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.",
    v2_key: Some("force-tOGGb0Yi"),
};
static GRACE_PERIOD_SECONDS: Param = Param {
    name: "gracePeriodSeconds",
    loc: Loc::Query,
    ty: "integer",
    description: "The duration in seconds before the object should be deleted. Value must be non-negative integer. The value zero indicates delete immediately. If this value is nil, the default grace period for the specified type will be used. Defaults to a per object value if not specified. zero means delete immediately.",
    v2_key: Some("gracePeriodSeconds--K5HaBOS"),
};
static IGNORE_STORE_READ_ERROR_WITH_CLUSTER_BREAKING_POTENTIAL: Param = Param {
    name: "ignoreStoreReadErrorWithClusterBreakingPotential",
    loc: Loc::Query,
    ty: "boolean",
    description: "if set to true, it will trigger an unsafe deletion of the resource in case the normal deletion flow fails with a corrupt object error. A resource is considered corrupt if it can not be retrieved from the underlying storage successfully because of a) its data can not be transformed e.g. decryption failure, or b) it fails to decode into an object. NOTE: unsafe deletion ignores finalizer constraints, skips precondition checks, and removes the object from the storage. WARNING: This may potentially break the cluster if the workload associated with the resource being unsafe-deleted relies on normal deletion flow. Use only if you REALLY know what you are doing. The default value is false, and the user must opt in to enable it",
    v2_key: Some("ignoreStoreReadErrorWithClusterBreakingPotential-QbNkfIqj"),
};
static INSECURE_SKIP_TLSVERIFY_BACKEND: Param = Param {
    name: "insecureSkipTLSVerifyBackend",
    loc: Loc::Query,
    ty: "boolean",
    description: "insecureSkipTLSVerifyBackend indicates that the apiserver should not confirm the validity of the serving certificate of the backend it is connecting to.  This will make the HTTPS connection between the apiserver and the backend insecure. This means the apiserver cannot verify the log data it is receiving came from the real kubelet.  If the kubelet is configured to verify the apiserver's TLS credentials, it does not mean the connection to the real kubelet is vulnerable to a man in the middle attack (e.g. an attacker could not intercept the actual log data coming from the real kubelet).",
    v2_key: Some("insecureSkipTLSVerifyBackend-gM00jVbe"),
};
static LABEL_SELECTOR: Param = Param {
    name: "labelSelector",
    loc: Loc::Query,
    ty: "string",
    description: "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
    v2_key: Some("labelSelector-5Zw57w4C"),
};
static LIMIT: Param = Param {
    name: "limit",
    loc: Loc::Query,
    ty: "integer",
    description: "limit is a maximum number of responses to return for a list call. If more items exist, the server will set the `continue` field on the list metadata to a value that can be used with the same initial query to retrieve the next set of results. Setting a limit may return fewer than the requested amount of items (up to zero items) in the event all requested objects are filtered out and clients should only use the presence of the continue field to determine whether more results are available. Servers may choose not to support the limit argument and will return all of the available results. If limit is specified and the continue field is empty, clients may assume that no more results are available. This field is not supported if watch is true.\n\nThe server guarantees that the objects returned when using continue will be identical to issuing a single list call without a limit - that is, no objects created, modified, or deleted after the first request is issued will be included in any subsequent continued requests. This is sometimes referred to as a consistent snapshot, and ensures that a client that is using limit to receive smaller chunks of a very large result can ensure they see all possible objects. If objects are updated during a chunked list the version of the object that was present at the time the first list result was calculated is returned.",
    v2_key: Some("limit-1NfNmdNH"),
};
static LIMIT_BYTES: Param = Param {
    name: "limitBytes",
    loc: Loc::Query,
    ty: "integer",
    description: "If set, the number of bytes to read from the server before terminating the log output. This may not display a complete final line of logging, and may return slightly more or slightly less than the specified limit.",
    v2_key: Some("limitBytes-zwd1RXuc"),
};
static LOG_CONTAINER: Param = Param {
    name: "container",
    loc: Loc::Query,
    ty: "string",
    description: "The container for which to stream logs. Defaults to only container if there is one container in the pod.",
    v2_key: Some("container-1GeXxFDC"),
};
static NAMESPACE: Param = Param {
    name: "namespace",
    loc: Loc::Path,
    ty: "string",
    description: "object name and auth scope, such as for teams and projects",
    v2_key: Some("namespace-vgWSWtn3"),
};
static NODE_PROXY_PATH: Param = Param {
    name: "path",
    loc: Loc::Query,
    ty: "string",
    description: "Path is the URL path to use for the current proxy request to node.",
    v2_key: Some("path-rFDtV0x9"),
};
static ORPHAN_DEPENDENTS: Param = Param {
    name: "orphanDependents",
    loc: Loc::Query,
    ty: "boolean",
    description: "Deprecated: please use the PropagationPolicy, this field will be deprecated in 1.7. Should the dependent objects be orphaned. If true/false, the \"orphan\" finalizer will be added to/removed from the object's finalizers list. Either this field or PropagationPolicy may be set, but not both.",
    v2_key: Some("orphanDependents-uRB25kX5"),
};
static POD_PROXY_PATH: Param = Param {
    name: "path",
    loc: Loc::Query,
    ty: "string",
    description: "Path is the URL path to use for the current proxy request to pod.",
    v2_key: Some("path-oPbzgLUj"),
};
static PORTS: Param = Param {
    name: "ports",
    loc: Loc::Query,
    ty: "integer",
    description: "List of ports to forward Required when using WebSockets",
    v2_key: Some("ports-91KROJmm"),
};
static PRETTY: Param = Param {
    name: "pretty",
    loc: Loc::Query,
    ty: "string",
    description: "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget).",
    v2_key: Some("pretty-tJGM1-ng"),
};
static PREVIOUS: Param = Param {
    name: "previous",
    loc: Loc::Query,
    ty: "boolean",
    description: "Return previous terminated container logs. Defaults to false.",
    v2_key: Some("previous-1jxDPu3y"),
};
static PROPAGATION_POLICY: Param = Param {
    name: "propagationPolicy",
    loc: Loc::Query,
    ty: "string",
    description: "Whether and how garbage collection will be performed. Either this field or OrphanDependents may be set, but not both. The default policy is decided by the existing finalizer set in the metadata.finalizers and the resource-specific default policy. Acceptable values are: 'Orphan' - orphan the dependents; 'Background' - allow the garbage collector to delete the dependents in the background; 'Foreground' - a cascading policy that deletes all dependents in the foreground.",
    v2_key: Some("propagationPolicy-6jk3prlO"),
};
static PROXY_PATH_SEGMENT: Param = Param {
    name: "path",
    loc: Loc::Path,
    ty: "string",
    description: "path to the resource",
    v2_key: Some("path-z6Ciiujn"),
};
static RESOURCE_VERSION: Param = Param {
    name: "resourceVersion",
    loc: Loc::Query,
    ty: "string",
    description: "resourceVersion sets a constraint on what resource versions a request may be served from. See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset",
    v2_key: Some("resourceVersion-5WAnf1kx"),
};
static RESOURCE_VERSION_MATCH: Param = Param {
    name: "resourceVersionMatch",
    loc: Loc::Query,
    ty: "string",
    description: "resourceVersionMatch determines how resourceVersion is applied to list calls. It is highly recommended that resourceVersionMatch be set for list calls where resourceVersion is set See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset",
    v2_key: Some("resourceVersionMatch-t8XhRHeC"),
};
static SEND_INITIAL_EVENTS: Param = Param {
    name: "sendInitialEvents",
    loc: Loc::Query,
    ty: "boolean",
    description: "`sendInitialEvents=true` may be set together with `watch=true`. In that case, the watch stream will begin with synthetic events to produce the current state of objects in the collection. Once all such events have been sent, a synthetic \"Bookmark\" event  will be sent. The bookmark will report the ResourceVersion (RV) corresponding to the set of objects, and be marked with `\"k8s.io/initial-events-end\": \"true\"` annotation. Afterwards, the watch stream will proceed as usual, sending watch events corresponding to changes (subsequent to the RV) to objects watched.\n\nWhen `sendInitialEvents` option is set, we require `resourceVersionMatch` option to also be set. The semantic of the watch request is as following: - `resourceVersionMatch` = NotOlderThan\n  is interpreted as \"data at least as new as the provided `resourceVersion`\"\n  and the bookmark event is send when the state is synced\n  to a `resourceVersion` at least as fresh as the one provided by the ListOptions.\n  If `resourceVersion` is unset, this is interpreted as \"consistent read\" and the\n  bookmark event is send when the state is synced at least to the moment\n  when request started being processed.\n- `resourceVersionMatch` set to any other value or unset\n  Invalid error is returned.\n\nDefaults to true if `resourceVersion=\"\"` or `resourceVersion=\"0\"` (for backward compatibility reasons) and to false otherwise.",
    v2_key: Some("sendInitialEvents-rLXlEK_k"),
};
static SERVICE_PROXY_PATH: Param = Param {
    name: "path",
    loc: Loc::Query,
    ty: "string",
    description: "Path is the part of URLs that include service endpoints, suffixes, and parameters to use for the current proxy request to service. For example, the whole request URL is http://localhost/api/v1/namespaces/kube-system/services/elasticsearch-logging/_search?q=user:kimchy. Path is _search?q=user:kimchy.",
    v2_key: Some("path-QCf0eosM"),
};
static SHARD_SELECTOR: Param = Param {
    name: "shardSelector",
    loc: Loc::Query,
    ty: "string",
    description: "shardSelector restricts the list of returned objects using a CEL-based shard selector expression. The format uses the shardRange() function combined with || (logical OR) to specify one or more hash ranges:\n\n  shardRange(object.metadata.uid, '0x0', '0x8000000000000000')\n  shardRange(object.metadata.uid, '0x0', '0x8000000000000000') || shardRange(object.metadata.uid, '0x8000000000000000', '0x10000000000000000')\n\nField paths use CEL-style object-rooted syntax (e.g. \"object.metadata.uid\"), NOT the fieldSelector format (\"metadata.uid\"). Currently supported paths:\n  - object.metadata.uid\n  - object.metadata.namespace\n\nhexStart and hexEnd are single-quoted CEL string literals with a '0x' prefix, defining the inclusive lower and exclusive upper bounds over the 64-bit FNV-1a hash space. The full range is [0x0, 0x10000000000000000), where the exclusive upper bound equals 2^64.\n\nExamples:\n  2-shard split:\n    shard 0: shardRange(object.metadata.uid, '0x0000000000000000', '0x8000000000000000')\n    shard 1: shardRange(object.metadata.uid, '0x8000000000000000', '0x10000000000000000')\n  4-shard split:\n    shard 0: shardRange(object.metadata.uid, '0x0000000000000000', '0x4000000000000000')\n    shard 1: shardRange(object.metadata.uid, '0x4000000000000000', '0x8000000000000000')\n    shard 2: shardRange(object.metadata.uid, '0x8000000000000000', '0xc000000000000000')\n    shard 3: shardRange(object.metadata.uid, '0xc000000000000000', '0x10000000000000000')\n\nThis is an alpha field and requires enabling the ShardedListAndWatch feature gate.",
    v2_key: Some("shardSelector-Kgyki_3_"),
};
static SINCE_SECONDS: Param = Param {
    name: "sinceSeconds",
    loc: Loc::Query,
    ty: "integer",
    description: "A relative time in seconds before the current time from which to show logs. If this value precedes the time a pod was started, only logs since the pod start will be returned. If this value is in the future, no logs will be returned. Only one of sinceSeconds or sinceTime may be specified.",
    v2_key: Some("sinceSeconds-vE2NLdnP"),
};
static STREAM: Param = Param {
    name: "stream",
    loc: Loc::Query,
    ty: "string",
    description: "Specify which container log stream to return to the client. Acceptable values are \"All\", \"Stdout\" and \"Stderr\". If not specified, \"All\" is used, and both stdout and stderr are returned interleaved. Note that when \"TailLines\" is specified, \"Stream\" can only be set to nil or \"All\".",
    v2_key: Some("stream-l-48cgXv"),
};
static TAIL_LINES: Param = Param {
    name: "tailLines",
    loc: Loc::Query,
    ty: "integer",
    description: "If set, the number of lines from the end of the logs to show. If not specified, logs are shown from the creation of the container or sinceSeconds or sinceTime. Note that when \"TailLines\" is specified, \"Stream\" can only be set to nil or \"All\".",
    v2_key: Some("tailLines-9xQLWHMV"),
};
static TIMEOUT_SECONDS: Param = Param {
    name: "timeoutSeconds",
    loc: Loc::Query,
    ty: "integer",
    description: "Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity.",
    v2_key: Some("timeoutSeconds-yvYezaOC"),
};
static TIMESTAMPS: Param = Param {
    name: "timestamps",
    loc: Loc::Query,
    ty: "boolean",
    description: "If true, add an RFC3339 or RFC3339Nano timestamp at the beginning of every line of log output. Defaults to false.",
    v2_key: Some("timestamps-c17fW1w_"),
};
static WATCH: Param = Param {
    name: "watch",
    loc: Loc::Query,
    ty: "boolean",
    description: "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion.",
    v2_key: Some("watch-XNNPZGbK"),
};

static ALL_PARAMS: &[&Param] = &[
    &ALLOW_WATCH_BOOKMARKS,
    &ATTACH_CONTAINER,
    &ATTACH_STDERR,
    &ATTACH_STDIN,
    &ATTACH_STDOUT,
    &ATTACH_TTY,
    &COMMAND,
    &CONTINUE,
    &DRY_RUN,
    &EXEC_CONTAINER,
    &EXEC_STDERR,
    &EXEC_STDIN,
    &EXEC_STDOUT,
    &EXEC_TTY,
    &FIELD_MANAGER,
    &FIELD_MANAGER_PATCH,
    &FIELD_SELECTOR,
    &FIELD_VALIDATION,
    &FOLLOW,
    &FORCE,
    &GRACE_PERIOD_SECONDS,
    &IGNORE_STORE_READ_ERROR_WITH_CLUSTER_BREAKING_POTENTIAL,
    &INSECURE_SKIP_TLSVERIFY_BACKEND,
    &LABEL_SELECTOR,
    &LIMIT,
    &LIMIT_BYTES,
    &LOG_CONTAINER,
    &NAMESPACE,
    &NODE_PROXY_PATH,
    &ORPHAN_DEPENDENTS,
    &PORTS,
    &POD_PROXY_PATH,
    &PRETTY,
    &PREVIOUS,
    &PROPAGATION_POLICY,
    &PROXY_PATH_SEGMENT,
    &RESOURCE_VERSION,
    &RESOURCE_VERSION_MATCH,
    &SEND_INITIAL_EVENTS,
    &SERVICE_PROXY_PATH,
    &SHARD_SELECTOR,
    &SINCE_SECONDS,
    &STREAM,
    &TAIL_LINES,
    &TIMEOUT_SECONDS,
    &TIMESTAMPS,
    &WATCH,
];

/// The parameters of list and watch operations.
static LIST_PARAMS: &[&Param] = &[
    &ALLOW_WATCH_BOOKMARKS,
    &CONTINUE,
    &FIELD_SELECTOR,
    &LABEL_SELECTOR,
    &LIMIT,
    &RESOURCE_VERSION,
    &RESOURCE_VERSION_MATCH,
    &SEND_INITIAL_EVENTS,
    &SHARD_SELECTOR,
    &TIMEOUT_SECONDS,
    &WATCH,
];

static DELETE_COLLECTION_PARAMS: &[&Param] = &[
    &CONTINUE,
    &DRY_RUN,
    &FIELD_SELECTOR,
    &GRACE_PERIOD_SECONDS,
    &IGNORE_STORE_READ_ERROR_WITH_CLUSTER_BREAKING_POTENTIAL,
    &LABEL_SELECTOR,
    &LIMIT,
    &ORPHAN_DEPENDENTS,
    &PROPAGATION_POLICY,
    &RESOURCE_VERSION,
    &RESOURCE_VERSION_MATCH,
    &SEND_INITIAL_EVENTS,
    &SHARD_SELECTOR,
    &TIMEOUT_SECONDS,
];

static DELETE_PARAMS: &[&Param] = &[
    &DRY_RUN,
    &GRACE_PERIOD_SECONDS,
    &IGNORE_STORE_READ_ERROR_WITH_CLUSTER_BREAKING_POTENTIAL,
    &ORPHAN_DEPENDENTS,
    &PROPAGATION_POLICY,
];

static WRITE_PARAMS: &[&Param] = &[&DRY_RUN, &FIELD_MANAGER, &FIELD_VALIDATION];

static PATCH_PARAMS: &[&Param] = &[&DRY_RUN, &FIELD_MANAGER_PATCH, &FIELD_VALIDATION, &FORCE];

static LOG_PARAMS: &[&Param] = &[
    &LOG_CONTAINER,
    &FOLLOW,
    &INSECURE_SKIP_TLSVERIFY_BACKEND,
    &LIMIT_BYTES,
    &PREVIOUS,
    &SINCE_SECONDS,
    &STREAM,
    &TAIL_LINES,
    &TIMESTAMPS,
];

static ATTACH_PARAMS: &[&Param] = &[
    &ATTACH_CONTAINER,
    &ATTACH_STDERR,
    &ATTACH_STDIN,
    &ATTACH_STDOUT,
    &ATTACH_TTY,
];
static EXEC_PARAMS: &[&Param] = &[
    &COMMAND,
    &EXEC_CONTAINER,
    &EXEC_STDERR,
    &EXEC_STDIN,
    &EXEC_STDOUT,
    &EXEC_TTY,
];
static PORT_FORWARD_PARAMS: &[&Param] = &[&PORTS];
static POD_PROXY_PARAMS: &[&Param] = &[&POD_PROXY_PATH];
static NODE_PROXY_PARAMS: &[&Param] = &[&NODE_PROXY_PATH];
static SERVICE_PROXY_PARAMS: &[&Param] = &[&SERVICE_PROXY_PATH];

/// The query parameters of a connect subresource, by the kind of its options.
fn connect_params(options_kind: &str) -> &'static [&'static Param] {
    match options_kind {
        "PodAttachOptions" => ATTACH_PARAMS,
        "PodExecOptions" => EXEC_PARAMS,
        "PodPortForwardOptions" => PORT_FORWARD_PARAMS,
        "PodProxyOptions" => POD_PROXY_PARAMS,
        "NodeProxyOptions" => NODE_PROXY_PARAMS,
        "ServiceProxyOptions" => SERVICE_PROXY_PARAMS,
        _ => &[],
    }
}

// ---------------------------------------------------------------------------------------------
// Operations, as upstream's apiserver installs them.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Method {
    Get,
    Put,
    Post,
    Delete,
    Options,
    Head,
    Patch,
}

impl Method {
    fn key(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Put => "put",
            Method::Post => "post",
            Method::Delete => "delete",
            Method::Options => "options",
            Method::Head => "head",
            Method::Patch => "patch",
        }
    }

    /// As in `connect{Method}…` operation ids.
    fn title(self) -> &'static str {
        match self {
            Method::Get => "Get",
            Method::Put => "Put",
            Method::Post => "Post",
            Method::Delete => "Delete",
            Method::Options => "Options",
            Method::Head => "Head",
            Method::Patch => "Patch",
        }
    }
}

const JSON_TYPE: &str = "application/json";
const YAML_TYPE: &str = "application/yaml";
const PROTOBUF_TYPE: &str = "application/vnd.kubernetes.protobuf";
const JSON_WATCH_TYPE: &str = "application/json;stream=watch";
const PROTOBUF_WATCH_TYPE: &str = "application/vnd.kubernetes.protobuf;stream=watch";

/// Content types of answers (v2 `produces`, in upstream's order).
const PRODUCES_OBJECT: &[&str] = &[JSON_TYPE, YAML_TYPE, PROTOBUF_TYPE];
const PRODUCES_STREAM: &[&str] = &[
    JSON_TYPE,
    YAML_TYPE,
    PROTOBUF_TYPE,
    JSON_WATCH_TYPE,
    PROTOBUF_WATCH_TYPE,
];
const PRODUCES_ANY: &[&str] = &["*/*"];
const PRODUCES_LOG: &[&str] = &["text/plain", JSON_TYPE, YAML_TYPE, PROTOBUF_TYPE];
const PRODUCES_JSON: &[&str] = &[JSON_TYPE];
const PRODUCES_JWKS: &[&str] = &["application/jwk-set+json"];

/// Content types of request bodies (v2 `consumes`, in upstream's order).
const CONSUMES_ANY: &[&str] = &["*/*"];
const CONSUMES_DISCOVERY: &[&str] = &[JSON_TYPE, YAML_TYPE, PROTOBUF_TYPE];
const CONSUMES_PATCH: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];
const CONSUMES_PATCH_NO_STRATEGIC: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
];

#[derive(Debug, Clone)]
enum Body {
    None,
    /// An object of this definition, required.
    Object(String),
    /// DeleteOptions, optional.
    DeleteOptions,
    Patch,
}

#[derive(Debug, Clone)]
enum Answer {
    Ref(String),
    String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Gvk {
    group: String,
    version: String,
    kind: String,
}

impl Gvk {
    fn new(group: &str, version: &str, kind: &str) -> Gvk {
        Gvk {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
        }
    }

    /// `{"group", "version", "kind"}` (v3 operations).
    fn v3(&self) -> Value {
        json!({"group": self.group, "version": self.version, "kind": self.kind})
    }

    /// `{"group", "kind", "version"}` (v2 operations, all definitions).
    fn sorted(&self) -> Value {
        json!({"group": self.group, "kind": self.kind, "version": self.version})
    }
}

#[derive(Debug, Clone)]
struct Op {
    method: Method,
    id: String,
    tag: String,
    description: String,
    action: Option<&'static str>,
    gvk: Option<Gvk>,
    params: Vec<Arg>,
    body: Body,
    consumes: Option<&'static [&'static str]>,
    produces: &'static [&'static str],
    /// Status codes besides 401.
    codes: &'static [&'static str],
    answer: Answer,
}

fn code_description(code: &str) -> &'static str {
    match code {
        "200" => "OK",
        "201" => "Created",
        "202" => "Accepted",
        "401" => "Unauthorized",
        _ => "",
    }
}

/// Upstream's `ToValidOperationID`: letters and `_` are kept, digits except in front, and any
/// other character is dropped and upper-cases the next letter.
fn operation_id_part(s: &str, capitalize_first: bool) -> String {
    let mut out = String::with_capacity(s.len());
    let mut capitalize = capitalize_first;
    for (i, c) in s.chars().enumerate() {
        if c.is_alphabetic() || c == '_' || (i != 0 && c.is_ascii_digit()) {
            if capitalize {
                out.extend(c.to_uppercase());
                capitalize = false;
            } else {
                out.push(c);
            }
        } else {
            capitalize = true;
        }
    }
    out
}

/// `Core`, `Apps`, `RbacAuthorization`, … as operation ids spell a group.
fn group_id(group: &str) -> String {
    if group.is_empty() {
        "Core".into()
    } else {
        operation_id_part(group.trim_end_matches(".k8s.io"), true)
    }
}

/// `core`, `apps`, `rbacAuthorization`, … as tags spell a group.
fn group_tag(group: &str) -> String {
    if group.is_empty() {
        "core".into()
    } else {
        operation_id_part(group.trim_end_matches(".k8s.io"), false)
    }
}

/// `kind` with upstream's article: "a Pod", "an Ingress", "Endpoints" (a plural has none).
fn with_article(kind: &str) -> String {
    if kind.ends_with('s') && !kind.ends_with("ss") {
        return kind.to_string();
    }
    let vowel = kind
        .chars()
        .next()
        .is_some_and(|c| "aeiouAEIOU".contains(c));
    format!("{} {kind}", if vowel { "an" } else { "a" })
}

/// The first letter upper-cased (`status` → `Status`).
fn title(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn fixed(params: &[&'static Param]) -> Vec<Arg> {
    params.iter().map(|p| Arg::Fixed(p)).collect()
}

/// The operations of one group/version, by path.
type Routes = BTreeMap<String, Vec<Op>>;

fn add_op(routes: &mut Routes, path: String, op: Op) {
    routes.entry(path).or_default().push(op);
}

/// Everything the paths of one resource need to know.
struct ResourceRoutes<'a> {
    model: &'a Model,
    r: &'a ResourceInfo,
    /// `/api/v1` or `/apis/{group}/{version}`.
    prefix: String,
    /// `{verb}{Group}{Version}`-style prefix pieces.
    gv_id: String,
    tag: String,
    builtin: bool,
}

impl ResourceRoutes<'_> {
    fn ns(&self) -> &'static str {
        if self.r.namespaced() {
            "Namespaced"
        } else {
            ""
        }
    }

    fn id(&self, verb: &str, rest: &str) -> String {
        format!("{verb}{}{rest}", self.gv_id)
    }

    fn gvk(&self) -> Gvk {
        Gvk::new(&self.r.group, &self.r.version, &self.r.kind)
    }

    fn op(&self, method: Method, id: String, description: String) -> Op {
        Op {
            method,
            id,
            tag: self.tag.clone(),
            description,
            action: None,
            gvk: Some(self.gvk()),
            params: Vec::new(),
            body: Body::None,
            consumes: Some(CONSUMES_ANY),
            produces: PRODUCES_OBJECT,
            codes: &["200"],
            answer: Answer::String,
        }
    }

    /// `…/namespaces/{namespace}/{plural}` or `…/{plural}`, after `prefix` (and `/watch`).
    fn collection(&self, watch: bool) -> String {
        let w = if watch { "/watch" } else { "" };
        if self.r.namespaced() {
            format!(
                "{}{w}/namespaces/{{namespace}}/{}",
                self.prefix, self.r.plural
            )
        } else {
            format!("{}{w}/{}", self.prefix, self.r.plural)
        }
    }

    /// Path parameters of the collection path (namespace, if any) plus `pretty`.
    fn scope_args(&self, pretty: bool) -> Vec<Arg> {
        let mut args = Vec::new();
        if self.r.namespaced() {
            args.push(Arg::Fixed(&NAMESPACE));
        }
        if pretty {
            args.push(Arg::Fixed(&PRETTY));
        }
        args
    }

    fn add(&self, routes: &mut Routes) {
        let r = self.r;
        let k = &r.kind;
        let ns = self.ns();
        let kind_def = self.model.kind_definition(&r.group, &r.version, &r.kind);
        let list_def = format!("{kind_def}List");
        let collection = self.collection(false);
        let item = format!("{collection}/{{name}}");

        if r.has_verb("list") {
            let mut op = self.op(
                Method::Get,
                self.id("list", &format!("{ns}{k}")),
                if r.has_verb("watch") {
                    format!("list or watch objects of kind {k}")
                } else {
                    format!("list objects of kind {k}")
                },
            );
            op.action = Some("list");
            op.params = fixed(LIST_PARAMS);
            op.params.extend(self.scope_args(true));
            op.produces = PRODUCES_STREAM;
            op.answer = Answer::Ref(list_def.clone());
            if r.namespaced() {
                let mut all = op.clone();
                all.id = self.id("list", &format!("{k}ForAllNamespaces"));
                all.params = fixed(LIST_PARAMS);
                all.params.push(Arg::Fixed(&PRETTY));
                add_op(routes, format!("{}/{}", self.prefix, r.plural), all);
            }
            add_op(routes, collection.clone(), op);
        }
        if r.has_verb("create") {
            let mut op = self.op(
                Method::Post,
                self.id("create", &format!("{ns}{k}")),
                format!("create {}", with_article(k)),
            );
            op.action = Some("post");
            op.params = fixed(WRITE_PARAMS);
            op.params.extend(self.scope_args(true));
            op.body = Body::Object(kind_def.clone());
            op.codes = &["200", "201", "202"];
            op.answer = Answer::Ref(kind_def.clone());
            add_op(routes, collection.clone(), op);
        }
        if r.has_verb("deletecollection") {
            let mut op = self.op(
                Method::Delete,
                self.id("delete", &format!("Collection{ns}{k}")),
                format!("delete collection of {k}"),
            );
            op.action = Some("deletecollection");
            op.params = fixed(DELETE_COLLECTION_PARAMS);
            op.params.extend(self.scope_args(true));
            op.body = Body::DeleteOptions;
            op.answer = Answer::Ref(STATUS.into());
            add_op(routes, collection.clone(), op);
        }
        let item_args = |pretty: bool| {
            let mut args = vec![Arg::Name(k.clone())];
            args.extend(self.scope_args(pretty));
            args
        };
        if r.has_verb("get") {
            let mut op = self.op(
                Method::Get,
                self.id("read", &format!("{ns}{k}")),
                format!("read the specified {k}"),
            );
            op.action = Some("get");
            op.params = item_args(true);
            op.answer = Answer::Ref(kind_def.clone());
            add_op(routes, item.clone(), op);
        }
        if r.has_verb("update") {
            let mut op = self.op(
                Method::Put,
                self.id("replace", &format!("{ns}{k}")),
                format!("replace the specified {k}"),
            );
            op.action = Some("put");
            op.params = fixed(WRITE_PARAMS);
            op.params.extend(item_args(true));
            op.body = Body::Object(kind_def.clone());
            op.codes = &["200", "201"];
            op.answer = Answer::Ref(kind_def.clone());
            add_op(routes, item.clone(), op);
        }
        if r.has_verb("delete") {
            let mut op = self.op(
                Method::Delete,
                self.id("delete", &format!("{ns}{k}")),
                format!("delete {}", with_article(k)),
            );
            op.action = Some("delete");
            op.params = fixed(DELETE_PARAMS);
            op.params.extend(item_args(true));
            op.body = Body::DeleteOptions;
            op.codes = &["200", "202"];
            let returns_object = self.builtin
                && RETURNS_DELETED_OBJECT
                    .iter()
                    .any(|(g, p)| *g == r.group && *p == r.plural);
            op.answer = Answer::Ref(if returns_object {
                kind_def.clone()
            } else {
                STATUS.into()
            });
            add_op(routes, item.clone(), op);
        }
        if r.has_verb("patch") {
            let mut op = self.op(
                Method::Patch,
                self.id("patch", &format!("{ns}{k}")),
                format!("partially update the specified {k}"),
            );
            op.action = Some("patch");
            op.params = fixed(PATCH_PARAMS);
            op.params.extend(item_args(true));
            op.body = Body::Patch;
            op.consumes = Some(self.patch_types());
            op.codes = &["200", "201"];
            op.answer = Answer::Ref(kind_def.clone());
            add_op(routes, item.clone(), op);
        }
        if r.has_verb("watch") {
            let watch_collection = self.collection(true);
            let mut op = self.op(
                Method::Get,
                self.id("watch", &format!("{ns}{k}")),
                format!("watch changes to an object of kind {k}. deprecated: use the 'watch' parameter with a list operation instead, filtered to a single item with the 'fieldSelector' parameter."),
            );
            op.action = Some("watch");
            op.params = fixed(LIST_PARAMS);
            op.params.extend(item_args(true));
            op.produces = PRODUCES_STREAM;
            op.answer = Answer::Ref(WATCH_EVENT.into());
            add_op(routes, format!("{watch_collection}/{{name}}"), op.clone());

            op.id = self.id("watch", &format!("{ns}{k}List"));
            op.description = format!("watch individual changes to a list of {k}. deprecated: use the 'watch' parameter with a list operation instead.");
            op.action = Some("watchlist");
            op.params = fixed(LIST_PARAMS);
            op.params.extend(self.scope_args(true));
            add_op(routes, watch_collection, op.clone());
            if r.namespaced() {
                op.id = self.id("watch", &format!("{k}ListForAllNamespaces"));
                op.params = fixed(LIST_PARAMS);
                op.params.push(Arg::Fixed(&PRETTY));
                add_op(routes, format!("{}/watch/{}", self.prefix, r.plural), op);
            }
        }
        for s in &r.subresources {
            self.add_subresource(routes, &item, s);
        }
    }

    fn patch_types(&self) -> &'static [&'static str] {
        if self.builtin {
            CONSUMES_PATCH
        } else {
            CONSUMES_PATCH_NO_STRATEGIC
        }
    }

    fn add_subresource(&self, routes: &mut Routes, item: &str, s: &SubresourceInfo) {
        let r = self.r;
        let k = &r.kind;
        let ns = self.ns();
        let sub = title(&s.name);
        let path = format!("{item}/{}", s.name);
        let gvk = Gvk::new(&s.group, &s.version, &s.kind);
        let has = |verb: &str| s.verbs.iter().any(|v| v == verb);
        let args = |pretty: bool| {
            let mut args = vec![Arg::Name(s.kind.clone())];
            args.extend(self.scope_args(pretty));
            args
        };
        let base = |method: Method, id: String, description: String| {
            let mut op = self.op(method, id, description);
            op.gvk = Some(gvk.clone());
            op
        };

        if s.name == "log" {
            let mut op = base(
                Method::Get,
                self.id("read", &format!("{ns}{k}Log")),
                format!("read log of the specified {k}"),
            );
            op.action = Some("get");
            op.params = fixed(LOG_PARAMS);
            op.params.extend(args(true));
            op.produces = PRODUCES_LOG;
            add_op(routes, path, op);
            return;
        }
        if s.kind.ends_with("Options") {
            // A connect subresource (exec, attach, portforward, proxy).
            let mut methods: Vec<Method> = Vec::new();
            for (verb, method) in [
                ("get", Method::Get),
                ("update", Method::Put),
                ("create", Method::Post),
                ("delete", Method::Delete),
            ] {
                if has(verb) {
                    methods.push(method);
                }
            }
            if s.name == "proxy" {
                methods.extend([Method::Options, Method::Head]);
            }
            if has("patch") {
                methods.push(Method::Patch);
            }
            let mut variants = vec![(path.clone(), "", false)];
            if s.name == "proxy" {
                variants.push((format!("{path}/{{path}}"), "WithPath", true));
            }
            for (p, suffix, with_path) in variants {
                for &method in &methods {
                    let mut op = base(
                        method,
                        self.id(
                            "connect",
                            &format!("{}{ns}{k}{sub}{suffix}", method.title()),
                        ),
                        format!(
                            "connect {} requests to {} of {k}",
                            method.key().to_ascii_uppercase(),
                            s.name
                        ),
                    );
                    op.action = Some("connect");
                    op.params = fixed(connect_params(&s.kind));
                    op.params.extend(args(false));
                    if with_path {
                        op.params.push(Arg::Fixed(&PROXY_PATH_SEGMENT));
                    }
                    op.produces = PRODUCES_ANY;
                    add_op(routes, p.clone(), op);
                }
            }
            return;
        }
        let sub_def = self.model.kind_definition(&s.group, &s.version, &s.kind);
        if has("get") {
            let mut op = base(
                Method::Get,
                self.id("read", &format!("{ns}{k}{sub}")),
                format!("read {} of the specified {k}", s.name),
            );
            op.action = Some("get");
            op.params = args(true);
            op.answer = Answer::Ref(sub_def.clone());
            add_op(routes, path.clone(), op);
        }
        if has("update") {
            let mut op = base(
                Method::Put,
                self.id("replace", &format!("{ns}{k}{sub}")),
                format!("replace {} of the specified {k}", s.name),
            );
            op.action = Some("put");
            op.params = fixed(WRITE_PARAMS);
            op.params.extend(args(true));
            op.body = Body::Object(sub_def.clone());
            op.codes = &["200", "201"];
            op.answer = Answer::Ref(sub_def.clone());
            add_op(routes, path.clone(), op);
        }
        if has("create") {
            let mut op = base(
                Method::Post,
                self.id("create", &format!("{ns}{k}{sub}")),
                format!("create {} of {}", s.name, with_article(k)),
            );
            op.action = Some("post");
            op.params = fixed(WRITE_PARAMS);
            op.params.extend(args(true));
            op.body = Body::Object(sub_def.clone());
            op.codes = &["200", "201", "202"];
            op.answer = Answer::Ref(sub_def.clone());
            add_op(routes, path.clone(), op);
        }
        if has("patch") {
            let mut op = base(
                Method::Patch,
                self.id("patch", &format!("{ns}{k}{sub}")),
                format!("partially update {} of the specified {k}", s.name),
            );
            op.action = Some("patch");
            op.params = fixed(PATCH_PARAMS);
            op.params.extend(args(true));
            op.body = Body::Patch;
            op.consumes = Some(self.patch_types());
            op.codes = &["200", "201"];
            op.answer = Answer::Ref(sub_def);
            add_op(routes, path, op);
        }
    }
}

/// A GET of a discovery or informational endpoint.
fn info_op(id: &str, tag: &str, description: &str, answer: Answer) -> Op {
    Op {
        method: Method::Get,
        id: id.into(),
        tag: tag.into(),
        description: description.into(),
        action: None,
        gvk: None,
        params: Vec::new(),
        body: Body::None,
        consumes: Some(CONSUMES_DISCOVERY),
        produces: PRODUCES_OBJECT,
        codes: &["200"],
        answer,
    }
}

// ---------------------------------------------------------------------------------------------
// Rendering.

struct Model {
    resources: Vec<ResourceInfo>,
    custom: Vec<CustomSchema>,
}

impl Model {
    /// The definition name of a kind: upstream's for built-in kinds, the reversed group for
    /// custom resources (`com.example.stable.v1.CronTab`, as upstream names them).
    fn kind_definition(&self, group: &str, version: &str, kind: &str) -> String {
        if let Some(known) = known_kind(group, version, kind) {
            return (known.name)().into_owned();
        }
        let mut name: Vec<&str> = group.split('.').rev().filter(|s| !s.is_empty()).collect();
        name.push(version);
        name.push(kind);
        name.join(".")
    }

    fn is_builtin(&self, r: &ResourceInfo) -> bool {
        r.is_builtin_group() && known_kind(&r.group, &r.version, &r.kind).is_some()
    }

    /// The operations of one group/version.
    fn group_version_routes(&self, group: &str, version: &str) -> Routes {
        let mut routes = Routes::new();
        let (prefix, tag) = if group.is_empty() {
            (
                format!("/api/{version}"),
                format!("core_{}", operation_id_part(version, false)),
            )
        } else {
            (
                format!("/apis/{group}/{version}"),
                format!("{}_{}", group_tag(group), operation_id_part(version, false)),
            )
        };
        let gv_id = format!("{}{}", group_id(group), operation_id_part(version, true));
        add_op(
            &mut routes,
            format!("{prefix}/"),
            info_op(
                &format!("get{gv_id}APIResources"),
                &tag,
                "get available resources",
                Answer::Ref(API_RESOURCE_LIST.into()),
            ),
        );
        for r in self
            .resources
            .iter()
            .filter(|r| r.group == group && r.version == version)
        {
            ResourceRoutes {
                model: self,
                r,
                prefix: prefix.clone(),
                gv_id: gv_id.clone(),
                tag: tag.clone(),
                builtin: self.is_builtin(r),
            }
            .add(&mut routes);
        }
        routes
    }

    fn group_routes(&self, group: &str) -> Routes {
        let mut routes = Routes::new();
        add_op(
            &mut routes,
            format!("/apis/{group}/"),
            info_op(
                &format!("get{}APIGroup", group_id(group)),
                &group_tag(group),
                "get information of a group",
                Answer::Ref(API_GROUP.into()),
            ),
        );
        routes
    }

    fn target_routes(&self, target: &Target) -> Routes {
        let mut routes = Routes::new();
        match target {
            Target::CoreVersions => add_op(
                &mut routes,
                "/api/".into(),
                info_op(
                    "getCoreAPIVersions",
                    "core",
                    "get available API versions",
                    Answer::Ref(API_VERSIONS.into()),
                ),
            ),
            Target::Groups => add_op(
                &mut routes,
                "/apis/".into(),
                info_op(
                    "getAPIVersions",
                    "apis",
                    "get available API versions",
                    Answer::Ref(API_GROUP_LIST.into()),
                ),
            ),
            Target::Group(group) => routes = self.group_routes(group),
            Target::GroupVersion(group, version) => {
                routes = self.group_version_routes(group, version)
            }
            Target::Version => {
                let mut op = info_op(
                    "getCodeVersion",
                    "version",
                    "get the version information for this server",
                    Answer::Ref(VERSION_INFO.into()),
                );
                op.consumes = Some(PRODUCES_JSON);
                op.produces = PRODUCES_JSON;
                add_op(&mut routes, "/version/".into(), op);
            }
            Target::OpenIdConfiguration => {
                let mut op = info_op(
                    "getServiceAccountIssuerOpenIDConfiguration",
                    "WellKnown",
                    "get service account issuer OpenID configuration, also known as the 'OIDC discovery doc'",
                    Answer::String,
                );
                op.consumes = None;
                op.produces = PRODUCES_JSON;
                add_op(&mut routes, "/.well-known/openid-configuration/".into(), op);
            }
            Target::OpenIdKeys => {
                let mut op = info_op(
                    "getServiceAccountIssuerOpenIDKeyset",
                    "openid",
                    "get service account issuer OpenID JSON Web Key Set (contains public token verification keys)",
                    Answer::String,
                );
                op.consumes = None;
                op.produces = PRODUCES_JWKS;
                add_op(&mut routes, "/openid/v1/jwks/".into(), op);
            }
        }
        routes
    }

    /// Every path of the server (the v2 document).
    fn all_routes(&self) -> Routes {
        let mut routes = Routes::new();
        for target in [
            Target::OpenIdConfiguration,
            Target::OpenIdKeys,
            Target::Version,
            Target::CoreVersions,
            Target::Groups,
        ] {
            routes.extend(self.target_routes(&target));
        }
        let mut group_versions: BTreeSet<(&str, &str)> = BTreeSet::new();
        for r in &self.resources {
            group_versions.insert((&r.group, &r.version));
        }
        for (group, version) in group_versions {
            if !group.is_empty() {
                routes.extend(self.group_routes(group));
            }
            routes.extend(self.group_version_routes(group, version));
        }
        routes
    }

    fn render_v2(&self) -> Vec<u8> {
        let routes = self.all_routes();
        let mut out = JsonWriter::new();
        out.raw(r#"{"swagger":"2.0","info":{"title":"Kubernetes","version":""#);
        out.raw(INFO_VERSION);
        out.raw(r#""},"paths":"#);
        let mut shared: BTreeSet<&'static str> = BTreeSet::new();
        out.write_paths(&routes, Flavor::V2, &mut shared);
        out.raw(r#","definitions":"#);
        let roots = referenced_definitions(&routes);
        drop(routes);
        self.write_definitions(&mut out, &roots, Flavor::V2, None);
        out.raw(r#","parameters":{"#);
        let mut first = true;
        for key in shared {
            if let Some(p) = v2_shared_param(key) {
                out.entry(&mut first, key, &p);
            }
        }
        out.raw("},");
        out.raw(r#""securityDefinitions":{"BearerToken":{"description":"Bearer Token authentication","type":"apiKey","name":"authorization","in":"header"}},"#);
        out.raw(r#""security":[{"BearerToken":[]}]}"#);
        out.finish()
    }

    fn render_v3(&self, target: &Target) -> Vec<u8> {
        let routes = self.target_routes(target);
        let mut out = JsonWriter::new();
        out.raw(r#"{"openapi":"3.0.0","info":{"title":"Kubernetes","version":""#);
        out.raw(INFO_VERSION);
        out.raw(r#""},"paths":"#);
        out.write_paths(&routes, Flavor::V3, &mut BTreeSet::new());
        out.raw(r#","components":{"#);
        let roots = referenced_definitions(&routes);
        drop(routes);
        if !roots.is_empty() {
            let group_version = match target {
                Target::GroupVersion(g, v) => Some((g.as_str(), v.as_str())),
                _ => None,
            };
            out.raw(r#""schemas":"#);
            self.write_definitions(&mut out, &roots, Flavor::V3, group_version);
            out.raw(",");
        }
        out.raw(r#""securitySchemes":{"BearerToken":{"type":"apiKey","description":"Bearer Token authentication","name":"authorization","in":"header"}}}}"#);
        out.finish()
    }
}

/// Writes a document piece by piece, so that only one path item or definition exists as a
/// `Value` at a time. Values are written through `Value`'s `Display`, which is compiled inside
/// serde_json (with its optimisation level even in debug builds of this crate) and so is
/// several times faster there than `serde_json::to_vec`.
struct JsonWriter {
    out: String,
}

impl JsonWriter {
    fn new() -> JsonWriter {
        JsonWriter {
            out: String::with_capacity(1 << 16),
        }
    }

    fn raw(&mut self, s: &str) {
        self.out.push_str(s);
    }

    fn value(&mut self, v: &Value) {
        use std::fmt::Write as _;
        // Writing into a String cannot fail.
        let _ = write!(self.out, "{v}");
    }

    /// `"key":value`, preceded by a comma unless it is the first entry.
    fn entry(&mut self, first: &mut bool, key: &str, v: &Value) {
        if !*first {
            self.out.push(',');
        }
        *first = false;
        self.value(&Value::String(key.to_string()));
        self.out.push(':');
        self.value(v);
    }

    fn write_paths(
        &mut self,
        routes: &Routes,
        flavor: Flavor,
        shared: &mut BTreeSet<&'static str>,
    ) {
        self.out.push('{');
        let mut first = true;
        for (path, ops) in routes {
            let item = path_item(ops, flavor, shared);
            self.entry(&mut first, path, &item);
        }
        self.out.push('}');
    }

    fn finish(self) -> Vec<u8> {
        self.out.into_bytes()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    V2,
    V3,
}

impl Flavor {
    fn ref_prefix(self) -> &'static str {
        match self {
            Flavor::V2 => V2_REF_PREFIX,
            Flavor::V3 => V3_REF_PREFIX,
        }
    }

    fn reference(self, definition: &str) -> Value {
        json!({ "$ref": format!("{}{definition}", self.ref_prefix()) })
    }
}

/// The definitions the operations name directly.
fn referenced_definitions(routes: &Routes) -> BTreeSet<String> {
    let mut roots = BTreeSet::new();
    for op in routes.values().flatten() {
        match &op.body {
            Body::Object(d) => {
                roots.insert(d.clone());
            }
            Body::DeleteOptions => {
                roots.insert(DELETE_OPTIONS.to_string());
            }
            Body::Patch => {
                roots.insert(PATCH.to_string());
            }
            Body::None => {}
        }
        if let Answer::Ref(d) = &op.answer {
            roots.insert(d.clone());
        }
    }
    roots
}

/// A path item: the operations in upstream's method order, then the parameters all of them
/// share (by name and location; never the body).
fn path_item(ops: &[Op], flavor: Flavor, shared: &mut BTreeSet<&'static str>) -> Value {
    let mut ops: Vec<&Op> = ops.iter().collect();
    ops.sort_by_key(|op| op.method);
    let mut common: Vec<Arg> = Vec::new();
    if let Some(first) = ops.first() {
        for arg in &first.params {
            let key = arg.key();
            if ops
                .iter()
                .all(|op| op.params.iter().any(|a| a.key() == key))
            {
                common.push(arg.clone());
            }
        }
    }
    sort_args(&mut common);
    let common_keys: BTreeSet<(String, Loc)> = common.iter().map(Arg::key).collect();
    let mut item = Map::new();
    for op in ops {
        let own: Vec<Arg> = op
            .params
            .iter()
            .filter(|a| !common_keys.contains(&a.key()))
            .cloned()
            .collect();
        let rendered = match flavor {
            Flavor::V2 => v2_operation(op, own, shared),
            Flavor::V3 => v3_operation(op, own),
        };
        item.insert(op.method.key().into(), rendered);
    }
    if !common.is_empty() {
        let params: Vec<Value> = common
            .iter()
            .map(|a| match flavor {
                Flavor::V2 => a.v2(shared),
                Flavor::V3 => a.v3(),
            })
            .collect();
        item.insert("parameters".into(), params.into());
    }
    Value::Object(item)
}

/// Parameters sorted by name, then location (upstream's order).
fn sort_args(args: &mut [Arg]) {
    args.sort_by_key(Arg::key);
}

fn answer_schema(answer: &Answer, flavor: Flavor) -> Value {
    match answer {
        Answer::Ref(d) => flavor.reference(d),
        Answer::String => json!({"type": "string"}),
    }
}

fn v2_operation(op: &Op, mut own: Vec<Arg>, shared: &mut BTreeSet<&'static str>) -> Value {
    sort_args(&mut own);
    let mut m = Map::new();
    m.insert("description".into(), op.description.clone().into());
    if let Some(consumes) = op.consumes {
        m.insert("consumes".into(), strings(consumes));
    }
    m.insert("produces".into(), strings(op.produces));
    m.insert("schemes".into(), json!(["https"]));
    m.insert("tags".into(), json!([op.tag]));
    m.insert("operationId".into(), op.id.clone().into());
    // The body sorts by its name ("body") among the others.
    let mut params: Vec<(String, Value)> = Vec::new();
    match &op.body {
        Body::None => {}
        Body::Object(d) => params.push((
            "body".into(),
            json!({"name": "body", "in": "body", "required": true, "schema": Flavor::V2.reference(d)}),
        )),
        Body::DeleteOptions => {
            shared.insert(V2_DELETE_OPTIONS_BODY);
            params.push((
                "body".into(),
                json!({"$ref": format!("#/parameters/{V2_DELETE_OPTIONS_BODY}")}),
            ));
        }
        Body::Patch => {
            shared.insert(V2_PATCH_BODY);
            params.push((
                "body".into(),
                json!({"$ref": format!("#/parameters/{V2_PATCH_BODY}")}),
            ));
        }
    }
    for a in &own {
        params.push((a.name().to_string(), a.v2(shared)));
    }
    params.sort_by(|a, b| a.0.cmp(&b.0));
    if !params.is_empty() {
        m.insert(
            "parameters".into(),
            Value::Array(params.into_iter().map(|(_, v)| v).collect()),
        );
    }
    let mut responses = Map::new();
    for code in op.codes {
        responses.insert(
            (*code).into(),
            json!({"description": code_description(code), "schema": answer_schema(&op.answer, Flavor::V2)}),
        );
    }
    responses.insert("401".into(), json!({"description": "Unauthorized"}));
    m.insert("responses".into(), Value::Object(responses));
    if let Some(action) = op.action {
        m.insert("x-kubernetes-action".into(), action.into());
    }
    if let Some(gvk) = &op.gvk {
        // The aggregator's own group comes from a differently built spec upstream.
        let gvk = if gvk.group == "apiregistration.k8s.io" {
            gvk.v3()
        } else {
            gvk.sorted()
        };
        m.insert("x-kubernetes-group-version-kind".into(), gvk);
    }
    Value::Object(m)
}

fn v3_operation(op: &Op, mut own: Vec<Arg>) -> Value {
    sort_args(&mut own);
    let mut m = Map::new();
    m.insert("tags".into(), json!([op.tag]));
    m.insert("description".into(), op.description.clone().into());
    m.insert("operationId".into(), op.id.clone().into());
    if !own.is_empty() {
        m.insert(
            "parameters".into(),
            Value::Array(own.iter().map(Arg::v3).collect()),
        );
    }
    let body = match &op.body {
        Body::None => None,
        Body::Object(d) => Some((d.as_str(), true)),
        Body::DeleteOptions => Some((DELETE_OPTIONS, false)),
        Body::Patch => Some((PATCH, true)),
    };
    if let Some((definition, required)) = body {
        let mut types: Vec<&str> = op.consumes.unwrap_or(CONSUMES_ANY).to_vec();
        types.sort_unstable();
        let mut content = Map::new();
        for t in types {
            content.insert(
                t.into(),
                json!({"schema": Flavor::V3.reference(definition)}),
            );
        }
        let mut rb = Map::new();
        rb.insert("content".into(), Value::Object(content));
        if required {
            rb.insert("required".into(), true.into());
        }
        m.insert("requestBody".into(), Value::Object(rb));
    }
    let mut produces: Vec<&str> = op.produces.to_vec();
    produces.sort_unstable();
    let mut responses = Map::new();
    for code in op.codes {
        let mut content = Map::new();
        for t in &produces {
            content.insert(
                (*t).into(),
                json!({"schema": answer_schema(&op.answer, Flavor::V3)}),
            );
        }
        responses.insert(
            (*code).into(),
            json!({"description": code_description(code), "content": content}),
        );
    }
    responses.insert("401".into(), json!({"description": "Unauthorized"}));
    m.insert("responses".into(), Value::Object(responses));
    if let Some(action) = op.action {
        m.insert("x-kubernetes-action".into(), action.into());
    }
    if let Some(gvk) = &op.gvk {
        m.insert("x-kubernetes-group-version-kind".into(), gvk.v3());
    }
    Value::Object(m)
}

fn strings(list: &[&str]) -> Value {
    Value::Array(
        list.iter()
            .map(|s| Value::String((*s).to_string()))
            .collect(),
    )
}

// ---------------------------------------------------------------------------------------------
// Definitions.

impl Model {
    /// Writes the object of the definitions reachable from `roots`, in `flavor`'s form, sorted
    /// by name. In a v3 group/version document the shared kinds (DeleteOptions, WatchEvent)
    /// list only the core and that group/version, as upstream's do.
    fn write_definitions(
        &self,
        out: &mut JsonWriter,
        roots: &BTreeSet<String>,
        flavor: Flavor,
        group_version: Option<(&str, &str)>,
    ) {
        let mut generator = schemars::generate::SchemaSettings::draft07()
            .with(|s| {
                s.meta_schema = None;
                s.transforms = Vec::new();
            })
            .into_generator();
        // Definitions written here (lists, custom resources), by name.
        let mut written: BTreeMap<String, Value> = BTreeMap::new();
        let mut gvks: BTreeMap<String, Vec<Gvk>> = BTreeMap::new();
        for (group, version, kind, t) in schema_meta::gvks() {
            gvks.entry(t.name().to_string())
                .or_default()
                .push(Gvk::new(group, version, kind));
        }
        let mut add_gvk = |name: &str, gvk: Gvk| {
            let list = gvks.entry(name.to_string()).or_default();
            if !list.contains(&gvk) {
                list.push(gvk);
            }
        };
        for r in &self.resources {
            let item = self.kind_definition(&r.group, &r.version, &r.kind);
            let list = format!("{item}List");
            add_gvk(&item, Gvk::new(&r.group, &r.version, &r.kind));
            add_gvk(&list, Gvk::new(&r.group, &r.version, &r.list_kind));
            for shared in [DELETE_OPTIONS, WATCH_EVENT] {
                let kind = shared.rsplit('.').next().unwrap_or_default();
                add_gvk(shared, Gvk::new(&r.group, &r.version, kind));
            }
            if roots.contains(&list) && !written.contains_key(&list) {
                written.insert(list.clone(), list_definition(r, &item));
                generator.subschema_for::<meta::ListMeta>();
            }
            if roots.contains(&item) || roots.contains(&list) {
                match known_kind(&r.group, &r.version, &r.kind) {
                    Some(known) => {
                        (known.schema)(&mut generator);
                    }
                    None => {
                        let schema = self.custom.iter().find(|c| {
                            c.group == r.group && c.version == r.version && c.kind == r.kind
                        });
                        written.insert(item.clone(), custom_definition(schema.map(|c| &c.schema)));
                        generator.subschema_for::<meta::ObjectMeta>();
                    }
                }
            }
        }
        for root in roots {
            if let Some(known) = KNOWN_KINDS.iter().find(|k| (k.name)() == root.as_str()) {
                (known.schema)(&mut generator);
            } else if let Some((_, schema)) =
                META_TYPES.iter().find(|(name, _)| name() == root.as_str())
            {
                schema(&mut generator);
            }
        }
        let mut all: BTreeMap<String, Value> =
            generator.take_definitions(false).into_iter().collect();
        all.extend(written);

        // Only what the roots reach.
        let mut reached: BTreeSet<String> = BTreeSet::new();
        let mut pending: Vec<String> = roots.iter().cloned().collect();
        while let Some(name) = pending.pop() {
            if !reached.insert(name.clone()) {
                continue;
            }
            if let Some(def) = all.get(&name) {
                collect_refs(def, &mut pending);
            }
        }

        out.raw("{");
        let mut first = true;
        for (name, mut def) in all {
            if !reached.contains(&name) {
                continue;
            }
            if let Value::Object(m) = &mut def {
                finish_definition(&name, m);
                if let Some(list) = gvks.get(&name) {
                    let mut list = list.clone();
                    if let (Some((g, v)), true) =
                        (group_version, name == DELETE_OPTIONS || name == WATCH_EVENT)
                    {
                        list.retain(|x| {
                            (x.group.is_empty() && x.version == "v1")
                                || (x.group == g && x.version == v)
                        });
                    }
                    list.sort_by(|a, b| {
                        (&a.group, &a.version, &a.kind).cmp(&(&b.group, &b.version, &b.kind))
                    });
                    m.insert(
                        "x-kubernetes-group-version-kind".into(),
                        Value::Array(list.iter().map(Gvk::sorted).collect()),
                    );
                }
                order_keys(m, definition_key_rank);
                if flavor == Flavor::V3 {
                    to_v3(&name, m);
                }
            }
            out.entry(&mut first, &name, &def);
        }
        out.raw("}");
    }
}

/// Adds the names of the definitions `value` refers to.
fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(m) => {
            for (k, v) in m {
                if k == "$ref" {
                    if let Some(name) = v.as_str().and_then(|s| s.strip_prefix(V2_REF_PREFIX)) {
                        out.push(name.to_string());
                    }
                } else {
                    collect_refs(v, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// The `{Kind}List` definition of a resource whose items are `item`.
fn list_definition(r: &ResourceInfo, item: &str) -> Value {
    json!({
        "description": format!("{} is a list of {}.", r.list_kind, r.kind),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"description": API_VERSION_DESCRIPTION, "type": "string"},
            "items": {
                "description": format!("List of {}. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md", r.plural),
                "type": "array",
                "items": Flavor::V2.reference(item),
            },
            "kind": {"description": KIND_DESCRIPTION, "type": "string"},
            "metadata": {
                "description": LIST_META_DESCRIPTION,
                "$ref": format!("{V2_REF_PREFIX}{LIST_META}"),
            },
        },
    })
}

/// The definition of a custom resource: its CustomResourceDefinition's schema, or any object,
/// with `apiVersion`, `kind` and `metadata` described as for every kind.
fn custom_definition(schema: Option<&Value>) -> Value {
    let mut def = match schema {
        Some(Value::Object(m)) => m.clone(),
        _ => {
            let mut m = Map::new();
            m.insert("type".into(), "object".into());
            m.insert("x-kubernetes-preserve-unknown-fields".into(), true.into());
            m
        }
    };
    def.entry("type").or_insert_with(|| "object".into());
    let properties = def
        .entry("properties")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(p) = properties {
        p.insert(
            "apiVersion".into(),
            json!({"description": API_VERSION_DESCRIPTION, "type": "string"}),
        );
        p.insert(
            "kind".into(),
            json!({"description": KIND_DESCRIPTION, "type": "string"}),
        );
        p.insert(
            "metadata".into(),
            json!({"description": OBJECT_META_DESCRIPTION, "$ref": format!("{V2_REF_PREFIX}{OBJECT_META}")}),
        );
        p.sort_keys();
    }
    Value::Object(def)
}

/// Completes a definition generated from `k8s-openapi` (in v2 form): upstream's required
/// lists, the extensions of [`schema_meta`], upstream's form of the scalar-like types.
fn finish_definition(name: &str, def: &mut Map<String, Value>) {
    if name == INT_OR_STRING {
        def.remove("x-kubernetes-int-or-string");
        def.insert("type".into(), "string".into());
        def.insert("format".into(), "int-or-string".into());
    } else if name == QUANTITY {
        def.remove("x-kubernetes-int-or-string");
        def.insert("type".into(), "string".into());
    } else if UNTYPED.contains(&name) {
        def.retain(|k, _| k == "description");
    } else if name == WATCH_EVENT {
        // k8s-openapi folds the description of `object` into the type's.
        def.insert(
            "description".into(),
            "Event represents a single event to a watched resource.".into(),
        );
        if let Some(Value::Object(object)) =
            def.get_mut("properties").and_then(|p| p.get_mut("object"))
        {
            object.insert("description".into(), WATCH_EVENT_OBJECT_DESCRIPTION.into());
        }
    }

    let drop_name = NAME_NOT_REQUIRED.contains(&name);
    let keep_metadata = METADATA_REQUIRED.contains(&name);
    if let Some(Value::Array(required)) = def.get_mut("required") {
        required.retain(|f| (keep_metadata || f != "metadata") && !(drop_name && f == "name"));
        for (_, field) in ALSO_REQUIRED.iter().filter(|(d, _)| *d == name) {
            if !required.iter().any(|f| f == field) {
                required.push((*field).into());
            }
        }
    }
    if matches!(def.get("required"), Some(Value::Array(r)) if r.is_empty()) {
        def.remove("required");
    }

    let meta = schema_meta::definition(name);
    if let Some(Value::Object(properties)) = def.get_mut("properties") {
        for (field, schema) in properties.iter_mut() {
            let Value::Object(schema) = schema else {
                continue;
            };
            if let Some(f) = meta.and_then(|t| t.field(field)) {
                add_field_extensions(schema, &f);
            }
            add_enum(name, field, schema);
            order_keys(schema, property_key_rank);
        }
    }
    if meta.is_some_and(|t| t.is_atomic()) {
        def.insert("x-kubernetes-map-type".into(), "atomic".into());
    }
    if let Some((_, discriminator, members)) = UNIONS.iter().find(|(d, _, _)| *d == name) {
        let mut union = Map::new();
        if !discriminator.is_empty() {
            union.insert("discriminator".into(), (*discriminator).into());
        }
        let by: Map<String, Value> = members
            .iter()
            .map(|(field, value)| ((*field).to_string(), Value::from(*value)))
            .collect();
        union.insert("fields-to-discriminateBy".into(), Value::Object(by));
        def.insert(
            "x-kubernetes-unions".into(),
            Value::Array(vec![Value::Object(union)]),
        );
    }
}

/// The `x-kubernetes-unions` hints upstream publishes (from the `+union` markers of the
/// built-in types): definition, discriminator field (empty: none), member field → the
/// discriminator value that selects it.
type UnionHint = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);
const UNIONS: &[UnionHint] = &[
    (
        "io.k8s.api.core.v1.AppArmorProfile",
        "type",
        &[("localhostProfile", "LocalhostProfile")],
    ),
    (
        "io.k8s.api.core.v1.PodSchedulingGroup",
        "",
        &[("podGroupName", "PodGroupName")],
    ),
    (
        "io.k8s.api.core.v1.SeccompProfile",
        "type",
        &[("localhostProfile", "LocalhostProfile")],
    ),
    (
        "io.k8s.api.flowcontrol.v1.LimitResponse",
        "type",
        &[("queuing", "Queuing")],
    ),
    (
        "io.k8s.api.flowcontrol.v1.PriorityLevelConfigurationSpec",
        "type",
        &[("exempt", "Exempt"), ("limited", "Limited")],
    ),
    (
        "io.k8s.api.flowcontrol.v1.Subject",
        "kind",
        &[
            ("group", "Group"),
            ("serviceAccount", "ServiceAccount"),
            ("user", "User"),
        ],
    ),
];

/// Adds upstream's `enum` of a property (see [`ENUMS`]).
fn add_enum(definition: &str, field: &str, schema: &mut Map<String, Value>) {
    let start = ENUMS.partition_point(|e| (e.0, e.1) < (definition, field));
    for (_, _, place, values) in ENUMS
        .get(start..)
        .unwrap_or_default()
        .iter()
        .take_while(|e| e.0 == definition && e.1 == field)
    {
        let target = if place.is_empty() {
            Some(&mut *schema)
        } else {
            schema.get_mut(*place).and_then(Value::as_object_mut)
        };
        if let Some(target) = target {
            target.insert("enum".into(), strings(values));
        }
    }
}

fn add_field_extensions(schema: &mut Map<String, Value>, f: &schema_meta::FieldMeta) {
    if !f.list_map_keys.is_empty() {
        schema.insert(
            "x-kubernetes-list-map-keys".into(),
            strings(f.list_map_keys),
        );
    }
    if let Some(t) = f.list_type {
        schema.insert("x-kubernetes-list-type".into(), t.into());
    }
    if let Some(t) = f.map_type {
        schema.insert("x-kubernetes-map-type".into(), t.into());
    }
    if let Some(k) = f.patch_merge_key {
        schema.insert("x-kubernetes-patch-merge-key".into(), k.into());
    }
    if let Some(s) = f.patch_strategy {
        schema.insert("x-kubernetes-patch-strategy".into(), s.into());
    }
}

/// Rewrites a finished (v2-form) definition into OpenAPI 3 form: references under
/// `#/components/schemas/`, a property's reference wrapped in `allOf`, the int-or-string
/// and quantity types as `oneOf`.
fn to_v3(name: &str, def: &mut Map<String, Value>) {
    if name == INT_OR_STRING {
        def.remove("type");
        def.insert(
            "oneOf".into(),
            json!([{"type": "integer"}, {"type": "string"}]),
        );
    } else if name == QUANTITY {
        def.remove("type");
        def.insert(
            "oneOf".into(),
            json!([{"type": "string"}, {"type": "number"}]),
        );
    }
    if let Some(Value::Object(properties)) = def.get_mut("properties") {
        for schema in properties.values_mut() {
            if let Value::Object(schema) = schema {
                if let Some(reference) = schema.remove("$ref") {
                    schema.insert("allOf".into(), json!([{ "$ref": reference }]));
                    order_keys(schema, property_key_rank);
                }
            }
        }
    }
    order_keys(def, definition_key_rank);
    for v in def.values_mut() {
        rewrite_refs(v);
    }
}

fn rewrite_refs(value: &mut Value) {
    match value {
        Value::Object(m) => {
            for (k, v) in m.iter_mut() {
                if k == "$ref" {
                    if let Some(name) = v.as_str().and_then(|s| s.strip_prefix(V2_REF_PREFIX)) {
                        *v = Value::String(format!("{V3_REF_PREFIX}{name}"));
                    }
                } else {
                    rewrite_refs(v);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(rewrite_refs),
        _ => {}
    }
}

/// Upstream's key order in a definition; extensions last, alphabetically.
fn definition_key_rank(key: &str) -> u8 {
    match key {
        "description" => 0,
        "type" => 1,
        "format" => 2,
        "required" => 3,
        "properties" => 4,
        "oneOf" => 5,
        k if k.starts_with("x-") => 7,
        _ => 6,
    }
}

/// Upstream's key order in a property; extensions last, alphabetically.
fn property_key_rank(key: &str) -> u8 {
    match key {
        "description" => 0,
        "type" => 1,
        "format" => 2,
        "default" => 3,
        "items" => 4,
        "additionalProperties" => 5,
        "$ref" => 6,
        "allOf" => 7,
        "enum" => 8,
        k if k.starts_with("x-") => 10,
        _ => 9,
    }
}

fn order_keys(m: &mut Map<String, Value>, rank: fn(&str) -> u8) {
    let mut entries: Vec<(String, Value)> = std::mem::take(m).into_iter().collect();
    entries.sort_by(|(a, _), (b, _)| {
        let (ra, rb) = (rank(a), rank(b));
        ra.cmp(&rb).then_with(|| {
            if a.starts_with("x-") && b.starts_with("x-") {
                a.cmp(b)
            } else {
                std::cmp::Ordering::Equal
            }
        })
    });
    m.extend(entries);
}

// ---------------------------------------------------------------------------------------------
// SHA-512 (FIPS 180-4), for the documents' hashes.

fn hex_upper(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// SHA-512 of `data` (upstream hashes OpenAPI documents with it).
fn sha512(data: &[u8]) -> [u8; 64] {
    use sha2::Digest;
    sha2::Sha512::digest(data).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Scope;
    use std::time::Instant;

    const UPSTREAM: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/upstream/openapi/"
    );

    /// The body of a captured upstream answer.
    fn upstream(file: &str) -> Value {
        let path = format!("{UPSTREAM}{file}");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let capture: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(capture["response"]["status"], 200, "{file}");
        capture["response"]["body"].clone()
    }

    fn upstream_v2() -> Value {
        let out = std::process::Command::new("gzip")
            .arg("-dc")
            .arg(format!("{UPSTREAM}v2.json.gz"))
            .output()
            .unwrap();
        assert!(out.status.success());
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn builtin() -> OpenApi {
        OpenApi::build(&ResourceTable::builtin())
    }

    fn parse(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).unwrap()
    }

    /// The first difference between two values (key order included), or None.
    fn first_diff(a: &Value, b: &Value, path: &str) -> Option<String> {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let kx: Vec<_> = x.keys().collect();
                let ky: Vec<_> = y.keys().collect();
                if kx != ky {
                    return Some(format!("{path}: keys {kx:?} != upstream {ky:?}"));
                }
                x.keys()
                    .find_map(|k| first_diff(&x[k], &y[k], &format!("{path}.{k}")))
            }
            (Value::Array(x), Value::Array(y)) => {
                if x.len() != y.len() {
                    return Some(format!("{path}: {a} != upstream {b}"));
                }
                x.iter()
                    .zip(y)
                    .enumerate()
                    .find_map(|(i, (p, q))| first_diff(p, q, &format!("{path}[{i}]")))
            }
            _ if a != b => Some(format!("{path}: {a} != upstream {b}")),
            _ => None,
        }
    }

    fn assert_same(ours: &Value, theirs: &Value, what: &str) {
        if let Some(d) = first_diff(ours, theirs, "$") {
            panic!("{what} differs from upstream: {d}");
        }
    }

    /// A definition without what `k8s-openapi` does not carry (descriptions, v3 defaults),
    /// `required` as a set.
    fn structure(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut out = Map::new();
                for (k, x) in m {
                    match k.as_str() {
                        "description" | "default" => {}
                        "required" if x.is_array() => {
                            let mut r: Vec<String> = x
                                .as_array()
                                .unwrap()
                                .iter()
                                .map(|s| s.as_str().unwrap().to_string())
                                .collect();
                            r.sort();
                            out.insert(k.clone(), json!(r));
                        }
                        _ => {
                            out.insert(k.clone(), structure(x));
                        }
                    }
                }
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(a.iter().map(structure).collect()),
            _ => v.clone(),
        }
    }

    /// Compares definitions by name and structure; returns the differences.
    fn definition_diffs(ours: &Map<String, Value>, theirs: &Map<String, Value>) -> Vec<String> {
        let mut diffs = Vec::new();
        let a: BTreeSet<&String> = ours.keys().collect();
        let b: BTreeSet<&String> = theirs.keys().collect();
        for n in a.difference(&b) {
            diffs.push(format!("extra definition {n}"));
        }
        for n in b.difference(&a) {
            diffs.push(format!("missing definition {n}"));
        }
        for n in a.intersection(&b) {
            let mine = structure(&ours[*n]);
            let up = structure(&theirs[*n]);
            if mine != up {
                let d = first_diff(&mine, &up, n).unwrap_or_else(|| format!("{n}: key order"));
                diffs.push(d);
            }
        }
        diffs
    }

    #[test]
    fn v3_paths_match_upstream() {
        let api = builtin();
        for (file, path) in [
            ("v3-api-v1.json", "api/v1"),
            ("v3-apis-apps-v1.json", "apis/apps/v1"),
            ("v3-apis-batch-v1.json", "apis/batch/v1"),
        ] {
            let theirs = upstream(file);
            let (bytes, _) = api.v3_doc(path).unwrap();
            let ours = parse(bytes);
            assert_same(&ours["paths"], &theirs["paths"], &format!("{path} paths"));
            for key in ["openapi", "info"] {
                assert_same(&ours[key], &theirs[key], &format!("{path} {key}"));
            }
            assert_same(
                &ours["components"]["securitySchemes"],
                &theirs["components"]["securitySchemes"],
                &format!("{path} securitySchemes"),
            );
        }
    }

    #[test]
    fn v3_definitions_match_upstream() {
        let api = builtin();
        for (file, path) in [
            ("v3-api-v1.json", "api/v1"),
            ("v3-apis-apps-v1.json", "apis/apps/v1"),
            ("v3-apis-batch-v1.json", "apis/batch/v1"),
        ] {
            let theirs = upstream(file);
            let ours = parse(api.v3_doc(path).unwrap().0);
            let diffs = definition_diffs(
                ours["components"]["schemas"].as_object().unwrap(),
                theirs["components"]["schemas"].as_object().unwrap(),
            );
            assert!(diffs.is_empty(), "{path}:\n{}", diffs.join("\n"));
        }
    }

    #[test]
    fn v2_paths_and_parameters_match_upstream() {
        let theirs = upstream_v2();
        let ours = parse(builtin().v2().0);
        for key in [
            "swagger",
            "info",
            "paths",
            "parameters",
            "securityDefinitions",
            "security",
        ] {
            assert_same(&ours[key], &theirs[key], &format!("v2 {key}"));
        }
        let keys: Vec<&String> = ours.as_object().unwrap().keys().collect();
        let upstream_keys: Vec<&String> = theirs.as_object().unwrap().keys().collect();
        assert_eq!(keys, upstream_keys);
    }

    #[test]
    fn v2_definitions_match_upstream() {
        let theirs = upstream_v2();
        let ours = parse(builtin().v2().0);
        let diffs = definition_diffs(
            ours["definitions"].as_object().unwrap(),
            theirs["definitions"].as_object().unwrap(),
        );
        assert!(diffs.is_empty(), "v2:\n{}", diffs.join("\n"));
    }

    #[test]
    fn v3_index_lists_upstreams_documents() {
        let api = builtin();
        let index = api.v3_index();
        let theirs = upstream("v3-index.json");
        let ours: Vec<&String> = index["paths"].as_object().unwrap().keys().collect();
        let upstream_keys: Vec<&String> = theirs["paths"].as_object().unwrap().keys().collect();
        assert_eq!(ours, upstream_keys);
        assert_eq!(api.v3_paths().collect::<Vec<_>>(), upstream_keys);
        for (key, entry) in index["paths"].as_object().unwrap() {
            let url = entry["serverRelativeURL"].as_str().unwrap();
            let (bytes, hash) = api.v3_doc(key).unwrap();
            assert_eq!(url, format!("/openapi/v3/{key}?hash={hash}"));
            assert_eq!(hash.len(), 128);
            assert!(hash
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_lowercase()));
            assert_eq!(hash, hex_upper(&sha512(bytes)));
            let doc = parse(bytes);
            assert_eq!(doc["openapi"], "3.0.0");
            assert!(!doc["paths"].as_object().unwrap().is_empty(), "{key}");
        }
        assert!(api.v3_doc("apis/apps/v2").is_none());
        assert!(api.v3_doc("apis/nosuch.example.com/v1").is_none());
        assert_eq!(
            api.v3_doc("/apis/apps/v1/").unwrap().1,
            api.v3_doc("apis/apps/v1").unwrap().1
        );
    }

    #[test]
    fn documents_are_deterministic() {
        let a = builtin();
        let b = builtin();
        // b hashes everything first (rendering and dropping), then renders on demand.
        let index = b.v3_index();
        for key in ["api/v1", "apis/apps/v1", "apis", "version"] {
            let (bytes_a, hash_a) = a.v3_doc(key).unwrap();
            let (bytes_b, hash_b) = b.v3_doc(key).unwrap();
            assert_eq!(hash_a, hash_b);
            assert!(bytes_a == bytes_b);
            assert!(index["paths"][key]["serverRelativeURL"]
                .as_str()
                .unwrap()
                .ends_with(hash_a));
        }
        let (v2a, etag_a) = a.v2();
        let (v2b, etag_b) = b.v2();
        assert!(v2a == v2b);
        assert_eq!(etag_a, etag_b);
        assert_eq!(etag_a, format!("\"{}\"", hex_upper(&sha512(v2a))));
    }

    #[test]
    fn group_and_discovery_documents() {
        let api = builtin();
        let doc = parse(api.v3_doc("apis/apps").unwrap().0);
        assert_eq!(
            doc["paths"]["/apis/apps/"]["get"]["operationId"],
            "getAppsAPIGroup"
        );
        assert_eq!(doc["paths"]["/apis/apps/"]["get"]["tags"], json!(["apps"]));
        assert!(doc["components"]["schemas"][API_GROUP].is_object());
        let doc = parse(api.v3_doc("api").unwrap().0);
        assert_eq!(
            doc["paths"]["/api/"]["get"]["operationId"],
            "getCoreAPIVersions"
        );
        assert!(doc["components"]["schemas"][API_VERSIONS].is_object());
        let doc = parse(api.v3_doc("apis").unwrap().0);
        assert_eq!(
            doc["paths"]["/apis/"]["get"]["operationId"],
            "getAPIVersions"
        );
        let doc = parse(api.v3_doc("version").unwrap().0);
        assert_eq!(
            doc["paths"]["/version/"]["get"]["operationId"],
            "getCodeVersion"
        );
        assert!(doc["components"]["schemas"][VERSION_INFO].is_object());
        let doc = parse(api.v3_doc("apis/rbac.authorization.k8s.io/v1").unwrap().0);
        let op = &doc["paths"]
            ["/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles/{name}"]["patch"];
        assert_eq!(op["operationId"], "patchRbacAuthorizationV1NamespacedRole");
        assert_eq!(op["tags"], json!(["rbacAuthorization_v1"]));
    }

    /// What kubectl's query-parameter verifier and strategic-merge-patch lookup need: the
    /// PATCH operation of the kind, with `fieldValidation` and the strategic merge patch type.
    #[test]
    fn kubectl_finds_patch_operations() {
        let api = builtin();
        for (path, kind) in [
            (
                "api/v1",
                json!({"group": "", "version": "v1", "kind": "ConfigMap"}),
            ),
            (
                "apis/apps/v1",
                json!({"group": "apps", "version": "v1", "kind": "Deployment"}),
            ),
        ] {
            let doc = parse(api.v3_doc(path).unwrap().0);
            let found = doc["paths"].as_object().unwrap().values().any(|item| {
                let op = &item["patch"];
                op["x-kubernetes-group-version-kind"] == kind
                    && op["parameters"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|p| p["name"] == "fieldValidation" && p["in"] == "query")
                    && op["requestBody"]["content"]["application/strategic-merge-patch+json"]
                        .is_object()
            });
            assert!(found, "{path} {kind}");
            // kubectl explain finds the schema by its GVK.
            let schemas = doc["components"]["schemas"].as_object().unwrap();
            assert!(schemas
                .values()
                .any(|s| s["x-kubernetes-group-version-kind"]
                    .as_array()
                    .is_some_and(|l| l.iter().any(|g| g["kind"] == kind["kind"]
                        && g["group"] == kind["group"]
                        && g["version"] == kind["version"]))));
        }
    }

    #[test]
    fn extensions_on_sample_fields() {
        let api = builtin();
        let doc = parse(api.v3_doc("api/v1").unwrap().0);
        let schemas = &doc["components"]["schemas"];
        let containers = &schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
        assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
        assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
        assert_eq!(containers["x-kubernetes-list-type"], "map");
        assert_eq!(containers["x-kubernetes-list-map-keys"], json!(["name"]));
        let ports = &schemas["io.k8s.api.core.v1.Container"]["properties"]["ports"];
        assert_eq!(
            ports["x-kubernetes-list-map-keys"],
            json!(["containerPort", "protocol"])
        );
        assert_eq!(ports["x-kubernetes-patch-merge-key"], "containerPort");
        assert_eq!(
            schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["nodeSelector"]
                ["x-kubernetes-map-type"],
            "atomic"
        );
        assert_eq!(
            schemas["io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"]["x-kubernetes-map-type"],
            "atomic"
        );
        assert_eq!(
            schemas[INT_OR_STRING],
            json!({
                "description": schemas[INT_OR_STRING]["description"],
                "format": "int-or-string",
                "oneOf": [{"type": "integer"}, {"type": "string"}],
            })
        );
        assert_eq!(
            schemas["io.k8s.api.core.v1.Pod"]["x-kubernetes-group-version-kind"],
            json!([{"group": "", "kind": "Pod", "version": "v1"}])
        );
        let apps = parse(api.v3_doc("apis/apps/v1").unwrap().0);
        let strategy = &apps["components"]["schemas"]["io.k8s.api.apps.v1.DeploymentSpec"]
            ["properties"]["strategy"];
        assert_eq!(strategy["x-kubernetes-patch-strategy"], "retainKeys");
        assert_eq!(
            strategy["allOf"],
            json!([{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentStrategy"}])
        );
        assert!(
            apps["components"]["schemas"]["io.k8s.api.apps.v1.RollingUpdateDeployment"]
                ["properties"]["maxSurge"]
                .is_object()
        );

        let v2 = parse(api.v2().0);
        let spec =
            &v2["definitions"]["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["strategy"];
        assert_eq!(
            spec["$ref"],
            "#/definitions/io.k8s.api.apps.v1.DeploymentStrategy"
        );
        assert_eq!(spec["x-kubernetes-patch-strategy"], "retainKeys");
    }

    /// Every extension schema_meta knows appears on the property it belongs to.
    #[test]
    fn every_schema_meta_extension_is_carried() {
        let v2 = parse(builtin().v2().0);
        let definitions = v2["definitions"].as_object().unwrap();
        let mut checked = 0;
        for t in schema_meta::definitions() {
            let Some(def) = definitions.get(t.name()) else {
                continue;
            };
            assert_eq!(
                t.is_atomic(),
                def["x-kubernetes-map-type"] == "atomic",
                "{}",
                t.name()
            );
            for f in t.fields() {
                let p = &def["properties"][f.name];
                assert!(p.is_object(), "{}.{}", t.name(), f.name);
                assert_eq!(p["x-kubernetes-patch-strategy"].as_str(), f.patch_strategy);
                assert_eq!(
                    p["x-kubernetes-patch-merge-key"].as_str(),
                    f.patch_merge_key
                );
                assert_eq!(p["x-kubernetes-list-type"].as_str(), f.list_type);
                assert_eq!(p["x-kubernetes-map-type"].as_str(), f.map_type);
                if !f.list_map_keys.is_empty() {
                    assert_eq!(p["x-kubernetes-list-map-keys"], json!(f.list_map_keys));
                }
                checked += 1;
            }
        }
        assert!(checked > 2000, "{checked}");
    }

    #[test]
    fn every_builtin_kind_has_a_schema() {
        let table = ResourceTable::builtin();
        for r in table.iter() {
            assert!(
                known_kind(&r.group, &r.version, &r.kind).is_some(),
                "{}/{}",
                r.api_version(),
                r.kind
            );
            for s in &r.subresources {
                if !s.kind.ends_with("Options") {
                    assert!(
                        known_kind(&s.group, &s.version, &s.kind).is_some(),
                        "{}",
                        s.kind
                    );
                }
            }
        }
    }

    fn widget() -> ResourceInfo {
        ResourceInfo {
            group: "golden.example.com".into(),
            version: "v1".into(),
            kind: "Widget".into(),
            list_kind: "WidgetList".into(),
            plural: "widgets".into(),
            singular: "widget".into(),
            short_names: vec![],
            categories: vec![],
            scope: Scope::Namespaced,
            verbs: [
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "create",
                "update",
                "watch",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            subresources: vec![
                SubresourceInfo {
                    name: "scale".into(),
                    group: "autoscaling".into(),
                    version: "v1".into(),
                    kind: "Scale".into(),
                    verbs: vec!["get".into(), "patch".into(), "update".into()],
                },
                SubresourceInfo {
                    name: "status".into(),
                    group: "golden.example.com".into(),
                    version: "v1".into(),
                    kind: "Widget".into(),
                    verbs: vec!["get".into(), "patch".into(), "update".into()],
                },
            ],
            custom: None,
        }
    }

    #[test]
    fn custom_resources() {
        let mut table = ResourceTable::builtin();
        table.add(widget());
        let schema = json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {"size": {"type": "integer"}, "color": {"type": "string"}},
                    "x-kubernetes-preserve-unknown-fields": true,
                },
            },
        });
        let api = OpenApi::build_with_custom(
            &table,
            &[CustomSchema {
                group: "golden.example.com".into(),
                version: "v1".into(),
                kind: "Widget".into(),
                schema: schema.clone(),
            }],
        );
        let index = api.v3_index();
        assert!(index["paths"]["apis/golden.example.com/v1"].is_object());
        assert!(index["paths"]["apis/golden.example.com"].is_object());
        let doc = parse(api.v3_doc("apis/golden.example.com/v1").unwrap().0);
        let item =
            &doc["paths"]["/apis/golden.example.com/v1/namespaces/{namespace}/widgets/{name}"];
        assert_eq!(
            item["patch"]["operationId"],
            "patchGoldenExampleComV1NamespacedWidget"
        );
        assert_eq!(item["patch"]["tags"], json!(["goldenExampleCom_v1"]));
        let types: Vec<&String> = item["patch"]["requestBody"]["content"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert_eq!(
            types,
            [
                "application/apply-patch+yaml",
                "application/json-patch+json",
                "application/merge-patch+json"
            ]
        );
        assert_eq!(
            item["delete"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
            format!("{V3_REF_PREFIX}{STATUS}")
        );
        let scale = &doc["paths"]
            ["/apis/golden.example.com/v1/namespaces/{namespace}/widgets/{name}/scale"]["get"];
        assert_eq!(
            scale["operationId"],
            "readGoldenExampleComV1NamespacedWidgetScale"
        );
        let schemas = &doc["components"]["schemas"];
        let w = &schemas["com.example.golden.v1.Widget"];
        assert_eq!(w["properties"]["spec"], schema["properties"]["spec"]);
        assert_eq!(
            w["properties"]["metadata"]["allOf"],
            json!([{"$ref": format!("{V3_REF_PREFIX}{OBJECT_META}")}])
        );
        assert_eq!(
            w["x-kubernetes-group-version-kind"],
            json!([{"group": "golden.example.com", "kind": "Widget", "version": "v1"}])
        );
        assert_eq!(
            schemas["com.example.golden.v1.WidgetList"]["properties"]["items"]["items"]["$ref"],
            format!("{V3_REF_PREFIX}com.example.golden.v1.Widget")
        );
        assert!(schemas[OBJECT_META].is_object());
        assert!(schemas["io.k8s.api.autoscaling.v1.Scale"].is_object());
        assert_eq!(
            schemas[DELETE_OPTIONS]["x-kubernetes-group-version-kind"],
            json!([
                {"group": "", "kind": "DeleteOptions", "version": "v1"},
                {"group": "golden.example.com", "kind": "DeleteOptions", "version": "v1"},
            ])
        );

        // Without a schema: any object.
        let api = OpenApi::build(&table);
        let doc = parse(api.v3_doc("apis/golden.example.com/v1").unwrap().0);
        let w = &doc["components"]["schemas"]["com.example.golden.v1.Widget"];
        assert_eq!(w["x-kubernetes-preserve-unknown-fields"], true);
        assert_eq!(w["type"], "object");
        let v2 = parse(api.v2().0);
        assert!(v2["paths"]["/apis/golden.example.com/v1/widgets"]["get"].is_object());
        assert!(v2["definitions"]["com.example.golden.v1.WidgetList"].is_object());
        assert!(
            v2["definitions"][DELETE_OPTIONS]["x-kubernetes-group-version-kind"]
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g["group"] == "golden.example.com")
        );
    }

    #[test]
    fn empty_table() {
        let api = OpenApi::build(&ResourceTable::empty());
        let keys: Vec<&str> = api.v3_paths().collect();
        assert_eq!(
            keys,
            [
                ".well-known/openid-configuration",
                "api",
                "apis",
                "openid/v1/jwks",
                "version"
            ]
        );
        let v2 = parse(api.v2().0);
        assert!(v2["paths"]["/version/"].is_object());
    }

    #[test]
    fn shared_across_threads() {
        fn check<T: Send + Sync>() {}
        check::<OpenApi>();
    }

    /// `add_enum` looks entries up by binary search.
    #[test]
    fn enum_table_is_sorted() {
        assert!(ENUMS
            .windows(2)
            .all(|w| (w[0].0, w[0].1) <= (w[1].0, w[1].1)));
        let v2 = parse(builtin().v2().0);
        let protocol =
            &v2["definitions"]["io.k8s.api.core.v1.ContainerPort"]["properties"]["protocol"];
        assert_eq!(protocol["enum"], json!(["SCTP", "TCP", "UDP"]));
    }

    #[test]
    fn operation_id_parts() {
        assert_eq!(group_id(""), "Core");
        assert_eq!(group_id("rbac.authorization.k8s.io"), "RbacAuthorization");
        assert_eq!(
            group_id("flowcontrol.apiserver.k8s.io"),
            "FlowcontrolApiserver"
        );
        assert_eq!(
            group_tag("flowcontrol.apiserver.k8s.io"),
            "flowcontrolApiserver"
        );
        assert_eq!(group_id("golden.example.com"), "GoldenExampleCom");
        assert_eq!(operation_id_part("v1beta1", true), "V1beta1");
        assert_eq!(operation_id_part("2fast", false), "Fast");
        assert_eq!(with_article("Pod"), "a Pod");
        assert_eq!(with_article("Ingress"), "an Ingress");
        assert_eq!(with_article("Endpoints"), "Endpoints");
        assert_eq!(title("ephemeralcontainers"), "Ephemeralcontainers");
    }

    /// A measurement, not a check: how long rendering takes, how big the documents are and
    /// the process's memory. `cargo test --release -- --ignored --nocapture render_costs`.
    #[test]
    #[ignore]
    fn render_costs() {
        fn rss() -> String {
            let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
            status
                .lines()
                .filter(|l| l.starts_with("VmRSS") || l.starts_with("VmHWM"))
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
                .collect::<Vec<_>>()
                .join(", ")
        }
        eprintln!("before: {}", rss());
        let t = Instant::now();
        let api = builtin();
        let built = t.elapsed();
        let t = Instant::now();
        let index = api.v3_index();
        let indexed = t.elapsed();
        eprintln!("after the index: {}", rss());
        let t = Instant::now();
        let v2 = api.v2().0.len();
        let v2_time = t.elapsed();
        eprintln!("after v2: {}", rss());
        let mut total = 0;
        let mut sizes = Vec::new();
        for key in index["paths"].as_object().unwrap().keys() {
            let n = api.v3_doc(key).unwrap().0.len();
            total += n;
            sizes.push(format!("{key}={n}"));
        }
        eprintln!("with every document cached: {}", rss());
        let t = Instant::now();
        let _ = builtin().v3_doc("apis/apps/v1").map(|d| d.0.len());
        let one = t.elapsed();
        let t = Instant::now();
        let _ = sha512(&vec![0u8; total]);
        eprintln!("sha512 of {total} bytes: {:?}", t.elapsed());
        eprintln!(
            "build {built:?}; v3 index (renders all) {indexed:?}; v2 {v2} bytes in {v2_time:?}; apps/v1 alone {one:?}; v3 total {total} bytes: {}",
            sizes.join(" ")
        );
    }
}
