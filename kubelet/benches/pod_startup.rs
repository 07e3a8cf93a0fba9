//! Pod startup latency on a real node: time from pod create to `Running` and to `Ready` for
//! batches of 1, 10 and 50 pods with the image present, printed as p50/p99.
//!
//! Run with `cargo bench -p meso-kubelet --bench pod_startup` as root (containerd, runc, CNI
//! plugins, nft, gcc, busybox-static installed); otherwise it prints why it skipped.

#[path = "../tests/e2e/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use futures::StreamExt;
use kube::api::{DeleteParams, ListParams};
use kube::runtime::watcher;
use serde_json::json;

/// When each pod of a batch was created, became Running and became Ready.
#[derive(Default)]
struct Times {
    created: Option<Instant>,
    running: Option<Instant>,
    ready: Option<Instant>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn batch(node: &common::TestNode, size: usize) -> Result<(Vec<Duration>, Vec<Duration>)> {
    let pods = node.pods();
    let label = format!("bench-{size}");
    let mut times: HashMap<String, Times> = HashMap::new();
    let config = watcher::Config::default().labels(&format!("bench={label}"));
    let mut events = watcher(pods.clone(), config).boxed();
    // The watch is established before the first create.
    while let Some(e) = events.next().await {
        if matches!(e?, watcher::Event::InitDone) {
            break;
        }
    }
    for i in 0..size {
        let name = format!("{label}-{i}");
        let created = Instant::now();
        node.create_pod(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"bench": label}},
            "spec": {"terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "c", "image": common::BUSYBOX, "command": ["sleep", "3600"],
                                     "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 1}}]}
        }))
        .await?;
        times.entry(name).or_default().created = Some(created);
    }
    let deadline = Instant::now() + Duration::from_secs(120 + size as u64 * 3);
    while times.values().any(|t| t.ready.is_none()) {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(event)) = tokio::time::timeout(left, events.next()).await else {
            bail!(
                "batch of {size}: pods not Ready in time\n{}",
                node.kubelet_log()
            );
        };
        let watcher::Event::Apply(pod) = event? else {
            continue;
        };
        let now = Instant::now();
        let Some(t) = pod.metadata.name.as_ref().and_then(|n| times.get_mut(n)) else {
            continue;
        };
        let status = pod.status.unwrap_or_default();
        if status.phase.as_deref() == Some("Running") && t.running.is_none() {
            t.running = Some(now);
        }
        let ready = status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        if ready && t.ready.is_none() {
            t.ready = Some(now);
            t.running.get_or_insert(now);
        }
    }
    let since = |t: &Times, at: Option<Instant>| match (t.created, at) {
        (Some(c), Some(a)) => a.saturating_duration_since(c),
        _ => Duration::ZERO,
    };
    let mut running: Vec<Duration> = times.values().map(|t| since(t, t.running)).collect();
    let mut ready: Vec<Duration> = times.values().map(|t| since(t, t.ready)).collect();
    running.sort();
    ready.sort();

    let params = DeleteParams {
        grace_period_seconds: Some(0),
        ..Default::default()
    };
    pods.delete_collection(
        &params,
        &ListParams::default().labels(&format!("bench={label}")),
    )
    .await?;
    let gone_by = Instant::now() + Duration::from_secs(120);
    loop {
        let left = pods
            .list(&ListParams::default().labels(&format!("bench={label}")))
            .await?
            .items
            .len();
        if left == 0 {
            break;
        }
        if Instant::now() > gone_by {
            bail!("batch of {size}: {left} pods not deleted in time");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok((running, ready))
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; `cargo test --benches` would run this too: skip then.
    if !std::env::args().any(|a| a == "--bench") {
        println!("pod_startup: run it with `cargo bench`");
        return Ok(());
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("pod_startup: SKIPPED (needs root, containerd, runc and the CNI plugins)");
        return Ok(());
    }
    if !common::prerequisites() {
        return Ok(());
    }
    let node = common::TestNode::start().await?;
    println!("pod startup (create → Running, create → Ready; image present, exec readiness probe every 1 s)");
    println!(
        "{:>5}  {:>14} {:>14}  {:>14} {:>14}",
        "pods", "Running p50", "Running p99", "Ready p50", "Ready p99"
    );
    for size in [1, 10, 50] {
        let (running, ready) = batch(&node, size).await?;
        println!(
            "{size:>5}  {:>14} {:>14}  {:>14} {:>14}",
            ms(percentile(&running, 50.0)),
            ms(percentile(&running, 99.0)),
            ms(percentile(&ready, 50.0)),
            ms(percentile(&ready, 99.0)),
        );
    }
    Ok(())
}
