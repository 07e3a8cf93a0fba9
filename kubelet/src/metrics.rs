//! Prometheus text metrics at `/metrics`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::routing::get;
use tokio_util::sync::CancellationToken;

use crate::{IoContext, Result};

/// Counters and gauges of the kubelet.
#[derive(Default)]
pub struct Metrics {
    pub pods: AtomicU64,
    pub pod_syncs: AtomicU64,
    pub pod_sync_errors: AtomicU64,
    pub sandboxes_started: AtomicU64,
    pub containers_started: AtomicU64,
    pub status_updates: AtomicU64,
    pub image_pulls: AtomicU64,
}

impl Metrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let rows: [(&str, &str, &str, &AtomicU64); 7] = [
            (
                "kubelet_pods",
                "gauge",
                "Pods this kubelet manages.",
                &self.pods,
            ),
            (
                "kubelet_pod_syncs_total",
                "counter",
                "Pod sync passes.",
                &self.pod_syncs,
            ),
            (
                "kubelet_pod_sync_errors_total",
                "counter",
                "Pod sync passes that failed.",
                &self.pod_sync_errors,
            ),
            (
                "kubelet_sandboxes_started_total",
                "counter",
                "Pod sandboxes started.",
                &self.sandboxes_started,
            ),
            (
                "kubelet_containers_started_total",
                "counter",
                "Containers started.",
                &self.containers_started,
            ),
            (
                "kubelet_pod_status_updates_total",
                "counter",
                "Pod status writes to the API server.",
                &self.status_updates,
            ),
            (
                "kubelet_image_pulls_total",
                "counter",
                "Images pulled through CRI.",
                &self.image_pulls,
            ),
        ];
        let mut out = String::new();
        for (name, kind, help, value) in rows {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
        out
    }
}

/// Serves `/metrics` on `addr` until `shutdown`.
pub async fn serve(addr: &str, metrics: Arc<Metrics>, shutdown: CancellationToken) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .context(|| format!("binding the metrics address {addr}"))?;
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let m = metrics.clone();
            async move { m.render() }
        }),
    );
    tracing::info!(%addr, "serving /metrics");
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        if let Err(e) = served {
            tracing::warn!(error = %e, "metrics server stopped");
        }
    });
    Ok(())
}
