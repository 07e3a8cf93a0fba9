//! On-disk layout and the hand-rolled binary encodings of the store.
//!
//! Everything lives in ONE sled tree. A write is two plain sled writes, its event-log entry and
//! then its key-value entry (the store repairs a crash between them at open, see `Store::open`);
//! the current revision is the newest log entry's:
//!
//! | key                         | value                                                        |
//! |-----------------------------|--------------------------------------------------------------|
//! | `k` ++ user key (UTF-8)     | `create_revision: u64 BE` ++ `mod_revision: u64 BE` ++ value |
//! | `l` ++ revision (u64 BE)    | an [`Event`] record, see [`encode_event`]                    |
//! | `m/rev`                     | current revision, u64 BE (written by older versions only)     |
//! | `m/compacted`               | compacted revision, u64 BE                                   |

use crate::{Event, EventType, KeyValue, Revision, StoreError};

/// First byte of every key-value entry.
pub(crate) const KV_PREFIX: u8 = b'k';
/// First byte of every event-log entry.
pub(crate) const LOG_PREFIX: u8 = b'l';
/// Meta key holding the current revision.
pub(crate) const META_REV: &[u8] = b"m/rev";
/// Meta key holding the compacted revision.
pub(crate) const META_COMPACTED: &[u8] = b"m/compacted";

fn corrupt(what: &str) -> StoreError {
    StoreError::Io(format!("corrupt store record: {what}"))
}

/// The sled key of a user key.
pub(crate) fn kv_key(key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(KV_PREFIX);
    k.extend_from_slice(key.as_bytes());
    k
}

/// The user key of a sled key-value key.
pub(crate) fn user_key(raw: &[u8]) -> Result<String, StoreError> {
    match raw.split_first() {
        Some((&KV_PREFIX, rest)) => {
            String::from_utf8(rest.to_vec()).map_err(|_| corrupt("key is not UTF-8"))
        }
        _ => Err(corrupt("key without the key-value prefix")),
    }
}

/// The sled key of the event-log entry of `rev`.
pub(crate) fn log_key(rev: Revision) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = LOG_PREFIX;
    k[1..].copy_from_slice(&rev.to_be_bytes());
    k
}

/// The revision of an event-log key.
pub(crate) fn log_revision(raw: &[u8]) -> Result<Revision, StoreError> {
    match raw.split_first() {
        Some((&LOG_PREFIX, rest)) => Ok(u64_at(rest, 0)?),
        _ => Err(corrupt("event-log key without prefix")),
    }
}

/// Decodes a big-endian u64 meta value.
pub(crate) fn decode_u64(raw: &[u8]) -> Result<u64, StoreError> {
    u64_at(raw, 0)
}

fn u64_at(raw: &[u8], at: usize) -> Result<u64, StoreError> {
    raw.get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| corrupt("truncated integer"))
}

fn u32_at(raw: &[u8], at: usize) -> Result<usize, StoreError> {
    raw.get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .map(|b| u32::from_be_bytes(b) as usize)
        .ok_or_else(|| corrupt("truncated length"))
}

fn bytes_at(raw: &[u8], at: usize, len: usize) -> Result<&[u8], StoreError> {
    raw.get(at..at.saturating_add(len))
        .ok_or_else(|| corrupt("truncated bytes"))
}

fn len_u32(len: usize) -> Result<[u8; 4], StoreError> {
    u32::try_from(len)
        .map(u32::to_be_bytes)
        .map_err(|_| StoreError::Io(format!("field of {len} bytes exceeds 4 GiB")))
}

/// Encodes a key-value entry's value.
pub(crate) fn encode_kv(create: Revision, modified: Revision, value: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(16 + value.len());
    v.extend_from_slice(&create.to_be_bytes());
    v.extend_from_slice(&modified.to_be_bytes());
    v.extend_from_slice(value);
    v
}

/// Decodes a key-value entry.
pub(crate) fn decode_kv(key: String, raw: &[u8]) -> Result<KeyValue, StoreError> {
    Ok(KeyValue {
        key,
        create_revision: u64_at(raw, 0)?,
        mod_revision: u64_at(raw, 8)?,
        value: bytes_at(raw, 16, raw.len().saturating_sub(16))?.to_vec(),
    })
}

/// Encodes an event-log entry:
/// `ts_ms: u64` `kind: u8` `create_revision: u64` `key_len: u32` `key`
/// `prev: u8` (0 none, 1 present, 2 equal to the value: a delete) [`prev_len: u32` `prev`]
/// `value` (the rest). All integers big-endian.
/// The revision is the entry's key and is not repeated.
pub(crate) fn encode_event(ev: &Event, ts_ms: u64) -> Result<Vec<u8>, StoreError> {
    let prev_len = ev.prev_value.as_ref().map_or(0, |p| p.len() + 4); // upper bound
    let mut v = Vec::with_capacity(8 + 1 + 8 + 4 + ev.key.len() + 1 + prev_len + ev.value.len());
    v.extend_from_slice(&ts_ms.to_be_bytes());
    v.push(match ev.kind {
        EventType::Put => 0,
        EventType::Delete => 1,
    });
    v.extend_from_slice(&ev.create_revision.to_be_bytes());
    v.extend_from_slice(&len_u32(ev.key.len())?);
    v.extend_from_slice(ev.key.as_bytes());
    match &ev.prev_value {
        Some(p) if *p == ev.value => v.push(2),
        Some(p) => {
            v.push(1);
            v.extend_from_slice(&len_u32(p.len())?);
            v.extend_from_slice(p);
        }
        None => v.push(0),
    }
    v.extend_from_slice(&ev.value);
    Ok(v)
}

/// The commit timestamp (milliseconds since the Unix epoch) of an event-log entry.
pub(crate) fn event_timestamp(raw: &[u8]) -> Result<u64, StoreError> {
    u64_at(raw, 0)
}

/// Decodes an event-log entry written at `revision`.
pub(crate) fn decode_event(revision: Revision, raw: &[u8]) -> Result<Event, StoreError> {
    let kind = match raw.get(8) {
        Some(0) => EventType::Put,
        Some(1) => EventType::Delete,
        _ => return Err(corrupt("unknown event kind")),
    };
    let create_revision = u64_at(raw, 9)?;
    let key_len = u32_at(raw, 17)?;
    let key = String::from_utf8(bytes_at(raw, 21, key_len)?.to_vec())
        .map_err(|_| corrupt("event key is not UTF-8"))?;
    let flag_at = 21 + key_len;
    let (prev, at) = match raw.get(flag_at) {
        Some(0) | Some(2) => (None, flag_at + 1),
        Some(1) => {
            let len = u32_at(raw, flag_at + 1)?;
            (
                Some(bytes_at(raw, flag_at + 5, len)?.to_vec()),
                flag_at + 5 + len,
            )
        }
        _ => return Err(corrupt("bad previous-value flag")),
    };
    let value = bytes_at(raw, at, raw.len().saturating_sub(at))?.to_vec();
    let prev_value = match raw.get(flag_at) {
        Some(2) => Some(value.clone()),
        _ => prev,
    };
    Ok(Event {
        kind,
        key,
        value,
        prev_value,
        revision,
        create_revision,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_roundtrip() {
        let raw = encode_kv(3, 7, b"hello");
        let kv = decode_kv("a/b".into(), &raw).unwrap();
        assert_eq!(kv.create_revision, 3);
        assert_eq!(kv.mod_revision, 7);
        assert_eq!(kv.value, b"hello");
        assert_eq!(user_key(&kv_key("a/b")).unwrap(), "a/b");
        assert!(decode_kv("x".into(), &raw[..10]).is_err());
    }

    #[test]
    fn event_roundtrip() {
        for ev in [
            Event {
                kind: EventType::Put,
                key: "/registry/pods/ns/p".into(),
                value: vec![1, 2, 3],
                prev_value: None,
                revision: 42,
                create_revision: 42,
            },
            Event {
                kind: EventType::Delete,
                key: "gone".into(),
                value: vec![5; 10],
                prev_value: Some(vec![5; 10]),
                revision: 9,
                create_revision: 2,
            },
            Event {
                kind: EventType::Delete,
                key: "ключ".into(),
                value: vec![],
                prev_value: Some(vec![9; 300]),
                revision: u64::MAX,
                create_revision: 1,
            },
        ] {
            let raw = encode_event(&ev, 1234).unwrap();
            assert_eq!(event_timestamp(&raw).unwrap(), 1234);
            assert_eq!(decode_event(ev.revision, &raw).unwrap(), ev);
            assert!(decode_event(ev.revision, &raw[..20]).is_err());
        }
    }

    #[test]
    fn log_keys_sort_by_revision() {
        assert!(log_key(255) < log_key(256));
        assert!(log_key(u64::MAX).as_slice() < META_REV);
        assert!(kv_key("zzz").as_slice() < log_key(0).as_slice());
        assert_eq!(log_revision(&log_key(77)).unwrap(), 77);
    }
}
