//! InterPodAffinity: required pod affinity/anti-affinity (the pod's own terms and existing
//! pods' anti-affinity) filter; preferred terms (both directions) score.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{PodAffinityTerm, WeightedPodAffinityTerm};

use super::{state, Failure, FilterResult, Plugin, State, MAX_NODE_SCORE};
use crate::cache::Cache;
use crate::model::{selector_matches, NodeInfo, PodInfo};

pub struct InterPodAffinity;

/// Weight given to existing pods' required affinity terms when scoring
/// (upstream's `hardPodAffinityWeight` default).
const HARD_POD_AFFINITY_WEIGHT: i64 = 1;

type Pair = (String, String);

#[derive(Default)]
struct FilterState {
    existing_anti: HashMap<Pair, i64>,
    affinity: HashMap<Pair, i64>,
    anti: HashMap<Pair, i64>,
    affinity_terms: Vec<PodAffinityTerm>,
    anti_terms: Vec<PodAffinityTerm>,
    matches_own_terms: bool,
}

/// Does `term`, declared by a pod in `owner_ns`, select `target`?
fn term_matches(term: &PodAffinityTerm, owner_ns: &str, target: &PodInfo, cache: &Cache) -> bool {
    let names = term.namespaces.as_deref().unwrap_or(&[]);
    let ns_ok = match &term.namespace_selector {
        None if names.is_empty() => target.namespace == owner_ns,
        None => names.contains(&target.namespace),
        Some(sel) => {
            names.contains(&target.namespace)
                || cache
                    .namespaces
                    .get(&target.namespace)
                    .is_some_and(|labels| selector_matches(Some(sel), labels))
                || (sel.match_labels.as_ref().is_none_or(|m| m.is_empty())
                    && sel.match_expressions.as_ref().is_none_or(|m| m.is_empty()))
        }
    };
    ns_ok && selector_matches(term.label_selector.as_ref(), &target.labels)
}

fn required(pod: &PodInfo, anti: bool) -> Vec<PodAffinityTerm> {
    let a = pod.pod.spec.as_ref().and_then(|s| s.affinity.as_ref());
    let terms = if anti {
        a.and_then(|a| a.pod_anti_affinity.as_ref()).and_then(|x| {
            x.required_during_scheduling_ignored_during_execution
                .clone()
        })
    } else {
        a.and_then(|a| a.pod_affinity.as_ref()).and_then(|x| {
            x.required_during_scheduling_ignored_during_execution
                .clone()
        })
    };
    terms.unwrap_or_default()
}

fn preferred(pod: &PodInfo, anti: bool) -> Vec<WeightedPodAffinityTerm> {
    let a = pod.pod.spec.as_ref().and_then(|s| s.affinity.as_ref());
    let terms = if anti {
        a.and_then(|a| a.pod_anti_affinity.as_ref()).and_then(|x| {
            x.preferred_during_scheduling_ignored_during_execution
                .clone()
        })
    } else {
        a.and_then(|a| a.pod_affinity.as_ref()).and_then(|x| {
            x.preferred_during_scheduling_ignored_during_execution
                .clone()
        })
    };
    terms.unwrap_or_default()
}

fn pair(node: &NodeInfo, key: &str) -> Option<Pair> {
    node.labels.get(key).map(|v| (key.to_string(), v.clone()))
}

impl Plugin for InterPodAffinity {
    fn name(&self) -> &'static str {
        "InterPodAffinity"
    }

    fn prepare(&self, pod: &PodInfo, cache: &Cache) -> State {
        let affinity_terms = required(pod, false);
        let anti_terms = required(pod, true);
        if affinity_terms.is_empty() && anti_terms.is_empty() && !cache.any_pod_with_affinity() {
            return None;
        }
        let mut s = FilterState::default();
        for (node, existing) in cache.all_pods() {
            if existing.has_required_anti_affinity {
                for t in required(existing, true) {
                    if term_matches(&t, &existing.namespace, pod, cache) {
                        if let Some(p) = pair(node, &t.topology_key) {
                            *s.existing_anti.entry(p).or_default() += 1;
                        }
                    }
                }
            }
            if affinity_terms.is_empty() && anti_terms.is_empty() {
                continue;
            }
            if !affinity_terms.is_empty()
                && affinity_terms
                    .iter()
                    .all(|t| term_matches(t, &pod.namespace, existing, cache))
            {
                for t in &affinity_terms {
                    if let Some(p) = pair(node, &t.topology_key) {
                        *s.affinity.entry(p).or_default() += 1;
                    }
                }
            }
            for t in &anti_terms {
                if term_matches(t, &pod.namespace, existing, cache) {
                    if let Some(p) = pair(node, &t.topology_key) {
                        *s.anti.entry(p).or_default() += 1;
                    }
                }
            }
        }
        if s.existing_anti.is_empty() && affinity_terms.is_empty() && anti_terms.is_empty() {
            return None;
        }
        s.matches_own_terms = affinity_terms
            .iter()
            .all(|t| term_matches(t, &pod.namespace, pod, cache));
        s.affinity_terms = affinity_terms;
        s.anti_terms = anti_terms;
        Some(Box::new(s))
    }

    fn filter(&self, _: &PodInfo, node: &NodeInfo, st: &State) -> FilterResult {
        let Some(s) = state::<FilterState>(st) else {
            return Ok(());
        };
        let has = |m: &HashMap<Pair, i64>, key: &str| {
            pair(node, key).is_some_and(|p| m.get(&p).is_some_and(|c| *c > 0))
        };
        if s.existing_anti
            .keys()
            .any(|(k, _)| has(&s.existing_anti, k))
        {
            return Err(Failure::unschedulable(
                "node(s) didn't satisfy existing pods anti-affinity rules",
            ));
        }
        if s.anti_terms.iter().any(|t| has(&s.anti, &t.topology_key)) {
            return Err(Failure::unschedulable(
                "node(s) didn't match pod anti-affinity rules",
            ));
        }
        let mut exist = true;
        for t in &s.affinity_terms {
            if !node.labels.contains_key(&t.topology_key) {
                return Err(Failure::unresolvable(
                    "node(s) didn't match pod affinity rules",
                ));
            }
            exist &= has(&s.affinity, &t.topology_key);
        }
        let first_of_group = s.affinity.is_empty() && s.matches_own_terms;
        if !exist && !first_of_group {
            return Err(Failure::unresolvable(
                "node(s) didn't match pod affinity rules",
            ));
        }
        Ok(())
    }

    fn weight(&self) -> i64 {
        2
    }

    fn prepare_score(&self, pod: &PodInfo, cache: &Cache, _: &[&NodeInfo]) -> State {
        let pref = preferred(pod, false);
        let pref_anti = preferred(pod, true);
        if pref.is_empty() && pref_anti.is_empty() && !cache.any_pod_with_affinity() {
            return None;
        }
        let mut scores: HashMap<Pair, i64> = HashMap::new();
        let mut add = |node: &NodeInfo, key: &str, w: i64| {
            if let Some(p) = pair(node, key) {
                *scores.entry(p).or_default() += w;
            }
        };
        for (node, existing) in cache.all_pods() {
            if node.node.is_none() {
                continue;
            }
            for (terms, sign) in [(&pref, 1), (&pref_anti, -1)] {
                for t in terms.iter() {
                    if term_matches(&t.pod_affinity_term, &pod.namespace, existing, cache) {
                        add(
                            node,
                            &t.pod_affinity_term.topology_key,
                            sign * i64::from(t.weight),
                        );
                    }
                }
            }
            if !existing.has_affinity_terms {
                continue;
            }
            for t in required(existing, false) {
                if term_matches(&t, &existing.namespace, pod, cache) {
                    add(node, &t.topology_key, HARD_POD_AFFINITY_WEIGHT);
                }
            }
            for (anti, sign) in [(false, 1), (true, -1)] {
                for t in preferred(existing, anti) {
                    if term_matches(&t.pod_affinity_term, &existing.namespace, pod, cache) {
                        add(
                            node,
                            &t.pod_affinity_term.topology_key,
                            sign * i64::from(t.weight),
                        );
                    }
                }
            }
        }
        Some(Box::new(scores))
    }

    fn score(&self, _: &PodInfo, node: &NodeInfo, st: &State) -> i64 {
        let Some(scores) = state::<HashMap<Pair, i64>>(st) else {
            return 0;
        };
        scores
            .iter()
            .filter(|((k, v), _)| node.labels.get(k) == Some(v))
            .map(|(_, s)| *s)
            .sum()
    }

    fn normalize(&self, scores: &mut [i64], st: &State) {
        if st.is_none() {
            return;
        }
        let min = scores.iter().copied().min().unwrap_or(0);
        let max = scores.iter().copied().max().unwrap_or(0);
        for s in scores.iter_mut() {
            *s = if max > min {
                MAX_NODE_SCORE * (*s - min) / (max - min)
            } else {
                0
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testutil::*;
    use serde_json::json;

    fn term(kind: &str, key: &str) -> serde_json::Value {
        json!({"affinity": {kind: {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": key}]}}})
    }

    #[test]
    fn anti_affinity_both_directions() {
        let mut c = cache(vec![
            node(
                "a",
                json!({"kubernetes.io/hostname": "a", "zone": "z1"}),
                "4",
                json!({}),
            ),
            node(
                "b",
                json!({"kubernetes.io/hostname": "b", "zone": "z1"}),
                "4",
                json!({}),
            ),
        ]);
        place(
            &mut c,
            &pod(
                "db1",
                json!({"app": "db"}),
                term("podAntiAffinity", "kubernetes.io/hostname"),
            ),
            "a",
        );
        let n = |c: &Cache, name: &str| {
            c.node(name)
                .map(|n| n.clone_for_simulation())
                .unwrap_or_default()
        };
        // The new replica's own anti-affinity term.
        let db2 = pod(
            "db2",
            json!({"app": "db"}),
            term("podAntiAffinity", "kubernetes.io/hostname"),
        );
        let st = InterPodAffinity.prepare(&db2, &c);
        assert!(InterPodAffinity.filter(&db2, &n(&c, "a"), &st).is_err());
        assert!(InterPodAffinity.filter(&db2, &n(&c, "b"), &st).is_ok());
        // A pod without terms is still kept away by the existing pod's term.
        let plain = pod("x", json!({"app": "db"}), json!({}));
        let st = InterPodAffinity.prepare(&plain, &c);
        assert_eq!(
            InterPodAffinity.filter(&plain, &n(&c, "a"), &st),
            Err(Failure::unschedulable(
                "node(s) didn't satisfy existing pods anti-affinity rules"
            ))
        );
        // Zone-wide affinity: b shares z1 with db1.
        let web = pod("web", json!({}), term("podAffinity", "zone"));
        let st = InterPodAffinity.prepare(&web, &c);
        assert!(InterPodAffinity.filter(&web, &n(&c, "b"), &st).is_ok());
        // Affinity to a group that does not exist yet: only a pod matching itself may start it.
        let lonely = pod("l", json!({}), term("podAffinity", "nonexistent"));
        let st = InterPodAffinity.prepare(&lonely, &c);
        assert!(InterPodAffinity
            .filter(&lonely, &n(&c, "a"), &st)
            .is_err_and(|f| f.unresolvable));
        let mut c2 = cache(vec![node("a", json!({"zone": "z1"}), "4", json!({}))]);
        let first = pod("f", json!({"app": "db"}), term("podAffinity", "zone"));
        let st = InterPodAffinity.prepare(&first, &c2);
        assert!(InterPodAffinity.filter(&first, &n(&c2, "a"), &st).is_ok());
        place(&mut c2, &first, "a");
    }
}
