//! Serving CustomResourceDefinitions, as upstream's apiextensions-apiserver does in-process:
//!
//! - the naming and establishing controllers ([`crd_status`]): `status.acceptedNames` and the
//!   `NamesAccepted`/`Established` conditions, names conflicting with another CRD of the group
//!   staying unaccepted;
//! - registration: every served version of an accepted CRD becomes a [`ResourceInfo`] (with its
//!   [`CustomVersion`]: schema, printer columns, scale paths, storage version) in the one
//!   resource table that routing, discovery, OpenAPI and Table printing read;
//! - the structural schema's pruning ([`prune`]) and validation ([`validate`]) of custom
//!   resources (defaulting is `defaults::apply_crd_schema_defaults`);
//! - the `customresourcecleanup.apiextensions.k8s.io` finalizer: a deleted CRD's custom
//!   resources are deleted before the CRD goes.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::errors::Cause;
use crate::meta;
use crate::registry::{DeleteOptions, ResourceCtx};
use crate::resources::{ResourceInfo, Scope, SubresourceInfo};
use crate::server::AppState;

/// The store prefix of CustomResourceDefinitions.
const CRD_PREFIX: &str = "/registry/apiextensions.k8s.io/customresourcedefinitions/";
/// The finalizer a deleted CRD carries until its custom resources are gone.
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";
/// The field manager of the controllers' status writes.
const MANAGER: &str = "kube-apiserver";

/// What a CustomResourceDefinition says about one served version of its resource.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CustomVersion {
    /// `metadata.name` of the CRD.
    pub crd_name: String,
    /// `schema.openAPIV3Schema` (`Null` when the version has none).
    pub schema: Value,
    /// `additionalPrinterColumns` (empty: upstream's default Age column).
    pub printer_columns: Vec<Value>,
    /// The version objects are stored in.
    pub storage_version: String,
    /// `subresources.scale`, when declared.
    pub scale: Option<ScalePaths>,
    /// The CRD is being deleted: no new custom resources.
    pub terminating: bool,
}

/// `subresources.scale` of a CRD version: JSON paths (`.spec.replicas`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScalePaths {
    pub spec_replicas: String,
    pub status_replicas: String,
    pub label_selector: Option<String>,
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn condition<'a>(crd: &'a Value, kind: &str) -> Option<&'a Value> {
    crd.get("status")?
        .get("conditions")?
        .as_array()?
        .iter()
        .find(|c| s(c, "type") == kind)
}

fn condition_true(crd: &Value, kind: &str) -> bool {
    condition(crd, kind).is_some_and(|c| s(c, "status") == "True")
}

/// The resources a CRD serves: one per served version, named by `status.acceptedNames`;
/// none until the names are accepted and the CRD is established.
pub fn served_resources(crd: &Value) -> Vec<ResourceInfo> {
    if !condition_true(crd, "Established") {
        return Vec::new();
    }
    let spec = crd.get("spec").unwrap_or(&Value::Null);
    let names = crd
        .get("status")
        .and_then(|s| s.get("acceptedNames"))
        .unwrap_or(&Value::Null);
    let group = s(spec, "group");
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let storage_version = versions
        .iter()
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .map(|v| s(v, "name").to_string())
        .unwrap_or_default();
    let scope = if s(spec, "scope") == "Cluster" {
        Scope::Cluster
    } else {
        Scope::Namespaced
    };
    let (kind, plural) = (s(names, "kind"), s(names, "plural"));
    if group.is_empty() || kind.is_empty() || plural.is_empty() {
        return Vec::new();
    }
    let verbs: Vec<String> = [
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
    .map(|v| v.to_string())
    .collect();
    let sub_verbs: Vec<String> = ["get", "patch", "update"]
        .iter()
        .map(|v| v.to_string())
        .collect();
    let mut out = Vec::new();
    for v in versions
        .iter()
        .filter(|v| v.get("served").and_then(Value::as_bool) == Some(true))
    {
        let version = s(v, "name");
        let subs = v.get("subresources").unwrap_or(&Value::Null);
        let mut subresources = Vec::new();
        let scale = subs
            .get("scale")
            .filter(|x| x.is_object())
            .map(|sc| ScalePaths {
                spec_replicas: s(sc, "specReplicasPath").to_string(),
                status_replicas: s(sc, "statusReplicasPath").to_string(),
                label_selector: sc
                    .get("labelSelectorPath")
                    .and_then(Value::as_str)
                    .filter(|p| !p.is_empty())
                    .map(str::to_string),
            });
        if scale.is_some() {
            subresources.push(SubresourceInfo {
                name: "scale".into(),
                group: "autoscaling".into(),
                version: "v1".into(),
                kind: "Scale".into(),
                verbs: sub_verbs.clone(),
            });
        }
        if subs.get("status").is_some_and(Value::is_object) {
            subresources.push(SubresourceInfo {
                name: "status".into(),
                group: group.to_string(),
                version: version.to_string(),
                kind: kind.to_string(),
                verbs: sub_verbs.clone(),
            });
        }
        let list_kind = match s(names, "listKind") {
            "" => format!("{kind}List"),
            l => l.to_string(),
        };
        let singular = match s(names, "singular") {
            "" => kind.to_ascii_lowercase(),
            x => x.to_string(),
        };
        out.push(ResourceInfo {
            group: group.to_string(),
            version: version.to_string(),
            kind: kind.to_string(),
            list_kind,
            plural: plural.to_string(),
            singular,
            short_names: strings(names.get("shortNames")),
            categories: strings(names.get("categories")),
            scope,
            verbs: verbs.clone(),
            subresources,
            custom: Some(Arc::new(CustomVersion {
                crd_name: meta::meta_str(crd, "name").unwrap_or("").to_string(),
                schema: v
                    .get("schema")
                    .and_then(|x| x.get("openAPIV3Schema"))
                    .cloned()
                    .unwrap_or(Value::Null),
                printer_columns: v
                    .get("additionalPrinterColumns")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
                storage_version: storage_version.clone(),
                scale,
                terminating: meta::meta_str(crd, "deletionTimestamp").is_some(),
            })),
        });
    }
    out
}

/// `Err("\"x\" is already in use")` when `requested` is new for this CRD and taken by another.
fn fresh(requested: &str, accepted: &str, used: &[String]) -> Result<(), String> {
    if requested == accepted || !used.iter().any(|u| u == requested) {
        Ok(())
    } else {
        Err(format!("{requested:?} is already in use"))
    }
}

/// The status the naming and establishing controllers give `crd`, given the other CRDs in the
/// store: `status.acceptedNames` and the `NamesAccepted` and `Established` conditions (with
/// transition times kept when a condition does not change). A terminating CRD keeps its names.
pub fn crd_status(crd: &Value, others: &[Value], now: &str) -> Value {
    let spec = crd.get("spec").unwrap_or(&Value::Null);
    let group = s(spec, "group");
    let name = meta::meta_str(crd, "name").unwrap_or("");
    let (mut resources, mut kinds): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
    for o in others {
        if meta::meta_str(o, "name") == Some(name)
            || s(o.get("spec").unwrap_or(&Value::Null), "group") != group
        {
            continue;
        }
        let a = o
            .get("status")
            .and_then(|s| s.get("acceptedNames"))
            .unwrap_or(&Value::Null);
        for k in ["plural", "singular"] {
            if !s(a, k).is_empty() {
                resources.push(s(a, k).to_string());
            }
        }
        resources.extend(strings(a.get("shortNames")));
        for k in ["kind", "listKind"] {
            if !s(a, k).is_empty() {
                kinds.push(s(a, k).to_string());
            }
        }
    }
    let requested = spec.get("names").unwrap_or(&Value::Null);
    let status = crd.get("status").cloned().unwrap_or_else(|| json!({}));
    let accepted = status.get("acceptedNames").unwrap_or(&Value::Null);
    let mut names = accepted.as_object().cloned().unwrap_or_default();
    let mut conflict: Option<(&str, String)> = None;
    for (key, reason, used) in [
        ("plural", "PluralConflict", &resources),
        ("singular", "SingularConflict", &resources),
    ] {
        match fresh(s(requested, key), s(accepted, key), used) {
            Ok(()) => {
                if !s(requested, key).is_empty() || names.contains_key(key) {
                    names.insert(key.into(), json!(s(requested, key)));
                }
            }
            Err(m) => conflict = Some((reason, m)),
        }
    }
    let had_short = strings(accepted.get("shortNames"));
    let mut short_conflict = false;
    for sn in strings(requested.get("shortNames")) {
        if had_short.contains(&sn) {
            continue;
        }
        if let Err(m) = fresh(&sn, "", &resources) {
            conflict = Some(("ShortNamesConflict", m));
            short_conflict = true;
        }
    }
    if !short_conflict {
        match requested.get("shortNames") {
            Some(v) if !v.is_null() => names.insert("shortNames".into(), v.clone()),
            _ => names.remove("shortNames"),
        };
    }
    for (key, reason) in [("kind", "KindConflict"), ("listKind", "ListKindConflict")] {
        match fresh(s(requested, key), s(accepted, key), &kinds) {
            Ok(()) => {
                names.insert(key.into(), json!(s(requested, key)));
            }
            Err(m) => conflict = Some((reason, m)),
        }
    }
    match requested.get("categories") {
        Some(v) if !v.is_null() => names.insert("categories".into(), v.clone()),
        _ => names.remove("categories"),
    };
    // Key order as upstream serializes CustomResourceDefinitionNames.
    let mut ordered = Map::new();
    for k in [
        "plural",
        "singular",
        "shortNames",
        "kind",
        "listKind",
        "categories",
    ] {
        if let Some(v) = names.get(k) {
            ordered.insert(k.into(), v.clone());
        }
    }
    let (na_status, na_reason, na_message) = match &conflict {
        Some((reason, message)) => ("False", reason.to_string(), message.clone()),
        None => (
            "True",
            "NoConflicts".to_string(),
            "no conflicts found".to_string(),
        ),
    };
    let established = if condition_true(crd, "Established") {
        condition(crd, "Established").cloned()
    } else if conflict.is_none() {
        Some(cond(
            "Established",
            "True",
            "InitialNamesAccepted",
            "the initial names have been accepted",
        ))
    } else {
        Some(cond(
            "Established",
            "False",
            "NotAccepted",
            "not all names are accepted",
        ))
    };
    let mut conditions: Vec<Value> = Vec::new();
    let mut put = |c: Value| {
        let old = condition(crd, s(&c, "type"));
        conditions.push(stamped(c, old, now));
    };
    put(cond("NamesAccepted", na_status, &na_reason, &na_message));
    if let Some(e) = established {
        put(e);
    }
    // Other conditions (Terminating, NonStructuralSchema, …) are kept as they are.
    if let Some(list) = status.get("conditions").and_then(Value::as_array) {
        for c in list {
            if !matches!(s(c, "type"), "NamesAccepted" | "Established") {
                conditions.push(c.clone());
            }
        }
    }
    let mut out = status.as_object().cloned().unwrap_or_default();
    out.insert("conditions".into(), Value::Array(conditions));
    out.insert("acceptedNames".into(), Value::Object(ordered));
    if !out.contains_key("storedVersions") {
        out.insert("storedVersions".into(), json!([]));
    }
    let mut ordered_status = Map::new();
    for k in ["conditions", "acceptedNames", "storedVersions"] {
        if let Some(v) = out.remove(k) {
            ordered_status.insert(k.into(), v);
        }
    }
    ordered_status.extend(out);
    Value::Object(ordered_status)
}

fn cond(kind: &str, status: &str, reason: &str, message: &str) -> Value {
    json!({"type": kind, "status": status, "reason": reason, "message": message})
}

fn reorder_condition(c: Value) -> Value {
    let mut m = Map::new();
    for k in ["type", "status", "lastTransitionTime", "reason", "message"] {
        if let Some(v) = c.get(k) {
            m.insert(k.into(), v.clone());
        }
    }
    Value::Object(m)
}

// ---------------------------------------------------------------------------------------------
// The structural schema: pruning and validation.

/// Drops the fields the structural schema does not specify (upstream's pruning), keeping
/// `apiVersion`, `kind` and `metadata` at the root and everything under
/// `x-kubernetes-preserve-unknown-fields: true` or `x-kubernetes-embedded-resource` nodes
/// without properties.
pub fn prune(schema: &Value, obj: &mut Value) {
    if schema.is_null() {
        return;
    }
    prune_node(schema, obj, true, "", &mut Vec::new());
}

/// The paths of the fields [`prune`] drops (`spec.bogus`, `spec.list[0].x`), for
/// `fieldValidation`.
pub fn unknown_fields(schema: &Value, obj: &Value) -> Vec<String> {
    let mut found = Vec::new();
    if !schema.is_null() {
        prune_node(schema, &mut obj.clone(), true, "", &mut found);
    }
    found
}

fn prune_node(schema: &Value, v: &mut Value, root: bool, path: &str, dropped: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            let preserve = schema
                .get("x-kubernetes-preserve-unknown-fields")
                .and_then(Value::as_bool)
                == Some(true);
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            let additional_schema = additional.filter(|a| a.is_object());
            let keep_all = preserve || matches!(additional, Some(Value::Bool(true)));
            let mut drop: Vec<String> = Vec::new();
            for (k, child) in m.iter_mut() {
                if root && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                if let Some(ps) = props.and_then(|p| p.get(k)) {
                    prune_node(ps, child, false, &join(path, k), dropped);
                } else if let Some(a) = additional_schema {
                    prune_node(a, child, false, &join(path, k), dropped);
                } else if !keep_all {
                    dropped.push(join(path, k));
                    drop.push(k.clone());
                }
            }
            if !drop.is_empty() {
                m.retain(|k, _| !drop.contains(k));
            }
        }
        Value::Array(items) => {
            if let Some(is) = schema.get("items").filter(|i| i.is_object()) {
                for (i, item) in items.iter_mut().enumerate() {
                    prune_node(is, item, false, &format!("{path}[{i}]"), dropped);
                }
            }
        }
        _ => {}
    }
}

/// Validates a custom resource against its version's `openAPIV3Schema`, with upstream's
/// causes (`spec.size: Invalid value: "string": spec.size in body must be of type integer:
/// "string"`). `apiVersion`, `kind` and `metadata` are validated elsewhere.
pub fn validate(schema: &Value, obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    if schema.is_null() {
        return causes;
    }
    if let (Some(m), Some(props)) = (
        obj.as_object(),
        schema.get("properties").and_then(Value::as_object),
    ) {
        for (k, ps) in props {
            if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            if let Some(child) = m.get(k) {
                validate_node(ps, child, k, &mut causes);
            }
        }
        required(schema, m, "", &mut causes);
    }
    causes
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn required(schema: &Value, m: &Map<String, Value>, path: &str, causes: &mut Vec<Cause>) {
    for r in strings(schema.get("required")) {
        if path.is_empty() && matches!(r.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        if !m.contains_key(&r) {
            causes.push(Cause::required(join(path, &r), ""));
        }
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_ok(want: &str, v: &Value, int_or_string: bool) -> bool {
    if int_or_string {
        return v.is_string() || json_type(v) == "integer";
    }
    match want {
        "" => true,
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "number" => v.is_number(),
        "integer" => match v {
            Value::Number(n) => {
                n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            _ => false,
        },
        _ => true,
    }
}

/// A number as Go's `%v` prints a float64 bound.
fn num(v: &Value) -> String {
    match v.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
        Some(f) => format!("{f}"),
        None => v.to_string(),
    }
}

fn validate_node(schema: &Value, v: &Value, path: &str, causes: &mut Vec<Cause>) {
    let nullable = schema.get("nullable").and_then(Value::as_bool) == Some(true);
    if v.is_null() && nullable {
        return;
    }
    let int_or_string = schema
        .get("x-kubernetes-int-or-string")
        .and_then(Value::as_bool)
        == Some(true);
    let want = s(schema, "type");
    if !type_ok(want, v, int_or_string) {
        let have = json_type(v);
        let want = if int_or_string {
            "integer,string"
        } else {
            want
        };
        causes.push(Cause::new(
            "FieldValueTypeInvalid",
            path,
            format!("Invalid value: {have:?}: {path} in body must be of type {want}: {have:?}"),
        ));
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(v) {
            let shown: Vec<String> = allowed
                .iter()
                .map(|a| match a {
                    Value::String(x) => x.clone(),
                    other => other.to_string(),
                })
                .collect();
            let refs: Vec<&str> = shown.iter().map(String::as_str).collect();
            causes.push(Cause::not_supported(path, v, &refs));
        }
    }
    match v {
        Value::Number(_) => {
            let x = v.as_f64().unwrap_or(0.0);
            if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
                let exclusive =
                    schema.get("exclusiveMinimum").and_then(Value::as_bool) == Some(true);
                if x < min || (exclusive && x == min) {
                    let op = if exclusive {
                        "greater than"
                    } else {
                        "greater than or equal to"
                    };
                    let bound = num(&schema["minimum"]);
                    causes.push(Cause::invalid(
                        path,
                        v,
                        &format!("{path} in body should be {op} {bound}"),
                    ));
                }
            }
            if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
                let exclusive =
                    schema.get("exclusiveMaximum").and_then(Value::as_bool) == Some(true);
                if x > max || (exclusive && x == max) {
                    let op = if exclusive {
                        "less than"
                    } else {
                        "less than or equal to"
                    };
                    let bound = num(&schema["maximum"]);
                    causes.push(Cause::invalid(
                        path,
                        v,
                        &format!("{path} in body should be {op} {bound}"),
                    ));
                }
            }
        }
        Value::String(text) => {
            let len = text.chars().count() as u64;
            if let Some(min) = schema.get("minLength").and_then(Value::as_u64) {
                if len < min {
                    causes.push(Cause::invalid(
                        path,
                        v,
                        &format!("{path} in body should be at least {min} chars long"),
                    ));
                }
            }
            if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
                if len > max {
                    causes.push(Cause::too_long(path, max as usize));
                }
            }
            if let Some(p) = schema.get("pattern").and_then(Value::as_str) {
                if regex::Regex::new(p).is_ok_and(|re| !re.is_match(text)) {
                    causes.push(Cause::invalid(
                        path,
                        v,
                        &format!("{path} in body should match '{p}'"),
                    ));
                }
            }
        }
        Value::Array(items) => {
            let n = items.len() as u64;
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64) {
                if n < min {
                    causes.push(Cause::invalid(
                        path,
                        v,
                        &format!("{path} in body should have at least {min} items"),
                    ));
                }
            }
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64) {
                if n > max {
                    causes.push(Cause::new(
                        "FieldValueTooMany",
                        path,
                        format!("Too many: {n}: must have at most {max} items"),
                    ));
                }
            }
            if let Some(is) = schema.get("items").filter(|i| i.is_object()) {
                for (i, item) in items.iter().enumerate() {
                    validate_node(is, item, &format!("{path}[{i}]"), causes);
                }
            }
        }
        Value::Object(m) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (k, child) in m {
                if let Some(ps) = props.and_then(|p| p.get(k)) {
                    validate_node(ps, child, &join(path, k), causes);
                } else if let Some(a) = additional {
                    validate_node(a, child, &join(path, k), causes);
                }
            }
            required(schema, m, path, causes);
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Scale paths.

fn path_steps(p: &str) -> Vec<&str> {
    p.trim_start_matches('.')
        .split('.')
        .filter(|s| !s.is_empty())
        .collect()
}

/// The value at a simple JSON path (`.spec.replicas`).
pub fn get_path<'a>(obj: &'a Value, p: &str) -> Option<&'a Value> {
    path_steps(p).into_iter().try_fold(obj, |v, k| v.get(k))
}

/// Sets the value at a simple JSON path, creating objects on the way.
pub fn set_path(obj: &mut Value, p: &str, value: Value) {
    let steps = path_steps(p);
    let Some((last, parents)) = steps.split_last() else {
        return;
    };
    let mut cur = obj;
    for k in parents {
        let Some(m) = cur.as_object_mut() else { return };
        let next = m.entry(k.to_string()).or_insert_with(|| json!({}));
        if !next.is_object() {
            *next = json!({});
        }
        cur = next;
    }
    if let Some(m) = cur.as_object_mut() {
        m.insert(last.to_string(), value);
    }
}

// ---------------------------------------------------------------------------------------------
// The controllers.

fn crd_ctx(state: &AppState) -> Option<ResourceCtx> {
    state
        .lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        .map(|info| ResourceCtx::new(info, None))
}

fn load_crds(state: &AppState) -> anyhow::Result<(Vec<Value>, u64)> {
    let ctx = crd_ctx(state).ok_or_else(|| anyhow::anyhow!("CRDs missing from the table"))?;
    let list = state.registry.store.list(CRD_PREFIX, None, 0)?;
    let mut out = Vec::new();
    for kv in &list.items {
        match ctx.decode_kv(kv) {
            Ok(o) => out.push(o),
            Err(e) => tracing::warn!(key = %kv.key, error = %e.message, "undecodable CRD"),
        }
    }
    Ok((out, list.revision))
}

/// One pass of the controllers over every CRD: writes changed statuses, runs the cleanup of
/// deleted CRDs, and installs the resulting table. Returns whether a deleted CRD still waits
/// for its custom resources to go.
async fn sync(state: &Arc<AppState>) -> anyhow::Result<bool> {
    let (mut crds, _) = load_crds(state)?;
    let ctx = crd_ctx(state).ok_or_else(|| anyhow::anyhow!("CRDs missing from the table"))?;
    let now = meta::now_rfc3339();
    for i in 0..crds.len() {
        if meta::meta_str(&crds[i], "deletionTimestamp").is_some() {
            continue;
        }
        let wanted = crd_status(&crds[i], &crds, &now);
        if crds[i].get("status") == Some(&wanted) {
            continue;
        }
        let name = meta::meta_str(&crds[i], "name").unwrap_or("").to_string();
        let result = state
            .registry
            .update_with(&ctx, &name, Some("status"), false, Some(MANAGER), |cur| {
                let mut next = cur.clone();
                let fresh = crd_status(cur, &crds, &now);
                if let Some(o) = next.as_object_mut() {
                    o.insert("status".into(), fresh);
                }
                Ok(next)
            })
            .await;
        match result {
            Ok(updated) => crds[i] = updated,
            Err(e) => tracing::warn!(crd = %name, error = %e.message, "updating CRD status"),
        }
    }
    install(state, &crds);
    let mut pending = false;
    for crd in &crds {
        if meta::meta_str(crd, "deletionTimestamp").is_some() && has_cleanup_finalizer(crd) {
            pending |= !cleanup(state, &ctx, crd).await;
        }
    }
    Ok(pending)
}

fn has_cleanup_finalizer(crd: &Value) -> bool {
    strings(crd.get("metadata").and_then(|m| m.get("finalizers")))
        .iter()
        .any(|f| f == CLEANUP_FINALIZER)
}

/// Replaces the custom resources of the table (and the OpenAPI documents) with those of
/// `crds`, when they changed.
fn install(state: &AppState, crds: &[Value]) {
    let mut table = crate::metrics_server::served_base();
    let mut schemas = Vec::new();
    for crd in crds {
        for info in served_resources(crd) {
            if table
                .get(&info.group, &info.version, &info.plural)
                .is_some()
            {
                continue;
            }
            if let Some(c) = &info.custom {
                schemas.push(crate::openapi::CustomSchema {
                    group: info.group.clone(),
                    version: info.version.clone(),
                    kind: info.kind.clone(),
                    schema: c.schema.clone(),
                });
            }
            table.add(info);
        }
    }
    let Ok(mut current) = state.resources.write() else {
        return;
    };
    let same = current.iter().eq(table.iter());
    if same {
        return;
    }
    let openapi = Arc::new(crate::openapi::OpenApi::build_with_custom(&table, &schemas));
    *current = table;
    if let Ok(mut o) = state.openapi.write() {
        *o = openapi;
    }
}

/// Deletes the custom resources of a deleted CRD; once none is left, sets the Terminating
/// condition to done and removes the finalizer (which removes the CRD). Returns whether the
/// CRD is finished.
async fn cleanup(state: &Arc<AppState>, crd_ctx: &ResourceCtx, crd: &Value) -> bool {
    let name = meta::meta_str(crd, "name").unwrap_or("").to_string();
    let spec = crd.get("spec").unwrap_or(&Value::Null);
    let group = s(spec, "group");
    let plural = crd
        .get("status")
        .and_then(|s| s.get("acceptedNames"))
        .map(|a| s(a, "plural"))
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| s(spec.get("names").unwrap_or(&Value::Null), "plural"))
        .to_string();
    let prefix = format!("/registry/{group}/{plural}/");
    let remaining = match state.registry.store.list(&prefix, None, 0) {
        Ok(l) => l.items,
        Err(e) => {
            tracing::warn!(crd = %name, error = %e, "listing custom resources");
            return false;
        }
    };
    if !remaining.is_empty() {
        let Some(info) = served_resources(crd).into_iter().next().or_else(|| {
            // Not served (names never accepted): address the objects by the spec.
            let mut c = crd.clone();
            if let Some(st) = c.get_mut("status").and_then(Value::as_object_mut) {
                st.insert(
                    "conditions".into(),
                    json!([{"type": "Established", "status": "True"}]),
                );
                st.insert(
                    "acceptedNames".into(),
                    spec.get("names").cloned().unwrap_or_default(),
                );
            }
            served_resources(&c).into_iter().next()
        }) else {
            return false;
        };
        set_terminating(
            state,
            crd_ctx,
            &name,
            "InstanceDeletionInProgress",
            "CustomResource deletion is in progress",
        )
        .await;
        for kv in &remaining {
            let rest = kv.key.strip_prefix(&prefix).unwrap_or("");
            let (ns, obj_name) = match rest.split_once('/') {
                Some((ns, n)) => (Some(ns.to_string()), n.to_string()),
                None => (None, rest.to_string()),
            };
            let ctx = ResourceCtx::new(info.clone(), ns);
            if let Err(e) = state
                .registry
                .delete(&ctx, &obj_name, &DeleteOptions::default())
                .await
            {
                if e.code != 404 {
                    tracing::warn!(crd = %name, object = %obj_name, error = %e.message, "deleting custom resource");
                }
            }
        }
        return false;
    }
    set_terminating(
        state,
        crd_ctx,
        &name,
        "InstanceDeletionCompleted",
        "removed all instances",
    )
    .await;
    let result = state
        .registry
        .update_with(crd_ctx, &name, None, false, Some(MANAGER), |cur| {
            let mut next = cur.clone();
            if let Some(f) = next
                .get_mut("metadata")
                .and_then(|m| m.get_mut("finalizers"))
                .and_then(Value::as_array_mut)
            {
                f.retain(|x| x != CLEANUP_FINALIZER);
            }
            Ok(next)
        })
        .await;
    match result {
        Ok(_) => true,
        Err(e) if e.code == 404 => true,
        Err(e) => {
            tracing::warn!(crd = %name, error = %e.message, "removing the cleanup finalizer");
            false
        }
    }
}

/// Sets the `Terminating` condition of a deleted CRD.
async fn set_terminating(
    state: &AppState,
    ctx: &ResourceCtx,
    name: &str,
    reason: &str,
    message: &str,
) {
    let now = meta::now_rfc3339();
    let result = state
        .registry
        .update_with(ctx, name, Some("status"), false, Some(MANAGER), |cur| {
            let mut next = cur.clone();
            set_condition(
                &mut next,
                cond("Terminating", "True", reason, message),
                &now,
            );
            Ok(next)
        })
        .await;
    if let Err(e) = result {
        if e.code != 404 {
            tracing::warn!(crd = %name, error = %e.message, "setting the Terminating condition");
        }
    }
}

/// Condition `c` with its lastTransitionTime (`old`'s when the status is unchanged, else `now`)
/// and its keys in upstream's order.
fn stamped(mut c: Value, old: Option<&Value>, now: &str) -> Value {
    let time = old
        .filter(|o| s(o, "status") == s(&c, "status"))
        .and_then(|o| o.get("lastTransitionTime").cloned())
        .unwrap_or_else(|| json!(now));
    if let Some(m) = c.as_object_mut() {
        m.insert("lastTransitionTime".into(), time);
    }
    reorder_condition(c)
}

/// Sets (or replaces) a condition in `status.conditions`, keeping lastTransitionTime when its
/// status does not change.
pub fn set_condition(crd: &mut Value, c: Value, now: &str) {
    let kind = s(&c, "type").to_string();
    let Some(o) = crd.as_object_mut() else { return };
    let status = o.entry("status").or_insert_with(|| json!({}));
    if !status.is_object() {
        *status = json!({});
    }
    let Some(st) = status.as_object_mut() else {
        return;
    };
    let list = st.entry("conditions").or_insert_with(|| json!([]));
    if !list.is_array() {
        *list = json!([]);
    }
    let Some(list) = list.as_array_mut() else {
        return;
    };
    let c = stamped(c, list.iter().find(|x| s(x, "type") == kind), now);
    match list.iter_mut().find(|x| s(x, "type") == kind) {
        Some(x) => *x = c,
        None => list.push(c),
    }
}

/// Marks a CRD being deleted: the cleanup finalizer and the `Terminating` condition
/// (upstream's CRD registry does this in its Delete).
pub fn mark_deleting(crd: &mut Value) {
    if let Some(m) = meta::metadata_mut(crd) {
        let list = m.entry("finalizers").or_insert_with(|| json!([]));
        if let Some(a) = list.as_array_mut() {
            if !a.iter().any(|f| f == CLEANUP_FINALIZER) {
                a.push(json!(CLEANUP_FINALIZER));
            }
        }
    }
    set_condition(
        crd,
        cond(
            "Terminating",
            "True",
            "InstanceDeletionPending",
            "CustomResourceDeletion is pending",
        ),
        &meta::now_rfc3339(),
    );
}

/// Registers every stored CRD (so they are served before `/readyz` is OK) and starts the
/// controllers, which follow the CRDs in the store until shutdown.
pub async fn start(state: &Arc<AppState>) -> anyhow::Result<()> {
    sync(state).await?;
    let state = state.clone();
    tokio::spawn(async move {
        let shutdown = state.shutdown.clone();
        let mut pending = false;
        loop {
            let from = state.registry.store.current_revision();
            let mut watcher = match state.registry.store.watch(CRD_PREFIX, from) {
                Ok(w) => w,
                Err(e) => {
                    tracing::warn!(error = %e, "watching CRDs");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        _ = shutdown.cancelled() => return,
                    }
                }
            };
            // Anything written before the watch began.
            match sync(&state).await {
                Ok(p) => pending = p,
                Err(e) => tracing::warn!(error = %e, "syncing CRDs"),
            }
            loop {
                let tick = if pending {
                    Duration::from_millis(500)
                } else {
                    Duration::from_secs(60)
                };
                tokio::select! {
                    ev = watcher.next() => match ev {
                        Some(Ok(_)) => {}
                        Some(Err(e)) => {
                            tracing::debug!(error = %e, "CRD watch ended");
                            break;
                        }
                        None => break,
                    },
                    _ = tokio::time::sleep(tick) => {}
                    _ = shutdown.cancelled() => return,
                }
                match sync(&state).await {
                    Ok(p) => pending = p,
                    Err(e) => tracing::warn!(error = %e, "syncing CRDs"),
                }
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPSTREAM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/upstream");

    fn upstream_body(file: &str) -> Value {
        let text = std::fs::read_to_string(format!("{UPSTREAM}/{file}")).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        v["response"]["body"].clone()
    }

    fn widget_crd() -> Value {
        upstream_body("defaults/customresourcedefinition.json")
    }

    #[test]
    fn status_of_a_new_crd_matches_upstream() {
        let crd = widget_crd();
        let status = crd_status(&crd, std::slice::from_ref(&crd), "T");
        let mut want =
            upstream_body("defaults/customresourcedefinition-established.json")["status"].clone();
        for c in want["conditions"].as_array_mut().unwrap() {
            c["lastTransitionTime"] = json!("T");
        }
        assert_eq!(status, want);
        // Stable: a second pass changes nothing (the controller writes only on change).
        let mut established = crd.clone();
        established["status"] = status.clone();
        assert_eq!(crd_status(&established, &[], "later"), status);
    }

    #[test]
    fn conflicting_names_are_not_accepted() {
        let mut first = widget_crd();
        first["status"] = crd_status(&first, &[], "T");
        let mut second = widget_crd();
        second["metadata"]["name"] = json!("gizmos.golden.example.com");
        second["spec"]["names"]["plural"] = json!("gizmos");
        second["spec"]["names"]["singular"] = json!("gizmo");
        second["spec"]["names"]["shortNames"] = json!(["gz"]);
        // Same kind as the first CRD of the group.
        let status = crd_status(&second, &[first.clone(), second.clone()], "T");
        let na = &status["conditions"][0];
        assert_eq!(na["type"], "NamesAccepted");
        assert_eq!(na["status"], "False");
        assert_eq!(na["reason"], "ListKindConflict");
        assert_eq!(status["conditions"][1]["status"], "False");
        assert_eq!(status["conditions"][1]["reason"], "NotAccepted");
        assert_eq!(status["acceptedNames"]["kind"], "");
        second["status"] = status;
        assert!(served_resources(&second).is_empty());
        // The first one is unaffected and served with its short name and status subresource.
        let served = served_resources(&first);
        assert_eq!(served.len(), 1);
        assert_eq!(served[0].short_names, vec!["wdg".to_string()]);
        assert!(served[0].has_status());
        assert_eq!(served[0].list_kind, "WidgetList");
        assert_eq!(served[0].custom.as_ref().unwrap().printer_columns.len(), 3);
    }

    #[test]
    fn served_resource_matches_the_discovery_shape() {
        let mut crd = widget_crd();
        crd["status"] = crd_status(&crd, &[], "T");
        let info = served_resources(&crd).remove(0);
        assert_eq!(info.plural, "widgets");
        assert_eq!(info.scope, Scope::Namespaced);
        assert_eq!(
            info.verbs,
            [
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "create",
                "update",
                "watch"
            ]
        );
        assert_eq!(info.storage_version_hash().len(), 12);
    }

    #[test]
    fn prune_and_validate() {
        let schema = json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["size"],
                    "properties": {
                        "size": {"type": "integer", "minimum": 1},
                        "color": {"type": "string", "enum": ["red", "blue"]},
                        "tags": {"type": "array", "maxItems": 1, "items": {"type": "string"}},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "port": {"x-kubernetes-int-or-string": true},
                    },
                },
            },
        });
        let mut obj = json!({
            "apiVersion": "x/v1", "kind": "W", "metadata": {"name": "a"},
            "spec": {"size": "big", "bogus": 1, "free": {"any": {"x": 1}}, "tags": ["a", "b"],
                     "color": "green", "port": "http"},
            "top": true,
        });
        assert_eq!(unknown_fields(&schema, &obj), vec!["spec.bogus", "top"]);
        prune(&schema, &mut obj);
        assert!(obj["spec"].get("bogus").is_none() && obj.get("top").is_none());
        assert_eq!(obj["spec"]["free"], json!({"any": {"x": 1}}));
        assert_eq!(obj["metadata"]["name"], "a");
        let msgs: Vec<String> = validate(&schema, &obj)
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        assert!(msgs.contains(&r#"spec.size: Invalid value: "string": spec.size in body must be of type integer: "string""#.to_string()), "{msgs:?}");
        assert!(
            msgs.contains(
                &r#"spec.color: Unsupported value: "green": supported values: "red", "blue""#
                    .to_string()
            ),
            "{msgs:?}"
        );
        assert!(
            msgs.contains(&"spec.tags: Too many: 2: must have at most 1 items".to_string()),
            "{msgs:?}"
        );
        assert_eq!(msgs.len(), 3, "{msgs:?}");
        let ok = json!({"spec": {"size": 0}});
        let msgs: Vec<String> = validate(&schema, &ok)
            .iter()
            .map(|c| c.message.clone())
            .collect();
        assert_eq!(
            msgs,
            vec!["Invalid value: 0: spec.size in body should be greater than or equal to 1"]
        );
        let missing = json!({"spec": {}});
        assert_eq!(validate(&schema, &missing)[0].field, "spec.size");
        assert_eq!(validate(&schema, &missing)[0].message, "Required value");
    }

    #[test]
    fn scale_paths() {
        let mut obj = json!({"spec": {}});
        set_path(&mut obj, ".spec.replicas", json!(3));
        set_path(&mut obj, ".status.count", json!(2));
        assert_eq!(get_path(&obj, ".spec.replicas"), Some(&json!(3)));
        assert_eq!(get_path(&obj, ".status.count"), Some(&json!(2)));
        assert_eq!(get_path(&obj, ".status.none"), None);
    }

    #[test]
    fn deleting_marks_the_finalizer_and_condition() {
        let mut crd = widget_crd();
        mark_deleting(&mut crd);
        assert!(has_cleanup_finalizer(&crd));
        let t = condition(&crd, "Terminating").unwrap();
        assert_eq!(t["reason"], "InstanceDeletionPending");
        mark_deleting(&mut crd);
        let f = crd["metadata"]["finalizers"].as_array().unwrap();
        assert_eq!(f.len(), 1);
        crd["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        crd["status"] = crd_status(&crd, &[], "T");
        let served = served_resources(&crd);
        assert!(served[0].custom.as_ref().unwrap().terminating);
    }
}
