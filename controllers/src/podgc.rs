//! The pod garbage collector, as upstream's `pkg/controller/podgc`. Every `--pod-gc-period`:
//! - terminated pods beyond `--terminated-pod-gc-threshold` are deleted, oldest first;
//! - pods bound to a node that no longer exists (still absent after a quarantine, checked
//!   against the API server rather than the cache) are marked Failed and force-deleted;
//! - terminating pods that were never scheduled are force-deleted;
//! - terminating pods on a node that is not ready and carries the
//!   `node.kubernetes.io/out-of-service` taint are force-deleted.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use futures::future::BoxFuture;
use futures::FutureExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::ResourceExt;
use serde_json::json;

use crate::scaffold::{Context, Result};
use crate::util;

const COMPONENT: &str = "pod-garbage-collector";
const OUT_OF_SERVICE: &str = "node.kubernetes.io/out-of-service";

pub fn controller(ctx: &Arc<Context>) -> BoxFuture<'static, ()> {
    let nodes = ctx.informers.get::<Node>();
    let pods = ctx.informers.get::<Pod>();
    let ctx = ctx.clone();
    async move {
        // Node names first seen missing, and when.
        let mut quarantine: HashMap<String, Instant> = HashMap::new();
        loop {
            let all_pods = pods.store().state();
            let all_nodes = nodes.store().state();
            if let Err(e) = gc_terminated(&ctx, &all_pods).await {
                tracing::warn!(controller = COMPONENT, error = %e, "terminated pods");
            }
            if let Err(e) = gc_orphaned(&ctx, &all_pods, &all_nodes, &mut quarantine).await {
                tracing::warn!(controller = COMPONENT, error = %e, "orphaned pods");
            }
            if let Err(e) = gc_terminating(&ctx, &all_pods, &all_nodes).await {
                tracing::warn!(controller = COMPONENT, error = %e, "terminating pods");
            }
            tokio::select! {
                _ = ctx.shutdown.cancelled() => return,
                _ = tokio::time::sleep(ctx.config.pod_gc_period) => {}
            }
        }
    }
    .boxed()
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn node_of(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
}

/// Deletes the oldest terminated pods beyond the threshold.
async fn gc_terminated(ctx: &Context, pods: &[Arc<Pod>]) -> Result<()> {
    let threshold = ctx.config.terminated_pod_gc_threshold;
    if threshold <= 0 {
        return Ok(());
    }
    let mut terminated: Vec<Arc<Pod>> = pods
        .iter()
        .filter(|p| matches!(phase(p), "Succeeded" | "Failed"))
        .cloned()
        .collect();
    let excess = terminated.len().saturating_sub(threshold as usize);
    if excess == 0 {
        return Ok(());
    }
    terminated.sort_by(|a, b| {
        let t = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
        t(a).cmp(&t(b))
            .then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });
    tracing::info!(
        controller = COMPONENT,
        count = excess,
        threshold,
        "deleting terminated pods"
    );
    for pod in terminated.into_iter().take(excess) {
        force_delete(ctx, &pod, None).await?;
    }
    Ok(())
}

/// Force-deletes the pods of nodes that are gone.
async fn gc_orphaned(
    ctx: &Context,
    pods: &[Arc<Pod>],
    nodes: &[Arc<Node>],
    quarantine: &mut HashMap<String, Instant>,
) -> Result<()> {
    let existing: HashSet<String> = nodes.iter().map(|n| n.name_any()).collect();
    let missing: HashSet<&str> = pods
        .iter()
        .filter_map(|p| node_of(p))
        .filter(|n| !existing.contains(*n))
        .collect();
    quarantine.retain(|n, _| missing.contains(n.as_str()));
    let mut deleted_nodes = HashSet::new();
    let api: Api<Node> = Api::all(ctx.client.clone());
    for node in missing {
        let since = *quarantine
            .entry(node.to_string())
            .or_insert_with(Instant::now);
        if since.elapsed() < ctx.config.pod_gc_orphan_quarantine {
            continue;
        }
        // The cache may lag: only the API server's 404 makes a node gone.
        if util::absent_ok(api.get(node).await)?.is_none() {
            deleted_nodes.insert(node.to_string());
        } else {
            quarantine.remove(node);
        }
    }
    for pod in pods {
        if node_of(pod).is_some_and(|n| deleted_nodes.contains(n)) {
            tracing::info!(controller = COMPONENT, pod = %format!("{}/{}", pod.namespace().unwrap_or_default(), pod.name_any()), "deleting pod of a deleted node");
            force_delete(
                ctx,
                pod,
                Some(("DeletionByPodGC", "PodGC: node no longer exists")),
            )
            .await?;
        }
    }
    Ok(())
}

/// Force-deletes terminating pods that no kubelet will finish: never scheduled, or on an
/// out-of-service node that is not ready.
async fn gc_terminating(ctx: &Context, pods: &[Arc<Pod>], nodes: &[Arc<Node>]) -> Result<()> {
    let out_of_service: HashSet<String> = nodes
        .iter()
        .filter(|n| {
            let ready = n
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_deref())
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            let tainted = n
                .spec
                .as_ref()
                .and_then(|s| s.taints.as_deref())
                .unwrap_or_default()
                .iter()
                .any(|t| t.key == OUT_OF_SERVICE);
            !ready && tainted
        })
        .map(|n| n.name_any())
        .collect();
    for pod in pods {
        if pod.metadata.deletion_timestamp.is_none() {
            continue;
        }
        match node_of(pod) {
            None => force_delete(ctx, pod, None).await?,
            Some(n) if out_of_service.contains(n) => {
                force_delete(
                    ctx,
                    pod,
                    Some(("DeletionByPodGC", "PodGC: node is out of service")),
                )
                .await?
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Marks a live pod Failed (with a DisruptionTarget condition when given), then deletes it
/// with a zero grace period, as upstream's `markFailedAndDeletePodWithCondition`.
async fn force_delete(ctx: &Context, pod: &Pod, condition: Option<(&str, &str)>) -> Result<()> {
    let ns = pod.namespace().unwrap_or_default();
    let name = pod.name_any();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    if !matches!(phase(pod), "Succeeded" | "Failed") {
        let mut conds = serde_json::to_value(
            pod.status
                .as_ref()
                .and_then(|s| s.conditions.clone())
                .unwrap_or_default(),
        )?;
        if let (Some((reason, message)), Some(list)) = (condition, conds.as_array_mut()) {
            list.retain(|c| c["type"] != "DisruptionTarget");
            list.push(
                json!({"type": "DisruptionTarget", "status": "True", "reason": reason,
                "message": message, "lastTransitionTime": util::now()}),
            );
        }
        let patch = json!({"status": {"phase": "Failed", "conditions": conds}});
        util::absent_ok(
            api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await,
        )?;
    }
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: pod.uid().map(|uid| kube::api::Preconditions {
            uid: Some(uid),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api.delete(&name, &dp).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if matches!(s.code, 404 | 409) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
