//! Replays of the upstream captures in `shared/upstream/{discovery,table,list,watch}` against
//! meso, compared after normalising uids, timestamps, resourceVersions, continue tokens,
//! allocated addresses and storageVersionHash. Each test reports every differing case at once.

use std::time::Duration;

use anyhow::{Context, Result};
use meso_tests::golden::{self, compare_reply, diff, normalize, Capture, CapturedRequest};
use meso_tests::MesoServer;
use serde_json::{json, Map, Value};

type Results = Vec<(String, Vec<String>)>;

/// Rebuilds a discovery document so that lists keyed by name compare order-insensitively;
/// the order of names is compared separately ("order" entries).
fn discovery_shape(v: &Value) -> Value {
    let v = normalize(v);
    let mut out = Map::new();
    let by = |list: &Value, key: &str| -> (Value, Value) {
        let idx = golden::index_by(list, key);
        let order: Vec<Value> = list
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.get(key).cloned()).collect())
            .unwrap_or_default();
        (
            Value::Object(idx.into_iter().collect()),
            Value::Array(order),
        )
    };
    match v.get("kind").and_then(|k| k.as_str()) {
        Some("APIResourceList") => {
            for (k, x) in v.as_object().into_iter().flatten() {
                if k != "resources" {
                    out.insert(k.clone(), x.clone());
                }
            }
            let (idx, order) = by(&v["resources"], "name");
            out.insert("resources".into(), idx);
            out.insert("resources order".into(), order);
        }
        Some("APIGroupList") => {
            out.insert("kind".into(), v["kind"].clone());
            out.insert("apiVersion".into(), v["apiVersion"].clone());
            let (idx, order) = by(&v["groups"], "name");
            out.insert("groups".into(), idx);
            out.insert("groups order".into(), order);
        }
        Some("APIGroupDiscoveryList") => {
            out.insert("kind".into(), v["kind"].clone());
            out.insert("apiVersion".into(), v["apiVersion"].clone());
            out.insert("metadata".into(), v["metadata"].clone());
            let mut groups = Map::new();
            let mut order = Vec::new();
            for g in v["items"].as_array().into_iter().flatten() {
                let name = g["metadata"]["name"].as_str().unwrap_or("").to_string();
                order.push(Value::String(name.clone()));
                let mut gm = Map::new();
                gm.insert("metadata".into(), g["metadata"].clone());
                let mut vorder = Vec::new();
                for ver in g["versions"].as_array().into_iter().flatten() {
                    let vname = ver["version"].as_str().unwrap_or("").to_string();
                    vorder.push(Value::String(vname.clone()));
                    let mut vm = Map::new();
                    for (k, x) in ver.as_object().into_iter().flatten() {
                        if k != "resources" {
                            vm.insert(k.clone(), x.clone());
                        }
                    }
                    let (idx, rorder) = by(&ver["resources"], "resource");
                    vm.insert("resources".into(), idx);
                    vm.insert("resources order".into(), rorder);
                    gm.insert(format!("version {vname}"), Value::Object(vm));
                }
                gm.insert("versions order".into(), Value::Array(vorder));
                groups.insert(name, Value::Object(gm));
            }
            out.insert("items".into(), Value::Object(groups));
            out.insert("items order".into(), Value::Array(order));
        }
        _ => return v,
    }
    Value::Object(out)
}

/// Some discovery captures were taken after the capture session created the CRD
/// `widgets.golden.example.com`; a fresh meso has no such group.
fn without_capture_crd_group(body: &mut Value) {
    for key in ["items", "groups"] {
        if let Some(list) = body.get_mut(key).and_then(|l| l.as_array_mut()) {
            list.retain(|g| {
                g["metadata"]["name"] != "golden.example.com" && g["name"] != "golden.example.com"
            });
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_matches_upstream() -> Result<()> {
    let srv = MesoServer::start()?;
    let client = srv.http()?;
    let base = srv.base_url()?;
    let mut results: Results = Vec::new();
    let files = golden::list_area("discovery")?;
    for file in &files {
        let mut cap = golden::load(file)?;
        without_capture_crd_group(&mut cap.response.body);
        let reply = match golden::replay(&client, &base, &cap.request, &[]).await {
            Ok(mut r) => {
                golden::without_metrics_group(&mut r.body);
                r
            }
            Err(e) => {
                results.push((file.clone(), vec![format!("request failed: {e:#}")]));
                continue;
            }
        };
        let mut problems = Vec::new();
        if reply.status != cap.response.status {
            problems.push(format!(
                "status {} instead of {}: {}",
                reply.status,
                cap.response.status,
                reply.summary()
            ));
            results.push((file.clone(), problems));
            continue;
        }
        let ct = cap.response.content_type().unwrap_or("");
        if ct.starts_with("application/json") && ct != reply.content_type {
            problems.push(format!(
                "Content-Type {:?}, upstream {ct:?}",
                reply.content_type
            ));
        }
        match file.as_str() {
            "discovery/version.json" => {
                let (e, a) = (&cap.response.body, &reply.body);
                for k in [
                    "major",
                    "minor",
                    "emulationMajor",
                    "emulationMinor",
                    "minCompatibilityMajor",
                    "minCompatibilityMinor",
                    "compiler",
                    "platform",
                ] {
                    if e.get(k) != a.get(k) && !(k == "compiler" && a.get(k).is_some()) {
                        problems.push(format!("{k}: got {:?}, upstream {:?}", a.get(k), e.get(k)));
                    }
                }
                let keys = |v: &Value| -> Vec<String> {
                    v.as_object()
                        .map(|m| m.keys().cloned().collect())
                        .unwrap_or_default()
                };
                if keys(e) != keys(a) {
                    problems.push(format!("fields {:?}, upstream {:?}", keys(a), keys(e)));
                }
                let git = a["gitVersion"].as_str().unwrap_or("");
                if !git.starts_with("v1.36.") {
                    problems.push(format!("gitVersion {git:?} is not v1.36.x"));
                }
            }
            "discovery/healthz.json" => {
                if reply.raw != "ok" {
                    problems.push(format!("body {:?}, upstream \"ok\"", reply.raw));
                }
            }
            "discovery/livez-verbose.json" | "discovery/readyz-verbose.json" => {
                let what = if file.contains("livez") {
                    "livez"
                } else {
                    "readyz"
                };
                let lines: Vec<&str> = reply.raw.lines().collect();
                let last = format!("{what} check passed");
                if lines.last() != Some(&last.as_str()) {
                    problems.push(format!("last line should be {last:?}: {:?}", reply.raw));
                }
                if lines.len() < 2
                    || !lines[..lines.len() - 1]
                        .iter()
                        .all(|l| l.starts_with("[+]") && l.ends_with(" ok"))
                {
                    problems.push(format!(
                        "check lines should read \"[+]name ok\": {:?}",
                        reply.raw
                    ));
                }
                if !lines.contains(&"[+]ping ok") {
                    problems.push("no [+]ping ok line".into());
                }
            }
            _ => problems.extend(diff(
                &discovery_shape(&cap.response.body),
                &discovery_shape(&reply.body),
            )),
        }
        results.push((file.clone(), problems));
    }
    golden::report("discovery", &results, files.len())
}

/// Configmaps list-0..list-4 with the labels the list captures assume.
async fn create_list_configmaps(client: &reqwest::Client, base: &str) -> Result<()> {
    let labels = [
        json!({"a": "x"}),
        json!({"a": "y"}),
        json!({"a": "x", "b": "1"}),
        json!({"a": "z"}),
        json!(null),
    ];
    for (i, l) in labels.iter().enumerate() {
        let mut meta = json!({"name": format!("list-{i}")});
        if !l.is_null() {
            meta["labels"] = l.clone();
        }
        send_ok(
            client,
            base,
            "POST",
            "/api/v1/namespaces/golden/configmaps",
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
                    "data": {"i": i.to_string()}}),
        )
        .await?;
    }
    Ok(())
}

async fn send(
    client: &reqwest::Client,
    base: &str,
    method: &str,
    path: &str,
    body: &Value,
    content_type: &str,
) -> Result<(u16, Value)> {
    let mut b = client
        .request(meso_tests::method(method)?, format!("{base}{path}"))
        .header("Content-Type", content_type)
        .header("Accept", "application/json");
    if !body.is_null() {
        b = b.body(serde_json::to_vec(body)?);
    }
    let resp = b.send().await.with_context(|| format!("{method} {path}"))?;
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

async fn send_ok(
    client: &reqwest::Client,
    base: &str,
    method: &str,
    path: &str,
    body: &Value,
) -> Result<Value> {
    let (status, v) = send(client, base, method, path, body, "application/json").await?;
    anyhow::ensure!(
        (200..300).contains(&status),
        "{method} {path}: {status} {v}"
    );
    Ok(v)
}

/// Tables meso must print like upstream for issue 2 (and customresourcedefinitions). The others
/// (widgets: see tests/crd.rs, endpointslices, horizontalpodautoscalers, ingresses, roles) are only compared by
/// the ignored full test.
const TABLES_IN_SCOPE: &[&str] = &[
    "configmaps",
    "customresourcedefinitions",
    "cronjobs",
    "daemonsets",
    "deployments",
    "endpoints",
    "events",
    "jobs",
    "leases",
    "namespaces",
    "nodes",
    "persistentvolumeclaims",
    "pod-single",
    "pods",
    "pods-accept-v1-only",
    "replicasets",
    "secrets",
    "serviceaccounts",
    "services",
    "statefulsets",
];

/// Recreates, through the captured create requests, the objects the table captures show.
/// Returns per request the differences from upstream: the status code only, or with `full`
/// the whole normalised answer.
async fn create_capture_objects(
    client: &reqwest::Client,
    base: &str,
    full: bool,
) -> Result<Results> {
    let mut problems: Results = Vec::new();
    let mut defaults = golden::list_area("defaults")?;
    let first = [
        "defaults/namespace.json",
        "defaults/node.json",
        "defaults/customresourcedefinition.json",
    ];
    defaults.retain(|f| !first.contains(&f.as_str()));
    let order: Vec<String> = first
        .iter()
        .map(|s| s.to_string())
        .chain(defaults)
        .collect();
    for file in &order {
        let cap = golden::load(file)?;
        if cap.request.method == "GET" {
            continue;
        }
        if file.ends_with("custom-resource-widget.json") {
            // the CRD must be served before a widget can be created
            let (c, b) = (client.clone(), base.to_string());
            let _ = meso_tests::poll_until(Duration::from_secs(10), "widgets served", || {
                let (c, b) = (c.clone(), b.clone());
                meso_tests::block_on_thread(move || async move {
                    let r = c
                        .get(format!(
                            "{b}/apis/golden.example.com/v1/namespaces/golden/widgets"
                        ))
                        .send()
                        .await?;
                    Ok((r.status().as_u16() == 200).then_some(()))
                })
            });
        }
        let p = match golden::replay(client, base, &cap.request, &[]).await {
            Ok(reply) if full => compare_reply(&cap.response, &reply, true),
            Ok(reply) if reply.status == cap.response.status => Vec::new(),
            Ok(reply) => vec![reply.summary()],
            Err(e) => vec![format!("{e:#}")],
        };
        problems.push((file.clone(), p));
    }
    create_list_configmaps(client, base).await?;
    Ok(problems)
}

/// What the in-scope comparison leaves out, each for a reason outside issue 2:
/// - row objects: only kind/apiVersion/metadata (defaulted specs are compared by the ignored
///   `tables_and_defaults_match_upstream_fully`);
/// - services: the allocated Cluster-IP and nodePort (IP/port allocation comes later);
/// - jobs: the generated controller-uid selector and labels (job defaulting comes later);
/// - persistentvolumeclaims: the kubernetes.io/pvc-protection finalizer (an admission plugin).
fn relax_table(file: &str, v: &mut Value) {
    let cols: Vec<String> = v["columnDefinitions"]
        .as_array()
        .map(|c| {
            c.iter()
                .map(|d| d["name"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default();
    let is_jobs = file.contains("/jobs");
    for row in v["rows"].as_array_mut().into_iter().flatten() {
        if let Some(obj) = row.get_mut("object").and_then(|o| o.as_object_mut()) {
            obj.retain(|k, _| k == "kind" || k == "apiVersion" || k == "metadata");
            if let Some(m) = obj.get_mut("metadata").and_then(|m| m.as_object_mut()) {
                if is_jobs {
                    m.remove("labels");
                }
                if file.contains("/persistentvolumeclaims") {
                    m.remove("finalizers");
                }
            }
        }
        for (i, cell) in row["cells"]
            .as_array_mut()
            .into_iter()
            .flatten()
            .enumerate()
        {
            match cols.get(i).map(String::as_str) {
                Some("Cluster-IP") if cell != "None" => *cell = json!("<allocated>"),
                Some("Port(s)") => {
                    if let Some(s) = cell.as_str() {
                        let ports: Vec<String> = s
                            .split(',')
                            .map(|p| match (p.find(':'), p.find('/')) {
                                (Some(a), Some(b)) if a < b => format!("{}{}", &p[..a], &p[b..]),
                                _ => p.to_string(),
                            })
                            .collect();
                        *cell = json!(ports.join(","));
                    }
                }
                Some("Selector") if is_jobs => *cell = json!("<generated>"),
                _ => {}
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_match_upstream() -> Result<()> {
    let srv = MesoServer::start()?;
    let client = srv.http()?;
    let base = srv.base_url()?;
    let setup = create_capture_objects(&client, &base, false).await?;
    let failed_setup: Vec<String> = setup
        .iter()
        .filter(|(_, p)| !p.is_empty())
        .map(|(f, p)| format!("({f} answered {:.200})", p.join("; ")))
        .collect();

    let files = golden::list_area("table")?;
    let mut results: Results = Vec::new();
    for file in &files {
        let stem = file
            .trim_start_matches("table/")
            .trim_end_matches(".json")
            .trim_end_matches("-includeObject-Object");
        if !TABLES_IN_SCOPE.contains(&stem) {
            continue;
        }
        let cap = golden::load(file)?;
        let problems = match golden::replay(&client, &base, &cap.request, &[]).await {
            Ok(reply) => {
                let mut expected = cap.response.clone();
                relax_table(file, &mut expected.body);
                let mut reply = reply;
                relax_table(file, &mut reply.body);
                compare_reply(&expected, &reply, true)
            }
            Err(e) => vec![format!("request failed: {e:#}")],
        };
        results.push((file.clone(), problems));
    }
    if !failed_setup.is_empty() {
        eprintln!(
            "setup requests that did not answer like upstream:\n{}",
            failed_setup.join("\n")
        );
    }
    let n = results.len();
    golden::report("tables", &results, n)
}

/// Full comparison of every table capture (row objects included) and of every object created
/// from `defaults/`: defaulting, allocation, CRDs and the tables of later issues.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "defaulting, IP allocation, CRDs and their tables land with later issues"]
async fn tables_and_defaults_match_upstream_fully() -> Result<()> {
    let srv = MesoServer::start()?;
    let client = srv.http()?;
    let base = srv.base_url()?;
    // defaults: the create answers themselves, then the tables of that state
    let mut results = create_capture_objects(&client, &base, true).await?;
    for file in golden::list_area("table")? {
        let cap = golden::load(&file)?;
        let problems = match golden::replay(&client, &base, &cap.request, &[]).await {
            Ok(reply) => compare_reply(&cap.response, &reply, true),
            Err(e) => vec![format!("request failed: {e:#}")],
        };
        results.push((file, problems));
    }
    let n = results.len();
    golden::report("defaults and full tables", &results, n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_match_upstream() -> Result<()> {
    let srv = MesoServer::start()?;
    let client = srv.http()?;
    let base = srv.base_url()?;
    send_ok(
        &client,
        &base,
        "POST",
        "/api/v1/namespaces",
        &golden::load("defaults/namespace.json")?.request.body,
    )
    .await?;
    create_list_configmaps(&client, &base).await?;
    let mut results: Results = Vec::new();

    for file in [
        "list/configmaps-fieldSelector-name.json",
        "list/configmaps-labelSelector-set.json",
        "list/configmaps-limit2-page1-table.json",
    ] {
        let cap = golden::load(file)?;
        let problems = match golden::replay(&client, &base, &cap.request, &[]).await {
            Ok(reply) => compare_reply(&cap.response, &reply, true),
            Err(e) => vec![format!("request failed: {e:#}")],
        };
        results.push((file.to_string(), problems));
    }

    // Pages: each next request carries the continue token meso handed out.
    let mut token = String::new();
    for page in 1..=3 {
        let file = format!("list/configmaps-limit2-page{page}.json");
        let mut cap = golden::load(&file)?;
        cap.request.query = if token.is_empty() {
            "limit=2".into()
        } else {
            format!("limit=2&continue={token}")
        };
        let problems = match golden::replay(&client, &base, &cap.request, &[]).await {
            Ok(reply) => {
                token = reply.body["metadata"]["continue"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                compare_reply(&cap.response, &reply, true)
            }
            Err(e) => vec![format!("request failed: {e:#}")],
        };
        results.push((file, problems));
    }

    // Pods by spec.nodeName: bind-demo bound to golden-node (through the binding subresource
    // when meso has it, else created with spec.nodeName), pod-busybox unbound.
    let mut problems = Vec::new();
    for f in ["defaults/node.json", "defaults/pod-busybox.json"] {
        let cap = golden::load(f)?;
        let r = golden::replay(&client, &base, &cap.request, &[]).await?;
        if r.status != 201 {
            problems.push(format!("setup {f}: {}", r.summary()));
        }
    }
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bind-demo"},
                     "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}});
    send_ok(
        &client,
        &base,
        "POST",
        "/api/v1/namespaces/golden/pods",
        &pod,
    )
    .await?;
    let binding = golden::load("subresources/pod-binding.json")?;
    let r = golden::replay(&client, &base, &binding.request, &[]).await?;
    if r.status == 201 {
        // The binding writes the pod below the field manager: the pod's managedFields keep the
        // creator's entry alone, as upstream's pod after binding shows.
        let after = golden::load("subresources/pod-after-binding.json")?;
        let got = send_ok(
            &client,
            &base,
            "GET",
            "/api/v1/namespaces/golden/pods/bind-demo",
            &Value::Null,
        )
        .await?;
        let managers = |v: &Value| -> Vec<Value> {
            v["metadata"]["managedFields"]
                .as_array()
                .map(|a| a.iter().map(|m| m["operation"].clone()).collect())
                .unwrap_or_default()
        };
        if managers(&got) != managers(&after.response.body) {
            problems.push(format!(
                "bound pod's managedFields operations {:?}, upstream {:?}",
                managers(&got),
                managers(&after.response.body)
            ));
        }
        if got["spec"]["nodeName"] != after.response.body["spec"]["nodeName"] {
            problems.push(format!("bound pod's nodeName {}", got["spec"]["nodeName"]));
        }
    } else {
        eprintln!(
            "binding subresource not available ({}); using spec.nodeName",
            r.status
        );
        send_ok(
            &client,
            &base,
            "DELETE",
            "/api/v1/namespaces/golden/pods/bind-demo",
            &Value::Null,
        )
        .await?;
        let mut p = pod.clone();
        p["spec"]["nodeName"] = json!("golden-node");
        send_ok(&client, &base, "POST", "/api/v1/namespaces/golden/pods", &p).await?;
    }
    let cap = golden::load("list/pods-fieldSelector-nodeName.json")?;
    match golden::replay(&client, &base, &cap.request, &[]).await {
        Ok(reply) if reply.status == 200 => {
            let names = |v: &Value| -> Vec<Value> {
                v["items"]
                    .as_array()
                    .map(|a| a.iter().map(|i| i["metadata"]["name"].clone()).collect())
                    .unwrap_or_default()
            };
            let (e, a) = (&cap.response.body, &reply.body);
            if names(e) != names(a) {
                problems.push(format!("items {:?}, upstream {:?}", names(a), names(e)));
            }
            if (e["kind"].clone(), e["apiVersion"].clone())
                != (a["kind"].clone(), a["apiVersion"].clone())
            {
                problems.push(format!("kind/apiVersion {} {}", a["kind"], a["apiVersion"]));
            }
        }
        Ok(reply) => problems.push(format!("status: {}", reply.summary())),
        Err(e) => problems.push(format!("request failed: {e:#}")),
    }
    results.push(("list/pods-fieldSelector-nodeName.json".into(), problems));
    let n = results.len();
    golden::report("lists", &results, n)
}

/// Starts a watch request in the background and returns a handle to its events.
fn start_watch(
    client: &reqwest::Client,
    base: &str,
    query: String,
) -> tokio::task::JoinHandle<Result<golden::Reply>> {
    let (client, base) = (client.clone(), base.to_string());
    tokio::spawn(async move {
        let req = CapturedRequest {
            method: "GET".into(),
            path: "/api/v1/namespaces/golden/configmaps".into(),
            query,
            headers: [("Accept".to_string(), "application/json".to_string())].into(),
            body: Value::Null,
        };
        golden::replay(&client, &base, &req, &[]).await
    })
}

/// A watch read while it runs, so a test can act once the initial events have arrived.
struct LiveWatch {
    rx: tokio::sync::mpsc::UnboundedReceiver<Value>,
    events: Vec<Value>,
    what: String,
}

impl LiveWatch {
    async fn open(client: &reqwest::Client, base: &str, query: &str) -> Result<Self> {
        let url = format!("{base}/api/v1/namespaces/golden/configmaps?{query}");
        let mut resp = client
            .get(&url)
            .header("Accept", "application/json")
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let status = resp.status().as_u16();
        anyhow::ensure!(
            status == 200,
            "GET {url}: {status} {}",
            resp.text().await.unwrap_or_default()
        );
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            while let Ok(Some(chunk)) = resp.chunk().await {
                buf.extend_from_slice(&chunk);
                while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    let v = serde_json::from_slice(&line).unwrap_or_else(|_| {
                        Value::String(format!("<not JSON> {}", String::from_utf8_lossy(&line)))
                    });
                    if tx.send(v).is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Self {
            rx,
            events: Vec::new(),
            what: query.to_string(),
        })
    }

    /// Collects events until `done` holds (at most 10 s).
    async fn wait_until(&mut self, done: impl Fn(&[Value]) -> bool, what: &str) -> Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !done(&self.events) {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(ev)) => self.events.push(ev),
                Ok(None) => anyhow::bail!(
                    "watch {} ended before {what}; events: {:?}",
                    self.what,
                    event_summary(&Value::Array(self.events.clone()))
                ),
                Err(_) => anyhow::bail!(
                    "watch {}: no {what} within 10 s; events: {:?}",
                    self.what,
                    event_summary(&Value::Array(self.events.clone()))
                ),
            }
        }
        Ok(())
    }

    /// Collects the rest until the server ends the stream (timeoutSeconds; at most 20 s).
    async fn finish(mut self) -> Result<Vec<Value>> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(ev)) => self.events.push(ev),
                Ok(None) => return Ok(self.events),
                Err(_) => anyhow::bail!(
                    "watch {} did not end within 20 s (timeoutSeconds ignored?); events: {:?}",
                    self.what,
                    event_summary(&Value::Array(self.events))
                ),
            }
        }
    }
}

fn event_summary(events: &Value) -> Vec<String> {
    events
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    format!(
                        "{} {}",
                        e["type"].as_str().unwrap_or("?"),
                        e["object"]["metadata"]["name"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_match_upstream() -> Result<()> {
    let srv = MesoServer::start()?;
    let client = srv.http()?;
    let base = srv.base_url()?;
    send_ok(
        &client,
        &base,
        "POST",
        "/api/v1/namespaces",
        &golden::load("defaults/namespace.json")?.request.body,
    )
    .await?;
    create_list_configmaps(&client, &base).await?;
    let mut results: Results = Vec::new();
    let cms = "/api/v1/namespaces/golden/configmaps";
    let churn = |name: &'static str| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            let p = format!("{cms}/{name}");
            send_ok(&client, &base, "POST", cms,
                &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v1"}}))
                .await?;
            let (s, v) = send(
                &client,
                &base,
                "PATCH",
                &p,
                &json!({"data": {"k": "v2"}}),
                "application/merge-patch+json",
            )
            .await?;
            anyhow::ensure!(s == 200, "merge patch {name}: {s} {v}");
            send_ok(&client, &base, "DELETE", &p, &Value::Null).await?;
            anyhow::Ok(())
        }
    };

    // 1. From the resourceVersion of a list: exactly the three changes made after it.
    let cap: Capture = golden::load("watch/watch-from-current-rv.json")?;
    let list = send_ok(&client, &base, "GET", cms, &Value::Null).await?;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let watch = start_watch(
        &client,
        &base,
        format!("watch=1&resourceVersion={rv}&timeoutSeconds=3"),
    );
    churn("watch-cm2").await?;
    let problems = match watch.await.context("watch task")? {
        Ok(reply) => compare_reply(&cap.response, &reply, true),
        Err(e) => vec![format!("request failed: {e:#}")],
    };
    results.push(("watch/watch-from-current-rv.json".into(), problems));

    // 2. resourceVersion=0: synthetic ADDED for what exists, then the live changes.
    //    (The capture holds an etcd-3.4 error; the expectation is upstream's documented
    //    behaviour with the watch cache.)
    let mut problems = Vec::new();
    let live = async {
        let mut w =
            LiveWatch::open(&client, &base, "watch=1&resourceVersion=0&timeoutSeconds=3").await?;
        w.wait_until(|ev| ev.len() >= 5, "the 5 initial ADDED events")
            .await?;
        churn("watch-cm3").await?;
        w.finish().await
    }
    .await;
    match live {
        Ok(events) => {
            let got = event_summary(&Value::Array(events));
            let mut want: Vec<String> = (0..5).map(|i| format!("ADDED list-{i}")).collect();
            want.extend(
                ["ADDED watch-cm3", "MODIFIED watch-cm3", "DELETED watch-cm3"].map(String::from),
            );
            if got != want {
                problems.push(format!("events {got:?}, expected {want:?}"));
            }
        }
        Err(e) => problems.push(format!("{e:#}")),
    }
    results.push((
        "watch resourceVersion=0 (documented upstream behaviour)".into(),
        problems,
    ));

    // 3. sendInitialEvents=true: ADDED for what exists, the initial-events-end BOOKMARK, then
    //    the live changes. (Again upstream's documented watch-list behaviour.)
    let mut problems = Vec::new();
    let is_end = |e: &Value| {
        e["type"] == "BOOKMARK"
            && e["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"] == "true"
    };
    let live = async {
        let mut w = LiveWatch::open(
            &client,
            &base,
            "watch=1&allowWatchBookmarks=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&resourceVersion=&timeoutSeconds=3",
        )
        .await?;
        w.wait_until(|ev| ev.iter().any(is_end), "the initial-events-end BOOKMARK")
            .await?;
        churn("watch-cm").await?;
        w.finish().await
    }
    .await;
    match live {
        Ok(events) => {
            let all = Value::Array(events.clone());
            let got: Vec<String> = event_summary(&all)
                .into_iter()
                .filter(|s| s != "BOOKMARK ")
                .collect();
            let mut want: Vec<String> = (0..5).map(|i| format!("ADDED list-{i}")).collect();
            want.extend(
                ["ADDED watch-cm", "MODIFIED watch-cm", "DELETED watch-cm"].map(String::from),
            );
            if got != want {
                problems.push(format!(
                    "events (bookmarks aside) {got:?}, expected {want:?}"
                ));
            }
            match events.iter().position(is_end) {
                None => problems.push(format!(
                    "no BOOKMARK with annotation k8s.io/initial-events-end=true: {:?}",
                    event_summary(&all)
                )),
                Some(i) if i != 5 => problems.push(format!(
                    "the initial-events-end BOOKMARK should follow the 5 initial ADDED events, is at {i}"
                )),
                Some(i) => {
                    let bm = &events[i]["object"];
                    if bm["kind"] != "ConfigMap" || bm["apiVersion"] != "v1" {
                        problems.push(format!("BOOKMARK object kind/apiVersion: {bm}"));
                    }
                    if bm["metadata"]["resourceVersion"].as_str().unwrap_or("").is_empty() {
                        problems.push(format!("BOOKMARK without resourceVersion: {bm}"));
                    }
                }
            }
        }
        Err(e) => problems.push(format!("{e:#}")),
    }
    results.push((
        "watch sendInitialEvents=true (documented upstream behaviour)".into(),
        problems,
    ));

    // 4. timeoutSeconds ends the stream on time.
    let started = std::time::Instant::now();
    let watch = start_watch(
        &client,
        &base,
        format!("watch=1&resourceVersion={rv}&timeoutSeconds=1"),
    );
    let mut problems = Vec::new();
    match watch.await.context("watch task")? {
        Ok(reply) if reply.status == 200 => {
            let took = started.elapsed();
            if took > Duration::from_secs(6) {
                problems.push(format!("timeoutSeconds=1 stream ended after {took:?}"));
            }
        }
        Ok(reply) => problems.push(reply.summary()),
        Err(e) => problems.push(format!("request failed: {e:#}")),
    }
    results.push(("watch timeoutSeconds=1 ends the stream".into(), problems));
    let n = results.len();
    golden::report("watches", &results, n)
}
