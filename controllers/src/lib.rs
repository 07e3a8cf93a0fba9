//! meso-controller-manager: the reconcilers of kube-controller-manager, on kube-rs's runtime.
//!
//! Every controller shares one [`informer::Informers`] set (one watch per kind, fanned out to
//! the controllers that need it, deletions included) and one scaffold
//! ([`scaffold::run_controller`]): a kube-rs `Controller` with per-object exponential backoff
//! on errors, metrics and structured logs. The manager runs them while it holds the
//! `kube-controller-manager` Lease ([`leader`]).

pub mod cron;
pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod disruption;
pub mod endpoints;
pub mod events;
pub mod gc;
pub mod history;
pub mod hpa;
pub mod informer;
pub mod job;
pub mod localpath;
pub mod metrics;
pub mod namespace;
pub mod nodelifecycle;
pub mod persistentvolume;
pub mod podgc;
pub mod replicaset;
pub mod resourcequota;
pub mod scaffold;
pub mod serviceaccount;
pub mod statefulset;
pub mod util;
pub mod volumeprotection;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use meso_scheduler::component;
use tokio_util::sync::CancellationToken;

pub use meso_scheduler::component::parse_duration;
pub use meso_scheduler::leader;
pub use scaffold::{Context, Error};

/// Every controller this manager knows, by its upstream name.
pub const CONTROLLERS: &[&str] = &[
    "replicaset-controller",
    "deployment-controller",
    "statefulset-controller",
    "daemonset-controller",
    "garbage-collector-controller",
    "job-controller",
    "cronjob-controller",
    "serviceaccount-controller",
    "root-ca-certificate-publisher-controller",
    "endpoints-controller",
    "endpointslice-controller",
    "node-lifecycle-controller",
    "taint-eviction-controller",
    "pod-garbage-collector-controller",
    "disruption-controller",
    "endpointslice-mirroring-controller",
    "resourcequota-controller",
    "namespace-controller",
    "persistentvolume-binder-controller",
    "persistentvolumeclaim-protection-controller",
    "persistentvolume-protection-controller",
    "local-path-provisioner",
    "horizontal-pod-autoscaler-controller",
];

/// Command-line flags (kube-controller-manager's names).
#[derive(clap::Parser, Debug, Clone)]
#[command(
    name = "meso-controller-manager",
    version,
    about = "meso's controller manager"
)]
pub struct Config {
    /// Kubeconfig of the API server [default: $KUBECONFIG, ~/.kube/config, or in-cluster].
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Elect a leader through a Lease so that only one of several managers is active.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    #[arg(long, default_value = "kube-controller-manager")]
    pub leader_elect_resource_name: String,
    #[arg(long, default_value = "kube-system")]
    pub leader_elect_resource_namespace: String,
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub leader_elect_lease_duration: Duration,
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub leader_elect_renew_deadline: Duration,
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub leader_elect_retry_period: Duration,
    /// Controllers to run: `*` for all, `name` to add one, `-name` to leave one out.
    #[arg(long, value_delimiter = ',', default_value = "*")]
    pub controllers: Vec<String>,
    /// Where `/metrics` and `/healthz` are served over plain HTTP; `0` turns them off.
    #[arg(long, default_value = "127.0.0.1:10257")]
    pub metrics_bind_address: String,
    /// Requeue bound for the per-object error backoff (upstream's workqueue: 5 ms to 1000 s).
    #[arg(long, default_value = "1000s", value_parser = parse_duration)]
    pub max_error_backoff: Duration,
    /// How long a node may go without renewing its Lease (or posting Ready) before it is
    /// marked `Ready=Unknown` and tainted unreachable.
    #[arg(long, default_value = "40s", value_parser = parse_duration)]
    pub node_monitor_grace_period: Duration,
    /// How often the node lifecycle and taint eviction controllers look at every node.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub node_monitor_period: Duration,
    #[command(flatten)]
    pub eviction: EvictionRates,
    /// Terminated pods kept before the pod GC deletes the oldest; `0` or less turns it off.
    #[arg(long, default_value_t = 12500, allow_hyphen_values = true)]
    pub terminated_pod_gc_threshold: i64,
    /// How often the pod GC runs (upstream's fixed 20 s).
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub pod_gc_period: Duration,
    /// How long a node must stay absent before its pods are garbage-collected (upstream's
    /// fixed 40 s quarantine).
    #[arg(long, default_value = "40s", value_parser = parse_duration)]
    pub pod_gc_orphan_quarantine: Duration,
    /// How often every ResourceQuota's usage is recomputed from scratch.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub resource_quota_sync_period: Duration,
    /// How often every HorizontalPodAutoscaler is synced.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub horizontal_pod_autoscaler_sync_period: Duration,
    /// How long an autoscaler waits before scaling down after a higher recommendation (when
    /// it has no `behavior`; else the default of `behavior.scaleDown`).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub horizontal_pod_autoscaler_downscale_stabilization: Duration,
    /// The ratio of usage to target within which no scaling happens.
    #[arg(long, default_value_t = 0.1)]
    pub horizontal_pod_autoscaler_tolerance: f64,
    /// After a pod starts, how long its CPU samples are used only when it is ready and a whole
    /// metric window has passed since.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub horizontal_pod_autoscaler_cpu_initialization_period: Duration,
    /// After a pod starts, how long it may take to become ready before an unready pod is
    /// taken as never ready.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub horizontal_pod_autoscaler_initial_readiness_delay: Duration,
}

/// How fast unhealthy nodes get the `NoExecute` taints that evict their pods, per zone
/// (zone: the node's `topology.kubernetes.io/region` and `zone` labels), as
/// kube-controller-manager's flags of the same names.
#[derive(clap::Args, Debug, Clone, Copy, PartialEq)]
pub struct EvictionRates {
    /// Nodes per second tainted for eviction in a healthy zone (and in a fully disrupted
    /// zone while another zone is healthy).
    #[arg(long, default_value_t = 0.1, allow_hyphen_values = true)]
    pub node_eviction_rate: f64,
    /// Nodes per second tainted for eviction in an unhealthy zone of a large cluster (in a
    /// small cluster an unhealthy zone taints none).
    #[arg(long, default_value_t = 0.01, allow_hyphen_values = true)]
    pub secondary_node_eviction_rate: f64,
    /// The share of not-Ready nodes (at least 3) from which a zone counts as unhealthy.
    #[arg(long, default_value_t = 0.55, allow_hyphen_values = true)]
    pub unhealthy_zone_threshold: f64,
    /// A zone with more nodes than this uses the secondary rate when unhealthy.
    #[arg(long, default_value_t = 50, allow_hyphen_values = true)]
    pub large_cluster_size_threshold: i32,
}

impl Default for EvictionRates {
    fn default() -> Self {
        Config::default().eviction
    }
}

impl Default for Config {
    fn default() -> Self {
        <Self as clap::Parser>::parse_from(["meso-controller-manager"])
    }
}

impl Config {
    /// Whether the controller `name` is selected by `--controllers`.
    pub fn enabled(&self, name: &str) -> bool {
        let mut on = false;
        for c in &self.controllers {
            let c = c.trim();
            if c == name {
                return true;
            }
            if c.strip_prefix('-') == Some(name) {
                return false;
            }
            on |= c == "*";
        }
        on
    }

    /// The metrics address, or `None` when turned off.
    pub fn metrics_addr(&self) -> anyhow::Result<Option<SocketAddr>> {
        component::metrics_addr(&self.metrics_bind_address)
    }

    /// The kube-rs configuration from `--kubeconfig`, else the usual inference.
    pub async fn kube_config(&self) -> anyhow::Result<kube::Config> {
        component::kube_config(self.kubeconfig.as_deref()).await
    }
}

/// Runs the controller manager until `shutdown` is cancelled (or leadership is lost, which is
/// an error as upstream, so a supervisor restarts the process).
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let kube_config = config.kube_config().await?;
    let root_ca = kube_config
        .root_cert
        .as_ref()
        .and_then(|certs| certs.first())
        .map(|der| util::pem_encode("CERTIFICATE", der));
    let client = kube::Client::try_from(kube_config).context("building the API client")?;
    let metrics = Arc::new(metrics::Metrics::default());
    if let Some(addr) = config.metrics_addr()? {
        let m = metrics.clone();
        let bound = component::serve_metrics(addr, move || m.render(), shutdown.clone()).await?;
        tracing::info!(address = %bound, "serving /metrics");
    }
    let mut elector = None;
    if config.leader_elect {
        let identity = leader::default_identity();
        let mut e = leader::LeaderElector::new(
            client.clone(),
            leader::LeaseConfig {
                namespace: config.leader_elect_resource_namespace.clone(),
                name: config.leader_elect_resource_name.clone(),
                identity,
                lease_duration: config.leader_elect_lease_duration,
                renew_deadline: config.leader_elect_renew_deadline,
                retry_period: config.leader_elect_retry_period,
            },
        );
        if !e.acquire(&shutdown).await {
            return Ok(());
        }
        elector = Some(e);
    }
    metrics.set_leader(true);
    let leading = shutdown.child_token();
    let ctx = Arc::new(Context::new(
        client,
        Arc::new(config),
        metrics.clone(),
        root_ca,
        leading.clone(),
    ));
    let controllers = scaffold::run_all(ctx, leading.clone());
    let result = match elector.as_mut() {
        Some(e) => {
            let result = tokio::select! {
                r = controllers => r,
                _ = e.hold(&shutdown) => {
                    leading.cancel();
                    if shutdown.is_cancelled() {
                        Ok(())
                    } else {
                        Err(anyhow::anyhow!("leader election lost"))
                    }
                }
            };
            // Hand the lease over at once on a graceful stop.
            if shutdown.is_cancelled() {
                e.release().await;
            }
            result
        }
        None => controllers.await,
    };
    metrics.set_leader(false);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controller_selection() {
        let mut c = Config::default();
        assert!(c.enabled("job-controller"));
        c.controllers = vec!["*".into(), "-job-controller".into()];
        assert!(!c.enabled("job-controller"));
        assert!(c.enabled("cronjob-controller"));
        c.controllers = vec!["cronjob-controller".into()];
        assert!(!c.enabled("job-controller"));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
    }

    #[test]
    fn eviction_flags() {
        let c = <Config as clap::Parser>::parse_from([
            "meso-controller-manager",
            "--node-eviction-rate=0.5",
            "--secondary-node-eviction-rate=0",
            "--unhealthy-zone-threshold=0.3",
            "--large-cluster-size-threshold=3",
        ]);
        assert_eq!(
            c.eviction,
            EvictionRates {
                node_eviction_rate: 0.5,
                secondary_node_eviction_rate: 0.0,
                unhealthy_zone_threshold: 0.3,
                large_cluster_size_threshold: 3,
            }
        );
        assert_eq!(Config::default().eviction.node_eviction_rate, 0.1);
    }
}
