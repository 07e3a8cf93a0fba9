//! `meso-kubelet`: runs the node agent, imports image archives, or tears a node down.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use meso_kubelet::{containerd, cri, egress, images, proxy, KubeletConfig};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(name = "meso-kubelet", version, about = "meso's node agent")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    config: KubeletConfig,
}

#[derive(Subcommand)]
enum Command {
    /// Import OCI or docker image archives into the node's containerd (CRI namespace k8s.io).
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// Stop and remove every pod sandbox of this node, its containerd, its egress and service rules.
    Teardown,
}

#[derive(Subcommand)]
enum ImageCommand {
    Import {
        /// Archives to import.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let config = cli.config;
    match cli.command {
        None => {
            let shutdown = CancellationToken::new();
            let token = shutdown.clone();
            tokio::spawn(async move {
                shutdown_signal().await;
                tracing::info!("signal received, stopping");
                token.cancel();
            });
            meso_kubelet::run(config, shutdown).await?;
        }
        Some(Command::Image {
            command: ImageCommand::Import { files },
        }) => {
            let socket = socket(&config);
            images::import(&socket, &files).await?;
        }
        Some(Command::Teardown) => teardown(&config).await?,
    }
    Ok(())
}

/// The CRI socket: the flag, else the managed containerd's.
fn socket(config: &KubeletConfig) -> PathBuf {
    config
        .container_runtime_endpoint
        .clone()
        .unwrap_or_else(|| containerd::Layout::new(&config.data_dir).socket)
}

/// Starts the runtime if needed, removes every sandbox, then stops it, unmounts and removes
/// the pods' volumes and drops the egress and service rules.
async fn teardown(config: &KubeletConfig) -> anyhow::Result<()> {
    let runtime = containerd::Runtime::start(config).await?;
    let result = async {
        let cri = cri::Cri::connect(runtime.socket()).await?;
        for sandbox in cri.list_sandboxes(None).await? {
            cri.remove_sandbox(&sandbox.id)
                .await
                .with_context(|| format!("removing sandbox {}", sandbox.id))?;
        }
        anyhow::Ok(())
    }
    .await;
    runtime.stop().await;
    meso_kubelet::pods::remove_pod_dir(&config.data_dir.join("pods"));
    egress::remove(config)?;
    proxy::remove(config)?;
    // The bridge goes last, once no veth hangs on it (best effort: it may not exist).
    let _ = tokio::process::Command::new("ip")
        .args(["link", "delete", &config.cni_bridge])
        .output()
        .await;
    result
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the kubelet");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
