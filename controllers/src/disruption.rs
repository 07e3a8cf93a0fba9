//! The disruption controller: PodDisruptionBudget status, as upstream's
//! `pkg/controller/disruption`.
//!
//! For each budget: the pods its selector matches, the number expected (the pods themselves
//! for an integer `minAvailable`, else the scale of their controllers: Deployment through its
//! ReplicaSet, ReplicaSet, StatefulSet, ReplicationController), the healthy ones (ready, not
//! deleting, not in `disruptedPods` waiting for an eviction to land), and from these
//! `desiredHealthy`, `disruptionsAllowed` and the `DisruptionAllowed` condition. Entries of
//! `disruptedPods` whose pod was not deleted within two minutes are dropped (with a
//! `NotDeleted` event). The status is written with the cached resourceVersion, so a
//! decrement by a concurrent eviction is never overwritten.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::ResourceExt;

use crate::events::WARNING;
use crate::scaffold::{run_controller, Context, Error, Result};
use crate::util;

const COMPONENT: &str = "disruption-controller";
/// Upstream's `DeletionTimeout`: how long an approved eviction may take to delete its pod.
const DELETION_TIMEOUT: Duration = Duration::from_secs(120);

pub fn controller(ctx: &Arc<Context>) -> BoxFuture<'static, ()> {
    let pdbs = ctx.informers.get::<PodDisruptionBudget>();
    let pods = ctx.informers.get::<Pod>();
    let sets = ctx.informers.get::<ReplicaSet>();
    let deployments = ctx.informers.get::<Deployment>();
    let by_pod = pdbs.store();
    let by_rs = pdbs.store();
    let by_deploy = pdbs.store();
    let c = Controller::for_shared_stream(pdbs.subscribe(), pdbs.store())
        .watches_shared_stream(pods.subscribe(), move |pod: Arc<Pod>| {
            let ns = pod.namespace().unwrap_or_default();
            by_pod
                .state()
                .iter()
                .filter(|b| {
                    b.namespace().as_deref() == Some(ns.as_str())
                        && b.spec
                            .as_ref()
                            .and_then(|s| s.selector.as_ref())
                            .is_some_and(|s| {
                                util::selector_matches(s, pod.metadata.labels.as_ref())
                            })
                })
                .map(|b| ObjectRef::from_obj(b.as_ref()))
                .collect::<Vec<_>>()
        })
        // A scale change changes the expected count of every budget in the namespace.
        .watches_shared_stream(sets.subscribe(), move |rs: Arc<ReplicaSet>| {
            in_namespace(&by_rs.state(), rs.namespace().as_deref())
        })
        .watches_shared_stream(deployments.subscribe(), move |d: Arc<Deployment>| {
            in_namespace(&by_deploy.state(), d.namespace().as_deref())
        });
    run_controller(COMPONENT, c, ctx.clone(), reconcile)
}

fn in_namespace(
    pdbs: &[Arc<PodDisruptionBudget>],
    ns: Option<&str>,
) -> Vec<ObjectRef<PodDisruptionBudget>> {
    pdbs.iter()
        .filter(|b| b.namespace().as_deref() == ns)
        .map(|b| ObjectRef::from_obj(b.as_ref()))
        .collect()
}

/// `intstr.GetScaledValueFromIntOrPercent` with rounding up.
pub fn scaled_value(v: &IntOrString, total: i32) -> std::result::Result<i32, String> {
    match v {
        IntOrString::Int(i) => Ok(*i),
        IntOrString::String(s) => {
            let n: i64 = s
                .strip_suffix('%')
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| format!("invalid value for IntOrString: invalid value {s:?}"))?;
            let scaled = (n * i64::from(total) + 99).div_euclid(100);
            Ok(scaled.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32)
        }
    }
}

/// The replicas the controllers of `pods` want, and the pods without a controller.
async fn expected_scale(ctx: &Context, ns: &str, pods: &[Arc<Pod>]) -> Result<(i32, Vec<String>)> {
    let mut seen = HashSet::new();
    let mut unmanaged = Vec::new();
    let mut total = 0i32;
    let sets = ctx.informers.get::<ReplicaSet>().store();
    let deployments = ctx.informers.get::<Deployment>().store();
    for pod in pods {
        let Some(owner) = util::controller_of(pod.as_ref()) else {
            unmanaged.push(pod.name_any());
            continue;
        };
        if !seen.insert(owner.uid.clone()) {
            continue;
        }
        let not_found =
            || Error::Invalid(format!("found no controllers for pod {:?}", pod.name_any()));
        let scale = match owner.kind.as_str() {
            "ReplicaSet" => {
                let rs = sets
                    .get(&ObjectRef::new(&owner.name).within(ns))
                    .filter(|rs| rs.uid().as_deref() == Some(owner.uid.as_str()))
                    .ok_or_else(not_found)?;
                match util::controller_of(rs.as_ref()).filter(|o| o.kind == "Deployment") {
                    Some(d) => {
                        let dep = deployments
                            .get(&ObjectRef::new(&d.name).within(ns))
                            .filter(|x| x.uid().as_deref() == Some(d.uid.as_str()))
                            .ok_or_else(not_found)?;
                        if !seen.insert(d.uid.clone()) {
                            continue;
                        }
                        dep.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
                    }
                    None => rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                }
            }
            "StatefulSet" => {
                let api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), ns);
                let s = util::absent_ok(api.get(&owner.name).await)?
                    .filter(|s| s.uid().as_deref() == Some(owner.uid.as_str()))
                    .ok_or_else(not_found)?;
                s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
            }
            "ReplicationController" => {
                let api: Api<ReplicationController> = Api::namespaced(ctx.client.clone(), ns);
                let s = util::absent_ok(api.get(&owner.name).await)?
                    .filter(|s| s.uid().as_deref() == Some(owner.uid.as_str()))
                    .ok_or_else(not_found)?;
                s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
            }
            _ => return Err(not_found()),
        };
        total = total.saturating_add(scale);
    }
    Ok((total, unmanaged))
}

/// Sets the `DisruptionAllowed` condition (upstream's `UpdateDisruptionAllowedCondition`,
/// or the `SyncFailed` form of `failSafe`).
fn set_condition(status: &mut PodDisruptionBudgetStatus, sync_error: Option<&str>) {
    let (st, reason, message) = match sync_error {
        Some(e) => ("False", "SyncFailed", e.to_string()),
        None if status.disruptions_allowed.unwrap_or(0) > 0 => {
            ("True", "SufficientPods", String::new())
        }
        None => ("False", "InsufficientPods", String::new()),
    };
    let conds = status.conditions.get_or_insert_with(Vec::new);
    match conds.iter_mut().find(|c| c.type_ == "DisruptionAllowed") {
        Some(c) => {
            if c.status != st {
                c.last_transition_time = util::now();
            }
            c.status = st.into();
            c.reason = reason.into();
            c.message = message;
            c.observed_generation = status.observed_generation;
        }
        None => conds.push(Condition {
            type_: "DisruptionAllowed".into(),
            status: st.into(),
            reason: reason.into(),
            message,
            observed_generation: status.observed_generation,
            last_transition_time: util::now(),
        }),
    }
}

async fn reconcile(pdb: Arc<PodDisruptionBudget>, ctx: Arc<Context>) -> Result<Action> {
    if pdb.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ns = pdb.namespace().unwrap_or_default();
    let name = pdb.name_any();
    let spec = pdb.spec.clone().unwrap_or_default();
    // policy/v1: a missing selector selects nothing, an empty one every pod.
    let pods: Vec<Arc<Pod>> = match &spec.selector {
        None => Vec::new(),
        Some(sel) => ctx.informers.get::<Pod>().store().state_filter(|p| {
            p.metadata.namespace.as_deref() == Some(ns.as_str())
                && util::selector_matches(sel, p.metadata.labels.as_ref())
        }),
    };

    let counts: std::result::Result<(i32, i32), String> = async {
        if let Some(max) = &spec.max_unavailable {
            let (expected, _) = expected_scale(&ctx, &ns, &pods)
                .await
                .map_err(|e| e.to_string())?;
            let max = scaled_value(max, expected)?;
            Ok((expected, (expected - max).max(0)))
        } else if let Some(min) = &spec.min_available {
            match min {
                IntOrString::Int(i) => Ok((pods.len() as i32, *i)),
                IntOrString::String(_) => {
                    let (expected, _) = expected_scale(&ctx, &ns, &pods)
                        .await
                        .map_err(|e| e.to_string())?;
                    Ok((expected, scaled_value(min, expected)?))
                }
            }
        } else {
            Ok((0, 0))
        }
    }
    .await;

    let now = jiff::Timestamp::now();
    let previous = pdb.status.clone().unwrap_or_default();
    let mut status = previous.clone();
    status.observed_generation = pdb.metadata.generation;
    let mut recheck: Option<Duration> = None;
    let failure = match counts {
        Err(e) => {
            tracing::warn!(controller = COMPONENT, pdb = %format!("{ns}/{name}"), error = %e, "failed to sync");
            status.disruptions_allowed = Some(0);
            set_condition(&mut status, Some(&e));
            Some(e)
        }
        Ok((expected, desired)) => {
            // Approved evictions still in flight: the pod is not counted healthy.
            let mut disrupted: BTreeMap<String, Time> = BTreeMap::new();
            for pod in &pods {
                if pod.metadata.deletion_timestamp.is_some() {
                    continue;
                }
                let Some(t) = previous
                    .disrupted_pods
                    .as_ref()
                    .and_then(|m| m.get(&pod.name_any()))
                else {
                    continue;
                };
                let deadline = t.0.as_millisecond() + DELETION_TIMEOUT.as_millis() as i64;
                let left = deadline - now.as_millisecond();
                if left <= 0 {
                    ctx.events.publish(
                        COMPONENT,
                        pod.as_ref(),
                        WARNING,
                        "NotDeleted",
                        format!("Pod was expected by PDB {ns}/{name} to be deleted but it wasn't"),
                    );
                } else {
                    let left = Duration::from_millis(left as u64);
                    recheck = Some(recheck.map_or(left, |r| r.min(left)));
                    disrupted.insert(pod.name_any(), t.clone());
                }
            }
            let healthy = pods
                .iter()
                .filter(|p| {
                    p.metadata.deletion_timestamp.is_none()
                        && !disrupted.contains_key(&p.name_any())
                        && util::pod_is_ready(p)
                })
                .count() as i32;
            let allowed = if expected <= 0 {
                0
            } else {
                (healthy - desired).max(0)
            };
            status.current_healthy = Some(healthy);
            status.desired_healthy = Some(desired);
            status.expected_pods = Some(expected);
            status.disruptions_allowed = Some(allowed);
            status.disrupted_pods = (!disrupted.is_empty()).then_some(disrupted);
            set_condition(&mut status, None);
            None
        }
    };

    let same_condition = |a: &PodDisruptionBudgetStatus, b: &PodDisruptionBudgetStatus| {
        let key = |s: &PodDisruptionBudgetStatus| {
            s.conditions.as_ref().map(|cs| {
                cs.iter()
                    .map(|c| {
                        (
                            c.type_.clone(),
                            c.status.clone(),
                            c.reason.clone(),
                            c.message.clone(),
                            c.observed_generation,
                        )
                    })
                    .collect::<Vec<_>>()
            })
        };
        key(a) == key(b)
    };
    let norm = |m: &Option<BTreeMap<String, Time>>| m.clone().unwrap_or_default();
    let unchanged = previous.current_healthy == status.current_healthy
        && previous.desired_healthy == status.desired_healthy
        && previous.expected_pods == status.expected_pods
        && previous.disruptions_allowed == status.disruptions_allowed
        && previous.observed_generation == status.observed_generation
        && norm(&previous.disrupted_pods) == norm(&status.disrupted_pods)
        && same_condition(&previous, &status);
    if !unchanged {
        let mut next = (*pdb).clone();
        next.status = Some(status);
        let api: Api<PodDisruptionBudget> = Api::namespaced(ctx.client.clone(), &ns);
        // PUT with the cached resourceVersion: a conflict (an eviction's decrement, say)
        // requeues the budget with the fresh object.
        util::absent_ok(
            api.replace_status(&name, &PostParams::default(), &next)
                .await,
        )?;
    }
    if let Some(e) = failure {
        return Err(Error::Invalid(e));
    }
    Ok(match recheck {
        Some(d) => Action::requeue(d + Duration::from_millis(100)),
        None => Action::await_change(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_up() {
        assert_eq!(scaled_value(&IntOrString::String("50%".into()), 3), Ok(2));
        assert_eq!(scaled_value(&IntOrString::String("10%".into()), 10), Ok(1));
        assert_eq!(scaled_value(&IntOrString::Int(2), 10), Ok(2));
        assert!(scaled_value(&IntOrString::String("x".into()), 10).is_err());
    }

    #[test]
    fn condition_reasons() {
        let mut s = PodDisruptionBudgetStatus {
            disruptions_allowed: Some(1),
            ..Default::default()
        };
        set_condition(&mut s, None);
        assert_eq!(
            s.conditions.as_ref().map(|c| c[0].reason.as_str()),
            Some("SufficientPods")
        );
        s.disruptions_allowed = Some(0);
        set_condition(&mut s, None);
        let c = s
            .conditions
            .as_ref()
            .map(|c| (c.len(), c[0].reason.clone(), c[0].status.clone()));
        assert_eq!(c, Some((1, "InsufficientPods".into(), "False".into())));
    }
}
