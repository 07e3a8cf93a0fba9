//! NodeUnschedulable: `spec.unschedulable` nodes take only pods tolerating
//! `node.kubernetes.io/unschedulable:NoSchedule`.

use k8s_openapi::api::core::v1::Taint;

use super::{Failure, FilterResult, Plugin, State};
use crate::model::{tolerates, NodeInfo, PodInfo};

pub struct NodeUnschedulable;

impl Plugin for NodeUnschedulable {
    fn name(&self) -> &'static str {
        "NodeUnschedulable"
    }

    fn filter(&self, pod: &PodInfo, node: &NodeInfo, _: &State) -> FilterResult {
        if !node.unschedulable {
            return Ok(());
        }
        let taint = Taint {
            key: "node.kubernetes.io/unschedulable".into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        };
        if pod.tolerations().iter().any(|t| tolerates(t, &taint)) {
            return Ok(());
        }
        Err(Failure::unresolvable("node(s) were unschedulable"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testutil::*;
    use serde_json::json;

    #[test]
    fn cordoned_node_needs_toleration() {
        let c = cache(vec![node(
            "n",
            json!({}),
            "1",
            json!({"unschedulable": true}),
        )]);
        let n = c
            .node("n")
            .map(|n| n.clone_for_simulation())
            .unwrap_or_default();
        let plain = pod("p", json!({}), json!({}));
        assert!(NodeUnschedulable.filter(&plain, &n, &None).is_err());
        let tolerant = pod(
            "q",
            json!({}),
            json!({"tolerations": [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists"}]}),
        );
        assert!(NodeUnschedulable.filter(&tolerant, &n, &None).is_ok());
    }
}
