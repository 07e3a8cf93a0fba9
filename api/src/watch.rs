//! Watch streams: `{"type","object"}` JSON lines from the store's event feed, with
//! selectors, bookmarks, initial events and timeouts.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use meso_store::{EventType, StoreError};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::errors::ApiError;
use crate::registry::{selected, ListOptions, Registry, ResourceCtx};
use crate::request::Output;
use crate::selectors::{FieldSelector, LabelSelector};

/// How often a watch with `allowWatchBookmarks` receives a BOOKMARK.
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(30);

/// What one watch asks for.
pub struct WatchRequest {
    pub ctx: ResourceCtx,
    pub label: Option<LabelSelector>,
    pub field: Option<FieldSelector>,
    pub resource_version: Option<String>,
    pub send_initial_events: Option<bool>,
    pub bookmarks: bool,
    pub timeout: Duration,
    pub output: Output,
    pub include_object: crate::table::IncludeObject,
}

/// Renders one event object in the requested output.
pub type Renderer = Arc<dyn Fn(Value, bool) -> Value + Send + Sync>;

/// One watch event as a JSON line, `{"type":…,"object":…}`, written straight from `object`.
fn line(kind: &str, object: &Value) -> Bytes {
    let mut v = Vec::with_capacity(4096);
    v.extend_from_slice(b"{\"type\":\"");
    v.extend_from_slice(kind.as_bytes());
    v.extend_from_slice(b"\",\"object\":");
    if serde_json::to_writer(&mut v, object).is_err() {
        return Bytes::new();
    }
    v.extend_from_slice(b"}\n");
    Bytes::from(v)
}

fn bookmark(ctx: &ResourceCtx, revision: u64, initial_end: bool) -> Value {
    let mut meta = json!({"resourceVersion": revision.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    json!({"kind": ctx.info.kind, "apiVersion": ctx.info.api_version(), "metadata": meta})
}

/// Decrements the watch gauge when the watch ends.
struct WatchGuard(Arc<crate::metrics::Metrics>);

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.0.watch_ended();
    }
}

/// Starts a watch; returns the channel of response chunks.
/// Errors known before streaming (bad resourceVersion) are returned directly.
pub fn start(
    registry: Registry,
    req: WatchRequest,
    render: Renderer,
    shutdown: CancellationToken,
    metrics: Arc<crate::metrics::Metrics>,
) -> Result<mpsc::Receiver<Bytes>, ApiError> {
    let store = registry.store.clone();
    let rv = req.resource_version.clone().unwrap_or_default();
    let initial = match req.send_initial_events {
        Some(v) => v,
        // Legacy semantics: "" and "0" start with the current state as ADDED events.
        None => rv.is_empty() || rv == "0",
    };
    if req.send_initial_events == Some(true) && !req.bookmarks {
        return Err(ApiError::invalid(
            "ListOptions",
            "meta.k8s.io",
            "",
            vec![crate::errors::Cause::forbidden(
                "allowWatchBookmarks",
                "allowWatchBookmarks must be set to true when sendInitialEvents is specified",
            )],
        ));
    }
    let start_after: Option<u64> = if initial || rv.is_empty() || rv == "0" {
        None
    } else {
        Some(
            rv.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv}")))?,
        )
    };
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    metrics.watch_started();
    let guard = WatchGuard(metrics);
    tokio::spawn(async move {
        let _guard = guard;
        let ctx = &req.ctx;
        let label = req.label.as_ref().filter(|l| !l.is_empty());
        let field = req.field.as_ref().filter(|f| !f.is_empty());
        let mut first = true;
        let mut emit = |kind: &str, obj: Value| {
            let out = render(obj, first);
            first = false;
            line(kind, &out)
        };
        // Initial state.
        let from = match start_after {
            Some(n) => n,
            None => {
                let opts = ListOptions {
                    label: req.label.clone(),
                    field: req.field.clone(),
                    ..Default::default()
                };
                let list = match registry.list(ctx, &opts) {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = tx.send(line("ERROR", &e.to_status())).await;
                        return;
                    }
                };
                for mut item in list.items {
                    if let Some(o) = item.as_object_mut() {
                        o.insert("kind".into(), json!(ctx.info.kind));
                        o.insert("apiVersion".into(), json!(ctx.info.api_version()));
                    }
                    if tx.send(emit("ADDED", item)).await.is_err() {
                        return;
                    }
                }
                if req.send_initial_events == Some(true) {
                    let b = bookmark(ctx, list.revision, true);
                    if tx.send(line("BOOKMARK", &b)).await.is_err() {
                        return;
                    }
                }
                list.revision
            }
        };
        let mut watcher = match store.watch(&ctx.prefix(), from) {
            Ok(w) => w,
            Err(StoreError::Compacted { compacted }) => {
                let e =
                    ApiError::expired(format!("too old resource version: {from} ({compacted})"));
                let _ = tx.send(line("ERROR", &e.to_status())).await;
                return;
            }
            Err(e) => {
                let e = ApiError::internal(format!("watch: {e}"));
                let _ = tx.send(line("ERROR", &e.to_status())).await;
                return;
            }
        };
        let deadline = tokio::time::sleep(req.timeout);
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(BOOKMARK_INTERVAL);
        ticker.tick().await;
        loop {
            let event = tokio::select! {
                ev = watcher.next_shared() => ev,
                _ = &mut deadline => return,
                _ = shutdown.cancelled() => return,
                _ = tx.closed() => return,
                _ = ticker.tick() => {
                    if req.bookmarks {
                        let b = bookmark(ctx, watcher.revision().max(from), false);
                        if tx.send(line("BOOKMARK", &b)).await.is_err() {
                            return;
                        }
                    }
                    continue;
                }
            };
            let event = match event {
                None => return,
                Some(Ok(ev)) => ev,
                Some(Err(StoreError::Compacted { compacted })) => {
                    let e = ApiError::expired(format!(
                        "too old resource version: {} ({compacted})",
                        watcher.revision()
                    ));
                    let _ = tx.send(line("ERROR", &e.to_status())).await;
                    return;
                }
                Some(Err(e)) => {
                    let e = ApiError::internal(format!("watch: {e}"));
                    let _ = tx.send(line("ERROR", &e.to_status())).await;
                    return;
                }
            };
            let Ok(obj) = ctx.decode(&event.value, event.revision) else {
                continue;
            };
            let now_matches = selected(&obj, label, field);
            let (kind, obj) = match event.kind {
                EventType::Delete => {
                    if !now_matches {
                        continue;
                    }
                    ("DELETED", obj)
                }
                EventType::Put => {
                    // Without selectors any previous value matched: no need to decode it.
                    let was = match &event.prev_value {
                        None => false,
                        Some(_) if label.is_none() && field.is_none() => true,
                        Some(v) => ctx
                            .decode(v, event.revision)
                            .is_ok_and(|b| selected(&b, label, field)),
                    };
                    match (was, now_matches) {
                        (true, true) => ("MODIFIED", obj),
                        (false, true) => ("ADDED", obj),
                        (true, false) => ("DELETED", obj),
                        (false, false) => continue,
                    }
                }
            };
            if tx.send(emit(kind, obj)).await.is_err() {
                return;
            }
        }
    });
    Ok(rx)
}
