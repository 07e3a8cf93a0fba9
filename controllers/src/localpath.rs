//! The local-path provisioner: node-local persistent volumes that just work on one machine,
//! as k3s's `local-path` StorageClass does. It answers to `rancher.io/local-path`, the name
//! k3s uses, so charts and manifests written for k3s that name the class or the provisioner
//! work unchanged.
//!
//! - At start the default StorageClass `local-path` (`WaitForFirstConsumer`, reclaim `Delete`)
//!   is created if missing; the API server's DefaultStorageClass admission gives it to claims
//!   without a class.
//! - A claim handed to this provisioner (`volume.kubernetes.io/storage-provisioner`, set by
//!   the PV controller once the scheduler chose a node in `volume.kubernetes.io/selected-node`)
//!   gets a `hostPath` volume `pvc-<uid>` at `<dir>/pvc-<uid>_<namespace>_<name>` (type
//!   `DirectoryOrCreate`: the node's kubelet creates the directory when a pod mounts it), with
//!   a node affinity to the node's `kubernetes.io/hostname`. `<dir>` is what the node's kubelet
//!   announces in its `storage.meso.io/local-path-dir` annotation (default
//!   `/var/lib/meso/agent/storage`).
//! - A volume it made that is `Released` with reclaim policy `Delete` is deleted; the node's
//!   kubelet then removes the directory of a volume that no longer exists.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::ResourceExt;
use meso_scheduler::claims;
use serde_json::json;

use crate::events::{NORMAL, WARNING};
use crate::persistentvolume::event_once;
use crate::scaffold::{run_controller, Context, Result};
use crate::util;

pub const NAME: &str = "local-path-provisioner";
/// The provisioner name (k3s's).
pub const PROVISIONER: &str = "rancher.io/local-path";
/// The default StorageClass.
pub const CLASS: &str = "local-path";
/// The node annotation naming where its local-path volumes live.
pub const ANN_NODE_DIR: &str = "storage.meso.io/local-path-dir";
/// Where volumes go on a node that does not say.
pub const DEFAULT_DIR: &str = "/var/lib/meso/agent/storage";
/// The component its events are recorded as (`<provisioner>_<instance>` as upstream's
/// external provisioners).
const COMPONENT: &str = "rancher.io/local-path_meso";

pub fn controller(ctx: &Arc<Context>) -> BoxFuture<'static, ()> {
    let claims_inf = ctx.informers.get::<PersistentVolumeClaim>();
    let volumes = ctx.informers.get::<PersistentVolume>();
    ctx.informers.get::<StorageClass>();
    ctx.informers.get::<Node>();
    let claim_loop = Controller::for_shared_stream(claims_inf.subscribe(), claims_inf.store());
    let volume_loop = Controller::for_shared_stream(volumes.subscribe(), volumes.store());
    let a = run_controller(NAME, claim_loop, ctx.clone(), provision);
    let b = run_controller(NAME, volume_loop, ctx.clone(), reclaim);
    let c = ensure_default_class(ctx.clone());
    futures::future::join3(a, b, c).map(|_| ()).boxed()
}

/// Creates the default StorageClass unless it exists, retrying until the API server answers.
async fn ensure_default_class(ctx: Arc<Context>) {
    let api: Api<StorageClass> = Api::all(ctx.client.clone());
    let class: StorageClass = match serde_json::from_value(json!({
        "metadata": {"name": CLASS, "annotations": {
            "storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
    })) {
        Ok(c) => c,
        Err(e) => return tracing::error!(error = %e, "building the default StorageClass"),
    };
    let mut delay = Duration::from_millis(200);
    loop {
        match api.create(&PostParams::default(), &class).await {
            Ok(_) => {
                tracing::info!(class = CLASS, "created the default StorageClass");
                return;
            }
            Err(kube::Error::Api(s)) if s.code == 409 => return,
            Err(e) => tracing::warn!(error = %e, "creating the default StorageClass; retrying"),
        }
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}

/// The volume's name for a claim (as upstream's external provisioners name them).
pub fn volume_name(pvc: &PersistentVolumeClaim) -> String {
    format!("pvc-{}", pvc.metadata.uid.as_deref().unwrap_or(""))
}

/// The directory of a claim's volume under a node's storage directory.
pub fn volume_dir(dir: &str, pvc: &PersistentVolumeClaim) -> String {
    format!(
        "{}/{}_{}_{}",
        dir.trim_end_matches('/'),
        volume_name(pvc),
        pvc.namespace().unwrap_or_default(),
        pvc.name_any()
    )
}

fn asked_of_us(pvc: &PersistentVolumeClaim) -> bool {
    let a = pvc.annotations();
    [
        claims::ANN_STORAGE_PROVISIONER,
        claims::ANN_BETA_STORAGE_PROVISIONER,
    ]
    .iter()
    .any(|k| a.get(*k).is_some_and(|p| p == PROVISIONER))
}

async fn provision(pvc: Arc<PersistentVolumeClaim>, ctx: Arc<Context>) -> Result<Action> {
    if pvc.metadata.deletion_timestamp.is_some()
        || claims::claim_volume(&pvc).is_some()
        || !asked_of_us(&pvc)
    {
        return Ok(Action::await_change());
    }
    let class_name = claims::claim_class(&pvc);
    let Some(class) = ctx
        .informers
        .get::<StorageClass>()
        .store()
        .get(&ObjectRef::new(class_name))
    else {
        return Ok(Action::await_change());
    };
    if class.provisioner != PROVISIONER {
        return Ok(Action::await_change());
    }
    let pv_name = volume_name(&pvc);
    let volumes = ctx.informers.get::<PersistentVolume>().store();
    if volumes.get(&ObjectRef::new(&pv_name)).is_some() {
        return Ok(Action::await_change());
    }
    let failed = |message: String| {
        event_once(
            &ctx,
            COMPONENT,
            pvc.as_ref(),
            WARNING,
            "ProvisioningFailed",
            message,
        )
    };
    let Some(node_name) = claims::selected_node(&pvc) else {
        failed("configuration error, no node was specified".into());
        return Ok(Action::await_change());
    };
    let mode = pvc.spec.as_ref().and_then(|s| s.volume_mode.as_deref());
    if mode.is_some_and(|m| m != "Filesystem") {
        failed("Only support Filesystem volume mode".into());
        return Ok(Action::await_change());
    }
    let Some(node) = ctx
        .informers
        .get::<Node>()
        .store()
        .get(&ObjectRef::new(node_name))
    else {
        // Give the node back so that the scheduler picks another (as upstream's external
        // provisioners do on a final error).
        failed(format!("node {node_name:?} not found"));
        let api: Api<PersistentVolumeClaim> =
            Api::namespaced(ctx.client.clone(), &pvc.namespace().unwrap_or_default());
        let patch = json!({"metadata": {"annotations": {claims::ANN_SELECTED_NODE: null}}});
        util::merge_patch(&api, &pvc.name_any(), false, &patch).await?;
        return Ok(Action::await_change());
    };
    let hostname = node
        .labels()
        .get("kubernetes.io/hostname")
        .cloned()
        .unwrap_or_else(|| node.name_any());
    let dir = node
        .annotations()
        .get(ANN_NODE_DIR)
        .filter(|d| d.starts_with('/'))
        .map_or(DEFAULT_DIR, String::as_str);
    let spec = pvc.spec.clone().unwrap_or_default();
    let request = spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .map_or("0", |q| q.0.as_str());
    let modes = spec
        .access_modes
        .clone()
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| vec!["ReadWriteOnce".into()]);
    let pv: PersistentVolume = serde_json::from_value(json!({
        "metadata": {"name": pv_name, "annotations": {
            claims::ANN_PROVISIONED_BY: PROVISIONER,
            "local.path.provisioner/selected-node": node_name,
        }},
        "spec": {
            "capacity": {"storage": request},
            "accessModes": modes,
            "persistentVolumeReclaimPolicy": class.reclaim_policy.as_deref().unwrap_or("Delete"),
            "storageClassName": class_name,
            "volumeMode": "Filesystem",
            "claimRef": claims::claim_ref(&pvc),
            "hostPath": {"path": volume_dir(dir, &pvc), "type": "DirectoryOrCreate"},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [hostname]}]}]}},
        },
    }))?;
    event_once(
        &ctx,
        COMPONENT,
        pvc.as_ref(),
        NORMAL,
        "Provisioning",
        format!(
            "External provisioner is provisioning volume for claim \"{}/{}\"",
            pvc.namespace().unwrap_or_default(),
            pvc.name_any()
        ),
    );
    let api: Api<PersistentVolume> = Api::all(ctx.client.clone());
    match api.create(&PostParams::default(), &pv).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => return Ok(Action::await_change()),
        Err(e) => {
            failed(format!("failed to provision volume: {e}"));
            return Err(e.into());
        }
    }
    tracing::info!(controller = NAME, volume = %pv_name, node = %node_name, "provisioned");
    event_once(
        &ctx,
        COMPONENT,
        pvc.as_ref(),
        NORMAL,
        "ProvisioningSucceeded",
        format!("Successfully provisioned volume {pv_name}"),
    );
    Ok(Action::await_change())
}

/// Deletes a released volume this provisioner made when its policy says `Delete`.
async fn reclaim(pv: Arc<PersistentVolume>, ctx: Arc<Context>) -> Result<Action> {
    let ours = pv
        .annotations()
        .get(claims::ANN_PROVISIONED_BY)
        .is_some_and(|p| p == PROVISIONER);
    let released = pv.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Released");
    let delete = pv
        .spec
        .as_ref()
        .and_then(|s| s.persistent_volume_reclaim_policy.as_deref())
        == Some("Delete");
    if !ours || !released || !delete || pv.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let api: Api<PersistentVolume> = Api::all(ctx.client.clone());
    let dp = DeleteParams {
        preconditions: pv.uid().map(|uid| kube::api::Preconditions {
            uid: Some(uid),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api.delete(&pv.name_any(), &dp).await {
        Ok(_) => {
            tracing::info!(controller = NAME, volume = %pv.name_any(), "deleted a released volume");
            Ok(Action::await_change())
        }
        Err(kube::Error::Api(s)) if matches!(s.code, 404 | 409) => Ok(Action::await_change()),
        Err(e) => Err(e.into()),
    }
}
