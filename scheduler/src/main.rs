//! `meso-scheduler`: the scheduler as its own process.

use clap::Parser;
use meso_scheduler::component;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    component::init_tracing();
    let config = meso_scheduler::SchedulerConfig::parse();
    meso_scheduler::run(config, component::cancel_on_signal()).await
}
