//! Pod events (Pulling, Pulled, Created, Started, Killing, BackOff, Failed) as upstream's
//! kubelet records them, so `kubectl describe pod` reads the same. Writes are fire-and-forget.

use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::Api;
use serde_json::json;

/// Records events for pods on one node.
#[derive(Clone)]
pub struct Recorder {
    client: kube::Client,
    node: String,
}

impl Recorder {
    pub fn new(client: kube::Client, node: &str) -> Self {
        Self {
            client,
            node: node.to_string(),
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
        let event = json!({
            "metadata": {
                "name": format!("{name}.{:x}", Timestamp::now().as_nanosecond()),
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
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        tokio::spawn(async move {
            if let Err(e) = api.create(&PostParams::default(), &event).await {
                tracing::debug!(error = %e, "recording an event");
            }
        });
    }
}
