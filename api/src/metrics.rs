//! Prometheus metrics of the API server, in the text exposition format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Latency buckets (seconds), as upstream's `apiserver_request_duration_seconds`.
const BUCKETS: &[f64] = &[
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
    10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
];

#[derive(Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

/// (verb, group, resource, code) of a request counter.
type RequestKey = (String, String, String, u16);

/// Request counters and latency histograms, by verb/resource/code.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<RequestKey, u64>>,
    latency: Mutex<BTreeMap<(String, String, String), Histogram>>,
    watches: AtomicI64,
    /// Upgraded exec/attach/port-forward streams by (protocol, subresource).
    stream_upgrades: Mutex<BTreeMap<(String, String), u64>>,
}

impl Metrics {
    pub fn observe(&self, verb: &str, group: &str, resource: &str, code: u16, elapsed: Duration) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((
                verb.to_string(),
                group.to_string(),
                resource.to_string(),
                code,
            ))
            .or_default() += 1;
        }
        if verb == "watch" {
            return;
        }
        if let Ok(mut m) = self.latency.lock() {
            let h = m
                .entry((verb.to_string(), group.to_string(), resource.to_string()))
                .or_default();
            if h.counts.is_empty() {
                h.counts = vec![0; BUCKETS.len()];
            }
            let secs = elapsed.as_secs_f64();
            for (i, b) in BUCKETS.iter().enumerate() {
                if secs <= *b {
                    h.counts[i] += 1;
                }
            }
            h.sum += secs;
            h.count += 1;
        }
    }

    pub fn watch_started(&self) {
        self.watches.fetch_add(1, Ordering::Relaxed);
    }

    pub fn watch_ended(&self) {
        self.watches.fetch_sub(1, Ordering::Relaxed);
    }

    /// Counts one upgraded stream: `protocol` is `websocket` or `spdy`, `subresource` one of
    /// `exec`, `attach`, `portforward`.
    pub fn stream_upgraded(&self, protocol: &str, subresource: &str) {
        if let Ok(mut m) = self.stream_upgrades.lock() {
            *m.entry((protocol.to_string(), subresource.to_string()))
                .or_default() += 1;
        }
    }

    pub fn watches(&self) -> i64 {
        self.watches.load(Ordering::Relaxed)
    }

    /// The exposition text, with the store's figures.
    pub fn render(&self, store: &meso_store::Store) -> String {
        let (revision, compacted) = (store.current_revision(), store.compacted_revision());
        let mut out = String::new();
        out.push_str("# HELP apiserver_request_total Counter of apiserver requests broken out for each verb, group, resource and HTTP response code.\n# TYPE apiserver_request_total counter\n");
        if let Ok(m) = self.requests.lock() {
            for ((verb, group, resource, code), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "apiserver_request_total{{code=\"{code}\",group=\"{group}\",resource=\"{resource}\",verb=\"{verb}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP apiserver_request_duration_seconds Response latency distribution in seconds for each verb, group and resource.\n# TYPE apiserver_request_duration_seconds histogram\n");
        if let Ok(m) = self.latency.lock() {
            for ((verb, group, resource), h) in m.iter() {
                let labels = format!("group=\"{group}\",resource=\"{resource}\",verb=\"{verb}\"");
                for (i, b) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "apiserver_request_duration_seconds_bucket{{{labels},le=\"{b}\"}} {}",
                        h.counts.get(i).copied().unwrap_or(0)
                    );
                }
                let _ = writeln!(
                    out,
                    "apiserver_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(
                    out,
                    "apiserver_request_duration_seconds_sum{{{labels}}} {}",
                    h.sum
                );
                let _ = writeln!(
                    out,
                    "apiserver_request_duration_seconds_count{{{labels}}} {}",
                    h.count
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP meso_store_revision Current revision of the store.\n# TYPE meso_store_revision gauge\nmeso_store_revision {revision}"
        );
        let _ = writeln!(
            out,
            "# HELP meso_store_compacted_revision Revision the store's event log was compacted to.\n# TYPE meso_store_compacted_revision gauge\nmeso_store_compacted_revision {compacted}"
        );
        let _ = writeln!(
            out,
            "# HELP meso_store_flushes_total Group commits that made the store's writes durable.\n# TYPE meso_store_flushes_total counter\nmeso_store_flushes_total {}",
            store.flush_count()
        );
        let _ = writeln!(
            out,
            "# HELP apiserver_registered_watchers Number of currently open watches.\n# TYPE apiserver_registered_watchers gauge\napiserver_registered_watchers {}",
            self.watches()
        );
        out.push_str("# HELP apiserver_stream_upgrades_total Counter of exec, attach and port-forward connections upgraded, by client protocol (websocket or spdy) and subresource.\n# TYPE apiserver_stream_upgrades_total counter\n");
        if let Ok(m) = self.stream_upgrades.lock() {
            for ((protocol, subresource), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "apiserver_stream_upgrades_total{{protocol=\"{protocol}\",subresource=\"{subresource}\"}} {n}"
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_buckets() {
        let m = Metrics::default();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = meso_store::Store::open(dir.path(), meso_store::StoreOptions::default())
            .expect("a store");
        m.observe("get", "", "configmaps", 200, Duration::from_millis(3));
        m.observe("get", "", "configmaps", 404, Duration::from_millis(30));
        let text = m.render(&store);
        assert!(text.contains(
            "apiserver_request_total{code=\"200\",group=\"\",resource=\"configmaps\",verb=\"get\"} 1"
        ));
        assert!(text.contains("le=\"0.005\"} 1"));
        assert!(text.contains("apiserver_request_duration_seconds_count{group=\"\",resource=\"configmaps\",verb=\"get\"} 2"));
        assert!(text.contains("meso_store_revision 0"));
        assert!(text.contains("meso_store_flushes_total 0"));
        m.stream_upgraded("websocket", "exec");
        m.stream_upgraded("websocket", "exec");
        m.stream_upgraded("spdy", "portforward");
        let text = m.render(&store);
        assert!(text.contains(
            "apiserver_stream_upgrades_total{protocol=\"websocket\",subresource=\"exec\"} 2"
        ));
        assert!(text.contains(
            "apiserver_stream_upgrades_total{protocol=\"spdy\",subresource=\"portforward\"} 1"
        ));
    }
}
