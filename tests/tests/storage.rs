//! Persistent volumes end to end (issues 5/6): a real `meso server` as root with its local
//! agent (its own containerd), as `deploy/up.sh` runs it. A StatefulSet of 2 with a
//! `volumeClaimTemplate` and no StorageClass named gets the default `local-path` class; each
//! pod writes into its volume; a deleted pod is recreated by the controller on the same
//! claim and finds its file again; deleting the claims deletes the volumes (reclaim `Delete`)
//! and the agent removes their directories.
//!
//! Needs root, containerd, runc, the CNI plugins, nft, gcc and busybox-static. Without them the
//! test is skipped with a message, except under `CI=true`, where it fails.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use meso_tests::{poll_until, Kubectl, MesoServer};

const SET: &str = r#"
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
spec:
  serviceName: db
  replicas: 2
  selector:
    matchLabels: {app: db}
  template:
    metadata:
      labels: {app: db}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: db
        image: busybox:stable
        command: ["sh", "-c", "test -f /data/first || hostname > /data/first; echo started >> /data/starts; exec sleep 3600"]
        volumeMounts:
        - {name: data, mountPath: /data}
  volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      accessModes: [ReadWriteOnce]
      resources:
        requests:
          storage: 16Mi
"#;

struct Cluster {
    srv: MesoServer,
    k: Kubectl,
}

impl Cluster {
    fn kubectl(&self, args: &[&str]) -> Result<String> {
        self.srv
            .kubectl_ok(&self.k, args)
            .map_err(|e| e.context(self.srv.log_tail(40)))
    }

    fn jsonpath(&self, args: &[&str], path: &str) -> Result<String> {
        let jp = format!("jsonpath={path}");
        let mut all = args.to_vec();
        all.extend_from_slice(&["-o", &jp]);
        Ok(self.kubectl(&all)?.trim().to_string())
    }

    /// `(uid, phase)` of a pod, once it runs.
    fn running(&self, pod: &str) -> Result<Option<String>> {
        let out = self.srv.kubectl(
            &self.k,
            &[
                "get",
                "pod",
                pod,
                "-o",
                "jsonpath={.metadata.uid} {.status.phase} {.metadata.deletionTimestamp}",
            ],
        )?;
        let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let f: Vec<&str> = s.split_whitespace().collect();
        Ok((f.len() == 2 && f[1] == "Running").then(|| f[0].to_string()))
    }
}

#[test]
fn stateful_set_keeps_its_data_across_pod_restarts() -> Result<()> {
    if !meso_tests::pod_prerequisites("storage e2e") {
        return Ok(());
    }
    let Some(k) = meso_tests::kubectl_135() else {
        return Ok(());
    };
    let images = meso_tests::image_archives(
        &PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("meso-images"),
    )?;
    let (srv, node) = MesoServer::start_cluster("st", &["--agent-arg=--proxy-mode=none"], images)?;
    let mut c = Cluster { srv, k };
    let result = scenario(&c, &node);
    if result.is_err() {
        c.srv.remove_pods(&c.k, "statefulsets");
    }
    let stopped = c.srv.stop();
    result?;
    stopped?;
    Ok(())
}

fn scenario(c: &Cluster, node: &str) -> Result<()> {
    c.srv.wait_node_ready(&c.k, node, Duration::from_secs(90))?;
    let storage = c.srv.data_dir().join("agent/storage");
    c.srv
        .kubectl_stdin_ok(&c.k, &["apply", "-f", "-"], SET)
        .map_err(|e| e.context(c.srv.log_tail(40)))?;
    for pod in ["db-0", "db-1"] {
        poll_until(Duration::from_secs(120), &format!("{pod} running"), || {
            c.running(pod)
        })
        .map_err(|e| e.context(c.srv.log_tail(60)))?;
    }
    // Each claim got the default class, a provisioned volume on this node, and is Bound.
    let mut dirs = Vec::new();
    for pod in ["db-0", "db-1"] {
        let claim = format!("data-{pod}");
        let got = c.jsonpath(
            &["get", "pvc", &claim],
            "{.spec.storageClassName} {.status.phase} {.spec.volumeName}",
        )?;
        let f: Vec<&str> = got.split_whitespace().collect();
        ensure!(
            f.len() == 3 && f[0] == "local-path" && f[1] == "Bound",
            "claim {claim}: {got}"
        );
        let path = c.jsonpath(&["get", "pv", f[2]], "{.spec.hostPath.path}")?;
        let expected = storage.join(format!("{}_default_{claim}", f[2]));
        ensure!(
            Path::new(&path) == expected,
            "volume {} at {path}, expected {}",
            f[2],
            expected.display()
        );
        let first = std::fs::read_to_string(expected.join("first"))
            .with_context(|| format!("the file {pod} wrote in {}", expected.display()))?;
        ensure!(first.trim() == pod, "{pod} wrote {first:?}");
        dirs.push(expected);
    }
    // The pod is deleted; the controller recreates it on the same claim, which still holds
    // the file the first instance wrote.
    let old = c.running("db-0")?.context("db-0 not running")?;
    c.kubectl(&["delete", "pod", "db-0", "--wait=false"])?;
    poll_until(
        Duration::from_secs(120),
        "db-0 recreated and running",
        || Ok(c.running("db-0")?.filter(|uid| *uid != old)),
    )
    .map_err(|e| e.context(c.srv.log_tail(60)))?;
    let first = c.kubectl(&["exec", "db-0", "--", "cat", "/data/first"])?;
    ensure!(
        first.trim() == "db-0",
        "after the restart /data/first is {first:?}"
    );
    let starts = c.kubectl(&["exec", "db-0", "--", "cat", "/data/starts"])?;
    ensure!(
        starts.lines().filter(|l| *l == "started").count() == 2,
        "two starts recorded in the volume: {starts:?}"
    );
    // Deleting the set and its claims deletes the volumes (Delete) and their directories.
    c.kubectl(&["delete", "statefulset", "db"])?;
    poll_until(Duration::from_secs(60), "pods gone", || {
        let pods = c.kubectl(&["get", "pods", "-o", "name"])?;
        Ok(pods.trim().is_empty().then_some(()))
    })?;
    c.kubectl(&["delete", "pvc", "data-db-0", "data-db-1", "--wait=false"])?;
    poll_until(Duration::from_secs(60), "volumes deleted", || {
        let pvs = c.kubectl(&["get", "pv", "-o", "name"])?;
        Ok(pvs.trim().is_empty().then_some(()))
    })?;
    poll_until(
        Duration::from_secs(60),
        "volume directories removed",
        || Ok(dirs.iter().all(|d| !d.exists()).then_some(())),
    )?;
    Ok(())
}
