//! Service account tokens (issue 3, item 4): `kubectl create token` through the TokenRequest
//! API, the tokens as kubectl `--token` credentials, their rejection (401 `Unauthorized`
//! Status) when tampered with, expired, or when their service account or bound pod is gone, the
//! signing key kept across restarts, and the OIDC discovery documents.

use std::path::PathBuf;
use std::process::{Command, Output};

use anyhow::{ensure, Context, Result};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use meso_tests::{run_bounded, write_file, Kubectl, MesoServer, KUBECTL_TIMEOUT};
use serde_json::{json, Value};

const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

fn kubectl() -> Option<Kubectl> {
    meso_tests::kubectl_135().or_else(meso_tests::kubectl_132)
}

/// A kubeconfig that authenticates with `token` only (no client certificate).
fn token_kubeconfig(srv: &MesoServer, name: &str, token: &str) -> Result<PathBuf> {
    let c = srv.credentials()?;
    let ca = STANDARD.encode(&c.ca_pem);
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: meso\n  cluster:\n    server: {}\n    \
         certificate-authority-data: {ca}\nusers:\n- name: sa\n  user:\n    token: {token}\n\
         contexts:\n- name: sa\n  context:\n    cluster: meso\n    user: sa\n    namespace: default\n\
         current-context: sa\n",
        c.server
    );
    write_file(srv.scratch_dir(), name, &text)
}

/// `kubectl get pods` with only `token` as credentials.
fn get_pods_with(srv: &MesoServer, k: &Kubectl, token: &str) -> Result<Output> {
    let cfg = token_kubeconfig(srv, "token.kubeconfig", token)?;
    let mut cmd = Command::new(&k.path);
    cmd.arg("--kubeconfig")
        .arg(&cfg)
        .arg("--cache-dir")
        .arg(srv.scratch_dir().join("kube-cache-token"))
        .args(["get", "pods"])
        .env_remove("KUBECONFIG")
        .env("HOME", srv.scratch_dir());
    run_bounded(cmd, None, KUBECTL_TIMEOUT)
}

fn expect_accepted(srv: &MesoServer, k: &Kubectl, token: &str, what: &str) -> Result<()> {
    let o = get_pods_with(srv, k, token)?;
    ensure!(
        o.status.success(),
        "{what}: kubectl --token get pods failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    Ok(())
}

async fn expect_rejected(srv: &MesoServer, k: &Kubectl, token: &str, what: &str) -> Result<()> {
    let o = get_pods_with(srv, k, token)?;
    let err = String::from_utf8_lossy(&o.stderr);
    ensure!(
        !o.status.success() && err.contains("Unauthorized"),
        "{what}: kubectl with the token must be refused as Unauthorized:\n{err}"
    );
    // The raw answer is upstream's 401 Status.
    let r = srv
        .http_anonymous()?
        .get(srv.url("/api/v1/namespaces/default/pods")?)
        .bearer_auth(token)
        .send()
        .await?;
    ensure!(r.status().as_u16() == 401, "{what}: HTTP {}", r.status());
    let body: Value = r.json().await.context("401 body")?;
    ensure!(
        body["kind"] == "Status" && body["reason"] == "Unauthorized" && body["code"] == 401,
        "{what}: 401 body is not an Unauthorized Status: {body}"
    );
    Ok(())
}

fn claims_of(token: &str) -> Result<Value> {
    let part = token
        .split('.')
        .nth(1)
        .context("token has no claims part")?;
    let bytes = URL_SAFE_NO_PAD.decode(part).context("claims base64")?;
    serde_json::from_slice(&bytes).context("claims JSON")
}

/// Signs `claims` with the server's own key (read from its PKI directory), to mint tokens no
/// API call would issue, such as expired ones.
fn sign_with_server_key(srv: &MesoServer, claims: &Value) -> Result<String> {
    let pem = std::fs::read_to_string(srv.data_dir().join("tls/service-account.key"))
        .context("reading the service account key")?;
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = STANDARD.decode(b64).context("key PEM")?;
    let rng = ring::rand::SystemRandom::new();
    let key = ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &der,
        &rng,
    )
    .map_err(|e| anyhow::anyhow!("key: {e}"))?;
    let header = json!({"alg": "ES256"});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig = key
        .sign(&rng, input.as_bytes())
        .map_err(|e| anyhow::anyhow!("sign: {e}"))?;
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref())))
}

const POD: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: holder
spec:
  serviceAccountName: robot
  containers:
  - name: c
    image: busybox
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_account_tokens() -> Result<()> {
    let Some(k) = kubectl() else { return Ok(()) };
    let mut srv = MesoServer::start()?;
    srv.kubectl_ok(&k, &["create", "serviceaccount", "robot"])?;
    let sa: Value =
        serde_json::from_str(&srv.kubectl_ok(&k, &["get", "sa", "robot", "-o", "json"])?)?;

    // `kubectl create token` → a JWT with upstream's claims, usable as a bearer token.
    let token = srv
        .kubectl_ok(&k, &["create", "token", "robot"])?
        .trim()
        .to_string();
    let c = claims_of(&token)?;
    assert_eq!(c["iss"], ISSUER);
    assert_eq!(c["aud"], json!([ISSUER]));
    assert_eq!(c["sub"], "system:serviceaccount:default:robot");
    assert_eq!(c["kubernetes.io"]["namespace"], "default");
    assert_eq!(c["kubernetes.io"]["serviceaccount"]["name"], "robot");
    assert_eq!(
        c["kubernetes.io"]["serviceaccount"]["uid"],
        sa["metadata"]["uid"]
    );
    let (iat, exp) = (c["iat"].as_i64(), c["exp"].as_i64());
    ensure!(
        matches!((iat, exp), (Some(i), Some(e)) if e - i == 3600) && c["nbf"] == c["iat"],
        "default lifetime is an hour: {c}"
    );
    expect_accepted(&srv, &k, &token, "fresh token")?;

    // The signing key is published and matches the token's kid.
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap_or(""))?)?;
    let jwks: Value = srv
        .http()?
        .get(srv.url("/openid/v1/jwks")?)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(jwks["keys"][0]["kid"], header["kid"], "{jwks} vs {header}");
    assert_eq!(header["alg"], "ES256");
    let oidc: Value = srv
        .http()?
        .get(srv.url("/.well-known/openid-configuration")?)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(oidc["issuer"], ISSUER);
    ensure!(
        oidc["jwks_uri"]
            .as_str()
            .is_some_and(|u| u.ends_with("/openid/v1/jwks")),
        "{oidc}"
    );

    // Tampered: another subject under the original signature.
    let parts: Vec<&str> = token.split('.').collect();
    let mut forged = c.clone();
    forged["sub"] = json!("system:serviceaccount:kube-system:admin");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(forged.to_string()),
        parts[2]
    );
    expect_rejected(&srv, &k, &tampered, "tampered token").await?;
    // Expired (signed with the right key, expired two minutes ago).
    let now = c["iat"].as_i64().unwrap_or(0);
    let mut old = c.clone();
    old["iat"] = json!(now - 3600);
    old["nbf"] = json!(now - 3600);
    old["exp"] = json!(now - 120);
    let expired = sign_with_server_key(&srv, &old)?;
    expect_rejected(&srv, &k, &expired, "expired token").await?;
    // The same claims unexpired are accepted: the rejection above was the expiry.
    old["exp"] = json!(now + 600);
    expect_accepted(
        &srv,
        &k,
        &sign_with_server_key(&srv, &old)?,
        "re-signed token",
    )?;

    // Too short a lifetime: upstream's 422.
    let o = srv.kubectl(&k, &["create", "token", "robot", "--duration=5m"])?;
    let err = String::from_utf8_lossy(&o.stderr);
    ensure!(
        !o.status.success() && err.contains("may not specify a duration less than 10 minutes"),
        "{err}"
    );
    // A token for a service account that does not exist: 404.
    let o = srv.kubectl(&k, &["create", "token", "nobody"])?;
    let err = String::from_utf8_lossy(&o.stderr);
    ensure!(
        !o.status.success() && err.contains("serviceaccounts \"nobody\" not found"),
        "{err}"
    );

    // Bound to a pod: valid while the pod exists, refused once it is deleted.
    let pod = write_file(srv.scratch_dir(), "pod.yaml", POD)?;
    srv.kubectl_ok(&k, &["create", "-f", &pod.to_string_lossy()])?;
    let bound = srv
        .kubectl_ok(
            &k,
            &[
                "create",
                "token",
                "robot",
                "--bound-object-kind=Pod",
                "--bound-object-name=holder",
                "--duration=20m",
            ],
        )?
        .trim()
        .to_string();
    let bc = claims_of(&bound)?;
    assert_eq!(bc["kubernetes.io"]["pod"]["name"], "holder", "{bc}");
    ensure!(bc["exp"]
        .as_i64()
        .zip(bc["iat"].as_i64())
        .is_some_and(|(e, i)| e - i == 1200));
    expect_accepted(&srv, &k, &bound, "pod-bound token")?;
    // A pod running as another service account cannot be bound to robot's token.
    srv.kubectl_ok(&k, &["create", "serviceaccount", "other"])?;
    let o = srv.kubectl(
        &k,
        &[
            "create",
            "token",
            "other",
            "--bound-object-kind=Pod",
            "--bound-object-name=holder",
        ],
    )?;
    ensure!(
        !o.status.success()
            && String::from_utf8_lossy(&o.stderr).contains("different serviceaccount name"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    srv.kubectl_ok(
        &k,
        &["delete", "pod", "holder", "--grace-period=0", "--force"],
    )?;
    expect_rejected(&srv, &k, &bound, "token bound to a deleted pod").await?;

    // The key survives a restart: tokens issued before stay valid.
    srv.restart()?;
    expect_accepted(&srv, &k, &token, "token after a restart")?;

    // Its service account deleted, then recreated under the same name (a new uid): refused.
    srv.kubectl_ok(&k, &["delete", "serviceaccount", "robot"])?;
    expect_rejected(&srv, &k, &token, "token of a deleted service account").await?;
    srv.kubectl_ok(&k, &["create", "serviceaccount", "robot"])?;
    expect_rejected(&srv, &k, &token, "token of a recreated service account").await?;
    Ok(())
}
