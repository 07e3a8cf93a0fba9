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
//! The taint eviction controller deletes the pods on nodes with `NoExecute` taints they do
//! not tolerate at once, and those tolerating them for `tolerationSeconds` once that time
//! has passed since the taint was added.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

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

pub fn controller(ctx: &Arc<Context>) -> BoxFuture<'static, ()> {
    let nodes = ctx.informers.get::<Node>();
    let leases = ctx.informers.get::<Lease>();
    let pods = ctx.informers.get::<Pod>();
    let ctx = ctx.clone();
    async move {
        let mut observed_ready: HashMap<String, String> = HashMap::new();
        loop {
            for node in nodes.store().state() {
                if let Err(e) = monitor(&ctx, &node, &leases, &pods, &mut observed_ready).await {
                    tracing::warn!(controller = COMPONENT, node = %node.name_any(), error = %e, "node health");
                }
            }
            let names: HashSet<String> = nodes.store().state().iter().map(|n| n.name_any()).collect();
            observed_ready.retain(|n, _| names.contains(n));
            tokio::select! {
                _ = ctx.shutdown.cancelled() => return,
                _ = tokio::time::sleep(ctx.config.node_monitor_period) => {}
            }
        }
    }
    .boxed()
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
    observed_ready: &mut HashMap<String, String>,
) -> Result<()> {
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
        .or_else(|| node.metadata.creation_timestamp.as_ref().map(|t| t.0));
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
                Ok(_) => {}
                // Raced with the kubelet or another writer: the next pass looks again.
                Err(kube::Error::Api(s)) if matches!(s.code, 404 | 409) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
    }

    let ready = conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map_or("Unknown", |c| c.status.as_str())
        .to_string();
    let before = observed_ready
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

    // Taints from the conditions as now known.
    let wanted = wanted_taints(&conditions, node_unschedulable(node));
    let current: Vec<Taint> = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let mut next: Vec<Taint> = current
        .iter()
        .filter(|t| {
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
    if next != current {
        tracing::info!(controller = COMPONENT, node = %name, ready = %ready, "updating node taints");
        let taints = if next.is_empty() {
            Value::Null
        } else {
            serde_json::to_value(&next)?
        };
        // The node as cached, pinned by resourceVersion: a concurrent cordon is not lost.
        let rv = if silent {
            None
        } else {
            node.metadata.resource_version.clone()
        };
        let patch = json!({"metadata": {"resourceVersion": rv}, "spec": {"taints": taints}});
        match api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if matches!(s.code, 404 | 409) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn node_unschedulable(node: &Node) -> bool {
    node.spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false)
}

/// The controller's taints for `conditions`: (key, effect).
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
        Some("False") => {
            out.push((TAINT_NOT_READY, "NoSchedule"));
            out.push((TAINT_NOT_READY, "NoExecute"));
        }
        Some(_) => {
            out.push((TAINT_UNREACHABLE, "NoSchedule"));
            out.push((TAINT_UNREACHABLE, "NoExecute"));
        }
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
            vec![
                (TAINT_UNREACHABLE, "NoSchedule"),
                (TAINT_UNREACHABLE, "NoExecute")
            ]
        );
        assert_eq!(wanted_taints(&[cond("False")], true).len(), 3);
        assert_eq!(
            wanted_taints(&[], false),
            vec![(TAINT_NOT_READY, "NoSchedule")]
        );
    }
}
