//! OpenAPI v2/v3 as kubectl and Helm use it (issue 3, "How it is checked"): `kubectl explain`
//! with kubectl 1.32 and 1.35, the documents compared structurally with the upstream captures in
//! `shared/upstream/openapi` (paths, operations, GVKs, schema properties and their
//! `x-kubernetes-*` extensions), and ETag / `hash` caching as upstream's kube-openapi handlers.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use meso_tests::golden::{self, report};
use meso_tests::{run_bounded, Kubectl, MesoServer};
use serde_json::Value;

meso_tests::for_each_kubectl!(explain);

fn explain(k: &Kubectl) -> Result<()> {
    let srv = MesoServer::start()?;

    let out = srv.kubectl_ok(k, &["explain", "deployment.spec.strategy.rollingUpdate"])?;
    for want in [
        "GROUP:      apps",
        "KIND:       Deployment",
        "VERSION:    v1",
        "FIELD: rollingUpdate <RollingUpdateDeployment>",
        "maxSurge\t<IntOrString>",
        "maxUnavailable\t<IntOrString>",
        "The maximum number of pods that can be scheduled above the desired number",
    ] {
        ensure!(
            out.contains(want),
            "explain deployment.spec.strategy.rollingUpdate lacks {want:?}:\n{out}"
        );
    }

    let out = srv.kubectl_ok(k, &["explain", "pod", "--recursive"])?;
    for want in [
        "KIND:       Pod",
        "VERSION:    v1",
        "\n  apiVersion\t<string>\n",
        "\n  spec\t<PodSpec>\n",
        "\n    containers\t<[]Container> -required-\n",
        "\n      livenessProbe\t<Probe>\n",
        "\n        httpGet\t<HTTPGetAction>\n",
        "\n      ports\t<[]ContainerPort>\n",
        "\n        containerPort\t<integer> -required-\n",
        "\n  status\t<PodStatus>\n",
        "\n    podIPs\t<[]PodIP>\n",
    ] {
        ensure!(
            out.contains(want),
            "explain pod --recursive lacks {want:?}:\n{}",
            &out[..out.len().min(4000)]
        );
    }
    let lines = out.lines().count();
    ensure!(
        lines > 500,
        "explain pod --recursive printed only {lines} lines"
    );

    let out = srv.kubectl_ok(
        k,
        &["explain", "cronjob.spec.jobTemplate.spec.backoffLimit"],
    )?;
    ensure!(
        out.contains("GROUP:      batch") && out.contains("FIELD: backoffLimit <integer>"),
        "explain cronjob…backoffLimit:\n{out}"
    );
    let out = srv.kubectl_ok(k, &["explain", "svc.spec.ports.targetPort"])?;
    ensure!(
        out.contains("FIELD: targetPort <IntOrString>"),
        "explain svc.spec.ports.targetPort:\n{out}"
    );

    let o = srv.kubectl(k, &["explain", "deployment.spec.nosuch"])?;
    let err = String::from_utf8_lossy(&o.stderr);
    ensure!(
        !o.status.success() && err.contains("field \"nosuch\" does not exist"),
        "explain of a missing field: {err}"
    );

    // `--output=plaintext-openapiv2` reads /openapi/v2 as protobuf (gnostic's Document).
    let o = srv.kubectl(
        k,
        &[
            "explain",
            "deployment.spec.strategy",
            "--output=plaintext-openapiv2",
            "-v=6",
        ],
    )?;
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    ensure!(
        o.status.success(),
        "explain --output=plaintext-openapiv2 failed:\n{err}"
    );
    for want in [
        "KIND:     Deployment",
        "VERSION:  apps/v1",
        "RESOURCE: strategy <Object>",
        "rollingUpdate\t<Object>",
        "Rolling update config params. Present only if DeploymentStrategyType =",
    ] {
        ensure!(
            out.contains(want),
            "explain --output=plaintext-openapiv2 lacks {want:?}:\n{out}"
        );
    }
    ensure!(
        err.contains("/openapi/v2") && err.contains("200 OK"),
        "kubectl did not read /openapi/v2:\n{err}"
    );

    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Structural comparison with the upstream documents
// ---------------------------------------------------------------------------------------------

const METHODS: [&str; 7] = ["get", "put", "post", "delete", "patch", "head", "options"];

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn set_diff(what: &str, up: &BTreeSet<String>, me: &BTreeSet<String>, out: &mut Vec<String>) {
    let missing: Vec<&String> = up.difference(me).collect();
    let extra: Vec<&String> = me.difference(up).collect();
    if !missing.is_empty() {
        out.push(format!("{what}: {} missing: {missing:?}", missing.len()));
    }
    if !extra.is_empty() {
        out.push(format!(
            "{what}: {} not in upstream: {extra:?}",
            extra.len()
        ));
    }
}

/// Follows a `$ref` to `#/parameters/…` (v2) or `#/components/parameters/…` (v3).
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(|r| r.as_str()) {
        Some(r) => {
            let mut cur = doc;
            for part in r.trim_start_matches("#/").split('/') {
                cur = &cur[part];
            }
            cur
        }
        None => v,
    }
}

fn param_names(doc: &Value, path_item: &Value, op: &Value) -> BTreeSet<String> {
    path_item["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(op["parameters"].as_array().into_iter().flatten())
        .map(|p| {
            let p = resolve(doc, p);
            format!(
                "{}:{}",
                p["in"].as_str().unwrap_or("?"),
                p["name"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

fn extensions(v: &Value) -> BTreeMap<String, Value> {
    v.as_object()
        .map(|m| {
            m.iter()
                // x-kubernetes-unions are hints k8s-openapi does not carry (README, limits).
                .filter(|(k, _)| k.starts_with("x-kubernetes-") && *k != "x-kubernetes-unions")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// What matters of a property to clients: its type/format, the schema it refers to, the item
/// type of arrays, the value type of maps, and the `x-kubernetes-*` extensions.
fn property_shape(p: &Value) -> Value {
    let reference = |v: &Value| -> Value {
        v.get("$ref")
            .cloned()
            .or_else(|| v["allOf"][0].get("$ref").cloned())
            .unwrap_or(Value::Null)
    };
    serde_json::json!({
        "type": p.get("type"),
        "format": p.get("format"),
        "ref": reference(p),
        "items": {"type": p["items"].get("type"), "ref": reference(&p["items"])},
        "additionalProperties": {
            "type": p["additionalProperties"].get("type"),
            "ref": reference(&p["additionalProperties"]),
        },
        "extensions": extensions(p),
    })
}

fn compare_schemas(label: &str, up: &Value, me: &Value, results: &mut Vec<(String, Vec<String>)>) {
    let mut out = Vec::new();
    set_diff("schemas", &keys(up), &keys(me), &mut out);
    for (name, us) in up.as_object().into_iter().flatten() {
        let Some(ms) = me.get(name) else { continue };
        if us.get("type") != ms.get("type") {
            out.push(format!(
                "{name}: type {:?}, upstream {:?}",
                ms.get("type"),
                us.get("type")
            ));
        }
        let req = |s: &Value| -> BTreeSet<String> {
            s["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        };
        if req(us) != req(ms) {
            out.push(format!(
                "{name}: required {:?}, upstream {:?}",
                req(ms),
                req(us)
            ));
        }
        if extensions(us) != extensions(ms) {
            out.push(format!(
                "{name}: extensions {:?}, upstream {:?}",
                extensions(ms),
                extensions(us)
            ));
        }
        let (up_props, me_props) = (&us["properties"], &ms["properties"]);
        let mut pd = Vec::new();
        set_diff(
            &format!("{name} properties"),
            &keys(up_props),
            &keys(me_props),
            &mut pd,
        );
        out.extend(pd);
        for (pname, up_p) in up_props.as_object().into_iter().flatten() {
            let Some(me_p) = me_props.get(pname) else {
                continue;
            };
            let (a, b) = (property_shape(up_p), property_shape(me_p));
            if a != b {
                out.push(format!("{name}.{pname}: {b}, upstream {a}"));
            }
        }
    }
    results.push((format!("{label}: schemas"), out));
}

fn compare_paths(
    label: &str,
    up_doc: &Value,
    me_doc: &Value,
    results: &mut Vec<(String, Vec<String>)>,
) {
    let (up, me) = (&up_doc["paths"], &me_doc["paths"]);
    let mut out = Vec::new();
    set_diff("paths", &keys(up), &keys(me), &mut out);
    results.push((format!("{label}: paths"), out));
    let mut ops = Vec::new();
    for (path, up_item) in up.as_object().into_iter().flatten() {
        let Some(me_item) = me.get(path) else {
            continue;
        };
        for m in METHODS {
            match (up_item.get(m), me_item.get(m)) {
                (None, None) => {}
                (Some(_), None) => ops.push(format!("{m} {path}: missing")),
                (None, Some(_)) => ops.push(format!("{m} {path}: not in upstream")),
                (Some(u), Some(x)) => {
                    for key in [
                        "operationId",
                        "x-kubernetes-action",
                        "x-kubernetes-group-version-kind",
                    ] {
                        if u.get(key) != x.get(key) {
                            ops.push(format!(
                                "{m} {path}: {key} {:?}, upstream {:?}",
                                x.get(key),
                                u.get(key)
                            ));
                        }
                    }
                    let (pu, px) = (
                        param_names(up_doc, up_item, u),
                        param_names(me_doc, me_item, x),
                    );
                    set_diff(&format!("{m} {path} parameters"), &pu, &px, &mut ops);
                }
            }
        }
    }
    results.push((format!("{label}: operations"), ops));
}

/// Every `x-kubernetes-group-version-kind` of the schemas, as "name -> [g/v/k]".
fn gvks(schemas: &Value) -> BTreeMap<String, Value> {
    schemas
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(n, s)| {
            s.get("x-kubernetes-group-version-kind")
                .map(|g| (n.clone(), g.clone()))
        })
        .collect()
}

fn compare_gvks(label: &str, up: &Value, me: &Value, results: &mut Vec<(String, Vec<String>)>) {
    let (u, m) = (gvks(up), gvks(me));
    let mut out = Vec::new();
    for (name, g) in &u {
        match m.get(name) {
            None => out.push(format!("{name}: no GVK (upstream {g})")),
            Some(x) if x != g => out.push(format!("{name}: GVK {x}, upstream {g}")),
            _ => {}
        }
    }
    for name in m.keys().filter(|n| !u.contains_key(*n)) {
        out.push(format!("{name}: GVK {} not in upstream", m[name]));
    }
    results.push((format!("{label}: group-version-kinds"), out));
}

async fn get_json(client: &reqwest::Client, url: &str) -> Result<Value> {
    let r = client
        .get(url)
        .header("Accept", "application/json")
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = r.status();
    let bytes = r.bytes().await.with_context(|| format!("GET {url}"))?;
    ensure!(
        status.as_u16() == 200,
        "GET {url}: {status} {}",
        String::from_utf8_lossy(&bytes[..bytes.len().min(500)])
    );
    serde_json::from_slice(&bytes).with_context(|| format!("GET {url}: not JSON"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_v3_matches_upstream_structure() -> Result<()> {
    let srv = MesoServer::start()?;
    let client = srv.http()?;
    let base = srv.base_url()?;
    let mut results = Vec::new();

    // The index names every captured group-version.
    let up_index = golden::load("openapi/v3-index.json")?.response.body;
    let me_index = get_json(&client, &format!("{base}/openapi/v3")).await?;
    let mut out = Vec::new();
    set_diff(
        "index",
        &keys(&up_index["paths"]),
        &keys(&me_index["paths"]),
        &mut out,
    );
    for (gv, e) in me_index["paths"].as_object().into_iter().flatten() {
        let url = e["serverRelativeURL"].as_str().unwrap_or("");
        let prefix = format!("/openapi/v3/{gv}?hash=");
        let hash = url.strip_prefix(&prefix).unwrap_or("");
        if hash.len() != 128
            || !hash
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
        {
            out.push(format!(
                "{gv}: serverRelativeURL {url:?} is not {prefix}<128 upper-case hex digits>"
            ));
        }
    }
    results.push(("v3 index".to_string(), out));

    for (file, gv) in [
        ("openapi/v3-api-v1.json", "api/v1"),
        ("openapi/v3-apis-apps-v1.json", "apis/apps/v1"),
        ("openapi/v3-apis-batch-v1.json", "apis/batch/v1"),
    ] {
        let up = golden::load(file)?.response.body;
        let me = get_json(&client, &format!("{base}/openapi/v3/{gv}")).await?;
        let label = format!("v3 {gv}");
        let mut top = Vec::new();
        if me["openapi"] != up["openapi"] {
            top.push(format!(
                "openapi version {}, upstream {}",
                me["openapi"], up["openapi"]
            ));
        }
        results.push((format!("{label}: header"), top));
        compare_paths(&label, &up, &me, &mut results);
        compare_gvks(
            &label,
            &up["components"]["schemas"],
            &me["components"]["schemas"],
            &mut results,
        );
        compare_schemas(
            &label,
            &up["components"]["schemas"],
            &me["components"]["schemas"],
            &mut results,
        );
    }
    let total = results.len();
    report("OpenAPI v3 vs upstream", &results, total)
}

fn load_v2_capture() -> Result<Value> {
    let p = golden::upstream_dir().join("openapi/v2.json.gz");
    let mut cmd = std::process::Command::new("gzip");
    cmd.arg("-dc").arg(&p);
    let out = run_bounded(cmd, None, Duration::from_secs(60))
        .with_context(|| format!("gzip -dc {}", p.display()))?;
    ensure!(out.status.success(), "gzip -dc {} failed", p.display());
    serde_json::from_slice(&out.stdout).context("parsing openapi/v2.json.gz")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_v2_matches_upstream_structure() -> Result<()> {
    let srv = MesoServer::start()?;
    let client = srv.http()?;
    let base = srv.base_url()?;
    let up = load_v2_capture()?;
    let me = get_json(&client, &format!("{base}/openapi/v2")).await?;
    let mut results = Vec::new();
    let mut top = Vec::new();
    if me["swagger"] != "2.0" {
        top.push(format!("swagger {}", me["swagger"]));
    }
    if me["info"]["title"] != up["info"]["title"] {
        top.push(format!(
            "info.title {}, upstream {}",
            me["info"]["title"], up["info"]["title"]
        ));
    }
    results.push(("v2 header".to_string(), top));
    compare_paths("v2", &up, &me, &mut results);
    compare_gvks("v2", &up["definitions"], &me["definitions"], &mut results);
    compare_schemas("v2", &up["definitions"], &me["definitions"], &mut results);
    let total = results.len();
    report("OpenAPI v2 vs upstream", &results, total)
}

// ---------------------------------------------------------------------------------------------
// ETag / hash caching
// ---------------------------------------------------------------------------------------------

/// An admin client that does not follow redirects (to see upstream's 301 for a stale hash).
fn no_redirect_client(srv: &MesoServer) -> Result<reqwest::Client> {
    let c = srv.credentials()?;
    let ca = reqwest::Certificate::from_pem(&c.ca_pem).context("CA")?;
    let mut pem = c.cert_pem.clone();
    pem.push(b'\n');
    pem.extend_from_slice(&c.key_pem);
    let id = reqwest::Identity::from_pem(&pem).context("admin identity")?;
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .identity(id)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("building the client")
}

struct Got {
    status: u16,
    content_type: String,
    etag: Option<String>,
    cache_control: String,
    location: Option<String>,
    expires: Option<String>,
    body: Vec<u8>,
}

async fn get(client: &reqwest::Client, url: &str, if_none_match: Option<&str>) -> Result<Got> {
    get_as(client, url, "application/json", if_none_match).await
}

async fn get_as(
    client: &reqwest::Client,
    url: &str,
    accept: &str,
    if_none_match: Option<&str>,
) -> Result<Got> {
    let mut b = client
        .get(url)
        .header("Accept", accept)
        .timeout(Duration::from_secs(60));
    if let Some(e) = if_none_match {
        b = b.header("If-None-Match", e);
    }
    let r = b.send().await.with_context(|| format!("GET {url}"))?;
    let h = |n: &str| {
        r.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (content_type, etag, cache_control, location, expires) = (
        h("content-type").unwrap_or_default(),
        h("etag"),
        h("cache-control").unwrap_or_default(),
        h("location"),
        h("expires"),
    );
    let status = r.status().as_u16();
    let body = r.bytes().await?.to_vec();
    Ok(Got {
        status,
        content_type,
        etag,
        cache_control,
        location,
        expires,
        body,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_etag_hash_and_304() -> Result<()> {
    let srv = MesoServer::start()?;
    let client = no_redirect_client(&srv)?;
    let base = srv.base_url()?;
    let index = get_json(&client, &format!("{base}/openapi/v3")).await?;
    let mut problems = Vec::new();

    for gv in ["apis/apps/v1", "api/v1", "apis/batch/v1"] {
        let rel = index["paths"][gv]["serverRelativeURL"]
            .as_str()
            .with_context(|| format!("index has no {gv}"))?
            .to_string();
        let hash = rel.split("hash=").nth(1).unwrap_or("").to_string();
        let plain = format!("{base}/openapi/v3/{gv}");

        let g = get(&client, &plain, None).await?;
        if g.status != 200 {
            problems.push(format!("GET {plain}: {}", g.status));
            continue;
        }
        let want_etag = format!("\"{hash}\"");
        if g.etag.as_deref() != Some(want_etag.as_str()) {
            problems.push(format!(
                "{gv}: ETag {:?}, want the index hash {want_etag}",
                g.etag
            ));
        }
        if g.cache_control.contains("immutable") {
            problems.push(format!(
                "{gv}: unhashed URL must not be cached as immutable: {:?}",
                g.cache_control
            ));
        }
        let plain_body = g.body;

        let g = get(&client, &plain, Some(&want_etag)).await?;
        if g.status != 304 || !g.body.is_empty() {
            problems.push(format!(
                "{gv}: If-None-Match with the ETag: {} with {} body bytes, want 304 and none",
                g.status,
                g.body.len()
            ));
        }
        let g = get(&client, &plain, Some("\"stale\"")).await?;
        if g.status != 200 {
            problems.push(format!(
                "{gv}: If-None-Match with a stale ETag: {}",
                g.status
            ));
        }

        let g = get(&client, &format!("{base}{rel}"), None).await?;
        if g.status != 200 || g.body != plain_body {
            problems.push(format!(
                "{gv}: hashed URL: {} (same body: {})",
                g.status,
                g.body == plain_body
            ));
        }
        if g.cache_control != "public, immutable" {
            problems.push(format!(
                "{gv}: hashed URL: Cache-Control {:?}, want \"public, immutable\"",
                g.cache_control
            ));
        }
        if g.expires.is_none() {
            problems.push(format!(
                "{gv}: hashed URL: no Expires header (upstream: one year ahead)"
            ));
        }

        let stale = format!("{base}/openapi/v3/{gv}?hash=0123ABCD");
        let g = get(&client, &stale, None).await?;
        if g.status != 301 || g.location.as_deref() != Some(rel.as_str()) {
            problems.push(format!(
                "{gv}: stale hash: {} Location {:?}, want 301 to {rel}",
                g.status, g.location
            ));
        }
    }

    // v2: ETag and 304, as JSON and as protobuf (which keeps the JSON document's ETag).
    let v2 = format!("{base}/openapi/v2");
    let g = get(&client, &v2, None).await?;
    ensure!(g.status == 200, "GET /openapi/v2: {}", g.status);
    let json_len = g.body.len();
    let json_etag = g.etag.clone();
    for accept in [
        "application/json",
        "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
    ] {
        let g = get_as(&client, &v2, accept, None).await?;
        ensure!(g.status == 200, "GET /openapi/v2 as {accept}: {}", g.status);
        let proto = accept.contains("protobuf");
        let want_type = if proto {
            "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
        } else {
            "application/json"
        };
        if g.content_type != want_type {
            problems.push(format!(
                "/openapi/v2 as {accept}: Content-Type {:?}, want {want_type}",
                g.content_type
            ));
        }
        // gnostic's Document starts with field 1 (swagger = "2.0"): 0x0a 0x03 "2.0".
        if proto && !g.body.starts_with(b"\x0a\x032.0") {
            problems.push(format!(
                "/openapi/v2 as protobuf does not start with swagger=2.0: {:?}",
                &g.body[..g.body.len().min(16)]
            ));
        }
        if proto && (g.body.len() < 100_000 || g.body.len() >= json_len) {
            problems.push(format!(
                "/openapi/v2 as protobuf: {} bytes (JSON: {json_len})",
                g.body.len()
            ));
        }
        if g.etag != json_etag {
            problems.push(format!(
                "/openapi/v2 as {accept}: ETag {:?}, want the JSON document's {json_etag:?}",
                g.etag
            ));
        }
        match g.etag {
            None => problems.push(format!("/openapi/v2 as {accept} has no ETag")),
            Some(etag) => {
                let g2 = get_as(&client, &v2, accept, Some(&etag)).await?;
                if g2.status != 304 || !g2.body.is_empty() {
                    problems.push(format!(
                        "/openapi/v2 as {accept} If-None-Match: {} with {} bytes, want 304",
                        g2.status,
                        g2.body.len()
                    ));
                }
            }
        }
    }
    let g = get_as(&client, &v2, "text/html", None).await?;
    if g.status != 406 {
        problems.push(format!(
            "/openapi/v2 as text/html: {}, want 406 as upstream",
            g.status
        ));
    }
    ensure!(
        problems.is_empty(),
        "OpenAPI caching differs from upstream:\n{}",
        problems.join("\n")
    );
    Ok(())
}
