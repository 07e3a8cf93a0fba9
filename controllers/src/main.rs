//! `meso-controller-manager`: the controller manager as its own process.

use clap::Parser;
use meso_scheduler::component;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    component::init_tracing();
    let config = meso_controllers::Config::parse();
    meso_controllers::run(config, component::cancel_on_signal()).await
}
