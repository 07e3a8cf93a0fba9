//! The Deployment controller: one ReplicaSet per pod template (named by `pod-template-hash`),
//! rolled out by the RollingUpdate or Recreate strategy, with revisions, history cleanup,
//! pause/resume, proportional scaling and the Progressing/Available conditions, as upstream's
//! `pkg/controller/deployment`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, ReplicaSet};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::ResourceExt;
use serde_json::json;

use crate::events::{NORMAL, WARNING};
use crate::scaffold::{run_controller, Context, Error, Result};
use crate::util;

const COMPONENT: &str = "deployment-controller";
pub const REVISION: &str = "deployment.kubernetes.io/revision";
const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
pub const HASH_LABEL: &str = "pod-template-hash";

pub fn controller(ctx: &Arc<Context>) -> BoxFuture<'static, ()> {
    let deployments = ctx.informers.get::<Deployment>();
    let sets = ctx.informers.get::<ReplicaSet>();
    let pods = ctx.informers.get::<Pod>();
    let set_store = sets.store();
    let deploy_store = deployments.store();
    // Recreate waits for old pods to be gone: a pod change wakes its Deployment.
    let pod_to_deployment = move |pod: Arc<Pod>| {
        let ns = pod.namespace().unwrap_or_default();
        util::controller_of(pod.as_ref())
            .filter(|r| r.kind == "ReplicaSet")
            .and_then(|r| set_store.get(&ObjectRef::new(&r.name).within(&ns)))
            .and_then(|rs| util::controller_of(rs.as_ref()).cloned())
            .filter(|r| r.kind == "Deployment")
            .map(|r| ObjectRef::<Deployment>::new(&r.name).within(&ns))
            .filter(|d| {
                deploy_store.get(d).is_some_and(|d| {
                    d.spec
                        .as_ref()
                        .and_then(|s| s.strategy.as_ref())
                        .and_then(|s| s.type_.as_deref())
                        == Some("Recreate")
                })
            })
    };
    let c = Controller::for_shared_stream(deployments.subscribe(), deployments.store())
        .watches_shared_stream(
            sets.subscribe(),
            util::owner_or_adopters(deployments.store(), |d: &Deployment| {
                d.spec.as_ref().map(|s| &s.selector)
            }),
        )
        .watches_shared_stream(pods.subscribe(), pod_to_deployment);
    run_controller(COMPONENT, c, ctx.clone(), reconcile)
}

/// `pod-template-hash`: FNV-32a of the template (and the collision count), written as
/// upstream's `ComputeHash` writes it.
pub fn template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut bytes = serde_json::to_vec(template).unwrap_or_default();
    if let Some(c) = collision_count {
        bytes.extend_from_slice(&(c as u32).to_le_bytes());
    }
    util::safe_encode(&util::fnv32a(&bytes).to_string())
}

/// The template without its `pod-template-hash` label, for comparisons.
fn without_hash(t: &PodTemplateSpec) -> serde_json::Value {
    let mut t = t.clone();
    if let Some(labels) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(HASH_LABEL);
        if labels.is_empty() {
            if let Some(m) = t.metadata.as_mut() {
                m.labels = None;
            }
        }
    }
    serde_json::to_value(t).unwrap_or_default()
}

fn replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

fn revision(rs: &ReplicaSet) -> i64 {
    rs.annotations()
        .get(REVISION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn st(
    rs: &ReplicaSet,
    f: impl Fn(&k8s_openapi::api::apps::v1::ReplicaSetStatus) -> Option<i32>,
) -> i32 {
    rs.status.as_ref().and_then(f).unwrap_or(0)
}

fn available(rs: &ReplicaSet) -> i32 {
    st(rs, |s| s.available_replicas)
}

/// An int-or-percent of `total`, rounded up or down.
fn scaled(v: Option<&IntOrString>, total: i32, round_up: bool) -> i32 {
    match v {
        None => scaled(Some(&IntOrString::String("25%".into())), total, round_up),
        Some(IntOrString::Int(i)) => *i,
        Some(IntOrString::String(s)) => {
            let pct: f64 = s.trim_end_matches('%').parse().unwrap_or(0.0);
            let x = pct * f64::from(total) / 100.0;
            if round_up {
                x.ceil() as i32
            } else {
                x.floor() as i32
            }
        }
    }
}

/// The deployment's settings in one place.
struct Plan {
    replicas: i32,
    rolling: bool,
    max_surge: i32,
    max_unavailable: i32,
}

impl Plan {
    fn of(d: &Deployment) -> Plan {
        let spec = d.spec.clone().unwrap_or_default();
        let replicas = spec.replicas.unwrap_or(1);
        let strategy = spec.strategy.unwrap_or_default();
        let rolling = strategy.type_.as_deref() != Some("Recreate");
        let ru = strategy.rolling_update.unwrap_or_default();
        let (mut surge, mut unavailable) = (0, 0);
        if rolling {
            surge = scaled(ru.max_surge.as_ref(), replicas, true);
            unavailable = scaled(ru.max_unavailable.as_ref(), replicas, false);
            if surge == 0 && unavailable == 0 {
                unavailable = 1;
            }
            unavailable = unavailable.min(replicas);
        }
        Plan {
            replicas,
            rolling,
            max_surge: surge,
            max_unavailable: if replicas == 0 { 0 } else { unavailable },
        }
    }
}

struct Rollout {
    ctx: Arc<Context>,
    d: Arc<Deployment>,
    plan: Plan,
    api: Api<ReplicaSet>,
}

impl Rollout {
    /// Sets `spec.replicas` (and the replica annotations) of `rs`.
    async fn scale(&self, rs: &mut ReplicaSet, to: i32) -> Result<bool> {
        let from = replicas(rs);
        let desired = self.plan.replicas.to_string();
        let max = (self.plan.replicas + self.plan.max_surge).to_string();
        // The ReplicaSet also follows the deployment's minReadySeconds.
        let min_ready = self.d.spec.as_ref().and_then(|s| s.min_ready_seconds);
        let in_sync = rs.annotations().get(DESIRED_REPLICAS) == Some(&desired)
            && rs.annotations().get(MAX_REPLICAS) == Some(&max)
            && rs
                .spec
                .as_ref()
                .and_then(|s| s.min_ready_seconds)
                .unwrap_or(0)
                == min_ready.unwrap_or(0);
        if from == to && in_sync {
            return Ok(false);
        }
        let patch = json!({"metadata": {"annotations": {DESIRED_REPLICAS: desired, MAX_REPLICAS: max}},
            "spec": {"replicas": to, "minReadySeconds": min_ready}});
        let name = rs.name_any();
        util::absent_ok(
            self.api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await,
        )?;
        rs.spec.get_or_insert_with(Default::default).replicas = Some(to);
        if from != to {
            let dir = if to > from { "up" } else { "down" };
            self.ctx.events.publish(
                COMPONENT,
                self.d.as_ref(),
                NORMAL,
                "ScalingReplicaSet",
                format!("Scaled {dir} replica set {name} from {from} to {to}"),
            );
        }
        Ok(from != to)
    }

    /// The ReplicaSet of the current template, created (with the next revision) if asked.
    async fn new_replica_set(
        &self,
        new: Option<ReplicaSet>,
        old: &[ReplicaSet],
        create: bool,
    ) -> Result<Option<ReplicaSet>> {
        let max_old = old.iter().map(revision).max().unwrap_or(0);
        let next = (max_old + 1).to_string();
        let ns = self.d.namespace().unwrap_or_default();
        let rs = match new {
            Some(mut rs) => {
                let current = revision(&rs);
                if current <= max_old {
                    let mut annotations = BTreeMap::from([(REVISION.to_string(), next.clone())]);
                    if current > 0 {
                        let mut history: Vec<String> = rs
                            .annotations()
                            .get(REVISION_HISTORY)
                            .map(|h| h.split(',').map(String::from).collect())
                            .unwrap_or_default();
                        history.push(current.to_string());
                        annotations.insert(REVISION_HISTORY.into(), history.join(","));
                    }
                    let patch = json!({"metadata": {"annotations": annotations}});
                    if let Some(updated) = util::absent_ok(
                        self.api
                            .patch(
                                &rs.name_any(),
                                &PatchParams::default(),
                                &Patch::Merge(&patch),
                            )
                            .await,
                    )? {
                        rs = updated;
                    }
                }
                rs
            }
            None if !create => return Ok(None),
            None => {
                let spec = self.d.spec.clone().unwrap_or_default();
                let collisions = self.d.status.as_ref().and_then(|s| s.collision_count);
                let hash = template_hash(&spec.template, collisions);
                let mut template = spec.template.clone();
                template
                    .metadata
                    .get_or_insert_with(Default::default)
                    .labels
                    .get_or_insert_with(Default::default)
                    .insert(HASH_LABEL.into(), hash.clone());
                let mut selector = spec.selector.clone();
                selector
                    .match_labels
                    .get_or_insert_with(Default::default)
                    .insert(HASH_LABEL.into(), hash.clone());
                let total: i32 = old.iter().map(replicas).sum();
                let want = if self.plan.rolling {
                    (self.plan.replicas + self.plan.max_surge - total).clamp(0, self.plan.replicas)
                } else {
                    self.plan.replicas
                };
                let mut annotations: BTreeMap<String, String> = self
                    .d
                    .annotations()
                    .iter()
                    .filter(|(k, _)| {
                        !k.starts_with("deployment.kubernetes.io/")
                            && k.as_str() != "kubectl.kubernetes.io/last-applied-configuration"
                    })
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                annotations.insert(REVISION.into(), next.clone());
                annotations.insert(DESIRED_REPLICAS.into(), self.plan.replicas.to_string());
                annotations.insert(
                    MAX_REPLICAS.into(),
                    (self.plan.replicas + self.plan.max_surge).to_string(),
                );
                let name = format!("{}-{hash}", self.d.name_any());
                let rs: ReplicaSet = serde_json::from_value(json!({
                    "metadata": {"name": name, "namespace": ns, "annotations": annotations,
                        "labels": template.metadata.as_ref().and_then(|m| m.labels.clone()),
                        "ownerReferences": [util::controller_owner_ref(self.d.as_ref())]},
                    "spec": {"replicas": want, "minReadySeconds": spec.min_ready_seconds,
                        "selector": selector, "template": template},
                }))?;
                match self.api.create(&PostParams::default(), &rs).await {
                    Ok(created) => {
                        self.ctx.events.publish(
                            COMPONENT,
                            self.d.as_ref(),
                            NORMAL,
                            "ScalingReplicaSet",
                            format!("Scaled up replica set {name} from 0 to {want}"),
                        );
                        created
                    }
                    Err(kube::Error::Api(s)) if s.code == 409 => {
                        // A different template hashed to this name: count a collision and retry.
                        let existing = self.api.get(&name).await?;
                        let same = existing
                            .spec
                            .as_ref()
                            .and_then(|s| s.template.as_ref())
                            .is_some_and(|t| without_hash(t) == without_hash(&spec.template));
                        if !same
                            || util::controller_of(&existing).map(|r| &r.uid)
                                != self.d.uid().as_ref()
                        {
                            let count = collisions.unwrap_or(0) + 1;
                            let dapi: Api<Deployment> =
                                Api::namespaced(self.ctx.client.clone(), &ns);
                            dapi.patch_status(
                                &self.d.name_any(),
                                &PatchParams::default(),
                                &Patch::Merge(&json!({"status": {"collisionCount": count}})),
                            )
                            .await?;
                            return Err(Error::Invalid(format!(
                                "hash collision for replica set {name}"
                            )));
                        }
                        existing
                    }
                    Err(e) => {
                        self.ctx.events.publish(
                            COMPONENT,
                            self.d.as_ref(),
                            WARNING,
                            "FailedCreate",
                            e.to_string(),
                        );
                        return Err(e.into());
                    }
                }
            }
        };
        let rev = rs.annotations().get(REVISION).cloned().unwrap_or(next);
        if self.d.annotations().get(REVISION) != Some(&rev) {
            let dapi: Api<Deployment> = Api::namespaced(self.ctx.client.clone(), &ns);
            let patch = json!({"metadata": {"annotations": {REVISION: rev}}});
            util::absent_ok(
                dapi.patch(
                    &self.d.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await,
            )?;
        }
        Ok(Some(rs))
    }

    /// Scales when `spec.replicas` changed or the rollout is paused: one active set takes it
    /// all, several share it in proportion to their sizes.
    async fn scale_all(
        &self,
        new: &mut Option<ReplicaSet>,
        old: &mut [ReplicaSet],
    ) -> Result<bool> {
        let mut active: Vec<&mut ReplicaSet> = new
            .iter_mut()
            .chain(old.iter_mut())
            .filter(|r| replicas(r) > 0)
            .collect();
        if active.len() <= 1 {
            let target = match active.pop() {
                Some(rs) => rs,
                None => match new.as_mut().or(old
                    .iter_mut()
                    .max_by_key(|r| r.creation_timestamp().map(|t| t.0)))
                {
                    Some(rs) => rs,
                    None => return Ok(false),
                },
            };
            return self.scale(target, self.plan.replicas).await;
        }
        let allowed = self.plan.replicas
            + if self.plan.rolling {
                self.plan.max_surge
            } else {
                0
            };
        let current: i32 = active.iter().map(|r| replicas(r)).sum();
        let to_add = allowed - current;
        if to_add == 0 {
            return Ok(false);
        }
        // Largest first when growing, smallest first when shrinking.
        active.sort_by_key(|r| {
            if to_add > 0 {
                -replicas(r)
            } else {
                replicas(r)
            }
        });
        let mut added = 0;
        let mut targets = Vec::new();
        for rs in active.iter() {
            let share =
                (i64::from(replicas(rs)) * i64::from(to_add) / i64::from(current.max(1))) as i32;
            let share = if to_add > 0 {
                share.min(to_add - added)
            } else {
                share.max(to_add - added)
            };
            added += share;
            targets.push(replicas(rs) + share);
        }
        if let Some(first) = targets.first_mut() {
            *first += to_add - added;
        }
        let mut changed = false;
        for (rs, to) in active.into_iter().zip(targets) {
            changed |= self.scale(rs, to.max(0)).await?;
        }
        Ok(changed)
    }

    async fn rolling(&self, new: &mut ReplicaSet, old: &mut [ReplicaSet]) -> Result<bool> {
        let p = &self.plan;
        // Scale the new set towards the desired size within maxSurge.
        let new_count = replicas(new);
        if new_count > p.replicas {
            return self.scale(new, p.replicas).await;
        }
        if new_count < p.replicas {
            let total: i32 = old.iter().map(replicas).sum::<i32>() + new_count;
            let room = p.replicas + p.max_surge - total;
            if room > 0 {
                let to = new_count + room.min(p.replicas - new_count);
                if self.scale(new, to).await? {
                    return Ok(true);
                }
            }
        }
        // Scale old sets down within maxUnavailable: unhealthy replicas first.
        let old_count: i32 = old.iter().map(replicas).sum();
        if old_count == 0 {
            return Ok(false);
        }
        let all_count = old_count + replicas(new);
        let min_available = p.replicas - p.max_unavailable;
        let new_unavailable = replicas(new) - available(new);
        let mut budget = all_count - min_available - new_unavailable;
        if budget <= 0 {
            return Ok(false);
        }
        old.sort_by_key(|r| r.creation_timestamp().map(|t| t.0));
        let mut scaled_down = 0;
        for rs in old.iter_mut() {
            if budget <= 0 {
                break;
            }
            let unhealthy = (replicas(rs) - available(rs)).min(budget);
            if unhealthy > 0 {
                let to = replicas(rs) - unhealthy;
                self.scale(rs, to).await?;
                budget -= unhealthy;
                scaled_down += unhealthy;
            }
        }
        let available_all: i32 = old.iter().map(available).sum::<i32>() + available(new);
        let mut to_remove = available_all - min_available;
        for rs in old.iter_mut() {
            if to_remove <= 0 {
                break;
            }
            let n = replicas(rs).min(to_remove);
            if n > 0 {
                let to = replicas(rs) - n;
                self.scale(rs, to).await?;
                to_remove -= n;
                scaled_down += n;
            }
        }
        Ok(scaled_down > 0)
    }

    /// Deletes old, empty sets beyond `revisionHistoryLimit`, oldest revision first.
    async fn cleanup(&self, old: &[ReplicaSet]) -> Result<()> {
        let Some(limit) = self.d.spec.as_ref().and_then(|s| s.revision_history_limit) else {
            return Ok(());
        };
        let mut alive: Vec<&ReplicaSet> = old
            .iter()
            .filter(|r| r.metadata.deletion_timestamp.is_none())
            .collect();
        let excess = alive.len() as i64 - i64::from(limit);
        if excess <= 0 {
            return Ok(());
        }
        alive.sort_by_key(|r| revision(r));
        for rs in alive.into_iter().take(excess as usize) {
            let observed = rs
                .status
                .as_ref()
                .and_then(|s| s.observed_generation)
                .unwrap_or(0);
            if replicas(rs) != 0
                || st(rs, |s| Some(s.replicas)) != 0
                || rs.metadata.generation.unwrap_or(0) > observed
            {
                continue;
            }
            util::absent_ok(
                self.api
                    .delete(&rs.name_any(), &DeleteParams::default())
                    .await,
            )?;
        }
        Ok(())
    }
}

fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    old: Option<&DeploymentCondition>,
) -> DeploymentCondition {
    let now = util::now();
    let transition = match old {
        Some(c) if c.status == status => c.last_transition_time.clone(),
        _ => Some(now.clone()),
    };
    DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(now),
        last_transition_time: transition,
    }
}

async fn reconcile(d: Arc<Deployment>, ctx: Arc<Context>) -> Result<Action> {
    let ns = d.namespace().unwrap_or_default();
    let name = d.name_any();
    let spec = d.spec.clone().unwrap_or_default();
    let api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &ns);
    let dapi: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ns);
    if util::selector_is_empty(&spec.selector) {
        ctx.events.publish(
            COMPONENT,
            d.as_ref(),
            WARNING,
            "SelectingAll",
            "This deployment is selecting all pods. A non-empty selector is required.".into(),
        );
        return Ok(Action::await_change());
    }
    let candidates = ctx
        .informers
        .get::<ReplicaSet>()
        .store()
        .state_filter(|r| r.metadata.namespace.as_deref() == Some(ns.as_str()));
    let client = ctx.client.clone();
    let owned = util::claim(
        |ns| Api::namespaced(client.clone(), ns),
        &util::controller_owner_ref(d.as_ref()),
        d.metadata.deletion_timestamp.is_some(),
        &spec.selector,
        candidates,
    )
    .await?;
    let sync = Rollout {
        ctx: ctx.clone(),
        d: d.clone(),
        plan: Plan::of(&d),
        api,
    };
    let target = without_hash(&spec.template);
    let mut owned: Vec<ReplicaSet> = owned.iter().map(|r| (**r).clone()).collect();
    owned.sort_by_key(|r| r.creation_timestamp().map(|t| t.0));
    let new_pos = owned.iter().position(|r| {
        r.spec
            .as_ref()
            .and_then(|s| s.template.as_ref())
            .is_some_and(|t| without_hash(t) == target)
    });
    let mut new = new_pos.map(|i| owned.remove(i));
    let mut old = owned;
    let paused = spec.paused.unwrap_or(false);
    let deleting = d.metadata.deletion_timestamp.is_some();

    let desired = sync.plan.replicas.to_string();
    let scaling_event = new
        .iter()
        .chain(old.iter())
        .filter(|r| replicas(r) > 0)
        .any(|r| {
            r.annotations()
                .get(DESIRED_REPLICAS)
                .is_some_and(|v| *v != desired)
        });
    if !deleting {
        if paused || scaling_event {
            new = sync.new_replica_set(new, &old, false).await?;
            sync.scale_all(&mut new, &mut old).await?;
            if paused {
                sync.cleanup(&old).await?;
            }
        } else if sync.plan.rolling {
            let mut rs = match sync.new_replica_set(new, &old, true).await? {
                Some(rs) => rs,
                None => return Ok(Action::requeue(Duration::from_secs(1))),
            };
            let moved = sync.rolling(&mut rs, &mut old).await?;
            new = Some(rs);
            if !moved && complete(&d, &new, &old) {
                sync.cleanup(&old).await?;
            }
        } else {
            // Recreate: old sets to zero, wait for their pods to go, then the new set.
            let mut moved = false;
            for rs in old.iter_mut() {
                moved |= sync.scale(rs, 0).await?;
            }
            let old_uids: Vec<String> = old.iter().filter_map(|r| r.uid()).collect();
            let old_running = old.iter().any(|r| st(r, |s| Some(s.replicas)) > 0)
                || !ctx
                    .informers
                    .get::<Pod>()
                    .store()
                    .state_filter(|p| {
                        p.metadata.namespace.as_deref() == Some(ns.as_str())
                            && util::controller_of(p).is_some_and(|c| old_uids.contains(&c.uid))
                            && !matches!(
                                p.status.as_ref().and_then(|s| s.phase.as_deref()),
                                Some("Succeeded" | "Failed")
                            )
                    })
                    .is_empty();
            if !moved && !old_running {
                if let Some(mut rs) = sync.new_replica_set(new.take(), &old, true).await? {
                    sync.scale(&mut rs, sync.plan.replicas).await?;
                    new = Some(rs);
                }
                if complete(&d, &new, &old) {
                    sync.cleanup(&old).await?;
                }
            }
        }
    }

    // Status and conditions.
    let all: Vec<&ReplicaSet> = new.iter().chain(old.iter()).collect();
    let status_replicas: i32 = all.iter().map(|r| st(r, |s| Some(s.replicas))).sum();
    let updated = new.as_ref().map_or(0, |r| st(r, |s| Some(s.replicas)));
    let ready: i32 = all.iter().map(|r| st(r, |s| s.ready_replicas)).sum();
    let avail: i32 = all.iter().map(|r| available(r)).sum();
    let spec_total: i32 = all.iter().map(|r| replicas(r)).sum();
    let old_status = d.status.clone().unwrap_or_default();
    let mut conditions = old_status.conditions.clone().unwrap_or_default();
    let find = |cs: &[DeploymentCondition], t: &str| cs.iter().find(|c| c.type_ == t).cloned();
    let mut set = |c: DeploymentCondition| {
        conditions.retain(|x| x.type_ != c.type_);
        conditions.push(c);
    };
    let p = &sync.plan;
    let prev_avail = find(
        &old_status.conditions.clone().unwrap_or_default(),
        "Available",
    );
    let (a_status, a_reason, a_msg) = if avail >= p.replicas - p.max_unavailable {
        (
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
        )
    } else {
        (
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        )
    };
    if prev_avail
        .as_ref()
        .map(|c| (c.status.as_str(), c.reason.as_deref()))
        != Some((a_status, Some(a_reason)))
    {
        set(condition(
            "Available",
            a_status,
            a_reason,
            a_msg.into(),
            prev_avail.as_ref(),
        ));
    }
    let prev = find(
        &old_status.conditions.clone().unwrap_or_default(),
        "Progressing",
    );
    let prev_reason = prev
        .as_ref()
        .and_then(|c| c.reason.clone())
        .unwrap_or_default();
    let rs_name = new.as_ref().map(|r| r.name_any()).unwrap_or_default();
    let mut requeue = None;
    let now_complete =
        updated == p.replicas && status_replicas == p.replicas && avail == p.replicas;
    if paused {
        if prev_reason != "DeploymentPaused" {
            set(condition(
                "Progressing",
                "Unknown",
                "DeploymentPaused",
                "Deployment is paused".into(),
                prev.as_ref(),
            ));
        }
    } else if let Some(deadline) = spec.progress_deadline_seconds.filter(|_| !deleting) {
        let progressed = updated > old_status.updated_replicas.unwrap_or(0)
            || ready > old_status.ready_replicas.unwrap_or(0)
            || avail > old_status.available_replicas.unwrap_or(0)
            || status_replicas - updated
                < old_status.replicas.unwrap_or(0) - old_status.updated_replicas.unwrap_or(0);
        if now_complete && new.is_some() {
            if prev_reason != "NewReplicaSetAvailable" {
                set(condition(
                    "Progressing",
                    "True",
                    "NewReplicaSetAvailable",
                    format!("ReplicaSet \"{rs_name}\" has successfully progressed."),
                    prev.as_ref(),
                ));
            }
        } else if prev_reason == "DeploymentPaused" {
            set(condition(
                "Progressing",
                "Unknown",
                "DeploymentResumed",
                "Deployment is resumed".into(),
                prev.as_ref(),
            ));
        } else if progressed
            || prev.is_none()
            || prev_reason == "NewReplicaSetAvailable"
            || prev_reason == "DeploymentResumed"
        {
            let (reason, msg) = if prev.is_none() || prev_reason == "NewReplicaSetAvailable" {
                (
                    "NewReplicaSetCreated",
                    format!("Created new replica set \"{rs_name}\""),
                )
            } else {
                (
                    "ReplicaSetUpdated",
                    format!("ReplicaSet \"{rs_name}\" is progressing."),
                )
            };
            set(condition("Progressing", "True", reason, msg, prev.as_ref()));
            requeue = Some(Duration::from_secs(deadline.max(0) as u64 + 1));
        } else if prev_reason != "ProgressDeadlineExceeded" {
            let since = prev
                .as_ref()
                .and_then(|c| c.last_update_time.as_ref())
                .map_or(0.0, util::seconds_since);
            if since > f64::from(deadline) {
                set(condition(
                    "Progressing",
                    "False",
                    "ProgressDeadlineExceeded",
                    format!("ReplicaSet \"{rs_name}\" has timed out progressing."),
                    prev.as_ref(),
                ));
                ctx.events.publish(
                    COMPONENT,
                    d.as_ref(),
                    WARNING,
                    "ProgressDeadlineExceeded",
                    format!("ReplicaSet \"{rs_name}\" has timed out progressing."),
                );
            } else {
                requeue = Some(Duration::from_secs_f64(
                    (f64::from(deadline) - since).max(0.0) + 1.0,
                ));
            }
        }
    }
    let status = json!({
        "observedGeneration": d.metadata.generation,
        "replicas": status_replicas,
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": avail,
        "unavailableReplicas": (spec_total - avail).max(0),
        "collisionCount": old_status.collision_count,
        "conditions": conditions,
    });
    if serde_json::to_value(&old_status)? != status {
        util::absent_ok(
            dapi.patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"status": status})),
            )
            .await,
        )?;
    }
    Ok(requeue.map_or_else(Action::await_change, Action::requeue))
}

/// All replicas updated and available, and no old ones left.
fn complete(d: &Deployment, new: &Option<ReplicaSet>, old: &[ReplicaSet]) -> bool {
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    new.as_ref()
        .is_some_and(|n| st(n, |s| Some(s.replicas)) == want && available(n) == want)
        && old
            .iter()
            .all(|r| replicas(r) == 0 && st(r, |s| Some(s.replicas)) == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashing_and_fenceposts() {
        assert_eq!(util::safe_encode("0"), "4");
        let t = PodTemplateSpec::default();
        assert_eq!(template_hash(&t, None), template_hash(&t, None));
        assert_ne!(template_hash(&t, None), template_hash(&t, Some(1)));
        assert!(template_hash(&t, None)
            .chars()
            .all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
        assert_eq!(scaled(Some(&IntOrString::String("25%".into())), 3, true), 1);
        assert_eq!(
            scaled(Some(&IntOrString::String("25%".into())), 3, false),
            0
        );
    }
}
