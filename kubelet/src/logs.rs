//! Container logs as `kubectl logs` shows them, read from the CRI log files containerd writes
//! (one record a line: `<RFC3339Nano time> <stdout|stderr> <P|F> <text>`, where `P` marks a
//! partial line continued by the next record).

use std::io::SeekFrom;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, FixedOffset};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::mpsc;

/// What `GET /containerLogs` asks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogOptions {
    /// Only the last N lines.
    pub tail_lines: Option<usize>,
    /// Stop after this many bytes.
    pub limit_bytes: Option<u64>,
    /// Only records at or after this time.
    pub since: Option<DateTime<FixedOffset>>,
    /// Prefix every line with its time.
    pub timestamps: bool,
    /// Keep streaming new records until the container exits.
    pub follow: bool,
}

/// One parsed record of a CRI log file.
#[derive(Debug, PartialEq)]
struct Record<'a> {
    time: &'a str,
    partial: bool,
    text: &'a [u8],
}

/// Parses one record (without its newline); `None` for a malformed one.
fn parse_record(line: &[u8]) -> Option<Record<'_>> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    let time = std::str::from_utf8(parts.next()?).ok()?;
    let _stream = parts.next()?;
    let tag = parts.next()?;
    let text = parts.next().unwrap_or_default();
    Some(Record {
        time,
        partial: tag.first() == Some(&b'P'),
        text,
    })
}

/// Turns records into output lines, applying `since`, `timestamps` and `limitBytes`.
struct Formatter<'o> {
    opts: &'o LogOptions,
    /// Whether the next record starts a new line.
    line_start: bool,
    /// Whether the current line was filtered out by `since`.
    skipping: bool,
    written: u64,
}

impl<'o> Formatter<'o> {
    fn new(opts: &'o LogOptions) -> Self {
        Self {
            opts,
            line_start: true,
            skipping: false,
            written: 0,
        }
    }

    /// Whether `limitBytes` is used up.
    fn full(&self) -> bool {
        self.opts.limit_bytes.is_some_and(|l| self.written >= l)
    }

    /// Appends the formatted record to `out`.
    fn push(&mut self, rec: &Record<'_>, out: &mut Vec<u8>) {
        if self.line_start {
            self.skipping = match (&self.opts.since, DateTime::parse_from_rfc3339(rec.time)) {
                (Some(since), Ok(t)) => t < *since,
                _ => false,
            };
        }
        if !self.skipping {
            let start = out.len();
            if self.opts.timestamps && self.line_start {
                out.extend_from_slice(rec.time.as_bytes());
                out.push(b' ');
            }
            out.extend_from_slice(rec.text);
            if !rec.partial {
                out.push(b'\n');
            }
            let mut added = (out.len() - start) as u64;
            if let Some(limit) = self.opts.limit_bytes {
                let room = limit.saturating_sub(self.written);
                if added > room {
                    out.truncate(start + room as usize);
                    added = room;
                }
            }
            self.written += added;
        }
        self.line_start = !rec.partial;
    }
}

/// The complete records in `data` (those ended by a newline); returns them and the length of
/// the consumed prefix.
fn complete_records(data: &[u8]) -> (Vec<Record<'_>>, usize) {
    let consumed = data.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let records = data[..consumed]
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(parse_record)
        .collect();
    (records, consumed)
}

/// The records of the last `n` lines (a line is a run of partial records ended by a full one).
fn tail<'a, 'r>(records: &'r [Record<'a>], n: usize) -> &'r [Record<'a>] {
    if n == 0 {
        return &records[records.len()..];
    }
    let mut lines = 0;
    for i in (0..records.len()).rev() {
        // A full record ends a line; count it when we reach the start of an earlier one.
        if !records[i].partial {
            lines += 1;
            if lines > n {
                return &records[i + 1..];
            }
        }
    }
    records
}

/// Formats a whole log file's contents (for tests and the non-follow path).
pub fn render(data: &[u8], opts: &LogOptions) -> Vec<u8> {
    let (records, _) = complete_records(data);
    let records = match opts.tail_lines {
        Some(n) => tail(&records, n),
        None => &records[..],
    };
    let mut f = Formatter::new(opts);
    let mut out = Vec::new();
    for r in records {
        if f.full() {
            break;
        }
        f.push(r, &mut out);
    }
    out
}

/// How often a followed log file is checked for new records.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// Streams a container's log file into `tx`. With `follow`, keeps going until `running`
/// answers `false` (the container exited) and the file is drained, or the receiver is gone.
pub async fn stream<F, Fut>(path: &Path, opts: LogOptions, tx: mpsc::Sender<Bytes>, running: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let data = match tokio::fs::read(path).await {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "reading a container log");
            return;
        }
    };
    let (records, consumed) = complete_records(&data);
    let records = match opts.tail_lines {
        Some(n) => tail(&records, n),
        None => &records[..],
    };
    let mut f = Formatter::new(&opts);
    let mut out = Vec::new();
    for r in records {
        if f.full() {
            break;
        }
        f.push(r, &mut out);
    }
    let mut offset = consumed as u64;
    if !out.is_empty() && tx.send(Bytes::from(out)).await.is_err() {
        return;
    }
    if !opts.follow || f.full() {
        return;
    }
    let mut exited = false;
    loop {
        // Read what was appended since `offset`.
        let mut chunk = Vec::new();
        if let Ok(mut file) = tokio::fs::File::open(path).await {
            if file.seek(SeekFrom::Start(offset)).await.is_ok() {
                let _ = file.read_to_end(&mut chunk).await;
            }
        }
        let (records, consumed) = complete_records(&chunk);
        offset += consumed as u64;
        let mut out = Vec::new();
        for r in &records {
            if f.full() {
                break;
            }
            f.push(r, &mut out);
        }
        if !out.is_empty() && tx.send(Bytes::from(out)).await.is_err() {
            return;
        }
        if f.full() || (exited && records.is_empty()) {
            return;
        }
        if records.is_empty() {
            // Nothing new: stop once the container has exited (after one last read).
            exited = !running().await;
            if exited {
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(FOLLOW_POLL) => {}
                _ = tx.closed() => return,
            }
        }
    }
}

/// Parses `sinceTime` (RFC 3339).
pub fn parse_time(s: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &[u8] = b"2024-01-01T00:00:01.000000000Z stdout F one\n\
2024-01-01T00:00:02.000000000Z stderr P tw\n\
2024-01-01T00:00:02.500000000Z stderr F o\n\
2024-01-01T00:00:03.000000000Z stdout F three\n\
2024-01-01T00:00:04.000000000Z stdout F incompl";

    #[test]
    fn joins_partial_records_and_skips_incomplete_ones() {
        let out = render(LOG, &LogOptions::default());
        assert_eq!(String::from_utf8_lossy(&out), "one\ntwo\nthree\n");
    }

    #[test]
    fn tail_counts_lines_not_records() {
        let opts = LogOptions {
            tail_lines: Some(2),
            ..Default::default()
        };
        assert_eq!(String::from_utf8_lossy(&render(LOG, &opts)), "two\nthree\n");
        let opts = LogOptions {
            tail_lines: Some(0),
            ..Default::default()
        };
        assert!(render(LOG, &opts).is_empty());
        let opts = LogOptions {
            tail_lines: Some(10),
            ..Default::default()
        };
        assert_eq!(render(LOG, &opts).len(), "one\ntwo\nthree\n".len());
    }

    #[test]
    fn timestamps_since_and_limit_bytes() {
        let opts = LogOptions {
            timestamps: true,
            since: parse_time("2024-01-01T00:00:02Z"),
            ..Default::default()
        };
        assert_eq!(
            String::from_utf8_lossy(&render(LOG, &opts)),
            "2024-01-01T00:00:02.000000000Z two\n2024-01-01T00:00:03.000000000Z three\n"
        );
        let opts = LogOptions {
            limit_bytes: Some(6),
            ..Default::default()
        };
        assert_eq!(String::from_utf8_lossy(&render(LOG, &opts)), "one\ntw");
    }

    #[tokio::test]
    async fn follow_sends_appended_lines_and_stops_when_the_container_exits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        std::fs::write(&path, b"2024-01-01T00:00:01Z stdout F first\n").unwrap();
        let (tx, mut rx) = mpsc::channel(8);
        let running = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let flag = running.clone();
        let p = path.clone();
        let task = tokio::spawn(async move {
            let opts = LogOptions {
                follow: true,
                ..Default::default()
            };
            stream(&p, opts, tx, move || {
                let flag = flag.clone();
                async move { flag.load(std::sync::atomic::Ordering::SeqCst) }
            })
            .await
        });
        assert_eq!(rx.recv().await.unwrap(), Bytes::from_static(b"first\n"));
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"2024-01-01T00:00:02Z stdout F second\n")
            .unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, Bytes::from_static(b"second\n"));
        running.store(false, std::sync::atomic::Ordering::SeqCst);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
        assert!(rx.recv().await.is_none());
    }
}
