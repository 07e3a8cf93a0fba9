//! ResourceQuota and LimitRange admission against a bare `meso server` (no controllers), driven
//! with kube-rs and kubectl. With no resourcequota-controller running, each test writes the
//! quota's `status` itself through `resourcequotas/status`, as the controller would.

use anyhow::{bail, ensure, Context, Result};
use k8s_openapi::api::core::v1::{
    LimitRange, Namespace, PersistentVolumeClaim, Pod, ResourceQuota,
};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use meso_tests::MesoServer;
use serde_json::{json, Value};

async fn namespace(client: &kube::Client, name: &str) -> Result<()> {
    let ns: Api<Namespace> = Api::all(client.clone());
    ns.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": name}}))?,
    )
    .await
    .with_context(|| format!("creating namespace {name}"))?;
    Ok(())
}

/// Creates a quota with `hard` and sets its status as the controller would (`used` given).
async fn quota(
    client: &kube::Client,
    ns: &str,
    name: &str,
    spec: Value,
    used: Value,
) -> Result<Api<ResourceQuota>> {
    let api: Api<ResourceQuota> = Api::namespaced(client.clone(), ns);
    let hard = spec["hard"].clone();
    api.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec}))?,
    )
    .await
    .context("creating the quota")?;
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"hard": hard, "used": used}})),
    )
    .await
    .context("setting the quota's status")?;
    Ok(api)
}

fn pod(name: &str, resources: Value) -> Result<Pod> {
    Ok(serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox", "resources": resources}]},
    }))?)
}

/// The 403 a create must fail with; returns its message.
fn forbidden<T: std::fmt::Debug>(r: Result<T, kube::Error>) -> Result<String> {
    match r {
        Err(kube::Error::Api(s)) if s.code == 403 && s.reason == "Forbidden" => Ok(s.message),
        other => bail!("expected 403 Forbidden, got {other:?}"),
    }
}

async fn used(api: &Api<ResourceQuota>, name: &str, resource: &str) -> Result<String> {
    let q = api.get(name).await?;
    let v = serde_json::to_value(&q)?;
    Ok(v["status"]["used"][resource]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_count_quota_denies_the_third_pod() -> Result<()> {
    let srv = MesoServer::start()?;
    let client = srv.kube_client().await?;
    namespace(&client, "q1").await?;
    let quotas = quota(
        &client,
        "q1",
        "q",
        json!({"hard": {"pods": "2"}}),
        json!({"pods": "0"}),
    )
    .await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "q1");
    let pp = PostParams::default();
    for name in ["p1", "p2"] {
        pods.create(&pp, &pod(name, json!({}))?).await?;
    }
    let msg = forbidden(pods.create(&pp, &pod("p3", json!({}))?).await)?;
    ensure!(
        msg == r#"pods "p3" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2"#,
        "message: {msg}"
    );
    ensure!(used(&quotas, "q", "pods").await? == "2");
    // A dry run is checked but charges nothing; a quota tracking other things is ignored.
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    forbidden(pods.create(&dry, &pod("p4", json!({}))?).await)?;
    ensure!(used(&quotas, "q", "pods").await? == "2");
    // kubectl shows the same message.
    if let Some(k) = meso_tests::kubectl_132() {
        let out = srv.kubectl(&k, &["-n", "q1", "run", "p5", "--image=busybox"])?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(!out.status.success(), "kubectl run succeeded");
        ensure!(
            stderr.contains(
                "Error from server (Forbidden): pods \"p5\" is forbidden: exceeded quota: q"
            ),
            "kubectl said: {stderr}"
        );
    }
    // Quota status is its own: a main-resource update does not change it.
    let q = quotas.get("q").await?;
    quotas.replace("q", &pp, &q).await?;
    ensure!(used(&quotas, "q", "pods").await? == "2");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compute_quota_requires_requests_and_sums_them() -> Result<()> {
    let srv = MesoServer::start()?;
    let client = srv.kube_client().await?;
    namespace(&client, "q2").await?;
    let quotas = quota(
        &client,
        "q2",
        "compute",
        json!({"hard": {"requests.cpu": "1", "limits.memory": "1Gi"}}),
        json!({"requests.cpu": "0", "limits.memory": "0"}),
    )
    .await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "q2");
    let pp = PostParams::default();
    let msg = forbidden(pods.create(&pp, &pod("bare", json!({}))?).await)?;
    ensure!(
        msg == r#"pods "bare" is forbidden: failed quota: compute: must specify limits.memory for: c; requests.cpu for: c"#,
        "message: {msg}"
    );
    let res = |cpu: &str| json!({"requests": {"cpu": cpu}, "limits": {"memory": "256Mi"}});
    pods.create(&pp, &pod("a", res("500m"))?).await?;
    let msg = forbidden(pods.create(&pp, &pod("b", res("600m"))?).await)?;
    ensure!(
        msg == r#"pods "b" is forbidden: exceeded quota: compute, requested: requests.cpu=600m, used: requests.cpu=500m, limited: requests.cpu=1"#,
        "message: {msg}"
    );
    pods.create(&pp, &pod("c", res("500m"))?).await?;
    ensure!(used(&quotas, "compute", "requests.cpu").await? == "1");
    ensure!(used(&quotas, "compute", "limits.memory").await? == "512Mi");
    // A BestEffort-scoped quota only counts best-effort pods.
    quota(
        &client,
        "q2",
        "besteffort",
        json!({"hard": {"pods": "0"}, "scopes": ["BestEffort"]}),
        json!({"pods": "0"}),
    )
    .await?;
    quotas
        .patch(
            "compute",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"hard": {"requests.cpu": "2"}}})),
        )
        .await?;
    // status.hard is what admission enforces; the controller copies spec.hard there.
    quotas
        .patch_status(
            "compute",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"hard": {"requests.cpu": "2"}}})),
        )
        .await?;
    pods.create(&pp, &pod("d", res("100m"))?).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_never_exceed_the_quota() -> Result<()> {
    let srv = MesoServer::start()?;
    let client = srv.kube_client().await?;
    namespace(&client, "q3").await?;
    let quotas = quota(
        &client,
        "q3",
        "q",
        json!({"hard": {"pods": "3"}}),
        json!({"pods": "0"}),
    )
    .await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "q3");
    let mut tasks = Vec::new();
    for i in 0..10 {
        let pods = pods.clone();
        let p = pod(&format!("p{i}"), json!({}))?;
        tasks.push(tokio::spawn(async move {
            pods.create(&PostParams::default(), &p).await
        }));
    }
    let (mut ok, mut denied) = (0, 0);
    for t in tasks {
        match t.await? {
            Ok(_) => ok += 1,
            Err(kube::Error::Api(s)) if s.code == 403 => {
                ensure!(
                    s.message.contains("exceeded quota: q"),
                    "message: {}",
                    s.message
                );
                denied += 1;
            }
            Err(e) => bail!("unexpected error: {e}"),
        }
    }
    ensure!(ok == 3 && denied == 7, "{ok} created, {denied} denied");
    ensure!(pods.list(&ListParams::default()).await?.items.len() == 3);
    ensure!(used(&quotas, "q", "pods").await? == "3");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_range_defaults_and_bounds() -> Result<()> {
    let srv = MesoServer::start()?;
    let client = srv.kube_client().await?;
    namespace(&client, "lr").await?;
    let ranges: Api<LimitRange> = Api::namespaced(client.clone(), "lr");
    let pp = PostParams::default();
    ranges
        .create(
            &pp,
            &serde_json::from_value(json!({"metadata": {"name": "limits"}, "spec": {"limits": [
                {"type": "Container", "max": {"cpu": "500m"}, "min": {"memory": "16Mi"},
                 "default": {"cpu": "200m", "memory": "128Mi"}, "defaultRequest": {"cpu": "100m"}},
                {"type": "Pod", "max": {"memory": "300Mi"}},
                {"type": "PersistentVolumeClaim", "max": {"storage": "1Gi"}}
            ]}}))?,
        )
        .await?;
    // The stored range carries the defaulted defaultRequest (memory from default).
    let stored = serde_json::to_value(ranges.get("limits").await?)?;
    ensure!(
        stored["spec"]["limits"][0]["defaultRequest"] == json!({"cpu": "100m", "memory": "128Mi"}),
        "stored: {stored}"
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), "lr");
    let created = serde_json::to_value(pods.create(&pp, &pod("defaults", json!({}))?).await?)?;
    let res = &created["spec"]["containers"][0]["resources"];
    ensure!(
        *res == json!({"limits": {"cpu": "200m", "memory": "128Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}}),
        "resources: {res}"
    );
    ensure!(
        created["metadata"]["annotations"]["kubernetes.io/limit-ranger"]
            == json!("LimitRanger plugin set: cpu, memory request for container c; cpu, memory limit for container c"),
        "annotations: {}",
        created["metadata"]["annotations"]
    );
    let msg = forbidden(
        pods.create(&pp, &pod("big", json!({"limits": {"cpu": "1"}}))?)
            .await,
    )?;
    ensure!(
        msg == r#"pods "big" is forbidden: maximum cpu usage per Container is 500m, but limit is 1"#,
        "message: {msg}"
    );
    let msg = forbidden(
        pods.create(
            &pp,
            &pod(
                "small",
                json!({"requests": {"memory": "8Mi"}, "limits": {"memory": "8Mi"}}),
            )?,
        )
        .await,
    )?;
    ensure!(
        msg == r#"pods "small" is forbidden: minimum memory usage per Container is 16Mi, but request is 8Mi"#,
        "message: {msg}"
    );
    let two: Pod =
        serde_json::from_value(json!({"metadata": {"name": "two"}, "spec": {"containers": [
        {"name": "a", "image": "busybox", "resources": {"limits": {"memory": "200Mi"}}},
        {"name": "b", "image": "busybox", "resources": {"limits": {"memory": "200Mi"}}}]}}))?;
    let msg = forbidden(pods.create(&pp, &two).await)?;
    ensure!(
        msg == r#"pods "two" is forbidden: maximum memory usage per Pod is 300Mi, but limit is 400Mi"#,
        "message: {msg}"
    );
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "lr");
    let claim = |size: &str| -> Result<PersistentVolumeClaim> {
        Ok(serde_json::from_value(
            json!({"metadata": {"name": "data"}, "spec": {
            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}}),
        )?)
    };
    let msg = forbidden(pvcs.create(&pp, &claim("2Gi")?).await)?;
    ensure!(
        msg == r#"persistentvolumeclaims "data" is forbidden: maximum storage usage per PersistentVolumeClaim is 1Gi, but request is 2Gi"#,
        "message: {msg}"
    );
    pvcs.create(&pp, &claim("1Gi")?).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_limit_ranges_and_quotas_are_rejected() -> Result<()> {
    let srv = MesoServer::start()?;
    let client = srv.kube_client().await?;
    namespace(&client, "bad").await?;
    let pp = PostParams::default();
    let ranges: Api<LimitRange> = Api::namespaced(client.clone(), "bad");
    let r = ranges
        .create(
            &pp,
            &serde_json::from_value(json!({"metadata": {"name": "l"}, "spec": {"limits": [
                {"type": "Container", "min": {"cpu": "2"}, "max": {"cpu": "1"}}]}}))?,
        )
        .await;
    match r {
        Err(kube::Error::Api(s)) if s.code == 422 => ensure!(
            s.message.contains("spec.limits[0].min[cpu]: Invalid value: \"2\": min value 2 is greater than max value 1"),
            "message: {}",
            s.message
        ),
        other => bail!("expected 422, got {other:?}"),
    }
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), "bad");
    let r = quotas
        .create(
            &pp,
            &serde_json::from_value(json!({"metadata": {"name": "q"}, "spec": {
                "hard": {"pods": "-1", "services": "1"}, "scopes": ["BestEffort", "NotBestEffort"]}}))?,
        )
        .await;
    match r {
        Err(kube::Error::Api(s)) if s.code == 422 => {
            for part in [
                "spec.hard[pods]: Invalid value: \"-1\": must be greater than or equal to 0",
                "spec.scopes: Invalid value: []core.ResourceQuotaScope{\"BestEffort\", \"NotBestEffort\"}: unsupported scope applied to resource",
                "conflicting scopes",
            ] {
                ensure!(s.message.contains(part), "missing {part:?} in: {}", s.message);
            }
        }
        other => bail!("expected 422, got {other:?}"),
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_quota_charges_creates_and_type_changes() -> Result<()> {
    let srv = MesoServer::start()?;
    let client = srv.kube_client().await?;
    namespace(&client, "q4").await?;
    let quotas = quota(
        &client,
        "q4",
        "svc",
        json!({"hard": {"services": "2", "services.nodeports": "1"}}),
        json!({"services": "0", "services.nodeports": "0"}),
    )
    .await?;
    let services: Api<k8s_openapi::api::core::v1::Service> = Api::namespaced(client.clone(), "q4");
    let pp = PostParams::default();
    services
        .create(
            &pp,
            &serde_json::from_value(json!({"metadata": {"name": "a"}, "spec": {
                "ports": [{"name": "x", "port": 80}, {"name": "y", "port": 81}]}}))?,
        )
        .await?;
    ensure!(used(&quotas, "svc", "services").await? == "1");
    let msg = forbidden(
        services
            .patch(
                "a",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"type": "NodePort"}})),
            )
            .await,
    )?;
    ensure!(
        msg == r#"services "a" is forbidden: exceeded quota: svc, requested: services.nodeports=2, used: services.nodeports=0, limited: services.nodeports=1"#,
        "message: {msg}"
    );
    services
        .create(
            &pp,
            &serde_json::from_value(json!({"metadata": {"name": "b"}, "spec": {
                "type": "NodePort", "ports": [{"port": 80}]}}))?,
        )
        .await?;
    ensure!(used(&quotas, "svc", "services.nodeports").await? == "1");
    let msg = forbidden(
        services
            .create(
                &pp,
                &serde_json::from_value(
                    json!({"metadata": {"name": "c"}, "spec": {"ports": [{"port": 80}]}}),
                )?,
            )
            .await,
    )?;
    ensure!(
        msg == r#"services "c" is forbidden: exceeded quota: svc, requested: services=1, used: services=2, limited: services=2"#,
        "message: {msg}"
    );
    Ok(())
}
