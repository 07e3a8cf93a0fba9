//! NodeResourcesFit: the pod's requests fit the node's allocatable minus what its pods (and
//! pods nominated there with at least this priority) request; scored LeastAllocated.

use std::collections::HashMap;

use super::{state, Failure, FilterResult, Plugin, State, MAX_NODE_SCORE};
use crate::cache::Cache;
use crate::model::{NodeInfo, PodInfo};
use crate::resources::Resources;

pub struct NodeResourcesFit;

/// Requests of nominated pods per node that this pod must leave room for.
struct Nominated(HashMap<String, (Resources, usize)>);

impl Plugin for NodeResourcesFit {
    fn name(&self) -> &'static str {
        "NodeResourcesFit"
    }

    fn prepare(&self, pod: &PodInfo, cache: &Cache) -> State {
        if cache.nominated.is_empty() {
            return None;
        }
        let mut m = HashMap::new();
        for (node, pods) in &cache.nominated {
            for p in pods
                .iter()
                .filter(|p| p.uid != pod.uid && p.priority >= pod.priority)
            {
                let e: &mut (Resources, usize) = m.entry(node.clone()).or_default();
                e.0.add(&p.requests);
                e.1 += 1;
            }
        }
        Some(Box::new(Nominated(m)))
    }

    fn filter(&self, pod: &PodInfo, node: &NodeInfo, st: &State) -> FilterResult {
        let nominated = state::<Nominated>(st).and_then(|n| n.0.get(&node.name));
        let count = node.pods.len();
        match nominated {
            None => fits(&pod.requests, &node.allocatable, &node.requested, count),
            Some((r, c)) => {
                let mut used = node.requested.clone();
                used.add(r);
                fits(&pod.requests, &node.allocatable, &used, count + c)
            }
        }
    }

    fn weight(&self) -> i64 {
        1
    }

    fn score(&self, pod: &PodInfo, node: &NodeInfo, _: &State) -> i64 {
        let least = |req: i64, alloc: i64| {
            if alloc == 0 || req > alloc {
                0
            } else {
                (alloc - req) * MAX_NODE_SCORE / alloc
            }
        };
        let cpu = least(
            node.non_zero_requested.0 + pod.non_zero.0,
            node.allocatable.milli_cpu,
        );
        let mem = least(
            node.non_zero_requested.1 + pod.non_zero.1,
            node.allocatable.memory,
        );
        (cpu + mem) / 2
    }
}

/// `noderesources.fitsRequest`: one reason per insufficient resource. A request larger than
/// the whole node is unresolvable (no preemption helps).
pub fn fits(req: &Resources, alloc: &Resources, used: &Resources, pods: usize) -> FilterResult {
    let mut reasons = Vec::new();
    let mut unresolvable = false;
    if pods as i64 + 1 > alloc.pods {
        reasons.push("Too many pods".to_string());
    }
    let mut check = |name: &str, want: i64, have: i64, taken: i64| {
        if want > 0 && want > have - taken {
            reasons.push(format!("Insufficient {name}"));
            unresolvable |= want > have;
        }
    };
    check("cpu", req.milli_cpu, alloc.milli_cpu, used.milli_cpu);
    check("memory", req.memory, alloc.memory, used.memory);
    check(
        "ephemeral-storage",
        req.ephemeral_storage,
        alloc.ephemeral_storage,
        used.ephemeral_storage,
    );
    for (name, want) in &req.scalar {
        check(name, *want, alloc.scalar(name), used.scalar(name));
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(Failure {
            unresolvable,
            reasons,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testutil::*;
    use serde_json::json;

    fn req(cpu: &str) -> serde_json::Value {
        json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": "1Gi"}}}]})
    }

    #[test]
    fn fit_and_least_allocated() {
        let mut c = cache(vec![
            node("small", json!({}), "1", json!({})),
            node("big", json!({}), "4", json!({})),
        ]);
        place(&mut c, &pod("x", json!({}), req("500m")), "small");
        let n = |name: &str| {
            c.node(name)
                .map(|n| n.clone_for_simulation())
                .unwrap_or_default()
        };
        let p = pod("p", json!({}), req("600m"));
        let err = NodeResourcesFit.filter(&p, &n("small"), &None);
        assert_eq!(err, Err(Failure::unschedulable("Insufficient cpu")));
        assert!(NodeResourcesFit.filter(&p, &n("big"), &None).is_ok());
        let huge = pod("h", json!({}), req("8"));
        assert!(NodeResourcesFit
            .filter(&huge, &n("big"), &None)
            .is_err_and(|f| f.unresolvable));
        let gpu = pod(
            "g",
            json!({}),
            json!({"containers": [{"name": "c", "resources": {"requests": {"example.com/gpu": "1"}}}]}),
        );
        assert_eq!(
            NodeResourcesFit.filter(&gpu, &n("big"), &None),
            Err(Failure::unresolvable("Insufficient example.com/gpu"))
        );
        // big: cpu (4000-600)/4000 → 85, memory (8Gi-1Gi)/8Gi → 87.
        assert_eq!(NodeResourcesFit.score(&p, &n("big"), &None), 86);
        assert!(NodeResourcesFit.score(&p, &n("small"), &None) < 86);
    }
}
