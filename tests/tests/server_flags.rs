//! The command-line contract beyond the defaults: `--token-auth-file` (upstream CSV format),
//! `--tls-san`, graceful SIGTERM, and the operational endpoints (`/metrics`, `/livez`).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use meso_tests::{write_file, MesoServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_auth_file_and_tls_san() -> Result<()> {
    let dir = tempfile::tempdir().context("temp dir")?;
    let tokens = write_file(
        dir.path(),
        "tokens.csv",
        "s3cr3t-token,alice,1001,\"system:masters,dev\"\nplain-token,bob,1002\n",
    )?;
    let tokens = tokens.to_string_lossy().into_owned();
    let srv =
        MesoServer::start_with_args(&["--token-auth-file", &tokens, "--tls-san", "meso.e2e.test"])?;
    let creds = srv.credentials()?.clone();
    let base = srv.base_url()?;
    let anon = srv.http_anonymous()?;

    for (token, expect) in [("s3cr3t-token", 200), ("plain-token", 200), ("wrong", 401)] {
        let r = anon
            .get(format!("{base}/api/v1/namespaces"))
            .bearer_auth(token)
            .send()
            .await
            .with_context(|| format!("GET with token {token}"))?;
        assert_eq!(r.status().as_u16(), expect, "bearer token {token}");
    }
    let r = anon.get(format!("{base}/api/v1/namespaces")).send().await?;
    assert_eq!(r.status().as_u16(), 401, "no credentials");

    // The serving certificate carries the extra SAN: connect by that name.
    let addr: SocketAddr = format!("127.0.0.1:{}", srv.port()).parse()?;
    let ca = reqwest::Certificate::from_pem(&creds.ca_pem)?;
    let by_name = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .resolve("meso.e2e.test", addr)
        .build()?;
    let r = by_name
        .get(format!("https://meso.e2e.test:{}/api", srv.port()))
        .bearer_auth("s3cr3t-token")
        .send()
        .await
        .context("TLS to the --tls-san name")?;
    assert_eq!(r.status().as_u16(), 200);
    let by_localhost = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&creds.ca_pem)?)
        .resolve("localhost", addr)
        .build()?;
    let r = by_localhost
        .get(format!("https://localhost:{}/api", srv.port()))
        .bearer_auth("s3cr3t-token")
        .send()
        .await
        .context("TLS to localhost")?;
    assert_eq!(r.status().as_u16(), 200, "localhost");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_health_endpoints() -> Result<()> {
    let srv = MesoServer::start()?;
    let client = srv.http()?;
    let base = srv.base_url()?;
    for _ in 0..3 {
        client
            .get(format!("{base}/api/v1/namespaces/default/configmaps"))
            .send()
            .await?;
    }
    for path in ["/healthz", "/livez", "/readyz"] {
        let r = client.get(format!("{base}{path}")).send().await?;
        assert_eq!(r.status().as_u16(), 200, "{path}");
        assert_eq!(r.text().await?, "ok", "{path}");
    }
    let r = client.get(format!("{base}/metrics")).send().await?;
    assert_eq!(r.status().as_u16(), 200);
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(ct.starts_with("text/plain"), "Content-Type {ct}");
    let text = r.text().await?;
    assert!(
        text.contains("# TYPE "),
        "Prometheus text format:\n{text:.2000}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("_bucket{") && l.contains("le=")),
        "a latency histogram:\n{text:.2000}"
    );
    assert!(
        text.lines().any(|l| !l.starts_with('#')
            && l.contains("code=\"200\"")
            && l.to_ascii_lowercase().contains("list")),
        "request counts by verb and code (a LIST with code 200 was made):\n{text:.3000}"
    );
    Ok(())
}

#[test]
fn sigterm_shuts_down_gracefully_while_a_watch_is_open() -> Result<()> {
    let mut srv = MesoServer::start()?;
    let creds = srv.credentials()?.clone();
    // An open watch must not keep the server from exiting.
    let (opened_tx, opened_rx) = std::sync::mpsc::channel();
    let watch = std::thread::spawn(move || {
        meso_tests::block_on_thread(move || async move {
            let client = creds.admin_client()?;
            let mut r = client
                .get(format!(
                    "{}/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=120",
                    creds.server
                ))
                .send()
                .await?;
            let _ = opened_tx.send(r.status().as_u16());
            while let Ok(Some(_)) = r.chunk().await {}
            Ok(())
        })
    });
    let status = opened_rx
        .recv_timeout(Duration::from_secs(10))
        .context("the watch did not open within 10 s")?;
    assert_eq!(status, 200, "watch status");
    let started = std::time::Instant::now();
    let status = srv.stop()?;
    assert!(status.success(), "exit status {status}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "shutdown took {:?}",
        started.elapsed()
    );
    let _ = watch.join();
    Ok(())
}
