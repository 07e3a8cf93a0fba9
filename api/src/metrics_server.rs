//! `metrics.k8s.io/v1beta1` built in, as metrics-server serves it as an aggregated API:
//! `nodes` (NodeMetrics) and `pods` (PodMetrics), get and list with label selectors.
//!
//! Every `--metric-resolution` the server scrapes each node's kubelet `/metrics/resource`
//! (through the same kubelet client as logs and exec) and keeps the last two samples of every
//! node and container in memory. CPU is the rate between the two samples (in nanocores),
//! memory the latest working set; `timestamp` is the latest sample's time and `window` the
//! time between the two, as metrics-server reports them. A node or pod without two samples yet
//! has no metrics: a get answers 404 and a list leaves it out.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::response::Response;
use http::{Method, StatusCode};
use serde_json::{json, Map, Value};

use crate::errors::{ApiError, ApiResult};
use crate::registry::{ListOptions, ResourceCtx};
use crate::resources::{ResourceInfo, Scope};
use crate::rest::{respond, ResourceRequest};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::server::AppState;

pub const GROUP: &str = "metrics.k8s.io";
pub const VERSION: &str = "v1beta1";
/// Largest `/metrics/resource` answer read from a kubelet.
const MAX_SCRAPE_BYTES: usize = 32 * 1024 * 1024;

/// The resources every API server serves before any CustomResourceDefinition: the built-in
/// ones and this module's `metrics.k8s.io`.
pub fn served_base() -> crate::resources::ResourceTable {
    let mut table = crate::resources::ResourceTable::builtin();
    for r in resources() {
        table.add(r);
    }
    table
}

/// The resources of `metrics.k8s.io/v1beta1` for the resource table (discovery, routing).
pub fn resources() -> Vec<ResourceInfo> {
    let entry = |kind: &str, plural: &str, singular: &str, scope: Scope| ResourceInfo {
        group: GROUP.into(),
        version: VERSION.into(),
        kind: kind.into(),
        list_kind: format!("{kind}List"),
        plural: plural.into(),
        singular: singular.into(),
        scope,
        verbs: vec!["get".into(), "list".into()],
        ..Default::default()
    };
    vec![
        entry("NodeMetrics", "nodes", "", Scope::Cluster),
        entry("PodMetrics", "pods", "", Scope::Namespaced),
    ]
}

/// One sample of a node or container.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub cpu_seconds: f64,
    pub memory_bytes: f64,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
}

/// The last two samples of one node or container.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Series {
    prev: Option<Point>,
    last: Point,
}

/// What a node or container used over the window of its last two samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub nanocores: u64,
    pub memory_bytes: u64,
    pub timestamp_ms: i64,
    pub window_ms: i64,
}

impl Series {
    /// The series after a new sample: an older sample becomes `prev`; a sample not newer than
    /// the last leaves the series as it is; a counter that went back (a restarted container)
    /// starts over.
    fn advance(old: Option<Series>, point: Point) -> Series {
        match old {
            Some(s) if point.timestamp_ms <= s.last.timestamp_ms => s,
            Some(s) if point.cpu_seconds >= s.last.cpu_seconds => Series {
                prev: Some(s.last),
                last: point,
            },
            _ => Series {
                prev: None,
                last: point,
            },
        }
    }

    fn usage(&self) -> Option<Usage> {
        let prev = self.prev?;
        let window_ms = self.last.timestamp_ms - prev.timestamp_ms;
        let cpu = self.last.cpu_seconds - prev.cpu_seconds;
        if window_ms <= 0 || cpu < 0.0 {
            return None;
        }
        Some(Usage {
            nanocores: (cpu * 1e12 / window_ms as f64).round() as u64,
            memory_bytes: self.last.memory_bytes.max(0.0) as u64,
            timestamp_ms: self.last.timestamp_ms,
            window_ms,
        })
    }
}

/// `(namespace, pod, container)`.
type ContainerKey = (String, String, String);

/// One kubelet's `/metrics/resource` answer.
#[derive(Debug, Default, PartialEq)]
pub struct Scrape {
    pub node: Option<Point>,
    pub containers: Vec<(ContainerKey, Point)>,
}

#[derive(Debug, Default)]
struct NodeEntry {
    node: Option<Series>,
    containers: HashMap<ContainerKey, Series>,
}

/// The in-memory metrics of every node and container.
#[derive(Debug, Default)]
pub struct MetricsCache {
    nodes: RwLock<HashMap<String, NodeEntry>>,
}

impl MetricsCache {
    /// Records a node's scrape.
    pub fn record(&self, node: &str, scrape: Scrape) {
        let mut nodes = self.nodes.write().unwrap_or_else(|p| p.into_inner());
        let old = nodes.remove(node).unwrap_or_default();
        let mut entry = NodeEntry {
            node: scrape.node.map(|p| Series::advance(old.node, p)),
            containers: HashMap::new(),
        };
        for (key, point) in scrape.containers {
            let series = Series::advance(old.containers.get(&key).copied(), point);
            entry.containers.insert(key, series);
        }
        nodes.insert(node.to_string(), entry);
    }

    /// Forgets nodes that are not in `live`.
    pub fn retain_nodes(&self, live: &[String]) {
        let mut nodes = self.nodes.write().unwrap_or_else(|p| p.into_inner());
        nodes.retain(|n, _| live.contains(n));
    }

    pub fn node(&self, node: &str) -> Option<Usage> {
        let nodes = self.nodes.read().unwrap_or_else(|p| p.into_inner());
        nodes.get(node)?.node.as_ref()?.usage()
    }

    /// The usage of every container of a pod, by name; `None` unless every container of the
    /// pod seen in the scrapes has a usage.
    pub fn pod(&self, namespace: &str, pod: &str) -> Option<Vec<(String, Usage)>> {
        let nodes = self.nodes.read().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for entry in nodes.values() {
            for ((ns, p, c), series) in &entry.containers {
                if ns == namespace && p == pod {
                    out.push((c.clone(), series.usage()?));
                }
            }
        }
        if out.is_empty() {
            return None;
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Some(out)
    }
}

/// One line of the Prometheus text format: `name{labels} value [timestamp]`.
struct PromSample<'a> {
    name: &'a str,
    labels: HashMap<String, String>,
    value: f64,
    timestamp: Option<i64>,
}

/// Splits `name{labels} value [timestamp]` of the Prometheus text format.
fn parse_sample(line: &str) -> Option<PromSample<'_>> {
    let name_end = line.find(['{', ' '])?;
    let name = &line[..name_end];
    let mut labels = HashMap::new();
    let mut rest = &line[name_end..];
    if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices().peekable();
        let mut end = None;
        loop {
            while chars.peek().is_some_and(|(_, c)| *c == ',' || *c == ' ') {
                chars.next();
            }
            match chars.peek() {
                Some((i, '}')) => {
                    end = Some(*i);
                    break;
                }
                None => break,
                _ => {}
            }
            let mut key = String::new();
            for (_, c) in chars.by_ref() {
                if c == '=' {
                    break;
                }
                key.push(c);
            }
            if chars.next().map(|(_, c)| c) != Some('"') {
                return None;
            }
            let mut value = String::new();
            let mut closed = false;
            while let Some((_, c)) = chars.next() {
                match c {
                    '\\' => match chars.next().map(|(_, c)| c) {
                        Some('n') => value.push('\n'),
                        Some(other) => value.push(other),
                        None => return None,
                    },
                    '"' => {
                        closed = true;
                        break;
                    }
                    c => value.push(c),
                }
            }
            if !closed {
                return None;
            }
            labels.insert(key.trim().to_string(), value);
        }
        rest = &body[end? + 1..];
    }
    let mut fields = rest.split_whitespace();
    let value: f64 = fields.next()?.parse().ok()?;
    let ts = match fields.next() {
        Some(t) => Some(t.parse().ok()?),
        None => None,
    };
    Some(PromSample {
        name,
        labels,
        value,
        timestamp: ts,
    })
}

/// Parses a kubelet's `/metrics/resource` answer; unknown metrics and malformed lines are
/// skipped. `now_ms` stamps samples that carry no timestamp.
pub fn parse_scrape(text: &str, now_ms: i64) -> Scrape {
    let mut node_cpu = None;
    let mut node_mem = None;
    // Per container: (CPU seconds and timestamp, memory bytes).
    type Partial = (Option<(f64, i64)>, Option<f64>);
    let mut containers: HashMap<ContainerKey, Partial> = HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some(PromSample {
            name,
            labels,
            value,
            timestamp: ts,
        }) = parse_sample(line)
        else {
            continue;
        };
        let ts = ts.unwrap_or(now_ms);
        let key = || -> Option<ContainerKey> {
            Some((
                labels.get("namespace")?.clone(),
                labels.get("pod")?.clone(),
                labels.get("container")?.clone(),
            ))
        };
        match name {
            "node_cpu_usage_seconds_total" => node_cpu = Some((value, ts)),
            "node_memory_working_set_bytes" => node_mem = Some(value),
            "container_cpu_usage_seconds_total" => {
                if let Some(k) = key() {
                    containers.entry(k).or_default().0 = Some((value, ts));
                }
            }
            "container_memory_working_set_bytes" => {
                if let Some(k) = key() {
                    containers.entry(k).or_default().1 = Some(value);
                }
            }
            _ => {}
        }
    }
    let point = |cpu: Option<(f64, i64)>, mem: Option<f64>| {
        let (cpu_seconds, timestamp_ms) = cpu?;
        Some(Point {
            cpu_seconds,
            memory_bytes: mem?,
            timestamp_ms,
        })
    };
    let mut containers: Vec<(ContainerKey, Point)> = containers
        .into_iter()
        .filter_map(|(k, (cpu, mem))| Some((k, point(cpu, mem)?)))
        .collect();
    containers.sort_by(|a, b| a.0.cmp(&b.0));
    Scrape {
        node: point(node_cpu, node_mem),
        containers,
    }
}

/// A CPU quantity from nanocores in canonical form (`12m`, `1234567n`, `2`).
pub fn cpu_quantity(nanocores: u64) -> String {
    if nanocores == 0 {
        return "0".into();
    }
    let suffixes = ["n", "u", "m", "", "k", "M", "G", "T", "P", "E"];
    let (mut v, mut i) = (nanocores, 0);
    while v % 1000 == 0 && i + 1 < suffixes.len() {
        v /= 1000;
        i += 1;
    }
    format!("{v}{}", suffixes[i])
}

/// A memory quantity from bytes in canonical binary form (`1234Ki`, `5Mi`, `1023`).
pub fn memory_quantity(bytes: u64) -> String {
    if bytes == 0 {
        return "0".into();
    }
    let suffixes = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
    let (mut v, mut i) = (bytes, 0);
    while v % 1024 == 0 && i + 1 < suffixes.len() {
        v /= 1024;
        i += 1;
    }
    format!("{v}{}", suffixes[i])
}

/// A duration as Go's `time.Duration.String` writes whole milliseconds (`15.003s`, `1m0.5s`,
/// `500ms`).
pub fn go_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let sign = if ms < 0 { "-" } else { "" };
    let ms = ms.unsigned_abs();
    if ms < 1000 {
        return format!("{sign}{ms}ms");
    }
    let seconds = |ms: u64| {
        let (s, frac) = (ms / 1000, ms % 1000);
        if frac == 0 {
            format!("{s}s")
        } else {
            format!("{s}.{}s", format!("{frac:03}").trim_end_matches('0'))
        }
    };
    let (h, m, rest) = (ms / 3_600_000, (ms / 60_000) % 60, ms % 60_000);
    match (h, m) {
        (0, 0) => format!("{sign}{}", seconds(rest)),
        (0, m) => format!("{sign}{m}m{}", seconds(rest)),
        (h, m) => format!("{sign}{h}h{m}m{}", seconds(rest)),
    }
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn usage_json(u: &Usage) -> Value {
    json!({"cpu": cpu_quantity(u.nanocores), "memory": memory_quantity(u.memory_bytes)})
}

/// The metadata metrics-server gives a metrics object: the object's name, namespace and
/// labels, created now.
fn metadata(obj: &Value, now: &str) -> Value {
    let meta = obj.get("metadata");
    let mut m = Map::new();
    for key in ["name", "namespace"] {
        if let Some(v) = meta.and_then(|m| m.get(key)) {
            m.insert(key.into(), v.clone());
        }
    }
    m.insert("creationTimestamp".into(), now.into());
    if let Some(l) = meta.and_then(|m| m.get("labels")) {
        m.insert("labels".into(), l.clone());
    }
    Value::Object(m)
}

fn node_metrics(cache: &MetricsCache, node: &Value, now: &str) -> Option<Value> {
    let name = node.pointer("/metadata/name")?.as_str()?;
    let u = cache.node(name)?;
    Some(json!({
        "kind": "NodeMetrics",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": metadata(node, now),
        "timestamp": rfc3339(u.timestamp_ms),
        "window": go_duration(u.window_ms),
        "usage": usage_json(&u),
    }))
}

fn pod_metrics(cache: &MetricsCache, pod: &Value, now: &str) -> Option<Value> {
    let name = pod.pointer("/metadata/name")?.as_str()?;
    let ns = pod.pointer("/metadata/namespace")?.as_str()?;
    let containers = cache.pod(ns, name)?;
    let newest = containers.iter().max_by_key(|(_, u)| u.timestamp_ms)?.1;
    let containers: Vec<Value> = containers
        .iter()
        .map(|(c, u)| json!({"name": c, "usage": usage_json(u)}))
        .collect();
    Some(json!({
        "kind": "PodMetrics",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": metadata(pod, now),
        "timestamp": rfc3339(newest.timestamp_ms),
        "window": go_duration(newest.window_ms),
        "containers": containers,
    }))
}

fn core_ctx(state: &AppState, plural: &str, ns: Option<String>) -> ApiResult<ResourceCtx> {
    let info = state
        .lookup("", "v1", plural)
        .ok_or_else(|| ApiError::internal(format!("the {plural} resource is not registered")))?;
    Ok(ResourceCtx::new(info, ns))
}

/// Serves a request for `metrics.k8s.io/v1beta1`.
pub fn handle(
    state: &Arc<AppState>,
    info: &ResourceInfo,
    req: &ResourceRequest,
) -> ApiResult<Response> {
    let p = &req.path;
    if req.method != Method::GET || p.subresource.is_some() {
        return Err(ApiError::method_not_allowed());
    }
    if p.legacy_watch || req.query.flag("watch") {
        return Err(ApiError::method_not_allowed());
    }
    let output = crate::request::negotiate(&req.headers)?;
    let output = match output {
        crate::request::Output::Yaml => output,
        _ => crate::request::Output::Json,
    };
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let cache = &state.resource_metrics;
    let (plural, kind) = (info.plural.as_str(), info.kind.as_str());
    let resource = if plural == "nodes" {
        "nodemetrics"
    } else {
        "podmetrics"
    };
    let object = |obj: &Value| {
        if plural == "nodes" {
            node_metrics(cache, obj, &now)
        } else {
            pod_metrics(cache, obj, &now)
        }
    };
    let ctx = core_ctx(state, plural, p.namespace.clone())?;
    if let Some(name) = p.name.as_deref() {
        let not_found = || ApiError::not_found(GROUP, resource, name);
        let obj =
            state.registry.get(&ctx, name).map_err(
                |e| {
                    if e.code == 404 {
                        not_found()
                    } else {
                        e
                    }
                },
            )?;
        let m = object(&obj).ok_or_else(not_found)?;
        return Ok(respond(StatusCode::OK, output, &m));
    }
    let label = match req.query.get("labelSelector").filter(|s| !s.is_empty()) {
        Some(s) => Some(LabelSelector::parse(s).map_err(|e| ApiError::bad_request(e.0))?),
        None => None,
    };
    let field = match req.query.get("fieldSelector").filter(|s| !s.is_empty()) {
        Some(s) => {
            Some(FieldSelector::parse(s, "", plural).map_err(|e| ApiError::bad_request(e.0))?)
        }
        None => None,
    };
    let listed = state.registry.list(
        &ctx,
        &ListOptions {
            label,
            field,
            ..Default::default()
        },
    )?;
    let items: Vec<Value> = listed.items.iter().filter_map(object).collect();
    Ok(respond(
        StatusCode::OK,
        output,
        &json!({
            "kind": format!("{kind}List"),
            "apiVersion": "metrics.k8s.io/v1beta1",
            "metadata": {},
            "items": items,
        }),
    ))
}

/// Scrapes one node into the cache.
async fn scrape_node(state: &AppState, node: &str, timeout: Duration) {
    let fetched = tokio::time::timeout(
        timeout,
        crate::proxy::kubelet_get(state, node, "/metrics/resource", MAX_SCRAPE_BYTES),
    )
    .await;
    match fetched {
        Ok(Ok(body)) => {
            let scrape = parse_scrape(
                &String::from_utf8_lossy(&body),
                chrono::Utc::now().timestamp_millis(),
            );
            state.resource_metrics.record(node, scrape);
        }
        Ok(Err(e)) => tracing::debug!(node, error = %e.message, "scraping the kubelet failed"),
        Err(_) => tracing::debug!(node, "scraping the kubelet timed out"),
    }
}

/// Scrapes every node's kubelet every `resolution` until shutdown.
pub async fn run(state: Arc<AppState>, resolution: Duration) {
    let resolution = resolution.max(Duration::from_millis(100));
    loop {
        let nodes: Vec<String> = match core_ctx(&state, "nodes", None)
            .and_then(|ctx| state.registry.list(&ctx, &ListOptions::default()))
        {
            Ok(l) => l
                .items
                .iter()
                .filter_map(|n| n.pointer("/metadata/name")?.as_str().map(str::to_string))
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e.message, "listing nodes for metrics");
                Vec::new()
            }
        };
        state.resource_metrics.retain_nodes(&nodes);
        // As metrics-server: a scrape may take at most 90% of the resolution.
        let timeout = resolution.mul_f64(0.9);
        futures::future::join_all(nodes.iter().map(|n| scrape_node(&state, n, timeout))).await;
        tokio::select! {
            _ = tokio::time::sleep(resolution) => {}
            _ = state.shutdown.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBELET: &str = r#"# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{container="app",namespace="default",pod="web"} 2.5 10000
container_cpu_usage_seconds_total{container="side",namespace="default",pod="web"} 1 10000
container_memory_working_set_bytes{container="app",namespace="default",pod="web"} 1.048576e+06 10000
container_memory_working_set_bytes{container="side",namespace="default",pod="web"} 4096 10000
container_cpu_usage_seconds_total{container="x",namespace="odd\"ns",pod="p"} 1 10000
node_cpu_usage_seconds_total 100 9000
node_memory_working_set_bytes 2e+09 9000
resource_scrape_error 0
garbage line
"#;

    #[test]
    fn parses_kubelet_text() {
        let s = parse_scrape(KUBELET, 1);
        assert_eq!(
            s.node,
            Some(Point {
                cpu_seconds: 100.0,
                memory_bytes: 2e9,
                timestamp_ms: 9000
            })
        );
        // The container without a memory sample is left out.
        assert_eq!(s.containers.len(), 2);
        let (key, p) = &s.containers[0];
        assert_eq!(key, &("default".into(), "web".into(), "app".into()));
        assert_eq!(p.memory_bytes, 1048576.0);
        let s = parse_sample(r#"m{a="x\"y",b="z"} 3 17"#).expect("a labelled sample parses");
        assert_eq!(s.name, "m");
        assert_eq!(s.labels.get("a").map(String::as_str), Some("x\"y"));
        assert_eq!((s.value, s.timestamp), (3.0, Some(17)));
        assert!(parse_sample(r#"m{a="x} 3"#).is_none());
        assert!(parse_sample("m notanumber").is_none());
    }

    #[test]
    fn rates_need_two_samples() {
        let cache = MetricsCache::default();
        cache.record("n1", parse_scrape(KUBELET, 1));
        assert_eq!(cache.node("n1"), None);
        assert_eq!(cache.pod("default", "web"), None);
        let later = KUBELET
            .replace("2.5 10000", "3.5 20000")
            .replace("} 1 10000", "} 1.5 20000")
            .replace("1.048576e+06 10000", "1.048576e+06 20000")
            .replace("4096 10000", "4096 20000")
            .replace("100 9000", "104 19000")
            .replace("2e+09 9000", "2e+09 19000");
        cache.record("n1", parse_scrape(&later, 1));
        let node = cache.node("n1").expect("node usage after two scrapes");
        assert_eq!(node.nanocores, 400_000_000);
        assert_eq!(node.window_ms, 10_000);
        let pod = cache.pod("default", "web").expect("pod usage");
        assert_eq!(pod[0].0, "app");
        assert_eq!(pod[0].1.nanocores, 100_000_000);
        assert_eq!(pod[1].1.nanocores, 50_000_000);
        assert_eq!(pod[0].1.memory_bytes, 1_048_576);
        // The same sample again keeps the rate; a counter reset drops it.
        cache.record("n1", parse_scrape(&later, 1));
        assert!(cache.pod("default", "web").is_some());
        let reset = later.replace("3.5 20000", "0.1 30000");
        cache.record("n1", parse_scrape(&reset, 1));
        assert_eq!(cache.pod("default", "web"), None);
        cache.retain_nodes(&[]);
        assert_eq!(cache.node("n1"), None);
    }

    #[test]
    fn quantities_as_metrics_server_prints_them() {
        assert_eq!(cpu_quantity(0), "0");
        assert_eq!(cpu_quantity(12_000_000), "12m");
        assert_eq!(cpu_quantity(1_234_567), "1234567n");
        assert_eq!(cpu_quantity(1_234_000), "1234u");
        assert_eq!(cpu_quantity(2_000_000_000), "2");
        assert_eq!(cpu_quantity(1_500_000_000), "1500m");
        assert_eq!(memory_quantity(1_048_576), "1Mi");
        assert_eq!(memory_quantity(1_263_616), "1234Ki");
        assert_eq!(memory_quantity(1023), "1023");
        assert_eq!(go_duration(15_000), "15s");
        assert_eq!(go_duration(15_003), "15.003s");
        assert_eq!(go_duration(10_500), "10.5s");
        assert_eq!(go_duration(61_500), "1m1.5s");
        assert_eq!(go_duration(500), "500ms");
        assert_eq!(go_duration(3_600_000), "1h0m0s");
    }
}
