//! The Job controller: runs pods until `completions` succeed (NonIndexed or Indexed), with
//! `parallelism`, `backoffLimit` and exponential recreation backoff, `activeDeadlineSeconds`,
//! `suspend`, `ttlSecondsAfterFinished`, `podFailurePolicy` (FailJob, Ignore, Count,
//! FailIndex), `successPolicy`, `backoffLimitPerIndex`/`maxFailedIndexes`, and counts
//! finished pods exactly once through the
//! `batch.kubernetes.io/job-tracking` finalizer and `status.uncountedTerminatedPods`, as
//! upstream's `pkg/controller/job`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobSpec};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PropagationPolicy};
use kube::runtime::controller::{Action, Controller};
use kube::ResourceExt;
use serde_json::json;

use crate::events::{NORMAL, WARNING};
use crate::scaffold::{run_controller, Context, Result};
use crate::util;

const COMPONENT: &str = "job-controller";
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
pub const INDEX_ANNOTATION: &str = "batch.kubernetes.io/job-completion-index";
/// Upstream's pod recreation backoff: 10 s doubling up to 6 minutes.
const BACKOFF_BASE: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(360);

pub fn controller(ctx: &Arc<Context>) -> BoxFuture<'static, ()> {
    let jobs = ctx.informers.get::<Job>();
    let pods = ctx.informers.get::<Pod>();
    let c = Controller::for_shared_stream(jobs.subscribe(), jobs.store())
        .owns_shared_stream(pods.subscribe());
    run_controller(COMPONENT, c, ctx.clone(), reconcile)
}

fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

fn has_finalizer(p: &Pod) -> bool {
    p.finalizers().iter().any(|f| f == TRACKING_FINALIZER)
}

fn index_of(p: &Pod) -> Option<i32> {
    p.annotations()
        .get(INDEX_ANNOTATION)
        .and_then(|i| i.parse().ok())
}

fn condition_true(job: &Job, type_: &str) -> Option<JobCondition> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_ && c.status == "True")
        .cloned()
}

/// `0-2,4,7,8` as upstream writes `completedIndexes` (a pair with a comma).
fn format_indexes(set: &BTreeSet<i32>) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut it = set.iter().peekable();
    while let Some(&start) = it.next() {
        let mut end = start;
        while it.peek() == Some(&&(end + 1)) {
            end += 1;
            it.next();
        }
        out.push(match end - start {
            0 => start.to_string(),
            1 => format!("{start},{end}"),
            _ => format!("{start}-{end}"),
        });
    }
    out.join(",")
}

fn parse_indexes(s: &str) -> BTreeSet<i32> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .flat_map(|p| {
            let (a, b) = p.split_once('-').unwrap_or((p, p));
            let (a, b) = (a.parse().unwrap_or(0), b.parse().unwrap_or(-1));
            a..=b
        })
        .collect()
}

fn new_condition(type_: &str, reason: &str, message: &str) -> serde_json::Value {
    let now = util::now();
    json!({"type": type_, "status": "True", "reason": reason, "message": message,
        "lastProbeTime": now, "lastTransitionTime": now})
}

/// What a `podFailurePolicy` rule says about a failed pod.
#[derive(Debug, Clone, Copy, PartialEq)]
enum PolicyAction {
    FailJob,
    FailIndex,
    Ignore,
    Count,
}

/// The action of the first `podFailurePolicy` rule matching the failed pod `p`, with the
/// message upstream writes on the `FailureTarget` condition.
fn failure_policy_action(spec: &JobSpec, p: &Pod) -> Option<(PolicyAction, String)> {
    let policy = spec.pod_failure_policy.as_ref()?;
    let ns = p.namespace().unwrap_or_default();
    let pod = p.name_any();
    let status = p.status.clone().unwrap_or_default();
    for (i, rule) in policy.rules.iter().enumerate() {
        let action = match rule.action.as_str() {
            "FailJob" => PolicyAction::FailJob,
            "FailIndex" => PolicyAction::FailIndex,
            "Ignore" => PolicyAction::Ignore,
            "Count" => PolicyAction::Count,
            _ => continue,
        };
        if let Some(req) = &rule.on_exit_codes {
            let exited = status
                .init_container_statuses
                .iter()
                .flatten()
                .chain(status.container_statuses.iter().flatten())
                .filter(|c| req.container_name.as_ref().is_none_or(|n| *n == c.name))
                .find_map(|c| {
                    let code = c.state.as_ref()?.terminated.as_ref()?.exit_code;
                    let listed = req.values.contains(&code);
                    let hit = code != 0
                        && match req.operator.as_str() {
                            "In" => listed,
                            "NotIn" => !listed,
                            _ => false,
                        };
                    hit.then(|| (c.name.clone(), code))
                });
            if let Some((container, code)) = exited {
                let message = format!(
                    "Container {container} for pod {ns}/{pod} failed with exit code {code} matching {} rule at index {i}",
                    rule.action
                );
                return Some((action, message));
            }
        }
        for pattern in rule.on_pod_conditions.iter().flatten() {
            let hit = status.conditions.iter().flatten().any(|c| {
                c.type_ == pattern.type_ && c.status == pattern.status.as_deref().unwrap_or("True")
            });
            if hit {
                let message = format!(
                    "Pod {ns}/{pod} has condition {} matching {} rule at index {i}",
                    pattern.type_, rule.action
                );
                return Some((action, message));
            }
        }
    }
    None
}

/// The index of the first `successPolicy` rule the completed indexes satisfy.
fn success_policy_match(spec: &JobSpec, completed: &BTreeSet<i32>) -> Option<usize> {
    if spec.completion_mode.as_deref() != Some("Indexed") {
        return None;
    }
    let all: BTreeSet<i32> = (0..spec.completions.unwrap_or(0)).collect();
    spec.success_policy.as_ref()?.rules.iter().position(|rule| {
        let set = rule
            .succeeded_indexes
            .as_deref()
            .map_or_else(|| all.clone(), parse_indexes);
        let done = set.intersection(completed).count() as i32;
        match rule.succeeded_count {
            Some(n) => done >= n,
            None => rule.succeeded_indexes.is_some() && set.is_subset(completed),
        }
    })
}

async fn reconcile(job: Arc<Job>, ctx: Arc<Context>) -> Result<Action> {
    let ns = job.namespace().unwrap_or_default();
    let name = job.name_any();
    let uid = job.uid().unwrap_or_default();
    let key = format!("{COMPONENT}/{ns}/{name}");
    let spec = job.spec.clone().unwrap_or_default();
    let status = job.status.clone().unwrap_or_default();
    // Status writes carry the resourceVersion this sync read, so a sync working from a stale
    // cached Job gets a conflict (and is retried) instead of overwriting newer counts.
    let mut rv = job.resource_version();
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);

    let (in_ns, synced) = util::namespace_pods(&ctx, &key, &ns);
    // Finalizers removed from counted pods must show in the cache before anything is counted
    // again, or a pod could be counted twice.
    let finalizers_key = format!("{key}/finalizers");
    let removed = ctx.expectations.satisfied(
        &finalizers_key,
        |_| true,
        |uid| {
            !in_ns
                .iter()
                .any(|p| p.uid().as_deref() == Some(uid) && has_finalizer(p))
        },
    );
    if !removed {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    let selector = spec.selector.clone().unwrap_or_default();
    let client = ctx.client.clone();
    let finished = condition_true(&job, "Complete").or_else(|| condition_true(&job, "Failed"));
    let pods = util::claim(
        |ns| Api::namespaced(client.clone(), ns),
        &util::controller_owner_ref(job.as_ref()),
        job.metadata.deletion_timestamp.is_some() || finished.is_some(),
        &selector,
        in_ns,
    )
    .await?;

    // 1. Count finished pods exactly once: record them as uncounted, drop their finalizers,
    //    then move them into succeeded/failed.
    let uncounted = status.uncounted_terminated_pods.clone().unwrap_or_default();
    let mut unc_succeeded: BTreeSet<String> = uncounted
        .succeeded
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let mut unc_failed: BTreeSet<String> = uncounted
        .failed
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let mut newly_failed = 0u32;
    let indexed = spec.completion_mode.as_deref() == Some("Indexed");
    let mut failed_indexes: BTreeSet<i32> =
        parse_indexes(status.failed_indexes.as_deref().unwrap_or(""));
    // Failed pods the failure policy ignores: not counted, their finalizer still dropped.
    let mut ignored: BTreeSet<String> = BTreeSet::new();
    for p in pods.iter().filter(|p| has_finalizer(p)) {
        let Some(puid) = p.uid() else { continue };
        let failed = phase(p) == "Failed"
            || (p.metadata.deletion_timestamp.is_some() && phase(p) != "Succeeded");
        if phase(p) == "Succeeded" && !unc_succeeded.contains(&puid) {
            unc_succeeded.insert(puid);
        } else if failed && !unc_failed.contains(&puid) {
            if let Some((PolicyAction::Ignore, _)) = failure_policy_action(&spec, p) {
                ignored.insert(puid);
                continue;
            }
            unc_failed.insert(puid);
            newly_failed += 1;
        }
    }
    // Any failed pod a FailJob rule matches fails the job, one a FailIndex rule matches fails
    // its index (looked at again on every sync, so that a sync acting on a stale job does
    // not lose them).
    let mut fail_job = None;
    for p in pods.iter().filter(|p| phase(p) == "Failed") {
        match failure_policy_action(&spec, p) {
            Some((PolicyAction::FailJob, message)) => {
                fail_job.get_or_insert(message);
            }
            Some((PolicyAction::FailIndex, _)) if indexed => {
                if let Some(i) = index_of(p) {
                    failed_indexes.insert(i);
                }
            }
            _ => {}
        }
    }
    // backoffLimitPerIndex: an index whose pods failed more often than allowed fails.
    if let (true, Some(limit)) = (indexed, spec.backoff_limit_per_index) {
        let mut per_index: std::collections::BTreeMap<i32, i32> = Default::default();
        for p in pods.iter().filter(|p| phase(p) == "Failed") {
            if let Some(i) = index_of(p) {
                *per_index.entry(i).or_insert(0) += 1;
            }
        }
        for (i, n) in per_index {
            if n > limit {
                failed_indexes.insert(i);
            }
        }
    }
    if newly_failed > 0 {
        let mut f = ctx.pod_failures.lock().unwrap_or_else(|e| e.into_inner());
        let entry = f
            .entry(uid.clone())
            .or_insert((0, tokio::time::Instant::now()));
        entry.0 += newly_failed;
        entry.1 = tokio::time::Instant::now();
    }
    let before: (BTreeSet<String>, BTreeSet<String>) = (
        uncounted
            .succeeded
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        uncounted
            .failed
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
    );
    if before != (unc_succeeded.clone(), unc_failed.clone()) {
        let patch = json!({"metadata": {"resourceVersion": rv},
                           "status": {"uncountedTerminatedPods": {"succeeded": unc_succeeded, "failed": unc_failed}}});
        let patched = jobs
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        rv = patched.resource_version();
    }
    let mut succeeded = status.succeeded.unwrap_or(0);
    let mut failed = status.failed.unwrap_or(0);
    let mut completed: BTreeSet<i32> =
        parse_indexes(status.completed_indexes.as_deref().unwrap_or(""));
    for p in pods.iter().filter(|p| has_finalizer(p)) {
        let puid = p.uid().unwrap_or_default();
        if unc_succeeded.contains(&puid) || unc_failed.contains(&puid) || ignored.contains(&puid) {
            let kept: Vec<&String> = p
                .finalizers()
                .iter()
                .filter(|f| *f != TRACKING_FINALIZER)
                .collect();
            let patch = json!({"metadata": {"finalizers": kept, "uid": puid}});
            ctx.expectations.add(&finalizers_key, [], [puid]);
            util::absent_ok(
                pods_api
                    .patch(
                        &p.name_any(),
                        &PatchParams::default(),
                        &Patch::Merge(&patch),
                    )
                    .await,
            )?;
        }
    }
    for p in pods.iter() {
        let puid = p.uid().unwrap_or_default();
        if unc_succeeded.remove(&puid) {
            match index_of(p) {
                Some(i) if indexed => {
                    if completed.insert(i) {
                        succeeded += 1;
                    }
                }
                _ => succeeded += 1,
            }
        } else if unc_failed.remove(&puid) {
            failed += 1;
        }
    }
    // Uncounted pods gone from the cache (deleted meanwhile) count as they were recorded.
    succeeded += unc_succeeded.len() as i32;
    failed += unc_failed.len() as i32;

    // 2. Decide what the job needs.
    let active: Vec<&Arc<Pod>> = pods.iter().filter(|p| util::pod_is_active(p)).collect();
    let terminating = pods
        .iter()
        .filter(|p| {
            p.metadata.deletion_timestamp.is_some() && !matches!(phase(p), "Succeeded" | "Failed")
        })
        .count();
    let ready = active.iter().filter(|p| util::pod_is_ready(p)).count();
    let parallelism = spec.parallelism.unwrap_or(1).max(0);
    let completions = spec.completions;
    let suspended = spec.suspend.unwrap_or(false);
    let mut conditions: Vec<serde_json::Value> = status
        .conditions
        .clone()
        .unwrap_or_default()
        .iter()
        .filter_map(|c| serde_json::to_value(c).ok())
        .collect();
    let has = |cs: &[serde_json::Value], t: &str| {
        cs.iter().any(|c| c["type"] == t && c["status"] == "True")
    };
    let mut start_time = status.start_time.clone();
    let mut completion_time = status.completion_time.clone();
    let mut requeue: Option<Duration> = None;

    // With a per-index limit the job-wide one is unbounded unless set, as upstream.
    let backoff_limit = spec
        .backoff_limit
        .unwrap_or(if spec.backoff_limit_per_index.is_some() {
            i32::MAX
        } else {
            6
        });
    let finished_indexes = completions
        .is_some_and(|c| (0..c).all(|i| completed.contains(&i) || failed_indexes.contains(&i)));
    let success_rule = success_policy_match(&spec, &completed);
    let deadline_exceeded = spec
        .active_deadline_seconds
        .zip(start_time.as_ref())
        .is_some_and(|(d, s)| util::seconds_since(s) >= d as f64);
    let success = match completions {
        Some(c) => succeeded >= c,
        None => succeeded > 0 && active.is_empty(),
    };
    if finished.is_none() {
        if !has(&conditions, "FailureTarget") && !has(&conditions, "SuccessCriteriaMet") {
            if let Some(message) = fail_job {
                conditions.push(new_condition("FailureTarget", "PodFailurePolicy", &message));
            } else if spec
                .max_failed_indexes
                .is_some_and(|m| failed_indexes.len() as i32 > m)
            {
                conditions.push(new_condition(
                    "FailureTarget",
                    "MaxFailedIndexesExceeded",
                    "Job has exceeded the specified maximal number of failed indexes",
                ));
            } else if let Some(rule) = success_rule {
                conditions.push(new_condition(
                    "SuccessCriteriaMet",
                    "SuccessPolicy",
                    &format!("Matched rules at index {rule}"),
                ));
            } else if indexed && !failed_indexes.is_empty() && finished_indexes && active.is_empty()
            {
                conditions.push(new_condition(
                    "FailureTarget",
                    "FailedIndexes",
                    "Job has failed indexes",
                ));
            } else if failed > backoff_limit {
                conditions.push(new_condition(
                    "FailureTarget",
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                ));
            } else if deadline_exceeded && !suspended {
                conditions.push(new_condition(
                    "FailureTarget",
                    "DeadlineExceeded",
                    "Job was active longer than specified deadline",
                ));
            } else if success {
                conditions.push(new_condition(
                    "SuccessCriteriaMet",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                ));
            }
        }
        let failing = conditions
            .iter()
            .find(|c| c["type"] == "FailureTarget" && c["status"] == "True")
            .cloned();
        let succeeding = has(&conditions, "SuccessCriteriaMet");
        let stop_all = failing.is_some() || succeeding || suspended;
        if stop_all {
            for p in &active {
                if util::absent_ok(
                    pods_api
                        .delete(&p.name_any(), &DeleteParams::default())
                        .await,
                )?
                .is_some()
                {
                    ctx.events.publish(
                        COMPONENT,
                        job.as_ref(),
                        NORMAL,
                        "SuccessfulDelete",
                        format!("Deleted pod: {}", p.name_any()),
                    );
                }
            }
        }
        if let Some(f) = failing {
            if active.is_empty() {
                let reason = f["reason"]
                    .as_str()
                    .unwrap_or("BackoffLimitExceeded")
                    .to_string();
                let message = f["message"].as_str().unwrap_or("").to_string();
                conditions.push(new_condition("Failed", &reason, &message));
                ctx.events
                    .publish(COMPONENT, job.as_ref(), WARNING, &reason, message);
            }
        } else if succeeding {
            if active.is_empty() {
                let criteria = conditions
                    .iter()
                    .find(|c| c["type"] == "SuccessCriteriaMet")
                    .cloned()
                    .unwrap_or_default();
                conditions.push(new_condition(
                    "Complete",
                    criteria["reason"].as_str().unwrap_or("CompletionsReached"),
                    criteria["message"]
                        .as_str()
                        .unwrap_or("Reached expected number of succeeded pods"),
                ));
                completion_time = Some(util::now());
                ctx.events.publish(
                    COMPONENT,
                    job.as_ref(),
                    NORMAL,
                    "Completed",
                    "Job completed".into(),
                );
            }
        } else if suspended {
            if !has(&conditions, "Suspended") {
                conditions.retain(|c| c["type"] != "Suspended");
                conditions.push(new_condition("Suspended", "JobSuspended", "Job suspended"));
                ctx.events.publish(
                    COMPONENT,
                    job.as_ref(),
                    NORMAL,
                    "Suspended",
                    "Job suspended".into(),
                );
            }
        } else {
            if has(&conditions, "Suspended") {
                conditions.retain(|c| c["type"] != "Suspended");
                let mut c = new_condition("Suspended", "JobResumed", "Job resumed");
                c["status"] = json!("False");
                conditions.push(c);
                start_time = None;
                ctx.events.publish(
                    COMPONENT,
                    job.as_ref(),
                    NORMAL,
                    "Resumed",
                    "Job resumed".into(),
                );
            }
            if start_time.is_none() {
                start_time = Some(util::now());
            }
            if let Some(d) = spec.active_deadline_seconds {
                requeue = Some(Duration::from_secs(d.max(0) as u64 + 1));
            }
            if synced {
                requeue = create_pods(
                    &ctx,
                    &job,
                    &key,
                    &active,
                    &completed,
                    &failed_indexes,
                    succeeded,
                    parallelism,
                    indexed,
                    requeue,
                )
                .await?
                .or(requeue);
            } else {
                requeue = Some(Duration::from_secs(5));
            }
        }
    } else {
        // Finished: no pod keeps the finalizer; the TTL, when set, deletes the job.
        ctx.pod_failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&uid);
        if let Some(ttl) = spec.ttl_seconds_after_finished {
            let since = finished
                .as_ref()
                .and_then(|c| c.last_transition_time.as_ref())
                .map_or(0.0, util::seconds_since);
            if since >= f64::from(ttl) {
                let dp = DeleteParams {
                    propagation_policy: Some(PropagationPolicy::Foreground),
                    ..Default::default()
                };
                util::absent_ok(jobs.delete(&name, &dp).await)?;
                return Ok(Action::await_change());
            }
            requeue = Some(Duration::from_secs_f64(f64::from(ttl) - since + 0.5));
        }
    }

    let new_status = json!({
        "active": active.len(),
        "ready": ready,
        "terminating": terminating,
        "succeeded": succeeded,
        "failed": failed,
        "startTime": start_time,
        "completionTime": completion_time,
        "completedIndexes": if indexed { Some(format_indexes(&completed)) } else { None },
        "failedIndexes": if (indexed && spec.backoff_limit_per_index.is_some()) || !failed_indexes.is_empty() {
            Some(format_indexes(&failed_indexes))
        } else {
            None
        },
        "uncountedTerminatedPods": {"succeeded": unc_succeeded, "failed": unc_failed},
        "conditions": conditions,
    });
    let mut current = serde_json::to_value(&status)?;
    let mut wanted = new_status.clone();
    for v in [&mut current, &mut wanted] {
        if let Some(o) = v.as_object_mut() {
            o.retain(|_, x| {
                !x.is_null()
                    && *x != json!(0)
                    && *x != json!({"succeeded": [], "failed": []})
                    && *x != json!({})
            });
        }
    }
    if current != wanted {
        util::absent_ok(
            jobs.patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"metadata": {"resourceVersion": rv}, "status": new_status})),
            )
            .await,
        )?;
    }
    Ok(requeue.map_or_else(Action::await_change, Action::requeue))
}

/// Creates the pods the job lacks, honouring the failure backoff; returns a requeue delay
/// when the backoff holds creations back.
#[allow(clippy::too_many_arguments)]
async fn create_pods(
    ctx: &Arc<Context>,
    job: &Arc<Job>,
    key: &str,
    active: &[&Arc<Pod>],
    completed: &BTreeSet<i32>,
    failed_indexes: &BTreeSet<i32>,
    succeeded: i32,
    parallelism: i32,
    indexed: bool,
    requeue: Option<Duration>,
) -> Result<Option<Duration>> {
    let spec = job.spec.clone().unwrap_or_default();
    let ns = job.namespace().unwrap_or_default();
    let name = job.name_any();
    let want = match spec.completions {
        Some(c) => parallelism.min(c - succeeded - failed_indexes.len() as i32),
        None if succeeded > 0 => 0,
        None => parallelism,
    }
    .max(0) as usize;
    if active.len() >= want {
        // Too many (parallelism lowered): delete the newest.
        let mut extra: Vec<Arc<Pod>> = active.iter().map(|p| (*p).clone()).collect();
        util::newest_first(&mut extra);
        let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
        for p in extra.iter().take(active.len() - want) {
            util::absent_ok(api.delete(&p.name_any(), &DeleteParams::default()).await)?;
        }
        return Ok(requeue);
    }
    if let Some((n, at)) = ctx
        .pod_failures
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&job.uid().unwrap_or_default())
        .copied()
    {
        let delay = BACKOFF_BASE
            .saturating_mul(1 << (n.saturating_sub(1)).min(10))
            .min(BACKOFF_MAX);
        let ready_at = at + delay;
        if tokio::time::Instant::now() < ready_at {
            return Ok(Some(ready_at - tokio::time::Instant::now()));
        }
    }
    let indexes: Vec<Option<i32>> = if indexed {
        let running: BTreeSet<i32> = active.iter().filter_map(|p| index_of(p)).collect();
        (0..spec.completions.unwrap_or(0))
            .filter(|i| {
                !completed.contains(i) && !running.contains(i) && !failed_indexes.contains(i)
            })
            .take(want - active.len())
            .map(Some)
            .collect()
    } else {
        vec![None; want - active.len()]
    };
    let mut template = spec.template.clone();
    let owner = util::controller_owner_ref(job.as_ref());
    let meta = template.metadata.get_or_insert_with(Default::default);
    meta.finalizers
        .get_or_insert_with(Vec::new)
        .push(TRACKING_FINALIZER.into());
    let control = util::PodControl::new(ctx, COMPONENT, job.as_ref(), key);
    let control = &control;
    let (_, err) = util::slow_start(indexes.len(), |i| {
        let index = indexes[i];
        let template = template.clone();
        let owner = owner.clone();
        let name = name.clone();
        let ns = ns.clone();
        async move {
            let generate = match index {
                Some(i) => format!("{name}-{i}-"),
                None => format!("{name}-"),
            };
            let mut pod = util::pod_from_template(&template, &ns, &generate, owner)?;
            if let Some(i) = index {
                pod.metadata.annotations.get_or_insert_with(Default::default).insert(INDEX_ANNOTATION.into(), i.to_string());
                pod.metadata.labels.get_or_insert_with(Default::default).insert(INDEX_ANNOTATION.into(), i.to_string());
                if let Some(spec) = pod.spec.as_mut() {
                    spec.hostname.get_or_insert_with(|| format!("{name}-{i}"));
                    for c in spec.containers.iter_mut().chain(spec.init_containers.iter_mut().flatten()) {
                        let env = c.env.get_or_insert_with(Vec::new);
                        if !env.iter().any(|e| e.name == "JOB_COMPLETION_INDEX") {
                            env.push(serde_json::from_value(json!({"name": "JOB_COMPLETION_INDEX", "valueFrom":
                                {"fieldRef": {"fieldPath": format!("metadata.annotations['{INDEX_ANNOTATION}']")}}}))?);
                        }
                    }
                }
            }
            control.create(&pod).await
        }
    })
    .await;
    if let Some(e) = err {
        return Err(e);
    }
    Ok(requeue)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completed_indexes() {
        let s = parse_indexes("0-2,4,7,8");
        assert_eq!(
            s.iter().copied().collect::<Vec<_>>(),
            vec![0, 1, 2, 4, 7, 8]
        );
        assert_eq!(format_indexes(&s), "0-2,4,7,8");
        assert_eq!(format_indexes(&BTreeSet::new()), "");
    }
}
