//! Persistent volumes against a real `meso server`, with the controller manager (PV binder,
//! protection controllers, local-path provisioner) and the scheduler in-process and simulated
//! nodes (no kubelet, no containerd): a claim binds to a matching static volume; a
//! WaitForFirstConsumer claim of the default `local-path` class waits for its pod, gets the
//! scheduler's `selected-node`, a provisioned `hostPath` volume on that node and is bound
//! before the pod is; deleting a claim releases its volume (Retain keeps it, Delete deletes
//! it).

use crate::common;

use std::time::Duration;

use anyhow::{ensure, Result};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

/// The scheduler, run in a thread of its own until dropped.
struct Scheduler {
    stop: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Scheduler {
    fn start(c: &common::Cluster) -> Scheduler {
        let stop = CancellationToken::new();
        let config = meso_scheduler::SchedulerConfig {
            kubeconfig: Some(c.server.kubeconfig()),
            metrics_bind_address: "0".into(),
            leader_elect: false,
            ..Default::default()
        };
        let token = stop.clone();
        let thread = std::thread::spawn(move || {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => return eprintln!("runtime: {e}"),
            };
            if let Err(e) = rt.block_on(meso_scheduler::run(config, token)) {
                eprintln!("scheduler: {e:#}");
            }
        });
        Scheduler {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A Ready node with room for pods, labelled with its hostname.
fn node(c: &common::Cluster, name: &str) -> Result<()> {
    c.node(name, json!({"kubernetes.io/hostname": name}), json!([]))?;
    let status = json!({"status": {
        "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
        "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}});
    c.kubectl(&[
        "patch",
        "node",
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        &status.to_string(),
    ])?;
    Ok(())
}

fn get(c: &common::Cluster, args: &[&str]) -> Result<Option<Value>> {
    let mut a = args.to_vec();
    a.extend(["-o", "json", "--ignore-not-found"]);
    let out = c.kubectl(&a)?;
    if out.trim().is_empty() {
        return Ok(None);
    }
    Ok(Some(serde_json::from_str(&out)?))
}

fn reasons(c: &common::Cluster, ns: &str, kind: &str, name: &str) -> Result<Vec<String>> {
    Ok(c.items(&["get", "events", "-n", ns])?
        .iter()
        .filter(|e| e["involvedObject"]["kind"] == kind && e["involvedObject"]["name"] == name)
        .filter_map(|e| e["reason"].as_str().map(String::from))
        .collect())
}

#[test]
fn claims_bind_to_matching_static_volumes_and_release_them() -> Result<()> {
    let Some(c) = common::Cluster::start()? else {
        return Ok(());
    };
    c.namespace("static", None)?;
    let pv = |name: &str, size: &str, extra: Value| {
        let mut v = json!({"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": name, "labels": {"speed": "slow"}},
            "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
                     "storageClassName": "manual", "hostPath": {"path": format!("/tmp/{name}")}}});
        if let (Some(spec), Some(more)) = (v["spec"].as_object_mut(), extra.as_object()) {
            spec.extend(more.clone());
        }
        v.to_string()
    };
    c.apply(&pv("pv-small", "1Gi", json!({})))?;
    c.apply(&pv("pv-big", "5Gi", json!({})))?;
    c.apply(&pv(
        "pv-rox",
        "2Gi",
        json!({"accessModes": ["ReadOnlyMany"]}),
    ))?;
    c.apply(&pv(
        "pv-named",
        "1Gi",
        json!({"persistentVolumeReclaimPolicy": "Delete"}),
    ))?;
    let claim = |name: &str, size: &str, extra: Value| {
        let mut v = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": "static"},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "manual",
                     "resources": {"requests": {"storage": size}}}});
        if let (Some(spec), Some(more)) = (v["spec"].as_object_mut(), extra.as_object()) {
            spec.extend(more.clone());
        }
        v.to_string()
    };
    // 2Gi RWO of class manual: only pv-big fits (pv-rox has the wrong mode).
    c.apply(&claim("data", "2Gi", json!({})))?;
    let bound = c.wait("claim data bound", 30, |c| {
        Ok(get(c, &["get", "pvc", "data", "-n", "static"])?
            .filter(|p| p["status"]["phase"] == "Bound"))
    })?;
    assert_eq!(bound["spec"]["volumeName"], "pv-big");
    let ann = &bound["metadata"]["annotations"];
    assert_eq!(ann["pv.kubernetes.io/bind-completed"], "yes");
    assert_eq!(ann["pv.kubernetes.io/bound-by-controller"], "yes");
    assert_eq!(bound["status"]["capacity"]["storage"], "5Gi");
    let big = c.wait("pv-big Bound", 30, |c| {
        Ok(get(c, &["get", "pv", "pv-big"])?.filter(|p| p["status"]["phase"] == "Bound"))
    })?;
    assert_eq!(big["spec"]["claimRef"]["uid"], bound["metadata"]["uid"]);
    assert_eq!(
        big["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"],
        "yes"
    );
    // A claim naming its volume gets that one (not the smaller free pv-small); a selector
    // that matches no volume leaves a claim Pending.
    c.apply(&claim("named", "100Mi", json!({"volumeName": "pv-named"})))?;
    c.apply(&claim(
        "picky",
        "100Mi",
        json!({"selector": {"matchLabels": {"speed": "fast"}}}),
    ))?;
    c.wait("claim named bound", 30, |c| {
        Ok(get(c, &["get", "pvc", "named", "-n", "static"])?
            .filter(|p| p["status"]["phase"] == "Bound" && p["spec"]["volumeName"] == "pv-named"))
    })?;
    let picky = get(&c, &["get", "pvc", "picky", "-n", "static"])?.unwrap_or_default();
    assert_eq!(picky["status"]["phase"], "Pending");
    assert_eq!(picky["spec"]["volumeName"], Value::Null);
    // Deleting a claim releases its volume: Retain keeps it Released; Delete without a
    // provisioner fails as upstream (no deleter plugin).
    c.kubectl(&[
        "delete",
        "pvc",
        "data",
        "named",
        "-n",
        "static",
        "--wait=false",
    ])?;
    c.wait("claims gone (protection finalizer removed)", 30, |c| {
        let left = c.items(&["get", "pvc", "-n", "static"])?;
        Ok((left.len() == 1).then_some(()))
    })?;
    c.wait("pv-big Released", 30, |c| {
        Ok(get(c, &["get", "pv", "pv-big"])?.filter(|p| p["status"]["phase"] == "Released"))
    })?;
    c.wait("pv-named Failed", 30, |c| {
        Ok(get(c, &["get", "pv", "pv-named"])?.filter(|p| p["status"]["phase"] == "Failed"))
    })?;
    let small = get(&c, &["get", "pv", "pv-small"])?.unwrap_or_default();
    assert_eq!(small["status"]["phase"], "Available");
    // A released volume is not reused: a new claim that only it could satisfy stays Pending.
    c.apply(&claim("again", "4Gi", json!({})))?;
    std::thread::sleep(Duration::from_secs(2));
    let again = get(&c, &["get", "pvc", "again", "-n", "static"])?.unwrap_or_default();
    assert_eq!(again["status"]["phase"], "Pending");
    Ok(())
}

#[test]
fn wait_for_first_consumer_claims_are_provisioned_on_the_chosen_node() -> Result<()> {
    let Some(c) = common::Cluster::start()? else {
        return Ok(());
    };
    let _scheduler = Scheduler::start(&c);
    node(&c, "n1")?;
    c.namespace("wffc", None)?;
    // The provisioner creates the default class at start.
    let class = c.wait("default StorageClass", 30, |c| {
        get(c, &["get", "storageclass", "local-path"])
    })?;
    assert_eq!(class["provisioner"], "rancher.io/local-path");
    assert_eq!(class["volumeBindingMode"], "WaitForFirstConsumer");
    assert_eq!(class["reclaimPolicy"], "Delete");
    assert_eq!(
        class["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"],
        "true"
    );
    // A claim without a class gets the default one and waits for its first consumer.
    c.apply(
        &json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": "wffc"},
            "spec": {"accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "64Mi"}}}})
        .to_string(),
    )?;
    let pvc = get(&c, &["get", "pvc", "data", "-n", "wffc"])?.unwrap_or_default();
    assert_eq!(pvc["spec"]["storageClassName"], "local-path");
    c.wait("WaitForFirstConsumer event", 30, |c| {
        Ok(reasons(c, "wffc", "PersistentVolumeClaim", "data")?
            .iter()
            .any(|r| r == "WaitForFirstConsumer")
            .then_some(()))
    })?;
    std::thread::sleep(Duration::from_secs(1));
    let pvc = get(&c, &["get", "pvc", "data", "-n", "wffc"])?.unwrap_or_default();
    assert_eq!(pvc["status"]["phase"], "Pending");
    assert_eq!(
        pvc["metadata"]["annotations"]["volume.kubernetes.io/selected-node"],
        Value::Null
    );
    // Its pod: the scheduler selects n1, the volume is provisioned there, the claim is
    // bound, then the pod.
    c.apply(
        &json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "user", "namespace": "wffc"},
            "spec": {"containers": [{"name": "c", "image": "busybox",
                "volumeMounts": [{"name": "d", "mountPath": "/data"}]}],
                "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]}})
        .to_string(),
    )?;
    let pod = c.wait("pod bound", 60, |c| {
        Ok(get(c, &["get", "pod", "user", "-n", "wffc"])?
            .filter(|p| p["spec"]["nodeName"].is_string()))
    })?;
    assert_eq!(pod["spec"]["nodeName"], "n1");
    let pvc = get(&c, &["get", "pvc", "data", "-n", "wffc"])?.unwrap_or_default();
    assert_eq!(
        pvc["status"]["phase"], "Bound",
        "claim bound before its pod"
    );
    let ann = &pvc["metadata"]["annotations"];
    assert_eq!(ann["volume.kubernetes.io/selected-node"], "n1");
    assert_eq!(
        ann["volume.kubernetes.io/storage-provisioner"],
        "rancher.io/local-path"
    );
    let uid = pvc["metadata"]["uid"].as_str().unwrap_or_default();
    let pv_name = format!("pvc-{uid}");
    assert_eq!(pvc["spec"]["volumeName"], pv_name.as_str());
    let pv = get(&c, &["get", "pv", &pv_name])?.unwrap_or_default();
    assert_eq!(pv["status"]["phase"], "Bound");
    assert_eq!(
        pv["spec"]["hostPath"]["path"],
        format!("/var/lib/meso/agent/storage/{pv_name}_wffc_data").as_str()
    );
    assert_eq!(pv["spec"]["hostPath"]["type"], "DirectoryOrCreate");
    assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Delete");
    assert_eq!(
        pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]
            ["values"][0],
        "n1"
    );
    assert_eq!(
        pv["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"],
        "rancher.io/local-path"
    );
    let seen = reasons(&c, "wffc", "PersistentVolumeClaim", "data")?;
    for r in [
        "WaitForFirstConsumer",
        "ExternalProvisioning",
        "Provisioning",
        "ProvisioningSucceeded",
    ] {
        ensure!(seen.iter().any(|s| s == r), "no {r} event in {seen:?}");
    }
    // The claim is protected while its pod exists.
    c.kubectl(&["delete", "pvc", "data", "-n", "wffc", "--wait=false"])?;
    std::thread::sleep(Duration::from_secs(2));
    ensure!(
        get(&c, &["get", "pvc", "data", "-n", "wffc"])?.is_some(),
        "the claim went away while a pod used it"
    );
    // Without the pod the claim goes, its volume is released and (Delete) deleted.
    c.kubectl(&[
        "delete",
        "pod",
        "user",
        "-n",
        "wffc",
        "--grace-period=0",
        "--force",
    ])?;
    c.wait("claim deleted", 30, |c| {
        Ok(get(c, &["get", "pvc", "data", "-n", "wffc"])?
            .is_none()
            .then_some(()))
    })?;
    c.wait("volume deleted", 30, |c| {
        Ok(get(c, &["get", "pv", &pv_name])?.is_none().then_some(()))
    })?;
    Ok(())
}

#[test]
fn unbound_immediate_claims_keep_their_pod_pending() -> Result<()> {
    let Some(c) = common::Cluster::start()? else {
        return Ok(());
    };
    let _scheduler = Scheduler::start(&c);
    node(&c, "n1")?;
    c.namespace("imm", None)?;
    c.apply(
        &json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": "imm"},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "",
                     "resources": {"requests": {"storage": "1Gi"}}}})
        .to_string(),
    )?;
    c.apply(
        &json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "user", "namespace": "imm"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}],
                "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]}})
        .to_string(),
    )?;
    let pod = c.wait("pod unschedulable", 30, |c| {
        Ok(get(c, &["get", "pod", "user", "-n", "imm"])?.filter(|p| {
            p["status"]["conditions"]
                .as_array()
                .is_some_and(|cs| cs.iter().any(|c| c["reason"] == "Unschedulable"))
        }))
    })?;
    let msg = pod["status"]["conditions"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        msg.contains("pod has unbound immediate PersistentVolumeClaims"),
        "{msg}"
    );
    // A matching volume appears: the claim binds and the pod is scheduled.
    c.apply(
        &json!({"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": "pv-imm"},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                     "storageClassName": "", "hostPath": {"path": "/tmp/pv-imm"}}})
        .to_string(),
    )?;
    c.wait("pod bound", 60, |c| {
        Ok(get(c, &["get", "pod", "user", "-n", "imm"])?.filter(|p| p["spec"]["nodeName"] == "n1"))
    })?;
    Ok(())
}
