//! Node health, as upstream's node lifecycle controller (`pkg/controller/nodelifecycle`), and
//! the taint eviction controller (`pkg/controller/tainteviction`).
//!
//! Every `--node-monitor-period` each node's last sign of life (its Lease in
//! `kube-node-lease`, or its `Ready` heartbeat) is compared with
//! `--node-monitor-grace-period`: a silent node gets all its conditions set to `Unknown`.
//! Taints follow the `Ready` condition: `node.kubernetes.io/unreachable` (Unknown) or
//! `node.kubernetes.io/not-ready` (False) with both the `NoExecute` and `NoSchedule`
//! effects, removed again when the node is Ready; the pressure conditions and
//! `spec.unschedulable` give their `NoSchedule` taints. Pods on a node that stops being Ready
//! are marked not ready.
//!
//! Adding a `NoExecute` taint, which evicts the node's pods, goes through a rate-limited
//! queue per zone (the node's region and zone labels), as upstream's taint-based eviction:
//! `--node-eviction-rate` nodes per second in a zone with Ready nodes;
//! `--secondary-node-eviction-rate` when at least `--unhealthy-zone-threshold` of a zone's
//! nodes (and at least 3) are not Ready and the zone has more than
//! `--large-cluster-size-threshold` nodes, none in a smaller unhealthy zone; and when no node
//! of any zone is Ready (most likely a control plane or network problem, not the nodes) no
//! node is tainted and the NoExecute taints are removed until some node is Ready again.
//! Removing a taint, and swapping not-ready for unreachable, is not rate-limited.
//!
//! The taint eviction controller deletes the pods on nodes with `NoExecute` taints they do
//! not tolerate at once, and those tolerating them for `tolerationSeconds` once that time
//! has passed since the taint was added.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::FutureExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::ResourceExt;
use serde_json::{json, Value};

use crate::events::NORMAL;
use crate::scaffold::{Context, Result};
use crate::util;
use crate::EvictionRates;

const COMPONENT: &str = "node-controller";
const TAINT_COMPONENT: &str = "taint-eviction-controller";
const LEASE_NAMESPACE: &str = "kube-node-lease";

pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
/// Condition → the NoSchedule taint it gives when True (upstream's
/// `nodeConditionToTaintKeyStatusMap`, Ready handled apart).
const PRESSURE_TAINTS: &[(&str, &str)] = &[
    ("MemoryPressure", "node.kubernetes.io/memory-pressure"),
    ("DiskPressure", "node.kubernetes.io/disk-pressure"),
    ("PIDPressure", "node.kubernetes.io/pid-pressure"),
    (
        "NetworkUnavailable",
        "node.kubernetes.io/network-unavailable",
    ),
];
/// The conditions a silent node has set to Unknown.
const MONITORED_CONDITIONS: &[&str] = &["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

/// Every taint key this controller owns; others on the node are left alone.
fn controller_taint(key: &str) -> bool {
    key == TAINT_NOT_READY
        || key == TAINT_UNREACHABLE
        || key == TAINT_UNSCHEDULABLE
        || PRESSURE_TAINTS.iter().any(|(_, k)| *k == key)
}

/// How often the zones' taint queues are served (upstream's `NodeEvictionPeriod`).
const TAINTING_PERIOD: Duration = Duration::from_millis(100);
/// Nodes with this label count in no zone's health.
const LABEL_EXCLUDE_DISRUPTION: &str = "node.kubernetes.io/exclude-disruption";

/// What the node lifecycle controller remembers between passes.
#[derive(Default)]
struct Lifecycle {
    /// The Ready status each node had at the previous pass.
    observed_ready: HashMap<String, String>,
    /// Per zone, the nodes waiting for their NoExecute taint and the rate they get it at.
    tainters: HashMap<String, ZoneTainter>,
    disruption: Disruption,
    /// Grace periods count from no earlier than this (set when leaving full disruption).
    health_floor: Option<jiff::Timestamp>,
}

pub fn controller(ctx: &Arc<Context>) -> BoxFuture<'static, ()> {
    let nodes = ctx.informers.get::<Node>();
    let leases = ctx.informers.get::<Lease>();
    let pods = ctx.informers.get::<Pod>();
    let ctx = ctx.clone();
    async move {
        let mut lc = Lifecycle::default();
        let rates = ctx.config.eviction;
        let mut monitor_tick = tokio::time::interval(ctx.config.node_monitor_period);
        monitor_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut taint_tick = tokio::time::interval(TAINTING_PERIOD);
        taint_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ctx.shutdown.cancelled() => return,
                _ = monitor_tick.tick() => {
                    let all = nodes.store().state();
                    let mut zones: BTreeMap<String, Vec<Option<String>>> = BTreeMap::new();
                    for node in &all {
                        let zone = zone_key(node);
                        lc.tainters
                            .entry(zone.clone())
                            .or_insert_with(|| ZoneTainter::new(rates.node_eviction_rate));
                        let ready = match monitor(&ctx, node, &leases, &pods, &mut lc).await {
                            Ok(r) => r,
                            Err(e) => {
                                tracing::warn!(controller = COMPONENT, node = %node.name_any(), error = %e, "node health");
                                condition(node, "Ready").map(|c| c.status.clone())
                            }
                        };
                        let excluded = node.labels().contains_key(LABEL_EXCLUDE_DISRUPTION);
                        if !excluded {
                            zones.entry(zone).or_default().push(ready);
                        }
                    }
                    let names: HashSet<String> = all.iter().map(|n| n.name_any()).collect();
                    lc.observed_ready.retain(|n, _| names.contains(n));
                    for t in lc.tainters.values_mut() {
                        t.retain(&names);
                    }
                    handle_disruption(&ctx, &mut lc, &zones, &all).await;
                }
                _ = taint_tick.tick() => tainting_pass(&ctx, &mut lc).await,
            }
        }
    }
    .boxed()
}

/// Applies the zones' new states (upstream's `handleDisruption`).
async fn handle_disruption(
    ctx: &Context,
    lc: &mut Lifecycle,
    zones: &BTreeMap<String, Vec<Option<String>>>,
    nodes: &[Arc<Node>],
) {
    let rates = ctx.config.eviction;
    let decision = lc.disruption.observe(zones, &rates);
    if decision.untaint_all {
        tracing::info!(
            controller = COMPONENT,
            "every node is not ready: entering master disruption mode, no evictions"
        );
        for node in nodes {
            for t in lc.tainters.values_mut() {
                t.remove(&node.name_any());
            }
            if let Err(e) = set_no_execute(ctx, &node.name_any(), None).await {
                tracing::warn!(controller = COMPONENT, node = %node.name_any(), error = %e, "removing NoExecute taints");
            }
        }
    }
    if decision.reset_health {
        tracing::info!(
            controller = COMPONENT,
            "some nodes are ready: leaving master disruption mode"
        );
        lc.health_floor = Some(jiff::Timestamp::now());
    }
    for (zone, rate) in decision.rates {
        tracing::info!(controller = COMPONENT, zone = %zone.replace('\0', ""), rate, "zone eviction rate");
        lc.tainters
            .entry(zone)
            .or_insert_with(|| ZoneTainter::new(rates.node_eviction_rate))
            .swap_rate(rate, Instant::now());
    }
}

/// Gives the nodes whose turn has come in their zone's queue the NoExecute taint of their
/// Ready status (upstream's `doNoExecuteTaintingPass`).
async fn tainting_pass(ctx: &Context, lc: &mut Lifecycle) {
    let now = Instant::now();
    let due: Vec<(String, String)> = lc
        .tainters
        .iter_mut()
        .flat_map(|(zone, t)| {
            t.take_due(now)
                .into_iter()
                .map(|n| (zone.clone(), n))
                .collect::<Vec<_>>()
        })
        .collect();
    for (zone, node) in due {
        let done = match taint_for_eviction(ctx, &node).await {
            Ok(done) => done,
            Err(e) => {
                tracing::warn!(controller = COMPONENT, node = %node, error = %e, "tainting node");
                false
            }
        };
        if !done {
            if let Some(t) = lc.tainters.get_mut(&zone) {
                t.retry(node);
            }
        }
    }
}

/// Adds the NoExecute taint for `node`'s current Ready status (removing the other one);
/// true when done or nothing is to be done.
async fn taint_for_eviction(ctx: &Context, node: &str) -> Result<bool> {
    let api: Api<Node> = Api::all(ctx.client.clone());
    let Some(current) = util::absent_ok(api.get(node).await)? else {
        return Ok(true);
    };
    let key = match condition(&current, "Ready").map(|c| c.status.as_str()) {
        Some("False") => TAINT_NOT_READY,
        Some("True") | None => return Ok(true),
        Some(_) => TAINT_UNREACHABLE,
    };
    tracing::info!(
        controller = COMPONENT,
        node,
        taint = key,
        "tainting node for eviction"
    );
    set_no_execute_on(&api, &current, Some(key)).await
}

/// Sets the controller's NoExecute taint of `node` to `key` (none: removes both).
async fn set_no_execute(ctx: &Context, node: &str, key: Option<&'static str>) -> Result<bool> {
    let api: Api<Node> = Api::all(ctx.client.clone());
    let Some(current) = util::absent_ok(api.get(node).await)? else {
        return Ok(true);
    };
    set_no_execute_on(&api, &current, key).await
}

async fn set_no_execute_on(
    api: &Api<Node>,
    node: &Node,
    key: Option<&'static str>,
) -> Result<bool> {
    let current: Vec<Taint> = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let mut next: Vec<Taint> = current
        .iter()
        .filter(|t| !is_eviction_taint(t) || Some(t.key.as_str()) == key)
        .cloned()
        .collect();
    if let Some(key) = key {
        if !next.iter().any(|t| is_eviction_taint(t) && t.key == key) {
            next.push(Taint {
                key: key.into(),
                effect: "NoExecute".into(),
                time_added: Some(util::now()),
                value: None,
            });
        }
    }
    if next == current {
        return Ok(true);
    }
    patch_taints(api, node, &next).await
}

/// Writes `taints` to the node as it was read (409: someone else wrote first; false).
async fn patch_taints(api: &Api<Node>, node: &Node, taints: &[Taint]) -> Result<bool> {
    let taints = if taints.is_empty() {
        Value::Null
    } else {
        serde_json::to_value(taints)?
    };
    let patch = json!({"metadata": {"resourceVersion": node.metadata.resource_version},
        "spec": {"taints": taints}});
    match api
        .patch(
            &node.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(e.into()),
    }
}

fn is_eviction_taint(t: &Taint) -> bool {
    t.effect == "NoExecute" && (t.key == TAINT_NOT_READY || t.key == TAINT_UNREACHABLE)
}

/// The zone of a node (upstream's `GetZoneKey`): region and zone from the topology labels
/// (or their deprecated failure-domain forms); "" without either.
pub fn zone_key(node: &Node) -> String {
    let labels = node.labels();
    let get = |k: &str, old: &str| {
        labels
            .get(k)
            .or_else(|| labels.get(old))
            .cloned()
            .unwrap_or_default()
    };
    let zone = get(
        "topology.kubernetes.io/zone",
        "failure-domain.beta.kubernetes.io/zone",
    );
    let region = get(
        "topology.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/region",
    );
    if region.is_empty() && zone.is_empty() {
        return String::new();
    }
    format!("{region}:\0:{zone}")
}

/// A zone's health (upstream's `ZoneState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZoneState {
    /// Not looked at yet.
    Initial,
    Normal,
    /// At least three nodes and `--unhealthy-zone-threshold` of them not Ready.
    PartialDisruption,
    /// No node Ready.
    FullDisruption,
}

/// The number of not-Ready nodes and the state of a zone whose nodes have these Ready
/// statuses (`None`: not reported) (upstream's `ComputeZoneState`).
pub fn compute_zone_state(
    ready: &[Option<String>],
    unhealthy_threshold: f64,
) -> (usize, ZoneState) {
    let ready_nodes = ready
        .iter()
        .filter(|r| r.as_deref() == Some("True"))
        .count();
    let not_ready = ready.len() - ready_nodes;
    let state = if ready_nodes == 0 && not_ready > 0 {
        ZoneState::FullDisruption
    } else if not_ready > 2 && not_ready as f64 / ready.len() as f64 >= unhealthy_threshold {
        ZoneState::PartialDisruption
    } else {
        ZoneState::Normal
    };
    (not_ready, state)
}

/// The tainting rate (nodes per second) of a zone of `size` nodes in `state`: the
/// secondary rate for an unhealthy zone of a large cluster, none for an unhealthy zone of a
/// small one, else the normal rate (upstream's `setLimiterInZone` with `ReducedQPSFunc` and
/// `HealthyQPSFunc`).
pub fn zone_rate(state: ZoneState, size: usize, rates: &EvictionRates) -> f64 {
    match state {
        ZoneState::PartialDisruption => {
            if size as i64 > i64::from(rates.large_cluster_size_threshold) {
                rates.secondary_node_eviction_rate
            } else {
                0.0
            }
        }
        ZoneState::Normal | ZoneState::FullDisruption | ZoneState::Initial => {
            rates.node_eviction_rate
        }
    }
}

/// The zones' states from one pass to the next.
#[derive(Default, Debug)]
pub struct Disruption {
    states: BTreeMap<String, ZoneState>,
}

/// What a change of zone states asks for.
#[derive(Default, Debug, PartialEq)]
pub struct DisruptionDecision {
    /// New tainting rates, per zone.
    pub rates: Vec<(String, f64)>,
    /// Every zone is fully disrupted (the trouble is likely on the control plane's side):
    /// every node loses its NoExecute taints and leaves the queues; nothing is tainted.
    pub untaint_all: bool,
    /// Leaving full disruption: every node's health is judged afresh.
    pub reset_health: bool,
}

impl Disruption {
    pub fn state(&self, zone: &str) -> Option<ZoneState> {
        self.states.get(zone).copied()
    }

    /// Takes the Ready statuses of the nodes of every zone seen in a pass (upstream's
    /// `handleDisruption`).
    pub fn observe(
        &mut self,
        zones: &BTreeMap<String, Vec<Option<String>>>,
        rates: &EvictionRates,
    ) -> DisruptionDecision {
        let mut decision = DisruptionDecision::default();
        let mut new_states: BTreeMap<&str, ZoneState> = BTreeMap::new();
        let mut all_are_full = true;
        for (zone, ready) in zones {
            let (_, state) = compute_zone_state(ready, rates.unhealthy_zone_threshold);
            all_are_full &= state == ZoneState::FullDisruption;
            new_states.insert(zone, state);
            self.states
                .entry(zone.clone())
                .or_insert(ZoneState::Initial);
        }
        self.states.retain(|z, _| zones.contains_key(z));
        let all_were_full = self
            .states
            .values()
            .all(|s| *s == ZoneState::FullDisruption);
        if all_are_full && all_were_full {
            return decision;
        }
        if all_are_full {
            for (zone, state) in self.states.iter_mut() {
                decision.rates.push((zone.clone(), 0.0));
                *state = ZoneState::FullDisruption;
            }
            decision.untaint_all = true;
            return decision;
        }
        if all_were_full {
            decision.reset_health = true;
        }
        for (zone, state) in self.states.iter_mut() {
            let new = new_states
                .get(zone.as_str())
                .copied()
                .unwrap_or(ZoneState::Normal);
            if *state == new && !all_were_full {
                continue;
            }
            let size = zones.get(zone).map_or(0, Vec::len);
            decision
                .rates
                .push((zone.clone(), zone_rate(new, size, rates)));
            *state = new;
        }
        decision
    }
}

/// A token bucket holding at most one token (upstream's eviction limiter: burst 1).
#[derive(Debug)]
struct TokenBucket {
    rate: f64,
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    fn new(rate: f64, now: Instant) -> Self {
        TokenBucket {
            rate,
            tokens: 1.0,
            at: now,
        }
    }

    fn try_take(&mut self, now: Instant) -> bool {
        if self.rate <= 0.0 {
            return false;
        }
        let refill = now.saturating_duration_since(self.at).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(1.0);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// One zone's queue of nodes waiting for their NoExecute taint (upstream's
/// `RateLimitedTimedQueue`): a node stays a member after being tainted, so it is not queued
/// again until it is removed (it became Ready, or lost its taint).
#[derive(Debug)]
struct ZoneTainter {
    limiter: TokenBucket,
    queue: VecDeque<String>,
    members: HashSet<String>,
}

impl ZoneTainter {
    fn new(rate: f64) -> Self {
        ZoneTainter {
            limiter: TokenBucket::new(rate, Instant::now()),
            queue: VecDeque::new(),
            members: HashSet::new(),
        }
    }

    /// Queues `node` unless it is a member already; true if queued.
    fn add(&mut self, node: &str) -> bool {
        if !self.members.insert(node.to_string()) {
            return false;
        }
        self.queue.push_back(node.to_string());
        true
    }

    fn remove(&mut self, node: &str) {
        self.members.remove(node);
        self.queue.retain(|n| n != node);
    }

    fn retain(&mut self, nodes: &HashSet<String>) {
        self.members.retain(|n| nodes.contains(n));
        self.queue.retain(|n| nodes.contains(n));
    }

    /// The nodes whose turn has come (as many as the limiter lets through).
    fn take_due(&mut self, now: Instant) -> Vec<String> {
        let mut out = Vec::new();
        while !self.queue.is_empty() && self.limiter.try_take(now) {
            if let Some(n) = self.queue.pop_front() {
                out.push(n);
            }
        }
        out
    }

    /// Back in the queue after a failed attempt.
    fn retry(&mut self, node: String) {
        if self.members.contains(&node) && !self.queue.contains(&node) {
            self.queue.push_back(node);
        }
    }

    /// A new rate; a limiter that had no token left leaves the new one without one either.
    fn swap_rate(&mut self, rate: f64, now: Instant) {
        if self.limiter.rate == rate {
            return;
        }
        let mut next = TokenBucket::new(rate, now);
        if rate > 0.0 && !self.limiter.try_take(now) {
            next.tokens = 0.0;
        }
        self.limiter = next;
    }
}

/// What becomes of a node's NoExecute taints for its Ready status (upstream's
/// `processTaintBaseEviction`).
#[derive(Debug, PartialEq)]
enum NoExecute {
    /// Ready unknown (never reported): leave them.
    Keep,
    /// Ready: remove both, leave the queue.
    Untaint,
    /// Tainted for the other not-ready state: swap to this key at once.
    Swap(&'static str),
    /// Wait in the zone's queue; `tainted`: the wanted taint is there already.
    Queue { tainted: bool },
}

fn no_execute_action(current: &[Taint], ready: Option<&str>) -> NoExecute {
    let has = |key: &str| current.iter().any(|t| is_eviction_taint(t) && t.key == key);
    match ready {
        None => NoExecute::Keep,
        Some("True") => NoExecute::Untaint,
        Some("False") if has(TAINT_UNREACHABLE) => NoExecute::Swap(TAINT_NOT_READY),
        Some("False") => NoExecute::Queue {
            tainted: has(TAINT_NOT_READY),
        },
        Some(_) if has(TAINT_NOT_READY) => NoExecute::Swap(TAINT_UNREACHABLE),
        Some(_) => NoExecute::Queue {
            tainted: has(TAINT_UNREACHABLE),
        },
    }
}

fn condition<'a>(node: &'a Node, type_: &str) -> Option<&'a NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_deref()?
        .iter()
        .find(|c| c.type_ == type_)
}

/// The newest sign of life: the Lease's renew time or the Ready heartbeat.
fn last_heartbeat(node: &Node, lease: Option<&Lease>) -> Option<jiff::Timestamp> {
    let renewed = lease
        .and_then(|l| l.spec.as_ref())
        .and_then(|s| s.renew_time.as_ref())
        .map(|t| t.0);
    let posted = condition(node, "Ready")
        .and_then(|c| c.last_heartbeat_time.as_ref())
        .map(|t| t.0);
    renewed.max(posted)
}

fn elapsed(since: jiff::Timestamp) -> Duration {
    let ms = jiff::Timestamp::now().as_millisecond() - since.as_millisecond();
    Duration::from_millis(ms.max(0) as u64)
}

async fn monitor(
    ctx: &Context,
    node: &Node,
    leases: &crate::informer::Informer<Lease>,
    pods: &crate::informer::Informer<Pod>,
    lc: &mut Lifecycle,
) -> Result<Option<String>> {
    let name = node.name_any();
    let lease =
        leases.store().state().into_iter().find(|l| {
            l.metadata.namespace.as_deref() == Some(LEASE_NAMESPACE) && l.name_any() == name
        });
    let api: Api<Node> = Api::all(ctx.client.clone());
    let grace = ctx.config.node_monitor_grace_period;
    let mut conditions: Vec<NodeCondition> = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();

    // A silent node: every monitored condition becomes Unknown.
    let never_posted = condition(node, "Ready").is_none();
    let since = last_heartbeat(node, lease.as_deref())
        .or_else(|| node.metadata.creation_timestamp.as_ref().map(|t| t.0))
        .map(|t| lc.health_floor.map_or(t, |floor| t.max(floor)));
    let mut resource_version = node.metadata.resource_version.clone();
    let silent = since.is_some_and(|t| elapsed(t) > grace);
    if silent {
        let now = util::now();
        let mut changed = false;
        for type_ in MONITORED_CONDITIONS {
            match conditions.iter_mut().find(|c| c.type_ == *type_) {
                Some(c) if c.status != "Unknown" => {
                    c.status = "Unknown".into();
                    c.reason = Some("NodeStatusUnknown".into());
                    c.message = Some("Kubelet stopped posting node status.".into());
                    c.last_transition_time = Some(now.clone());
                    changed = true;
                }
                Some(_) => {}
                None => {
                    conditions.push(NodeCondition {
                        type_: (*type_).into(),
                        status: "Unknown".into(),
                        reason: Some("NodeStatusNeverUpdated".into()),
                        message: Some("Kubelet never posted node status.".into()),
                        last_heartbeat_time: node.metadata.creation_timestamp.clone(),
                        last_transition_time: Some(now.clone()),
                    });
                    changed = true;
                }
            }
        }
        if changed {
            tracing::info!(controller = COMPONENT, node = %name, never_posted, "node stopped posting status");
            let patch = json!({
                "metadata": {"resourceVersion": node.metadata.resource_version},
                "status": {"conditions": conditions},
            });
            match api
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(updated) => resource_version = updated.metadata.resource_version,
                // Raced with the kubelet or another writer: the next pass looks again.
                Err(kube::Error::Api(s)) if matches!(s.code, 404 | 409) => {
                    return Ok(condition(node, "Ready").map(|c| c.status.clone()))
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    let ready = conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map_or("Unknown", |c| c.status.as_str())
        .to_string();
    let before = lc
        .observed_ready
        .insert(name.clone(), ready.clone())
        .unwrap_or_else(|| "True".into());
    if before == "True" && ready != "True" {
        ctx.events.publish(
            COMPONENT,
            node,
            NORMAL,
            "NodeNotReady",
            format!("Node {name} status is now: NodeNotReady"),
        );
        mark_pods_not_ready(ctx, pods, &name).await;
    }

    // Taints from the conditions as now known: the NoSchedule ones follow at once
    // (upstream's `doNoScheduleTaintingPass`); of the NoExecute ones that evict pods,
    // removal and swapping happen at once, adding waits for the zone's rate limit.
    let ready_status = conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status.clone());
    let wanted = wanted_taints(&conditions, node_unschedulable(node));
    let current: Vec<Taint> = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let action = no_execute_action(&current, ready_status.as_deref());
    let zone = zone_key(node);
    let mut next: Vec<Taint> = current
        .iter()
        .filter(|t| {
            if is_eviction_taint(t) {
                return matches!(action, NoExecute::Keep | NoExecute::Queue { .. });
            }
            !controller_taint(&t.key) || wanted.iter().any(|(k, e)| *k == t.key && *e == t.effect)
        })
        .cloned()
        .collect();
    let now = util::now();
    for (key, effect) in &wanted {
        if !next.iter().any(|t| t.key == *key && t.effect == *effect) {
            next.push(Taint {
                key: (*key).into(),
                effect: (*effect).into(),
                time_added: Some(now.clone()),
                value: None,
            });
        }
    }
    let tainter = lc
        .tainters
        .entry(zone)
        .or_insert_with(|| ZoneTainter::new(ctx.config.eviction.node_eviction_rate));
    match action {
        NoExecute::Keep => {}
        NoExecute::Untaint => tainter.remove(&name),
        NoExecute::Swap(key) => {
            tracing::info!(controller = COMPONENT, node = %name, taint = key, "swapping the NoExecute taint");
            next.push(Taint {
                key: key.into(),
                effect: "NoExecute".into(),
                time_added: Some(now.clone()),
                value: None,
            });
        }
        NoExecute::Queue { tainted } => {
            // Lost its taint meanwhile: queue it afresh.
            if !tainted {
                tainter.remove(&name);
            }
            if tainter.add(&name) {
                tracing::info!(controller = COMPONENT, node = %name, ready = %ready, "node queued for the NoExecute taint");
            }
        }
    }
    if next != current {
        tracing::info!(controller = COMPONENT, node = %name, ready = %ready, "updating node taints");
        // Pinned to the version read (or just written): a concurrent cordon is not lost.
        let mut pinned = node.clone();
        pinned.metadata.resource_version = resource_version;
        patch_taints(&api, &pinned, &next).await?;
    }
    Ok(ready_status)
}

fn node_unschedulable(node: &Node) -> bool {
    node.spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false)
}

/// The controller's NoSchedule taints for `conditions`: (key, effect).
fn wanted_taints(
    conditions: &[NodeCondition],
    unschedulable: bool,
) -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    let status = |t: &str| {
        conditions
            .iter()
            .find(|c| c.type_ == t)
            .map(|c| c.status.as_str())
    };
    match status("Ready") {
        Some("True") => {}
        Some("False") => out.push((TAINT_NOT_READY, "NoSchedule")),
        Some(_) => out.push((TAINT_UNREACHABLE, "NoSchedule")),
        // Not reported yet (within the grace period): not schedulable, as admission
        // tainted it at registration, but nothing is evicted.
        None => out.push((TAINT_NOT_READY, "NoSchedule")),
    }
    for (cond, key) in PRESSURE_TAINTS {
        if status(cond) == Some("True") {
            out.push((*key, "NoSchedule"));
        }
    }
    if unschedulable {
        out.push((TAINT_UNSCHEDULABLE, "NoSchedule"));
    }
    out
}

/// Sets `Ready=False` on the pods of a node that stopped being ready (upstream's
/// `MarkPodsNotReady`).
async fn mark_pods_not_ready(ctx: &Context, pods: &crate::informer::Informer<Pod>, node: &str) {
    let on_node = pods
        .store()
        .state_filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node));
    for pod in on_node {
        let Some(conds) = pod.status.as_ref().and_then(|s| s.conditions.clone()) else {
            continue;
        };
        if !conds
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
        {
            continue;
        }
        let conds: Vec<_> = conds
            .into_iter()
            .map(|mut c| {
                if c.type_ == "Ready" {
                    c.status = "False".into();
                    c.last_transition_time = Some(util::now());
                }
                c
            })
            .collect();
        let api: Api<Pod> =
            Api::namespaced(ctx.client.clone(), &pod.namespace().unwrap_or_default());
        let patch = json!({"status": {"conditions": conds}});
        if let Err(e) = api
            .patch_status(
                &pod.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            tracing::debug!(controller = COMPONENT, pod = %pod.name_any(), error = %e, "marking pod not ready");
        }
    }
}

/// Whether `toleration` tolerates `taint` (upstream's `ToleratesTaint`).
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if let Some(e) = toleration.effect.as_deref().filter(|e| !e.is_empty()) {
        if e != taint.effect {
            return false;
        }
    }
    let key = toleration.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => {
            !key.is_empty()
                && toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        _ => false,
    }
}

/// When a pod on a node with `taints` (NoExecute only) must go: `Some(None)` at once,
/// `Some(Some(t))` at `t`, `None` never.
fn eviction_time(pod: &Pod, taints: &[&Taint]) -> Option<Option<jiff::Timestamp>> {
    if taints.is_empty() {
        return None;
    }
    let tolerations = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or_default();
    let mut min_seconds: Option<i64> = None;
    for taint in taints {
        let used: Vec<&Toleration> = tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        if used.is_empty() {
            return Some(None);
        }
        // A taint tolerated forever by one toleration is tolerated forever.
        if used.iter().any(|t| t.toleration_seconds.is_none()) {
            continue;
        }
        let secs = used
            .iter()
            .filter_map(|t| t.toleration_seconds)
            .min()
            .unwrap_or(0)
            .max(0);
        min_seconds = Some(min_seconds.map_or(secs, |m| m.min(secs)));
    }
    let secs = min_seconds?;
    // From the oldest NoExecute taint (the moment the node became tainted).
    let since = taints
        .iter()
        .filter_map(|t| t.time_added.as_ref().map(|x| x.0))
        .min()
        .unwrap_or_else(jiff::Timestamp::now);
    let at = since
        .checked_add(jiff::SignedDuration::from_secs(secs))
        .unwrap_or(since);
    Some(Some(at))
}

pub fn taint_eviction_controller(ctx: &Arc<Context>) -> BoxFuture<'static, ()> {
    let nodes = ctx.informers.get::<Node>();
    let pods = ctx.informers.get::<Pod>();
    let ctx = ctx.clone();
    async move {
        let mut evicted: HashSet<String> = HashSet::new();
        let tick = ctx
            .config
            .node_monitor_period
            .min(Duration::from_millis(500));
        loop {
            let tainted: HashMap<String, Vec<Taint>> = nodes
                .store()
                .state()
                .iter()
                .filter_map(|n| {
                    let t: Vec<Taint> = n
                        .spec
                        .as_ref()
                        .and_then(|s| s.taints.as_ref())
                        .into_iter()
                        .flatten()
                        .filter(|t| t.effect == "NoExecute")
                        .cloned()
                        .collect();
                    (!t.is_empty()).then(|| (n.name_any(), t))
                })
                .collect();
            let candidates = if tainted.is_empty() {
                Vec::new()
            } else {
                pods.store().state_filter(|p| {
                    p.metadata.deletion_timestamp.is_none()
                        && p.spec
                            .as_ref()
                            .and_then(|s| s.node_name.as_ref())
                            .is_some_and(|n| tainted.contains_key(n))
                })
            };
            let live: HashSet<String> = candidates.iter().filter_map(|p| p.uid()).collect();
            evicted.retain(|u| live.contains(u));
            let now = jiff::Timestamp::now();
            for pod in candidates {
                let node = pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.node_name.clone())
                    .unwrap_or_default();
                let taints: Vec<&Taint> = tainted.get(&node).into_iter().flatten().collect();
                let due = match eviction_time(&pod, &taints) {
                    Some(None) => true,
                    Some(Some(at)) => at <= now,
                    None => false,
                };
                let uid = pod.uid().unwrap_or_default();
                if !due || evicted.contains(&uid) {
                    continue;
                }
                if evict_for_taint(&ctx, &pod).await {
                    evicted.insert(uid);
                }
            }
            tokio::select! {
                _ = ctx.shutdown.cancelled() => return,
                _ = tokio::time::sleep(tick) => {}
            }
        }
    }
    .boxed()
}

/// Marks the pod as disrupted and deletes it; true when done (or already gone).
async fn evict_for_taint(ctx: &Context, pod: &Pod) -> bool {
    let ns = pod.namespace().unwrap_or_default();
    let name = pod.name_any();
    ctx.events.publish(
        TAINT_COMPONENT,
        pod,
        NORMAL,
        "TaintManagerEviction",
        format!("Marking for deletion Pod {ns}/{name}"),
    );
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let terminal = matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    );
    if !terminal {
        let mut conds = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        conds.retain(|c| c.type_ != "DisruptionTarget");
        let mut conds = serde_json::to_value(conds).unwrap_or_else(|_| json!([]));
        if let Some(list) = conds.as_array_mut() {
            list.push(json!({"type": "DisruptionTarget", "status": "True",
                "reason": "DeletionByTaintManager",
                "message": "Taint manager: deleting due to NoExecute taint",
                "lastTransitionTime": Time(jiff::Timestamp::now())}));
        }
        let _ = api
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"status": {"conditions": conds}})),
            )
            .await;
    }
    match api.delete(&name, &DeleteParams::default()).await {
        Ok(_) => true,
        Err(kube::Error::Api(s)) if s.code == 404 => true,
        Err(e) => {
            tracing::warn!(controller = TAINT_COMPONENT, pod = %format!("{ns}/{name}"), error = %e, "deleting pod");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            effect: effect.into(),
            time_added: Some(util::now()),
            value: None,
        }
    }

    #[test]
    fn toleration_matching() {
        let t = taint(TAINT_UNREACHABLE, "NoExecute");
        let exists = Toleration {
            key: Some(TAINT_UNREACHABLE.into()),
            operator: Some("Exists".into()),
            effect: Some("NoExecute".into()),
            toleration_seconds: Some(2),
            ..Default::default()
        };
        assert!(tolerates(&exists, &t));
        let other = Toleration {
            key: Some(TAINT_NOT_READY.into()),
            operator: Some("Exists".into()),
            ..Default::default()
        };
        assert!(!tolerates(&other, &t));
        let all = Toleration {
            operator: Some("Exists".into()),
            ..Default::default()
        };
        assert!(tolerates(&all, &t));

        let mut pod = Pod::default();
        assert_eq!(eviction_time(&pod, &[&t]), Some(None));
        pod.spec = Some(k8s_openapi::api::core::v1::PodSpec {
            tolerations: Some(vec![exists, all]),
            ..Default::default()
        });
        // One toleration without seconds tolerates forever.
        assert_eq!(eviction_time(&pod, &[&t]), None);
        if let Some(s) = pod.spec.as_mut() {
            s.tolerations.as_mut().map(|v| v.pop());
        }
        assert!(matches!(eviction_time(&pod, &[&t]), Some(Some(_))));
    }

    #[test]
    fn taints_follow_ready() {
        let cond = |s: &str| NodeCondition {
            type_: "Ready".into(),
            status: s.into(),
            ..Default::default()
        };
        assert!(wanted_taints(&[cond("True")], false).is_empty());
        assert_eq!(
            wanted_taints(&[cond("Unknown")], false),
            vec![(TAINT_UNREACHABLE, "NoSchedule")]
        );
        assert_eq!(
            wanted_taints(&[cond("False")], true),
            vec![
                (TAINT_NOT_READY, "NoSchedule"),
                (TAINT_UNSCHEDULABLE, "NoSchedule")
            ]
        );
        assert_eq!(
            wanted_taints(&[], false),
            vec![(TAINT_NOT_READY, "NoSchedule")]
        );
    }

    #[test]
    fn no_execute_taints_follow_ready_through_the_queue() {
        let unreachable = [taint(TAINT_UNREACHABLE, "NoExecute")];
        let not_ready = [taint(TAINT_NOT_READY, "NoExecute")];
        assert_eq!(no_execute_action(&[], None), NoExecute::Keep);
        assert_eq!(
            no_execute_action(&unreachable, Some("True")),
            NoExecute::Untaint
        );
        assert_eq!(
            no_execute_action(&[], Some("Unknown")),
            NoExecute::Queue { tainted: false }
        );
        assert_eq!(
            no_execute_action(&unreachable, Some("Unknown")),
            NoExecute::Queue { tainted: true }
        );
        assert_eq!(
            no_execute_action(&unreachable, Some("False")),
            NoExecute::Swap(TAINT_NOT_READY)
        );
        assert_eq!(
            no_execute_action(&not_ready, Some("Unknown")),
            NoExecute::Swap(TAINT_UNREACHABLE)
        );
        // A NoSchedule taint of the same key does not count.
        assert_eq!(
            no_execute_action(&[taint(TAINT_NOT_READY, "NoSchedule")], Some("False")),
            NoExecute::Queue { tainted: false }
        );
    }

    fn statuses(ready: usize, not_ready: usize, unreported: usize) -> Vec<Option<String>> {
        let mut v = vec![Some("True".to_string()); ready];
        v.extend(vec![Some("Unknown".to_string()); not_ready]);
        v.extend(vec![None; unreported]);
        v
    }

    #[test]
    fn zone_states_as_upstream() {
        let t = 0.55;
        assert_eq!(
            compute_zone_state(&statuses(3, 0, 0), t),
            (0, ZoneState::Normal)
        );
        assert_eq!(
            compute_zone_state(&statuses(0, 2, 1), t),
            (3, ZoneState::FullDisruption)
        );
        // Two not-ready nodes never make a partial disruption, whatever the share.
        assert_eq!(
            compute_zone_state(&statuses(1, 2, 0), t),
            (2, ZoneState::Normal)
        );
        assert_eq!(
            compute_zone_state(&statuses(2, 3, 0), t),
            (3, ZoneState::PartialDisruption)
        );
        // 3 of 6 is under 55 %.
        assert_eq!(
            compute_zone_state(&statuses(3, 3, 0), t),
            (3, ZoneState::Normal)
        );
        assert_eq!(compute_zone_state(&[], t), (0, ZoneState::Normal));
    }

    #[test]
    fn zone_rates_as_upstream() {
        let r = EvictionRates::default();
        assert_eq!(r.node_eviction_rate, 0.1);
        assert_eq!(r.secondary_node_eviction_rate, 0.01);
        assert_eq!(r.unhealthy_zone_threshold, 0.55);
        assert_eq!(r.large_cluster_size_threshold, 50);
        assert_eq!(zone_rate(ZoneState::Normal, 10, &r), 0.1);
        assert_eq!(zone_rate(ZoneState::FullDisruption, 10, &r), 0.1);
        assert_eq!(zone_rate(ZoneState::PartialDisruption, 50, &r), 0.0);
        assert_eq!(zone_rate(ZoneState::PartialDisruption, 51, &r), 0.01);
    }

    #[test]
    fn disruption_modes_as_upstream() {
        let r = EvictionRates::default();
        let mut d = Disruption::default();
        let zones =
            |list: &[(&str, Vec<Option<String>>)]| -> BTreeMap<String, Vec<Option<String>>> {
                list.iter()
                    .map(|(z, v)| (z.to_string(), v.clone()))
                    .collect()
            };
        // First sight: every zone gets the rate of its state.
        let got = d.observe(
            &zones(&[("a", statuses(3, 0, 0)), ("b", statuses(2, 2, 0))]),
            &r,
        );
        assert_eq!(got.rates, vec![("a".into(), 0.1), ("b".into(), 0.1)]);
        assert!(!got.untaint_all && !got.reset_health);
        // b goes partially disrupted in a small cluster: it stops tainting.
        let got = d.observe(
            &zones(&[("a", statuses(3, 0, 0)), ("b", statuses(1, 4, 0))]),
            &r,
        );
        assert_eq!(got.rates, vec![("b".into(), 0.0)]);
        assert_eq!(d.state("b"), Some(ZoneState::PartialDisruption));
        // Unchanged: nothing to do.
        let got = d.observe(
            &zones(&[("a", statuses(3, 0, 0)), ("b", statuses(1, 4, 0))]),
            &r,
        );
        assert_eq!(got, DisruptionDecision::default());
        // b fully disrupted while a is fine: b taints at the normal rate.
        let got = d.observe(
            &zones(&[("a", statuses(3, 0, 0)), ("b", statuses(0, 5, 0))]),
            &r,
        );
        assert_eq!(got.rates, vec![("b".into(), 0.1)]);
        // Every zone fully disrupted: stop everything, untaint every node.
        let got = d.observe(
            &zones(&[("a", statuses(0, 3, 0)), ("b", statuses(0, 5, 0))]),
            &r,
        );
        assert!(got.untaint_all);
        assert_eq!(got.rates, vec![("a".into(), 0.0), ("b".into(), 0.0)]);
        let got = d.observe(
            &zones(&[("a", statuses(0, 3, 0)), ("b", statuses(0, 5, 0))]),
            &r,
        );
        assert_eq!(got, DisruptionDecision::default(), "stays stopped");
        // One node back: leave the mode, every zone gets its rate again.
        let got = d.observe(
            &zones(&[("a", statuses(1, 2, 0)), ("b", statuses(0, 5, 0))]),
            &r,
        );
        assert!(got.reset_health && !got.untaint_all);
        assert_eq!(got.rates, vec![("a".into(), 0.1), ("b".into(), 0.1)]);
        // A zone that disappears is forgotten.
        d.observe(&zones(&[("a", statuses(3, 0, 0))]), &r);
        assert_eq!(d.state("b"), None);
        // A single node cluster whose node is lost: master disruption, no eviction.
        let mut single = Disruption::default();
        single.observe(&zones(&[("", statuses(1, 0, 0))]), &r);
        let got = single.observe(&zones(&[("", statuses(0, 1, 0))]), &r);
        assert!(got.untaint_all);
    }

    #[test]
    fn zone_queue_is_rate_limited() {
        let mut q = ZoneTainter::new(1.0);
        let t0 = Instant::now();
        assert!(q.add("a") && q.add("b") && q.add("c"));
        assert!(!q.add("a"), "queued once");
        // Burst of one, then one per second.
        assert_eq!(q.take_due(t0), vec!["a".to_string()]);
        assert!(q.take_due(t0 + Duration::from_millis(500)).is_empty());
        assert_eq!(
            q.take_due(t0 + Duration::from_millis(1000)),
            vec!["b".to_string()]
        );
        // A tainted node stays a member: not queued again until removed.
        assert!(!q.add("a"));
        q.remove("a");
        assert!(q.add("a"));
        // Rate 0 stops it; the new limiter of a drained one starts drained.
        q.swap_rate(0.0, t0 + Duration::from_millis(1000));
        assert!(q.take_due(t0 + Duration::from_secs(60)).is_empty());
        q.swap_rate(1.0, t0 + Duration::from_secs(60));
        assert!(q.take_due(t0 + Duration::from_secs(60)).is_empty());
        assert_eq!(
            q.take_due(t0 + Duration::from_secs(61)),
            vec!["c".to_string()]
        );
        // A failed attempt goes back in line.
        q.retry("c".into());
        assert_eq!(q.queue, ["a", "c"]);
    }

    #[test]
    fn zone_keys_as_upstream() {
        let mut node = Node::default();
        assert_eq!(zone_key(&node), "");
        node.metadata.labels = Some(
            [
                ("topology.kubernetes.io/region".to_string(), "r".to_string()),
                (
                    "failure-domain.beta.kubernetes.io/zone".to_string(),
                    "z".to_string(),
                ),
            ]
            .into(),
        );
        assert_eq!(zone_key(&node), "r:\0:z");
    }
}
