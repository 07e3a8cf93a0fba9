//! One scheduling decision: filter (with upstream's adaptive sampling of nodes), score,
//! select; on failure the upstream `FitError` message and the preemption dry run.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::cache::Cache;
use crate::model::{NodeInfo, PodInfo};
use crate::plugins::{Failure, Plugin, State};

/// Nodes below which every node is checked.
const MIN_FEASIBLE_NODES: usize = 100;
const MIN_FEASIBLE_PERCENT: usize = 5;

pub struct Profile {
    plugins: Vec<Box<dyn Plugin>>,
    rng: std::sync::atomic::AtomicU64,
}

/// The pod fits nowhere: why, per node.
#[derive(Debug, Clone)]
pub struct FitError {
    pub num_nodes: usize,
    /// (node, rejecting plugin, why)
    pub statuses: Vec<(String, &'static str, Failure)>,
}

impl FitError {
    /// `0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match ….`
    pub fn message(&self) -> String {
        summary(self.num_nodes, self.statuses.iter().map(|(_, _, f)| f))
    }
}

fn summary<'a>(num_nodes: usize, failures: impl Iterator<Item = &'a Failure>) -> String {
    let mut hist: BTreeMap<&str, usize> = BTreeMap::new();
    for f in failures {
        for r in &f.reasons {
            *hist.entry(r.as_str()).or_default() += 1;
        }
    }
    let mut parts: Vec<String> = hist.iter().map(|(r, n)| format!("{n} {r}")).collect();
    parts.sort();
    let mut msg = format!("0/{num_nodes} nodes are available:");
    if !parts.is_empty() {
        msg.push_str(&format!(" {}.", parts.join(", ")));
    }
    msg
}

/// What preemption found for a pod that fits nowhere.
#[derive(Debug)]
pub enum Preemption {
    /// Evict these pods from this node; the pod is nominated there.
    Victims {
        node: String,
        victims: Vec<Arc<PodInfo>>,
    },
    /// Nothing to do; the message continues the FitError's (`preemption: …`).
    NotHelpful(String),
}

impl Default for Profile {
    fn default() -> Self {
        Profile::new(crate::plugins::default_profile())
    }
}

impl Profile {
    pub fn new(plugins: Vec<Box<dyn Plugin>>) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9E37_79B9_7F4A_7C15)
            | 1;
        Profile {
            plugins,
            rng: std::sync::atomic::AtomicU64::new(seed),
        }
    }

    fn random(&self) -> u64 {
        use std::sync::atomic::Ordering::Relaxed;
        let mut x = self.rng.load(Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.store(x, Relaxed);
        x
    }

    fn filter_one(
        &self,
        pod: &PodInfo,
        node: &NodeInfo,
        states: &[State],
    ) -> Result<(), (&'static str, Failure)> {
        for (p, st) in self.plugins.iter().zip(states) {
            p.filter(pod, node, st).map_err(|f| (p.name(), f))?;
        }
        Ok(())
    }

    /// Picks a node for `pod`, or says why none fits.
    pub fn schedule(&self, pod: &PodInfo, cache: &mut Cache) -> Result<String, FitError> {
        let states: Vec<State> = self.plugins.iter().map(|p| p.prepare(pod, cache)).collect();
        let nodes = cache.nodes();
        let total = nodes.len();
        let num_nodes = nodes.iter().filter(|n| n.node.is_some()).count();
        let want = feasible_to_find(num_nodes);
        let start = if total == 0 {
            0
        } else {
            cache.next_start % total
        };
        let mut feasible: Vec<&NodeInfo> = Vec::with_capacity(want.min(total));
        let mut statuses = Vec::new();
        let mut processed = 0;
        for i in 0..total {
            let node = &nodes[(start + i) % total];
            if node.node.is_none() {
                continue;
            }
            processed = i + 1;
            match self.filter_one(pod, node, &states) {
                Ok(()) => {
                    feasible.push(node);
                    if feasible.len() >= want {
                        break;
                    }
                }
                Err((plugin, f)) => statuses.push((node.name.clone(), plugin, f)),
            }
        }
        if feasible.is_empty() {
            return Err(FitError {
                num_nodes,
                statuses,
            });
        }
        let chosen = if feasible.len() == 1 {
            feasible[0].name.clone()
        } else {
            self.select(pod, cache, &feasible)
        };
        cache.next_start = if total == 0 {
            0
        } else {
            (start + processed) % total
        };
        Ok(chosen)
    }

    fn select(&self, pod: &PodInfo, cache: &Cache, feasible: &[&NodeInfo]) -> String {
        let mut total = vec![0i64; feasible.len()];
        let mut scores = vec![0i64; feasible.len()];
        for p in self.plugins.iter().filter(|p| p.weight() > 0) {
            let st = p.prepare_score(pod, cache, feasible);
            for (s, n) in scores.iter_mut().zip(feasible) {
                *s = p.score(pod, n, &st);
            }
            p.normalize(&mut scores, &st);
            for (t, s) in total.iter_mut().zip(&scores) {
                *t += s * p.weight();
            }
        }
        // Highest total; ties broken uniformly at random (reservoir sampling, as upstream).
        let mut best = 0;
        let mut ties = 0u64;
        for (i, s) in total.iter().enumerate() {
            if *s > total[best] {
                best = i;
                ties = 1;
            } else if *s == total[best] {
                ties += 1;
                if self.random().is_multiple_of(ties) {
                    best = i;
                }
            }
        }
        feasible[best].name.clone()
    }

    /// Basic preemption (upstream DefaultPreemption without PDBs): on each node that failed
    /// for a resolvable reason, remove all lower-priority pods; if the pod then fits, add
    /// victims back from the highest priority while it still fits. Picks the node with the
    /// lowest highest-victim priority, then the lowest priority sum, then the fewest victims.
    pub fn preempt(&self, pod: &PodInfo, cache: &Cache, err: &FitError) -> Preemption {
        if !pod.preempts() {
            return Preemption::NotHelpful("not eligible due to preemptionPolicy=Never.".into());
        }
        let states: Vec<State> = self.plugins.iter().map(|p| p.prepare(pod, cache)).collect();
        let mut statuses: Vec<Failure> = Vec::new();
        let mut best: Option<(String, Vec<Arc<PodInfo>>)> = None;
        let rank = |v: &[Arc<PodInfo>]| {
            let max = v.iter().map(|p| p.priority).max().unwrap_or(i32::MIN);
            let sum: i64 = v.iter().map(|p| i64::from(p.priority)).sum();
            (max, sum, v.len())
        };
        for (name, _, failure) in &err.statuses {
            if failure.unresolvable {
                continue;
            }
            let Some(node) = cache.node(name) else {
                continue;
            };
            match self.victims_on(pod, node, &states) {
                Ok(v) => {
                    if best.as_ref().is_none_or(|(_, b)| rank(&v) < rank(b)) {
                        best = Some((name.clone(), v));
                    }
                }
                Err(f) => statuses.push(f),
            }
        }
        match best {
            Some((node, victims)) => Preemption::Victims { node, victims },
            None => {
                let absent = err.num_nodes.saturating_sub(statuses.len());
                let not_helpful = Failure::unresolvable("Preemption is not helpful for scheduling");
                let all = statuses
                    .iter()
                    .chain(std::iter::repeat_n(&not_helpful, absent));
                Preemption::NotHelpful(summary(err.num_nodes, all))
            }
        }
    }

    fn victims_on(
        &self,
        pod: &PodInfo,
        node: &NodeInfo,
        states: &[State],
    ) -> Result<Vec<Arc<PodInfo>>, Failure> {
        let mut sim = node.clone_for_simulation();
        let mut lower: Vec<Arc<PodInfo>> = node
            .pods
            .iter()
            .filter(|p| p.priority < pod.priority)
            .cloned()
            .collect();
        if lower.is_empty() {
            return Err(Failure::unresolvable(
                "No preemption victims found for incoming pod",
            ));
        }
        for p in &lower {
            sim.remove_pod(&p.uid);
        }
        self.filter_one(pod, &sim, states).map_err(|(_, f)| f)?;
        // Reprieve from the most important down.
        lower.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.created.cmp(&b.created)));
        let mut victims = Vec::new();
        for p in lower {
            sim.add_pod(p.clone());
            if self.filter_one(pod, &sim, states).is_err() {
                sim.remove_pod(&p.uid);
                victims.push(p);
            }
        }
        Ok(victims)
    }
}

/// `numFeasibleNodesToFind` with the adaptive percentage of upstream's default.
pub fn feasible_to_find(num_nodes: usize) -> usize {
    if num_nodes < MIN_FEASIBLE_NODES {
        return num_nodes.max(1);
    }
    let pct = 50usize
        .saturating_sub(num_nodes / 125)
        .max(MIN_FEASIBLE_PERCENT);
    (num_nodes * pct / 100).max(MIN_FEASIBLE_NODES)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testutil::*;
    use serde_json::json;

    #[test]
    fn three_nodes_tainted_small_and_the_fit() {
        let mut c = cache(vec![
            node(
                "tainted",
                json!({}),
                "4",
                json!({"taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}]}),
            ),
            node("small", json!({}), "500m", json!({})),
            node("good", json!({}), "4", json!({})),
        ]);
        let p = pod(
            "p",
            json!({}),
            json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]}),
        );
        let prof = Profile::default();
        assert_eq!(prof.schedule(&p, &mut c).ok().as_deref(), Some("good"));
        c.remove_node("good");
        let err = prof.schedule(&p, &mut c).err();
        let msg = err.as_ref().map(FitError::message).unwrap_or_default();
        assert_eq!(
            msg,
            "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {k: v}."
        );
        let pre = err.map(|e| prof.preempt(&p, &c, &e));
        assert!(
            matches!(&pre, Some(Preemption::NotHelpful(m)) if m == "0/2 nodes are available: 2 Preemption is not helpful for scheduling."),
            "{pre:?}"
        );
    }

    #[test]
    fn preemption_picks_lowest_priority_victim() {
        let mut c = cache(vec![
            node("a", json!({}), "2", json!({})),
            node("b", json!({}), "2", json!({})),
        ]);
        let req = |cpu: &str, prio: i32| json!({"priority": prio, "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]});
        place(&mut c, &pod("a-low", json!({}), req("2", 10)), "a");
        place(&mut c, &pod("b-mid", json!({}), req("2", 50)), "b");
        let high = pod("high", json!({}), req("1", 100));
        let prof = Profile::default();
        let err = prof.schedule(&high, &mut c).err();
        assert!(err.is_some());
        match err.map(|e| prof.preempt(&high, &c, &e)) {
            Some(Preemption::Victims { node, victims }) => {
                assert_eq!(node, "a");
                assert_eq!(
                    victims.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(),
                    ["a-low"]
                );
            }
            other => panic!("{other:?}"),
        }
        let never = pod(
            "never",
            json!({}),
            json!({"priority": 100, "preemptionPolicy": "Never",
            "containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]}),
        );
        let err = prof.schedule(&never, &mut c).err();
        assert!(
            matches!(err.map(|e| prof.preempt(&never, &c, &e)), Some(Preemption::NotHelpful(m)) if m.contains("preemptionPolicy=Never"))
        );
    }

    #[test]
    fn sampling_matches_upstream() {
        assert_eq!(feasible_to_find(50), 50);
        assert_eq!(feasible_to_find(500), 230);
        assert_eq!(feasible_to_find(1000), 420);
        assert_eq!(feasible_to_find(5000), 500);
    }
}
