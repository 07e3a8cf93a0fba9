//! meso-scheduler: places pods on nodes as kube-scheduler's default profile does.
//!
//! Watches keep a [`cache::Cache`] of nodes and their pods and a [`queue::Queue`] of pending
//! pods; the leader pops pods in priority order, runs the [`plugins`] (filter, score) over the
//! cache, assumes the pod on the chosen node and binds it through `pods/binding` in the
//! background. A pod that fits nowhere gets `PodScheduled=False` and a `FailedScheduling`
//! event, may preempt lower-priority pods, and waits for a cluster event that may help it.

pub mod cache;
pub mod claims;
pub mod component;
pub mod framework;
pub mod leader;
pub mod metrics;
pub mod model;
pub mod plugins;
pub mod queue;
pub mod resources;
mod scheduler;
pub mod watched;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

pub use component::parse_duration;
pub use scheduler::run_with_client;

/// Command-line flags (kube-scheduler's names where it has one).
#[derive(clap::Parser, Debug, Clone)]
#[command(name = "meso-scheduler", version, about = "meso's pod scheduler")]
pub struct SchedulerConfig {
    /// Kubeconfig of the API server [default: $KUBECONFIG, ~/.kube/config, or in-cluster].
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Elect a leader through a Lease so that only one of several schedulers is active.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    #[arg(long, default_value = "kube-scheduler")]
    pub leader_elect_resource_name: String,
    #[arg(long, default_value = "kube-system")]
    pub leader_elect_resource_namespace: String,
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub leader_elect_lease_duration: Duration,
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub leader_elect_renew_deadline: Duration,
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub leader_elect_retry_period: Duration,
    /// This candidate's name in the Lease [default: hostname plus a unique suffix].
    #[arg(long)]
    pub leader_elect_identity: Option<String>,
    /// Where `/metrics` and `/healthz` are served, over plain HTTP (upstream serves HTTPS on
    /// 10259); `0` turns them off. Port 0 picks a free port (logged).
    #[arg(long, default_value = "127.0.0.1:10259")]
    pub metrics_bind_address: String,
    /// Pods whose `spec.schedulerName` is this (or empty) are ours.
    #[arg(long, default_value = "default-scheduler")]
    pub scheduler_name: String,
    /// Bindings in flight at once.
    #[arg(long, default_value_t = 32)]
    pub parallel_binds: usize,
    /// How long after its binding call finished an assumed pod may stay unconfirmed by the
    /// watch before it is checked against the API (and forgotten if not bound); `0` never
    /// checks (kube-scheduler v1.36 hard-codes 0, see kubernetes#106361).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub assumed_pod_ttl: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        <Self as clap::Parser>::parse_from(["meso-scheduler"])
    }
}

impl SchedulerConfig {
    /// The metrics address, or `None` when turned off.
    pub fn metrics_addr(&self) -> anyhow::Result<Option<SocketAddr>> {
        component::metrics_addr(&self.metrics_bind_address)
    }

    /// A client from `--kubeconfig`, else the usual inference.
    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        let cfg = component::kube_config(self.kubeconfig.as_deref()).await?;
        kube::Client::try_from(cfg).context("building the API client")
    }
}

/// Runs the scheduler until `shutdown` is cancelled.
pub async fn run(config: SchedulerConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let client = config.client().await?;
    run_with_client(config, client, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = SchedulerConfig::default();
        assert!(c.leader_elect);
        assert_eq!(c.metrics_bind_address, "127.0.0.1:10259");
    }
}
