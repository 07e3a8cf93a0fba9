//! The resource table: every resource the API server serves, and the discovery documents built
//! from it.
//!
//! Built-in resources come from `k8s-openapi`'s [`k8s_openapi::Resource`] constants (group,
//! version, kind, plural, scope) plus a compact hand-written supplement ([`BUILTIN`]) for what
//! `k8s-openapi` does not know: short names, categories, verbs and subresources. The list matches
//! what a Kubernetes v1.36 apiserver serves by default. CustomResourceDefinitions add and remove
//! entries at run time through [`ResourceTable::add`] and [`ResourceTable::remove`].
//!
//! Discovery, OpenAPI, routing and RBAC all read this one table; the discovery documents
//! (`/api`, `/apis`, `/apis/{group}`, `/api/v1`, `/apis/{group}/{version}` and the aggregated
//! `apidiscovery.k8s.io/v2` lists) have the same shape, key order and element order as upstream's.

use std::cmp::Ordering;

use base64::Engine as _;
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
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1 as apiregistration;
use k8s_openapi::{ClusterResourceScope, NamespaceResourceScope, Resource};
use serde_json::{json, Map, Value};
use sha2::Digest;

/// Whether objects of a resource live in a namespace or at cluster level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Scope {
    #[default]
    Namespaced,
    Cluster,
}

impl Scope {
    /// The name aggregated discovery uses: `"Namespaced"` or `"Cluster"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Namespaced => "Namespaced",
            Scope::Cluster => "Cluster",
        }
    }
}

/// A subresource (`pods/status`, `deployments/scale`, …) and the kind its requests and answers
/// carry. `group`/`version` are always filled in (for `pods/status` they are `""`/`"v1"`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubresourceInfo {
    pub name: String,
    pub group: String,
    pub version: String,
    pub kind: String,
    pub verbs: Vec<String>,
}

/// One served resource of one group/version.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResourceInfo {
    /// `""` for the legacy core group.
    pub group: String,
    pub version: String,
    pub kind: String,
    pub list_kind: String,
    /// The resource name in URLs (`deployments`).
    pub plural: String,
    pub singular: String,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub scope: Scope,
    /// In the order discovery lists them (built-ins: sorted).
    pub verbs: Vec<String>,
    /// In the order discovery lists them (built-ins: sorted by name).
    pub subresources: Vec<SubresourceInfo>,
    /// For custom resources: what their CustomResourceDefinition says about this version.
    pub custom: Option<std::sync::Arc<crate::crd::CustomVersion>>,
}

impl ResourceInfo {
    /// `"v1"` for the core group, `"apps/v1"` otherwise: the objects' `apiVersion`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn namespaced(&self) -> bool {
        self.scope == Scope::Namespaced
    }

    /// Whether the resource has a `status` subresource (so the main resource ignores status
    /// changes and `/status` ignores everything else).
    pub fn has_status(&self) -> bool {
        self.subresource("status").is_some()
    }

    pub fn has_verb(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }

    /// Whether objects of this resource are kept in the store. Virtual resources are not: the
    /// create-only reviews (`tokenreviews`, `subjectaccessreviews`, `selfsubjectreviews`, …), core
    /// `bindings` (a create that sets a pod's node) and `componentstatuses` (computed on read).
    /// Exactly the stored resources can be watched, so that is the test.
    pub fn is_stored(&self) -> bool {
        self.has_verb("watch")
    }

    pub fn subresource(&self, name: &str) -> Option<&SubresourceInfo> {
        self.subresources.iter().find(|s| s.name == name)
    }

    /// Whether this resource belongs to a group the server itself serves (as opposed to one
    /// added by a CustomResourceDefinition).
    pub fn is_builtin_group(&self) -> bool {
        is_builtin_group(&self.group)
    }

    /// The `storageVersionHash` discovery shows for stored resources: base64 of the first 8
    /// bytes of the SHA-256 of `group/version/kind` of the version objects are stored in,
    /// computed as upstream does.
    pub fn storage_version_hash(&self) -> String {
        let version = match &self.custom {
            Some(c) if !c.storage_version.is_empty() => c.storage_version.as_str(),
            _ => STORAGE_VERSION_OVERRIDES
                .iter()
                .find(|(g, p, _)| *g == self.group && *p == self.plural)
                .map_or(self.version.as_str(), |(_, _, v)| v),
        };
        let gvk = format!("{}/{}/{}", self.group, version, self.kind);
        let digest: [u8; 32] = sha2::Sha256::digest(gvk.as_bytes()).into();
        base64::engine::general_purpose::STANDARD.encode(&digest[..8])
    }
}

/// A named API group as `/apis` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    pub name: String,
    /// Most preferred first.
    pub versions: Vec<String>,
    pub preferred_version: String,
}

/// Every resource the server serves. Lookups are linear: the table holds about seventy
/// entries plus the custom resources.
#[derive(Debug, Clone, Default)]
pub struct ResourceTable {
    resources: Vec<ResourceInfo>,
}

impl ResourceTable {
    /// A table with no resources at all.
    pub fn empty() -> ResourceTable {
        ResourceTable::default()
    }

    /// The resources of a Kubernetes v1.36 apiserver with its default settings.
    pub fn builtin() -> ResourceTable {
        ResourceTable {
            resources: BUILTIN.iter().map(Row::to_info).collect(),
        }
    }

    /// Adds a resource, replacing any entry with the same group, version and plural.
    pub fn add(&mut self, r: ResourceInfo) {
        match self
            .resources
            .iter_mut()
            .find(|e| e.group == r.group && e.version == r.version && e.plural == r.plural)
        {
            Some(existing) => *existing = r,
            None => self.resources.push(r),
        }
    }

    pub fn remove(&mut self, group: &str, version: &str, plural: &str) {
        self.resources
            .retain(|e| !(e.group == group && e.version == version && e.plural == plural));
    }

    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceInfo> {
        self.resources
            .iter()
            .find(|e| e.group == group && e.version == version && e.plural == plural)
    }

    pub fn by_kind(&self, group: &str, version: &str, kind: &str) -> Option<&ResourceInfo> {
        self.resources
            .iter()
            .find(|e| e.group == group && e.version == version && e.kind == kind)
    }

    pub fn iter(&self) -> impl Iterator<Item = &ResourceInfo> {
        self.resources.iter()
    }

    /// The versions served for a group (`""` is the core group), most preferred first.
    pub fn versions(&self, group: &str) -> Vec<String> {
        let mut versions: Vec<String> = Vec::new();
        for r in self.resources.iter().filter(|r| r.group == group) {
            if !versions.contains(&r.version) {
                versions.push(r.version.clone());
            }
        }
        versions.sort_by(|a, b| compare_versions(a, b));
        versions
    }

    /// The named groups in the order `/apis` lists them: the built-in groups in upstream's
    /// order, then the others (custom resources) by name.
    pub fn groups(&self) -> Vec<GroupInfo> {
        let mut names: Vec<&str> = Vec::new();
        for r in &self.resources {
            if !r.group.is_empty() && !names.contains(&r.group.as_str()) {
                names.push(&r.group);
            }
        }
        names.sort_by(|a, b| match (group_rank(a), group_rank(b)) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => a.cmp(b),
        });
        names
            .into_iter()
            .map(|name| {
                let versions = self.versions(name);
                GroupInfo {
                    name: name.to_string(),
                    preferred_version: versions.first().cloned().unwrap_or_default(),
                    versions,
                }
            })
            .collect()
    }

    /// `GET /api`: the `APIVersions` document.
    pub fn api_versions(&self, server_address: &str) -> Value {
        json!({
            "kind": "APIVersions",
            "versions": self.versions(""),
            "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
            ],
        })
    }

    /// `GET /apis`: the `APIGroupList` document.
    pub fn api_group_list(&self) -> Value {
        let groups: Vec<Value> = self.groups().iter().map(group_json).collect();
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
    }

    /// `GET /apis/{group}`: the `APIGroup` document, `None` for a group that is not served.
    pub fn api_group(&self, group: &str) -> Option<Value> {
        let info = self.groups().into_iter().find(|g| g.name == group)?;
        let mut doc = Map::new();
        doc.insert("kind".into(), "APIGroup".into());
        doc.insert("apiVersion".into(), "v1".into());
        if let Value::Object(fields) = group_json(&info) {
            doc.extend(fields);
        }
        Some(Value::Object(doc))
    }

    /// `GET /api/v1` or `GET /apis/{group}/{version}`: the `APIResourceList` document, `None`
    /// for a group/version that is not served.
    pub fn api_resource_list(&self, group: &str, version: &str) -> Option<Value> {
        let resources = self.sorted_resources(group, version);
        if resources.is_empty() {
            return None;
        }
        let mut list = Vec::new();
        for r in resources {
            list.push(legacy_resource_json(r));
            for s in &r.subresources {
                list.push(legacy_subresource_json(r, s));
            }
        }
        let group_version = if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        };
        let mut doc = Map::new();
        doc.insert("kind".into(), "APIResourceList".into());
        // Upstream leaves apiVersion out for the core group only.
        if !group.is_empty() {
            doc.insert("apiVersion".into(), "v1".into());
        }
        doc.insert("groupVersion".into(), group_version.into());
        doc.insert("resources".into(), list.into());
        Some(Value::Object(doc))
    }

    /// Aggregated discovery (`apidiscovery.k8s.io/v2` `APIGroupDiscoveryList`): of the core
    /// group for `GET /api` (`legacy_core`), of every named group for `GET /apis`.
    pub fn aggregated(&self, legacy_core: bool) -> Value {
        let items: Vec<Value> = if legacy_core {
            vec![json!({"metadata": {}, "versions": self.aggregated_versions("")})]
        } else {
            self.groups()
                .iter()
                .map(|g| {
                    json!({
                        "metadata": {"name": g.name},
                        "versions": self.aggregated_versions(&g.name),
                    })
                })
                .collect()
        };
        json!({
            "kind": "APIGroupDiscoveryList",
            "apiVersion": "apidiscovery.k8s.io/v2",
            "metadata": {},
            "items": items,
        })
    }

    fn aggregated_versions(&self, group: &str) -> Vec<Value> {
        self.versions(group)
            .iter()
            .map(|version| {
                let resources: Vec<Value> = self
                    .sorted_resources(group, version)
                    .into_iter()
                    .map(aggregated_resource_json)
                    .collect();
                json!({"version": version, "resources": resources, "freshness": "Current"})
            })
            .collect()
    }

    fn sorted_resources(&self, group: &str, version: &str) -> Vec<&ResourceInfo> {
        let mut resources: Vec<&ResourceInfo> = self
            .resources
            .iter()
            .filter(|r| r.group == group && r.version == version)
            .collect();
        resources.sort_by(|a, b| a.plural.cmp(&b.plural));
        resources
    }
}

fn group_version_json(group: &str, version: &str) -> Value {
    json!({"groupVersion": format!("{group}/{version}"), "version": version})
}

fn group_json(g: &GroupInfo) -> Value {
    let versions: Vec<Value> = g
        .versions
        .iter()
        .map(|v| group_version_json(&g.name, v))
        .collect();
    json!({
        "name": g.name,
        "versions": versions,
        "preferredVersion": group_version_json(&g.name, &g.preferred_version),
    })
}

fn strings(list: &[String]) -> Value {
    Value::Array(list.iter().map(|s| Value::String(s.clone())).collect())
}

/// An `APIResource` of an `APIResourceList` for a main resource.
fn legacy_resource_json(r: &ResourceInfo) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), r.plural.clone().into());
    m.insert("singularName".into(), r.singular.clone().into());
    m.insert("namespaced".into(), r.namespaced().into());
    m.insert("kind".into(), r.kind.clone().into());
    m.insert("verbs".into(), strings(&r.verbs));
    if !r.short_names.is_empty() {
        m.insert("shortNames".into(), strings(&r.short_names));
    }
    if !r.categories.is_empty() {
        m.insert("categories".into(), strings(&r.categories));
    }
    if r.is_stored() {
        m.insert("storageVersionHash".into(), r.storage_version_hash().into());
    }
    Value::Object(m)
}

/// An `APIResource` of an `APIResourceList` for a subresource: `group`/`version` only when the
/// subresource answers with a kind of another group/version than its parent.
fn legacy_subresource_json(r: &ResourceInfo, s: &SubresourceInfo) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), format!("{}/{}", r.plural, s.name).into());
    m.insert("singularName".into(), "".into());
    m.insert("namespaced".into(), r.namespaced().into());
    if s.group != r.group || s.version != r.version {
        m.insert("group".into(), s.group.clone().into());
        m.insert("version".into(), s.version.clone().into());
    }
    m.insert("kind".into(), s.kind.clone().into());
    m.insert("verbs".into(), strings(&s.verbs));
    Value::Object(m)
}

/// An `APIResourceDiscovery` of aggregated discovery. Upstream leaves `responseKind`'s group and
/// version empty for built-in resources (and their same-group subresources) and fills them in for
/// custom resources.
fn aggregated_resource_json(r: &ResourceInfo) -> Value {
    let builtin = r.is_builtin_group();
    let response_kind = |group: &str, version: &str, kind: &str| {
        if builtin && group == r.group && version == r.version {
            json!({"group": "", "version": "", "kind": kind})
        } else {
            json!({"group": group, "version": version, "kind": kind})
        }
    };
    let mut m = Map::new();
    m.insert("resource".into(), r.plural.clone().into());
    m.insert(
        "responseKind".into(),
        response_kind(&r.group, &r.version, &r.kind),
    );
    m.insert("scope".into(), r.scope.as_str().into());
    m.insert("singularResource".into(), r.singular.clone().into());
    m.insert("verbs".into(), strings(&r.verbs));
    if !r.short_names.is_empty() {
        m.insert("shortNames".into(), strings(&r.short_names));
    }
    if !r.categories.is_empty() {
        m.insert("categories".into(), strings(&r.categories));
    }
    if !r.subresources.is_empty() {
        let subs: Vec<Value> = r
            .subresources
            .iter()
            .map(|s| {
                json!({
                    "subresource": s.name,
                    "responseKind": response_kind(&s.group, &s.version, &s.kind),
                    "verbs": strings(&s.verbs),
                })
            })
            .collect();
        m.insert("subresources".into(), subs.into());
    }
    Value::Object(m)
}

/// Upstream's kube-aware version order: GA before beta before alpha, higher numbers first,
/// then versions of other shapes alphabetically.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    match (kube_version(a), kube_version(b)) {
        (Some(x), Some(y)) => y.cmp(&x),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

/// `(stability, major, minor)` of `v2`, `v1beta1`, `v1alpha3`: larger is more preferred.
fn kube_version(v: &str) -> Option<(u8, u64, u64)> {
    let rest = v.strip_prefix('v')?;
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (major, rest) = rest.split_at(digits);
    if major.is_empty() || major.starts_with('0') {
        return None;
    }
    let major: u64 = major.parse().ok()?;
    if rest.is_empty() {
        return Some((2, major, 0));
    }
    let (stability, minor) = if let Some(m) = rest.strip_prefix("beta") {
        (1, m)
    } else if let Some(m) = rest.strip_prefix("alpha") {
        (0, m)
    } else {
        return None;
    };
    if minor.is_empty() || minor.starts_with('0') || !minor.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some((stability, major, minor.parse().ok()?))
}

// ---------------------------------------------------------------------------------------------
// The built-in resources.

/// The built-in named groups, in the order upstream's `/apis` lists them (the aggregator's own
/// group first, then by descending group priority, then by name).
const BUILTIN_GROUPS: &[&str] = &[
    "apiregistration.k8s.io",
    "apps",
    "events.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "networking.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "scheduling.k8s.io",
    "coordination.k8s.io",
    "node.k8s.io",
    "discovery.k8s.io",
    "resource.k8s.io",
    "flowcontrol.apiserver.k8s.io",
];

fn group_rank(group: &str) -> Option<usize> {
    BUILTIN_GROUPS.iter().position(|g| *g == group)
}

fn is_builtin_group(group: &str) -> bool {
    group.is_empty() || group_rank(group).is_some()
}

/// Resources stored in another version than the one served: `(group, plural, storage version)`.
const STORAGE_VERSION_OVERRIDES: &[(&str, &str, &str)] = &[
    (
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        "v1beta1",
    ),
    ("autoscaling", "horizontalpodautoscalers", "v2"),
];

const CRUD: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
/// Namespaces cannot be deleted as a collection.
const CRUD_NO_DC: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];
const GPU: &[&str] = &["get", "patch", "update"];
const PROXY: &[&str] = &["create", "delete", "get", "patch", "update"];
const CREATE: &[&str] = &["create"];
const CREATE_GET: &[&str] = &["create", "get"];
const GET: &[&str] = &["get"];
const GET_LIST: &[&str] = &["get", "list"];
const UPDATE: &[&str] = &["update"];

/// Group, version, kind, plural and scope of a resource, taken from `k8s-openapi`.
#[derive(Clone, Copy)]
struct Meta {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    scope: Scope,
}

trait ScopeOf {
    const SCOPE: Scope;
}
impl ScopeOf for NamespaceResourceScope {
    const SCOPE: Scope = Scope::Namespaced;
}
impl ScopeOf for ClusterResourceScope {
    const SCOPE: Scope = Scope::Cluster;
}

/// What a subresource answers with.
#[derive(Clone, Copy)]
enum Response {
    /// The parent's kind (`pods/status` → Pod).
    Parent,
    /// Another kind of the parent's group/version (`pods/exec` → PodExecOptions).
    Kind(&'static str),
    /// A kind of another group/version (`deployments/scale` → autoscaling/v1 Scale).
    Other(&'static str, &'static str, &'static str),
}

#[derive(Clone, Copy)]
struct Sub {
    name: &'static str,
    response: Response,
    verbs: &'static [&'static str],
}

struct Row {
    meta: Meta,
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    verbs: &'static [&'static str],
    subresources: &'static [Sub],
}

const fn row<T>(
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    verbs: &'static [&'static str],
    subresources: &'static [Sub],
) -> Row
where
    T: Resource,
    T::Scope: ScopeOf,
{
    Row {
        meta: Meta {
            group: T::GROUP,
            version: T::VERSION,
            kind: T::KIND,
            plural: T::URL_PATH_SEGMENT,
            scope: <T::Scope as ScopeOf>::SCOPE,
        },
        short_names,
        categories,
        verbs,
        subresources,
    }
}

const fn other<T: Resource>() -> Response {
    Response::Other(T::GROUP, T::VERSION, T::KIND)
}

const fn sub(name: &'static str, response: Response, verbs: &'static [&'static str]) -> Sub {
    Sub {
        name,
        response,
        verbs,
    }
}

use Response::{Kind, Parent};

const STATUS: Sub = sub("status", Parent, GPU);
const SCALE: Sub = sub("scale", other::<autoscaling_v1::Scale>(), GPU);
const ALL: &[&str] = &["all"];
const API_EXTENSIONS: &[&str] = &["api-extensions"];
const NONE: &[&str] = &[];

/// The supplement: per built-in resource, its short names, categories, verbs and subresources
/// (sorted by name). Rows are grouped by group in upstream's order; within a group/version the
/// discovery documents sort by plural.
#[rustfmt::skip]
static BUILTIN: &[Row] = &[
    // core/v1
    row::<core_v1::Binding>(NONE, NONE, CREATE, &[]),
    row::<core_v1::ComponentStatus>(&["cs"], NONE, GET_LIST, &[]),
    row::<core_v1::ConfigMap>(&["cm"], NONE, CRUD, &[]),
    row::<core_v1::Endpoints>(&["ep"], NONE, CRUD, &[]),
    row::<core_v1::Event>(&["ev"], NONE, CRUD, &[]),
    row::<core_v1::LimitRange>(&["limits"], NONE, CRUD, &[]),
    row::<core_v1::Namespace>(&["ns"], NONE, CRUD_NO_DC, &[sub("finalize", Parent, UPDATE), STATUS]),
    row::<core_v1::Node>(&["no"], NONE, CRUD, &[sub("proxy", Kind("NodeProxyOptions"), PROXY), STATUS]),
    row::<core_v1::PersistentVolumeClaim>(&["pvc"], NONE, CRUD, &[STATUS]),
    row::<core_v1::PersistentVolume>(&["pv"], NONE, CRUD, &[STATUS]),
    row::<core_v1::Pod>(&["po"], ALL, CRUD, &[
        sub("attach", Kind("PodAttachOptions"), CREATE_GET),
        sub("binding", Kind("Binding"), CREATE),
        sub("ephemeralcontainers", Parent, GPU),
        sub("eviction", other::<policy::Eviction>(), CREATE),
        sub("exec", Kind("PodExecOptions"), CREATE_GET),
        sub("log", Parent, GET),
        sub("portforward", Kind("PodPortForwardOptions"), CREATE_GET),
        sub("proxy", Kind("PodProxyOptions"), PROXY),
        sub("resize", Parent, GPU),
        STATUS,
    ]),
    row::<core_v1::PodTemplate>(NONE, NONE, CRUD, &[]),
    row::<core_v1::ReplicationController>(&["rc"], ALL, CRUD, &[SCALE, STATUS]),
    row::<core_v1::ResourceQuota>(&["quota"], NONE, CRUD, &[STATUS]),
    row::<core_v1::Secret>(NONE, NONE, CRUD, &[]),
    row::<core_v1::ServiceAccount>(&["sa"], NONE, CRUD, &[
        sub("token", other::<authentication::TokenRequest>(), CREATE),
    ]),
    row::<core_v1::Service>(&["svc"], ALL, CRUD, &[sub("proxy", Kind("ServiceProxyOptions"), PROXY), STATUS]),
    // apiregistration.k8s.io/v1
    row::<apiregistration::APIService>(NONE, API_EXTENSIONS, CRUD, &[STATUS]),
    // apps/v1
    row::<apps::ControllerRevision>(NONE, NONE, CRUD, &[]),
    row::<apps::DaemonSet>(&["ds"], ALL, CRUD, &[STATUS]),
    row::<apps::Deployment>(&["deploy"], ALL, CRUD, &[SCALE, STATUS]),
    row::<apps::ReplicaSet>(&["rs"], ALL, CRUD, &[SCALE, STATUS]),
    row::<apps::StatefulSet>(&["sts"], ALL, CRUD, &[SCALE, STATUS]),
    // events.k8s.io/v1
    row::<events::Event>(&["ev"], NONE, CRUD, &[]),
    // authentication.k8s.io/v1
    row::<authentication::SelfSubjectReview>(NONE, NONE, CREATE, &[]),
    row::<authentication::TokenReview>(NONE, NONE, CREATE, &[]),
    // authorization.k8s.io/v1
    row::<authorization::LocalSubjectAccessReview>(NONE, NONE, CREATE, &[]),
    row::<authorization::SelfSubjectAccessReview>(NONE, NONE, CREATE, &[]),
    row::<authorization::SelfSubjectRulesReview>(NONE, NONE, CREATE, &[]),
    row::<authorization::SubjectAccessReview>(NONE, NONE, CREATE, &[]),
    // autoscaling/v2, autoscaling/v1
    row::<autoscaling_v2::HorizontalPodAutoscaler>(&["hpa"], ALL, CRUD, &[STATUS]),
    row::<autoscaling_v1::HorizontalPodAutoscaler>(&["hpa"], ALL, CRUD, &[STATUS]),
    // batch/v1
    row::<batch::CronJob>(&["cj"], ALL, CRUD, &[STATUS]),
    row::<batch::Job>(NONE, ALL, CRUD, &[STATUS]),
    // certificates.k8s.io/v1
    row::<certificates::CertificateSigningRequest>(&["csr"], NONE, CRUD, &[sub("approval", Parent, GPU), STATUS]),
    // networking.k8s.io/v1
    row::<networking::IngressClass>(NONE, NONE, CRUD, &[]),
    row::<networking::Ingress>(&["ing"], NONE, CRUD, &[STATUS]),
    row::<networking::IPAddress>(&["ip"], NONE, CRUD, &[]),
    row::<networking::NetworkPolicy>(&["netpol"], NONE, CRUD, &[]),
    row::<networking::ServiceCIDR>(NONE, NONE, CRUD, &[STATUS]),
    // policy/v1
    row::<policy::PodDisruptionBudget>(&["pdb"], NONE, CRUD, &[STATUS]),
    // rbac.authorization.k8s.io/v1
    row::<rbac::ClusterRoleBinding>(NONE, NONE, CRUD, &[]),
    row::<rbac::ClusterRole>(NONE, NONE, CRUD, &[]),
    row::<rbac::RoleBinding>(NONE, NONE, CRUD, &[]),
    row::<rbac::Role>(NONE, NONE, CRUD, &[]),
    // storage.k8s.io/v1
    row::<storage::CSIDriver>(NONE, NONE, CRUD, &[]),
    row::<storage::CSINode>(NONE, NONE, CRUD, &[]),
    row::<storage::CSIStorageCapacity>(NONE, NONE, CRUD, &[]),
    row::<storage::StorageClass>(&["sc"], NONE, CRUD, &[]),
    row::<storage::VolumeAttachment>(NONE, NONE, CRUD, &[STATUS]),
    row::<storage::VolumeAttributesClass>(&["vac"], NONE, CRUD, &[]),
    // admissionregistration.k8s.io/v1
    row::<admissionregistration::MutatingAdmissionPolicy>(NONE, API_EXTENSIONS, CRUD, &[]),
    row::<admissionregistration::MutatingAdmissionPolicyBinding>(NONE, API_EXTENSIONS, CRUD, &[]),
    row::<admissionregistration::MutatingWebhookConfiguration>(NONE, API_EXTENSIONS, CRUD, &[]),
    row::<admissionregistration::ValidatingAdmissionPolicy>(NONE, API_EXTENSIONS, CRUD, &[STATUS]),
    row::<admissionregistration::ValidatingAdmissionPolicyBinding>(NONE, API_EXTENSIONS, CRUD, &[]),
    row::<admissionregistration::ValidatingWebhookConfiguration>(NONE, API_EXTENSIONS, CRUD, &[]),
    // apiextensions.k8s.io/v1
    row::<apiextensions::CustomResourceDefinition>(&["crd", "crds"], API_EXTENSIONS, CRUD, &[STATUS]),
    // scheduling.k8s.io/v1
    row::<scheduling::PriorityClass>(&["pc"], NONE, CRUD, &[]),
    // coordination.k8s.io/v1
    row::<coordination::Lease>(NONE, NONE, CRUD, &[]),
    // node.k8s.io/v1
    row::<node::RuntimeClass>(NONE, NONE, CRUD, &[]),
    // discovery.k8s.io/v1
    row::<discovery::EndpointSlice>(NONE, NONE, CRUD, &[]),
    // resource.k8s.io/v1
    row::<resource::DeviceClass>(NONE, NONE, CRUD, &[]),
    row::<resource::ResourceClaim>(NONE, NONE, CRUD, &[STATUS]),
    row::<resource::ResourceClaimTemplate>(NONE, NONE, CRUD, &[]),
    row::<resource::ResourceSlice>(NONE, NONE, CRUD, &[]),
    // flowcontrol.apiserver.k8s.io/v1
    row::<flowcontrol::FlowSchema>(NONE, NONE, CRUD, &[STATUS]),
    row::<flowcontrol::PriorityLevelConfiguration>(NONE, NONE, CRUD, &[STATUS]),
];

fn owned(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

impl Row {
    fn to_info(&self) -> ResourceInfo {
        let m = &self.meta;
        ResourceInfo {
            group: m.group.to_string(),
            version: m.version.to_string(),
            kind: m.kind.to_string(),
            list_kind: format!("{}List", m.kind),
            plural: m.plural.to_string(),
            // Every built-in's singular name is its kind in lower case.
            singular: m.kind.to_ascii_lowercase(),
            short_names: owned(self.short_names),
            categories: owned(self.categories),
            scope: m.scope,
            verbs: owned(self.verbs),
            subresources: self
                .subresources
                .iter()
                .map(|s| {
                    let (group, version, kind) = match s.response {
                        Response::Parent => (m.group, m.version, m.kind),
                        Response::Kind(kind) => (m.group, m.version, kind),
                        Response::Other(group, version, kind) => (group, version, kind),
                    };
                    SubresourceInfo {
                        name: s.name.to_string(),
                        group: group.to_string(),
                        version: version.to_string(),
                        kind: kind.to_string(),
                        verbs: owned(s.verbs),
                    }
                })
                .collect(),
            custom: None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// SHA-256 (FIPS 180-4), for storageVersionHash; small enough not to need a crate.

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    const UPSTREAM: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/upstream/discovery/"
    );

    /// The response body of a captured upstream answer.
    fn upstream(file: &str) -> Value {
        let path = format!("{UPSTREAM}{file}");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let capture: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(capture["response"]["status"], 200, "{file}");
        capture["response"]["body"].clone()
    }

    /// Replaces every storageVersionHash value by a placeholder (its presence still counts).
    fn without_hashes(mut v: Value) -> Value {
        fn walk(v: &mut Value) {
            match v {
                Value::Object(m) => {
                    for (k, x) in m.iter_mut() {
                        if k == "storageVersionHash" {
                            *x = Value::String("HASH".into());
                        } else {
                            walk(x);
                        }
                    }
                }
                Value::Array(a) => a.iter_mut().for_each(walk),
                _ => {}
            }
        }
        walk(&mut v);
        v
    }

    /// Asserts equality including key order, with a readable first difference.
    fn assert_same(ours: &Value, theirs: &Value, what: &str) {
        if ours == theirs
            && serde_json::to_string(ours).unwrap() == serde_json::to_string(theirs).unwrap()
        {
            return;
        }
        fn first_diff(a: &Value, b: &Value, path: String) -> String {
            match (a, b) {
                (Value::Object(x), Value::Object(y)) => {
                    let kx: Vec<_> = x.keys().collect();
                    let ky: Vec<_> = y.keys().collect();
                    if kx != ky {
                        return format!("{path}: keys {kx:?} != upstream {ky:?}");
                    }
                    for k in x.keys() {
                        if x[k] != y[k] {
                            return first_diff(&x[k], &y[k], format!("{path}.{k}"));
                        }
                    }
                    format!("{path}: key order")
                }
                (Value::Array(x), Value::Array(y)) => {
                    for (i, (p, q)) in x.iter().zip(y).enumerate() {
                        if p != q
                            || serde_json::to_string(p).unwrap()
                                != serde_json::to_string(q).unwrap()
                        {
                            return first_diff(p, q, format!("{path}[{i}]"));
                        }
                    }
                    format!(
                        "{path}: length {} != upstream {}\nours: {a}\nupstream: {b}",
                        x.len(),
                        y.len()
                    )
                }
                _ => format!("{path}: {a} != upstream {b}"),
            }
        }
        panic!(
            "{what} differs from upstream: {}",
            first_diff(ours, theirs, "$".into())
        );
    }

    fn widget_crd() -> ResourceInfo {
        ResourceInfo {
            group: "golden.example.com".into(),
            version: "v1".into(),
            kind: "Widget".into(),
            list_kind: "WidgetList".into(),
            plural: "widgets".into(),
            singular: "widget".into(),
            short_names: vec!["wdg".into()],
            categories: vec![],
            scope: Scope::Namespaced,
            verbs: owned(&[
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "create",
                "update",
                "watch",
            ]),
            subresources: vec![SubresourceInfo {
                name: "status".into(),
                group: "golden.example.com".into(),
                version: "v1".into(),
                kind: "Widget".into(),
                verbs: owned(GPU),
            }],
            custom: None,
        }
    }

    #[test]
    fn api_versions_matches_upstream() {
        let table = ResourceTable::builtin();
        let theirs = upstream("api.json");
        let address = theirs["serverAddressByClientCIDRs"][0]["serverAddress"]
            .as_str()
            .unwrap()
            .to_string();
        assert_same(&table.api_versions(&address), &theirs, "GET /api");
    }

    #[test]
    fn api_group_list_matches_upstream() {
        let table = ResourceTable::builtin();
        assert_same(&table.api_group_list(), &upstream("apis.json"), "GET /apis");
    }

    #[test]
    fn api_group_matches_upstream_entries() {
        let table = ResourceTable::builtin();
        let list = upstream("apis.json");
        let groups = list["groups"].as_array().unwrap();
        assert_eq!(groups.len(), table.groups().len());
        for g in groups {
            let name = g["name"].as_str().unwrap();
            let mut expected = json!({"kind": "APIGroup", "apiVersion": "v1"});
            for (k, v) in g.as_object().unwrap() {
                expected[k] = v.clone();
            }
            let ours = table.api_group(name).unwrap();
            assert_same(&ours, &expected, &format!("GET /apis/{name}"));
        }
        assert!(table.api_group("").is_none());
        assert!(table.api_group("nosuch.example.com").is_none());
    }

    #[test]
    fn api_resource_lists_match_upstream() {
        let table = ResourceTable::builtin();
        for (file, group, version) in [
            ("api-v1.json", "", "v1"),
            ("apis-apps-v1.json", "apps", "v1"),
            ("apis-batch-v1.json", "batch", "v1"),
            (
                "apis-apiextensions.k8s.io-v1.json",
                "apiextensions.k8s.io",
                "v1",
            ),
        ] {
            let ours = table.api_resource_list(group, version).unwrap();
            assert_same(&without_hashes(ours), &without_hashes(upstream(file)), file);
        }
        assert!(table.api_resource_list("apps", "v2").is_none());
        assert!(table
            .api_resource_list("nosuch.example.com", "v1")
            .is_none());
    }

    #[test]
    fn storage_version_hashes_equal_upstream() {
        let table = ResourceTable::builtin();
        for (file, group) in [
            ("api-v1.json", ""),
            ("apis-apps-v1.json", "apps"),
            ("apis-batch-v1.json", "batch"),
            ("apis-apiextensions.k8s.io-v1.json", "apiextensions.k8s.io"),
        ] {
            let ours = table.api_resource_list(group, "v1").unwrap();
            assert_same(&ours, &upstream(file), file);
        }
    }

    #[test]
    fn aggregated_core_matches_upstream() {
        let table = ResourceTable::builtin();
        let ours = table.aggregated(true);
        assert_same(&ours, &upstream("api-aggregated.json"), "aggregated /api");
        assert_same(
            &ours,
            &upstream("api-aggregated-kubectl-accept.json"),
            "aggregated /api (kubectl Accept)",
        );
    }

    #[test]
    fn aggregated_groups_match_upstream() {
        let table = ResourceTable::builtin();
        assert_same(
            &table.aggregated(false),
            &upstream("apis-aggregated.json"),
            "aggregated /apis",
        );
    }

    #[test]
    fn aggregated_with_custom_resource_matches_upstream() {
        // apis-aggregated-kubectl-accept.json was captured after the golden Widget CRD was
        // established.
        let mut table = ResourceTable::builtin();
        table.add(widget_crd());
        assert_same(
            &table.aggregated(false),
            &upstream("apis-aggregated-kubectl-accept.json"),
            "aggregated /apis with a CRD",
        );
        let groups = table.groups();
        let last = groups.last().unwrap();
        assert_eq!(last.name, "golden.example.com");
        assert_eq!(last.preferred_version, "v1");
        table.remove("golden.example.com", "v1", "widgets");
        assert_same(
            &table.aggregated(false),
            &upstream("apis-aggregated.json"),
            "aggregated /apis after removing the CRD",
        );
        assert!(table.api_group("golden.example.com").is_none());
    }

    /// The APIResourceList upstream would serve for every group/version, derived from its
    /// aggregated discovery (which lists them all); storageVersionHash on exactly the stored
    /// (watchable) resources.
    #[test]
    fn every_api_resource_list_agrees_with_upstream_aggregated() {
        let table = ResourceTable::builtin();
        let mut seen = 0;
        for (file, core) in [
            ("api-aggregated.json", true),
            ("apis-aggregated.json", false),
        ] {
            for item in upstream(file)["items"].as_array().unwrap() {
                let group = item["metadata"]["name"].as_str().unwrap_or("");
                assert_eq!(core, group.is_empty());
                for v in item["versions"].as_array().unwrap() {
                    let version = v["version"].as_str().unwrap();
                    let mut resources = Vec::new();
                    for r in v["resources"].as_array().unwrap() {
                        let namespaced = r["scope"] == "Namespaced";
                        let mut m = json!({
                            "name": r["resource"],
                            "singularName": r["singularResource"],
                            "namespaced": namespaced,
                            "kind": r["responseKind"]["kind"],
                            "verbs": r["verbs"],
                        });
                        for key in ["shortNames", "categories"] {
                            if let Some(x) = r.get(key) {
                                m[key] = x.clone();
                            }
                        }
                        if r["verbs"].as_array().unwrap().contains(&json!("watch")) {
                            m["storageVersionHash"] = json!("HASH");
                        }
                        resources.push(m);
                        for s in r["subresources"].as_array().into_iter().flatten() {
                            let mut m = Map::new();
                            m.insert(
                                "name".into(),
                                format!(
                                    "{}/{}",
                                    r["resource"].as_str().unwrap(),
                                    s["subresource"].as_str().unwrap()
                                )
                                .into(),
                            );
                            m.insert("singularName".into(), "".into());
                            m.insert("namespaced".into(), namespaced.into());
                            let rk = &s["responseKind"];
                            if rk["group"] != "" || rk["version"] != "" {
                                m.insert("group".into(), rk["group"].clone());
                                m.insert("version".into(), rk["version"].clone());
                            }
                            m.insert("kind".into(), rk["kind"].clone());
                            m.insert("verbs".into(), s["verbs"].clone());
                            resources.push(Value::Object(m));
                        }
                    }
                    let mut expected = json!({"kind": "APIResourceList"});
                    if core {
                        expected["groupVersion"] = json!(version);
                    } else {
                        expected["apiVersion"] = json!("v1");
                        expected["groupVersion"] = json!(format!("{group}/{version}"));
                    }
                    expected["resources"] = Value::Array(resources);
                    let ours = table.api_resource_list(group, version).unwrap();
                    assert_same(
                        &without_hashes(ours),
                        &expected,
                        &format!("APIResourceList {group}/{version}"),
                    );
                    seen += 1;
                }
            }
        }
        // Every group/version in the table was compared.
        let ours: BTreeSet<(String, String)> = table
            .iter()
            .map(|r| (r.group.clone(), r.version.clone()))
            .collect();
        assert_eq!(seen, ours.len());
    }

    #[test]
    fn builtin_table_is_consistent() {
        let table = ResourceTable::builtin();
        let mut keys = BTreeSet::new();
        for r in table.iter() {
            assert!(
                keys.insert((r.group.clone(), r.version.clone(), r.plural.clone())),
                "duplicate {}/{}",
                r.api_version(),
                r.plural
            );
            assert_eq!(r.list_kind, format!("{}List", r.kind));
            let names: Vec<&str> = r.subresources.iter().map(|s| s.name.as_str()).collect();
            let mut sorted = names.clone();
            sorted.sort();
            assert_eq!(names, sorted, "{} subresources are sorted", r.plural);
            let mut verbs = r.verbs.clone();
            verbs.sort();
            assert_eq!(verbs, r.verbs, "{} verbs are sorted", r.plural);
            assert!(r.is_builtin_group());
        }
        assert_eq!(table.iter().count(), 68);
    }

    #[test]
    fn lookups() {
        let mut table = ResourceTable::builtin();
        let pods = table.get("", "v1", "pods").unwrap();
        assert_eq!(pods.kind, "Pod");
        assert_eq!(pods.api_version(), "v1");
        assert_eq!(pods.singular, "pod");
        assert!(pods.namespaced() && pods.has_status() && pods.is_stored());
        assert!(pods.has_verb("deletecollection") && !pods.has_verb("proxy"));
        let eviction = pods.subresource("eviction").unwrap();
        assert_eq!(
            (
                eviction.group.as_str(),
                eviction.version.as_str(),
                eviction.kind.as_str()
            ),
            ("policy", "v1", "Eviction")
        );
        let binding = pods.subresource("binding").unwrap();
        assert_eq!(
            (binding.group.as_str(), binding.version.as_str()),
            ("", "v1")
        );
        assert_eq!(binding.kind, "Binding");
        assert_eq!(pods.subresource("log").unwrap().kind, "Pod");

        let deploy = table.by_kind("apps", "v1", "Deployment").unwrap();
        assert_eq!(deploy.plural, "deployments");
        assert_eq!(deploy.api_version(), "apps/v1");
        assert_eq!(deploy.short_names, vec!["deploy"]);
        assert_eq!(deploy.categories, vec!["all"]);
        let scale = deploy.subresource("scale").unwrap();
        assert_eq!(
            (
                scale.group.as_str(),
                scale.version.as_str(),
                scale.kind.as_str()
            ),
            ("autoscaling", "v1", "Scale")
        );

        let ns = table.get("", "v1", "namespaces").unwrap();
        assert_eq!(ns.scope, Scope::Cluster);
        assert!(!ns.has_verb("deletecollection"));
        for (g, p) in [
            ("", "bindings"),
            ("", "componentstatuses"),
            ("authentication.k8s.io", "tokenreviews"),
            ("authentication.k8s.io", "selfsubjectreviews"),
            ("authorization.k8s.io", "subjectaccessreviews"),
            ("authorization.k8s.io", "localsubjectaccessreviews"),
            ("authorization.k8s.io", "selfsubjectaccessreviews"),
            ("authorization.k8s.io", "selfsubjectrulesreviews"),
        ] {
            assert!(!table.get(g, "v1", p).unwrap().is_stored(), "{p}");
        }
        assert!(!table.get("", "v1", "configmaps").unwrap().has_status());
        assert!(table.get("apps", "v1", "pods").is_none());
        assert!(table.by_kind("", "v1", "Deployment").is_none());
        assert_eq!(table.versions("autoscaling"), vec!["v2", "v1"]);
        assert_eq!(table.versions(""), vec!["v1"]);

        // add replaces an entry with the same group/version/plural.
        let n = table.iter().count();
        table.add(widget_crd());
        let mut w = widget_crd();
        w.short_names = vec!["w".into()];
        table.add(w);
        assert_eq!(table.iter().count(), n + 1);
        let got = table.get("golden.example.com", "v1", "widgets").unwrap();
        assert_eq!(got.short_names, vec!["w"]);
        assert!(!got.is_builtin_group() && got.has_status() && got.is_stored());
        table.remove("golden.example.com", "v1", "widgets");
        assert_eq!(table.iter().count(), n);
        assert!(table.get("golden.example.com", "v1", "widgets").is_none());
        assert!(ResourceTable::empty().iter().next().is_none());
    }

    #[test]
    fn custom_groups_and_versions_are_ordered_like_upstream() {
        let mut table = ResourceTable::builtin();
        for (group, version) in [
            ("zeta.example.com", "v1"),
            ("alpha.example.com", "v1alpha1"),
            ("alpha.example.com", "v1"),
            ("alpha.example.com", "v2beta1"),
            ("alpha.example.com", "v1beta2"),
        ] {
            let mut w = widget_crd();
            w.group = group.into();
            w.version = version.into();
            table.add(w);
        }
        let groups = table.groups();
        let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(
            names[names.len() - 2..],
            ["alpha.example.com", "zeta.example.com"]
        );
        let alpha = &groups[groups.len() - 2];
        assert_eq!(alpha.versions, vec!["v1", "v2beta1", "v1beta2", "v1alpha1"]);
        assert_eq!(alpha.preferred_version, "v1");
        // Custom resources answer with a full responseKind, scale subresources included.
        let agg = table.aggregated(false);
        let item = agg["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["metadata"]["name"] == "zeta.example.com")
            .unwrap();
        assert_eq!(
            item["versions"][0]["resources"][0]["responseKind"],
            json!({"group": "zeta.example.com", "version": "v1", "kind": "Widget"})
        );
    }

    #[test]
    fn version_order() {
        let mut v = vec![
            "foo10",
            "v1alpha1",
            "v11alpha2",
            "v12alpha1",
            "v1",
            "v2",
            "foo1",
            "v10",
            "v3beta1",
            "v10beta3",
            "v11beta2",
            "v1beta1",
            "v1beta2",
        ];
        v.sort_by(|a, b| compare_versions(a, b));
        assert_eq!(
            v,
            [
                "v10",
                "v2",
                "v1",
                "v11beta2",
                "v10beta3",
                "v3beta1",
                "v1beta2",
                "v1beta1",
                "v12alpha1",
                "v11alpha2",
                "v1alpha1",
                "foo1",
                "foo10"
            ]
        );
    }
}
