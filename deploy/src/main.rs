//! `meso`: the all-in-one binary. `meso server` runs the control plane in one process.

use clap::{Parser, Subcommand};

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
    /// Run the control plane (API server; controllers, scheduler and a local agent as they land).
    Server(ServerArgs),
}

#[derive(clap::Args)]
struct ServerArgs {
    #[command(flatten)]
    api: meso_api::ApiServerArgs,
    /// Do not run a local agent (kubelet) in this process.
    #[arg(long)]
    disable_agent: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    meso_api::server::init_logging();
    let cli = Cli::parse();
    match cli.command {
        Command::Server(args) => {
            let kubeconfig = args.api.data_dir().join("admin.kubeconfig");
            if !args.disable_agent {
                tracing::info!("no agent yet: the kubelet is not built into this version");
            }
            let shutdown = tokio_util::sync::CancellationToken::new();
            let server = meso_api::ApiServer::start(&args.api, shutdown.clone()).await?;
            eprintln!(
                "meso is up. Use it with:\n  export KUBECONFIG={}\n  kubectl get namespaces",
                kubeconfig.display()
            );
            let token = shutdown.clone();
            tokio::spawn(async move {
                meso_api::server::shutdown_signal().await;
                tracing::info!("signal received");
                token.cancel();
            });
            server.serve().await
        }
    }
}
