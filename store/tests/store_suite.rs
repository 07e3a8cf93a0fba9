//! The store contract, exercised through the public API only.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use meso_store::{Event, EventType, KeyValue, Revision, Store, StoreError, StoreOptions, Watcher};

fn open(dir: &Path) -> Store {
    Store::open(dir, StoreOptions::default()).unwrap()
}

/// A small deterministic PRNG (xorshift64*), so the tests need no extra crates.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Collects exactly `n` events from a watcher, then checks that nothing else arrives soon.
async fn collect(w: &mut Watcher, n: usize) -> Vec<Event> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let ev = tokio::time::timeout(Duration::from_secs(20), w.next())
            .await
            .expect("watcher stalled")
            .expect("watcher ended")
            .expect("watcher failed");
        out.push(ev);
    }
    let extra = tokio::time::timeout(Duration::from_millis(100), w.next()).await;
    assert!(extra.is_err(), "unexpected extra event {extra:?}");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_cas_writers_lose_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.create("counter", b"0".to_vec()).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0u32;
            for _ in 0..50 {
                loop {
                    let kv = store.get("counter").unwrap().unwrap();
                    let n: u64 = std::str::from_utf8(&kv.value).unwrap().parse().unwrap();
                    match store
                        .update("counter", kv.mod_revision, (n + 1).to_string().into_bytes())
                        .await
                    {
                        Ok(_) => break,
                        Err(StoreError::Conflict { current }) => {
                            assert!(current.unwrap().mod_revision > kv.mod_revision);
                            conflicts += 1;
                        }
                        Err(e) => panic!("unexpected {e}"),
                    }
                }
            }
            conflicts
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let kv = store.get("counter").unwrap().unwrap();
    assert_eq!(kv.value, b"800");
    assert_eq!(kv.create_revision, 1);
    assert_eq!(kv.mod_revision, 801);
    assert_eq!(store.current_revision(), 801);
}

#[tokio::test]
async fn create_update_delete_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let a = store.create("a", b"1".to_vec()).await.unwrap();
    assert_eq!(
        store.create("a", b"x".to_vec()).await,
        Err(StoreError::AlreadyExists)
    );
    assert_eq!(
        store.update("missing", 1, b"x".to_vec()).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        store.delete("missing", None).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        store.delete("missing", Some(1)).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        store.update("a", a.mod_revision + 5, b"x".to_vec()).await,
        Err(StoreError::Conflict {
            current: Some(a.clone())
        })
    );
    assert_eq!(
        store.delete("a", Some(a.mod_revision + 5)).await,
        Err(StoreError::Conflict {
            current: Some(a.clone())
        })
    );
    // Failed writes changed nothing.
    assert_eq!(store.get("a").unwrap(), Some(a.clone()));
    assert_eq!(store.current_revision(), 1);

    let b = store.update("a", 1, b"2".to_vec()).await.unwrap();
    assert_eq!(
        b,
        KeyValue {
            key: "a".into(),
            value: b"2".to_vec(),
            create_revision: 1,
            mod_revision: 2
        }
    );
    let d = store.delete("a", Some(2)).await.unwrap();
    assert_eq!((d.value.as_slice(), d.mod_revision), (&b"2"[..], 3));
    assert_eq!(store.get("a").unwrap(), None);
    // Re-creating gets a new create revision.
    let c = store.create("a", b"3".to_vec()).await.unwrap();
    assert_eq!((c.create_revision, c.mod_revision), (4, 4));
    // Unconditional delete.
    assert_eq!(store.delete("a", None).await.unwrap().mod_revision, 5);
}

#[tokio::test]
async fn list_paginates_every_key_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut expected = Vec::new();
    for i in 0..300 {
        let key = format!("p/{:03}/{}", i * 7 % 300, i);
        store.create(&key, key.clone().into_bytes()).await.unwrap();
        expected.push(key);
    }
    for other in ["o/1", "p", "q/1", "p0"] {
        store.create(other, vec![]).await.unwrap();
    }
    expected.sort();
    assert_eq!(store.count("p/").unwrap(), 300);
    assert_eq!(store.count("").unwrap(), 304);

    let all = store.list("p/", None, 0).unwrap();
    assert!(!all.more);
    assert_eq!(all.revision, store.current_revision());
    let keys: Vec<_> = all.items.iter().map(|kv| kv.key.clone()).collect();
    assert_eq!(keys, expected);
    assert!(all.items.iter().all(|kv| kv.value == kv.key.as_bytes()));

    for limit in [1, 7, 100, 299, 300, 301] {
        let mut seen = Vec::new();
        let mut from: Option<String> = None;
        loop {
            let page = store.list("p/", from.as_deref(), limit).unwrap();
            assert!(page.items.len() <= limit);
            seen.extend(page.items.iter().map(|kv| kv.key.clone()));
            if !page.more {
                break;
            }
            assert_eq!(page.items.len(), limit);
            // A continue token: the key after the last one returned.
            from = Some(format!("{}\0", page.items.last().unwrap().key));
        }
        assert_eq!(seen, expected, "limit {limit}");
    }
    // Exactly `limit` keys left: no `more`.
    let tail = store.list("p/", Some(&expected[290]), 10).unwrap();
    assert_eq!(tail.items.len(), 10);
    assert!(!tail.more);
    // `from_key` before the prefix starts at the prefix; past it yields nothing.
    assert_eq!(store.list("p/", Some("a"), 0).unwrap().items.len(), 300);
    assert!(store.list("p/", Some("p0"), 0).unwrap().items.is_empty());
}

/// Applies random creates, updates and deletes over a few keys; returns the events as the writers
/// saw them acknowledged.
async fn random_writes(store: Store, seed: u64, n: usize) -> Vec<Event> {
    let mut rng = Rng(seed);
    let mut history = Vec::new();
    for i in 0..n {
        let key = format!(
            "w/{}/{}",
            ["a", "b", "c"][rng.below(3) as usize],
            rng.below(8)
        );
        let value = format!("{seed}-{i}").into_bytes();
        let current = store.get(&key).unwrap();
        let (deleting, result) = match (&current, rng.below(4)) {
            (None, _) => (false, store.create(&key, value.clone()).await),
            (Some(kv), 0) => (true, store.delete(&key, Some(kv.mod_revision)).await),
            (Some(kv), _) => (
                false,
                store.update(&key, kv.mod_revision, value.clone()).await,
            ),
        };
        let kv = match result {
            Ok(kv) => kv,
            // Another writer got there first.
            Err(StoreError::Conflict { .. } | StoreError::AlreadyExists | StoreError::NotFound) => {
                continue
            }
            Err(e) => panic!("unexpected {e}"),
        };
        history.push(Event {
            kind: if deleting {
                EventType::Delete
            } else {
                EventType::Put
            },
            key,
            value: kv.value.clone(),
            prev_value: current.map(|c| c.value),
            revision: kv.mod_revision,
            create_revision: kv.create_revision,
        });
    }
    history
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn watches_from_past_revisions_see_every_event_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    // A tiny live window, so that some watchers also go through lag recovery.
    let opts = StoreOptions {
        watch_buffer: 64,
        ..StoreOptions::default()
    };
    let store = Store::open(dir.path(), opts).unwrap();
    let writers: Vec<_> = (1..=4)
        .map(|seed| tokio::spawn(random_writes(store.clone(), seed, 300)))
        .collect();

    // Start watchers at arbitrary revisions while the writes happen.
    let mut rng = Rng(99);
    let mut watchers = Vec::new();
    for i in 0..24 {
        tokio::time::sleep(Duration::from_millis(rng.below(15))).await;
        let after = rng.below(store.current_revision() + 1);
        let prefix = ["", "w/", "w/a/", "w/b/", "w/c/1"][i % 5];
        watchers.push((prefix, after, store.watch(prefix, after).unwrap()));
    }

    let mut history: Vec<Event> = Vec::new();
    for w in writers {
        history.extend(w.await.unwrap());
    }
    history.sort_by_key(|e| e.revision);
    let revisions: Vec<Revision> = history.iter().map(|e| e.revision).collect();
    let expected_revisions: Vec<Revision> = (1..=store.current_revision()).collect();
    assert_eq!(revisions, expected_revisions, "history has every revision");

    for (prefix, after, mut w) in watchers {
        let want: Vec<&Event> = history
            .iter()
            .filter(|e| e.revision > after && e.key.starts_with(prefix))
            .collect();
        let got = collect(&mut w, want.len()).await;
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g, *w, "watch {prefix:?} after {after}");
        }
    }
}

#[tokio::test]
async fn watch_from_current_revision_sees_only_new_events() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for i in 0..10 {
        store.create(&format!("k{i}"), vec![i]).await.unwrap();
    }
    let mut w = store.watch("k", store.current_revision()).unwrap();
    let mut future = store.watch("k", 12).unwrap();
    store.update("k3", 4, b"new".to_vec()).await.unwrap();
    store.delete("k4", None).await.unwrap();
    store.create("k10", b"ten".to_vec()).await.unwrap();
    store.create("other", vec![]).await.unwrap();
    let got = collect(&mut w, 3).await;
    assert_eq!(
        got[0],
        Event {
            kind: EventType::Put,
            key: "k3".into(),
            value: b"new".to_vec(),
            prev_value: Some(vec![3]),
            revision: 11,
            create_revision: 4,
        }
    );
    assert_eq!(
        got[1],
        Event {
            kind: EventType::Delete,
            key: "k4".into(),
            value: vec![4],
            prev_value: Some(vec![4]),
            revision: 12,
            create_revision: 5,
        }
    );
    assert_eq!((got[2].revision, got[2].prev_value.clone()), (13, None));
    // A watch from a future revision waits for it.
    assert_eq!(collect(&mut future, 1).await[0].key, "k10");
}

#[tokio::test]
async fn compaction_expires_older_watches() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for i in 0..50 {
        store.create(&format!("k{i:02}"), vec![]).await.unwrap();
    }
    let mut early = store.watch("", 10).unwrap();
    store.compact(30).unwrap();
    assert_eq!(store.compacted_revision(), 30);
    assert_eq!(
        store.watch("", 29).err(),
        Some(StoreError::Compacted { compacted: 30 })
    );
    assert_eq!(
        store.watch("", 0).err(),
        Some(StoreError::Compacted { compacted: 30 })
    );
    // A watcher created before the compaction that still needs the log is expired too.
    assert!(matches!(
        early.next().await,
        Some(Err(StoreError::Compacted { compacted: 30 }))
    ));
    let mut ok = store.watch("", 30).unwrap();
    let got = collect(&mut ok, 20).await;
    assert_eq!(got[0].revision, 31);
    assert_eq!(got[19].revision, 50);
    // Compaction is monotone and bounded by the current revision.
    store.compact(20).unwrap();
    assert_eq!(store.compacted_revision(), 30);
    assert!(matches!(
        store.compact(51),
        Err(StoreError::FutureRevision { .. })
    ));
    store.compact(50).unwrap();
    let mut w = store.watch("", 50).unwrap();
    store.create("late", vec![]).await.unwrap();
    assert_eq!(collect(&mut w, 1).await[0].revision, 51);
}

#[tokio::test]
async fn restart_keeps_data_and_continues_revisions() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        for i in 0..20 {
            store.create(&format!("k{i:02}"), vec![i]).await.unwrap();
        }
        store.update("k05", 6, b"five".to_vec()).await.unwrap();
        store.delete("k06", None).await.unwrap();
        store.compact(5).unwrap();
        assert_eq!(store.current_revision(), 22);
    }
    let store = open(dir.path());
    assert_eq!(store.current_revision(), 22);
    assert_eq!(store.compacted_revision(), 5);
    assert_eq!(store.count("k").unwrap(), 19);
    let k05 = store.get("k05").unwrap().unwrap();
    assert_eq!(
        (k05.value.as_slice(), k05.create_revision, k05.mod_revision),
        (&b"five"[..], 6, 21)
    );
    assert_eq!(store.get("k06").unwrap(), None);
    let next = store.create("new", vec![]).await.unwrap();
    assert_eq!(next.mod_revision, 23);
    // The event log survived too.
    let mut w = store.watch("", 5).unwrap();
    let got = collect(&mut w, 18).await;
    assert_eq!(got[0].revision, 6);
    assert_eq!(got[16].kind, EventType::Delete);
    assert_eq!(got[17].key, "new");
    assert_eq!(
        store.watch("", 4).err(),
        Some(StoreError::Compacted { compacted: 5 })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn list_is_a_consistent_snapshot_under_concurrent_writes() {
    let dir = tempfile::tempdir().unwrap();
    let opts = StoreOptions {
        flush: false,
        ..StoreOptions::default()
    };
    let store = Store::open(dir.path(), opts).unwrap();
    let mut recorder = store.watch("", 0).unwrap();
    let writers: Vec<_> = (1..=3)
        .map(|seed| tokio::spawn(random_writes(store.clone(), seed, 1500)))
        .collect();
    let mut listings = Vec::new();
    while writers.iter().any(|w| !w.is_finished()) {
        listings.push(store.list("w/", None, 0).unwrap());
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    for w in writers {
        w.await.unwrap();
    }
    let history = collect(&mut recorder, store.current_revision() as usize).await;
    assert!(listings.len() > 3);
    for listing in listings {
        // Replay the history up to the listing's revision.
        let mut state: BTreeMap<&str, (&[u8], Revision)> = BTreeMap::new();
        for e in history
            .iter()
            .take_while(|e| e.revision <= listing.revision)
        {
            match e.kind {
                EventType::Put => state.insert(&e.key, (&e.value, e.revision)),
                EventType::Delete => state.remove(e.key.as_str()),
            };
        }
        let got: BTreeMap<&str, (&[u8], Revision)> = listing
            .items
            .iter()
            .map(|kv| (kv.key.as_str(), (kv.value.as_slice(), kv.mod_revision)))
            .collect();
        assert_eq!(got, state, "listing at revision {}", listing.revision);
    }
}

const CRASH_CHILD_ENV: &str = "MESO_STORE_CRASH_CHILD";
const CRASH_WRITES: usize = 20_000;

fn crash_value(i: usize) -> Vec<u8> {
    let mut v = format!("value-{i}-").into_bytes();
    v.resize(1024, b'x');
    v
}

/// The child: acknowledged writes, each printed as `ACK <i> <revision>` once it resolved.
fn crash_child(dir: &Path) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = open(dir);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for t in 0..8 {
            let (store, tx) = (store.clone(), tx.clone());
            tokio::spawn(async move {
                for i in (t..CRASH_WRITES).step_by(8) {
                    let kv = store
                        .create(&format!("crash/{i:05}"), crash_value(i))
                        .await
                        .unwrap();
                    tx.send((i, kv.mod_revision)).unwrap();
                }
            });
        }
        drop(tx);
        let mut out = std::io::stdout().lock();
        while let Some((i, rev)) = rx.recv().await {
            writeln!(out, "ACK {i} {rev}").unwrap();
            out.flush().unwrap();
        }
    });
}

/// Acknowledged writes survive `kill -9`. The test binary re-executes itself as the writer
/// (selected by an environment variable), which works under `cargo test` and `cargo nextest`.
#[test]
fn acknowledged_writes_survive_sigkill() {
    if let Some(dir) = std::env::var_os(CRASH_CHILD_ENV) {
        crash_child(Path::new(&dir));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "acknowledged_writes_survive_sigkill",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acked: Vec<(usize, Revision)> = Vec::new();
    let mut killed = false;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let Some(rest) = line.strip_prefix("ACK ") else {
            continue;
        };
        let (i, rev) = rest.split_once(' ').unwrap();
        acked.push((i.parse().unwrap(), rev.parse().unwrap()));
        if acked.len() == 500 && !killed {
            child.kill().unwrap(); // SIGKILL
            killed = true;
        }
        // Keep reading: lines printed before the kill are acknowledged writes too.
    }
    let status = child.wait().unwrap();
    assert!(
        killed && !status.success(),
        "child was not killed mid-way: {status}"
    );
    assert!(acked.len() < CRASH_WRITES);

    let store = open(dir.path());
    for &(i, rev) in &acked {
        let kv = store
            .get(&format!("crash/{i:05}"))
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged write {i} (revision {rev}) lost"));
        assert_eq!(kv.value, crash_value(i));
        assert_eq!(kv.mod_revision, rev);
    }
    let max_acked = acked.iter().map(|&(_, rev)| rev).max().unwrap();
    assert!(store.current_revision() >= max_acked);
    // Revisions continue after the crash, and the log is contiguous up to them.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let next = store.create("after-crash", vec![]).await.unwrap();
        assert_eq!(next.mod_revision, store.current_revision());
        assert!(next.mod_revision > max_acked);
        let mut w = store.watch("", 0).unwrap();
        let all = collect(&mut w, next.mod_revision as usize).await;
        assert!(all
            .iter()
            .enumerate()
            .all(|(n, e)| e.revision == n as u64 + 1));
    });
    eprintln!(
        "crash test: {} writes acknowledged before SIGKILL, {} recovered",
        acked.len(),
        store.current_revision() - 1
    );
}
