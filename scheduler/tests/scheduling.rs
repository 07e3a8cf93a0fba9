//! End to end: a real `meso server`, simulated nodes, the scheduler in-process.

mod common;

use std::collections::BTreeMap;

use anyhow::Result;
use common::*;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tainted_and_small_nodes_leave_the_third() -> Result<()> {
    let s = Server::start().await?;
    let c = &s.client;
    node(
        c,
        "tainted",
        json!({}),
        "4",
        json!({"taints": [{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]}),
    )
    .await?;
    node(c, "small", json!({}), "500m", json!({})).await?;
    node(c, "fits", json!({}), "4", json!({})).await?;
    let sched = start_scheduler(c, "a", false)?;
    pod(c, "p", json!({}), "1", json!({})).await?;
    assert_eq!(wait_bound(c, "p").await?, "fits");
    let scheduled = eventually(10, "Scheduled event", || async {
        Ok(events(c, "p", "Scheduled").await?.into_iter().next())
    })
    .await?;
    assert_eq!(scheduled, "Successfully assigned default/p to fits");
    let scheduled_once =
        "scheduler_schedule_attempts_total{profile=\"default-scheduler\",result=\"scheduled\"} 1";
    let metrics = eventually(10, "the scheduled metric", || async {
        let m = http_get(&sched.metrics).await?;
        Ok(m.contains(scheduled_once).then_some(m))
    })
    .await?;
    assert!(metrics.contains("scheduler_scheduling_attempt_duration_seconds_count"));
    assert!(metrics.contains("scheduler_pending_pods{queue=\"active\"} 0"));
    sched.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unschedulable_pod_waits_for_a_fitting_node() -> Result<()> {
    let s = Server::start().await?;
    let c = &s.client;
    node(c, "n1", json!({"disk": "ssd"}), "1", json!({})).await?;
    node(c, "n2", json!({"disk": "hdd"}), "8", json!({})).await?;
    node(c, "n3", json!({"disk": "hdd"}), "8", json!({})).await?;
    let sched = start_scheduler(c, "a", false)?;
    pod(
        c,
        "big",
        json!({}),
        "2",
        json!({"nodeSelector": {"disk": "ssd"}}),
    )
    .await?;
    let want = "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node affinity/selector. \
                preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.";
    let cond = eventually(20, "PodScheduled=False", || async {
        let p = get_pod(c, "big").await?;
        Ok(p.status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.type_ == "PodScheduled" && c.status == "False"))
    })
    .await?;
    assert_eq!(cond.reason.as_deref(), Some("Unschedulable"));
    assert_eq!(cond.message.as_deref(), Some(want));
    let ev = eventually(10, "FailedScheduling event", || async {
        Ok(events(c, "big", "FailedScheduling")
            .await?
            .into_iter()
            .next())
    })
    .await?;
    assert_eq!(ev, want);
    node(c, "ssd", json!({"disk": "ssd"}), "4", json!({})).await?;
    assert_eq!(wait_bound(c, "big").await?, "ssd");
    sched.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zone_spread_keeps_max_skew_one() -> Result<()> {
    let s = Server::start().await?;
    let c = &s.client;
    for (n, z) in [("a1", "a"), ("a2", "a"), ("a3", "a"), ("b1", "b")] {
        node(
            c,
            n,
            json!({"topology.kubernetes.io/zone": z}),
            "8",
            json!({}),
        )
        .await?;
    }
    let sched = start_scheduler(c, "a", false)?;
    let spread = json!({"topologySpreadConstraints": [{"maxSkew": 1,
        "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule",
        "labelSelector": {"matchLabels": {"app": "web"}}}]});
    let mut zones: BTreeMap<String, i32> = BTreeMap::new();
    // One at a time so each decision sees the previous (the assumed pods make that hold
    // in bulk too; this keeps the check exact).
    for i in 0..6 {
        let name = format!("web-{i}");
        pod(c, &name, json!({"app": "web"}), "100m", spread.clone()).await?;
        let n = wait_bound(c, &name).await?;
        *zones.entry(n[..1].to_string()).or_default() += 1;
    }
    assert_eq!(zones.get("a"), Some(&3), "{zones:?}");
    assert_eq!(zones.get("b"), Some(&3), "{zones:?}");
    sched.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anti_affinity_puts_replicas_on_different_nodes() -> Result<()> {
    let s = Server::start().await?;
    let c = &s.client;
    for n in ["n1", "n2", "n3"] {
        node(c, n, json!({}), "8", json!({})).await?;
    }
    let sched = start_scheduler(c, "a", false)?;
    let anti = json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname"}]}}});
    for i in 0..4 {
        pod(
            c,
            &format!("db-{i}"),
            json!({"app": "db"}),
            "100m",
            anti.clone(),
        )
        .await?;
    }
    let mut nodes = Vec::new();
    let mut pending = Vec::new();
    eventually(30, "3 bound, 1 rejected", || async {
        let list = Api::<Pod>::namespaced(c.clone(), "default")
            .list(&Default::default())
            .await?;
        let bound: Vec<String> = list.items.iter().filter_map(node_of).collect();
        let rejected: Vec<String> = list
            .items
            .iter()
            .filter(|p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| {
                        cs.iter()
                            .any(|c| c.type_ == "PodScheduled" && c.status == "False")
                    })
            })
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        Ok((bound.len() == 3 && rejected.len() == 1).then_some((bound, rejected)))
    })
    .await
    .map(|(b, r)| {
        nodes = b;
        pending = r;
    })?;
    nodes.sort();
    assert_eq!(nodes, ["n1", "n2", "n3"]);
    let want = "0/3 nodes are available: 3 node(s) didn't satisfy existing pods anti-affinity rules. \
                preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.";
    eventually(10, "the FailedScheduling event", || async {
        let notes = events(c, &pending[0], "FailedScheduling").await?;
        Ok(notes.iter().any(|m| m == want).then_some(()))
    })
    .await?;
    sched.shutdown().await
}

async fn priority_class(c: &kube::Client, name: &str, value: i32) -> Result<()> {
    let pc: PriorityClass =
        serde_json::from_value(json!({"metadata": {"name": name}, "value": value}))?;
    Api::<PriorityClass>::all(c.clone())
        .create(&PostParams::default(), &pc)
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn high_priority_pod_preempts_a_low_priority_one() -> Result<()> {
    let s = Server::start().await?;
    let c = &s.client;
    priority_class(c, "low", 10).await?;
    priority_class(c, "high", 1000).await?;
    node(c, "only", json!({}), "2", json!({})).await?;
    let sched = start_scheduler(c, "a", false)?;
    pod(
        c,
        "low",
        json!({}),
        "1500m",
        json!({"priorityClassName": "low"}),
    )
    .await?;
    wait_bound(c, "low").await?;
    pod(
        c,
        "high",
        json!({}),
        "1500m",
        json!({"priorityClassName": "high"}),
    )
    .await?;
    let nominated = eventually(20, "nominatedNodeName", || async {
        Ok(get_pod(c, "high")
            .await?
            .status
            .and_then(|s| s.nominated_node_name))
    })
    .await?;
    assert_eq!(nominated, "only");
    let pods = Api::<Pod>::namespaced(c.clone(), "default");
    // The victim is deleted gracefully; with no kubelet, finish the deletion as a kubelet would.
    eventually(20, "victim deletion", || async {
        Ok(match pods.get_opt("low").await? {
            None => Some(()),
            Some(p) if p.metadata.deletion_timestamp.is_some() => Some(()),
            Some(_) => None,
        })
    })
    .await?;
    let _ = pods
        .delete("low", &DeleteParams::default().grace_period(0))
        .await;
    assert_eq!(wait_bound(c, "high").await?, "only");
    let preempted = events(c, "low", "Preempted").await?;
    assert!(
        preempted.iter().any(|m| m.starts_with("Preempted by pod ")),
        "{preempted:?}"
    );
    // preemptionPolicy Never: no victims, the pod just waits.
    let pc: PriorityClass = serde_json::from_value(
        json!({"metadata": {"name": "polite"}, "value": 1000, "preemptionPolicy": "Never"}),
    )?;
    Api::<PriorityClass>::all(c.clone())
        .create(&PostParams::default(), &pc)
        .await?;
    pod(
        c,
        "polite",
        json!({}),
        "1500m",
        json!({"priorityClassName": "polite"}),
    )
    .await?;
    let ev = eventually(20, "FailedScheduling", || async {
        Ok(events(c, "polite", "FailedScheduling")
            .await?
            .into_iter()
            .next())
    })
    .await?;
    assert!(
        ev.ends_with("preemption: not eligible due to preemptionPolicy=Never."),
        "{ev}"
    );
    assert!(pods
        .get_opt("high")
        .await?
        .is_some_and(|p| p.metadata.deletion_timestamp.is_none()));
    sched.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_schedulers_one_leader() -> Result<()> {
    let s = Server::start().await?;
    let c = &s.client;
    node(c, "n1", json!({}), "8", json!({})).await?;
    let first = start_scheduler(c, "first", true)?;
    let leases: Api<Lease> = Api::namespaced(c.clone(), "kube-system");
    let holder = || async {
        Ok(leases
            .get_opt("kube-scheduler")
            .await?
            .and_then(|l| l.spec)
            .and_then(|s| s.holder_identity)
            .filter(|h| !h.is_empty()))
    };
    assert_eq!(eventually(20, "a leader", holder).await?, "first");
    let second = start_scheduler(c, "second", true)?;
    pod(c, "p1", json!({}), "100m", json!({})).await?;
    wait_bound(c, "p1").await?;
    // The standby keeps its caches but does not lead.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(holder().await?.as_deref(), Some("first"));
    let m1 = http_get(&first.metrics).await?;
    let m2 = http_get(&second.metrics).await?;
    assert!(
        m1.contains("leader_election_master_status{name=\"kube-scheduler\"} 1"),
        "{m1}"
    );
    assert!(
        m2.contains("leader_election_master_status{name=\"kube-scheduler\"} 0"),
        "{m2}"
    );
    assert!(m2.contains("result=\"scheduled\"} 0"), "{m2}");
    // The leader stops (releasing the lease): the standby takes over and schedules.
    first.shutdown().await?;
    assert_eq!(
        eventually(20, "failover", || async {
            Ok(holder().await?.filter(|h| h == "second"))
        })
        .await?,
        "second"
    );
    pod(c, "p2", json!({}), "100m", json!({})).await?;
    wait_bound(c, "p2").await?;
    eventually(
        10,
        "the standby-turned-leader to count its binding",
        || async {
            Ok(http_get(&second.metrics)
                .await?
                .contains("result=\"scheduled\"} 1")
                .then_some(()))
        },
    )
    .await?;
    second.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pdb_protected_pod_survives_preemption() -> Result<()> {
    let s = Server::start().await?;
    let c = &s.client;
    priority_class(c, "low", 10).await?;
    priority_class(c, "high", 1000).await?;
    node(c, "n1", json!({}), "2", json!({})).await?;
    node(c, "n2", json!({}), "2", json!({})).await?;
    // No disruption controller fills its status: it allows 0 disruptions, as upstream reads it.
    create::<PodDisruptionBudget>(
        c,
        json!({"metadata": {"name": "guard", "namespace": "default"},
               "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "guarded"}}}}),
    )
    .await?;
    let sched = start_scheduler(c, "a", false)?;
    let low = json!({"priorityClassName": "low"});
    pod(
        c,
        "guarded",
        json!({"app": "guarded"}),
        "1500m",
        low.clone(),
    )
    .await?;
    let guarded_on = wait_bound(c, "guarded").await?;
    pod(c, "free", json!({"app": "free"}), "1500m", low).await?;
    let free_on = wait_bound(c, "free").await?;
    assert_ne!(guarded_on, free_on);
    pod(
        c,
        "high",
        json!({}),
        "1500m",
        json!({"priorityClassName": "high"}),
    )
    .await?;
    let nominated = eventually(20, "nominatedNodeName", || async {
        Ok(get_pod(c, "high")
            .await?
            .status
            .and_then(|s| s.nominated_node_name))
    })
    .await?;
    assert_eq!(nominated, free_on);
    let pods = Api::<Pod>::namespaced(c.clone(), "default");
    eventually(20, "the unprotected victim's deletion", || async {
        Ok(match pods.get_opt("free").await? {
            None => Some(()),
            Some(p) if p.metadata.deletion_timestamp.is_some() => Some(()),
            Some(_) => None,
        })
    })
    .await?;
    let _ = pods
        .delete("free", &DeleteParams::default().grace_period(0))
        .await;
    assert_eq!(wait_bound(c, "high").await?, free_on);
    let guarded = get_pod(c, "guarded").await?;
    assert!(guarded.metadata.deletion_timestamp.is_none());
    sched.shutdown().await
}

fn volume(name: &str, labels: serde_json::Value, extra: serde_json::Value) -> serde_json::Value {
    let mut spec = json!({"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
        "storageClassName": "", "hostPath": {"path": format!("/tmp/{name}")}});
    if let (Some(o), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    json!({"metadata": {"name": name, "labels": labels}, "spec": spec})
}

fn claim(name: &str, volume: Option<&str>) -> serde_json::Value {
    let mut spec = json!({"accessModes": ["ReadWriteOnce"], "storageClassName": "",
        "resources": {"requests": {"storage": "1Gi"}}});
    if let Some(v) = volume {
        spec["volumeName"] = json!(v);
    }
    json!({"metadata": {"name": name, "namespace": "default"}, "spec": spec})
}

/// Marks a pre-bound claim Bound as the PV controller (not running here) would: the
/// scheduler waits for a claim's status before binding a pod that uses it.
async fn mark_bound(c: &kube::Client, name: &str) -> Result<()> {
    Api::<PersistentVolumeClaim>::namespaced(c.clone(), "default")
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Bound"}})),
        )
        .await?;
    Ok(())
}

fn using(claim: &str) -> serde_json::Value {
    json!({"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volumes_steer_and_block_pods() -> Result<()> {
    let s = Server::start().await?;
    let c = &s.client;
    let zone = "topology.kubernetes.io/zone";
    node(c, "n1", json!({zone: "z1"}), "4", json!({})).await?;
    node(c, "n2", json!({zone: "z2"}), "4", json!({})).await?;
    node(c, "n3", json!({zone: "z2"}), "4", json!({})).await?;
    let pinned = json!({"hostPath": null, "local": {"path": "/tmp/pinned"},
        "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n3"]}]}]}}});
    create_cluster::<PersistentVolume>(c, volume("pv-pinned", json!({}), pinned)).await?;
    create_cluster::<PersistentVolume>(c, volume("pv-z1", json!({zone: "z1"}), json!({}))).await?;
    create_cluster::<PersistentVolume>(c, volume("pv-z9", json!({zone: "z9"}), json!({}))).await?;
    create_cluster::<PersistentVolume>(c, volume("pv-z2", json!({zone: "z2"}), json!({}))).await?;
    for (name, pv) in [
        ("pinned", Some("pv-pinned")),
        ("in-z1", Some("pv-z1")),
        ("in-z9", Some("pv-z9")),
        ("unbound", None),
    ] {
        create::<PersistentVolumeClaim>(c, claim(name, pv)).await?;
        if pv.is_some() {
            mark_bound(c, name).await?;
        }
    }
    let sched = start_scheduler(c, "a", false)?;
    pod(c, "pinned", json!({}), "100m", using("pinned")).await?;
    pod(c, "zoned", json!({}), "100m", using("in-z1")).await?;
    pod(c, "nowhere", json!({}), "100m", using("in-z9")).await?;
    pod(c, "orphan", json!({}), "100m", using("missing")).await?;
    pod(c, "waiting", json!({}), "100m", using("unbound")).await?;
    assert_eq!(wait_bound(c, "pinned").await?, "n3");
    assert_eq!(wait_bound(c, "zoned").await?, "n1");
    let not_helpful =
        " preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.";
    for (pod_name, why) in [
        ("nowhere", "3 node(s) had no available volume zone."),
        ("orphan", "persistentvolumeclaim \"missing\" not found."),
        (
            "waiting",
            "pod has unbound immediate PersistentVolumeClaims.",
        ),
    ] {
        let cond = unscheduled_condition(c, pod_name).await?;
        assert_eq!(cond.reason.as_deref(), Some("Unschedulable"));
        assert_eq!(
            cond.message.as_deref(),
            Some(format!("0/3 nodes are available: {why}{not_helpful}").as_str()),
            "{pod_name}"
        );
    }
    // The missing claim appears, bound to a volume in z2: the waiting pod is retried there.
    create::<PersistentVolumeClaim>(c, claim("missing", Some("pv-z2"))).await?;
    mark_bound(c, "missing").await?;
    let n = wait_bound(c, "orphan").await?;
    assert!(n == "n2" || n == "n3", "{n}");
    sched.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gated_pod_waits_until_its_gates_are_removed() -> Result<()> {
    let s = Server::start().await?;
    let c = &s.client;
    node(c, "n1", json!({}), "4", json!({})).await?;
    let sched = start_scheduler(c, "a", false)?;
    pod(
        c,
        "gated",
        json!({}),
        "100m",
        json!({"schedulingGates": [{"name": "example.com/hold"}]}),
    )
    .await?;
    let cond = unscheduled_condition(c, "gated").await?;
    assert_eq!(cond.reason.as_deref(), Some("SchedulingGated"));
    assert_eq!(
        cond.message.as_deref(),
        Some("Scheduling is blocked due to non-empty scheduling gates")
    );
    let m = http_get(&sched.metrics).await?;
    assert!(
        m.contains("scheduler_pending_pods{queue=\"gated\"} 1"),
        "{m}"
    );
    assert!(node_of(&get_pod(c, "gated").await?).is_none());
    Api::<Pod>::namespaced(c.clone(), "default")
        .patch(
            "gated",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"schedulingGates": null}})),
        )
        .await?;
    assert_eq!(wait_bound(c, "gated").await?, "n1");
    sched.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_spread_spreads_a_replica_sets_pods() -> Result<()> {
    let s = Server::start().await?;
    let c = &s.client;
    // The resource scores alone would put every pod on the big node.
    node_sized(c, "big", json!({}), "64", "256Gi", json!({})).await?;
    node_sized(c, "small", json!({}), "8", "32Gi", json!({})).await?;
    let rs: ReplicaSet = create(
        c,
        json!({"metadata": {"name": "web-1", "namespace": "default"},
               "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "web"}},
                        "template": {"metadata": {"labels": {"app": "web"}},
                                     "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}),
    )
    .await?;
    let sched = start_scheduler(c, "a", false)?;
    let mut on: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..4 {
        let name = format!("web-1-{i}");
        create::<Pod>(
            c,
            json!({"metadata": {"name": name, "namespace": "default", "labels": {"app": "web"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                        "name": "web-1", "uid": rs.metadata.uid, "controller": true}]},
                   "spec": {"containers": [{"name": "c", "image": "busybox",
                        "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]}}),
        )
        .await?;
        *on.entry(wait_bound(c, &name).await?).or_default() += 1;
    }
    assert_eq!(on.get("big"), Some(&2), "{on:?}");
    assert_eq!(on.get("small"), Some(&2), "{on:?}");
    // A pod no workload owns is not spread: it goes where the resources are.
    pod(c, "loner", json!({"app": "web"}), "1", json!({})).await?;
    assert_eq!(wait_bound(c, "loner").await?, "big");
    sched.shutdown().await
}
