//! One scheduling decision: filter (with upstream's adaptive sampling of nodes), score,
//! select; on failure the upstream `FitError` message and the preemption dry run.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use k8s_openapi::api::policy::v1::PodDisruptionBudget;

use crate::cache::Cache;
use crate::model::{selector_matches, NodeInfo, PodInfo};
use crate::plugins::{Failure, Plugin, State};

/// Nodes below which every node is checked.
const MIN_FEASIBLE_NODES: usize = 100;
const MIN_FEASIBLE_PERCENT: usize = 5;
/// Nodes one filter worker takes at a time (after the inline part; see `filter_nodes`).
const FILTER_CHUNK: usize = 256;
/// Threads filtering in parallel at most.
const MAX_FILTER_THREADS: usize = 4;

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
    /// A PreFilter rejected the pod before any node was looked at: its message.
    pub pre_filter: Option<String>,
}

impl FitError {
    /// `0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match ….`
    pub fn message(&self) -> String {
        match &self.pre_filter {
            Some(m) => format!("0/{} nodes are available: {m}.", self.num_nodes),
            None => summary(self.num_nodes, self.statuses.iter().map(|(_, _, f)| f)),
        }
    }
}

/// One node's filter outcome, by its position in the scan.
type Checked = (usize, Result<(), (&'static str, Failure)>);

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

    /// Runs every plugin's PreFilter; the first rejection fails the pod on all nodes.
    fn pre_filter(&self, pod: &PodInfo, cache: &Cache) -> Result<Vec<State>, FitError> {
        let mut states = Vec::with_capacity(self.plugins.len());
        for p in &self.plugins {
            match p.pre_filter(pod, cache) {
                Ok(s) => states.push(s),
                Err(f) => {
                    let live = cache.nodes().iter().filter(|n| n.node.is_some());
                    let statuses: Vec<_> = live
                        .map(|n| (n.name.clone(), p.name(), f.clone()))
                        .collect();
                    return Err(FitError {
                        num_nodes: statuses.len(),
                        statuses,
                        pre_filter: Some(f.reasons.join(", ")),
                    });
                }
            }
        }
        Ok(states)
    }

    /// Filters `order` (positions into `nodes`) until `want` nodes fit. Returns the outcomes
    /// in scan order.
    ///
    /// The first `want` nodes (at least a chunk) are filtered inline: usually most nodes fit
    /// and the wanted fits are among them, and starting threads would cost more than that
    /// filtering. Only when many nodes fail and a long scan remains do workers share it.
    fn filter_nodes(
        &self,
        pod: &PodInfo,
        nodes: &[NodeInfo],
        states: &[State],
        order: &[usize],
        want: usize,
    ) -> Vec<Checked> {
        let check = |i: usize| (i, self.filter_one(pod, &nodes[i], states));
        let inline = order.len().min(want.max(FILTER_CHUNK));
        let mut out = Vec::with_capacity(inline);
        let mut fits = 0;
        for &i in &order[..inline] {
            let c = check(i);
            fits += usize::from(c.1.is_ok());
            out.push(c);
            if fits >= want {
                return out;
            }
        }
        let rest = &order[inline..];
        let chunks = rest.len().div_ceil(FILTER_CHUNK);
        // Asking the OS every time costs more than a small filter (it reads cgroup files).
        static CPUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
        let cpus =
            *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let threads = cpus.min(MAX_FILTER_THREADS).min(chunks);
        if threads < 2 {
            for &i in rest {
                let c = check(i);
                fits += usize::from(c.1.is_ok());
                out.push(c);
                if fits >= want {
                    break;
                }
            }
            return out;
        }
        // Workers take chunks in scan order and stop taking once enough nodes fit
        // (upstream's parallel findNodesThatPassFilters with its early cancel).
        let next = AtomicUsize::new(0);
        let found = AtomicUsize::new(fits);
        let work = || {
            let mut done: Vec<(usize, Vec<Checked>)> = Vec::new();
            loop {
                if found.load(Ordering::Relaxed) >= want {
                    break;
                }
                let c = next.fetch_add(1, Ordering::Relaxed);
                if c >= chunks {
                    break;
                }
                let part = &rest[c * FILTER_CHUNK..((c + 1) * FILTER_CHUNK).min(rest.len())];
                let checked: Vec<Checked> = part.iter().map(|&i| check(i)).collect();
                let ok = checked.iter().filter(|c| c.1.is_ok()).count();
                found.fetch_add(ok, Ordering::Relaxed);
                done.push((c, checked));
            }
            done
        };
        let mut parts: Vec<(usize, Vec<Checked>)> = std::thread::scope(|s| {
            let helpers: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
            let mut all = work();
            for h in helpers {
                if let Ok(mut more) = h.join() {
                    all.append(&mut more);
                }
            }
            all
        });
        parts.sort_unstable_by_key(|(c, _)| *c);
        out.extend(parts.into_iter().flat_map(|(_, v)| v));
        out
    }

    /// Picks a node for `pod`, or says why none fits.
    pub fn schedule(&self, pod: &PodInfo, cache: &mut Cache) -> Result<String, FitError> {
        let states = self.pre_filter(pod, cache)?;
        let nodes = cache.nodes();
        let total = nodes.len();
        let start = if total == 0 {
            0
        } else {
            cache.next_start % total
        };
        let order: Vec<usize> = (0..total)
            .map(|i| (start + i) % total)
            .filter(|&i| nodes[i].node.is_some())
            .collect();
        let num_nodes = order.len();
        let want = feasible_to_find(num_nodes);
        let checked = self.filter_nodes(pod, nodes, &states, &order, want);
        // Taken in scan order up to the `want`-th fit (parallel workers may have looked
        // further), so the outcome does not depend on the threads.
        let mut feasible: Vec<&NodeInfo> = Vec::with_capacity(want.min(num_nodes));
        let mut statuses = Vec::new();
        let mut last = None;
        for (i, r) in checked {
            last = Some(i);
            match r {
                Ok(()) => feasible.push(&nodes[i]),
                Err((plugin, f)) => statuses.push((nodes[i].name.clone(), plugin, f)),
            }
            if feasible.len() >= want {
                break;
            }
        }
        // Positions in `nodes` scanned, to continue from the next one next time.
        let processed = last.map_or(0, |i| (i + total - start) % total + 1);
        if feasible.is_empty() {
            return Err(FitError {
                num_nodes,
                statuses,
                pre_filter: None,
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

    /// Upstream's DefaultPreemption: on each node that failed for a resolvable reason, remove
    /// all lower-priority pods; if the pod then fits, add victims back (those whose eviction
    /// would violate a PodDisruptionBudget first, then the others, each from the most
    /// important down) while it still fits. Picks the node with the fewest PDB violations,
    /// then the lowest highest-victim priority, the lowest priority sum, the fewest victims.
    pub fn preempt(&self, pod: &PodInfo, cache: &Cache, err: &FitError) -> Preemption {
        if !pod.preempts() {
            return Preemption::NotHelpful("not eligible due to preemptionPolicy=Never.".into());
        }
        let mut statuses: Vec<Failure> = Vec::new();
        let mut best: Option<(Candidate, String)> = None;
        let mut states: Option<Vec<State>> = None;
        let pdbs: Vec<&PodDisruptionBudget> =
            cache.objects.pdbs.values().map(|p| p.as_ref()).collect();
        for (name, _, failure) in &err.statuses {
            if failure.unresolvable {
                continue;
            }
            let Some(node) = cache.node(name) else {
                continue;
            };
            if states.is_none() {
                match self.pre_filter(pod, cache) {
                    Ok(s) => states = Some(s),
                    Err(_) => break,
                }
            }
            let Some(st) = states.as_deref() else {
                break;
            };
            match self.victims_on(pod, node, st, &pdbs) {
                Ok(c) => {
                    if best.as_ref().is_none_or(|(b, _)| c.rank() < b.rank()) {
                        best = Some((c, name.clone()));
                    }
                }
                Err(f) => statuses.push(f),
            }
        }
        match best {
            Some((c, node)) => Preemption::Victims {
                node,
                victims: c.victims,
            },
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
        pdbs: &[&PodDisruptionBudget],
    ) -> Result<Candidate, Failure> {
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
        // Reprieve from the most important down: PDB-violating victims first.
        lower.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.created.cmp(&b.created)));
        let (violating, non_violating) = split_by_pdb(lower, pdbs);
        let mut c = Candidate {
            victims: Vec::new(),
            pdb_violations: 0,
        };
        for (group, violates) in [(violating, true), (non_violating, false)] {
            for p in group {
                sim.add_pod(p.clone());
                if self.filter_one(pod, &sim, states).is_err() {
                    sim.remove_pod(&p.uid);
                    c.victims.push(p);
                    c.pdb_violations += usize::from(violates);
                }
            }
        }
        c.victims
            .sort_by(|a, b| b.priority.cmp(&a.priority).then(a.created.cmp(&b.created)));
        Ok(c)
    }
}

/// The victims preemption would evict on one node.
struct Candidate {
    victims: Vec<Arc<PodInfo>>,
    pdb_violations: usize,
}

impl Candidate {
    /// `pickOneNodeForPreemption`'s order: fewest PDB violations, lowest highest priority,
    /// lowest sum of priorities (each offset to be non-negative, as upstream), fewest victims.
    fn rank(&self) -> (usize, i32, i64, usize) {
        let max = self
            .victims
            .iter()
            .map(|p| p.priority)
            .max()
            .unwrap_or(i32::MIN);
        let sum: i64 = self
            .victims
            .iter()
            .map(|p| i64::from(p.priority) + i64::from(i32::MAX) + 1)
            .sum();
        (self.pdb_violations, max, sum, self.victims.len())
    }
}

/// `filterPodsWithPDBViolation`: walks `pods` in order, charging each to the budgets
/// (`status.disruptionsAllowed`, 0 without a status) of the PDBs selecting it; a pod that
/// overdraws one violates. PDBs with an empty selector select nothing; pods already in a PDB's
/// `disruptedPods` are not charged.
fn split_by_pdb(
    pods: Vec<Arc<PodInfo>>,
    pdbs: &[&PodDisruptionBudget],
) -> (Vec<Arc<PodInfo>>, Vec<Arc<PodInfo>>) {
    let mut allowed: HashMap<usize, i64> = HashMap::new();
    let (mut violating, mut fine) = (Vec::new(), Vec::new());
    for p in pods {
        let mut violates = false;
        if !p.labels.is_empty() {
            for (i, pdb) in pdbs.iter().enumerate() {
                if pdb.metadata.namespace.as_deref() != Some(p.namespace.as_str()) {
                    continue;
                }
                let sel = pdb.spec.as_ref().and_then(|s| s.selector.as_ref());
                let empty = sel.is_none_or(|s| {
                    s.match_labels.as_ref().is_none_or(|m| m.is_empty())
                        && s.match_expressions.as_ref().is_none_or(|m| m.is_empty())
                });
                if empty || !selector_matches(sel, &p.labels) {
                    continue;
                }
                let status = pdb.status.as_ref();
                if status
                    .and_then(|s| s.disrupted_pods.as_ref())
                    .is_some_and(|d| d.contains_key(&p.name))
                {
                    continue;
                }
                let left = allowed.entry(i).or_insert_with(|| {
                    i64::from(status.and_then(|s| s.disruptions_allowed).unwrap_or(0))
                });
                *left -= 1;
                violates |= *left < 0;
            }
        }
        if violates {
            violating.push(p);
        } else {
            fine.push(p);
        }
    }
    (violating, fine)
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
    fn preemption_spares_pdb_protected_victims() {
        let mut c = cache(vec![
            node("a", json!({}), "2", json!({})),
            node("b", json!({}), "2", json!({})),
        ]);
        let req = |cpu: &str, prio: i32| json!({"priority": prio, "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]});
        place(
            &mut c,
            &pod("guarded", json!({"app": "g"}), req("2", 10)),
            "a",
        );
        place(&mut c, &pod("free", json!({"app": "f"}), req("2", 10)), "b");
        let pdb = |name: &str, sel: serde_json::Value, allowed: Option<i32>| {
            let mut v = json!({"metadata": {"name": name, "namespace": "default"},
                "spec": {"selector": sel}});
            if let Some(a) = allowed {
                v["status"] = json!({"disruptionsAllowed": a, "currentHealthy": 1,
                    "desiredHealthy": 1, "expectedPods": 1});
            }
            Arc::new(serde_json::from_value::<PodDisruptionBudget>(v).unwrap_or_default())
        };
        // Without a status a PDB allows no disruption; an empty selector selects nothing.
        c.objects.pdbs.insert(
            "default/g".into(),
            pdb("g", json!({"matchLabels": {"app": "g"}}), None),
        );
        c.objects
            .pdbs
            .insert("default/all".into(), pdb("all", json!({}), None));
        let high = pod("high", json!({}), req("1", 100));
        let prof = Profile::default();
        let victims = |c: &mut Cache| {
            let err = prof.schedule(&high, c).err();
            match err.map(|e| prof.preempt(&high, c, &e)) {
                Some(Preemption::Victims { node, victims }) => {
                    let names: Vec<String> = victims.iter().map(|v| v.name.clone()).collect();
                    Some((node, names))
                }
                _ => None,
            }
        };
        assert_eq!(victims(&mut c), Some(("b".into(), vec!["free".into()])));
        // With the other node protected too, the violation is unavoidable: the fewest win.
        c.objects.pdbs.insert(
            "default/f".into(),
            pdb("f", json!({"matchLabels": {"app": "f"}}), None),
        );
        assert!(victims(&mut c).is_some());
        // A budget that allows one disruption is no violation.
        c.objects.pdbs.insert(
            "default/g".into(),
            pdb("g", json!({"matchLabels": {"app": "g"}}), Some(1)),
        );
        assert_eq!(victims(&mut c), Some(("a".into(), vec!["guarded".into()])));
    }

    #[test]
    fn many_nodes_are_filtered_in_parallel_chunks() {
        let mut nodes: Vec<_> = (0..1000)
            .map(|i| node(&format!("n{i:04}"), json!({}), "100m", json!({})))
            .collect();
        nodes[777] = node("n0777", json!({}), "4", json!({}));
        let mut c = cache(nodes);
        let p = pod(
            "p",
            json!({}),
            json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]}),
        );
        let prof = Profile::default();
        assert_eq!(prof.schedule(&p, &mut c).ok().as_deref(), Some("n0777"));
        let huge = pod(
            "h",
            json!({}),
            json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": "8"}}}]}),
        );
        let err = prof.schedule(&huge, &mut c).err();
        assert_eq!(
            err.map(|e| e.message()).as_deref(),
            Some("0/1000 nodes are available: 1000 Insufficient cpu.")
        );
        // With every node fitting, only the adaptive sample is scored and the next
        // decision starts after it.
        let mut c = cache(
            (0..1000)
                .map(|i| node(&format!("m{i:04}"), json!({}), "4", json!({})))
                .collect(),
        );
        let start = c.next_start;
        assert!(prof.schedule(&p, &mut c).is_ok());
        assert_eq!(c.next_start, (start + feasible_to_find(1000)) % 1000);
    }

    #[test]
    fn sampling_matches_upstream() {
        assert_eq!(feasible_to_find(50), 50);
        assert_eq!(feasible_to_find(500), 230);
        assert_eq!(feasible_to_find(1000), 420);
        assert_eq!(feasible_to_find(5000), 500);
    }
}
