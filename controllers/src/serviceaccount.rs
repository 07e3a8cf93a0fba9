//! Per-namespace defaults: the `default` ServiceAccount (upstream's serviceaccount-controller)
//! and the `kube-root-ca.crt` ConfigMap holding the cluster CA (root-ca-certificate-publisher).

use std::sync::Arc;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::ResourceExt;
use serde_json::json;

use crate::scaffold::{run_controller, Context, Result};

pub const ROOT_CA_CONFIGMAP: &str = "kube-root-ca.crt";
const ROOT_CA_DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

fn active(ns: &Namespace) -> bool {
    ns.metadata.deletion_timestamp.is_none()
        && ns.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Terminating")
}

/// Wakes the namespace of an object named `name`.
fn namespace_of<K: kube::Resource>(
    name: &'static str,
) -> impl Fn(Arc<K>) -> Option<ObjectRef<Namespace>> {
    move |obj: Arc<K>| {
        (obj.meta().name.as_deref() == Some(name))
            .then(|| obj.meta().namespace.clone())
            .flatten()
            .map(|ns| ObjectRef::new(&ns))
    }
}

pub fn controller(ctx: &Arc<Context>) -> BoxFuture<'static, ()> {
    let namespaces = ctx.informers.get::<Namespace>();
    let accounts = ctx.informers.get::<ServiceAccount>();
    let c = Controller::for_shared_stream(namespaces.subscribe(), namespaces.store())
        .watches_shared_stream(
            accounts.subscribe(),
            namespace_of::<ServiceAccount>("default"),
        );
    run_controller(
        "serviceaccount-controller",
        c,
        ctx.clone(),
        reconcile_account,
    )
}

async fn reconcile_account(ns: Arc<Namespace>, ctx: Arc<Context>) -> Result<Action> {
    let name = ns.name_any();
    let present = ctx
        .informers
        .get::<ServiceAccount>()
        .store()
        .get(&ObjectRef::new("default").within(&name))
        .is_some();
    if !active(&ns) || present {
        return Ok(Action::await_change());
    }
    let api: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), &name);
    let sa = ServiceAccount {
        metadata: ObjectMeta {
            name: Some("default".into()),
            namespace: Some(name.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    match api.create(&PostParams::default(), &sa).await {
        Ok(_) => Ok(Action::await_change()),
        // 409: it exists; 403/404: the namespace is going away.
        Err(kube::Error::Api(s)) if matches!(s.code, 409 | 403 | 404) => Ok(Action::await_change()),
        Err(e) => Err(e.into()),
    }
}

pub fn root_ca_controller(ctx: &Arc<Context>) -> BoxFuture<'static, ()> {
    let namespaces = ctx.informers.get::<Namespace>();
    let maps = ctx.informers.get::<ConfigMap>();
    let c = Controller::for_shared_stream(namespaces.subscribe(), namespaces.store())
        .watches_shared_stream(
            maps.subscribe(),
            namespace_of::<ConfigMap>(ROOT_CA_CONFIGMAP),
        );
    run_controller(
        "root-ca-certificate-publisher-controller",
        c,
        ctx.clone(),
        reconcile_root_ca,
    )
}

async fn reconcile_root_ca(ns: Arc<Namespace>, ctx: Arc<Context>) -> Result<Action> {
    let Some(ca) = ctx.root_ca.clone() else {
        return Ok(Action::await_change());
    };
    if !active(&ns) {
        return Ok(Action::await_change());
    }
    let name = ns.name_any();
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &name);
    let current = ctx
        .informers
        .get::<ConfigMap>()
        .store()
        .get(&ObjectRef::new(ROOT_CA_CONFIGMAP).within(&name));
    let data = json!({"ca.crt": ca});
    let result = match current {
        None => {
            let cm: ConfigMap = serde_json::from_value(json!({
                "metadata": {"name": ROOT_CA_CONFIGMAP, "namespace": name,
                    "annotations": {"kubernetes.io/description": ROOT_CA_DESCRIPTION}},
                "data": data,
            }))?;
            api.create(&PostParams::default(), &cm).await.map(|_| ())
        }
        Some(cm)
            if cm.data.as_ref().and_then(|d| d.get("ca.crt")) != Some(&ca)
                || cm.data.as_ref().is_some_and(|d| d.len() != 1) =>
        {
            let mut cm = (*cm).clone();
            cm.data = Some([("ca.crt".to_string(), ca)].into());
            cm.binary_data = None;
            api.replace(ROOT_CA_CONFIGMAP, &PostParams::default(), &cm)
                .await
                .map(|_| ())
        }
        Some(_) => Ok(()),
    };
    match result {
        Ok(()) => Ok(Action::await_change()),
        Err(kube::Error::Api(s)) if matches!(s.code, 409 | 403 | 404) => Ok(Action::await_change()),
        Err(e) => Err(e.into()),
    }
}
