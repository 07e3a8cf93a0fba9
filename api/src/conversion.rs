//! Resources that share storage across API groups, and the conversion between their forms.
//! `events.k8s.io/v1` Events live with the core `v1` Events (as upstream stores both under
//! one prefix), so `kubectl get events` and `kubectl describe` see what either API wrote.

use serde_json::{Map, Value};

/// `events.k8s.io/v1` field ⇄ core `v1` field.
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

fn is_events_v1(group: &str, resource: &str) -> bool {
    group == "events.k8s.io" && resource == "events"
}

/// The API group whose storage holds `group/resource` (itself, except for shared storage).
pub fn storage_group<'a>(group: &'a str, resource: &str) -> &'a str {
    if is_events_v1(group, resource) {
        ""
    } else {
        group
    }
}

fn rename(obj: &mut Value, pairs: impl Iterator<Item = (&'static str, &'static str)>) {
    let Some(o) = obj.as_object_mut() else { return };
    let mut moved = Map::new();
    for (from, to) in pairs {
        if let Some(v) = o.remove(from) {
            moved.insert(to.to_string(), v);
        }
    }
    o.extend(moved);
}

/// Whether the stored form of `group/resource` differs from the served one.
pub fn converts(group: &str, resource: &str) -> bool {
    is_events_v1(group, resource)
}

/// Converts an object of `group/resource` into its stored form.
pub fn to_storage(group: &str, resource: &str, obj: &mut Value) {
    if is_events_v1(group, resource) {
        rename(obj, EVENT_FIELDS.iter().copied());
    }
}

/// Converts a stored object into the form `group/resource` serves.
pub fn from_storage(group: &str, resource: &str, obj: &mut Value) {
    if is_events_v1(group, resource) {
        rename(obj, EVENT_FIELDS.iter().map(|(a, b)| (*b, *a)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_round_trip() {
        let v1 = json!({"regarding": {"kind": "Pod", "name": "p"}, "note": "Successfully assigned", "reason": "Scheduled", "reportingController": "default-scheduler"});
        let mut stored = v1.clone();
        to_storage("events.k8s.io", "events", &mut stored);
        assert_eq!(stored["involvedObject"]["name"], "p");
        assert_eq!(stored["message"], "Successfully assigned");
        assert_eq!(stored["reportingComponent"], "default-scheduler");
        from_storage("events.k8s.io", "events", &mut stored);
        assert_eq!(stored, v1);
        assert_eq!(storage_group("events.k8s.io", "events"), "");
        assert_eq!(storage_group("apps", "deployments"), "apps");
    }
}
