//! Storage object in-use protection, as upstream's `pvcprotection` and `pvprotection`
//! controllers: the API server puts `kubernetes.io/pvc-protection` on every claim and
//! `kubernetes.io/pv-protection` on every volume; these controllers take the finalizer off a
//! claim being deleted once no live pod uses it, and off a volume being deleted once it is no
//! longer bound.

use std::sync::Arc;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::{Api, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;

use crate::scaffold::{run_controller, Context, Result};
use crate::util;

const PVC_FINALIZER: &str = "kubernetes.io/pvc-protection";
const PV_FINALIZER: &str = "kubernetes.io/pv-protection";

/// The claims a pod uses: `persistentVolumeClaim` volumes and generic ephemeral volumes
/// (whose claim is `<pod>-<volume>`).
fn claims_of(pod: &Pod) -> Vec<String> {
    let name = pod.name_any();
    pod.spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|v| {
            if let Some(c) = &v.persistent_volume_claim {
                Some(c.claim_name.clone())
            } else {
                v.ephemeral.as_ref().map(|_| format!("{name}-{}", v.name))
            }
        })
        .collect()
}

pub fn pvc_controller(ctx: &Arc<Context>) -> BoxFuture<'static, ()> {
    let claims = ctx.informers.get::<PersistentVolumeClaim>();
    let pods = ctx.informers.get::<Pod>();
    let c = Controller::for_shared_stream(claims.subscribe(), claims.store())
        .watches_shared_stream(pods.subscribe(), |pod: Arc<Pod>| {
            let ns = pod.namespace().unwrap_or_default();
            claims_of(&pod)
                .into_iter()
                .map(move |c| ObjectRef::new(&c).within(&ns))
                .collect::<Vec<_>>()
        });
    run_controller(
        "persistentvolumeclaim-protection-controller",
        c,
        ctx.clone(),
        sync_claim,
    )
}

pub fn pv_controller(ctx: &Arc<Context>) -> BoxFuture<'static, ()> {
    let volumes = ctx.informers.get::<PersistentVolume>();
    let c = Controller::for_shared_stream(volumes.subscribe(), volumes.store());
    run_controller(
        "persistentvolume-protection-controller",
        c,
        ctx.clone(),
        sync_volume,
    )
}

fn has_finalizer<K: Resource>(obj: &K, finalizer: &str) -> bool {
    obj.meta()
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|x| x == finalizer))
}

/// Takes `finalizer` off `obj` (a compare-and-swap on its resourceVersion).
async fn remove_finalizer<K>(api: Api<K>, obj: &K, finalizer: &str) -> Result<()>
where
    K: Resource + Clone + DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let mut obj = obj.clone();
    if let Some(f) = obj.meta_mut().finalizers.as_mut() {
        f.retain(|x| x != finalizer);
    }
    let name = obj.meta().name.clone().unwrap_or_default();
    util::absent_ok(api.replace(&name, &PostParams::default(), &obj).await)?;
    Ok(())
}

async fn sync_claim(pvc: Arc<PersistentVolumeClaim>, ctx: Arc<Context>) -> Result<Action> {
    if pvc.metadata.deletion_timestamp.is_none() || !has_finalizer(pvc.as_ref(), PVC_FINALIZER) {
        return Ok(Action::await_change());
    }
    let ns = pvc.namespace().unwrap_or_default();
    let name = pvc.name_any();
    let uses = |p: &Pod| !util::pod_is_terminal(p) && claims_of(p).contains(&name);
    let cached = ctx.informers.get::<Pod>().store().state();
    if cached
        .iter()
        .any(|p| p.namespace().as_deref() == Some(ns.as_str()) && uses(p))
    {
        return Ok(Action::await_change());
    }
    // The cache may not have seen a pod created a moment ago: ask the API server, as upstream.
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    if pods.list(&Default::default()).await?.items.iter().any(uses) {
        return Ok(Action::await_change());
    }
    let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &ns);
    remove_finalizer(api, pvc.as_ref(), PVC_FINALIZER).await?;
    Ok(Action::await_change())
}

async fn sync_volume(pv: Arc<PersistentVolume>, ctx: Arc<Context>) -> Result<Action> {
    if pv.metadata.deletion_timestamp.is_none() || !has_finalizer(pv.as_ref(), PV_FINALIZER) {
        return Ok(Action::await_change());
    }
    let bound = pv.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
    if bound {
        return Ok(Action::await_change());
    }
    let api: Api<PersistentVolume> = Api::all(ctx.client.clone());
    remove_finalizer(api, pv.as_ref(), PV_FINALIZER).await?;
    Ok(Action::await_change())
}
