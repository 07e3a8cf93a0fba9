//! Object metadata helpers: validation of names, labels and annotations as upstream's
//! apimachinery validation does it, timestamps, uids and generated names.

use serde_json::{Map, Value};

use crate::errors::Cause;

pub const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
pub const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
pub const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

/// The rule an object's name must follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    Dns1123Subdomain,
    Dns1123Label,
    Dns1035Label,
    /// Only "not '.' or '..' and no '/' or '%'" (path segment names, e.g. RBAC objects).
    PathSegment,
}

fn is_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

pub fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && is_alnum(b[0])
        && is_alnum(b[b.len() - 1])
        && b.iter().all(|&c| is_alnum(c) || c == b'-')
}

pub fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns1123_label)
}

pub fn is_dns1035_label(s: &str) -> bool {
    is_dns1123_label(s) && s.as_bytes()[0].is_ascii_lowercase()
}

/// Validates a name; returns upstream's messages (without the "Invalid value" prefix).
pub fn validate_name(name: &str, rule: NameRule) -> Vec<String> {
    let mut errs = Vec::new();
    match rule {
        NameRule::Dns1123Subdomain => {
            if name.len() > 253 {
                errs.push("must be no more than 253 characters".to_string());
            }
            if !name.split('.').all(is_dns1123_label) {
                errs.push(DNS1123_SUBDOMAIN_MSG.to_string());
            }
        }
        NameRule::Dns1123Label => {
            if name.len() > 63 {
                errs.push("must be no more than 63 characters".to_string());
            }
            if !is_dns1123_label(&name[..name.len().min(63)]) || name.is_empty() {
                errs.push(DNS1123_LABEL_MSG.to_string());
            }
        }
        NameRule::Dns1035Label => {
            if name.len() > 63 {
                errs.push("must be no more than 63 characters".to_string());
            }
            let head = &name[..name.len().min(63)];
            if head.is_empty()
                || !is_dns1123_label(head)
                || !head.as_bytes()[0].is_ascii_lowercase()
            {
                errs.push(DNS1035_LABEL_MSG.to_string());
            }
        }
        NameRule::PathSegment => {
            if name == "." || name == ".." {
                errs.push(format!("may not be '{name}'"));
            }
            for bad in ["/", "%"] {
                if name.contains(bad) {
                    errs.push(format!("may not contain '{bad}'"));
                }
            }
        }
    }
    errs
}

const QUALIFIED_NAME_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

fn is_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.')
}

/// `validation.IsQualifiedName`: `[prefix/]name`.
pub fn qualified_name_errors(key: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if key.matches('/').count() > 1 {
        errs.push("a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')".to_string());
        return errs;
    }
    if let Some(p) = prefix {
        if p.is_empty() {
            errs.push("prefix part must be non-empty".to_string());
        } else if !is_dns1123_subdomain(p) {
            errs.push(format!("prefix part {DNS1123_SUBDOMAIN_MSG}"));
        }
    }
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else {
        if name.len() > 63 {
            errs.push("name part must be no more than 63 characters".to_string());
        }
        if !is_name_part(name) {
            errs.push(QUALIFIED_NAME_MSG.to_string());
        }
    }
    errs
}

pub fn label_value_errors(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.len() > 63 {
        errs.push("must be no more than 63 characters".to_string());
    }
    if !v.is_empty() && !is_name_part(v) {
        errs.push(LABEL_VALUE_MSG.to_string());
    }
    errs
}

/// Validates `metadata.labels` and `metadata.annotations` at `path` (e.g. `metadata`).
pub fn validate_labels_annotations(meta: &Map<String, Value>, path: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    if let Some(labels) = meta.get("labels") {
        match labels {
            Value::Object(m) => {
                for (k, v) in m {
                    for e in qualified_name_errors(k) {
                        causes.push(Cause::invalid(
                            format!("{path}.labels"),
                            &Value::String(k.clone()),
                            &e,
                        ));
                    }
                    match v {
                        Value::String(s) => {
                            for e in label_value_errors(s) {
                                causes.push(Cause::invalid(
                                    format!("{path}.labels"),
                                    &Value::String(s.clone()),
                                    &e,
                                ));
                            }
                        }
                        other => causes.push(Cause::invalid(
                            format!("{path}.labels"),
                            other,
                            "must be a string",
                        )),
                    }
                }
            }
            Value::Null => {}
            other => causes.push(Cause::invalid(
                format!("{path}.labels"),
                other,
                "must be a map of strings",
            )),
        }
    }
    if let Some(ann) = meta.get("annotations") {
        match ann {
            Value::Object(m) => {
                let mut total = 0usize;
                for (k, v) in m {
                    for e in qualified_name_errors(&k.to_ascii_lowercase()) {
                        causes.push(Cause::invalid(
                            format!("{path}.annotations"),
                            &Value::String(k.clone()),
                            &e,
                        ));
                    }
                    total += k.len() + v.as_str().map_or(0, str::len);
                }
                if total > 256 * 1024 {
                    causes.push(Cause::too_long(format!("{path}.annotations"), 256 * 1024));
                }
            }
            Value::Null => {}
            other => causes.push(Cause::invalid(
                format!("{path}.annotations"),
                other,
                "must be a map of strings",
            )),
        }
    }
    causes
}

/// RFC 3339 timestamp at second precision, as `metav1.Time` serializes.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub fn new_uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The 5-character random suffix of `generateName`, from upstream's alphabet.
pub fn name_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    bytes[..5]
        .iter()
        .map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char)
        .collect()
}

/// `metadata` of an object as a mutable map, created if absent.
pub fn metadata_mut(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    let o = obj.as_object_mut()?;
    if !o.get("metadata").is_some_and(Value::is_object) {
        o.insert("metadata".into(), Value::Object(Map::new()));
    }
    o.get_mut("metadata").and_then(Value::as_object_mut)
}

pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("web-1.example", NameRule::Dns1123Subdomain).is_empty());
        assert_eq!(
            validate_name("Bad_Name", NameRule::Dns1123Subdomain),
            vec![DNS1123_SUBDOMAIN_MSG.to_string()]
        );
        assert!(!validate_name("a.b", NameRule::Dns1123Label).is_empty());
        assert!(!validate_name("1abc", NameRule::Dns1035Label).is_empty());
        assert!(validate_name("system:admin", NameRule::PathSegment).is_empty());
        assert!(!validate_name("a/b", NameRule::PathSegment).is_empty());
    }

    #[test]
    fn labels() {
        assert!(qualified_name_errors("app.kubernetes.io/name").is_empty());
        assert!(!qualified_name_errors("-bad").is_empty());
        assert!(!qualified_name_errors("a/b/c").is_empty());
        assert!(label_value_errors("").is_empty());
        assert!(!label_value_errors("bad value").is_empty());
        let suffix = name_suffix();
        assert_eq!(suffix.len(), 5);
    }
}
