//! API load benchmark: starts `meso server` and drives it over TLS with 16 concurrent
//! connections of 1 KiB ConfigMaps. Prints throughput, latency percentiles, watch delivery and
//! the server's RSS; asserts nothing.
//!
//! `cargo bench -p meso-tests --bench api_load` (knobs: MESO_BENCH_OBJECTS, default 10000;
//! MESO_BENCH_CONCURRENCY, default 16; MESO_BENCH_GETS, default 20000).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use meso_tests::MesoServer;
use serde_json::{json, Value};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn print_latencies(what: &str, n: usize, elapsed: Duration, mut lat: Vec<Duration>) {
    lat.sort();
    println!(
        "{what:<44} {n:>7} in {:>7.2} s = {:>8.0}/s   p50 {:>8.2} ms   p99 {:>8.2} ms",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64().max(1e-9),
        pct(&lat, 0.50).as_secs_f64() * 1e3,
        pct(&lat, 0.99).as_secs_f64() * 1e3,
    );
}

fn configmap(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
           "data": {"payload": "x".repeat(1024)}})
}

async fn create_ns(client: &reqwest::Client, base: &str, name: &str) -> Result<()> {
    let r = client
        .post(format!("{base}/api/v1/namespaces"))
        .json(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}))
        .send()
        .await?;
    ensure!(
        r.status().as_u16() == 201,
        "create namespace {name}: {}",
        r.status()
    );
    Ok(())
}

type SendTimes = Arc<Mutex<HashMap<String, Instant>>>;

/// Creates `names` with `conc` workers; returns per-request latencies. When `sent` is given,
/// the instant each request is sent is recorded there.
async fn create_many(
    client: &reqwest::Client,
    url: &str,
    names: Vec<String>,
    conc: usize,
    sent: Option<SendTimes>,
) -> Result<Vec<Duration>> {
    let names = Arc::new(names);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let (client, url, names, next) =
            (client.clone(), url.to_string(), names.clone(), next.clone());
        let sent = sent.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(name) = names.get(i) else { break };
                let t = Instant::now();
                if let Some(m) = &sent {
                    if let Ok(mut m) = m.lock() {
                        m.insert(name.clone(), t);
                    }
                }
                let r = client.post(&url).json(&configmap(name)).send().await?;
                let status = r.status();
                let _ = r.bytes().await?;
                ensure!(status.as_u16() == 201, "create {name}: {status}");
                lat.push(t.elapsed());
            }
            anyhow::Ok(lat)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.context("create worker")??);
    }
    Ok(all)
}

async fn run(srv: &MesoServer) -> Result<()> {
    let objects = env_usize("MESO_BENCH_OBJECTS", 10_000).max(1_000);
    let conc = env_usize("MESO_BENCH_CONCURRENCY", 16).max(1);
    let gets = env_usize("MESO_BENCH_GETS", 20_000);
    let client = srv.http()?;
    let base = srv.base_url()?;
    println!(
        "meso api_load: {objects} ConfigMaps of 1 KiB, {conc} concurrent TLS clients, server pid {}",
        srv.pid().unwrap_or(0)
    );
    println!("RSS idle: {:.1} MiB", srv.rss_kib()? as f64 / 1024.0);

    create_ns(&client, &base, "bench").await?;
    create_ns(&client, &base, "bench-list").await?;
    create_ns(&client, &base, "bench-watch").await?;

    // creates: 1k in bench-list, the rest in bench
    let list_names: Vec<String> = (0..1_000).map(|i| format!("l-{i:05}")).collect();
    let bulk_names: Vec<String> = (0..objects - 1_000).map(|i| format!("b-{i:05}")).collect();
    let t = Instant::now();
    let mut targets: Vec<String> = list_names
        .iter()
        .map(|n| format!("{base}/api/v1/namespaces/bench-list/configmaps/{n}"))
        .chain(
            bulk_names
                .iter()
                .map(|n| format!("{base}/api/v1/namespaces/bench/configmaps/{n}")),
        )
        .collect();
    targets.sort();
    let mut lat = create_many(
        &client,
        &format!("{base}/api/v1/namespaces/bench-list/configmaps"),
        list_names,
        conc,
        None,
    )
    .await?;
    lat.extend(
        create_many(
            &client,
            &format!("{base}/api/v1/namespaces/bench/configmaps"),
            bulk_names,
            conc,
            None,
        )
        .await?,
    );
    print_latencies("create (durable)", objects, t.elapsed(), lat);
    println!(
        "RSS after {objects} objects: {:.1} MiB",
        srv.rss_kib()? as f64 / 1024.0
    );

    // GETs of random existing objects
    let next = Arc::new(AtomicUsize::new(0));
    let targets = Arc::new(targets);
    let t = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..conc {
        let (client, next, targets) = (client.clone(), next.clone(), targets.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut x: usize = 0x9e37_79b9 ^ w;
            while next.fetch_add(1, Ordering::Relaxed) < gets {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let url = &targets[x % targets.len()];
                let t = Instant::now();
                let r = client.get(url).send().await?;
                let status = r.status();
                let _ = r.bytes().await?;
                ensure!(status.is_success(), "GET {url}: {status}");
                lat.push(t.elapsed());
            }
            anyhow::Ok(lat)
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.context("get worker")??);
    }
    print_latencies("get", lat.len(), t.elapsed(), lat);

    // LIST of 1k out of all objects
    for (what, path, n) in [
        (
            "list one namespace",
            "/api/v1/namespaces/bench-list/configmaps",
            50,
        ),
        (
            "list limit=500 (first page)",
            "/api/v1/namespaces/bench/configmaps?limit=500",
            50,
        ),
        ("list all namespaces", "/api/v1/configmaps", 5),
    ] {
        let mut lat = Vec::new();
        let t = Instant::now();
        let mut items = 0;
        for _ in 0..n {
            let s = Instant::now();
            let r = client.get(format!("{base}{path}")).send().await?;
            ensure!(r.status().is_success(), "{path}: {}", r.status());
            let v: Value = r.json().await?;
            lat.push(s.elapsed());
            items = v["items"].as_array().map(Vec::len).unwrap_or(0);
        }
        print_latencies(&format!("{what} [{items} items]"), n, t.elapsed(), lat);
    }

    // watch delivery: one watcher, creates from all clients; latency from send to event
    let sent: SendTimes = Arc::default();
    let r = client
        .get(format!(
            "{base}/api/v1/namespaces/bench-watch/configmaps?watch=true&timeoutSeconds=120"
        ))
        .send()
        .await?;
    ensure!(r.status().is_success(), "watch: {}", r.status());
    let n_watch = 2_000;
    let sent2 = sent.clone();
    let reader = tokio::spawn(async move {
        let mut r = r;
        let mut buf = Vec::<u8>::new();
        let mut lat = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        while lat.len() < n_watch && Instant::now() < deadline {
            let Some(chunk) = tokio::time::timeout(Duration::from_secs(30), r.chunk())
                .await
                .ok()
                .and_then(|c| c.ok())
                .flatten()
            else {
                break;
            };
            buf.extend_from_slice(&chunk);
            while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=pos).collect();
                let now = Instant::now();
                let Ok(ev) = serde_json::from_slice::<Value>(&line) else {
                    continue;
                };
                let name = ev["object"]["metadata"]["name"].as_str().unwrap_or("");
                if let Some(t) = sent2.lock().ok().and_then(|m| m.get(name).copied()) {
                    lat.push(now - t);
                }
            }
        }
        lat
    });
    let names: Vec<String> = (0..n_watch).map(|i| format!("w-{i:05}")).collect();
    let t = Instant::now();
    let _ = create_many(
        &client,
        &format!("{base}/api/v1/namespaces/bench-watch/configmaps"),
        names,
        conc,
        Some(sent),
    )
    .await?;
    let created = t.elapsed();
    let lat = reader.await.context("watch reader")?;
    println!(
        "watch: {} of {n_watch} ADDED events received; creates took {:.2} s",
        lat.len(),
        created.as_secs_f64()
    );
    print_latencies(
        "watch delivery (send -> event)",
        lat.len(),
        t.elapsed(),
        lat,
    );

    println!(
        "RSS at end ({} objects): {:.1} MiB",
        objects + n_watch,
        srv.rss_kib()? as f64 / 1024.0
    );
    Ok(())
}

fn main() -> Result<()> {
    // `cargo test --benches` runs bench targets with `--bench`-less args; only run when asked
    // for a benchmark (cargo bench passes --bench) or when run directly without arguments.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.is_empty() && !args.iter().any(|a| a == "--bench") {
        println!("api_load: not run (pass --bench, as `cargo bench` does)");
        return Ok(());
    }
    let srv = MesoServer::start()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let result = rt.block_on(run(&srv));
    if let Err(e) = &result {
        eprintln!("api_load failed: {e:#}\n{}", srv.log_tail(40));
    }
    result
}
