//! Pod events (Pulling, Pulled, Created, Started, Killing, BackOff, Failed) as upstream's
//! kubelet records them, so `kubectl describe pod` reads the same. Writes are fire-and-forget.
//! A repeat of an event (same object, container, type, reason and message) bumps the `count`
//! and `lastTimestamp` of the first one, as upstream's event correlator does, so a probe that
//! keeps failing does not write a new Event every period.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::Api;
use serde_json::json;

/// Records events for pods on one node.
#[derive(Clone)]
pub struct Recorder {
    client: kube::Client,
    node: String,
    /// Recorded events by what makes them the same: (event name, count).
    seen: Arc<Mutex<HashMap<String, (String, i32)>>>,
}

/// How many distinct events the recorder remembers for aggregation before it starts afresh.
const MAX_REMEMBERED: usize = 4096;

impl Recorder {
    pub fn new(client: kube::Client, node: &str) -> Self {
        Self {
            client,
            node: node.to_string(),
            seen: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Records an event about `pod` (and its `container`, if any) in the background.
    pub fn record(
        &self,
        pod: &Pod,
        container: Option<&str>,
        warning: bool,
        reason: &str,
        message: String,
    ) {
        let m = &pod.metadata;
        let namespace = m.namespace.clone().unwrap_or_default();
        let name = m.name.clone().unwrap_or_default();
        let now = Time(Timestamp::now());
        let spec = pod.spec.as_ref();
        let is_init = spec
            .and_then(|s| s.init_containers.as_ref())
            .is_some_and(|l| l.iter().any(|c| Some(c.name.as_str()) == container));
        let field_path = container.map(|c| {
            let list = if is_init {
                "initContainers"
            } else {
                "containers"
            };
            format!("spec.{list}{{{c}}}")
        });
        let key = format!(
            "{namespace}/{name}/{}/{}/{warning}/{reason}/{message}",
            m.uid.as_deref().unwrap_or_default(),
            field_path.as_deref().unwrap_or_default()
        );
        let event_name = format!("{name}.{:x}", Timestamp::now().as_nanosecond());
        let repeat = {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            if seen.len() >= MAX_REMEMBERED {
                seen.clear();
            }
            let entry = seen.entry(key).or_insert_with(|| (event_name.clone(), 0));
            entry.1 += 1;
            (entry.1 > 1).then(|| entry.clone())
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        if let Some((existing, count)) = repeat {
            let patch = json!({"count": count, "lastTimestamp": now});
            tokio::spawn(async move {
                let params = PatchParams::default();
                if let Err(e) = api.patch(&existing, &params, &Patch::Merge(&patch)).await {
                    tracing::debug!(error = %e, "updating a repeated event");
                }
            });
            return;
        }
        let event = json!({
            "metadata": {
                "name": event_name,
                "namespace": namespace,
            },
            "involvedObject": {
                "apiVersion": "v1", "kind": "Pod", "name": name, "namespace": namespace,
                "uid": m.uid, "resourceVersion": m.resource_version, "fieldPath": field_path,
            },
            "reason": reason,
            "message": message,
            "type": if warning { "Warning" } else { "Normal" },
            "source": {"component": "kubelet", "host": self.node},
            "reportingComponent": "kubelet",
            "reportingInstance": self.node,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        });
        let Ok(event) = serde_json::from_value::<Event>(event) else {
            return;
        };
        tokio::spawn(async move {
            if let Err(e) = api.create(&PostParams::default(), &event).await {
                tracing::debug!(error = %e, "recording an event");
            }
        });
    }
}
