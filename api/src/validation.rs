//! Kind-specific validation of the built-in kinds, as kube-apiserver v1.36 does it
//! (`k8s.io/kubernetes/pkg/apis/*/validation` plus the registry strategies' `Validate` and
//! `ValidateUpdate`): the same checks in the same order, with upstream's field paths, reasons and
//! messages (`field.Error`s rendered as `metav1.StatusCause`s).
//!
//! Object metadata (name, generateName, namespace, labels, annotations, finalizers) is validated
//! by the generic path; this module covers what is specific to each kind. It runs after
//! defaulting, so fields that upstream always defaults (a container's `imagePullPolicy`, a pod's
//! `restartPolicy`, a Service's `sessionAffinity`, ...) are required here exactly as upstream
//! requires them.
//!
//! Values in messages are printed as upstream's `field.Error.ErrorBody` prints them: strings
//! quoted, numbers and booleans bare, values with a `String()` method (quantities, int-or-string)
//! through it, maps and structs as JSON (maps with sorted keys).

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use serde_json::{json, Map, Value};

use crate::errors::Cause;
use crate::meta;
use crate::selectors::{self, LabelSelector};

/// Kind-specific validation of `obj` (after defaulting); `old` is the stored object for updates.
/// Returns upstream's causes; empty = valid.
pub fn validate(
    group: &str,
    version: &str,
    kind: &str,
    obj: &Value,
    old: Option<&Value>,
) -> Vec<Cause> {
    let mut e = Errs::default();
    match (group, kind) {
        ("", "Pod") => pod(&mut e, obj, old),
        ("", "PodTemplate") => pod_template(&mut e, obj),
        ("", "ReplicationController") => replication_controller(&mut e, obj),
        ("", "Service") => service(&mut e, obj, old),
        ("", "ConfigMap") => config_map(&mut e, obj, old),
        ("", "Secret") => secret(&mut e, obj, old),
        ("", "Namespace") => namespace(&mut e, obj),
        ("", "Node") => node(&mut e, obj, old),
        ("", "PersistentVolumeClaim") => pvc(&mut e, obj, old),
        ("", "Endpoints") => endpoints(&mut e, obj),
        ("", "LimitRange") => limit_range(&mut e, obj),
        ("", "ResourceQuota") => resource_quota(&mut e, obj),
        ("", "Event") => core_event(&mut e, obj),
        ("events.k8s.io", "Event") => events_event(&mut e, obj),
        ("apps", "Deployment") => deployment(&mut e, group, version, obj, old),
        ("apps", "ReplicaSet") => replica_set(&mut e, group, version, obj, old),
        ("apps", "StatefulSet") => stateful_set(&mut e, obj, old),
        ("apps", "DaemonSet") => daemon_set(&mut e, group, version, obj, old),
        ("batch", "Job") => job(&mut e, obj, old),
        ("batch", "CronJob") => cron_job(&mut e, obj, old),
        ("networking.k8s.io", "Ingress") => ingress(&mut e, obj),
        ("policy", "PodDisruptionBudget") => pdb(&mut e, obj),
        ("rbac.authorization.k8s.io", "Role") => role(&mut e, obj, true),
        ("rbac.authorization.k8s.io", "ClusterRole") => role(&mut e, obj, false),
        ("rbac.authorization.k8s.io", "RoleBinding") => role_binding(&mut e, obj, old, true),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            role_binding(&mut e, obj, old, false)
        }
        ("scheduling.k8s.io", "PriorityClass") => priority_class(&mut e, obj, old),
        ("storage.k8s.io", "StorageClass") => storage_class(&mut e, obj, old),
        ("coordination.k8s.io", "Lease") => lease(&mut e, obj),
        ("autoscaling", "HorizontalPodAutoscaler") => hpa(&mut e, version, obj),
        ("networking.k8s.io", "NetworkPolicy") => network_policy(&mut e, obj),
        ("networking.k8s.io", "IngressClass") => ingress_class(&mut e, obj, old),
        ("discovery.k8s.io", "EndpointSlice") => endpoint_slice(&mut e, obj),
        ("", "PersistentVolume") => persistent_volume(&mut e, obj),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd(&mut e, obj),
        _ => {}
    }
    e.0
}

/// Upstream's `NormalizeClusterIPs` (Service strategy `PrepareForCreate`/`PrepareForUpdate`):
/// keeps `spec.clusterIP` and `spec.clusterIPs` in step the way old and new clients expect.
/// [`validate`] applies it to a copy before validating a Service; call it on the stored object
/// too so what is stored is what was validated.
pub fn normalize_service_cluster_ips(svc: &mut Value, old: Option<&Value>) {
    let Some(spec) = svc.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let ip = spec
        .get("clusterIP")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let ips: Vec<Value> = spec
        .get("clusterIPs")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let Some(old) = old else {
        if !ip.is_empty() && ips.is_empty() {
            spec.insert("clusterIPs".into(), json!([ip]));
        }
        return;
    };
    let old_ip = gs(&old["spec"], "clusterIP");
    let old_ips = ga(&old["spec"], "clusterIPs");
    let mut ips = ips;
    if !old_ips.is_empty() && ips.is_empty() && old_ip == ip {
        ips = old_ips.to_vec();
        spec.insert("clusterIPs".into(), Value::Array(ips.clone()));
    }
    if old_ip != ip {
        let same = ips.as_slice() == old_ips;
        if !old_ip.is_empty() && ip.is_empty() && same {
            spec.remove("clusterIPs");
        }
        if same {
            spec.insert("clusterIPs".into(), json!([ip]));
        }
    }
}

/// The message of the `400 BadRequest` upstream answers when a quantity in the body of a
/// built-in kind does not parse (a decoding error, before validation): `None` when every
/// quantity parses, and always for kinds that carry no `resource.Quantity`.
pub fn quantity_decode_error(
    group: &str,
    version: &str,
    kind: &str,
    obj: &Value,
) -> Option<String> {
    const WITH_QUANTITIES: &[(&str, &str)] = &[
        ("", "Pod"),
        ("", "PodTemplate"),
        ("", "ReplicationController"),
        ("", "PersistentVolumeClaim"),
        ("", "PersistentVolume"),
        ("", "Node"),
        ("", "ResourceQuota"),
        ("", "LimitRange"),
        ("apps", "Deployment"),
        ("apps", "ReplicaSet"),
        ("apps", "StatefulSet"),
        ("apps", "DaemonSet"),
        ("batch", "Job"),
        ("batch", "CronJob"),
    ];
    if !WITH_QUANTITIES.contains(&(group, kind)) {
        return None;
    }
    fn walk(v: &Value, under_list: bool, depth: usize) -> bool {
        if depth > 64 {
            return false;
        }
        match v {
            Value::Object(m) => m.iter().any(|(k, v)| {
                let list = matches!(
                    k.as_str(),
                    "requests"
                        | "limits"
                        | "capacity"
                        | "allocatable"
                        | "overhead"
                        | "hard"
                        | "used"
                        | "max"
                        | "min"
                        | "default"
                        | "defaultRequest"
                        | "maxLimitRequestRatio"
                );
                if under_list || k == "sizeLimit" {
                    if let Value::String(s) = v {
                        return parse_quantity(s).is_none();
                    }
                }
                walk(v, list, depth + 1)
            }),
            Value::Array(a) => a.iter().any(|v| walk(v, false, depth + 1)),
            _ => false,
        }
    }
    walk(obj, false, 0).then(|| {
        format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        )
    })
}

// =============================================================================================
// Errors and value rendering
// =============================================================================================

const IS_NEGATIVE: &str = "must be greater than or equal to 0";
const IMMUTABLE: &str = "field is immutable";
const NOT_POSITIVE: &str = "must be greater than zero";
const FILE_MODE: &str = "must be a number between 0 and 0777 (octal), both inclusive";
const MAX_INT32: i64 = i32::MAX as i64;

/// The error list of one validation (`field.ErrorList`).
#[derive(Default)]
struct Errs(Vec<Cause>);

impl Errs {
    fn invalid(&mut self, path: impl Into<String>, value: Value, detail: &str) {
        self.invalid_shown(path, &shown(&value), detail);
    }

    /// `field.Invalid` whose value prints through its `String()` method (no quotes).
    fn invalid_shown(&mut self, path: impl Into<String>, value: &str, detail: &str) {
        let message = if detail.is_empty() {
            format!("Invalid value: {value}")
        } else {
            format!("Invalid value: {value}: {detail}")
        };
        self.0
            .push(Cause::new("FieldValueInvalid", path.into(), message));
    }

    fn required(&mut self, path: impl Into<String>, detail: &str) {
        self.0.push(Cause::required(path, detail));
    }

    fn forbidden(&mut self, path: impl Into<String>, detail: &str) {
        self.0.push(Cause::forbidden(path, detail));
    }

    fn not_supported(&mut self, path: impl Into<String>, value: Value, supported: &[&str]) {
        self.0.push(Cause::not_supported(path, &value, supported));
    }

    fn duplicate(&mut self, path: impl Into<String>, value: Value) {
        self.0.push(Cause::new(
            "FieldValueDuplicate",
            path.into(),
            format!("Duplicate value: {}", shown(&value)),
        ));
    }

    fn not_found(&mut self, path: impl Into<String>, value: Value, detail: &str) {
        let mut message = format!("Not found: {}", shown(&value));
        if !detail.is_empty() {
            message.push_str(": ");
            message.push_str(detail);
        }
        self.0
            .push(Cause::new("FieldValueNotFound", path.into(), message));
    }

    fn too_many(&mut self, path: impl Into<String>, actual: usize, max: usize) {
        self.0.push(Cause::new(
            "FieldValueTooMany",
            path.into(),
            format!("Too many: {actual}: must have at most {max} items"),
        ));
    }

    fn too_long(&mut self, path: impl Into<String>, max: usize) {
        self.0.push(Cause::too_long(path, max));
    }

    /// `field.TooLongMaxLength`.
    fn too_long_max_length(&mut self, path: impl Into<String>, max: usize) {
        self.0.push(Cause::new(
            "FieldValueTooLong",
            path.into(),
            format!("Too long: may not be longer than {max}"),
        ));
    }

    /// `ValidateImmutableField`.
    fn immutable(&mut self, path: &str, new: Option<&Value>, old: Option<&Value>) {
        if !semantic_eq(new.unwrap_or(&Value::Null), old.unwrap_or(&Value::Null)) {
            self.invalid(path, go_value(new.unwrap_or(&Value::Null)), IMMUTABLE);
        }
    }

    /// `ValidateNonnegativeField`.
    fn nonnegative(&mut self, path: &str, value: Option<i64>) {
        if let Some(v) = value.filter(|v| *v < 0) {
            self.invalid(path, Value::from(v), IS_NEGATIVE);
        }
    }
}

/// How `field.Error.ErrorBody` prints a value: strings quoted (`%q`), the rest as JSON.
fn shown(value: &Value) -> String {
    match value {
        Value::String(s) => go_quote(s),
        other => other.to_string(),
    }
}

/// Go's `%q` (`strconv.Quote`) for the strings that occur here.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON value as Go's `json.Marshal` prints the Go value behind it: object keys sorted (maps),
/// except for the few structs whose field order is known ([`selector_value`]).
fn go_value(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            if m.contains_key("matchLabels") || m.contains_key("matchExpressions") {
                return selector_value(v);
            }
            let sorted: BTreeMap<&String, Value> =
                m.iter().map(|(k, v)| (k, go_value(v))).collect();
            Value::Object(
                sorted
                    .into_iter()
                    .map(|(k, v)| (k.clone(), v))
                    .collect::<Map<String, Value>>(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(go_value).collect()),
        other => other.clone(),
    }
}

/// A `metav1.LabelSelector` in its struct field order (`matchLabels`, `matchExpressions`).
fn selector_value(v: &Value) -> Value {
    let mut out = Map::new();
    if let Some(ml) = v.get("matchLabels").filter(|m| !is_empty_value(m)) {
        out.insert("matchLabels".into(), go_value(ml));
    }
    if let Some(me) = v.get("matchExpressions").and_then(Value::as_array) {
        if !me.is_empty() {
            let exprs = me
                .iter()
                .map(|r| {
                    let mut o = Map::new();
                    o.insert("key".into(), Value::String(gs(r, "key").into()));
                    o.insert("operator".into(), Value::String(gs(r, "operator").into()));
                    if let Some(vals) = r.get("values").filter(|v| !is_empty_value(v)) {
                        o.insert("values".into(), vals.clone());
                    }
                    Value::Object(o)
                })
                .collect();
            out.insert("matchExpressions".into(), Value::Array(exprs));
        }
    }
    Value::Object(out)
}

fn st(s: &str) -> Value {
    Value::String(s.to_string())
}

// =============================================================================================
// Paths and accessors
// =============================================================================================

fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

fn key(path: &str, k: &str) -> String {
    format!("{path}[{k}]")
}

/// A present, non-null field.
fn get<'a>(v: &'a Value, k: &str) -> Option<&'a Value> {
    v.get(k).filter(|x| !x.is_null())
}

/// A string field; `""` when absent (Go's zero value).
fn gs<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

/// A list field; empty when absent.
fn ga<'a>(v: &'a Value, k: &str) -> &'a [Value] {
    v.get(k)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn gm<'a>(v: &'a Value, k: &str) -> Option<&'a Map<String, Value>> {
    v.get(k).and_then(Value::as_object)
}

fn gi(v: &Value, k: &str) -> Option<i64> {
    v.get(k).and_then(Value::as_i64)
}

fn gb(v: &Value, k: &str) -> bool {
    v.get(k).and_then(Value::as_bool).unwrap_or(false)
}

fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// `apiequality.Semantic.DeepEqual` on JSON: nulls and empty lists equal absence, quantities
/// compare by value.
fn semantic_eq(a: &Value, b: &Value) -> bool {
    normalize(a, false) == normalize(b, false)
}

fn normalize(v: &Value, quantities: bool) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null() && !matches!(v, Value::Array(a) if a.is_empty()))
                .map(|(k, v)| {
                    let q = matches!(
                        k.as_str(),
                        "requests" | "limits" | "overhead" | "capacity" | "allocatable"
                    );
                    let v = if quantities || k == "sizeLimit" {
                        match v {
                            Value::String(s) => match parse_quantity(s) {
                                Some(q) => Value::String(format!("{}n", q.nano)),
                                None => v.clone(),
                            },
                            other => normalize(other, false),
                        }
                    } else {
                        normalize(v, q)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|v| normalize(v, false)).collect()),
        other => other.clone(),
    }
}

// =============================================================================================
// Name and format rules (k8s.io/apimachinery/pkg/util/validation)
// =============================================================================================

fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}

fn inclusive_range(lo: i64, hi: i64) -> String {
    format!("must be between {lo} and {hi}, inclusive")
}

fn lower_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`
fn label_re(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && lower_alnum(b[0])
        && lower_alnum(b[b.len() - 1])
        && b.iter().all(|&c| lower_alnum(c) || c == b'-')
}

fn subdomain_re(s: &str) -> bool {
    s.split('.').all(label_re)
}

fn dns1123_label_errors(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.len() > 63 {
        errs.push(max_len_error(63));
    }
    if !label_re(v) {
        if subdomain_re(v) {
            errs.push("must not contain dots".to_string());
        } else {
            errs.push(meta::DNS1123_LABEL_MSG.to_string());
        }
    }
    errs
}

fn dns1123_subdomain_errors(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.len() > 253 {
        errs.push(max_len_error(253));
    }
    if !subdomain_re(v) {
        errs.push(meta::DNS1123_SUBDOMAIN_MSG.to_string());
    }
    errs
}

fn dns1035_label_errors(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.len() > 63 {
        errs.push(max_len_error(63));
    }
    if !(label_re(v) && v.as_bytes()[0].is_ascii_lowercase()) {
        errs.push(meta::DNS1035_LABEL_MSG.to_string());
    }
    errs
}

/// `NameIsDNSSubdomain(name, prefix)`.
fn subdomain_name_errors(name: &str, prefix: bool) -> Vec<String> {
    if prefix && name.len() > 1 && name.ends_with('-') {
        if let Some(head) = name.get(..name.len() - 2) {
            return dns1123_subdomain_errors(&format!("{head}a"));
        }
    }
    dns1123_subdomain_errors(name)
}

fn check_dns1123_label(e: &mut Errs, value: &str, path: &str) {
    for msg in dns1123_label_errors(value) {
        e.invalid(path, st(value), &msg);
    }
}

fn check_dns1123_subdomain(e: &mut Errs, value: &str, path: &str) {
    for msg in dns1123_subdomain_errors(value) {
        e.invalid(path, st(value), &msg);
    }
}

/// `ValidateQualifiedName` / `ValidateLabelName`.
fn check_qualified_name(e: &mut Errs, value: &str, path: &str) {
    for msg in selectors::label_key_errors(value) {
        e.invalid(path, st(value), &msg);
    }
}

/// `ValidateLabels`: keys and values of a label map, all reported at `path`.
fn check_labels(e: &mut Errs, labels: Option<&Value>, path: &str) {
    let Some(m) = labels.and_then(Value::as_object) else {
        return;
    };
    let sorted: BTreeMap<&String, &Value> = m.iter().collect();
    for (k, v) in sorted {
        check_qualified_name(e, k, path);
        let v = v.as_str().unwrap_or("");
        for msg in selectors::label_value_errors(v) {
            e.invalid(path, st(v), &msg);
        }
    }
}

fn valid_port_name_errors(port: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if port.len() > 15 {
        errs.push(max_len_error(15));
    }
    if port.is_empty() || !port.bytes().all(|c| lower_alnum(c) || c == b'-') {
        errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".into());
    }
    if !port.bytes().any(|c| c.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".into());
    }
    if port.contains("--") {
        errs.push("must not contain consecutive hyphens".into());
    }
    if port.starts_with('-') || port.ends_with('-') {
        errs.push("must not begin or end with a hyphen".into());
    }
    errs
}

fn valid_port_num(port: i64) -> bool {
    (1..=65535).contains(&port)
}

/// `IsRelaxedEnvVarName` (RelaxedEnvironmentVariableValidation is on in v1.36).
fn env_var_name_errors(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.is_empty() {
        errs.push("environment variable name must be non-empty".to_string());
    }
    if v.chars().any(|c| !(' '..='~').contains(&c) || c == '=') {
        errs.push(
            "a valid environment variable name must consist only of printable ASCII characters other than '='"
                .to_string(),
        );
    }
    errs
}

fn config_map_key_errors(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.len() > 253 {
        errs.push(max_len_error(253));
    }
    if v.is_empty()
        || !v
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.')
    {
        errs.push("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')".to_string());
    }
    if v == "." {
        errs.push("must not be '.'".to_string());
    } else if v == ".." {
        errs.push("must not be '..'".to_string());
    } else if v.starts_with("..") {
        errs.push("must not start with '..'".to_string());
    }
    errs
}

fn percent_ok(s: &str) -> bool {
    s.len() >= 2 && s.ends_with('%') && s[..s.len() - 1].bytes().all(|c| c.is_ascii_digit())
}

/// `netutils.ParseIPSloppy` (leading zeros in IPv4 octets accepted).
fn parse_ip(s: &str) -> Option<std::net::IpAddr> {
    if let Ok(ip) = s.parse::<std::net::IpAddr>() {
        return Some(ip);
    }
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut octets = [0u8; 4];
    for (i, p) in parts.iter().enumerate() {
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        octets[i] = p.parse().ok()?;
    }
    Some(std::net::IpAddr::from(octets))
}

fn check_ip(e: &mut Errs, value: &str, path: &str) -> bool {
    if parse_ip(value).is_none() {
        e.invalid(
            path,
            st(value),
            "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
        );
        return false;
    }
    true
}

fn parse_cidr(s: &str) -> Option<(std::net::IpAddr, u8)> {
    let (ip, bits) = s.split_once('/')?;
    let ip = parse_ip(ip)?;
    let bits: u8 = bits.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((ip, bits))
}

fn check_cidr(e: &mut Errs, value: &str, path: &str) {
    if parse_cidr(value).is_none() {
        e.invalid(
            path,
            st(value),
            "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
        );
    }
}

// =============================================================================================
// Quantities (k8s.io/apimachinery/pkg/api/resource)
// =============================================================================================

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum QFormat {
    DecimalSI,
    BinarySI,
    DecimalExponent,
}

/// A quantity as a count of nano-units (fractions below a nano-unit round up).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Quantity {
    pub(crate) nano: i128,
    pub(crate) format: QFormat,
}

pub(crate) const NANO: i128 = 1_000_000_000;

pub(crate) fn parse_quantity(s: &str) -> Option<Quantity> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut negative = false;
    if let Some(&c) = b.first() {
        if c == b'+' || c == b'-' {
            negative = c == b'-';
            i = 1;
        }
    }
    let mut mantissa: i128 = 0;
    let mut frac_digits: i32 = 0;
    let mut digits = 0;
    let mut dot = false;
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
        if b[i] == b'.' {
            if dot {
                return None;
            }
            dot = true;
        } else {
            digits += 1;
            if mantissa < 10i128.pow(28) {
                mantissa = mantissa * 10 + i128::from(b[i] - b'0');
                if dot {
                    frac_digits += 1;
                }
            } else if !dot {
                return None;
            }
        }
        i += 1;
    }
    if digits == 0 {
        return None;
    }
    let suffix = &s[i..];
    let (format, pow10, pow2): (QFormat, i32, u32) = match suffix {
        "" => (QFormat::DecimalSI, 0, 0),
        "n" => (QFormat::DecimalSI, -9, 0),
        "u" => (QFormat::DecimalSI, -6, 0),
        "m" => (QFormat::DecimalSI, -3, 0),
        "k" => (QFormat::DecimalSI, 3, 0),
        "M" => (QFormat::DecimalSI, 6, 0),
        "G" => (QFormat::DecimalSI, 9, 0),
        "T" => (QFormat::DecimalSI, 12, 0),
        "P" => (QFormat::DecimalSI, 15, 0),
        "E" => (QFormat::DecimalSI, 18, 0),
        "Ki" => (QFormat::BinarySI, 0, 10),
        "Mi" => (QFormat::BinarySI, 0, 20),
        "Gi" => (QFormat::BinarySI, 0, 30),
        "Ti" => (QFormat::BinarySI, 0, 40),
        "Pi" => (QFormat::BinarySI, 0, 50),
        "Ei" => (QFormat::BinarySI, 0, 60),
        other => {
            let rest = other
                .strip_prefix('e')
                .or_else(|| other.strip_prefix('E'))?;
            let digits = rest.strip_prefix(['+', '-']).unwrap_or(rest);
            if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let exp: i32 = rest.parse().ok()?;
            (QFormat::DecimalExponent, exp, 0)
        }
    };
    let mut v = mantissa.checked_mul(1i128 << pow2)?;
    let exp = pow10.checked_add(9)?.checked_sub(frac_digits)?;
    if exp >= 0 {
        v = v.checked_mul(10i128.checked_pow(u32::try_from(exp).ok()?)?)?;
    } else {
        let d = 10i128.checked_pow(u32::try_from(-exp).ok()?)?;
        v = (v + d - 1) / d;
    }
    Some(Quantity {
        nano: if negative { -v } else { v },
        format,
    })
}

impl Quantity {
    /// `Quantity.String()`: the canonical form.
    pub(crate) fn canonical(&self) -> String {
        if self.nano == 0 {
            return "0".to_string();
        }
        let sign = if self.nano < 0 { "-" } else { "" };
        let a = self.nano.unsigned_abs();
        let nano = NANO.unsigned_abs();
        if self.format == QFormat::BinarySI && a >= 1024 * nano && a.is_multiple_of(nano) {
            let mut n = a / nano;
            let mut exp = 0;
            while exp < 6 && n.is_multiple_of(1024) {
                n /= 1024;
                exp += 1;
            }
            let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][exp];
            return format!("{sign}{n}{suffix}");
        }
        let mut n = a;
        let mut exp: i32 = -9;
        while exp < 18 && n.is_multiple_of(1000) {
            n /= 1000;
            exp += 3;
        }
        if self.format == QFormat::DecimalExponent {
            if exp == 0 {
                return format!("{sign}{n}");
            }
            return format!("{sign}{n}e{exp}");
        }
        let suffix = match exp {
            -9 => "n",
            -6 => "u",
            -3 => "m",
            0 => "",
            3 => "k",
            6 => "M",
            9 => "G",
            12 => "T",
            15 => "P",
            _ => "E",
        };
        format!("{sign}{n}{suffix}")
    }
}

/// A quantity field: a string or a JSON number.
pub(crate) fn quantity_of(v: &Value) -> Option<Quantity> {
    match v {
        Value::String(s) => parse_quantity(s),
        Value::Number(n) => parse_quantity(&n.to_string()),
        _ => None,
    }
}

// =============================================================================================
// Label selectors (k8s.io/apimachinery/pkg/apis/meta/v1/validation)
// =============================================================================================

/// `ValidateLabelSelector` (strict label values).
fn check_label_selector(e: &mut Errs, sel: Option<&Value>, path: &str) {
    let Some(sel) = sel.filter(|s| !s.is_null()) else {
        return;
    };
    check_labels(e, sel.get("matchLabels"), &child(path, "matchLabels"));
    for (i, req) in ga(sel, "matchExpressions").iter().enumerate() {
        let p = index(&child(path, "matchExpressions"), i);
        let values = ga(req, "values");
        match gs(req, "operator") {
            "In" | "NotIn" => {
                if values.is_empty() {
                    e.required(
                        child(&p, "values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    );
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    e.forbidden(
                        child(&p, "values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    );
                }
            }
            op => e.invalid(
                child(&p, "operator"),
                st(op),
                "not a valid selector operator",
            ),
        }
        check_qualified_name(e, gs(req, "key"), &child(&p, "key"));
        for (j, v) in values.iter().enumerate() {
            let v = v.as_str().unwrap_or("");
            for msg in selectors::label_value_errors(v) {
                e.invalid(index(&child(&p, "values"), j), st(v), &msg);
            }
        }
    }
}

/// `metav1.LabelSelectorAsSelector`: `None` when it fails (an invalid selector).
fn as_selector(sel: Option<&Value>) -> Option<LabelSelector> {
    LabelSelector::from_label_selector_json(sel.unwrap_or(&Value::Null)).ok()
}

fn selector_is_empty(sel: &Value) -> bool {
    gm(sel, "matchLabels").is_none_or(Map::is_empty) && ga(sel, "matchExpressions").is_empty()
}

/// `labels.Set(template.Labels)` as upstream prints it in the mismatch error.
fn template_labels_value(template: &Value) -> Value {
    match template.get("metadata").and_then(|m| m.get("labels")) {
        Some(l @ Value::Object(_)) => go_value(l),
        _ => Value::Null,
    }
}

fn template_labels(template: &Value) -> Option<&Map<String, Value>> {
    template
        .get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
}

// =============================================================================================
// Pods (pkg/apis/core/validation: ValidatePodSpec and friends)
// =============================================================================================

#[derive(Clone, Copy)]
struct PodOpts {
    /// The top-level resource is a Pod, not a template embedded in another resource.
    resource_is_pod: bool,
}

/// What the containers of one pod spec are validated against.
struct PodCtx<'a> {
    volumes: BTreeMap<String, &'a Value>,
    claim_names: BTreeSet<String>,
    grace: Option<i64>,
    restart_policy: &'a str,
    host_users: bool,
}

/// Volume sources in upstream's checking order: (JSON field, name in the "more than 1 volume
/// type" error).
const VOLUME_SOURCES: &[(&str, &str)] = &[
    ("emptyDir", "emptyDir"),
    ("hostPath", "hostPath"),
    ("gitRepo", "gitRepo"),
    ("gcePersistentDisk", "gcePersistentDisk"),
    ("awsElasticBlockStore", "awsElasticBlockStore"),
    ("secret", "secret"),
    ("nfs", "nfs"),
    ("iscsi", "iscsi"),
    ("glusterfs", "glusterfs"),
    ("flocker", "flocker"),
    ("persistentVolumeClaim", "persistentVolumeClaim"),
    ("rbd", "rbd"),
    ("cinder", "cinder"),
    ("cephfs", "cephFS"),
    ("quobyte", "quobyte"),
    ("downwardAPI", "downwarAPI"),
    ("fc", "fc"),
    ("flexVolume", "flexVolume"),
    ("configMap", "configMap"),
    ("azureFile", "azureFile"),
    ("vsphereVolume", "vsphereVolume"),
    ("photonPersistentDisk", "photonPersistentDisk"),
    ("portworxVolume", "portworxVolume"),
    ("azureDisk", "azureDisk"),
    ("storageos", "storageos"),
    ("projected", "projected"),
    ("scaleIO", "scaleIO"),
    ("csi", "csi"),
    ("ephemeral", "ephemeral"),
    ("image", "image"),
];

fn pod_spec(e: &mut Errs, spec: &Value, pod_name: Option<&str>, path: &str, opts: PodOpts) {
    let grace = gi(spec, "terminationGracePeriodSeconds");
    if get(spec, "terminationGracePeriodSeconds").is_none() {
        e.required(child(path, "terminationGracePeriodSeconds"), "");
    }
    let sc = spec.get("securityContext").unwrap_or(&Value::Null);
    let host_users = sc.get("hostUsers").and_then(Value::as_bool).unwrap_or(true);
    let volumes = check_volumes(
        e,
        ga(spec, "volumes"),
        pod_name,
        &child(path, "volumes"),
        opts,
    );
    let claim_names: BTreeSet<String> = ga(spec, "resourceClaims")
        .iter()
        .map(|c| gs(c, "name").to_string())
        .filter(|n| !n.is_empty())
        .collect();
    check_pod_resource_claims(
        e,
        ga(spec, "resourceClaims"),
        &child(path, "resourceClaims"),
    );
    let ctx = PodCtx {
        volumes,
        claim_names,
        grace,
        restart_policy: gs(spec, "restartPolicy"),
        host_users,
    };
    check_containers(e, ga(spec, "containers"), &ctx, &child(path, "containers"));
    check_init_containers(
        e,
        ga(spec, "initContainers"),
        ga(spec, "containers"),
        &ctx,
        &child(path, "initContainers"),
    );
    if let Some(res) = get(spec, "resources") {
        check_pod_resources(e, res, &ctx, &child(path, "resources"));
    }
    if gb(spec, "hostNetwork") {
        let cpath = child(path, "containers");
        for (i, c) in ga(spec, "containers").iter().enumerate() {
            for (j, port) in ga(c, "ports").iter().enumerate() {
                let hp = gi(port, "hostPort").unwrap_or(0);
                let cp = gi(port, "containerPort").unwrap_or(0);
                if (opts.resource_is_pod || hp != 0) && hp != cp {
                    e.invalid(
                        child(&index(&child(&index(&cpath, i), "ports"), j), "hostPort"),
                        Value::from(hp),
                        "must match `containerPort` when `hostNetwork` is true",
                    );
                }
            }
        }
    }
    match gs(spec, "restartPolicy") {
        "Always" | "OnFailure" | "Never" => {}
        "" => e.required(child(path, "restartPolicy"), ""),
        other => e.not_supported(
            child(path, "restartPolicy"),
            st(other),
            &["Always", "OnFailure", "Never"],
        ),
    }
    match gs(spec, "dnsPolicy") {
        "ClusterFirstWithHostNet" | "ClusterFirst" | "Default" | "None" => {}
        "" => e.required(child(path, "dnsPolicy"), ""),
        other => e.not_supported(
            child(path, "dnsPolicy"),
            st(other),
            &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        ),
    }
    check_labels(e, spec.get("nodeSelector"), &child(path, "nodeSelector"));
    check_pod_security_context(e, spec, &child(path, "securityContext"));
    for (i, s) in ga(spec, "imagePullSecrets").iter().enumerate() {
        if s.as_object().is_some_and(|o| o.keys().any(|k| k != "name")) {
            e.invalid(
                index(&child(path, "imagePullSecrets"), i),
                go_value(s),
                "only name may be set",
            );
        }
    }
    if let Some(aff) = get(spec, "affinity") {
        check_affinity(e, aff, &child(path, "affinity"));
    }
    check_dns_config(e, spec, &child(path, "dnsConfig"));
    for (i, g) in ga(spec, "readinessGates").iter().enumerate() {
        check_qualified_name(
            e,
            gs(g, "conditionType"),
            &child(&index(&child(path, "readinessGates"), i), "conditionType"),
        );
    }
    let mut seen = BTreeSet::new();
    for (i, g) in ga(spec, "schedulingGates").iter().enumerate() {
        let p = index(&child(path, "schedulingGates"), i);
        let name = gs(g, "name");
        check_qualified_name(e, name, &p);
        if !seen.insert(name) {
            e.duplicate(&p, st(name));
        }
    }
    check_topology_spread(
        e,
        ga(spec, "topologySpreadConstraints"),
        &child(path, "topologySpreadConstraints"),
    );
    if !host_users {
        if gb(spec, "hostNetwork") {
            e.forbidden(
                child(path, "hostNetwork"),
                "when `pod.Spec.HostUsers` is false",
            );
        }
        if gb(spec, "hostPID") {
            e.forbidden(child(path, "HostPID"), "when `pod.Spec.HostUsers` is false");
        }
        if gb(spec, "hostIPC") {
            e.forbidden(child(path, "HostIPC"), "when `pod.Spec.HostUsers` is false");
        }
    }
    for (field, value) in [
        ("serviceAccountName", gs(spec, "serviceAccountName")),
        ("nodeName", gs(spec, "nodeName")),
    ] {
        if !value.is_empty() {
            check_dns1123_subdomain(e, value, &child(path, field));
        }
    }
    if let Some(v) = gi(spec, "activeDeadlineSeconds") {
        if !(1..=MAX_INT32).contains(&v) {
            e.invalid(
                child(path, "activeDeadlineSeconds"),
                Value::from(v),
                &inclusive_range(1, MAX_INT32),
            );
        }
    }
    for field in ["hostname", "subdomain"] {
        let v = gs(spec, field);
        if !v.is_empty() {
            check_dns1123_label(e, v, &child(path, field));
        }
    }
    check_tolerations(e, ga(spec, "tolerations"), &child(path, "tolerations"));
    for (i, alias) in ga(spec, "hostAliases").iter().enumerate() {
        let p = index(&child(path, "hostAliases"), i);
        check_ip(e, gs(alias, "ip"), &child(&p, "ip"));
        for (j, h) in ga(alias, "hostnames").iter().enumerate() {
            check_dns1123_subdomain(
                e,
                h.as_str().unwrap_or(""),
                &index(&child(&p, "hostnames"), j),
            );
        }
    }
    let pc = gs(spec, "priorityClassName");
    if !pc.is_empty() {
        check_dns1123_subdomain(e, pc, &child(path, "priorityClassName"));
    }
    if let Some(rc) = spec.get("runtimeClassName").and_then(Value::as_str) {
        check_dns1123_subdomain(e, rc, &child(path, "runtimeClassName"));
    }
    if let Some(pp) = spec.get("preemptionPolicy").and_then(Value::as_str) {
        check_preemption_policy(e, pp, &child(path, "preemptionPolicy"));
    }
    if let Some(overhead) = get(spec, "overhead") {
        let res = json!({ "limits": overhead });
        check_resource_requirements(e, &res, &ctx.claim_names, &child(path, "overhead"), false);
    }
    if let Some(os) = get(spec, "os") {
        let name = gs(os, "name");
        if name.is_empty() {
            e.required(child(&child(path, "os"), "name"), "cannot be empty");
        } else if name != "linux" && name != "windows" {
            e.not_supported(child(path, "os"), st(name), &["linux", "windows"]);
        } else if name == "linux" {
            if sc.get("windowsOptions").is_some_and(|w| !w.is_null()) {
                e.forbidden(
                    child(&child(path, "securityContext"), "windowsOptions"),
                    "windows options cannot be set for a linux pod",
                );
            }
            for list in ["initContainers", "containers", "ephemeralContainers"] {
                for (i, c) in ga(spec, list).iter().enumerate() {
                    if c.get("securityContext")
                        .and_then(|s| s.get("windowsOptions"))
                        .is_some_and(|w| !w.is_null())
                    {
                        e.forbidden(
                            child(
                                &child(&index(&child(path, list), i), "securityContext"),
                                "windowsOptions",
                            ),
                            "windows options cannot be set for a linux pod",
                        );
                    }
                }
            }
        }
    }
}

fn check_preemption_policy(e: &mut Errs, value: &str, path: &str) {
    match value {
        "PreemptLowerPriority" | "Never" => {}
        "" => e.required(path, ""),
        other => e.not_supported(path, st(other), &["PreemptLowerPriority", "Never"]),
    }
}

fn check_pod_resource_claims(e: &mut Errs, claims: &[Value], path: &str) {
    let mut names = BTreeSet::new();
    for (i, claim) in claims.iter().enumerate() {
        let p = index(path, i);
        let name = gs(claim, "name");
        if name.is_empty() {
            e.required(child(&p, "name"), "");
        } else if names.contains(name) {
            e.duplicate(child(&p, "name"), st(name));
        } else {
            check_dns1123_label(e, name, &child(&p, "name"));
            names.insert(name);
        }
        let rc = claim.get("resourceClaimName").and_then(Value::as_str);
        let rct = claim
            .get("resourceClaimTemplateName")
            .and_then(Value::as_str);
        if rc.is_some() && rct.is_some() {
            e.invalid(
                &p,
                go_value(claim),
                "at most one of `resourceClaimName` or `resourceClaimTemplateName` may be specified",
            );
        }
        if rc.is_none() && rct.is_none() {
            e.invalid(
                &p,
                go_value(claim),
                "must specify one of: `resourceClaimName`, `resourceClaimTemplateName`",
            );
        }
        if let Some(v) = rc {
            check_dns1123_subdomain(e, v, &child(&p, "resourceClaimName"));
        }
        if let Some(v) = rct {
            check_dns1123_subdomain(e, v, &child(&p, "resourceClaimTemplateName"));
        }
    }
}

fn check_volumes<'a>(
    e: &mut Errs,
    volumes: &'a [Value],
    pod_name: Option<&str>,
    path: &str,
    opts: PodOpts,
) -> BTreeMap<String, &'a Value> {
    let mut names = BTreeSet::new();
    let mut created_pvcs = BTreeSet::new();
    if let Some(pn) = pod_name.filter(|n| !n.is_empty()) {
        for v in volumes {
            if get(v, "ephemeral").is_some() {
                created_pvcs.insert(format!("{pn}-{}", gs(v, "name")));
            }
        }
    }
    let mut out = BTreeMap::new();
    for (i, vol) in volumes.iter().enumerate() {
        let p = index(path, i);
        let name_path = child(&p, "name");
        let name = gs(vol, "name");
        let mut el = Errs::default();
        check_volume_source(&mut el, vol, &p, name, pod_name, opts);
        if name.is_empty() {
            el.required(&name_path, "");
        } else {
            check_dns1123_label(&mut el, name, &name_path);
        }
        if names.contains(name) {
            el.duplicate(&name_path, st(name));
        }
        if el.0.is_empty() {
            names.insert(name.to_string());
            out.insert(name.to_string(), vol);
        } else {
            e.0.extend(el.0);
        }
        if let Some(claim) = get(vol, "persistentVolumeClaim") {
            let cn = gs(claim, "claimName");
            if created_pvcs.contains(cn) {
                e.invalid(
                    child(&child(&p, "persistentVolumeClaim"), "claimName"),
                    st(cn),
                    "must not reference a PVC that gets created for an ephemeral volume",
                );
            }
        }
    }
    out
}

fn check_volume_source(
    e: &mut Errs,
    vol: &Value,
    path: &str,
    vol_name: &str,
    pod_name: Option<&str>,
    opts: PodOpts,
) {
    let mut count = 0;
    for (field, err_name) in VOLUME_SOURCES {
        let Some(src) = get(vol, field) else { continue };
        if count > 0 {
            e.forbidden(
                child(path, err_name),
                "may not specify more than 1 volume type",
            );
            continue;
        }
        count += 1;
        let p = child(path, field);
        match *field {
            "emptyDir" => {
                if let Some(q) = src.get("sizeLimit").and_then(quantity_of) {
                    if q.nano < 0 {
                        e.forbidden(
                            child(&p, "sizeLimit"),
                            "SizeLimit field must be a valid resource quantity",
                        );
                    }
                }
            }
            "hostPath" => {
                let hp = gs(src, "path");
                if hp.is_empty() {
                    e.required(child(&p, "path"), "");
                    continue;
                }
                check_no_backsteps(e, hp, &child(&p, "path"));
                if let Some(t) = src.get("type").and_then(Value::as_str) {
                    const TYPES: &[&str] = &[
                        "",
                        "BlockDevice",
                        "CharDevice",
                        "Directory",
                        "DirectoryOrCreate",
                        "File",
                        "FileOrCreate",
                        "Socket",
                    ];
                    if !TYPES.contains(&t) {
                        e.not_supported(child(&p, "type"), st(t), TYPES);
                    }
                }
            }
            "gitRepo" => {
                if gs(src, "repository").is_empty() {
                    e.required(child(&p, "repository"), "");
                }
                check_local_descending_path(e, gs(src, "directory"), &child(&p, "directory"));
            }
            "secret" => {
                if gs(src, "secretName").is_empty() {
                    e.required(child(&p, "secretName"), "");
                }
                check_mode(e, src, "defaultMode", &p);
                for (j, kp) in ga(src, "items").iter().enumerate() {
                    check_key_to_path(e, kp, &index(&child(&p, "items"), j));
                }
            }
            "configMap" => {
                if gs(src, "name").is_empty() {
                    e.required(child(&p, "name"), "");
                }
                check_mode(e, src, "defaultMode", &p);
                for (j, kp) in ga(src, "items").iter().enumerate() {
                    check_key_to_path(e, kp, &index(&child(&p, "items"), j));
                }
            }
            "nfs" => {
                if gs(src, "server").is_empty() {
                    e.required(child(&p, "server"), "");
                }
                let np = gs(src, "path");
                if np.is_empty() {
                    e.required(child(&p, "path"), "");
                }
                if !np.starts_with('/') {
                    e.invalid(child(&p, "path"), st(np), "must be an absolute path");
                }
            }
            "persistentVolumeClaim" if gs(src, "claimName").is_empty() => {
                e.required(child(&p, "claimName"), "");
            }
            "downwardAPI" => {
                check_mode(e, src, "defaultMode", &p);
                for item in ga(src, "items") {
                    check_downward_file(e, item, &p);
                }
            }
            "projected" => {
                check_mode(e, src, "defaultMode", &p);
                check_projection_sources(e, src, &p);
            }
            "csi" => {
                check_csi_driver_name(e, gs(src, "driver"), &child(&p, "driver"));
                if let Some(r) = get(src, "nodePublishSecretRef") {
                    let n = gs(r, "name");
                    if n.is_empty() {
                        e.required(child(&child(&p, "nodePublishSecretRef"), "name"), "");
                    } else {
                        for msg in dns1123_subdomain_errors(n) {
                            e.invalid(child(&p, "name"), st(n), &msg);
                        }
                    }
                }
            }
            "ephemeral" => match get(src, "volumeClaimTemplate") {
                None => e.required(child(&p, "volumeClaimTemplate"), ""),
                Some(t) => {
                    let tp = child(&p, "volumeClaimTemplate");
                    check_template_object_meta(e, t.get("metadata"), &child(&tp, "metadata"));
                    check_pvc_spec(
                        e,
                        t.get("spec").unwrap_or(&Value::Null),
                        &child(&tp, "spec"),
                    );
                    if let Some(pn) = pod_name.filter(|n| !n.is_empty()) {
                        if !vol_name.is_empty() {
                            let pvc_name = format!("{pn}-{vol_name}");
                            for msg in dns1123_subdomain_errors(&pvc_name) {
                                e.invalid(
                                    child(&p, "name"),
                                    st(vol_name),
                                    &format!("PVC name {}: {msg}", go_quote(&pvc_name)),
                                );
                            }
                        }
                    }
                }
            },
            "image" => {
                if opts.resource_is_pod && gs(src, "reference").is_empty() {
                    e.required(child(&p, "reference"), "");
                }
                check_pull_policy(e, gs(src, "pullPolicy"), &child(&p, "pullPolicy"));
            }
            _ => {}
        }
    }
    if count == 0 {
        e.required(path, "must specify a volume type");
    }
}

fn check_mode(e: &mut Errs, src: &Value, field: &str, path: &str) {
    if let Some(m) = gi(src, field) {
        if !(0..=0o777).contains(&m) {
            e.invalid(child(path, field), Value::from(m), FILE_MODE);
        }
    }
}

fn check_key_to_path(e: &mut Errs, kp: &Value, path: &str) {
    if gs(kp, "key").is_empty() {
        e.required(child(path, "key"), "");
    }
    let p = gs(kp, "path");
    if p.is_empty() {
        e.required(child(path, "path"), "");
    }
    check_local_non_reserved_path(e, p, &child(path, "path"));
    check_mode(e, kp, "mode", path);
}

fn check_no_backsteps(e: &mut Errs, target: &str, path: &str) {
    if target.split('/').any(|part| part == "..") {
        e.invalid(path, st(target), "must not contain '..'");
    }
}

fn check_local_descending_path(e: &mut Errs, target: &str, path: &str) {
    if target.starts_with('/') {
        e.invalid(path, st(target), "must be a relative path");
    }
    check_no_backsteps(e, target, path);
}

fn check_local_non_reserved_path(e: &mut Errs, target: &str, path: &str) {
    check_local_descending_path(e, target, path);
    if target.starts_with("..") && !target.starts_with("../") {
        e.invalid(path, st(target), "must not start with '..'");
    }
}

fn check_csi_driver_name(e: &mut Errs, driver: &str, path: &str) {
    if driver.is_empty() {
        e.required(path, "");
    }
    if driver.len() > 63 {
        e.too_long(path, 63);
    }
    for msg in dns1123_subdomain_errors(&driver.to_lowercase()) {
        e.invalid(path, st(driver), &msg);
    }
}

const VOLUME_DOWNWARD_PATHS: &[&str] = &[
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
];

const ENV_DOWNWARD_PATHS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

const CONTAINER_RESOURCE_PATHS: &[&str] = &[
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
];

fn check_downward_file(e: &mut Errs, file: &Value, path: &str) {
    let p = gs(file, "path");
    if p.is_empty() {
        e.required(child(path, "path"), "");
    }
    check_local_non_reserved_path(e, p, &child(path, "path"));
    if let Some(fr) = get(file, "fieldRef") {
        check_object_field_selector(e, fr, VOLUME_DOWNWARD_PATHS, &child(path, "fieldRef"));
        if get(file, "resourceFieldRef").is_some() {
            e.invalid(
                path,
                st("resource"),
                "fieldRef and resourceFieldRef can not be specified simultaneously",
            );
        }
    } else if let Some(rf) = get(file, "resourceFieldRef") {
        check_resource_field_selector(e, rf, &child(path, "resourceFieldRef"), true);
    } else {
        e.required(path, "one of fieldRef and resourceFieldRef is required");
    }
    check_mode(e, file, "mode", path);
}

/// `validateObjectFieldSelector` after `ConvertDownwardAPIFieldLabel`.
fn check_object_field_selector(e: &mut Errs, fs: &Value, allowed: &[&str], path: &str) {
    let version = gs(fs, "apiVersion");
    if version.is_empty() {
        e.required(child(path, "apiVersion"), "");
        return;
    }
    let fp = gs(fs, "fieldPath");
    if fp.is_empty() {
        e.required(child(path, "fieldPath"), "");
        return;
    }
    if version != "v1" {
        e.invalid(
            child(path, "fieldPath"),
            st(fp),
            &format!("error converting fieldPath: unsupported pod version: {version}"),
        );
        return;
    }
    let (base, subscript) = match fp.split_once("['") {
        Some((b, rest)) if rest.ends_with("']") => (b, Some(&rest[..rest.len() - 2])),
        _ => (fp, None),
    };
    let convertible = match subscript {
        Some(_) => matches!(base, "metadata.annotations" | "metadata.labels"),
        None => matches!(
            base,
            "metadata.annotations"
                | "metadata.labels"
                | "metadata.name"
                | "metadata.namespace"
                | "metadata.uid"
                | "spec.nodeName"
                | "spec.restartPolicy"
                | "spec.serviceAccountName"
                | "spec.schedulerName"
                | "status.phase"
                | "status.hostIP"
                | "status.hostIPs"
                | "status.podIP"
                | "status.podIPs"
        ),
    };
    if !convertible {
        e.invalid(
            child(path, "fieldPath"),
            st(fp),
            &format!("error converting fieldPath: field label not supported: {fp}"),
        );
        return;
    }
    match subscript {
        Some(sub) if base == "metadata.annotations" => {
            check_qualified_name(e, &sub.to_lowercase(), path);
        }
        Some(sub) => check_qualified_name(e, sub, path),
        None => {
            if !allowed.contains(&base) {
                e.not_supported(child(path, "fieldPath"), st(base), allowed);
            }
        }
    }
}

fn check_resource_field_selector(e: &mut Errs, fs: &Value, path: &str, volume: bool) {
    let resource = gs(fs, "resource");
    if volume && gs(fs, "containerName").is_empty() {
        e.required(child(path, "containerName"), "");
    } else if resource.is_empty() {
        e.required(child(path, "resource"), "");
    } else if !CONTAINER_RESOURCE_PATHS.contains(&resource)
        && !resource.starts_with("requests.hugepages-")
        && !resource.starts_with("limits.hugepages-")
    {
        e.not_supported(
            child(path, "resource"),
            st(resource),
            CONTAINER_RESOURCE_PATHS,
        );
    }
    if let Some(d) = fs.get("divisor").and_then(quantity_of) {
        if d.nano != 0 {
            let canon = d.canonical();
            let memory_like = [
                "1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei",
            ];
            let msg = match resource {
                "limits.cpu" | "requests.cpu" if !["1m", "1"].contains(&canon.as_str()) => {
                    Some("only divisor's values 1m and 1 are supported with the cpu resource")
                }
                "limits.memory" | "requests.memory" if !memory_like.contains(&canon.as_str()) => {
                    Some("only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei are supported with the memory resource")
                }
                "limits.ephemeral-storage" | "requests.ephemeral-storage"
                    if !memory_like.contains(&canon.as_str()) =>
                {
                    Some("only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei are supported with the local ephemeral storage resource")
                }
                _ => None,
            };
            if let Some(msg) = msg {
                e.invalid(child(path, "divisor"), st(resource), msg);
            }
        }
    }
}

fn check_projection_sources(e: &mut Errs, projected: &Value, path: &str) {
    let mut all_paths = BTreeSet::new();
    for (i, source) in ga(projected, "sources").iter().enumerate() {
        let sp = index(&child(path, "sources"), i);
        let mut n = 0;
        for kind in ["secret", "configMap"] {
            if let Some(src) = get(source, kind) {
                n += 1;
                let pp = child(&sp, kind);
                if gs(src, "name").is_empty() {
                    e.required(child(&pp, "name"), "");
                }
                for (j, kp) in ga(src, "items").iter().enumerate() {
                    check_key_to_path(e, kp, &index(&child(&pp, "items"), j));
                    let kpath = gs(kp, "path");
                    if !kpath.is_empty() && !all_paths.insert(kpath.to_string()) {
                        e.invalid(path, st(gs(src, "name")), "conflicting duplicate paths");
                    }
                }
            }
        }
        if let Some(src) = get(source, "downwardAPI") {
            n += 1;
            let pp = child(&sp, "downwardAPI");
            for file in ga(src, "items") {
                check_downward_file(e, file, &pp);
                let fpath = gs(file, "path");
                if !fpath.is_empty() && !all_paths.insert(fpath.to_string()) {
                    e.invalid(path, st(fpath), "conflicting duplicate paths");
                }
            }
        }
        if let Some(src) = get(source, "serviceAccountToken") {
            n += 1;
            let pp = child(&sp, "serviceAccountToken");
            let exp = gi(src, "expirationSeconds").unwrap_or(0);
            if exp < 600 {
                e.invalid(
                    child(&pp, "expirationSeconds"),
                    Value::from(exp),
                    "may not specify a duration less than 10 minutes",
                );
            }
            if exp > 1 << 32 {
                e.invalid(
                    child(&pp, "expirationSeconds"),
                    Value::from(exp),
                    "may not specify a duration larger than 2^32 seconds",
                );
            }
            let tp = gs(src, "path");
            if tp.is_empty() {
                e.required(child(path, "path"), "");
            } else {
                check_local_non_reserved_path(e, tp, &child(path, "path"));
            }
        }
        if let Some(src) = get(source, "clusterTrustBundle") {
            n += 1;
            let pp = child(&sp, "clusterTrustBundle");
            let name = src.get("name").and_then(Value::as_str);
            let signer = src.get("signerName").and_then(Value::as_str);
            match (name, signer) {
                (Some(_), Some(_)) => e.invalid(
                    &pp,
                    go_value(src),
                    "only one of name and signerName may be used",
                ),
                (Some(""), None) => e.required(child(&pp, "name"), "must be a valid object name"),
                (None, Some("")) => {
                    e.required(child(&pp, "signerName"), "must be a valid signer name")
                }
                (None, None) => e.required(&pp, "either name or signerName must be specified"),
                _ => {}
            }
            let cp = gs(src, "path");
            if cp.is_empty() {
                e.required(child(&pp, "path"), "");
            }
            check_local_non_reserved_path(e, cp, &child(&pp, "path"));
            if !all_paths.insert(cp.to_string()) {
                e.invalid(path, st(cp), "conflicting duplicate paths");
            }
        }
        if get(source, "podCertificate").is_some() {
            n += 1;
        }
        if n > 1 {
            e.forbidden(&sp, "may not specify more than 1 volume type per source");
        }
    }
}

fn check_pull_policy(e: &mut Errs, policy: &str, path: &str) {
    match policy {
        "Always" | "IfNotPresent" | "Never" => {}
        "" => e.required(path, ""),
        other => e.not_supported(path, st(other), &["Always", "IfNotPresent", "Never"]),
    }
}

fn check_containers(e: &mut Errs, containers: &[Value], ctx: &PodCtx, path: &str) {
    if containers.is_empty() {
        e.required(path, "");
        return;
    }
    let mut names = BTreeSet::new();
    for (i, c) in containers.iter().enumerate() {
        let p = index(path, i);
        check_container_common(e, c, ctx, &p);
        let name = gs(c, "name");
        if !names.insert(name) {
            e.duplicate(child(&p, "name"), st(name));
        }
        if let Some(lc) = get(c, "lifecycle") {
            check_lifecycle(e, lc, ctx.grace, &child(&p, "lifecycle"));
        }
        check_probes(e, c, ctx.grace, &p);
        if get(c, "restartPolicy").is_some() {
            e.forbidden(
                child(&p, "restartPolicy"),
                "may not be set for non-init containers",
            );
        }
    }
    check_host_port_conflicts(e, containers.iter().enumerate(), path);
}

fn check_init_containers(
    e: &mut Errs,
    containers: &[Value],
    regular: &[Value],
    ctx: &PodCtx,
    path: &str,
) {
    let mut names: BTreeSet<&str> = regular.iter().map(|c| gs(c, "name")).collect();
    for (i, c) in containers.iter().enumerate() {
        let p = index(path, i);
        check_container_common(e, c, ctx, &p);
        let mut restart_always = false;
        if let Some(rp) = get(c, "restartPolicy") {
            let rp = rp.as_str().unwrap_or("");
            if rp != "Always" {
                e.not_supported(child(&p, "restartPolicy"), st(rp), &["Always"]);
            }
            restart_always = rp == "Always";
        }
        let name = gs(c, "name");
        if names.contains(name) {
            e.duplicate(child(&p, "name"), st(name));
        } else if !name.is_empty() {
            names.insert(name);
        }
        check_host_port_conflicts(e, std::iter::once((0, c)), path);
        if restart_always {
            if let Some(lc) = get(c, "lifecycle") {
                check_lifecycle(e, lc, ctx.grace, &child(&p, "lifecycle"));
            }
            check_probes(e, c, ctx.grace, &p);
        } else {
            for field in [
                "lifecycle",
                "livenessProbe",
                "readinessProbe",
                "startupProbe",
            ] {
                if get(c, field).is_some() {
                    e.forbidden(
                        child(&p, field),
                        "may not be set for init containers without restartPolicy=Always",
                    );
                }
            }
        }
    }
}

fn check_host_port_conflicts<'a>(
    e: &mut Errs,
    containers: impl Iterator<Item = (usize, &'a Value)>,
    path: &str,
) {
    let mut seen = BTreeSet::new();
    for (ci, c) in containers {
        for (pi, port) in ga(c, "ports").iter().enumerate() {
            let hp = gi(port, "hostPort").unwrap_or(0);
            if hp == 0 {
                continue;
            }
            let key = format!("{}/{}/{hp}", gs(port, "protocol"), gs(port, "hostIP"));
            if !seen.insert(key.clone()) {
                e.duplicate(
                    child(&index(&child(&index(path, ci), "ports"), pi), "hostPort"),
                    Value::String(key),
                );
            }
        }
    }
}

fn check_container_common(e: &mut Errs, c: &Value, ctx: &PodCtx, path: &str) {
    let name = gs(c, "name");
    if name.is_empty() {
        e.required(child(path, "name"), "");
    } else {
        check_dns1123_label(e, name, &child(path, "name"));
    }
    if gs(c, "image").is_empty() {
        e.required(child(path, "image"), "");
    }
    match gs(c, "terminationMessagePolicy") {
        "File" | "FallbackToLogsOnError" => {}
        "" => e.required(child(path, "terminationMessagePolicy"), ""),
        other => e.not_supported(
            child(path, "terminationMessagePolicy"),
            st(other),
            &["File", "FallbackToLogsOnError"],
        ),
    }
    let mounts: BTreeMap<&str, &str> = ga(c, "volumeMounts")
        .iter()
        .map(|m| (gs(m, "name"), gs(m, "mountPath")))
        .collect();
    let devices: BTreeMap<&str, &str> = ga(c, "volumeDevices")
        .iter()
        .map(|d| (gs(d, "name"), gs(d, "devicePath")))
        .collect();
    check_container_ports(e, ga(c, "ports"), &child(path, "ports"));
    check_env(e, ga(c, "env"), &child(path, "env"));
    check_env_from(e, ga(c, "envFrom"), &child(path, "envFrom"));
    check_volume_mounts(e, c, &devices, ctx, &child(path, "volumeMounts"));
    check_volume_devices(
        e,
        ga(c, "volumeDevices"),
        &mounts,
        ctx,
        &child(path, "volumeDevices"),
    );
    check_pull_policy(e, gs(c, "imagePullPolicy"), &child(path, "imagePullPolicy"));
    if let Some(res) = get(c, "resources") {
        check_resource_requirements(e, res, &ctx.claim_names, &child(path, "resources"), false);
    }
    check_resize_policy(
        e,
        ga(c, "resizePolicy"),
        ctx.restart_policy,
        &child(path, "resizePolicy"),
    );
    if let Some(sc) = get(c, "securityContext") {
        check_container_security_context(e, sc, ctx.host_users, &child(path, "securityContext"));
    }
}

fn check_container_ports(e: &mut Errs, ports: &[Value], path: &str) {
    let mut names = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let p = index(path, i);
        let name = gs(port, "name");
        if !name.is_empty() {
            let msgs = valid_port_name_errors(name);
            if !msgs.is_empty() {
                for m in msgs {
                    e.invalid(child(&p, "name"), st(name), &m);
                }
            } else if !names.insert(name) {
                e.duplicate(child(&p, "name"), st(name));
            }
        }
        let cp = gi(port, "containerPort").unwrap_or(0);
        if cp == 0 {
            e.required(child(&p, "containerPort"), "");
        } else if !valid_port_num(cp) {
            e.invalid(
                child(&p, "containerPort"),
                Value::from(cp),
                &inclusive_range(1, 65535),
            );
        }
        let hp = gi(port, "hostPort").unwrap_or(0);
        if hp != 0 && !valid_port_num(hp) {
            e.invalid(
                child(&p, "hostPort"),
                Value::from(hp),
                &inclusive_range(1, 65535),
            );
        }
        check_protocol(e, gs(port, "protocol"), &child(&p, "protocol"));
    }
}

fn check_protocol(e: &mut Errs, protocol: &str, path: &str) {
    match protocol {
        "TCP" | "UDP" | "SCTP" => {}
        "" => e.required(path, ""),
        other => e.not_supported(path, st(other), &["SCTP", "TCP", "UDP"]),
    }
}

fn check_env(e: &mut Errs, vars: &[Value], path: &str) {
    for (i, ev) in vars.iter().enumerate() {
        let p = index(path, i);
        let name = gs(ev, "name");
        if name.is_empty() {
            e.required(child(&p, "name"), "");
        } else {
            for msg in env_var_name_errors(name) {
                e.invalid(child(&p, "name"), st(name), &msg);
            }
        }
        let Some(from) = get(ev, "valueFrom") else {
            continue;
        };
        let fp = child(&p, "valueFrom");
        let mut n = 0;
        if let Some(fr) = get(from, "fieldRef") {
            n += 1;
            check_object_field_selector(e, fr, ENV_DOWNWARD_PATHS, &child(&fp, "fieldRef"));
        }
        if let Some(rf) = get(from, "resourceFieldRef") {
            n += 1;
            check_resource_field_selector(e, rf, &child(&fp, "resourceFieldRef"), false);
        }
        for kind in ["configMapKeyRef", "secretKeyRef"] {
            if let Some(sel) = get(from, kind) {
                n += 1;
                let sp = child(&fp, kind);
                let name = gs(sel, "name");
                for msg in dns1123_subdomain_errors(name) {
                    e.invalid(child(&sp, "name"), st(name), &msg);
                }
                let k = gs(sel, "key");
                if k.is_empty() {
                    e.required(child(&sp, "key"), "");
                } else {
                    for msg in config_map_key_errors(k) {
                        e.invalid(child(&sp, "key"), st(k), &msg);
                    }
                }
            }
        }
        if get(from, "fileKeyRef").is_some() {
            n += 1;
        }
        if n == 0 {
            e.invalid(
                &fp,
                st(""),
                "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
            );
        } else if !gs(ev, "value").is_empty() {
            e.invalid(
                &fp,
                st(""),
                "may not be specified when `value` is not empty",
            );
        } else if n > 1 {
            e.invalid(
                &fp,
                st(""),
                "may not have more than one field specified at a time",
            );
        }
    }
}

fn check_env_from(e: &mut Errs, sources: &[Value], path: &str) {
    for (i, ev) in sources.iter().enumerate() {
        let p = index(path, i);
        let prefix = gs(ev, "prefix");
        if !prefix.is_empty() {
            for msg in env_var_name_errors(prefix) {
                e.invalid(child(&p, "prefix"), st(prefix), &msg);
            }
        }
        let mut n = 0;
        for kind in ["configMapRef", "secretRef"] {
            if let Some(r) = get(ev, kind) {
                n += 1;
                let name = gs(r, "name");
                let np = child(&child(&p, kind), "name");
                if name.is_empty() {
                    e.required(np, "");
                } else {
                    for msg in subdomain_name_errors(name, true) {
                        e.invalid(&np, st(name), &msg);
                    }
                }
            }
        }
        if n == 0 {
            e.invalid(
                path,
                st(""),
                "must specify one of: `configMapRef` or `secretRef`",
            );
        } else if n > 1 {
            e.invalid(
                path,
                st(""),
                "may not have more than one field specified at a time",
            );
        }
    }
}

fn check_volume_mounts(
    e: &mut Errs,
    c: &Value,
    devices: &BTreeMap<&str, &str>,
    ctx: &PodCtx,
    path: &str,
) {
    let privileged = c
        .get("securityContext")
        .and_then(|s| s.get("privileged"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut mount_points = BTreeSet::new();
    for (i, m) in ga(c, "volumeMounts").iter().enumerate() {
        let p = index(path, i);
        let name = gs(m, "name");
        let mp = gs(m, "mountPath");
        if name.is_empty() {
            e.required(child(&p, "name"), "");
        }
        if !ctx.volumes.contains_key(name) {
            e.not_found(child(&p, "name"), st(name), "");
        }
        if mp.is_empty() {
            e.required(child(&p, "mountPath"), "");
        }
        if !mount_points.insert(mp) {
            e.invalid(child(&p, "mountPath"), st(mp), "must be unique");
        }
        if devices.contains_key(name) {
            e.invalid(
                child(&p, "name"),
                st(name),
                "must not already exist in volumeDevices",
            );
        }
        if devices.values().any(|d| *d == mp) {
            e.invalid(
                child(&p, "mountPath"),
                st(mp),
                "must not already exist as a path in volumeDevices",
            );
        }
        let sub_path = gs(m, "subPath");
        let sub_expr = gs(m, "subPathExpr");
        if ctx
            .volumes
            .get(name)
            .is_some_and(|v| get(v, "image").is_some())
        {
            if !sub_path.is_empty() {
                e.invalid(
                    child(&p, "subPath"),
                    st(sub_path),
                    "not allowed in image volume sources",
                );
            }
            if !sub_expr.is_empty() {
                e.invalid(
                    child(&p, "subPathExpr"),
                    st(sub_expr),
                    "not allowed in image volume sources",
                );
            }
        }
        if !sub_path.is_empty() {
            check_local_descending_path(e, sub_path, &child(path, "subPath"));
        }
        if !sub_expr.is_empty() {
            if !sub_path.is_empty() {
                e.invalid(
                    child(&p, "subPathExpr"),
                    st(sub_expr),
                    "subPathExpr and subPath are mutually exclusive",
                );
            }
            check_local_descending_path(e, sub_expr, &child(path, "subPathExpr"));
        }
        let propagation = m.get("mountPropagation").and_then(Value::as_str);
        if let Some(mode) = propagation {
            let pp = child(path, "mountPropagation");
            if !["Bidirectional", "HostToContainer", "None"].contains(&mode) {
                e.not_supported(&pp, st(mode), &["Bidirectional", "HostToContainer", "None"]);
            }
            if mode == "Bidirectional" && !privileged {
                e.forbidden(
                    &pp,
                    "Bidirectional mount propagation is available only to privileged containers",
                );
            }
        }
        if let Some(rro) = m.get("recursiveReadOnly").and_then(Value::as_str) {
            let rp = child(path, "recursiveReadOnly");
            match rro {
                "Disabled" => {}
                "Enabled" | "IfPossible" => {
                    if !gb(m, "readOnly") {
                        e.forbidden(&rp, "may only be specified when readOnly is true");
                    }
                    if propagation.is_some_and(|p| p != "None") {
                        e.forbidden(
                            &rp,
                            "may only be specified when mountPropagation is None or not specified",
                        );
                    }
                }
                other => e.not_supported(&rp, st(other), &["Disabled", "Enabled", "IfPossible"]),
            }
        }
    }
}

fn check_volume_devices(
    e: &mut Errs,
    devices: &[Value],
    mounts: &BTreeMap<&str, &str>,
    ctx: &PodCtx,
    path: &str,
) {
    let mut paths = BTreeSet::new();
    let mut names = BTreeSet::new();
    for (i, d) in devices.iter().enumerate() {
        let p = index(path, i);
        let name = gs(d, "name");
        let dp = gs(d, "devicePath");
        let source = ctx.volumes.get(name);
        let is_pvc = source.is_some_and(|v| {
            get(v, "persistentVolumeClaim").is_some() || get(v, "ephemeral").is_some()
        });
        if name.is_empty() {
            e.required(child(&p, "name"), "");
        }
        if names.contains(name) {
            e.invalid(child(&p, "name"), st(name), "must be unique");
        }
        if source.is_some() && !is_pvc {
            e.invalid(
                child(&p, "name"),
                st(name),
                "can only use volume source type of PersistentVolumeClaim or Ephemeral for block mode",
            );
        }
        if source.is_none() {
            e.not_found(child(&p, "name"), st(name), "");
        }
        if dp.is_empty() {
            e.required(child(&p, "devicePath"), "");
        }
        if paths.contains(dp) {
            e.invalid(child(&p, "devicePath"), st(dp), "must be unique");
        }
        if !dp.is_empty() && dp.split('/').any(|s| s == "..") {
            e.invalid(
                child(&p, "devicePath"),
                st(dp),
                "can not contain backsteps ('..')",
            );
        } else {
            paths.insert(dp);
        }
        if mounts.contains_key(name) {
            e.invalid(
                child(&p, "name"),
                st(name),
                "must not already exist in volumeMounts",
            );
        }
        if mounts.values().any(|m| *m == dp) {
            e.invalid(
                child(&p, "devicePath"),
                st(dp),
                "must not already exist as a path in volumeMounts",
            );
        }
        if !name.is_empty() {
            names.insert(name);
        }
    }
}

pub(crate) fn is_huge_pages(name: &str) -> bool {
    name.starts_with("hugepages-")
}

fn is_native_resource(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

pub(crate) fn is_extended_resource(name: &str) -> bool {
    !is_native_resource(name)
        && !name.starts_with("requests.")
        && selectors::label_key_errors(&format!("requests.{name}")).is_empty()
}

fn is_overcommit_allowed(name: &str) -> bool {
    is_native_resource(name) && !is_huge_pages(name)
}

fn is_integer_resource(name: &str) -> bool {
    matches!(
        name,
        "pods"
            | "resourcequotas"
            | "services"
            | "replicationcontrollers"
            | "secrets"
            | "configmaps"
            | "persistentvolumeclaims"
            | "services.nodeports"
            | "services.loadbalancers"
    ) || is_extended_resource(name)
}

const STANDARD_RESOURCES: &[&str] = &[
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "resourcequotas",
    "services",
    "replicationcontrollers",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "storage",
    "requests.storage",
    "services.nodeports",
    "services.loadbalancers",
];

/// `validateContainerResourceName` (or `validatePodResourceName` with `pod_level`).
fn check_resource_name(e: &mut Errs, name: &str, path: &str, pod_level: bool) {
    let before = e.0.len();
    for msg in selectors::label_key_errors(name) {
        e.invalid(path, st(name), &msg);
    }
    if e.0.len() > before {
        return;
    }
    if !name.contains('/')
        && !STANDARD_RESOURCES.contains(&name)
        && !name.starts_with("hugepages-")
        && !name.starts_with("requests.hugepages-")
    {
        e.invalid(
            path,
            st(name),
            "must be a standard resource type or fully qualified",
        );
        if pod_level {
            return;
        }
    }
    if pod_level {
        if !matches!(name, "cpu" | "memory") && !is_huge_pages(name) {
            e.not_supported(path, st(name), &["cpu", "memory"]);
        }
        return;
    }
    if !name.contains('/') {
        if !matches!(name, "cpu" | "memory" | "ephemeral-storage") && !is_huge_pages(name) {
            e.invalid(path, st(name), "must be a standard resource for containers");
        }
    } else if !is_native_resource(name) && !is_extended_resource(name) {
        e.invalid(
            path,
            st(name),
            "doesn't follow extended resource name standard",
        );
    }
}

/// `ValidateResourceQuantityValue`.
fn check_quantity_value(e: &mut Errs, resource: &str, q: Quantity, path: &str) {
    if q.nano < 0 {
        e.invalid(path, Value::String(q.canonical()), IS_NEGATIVE);
    }
    if is_integer_resource(resource) && q.nano % NANO != 0 {
        e.invalid_shown(path, &q.canonical(), "must be an integer");
    }
}

fn check_huge_page_value(e: &mut Errs, name: &str, q: Quantity, path: &str) {
    let Some(size) = name.strip_prefix("hugepages-").and_then(parse_quantity) else {
        return;
    };
    if size.nano > 0 && (q.nano % size.nano != 0 || q.nano < 0) {
        e.invalid(
            path,
            Value::String(q.canonical()),
            &format!(
                "{} is not positive integer multiple of {name}",
                q.canonical()
            ),
        );
    }
}

fn sorted_entries(m: Option<&Value>) -> Vec<(&String, &Value)> {
    let mut v: Vec<(&String, &Value)> = m
        .and_then(Value::as_object)
        .map(|o| o.iter().collect())
        .unwrap_or_default();
    v.sort_by(|a, b| a.0.cmp(b.0));
    v
}

/// `validateResourceRequirements` (container, overhead or pod level).
fn check_resource_requirements(
    e: &mut Errs,
    res: &Value,
    claim_names: &BTreeSet<String>,
    path: &str,
    pod_level: bool,
) {
    let lim_path = child(path, "limits");
    let req_path = child(path, "requests");
    let limits = res.get("limits");
    let (mut lim_cpu_mem, mut req_cpu_mem, mut lim_huge, mut req_huge) =
        (false, false, false, false);
    for (name, q) in sorted_entries(limits) {
        let p = key(&lim_path, name);
        check_resource_name(e, name, &p, pod_level);
        let Some(q) = quantity_of(q) else { continue };
        check_quantity_value(e, name, q, &p);
        if is_huge_pages(name) {
            lim_huge = true;
            check_huge_page_value(e, name, q, &p);
        }
        if matches!(name.as_str(), "cpu" | "memory") {
            lim_cpu_mem = true;
        }
    }
    for (name, qv) in sorted_entries(res.get("requests")) {
        let p = key(&req_path, name);
        check_resource_name(e, name, &p, pod_level);
        let Some(q) = quantity_of(qv) else { continue };
        check_quantity_value(e, name, q, &p);
        let limit = limits
            .and_then(|l| l.get(name.as_str()))
            .and_then(quantity_of);
        match limit {
            Some(l) => {
                if q.nano != l.nano && !is_overcommit_allowed(name) {
                    e.invalid(
                        &req_path,
                        Value::String(q.canonical()),
                        &format!("must be equal to {name} limit of {}", l.canonical()),
                    );
                } else if q.nano > l.nano {
                    e.invalid(
                        &req_path,
                        Value::String(q.canonical()),
                        &format!(
                            "must be less than or equal to {name} limit of {}",
                            l.canonical()
                        ),
                    );
                }
            }
            None => {
                if !is_overcommit_allowed(name) {
                    e.required(
                        &lim_path,
                        "Limit must be set for non overcommitable resources",
                    );
                }
            }
        }
        if is_huge_pages(name) {
            req_huge = true;
            check_huge_page_value(e, name, q, &p);
        }
        if matches!(name.as_str(), "cpu" | "memory") {
            req_cpu_mem = true;
        }
    }
    if !lim_cpu_mem && !req_cpu_mem && (req_huge || lim_huge) {
        e.forbidden(path, "HugePages require cpu or memory");
    }
    let mut names: BTreeSet<String> = BTreeSet::new();
    for (i, claim) in ga(res, "claims").iter().enumerate() {
        let p = index(&child(path, "claims"), i);
        let name = gs(claim, "name");
        if name.is_empty() {
            e.required(&p, "");
            continue;
        }
        if names.contains(name) {
            e.duplicate(&p, st(name));
        } else {
            let request = gs(claim, "request");
            let mut k = name.to_string();
            if !request.is_empty() {
                check_dns1123_label(e, request, &child(&p, "request"));
                k = format!("{name}/{request}");
            }
            if names.contains(&k) {
                e.duplicate(&p, Value::String(k.clone()));
            } else if request.is_empty() {
                for other in &names {
                    if other.split_once('/').is_some_and(|(n, _)| n == name) {
                        e.duplicate(&p, st(name));
                    }
                }
            }
            names.insert(k);
        }
        if !claim_names.contains(name) {
            let detail = if claim_names.is_empty() {
                "must be one of the names in pod.spec.resourceClaims which is empty".to_string()
            } else {
                format!(
                    "must be one of the names in pod.spec.resourceClaims: {}",
                    claim_names.iter().cloned().collect::<Vec<_>>().join(", ")
                )
            };
            e.not_found(&p, st(name), &detail);
        }
    }
}

fn check_pod_resources(e: &mut Errs, res: &Value, ctx: &PodCtx, path: &str) {
    if get(res, "claims").is_some() {
        e.forbidden(
            child(path, "claims"),
            "claims cannot be set for Resources at pod-level",
        );
    }
    check_resource_requirements(e, res, &ctx.claim_names, path, true);
}

fn check_resize_policy(e: &mut Errs, policies: &[Value], restart_policy: &str, path: &str) {
    let mut seen = BTreeSet::new();
    for (i, p) in policies.iter().enumerate() {
        let name = gs(p, "resourceName");
        if !seen.insert(name) {
            e.duplicate(index(path, i), st(name));
        }
        match name {
            "cpu" | "memory" => {}
            "" => e.required(path, ""),
            other => e.not_supported(path, st(other), &["cpu", "memory"]),
        }
        let rp = gs(p, "restartPolicy");
        match rp {
            "NotRequired" | "RestartContainer" => {}
            "" => e.required(path, ""),
            other => e.not_supported(path, st(other), &["NotRequired", "RestartContainer"]),
        }
        if restart_policy == "Never" && rp != "NotRequired" {
            e.invalid(
                path,
                st(rp),
                "must be 'NotRequired' when `restartPolicy` is 'Never'",
            );
        }
    }
}

fn check_probes(e: &mut Errs, c: &Value, grace: Option<i64>, path: &str) {
    for field in ["livenessProbe", "readinessProbe", "startupProbe"] {
        let Some(probe) = get(c, field) else { continue };
        let p = child(path, field);
        check_handler(e, probe, grace, &p, false);
        for n in [
            "initialDelaySeconds",
            "timeoutSeconds",
            "periodSeconds",
            "successThreshold",
            "failureThreshold",
        ] {
            e.nonnegative(&child(&p, n), Some(gi(probe, n).unwrap_or(0)));
        }
        if let Some(t) = gi(probe, "terminationGracePeriodSeconds") {
            if t <= 0 {
                e.invalid(
                    child(&p, "terminationGracePeriodSeconds"),
                    Value::from(t),
                    "must be greater than 0",
                );
            }
        }
        let success = gi(probe, "successThreshold").unwrap_or(0);
        if field == "readinessProbe" {
            if let Some(t) = get(probe, "terminationGracePeriodSeconds") {
                e.invalid(
                    child(&p, "terminationGracePeriodSeconds"),
                    t.clone(),
                    "must not be set for readinessProbes",
                );
            }
        } else if success != 1 {
            e.invalid(
                child(&p, "successThreshold"),
                Value::from(success),
                "must be 1",
            );
        }
    }
}

fn check_lifecycle(e: &mut Errs, lc: &Value, grace: Option<i64>, path: &str) {
    for hook in ["postStart", "preStop"] {
        if let Some(h) = get(lc, hook) {
            check_handler(e, h, grace, &child(path, hook), true);
        }
    }
}

/// `validateHandler`: exactly one of exec, httpGet, tcpSocket, grpc (probes) or sleep (hooks).
fn check_handler(e: &mut Errs, h: &Value, grace: Option<i64>, path: &str, lifecycle: bool) {
    let mut n = 0;
    let kinds: &[&str] = if lifecycle {
        &["exec", "httpGet", "tcpSocket", "sleep"]
    } else {
        &["exec", "httpGet", "tcpSocket", "grpc"]
    };
    for kind in kinds {
        let Some(a) = get(h, kind) else { continue };
        let p = child(path, kind);
        if n > 0 {
            e.forbidden(&p, "may not specify more than 1 handler type");
            continue;
        }
        n += 1;
        match *kind {
            "exec" => {
                if ga(a, "command").is_empty() {
                    e.required(child(&p, "command"), "");
                }
            }
            "httpGet" => {
                if gs(a, "path").is_empty() {
                    e.required(child(&p, "path"), "");
                }
                check_port_num_or_name(e, a.get("port"), &child(&p, "port"));
                let scheme = gs(a, "scheme");
                if scheme != "HTTP" && scheme != "HTTPS" {
                    e.not_supported(child(&p, "scheme"), st(scheme), &["HTTP", "HTTPS"]);
                }
                for hdr in ga(a, "httpHeaders") {
                    let name = gs(hdr, "name");
                    if name.is_empty()
                        || !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
                    {
                        e.invalid(
                            child(&p, "httpHeaders"),
                            st(name),
                            "a valid HTTP header must consist of alphanumeric characters or '-' (e.g. 'X-Header-Name', regex used for validation is '[-A-Za-z0-9]+')",
                        );
                    }
                }
            }
            "tcpSocket" => check_port_num_or_name(e, a.get("port"), &child(&p, "port")),
            "grpc" => check_port_num_or_name(
                e,
                Some(&Value::from(gi(a, "port").unwrap_or(0))),
                &child(&p, "port"),
            ),
            _ => {
                let secs = gi(a, "seconds").unwrap_or(0);
                if let Some(g) = grace {
                    if secs < 0 || secs > g {
                        e.invalid(
                            &p,
                            Value::from(secs),
                            &format!(
                                "must be non-negative and less than terminationGracePeriodSeconds ({g})"
                            ),
                        );
                    }
                }
            }
        }
    }
    if n == 0 {
        e.required(path, "must specify a handler type");
    }
}

/// `ValidatePortNumOrName` on an int-or-string.
fn check_port_num_or_name(e: &mut Errs, port: Option<&Value>, path: &str) {
    match port {
        Some(Value::String(s)) => {
            for msg in valid_port_name_errors(s) {
                e.invalid(path, st(s), &msg);
            }
        }
        other => {
            let n = other.and_then(Value::as_i64).unwrap_or(0);
            if !valid_port_num(n) {
                e.invalid(path, Value::from(n), &inclusive_range(1, 65535));
            }
        }
    }
}

fn check_id(e: &mut Errs, v: &Value, field: &str, path: &str) {
    if let Some(id) = gi(v, field) {
        if !(0..=0xffff_ffff).contains(&id) {
            e.invalid(
                child(path, field),
                Value::from(id),
                &inclusive_range(0, 0xffff_ffff),
            );
        }
    }
}

fn check_seccomp_profile(e: &mut Errs, sp: Option<&Value>, path: &str) {
    let Some(sp) = sp.filter(|v| !v.is_null()) else {
        return;
    };
    let t = gs(sp, "type");
    match t {
        "Localhost" | "RuntimeDefault" | "Unconfined" => {}
        "" => e.required(
            child(path, "type"),
            "type is required when seccompProfile is set",
        ),
        other => e.not_supported(
            child(path, "type"),
            st(other),
            &["Localhost", "RuntimeDefault", "Unconfined"],
        ),
    }
    let lp = sp.get("localhostProfile").and_then(Value::as_str);
    if t == "Localhost" {
        match lp {
            None => e.required(
                child(path, "localhostProfile"),
                "must be set when seccomp type is Localhost",
            ),
            Some(p) => check_local_descending_path(e, p, &child(path, "localhostProfile")),
        }
    } else if lp.is_some() {
        e.invalid(
            child(path, "localhostProfile"),
            go_value(sp),
            "can only be set when seccomp type is Localhost",
        );
    }
}

fn check_apparmor_profile(e: &mut Errs, ap: Option<&Value>, path: &str) {
    let Some(ap) = ap.filter(|v| !v.is_null()) else {
        return;
    };
    let lp = ap.get("localhostProfile").and_then(Value::as_str);
    match gs(ap, "type") {
        "Localhost" => match lp {
            None => e.required(
                child(path, "localhostProfile"),
                "must be set when AppArmor type is Localhost",
            ),
            Some(p) => {
                if p.trim() != p {
                    e.invalid(
                        child(path, "localhostProfile"),
                        st(p),
                        "must not be padded with whitespace",
                    );
                } else if p.is_empty() {
                    e.required(
                        child(path, "localhostProfile"),
                        "must be set when AppArmor type is Localhost",
                    );
                }
                if p.len() > 4095 {
                    e.too_long(child(path, "localhostProfile"), 4095);
                }
            }
        },
        "RuntimeDefault" | "Unconfined" => {
            if let Some(p) = lp {
                e.invalid(
                    child(path, "localhostProfile"),
                    st(p),
                    "can only be set when AppArmor type is Localhost",
                );
            }
        }
        "" => e.required(
            child(path, "type"),
            "type is required when appArmorProfile is set",
        ),
        other => e.not_supported(
            child(path, "type"),
            st(other),
            &["Localhost", "RuntimeDefault", "Unconfined"],
        ),
    }
}

fn check_container_security_context(e: &mut Errs, sc: &Value, host_users: bool, path: &str) {
    check_id(e, sc, "runAsUser", path);
    check_id(e, sc, "runAsGroup", path);
    if let Some(pm) = sc.get("procMount").and_then(Value::as_str) {
        if pm != "Default" && pm != "Unmasked" {
            e.not_supported(child(path, "procMount"), st(pm), &["Default", "Unmasked"]);
        }
        if host_users && pm == "Unmasked" {
            e.invalid(
                child(path, "procMount"),
                st(pm),
                "`hostUsers` must be false to use `Unmasked`",
            );
        }
    }
    check_seccomp_profile(e, sc.get("seccompProfile"), &child(path, "seccompProfile"));
    if sc.get("allowPrivilegeEscalation") == Some(&Value::Bool(false)) {
        if gb(sc, "privileged") {
            e.invalid(
                path,
                go_value(sc),
                "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
            );
        }
        let adds = sc.get("capabilities").map(|c| ga(c, "add")).unwrap_or(&[]);
        for cap in adds {
            if cap.as_str() == Some("CAP_SYS_ADMIN") {
                e.invalid(
                    path,
                    go_value(sc),
                    "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN",
                );
            }
        }
    }
    check_apparmor_profile(
        e,
        sc.get("appArmorProfile"),
        &child(path, "appArmorProfile"),
    );
}

fn check_pod_security_context(e: &mut Errs, spec: &Value, path: &str) {
    let Some(sc) = get(spec, "securityContext") else {
        return;
    };
    check_id(e, sc, "fsGroup", path);
    check_id(e, sc, "runAsUser", path);
    check_id(e, sc, "runAsGroup", path);
    for (i, g) in ga(sc, "supplementalGroups").iter().enumerate() {
        let gid = g.as_i64().unwrap_or(0);
        if !(0..=0xffff_ffff).contains(&gid) {
            e.invalid(
                index(&child(path, "supplementalGroups"), i),
                Value::from(gid),
                &inclusive_range(0, 0xffff_ffff),
            );
        }
    }
    if spec.get("shareProcessNamespace") == Some(&Value::Bool(true)) && gb(spec, "hostPID") {
        e.invalid(
            child(path, "shareProcessNamespace"),
            Value::Bool(true),
            "ShareProcessNamespace and HostPID cannot both be enabled",
        );
    }
    let mut names = BTreeSet::new();
    for (i, s) in ga(sc, "sysctls").iter().enumerate() {
        let p = child(&index(&child(path, "sysctls"), i), "name");
        let name = gs(s, "name");
        if name.is_empty() {
            e.required(&p, "");
        } else if !sysctl_name_ok(name) {
            e.invalid(
                &p,
                st(name),
                "must have at most 253 characters and match regex ^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$",
            );
        } else if names.contains(name) {
            e.duplicate(&p, st(name));
        }
        if gb(spec, "hostNetwork") && (name.starts_with("net.") || name.starts_with("net/")) {
            e.invalid(
                &p,
                st(name),
                "may not be specified when 'hostNetwork' is true",
            );
        } else if gb(spec, "hostIPC")
            && (name.starts_with("kernel.shm")
                || name.starts_with("kernel/shm")
                || name.starts_with("kernel.msg")
                || name.starts_with("kernel/msg")
                || name.starts_with("kernel.sem")
                || name.starts_with("kernel/sem")
                || name.starts_with("fs.mqueue.")
                || name.starts_with("fs/mqueue/"))
        {
            e.invalid(&p, st(name), "may not be specified when 'hostIPC' is true");
        }
        names.insert(name);
    }
    if let Some(p) = sc.get("fsGroupChangePolicy").and_then(Value::as_str) {
        if p != "OnRootMismatch" && p != "Always" {
            e.not_supported(
                child(path, "fsGroupChangePolicy"),
                st(p),
                &["Always", "OnRootMismatch"],
            );
        }
    }
    check_seccomp_profile(e, sc.get("seccompProfile"), &child(path, "seccompProfile"));
    check_apparmor_profile(
        e,
        sc.get("appArmorProfile"),
        &child(path, "appArmorProfile"),
    );
    if let Some(p) = sc.get("supplementalGroupsPolicy").and_then(Value::as_str) {
        if p != "Merge" && p != "Strict" {
            e.not_supported(
                child(path, "supplementalGroupsPolicy"),
                st(p),
                &["Merge", "Strict"],
            );
        }
    }
    if let Some(p) = sc.get("seLinuxChangePolicy").and_then(Value::as_str) {
        if p != "MountOption" && p != "Recursive" {
            e.not_supported(
                child(path, "seLinuxChangePolicy"),
                st(p),
                &["MountOption", "Recursive"],
            );
        }
    }
}

fn sysctl_name_ok(name: &str) -> bool {
    if name.len() > 253 {
        return false;
    }
    let seg_ok = |s: &str| {
        let b = s.as_bytes();
        !b.is_empty()
            && lower_alnum(b[0])
            && lower_alnum(b[b.len() - 1])
            && b.iter().all(|&c| lower_alnum(c) || c == b'-' || c == b'_')
    };
    name.split(['.', '/']).all(seg_ok)
}

fn check_tolerations(e: &mut Errs, tolerations: &[Value], path: &str) {
    for (i, t) in tolerations.iter().enumerate() {
        let p = index(path, i);
        let k = gs(t, "key");
        let op = gs(t, "operator");
        let effect = gs(t, "effect");
        let value = gs(t, "value");
        if !k.is_empty() {
            check_qualified_name(e, k, &child(&p, "key"));
        }
        if k.is_empty() && op != "Exists" {
            e.invalid(
                child(&p, "operator"),
                st(op),
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            );
        }
        if get(t, "tolerationSeconds").is_some() && effect != "NoExecute" {
            e.invalid(
                child(&p, "effect"),
                st(effect),
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            );
        }
        match op {
            "Equal" | "" => {
                let errs = selectors::label_value_errors(value);
                if !errs.is_empty() {
                    e.invalid(child(&p, "operator"), st(value), &errs.join(";"));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    e.invalid(
                        child(&p, "operator"),
                        st(value),
                        "value must be empty when `operator` is 'Exists'",
                    );
                }
            }
            other => e.not_supported(child(&p, "operator"), st(other), &["Equal", "Exists"]),
        }
        if !effect.is_empty() {
            check_taint_effect(e, effect, &child(&p, "effect"));
        }
    }
}

fn check_taint_effect(e: &mut Errs, effect: &str, path: &str) {
    if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
        e.not_supported(
            path,
            st(effect),
            &["NoSchedule", "PreferNoSchedule", "NoExecute"],
        );
    }
}

fn check_dns_config(e: &mut Errs, spec: &Value, path: &str) {
    let cfg = get(spec, "dnsConfig");
    if gs(spec, "dnsPolicy") == "None" {
        let Some(cfg) = cfg else {
            e.required(path, "must provide `dnsConfig` when `dnsPolicy` is None");
            return;
        };
        if ga(cfg, "nameservers").is_empty() {
            e.required(
                child(path, "nameservers"),
                "must provide at least one DNS nameserver when `dnsPolicy` is None",
            );
            return;
        }
    }
    let Some(cfg) = cfg else { return };
    let ns = ga(cfg, "nameservers");
    if ns.len() > 3 {
        e.invalid(
            child(path, "nameservers"),
            Value::Array(ns.to_vec()),
            "must not have more than 3 nameservers",
        );
    }
    for (i, n) in ns.iter().enumerate() {
        check_ip(
            e,
            n.as_str().unwrap_or(""),
            &index(&child(path, "nameservers"), i),
        );
    }
    let searches = ga(cfg, "searches");
    if searches.len() > 32 {
        e.invalid(
            child(path, "searches"),
            Value::Array(searches.to_vec()),
            "must not have more than 32 search paths",
        );
    }
    let joined: Vec<&str> = searches.iter().map(|s| s.as_str().unwrap_or("")).collect();
    if joined.join(" ").len() > 2048 {
        e.invalid(
            child(path, "searches"),
            Value::Array(searches.to_vec()),
            "must not have more than 2048 characters (including spaces) in the search list",
        );
    }
    for (i, s) in joined.iter().enumerate() {
        if *s == "." {
            continue;
        }
        let s = s.strip_suffix('.').unwrap_or(s);
        let p = index(&child(path, "searches"), i);
        let ok = s.len() <= 253
            && s.split('.').all(|l| {
                let l = l.strip_prefix('_').unwrap_or(l);
                let b = l.as_bytes();
                !b.is_empty()
                    && lower_alnum(b[0])
                    && lower_alnum(b[b.len() - 1])
                    && b.iter().all(|&c| lower_alnum(c) || c == b'-' || c == b'_')
            });
        if s.len() > 253 {
            e.invalid(&p, st(s), &max_len_error(253));
        }
        if !ok && s.len() <= 253 {
            e.invalid(&p, st(s), "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '_', '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '_?[a-z0-9]([-_a-z0-9]*[a-z0-9])?(\\._?[a-z0-9]([-_a-z0-9]*[a-z0-9])?)*')");
        }
    }
    for (i, o) in ga(cfg, "options").iter().enumerate() {
        if gs(o, "name").is_empty() {
            e.required(index(&child(path, "options"), i), "must not be empty");
        }
    }
}

fn check_node_selector_requirement(e: &mut Errs, rq: &Value, strict_values: bool, path: &str) {
    let values = ga(rq, "values");
    match gs(rq, "operator") {
        "In" | "NotIn" => {
            if values.is_empty() {
                e.required(
                    child(path, "values"),
                    "must be specified when `operator` is 'In' or 'NotIn'",
                );
            }
        }
        "Exists" | "DoesNotExist" => {
            if !values.is_empty() {
                e.forbidden(
                    child(path, "values"),
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                );
            }
        }
        "Gt" | "Lt" => {
            if values.len() != 1 {
                e.required(
                    child(path, "values"),
                    "must be specified single value when `operator` is 'Lt' or 'Gt'",
                );
            }
        }
        other => e.invalid(
            child(path, "operator"),
            st(other),
            "not a valid selector operator",
        ),
    }
    check_qualified_name(e, gs(rq, "key"), &child(path, "key"));
    if strict_values {
        for (i, v) in values.iter().enumerate() {
            let v = v.as_str().unwrap_or("");
            for msg in selectors::label_value_errors(v) {
                e.invalid(index(&child(path, "values"), i), st(v), &msg);
            }
        }
    }
}

fn check_node_selector_term(e: &mut Errs, term: &Value, strict_values: bool, path: &str) {
    for (j, rq) in ga(term, "matchExpressions").iter().enumerate() {
        check_node_selector_requirement(
            e,
            rq,
            strict_values,
            &index(&child(path, "matchExpressions"), j),
        );
    }
    for (j, rq) in ga(term, "matchFields").iter().enumerate() {
        let p = index(&child(path, "matchFields"), j);
        let values = ga(rq, "values");
        match gs(rq, "operator") {
            "In" | "NotIn" => {
                if values.len() != 1 {
                    e.required(
                        child(&p, "values"),
                        "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
                    );
                }
            }
            other => e.invalid(
                child(&p, "operator"),
                st(other),
                "not a valid selector operator",
            ),
        }
        let k = gs(rq, "key");
        if k != "metadata.name" {
            e.invalid(child(&p, "key"), st(k), "not a valid field selector key");
        } else {
            for (i, v) in values.iter().enumerate() {
                let v = v.as_str().unwrap_or("");
                for msg in dns1123_subdomain_errors(v) {
                    e.invalid(index(&child(&p, "values"), i), st(v), &msg);
                }
            }
        }
    }
}

fn check_node_selector(e: &mut Errs, ns: &Value, path: &str) {
    let terms = ga(ns, "nodeSelectorTerms");
    let tp = child(path, "nodeSelectorTerms");
    if terms.is_empty() {
        e.required(tp, "must have at least one node selector term");
        return;
    }
    for (i, t) in terms.iter().enumerate() {
        check_node_selector_term(e, t, true, &index(&tp, i));
    }
}

fn check_pod_affinity_term(e: &mut Errs, term: &Value, path: &str) {
    check_label_selector(e, term.get("labelSelector"), &child(path, "labelSelector"));
    check_label_selector(
        e,
        term.get("namespaceSelector"),
        &child(path, "namespaceSelector"),
    );
    for ns in ga(term, "namespaces") {
        let ns = ns.as_str().unwrap_or("");
        for msg in dns1123_label_errors(ns) {
            e.invalid(child(path, "namespace"), st(ns), &msg);
        }
    }
    let has_selector = get(term, "labelSelector").is_some();
    for field in ["matchLabelKeys", "mismatchLabelKeys"] {
        let keys = ga(term, field);
        if keys.is_empty() {
            continue;
        }
        if !has_selector {
            e.forbidden(
                child(path, field),
                "must not be specified when labelSelector is not set",
            );
            continue;
        }
        for (i, k) in keys.iter().enumerate() {
            check_qualified_name(e, k.as_str().unwrap_or(""), &index(&child(path, field), i));
        }
    }
    let tk = gs(term, "topologyKey");
    if tk.is_empty() {
        e.required(child(path, "topologyKey"), "can not be empty");
    }
    check_qualified_name(e, tk, &child(path, "topologyKey"));
}

fn check_affinity(e: &mut Errs, aff: &Value, path: &str) {
    if let Some(na) = get(aff, "nodeAffinity") {
        let p = child(path, "nodeAffinity");
        if let Some(req) = get(na, "requiredDuringSchedulingIgnoredDuringExecution") {
            check_node_selector(
                e,
                req,
                &child(&p, "requiredDuringSchedulingIgnoredDuringExecution"),
            );
        }
        let pp = child(&p, "preferredDuringSchedulingIgnoredDuringExecution");
        for (i, t) in ga(na, "preferredDuringSchedulingIgnoredDuringExecution")
            .iter()
            .enumerate()
        {
            let w = gi(t, "weight").unwrap_or(0);
            if !(1..=100).contains(&w) {
                e.invalid(
                    child(&index(&pp, i), "weight"),
                    Value::from(w),
                    "must be in the range 1-100",
                );
            }
            check_node_selector_term(
                e,
                t.get("preference").unwrap_or(&Value::Null),
                false,
                &child(&index(&pp, i), "preference"),
            );
        }
    }
    for kind in ["podAffinity", "podAntiAffinity"] {
        let Some(pa) = get(aff, kind) else { continue };
        let p = child(path, kind);
        let rp = child(&p, "requiredDuringSchedulingIgnoredDuringExecution");
        for (i, t) in ga(pa, "requiredDuringSchedulingIgnoredDuringExecution")
            .iter()
            .enumerate()
        {
            check_pod_affinity_term(e, t, &index(&rp, i));
        }
        let pp = child(&p, "preferredDuringSchedulingIgnoredDuringExecution");
        for (i, t) in ga(pa, "preferredDuringSchedulingIgnoredDuringExecution")
            .iter()
            .enumerate()
        {
            let w = gi(t, "weight").unwrap_or(0);
            if !(1..=100).contains(&w) {
                e.invalid(
                    child(&index(&pp, i), "weight"),
                    Value::from(w),
                    "must be in the range 1-100",
                );
            }
            check_pod_affinity_term(
                e,
                t.get("podAffinityTerm").unwrap_or(&Value::Null),
                &child(&index(&pp, i), "podAffinityTerm"),
            );
        }
    }
}

fn check_topology_spread(e: &mut Errs, constraints: &[Value], path: &str) {
    for (i, c) in constraints.iter().enumerate() {
        let p = index(path, i);
        let skew = gi(c, "maxSkew").unwrap_or(0);
        if skew <= 0 {
            e.invalid(child(&p, "maxSkew"), Value::from(skew), NOT_POSITIVE);
        }
        let tk = gs(c, "topologyKey");
        if tk.is_empty() {
            e.required(child(&p, "topologyKey"), "can not be empty");
        }
        let action = gs(c, "whenUnsatisfiable");
        if action != "DoNotSchedule" && action != "ScheduleAnyway" {
            e.not_supported(
                child(&p, "whenUnsatisfiable"),
                st(action),
                &["DoNotSchedule", "ScheduleAnyway"],
            );
        }
        if constraints[i + 1..]
            .iter()
            .any(|o| gs(o, "topologyKey") == tk && gs(o, "whenUnsatisfiable") == action)
        {
            e.duplicate(
                child(&p, "{topologyKey, whenUnsatisfiable}"),
                Value::String(format!("{{{tk}, {action}}}")),
            );
        }
        if let Some(md) = gi(c, "minDomains") {
            if md <= 0 {
                e.invalid(child(&p, "minDomains"), Value::from(md), NOT_POSITIVE);
            }
            if action != "DoNotSchedule" {
                e.invalid(
                    child(&p, "minDomains"),
                    Value::from(md),
                    &format!(
                        "can only use minDomains if whenUnsatisfiable=DoNotSchedule, not {action}"
                    ),
                );
            }
        }
        for field in ["nodeAffinityPolicy", "nodeTaintsPolicy"] {
            if let Some(v) = c.get(field).and_then(Value::as_str) {
                if v != "Honor" && v != "Ignore" {
                    e.not_supported(child(&p, field), st(v), &["Honor", "Ignore"]);
                }
            }
        }
        let keys = ga(c, "matchLabelKeys");
        if !keys.is_empty() {
            let sel = get(c, "labelSelector");
            if sel.is_none() {
                e.forbidden(
                    child(&p, "matchLabelKeys"),
                    "must not be specified when labelSelector is not set",
                );
            }
            let mut sel_keys: BTreeSet<&str> = BTreeSet::new();
            if let Some(sel) = sel {
                if let Some(ml) = gm(sel, "matchLabels") {
                    sel_keys.extend(ml.keys().map(String::as_str));
                }
                sel_keys.extend(ga(sel, "matchExpressions").iter().map(|r| gs(r, "key")));
            }
            for (j, k) in keys.iter().enumerate() {
                let k = k.as_str().unwrap_or("");
                let kp = index(&child(&p, "matchLabelKeys"), j);
                check_qualified_name(e, k, &kp);
                if sel_keys.contains(k) {
                    e.invalid(
                        &kp,
                        st(k),
                        "exists in both matchLabelKeys and labelSelector",
                    );
                }
            }
        }
        check_label_selector(e, c.get("labelSelector"), &child(&p, "labelSelector"));
    }
}

/// `ValidateTemplateObjectMeta`: labels and annotations, nothing else.
fn check_template_object_meta(e: &mut Errs, m: Option<&Value>, path: &str) {
    let Some(m) = m.and_then(Value::as_object) else {
        return;
    };
    check_annotations(e, m, path);
    check_labels(e, m.get("labels"), &child(path, "labels"));
    for (k, v) in m {
        if k != "labels" && k != "annotations" && !is_empty_value(v) {
            e.forbidden(child(path, k), "cannot be set");
        }
    }
}

/// `ValidateAnnotations` at `<path>.annotations` (the generic path's rules).
fn check_annotations(e: &mut Errs, m: &Map<String, Value>, path: &str) {
    if let Some(a) = m.get("annotations") {
        let mut only = Map::new();
        only.insert("annotations".into(), a.clone());
        e.0.extend(meta::validate_labels_annotations(&only, path));
    }
}

/// `ValidatePodSpecificAnnotations`.
fn check_pod_annotations(e: &mut Errs, annotations: Option<&Value>, spec: &Value, path: &str) {
    let Some(a) = annotations.and_then(Value::as_object) else {
        return;
    };
    if let Some(v) = a.get("kubernetes.io/config.mirror") {
        if gs(spec, "nodeName").is_empty() {
            e.invalid(
                key(path, "kubernetes.io/config.mirror"),
                v.clone(),
                "must set spec.nodeName if mirror pod annotation is set",
            );
        }
    }
    if let Some(v) = a.get("controller.kubernetes.io/pod-deletion-cost") {
        let s = v.as_str().unwrap_or("");
        if s.parse::<i32>().is_err() {
            e.invalid(
                key(path, "controller.kubernetes.io/pod-deletion-cost"),
                st(s),
                "must be a 32bit integer",
            );
        }
    }
    let sorted: BTreeMap<&String, &Value> = a.iter().collect();
    for (k, v) in sorted {
        if k == "seccomp.security.alpha.kubernetes.io/pod"
            || k.starts_with("container.seccomp.security.alpha.kubernetes.io/")
        {
            let p = v.as_str().unwrap_or("");
            let kp = child(path, k);
            if let Some(local) = p.strip_prefix("localhost/") {
                check_local_descending_path(e, local, &kp);
            } else if !matches!(p, "runtime/default" | "docker/default" | "unconfined") {
                e.invalid(&kp, st(p), "must be a valid seccomp profile");
            }
        }
    }
}

/// `ValidatePodTemplateSpec` at `path` (e.g. `spec.template`).
fn pod_template_spec(e: &mut Errs, template: &Value, path: &str) {
    let md = template.get("metadata");
    check_labels(e, md.and_then(|m| m.get("labels")), &child(path, "labels"));
    if let Some(m) = md.and_then(Value::as_object) {
        check_annotations(e, m, path);
    }
    let spec = template.get("spec").unwrap_or(&Value::Null);
    check_pod_annotations(
        e,
        md.and_then(|m| m.get("annotations")),
        spec,
        &child(path, "annotations"),
    );
    pod_spec(
        e,
        spec,
        None,
        &child(path, "spec"),
        PodOpts {
            resource_is_pod: false,
        },
    );
    if !ga(spec, "ephemeralContainers").is_empty() {
        e.forbidden(
            child(&child(path, "spec"), "ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        );
    }
}

const UPDATABLE_POD_FIELDS: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

fn pod(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let md = obj.get("metadata");
    let annotations = md.and_then(|m| m.get("annotations"));
    // validatePodMetadataAndSpec
    check_pod_annotations(e, annotations, spec, "metadata.annotations");
    pod_spec(
        e,
        spec,
        meta::meta_str(obj, "name"),
        "spec",
        PodOpts {
            resource_is_pod: true,
        },
    );
    if gs(spec, "serviceAccountName").is_empty() {
        for (vi, v) in ga(spec, "volumes").iter().enumerate() {
            if let Some(pr) = get(v, "projected") {
                for (si, s) in ga(pr, "sources").iter().enumerate() {
                    if get(s, "serviceAccountToken").is_some() {
                        e.forbidden(
                            format!(
                                "spec.volumes[{vi}].projected.sources[{si}].serviceAccountToken"
                            ),
                            "must not be specified when serviceAccountName is not set",
                        );
                    }
                }
            }
        }
    }
    for list in ["containers", "initContainers"] {
        for (i, c) in ga(spec, list).iter().enumerate() {
            let image = gs(c, "image");
            if image.trim() != image {
                e.invalid(
                    format!("spec.{list}[{i}].image"),
                    st(image),
                    "must not have leading or trailing whitespace",
                );
            }
        }
    }
    let Some(old) = old else {
        // ValidatePodCreate
        if !ga(spec, "ephemeralContainers").is_empty() {
            e.forbidden("spec.ephemeralContainers", "cannot be set on create");
        }
        if !gs(spec, "nodeName").is_empty() && !ga(spec, "schedulingGates").is_empty() {
            e.forbidden(
                "spec.nodeName",
                "cannot be set until all schedulingGates have been cleared",
            );
        }
        return;
    };
    pod_update(e, obj, old);
}

/// The rest of `ValidatePodUpdate`: only the mutable fields may change.
fn pod_update(e: &mut Errs, obj: &Value, old: &Value) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let old_spec = old.get("spec").unwrap_or(&Value::Null);
    let mirror = |o: &Value| {
        o.get("metadata")
            .and_then(|m| m.get("annotations"))
            .and_then(|a| a.get("kubernetes.io/config.mirror"))
            .cloned()
    };
    let mirror_path = key("metadata.annotations", "kubernetes.io/config.mirror");
    match (mirror(old), mirror(obj)) {
        (Some(o), n) if n.as_ref() != Some(&o) => e.forbidden(
            &mirror_path,
            "may not remove or update mirror pod annotation",
        ),
        (None, Some(_)) => e.forbidden(&mirror_path, "may not add mirror pod annotation"),
        _ => {}
    }
    for list in ["containers", "initContainers"] {
        let new_c = ga(spec, list);
        let old_c = ga(old_spec, list);
        let p = child("spec", list);
        if new_c.len() != old_c.len() {
            e.forbidden(&p, "pod updates may not add or remove containers");
            return;
        }
        for (i, c) in new_c.iter().enumerate() {
            let image = gs(c, "image");
            if image.is_empty() {
                e.required(child(&index(&p, i), "image"), "");
            }
            if image.trim() != image {
                e.invalid(
                    child(&index(&p, i), "image"),
                    st(image),
                    "must not have leading or trailing whitespace",
                );
            }
        }
    }
    let new_ads = gi(spec, "activeDeadlineSeconds");
    let old_ads = gi(old_spec, "activeDeadlineSeconds");
    match (new_ads, old_ads) {
        (Some(n), _) if !(0..=MAX_INT32).contains(&n) => {
            e.invalid(
                "spec.activeDeadlineSeconds",
                Value::from(n),
                &inclusive_range(0, MAX_INT32),
            );
            return;
        }
        (Some(n), Some(o)) if o < n => {
            e.invalid(
                "spec.activeDeadlineSeconds",
                Value::from(n),
                "must be less than or equal to previous value",
            );
            return;
        }
        (None, Some(_)) => e.invalid(
            "spec.activeDeadlineSeconds",
            Value::Null,
            "must not update from a positive integer to nil value",
        ),
        _ => {}
    }
    // validateOnlyAddedTolerations
    let new_t = ga(spec, "tolerations");
    let mut tolerations_ok = true;
    for ot in ga(old_spec, "tolerations") {
        let found = new_t.iter().any(|nt| {
            let strip = |t: &Value| {
                let mut t = normalize(t, false);
                if let Some(o) = t.as_object_mut() {
                    o.remove("tolerationSeconds");
                }
                t
            };
            strip(ot) == strip(nt)
        });
        if !found {
            e.forbidden(
                "spec.tolerations",
                "existing toleration can not be modified except its tolerationSeconds",
            );
            tolerations_ok = false;
            break;
        }
    }
    if tolerations_ok {
        check_tolerations(e, new_t, "spec.tolerations");
    }
    // validateOnlyDeletedSchedulingGates
    let new_gates = ga(spec, "schedulingGates");
    if !new_gates.is_empty() {
        let old_names: BTreeSet<&str> = ga(old_spec, "schedulingGates")
            .iter()
            .map(|g| gs(g, "name"))
            .collect();
        let mut added: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, g) in new_gates.iter().enumerate() {
            added.insert(gs(g, "name"), i);
        }
        for (name, i) in added {
            if !old_names.contains(name) {
                e.forbidden(
                    format!("spec.schedulingGates[{i}].name"),
                    &format!("only deletion is allowed, but found new scheduling gate '{name}'"),
                );
            }
        }
    }
    if semantic_eq(spec, old_spec) {
        return;
    }
    // Munge the mutable fields to their old values and compare the rest.
    let mut munged = spec.clone();
    if let Some(m) = munged.as_object_mut() {
        for list in ["containers", "initContainers"] {
            if let Some(Value::Array(cs)) = m.get_mut(list) {
                for (i, c) in cs.iter_mut().enumerate() {
                    let old_image = ga(old_spec, list)
                        .get(i)
                        .and_then(|o| o.get("image"))
                        .cloned();
                    if let Some(co) = c.as_object_mut() {
                        match old_image {
                            Some(img) => co.insert("image".into(), img),
                            None => co.remove("image"),
                        };
                    }
                }
            }
        }
        for field in ["activeDeadlineSeconds", "schedulingGates", "tolerations"] {
            match old_spec.get(field) {
                Some(v) => m.insert(field.into(), v.clone()),
                None => m.remove(field),
            };
        }
        let old_grace = gi(old_spec, "terminationGracePeriodSeconds");
        if old_grace.is_some_and(|g| g < 0) && gi(spec, "terminationGracePeriodSeconds") == Some(1)
        {
            m.insert(
                "terminationGracePeriodSeconds".into(),
                Value::from(old_grace.unwrap_or_default()),
            );
        }
        if !ga(old_spec, "schedulingGates").is_empty() {
            // Gated pods: additions to nodeSelector and node affinity are allowed.
            let old_ns = gm(old_spec, "nodeSelector");
            let new_ns = gm(spec, "nodeSelector");
            if !semantic_eq(
                &Value::Object(new_ns.cloned().unwrap_or_default()),
                &Value::Object(old_ns.cloned().unwrap_or_default()),
            ) {
                if let Some(old_ns) = old_ns {
                    let deleted = old_ns
                        .iter()
                        .any(|(k, v)| new_ns.and_then(|n| n.get(k)) != Some(v));
                    if deleted {
                        e.invalid(
                            "spec.nodeSelector",
                            go_value(&Value::Object(new_ns.cloned().unwrap_or_default())),
                            "only additions to spec.nodeSelector are allowed (no mutations or deletions)",
                        );
                    }
                }
                match old_spec.get("nodeSelector") {
                    Some(v) => m.insert("nodeSelector".into(), v.clone()),
                    None => m.remove("nodeSelector"),
                };
            }
            let old_na = old_spec.get("affinity").and_then(|a| a.get("nodeAffinity"));
            if let Some(aff) = m.get_mut("affinity").and_then(Value::as_object_mut) {
                match old_na {
                    Some(na) => aff.insert("nodeAffinity".into(), na.clone()),
                    None => aff.remove("nodeAffinity"),
                };
                if aff.is_empty() && old_spec.get("affinity").is_none() {
                    m.remove("affinity");
                }
            }
        }
    }
    if !semantic_eq(&munged, old_spec) {
        let diff = spec_diff(old_spec, &munged);
        e.forbidden(
            "spec",
            &format!("pod updates may not change fields other than {UPDATABLE_POD_FIELDS}\n{diff}"),
        );
    }
}

/// A short rendering of what differs between two specs, in the spirit of the `cmp.Diff` upstream
/// appends to its immutability errors (`-` old, `+` new).
fn spec_diff(old: &Value, new: &Value) -> String {
    fn walk(path: &str, old: &Value, new: &Value, out: &mut Vec<String>) {
        match (old, new) {
            (Value::Object(a), Value::Object(b)) => {
                let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
                for k in keys {
                    walk(
                        &child(path, k),
                        a.get(k).unwrap_or(&Value::Null),
                        b.get(k).unwrap_or(&Value::Null),
                        out,
                    );
                }
            }
            (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
                for (i, (x, y)) in a.iter().zip(b).enumerate() {
                    walk(&index(path, i), x, y, out);
                }
            }
            (a, b) if a != b => {
                if !a.is_null() {
                    out.push(format!("- \t{path}: {a}"));
                }
                if !b.is_null() {
                    out.push(format!("+ \t{path}: {b}"));
                }
            }
            _ => {}
        }
    }
    let mut lines = Vec::new();
    walk(
        "",
        &normalize(old, false),
        &normalize(new, false),
        &mut lines,
    );
    format!("  {{\n{}\n  }}\n", lines.join("\n"))
}

fn pod_template(e: &mut Errs, obj: &Value) {
    pod_template_spec(e, obj.get("template").unwrap_or(&Value::Null), "template");
}

fn replication_controller(e: &mut Errs, obj: &Value) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    e.nonnegative("spec.minReadySeconds", gi(spec, "minReadySeconds"));
    let selector = gm(spec, "selector");
    if selector.is_none_or(Map::is_empty) {
        e.required("spec.selector", "");
    }
    e.nonnegative("spec.replicas", Some(gi(spec, "replicas").unwrap_or(0)));
    let Some(template) = get(spec, "template") else {
        e.required("spec.template", "");
        return;
    };
    if let Some(sel) = selector.filter(|s| !s.is_empty()) {
        let labels = template_labels(template);
        let matches = sel
            .iter()
            .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v));
        if !matches {
            e.invalid(
                "spec.template.metadata.labels",
                template_labels_value(template),
                "`selector` does not match template `labels`",
            );
        }
    }
    pod_template_spec(e, template, "spec.template");
    let rp = template
        .get("spec")
        .map(|s| gs(s, "restartPolicy"))
        .unwrap_or("");
    if rp != "Always" {
        e.not_supported("spec.template.spec.restartPolicy", st(rp), &["Always"]);
    }
    if template
        .get("spec")
        .and_then(|s| get(s, "activeDeadlineSeconds"))
        .is_some()
    {
        e.forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            "activeDeadlineSeconds in ReplicationController is not Supported",
        );
    }
}

const ACCESS_MODES: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];

/// `ValidatePersistentVolumeClaimSpec`.
fn check_pvc_spec(e: &mut Errs, spec: &Value, path: &str) {
    let modes = ga(spec, "accessModes");
    if modes.is_empty() {
        e.required(
            child(path, "accessModes"),
            "at least 1 access mode is required",
        );
    }
    if get(spec, "selector").is_some() {
        check_label_selector(e, spec.get("selector"), &child(path, "selector"));
    }
    let (mut rwop, mut other) = (false, false);
    for m in modes {
        let m = m.as_str().unwrap_or("");
        if !ACCESS_MODES.contains(&m) {
            e.not_supported(child(path, "accessModes"), st(m), ACCESS_MODES);
        }
        if m == "ReadWriteOncePod" {
            rwop = true;
        } else if ACCESS_MODES.contains(&m) {
            other = true;
        }
    }
    if rwop && other {
        e.forbidden(
            child(path, "accessModes"),
            "may not use ReadWriteOncePod with other access modes",
        );
    }
    let sp = key(&child(path, "resources"), "storage");
    match spec
        .get("resources")
        .and_then(|r| r.get("requests"))
        .and_then(|r| r.get("storage"))
    {
        None => e.required(&sp, ""),
        Some(v) => {
            if let Some(q) = quantity_of(v) {
                if q.nano <= 0 {
                    e.invalid(&sp, Value::String(q.canonical()), NOT_POSITIVE);
                } else {
                    check_quantity_value(e, "storage", q, &sp);
                }
            }
        }
    }
    if let Some(sc) = spec.get("storageClassName").and_then(Value::as_str) {
        if !sc.is_empty() {
            check_dns1123_subdomain(e, sc, &child(path, "storageClassName"));
        }
    }
    if let Some(vm) = spec.get("volumeMode").and_then(Value::as_str) {
        if vm != "Block" && vm != "Filesystem" {
            e.not_supported(child(path, "volumeMode"), st(vm), &["Block", "Filesystem"]);
        }
    }
    for field in ["dataSource", "dataSourceRef"] {
        let Some(ds) = get(spec, field) else { continue };
        let p = child(path, field);
        if gs(ds, "name").is_empty() {
            e.required(child(&p, "name"), "");
        }
        let kind = gs(ds, "kind");
        if kind.is_empty() {
            e.required(child(&p, "kind"), "");
        }
        let group = gs(ds, "apiGroup");
        if group.is_empty() && kind != "PersistentVolumeClaim" {
            e.invalid(
                &p,
                st(kind),
                "must be 'PersistentVolumeClaim' when referencing the default apiGroup",
            );
        }
        if !group.is_empty() {
            check_dns1123_subdomain(e, group, &child(&p, "apiGroup"));
        }
        if field == "dataSourceRef" {
            let ns = gs(ds, "namespace");
            if !ns.is_empty() {
                for msg in dns1123_label_errors(ns) {
                    e.invalid(child(&p, "namespace"), st(ns), &msg);
                }
            }
        }
    }
    let ds = get(spec, "dataSource");
    let dsr = get(spec, "dataSourceRef");
    if dsr.is_some_and(|r| !gs(r, "namespace").is_empty()) {
        if ds.is_some() {
            e.invalid(
                path,
                Value::String(child(path, "dataSource")),
                "may not be specified when dataSourceRef.namespace is specified",
            );
        }
    } else if let (Some(a), Some(b)) = (ds, dsr) {
        if gs(a, "apiGroup") != gs(b, "apiGroup")
            || a.get("apiGroup").is_some() != b.get("apiGroup").is_some()
            || gs(a, "kind") != gs(b, "kind")
            || gs(a, "name") != gs(b, "name")
        {
            e.invalid(
                path,
                Value::String(child(path, "dataSource")),
                "must match dataSourceRef",
            );
        }
    }
    if let Some(vac) = spec
        .get("volumeAttributesClassName")
        .and_then(Value::as_str)
    {
        if !vac.is_empty() {
            check_dns1123_subdomain(e, vac, &child(path, "volumeAttributesClassName"));
        }
    }
}

fn pvc(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    check_pvc_spec(e, spec, "spec");
    let Some(old) = old else { return };
    let old_spec = old.get("spec").unwrap_or(&Value::Null);
    let storage = |s: &Value| {
        s.get("resources")
            .and_then(|r| r.get("requests"))
            .and_then(|r| r.get("storage"))
            .and_then(quantity_of)
            .map(|q| q.nano)
            .unwrap_or(0)
    };
    let mut new_clone = spec.clone();
    let mut old_clone = old_spec.clone();
    if gs(old_spec, "volumeName").is_empty() {
        if let Some(o) = old_clone.as_object_mut() {
            match spec.get("volumeName") {
                Some(v) => o.insert("volumeName".into(), v.clone()),
                None => o.remove("volumeName"),
            };
        }
    }
    let old_annotation = old
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get("volume.beta.kubernetes.io/storage-class"))
        .and_then(Value::as_str);
    let new_annotation = obj
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get("volume.beta.kubernetes.io/storage-class"))
        .and_then(Value::as_str);
    let old_sc = old_spec.get("storageClassName").and_then(Value::as_str);
    let new_sc = spec.get("storageClassName").and_then(Value::as_str);
    let upgrade_from_annotation = old_annotation.is_some()
        && old_sc.is_none()
        && new_sc.is_some()
        && new_sc == old_annotation
        && (new_annotation.is_none() || new_annotation == old_annotation);
    if upgrade_from_annotation {
        if let Some(o) = new_clone.as_object_mut() {
            o.remove("storageClassName");
        }
    } else {
        if new_annotation.unwrap_or("") != old_annotation.unwrap_or("") {
            e.invalid(
                "metadata.annotations.volume.beta.kubernetes.io/storage-class",
                st(new_annotation.unwrap_or("")),
                IMMUTABLE,
            );
        }
        let upgrade_from_nil = new_sc.is_some()
            && old_sc.is_none()
            && (old_annotation.is_none() || new_sc == old_annotation);
        if upgrade_from_nil {
            if let Some(o) = new_clone.as_object_mut() {
                o.remove("storageClassName");
            }
        }
    }
    let bound = obj
        .get("status")
        .and_then(|s| s.get("phase"))
        .and_then(Value::as_str)
        == Some("Bound");
    if bound {
        if let Some(reqs) = new_clone
            .get_mut("resources")
            .and_then(|r| r.get_mut("requests"))
            .and_then(Value::as_object_mut)
        {
            match old_spec
                .get("resources")
                .and_then(|r| r.get("requests"))
                .and_then(|r| r.get("storage"))
            {
                Some(v) => reqs.insert("storage".into(), v.clone()),
                None => reqs.remove("storage"),
            };
        }
        if let Some(o) = new_clone.as_object_mut() {
            if o.contains_key("volumeAttributesClassName") {
                match old_spec.get("volumeAttributesClassName") {
                    Some(v) => o.insert("volumeAttributesClassName".into(), v.clone()),
                    None => o.remove("volumeAttributesClassName"),
                };
            }
        }
    }
    if !semantic_eq(&new_clone, &old_clone) {
        e.forbidden(
            "spec",
            &format!(
                "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n{}",
                spec_diff(&old_clone, &new_clone)
            ),
        );
    }
    let (new_size, old_size) = (storage(spec), storage(old_spec));
    let status_size = old
        .get("status")
        .and_then(|s| s.get("capacity"))
        .and_then(|c| c.get("storage"))
        .and_then(quantity_of)
        .map(|q| q.nano)
        .unwrap_or(0);
    if new_size < old_size && new_size <= status_size {
        e.forbidden(
            "spec.resources.requests.storage",
            "field can not be less than status.capacity",
        );
    }
    e.immutable(
        "volumeMode",
        spec.get("volumeMode"),
        old_spec.get("volumeMode"),
    );
    let old_vac = old_spec
        .get("volumeAttributesClassName")
        .and_then(Value::as_str);
    let new_vac = spec
        .get("volumeAttributesClassName")
        .and_then(Value::as_str);
    if old_vac.is_some() && old_vac != new_vac {
        match new_vac {
            None => e.forbidden(
                "spec.volumeAttributesClassName",
                "update from non-nil value to nil is forbidden",
            ),
            Some("") => e.forbidden(
                "spec.volumeAttributesClassName",
                "update from non-nil value to an empty string is forbidden",
            ),
            _ => {}
        }
    }
}

// =============================================================================================
// Services
// =============================================================================================

fn is_headless(spec: &Value) -> bool {
    let ips = ga(spec, "clusterIPs");
    ips.len() == 1 && ips[0].as_str() == Some("None")
}

fn service(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    let mut svc = obj.clone();
    normalize_service_cluster_ips(&mut svc, old);
    let spec = svc.get("spec").unwrap_or(&Value::Null);
    if let Some(old) = old {
        let old_spec = old.get("spec").unwrap_or(&Value::Null);
        service_update(e, spec, old_spec);
    }
    service_spec(e, &svc, spec);
}

fn service_spec(e: &mut Errs, svc: &Value, spec: &Value) {
    let annotations = svc
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(Value::as_object);
    let ann = |k: &str| annotations.and_then(|a| a.get(k)).and_then(Value::as_str);
    if let (Some(mode), Some(hints)) = (
        ann("service.kubernetes.io/topology-mode"),
        ann("service.kubernetes.io/topology-aware-hints"),
    ) {
        if mode != hints {
            e.invalid(
                "metadata.annotations[service.kubernetes.io/topology-mode]",
                st(mode),
                "must match annotations[service.kubernetes.io/topology-aware-hints] when both are specified",
            );
        }
    }
    let typ = gs(spec, "type");
    let headless = is_headless(spec);
    let ports = ga(spec, "ports");
    if ports.is_empty() && !headless && typ != "ExternalName" {
        e.required("spec.ports", "");
    }
    match typ {
        "LoadBalancer" | "NodePort" if headless => e.invalid(
            "spec.clusterIPs[0]",
            st("None"),
            &format!("may not be set to 'None' for {typ} services"),
        ),
        "ExternalName" => {
            if !ga(spec, "clusterIPs").is_empty() {
                e.forbidden(
                    "spec.clusterIPs",
                    "may not be set for ExternalName services",
                );
            }
            if !ga(spec, "ipFamilies").is_empty() {
                e.forbidden(
                    "spec.ipFamilies",
                    "may not be set for ExternalName services",
                );
            }
            if get(spec, "ipFamilyPolicy").is_some() {
                e.forbidden(
                    "spec.ipFamilyPolicy",
                    "may not be set for ExternalName services",
                );
            }
            let cname = gs(spec, "externalName");
            let cname = cname.strip_suffix('.').unwrap_or(cname);
            if cname.is_empty() {
                e.required("spec.externalName", "");
            } else {
                check_dns1123_subdomain(e, cname, "spec.externalName");
            }
        }
        _ => {}
    }
    let mut names = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let p = index("spec.ports", i);
        let name = gs(port, "name");
        if ports.len() > 1 && name.is_empty() {
            e.required(child(&p, "name"), "");
        } else if !name.is_empty() {
            check_dns1123_label(e, name, &child(&p, "name"));
            if !names.insert(name) {
                e.duplicate(child(&p, "name"), st(name));
            }
        }
        let pn = gi(port, "port").unwrap_or(0);
        if !valid_port_num(pn) {
            e.invalid(
                child(&p, "port"),
                Value::from(pn),
                &inclusive_range(1, 65535),
            );
        }
        check_protocol(e, gs(port, "protocol"), &child(&p, "protocol"));
        check_port_num_or_name(e, port.get("targetPort"), &child(&p, "targetPort"));
        if let Some(ap) = port.get("appProtocol").and_then(Value::as_str) {
            check_qualified_name(e, ap, &child(&p, "appProtocol"));
        }
    }
    if get(spec, "selector").is_some() {
        check_labels(e, spec.get("selector"), "spec.selector");
    }
    let affinity = gs(spec, "sessionAffinity");
    match affinity {
        "" => e.required("spec.sessionAffinity", ""),
        "ClientIP" | "None" => {}
        other => e.not_supported("spec.sessionAffinity", st(other), &["ClientIP", "None"]),
    }
    if affinity == "ClientIP" {
        let p = "spec.sessionAffinityConfig";
        let detail = "when session affinity type is ClientIP";
        match get(spec, "sessionAffinityConfig") {
            None => e.required(p, detail),
            Some(cfg) => match get(cfg, "clientIP") {
                None => e.required(child(p, "clientIP"), detail),
                Some(cip) => match gi(cip, "timeoutSeconds") {
                    None => e.required(child(&child(p, "clientIP"), "timeoutSeconds"), detail),
                    Some(t) => {
                        if t <= 0 || t > 86400 {
                            e.invalid(
                                child(&child(p, "clientIP"), "timeoutSeconds"),
                                Value::from(t),
                                "must be greater than 0 and less than 86400",
                            );
                        }
                    }
                },
            },
        }
    } else if affinity == "None" && get(spec, "sessionAffinityConfig").is_some() {
        e.forbidden(
            "spec.sessionAffinityConfig",
            "must not be set when session affinity is None",
        );
    }
    service_cluster_ips(e, spec);
    for (i, ip) in ga(spec, "externalIPs").iter().enumerate() {
        let ip = ip.as_str().unwrap_or("");
        let p = index("spec.externalIPs", i);
        if check_ip(e, ip, &p) {
            check_non_special_ip(e, ip, &p);
        }
    }
    match typ {
        "" => e.required("spec.type", ""),
        "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName" => {}
        other => e.not_supported(
            "spec.type",
            st(other),
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        ),
    }
    if typ == "ClusterIP" {
        for (i, port) in ports.iter().enumerate() {
            if gi(port, "nodePort").unwrap_or(0) != 0 {
                e.forbidden(
                    child(&index("spec.ports", i), "nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                );
            }
        }
    }
    let mut node_ports = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let np = gi(port, "nodePort").unwrap_or(0);
        if np == 0 {
            continue;
        }
        if !node_ports.insert((gs(port, "protocol"), np)) {
            e.duplicate(child(&index("spec.ports", i), "nodePort"), Value::from(np));
        }
    }
    let mut seen = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let protocol = gs(port, "protocol");
        let pn = gi(port, "port").unwrap_or(0);
        if !seen.insert((protocol, pn)) {
            e.duplicate(
                index("spec.ports", i),
                json!({"Name": "", "Protocol": protocol, "AppProtocol": null, "Port": pn,
                       "TargetPort": 0, "NodePort": 0}),
            );
        }
    }
    let ranges = ga(spec, "loadBalancerSourceRanges");
    if !ranges.is_empty() {
        let p = "spec.LoadBalancerSourceRanges";
        if typ != "LoadBalancer" {
            e.forbidden(p, "may only be used when `type` is 'LoadBalancer'");
        }
        for (i, r) in ranges.iter().enumerate() {
            check_cidr(e, r.as_str().unwrap_or("").trim(), &index(p, i));
        }
    } else if let Some(val) = ann("service.beta.kubernetes.io/load-balancer-source-ranges") {
        let p = "metadata.annotations[service.beta.kubernetes.io/load-balancer-source-ranges]";
        if typ != "LoadBalancer" {
            e.forbidden(p, "may only be used when `type` is 'LoadBalancer'");
        }
        let val = val.trim();
        if !val.is_empty() {
            for cidr in val.split(',') {
                check_cidr(e, cidr.trim(), p);
            }
        }
    }
    let alloc = get(spec, "allocateLoadBalancerNodePorts");
    if alloc.is_some() && typ != "LoadBalancer" {
        e.forbidden(
            "spec.allocateLoadBalancerNodePorts",
            "may only be used when `type` is 'LoadBalancer'",
        );
    }
    if typ == "LoadBalancer" && alloc.is_none() {
        e.required("allocateLoadBalancerNodePorts", "");
    }
    let lbc = spec.get("loadBalancerClass").and_then(Value::as_str);
    if typ == "LoadBalancer" {
        if let Some(c) = lbc {
            check_qualified_name(e, c, "spec.loadBalancerClass");
        }
    } else if lbc.is_some() {
        e.forbidden(
            "spec.loadBalancerClass",
            "may only be used when `type` is 'LoadBalancer'",
        );
    }
    let externally_accessible = typ == "LoadBalancer"
        || typ == "NodePort"
        || (typ == "ClusterIP" && !ga(spec, "externalIPs").is_empty());
    let etp = gs(spec, "externalTrafficPolicy");
    if !externally_accessible {
        if !etp.is_empty() {
            e.invalid(
                "spec.externalTrafficPolicy",
                st(etp),
                "may only be set for externally-accessible services",
            );
        }
    } else if etp.is_empty() {
        e.required("spec.externalTrafficPolicy", "");
    } else if etp != "Cluster" && etp != "Local" {
        e.not_supported("spec.externalTrafficPolicy", st(etp), &["Cluster", "Local"]);
    }
    let hc = gi(spec, "healthCheckNodePort").unwrap_or(0);
    if !(typ == "LoadBalancer" && etp == "Local") {
        if hc != 0 {
            e.invalid(
                "spec.healthCheckNodePort",
                Value::from(hc),
                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
            );
        }
    } else if hc == 0 {
        e.required("spec.healthCheckNodePort", "");
    } else if !valid_port_num(hc) {
        e.invalid(
            "spec.healthCheckNodePort",
            Value::from(hc),
            &inclusive_range(1, 65535),
        );
    }
    match spec.get("internalTrafficPolicy").and_then(Value::as_str) {
        None => {
            if matches!(typ, "NodePort" | "LoadBalancer" | "ClusterIP") {
                e.required("spec.internalTrafficPolicy", "");
            }
        }
        Some("Cluster" | "Local") => {}
        Some(other) => e.not_supported(
            "spec.internalTrafficPolicy",
            st(other),
            &["Cluster", "Local"],
        ),
    }
    if let Some(td) = spec.get("trafficDistribution").and_then(Value::as_str) {
        if !matches!(td, "PreferClose" | "PreferSameZone" | "PreferSameNode") {
            e.not_supported(
                "spec.trafficDistribution",
                st(td),
                &["PreferClose", "PreferSameZone", "PreferSameNode"],
            );
        }
    }
}

fn check_non_special_ip(e: &mut Errs, ip: &str, path: &str) {
    let Some(addr) = parse_ip(ip) else {
        e.invalid(path, st(ip), "must be a valid IP address");
        return;
    };
    let (unspecified, loopback, link_local, link_local_mc) = match addr {
        std::net::IpAddr::V4(a) => (
            a.is_unspecified(),
            a.is_loopback(),
            a.is_link_local(),
            a.octets()[..3] == [224, 0, 0],
        ),
        std::net::IpAddr::V6(a) => {
            let s = a.segments();
            (
                a.is_unspecified(),
                a.is_loopback(),
                (s[0] & 0xffc0) == 0xfe80,
                (s[0] & 0xff0f) == 0xff02,
            )
        }
    };
    if unspecified {
        e.invalid(path, st(ip), &format!("may not be unspecified ({ip})"));
    }
    if loopback {
        e.invalid(
            path,
            st(ip),
            "may not be in the loopback range (127.0.0.0/8, ::1/128)",
        );
    }
    if link_local {
        e.invalid(
            path,
            st(ip),
            "may not be in the link-local range (169.254.0.0/16, fe80::/10)",
        );
    }
    if link_local_mc {
        e.invalid(
            path,
            st(ip),
            "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)",
        );
    }
}

/// `ValidateServiceClusterIPsRelatedFields`.
fn service_cluster_ips(e: &mut Errs, spec: &Value) {
    if gs(spec, "type") == "ExternalName" {
        return;
    }
    let ip = gs(spec, "clusterIP");
    let ips_v = ga(spec, "clusterIPs");
    let ips: Vec<&str> = ips_v.iter().map(|v| v.as_str().unwrap_or("")).collect();
    let ips_value = Value::Array(ips_v.to_vec());
    if !ip.is_empty() {
        if ips.is_empty() {
            e.required("spec.clusterIPs", "");
        } else if ips[0] != ip {
            e.invalid(
                "spec.clusterIPs",
                ips_value.clone(),
                "first value must match `clusterIP`",
            );
        }
    } else if !ips.is_empty() {
        e.invalid(
            "spec.clusterIPs",
            ips_value.clone(),
            "must be empty when `clusterIP` is not specified",
        );
    }
    let families = ga(spec, "ipFamilies");
    let mut seen = BTreeSet::new();
    for (i, f) in families.iter().enumerate() {
        let f = f.as_str().unwrap_or("");
        if f != "IPv4" && f != "IPv6" {
            e.not_supported(index("spec.ipFamilies", i), st(f), &["IPv4", "IPv6"]);
        }
        if !seen.insert(f) {
            e.duplicate(index("spec.ipFamilies", i), st(f));
        }
    }
    if let Some(p) = spec.get("ipFamilyPolicy").and_then(Value::as_str) {
        if !matches!(p, "SingleStack" | "PreferDualStack" | "RequireDualStack") {
            e.not_supported(
                "spec.ipFamilyPolicy",
                st(p),
                &["PreferDualStack", "RequireDualStack", "SingleStack"],
            );
        }
    }
    let mut invalid_ips = false;
    for (i, cip) in ips.iter().enumerate() {
        if i == 0 && *cip == "None" {
            if ips.len() > 1 {
                invalid_ips = true;
                e.invalid(
                    "spec.clusterIPs",
                    ips_value.clone(),
                    "'None' must be the first and only value",
                );
            }
            continue;
        }
        if !check_ip(e, cip, &index("spec.clusterIPs", i)) {
            invalid_ips = true;
        }
    }
    if ips.len() > 2 {
        e.invalid(
            "spec.clusterIPs",
            ips_value.clone(),
            "may only hold up to 2 values",
        );
    }
    if invalid_ips {
        return;
    }
    if ips.len() > 1 {
        let v4 = ips
            .iter()
            .filter(|i| parse_ip(i).is_some_and(|a| a.is_ipv4()))
            .count();
        if v4 != 1 || ips.len() != 2 {
            e.invalid(
                "spec.clusterIPs",
                ips_value.clone(),
                "may specify no more than one IP for each IP family",
            );
        }
    }
    if !is_headless(spec) {
        for (i, cip) in ips.iter().enumerate() {
            let Some(family) = families.get(i).and_then(Value::as_str) else {
                break;
            };
            let v6 = parse_ip(cip).is_some_and(|a| a.is_ipv6());
            if family == "IPv4" && v6 {
                e.invalid(
                    index("spec.clusterIPs", i),
                    st(cip),
                    &format!("expected an IPv4 value as indicated by `ipFamilies[{i}]`"),
                );
            }
            if family == "IPv6" && !v6 {
                e.invalid(
                    index("spec.clusterIPs", i),
                    st(cip),
                    &format!("expected an IPv6 value as indicated by `ipFamilies[{i}]`"),
                );
            }
        }
    }
}

fn service_update(e: &mut Errs, spec: &Value, old: &Value) {
    let typ = gs(spec, "type");
    let old_typ = gs(old, "type");
    let ips = ga(spec, "clusterIPs");
    let old_ips = ga(old, "clusterIPs");
    let ips_value = Value::Array(ips.to_vec());
    let single_stack = spec.get("ipFamilyPolicy").and_then(Value::as_str) == Some("SingleStack");
    if typ != "ExternalName" && old_typ != "ExternalName" {
        let (new_headless, old_headless) = (is_headless(spec), is_headless(old));
        if !(new_headless && old_headless) {
            if ips.len() == old_ips.len() {
                for (i, ip) in old_ips.iter().enumerate() {
                    if Some(ip) != ips.get(i) {
                        e.invalid(
                            index("spec.clusterIPs", i),
                            ips_value.clone(),
                            "may not change once set",
                        );
                    }
                }
            } else if old_ips.len() > ips.len() {
                if ips.is_empty() {
                    e.invalid(
                        "spec.clusterIPs[0]",
                        ips_value.clone(),
                        "primary clusterIP can not be unset",
                    );
                }
                if !old_ips.is_empty() && !ips.is_empty() && ips[0] != old_ips[0] {
                    e.invalid(
                        "spec.clusterIPs[0]",
                        ips_value.clone(),
                        "may not change once set",
                    );
                }
                if ips.len() == 1 && !single_stack {
                    e.invalid(
                        "spec.ipFamilyPolicy",
                        spec.get("ipFamilyPolicy").cloned().unwrap_or(Value::Null),
                        "must be set to 'SingleStack' when releasing the secondary clusterIP",
                    );
                }
            } else if !old_ips.is_empty() && ips[0] != old_ips[0] {
                e.invalid(
                    "spec.clusterIPs[0]",
                    ips_value.clone(),
                    "may not change once set",
                );
            }
        }
        let fams = ga(spec, "ipFamilies");
        let old_fams = ga(old, "ipFamilies");
        let fams_value = Value::Array(fams.to_vec());
        if new_headless == old_headless && !new_headless {
            if fams.len() == old_fams.len() {
                for (i, f) in old_fams.iter().enumerate() {
                    if Some(f) != fams.get(i) {
                        e.invalid(
                            "spec.ipFamilies[0]",
                            fams_value.clone(),
                            "may not change once set",
                        );
                    }
                }
            } else if old_fams.len() > fams.len() {
                if ips.is_empty() {
                    e.invalid(
                        "spec.ipFamilies[0]",
                        fams_value.clone(),
                        "primary ipFamily can not be unset",
                    );
                }
                if !fams.is_empty() && fams[0] != old_fams[0] {
                    e.invalid(
                        "spec.ipFamilies[0]",
                        ips_value.clone(),
                        "may not change once set",
                    );
                }
                if fams.len() == 1 && !single_stack {
                    e.invalid(
                        "spec.ipFamilyPolicy",
                        spec.get("ipFamilyPolicy").cloned().unwrap_or(Value::Null),
                        "must be set to 'SingleStack' when releasing the secondary ipFamily",
                    );
                }
            } else if !old_fams.is_empty() && !fams.is_empty() && fams[0] != old_fams[0] {
                e.invalid(
                    "spec.ipFamilies[0]",
                    ips_value.clone(),
                    "may not change once set",
                );
            }
        }
    }
    if typ == "LoadBalancer"
        && old_typ == "LoadBalancer"
        && spec.get("loadBalancerClass") != old.get("loadBalancerClass")
    {
        e.invalid(
            "spec.loadBalancerClass",
            spec.get("loadBalancerClass")
                .cloned()
                .unwrap_or(Value::Null),
            "may not change once set",
        );
    }
    let needs_hc =
        |s: &Value| gs(s, "type") == "LoadBalancer" && gs(s, "externalTrafficPolicy") == "Local";
    if needs_hc(old)
        && needs_hc(spec)
        && gi(spec, "healthCheckNodePort") != gi(old, "healthCheckNodePort")
    {
        e.forbidden("spec.healthCheckNodePort", IMMUTABLE);
    }
}

// =============================================================================================
// ConfigMaps, Secrets, Namespaces, Nodes, Endpoints, Events
// =============================================================================================

const MAX_SECRET_SIZE: usize = 1024 * 1024;

fn decoded_len(v: &Value) -> usize {
    let s = v.as_str().unwrap_or("");
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map(|b| b.len())
        .unwrap_or(s.len())
}

fn config_map(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    if let Some(old) = old {
        if old.get("immutable") == Some(&Value::Bool(true)) {
            if obj.get("immutable") != Some(&Value::Bool(true)) {
                e.forbidden("immutable", "field is immutable when `immutable` is set");
            }
            for field in ["data", "binaryData"] {
                if !semantic_eq(
                    obj.get(field).unwrap_or(&Value::Null),
                    old.get(field).unwrap_or(&Value::Null),
                ) {
                    e.forbidden(field, "field is immutable when `immutable` is set");
                }
            }
        }
    }
    let mut total = 0usize;
    let binary = gm(obj, "binaryData");
    for (k, v) in sorted_entries(obj.get("data")) {
        for msg in config_map_key_errors(k) {
            e.invalid(key("data", k), st(k), &msg);
        }
        if binary.is_some_and(|b| b.contains_key(k.as_str())) {
            e.invalid(
                key("data", k),
                st(k),
                "duplicate of key present in binaryData",
            );
        }
        total += v.as_str().map_or(0, str::len);
    }
    for (k, v) in sorted_entries(obj.get("binaryData")) {
        for msg in config_map_key_errors(k) {
            e.invalid(key("binaryData", k), st(k), &msg);
        }
        total += decoded_len(v);
    }
    if total > MAX_SECRET_SIZE {
        e.too_long("[]", MAX_SECRET_SIZE);
    }
}

fn secret(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    if let Some(old) = old {
        e.immutable("type", obj.get("type"), old.get("type"));
        if old.get("immutable") == Some(&Value::Bool(true)) {
            if obj.get("immutable") != Some(&Value::Bool(true)) {
                e.forbidden("immutable", "field is immutable when `immutable` is set");
            }
            if !semantic_eq(
                obj.get("data").unwrap_or(&Value::Null),
                old.get("data").unwrap_or(&Value::Null),
            ) {
                e.forbidden("data", "field is immutable when `immutable` is set");
            }
        }
    }
    let data = gm(obj, "data");
    let mut total = 0usize;
    for (k, v) in sorted_entries(obj.get("data")) {
        for msg in config_map_key_errors(k) {
            e.invalid(key("data", k), st(k), &msg);
        }
        total += decoded_len(v);
    }
    if total > MAX_SECRET_SIZE {
        e.too_long("data", MAX_SECRET_SIZE);
    }
    let has = |k: &str| data.is_some_and(|d| d.contains_key(k));
    let decoded = |k: &str| -> Option<Vec<u8>> {
        let s = data?.get(k)?.as_str()?;
        base64::engine::general_purpose::STANDARD.decode(s).ok()
    };
    match gs(obj, "type") {
        "kubernetes.io/service-account-token" => {
            let name = obj
                .get("metadata")
                .and_then(|m| m.get("annotations"))
                .and_then(|a| a.get("kubernetes.io/service-account.name"))
                .and_then(Value::as_str)
                .unwrap_or("");
            if name.is_empty() {
                e.required(
                    "metadata.annotations[kubernetes.io/service-account.name]",
                    "",
                );
            }
        }
        t @ ("kubernetes.io/dockercfg" | "kubernetes.io/dockerconfigjson") => {
            let k = if t == "kubernetes.io/dockercfg" {
                ".dockercfg"
            } else {
                ".dockerconfigjson"
            };
            if !has(k) {
                e.required(key("data", k), "");
            } else {
                let bytes = decoded(k).unwrap_or_default();
                match serde_json::from_slice::<Value>(&bytes) {
                    Ok(Value::Object(_)) => {}
                    Ok(other) => e.invalid(
                        key("data", k),
                        st("<secret contents redacted>"),
                        &format!(
                            "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                            json_type(&other)
                        ),
                    ),
                    Err(err) => e.invalid(
                        key("data", k),
                        st("<secret contents redacted>"),
                        &err.to_string(),
                    ),
                }
            }
        }
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            e.required("data[username]", "");
            e.required("data[password]", "");
        }
        "kubernetes.io/ssh-auth" if decoded("ssh-privatekey").is_none_or(|b| b.is_empty()) => {
            e.required("data[ssh-privatekey]", "");
        }
        "kubernetes.io/tls" => {
            if !has("tls.crt") {
                e.required("data[tls.crt]", "");
            }
            if !has("tls.key") {
                e.required("data[tls.key]", "");
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

fn check_finalizer_name(e: &mut Errs, name: &str, path: &str) {
    check_qualified_name(e, name, path);
    if !name.contains('/') && !matches!(name, "kubernetes" | "orphan" | "foregroundDeletion") {
        e.invalid(
            path,
            st(name),
            "name is neither a standard finalizer name nor is it fully qualified",
        );
    }
}

fn namespace(e: &mut Errs, obj: &Value) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    for f in ga(spec, "finalizers") {
        check_finalizer_name(e, f.as_str().unwrap_or(""), "spec.finalizers");
    }
}

fn node_taints(e: &mut Errs, taints: &[Value], path: &str) {
    let mut unique: BTreeSet<(&str, &str)> = BTreeSet::new();
    for (i, t) in taints.iter().enumerate() {
        let p = index(path, i);
        let k = gs(t, "key");
        check_qualified_name(e, k, &child(&p, "key"));
        let v = gs(t, "value");
        let errs = selectors::label_value_errors(v);
        if !errs.is_empty() {
            e.invalid(child(&p, "value"), st(v), &errs.join(";"));
        }
        let effect = gs(t, "effect");
        if effect.is_empty() {
            e.required(child(&p, "effect"), "");
        } else {
            check_taint_effect(e, effect, &child(&p, "effect"));
        }
        if !unique.insert((effect, k)) {
            e.0.push(Cause::new(
                "FieldValueDuplicate",
                p,
                format!(
                    "Duplicate value: {}: taints must be unique by key and effect pair",
                    go_value(t)
                ),
            ));
        }
    }
}

fn pod_cidrs(spec: &Value) -> Vec<&str> {
    let cidrs: Vec<&str> = ga(spec, "podCIDRs")
        .iter()
        .map(|v| v.as_str().unwrap_or(""))
        .collect();
    if cidrs.is_empty() && !gs(spec, "podCIDR").is_empty() {
        return vec![gs(spec, "podCIDR")];
    }
    cidrs
}

fn node(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    node_taints(e, ga(spec, "taints"), "metadata.taints");
    let status = obj.get("status").unwrap_or(&Value::Null);
    for field in ["capacity", "allocatable"] {
        for (k, v) in sorted_entries(status.get(field)) {
            if let Some(q) = quantity_of(v) {
                check_quantity_value(e, k, q, &format!("status.{field}.{k}"));
            }
        }
    }
    let cidrs = pod_cidrs(spec);
    if old.is_none() {
        for (i, c) in cidrs.iter().enumerate() {
            check_cidr(e, c, &index("spec.podCIDRs", i));
        }
        if cidrs.len() > 1 {
            let v4 = cidrs
                .iter()
                .filter(|c| parse_cidr(c).is_some_and(|(ip, _)| ip.is_ipv4()))
                .count();
            if v4 != 1 || cidrs.len() > 2 {
                e.invalid(
                    "spec.podCIDRs",
                    json!(cidrs),
                    "may specify no more than one CIDR for each IP family",
                );
            }
            let mut seen = BTreeSet::new();
            for (i, c) in cidrs.iter().enumerate() {
                if !seen.insert(*c) {
                    e.duplicate(index("spec.podCIDRs", i), st(c));
                }
            }
        }
        return;
    }
    let old = old.unwrap_or(&Value::Null);
    let old_spec = old.get("spec").unwrap_or(&Value::Null);
    let mut seen = BTreeSet::new();
    for (i, a) in ga(status, "addresses").iter().enumerate() {
        if !seen.insert((gs(a, "type"), gs(a, "address"))) {
            e.duplicate(index("status.addresses", i), go_value(a));
        }
    }
    let old_cidrs = pod_cidrs(old_spec);
    if !old_cidrs.is_empty() {
        let msg = "node updates may not change podCIDR except from \"\" to valid";
        if old_cidrs.len() != cidrs.len() {
            e.forbidden("spec.podCIDRs", msg);
        } else {
            for (a, b) in old_cidrs.iter().zip(&cidrs) {
                if a != b {
                    e.forbidden("spec.podCIDRs", msg);
                }
            }
        }
    }
    let old_provider = gs(old_spec, "providerID");
    if !old_provider.is_empty() && old_provider != gs(spec, "providerID") {
        e.forbidden(
            "spec.providerID",
            "node updates may not change providerID except from \"\" to valid",
        );
    }
    if gs(spec, "externalID") != gs(old_spec, "externalID") {
        e.forbidden("spec.externalID", "may not be updated");
    }
}

fn endpoints(e: &mut Errs, obj: &Value) {
    for (i, ss) in ga(obj, "subsets").iter().enumerate() {
        let p = index("subsets", i);
        let addrs = ga(ss, "addresses");
        let not_ready = ga(ss, "notReadyAddresses");
        if addrs.is_empty() && not_ready.is_empty() {
            e.required(&p, "must specify `addresses` or `notReadyAddresses`");
        }
        for (list, items) in [("addresses", addrs), ("notReadyAddresses", not_ready)] {
            for (j, a) in items.iter().enumerate() {
                let ap = index(&child(&p, list), j);
                let ip = gs(a, "ip");
                check_ip(e, ip, &child(&ap, "ip"));
                let hn = gs(a, "hostname");
                if !hn.is_empty() {
                    check_dns1123_label(e, hn, &child(&ap, "hostname"));
                }
                if let Some(nn) = a.get("nodeName").and_then(Value::as_str) {
                    check_dns1123_subdomain(e, nn, &child(&ap, "nodeName"));
                }
                check_non_special_ip(e, ip, &child(&ap, "ip"));
            }
        }
        let ports = ga(ss, "ports");
        for (j, port) in ports.iter().enumerate() {
            let pp = index(&child(&p, "ports"), j);
            let name = gs(port, "name");
            if ports.len() > 1 && name.is_empty() {
                e.required(child(&pp, "name"), "");
            } else if !name.is_empty() {
                check_dns1123_label(e, name, &child(&pp, "name"));
            }
            let pn = gi(port, "port").unwrap_or(0);
            if !valid_port_num(pn) {
                e.invalid(
                    child(&pp, "port"),
                    Value::from(pn),
                    &inclusive_range(1, 65535),
                );
            }
            check_protocol(e, gs(port, "protocol"), &child(&pp, "protocol"));
            if let Some(ap) = port.get("appProtocol").and_then(Value::as_str) {
                check_qualified_name(e, ap, &child(&pp, "appProtocol"));
            }
        }
    }
}

/// `legacyValidateEvent` (core/v1 Events).
fn core_event(e: &mut Errs, obj: &Value) {
    let ns = meta::meta_str(obj, "namespace").unwrap_or("");
    let involved_ns = obj
        .get("involvedObject")
        .map(|o| gs(o, "namespace"))
        .unwrap_or("");
    let event_time_zero = get(obj, "eventTime").is_none();
    if event_time_zero {
        if involved_ns.is_empty() {
            if !ns.is_empty() && ns != "default" {
                e.invalid(
                    "involvedObject.namespace",
                    st(involved_ns),
                    "does not match event.namespace",
                );
            }
        } else if ns != involved_ns {
            e.invalid(
                "involvedObject.namespace",
                st(involved_ns),
                "does not match event.namespace",
            );
        }
    } else {
        if involved_ns.is_empty() && ns != "default" && ns != "kube-system" {
            e.invalid(
                "involvedObject.namespace",
                st(involved_ns),
                "does not match event.namespace",
            );
        }
        event_reporting_fields(e, obj, "reportingComponent", "message");
    }
    for msg in dns1123_subdomain_errors(ns) {
        e.invalid("namespace", st(ns), &msg);
    }
}

fn event_reporting_fields(e: &mut Errs, obj: &Value, controller_field: &str, note_field: &str) {
    let controller = gs(obj, controller_field);
    if controller.is_empty() {
        e.required(controller_field, "");
    }
    check_qualified_name(e, controller, controller_field);
    let instance = gs(obj, "reportingInstance");
    if instance.is_empty() {
        e.required("reportingInstance", "");
    }
    if instance.len() > 128 {
        e.invalid(
            "reportingInstance",
            st(""),
            "can have at most 128 characters",
        );
    }
    let action = gs(obj, "action");
    if action.is_empty() {
        e.required("action", "");
    }
    if action.len() > 128 {
        e.invalid("action", st(""), "can have at most 128 characters");
    }
    let reason = gs(obj, "reason");
    if reason.is_empty() {
        e.required("reason", "");
    }
    if reason.len() > 128 {
        e.invalid("reason", st(""), "can have at most 128 characters");
    }
    if gs(obj, note_field).len() > 1024 {
        e.invalid(note_field, st(""), "can have at most 1024 characters");
    }
}

/// `ValidateEventCreate` for events.k8s.io/v1: the legacy checks on the internal form (paths of
/// the core type), then the new-style ones.
fn events_event(e: &mut Errs, obj: &Value) {
    let ns = meta::meta_str(obj, "namespace").unwrap_or("");
    let regarding_ns = obj
        .get("regarding")
        .map(|o| gs(o, "namespace"))
        .unwrap_or("");
    let event_time_zero = get(obj, "eventTime").is_none();
    if event_time_zero {
        if (regarding_ns.is_empty() && !ns.is_empty() && ns != "default")
            || (!regarding_ns.is_empty() && ns != regarding_ns)
        {
            e.invalid(
                "involvedObject.namespace",
                st(regarding_ns),
                "does not match event.namespace",
            );
        }
    } else {
        if regarding_ns.is_empty() && ns != "default" && ns != "kube-system" {
            e.invalid(
                "involvedObject.namespace",
                st(regarding_ns),
                "does not match event.namespace",
            );
        }
        let mut legacy = obj.clone();
        if let Some(o) = legacy.as_object_mut() {
            let note = o.get("note").cloned().unwrap_or(Value::Null);
            o.insert("message".into(), note);
        }
        event_reporting_fields(e, &legacy, "reportingController", "message");
    }
    for msg in dns1123_subdomain_errors(ns) {
        e.invalid("namespace", st(ns), &msg);
    }
    if event_time_zero {
        e.required("eventTime", "");
    }
    let typ = gs(obj, "type");
    if typ != "Normal" && typ != "Warning" {
        e.invalid("type", st(""), &format!("has invalid value: {typ}"));
    }
    if get(obj, "deprecatedFirstTimestamp").is_some() {
        e.invalid("firstTimestamp", st(""), "needs to be unset");
    }
    if get(obj, "deprecatedLastTimestamp").is_some() {
        e.invalid("lastTimestamp", st(""), "needs to be unset");
    }
    if gi(obj, "deprecatedCount").unwrap_or(0) != 0 {
        e.invalid("count", st(""), "needs to be unset");
    }
    if get(obj, "deprecatedSource").is_some_and(|s| !is_empty_value(s)) {
        e.invalid("source", st(""), "needs to be unset");
    }
}

// =============================================================================================
// apps: Deployment, ReplicaSet, StatefulSet, DaemonSet
// =============================================================================================

/// apps/v1 and apps/v1beta2 forbid selector changes; apps/v1beta1 and extensions/v1beta1 allowed
/// them.
fn selector_immutable(group: &str, version: &str) -> bool {
    !((group == "apps" && version == "v1beta1") || group == "extensions")
}

/// The selector checks shared by Deployment, ReplicaSet and StatefulSet; `None` when
/// `LabelSelectorAsSelector` fails.
fn workload_selector(
    e: &mut Errs,
    spec: &Value,
    kind: &str,
    conversion_detail: &str,
) -> Option<LabelSelector> {
    let sel = get(spec, "selector");
    match sel {
        None => e.required("spec.selector", ""),
        Some(s) => {
            check_label_selector(e, Some(s), "spec.selector");
            if selector_is_empty(s) {
                e.invalid(
                    "spec.selector",
                    selector_value(s),
                    &format!("empty selector is invalid for {kind}"),
                );
            }
        }
    }
    match as_selector(sel) {
        Some(s) => Some(s),
        None => {
            e.invalid(
                "spec.selector",
                selector_value(sel.unwrap_or(&Value::Null)),
                conversion_detail,
            );
            None
        }
    }
}

fn check_template_matches(e: &mut Errs, selector: &LabelSelector, template: &Value) {
    if !selector.is_empty() && !selector.matches(template_labels(template)) {
        e.invalid(
            "spec.template.metadata.labels",
            template_labels_value(template),
            "`selector` does not match template `labels`",
        );
    }
}

/// `ValidatePodTemplateSpecForReplicaSet`.
fn replica_set_template(e: &mut Errs, selector: &LabelSelector, template: &Value, owner: &str) {
    check_template_matches(e, selector, template);
    pod_template_spec(e, template, "spec.template");
    let tspec = template.get("spec").unwrap_or(&Value::Null);
    let rp = gs(tspec, "restartPolicy");
    if rp != "Always" {
        e.not_supported("spec.template.spec.restartPolicy", st(rp), &["Always"]);
    }
    if get(tspec, "activeDeadlineSeconds").is_some() {
        e.forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            &format!("activeDeadlineSeconds in {owner} is not Supported"),
        );
    }
}

/// An int-or-string as its `String()` prints it.
fn int_or_string_shown(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "0".to_string(),
    }
}

/// `getIntOrPercentValue`.
fn int_or_percent_value(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::String(s)) => {
            if percent_ok(s) {
                s[..s.len() - 1].parse().unwrap_or(0)
            } else {
                s.parse().unwrap_or(0)
            }
        }
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

const PERCENT_MSG: &str = "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')";

/// `ValidatePositiveIntOrPercent`.
fn check_positive_int_or_percent(e: &mut Errs, v: Option<&Value>, path: &str) {
    match v {
        Some(Value::String(s)) => {
            if !percent_ok(s) {
                e.invalid_shown(path, s, PERCENT_MSG);
            }
        }
        other => e.nonnegative(path, Some(other.and_then(Value::as_i64).unwrap_or(0))),
    }
}

/// `IsNotMoreThan100Percent`.
fn check_not_more_than_100(e: &mut Errs, v: Option<&Value>, path: &str) {
    if let Some(Value::String(s)) = v {
        if percent_ok(s) && s[..s.len() - 1].parse::<i64>().unwrap_or(0) > 100 {
            e.invalid_shown(path, s, "must not be greater than 100%");
        }
    }
}

fn deployment(e: &mut Errs, group: &str, version: &str, obj: &Value, old: Option<&Value>) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    e.nonnegative("spec.replicas", Some(gi(spec, "replicas").unwrap_or(0)));
    if let Some(sel) = workload_selector(e, spec, "deployment", "invalid label selector") {
        replica_set_template(
            e,
            &sel,
            spec.get("template").unwrap_or(&Value::Null),
            "ReplicaSet",
        );
    }
    let strategy = spec.get("strategy").unwrap_or(&Value::Null);
    match gs(strategy, "type") {
        "Recreate" => {
            if get(strategy, "rollingUpdate").is_some() {
                e.forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                );
            }
        }
        "RollingUpdate" => match get(strategy, "rollingUpdate") {
            None => e.required(
                "spec.strategy.rollingUpdate",
                "this should be defaulted and never be nil",
            ),
            Some(ru) => {
                let (mu, ms) = (ru.get("maxUnavailable"), ru.get("maxSurge"));
                let p = "spec.strategy.rollingUpdate";
                check_positive_int_or_percent(e, mu, &child(p, "maxUnavailable"));
                check_positive_int_or_percent(e, ms, &child(p, "maxSurge"));
                if int_or_percent_value(mu) == 0 && int_or_percent_value(ms) == 0 {
                    e.invalid_shown(
                        child(p, "maxUnavailable"),
                        &int_or_string_shown(mu),
                        "may not be 0 when `maxSurge` is 0",
                    );
                }
                check_not_more_than_100(e, mu, &child(p, "maxUnavailable"));
            }
        },
        _ => e.not_supported(
            "spec.strategy",
            go_value(strategy),
            &["Recreate", "RollingUpdate"],
        ),
    }
    let min_ready = gi(spec, "minReadySeconds").unwrap_or(0);
    e.nonnegative("spec.minReadySeconds", Some(min_ready));
    e.nonnegative(
        "spec.revisionHistoryLimit",
        gi(spec, "revisionHistoryLimit"),
    );
    if let Some(pds) = gi(spec, "progressDeadlineSeconds") {
        e.nonnegative("spec.progressDeadlineSeconds", Some(pds));
        if pds <= min_ready {
            e.invalid(
                "spec.progressDeadlineSeconds",
                Value::from(pds),
                "must be greater than minReadySeconds",
            );
        }
    }
    if let Some(old) = old {
        if selector_immutable(group, version) {
            immutable_selector(e, spec, old);
        }
    }
}

fn immutable_selector(e: &mut Errs, spec: &Value, old: &Value) {
    let new_sel = spec.get("selector");
    let old_sel = old.get("spec").and_then(|s| s.get("selector"));
    if !semantic_eq(
        new_sel.unwrap_or(&Value::Null),
        old_sel.unwrap_or(&Value::Null),
    ) {
        let shown = new_sel.map(selector_value).unwrap_or(Value::Null);
        e.invalid("spec.selector", shown, IMMUTABLE);
    }
}

fn replica_set(e: &mut Errs, group: &str, version: &str, obj: &Value, old: Option<&Value>) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    e.nonnegative("spec.replicas", Some(gi(spec, "replicas").unwrap_or(0)));
    e.nonnegative(
        "spec.minReadySeconds",
        Some(gi(spec, "minReadySeconds").unwrap_or(0)),
    );
    if let Some(sel) = workload_selector(e, spec, "deployment", "invalid label selector") {
        replica_set_template(
            e,
            &sel,
            spec.get("template").unwrap_or(&Value::Null),
            "ReplicaSet",
        );
    }
    if let Some(old) = old {
        if selector_immutable(group, version) {
            immutable_selector(e, spec, old);
        }
    }
}

fn stateful_set_spec(e: &mut Errs, spec: &Value) {
    match gs(spec, "podManagementPolicy") {
        "" => e.required("spec.podManagementPolicy", ""),
        "OrderedReady" | "Parallel" => {}
        other => e.invalid(
            "spec.podManagementPolicy",
            st(other),
            "must be 'OrderedReady' or 'Parallel'",
        ),
    }
    let us = spec.get("updateStrategy").unwrap_or(&Value::Null);
    match gs(us, "type") {
        "" => e.required("spec.updateStrategy", ""),
        "OnDelete" => {
            if let Some(ru) = get(us, "rollingUpdate") {
                e.invalid(
                    "spec.updateStrategy.rollingUpdate",
                    go_value(ru),
                    "only allowed for updateStrategy 'RollingUpdate'",
                );
            }
        }
        "RollingUpdate" => {
            if let Some(ru) = get(us, "rollingUpdate") {
                let p = "spec.updateStrategy.rollingUpdate";
                e.nonnegative(
                    &child(p, "partition"),
                    Some(gi(ru, "partition").unwrap_or(0)),
                );
                if let Some(mu) = get(ru, "maxUnavailable") {
                    let mp = child(p, "maxUnavailable");
                    check_positive_int_or_percent(e, Some(mu), &mp);
                    if int_or_percent_value(Some(mu)) == 0 {
                        e.invalid_shown(&mp, &int_or_string_shown(Some(mu)), "cannot be 0");
                    }
                    check_not_more_than_100(e, Some(mu), &mp);
                }
            }
        }
        _ => e.invalid(
            "spec.updateStrategy",
            go_value(us),
            "must be 'RollingUpdate' or 'OnDelete'",
        ),
    }
    if let Some(policy) = get(spec, "persistentVolumeClaimRetentionPolicy") {
        for field in ["whenDeleted", "whenScaled"] {
            let v = gs(policy, field);
            if v != "Retain" && v != "Delete" {
                e.not_supported(
                    format!("spec.persistentVolumeClaimRetentionPolicy.{field}"),
                    st(v),
                    &["Retain", "Delete"],
                );
            }
        }
    }
    e.nonnegative("spec.replicas", Some(gi(spec, "replicas").unwrap_or(0)));
    e.nonnegative(
        "spec.minReadySeconds",
        Some(gi(spec, "minReadySeconds").unwrap_or(0)),
    );
    if let Some(ord) = get(spec, "ordinals") {
        e.nonnegative("spec.ordinals.start", Some(gi(ord, "start").unwrap_or(0)));
    }
    let template = spec.get("template").unwrap_or(&Value::Null);
    if let Some(sel) = workload_selector(e, spec, "statefulset", "") {
        check_template_matches(e, &sel, template);
        let md = template.get("metadata");
        check_labels(e, md.and_then(|m| m.get("labels")), "spec.template.labels");
        if let Some(m) = md.and_then(Value::as_object) {
            check_annotations(e, m, "spec.template");
        }
        check_pod_annotations(
            e,
            md.and_then(|m| m.get("annotations")),
            template.get("spec").unwrap_or(&Value::Null),
            "spec.template.annotations",
        );
    }
    let tspec = template.get("spec").unwrap_or(&Value::Null);
    let rp = gs(tspec, "restartPolicy");
    if rp != "Always" {
        e.not_supported("spec.template.spec.restartPolicy", st(rp), &["Always"]);
    }
    if get(tspec, "activeDeadlineSeconds").is_some() {
        e.forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            "activeDeadlineSeconds in StatefulSet is not Supported",
        );
    }
}

fn stateful_set(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    stateful_set_spec(e, spec);
    let Some(old) = old else { return };
    let old_spec = old.get("spec").unwrap_or(&Value::Null);
    let mut clone = spec.clone();
    if let Some(m) = clone.as_object_mut() {
        for field in [
            "replicas",
            "template",
            "updateStrategy",
            "minReadySeconds",
            "ordinals",
            "persistentVolumeClaimRetentionPolicy",
        ] {
            match old_spec.get(field) {
                Some(v) => m.insert(field.into(), v.clone()),
                None => m.remove(field),
            };
        }
    }
    if !semantic_eq(&clone, old_spec) {
        e.forbidden(
            "spec",
            "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
        );
    }
}

fn daemon_set(e: &mut Errs, group: &str, version: &str, obj: &Value, old: Option<&Value>) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let template = spec.get("template").unwrap_or(&Value::Null);
    let sel = get(spec, "selector");
    check_label_selector(e, sel, "spec.selector");
    if let Some(s) = as_selector(sel) {
        if !s.matches(template_labels(template)) {
            e.invalid(
                "spec.template.metadata.labels",
                template_labels_value(template),
                "`selector` does not match template `labels`",
            );
        }
    }
    if let Some(s) = sel.filter(|s| selector_is_empty(s)) {
        e.invalid(
            "spec.selector",
            selector_value(s),
            "empty selector is invalid for daemonset",
        );
    }
    pod_template_spec(e, template, "spec.template");
    let tspec = template.get("spec").unwrap_or(&Value::Null);
    let rp = gs(tspec, "restartPolicy");
    if rp != "Always" {
        e.not_supported("spec.template.spec.restartPolicy", st(rp), &["Always"]);
    }
    if get(tspec, "activeDeadlineSeconds").is_some() {
        e.forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            "activeDeadlineSeconds in DaemonSet is not Supported",
        );
    }
    e.nonnegative(
        "spec.minReadySeconds",
        Some(gi(spec, "minReadySeconds").unwrap_or(0)),
    );
    let us = spec.get("updateStrategy").unwrap_or(&Value::Null);
    match gs(us, "type") {
        "OnDelete" => {}
        "RollingUpdate" => match get(us, "rollingUpdate") {
            None => e.required("spec.updateStrategy.rollingUpdate", ""),
            Some(ru) => {
                let p = "spec.updateStrategy.rollingUpdate";
                let (mu, ms) = (ru.get("maxUnavailable"), ru.get("maxSurge"));
                check_positive_int_or_percent(e, mu, &child(p, "maxUnavailable"));
                check_positive_int_or_percent(e, ms, &child(p, "maxSurge"));
                check_not_more_than_100(e, mu, &child(p, "maxUnavailable"));
                check_not_more_than_100(e, ms, &child(p, "maxSurge"));
                let has_unavailable = int_or_percent_value(mu) != 0;
                let has_surge = int_or_percent_value(ms) != 0;
                if has_unavailable && has_surge {
                    e.invalid_shown(
                        child(p, "maxSurge"),
                        &int_or_string_shown(ms),
                        "may not be set when maxUnavailable is non-zero",
                    );
                } else if !has_unavailable && !has_surge {
                    e.required(child(p, "maxUnavailable"), "cannot be 0 when maxSurge is 0");
                }
            }
        },
        _ => e.not_supported(
            "spec.updateStrategy",
            go_value(us),
            &["RollingUpdate", "OnDelete"],
        ),
    }
    e.nonnegative(
        "spec.revisionHistoryLimit",
        gi(spec, "revisionHistoryLimit"),
    );
    if let Some(old) = old {
        if selector_immutable(group, version) {
            immutable_selector(e, spec, old);
        }
    }
}

// =============================================================================================
// batch: Job, CronJob
// =============================================================================================

const MAX_PARALLELISM_INDEXED: i64 = 100_000;
const COMPLETIONS_SOFT_LIMIT: i64 = 100_000;

fn has_label(e: &mut Errs, template: &Value, k: &str, expected: &str) {
    let labels = template_labels(template);
    let path = key("spec.template.metadata.labels", k);
    match labels.and_then(|l| l.get(k)).and_then(Value::as_str) {
        None => e.required(path, &format!("must be '{expected}'")),
        Some(v) if v != expected => e.invalid(
            path,
            template_labels_value(template),
            &format!("must be '{expected}'"),
        ),
        _ => {}
    }
}

fn job(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let template = spec.get("template").unwrap_or(&Value::Null);
    let name = meta::meta_str(obj, "name").unwrap_or("");
    let uid = meta::meta_str(obj, "uid").unwrap_or("");
    let require_prefixed = match old {
        None => true,
        Some(o) => {
            let ot = o
                .get("spec")
                .and_then(|s| s.get("template"))
                .unwrap_or(&Value::Null);
            let l = template_labels(ot);
            l.is_some_and(|l| {
                l.contains_key("batch.kubernetes.io/job-name")
                    && l.contains_key("batch.kubernetes.io/controller-uid")
            })
        }
    };
    // validateGeneratedSelector
    if !gb(spec, "manualSelector") {
        if let Some(sel) = get(spec, "selector") {
            if uid.is_empty() {
                e.required("metadata.uid", "");
            }
            has_label(e, template, "controller-uid", uid);
            has_label(e, template, "job-name", name);
            let mut expected = Map::new();
            if require_prefixed {
                has_label(e, template, "batch.kubernetes.io/controller-uid", uid);
                has_label(e, template, "batch.kubernetes.io/job-name", name);
                expected.insert("batch.kubernetes.io/controller-uid".into(), st(uid));
                expected.insert("batch.kubernetes.io/job-name".into(), st(name));
            }
            expected.insert("controller-uid".into(), st(uid));
            expected.insert("job-name".into(), st(name));
            if let Some(s) = as_selector(Some(sel)) {
                if !s.matches(Some(&expected)) {
                    e.invalid(
                        "spec.selector",
                        selector_value(sel),
                        "`selector` not auto-generated",
                    );
                }
            }
        }
    }
    job_spec(e, spec);
    if gs(spec, "completionMode") == "Indexed" {
        if let Some(c) = gi(spec, "completions").filter(|c| *c > 0) {
            let host = format!("{name}-{}", c - 1);
            if !dns1123_label_errors(&host).is_empty() {
                e.invalid(
                    "metadata.name",
                    st(name),
                    &format!("will not able to create pod with invalid DNS label: {host}"),
                );
            }
        }
    }
    let Some(old) = old else { return };
    let old_spec = old.get("spec").unwrap_or(&Value::Null);
    // ValidateJobUpdate (upstream validates the spec a second time here).
    job_spec(e, spec);
    let indexed = gs(spec, "completionMode") == "Indexed";
    if !indexed {
        e.immutable(
            "spec.completions",
            spec.get("completions"),
            old_spec.get("completions"),
        );
    } else if !semantic_eq(
        spec.get("completions").unwrap_or(&Value::Null),
        old_spec.get("completions").unwrap_or(&Value::Null),
    ) {
        if let Some(c) = gi(spec, "completions") {
            if Some(c) != gi(spec, "parallelism") {
                e.invalid(
                    "spec.completions",
                    Value::from(c),
                    "can only be modified in tandem with spec.parallelism",
                );
            }
        }
    }
    e.immutable(
        "spec.selector",
        spec.get("selector"),
        old_spec.get("selector"),
    );
    let old_template = old_spec.get("template").unwrap_or(&Value::Null);
    let suspended = gb(old_spec, "suspend");
    let not_started = old
        .get("status")
        .and_then(|s| get(s, "startTime"))
        .is_none();
    let mut compare_old = old_template.clone();
    if suspended && not_started {
        // Mutable scheduling directives of a suspended Job that never started.
        let mut o = old_template.clone();
        if let (Some(ot), Some(nt)) = (o.as_object_mut(), template.as_object()) {
            let nmeta = nt.get("metadata").cloned().unwrap_or(Value::Null);
            if let Some(om) = ot.get_mut("metadata").and_then(Value::as_object_mut) {
                for f in ["labels", "annotations"] {
                    match nmeta.get(f) {
                        Some(v) => om.insert(f.into(), v.clone()),
                        None => om.remove(f),
                    };
                }
            }
            let nspec = nt.get("spec").cloned().unwrap_or(Value::Null);
            if let Some(os) = ot.get_mut("spec").and_then(Value::as_object_mut) {
                for f in ["nodeSelector", "tolerations", "schedulingGates"] {
                    match nspec.get(f) {
                        Some(v) => os.insert(f.into(), v.clone()),
                        None => os.remove(f),
                    };
                }
                let new_na = nspec
                    .get("affinity")
                    .and_then(|a| a.get("nodeAffinity"))
                    .cloned();
                match (
                    nspec.get("affinity").filter(|a| !a.is_null()),
                    os.get_mut("affinity"),
                ) {
                    (None, Some(oa)) => {
                        if let Some(oam) = oa.as_object_mut() {
                            oam.remove("nodeAffinity");
                            if oam.values().all(Value::is_null) {
                                os.remove("affinity");
                            }
                        }
                    }
                    (Some(_), None) => {
                        let mut a = Map::new();
                        if let Some(na) = new_na {
                            a.insert("nodeAffinity".into(), na);
                        }
                        os.insert("affinity".into(), Value::Object(a));
                    }
                    (Some(_), Some(oa)) => {
                        if let Some(oam) = oa.as_object_mut() {
                            match new_na {
                                Some(na) => oam.insert("nodeAffinity".into(), na),
                                None => oam.remove("nodeAffinity"),
                            };
                        }
                    }
                    (None, None) => {}
                }
            }
        }
        compare_old = o;
    }
    if !semantic_eq(template, &compare_old) {
        e.invalid("spec.template", go_value(template), IMMUTABLE);
    }
    for field in [
        "completionMode",
        "podFailurePolicy",
        "backoffLimitPerIndex",
        "managedBy",
        "successPolicy",
    ] {
        e.immutable(&child("spec", field), spec.get(field), old_spec.get(field));
    }
}

/// `ValidateJobSpec`: `validateJobSpec` plus the selector.
fn job_spec(e: &mut Errs, spec: &Value) {
    job_spec_body(e, spec, "spec");
    let sel = get(spec, "selector");
    match sel {
        None => e.required("spec.selector", ""),
        Some(s) => check_label_selector(e, Some(s), "spec.selector"),
    }
    if let Some(s) = as_selector(sel) {
        let template = spec.get("template").unwrap_or(&Value::Null);
        if !s.matches(template_labels(template)) {
            e.invalid(
                "spec.template.metadata.labels",
                template_labels_value(template),
                "`selector` does not match template `labels`",
            );
        }
    }
}

/// `validateJobSpec` at `path` (`spec` or `spec.jobTemplate.spec`).
fn job_spec_body(e: &mut Errs, spec: &Value, path: &str) {
    for field in [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
        "backoffLimitPerIndex",
    ] {
        e.nonnegative(&child(path, field), gi(spec, field));
    }
    let parallelism = gi(spec, "parallelism");
    let completions = gi(spec, "completions");
    let blpi = gi(spec, "backoffLimitPerIndex");
    let mfi = gi(spec, "maxFailedIndexes");
    if let Some(m) = mfi {
        e.nonnegative(&child(path, "maxFailedIndexes"), Some(m));
        if blpi.is_none() {
            e.required(
                child(path, "backoffLimitPerIndex"),
                "when maxFailedIndexes is specified",
            );
        }
    }
    if let Some(mb) = spec.get("managedBy").and_then(Value::as_str) {
        let p = child(path, "managedBy");
        check_domain_prefixed_path(e, mb, &p);
        if mb.len() > 63 {
            e.too_long_max_length(&p, 63);
        }
    }
    let mode = spec.get("completionMode").and_then(Value::as_str);
    if let Some(mode) = mode {
        if mode != "NonIndexed" && mode != "Indexed" {
            e.not_supported(
                child(path, "completionMode"),
                st(mode),
                &["NonIndexed", "Indexed"],
            );
        }
        if mode == "Indexed" {
            if completions.is_none() {
                e.required(
                    child(path, "completions"),
                    "when completion mode is Indexed",
                );
            }
            if let Some(p) = parallelism.filter(|p| *p > MAX_PARALLELISM_INDEXED) {
                e.invalid(
                    child(path, "parallelism"),
                    Value::from(p),
                    "must be less than or equal to 100000 when completion mode is Indexed",
                );
            }
            if let (Some(c), Some(m)) = (completions, mfi) {
                if m > c {
                    e.invalid(
                        child(path, "maxFailedIndexes"),
                        Value::from(m),
                        "must be less than or equal to completions",
                    );
                }
            }
            if let Some(m) = mfi.filter(|m| *m > 100_000) {
                e.invalid(
                    child(path, "maxFailedIndexes"),
                    Value::from(m),
                    "must be less than or equal to 100000",
                );
            }
            if completions.is_some_and(|c| c > COMPLETIONS_SOFT_LIMIT) && blpi.is_some() {
                if mfi.is_none() {
                    e.required(
                        child(path, "maxFailedIndexes"),
                        "must be specified when completions is above 100000",
                    );
                }
                if let Some(p) = parallelism.filter(|p| *p > 10_000) {
                    e.invalid(
                        child(path, "parallelism"),
                        Value::from(p),
                        "must be less than or equal to 10000 when completions are above 100000 and used with backoff limit per index",
                    );
                }
                if let Some(m) = mfi.filter(|m| *m > 10_000) {
                    e.invalid(
                        child(path, "maxFailedIndexes"),
                        Value::from(m),
                        "must be less than or equal to 10000 when completions are above 100000 and used with backoff limit per index",
                    );
                }
            }
        }
    }
    if mode.is_none_or(|m| m == "NonIndexed") {
        if let Some(b) = blpi {
            e.invalid(
                child(path, "backoffLimitPerIndex"),
                Value::from(b),
                "requires indexed completion mode",
            );
        }
        if let Some(m) = mfi {
            e.invalid(
                child(path, "maxFailedIndexes"),
                Value::from(m),
                "requires indexed completion mode",
            );
        }
    }
    let pfp = get(spec, "podFailurePolicy");
    if let Some(p) = pfp {
        check_pod_failure_policy(e, spec, p, &child(path, "podFailurePolicy"));
    }
    if let Some(sp) = get(spec, "successPolicy") {
        if mode != Some("Indexed") {
            e.invalid(
                child(path, "successPolicy"),
                go_value(sp),
                "requires indexed completion mode",
            );
        } else {
            check_success_policy(
                e,
                sp,
                completions.unwrap_or(0),
                &child(path, "successPolicy"),
            );
        }
    }
    if let Some(prp) = spec.get("podReplacementPolicy").and_then(Value::as_str) {
        let p = child(path, "podReplacementPolicy");
        if pfp.is_some() {
            if prp != "Failed" {
                e.not_supported(p, st(prp), &["Failed"]);
            }
        } else if prp != "Failed" && prp != "TerminatingOrFailed" {
            e.not_supported(p, st(prp), &["Failed", "TerminatingOrFailed"]);
        }
    }
    let template = spec.get("template").unwrap_or(&Value::Null);
    pod_template_spec(e, template, &child(path, "template"));
    let rp = template
        .get("spec")
        .map(|s| gs(s, "restartPolicy"))
        .unwrap_or("");
    let rp_path = format!("{path}.template.spec.restartPolicy");
    if rp == "Always" || rp.is_empty() {
        e.required(rp_path, "valid values: \"OnFailure\", \"Never\"");
    } else if rp != "OnFailure" && rp != "Never" {
        e.not_supported(rp_path, st(rp), &["OnFailure", "Never"]);
    } else if pfp.is_some() && rp != "Never" {
        e.invalid(
            rp_path,
            st(rp),
            "only \"Never\" is supported when podFailurePolicy is specified",
        );
    }
}

fn check_domain_prefixed_path(e: &mut Errs, v: &str, path: &str) {
    if v.is_empty() {
        e.required(path, "");
        return;
    }
    let Some((host, rest)) = v
        .split_once('/')
        .filter(|(h, r)| !h.is_empty() && !r.is_empty())
    else {
        e.invalid(
            path,
            st(v),
            "must be a domain-prefixed path (such as \"acme.io/foo\")",
        );
        return;
    };
    for msg in dns1123_subdomain_errors(host) {
        e.invalid(path, st(host), &msg);
    }
    let ok = rest
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || b"/-._~%!$&'()*+,;=:".contains(&c));
    if !ok {
        e.invalid(
            path,
            st(rest),
            "Invalid path (regex used for validation is '[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+')",
        );
    }
}

fn check_pod_failure_policy(e: &mut Errs, spec: &Value, policy: &Value, path: &str) {
    let rules = ga(policy, "rules");
    let rules_path = child(path, "rules");
    if rules.len() > 20 {
        e.too_many(&rules_path, rules.len(), 20);
    }
    let template_spec = spec
        .get("template")
        .and_then(|t| t.get("spec"))
        .unwrap_or(&Value::Null);
    let names: BTreeSet<&str> = ga(template_spec, "containers")
        .iter()
        .chain(ga(template_spec, "initContainers"))
        .map(|c| gs(c, "name"))
        .collect();
    for (i, rule) in rules.iter().enumerate() {
        let rp = index(&rules_path, i);
        let action = gs(rule, "action");
        let ap = child(&rp, "action");
        const ACTIONS: &[&str] = &["Count", "FailIndex", "FailJob", "Ignore"];
        if action.is_empty() {
            e.required(
                &ap,
                "valid values: [\"Count\" \"FailIndex\" \"FailJob\" \"Ignore\"]",
            );
        } else if action == "FailIndex" {
            if gi(spec, "backoffLimitPerIndex").is_none() {
                e.invalid(
                    &ap,
                    st(action),
                    "requires the backoffLimitPerIndex to be set",
                );
            }
        } else if !ACTIONS.contains(&action) {
            e.not_supported(&ap, st(action), ACTIONS);
        }
        let on_exit = get(rule, "onExitCodes");
        let on_conditions = ga(rule, "onPodConditions");
        if let Some(oe) = on_exit {
            let op = child(&rp, "onExitCodes");
            let operator = gs(oe, "operator");
            if operator.is_empty() {
                e.required(child(&op, "operator"), "valid values: [\"In\" \"NotIn\"]");
            } else if operator != "In" && operator != "NotIn" {
                e.not_supported(child(&op, "operator"), st(operator), &["In", "NotIn"]);
            }
            if let Some(cn) = oe.get("containerName").and_then(Value::as_str) {
                if !names.contains(cn) {
                    e.invalid(
                        child(&op, "containerName"),
                        st(cn),
                        "must be one of the container or initContainer names in the pod template",
                    );
                }
            }
            let values = ga(oe, "values");
            let vp = child(&op, "values");
            if values.is_empty() {
                e.invalid(&vp, Value::Null, "at least one value is required");
            } else if values.len() > 255 {
                e.too_many(&vp, values.len(), 255);
            }
            let mut seen = BTreeSet::new();
            let mut ordered = true;
            for (j, v) in values.iter().enumerate() {
                let n = v.as_i64().unwrap_or(0);
                if operator == "In" && n == 0 {
                    e.invalid(
                        index(&vp, j),
                        Value::from(n),
                        "must not be 0 for the In operator",
                    );
                }
                if !seen.insert(n) {
                    e.duplicate(index(&vp, j), Value::from(n));
                }
                if j > 0 && values[j - 1].as_i64().unwrap_or(0) > n {
                    ordered = false;
                }
            }
            if !ordered {
                e.invalid(&vp, Value::Array(values.to_vec()), "must be ordered");
            }
        }
        if !on_conditions.is_empty() {
            let cp = child(&rp, "onPodConditions");
            if on_conditions.len() > 20 {
                e.too_many(&cp, on_conditions.len(), 20);
            }
            for (j, pat) in on_conditions.iter().enumerate() {
                let pp = index(&cp, j);
                check_qualified_name(e, gs(pat, "type"), &child(&pp, "type"));
                let status = gs(pat, "status");
                if status.is_empty() {
                    e.required(
                        child(&pp, "status"),
                        "valid values: [\"False\" \"True\" \"Unknown\"]",
                    );
                } else if !matches!(status, "False" | "True" | "Unknown") {
                    e.not_supported(
                        child(&pp, "status"),
                        st(status),
                        &["False", "True", "Unknown"],
                    );
                }
            }
        }
        if on_exit.is_some() && !on_conditions.is_empty() {
            e.0.push(Cause::new(
                "FieldValueInvalid",
                rp.clone(),
                "Invalid value: specifying both OnExitCodes and OnPodConditions is not supported",
            ));
        }
        if on_exit.is_none() && on_conditions.is_empty() {
            e.0.push(Cause::new(
                "FieldValueInvalid",
                rp.clone(),
                "Invalid value: specifying one of OnExitCodes and OnPodConditions is required",
            ));
        }
    }
}

/// `parseIndexInterval`.
fn parse_index_interval(s: &str, completions: i64) -> Result<(i64, i64), String> {
    let parts: Vec<&str> = s.split('-').collect();
    if parts.len() > 2 {
        return Err(format!(
            "the fragment {} violates the requirement that an index interval can have at most two parts separated by '-'",
            go_quote(s)
        ));
    }
    let parse = |p: &str| -> Result<i64, String> {
        let x: i64 = p.parse().map_err(|_| {
            format!(
                "cannot convert string to integer for index: {}",
                go_quote(p)
            )
        })?;
        if x >= completions {
            return Err(format!("too large index: {}", go_quote(p)));
        }
        Ok(x)
    };
    let x = parse(parts[0])?;
    if let Some(p) = parts.get(1) {
        let y = parse(p)?;
        if x >= y {
            return Err(format!("non-increasing order, previous: {x}, current: {y}"));
        }
        return Ok((x, y));
    }
    Ok((x, x))
}

fn check_success_policy(e: &mut Errs, policy: &Value, completions: i64, path: &str) {
    let rules = ga(policy, "rules");
    let rules_path = child(path, "rules");
    if rules.is_empty() {
        e.required(
            &rules_path,
            "at least one rules must be specified when the successPolicy is specified",
        );
    }
    if rules.len() > 20 {
        e.too_many(&rules_path, rules.len(), 20);
    }
    for (i, rule) in rules.iter().enumerate() {
        let rp = index(&rules_path, i);
        let count = gi(rule, "succeededCount");
        let indexes = rule.get("succeededIndexes").and_then(Value::as_str);
        if count.is_none() && indexes.is_none() {
            e.required(
                &rp,
                "at least one of succeededCount or succeededIndexes must be specified",
            );
        }
        let mut total = 0;
        if let Some(ix) = indexes {
            let ip = child(&rp, "succeededIndexes");
            if ix.len() > 64 * 1024 {
                e.too_long(&ip, 64 * 1024);
            }
            let mut last: Option<i64> = None;
            let mut err = None;
            if !ix.is_empty() {
                for interval in ix.split(',') {
                    match parse_index_interval(interval, completions) {
                        Ok((x, y)) => {
                            if let Some(l) = last.filter(|l| *l >= x) {
                                err = Some(format!(
                                    "non-increasing order, previous: {l}, current: {x}"
                                ));
                                break;
                            }
                            total += y - x + 1;
                            last = Some(y);
                        }
                        Err(msg) => {
                            err = Some(msg);
                            break;
                        }
                    }
                }
            }
            if let Some(msg) = err {
                total = 0;
                e.invalid(
                    &ip,
                    st(ix),
                    &format!("error parsing succeededIndexes: {msg}"),
                );
            }
        }
        if let Some(c) = count {
            let cp = child(&rp, "succeededCount");
            e.nonnegative(&cp, Some(c));
            if c > completions {
                e.invalid(
                    &cp,
                    Value::from(c),
                    &format!(
                        "must be less than or equal to {completions} (the number of specified completions)"
                    ),
                );
            }
            if indexes.is_some() && c > total {
                e.invalid(
                    &cp,
                    Value::from(c),
                    &format!(
                        "must be less than or equal to {total} (the number of indexes in the specified succeededIndexes field)"
                    ),
                );
            }
        }
    }
}

fn cron_job(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let old_spec = old.and_then(|o| o.get("spec"));
    let schedule = gs(spec, "schedule");
    if schedule.is_empty() {
        e.required("spec.schedule", "");
    } else {
        if let Err(msg) = parse_cron(schedule) {
            e.invalid("spec.schedule", st(schedule), &msg);
        }
        let allow_tz = old_spec.is_some_and(|o| gs(o, "schedule").contains("TZ"));
        let tz = spec.get("timeZone").and_then(Value::as_str);
        if allow_tz && schedule.contains("TZ") && tz.is_some() {
            e.invalid(
                "spec.schedule",
                st(schedule),
                "cannot use both timeZone field and TZ or CRON_TZ in schedule",
            );
        } else if !allow_tz && schedule.contains("TZ") {
            e.invalid(
                "spec.schedule",
                st(schedule),
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            );
        }
    }
    e.nonnegative(
        "spec.startingDeadlineSeconds",
        gi(spec, "startingDeadlineSeconds"),
    );
    if old_spec.is_none_or(|o| o.get("timeZone") != spec.get("timeZone")) {
        if let Some(tz) = spec.get("timeZone").and_then(Value::as_str) {
            check_time_zone(e, tz, "spec.timeZone");
        }
    }
    match gs(spec, "concurrencyPolicy") {
        "Allow" | "Forbid" | "Replace" => {}
        "" => e.required("spec.concurrencyPolicy", ""),
        other => e.not_supported(
            "spec.concurrencyPolicy",
            st(other),
            &["Allow", "Forbid", "Replace"],
        ),
    }
    let jt = spec.get("jobTemplate").unwrap_or(&Value::Null);
    let jspec = jt.get("spec").unwrap_or(&Value::Null);
    job_spec_body(e, jspec, "spec.jobTemplate.spec");
    if let Some(sel) = get(jspec, "selector") {
        e.invalid(
            "spec.jobTemplate.spec.selector",
            selector_value(sel),
            "`selector` will be auto-generated",
        );
    }
    if gb(jspec, "manualSelector") {
        e.not_supported(
            "spec.jobTemplate.spec.manualSelector",
            Value::Bool(true),
            &["nil", "false"],
        );
    }
    e.nonnegative(
        "spec.successfulJobsHistoryLimit",
        gi(spec, "successfulJobsHistoryLimit"),
    );
    e.nonnegative(
        "spec.failedJobsHistoryLimit",
        gi(spec, "failedJobsHistoryLimit"),
    );
    if old.is_none() {
        let name = meta::meta_str(obj, "name").unwrap_or("");
        if name.len() > 52 {
            e.invalid(
                "metadata.name",
                st(name),
                "must be no more than 52 characters",
            );
        }
    }
}

fn check_time_zone(e: &mut Errs, tz: &str, path: &str) {
    if tz.is_empty() {
        e.invalid(path, st(tz), "timeZone must be nil or non-empty string");
        return;
    }
    for part in tz.split('/') {
        let ok = (1..=14).contains(&part.len())
            && part
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b".-_+".contains(&c));
        if part == "." || part == ".." || part.starts_with('-') || !ok {
            e.invalid(path, st(tz), &format!("unknown time zone {tz}"));
            return;
        }
    }
    if tz.eq_ignore_ascii_case("Local") {
        e.invalid(
            path,
            st(tz),
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        );
    }
    let zoneinfo = std::path::Path::new("/usr/share/zoneinfo");
    if tz != "UTC" && zoneinfo.is_dir() && !zoneinfo.join(tz).is_file() {
        e.invalid(path, st(tz), &format!("unknown time zone {tz}"));
    }
}

/// `cron.ParseStandard` (robfig/cron v3): five fields or a descriptor, with an optional
/// `TZ=`/`CRON_TZ=` prefix. The error is robfig's message.
fn parse_cron(spec: &str) -> Result<(), String> {
    if spec.is_empty() {
        return Err("empty spec string".to_string());
    }
    let mut spec = spec.to_string();
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        let (Some(space), Some(eq)) = (spec.find(' '), spec.find('=')) else {
            return Err("provided bad location".to_string());
        };
        let loc = &spec[eq + 1..space];
        let zoneinfo = std::path::Path::new("/usr/share/zoneinfo");
        if loc.is_empty()
            || (loc != "UTC"
                && loc != "Local"
                && zoneinfo.is_dir()
                && !zoneinfo.join(loc).is_file())
        {
            return Err(format!(
                "provided bad location {loc}: unknown time zone {loc}"
            ));
        }
        spec = spec[space..].trim().to_string();
    }
    if spec.starts_with('@') {
        return match spec.as_str() {
            "@yearly" | "@annually" | "@monthly" | "@weekly" | "@daily" | "@midnight"
            | "@hourly" => Ok(()),
            s => match s.strip_prefix("@every ") {
                Some(d) => parse_go_duration(d)
                    .map(|_| ())
                    .map_err(|err| format!("failed to parse duration {s}: {err}")),
                None => Err(format!("unrecognized descriptor: {s}")),
            },
        };
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    const MONTHS: &[&str] = &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    let bounds: [(u64, u64, &[&str], u64); 5] = [
        (0, 59, &[], 0),
        (0, 23, &[], 0),
        (1, 31, &[], 0),
        (1, 12, MONTHS, 1),
        (0, 6, DAYS, 0),
    ];
    for (field, (min, max, names, base)) in fields.iter().zip(bounds) {
        for expr in field.split(',').filter(|s| !s.is_empty()) {
            cron_range(expr, min, max, names, base)?;
        }
    }
    Ok(())
}

fn cron_range(expr: &str, min: u64, max: u64, names: &[&str], base: u64) -> Result<(), String> {
    let parse_int = |s: &str| -> Result<u64, String> {
        let n: i64 = s.parse().map_err(|_| {
            format!(
                "failed to parse int from {s}: strconv.Atoi: parsing {}: invalid syntax",
                go_quote(s)
            )
        })?;
        if n < 0 {
            return Err(format!("negative number ({n}) not allowed: {s}"));
        }
        Ok(n.unsigned_abs())
    };
    let int_or_name = |s: &str| -> Result<u64, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            return Ok(i as u64 + base);
        }
        parse_int(s)
    };
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_high: Vec<&str> = range_and_step[0].split('-').collect();
    let single = low_high.len() == 1;
    let (start, mut end);
    if low_high[0] == "*" || low_high[0] == "?" {
        start = min;
        end = max;
    } else {
        start = int_or_name(low_high[0])?;
        end = match low_high.len() {
            1 => start,
            2 => int_or_name(low_high[1])?,
            _ => return Err(format!("too many hyphens: {expr}")),
        };
    }
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let s = parse_int(range_and_step[1])?;
            if single {
                end = max;
            }
            s
        }
        _ => return Err(format!("too many slashes: {expr}")),
    };
    if start < min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({min}): {expr}"
        ));
    }
    if end > max {
        return Err(format!(
            "end of range ({end}) above maximum ({max}): {expr}"
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    Ok(())
}

/// Go's `time.ParseDuration`, for `@every`.
fn parse_go_duration(s: &str) -> Result<f64, String> {
    let err = || format!("time: invalid duration {}", go_quote(s));
    let mut rest = s.strip_prefix(['+', '-']).unwrap_or(s);
    if rest == "0" {
        return Ok(0.0);
    }
    if rest.is_empty() {
        return Err(err());
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num: f64 = rest[..num_len].parse().map_err(|_| err())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(format!("time: missing unit in duration {}", go_quote(s))),
            u => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    go_quote(u),
                    go_quote(s)
                ))
            }
        };
        total += num * scale;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

// =============================================================================================
// networking, policy, rbac, scheduling, storage, coordination
// =============================================================================================

fn ingress_backend(e: &mut Errs, backend: &Value, path: &str) {
    let resource = get(backend, "resource");
    let service = get(backend, "service");
    match (resource, service) {
        (Some(_), Some(_)) => e.invalid(
            path,
            st(""),
            "cannot set both resource and service backends",
        ),
        (Some(r), None) => {
            let rp = child(path, "resource");
            if gs(r, "name").is_empty() {
                e.required(child(&rp, "name"), "");
            }
            if gs(r, "kind").is_empty() {
                e.required(child(&rp, "kind"), "");
            }
            let group = r.get("apiGroup").and_then(Value::as_str);
            match group {
                None | Some("") => {
                    e.invalid(
                        child(&rp, "apiGroup"),
                        st(group.unwrap_or("")),
                        "is required",
                    );
                }
                Some(g) => check_dns1123_subdomain(e, g, &child(&rp, "apiGroup")),
            }
        }
        (None, Some(svc)) => {
            let np = child(&child(path, "service"), "name");
            let name = gs(svc, "name");
            if name.is_empty() {
                e.required(&np, "");
            } else {
                for msg in dns1035_label_errors(name) {
                    e.invalid(&np, st(name), &msg);
                }
            }
            let port = svc.get("port").unwrap_or(&Value::Null);
            let pname = gs(port, "name");
            let pnum = gi(port, "number").unwrap_or(0);
            let pp = child(&child(path, "service"), "port");
            if !pname.is_empty() && pnum != 0 {
                e.invalid(path, st(""), "cannot set both port name & port number");
            } else if !pname.is_empty() {
                for msg in valid_port_name_errors(pname) {
                    e.invalid(child(&pp, "name"), st(pname), &msg);
                }
            } else if pnum != 0 {
                if !valid_port_num(pnum) {
                    e.invalid(
                        child(&pp, "number"),
                        Value::from(pnum),
                        &inclusive_range(1, 65535),
                    );
                }
            } else {
                e.required(path, "port name or number is required");
            }
        }
        (None, None) => e.invalid(path, st(""), "resource or service backend is required"),
    }
}

fn ingress(e: &mut Errs, obj: &Value) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let rules = ga(spec, "rules");
    let default_backend = get(spec, "defaultBackend");
    if rules.is_empty() && default_backend.is_none() {
        e.invalid(
            "spec",
            Value::Array(rules.to_vec()),
            "either `defaultBackend` or `rules` must be specified",
        );
    }
    if let Some(b) = default_backend {
        ingress_backend(e, b, "spec.defaultBackend");
    }
    for (i, rule) in rules.iter().enumerate() {
        let rp = index("spec.rules", i);
        let host = gs(rule, "host");
        if !host.is_empty() {
            if parse_ip(host).is_some() {
                e.invalid(
                    child(&rp, "host"),
                    st(host),
                    "must be a DNS name, not an IP address",
                );
            }
            if host.contains('*') {
                let ok = host
                    .strip_prefix("*.")
                    .is_some_and(|h| host.len() <= 253 && subdomain_re(h));
                if host.len() > 253 {
                    e.invalid(child(&rp, "host"), st(host), &max_len_error(253));
                }
                if !ok {
                    e.invalid(child(&rp, "host"), st(host), "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is '\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')");
                }
            } else {
                check_dns1123_subdomain(e, host, &child(&rp, "host"));
            }
        }
        let Some(http) = get(rule, "http") else {
            continue;
        };
        let hp = child(&rp, "http");
        let paths = ga(http, "paths");
        if paths.is_empty() {
            e.required(child(&hp, "paths"), "");
        }
        for (j, p) in paths.iter().enumerate() {
            let pp = index(&child(&hp, "paths"), j);
            let path_value = gs(p, "path");
            let Some(pt) = p.get("pathType").and_then(Value::as_str) else {
                e.required(child(&pp, "pathType"), "pathType must be specified");
                continue;
            };
            match pt {
                "Exact" | "Prefix" => {
                    if !path_value.starts_with('/') {
                        e.invalid(
                            child(&pp, "path"),
                            st(path_value),
                            "must be an absolute path",
                        );
                    }
                    if !path_value.is_empty() {
                        for seq in ["//", "/./", "/../", "%2f", "%2F"] {
                            if path_value.contains(seq) {
                                e.invalid(
                                    child(&pp, "path"),
                                    st(path_value),
                                    &format!("must not contain '{seq}'"),
                                );
                            }
                        }
                        for suffix in ["/..", "/."] {
                            if path_value.ends_with(suffix) {
                                e.invalid(
                                    child(&pp, "path"),
                                    st(path_value),
                                    &format!("cannot end with '{suffix}'"),
                                );
                            }
                        }
                    }
                }
                "ImplementationSpecific" => {
                    if !path_value.is_empty() && !path_value.starts_with('/') {
                        e.invalid(
                            child(&pp, "path"),
                            st(path_value),
                            "must be an absolute path",
                        );
                    }
                }
                other => e.not_supported(
                    child(&pp, "pathType"),
                    st(other),
                    &["Exact", "ImplementationSpecific", "Prefix"],
                ),
            }
            ingress_backend(
                e,
                p.get("backend").unwrap_or(&Value::Null),
                &child(&pp, "backend"),
            );
        }
    }
    for (i, tls) in ga(spec, "tls").iter().enumerate() {
        for (j, h) in ga(tls, "hosts").iter().enumerate() {
            let h = h.as_str().unwrap_or("");
            let p = index(&child(&index("spec.tls", i), "hosts"), j);
            if h.contains('*') {
                if !h.strip_prefix("*.").is_some_and(subdomain_re) {
                    e.invalid(&p, st(h), "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is '\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')");
                }
            } else {
                check_dns1123_subdomain(e, h, &p);
            }
        }
        if let Some(sn) = tls.get("secretName").and_then(Value::as_str) {
            if !sn.is_empty() {
                check_dns1123_subdomain(e, sn, &child(&index("spec.tls", i), "secretName"));
            }
        }
    }
    if let Some(class) = spec.get("ingressClassName").and_then(Value::as_str) {
        check_dns1123_subdomain(e, class, "spec.ingressClassName");
    }
}

fn pdb(e: &mut Errs, obj: &Value) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let min = get(spec, "minAvailable");
    let max = get(spec, "maxUnavailable");
    if min.is_some() && max.is_some() {
        e.invalid(
            "spec",
            go_value(spec),
            "minAvailable and maxUnavailable cannot be both set",
        );
    }
    for (field, v) in [("minAvailable", min), ("maxUnavailable", max)] {
        if let Some(v) = v {
            let p = child("spec", field);
            check_positive_int_or_percent(e, Some(v), &p);
            check_not_more_than_100(e, Some(v), &p);
        }
    }
    check_label_selector(e, spec.get("selector"), "spec.selector");
    if let Some(p) = spec
        .get("unhealthyPodEvictionPolicy")
        .and_then(Value::as_str)
    {
        if p != "AlwaysAllow" && p != "IfHealthyBudget" {
            e.not_supported(
                "spec.unhealthyPodEvictionPolicy",
                st(p),
                &["AlwaysAllow", "IfHealthyBudget"],
            );
        }
    }
}

fn role(e: &mut Errs, obj: &Value, namespaced: bool) {
    for (i, rule) in ga(obj, "rules").iter().enumerate() {
        let p = index("rules", i);
        if ga(rule, "verbs").is_empty() {
            e.required(child(&p, "verbs"), "verbs must contain at least one value");
        }
        let urls = ga(rule, "nonResourceURLs");
        if !urls.is_empty() {
            if namespaced {
                e.invalid(
                    child(&p, "nonResourceURLs"),
                    Value::Array(urls.to_vec()),
                    "namespaced rules cannot apply to non-resource URLs",
                );
            }
            if !ga(rule, "apiGroups").is_empty()
                || !ga(rule, "resources").is_empty()
                || !ga(rule, "resourceNames").is_empty()
            {
                e.invalid(
                    child(&p, "nonResourceURLs"),
                    Value::Array(urls.to_vec()),
                    "rules cannot apply to both regular resources and non-resource URLs",
                );
            }
            continue;
        }
        if ga(rule, "apiGroups").is_empty() {
            e.required(
                child(&p, "apiGroups"),
                "resource rules must supply at least one api group",
            );
        }
        if ga(rule, "resources").is_empty() {
            e.required(
                child(&p, "resources"),
                "resource rules must supply at least one resource",
            );
        }
    }
    if namespaced {
        return;
    }
    if let Some(agg) = get(obj, "aggregationRule") {
        let selectors = ga(agg, "clusterRoleSelectors");
        if selectors.is_empty() {
            e.required(
                "aggregationRule.clusterRoleSelectors",
                "at least one clusterRoleSelector required if aggregationRule is non-nil",
            );
        }
        for (i, s) in selectors.iter().enumerate() {
            let p = index("aggregationRule.clusterRoleSelectors", i);
            check_label_selector(e, Some(s), &p);
            if as_selector(Some(s)).is_none() {
                e.invalid(&p, selector_value(s), "invalid label selector.");
            }
        }
    }
}

fn rbac_name_errors(name: &str) -> Vec<String> {
    meta::validate_name(name, meta::NameRule::PathSegment)
}

fn role_binding(e: &mut Errs, obj: &Value, old: Option<&Value>, namespaced: bool) {
    let rr = obj.get("roleRef").unwrap_or(&Value::Null);
    let group = gs(rr, "apiGroup");
    if group != "rbac.authorization.k8s.io" {
        e.not_supported(
            "roleRef.apiGroup",
            st(group),
            &["rbac.authorization.k8s.io"],
        );
    }
    let kind = gs(rr, "kind");
    let allowed: &[&str] = if namespaced {
        &["Role", "ClusterRole"]
    } else {
        &["ClusterRole"]
    };
    if !allowed.contains(&kind) {
        e.not_supported("roleRef.kind", st(kind), allowed);
    }
    let name = gs(rr, "name");
    if name.is_empty() {
        e.required("roleRef.name", "");
    } else {
        for msg in rbac_name_errors(name) {
            e.invalid("roleRef.name", st(name), &msg);
        }
    }
    for (i, s) in ga(obj, "subjects").iter().enumerate() {
        let p = index("subjects", i);
        let sname = gs(s, "name");
        if sname.is_empty() {
            e.required(child(&p, "name"), "");
        }
        let sgroup = gs(s, "apiGroup");
        match gs(s, "kind") {
            "ServiceAccount" => {
                if !sname.is_empty() {
                    for msg in dns1123_subdomain_errors(sname) {
                        e.invalid(child(&p, "name"), st(sname), &msg);
                    }
                }
                if !sgroup.is_empty() {
                    e.not_supported(child(&p, "apiGroup"), st(sgroup), &[""]);
                }
                if !namespaced && gs(s, "namespace").is_empty() {
                    e.required(child(&p, "namespace"), "");
                }
            }
            "User" | "Group" => {
                if sgroup != "rbac.authorization.k8s.io" {
                    e.not_supported(
                        child(&p, "apiGroup"),
                        st(sgroup),
                        &["rbac.authorization.k8s.io"],
                    );
                }
            }
            other => e.not_supported(
                child(&p, "kind"),
                st(other),
                &["ServiceAccount", "User", "Group"],
            ),
        }
    }
    if let Some(old) = old {
        let orr = old.get("roleRef").unwrap_or(&Value::Null);
        let same = ["apiGroup", "kind", "name"]
            .iter()
            .all(|f| gs(rr, f) == gs(orr, f));
        if !same {
            e.invalid(
                "roleRef",
                json!({"APIGroup": group, "Kind": kind, "Name": name}),
                "cannot change roleRef",
            );
        }
    }
}

const HIGHEST_USER_PRIORITY: i64 = 1_000_000_000;

fn priority_class(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    let name = meta::meta_str(obj, "name").unwrap_or("");
    let value = gi(obj, "value").unwrap_or(0);
    let global_default = gb(obj, "globalDefault");
    if name.starts_with("system-") {
        let known = match name {
            "system-node-critical" => Some(2_000_001_000),
            "system-cluster-critical" => Some(2_000_000_000),
            _ => None,
        };
        let err = match known {
            None => Some(format!("{name} is not a known system priority class")),
            Some(v) if v != value => Some(format!("value of {name} PriorityClass must be {v}")),
            Some(_) if global_default => Some(format!(
                "globalDefault of {name} PriorityClass must be false"
            )),
            _ => None,
        };
        if let Some(err) = err {
            e.forbidden(
                "metadata.name",
                &format!(
                    "priority class names with 'system-' prefix are reserved for system use only. error: {err}"
                ),
            );
        }
    } else if value > HIGHEST_USER_PRIORITY {
        e.forbidden(
            "value",
            "maximum allowed value of a user defined priority is 1000000000",
        );
    }
    if let Some(pp) = obj.get("preemptionPolicy").and_then(Value::as_str) {
        check_preemption_policy(e, pp, "preemptionPolicy");
    }
    if let Some(old) = old {
        if gi(old, "value").unwrap_or(0) != value {
            e.forbidden("value", "may not be changed in an update.");
        }
        e.immutable(
            "preemptionPolicy",
            obj.get("preemptionPolicy"),
            old.get("preemptionPolicy"),
        );
    }
}

fn storage_class(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    let provisioner = gs(obj, "provisioner");
    if provisioner.is_empty() {
        e.required("provisioner", "");
    } else {
        for msg in selectors::label_key_errors(&provisioner.to_lowercase()) {
            e.invalid("provisioner", st(provisioner), &msg);
        }
    }
    if let Some(params) = gm(obj, "parameters") {
        if params.len() > 512 {
            e.too_long("parameters", 512);
        } else {
            let mut total = 0;
            for (k, v) in params {
                if k.is_empty() {
                    e.invalid("parameters", st(k), "field can not be empty.");
                }
                total += k.len() + v.as_str().map_or(0, str::len);
            }
            if total > 256 * 1024 {
                e.too_long("parameters", 256 * 1024);
            }
        }
    }
    if let Some(rp) = obj.get("reclaimPolicy").and_then(Value::as_str) {
        if !rp.is_empty() && rp != "Delete" && rp != "Retain" {
            e.not_supported("reclaimPolicy", st(rp), &["Delete", "Retain"]);
        }
    }
    match obj.get("volumeBindingMode").and_then(Value::as_str) {
        None => e.required("volumeBindingMode", ""),
        Some("Immediate" | "WaitForFirstConsumer") => {}
        Some(other) => e.not_supported(
            "volumeBindingMode",
            st(other),
            &["Immediate", "WaitForFirstConsumer"],
        ),
    }
    for (i, term) in ga(obj, "allowedTopologies").iter().enumerate() {
        let tp = index("allowedTopologies", i);
        let mut keys = BTreeSet::new();
        for (j, rq) in ga(term, "matchLabelExpressions").iter().enumerate() {
            let rp = index(&child(&tp, "matchLabelExpressions"), j);
            let values = ga(rq, "values");
            if values.is_empty() {
                e.required(child(&rp, "values"), "");
            }
            let mut seen = BTreeSet::new();
            for (k, v) in values.iter().enumerate() {
                let v = v.as_str().unwrap_or("");
                if !seen.insert(v) {
                    e.duplicate(index(&child(&rp, "values"), k), st(v));
                }
            }
            let key_name = gs(rq, "key");
            check_qualified_name(e, key_name, &child(&rp, "key"));
            if !keys.insert(key_name) {
                e.duplicate(child(&rp, "key"), st(key_name));
            }
        }
    }
    let Some(old) = old else { return };
    if !semantic_eq(
        obj.get("parameters").unwrap_or(&Value::Null),
        old.get("parameters").unwrap_or(&Value::Null),
    ) {
        e.forbidden("parameters", "updates to parameters are forbidden.");
    }
    if provisioner != gs(old, "provisioner") {
        e.forbidden("provisioner", "updates to provisioner are forbidden.");
    }
    if gs(obj, "reclaimPolicy") != gs(old, "reclaimPolicy") {
        e.forbidden("reclaimPolicy", "updates to reclaimPolicy are forbidden.");
    }
    e.immutable(
        "volumeBindingMode",
        obj.get("volumeBindingMode"),
        old.get("volumeBindingMode"),
    );
}

fn lease(e: &mut Errs, obj: &Value) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    if let Some(d) = gi(spec, "leaseDurationSeconds") {
        if d <= 0 {
            e.invalid(
                "spec.leaseDurationSeconds",
                Value::from(d),
                "must be greater than 0",
            );
        }
    }
    if let Some(t) = gi(spec, "leaseTransitions") {
        if t < 0 {
            e.invalid("spec.leaseTransitions", Value::from(t), IS_NEGATIVE);
        }
    }
    let strategy = spec.get("strategy").and_then(Value::as_str);
    if let Some(s) = strategy.filter(|s| !s.is_empty()) {
        if s != "OldestEmulationVersion" {
            e.not_supported("spec.strategy", st(s), &["OldestEmulationVersion"]);
        }
    }
    if spec
        .get("preferredHolder")
        .and_then(Value::as_str)
        .is_some_and(|h| !h.is_empty())
        && strategy.is_none_or(str::is_empty)
    {
        e.forbidden(
            "spec.preferredHolder",
            "may only be specified if `strategy` is defined",
        );
    }
}

// ---------------------------------------------------------------------------------------------
// autoscaling: HorizontalPodAutoscaler (pkg/apis/autoscaling/validation)

const METRIC_SOURCE_TYPES: &[&str] = &[
    "ContainerResource",
    "External",
    "Object",
    "Pods",
    "Resource",
];

fn hpa(e: &mut Errs, version: &str, obj: &Value) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    if let Some(min) = gi(spec, "minReplicas") {
        if min < 1 {
            e.invalid(
                "spec.minReplicas",
                Value::from(min),
                "must be greater than or equal to 1",
            );
        }
    }
    let max = gi(spec, "maxReplicas").unwrap_or(0);
    if max < 1 {
        e.invalid(
            "spec.maxReplicas",
            Value::from(max),
            "must be greater than 0",
        );
    }
    if gi(spec, "minReplicas").is_some_and(|min| max < min) {
        e.invalid(
            "spec.maxReplicas",
            Value::from(max),
            "must be greater than or equal to `minReplicas`",
        );
    }
    let target = spec.get("scaleTargetRef").unwrap_or(&Value::Null);
    for field in ["kind", "name"] {
        let path = child("spec.scaleTargetRef", field);
        let v = gs(target, field);
        if v.is_empty() {
            e.required(&path, "");
        }
        for msg in path_segment_name_errors(v) {
            e.invalid(&path, st(v), msg);
        }
    }
    if version == "v1" {
        if let Some(t) = gi(spec, "targetCPUUtilizationPercentage").filter(|t| *t < 1) {
            e.invalid(
                "spec.targetCPUUtilizationPercentage",
                Value::from(t),
                "must be greater than 0",
            );
        }
        return;
    }
    for (i, m) in ga(spec, "metrics").iter().enumerate() {
        hpa_metric(e, m, &index("spec.metrics", i));
    }
}

/// `IsValidPathSegmentName`.
fn path_segment_name_errors(name: &str) -> Vec<&'static str> {
    let mut out = Vec::new();
    if name == "." || name == ".." {
        out.push(if name == "." {
            "may not be '.'"
        } else {
            "may not be '..'"
        });
    }
    if name.contains('/') {
        out.push("may not contain '/'");
    }
    if name.contains('%') {
        out.push("may not contain '%'");
    }
    out
}

fn hpa_metric(e: &mut Errs, m: &Value, path: &str) {
    let ty = gs(m, "type");
    let type_path = child(path, "type");
    if ty.is_empty() {
        e.required(&type_path, "must specify a metric source type");
    }
    if !METRIC_SOURCE_TYPES.contains(&ty) {
        e.not_supported(&type_path, st(ty), METRIC_SOURCE_TYPES);
    }
    let sources = [
        ("object", "Object"),
        ("pods", "Pods"),
        ("resource", "Resource"),
        ("external", "External"),
        ("containerResource", "ContainerResource"),
    ];
    let present: Vec<&str> = sources
        .iter()
        .filter(|(f, _)| get(m, f).is_some_and(|v| !v.is_null()))
        .map(|(f, _)| *f)
        .collect();
    if let Some(first) = present.first() {
        hpa_source(
            e,
            m.get(*first).unwrap_or(&Value::Null),
            first,
            &child(path, first),
        );
    }
    match sources.iter().find(|(_, t)| *t == ty) {
        Some((field, _)) => {
            if !present.contains(field) {
                e.required(
                    child(path, field),
                    "must populate information for the given metric source",
                );
            }
            if present.len() != 1 {
                for other in present.iter().filter(|p| *p != field) {
                    e.forbidden(
                        child(path, other),
                        "must populate the given metric source only",
                    );
                }
            }
        }
        None => {
            e.not_supported(&type_path, st(ty), METRIC_SOURCE_TYPES);
            if present.len() > 1 {
                for other in &present {
                    e.forbidden(
                        child(path, other),
                        "must populate the given metric source only",
                    );
                }
            }
        }
    }
}

fn hpa_source(e: &mut Errs, src: &Value, kind: &str, path: &str) {
    let target = src.get("target").unwrap_or(&Value::Null);
    let target_path = child(path, "target");
    match kind {
        "resource" | "containerResource" => {
            if gs(src, "name").is_empty() {
                e.required(child(path, "name"), "must specify a resource name");
            }
            if kind == "containerResource" && gs(src, "container").is_empty() {
                e.required(child(path, "container"), "must specify a container");
            }
            hpa_target(e, target, &target_path);
            let (util, avg) = (
                get(target, "averageUtilization"),
                get(target, "averageValue"),
            );
            if util.is_none() && avg.is_none() {
                e.required(
                    child(&target_path, "averageUtilization"),
                    "must set either a target raw value or a target utilization",
                );
            }
            if util.is_some() && avg.is_some() {
                e.forbidden(
                    child(&target_path, "averageValue"),
                    "may not set both a target raw value and a target utilization",
                );
            }
        }
        _ => {
            let metric = src.get("metric").unwrap_or(&Value::Null);
            if gs(metric, "name").is_empty() {
                e.required(
                    child(&child(path, "metric"), "name"),
                    "must specify a metric name",
                );
            }
            hpa_target(e, target, &target_path);
            if get(target, "value").is_none() && get(target, "averageValue").is_none() {
                e.required(
                    child(
                        &target_path,
                        if kind == "pods" {
                            "averageValue"
                        } else {
                            "value"
                        },
                    ),
                    if kind == "pods" {
                        "must specify a positive target averageValue"
                    } else {
                        "must set either a target value or averageValue"
                    },
                );
            }
        }
    }
}

/// `validateMetricTarget`.
fn hpa_target(e: &mut Errs, t: &Value, path: &str) {
    let ty = gs(t, "type");
    if ty.is_empty() {
        e.required(child(path, "type"), "must specify a metric target type");
    }
    if !matches!(ty, "Utilization" | "Value" | "AverageValue") {
        e.invalid(
            child(path, "type"),
            st(ty),
            "must be either Utilization, Value, or AverageValue",
        );
    }
    for field in ["value", "averageValue"] {
        if let Some(v) = t.get(field) {
            if quantity_of(v).is_none_or(|q| q.canonical().starts_with('-') || q.canonical() == "0")
            {
                e.invalid(child(path, field), v.clone(), "must be positive");
            }
        }
    }
    if let Some(u) = gi(t, "averageUtilization").filter(|u| *u < 1) {
        e.invalid(
            child(path, "averageUtilization"),
            Value::from(u),
            "must be greater than 0",
        );
    }
}

// ---------------------------------------------------------------------------------------------
// networking: NetworkPolicy, IngressClass (pkg/apis/networking/validation)

fn network_policy(e: &mut Errs, obj: &Value) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    check_label_selector(e, spec.get("podSelector"), "spec.podSelector");
    for (dir, peers) in [("ingress", "from"), ("egress", "to")] {
        for (i, rule) in ga(spec, dir).iter().enumerate() {
            let rule_path = index(&child("spec", dir), i);
            for (j, port) in ga(rule, "ports").iter().enumerate() {
                network_policy_port(e, port, &index(&child(&rule_path, "ports"), j));
            }
            for (j, peer) in ga(rule, peers).iter().enumerate() {
                network_policy_peer(e, peer, &index(&child(&rule_path, peers), j));
            }
        }
    }
    let types = ga(spec, "policyTypes");
    if types.len() > 2 {
        e.invalid(
            "spec.policyTypes",
            Value::Array(types.to_vec()),
            "may not specify more than two policyTypes",
        );
        return;
    }
    for (i, t) in types.iter().enumerate() {
        let t = t.as_str().unwrap_or("");
        if !matches!(t, "Ingress" | "Egress") {
            e.not_supported(index("spec.policyTypes", i), st(t), &["Ingress", "Egress"]);
        }
    }
}

fn network_policy_port(e: &mut Errs, port: &Value, path: &str) {
    if let Some(p) = port.get("protocol").and_then(Value::as_str) {
        check_protocol(e, p, &child(path, "protocol"));
    }
    let end = gi(port, "endPort");
    match port.get("port") {
        Some(Value::String(name)) => {
            if let Some(end) = end {
                e.invalid(
                    child(path, "endPort"),
                    Value::from(end),
                    "may not be specified when `port` is non-numeric",
                );
            }
            for msg in valid_port_name_errors(name) {
                e.invalid(child(path, "port"), st(name), &msg);
            }
        }
        Some(p) if !p.is_null() => {
            let n = p.as_i64().unwrap_or(0);
            if !valid_port_num(n) {
                e.invalid(
                    child(path, "port"),
                    Value::from(n),
                    &inclusive_range(1, 65535),
                );
            }
            if let Some(end) = end {
                if end < n {
                    e.invalid(
                        child(path, "endPort"),
                        Value::from(n),
                        "must be greater than or equal to `port`",
                    );
                }
                if !valid_port_num(end) {
                    e.invalid(
                        child(path, "endPort"),
                        Value::from(end),
                        &inclusive_range(1, 65535),
                    );
                }
            }
        }
        _ => {
            if let Some(end) = end {
                e.invalid(
                    child(path, "endPort"),
                    Value::from(end),
                    "may not be specified when `port` is not specified",
                );
            }
        }
    }
}

fn network_policy_peer(e: &mut Errs, peer: &Value, path: &str) {
    let mut peers = 0;
    for sel in ["podSelector", "namespaceSelector"] {
        if let Some(s) = peer.get(sel).filter(|s| !s.is_null()) {
            peers += 1;
            check_label_selector(e, Some(s), &child(path, sel));
        }
    }
    let block = peer.get("ipBlock").filter(|b| !b.is_null());
    if let Some(b) = block {
        peers += 1;
        let cidr = gs(b, "cidr");
        let bp = child(path, "ipBlock");
        if cidr.is_empty() {
            e.required(child(&bp, "cidr"), "");
        } else {
            check_cidr(e, cidr, &child(&bp, "cidr"));
            let outer = parse_cidr(cidr);
            for (i, except) in ga(b, "except").iter().enumerate() {
                let except = except.as_str().unwrap_or("");
                let ep = index(&child(&bp, "except"), i);
                let before = e.0.len();
                check_cidr(e, except, &ep);
                if e.0.len() > before {
                    continue;
                }
                if let (Some((net, bits)), Some((inner, inner_bits))) = (outer, parse_cidr(except))
                {
                    if inner_bits <= bits || !same_prefix(net, inner, bits) {
                        e.invalid(&ep, st(except), "must be a strict subset of `cidr`");
                    }
                }
            }
        }
    }
    if peers == 0 {
        e.required(path, "must specify a peer");
    } else if peers > 1 && block.is_some() {
        e.forbidden(path, "may not specify both ipBlock and another peer");
    }
}

/// Whether `a` and `b` share their first `bits` bits.
fn same_prefix(a: std::net::IpAddr, b: std::net::IpAddr, bits: u8) -> bool {
    let (a, b, len) = match (a, b) {
        (std::net::IpAddr::V4(a), std::net::IpAddr::V4(b)) => {
            (u128::from(u32::from(a)), u128::from(u32::from(b)), 32u32)
        }
        (std::net::IpAddr::V6(a), std::net::IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        _ => return false,
    };
    let shift = len.saturating_sub(u32::from(bits));
    if shift >= 128 {
        return true;
    }
    (a >> shift) == (b >> shift)
}

fn ingress_class(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let controller = gs(spec, "controller");
    if controller.len() > 250 {
        e.too_long("spec.controller", 250);
    }
    check_domain_prefixed_path(e, controller, "spec.controller");
    if let Some(p) = spec.get("parameters").filter(|p| !p.is_null()) {
        let pp = "spec.parameters";
        if gs(p, "kind").is_empty() {
            e.required(child(pp, "kind"), "");
        }
        if gs(p, "name").is_empty() {
            e.required(child(pp, "name"), "");
        }
        let scope = gs(p, "scope");
        let ns = p.get("namespace").and_then(Value::as_str);
        match scope {
            "Namespace" if ns.is_none_or(str::is_empty) => e.required(
                child(pp, "namespace"),
                "`parameters.scope` is set to 'Namespace'",
            ),
            "Cluster" if ns.is_some() => e.forbidden(
                child(pp, "namespace"),
                "`parameters.scope` is set to 'Cluster'",
            ),
            "" | "Namespace" | "Cluster" => {}
            other => e.not_supported(child(pp, "scope"), st(other), &["Cluster", "Namespace"]),
        }
    }
    if let Some(old) = old {
        let old_controller = old.get("spec").and_then(|s| s.get("controller"));
        e.immutable("spec.controller", spec.get("controller"), old_controller);
    }
}

// ---------------------------------------------------------------------------------------------
// discovery: EndpointSlice (pkg/apis/discovery/validation)

fn endpoint_slice(e: &mut Errs, obj: &Value) {
    let address_type = gs(obj, "addressType");
    const TYPES: &[&str] = &["FQDN", "IPv4", "IPv6"];
    if address_type.is_empty() {
        e.required("addressType", "");
    } else if !TYPES.contains(&address_type) {
        e.not_supported("addressType", st(address_type), TYPES);
    }
    let endpoints = ga(obj, "endpoints");
    if endpoints.len() > 1000 {
        e.too_many("endpoints", endpoints.len(), 1000);
    }
    for (i, ep) in endpoints.iter().enumerate() {
        let ip = index("endpoints", i);
        let ap = child(&ip, "addresses");
        let addresses = ga(ep, "addresses");
        if addresses.is_empty() {
            e.required(&ap, "must contain at least 1 address");
        } else if addresses.len() > 100 {
            e.too_many(&ap, addresses.len(), 100);
        }
        for (j, a) in addresses.iter().enumerate() {
            let a = a.as_str().unwrap_or("");
            let path = index(&ap, j);
            match address_type {
                "IPv4" if a.parse::<std::net::Ipv4Addr>().is_err() => {
                    e.invalid(&path, st(a), "must be a valid IPv4 address")
                }
                "IPv6" if a.parse::<std::net::Ipv6Addr>().is_err() => {
                    e.invalid(&path, st(a), "must be a valid IPv6 address")
                }
                "FQDN" => {
                    for msg in dns1123_subdomain_errors(a) {
                        e.invalid(&path, st(a), &msg);
                    }
                }
                _ => {}
            }
        }
        if let Some(n) = ep.get("nodeName").and_then(Value::as_str) {
            for msg in subdomain_name_errors(n, false) {
                e.invalid(child(&ip, "nodeName"), st(n), &msg);
            }
        }
        if let Some(h) = ep.get("hostname").and_then(Value::as_str) {
            check_dns1123_label(e, h, &child(&ip, "hostname"));
        }
    }
    let ports = ga(obj, "ports");
    if ports.len() > 100 {
        e.too_many("ports", ports.len(), 100);
    }
    let mut names: Vec<&str> = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        let pp = index("ports", i);
        let name = gs(p, "name");
        if !name.is_empty() {
            check_dns1123_label(e, name, &child(&pp, "name"));
        }
        if names.contains(&name) {
            e.duplicate(child(&pp, "name"), st(name));
        } else {
            names.push(name);
        }
        match p.get("protocol").and_then(Value::as_str) {
            None => e.required(child(&pp, "protocol"), ""),
            Some(proto) => check_protocol(e, proto, &child(&pp, "protocol")),
        }
        if let Some(ap) = p.get("appProtocol").and_then(Value::as_str) {
            check_qualified_name(e, ap, &child(&pp, "appProtocol"));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// core: PersistentVolume (ValidatePersistentVolumeSpec, the basics)

const PV_SOURCES: &[&str] = &[
    "awsElasticBlockStore",
    "azureDisk",
    "azureFile",
    "cephfs",
    "cinder",
    "csi",
    "fc",
    "flexVolume",
    "flocker",
    "gcePersistentDisk",
    "glusterfs",
    "hostPath",
    "iscsi",
    "local",
    "nfs",
    "photonPersistentDisk",
    "portworxVolume",
    "quobyte",
    "rbd",
    "scaleIO",
    "storageos",
    "vsphereVolume",
];

fn persistent_volume(e: &mut Errs, obj: &Value) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let modes = ga(spec, "accessModes");
    if modes.is_empty() {
        e.required("spec.accessModes", "");
    }
    for m in modes {
        let m = m.as_str().unwrap_or("");
        if !ACCESS_MODES.contains(&m) {
            e.not_supported("spec.accessModes", st(m), ACCESS_MODES);
        }
    }
    let capacity = gm(spec, "capacity");
    if capacity.is_none_or(Map::is_empty) {
        e.required("spec.capacity", "");
    }
    for (name, q) in capacity.into_iter().flatten() {
        if name != "storage" {
            e.not_supported("spec.capacity", st(name), &["storage"]);
            continue;
        }
        let path = key("spec.capacity", name);
        match quantity_of(q) {
            Some(q) if q.canonical().starts_with('-') || q.canonical() == "0" => e.invalid(
                &path,
                Value::String(q.canonical()),
                "must be greater than zero",
            ),
            _ => {}
        }
    }
    let policy = gs(spec, "persistentVolumeReclaimPolicy");
    if !policy.is_empty() && !matches!(policy, "Delete" | "Recycle" | "Retain") {
        e.not_supported(
            "spec.persistentVolumeReclaimPolicy",
            st(policy),
            &["Delete", "Recycle", "Retain"],
        );
    }
    let sources: Vec<&str> = PV_SOURCES
        .iter()
        .copied()
        .filter(|s| get(spec, s).is_some_and(|v| !v.is_null()))
        .collect();
    match sources.as_slice() {
        [] => e.required("spec", "must specify a volume type"),
        [_] => {}
        [_, rest @ ..] => {
            for s in rest {
                e.forbidden(child("spec", s), "may not specify more than 1 volume type");
            }
        }
    }
    if let Some(mode) = spec.get("volumeMode").and_then(Value::as_str) {
        if !matches!(mode, "Block" | "Filesystem") {
            e.not_supported("spec.volumeMode", st(mode), &["Block", "Filesystem"]);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// apiextensions: CustomResourceDefinition (the invariants meso's registration relies on)

fn crd(e: &mut Errs, obj: &Value) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let names = spec.get("names").unwrap_or(&Value::Null);
    let group = gs(spec, "group");
    let plural = gs(names, "plural");
    let name = meta::meta_str(obj, "name").unwrap_or("");
    if name != format!("{plural}.{group}") {
        e.invalid(
            "metadata.name",
            st(name),
            "must be spec.names.plural+\".\"+spec.group",
        );
    }
    if group.is_empty() {
        e.required("spec.group", "");
    } else {
        let errs = dns1123_subdomain_errors(group);
        if !errs.is_empty() {
            e.invalid("spec.group", st(group), &errs.join(","));
        } else if !group.contains('.') {
            e.invalid(
                "spec.group",
                st(group),
                "should be a domain with at least one dot",
            );
        }
    }
    match gs(spec, "scope") {
        "" => e.required("spec.scope", ""),
        "Cluster" | "Namespaced" => {}
        other => e.not_supported("spec.scope", st(other), &["Cluster", "Namespaced"]),
    }

    let versions = ga(spec, "versions");
    let mut seen: Vec<&str> = Vec::new();
    let (mut unique, mut storage) = (true, 0);
    for (i, v) in versions.iter().enumerate() {
        let vp = index("spec.versions", i);
        let vname = gs(v, "name");
        if seen.contains(&vname) {
            unique = false;
        }
        seen.push(vname);
        let errs = dns1035_label_errors(vname);
        if !errs.is_empty() {
            e.invalid(child(&vp, "name"), st(vname), &errs.join(","));
        }
        if gb(v, "storage") {
            storage += 1;
        }
        let schema = v.get("schema").and_then(|s| s.get("openAPIV3Schema"));
        if schema.is_none_or(Value::is_null) {
            e.required(
                child(&child(&vp, "schema"), "openAPIV3Schema"),
                "schemas are required",
            );
        }
    }
    if versions.is_empty() {
        e.required(
            "spec.versions",
            "must have exactly one version marked as storage version",
        );
    } else {
        if !unique {
            e.invalid(
                "spec.versions",
                Value::Array(versions.to_vec()),
                "must contain unique version names",
            );
        }
        if storage != 1 {
            e.invalid(
                "spec.versions",
                Value::Array(versions.to_vec()),
                "must have exactly one version marked as storage version",
            );
        }
    }

    let np = "spec.names";
    for (field, mixed_case) in [
        ("plural", false),
        ("singular", false),
        ("kind", true),
        ("listKind", true),
    ] {
        let v = gs(names, field);
        if v.is_empty() {
            e.required(child(np, field), "");
            continue;
        }
        let errs = dns1035_label_errors(&v.to_lowercase());
        if !errs.is_empty() {
            let joined = errs.join(",");
            let msg = if mixed_case {
                format!("may have mixed case, but should otherwise match: {joined}")
            } else {
                joined
            };
            e.invalid(child(np, field), st(v), &msg);
        }
    }
    for list in ["shortNames", "categories"] {
        for (i, v) in ga(names, list).iter().enumerate() {
            let v = v.as_str().unwrap_or("");
            let errs = dns1035_label_errors(v);
            if !errs.is_empty() {
                e.invalid(index(&child(np, list), i), st(v), &errs.join(","));
            }
        }
    }
    let kind = gs(names, "kind");
    if !kind.is_empty() && kind == gs(names, "listKind") {
        e.invalid(
            child(np, "listKind"),
            st(kind),
            "kind and listKind may not be the same",
        );
    }
}

// =============================================================================================
// LimitRange and ResourceQuota (pkg/apis/core/validation)
// =============================================================================================

/// The resources of one LimitRange item field: name → quantity.
fn quantities(item: &Value, field: &str) -> BTreeMap<String, Quantity> {
    item.get(field)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| quantity_of(v).map(|q| (k.clone(), q)))
                .collect()
        })
        .unwrap_or_default()
}

fn milli_ceil(q: &Quantity) -> i128 {
    let d: i128 = 1_000_000;
    if q.nano >= 0 {
        (q.nano + d - 1) / d
    } else {
        q.nano / d
    }
}

/// `ValidateLimitRange`.
fn limit_range(e: &mut Errs, obj: &Value) {
    let mut types = BTreeSet::new();
    for (i, item) in ga(obj.get("spec").unwrap_or(&Value::Null), "limits")
        .iter()
        .enumerate()
    {
        let path = index("spec.limits", i);
        let kind = gs(item, "type");
        let tpath = child(&path, "type");
        if !matches!(kind, "Pod" | "Container" | "PersistentVolumeClaim") {
            check_qualified_name(e, kind, &tpath);
        }
        if !types.insert(kind.to_string()) {
            e.duplicate(tpath, st(kind));
        }
        let max = quantities(item, "max");
        let min = quantities(item, "min");
        let default = quantities(item, "default");
        let default_request = quantities(item, "defaultRequest");
        let ratio = quantities(item, "maxLimitRequestRatio");
        let mut keys: BTreeSet<&String> = max
            .keys()
            .chain(min.keys())
            .chain(default.keys())
            .chain(default_request.keys())
            .collect();
        if kind == "Pod" {
            if !default.is_empty() {
                e.forbidden(
                    child(&path, "default"),
                    "may not be specified when `type` is 'Pod'",
                );
            }
            if !default_request.is_empty() {
                e.forbidden(
                    child(&path, "defaultRequest"),
                    "may not be specified when `type` is 'Pod'",
                );
            }
        } else {
            keys.extend(ratio.keys());
        }
        if kind == "PersistentVolumeClaim"
            && !min.contains_key("storage")
            && !max.contains_key("storage")
        {
            e.required(
                child(&path, "limits"),
                "either minimum or maximum storage value is required, but neither was provided",
            );
        }
        for k in keys {
            let q = |v: &Quantity| Value::String(v.canonical());
            let (mn, mx, df, dr, rt) = (
                min.get(k),
                max.get(k),
                default.get(k),
                default_request.get(k),
                ratio.get(k),
            );
            if let (Some(mn), Some(mx)) = (mn, mx) {
                if mn.nano > mx.nano {
                    let m = format!(
                        "min value {} is greater than max value {}",
                        mn.canonical(),
                        mx.canonical()
                    );
                    e.invalid(key(&child(&path, "min"), k), q(mn), &m);
                }
            }
            let dr_path = key(&child(&path, "defaultRequest"), k);
            if let (Some(dr), Some(mn)) = (dr, mn) {
                if mn.nano > dr.nano {
                    let m = format!(
                        "min value {} is greater than default request value {}",
                        mn.canonical(),
                        dr.canonical()
                    );
                    e.invalid(dr_path.clone(), q(dr), &m);
                }
            }
            if let (Some(dr), Some(mx)) = (dr, mx) {
                if dr.nano > mx.nano {
                    let m = format!(
                        "default request value {} is greater than max value {}",
                        dr.canonical(),
                        mx.canonical()
                    );
                    e.invalid(dr_path.clone(), q(dr), &m);
                }
            }
            if let (Some(dr), Some(df)) = (dr, df) {
                if dr.nano > df.nano {
                    let m = format!(
                        "default request value {} is greater than default limit value {}",
                        dr.canonical(),
                        df.canonical()
                    );
                    e.invalid(dr_path.clone(), q(dr), &m);
                }
            }
            let df_path = key(&child(&path, "default"), k);
            if let (Some(df), Some(mn)) = (df, mn) {
                if mn.nano > df.nano {
                    let m = format!(
                        "min value {} is greater than default value {}",
                        mn.canonical(),
                        df.canonical()
                    );
                    e.invalid(df_path.clone(), q(mn), &m);
                }
            }
            if let (Some(df), Some(mx)) = (df, mx) {
                if df.nano > mx.nano {
                    let m = format!(
                        "default value {} is greater than max value {}",
                        df.canonical(),
                        mx.canonical()
                    );
                    e.invalid(df_path.clone(), q(mx), &m);
                }
            }
            let rt_path = key(&child(&path, "maxLimitRequestRatio"), k);
            if let Some(rt) = rt {
                if rt.nano < NANO {
                    let m = format!("ratio {} is less than 1", rt.canonical());
                    e.invalid(rt_path.clone(), q(rt), &m);
                }
                if let (Some(mn), Some(mx)) = (mn, mx) {
                    let limit = milli_ceil(mx) as f64 / milli_ceil(mn).max(1) as f64;
                    if milli_ceil(rt) as f64 / 1000.0 > limit {
                        let m = format!(
                            "ratio {} is greater than max/min = {limit:.6}",
                            rt.canonical()
                        );
                        e.invalid(rt_path.clone(), q(rt), &m);
                    }
                }
            }
            let overcommit = !k.contains('/') && !is_huge_pages(k) || k.contains("kubernetes.io/");
            if let (false, Some(df), Some(dr)) = (overcommit, df, dr) {
                if df.nano != dr.nano {
                    let m = format!(
                        "default value {} must equal to defaultRequest value {} in {k}",
                        df.canonical(),
                        dr.canonical()
                    );
                    e.invalid(dr_path, q(dr), &m);
                }
            }
        }
    }
}

const QUOTA_SCOPES: &[&str] = &[
    "BestEffort",
    "CrossNamespacePodAffinity",
    "NotBestEffort",
    "NotTerminating",
    "PriorityClass",
    "Terminating",
    "VolumeAttributesClass",
];

/// `IsStandardQuotaResourceName`.
fn is_standard_quota_resource(name: &str) -> bool {
    matches!(
        name,
        "cpu"
            | "memory"
            | "ephemeral-storage"
            | "requests.cpu"
            | "requests.memory"
            | "requests.storage"
            | "requests.ephemeral-storage"
            | "limits.cpu"
            | "limits.memory"
            | "limits.ephemeral-storage"
            | "pods"
            | "resourcequotas"
            | "services"
            | "replicationcontrollers"
            | "secrets"
            | "persistentvolumeclaims"
            | "configmaps"
            | "services.nodeports"
            | "services.loadbalancers"
    ) || is_huge_pages(name)
        || name.strip_prefix("requests.").is_some_and(is_huge_pages)
}

/// `IsResourceQuotaScopeValidForResource` for standard resource names.
fn scope_valid_for(scope: &str, resource: &str) -> bool {
    let pod_count = matches!(resource, "pods");
    let pod_compute = matches!(
        resource,
        "cpu" | "memory" | "limits.cpu" | "limits.memory" | "requests.cpu" | "requests.memory"
    );
    match scope {
        "BestEffort" => pod_count,
        "Terminating"
        | "NotTerminating"
        | "NotBestEffort"
        | "PriorityClass"
        | "CrossNamespacePodAffinity" => pod_count || pod_compute,
        "VolumeAttributesClass" => {
            matches!(resource, "persistentvolumeclaims" | "requests.storage")
        }
        _ => false,
    }
}

fn check_quota_resource_list(e: &mut Errs, list: Option<&Value>, path: &str) {
    for (name, v) in sorted_entries(list) {
        let p = key(path, name);
        check_qualified_name(e, name, &p);
        if !name.contains('/') && !is_standard_quota_resource(name) {
            e.invalid(p.clone(), st(name), "must be a standard resource for quota");
        }
        if let Some(q) = quantity_of(v) {
            check_quantity_value(e, name, q, &p);
        }
    }
}

/// `ValidateResourceQuota` (spec and status).
fn resource_quota(e: &mut Errs, obj: &Value) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    check_quota_resource_list(e, spec.get("hard"), "spec.hard");
    let scopes: Vec<&str> = ga(spec, "scopes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    if !scopes.is_empty() {
        let shown_scopes = format!(
            "[]core.ResourceQuotaScope{{{}}}",
            scopes
                .iter()
                .map(|s| go_quote(s))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let hard: Vec<&String> = spec
            .get("hard")
            .and_then(Value::as_object)
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        for scope in &scopes {
            if !QUOTA_SCOPES.contains(scope) {
                e.invalid_shown("spec.scopes", &shown_scopes, "unsupported scope");
            }
            for k in &hard {
                if is_standard_quota_resource(k) && !scope_valid_for(scope, k) {
                    e.invalid_shown(
                        "spec.scopes",
                        &shown_scopes,
                        "unsupported scope applied to resource",
                    );
                }
            }
        }
        for (a, b) in [
            ("BestEffort", "NotBestEffort"),
            ("Terminating", "NotTerminating"),
        ] {
            if scopes.contains(&a) && scopes.contains(&b) {
                e.invalid_shown("spec.scopes", &shown_scopes, "conflicting scopes");
            }
        }
    }
    if let Some(sel) = spec.get("scopeSelector").filter(|s| !s.is_null()) {
        for (i, req) in ga(sel, "matchExpressions").iter().enumerate() {
            let path = index("spec.scopeSelector.matchExpressions", i);
            let scope = gs(req, "scopeName");
            if !QUOTA_SCOPES.contains(&scope) {
                e.invalid(child(&path, "scopeName"), st(scope), "unsupported scope");
            }
            let values = ga(req, "values");
            match gs(req, "operator") {
                "In" | "NotIn" => {
                    if values.is_empty() {
                        e.required(
                            child(&path, "values"),
                            "must be at least one value when `operator` is 'In' or 'NotIn' for scope selector",
                        );
                    }
                }
                "Exists" | "DoesNotExist" => {
                    if !values.is_empty() {
                        e.invalid(
                            child(&path, "values"),
                            Value::Array(values.to_vec()),
                            "must be no value when `operator` is 'Exist' or 'DoesNotExist' for scope selector",
                        );
                    }
                }
                op => e.invalid(
                    child(&path, "operator"),
                    st(op),
                    "not a valid selector operator",
                ),
            }
        }
    }
    let status = obj.get("status").unwrap_or(&Value::Null);
    check_quota_resource_list(e, status.get("hard"), "status.hard");
    check_quota_resource_list(e, status.get("used"), "status.used");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::ApiError;

    const UPSTREAM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/upstream");

    fn load(rel: &str) -> Value {
        let text = std::fs::read_to_string(format!("{UPSTREAM}/{rel}")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn response(rel: &str) -> Value {
        load(rel)["response"]["body"].clone()
    }

    fn gvk(obj: &Value) -> (String, String, String) {
        let api_version = obj["apiVersion"].as_str().unwrap_or("");
        let (g, v) = match api_version.split_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), api_version.to_string()),
        };
        (g, v, obj["kind"].as_str().unwrap_or("").to_string())
    }

    fn run(obj: &Value, old: Option<&Value>) -> Vec<(String, String)> {
        let (g, v, k) = gvk(obj);
        validate(&g, &v, &k, obj, old)
            .into_iter()
            .map(|c| (c.field, c.message))
            .collect()
    }

    /// `base` with the value at JSON pointer `ptr` set (objects created on the way).
    fn with(base: &Value, ptr: &str, v: Value) -> Value {
        let mut out = base.clone();
        let parts: Vec<&str> = ptr.trim_start_matches('/').split('/').collect();
        let mut cur = &mut out;
        for (i, p) in parts.iter().enumerate() {
            let last = i == parts.len() - 1;
            if let Ok(n) = p.parse::<usize>() {
                let arr = cur.as_array_mut().unwrap();
                while arr.len() <= n {
                    arr.push(json!({}));
                }
                if last {
                    arr[n] = v;
                    return out;
                }
                cur = &mut arr[n];
            } else {
                if !cur.is_object() {
                    *cur = json!({});
                }
                let m = cur.as_object_mut().unwrap();
                if last {
                    m.insert(p.to_string(), v);
                    return out;
                }
                cur = m.entry(p.to_string()).or_insert(json!({}));
            }
        }
        out
    }

    fn without(base: &Value, ptr: &str) -> Value {
        let mut out = base.clone();
        let (parent, last) = ptr.rsplit_once('/').unwrap();
        match out.pointer_mut(parent).unwrap() {
            Value::Object(m) => {
                m.remove(last);
            }
            Value::Array(a) => {
                a.remove(last.parse::<usize>().unwrap());
            }
            _ => panic!("not a container"),
        }
        out
    }

    #[track_caller]
    fn expect(causes: &[(String, String)], field: &str, message: &str) {
        assert!(
            causes.iter().any(|(f, m)| f == field && m == message),
            "expected {field}: {message}\n got {causes:#?}"
        );
    }

    #[track_caller]
    fn expect_prefix(causes: &[(String, String)], field: &str, prefix: &str) {
        assert!(
            causes
                .iter()
                .any(|(f, m)| f == field && m.starts_with(prefix)),
            "expected {field}: {prefix}...\n got {causes:#?}"
        );
    }

    #[track_caller]
    fn valid(obj: &Value, old: Option<&Value>) {
        let causes = run(obj, old);
        assert!(causes.is_empty(), "unexpected causes: {causes:#?}");
    }

    // ------------------------------------------------------------------------- valid objects

    const KINDS: &[&str] = &[
        "Pod",
        "PodTemplate",
        "ReplicationController",
        "Service",
        "ConfigMap",
        "Secret",
        "Namespace",
        "Node",
        "PersistentVolumeClaim",
        "Endpoints",
        "Event",
        "Deployment",
        "ReplicaSet",
        "StatefulSet",
        "DaemonSet",
        "Job",
        "CronJob",
        "Ingress",
        "PodDisruptionBudget",
        "Role",
        "ClusterRole",
        "RoleBinding",
        "ClusterRoleBinding",
        "PriorityClass",
        "StorageClass",
        "Lease",
    ];

    fn collect_objects(v: &Value, out: &mut Vec<Value>) {
        if let Some(items) = v.get("items").and_then(Value::as_array) {
            for i in items {
                collect_objects(i, out);
            }
        }
        if let Some(rows) = v.get("rows").and_then(Value::as_array) {
            for r in rows {
                collect_objects(&r["object"], out);
            }
        }
        if let Some(k) = v.get("kind").and_then(Value::as_str) {
            if KINDS.contains(&k) && v.get("metadata").is_some() && v.get("apiVersion").is_some() {
                out.push(v.clone());
            }
        }
    }

    /// Every built-in object upstream answered with (and so accepted) validates, on create and
    /// as an update to itself.
    #[test]
    fn upstream_answers_are_valid() {
        let mut objects = Vec::new();
        let mut dirs = vec![std::path::PathBuf::from(UPSTREAM)];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                if path.extension().and_then(|e| e.to_str()) != Some("json") {
                    continue;
                }
                let Ok(doc) =
                    serde_json::from_str::<Value>(&std::fs::read_to_string(&path).unwrap())
                else {
                    continue;
                };
                let status = doc["response"]["status"].as_u64().unwrap_or(0);
                if (200..300).contains(&status) {
                    collect_objects(&doc["response"]["body"], &mut objects);
                }
            }
        }
        assert!(objects.len() > 30, "only {} objects", objects.len());
        for obj in &objects {
            let causes = run(obj, None);
            assert!(causes.is_empty(), "{obj}\n{causes:#?}");
            let causes = run(obj, Some(obj));
            assert!(causes.is_empty(), "update {obj}\n{causes:#?}");
        }
    }

    // ------------------------------------------------------------------------- captures

    #[test]
    fn deployment_selector_mismatch_matches_capture() {
        let capture = load("errors/create-deployment-selector-mismatch-422.json");
        let base = response("defaults/deployment.json");
        let obj = with(
            &with(
                &with(&base, "/metadata/name", json!("bad-selector")),
                "/spec/selector",
                json!({"matchLabels": {"app": "one"}}),
            ),
            "/spec/template/metadata/labels",
            json!({"app": "two"}),
        );
        let causes = validate("apps", "v1", "Deployment", &obj, None);
        let status = ApiError::invalid("Deployment", "apps", "bad-selector", causes).to_status();
        assert_eq!(status, capture["response"]["body"]);
    }

    #[test]
    fn configmap_size_matches_capture() {
        let capture = load("errors/create-configmap-over-1MiB-422.json");
        let obj = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "err-big2", "namespace": "golden"},
            "data": {"big": "x".repeat(2 * 1024 * 1024)}});
        let causes = validate("", "v1", "ConfigMap", &obj, None);
        let status = ApiError::invalid("ConfigMap", "", "err-big2", causes).to_status();
        assert_eq!(status, capture["response"]["body"]);
    }

    // ------------------------------------------------------------------------- pods

    fn pod() -> Value {
        response("defaults/pod-busybox.json")
    }

    #[test]
    fn pod_spec_invariants() {
        let p = pod();
        expect(
            &run(&with(&p, "/spec/containers", json!([])), None),
            "spec.containers",
            "Required value",
        );
        let c0 = p["spec"]["containers"][0].clone();
        expect(
            &run(&with(&p, "/spec/containers/1", c0.clone()), None),
            "spec.containers[1].name",
            "Duplicate value: \"main\"",
        );
        expect(
            &run(&with(&p, "/spec/initContainers", json!([c0.clone()])), None),
            "spec.initContainers[0].name",
            "Duplicate value: \"main\"",
        );
        expect(
            &run(
                &with(&p, "/spec/containers/0/name", json!("Bad_Name")),
                None,
            ),
            "spec.containers[0].name",
            &format!("Invalid value: \"Bad_Name\": {}", meta::DNS1123_LABEL_MSG),
        );
        expect(
            &run(&with(&p, "/spec/containers/0/name", json!("a.b")), None),
            "spec.containers[0].name",
            "Invalid value: \"a.b\": must not contain dots",
        );
        expect(
            &run(&with(&p, "/spec/containers/0/image", json!("")), None),
            "spec.containers[0].image",
            "Required value",
        );
        let port = |cp: Value, proto: &str, name: &str| json!([{"containerPort": cp, "protocol": proto, "name": name}]);
        expect(
            &run(
                &with(
                    &p,
                    "/spec/containers/0/ports",
                    port(json!(70000), "TCP", "web"),
                ),
                None,
            ),
            "spec.containers[0].ports[0].containerPort",
            "Invalid value: 70000: must be between 1 and 65535, inclusive",
        );
        expect(
            &run(
                &with(
                    &p,
                    "/spec/containers/0/ports",
                    port(json!(80), "HTTP", "web"),
                ),
                None,
            ),
            "spec.containers[0].ports[0].protocol",
            "Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
        );
        expect(
            &run(
                &with(
                    &p,
                    "/spec/containers/0/ports",
                    port(json!(80), "TCP", "abcdefghijklmnop"),
                ),
                None,
            ),
            "spec.containers[0].ports[0].name",
            "Invalid value: \"abcdefghijklmnop\": must be no more than 15 characters",
        );
        let two_ports = json!([
            {"containerPort": 80, "protocol": "TCP", "name": "web"},
            {"containerPort": 81, "protocol": "TCP", "name": "web"}]);
        expect(
            &run(&with(&p, "/spec/containers/0/ports", two_ports), None),
            "spec.containers[0].ports[1].name",
            "Duplicate value: \"web\"",
        );
        expect(
            &run(&with(&p, "/spec/containers/0/env", json!([{"name": "A=B", "value": "x"}])), None),
            "spec.containers[0].env[0].name",
            "Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII characters other than '='",
        );
        expect(
            &run(
                &with(&p, "/spec/containers/0/env", json!([{"name": ""}])),
                None,
            ),
            "spec.containers[0].env[0].name",
            "Required value",
        );
        expect(
            &run(
                &with(
                    &p,
                    "/spec/containers/0/env",
                    json!([{"name": "X", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.bogus"}}}]),
                ),
                None,
            ),
            "spec.containers[0].env[0].valueFrom.fieldRef.fieldPath",
            "Invalid value: \"spec.bogus\": error converting fieldPath: field label not supported: spec.bogus",
        );
        expect(
            &run(&with(&p, "/spec/restartPolicy", json!("Sometimes")), None),
            "spec.restartPolicy",
            "Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
        );
        expect(
            &run(&with(&p, "/spec/dnsPolicy", json!("Bad")), None),
            "spec.dnsPolicy",
            "Unsupported value: \"Bad\": supported values: \"ClusterFirstWithHostNet\", \"ClusterFirst\", \"Default\", \"None\"",
        );
        expect(
            &run(&without(&p, "/spec/terminationGracePeriodSeconds"), None),
            "spec.terminationGracePeriodSeconds",
            "Required value",
        );
        expect(
            &run(&with(&p, "/spec/containers/0/imagePullPolicy", json!("Sometimes")), None),
            "spec.containers[0].imagePullPolicy",
            "Unsupported value: \"Sometimes\": supported values: \"Always\", \"IfNotPresent\", \"Never\"",
        );
        expect(
            &run(
                &with(&p, "/spec/nodeSelector", json!({"disk": "bad value"})),
                None,
            ),
            "spec.nodeSelector",
            &format!(
                "Invalid value: \"bad value\": {}",
                selectors::label_value_errors("bad value")[0]
            ),
        );
        expect(
            &run(&with(&p, "/spec/activeDeadlineSeconds", json!(0)), None),
            "spec.activeDeadlineSeconds",
            "Invalid value: 0: must be between 1 and 2147483647, inclusive",
        );
        expect(
            &run(&with(&p, "/spec/hostname", json!("Host_1")), None),
            "spec.hostname",
            &format!("Invalid value: \"Host_1\": {}", meta::DNS1123_LABEL_MSG),
        );
    }

    #[test]
    fn pod_volumes_and_mounts() {
        let p = pod();
        let vols = p["spec"]["volumes"].as_array().unwrap().clone();
        let mut dup = vols.clone();
        dup.push(vols[0].clone());
        expect(
            &run(&with(&p, "/spec/volumes", json!(dup)), None),
            "spec.volumes[1].name",
            &format!("Duplicate value: {}", vols[0]["name"]),
        );
        let two_sources = json!([{"name": "x", "emptyDir": {}, "hostPath": {"path": "/tmp"}}]);
        expect(
            &run(&with(&p, "/spec/volumes", two_sources), None),
            "spec.volumes[0].hostPath",
            "Forbidden: may not specify more than 1 volume type",
        );
        let none = json!([vols[0].clone(), {"name": "empty"}]);
        expect(
            &run(&with(&p, "/spec/volumes", none), None),
            "spec.volumes[1]",
            "Required value: must specify a volume type",
        );
        let mount = json!({"name": "nope", "mountPath": "/x"});
        let causes = run(&with(&p, "/spec/containers/0/volumeMounts/1", mount), None);
        expect(
            &causes,
            "spec.containers[0].volumeMounts[1].name",
            "Not found: \"nope\"",
        );
        let same_path = json!({"name": vols[0]["name"], "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"});
        expect(
            &run(
                &with(&p, "/spec/containers/0/volumeMounts/1", same_path),
                None,
            ),
            "spec.containers[0].volumeMounts[1].mountPath",
            "Invalid value: \"/var/run/secrets/kubernetes.io/serviceaccount\": must be unique",
        );
        let cm = json!([{"name": "cfg", "configMap": {"name": "c", "defaultMode": 1000}}]);
        expect(
            &run(&with(&p, "/spec/volumes", cm), None),
            "spec.volumes[0].configMap.defaultMode",
            "Invalid value: 1000: must be a number between 0 and 0777 (octal), both inclusive",
        );
        let hp = json!([{"name": "h", "hostPath": {"path": "/a/../b"}}]);
        expect(
            &run(&with(&p, "/spec/volumes", hp), None),
            "spec.volumes[0].hostPath.path",
            "Invalid value: \"/a/../b\": must not contain '..'",
        );
        let no_sa = without(
            &without(&p, "/spec/serviceAccountName"),
            "/spec/serviceAccount",
        );
        expect(
            &run(&no_sa, None),
            "spec.volumes[0].projected.sources[0].serviceAccountToken",
            "Forbidden: must not be specified when serviceAccountName is not set",
        );
    }

    #[test]
    fn pod_resources_probes_tolerations() {
        let p = pod();
        let res = json!({"requests": {"cpu": "2", "memory": "64Mi"}, "limits": {"cpu": "1"}});
        expect(
            &run(&with(&p, "/spec/containers/0/resources", res), None),
            "spec.containers[0].resources.requests",
            "Invalid value: \"2\": must be less than or equal to cpu limit of 1",
        );
        let res = json!({"requests": {"memory": "1536Mi"}, "limits": {"memory": "1Gi"}});
        expect(
            &run(&with(&p, "/spec/containers/0/resources", res), None),
            "spec.containers[0].resources.requests",
            "Invalid value: \"1536Mi\": must be less than or equal to memory limit of 1Gi",
        );
        let res = json!({"requests": {"cpu": "-1"}});
        expect(
            &run(&with(&p, "/spec/containers/0/resources", res), None),
            "spec.containers[0].resources.requests[cpu]",
            "Invalid value: \"-1\": must be greater than or equal to 0",
        );
        let res = json!({"limits": {"example.com/gpu": "1500m"}, "requests": {"example.com/gpu": "1500m"}});
        expect(
            &run(&with(&p, "/spec/containers/0/resources", res), None),
            "spec.containers[0].resources.limits[example.com/gpu]",
            "Invalid value: 1500m: must be an integer",
        );
        let res = json!({"requests": {"example.com/gpu": "1"}});
        expect(
            &run(&with(&p, "/spec/containers/0/resources", res), None),
            "spec.containers[0].resources.limits",
            "Required value: Limit must be set for non overcommitable resources",
        );
        let res = json!({"requests": {"foo": "1"}});
        expect(
            &run(&with(&p, "/spec/containers/0/resources", res), None),
            "spec.containers[0].resources.requests[foo]",
            "Invalid value: \"foo\": must be a standard resource type or fully qualified",
        );
        let probe = json!({"exec": {"command": ["true"]}, "periodSeconds": -1, "timeoutSeconds": 1,
            "successThreshold": 2, "failureThreshold": 3});
        let causes = run(
            &with(&p, "/spec/containers/0/livenessProbe", probe.clone()),
            None,
        );
        expect(
            &causes,
            "spec.containers[0].livenessProbe.periodSeconds",
            "Invalid value: -1: must be greater than or equal to 0",
        );
        expect(
            &causes,
            "spec.containers[0].livenessProbe.successThreshold",
            "Invalid value: 2: must be 1",
        );
        let no_handler = json!({"periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3});
        expect(
            &run(
                &with(&p, "/spec/containers/0/readinessProbe", no_handler),
                None,
            ),
            "spec.containers[0].readinessProbe",
            "Required value: must specify a handler type",
        );
        expect(
            &run(
                &with(&p, "/spec/tolerations/0/operator", json!("Maybe")),
                None,
            ),
            "spec.tolerations[0].operator",
            "Unsupported value: \"Maybe\": supported values: \"Equal\", \"Exists\"",
        );
        expect(
            &run(&with(&p, "/spec/tolerations/2", json!({"operator": "Equal", "value": "x"})), None),
            "spec.tolerations[2].operator",
            "Invalid value: \"Equal\": operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
        );
        expect(
            &run(&with(&p, "/spec/tolerations/2", json!({"key": "k", "operator": "Exists", "effect": "Sometimes"})), None),
            "spec.tolerations[2].effect",
            "Unsupported value: \"Sometimes\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"",
        );
        expect(
            &run(
                &with(
                    &p,
                    "/spec/ephemeralContainers",
                    json!([{"name": "dbg", "image": "busybox"}]),
                ),
                None,
            ),
            "spec.ephemeralContainers",
            "Forbidden: cannot be set on create",
        );
    }

    #[test]
    fn pod_updates_only_change_mutable_fields() {
        let old = pod();
        valid(
            &with(&old, "/spec/containers/0/image", json!("busybox:1.37")),
            Some(&old),
        );
        valid(
            &with(&old, "/spec/activeDeadlineSeconds", json!(30)),
            Some(&old),
        );
        let mut added = old["spec"]["tolerations"].as_array().unwrap().clone();
        added.push(json!({"key": "k", "operator": "Exists", "effect": "NoSchedule"}));
        valid(&with(&old, "/spec/tolerations", json!(added)), Some(&old));
        let causes = run(
            &with(&old, "/spec/restartPolicy", json!("Never")),
            Some(&old),
        );
        assert_eq!(causes.len(), 1, "{causes:#?}");
        expect_prefix(
            &causes,
            "spec",
            "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n",
        );
        assert!(causes[0].1.contains("restartPolicy"), "{}", causes[0].1);
        expect(
            &run(&without(&old, "/spec/tolerations/1"), Some(&old)),
            "spec.tolerations",
            "Forbidden: existing toleration can not be modified except its tolerationSeconds",
        );
        let with_ads = with(&old, "/spec/activeDeadlineSeconds", json!(30));
        expect(
            &run(
                &with(&old, "/spec/activeDeadlineSeconds", json!(60)),
                Some(&with_ads),
            ),
            "spec.activeDeadlineSeconds",
            "Invalid value: 60: must be less than or equal to previous value",
        );
        let c0 = old["spec"]["containers"][0].clone();
        expect(
            &run(
                &with(&old, "/spec/containers/1", with(&c0, "/name", json!("two"))),
                Some(&old),
            ),
            "spec.containers",
            "Forbidden: pod updates may not add or remove containers",
        );
        // Quantities compare by value.
        let a = with(
            &old,
            "/spec/containers/0/resources",
            json!({"requests": {"cpu": "1"}}),
        );
        let b = with(
            &old,
            "/spec/containers/0/resources",
            json!({"requests": {"cpu": "1000m"}}),
        );
        valid(&b, Some(&a));
    }

    // ------------------------------------------------------------------------- workloads

    #[test]
    fn deployment_invariants() {
        let d = response("defaults/deployment.json");
        let causes = run(&without(&d, "/spec/selector"), None);
        expect(&causes, "spec.selector", "Required value");
        expect_prefix(
            &causes,
            "spec.template.metadata.labels",
            "Invalid value: {\"app\":\"web\"}: `selector` does not match",
        );
        expect(
            &run(&with(&d, "/spec/selector", json!({})), None),
            "spec.selector",
            "Invalid value: {}: empty selector is invalid for deployment",
        );
        expect(
            &run(&with(&d, "/spec/replicas", json!(-1)), None),
            "spec.replicas",
            "Invalid value: -1: must be greater than or equal to 0",
        );
        expect_prefix(
            &run(&with(&d, "/spec/strategy/type", json!("BlueGreen")), None),
            "spec.strategy",
            "Unsupported value: {",
        );
        let zero = json!({"maxSurge": 0, "maxUnavailable": 0});
        expect(
            &run(&with(&d, "/spec/strategy/rollingUpdate", zero), None),
            "spec.strategy.rollingUpdate.maxUnavailable",
            "Invalid value: 0: may not be 0 when `maxSurge` is 0",
        );
        let bad = json!({"maxSurge": "25x", "maxUnavailable": "120%"});
        let causes = run(&with(&d, "/spec/strategy/rollingUpdate", bad), None);
        expect(
            &causes,
            "spec.strategy.rollingUpdate.maxSurge",
            &format!("Invalid value: 25x: {PERCENT_MSG}"),
        );
        expect(
            &causes,
            "spec.strategy.rollingUpdate.maxUnavailable",
            "Invalid value: 120%: must not be greater than 100%",
        );
        expect(
            &run(
                &with(&d, "/spec/template/spec/restartPolicy", json!("Never")),
                None,
            ),
            "spec.template.spec.restartPolicy",
            "Unsupported value: \"Never\": supported values: \"Always\"",
        );
        let c0 = d["spec"]["template"]["spec"]["containers"][0].clone();
        expect(
            &run(&with(&d, "/spec/template/spec/containers/1", c0), None),
            "spec.template.spec.containers[1].name",
            "Duplicate value: \"web\"",
        );
        expect(
            &run(
                &with(&d, "/spec/template/metadata/labels/bad key", json!("x")),
                None,
            ),
            "spec.template.labels",
            &format!(
                "Invalid value: \"bad key\": {}",
                selectors::label_key_errors("bad key")[0]
            ),
        );
        expect(
            &run(&with(&d, "/spec/progressDeadlineSeconds", json!(0)), None),
            "spec.progressDeadlineSeconds",
            "Invalid value: 0: must be greater than minReadySeconds",
        );
        // Selector is immutable in apps/v1.
        let changed = with(
            &with(
                &d,
                "/spec/selector/matchLabels",
                json!({"app": "web", "tier": "x"}),
            ),
            "/spec/template/metadata/labels/tier",
            json!("x"),
        );
        let causes = run(&changed, Some(&d));
        assert_eq!(
            causes,
            vec![(
                "spec.selector".to_string(),
                "Invalid value: {\"matchLabels\":{\"app\":\"web\",\"tier\":\"x\"}}: field is immutable"
                    .to_string()
            )]
        );
        valid(&with(&d, "/spec/replicas", json!(5)), Some(&d));
    }

    #[test]
    fn replicaset_statefulset_daemonset() {
        let rs = response("defaults/replicaset.json");
        expect(
            &run(&with(&rs, "/spec/minReadySeconds", json!(-5)), None),
            "spec.minReadySeconds",
            "Invalid value: -5: must be greater than or equal to 0",
        );
        let sts = response("defaults/statefulset.json");
        expect(
            &run(
                &with(&sts, "/spec/podManagementPolicy", json!("Random")),
                None,
            ),
            "spec.podManagementPolicy",
            "Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'",
        );
        valid(&with(&sts, "/spec/replicas", json!(3)), Some(&sts));
        valid(
            &with(
                &sts,
                "/spec/template/spec/containers/0/image",
                json!("nginx:2"),
            ),
            Some(&sts),
        );
        let causes = run(&with(&sts, "/spec/serviceName", json!("other")), Some(&sts));
        assert_eq!(
            causes,
            vec![(
                "spec".to_string(),
                "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden".to_string()
            )]
        );
        let ds = response("defaults/daemonset.json");
        let zero = json!({"maxSurge": 0, "maxUnavailable": 0});
        expect(
            &run(&with(&ds, "/spec/updateStrategy/rollingUpdate", zero), None),
            "spec.updateStrategy.rollingUpdate.maxUnavailable",
            "Required value: cannot be 0 when maxSurge is 0",
        );
        let both = json!({"maxSurge": 1, "maxUnavailable": 1});
        expect(
            &run(&with(&ds, "/spec/updateStrategy/rollingUpdate", both), None),
            "spec.updateStrategy.rollingUpdate.maxSurge",
            "Invalid value: 1: may not be set when maxUnavailable is non-zero",
        );
        let causes = run(&without(&ds, "/spec/selector"), None);
        expect_prefix(&causes, "spec.template.metadata.labels", "Invalid value: {");
    }

    // ------------------------------------------------------------------------- batch

    #[test]
    fn job_selector_generation_matches_capture() {
        let capture = load("defaults/job.json");
        let answer = &capture["response"]["body"];
        let mut job = capture["request"]["body"].clone();
        job["metadata"]["uid"] = answer["metadata"]["uid"].clone();
        job["spec"]["manualSelector"] = json!(false);
        let uid = job["metadata"]["uid"].as_str().unwrap_or("").to_string();
        crate::defaults::prepare_for_create("batch", "Job", &mut job, &uid);
        crate::defaults::apply_defaults("batch", "v1", "Job", &mut job);
        assert_eq!(job["spec"]["selector"], answer["spec"]["selector"]);
        assert_eq!(
            job["spec"]["template"]["metadata"]["labels"],
            answer["spec"]["template"]["metadata"]["labels"]
        );
        assert_eq!(job["metadata"]["labels"], answer["metadata"]["labels"]);
    }

    #[test]
    fn job_invariants() {
        let j = response("defaults/job.json");
        expect(
            &run(&with(&j, "/spec/parallelism", json!(-1)), None),
            "spec.parallelism",
            "Invalid value: -1: must be greater than or equal to 0",
        );
        expect(
            &run(&with(&j, "/spec/backoffLimit", json!(-1)), None),
            "spec.backoffLimit",
            "Invalid value: -1: must be greater than or equal to 0",
        );
        expect(
            &run(
                &with(&j, "/spec/template/spec/restartPolicy", json!("Always")),
                None,
            ),
            "spec.template.spec.restartPolicy",
            "Required value: valid values: \"OnFailure\", \"Never\"",
        );
        expect(
            &run(&with(&j, "/spec/completionMode", json!("Sometimes")), None),
            "spec.completionMode",
            "Unsupported value: \"Sometimes\": supported values: \"NonIndexed\", \"Indexed\"",
        );
        expect(
            &run(
                &with(
                    &j,
                    "/spec/template/metadata/labels/controller-uid",
                    json!("other"),
                ),
                None,
            ),
            "spec.template.metadata.labels[controller-uid]",
            &format!(
                "Invalid value: {}: must be '{}'",
                go_value(
                    &with(
                        &j,
                        "/spec/template/metadata/labels/controller-uid",
                        json!("other")
                    )["spec"]["template"]["metadata"]["labels"]
                ),
                j["metadata"]["uid"].as_str().unwrap()
            ),
        );
        // The template and selector are immutable.
        let causes = run(
            &with(
                &j,
                "/spec/template/spec/containers/0/image",
                json!("busybox:2"),
            ),
            Some(&j),
        );
        assert_eq!(causes.len(), 1, "{causes:#?}");
        assert_eq!(causes[0].0, "spec.template");
        assert!(
            causes[0].1.starts_with("Invalid value: {"),
            "{}",
            causes[0].1
        );
        assert!(
            causes[0].1.ends_with(": field is immutable"),
            "{}",
            causes[0].1
        );
        let sel = with(&j, "/spec/selector/matchLabels/extra", json!("x"));
        let sel = with(&sel, "/spec/template/metadata/labels/extra", json!("x"));
        expect_prefix(
            &run(&sel, Some(&j)),
            "spec.selector",
            "Invalid value: {\"matchLabels\":{",
        );
        valid(&with(&j, "/spec/suspend", json!(true)), Some(&j));
    }

    #[test]
    fn cron_schedules() {
        for ok in [
            "*/5 * * * *",
            "0 0 * * 0",
            "@weekly",
            "@every 1h30m",
            "0 9-17/2 * JAN-MAR MON-FRI",
            "? * * * *",
            "15,45 * 1,15 * *",
        ] {
            assert_eq!(parse_cron(ok), Ok(()), "{ok}");
        }
        for (bad, msg) in [
            ("* * *", "expected exactly 5 fields, found 3: [* * *]"),
            ("61 * * * *", "end of range (61) above maximum (59): 61"),
            ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
            ("* * * * 7", "end of range (7) above maximum (6): 7"),
            (
                "5-1 * * * *",
                "beginning of range (5) beyond end of range (1): 5-1",
            ),
            (
                "*/0 * * * *",
                "step of range should be a positive number: */0",
            ),
            ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
            (
                "x * * * *",
                "failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax",
            ),
            ("@fortnightly", "unrecognized descriptor: @fortnightly"),
            ("", "empty spec string"),
        ] {
            assert_eq!(parse_cron(bad), Err(msg.to_string()), "{bad}");
        }
    }

    #[test]
    fn cronjob_invariants() {
        let c = response("defaults/cronjob.json");
        expect(
            &run(&with(&c, "/spec/schedule", json!("* * *")), None),
            "spec.schedule",
            "Invalid value: \"* * *\": expected exactly 5 fields, found 3: [* * *]",
        );
        expect(
            &run(&with(&c, "/spec/schedule", json!("TZ=UTC * * * * *")), None),
            "spec.schedule",
            "Invalid value: \"TZ=UTC * * * * *\": cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
        );
        expect(
            &run(&with(&c, "/spec/concurrencyPolicy", json!("Sometimes")), None),
            "spec.concurrencyPolicy",
            "Unsupported value: \"Sometimes\": supported values: \"Allow\", \"Forbid\", \"Replace\"",
        );
        expect(
            &run(&with(&c, "/spec/timeZone", json!("Local")), None),
            "spec.timeZone",
            "Invalid value: \"Local\": timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        );
        expect(
            &run(
                &with(
                    &c,
                    "/spec/jobTemplate/spec/template/spec/restartPolicy",
                    json!("Always"),
                ),
                None,
            ),
            "spec.jobTemplate.spec.template.spec.restartPolicy",
            "Required value: valid values: \"OnFailure\", \"Never\"",
        );
        expect(
            &run(&with(&c, "/metadata/name", json!("a".repeat(53))), None),
            "metadata.name",
            &format!(
                "Invalid value: \"{}\": must be no more than 52 characters",
                "a".repeat(53)
            ),
        );
        valid(&with(&c, "/spec/timeZone", json!("UTC")), None);
    }

    // ------------------------------------------------------------------------- core kinds

    #[test]
    fn service_invariants() {
        let s = response("defaults/service-clusterip.json");
        expect(
            &run(&with(&s, "/spec/ports", json!([])), None),
            "spec.ports",
            "Required value",
        );
        valid(
            &with(
                &response("defaults/service-headless.json"),
                "/spec/ports",
                json!([]),
            ),
            None,
        );
        let p0 = s["spec"]["ports"][0].clone();
        let two = json!([
            p0.clone(),
            with(&with(&p0, "/port", json!(81)), "/name", json!("b"))
        ]);
        let two = with(&two, "/0/name", json!(""));
        expect(
            &run(&with(&s, "/spec/ports", two), None),
            "spec.ports[0].name",
            "Required value",
        );
        expect(
            &run(&with(&s, "/spec/ports/0/port", json!(0)), None),
            "spec.ports[0].port",
            "Invalid value: 0: must be between 1 and 65535, inclusive",
        );
        expect(
            &run(&with(&s, "/spec/type", json!("Magic")), None),
            "spec.type",
            "Unsupported value: \"Magic\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"",
        );
        expect(
            &run(&with(&s, "/spec/ports/0/targetPort", json!("not_a_port")), None),
            "spec.ports[0].targetPort",
            "Invalid value: \"not_a_port\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
        );
        expect(
            &run(&with(&s, "/spec/ports/0/nodePort", json!(30001)), None),
            "spec.ports[0].nodePort",
            "Forbidden: may not be used when `type` is 'ClusterIP'",
        );
        // clusterIP is immutable.
        let ip = s["spec"]["clusterIP"].as_str().unwrap();
        let moved = with(&s, "/spec/clusterIP", json!("10.96.200.200"));
        let causes = run(&moved, Some(&s));
        assert_eq!(
            causes,
            vec![(
                "spec.clusterIPs[0]".to_string(),
                "Invalid value: [\"10.96.200.200\"]: may not change once set".to_string()
            )],
            "old clusterIP {ip}"
        );
        let mut ext = with(&s, "/spec/type", json!("ExternalName"));
        for f in [
            "clusterIP",
            "clusterIPs",
            "ipFamilies",
            "ipFamilyPolicy",
            "internalTrafficPolicy",
        ] {
            ext = without(&ext, &format!("/spec/{f}"));
        }
        expect(&run(&ext, None), "spec.externalName", "Required value");
        valid(
            &with(&ext, "/spec/externalName", json!("db.example.com.")),
            None,
        );
        let np = response("defaults/service-nodeport.json");
        valid(&np, Some(&np));
        expect(
            &run(&without(&np, "/spec/externalTrafficPolicy"), None),
            "spec.externalTrafficPolicy",
            "Required value",
        );
    }

    #[test]
    fn configmap_and_secret() {
        let cm = response("defaults/configmap.json");
        expect(
            &run(&with(&cm, "/data/bad key", json!("v")), None),
            "data[bad key]",
            "Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
        );
        expect(
            &run(&with(&cm, "/data/..x", json!("v")), None),
            "data[..x]",
            "Invalid value: \"..x\": must not start with '..'",
        );
        let frozen = with(&cm, "/immutable", json!(true));
        let causes = run(&with(&frozen, "/data/new", json!("v")), Some(&frozen));
        assert_eq!(
            causes,
            vec![(
                "data".to_string(),
                "Forbidden: field is immutable when `immutable` is set".to_string()
            )]
        );
        expect(
            &run(&without(&frozen, "/immutable"), Some(&frozen)),
            "immutable",
            "Forbidden: field is immutable when `immutable` is set",
        );
        let s = response("defaults/secret.json");
        let tls = with(&s, "/type", json!("kubernetes.io/tls"));
        let causes = run(&with(&tls, "/data", json!({})), None);
        assert_eq!(
            causes,
            vec![
                ("data[tls.crt]".to_string(), "Required value".to_string()),
                ("data[tls.key]".to_string(), "Required value".to_string())
            ]
        );
        expect(
            &run(&with(&s, "/type", json!("kubernetes.io/tls")), Some(&s)),
            "type",
            "Invalid value: \"kubernetes.io/tls\": field is immutable",
        );
        expect(
            &run(
                &with(&s, "/type", json!("kubernetes.io/dockerconfigjson")),
                None,
            ),
            "data[.dockerconfigjson]",
            "Required value",
        );
        let big = json!({"big": base64::engine::general_purpose::STANDARD.encode(vec![b'x'; 1024 * 1024 + 1])});
        expect(
            &run(&with(&s, "/data", big), None),
            "data",
            "Too long: may not be more than 1048576 bytes",
        );
    }

    #[test]
    fn namespace_node_pvc() {
        let ns = response("defaults/namespace.json");
        expect(
            &run(&with(&ns, "/spec/finalizers", json!(["bad"])), None),
            "spec.finalizers",
            "Invalid value: \"bad\": name is neither a standard finalizer name nor is it fully qualified",
        );
        let node = response("defaults/node.json");
        expect(
            &run(&with(&node, "/spec/podCIDR", json!("bad")), None),
            "spec.podCIDRs[0]",
            "Invalid value: \"bad\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
        );
        let with_cidr = with(&node, "/spec/podCIDRs", json!(["10.42.0.0/24"]));
        expect(
            &run(
                &with(&node, "/spec/podCIDRs", json!(["10.42.1.0/24"])),
                Some(&with_cidr),
            ),
            "spec.podCIDRs",
            "Forbidden: node updates may not change podCIDR except from \"\" to valid",
        );
        valid(&with_cidr, Some(&node));
        expect(
            &run(&with(&node, "/spec/taints", json!([{"key": "k", "effect": "Never"}])), None),
            "metadata.taints[0].effect",
            "Unsupported value: \"Never\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"",
        );
        let pvc = response("defaults/persistentvolumeclaim.json");
        expect(
            &run(&with(&pvc, "/spec/accessModes", json!([])), None),
            "spec.accessModes",
            "Required value: at least 1 access mode is required",
        );
        expect(
            &run(&with(&pvc, "/spec/resources", json!({})), None),
            "spec.resources[storage]",
            "Required value",
        );
        expect(
            &run(&with(&pvc, "/spec/accessModes", json!(["ReadWriteSometimes"])), None),
            "spec.accessModes",
            "Unsupported value: \"ReadWriteSometimes\": supported values: \"ReadOnlyMany\", \"ReadWriteMany\", \"ReadWriteOnce\", \"ReadWriteOncePod\"",
        );
        expect_prefix(
            &run(&with(&pvc, "/spec/accessModes", json!(["ReadWriteMany"])), Some(&pvc)),
            "spec",
            "Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n",
        );
    }

    #[test]
    fn other_kinds() {
        let pdb = response("defaults/poddisruptionbudget.json");
        let both = with(
            &with(&pdb, "/spec/minAvailable", json!(1)),
            "/spec/maxUnavailable",
            json!(1),
        );
        expect_prefix(&run(&both, None), "spec", "Invalid value: {");
        assert!(run(&both, None)[0]
            .1
            .ends_with("minAvailable and maxUnavailable cannot be both set"));
        let ing = with(
            &response("defaults/ingress.json"),
            "/spec/rules",
            json!([{"host": "example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": "svc", "port": {"number": 80}}}}]}}]),
        );
        valid(&ing, None);
        expect(
            &run(&with(&ing, "/spec/rules/0/host", json!("10.0.0.1")), None),
            "spec.rules[0].host",
            "Invalid value: \"10.0.0.1\": must be a DNS name, not an IP address",
        );
        let causes = run(
            &with(&ing, "/spec/rules/0/http/paths/0/pathType", json!("Regex")),
            None,
        );
        expect(
            &causes,
            "spec.rules[0].http.paths[0].pathType",
            "Unsupported value: \"Regex\": supported values: \"Exact\", \"ImplementationSpecific\", \"Prefix\"",
        );
        let causes = run(
            &with(&ing, "/spec/rules/0/http/paths/0/path", json!("relative")),
            None,
        );
        expect(
            &causes,
            "spec.rules[0].http.paths[0].path",
            "Invalid value: \"relative\": must be an absolute path",
        );
        let role = response("defaults/role.json");
        expect(
            &run(&with(&role, "/rules/0/verbs", json!([])), None),
            "rules[0].verbs",
            "Required value: verbs must contain at least one value",
        );
        let rb = response("defaults/rolebinding.json");
        expect_prefix(
            &run(&with(&rb, "/roleRef/name", json!("other")), Some(&rb)),
            "roleRef",
            "Invalid value: {",
        );
        expect(
            &run(&with(&rb, "/subjects/0/kind", json!("Robot")), None),
            "subjects[0].kind",
            "Unsupported value: \"Robot\": supported values: \"ServiceAccount\", \"User\", \"Group\"",
        );
        let pc = response("defaults/priorityclass.json");
        expect(
            &run(&with(&pc, "/value", json!(2_000_000_000)), None),
            "value",
            "Forbidden: maximum allowed value of a user defined priority is 1000000000",
        );
        expect(
            &run(&with(&pc, "/value", json!(5)), Some(&pc)),
            "value",
            "Forbidden: may not be changed in an update.",
        );
        let sc = response("defaults/storageclass.json");
        expect(
            &run(&with(&sc, "/provisioner", json!("")), None),
            "provisioner",
            "Required value",
        );
        expect(
            &run(
                &with(&sc, "/provisioner", json!("example.com/other")),
                Some(&sc),
            ),
            "provisioner",
            "Forbidden: updates to provisioner are forbidden.",
        );
        let lease = response("defaults/lease.json");
        expect(
            &run(&with(&lease, "/spec/leaseDurationSeconds", json!(0)), None),
            "spec.leaseDurationSeconds",
            "Invalid value: 0: must be greater than 0",
        );
        let ev = response("defaults/event.json");
        expect(
            &run(
                &with(&ev, "/involvedObject/namespace", json!("elsewhere")),
                None,
            ),
            "involvedObject.namespace",
            "Invalid value: \"elsewhere\": does not match event.namespace",
        );
    }

    // ------------------------------------------------------------------------- helpers

    #[test]
    fn quantities() {
        for (input, canonical) in [
            ("1000m", "1"),
            ("0.5", "500m"),
            ("1.5", "1500m"),
            ("1024Mi", "1Gi"),
            ("1.5Gi", "1536Mi"),
            ("1536Mi", "1536Mi"),
            ("2000", "2k"),
            ("1e3", "1e3"),
            ("129e6", "129e6"),
            ("128974848", "128974848"),
            ("100Mi", "100Mi"),
            ("0", "0"),
            ("-1", "-1"),
            ("0.1m", "100u"),
        ] {
            let q = parse_quantity(input).unwrap_or_else(|| panic!("{input}"));
            assert_eq!(q.canonical(), canonical, "{input}");
        }
        for bad in ["", "abc", "1.2.3", "5Ki1", "--1", "1e", "1Kb"] {
            assert!(parse_quantity(bad).is_none(), "{bad}");
        }
        let p = pod();
        assert_eq!(quantity_decode_error("", "v1", "Pod", &p), None);
        let bad = with(
            &p,
            "/spec/containers/0/resources",
            json!({"limits": {"cpu": "lots"}}),
        );
        assert_eq!(
            quantity_decode_error("", "v1", "Pod", &bad).as_deref(),
            Some("Pod in version \"v1\" cannot be handled as a Pod: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
        );
    }

    #[test]
    fn cluster_ip_normalization() {
        let mut svc = json!({"spec": {"clusterIP": "None"}});
        normalize_service_cluster_ips(&mut svc, None);
        assert_eq!(svc["spec"]["clusterIPs"], json!(["None"]));
        let old = json!({"spec": {"clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.1"]}});
        let mut svc = json!({"spec": {"clusterIP": "10.0.0.1"}});
        normalize_service_cluster_ips(&mut svc, Some(&old));
        assert_eq!(svc["spec"]["clusterIPs"], json!(["10.0.0.1"]));
        let mut svc = json!({"spec": {"clusterIP": "10.0.0.2", "clusterIPs": ["10.0.0.1"]}});
        normalize_service_cluster_ips(&mut svc, Some(&old));
        assert_eq!(svc["spec"]["clusterIPs"], json!(["10.0.0.2"]));
    }

    #[test]
    fn names_and_quotes() {
        assert_eq!(
            dns1123_label_errors("a.b"),
            vec!["must not contain dots".to_string()]
        );
        assert_eq!(
            dns1123_label_errors(&"a".repeat(64)),
            vec![max_len_error(63)]
        );
        assert!(dns1123_subdomain_errors("a.b-c").is_empty());
        assert_eq!(go_quote("a\"b\n"), "\"a\\\"b\\n\"");
        assert!(valid_port_name_errors("http").is_empty());
        assert_eq!(
            valid_port_name_errors("1234"),
            vec!["must contain at least one letter (a-z)".to_string()]
        );
        assert_eq!(subdomain_name_errors("abc-", true), Vec::<String>::new());
    }

    // ------------------------------------------------- HPA, NetworkPolicy, EndpointSlice, …

    #[test]
    fn more_kinds_table() {
        let hpa = response("defaults/horizontalpodautoscaler-v2.json");
        let np = response("defaults/networkpolicy.json");
        let eps = response("defaults/endpointslice.json");
        let crd = response("defaults/customresourcedefinition.json");
        let ic = json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
            "metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-nginx"}});
        let pv = json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv"},
            "spec": {"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"},
                     "hostPath": {"path": "/tmp/pv"}, "persistentVolumeReclaimPolicy": "Retain"}});
        for base in [&hpa, &np, &eps, &crd, &ic, &pv] {
            assert_eq!(run(base, None), vec![], "valid base {base}");
        }
        type Case<'a> = (&'a Value, &'a str, Value, &'a str, &'a str);
        let cases: Vec<Case> = vec![
            (&hpa, "/spec/maxReplicas", json!(0), "spec.maxReplicas", "Invalid value: 0: must be greater than 0"),
            (&hpa, "/spec/minReplicas", json!(0), "spec.minReplicas", "Invalid value: 0: must be greater than or equal to 1"),
            (&hpa, "/spec/minReplicas", json!(50), "spec.maxReplicas", "must be greater than or equal to `minReplicas`"),
            (&hpa, "/spec/scaleTargetRef/name", json!(""), "spec.scaleTargetRef.name", "Required value"),
            (&hpa, "/spec/scaleTargetRef/kind", json!("a/b"), "spec.scaleTargetRef.kind", "Invalid value: \"a/b\": may not contain '/'"),
            (&hpa, "/spec/metrics", json!([{"type": "Resource"}]), "spec.metrics[0].resource", "Required value: must populate information for the given metric source"),
            (&hpa, "/spec/metrics", json!([{"type": "Bogus"}]), "spec.metrics[0].type", "Unsupported value: \"Bogus\": supported values: \"ContainerResource\", \"External\", \"Object\", \"Pods\", \"Resource\""),
            (&hpa, "/spec/metrics", json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 0}}}]), "spec.metrics[0].resource.target.averageUtilization", "Invalid value: 0: must be greater than 0"),
            (&hpa, "/spec/metrics", json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization"}}}]), "spec.metrics[0].resource.target.averageUtilization", "Required value: must set either a target raw value or a target utilization"),
            (&hpa, "/spec/metrics", json!([{"type": "Pods", "pods": {"metric": {"name": "x"}, "target": {"type": "AverageValue", "averageValue": "1"}}, "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]), "spec.metrics[0].resource", "Forbidden: must populate the given metric source only"),
            (&np, "/spec/policyTypes", json!(["Sideways"]), "spec.policyTypes[0]", "Unsupported value: \"Sideways\": supported values: \"Ingress\", \"Egress\""),
            (&np, "/spec/ingress", json!([{"from": [{}]}]), "spec.ingress[0].from[0]", "Required value: must specify a peer"),
            (&np, "/spec/ingress", json!([{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]}]), "spec.ingress[0].from[0]", "Forbidden: may not specify both ipBlock and another peer"),
            (&np, "/spec/egress", json!([{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["192.168.0.0/16"]}}]}]), "spec.egress[0].to[0].ipBlock.except[0]", "must be a strict subset of `cidr`"),
            (&np, "/spec/ingress", json!([{"ports": [{"port": 80, "endPort": 70}]}]), "spec.ingress[0].ports[0].endPort", "Invalid value: 80: must be greater than or equal to `port`"),
            (&np, "/spec/ingress", json!([{"ports": [{"port": "http", "endPort": 90}]}]), "spec.ingress[0].ports[0].endPort", "Invalid value: 90: may not be specified when `port` is non-numeric"),
            (&np, "/spec/ingress", json!([{"ports": [{"protocol": "ICMP", "port": 1}]}]), "spec.ingress[0].ports[0].protocol", "Unsupported value: \"ICMP\""),
            (&eps, "/addressType", json!("IPX"), "addressType", "Unsupported value: \"IPX\": supported values: \"FQDN\", \"IPv4\", \"IPv6\""),
            (&eps, "/endpoints", json!([{"addresses": []}]), "endpoints[0].addresses", "Required value: must contain at least 1 address"),
            (&eps, "/endpoints", json!([{"addresses": ["300.1.1.1"]}]), "endpoints[0].addresses[0]", "Invalid value: \"300.1.1.1\": must be a valid IPv4 address"),
            (&eps, "/ports", json!([{"name": "a", "protocol": "TCP", "port": 1}, {"name": "a", "protocol": "TCP", "port": 2}]), "ports[1].name", "Duplicate value: \"a\""),
            (&eps, "/ports", json!([{"name": "a", "port": 1}]), "ports[0].protocol", "Required value"),
            (&ic, "/spec/controller", json!("nginx"), "spec.controller", "Invalid value: \"nginx\": must be a domain-prefixed path (such as \"acme.io/foo\")"),
            (&ic, "/spec/controller", json!(""), "spec.controller", "Required value"),
            (&ic, "/spec/parameters", json!({"kind": "X", "name": "y", "scope": "Namespace"}), "spec.parameters.namespace", "Required value: `parameters.scope` is set to 'Namespace'"),
            (&pv, "/spec/accessModes", json!([]), "spec.accessModes", "Required value"),
            (&pv, "/spec/hostPath", Value::Null, "spec", "Required value: must specify a volume type"),
            (&pv, "/spec/nfs", json!({"server": "s", "path": "/p"}), "spec.nfs", "Forbidden: may not specify more than 1 volume type"),
            (&pv, "/spec/persistentVolumeReclaimPolicy", json!("Keep"), "spec.persistentVolumeReclaimPolicy", "Unsupported value: \"Keep\""),
            (&crd, "/metadata/name", json!("widgets.other.example.com"), "metadata.name", "Invalid value: \"widgets.other.example.com\": must be spec.names.plural+\".\"+spec.group"),
            (&crd, "/spec/scope", json!("Global"), "spec.scope", "Unsupported value: \"Global\": supported values: \"Cluster\", \"Namespaced\""),
            (&crd, "/spec/versions/0/storage", json!(false), "spec.versions", "must have exactly one version marked as storage version"),
            (&crd, "/spec/versions/0/schema", Value::Null, "spec.versions[0].schema.openAPIV3Schema", "Required value: schemas are required"),
            (&crd, "/spec/versions/0/name", json!("V1"), "spec.versions[0].name", "Invalid value: \"V1\": a DNS-1035 label must consist of lower case alphanumeric characters"),
            (&crd, "/spec/names/listKind", json!("Widget"), "spec.names.listKind", "Invalid value: \"Widget\": kind and listKind may not be the same"),
            (&crd, "/spec/names/kind", json!("Wid_get"), "spec.names.kind", "may have mixed case, but should otherwise match: "),
        ];
        for (base, ptr, value, field, message) in cases {
            let obj = with(base, ptr, value);
            let got = run(&obj, None);
            assert!(
                got.iter().any(|(f, m)| f == field && m.contains(message)),
                "{ptr}: want {field}: {message}, got {got:?}"
            );
        }
        // IngressClass: the controller is immutable.
        let changed = with(&ic, "/spec/controller", json!("example.com/other"));
        let got = run(&changed, Some(&ic));
        assert!(
            got.iter()
                .any(|(f, m)| f == "spec.controller" && m.ends_with("field is immutable")),
            "{got:?}"
        );
        // HPA v1: targetCPUUtilizationPercentage.
        let v1 = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "h"}, "spec": {"maxReplicas": 3, "targetCPUUtilizationPercentage": 0,
            "scaleTargetRef": {"kind": "Deployment", "name": "d", "apiVersion": "apps/v1"}}});
        assert_eq!(
            run(&v1, None),
            vec![(
                "spec.targetCPUUtilizationPercentage".to_string(),
                "Invalid value: 0: must be greater than 0".to_string()
            )]
        );
    }
}
