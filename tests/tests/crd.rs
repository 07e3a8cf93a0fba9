//! CustomResourceDefinitions end to end: a CRD applied with kubectl is established and served
//! (discovery, REST, Table printing, validation, pruning, defaulting, status and scale
//! subresources), survives a restart, and deleting it deletes its custom resources and the type.
//! Discovery and Table answers are compared with the upstream captures of the Widget CRD.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use meso_tests::{golden, write_file, Kubectl, MesoServer};
use serde_json::{json, Value};

const WIDGET_CRD: &str = "widgets.golden.example.com";
const WIDGETS: &str = "/apis/golden.example.com/v1/namespaces/default/widgets";

meso_tests::for_each_kubectl!(widget_crd_with_kubectl);

/// The Widget CRD exactly as the capture session created it.
fn widget_crd() -> Result<Value> {
    Ok(golden::load("defaults/customresourcedefinition.json")?
        .request
        .body
        .clone())
}

/// A CRD exercising the schema features: defaults, enum, bounds, pattern, required,
/// preserve-unknown-fields, status and scale subresources, printer columns; cluster-scoped.
fn gadget_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.test.example.com"},
        "spec": {
            "group": "test.example.com",
            "scope": "Cluster",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget",
                      "shortNames": ["gd"], "categories": ["all"]},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {
                    "status": {},
                    "scale": {"specReplicasPath": ".spec.replicas",
                              "statusReplicasPath": ".status.replicas",
                              "labelSelectorPath": ".status.selector"}
                },
                "additionalPrinterColumns": [
                    {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
                    {"name": "Mode", "type": "string", "jsonPath": ".spec.mode"}
                ],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {
                            "type": "object",
                            "required": ["replicas"],
                            "properties": {
                                "replicas": {"type": "integer", "minimum": 0, "maximum": 10},
                                "mode": {"type": "string", "enum": ["fast", "slow"], "default": "slow"},
                                "name": {"type": "string", "pattern": "^[a-z]+$"},
                                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                            }
                        },
                        "status": {
                            "type": "object",
                            "properties": {
                                "replicas": {"type": "integer"},
                                "selector": {"type": "string"}
                            }
                        }
                    }
                }}
            }]
        }
    })
}

fn wait_established(srv: &MesoServer, k: &Kubectl, crd: &str) -> Result<()> {
    srv.kubectl_ok(
        k,
        &[
            "wait",
            "--for=condition=Established",
            &format!("crd/{crd}"),
            "--timeout=20s",
        ],
    )?;
    Ok(())
}

fn widget_crd_with_kubectl(k: &Kubectl) -> Result<()> {
    let mut srv = MesoServer::start()?;
    let dir = srv.scratch_dir().to_path_buf();
    let crd = write_file(&dir, "crd.json", &widget_crd()?.to_string())?;
    let crd = crd.to_string_lossy().to_string();
    srv.kubectl_ok(k, &["apply", "-f", &crd])?;
    wait_established(&srv, k, WIDGET_CRD)?;
    let status = srv.kubectl_ok(k, &["get", "crd", WIDGET_CRD, "-o", "json"])?;
    let status: Value = serde_json::from_str(&status)?;
    ensure!(
        status["status"]["acceptedNames"]["shortNames"] == json!(["wdg"]),
        "acceptedNames: {}",
        status["status"]
    );

    let resources = srv.kubectl_ok(k, &["api-resources", "--api-group=golden.example.com"])?;
    let row = resources
        .lines()
        .find(|l| l.starts_with("widgets "))
        .with_context(|| format!("widgets missing from api-resources:\n{resources}"))?;
    let cols: Vec<&str> = row.split_whitespace().collect();
    ensure!(
        cols == ["widgets", "wdg", "golden.example.com/v1", "true", "Widget"],
        "api-resources row {row:?}"
    );

    let widget = write_file(
        &dir,
        "widget.yaml",
        "apiVersion: golden.example.com/v1\nkind: Widget\nmetadata:\n  name: widget-a\nspec:\n  size: 3\n  color: red\n",
    )?;
    let widget = widget.to_string_lossy().to_string();
    let out = srv.kubectl_ok(k, &["apply", "-f", &widget])?;
    ensure!(
        out.contains("widget.golden.example.com/widget-a created"),
        "{out}"
    );
    // Applied twice: unchanged.
    let out = srv.kubectl_ok(k, &["apply", "-f", &widget])?;
    ensure!(out.contains("unchanged"), "{out}");

    // Printer columns: Color has priority 1 (only with -o wide).
    let table = srv.kubectl_ok(k, &["get", "widgets"])?;
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    ensure!(
        header == ["NAME", "SIZE", "AGE"],
        "header {header:?}\n{table}"
    );
    ensure!(
        table
            .lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("widget-a") && l.contains(" 3 ")),
        "{table}"
    );
    let wide = srv.kubectl_ok(k, &["get", "wdg", "-o", "wide"])?;
    let header: Vec<&str> = wide
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    ensure!(
        header == ["NAME", "SIZE", "COLOR", "AGE"],
        "wide header {header:?}"
    );
    ensure!(wide.contains("red"), "{wide}");

    let yaml = srv.kubectl_ok(k, &["get", "wdg", "widget-a", "-o", "yaml"])?;
    let obj: Value = serde_yaml::from_str(&yaml)?;
    ensure!(obj["spec"] == json!({"color": "red", "size": 3}), "{yaml}");
    ensure!(obj["metadata"]["generation"] == 1, "{yaml}");
    ensure!(
        obj["apiVersion"] == "golden.example.com/v1" && obj["kind"] == "Widget",
        "{yaml}"
    );

    // A mistyped field: 422 with upstream's message.
    let bad = write_file(
        &dir,
        "bad.yaml",
        "apiVersion: golden.example.com/v1\nkind: Widget\nmetadata:\n  name: widget-bad\nspec:\n  size: \"string\"\n",
    )?;
    let out = srv.kubectl(k, &["create", "-f", &bad.to_string_lossy()])?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(!out.status.success(), "the invalid widget was created");
    ensure!(
        err.contains(r#"The Widget "widget-bad" is invalid: spec.size: Invalid value: "string": spec.size in body must be of type integer: "string""#),
        "{err}"
    );

    // An unknown field: strict validation (kubectl's default) refuses it; without it is pruned.
    let extra = write_file(
        &dir,
        "extra.yaml",
        "apiVersion: golden.example.com/v1\nkind: Widget\nmetadata:\n  name: widget-x\nspec:\n  size: 1\n  bogus: 1\n",
    )?;
    let extra = extra.to_string_lossy().to_string();
    let out = srv.kubectl(k, &["create", "-f", &extra])?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success() && err.contains(r#"unknown field "spec.bogus""#),
        "strict create: {err}"
    );
    srv.kubectl_ok(k, &["create", "--validate=false", "-f", &extra])?;
    let spec = srv.kubectl_ok(k, &["get", "wdg", "widget-x", "-o", "jsonpath={.spec}"])?;
    let spec: Value = serde_json::from_str(&spec)?;
    ensure!(spec == json!({"size": 1}), "not pruned: {spec}");

    // Status subresource: the main resource ignores status.
    srv.kubectl_ok(
        k,
        &[
            "patch",
            "wdg",
            "widget-a",
            "--type=merge",
            "-p",
            r#"{"spec":{"size":4},"status":{"x":1}}"#,
        ],
    )?;
    let obj: Value =
        serde_json::from_str(&srv.kubectl_ok(k, &["get", "wdg", "widget-a", "-o", "json"])?)?;
    ensure!(
        obj["spec"]["size"] == 4 && obj.get("status").is_none(),
        "{obj}"
    );
    ensure!(
        obj["metadata"]["generation"] == 2,
        "generation not bumped: {obj}"
    );

    // A restart keeps the CRD served.
    srv.restart()?;
    let names = srv.kubectl_ok(k, &["get", "widgets", "-o", "name"])?;
    ensure!(
        names.contains("widget.golden.example.com/widget-a"),
        "after restart: {names}"
    );

    // Deleting the CRD deletes its widgets and the type.
    srv.kubectl_ok(k, &["delete", "crd", WIDGET_CRD, "--timeout=30s"])?;
    let out = srv.kubectl(k, &["get", "widgets"])?;
    ensure!(
        !out.status.success(),
        "widgets still served after the CRD was deleted"
    );
    let resources = srv.kubectl_ok(k, &["api-resources"])?;
    ensure!(!resources.contains("widgets"), "{resources}");
    // Created again, the CRD starts empty: the old widgets were deleted, not orphaned.
    srv.kubectl_ok(k, &["apply", "-f", &crd])?;
    wait_established(&srv, k, WIDGET_CRD)?;
    let list = srv.kubectl_ok(k, &["get", "widgets", "-A", "-o", "name"])?;
    ensure!(list.trim().is_empty(), "widgets survived their CRD: {list}");
    Ok(())
}

async fn send(
    client: &reqwest::Client,
    base: &str,
    method: &str,
    path: &str,
    content_type: &str,
    body: Option<&Value>,
) -> Result<(u16, Value)> {
    let mut req = client.request(meso_tests::method(method)?, format!("{base}{path}"));
    if let Some(b) = body {
        let bytes = if content_type.contains("yaml") {
            serde_yaml::to_string(b)?.into_bytes()
        } else {
            serde_json::to_vec(b)?
        };
        req = req.header("Content-Type", content_type).body(bytes);
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let text = resp.text().await?;
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((status, v))
}

async fn wait_served(client: &reqwest::Client, base: &str, path: &str) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _) = send(client, base, "GET", path, "", None).await?;
        if status == 200 {
            return Ok(());
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "{path} never served ({status})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_resources_through_the_generic_rest_path() -> Result<()> {
    let srv = MesoServer::start()?;
    let (c, b) = (srv.http()?, srv.base_url()?);
    let json_ct = "application/json";
    let (s, _) = send(
        &c,
        &b,
        "POST",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        json_ct,
        Some(&gadget_crd()),
    )
    .await?;
    ensure!(s == 201, "CRD create: {s}");
    let gadgets = "/apis/test.example.com/v1/gadgets";
    wait_served(&c, &b, gadgets).await?;

    // Create: defaults applied, unknown fields pruned (fieldValidation=Ignore), status dropped.
    let g1 = json!({"apiVersion": "test.example.com/v1", "kind": "Gadget",
        "metadata": {"name": "g1", "labels": {"tier": "a"}},
        "spec": {"replicas": 2, "free": {"any": {"x": 1}}, "bogus": true},
        "status": {"replicas": 9}});
    let (s, v) = send(
        &c,
        &b,
        "POST",
        &format!("{gadgets}?fieldValidation=Ignore"),
        json_ct,
        Some(&g1),
    )
    .await?;
    ensure!(s == 201, "create: {s} {v}");
    ensure!(
        v["spec"] == json!({"replicas": 2, "free": {"any": {"x": 1}}, "mode": "slow"}),
        "{v}"
    );
    ensure!(v.get("status").is_none(), "status kept on create: {v}");
    ensure!(v["metadata"]["generation"] == 1, "{v}");

    // Dry run stores nothing.
    let g2 = json!({"apiVersion": "test.example.com/v1", "kind": "Gadget",
        "metadata": {"name": "g2"}, "spec": {"replicas": 1, "mode": "fast"}});
    let (s, _) = send(
        &c,
        &b,
        "POST",
        &format!("{gadgets}?dryRun=All"),
        json_ct,
        Some(&g2),
    )
    .await?;
    ensure!(s == 201, "dry run: {s}");
    let (s, _) = send(&c, &b, "GET", &format!("{gadgets}/g2"), "", None).await?;
    ensure!(s == 404, "dry run stored the object: {s}");
    let (s, _) = send(&c, &b, "POST", gadgets, json_ct, Some(&g2)).await?;
    ensure!(s == 201, "create g2: {s}");

    // Validation: every violated rule is a cause of one 422 Invalid.
    let bad = json!({"apiVersion": "test.example.com/v1", "kind": "Gadget",
        "metadata": {"name": "bad"}, "spec": {"replicas": 11, "mode": "x", "name": "A1"}});
    let (s, v) = send(&c, &b, "POST", gadgets, json_ct, Some(&bad)).await?;
    ensure!(s == 422 && v["reason"] == "Invalid", "{s} {v}");
    ensure!(
        v["details"]["kind"] == "Gadget" && v["details"]["group"] == "test.example.com",
        "{v}"
    );
    let causes: Vec<String> = v["details"]["causes"]
        .as_array()
        .context("causes")?
        .iter()
        .map(|c| {
            format!(
                "{} {}",
                c["field"].as_str().unwrap_or(""),
                c["message"].as_str().unwrap_or("")
            )
        })
        .collect();
    for want in [
        "spec.replicas Invalid value: 11: spec.replicas in body should be less than or equal to 10",
        r#"spec.mode Unsupported value: "x": supported values: "fast", "slow""#,
        r#"spec.name Invalid value: "A1": spec.name in body should match '^[a-z]+$'"#,
    ] {
        ensure!(
            causes.iter().any(|c| c == want),
            "missing cause {want:?} in {causes:?}"
        );
    }
    let missing = json!({"apiVersion": "test.example.com/v1", "kind": "Gadget",
        "metadata": {"name": "bad"}, "spec": {}});
    let (s, v) = send(&c, &b, "POST", gadgets, json_ct, Some(&missing)).await?;
    ensure!(
        s == 422
            && v["message"]
                == r#"Gadget.test.example.com "bad" is invalid: spec.replicas: Required value"#,
        "{s} {v}"
    );

    // Selectors.
    let (s, v) = send(
        &c,
        &b,
        "GET",
        &format!("{gadgets}?labelSelector=tier%3Da"),
        "",
        None,
    )
    .await?;
    ensure!(
        s == 200 && v["items"].as_array().map(Vec::len) == Some(1),
        "label selector: {v}"
    );
    ensure!(v["kind"] == "GadgetList", "{v}");
    let (s, v) = send(
        &c,
        &b,
        "GET",
        &format!("{gadgets}?fieldSelector=metadata.name%3Dg2"),
        "",
        None,
    )
    .await?;
    ensure!(
        s == 200
            && v["items"][0]["metadata"]["name"] == "g2"
            && v["items"].as_array().map(Vec::len) == Some(1),
        "field selector: {v}"
    );

    // Patches: merge, json; strategic merge is 415 for custom resources.
    let (s, v) = send(
        &c,
        &b,
        "PATCH",
        &format!("{gadgets}/g1"),
        "application/merge-patch+json",
        Some(&json!({"spec": {"mode": "fast"}})),
    )
    .await?;
    ensure!(
        s == 200 && v["spec"]["mode"] == "fast" && v["metadata"]["generation"] == 2,
        "merge: {s} {v}"
    );
    let (s, v) = send(
        &c,
        &b,
        "PATCH",
        &format!("{gadgets}/g1"),
        "application/json-patch+json",
        Some(&json!([{"op": "replace", "path": "/spec/replicas", "value": 3}])),
    )
    .await?;
    ensure!(
        s == 200 && v["spec"]["replicas"] == 3,
        "json patch: {s} {v}"
    );
    let (s, v) = send(
        &c,
        &b,
        "PATCH",
        &format!("{gadgets}/g1"),
        "application/strategic-merge-patch+json",
        Some(&json!({"spec": {"replicas": 4}})),
    )
    .await?;
    ensure!(
        s == 415 && v["reason"] == "UnsupportedMediaType",
        "strategic: {s} {v}"
    );
    let (s, v) = send(
        &c,
        &b,
        "PATCH",
        &format!("{gadgets}/g1"),
        "application/merge-patch+json",
        Some(&json!({"spec": {"replicas": "three"}})),
    )
    .await?;
    ensure!(s == 422 && v["message"].as_str().unwrap_or("").contains(r#"spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string""#), "mistyped patch: {s} {v}");

    // Server-side apply with the CRD's schema.
    let applied = json!({"apiVersion": "test.example.com/v1", "kind": "Gadget",
        "metadata": {"name": "g3"}, "spec": {"replicas": 5}});
    let (s, v) = send(
        &c,
        &b,
        "PATCH",
        &format!("{gadgets}/g3?fieldManager=tester"),
        "application/apply-patch+yaml",
        Some(&applied),
    )
    .await?;
    ensure!(
        s == 201 && v["spec"]["replicas"] == 5 && v["spec"]["mode"] == "slow",
        "apply: {s} {v}"
    );
    let managers: Vec<&str> = v["metadata"]["managedFields"]
        .as_array()
        .context("managedFields")?
        .iter()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    ensure!(managers == ["tester"], "{managers:?}");

    // Status subresource: /status ignores everything but status.
    let mut cur = send(&c, &b, "GET", &format!("{gadgets}/g1"), "", None)
        .await?
        .1;
    let gen = cur["metadata"]["generation"].clone();
    cur["status"] = json!({"replicas": 3, "selector": "tier=a"});
    cur["spec"]["replicas"] = json!(7);
    let (s, v) = send(
        &c,
        &b,
        "PUT",
        &format!("{gadgets}/g1/status"),
        json_ct,
        Some(&cur),
    )
    .await?;
    ensure!(
        s == 200 && v["status"]["replicas"] == 3 && v["spec"]["replicas"] == 3,
        "status put: {s} {v}"
    );
    ensure!(
        v["metadata"]["generation"] == gen,
        "status write bumped generation: {v}"
    );

    // Scale subresource through the CRD's paths.
    let (s, v) = send(&c, &b, "GET", &format!("{gadgets}/g1/scale"), "", None).await?;
    ensure!(
        s == 200 && v["kind"] == "Scale" && v["spec"]["replicas"] == 3,
        "scale: {s} {v}"
    );
    ensure!(
        v["status"] == json!({"replicas": 3, "selector": "tier=a"}),
        "scale status: {v}"
    );
    let (s, v) = send(
        &c,
        &b,
        "PATCH",
        &format!("{gadgets}/g1/scale"),
        "application/merge-patch+json",
        Some(&json!({"spec": {"replicas": 6}})),
    )
    .await?;
    ensure!(
        s == 200 && v["spec"]["replicas"] == 6,
        "scale patch: {s} {v}"
    );
    let (_, v) = send(&c, &b, "GET", &format!("{gadgets}/g1"), "", None).await?;
    ensure!(
        v["spec"]["replicas"] == 6,
        "scale did not reach the object: {v}"
    );
    if let Some(k) = meso_tests::kubectl_135() {
        srv.kubectl_ok(&k, &["scale", "gadget", "g2", "--replicas=4"])?;
        let r = srv.kubectl_ok(&k, &["get", "gd", "g2", "-o", "jsonpath={.spec.replicas}"])?;
        ensure!(r.trim() == "4", "kubectl scale: {r}");
        // Printer columns and the "all" category.
        let all = srv.kubectl_ok(&k, &["get", "all"])?;
        ensure!(all.contains("gadget.test.example.com/g1"), "{all}");
        let table = srv.kubectl_ok(&k, &["get", "gd"])?;
        let header: Vec<&str> = table
            .lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        ensure!(header == ["NAME", "REPLICAS", "MODE"], "{table}");
    }

    // Watch sees a change.
    let watch = {
        let (c, b) = (c.clone(), b.clone());
        let rv = send(&c, &b, "GET", gadgets, "", None).await?.1["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or("0")
            .to_string();
        tokio::spawn(async move {
            send(
                &c,
                &b,
                "GET",
                &format!("{gadgets}?watch=1&resourceVersion={rv}&timeoutSeconds=2"),
                "",
                None,
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (s, _) = send(&c, &b, "DELETE", &format!("{gadgets}/g2"), "", None).await?;
    ensure!(s == 200, "delete: {s}");
    let (_, events) = watch.await??;
    let text = events.to_string();
    ensure!(
        text.contains("DELETED") && text.contains("g2"),
        "watch: {text}"
    );

    // The OpenAPI v3 document of the group carries the CRD's schema.
    let (s, v) = send(
        &c,
        &b,
        "GET",
        "/openapi/v3/apis/test.example.com/v1",
        "",
        None,
    )
    .await?;
    ensure!(s == 200, "openapi: {s}");
    let schema = v["components"]["schemas"]["com.example.test.v1.Gadget"].clone();
    ensure!(
        schema["properties"]["spec"]["properties"]["mode"]["enum"] == json!(["fast", "slow"]),
        "openapi schema: {schema}"
    );

    // Deleting the CRD: a finalizer on one gadget keeps it Terminating (no creates meanwhile);
    // once the finalizer goes, the gadgets and then the CRD are gone.
    let held = json!({"apiVersion": "test.example.com/v1", "kind": "Gadget",
        "metadata": {"name": "held", "finalizers": ["test.example.com/hold"]}, "spec": {"replicas": 1}});
    let (s, _) = send(&c, &b, "POST", gadgets, json_ct, Some(&held)).await?;
    ensure!(s == 201, "held: {s}");
    let crd_path =
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gadgets.test.example.com";
    let (s, v) = send(&c, &b, "DELETE", crd_path, "", None).await?;
    ensure!(
        s == 200 && v["metadata"]["deletionTimestamp"].is_string(),
        "CRD delete: {s} {v}"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, v) = send(&c, &b, "GET", gadgets, "", None).await?;
        let names: Vec<&str> = v["items"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|i| i["metadata"]["name"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        if names == ["held"] {
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "gadgets not deleted: {names:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, crd) = send(&c, &b, "GET", crd_path, "", None).await?;
    let terminating = crd["status"]["conditions"]
        .as_array()
        .and_then(|l| l.iter().find(|c| c["type"] == "Terminating"))
        .cloned()
        .unwrap_or_default();
    ensure!(
        terminating["status"] == "True" && terminating["reason"] == "InstanceDeletionInProgress",
        "{crd}"
    );
    ensure!(
        crd["metadata"]["finalizers"] == json!(["customresourcecleanup.apiextensions.k8s.io"]),
        "{crd}"
    );
    let (s, v) = send(&c, &b, "POST", gadgets, json_ct, Some(&g2)).await?;
    ensure!(
        s == 405
            && v["message"] == "create not allowed while custom resource definition is terminating",
        "create while terminating: {s} {v}"
    );
    let (s, _) = send(
        &c,
        &b,
        "PATCH",
        &format!("{gadgets}/held"),
        "application/merge-patch+json",
        Some(&json!({"metadata": {"finalizers": null}})),
    )
    .await?;
    ensure!(s == 200, "releasing held: {s}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while send(&c, &b, "GET", crd_path, "", None).await?.0 != 404 {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "the CRD was never removed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (s, _) = send(&c, &b, "GET", gadgets, "", None).await?;
    ensure!(s == 404, "gadgets still served: {s}");
    Ok(())
}

/// With the capture session's Widget CRD, aggregated discovery, the CRD's status and the
/// widgets Table answer as upstream did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn widget_discovery_and_table_match_upstream() -> Result<()> {
    let srv = MesoServer::start()?;
    let (c, b) = (srv.http()?, srv.base_url()?);
    let cap = golden::load("defaults/customresourcedefinition.json")?;
    let reply = golden::replay(&c, &b, &cap.request, &[]).await?;
    let mut problems = golden::compare_reply(&cap.response, &reply, true);
    wait_served(&c, &b, WIDGETS).await?;

    let established = golden::load("defaults/customresourcedefinition-established.json")?;
    let reply = golden::replay(&c, &b, &established.request, &[]).await?;
    problems.extend(
        golden::compare_reply(&established.response, &reply, true)
            .into_iter()
            .map(|p| format!("established: {p}")),
    );

    let disco = golden::load("discovery/apis-aggregated-kubectl-accept.json")?;
    let mut reply = golden::replay(&c, &b, &disco.request, &[]).await?;
    golden::without_metrics_group(&mut reply.body);
    problems.extend(
        golden::compare_reply(&disco.response, &reply, true)
            .into_iter()
            .map(|p| format!("discovery: {p}")),
    );

    // The widgets of the table capture, in namespace golden.
    let ns = golden::load("defaults/namespace.json")?;
    golden::replay(&c, &b, &ns.request, &[]).await?;
    let widget = golden::load("defaults/custom-resource-widget.json")?;
    let reply = golden::replay(&c, &b, &widget.request, &[]).await?;
    problems.extend(
        golden::compare_reply(&widget.response, &reply, true)
            .into_iter()
            .map(|p| format!("widget create: {p}")),
    );
    let mut second = widget.request.clone();
    second.body = json!({"apiVersion": "golden.example.com/v1", "kind": "Widget",
        "metadata": {"name": "widget-b"}, "spec": {"size": 7, "color": "blue"}});
    let reply = golden::replay(&c, &b, &second, &[]).await?;
    ensure!(reply.status == 201, "widget-b: {}", reply.summary());
    for file in [
        "table/widgets.json",
        "table/widgets-includeObject-Object.json",
    ] {
        let cap = golden::load(file)?;
        let reply = golden::replay(&c, &b, &cap.request, &[]).await?;
        problems.extend(
            golden::compare_reply(&cap.response, &reply, true)
                .into_iter()
                .map(|p| format!("{file}: {p}")),
        );
    }
    ensure!(
        problems.is_empty(),
        "differences from upstream:\n{}",
        problems.join("\n")
    );
    Ok(())
}

/// Two served versions with `conversion.strategy: None`: objects are stored in the storage
/// version and each version serves them with only apiVersion rewritten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_version_crd_rewrites_only_api_version() -> Result<()> {
    let srv = MesoServer::start()?;
    let (c, b) = (srv.http()?, srv.base_url()?);
    let schema = json!({"openAPIV3Schema": {"type": "object", "properties": {
        "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}});
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gizmos.multi.example.com"},
        "spec": {"group": "multi.example.com", "scope": "Namespaced",
            "names": {"plural": "gizmos", "singular": "gizmo", "kind": "Gizmo"},
            "conversion": {"strategy": "None"},
            "versions": [
                {"name": "v1beta1", "served": true, "storage": false, "schema": schema},
                {"name": "v1", "served": true, "storage": true, "schema": schema}
            ]}
    });
    let (s, v) = send(
        &c,
        &b,
        "POST",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        "application/json",
        Some(&crd),
    )
    .await?;
    ensure!(s == 201, "CRD: {s} {v}");
    let beta = "/apis/multi.example.com/v1beta1/namespaces/default/gizmos";
    let ga = "/apis/multi.example.com/v1/namespaces/default/gizmos";
    wait_served(&c, &b, beta).await?;
    wait_served(&c, &b, ga).await?;
    let obj = json!({"apiVersion": "multi.example.com/v1beta1", "kind": "Gizmo",
        "metadata": {"name": "g"}, "spec": {"anything": [1, 2]}});
    let (s, v) = send(&c, &b, "POST", beta, "application/json", Some(&obj)).await?;
    ensure!(
        s == 201 && v["apiVersion"] == "multi.example.com/v1beta1",
        "create: {s} {v}"
    );
    let (_, v) = send(&c, &b, "GET", &format!("{ga}/g"), "", None).await?;
    ensure!(
        v["apiVersion"] == "multi.example.com/v1" && v["spec"] == json!({"anything": [1, 2]}),
        "v1: {v}"
    );
    let (_, v) = send(&c, &b, "GET", &format!("{beta}/g"), "", None).await?;
    ensure!(
        v["apiVersion"] == "multi.example.com/v1beta1",
        "v1beta1: {v}"
    );
    let (_, group) = send(&c, &b, "GET", "/apis/multi.example.com", "", None).await?;
    ensure!(
        group["preferredVersion"]["version"] == "v1",
        "preferred: {group}"
    );
    ensure!(
        group["versions"].as_array().map(Vec::len) == Some(2),
        "{group}"
    );
    Ok(())
}
