//! Store throughput with durability on: `cargo bench -p meso-store`.
//! Prints figures; asserts nothing. Each phase runs for a fixed time, so the whole run takes
//! about 20 s.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use meso_store::{Store, StoreOptions};

const VALUE_SIZE: usize = 1024;
const WRITE_PHASE: Duration = Duration::from_secs(4);
const READ_PHASE: Duration = Duration::from_secs(2);
const TASKS: u64 = 16;

fn report(name: &str, ops: u64, elapsed: Duration) {
    let secs = elapsed.as_secs_f64();
    println!(
        "{name:<44} {:>10.0} ops/s  ({ops} ops in {secs:.2} s, {:.1} µs/op)",
        ops as f64 / secs,
        secs * 1e6 / ops.max(1) as f64
    );
}

async fn writes(store: &Store, tasks: u64, tag: &str) -> u64 {
    let count = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let (store, count, tag) = (store.clone(), count.clone(), tag.to_owned());
        handles.push(tokio::spawn(async move {
            let mut i = 0u64;
            while start.elapsed() < WRITE_PHASE {
                let key = format!("/registry/{tag}/ns/{t}-{i}");
                if let Err(e) = store.create(&key, vec![b'v'; VALUE_SIZE]).await {
                    eprintln!("write failed: {e}");
                    return;
                }
                i += 1;
                count.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for h in handles {
        let _ = h.await;
    }
    let ops = count.load(Ordering::Relaxed);
    report(
        &format!("{tasks:>2}-way create, 1 KiB, durable"),
        ops,
        start.elapsed(),
    );
    ops
}

fn reads(store: &Store, keys: &Arc<Vec<String>>, threads: u64) {
    let start = Instant::now();
    let total: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (store, keys) = (store.clone(), keys.clone());
                s.spawn(move || {
                    let mut n = 0u64;
                    let mut i = t as usize * 7919;
                    while start.elapsed() < READ_PHASE {
                        for _ in 0..64 {
                            i = (i + 104_729) % keys.len();
                            if let Ok(Some(kv)) = store.get(&keys[i]) {
                                std::hint::black_box(kv);
                            }
                            n += 1;
                        }
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    report(
        &format!("{threads:>2}-way get, 1 KiB"),
        total,
        start.elapsed(),
    );
}

fn main() {
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => return eprintln!("no temp dir: {e}"),
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return eprintln!("no runtime: {e}"),
    };
    rt.block_on(async {
        let store = match Store::open(dir.path(), StoreOptions::default()) {
            Ok(s) => s,
            Err(e) => return eprintln!("open failed: {e}"),
        };
        println!(
            "meso-store bench ({} cores)",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        writes(&store, 1, "seq").await;
        writes(&store, TASKS, "par").await;

        let keys: Arc<Vec<String>> = match store.list("/registry/", None, 0) {
            Ok(l) => Arc::new(l.items.into_iter().map(|kv| kv.key).collect()),
            Err(e) => return eprintln!("list failed: {e}"),
        };
        println!("{} keys stored", keys.len());
        reads(&store, &keys, 1);
        reads(&store, &keys, TASKS);

        let start = Instant::now();
        let mut n = 0;
        while start.elapsed() < READ_PHASE {
            if let Ok(l) = store.list("/registry/par/", None, 500) {
                n += 1;
                std::hint::black_box(l);
            }
        }
        report("list 500 keys, 1 KiB", n, start.elapsed());

        // Fan-out: 2000 live watchers on a narrow prefix and 10 on everything, 2000 writes.
        let mut watchers = Vec::new();
        for i in 0..2010 {
            let prefix = if i < 2000 {
                "/registry/fan/"
            } else {
                "/registry/"
            };
            if let Ok(w) = store.watch(prefix, store.current_revision()) {
                watchers.push(w);
            }
        }
        let delivered = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let mut readers = Vec::new();
        for mut w in watchers {
            let delivered = delivered.clone();
            readers.push(tokio::spawn(async move {
                for _ in 0..200 {
                    match w.next_shared().await {
                        Some(Ok(_)) => delivered.fetch_add(1, Ordering::Relaxed),
                        _ => return,
                    };
                }
            }));
        }
        for i in 0..200 {
            if let Err(e) = store
                .create(&format!("/registry/fan/{i}"), vec![b'f'; VALUE_SIZE])
                .await
            {
                return eprintln!("write failed: {e}");
            }
        }
        for r in readers {
            let _ = r.await;
        }
        report(
            "watch fan-out: 200 writes x 2010 watchers",
            delivered.load(Ordering::Relaxed),
            start.elapsed(),
        );
    });
}
