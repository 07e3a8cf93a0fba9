//! `meso-apiserver`: the API server alone.

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "meso-apiserver",
    version,
    about = "meso's Kubernetes-compatible API server"
)]
struct Cli {
    #[command(flatten)]
    api: meso_api::ApiServerArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    meso_api::server::init_logging();
    let cli = Cli::parse();
    meso_api::run(cli.api).await
}
