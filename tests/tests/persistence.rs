//! Restarts: a graceful restart (SIGTERM) keeps every object and continues the revision
//! sequence; after SIGKILL every acknowledged create is still there.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use meso_tests::MesoServer;
use serde_json::{json, Value};

async fn post(client: &reqwest::Client, url: &str, body: &Value) -> Result<Value> {
    let resp = client
        .post(url)
        .json(body)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = resp.status();
    let v: Value = resp.json().await.with_context(|| format!("POST {url}"))?;
    ensure!(status.as_u16() == 201, "POST {url}: {status} {v}");
    Ok(v)
}

async fn get(client: &reqwest::Client, url: &str) -> Result<Value> {
    let resp = client
        .get(url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = resp.status();
    let v: Value = resp.json().await.with_context(|| format!("GET {url}"))?;
    ensure!(status.is_success(), "GET {url}: {status} {v}");
    Ok(v)
}

fn rv_of(v: &Value) -> Result<u64> {
    v["metadata"]["resourceVersion"]
        .as_str()
        .context("no resourceVersion")?
        .parse()
        .context("resourceVersion is not a decimal integer")
}

fn cm(name: &str, i: usize) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
           "data": {"i": i.to_string()}})
}

/// name -> (uid, resourceVersion, data) of every configmap in a list.
fn index(list: &Value) -> BTreeMap<String, (Value, Value, Value)> {
    list["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|o| {
                    (
                        o["metadata"]["name"].as_str().unwrap_or("").to_string(),
                        (
                            o["metadata"]["uid"].clone(),
                            o["metadata"]["resourceVersion"].clone(),
                            o["data"].clone(),
                        ),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_restart_keeps_objects_and_revisions() -> Result<()> {
    let mut srv = MesoServer::start()?;
    let client = srv.http()?;
    let base = srv.base_url()?;
    let default_ns = get(&client, &format!("{base}/api/v1/namespaces/default")).await?;
    post(
        &client,
        &format!("{base}/api/v1/namespaces"),
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "persist"}}),
    )
    .await?;
    let cms = format!("{base}/api/v1/namespaces/persist/configmaps");
    let mut max_rv = 0;
    for i in 0..20 {
        let v = post(&client, &cms, &cm(&format!("cm-{i:02}"), i)).await?;
        max_rv = max_rv.max(rv_of(&v)?);
    }
    let before = get(&client, &cms).await?;
    let before_idx = index(&before);
    assert_eq!(before_idx.len(), 20);

    tokio::task::block_in_place(|| srv.restart())?;
    let client = srv.http()?;
    let after = get(&client, &cms).await?;
    let after_idx = index(&after);
    assert_eq!(
        after_idx, before_idx,
        "objects (uid, resourceVersion, data) survive a restart"
    );
    assert!(rv_of(&after)? >= max_rv, "list RV {:?}", after["metadata"]);
    let default_after = get(&client, &format!("{base}/api/v1/namespaces/default")).await?;
    assert_eq!(
        default_after["metadata"]["uid"], default_ns["metadata"]["uid"],
        "built-in namespaces are not re-created on restart"
    );
    let nss = get(&client, &format!("{base}/api/v1/namespaces")).await?;
    let ns_names: Vec<&str> = nss["items"]
        .as_array()
        .context("items")?
        .iter()
        .filter_map(|n| n["metadata"]["name"].as_str())
        .collect();
    for want in [
        "default",
        "kube-system",
        "kube-public",
        "kube-node-lease",
        "persist",
    ] {
        assert_eq!(
            ns_names.iter().filter(|n| **n == want).count(),
            1,
            "{want} in {ns_names:?}"
        );
    }
    let new = post(&client, &cms, &cm("cm-after", 99)).await?;
    let new_rv = rv_of(&new)?;
    assert!(
        new_rv > max_rv,
        "resourceVersion continues after restart: {new_rv} <= {max_rv}"
    );

    // and once more, to be sure the second start on the same dir is no different
    tokio::task::block_in_place(|| srv.restart())?;
    let client = srv.http()?;
    let again = index(&get(&client, &cms).await?);
    assert_eq!(again.len(), 21);
    let newer = post(&client, &cms, &cm("cm-after-2", 100)).await?;
    assert!(rv_of(&newer)? > new_rv);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_acknowledged_create() -> Result<()> {
    let mut srv = MesoServer::start()?;
    let client = srv.http()?;
    let base = srv.base_url()?;
    post(
        &client,
        &format!("{base}/api/v1/namespaces"),
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "crash"}}),
    )
    .await?;
    let cms = format!("{base}/api/v1/namespaces/crash/configmaps");
    let acked: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (client, cms, acked, stop) = (client.clone(), cms.clone(), acked.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..500 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let name = format!("w{w}-{i:03}");
                let resp = client
                    .post(&cms)
                    .json(&cm(&name, i))
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await;
                let Ok(resp) = resp else { break };
                if resp.status().as_u16() != 201 {
                    break;
                }
                let Ok(v) = resp.json::<Value>().await else {
                    break;
                };
                let Ok(rv) = rv_of(&v) else { break };
                if let Ok(mut a) = acked.lock() {
                    a.push((name, rv));
                }
            }
        }));
    }
    // Let writes flow, then kill the server in the middle of them.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let n = acked.lock().map(|a| a.len()).unwrap_or(0);
        if n >= 200 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::task::block_in_place(|| srv.sigkill())?;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let acked = acked.lock().map(|a| a.clone()).unwrap_or_default();
    ensure!(
        acked.len() >= 50,
        "only {} creates acknowledged before the kill",
        acked.len()
    );

    tokio::task::block_in_place(|| srv.start_again())?;
    let client = srv.http()?;
    let present = index(&get(&client, &cms).await?);
    let missing: Vec<&String> = acked
        .iter()
        .map(|(n, _)| n)
        .filter(|n| !present.contains_key(*n))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged creates lost after SIGKILL: {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(20)]
    );
    for (name, rv) in &acked {
        let (_, got_rv, _) = &present[name];
        assert_eq!(got_rv.as_str(), Some(rv.to_string().as_str()), "{name}");
    }
    let max_rv = acked.iter().map(|(_, rv)| *rv).max().unwrap_or(0);
    let new = post(&client, &cms, &cm("after-crash", 0)).await?;
    assert!(rv_of(&new)? > max_rv, "revisions continue after a crash");
    Ok(())
}
