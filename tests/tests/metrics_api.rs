//! `metrics.k8s.io/v1beta1` on a server without nodes (no kubelet to scrape): the group in
//! discovery, empty lists, and metrics-server's errors for what has no metrics or is not
//! served (the figures themselves are checked end to end in `autoscaling.rs`).

use anyhow::{ensure, Result};
use meso_tests::MesoServer;
use serde_json::{json, Value};

async fn call(
    client: &reqwest::Client,
    srv: &MesoServer,
    method: reqwest::Method,
    path: &str,
) -> Result<(u16, Value)> {
    let resp = client
        .request(method, srv.url(path)?)
        .header("Accept", "application/json")
        .header("Content-Type", "application/json")
        .body("{}")
        .send()
        .await?;
    let code = resp.status().as_u16();
    let text = resp.text().await?;
    Ok((
        code,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_api_discovery_lists_and_errors() -> Result<()> {
    let srv = MesoServer::start_with_args(&["--metric-resolution=1s"])?;
    let c = srv.http()?;
    let get = reqwest::Method::GET;

    let (code, doc) = call(&c, &srv, get.clone(), "/apis/metrics.k8s.io/v1beta1").await?;
    ensure!(code == 200, "{doc}");
    let resources: Vec<(String, String, bool, Value)> = doc["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["name"].as_str().unwrap_or_default().to_string(),
                r["kind"].as_str().unwrap_or_default().to_string(),
                r["namespaced"].as_bool().unwrap_or_default(),
                r["verbs"].clone(),
            )
        })
        .collect();
    ensure!(
        resources
            == vec![
                (
                    "nodes".into(),
                    "NodeMetrics".into(),
                    false,
                    json!(["get", "list"])
                ),
                (
                    "pods".into(),
                    "PodMetrics".into(),
                    true,
                    json!(["get", "list"])
                ),
            ],
        "{doc}"
    );

    for (path, kind) in [
        ("/apis/metrics.k8s.io/v1beta1/nodes", "NodeMetricsList"),
        ("/apis/metrics.k8s.io/v1beta1/pods", "PodMetricsList"),
        (
            "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods?labelSelector=app%3Dweb",
            "PodMetricsList",
        ),
    ] {
        let (code, body) = call(&c, &srv, get.clone(), path).await?;
        ensure!(
            code == 200
                && body["kind"] == kind
                && body["apiVersion"] == "metrics.k8s.io/v1beta1"
                && body["items"] == json!([]),
            "{path}: {code} {body}"
        );
    }

    // No metrics (and here no object): NotFound naming the metrics resource.
    let (code, body) = call(
        &c,
        &srv,
        get.clone(),
        "/apis/metrics.k8s.io/v1beta1/nodes/n1",
    )
    .await?;
    ensure!(
        code == 404
            && body["reason"] == "NotFound"
            && body["message"] == "nodemetrics.metrics.k8s.io \"n1\" not found"
            && body["details"]["group"] == "metrics.k8s.io"
            && body["details"]["kind"] == "nodemetrics",
        "{body}"
    );
    let (code, body) = call(
        &c,
        &srv,
        get.clone(),
        "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web",
    )
    .await?;
    ensure!(
        code == 404 && body["message"] == "podmetrics.metrics.k8s.io \"web\" not found",
        "{body}"
    );

    // Bad input.
    let (code, body) = call(
        &c,
        &srv,
        get.clone(),
        "/apis/metrics.k8s.io/v1beta1/pods?labelSelector=a%20in%20(",
    )
    .await?;
    ensure!(
        code == 400 && body["reason"] == "BadRequest",
        "{code} {body}"
    );
    for (method, path) in [
        (reqwest::Method::POST, "/apis/metrics.k8s.io/v1beta1/nodes"),
        (
            reqwest::Method::DELETE,
            "/apis/metrics.k8s.io/v1beta1/nodes/n1",
        ),
        (get.clone(), "/apis/metrics.k8s.io/v1beta1/pods?watch=true"),
    ] {
        let (code, body) = call(&c, &srv, method.clone(), path).await?;
        ensure!(
            code == 405 && body["reason"] == "MethodNotAllowed",
            "{method} {path}: {code} {body}"
        );
    }
    // Cluster-scoped under a namespace, and an unknown resource of the group.
    for path in [
        "/apis/metrics.k8s.io/v1beta1/namespaces/default/nodes/n1",
        "/apis/metrics.k8s.io/v1beta1/services",
    ] {
        let (code, body) = call(&c, &srv, get.clone(), path).await?;
        ensure!(code == 404, "{path}: {code} {body}");
    }
    Ok(())
}
