//! Server-side apply and `metadata.managedFields` bookkeeping.
//!
//! A port of the semantics of `sigs.k8s.io/structured-merge-diff` (field sets, merge, compare,
//! removal, conflicts) and of the apiserver's field manager
//! (`k8s.io/apimachinery/pkg/util/managedfields/internal`): managedFields entries per
//! (manager, operation, apiVersion for updates, subresource), `Update` entries for
//! create/update/patch, conflicts and `force`, pruning of the fields an applier stopped
//! applying, the `before-first-apply` entry, the cap of ten update managers
//! (`ancient-changes`), the client-side → server-side apply upgrade of the manager `kubectl`
//! (`last-applied-configuration`), and the `scale` subresource mapping (`ScaleHandler`).
//!
//! The type information comes from [`crate::schema_meta`] for the built-in kinds
//! ([`Schema::Builtin`]), from a CRD's structural schema ([`Schema::Structural`], see
//! [`Schema::from_crd_openapi_v3`]), or is deduced from the value ([`Schema::Untyped`]:
//! granular maps, atomic lists).
//!
//! Entry points: [`apply`], [`record_update`], [`record_scale_update`],
//! [`manager_from_user_agent`]. Each write takes an [`Endpoint`]: the schema, apiVersion and
//! kind served, the subresource, and the strategy's reset fields.
//!
//! Where the handlers call it, as upstream does:
//! - create (POST): `record_update(ep, None, &mut obj, ..)` after decoding and defaulting,
//!   before mutating admission and the strategy's `PrepareForCreate` (fields those set, e.g.
//!   a Namespace's `spec.finalizers`, a Job's generated selector, are owned by nobody);
//! - update (PUT) and non-apply PATCH: `record_update(ep, Some(&stored), &mut new, ..)` on the
//!   decoded/patched object, before `PrepareForUpdate`; managedFields the client sent (or
//!   patched) replace the stored ones, an empty list resets them;
//! - apply PATCH: `apply(ep, stored, &body, field_manager, force, now)` then default and
//!   validate the result; on a create (`None`) the result starts from the kind's zero value.
//!   Dry runs call the same and do not store.
//! - the manager is `fieldManager`, else [`manager_from_user_agent`] of the User-Agent
//!   (an empty name becomes `unknown`).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::schema_meta::{self as sm, DefKind, FieldMeta, Node, Scalar, TypeRef};

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/// The type information the merge works with.
#[derive(Clone, Debug)]
pub enum Schema {
    /// A built-in kind: the root definition from [`crate::schema_meta::root_for_gvk`].
    Builtin(TypeRef),
    /// No schema (e.g. a custom resource whose schema preserves unknown fields): `apiVersion`,
    /// `kind` and `metadata` (ObjectMeta) are typed, everything else is deduced from the value:
    /// maps are granular, lists atomic.
    Untyped,
    /// A structural schema (a CRD version's `openAPIV3Schema`, converted with
    /// [`SchemaNode::from_openapi_v3`]).
    Structural(Arc<SchemaNode>),
}

impl Schema {
    /// The built-in schema of (group, version, kind), [`Schema::Untyped`] for unknown kinds.
    pub fn for_gvk(group: &str, version: &str, kind: &str) -> Schema {
        match sm::root_for_gvk(group, version, kind) {
            Some(t) => Schema::Builtin(t),
            None => Schema::Untyped,
        }
    }

    /// The schema of a custom resource version from its CRD's `openAPIV3Schema`.
    pub fn from_crd_openapi_v3(open_api_v3_schema: &Value) -> Schema {
        Schema::Structural(Arc::new(SchemaNode::crd_root(open_api_v3_schema)))
    }
}

/// One node of a structural schema, the equivalent of structured-merge-diff's `Atom` (a value
/// may be a scalar, a list or a map; a node says which of them it accepts and how they merge).
#[derive(Clone, Debug, PartialEq)]
pub enum SchemaNode {
    Atom {
        scalar: Option<ScalarType>,
        list: Option<ListSchema>,
        map: Option<MapSchema>,
    },
    /// Any value; maps are granular (every key is owned separately), lists atomic.
    Deduced,
    /// Any value, replaced as a whole (RawExtension).
    AtomicAny,
    /// A built-in definition (e.g. ObjectMeta for a custom resource's `metadata`).
    Builtin(TypeRef),
}

/// Scalar types of structured-merge-diff.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScalarType {
    String,
    Numeric,
    Boolean,
    Untyped,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ListSchema {
    pub elem: Box<SchemaNode>,
    pub list_type: ListType,
}

/// `x-kubernetes-list-type`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListType {
    Atomic,
    Set,
    /// An associative list keyed by these fields (`x-kubernetes-list-map-keys`).
    Map(Vec<String>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct MapSchema {
    /// Named properties, with their `default` (used for missing list-map keys).
    pub fields: Vec<StructField>,
    /// The type of keys that are not properties; `None`: such keys are not allowed.
    pub elem: Option<Box<SchemaNode>>,
    /// `x-kubernetes-map-type: atomic`.
    pub atomic: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StructField {
    pub name: String,
    pub node: SchemaNode,
    pub default: Option<Value>,
}

impl SchemaNode {
    /// Converts an OpenAPI v3 (structural) schema the way kube-openapi's `schemaconv` does.
    pub fn from_openapi_v3(schema: &Value) -> SchemaNode {
        convert_openapi(schema, false)
    }

    /// The root of a custom resource: the CRD schema plus the `apiVersion`, `kind` and
    /// `metadata` (ObjectMeta) properties the apiserver adds.
    fn crd_root(schema: &Value) -> SchemaNode {
        let mut root = convert_openapi(schema, false);
        if let SchemaNode::Atom { map, .. } = &mut root {
            let m = map.get_or_insert_with(|| MapSchema {
                fields: Vec::new(),
                elem: None,
                atomic: false,
            });
            add_object_meta_fields(m);
        }
        root
    }
}

/// What a write goes to: the schema and identity of the resource, and the strategy's reset
/// fields.
#[derive(Clone, Copy, Debug)]
pub struct Endpoint<'a> {
    pub schema: &'a Schema,
    /// The request's group/version, e.g. `apps/v1` (recorded in managedFields).
    pub api_version: &'a str,
    /// The kind served (an apply body of another kind or version is refused).
    pub kind: &'a str,
    /// `Some("status")` etc. for writes through a subresource.
    pub subresource: Option<&'a str>,
    /// The strategy's `GetResetFields` for this endpoint: paths (field names) nobody owns
    /// through it, e.g. `&[&["status"]]` for the main resource of a kind with a status
    /// subresource.
    pub reset_fields: &'a [&'a [&'a str]],
}

/// One field a manager owns that an apply would change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The manager as upstream prints it: `"alice"`, `"kubectl" using apps/v1`,
    /// `"x" with subresource "status" using v1`.
    pub manager: String,
    /// The field path as upstream prints it, e.g. `.spec.template.spec.containers[name="app"].image`.
    pub field: String,
    /// The manager identifier upstream sorts by (its JSON encoding).
    pub identifier: String,
}

/// Why an apply failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApplyError {
    /// Fields owned by other managers would change (409).
    #[error("{}", conflict_message(.0))]
    Conflicts(Vec<Conflict>),
    /// The request is malformed (400): wrong kind/version, managedFields in the body.
    #[error("{0}")]
    BadRequest(String),
    /// Anything else upstream answers with a bare 500: undecodable managedFields, an apply
    /// body with fields missing from the schema or of the wrong type, merge failures.
    #[error("{0}")]
    Invalid(String),
}

impl ApplyError {
    /// The HTTP status code upstream answers with.
    pub fn code(&self) -> u16 {
        match self {
            ApplyError::Conflicts(_) => 409,
            ApplyError::BadRequest(_) => 400,
            ApplyError::Invalid(_) => 500,
        }
    }

    /// The exact `metav1.Status` upstream returns. The object's kind, group and name do not
    /// appear in these statuses (upstream leaves `details` without them); they are accepted
    /// so callers need not special-case apply errors.
    pub fn to_status(&self, _kind: &str, _group: &str, _name: &str) -> Value {
        let mut s = Map::new();
        s.insert("kind".into(), Value::from("Status"));
        s.insert("apiVersion".into(), Value::from("v1"));
        s.insert("metadata".into(), Value::Object(Map::new()));
        s.insert("status".into(), Value::from("Failure"));
        s.insert("message".into(), Value::from(self.to_string()));
        match self {
            ApplyError::Conflicts(cs) => {
                s.insert("reason".into(), Value::from("Conflict"));
                let causes: Vec<Value> = cs
                    .iter()
                    .map(|c| {
                        let mut m = Map::new();
                        m.insert("reason".into(), Value::from("FieldManagerConflict"));
                        m.insert(
                            "message".into(),
                            Value::from(format!("conflict with {}", c.manager)),
                        );
                        m.insert("field".into(), Value::from(c.field.clone()));
                        Value::Object(m)
                    })
                    .collect();
                let mut d = Map::new();
                d.insert("causes".into(), Value::Array(causes));
                s.insert("details".into(), Value::Object(d));
            }
            ApplyError::BadRequest(_) => {
                s.insert("reason".into(), Value::from("BadRequest"));
            }
            ApplyError::Invalid(_) => {}
        }
        s.insert("code".into(), Value::from(self.code()));
        Value::Object(s)
    }
}

fn conflict_message(conflicts: &[Conflict]) -> String {
    if let [c] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            c.manager, c.field
        );
    }
    let mut by_manager: BTreeMap<&str, (&str, Vec<&str>)> = BTreeMap::new();
    for c in conflicts {
        by_manager
            .entry(c.identifier.as_str())
            .or_insert_with(|| (c.manager.as_str(), Vec::new()))
            .1
            .push(c.field.as_str());
    }
    let mut lines = Vec::new();
    for (printed, fields) in by_manager.values() {
        lines.push(format!("conflicts with {printed}:"));
        for f in fields {
            lines.push(format!("- {f}"));
        }
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

/// The manager name upstream derives from a User-Agent when a request names no
/// `fieldManager`: the part before the first `/`, without unprintable characters, at most 128
/// bytes (`prefixFromUserAgent`). `kubectl/v1.32.0 (linux/amd64) kubernetes/abc` → `kubectl`.
pub fn manager_from_user_agent(ua: &str) -> String {
    let prefix = ua.split('/').next().unwrap_or("");
    let mut out = String::new();
    for c in prefix.chars() {
        if !is_go_printable(c) {
            continue;
        }
        if out.len() + c.len_utf8() > 128 {
            break;
        }
        out.push(c);
    }
    out
}

/// Server-side apply: merges `applied` (the parsed apply body) into `live` (`None`: the
/// object does not exist yet) for `manager`, and returns the new object with its
/// `metadata.managedFields`. When nothing but managedFields changes, the result is `live`
/// with the (possibly unchanged) managedFields and no timestamp moves, so re-applying the
/// same configuration yields an identical object.
///
/// The caller defaults and validates the result afterwards, as upstream does.
pub fn apply(
    ep: &Endpoint,
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    now: &str,
) -> Result<Value, ApplyError> {
    let Some(applied_obj) = applied.as_object() else {
        return Err(ApplyError::BadRequest(
            "error decoding YAML: the apply body is not an object".into(),
        ));
    };
    // FieldManager.Apply: decode the live managedFields.
    let live_mf = live
        .and_then(|l| l.get("metadata"))
        .and_then(|m| m.get("managedFields"));
    let managed = match live_mf {
        Some(v) => Managed::decode(v)
            .map_err(|e| ApplyError::Invalid(format!("failed to decode managed fields: {e}")))?,
        None => Managed::default(),
    };
    // versionCheckManager
    let applied_av = applied_obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let applied_kind = applied_obj
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("");
    if applied_av != ep.api_version || applied_kind != ep.kind {
        return Err(ApplyError::BadRequest(format!(
            "invalid object type: {}",
            gvk_string(applied_av, applied_kind)
        )));
    }
    // structuredMergeManager.Apply
    if applied
        .get("metadata")
        .and_then(|m| m.get("managedFields"))
        .is_some_and(|v| !v.is_null())
    {
        return Err(ApplyError::BadRequest(
            "metadata.managedFields must be nil".into(),
        ));
    }
    let eng = Engine::new(ep);
    let errs = eng.validate(applied);
    if !errs.is_empty() {
        let meta = applied.get("metadata");
        let ns = meta
            .and_then(|m| m.get("namespace"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let name = meta
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("");
        return Err(ApplyError::Invalid(format!(
            "failed to create typed patch object ({ns}/{name}; {}): {}",
            gvk_string(applied_av, applied_kind),
            format_verrs(&errs)
        )));
    }

    let live_obj = match live {
        Some(l) => without_managed_fields(l),
        None => strip_nulls(eng.zero_object()),
    };
    let manager = if manager.is_empty() {
        "unknown"
    } else {
        manager
    };

    // lastAppliedManager: `kubectl` may take over fields client-side apply set.
    let mut result = eng.apply_chain(&live_obj, managed.clone(), applied, manager, force, now);
    if manager == "kubectl" {
        if let Err(ApplyFail::Conflicts(cs)) = &result {
            if let Some(allowed) = eng.allowed_conflicts_from_last_applied(&live_obj) {
                let conflict_set = conflicts_to_set(cs);
                if conflict_set.difference(&allowed).is_empty() {
                    result = eng.apply_chain(&live_obj, managed, applied, manager, true, now);
                } else {
                    let remaining = cs
                        .iter()
                        .filter(|(_, p)| !allowed.has(p))
                        .cloned()
                        .collect();
                    result = Err(ApplyFail::Conflicts(remaining));
                }
            }
        }
    }
    let (mut out, managed) = match result {
        Ok(r) => r,
        Err(ApplyFail::Conflicts(cs)) => return Err(ApplyError::Conflicts(to_conflicts(&cs))),
        Err(ApplyFail::Invalid(e)) => return Err(ApplyError::Invalid(e)),
    };
    // lastAppliedUpdater: keep the client-side apply annotation in step for `kubectl`.
    if manager == "kubectl" && has_last_applied(&out) {
        set_last_applied(&mut out, &build_last_applied(applied));
    }
    eng.set_managed_fields(&mut out, &managed);
    Ok(out)
}

/// Records a non-apply write (create, update, patch) by `manager` in `new`'s
/// `metadata.managedFields`: the fields the write set or changed become the manager's
/// `Update` entry and leave the other managers' sets. `old` is the stored object (`None` for
/// a create). Managed fields a client sent in `new` replace the stored ones (an empty list
/// resets them), except through a subresource. On an internal error the stored managedFields
/// are kept, as upstream does.
pub fn record_update(
    ep: &Endpoint,
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    now: &str,
) {
    let eng = Engine::new(ep);
    let old_mf = old
        .and_then(|o| o.get("metadata"))
        .and_then(|m| m.get("managedFields"))
        .cloned();
    let new_mf = new
        .get("metadata")
        .and_then(|m| m.get("managedFields"))
        .cloned();
    // decodeLiveOrNew
    let decode_old = || {
        old_mf
            .as_ref()
            .and_then(|v| Managed::decode(v).ok())
            .unwrap_or_default()
    };
    let mut managed = if ep.subresource.is_some() {
        decode_old()
    } else if new_mf.as_ref().is_some_and(is_reset_managed_fields) {
        Managed::default()
    } else {
        match new_mf.as_ref().map(Managed::decode) {
            Some(Ok(m)) if !m.sets.is_empty() => m,
            _ => decode_old(),
        }
    };
    remove_managed_fields(new);

    // skipNonAppliedManager: objects without managedFields are only tracked from creation.
    let creating = old.is_none_or(|o| {
        o.get("metadata")
            .and_then(|m| m.get("uid"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
    });
    if managed.sets.is_empty() && !creating {
        return;
    }
    let old_obj = match old {
        Some(o) => without_managed_fields(o),
        None => eng.zero_object(),
    };
    let manager = if manager.is_empty() {
        "unknown"
    } else {
        manager
    };
    match eng.update_chain(&old_obj, new, &mut managed, manager, now) {
        Ok(()) => eng.set_managed_fields(new, &managed),
        Err(_) => {
            if let (Some(mf), Some(meta)) = (
                old_mf,
                new.get_mut("metadata").and_then(Value::as_object_mut),
            ) {
                meta.insert("managedFields".into(), mf);
            }
        }
    }
}

/// Records a write through the `scale` subresource in the parent's managedFields, as
/// upstream's `ScaleHandler` does: the parent entries owning the replicas field are handed to
/// the Scale's field manager (apiVersion `autoscaling/v1`, subresource `scale`), the update is
/// recorded there, and the result is mapped back onto the parent (`replicas_path`, e.g.
/// `&["spec", "replicas"]`). `parent` describes the parent resource (its schema, apiVersion
/// and kind); `old_parent`/`new_parent` are the stored object and the object with the new
/// replica count. Entries of other apiVersions are dropped, as upstream does.
pub fn record_scale_update(
    parent: &Endpoint,
    old_parent: &Value,
    new_parent: &mut Value,
    replicas_path: &[&str],
    manager: &str,
    now: &str,
) {
    let old_mf = old_parent
        .get("metadata")
        .and_then(|m| m.get("managedFields"))
        .cloned()
        .unwrap_or(Value::Null);
    remove_managed_fields(new_parent);
    let restore = |new_parent: &mut Value| {
        if let Some(Value::Object(m)) = new_parent.get_mut("metadata") {
            if !old_mf.is_null() {
                m.insert("managedFields".into(), old_mf.clone());
            }
        }
    };
    let Ok(parent_managed) = Managed::decode(&old_mf) else {
        restore(new_parent);
        return;
    };
    let path: Vec<Pe> = replicas_path.iter().map(|f| Pe::field(f)).collect();
    let scale_path = [Pe::field("spec"), Pe::field("replicas")];
    const SCALE_VERSION: &str = "autoscaling/v1";
    let mut scale_set = FieldSet::default();
    scale_set.insert(&scale_path);

    // ToSubresource (the ids go through an encode/decode round trip there).
    let mut scale_managed = Managed::default();
    for (id, vs) in &parent_managed.sets {
        if vs.api_version != parent.api_version || !vs.set.has(&path) {
            continue;
        }
        let mut sid = id.clone();
        if sid.op == Op::Update {
            sid.api_version = SCALE_VERSION.into();
        }
        scale_managed.sets.insert(
            sid.clone(),
            VersionedSet {
                set: scale_set.clone(),
                api_version: SCALE_VERSION.into(),
                applied: vs.applied,
            },
        );
        if let Some(t) = parent_managed.times.get(id) {
            scale_managed.times.insert(sid, t.clone());
        }
    }

    // The Scale's own field manager (tracking only objects that already have entries).
    if !scale_managed.sets.is_empty() {
        let scale_schema = Schema::for_gvk("autoscaling", "v1", "Scale");
        let scale_ep = Endpoint {
            schema: &scale_schema,
            api_version: SCALE_VERSION,
            kind: "Scale",
            subresource: Some("scale"),
            reset_fields: &[],
        };
        let replicas = |o: &Value| {
            let mut v = o;
            for f in replicas_path {
                match v.get(*f) {
                    Some(x) => v = x,
                    None => return Value::Null,
                }
            }
            v.clone()
        };
        let scale_of = |o: &Value| serde_json::json!({"spec": {"replicas": replicas(o)}});
        let manager = if manager.is_empty() {
            "unknown"
        } else {
            manager
        };
        let eng = Engine::new(&scale_ep);
        if eng
            .update_chain(
                &scale_of(old_parent),
                &scale_of(new_parent),
                &mut scale_managed,
                manager,
                now,
            )
            .is_err()
        {
            restore(new_parent);
            return;
        }
    }

    // ToParent
    let mut out = Managed::default();
    for (id, vs) in &parent_managed.sets {
        if vs.api_version != parent.api_version {
            continue;
        }
        let time = parent_managed.times.get(id).cloned();
        let keep = if !vs.set.has(&path) || scale_managed.sets.remove(id).is_some() {
            Some(vs.clone())
        } else {
            let mut stripped = FieldSet::default();
            stripped.insert(&path);
            let rest = vs.set.difference(&stripped);
            (!rest.is_empty()).then(|| VersionedSet {
                set: rest,
                api_version: vs.api_version.clone(),
                applied: vs.applied,
            })
        };
        if let Some(k) = keep {
            out.sets.insert(id.clone(), k);
            if let Some(t) = time {
                out.times.insert(id.clone(), t);
            }
        }
    }
    let mut parent_set = FieldSet::default();
    parent_set.insert(&path);
    for (sid, vs) in scale_managed.sets {
        if !vs.set.has(&scale_path) {
            continue;
        }
        if let Some(t) = parent_managed.times.get(&sid) {
            out.times.insert(sid.clone(), t.clone());
        }
        out.sets.insert(
            sid,
            VersionedSet {
                set: parent_set.clone(),
                api_version: parent.api_version.into(),
                applied: vs.applied,
            },
        );
    }
    Engine::new(parent).set_managed_fields(new_parent, &out);
}

// ---------------------------------------------------------------------------------------------
// Path elements and field sets (fieldpath)
// ---------------------------------------------------------------------------------------------

/// A step into a value: a map field, a list-map entry by its keys, a set entry by value, or an
/// atomic list's index.
#[derive(Clone, Debug)]
enum Pe {
    Field(String),
    /// Key fields sorted by name.
    Key(Vec<(String, Value)>),
    Value(Value),
    Index(i64),
}

impl Pe {
    fn rank(&self) -> u8 {
        match self {
            Pe::Field(_) => 0,
            Pe::Key(_) => 1,
            Pe::Value(_) => 2,
            Pe::Index(_) => 3,
        }
    }

    fn field(name: &str) -> Pe {
        Pe::Field(name.to_string())
    }

    /// The `f:`/`k:`/`v:`/`i:` form used in FieldsV1.
    fn serialize(&self) -> String {
        match self {
            Pe::Field(n) => format!("f:{n}"),
            Pe::Key(kv) => {
                let mut s = String::from("k:{");
                for (i, (k, v)) in kv.iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    go_json_string(&mut s, k);
                    s.push(':');
                    go_json(&mut s, v, true);
                }
                s.push('}');
                s
            }
            Pe::Value(v) => {
                let mut s = String::from("v:");
                go_json(&mut s, v, true);
                s
            }
            Pe::Index(i) => format!("i:{i}"),
        }
    }

    fn parse(s: &str) -> Result<Option<Pe>, String> {
        let b = s.as_bytes();
        if b.len() < 2 {
            return Err("key must be 2 characters long:".into());
        }
        if b[1] != b':' {
            return Err(format!("missing colon: {s}"));
        }
        let rest = &s[2..];
        match b[0] {
            b'f' => Ok(Some(Pe::Field(rest.to_string()))),
            b'v' => serde_json::from_str::<Value>(rest)
                .map(|v| Some(Pe::Value(v)))
                .map_err(|e| e.to_string()),
            b'k' => {
                let v: Value = serde_json::from_str(rest).map_err(|e| e.to_string())?;
                let Value::Object(m) = v else {
                    return Err(format!("expected an object of keys: {s}"));
                };
                let mut kv: Vec<(String, Value)> = m.into_iter().collect();
                kv.sort_by(|a, b| a.0.cmp(&b.0));
                Ok(Some(Pe::Key(kv)))
            }
            b'i' => rest
                .parse::<i64>()
                .map(|i| Some(Pe::Index(i)))
                .map_err(|e| e.to_string()),
            _ => Ok(None),
        }
    }
}

impl std::fmt::Display for Pe {
    /// The human-readable form used in conflict messages (`PathElement.String`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pe::Field(n) => write!(f, ".{n}"),
            Pe::Key(kv) => {
                let parts: Vec<String> = kv
                    .iter()
                    .map(|(k, v)| format!("{k}={}", value_to_string(v)))
                    .collect();
                write!(f, "[{}]", parts.join(","))
            }
            Pe::Value(v) => write!(f, "[={}]", value_to_string(v)),
            Pe::Index(i) => write!(f, "[{i}]"),
        }
    }
}

impl Ord for Pe {
    fn cmp(&self, other: &Pe) -> Ordering {
        match (self, other) {
            (Pe::Field(a), Pe::Field(b)) => a.cmp(b),
            (Pe::Key(a), Pe::Key(b)) => cmp_field_list(a, b),
            (Pe::Value(a), Pe::Value(b)) => cmp_value(a, b),
            (Pe::Index(a), Pe::Index(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for Pe {
    fn partial_cmp(&self, other: &Pe) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Pe {
    fn eq(&self, other: &Pe) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Pe {}

fn path_string(path: &[Pe]) -> String {
    path.iter().map(Pe::to_string).collect()
}

/// A set of field paths (`fieldpath.Set`): the paths ending here (`members`) and the subsets
/// under each child.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct FieldSet {
    members: BTreeSet<Pe>,
    children: BTreeMap<Pe, FieldSet>,
}

impl FieldSet {
    fn insert(&mut self, path: &[Pe]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    fn has(&self, path: &[Pe]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.has(rest)),
        }
    }

    fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.values().all(FieldSet::is_empty)
    }

    fn with_prefix(&self, pe: &Pe) -> Option<&FieldSet> {
        self.children.get(pe)
    }

    fn union(&self, o: &FieldSet) -> FieldSet {
        let members = self.members.union(&o.members).cloned().collect();
        let mut children = self.children.clone();
        for (pe, c) in &o.children {
            match children.get_mut(pe) {
                Some(mine) => *mine = mine.union(c),
                None => {
                    children.insert(pe.clone(), c.clone());
                }
            }
        }
        FieldSet { members, children }
    }

    fn intersection(&self, o: &FieldSet) -> FieldSet {
        let members = self.members.intersection(&o.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (pe, c) in &self.children {
            if let Some(oc) = o.children.get(pe) {
                let i = c.intersection(oc);
                if !i.is_empty() {
                    children.insert(pe.clone(), i);
                }
            }
        }
        FieldSet { members, children }
    }

    fn difference(&self, o: &FieldSet) -> FieldSet {
        let members = self.members.difference(&o.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (pe, c) in &self.children {
            match o.children.get(pe) {
                Some(oc) => {
                    let d = c.difference(oc);
                    if !d.is_empty() {
                        children.insert(pe.clone(), d);
                    }
                }
                None => {
                    children.insert(pe.clone(), c.clone());
                }
            }
        }
        FieldSet { members, children }
    }

    /// Removes the paths of `o` and everything below its members.
    fn recursive_difference(&self, o: &FieldSet) -> FieldSet {
        let members = self.members.difference(&o.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (pe, c) in &self.children {
            if o.members.contains(pe) {
                continue;
            }
            match o.children.get(pe) {
                Some(oc) => {
                    let d = c.recursive_difference(oc);
                    if !d.is_empty() {
                        children.insert(pe.clone(), d);
                    }
                }
                None => {
                    children.insert(pe.clone(), c.clone());
                }
            }
        }
        FieldSet { members, children }
    }

    /// All paths: at each level the members first, then the children's paths.
    fn paths(&self) -> Vec<Vec<Pe>> {
        let mut out = Vec::new();
        let mut prefix = Vec::new();
        self.collect_paths(&mut prefix, &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Vec<Pe>, out: &mut Vec<Vec<Pe>>) {
        for m in &self.members {
            let mut p = prefix.clone();
            p.push(m.clone());
            out.push(p);
        }
        for (pe, c) in &self.children {
            prefix.push(pe.clone());
            c.collect_paths(prefix, out);
            prefix.pop();
        }
    }

    /// FieldsV1 JSON, keys in structured-merge-diff's order.
    fn to_fields_v1(&self) -> Value {
        Value::Object(self.emit(false))
    }

    fn emit(&self, include_self: bool) -> Map<String, Value> {
        let mut m = Map::new();
        if include_self && !(self.members.is_empty() && self.children.is_empty()) {
            m.insert(".".into(), Value::Object(Map::new()));
        }
        let mut members = self.members.iter().peekable();
        let mut children = self.children.iter().peekable();
        loop {
            let next_member = members.peek().copied();
            let next_child = children.peek().map(|(pe, _)| *pe);
            match (next_member, next_child) {
                (None, None) => break,
                (Some(mpe), Some(cpe)) if mpe == cpe => {
                    let (_, c) = children.next().unwrap_or((cpe, &EMPTY_SET));
                    m.insert(mpe.serialize(), Value::Object(c.emit(true)));
                    members.next();
                }
                (Some(mpe), Some(cpe)) if mpe < cpe => {
                    m.insert(mpe.serialize(), Value::Object(Map::new()));
                    members.next();
                }
                (Some(mpe), None) => {
                    m.insert(mpe.serialize(), Value::Object(Map::new()));
                    members.next();
                }
                (_, Some(cpe)) => {
                    let (_, c) = children.next().unwrap_or((cpe, &EMPTY_SET));
                    m.insert(cpe.serialize(), Value::Object(c.emit(false)));
                }
            }
        }
        m
    }

    fn from_fields_v1(v: &Value) -> Result<FieldSet, String> {
        let (found, _) = read_fields_v1(v)?;
        Ok(found.unwrap_or_default())
    }
}

static EMPTY_SET: FieldSet = FieldSet {
    members: BTreeSet::new(),
    children: BTreeMap::new(),
};

fn read_fields_v1(v: &Value) -> Result<(Option<FieldSet>, bool), String> {
    let Value::Object(obj) = v else {
        return Err(format!("expected an object, got {v}"));
    };
    let mut children: Option<FieldSet> = None;
    let mut is_member = false;
    for (k, val) in obj {
        if k == "." {
            is_member = true;
            continue;
        }
        let Some(pe) = Pe::parse(k).map_err(|e| format!("parsing key as path element: {e}"))?
        else {
            continue;
        };
        let (grandchildren, child_is_member) = read_fields_v1(val)?;
        if child_is_member {
            children
                .get_or_insert_with(FieldSet::default)
                .members
                .insert(pe.clone());
        }
        if let Some(gc) = grandchildren {
            children
                .get_or_insert_with(FieldSet::default)
                .children
                .insert(pe, gc);
        }
    }
    if children.is_none() {
        is_member = true;
    }
    Ok((children, is_member))
}

// ---------------------------------------------------------------------------------------------
// Value ordering and printing (value package)
// ---------------------------------------------------------------------------------------------

enum Num {
    Int(i64),
    Float(f64),
}

fn num(v: &Value) -> Option<Num> {
    match v {
        Value::Number(n) => match n.as_i64() {
            Some(i) => Some(Num::Int(i)),
            None => n.as_f64().map(Num::Float),
        },
        _ => None,
    }
}

fn float_cmp(a: f64, b: f64) -> Ordering {
    a.partial_cmp(&b).unwrap_or(Ordering::Equal)
}

fn kind_rank(v: &Value) -> u8 {
    match v {
        Value::Number(_) => 0,
        Value::String(_) => 1,
        Value::Bool(_) => 2,
        Value::Array(_) => 3,
        Value::Object(_) => 4,
        Value::Null => 5,
    }
}

/// structured-merge-diff's total order of values (numbers < strings < booleans < lists <
/// maps < null; ints and floats compare numerically).
fn cmp_value(a: &Value, b: &Value) -> Ordering {
    match (num(a), num(b)) {
        (Some(Num::Float(x)), Some(Num::Float(y))) => return float_cmp(x, y),
        (Some(Num::Float(x)), Some(Num::Int(y))) => return float_cmp(x, y as f64),
        (Some(Num::Int(x)), Some(Num::Float(y))) => return float_cmp(x as f64, y),
        (Some(Num::Int(x)), Some(Num::Int(y))) => return x.cmp(&y),
        _ => {}
    }
    let (ra, rb) = (kind_rank(a), kind_rank(b));
    if ra != rb {
        return ra.cmp(&rb);
    }
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (l, r) in x.iter().zip(y.iter()) {
                let c = cmp_value(l, r);
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => cmp_map(x, y),
        _ => Ordering::Equal,
    }
}

fn cmp_map(l: &Map<String, Value>, r: &Map<String, Value>) -> Ordering {
    if l.is_empty() && r.is_empty() {
        return Ordering::Equal;
    }
    let keys: BTreeSet<&String> = l.keys().chain(r.keys()).collect();
    for (i, k) in keys.into_iter().enumerate() {
        let c = if i == l.len() {
            Ordering::Less
        } else if i == r.len() {
            Ordering::Greater
        } else {
            match (l.get(k), r.get(k)) {
                (None, _) => Ordering::Greater,
                (_, None) => Ordering::Less,
                (Some(a), Some(b)) => cmp_value(a, b),
            }
        };
        if c != Ordering::Equal {
            return c;
        }
    }
    Ordering::Equal
}

fn cmp_field_list(a: &[(String, Value)], b: &[(String, Value)]) -> Ordering {
    for (x, y) in a.iter().zip(b.iter()) {
        let c = x.0.cmp(&y.0).then_with(|| cmp_value(&x.1, &y.1));
        if c != Ordering::Equal {
            return c;
        }
    }
    a.len().cmp(&b.len())
}

fn values_equal(a: &Value, b: &Value) -> bool {
    cmp_value(a, b) == Ordering::Equal
}

/// `value.ToString`: how key values appear in conflict paths.
fn value_to_string(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(_) => match num(v) {
            Some(Num::Int(i)) => i.to_string(),
            Some(Num::Float(f)) => go_float_g(f),
            None => String::new(),
        },
        Value::String(s) => go_quote(s),
        Value::Array(a) => {
            let parts: Vec<String> = a.iter().map(value_to_string).collect();
            format!("[{}]", parts.join(","))
        }
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| format!("{k}={}", value_to_string(v)))
            .collect(),
    }
}

/// Go's `%v` of a float64 (`strconv.FormatFloat(f, 'g', -1, 64)`).
fn go_float_g(f: f64) -> String {
    if f == 0.0 || !f.is_finite() {
        return if f.is_nan() {
            "NaN".into()
        } else if f.is_infinite() {
            if f > 0.0 {
                "+Inf".into()
            } else {
                "-Inf".into()
            }
        } else {
            "0".into()
        };
    }
    let e = format!("{f:e}");
    let (mantissa, exp) = e.split_once('e').unwrap_or((e.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        format!("{f}")
    }
}

/// Go's `strconv.Quote`.
fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if is_go_printable(c) => out.push(c),
            c if (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// An approximation of Go's `unicode.IsPrint`.
fn is_go_printable(c: char) -> bool {
    c == ' ' || !(c.is_control() || c.is_whitespace() || ('\u{e000}'..='\u{f8ff}').contains(&c))
}

/// Go's `encoding/json` string encoding (HTML-safe).
fn go_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Go's `encoding/json` of an unstructured value; `sort_keys` as Go sorts map keys.
fn go_json(out: &mut String, v: &Value, sort_keys: bool) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match num(v) {
            Some(Num::Int(i)) => {
                let _ = write!(out, "{i}");
            }
            Some(Num::Float(f)) => out.push_str(&go_json_float(f)),
            None => {
                let _ = write!(out, "{n}");
            }
        },
        Value::String(s) => go_json_string(out, s),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_json(out, x, sort_keys);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            if sort_keys {
                entries.sort_by(|a, b| a.0.cmp(b.0));
            }
            for (i, (k, x)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_json_string(out, k);
                out.push(':');
                go_json(out, x, sort_keys);
            }
            out.push('}');
        }
    }
}

/// Go's `encoding/json` float formatting ('f' between 1e-6 and 1e21, else 'e').
fn go_json_float(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let e = format!("{f:e}");
        let (mantissa, exp) = e.split_once('e').unwrap_or((e.as_str(), "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        format!("{f}")
    }
}

// ---------------------------------------------------------------------------------------------
// Types: schema_meta / structural schema → structured-merge-diff atoms
// ---------------------------------------------------------------------------------------------

/// The relationship of a list, from a property's extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LRel {
    Atomic,
    Set,
    Map(&'static [&'static str]),
    Key(&'static str),
}

/// Field-level overrides: the list relationship and `x-kubernetes-map-type` of a property.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Ext {
    list: Option<LRel>,
    map_atomic: Option<bool>,
}

/// A type reference (`schema.TypeRef`).
#[derive(Clone, Copy, Debug)]
enum Ty<'s> {
    B(Node, Ext),
    Deduced,
    AtomicAny,
    S(&'s SchemaNode),
    UntypedRoot,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sc {
    String,
    Numeric,
    Boolean,
    Untyped,
}

#[derive(Clone, Copy, Debug)]
enum Keys<'s> {
    Static(&'static [&'static str]),
    One(&'static str),
    Owned(&'s [String]),
}

impl Keys<'_> {
    fn names(&self) -> Vec<&str> {
        match self {
            Keys::Static(k) => k.to_vec(),
            Keys::One(k) => vec![*k],
            Keys::Owned(k) => k.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum ListKind<'s> {
    Atomic,
    Set,
    Keyed(Keys<'s>),
}

#[derive(Clone, Copy, Debug)]
struct ListT<'s> {
    elem: Ty<'s>,
    kind: ListKind<'s>,
}

#[derive(Clone, Copy, Debug)]
enum MapKind<'s> {
    Struct(TypeRef),
    Values(Ty<'s>),
    Schema(&'s MapSchema),
    UntypedRoot,
}

#[derive(Clone, Copy, Debug)]
struct MapT<'s> {
    atomic: bool,
    kind: MapKind<'s>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Atom<'s> {
    scalar: Option<Sc>,
    list: Option<ListT<'s>>,
    map: Option<MapT<'s>>,
}

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const RAW_EXTENSION: &str = "io.k8s.apimachinery.pkg.runtime.RawExtension";

fn object_meta_ty<'s>() -> Ty<'s> {
    match sm::definition(OBJECT_META) {
        Some(t) => Ty::B(Node::Type(t), Ext::default()),
        None => Ty::Deduced,
    }
}

impl<'s> MapT<'s> {
    /// The type of a named property.
    fn field(&self, name: &str) -> Option<Ty<'s>> {
        match self.kind {
            MapKind::Struct(t) => t.field(name).map(|f| field_ty(&f)),
            MapKind::Values(_) => None,
            MapKind::Schema(m) => m
                .fields
                .iter()
                .find(|f| f.name == name)
                .map(|f| Ty::S(&f.node)),
            MapKind::UntypedRoot => match name {
                "apiVersion" | "kind" => Some(Ty::B(Node::Scalar(Scalar::String), Ext::default())),
                "metadata" => Some(object_meta_ty()),
                _ => None,
            },
        }
    }

    /// The type of keys that are not properties (`None`: not allowed).
    fn elem(&self) -> Option<Ty<'s>> {
        match self.kind {
            MapKind::Struct(_) => None,
            MapKind::Values(t) => Some(t),
            MapKind::Schema(m) => m.elem.as_deref().map(Ty::S),
            MapKind::UntypedRoot => Some(Ty::Deduced),
        }
    }

    fn lookup(&self, name: &str) -> Option<Ty<'s>> {
        self.field(name).or_else(|| self.elem())
    }

    /// The schema default of a property (for list-map keys missing from an entry).
    fn field_default(&self, name: &str) -> Option<Value> {
        match self.kind {
            MapKind::Struct(t) => KEY_DEFAULTS
                .iter()
                .find(|(d, f, _)| *d == t.name() && *f == name)
                .and_then(|(_, _, v)| serde_json::from_str(v).ok()),
            MapKind::Schema(m) => m
                .fields
                .iter()
                .find(|f| f.name == name)
                .and_then(|f| f.default.clone()),
            _ => None,
        }
    }
}

fn field_ty<'s>(f: &FieldMeta) -> Ty<'s> {
    let list = match f.list_type {
        Some("atomic") => Some(LRel::Atomic),
        Some("set") => Some(LRel::Set),
        Some("map") => Some(LRel::Map(f.list_map_keys)),
        Some(_) => Some(LRel::Atomic),
        None => match f.patch_strategy {
            Some("merge") | Some("merge,retainKeys") => Some(match f.patch_merge_key {
                Some(k) => LRel::Key(k),
                None => LRel::Set,
            }),
            _ => None,
        },
    };
    let map_atomic = match f.map_type {
        Some("atomic") => Some(true),
        Some("granular") => Some(false),
        _ => None,
    };
    Ty::B(f.node(), Ext { list, map_atomic })
}

fn sc_of(s: Scalar) -> Sc {
    match s {
        Scalar::String | Scalar::Bytes => Sc::String,
        Scalar::Int32 | Scalar::Int64 | Scalar::Integer | Scalar::Double | Scalar::Number => {
            Sc::Numeric
        }
        Scalar::Boolean => Sc::Boolean,
        Scalar::DateTime | Scalar::IntOrString | Scalar::Quantity => Sc::Untyped,
    }
}

fn deduced_atom<'s>() -> Atom<'s> {
    Atom {
        scalar: Some(Sc::Untyped),
        list: Some(ListT {
            elem: Ty::AtomicAny,
            kind: ListKind::Atomic,
        }),
        map: Some(MapT {
            atomic: false,
            kind: MapKind::Values(Ty::Deduced),
        }),
    }
}

fn atomic_any_atom<'s>() -> Atom<'s> {
    Atom {
        scalar: Some(Sc::Untyped),
        list: Some(ListT {
            elem: Ty::AtomicAny,
            kind: ListKind::Atomic,
        }),
        map: Some(MapT {
            atomic: true,
            kind: MapKind::Values(Ty::AtomicAny),
        }),
    }
}

fn scalar_atom<'s>(s: Sc) -> Atom<'s> {
    Atom {
        scalar: Some(s),
        ..Atom::default()
    }
}

fn resolve<'s>(ty: Ty<'s>) -> Atom<'s> {
    match ty {
        Ty::B(node, ext) => match node {
            Node::Type(t) => match t.kind() {
                DefKind::Object => Atom {
                    map: Some(MapT {
                        atomic: ext.map_atomic.unwrap_or_else(|| t.is_atomic()),
                        kind: MapKind::Struct(t),
                    }),
                    ..Atom::default()
                },
                DefKind::Opaque if t.name() == RAW_EXTENSION => atomic_any_atom(),
                DefKind::Opaque => deduced_atom(),
                DefKind::Scalar(s) => scalar_atom(sc_of(s)),
            },
            Node::Scalar(s) => scalar_atom(sc_of(s)),
            Node::Array(e) => {
                let kind = match ext.list.unwrap_or(LRel::Atomic) {
                    LRel::Atomic => ListKind::Atomic,
                    LRel::Set => ListKind::Set,
                    LRel::Map(k) => ListKind::Keyed(Keys::Static(k)),
                    LRel::Key(k) => ListKind::Keyed(Keys::One(k)),
                };
                Atom {
                    list: Some(ListT {
                        elem: Ty::B(Node::of_elem(e), Ext::default()),
                        kind,
                    }),
                    ..Atom::default()
                }
            }
            Node::Map(e) => Atom {
                map: Some(MapT {
                    atomic: ext.map_atomic == Some(true),
                    kind: MapKind::Values(Ty::B(Node::of_elem(e), Ext::default())),
                }),
                ..Atom::default()
            },
            Node::Unknown => deduced_atom(),
        },
        Ty::Deduced => deduced_atom(),
        Ty::AtomicAny => atomic_any_atom(),
        Ty::UntypedRoot => Atom {
            map: Some(MapT {
                atomic: false,
                kind: MapKind::UntypedRoot,
            }),
            ..Atom::default()
        },
        Ty::S(node) => match node {
            SchemaNode::Deduced => deduced_atom(),
            SchemaNode::AtomicAny => atomic_any_atom(),
            SchemaNode::Builtin(t) => resolve(Ty::B(Node::Type(*t), Ext::default())),
            SchemaNode::Atom { scalar, list, map } => Atom {
                scalar: scalar.map(|s| match s {
                    ScalarType::String => Sc::String,
                    ScalarType::Numeric => Sc::Numeric,
                    ScalarType::Boolean => Sc::Boolean,
                    ScalarType::Untyped => Sc::Untyped,
                }),
                list: list.as_ref().map(|l| ListT {
                    elem: Ty::S(&l.elem),
                    kind: match &l.list_type {
                        ListType::Atomic => ListKind::Atomic,
                        ListType::Set => ListKind::Set,
                        ListType::Map(k) => ListKind::Keyed(Keys::Owned(k)),
                    },
                }),
                map: map.as_ref().map(|m| MapT {
                    atomic: m.atomic,
                    kind: MapKind::Schema(m),
                }),
            },
        },
    }
}

/// Which part of an atom handles a value (`deduceAtom` + `handleAtom`).
#[derive(Clone, Copy, Debug)]
enum Handler<'s> {
    Scalar(Sc),
    List(ListT<'s>),
    Map(MapT<'s>),
    Invalid,
}

fn pick<'s>(atom: &Atom<'s>, v: Option<&Value>) -> Handler<'s> {
    match v {
        Some(Value::Bool(_) | Value::Number(_) | Value::String(_)) => {
            if let Some(s) = atom.scalar {
                return Handler::Scalar(s);
            }
        }
        Some(Value::Array(_)) => {
            if let Some(l) = atom.list {
                return Handler::List(l);
            }
        }
        Some(Value::Object(_)) => {
            if let Some(m) = atom.map {
                return Handler::Map(m);
            }
        }
        _ => {}
    }
    if let Some(m) = atom.map {
        Handler::Map(m)
    } else if let Some(s) = atom.scalar {
        Handler::Scalar(s)
    } else if let Some(l) = atom.list {
        Handler::List(l)
    } else {
        Handler::Invalid
    }
}

fn convert_openapi(s: &Value, preserve_unknown: bool) -> SchemaNode {
    let preserve = preserve_unknown
        || s.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    let typ = s.get("type").and_then(Value::as_str).unwrap_or("");
    match typ {
        "" => SchemaNode::Atom {
            scalar: Some(ScalarType::Untyped),
            list: Some(openapi_list(s, preserve)),
            map: Some(openapi_object(s, preserve)),
        },
        "object" => SchemaNode::Atom {
            scalar: None,
            list: None,
            map: Some(openapi_object(s, preserve)),
        },
        "array" => SchemaNode::Atom {
            scalar: None,
            list: Some(openapi_list(s, preserve)),
            map: None,
        },
        "integer" | "number" => scalar_node(ScalarType::Numeric),
        "boolean" => scalar_node(ScalarType::Boolean),
        "string" => match s.get("format").and_then(Value::as_str).unwrap_or("") {
            "" | "byte" => scalar_node(ScalarType::String),
            _ => scalar_node(ScalarType::Untyped),
        },
        _ => scalar_node(ScalarType::Untyped),
    }
}

fn scalar_node(s: ScalarType) -> SchemaNode {
    SchemaNode::Atom {
        scalar: Some(s),
        list: None,
        map: None,
    }
}

fn openapi_object(s: &Value, preserve: bool) -> MapSchema {
    let props = s.get("properties").and_then(Value::as_object);
    let mut fields: Vec<StructField> = props
        .map(|p| {
            p.iter()
                .map(|(name, member)| StructField {
                    name: name.clone(),
                    node: convert_openapi(member, preserve),
                    default: member.get("default").cloned(),
                })
                .collect()
        })
        .unwrap_or_default();
    let has_props = props.is_some_and(|p| !p.is_empty());
    let elem = match s.get("additionalProperties") {
        None | Some(Value::Null) => (preserve || !has_props).then(|| Box::new(SchemaNode::Deduced)),
        Some(Value::Bool(true)) => Some(Box::new(SchemaNode::Deduced)),
        Some(Value::Bool(false)) => None,
        Some(ap) => Some(Box::new(convert_openapi(ap, preserve))),
    };
    let atomic = s.get("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic");
    let mut m = MapSchema {
        fields: Vec::new(),
        elem,
        atomic,
    };
    if s.get("x-kubernetes-embedded-resource") == Some(&Value::Bool(true)) {
        m.fields = std::mem::take(&mut fields);
        add_object_meta_fields(&mut m);
    } else {
        m.fields = fields;
    }
    m
}

fn add_object_meta_fields(m: &mut MapSchema) {
    for (name, node) in [
        ("apiVersion", scalar_node(ScalarType::String)),
        ("kind", scalar_node(ScalarType::String)),
    ] {
        if !m.fields.iter().any(|f| f.name == name) {
            m.fields.push(StructField {
                name: name.into(),
                node,
                default: None,
            });
        }
    }
    let meta = match sm::definition(OBJECT_META) {
        Some(t) => SchemaNode::Builtin(t),
        None => SchemaNode::Deduced,
    };
    match m.fields.iter_mut().find(|f| f.name == "metadata") {
        Some(f) => f.node = meta,
        None => m.fields.push(StructField {
            name: "metadata".into(),
            node: meta,
            default: None,
        }),
    }
}

fn openapi_list(s: &Value, preserve: bool) -> ListSchema {
    let ext_str = |k: &str| s.get(k).and_then(Value::as_str);
    let list_type = match ext_str("x-kubernetes-list-type") {
        Some("set") => ListType::Set,
        Some("map") => ListType::Map(
            s.get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|k| k.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
        ),
        Some(_) => ListType::Atomic,
        None => match ext_str("x-kubernetes-patch-strategy") {
            Some("merge") | Some("merge,retainKeys") => {
                match ext_str("x-kubernetes-patch-merge-key") {
                    Some(k) => ListType::Map(vec![k.to_string()]),
                    None => ListType::Set,
                }
            }
            _ => ListType::Atomic,
        },
    };
    let elem = match s.get("items") {
        Some(items @ Value::Object(_)) => convert_openapi(items, preserve),
        _ => SchemaNode::AtomicAny,
    };
    ListSchema {
        elem: Box::new(elem),
        list_type,
    }
}

// ---------------------------------------------------------------------------------------------
// Typed walkers: validate, to field set, merge, compare, remove (typed package)
// ---------------------------------------------------------------------------------------------

/// A validation error: a path (printed) and a message.
type VErr = (String, String);

fn verr(msg: impl Into<String>) -> Vec<VErr> {
    vec![(String::new(), msg.into())]
}

fn with_prefix(mut errs: Vec<VErr>, prefix: &str) -> Vec<VErr> {
    for e in &mut errs {
        e.0.insert_str(0, prefix);
    }
    errs
}

fn format_verrs(errs: &[VErr]) -> String {
    let one = |e: &VErr| {
        if e.0.is_empty() {
            e.1.clone()
        } else {
            format!("{}: {}", e.0, e.1)
        }
    };
    match errs {
        [e] => one(e),
        _ => {
            let mut lines = vec!["errors:".to_string()];
            lines.extend(errs.iter().map(|e| format!("  {}", one(e))));
            lines.join("\n")
        }
    }
}

/// Go's `%#v` of an unstructured value inside `value.Value` (for error messages).
fn go_value_debug(v: &Value) -> String {
    let inner = match v {
        Value::String(s) => go_quote(s),
        Value::Array(_) => format!("[]interface {{}}{}", v),
        Value::Object(_) => format!("map[string]interface {{}}{}", v),
        other => other.to_string(),
    };
    format!("&value.valueUnstructured{{Value:{inner}}}")
}

fn go_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(_) => match num(v) {
            Some(Num::Int(_)) => "int64",
            _ => "float64",
        },
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

fn validate_scalar(t: Sc, v: Option<&Value>, prefix: &str) -> Vec<VErr> {
    let Some(v) = v else { return Vec::new() };
    if v.is_null() {
        return Vec::new();
    }
    let is_scalar = matches!(v, Value::Bool(_) | Value::Number(_) | Value::String(_));
    match t {
        Sc::Numeric if !v.is_number() => verr(format!(
            "{prefix}expected numeric (int or float), got {}",
            go_type_name(v)
        )),
        Sc::String if !v.is_string() => verr(format!(
            "{prefix}expected string, got {}",
            go_value_debug(v)
        )),
        Sc::Boolean if !v.is_boolean() => verr(format!("{prefix}expected boolean, got &{{{v}}}")),
        Sc::Untyped if !is_scalar => verr(format!("{prefix}expected any scalar, got &{{{v}}}")),
        _ => Vec::new(),
    }
}

struct Comparison {
    removed: FieldSet,
    modified: FieldSet,
    added: FieldSet,
}

impl Comparison {
    fn filter(self, ignore: &FieldSet) -> Comparison {
        if ignore.is_empty() {
            return self;
        }
        Comparison {
            removed: self.removed.recursive_difference(ignore),
            modified: self.modified.recursive_difference(ignore),
            added: self.added.recursive_difference(ignore),
        }
    }
}

/// The associative-list path element of a list entry (`listItemToPathElement`).
fn item_pe(list: &ListT, child: &Value) -> Result<Pe, String> {
    match list.kind {
        ListKind::Atomic => Err("invalid indexing of non-associative list".into()),
        ListKind::Keyed(keys) => {
            let Value::Object(m) = child else {
                return Err(if child.is_null() {
                    "associative list with keys may not have a null element".into()
                } else {
                    "associative list with keys may not have non-map elements".into()
                });
            };
            let names = keys.names();
            let elem_map = resolve(list.elem).map;
            let mut kv = Vec::new();
            for k in &names {
                if let Some(v) = m.get(*k) {
                    kv.push((k.to_string(), v.clone()));
                } else if let Some(d) = elem_map.and_then(|em| em.field_default(k)) {
                    kv.push((k.to_string(), d));
                }
            }
            if !names.is_empty() && kv.is_empty() {
                let quoted: Vec<String> = names.iter().map(|n| go_quote(n)).collect();
                return Err(format!(
                    "associative list with keys has an element that omits all key fields [{}] (and doesn't have default values for any key fields)",
                    quoted.join(" ")
                ));
            }
            kv.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(Pe::Key(kv))
        }
        ListKind::Set => match child {
            Value::Object(_) => {
                Err("associative list without keys has an element that's a map type".into())
            }
            Value::Array(_) => Err("not supported: associative list with lists as elements".into()),
            Value::Null => {
                Err("associative list without keys has an element that's an explicit null".into())
            }
            v => Ok(Pe::Value(v.clone())),
        },
    }
}

/// Validates an apply configuration (`ObjectToTyped` without duplicates allowed).
fn validate_value(v: &Value, ty: Ty) -> Vec<VErr> {
    let atom = resolve(ty);
    match pick(&atom, Some(v)) {
        Handler::Invalid => verr("schema error: invalid atom"),
        Handler::Scalar(t) => validate_scalar(t, Some(v), ""),
        Handler::List(l) => {
            let items = match v {
                Value::Array(a) => a,
                Value::Null => return Vec::new(),
                other => return verr(format!("expected list, got &{{{other}}}")),
            };
            let mut errs = Vec::new();
            let mut observed = BTreeSet::new();
            for (i, child) in items.iter().enumerate() {
                let pe = if matches!(l.kind, ListKind::Atomic) {
                    Pe::Index(i as i64)
                } else {
                    match item_pe(&l, child) {
                        Ok(pe) => pe,
                        Err(e) => {
                            errs.extend(verr(format!("element {i}: {e}")));
                            return errs;
                        }
                    }
                };
                if !matches!(l.kind, ListKind::Atomic) && !observed.insert(pe.clone()) {
                    errs.extend(verr(format!("duplicate entries for key {pe}")));
                }
                errs.extend(with_prefix(validate_value(child, l.elem), &pe.to_string()));
            }
            errs
        }
        Handler::Map(m) => {
            let obj = match v {
                Value::Object(o) => o,
                Value::Null => return Vec::new(),
                other => return verr(format!("expected map, got &{{{other}}}")),
            };
            let mut errs = Vec::new();
            for (k, val) in obj {
                let prefix = Pe::field(k).to_string();
                match m.lookup(k) {
                    Some(t) => errs.extend(with_prefix(validate_value(val, t), &prefix)),
                    None => {
                        errs.extend(with_prefix(verr("field not declared in schema"), &prefix));
                        break;
                    }
                }
            }
            errs
        }
    }
}

/// The fields a value sets (`ToFieldSet`). Unknown properties are treated as deduced.
fn to_field_set(v: &Value, ty: Ty, path: &mut Vec<Pe>, set: &mut FieldSet) {
    let atom = resolve(ty);
    match pick(&atom, Some(v)) {
        Handler::Invalid => {}
        Handler::Scalar(_) => set.insert(path),
        Handler::List(l) => {
            if matches!(l.kind, ListKind::Atomic) {
                set.insert(path);
                return;
            }
            let Value::Array(items) = v else { return };
            let pes: Vec<Option<Pe>> = items.iter().map(|c| item_pe(&l, c).ok()).collect();
            let mut seen = BTreeSet::new();
            let mut duplicates = BTreeSet::new();
            for pe in pes.iter().flatten() {
                if !seen.insert(pe.clone()) && duplicates.insert(pe.clone()) {
                    path.push(pe.clone());
                    set.insert(path);
                    path.pop();
                }
            }
            for (child, pe) in items.iter().zip(pes) {
                let Some(pe) = pe else { continue };
                if duplicates.contains(&pe) {
                    continue;
                }
                path.push(pe);
                to_field_set(child, l.elem, path, set);
                set.insert(path);
                path.pop();
            }
        }
        Handler::Map(m) => {
            if m.atomic {
                set.insert(path);
                return;
            }
            let Value::Object(obj) = v else { return };
            for (k, val) in obj {
                let named = m.field(k);
                let t = named.or_else(|| m.elem()).unwrap_or(Ty::Deduced);
                path.push(Pe::field(k));
                to_field_set(val, t, path, set);
                let empty_map = matches!(val, Value::Object(o) if o.is_empty());
                if val.is_null() || empty_map || named.is_none() {
                    set.insert(path);
                }
                path.pop();
            }
        }
    }
}

/// A list's path elements in order, and the entry of each (null for duplicates).
type ListIndex = (Vec<Pe>, BTreeMap<Pe, Value>);

/// Indexes a list's entries by path element; duplicates map to null when allowed.
fn index_list(
    l: &ListT,
    items: Option<&Vec<Value>>,
    allow_duplicates: bool,
) -> Result<ListIndex, Vec<VErr>> {
    let mut pes = Vec::new();
    let mut observed: BTreeMap<Pe, Value> = BTreeMap::new();
    let mut errs = Vec::new();
    for (i, child) in items
        .map(|v| v.as_slice())
        .unwrap_or(&[])
        .iter()
        .enumerate()
    {
        let pe = match item_pe(l, child) {
            Ok(pe) => pe,
            Err(e) => {
                errs.extend(verr(format!("element {i}: {e}")));
                continue;
            }
        };
        if observed.contains_key(&pe) {
            if !allow_duplicates {
                errs.extend(verr(format!("duplicate entries for key {pe}")));
                continue;
            }
            observed.insert(pe.clone(), Value::Null);
        } else {
            observed.insert(pe.clone(), child.clone());
        }
        pes.push(pe);
    }
    if errs.is_empty() {
        Ok((pes, observed))
    } else {
        Err(errs)
    }
}

fn as_list(v: Option<&Value>) -> Option<&Vec<Value>> {
    match v {
        Some(Value::Array(a)) => Some(a),
        _ => None,
    }
}

fn as_map(v: Option<&Value>) -> Option<&Map<String, Value>> {
    match v {
        Some(Value::Object(m)) => Some(m),
        _ => None,
    }
}

/// Merges `rhs` into `lhs` (`TypedValue.Merge` with the keep-RHS rule). `None` is an absent
/// value; `Some(Null)` an explicit null.
fn merge(lhs: Option<&Value>, rhs: Option<&Value>, ty: Ty) -> Result<Option<Value>, Vec<VErr>> {
    if lhs.is_none() && rhs.is_none() {
        return Err(verr("at least one of lhs and rhs must be provided"));
    }
    let atom = resolve(ty);
    let h = pick(&atom, if rhs.is_some() { rhs } else { lhs });
    let leaf = || Ok(rhs.or(lhs).cloned());
    match h {
        Handler::Invalid => Err(verr("schema error: invalid atom")),
        Handler::Scalar(t) => {
            let le = validate_scalar(t, lhs, "lhs: ");
            let re = validate_scalar(t, rhs, "rhs: ");
            if !le.is_empty() && !re.is_empty() {
                return Err(le.into_iter().chain(re).collect());
            }
            leaf()
        }
        Handler::List(l) => {
            let (ll, rl) = (as_list(lhs), as_list(rhs));
            let empty = ll.is_none_or(|x| x.is_empty()) && rl.is_none_or(|x| x.is_empty());
            if matches!(l.kind, ListKind::Atomic) || empty {
                return leaf();
            }
            merge_list(&l, ll, rl)
        }
        Handler::Map(m) => {
            let (lm, rm) = (as_map(lhs), as_map(rhs));
            let empty = lm.is_none_or(|x| x.is_empty()) && rm.is_none_or(|x| x.is_empty());
            if m.atomic || empty {
                return leaf();
            }
            let mut out = Map::new();
            let mut errs = Vec::new();
            let mut visit = |k: &String, lv: Option<&Value>, rv: Option<&Value>| {
                let t = m.lookup(k).unwrap_or(Ty::Deduced);
                match merge(lv, rv, t) {
                    Ok(Some(v)) => {
                        out.insert(k.clone(), v);
                    }
                    Ok(None) => {}
                    Err(e) => errs.extend(with_prefix(e, &Pe::field(k).to_string())),
                }
            };
            if let Some(lm) = lm {
                for (k, lv) in lm {
                    visit(k, Some(lv), rm.and_then(|r| r.get(k)));
                }
            }
            if let Some(rm) = rm {
                for (k, rv) in rm {
                    if lm.is_none_or(|l| !l.contains_key(k)) {
                        visit(k, None, Some(rv));
                    }
                }
            }
            if !errs.is_empty() {
                return Err(errs);
            }
            Ok((!out.is_empty()).then_some(Value::Object(out)))
        }
    }
}

/// Merges the entries of an associative list, keeping the order of both sides
/// (`mergingWalker.visitListItems`).
fn merge_list(
    l: &ListT,
    lhs: Option<&Vec<Value>>,
    rhs: Option<&Vec<Value>>,
) -> Result<Option<Value>, Vec<VErr>> {
    let (rhs_pes, observed_rhs) = index_list(l, rhs, false)?;
    let (lhs_pes, observed_lhs) = index_list(l, lhs, true)?;
    let lhs_items = lhs.map(|v| v.as_slice()).unwrap_or(&[]);
    let mut shared: std::collections::VecDeque<&Pe> = rhs_pes
        .iter()
        .filter(|pe| observed_lhs.contains_key(*pe))
        .collect();
    let mut next_shared = shared.pop_front();
    let mut merged_rhs: BTreeSet<Pe> = BTreeSet::new();
    let mut out = Vec::new();
    let mut errs = Vec::new();
    let mut merge_item =
        |pe: &Pe, lc: Option<&Value>, rc: Option<&Value>, out: &mut Vec<Value>| match merge(
            lc, rc, l.elem,
        ) {
            Ok(Some(v)) => out.push(v),
            Ok(None) => {}
            Err(e) => errs.extend(with_prefix(e, &pe.to_string())),
        };
    let (l_len, r_len) = (lhs_pes.len(), rhs_pes.len());
    let (mut li, mut ri) = (0usize, 0usize);
    while li < l_len || ri < r_len {
        if li < l_len && ri < r_len {
            let pe = &lhs_pes[li];
            if *pe == rhs_pes[ri] {
                merged_rhs.insert(pe.clone());
                merge_item(pe, observed_lhs.get(pe), observed_rhs.get(pe), &mut out);
                li += 1;
                ri += 1;
                next_shared = shared.pop_front();
                continue;
            }
            if observed_rhs.contains_key(pe) && next_shared.is_some_and(|ns| ns != pe) {
                li += 1;
                continue;
            }
        }
        if li < l_len {
            let pe = &lhs_pes[li];
            if !observed_rhs.contains_key(pe) {
                merge_item(pe, lhs_items.get(li), None, &mut out);
                li += 1;
                continue;
            } else if merged_rhs.contains(pe) {
                li += 1;
            }
        }
        if ri < r_len {
            let pe = &rhs_pes[ri];
            merged_rhs.insert(pe.clone());
            merge_item(pe, observed_lhs.get(pe), observed_rhs.get(pe), &mut out);
            ri += 1;
            if next_shared.is_some_and(|ns| ns == pe) {
                next_shared = shared.pop_front();
            }
        }
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    Ok((!out.is_empty()).then_some(Value::Array(out)))
}

/// Compares two values (`TypedValue.Compare`); `lhs` is the old one.
fn compare(
    lhs: Option<&Value>,
    rhs: Option<&Value>,
    ty: Ty,
    path: &mut Vec<Pe>,
    c: &mut Comparison,
) -> Result<(), Vec<VErr>> {
    if lhs.is_none() && rhs.is_none() {
        return Err(verr("at least one of lhs and rhs must be provided"));
    }
    let atom = resolve(ty);
    let h = pick(&atom, if rhs.is_some() { rhs } else { lhs });
    let mut in_leaf = false;
    let mut leaf = |c: &mut Comparison| {
        in_leaf = true;
        match (lhs, rhs) {
            (None, _) => c.added.insert(path),
            (_, None) => c.removed.insert(path),
            (Some(l), Some(r)) => {
                if !values_equal(l, r) {
                    c.modified.insert(path);
                }
            }
        }
    };
    match h {
        Handler::Invalid => return Err(verr("schema error: invalid atom")),
        Handler::Scalar(t) => {
            let le = validate_scalar(t, lhs, "lhs: ");
            let re = validate_scalar(t, rhs, "rhs: ");
            if !le.is_empty() && !re.is_empty() {
                return Err(le.into_iter().chain(re).collect());
            }
            leaf(c);
        }
        Handler::List(l) => {
            let (ll, rl) = (as_list(lhs), as_list(rhs));
            let empty = ll.is_none_or(|x| x.is_empty()) && rl.is_none_or(|x| x.is_empty());
            if matches!(l.kind, ListKind::Atomic) || empty {
                leaf(c);
            } else {
                compare_list(&l, ll, rl, path, c)?;
            }
        }
        Handler::Map(m) => {
            let (lm, rm) = (as_map(lhs), as_map(rhs));
            let empty = lm.is_none_or(|x| x.is_empty()) && rm.is_none_or(|x| x.is_empty());
            if m.atomic || empty {
                leaf(c);
            } else {
                let mut errs = Vec::new();
                let mut visit =
                    |k: &String, lv: Option<&Value>, rv: Option<&Value>, c: &mut Comparison| {
                        let t = m.lookup(k).unwrap_or(Ty::Deduced);
                        path.push(Pe::field(k));
                        if let Err(e) = compare(lv, rv, t, path, c) {
                            errs.extend(with_prefix(e, &Pe::field(k).to_string()));
                        }
                        path.pop();
                    };
                if let Some(lm) = lm {
                    for (k, lv) in lm {
                        visit(k, Some(lv), rm.and_then(|r| r.get(k)), c);
                    }
                }
                if let Some(rm) = rm {
                    for (k, rv) in rm {
                        if lm.is_none_or(|l| !l.contains_key(k)) {
                            visit(k, None, Some(rv), c);
                        }
                    }
                }
                if !errs.is_empty() {
                    return Err(errs);
                }
            }
        }
    }
    if !in_leaf {
        if lhs.is_none() {
            c.added.insert(path);
        } else if rhs.is_none() {
            c.removed.insert(path);
        }
    }
    Ok(())
}

fn compare_list(
    l: &ListT,
    lhs: Option<&Vec<Value>>,
    rhs: Option<&Vec<Value>>,
    path: &mut Vec<Pe>,
    c: &mut Comparison,
) -> Result<(), Vec<VErr>> {
    let mut errs = Vec::new();
    let mut all: Vec<Pe> = Vec::new();
    let mut lvals: BTreeMap<Pe, Vec<&Value>> = BTreeMap::new();
    let mut rvals: BTreeMap<Pe, Vec<&Value>> = BTreeMap::new();
    for (i, child) in lhs.map(|v| v.as_slice()).unwrap_or(&[]).iter().enumerate() {
        match item_pe(l, child) {
            Ok(pe) => {
                let e = lvals.entry(pe.clone()).or_default();
                if e.is_empty() {
                    all.push(pe);
                }
                e.push(child);
            }
            Err(e) => errs.extend(verr(format!("element {i}: {e}"))),
        }
    }
    for (i, child) in rhs.map(|v| v.as_slice()).unwrap_or(&[]).iter().enumerate() {
        match item_pe(l, child) {
            Ok(pe) => {
                let e = rvals.entry(pe.clone()).or_default();
                if e.is_empty() && !lvals.contains_key(&pe) {
                    all.push(pe.clone());
                }
                e.push(child);
            }
            Err(e) => errs.extend(verr(format!("element {i}: {e}"))),
        }
    }
    for pe in all {
        let ll = lvals.get(&pe).map(Vec::as_slice).unwrap_or(&[]);
        let rl = rvals.get(&pe).map(Vec::as_slice).unwrap_or(&[]);
        let mut item = |lv: Option<&Value>, rv: Option<&Value>, c: &mut Comparison| {
            path.push(pe.clone());
            let r = compare(lv, rv, l.elem, path, c);
            path.pop();
            if let Err(e) = r {
                errs.extend(with_prefix(e, &pe.to_string()));
            }
        };
        match (ll.len(), rl.len()) {
            (0, 0) => break,
            (a, b) if a <= 1 && b <= 1 => item(ll.first().copied(), rl.first().copied(), c),
            (a, b) if a >= 2 && b >= 2 => {
                let equal = a == b && ll.iter().zip(rl).all(|(x, y)| values_equal(x, y));
                if !equal {
                    path.push(pe.clone());
                    c.modified.insert(path);
                    path.pop();
                }
            }
            (a, _) if a >= 2 => {
                if let Some(r) = rl.first() {
                    item(None, Some(r), c);
                }
                path.push(pe.clone());
                c.removed.insert(path);
                path.pop();
            }
            _ => {
                if let Some(lv) = ll.first() {
                    item(Some(lv), None, c);
                }
                path.push(pe.clone());
                c.added.insert(path);
                path.pop();
            }
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs)
    }
}

/// Removes the paths of `set` from `v` (`RemoveItems`); `None` when nothing remains (the
/// caller stores a null there, as upstream does).
fn remove_items(v: &Value, set: &FieldSet, ty: Ty) -> Option<Value> {
    let atom = resolve(ty);
    match pick(&atom, Some(v)) {
        Handler::Invalid => None,
        Handler::Scalar(_) => Some(v.clone()),
        Handler::List(l) => {
            let Value::Array(items) = v else { return None };
            if items.is_empty() || matches!(l.kind, ListKind::Atomic) {
                return None;
            }
            let mut out = Vec::new();
            for item in items {
                let Ok(pe) = item_pe(&l, item) else {
                    out.push(item.clone());
                    continue;
                };
                if set.has(std::slice::from_ref(&pe)) {
                    continue;
                }
                match set.with_prefix(&pe).filter(|s| !s.is_empty()) {
                    Some(sub) => out.push(remove_items(item, sub, l.elem).unwrap_or(Value::Null)),
                    None => out.push(item.clone()),
                }
            }
            (!out.is_empty()).then_some(Value::Array(out))
        }
        Handler::Map(m) => {
            let Value::Object(obj) = v else { return None };
            if obj.is_empty() || m.atomic {
                return None;
            }
            let mut out = Map::new();
            for (k, val) in obj {
                let pe = Pe::field(k);
                if set.has(std::slice::from_ref(&pe)) {
                    continue;
                }
                match set.with_prefix(&pe).filter(|s| !s.is_empty()) {
                    Some(sub) => {
                        let t = m.lookup(k).unwrap_or(Ty::Deduced);
                        out.insert(k.clone(), remove_items(val, sub, t).unwrap_or(Value::Null));
                    }
                    None => {
                        out.insert(k.clone(), val.clone());
                    }
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
    }
}

fn remove_items_root(v: &Value, set: &FieldSet, ty: Ty) -> Value {
    remove_items(v, set, ty).unwrap_or(Value::Null)
}

/// Adds the named properties among a set's children as members, so that removing the set
/// removes whole properties (`EnsureNamedFieldsAreMembers`).
fn ensure_named(set: &FieldSet, ty: Option<Ty>) -> FieldSet {
    let atom = ty.map(resolve).unwrap_or_default();
    let mut members = set.members.clone();
    let mut children = BTreeMap::new();
    for (pe, c) in &set.children {
        let cty = match (pe, atom.map, atom.list) {
            (Pe::Field(n), Some(m), _) => {
                if m.field(n).is_some() {
                    members.insert(pe.clone());
                }
                m.lookup(n)
            }
            (Pe::Key(_), _, Some(l)) => Some(l.elem),
            _ => None,
        };
        children.insert(pe.clone(), ensure_named(c, cty));
    }
    FieldSet { members, children }
}

// ---------------------------------------------------------------------------------------------
// Managers (fieldpath.ManagedFields + the apiserver's encoding)
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    Apply,
    Update,
}

/// A manager identifier (`BuildManagerIdentifier`): the apiVersion only counts for updates.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct ManagerId {
    manager: String,
    op: Op,
    api_version: String,
    subresource: String,
}

impl ManagerId {
    fn apply(manager: &str, subresource: Option<&str>) -> ManagerId {
        ManagerId {
            manager: manager.into(),
            op: Op::Apply,
            api_version: String::new(),
            subresource: subresource.unwrap_or("").into(),
        }
    }

    fn update(manager: &str, api_version: &str, subresource: Option<&str>) -> ManagerId {
        ManagerId {
            manager: manager.into(),
            op: Op::Update,
            api_version: api_version.into(),
            subresource: subresource.unwrap_or("").into(),
        }
    }

    /// The JSON identifier upstream keys managers by (and sorts conflicts by).
    fn identifier(&self) -> String {
        let mut s = String::from("{");
        let mut sep = "";
        if !self.manager.is_empty() {
            s.push_str("\"manager\":");
            go_json_string(&mut s, &self.manager);
            sep = ",";
        }
        s.push_str(sep);
        s.push_str(match self.op {
            Op::Apply => "\"operation\":\"Apply\"",
            Op::Update => "\"operation\":\"Update\"",
        });
        if !self.api_version.is_empty() {
            s.push_str(",\"apiVersion\":");
            go_json_string(&mut s, &self.api_version);
        }
        if !self.subresource.is_empty() {
            s.push_str(",\"subresource\":");
            go_json_string(&mut s, &self.subresource);
        }
        s.push('}');
        s
    }

    /// How conflict messages name the manager (`printManager`).
    fn printed(&self) -> String {
        let mut s = go_quote(&self.manager);
        if !self.subresource.is_empty() {
            let _ = write!(s, " with subresource {}", go_quote(&self.subresource));
        }
        if self.op == Op::Update {
            let _ = write!(s, " using {}", self.api_version);
        }
        s
    }
}

#[derive(Clone, Debug, PartialEq)]
struct VersionedSet {
    set: FieldSet,
    api_version: String,
    applied: bool,
}

/// The decoded managedFields: one field set per manager, and the entries' times.
#[derive(Clone, Debug, Default, PartialEq)]
struct Managed {
    sets: BTreeMap<ManagerId, VersionedSet>,
    times: BTreeMap<ManagerId, String>,
}

impl Managed {
    fn decode(v: &Value) -> Result<Managed, String> {
        let mut m = Managed::default();
        let entries = match v {
            Value::Null => return Ok(m),
            Value::Array(a) => a,
            _ => return Err("managedFields must be a list".into()),
        };
        for (i, e) in entries.iter().enumerate() {
            let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("");
            let op = match s("operation") {
                "Apply" => Op::Apply,
                "Update" => Op::Update,
                _ => return Err("operation must be `Apply` or `Update`".into()),
            };
            let api_version = s("apiVersion");
            if api_version.is_empty() {
                return Err("apiVersion must not be empty".into());
            }
            match s("fieldsType") {
                "FieldsV1" => {}
                "" => return Err(format!("missing fieldsType in managed fields entry {i}")),
                other => {
                    return Err(format!(
                        "invalid fieldsType {} in managed fields entry {i}",
                        go_quote(other)
                    ))
                }
            }
            let sub = s("subresource");
            let id = ManagerId {
                manager: s("manager").into(),
                op,
                api_version: if op == Op::Update {
                    api_version.into()
                } else {
                    String::new()
                },
                subresource: sub.into(),
            };
            let set = match e.get("fieldsV1") {
                None | Some(Value::Null) => FieldSet::default(),
                Some(f) => FieldSet::from_fields_v1(f).map_err(|err| {
                    format!(
                        "error decoding versioned set from {}: error decoding set: {err}",
                        id.identifier()
                    )
                })?,
            };
            m.sets.insert(
                id.clone(),
                VersionedSet {
                    set,
                    api_version: api_version.into(),
                    applied: op == Op::Apply,
                },
            );
            match e.get("time").and_then(Value::as_str) {
                Some(t) if !t.is_empty() => {
                    m.times.insert(id, normalize_time(t));
                }
                _ => {
                    m.times.remove(&id);
                }
            }
        }
        Ok(m)
    }

    /// The managedFields list in upstream's order, `None` when there are no managers.
    fn encode(&self, sorted_keys: bool) -> Option<Value> {
        if self.sets.is_empty() {
            return None;
        }
        let mut rows: Vec<(u8, i64, &ManagerId, &VersionedSet, Option<&String>)> = self
            .sets
            .iter()
            .map(|(id, vs)| {
                let op_rank = if vs.applied || id.op == Op::Apply {
                    0
                } else {
                    1
                };
                let time = self.times.get(id);
                let secs = time.and_then(|t| parse_rfc3339(t)).unwrap_or(0);
                (op_rank, secs, id, vs, time)
            })
            .collect();
        rows.sort_by(|a, b| {
            a.0.cmp(&b.0)
                .then(a.1.cmp(&b.1))
                .then_with(|| a.2.manager.cmp(&b.2.manager))
                .then_with(|| a.3.api_version.cmp(&b.3.api_version))
                .then_with(|| a.2.subresource.cmp(&b.2.subresource))
        });
        let entries = rows
            .into_iter()
            .map(|(op_rank, _, id, vs, time)| {
                let mut e = Map::new();
                if !id.manager.is_empty() {
                    e.insert("manager".into(), Value::from(id.manager.clone()));
                }
                e.insert(
                    "operation".into(),
                    Value::from(if op_rank == 0 { "Apply" } else { "Update" }),
                );
                if !vs.api_version.is_empty() {
                    e.insert("apiVersion".into(), Value::from(vs.api_version.clone()));
                }
                if let Some(t) = time {
                    e.insert("time".into(), Value::from(t.clone()));
                }
                e.insert("fieldsType".into(), Value::from("FieldsV1"));
                e.insert("fieldsV1".into(), vs.set.to_fields_v1());
                if !id.subresource.is_empty() {
                    e.insert("subresource".into(), Value::from(id.subresource.clone()));
                }
                let e = Value::Object(e);
                if sorted_keys {
                    sort_keys(e)
                } else {
                    e
                }
            })
            .collect();
        Some(Value::Array(entries))
    }
}

fn sort_keys(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(String, Value)> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sort_keys(v)))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.into_iter().map(sort_keys).collect()),
        other => other,
    }
}

fn is_reset_managed_fields(v: &Value) -> bool {
    match v {
        Value::Array(a) if a.is_empty() => true,
        Value::Array(a) if a.len() == 1 => matches!(&a[0], Value::Object(o) if o.is_empty()),
        _ => false,
    }
}

/// The paths stripped from every manager's set (`stripMetaManager`).
fn strip_set() -> FieldSet {
    let mut s = FieldSet::default();
    s.insert(&[Pe::field("apiVersion")]);
    s.insert(&[Pe::field("kind")]);
    s.insert(&[Pe::field("metadata")]);
    for f in [
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
    ] {
        s.insert(&[Pe::field("metadata"), Pe::field(f)]);
    }
    s
}

fn strip_meta(managed: &mut Managed, id: &ManagerId) {
    if let Some(vs) = managed.sets.get_mut(id) {
        vs.set = vs.set.difference(&strip_set());
        if vs.set.is_empty() {
            managed.sets.remove(id);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The engine: structured-merge-diff's Updater plus the apiserver's manager chain
// ---------------------------------------------------------------------------------------------

enum ApplyFail {
    Conflicts(Vec<(ManagerId, Vec<Pe>)>),
    Invalid(String),
}

struct Engine<'a> {
    ep: &'a Endpoint<'a>,
    ignore: FieldSet,
}

impl<'a> Engine<'a> {
    fn new(ep: &'a Endpoint<'a>) -> Engine<'a> {
        let mut ignore = FieldSet::default();
        for path in ep.reset_fields {
            let p: Vec<Pe> = path.iter().map(|f| Pe::field(f)).collect();
            ignore.insert(&p);
        }
        Engine { ep, ignore }
    }

    fn root(&self) -> Ty<'a> {
        match self.ep.schema {
            Schema::Builtin(t) => Ty::B(Node::Type(*t), Ext::default()),
            Schema::Untyped => Ty::UntypedRoot,
            Schema::Structural(n) => Ty::S(n),
        }
    }

    fn builtin(&self) -> bool {
        matches!(self.ep.schema, Schema::Builtin(_))
    }

    fn validate(&self, v: &Value) -> Vec<VErr> {
        validate_value(v, self.root())
    }

    fn field_set(&self, v: &Value) -> FieldSet {
        let mut set = FieldSet::default();
        to_field_set(v, self.root(), &mut Vec::new(), &mut set);
        set
    }

    fn named(&self, s: &FieldSet) -> FieldSet {
        ensure_named(s, Some(self.root()))
    }

    fn compare(&self, old: &Value, new: &Value) -> Result<Comparison, String> {
        let mut c = Comparison {
            removed: FieldSet::default(),
            modified: FieldSet::default(),
            added: FieldSet::default(),
        };
        compare(Some(old), Some(new), self.root(), &mut Vec::new(), &mut c)
            .map_err(|e| format!("failed to compare objects: {}", format_verrs(&e)))?;
        Ok(c.filter(&self.ignore))
    }

    /// The zero value of the kind as upstream's field manager sees a new object.
    fn zero_object(&self) -> Value {
        let name = match self.ep.schema {
            Schema::Builtin(t) => t.name(),
            _ => return Value::Object(Map::new()),
        };
        ZERO_OBJECTS
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, z)| serde_json::from_str(z).ok())
            .unwrap_or_else(|| {
                let mut m = Map::new();
                m.insert("metadata".into(), Value::Object(Map::new()));
                Value::Object(m)
            })
    }

    fn set_managed_fields(&self, obj: &mut Value, managed: &Managed) {
        let Value::Object(o) = obj else { return };
        let enc = managed.encode(!self.builtin());
        match enc {
            Some(mf) => {
                let meta = o
                    .entry("metadata")
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(m) = meta {
                    m.insert("managedFields".into(), mf);
                }
            }
            None => {
                if let Some(Value::Object(m)) = o.get_mut("metadata") {
                    m.remove("managedFields");
                }
            }
        }
    }

    /// `Updater.update`: takes the fields that changed from the other managers, or reports
    /// them as conflicts.
    fn update_managers(
        &self,
        old: &Value,
        new: &Value,
        managers: &mut BTreeMap<ManagerId, VersionedSet>,
        workflow: Option<&ManagerId>,
        force: bool,
    ) -> Result<Comparison, ApplyFail> {
        let cmp = self.compare(old, new).map_err(ApplyFail::Invalid)?;
        let changed = cmp.modified.union(&cmp.added);
        let mut conflicts: Vec<(ManagerId, FieldSet)> = Vec::new();
        for (id, vs) in managers.iter() {
            if Some(id) == workflow {
                continue;
            }
            let c = vs.set.intersection(&changed);
            if !c.is_empty() {
                conflicts.push((id.clone(), c));
            }
        }
        if !force && !conflicts.is_empty() {
            conflicts.sort_by_key(|(id, _)| id.identifier());
            let list = conflicts
                .into_iter()
                .flat_map(|(id, set)| set.paths().into_iter().map(move |p| (id.clone(), p)))
                .collect();
            return Err(ApplyFail::Conflicts(list));
        }
        for (id, c) in &conflicts {
            if let Some(vs) = managers.get_mut(id) {
                vs.set = vs.set.difference(c);
            }
        }
        if !cmp.removed.is_empty() {
            for (id, vs) in managers.iter_mut() {
                if Some(id) != workflow {
                    vs.set = vs.set.difference(&cmp.removed);
                }
            }
        }
        managers.retain(|_, vs| !vs.set.is_empty());
        Ok(cmp)
    }

    /// `Updater.prune`: removes what the applier applied last time and no longer applies,
    /// unless another manager owns it.
    fn prune(
        &self,
        merged: Value,
        managers: &BTreeMap<ManagerId, VersionedSet>,
        last: Option<&VersionedSet>,
    ) -> Value {
        let Some(last) = last.filter(|l| !l.set.is_empty()) else {
            return merged;
        };
        let root = self.root();
        let pruned = remove_items_root(&merged, &self.named(&last.set), root);
        // addBackOwnedItems
        let mut managed = FieldSet::default();
        for vs in managers.values() {
            managed = managed.union(&vs.set);
        }
        let merged_set = self.named(&self.field_set(&merged));
        let pruned_set = self.named(&self.field_set(&pruned));
        let to_remove = merged_set.difference(&pruned_set.union(&self.named(&managed)));
        let pruned = remove_items_root(&merged, &to_remove, root);
        // addBackDanglingItems
        let pruned_set = self.named(&self.field_set(&pruned));
        let dangling = merged_set
            .difference(&pruned_set)
            .intersection(&self.named(&last.set));
        remove_items_root(&merged, &dangling, root)
    }

    /// `Updater.Apply`: returns the merged object (or `None` when it equals `live`).
    fn smd_apply(
        &self,
        live: &Value,
        config: &Value,
        managers: &mut BTreeMap<ManagerId, VersionedSet>,
        id: &ManagerId,
        force: bool,
    ) -> Result<Option<Value>, ApplyFail> {
        let merged = merge(Some(live), Some(config), self.root())
            .map_err(|e| {
                ApplyFail::Invalid(format!("failed to merge config: {}", format_verrs(&e)))
            })?
            .unwrap_or(Value::Null);
        let last = managers.get(id).cloned();
        let set = self.field_set(config).recursive_difference(&self.ignore);
        managers.insert(
            id.clone(),
            VersionedSet {
                set,
                api_version: self.ep.api_version.into(),
                applied: true,
            },
        );
        let new = self.prune(merged, managers, last.as_ref());
        self.update_managers(live, &new, managers, Some(id), force)?;
        Ok((!values_equal(live, &new)).then_some(new))
    }

    /// The apply chain below the last-applied wrappers: skipNonApplied, buildManagerInfo,
    /// managedFieldsUpdater, stripMeta, structured merge.
    fn apply_chain(
        &self,
        live: &Value,
        mut managed: Managed,
        config: &Value,
        manager: &str,
        force: bool,
        now: &str,
    ) -> Result<(Value, Managed), ApplyFail> {
        if managed.sets.is_empty() {
            let zero = self.zero_object();
            self.update_chain(&zero, live, &mut managed, "before-first-apply", now)
                .map_err(|e| {
                    ApplyFail::Invalid(format!("failed to create manager for existing fields: {e}"))
                })?;
        }
        let id = ManagerId::apply(manager, self.ep.subresource);
        let new = self.smd_apply(live, config, &mut managed.sets, &id, force)?;
        strip_meta(&mut managed, &id);
        let out = match new {
            Some(n) => {
                managed.times.insert(id, now.to_string());
                let mut out = strip_nulls(n);
                fill_zero(&mut out, &self.zero_object());
                out
            }
            None => live.clone(),
        };
        Ok((out, managed))
    }

    /// The update chain: capManagers, buildManagerInfo, managedFieldsUpdater, stripMeta,
    /// structured merge (`Updater.Update` for the pseudo-manager `current-operation`).
    fn update_chain(
        &self,
        old: &Value,
        new: &Value,
        managed: &mut Managed,
        manager: &str,
        now: &str,
    ) -> Result<(), String> {
        let id = ManagerId::update(manager, self.ep.api_version, self.ep.subresource);
        let cmp = match self.update_managers(old, new, &mut managed.sets, None, true) {
            Ok(c) => c,
            Err(ApplyFail::Invalid(e)) => return Err(e),
            Err(ApplyFail::Conflicts(_)) => return Err("unexpected conflicts".into()),
        };
        let current = cmp
            .modified
            .union(&cmp.added)
            .recursive_difference(&self.ignore)
            .difference(&strip_set());
        if !current.is_empty() {
            let set = match managed.sets.get(&id) {
                Some(prev) => current.union(&prev.set),
                None => current,
            };
            managed.sets.insert(
                id.clone(),
                VersionedSet {
                    set,
                    api_version: self.ep.api_version.into(),
                    applied: false,
                },
            );
            managed.times.insert(id, now.to_string());
        }
        cap_update_managers(managed);
        Ok(())
    }

    /// `allowedConflictsFromLastApplied`: the fields of the client-side apply annotation that
    /// still hold their last-applied value in the live object.
    fn allowed_conflicts_from_last_applied(&self, live: &Value) -> Option<FieldSet> {
        let la = live
            .get("metadata")?
            .get("annotations")?
            .get(LAST_APPLIED)?
            .as_str()?;
        if la.is_empty() {
            return None;
        }
        let last: Value = serde_json::from_str(la).ok()?;
        if last.get("apiVersion").and_then(Value::as_str) != Some(self.ep.api_version) {
            return None;
        }
        if !self.validate(&last).is_empty() {
            return None;
        }
        let set = self.field_set(&last);
        let mut c = Comparison {
            removed: FieldSet::default(),
            modified: FieldSet::default(),
            added: FieldSet::default(),
        };
        compare(
            Some(&last),
            Some(live),
            self.root(),
            &mut Vec::new(),
            &mut c,
        )
        .ok()?;
        Some(
            set.difference(&c.modified)
                .difference(&c.added)
                .difference(&c.removed),
        )
    }
}

/// Merges the oldest update entries into `ancient-changes` buckets beyond ten updaters.
fn cap_update_managers(managed: &mut Managed) {
    const MAX_UPDATE_MANAGERS: usize = 10;
    let mut updaters: Vec<ManagerId> = managed
        .sets
        .iter()
        .filter(|(_, vs)| !vs.applied)
        .map(|(id, _)| id.clone())
        .collect();
    if updaters.len() <= MAX_UPDATE_MANAGERS {
        return;
    }
    let secs =
        |id: &ManagerId, m: &Managed| m.times.get(id).and_then(|t| parse_rfc3339(t)).unwrap_or(0);
    updaters.sort_by(|a, b| {
        secs(a, managed)
            .cmp(&secs(b, managed))
            .then_with(|| a.identifier().cmp(&b.identifier()))
    });
    let mut first_of_version: BTreeMap<String, ManagerId> = BTreeMap::new();
    let mut length = updaters.len();
    for id in updaters {
        if length <= MAX_UPDATE_MANAGERS {
            break;
        }
        let Some(vs) = managed.sets.get(&id).cloned() else {
            continue;
        };
        let time = managed.times.get(&id).cloned();
        let bucket = ManagerId::update("ancient-changes", &vs.api_version, None);
        match first_of_version.get(&vs.api_version) {
            Some(first) => {
                if !managed.sets.contains_key(&bucket) {
                    if let Some(s) = managed.sets.remove(first) {
                        managed.sets.insert(bucket.clone(), s);
                    }
                }
                let union = match managed.sets.get(&bucket) {
                    Some(b) => vs.set.union(&b.set),
                    None => vs.set.clone(),
                };
                managed.sets.insert(
                    bucket.clone(),
                    VersionedSet {
                        set: union,
                        api_version: vs.api_version.clone(),
                        applied: false,
                    },
                );
                if id != bucket {
                    managed.sets.remove(&id);
                }
                length -= 1;
                match time {
                    Some(t) => managed.times.insert(bucket, t),
                    None => managed.times.remove(&bucket),
                };
            }
            None => {
                first_of_version.insert(vs.api_version.clone(), id);
            }
        }
    }
}

fn conflicts_to_set(cs: &[(ManagerId, Vec<Pe>)]) -> FieldSet {
    let mut s = FieldSet::default();
    for (_, p) in cs {
        s.insert(p);
    }
    s
}

fn to_conflicts(cs: &[(ManagerId, Vec<Pe>)]) -> Vec<Conflict> {
    cs.iter()
        .map(|(id, p)| Conflict {
            manager: id.printed(),
            field: path_string(p),
            identifier: id.identifier(),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Object helpers
// ---------------------------------------------------------------------------------------------

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

fn without_managed_fields(v: &Value) -> Value {
    let mut v = v.clone();
    remove_managed_fields(&mut v);
    v
}

fn remove_managed_fields(v: &mut Value) {
    if let Some(Value::Object(m)) = v.get_mut("metadata") {
        m.remove("managedFields");
    }
}

/// Drops null-valued properties, as the typed round trip upstream does (removal leaves nulls
/// where a map or list became empty).
fn strip_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}

/// Adds the properties Go always serializes (non-pointer structs, fields without omitempty)
/// that an apply removed, as the typed round trip upstream does.
fn fill_zero(out: &mut Value, zero: &Value) {
    let (Value::Object(o), Value::Object(z)) = (out, zero) else {
        return;
    };
    for (k, zv) in z {
        match o.get_mut(k) {
            None if !zv.is_null() => {
                o.insert(k.clone(), strip_nulls(zv.clone()));
            }
            Some(ov) => fill_zero(ov, zv),
            None => {}
        }
    }
}

fn has_last_applied(obj: &Value) -> bool {
    obj.get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(LAST_APPLIED))
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty())
}

/// The annotation value kubectl would write for `config` (`buildLastApplied`).
fn build_last_applied(config: &Value) -> String {
    let mut c = config.clone();
    if let Some(Value::Object(a)) = c.get_mut("metadata").and_then(|m| m.get_mut("annotations")) {
        a.remove(LAST_APPLIED);
    }
    let mut s = String::new();
    go_json(&mut s, &c, true);
    s.push('\n');
    s
}

/// `SetLastApplied`: drops the annotation rather than exceed the 256 KiB annotation limit.
fn set_last_applied(obj: &mut Value, value: &str) {
    let Some(Value::Object(meta)) = obj.get_mut("metadata") else {
        return;
    };
    let ann = meta
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(a) = ann else { return };
    a.insert(LAST_APPLIED.into(), Value::from(value));
    let total: usize = a
        .iter()
        .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
        .sum();
    if total > 256 * 1024 {
        a.remove(LAST_APPLIED);
    }
}

/// `GroupVersionKind.String()` of an apiVersion and kind.
fn gvk_string(api_version: &str, kind: &str) -> String {
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) if !v.contains('/') => (g, v),
        Some(_) => ("", ""),
        None => ("", api_version),
    };
    format!("{group}/{version}, Kind={kind}")
}

/// Seconds since the epoch of an RFC 3339 time (`2026-11-28T08:51:35Z`, offsets allowed).
fn parse_rfc3339(t: &str) -> Option<i64> {
    let b = t.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    let n = |r: std::ops::Range<usize>| t.get(r).and_then(|s| s.parse::<i64>().ok());
    let (y, mo, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (h, mi, s) = (n(11..13)?, n(14..16)?, n(17..19)?);
    let mut rest = &t[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) => {
            let oh: i64 = o.get(1..3)?.parse().ok()?;
            let om: i64 = o.get(4..6)?.parse().ok()?;
            let sign = if o.starts_with('-') { -1 } else { 1 };
            sign * (oh * 3600 + om * 60)
        }
        _ => return None,
    };
    Some(days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - offset)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// metav1.Time's serialization: RFC 3339 in UTC, whole seconds.
fn normalize_time(t: &str) -> String {
    match parse_rfc3339(t) {
        Some(secs) => {
            let (y, m, d) = civil_from_days(secs.div_euclid(86400));
            let s = secs.rem_euclid(86400);
            format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
                s / 3600,
                s / 60 % 60,
                s % 60
            )
        }
        None => t.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Generated tables
// ---------------------------------------------------------------------------------------------

// Generated by tools/gen_zero.py from the Go types of k8s.io/api, apimachinery meta/v1,
// apiextensions-apiserver v1 and kube-aggregator apiregistration v1 (kinds whose zero value
// is not `{"metadata":{}}`).
static ZERO_OBJECTS: &[(&str, &str)] = &[
    (
        "io.k8s.api.admissionregistration.v1.MutatingAdmissionPolicy",
        r#"{"metadata":{},"spec":{}}"#,
    ),
    (
        "io.k8s.api.admissionregistration.v1.MutatingAdmissionPolicyBinding",
        r#"{"metadata":{},"spec":{}}"#,
    ),
    (
        "io.k8s.api.admissionregistration.v1.ValidatingAdmissionPolicy",
        r#"{"metadata":{},"spec":{},"status":{}}"#,
    ),
    (
        "io.k8s.api.admissionregistration.v1.ValidatingAdmissionPolicyBinding",
        r#"{"metadata":{},"spec":{}}"#,
    ),
    (
        "io.k8s.api.admissionregistration.v1alpha1.MutatingAdmissionPolicy",
        r#"{"metadata":{},"spec":{}}"#,
    ),
    (
        "io.k8s.api.admissionregistration.v1alpha1.MutatingAdmissionPolicyBinding",
        r#"{"metadata":{},"spec":{}}"#,
    ),
    (
        "io.k8s.api.admissionregistration.v1alpha1.ValidatingAdmissionPolicy",
        r#"{"metadata":{},"spec":{},"status":{}}"#,
    ),
    (
        "io.k8s.api.admissionregistration.v1alpha1.ValidatingAdmissionPolicyBinding",
        r#"{"metadata":{},"spec":{}}"#,
    ),
    (
        "io.k8s.api.admissionregistration.v1beta1.MutatingAdmissionPolicy",
        r#"{"metadata":{},"spec":{}}"#,
    ),
    (
        "io.k8s.api.admissionregistration.v1beta1.MutatingAdmissionPolicyBinding",
        r#"{"metadata":{},"spec":{}}"#,
    ),
    (
        "io.k8s.api.admissionregistration.v1beta1.ValidatingAdmissionPolicy",
        r#"{"metadata":{},"spec":{},"status":{}}"#,
    ),
    (
        "io.k8s.api.admissionregistration.v1beta1.ValidatingAdmissionPolicyBinding",
        r#"{"metadata":{},"spec":{}}"#,
    ),
    (
        "io.k8s.api.apiserverinternal.v1alpha1.StorageVersion",
        r#"{"metadata":{},"spec":{},"status":{}}"#,
    ),
    (
        "io.k8s.api.apps.v1.ControllerRevision",
        r#"{"metadata":{},"data":null,"revision":0}"#,
    ),
    (
        "io.k8s.api.apps.v1.DaemonSet",
        r#"{"metadata":{},"spec":{"selector":null,"template":{"metadata":{},"spec":{"containers":null}},"updateStrategy":{}},"status":{"currentNumberScheduled":0,"numberMisscheduled":0,"desiredNumberScheduled":0,"numberReady":0}}"#,
    ),
    (
        "io.k8s.api.apps.v1.Deployment",
        r#"{"metadata":{},"spec":{"selector":null,"template":{"metadata":{},"spec":{"containers":null}},"strategy":{}},"status":{}}"#,
    ),
    (
        "io.k8s.api.apps.v1.ReplicaSet",
        r#"{"metadata":{},"spec":{"selector":null,"template":{"metadata":{},"spec":{"containers":null}}},"status":{"replicas":0}}"#,
    ),
    (
        "io.k8s.api.apps.v1.StatefulSet",
        r#"{"metadata":{},"spec":{"selector":null,"template":{"metadata":{},"spec":{"containers":null}},"serviceName":"","updateStrategy":{}},"status":{"replicas":0,"availableReplicas":0}}"#,
    ),
    (
        "io.k8s.api.apps.v1beta1.ControllerRevision",
        r#"{"metadata":{},"data":null,"revision":0}"#,
    ),
    (
        "io.k8s.api.apps.v1beta1.Deployment",
        r#"{"metadata":{},"spec":{"template":{"metadata":{},"spec":{"containers":null}},"strategy":{}},"status":{}}"#,
    ),
    (
        "io.k8s.api.apps.v1beta1.Scale",
        r#"{"metadata":{},"spec":{},"status":{"replicas":0}}"#,
    ),
    (
        "io.k8s.api.apps.v1beta1.StatefulSet",
        r#"{"metadata":{},"spec":{"template":{"metadata":{},"spec":{"containers":null}},"serviceName":"","updateStrategy":{}},"status":{"replicas":0,"availableReplicas":0}}"#,
    ),
    (
        "io.k8s.api.apps.v1beta2.ControllerRevision",
        r#"{"metadata":{},"data":null,"revision":0}"#,
    ),
    (
        "io.k8s.api.apps.v1beta2.DaemonSet",
        r#"{"metadata":{},"spec":{"selector":null,"template":{"metadata":{},"spec":{"containers":null}},"updateStrategy":{}},"status":{"currentNumberScheduled":0,"numberMisscheduled":0,"desiredNumberScheduled":0,"numberReady":0}}"#,
    ),
    (
        "io.k8s.api.apps.v1beta2.Deployment",
        r#"{"metadata":{},"spec":{"selector":null,"template":{"metadata":{},"spec":{"containers":null}},"strategy":{}},"status":{}}"#,
    ),
    (
        "io.k8s.api.apps.v1beta2.ReplicaSet",
        r#"{"metadata":{},"spec":{"selector":null,"template":{"metadata":{},"spec":{"containers":null}}},"status":{"replicas":0}}"#,
    ),
    (
        "io.k8s.api.apps.v1beta2.Scale",
        r#"{"metadata":{},"spec":{},"status":{"replicas":0}}"#,
    ),
    (
        "io.k8s.api.apps.v1beta2.StatefulSet",
        r#"{"metadata":{},"spec":{"selector":null,"template":{"metadata":{},"spec":{"containers":null}},"serviceName":"","updateStrategy":{}},"status":{"replicas":0,"availableReplicas":0}}"#,
    ),
    (
        "io.k8s.api.authentication.v1.SelfSubjectReview",
        r#"{"metadata":{},"status":{"userInfo":{}}}"#,
    ),
    (
        "io.k8s.api.authentication.v1.TokenRequest",
        r#"{"metadata":{},"spec":{"audiences":null,"expirationSeconds":null,"boundObjectRef":null},"status":{"token":"","expirationTimestamp":null}}"#,
    ),
    (
        "io.k8s.api.authentication.v1.TokenReview",
        r#"{"metadata":{},"spec":{},"status":{"user":{}}}"#,
    ),
    (
        "io.k8s.api.authentication.v1alpha1.SelfSubjectReview",
        r#"{"metadata":{},"status":{"userInfo":{}}}"#,
    ),
    (
        "io.k8s.api.authentication.v1beta1.SelfSubjectReview",
        r#"{"metadata":{},"status":{"userInfo":{}}}"#,
    ),
    (
        "io.k8s.api.authentication.v1beta1.TokenReview",
        r#"{"metadata":{},"spec":{},"status":{"user":{}}}"#,
    ),
    (
        "io.k8s.api.authorization.v1.LocalSubjectAccessReview",
        r#"{"metadata":{},"spec":{},"status":{"allowed":false}}"#,
    ),
    (
        "io.k8s.api.authorization.v1.SelfSubjectAccessReview",
        r#"{"metadata":{},"spec":{},"status":{"allowed":false}}"#,
    ),
    (
        "io.k8s.api.authorization.v1.SelfSubjectRulesReview",
        r#"{"metadata":{},"spec":{},"status":{"resourceRules":null,"nonResourceRules":null,"incomplete":false}}"#,
    ),
    (
        "io.k8s.api.authorization.v1.SubjectAccessReview",
        r#"{"metadata":{},"spec":{},"status":{"allowed":false}}"#,
    ),
    (
        "io.k8s.api.authorization.v1beta1.LocalSubjectAccessReview",
        r#"{"metadata":{},"spec":{},"status":{"allowed":false}}"#,
    ),
    (
        "io.k8s.api.authorization.v1beta1.SelfSubjectAccessReview",
        r#"{"metadata":{},"spec":{},"status":{"allowed":false}}"#,
    ),
    (
        "io.k8s.api.authorization.v1beta1.SelfSubjectRulesReview",
        r#"{"metadata":{},"spec":{},"status":{"resourceRules":null,"nonResourceRules":null,"incomplete":false}}"#,
    ),
    (
        "io.k8s.api.authorization.v1beta1.SubjectAccessReview",
        r#"{"metadata":{},"spec":{},"status":{"allowed":false}}"#,
    ),
    (
        "io.k8s.api.autoscaling.v1.HorizontalPodAutoscaler",
        r#"{"metadata":{},"spec":{"scaleTargetRef":{"kind":"","name":""},"maxReplicas":0},"status":{"currentReplicas":0,"desiredReplicas":0}}"#,
    ),
    (
        "io.k8s.api.autoscaling.v1.Scale",
        r#"{"metadata":{},"spec":{},"status":{"replicas":0}}"#,
    ),
    (
        "io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler",
        r#"{"metadata":{},"spec":{"scaleTargetRef":{"kind":"","name":""},"maxReplicas":0},"status":{"desiredReplicas":0,"currentMetrics":null}}"#,
    ),
    (
        "io.k8s.api.batch.v1.CronJob",
        r#"{"metadata":{},"spec":{"schedule":"","jobTemplate":{"metadata":{},"spec":{"template":{"metadata":{},"spec":{"containers":null}}}}},"status":{}}"#,
    ),
    (
        "io.k8s.api.batch.v1.Job",
        r#"{"metadata":{},"spec":{"template":{"metadata":{},"spec":{"containers":null}}},"status":{}}"#,
    ),
    (
        "io.k8s.api.batch.v1beta1.CronJob",
        r#"{"metadata":{},"spec":{"schedule":"","jobTemplate":{"metadata":{},"spec":{"template":{"metadata":{},"spec":{"containers":null}}}}},"status":{}}"#,
    ),
    (
        "io.k8s.api.certificates.v1.CertificateSigningRequest",
        r#"{"metadata":{},"spec":{"request":null,"signerName":""},"status":{}}"#,
    ),
    (
        "io.k8s.api.certificates.v1.ClusterTrustBundle",
        r#"{"metadata":{},"spec":{"trustBundle":""}}"#,
    ),
    (
        "io.k8s.api.certificates.v1.PodCertificateRequest",
        r#"{"metadata":{},"spec":{"signerName":"","podName":"","podUID":"","serviceAccountName":"","serviceAccountUID":"","nodeName":"","nodeUID":"","stubPKCS10Request":null},"status":{}}"#,
    ),
    (
        "io.k8s.api.certificates.v1alpha1.ClusterTrustBundle",
        r#"{"metadata":{},"spec":{"trustBundle":""}}"#,
    ),
    (
        "io.k8s.api.certificates.v1beta1.CertificateSigningRequest",
        r#"{"metadata":{},"spec":{"request":null},"status":{}}"#,
    ),
    (
        "io.k8s.api.certificates.v1beta1.ClusterTrustBundle",
        r#"{"metadata":{},"spec":{"trustBundle":""}}"#,
    ),
    (
        "io.k8s.api.certificates.v1beta1.PodCertificateRequest",
        r#"{"metadata":{},"spec":{"signerName":"","podName":"","podUID":"","serviceAccountName":"","serviceAccountUID":"","nodeName":"","nodeUID":"","pkixPublicKey":null,"proofOfPossession":null,"stubPKCS10Request":null},"status":{}}"#,
    ),
    (
        "io.k8s.api.coordination.v1.Lease",
        r#"{"metadata":{},"spec":{}}"#,
    ),
    (
        "io.k8s.api.coordination.v1alpha2.LeaseCandidate",
        r#"{"metadata":{},"spec":{"leaseName":"","binaryVersion":""}}"#,
    ),
    (
        "io.k8s.api.coordination.v1beta1.Lease",
        r#"{"metadata":{},"spec":{}}"#,
    ),
    (
        "io.k8s.api.coordination.v1beta1.LeaseCandidate",
        r#"{"metadata":{},"spec":{"leaseName":"","binaryVersion":""}}"#,
    ),
    (
        "io.k8s.api.core.v1.Binding",
        r#"{"metadata":{},"target":{}}"#,
    ),
    (
        "io.k8s.api.core.v1.Event",
        r#"{"metadata":{},"involvedObject":{},"source":{},"firstTimestamp":null,"lastTimestamp":null,"eventTime":null,"reportingComponent":"","reportingInstance":""}"#,
    ),
    (
        "io.k8s.api.core.v1.LimitRange",
        r#"{"metadata":{},"spec":{"limits":null}}"#,
    ),
    (
        "io.k8s.api.core.v1.Namespace",
        r#"{"metadata":{},"spec":{},"status":{}}"#,
    ),
    (
        "io.k8s.api.core.v1.Node",
        r#"{"metadata":{},"spec":{},"status":{"daemonEndpoints":{"kubeletEndpoint":{"Port":0}},"nodeInfo":{"machineID":"","systemUUID":"","bootID":"","kernelVersion":"","osImage":"","containerRuntimeVersion":"","kubeletVersion":"","kubeProxyVersion":"","operatingSystem":"","architecture":""}}}"#,
    ),
    (
        "io.k8s.api.core.v1.PersistentVolume",
        r#"{"metadata":{},"spec":{},"status":{}}"#,
    ),
    (
        "io.k8s.api.core.v1.PersistentVolumeClaim",
        r#"{"metadata":{},"spec":{"resources":{}},"status":{}}"#,
    ),
    (
        "io.k8s.api.core.v1.Pod",
        r#"{"metadata":{},"spec":{"containers":null},"status":{}}"#,
    ),
    (
        "io.k8s.api.core.v1.PodTemplate",
        r#"{"metadata":{},"template":{"metadata":{},"spec":{"containers":null}}}"#,
    ),
    (
        "io.k8s.api.core.v1.RangeAllocation",
        r#"{"metadata":{},"range":"","data":null}"#,
    ),
    (
        "io.k8s.api.core.v1.ReplicationController",
        r#"{"metadata":{},"spec":{},"status":{"replicas":0}}"#,
    ),
    (
        "io.k8s.api.core.v1.ResourceQuota",
        r#"{"metadata":{},"spec":{},"status":{}}"#,
    ),
    (
        "io.k8s.api.core.v1.Service",
        r#"{"metadata":{},"spec":{},"status":{"loadBalancer":{}}}"#,
    ),
    (
        "io.k8s.api.discovery.v1.EndpointSlice",
        r#"{"metadata":{},"addressType":"","endpoints":null,"ports":null}"#,
    ),
    (
        "io.k8s.api.discovery.v1beta1.EndpointSlice",
        r#"{"metadata":{},"addressType":"","endpoints":null,"ports":null}"#,
    ),
    (
        "io.k8s.api.events.v1.Event",
        r#"{"metadata":{},"eventTime":null,"regarding":{},"deprecatedSource":{},"deprecatedFirstTimestamp":null,"deprecatedLastTimestamp":null}"#,
    ),
    (
        "io.k8s.api.events.v1beta1.Event",
        r#"{"metadata":{},"eventTime":null,"regarding":{},"deprecatedSource":{},"deprecatedFirstTimestamp":null,"deprecatedLastTimestamp":null}"#,
    ),
    (
        "io.k8s.api.extensions.v1beta1.DaemonSet",
        r#"{"metadata":{},"spec":{"template":{"metadata":{},"spec":{"containers":null}},"updateStrategy":{}},"status":{"currentNumberScheduled":0,"numberMisscheduled":0,"desiredNumberScheduled":0,"numberReady":0}}"#,
    ),
    (
        "io.k8s.api.extensions.v1beta1.Deployment",
        r#"{"metadata":{},"spec":{"template":{"metadata":{},"spec":{"containers":null}},"strategy":{}},"status":{}}"#,
    ),
    (
        "io.k8s.api.extensions.v1beta1.Ingress",
        r#"{"metadata":{},"spec":{},"status":{"loadBalancer":{}}}"#,
    ),
    (
        "io.k8s.api.extensions.v1beta1.NetworkPolicy",
        r#"{"metadata":{},"spec":{"podSelector":{}}}"#,
    ),
    (
        "io.k8s.api.extensions.v1beta1.ReplicaSet",
        r#"{"metadata":{},"spec":{"template":{"metadata":{},"spec":{"containers":null}}},"status":{"replicas":0}}"#,
    ),
    (
        "io.k8s.api.extensions.v1beta1.Scale",
        r#"{"metadata":{},"spec":{},"status":{"replicas":0}}"#,
    ),
    (
        "io.k8s.api.flowcontrol.v1.FlowSchema",
        r#"{"metadata":{},"spec":{"priorityLevelConfiguration":{"name":""},"matchingPrecedence":0},"status":{}}"#,
    ),
    (
        "io.k8s.api.flowcontrol.v1.PriorityLevelConfiguration",
        r#"{"metadata":{},"spec":{"type":""},"status":{}}"#,
    ),
    (
        "io.k8s.api.flowcontrol.v1beta1.FlowSchema",
        r#"{"metadata":{},"spec":{"priorityLevelConfiguration":{"name":""},"matchingPrecedence":0},"status":{}}"#,
    ),
    (
        "io.k8s.api.flowcontrol.v1beta1.PriorityLevelConfiguration",
        r#"{"metadata":{},"spec":{"type":""},"status":{}}"#,
    ),
    (
        "io.k8s.api.flowcontrol.v1beta2.FlowSchema",
        r#"{"metadata":{},"spec":{"priorityLevelConfiguration":{"name":""},"matchingPrecedence":0},"status":{}}"#,
    ),
    (
        "io.k8s.api.flowcontrol.v1beta2.PriorityLevelConfiguration",
        r#"{"metadata":{},"spec":{"type":""},"status":{}}"#,
    ),
    (
        "io.k8s.api.flowcontrol.v1beta3.FlowSchema",
        r#"{"metadata":{},"spec":{"priorityLevelConfiguration":{"name":""},"matchingPrecedence":0},"status":{}}"#,
    ),
    (
        "io.k8s.api.flowcontrol.v1beta3.PriorityLevelConfiguration",
        r#"{"metadata":{},"spec":{"type":""},"status":{}}"#,
    ),
    (
        "io.k8s.api.imagepolicy.v1alpha1.ImageReview",
        r#"{"metadata":{},"spec":{},"status":{"allowed":false}}"#,
    ),
    (
        "io.k8s.api.lifecycle.v1alpha1.Eviction",
        r#"{"metadata":{},"spec":{"target":{}},"status":{}}"#,
    ),
    (
        "io.k8s.api.lifecycle.v1alpha1.EvictionRequest",
        r#"{"metadata":{},"spec":{"target":{},"requester":"","intent":""},"status":{}}"#,
    ),
    (
        "io.k8s.api.networking.v1.IPAddress",
        r#"{"metadata":{},"spec":{}}"#,
    ),
    (
        "io.k8s.api.networking.v1.Ingress",
        r#"{"metadata":{},"spec":{},"status":{"loadBalancer":{}}}"#,
    ),
    (
        "io.k8s.api.networking.v1.IngressClass",
        r#"{"metadata":{},"spec":{}}"#,
    ),
    (
        "io.k8s.api.networking.v1.NetworkPolicy",
        r#"{"metadata":{},"spec":{"podSelector":{}}}"#,
    ),
    (
        "io.k8s.api.networking.v1.ServiceCIDR",
        r#"{"metadata":{},"spec":{},"status":{}}"#,
    ),
    (
        "io.k8s.api.networking.v1beta1.IPAddress",
        r#"{"metadata":{},"spec":{}}"#,
    ),
    (
        "io.k8s.api.networking.v1beta1.Ingress",
        r#"{"metadata":{},"spec":{},"status":{"loadBalancer":{}}}"#,
    ),
    (
        "io.k8s.api.networking.v1beta1.IngressClass",
        r#"{"metadata":{},"spec":{}}"#,
    ),
    (
        "io.k8s.api.networking.v1beta1.ServiceCIDR",
        r#"{"metadata":{},"spec":{},"status":{}}"#,
    ),
    (
        "io.k8s.api.node.v1.RuntimeClass",
        r#"{"metadata":{},"handler":""}"#,
    ),
    (
        "io.k8s.api.node.v1alpha1.RuntimeClass",
        r#"{"metadata":{},"spec":{"runtimeHandler":""}}"#,
    ),
    (
        "io.k8s.api.node.v1beta1.RuntimeClass",
        r#"{"metadata":{},"handler":""}"#,
    ),
    (
        "io.k8s.api.policy.v1.PodDisruptionBudget",
        r#"{"metadata":{},"spec":{},"status":{"disruptionsAllowed":0,"currentHealthy":0,"desiredHealthy":0,"expectedPods":0}}"#,
    ),
    (
        "io.k8s.api.policy.v1beta1.PodDisruptionBudget",
        r#"{"metadata":{},"spec":{},"status":{"disruptionsAllowed":0,"currentHealthy":0,"desiredHealthy":0,"expectedPods":0}}"#,
    ),
    (
        "io.k8s.api.rbac.v1.ClusterRole",
        r#"{"metadata":{},"rules":null}"#,
    ),
    (
        "io.k8s.api.rbac.v1.ClusterRoleBinding",
        r#"{"metadata":{},"roleRef":{"apiGroup":"","kind":"","name":""}}"#,
    ),
    ("io.k8s.api.rbac.v1.Role", r#"{"metadata":{},"rules":null}"#),
    (
        "io.k8s.api.rbac.v1.RoleBinding",
        r#"{"metadata":{},"roleRef":{"apiGroup":"","kind":"","name":""}}"#,
    ),
    (
        "io.k8s.api.rbac.v1alpha1.ClusterRole",
        r#"{"metadata":{},"rules":null}"#,
    ),
    (
        "io.k8s.api.rbac.v1alpha1.ClusterRoleBinding",
        r#"{"metadata":{},"roleRef":{"apiGroup":"","kind":"","name":""}}"#,
    ),
    (
        "io.k8s.api.rbac.v1alpha1.Role",
        r#"{"metadata":{},"rules":null}"#,
    ),
    (
        "io.k8s.api.rbac.v1alpha1.RoleBinding",
        r#"{"metadata":{},"roleRef":{"apiGroup":"","kind":"","name":""}}"#,
    ),
    (
        "io.k8s.api.rbac.v1beta1.ClusterRole",
        r#"{"metadata":{},"rules":null}"#,
    ),
    (
        "io.k8s.api.rbac.v1beta1.ClusterRoleBinding",
        r#"{"metadata":{},"roleRef":{"apiGroup":"","kind":"","name":""}}"#,
    ),
    (
        "io.k8s.api.rbac.v1beta1.Role",
        r#"{"metadata":{},"rules":null}"#,
    ),
    (
        "io.k8s.api.rbac.v1beta1.RoleBinding",
        r#"{"metadata":{},"roleRef":{"apiGroup":"","kind":"","name":""}}"#,
    ),
    (
        "io.k8s.api.resource.v1.DeviceClass",
        r#"{"metadata":{},"spec":{}}"#,
    ),
    (
        "io.k8s.api.resource.v1.DeviceTaintRule",
        r#"{"metadata":{},"spec":{"taint":{"key":"","effect":""}},"status":{}}"#,
    ),
    (
        "io.k8s.api.resource.v1.ResourceClaim",
        r#"{"metadata":{},"spec":{"devices":{"requests":null}},"status":{}}"#,
    ),
    (
        "io.k8s.api.resource.v1.ResourceClaimTemplate",
        r#"{"metadata":{},"spec":{"metadata":{},"spec":{"devices":{"requests":null}}}}"#,
    ),
    (
        "io.k8s.api.resource.v1.ResourceSlice",
        r#"{"metadata":{},"spec":{"driver":"","pool":{"name":"","generation":0,"resourceSliceCount":0}}}"#,
    ),
    (
        "io.k8s.api.resource.v1alpha3.DeviceTaintRule",
        r#"{"metadata":{},"spec":{"taint":{"key":"","effect":""}},"status":{}}"#,
    ),
    (
        "io.k8s.api.resource.v1alpha3.ResourcePoolStatusRequest",
        r#"{"metadata":{},"spec":{"driver":""}}"#,
    ),
    (
        "io.k8s.api.resource.v1beta1.DeviceClass",
        r#"{"metadata":{},"spec":{}}"#,
    ),
    (
        "io.k8s.api.resource.v1beta1.ResourceClaim",
        r#"{"metadata":{},"spec":{"devices":{"requests":null}},"status":{}}"#,
    ),
    (
        "io.k8s.api.resource.v1beta1.ResourceClaimTemplate",
        r#"{"metadata":{},"spec":{"metadata":{},"spec":{"devices":{"requests":null}}}}"#,
    ),
    (
        "io.k8s.api.resource.v1beta1.ResourceSlice",
        r#"{"metadata":{},"spec":{"driver":"","pool":{"name":"","generation":0,"resourceSliceCount":0}}}"#,
    ),
    (
        "io.k8s.api.resource.v1beta2.DeviceClass",
        r#"{"metadata":{},"spec":{}}"#,
    ),
    (
        "io.k8s.api.resource.v1beta2.DeviceTaintRule",
        r#"{"metadata":{},"spec":{"taint":{"key":"","effect":""}},"status":{}}"#,
    ),
    (
        "io.k8s.api.resource.v1beta2.ResourceClaim",
        r#"{"metadata":{},"spec":{"devices":{"requests":null}},"status":{}}"#,
    ),
    (
        "io.k8s.api.resource.v1beta2.ResourceClaimTemplate",
        r#"{"metadata":{},"spec":{"metadata":{},"spec":{"devices":{"requests":null}}}}"#,
    ),
    (
        "io.k8s.api.resource.v1beta2.ResourceSlice",
        r#"{"metadata":{},"spec":{"driver":"","pool":{"name":"","generation":0,"resourceSliceCount":0}}}"#,
    ),
    (
        "io.k8s.api.scheduling.v1.PriorityClass",
        r#"{"metadata":{},"value":0}"#,
    ),
    (
        "io.k8s.api.scheduling.v1alpha3.CompositePodGroup",
        r#"{"metadata":{},"spec":{"workloadRef":null,"schedulingPolicy":{}},"status":{}}"#,
    ),
    (
        "io.k8s.api.scheduling.v1alpha3.PodGroup",
        r#"{"metadata":{},"spec":{"schedulingPolicy":{}},"status":{}}"#,
    ),
    (
        "io.k8s.api.scheduling.v1alpha3.Workload",
        r#"{"metadata":{},"spec":{"podGroupTemplates":null}}"#,
    ),
    (
        "io.k8s.api.scheduling.v1beta1.PodGroup",
        r#"{"metadata":{},"spec":{"schedulingPolicy":{}},"status":{}}"#,
    ),
    (
        "io.k8s.api.scheduling.v1beta1.PriorityClass",
        r#"{"metadata":{},"value":0}"#,
    ),
    (
        "io.k8s.api.scheduling.v1beta1.Workload",
        r#"{"metadata":{},"spec":{"podGroupTemplates":null}}"#,
    ),
    (
        "io.k8s.api.storage.v1.CSIDriver",
        r#"{"metadata":{},"spec":{}}"#,
    ),
    (
        "io.k8s.api.storage.v1.CSINode",
        r#"{"metadata":{},"spec":{"drivers":null},"status":{}}"#,
    ),
    (
        "io.k8s.api.storage.v1.CSIStorageCapacity",
        r#"{"metadata":{},"storageClassName":""}"#,
    ),
    (
        "io.k8s.api.storage.v1.StorageClass",
        r#"{"metadata":{},"provisioner":""}"#,
    ),
    (
        "io.k8s.api.storage.v1.VolumeAttachment",
        r#"{"metadata":{},"spec":{"attacher":"","source":{},"nodeName":""},"status":{"attached":false}}"#,
    ),
    (
        "io.k8s.api.storage.v1.VolumeAttributesClass",
        r#"{"metadata":{},"driverName":""}"#,
    ),
    (
        "io.k8s.api.storage.v1alpha1.CSIStorageCapacity",
        r#"{"metadata":{},"storageClassName":""}"#,
    ),
    (
        "io.k8s.api.storage.v1alpha1.VolumeAttachment",
        r#"{"metadata":{},"spec":{"attacher":"","source":{},"nodeName":""},"status":{"attached":false}}"#,
    ),
    (
        "io.k8s.api.storage.v1alpha1.VolumeAttributesClass",
        r#"{"metadata":{},"driverName":""}"#,
    ),
    (
        "io.k8s.api.storage.v1beta1.CSIDriver",
        r#"{"metadata":{},"spec":{}}"#,
    ),
    (
        "io.k8s.api.storage.v1beta1.CSINode",
        r#"{"metadata":{},"spec":{"drivers":null},"status":{}}"#,
    ),
    (
        "io.k8s.api.storage.v1beta1.CSIStorageCapacity",
        r#"{"metadata":{},"storageClassName":""}"#,
    ),
    (
        "io.k8s.api.storage.v1beta1.StorageClass",
        r#"{"metadata":{},"provisioner":""}"#,
    ),
    (
        "io.k8s.api.storage.v1beta1.VolumeAttachment",
        r#"{"metadata":{},"spec":{"attacher":"","source":{},"nodeName":""},"status":{"attached":false}}"#,
    ),
    (
        "io.k8s.api.storage.v1beta1.VolumeAttributesClass",
        r#"{"metadata":{},"driverName":""}"#,
    ),
    (
        "io.k8s.api.storagemigration.v1.StorageVersionMigration",
        r#"{"metadata":{},"spec":{"resource":{"group":"","resource":""}},"status":{}}"#,
    ),
    (
        "io.k8s.api.storagemigration.v1beta1.StorageVersionMigration",
        r#"{"metadata":{},"spec":{"resource":{"group":"","resource":""}},"status":{}}"#,
    ),
    (
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
        r#"{"metadata":{},"spec":{"group":"","names":{"plural":"","kind":""},"scope":"","versions":null},"status":{"conditions":null,"acceptedNames":{"plural":"","kind":""},"storedVersions":null}}"#,
    ),
    (
        "io.k8s.kube-aggregator.pkg.apis.apiregistration.v1.APIService",
        r#"{"metadata":{},"spec":{"groupPriorityMinimum":0,"versionPriority":0},"status":{}}"#,
    ),
];

// Generated by tools/gen_key_defaults.py: OpenAPI v3 defaults of associative-list key fields.
static KEY_DEFAULTS: &[(&str, &str, &str)] = &[
    ("io.k8s.api.admissionregistration.v1.MatchCondition", "name", r#""""#),
    ("io.k8s.api.admissionregistration.v1.MutatingWebhook", "name", r#""""#),
    ("io.k8s.api.admissionregistration.v1.ValidatingWebhook", "name", r#""""#),
    ("io.k8s.api.admissionregistration.v1.Variable", "name", r#""""#),
    ("io.k8s.api.apps.v1.DaemonSetCondition", "type", r#""""#),
    ("io.k8s.api.apps.v1.DeploymentCondition", "type", r#""""#),
    ("io.k8s.api.apps.v1.ReplicaSetCondition", "type", r#""""#),
    ("io.k8s.api.apps.v1.StatefulSetCondition", "type", r#""""#),
    ("io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerCondition", "type", r#""""#),
    ("io.k8s.api.certificates.v1.CertificateSigningRequestCondition", "type", r#""""#),
    ("io.k8s.api.core.v1.ComponentCondition", "type", r#""""#),
    ("io.k8s.api.core.v1.Container", "name", r#""""#),
    ("io.k8s.api.core.v1.ContainerPort", "containerPort", r#"0"#),
    ("io.k8s.api.core.v1.ContainerPort", "protocol", r#""TCP""#),
    ("io.k8s.api.core.v1.EnvVar", "name", r#""""#),
    ("io.k8s.api.core.v1.EphemeralContainer", "name", r#""""#),
    ("io.k8s.api.core.v1.HostAlias", "ip", r#""""#),
    ("io.k8s.api.core.v1.LocalObjectReference", "name", r#""""#),
    ("io.k8s.api.core.v1.NamespaceCondition", "type", r#""""#),
    ("io.k8s.api.core.v1.NodeAddress", "type", r#""""#),
    ("io.k8s.api.core.v1.NodeCondition", "type", r#""""#),
    ("io.k8s.api.core.v1.PersistentVolumeClaimCondition", "type", r#""""#),
    ("io.k8s.api.core.v1.PodCondition", "type", r#""""#),
    ("io.k8s.api.core.v1.PodIP", "ip", r#""""#),
    ("io.k8s.api.core.v1.PodResourceClaim", "name", r#""""#),
    ("io.k8s.api.core.v1.PodResourceClaimStatus", "name", r#""""#),
    ("io.k8s.api.core.v1.PodSchedulingGate", "name", r#""""#),
    ("io.k8s.api.core.v1.ReplicationControllerCondition", "type", r#""""#),
    ("io.k8s.api.core.v1.ResourceClaim", "name", r#""""#),
    ("io.k8s.api.core.v1.ResourceHealth", "resourceID", r#""""#),
    ("io.k8s.api.core.v1.ResourceStatus", "name", r#""""#),
    ("io.k8s.api.core.v1.ServicePort", "port", r#"0"#),
    ("io.k8s.api.core.v1.ServicePort", "protocol", r#""TCP""#),
    ("io.k8s.api.core.v1.TopologySpreadConstraint", "topologyKey", r#""""#),
    ("io.k8s.api.core.v1.TopologySpreadConstraint", "whenUnsatisfiable", r#""""#),
    ("io.k8s.api.core.v1.Volume", "name", r#""""#),
    ("io.k8s.api.core.v1.VolumeDevice", "devicePath", r#""""#),
    ("io.k8s.api.core.v1.VolumeMount", "mountPath", r#""""#),
    ("io.k8s.api.core.v1.VolumeMountStatus", "mountPath", r#""""#),
    ("io.k8s.api.resource.v1.AllocatedDeviceStatus", "device", r#""""#),
    ("io.k8s.api.resource.v1.AllocatedDeviceStatus", "driver", r#""""#),
    ("io.k8s.api.resource.v1.AllocatedDeviceStatus", "pool", r#""""#),
    ("io.k8s.api.resource.v1.ResourceClaimConsumerReference", "uid", r#""""#),
    ("io.k8s.api.storage.v1.CSINodeDriver", "name", r#""""#),
    ("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionCondition", "type", r#""""#),
    ("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.ValidationRule", "rule", r#""""#),
    ("io.k8s.apimachinery.pkg.apis.meta.v1.Condition", "type", r#""""#),
    ("io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference", "uid", r#""""#),
    ("io.k8s.kube-aggregator.pkg.apis.apiregistration.v1.APIServiceCondition", "type", r#""""#),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(name: &str) -> Value {
        let path = format!(
            "{}/../../shared/upstream/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap()
    }

    fn yaml(s: &str) -> Value {
        serde_yaml::from_str(s).unwrap()
    }

    fn deployment() -> Schema {
        Schema::for_gvk("apps", "v1", "Deployment")
    }

    fn ep<'a>(schema: &'a Schema, api_version: &'a str, kind: &'a str) -> Endpoint<'a> {
        Endpoint {
            schema,
            api_version,
            kind,
            subresource: None,
            reset_fields: &[],
        }
    }

    /// Drops what varies between runs: uid, resourceVersion, creationTimestamp, generation
    /// and the managedFields times.
    fn normalized(v: &Value) -> Value {
        let mut v = v.clone();
        if let Some(Value::Object(m)) = v.get_mut("metadata") {
            for k in ["uid", "resourceVersion", "creationTimestamp", "generation"] {
                m.remove(k);
            }
            if let Some(Value::Array(entries)) = m.get_mut("managedFields") {
                for e in entries {
                    if let Value::Object(e) = e {
                        e.remove("time");
                    }
                }
            }
        }
        v
    }

    fn managed_fields(v: &Value) -> Value {
        normalized(v)
            .get("metadata")
            .and_then(|m| m.get("managedFields"))
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// Compares JSON text, so the key order (FieldsV1 order) counts too.
    fn assert_same_text(actual: &Value, expected: &Value, what: &str) {
        let a = serde_json::to_string_pretty(actual).unwrap();
        let e = serde_json::to_string_pretty(expected).unwrap();
        assert!(a == e, "{what} differs\n--- actual\n{a}\n--- expected\n{e}");
    }

    fn is_subset(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => x
                .iter()
                .all(|(k, v)| y.get(k).is_some_and(|w| is_subset(v, w))),
            (Value::Array(x), Value::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(v, w)| is_subset(v, w))
            }
            _ => a == b,
        }
    }

    fn request_body(c: &Value) -> Value {
        yaml(c["request"]["body"].as_str().unwrap())
    }

    const NOW: &str = "2026-11-28T09:00:00Z";
    /// The time of the apply captures (all steps ran within one second).
    const CAPTURE_TIME: &str = "2026-11-28T08:51:35Z";

    #[test]
    fn server_side_apply_sequence_matches_upstream() {
        let schema = deployment();
        let ep = ep(&schema, "apps/v1", "Deployment");

        // 01: alice creates by apply.
        let c = upstream("apply/01-alice-create.json");
        let out = apply(&ep, None, &request_body(&c), "alice", false, CAPTURE_TIME).unwrap();
        let expected = &c["response"]["body"];
        assert_same_text(
            &managed_fields(&out),
            &managed_fields(expected),
            "01 managedFields",
        );
        assert_eq!(out["metadata"]["managedFields"][0]["time"], CAPTURE_TIME);
        let mut plain = out.clone();
        remove_managed_fields(&mut plain);
        assert!(is_subset(&plain, expected), "01 object {plain}");

        // 02..06 and 16: replayed from the stored object the previous step left.
        for (step, live, manager, force) in [
            ("02-bob-disjoint", "01-alice-create-get", "bob", false),
            ("04-carol-force", "03-carol-conflict-get", "carol", true),
            (
                "05-alice-drops-fields",
                "04-carol-force-get",
                "alice",
                false,
            ),
            ("06-dave-dryrun", "05-alice-drops-fields-get", "dave", false),
        ] {
            let c = upstream(&format!("apply/{step}.json"));
            let live = upstream(&format!("apply/{live}.json"))["response"]["body"].clone();
            let out = apply(
                &ep,
                Some(&live),
                &request_body(&c),
                manager,
                force,
                CAPTURE_TIME,
            )
            .unwrap();
            let expected = &c["response"]["body"];
            assert_eq!(normalized(&out), normalized(expected), "{step}");
            assert_same_text(&managed_fields(&out), &managed_fields(expected), step);
        }

        // 03: carol conflicts with alice.
        let c = upstream("apply/03-carol-conflict.json");
        let live = upstream("apply/02-bob-disjoint-get.json")["response"]["body"].clone();
        let err = apply(&ep, Some(&live), &request_body(&c), "carol", false, NOW).unwrap_err();
        assert_eq!(err.code(), 409);
        assert_same_text(
            &err.to_status("Deployment", "apps", "ssa-demo"),
            &c["response"]["body"],
            "03 status",
        );

        // 16: duplicate YAML key, the last value wins (the YAML parser here refuses
        // duplicates, so the body is given already decoded).
        let c = upstream("apply/16-fieldValidation-Warn-duplicate-field.json");
        let live = upstream("apply/06-dave-dryrun-get.json")["response"]["body"].clone();
        let body = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "ssa-demo", "labels": {"golden/erin": "b"}}});
        let out = apply(&ep, Some(&live), &body, "erin", false, NOW).unwrap();
        assert_eq!(normalized(&out), normalized(&c["response"]["body"]));
        assert_same_text(
            &managed_fields(&out),
            &managed_fields(&c["response"]["body"]),
            "16",
        );
    }

    #[test]
    fn unknown_fields_fail_like_upstream() {
        let schema = deployment();
        let ep = ep(&schema, "apps/v1", "Deployment");
        let c = upstream("apply/08-fieldValidation-Warn-unknown-field.json");
        let live = upstream("apply/06-dave-dryrun-get.json")["response"]["body"].clone();
        let err = apply(&ep, Some(&live), &request_body(&c), "erin", false, NOW).unwrap_err();
        assert_eq!(err.code(), 500);
        assert_same_text(
            &err.to_status("Deployment", "apps", "ssa-demo"),
            &c["response"]["body"],
            "08 status",
        );
        // A type mismatch is also a typed-patch failure.
        let body = yaml(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\nspec:\n  replicas: two\n",
        );
        let err = apply(&ep, None, &body, "erin", false, NOW).unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed to create typed patch object (/x; apps/v1, Kind=Deployment): .spec.replicas: expected numeric (int or float), got string"
        );
        // Duplicate list-map keys in an apply body.
        let body = yaml("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\nspec:\n  template:\n    spec:\n      containers:\n      - name: a\n      - name: a\n");
        let err = apply(&ep, None, &body, "erin", false, NOW).unwrap_err();
        assert!(
            err.to_string().ends_with(
                ".spec.template.spec.containers: duplicate entries for key [name=\"a\"]"
            ),
            "{err}"
        );
    }

    #[test]
    fn bad_requests() {
        let schema = deployment();
        let ep = ep(&schema, "apps/v1", "Deployment");
        let body = yaml("apiVersion: apps/v2\nkind: Deployment\nmetadata:\n  name: x\n");
        let err = apply(&ep, None, &body, "a", false, NOW).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid object type: apps/v2, Kind=Deployment"
        );
        assert_eq!(
            err.to_status("Deployment", "apps", "x"),
            serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                "status": "Failure", "message": "invalid object type: apps/v2, Kind=Deployment",
                "reason": "BadRequest", "code": 400})
        );
        let body = yaml(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\n  managedFields: []\n",
        );
        let err = apply(&ep, None, &body, "a", false, NOW).unwrap_err();
        assert_eq!(err.to_string(), "metadata.managedFields must be nil");
        let err = apply(&ep, None, &Value::from("x"), "a", false, NOW).unwrap_err();
        assert_eq!(err.code(), 400);
        let mut live = upstream("apply/01-alice-create-get.json")["response"]["body"].clone();
        live["metadata"]["managedFields"][0]["operation"] = Value::from("Patch");
        let body = yaml("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: ssa-demo\n");
        let err = apply(&ep, Some(&live), &body, "a", false, NOW).unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed to decode managed fields: operation must be `Apply` or `Update`"
        );
    }

    #[test]
    fn fields_v1_round_trips_every_capture() {
        let mut n = 0;
        for dir in ["apply", "patch", "defaults", "subresources"] {
            let path = format!("{}/../../shared/upstream/{dir}", env!("CARGO_MANIFEST_DIR"));
            for entry in std::fs::read_dir(&path).unwrap() {
                let p = entry.unwrap().path();
                let c: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
                let Some(mf) = c["response"]["body"]["metadata"]["managedFields"].as_array() else {
                    continue;
                };
                let sorted = c["response"]["body"]["apiVersion"]
                    .as_str()
                    .is_some_and(|a| a.contains(".example.com"));
                for e in mf {
                    let set = FieldSet::from_fields_v1(&e["fieldsV1"]).unwrap();
                    let mut back = set.to_fields_v1();
                    if sorted {
                        back = sort_keys(back);
                    }
                    assert_same_text(&back, &e["fieldsV1"], &p.display().to_string());
                    n += 1;
                }
            }
        }
        assert!(n > 40, "{n}");
    }

    /// POST creates recorded as Update entries: every defaults capture.
    #[test]
    fn update_entries_of_creates_match_upstream() {
        let crd = upstream("defaults/customresourcedefinition.json");
        let widget_schema = Schema::from_crd_openapi_v3(
            &crd["request"]["body"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"],
        );
        let dir = format!(
            "{}/../../shared/upstream/defaults",
            env!("CARGO_MANIFEST_DIR")
        );
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            let c: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            if c["request"]["method"] != "POST" {
                continue;
            }
            let body = &c["response"]["body"];
            let Some(expected) = body["metadata"].get("managedFields") else {
                continue;
            };
            let api_version = body["apiVersion"].as_str().unwrap();
            let kind = body["kind"].as_str().unwrap();
            let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
            let schemas = if kind == "Widget" {
                vec![widget_schema.clone(), Schema::Untyped]
            } else {
                let s = Schema::for_gvk(group, version, kind);
                assert!(matches!(s, Schema::Builtin(_)), "{kind}");
                vec![s]
            };
            for schema in schemas {
                let mut new = body.clone();
                remove_managed_fields(&mut new);
                // Drop what mutating admission adds after the field manager ran.
                if kind == "PersistentVolumeClaim" {
                    new["metadata"]
                        .as_object_mut()
                        .unwrap()
                        .remove("finalizers");
                }
                if kind == "Node" {
                    new["spec"].as_object_mut().unwrap().remove("taints");
                }
                if kind == "Job" {
                    // Selector and labels generated by the strategy's PrepareForCreate.
                    new["metadata"].as_object_mut().unwrap().remove("labels");
                    new["spec"].as_object_mut().unwrap().remove("selector");
                    new["spec"]["template"]["metadata"]
                        .as_object_mut()
                        .unwrap()
                        .remove("labels");
                }
                if kind == "Namespace" {
                    // Set by the strategy's PrepareForCreate.
                    new.as_object_mut().unwrap().remove("spec");
                }
                if kind == "Service" {
                    // Allocated by the service REST storage after the field manager ran.
                    let requested = &c["request"]["body"]["spec"];
                    let spec = new["spec"].as_object_mut().unwrap();
                    for f in ["clusterIPs", "ipFamilies", "ipFamilyPolicy", "clusterIP"] {
                        if requested.get(f).is_none() {
                            spec.remove(f);
                        }
                    }
                    for p in spec["ports"].as_array_mut().unwrap() {
                        p.as_object_mut().unwrap().remove("nodePort");
                    }
                }
                if kind == "Pod" {
                    let spec = new["spec"].as_object_mut().unwrap();
                    for f in [
                        "priority",
                        "preemptionPolicy",
                        "serviceAccount",
                        "serviceAccountName",
                        "tolerations",
                        "volumes",
                    ] {
                        spec.remove(f);
                    }
                    for c in spec["containers"].as_array_mut().unwrap() {
                        c.as_object_mut().unwrap().remove("volumeMounts");
                    }
                }
                let ep = Endpoint {
                    schema: &schema,
                    api_version,
                    kind,
                    subresource: None,
                    reset_fields: &[&["status"]],
                };
                record_update(
                    &ep,
                    None,
                    &mut new,
                    "golden-capture",
                    "2026-11-28T08:50:49Z",
                );
                let mut expected_obj = body.clone();
                if let Value::Array(es) = &mut expected_obj["metadata"]["managedFields"] {
                    for e in es {
                        e["time"] = Value::from("2026-11-28T08:50:49Z");
                    }
                }
                assert_same_text(
                    &new["metadata"]["managedFields"],
                    &expected_obj["metadata"]["managedFields"],
                    &p.display().to_string(),
                );
                assert!(expected.is_array());
                checked += 1;
            }
        }
        assert!(checked >= 25, "{checked}");
    }

    #[test]
    fn client_side_apply_update_entries_match_upstream() {
        let schema = deployment();
        let ep = ep(&schema, "apps/v1", "Deployment");
        // First `kubectl apply`: POST.
        let c = upstream("patch/kubectl-apply-1-post.json");
        let mut new = c["response"]["body"].clone();
        remove_managed_fields(&mut new);
        record_update(&ep, None, &mut new, "kubectl-client-side-apply", NOW);
        assert_same_text(
            &managed_fields(&new),
            &managed_fields(&c["response"]["body"]),
            "kubectl apply create",
        );
        // Second `kubectl apply`: strategic merge patch; the patched object carries the
        // stored managedFields.
        let old = upstream("patch/kubectl-apply-2-get.json")["response"]["body"].clone();
        let c = upstream("patch/kubectl-apply-2-patch.json");
        let mut new = c["response"]["body"].clone();
        new["metadata"]["managedFields"] = old["metadata"]["managedFields"].clone();
        record_update(&ep, Some(&old), &mut new, "kubectl-client-side-apply", NOW);
        assert_same_text(
            &managed_fields(&new),
            &managed_fields(&c["response"]["body"]),
            "kubectl apply patch",
        );
        assert_eq!(new["metadata"]["managedFields"][0]["time"], NOW);
        // The same patch again changes nothing: the time stays.
        let again = new.clone();
        let mut new2 = new.clone();
        record_update(
            &ep,
            Some(&again),
            &mut new2,
            "kubectl-client-side-apply",
            "2030-01-01T00:00:00Z",
        );
        assert_eq!(new2, again);
    }

    #[test]
    fn status_subresource_update_is_its_own_entry() {
        let schema = Schema::for_gvk("", "v1", "Node");
        let ep = Endpoint {
            schema: &schema,
            api_version: "v1",
            kind: "Node",
            subresource: Some("status"),
            reset_fields: &[&["spec"], &["metadata"]],
        };
        let old = upstream("defaults/node.json")["response"]["body"].clone();
        let c = upstream("defaults/node-status-patch.json");
        let mut new = c["response"]["body"].clone();
        // A client-sent managedFields is ignored through a subresource.
        new["metadata"]["managedFields"] = Value::Array(vec![]);
        record_update(
            &ep,
            Some(&old),
            &mut new,
            "golden-capture",
            "2026-11-28T08:50:49Z",
        );
        assert_same_text(
            &new["metadata"]["managedFields"],
            &c["response"]["body"]["metadata"]["managedFields"],
            "node status",
        );
    }

    #[test]
    fn client_side_to_server_side_apply_upgrade() {
        let schema = deployment();
        let ep = ep(&schema, "apps/v1", "Deployment");
        let live = upstream("patch/kubectl-apply-2-patch.json")["response"]["body"].clone();
        let last: Value = serde_json::from_str(
            live["metadata"]["annotations"][LAST_APPLIED]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        // The same file applied server-side, with a new image.
        let mut config = last.clone();
        config["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("annotations");
        config["spec"]["template"]["spec"]["containers"][0]["image"] = Value::from("nginx:1.28");

        // Another manager conflicts with kubectl-client-side-apply...
        let err = apply(&ep, Some(&live), &config, "someone", false, NOW).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.template.spec.containers[name=\"app\"].image"
        );

        // ...but `kubectl` takes the fields it applied client-side over.
        let out = apply(&ep, Some(&live), &config, "kubectl", false, NOW).unwrap();
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx:1.28"
        );
        let mf = out["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(mf.len(), 2);
        assert_eq!(mf[0]["manager"], "kubectl");
        assert_eq!(mf[0]["operation"], "Apply");
        let kubectl = FieldSet::from_fields_v1(&mf[0]["fieldsV1"]).unwrap();
        let csa = FieldSet::from_fields_v1(&mf[1]["fieldsV1"]).unwrap();
        let image = [
            Pe::field("spec"),
            Pe::field("template"),
            Pe::field("spec"),
            Pe::field("containers"),
            Pe::Key(vec![("name".into(), Value::from("app"))]),
            Pe::field("image"),
        ];
        assert!(kubectl.has(&image) && !csa.has(&image));
        assert!(csa.has(&[Pe::field("spec"), Pe::field("progressDeadlineSeconds")]));
        // Nothing was lost: the sidecar, env entries, labels are all there.
        let mut expected = live.clone();
        expected["spec"]["template"]["spec"]["containers"][0]["image"] = Value::from("nginx:1.28");
        let mut new_last = config.clone();
        new_last["metadata"]["annotations"] = Value::Object(Map::new());
        let _ = new_last;
        let got_last: Value = serde_json::from_str(
            out["metadata"]["annotations"][LAST_APPLIED]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            got_last, config,
            "last-applied follows the server-side config"
        );
        let mut o = normalized(&out);
        let mut e = normalized(&expected);
        remove_managed_fields(&mut o);
        remove_managed_fields(&mut e);
        o["metadata"]["annotations"]
            .as_object_mut()
            .unwrap()
            .remove(LAST_APPLIED);
        e["metadata"]["annotations"]
            .as_object_mut()
            .unwrap()
            .remove(LAST_APPLIED);
        assert_eq!(o, e);

        // A field changed by someone else since the last client-side apply stays a conflict.
        let mut live2 = live.clone();
        live2["spec"]["replicas"] = Value::from(3);
        let err = apply(&ep, Some(&live2), &config, "kubectl", false, NOW).unwrap_err();
        let ApplyError::Conflicts(cs) = &err else {
            panic!("{err}")
        };
        assert_eq!(cs.len(), 1, "{err}");
        assert_eq!(cs[0].field, ".spec.replicas");
    }

    fn base_config() -> Value {
        yaml(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: prop
  labels: {a: "1", b: "2"}
  annotations: {x: "1", y: "2"}
  finalizers: [f1, f2]
spec:
  replicas: 2
  minReadySeconds: 5
  selector:
    matchLabels: {app: prop}
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}
  template:
    metadata:
      labels: {app: prop}
    spec:
      nodeSelector: {disk: ssd}
      containers:
      - name: app
        image: nginx
        args: [a, b]
        env:
        - {name: E1, value: "1"}
        - {name: E2, value: "2"}
        ports:
        - {containerPort: 80}
        - {containerPort: 53, protocol: UDP}
        resources:
          limits: {cpu: "1"}
      - name: side
        image: busybox
      volumes:
      - name: v
        emptyDir: {}
"#,
        )
    }

    /// Every path of `v` down to leaves (object keys and list indexes).
    fn leaf_paths(v: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, c) in m {
                    prefix.push(k.clone());
                    out.push(prefix.clone());
                    leaf_paths(c, prefix, out);
                    prefix.pop();
                }
            }
            Value::Array(a) => {
                for (i, c) in a.iter().enumerate() {
                    prefix.push(i.to_string());
                    out.push(prefix.clone());
                    leaf_paths(c, prefix, out);
                    prefix.pop();
                }
            }
            _ => {}
        }
    }

    fn remove_path(v: &mut Value, path: &[String]) {
        let Some((last, parents)) = path.split_last() else {
            return;
        };
        let mut cur = v;
        for p in parents {
            cur = match cur {
                Value::Object(m) => m.get_mut(p).unwrap(),
                Value::Array(a) => &mut a[p.parse::<usize>().unwrap()],
                _ => return,
            };
        }
        match cur {
            Value::Object(m) => {
                m.remove(last);
            }
            Value::Array(a) => {
                a.remove(last.parse::<usize>().unwrap());
            }
            _ => {}
        }
    }

    #[test]
    fn applying_twice_is_a_no_op() {
        let schema = deployment();
        let ep = ep(&schema, "apps/v1", "Deployment");
        let config = base_config();
        let first = apply(&ep, None, &config, "me", false, NOW).unwrap();
        let second = apply(
            &ep,
            Some(&first),
            &config,
            "me",
            false,
            "2030-01-01T00:00:00Z",
        )
        .unwrap();
        assert_eq!(first, second);
        // Also with a second manager and an Update entry around.
        let mut updated = second.clone();
        updated["spec"]["paused"] = Value::from(true);
        record_update(&ep, Some(&second), &mut updated, "kubectl-edit", NOW);
        let other = yaml(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: prop\n  labels: {c: '3'}\n",
        );
        let third = apply(&ep, Some(&updated), &other, "you", false, NOW).unwrap();
        let fourth = apply(
            &ep,
            Some(&third),
            &config,
            "me",
            false,
            "2031-01-01T00:00:00Z",
        )
        .unwrap();
        assert_eq!(third, fourth);
        let fifth = apply(
            &ep,
            Some(&fourth),
            &other,
            "you",
            false,
            "2031-01-01T00:00:00Z",
        )
        .unwrap();
        assert_eq!(fourth, fifth);
    }

    #[test]
    fn reapplying_a_subset_removes_exactly_the_dropped_fields() {
        let schema = deployment();
        let ep = ep(&schema, "apps/v1", "Deployment");
        let config = base_config();
        let full = apply(&ep, None, &config, "me", false, NOW).unwrap();
        let mut paths = Vec::new();
        leaf_paths(&config, &mut Vec::new(), &mut paths);
        let keep = |p: &Vec<String>| {
            !(p.len() <= 2 && p[0] != "spec" && p[0] != "metadata"
                || p == &["metadata".to_string(), "name".to_string()])
        };
        let mut subsets: Vec<Value> = Vec::new();
        for p in paths.iter().filter(|p| keep(p) && p.len() > 1) {
            let mut c = config.clone();
            remove_path(&mut c, p);
            subsets.push(c);
        }
        // Some multi-field drops (deterministic pseudo-random choices).
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..40 {
            let mut c = config.clone();
            for _ in 0..3 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let mut ps = Vec::new();
                leaf_paths(&c, &mut Vec::new(), &mut ps);
                let ps: Vec<_> = ps.into_iter().filter(|p| keep(p) && p.len() > 1).collect();
                if ps.is_empty() {
                    break;
                }
                remove_path(&mut c, &ps[(seed % ps.len() as u64) as usize]);
            }
            subsets.push(c);
        }
        assert!(subsets.len() > 60);
        // Go drops empty maps and lists of omitempty fields; compare modulo those.
        fn drop_empty(v: &Value) -> Value {
            match v {
                Value::Object(m) => Value::Object(
                    m.iter()
                        .map(|(k, v)| (k.clone(), drop_empty(v)))
                        .filter(|(_, v)| !matches!(v, Value::Array(a) if a.is_empty()))
                        .filter(|(_, v)| !matches!(v, Value::Object(o) if o.is_empty()))
                        .collect(),
                ),
                Value::Array(a) => Value::Array(a.iter().map(drop_empty).collect()),
                other => other.clone(),
            }
        }
        for subset in subsets {
            let after = apply(&ep, Some(&full), &subset, "me", false, NOW).unwrap();
            let fresh = apply(&ep, None, &subset, "me", false, NOW).unwrap();
            let (mut a, mut f) = (after.clone(), fresh.clone());
            remove_managed_fields(&mut a);
            remove_managed_fields(&mut f);
            assert_eq!(drop_empty(&a), drop_empty(&f), "subset {subset}");
            assert_eq!(
                managed_fields(&after),
                managed_fields(&fresh),
                "subset {subset}"
            );
        }
    }

    #[test]
    fn two_managers_own_entries_of_one_list_map() {
        let schema = deployment();
        let ep = ep(&schema, "apps/v1", "Deployment");
        let alice = |image: &str| {
            yaml(&format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\nspec:\n  template:\n    spec:\n      containers:\n      - name: a\n        image: {image}\n        env:\n        - {{name: A, value: x}}\n"))
        };
        let bob = yaml("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\nspec:\n  template:\n    spec:\n      containers:\n      - name: b\n        image: b\n      - name: a\n        env:\n        - {name: B, value: y}\n");
        let o1 = apply(&ep, None, &alice("a:1"), "alice", false, NOW).unwrap();
        let o2 = apply(&ep, Some(&o1), &bob, "bob", false, NOW).unwrap();
        let names = |o: &Value| -> Vec<String> {
            o["spec"]["template"]["spec"]["containers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["name"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(names(&o2), ["b", "a"]);
        let env_a = |o: &Value| -> Vec<String> {
            o["spec"]["template"]["spec"]["containers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["name"] == "a")
                .map(|c| {
                    c["env"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|e| e["name"].as_str().unwrap().to_string())
                        .collect()
                })
                .unwrap()
        };
        assert_eq!(env_a(&o2), ["A", "B"]);
        // alice changes her container: bob's entries survive.
        let o3 = apply(&ep, Some(&o2), &alice("a:2"), "alice", false, NOW).unwrap();
        assert_eq!(names(&o3), ["b", "a"]);
        assert_eq!(env_a(&o3), ["A", "B"]);
        // bob stops applying: his container and env var go, alice's stay.
        let bob_empty = yaml("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n");
        let o4 = apply(&ep, Some(&o3), &bob_empty, "bob", false, NOW).unwrap();
        assert_eq!(names(&o4), ["a"]);
        assert_eq!(env_a(&o4), ["A"]);
        assert_eq!(o4["metadata"]["managedFields"].as_array().unwrap().len(), 1);
        // alice dropping container `a` while bob still shares it keeps it.
        let o5 = apply(&ep, Some(&o3), &bob_empty, "carol", false, NOW).unwrap();
        let none =
            yaml("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n  labels: {x: y}\n");
        let o6 = apply(&ep, Some(&o5), &none, "alice", false, NOW).unwrap();
        assert_eq!(names(&o6), ["b", "a"]);
        assert_eq!(env_a(&o6), ["B"]);
    }

    #[test]
    fn atomic_maps_sets_and_conflicts() {
        let schema = deployment();
        let ep = ep(&schema, "apps/v1", "Deployment");
        let a = yaml("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n  finalizers: [x]\nspec:\n  selector:\n    matchLabels: {app: a}\n");
        let o = apply(&ep, None, &a, "a", false, NOW).unwrap();
        assert_eq!(
            o["metadata"]["managedFields"][0]["fieldsV1"],
            serde_json::json!({"f:metadata": {"f:finalizers": {"v:\"x\"": {}}}, "f:spec": {"f:selector": {}}})
        );
        // The selector is atomic: any change of it conflicts as a whole.
        let b = yaml("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n  finalizers: [y]\nspec:\n  selector:\n    matchLabels: {other: b}\n");
        let err = apply(&ep, Some(&o), &b, "b", false, NOW).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Apply failed with 1 conflict: conflict with \"a\": .spec.selector"
        );
        let o2 = apply(&ep, Some(&o), &b, "b", true, NOW).unwrap();
        assert_eq!(
            o2["spec"]["selector"],
            serde_json::json!({"matchLabels": {"other": "b"}})
        );
        assert_eq!(o2["metadata"]["finalizers"], serde_json::json!(["x", "y"]));
        // An Update manager is printed with its version.
        let mut upd = o2.clone();
        upd["spec"]["replicas"] = Value::from(4);
        record_update(&ep, Some(&o2), &mut upd, "kubectl-scale", NOW);
        let c = yaml(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\nspec:\n  replicas: 1\n",
        );
        let err = apply(&ep, Some(&upd), &c, "c", false, NOW).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Apply failed with 1 conflict: conflict with \"kubectl-scale\" using apps/v1: .spec.replicas"
        );
        // Conflicts with several managers are grouped per manager.
        let d = yaml("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {z: z}\n");
        let err = apply(&ep, Some(&upd), &d, "d", false, NOW).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Apply failed with 2 conflicts: conflicts with \"b\":\n- .spec.selector\nconflicts with \"kubectl-scale\" using apps/v1:\n- .spec.replicas"
        );
        // Force moves ownership and an Update entry that loses all its fields goes away.
        let o3 = apply(&ep, Some(&upd), &c, "c", true, NOW).unwrap();
        let managers: Vec<&str> = o3["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["manager"].as_str().unwrap())
            .collect();
        assert_eq!(managers, ["a", "b", "c"]);
    }

    #[test]
    fn objects_without_managed_fields_get_before_first_apply() {
        let schema = Schema::for_gvk("", "v1", "ConfigMap");
        let ep = ep(&schema, "v1", "ConfigMap");
        let live = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "uid": "u"}, "data": {"a": "1", "b": "2"}});
        let cfg = yaml("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: '1'\n");
        let out = apply(&ep, Some(&live), &cfg, "me", false, NOW).unwrap();
        let mf = &out["metadata"]["managedFields"];
        assert_eq!(mf[0]["manager"], "me");
        assert!(mf[0].get("time").is_none(), "no change, no time: {mf}");
        assert_eq!(mf[1]["manager"], "before-first-apply");
        assert_eq!(
            mf[1]["fieldsV1"],
            serde_json::json!({"f:data": {".": {}, "f:a": {}, "f:b": {}}})
        );
        // An update of an object without managedFields does not start tracking.
        let mut new = live.clone();
        new["data"]["c"] = Value::from("3");
        record_update(&ep, Some(&live), &mut new, "x", NOW);
        assert!(new["metadata"].get("managedFields").is_none());
        // An empty managedFields list resets them.
        let mut new = out.clone();
        new["metadata"]["managedFields"] = Value::Array(vec![]);
        record_update(&ep, Some(&out), &mut new, "x", NOW);
        assert!(new["metadata"].get("managedFields").is_none());
        // A client-provided managedFields replaces the stored one.
        let mut new = out.clone();
        let mut mf = out["metadata"]["managedFields"].clone();
        mf.as_array_mut().unwrap().remove(1);
        new["metadata"]["managedFields"] = mf.clone();
        record_update(&ep, Some(&out), &mut new, "x", NOW);
        assert_eq!(new["metadata"]["managedFields"], mf);
    }

    #[test]
    fn update_managers_are_capped() {
        let schema = Schema::for_gvk("", "v1", "ConfigMap");
        let ep = ep(&schema, "v1", "ConfigMap");
        let mut obj = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c"}, "data": {}});
        record_update(&ep, None, &mut obj, "creator", "2026-01-01T00:00:00Z");
        for i in 0..12 {
            let mut new = obj.clone();
            new["data"][format!("k{i}")] = Value::from("v");
            record_update(
                &ep,
                Some(&obj),
                &mut new,
                &format!("m{i:02}"),
                &format!("2026-01-01T00:01:{i:02}Z"),
            );
            obj = new;
        }
        let mf = obj["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(mf.len(), 10);
        let names: Vec<&str> = mf.iter().map(|e| e["manager"].as_str().unwrap()).collect();
        assert!(names.contains(&"ancient-changes"), "{names:?}");
        assert!(!names.contains(&"m00") && !names.contains(&"m02") && names.contains(&"m11"));
    }

    #[test]
    fn custom_resources_untyped_and_structural() {
        let untyped = Schema::Untyped;
        let ep = ep(&untyped, "example.com/v1", "Thing");
        let a = yaml("apiVersion: example.com/v1\nkind: Thing\nmetadata:\n  name: t\n  labels: {l: '1'}\nspec:\n  size: 1\n  list: [1, 2]\n  nested: {x: 1}\n");
        let o = apply(&ep, None, &a, "a", false, NOW).unwrap();
        assert_same_text(
            &o["metadata"]["managedFields"][0],
            &serde_json::json!({"apiVersion": "example.com/v1", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:labels": {"f:l": {}}},
                    "f:spec": {".": {}, "f:list": {}, "f:nested": {".": {}, "f:x": {}}, "f:size": {}}},
                "manager": "a", "operation": "Apply", "time": NOW}),
            "untyped apply",
        );
        let b = yaml(
            "apiVersion: example.com/v1\nkind: Thing\nmetadata:\n  name: t\nspec:\n  list: [3]\n",
        );
        let err = apply(&ep, Some(&o), &b, "b", false, NOW).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Apply failed with 1 conflict: conflict with \"a\": .spec.list"
        );

        let crd = serde_json::json!({"type": "object", "properties": {"spec": {"type": "object",
            "properties": {"items": {"type": "array", "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["id"],
                "items": {"type": "object", "properties": {"id": {"type": "integer"}, "v": {"type": "string"}}}},
                "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}}}}});
        let structural = Schema::from_crd_openapi_v3(&crd);
        let ep = Endpoint {
            schema: &structural,
            ..ep
        };
        let a = yaml("apiVersion: example.com/v1\nkind: Thing\nmetadata:\n  name: t\nspec:\n  items:\n  - {id: 1, v: a}\n  tags: [x]\n");
        let o = apply(&ep, None, &a, "a", false, NOW).unwrap();
        let b = yaml("apiVersion: example.com/v1\nkind: Thing\nmetadata:\n  name: t\nspec:\n  items:\n  - {id: 2, v: b}\n  tags: [y]\n");
        let o = apply(&ep, Some(&o), &b, "b", false, NOW).unwrap();
        assert_eq!(
            o["spec"],
            serde_json::json!({"items": [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}], "tags": ["x", "y"]})
        );
        assert_eq!(
            o["metadata"]["managedFields"][1]["fieldsV1"],
            serde_json::json!({"f:spec": {"f:items": {"k:{\"id\":2}": {".": {}, "f:id": {}, "f:v": {}}}, "f:tags": {"v:\"y\"": {}}}})
        );
        let bad = yaml(
            "apiVersion: example.com/v1\nkind: Thing\nmetadata:\n  name: t\nspec:\n  nope: 1\n",
        );
        let err = apply(&ep, Some(&o), &bad, "b", false, NOW).unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed to create typed patch object (/t; example.com/v1, Kind=Thing): .spec.nope: field not declared in schema"
        );
    }

    #[test]
    fn reset_fields_are_never_owned() {
        let schema = deployment();
        let ep = Endpoint {
            schema: &schema,
            api_version: "apps/v1",
            kind: "Deployment",
            subresource: None,
            reset_fields: &[&["status"]],
        };
        let a = yaml("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\nspec:\n  replicas: 1\nstatus:\n  replicas: 3\n");
        let o = apply(&ep, None, &a, "a", false, NOW).unwrap();
        assert_eq!(
            o["metadata"]["managedFields"][0]["fieldsV1"],
            serde_json::json!({"f:spec": {"f:replicas": {}}})
        );
    }

    #[test]
    fn scale_subresource_updates_match_upstream() {
        let schema = deployment();
        let ep = ep(&schema, "apps/v1", "Deployment");
        let after =
            upstream("subresources/deployment-after-scale.json")["response"]["body"].clone();
        // Before the scale: the creator's entry owned spec.replicas (1).
        let mut before = after.clone();
        before["spec"]["replicas"] = Value::from(1);
        let main = after["metadata"]["managedFields"][1].clone();
        let mut set = FieldSet::from_fields_v1(&main["fieldsV1"]).unwrap();
        set.insert(&[Pe::field("spec"), Pe::field("replicas")]);
        let mut entry = main.clone();
        entry["fieldsV1"] = set.to_fields_v1();
        before["metadata"]["managedFields"] = Value::Array(vec![entry]);
        // PUT /scale replicas 3, then PATCH /scale replicas 4.
        let mut mid = before.clone();
        mid["spec"]["replicas"] = Value::from(3);
        record_scale_update(
            &ep,
            &before,
            &mut mid,
            &["spec", "replicas"],
            "golden-capture",
            CAPTURE_TIME,
        );
        let mut last = mid.clone();
        last["spec"]["replicas"] = Value::from(4);
        record_scale_update(
            &ep,
            &mid,
            &mut last,
            &["spec", "replicas"],
            "golden-capture",
            CAPTURE_TIME,
        );
        assert_same_text(
            &last["metadata"]["managedFields"],
            &after["metadata"]["managedFields"],
            "after scale",
        );
        // A later status update through /status keeps both entries.
        let c = upstream("subresources/deployment-status-patch-merge.json");
        let mut new = c["response"]["body"].clone();
        new["metadata"]["managedFields"] = Value::Array(vec![]);
        let status_ep = Endpoint {
            subresource: Some("status"),
            reset_fields: &[&["spec"], &["metadata"]],
            ..ep
        };
        record_update(
            &status_ep,
            Some(&after),
            &mut new,
            "golden-capture",
            CAPTURE_TIME,
        );
        assert_same_text(
            &new["metadata"]["managedFields"],
            &c["response"]["body"]["metadata"]["managedFields"],
            "status patch",
        );
    }

    #[test]
    fn helpers() {
        assert_eq!(
            manager_from_user_agent("kubectl/v1.32.0 (linux/amd64) kubernetes/70d3cc9"),
            "kubectl"
        );
        assert_eq!(manager_from_user_agent("golden-capture"), "golden-capture");
        assert_eq!(manager_from_user_agent("Helm/3.17.0"), "Helm");
        assert_eq!(manager_from_user_agent("a\u{1}b"), "ab");
        assert_eq!(manager_from_user_agent(&"x".repeat(200)).len(), 128);
        assert_eq!(manager_from_user_agent(""), "");
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2026-11-28T08:51:35Z"), Some(1795855895));
        assert_eq!(
            normalize_time("2026-11-28T09:51:35.123+01:00"),
            "2026-11-28T08:51:35Z"
        );
        assert_eq!(go_float_g(1.5), "1.5");
        assert_eq!(go_float_g(1e6), "1e+06");
        assert_eq!(go_float_g(123456.0), "123456");
        assert_eq!(go_float_g(0.0001), "0.0001");
        assert_eq!(go_float_g(0.00001), "1e-05");
        assert_eq!(go_quote("a\"b\n"), "\"a\\\"b\\n\"");
        let mut s = String::new();
        go_json(
            &mut s,
            &serde_json::json!({"b": "<&>", "a": [1, 2.5]}),
            true,
        );
        assert_eq!(s, r#"{"a":[1,2.5],"b":"\u003c\u0026\u003e"}"#);
        let pe = Pe::Key(vec![
            ("containerPort".into(), Value::from(80)),
            ("protocol".into(), Value::from("TCP")),
        ]);
        assert_eq!(pe.to_string(), "[containerPort=80,protocol=\"TCP\"]");
        assert_eq!(pe.serialize(), r#"k:{"containerPort":80,"protocol":"TCP"}"#);
        assert!(
            Pe::Key(vec![("p".into(), Value::from(80))])
                < Pe::Key(vec![("p".into(), Value::from(443))])
        );
        assert_eq!(gvk_string("", ""), "/, Kind=");
        assert_eq!(gvk_string("v1", "Pod"), "/v1, Kind=Pod");
    }
}
