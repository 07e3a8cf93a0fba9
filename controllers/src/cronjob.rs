//! The CronJob controller: creates a Job at each scheduled time (`<cronjob>-<minutes since
//! the epoch>`), honouring `timeZone`, `concurrencyPolicy`, `startingDeadlineSeconds`,
//! `suspend` and the history limits, as upstream's `cronjob_controllerv2.go`.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::runtime::controller::{Action, Controller};
use kube::ResourceExt;
use serde_json::json;

use crate::cron::Schedule;
use crate::events::{object_reference, NORMAL, WARNING};
use crate::scaffold::{run_controller, Context, Result};
use crate::util;

const COMPONENT: &str = "cronjob-controller";
const SCHEDULED_ANNOTATION: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

pub fn controller(ctx: &Arc<Context>) -> BoxFuture<'static, ()> {
    let cronjobs = ctx.informers.get::<CronJob>();
    let jobs = ctx.informers.get::<Job>();
    let c = Controller::for_shared_stream(cronjobs.subscribe(), cronjobs.store())
        .owns_shared_stream(jobs.subscribe());
    run_controller(COMPONENT, c, ctx.clone(), reconcile)
}

fn finished(job: &Job) -> Option<&str> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| matches!(c.type_.as_str(), "Complete" | "Failed") && c.status == "True")
        .map(|c| c.type_.as_str())
}

/// Until the next activation after now (plus a little, as upstream's 100 ms).
fn until_next(sched: &Schedule, tz: &TimeZone) -> Action {
    let now = Timestamp::now();
    match sched.next_after(now, tz) {
        Some(t) => {
            let ms = (t.as_millisecond() - now.as_millisecond()).max(0) as u64 + 100;
            Action::requeue(Duration::from_millis(ms))
        }
        None => Action::await_change(),
    }
}

async fn reconcile(cj: Arc<CronJob>, ctx: Arc<Context>) -> Result<Action> {
    let ns = cj.namespace().unwrap_or_default();
    let name = cj.name_any();
    let uid = cj.uid().unwrap_or_default();
    let spec = cj.spec.clone();
    let status = cj.status.clone().unwrap_or_default();
    let jobs_api: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
    let cj_api: Api<CronJob> = Api::namespaced(ctx.client.clone(), &ns);

    let mut owned: Vec<Arc<Job>> = ctx.informers.get::<Job>().store().state_filter(|j| {
        j.metadata.namespace.as_deref() == Some(ns.as_str())
            && util::controller_of(j).is_some_and(|r| r.uid == uid)
    });
    // Active list: the owned jobs still running; remember the latest success.
    let mut active = Vec::new();
    let mut last_success = status.last_successful_time.clone();
    for j in &owned {
        match finished(j) {
            None if j.metadata.deletion_timestamp.is_none() => {
                active.push(object_reference(j.as_ref()))
            }
            Some(kind) => {
                let was_active = status
                    .active
                    .as_deref()
                    .unwrap_or_default()
                    .iter()
                    .any(|r| r.uid == j.uid());
                if was_active {
                    ctx.events.publish(
                        COMPONENT,
                        cj.as_ref(),
                        NORMAL,
                        "SawCompletedJob",
                        format!("Saw completed job: {}, condition: {kind}", j.name_any()),
                    );
                }
                if kind == "Complete" {
                    let done = j.status.as_ref().and_then(|s| s.completion_time.clone());
                    if done.as_ref().map(|t| t.0) > last_success.as_ref().map(|t| t.0) {
                        last_success = done;
                    }
                }
            }
            None => {}
        }
    }
    // History limits: delete the oldest finished jobs beyond them.
    owned.sort_by_key(|j| {
        j.status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .map(|t| t.0)
            .or(j.creation_timestamp().map(|t| t.0))
    });
    for (kind, limit) in [
        ("Complete", spec.successful_jobs_history_limit.unwrap_or(3)),
        ("Failed", spec.failed_jobs_history_limit.unwrap_or(1)),
    ] {
        let done: Vec<&Arc<Job>> = owned
            .iter()
            .filter(|j| finished(j) == Some(kind) && j.metadata.deletion_timestamp.is_none())
            .collect();
        let excess = done.len().saturating_sub(limit.max(0) as usize);
        for j in done.into_iter().take(excess) {
            let dp = DeleteParams {
                propagation_policy: Some(PropagationPolicy::Background),
                ..Default::default()
            };
            if util::absent_ok(jobs_api.delete(&j.name_any(), &dp).await)?.is_some() {
                ctx.events.publish(
                    COMPONENT,
                    cj.as_ref(),
                    NORMAL,
                    "SuccessfulDelete",
                    format!("Deleted job {}", j.name_any()),
                );
            }
        }
    }

    let mut last_schedule = status.last_schedule_time.clone();
    let mut action = Action::await_change();
    let sched = Schedule::parse(&spec.schedule);
    let tz = match spec.time_zone.as_deref() {
        Some(z) => TimeZone::get(z).map_err(|e| e.to_string()),
        None => Ok(TimeZone::system()),
    };
    match (sched, tz) {
        (Err(e), _) => ctx.events.publish(
            COMPONENT,
            cj.as_ref(),
            WARNING,
            "UnparseableSchedule",
            format!("unparseable schedule: {:?} : {e}", spec.schedule),
        ),
        (_, Err(e)) => ctx.events.publish(
            COMPONENT,
            cj.as_ref(),
            WARNING,
            "UnknownTimeZone",
            format!("invalid timeZone: {:?}: {e}", spec.time_zone),
        ),
        (Ok(sched), Ok(tz))
            if cj.metadata.deletion_timestamp.is_none() && !spec.suspend.unwrap_or(false) =>
        {
            action = until_next(&sched, &tz);
            let now = Timestamp::now();
            let mut earliest = last_schedule
                .as_ref()
                .or(cj.metadata.creation_timestamp.as_ref())
                .map_or(now, |t| t.0);
            if let Some(d) = spec.starting_deadline_seconds {
                let floor = Timestamp::from_second(now.as_second() - d).unwrap_or(now);
                earliest = earliest.max(floor);
            }
            // The most recent missed activation, counting how many were missed.
            let (mut latest, mut missed) = (None, 0u32);
            let mut t = earliest;
            while let Some(next) = sched.next_after(t, &tz).filter(|n| *n <= now) {
                latest = Some(next);
                missed += 1;
                t = next;
                if missed > 100_000 {
                    break;
                }
            }
            if missed > 100 {
                ctx.events.publish(COMPONENT, cj.as_ref(), WARNING, "TooManyMissedTimes",
                    "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew".into());
            }
            if let Some(scheduled) = latest {
                let too_late = spec
                    .starting_deadline_seconds
                    .is_some_and(|d| scheduled.as_second() + d < now.as_second());
                let job_name = format!("{name}-{}", scheduled.as_second() / 60);
                let exists = owned.iter().any(|j| j.name_any() == job_name);
                let forbid =
                    spec.concurrency_policy.as_deref() == Some("Forbid") && !active.is_empty();
                if too_late {
                    ctx.events.publish(
                        COMPONENT,
                        cj.as_ref(),
                        WARNING,
                        "MissSchedule",
                        format!(
                            "Missed scheduled time to start a job: {}",
                            scheduled.to_zoned(tz.clone())
                        ),
                    );
                } else if !exists && !forbid {
                    if spec.concurrency_policy.as_deref() == Some("Replace") {
                        for r in active.drain(..) {
                            let dp = DeleteParams {
                                propagation_policy: Some(PropagationPolicy::Background),
                                ..Default::default()
                            };
                            let jn = r.name.unwrap_or_default();
                            if util::absent_ok(jobs_api.delete(&jn, &dp).await)?.is_some() {
                                ctx.events.publish(
                                    COMPONENT,
                                    cj.as_ref(),
                                    NORMAL,
                                    "SuccessfulDelete",
                                    format!("Deleted job {jn}"),
                                );
                            }
                        }
                    }
                    let template = spec.job_template.clone();
                    let meta = template.metadata.unwrap_or_default();
                    let mut annotations = meta.annotations.unwrap_or_default();
                    annotations.insert(
                        SCHEDULED_ANNOTATION.into(),
                        scheduled
                            .to_zoned(tz.clone())
                            .strftime("%Y-%m-%dT%H:%M:%S%:z")
                            .to_string(),
                    );
                    let job: Job = serde_json::from_value(json!({
                        "metadata": {"name": job_name, "namespace": ns, "labels": meta.labels, "annotations": annotations,
                            "ownerReferences": [util::controller_owner_ref(cj.as_ref())]},
                        "spec": template.spec,
                    }))?;
                    match jobs_api.create(&PostParams::default(), &job).await {
                        Ok(created) => {
                            ctx.events.publish(
                                COMPONENT,
                                cj.as_ref(),
                                NORMAL,
                                "SuccessfulCreate",
                                format!("Created job {job_name}"),
                            );
                            active.push(object_reference(&created));
                        }
                        Err(kube::Error::Api(s)) if s.code == 409 => {}
                        Err(e) => {
                            ctx.events.publish(
                                COMPONENT,
                                cj.as_ref(),
                                WARNING,
                                "FailedCreate",
                                format!("Error creating job: {e}"),
                            );
                            return Err(e.into());
                        }
                    }
                    last_schedule = Some(Time(scheduled));
                }
            }
        }
        _ => {}
    }
    let new_status = json!({"active": active, "lastScheduleTime": last_schedule, "lastSuccessfulTime": last_success});
    let mut current = serde_json::to_value(&status)?;
    if let Some(o) = current.as_object_mut() {
        o.entry("active").or_insert(json!([]));
        o.entry("lastScheduleTime").or_insert(json!(null));
        o.entry("lastSuccessfulTime").or_insert(json!(null));
    }
    if current != new_status {
        util::absent_ok(
            cj_api
                .patch_status(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(&json!({"status": new_status})),
                )
                .await,
        )?;
    }
    Ok(action)
}
