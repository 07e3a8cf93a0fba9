//! `meso`: the all-in-one binary. `meso server` runs the control plane in one process
//! (API server, controllers, scheduler) and, unless told otherwise, a local agent (kubelet with its own
//! containerd); `meso agent` runs an agent alone; `meso image import` brings images in.

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "meso",
    version,
    about = "A lightweight Kubernetes-compatible orchestrator"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the control plane (API server, controllers, scheduler) and a local agent.
    Server(ServerArgs),
    /// Run a node agent (kubelet, with its own containerd unless told otherwise).
    Agent(meso_kubelet::KubeletConfig),
    /// Import OCI or docker image archives into the agent's containerd (namespace k8s.io).
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
}

#[derive(Subcommand)]
enum ImageCommand {
    /// Import archives: `meso image import [--data-dir DIR] FILE…`.
    Import {
        /// The agent's data directory [default: <server data dir>/agent].
        #[arg(long)]
        data_dir: Option<PathBuf>,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(clap::Args)]
struct ServerArgs {
    #[command(flatten)]
    api: meso_api::ApiServerArgs,
    /// Do not run a local agent (kubelet) in this process.
    #[arg(long)]
    disable_agent: bool,
    /// Do not run the scheduler in this process.
    #[arg(long)]
    disable_scheduler: bool,
    /// Do not run the controllers in this process.
    #[arg(long)]
    disable_controllers: bool,
    /// Where the built-in controllers serve `/metrics` over plain HTTP ("0": nowhere).
    #[arg(long, default_value = "0")]
    controllers_metrics_bind_address: String,
    #[command(flatten)]
    eviction: meso_controllers::EvictionRates,
    /// How often the built-in controllers sync every HorizontalPodAutoscaler.
    #[arg(long, default_value = "15s", value_parser = meso_controllers::parse_duration)]
    horizontal_pod_autoscaler_sync_period: std::time::Duration,
    /// Where the built-in scheduler serves `/metrics` over plain HTTP ("0": nowhere).
    #[arg(long, default_value = "0")]
    scheduler_metrics_bind_address: String,
    /// Where the local agent's forwarded pod traffic may go (`local` keeps every packet on
    /// this machine; `open` masquerades pod traffic to the outside).
    #[arg(long, value_enum, default_value_t = meso_kubelet::PodEgress::Local)]
    pod_egress: meso_kubelet::PodEgress,
    /// The local agent's pod network.
    #[arg(long, default_value = "10.42.0.0/24")]
    pod_cidr: String,
    /// A flag for the local agent, as `meso agent` takes it (repeatable), e.g.
    /// `--agent-arg=--insecure-registry=127.0.0.1:5000` or `--agent-arg=--embedded-dns=false`.
    #[arg(long = "agent-arg", value_name = "FLAG", allow_hyphen_values = true)]
    agent_args: Vec<String>,
}

/// The local agent's configuration: its data under `<data-dir>/agent`, the admin kubeconfig.
fn agent_config(
    args: &ServerArgs,
    kubeconfig: &Path,
    pki: &meso_api::certs::Pki,
) -> anyhow::Result<meso_kubelet::KubeletConfig> {
    use clap::Parser;
    #[derive(Parser)]
    struct AgentCli {
        #[command(flatten)]
        config: meso_kubelet::KubeletConfig,
    }
    let data_dir = args.api.data_dir().join("agent");
    let cli = AgentCli::try_parse_from(
        [
            "meso-agent".into(),
            format!("--data-dir={}", data_dir.display()),
            format!("--kubeconfig={}", kubeconfig.display()),
            "--node-label=node-role.kubernetes.io/control-plane=true".into(),
            format!("--pod-cidr={}", args.pod_cidr),
            format!("--service-cidr={}", args.api.service_cluster_ip_range),
        ]
        .into_iter()
        .chain(args.agent_args.iter().cloned()),
    )
    .map_err(|e| anyhow::anyhow!("the local agent's flags (--agent-arg): {e}"))?;
    let mut config = cli.config;
    config.pod_egress = args.pod_egress;
    // The kubelet server's certificate, from the cluster CA (issued afresh on every start);
    // without it the kubelet makes a self-signed one.
    match kubelet_serving_cert(&config, &data_dir, pki) {
        Ok((cert, key)) => {
            config.tls_cert_file = Some(cert);
            config.tls_private_key_file = Some(key);
        }
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "issuing the kubelet serving certificate; the kubelet signs its own")
        }
    }
    Ok(config)
}

/// Writes a serving certificate for the local kubelet signed by the cluster CA: (cert, key)
/// paths under `<agent data dir>/pki`.
fn kubelet_serving_cert(
    config: &meso_kubelet::KubeletConfig,
    data_dir: &Path,
    pki: &meso_api::certs::Pki,
) -> anyhow::Result<(PathBuf, PathBuf)> {
    let name = config.node_name();
    let ip = config
        .node_ip
        .unwrap_or_else(meso_kubelet::node::default_ip)
        .to_string();
    let sans = [
        name.clone(),
        ip,
        "localhost".to_string(),
        "127.0.0.1".to_string(),
    ];
    let (cert, key) = pki.issue_serving_cert(&format!("{name}@kubelet"), &sans)?;
    let (cert_path, key_path) = (
        data_dir.join("pki/kubelet.crt"),
        data_dir.join("pki/kubelet.key"),
    );
    meso_api::certs::write_file(&key_path, key.as_bytes(), 0o600)?;
    meso_api::certs::write_file(&cert_path, cert.as_bytes(), 0o644)?;
    Ok((cert_path, key_path))
}

/// Runs an embedded component until shutdown; its failure is logged, not fatal to the
/// API server.
fn spawn_component<F>(name: &'static str, fut: F)
where
    F: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    tokio::spawn(async move {
        match fut.await {
            Ok(()) => tracing::info!(component = name, "stopped"),
            Err(e) => tracing::error!(component = name, error = %format!("{e:#}"), "failed"),
        }
    });
}

fn scheduler_config(kubeconfig: &Path, metrics: &str) -> meso_scheduler::SchedulerConfig {
    meso_scheduler::SchedulerConfig {
        kubeconfig: Some(kubeconfig.to_path_buf()),
        metrics_bind_address: metrics.to_string(),
        ..Default::default()
    }
}

async fn server(args: ServerArgs) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let server = meso_api::ApiServer::start(&args.api, shutdown.clone()).await?;
    let kubeconfig = server.kubeconfig.clone();
    let pki = server.pki.clone();
    let token = shutdown.clone();
    tokio::spawn(async move {
        meso_api::server::shutdown_signal().await;
        tracing::info!("signal received");
        token.cancel();
    });
    let serving = tokio::spawn(server.serve());
    if !args.disable_agent {
        let config = agent_config(&args, &kubeconfig, &pki)?;
        let token = shutdown.clone();
        spawn_component("agent", async move {
            meso_kubelet::run(config, token)
                .await
                .map_err(anyhow::Error::from)
        });
    }
    if !args.disable_controllers {
        let config = meso_controllers::Config {
            kubeconfig: Some(kubeconfig.clone()),
            metrics_bind_address: args.controllers_metrics_bind_address.clone(),
            eviction: args.eviction,
            horizontal_pod_autoscaler_sync_period: args.horizontal_pod_autoscaler_sync_period,
            ..Default::default()
        };
        spawn_component(
            "controllers",
            meso_controllers::run(config, shutdown.clone()),
        );
    }
    if !args.disable_scheduler {
        let config = scheduler_config(&kubeconfig, &args.scheduler_metrics_bind_address);
        spawn_component("scheduler", meso_scheduler::run(config, shutdown.clone()));
    }
    eprintln!(
        "meso is up. Use it with:\n  export KUBECONFIG={}\n  kubectl get namespaces",
        kubeconfig.display()
    );
    serving.await?
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    meso_api::server::init_logging();
    let cli = Cli::parse();
    match cli.command {
        Command::Server(args) => server(args).await,
        Command::Agent(config) => {
            let shutdown = CancellationToken::new();
            let token = shutdown.clone();
            tokio::spawn(async move {
                meso_api::server::shutdown_signal().await;
                token.cancel();
            });
            meso_kubelet::run(config, shutdown).await?;
            Ok(())
        }
        Command::Image {
            command: ImageCommand::Import { data_dir, files },
        } => {
            let dir = data_dir
                .unwrap_or_else(|| meso_api::ApiServerArgs::default_data_dir().join("agent"));
            let socket = meso_kubelet::containerd::Layout::new(&dir).socket;
            meso_kubelet::images::import(&socket, &files).await?;
            Ok(())
        }
    }
}
