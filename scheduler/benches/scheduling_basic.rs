//! SchedulingBasic, as upstream's scheduler_perf: N simulated nodes, M pods created in bulk
//! through a real `meso server`; prints pods/s end to end (first create → last binding
//! confirmed) and the scheduler's own decision time per pod.
//!
//! By default every case of upstream's table runs: (100, 1000, 5000 nodes) × (1000, 10000
//! pods). `MESO_BENCH_NODES` and `MESO_BENCH_PODS` (comma-separated, e.g. `500` and `1000`)
//! run a subset; `MESO_BIN` picks the server binary (a release build gives the meaningful
//! figures).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures::{stream, StreamExt, TryStreamExt};
use serde_json::json;

fn env_list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

/// `name{labels} value` → value (first match).
fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

async fn run(nodes: usize, pods: usize) -> Result<()> {
    let server = common::Server::start().await?;
    let c = &server.client;
    let t = Instant::now();
    stream::iter(0..nodes)
        .map(|i| async move {
            let zone = format!("zone-{}", i % 3);
            common::node(
                c,
                &format!("node-{i:05}"),
                json!({"topology.kubernetes.io/zone": zone}),
                "32",
                json!({}),
            )
            .await
        })
        .buffer_unordered(32)
        .try_collect::<Vec<()>>()
        .await?;
    let nodes_took = t.elapsed();
    let sched = common::start_scheduler(c, "bench", false)?;
    // Wait for the scheduler to serve metrics (its caches are synced by then or shortly).
    common::eventually(60, "the scheduler", || async {
        Ok(common::http_get(&sched.metrics).await.ok())
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let start = Instant::now();
    let created = async {
        stream::iter(0..pods)
            .map(|i| async move {
                common::pod(
                    c,
                    &format!("pod-{i:05}"),
                    json!({"app": "bench"}),
                    "10m",
                    json!({}),
                )
                .await
            })
            .buffer_unordered(64)
            .try_collect::<Vec<()>>()
            .await
            .map(|_| start.elapsed())
    };
    let bound = async {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let m = common::http_get(&sched.metrics).await.unwrap_or_default();
            let n = metric(&m, "scheduler_schedule_attempts_total{profile=\"default-scheduler\",result=\"scheduled\"}");
            if n as usize >= pods {
                return Ok((start.elapsed(), m));
            }
            if Instant::now() > deadline {
                bail!("only {n} of {pods} pods bound after 300s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let (create_took, (bound_took, m)) = tokio::try_join!(created, bound)?;
    let alg_sum = metric(&m, "scheduler_scheduling_algorithm_duration_seconds_sum");
    let alg_count = metric(&m, "scheduler_scheduling_algorithm_duration_seconds_count").max(1.0);
    println!(
        "SchedulingBasic nodes={nodes:>5} pods={pods:>5}: {:>7.1} pods/s end to end ({:.2}s), \
         creates alone {:>7.1} pods/s, decision {:>7.1} µs/pod (nodes created in {:.1}s)",
        pods as f64 / bound_took.as_secs_f64(),
        bound_took.as_secs_f64(),
        pods as f64 / create_took.as_secs_f64(),
        alg_sum / alg_count * 1e6,
        nodes_took.as_secs_f64(),
    );
    sched.shutdown().await.context("stopping the scheduler")
}

#[tokio::main]
async fn main() -> Result<()> {
    let pods = env_list("MESO_BENCH_PODS", "1000,10000");
    for n in env_list("MESO_BENCH_NODES", "100,1000,5000") {
        for p in &pods {
            run(n.min(5000), (*p).min(10000)).await?;
        }
    }
    Ok(())
}
