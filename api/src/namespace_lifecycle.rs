//! Namespace finalization: when a namespace is deleted, every namespaced object in it
//! is deleted, then the `kubernetes` finalizer is removed so the namespace goes away.
//! Upstream runs this in kube-controller-manager; meso runs it beside the API server so
//! `kubectl delete namespace` completes on a bare control plane.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::registry::{DeleteOptions, ListOptions, ResourceCtx};
use crate::server::AppState;

const NAMESPACES_PREFIX: &str = "/registry/core/namespaces/";
/// The field manager of the API server's own writes.
const SYSTEM_MANAGER: &str = "kube-apiserver";

fn is_terminating(obj: &Value) -> bool {
    obj.get("metadata")
        .and_then(|m| m.get("deletionTimestamp"))
        .is_some()
}

/// Deletes what is left in `ns`; returns how many objects remain.
async fn purge(state: &AppState, ns: &str) -> usize {
    let infos: Vec<_> = match state.resources.read() {
        Ok(t) => {
            let mut seen = HashSet::new();
            t.iter()
                .filter(|r| r.namespaced() && r.is_stored())
                .filter(|r| seen.insert((r.group.clone(), r.plural.clone())))
                .cloned()
                .collect()
        }
        Err(_) => return 1,
    };
    let mut remaining = 0;
    for info in infos {
        let ctx = ResourceCtx::new(info, Some(ns.to_string()));
        let Ok(list) = state.registry.list(&ctx, &ListOptions::default()) else {
            remaining += 1;
            continue;
        };
        for item in list.items {
            let Some(name) = item
                .get("metadata")
                .and_then(|m| m.get("name"))
                .and_then(Value::as_str)
            else {
                continue;
            };
            match state
                .registry
                .delete(&ctx, name, &DeleteOptions::default())
                .await
            {
                Ok((_, true)) => {}
                Ok((_, false)) => remaining += 1,
                Err(e) if e.code == 404 => {}
                Err(e) => {
                    tracing::warn!(namespace = ns, name, error = %e, "namespace cleanup: delete failed");
                    remaining += 1;
                }
            }
        }
    }
    remaining
}

/// Removes the `kubernetes` finalizer; the registry then deletes the namespace.
async fn finalize(state: &AppState, ns: &str) -> bool {
    let Some(info) = state.lookup("", "v1", "namespaces") else {
        return false;
    };
    let ctx = ResourceCtx::new(info, None);
    let r = state
        .registry
        .update_with(
            &ctx,
            ns,
            Some("finalize"),
            false,
            Some(SYSTEM_MANAGER),
            |cur| {
                let mut next = cur.clone();
                let finalizers: Vec<Value> = cur
                    .get("spec")
                    .and_then(|s| s.get("finalizers"))
                    .and_then(Value::as_array)
                    .map(|f| f.iter().filter(|x| *x != "kubernetes").cloned().collect())
                    .unwrap_or_default();
                next["spec"] = json!({ "finalizers": finalizers });
                Ok(next)
            },
        )
        .await;
    match r {
        Ok(_) => true,
        Err(e) if e.code == 404 => true,
        Err(e) => {
            tracing::warn!(namespace = ns, error = %e, "finalizing namespace failed");
            false
        }
    }
}

async fn process(state: Arc<AppState>, ns: String) {
    let mut delay = Duration::from_millis(200);
    loop {
        if state.shutdown.is_cancelled() {
            return;
        }
        let remaining = purge(&state, &ns).await;
        if remaining == 0 && finalize(&state, &ns).await {
            tracing::info!(namespace = %ns, "namespace finalized");
            return;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(10));
        // Stop if the namespace is gone or no longer terminating.
        match state
            .registry
            .store
            .get(&format!("{NAMESPACES_PREFIX}{ns}"))
        {
            Ok(Some(kv)) => {
                let obj: Value = serde_json::from_slice(&kv.value).unwrap_or(Value::Null);
                if !is_terminating(&obj) {
                    return;
                }
            }
            _ => return,
        }
    }
}

/// Watches namespaces and finalizes the ones being deleted.
pub async fn run(state: Arc<AppState>) {
    let store = state.registry.store.clone();
    let mut active: HashSet<String> = HashSet::new();
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let start = |state: &Arc<AppState>, ns: String, active: &mut HashSet<String>| {
        if active.insert(ns.clone()) {
            let state = state.clone();
            let done = done_tx.clone();
            tokio::spawn(async move {
                process(state, ns.clone()).await;
                let _ = done.send(ns);
            });
        }
    };
    let from = store.current_revision();
    if let Ok(list) = store.list(NAMESPACES_PREFIX, None, 0) {
        for kv in list.items {
            let obj: Value = serde_json::from_slice(&kv.value).unwrap_or(Value::Null);
            if is_terminating(&obj) {
                let ns = kv.key.trim_start_matches(NAMESPACES_PREFIX).to_string();
                start(&state, ns, &mut active);
            }
        }
    }
    let Ok(mut watcher) = store.watch(NAMESPACES_PREFIX, from) else {
        tracing::error!("namespace lifecycle: cannot watch namespaces");
        return;
    };
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            Some(ns) = done_rx.recv() => { active.remove(&ns); }
            ev = watcher.next_shared() => {
                let Some(Ok(ev)) = ev else { return };
                if ev.kind != meso_store::EventType::Put {
                    continue;
                }
                let obj: Value = serde_json::from_slice(&ev.value).unwrap_or(Value::Null);
                if is_terminating(&obj) {
                    let ns = ev.key.trim_start_matches(NAMESPACES_PREFIX).to_string();
                    start(&state, ns, &mut active);
                }
            }
        }
    }
}
