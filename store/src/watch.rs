//! Watchers: the live in-memory feed, with catch-up from the persisted event log.
//!
//! Every committed event is published once, as an `Arc<Event>`, to a `tokio::sync::broadcast`
//! channel. A watcher is in one of two modes:
//! * **log**: it reads the persisted event log (sled, keyed by big-endian revision) in chunks
//!   from the revision after the last one it examined, until the log has nothing newer;
//! * **live**: it reads the broadcast feed.
//!
//! Its broadcast receiver always exists before the log is read (at `watch`, or re-subscribed when
//! the watcher lagged behind the in-memory window), and every event is in the log before it is
//! published. So once the log is exhausted, everything newer is in the feed; events the log
//! already delivered are skipped by revision. Revisions are contiguous (one per write), which
//! lets the watcher detect holes: a hole in the log means it was compacted; a hole in the feed
//! sends the watcher back to the log.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use tokio::sync::broadcast::{self, error::RecvError};

use crate::codec::{self, log_key};
use crate::store::Inner;
use crate::{Event, Result, Revision, StoreError};

/// Event-log entries read per step of a catch-up.
const LOG_CHUNK: usize = 256;

/// A stream of the events under one key prefix; see [`crate::Store::watch`].
pub struct Watcher {
    store: Weak<Inner>,
    prefix: String,
    /// Highest revision examined (delivered, queued in `pending`, or filtered out).
    seen: Revision,
    rx: broadcast::Receiver<Arc<Event>>,
    live: bool,
    pending: VecDeque<Arc<Event>>,
    done: bool,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("prefix", &self.prefix)
            .field("revision", &self.revision())
            .field("live", &self.live)
            .finish_non_exhaustive()
    }
}

impl Watcher {
    pub(crate) fn new(
        store: Weak<Inner>,
        prefix: String,
        after: Revision,
        rx: broadcast::Receiver<Arc<Event>>,
        live: bool,
    ) -> Watcher {
        Watcher {
            store,
            prefix,
            seen: after,
            rx,
            live,
            pending: VecDeque::new(),
            done: false,
        }
    }

    /// The next event. `None` once the store is closed (after the events committed before the
    /// close); `Err(Compacted)` if the watcher fell so far behind that its next event was
    /// compacted away (the watcher then ends). Cancel-safe.
    pub async fn next(&mut self) -> Option<Result<Event>> {
        Some(self.next_shared().await?.map(Arc::unwrap_or_clone))
    }

    /// Like [`Watcher::next`], but shares the event with the other watchers instead of cloning it.
    pub async fn next_shared(&mut self) -> Option<Result<Arc<Event>>> {
        loop {
            if let Some(ev) = self.pending.pop_front() {
                return Some(Ok(ev));
            }
            if self.done {
                return None;
            }
            if !self.live {
                if let Err(e) = self.read_log() {
                    self.done = true;
                    return Some(Err(e));
                }
                if self.pending.is_empty() && !self.live {
                    // A long catch-up of non-matching events: let other tasks run.
                    tokio::task::yield_now().await;
                }
                continue;
            }
            match self.rx.recv().await {
                Ok(ev) if ev.revision <= self.seen => {}
                Ok(ev) if Some(ev.revision) == self.seen.checked_add(1) => {
                    self.seen = ev.revision;
                    if ev.key.starts_with(&self.prefix) {
                        return Some(Ok(ev));
                    }
                }
                Ok(ev) => {
                    tracing::warn!(seen = self.seen, got = ev.revision, "hole in the live feed");
                    self.live = false;
                }
                Err(RecvError::Lagged(skipped)) => {
                    tracing::debug!(skipped, seen = self.seen, "watcher lagged; reading the log");
                    self.rx = self.rx.resubscribe();
                    self.live = false;
                }
                Err(RecvError::Closed) => self.done = true,
            }
        }
    }

    /// The revision this watcher has delivered everything up to: every matching event with a
    /// revision at or below it was returned already (useful for bookmarks).
    pub fn revision(&self) -> Revision {
        self.pending
            .front()
            .map_or(self.seen, |ev| ev.revision.saturating_sub(1))
    }

    /// Reads one chunk of the event log after `seen`; switches to live when there is nothing
    /// newer in the log.
    fn read_log(&mut self) -> Result<()> {
        let Some(inner) = self.store.upgrade() else {
            self.done = true;
            return Ok(());
        };
        let Some(from) = self.seen.checked_add(1) else {
            self.live = true;
            return Ok(());
        };
        let mut expected = from;
        // Up to the published revision: the entry of a commit still applying its writes is
        // delivered once it is published.
        let published = inner.current_revision();
        if from > published {
            self.live = true;
            return Ok(());
        }
        for entry in inner
            .db
            .range(log_key(from)..=log_key(published))
            .take(LOG_CHUNK)
        {
            let (k, v) = entry?;
            let rev = codec::log_revision(&k)?;
            if rev != expected {
                return Err(hole(&inner, expected));
            }
            let ev = codec::decode_event(rev, &v)?;
            self.seen = rev;
            expected = rev.saturating_add(1);
            if ev.key.starts_with(&self.prefix) {
                self.pending.push_back(Arc::new(ev));
            }
        }
        if expected == from {
            // Nothing newer in the log: caught up, unless what we need was compacted away.
            let compacted = inner.compacted.load(Ordering::Acquire);
            if compacted >= from {
                return Err(StoreError::Compacted { compacted });
            }
            self.live = true;
        }
        Ok(())
    }
}

fn hole(inner: &Inner, expected: Revision) -> StoreError {
    let compacted = inner.compacted.load(Ordering::Acquire);
    if compacted >= expected {
        StoreError::Compacted { compacted }
    } else {
        StoreError::Io(format!("event log has a hole at revision {expected}"))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::{EventType, Store, StoreOptions};

    use super::*;

    #[tokio::test]
    async fn lagging_watcher_recovers_from_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let opts = StoreOptions {
            flush: false,
            watch_buffer: 16,
            ..StoreOptions::default()
        };
        let s = Store::open(dir.path(), opts).unwrap();
        let mut w = s.watch("a/", 0).unwrap();
        let mut live = s.watch("", 0).unwrap();
        for i in 0..500u32 {
            let key = if i % 2 == 0 { "a/x" } else { "b/x" };
            match s.get(key).unwrap() {
                Some(kv) => {
                    s.update(key, kv.mod_revision, i.to_be_bytes().to_vec())
                        .await
                }
                None => s.create(key, i.to_be_bytes().to_vec()).await,
            }
            .unwrap();
        }
        // 500 events went through a 16-slot feed while nobody read it.
        for i in (0..500u32).step_by(2) {
            let ev = w.next().await.unwrap().unwrap();
            assert_eq!(ev.revision, u64::from(i) + 1);
            assert_eq!(ev.kind, EventType::Put);
            assert_eq!(ev.value, i.to_be_bytes());
        }
        assert_eq!(w.revision(), 500);
        for rev in 1..=500 {
            assert_eq!(live.next().await.unwrap().unwrap().revision, rev);
        }
        // Now live: the next event comes from memory.
        s.delete("a/x", None).await.unwrap();
        let ev = w.next().await.unwrap().unwrap();
        assert_eq!((ev.kind, ev.revision), (EventType::Delete, 501));
        s.close();
        assert!(w.next().await.is_none());
        assert!(tokio::time::timeout(Duration::from_secs(5), live.next())
            .await
            .unwrap()
            .is_some());
    }

    #[tokio::test]
    async fn compaction_overtakes_a_lagging_watcher() {
        let dir = tempfile::tempdir().unwrap();
        let opts = StoreOptions {
            flush: false,
            watch_buffer: 16,
            ..StoreOptions::default()
        };
        let s = Store::open(dir.path(), opts).unwrap();
        let mut w = s.watch("", 0).unwrap();
        for i in 0..100 {
            s.create(&format!("k{i}"), vec![]).await.unwrap();
        }
        s.compact(60).unwrap();
        match w.next().await {
            Some(Err(StoreError::Compacted { compacted: 60 })) => {}
            other => panic!("unexpected {other:?}"),
        }
        assert!(w.next().await.is_none());
    }

    #[tokio::test]
    async fn store_drop_ends_watchers() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), StoreOptions::default()).unwrap();
        s.create("k", vec![1]).await.unwrap();
        let mut w = s.watch("", 0).unwrap();
        drop(s);
        // The watcher does not keep the store open.
        assert!(w.next().await.is_none());
        let s = Store::open(dir.path(), StoreOptions::default()).unwrap();
        assert_eq!(s.current_revision(), 1);
    }
}
