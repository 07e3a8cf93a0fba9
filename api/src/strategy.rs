//! Per-kind strategy: what differs between kinds on the one generic store path
//! (name rules, status handling, generation tracking, create/update preparation,
//! validation, graceful deletion).

use serde_json::{json, Map, Value};

use crate::errors::Cause;
use crate::meta::{self, NameRule};
use crate::resources::ResourceInfo;

/// The strategy of one resource, derived from its table entry.
#[derive(Debug, Clone)]
pub struct Strategy {
    pub group: String,
    pub version: String,
    pub resource: String,
    pub kind: String,
    pub has_status: bool,
    pub tracks_generation: bool,
    pub name_rule: NameRule,
    /// DELETE answers the deleted object rather than a Status.
    pub returns_deleted_object: bool,
    /// Custom resources: everything but metadata/status is "spec".
    pub custom: bool,
}

/// Built-in resources whose objects carry `metadata.generation`.
const GENERATION_TRACKED: &[(&str, &str)] = &[
    ("", "pods"),
    ("", "replicationcontrollers"),
    ("apps", "deployments"),
    ("apps", "replicasets"),
    ("apps", "statefulsets"),
    ("apps", "daemonsets"),
    ("batch", "jobs"),
    ("batch", "cronjobs"),
    ("networking.k8s.io", "ingresses"),
    ("networking.k8s.io", "networkpolicies"),
    ("networking.k8s.io", "ingressclasses"),
    ("policy", "poddisruptionbudgets"),
    ("scheduling.k8s.io", "priorityclasses"),
    ("discovery.k8s.io", "endpointslices"),
    ("apiextensions.k8s.io", "customresourcedefinitions"),
    (
        "admissionregistration.k8s.io",
        "validatingwebhookconfigurations",
    ),
    (
        "admissionregistration.k8s.io",
        "mutatingwebhookconfigurations",
    ),
    (
        "admissionregistration.k8s.io",
        "validatingadmissionpolicies",
    ),
    (
        "admissionregistration.k8s.io",
        "validatingadmissionpolicybindings",
    ),
    ("admissionregistration.k8s.io", "mutatingadmissionpolicies"),
    (
        "admissionregistration.k8s.io",
        "mutatingadmissionpolicybindings",
    ),
    ("flowcontrol.apiserver.k8s.io", "flowschemas"),
    (
        "flowcontrol.apiserver.k8s.io",
        "prioritylevelconfigurations",
    ),
    ("resource.k8s.io", "deviceclasses"),
    ("resource.k8s.io", "resourceclaims"),
    ("resource.k8s.io", "resourceclaimtemplates"),
    ("resource.k8s.io", "resourceslices"),
];

/// Resources whose DELETE answers the deleted object (upstream's `ReturnDeletedObject`);
/// the others answer a `Status` once the object is gone.
const RETURNS_DELETED_OBJECT: &[(&str, &str)] = &[
    ("", "pods"),
    ("", "services"),
    ("", "persistentvolumeclaims"),
    ("", "persistentvolumes"),
    ("", "podtemplates"),
    ("", "resourcequotas"),
    ("", "serviceaccounts"),
];

/// Resources named by DNS-1123 labels.
const LABEL_NAMED: &[(&str, &str)] = &[("", "namespaces"), ("", "replicationcontrollers")];
/// Resources named by DNS-1035 labels.
const DNS1035_NAMED: &[(&str, &str)] = &[("", "services")];
/// Resources whose names are only path segments (RBAC and a few others).
const PATH_SEGMENT_NAMED: &[(&str, &str)] = &[
    ("rbac.authorization.k8s.io", "roles"),
    ("rbac.authorization.k8s.io", "rolebindings"),
    ("rbac.authorization.k8s.io", "clusterroles"),
    ("rbac.authorization.k8s.io", "clusterrolebindings"),
    ("", "serviceaccounts"),
];

fn listed(table: &[(&str, &str)], group: &str, resource: &str) -> bool {
    table.iter().any(|(g, r)| *g == group && *r == resource)
}

/// Custom resources are not in the built-in table of kinds with known groups.
fn is_builtin_group(group: &str) -> bool {
    group.is_empty() || !group.contains('.') || group.ends_with(".k8s.io")
}

impl Strategy {
    pub fn for_resource(info: &ResourceInfo) -> Strategy {
        let (g, r) = (info.group.as_str(), info.plural.as_str());
        let custom = !is_builtin_group(g);
        let name_rule = if listed(LABEL_NAMED, g, r) {
            NameRule::Dns1123Label
        } else if listed(DNS1035_NAMED, g, r) {
            NameRule::Dns1035Label
        } else if listed(PATH_SEGMENT_NAMED, g, r) {
            NameRule::PathSegment
        } else {
            NameRule::Dns1123Subdomain
        };
        Strategy {
            group: g.to_string(),
            version: info.version.clone(),
            resource: r.to_string(),
            kind: info.kind.clone(),
            has_status: info.has_status(),
            tracks_generation: custom || listed(GENERATION_TRACKED, g, r),
            name_rule,
            returns_deleted_object: listed(RETURNS_DELETED_OBJECT, g, r)
                || g == "resource.k8s.io"
                || g == "storage.k8s.io",
            custom,
        }
    }

    fn is(&self, group: &str, resource: &str) -> bool {
        self.group == group && self.resource == resource
    }

    /// Sets system fields and kind-specific state on a new object.
    pub fn prepare_for_create(&self, obj: &mut Value) {
        if let Some(m) = meta::metadata_mut(obj) {
            if self.tracks_generation {
                m.insert("generation".into(), json!(1));
            } else {
                m.remove("generation");
            }
            m.remove("deletionTimestamp");
            m.remove("deletionGracePeriodSeconds");
        }
        let Some(o) = obj.as_object_mut() else { return };
        if self.has_status && !self.is("", "nodes") {
            o.remove("status");
        }
        if self.is("", "namespaces") {
            let finalizers = o
                .get("spec")
                .and_then(|s| s.get("finalizers"))
                .cloned()
                .unwrap_or_else(|| json!(["kubernetes"]));
            o.insert("spec".into(), json!({ "finalizers": finalizers }));
            o.insert("status".into(), json!({"phase": "Active"}));
        } else if self.is("", "pods") {
            o.insert(
                "status".into(),
                json!({"phase": "Pending", "qosClass": qos_class(o.get("spec"))}),
            );
        } else if self.is("", "secrets") {
            fold_string_data(o);
            if o.get("type")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                o.insert("type".into(), json!("Opaque"));
            }
        }
    }

    /// Carries over what an update may not change.
    /// `subresource` is `Some("status")` for writes to the status subresource.
    pub fn prepare_for_update(&self, new: &mut Value, old: &Value, subresource: Option<&str>) {
        let status_write = subresource == Some("status");
        if subresource == Some("finalize") {
            // Only spec.finalizers changes through namespaces/finalize.
            let finalizers = new.get("spec").and_then(|s| s.get("finalizers")).cloned();
            let rv = new
                .get("metadata")
                .and_then(|m| m.get("resourceVersion"))
                .cloned();
            *new = old.clone();
            if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
                match finalizers {
                    Some(f) => spec.insert("finalizers".into(), f),
                    None => spec.remove("finalizers"),
                };
            }
            if let (Some(rv), Some(m)) = (rv, meta::metadata_mut(new)) {
                m.insert("resourceVersion".into(), rv);
            }
            return;
        }
        if let (Some(n), Some(o)) = (new.as_object_mut(), old.as_object()) {
            if status_write {
                // Only status (and, as upstream allows, nothing else) changes.
                let status = n.remove("status");
                let mut merged = o.clone();
                match status {
                    Some(s) => {
                        merged.insert("status".into(), s);
                    }
                    None => {
                        merged.remove("status");
                    }
                }
                // Keep the caller's resourceVersion for the optimistic-concurrency check,
                // and the managedFields this write recorded.
                let rv = n
                    .get("metadata")
                    .and_then(|m| m.get("resourceVersion"))
                    .cloned();
                let managed = n
                    .get("metadata")
                    .and_then(|m| m.get("managedFields"))
                    .cloned();
                *n = merged;
                if let Some(m) = n.get_mut("metadata").and_then(Value::as_object_mut) {
                    if let Some(rv) = rv {
                        m.insert("resourceVersion".into(), rv);
                    }
                    if let Some(mf) = managed {
                        m.insert("managedFields".into(), mf);
                    }
                }
            } else if self.has_status && subresource != Some("binding") {
                match o.get("status") {
                    Some(s) => {
                        n.insert("status".into(), s.clone());
                    }
                    None => {
                        n.remove("status");
                    }
                }
            }
            if self.is("", "secrets") {
                fold_string_data(n);
            }
        }
        // Immutable system metadata.
        let old_meta = old.get("metadata").cloned().unwrap_or_else(|| json!({}));
        if let Some(m) = meta::metadata_mut(new) {
            for key in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "name",
                "namespace",
            ] {
                match old_meta.get(key) {
                    Some(v) => {
                        m.insert(key.into(), v.clone());
                    }
                    None => {
                        m.remove(key);
                    }
                }
            }
            if old_meta.get("generateName").is_some() && !m.contains_key("generateName") {
                // generateName may be cleared; nothing to carry.
            }
        }
        if self.tracks_generation && !status_write && Self::spec_changed(new, old) {
            let gen = old_meta
                .get("generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            if let Some(m) = meta::metadata_mut(new) {
                m.insert("generation".into(), json!(gen + 1));
            }
        }
    }

    /// Whether anything other than metadata and status differs.
    fn spec_changed(new: &Value, old: &Value) -> bool {
        // Compared in place: copies of both objects cost more than the comparison.
        fn fields(v: &Value) -> impl Iterator<Item = (&String, &Value)> {
            const NOT_SPEC: [&str; 4] = ["metadata", "status", "kind", "apiVersion"];
            v.as_object()
                .into_iter()
                .flatten()
                .filter(|(k, _)| !NOT_SPEC.contains(&k.as_str()))
        }
        let old_map = old.as_object();
        fields(new).count() != fields(old).count()
            || fields(new).any(|(k, v)| old_map.and_then(|o| o.get(k)) != Some(v))
    }

    /// Kind-specific validation of a new or updated object.
    pub fn validate(&self, obj: &Value, old: Option<&Value>) -> Vec<Cause> {
        let mut causes = Vec::new();
        if let Some(m) = obj.get("metadata").and_then(Value::as_object) {
            causes.extend(meta::validate_labels_annotations(m, "metadata"));
            if let Some(f) = m.get("finalizers") {
                if !f.is_array() && !f.is_null() {
                    causes.push(Cause::invalid(
                        "metadata.finalizers",
                        f,
                        "must be a list of strings",
                    ));
                }
            }
        }
        causes.extend(crate::validation::validate(
            &self.group,
            &self.version,
            &self.kind,
            obj,
            old,
        ));
        causes
    }

    /// Whether a delete of this object waits for a graceful termination instead of
    /// removing it at once (pods bound to a node).
    pub fn graceful_delete_seconds(&self, obj: &Value, requested: Option<i64>) -> Option<i64> {
        if !self.is("", "pods") {
            return None;
        }
        let spec = obj.get("spec")?;
        spec.get("nodeName")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())?;
        let status_phase = obj
            .get("status")
            .and_then(|s| s.get("phase"))
            .and_then(Value::as_str);
        if matches!(status_phase, Some("Succeeded") | Some("Failed")) {
            return None;
        }
        let grace = requested.unwrap_or_else(|| {
            spec.get("terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(30)
        });
        (grace > 0).then_some(grace)
    }
}

/// `stringData` is folded into base64 `data` (write-only field).
fn fold_string_data(o: &mut Map<String, Value>) {
    use base64::Engine;
    let Some(Value::Object(sd)) = o.remove("stringData") else {
        return;
    };
    let data = o.entry("data").or_insert_with(|| Value::Object(Map::new()));
    if !data.is_object() {
        *data = Value::Object(Map::new());
    }
    if let Some(d) = data.as_object_mut() {
        for (k, v) in sd {
            let s = v.as_str().unwrap_or_default();
            d.insert(
                k,
                json!(base64::engine::general_purpose::STANDARD.encode(s.as_bytes())),
            );
        }
    }
}

/// The QoS class of a pod spec (Guaranteed / Burstable / BestEffort).
pub fn qos_class(spec: Option<&Value>) -> &'static str {
    let containers: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .filter_map(|f| spec.and_then(|s| s.get(*f)).and_then(Value::as_array))
        .flatten()
        .collect();
    let mut any = false;
    let mut guaranteed = !containers.is_empty();
    for c in &containers {
        let res = c.get("resources");
        let req = res
            .and_then(|r| r.get("requests"))
            .and_then(Value::as_object);
        let lim = res.and_then(|r| r.get("limits")).and_then(Value::as_object);
        let relevant = |m: Option<&Map<String, Value>>| {
            m.map(|m| {
                m.iter()
                    .filter(|(k, _)| *k == "cpu" || *k == "memory")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<Map<String, Value>>()
            })
            .unwrap_or_default()
        };
        let (r, l) = (relevant(req), relevant(lim));
        if !r.is_empty() || !l.is_empty() {
            any = true;
        }
        let limits_complete = l.contains_key("cpu") && l.contains_key("memory");
        let requests_match = r.iter().all(|(k, v)| l.get(k) == Some(v));
        if !limits_complete || !requests_match {
            guaranteed = false;
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_changed_ignores_metadata_status_and_type() {
        let a = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a"},
            "spec": {"replicas": 1}, "status": {"replicas": 0}});
        let mut b = a.clone();
        b["metadata"]["labels"] = json!({"x": "y"});
        b["status"] = json!({"replicas": 1});
        b["apiVersion"] = json!("apps/v1beta2");
        assert!(!Strategy::spec_changed(&b, &a));
        b["spec"]["replicas"] = json!(2);
        assert!(Strategy::spec_changed(&b, &a));
        let mut c = a.clone();
        c["template"] = json!({});
        assert!(Strategy::spec_changed(&c, &a) && Strategy::spec_changed(&a, &c));
        assert!(!Strategy::spec_changed(
            &json!(null),
            &json!({"metadata": {}})
        ));
    }

    #[test]
    fn qos() {
        assert_eq!(
            qos_class(Some(&json!({"containers":[{"name":"a"}]}))),
            "BestEffort"
        );
        assert_eq!(
            qos_class(Some(
                &json!({"containers":[{"name":"a","resources":{"limits":{"cpu":"1","memory":"1Gi"}}}]})
            )),
            "Guaranteed"
        );
        assert_eq!(
            qos_class(Some(
                &json!({"containers":[{"name":"a","resources":{"requests":{"cpu":"1"}}}]})
            )),
            "Burstable"
        );
    }

    #[test]
    fn secret_string_data_folds() {
        let mut o = json!({"stringData": {"a": "hi"}})
            .as_object()
            .cloned()
            .unwrap();
        fold_string_data(&mut o);
        assert_eq!(o["data"]["a"], "aGk=");
        assert!(o.get("stringData").is_none());
    }
}
