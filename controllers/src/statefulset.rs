//! The StatefulSet controller, as upstream's `pkg/controller/statefulset`: pods with stable
//! names `<set>-<ordinal>`, hostname and subdomain, PersistentVolumeClaims from
//! `volumeClaimTemplates` created before their pod, OrderedReady (one at a time, in order,
//! each waiting for the previous to be Running and Ready; scale down from the highest
//! ordinal) or Parallel pod management, RollingUpdate (highest ordinal first, `partition`,
//! `maxUnavailable`) or OnDelete, ControllerRevisions for `kubectl rollout history|undo`, and
//! the status `kubectl rollout status` reads.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::ResourceExt;
use serde_json::json;

use crate::events::{NORMAL, WARNING};
use crate::history::{self, REVISION_HASH_LABEL};
use crate::scaffold::{run_controller, Context, Error, Result};
use crate::util;

const COMPONENT: &str = "statefulset-controller";
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

pub fn controller(ctx: &Arc<Context>) -> BoxFuture<'static, ()> {
    let sets = ctx.informers.get::<StatefulSet>();
    let pods = ctx.informers.get::<Pod>();
    let revisions = ctx.informers.get::<ControllerRevision>();
    // Claims are looked up in their cache before one is created.
    ctx.informers.get::<PersistentVolumeClaim>();
    let c = Controller::for_shared_stream(sets.subscribe(), sets.store())
        .watches_shared_stream(
            pods.subscribe(),
            util::owner_or_adopters(sets.store(), |s: &StatefulSet| {
                s.spec.as_ref().map(|s| &s.selector)
            }),
        )
        .owns_shared_stream(revisions.subscribe());
    run_controller(COMPONENT, c, ctx.clone(), reconcile)
}

/// The ordinal in a pod's name `<set>-<n>`, if it has one.
fn ordinal(set: &str, pod: &Pod) -> Option<i32> {
    let n = pod
        .metadata
        .name
        .as_deref()?
        .strip_prefix(set)?
        .strip_prefix('-')?;
    let o: i32 = n.parse().ok()?;
    (o >= 0 && o.to_string() == n).then_some(o)
}

fn running_and_ready(p: &Pod) -> bool {
    p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running") && util::pod_is_ready(p)
}

/// Running, Ready for `minReadySeconds`, and not being deleted.
fn healthy(p: &Pod, min_ready: i32) -> bool {
    p.metadata.deletion_timestamp.is_none()
        && running_and_ready(p)
        && util::pod_is_available(p, min_ready)
}

fn revision_of(p: &Pod) -> Option<&str> {
    p.labels().get(REVISION_HASH_LABEL).map(String::as_str)
}

/// `IntOrString` against `total`, rounded down (at least 1), as upstream's `maxUnavailable`.
fn max_unavailable(v: Option<&IntOrString>, total: i32) -> i32 {
    let n = match v {
        None => 1,
        Some(IntOrString::Int(i)) => *i,
        Some(IntOrString::String(s)) => s
            .strip_suffix('%')
            .and_then(|p| p.parse::<i64>().ok())
            .map_or(1, |p| (p * i64::from(total) / 100) as i32),
    };
    n.max(1)
}

fn claim_name(template: &str, set: &str, ordinal: i32) -> String {
    format!("{template}-{set}-{ordinal}")
}

fn retention(set: &StatefulSet) -> (bool, bool) {
    let policy = set
        .spec
        .as_ref()
        .and_then(|s| s.persistent_volume_claim_retention_policy.as_ref());
    let delete = |p: Option<&String>| p.map(String::as_str) == Some("Delete");
    (
        delete(policy.and_then(|p| p.when_deleted.as_ref())),
        delete(policy.and_then(|p| p.when_scaled.as_ref())),
    )
}

/// A plain (non-controller) owner reference, as upstream puts on claims.
fn plain_owner_ref(r: OwnerReference) -> OwnerReference {
    OwnerReference {
        controller: None,
        block_owner_deletion: None,
        ..r
    }
}

/// The pod of `ordinal` made from `template` (the revision `revision`).
fn new_pod(
    set: &StatefulSet,
    template: &PodTemplateSpec,
    ordinal: i32,
    revision: &str,
) -> Result<Pod> {
    let ns = set.namespace().unwrap_or_default();
    let set_name = set.name_any();
    let spec = set.spec.clone().unwrap_or_default();
    let pod_name = format!("{set_name}-{ordinal}");
    let mut pod = util::pod_from_template(template, &ns, "", util::controller_owner_ref(set))?;
    pod.metadata.generate_name = None;
    pod.metadata.name = Some(pod_name.clone());
    let labels = pod.metadata.labels.get_or_insert_with(Default::default);
    labels.insert(POD_NAME_LABEL.into(), pod_name.clone());
    labels.insert(POD_INDEX_LABEL.into(), ordinal.to_string());
    labels.insert(REVISION_HASH_LABEL.into(), revision.into());
    let pod_spec = pod.spec.get_or_insert_with(Default::default);
    pod_spec.hostname = Some(pod_name);
    if !spec.service_name.as_deref().unwrap_or("").is_empty() {
        pod_spec.subdomain = spec.service_name.clone();
    }
    let volumes = pod_spec.volumes.get_or_insert_with(Vec::new);
    for tpl in spec.volume_claim_templates.iter().flatten() {
        let tpl_name = tpl.name_any();
        volumes.retain(|v| v.name != tpl_name);
        volumes.push(serde_json::from_value(json!({
            "name": tpl_name,
            "persistentVolumeClaim": {"claimName": claim_name(&tpl_name, &set_name, ordinal)},
        }))?);
    }
    Ok(pod)
}

/// Creates the claims of `ordinal` that do not exist yet.
async fn create_claims(ctx: &Context, set: &StatefulSet, ordinal: i32) -> Result<()> {
    let ns = set.namespace().unwrap_or_default();
    let set_name = set.name_any();
    let spec = set.spec.clone().unwrap_or_default();
    let (delete_with_set, _) = retention(set);
    let cache = ctx.informers.get::<PersistentVolumeClaim>().store();
    let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &ns);
    for tpl in spec.volume_claim_templates.iter().flatten() {
        let name = claim_name(&tpl.name_any(), &set_name, ordinal);
        let cached = cache
            .state_filter(|c| c.metadata.namespace.as_deref() == Some(ns.as_str()))
            .into_iter()
            .find(|c| c.metadata.name.as_deref() == Some(name.as_str()));
        if let Some(c) = cached {
            if c.metadata.deletion_timestamp.is_some() {
                return Err(Error::Invalid(format!(
                    "PersistentVolumeClaim {ns}/{name} is being deleted"
                )));
            }
            continue;
        }
        let mut claim = tpl.clone();
        claim.metadata.name = Some(name.clone());
        claim.metadata.namespace = Some(ns.clone());
        claim.metadata.resource_version = None;
        claim.metadata.uid = None;
        let labels = claim.metadata.labels.get_or_insert_with(Default::default);
        labels.extend(spec.selector.match_labels.clone().unwrap_or_default());
        claim.metadata.owner_references =
            delete_with_set.then(|| vec![plain_owner_ref(util::controller_owner_ref(set))]);
        claim.status = None;
        match api.create(&PostParams::default(), &claim).await {
            Ok(_) => ctx.events.publish(
                COMPONENT,
                set,
                NORMAL,
                "SuccessfulCreate",
                format!("create Claim {name} Pod {set_name}-{ordinal} in StatefulSet {set_name} success"),
            ),
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => {
                ctx.events.publish(
                    COMPONENT,
                    set,
                    WARNING,
                    "FailedCreate",
                    format!("create Claim {name} for Pod {set_name}-{ordinal} in StatefulSet {set_name} failed error: {e}"),
                );
                return Err(Error::Kube(e));
            }
        }
    }
    Ok(())
}

/// Puts on the claims of `pod` the owner references the retention policy asks for, as
/// upstream's `updateClaimOwnerRefForSetAndPod`: the set owns them when `whenDeleted: Delete`,
/// except for a condemned pod (being scaled away) with `whenScaled: Delete`, whose claims only
/// the pod owns, so that the garbage collector removes them with it.
async fn sync_claim_refs(
    ctx: &Context,
    set: &StatefulSet,
    pod: &Pod,
    ordinal: i32,
    condemned: bool,
) -> Result<()> {
    let ns = set.namespace().unwrap_or_default();
    let set_name = set.name_any();
    let (when_deleted, when_scaled) = retention(set);
    let want_pod = when_scaled && condemned;
    let want_set = when_deleted && !want_pod;
    let set_ref = plain_owner_ref(util::controller_owner_ref(set));
    let pod_ref = plain_owner_ref(util::controller_owner_ref(pod));
    let cache = ctx
        .informers
        .get::<PersistentVolumeClaim>()
        .store()
        .state_filter(|c| c.metadata.namespace.as_deref() == Some(ns.as_str()));
    let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &ns);
    for tpl in set
        .spec
        .iter()
        .flat_map(|s| s.volume_claim_templates.iter().flatten())
    {
        let name = claim_name(&tpl.name_any(), &set_name, ordinal);
        let Some(claim) = cache
            .iter()
            .find(|c| c.metadata.name.as_deref() == Some(name.as_str()))
        else {
            continue;
        };
        let refs = claim.metadata.owner_references.clone().unwrap_or_default();
        let has = |uid: &str| refs.iter().any(|r| r.uid == uid);
        if has(&set_ref.uid) == want_set && has(&pod_ref.uid) == want_pod {
            continue;
        }
        let mut new: Vec<OwnerReference> = refs
            .iter()
            .filter(|r| r.uid != set_ref.uid && r.uid != pod_ref.uid)
            .cloned()
            .collect();
        if want_set {
            new.push(set_ref.clone());
        }
        if want_pod {
            new.push(pod_ref.clone());
        }
        util::patch_owner_refs(&api, &name, claim.metadata.uid.as_deref(), new).await?;
    }
    Ok(())
}

async fn delete_pod(ctx: &Context, set: &StatefulSet, key: &str, pod: &Pod) -> Result<()> {
    let ns = set.namespace().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    ctx.expectations.add(key, [], pod.uid());
    match api.delete(&pod.name_any(), &DeleteParams::default()).await {
        Ok(_) => {
            ctx.events.publish(
                COMPONENT,
                set,
                NORMAL,
                "SuccessfulDelete",
                format!(
                    "delete Pod {} in StatefulSet {} successful",
                    pod.name_any(),
                    set.name_any()
                ),
            );
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => {
            ctx.expectations.forget(key);
            ctx.events.publish(
                COMPONENT,
                set,
                WARNING,
                "FailedDelete",
                format!(
                    "delete Pod {} in StatefulSet {} failed error: {e}",
                    pod.name_any(),
                    set.name_any()
                ),
            );
            Err(Error::Kube(e))
        }
    }
}

async fn create_pod(
    ctx: &Context,
    set: &StatefulSet,
    key: &str,
    pod: &Pod,
    ordinal: i32,
) -> Result<()> {
    create_claims(ctx, set, ordinal).await?;
    let ns = set.namespace().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let name = pod.name_any();
    ctx.expectations.add(key, [name.clone()], []);
    match api.create(&PostParams::default(), pod).await {
        Ok(_) => {
            ctx.events.publish(
                COMPONENT,
                set,
                NORMAL,
                "SuccessfulCreate",
                format!(
                    "create Pod {name} in StatefulSet {} successful",
                    set.name_any()
                ),
            );
            Ok(())
        }
        Err(e) => {
            ctx.expectations.forget(key);
            ctx.events.publish(
                COMPONENT,
                set,
                WARNING,
                "FailedCreate",
                format!(
                    "create Pod {name} in StatefulSet {} failed error: {e}",
                    set.name_any()
                ),
            );
            Err(Error::Kube(e))
        }
    }
}

async fn reconcile(set: Arc<StatefulSet>, ctx: Arc<Context>) -> Result<Action> {
    if set.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ns = set.namespace().unwrap_or_default();
    let name = set.name_any();
    let key = format!("{COMPONENT}/{ns}/{name}");
    let spec = set.spec.clone().unwrap_or_default();
    let status = set.status.clone().unwrap_or_default();
    let replicas = spec.replicas.unwrap_or(1).max(0);
    let start = spec
        .ordinals
        .as_ref()
        .and_then(|o| o.start)
        .unwrap_or(0)
        .max(0);
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let monotonic = spec.pod_management_policy.as_deref() != Some("Parallel");
    let strategy = spec.update_strategy.clone().unwrap_or_default();
    let rolling = strategy.type_.as_deref() != Some("OnDelete");
    let partition = strategy
        .rolling_update
        .as_ref()
        .and_then(|r| r.partition)
        .unwrap_or(0)
        .max(0);
    let max_unavailable = max_unavailable(
        strategy
            .rolling_update
            .as_ref()
            .and_then(|r| r.max_unavailable.as_ref()),
        replicas,
    );

    let (in_ns, synced) = util::namespace_pods(&ctx, &key, &ns);
    let owner = util::controller_owner_ref(set.as_ref());
    let client = ctx.client.clone();
    let pods = util::claim(
        |ns| Api::namespaced(client.clone(), ns),
        &owner,
        false,
        &spec.selector,
        in_ns,
    )
    .await?;

    let history = history::sync(
        &ctx,
        set.as_ref(),
        &spec.selector,
        &spec.template,
        status.collision_count.unwrap_or(0),
    )
    .await?;
    let update_rev = history.update.name_any();
    let current = status
        .current_revision
        .as_deref()
        .and_then(|n| history.named(n))
        .unwrap_or(&history.update);
    let current_rev = current.name_any();
    let current_template = history::template_of(current).unwrap_or_else(|| spec.template.clone());

    let mut in_range: BTreeMap<i32, Arc<Pod>> = BTreeMap::new();
    let mut condemned: Vec<(i32, Arc<Pod>)> = Vec::new();
    for p in &pods {
        match ordinal(&name, p) {
            Some(o) if o >= start && o < start + replicas => {
                in_range.insert(o, p.clone());
            }
            Some(o) => condemned.push((o, p.clone())),
            None => {}
        }
    }
    condemned.sort_by_key(|c| std::cmp::Reverse(c.0));

    if synced {
        let mut blocked = false;
        for o in start..start + replicas {
            match in_range.get(&o) {
                None => {
                    let (template, revision) =
                        if rolling && o < start + partition && current_rev != update_rev {
                            (&current_template, &current_rev)
                        } else {
                            (&spec.template, &update_rev)
                        };
                    let pod = new_pod(&set, template, o, revision)?;
                    create_pod(&ctx, &set, &key, &pod, o).await?;
                    blocked = monotonic;
                }
                Some(p) if util::pod_is_terminal(p) && p.metadata.deletion_timestamp.is_none() => {
                    // A failed (or exited) replica is replaced under the same name.
                    delete_pod(&ctx, &set, &key, p).await?;
                    blocked = monotonic;
                }
                Some(p) if monotonic && !healthy(p, min_ready) => blocked = true,
                // A claim deleted under a live pod is made again, as upstream.
                Some(p) if p.metadata.deletion_timestamp.is_none() => {
                    create_claims(&ctx, &set, o).await?;
                    sync_claim_refs(&ctx, &set, p, o, false).await?;
                }
                Some(_) => {}
            }
            if blocked {
                break;
            }
        }
        // Scale down from the highest ordinal; OrderedReady waits for every other pod to be
        // healthy and removes one at a time.
        if !blocked {
            for (o, p) in &condemned {
                if p.metadata.deletion_timestamp.is_some() {
                    if monotonic {
                        blocked = true;
                        break;
                    }
                    continue;
                }
                if monotonic
                    && pods.iter().any(|q| {
                        q.uid() != p.uid() && ordinal(&name, q).is_some() && !healthy(q, min_ready)
                    })
                {
                    blocked = true;
                    break;
                }
                sync_claim_refs(&ctx, &set, p, *o, true).await?;
                delete_pod(&ctx, &set, &key, p).await?;
                if monotonic {
                    blocked = true;
                    break;
                }
            }
        }
        // Rolling update: replace outdated pods from the highest ordinal down to the
        // partition, at most `maxUnavailable` unavailable at once.
        if !blocked && rolling {
            let targets: Vec<(i32, &Arc<Pod>)> = in_range
                .iter()
                .rev()
                .filter(|(o, _)| **o >= start + partition)
                .map(|(o, p)| (*o, p))
                .collect();
            let mut unavailable = (start + replicas - (start + partition).min(start + replicas))
                as usize
                - targets.len()
                + targets
                    .iter()
                    .filter(|(_, p)| !healthy(p, min_ready))
                    .count();
            for (_, p) in targets {
                if revision_of(p) == Some(update_rev.as_str())
                    || p.metadata.deletion_timestamp.is_some()
                {
                    continue;
                }
                let was_healthy = healthy(p, min_ready);
                if was_healthy && unavailable >= max_unavailable as usize {
                    break;
                }
                delete_pod(&ctx, &set, &key, p).await?;
                if was_healthy {
                    unavailable += 1;
                }
            }
        }
    }

    // Status from the pods as observed.
    let mut st = json!({
        "replicas": 0, "readyReplicas": 0, "availableReplicas": 0,
        "currentReplicas": 0, "updatedReplicas": 0,
    });
    let (mut total, mut ready, mut available, mut cur, mut upd) = (0, 0, 0, 0, 0);
    for p in &pods {
        total += 1;
        if running_and_ready(p) {
            ready += 1;
        }
        if healthy(p, min_ready) {
            available += 1;
        }
        if p.metadata.deletion_timestamp.is_none() {
            if revision_of(p) == Some(current_rev.as_str()) {
                cur += 1;
            }
            if revision_of(p) == Some(update_rev.as_str()) {
                upd += 1;
            }
        }
    }
    let mut current_revision = current_rev.clone();
    // A finished rolling update makes the update revision current.
    if rolling && upd == replicas && ready == replicas && total == replicas {
        current_revision = update_rev.clone();
        cur = upd;
    }
    st["replicas"] = json!(total);
    st["readyReplicas"] = json!(ready);
    st["availableReplicas"] = json!(available);
    st["currentReplicas"] = json!(cur);
    st["updatedReplicas"] = json!(upd);
    st["currentRevision"] = json!(current_revision);
    st["updateRevision"] = json!(update_rev);
    st["observedGeneration"] = json!(set.metadata.generation);
    st["collisionCount"] = json!(history.collision_count);
    let old = serde_json::to_value(&status)?;
    let changed = st.as_object().is_some_and(|o| {
        o.iter()
            .any(|(k, v)| old.get(k).cloned().unwrap_or(json!(0)) != *v)
    });
    let api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &ns);
    if changed {
        util::absent_ok(
            api.patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"status": st})),
            )
            .await,
        )?;
    }

    let limit = spec.revision_history_limit.unwrap_or(10);
    let live: Vec<String> = pods
        .iter()
        .filter_map(|p| revision_of(p).map(String::from))
        .chain([current_revision, update_rev])
        .collect();
    history::truncate(&ctx, &ns, &history, limit, |r| live.contains(&r.name_any())).await?;

    if !synced {
        return Ok(Action::requeue(Duration::from_secs(5)));
    }
    if min_ready > 0 && ready != available {
        return Ok(Action::requeue(Duration::from_secs(min_ready as u64)));
    }
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinals_and_budgets() {
        let mut p = Pod::default();
        p.metadata.name = Some("web-12".into());
        assert_eq!(ordinal("web", &p), Some(12));
        p.metadata.name = Some("web-012".into());
        assert_eq!(ordinal("web", &p), None);
        p.metadata.name = Some("webx-1".into());
        assert_eq!(ordinal("web", &p), None);
        assert_eq!(max_unavailable(None, 5), 1);
        assert_eq!(
            max_unavailable(Some(&IntOrString::String("50%".into())), 5),
            2
        );
        assert_eq!(
            max_unavailable(Some(&IntOrString::String("10%".into())), 5),
            1
        );
        assert_eq!(claim_name("data", "web", 2), "data-web-2");
    }
}
