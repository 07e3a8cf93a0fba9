//! SchedulingBasic, as upstream's scheduler_perf: N simulated nodes, M pods created in bulk
//! through a real `meso server`; prints pods/s end to end (first create → last binding
//! confirmed), the scheduler's own decision time per pod and the CPU time per pod of the
//! server and of this process (client and scheduler). Then, on the same server, it measures
//! the parts apart: pod creates with no scheduler running, and a new scheduler binding those
//! pods (all pending already).
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
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams};
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

/// CPU seconds (user + system) process `pid` (or `self`) has used so far.
fn cpu_seconds(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // After the command name: state is field 3, utime field 14, stime field 15 (clock ticks).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// The store's group-commit flushes so far, from the server's `/metrics`.
async fn flushes(c: &kube::Client) -> f64 {
    let Ok(req) = http::Request::get("/metrics").body(Vec::new()) else {
        return 0.0;
    };
    let text = c.request_text(req).await.unwrap_or_default();
    metric(&text, "meso_store_flushes_total")
}

/// CPU seconds used by the server and by this process (client and scheduler) so far.
fn cpu(server: &common::Server) -> (f64, f64) {
    (cpu_seconds(&server.pid().to_string()), cpu_seconds("self"))
}

/// Creates `pods` pods named `{prefix}-N`, 64 at a time; returns how long it took.
async fn create_pods(c: &kube::Client, prefix: &str, pods: usize) -> Result<Duration> {
    let start = Instant::now();
    stream::iter(0..pods)
        .map(|i| async move {
            common::pod(
                c,
                &format!("{prefix}-{i:05}"),
                json!({"app": "bench"}),
                "10m",
                json!({}),
            )
            .await
        })
        .buffer_unordered(64)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(start.elapsed())
}

/// Polls the scheduler's metrics until `pods` pods are scheduled (at most 300s). Returns the
/// metrics and when (since `start`) the count was first seen above zero, with that count,
/// and when it reached `pods`.
async fn scheduled(
    metrics: &str,
    pods: usize,
    start: Instant,
) -> Result<(String, Duration, usize, Duration)> {
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut first = None;
    loop {
        let m = common::http_get(metrics).await.unwrap_or_default();
        let n = metric(
            &m,
            "scheduler_schedule_attempts_total{profile=\"default-scheduler\",result=\"scheduled\"}",
        ) as usize;
        if n > 0 && first.is_none() {
            first = Some((start.elapsed(), n));
        }
        if n >= pods {
            let (t, n0) = first.unwrap_or((Duration::ZERO, 0));
            return Ok((m, t, n0, start.elapsed()));
        }
        if Instant::now() > deadline {
            bail!("only {n} of {pods} pods bound after 300s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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

    // End to end: creates and the scheduler's bindings at once.
    let (server0, self0) = cpu(&server);
    let flushes0 = flushes(c).await;
    let start = Instant::now();
    let (create_took, (m, _, _, bound_took)) = tokio::try_join!(
        create_pods(c, "pod", pods),
        scheduled(&sched.metrics, pods, start)
    )?;
    let (server1, self1) = cpu(&server);
    let flushed = flushes(c).await - flushes0;
    let alg_sum = metric(&m, "scheduler_scheduling_algorithm_duration_seconds_sum");
    let alg_count = metric(&m, "scheduler_scheduling_algorithm_duration_seconds_count").max(1.0);
    sched.shutdown().await.context("stopping the scheduler")?;
    let per_pod = |secs: f64| secs / pods as f64 * 1e6;
    println!(
        "SchedulingBasic nodes={nodes:>5} pods={pods:>5}: {:>7.1} pods/s end to end ({:.2}s; \
         creates done at {:.1} pods/s), decision {:>7.1} µs/pod, CPU per pod: server {:.0} µs, \
         client+scheduler {:.0} µs, {:.2} store flushes per pod (nodes created in {:.1}s)",
        pods as f64 / bound_took.as_secs_f64(),
        bound_took.as_secs_f64(),
        pods as f64 / create_took.as_secs_f64(),
        alg_sum / alg_count * 1e6,
        per_pod(server1 - server0),
        per_pod(self1 - self0),
        flushed / pods as f64,
        nodes_took.as_secs_f64(),
    );

    // Where the time goes: creates with no scheduler running, then a new scheduler binding
    // those pods (already pending) alone. The first pods go first (at once: no kubelet to
    // wait for), or small clusters would be full (110 pods per node).
    Api::<Pod>::namespaced(c.clone(), "default")
        .delete_collection(
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..DeleteParams::default()
            },
            &ListParams::default(),
        )
        .await
        .context("deleting the first pods")?;
    let (server0, self0) = cpu(&server);
    let create_took = create_pods(c, "solo", pods).await?;
    let (server1, self1) = cpu(&server);
    let sched = common::start_scheduler(c, "bench", false)?;
    let (_, first, n0, done) = scheduled(&sched.metrics, pods, Instant::now()).await?;
    let (server2, self2) = cpu(&server);
    sched.shutdown().await.context("stopping the scheduler")?;
    let binds = pods.saturating_sub(n0).max(1);
    println!(
        "    creates alone {:>7.1} pods/s (CPU per pod: server {:.0} µs, client {:.0} µs), \
         binds alone {:>7.1} pods/s (CPU per pod: server {:.0} µs, scheduler {:.0} µs)",
        pods as f64 / create_took.as_secs_f64(),
        per_pod(server1 - server0),
        per_pod(self1 - self0),
        binds as f64 / done.saturating_sub(first).as_secs_f64().max(1e-3),
        per_pod(server2 - server1),
        per_pod(self2 - self1),
    );
    Ok(())
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
