//! Node lifecycle, taint eviction, pod GC, PodDisruptionBudgets, `pods/eviction` and
//! `kubectl drain` against a real `meso server` with the controller manager in-process. No
//! kubelet runs: a simulator plays the kubelets of a few nodes (renewing their Leases in
//! `kube-node-lease`, reporting Ready, running and finishing pods), and the scheduler (it
//! binds pending pods to the first live, ready, schedulable node).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::ResourceExt;
use meso_tests::{poll_until, Kubectl, MesoServer};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

const GRACE: Duration = Duration::from_secs(4);

/// Which simulated nodes are alive (their kubelet renews the Lease and runs pods).
type Alive = Arc<Mutex<HashMap<String, bool>>>;

struct Cluster {
    server: MesoServer,
    k: Kubectl,
    alive: Alive,
    /// Whether the simulator makes running pods Ready.
    ready_pods: Arc<Mutex<bool>>,
    stop: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Cluster {
    fn start(nodes: &[&str]) -> Result<Option<Cluster>> {
        Self::start_with(nodes, meso_controllers::EvictionRates::default())
    }

    fn start_with(
        nodes: &[&str],
        eviction: meso_controllers::EvictionRates,
    ) -> Result<Option<Cluster>> {
        let Some(k) = meso_tests::kubectl_132() else {
            return Ok(None);
        };
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "info".into()),
            )
            .with_test_writer()
            .try_init();
        let server = MesoServer::start()?;
        let stop = CancellationToken::new();
        let alive: Alive = Arc::new(Mutex::new(
            nodes.iter().map(|n| (n.to_string(), true)).collect(),
        ));
        let ready_pods = Arc::new(Mutex::new(true));
        let config = meso_controllers::Config {
            kubeconfig: Some(server.kubeconfig()),
            metrics_bind_address: "127.0.0.1:0".into(),
            node_monitor_grace_period: GRACE,
            node_monitor_period: Duration::from_millis(500),
            pod_gc_period: Duration::from_millis(500),
            pod_gc_orphan_quarantine: Duration::from_secs(2),
            eviction,
            ..Default::default()
        };
        let (token, sim_alive, sim_ready) = (stop.clone(), alive.clone(), ready_pods.clone());
        let names: Vec<String> = nodes.iter().map(|n| n.to_string()).collect();
        let thread = std::thread::spawn(move || {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => return eprintln!("runtime: {e}"),
            };
            rt.block_on(async move {
                let sim = simulate(config.clone(), names, sim_alive, sim_ready, token.clone());
                let manager = meso_controllers::run(config, token);
                let (r, s) = tokio::join!(manager, sim);
                if let Err(e) = r {
                    eprintln!("controller manager: {e:#}");
                }
                if let Err(e) = s {
                    eprintln!("simulator: {e:#}");
                }
            });
        });
        Ok(Some(Cluster {
            server,
            k,
            alive,
            ready_pods,
            stop,
            thread: Some(thread),
        }))
    }

    fn kubectl(&self, args: &[&str]) -> Result<String> {
        self.server.kubectl_ok(&self.k, args)
    }

    fn apply(&self, yaml: &str) -> Result<String> {
        self.server
            .kubectl_stdin_ok(&self.k, &["apply", "-f", "-"], yaml)
    }

    fn json(&self, args: &[&str]) -> Result<Value> {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        Ok(serde_json::from_str(&self.kubectl(&a)?)?)
    }

    fn items(&self, args: &[&str]) -> Result<Vec<Value>> {
        Ok(self.json(args)?["items"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    fn set_alive(&self, node: &str, alive: bool) -> Result<()> {
        self.alive
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .insert(node.into(), alive);
        Ok(())
    }

    fn set_ready_pods(&self, ready: bool) -> Result<()> {
        *self
            .ready_pods
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))? = ready;
        Ok(())
    }

    fn wait<T>(
        &self,
        what: &str,
        secs: u64,
        mut f: impl FnMut() -> Result<Option<T>>,
    ) -> Result<T> {
        poll_until(Duration::from_secs(secs), what, || {
            std::thread::sleep(Duration::from_millis(200));
            f()
        })
    }

    fn evict(&self, ns: &str, pod: &str, query: &str) -> Result<(u16, Value)> {
        evict(&self.server, ns, pod, query, None)
    }
}

/// POSTs an Eviction for `pod` (or `body`); returns the HTTP status and the body.
fn evict(
    server: &MesoServer,
    ns: &str,
    pod: &str,
    query: &str,
    body: Option<Value>,
) -> Result<(u16, Value)> {
    let url = server.url(&format!(
        "/api/v1/namespaces/{ns}/pods/{pod}/eviction{query}"
    ))?;
    let body = body
        .unwrap_or_else(|| {
            json!({"apiVersion": "policy/v1", "kind": "Eviction",
                "metadata": {"name": pod, "namespace": ns}})
        })
        .to_string();
    meso_tests::block_on_thread(|| async move {
        let resp = server
            .http()?
            .post(url)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await?;
        let code = resp.status().as_u16();
        let text = resp.text().await?;
        Ok((
            code,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    })
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn ready_status(node: &Node) -> Option<String> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status.clone())
}

/// The simulated kubelets and scheduler.
async fn simulate(
    config: meso_controllers::Config,
    names: Vec<String>,
    alive: Alive,
    ready_pods: Arc<Mutex<bool>>,
    stop: CancellationToken,
) -> Result<()> {
    let client = kube::Client::try_from(config.kube_config().await?)?;
    let nodes: Api<Node> = Api::all(client.clone());
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let pods: Api<Pod> = Api::all(client.clone());
    for n in &names {
        let node: Node = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": n, "labels": {"kubernetes.io/hostname": n}}}))?;
        nodes.create(&PostParams::default(), &node).await?;
    }
    let mut ip = 0u32;
    while !stop.is_cancelled() {
        let live: HashMap<String, bool> = alive.lock().map(|m| m.clone()).unwrap_or_default();
        let now = now_rfc3339();
        let current = nodes.list(&ListParams::default()).await?;
        for n in &names {
            if !live.get(n).copied().unwrap_or(false) {
                continue;
            }
            let lease = Lease {
                metadata: kube::api::ObjectMeta {
                    name: Some(n.clone()),
                    namespace: Some("kube-node-lease".into()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(n.clone()),
                    lease_duration_seconds: Some(40),
                    renew_time: Some(MicroTime(jiff::Timestamp::now())),
                    ..Default::default()
                }),
            };
            let _ = leases
                .patch(
                    n,
                    &PatchParams::apply("sim-kubelet").force(),
                    &Patch::Apply(&lease),
                )
                .await;
            let Some(node) = current.items.iter().find(|x| x.name_any() == *n) else {
                continue;
            };
            if ready_status(node).as_deref() != Some("True") {
                let status = json!({"status": {"conditions": [{"type": "Ready", "status": "True",
                    "reason": "KubeletReady", "message": "kubelet is posting ready status",
                    "lastHeartbeatTime": now, "lastTransitionTime": now}]}});
                let _ = nodes
                    .patch_status(n, &PatchParams::default(), &Patch::Merge(&status))
                    .await;
            }
        }
        // The first live, ready, schedulable node takes every pending pod.
        let target = names.iter().find(|n| {
            live.get(*n).copied().unwrap_or(false)
                && current.items.iter().any(|x| {
                    x.name_any() == **n
                        && ready_status(x).as_deref() == Some("True")
                        && !x
                            .spec
                            .as_ref()
                            .and_then(|s| s.unschedulable)
                            .unwrap_or(false)
                })
        });
        let listed = pods.list(&ListParams::default()).await?;
        // Read after the list: a pod created after the flag was turned off never turns ready.
        let make_ready = ready_pods.lock().map(|r| *r).unwrap_or(true);
        for p in listed {
            let ns = p.namespace().unwrap_or_default();
            if ns.starts_with("kube-") {
                continue;
            }
            let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
            let name = p.name_any();
            let node = p.spec.as_ref().and_then(|s| s.node_name.clone());
            let on_live = node
                .as_ref()
                .is_some_and(|n| live.get(n).copied().unwrap_or(false));
            if p.metadata.deletion_timestamp.is_some() {
                // A live kubelet finishes terminating pods at once.
                if on_live {
                    let _ = api
                        .delete(&name, &DeleteParams::default().grace_period(0))
                        .await;
                }
                continue;
            }
            match node {
                None => {
                    if let Some(t) = target {
                        let binding = json!({"apiVersion": "v1", "kind": "Binding",
                            "metadata": {"name": name}, "target": {"kind": "Node", "name": t}});
                        let _ = api
                            .create_subresource::<Value, Value>(
                                "binding",
                                &name,
                                &PostParams::default(),
                                &binding,
                            )
                            .await;
                    }
                }
                Some(_) if on_live => {
                    let phase = p
                        .status
                        .as_ref()
                        .and_then(|s| s.phase.clone())
                        .unwrap_or_default();
                    let ready = p
                        .status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|cs| {
                            cs.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                        });
                    if (phase.is_empty() || phase == "Pending")
                        || (make_ready && !ready && phase == "Running")
                    {
                        ip += 1;
                        let status = if make_ready {
                            json!({"phase": "Running", "podIP": format!("10.244.{}.{}", ip / 250, ip % 250 + 1),
                                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}]})
                        } else {
                            json!({"phase": "Running", "podIP": format!("10.244.{}.{}", ip / 250, ip % 250 + 1),
                                "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": now}]})
                        };
                        if phase != "Running" || make_ready {
                            let _ = api
                                .patch_status(
                                    &name,
                                    &PatchParams::default(),
                                    &Patch::Merge(&json!({"status": status})),
                                )
                                .await;
                        }
                    }
                }
                Some(_) => {}
            }
        }
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
    Ok(())
}

fn taints(node: &Value) -> Vec<(String, String)> {
    node["spec"]["taints"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            (
                t["key"].as_str().unwrap_or("").to_string(),
                t["effect"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn condition<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

fn node_of(pod: &Value) -> &str {
    pod["spec"]["nodeName"].as_str().unwrap_or("")
}

fn is_ready(pod: &Value) -> bool {
    condition(pod, "Ready").is_some_and(|c| c["status"] == "True")
}

#[test]
fn lost_node_is_tainted_its_pods_evicted_and_collected() -> Result<()> {
    let Some(c) = Cluster::start(&["node-a", "node-b"])? else {
        return Ok(());
    };
    // Fresh nodes report Ready: the registration taint (not-ready:NoSchedule) goes away.
    for n in ["node-a", "node-b"] {
        c.wait(&format!("{n} ready and untainted"), 30, || {
            let node = c.json(&["get", "node", n])?;
            let ok = condition(&node, "Ready").is_some_and(|r| r["status"] == "True")
                && taints(&node).is_empty();
            Ok(ok.then_some(()))
        })?;
    }
    c.kubectl(&["create", "namespace", "lost"])?;
    c.apply(
        r#"
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: web, namespace: lost}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      tolerations:
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 2}
      containers: [{name: c, image: busybox}]
"#,
    )?;
    let first = c.wait("the web pod ready on node-a", 30, || {
        let pods = c.items(&["get", "pods", "-n", "lost"])?;
        Ok(pods
            .into_iter()
            .find(|p| node_of(p) == "node-a" && is_ready(p)))
    })?;
    let first_name = first["metadata"]["name"].as_str().unwrap_or("").to_string();
    // DefaultTolerationSeconds added the not-ready one and kept the pod's own unreachable one.
    let tols = first["spec"]["tolerations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        tols.iter()
            .any(|t| t["key"] == "node.kubernetes.io/not-ready" && t["tolerationSeconds"] == 300),
        "{tols:?}"
    );
    assert!(
        tols.iter()
            .any(|t| t["key"] == "node.kubernetes.io/unreachable" && t["tolerationSeconds"] == 2),
        "{tols:?}"
    );
    assert!(!tols
        .iter()
        .any(|t| t["key"] == "node.kubernetes.io/unreachable" && t["tolerationSeconds"] == 300));

    // node-a's kubelet stops.
    c.set_alive("node-a", false)?;
    let stopped = Instant::now();
    let node = c.wait("node-a Unknown and tainted unreachable", 30, || {
        let node = c.json(&["get", "node", "node-a"])?;
        let unknown = condition(&node, "Ready").is_some_and(|r| r["status"] == "Unknown");
        let tainted =
            taints(&node).contains(&("node.kubernetes.io/unreachable".into(), "NoExecute".into()));
        Ok((unknown && tainted).then_some(node))
    })?;
    let took = stopped.elapsed();
    assert!(
        took >= GRACE - Duration::from_millis(500),
        "marked after {took:?}"
    );
    assert!(
        took < GRACE + Duration::from_secs(10),
        "marked after {took:?}"
    );
    let ready = condition(&node, "Ready").cloned().unwrap_or_default();
    assert_eq!(ready["reason"], "NodeStatusUnknown");
    assert_eq!(ready["message"], "Kubelet stopped posting node status.");
    for t in ["MemoryPressure", "DiskPressure", "PIDPressure"] {
        assert_eq!(
            condition(&node, t).map(|c| c["status"].clone()),
            Some(json!("Unknown")),
            "{t}"
        );
    }
    assert!(taints(&node).contains(&("node.kubernetes.io/unreachable".into(), "NoSchedule".into())));
    let added = node["spec"]["taints"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["effect"] == "NoExecute"))
        .and_then(|t| t["timeAdded"].as_str())
        .context("timeAdded on the NoExecute taint")?
        .to_string();

    // Tolerated for 2 s, then evicted; the ReplicaSet's replacement runs on node-b.
    let evicted = c.wait("the web pod evicted", 20, || {
        let p = c.json(&[
            "get",
            "pod",
            "-n",
            "lost",
            &first_name,
            "--ignore-not-found",
        ]);
        Ok(match p {
            Ok(p) if p["metadata"]["deletionTimestamp"].is_string() => Some(p),
            Err(_) => Some(Value::Null),
            _ => None,
        })
    })?;
    if !evicted.is_null() {
        let when = evicted["metadata"]["deletionTimestamp"]
            .as_str()
            .unwrap_or("");
        let grace = evicted["metadata"]["deletionGracePeriodSeconds"]
            .as_i64()
            .unwrap_or(0);
        let deleted_at: jiff::Timestamp = when.parse()?;
        let added_at: jiff::Timestamp = added.parse()?;
        let tolerated = deleted_at.as_second() - grace - added_at.as_second();
        assert!(tolerated >= 1, "deleted {tolerated}s after the taint");
        let target = condition(&evicted, "DisruptionTarget")
            .cloned()
            .unwrap_or_default();
        assert_eq!(target["reason"], "DeletionByTaintManager", "{evicted}");
    }
    let event = c.wait("the TaintManagerEviction event", 15, || {
        let evs = c.items(&["get", "events", "-n", "lost"])?;
        Ok(evs
            .into_iter()
            .find(|e| e["reason"] == "TaintManagerEviction"))
    })?;
    assert_eq!(
        event["message"].as_str(),
        Some(format!("Marking for deletion Pod lost/{first_name}").as_str())
    );
    c.wait("a replacement ready on node-b", 30, || {
        let pods = c.items(&["get", "pods", "-n", "lost"])?;
        Ok(pods
            .iter()
            .find(|p| {
                node_of(p) == "node-b"
                    && is_ready(p)
                    && p["metadata"]["deletionTimestamp"].is_null()
            })
            .map(|_| ()))
    })?;

    // node-a comes back: Ready again, its taints removed.
    c.set_alive("node-a", true)?;
    c.wait("node-a ready and untainted again", 30, || {
        let node = c.json(&["get", "node", "node-a"])?;
        let ok = condition(&node, "Ready").is_some_and(|r| r["status"] == "True")
            && taints(&node).is_empty();
        Ok(ok.then_some(()))
    })?;

    // A pod bound to a node that is then deleted is collected after the quarantine.
    c.set_alive("node-b", false)?;
    c.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: stray, namespace: lost}
spec:
  nodeName: node-b
  tolerations:
  - {operator: Exists}
  containers: [{name: c, image: busybox}]
"#,
    )?;
    c.kubectl(&["delete", "node", "node-b"])?;
    c.wait("the pod of the deleted node collected", 30, || {
        let out = c.kubectl(&[
            "get",
            "pod",
            "-n",
            "lost",
            "stray",
            "--ignore-not-found",
            "-o",
            "name",
        ])?;
        Ok(out.trim().is_empty().then_some(()))
    })?;
    Ok(())
}

#[test]
fn lost_nodes_are_tainted_at_the_eviction_rate() -> Result<()> {
    // One node every 5 s; with two of three nodes lost the zone stays Normal (a partial
    // disruption needs more than two not-Ready nodes).
    let rates = meso_controllers::EvictionRates {
        node_eviction_rate: 0.2,
        ..Default::default()
    };
    let nodes = ["rate-a", "rate-b", "rate-c"];
    let Some(c) = Cluster::start_with(&nodes, rates)? else {
        return Ok(());
    };
    let unreachable = (
        "node.kubernetes.io/unreachable".to_string(),
        "NoExecute".to_string(),
    );
    let state = |n: &str| -> Result<(bool, bool)> {
        let node = c.json(&["get", "node", n])?;
        let unknown = condition(&node, "Ready").is_some_and(|r| r["status"] == "Unknown");
        Ok((unknown, taints(&node).contains(&unreachable)))
    };
    for n in nodes {
        c.wait(&format!("{n} ready and untainted"), 30, || {
            let node = c.json(&["get", "node", n])?;
            let ok = condition(&node, "Ready").is_some_and(|r| r["status"] == "True")
                && taints(&node).is_empty();
            Ok(ok.then_some(()))
        })?;
    }
    c.set_alive("rate-a", false)?;
    c.set_alive("rate-b", false)?;
    c.wait("both lost nodes Unknown", 30, || {
        let (a, b) = (state("rate-a")?.0, state("rate-b")?.0);
        Ok((a && b).then_some(()))
    })?;
    let first = c.wait("the first lost node tainted", 15, || {
        let (a, b) = (state("rate-a")?.1, state("rate-b")?.1);
        Ok((a || b).then_some((Instant::now(), a && b)))
    })?;
    assert!(!first.1, "both nodes tainted at once");
    let second = c.wait("the second lost node tainted", 20, || {
        let (a, b) = (state("rate-a")?.1, state("rate-b")?.1);
        Ok((a && b).then_some(Instant::now()))
    })?;
    let gap = second - first.0;
    assert!(
        gap >= Duration::from_millis(3500),
        "second node tainted {gap:?} after the first"
    );
    assert!(!state("rate-c")?.1, "the live node stays untainted");
    // Back again: the taints go at once, whatever the rate.
    c.set_alive("rate-a", true)?;
    c.set_alive("rate-b", true)?;
    c.wait("both nodes untainted", 20, || {
        let (a, b) = (state("rate-a")?, state("rate-b")?);
        Ok((!a.1 && !b.1).then_some(()))
    })?;
    Ok(())
}

fn pdb_status(c: &Cluster, ns: &str, name: &str) -> Result<Value> {
    Ok(c.json(&["get", "pdb", "-n", ns, name])?["status"].clone())
}

fn app_pods(c: &Cluster, ns: &str) -> Result<Vec<Value>> {
    Ok(c.items(&["get", "pods", "-n", ns, "-l", "app=app"])?
        .into_iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .collect())
}

#[test]
fn disruption_budget_eviction_and_drain() -> Result<()> {
    let Some(c) = Cluster::start(&["node-a", "node-b"])? else {
        return Ok(());
    };
    c.wait("node-a ready and untainted", 30, || {
        let node = c.json(&["get", "node", "node-a"])?;
        Ok(taints(&node).is_empty().then_some(()))
    })?;
    // Everything lands on node-a while node-b is cordoned.
    c.kubectl(&["cordon", "node-b"])?;
    c.kubectl(&["create", "namespace", "pdb"])?;
    c.apply(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: app, namespace: pdb}
spec:
  replicas: 3
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec:
      containers: [{name: c, image: busybox}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: app, namespace: pdb}
spec:
  minAvailable: 2
  selector: {matchLabels: {app: app}}
"#,
    )?;
    let status = c.wait("the budget's status", 40, || {
        let s = pdb_status(&c, "pdb", "app")?;
        Ok((s["currentHealthy"] == 3).then_some(s))
    })?;
    assert_eq!(status["expectedPods"], 3, "{status}");
    assert_eq!(status["desiredHealthy"], 2, "{status}");
    assert_eq!(status["disruptionsAllowed"], 1, "{status}");
    assert_eq!(status["observedGeneration"], 1, "{status}");
    let cond = condition(&json!({"status": status}), "DisruptionAllowed")
        .cloned()
        .unwrap_or_default();
    assert_eq!(cond["status"], "True", "{status}");
    assert_eq!(cond["reason"], "SufficientPods", "{status}");

    let pods = app_pods(&c, "pdb")?;
    assert!(pods.iter().all(|p| node_of(p) == "node-a"), "{pods:?}");
    let names: Vec<String> = pods
        .iter()
        .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    let [one, two, ..] = names.as_slice() else {
        bail!("expected 3 pods, got {names:?}");
    };

    // A dry run changes nothing.
    let (code, body) = c.evict("pdb", one, "?dryRun=All")?;
    assert_eq!(code, 201, "{body}");
    assert!(c.json(&["get", "pod", "-n", "pdb", one]).is_ok());
    assert_eq!(pdb_status(&c, "pdb", "app")?["disruptionsAllowed"], 1);

    // Replacements stay unready for now: one eviction uses up the budget.
    c.set_ready_pods(false)?;
    let (code, body) = c.evict("pdb", one, "")?;
    assert_eq!(code, 201, "{body}");
    assert_eq!(
        body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})
    );
    let (code, body) = c.evict("pdb", two, "")?;
    assert_eq!(code, 429, "{body}");
    assert_eq!(body["reason"], "TooManyRequests");
    assert_eq!(
        body["message"],
        "Cannot evict pod as it would violate the pod's disruption budget."
    );
    assert_eq!(
        body["details"]["causes"][0]["reason"], "DisruptionBudget",
        "{body}"
    );
    let status = c.wait("the budget exhausted", 20, || {
        let s = pdb_status(&c, "pdb", "app")?;
        Ok((s["disruptionsAllowed"] == 0 && s["currentHealthy"] == 2).then_some(s))
    })?;
    let cond = condition(&json!({"status": status}), "DisruptionAllowed")
        .cloned()
        .unwrap_or_default();
    assert_eq!(cond["reason"], "InsufficientPods", "{status}");

    // Once the replacement is ready, the next eviction is allowed.
    c.set_ready_pods(true)?;
    c.wait("the second eviction allowed", 30, || {
        let (code, body) = c.evict("pdb", two, "")?;
        match code {
            201 => Ok(Some(())),
            429 => Ok(None),
            _ => bail!("eviction answered {code}: {body}"),
        }
    })?;

    // Drain node-a with node-b open: evictions one at a time within the budget.
    c.kubectl(&["uncordon", "node-b"])?;
    c.wait("all three ready", 30, || {
        let s = pdb_status(&c, "pdb", "app")?;
        Ok((s["currentHealthy"] == 3).then_some(()))
    })?;
    let out = c.kubectl(&[
        "drain",
        "node-a",
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        "--timeout=90s",
    ])?;
    assert!(out.contains("node/node-a drained"), "{out}");
    let node = c.json(&["get", "node", "node-a"])?;
    assert_eq!(node["spec"]["unschedulable"], true);
    assert!(
        taints(&node).contains(&(
            "node.kubernetes.io/unschedulable".into(),
            "NoSchedule".into()
        )) || {
            // The taint follows within a monitor period.
            c.wait("the unschedulable taint", 10, || {
                let node = c.json(&["get", "node", "node-a"])?;
                Ok(taints(&node)
                    .contains(&(
                        "node.kubernetes.io/unschedulable".into(),
                        "NoSchedule".into(),
                    ))
                    .then_some(()))
            })
            .is_ok()
        }
    );
    let pods = app_pods(&c, "pdb")?;
    assert!(pods.iter().all(|p| node_of(p) != "node-a"), "{pods:?}");
    c.kubectl(&["uncordon", "node-a"])?;
    let node = c.json(&["get", "node", "node-a"])?;
    assert!(node["spec"]["unschedulable"] != true, "{node}");
    Ok(())
}

/// The eviction subresource alone (no controllers): the upstream captures, terminal and
/// pending pods skipping the budget, two budgets, bad input.
#[test]
fn eviction_matches_upstream() -> Result<()> {
    use meso_tests::golden::{compare_status, load, Message};
    let Some(k) = meso_tests::kubectl_132() else {
        return Ok(());
    };
    let server = MesoServer::start()?;
    let kubectl = |args: &[&str]| server.kubectl_ok(&k, args);
    let apply = |yaml: &str| server.kubectl_stdin_ok(&k, &["apply", "-f", "-"], yaml);
    kubectl(&["create", "namespace", "golden"])?;
    apply(
        r#"
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: pdb, namespace: golden}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: pdb}}
---
apiVersion: v1
kind: Pod
metadata: {name: evict-pdb-running, namespace: golden, labels: {app: pdb}}
spec:
  nodeName: golden-node
  containers: [{name: c, image: busybox}]
---
apiVersion: v1
kind: Pod
metadata: {name: evict-pdb-demo, namespace: golden, labels: {app: pdb}}
spec:
  containers: [{name: c, image: busybox}]
---
apiVersion: v1
kind: Pod
metadata: {name: evict-pdb-done, namespace: golden, labels: {app: pdb}}
spec:
  nodeName: golden-node
  containers: [{name: c, image: busybox}]
"#,
    )?;
    for (pod, phase) in [
        ("evict-pdb-running", "Running"),
        ("evict-pdb-done", "Succeeded"),
    ] {
        kubectl(&[
            "patch",
            "pod",
            "-n",
            "golden",
            pod,
            "--subresource=status",
            "--type=merge",
            "-p",
            &json!({"status": {"phase": phase}}).to_string(),
        ])?;
    }

    // A budget no controller has processed yet: 429, as upstream.
    let cap = load("subresources/pod-eviction-blocked-by-pdb.json")?;
    let (code, body) = evict(&server, "golden", "evict-pdb-running", "", None)?;
    assert_eq!(code, cap.response.status, "{body}");
    let diffs = compare_status(&cap.response.body, &body, Message::Exact);
    assert!(diffs.is_empty(), "{diffs:?}");

    // Pending and terminal pods are evicted without consulting the budget.
    let cap = load("subresources/pod-eviction-pending-pod-ignores-pdb.json")?;
    for pod in ["evict-pdb-demo", "evict-pdb-done"] {
        let (code, body) = evict(&server, "golden", pod, "", None)?;
        assert_eq!(
            (code, &body),
            (cap.response.status, &cap.response.body),
            "{pod}"
        );
    }
    let gone = server.kubectl(&k, &["get", "pod", "-n", "golden", "evict-pdb-demo"])?;
    assert!(!gone.status.success());

    // Two budgets over one pod: 500, as upstream.
    apply(
        r#"
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: pdb2, namespace: golden}
spec:
  maxUnavailable: 1
  selector: {matchLabels: {app: pdb}}
"#,
    )?;
    let (code, body) = evict(&server, "golden", "evict-pdb-running", "", None)?;
    assert_eq!(code, 500, "{body}");
    assert_eq!(
        body["message"],
        "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
    );

    // Bad input.
    let other =
        json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "other"}});
    let (code, body) = evict(&server, "golden", "evict-pdb-running", "", Some(other))?;
    assert_eq!(code, 400, "{body}");
    assert_eq!(
        body["message"],
        "name in URL does not match name in Eviction object"
    );
    let (code, body) = evict(&server, "golden", "no-such-pod", "", None)?;
    assert_eq!(code, 404, "{body}");
    let (code, body) = evict(&server, "golden", "evict-pdb-running", "", Some(json!([1])))?;
    assert_eq!(code, 400, "{body}");
    assert!(kubectl(&["get", "pod", "-n", "golden", "evict-pdb-running"]).is_ok());
    Ok(())
}
