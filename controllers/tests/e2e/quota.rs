//! The resourcequota-controller and the endpointslice-mirroring-controller against a real
//! `meso server` (bare control plane) with the controller manager running in-process. No
//! kubelet runs: pods stay Pending unless the test patches their status.

use std::time::Duration;

use anyhow::{ensure, Context as _, Result};
use k8s_openapi::api::core::v1::{Endpoints, Namespace, Pod, ResourceQuota, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use meso_tests::MesoServer;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

/// A server plus the controller manager, stopped on drop.
struct Cluster {
    _server: MesoServer,
    stop: CancellationToken,
    manager: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(m) = self.manager.take() {
            m.abort();
        }
    }
}

async fn start() -> Result<(Cluster, kube::Client)> {
    let server = MesoServer::start()?;
    let stop = CancellationToken::new();
    let config = meso_controllers::Config {
        kubeconfig: Some(server.kubeconfig()),
        metrics_bind_address: "0".into(),
        leader_elect: false,
        ..Default::default()
    };
    let token = stop.clone();
    let manager = tokio::spawn(async move {
        if let Err(e) = meso_controllers::run(config, token).await {
            eprintln!("controller manager: {e:#}");
        }
    });
    let client = server.kube_client().await?;
    Ok((
        Cluster {
            _server: server,
            stop,
            manager: Some(manager),
        },
        client,
    ))
}

async fn namespace(client: &kube::Client, name: &str) -> Result<()> {
    let ns: Api<Namespace> = Api::all(client.clone());
    ns.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": name}}))?,
    )
    .await?;
    Ok(())
}

/// Polls `f` every 100 ms until it yields a value, for at most `secs` seconds.
async fn wait_for<T, F, Fut>(what: &str, secs: u64, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    let mut last = None;
    loop {
        match f().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last = Some(e),
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("timed out waiting for {what} (last error: {last:?})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn quota_status(api: &Api<ResourceQuota>, name: &str) -> Result<Value> {
    Ok(serde_json::to_value(api.get(name).await?)?["status"].clone())
}

async fn wait_used(api: &Api<ResourceQuota>, resource: &str, want: &str) -> Result<()> {
    wait_for(&format!("used {resource}={want}"), 30, || async {
        let s = quota_status(api, "q").await?;
        Ok((s["used"][resource] == json!(want)).then_some(()))
    })
    .await
}

fn pod(name: &str) -> Result<Pod> {
    Ok(serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }))?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_usage_follows_the_objects() -> Result<()> {
    let (_cluster, client) = start().await?;
    namespace(&client, "qc").await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "qc");
    let pp = PostParams::default();
    // A pod that exists before the quota is counted by the controller.
    pods.create(&pp, &pod("early")?).await?;
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), "qc");
    quotas
        .create(
            &pp,
            &serde_json::from_value(json!({"metadata": {"name": "q"},
                "spec": {"hard": {"pods": "2", "services": "3", "count/deployments.apps": "4"}}}))?,
        )
        .await?;
    wait_used(&quotas, "pods", "1").await?;
    let status = quota_status(&quotas, "q").await?;
    ensure!(
        status["hard"] == json!({"pods": "2", "services": "3", "count/deployments.apps": "4"}),
        "status: {status}"
    );
    ensure!(
        status["used"] == json!({"pods": "1", "services": "0", "count/deployments.apps": "0"}),
        "status: {status}"
    );
    pods.create(&pp, &pod("p1")?).await?;
    match pods.create(&pp, &pod("p2")?).await {
        Err(kube::Error::Api(s)) if s.code == 403 => ensure!(
            s.message
                == r#"pods "p2" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2"#,
            "message: {}",
            s.message
        ),
        other => anyhow::bail!("expected 403, got {other:?}"),
    }
    // A deleted pod frees its slot once the controller has recounted.
    pods.delete("early", &DeleteParams::default().grace_period(0))
        .await?;
    wait_used(&quotas, "pods", "1").await?;
    pods.create(&pp, &pod("p2")?)
        .await
        .context("p2 after the delete")?;
    ensure!(quota_status(&quotas, "q").await?["used"]["pods"] == json!("2"));
    // A finished pod stops counting.
    pods.patch_status(
        "p1",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Succeeded"}})),
    )
    .await?;
    wait_used(&quotas, "pods", "1").await?;
    // Object counts of other groups are recomputed when the quota changes.
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), "qc");
    deployments
        .create(
            &pp,
            &serde_json::from_value(json!({"metadata": {"name": "d"}, "spec": {
                "replicas": 0, "selector": {"matchLabels": {"app": "d"}},
                "template": {"metadata": {"labels": {"app": "d"}},
                    "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}))?,
        )
        .await?;
    quotas
        .patch(
            "q",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"hard": {"pods": "5"}}})),
        )
        .await?;
    wait_for("status to follow the new spec.hard", 30, || async {
        let s = quota_status(&quotas, "q").await?;
        Ok(
            (s["hard"]["pods"] == json!("5") && s["used"]["count/deployments.apps"] == json!("1"))
                .then_some(()),
        )
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_of_selectorless_services_are_mirrored() -> Result<()> {
    let (_cluster, client) = start().await?;
    namespace(&client, "mirror").await?;
    let pp = PostParams::default();
    let services: Api<Service> = Api::namespaced(client.clone(), "mirror");
    services
        .create(
            &pp,
            &serde_json::from_value(json!({"metadata": {"name": "ext"}, "spec": {
                "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}))?,
        )
        .await?;
    let endpoints: Api<Endpoints> = Api::namespaced(client.clone(), "mirror");
    endpoints
        .create(
            &pp,
            &serde_json::from_value(json!({"metadata": {"name": "ext", "labels": {"team": "a"}},
                "subsets": [{"addresses": [{"ip": "10.9.8.7", "hostname": "one"}],
                    "notReadyAddresses": [{"ip": "10.9.8.6"}],
                    "ports": [{"name": "http", "port": 8080}]}]}))?,
        )
        .await?;
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "mirror");
    let selector = ListParams::default().labels(
        "endpointslice.kubernetes.io/managed-by=endpointslicemirroring-controller.k8s.io,kubernetes.io/service-name=ext",
    );
    let slice = wait_for("a mirrored slice", 30, || async {
        let list = slices.list(&selector).await?;
        Ok(list.items.into_iter().next())
    })
    .await?;
    let v = serde_json::to_value(&slice)?;
    ensure!(v["addressType"] == json!("IPv4"), "slice: {v}");
    ensure!(v["metadata"]["labels"]["team"] == json!("a"), "slice: {v}");
    ensure!(
        v["ports"] == json!([{"name": "http", "port": 8080, "protocol": "TCP"}]),
        "slice: {v}"
    );
    ensure!(
        v["endpoints"]
            == json!([
                {"addresses": ["10.9.8.7"], "conditions": {"ready": true}, "hostname": "one"},
                {"addresses": ["10.9.8.6"], "conditions": {"ready": false}}
            ]),
        "slice: {v}"
    );
    ensure!(
        v["metadata"]["ownerReferences"][0]["kind"] == json!("Endpoints"),
        "slice: {v}"
    );
    // Changes follow.
    endpoints
        .patch(
            "ext",
            &PatchParams::default(),
            &Patch::Merge(json!({"subsets": [{"addresses": [{"ip": "10.9.8.5"}],
                "ports": [{"name": "http", "port": 8080}]}]})),
        )
        .await?;
    wait_for("the slice to follow the Endpoints", 30, || async {
        let list = slices.list(&selector).await?;
        let v = serde_json::to_value(&list.items)?;
        Ok((list.items.len() == 1
            && v[0]["endpoints"]
                == json!([{"addresses": ["10.9.8.5"], "conditions": {"ready": true}}]))
        .then_some(()))
    })
    .await?;
    // Endpoints of a Service with a selector are the endpoints controller's: not mirrored.
    services
        .create(
            &pp,
            &serde_json::from_value(json!({"metadata": {"name": "web"}, "spec": {
                "selector": {"app": "web"}, "ports": [{"port": 80}]}}))?,
        )
        .await?;
    wait_for("the endpoints controller's Endpoints", 30, || async {
        Ok(endpoints.get_opt("web").await?)
    })
    .await?;
    // Deleting the Endpoints removes the mirror.
    endpoints.delete("ext", &DeleteParams::default()).await?;
    wait_for("the mirrored slice to go", 30, || async {
        Ok(slices.list(&selector).await?.items.is_empty().then_some(()))
    })
    .await?;
    let all = slices
        .list(&ListParams::default().labels(
            "endpointslice.kubernetes.io/managed-by=endpointslicemirroring-controller.k8s.io",
        ))
        .await?;
    ensure!(all.items.is_empty(), "unexpected mirrors: {:?}", all.items);
    Ok(())
}
