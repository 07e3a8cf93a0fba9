//! What the control-plane component binaries share (the scheduler here, the controller
//! manager through this crate): logging, the stop signal, the plain-HTTP `/metrics` and
//! `/healthz` server, and the helpers of their command lines.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

/// This machine's name (`$HOSTNAME`, else `/proc/sys/kernel/hostname`, else `meso`).
pub fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "meso".into())
}

/// Initialises `tracing` to stderr from `RUST_LOG` (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// A token cancelled on SIGTERM or SIGINT (Ctrl-C).
pub fn cancel_on_signal() -> CancellationToken {
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "installing the SIGTERM handler");
                    return;
                }
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        tracing::info!("signal received, stopping");
        token.cancel();
    });
    shutdown
}

/// Serves `/metrics` (Prometheus text from `render`) and `/healthz` over plain HTTP on
/// `addr` until `stop`; returns the bound address.
pub async fn serve_metrics<F>(
    addr: SocketAddr,
    render: F,
    stop: CancellationToken,
) -> anyhow::Result<SocketAddr>
where
    F: Fn() -> String + Clone + Send + Sync + 'static,
{
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let bound = listener.local_addr().context("metrics listener address")?;
    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || {
                let body = render();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4",
                        )],
                        body,
                    )
                }
            }),
        )
        .route("/healthz", axum::routing::get(|| async { "ok" }));
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
        if let Err(e) = served {
            tracing::warn!(error = %e, "metrics server stopped");
        }
    });
    Ok(bound)
}

/// `--metrics-bind-address`: an address, or `None` for `0` or empty (turned off).
pub fn metrics_addr(flag: &str) -> anyhow::Result<Option<SocketAddr>> {
    if flag == "0" || flag.is_empty() {
        return Ok(None);
    }
    flag.parse()
        .map(Some)
        .with_context(|| format!("--metrics-bind-address {flag:?}"))
}

/// The kube-rs configuration from `--kubeconfig`, else the usual inference.
pub async fn kube_config(kubeconfig: Option<&Path>) -> anyhow::Result<kube::Config> {
    match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &Default::default())
                .await
                .with_context(|| format!("loading {}", path.display()))
        }
        None => kube::Config::infer()
            .await
            .context("no kubeconfig found (set --kubeconfig or KUBECONFIG)"),
    }
}

pub use meso_api::flags::parse_duration;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_addresses() {
        assert_eq!(metrics_addr("0").ok(), Some(None));
        let addr = metrics_addr("127.0.0.1:10259").ok().flatten();
        assert_eq!(addr.map(|a| a.port()), Some(10259));
        assert!(metrics_addr("nowhere").is_err());
    }
}
