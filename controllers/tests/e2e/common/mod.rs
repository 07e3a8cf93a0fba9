//! A test cluster for the controllers: a real `meso server` (its own controllers and
//! scheduler off), the controller manager run in-process, and a simulated kubelet that plays
//! the nodes by binding pods and patching their status through `pods/{name}/status`.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use meso_tests::{poll_until, Kubectl, MesoServer};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

/// What the simulated kubelet does with the pods of a namespace.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Sim {
    /// Running and Ready.
    Ready,
    /// Succeeded, its container exited 0.
    Succeed,
    /// Failed, its container exited 1.
    Fail,
    /// Failed, its container exited with this code.
    FailWith(i32),
}

pub struct Cluster {
    pub server: MesoServer,
    pub k: Kubectl,
    pub sims: Arc<Mutex<HashMap<String, Sim>>>,
    stop: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Cluster {
    pub fn start() -> Result<Option<Cluster>> {
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
        let sims: Arc<Mutex<HashMap<String, Sim>>> = Arc::default();
        let config = meso_controllers::Config {
            kubeconfig: Some(server.kubeconfig()),
            metrics_bind_address: "127.0.0.1:0".into(),
            ..Default::default()
        };
        let (token, sim_table) = (stop.clone(), sims.clone());
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
                let sim = simulate(config.clone(), sim_table, token.clone());
                let manager = meso_controllers::run(config, token);
                let (r, _) = tokio::join!(manager, sim);
                if let Err(e) = r {
                    eprintln!("controller manager: {e:#}");
                }
            });
        });
        Ok(Some(Cluster {
            server,
            k,
            sims,
            stop,
            thread: Some(thread),
        }))
    }

    pub fn kubectl(&self, args: &[&str]) -> Result<String> {
        self.server.kubectl_ok(&self.k, args)
    }

    pub fn apply(&self, yaml: &str) -> Result<String> {
        self.server
            .kubectl_stdin_ok(&self.k, &["apply", "-f", "-"], yaml)
    }

    pub fn json(&self, args: &[&str]) -> Result<Value> {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        Ok(serde_json::from_str(&self.kubectl(&a)?)?)
    }

    pub fn namespace(&self, ns: &str, sim: Option<Sim>) -> Result<()> {
        self.kubectl(&["create", "namespace", ns])?;
        if let Some(s) = sim {
            self.sims
                .lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?
                .insert(ns.into(), s);
        }
        Ok(())
    }

    /// Polls `f` (every 50 ms, kubectl calls included) until it yields a value.
    pub fn wait<T>(
        &self,
        what: &str,
        secs: u64,
        mut f: impl FnMut(&Self) -> Result<Option<T>>,
    ) -> Result<T> {
        poll_until(Duration::from_secs(secs), what, || {
            std::thread::sleep(Duration::from_millis(200));
            f(self)
        })
    }

    /// Reports `status` for a pod, as its kubelet would.
    pub fn set_pod_status(&self, ns: &str, pod: &str, sim: Sim) -> Result<()> {
        let patch = json!({"status": pod_status(sim, 0)}).to_string();
        self.kubectl(&[
            "patch",
            "pod",
            pod,
            "-n",
            ns,
            "--subresource=status",
            "--type=merge",
            "-p",
            &patch,
        ])?;
        Ok(())
    }

    /// Creates a Ready node with `labels` and `taints` (JSON arrays/objects).
    pub fn node(&self, name: &str, labels: Value, taints: Value) -> Result<()> {
        let node = json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": labels}, "spec": {"taints": taints}});
        self.apply(&node.to_string())?;
        let now = jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let status = json!({"status": {"conditions": [{"type": "Ready", "status": "True",
            "lastHeartbeatTime": now, "lastTransitionTime": now, "reason": "KubeletReady"}]}});
        self.kubectl(&[
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

    pub fn items(&self, args: &[&str]) -> Result<Vec<Value>> {
        Ok(self.json(args)?["items"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The simulated kubelet: pods in the listed namespaces get the status their namespace asks
/// (pods pinned to a node by a `matchFields` affinity are bound to it first), and bound pods
/// being deleted are removed as a kubelet would once their containers stopped.
async fn simulate(
    config: meso_controllers::Config,
    sims: Arc<Mutex<HashMap<String, Sim>>>,
    stop: CancellationToken,
) {
    let Ok(kc) = config.kube_config().await else {
        return;
    };
    let Ok(client) = kube::Client::try_from(kc) else {
        return;
    };
    let mut n = 0u32;
    while !stop.is_cancelled() {
        let table: Vec<(String, Sim)> = sims
            .lock()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default();
        for (ns, sim) in table {
            let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
            let Ok(pods) = api.list(&ListParams::default()).await else {
                continue;
            };
            for p in pods {
                let phase = p
                    .status
                    .as_ref()
                    .and_then(|s| s.phase.clone())
                    .unwrap_or_default();
                let name = p.metadata.name.clone().unwrap_or_default();
                let bound = p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some();
                if p.metadata.deletion_timestamp.is_some() {
                    // A kubelet stops the containers and removes the pod at once.
                    if bound {
                        let _ = api
                            .delete(&name, &DeleteParams::default().grace_period(0))
                            .await;
                    }
                    continue;
                }
                if phase != "Pending" && !phase.is_empty() {
                    continue;
                }
                n += 1;
                if let Some(node) = node_to_bind(&p) {
                    let binding = json!({"apiVersion": "v1", "kind": "Binding",
                        "metadata": {"name": name}, "target": {"kind": "Node", "name": node}});
                    let pp = PostParams::default();
                    let req =
                        api.create_subresource::<Value, Value>("binding", &name, &pp, &binding);
                    if req.await.is_err() {
                        continue;
                    }
                }
                let status = pod_status(sim, n);
                let _ = api
                    .patch_status(
                        &name,
                        &PatchParams::default(),
                        &Patch::Merge(&json!({"status": status})),
                    )
                    .await;
            }
        }
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
}

/// The status the simulated kubelet reports for the `n`th pod it plays.
pub fn pod_status(sim: Sim, n: u32) -> Value {
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let exited = |code: i32| {
        json!([{"name": "c", "image": "busybox", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": code, "reason": if code == 0 { "Completed" } else { "Error" }}}}])
    };
    match sim {
        Sim::Ready => {
            json!({"phase": "Running", "podIP": format!("10.244.{}.{}", n / 250, n % 250 + 1),
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}]})
        }
        Sim::Succeed => json!({"phase": "Succeeded", "containerStatuses": exited(0)}),
        Sim::Fail => json!({"phase": "Failed", "containerStatuses": exited(1)}),
        Sim::FailWith(code) => json!({"phase": "Failed", "containerStatuses": exited(code)}),
    }
}

/// The node an unbound pod asks for through a required `matchFields metadata.name`
/// affinity (as the DaemonSet controller writes it), which the simulator binds it to.
fn node_to_bind(p: &Pod) -> Option<String> {
    let spec = p.spec.as_ref()?;
    if spec.node_name.is_some() {
        return None;
    }
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    terms.iter().find_map(|t| {
        t.match_fields.as_ref()?.iter().find_map(|r| {
            (r.key == "metadata.name" && r.operator == "In")
                .then(|| r.values.as_ref()?.first().cloned())
                .flatten()
        })
    })
}

pub fn count_pods(c: &Cluster, ns: &str, selector: &str) -> Result<usize> {
    Ok(c.items(&["get", "pods", "-n", ns, "-l", selector])?
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .count())
}
