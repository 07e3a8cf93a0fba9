//! Bad input over raw HTTPS: every request gets the upstream status code and a `metav1.Status`
//! body shaped like the upstream capture in `shared/upstream/errors/`, and the server stays up.

use anyhow::{Context, Result};
use meso_tests::golden::{self, compare_status, Capture, Message};
use meso_tests::MesoServer;
use serde_json::{json, Value};

struct Case {
    name: String,
    capture: Capture,
    rule: Message<'static>,
    extra_headers: Vec<(&'static str, String)>,
    anonymous: bool,
}

impl Case {
    fn from_file(file: &str, rule: Message<'static>) -> Result<Self> {
        Ok(Self {
            name: file.to_string(),
            capture: golden::load(file)?,
            rule,
            extra_headers: Vec::new(),
            anonymous: false,
        })
    }
}

/// A capture-shaped case for behaviour the capture set does not cover.
fn synthetic(
    name: &str,
    method: &str,
    path: &str,
    body: Value,
    status: u16,
    expected: Value,
    rule: Message<'static>,
) -> Result<Case> {
    let capture: Capture = serde_json::from_value(json!({
        "request": {"method": method, "path": path, "query": "",
                    "headers": {"Accept": "application/json", "Content-Type": "application/json"},
                    "body": body},
        "response": {"status": status, "headers": {"Content-Type": "application/json"},
                     "body": expected},
    }))
    .context("building a synthetic case")?;
    Ok(Case {
        name: name.to_string(),
        capture,
        rule,
        extra_headers: Vec::new(),
        anonymous: false,
    })
}

fn bad_request(message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": "BadRequest", "code": 400})
}

async fn post_json(client: &reqwest::Client, url: String, body: Value) -> Result<Value> {
    let resp = client
        .post(&url)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = resp.status();
    let v: Value = resp
        .json()
        .await
        .with_context(|| format!("POST {url} body"))?;
    anyhow::ensure!(status.is_success(), "POST {url}: {status} {v}");
    Ok(v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_upstream_status_and_server_stays_up() -> Result<()> {
    let mut srv = MesoServer::start()?;
    let client = srv.http()?;
    let anon = srv.http_anonymous()?;
    let base = srv.base_url()?;

    // The state the captures assume.
    post_json(
        &client,
        format!("{base}/api/v1/namespaces"),
        golden::load("defaults/namespace.json")?.request.body,
    )
    .await?;
    let cms = format!("{base}/api/v1/namespaces/golden/configmaps");
    let cm = |name: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}});
    post_json(&client, cms.clone(), cm("err-existing")).await?;
    let created = post_json(&client, cms.clone(), cm("err-conflict")).await?;
    let mut updated = created.clone();
    updated["data"]["k"] = json!("v2");
    let resp = client
        .put(format!("{cms}/err-conflict"))
        .json(&updated)
        .send()
        .await
        .context("PUT err-conflict")?;
    anyhow::ensure!(
        resp.status().is_success(),
        "update err-conflict: {}",
        resp.status()
    );

    let mut cases = vec![
        Case::from_file(
            "errors/create-malformed-json-400.json",
            Message::Prefix("the object provided is unrecognized (must be of type ConfigMap): "),
        )?,
        Case::from_file("errors/create-invalid-name-422.json", Message::Exact)?,
        Case::from_file("errors/get-nosuchresource-404.json", Message::Exact)?,
        Case::from_file(
            "errors/get-nosuchresource-namespaced-404.json",
            Message::Exact,
        )?,
        Case::from_file("errors/get-missing-configmap-404.json", Message::Exact)?,
        Case::from_file("errors/get-method-not-allowed-405.json", Message::Exact)?,
        Case::from_file(
            "errors/create-content-type-text-plain-415.json",
            Message::Exact,
        )?,
        Case::from_file(
            "errors/patch-unsupported-patch-type-415.json",
            Message::Exact,
        )?,
        Case::from_file(
            "errors/patch-content-type-application-json-415.json",
            Message::Exact,
        )?,
        Case::from_file(
            "errors/create-in-missing-namespace-404.json",
            Message::Exact,
        )?,
        Case::from_file(
            "errors/create-existing-409-alreadyexists.json",
            Message::Exact,
        )?,
        Case::from_file(
            "errors/delete-resourceversion-precondition-mismatch-409.json",
            Message::DigitsNormalized,
        )?,
        Case::from_file(
            "errors/delete-uid-precondition-mismatch-409.json",
            Message::DigitsNormalized,
        )?,
        Case::from_file("errors/list-invalid-labelselector-400.json", Message::Exact)?,
        Case::from_file(
            "errors/list-unsupported-fieldselector-400.json",
            Message::Exact,
        )?,
        Case::from_file(
            "errors/create-deployment-selector-mismatch-422.json",
            Message::Exact,
        )?,
    ];

    // Stale resourceVersion: the capture's body with this server's uid and creation RV.
    let mut stale = Case::from_file(
        "errors/put-stale-resourceversion-409-conflict.json",
        Message::Exact,
    )?;
    stale.capture.request.body["metadata"]["uid"] = created["metadata"]["uid"].clone();
    stale.capture.request.body["metadata"]["resourceVersion"] =
        created["metadata"]["resourceVersion"].clone();
    cases.push(stale);

    // Bodies the captures omit: over 3 MiB (413) and a 2 MiB ConfigMap (422).
    let mut big = Case::from_file("errors/create-body-over-3MiB.json", Message::Exact)?;
    big.capture.request.body = Value::String(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "err-big"},
               "data": {"big": "x".repeat(3_146_752)}})
        .to_string(),
    );
    cases.push(big);
    let mut big2 = Case::from_file("errors/create-configmap-over-1MiB-422.json", Message::Exact)?;
    big2.capture.request.body = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "err-big2"}, "data": {"big": "x".repeat(2_097_152)}});
    cases.push(big2);

    // Authentication: a bad bearer token, and no credentials at all. Upstream allows
    // anonymous requests (then RBAC answers 403); meso rejects them with 401 like a bad token.
    let mut bad_token = Case::from_file("errors/invalid-bearer-token-401.json", Message::Exact)?;
    bad_token.anonymous = true;
    bad_token
        .extra_headers
        .push(("Authorization", "Bearer not-a-valid-token".into()));
    cases.push(bad_token);
    let mut no_creds = Case::from_file("errors/invalid-bearer-token-401.json", Message::Exact)?;
    no_creds.name = "no credentials (401 like invalid-bearer-token-401.json)".into();
    no_creds.anonymous = true;
    cases.push(no_creds);

    // Not captured; upstream's wording from the generic handlers.
    cases.push(synthetic(
        "wrong kind for the URL (Secret posted to configmaps)",
        "POST",
        "/api/v1/namespaces/golden/configmaps",
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "wrong-kind"}}),
        400,
        bad_request("Secret in version \"v1\" cannot be handled as a ConfigMap: …"),
        Message::Prefix("Secret in version \"v1\" cannot be handled as a ConfigMap"),
    )?);
    cases.push(synthetic(
        "namespace in body differs from the URL",
        "POST",
        "/api/v1/namespaces/golden/configmaps",
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "ns-mismatch", "namespace": "default"}}),
        400,
        bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ),
        Message::Exact,
    )?);
    cases.push(synthetic(
        "name in body differs from the URL (PUT)",
        "PUT",
        "/api/v1/namespaces/golden/configmaps/err-existing",
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "other", "namespace": "golden"}, "data": {"k": "v"}}),
        400,
        bad_request(
            "the name of the object (other) does not match the name on the URL (err-existing)",
        ),
        Message::Exact,
    )?);

    let total = cases.len();
    let mut results = Vec::new();
    for case in &cases {
        let c = if case.anonymous { &anon } else { &client };
        let extra: Vec<(&str, &str)> = case
            .extra_headers
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect();
        let mut problems = Vec::new();
        match golden::replay(c, &base, &case.capture.request, &extra).await {
            Err(e) => problems.push(format!("request failed: {e:#}")),
            Ok(reply) => {
                let exp = &case.capture.response;
                if reply.status != exp.status {
                    problems.push(format!(
                        "status {} instead of {}; body: {}",
                        reply.status,
                        exp.status,
                        reply.summary()
                    ));
                } else if exp.body.is_string() {
                    // upstream answered plain text (unknown group): the code is what matters
                } else {
                    if !reply.content_type.starts_with("application/json") {
                        problems.push(format!("Content-Type {:?}", reply.content_type));
                    }
                    problems.extend(compare_status(&exp.body, &reply.body, case.rule));
                }
            }
        }
        results.push((case.name.clone(), problems));
    }

    // Inputs with no upstream capture that must simply be refused, never 5xx.
    let garbage: Vec<(&str, &str, &str, Vec<u8>)> = vec![
        (
            "POST",
            "/api/v1/namespaces/golden/configmaps",
            "application/json",
            b"".to_vec(),
        ),
        (
            "POST",
            "/api/v1/namespaces/golden/configmaps",
            "application/json",
            b"[]".to_vec(),
        ),
        (
            "POST",
            "/api/v1/namespaces/golden/configmaps",
            "application/json",
            b"null".to_vec(),
        ),
        (
            "POST",
            "/api/v1/namespaces/golden/configmaps",
            "application/json",
            vec![0xff, 0xfe, b'{'],
        ),
        (
            "POST",
            "/api/v1/namespaces/golden/configmaps",
            "application/json",
            format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes(),
        ),
        (
            "POST",
            "/api/v1/namespaces/golden/configmaps",
            "application/yaml",
            b"a: [b\n  - :".to_vec(),
        ),
        (
            "POST",
            "/api/v1/namespaces/golden/configmaps",
            "application/json",
            br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"data":{"k":1}}"#
                .to_vec(),
        ),
        (
            "PATCH",
            "/api/v1/namespaces/golden/configmaps/err-existing",
            "application/json-patch+json",
            b"{}".to_vec(),
        ),
        (
            "PATCH",
            "/api/v1/namespaces/golden/configmaps/err-existing",
            "application/merge-patch+json",
            b"{".to_vec(),
        ),
        (
            "PATCH",
            "/api/v1/namespaces/golden/configmaps/err-existing",
            "application/strategic-merge-patch+json",
            b"[1]".to_vec(),
        ),
        (
            "GET",
            "/api/v1/namespaces/golden/configmaps?limit=-1&continue=%%%",
            "application/json",
            Vec::new(),
        ),
        (
            "GET",
            "/api/v1/namespaces/golden/configmaps?labelSelector=%ff%fe",
            "application/json",
            Vec::new(),
        ),
        (
            "DELETE",
            "/api/v1/namespaces/golden/configmaps/err-existing",
            "application/json",
            b"{\"preconditions\":5}".to_vec(),
        ),
    ];
    let garbage_total = garbage.len();
    for (m, path, ct, body) in garbage {
        let name = format!("{m} {path} ({ct}, {} bytes of junk)", body.len());
        let mut problems = Vec::new();
        let resp = client
            .request(meso_tests::method(m)?, format!("{base}{path}"))
            .header("Content-Type", ct)
            .header("Accept", "application/json")
            .body(body)
            .send()
            .await;
        match resp {
            Err(e) => problems.push(format!("request failed: {e:#}")),
            Ok(r) => {
                let code = r.status().as_u16();
                let text = r.text().await.unwrap_or_default();
                if !(400..500).contains(&code) {
                    problems.push(format!("expected a 4xx Status, got {code}: {text:.300}"));
                } else {
                    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    if v["kind"] != "Status" || v["code"] != code {
                        problems.push(format!("not a Status body for {code}: {text:.300}"));
                    }
                }
            }
        }
        results.push((name, problems));
    }

    srv.ensure_running()?;
    let health = client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .context("GET /healthz after the bad requests")?;
    assert_eq!(health.status().as_u16(), 200, "/healthz after bad input");
    assert_eq!(health.text().await?, "ok");
    golden::report("bad input", &results, total + garbage_total)
}
