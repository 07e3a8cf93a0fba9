//! The horizontal pod autoscaler controller (`autoscaling/v2`), as upstream's
//! `pkg/controller/podautoscaler`.
//!
//! Every `--horizontal-pod-autoscaler-sync-period` each HorizontalPodAutoscaler is
//! reconciled: the target's `/scale` subresource gives the current replicas and the pod
//! selector; the `Resource` and `ContainerResource` metrics (utilization of the pods' requests
//! or an average value) are read from `metrics.k8s.io` and turned into a replica count by the
//! replica calculator ([`calculate`]: tolerance, missing metrics, not-yet-ready pods); the
//! highest proposal wins, is stabilized and rate limited ([`normalize_legacy`] without
//! `behavior`, [`normalize_with_behavior`] with it) and clamped to min/maxReplicas; the new
//! size is written through `/scale`. The status carries currentReplicas, desiredReplicas,
//! currentMetrics, lastScaleTime, observedGeneration and the AbleToScale, ScalingActive and
//! ScalingLimited conditions with upstream's reasons and messages; rescales and failures are
//! events. Pods, Object and External metrics (custom/external metrics APIs) are not served:
//! such metrics are reported invalid as upstream does when those APIs are absent.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::autoscaling::v2::{
    ContainerResourceMetricStatus, HPAScalingRules, HorizontalPodAutoscaler,
    HorizontalPodAutoscalerCondition, HorizontalPodAutoscalerStatus, MetricSpec, MetricStatus,
    MetricTarget, MetricValueStatus, ResourceMetricStatus,
};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::runtime::controller::{Action, Controller};
use kube::ResourceExt;
use serde_json::{json, Value};

use crate::events::{NORMAL, WARNING};
use crate::scaffold::{run_controller, Context, Error, Result};
use crate::util;

const COMPONENT: &str = "horizontal-pod-autoscaler";

// ----------------------------------------------------------------------------------------
// Quantities

/// A quantity in thousandths (`250m` → 250, `1Gi` → 1073741824000), rounded up as upstream's
/// `MilliValue`; `None` for malformed input.
pub fn milli_value(q: &str) -> Option<i64> {
    meso_scheduler::resources::parse_quantity(q, 1000.0)
}

/// A milli-value as a canonical decimal quantity (`250m`, `2`, `1500m`, `1048576`).
pub fn milli_quantity(v: i64) -> String {
    if v == 0 {
        return "0".into();
    }
    let suffixes = ["m", "", "k", "M", "G", "T", "P", "E"];
    let (mut n, mut i) = (v, 0);
    while n % 1000 == 0 && i + 1 < suffixes.len() {
        n /= 1000;
        i += 1;
    }
    format!("{n}{}", suffixes[i])
}

// ----------------------------------------------------------------------------------------
// Replica calculator

/// What the calculator needs of a pod.
#[derive(Debug, Clone)]
pub struct PodInfo {
    pub name: String,
    pub phase: String,
    pub deleting: bool,
    /// The Ready condition: (status is "True", last transition in ms), `None` if absent.
    pub ready: Option<(bool, i64)>,
    pub start_ms: Option<i64>,
    /// The summed request of the metric's resource (of one container for ContainerResource);
    /// `Err(container)` names a container without one.
    pub request_milli: std::result::Result<i64, String>,
}

/// One pod's metric sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PodMetric {
    pub value_milli: i64,
    pub timestamp_ms: i64,
    pub window_ms: i64,
}

/// What the calculator aims at per pod.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// Percent of the pods' requests.
    Utilization(i32),
    /// Average value per pod, in thousandths.
    AverageValue(i64),
}

/// The band of usage ratios that does not cause scaling.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerances {
    pub scale_down: f64,
    pub scale_up: f64,
}

impl Tolerances {
    fn within(&self, ratio: f64) -> bool {
        (1.0 - self.scale_down) <= ratio && ratio <= (1.0 + self.scale_up)
    }
}

/// The calculator's knobs (upstream's flags).
#[derive(Debug, Clone, Copy)]
pub struct Readiness {
    pub cpu_initialization_ms: i64,
    pub initial_readiness_delay_ms: i64,
    pub now_ms: i64,
}

/// The outcome of one metric: proposed replicas, the utilization (for Utilization targets)
/// and the average value per pod in thousandths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proposal {
    pub replicas: i32,
    pub utilization: Option<i32>,
    pub average_milli: i64,
}

/// Upstream's `groupPods`: (ready count, unready, missing, ignored).
fn group_pods(
    pods: &[PodInfo],
    metrics: &HashMap<String, PodMetric>,
    is_cpu: bool,
    r: &Readiness,
) -> (usize, HashSet<String>, HashSet<String>, HashSet<String>) {
    let (mut ready, mut unready, mut missing, mut ignored) =
        (0, HashSet::new(), HashSet::new(), HashSet::new());
    for p in pods {
        if p.deleting || p.phase == "Failed" {
            ignored.insert(p.name.clone());
            continue;
        }
        if p.phase == "Pending" {
            unready.insert(p.name.clone());
            continue;
        }
        let Some(m) = metrics.get(&p.name) else {
            missing.insert(p.name.clone());
            continue;
        };
        if is_cpu {
            let is_unready = match (p.ready, p.start_ms) {
                (Some((status, transition)), Some(start)) => {
                    if start + r.cpu_initialization_ms > r.now_ms {
                        // Within the initialization period: a sample is used only from a
                        // ready pod, taken a whole window after it became ready.
                        !status || m.timestamp_ms < transition + m.window_ms
                    } else {
                        // Later: only a pod that never became ready is left out.
                        !status && start + r.initial_readiness_delay_ms > transition
                    }
                }
                _ => true,
            };
            if is_unready {
                unready.insert(p.name.clone());
                continue;
            }
        }
        ready += 1;
    }
    (ready, unready, missing, ignored)
}

/// The usage ratio of `metrics` against `target`, the utilization and the average value.
fn usage_ratio(
    metrics: &HashMap<String, PodMetric>,
    requests: &HashMap<String, i64>,
    target: Target,
) -> std::result::Result<(f64, Option<i32>, i64), String> {
    match target {
        Target::Utilization(percent) => {
            let (mut used, mut requested, mut n) = (0i64, 0i64, 0i64);
            for (name, m) in metrics {
                let Some(req) = requests.get(name) else {
                    continue;
                };
                used += m.value_milli;
                requested += req;
                n += 1;
            }
            if requested == 0 {
                return Err("no metrics returned matched known pods".into());
            }
            let utilization = (used.saturating_mul(100) / requested) as i32;
            let ratio = f64::from(utilization) / f64::from(percent.max(1));
            Ok((ratio, Some(utilization), used / n))
        }
        Target::AverageValue(per_pod) => {
            if metrics.is_empty() {
                return Err("no metrics returned matched known pods".into());
            }
            let total: i64 = metrics.values().map(|m| m.value_milli).sum();
            let average = total / metrics.len() as i64;
            Ok((average as f64 / per_pod.max(1) as f64, None, average))
        }
    }
}

/// Upstream's `GetResourceReplicas` / `GetRawResourceReplicas`: the replicas `metrics` call
/// for, leaving out deleted and failed pods, counting not-yet-ready pods (CPU) as using
/// nothing when scaling up, and missing pods as using their whole request (or the target)
/// when scaling down and nothing when scaling up.
pub fn calculate(
    current: i32,
    target: Target,
    pods: &[PodInfo],
    mut metrics: HashMap<String, PodMetric>,
    is_cpu: bool,
    tolerances: Tolerances,
    readiness: &Readiness,
) -> std::result::Result<Proposal, String> {
    if pods.is_empty() {
        return Err("no pods returned by selector while calculating replica count".into());
    }
    let (ready, unready, missing, ignored) = group_pods(pods, &metrics, is_cpu, readiness);
    metrics.retain(|name, _| !ignored.contains(name) && !unready.contains(name));
    if metrics.is_empty() {
        return Err("did not receive metrics for targeted pods (pods might be unready)".into());
    }
    let mut requests = HashMap::new();
    if let Target::Utilization(_) = target {
        for p in pods {
            match &p.request_milli {
                Ok(r) => {
                    requests.insert(p.name.clone(), *r);
                }
                Err(container) => {
                    return Err(format!(
                        "missing request for {} in container {container} of Pod {}",
                        if is_cpu { "cpu" } else { "memory" },
                        p.name
                    ))
                }
            }
        }
    }
    let (ratio, utilization, average) = usage_ratio(&metrics, &requests, target)?;
    let proposal = |replicas| Proposal {
        replicas,
        utilization,
        average_milli: average,
    };
    let scale_up_with_unready = !unready.is_empty() && ratio > 1.0;
    if !scale_up_with_unready && missing.is_empty() {
        if tolerances.within(ratio) {
            return Ok(proposal(current));
        }
        return Ok(proposal((ratio * ready as f64).ceil() as i32));
    }
    if !missing.is_empty() {
        for name in &missing {
            let value = if ratio < 1.0 {
                match target {
                    Target::Utilization(percent) => {
                        requests.get(name).copied().unwrap_or(0) * i64::from(percent.max(100)) / 100
                    }
                    Target::AverageValue(v) => v,
                }
            } else {
                0
            };
            metrics.insert(
                name.clone(),
                PodMetric {
                    value_milli: value,
                    timestamp_ms: 0,
                    window_ms: 0,
                },
            );
        }
    }
    if scale_up_with_unready {
        for name in &unready {
            metrics.insert(
                name.clone(),
                PodMetric {
                    value_milli: 0,
                    timestamp_ms: 0,
                    window_ms: 0,
                },
            );
        }
    }
    let (new_ratio, _, _) = usage_ratio(&metrics, &requests, target)?;
    if tolerances.within(new_ratio)
        || (ratio < 1.0 && new_ratio > 1.0)
        || (ratio > 1.0 && new_ratio < 1.0)
    {
        return Ok(proposal(current));
    }
    let replicas = (new_ratio * metrics.len() as f64).ceil() as i32;
    if (new_ratio < 1.0 && replicas > current) || (new_ratio > 1.0 && replicas < current) {
        return Ok(proposal(current));
    }
    Ok(proposal(replicas))
}

// ----------------------------------------------------------------------------------------
// Stabilization and rate limits

/// A past recommendation of an autoscaler.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Recommendation {
    pub replicas: i32,
    pub at_ms: i64,
}

/// A past rescale of an autoscaler.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScaleEvent {
    pub change: i32,
    pub at_ms: i64,
}

/// One direction's rules with upstream's defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    pub stabilization_seconds: i64,
    /// `Max`, `Min` or `Disabled`.
    pub select_policy: String,
    /// (type `Pods`/`Percent`, value, period seconds).
    pub policies: Vec<(String, i32, i64)>,
}

impl Rules {
    pub fn scale_up(given: Option<&HPAScalingRules>) -> Rules {
        Rules::from_spec(
            given,
            0,
            vec![("Pods".into(), 4, 15), ("Percent".into(), 100, 15)],
        )
    }

    pub fn scale_down(given: Option<&HPAScalingRules>, stabilization_seconds: i64) -> Rules {
        Rules::from_spec(
            given,
            stabilization_seconds,
            vec![("Percent".into(), 100, 15)],
        )
    }

    fn from_spec(
        given: Option<&HPAScalingRules>,
        stabilization_seconds: i64,
        policies: Vec<(String, i32, i64)>,
    ) -> Rules {
        Rules {
            stabilization_seconds: given
                .and_then(|g| g.stabilization_window_seconds)
                .map_or(stabilization_seconds, i64::from),
            select_policy: given
                .and_then(|g| g.select_policy.clone())
                .unwrap_or_else(|| "Max".into()),
            policies: given
                .and_then(|g| g.policies.as_ref())
                .map(|ps| {
                    ps.iter()
                        .map(|p| (p.type_.clone(), p.value, i64::from(p.period_seconds)))
                        .collect()
                })
                .unwrap_or(policies),
        }
    }

    fn longest_period_ms(&self) -> i64 {
        self.policies.iter().map(|p| p.2).max().unwrap_or(0) * 1000
    }
}

/// The inputs of normalization.
#[derive(Debug, Clone)]
pub struct Normalization<'a> {
    pub current: i32,
    pub desired: i32,
    pub min: i32,
    pub max: i32,
    pub now_ms: i64,
    pub up: &'a Rules,
    pub down: &'a Rules,
}

/// What normalization decided and the conditions it explains itself with: the replicas,
/// (AbleToScale reason, message), (ScalingLimited status, reason, message).
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    pub replicas: i32,
    pub able: (&'static str, &'static str),
    pub limited: (bool, &'static str, &'static str),
}

const READY_FOR_NEW_SCALE: (&str, &str) =
    ("ReadyForNewScale", "recommended size matches current size");
const SCALE_DOWN_STABILIZED: (&str, &str) = (
    "ScaleDownStabilized",
    "recent recommendations were higher than current one, applying the highest recent recommendation",
);
const SCALE_UP_STABILIZED: (&str, &str) = (
    "ScaleUpStabilized",
    "recent recommendations were lower than current one, applying the lowest recent recommendation",
);
const WITHIN_RANGE: (&str, &str) = (
    "DesiredWithinRange",
    "the desired count is within the acceptable range",
);
const TOO_FEW: (&str, &str) = (
    "TooFewReplicas",
    "the desired replica count is less than the minimum replica count",
);
const TOO_MANY: (&str, &str) = (
    "TooManyReplicas",
    "the desired replica count is more than the maximum replica count",
);
const SCALE_UP_LIMIT: (&str, &str) = (
    "ScaleUpLimit",
    "the desired replica count is increasing faster than the maximum scale rate",
);
const SCALE_DOWN_LIMIT: (&str, &str) = (
    "ScaleDownLimit",
    "the desired replica count is decreasing faster than the maximum scale rate",
);

fn limited(replicas: i32, stabilized: i32, why: (&'static str, &'static str)) -> Normalized {
    Normalized {
        replicas,
        able: READY_FOR_NEW_SCALE,
        limited: (replicas != stabilized, why.0, why.1),
    }
}

/// Records `desired` among the recommendations, forgetting those older than `keep_ms`.
fn remember(recs: &mut Vec<Recommendation>, desired: i32, now_ms: i64, keep_ms: i64) {
    recs.retain(|r| r.at_ms >= now_ms - keep_ms);
    recs.push(Recommendation {
        replicas: desired,
        at_ms: now_ms,
    });
}

/// Upstream's `normalizeDesiredReplicas` (no `behavior`): the highest recommendation of the
/// downscale stabilization window, then min/max and a scale-up limit of max(2×current, 4).
pub fn normalize_legacy(
    n: &Normalization,
    recs: &mut Vec<Recommendation>,
    stabilization_ms: i64,
) -> Normalized {
    let mut stabilized = n.desired;
    for r in recs.iter() {
        if r.at_ms > n.now_ms - stabilization_ms {
            stabilized = stabilized.max(r.replicas);
        }
    }
    remember(recs, n.desired, n.now_ms, stabilization_ms);
    let able = if stabilized != n.desired {
        SCALE_DOWN_STABILIZED
    } else {
        READY_FOR_NEW_SCALE
    };
    let scale_up_limit = (n.current.saturating_mul(2)).max(4);
    let (max, why) = if n.max > scale_up_limit {
        (scale_up_limit, SCALE_UP_LIMIT)
    } else {
        (n.max, TOO_MANY)
    };
    let (replicas, why) = if stabilized < n.min {
        (n.min, TOO_FEW)
    } else if stabilized > max {
        (max, why)
    } else {
        (stabilized, WITHIN_RANGE)
    };
    Normalized {
        able,
        ..limited(replicas, stabilized, why)
    }
}

fn change_in_period(events: &[ScaleEvent], period_ms: i64, now_ms: i64) -> i32 {
    events
        .iter()
        .filter(|e| e.at_ms > now_ms - period_ms)
        .map(|e| e.change)
        .sum()
}

/// Upstream's `calculateScaleUpLimitWithScalingRules`.
pub fn scale_up_limit(current: i32, events: &[ScaleEvent], rules: &Rules, now_ms: i64) -> i32 {
    let pick_min = match rules.select_policy.as_str() {
        "Disabled" => return current,
        "Min" => true,
        _ => false,
    };
    let mut result = if pick_min { i32::MAX } else { i32::MIN };
    for (kind, value, period) in &rules.policies {
        let start = current - change_in_period(events, period * 1000, now_ms);
        let proposed = if kind == "Pods" {
            start.saturating_add(*value)
        } else {
            (f64::from(start) * (1.0 + f64::from(*value) / 100.0)).ceil() as i32
        };
        result = if pick_min {
            result.min(proposed)
        } else {
            result.max(proposed)
        };
    }
    result
}

/// Upstream's `calculateScaleDownLimitWithBehaviors`.
pub fn scale_down_limit(current: i32, events: &[ScaleEvent], rules: &Rules, now_ms: i64) -> i32 {
    let pick_min_change = match rules.select_policy.as_str() {
        "Disabled" => return current,
        "Min" => true,
        _ => false,
    };
    let mut result = if pick_min_change { i32::MIN } else { i32::MAX };
    for (kind, value, period) in &rules.policies {
        let start = current + change_in_period(events, period * 1000, now_ms);
        let proposed = if kind == "Pods" {
            start - value
        } else {
            (f64::from(start) * (1.0 - f64::from(*value) / 100.0)) as i32
        };
        result = if pick_min_change {
            result.max(proposed)
        } else {
            result.min(proposed)
        };
    }
    result
}

/// Upstream's `normalizeDesiredReplicasWithBehaviors`: stabilization over each direction's
/// window, then the rate limits of the policies and min/max.
pub fn normalize_with_behavior(
    n: &Normalization,
    recs: &mut Vec<Recommendation>,
    up_events: &[ScaleEvent],
    down_events: &[ScaleEvent],
) -> Normalized {
    let (window_s, scale_up) = if n.desired >= n.current {
        (n.up.stabilization_seconds, true)
    } else {
        (n.down.stabilization_seconds, false)
    };
    let keep_ms = n.up.stabilization_seconds.max(n.down.stabilization_seconds) * 1000;
    let cutoff = n.now_ms - window_s * 1000;
    let mut stabilized = n.desired;
    for r in recs.iter().filter(|r| r.at_ms > cutoff) {
        stabilized = if scale_up {
            stabilized.min(r.replicas)
        } else {
            stabilized.max(r.replicas)
        };
    }
    remember(recs, n.desired, n.now_ms, keep_ms);
    let able = match (stabilized != n.desired, scale_up) {
        (false, _) => READY_FOR_NEW_SCALE,
        (true, true) => SCALE_UP_STABILIZED,
        (true, false) => SCALE_DOWN_STABILIZED,
    };
    let (replicas, why) = if stabilized > n.current {
        let limit = scale_up_limit(n.current, up_events, n.up, n.now_ms).max(n.current);
        let (max, why) = if n.max > limit {
            (limit, SCALE_UP_LIMIT)
        } else {
            (n.max, TOO_MANY)
        };
        if stabilized > max {
            (max, why)
        } else {
            (stabilized, WITHIN_RANGE)
        }
    } else if stabilized < n.current {
        let limit = scale_down_limit(n.current, down_events, n.down, n.now_ms).min(n.current);
        let (min, why) = if n.min < limit {
            (limit, SCALE_DOWN_LIMIT)
        } else {
            (n.min, TOO_FEW)
        };
        if stabilized < min {
            (min, why)
        } else {
            (stabilized, WITHIN_RANGE)
        }
    } else {
        (stabilized, WITHIN_RANGE)
    };
    Normalized {
        able,
        ..limited(replicas, stabilized, why)
    }
}

// ----------------------------------------------------------------------------------------
// The controller

/// What the controller remembers between syncs of one autoscaler.
#[derive(Debug, Default)]
struct Memory {
    recommendations: Vec<Recommendation>,
    up_events: Vec<ScaleEvent>,
    down_events: Vec<ScaleEvent>,
    last_sync: Option<(Instant, Option<i64>)>,
}

#[derive(Default)]
struct State {
    by_hpa: Mutex<HashMap<String, Memory>>,
    resources: Mutex<HashMap<String, ApiResource>>,
}

pub fn controller(ctx: &Arc<Context>) -> BoxFuture<'static, ()> {
    let hpas = ctx.informers.get::<HorizontalPodAutoscaler>();
    let c = Controller::for_shared_stream(hpas.subscribe(), hpas.store());
    let state = Arc::new(State::default());
    run_controller(COMPONENT, c, ctx.clone(), move |hpa, ctx| {
        reconcile(hpa, ctx, state.clone())
    })
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// The API resource of a scale target's kind.
async fn target_resource(
    ctx: &Context,
    state: &State,
    api_version: &str,
    kind: &str,
) -> Result<ApiResource> {
    let key = format!("{api_version}/{kind}");
    if let Some(r) = state
        .resources
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&key)
    {
        return Ok(r.clone());
    }
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (ar, _) = kube::discovery::pinned_kind(&ctx.client, &gvk).await?;
    state
        .resources
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, ar.clone());
    Ok(ar)
}

/// Sets a condition, keeping its transition time when the status does not change.
fn set_condition(
    status: &mut HorizontalPodAutoscalerStatus,
    type_: &str,
    ok: bool,
    reason: &str,
    message: String,
) {
    let st = if ok { "True" } else { "False" };
    let conds = status.conditions.get_or_insert_with(Vec::new);
    match conds.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            if c.status != st {
                c.last_transition_time = Some(util::now());
            }
            c.status = st.into();
            c.reason = Some(reason.into());
            c.message = Some(message);
        }
        None => conds.push(HorizontalPodAutoscalerCondition {
            type_: type_.into(),
            status: st.into(),
            reason: Some(reason.into()),
            message: Some(message),
            last_transition_time: Some(util::now()),
        }),
    }
}

/// One metric's replica proposal, its status and the name used in messages.
struct MetricOutcome {
    replicas: i32,
    status: MetricStatus,
    name: String,
}

/// A failed metric: (condition reason, error text).
type MetricFailure = (&'static str, String);

fn target_of(t: &MetricTarget) -> std::result::Result<Target, String> {
    match t.type_.as_str() {
        "Utilization" => t
            .average_utilization
            .map(Target::Utilization)
            .ok_or_else(|| "invalid resource metric source: neither a utilization target nor a value target was set".into()),
        "AverageValue" => t
            .average_value
            .as_ref()
            .and_then(|q| milli_value(&q.0))
            .map(Target::AverageValue)
            .ok_or_else(|| "invalid resource metric source: neither a utilization target nor a value target was set".into()),
        other => Err(format!("invalid resource metric source: target type {other} is not supported")),
    }
}

/// The pods' metrics of `resource` (one `container`'s, or the sum of all) from metrics.k8s.io.
async fn pod_metrics(
    ctx: &Context,
    ns: &str,
    selector: &str,
    resource: &str,
    container: Option<&str>,
) -> std::result::Result<HashMap<String, PodMetric>, String> {
    let ar = ApiResource {
        group: "metrics.k8s.io".into(),
        version: "v1beta1".into(),
        api_version: "metrics.k8s.io/v1beta1".into(),
        kind: "PodMetrics".into(),
        plural: "pods".into(),
    };
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), ns, &ar);
    let list = api
        .list(&ListParams::default().labels(selector))
        .await
        .map_err(|e| format!("unable to fetch metrics from resource metrics API: {e}"))?;
    if list.items.is_empty() {
        return Err("no metrics returned from resource metrics API".into());
    }
    let mut out = HashMap::new();
    for item in &list.items {
        let timestamp_ms = item
            .data
            .get("timestamp")
            .and_then(Value::as_str)
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .map_or(0, |t| t.as_millisecond());
        let window_ms = item
            .data
            .get("window")
            .and_then(Value::as_str)
            .and_then(go_duration_ms)
            .unwrap_or(0);
        let mut sum = 0i64;
        let mut found = false;
        let mut missing = false;
        for c in item
            .data
            .get("containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
            if container.is_some_and(|want| want != name) {
                continue;
            }
            match c
                .pointer(&format!("/usage/{resource}"))
                .and_then(Value::as_str)
                .and_then(milli_value)
            {
                Some(v) => {
                    sum += v;
                    found = true;
                }
                None => missing = true,
            }
        }
        if found && !missing {
            out.insert(
                item.name_any(),
                PodMetric {
                    value_milli: sum,
                    timestamp_ms,
                    window_ms,
                },
            );
        }
    }
    Ok(out)
}

/// Milliseconds of a Go duration string (`15s`, `1m0.5s`, `500ms`).
pub fn go_duration_ms(s: &str) -> Option<i64> {
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let split = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let n: f64 = rest[..split].parse().ok()?;
        let unit_end = rest[split..]
            .find(|c: char| c.is_ascii_digit())
            .map_or(rest.len(), |i| split + i);
        let ms = match &rest[split..unit_end] {
            "h" => 3_600_000.0,
            "m" => 60_000.0,
            "s" => 1000.0,
            "ms" => 1.0,
            "us" | "µs" => 0.001,
            "ns" => 0.000_001,
            _ => return None,
        };
        total += n * ms;
        rest = &rest[unit_end..];
    }
    Some(total.round() as i64)
}

/// The calculator's view of a pod for `resource` (of one `container`, or all).
fn pod_info(pod: &Pod, resource: &str, container: Option<&str>) -> PodInfo {
    let status = pod.status.as_ref();
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .map(|c| {
            (
                c.status == "True",
                c.last_transition_time
                    .as_ref()
                    .map_or(0, |t| t.0.as_millisecond()),
            )
        });
    let mut request = Ok(0i64);
    for c in pod
        .spec
        .as_ref()
        .map(|s| s.containers.as_slice())
        .unwrap_or_default()
    {
        if container.is_some_and(|want| want != c.name) {
            continue;
        }
        let q = c
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get(resource))
            .and_then(|q| milli_value(&q.0));
        request = match (request, q) {
            (Ok(sum), Some(v)) => Ok(sum + v),
            (Ok(_), None) => Err(c.name.clone()),
            (e, _) => e,
        };
    }
    PodInfo {
        name: pod.name_any(),
        phase: status.and_then(|s| s.phase.clone()).unwrap_or_default(),
        deleting: pod.metadata.deletion_timestamp.is_some(),
        ready,
        start_ms: status
            .and_then(|s| s.start_time.as_ref())
            .map(|t| t.0.as_millisecond()),
        request_milli: request,
    }
}

/// Computes one metric's proposal.
async fn compute_metric(
    ctx: &Context,
    ns: &str,
    selector: &str,
    current: i32,
    spec: &MetricSpec,
    pods: &[Pod],
    tolerances: Tolerances,
) -> std::result::Result<MetricOutcome, MetricFailure> {
    let (resource, container, target) = match spec.type_.as_str() {
        "Resource" => {
            let Some(r) = &spec.resource else {
                return Err(("FailedGetResourceMetric", "invalid resource metric source: no resource given".into()));
            };
            (r.name.clone(), None, r.target.clone())
        }
        "ContainerResource" => {
            let Some(r) = &spec.container_resource else {
                return Err(("FailedGetContainerResourceMetric", "invalid container resource metric source: no container resource given".into()));
            };
            (r.name.clone(), Some(r.container.clone()), r.target.clone())
        }
        "Pods" => return Err(("FailedGetPodsMetric", "unable to get metric: the custom metrics API (custom.metrics.k8s.io) is not served".into())),
        "Object" => return Err(("FailedGetObjectMetric", "unable to get metric: the custom metrics API (custom.metrics.k8s.io) is not served".into())),
        "External" => return Err(("FailedGetExternalMetric", "unable to get external metric: the external metrics API (external.metrics.k8s.io) is not served".into())),
        other => return Err(("InvalidMetricSourceType", format!("unknown metric source type {other:?}"))),
    };
    let reason = if container.is_some() {
        "FailedGetContainerResourceMetric"
    } else {
        "FailedGetResourceMetric"
    };
    let target = target_of(&target).map_err(|e| (reason, e))?;
    let what = match target {
        Target::Utilization(_) => format!("{resource} utilization"),
        Target::AverageValue(_) => format!("{resource} usage"),
    };
    let fail = |e: String| (reason, format!("failed to get {what}: {e}"));
    let metrics = pod_metrics(ctx, ns, selector, &resource, container.as_deref())
        .await
        .map_err(|e| {
            fail(format!(
                "unable to get metrics for resource {resource}: {e}"
            ))
        })?;
    let infos: Vec<PodInfo> = pods
        .iter()
        .map(|p| pod_info(p, &resource, container.as_deref()))
        .collect();
    let readiness = Readiness {
        cpu_initialization_ms: duration_ms(
            ctx.config
                .horizontal_pod_autoscaler_cpu_initialization_period,
        ),
        initial_readiness_delay_ms: duration_ms(
            ctx.config.horizontal_pod_autoscaler_initial_readiness_delay,
        ),
        now_ms: now_ms(),
    };
    let proposal = calculate(
        current,
        target,
        &infos,
        metrics,
        resource == "cpu",
        tolerances,
        &readiness,
    )
    .map_err(fail)?;
    let current_value = MetricValueStatus {
        average_utilization: proposal.utilization,
        average_value: Some(Quantity(milli_quantity(proposal.average_milli))),
        value: None,
    };
    let kind = if container.is_some() {
        "container resource"
    } else {
        "resource"
    };
    let name = match target {
        Target::Utilization(_) => format!("{resource} {kind} utilization (percentage of request)"),
        Target::AverageValue(_) => format!("{resource} {kind}"),
    };
    let status = match container {
        None => MetricStatus {
            type_: "Resource".into(),
            resource: Some(ResourceMetricStatus {
                name: resource,
                current: current_value,
            }),
            ..Default::default()
        },
        Some(container) => MetricStatus {
            type_: "ContainerResource".into(),
            container_resource: Some(ContainerResourceMetricStatus {
                name: resource,
                container,
                current: current_value,
            }),
            ..Default::default()
        },
    };
    Ok(MetricOutcome {
        replicas: proposal.replicas,
        status,
        name,
    })
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn tolerance_of(rules: Option<&HPAScalingRules>, default: f64) -> f64 {
    rules
        .and_then(|r| r.tolerance.as_ref())
        .and_then(|q| milli_value(&q.0))
        .map_or(default, |m| m as f64 / 1000.0)
}

/// Writes the status if it changed.
async fn write_status(
    api: &Api<HorizontalPodAutoscaler>,
    hpa: &HorizontalPodAutoscaler,
    status: HorizontalPodAutoscalerStatus,
) -> Result<()> {
    if hpa.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let mut updated = hpa.clone();
    updated.status = Some(status);
    api.replace_status(&hpa.name_any(), &PostParams::default(), &updated)
        .await?;
    Ok(())
}

async fn reconcile(
    hpa: Arc<HorizontalPodAutoscaler>,
    ctx: Arc<Context>,
    state: Arc<State>,
) -> Result<Action> {
    let ns = hpa.namespace().unwrap_or_default();
    let name = hpa.name_any();
    let key = format!("{ns}/{name}");
    let period = ctx.config.horizontal_pod_autoscaler_sync_period;
    if hpa.metadata.deletion_timestamp.is_some() {
        state
            .by_hpa
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key);
        return Ok(Action::await_change());
    }
    // Our own status writes wake us too: sync at most once a period unless the spec changed.
    {
        let memory = state.by_hpa.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, generation)) = memory.get(&key).and_then(|m| m.last_sync) {
            let elapsed = at.elapsed();
            if elapsed < period && generation == hpa.metadata.generation {
                return Ok(Action::requeue(period - elapsed));
            }
        }
    }
    let result = sync(&hpa, &ctx, &state, &key).await;
    // Forget deleted autoscalers.
    let live: HashSet<String> = ctx
        .informers
        .get::<HorizontalPodAutoscaler>()
        .store()
        .state()
        .iter()
        .map(|h| format!("{}/{}", h.namespace().unwrap_or_default(), h.name_any()))
        .collect();
    state
        .by_hpa
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|k, _| live.contains(k) || *k == key);
    state
        .by_hpa
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(key)
        .or_default()
        .last_sync = Some((Instant::now(), hpa.metadata.generation));
    result?;
    Ok(Action::requeue(period))
}

async fn sync(
    hpa: &HorizontalPodAutoscaler,
    ctx: &Context,
    state: &State,
    key: &str,
) -> Result<()> {
    let ns = hpa.namespace().unwrap_or_default();
    let api: Api<HorizontalPodAutoscaler> = Api::namespaced(ctx.client.clone(), &ns);
    let spec = hpa.spec.clone();
    let mut status = hpa.status.clone().unwrap_or_default();
    status.observed_generation = hpa.metadata.generation;
    let target = &spec.scale_target_ref;
    let api_version = target.api_version.clone().unwrap_or_else(|| "v1".into());
    let reference = format!("{}/{}", target.kind, target.name);

    // The target's scale.
    let scale: std::result::Result<(Api<DynamicObject>, Scale), String> = async {
        let ar = target_resource(ctx, state, &api_version, &target.kind)
            .await
            .map_err(|e| e.to_string())?;
        let tapi: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &ns, &ar);
        let scale = tapi
            .get_scale(&target.name)
            .await
            .map_err(|e| e.to_string())?;
        Ok((tapi, scale))
    }
    .await;
    let (tapi, scale) = match scale {
        Ok(x) => x,
        Err(e) => {
            let message =
                format!("the HPA controller was unable to get the target's current scale: {e}");
            ctx.events
                .publish(COMPONENT, hpa, WARNING, "FailedGetScale", e.clone());
            set_condition(&mut status, "AbleToScale", false, "FailedGetScale", message);
            write_status(&api, hpa, status).await?;
            return Err(Error::Invalid(format!(
                "invalid HPA target {reference}: {e}"
            )));
        }
    };
    set_condition(
        &mut status,
        "AbleToScale",
        true,
        "SucceededGetScale",
        "the HPA controller was able to get the target's current scale".into(),
    );
    // As upstream: the replicas the target has; a target asked for none is left alone.
    let current = scale.status.as_ref().map_or(0, |s| s.replicas);
    let asked_for = scale.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    status.current_replicas = Some(current);
    let min = spec.min_replicas.unwrap_or(1);
    let max = spec.max_replicas;
    let now = now_ms();

    let disabled = asked_for == 0 && min != 0;
    let (desired, reason) = if disabled {
        set_condition(
            &mut status,
            "ScalingActive",
            false,
            "ScalingDisabled",
            "scaling is disabled since the replica count of the target is zero".into(),
        );
        (0, String::new())
    } else if current > max {
        (
            max,
            "Current number of replicas above Spec.MaxReplicas".to_string(),
        )
    } else if current < min {
        (
            min,
            "Current number of replicas below Spec.MinReplicas".to_string(),
        )
    } else {
        // The metrics.
        let selector = scale
            .status
            .as_ref()
            .and_then(|s| s.selector.clone())
            .unwrap_or_default();
        if selector.is_empty() {
            ctx.events.publish(
                COMPONENT,
                hpa,
                WARNING,
                "SelectorRequired",
                "selector is required".into(),
            );
            set_condition(
                &mut status,
                "ScalingActive",
                false,
                "InvalidSelector",
                "the HPA target's scale is missing a selector".into(),
            );
            write_status(&api, hpa, status).await?;
            return Err(Error::Invalid("selector is required".into()));
        }
        let pods = Api::<Pod>::namespaced(ctx.client.clone(), &ns)
            .list(&ListParams::default().labels(&selector))
            .await?
            .items;
        let behavior = spec.behavior.as_ref();
        let tolerances = Tolerances {
            scale_down: tolerance_of(
                behavior.and_then(|b| b.scale_down.as_ref()),
                ctx.config.horizontal_pod_autoscaler_tolerance,
            ),
            scale_up: tolerance_of(
                behavior.and_then(|b| b.scale_up.as_ref()),
                ctx.config.horizontal_pod_autoscaler_tolerance,
            ),
        };
        let metrics = spec.metrics.clone().unwrap_or_default();
        let mut best: Option<(i32, String)> = None;
        let mut statuses = Vec::new();
        let mut failures: Vec<(&str, String, String)> = Vec::new();
        for m in &metrics {
            match compute_metric(ctx, &ns, &selector, current, m, &pods, tolerances).await {
                Ok(o) => {
                    if best.as_ref().is_none_or(|(r, _)| o.replicas > *r) {
                        best = Some((o.replicas, o.name.clone()));
                    }
                    statuses.push(o.status);
                }
                Err((reason, e)) => {
                    ctx.events
                        .publish(COMPONENT, hpa, WARNING, reason, e.clone());
                    // The ScalingActive message carries the error, the summary event the
                    // error as the metric's status computation wraps it.
                    let wrapped = match (&m.resource, &m.container_resource) {
                        (Some(r), _) if m.type_ == "Resource" => {
                            format!("failed to get {} resource metric value: {e}", r.name)
                        }
                        (_, Some(r)) if m.type_ == "ContainerResource" => {
                            format!("failed to get {} container metric value: {e}", r.name)
                        }
                        _ => e.clone(),
                    };
                    failures.push((reason, e, wrapped));
                }
            }
        }
        // As upstream: with an invalid metric, scaling down is unsafe.
        let invalid = !failures.is_empty();
        if let Some((reason, first, wrapped)) = failures.first() {
            let message = format!(
                "invalid metrics ({} invalid out of {}), first error is: {wrapped}",
                failures.len(),
                metrics.len()
            );
            ctx.events.publish(
                COMPONENT,
                hpa,
                WARNING,
                "FailedComputeMetricsReplicas",
                message.clone(),
            );
            set_condition(
                &mut status,
                "ScalingActive",
                false,
                reason,
                format!("the HPA was unable to compute the replica count: {first}"),
            );
            if best.is_none() || best.as_ref().is_some_and(|(r, _)| *r < current) {
                status.current_metrics = (!statuses.is_empty()).then_some(statuses);
                status.desired_replicas = current;
                write_status(&api, hpa, status).await?;
                return Err(Error::Invalid(message));
            }
        }
        let Some((proposed, metric_name)) = best else {
            // No metrics at all: keep the size.
            status.current_metrics = None;
            status.desired_replicas = current;
            write_status(&api, hpa, status).await?;
            return Ok(());
        };
        if !invalid {
            set_condition(
                &mut status,
                "ScalingActive",
                true,
                "ValidMetricFound",
                format!(
                    "the HPA was able to successfully calculate a replica count from {metric_name}"
                ),
            );
        }
        status.current_metrics = Some(statuses);
        let reason = if proposed > current {
            format!("{metric_name} above target")
        } else if proposed < current {
            "All metrics below target".to_string()
        } else {
            String::new()
        };
        let down_stabilization = i64::try_from(
            ctx.config
                .horizontal_pod_autoscaler_downscale_stabilization
                .as_secs(),
        )
        .unwrap_or(300);
        let up_rules = Rules::scale_up(behavior.and_then(|b| b.scale_up.as_ref()));
        let down_rules = Rules::scale_down(
            behavior.and_then(|b| b.scale_down.as_ref()),
            down_stabilization,
        );
        let n = Normalization {
            current,
            desired: proposed,
            min,
            max,
            now_ms: now,
            up: &up_rules,
            down: &down_rules,
        };
        let normalized = {
            let mut memory = state.by_hpa.lock().unwrap_or_else(|p| p.into_inner());
            let m = memory.entry(key.to_string()).or_default();
            if behavior.is_none() {
                normalize_legacy(&n, &mut m.recommendations, down_stabilization * 1000)
            } else {
                normalize_with_behavior(&n, &mut m.recommendations, &m.up_events, &m.down_events)
            }
        };
        set_condition(
            &mut status,
            "AbleToScale",
            true,
            normalized.able.0,
            normalized.able.1.into(),
        );
        set_condition(
            &mut status,
            "ScalingLimited",
            normalized.limited.0,
            normalized.limited.1,
            normalized.limited.2.into(),
        );
        (normalized.replicas, reason)
    };

    status.desired_replicas = desired;
    if !disabled && desired != current {
        let patched = tapi
            .patch_scale(
                &target.name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"spec": {"replicas": desired}})),
            )
            .await;
        if let Err(e) = patched {
            ctx.events.publish(
                COMPONENT,
                hpa,
                WARNING,
                "FailedRescale",
                format!("New size: {desired}; reason: {reason}; error: {e}"),
            );
            set_condition(
                &mut status,
                "AbleToScale",
                false,
                "FailedUpdateScale",
                format!("the HPA controller was unable to update the target scale: {e}"),
            );
            status.desired_replicas = current;
            write_status(&api, hpa, status).await?;
            return Err(e.into());
        }
        set_condition(
            &mut status,
            "AbleToScale",
            true,
            "SucceededRescale",
            format!("the HPA controller was able to update the target scale to {desired}"),
        );
        ctx.events.publish(
            COMPONENT,
            hpa,
            NORMAL,
            "SuccessfulRescale",
            format!("New size: {desired}; reason: {reason}"),
        );
        tracing::info!(hpa = %key, target = %reference, from = current, to = desired, reason = %reason, "rescaled");
        status.last_scale_time = Some(util::now());
        let mut memory = state.by_hpa.lock().unwrap_or_else(|p| p.into_inner());
        let m = memory.entry(key.to_string()).or_default();
        let keep = |rules: &Rules, events: &mut Vec<ScaleEvent>| {
            let longest = rules.longest_period_ms();
            events.retain(|e| e.at_ms > now - longest);
        };
        let up_rules = Rules::scale_up(spec.behavior.as_ref().and_then(|b| b.scale_up.as_ref()));
        let down_rules = Rules::scale_down(
            spec.behavior.as_ref().and_then(|b| b.scale_down.as_ref()),
            0,
        );
        if desired > current {
            keep(&up_rules, &mut m.up_events);
            m.up_events.push(ScaleEvent {
                change: desired - current,
                at_ms: now,
            });
        } else {
            keep(&down_rules, &mut m.down_events);
            m.down_events.push(ScaleEvent {
                change: current - desired,
                at_ms: now,
            });
        }
    }
    write_status(&api, hpa, status).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 10_000_000;

    fn readiness() -> Readiness {
        Readiness {
            cpu_initialization_ms: 300_000,
            initial_readiness_delay_ms: 30_000,
            now_ms: NOW,
        }
    }

    fn pod(name: &str, request: i64) -> PodInfo {
        PodInfo {
            name: name.into(),
            phase: "Running".into(),
            deleting: false,
            ready: Some((true, NOW - 600_000)),
            start_ms: Some(NOW - 700_000),
            request_milli: Ok(request),
        }
    }

    fn metric(v: i64) -> PodMetric {
        PodMetric {
            value_milli: v,
            timestamp_ms: NOW - 1000,
            window_ms: 15_000,
        }
    }

    const TOL: Tolerances = Tolerances {
        scale_down: 0.1,
        scale_up: 0.1,
    };

    fn metrics(values: &[(&str, i64)]) -> HashMap<String, PodMetric> {
        values
            .iter()
            .map(|(n, v)| (n.to_string(), metric(*v)))
            .collect()
    }

    #[test]
    fn quantities() {
        assert_eq!(milli_value("20m"), Some(20));
        assert_eq!(milli_value("1"), Some(1000));
        assert_eq!(milli_value("1.5"), Some(1500));
        assert_eq!(milli_value("1Ki"), Some(1_024_000));
        assert_eq!(milli_value("1234567n"), Some(2));
        assert_eq!(milli_value("1e3"), Some(1_000_000));
        assert_eq!(milli_value("12x"), None);
        assert_eq!(milli_value(""), None);
        assert_eq!(milli_quantity(250), "250m");
        assert_eq!(milli_quantity(2000), "2");
        assert_eq!(milli_quantity(1_048_576_000), "1048576");
        assert_eq!(go_duration_ms("15.003s"), Some(15_003));
        assert_eq!(go_duration_ms("1m0.5s"), Some(60_500));
        assert_eq!(go_duration_ms("500ms"), Some(500));
        assert_eq!(go_duration_ms("5x"), None);
    }

    #[test]
    fn utilization_scales_up_and_respects_tolerance() {
        // Two pods at 100% of a 20m request against a 50% target: 4 replicas.
        let pods = [pod("a", 20), pod("b", 20)];
        let p = calculate(
            2,
            Target::Utilization(50),
            &pods,
            metrics(&[("a", 20), ("b", 20)]),
            true,
            TOL,
            &readiness(),
        )
        .expect("proposal");
        assert_eq!(
            p,
            Proposal {
                replicas: 4,
                utilization: Some(100),
                average_milli: 20
            }
        );
        // 54% against 50% is within the tolerance.
        let pods = [pod("a", 100)];
        let p = calculate(
            1,
            Target::Utilization(50),
            &pods,
            metrics(&[("a", 54)]),
            true,
            TOL,
            &readiness(),
        )
        .expect("proposal");
        assert_eq!(p.replicas, 1);
        // 60% is not.
        let p = calculate(
            1,
            Target::Utilization(50),
            &pods,
            metrics(&[("a", 60)]),
            true,
            TOL,
            &readiness(),
        )
        .expect("proposal");
        assert_eq!(p.replicas, 2);
    }

    #[test]
    fn average_value_target() {
        let pods = [pod("a", 0), pod("b", 0), pod("c", 0)];
        let p = calculate(
            3,
            Target::AverageValue(100),
            &pods,
            metrics(&[("a", 50), ("b", 50), ("c", 50)]),
            false,
            TOL,
            &readiness(),
        )
        .expect("proposal");
        assert_eq!(
            p,
            Proposal {
                replicas: 2,
                utilization: None,
                average_milli: 50
            }
        );
    }

    #[test]
    fn missing_metrics_damp_the_change() {
        // Scale down: the missing pod counts as using its whole request, so no change.
        let pods = [pod("a", 100), pod("b", 100)];
        let p = calculate(
            2,
            Target::Utilization(50),
            &pods,
            metrics(&[("a", 10)]),
            true,
            TOL,
            &readiness(),
        )
        .expect("proposal");
        assert_eq!(p.replicas, 2);
        // Scale up: the missing pod counts as using nothing: 200% on one pod, 100% over two.
        let p = calculate(
            2,
            Target::Utilization(50),
            &pods,
            metrics(&[("a", 200)]),
            true,
            TOL,
            &readiness(),
        )
        .expect("proposal");
        assert_eq!(p.replicas, 4);
        assert_eq!(p.utilization, Some(200));
    }

    #[test]
    fn unready_and_ignored_pods() {
        let mut young = pod("b", 100);
        young.start_ms = Some(NOW - 10_000);
        young.ready = Some((false, NOW - 10_000));
        let mut failed = pod("c", 100);
        failed.phase = "Failed".into();
        let pods = [pod("a", 100), young, failed];
        // a at 200% of its request, b not ready yet (counts as 0 on scale up), c ignored.
        let p = calculate(
            3,
            Target::Utilization(50),
            &pods,
            metrics(&[("a", 200), ("b", 500), ("c", 900)]),
            true,
            TOL,
            &readiness(),
        )
        .expect("proposal");
        assert_eq!(p.replicas, 4);
        // Nothing usable at all.
        let e = calculate(
            1,
            Target::Utilization(50),
            &pods[1..2],
            metrics(&[("b", 1)]),
            true,
            TOL,
            &readiness(),
        );
        assert_eq!(
            e,
            Err("did not receive metrics for targeted pods (pods might be unready)".into())
        );
        assert!(calculate(
            1,
            Target::Utilization(50),
            &[],
            HashMap::new(),
            true,
            TOL,
            &readiness()
        )
        .is_err());
        let mut no_request = pod("a", 0);
        no_request.request_milli = Err("app".into());
        let e = calculate(
            1,
            Target::Utilization(50),
            &[no_request],
            metrics(&[("a", 1)]),
            true,
            TOL,
            &readiness(),
        );
        assert_eq!(
            e,
            Err("missing request for cpu in container app of Pod a".into())
        );
    }

    fn norm(
        current: i32,
        desired: i32,
        min: i32,
        max: i32,
        up: &Rules,
        down: &Rules,
    ) -> Normalization<'static> {
        Normalization {
            current,
            desired,
            min,
            max,
            now_ms: NOW,
            up: Box::leak(Box::new(up.clone())),
            down: Box::leak(Box::new(down.clone())),
        }
    }

    #[test]
    fn legacy_normalization() {
        let (up, down) = (Rules::scale_up(None), Rules::scale_down(None, 300));
        let mut recs = Vec::new();
        // 1 → 10 wanted, max 20: limited to max(2×1, 4) = 4.
        let n = normalize_legacy(&norm(1, 10, 1, 20, &up, &down), &mut recs, 300_000);
        assert_eq!(n.replicas, 4);
        assert_eq!(n.limited, (true, "ScaleUpLimit", SCALE_UP_LIMIT.1));
        assert_eq!(n.able.0, "ReadyForNewScale");
        // A lower recommendation within the window is stabilized to the highest.
        let n = normalize_legacy(&norm(4, 2, 1, 20, &up, &down), &mut recs, 300_000);
        assert_eq!(n.replicas, 8);
        assert_eq!(n.able.0, "ScaleDownStabilized");
        // Below min.
        let mut fresh = Vec::new();
        let n = normalize_legacy(&norm(3, 0, 2, 5, &up, &down), &mut fresh, 0);
        assert_eq!((n.replicas, n.limited.1), (2, "TooFewReplicas"));
        // Within range.
        let mut fresh = Vec::new();
        let n = normalize_legacy(&norm(3, 3, 1, 5, &up, &down), &mut fresh, 0);
        assert_eq!(
            (n.replicas, n.limited),
            (3, (false, WITHIN_RANGE.0, WITHIN_RANGE.1))
        );
    }

    #[test]
    fn behavior_policies() {
        let up = Rules::scale_up(None);
        let down = Rules::scale_down(None, 300);
        // Default scale up: max(+4 pods, +100%) per 15 s.
        assert_eq!(scale_up_limit(1, &[], &up, NOW), 5);
        assert_eq!(scale_up_limit(10, &[], &up, NOW), 20);
        // Replicas added within the period count against it.
        let events = [ScaleEvent {
            change: 4,
            at_ms: NOW - 5_000,
        }];
        assert_eq!(scale_up_limit(5, &events, &up, NOW), 5);
        let old = [ScaleEvent {
            change: 4,
            at_ms: NOW - 20_000,
        }];
        assert_eq!(scale_up_limit(5, &old, &up, NOW), 10);
        // Default scale down: 100% per 15 s; Min picks the smaller change.
        assert_eq!(scale_down_limit(10, &[], &down, NOW), 0);
        let min_rules = Rules {
            stabilization_seconds: 0,
            select_policy: "Min".into(),
            policies: vec![("Pods".into(), 2, 60), ("Percent".into(), 50, 60)],
        };
        assert_eq!(scale_down_limit(10, &[], &min_rules, NOW), 8);
        let disabled = Rules {
            select_policy: "Disabled".into(),
            ..min_rules.clone()
        };
        assert_eq!(scale_down_limit(10, &[], &disabled, NOW), 10);
        assert_eq!(scale_up_limit(10, &[], &disabled, NOW), 10);

        // Scale down is stabilized over 300 s: an earlier higher recommendation holds.
        let mut recs = vec![Recommendation {
            replicas: 6,
            at_ms: NOW - 100_000,
        }];
        let n = normalize_with_behavior(&norm(6, 2, 1, 10, &up, &down), &mut recs, &[], &[]);
        assert_eq!(n.replicas, 6);
        assert_eq!(n.able, SCALE_DOWN_STABILIZED);
        // Without stabilization the rate limit applies.
        let quick_down = Rules {
            stabilization_seconds: 0,
            ..min_rules
        };
        let mut recs = Vec::new();
        let n = normalize_with_behavior(&norm(10, 1, 1, 10, &up, &quick_down), &mut recs, &[], &[]);
        assert_eq!(n.replicas, 8);
        assert_eq!(n.limited, (true, SCALE_DOWN_LIMIT.0, SCALE_DOWN_LIMIT.1));
        // Scale up to maxReplicas.
        let mut recs = Vec::new();
        let n = normalize_with_behavior(&norm(2, 9, 1, 3, &up, &down), &mut recs, &[], &[]);
        assert_eq!(n.replicas, 3);
        assert_eq!(n.limited, (true, TOO_MANY.0, TOO_MANY.1));
        // A scale-up stabilization window keeps the lowest recent recommendation.
        let slow_up = Rules {
            stabilization_seconds: 60,
            ..up
        };
        let mut recs = vec![Recommendation {
            replicas: 3,
            at_ms: NOW - 30_000,
        }];
        let n = normalize_with_behavior(&norm(2, 6, 1, 10, &slow_up, &down), &mut recs, &[], &[]);
        assert_eq!(n.replicas, 3);
        assert_eq!(n.able, SCALE_UP_STABILIZED);
    }
}
