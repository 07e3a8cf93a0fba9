//! NodeResourcesBalancedAllocation: prefers nodes whose cpu and memory use stay even.

use super::{Plugin, State, MAX_NODE_SCORE};
use crate::model::{NodeInfo, PodInfo};

pub struct BalancedAllocation;

impl Plugin for BalancedAllocation {
    fn name(&self) -> &'static str {
        "NodeResourcesBalancedAllocation"
    }

    fn weight(&self) -> i64 {
        1
    }

    fn score(&self, pod: &PodInfo, node: &NodeInfo, _: &State) -> i64 {
        let r = &pod.requests;
        if r.milli_cpu == 0 && r.memory == 0 {
            return 0;
        }
        let frac = |req: i64, alloc: i64| {
            if alloc == 0 {
                1.0
            } else {
                (req as f64 / alloc as f64).min(1.0)
            }
        };
        let cpu = frac(
            node.requested.milli_cpu + r.milli_cpu,
            node.allocatable.milli_cpu,
        );
        let mem = frac(node.requested.memory + r.memory, node.allocatable.memory);
        let std = (cpu - mem).abs() / 2.0;
        ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testutil::*;
    use serde_json::json;

    #[test]
    fn balanced_beats_skewed() {
        let c = cache(vec![node("n", json!({}), "4", json!({}))]);
        let n = c
            .node("n")
            .map(|n| n.clone_for_simulation())
            .unwrap_or_default();
        let even = pod(
            "e",
            json!({}),
            json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": "2", "memory": "4Gi"}}}]}),
        );
        let skew = pod(
            "s",
            json!({}),
            json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": "4", "memory": "0"}}}]}),
        );
        assert_eq!(BalancedAllocation.score(&even, &n, &None), 100);
        assert_eq!(BalancedAllocation.score(&skew, &n, &None), 50);
    }
}
