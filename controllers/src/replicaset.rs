//! The ReplicaSet controller: keeps `spec.replicas` active pods, adopting and releasing pods by
//! selector, and reports their counts in the status, as upstream's `replica_set.go`.

use std::cmp::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::ResourceExt;
use serde_json::json;

use crate::scaffold::{run_controller, Context, Result};
use crate::util;

const COMPONENT: &str = "replicaset-controller";
/// Upstream's `BurstReplicas`: at most this many creations or deletions per sync.
const BURST_REPLICAS: usize = 500;

pub fn controller(ctx: &Arc<Context>) -> BoxFuture<'static, ()> {
    let sets = ctx.informers.get::<ReplicaSet>();
    let pods = ctx.informers.get::<Pod>();
    let c = Controller::for_shared_stream(sets.subscribe(), sets.store()).watches_shared_stream(
        pods.subscribe(),
        util::owner_or_adopters(sets.store(), |rs: &ReplicaSet| {
            rs.spec.as_ref().map(|s| &s.selector)
        }),
    );
    run_controller(COMPONENT, c, ctx.clone(), reconcile)
}

/// Deletion order, as upstream's `ActivePods` ranking: unscheduled, pending, not ready,
/// lower deletion cost, ready for less time, more restarts, newer.
fn deletion_rank(a: &Pod, b: &Pod) -> Ordering {
    let scheduled = |p: &Pod| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some();
    let phase = |p: &Pod| match p.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Pending") => 0,
        Some("Unknown") => 1,
        Some("Running") => 2,
        _ => 0,
    };
    let cost = |p: &Pod| {
        p.annotations()
            .get("controller.kubernetes.io/pod-deletion-cost")
            .and_then(|c| c.parse::<i32>().ok())
            .unwrap_or(0)
    };
    let ready_since = |p: &Pod| util::pod_ready_since(p).flatten().map(|t| t.0);
    let restarts = |p: &Pod| {
        p.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .map_or(0, |cs| {
                cs.iter().map(|c| c.restart_count).max().unwrap_or(0)
            })
    };
    let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    scheduled(a)
        .cmp(&scheduled(b))
        .then_with(|| phase(a).cmp(&phase(b)))
        .then_with(|| util::pod_is_ready(a).cmp(&util::pod_is_ready(b)))
        .then_with(|| cost(a).cmp(&cost(b)))
        .then_with(|| ready_since(b).cmp(&ready_since(a)))
        .then_with(|| restarts(b).cmp(&restarts(a)))
        .then_with(|| created(b).cmp(&created(a)))
}

async fn reconcile(rs: Arc<ReplicaSet>, ctx: Arc<Context>) -> Result<Action> {
    let ns = rs.namespace().unwrap_or_default();
    let name = rs.name_any();
    let key = format!("{COMPONENT}/{ns}/{name}");
    let spec = rs.spec.clone().unwrap_or_default();
    let replicas = spec.replicas.unwrap_or(1).max(0) as usize;
    let min_ready = spec.min_ready_seconds.unwrap_or(0);

    let (in_ns, synced) = util::namespace_pods(&ctx, &key, &ns);
    let candidates: Vec<_> = in_ns
        .into_iter()
        .filter(|p| util::pod_is_active(p))
        .collect();
    let owner = util::controller_owner_ref(rs.as_ref());
    let client = ctx.client.clone();
    let mut pods = util::claim(
        |ns| Api::namespaced(client.clone(), ns),
        &owner,
        rs.metadata.deletion_timestamp.is_some(),
        &spec.selector,
        candidates,
    )
    .await?;

    let control = util::PodControl::new(&ctx, COMPONENT, rs.as_ref(), &key);
    let mut failure = None;
    if synced && rs.metadata.deletion_timestamp.is_none() {
        let diff = pods.len() as i64 - replicas as i64;
        if diff < 0 {
            let count = (diff.unsigned_abs() as usize).min(BURST_REPLICAS);
            let template = spec.template.clone().unwrap_or_default();
            let pod = util::pod_from_template(&template, &ns, &format!("{name}-"), owner.clone())?;
            let (_, err) = util::slow_start(count, |_| control.create(&pod)).await;
            failure = err;
        } else if diff > 0 {
            let count = (diff as usize).min(BURST_REPLICAS);
            pods.sort_by(|a, b| deletion_rank(a, b));
            for p in pods.iter().take(count) {
                if let Err(e) = control.delete(p).await {
                    failure.get_or_insert(e);
                }
            }
        }
    }

    // Status from the pods as observed (the next sync sees the changes just made).
    let template_labels = spec
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let fully_labeled = pods
        .iter()
        .filter(|p| {
            template_labels
                .iter()
                .all(|(k, v)| p.labels().get(k) == Some(v))
        })
        .count();
    let ready = pods.iter().filter(|p| util::pod_is_ready(p)).count();
    let available = pods
        .iter()
        .filter(|p| util::pod_is_available(p, min_ready))
        .count();
    let mut conditions: Vec<serde_json::Value> = Vec::new();
    if let Some(e) = &failure {
        let reason = if pods.len() < replicas {
            "FailedCreate"
        } else {
            "FailedDelete"
        };
        conditions.push(
            json!({"type": "ReplicaFailure", "status": "True", "reason": reason,
            "message": e.to_string(), "lastTransitionTime": util::now()}),
        );
    }
    let status = json!({
        "replicas": pods.len(),
        "fullyLabeledReplicas": fully_labeled,
        "readyReplicas": ready,
        "availableReplicas": available,
        "observedGeneration": rs.metadata.generation,
        "conditions": conditions,
    });
    let current = serde_json::to_value(&rs.status)?;
    let changed = [
        "replicas",
        "fullyLabeledReplicas",
        "readyReplicas",
        "availableReplicas",
        "observedGeneration",
    ]
    .iter()
    .any(|f| current.get(f).cloned().unwrap_or(json!(0)) != status[*f])
        || current
            .get("conditions")
            .cloned()
            .unwrap_or(json!([]))
            .as_array()
            .map(Vec::len)
            != Some(conditions.len());
    if changed {
        let api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &ns);
        util::absent_ok(
            api.patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"status": status})),
            )
            .await,
        )?;
    }
    if let Some(e) = failure {
        return Err(e);
    }
    if !synced {
        return Ok(Action::requeue(Duration::from_secs(5)));
    }
    if min_ready > 0 && ready != available {
        return Ok(Action::requeue(Duration::from_secs(min_ready as u64)));
    }
    Ok(Action::await_change())
}
