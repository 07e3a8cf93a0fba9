//! Resource metrics and the HorizontalPodAutoscaler end to end: a real `meso server` as root
//! with its local agent (its own containerd), as `deploy/up.sh` runs it, with a short
//! `--metric-resolution` and HPA sync period. `kubectl top node` and `kubectl top pod` print
//! the usage of a running pod; a Deployment whose pods spin (CPU request 20m, limit 100m) under
//! `kubectl autoscale --min=1 --max=3 --cpu-percent=50` grows to three replicas, and the
//! autoscaler's status, conditions and events say why.
//!
//! Needs root, containerd, runc, the CNI plugins, nft, gcc and busybox-static. Without them the
//! test is skipped with a message, except under `CI=true`, where it fails.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use meso_tests::{poll_until, Kubectl, MesoServer};
use serde_json::Value;

const SPIN: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: spin
spec:
  replicas: 1
  selector:
    matchLabels: {app: spin}
  template:
    metadata:
      labels: {app: spin}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: spin
        image: busybox:stable
        command: ["sh", "-c", "while :; do :; done"]
        resources:
          requests: {cpu: 20m}
          limits: {cpu: 100m}
"#;

struct Cluster {
    srv: MesoServer,
    k: Kubectl,
    node: String,
}

impl Cluster {
    fn kubectl(&self, args: &[&str]) -> Result<String> {
        self.srv
            .kubectl_ok(&self.k, args)
            .map_err(|e| e.context(self.srv.log_tail(40)))
    }

    /// Polls `f` about twice a second (each attempt runs kubectl).
    fn wait<T>(
        &self,
        timeout: Duration,
        what: &str,
        mut f: impl FnMut() -> Result<Option<T>>,
    ) -> Result<T> {
        poll_until(timeout, what, || {
            let r = f();
            if !matches!(r, Ok(Some(_))) {
                std::thread::sleep(Duration::from_millis(500));
            }
            r
        })
        .map_err(|e| e.context(self.srv.log_tail(40)))
    }
}

#[test]
fn kubectl_top_and_horizontal_pod_autoscaler() -> Result<()> {
    if !meso_tests::pod_prerequisites("autoscaling e2e") {
        return Ok(());
    }
    let Some(k) = meso_tests::kubectl_135() else {
        return Ok(());
    };
    let started = Instant::now();
    let images = meso_tests::image_archives(
        &PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("meso-images"),
    )?;
    let (srv, node) = MesoServer::start_cluster(
        "hpa",
        &[
            "--metric-resolution=2s",
            "--horizontal-pod-autoscaler-sync-period=3s",
        ],
        images,
    )?;
    let mut c = Cluster { srv, k, node };
    let result = scenario(&c);
    // Every pod goes before the server stops, so no container outlives the test.
    c.srv.remove_pods(&c.k, "hpa,deployments");
    let stopped = c.srv.stop();
    result?;
    stopped?;
    eprintln!("autoscaling e2e took {:?}", started.elapsed());
    Ok(())
}

fn scenario(c: &Cluster) -> Result<()> {
    c.srv
        .wait_node_ready(&c.k, &c.node, Duration::from_secs(90))?;
    // Discovery lists the group as metrics-server's aggregated API would.
    let groups = c.kubectl(&["api-versions"])?;
    ensure!(
        groups.lines().any(|l| l == "metrics.k8s.io/v1beta1"),
        "metrics.k8s.io/v1beta1 not in api-versions:\n{groups}"
    );

    c.srv.kubectl_stdin_ok(&c.k, &["apply", "-f", "-"], SPIN)?;
    c.wait(Duration::from_secs(90), "the spin pod running", || {
        let out = c.kubectl(&[
            "get",
            "pods",
            "-l",
            "app=spin",
            "-o",
            "jsonpath={.items[*].status.phase}",
        ])?;
        Ok((out.trim() == "Running").then_some(()))
    })?;
    let pod = c.kubectl(&[
        "get",
        "pods",
        "-l",
        "app=spin",
        "-o",
        "jsonpath={.items[0].metadata.name}",
    ])?;

    // kubectl top node: the node with CPU in millicores and memory in Mi.
    let top_node = c.wait(Duration::from_secs(40), "kubectl top node", || {
        let out = c.srv.kubectl(&c.k, &["top", "node"])?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        Ok((out.status.success() && text.contains(&c.node)).then_some(text))
    })?;
    let line = top_node
        .lines()
        .find(|l| l.starts_with(&c.node))
        .unwrap_or_default();
    let fields: Vec<&str> = line.split_whitespace().collect();
    ensure!(
        fields.len() == 5
            && fields[1].trim_end_matches('m').parse::<u64>().is_ok()
            && fields[3].ends_with("Mi")
            && fields[4].ends_with('%'),
        "kubectl top node:\n{top_node}"
    );

    // kubectl top pod: the spinning pod uses CPU (its limit is 100m).
    let top_pod = c.wait(Duration::from_secs(40), "kubectl top pod", || {
        let out = c.srv.kubectl(&c.k, &["top", "pod"])?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        Ok((out.status.success() && text.contains(&pod)).then_some(text))
    })?;
    let line = top_pod
        .lines()
        .find(|l| l.starts_with(&pod))
        .unwrap_or_default();
    let fields: Vec<&str> = line.split_whitespace().collect();
    let millicores: u64 = fields
        .get(1)
        .and_then(|f| f.strip_suffix('m'))
        .and_then(|f| f.parse().ok())
        .with_context(|| format!("kubectl top pod:\n{top_pod}"))?;
    ensure!(
        millicores >= 10 && fields.get(2).is_some_and(|m| m.ends_with("Mi")),
        "the spinning pod should use CPU:\n{top_pod}"
    );
    let containers = c.kubectl(&["top", "pod", "-A", "--containers"])?;
    ensure!(
        containers
            .lines()
            .any(|l| l.starts_with("default") && l.contains(&pod) && l.contains(" spin ")),
        "kubectl top pod -A --containers:\n{containers}"
    );
    // NodeMetrics as metrics-server writes it.
    let nodes: Value = serde_json::from_str(&c.kubectl(&[
        "get",
        "--raw",
        "/apis/metrics.k8s.io/v1beta1/nodes",
    ])?)?;
    let item = &nodes["items"][0];
    ensure!(
        nodes["kind"] == "NodeMetricsList"
            && item["kind"] == "NodeMetrics"
            && item["metadata"]["name"] == c.node.as_str()
            && item["window"].as_str().is_some_and(|w| w.ends_with('s'))
            && item["timestamp"].as_str().is_some_and(|t| t.ends_with('Z'))
            && item["usage"]["cpu"].is_string()
            && item["usage"]["memory"].is_string(),
        "NodeMetricsList: {nodes}"
    );
    // metrics-server's NotFound for a pod without metrics.
    let out = c.srv.kubectl(
        &c.k,
        &[
            "get",
            "--raw",
            "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/nope",
        ],
    )?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success() && err.contains("podmetrics.metrics.k8s.io \"nope\" not found"),
        "a pod without metrics: {err}"
    );

    // The autoscaler: 100m used of a 20m request is far above 50%, so it grows to max.
    c.kubectl(&[
        "autoscale",
        "deployment",
        "spin",
        "--min=1",
        "--max=3",
        "--cpu-percent=50",
    ])?;
    c.wait(
        Duration::from_secs(60),
        "the deployment scaled to 3",
        || {
            let r = c.kubectl(&[
                "get",
                "deployment",
                "spin",
                "-o",
                "jsonpath={.spec.replicas}",
            ])?;
            Ok((r.trim() == "3").then_some(()))
        },
    )?;
    let hpa: Value = c.wait(Duration::from_secs(20), "the HPA status", || {
        let v: Value = serde_json::from_str(&c.kubectl(&["get", "hpa", "spin", "-o", "json"])?)?;
        Ok(
            (v["status"]["desiredReplicas"] == 3 && v["status"]["lastScaleTime"].is_string())
                .then_some(v),
        )
    })?;
    let status = &hpa["status"];
    let condition = |t: &str| {
        status["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == t)
            .cloned()
            .unwrap_or(Value::Null)
    };
    ensure!(
        condition("AbleToScale")["status"] == "True",
        "AbleToScale: {status}"
    );
    ensure!(
        condition("ScalingActive")["status"] == "True"
            && condition("ScalingActive")["reason"] == "ValidMetricFound",
        "ScalingActive: {status}"
    );
    ensure!(
        condition("ScalingLimited")["reason"] == "TooManyReplicas",
        "ScalingLimited: {status}"
    );
    let utilization = status["currentMetrics"][0]["resource"]["current"]["averageUtilization"]
        .as_i64()
        .unwrap_or(0);
    ensure!(
        status["currentMetrics"][0]["resource"]["name"] == "cpu" && utilization > 50,
        "currentMetrics: {status}"
    );
    ensure!(
        hpa["status"]["observedGeneration"] == hpa["metadata"]["generation"],
        "observedGeneration: {status}"
    );
    let events = c.kubectl(&[
        "get",
        "events",
        "-o",
        "jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}",
    ])?;
    ensure!(
        events
            .lines()
            .any(|l| l.starts_with("SuccessfulRescale: New size: ")
                && l.ends_with(
                    "reason: cpu resource utilization (percentage of request) above target"
                )),
        "events:\n{events}"
    );
    Ok(())
}
