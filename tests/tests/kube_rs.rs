//! kube-rs against `meso server`: typed and dynamic `Api` CRUD, discovery, and
//! `kube::runtime::watcher` across a restart of the server.

use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::discovery::{Discovery, Scope};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::ResourceExt;
use meso_tests::MesoServer;
use serde_json::json;

async fn create_namespace(client: &kube::Client, name: &str) -> Result<()> {
    let ns: Api<Namespace> = Api::all(client.clone());
    ns.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": name}}))?,
    )
    .await
    .with_context(|| format!("creating namespace {name}"))?;
    Ok(())
}

fn configmap(name: &str, labels: serde_json::Value, data: serde_json::Value) -> Result<ConfigMap> {
    Ok(serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "data": data,
    }))?)
}

fn api_error(r: Result<impl std::fmt::Debug, kube::Error>) -> Result<Box<kube::core::Status>> {
    match r {
        Err(kube::Error::Api(s)) => Ok(s),
        other => bail!("expected an API error, got {other:?}"),
    }
}

fn rv(m: &impl ResourceExt) -> Result<u64> {
    m.resource_version()
        .context("no resourceVersion")?
        .parse()
        .context("resourceVersion is not a decimal integer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_configmap_crud() -> Result<()> {
    let srv = MesoServer::start()?;
    let client = srv.kube_client().await?;
    create_namespace(&client, "kube-rs").await?;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "kube-rs");
    let pp = PostParams::default();

    let a = cms
        .create(
            &pp,
            &configmap("a", json!({"app": "x"}), json!({"k": "v"}))?,
        )
        .await
        .context("create a")?;
    assert_eq!(a.name_any(), "a");
    assert_eq!(a.namespace().as_deref(), Some("kube-rs"));
    assert!(a.uid().is_some_and(|u| u.len() == 36), "{:?}", a.metadata);
    assert!(a.metadata.creation_timestamp.is_some());
    let rv_a = rv(&a)?;
    cms.create(&pp, &configmap("b", json!({}), json!({"k": "v"}))?)
        .await
        .context("create b")?;

    let got = cms.get("a").await.context("get a")?;
    assert_eq!(got.uid(), a.uid());
    assert_eq!(got.data, a.data);

    let listed = cms.list(&ListParams::default().labels("app=x")).await?;
    let names: Vec<String> = listed.items.iter().map(|c| c.name_any()).collect();
    assert_eq!(names, ["a"]);
    let all = cms.list(&ListParams::default()).await?;
    assert!(all.items.len() >= 2);
    let list_rv: u64 = all
        .metadata
        .resource_version
        .as_deref()
        .unwrap_or("")
        .parse()
        .context("list resourceVersion")?;
    assert!(list_rv >= rv_a, "list resourceVersion {list_rv} < {rv_a}");

    // replace with the current resourceVersion, then with a stale one
    let mut upd = got.clone();
    upd.data = Some([("k".to_string(), "v2".to_string())].into());
    let replaced = cms.replace("a", &pp, &upd).await.context("replace a")?;
    assert!(rv(&replaced)? > rv_a);
    assert_eq!(
        replaced
            .data
            .as_ref()
            .and_then(|d| d.get("k"))
            .map(String::as_str),
        Some("v2")
    );
    let st = api_error(cms.replace("a", &pp, &upd).await)?;
    assert_eq!((st.code, st.reason.as_str()), (409, "Conflict"), "{st:?}");

    // the three patch types
    let ps = PatchParams::default();
    let p = cms
        .patch("a", &ps, &Patch::Merge(json!({"data": {"m": "1"}})))
        .await
        .context("merge patch")?;
    assert_eq!(p.data.as_ref().map(|d| d.len()), Some(2));
    let jp: json_patch::Patch =
        serde_json::from_value(json!([{"op": "replace", "path": "/data/m", "value": "2"}]))?;
    let p = cms
        .patch("a", &ps, &Patch::<()>::Json(jp))
        .await
        .context("json patch")?;
    assert_eq!(
        p.data.as_ref().and_then(|d| d.get("m")).map(String::as_str),
        Some("2")
    );
    let p = cms
        .patch(
            "a",
            &ps,
            &Patch::Strategic(json!({"metadata": {"labels": {"extra": "y"}}})),
        )
        .await
        .context("strategic merge patch")?;
    assert_eq!(p.labels().get("extra").map(String::as_str), Some("y"));
    assert_eq!(p.labels().get("app").map(String::as_str), Some("x"));

    // delete, then NotFound
    cms.delete("a", &DeleteParams::default())
        .await
        .context("delete a")?;
    let st = api_error(cms.get("a").await)?;
    assert_eq!((st.code, st.reason.as_str()), (404, "NotFound"), "{st:?}");
    assert!(cms.get_opt("a").await?.is_none());
    let st = api_error(cms.delete("a", &DeleteParams::default()).await)?;
    assert_eq!(st.code, 404);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_api_crud_and_discovery() -> Result<()> {
    let srv = MesoServer::start()?;
    let client = srv.kube_client().await?;
    create_namespace(&client, "dyn").await?;

    // Discovery as kube-rs does it (legacy and aggregated).
    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .context("discovery")?;
    let gvk = GroupVersionKind::gvk("apps", "v1", "Deployment");
    let (ar, caps) = discovery
        .resolve_gvk(&gvk)
        .context("apps/v1 Deployment not discovered")?;
    assert_eq!(ar.plural, "deployments");
    assert_eq!(caps.scope, Scope::Namespaced);
    assert!(caps.subresources.iter().any(|(s, _)| s.plural == "scale"));
    let aggregated = Discovery::new(client.clone())
        .run_aggregated()
        .await
        .context("aggregated discovery")?;
    assert!(aggregated
        .resolve_gvk(&GroupVersionKind::gvk("", "v1", "ConfigMap"))
        .is_some());
    let (pinned, _) = kube::discovery::pinned_kind(&client, &gvk).await?;
    assert_eq!(pinned.plural, "deployments");

    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "dyn", &ar);
    let spec = json!({"spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}},
                     "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}});
    let obj = DynamicObject::new("web", &ar).within("dyn").data(spec);
    let created = api
        .create(&PostParams::default(), &obj)
        .await
        .context("create deployment")?;
    assert_eq!(
        created.types.as_ref().map(|t| t.kind.as_str()),
        Some("Deployment")
    );
    assert_eq!(created.data["spec"]["replicas"], 1);
    assert_eq!(created.metadata.generation, Some(1));

    let got = api.get("web").await?;
    assert_eq!(
        got.data["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );
    let list = api.list(&ListParams::default()).await?;
    assert_eq!(
        list.items.iter().map(|o| o.name_any()).collect::<Vec<_>>(),
        ["web"]
    );

    let patched = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await?;
    assert_eq!(patched.data["spec"]["replicas"], 3);
    assert_eq!(
        patched.metadata.generation,
        Some(2),
        "spec change bumps generation"
    );
    let labelled = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await?;
    assert_eq!(
        labelled.metadata.generation,
        Some(2),
        "metadata change keeps generation"
    );

    // Core group through the dynamic API too.
    let cm_ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("", "v1", "ConfigMap"),
        "configmaps",
    );
    let cms: Api<DynamicObject> = Api::namespaced_with(client.clone(), "dyn", &cm_ar);
    cms.create(
        &PostParams::default(),
        &DynamicObject::new("dyn-cm", &cm_ar).data(json!({"data": {"a": "b"}})),
    )
    .await?;
    assert_eq!(cms.get("dyn-cm").await?.data["data"]["a"], "b");

    api.delete("web", &DeleteParams::default()).await?;
    cms.delete("dyn-cm", &DeleteParams::default()).await?;
    assert!(api.get_opt("web").await?.is_none());
    assert!(cms.get_opt("dyn-cm").await?.is_none());
    Ok(())
}

async fn wait_for_event(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Result<Event<ConfigMap>, String>>,
    name: &str,
    timeout: Duration,
    seen: &mut Vec<String>,
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let ev = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .map_err(|_| {
                anyhow::anyhow!("watcher did not see {name} within {timeout:?}; saw {seen:?}")
            })?
            .context("watcher stream ended")?;
        match ev {
            Ok(Event::Apply(o)) | Ok(Event::InitApply(o)) => {
                seen.push(format!("apply {}", o.name_any()));
                if o.name_any() == name {
                    return Ok(());
                }
            }
            Ok(other) => seen.push(format!("{:?}", std::mem::discriminant(&other))),
            Err(e) => seen.push(format!("error: {e}")),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_recovers_across_restart() -> Result<()> {
    let mut srv = MesoServer::start()?;
    let client = srv.kube_client().await?;
    create_namespace(&client, "watched").await?;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "watched");
    api.create(
        &PostParams::default(),
        &configmap("before", json!({}), json!({"k": "v"}))?,
    )
    .await?;

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let stream = watcher::watcher(api.clone(), watcher::Config::default()).default_backoff();
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(ev) = stream.next().await {
            if tx.send(ev.map_err(|e| e.to_string())).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let result = async {
        wait_for_event(&mut rx, "before", Duration::from_secs(30), &mut seen).await?;
        api.create(
            &PostParams::default(),
            &configmap("during", json!({}), json!({"k": "v"}))?,
        )
        .await?;
        wait_for_event(&mut rx, "during", Duration::from_secs(30), &mut seen).await?;

        tokio::task::block_in_place(|| srv.restart())?;
        let client2 = srv.kube_client().await?;
        let api2: Api<ConfigMap> = Api::namespaced(client2, "watched");
        api2.create(
            &PostParams::default(),
            &configmap("after-restart", json!({}), json!({"k": "v"}))?,
        )
        .await
        .context("create after restart")?;
        wait_for_event(&mut rx, "after-restart", Duration::from_secs(60), &mut seen).await?;
        ensure!(
            api2.get("before").await.is_ok(),
            "objects from before the restart are kept"
        );
        Ok(())
    }
    .await;
    task.abort();
    result
}
