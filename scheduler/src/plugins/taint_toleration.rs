//! TaintToleration: NoSchedule/NoExecute taints must be tolerated; untolerated
//! PreferNoSchedule taints lower the score.

use super::{default_normalize, Failure, FilterResult, Plugin, State};
use crate::model::{tolerates, untolerated_taint, NodeInfo, PodInfo};

pub struct TaintToleration;

impl Plugin for TaintToleration {
    fn name(&self) -> &'static str {
        "TaintToleration"
    }

    fn filter(&self, pod: &PodInfo, node: &NodeInfo, _: &State) -> FilterResult {
        match untolerated_taint(
            &node.taints,
            pod.tolerations(),
            &["NoSchedule", "NoExecute"],
        ) {
            None => Ok(()),
            Some(t) => Err(Failure::unresolvable(format!(
                "node(s) had untolerated taint {{{}: {}}}",
                t.key,
                t.value.as_deref().unwrap_or("")
            ))),
        }
    }

    fn weight(&self) -> i64 {
        3
    }

    fn score(&self, pod: &PodInfo, node: &NodeInfo, _: &State) -> i64 {
        let tolerations = pod.tolerations().iter().filter(|t| {
            matches!(
                t.effect.as_deref(),
                None | Some("") | Some("PreferNoSchedule")
            )
        });
        node.taints
            .iter()
            .filter(|t| t.effect == "PreferNoSchedule")
            .filter(|t| !tolerations.clone().any(|tol| tolerates(tol, t)))
            .count() as i64
    }

    fn normalize(&self, scores: &mut [i64], _: &State) {
        default_normalize(scores, true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testutil::*;
    use serde_json::json;

    #[test]
    fn taints_filter_and_score() {
        let c = cache(vec![
            node(
                "a",
                json!({}),
                "1",
                json!({"taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]}),
            ),
            node(
                "b",
                json!({}),
                "1",
                json!({"taints": [{"key": "soft", "effect": "PreferNoSchedule"}]}),
            ),
            node("c", json!({}), "1", json!({})),
        ]);
        let n = |name: &str| {
            c.node(name)
                .map(|n| n.clone_for_simulation())
                .unwrap_or_default()
        };
        let p = pod("p", json!({}), json!({}));
        let err = TaintToleration.filter(&p, &n("a"), &None);
        assert_eq!(
            err,
            Err(Failure::unresolvable(
                "node(s) had untolerated taint {dedicated: gpu}"
            ))
        );
        assert!(TaintToleration.filter(&p, &n("b"), &None).is_ok());
        let mut scores: Vec<i64> = ["b", "c"]
            .iter()
            .map(|x| TaintToleration.score(&p, &n(x), &None))
            .collect();
        TaintToleration.normalize(&mut scores, &None);
        assert_eq!(scores, vec![0, 100]);
    }
}
