//! StatefulSets, DaemonSets and the Job failure and success policies against a real
//! `meso server`, driven with kubectl 1.32; pods are played by the simulated kubelet of
//! `common` (or marked Ready by hand where the test checks ordering).

use crate::common;

use anyhow::Result;
use common::{count_pods, Cluster, Sim};
use serde_json::{json, Value};

const STATEFUL_SET: &str = r#"
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web, namespace: sts}
spec:
  replicas: 3
  serviceName: web
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: c
        image: "busybox:1"
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Mi}}
"#;

fn pod_names(c: &Cluster, ns: &str) -> Result<Vec<String>> {
    let mut names: Vec<String> = c
        .items(&["get", "pods", "-n", ns])?
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .filter_map(|p| p["metadata"]["name"].as_str().map(String::from))
        .collect();
    names.sort();
    Ok(names)
}

fn rollout_status(c: &Cluster, what: &str, ns: &str) -> Result<String> {
    c.kubectl(&["rollout", "status", what, "-n", ns, "--timeout=90s"])
}

fn image_of(c: &Cluster, ns: &str, pod: &str) -> Result<String> {
    let p = c.json(&["get", "pod", pod, "-n", ns])?;
    Ok(p["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

#[test]
fn statefulset_ordered_claims_scale_down_and_partitioned_update() -> Result<()> {
    let Some(c) = Cluster::start()? else {
        return Ok(());
    };
    // No simulated kubelet at first: the test marks each pod Ready itself, so it sees that
    // the next one only comes after.
    c.namespace("sts", None)?;
    c.apply(STATEFUL_SET)?;
    for i in 0..3 {
        let pod = format!("web-{i}");
        c.wait(&format!("{pod} created"), 30, |c| {
            Ok(pod_names(c, "sts")?.contains(&pod).then_some(()))
        })?;
        // The claim comes before the pod, and the pod uses it.
        let claim = c.json(&["get", "pvc", &format!("data-web-{i}"), "-n", "sts"])?;
        assert_eq!(claim["metadata"]["labels"]["app"], "web", "{claim}");
        let p = c.json(&["get", "pod", &pod, "-n", "sts"])?;
        assert_eq!(p["spec"]["hostname"], pod);
        assert_eq!(p["spec"]["subdomain"], "web");
        let labels = &p["metadata"]["labels"];
        assert_eq!(labels["statefulset.kubernetes.io/pod-name"], pod);
        assert_eq!(labels["apps.kubernetes.io/pod-index"], i.to_string());
        assert!(
            labels["controller-revision-hash"]
                .as_str()
                .is_some_and(|h| h.starts_with("web-")),
            "{labels}"
        );
        let volume = p["spec"]["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|v| v["name"] == "data")
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            volume["persistentVolumeClaim"]["claimName"],
            format!("data-web-{i}")
        );
        assert_eq!(p["metadata"]["ownerReferences"][0]["kind"], "StatefulSet");
        // OrderedReady: nothing more while this one is not Ready.
        std::thread::sleep(std::time::Duration::from_secs(2));
        assert_eq!(pod_names(&c, "sts")?.len(), i + 1);
        c.set_pod_status("sts", &pod, Sim::Ready)?;
    }
    // kubectl reads the (defaulted) partition 0 as a partitioned roll out.
    let out = rollout_status(&c, "statefulset/web", "sts")?;
    assert!(out.contains("roll out complete: 3 new pods"), "{out}");
    let set = c.json(&["get", "statefulset", "web", "-n", "sts"])?;
    let st = &set["status"];
    assert_eq!(st["replicas"], 3);
    assert_eq!(st["readyReplicas"], 3);
    assert_eq!(st["availableReplicas"], 3);
    assert_eq!(st["currentReplicas"], 3);
    assert_eq!(st["updatedReplicas"], 3);
    assert_eq!(st["currentRevision"], st["updateRevision"]);
    assert_eq!(st["observedGeneration"], set["metadata"]["generation"]);
    let revisions = c.items(&["get", "controllerrevisions", "-n", "sts"])?;
    assert_eq!(revisions.len(), 1);
    assert_eq!(revisions[0]["metadata"]["name"], st["updateRevision"]);
    assert_eq!(revisions[0]["revision"], 1);

    // From here on the simulated kubelet makes new pods Ready.
    c.sims
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .insert("sts".into(), Sim::Ready);
    c.kubectl(&["scale", "statefulset/web", "-n", "sts", "--replicas=2"])?;
    c.wait("web-2 removed", 30, |c| {
        Ok((pod_names(c, "sts")? == ["web-0", "web-1"]).then_some(()))
    })?;
    // The claim is retained (the default policy).
    c.json(&["get", "pvc", "data-web-2", "-n", "sts"])?;

    // A partitioned rolling update replaces only the ordinals at or above the partition.
    c.kubectl(&[
        "patch",
        "statefulset/web",
        "-n",
        "sts",
        "--type=merge",
        "-p",
        r#"{"spec":{"updateStrategy":{"type":"RollingUpdate","rollingUpdate":{"partition":1}},
            "template":{"spec":{"containers":[{"name":"c","image":"busybox:2"}]}}}}"#,
    ])?;
    let out = rollout_status(&c, "statefulset/web", "sts")?;
    assert!(out.contains("roll out complete: 1 new pods"), "{out}");
    assert_eq!(image_of(&c, "sts", "web-1")?, "busybox:2");
    assert_eq!(image_of(&c, "sts", "web-0")?, "busybox:1");
    let set = c.json(&["get", "statefulset", "web", "-n", "sts"])?;
    assert_ne!(
        set["status"]["currentRevision"],
        set["status"]["updateRevision"]
    );
    assert_eq!(set["status"]["updatedReplicas"], 1);

    // Partition 0 finishes the update; history lists both revisions; undo goes back.
    c.kubectl(&[
        "patch",
        "statefulset/web",
        "-n",
        "sts",
        "--type=merge",
        "-p",
        r#"{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}"#,
    ])?;
    let out = rollout_status(&c, "statefulset/web", "sts")?;
    assert!(out.contains("roll out complete: 2 new pods"), "{out}");
    assert_eq!(image_of(&c, "sts", "web-0")?, "busybox:2");
    let history = c.kubectl(&["rollout", "history", "statefulset/web", "-n", "sts"])?;
    assert!(history.contains('1') && history.contains('2'), "{history}");
    c.kubectl(&["rollout", "undo", "statefulset/web", "-n", "sts"])?;
    let out = rollout_status(&c, "statefulset/web", "sts")?;
    assert!(out.contains("roll out complete: 2 new pods"), "{out}");
    assert_eq!(image_of(&c, "sts", "web-0")?, "busybox:1");
    assert_eq!(image_of(&c, "sts", "web-1")?, "busybox:1");
    let revisions = c.items(&["get", "controllerrevisions", "-n", "sts"])?;
    let mut numbers: Vec<i64> = revisions
        .iter()
        .filter_map(|r| r["revision"].as_i64())
        .collect();
    numbers.sort();
    // The first template's revision was renumbered to 3 by the rollback.
    assert_eq!(numbers, vec![2, 3], "{revisions:?}");

    // A retention policy set later reaches the existing claims of the live pods.
    c.kubectl(&[
        "patch",
        "statefulset/web",
        "-n",
        "sts",
        "--type=merge",
        "-p",
        r#"{"spec":{"persistentVolumeClaimRetentionPolicy":{"whenDeleted":"Delete"}}}"#,
    ])?;
    c.wait("claims owned by the set", 30, |c| {
        let owned = |claim: &str| -> Result<bool> {
            let pvc = c.json(&["get", "pvc", claim, "-n", "sts"])?;
            Ok(pvc["metadata"]["ownerReferences"][0]["kind"] == "StatefulSet")
        };
        Ok((owned("data-web-0")? && owned("data-web-1")?).then_some(()))
    })?;
    Ok(())
}

#[test]
fn statefulset_parallel_deletes_claims_when_asked() -> Result<()> {
    let Some(c) = Cluster::start()? else {
        return Ok(());
    };
    c.namespace("sts", None)?;
    c.apply(
        &STATEFUL_SET
            .replace(
                "serviceName: web",
                "serviceName: web\n  podManagementPolicy: Parallel\n  persistentVolumeClaimRetentionPolicy: {whenDeleted: Delete, whenScaled: Delete}",
            ),
    )?;
    // Parallel: all three at once, none of them Ready.
    c.wait("3 pods at once", 30, |c| {
        Ok((pod_names(c, "sts")?.len() == 3).then_some(()))
    })?;
    let claim = c.json(&["get", "pvc", "data-web-1", "-n", "sts"])?;
    assert_eq!(
        claim["metadata"]["ownerReferences"][0]["kind"],
        "StatefulSet"
    );
    // OnDelete: a new template reaches a pod only when that pod is deleted.
    c.kubectl(&[
        "patch",
        "statefulset/web",
        "-n",
        "sts",
        "--type=merge",
        "-p",
        r#"{"spec":{"updateStrategy":{"type":"OnDelete","rollingUpdate":null},
            "template":{"spec":{"containers":[{"name":"c","image":"busybox:2"}]}}}}"#,
    ])?;
    c.wait("new update revision", 30, |c| {
        let set = c.json(&["get", "statefulset", "web", "-n", "sts"])?;
        let st = &set["status"];
        Ok((st["observedGeneration"] == set["metadata"]["generation"]
            && st["updateRevision"] != st["currentRevision"])
            .then_some(()))
    })?;
    assert_eq!(image_of(&c, "sts", "web-0")?, "busybox:1");
    c.kubectl(&["delete", "pod", "web-0", "-n", "sts"])?;
    c.wait("web-0 recreated on the new template", 30, |c| {
        Ok(image_of(c, "sts", "web-0")
            .ok()
            .filter(|i| i == "busybox:2")
            .map(drop))
    })?;
    assert_eq!(image_of(&c, "sts", "web-1")?, "busybox:1");
    c.kubectl(&["scale", "statefulset/web", "-n", "sts", "--replicas=1"])?;
    c.wait("scaled down with its claims", 30, |c| {
        let claims: Vec<String> = c
            .items(&["get", "pvc", "-n", "sts"])?
            .iter()
            .filter_map(|p| p["metadata"]["name"].as_str().map(String::from))
            .collect();
        Ok((pod_names(c, "sts")? == ["web-0"] && claims == ["data-web-0"]).then_some(()))
    })?;
    // whenDeleted: Delete: the claims go with the set.
    c.kubectl(&["delete", "statefulset/web", "-n", "sts"])?;
    c.wait("set, pods and claims gone", 30, |c| {
        Ok(
            (pod_names(c, "sts")?.is_empty() && c.items(&["get", "pvc", "-n", "sts"])?.is_empty())
                .then_some(()),
        )
    })?;
    Ok(())
}

const DAEMON_SET: &str = r#"
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: ds}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: c, image: "busybox:1"}]}
"#;

fn nodes_of(c: &Cluster) -> Result<Vec<String>> {
    let mut nodes: Vec<String> = c
        .items(&["get", "pods", "-n", "ds", "-l", "app=agent"])?
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .filter_map(|p| p["spec"]["nodeName"].as_str().map(String::from))
        .collect();
    nodes.sort();
    Ok(nodes)
}

fn daemon_images(c: &Cluster) -> Result<Vec<String>> {
    let pods = c.items(&["get", "pods", "-n", "ds", "-l", "app=agent"])?;
    Ok(pods
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .filter_map(|p| {
            p["spec"]["containers"][0]["image"]
                .as_str()
                .map(String::from)
        })
        .collect())
}

#[test]
fn daemonset_one_pod_per_eligible_node_and_rolling_update() -> Result<()> {
    let Some(c) = Cluster::start()? else {
        return Ok(());
    };
    c.node("n1", json!({"zone": "a"}), json!([]))?;
    c.node("n2", json!({"zone": "b"}), json!([]))?;
    c.node(
        "n3",
        json!({"zone": "c"}),
        json!([{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]),
    )?;
    c.namespace("ds", Some(Sim::Ready))?;
    c.apply(DAEMON_SET)?;
    c.wait("pods on n1 and n2", 30, |c| {
        Ok((nodes_of(c)? == ["n1", "n2"]).then_some(()))
    })?;
    let out = rollout_status(&c, "daemonset/agent", "ds")?;
    assert!(out.contains("successfully rolled out"), "{out}");
    let pods = c.items(&["get", "pods", "-n", "ds"])?;
    for p in &pods {
        let term = &p["spec"]["affinity"]["nodeAffinity"]
            ["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0];
        assert_eq!(term["matchFields"][0]["key"], "metadata.name", "{p}");
        assert_eq!(term["matchFields"][0]["values"][0], p["spec"]["nodeName"]);
        let tolerations: Vec<&Value> = p["spec"]["tolerations"]
            .as_array()
            .into_iter()
            .flatten()
            .collect();
        for key in [
            "node.kubernetes.io/not-ready",
            "node.kubernetes.io/unreachable",
            "node.kubernetes.io/disk-pressure",
            "node.kubernetes.io/memory-pressure",
            "node.kubernetes.io/pid-pressure",
            "node.kubernetes.io/unschedulable",
        ] {
            assert!(
                tolerations.iter().any(|t| t["key"] == key),
                "{key}: {tolerations:?}"
            );
        }
        assert!(p["metadata"]["labels"]["controller-revision-hash"].is_string());
        assert_eq!(p["metadata"]["ownerReferences"][0]["kind"], "DaemonSet");
    }
    let ds = c.json(&["get", "daemonset", "agent", "-n", "ds"])?;
    let st = &ds["status"];
    assert_eq!(st["desiredNumberScheduled"], 2, "{st}");
    assert_eq!(st["currentNumberScheduled"], 2);
    assert_eq!(st["numberReady"], 2);
    assert_eq!(st["numberAvailable"], 2);
    assert_eq!(st["updatedNumberScheduled"], 2);
    assert_eq!(st["numberMisscheduled"], 0);

    // A new node gets its pod.
    c.node("n4", json!({"zone": "a"}), json!([]))?;
    c.wait("a pod on n4", 30, |c| {
        Ok((nodes_of(c)? == ["n1", "n2", "n4"]).then_some(()))
    })?;

    // A rolling update replaces them all; history and undo work on the revisions.
    c.kubectl(&["set", "image", "daemonset/agent", "-n", "ds", "c=busybox:2"])?;
    let out = rollout_status(&c, "daemonset/agent", "ds")?;
    assert!(out.contains("successfully rolled out"), "{out}");
    c.wait("3 updated pods", 30, |c| {
        Ok((daemon_images(c)? == ["busybox:2"; 3]).then_some(()))
    })?;
    let history = c.kubectl(&["rollout", "history", "daemonset/agent", "-n", "ds"])?;
    assert!(history.contains('1') && history.contains('2'), "{history}");
    // The way back surges: a new pod next to the old one, which goes once the new is ready.
    c.kubectl(&[
        "patch",
        "daemonset/agent",
        "-n",
        "ds",
        "--type=merge",
        "-p",
        r#"{"spec":{"updateStrategy":{"rollingUpdate":{"maxSurge":1,"maxUnavailable":0}}}}"#,
    ])?;
    c.kubectl(&["rollout", "undo", "daemonset/agent", "-n", "ds"])?;
    let out = rollout_status(&c, "daemonset/agent", "ds")?;
    assert!(out.contains("successfully rolled out"), "{out}");
    let ds = c.json(&["get", "daemonset", "agent", "-n", "ds"])?;
    assert_eq!(
        ds["spec"]["template"]["spec"]["containers"][0]["image"],
        "busybox:1"
    );
    c.wait("3 pods back on the first template", 30, |c| {
        Ok((daemon_images(c)? == ["busybox:1"; 3]).then_some(()))
    })?;
    assert_eq!(count_pods(&c, "ds", "app=agent")?, 3);
    Ok(())
}

fn job_condition(c: &Cluster, ns: &str, name: &str, type_: &str) -> Result<Option<(Value, Value)>> {
    let j = c.json(&["get", "job", name, "-n", ns])?;
    let cond = j["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == type_ && c["status"] == "True")
        .cloned();
    Ok(cond.map(|cond| (j, cond)))
}

#[test]
fn job_pod_failure_and_success_policies() -> Result<()> {
    let Some(c) = Cluster::start()? else {
        return Ok(());
    };
    c.namespace("exit42", Some(Sim::FailWith(42)))?;
    c.namespace("ok", Some(Sim::Succeed))?;
    c.namespace("exit3", Some(Sim::FailWith(3)))?;
    c.apply(
        r#"
apiVersion: batch/v1
kind: Job
metadata: {name: strict, namespace: exit42}
spec:
  backoffLimit: 6
  podFailurePolicy:
    rules:
    - action: Ignore
      onPodConditions: [{type: DisruptionTarget}]
    - action: FailJob
      onExitCodes: {containerName: c, operator: In, values: [42]}
  template:
    spec: {restartPolicy: Never, containers: [{name: c, image: busybox}]}
---
apiVersion: batch/v1
kind: Job
metadata: {name: leader, namespace: ok}
spec:
  completions: 3
  parallelism: 1
  completionMode: Indexed
  successPolicy:
    rules: [{succeededIndexes: "0", succeededCount: 1}]
  template:
    spec: {restartPolicy: Never, containers: [{name: c, image: busybox}]}
---
apiVersion: batch/v1
kind: Job
metadata: {name: per-index, namespace: exit3}
spec:
  completions: 2
  parallelism: 2
  completionMode: Indexed
  backoffLimitPerIndex: 1
  podFailurePolicy:
    rules: [{action: FailIndex, onExitCodes: {operator: In, values: [3]}}]
  template:
    spec: {restartPolicy: Never, containers: [{name: c, image: busybox}]}
"#,
    )?;
    let (j, failed) = c.wait("strict fails at the first exit code 42", 60, |c| {
        job_condition(c, "exit42", "strict", "Failed")
    })?;
    assert_eq!(failed["reason"], "PodFailurePolicy", "{failed}");
    let message = failed["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("exit code 42") && message.contains("FailJob rule at index 1"),
        "{message}"
    );
    assert_eq!(j["status"]["failed"], 1);
    assert!(job_condition(&c, "exit42", "strict", "FailureTarget")?.is_some());

    let (j, complete) = c.wait("leader completes by its success policy", 60, |c| {
        job_condition(c, "ok", "leader", "Complete")
    })?;
    assert_eq!(complete["reason"], "SuccessPolicy", "{complete}");
    let (_, criteria) = job_condition(&c, "ok", "leader", "SuccessCriteriaMet")?
        .ok_or_else(|| anyhow::anyhow!("no SuccessCriteriaMet"))?;
    assert_eq!(criteria["reason"], "SuccessPolicy");
    assert_eq!(j["status"]["succeeded"], 1);
    assert_eq!(j["status"]["completedIndexes"], "0");

    // FailIndex: each index fails at its first failure (not after backoffLimitPerIndex 1
    // more); the job fails once no index is left.
    let (j, failed) = c.wait("per-index fails", 60, |c| {
        job_condition(c, "exit3", "per-index", "Failed")
    })?;
    assert_eq!(failed["reason"], "FailedIndexes", "{failed}");
    assert_eq!(j["status"]["failedIndexes"], "0,1");
    assert_eq!(j["status"]["failed"], 2);
    Ok(())
}
