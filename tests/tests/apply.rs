//! Server-side apply, dry-run, diff, field validation, defaulting, validation and Service IP
//! allocation, driven by kubectl 1.32/1.35, raw HTTPS replays of the upstream captures in
//! `shared/upstream/apply`, and kube-rs (issue 3, "How it is checked").

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::{Api, Patch, PatchParams, PostParams};
use meso_tests::golden::{self, compare_status, diff, Message};
use meso_tests::{poll_until, write_file, Kubectl, MesoServer};
use serde_json::{json, Value};

meso_tests::for_each_kubectl!(
    ssa_multi_document_managers_conflicts_force,
    client_side_then_server_side_migration,
    diff_and_server_dry_run,
    validate_strict_and_warn,
    create_deployment_and_expose_defaults,
);

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

fn json_of(out: &str) -> Result<Value> {
    serde_json::from_str(out).with_context(|| format!("kubectl output is not JSON:\n{out}"))
}

fn stderr_of(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout_of(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `kubectl get KIND NAME -o json --show-managed-fields` (namespace `default` unless given).
fn kget(srv: &MesoServer, k: &Kubectl, what: &[&str]) -> Result<Value> {
    let mut args = vec!["get"];
    args.extend_from_slice(what);
    args.extend_from_slice(&["-o", "json", "--show-managed-fields"]);
    json_of(&srv.kubectl_ok(k, &args)?)
}

fn managers(obj: &Value) -> Vec<(String, String)> {
    obj["metadata"]["managedFields"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| {
                    (
                        m["manager"].as_str().unwrap_or("").to_string(),
                        m["operation"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The fieldsV1 of the managedFields entry of `manager` with `operation`.
fn fields_of<'a>(obj: &'a Value, manager: &str, operation: &str) -> Option<&'a Value> {
    obj["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|m| m["manager"] == manager && m["operation"] == operation)
        .map(|m| &m["fieldsV1"])
}

fn rv_of(obj: &Value) -> String {
    obj["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// What meso answered to a raw request, with its Warning headers.
#[derive(Debug)]
struct Resp {
    status: u16,
    warnings: Vec<String>,
    body: Value,
    raw: String,
}

async fn send(
    client: &reqwest::Client,
    method: &str,
    url: &str,
    content_type: Option<&str>,
    body: Option<Vec<u8>>,
) -> Result<Resp> {
    let mut b = client
        .request(meso_tests::method(method)?, url)
        .header("Accept", "application/json")
        .timeout(Duration::from_secs(30));
    if let Some(ct) = content_type {
        b = b.header("Content-Type", ct);
    }
    if let Some(body) = body {
        b = b.body(body);
    }
    let resp = b.send().await.with_context(|| format!("{method} {url}"))?;
    let status = resp.status().as_u16();
    let warnings = resp
        .headers()
        .get_all("warning")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect();
    let bytes = resp
        .bytes()
        .await
        .with_context(|| format!("{method} {url}"))?;
    let raw = String::from_utf8_lossy(&bytes).into_owned();
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(raw.clone()));
    Ok(Resp {
        status,
        warnings,
        body,
        raw,
    })
}

async fn send_json(
    client: &reqwest::Client,
    method: &str,
    url: &str,
    content_type: &str,
    body: &Value,
) -> Result<Resp> {
    send(
        client,
        method,
        url,
        Some(content_type),
        Some(serde_json::to_vec(body)?),
    )
    .await
}

async fn create_namespace(client: &reqwest::Client, base: &str, name: &str) -> Result<()> {
    let r = send_json(
        client,
        "POST",
        &format!("{base}/api/v1/namespaces"),
        "application/json",
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
    )
    .await?;
    ensure!(
        r.status == 201,
        "creating namespace {name}: {} {}",
        r.status,
        r.raw
    );
    Ok(())
}

/// The causes of a 422 Status as (field, reason, message).
fn causes(body: &Value) -> Vec<(String, String, String)> {
    body["details"]["causes"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| {
                    (
                        c["field"].as_str().unwrap_or("").to_string(),
                        c["reason"].as_str().unwrap_or("").to_string(),
                        c["message"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn expect_invalid(r: &Resp, what: &str, field: &str, message_part: &str) -> Vec<String> {
    let mut p = Vec::new();
    if r.status != 422 {
        p.push(format!(
            "{what}: status {} instead of 422: {}",
            r.status, r.raw
        ));
        return p;
    }
    if r.body["reason"] != "Invalid" || r.body["kind"] != "Status" {
        p.push(format!("{what}: not an Invalid Status: {}", r.raw));
    }
    let cs = causes(&r.body);
    if !cs
        .iter()
        .any(|(f, _, m)| f == field && m.contains(message_part))
    {
        p.push(format!(
            "{what}: no cause with field {field:?} and message containing {message_part:?}; causes: {cs:?}"
        ));
    }
    let msg = r.body["message"].as_str().unwrap_or("");
    if !msg.contains(&format!("{field}: ")) {
        p.push(format!(
            "{what}: message does not name the field {field:?}: {msg:?}"
        ));
    }
    p
}

// ---------------------------------------------------------------------------------------------
// kubectl: server-side apply with several managers
// ---------------------------------------------------------------------------------------------

const MULTI_DOC: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: app
        image: nginx:1.25
        ports:
        - containerPort: 80
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
data:
  greeting: hello
  mode: blue
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
  - name: http
    port: 80
    targetPort: 80
"#;

const BOB_ENV: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
      - name: app
        env:
        - name: BOB
          value: "1"
"#;

const CAROL_REPLICAS: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 5
"#;

fn ssa_multi_document_managers_conflicts_force(k: &Kubectl) -> Result<()> {
    let srv = MesoServer::start()?;
    let dir = srv.scratch_dir();
    let all = write_file(dir, "all.yaml", MULTI_DOC)?;
    let all = all.to_string_lossy().into_owned();
    let bob = write_file(dir, "bob.yaml", BOB_ENV)?;
    let bob = bob.to_string_lossy().into_owned();
    let carol = write_file(dir, "carol.yaml", CAROL_REPLICAS)?;
    let carol = carol.to_string_lossy().into_owned();

    let out = srv.kubectl_ok(k, &["apply", "--server-side", "-f", &all])?;
    for line in [
        "deployment.apps/web serverside-applied",
        "configmap/web-config serverside-applied",
        "service/web serverside-applied",
    ] {
        ensure!(out.contains(line), "apply output lacks {line:?}:\n{out}");
    }
    let d = kget(&srv, k, &["deployment", "web"])?;
    assert_eq!(d["spec"]["replicas"], 2, "{d}");
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.25"
    );
    assert_eq!(managers(&d), [("kubectl".into(), "Apply".into())], "{d}");
    let cm = kget(&srv, k, &["configmap", "web-config"])?;
    assert_eq!(cm["data"], json!({"greeting": "hello", "mode": "blue"}));
    let svc = kget(&srv, k, &["service", "web"])?;
    assert_eq!(svc["spec"]["ports"][0]["port"], 80, "{svc}");

    // bob owns a disjoint field of the same container: both survive.
    srv.kubectl_ok(
        k,
        &["apply", "--server-side", "--field-manager=bob", "-f", &bob],
    )?;
    let d = kget(&srv, k, &["deployment", "web"])?;
    let c = &d["spec"]["template"]["spec"]["containers"];
    assert_eq!(c.as_array().map(Vec::len), Some(1), "containers: {c}");
    assert_eq!(c[0]["image"], "nginx:1.25", "kubectl's image lost: {c}");
    assert_eq!(c[0]["ports"][0]["containerPort"], 80, "{c}");
    assert_eq!(c[0]["env"], json!([{"name": "BOB", "value": "1"}]), "{c}");
    assert_eq!(d["spec"]["replicas"], 2);
    let bob_fields = fields_of(&d, "bob", "Apply").context("no bob Apply entry")?;
    let bob_env = &bob_fields["f:spec"]["f:template"]["f:spec"]["f:containers"]
        ["k:{\"name\":\"app\"}"]["f:env"]["k:{\"name\":\"BOB\"}"];
    ensure!(
        bob_env.is_object(),
        "bob does not own env BOB: {bob_fields}"
    );
    ensure!(
        bob_fields["f:spec"].get("f:replicas").is_none(),
        "bob owns replicas: {bob_fields}"
    );

    // carol wants replicas, which kubectl owns: 409 naming the manager.
    let o = srv.kubectl(
        k,
        &[
            "apply",
            "--server-side",
            "--field-manager=carol",
            "-f",
            &carol,
        ],
    )?;
    let err = stderr_of(&o);
    ensure!(!o.status.success(), "conflicting apply succeeded: {err}");
    ensure!(
        err.contains("conflict with \"kubectl\"") && err.contains(".spec.replicas"),
        "conflict message should name the manager and the field:\n{err}"
    );
    ensure!(
        err.contains("Apply failed with 1 conflict"),
        "conflict message: {err}"
    );
    let d = kget(&srv, k, &["deployment", "web"])?;
    assert_eq!(
        d["spec"]["replicas"], 2,
        "rejected apply changed the object"
    );
    ensure!(
        !managers(&d).iter().any(|(m, _)| m == "carol"),
        "rejected apply recorded a manager: {:?}",
        managers(&d)
    );

    // --force-conflicts takes ownership.
    srv.kubectl_ok(
        k,
        &[
            "apply",
            "--server-side",
            "--field-manager=carol",
            "--force-conflicts",
            "-f",
            &carol,
        ],
    )?;
    let d = kget(&srv, k, &["deployment", "web"])?;
    assert_eq!(d["spec"]["replicas"], 5, "{d}");
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["env"],
        json!([{"name": "BOB", "value": "1"}])
    );
    let ms: BTreeSet<(String, String)> = managers(&d).into_iter().collect();
    let want: BTreeSet<(String, String)> =
        [("kubectl", "Apply"), ("bob", "Apply"), ("carol", "Apply")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
    assert_eq!(ms, want, "managers after the forced apply");
    let carol_f = fields_of(&d, "carol", "Apply").context("no carol entry")?;
    ensure!(
        carol_f["f:spec"].get("f:replicas").is_some(),
        "carol does not own replicas: {carol_f}"
    );
    let kubectl_f = fields_of(&d, "kubectl", "Apply").context("no kubectl entry")?;
    ensure!(
        kubectl_f["f:spec"].get("f:replicas").is_none(),
        "kubectl still owns replicas after the forced apply: {kubectl_f}"
    );
    ensure!(
        kubectl_f["f:spec"].get("f:selector").is_some(),
        "kubectl lost its other fields: {kubectl_f}"
    );

    // Now kubectl's own re-apply conflicts with carol.
    let o = srv.kubectl(k, &["apply", "--server-side", "-f", &all])?;
    let err = stderr_of(&o);
    ensure!(!o.status.success(), "re-apply should conflict with carol");
    ensure!(
        err.contains("conflict with \"carol\"") && err.contains(".spec.replicas"),
        "{err}"
    );
    // The ConfigMap and Service were untouched by the failed Deployment apply.
    let cm2 = kget(&srv, k, &["configmap", "web-config"])?;
    assert_eq!(cm2["data"], cm["data"]);
    Ok(())
}

const MIGRATE: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: mig
  labels:
    app: mig
    tier: backend
  annotations:
    note: keep-me
data:
  a: "1"
  b: "2"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: mig
spec:
  replicas: 3
  selector:
    matchLabels:
      app: mig
  template:
    metadata:
      labels:
        app: mig
    spec:
      containers:
      - name: app
        image: nginx:1.25
        env:
        - name: A
          value: "1"
        - name: B
          value: "2"
"#;

fn client_side_then_server_side_migration(k: &Kubectl) -> Result<()> {
    let srv = MesoServer::start()?;
    let dir = srv.scratch_dir();
    let f = write_file(dir, "mig.yaml", MIGRATE)?;
    let f = f.to_string_lossy().into_owned();

    srv.kubectl_ok(k, &["apply", "-f", &f])?;
    let cm0 = kget(&srv, k, &["configmap", "mig"])?;
    ensure!(
        cm0["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .is_string(),
        "client-side apply did not record last-applied: {cm0}"
    );
    ensure!(
        managers(&cm0).contains(&("kubectl-client-side-apply".into(), "Update".into())),
        "client-side apply manager missing: {:?}",
        managers(&cm0)
    );

    // A warning about the migration may be printed; it must succeed and lose nothing.
    srv.kubectl_ok(k, &["apply", "--server-side", "-f", &f])?;
    let cm = kget(&srv, k, &["configmap", "mig"])?;
    assert_eq!(cm["data"], json!({"a": "1", "b": "2"}), "{cm}");
    assert_eq!(
        cm["metadata"]["labels"],
        json!({"app": "mig", "tier": "backend"})
    );
    assert_eq!(cm["metadata"]["annotations"]["note"], "keep-me");
    let d = kget(&srv, k, &["deployment", "mig"])?;
    assert_eq!(d["spec"]["replicas"], 3);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["env"],
        json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])
    );
    for obj in [&cm, &d] {
        let ms = managers(obj);
        ensure!(
            ms.contains(&("kubectl".into(), "Apply".into())),
            "no kubectl Apply entry after --server-side: {ms:?}"
        );
        ensure!(
            !ms.iter().any(|(m, _)| m == "kubectl-client-side-apply"),
            "kubectl migrates the client-side-apply manager away (csaupgrade); still there: {ms:?}"
        );
    }

    // After the migration kubectl's apply owns the fields: dropping them removes them.
    let reduced = MIGRATE
        .replace("    tier: backend\n", "")
        .replace("  b: \"2\"\n", "")
        .replace("        - name: B\n          value: \"2\"\n", "");
    let f2 = write_file(dir, "mig2.yaml", &reduced)?;
    let f2 = f2.to_string_lossy().into_owned();
    srv.kubectl_ok(k, &["apply", "--server-side", "-f", &f2])?;
    let cm = kget(&srv, k, &["configmap", "mig"])?;
    assert_eq!(cm["data"], json!({"a": "1"}), "dropped key b: {cm}");
    assert_eq!(cm["metadata"]["labels"], json!({"app": "mig"}));
    assert_eq!(cm["metadata"]["annotations"]["note"], "keep-me");
    let d = kget(&srv, k, &["deployment", "mig"])?;
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["env"],
        json!([{"name": "A", "value": "1"}]),
        "dropped env B"
    );

    // The server keeps kubectl's last-applied annotation in step with what `kubectl` applied
    // server-side (upstream's lastAppliedUpdater), so client-side apply can take over again.
    let last: Value = serde_json::from_str(
        cm["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .as_str()
            .context("last-applied annotation kept")?,
    )?;
    assert_eq!(
        last["data"],
        json!({"a": "1"}),
        "last-applied follows SSA: {last}"
    );
    assert_eq!(last["metadata"]["labels"], json!({"app": "mig"}), "{last}");
    assert_eq!(
        last["metadata"]["annotations"],
        json!({"note": "keep-me"}),
        "last-applied never holds itself: {last}"
    );

    // And back to client-side apply: fields dropped from the manifest since the last
    // server-side apply are removed, new ones added.
    let back = reduced
        .replace("  a: \"1\"\n", "  c: \"3\"\n")
        .replace("    note: keep-me\n", "    other: x\n");
    let f3 = write_file(dir, "mig3.yaml", &back)?;
    let f3 = f3.to_string_lossy().into_owned();
    srv.kubectl_ok(k, &["apply", "-f", &f3])?;
    let cm = kget(&srv, k, &["configmap", "mig"])?;
    assert_eq!(
        cm["data"],
        json!({"c": "3"}),
        "client-side apply after SSA: {cm}"
    );
    assert_eq!(cm["metadata"]["labels"], json!({"app": "mig"}));
    let ann = &cm["metadata"]["annotations"];
    assert_eq!(ann["other"], "x", "{cm}");
    ensure!(ann.get("note").is_none(), "dropped annotation stays: {cm}");
    ensure!(
        managers(&cm).contains(&("kubectl-client-side-apply".into(), "Update".into())),
        "{:?}",
        managers(&cm)
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// kubectl diff and --dry-run=server
// ---------------------------------------------------------------------------------------------

const DIFF_BASE: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: app
        image: nginx:1.25
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
data:
  k: v
"#;

/// The changed lines of a unified diff (without the `---`/`+++` headers), trimmed, with a
/// YAML list dash removed, split into (removed, added).
fn changed_lines(out: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut removed = BTreeSet::new();
    let mut added = BTreeSet::new();
    for l in out.lines() {
        if l.starts_with("---") || l.starts_with("+++") {
            continue;
        }
        let clean = |s: &str| {
            let t = s.trim();
            t.strip_prefix("- ").unwrap_or(t).to_string()
        };
        if let Some(r) = l.strip_prefix('-') {
            removed.insert(clean(r));
        } else if let Some(a) = l.strip_prefix('+') {
            added.insert(clean(a));
        }
    }
    (removed, added)
}

fn diff_and_server_dry_run(k: &Kubectl) -> Result<()> {
    let srv = MesoServer::start()?;
    let dir = srv.scratch_dir();
    let base = write_file(dir, "base.yaml", DIFF_BASE)?;
    let base = base.to_string_lossy().into_owned();
    let changed = write_file(
        dir,
        "changed.yaml",
        &DIFF_BASE.replace("nginx:1.25", "nginx:1.27"),
    )?;
    let changed = changed.to_string_lossy().into_owned();

    srv.kubectl_ok(k, &["apply", "--server-side", "-f", &base])?;
    let d0 = kget(&srv, k, &["deployment", "web"])?;
    let cm0 = kget(&srv, k, &["configmap", "cfg"])?;

    // No change: exit 0, nothing printed.
    for extra in [&[][..], &["--server-side"][..]] {
        let mut args = vec!["diff"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["-f", &base]);
        let o = srv.kubectl(k, &args)?;
        ensure!(
            o.status.code() == Some(0) && stdout_of(&o).trim().is_empty(),
            "kubectl {args:?} of the applied file: {:?}\nstdout:\n{}\nstderr:\n{}",
            o.status.code(),
            stdout_of(&o),
            stderr_of(&o)
        );
    }

    // The image change: exit 1 and exactly the changed lines (generation moves with the spec).
    for extra in [&[][..], &["--server-side"][..]] {
        let mut args = vec!["diff"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["-f", &changed]);
        let o = srv.kubectl(k, &args)?;
        let out = stdout_of(&o);
        ensure!(
            o.status.code() == Some(1),
            "kubectl {args:?} should exit 1 (differences), got {:?}\nstdout:\n{out}\nstderr:\n{}",
            o.status.code(),
            stderr_of(&o)
        );
        let (removed, added) = changed_lines(&out);
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(
            (removed, added),
            (
                set(&["generation: 1", "image: nginx:1.25"]),
                set(&["generation: 2", "image: nginx:1.27"])
            ),
            "kubectl {args:?} output:\n{out}"
        );
        ensure!(
            out.contains("apps.v1.Deployment.default.web"),
            "diff names the object: {out}"
        );
        ensure!(
            !out.contains("ConfigMap"),
            "unchanged ConfigMap in the diff: {out}"
        );
    }

    // --dry-run=server stores nothing (client-side and server-side apply). The Deployment's
    // status may move with controllers, so its spec, generation and Apply entries are checked;
    // the ConfigMap's resourceVersion must stay put.
    let cm_changed = write_file(dir, "cm.yaml", &DIFF_BASE.replace("k: v", "k: v2"))?;
    let cm_changed = cm_changed.to_string_lossy().into_owned();
    let applies = |o: &Value| -> Vec<Value> {
        o["metadata"]["managedFields"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|m| m["operation"] == "Apply")
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    };
    for extra in [&[][..], &["--server-side"][..]] {
        for file in [&changed, &cm_changed] {
            let mut args = vec!["apply", "--dry-run=server"];
            args.extend_from_slice(extra);
            args.extend_from_slice(&["-f", file]);
            let out = srv.kubectl_ok(k, &args)?;
            ensure!(
                out.contains("(server dry run)"),
                "kubectl {args:?} output: {out}"
            );
        }
        let d = kget(&srv, k, &["deployment", "web"])?;
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.25",
            "dry run stored the change"
        );
        assert_eq!(d["metadata"]["generation"], 1);
        assert_eq!(applies(&d), applies(&d0));
        let cm = kget(&srv, k, &["configmap", "cfg"])?;
        assert_eq!(
            rv_of(&cm),
            rv_of(&cm0),
            "dry run stored a new resourceVersion"
        );
        assert_eq!(cm["data"]["k"], "v");
        assert_eq!(
            cm["metadata"]["managedFields"],
            cm0["metadata"]["managedFields"]
        );
    }
    // Create and delete with --dry-run=server.
    let out = srv.kubectl_ok(
        k,
        &[
            "create",
            "configmap",
            "ghost",
            "--from-literal=a=b",
            "--dry-run=server",
            "-o",
            "json",
        ],
    )?;
    let ghost = json_of(&out)?;
    assert_eq!(ghost["data"]["a"], "b", "dry-run create returns the object");
    let o = srv.kubectl(k, &["get", "configmap", "ghost"])?;
    ensure!(
        !o.status.success() && stderr_of(&o).contains("NotFound"),
        "dry-run create stored the object: {}",
        stderr_of(&o)
    );
    srv.kubectl_ok(k, &["delete", "configmap", "cfg", "--dry-run=server"])?;
    let cm = kget(&srv, k, &["configmap", "cfg"])?;
    assert_eq!(rv_of(&cm), rv_of(&cm0), "dry-run delete touched the object");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// kubectl --validate
// ---------------------------------------------------------------------------------------------

const UNKNOWN_FIELD: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: strict
spec:
  selector:
    matchLabels:
      app: strict
  template:
    metadata:
      labels:
        app: strict
    spec:
      containers:
      - name: app
        image: nginx
        bogusField: x
"#;

fn validate_strict_and_warn(k: &Kubectl) -> Result<()> {
    let srv = MesoServer::start()?;
    let f = write_file(srv.scratch_dir(), "unknown.yaml", UNKNOWN_FIELD)?;
    let f = f.to_string_lossy().into_owned();
    let field = "unknown field \"spec.template.spec.containers[0].bogusField\"";

    let o = srv.kubectl(k, &["apply", "--validate=strict", "-f", &f])?;
    let err = stderr_of(&o);
    ensure!(
        !o.status.success(),
        "--validate=strict accepted an unknown field"
    );
    ensure!(
        err.contains(field) && err.contains("strict decoding error"),
        "--validate=strict should name the field (server-side strict decoding):\n{err}"
    );
    let o = srv.kubectl(k, &["get", "deployment", "strict"])?;
    ensure!(!o.status.success(), "rejected object was stored");

    let o = srv.kubectl(k, &["apply", "--validate=warn", "-f", &f])?;
    let err = stderr_of(&o);
    ensure!(
        o.status.success(),
        "--validate=warn failed: {err}\n{}",
        stdout_of(&o)
    );
    ensure!(
        err.contains(&format!("Warning: {field}")),
        "--validate=warn should print the warning:\n{err}"
    );
    let d = kget(&srv, k, &["deployment", "strict"])?;
    ensure!(
        d["spec"]["template"]["spec"]["containers"][0]
            .get("bogusField")
            .is_none(),
        "unknown field stored: {d}"
    );

    // Server-side apply refuses fields missing from the schema whatever --validate says.
    let f2 = write_file(
        srv.scratch_dir(),
        "unknown2.yaml",
        &UNKNOWN_FIELD.replace("name: strict\n", "name: strict2\n"),
    )?;
    let f2 = f2.to_string_lossy().into_owned();
    let o = srv.kubectl(k, &["apply", "--server-side", "-f", &f2])?;
    let err = stderr_of(&o);
    ensure!(!o.status.success(), "SSA accepted an undeclared field");
    ensure!(
        err.contains("bogusField: field not declared in schema"),
        "SSA error should name the field:\n{err}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// kubectl create deployment / expose: defaults as upstream
// ---------------------------------------------------------------------------------------------

fn create_deployment_and_expose_defaults(k: &Kubectl) -> Result<()> {
    let srv = MesoServer::start()?;
    srv.kubectl_ok(k, &["create", "deployment", "web", "--image=busybox"])?;
    srv.kubectl_ok(k, &["expose", "deployment", "web", "--port=80"])?;

    let d = kget(&srv, k, &["deployment", "web"])?;
    let up = golden::load("defaults/deployment.json")?.response.body;
    let mut want = up["spec"].clone();
    // Upstream's capture was `nginx` in container `web`; kubectl names the container after the
    // image.
    want["template"]["spec"]["containers"][0]["name"] = json!("busybox");
    want["template"]["spec"]["containers"][0]["image"] = json!("busybox");
    let mut got = d["spec"].clone();
    if let Some(m) = got["template"]["metadata"].as_object_mut() {
        // kubectl sends `creationTimestamp: null` in the template; upstream may echo it.
        if m.get("creationTimestamp") == Some(&Value::Null) {
            m.remove("creationTimestamp");
        }
    }
    let problems = diff(&want, &got);
    ensure!(
        problems.is_empty(),
        "deployment defaults differ from upstream (defaults/deployment.json):\n{}",
        problems.join("\n")
    );
    assert_eq!(d["metadata"]["labels"], json!({"app": "web"}));
    assert_eq!(d["metadata"]["generation"], 1);

    let s = kget(&srv, k, &["service", "web"])?;
    let up = golden::load("defaults/service-clusterip.json")?
        .response
        .body;
    let ip = s["spec"]["clusterIP"].as_str().unwrap_or("").to_string();
    let mut want = up["spec"].clone();
    want["clusterIP"] = json!(ip);
    want["clusterIPs"] = json!([ip]);
    let problems = diff(&want, &s["spec"]);
    ensure!(
        problems.is_empty(),
        "service defaults differ from upstream (defaults/service-clusterip.json):\n{}",
        problems.join("\n")
    );
    assert_eq!(s["status"], json!({"loadBalancer": {}}));
    let addr: Ipv4Addr = ip
        .parse()
        .with_context(|| format!("clusterIP {ip:?} is not IPv4"))?;
    ensure!(
        in_service_range(addr) && addr != Ipv4Addr::new(10, 43, 0, 1),
        "clusterIP {addr} outside 10.43.0.0/16 (or the kubernetes Service's)"
    );
    Ok(())
}

fn in_service_range(a: Ipv4Addr) -> bool {
    let o = a.octets();
    o[0] == 10 && o[1] == 43
}

// ---------------------------------------------------------------------------------------------
// Replays of shared/upstream/apply
// ---------------------------------------------------------------------------------------------

/// Removes what differs between runs and what controllers may add later: uid,
/// resourceVersion, creationTimestamp, generation, managedFields times, `status`, Update
/// entries of managedFields (the captures had no controllers) and the Deployment revision
/// annotation.
fn normalize_applied(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        for k in ["uid", "resourceVersion", "creationTimestamp", "generation"] {
            m.remove(k);
        }
        if let Some(a) = m.get_mut("annotations").and_then(|a| a.as_object_mut()) {
            a.remove("deployment.kubernetes.io/revision");
        }
        if m.get("annotations")
            .and_then(|a| a.as_object())
            .is_some_and(|a| a.is_empty())
        {
            m.remove("annotations");
        }
        if let Some(mf) = m.get_mut("managedFields").and_then(|x| x.as_array_mut()) {
            mf.retain(|e| e["operation"] != "Update");
            for e in mf.iter_mut() {
                if let Some(e) = e.as_object_mut() {
                    e.remove("time");
                }
            }
        }
    }
    if let Some(m) = v.as_object_mut() {
        m.remove("status");
    }
    v
}

async fn replay_apply_case(
    client: &reqwest::Client,
    base: &str,
    file: &str,
    results: &mut Vec<(String, Vec<String>)>,
) -> Result<Resp> {
    let cap = golden::load(file)?;
    let req = &cap.request;
    let mut url = format!("{base}{}", req.path);
    if !req.query.is_empty() {
        url.push('?');
        url.push_str(&req.query);
    }
    let body = match &req.body {
        Value::Null => None,
        Value::String(s) => Some(s.clone().into_bytes()),
        other => Some(serde_json::to_vec(other)?),
    };
    let ct = req.headers.get("Content-Type").map(String::as_str);
    let r = send(client, &req.method, &url, ct, body).await?;
    let mut p = Vec::new();
    if r.status != cap.response.status {
        p.push(format!(
            "status {} instead of {}: {}",
            r.status, cap.response.status, r.raw
        ));
    } else if file.contains("-unknown-field") && cap.response.status == 500 {
        // Upstream lists one or both undeclared fields depending on Go's map order (07 and
        // 09 name both, 08 only .spec.bogusField): require the prefix and that field.
        p.extend(compare_status(
            &cap.response.body,
            &r.body,
            Message::Prefix(
                "failed to create typed patch object (/ssa-demo; apps/v1, Kind=Deployment): ",
            ),
        ));
        let msg = r.body["message"].as_str().unwrap_or("");
        if !msg.contains(".spec.bogusField: field not declared in schema") {
            p.push(format!("message does not name .spec.bogusField: {msg:?}"));
        }
    } else if cap.response.body["kind"] == "Status" {
        p.extend(compare_status(&cap.response.body, &r.body, Message::Exact));
    } else {
        p.extend(diff(
            &normalize_applied(&cap.response.body),
            &normalize_applied(&r.body),
        ));
    }
    let want_warnings: Vec<String> = cap
        .response
        .headers
        .get("Warning")
        .and_then(|w| w.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if r.warnings != want_warnings {
        p.push(format!(
            "Warning headers: got {:?}, upstream {want_warnings:?}",
            r.warnings
        ));
    }
    results.push((file.to_string(), p));
    Ok(r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_captures_alice_bob_carol_dave() -> Result<()> {
    let srv = MesoServer::start()?;
    let client = srv.http()?;
    let base = srv.base_url()?;
    create_namespace(&client, &base, "golden").await?;
    let mut results = Vec::new();
    let steps = [
        "01-alice-create",
        "02-bob-disjoint",
        "03-carol-conflict",
        "04-carol-force",
        "05-alice-drops-fields",
        "06-dave-dryrun",
    ];
    // Upstream orders managedFields entries by time in seconds, then by manager; its capture
    // ran every step within one second. Start at the top of a second so the replay does too
    // (a replay straddling a second boundary orders alice's and bob's entries by time).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let to_next_second = Duration::from_nanos(1_000_000_000 - u64::from(now.subsec_nanos()));
    tokio::time::sleep(to_next_second + Duration::from_millis(5)).await;
    for step in steps {
        replay_apply_case(&client, &base, &format!("apply/{step}.json"), &mut results).await?;
        replay_apply_case(
            &client,
            &base,
            &format!("apply/{step}-get.json"),
            &mut results,
        )
        .await?;
    }
    golden::report(
        "server-side apply replay (apply/01..06)",
        &results,
        results.len(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_validation_captures() -> Result<()> {
    let srv = MesoServer::start()?;
    let client = srv.http()?;
    let base = srv.base_url()?;
    create_namespace(&client, &base, "golden").await?;
    // The apply cases run against ssa-demo as the capture session left it after step 06.
    let mut setup = Vec::new();
    for step in [
        "01-alice-create",
        "02-bob-disjoint",
        "04-carol-force",
        "05-alice-drops-fields",
    ] {
        replay_apply_case(&client, &base, &format!("apply/{step}.json"), &mut setup).await?;
    }
    let mut results = Vec::new();
    for case in [
        "07-fieldValidation-Strict-unknown-field",
        "08-fieldValidation-Warn-unknown-field",
        "09-fieldValidation-Ignore-unknown-field",
        "10-no-fieldManager-400",
        "11-post-fieldValidation-Warn-unknown-field",
        "12-post-fieldValidation-Strict-unknown-field",
        "13-post-fieldValidation-default-unknown-field",
        "15-fieldValidation-Strict-duplicate-field",
        "16-fieldValidation-Warn-duplicate-field",
    ] {
        replay_apply_case(&client, &base, &format!("apply/{case}.json"), &mut results).await?;
    }

    // 14: the capture's JSON body lost its duplicate key when it was stored as parsed JSON;
    // send the original bytes.
    let cap = golden::load("apply/14-post-fieldValidation-Strict-duplicate-field.json")?;
    let raw = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"fv-dup"},"data":{"k":"v1","k":"v2"}}"#;
    let mut p = Vec::new();
    let r = send(
        &client,
        "POST",
        &format!("{base}/api/v1/namespaces/golden/configmaps?fieldValidation=Strict"),
        Some("application/json"),
        Some(raw.to_vec()),
    )
    .await?;
    if r.status != cap.response.status {
        p.push(format!("status {} instead of 400: {}", r.status, r.raw));
    } else {
        p.extend(compare_status(&cap.response.body, &r.body, Message::Exact));
    }
    // The same duplicate with Warn (default) is created with a Warning, last value wins.
    let r = send(
        &client,
        "POST",
        &format!("{base}/api/v1/namespaces/golden/configmaps"),
        Some("application/json"),
        Some(raw.to_vec()),
    )
    .await?;
    if r.status != 201 {
        p.push(format!(
            "default fieldValidation with a duplicate: {}",
            r.raw
        ));
    } else {
        if r.body["data"] != json!({"k": "v2"}) {
            p.push(format!(
                "duplicate: last value should win: {}",
                r.body["data"]
            ));
        }
        let want = vec!["299 - \"duplicate field \\\"data.k\\\"\"".to_string()];
        if r.warnings != want {
            p.push(format!(
                "duplicate Warning: got {:?}, upstream form {want:?}",
                r.warnings
            ));
        }
    }
    results.push((
        "apply/14-post-fieldValidation-Strict-duplicate-field".into(),
        p,
    ));

    // Nothing was stored by the rejected requests.
    for (path, want) in [
        ("/api/v1/namespaces/golden/configmaps/fv-strict", 404),
        ("/api/v1/namespaces/golden/configmaps/fv-warn", 200),
        ("/api/v1/namespaces/golden/configmaps/fv-default", 200),
    ] {
        let r = send(&client, "GET", &format!("{base}{path}"), None, None).await?;
        let mut p = Vec::new();
        if r.status != want {
            p.push(format!("GET {path}: {} instead of {want}", r.status));
        } else if want == 200 && r.body["metadata"].get("bogusMeta").is_some() {
            p.push(format!("unknown field stored: {}", r.raw));
        }
        results.push((format!("GET {path}"), p));
    }
    golden::report(
        "field validation replay (apply/07..16)",
        &results,
        results.len(),
    )
}

// ---------------------------------------------------------------------------------------------
// Validation: 422 with the right field path
// ---------------------------------------------------------------------------------------------

fn deployment(name: &str, containers: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": containers}}
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_objects_answer_422_with_field_paths() -> Result<()> {
    let srv = MesoServer::start()?;
    let client = srv.http()?;
    let base = srv.base_url()?;
    create_namespace(&client, &base, "golden").await?;
    let ns = format!("{base}/api/v1/namespaces/golden");
    let apps = format!("{base}/apis/apps/v1/namespaces/golden");
    let batch = format!("{base}/apis/batch/v1/namespaces/golden");
    let mut problems: Vec<String> = Vec::new();

    // Bad name (kubectl-style manifest and raw POST).
    let r = send_json(
        &client,
        "POST",
        &format!("{apps}/deployments"),
        "application/json",
        &deployment("Web_1", json!([{"name": "a", "image": "nginx"}])),
    )
    .await?;
    problems.extend(expect_invalid(
        &r,
        "bad deployment name",
        "metadata.name",
        "Invalid value: \"Web_1\"",
    ));

    // Duplicate container names.
    let r = send_json(
        &client,
        "POST",
        &format!("{apps}/deployments"),
        "application/json",
        &deployment(
            "dup",
            json!([{"name": "a", "image": "nginx"}, {"name": "a", "image": "busybox"}]),
        ),
    )
    .await?;
    problems.extend(expect_invalid(
        &r,
        "duplicate container names",
        "spec.template.spec.containers[1].name",
        "Duplicate value: \"a\"",
    ));
    if let Some((_, reason, _)) = causes(&r.body)
        .into_iter()
        .find(|(f, _, _)| f == "spec.template.spec.containers[1].name")
    {
        if reason != "FieldValueDuplicate" {
            problems.push(format!("duplicate container cause reason {reason}"));
        }
    }

    // Selector mismatch, exactly as upstream.
    let cap = golden::load("errors/create-deployment-selector-mismatch-422.json")?;
    let r = send_json(
        &client,
        "POST",
        &format!("{apps}/deployments"),
        "application/json",
        &cap.request.body,
    )
    .await?;
    if r.status != 422 {
        problems.push(format!("selector mismatch: {} {}", r.status, r.raw));
    } else {
        problems.extend(
            compare_status(&cap.response.body, &r.body, Message::Exact)
                .into_iter()
                .map(|d| format!("selector mismatch: {d}")),
        );
    }

    // Port out of range.
    let r = send_json(
        &client,
        "POST",
        &format!("{ns}/services"),
        "application/json",
        &json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "badport"},
                "spec": {"ports": [{"port": 70000}]}}),
    )
    .await?;
    problems.extend(expect_invalid(
        &r,
        "service port out of range",
        "spec.ports[0].port",
        "must be between 1 and 65535",
    ));

    // Job spec.selector is immutable.
    let r = send_json(
        &client,
        "POST",
        &format!("{batch}/jobs"),
        "application/json",
        &json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
                "spec": {"template": {"spec": {"restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "busybox"}]}}}}),
    )
    .await?;
    ensure!(r.status == 201, "creating job: {}", r.raw);
    let r = send_json(
        &client,
        "PATCH",
        &format!("{batch}/jobs/j"),
        "application/merge-patch+json",
        &json!({"spec": {"selector": {"matchLabels": {"extra": "x"}}}}),
    )
    .await?;
    problems.extend(expect_invalid(
        &r,
        "job selector change",
        "spec.selector",
        "field is immutable",
    ));

    // Service clusterIP is immutable.
    let r = send_json(
        &client,
        "POST",
        &format!("{ns}/services"),
        "application/json",
        &json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "fixed"},
                "spec": {"ports": [{"port": 80}]}}),
    )
    .await?;
    ensure!(r.status == 201, "creating service: {}", r.raw);
    let ip: Ipv4Addr = r.body["spec"]["clusterIP"]
        .as_str()
        .unwrap_or("")
        .parse()
        .context("clusterIP")?;
    let o = ip.octets();
    let other = Ipv4Addr::new(o[0], o[1], o[2], o[3].wrapping_add(7).max(2));
    let r = send_json(
        &client,
        "PATCH",
        &format!("{ns}/services/fixed"),
        "application/merge-patch+json",
        &json!({"spec": {"clusterIP": other.to_string(), "clusterIPs": [other.to_string()]}}),
    )
    .await?;
    if r.status != 422 || r.body["reason"] != "Invalid" {
        problems.push(format!("clusterIP change: {} {}", r.status, r.raw));
    } else if !causes(&r.body)
        .iter()
        .any(|(f, _, m)| f.starts_with("spec.clusterIP") && m.contains("may not change once set"))
    {
        problems.push(format!(
            "clusterIP change: no spec.clusterIPs cause 'may not change once set': {}",
            r.raw
        ));
    }

    // ConfigMap immutable.
    let r = send_json(
        &client,
        "POST",
        &format!("{ns}/configmaps"),
        "application/json",
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "frozen"},
                "immutable": true, "data": {"k": "v"}}),
    )
    .await?;
    ensure!(r.status == 201, "creating immutable configmap: {}", r.raw);
    let r = send_json(
        &client,
        "PATCH",
        &format!("{ns}/configmaps/frozen"),
        "application/merge-patch+json",
        &json!({"data": {"k": "v2"}}),
    )
    .await?;
    problems.extend(expect_invalid(
        &r,
        "immutable configmap data change",
        "data",
        "field is immutable when `immutable` is set",
    ));
    let r = send_json(
        &client,
        "PATCH",
        &format!("{ns}/configmaps/frozen"),
        "application/merge-patch+json",
        &json!({"immutable": false}),
    )
    .await?;
    problems.extend(expect_invalid(
        &r,
        "immutable configmap unfreeze",
        "immutable",
        "field is immutable when `immutable` is set",
    ));
    let r = send(
        &client,
        "GET",
        &format!("{ns}/configmaps/frozen"),
        None,
        None,
    )
    .await?;
    if r.body["data"] != json!({"k": "v"}) {
        problems.push(format!("immutable configmap changed: {}", r.raw));
    }

    ensure!(
        problems.is_empty(),
        "validation problems:\n{}",
        problems.join("\n")
    );
    Ok(())
}

/// The same invalid manifests through kubectl: the error names the field path.
#[test]
fn kubectl_invalid_manifests_name_the_field() -> Result<()> {
    let Some(k) = meso_tests::kubectl_132() else {
        return Ok(());
    };
    let srv = MesoServer::start()?;
    let invalid = "is invalid";
    let cases = [
        (
            "bad-name.yaml",
            serde_yaml::to_string(&deployment("Web_1", json!([{"name": "a", "image": "nginx"}])))?,
            "metadata.name: Invalid value: \"Web_1\"",
            "metadata.name: Invalid value: \"Web_1\"",
        ),
        (
            "dup.yaml",
            serde_yaml::to_string(&deployment(
                "dup",
                json!([{"name": "a", "image": "nginx"}, {"name": "a", "image": "nginx"}]),
            ))?,
            "spec.template.spec.containers[1].name: Duplicate value: \"a\"",
            // Server-side apply refuses the list before validation runs.
            ".spec.template.spec.containers: duplicate entries for key [name=\"a\"]",
        ),
        (
            "mismatch.yaml",
            serde_yaml::to_string(&golden::load("errors/create-deployment-selector-mismatch-422.json")?.request.body)?,
            "spec.template.metadata.labels: Invalid value: {\"app\":\"two\"}: `selector` does not match template `labels`",
            "spec.template.metadata.labels: Invalid value: {\"app\":\"two\"}: `selector` does not match template `labels`",
        ),
    ];
    let mut problems = Vec::new();
    for (file, yaml, client_side, server_side) in &cases {
        let f = write_file(srv.scratch_dir(), file, yaml)?;
        let f = f.to_string_lossy().into_owned();
        for (mode, expect) in [
            (&[][..], client_side),
            (&["--server-side"][..], server_side),
        ] {
            let mut args = vec!["apply"];
            args.extend_from_slice(mode);
            args.extend_from_slice(&["-f", &f]);
            let o = srv.kubectl(&k, &args)?;
            let err = stderr_of(&o);
            let needs_invalid =
                expect.contains("Invalid value") || expect.contains("Duplicate value");
            if o.status.success()
                || !err.contains(*expect)
                || (needs_invalid && !err.contains(invalid))
            {
                problems.push(format!(
                    "kubectl {args:?}: expected failure naming {expect:?}, got {:?}:\n{err}",
                    o.status.code()
                ));
            }
        }
    }
    // Mutating an immutable field through kubectl apply.
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: frozen\nimmutable: true\ndata:\n  k: v\n";
    srv.kubectl_stdin_ok(&k, &["apply", "--server-side", "-f", "-"], cm)?;
    let o = srv.kubectl_stdin(
        &k,
        &["apply", "--server-side", "-f", "-"],
        &cm.replace("k: v", "k: v2"),
    )?;
    let err = stderr_of(&o);
    if o.status.success()
        || !err.contains("data: Forbidden: field is immutable when `immutable` is set")
    {
        problems.push(format!("immutable configmap via kubectl:\n{err}"));
    }
    ensure!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Service IP and NodePort allocation
// ---------------------------------------------------------------------------------------------

fn service(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_ip_and_node_port_allocation() -> Result<()> {
    let srv = MesoServer::start()?;
    let client = srv.http()?;
    let base = srv.base_url()?;
    let svcs = format!("{base}/api/v1/namespaces/default/services");

    // The kubernetes Service owns the first address and points at the API server.
    let r = send(&client, "GET", &format!("{svcs}/kubernetes"), None, None).await?;
    ensure!(r.status == 200, "GET kubernetes service: {}", r.raw);
    assert_eq!(r.body["spec"]["clusterIP"], "10.43.0.1", "{}", r.raw);
    assert_eq!(r.body["spec"]["clusterIPs"], json!(["10.43.0.1"]));
    assert_eq!(r.body["spec"]["type"], "ClusterIP");
    let port = &r.body["spec"]["ports"][0];
    assert_eq!(port["name"], "https", "{}", r.raw);
    assert_eq!(port["port"], 443);
    assert_eq!(port["protocol"], "TCP");
    assert_eq!(
        port["targetPort"],
        json!(srv.port()),
        "targetPort is the API server's secure port"
    );

    let mut ips = BTreeMap::new();
    for name in ["a", "b"] {
        let r = send_json(
            &client,
            "POST",
            &svcs,
            "application/json",
            &service(name, json!({"ports": [{"port": 80}]})),
        )
        .await?;
        ensure!(r.status == 201, "create service {name}: {}", r.raw);
        let ip: Ipv4Addr = r.body["spec"]["clusterIP"]
            .as_str()
            .unwrap_or("")
            .parse()
            .with_context(|| format!("clusterIP of {name}: {}", r.raw))?;
        ensure!(
            in_service_range(ip) && ip != Ipv4Addr::new(10, 43, 0, 1),
            "service {name} got {ip}, outside 10.43.0.0/16 or the kubernetes IP"
        );
        assert_eq!(r.body["spec"]["clusterIPs"], json!([ip.to_string()]));
        ips.insert(name, ip);
    }
    ensure!(ips["a"] != ips["b"], "two services share {}", ips["a"]);

    // A taken IP answers 422.
    let taken = ips["a"].to_string();
    let r = send_json(
        &client,
        "POST",
        &svcs,
        "application/json",
        &service("c", json!({"clusterIP": taken, "ports": [{"port": 80}]})),
    )
    .await?;
    ensure!(
        r.status == 422
            && r.body["reason"] == "Invalid"
            && r.raw.contains("provided IP is already allocated"),
        "requesting a taken clusterIP: {} {}",
        r.status,
        r.raw
    );
    if !causes(&r.body)
        .iter()
        .any(|(f, _, _)| f == "spec.clusterIPs")
    {
        bail!(
            "taken clusterIP: cause field should be spec.clusterIPs: {}",
            r.raw
        );
    }
    // Outside the range: 422.
    let r = send_json(
        &client,
        "POST",
        &svcs,
        "application/json",
        &service(
            "d",
            json!({"clusterIP": "10.99.0.5", "ports": [{"port": 80}]}),
        ),
    )
    .await?;
    ensure!(
        r.status == 422 && r.raw.contains("not in the valid range"),
        "clusterIP outside the range: {} {}",
        r.status,
        r.raw
    );

    // Deleting frees the address.
    let r = send(&client, "DELETE", &format!("{svcs}/a"), None, None).await?;
    ensure!(r.status == 200, "delete a: {}", r.raw);
    let client2 = client.clone();
    let svcs2 = svcs.clone();
    let taken2 = taken.clone();
    let got = tokio::task::spawn_blocking(move || {
        poll_until(Duration::from_secs(10), "the freed clusterIP", || {
            let c = client2.clone();
            let url = svcs2.clone();
            let ip = taken2.clone();
            let r = meso_tests::block_on_thread(move || async move {
                send_json(
                    &c,
                    "POST",
                    &url,
                    "application/json",
                    &service("c", json!({"clusterIP": ip, "ports": [{"port": 80}]})),
                )
                .await
            })?;
            Ok((r.status == 201).then_some(r))
        })
    })
    .await??;
    assert_eq!(got.body["spec"]["clusterIP"], json!(taken));

    // NodePorts: in range, distinct, a taken one answers 422.
    let mut node_ports = Vec::new();
    for name in ["np1", "np2"] {
        let r = send_json(
            &client,
            "POST",
            &svcs,
            "application/json",
            &service(name, json!({"type": "NodePort", "ports": [{"port": 80}]})),
        )
        .await?;
        ensure!(r.status == 201, "create {name}: {}", r.raw);
        let p = r.body["spec"]["ports"][0]["nodePort"]
            .as_u64()
            .with_context(|| format!("no nodePort: {}", r.raw))?;
        ensure!((30000..=32767).contains(&p), "nodePort {p} out of range");
        assert_eq!(r.body["spec"]["externalTrafficPolicy"], "Cluster");
        node_ports.push(p);
    }
    ensure!(
        node_ports[0] != node_ports[1],
        "nodePorts collide: {node_ports:?}"
    );
    let r = send_json(
        &client,
        "POST",
        &svcs,
        "application/json",
        &service(
            "np3",
            json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": node_ports[0]}]}),
        ),
    )
    .await?;
    ensure!(
        r.status == 422 && r.raw.contains("provided port is already allocated"),
        "taken nodePort: {} {}",
        r.status,
        r.raw
    );
    if !causes(&r.body)
        .iter()
        .any(|(f, _, _)| f == "spec.ports[0].nodePort")
    {
        bail!(
            "taken nodePort: cause field should be spec.ports[0].nodePort: {}",
            r.raw
        );
    }

    // As upstream's endpoint reconciler does, the kubernetes Endpoints point at the API
    // server's secure port.
    let ep = send(
        &client,
        "GET",
        &format!("{base}/api/v1/namespaces/default/endpoints/kubernetes"),
        None,
        None,
    )
    .await?;
    ensure!(ep.status == 200, "GET endpoints/kubernetes: {}", ep.raw);
    assert_eq!(
        ep.body["subsets"][0]["ports"][0]["port"],
        json!(srv.port()),
        "{}",
        ep.raw
    );
    assert_eq!(ep.body["subsets"][0]["ports"][0]["name"], "https");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// kube-rs: Patch::Apply (with force) and Patch::Strategic
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_apply_force_and_strategic() -> Result<()> {
    let srv = MesoServer::start()?;
    let client = srv.kube_client().await?;
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let manifest = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "kr"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "kr"}},
            "template": {"metadata": {"labels": {"app": "kr"}},
                "spec": {"containers": [
                    {"name": "app", "image": "nginx:1.25",
                     "env": [{"name": "A", "value": "1"}]},
                    {"name": "sidecar", "image": "busybox:1.36"}
                ]}}
        }
    });
    let d = deps
        .patch("kr", &PatchParams::apply("x"), &Patch::Apply(&manifest))
        .await
        .context("create by apply")?;
    assert_eq!(d.spec.as_ref().and_then(|s| s.replicas), Some(2));
    let mf = d.metadata.managed_fields.clone().unwrap_or_default();
    ensure!(
        mf.len() == 1
            && mf[0].manager.as_deref() == Some("x")
            && mf[0].operation.as_deref() == Some("Apply"),
        "managedFields after create-by-apply: {mf:?}"
    );
    // Same configuration again: nothing changes (the Deployment's status may move with
    // controllers, so generation and managedFields are compared; a ConfigMap's
    // resourceVersion must stay put).
    let again = deps
        .patch("kr", &PatchParams::apply("x"), &Patch::Apply(&manifest))
        .await?;
    assert_eq!(again.metadata.generation, d.metadata.generation);
    assert_eq!(again.metadata.managed_fields, d.metadata.managed_fields);
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kr"},
                    "data": {"a": "1"}});
    let c1 = cms
        .patch("kr", &PatchParams::apply("x"), &Patch::Apply(&cm))
        .await?;
    let c2 = cms
        .patch("kr", &PatchParams::apply("x"), &Patch::Apply(&cm))
        .await?;
    assert_eq!(
        c1.metadata.resource_version, c2.metadata.resource_version,
        "no-op apply wrote"
    );

    // Another manager conflicts on replicas.
    let y = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "kr"},
                   "spec": {"replicas": 4}});
    match deps
        .patch("kr", &PatchParams::apply("y"), &Patch::Apply(&y))
        .await
    {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 409, "{s:?}");
            assert_eq!(s.reason, "Conflict", "{s:?}");
            ensure!(
                s.message.contains("conflict with \"x\"") && s.message.contains(".spec.replicas"),
                "conflict message: {}",
                s.message
            );
        }
        other => bail!("conflicting apply should fail with 409, got {other:?}"),
    }
    let forced = deps
        .patch("kr", &PatchParams::apply("y").force(), &Patch::Apply(&y))
        .await
        .context("forced apply")?;
    assert_eq!(forced.spec.as_ref().and_then(|s| s.replicas), Some(4));
    let mf = forced.metadata.managed_fields.clone().unwrap_or_default();
    let y_entry = mf
        .iter()
        .find(|m| m.manager.as_deref() == Some("y"))
        .context("no y entry")?;
    let y_fields = serde_json::to_value(&y_entry.fields_v1)?;
    ensure!(
        y_fields["f:spec"].get("f:replicas").is_some(),
        "y should own replicas: {y_fields}"
    );
    let x_entry = mf
        .iter()
        .find(|m| m.manager.as_deref() == Some("x"))
        .context("no x entry")?;
    let x_fields = serde_json::to_value(&x_entry.fields_v1)?;
    ensure!(
        x_fields["f:spec"].get("f:replicas").is_none(),
        "x still owns replicas: {x_fields}"
    );

    // Strategic merge: containers merge by name, env by name.
    let sp = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "nginx:1.27", "env": [{"name": "B", "value": "2"}]}
    ]}}}});
    let s = deps
        .patch("kr", &PatchParams::default(), &Patch::Strategic(&sp))
        .await
        .context("strategic merge patch")?;
    let v = serde_json::to_value(&s)?;
    let cs = &v["spec"]["template"]["spec"]["containers"];
    let names: Vec<&str> = cs
        .as_array()
        .map(|a| a.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["app", "sidecar"], "containers merged by name: {cs}");
    assert_eq!(cs[0]["image"], "nginx:1.27");
    assert_eq!(
        cs[0]["env"],
        json!([{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]),
        "env merged by name, in upstream's order (patch/01-strategic-merge-patch.json)"
    );
    assert_eq!(cs[1]["image"], "busybox:1.36", "sidecar untouched");
    let ms: Vec<(String, String)> = managers(&v);
    ensure!(
        ms.iter().any(|(_, op)| op == "Update"),
        "the strategic patch should add an Update entry: {ms:?}"
    );
    // The $patch: delete directive removes the sidecar.
    let del = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "sidecar", "$patch": "delete"}
    ]}}}});
    let s = deps
        .patch("kr", &PatchParams::default(), &Patch::Strategic(&del))
        .await?;
    let v = serde_json::to_value(&s)?;
    let names: Vec<&str> = v["spec"]["template"]["spec"]["containers"]
        .as_array()
        .map(|a| a.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["app"]);

    // Apply to the status subresource of a Service.
    let svcs: Api<Service> = Api::namespaced(client.clone(), "default");
    svcs.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "lb"},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}}))?,
    )
    .await?;
    let st = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "lb"},
                    "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}}});
    let s = svcs
        .patch_status("lb", &PatchParams::apply("lb-ctl"), &Patch::Apply(&st))
        .await
        .context("apply to status")?;
    let v = serde_json::to_value(&s)?;
    assert_eq!(
        v["status"]["loadBalancer"]["ingress"][0]["ip"], "192.0.2.10",
        "{v}"
    );
    let entry = v["metadata"]["managedFields"]
        .as_array()
        .and_then(|a| a.iter().find(|m| m["manager"] == "lb-ctl"))
        .cloned()
        .with_context(|| format!("no lb-ctl entry after apply to status: {v}"))?;
    assert_eq!(entry["operation"], "Apply");
    assert_eq!(entry["subresource"], "status", "{entry}");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Property-style: idempotent apply and removal of dropped fields
// ---------------------------------------------------------------------------------------------

/// A tiny deterministic generator (xorshift64*), so failures are reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
}

async fn apply_as(
    client: &reqwest::Client,
    url: &str,
    manager: &str,
    obj: &Value,
) -> Result<Value> {
    let r = send(
        client,
        "PATCH",
        &format!("{url}?fieldManager={manager}"),
        Some("application/apply-patch+yaml"),
        Some(serde_json::to_vec(obj)?),
    )
    .await?;
    ensure!(
        r.status == 200 || r.status == 201,
        "apply as {manager}: {} {}\n{}",
        r.status,
        r.raw,
        obj
    );
    Ok(r.body)
}

fn str_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn env_map(container: &Value) -> BTreeMap<String, String> {
    container["env"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    (
                        e["name"].as_str().unwrap_or("").to_string(),
                        e["value"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn property_apply_idempotent_and_drops_exactly_removed_fields() -> Result<()> {
    let srv = MesoServer::start()?;
    let client = srv.http()?;
    let base = srv.base_url()?;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut failures = Vec::new();

    for case in 0..12 {
        let name = format!("prop-{case}");
        let url = format!("{base}/api/v1/namespaces/default/configmaps/{name}");
        // Manager m1 applies A (data, labels, annotations with random keys).
        let mut a_data = BTreeMap::new();
        let mut a_labels = BTreeMap::new();
        for i in 0..(1 + rng.below(6)) {
            a_data.insert(format!("k{i}"), format!("v{}", rng.below(1000)));
        }
        for i in 0..rng.below(4) {
            a_labels.insert(format!("l{i}"), format!("x{}", rng.below(10)));
        }
        // Empty maps are left out: what owning an empty map means is not the point here.
        let obj = |data: &BTreeMap<String, String>, labels: &BTreeMap<String, String>| {
            let mut o = json!({"apiVersion": "v1", "kind": "ConfigMap",
                               "metadata": {"name": name}});
            if !labels.is_empty() {
                o["metadata"]["labels"] = json!(labels);
            }
            if !data.is_empty() {
                o["data"] = json!(data);
            }
            o
        };
        let first = apply_as(&client, &url, "m1", &obj(&a_data, &a_labels)).await?;
        let second = apply_as(&client, &url, "m1", &obj(&a_data, &a_labels)).await?;
        if rv_of(&first) != rv_of(&second) || first != second {
            failures.push(format!(
                "{name}: applying the same configuration twice changed the object \
                 (rv {} -> {})",
                rv_of(&first),
                rv_of(&second)
            ));
        }
        // Manager m2 co-owns some of A's keys (same values) and adds its own.
        let mut b_data = BTreeMap::new();
        for (k, v) in &a_data {
            if rng.chance(30) {
                b_data.insert(k.clone(), v.clone());
            }
        }
        if rng.chance(50) {
            b_data.insert("m2-own".into(), "yes".into());
        }
        if !b_data.is_empty() {
            apply_as(&client, &url, "m2", &obj(&b_data, &BTreeMap::new())).await?;
        }
        // m1 re-applies a subset S of A.
        let s_data: BTreeMap<String, String> = a_data
            .iter()
            .filter(|_| rng.chance(50))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let s_labels: BTreeMap<String, String> = a_labels
            .iter()
            .filter(|_| rng.chance(50))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let after = apply_as(&client, &url, "m1", &obj(&s_data, &s_labels)).await?;
        let mut want_data = s_data.clone();
        want_data.extend(b_data.clone());
        let got_data = str_map(&after["data"]);
        if got_data != want_data {
            failures.push(format!(
                "{name}: data after re-applying a subset: got {got_data:?}, want {want_data:?} \
                 (A={a_data:?}, B={b_data:?}, S={s_data:?})"
            ));
        }
        let got_labels = str_map(&after["metadata"]["labels"]);
        if got_labels != s_labels {
            failures.push(format!(
                "{name}: labels: got {got_labels:?}, want {s_labels:?} (A={a_labels:?})"
            ));
        }
    }

    // The same on a granular list (env, keyed by name) of a Deployment container.
    for case in 0..6 {
        let name = format!("propd-{case}");
        let url = format!("{base}/apis/apps/v1/namespaces/default/deployments/{name}");
        let dep = |env: &BTreeMap<String, String>| {
            let env: Vec<Value> = env
                .iter()
                .map(|(k, v)| json!({"name": k, "value": v}))
                .collect();
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
                   "spec": {"selector": {"matchLabels": {"app": name}},
                            "template": {"metadata": {"labels": {"app": name}},
                                "spec": {"containers": [{"name": "c", "image": "busybox",
                                                         "env": env}]}}}})
        };
        let mut a_env = BTreeMap::new();
        for i in 0..(1 + rng.below(5)) {
            a_env.insert(format!("E{i}"), format!("{}", rng.below(100)));
        }
        let first = apply_as(&client, &url, "m1", &dep(&a_env)).await?;
        let second = apply_as(&client, &url, "m1", &dep(&a_env)).await?;
        // Controllers may write the status in between: compare what apply controls.
        if first["spec"] != second["spec"]
            || first["metadata"]["generation"] != second["metadata"]["generation"]
            || fields_of(&first, "m1", "Apply") != fields_of(&second, "m1", "Apply")
        {
            failures.push(format!(
                "{name}: applying the same configuration twice changed it:\n{first}\n{second}"
            ));
        }
        let b_env: BTreeMap<String, String> = [("M2".to_string(), "z".to_string())].into();
        let b_obj = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {"template": {"spec": {"containers": [{"name": "c",
                "env": [{"name": "M2", "value": "z"}]}]}}}});
        apply_as(&client, &url, "m2", &b_obj).await?;
        let s_env: BTreeMap<String, String> = a_env
            .iter()
            .filter(|_| rng.chance(50))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let after = apply_as(&client, &url, "m1", &dep(&s_env)).await?;
        let mut want = s_env.clone();
        want.extend(b_env);
        let got = env_map(&after["spec"]["template"]["spec"]["containers"][0]);
        if got != want {
            failures.push(format!(
                "{name}: env after re-applying a subset: got {got:?}, want {want:?} (A={a_env:?})"
            ));
        }
        let c = &after["spec"]["template"]["spec"]["containers"][0];
        if c["image"] != "busybox" {
            failures.push(format!("{name}: image lost: {c}"));
        }
    }
    ensure!(
        failures.is_empty(),
        "property violations:\n{}",
        failures.join("\n")
    );
    Ok(())
}
