//! PodTopologySpread: `DoNotSchedule` constraints filter (maxSkew, minDomains,
//! nodeAffinityPolicy, nodeTaintsPolicy); `ScheduleAnyway` constraints score. A pod without
//! constraints of its own is scored with the default profile's system defaults (zone maxSkew
//! 5, hostname maxSkew 3) over the pods selected by its Services and controller.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::TopologySpreadConstraint;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

use super::{state, Failure, FilterResult, Plugin, State, MAX_NODE_SCORE};
use crate::cache::{Cache, Objects};
use crate::model::{
    pod_matches_node_selector, selector_matches, untolerated_taint, NodeInfo, PodInfo,
};

pub struct PodTopologySpread;

const HOSTNAME: &str = "kubernetes.io/hostname";
const ZONE: &str = "topology.kubernetes.io/zone";

/// One constraint with its selector completed by `matchLabelKeys`.
struct Constraint {
    key: String,
    max_skew: i64,
    min_domains: usize,
    selector: LabelSelector,
    honor_affinity: bool,
    honor_taints: bool,
    self_match: i64,
}

/// Matching pods per domain of each constraint.
struct Counts {
    constraints: Vec<Constraint>,
    domains: Vec<HashMap<String, i64>>,
    /// Nodes lacking a constraint's key are left out (not so for the system defaults).
    require_all: bool,
}

fn constraints(pod: &PodInfo, when: &str) -> Vec<Constraint> {
    let Some(list) = pod
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.topology_spread_constraints.as_ref())
    else {
        return Vec::new();
    };
    list.iter()
        .filter(|c| c.when_unsatisfiable == when)
        .map(|c| constraint(pod, c))
        .collect()
}

fn constraint(pod: &PodInfo, c: &TopologySpreadConstraint) -> Constraint {
    let mut selector = c.label_selector.clone().unwrap_or_default();
    for key in c.match_label_keys.iter().flatten() {
        if let Some(v) = pod.labels.get(key) {
            selector
                .match_expressions
                .get_or_insert_with(Vec::new)
                .push(LabelSelectorRequirement {
                    key: key.clone(),
                    operator: "In".into(),
                    values: Some(vec![v.clone()]),
                });
        }
    }
    let self_match = i64::from(selector_matches(Some(&selector), &pod.labels));
    Constraint {
        key: c.topology_key.clone(),
        max_skew: i64::from(c.max_skew),
        min_domains: c.min_domains.unwrap_or(1).max(1) as usize,
        honor_affinity: c.node_affinity_policy.as_deref() != Some("Ignore"),
        honor_taints: c.node_taints_policy.as_deref() == Some("Honor"),
        selector,
        self_match,
    }
}

/// `helper.DefaultSelector`: the selectors of the Services selecting the pod and of its
/// controlling ReplicationController, ReplicaSet or StatefulSet, merged; `None` when empty.
fn default_selector(pod: &PodInfo, objects: &Objects) -> Option<LabelSelector> {
    let mut labels: BTreeMap<String, String> = BTreeMap::new();
    let mut exprs: Vec<LabelSelectorRequirement> = Vec::new();
    let prefix = format!("{}/", pod.namespace);
    for (key, svc) in &objects.services {
        if !key.starts_with(&prefix) {
            continue;
        }
        let Some(sel) = svc.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
            continue;
        };
        if sel.iter().all(|(k, v)| pod.labels.get(k) == Some(v)) {
            labels.extend(sel.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    let owner = pod
        .pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true));
    if let Some(o) = owner {
        let key = format!("{prefix}{}", o.name);
        let selector = match (o.api_version.as_str(), o.kind.as_str()) {
            ("v1", "ReplicationController") => {
                if let Some(sel) = objects
                    .replication_controllers
                    .get(&key)
                    .and_then(|rc| rc.spec.as_ref())
                    .and_then(|s| s.selector.as_ref())
                {
                    labels.extend(sel.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
                None
            }
            ("apps/v1", "ReplicaSet") => objects
                .replica_sets
                .get(&key)
                .and_then(|rs| rs.spec.as_ref())
                .map(|s| s.selector.clone()),
            ("apps/v1", "StatefulSet") => objects
                .stateful_sets
                .get(&key)
                .and_then(|ss| ss.spec.as_ref())
                .map(|s| s.selector.clone()),
            _ => None,
        };
        if let Some(sel) = selector {
            for (k, v) in sel.match_labels.unwrap_or_default() {
                exprs.push(LabelSelectorRequirement {
                    key: k,
                    operator: "In".into(),
                    values: Some(vec![v]),
                });
            }
            exprs.extend(sel.match_expressions.unwrap_or_default());
        }
    }
    if labels.is_empty() && exprs.is_empty() {
        return None;
    }
    Some(LabelSelector {
        match_labels: (!labels.is_empty()).then_some(labels),
        match_expressions: (!exprs.is_empty()).then_some(exprs),
    })
}

/// The system default constraints (`ScheduleAnyway`) for a pod without its own.
fn default_constraints(pod: &PodInfo, objects: &Objects) -> Vec<Constraint> {
    let Some(selector) = default_selector(pod, objects) else {
        return Vec::new();
    };
    [(ZONE, 5), (HOSTNAME, 3)]
        .into_iter()
        .map(|(key, max_skew)| Constraint {
            key: key.to_string(),
            max_skew,
            min_domains: 1,
            selector: selector.clone(),
            honor_affinity: true,
            honor_taints: false,
            self_match: 0,
        })
        .collect()
}

fn has_own_constraints(pod: &PodInfo) -> bool {
    pod.pod
        .spec
        .as_ref()
        .and_then(|s| s.topology_spread_constraints.as_ref())
        .is_some_and(|c| !c.is_empty())
}

fn counts_on(node: &NodeInfo, pod: &PodInfo, sel: &LabelSelector) -> i64 {
    node.pods
        .iter()
        .filter(|p| {
            !p.terminating && p.namespace == pod.namespace && selector_matches(Some(sel), &p.labels)
        })
        .count() as i64
}

/// The node counts toward the constraint's domains (policies, and all keys present unless
/// `require_all` is off).
fn eligible(
    c: &Constraint,
    all: &[Constraint],
    require_all: bool,
    pod: &PodInfo,
    node: &NodeInfo,
) -> bool {
    node.node.is_some()
        && (!require_all || all.iter().all(|o| node.labels.contains_key(&o.key)))
        && (!c.honor_affinity || pod_matches_node_selector(pod, node))
        && (!c.honor_taints
            || untolerated_taint(
                &node.taints,
                pod.tolerations(),
                &["NoSchedule", "NoExecute"],
            )
            .is_none())
}

fn count(pod: &PodInfo, cache: &Cache, cs: Vec<Constraint>) -> Counts {
    let mut domains = vec![HashMap::new(); cs.len()];
    for node in cache.nodes() {
        for (i, c) in cs.iter().enumerate() {
            if !eligible(c, &cs, true, pod, node) {
                continue;
            }
            let Some(value) = node.labels.get(&c.key) else {
                continue;
            };
            *domains[i].entry(value.clone()).or_insert(0) += counts_on(node, pod, &c.selector);
        }
    }
    Counts {
        constraints: cs,
        domains,
        require_all: true,
    }
}

impl Plugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        "PodTopologySpread"
    }

    fn prepare(&self, pod: &PodInfo, cache: &Cache) -> State {
        let cs = constraints(pod, "DoNotSchedule");
        if cs.is_empty() {
            return None;
        }
        Some(Box::new(count(pod, cache, cs)))
    }

    fn filter(&self, _: &PodInfo, node: &NodeInfo, st: &State) -> FilterResult {
        let Some(s) = state::<Counts>(st) else {
            return Ok(());
        };
        for (c, domains) in s.constraints.iter().zip(&s.domains) {
            let Some(value) = node.labels.get(&c.key) else {
                return Err(Failure::unresolvable(
                    "node(s) didn't match pod topology spread constraints (missing required label)",
                ));
            };
            let min = if domains.len() < c.min_domains {
                0
            } else {
                domains.values().copied().min().unwrap_or(0)
            };
            let here = domains.get(value).copied().unwrap_or(0);
            if here + c.self_match - min > c.max_skew {
                return Err(Failure::unschedulable(
                    "node(s) didn't match pod topology spread constraints",
                ));
            }
        }
        Ok(())
    }

    fn weight(&self) -> i64 {
        2
    }

    fn prepare_score(&self, pod: &PodInfo, cache: &Cache, feasible: &[&NodeInfo]) -> State {
        let (cs, require_all) = if has_own_constraints(pod) {
            (constraints(pod, "ScheduleAnyway"), true)
        } else {
            (default_constraints(pod, &cache.objects), false)
        };
        if cs.is_empty() {
            return None;
        }
        let has_all = |n: &NodeInfo| cs.iter().all(|c| n.labels.contains_key(&c.key));
        let scored: Vec<&&NodeInfo> = feasible
            .iter()
            .filter(|n| !require_all || has_all(n))
            .collect();
        // A missing label is the domain "" (only possible without `require_all`).
        let value = |n: &NodeInfo, key: &str| n.labels.get(key).cloned().unwrap_or_default();
        let mut weights = Vec::new();
        let mut domains: Vec<HashMap<String, i64>> = Vec::new();
        for c in &cs {
            let mut d = HashMap::new();
            if c.key != HOSTNAME {
                for n in &scored {
                    d.insert(value(n, &c.key), 0);
                }
            }
            let size = if c.key == HOSTNAME {
                scored.len()
            } else {
                d.len()
            };
            weights.push(((size + 2) as f64).ln());
            domains.push(d);
        }
        for node in cache.nodes() {
            for (i, c) in cs.iter().enumerate() {
                if c.key == HOSTNAME || !eligible(c, &cs, require_all, pod, node) {
                    continue;
                }
                if let Some(slot) = domains[i].get_mut(&value(node, &c.key)) {
                    *slot += counts_on(node, pod, &c.selector);
                }
            }
        }
        Some(Box::new((
            Counts {
                constraints: cs,
                domains,
                require_all,
            },
            weights,
        )))
    }

    fn score(&self, pod: &PodInfo, node: &NodeInfo, st: &State) -> i64 {
        let Some((s, weights)) = state::<(Counts, Vec<f64>)>(st) else {
            return 0;
        };
        if s.require_all
            && !s
                .constraints
                .iter()
                .all(|c| node.labels.contains_key(&c.key))
        {
            return -1;
        }
        let mut score = 0.0;
        for ((c, domains), w) in s.constraints.iter().zip(&s.domains).zip(weights) {
            let Some(v) = node.labels.get(&c.key) else {
                continue;
            };
            let n = if c.key == HOSTNAME {
                counts_on(node, pod, &c.selector)
            } else {
                domains.get(v).copied().unwrap_or(0)
            };
            score += n as f64 * w + (c.max_skew - 1) as f64;
        }
        score.round() as i64
    }

    /// Fewer matching pods score higher; nodes lacking a key (`-1`) score 0.
    fn normalize(&self, scores: &mut [i64], st: &State) {
        if st.is_none() {
            return;
        }
        let valid = scores.iter().copied().filter(|s| *s >= 0);
        let (min, max) = valid.fold((i64::MAX, 0), |(lo, hi), s| (lo.min(s), hi.max(s)));
        for s in scores.iter_mut() {
            *s = if *s < 0 {
                0
            } else if max == 0 {
                MAX_NODE_SCORE
            } else {
                MAX_NODE_SCORE * (max + min - *s) / max
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testutil::*;
    use serde_json::json;

    fn spread(when: &str, extra: serde_json::Value) -> serde_json::Value {
        let mut c = json!({"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": when,
            "labelSelector": {"matchLabels": {"app": "web"}}});
        if let (Some(o), Some(e)) = (c.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        json!({"topologySpreadConstraints": [c]})
    }

    #[test]
    fn max_skew_and_min_domains() {
        let mut c = cache(vec![
            node("a", json!({"zone": "z1"}), "4", json!({})),
            node("b", json!({"zone": "z2"}), "4", json!({})),
            node("c", json!({}), "4", json!({})),
        ]);
        place(&mut c, &pod("w1", json!({"app": "web"}), json!({})), "a");
        let p = pod(
            "p",
            json!({"app": "web"}),
            spread("DoNotSchedule", json!({})),
        );
        let st = PodTopologySpread.prepare(&p, &c);
        let n = |name: &str| {
            c.node(name)
                .map(|n| n.clone_for_simulation())
                .unwrap_or_default()
        };
        assert!(PodTopologySpread.filter(&p, &n("a"), &st).is_err());
        assert!(PodTopologySpread.filter(&p, &n("b"), &st).is_ok());
        assert!(PodTopologySpread
            .filter(&p, &n("c"), &st)
            .is_err_and(|f| f.unresolvable));
        // With minDomains 3 only 2 domains exist: the global minimum is 0, z2 still fits.
        let p3 = pod(
            "p3",
            json!({"app": "web"}),
            spread("DoNotSchedule", json!({"minDomains": 3})),
        );
        let st3 = PodTopologySpread.prepare(&p3, &c);
        assert!(PodTopologySpread.filter(&p3, &n("b"), &st3).is_ok());
        assert!(PodTopologySpread.filter(&p3, &n("a"), &st3).is_err());
    }

    #[test]
    fn schedule_anyway_prefers_emptier_zone() {
        let mut c = cache(vec![
            node("a", json!({"zone": "z1"}), "4", json!({})),
            node("b", json!({"zone": "z2"}), "4", json!({})),
        ]);
        place(&mut c, &pod("w1", json!({"app": "web"}), json!({})), "a");
        let p = pod(
            "p",
            json!({"app": "web"}),
            spread("ScheduleAnyway", json!({})),
        );
        let (a, b) = (
            c.node("a")
                .map(|n| n.clone_for_simulation())
                .unwrap_or_default(),
            c.node("b")
                .map(|n| n.clone_for_simulation())
                .unwrap_or_default(),
        );
        let st = PodTopologySpread.prepare_score(&p, &c, &[&a, &b]);
        let mut s = vec![
            PodTopologySpread.score(&p, &a, &st),
            PodTopologySpread.score(&p, &b, &st),
        ];
        PodTopologySpread.normalize(&mut s, &st);
        assert!(s[1] > s[0], "{s:?}");
    }

    #[test]
    fn system_defaults_follow_the_replica_set() {
        let mut c = cache(vec![
            node("a", json!({HOSTNAME: "a"}), "4", json!({})),
            node("b", json!({HOSTNAME: "b"}), "4", json!({})),
        ]);
        let rs: k8s_openapi::api::apps::v1::ReplicaSet = serde_json::from_value(json!({
            "metadata": {"name": "web-1", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {}},
        }))
        .unwrap_or_default();
        c.objects
            .replica_sets
            .insert("default/web-1".into(), std::sync::Arc::new(rs));
        let owned = |name: &str| {
            let mut p = pod(name, json!({"app": "web"}), json!({})).pod.clone();
            p.metadata.owner_references = serde_json::from_value(json!([{"apiVersion": "apps/v1",
                "kind": "ReplicaSet", "name": "web-1", "uid": "u", "controller": true}]))
            .ok();
            crate::model::PodInfo::new(p)
        };
        place(&mut c, &owned("w1"), "a");
        let p = owned("w2");
        let (a, b) = (
            c.node("a")
                .map(|n| n.clone_for_simulation())
                .unwrap_or_default(),
            c.node("b")
                .map(|n| n.clone_for_simulation())
                .unwrap_or_default(),
        );
        let st = PodTopologySpread.prepare_score(&p, &c, &[&a, &b]);
        assert!(st.is_some());
        let mut s = vec![
            PodTopologySpread.score(&p, &a, &st),
            PodTopologySpread.score(&p, &b, &st),
        ];
        PodTopologySpread.normalize(&mut s, &st);
        assert!(s[1] > s[0], "{s:?}");
        // Without an owner or a Service there is nothing to spread.
        let lone = pod("lone", json!({"app": "web"}), json!({}));
        assert!(PodTopologySpread
            .prepare_score(&lone, &c, &[&a, &b])
            .is_none());
    }
}
