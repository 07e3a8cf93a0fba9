//! The controllers against a real `meso server`, driven with kubectl. No kubelet runs: a
//! small simulator plays it by patching pods' status (Running and Ready, or Succeeded or
//! Failed, by namespace) through `pods/{name}/status`.

use crate::common;

use anyhow::{bail, Context as _, Result};
use common::{count_pods, Cluster, Sim};
use serde_json::Value;

#[test]
fn replicaset_scales_up_and_down() -> Result<()> {
    let Some(c) = Cluster::start()? else {
        return Ok(());
    };
    c.namespace("rs", None)?;
    c.apply(
        r#"
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: web, namespace: rs}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: busybox}]}
"#,
    )?;
    c.wait("3 pods", 30, |c| {
        Ok((count_pods(c, "rs", "app=web")? == 3).then_some(()))
    })?;
    let pods = c.items(&["get", "pods", "-n", "rs"])?;
    for p in &pods {
        let owner = &p["metadata"]["ownerReferences"][0];
        assert_eq!(owner["kind"], "ReplicaSet");
        assert_eq!(owner["controller"], true);
        assert_eq!(owner["blockOwnerDeletion"], true);
        assert!(p["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .starts_with("web-"));
    }
    c.wait("status.replicas 3", 30, |c| {
        let rs = c.json(&["get", "rs", "web", "-n", "rs"])?;
        Ok((rs["status"]["replicas"] == 3
            && rs["status"]["observedGeneration"] == rs["metadata"]["generation"])
            .then_some(()))
    })?;
    c.kubectl(&["scale", "rs", "web", "-n", "rs", "--replicas=1"])?;
    c.wait("1 pod", 30, |c| {
        Ok((count_pods(c, "rs", "app=web")? == 1).then_some(()))
    })?;
    // Ready pods count once the (simulated) kubelet reports them.
    c.sims
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .insert("rs".into(), Sim::Ready);
    c.kubectl(&["scale", "rs", "web", "-n", "rs", "--replicas=2"])?;
    c.wait("2 ready", 30, |c| {
        let rs = c.json(&["get", "rs", "web", "-n", "rs"])?;
        Ok((rs["status"]["readyReplicas"] == 2
            && rs["status"]["availableReplicas"] == 2
            && rs["status"]["fullyLabeledReplicas"] == 2)
            .then_some(()))
    })?;
    // An orphan pod matching the selector is adopted (and, being one too many, removed).
    c.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: stray, namespace: rs, labels: {app: web}}
spec: {containers: [{name: c, image: busybox}]}
"#,
    )?;
    c.wait("back to 2 pods", 30, |c| {
        Ok((count_pods(c, "rs", "app=web")? == 2).then_some(()))
    })?;
    let events = c.kubectl(&["get", "events", "-n", "rs"])?;
    assert!(
        events.contains("SuccessfulCreate") && events.contains("SuccessfulDelete"),
        "{events}"
    );
    Ok(())
}

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: dep}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "busybox:1"}]}
"#;

fn replica_sets(c: &Cluster, ns: &str) -> Result<Vec<Value>> {
    c.items(&["get", "rs", "-n", ns])
}

#[test]
fn deployment_rollout_history_undo_and_cascading_deletes() -> Result<()> {
    let Some(c) = Cluster::start()? else {
        return Ok(());
    };
    c.namespace("dep", Some(Sim::Ready))?;
    c.apply(DEPLOYMENT)?;
    let out = c.kubectl(&[
        "rollout",
        "status",
        "deployment/web",
        "-n",
        "dep",
        "--timeout=60s",
    ])?;
    assert!(out.contains("successfully rolled out"), "{out}");
    let d = c.json(&["get", "deploy", "web", "-n", "dep"])?;
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "1"
    );
    let conds = d["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        conds.iter().any(|c| c["type"] == "Available"
            && c["status"] == "True"
            && c["reason"] == "MinimumReplicasAvailable"),
        "{conds:?}"
    );
    assert!(
        conds
            .iter()
            .any(|c| c["type"] == "Progressing" && c["reason"] == "NewReplicaSetAvailable"),
        "{conds:?}"
    );
    let rs = replica_sets(&c, "dep")?;
    assert_eq!(rs.len(), 1);
    let hash = rs[0]["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(rs[0]["metadata"]["name"], format!("web-{hash}"));

    c.kubectl(&[
        "set",
        "image",
        "deployment/web",
        "-n",
        "dep",
        "web=busybox:2",
    ])?;
    let out = c.kubectl(&[
        "rollout",
        "status",
        "deployment/web",
        "-n",
        "dep",
        "--timeout=90s",
    ])?;
    assert!(out.contains("successfully rolled out"), "{out}");
    let rs = replica_sets(&c, "dep")?;
    assert_eq!(rs.len(), 2, "{rs:?}");
    let pods = c.items(&["get", "pods", "-n", "dep"])?;
    let images: Vec<&str> = pods
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .filter_map(|p| p["spec"]["containers"][0]["image"].as_str())
        .collect();
    assert_eq!(images, vec!["busybox:2"; 3]);
    let history = c.kubectl(&["rollout", "history", "deployment/web", "-n", "dep"])?;
    assert!(history.contains('1') && history.contains('2'), "{history}");

    c.kubectl(&["rollout", "undo", "deployment/web", "-n", "dep"])?;
    let out = c.kubectl(&[
        "rollout",
        "status",
        "deployment/web",
        "-n",
        "dep",
        "--timeout=90s",
    ])?;
    assert!(out.contains("successfully rolled out"), "{out}");
    let d = c.json(&["get", "deploy", "web", "-n", "dep"])?;
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "busybox:1"
    );
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "3"
    );
    assert_eq!(replica_sets(&c, "dep")?.len(), 2);

    c.kubectl(&["scale", "deployment/web", "-n", "dep", "--replicas=5"])?;
    c.wait("5 available", 60, |c| {
        let d = c.json(&["get", "deploy", "web", "-n", "dep"])?;
        Ok((d["status"]["availableReplicas"] == 5).then_some(()))
    })?;

    // Orphan: the ReplicaSets and pods stay, without owner.
    c.kubectl(&["delete", "deployment/web", "-n", "dep", "--cascade=orphan"])?;
    c.wait("orphaned replica sets", 30, |c| {
        let rs = replica_sets(c, "dep")?;
        Ok((rs.len() == 2
            && rs
                .iter()
                .all(|r| r["metadata"]["ownerReferences"].is_null()))
        .then_some(()))
    })?;
    assert_eq!(count_pods(&c, "dep", "app=web")?, 5);

    // Background: a new deployment adopts them; deleting it removes ReplicaSets and pods.
    c.apply(DEPLOYMENT)?;
    c.wait("adopted", 30, |c| {
        let rs = replica_sets(c, "dep")?;
        Ok(rs
            .iter()
            .all(|r| r["metadata"]["ownerReferences"][0]["kind"] == "Deployment")
            .then_some(()))
    })?;
    c.kubectl(&["delete", "deployment/web", "-n", "dep"])?;
    c.wait("replica sets and pods gone", 60, |c| {
        Ok(
            (replica_sets(c, "dep")?.is_empty() && count_pods(c, "dep", "app=web")? == 0)
                .then_some(()),
        )
    })?;
    Ok(())
}

#[test]
fn deployment_foreground_deletion_and_recreate() -> Result<()> {
    let Some(c) = Cluster::start()? else {
        return Ok(());
    };
    c.namespace("dep", Some(Sim::Ready))?;
    c.apply(&DEPLOYMENT.replace("replicas: 3", "replicas: 2\n  strategy: {type: Recreate}"))?;
    c.kubectl(&[
        "rollout",
        "status",
        "deployment/web",
        "-n",
        "dep",
        "--timeout=60s",
    ])?;
    c.kubectl(&[
        "set",
        "image",
        "deployment/web",
        "-n",
        "dep",
        "web=busybox:2",
    ])?;
    c.kubectl(&[
        "rollout",
        "status",
        "deployment/web",
        "-n",
        "dep",
        "--timeout=60s",
    ])?;
    // Paused: a template change makes no new ReplicaSet until resumed.
    c.kubectl(&["rollout", "pause", "deployment/web", "-n", "dep"])?;
    c.kubectl(&[
        "set",
        "image",
        "deployment/web",
        "-n",
        "dep",
        "web=busybox:3",
    ])?;
    c.wait("paused condition", 30, |c| {
        let d = c.json(&["get", "deploy", "web", "-n", "dep"])?;
        let paused = d["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Progressing" && c["reason"] == "DeploymentPaused");
        Ok(paused.then_some(()))
    })?;
    assert_eq!(replica_sets(&c, "dep")?.len(), 2);
    c.kubectl(&["rollout", "resume", "deployment/web", "-n", "dep"])?;
    c.kubectl(&[
        "rollout",
        "status",
        "deployment/web",
        "-n",
        "dep",
        "--timeout=60s",
    ])?;
    assert_eq!(replica_sets(&c, "dep")?.len(), 3);
    c.kubectl(&["rollout", "restart", "deployment/web", "-n", "dep"])?;
    c.kubectl(&[
        "rollout",
        "status",
        "deployment/web",
        "-n",
        "dep",
        "--timeout=60s",
    ])?;
    assert_eq!(replica_sets(&c, "dep")?.len(), 4);
    c.kubectl(&[
        "delete",
        "deployment/web",
        "-n",
        "dep",
        "--cascade=foreground",
        "--timeout=60s",
    ])?;
    c.wait("everything gone", 60, |c| {
        let gone = c.items(&["get", "deploy", "-n", "dep"])?.is_empty();
        Ok(
            (gone && replica_sets(c, "dep")?.is_empty() && count_pods(c, "dep", "app=web")? == 0)
                .then_some(()),
        )
    })?;

    // No pod ever gets ready here: the rollout exceeds its progress deadline.
    c.namespace("stuck", None)?;
    c.apply(
        &DEPLOYMENT
            .replace("namespace: dep", "namespace: stuck")
            .replace("replicas: 3", "replicas: 1\n  progressDeadlineSeconds: 2"),
    )?;
    c.wait("ProgressDeadlineExceeded", 30, |c| {
        let d = c.json(&["get", "deploy", "web", "-n", "stuck"])?;
        let exceeded = d["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| {
                c["type"] == "Progressing"
                    && c["status"] == "False"
                    && c["reason"] == "ProgressDeadlineExceeded"
            });
        Ok(exceeded.then_some(()))
    })?;
    let out = c.server.kubectl(
        &c.k,
        &[
            "rollout",
            "status",
            "deployment/web",
            "-n",
            "stuck",
            "--timeout=20s",
        ],
    )?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("exceeded its progress deadline"),
        "{stderr}"
    );
    Ok(())
}

fn job_condition(c: &Cluster, ns: &str, name: &str, type_: &str) -> Result<Option<Value>> {
    let j = c.json(&["get", "job", name, "-n", ns])?;
    Ok(j["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == type_ && c["status"] == "True")
        .map(|_| j.clone()))
}

#[test]
fn jobs_complete_and_fail() -> Result<()> {
    let Some(c) = Cluster::start()? else {
        return Ok(());
    };
    c.namespace("ok", Some(Sim::Succeed))?;
    c.namespace("bad", Some(Sim::Fail))?;
    c.apply(
        r#"
apiVersion: batch/v1
kind: Job
metadata: {name: work, namespace: ok}
spec:
  completions: 3
  parallelism: 2
  template:
    spec: {restartPolicy: Never, containers: [{name: c, image: busybox}]}
---
apiVersion: batch/v1
kind: Job
metadata: {name: indexed, namespace: ok}
spec:
  completions: 2
  parallelism: 2
  completionMode: Indexed
  template:
    spec: {restartPolicy: Never, containers: [{name: c, image: busybox}]}
---
apiVersion: batch/v1
kind: Job
metadata: {name: later, namespace: ok}
spec:
  suspend: true
  ttlSecondsAfterFinished: 0
  template:
    spec: {restartPolicy: Never, containers: [{name: c, image: busybox}]}
---
apiVersion: batch/v1
kind: Job
metadata: {name: broken, namespace: bad}
spec:
  backoffLimit: 1
  template:
    spec: {restartPolicy: Never, containers: [{name: c, image: busybox}]}
"#,
    )?;
    let j = c.wait("work completes", 60, |c| {
        job_condition(c, "ok", "work", "Complete")
    })?;
    assert_eq!(j["status"]["succeeded"], 3);
    assert!(j["status"]["completionTime"].is_string() && j["status"]["startTime"].is_string());
    assert!(j["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "SuccessCriteriaMet"));
    let j = c.wait("indexed completes", 60, |c| {
        job_condition(c, "ok", "indexed", "Complete")
    })?;
    assert_eq!(j["status"]["completedIndexes"], "0,1");
    let pods = c.items(&[
        "get",
        "pods",
        "-n",
        "ok",
        "-l",
        "batch.kubernetes.io/job-name=indexed",
    ])?;
    let mut indexes: Vec<&str> = pods
        .iter()
        .filter_map(|p| {
            p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"].as_str()
        })
        .collect();
    indexes.sort();
    assert_eq!(indexes, vec!["0", "1"]);
    assert!(pods.iter().all(|p| p["spec"]["containers"][0]["env"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|e| e["name"] == "JOB_COMPLETION_INDEX")));
    // Every finished pod was counted and lost its tracking finalizer.
    let all = c.items(&["get", "pods", "-n", "ok"])?;
    assert!(
        all.iter().all(|p| p["metadata"]["finalizers"]
            .as_array()
            .is_none_or(|f| f.is_empty())),
        "{all:?}"
    );

    // Suspended: no pods until resumed; then it completes and its TTL of 0 deletes it.
    c.wait("suspended", 30, |c| {
        job_condition(c, "ok", "later", "Suspended")
    })?;
    assert!(c
        .items(&[
            "get",
            "pods",
            "-n",
            "ok",
            "-l",
            "batch.kubernetes.io/job-name=later"
        ])?
        .is_empty());
    c.kubectl(&[
        "patch",
        "job",
        "later",
        "-n",
        "ok",
        "--type=merge",
        "-p",
        r#"{"spec":{"suspend":false}}"#,
    ])?;
    c.wait("later completes and is deleted with its pods", 60, |c| {
        let jobs = c.items(&[
            "get",
            "jobs",
            "-n",
            "ok",
            "--field-selector",
            "metadata.name=later",
        ])?;
        let pods = c.items(&[
            "get",
            "pods",
            "-n",
            "ok",
            "-l",
            "batch.kubernetes.io/job-name=later",
        ])?;
        Ok((jobs.is_empty() && pods.is_empty()).then_some(()))
    })?;

    // backoffLimit 1: two failures (the second after the 10 s recreation backoff).
    let j = c.wait("broken fails", 90, |c| {
        job_condition(c, "bad", "broken", "Failed")
    })?;
    assert_eq!(j["status"]["failed"], 2);
    let failed = j["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Failed")
        .cloned()
        .unwrap_or_default();
    assert_eq!(failed["reason"], "BackoffLimitExceeded");
    Ok(())
}

#[test]
fn cronjob_creates_jobs() -> Result<()> {
    let Some(c) = Cluster::start()? else {
        return Ok(());
    };
    c.namespace("cron", Some(Sim::Succeed))?;
    c.apply(
        r#"
apiVersion: batch/v1
kind: CronJob
metadata: {name: tick, namespace: cron}
spec:
  schedule: "*/1 * * * *"
  successfulJobsHistoryLimit: 1
  jobTemplate:
    spec:
      template:
        spec: {restartPolicy: Never, containers: [{name: c, image: busybox}]}
"#,
    )?;
    let job = c.wait("a job", 90, |c| {
        Ok(c.items(&["get", "jobs", "-n", "cron"])?.into_iter().next())
    })?;
    let name = job["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let minutes: i64 = name
        .strip_prefix("tick-")
        .and_then(|m| m.parse().ok())
        .context("job name")?;
    assert!(
        (minutes * 60 - jiff::Timestamp::now().as_second()).abs() < 180,
        "{name}"
    );
    assert_eq!(job["metadata"]["ownerReferences"][0]["kind"], "CronJob");
    c.wait("job completes and lastSuccessfulTime", 60, |c| {
        let cj = c.json(&["get", "cronjob", "tick", "-n", "cron"])?;
        Ok((cj["status"]["lastScheduleTime"].is_string()
            && cj["status"]["lastSuccessfulTime"].is_string())
        .then_some(()))
    })?;
    Ok(())
}

#[test]
fn namespace_defaults_and_endpoints() -> Result<()> {
    let Some(c) = Cluster::start()? else {
        return Ok(());
    };
    c.namespace("fresh", Some(Sim::Ready))?;
    c.wait("default service account", 30, |c| {
        Ok(c.kubectl(&["get", "sa", "default", "-n", "fresh"]).ok())
    })?;
    let cm = c.wait("kube-root-ca.crt", 30, |c| {
        Ok(
            c.json(&["get", "configmap", "kube-root-ca.crt", "-n", "fresh"])
                .ok(),
        )
    })?;
    let ca = cm["data"]["ca.crt"].as_str().unwrap_or_default();
    if !ca.starts_with("-----BEGIN CERTIFICATE-----") {
        bail!("not a PEM certificate: {ca}");
    }
    let lease = c.json(&[
        "get",
        "lease",
        "kube-controller-manager",
        "-n",
        "kube-system",
    ])?;
    assert!(
        lease["spec"]["holderIdentity"]
            .as_str()
            .is_some_and(|h| !h.is_empty()),
        "{lease}"
    );
    c.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: p1, namespace: fresh, labels: {app: api}}
spec: {containers: [{name: c, image: busybox, ports: [{name: http, containerPort: 8080}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: fresh}
spec:
  selector: {app: api}
  ports: [{name: web, port: 80, targetPort: http}]
"#,
    )?;
    let ep = c.wait("endpoints", 30, |c| {
        let ep = c.json(&["get", "endpoints", "api", "-n", "fresh"]).ok();
        Ok(ep.filter(|e| e["subsets"][0]["addresses"][0]["ip"].is_string()))
    })?;
    assert_eq!(ep["subsets"][0]["ports"][0]["port"], 8080);
    let slice = c.wait("endpoint slice", 30, |c| {
        Ok(c.items(&[
            "get",
            "endpointslices",
            "-n",
            "fresh",
            "-l",
            "kubernetes.io/service-name=api",
        ])?
        .into_iter()
        .find(|s| s["endpoints"][0]["conditions"]["ready"] == true))
    })?;
    assert_eq!(slice["ports"][0]["port"], 8080);
    assert_eq!(slice["endpoints"][0]["targetRef"]["name"], "p1");
    Ok(())
}
