//! NodeAffinity: `nodeSelector` and required node affinity filter; preferred terms score.

use super::{default_normalize, Failure, FilterResult, Plugin, State};
use crate::model::{node_term_matches, pod_matches_node_selector, NodeInfo, PodInfo};

pub struct NodeAffinity;

impl Plugin for NodeAffinity {
    fn name(&self) -> &'static str {
        "NodeAffinity"
    }

    fn filter(&self, pod: &PodInfo, node: &NodeInfo, _: &State) -> FilterResult {
        if pod_matches_node_selector(pod, node) {
            Ok(())
        } else {
            Err(Failure::unresolvable(
                "node(s) didn't match Pod's node affinity/selector",
            ))
        }
    }

    fn weight(&self) -> i64 {
        2
    }

    fn score(&self, pod: &PodInfo, node: &NodeInfo, _: &State) -> i64 {
        pod.pod
            .spec
            .as_ref()
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .map(|terms| {
                terms
                    .iter()
                    .filter(|t| t.weight != 0 && node_term_matches(&t.preference, node))
                    .map(|t| i64::from(t.weight))
                    .sum()
            })
            .unwrap_or(0)
    }

    fn normalize(&self, scores: &mut [i64], _: &State) {
        default_normalize(scores, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testutil::*;
    use serde_json::json;

    #[test]
    fn selector_expressions_and_fields() {
        let c = cache(vec![
            node("a", json!({"disk": "ssd", "gen": "5"}), "1", json!({})),
            node("b", json!({"disk": "hdd"}), "1", json!({})),
        ]);
        let (a, b) = (
            c.node("a")
                .map(|n| n.clone_for_simulation())
                .unwrap_or_default(),
            c.node("b")
                .map(|n| n.clone_for_simulation())
                .unwrap_or_default(),
        );
        let sel = pod("p", json!({}), json!({"nodeSelector": {"disk": "ssd"}}));
        assert!(NodeAffinity.filter(&sel, &a, &None).is_ok());
        assert!(NodeAffinity.filter(&sel, &b, &None).is_err());
        let gt = pod(
            "q",
            json!({}),
            json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "gen", "operator": "Gt", "values": ["4"]}]}]}}}}),
        );
        assert!(NodeAffinity.filter(&gt, &a, &None).is_ok());
        assert!(NodeAffinity.filter(&gt, &b, &None).is_err());
        let field = pod(
            "r",
            json!({}),
            json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["b"]}]}]}}}}),
        );
        assert!(NodeAffinity.filter(&field, &a, &None).is_err());
        assert!(NodeAffinity.filter(&field, &b, &None).is_ok());
        let pref = pod(
            "s",
            json!({}),
            json!({"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 10, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["hdd"]}]}}]}}}),
        );
        let mut scores = vec![
            NodeAffinity.score(&pref, &a, &None),
            NodeAffinity.score(&pref, &b, &None),
        ];
        NodeAffinity.normalize(&mut scores, &None);
        assert_eq!(scores, vec![0, 100]);
    }
}
