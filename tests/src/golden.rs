//! Upstream golden captures (`shared/upstream/<area>/<case>.json`): loading, replaying against
//! meso, normalising away what varies between runs, and reporting differences.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::Duration;

use anyhow::{Context, Result};
use regex::Regex;
use serde::Deserialize;
use serde_json::{Map, Value};

/// Where the captures live: `$MESO_UPSTREAM_DIR`, else `<workspace>/../shared/upstream`.
pub fn upstream_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("MESO_UPSTREAM_DIR") {
        return PathBuf::from(p);
    }
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/upstream"
    ))
}

#[derive(Debug, Clone, Deserialize)]
pub struct Capture {
    pub request: CapturedRequest,
    pub response: CapturedResponse,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CapturedRequest {
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub query: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Value,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CapturedResponse {
    pub status: u16,
    #[serde(default)]
    pub headers: BTreeMap<String, Value>,
    #[serde(default)]
    pub body: Value,
}

impl CapturedResponse {
    pub fn content_type(&self) -> Option<&str> {
        self.headers.get("Content-Type").and_then(|v| v.as_str())
    }
}

/// Loads `upstream/<rel>` (e.g. `"errors/create-invalid-name-422.json"`).
pub fn load(rel: &str) -> Result<Capture> {
    let p = upstream_dir().join(rel);
    let text = std::fs::read_to_string(&p)
        .with_context(|| format!("reading golden capture {}", p.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing golden capture {}", p.display()))
}

/// Lists the capture files of an area (`"table"`), sorted, as paths relative to upstream/.
pub fn list_area(area: &str) -> Result<Vec<String>> {
    let dir = upstream_dir().join(area);
    let mut v = Vec::new();
    for e in std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
        let e = e.with_context(|| format!("listing {}", dir.display()))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".json") {
            v.push(format!("{area}/{name}"));
        }
    }
    v.sort();
    Ok(v)
}

/// What meso answered.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    /// Parsed JSON when the body is JSON; for watches, the array of event lines; else a string.
    pub body: Value,
    pub raw: String,
}

impl Reply {
    pub fn summary(&self) -> String {
        let mut raw = self.raw.clone();
        if raw.len() > 600 {
            let mut cut = 600;
            while !raw.is_char_boundary(cut) {
                cut -= 1;
            }
            raw.truncate(cut);
            raw.push('…');
        }
        format!("{} ({}) {}", self.status, self.content_type, raw)
    }
}

/// Sends a captured request to `base` (e.g. `https://127.0.0.1:PORT`) and reads the answer.
/// Watch requests (`watch=` in the query) are read until the server ends the stream
/// (bounded by `timeoutSeconds` + 15 s).
pub async fn replay(
    client: &reqwest::Client,
    base: &str,
    req: &CapturedRequest,
    extra_headers: &[(&str, &str)],
) -> Result<Reply> {
    let mut url = format!("{base}{}", req.path);
    if !req.query.is_empty() {
        url.push('?');
        url.push_str(&req.query);
    }
    let is_watch = req
        .query
        .split('&')
        .any(|kv| kv == "watch=1" || kv == "watch=true");
    let mut b = client.request(crate::method(&req.method)?, &url);
    for (k, v) in &req.headers {
        b = b.header(k.as_str(), v.as_str());
    }
    for (k, v) in extra_headers {
        b = b.header(*k, *v);
    }
    match &req.body {
        Value::Null => {}
        Value::String(s) => b = b.body(s.clone()),
        other => b = b.body(serde_json::to_vec(other)?),
    }
    let timeout = if is_watch {
        let secs = req
            .query
            .split('&')
            .find_map(|kv| kv.strip_prefix("timeoutSeconds="))
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(5);
        Duration::from_secs(secs + 15)
    } else {
        Duration::from_secs(30)
    };
    let resp = b
        .timeout(timeout)
        .send()
        .await
        .with_context(|| format!("{} {url}", req.method))?;
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let bytes = resp
        .bytes()
        .await
        .with_context(|| format!("reading the answer to {} {url}", req.method))?;
    let raw = String::from_utf8_lossy(&bytes).into_owned();
    let body = if is_watch && status == 200 {
        let mut events = Vec::new();
        for line in raw.lines().filter(|l| !l.trim().is_empty()) {
            events.push(
                serde_json::from_str(line)
                    .unwrap_or_else(|_| Value::String(format!("<not JSON> {line}"))),
            );
        }
        Value::Array(events)
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(raw.clone()))
    };
    Ok(Reply {
        status,
        content_type,
        body,
        raw,
    })
}

static RFC3339: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
        .expect("static regex")
});
static UUID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
        .expect("static regex")
});
static DIGITS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\d+").expect("static regex"));
static NODEPORT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r":\d+/").expect("static regex"));

/// Replaces what legitimately differs between two servers: uids, timestamps, resourceVersions,
/// continue tokens, allocated IPs/ports, storageVersionHash, managedFields (server-side apply
/// bookkeeping is checked by its own tests), and Table cells that show ages or allocations.
pub fn normalize(v: &Value) -> Value {
    let mut v = v.clone();
    normalize_in_place(&mut v, None);
    if v.get("kind").and_then(|k| k.as_str()) == Some("Table") {
        normalize_table(&mut v);
    }
    v
}

fn normalize_in_place(v: &mut Value, key: Option<&str>) {
    match v {
        Value::Object(m) => {
            m.remove("managedFields");
            m.remove("storageVersionHash");
            for (k, child) in m.iter_mut() {
                normalize_in_place(child, Some(k.as_str()));
            }
        }
        Value::Array(a) => {
            for child in a.iter_mut() {
                normalize_in_place(child, key);
            }
        }
        Value::String(s) => {
            let replacement = match key {
                Some("uid") => Some("<uid>".to_string()),
                Some("resourceVersion") if !s.is_empty() => Some("<rv>".to_string()),
                Some("continue") if !s.is_empty() => Some("<continue>".to_string()),
                Some("serverAddress") => Some("<address>".to_string()),
                Some("clusterIP") | Some("clusterIPs") if s != "None" && !s.is_empty() => {
                    Some("<ip>".to_string())
                }
                _ if RFC3339.is_match(s) => Some("<time>".to_string()),
                _ if UUID.is_match(s) => Some(UUID.replace_all(s, "<uuid>").into_owned()),
                _ => None,
            };
            if let Some(r) = replacement {
                *s = r;
            }
        }
        Value::Number(_) if key == Some("nodePort") => *v = Value::String("<port>".into()),
        _ => {}
    }
}

fn normalize_table(t: &mut Value) {
    let names: Vec<String> = t
        .get("columnDefinitions")
        .and_then(|c| c.as_array())
        .map(|cols| {
            cols.iter()
                .map(|c| {
                    c.get("name")
                        .and_then(|n| n.as_str())
                        .unwrap_or("")
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default();
    let Some(rows) = t.get_mut("rows").and_then(|r| r.as_array_mut()) else {
        return;
    };
    for row in rows {
        let Some(cells) = row.get_mut("cells").and_then(|c| c.as_array_mut()) else {
            continue;
        };
        for (i, cell) in cells.iter_mut().enumerate() {
            let col = names.get(i).map(String::as_str);
            let text = cell.as_str().unwrap_or("");
            match col {
                Some(
                    "Age" | "Created At" | "Last Seen" | "First Seen" | "Duration"
                    | "Last Schedule",
                ) if cell.is_string() && text != "<none>" && text != "<unknown>" => {
                    *cell = Value::String("<age>".into());
                }
                Some("Cluster-IP") if cell.is_string() && text != "None" && text != "<none>" => {
                    *cell = Value::String("<ip>".into());
                }
                Some("Port(s)") => {
                    if let Some(s) = cell.as_str() {
                        *cell = Value::String(NODEPORT.replace_all(s, ":<port>/").into_owned());
                    }
                }
                _ => {}
            }
        }
    }
}

/// Differences between `expected` and `actual` as "path: …" lines (empty when equal).
pub fn diff(expected: &Value, actual: &Value) -> Vec<String> {
    let mut out = Vec::new();
    diff_into("$", expected, actual, &mut out);
    out
}

fn show(v: &Value) -> String {
    let mut s = v.to_string();
    if s.len() > 300 {
        let mut cut = 300;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

fn diff_into(path: &str, e: &Value, a: &Value, out: &mut Vec<String>) {
    match (e, a) {
        (Value::Object(em), Value::Object(am)) => {
            for (k, ev) in em {
                let p = format!("{path}.{k}");
                match am.get(k) {
                    Some(av) => diff_into(&p, ev, av, out),
                    None => out.push(format!("{p}: missing (upstream has {})", show(ev))),
                }
            }
            for (k, av) in am {
                if !em.contains_key(k) {
                    out.push(format!(
                        "{path}.{k}: unexpected {} (upstream has none)",
                        show(av)
                    ));
                }
            }
        }
        (Value::Array(ea), Value::Array(aa)) => {
            if ea.len() != aa.len() {
                out.push(format!(
                    "{path}: {} elements, upstream has {}",
                    aa.len(),
                    ea.len()
                ));
                if ea.len().max(aa.len()) > 20 || ea.iter().chain(aa).any(|x| x.is_object()) {
                    // element-wise diffs of misaligned arrays of objects are noise
                    return;
                }
                out.push(format!("{path}: got {}, upstream {}", show(a), show(e)));
                return;
            }
            for (i, (ev, av)) in ea.iter().zip(aa).enumerate() {
                diff_into(&format!("{path}[{i}]"), ev, av, out);
            }
        }
        _ => {
            if e != a {
                out.push(format!("{path}: got {}, upstream {}", show(a), show(e)));
            }
        }
    }
}

/// How a Status message is compared.
#[derive(Debug, Clone, Copy)]
pub enum Message<'a> {
    /// Byte for byte.
    Exact,
    /// After replacing every run of digits and every UUID (record resourceVersions, uids).
    DigitsNormalized,
    /// Must start with the given text (the rest is Go-library specific wording).
    Prefix(&'a str),
    /// Any message (but there must be one).
    Any,
}

/// Compares two `metav1.Status` bodies: kind, apiVersion, metadata, status, reason, code and
/// details exactly (uids normalised), the message by `rule`.
pub fn compare_status(expected: &Value, actual: &Value, rule: Message<'_>) -> Vec<String> {
    let mut out = Vec::new();
    if !actual.is_object() {
        out.push(format!("body is not a JSON object: {}", show(actual)));
        return out;
    }
    for key in [
        "kind",
        "apiVersion",
        "metadata",
        "status",
        "reason",
        "code",
        "details",
    ] {
        let e = expected.get(key).map(normalize);
        let a = actual.get(key).map(normalize);
        if e != a {
            out.push(format!(
                "Status.{key}: got {}, upstream {}",
                a.as_ref().map(show).unwrap_or_else(|| "(absent)".into()),
                e.as_ref().map(show).unwrap_or_else(|| "(absent)".into())
            ));
        }
    }
    let em = expected
        .get("message")
        .and_then(|m| m.as_str())
        .unwrap_or("");
    let am = actual.get("message").and_then(|m| m.as_str());
    match (rule, am) {
        (_, None) => out.push("Status.message: absent".into()),
        (Message::Exact, Some(am)) if am != em => {
            out.push(format!("Status.message: got {am:?}, upstream {em:?}"))
        }
        (Message::DigitsNormalized, Some(am)) => {
            let n = |s: &str| {
                DIGITS
                    .replace_all(&UUID.replace_all(s, "<uuid>"), "N")
                    .into_owned()
            };
            if n(am) != n(em) {
                out.push(format!(
                    "Status.message: got {am:?}, upstream {em:?} (digits/uids ignored)"
                ));
            }
        }
        (Message::Prefix(p), Some(am)) if !am.starts_with(p) => out.push(format!(
            "Status.message: got {am:?}, should start with {p:?} (upstream {em:?})"
        )),
        _ => {}
    }
    out
}

/// Compares a reply with a capture's response: status code, Content-Type (when `check_ct`),
/// and the normalised body.
pub fn compare_reply(cap: &CapturedResponse, reply: &Reply, check_ct: bool) -> Vec<String> {
    let mut out = Vec::new();
    if cap.status != reply.status {
        out.push(format!(
            "status: got {}, upstream {}; body: {}",
            reply.status,
            cap.status,
            reply.summary()
        ));
        return out;
    }
    if check_ct {
        if let Some(ct) = cap.content_type() {
            if ct != reply.content_type {
                out.push(format!(
                    "Content-Type: got {:?}, upstream {ct:?}",
                    reply.content_type
                ));
            }
        }
    }
    out.extend(diff(&normalize(&cap.body), &normalize(&reply.body)));
    out
}

/// Builds `{name -> element}` from an array of objects keyed by `key` (for order-insensitive
/// comparisons of discovery documents).
pub fn index_by(v: &Value, key: &str) -> BTreeMap<String, Value> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| Some((x.get(key)?.as_str()?.to_string(), x.clone())))
                .collect()
        })
        .unwrap_or_default()
}

/// A JSON object from pairs (small helper for building expectations).
pub fn obj(pairs: &[(&str, Value)]) -> Value {
    let mut m = Map::new();
    for (k, v) in pairs {
        m.insert((*k).to_string(), v.clone());
    }
    Value::Object(m)
}

/// Formats a list of mismatches per case into one report; `Ok` when there are none.
pub fn report(title: &str, failures: &[(String, Vec<String>)], total: usize) -> Result<()> {
    let failed: Vec<_> = failures.iter().filter(|(_, d)| !d.is_empty()).collect();
    if failed.is_empty() {
        eprintln!("{title}: all {total} cases match upstream");
        return Ok(());
    }
    let mut s = format!(
        "{title}: {} of {total} cases differ from upstream\n",
        failed.len()
    );
    for (case, d) in failed {
        s.push_str(&format!("--- {case}\n"));
        for line in d.iter().take(25) {
            s.push_str(&format!("    {line}\n"));
        }
        if d.len() > 25 {
            s.push_str(&format!("    … and {} more\n", d.len() - 25));
        }
    }
    anyhow::bail!(s)
}

/// meso serves `metrics.k8s.io` itself (metrics-server built in); the upstream captures come
/// from a cluster without metrics-server.
pub fn without_metrics_group(body: &mut Value) {
    for key in ["items", "groups"] {
        if let Some(list) = body.get_mut(key).and_then(|l| l.as_array_mut()) {
            list.retain(|g| {
                g["metadata"]["name"] != "metrics.k8s.io" && g["name"] != "metrics.k8s.io"
            });
        }
    }
}
