//! `fieldValidation` (Strict / Warn / Ignore): unknown fields found by walking an object
//! against the built-in schema, and duplicate fields found while parsing the JSON body.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::errors::{ApiError, ApiResult};
use crate::schema_meta::{DefKind, Node, Scalar, TypeRef};

/// What a write asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    Strict,
    Warn,
    Ignore,
}

impl FieldValidation {
    /// From the `fieldValidation` query parameter (default Warn, as upstream).
    pub fn parse(v: Option<&str>) -> ApiResult<FieldValidation> {
        match v.unwrap_or("") {
            "" | "Warn" => Ok(FieldValidation::Warn),
            "Strict" => Ok(FieldValidation::Strict),
            "Ignore" => Ok(FieldValidation::Ignore),
            other => Err(ApiError::bad_request(format!(
                "fieldValidation parameter unsupported: {other}. Supported values: [Ignore Warn Strict]"
            ))),
        }
    }
}

/// Paths of fields `obj` carries that its schema does not declare, as upstream prints
/// them (`metadata.bogus`, `spec.template.spec.containers[0].bogus`).
pub fn unknown_fields(obj: &Value, root: TypeRef) -> Vec<String> {
    let mut out = Vec::new();
    walk(obj, Node::Type(root), String::new(), &mut out, 0);
    out
}

/// Drops the fields the schema does not declare, as upstream's typed decoding does.
pub fn prune_unknown(obj: &mut Value, root: TypeRef) {
    fn prune(v: &mut Value, node: Node, depth: usize) {
        if depth > 64 {
            return;
        }
        match (v, node) {
            (Value::Object(m), Node::Type(t)) if matches!(t.kind(), DefKind::Object) => {
                m.retain(|k, _| {
                    (depth == 0 && (k == "apiVersion" || k == "kind"))
                        || !matches!(Node::Type(t).child(k), (Node::Unknown, None))
                });
                for (k, child) in m.iter_mut() {
                    prune(child, Node::Type(t).child(k).0, depth + 1);
                }
            }
            (Value::Object(m), Node::Map(_)) => {
                for (k, child) in m.iter_mut() {
                    prune(child, node.child(k).0, depth + 1);
                }
            }
            (Value::Array(items), Node::Array(_)) => {
                for child in items {
                    prune(child, node.elem(), depth + 1);
                }
            }
            _ => {}
        }
    }
    prune(obj, Node::Type(root), 0);
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

fn walk(v: &Value, node: Node, path: String, out: &mut Vec<String>, depth: usize) {
    if depth > 64 {
        return;
    }
    match (v, node) {
        (Value::Object(m), Node::Type(t)) => {
            if !matches!(t.kind(), DefKind::Object) {
                return;
            }
            for (k, child) in m {
                if path.is_empty() && (k == "apiVersion" || k == "kind") {
                    continue;
                }
                let (next, meta) = Node::Type(t).child(k);
                if next == Node::Unknown && meta.is_none() {
                    out.push(join(&path, k));
                    continue;
                }
                walk(child, next, join(&path, k), out, depth + 1);
            }
        }
        (Value::Object(m), Node::Map(_)) => {
            for (k, child) in m {
                walk(child, node.child(k).0, join(&path, k), out, depth + 1);
            }
        }
        (Value::Array(items), Node::Array(_)) => {
            for (i, child) in items.iter().enumerate() {
                walk(child, node.elem(), format!("{path}[{i}]"), out, depth + 1);
            }
        }
        _ => {}
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Whether a JSON value fits a scalar type; returns the Go type name when it does not.
fn scalar_mismatch(v: &Value, s: Scalar) -> Option<&'static str> {
    let ok = match s {
        Scalar::String | Scalar::Bytes | Scalar::DateTime => v.is_string(),
        Scalar::Int32 | Scalar::Int64 | Scalar::Integer => v.is_i64() || v.is_u64(),
        Scalar::Double | Scalar::Number => v.is_number(),
        Scalar::Boolean => v.is_boolean(),
        Scalar::IntOrString => v.is_string() || v.is_i64() || v.is_u64(),
        Scalar::Quantity => v.is_string() || v.is_number(),
    };
    if ok || v.is_null() {
        return None;
    }
    Some(match s {
        Scalar::String | Scalar::Bytes => "string",
        Scalar::DateTime => "v1.Time",
        Scalar::Int32 => "int32",
        Scalar::Int64 | Scalar::Integer => "int64",
        Scalar::Double | Scalar::Number => "float64",
        Scalar::Boolean => "bool",
        Scalar::IntOrString => "intstr.IntOrString",
        Scalar::Quantity => "resource.Quantity",
    })
}

/// The first value whose JSON type cannot decode into the built-in type, as Go's
/// `encoding/json` reports it (`json: cannot unmarshal number into Go struct field
/// ConfigMap.data of type string`).
pub fn type_error(obj: &Value, root: TypeRef, kind: &str) -> Option<String> {
    fn go(v: &Value, node: Node, path: &str, kind: &str, depth: usize) -> Option<String> {
        if depth > 64 || v.is_null() {
            return None;
        }
        let mismatch = |want: &str| {
            Some(format!(
                "json: cannot unmarshal {} into Go struct field {kind}.{path} of type {want}",
                json_type(v)
            ))
        };
        match node {
            Node::Scalar(s) => scalar_mismatch(v, s).and_then(mismatch),
            Node::Type(t) => match t.kind() {
                DefKind::Scalar(s) => scalar_mismatch(v, s).and_then(mismatch),
                DefKind::Opaque => None,
                DefKind::Object => {
                    let Value::Object(m) = v else {
                        return mismatch(t.name().rsplit('.').next().unwrap_or("struct"));
                    };
                    m.iter().find_map(|(k, child)| {
                        let (next, _) = Node::Type(t).child(k);
                        go(child, next, &join(path, k), kind, depth + 1)
                    })
                }
            },
            Node::Map(_) => {
                let Value::Object(m) = v else {
                    return mismatch("map[string]");
                };
                m.iter().find_map(|(k, child)| {
                    go(child, node.child(k).0, &join(path, k), kind, depth + 1)
                })
            }
            Node::Array(_) => {
                let Value::Array(items) = v else {
                    return mismatch("[]");
                };
                items
                    .iter()
                    .find_map(|child| go(child, node.elem(), path, kind, depth + 1))
            }
            Node::Unknown => None,
        }
    }
    let Value::Object(m) = obj else { return None };
    m.iter()
        .filter(|(k, _)| *k != "apiVersion" && *k != "kind")
        .find_map(|(k, child)| {
            let (next, _) = Node::Type(root).child(k);
            go(child, next, k, kind, 1)
        })
}

/// Paths of keys that appear twice in the same JSON object of `body`.
pub fn duplicate_fields(body: &[u8]) -> Vec<String> {
    let mut dups = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(body);
    let _ = DupSeed {
        path: String::new(),
        out: &mut dups,
        depth: 0,
    }
    .deserialize(&mut de);
    dups
}

/// Duplicate keys of a YAML body as upstream's YAML decoder words them:
/// `line 7: key "golden/erin" already set in map`.
pub fn duplicate_yaml_keys(body: &[u8]) -> Vec<String> {
    let mut dups = Vec::new();
    let de = serde_yaml::Deserializer::from_slice(body);
    let _ = DupSeed {
        path: String::new(),
        out: &mut dups,
        depth: 0,
    }
    .deserialize(de);
    let text = String::from_utf8_lossy(body);
    let mut used = std::collections::HashSet::new();
    dups.iter()
        .map(|path| {
            let key = path.rsplit('.').next().unwrap_or(path);
            // The line of the repeated key: its second occurrence as a mapping key.
            let line = text
                .lines()
                .enumerate()
                .filter(|(_, l)| {
                    let t = l.trim_start().trim_start_matches("- ");
                    t.strip_prefix(key)
                        .or_else(|| t.strip_prefix(&format!("\"{key}\"")))
                        .is_some_and(|rest| rest.trim_start().starts_with(':'))
                })
                .map(|(i, _)| i + 1)
                .filter(|i| !used.contains(i))
                .nth(1);
            if let Some(l) = line {
                used.insert(l);
            }
            format!(
                "line {}: key {key:?} already set in map",
                line.map_or_else(|| "?".to_string(), |l| l.to_string())
            )
        })
        .collect()
}

struct DupSeed<'a> {
    path: String,
    out: &'a mut Vec<String>,
    depth: usize,
}

impl<'de> de::DeserializeSeed<'de> for DupSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DupSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        loop {
            if self.depth > 64 {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                return Ok(());
            }
            let seed = DupSeed {
                path: format!("{}[{i}]", self.path),
                out: &mut *self.out,
                depth: self.depth + 1,
            };
            if seq.next_element_seed(seed)?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(k) = map.next_key::<String>()? {
            let path = join(&self.path, &k);
            if !seen.insert(k) {
                self.out.push(path.clone());
            }
            if self.depth > 64 {
                map.next_value::<de::IgnoredAny>()?;
                continue;
            }
            map.next_value_seed(DupSeed {
                path,
                out: &mut *self.out,
                depth: self.depth + 1,
            })?;
        }
        Ok(())
    }
}

/// Applies the policy: Strict fails with upstream's message, Warn returns warnings.
pub fn check(
    mode: FieldValidation,
    kind: &str,
    version: &str,
    body: Option<&[u8]>,
    obj: &Value,
    root: Option<TypeRef>,
    schema_unknown: &[String],
) -> ApiResult<Vec<String>> {
    if let Some(e) = root.and_then(|r| type_error(obj, r, kind)) {
        return Err(ApiError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: {e}"
        )));
    }
    if mode == FieldValidation::Ignore {
        return Ok(Vec::new());
    }
    let mut problems: Vec<String> = Vec::new();
    if let Some(b) = body {
        problems.extend(
            duplicate_fields(b)
                .into_iter()
                .map(|p| format!("duplicate field \"{p}\"")),
        );
    }
    let mut unknown = schema_unknown.to_vec();
    if let Some(root) = root {
        unknown.extend(unknown_fields(obj, root));
    }
    problems.extend(
        unknown
            .into_iter()
            .map(|p| format!("unknown field \"{p}\"")),
    );
    if problems.is_empty() {
        return Ok(Vec::new());
    }
    match mode {
        FieldValidation::Strict => Err(ApiError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {}",
            problems.join(", ")
        ))),
        _ => Ok(problems),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_unknown_fields() {
        let root = crate::schema_meta::root_for_gvk("", "v1", "ConfigMap").unwrap();
        let obj = json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","bogusMeta":1},"data":{"k":"v"},"bogusTop":"x"});
        assert_eq!(
            unknown_fields(&obj, root),
            vec!["metadata.bogusMeta", "bogusTop"]
        );
        let root = crate::schema_meta::root_for_gvk("apps", "v1", "Deployment").unwrap();
        let obj = json!({"spec":{"template":{"spec":{"containers":[{"name":"a","bogus":1}]}}}});
        assert_eq!(
            unknown_fields(&obj, root),
            vec!["spec.template.spec.containers[0].bogus"]
        );
    }

    #[test]
    fn wrong_types_are_reported_like_go() {
        let root = crate::schema_meta::root_for_gvk("", "v1", "ConfigMap").unwrap();
        let obj =
            json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"data":{"k":1}});
        assert_eq!(
            type_error(&obj, root, "ConfigMap").unwrap(),
            "json: cannot unmarshal number into Go struct field ConfigMap.data.k of type string"
        );
        let root = crate::schema_meta::root_for_gvk("apps", "v1", "Deployment").unwrap();
        let ok = json!({"spec":{"replicas":3,"template":{"spec":{"containers":[{"name":"a","ports":[{"containerPort":80}]}]}}}});
        assert_eq!(type_error(&ok, root, "Deployment"), None);
        let bad = json!({"spec":{"replicas":"three"}});
        assert!(type_error(&bad, root, "Deployment")
            .unwrap()
            .contains("of type int32"));
    }

    #[test]
    fn prunes_unknown_fields() {
        let root = crate::schema_meta::root_for_gvk("", "v1", "ConfigMap").unwrap();
        let mut obj = json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","bogusMeta":1,"labels":{"a":"b"}},"data":{"k":"v"},"bogusTop":"x"});
        prune_unknown(&mut obj, root);
        assert_eq!(
            obj,
            json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","labels":{"a":"b"}},"data":{"k":"v"}})
        );
    }

    #[test]
    fn finds_yaml_duplicates_with_lines() {
        let body = b"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: ssa-demo\n  labels:\n    golden/erin: a\n    golden/erin: b\n";
        assert_eq!(
            duplicate_yaml_keys(body),
            vec!["line 7: key \"golden/erin\" already set in map".to_string()]
        );
    }

    #[test]
    fn finds_duplicates() {
        let d = duplicate_fields(br#"{"metadata":{"name":"x"},"data":{"k":"v","k":"v2"}}"#);
        assert_eq!(d, vec!["data.k"]);
        assert!(duplicate_fields(b"not json").is_empty());
    }

    #[test]
    fn strict_message_matches_upstream() {
        let root = crate::schema_meta::root_for_gvk("", "v1", "ConfigMap");
        let body = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"fv-strict","bogusMeta":1},"data":{"k":"v"},"bogusTop":"x"}"#;
        let obj: Value = serde_json::from_slice(body).unwrap();
        let e = check(
            FieldValidation::Strict,
            "ConfigMap",
            "v1",
            Some(body),
            &obj,
            root,
            &[],
        )
        .unwrap_err();
        assert_eq!(e.message, "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: unknown field \"metadata.bogusMeta\", unknown field \"bogusTop\"");
        let w = check(
            FieldValidation::Warn,
            "ConfigMap",
            "v1",
            Some(body),
            &obj,
            root,
            &[],
        )
        .unwrap();
        assert_eq!(w.len(), 2);
    }
}
