//! `meso-store`: the revisioned key-value store with watch that is the only persistence of meso.
//!
//! * Every write (create, update, delete) gets the next value of one global, strictly increasing
//!   [`Revision`]. The value, the revision bump and the event-log entry commit atomically (the
//!   log entry is written first and a write a crash cut in half is completed at open; readers
//!   never see half of one), and the write's future resolves only once the write is durable
//!   (group commit: concurrent writers share one flush).
//! * [`Store::watch`] streams every event after a revision, in order, without gaps or duplicates.
//!   Committed events are published once to an in-memory broadcast; watchers that start from an
//!   older revision, or fall behind the in-memory window, read the persisted event log first.
//! * The event log is compacted in the background (see [`Store::start_compactor`]); watching
//!   from before the compacted revision fails with [`StoreError::Compacted`].
//!
//! See `DESIGN.md`, section "Store contract".

#![warn(missing_docs)]

mod codec;
mod store;
mod watch;

use std::time::Duration;

pub use store::Store;
pub use watch::Watcher;

/// A store revision: a global counter bumped by every write. Revision 0 means "nothing written".
pub type Revision = u64;

/// Result of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A stored key with its value and revisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key.
    pub key: String,
    /// The value.
    pub value: Vec<u8>,
    /// Revision of the write that created the key.
    pub create_revision: Revision,
    /// Revision of the last write to the key (for a deleted key: the delete's revision).
    pub mod_revision: Revision,
}

/// The kind of an [`Event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// The key was created or updated.
    Put,
    /// The key was deleted.
    Delete,
}

/// One committed write, as seen by watchers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Put or Delete.
    pub kind: EventType,
    /// The key written.
    pub key: String,
    /// For `Put` the new value; for `Delete` the last value before the delete.
    pub value: Vec<u8>,
    /// The value before this write (`None` for a create).
    pub prev_value: Option<Vec<u8>>,
    /// The revision of this write.
    pub revision: Revision,
    /// The revision that created the key.
    pub create_revision: Revision,
}

/// Errors of the store.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// `create` of a key that exists.
    #[error("key already exists")]
    AlreadyExists,
    /// `update`/`delete` of a key that does not exist.
    #[error("key not found")]
    NotFound,
    /// The expected revision did not match the key's `mod_revision`.
    #[error("revision conflict")]
    Conflict {
        /// The key as currently stored.
        current: Option<KeyValue>,
    },
    /// The requested revision was compacted away.
    #[error("revision compacted (compacted revision {compacted})")]
    Compacted {
        /// The store's compacted revision.
        compacted: Revision,
    },
    /// The requested revision is ahead of the store.
    #[error("revision {requested} is in the future (current revision {current})")]
    FutureRevision {
        /// The revision asked for.
        requested: Revision,
        /// The store's current revision.
        current: Revision,
    },
    /// The storage engine failed, or a stored record is corrupt.
    #[error("storage I/O error: {0}")]
    Io(String),
    /// The store was closed.
    #[error("store closed")]
    Closed,
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Io(e.to_string())
    }
}

/// The answer of [`Store::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListResult {
    /// The keys found, in key order, as of `revision`.
    pub items: Vec<KeyValue>,
    /// The store revision the listing is consistent with.
    pub revision: Revision,
    /// More keys follow the last item (the listing stopped at `limit`).
    pub more: bool,
}

/// Options of [`Store::open`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Keep events committed within this window (default 5 minutes).
    pub compaction_window: Duration,
    /// Keep at least this many most recent revisions (default 100 000). The compactor keeps
    /// whichever of this and `compaction_window` retains more events.
    pub compaction_min_revisions: u64,
    /// Wait for durability (flush to disk) before a write resolves (default true).
    pub flush: bool,
    /// How often the background compactor runs (default 30 s).
    pub compaction_interval: Duration,
    /// Events kept in memory for live watchers (default 4 096); a watcher that falls further
    /// behind catches up from the persisted event log.
    pub watch_buffer: usize,
    /// Bytes of sled's page cache (default 32 MiB).
    pub cache_capacity: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            compaction_window: Duration::from_secs(300),
            compaction_min_revisions: 100_000,
            flush: true,
            compaction_interval: Duration::from_secs(30),
            watch_buffer: 4_096,
            cache_capacity: 32 * 1024 * 1024,
        }
    }
}
