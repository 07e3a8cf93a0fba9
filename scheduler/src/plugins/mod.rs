//! The plugins of kube-scheduler's default profile, each one [`Plugin`]: an optional filter and
//! an optional weighted score, with per-pod precomputation in `prepare`/`prepare_score`.

use std::any::Any;

use crate::cache::Cache;
use crate::model::{NodeInfo, PodInfo};

mod balanced_allocation;
mod image_locality;
mod inter_pod_affinity;
mod node_affinity;
mod node_name;
mod node_ports;
mod node_resources_fit;
mod node_unschedulable;
mod pod_topology_spread;
mod taint_toleration;
pub mod volumes;

pub use balanced_allocation::BalancedAllocation;
pub use image_locality::ImageLocality;
pub use inter_pod_affinity::InterPodAffinity;
pub use node_affinity::NodeAffinity;
pub use node_name::NodeName;
pub use node_ports::NodePorts;
pub use node_resources_fit::NodeResourcesFit;
pub use node_unschedulable::NodeUnschedulable;
pub use pod_topology_spread::PodTopologySpread;
pub use taint_toleration::TaintToleration;
pub use volumes::{VolumeBinding, VolumeRestrictions, VolumeZone};

/// The highest score a plugin gives a node.
pub const MAX_NODE_SCORE: i64 = 100;

/// Data a plugin computes once per pod and reads back for every node.
pub type State = Option<Box<dyn Any + Send + Sync>>;

/// Reads a plugin's own state back.
pub fn state<T: 'static>(s: &State) -> Option<&T> {
    s.as_ref().and_then(|b| b.downcast_ref::<T>())
}

/// Why a node cannot take the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Removing pods (preemption) cannot change the answer
    /// (upstream's `UnschedulableAndUnresolvable`).
    pub unresolvable: bool,
    /// Messages as upstream words them; each counts once in the `0/N nodes` summary.
    pub reasons: Vec<String>,
}

impl Failure {
    pub fn unschedulable(reason: impl Into<String>) -> Self {
        Failure {
            unresolvable: false,
            reasons: vec![reason.into()],
        }
    }
    pub fn unresolvable(reason: impl Into<String>) -> Self {
        Failure {
            unresolvable: true,
            reasons: vec![reason.into()],
        }
    }
}

pub type FilterResult = Result<(), Failure>;

/// One scheduling plugin: filters a node, scores it, or both.
pub trait Plugin: Send + Sync {
    fn name(&self) -> &'static str;

    /// Per-pod precomputation for [`filter`](Self::filter).
    fn prepare(&self, _pod: &PodInfo, _cache: &Cache) -> State {
        None
    }

    /// Upstream's PreFilter: [`prepare`](Self::prepare), or a failure that rejects the pod
    /// on every node before any is looked at.
    fn pre_filter(&self, pod: &PodInfo, cache: &Cache) -> Result<State, Failure> {
        Ok(self.prepare(pod, cache))
    }

    fn filter(&self, _pod: &PodInfo, _node: &NodeInfo, _state: &State) -> FilterResult {
        Ok(())
    }

    /// The score's weight in the profile; 0 means "not a score plugin".
    fn weight(&self) -> i64 {
        0
    }

    /// Per-pod precomputation for scoring over the feasible nodes.
    fn prepare_score(&self, _pod: &PodInfo, _cache: &Cache, _feasible: &[&NodeInfo]) -> State {
        None
    }

    /// A raw score; [`normalize`](Self::normalize) maps the scores of all feasible nodes to
    /// `0..=MAX_NODE_SCORE`.
    fn score(&self, _pod: &PodInfo, _node: &NodeInfo, _state: &State) -> i64 {
        0
    }

    fn normalize(&self, _scores: &mut [i64], _state: &State) {}
}

/// The default profile, filters in upstream's order.
pub fn default_profile() -> Vec<Box<dyn Plugin>> {
    vec![
        Box::new(NodeUnschedulable),
        Box::new(NodeName),
        Box::new(TaintToleration),
        Box::new(NodeAffinity),
        Box::new(NodePorts),
        Box::new(NodeResourcesFit),
        Box::new(VolumeRestrictions),
        Box::new(VolumeBinding),
        Box::new(VolumeZone),
        Box::new(PodTopologySpread),
        Box::new(InterPodAffinity),
        Box::new(BalancedAllocation),
        Box::new(ImageLocality),
    ]
}

/// `helper.DefaultNormalizeScore`: scales to `0..=max` by the largest score, optionally reversed.
pub fn default_normalize(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0);
    if max == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = MAX_NODE_SCORE);
        }
        return;
    }
    for s in scores.iter_mut() {
        let v = MAX_NODE_SCORE * *s / max;
        *s = if reverse { MAX_NODE_SCORE - v } else { v };
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Small builders for plugin unit tests.
    use std::sync::Arc;

    use k8s_openapi::api::core::v1::{Node, Pod};
    use serde_json::{json, Value};

    use crate::cache::Cache;
    use crate::model::PodInfo;

    pub fn node(name: &str, labels: Value, cpu: &str, extra_spec: Value) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": labels},
            "spec": extra_spec,
            "status": {"allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"}}
        }))
        .unwrap_or_default()
    }

    pub fn pod(name: &str, labels: Value, spec: Value) -> Arc<PodInfo> {
        let mut spec = spec;
        if spec.get("containers").is_none() {
            spec["containers"] = json!([{"name": "c", "image": "busybox"}]);
        }
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "uid": name, "labels": labels},
            "spec": spec
        }))
        .unwrap_or_default();
        PodInfo::new(p)
    }

    pub fn cache(nodes: Vec<Node>) -> Cache {
        let mut c = Cache::default();
        for n in nodes {
            c.upsert_node(n);
        }
        c
    }

    /// Binds `p` to `node` in the cache.
    pub fn place(c: &mut Cache, p: &Arc<PodInfo>, node: &str) {
        c.upsert_pod(p.assumed_on(node));
    }
}
