//! End to end: a real `meso server`, a real `meso-kubelet` with its own containerd, real pods.
//!
//! Needs root, containerd, runc, the CNI plugins, nft, gcc and busybox-static. Without them the
//! tests skip with a message, except under `CI=true`, where they fail. Every node gets its own
//! bridge and pod CIDR, and `--pod-egress=local`, so nothing leaves the machine.

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use common::{http_get, prerequisites, TestNode, BUSYBOX};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{DeleteParams, PostParams};
use kube::Api;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_runs_with_volumes_env_and_answers_http() -> Result<()> {
    if !prerequisites() {
        return Ok(());
    }
    let node = TestNode::start().await?;
    let client = node.client.clone();

    // The node registered as upstream's does, with a lease.
    let n: Node = Api::all(client.clone()).get(&node.name).await?;
    let info = n
        .status
        .as_ref()
        .and_then(|s| s.node_info.clone())
        .context("nodeInfo")?;
    assert!(
        info.container_runtime_version.starts_with("containerd://"),
        "{info:?}"
    );
    let labels = n.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels.get("kubernetes.io/os").map(String::as_str),
        Some("linux")
    );
    assert_eq!(labels.get("kubernetes.io/hostname"), Some(&node.name));
    let capacity = n.status.and_then(|s| s.capacity).unwrap_or_default();
    assert_eq!(capacity.get("pods").map(|q| q.0.as_str()), Some("110"));
    let lease: Lease = Api::namespaced(client.clone(), "kube-node-lease")
        .get(&node.name)
        .await?;
    assert_eq!(
        lease.spec.and_then(|s| s.holder_identity),
        Some(node.name.clone())
    );

    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web"},
                    "data": {"index.html": "hello from meso\n", "greeting": "hi"}});
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
                        "stringData": {"password": "s3cret"}});
    let pp = PostParams::default();
    Api::namespaced(client.clone(), "default")
        .create(
            &pp,
            &serde_json::from_value::<k8s_openapi::api::core::v1::ConfigMap>(cm)?,
        )
        .await?;
    Api::namespaced(client.clone(), "default")
        .create(
            &pp,
            &serde_json::from_value::<k8s_openapi::api::core::v1::Secret>(secret)?,
        )
        .await?;

    let script = "echo GREETING=$GREETING PASSWORD=$PASSWORD POD=$POD_NAME FROM_ENV=$greeting; \
                  echo SECRET_FILE=$(cat /etc/creds/password); echo INIT=$(cat /work/init.txt); \
                  echo PWD=$(pwd); echo MEMLIMIT=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes); \
                  echo CACHE=$(grep \" /cache \" /proc/mounts | cut -d\" \" -f3); exec httpd -f -p 8080 -h /www";
    node.create_pod(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "initContainers": [{"name": "init", "image": BUSYBOX, "imagePullPolicy": "IfNotPresent",
                                 "command": ["sh", "-c", "echo init-ran > /work/init.txt"],
                                 "volumeMounts": [{"name": "work", "mountPath": "/work"}]}],
            "containers": [{
                "name": "web", "image": BUSYBOX, "imagePullPolicy": "IfNotPresent",
                "command": ["sh", "-c", script],
                "workingDir": "/work",
                "ports": [{"containerPort": 8080}],
                "resources": {"limits": {"memory": "64Mi"}},
                "env": [
                    {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "web", "key": "greeting"}}},
                    {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                ],
                "envFrom": [{"configMapRef": {"name": "web"}}],
                "volumeMounts": [
                    {"name": "www", "mountPath": "/www"},
                    {"name": "creds", "mountPath": "/etc/creds"},
                    {"name": "work", "mountPath": "/work"},
                    {"name": "cache", "mountPath": "/cache"},
                ],
            }],
            "volumes": [
                {"name": "www", "configMap": {"name": "web"}},
                {"name": "creds", "secret": {"secretName": "creds"}},
                {"name": "work", "emptyDir": {}},
                {"name": "cache", "emptyDir": {"medium": "Memory"}},
            ],
        }
    }))
    .await?;
    let pod = node.wait_running("web").await?;
    let status = pod.status.clone().context("status")?;
    let pod_ip = status.pod_ip.clone().context("podIP")?;
    assert!(pod_ip.starts_with("10.42."), "{pod_ip}");
    assert_eq!(status.host_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(status.qos_class.as_deref(), Some("Burstable"));
    let cs = &status.container_statuses.clone().unwrap_or_default()[0];
    assert!(
        cs.container_id
            .as_deref()
            .unwrap_or_default()
            .starts_with("containerd://"),
        "{cs:?}"
    );
    assert!(
        !cs.image_id.is_empty() && cs.started == Some(true) && cs.restart_count == 0,
        "{cs:?}"
    );
    let init = &status.init_container_statuses.clone().unwrap_or_default()[0];
    let init_state = init
        .state
        .clone()
        .and_then(|s| s.terminated)
        .context("init terminated")?;
    assert_eq!(
        (init_state.exit_code, init_state.reason.as_deref()),
        (0, Some("Completed"))
    );
    let conditions: Vec<(String, String)> = status
        .conditions
        .unwrap_or_default()
        .into_iter()
        .map(|c| (c.type_, c.status))
        .collect();
    for kind in [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
    ] {
        assert!(
            conditions.contains(&(kind.into(), "True".into())),
            "{kind}: {conditions:?}"
        );
    }

    // The host reaches httpd on the pod IP.
    let body = node
        .wait("httpd answering", Duration::from_secs(20), || {
            let ip = pod_ip.clone();
            async move {
                Ok(http_get(&ip, 8080, "/index.html")
                    .ok()
                    .filter(|b| b.contains("200 OK")))
            }
        })
        .await?;
    assert!(body.contains("hello from meso"), "{body}");

    let log = node.container_log(&pod, "web");
    for want in [
        "GREETING=hi",
        "PASSWORD=s3cret",
        "POD=web",
        "FROM_ENV=hi",
        "SECRET_FILE=s3cret",
        "INIT=init-ran",
        "PWD=/work",
    ] {
        assert!(
            log.contains(want),
            "{want} missing from the container log:\n{log}"
        );
    }

    // --pod-egress=local installed its table.
    let bridge = node
        .args
        .iter()
        .skip_while(|a| *a != "--cni-bridge")
        .nth(1)
        .cloned()
        .unwrap_or_default();
    let table = Command::new("nft")
        .args(["list", "table", "inet", &format!("meso_{bridge}")])
        .output()?;
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("ip daddr != 10.42.") && table.contains("drop"),
        "{table}"
    );

    // Metrics count what happened.
    let port = node
        .args
        .iter()
        .skip_while(|a| *a != "--metrics-bind-address")
        .nth(1)
        .cloned()
        .unwrap_or_default();
    let (host, port) = port.rsplit_once(':').context("metrics address")?;
    let metrics = http_get(host, port.parse()?, "/metrics")?;
    assert!(
        metrics.contains("kubelet_containers_started_total 2"),
        "{metrics}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_container_goes_into_crash_loop_back_off() -> Result<()> {
    if !prerequisites() {
        return Ok(());
    }
    let node = TestNode::start().await?;
    node.create_pod(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "crash"},
        "spec": {"containers": [{"name": "c", "image": BUSYBOX, "imagePullPolicy": "IfNotPresent",
                                 "command": ["sh", "-c", "echo boom; exit 3"]}]}
    }))
    .await?;
    let pods = node.pods();
    let cs = node
        .wait(
            "CrashLoopBackOff with restartCount >= 2",
            Duration::from_secs(90),
            || async {
                let pod = pods.get("crash").await?;
                let cs = pod
                    .status
                    .and_then(|s| s.container_statuses)
                    .unwrap_or_default();
                Ok(cs.into_iter().next().filter(|c| {
                    let reason = c
                        .state
                        .as_ref()
                        .and_then(|s| s.waiting.as_ref())
                        .and_then(|w| w.reason.clone());
                    c.restart_count >= 2 && reason.as_deref() == Some("CrashLoopBackOff")
                }))
            },
        )
        .await?;
    let last = cs
        .last_state
        .and_then(|s| s.terminated)
        .context("lastState.terminated")?;
    assert_eq!((last.exit_code, last.reason.as_deref()), (3, Some("Error")));
    let pod = pods.get("crash").await?;
    assert_eq!(pod.status.and_then(|s| s.phase).as_deref(), Some("Running"));
    // The kubelet recorded what it did, as `kubectl describe pod` shows it.
    let events: Api<Event> = Api::namespaced(node.client.clone(), "default");
    let reasons: Vec<String> = events
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some("crash"))
        .filter_map(|e| e.reason)
        .collect();
    for want in ["Pulled", "Created", "Started", "BackOff"] {
        assert!(
            reasons.iter().any(|r| r == want),
            "{want} missing from {reasons:?}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_delete_signals_then_removes_the_pod() -> Result<()> {
    if !prerequisites() {
        return Ok(());
    }
    let node = TestNode::start().await?;
    let marks = node.server.scratch_dir().join("marks");
    std::fs::create_dir_all(&marks)?;
    node.create_pod(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "graceful"},
        "spec": {
            "terminationGracePeriodSeconds": 30,
            "containers": [{"name": "c", "image": BUSYBOX, "imagePullPolicy": "IfNotPresent",
                            "command": ["sh", "-c", "trap 'echo got-TERM > /marks/term; exit 0' TERM; echo up > /marks/up; while true; do sleep 1; done"],
                            "volumeMounts": [{"name": "marks", "mountPath": "/marks"}]}],
            "volumes": [{"name": "marks", "hostPath": {"path": marks.display().to_string(), "type": "Directory"}}],
        }
    }))
    .await?;
    node.wait_running("graceful").await?;
    node.wait(
        "the container to start its loop",
        Duration::from_secs(20),
        || async { Ok(marks.join("up").exists().then_some(())) },
    )
    .await?;
    let started = Instant::now();
    node.pods()
        .delete("graceful", &DeleteParams::default())
        .await?;
    let pods = node.pods();
    node.wait(
        "the pod object to disappear",
        Duration::from_secs(40),
        || async { Ok(pods.get_opt("graceful").await?.is_none().then_some(())) },
    )
    .await?;
    let term =
        std::fs::read_to_string(marks.join("term")).context("the SIGTERM trap did not run")?;
    assert_eq!(term.trim(), "got-TERM");
    // The trap exits at once, so the kubelet did not sit out the 30 s grace period.
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "{:?}",
        started.elapsed()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_kubelet_adopts_running_containers() -> Result<()> {
    if !prerequisites() {
        return Ok(());
    }
    let mut node = TestNode::start().await?;
    node.create_pod(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "steady"},
        "spec": {"containers": [{"name": "c", "image": BUSYBOX, "imagePullPolicy": "IfNotPresent",
                                 "command": ["sleep", "3600"]}]}
    }))
    .await?;
    let container_id = |pod: &Pod| {
        pod.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|c| c.first())
            .and_then(|c| c.container_id.clone())
    };
    let before = node.wait_running("steady").await?;
    let id = container_id(&before).context("containerID")?;

    // A clean stop (SIGTERM) and a crash (SIGKILL): both keep the container.
    for signal in [libc::SIGTERM, libc::SIGKILL] {
        node.stop_kubelet(signal);
        node.start_kubelet()?;
        node.wait_ready().await?;
        // Give the new kubelet a few sync periods to (wrongly) restart anything.
        tokio::time::sleep(Duration::from_secs(4)).await;
        let after = node.wait_running("steady").await?;
        assert_eq!(
            container_id(&after).as_deref(),
            Some(id.as_str()),
            "signal {signal}"
        );
        let restarts = after
            .status
            .and_then(|s| s.container_statuses)
            .unwrap_or_default()[0]
            .restart_count;
        assert_eq!(restarts, 0, "signal {signal}");
    }
    Ok(())
}
