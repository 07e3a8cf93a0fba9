//! End to end: native sidecar containers (init containers with `restartPolicy: Always`) on a
//! real `meso-kubelet` with its own containerd (see `pods.rs` for the prerequisites; tests
//! skip without them, and fail under `CI=true`).

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use common::{init_status_of, prerequisites, status_of, touch, TestNode, BUSYBOX};
use k8s_openapi::api::core::v1::PodStatus;
use kube::api::DeleteParams;
use serde_json::json;

/// A condition's status and message.
fn condition(status: &PodStatus, kind: &str) -> Option<(String, String)> {
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == kind)
        .map(|c| (c.status.clone(), c.message.clone().unwrap_or_default()))
}

/// A shell loop that appends `word` to `/marks/order` when it gets SIGTERM and exits with
/// `code`; `body` runs every second until then.
fn until_term(word: &str, code: i32, body: &str) -> serde_json::Value {
    json!([
        "sh",
        "-c",
        format!(
        "trap 'echo {word} >> /marks/order; exit {code}' TERM; while true; do {body} sleep 1; done"
    )
    ])
}

fn marks_volume(marks: &Path) -> serde_json::Value {
    json!([{"name": "marks", "hostPath": {"path": marks.display().to_string(), "type": "Directory"}}])
}

/// A node, and a directory of it that pods mount as `/marks` (see [`marks_volume`]).
async fn node_with_marks() -> Result<(TestNode, PathBuf)> {
    let node = TestNode::start().await?;
    let marks = node.server.scratch_dir().join("marks");
    std::fs::create_dir_all(&marks)?;
    Ok((node, marks))
}

/// A Job-style pod (restartPolicy Never): the sidecar starts first and keeps writing a
/// heartbeat that the next init container and the main container read (so it runs beside
/// them); once the main container exits 0 the kubelet stops the sidecar with SIGTERM and the
/// pod Succeeds although the sidecar exits with 3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sidecar_runs_beside_a_job_and_is_stopped_when_it_completes() -> Result<()> {
    if !prerequisites() {
        return Ok(());
    }
    let (node, marks) = node_with_marks().await?;
    let mount = json!([{"name": "marks", "mountPath": "/marks"}]);
    node.create_pod(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "job"},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 10,
            "initContainers": [
                {"name": "beat", "image": BUSYBOX, "restartPolicy": "Always",
                 "command": until_term("beat", 3, "date +%s%N > /marks/beat;"),
                 "volumeMounts": mount},
                {"name": "check", "image": BUSYBOX,
                 "command": ["sh", "-c",
                     "for i in 1 2 3 4 5 6 7 8 9 10; do test -s /marks/beat && break; sleep 1; done; \
                      test -s /marks/beat && echo init-saw-beat"],
                 "volumeMounts": mount},
            ],
            "containers": [
                {"name": "main", "image": BUSYBOX, "volumeMounts": mount,
                 "command": ["sh", "-c",
                     "a=$(cat /marks/beat); sleep 3; b=$(cat /marks/beat); test \"$a\" != \"$b\" && echo main-saw-beat"]},
            ],
            "volumes": marks_volume(&marks),
        }
    }))
    .await?;
    let pods = node.pods();
    let pod = node
        .wait("the job pod Succeeded", Duration::from_secs(90), || async {
            let pod = pods.get("job").await?;
            let phase = pod.status.as_ref().and_then(|s| s.phase.clone());
            Ok((phase.as_deref() == Some("Succeeded")).then_some(pod))
        })
        .await?;
    // Both readers saw the sidecar's heartbeat; the main one saw it move.
    assert!(node.container_log(&pod, "check").contains("init-saw-beat"));
    assert!(node.container_log(&pod, "main").contains("main-saw-beat"));
    let main = status_of(&pod, "main").context("main status")?;
    let main_exit = main.state.and_then(|s| s.terminated).map(|t| t.exit_code);
    assert_eq!(main_exit, Some(0));
    // The sidecar got SIGTERM (its trap ran) and its exit code did not fail the pod.
    let beat = init_status_of(&pod, "beat").context("beat status")?;
    let beat_exit = beat.state.clone().and_then(|s| s.terminated);
    assert_eq!(beat_exit.map(|t| t.exit_code), Some(3), "{beat:?}");
    assert_eq!((beat.ready, beat.restart_count), (false, 0), "{beat:?}");
    let order = std::fs::read_to_string(marks.join("order")).unwrap_or_default();
    assert_eq!(order.trim(), "beat");
    let check = init_status_of(&pod, "check").context("check status")?;
    assert!(
        check.ready,
        "a completed init container is ready: {check:?}"
    );
    let status = pod.status.clone().context("status")?;
    assert_eq!(
        condition(&status, "Initialized").map(|c| c.0).as_deref(),
        Some("True")
    );
    let events = node.event_reasons("job").await?;
    assert!(
        events
            .iter()
            .any(|(r, m)| r == "Killing" && m == "Stopping container beat"),
        "{events:?}"
    );
    Ok(())
}

/// A sidecar's startup probe holds back the main container, its readiness probe the pod's
/// readiness; a sidecar that exits is restarted with back-off although the pod never restarts
/// containers; on deletion the main container stops before the sidecar.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sidecar_probes_gate_the_pod_and_exited_sidecars_restart() -> Result<()> {
    if !prerequisites() {
        return Ok(());
    }
    let (node, marks) = node_with_marks().await?;
    let mount = json!([{"name": "marks", "mountPath": "/marks"}]);
    let exec_probe = |cmd: &str| json!({"exec": {"command": ["sh", "-c", cmd]}, "periodSeconds": 1, "failureThreshold": 1000});
    node.create_pod(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "gated"},
        "spec": {
            "terminationGracePeriodSeconds": 10,
            "initContainers": [
                {"name": "gate", "image": BUSYBOX, "restartPolicy": "Always",
                 "command": until_term("gate", 0, ""),
                 "startupProbe": exec_probe("test -f /marks/started"),
                 "readinessProbe": exec_probe("test -f /marks/ready"),
                 "volumeMounts": mount},
            ],
            "containers": [
                {"name": "main", "image": BUSYBOX, "command": until_term("main", 0, ""),
                 "volumeMounts": mount},
            ],
            "volumes": marks_volume(&marks),
        }
    }))
    .await?;
    node.create_pod(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "flaky"},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "initContainers": [
                {"name": "flaky", "image": BUSYBOX, "restartPolicy": "Always",
                 "command": ["sh", "-c", "sleep 1; exit 1"]},
            ],
            "containers": [{"name": "main", "image": BUSYBOX, "command": ["sleep", "3600"]}],
        }
    }))
    .await?;
    let pods = node.pods();

    // The sidecar runs but has not started: the pod is not initialized, main waits.
    let pod = node
        .wait("gate running", Duration::from_secs(90), || async {
            let pod = pods.get("gated").await?;
            let running = init_status_of(&pod, "gate")
                .and_then(|c| c.state)
                .is_some_and(|s| s.running.is_some());
            Ok(running.then_some(pod))
        })
        .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pod = pods.get("gated").await.unwrap_or(pod);
    let status = pod.status.clone().context("status")?;
    assert_eq!(status.phase.as_deref(), Some("Pending"), "{status:?}");
    assert_eq!(
        condition(&status, "Initialized"),
        Some((
            "False".into(),
            "containers with incomplete status: [gate]".into()
        ))
    );
    let gate = init_status_of(&pod, "gate").context("gate status")?;
    assert_eq!((gate.started, gate.ready), (Some(false), false), "{gate:?}");
    let main = status_of(&pod, "main").context("main status")?;
    let main_waiting = main.state.and_then(|s| s.waiting).and_then(|w| w.reason);
    assert_eq!(main_waiting.as_deref(), Some("PodInitializing"));

    // Started: main runs; the sidecar's failing readiness keeps the pod not Ready.
    touch(&marks.join("started"), "")?;
    let pod = node
        .wait("main running", Duration::from_secs(60), || async {
            let pod = pods.get("gated").await?;
            let running = status_of(&pod, "main").is_some_and(|c| c.ready);
            Ok(running.then_some(pod))
        })
        .await?;
    let status = pod.status.clone().context("status")?;
    assert_eq!(status.phase.as_deref(), Some("Running"));
    assert_eq!(
        condition(&status, "Initialized").map(|c| c.0).as_deref(),
        Some("True")
    );
    let unready = Some((
        "False".to_string(),
        "containers with unready status: [gate]".to_string(),
    ));
    assert_eq!(condition(&status, "Ready"), unready);
    assert_eq!(condition(&status, "ContainersReady"), unready);
    let gate = init_status_of(&pod, "gate").context("gate status")?;
    assert_eq!((gate.started, gate.ready), (Some(true), false), "{gate:?}");

    // Readiness passes: the pod becomes Ready.
    touch(&marks.join("ready"), "")?;
    node.wait("gated Ready", Duration::from_secs(30), || async {
        let status = pods.get("gated").await?.status.unwrap_or_default();
        let ready = condition(&status, "Ready").is_some_and(|c| c.0 == "True");
        Ok(ready.then_some(()))
    })
    .await?;

    // The exiting sidecar is restarted (restartPolicy Never notwithstanding), with back-off.
    let pod = node
        .wait("flaky restarted", Duration::from_secs(60), || async {
            let pod = pods.get("flaky").await?;
            let restarted = init_status_of(&pod, "flaky").is_some_and(|c| c.restart_count >= 1);
            Ok(restarted.then_some(pod))
        })
        .await?;
    let status = pod.status.clone().context("status")?;
    assert_eq!(status.phase.as_deref(), Some("Running"), "{status:?}");
    assert_eq!(status_of(&pod, "main").map(|c| c.restart_count), Some(0));
    let flaky = node
        .wait("flaky backing off", Duration::from_secs(30), || async {
            let pod = pods.get("flaky").await?;
            let flaky = init_status_of(&pod, "flaky");
            let waiting = flaky
                .as_ref()
                .and_then(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone());
            Ok((waiting.as_deref() == Some("CrashLoopBackOff"))
                .then_some(flaky)
                .flatten())
        })
        .await?;
    let last_exit = flaky
        .last_state
        .and_then(|s| s.terminated)
        .map(|t| t.exit_code);
    assert_eq!(last_exit, Some(1));
    let events = node.event_reasons("flaky").await?;
    assert!(
        events.iter().any(|(r, m)| r == "BackOff"
            && m == "Back-off restarting failed container flaky in pod default/flaky"),
        "{events:?}"
    );

    // Deletion stops the main container first, then the sidecar.
    pods.delete("gated", &DeleteParams::default()).await?;
    node.wait("gated gone", Duration::from_secs(40), || async {
        Ok(pods.get_opt("gated").await?.is_none().then_some(()))
    })
    .await?;
    let order = std::fs::read_to_string(marks.join("order")).unwrap_or_default();
    assert_eq!(
        order.split_whitespace().collect::<Vec<_>>(),
        ["main", "gate"]
    );
    Ok(())
}
