//! `fieldValidation` (Strict / Warn / Ignore): unknown fields found by walking an object
//! against the built-in schema, and duplicate fields found while parsing the JSON body.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::errors::{ApiError, ApiResult};
use crate::schema_meta::{Node, TypeRef};

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
            if !matches!(t.kind(), crate::schema_meta::DefKind::Object) {
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
                walk(child, node.elem(), join(&path, k), out, depth + 1);
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
) -> ApiResult<Vec<String>> {
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
    if let Some(root) = root {
        problems.extend(
            unknown_fields(obj, root)
                .into_iter()
                .map(|p| format!("unknown field \"{p}\"")),
        );
    }
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
        assert_eq!(unknown_fields(&obj, root), vec!["metadata.bogusMeta", "bogusTop"]);
        let root = crate::schema_meta::root_for_gvk("apps", "v1", "Deployment").unwrap();
        let obj = json!({"spec":{"template":{"spec":{"containers":[{"name":"a","bogus":1}]}}}});
        assert_eq!(
            unknown_fields(&obj, root),
            vec!["spec.template.spec.containers[0].bogus"]
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
        let e = check(FieldValidation::Strict, "ConfigMap", "v1", Some(body), &obj, root).unwrap_err();
        assert_eq!(e.message, "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: unknown field \"metadata.bogusMeta\", unknown field \"bogusTop\"");
        let w = check(FieldValidation::Warn, "ConfigMap", "v1", Some(body), &obj, root).unwrap();
        assert_eq!(w.len(), 2);
    }
}
