//! The resourcequota-controller: keeps every ResourceQuota's `status.hard` equal to its
//! `spec.hard` and recomputes `status.used` from the objects in its namespace, with the API
//! server's own evaluators ([`meso_api::quota`]). It runs when a quota changes, when a
//! counted object goes away or stops counting (a deleted or finished pod, a deleted service,
//! ...), and on a periodic full resync (`--resource-quota-sync-period`), so usage the
//! admission charged for objects that were never stored is given back.

use std::collections::BTreeSet;
use std::sync::Arc;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Pod, ResourceQuota, Secret, Service,
};
use kube::api::{Api, ApiResource, DynamicObject, ListParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::scaffold::{run_controller, Context, Error, Result};

/// Wakes every quota of the object's namespace when the object is gone (no longer in its
/// cache) or, for pods, has stopped counting.
fn object_to_quotas<K>(
    objects: Store<K>,
    quotas: Store<ResourceQuota>,
    still_counts: fn(&K) -> bool,
) -> impl Fn(Arc<K>) -> Vec<ObjectRef<ResourceQuota>>
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    move |obj: Arc<K>| {
        let gone = objects.get(&ObjectRef::from_obj(obj.as_ref())).is_none();
        if !gone && still_counts(&obj) {
            return vec![];
        }
        let ns = obj.meta().namespace.clone().unwrap_or_default();
        quotas
            .state_filter(|q| q.metadata.namespace.as_deref() == Some(ns.as_str()))
            .iter()
            .map(|q| ObjectRef::from_obj(q.as_ref()))
            .collect()
    }
}

fn pod_still_counts(pod: &Pod) -> bool {
    serde_json::to_value(pod)
        .map(|v| meso_api::quota::pod_counts(&v))
        .unwrap_or(true)
}

fn always<K>(_: &K) -> bool {
    true
}

/// Adds a trigger on deletions of `K` to the controller.
fn on_delete<K>(
    c: Controller<ResourceQuota>,
    ctx: &Arc<Context>,
    quotas: &Store<ResourceQuota>,
    still_counts: fn(&K) -> bool,
) -> Controller<ResourceQuota>
where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let informer = ctx.informers.get::<K>();
    c.watches_shared_stream(
        informer.subscribe(),
        object_to_quotas(informer.store(), quotas.clone(), still_counts),
    )
}

pub fn controller(ctx: &Arc<Context>) -> BoxFuture<'static, ()> {
    let quotas = ctx.informers.get::<ResourceQuota>();
    let store = quotas.store();
    let mut c = Controller::for_shared_stream(quotas.subscribe(), quotas.store());
    c = on_delete::<Pod>(c, ctx, &store, pod_still_counts);
    c = on_delete::<Service>(c, ctx, &store, always);
    c = on_delete::<ConfigMap>(c, ctx, &store, always);
    c = on_delete::<Secret>(c, ctx, &store, always);
    c = on_delete::<PersistentVolumeClaim>(c, ctx, &store, always);
    run_controller("resourcequota-controller", c, ctx.clone(), reconcile)
}

/// The API resource to list for `plural.group`: core is `v1`; other groups are resolved
/// through discovery (their preferred version).
async fn api_resource(client: &kube::Client, group: &str, plural: &str) -> Result<ApiResource> {
    if group.is_empty() {
        return Ok(ApiResource {
            group: String::new(),
            version: "v1".into(),
            api_version: "v1".into(),
            kind: String::new(),
            plural: plural.into(),
        });
    }
    let g = kube::discovery::group(client, group).await?;
    g.recommended_resources()
        .into_iter()
        .map(|(ar, _)| ar)
        .find(|ar| ar.plural == plural)
        .ok_or_else(|| Error::Invalid(format!("no resource {plural}.{group}")))
}

async fn reconcile(quota: Arc<ResourceQuota>, ctx: Arc<Context>) -> Result<Action> {
    let resync = Action::requeue(ctx.config.resource_quota_sync_period);
    if quota.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ns = quota.namespace().unwrap_or_default();
    let q = serde_json::to_value(quota.as_ref())?;
    let hard = q
        .get("spec")
        .and_then(|s| s.get("hard"))
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()));
    let counted: BTreeSet<(String, String)> = hard
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(name, _)| meso_api::quota::counted_resource(name))
        .collect();
    let mut used = Map::new();
    for (group, plural) in counted {
        let ar = match api_resource(&ctx.client, &group, &plural).await {
            Ok(ar) => ar,
            // A resource this server does not serve counts nothing.
            Err(Error::Invalid(_)) | Err(Error::Kube(kube::Error::Api(_))) => {
                meso_api::quota::compute_used(&q, &group, &plural, &[], &mut used);
                continue;
            }
            Err(e) => return Err(e),
        };
        let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &ns, &ar);
        let objects: Vec<Value> = match api.list(&ListParams::default()).await {
            Ok(list) => list
                .items
                .iter()
                .filter_map(|o| serde_json::to_value(o).ok())
                .collect(),
            Err(kube::Error::Api(s)) if matches!(s.code, 404 | 405) => vec![],
            Err(e) => return Err(e.into()),
        };
        meso_api::quota::compute_used(&q, &group, &plural, &objects, &mut used);
    }
    let status = q.get("status");
    let used = Value::Object(used);
    if status.and_then(|s| s.get("hard")) == Some(&hard)
        && status.and_then(|s| s.get("used")) == Some(&used)
    {
        return Ok(resync);
    }
    // Compare-and-swap on the quota's resourceVersion: a concurrent admission charge makes
    // this fail and the quota is recomputed.
    let mut next = q.clone();
    next["status"] = serde_json::json!({"hard": hard, "used": used});
    let next: ResourceQuota = serde_json::from_value(next)?;
    let api: Api<ResourceQuota> = Api::namespaced(ctx.client.clone(), &ns);
    match api
        .replace_status(&quota.name_any(), &PostParams::default(), &next)
        .await
    {
        Ok(_) => Ok(resync),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(Action::await_change()),
        Err(e) => Err(e.into()),
    }
}
