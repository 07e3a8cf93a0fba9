//! The PersistentVolume binder, as upstream's `pkg/controller/volume/persistentvolume`
//! (`persistentvolume-binder-controller`). Two loops over the shared caches:
//! - claims: an unbound claim gets the best matching available volume (class, access modes,
//!   volume mode, size, selector; a volume pre-bound to it first, see [`claims::find_match`]),
//!   or, with none, waits for its first consumer (WaitForFirstConsumer classes, until the
//!   scheduler sets `volume.kubernetes.io/selected-node`) or asks the class's external
//!   provisioner (`volume.kubernetes.io/storage-provisioner`); a claim naming a volume
//!   (`spec.volumeName`, set by a user or the scheduler's pre-binding) is bound to it; a bound
//!   claim whose volume vanished is `Lost`;
//! - volumes: `Available` while unclaimed, `Bound` once their claim is, `Released` when the
//!   claim is gone, then kept (`Retain`) or left to their provisioner to delete (`Delete`).
//!
//! Binding writes, in upstream's order, the volume's `claimRef` (annotated
//! `pv.kubernetes.io/bound-by-controller`), its `Bound` phase, the claim's `volumeName` with
//! `pv.kubernetes.io/bind-completed`, and the claim's `Bound` status with the volume's
//! capacity and access modes. Each write is a compare-and-swap on the cached
//! `resourceVersion`, so two claims never get the same volume.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use meso_scheduler::claims::{self, ANN_BIND_COMPLETED, ANN_BOUND_BY_CONTROLLER};
use serde_json::json;

use crate::events::{NORMAL, WARNING};
use crate::scaffold::{run_controller, Context, Result};
use crate::util;

pub const NAME: &str = "persistentvolume-binder-controller";
/// The component upstream's binder records events as.
pub const COMPONENT: &str = "persistentvolume-controller";
/// How often pending claims and unsettled volumes are looked at again (upstream's
/// `--pvclaimbinder-sync-period`).
const RESYNC: Duration = Duration::from_secs(15);

pub fn controller(ctx: &Arc<Context>) -> BoxFuture<'static, ()> {
    let claims_inf = ctx.informers.get::<PersistentVolumeClaim>();
    let volumes = ctx.informers.get::<PersistentVolume>();
    ctx.informers.get::<StorageClass>();
    let pending = claims_inf.store();
    let claim_loop = Controller::for_shared_stream(claims_inf.subscribe(), claims_inf.store())
        .watches_shared_stream(volumes.subscribe(), move |pv: Arc<PersistentVolume>| {
            // The claim a volume points at; a free volume may serve any pending claim.
            match pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) {
                Some(r) => match (&r.name, &r.namespace) {
                    (Some(n), Some(ns)) => vec![ObjectRef::new(n).within(ns)],
                    _ => Vec::new(),
                },
                None => pending
                    .state()
                    .iter()
                    .filter(|c| claims::claim_volume(c).is_none())
                    .map(|c| ObjectRef::from_obj(c.as_ref()))
                    .collect(),
            }
        });
    let volume_loop = Controller::for_shared_stream(volumes.subscribe(), volumes.store())
        .watches_shared_stream(claims_inf.subscribe(), |pvc: Arc<PersistentVolumeClaim>| {
            claims::claim_volume(&pvc).map(ObjectRef::new)
        });
    let a = run_controller(NAME, claim_loop, ctx.clone(), sync_claim);
    let b = run_controller(NAME, volume_loop, ctx.clone(), sync_volume);
    futures::future::join(a, b).map(|_| ()).boxed()
}

/// How many recorded `uid/reason` keys are remembered at most.
const MAX_RECORDED: usize = 10_000;
/// Events already recorded, by `uid/reason`: a claim waiting for minutes gets each once.
static RECORDED: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(Mutex::default);

/// Records an event about `obj` the first time this reason applies to it.
pub(crate) fn event_once<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    component: &str,
    obj: &K,
    type_: &str,
    reason: &str,
    message: String,
) {
    let key = format!("{}/{reason}", obj.meta().uid.as_deref().unwrap_or(""));
    let mut recorded = RECORDED.lock().unwrap_or_else(|p| p.into_inner());
    // Bounded: forgetting everything at worst repeats an event once.
    if recorded.len() >= MAX_RECORDED {
        recorded.clear();
    }
    let fresh = recorded.insert(key);
    drop(recorded);
    if fresh {
        ctx.events.publish(component, obj, type_, reason, message);
    }
}

fn phase_of_claim(pvc: &PersistentVolumeClaim) -> &str {
    pvc.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn phase_of_volume(pv: &PersistentVolume) -> &str {
    pv.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn storage_class(ctx: &Context, name: &str) -> Option<Arc<StorageClass>> {
    if name.is_empty() {
        return None;
    }
    ctx.informers
        .get::<StorageClass>()
        .store()
        .get(&ObjectRef::new(name))
}

async fn sync_claim(pvc: Arc<PersistentVolumeClaim>, ctx: Arc<Context>) -> Result<Action> {
    if pvc.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    match claims::claim_volume(&pvc) {
        None => sync_unbound_claim(&ctx, &pvc).await,
        Some(volume) => sync_named_claim(&ctx, &pvc, volume).await,
    }
}

async fn sync_unbound_claim(ctx: &Context, pvc: &PersistentVolumeClaim) -> Result<Action> {
    let class_name = claims::claim_class(pvc);
    let class = storage_class(ctx, class_name);
    let delayed = claims::delays_binding(class.as_deref());
    let volumes = ctx.informers.get::<PersistentVolume>().store().state();
    if let Some(pv) = claims::find_match(volumes.iter().map(|v| v.as_ref()), pvc, delayed, None) {
        bind(ctx, pv, pvc).await?;
        return Ok(Action::await_change());
    }
    if delayed && claims::selected_node(pvc).is_none() {
        event_once(
            ctx,
            COMPONENT,
            pvc,
            NORMAL,
            "WaitForFirstConsumer",
            "waiting for first consumer to be created before binding".into(),
        );
    } else if class_name.is_empty() {
        event_once(
            ctx,
            COMPONENT,
            pvc,
            NORMAL,
            "FailedBinding",
            "no persistent volumes available for this claim and no storage class is set".into(),
        );
    } else {
        match class {
            None => event_once(
                ctx,
                COMPONENT,
                pvc,
                WARNING,
                "ProvisioningFailed",
                format!("storageclass.storage.k8s.io {class_name:?} not found"),
            ),
            Some(c) if c.provisioner == claims::NO_PROVISIONER => {}
            Some(c) => ask_provisioner(ctx, pvc, &c.provisioner).await?,
        }
    }
    Ok(Action::requeue(RESYNC))
}

/// Hands the claim to the external provisioner named by its class.
async fn ask_provisioner(
    ctx: &Context,
    pvc: &PersistentVolumeClaim,
    provisioner: &str,
) -> Result<()> {
    let annotations = pvc.annotations();
    let asked = annotations
        .get(claims::ANN_STORAGE_PROVISIONER)
        .is_some_and(|p| p == provisioner)
        && annotations
            .get(claims::ANN_BETA_STORAGE_PROVISIONER)
            .is_some_and(|p| p == provisioner);
    if !asked {
        let api: Api<PersistentVolumeClaim> =
            Api::namespaced(ctx.client.clone(), &pvc.namespace().unwrap_or_default());
        let patch = json!({"metadata": {"annotations": {
            claims::ANN_STORAGE_PROVISIONER: provisioner,
            claims::ANN_BETA_STORAGE_PROVISIONER: provisioner,
        }}});
        util::merge_patch(&api, &pvc.name_any(), false, &patch).await?;
    }
    event_once(
        ctx,
        COMPONENT,
        pvc,
        NORMAL,
        "ExternalProvisioning",
        format!("Waiting for a volume to be created either by the external provisioner '{provisioner}' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered."),
    );
    Ok(())
}

/// A claim that names its volume: finish binding it, or notice the volume is lost.
async fn sync_named_claim(
    ctx: &Context,
    pvc: &PersistentVolumeClaim,
    volume: &str,
) -> Result<Action> {
    let bind_completed = claims::has_yes(&pvc.metadata, ANN_BIND_COMPLETED);
    let pv = ctx
        .informers
        .get::<PersistentVolume>()
        .store()
        .get(&ObjectRef::new(volume));
    let Some(pv) = pv else {
        if bind_completed {
            mark_lost(ctx, pvc).await?;
            return Ok(Action::await_change());
        }
        // Pre-bound by a user to a volume that does not exist yet.
        return Ok(Action::requeue(RESYNC));
    };
    let claim_ref = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref());
    if claim_ref.is_none() || claims::is_claimed_by(&pv, pvc) {
        if claim_ref.is_none() && !claims::satisfies(&pv, pvc) {
            event_once(
                ctx,
                COMPONENT,
                pvc,
                WARNING,
                "VolumeMismatch",
                format!("Cannot bind to requested volume {volume:?}: the volume does not satisfy the claim"),
            );
            return Ok(Action::requeue(RESYNC));
        }
        bind(ctx, &pv, pvc).await?;
        return Ok(Action::await_change());
    }
    // The volume belongs to another claim.
    if bind_completed {
        mark_lost(ctx, pvc).await?;
        return Ok(Action::await_change());
    }
    Ok(Action::requeue(RESYNC))
}

async fn mark_lost(ctx: &Context, pvc: &PersistentVolumeClaim) -> Result<()> {
    if phase_of_claim(pvc) == "Lost" {
        return Ok(());
    }
    let api: Api<PersistentVolumeClaim> =
        Api::namespaced(ctx.client.clone(), &pvc.namespace().unwrap_or_default());
    let patch = json!({"status": {"phase": "Lost"}});
    util::merge_patch(&api, &pvc.name_any(), true, &patch).await?;
    event_once(
        ctx,
        COMPONENT,
        pvc,
        WARNING,
        "ClaimLost",
        "Bound claim has lost its PersistentVolume. Data on the volume is lost!".into(),
    );
    Ok(())
}

/// Binds `pv` and `pvc` to each other; each step is skipped when already done.
async fn bind(ctx: &Context, pv: &PersistentVolume, pvc: &PersistentVolumeClaim) -> Result<()> {
    let pv_name = pv.name_any();
    let ns = pvc.namespace().unwrap_or_default();
    let volumes: Api<PersistentVolume> = Api::all(ctx.client.clone());
    let claims_api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &ns);
    let pp = PostParams::default();
    // 1. The volume's claimRef (with the claim's uid).
    let mut pv = pv.clone();
    let spec = pv.spec.get_or_insert_with(Default::default);
    let uid_set = spec
        .claim_ref
        .as_ref()
        .and_then(|r| r.uid.as_deref())
        .is_some_and(|u| !u.is_empty());
    if !claims::is_claimed_by(&pv, pvc) || !uid_set {
        let by_controller = pv
            .spec
            .as_ref()
            .and_then(|s| s.claim_ref.as_ref())
            .is_none();
        if let Some(spec) = pv.spec.as_mut() {
            spec.claim_ref = Some(claims::claim_ref(pvc));
        }
        if by_controller {
            pv.annotations_mut()
                .insert(ANN_BOUND_BY_CONTROLLER.into(), "yes".into());
        }
        let Some(updated) = util::absent_ok(volumes.replace(&pv_name, &pp, &pv).await)? else {
            return Ok(());
        };
        tracing::info!(controller = NAME, volume = %pv_name, claim = %format!("{ns}/{}", pvc.name_any()), "volume bound to claim");
        pv = updated;
    }
    // 2. The volume's phase.
    if phase_of_volume(&pv) != "Bound" {
        let patch = json!({"status": {"phase": "Bound"}});
        util::merge_patch(&volumes, &pv_name, true, &patch).await?;
    }
    // 3. The claim's volumeName and annotations.
    let mut claim = pvc.clone();
    let named = claims::claim_volume(&claim).is_some();
    if !named || !claims::has_yes(&claim.metadata, ANN_BIND_COMPLETED) {
        if let Some(spec) = claim.spec.as_mut() {
            spec.volume_name = Some(pv_name.clone());
        }
        let annotations = claim.annotations_mut();
        annotations.insert(ANN_BIND_COMPLETED.into(), "yes".into());
        if !named {
            annotations.insert(ANN_BOUND_BY_CONTROLLER.into(), "yes".into());
        }
        let Some(updated) =
            util::absent_ok(claims_api.replace(&pvc.name_any(), &pp, &claim).await)?
        else {
            return Ok(());
        };
        claim = updated;
    }
    // 4. The claim's status: Bound, with what the volume offers.
    let vs = pv.spec.as_ref();
    let status = claim.status.as_ref();
    let modes = vs.and_then(|s| s.access_modes.clone());
    let capacity = vs.and_then(|s| s.capacity.clone());
    if phase_of_claim(&claim) != "Bound"
        || status.and_then(|s| s.access_modes.as_ref()) != modes.as_ref()
        || status.and_then(|s| s.capacity.as_ref()) != capacity.as_ref()
    {
        let patch =
            json!({"status": {"phase": "Bound", "accessModes": modes, "capacity": capacity}});
        util::merge_patch(&claims_api, &pvc.name_any(), true, &patch).await?;
    }
    Ok(())
}

async fn set_volume_phase(ctx: &Context, pv: &PersistentVolume, phase: &str) -> Result<()> {
    if phase_of_volume(pv) == phase {
        return Ok(());
    }
    let api: Api<PersistentVolume> = Api::all(ctx.client.clone());
    let patch = json!({"status": {"phase": phase}});
    util::merge_patch(&api, &pv.name_any(), true, &patch).await?;
    Ok(())
}

async fn sync_volume(pv: Arc<PersistentVolume>, ctx: Arc<Context>) -> Result<Action> {
    if pv.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let Some(r) = pv.spec.as_ref().and_then(|s| s.claim_ref.clone()) else {
        set_volume_phase(&ctx, &pv, "Available").await?;
        return Ok(Action::await_change());
    };
    let uid = r.uid.clone().unwrap_or_default();
    if uid.is_empty() {
        // Pre-bound by a user: the claim's sync binds it when the claim comes.
        set_volume_phase(&ctx, &pv, "Available").await?;
        return Ok(Action::requeue(RESYNC));
    }
    let (name, ns) = (
        r.name.clone().unwrap_or_default(),
        r.namespace.clone().unwrap_or_default(),
    );
    let cached = ctx
        .informers
        .get::<PersistentVolumeClaim>()
        .store()
        .get(&ObjectRef::new(&name).within(&ns));
    let claim = match cached {
        Some(c) if c.metadata.uid.as_deref() == Some(uid.as_str()) => Some(c),
        // The cache may lag behind: only the API server says a claim is gone.
        _ => {
            let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &ns);
            util::absent_ok(api.get(&name).await)?
                .filter(|c| c.metadata.uid.as_deref() == Some(uid.as_str()))
                .map(Arc::new)
        }
    };
    match claim {
        Some(claim) => {
            match claims::claim_volume(&claim) {
                Some(v) if v == pv.name_any() => {
                    set_volume_phase(&ctx, &pv, "Bound").await?;
                    Ok(Action::await_change())
                }
                // Pre-bound (by the scheduler): the claim's sync completes the binding.
                None => Ok(Action::requeue(RESYNC)),
                // The claim took another volume: give this one back if we bound it.
                Some(_) => {
                    if claims::has_yes(&pv.metadata, ANN_BOUND_BY_CONTROLLER) {
                        unbind(&ctx, &pv).await?;
                    }
                    Ok(Action::await_change())
                }
            }
        }
        None => release(&ctx, &pv).await,
    }
}

/// Clears a volume's `claimRef` the controller set, making it Available again.
async fn unbind(ctx: &Context, pv: &PersistentVolume) -> Result<()> {
    let mut pv = pv.clone();
    if let Some(spec) = pv.spec.as_mut() {
        spec.claim_ref = None;
    }
    pv.annotations_mut().remove(ANN_BOUND_BY_CONTROLLER);
    let api: Api<PersistentVolume> = Api::all(ctx.client.clone());
    if let Some(updated) = util::absent_ok(
        api.replace(&pv.name_any(), &PostParams::default(), &pv)
            .await,
    )? {
        set_volume_phase(ctx, &updated, "Available").await?;
    }
    Ok(())
}

/// The volume's claim is gone: Released, then its reclaim policy.
async fn release(ctx: &Context, pv: &PersistentVolume) -> Result<Action> {
    let phase = phase_of_volume(pv);
    if phase != "Released" && phase != "Failed" {
        set_volume_phase(ctx, pv, "Released").await?;
        tracing::info!(controller = NAME, volume = %pv.name_any(), "volume released");
    }
    let policy = pv
        .spec
        .as_ref()
        .and_then(|s| s.persistent_volume_reclaim_policy.as_deref())
        .unwrap_or("Retain");
    let provisioned_by = pv
        .annotations()
        .get(claims::ANN_PROVISIONED_BY)
        .filter(|p| !p.is_empty());
    match policy {
        // Kept for an administrator to deal with.
        "Retain" => Ok(Action::await_change()),
        // An external provisioner deletes what it made.
        "Delete" if provisioned_by.is_some() => Ok(Action::requeue(RESYNC)),
        other => {
            let (reason, message) = if other == "Delete" {
                (
                    "VolumeFailedDelete",
                    format!(
                        "error getting deleter volume plugin for volume {:?}: no deletable volume plugin matched",
                        pv.name_any()
                    ),
                )
            } else {
                (
                    "VolumeFailedRecycle",
                    format!(
                        "No recycler plugin found for the volume {:?}",
                        pv.name_any()
                    ),
                )
            };
            if phase != "Failed" {
                let api: Api<PersistentVolume> = Api::all(ctx.client.clone());
                let patch = json!({"status": {"phase": "Failed", "message": message}});
                util::merge_patch(&api, &pv.name_any(), true, &patch).await?;
            }
            event_once(ctx, COMPONENT, pv, WARNING, reason, message);
            Ok(Action::await_change())
        }
    }
}
