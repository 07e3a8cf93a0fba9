//! kubectl 1.32 and 1.35 against a freshly started `meso server` (issue 2, "How it is checked").
//! Every scenario runs once per kubectl version, each on its own server.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use meso_tests::{golden, write_file, Kubectl, MesoServer};
use serde_json::Value;

meso_tests::for_each_kubectl!(
    version,
    api_resources,
    api_versions,
    namespaces,
    configmap_create_and_output_formats,
    secret_generic,
    get_all_all_namespaces,
    label_and_annotate,
    apply_twice,
    edit_with_kube_editor,
    patch_json_merge_strategic,
    delete_and_delete_all,
    get_watch_sees_change,
    dry_run_client,
    chunked_list,
);

/// Rows of a kubectl table, split at the header's column starts.
fn parse_table(out: &str) -> Result<Vec<BTreeMap<String, String>>> {
    let mut lines = out.lines().filter(|l| !l.trim().is_empty());
    let header = lines.next().context("no header line")?;
    let mut starts = Vec::new();
    let mut names = Vec::new();
    let bytes = header.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b' ' && (i == 0 || bytes[i - 1] == b' ') {
            let end = header[i..].find(' ').map(|e| i + e).unwrap_or(header.len());
            starts.push(i);
            names.push(header[i..end].to_string());
            i = end;
        } else {
            i += 1;
        }
    }
    let mut rows = Vec::new();
    for line in lines {
        let mut row = BTreeMap::new();
        for (c, name) in names.iter().enumerate() {
            let s = starts[c].min(line.len());
            let e = starts
                .get(c + 1)
                .copied()
                .unwrap_or(line.len())
                .min(line.len());
            row.insert(
                name.clone(),
                line.get(s..e).unwrap_or("").trim().to_string(),
            );
        }
        rows.push(row);
    }
    Ok(rows)
}

fn json_of(out: &str) -> Result<Value> {
    serde_json::from_str(out).with_context(|| format!("kubectl output is not JSON:\n{out}"))
}

fn stderr_of(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn names(out: &str) -> BTreeSet<String> {
    out.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn version(k: &Kubectl) -> Result<()> {
    let srv = MesoServer::start()?;
    let v = json_of(&srv.kubectl_ok(k, &["version", "-o", "json"])?)?;
    let sv = &v["serverVersion"];
    assert_eq!(sv["major"], "1", "serverVersion: {sv}");
    assert_eq!(sv["minor"], "36", "serverVersion: {sv}");
    let git = sv["gitVersion"].as_str().unwrap_or("");
    assert!(
        git.starts_with("v1.36.") && git.contains("meso"),
        "gitVersion should look like v1.36.x-meso…, got {git:?}"
    );
    let client = v["clientVersion"]["gitVersion"].as_str().unwrap_or("");
    assert!(
        client.starts_with(&format!("v{}.", k.version)),
        "client {client}"
    );
    let plain = srv.kubectl_ok(k, &["version"])?;
    assert!(
        plain.contains(&format!("Server Version: {git}")),
        "plain output: {plain}"
    );
    Ok(())
}

/// One row of `kubectl api-resources -o wide`, with list cells as sorted sets.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct ApiResourceRow {
    name: String,
    apiversion: String,
    shortnames: BTreeSet<String>,
    namespaced: String,
    kind: String,
    verbs: BTreeSet<String>,
    categories: BTreeSet<String>,
}

fn tokens(v: Option<&Value>) -> BTreeSet<String> {
    v.and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn split_tokens(s: &str) -> BTreeSet<String> {
    s.split(|c: char| c == ',' || c == '[' || c == ']' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// What `kubectl api-resources` prints for upstream v1.36, computed from the captured aggregated
/// discovery the way client-go's ServerPreferredResources does (per group/resource: the
/// preferred version, else the first version that serves it).
fn expected_api_resources() -> Result<BTreeMap<(String, String), ApiResourceRow>> {
    let core = golden::load("discovery/api-aggregated.json")?;
    let apis = golden::load("discovery/apis-aggregated.json")?;
    let mut out = BTreeMap::new();
    let mut seen: BTreeMap<(String, String), ()> = BTreeMap::new();
    for doc in [&core.response.body, &apis.response.body] {
        for group in doc["items"].as_array().context("items")? {
            let gname = group["metadata"]["name"].as_str().unwrap_or("").to_string();
            for version in group["versions"].as_array().context("versions")? {
                let v = version["version"].as_str().unwrap_or("");
                let apiversion = if gname.is_empty() {
                    v.to_string()
                } else {
                    format!("{gname}/{v}")
                };
                for r in version["resources"].as_array().context("resources")? {
                    let name = r["resource"].as_str().unwrap_or("").to_string();
                    if seen.insert((gname.clone(), name.clone()), ()).is_some() {
                        continue;
                    }
                    out.insert(
                        (name.clone(), apiversion.clone()),
                        ApiResourceRow {
                            name,
                            apiversion: apiversion.clone(),
                            shortnames: tokens(r.get("shortNames")),
                            namespaced: (r["scope"] == "Namespaced").to_string(),
                            kind: r["responseKind"]["kind"].as_str().unwrap_or("").to_string(),
                            verbs: tokens(r.get("verbs")),
                            categories: tokens(r.get("categories")),
                        },
                    );
                }
            }
        }
    }
    // meso builds metrics-server in (the captures come from a cluster without it); its
    // aggregated API lists these two.
    for (name, kind, namespaced) in [
        ("nodes", "NodeMetrics", false),
        ("pods", "PodMetrics", true),
    ] {
        let apiversion = "metrics.k8s.io/v1beta1".to_string();
        out.insert(
            (name.to_string(), apiversion.clone()),
            ApiResourceRow {
                name: name.to_string(),
                apiversion,
                shortnames: BTreeSet::new(),
                namespaced: namespaced.to_string(),
                kind: kind.to_string(),
                verbs: ["get", "list"].iter().map(|v| v.to_string()).collect(),
                categories: BTreeSet::new(),
            },
        );
    }
    Ok(out)
}

fn api_resources(k: &Kubectl) -> Result<()> {
    let srv = MesoServer::start()?;
    let expected = expected_api_resources()?;
    let out = srv.kubectl_ok(k, &["api-resources", "-o", "wide"])?;
    let mut actual = BTreeMap::new();
    for row in parse_table(&out)? {
        let get = |c: &str| row.get(c).cloned().unwrap_or_default();
        let r = ApiResourceRow {
            name: get("NAME"),
            apiversion: get("APIVERSION"),
            shortnames: split_tokens(&get("SHORTNAMES")),
            namespaced: get("NAMESPACED"),
            kind: get("KIND"),
            verbs: split_tokens(&get("VERBS")),
            categories: split_tokens(&get("CATEGORIES")),
        };
        actual.insert((r.name.clone(), r.apiversion.clone()), r);
    }
    let mut problems = Vec::new();
    for (key, e) in &expected {
        match actual.get(key) {
            None => problems.push(format!("missing {} ({})", key.0, key.1)),
            Some(a) if a != e => problems.push(format!("differs: got {a:?}\n   upstream {e:?}")),
            _ => {}
        }
    }
    for key in actual.keys() {
        if !expected.contains_key(key) {
            problems.push(format!("unexpected {} ({})", key.0, key.1));
        }
    }
    if !problems.is_empty() {
        bail!(
            "kubectl {} api-resources differs from upstream v1.36 in {} ways:\n{}",
            k.version,
            problems.len(),
            problems.join("\n")
        );
    }
    // The plain form works too and lists the same number of resources.
    let plain = srv.kubectl_ok(k, &["api-resources", "--no-headers"])?;
    assert_eq!(plain.lines().count(), expected.len(), "{plain}");
    Ok(())
}

fn api_versions(k: &Kubectl) -> Result<()> {
    let srv = MesoServer::start()?;
    let apis = golden::load("discovery/apis.json")?;
    // metrics.k8s.io: meso's built-in metrics-server (not in the captures).
    let mut expected: BTreeSet<String> =
        BTreeSet::from(["v1".to_string(), "metrics.k8s.io/v1beta1".to_string()]);
    for g in apis.response.body["groups"].as_array().context("groups")? {
        for v in g["versions"].as_array().context("versions")? {
            expected.insert(v["groupVersion"].as_str().unwrap_or("").to_string());
        }
    }
    let actual = names(&srv.kubectl_ok(k, &["api-versions"])?);
    assert_eq!(
        actual,
        expected,
        "missing: {:?}; unexpected: {:?}",
        expected.difference(&actual).collect::<Vec<_>>(),
        actual.difference(&expected).collect::<Vec<_>>()
    );
    Ok(())
}

fn namespaces(k: &Kubectl) -> Result<()> {
    let srv = MesoServer::start()?;
    let out = srv.kubectl_ok(k, &["get", "ns"])?;
    let rows = parse_table(&out)?;
    let table: BTreeMap<String, String> = rows
        .iter()
        .map(|r| {
            (
                r["NAME"].clone(),
                r.get("STATUS").cloned().unwrap_or_default(),
            )
        })
        .collect();
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert_eq!(
            table.get(ns).map(String::as_str),
            Some("Active"),
            "namespace {ns} in:\n{out}"
        );
    }
    assert!(out.starts_with("NAME"), "{out}");
    assert!(out.lines().next().unwrap_or("").contains("AGE"), "{out}");

    let created = srv.kubectl_ok(k, &["create", "ns", "e2e-ns"])?;
    assert_eq!(created.trim(), "namespace/e2e-ns created");
    let phase = srv.kubectl_ok(
        k,
        &["get", "ns", "e2e-ns", "-o", "jsonpath={.status.phase}"],
    )?;
    assert_eq!(phase, "Active");
    let all = names(&srv.kubectl_ok(k, &["get", "ns", "-o", "name"])?);
    assert!(all.contains("namespace/e2e-ns"), "{all:?}");
    assert_eq!(all.len(), 5, "{all:?}");
    let again = srv.kubectl(k, &["create", "ns", "e2e-ns"])?;
    assert!(!again.status.success());
    let err = stderr_of(&again);
    assert!(
        err.contains("AlreadyExists") && err.contains("namespaces \"e2e-ns\" already exists"),
        "{err}"
    );
    Ok(())
}

fn configmap_create_and_output_formats(k: &Kubectl) -> Result<()> {
    let srv = MesoServer::start()?;
    let out = srv.kubectl_ok(
        k,
        &[
            "create",
            "configmap",
            "cm1",
            "--from-literal=a=1",
            "--from-literal=b=two words",
        ],
    )?;
    assert_eq!(out.trim(), "configmap/cm1 created");

    let yaml: serde_yaml::Value =
        serde_yaml::from_str(&srv.kubectl_ok(k, &["get", "cm", "cm1", "-o", "yaml"])?)
            .context("-o yaml output")?;
    let y = serde_json::to_value(&yaml)?;
    assert_eq!(y["apiVersion"], "v1");
    assert_eq!(y["kind"], "ConfigMap");
    assert_eq!(y["metadata"]["name"], "cm1");
    assert_eq!(y["metadata"]["namespace"], "default");
    assert_eq!(y["data"], serde_json::json!({"a": "1", "b": "two words"}));
    let rv = y["metadata"]["resourceVersion"].as_str().unwrap_or("");
    assert!(
        rv.parse::<u64>().is_ok_and(|n| n > 0),
        "resourceVersion {rv:?}"
    );
    assert!(
        y["metadata"]["uid"].as_str().is_some_and(|u| u.len() == 36),
        "{y}"
    );
    assert!(y["metadata"]["creationTimestamp"].is_string(), "{y}");

    let j = json_of(&srv.kubectl_ok(k, &["get", "cm", "cm1", "-o", "json"])?)?;
    assert_eq!(j, y, "-o json and -o yaml disagree");

    let wide = srv.kubectl_ok(k, &["get", "cm", "cm1", "-o", "wide"])?;
    let rows = parse_table(&wide)?;
    assert_eq!(rows.len(), 1, "{wide}");
    assert!(wide.starts_with("NAME"), "{wide}");
    assert_eq!(rows[0]["NAME"], "cm1");
    assert_eq!(rows[0]["DATA"], "2", "{wide}");
    assert!(rows[0].contains_key("AGE"), "{wide}");

    let b = srv.kubectl_ok(k, &["get", "cm", "cm1", "-o", "jsonpath={.data.b}"])?;
    assert_eq!(b, "two words");
    let listed = srv.kubectl_ok(
        k,
        &[
            "get",
            "cm",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name}={.data.a}{\"\\n\"}{end}",
        ],
    )?;
    assert!(listed.lines().any(|l| l == "cm1=1"), "{listed}");
    let cc = srv.kubectl_ok(
        k,
        &[
            "get",
            "cm",
            "cm1",
            "-o",
            "custom-columns=N:.metadata.name,A:.data.a",
        ],
    )?;
    let rows = parse_table(&cc)?;
    assert_eq!((rows[0]["N"].as_str(), rows[0]["A"].as_str()), ("cm1", "1"));
    assert_eq!(
        srv.kubectl_ok(k, &["get", "cm", "cm1", "-o", "name"])?
            .trim(),
        "configmap/cm1"
    );
    Ok(())
}

fn secret_generic(k: &Kubectl) -> Result<()> {
    let srv = MesoServer::start()?;
    let out = srv.kubectl_ok(
        k,
        &[
            "create",
            "secret",
            "generic",
            "s1",
            "--from-literal=user=admin",
            "--from-literal=pass=p@ss w0rd",
        ],
    )?;
    assert_eq!(out.trim(), "secret/s1 created");
    let j = json_of(&srv.kubectl_ok(k, &["get", "secret", "s1", "-o", "json"])?)?;
    assert_eq!(j["type"], "Opaque");
    assert_eq!(j["data"]["user"], "YWRtaW4=");
    assert_eq!(j["data"]["pass"], "cEBzcyB3MHJk");
    let table = srv.kubectl_ok(k, &["get", "secret", "s1"])?;
    let rows = parse_table(&table)?;
    assert_eq!(rows[0]["TYPE"], "Opaque", "{table}");
    assert_eq!(rows[0]["DATA"], "2", "{table}");
    Ok(())
}

const ALL_OBJECTS: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: e2e-all
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: e2e-all
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
---
apiVersion: v1
kind: Pod
metadata:
  name: p1
  namespace: e2e-all
spec:
  containers:
  - name: c
    image: busybox:1.36
---
apiVersion: v1
kind: Service
metadata:
  name: svc
  namespace: e2e-all
spec:
  clusterIP: None
  selector: {app: web}
  ports:
  - port: 80
"#;

fn get_all_all_namespaces(k: &Kubectl) -> Result<()> {
    let srv = MesoServer::start()?;
    let file = write_file(srv.scratch_dir(), "all.yaml", ALL_OBJECTS)?;
    let file = file.to_string_lossy().into_owned();
    srv.kubectl_ok(k, &["apply", "-f", &file])?;
    let out = srv.kubectl_ok(k, &["get", "all", "-A"])?;
    for want in ["pod/p1", "service/svc", "deployment.apps/web"] {
        let line = out
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(want))
            .with_context(|| format!("no row for {want} in:\n{out}"))?;
        assert!(line.starts_with("e2e-all "), "{line}");
    }
    assert!(out.starts_with("NAMESPACE"), "{out}");
    let n = names(&srv.kubectl_ok(k, &["get", "all", "-A", "-o", "name"])?);
    for want in ["pod/p1", "service/svc", "deployment.apps/web"] {
        assert!(n.contains(want), "{want} missing from {n:?}");
    }
    let scoped = names(&srv.kubectl_ok(k, &["get", "all", "-n", "e2e-all", "-o", "name"])?);
    assert_eq!(
        scoped,
        BTreeSet::from([
            "pod/p1".to_string(),
            "service/svc".to_string(),
            "deployment.apps/web".to_string()
        ])
    );
    Ok(())
}

fn label_and_annotate(k: &Kubectl) -> Result<()> {
    let srv = MesoServer::start()?;
    srv.kubectl_ok(k, &["create", "cm", "lab1", "--from-literal=a=1"])?;
    srv.kubectl_ok(k, &["create", "cm", "lab2", "--from-literal=a=1"])?;
    assert_eq!(
        srv.kubectl_ok(k, &["label", "cm", "lab1", "tier=backend"])?
            .trim(),
        "configmap/lab1 labeled"
    );
    assert_eq!(
        srv.kubectl_ok(k, &["get", "cm", "-l", "tier=backend", "-o", "name"])?
            .trim(),
        "configmap/lab1"
    );
    let clash = srv.kubectl(k, &["label", "cm", "lab1", "tier=frontend"])?;
    assert!(
        !clash.status.success(),
        "relabel without --overwrite must fail"
    );
    assert!(
        stderr_of(&clash).contains("already has a value"),
        "{}",
        stderr_of(&clash)
    );
    srv.kubectl_ok(k, &["label", "--overwrite", "cm", "lab1", "tier=frontend"])?;
    assert_eq!(
        srv.kubectl_ok(
            k,
            &[
                "get",
                "cm",
                "lab1",
                "-o",
                "jsonpath={.metadata.labels.tier}"
            ]
        )?,
        "frontend"
    );
    assert_eq!(
        srv.kubectl_ok(
            k,
            &[
                "get",
                "cm",
                "-l",
                "tier in (frontend,x),!nope",
                "-o",
                "name"
            ]
        )?
        .trim(),
        "configmap/lab1"
    );
    assert_eq!(
        srv.kubectl_ok(k, &["label", "cm", "lab1", "tier-"])?.trim(),
        "configmap/lab1 unlabeled"
    );
    assert_eq!(
        srv.kubectl_ok(k, &["get", "cm", "-l", "tier", "-o", "name"])?
            .trim(),
        ""
    );

    assert_eq!(
        srv.kubectl_ok(k, &["annotate", "cm", "lab2", "note=hello world"])?
            .trim(),
        "configmap/lab2 annotated"
    );
    assert_eq!(
        srv.kubectl_ok(
            k,
            &[
                "get",
                "cm",
                "lab2",
                "-o",
                "jsonpath={.metadata.annotations.note}"
            ]
        )?,
        "hello world"
    );
    srv.kubectl_ok(k, &["annotate", "cm", "lab2", "note-"])?;
    let j = json_of(&srv.kubectl_ok(k, &["get", "cm", "lab2", "-o", "json"])?)?;
    assert!(
        j["metadata"]["annotations"].get("note").is_none(),
        "{}",
        j["metadata"]
    );
    Ok(())
}

const APPLY_V1: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config
data:
  a: "1"
  b: "2"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
    team: x
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        env:
        - {name: A, value: "1"}
      - name: sidecar
        image: busybox:1.36
"#;

const APPLY_V2: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config
data:
  a: "1"
  c: "3"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        env:
        - {name: A, value: "1"}
        - {name: B, value: "2"}
      - name: sidecar
        image: busybox:1.36
"#;

fn apply_twice(k: &Kubectl) -> Result<()> {
    let srv = MesoServer::start()?;
    let f1 = write_file(srv.scratch_dir(), "v1.yaml", APPLY_V1)?;
    let f2 = write_file(srv.scratch_dir(), "v2.yaml", APPLY_V2)?;
    let (f1, f2) = (f1.to_string_lossy(), f2.to_string_lossy());
    let out = srv.kubectl_ok(k, &["apply", "-f", &f1])?;
    assert_eq!(
        names(&out),
        BTreeSet::from([
            "configmap/app-config created".to_string(),
            "deployment.apps/web created".to_string()
        ]),
        "{out}"
    );
    let out = srv.kubectl_ok(k, &["apply", "-f", &f2])?;
    assert_eq!(
        names(&out),
        BTreeSet::from([
            "configmap/app-config configured".to_string(),
            "deployment.apps/web configured".to_string()
        ]),
        "{out}"
    );
    let cm = json_of(&srv.kubectl_ok(k, &["get", "cm", "app-config", "-o", "json"])?)?;
    assert_eq!(
        cm["data"],
        serde_json::json!({"a": "1", "c": "3"}),
        "key b removed by the three-way merge"
    );
    let d = json_of(&srv.kubectl_ok(k, &["get", "deploy", "web", "-o", "json"])?)?;
    let cs = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .context("containers")?;
    assert_eq!(cs.len(), 2, "{cs:?}");
    assert_eq!(cs[0]["name"], "web");
    assert_eq!(cs[0]["image"], "nginx:1.27");
    let env: Vec<&str> = cs[0]["env"]
        .as_array()
        .context("env")?
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert_eq!(env, ["A", "B"]);
    assert_eq!(cs[1]["name"], "sidecar");
    assert_eq!(d["metadata"]["labels"], serde_json::json!({"app": "web"}));
    assert_eq!(d["metadata"]["generation"], 2, "spec changed once");
    let last = d["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
        .as_str()
        .context("last-applied-configuration annotation")?;
    assert!(
        last.contains("nginx:1.27") && !last.contains("team"),
        "{last}"
    );
    let out = srv.kubectl_ok(k, &["apply", "-f", &f2])?;
    assert_eq!(
        names(&out),
        BTreeSet::from([
            "configmap/app-config unchanged".to_string(),
            "deployment.apps/web unchanged".to_string()
        ]),
        "{out}"
    );
    Ok(())
}

fn edit_with_kube_editor(k: &Kubectl) -> Result<()> {
    let srv = MesoServer::start()?;
    srv.kubectl_ok(
        k,
        &[
            "create",
            "cm",
            "ed1",
            "--from-literal=a=1",
            "--from-literal=b=2",
        ],
    )?;
    let script = write_file(
        srv.scratch_dir(),
        "editor.sh",
        "#!/bin/sh\nset -e\nsed -i -e 's/^  a: .*$/  a: edited/' \"$1\"\n",
    )?;
    std::fs::set_permissions(
        &script,
        <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o755),
    )
    .context("chmod editor.sh")?;
    let mut cmd = srv.kubectl_command(k);
    cmd.env("KUBE_EDITOR", &script)
        .env_remove("EDITOR")
        .args(["edit", "cm", "ed1"]);
    let out = meso_tests::run_bounded(cmd, None, meso_tests::KUBECTL_TIMEOUT)?;
    let stdout = meso_tests::check_success(k, &["edit", "cm", "ed1"], &out)?;
    assert_eq!(stdout.trim(), "configmap/ed1 edited");
    let j = json_of(&srv.kubectl_ok(k, &["get", "cm", "ed1", "-o", "json"])?)?;
    assert_eq!(j["data"], serde_json::json!({"a": "edited", "b": "2"}));
    Ok(())
}

const PATCH_DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: pd
spec:
  selector:
    matchLabels: {app: pd}
  template:
    metadata:
      labels: {app: pd}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        env:
        - {name: A, value: "1"}
      - name: sidecar
        image: busybox:1.36
"#;

fn patch_json_merge_strategic(k: &Kubectl) -> Result<()> {
    let srv = MesoServer::start()?;
    srv.kubectl_ok(
        k,
        &[
            "create",
            "cm",
            "p1",
            "--from-literal=a=1",
            "--from-literal=b=2",
        ],
    )?;
    let out = srv.kubectl_ok(
        k,
        &[
            "patch",
            "cm",
            "p1",
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/data/a","value":"j"},{"op":"remove","path":"/data/b"}]"#,
        ],
    )?;
    assert_eq!(out.trim(), "configmap/p1 patched");
    let data = |srv: &MesoServer| -> Result<Value> {
        Ok(json_of(&srv.kubectl_ok(k, &["get", "cm", "p1", "-o", "json"])?)?["data"].clone())
    };
    assert_eq!(data(&srv)?, serde_json::json!({"a": "j"}));
    let merge = r#"{"data":{"m":"x","a":null}}"#;
    let out = srv.kubectl_ok(k, &["patch", "cm", "p1", "--type=merge", "-p", merge])?;
    assert_eq!(out.trim(), "configmap/p1 patched");
    assert_eq!(data(&srv)?, serde_json::json!({"m": "x"}));
    let out = srv.kubectl_ok(k, &["patch", "cm", "p1", "--type=merge", "-p", merge])?;
    assert_eq!(out.trim(), "configmap/p1 patched (no change)");
    let failed = srv.kubectl(
        k,
        &[
            "patch",
            "cm",
            "p1",
            "--type=json",
            "-p",
            r#"[{"op":"test","path":"/data/m","value":"nope"}]"#,
        ],
    )?;
    assert!(
        !failed.status.success(),
        "a failing json-patch test op must fail"
    );
    // upstream answers 422 Invalid "the server rejected our request due to an error in our
    // request" (patch/05-json-patch-test-fails.json), which kubectl prints like this
    assert!(
        stderr_of(&failed).contains(
            "The request is invalid: the server rejected our request due to an error in our request"
        ),
        "{}",
        stderr_of(&failed)
    );

    srv.kubectl_stdin_ok(k, &["apply", "-f", "-"], PATCH_DEPLOYMENT)?;
    let smp = r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.27","env":[{"name":"B","value":"2"}]}]}}}}"#;
    let out = srv.kubectl_ok(k, &["patch", "deploy", "pd", "--type=strategic", "-p", smp])?;
    assert_eq!(out.trim(), "deployment.apps/pd patched");
    let d = json_of(&srv.kubectl_ok(k, &["get", "deploy", "pd", "-o", "json"])?)?;
    let cs = &d["spec"]["template"]["spec"]["containers"];
    assert_eq!(
        cs.as_array().map(Vec::len),
        Some(2),
        "containers merged by name: {cs}"
    );
    assert_eq!(cs[0]["image"], "nginx:1.27");
    let env: BTreeSet<&str> = cs[0]["env"]
        .as_array()
        .context("env")?
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert_eq!(env, BTreeSet::from(["A", "B"]), "env merged by name");
    assert_eq!(cs[1]["name"], "sidecar");
    assert_eq!(cs[1]["image"], "busybox:1.36");
    let del =
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","$patch":"delete"}]}}}}"#;
    srv.kubectl_ok(k, &["patch", "deploy", "pd", "-p", del])?;
    let d = json_of(&srv.kubectl_ok(k, &["get", "deploy", "pd", "-o", "json"])?)?;
    let cs = &d["spec"]["template"]["spec"]["containers"];
    assert_eq!(cs.as_array().map(Vec::len), Some(1), "{cs}");
    assert_eq!(cs[0]["name"], "web");
    Ok(())
}

fn delete_and_delete_all(k: &Kubectl) -> Result<()> {
    let srv = MesoServer::start()?;
    srv.kubectl_ok(k, &["create", "ns", "e2e-del"])?;
    for n in ["d1", "d2", "d3", "d4"] {
        srv.kubectl_ok(
            k,
            &["create", "cm", n, "-n", "e2e-del", "--from-literal=k=v"],
        )?;
    }
    srv.kubectl_ok(k, &["create", "cm", "keep", "--from-literal=k=v"])?;
    let out = srv.kubectl_ok(k, &["delete", "cm", "d1", "-n", "e2e-del"])?;
    assert!(out.starts_with("configmap \"d1\" deleted"), "{out}");
    let gone = srv.kubectl(k, &["get", "cm", "d1", "-n", "e2e-del"])?;
    assert!(!gone.status.success());
    let err = stderr_of(&gone);
    assert!(
        err.contains("(NotFound)") && err.contains("configmaps \"d1\" not found"),
        "{err}"
    );
    let out = srv.kubectl_ok(k, &["delete", "cm", "--all", "-n", "e2e-del"])?;
    for n in ["d2", "d3", "d4"] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(&format!("configmap \"{n}\" deleted"))),
            "{n} in {out}"
        );
    }
    let left = names(&srv.kubectl_ok(k, &["get", "cm", "-n", "e2e-del", "-o", "name"])?);
    assert!(
        left.iter().all(|n| !n.starts_with("configmap/d")),
        "left: {left:?}"
    );
    assert_eq!(
        srv.kubectl_ok(k, &["get", "cm", "keep", "-o", "name"])?
            .trim(),
        "configmap/keep",
        "other namespaces untouched"
    );
    let missing = srv.kubectl(k, &["delete", "cm", "nope"])?;
    assert!(!missing.status.success());
    assert!(
        stderr_of(&missing).contains("not found"),
        "{}",
        stderr_of(&missing)
    );
    Ok(())
}

fn get_watch_sees_change(k: &Kubectl) -> Result<()> {
    let srv = MesoServer::start()?;
    srv.kubectl_ok(k, &["create", "cm", "w1", "--from-literal=k=v"])?;
    let mut cmd = srv.kubectl_command(k);
    cmd.args(["get", "cm", "-w", "--output-watch-events"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().context("spawning kubectl get -w")?;
    let stdout = child.stdout.take().context("stdout")?;
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let result = (|| -> Result<()> {
        let mut seen = Vec::new();
        let mut wait_for = |pred: &dyn Fn(&str) -> bool, what: &str| -> Result<()> {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match rx.recv_timeout(left) {
                    Ok(line) => {
                        let hit = pred(&line);
                        seen.push(line);
                        if hit {
                            return Ok(());
                        }
                    }
                    Err(_) => bail!("kubectl get -w: no {what} within 30 s; saw {seen:?}"),
                }
            }
        };
        wait_for(
            &|l| l.split_whitespace().take(2).any(|w| w == "w1"),
            "initial row for w1",
        )?;
        srv.kubectl_ok(k, &["create", "cm", "w2", "--from-literal=k=v"])?;
        wait_for(
            &|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                w.first() == Some(&"ADDED") && w.get(1) == Some(&"w2")
            },
            "ADDED event for w2",
        )?;
        srv.kubectl_ok(k, &["patch", "cm", "w2", "-p", r#"{"data":{"k2":"v2"}}"#])?;
        wait_for(
            &|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                w.first() == Some(&"MODIFIED") && w.get(1) == Some(&"w2") && w.get(2) == Some(&"2")
            },
            "MODIFIED event for w2 with 2 data keys",
        )?;
        srv.kubectl_ok(k, &["delete", "cm", "w2"])?;
        wait_for(
            &|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                w.first() == Some(&"DELETED") && w.get(1) == Some(&"w2")
            },
            "DELETED event for w2",
        )
    })();
    let _ = child.kill();
    let _ = child.wait();
    result
}

fn dry_run_client(k: &Kubectl) -> Result<()> {
    let srv = MesoServer::start()?;
    let out = srv.kubectl_ok(
        k,
        &[
            "create",
            "cm",
            "dry1",
            "--from-literal=a=b",
            "--dry-run=client",
            "-o",
            "json",
        ],
    )?;
    let j = json_of(&out)?;
    assert_eq!(j["metadata"]["name"], "dry1");
    assert_eq!(j["data"]["a"], "b");
    let get = srv.kubectl(k, &["get", "cm", "dry1"])?;
    assert!(
        !get.status.success() && stderr_of(&get).contains("not found"),
        "dry run must not create: {}",
        stderr_of(&get)
    );
    let manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dry2\ndata:\n  a: b\n";
    let out = srv.kubectl_stdin_ok(k, &["apply", "-f", "-", "--dry-run=client"], manifest)?;
    assert_eq!(out.trim(), "configmap/dry2 created (dry run)");
    assert!(!srv.kubectl(k, &["get", "cm", "dry2"])?.status.success());
    srv.kubectl_ok(k, &["create", "cm", "real", "--from-literal=a=b"])?;
    let out = srv.kubectl_ok(k, &["label", "cm", "real", "x=y", "--dry-run=client"])?;
    assert_eq!(out.trim(), "configmap/real labeled (dry run)");
    assert_eq!(
        srv.kubectl_ok(
            k,
            &["get", "cm", "real", "-o", "jsonpath={.metadata.labels}"]
        )?,
        ""
    );
    Ok(())
}

fn chunked_list(k: &Kubectl) -> Result<()> {
    let srv = MesoServer::start()?;
    let mut manifest =
        String::from("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: e2e-chunk\n");
    for i in 0..10 {
        manifest.push_str(&format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{i:02}\n  namespace: e2e-chunk\ndata:\n  i: \"{i}\"\n"
        ));
    }
    srv.kubectl_stdin_ok(k, &["apply", "-f", "-"], &manifest)?;
    let args = [
        "get",
        "cm",
        "-n",
        "e2e-chunk",
        "--chunk-size=2",
        "-v=6",
        "-o",
        "name",
    ];
    let out = srv.kubectl(k, &args)?;
    let stdout = meso_tests::check_success(k, &args, &out)?;
    let listed: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("configmap/c"))
        .collect();
    let want: Vec<String> = (0..10).map(|i| format!("configmap/c{i:02}")).collect();
    assert_eq!(listed, want, "all 10 listed, in order:\n{stdout}");
    let log = stderr_of(&out);
    let requests: Vec<&str> = log
        .lines()
        .filter(|l| {
            l.contains("GET")
                && l.contains("/namespaces/e2e-chunk/configmaps?")
                && l.contains("limit=2")
        })
        .collect();
    ensure!(
        requests.len() >= 5,
        "expected at least 5 GETs with limit=2 for 10 objects, saw {}:\n{log}",
        requests.len()
    );
    ensure!(
        requests.iter().filter(|l| l.contains("continue=")).count() >= 4,
        "pages after the first must carry continue=:\n{log}"
    );
    Ok(())
}
