//! The store: writes with group commit, consistent reads, compaction.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::broadcast;

use crate::codec::{self, log_key, META_COMPACTED, META_REV};
use crate::watch::Watcher;
use crate::{Event, EventType, KeyValue, ListResult, Result, Revision, StoreError, StoreOptions};

/// Optimistic attempts of a lock-free consistent `list` before it takes the writer lock.
const LIST_ATTEMPTS: usize = 3;
/// Event-log entries removed per atomic batch during compaction.
const COMPACT_BATCH: usize = 1024;
/// How many of the newest event-log entries [`repair_tail`] checks at open.
const REPAIR_TAIL: usize = 1024;

/// A revisioned key-value store with watch, backed by sled.
///
/// Cheap to clone (an `Arc`); all clones share one database. The database is closed when the last
/// clone is dropped (or at [`Store::close`]); watchers then end with `None`.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("current_revision", &self.current_revision())
            .field("compacted_revision", &self.compacted_revision())
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub(crate) db: sled::Db,
    opts: StoreOptions,
    /// Serialises writes: a write reads, checks, commits and publishes under this lock.
    writer: Mutex<Writer>,
    /// Last committed revision (bumped once the commit's writes are applied).
    current: AtomicU64,
    /// Odd while a commit is applying its writes: lock-free listings scan between two equal
    /// even readings (a sequence lock).
    commit_seq: AtomicU64,
    /// Last revision known durable on disk.
    durable: AtomicU64,
    pub(crate) compacted: AtomicU64,
    /// Flushes performed for writers (group commit makes this smaller than the writes).
    flushes: AtomicU64,
    /// Held by the one writer that flushes; the others queue and usually find their write
    /// already covered by the flush they waited for.
    flush_lock: tokio::sync::Mutex<()>,
    compaction_lock: Mutex<()>,
    compactor_started: AtomicBool,
    /// [`Store::list_cached`]'s listings by prefix; a write drops those its key is under.
    /// Locked after `writer` when both are held.
    list_cache: Mutex<HashMap<String, Arc<Vec<KeyValue>>>>,
}

/// At most this many prefixes are cached by [`Store::list_cached`] (then the cache restarts).
const LIST_CACHE_ENTRIES: usize = 512;

struct Writer {
    rev: Revision,
    /// Commit timestamp of the last write (ms since the epoch); keeps log timestamps monotone.
    last_ts: u64,
    /// The live event feed; `None` once closed.
    events: Option<broadcast::Sender<Arc<Event>>>,
}

enum Op {
    Create(Vec<u8>),
    Update(Revision, Vec<u8>),
    Delete(Option<Revision>),
}

/// Locks a std mutex, recovering from poisoning (the guarded state is only changed after the
/// fallible work succeeded, so it is consistent even if a holder panicked).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn read_u64(db: &sled::Db, key: &[u8]) -> Result<u64> {
    db.get(key)?.map_or(Ok(0), |v| codec::decode_u64(&v))
}

impl Store {
    /// Opens (or creates) the store at `path`.
    ///
    /// The revision sequence continues where it stopped. If called inside a tokio runtime the
    /// background compactor is started here; otherwise call [`Store::start_compactor`] later
    /// from within a runtime.
    pub fn open(path: &Path, opts: StoreOptions) -> Result<Store> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(opts.cache_capacity)
            .open()?;
        let compacted = read_u64(&db, META_COMPACTED)?;
        // Stores written before writes stopped using batches kept the revision in META_REV.
        let rev = repair_tail(&db)?
            .max(read_u64(&db, META_REV)?)
            .max(compacted);
        let last_ts = match db.range(log_key(0)..log_key(u64::MAX)).next_back() {
            Some(entry) => codec::event_timestamp(&entry?.1)?,
            None => 0,
        };
        let (events, _) = broadcast::channel(opts.watch_buffer.clamp(16, 1 << 22));
        let store = Store {
            inner: Arc::new(Inner {
                db,
                opts,
                writer: Mutex::new(Writer {
                    rev,
                    last_ts,
                    events: Some(events),
                }),
                current: AtomicU64::new(rev),
                commit_seq: AtomicU64::new(0),
                durable: AtomicU64::new(rev),
                compacted: AtomicU64::new(compacted),
                flushes: AtomicU64::new(0),
                flush_lock: tokio::sync::Mutex::new(()),
                compaction_lock: Mutex::new(()),
                compactor_started: AtomicBool::new(false),
                list_cache: Mutex::new(HashMap::new()),
            }),
        };
        // Finish a compaction interrupted by a crash (no-op when there is nothing left).
        store.remove_log_range(1, compacted)?;
        tracing::info!(path = %path.display(), revision = rev, compacted, "store opened");
        store.start_compactor();
        Ok(store)
    }

    /// How many group-commit flushes made writes durable so far.
    pub fn flush_count(&self) -> u64 {
        self.inner.flushes.load(Ordering::Relaxed)
    }

    /// The revision of the last committed write.
    pub fn current_revision(&self) -> Revision {
        self.inner.current_revision()
    }

    /// The revision up to which the event log was compacted; watches must start at or after it.
    pub fn compacted_revision(&self) -> Revision {
        self.inner.compacted.load(Ordering::Acquire)
    }

    /// Reads one key.
    pub fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        match self.inner.db.get(codec::kv_key(key))? {
            Some(raw) => Ok(Some(codec::decode_kv(key.to_owned(), &raw)?)),
            None => Ok(None),
        }
    }

    /// Lists the keys starting with `prefix`, in key order, from `from_key` (inclusive; for
    /// continue tokens) and at most `limit` of them (0 = unlimited).
    ///
    /// The items are a consistent snapshot as of the returned `revision`; `more` says that keys
    /// after the last item remain.
    pub fn list(&self, prefix: &str, from_key: Option<&str>, limit: usize) -> Result<ListResult> {
        // Optimistic: scan without blocking writers, and accept the scan if no commit applied
        // writes meanwhile (the commit sequence is even and unchanged).
        let inner = &*self.inner;
        for _ in 0..LIST_ATTEMPTS {
            let seq = inner.commit_seq.load(Ordering::SeqCst);
            if seq % 2 == 1 {
                std::thread::yield_now();
                continue;
            }
            let revision = inner.current.load(Ordering::SeqCst);
            let (items, more) = self.scan(prefix, from_key, limit)?;
            if inner.commit_seq.load(Ordering::SeqCst) == seq {
                return Ok(ListResult {
                    items,
                    revision,
                    more,
                });
            }
        }
        // Writes keep racing the scan: hold them off for one scan.
        let writer = lock(&self.inner.writer);
        let (items, more) = self.scan(prefix, from_key, limit)?;
        Ok(ListResult {
            items,
            revision: writer.rev,
            more,
        })
    }

    fn scan(
        &self,
        prefix: &str,
        from_key: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<KeyValue>, bool)> {
        let start = match from_key {
            Some(from) if from > prefix => from,
            _ => prefix,
        };
        let raw_prefix = codec::kv_key(prefix);
        let mut items = Vec::new();
        for entry in self.inner.db.range(codec::kv_key(start)..) {
            let (k, v) = entry?;
            if !k.starts_with(&raw_prefix) {
                break;
            }
            if limit > 0 && items.len() == limit {
                return Ok((items, true));
            }
            items.push(codec::decode_kv(codec::user_key(&k)?, &v)?);
        }
        Ok((items, false))
    }

    /// Every key under `prefix`, like an unpaged [`Store::list`], served from memory until a
    /// write under `prefix`. For small collections read on every write of other kinds (a
    /// namespace's quotas and limit ranges, the priority classes), whose scan would otherwise
    /// cost more than the write's own work.
    pub fn list_cached(&self, prefix: &str) -> Result<Arc<Vec<KeyValue>>> {
        if let Some(items) = lock(&self.inner.list_cache).get(prefix) {
            return Ok(items.clone());
        }
        // Under the writer lock, so that no write under `prefix` commits between the scan and
        // the caching (writes drop cached listings while holding it).
        let _writer = lock(&self.inner.writer);
        let (items, _) = self.scan(prefix, None, 0)?;
        let items = Arc::new(items);
        let mut cache = lock(&self.inner.list_cache);
        if cache.len() >= LIST_CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(prefix.to_owned(), items.clone());
        Ok(items)
    }

    /// Number of keys under `prefix` that sort after `after` (for `remainingItemCount`).
    pub fn count_after(&self, prefix: &str, after: &str) -> Result<usize> {
        let start = codec::kv_key(after);
        let mut n = 0;
        let range = (
            std::ops::Bound::Excluded(start),
            std::ops::Bound::Unbounded::<Vec<u8>>,
        );
        let prefix_key = codec::kv_key(prefix);
        for k in self.inner.db.range(range).keys() {
            let k = k?;
            if !k.starts_with(&prefix_key) {
                break;
            }
            n += 1;
        }
        Ok(n)
    }

    /// Counts the keys starting with `prefix`.
    pub fn count(&self, prefix: &str) -> Result<usize> {
        let mut n = 0;
        for k in self.inner.db.scan_prefix(codec::kv_key(prefix)).keys() {
            k?;
            n += 1;
        }
        Ok(n)
    }

    /// Creates `key`; fails with [`StoreError::AlreadyExists`] if it exists.
    /// Resolves once the write is durable.
    pub async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue> {
        self.write(key, Op::Create(value)).await
    }

    /// Replaces the value of `key` if its `mod_revision` equals `expected` (compare-and-swap);
    /// [`StoreError::Conflict`] otherwise, [`StoreError::NotFound`] if absent.
    /// Resolves once the write is durable.
    pub async fn update(&self, key: &str, expected: Revision, value: Vec<u8>) -> Result<KeyValue> {
        self.write(key, Op::Update(expected, value)).await
    }

    /// Deletes `key`, if `expected` is given only when its `mod_revision` equals it.
    /// Returns the deleted key-value with `mod_revision` set to the delete's revision.
    /// Resolves once the write is durable.
    pub async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue> {
        self.write(key, Op::Delete(expected)).await
    }

    async fn write(&self, key: &str, op: Op) -> Result<KeyValue> {
        let kv = self.commit(key, op)?;
        if self.inner.opts.flush {
            self.wait_durable(kv.mod_revision).await?;
        }
        Ok(kv)
    }

    /// Checks, commits atomically and publishes one write. Synchronous and short: the writer
    /// lock is never held across an await.
    fn commit(&self, key: &str, op: Op) -> Result<KeyValue> {
        let inner = &*self.inner;
        let mut w = lock(&inner.writer);
        if w.events.is_none() {
            return Err(StoreError::Closed);
        }
        let raw_key = codec::kv_key(key);
        let existing = match inner.db.get(&raw_key)? {
            Some(raw) => Some(codec::decode_kv(key.to_owned(), &raw)?),
            None => None,
        };
        let rev = w.rev + 1;
        {
            let mut cache = lock(&inner.list_cache);
            if !cache.is_empty() {
                cache.retain(|prefix, _| !key.starts_with(prefix.as_str()));
            }
        }
        // The value to write under the key (None: remove it).
        let stored: Option<Vec<u8>>;
        let (event, result) = match op {
            Op::Create(value) => {
                if existing.is_some() {
                    return Err(StoreError::AlreadyExists);
                }
                stored = Some(codec::encode_kv(rev, rev, &value));
                put_event(key, value, None, rev, rev)
            }
            Op::Update(expected, value) => {
                let cur = existing.ok_or(StoreError::NotFound)?;
                if cur.mod_revision != expected {
                    return Err(StoreError::Conflict { current: Some(cur) });
                }
                stored = Some(codec::encode_kv(cur.create_revision, rev, &value));
                put_event(key, value, Some(cur.value), rev, cur.create_revision)
            }
            Op::Delete(expected) => {
                let cur = existing.ok_or(StoreError::NotFound)?;
                if expected.is_some_and(|e| e != cur.mod_revision) {
                    return Err(StoreError::Conflict { current: Some(cur) });
                }
                stored = None;
                let event = Event {
                    kind: EventType::Delete,
                    key: key.to_owned(),
                    value: cur.value.clone(),
                    prev_value: Some(cur.value.clone()),
                    revision: rev,
                    create_revision: cur.create_revision,
                };
                let kv = KeyValue {
                    key: key.to_owned(),
                    value: cur.value,
                    create_revision: cur.create_revision,
                    mod_revision: rev,
                };
                (event, kv)
            }
        };
        let ts = now_ms().max(w.last_ts);
        let logged = codec::encode_event(&event, ts)?;
        // Two plain writes, the event-log entry first, rather than one sled batch: a batch
        // makes sled write out (and sync) its log buffer twice, which cost more than all the
        // rest of a write. A crash between the two leaves a logged write whose key-value
        // write is missing; `repair_tail` applies it at the next open, so a write still
        // commits whole or not at all. Readers never see half of one: the writer lock keeps
        // writers out, `current` (so watches reading the log) moves only after both, and
        // listings check the commit sequence.
        inner.commit_seq.fetch_add(1, Ordering::SeqCst);
        let applied = apply_logged(&inner.db, rev, logged, &raw_key, stored);
        if applied.is_ok() {
            inner.current.store(rev, Ordering::SeqCst);
        }
        inner.commit_seq.fetch_add(1, Ordering::SeqCst);
        applied?;
        w.rev = rev;
        w.last_ts = ts;
        if let Some(events) = &w.events {
            // An error only means that nobody is watching right now.
            let _ = events.send(Arc::new(event));
        }
        Ok(result)
    }

    /// Group commit: returns once `rev` is durable. One caller at a time flushes everything
    /// committed so far; callers queued behind it usually find their revision already covered.
    async fn wait_durable(&self, rev: Revision) -> Result<()> {
        let inner = &*self.inner;
        if inner.durable.load(Ordering::Acquire) >= rev {
            return Ok(());
        }
        let _flushing = inner.flush_lock.lock().await;
        if inner.durable.load(Ordering::Acquire) >= rev {
            return Ok(());
        }
        self.flush_locked().await
    }

    /// Flushes everything committed so far. Caller holds `flush_lock`.
    async fn flush_locked(&self) -> Result<()> {
        let inner = &*self.inner;
        // Read before the flush starts: every write up to `target` was applied already.
        let target = inner.current.load(Ordering::Acquire);
        inner.db.flush_async().await?;
        inner.durable.fetch_max(target, Ordering::AcqRel);
        inner.flushes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Makes every write committed so far durable (also when `StoreOptions::flush` is off).
    pub async fn flush(&self) -> Result<()> {
        let _flushing = self.inner.flush_lock.lock().await;
        self.flush_locked().await
    }

    /// Watches the keys starting with `prefix`: yields every event with a revision greater than
    /// `after`, in revision order, each exactly once.
    ///
    /// Fails with [`StoreError::Compacted`] if `after` is older than the compacted revision
    /// (`after == compacted_revision()` is fine). `after` may be ahead of the current revision;
    /// the watcher then waits for it.
    pub fn watch(&self, prefix: &str, after: Revision) -> Result<Watcher> {
        let (rx, current) = {
            let w = lock(&self.inner.writer);
            let events = w.events.as_ref().ok_or(StoreError::Closed)?;
            // Subscribed under the writer lock: the feed carries exactly the revisions > current.
            (events.subscribe(), w.rev)
        };
        let compacted = self.compacted_revision();
        if after < compacted {
            return Err(StoreError::Compacted { compacted });
        }
        Ok(Watcher::new(
            Arc::downgrade(&self.inner),
            prefix.to_owned(),
            after,
            rx,
            after >= current,
        ))
    }

    /// Compacts the event log: removes the events with revisions `<= rev`. Watches from before
    /// `rev` then fail with [`StoreError::Compacted`]. A `rev` at or below the compacted revision
    /// is a no-op; one above the current revision is [`StoreError::FutureRevision`].
    ///
    /// Blocking (disk I/O); from async code call it through `spawn_blocking`.
    pub fn compact(&self, rev: Revision) -> Result<()> {
        let inner = &*self.inner;
        let _compacting = lock(&inner.compaction_lock);
        let current = self.current_revision();
        if rev > current {
            return Err(StoreError::FutureRevision {
                requested: rev,
                current,
            });
        }
        let old = self.compacted_revision();
        if rev <= old {
            return Ok(());
        }
        // The new compacted revision is recorded in the same atomic batch as the first removals,
        // so nobody sees a hole in the log without seeing why. The rest is removed afterwards
        // (and again at open, should a crash interrupt this).
        let mut batch = sled::Batch::default();
        batch.insert(META_COMPACTED, rev.to_be_bytes().to_vec());
        inner.db.apply_batch(batch)?;
        inner.compacted.store(rev, Ordering::Release);
        let removed = self.remove_log_range(old + 1, rev)?;
        tracing::info!(compacted = rev, removed, "event log compacted");
        Ok(())
    }

    /// Removes the event-log entries in `from..=to`; returns how many.
    fn remove_log_range(&self, from: Revision, to: Revision) -> Result<usize> {
        if from > to {
            return Ok(0);
        }
        let mut removed = 0;
        loop {
            let mut batch = sled::Batch::default();
            let mut n = 0;
            for k in self
                .inner
                .db
                .range(log_key(from)..=log_key(to))
                .keys()
                .take(COMPACT_BATCH)
            {
                batch.remove(k?);
                n += 1;
            }
            if n == 0 {
                return Ok(removed);
            }
            self.inner.db.apply_batch(batch)?;
            removed += n;
        }
    }

    /// The revision the compaction policy allows compacting to now: the older of "the last
    /// `compaction_min_revisions` revisions" and "the events of the last `compaction_window`",
    /// so that whichever retains more events wins.
    pub fn compaction_target(&self) -> Result<Revision> {
        let opts = &self.inner.opts;
        let current = self.current_revision();
        let compacted = self.compacted_revision();
        let by_count = current.saturating_sub(opts.compaction_min_revisions);
        if by_count <= compacted {
            return Ok(compacted);
        }
        let window = u64::try_from(opts.compaction_window.as_millis()).unwrap_or(u64::MAX);
        let cutoff = now_ms().saturating_sub(window);
        // Log timestamps are monotone: binary-search the last revision committed at or before
        // the cutoff, within (compacted, by_count].
        let (mut lo, mut hi) = (compacted, by_count);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            let ts = match self.inner.db.get(log_key(mid))? {
                Some(raw) => codec::event_timestamp(&raw)?,
                None => 0, // compacted concurrently: old
            };
            if ts <= cutoff {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        Ok(lo)
    }

    /// Compacts as far as the policy of [`StoreOptions`] allows. Blocking.
    pub fn compact_by_policy(&self) -> Result<Revision> {
        let target = self.compaction_target()?;
        self.compact(target)?;
        Ok(self.compacted_revision())
    }

    /// Starts the background compactor (every `StoreOptions::compaction_interval`) on the current
    /// tokio runtime. [`Store::open`] calls this itself when it runs inside a runtime; call it
    /// again from within a runtime if the store was opened outside one. Returns whether a
    /// compactor is running (false when there is no runtime). Idempotent.
    pub fn start_compactor(&self) -> bool {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return false;
        };
        if self.inner.compactor_started.swap(true, Ordering::AcqRel) {
            return true;
        }
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let period = self
            .inner
            .opts
            .compaction_interval
            .max(Duration::from_millis(10));
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let store = match weak.upgrade() {
                    Some(inner) if !inner.is_closed() => Store { inner },
                    _ => break,
                };
                match tokio::task::spawn_blocking(move || store.compact_by_policy()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "background compaction failed"),
                    Err(e) => tracing::warn!(error = %e, "background compaction panicked"),
                }
            }
            tracing::debug!("compactor stopped");
        });
        true
    }

    /// Closes the store: later writes and watches fail with [`StoreError::Closed`], and
    /// watchers end (with `None`) after the events committed before the close. Reads keep
    /// working until the last clone is dropped.
    pub fn close(&self) {
        lock(&self.inner.writer).events = None;
    }
}

impl Inner {
    /// The last revision whose writes are all applied.
    pub(crate) fn current_revision(&self) -> Revision {
        self.current.load(Ordering::SeqCst)
    }

    fn is_closed(&self) -> bool {
        lock(&self.writer).events.is_none()
    }
}

/// Writes a commit: its event-log entry, then its key-value entry. If the second write fails
/// the first is taken back (best effort: should that fail too, the next open applies it).
fn apply_logged(
    db: &sled::Db,
    rev: Revision,
    logged: Vec<u8>,
    raw_key: &[u8],
    stored: Option<Vec<u8>>,
) -> Result<()> {
    db.insert(log_key(rev), logged)?;
    let written = match stored {
        Some(v) => db.insert(raw_key, v).map(|_| ()),
        None => db.remove(raw_key).map(|_| ()),
    };
    if let Err(e) = written {
        let _ = db.remove(log_key(rev));
        return Err(e.into());
    }
    Ok(())
}

/// Completes the newest logged writes whose key-value write a crash cut off (see
/// `Store::commit`), oldest first, and returns the newest logged revision (0 if none).
fn repair_tail(db: &sled::Db) -> Result<Revision> {
    let mut tail = Vec::new();
    for entry in db
        .range(log_key(0)..=log_key(u64::MAX))
        .rev()
        .take(REPAIR_TAIL)
    {
        let (k, v) = entry?;
        tail.push((codec::log_revision(&k)?, v));
    }
    let newest = tail.first().map_or(0, |(rev, _)| *rev);
    let mut repaired = false;
    for (rev, raw) in tail.into_iter().rev() {
        let ev = codec::decode_event(rev, &raw)?;
        let raw_key = codec::kv_key(&ev.key);
        let stored = match db.get(&raw_key)? {
            Some(raw) => Some(codec::decode_kv(ev.key.clone(), &raw)?.mod_revision),
            None => None,
        };
        match ev.kind {
            EventType::Put if stored.is_none_or(|m| m < rev) => {
                tracing::warn!(key = %ev.key, revision = rev, "completing a write cut off by a crash");
                db.insert(
                    raw_key,
                    codec::encode_kv(ev.create_revision, rev, &ev.value),
                )?;
                repaired = true;
            }
            EventType::Delete if stored.is_some_and(|m| m < rev) => {
                tracing::warn!(key = %ev.key, revision = rev, "completing a delete cut off by a crash");
                db.remove(raw_key)?;
                repaired = true;
            }
            _ => {}
        }
    }
    if repaired {
        db.flush()?;
    }
    Ok(newest)
}

fn put_event(
    key: &str,
    value: Vec<u8>,
    prev_value: Option<Vec<u8>>,
    rev: Revision,
    create_revision: Revision,
) -> (Event, KeyValue) {
    let kv = KeyValue {
        key: key.to_owned(),
        value: value.clone(),
        create_revision,
        mod_revision: rev,
    };
    let event = Event {
        kind: EventType::Put,
        key: key.to_owned(),
        value,
        prev_value,
        revision: rev,
        create_revision,
    };
    (event, kv)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> StoreOptions {
        StoreOptions {
            flush: false,
            ..StoreOptions::default()
        }
    }

    #[tokio::test]
    async fn revisions_and_conflicts() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), opts()).unwrap();
        assert_eq!(s.current_revision(), 0);
        let a = s.create("a", b"1".to_vec()).await.unwrap();
        assert_eq!((a.create_revision, a.mod_revision), (1, 1));
        let a2 = s.update("a", 1, b"2".to_vec()).await.unwrap();
        assert_eq!((a2.create_revision, a2.mod_revision), (1, 2));
        match s.update("a", 1, b"3".to_vec()).await {
            Err(StoreError::Conflict { current: Some(cur) }) => assert_eq!(cur, a2),
            other => panic!("unexpected {other:?}"),
        }
        // A failed write consumes no revision.
        assert_eq!(s.current_revision(), 2);
        let d = s.delete("a", Some(2)).await.unwrap();
        assert_eq!((d.mod_revision, d.value.as_slice()), (3, &b"2"[..]));
        assert_eq!(s.get("a").unwrap(), None);
    }

    #[tokio::test]
    async fn cached_listings_follow_writes() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), opts()).unwrap();
        let keys = |s: &Store| -> Vec<(String, Revision)> {
            let items = s.list_cached("/q/ns/").unwrap();
            items
                .iter()
                .map(|kv| (kv.key.clone(), kv.mod_revision))
                .collect()
        };
        assert!(keys(&s).is_empty());
        s.create("/q/ns/a", b"1".to_vec()).await.unwrap();
        s.create("/q/other/b", b"1".to_vec()).await.unwrap();
        assert_eq!(keys(&s), vec![("/q/ns/a".to_string(), 1)]);
        // Served from memory now; a write elsewhere leaves it, one under the prefix drops it.
        assert!(Arc::ptr_eq(
            &s.list_cached("/q/ns/").unwrap(),
            &s.list_cached("/q/ns/").unwrap()
        ));
        s.create("/q/nsx", b"1".to_vec()).await.unwrap();
        assert_eq!(keys(&s), vec![("/q/ns/a".to_string(), 1)]);
        s.update("/q/ns/a", 1, b"2".to_vec()).await.unwrap();
        assert_eq!(keys(&s), vec![("/q/ns/a".to_string(), 4)]);
        s.create("/q/ns/c", b"1".to_vec()).await.unwrap();
        assert_eq!(keys(&s).len(), 2);
        s.delete("/q/ns/a", None).await.unwrap();
        assert_eq!(keys(&s), vec![("/q/ns/c".to_string(), 5)]);
        assert_eq!(
            s.list_cached("/q/ns/").unwrap().as_slice(),
            s.list("/q/ns/", None, 0).unwrap().items.as_slice()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writers_share_flushes() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let tasks: Vec<_> = (0..16)
            .map(|t| {
                let s = s.clone();
                tokio::spawn(async move {
                    for i in 0..50 {
                        let kv = s.create(&format!("{t}/{i}"), vec![0; 256]).await.unwrap();
                        // Acknowledged means flushed.
                        assert!(s.inner.durable.load(Ordering::Acquire) >= kv.mod_revision);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let flushes = s.inner.flushes.load(Ordering::Relaxed);
        assert!(
            flushes > 0 && flushes < 800,
            "{flushes} flushes for 800 writes"
        );
    }

    /// A crash between a commit's two writes (the log entry is on disk, the key-value entry
    /// is not): the next open completes the write, so it is whole, and revisions continue.
    #[tokio::test]
    async fn open_completes_writes_cut_off_after_their_log_entry() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), opts()).unwrap();
        s.create("a", b"1".to_vec()).await.unwrap();
        s.create("b", b"2".to_vec()).await.unwrap();
        s.update("a", 1, b"3".to_vec()).await.unwrap();
        // Log the next writes only, as a crash right after `apply_logged`'s first write would.
        let cut_off = [
            put_event("a", b"4".to_vec(), Some(b"3".to_vec()), 4, 1).0,
            put_event("c", b"5".to_vec(), None, 5, 5).0,
            Event {
                kind: EventType::Delete,
                key: "b".into(),
                value: b"2".to_vec(),
                prev_value: Some(b"2".to_vec()),
                revision: 6,
                create_revision: 2,
            },
        ];
        for ev in &cut_off {
            let raw = codec::encode_event(ev, now_ms()).unwrap();
            s.inner.db.insert(log_key(ev.revision), raw).unwrap();
        }
        s.inner.db.flush().unwrap();
        assert_eq!(s.get("a").unwrap().unwrap().value, b"3");
        s.close();
        drop(s);

        // sled releases its file lock once its own threads let go of the database.
        let mut reopened = Store::open(dir.path(), opts());
        for _ in 0..500 {
            if reopened.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            reopened = Store::open(dir.path(), opts());
        }
        let s = reopened.unwrap();
        assert_eq!(s.current_revision(), 6);
        let a = s.get("a").unwrap().unwrap();
        assert_eq!(
            (a.value.as_slice(), a.create_revision, a.mod_revision),
            (&b"4"[..], 1, 4)
        );
        let c = s.get("c").unwrap().unwrap();
        assert_eq!((c.create_revision, c.mod_revision), (5, 5));
        assert!(s.get("b").unwrap().is_none());
        // Completed writes are not applied twice, and the sequence continues.
        assert_eq!(
            s.update("a", 4, b"7".to_vec()).await.unwrap().mod_revision,
            7
        );
        let listed = s.list("", None, 0).unwrap();
        assert_eq!(listed.revision, 7);
        assert_eq!(listed.items.len(), 2);
    }

    #[tokio::test]
    async fn compaction_policy_keeps_the_larger_window() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = opts();
        o.compaction_min_revisions = 10;
        let s = Store::open(dir.path(), o.clone()).unwrap();
        for i in 0..50 {
            s.create(&format!("k{i}"), vec![]).await.unwrap();
        }
        // Everything is younger than 5 minutes: the time window keeps all.
        assert_eq!(s.compaction_target().unwrap(), 0);
        drop(s);
        o.compaction_window = Duration::ZERO;
        let s = Store::open(dir.path(), o).unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        // Window 0: only the revision count keeps events.
        assert_eq!(s.compaction_target().unwrap(), 40);
        assert_eq!(s.compact_by_policy().unwrap(), 40);
        assert_eq!(s.compaction_target().unwrap(), 40);
        assert!(matches!(
            s.compact(51),
            Err(StoreError::FutureRevision {
                requested: 51,
                current: 50
            })
        ));
    }

    #[tokio::test]
    async fn time_window_binary_search() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = opts();
        o.compaction_min_revisions = 0;
        o.compaction_window = Duration::from_millis(300);
        let s = Store::open(dir.path(), o).unwrap();
        for i in 0..20 {
            s.create(&format!("old{i}"), vec![]).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(600)).await;
        for i in 0..20 {
            s.create(&format!("new{i}"), vec![]).await.unwrap();
        }
        // The 20 old events are outside the window, the 20 new ones inside.
        assert_eq!(s.compaction_target().unwrap(), 20);
    }

    #[tokio::test]
    async fn background_compactor_runs() {
        let dir = tempfile::tempdir().unwrap();
        let o = StoreOptions {
            compaction_window: Duration::ZERO,
            compaction_min_revisions: 5,
            compaction_interval: Duration::from_millis(20),
            ..opts()
        };
        let s = Store::open(dir.path(), o).unwrap();
        for i in 0..30 {
            s.create(&format!("k{i}"), vec![]).await.unwrap();
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while s.compacted_revision() < 25 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "compactor did not run"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(s.compacted_revision(), 25);
        // The log really lost the entries.
        assert!(s.inner.db.get(log_key(25)).unwrap().is_none());
        assert!(s.inner.db.get(log_key(26)).unwrap().is_some());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn list_falls_back_under_write_pressure() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), opts()).unwrap();
        for i in 0..200 {
            s.create(&format!("p/{i:03}"), vec![0; 64]).await.unwrap();
        }
        let writer = {
            let s = s.clone();
            tokio::spawn(async move {
                for i in 0..2000 {
                    s.create(&format!("q/{i}"), vec![]).await.unwrap();
                    tokio::task::yield_now().await;
                }
            })
        };
        for _ in 0..50 {
            let l = s.list("p/", None, 0).unwrap();
            assert_eq!(l.items.len(), 200);
            assert!(l.revision >= 200);
            tokio::task::yield_now().await;
        }
        writer.await.unwrap();
    }
}
