//! NodePorts: a host port (ip, protocol, port) is held by at most one pod per node.

use super::{Failure, FilterResult, Plugin, State};
use crate::model::{NodeInfo, PodInfo};

pub struct NodePorts;

impl Plugin for NodePorts {
    fn name(&self) -> &'static str {
        "NodePorts"
    }

    fn filter(&self, pod: &PodInfo, node: &NodeInfo, _: &State) -> FilterResult {
        let conflict = pod
            .host_ports
            .iter()
            .any(|want| node.host_ports.iter().any(|used| used.conflicts(want)));
        if conflict {
            return Err(Failure::unschedulable(
                "node(s) didn't have free ports for the requested pod ports",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testutil::*;
    use serde_json::json;

    #[test]
    fn host_port_conflicts() {
        let mut c = cache(vec![node("n", json!({}), "4", json!({}))]);
        let spec = |ip: &str| json!({"containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080, "hostIP": ip}]}]});
        let first = pod("a", json!({}), spec(""));
        place(&mut c, &first, "n");
        let n = c
            .node("n")
            .map(|n| n.clone_for_simulation())
            .unwrap_or_default();
        assert!(NodePorts
            .filter(&pod("b", json!({}), spec("10.0.0.1")), &n, &None)
            .is_err());
        let other = pod(
            "c",
            json!({}),
            json!({"containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080, "protocol": "UDP"}]}]}),
        );
        assert!(NodePorts.filter(&other, &n, &None).is_ok());
    }
}
