//! Pods bound to this node: a watch (field selector `spec.nodeName`) feeds one [`PodWorker`]
//! per pod UID; each worker drives the runtime towards its pod's spec and writes status back.

mod events;
mod probes;
mod pull_secrets;
mod spec;
mod status;
mod volumes;
mod worker;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher;
use kube::Api;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::cri::{Cri, LABEL_POD_UID};
use crate::metrics::Metrics;
use crate::{KubeletConfig, Result};
pub use events::Recorder;
pub use volumes::remove_pod_dir;
pub use worker::PodWorker;

/// What every pod worker shares.
pub struct PodContext {
    pub client: kube::Client,
    pub cri: Cri,
    pub node_name: String,
    pub host_ip: IpAddr,
    /// `DATA_DIR/pods`: one directory per pod UID (volumes, hosts file).
    pub root: PathBuf,
    pub config: KubeletConfig,
    pub metrics: Arc<Metrics>,
    pub events: Recorder,
}

impl PodContext {
    /// Directory of a pod's CRI logs (absolute, as containerd requires).
    pub fn log_dir(&self, pod: &Pod) -> PathBuf {
        let m = &pod.metadata;
        self.config.data_dir.join("logs").join(format!(
            "{}_{}_{}",
            m.namespace.as_deref().unwrap_or_default(),
            m.name.as_deref().unwrap_or_default(),
            m.uid.as_deref().unwrap_or_default()
        ))
    }
}

/// The latest object of a pod as its worker sees it; `None` once the object is gone.
type PodUpdate = Option<Box<Pod>>;

/// Watches this node's pods and runs a worker per pod.
pub struct PodManager {
    ctx: Arc<PodContext>,
    workers: HashMap<String, watch::Sender<PodUpdate>>,
}

impl PodManager {
    pub fn new(ctx: PodContext) -> Self {
        Self {
            ctx: Arc::new(ctx),
            workers: HashMap::new(),
        }
    }

    /// Runs until `shutdown`; workers are stopped, containers keep running.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<()> {
        let pods: Api<Pod> = Api::all(self.ctx.client.clone());
        let selector = format!("spec.nodeName={}", self.ctx.node_name);
        let mut events = watcher(pods, watcher::Config::default().fields(&selector)).boxed();
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<String>();
        let mut tasks = JoinSet::new();
        let mut listed: HashSet<String> = HashSet::new();
        loop {
            let managed = self.workers.len() as u64;
            self.ctx
                .metrics
                .pods
                .store(managed, std::sync::atomic::Ordering::Relaxed);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(uid) = done_rx.recv() => {
                    self.workers.remove(&uid);
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                event = events.next() => match event {
                    Some(Ok(watcher::Event::Apply(pod))) => {
                        self.dispatch(pod, &mut tasks, &done_tx, &shutdown)
                    }
                    Some(Ok(watcher::Event::Delete(pod))) => {
                        if let Some(tx) = pod.metadata.uid.as_ref().and_then(|u| self.workers.get(u)) {
                            let _ = tx.send(None);
                        }
                    }
                    Some(Ok(watcher::Event::Init)) => listed.clear(),
                    Some(Ok(watcher::Event::InitApply(pod))) => {
                        listed.extend(pod.metadata.uid.clone());
                        self.dispatch(pod, &mut tasks, &done_tx, &shutdown);
                    }
                    Some(Ok(watcher::Event::InitDone)) => {
                        self.forget_missing(&listed);
                        if let Err(e) = self.remove_orphans(&listed).await {
                            tracing::warn!(error = %e, "cleaning up orphaned sandboxes");
                        }
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "pod watch failed; retrying");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                    None => break,
                },
            }
        }
        // Workers see the cancelled token and return after their current step.
        while tasks.join_next().await.is_some() {}
        Ok(())
    }

    fn dispatch(
        &mut self,
        pod: Pod,
        tasks: &mut JoinSet<()>,
        done: &mpsc::UnboundedSender<String>,
        shutdown: &CancellationToken,
    ) {
        let Some(uid) = pod.metadata.uid.clone() else {
            return;
        };
        if let Some(tx) = self.workers.get(&uid) {
            let _ = tx.send(Some(Box::new(pod)));
            return;
        }
        let (tx, rx) = watch::channel(Some(Box::new(pod.clone())));
        self.workers.insert(uid.clone(), tx);
        let worker = PodWorker::new(self.ctx.clone(), pod);
        let (done, shutdown) = (done.clone(), shutdown.clone());
        tasks.spawn(async move {
            worker.run(rx, shutdown).await;
            let _ = done.send(uid);
        });
    }

    /// Pods whose objects disappeared while the watch was down.
    fn forget_missing(&mut self, listed: &HashSet<String>) {
        for (uid, tx) in &self.workers {
            if !listed.contains(uid) {
                let _ = tx.send(None);
            }
        }
    }

    /// Removes sandboxes (with their containers) of pods that no longer exist.
    async fn remove_orphans(&self, listed: &HashSet<String>) -> Result<()> {
        for sandbox in self.ctx.cri.list_sandboxes(None).await? {
            let Some(uid) = sandbox.labels.get(LABEL_POD_UID) else {
                continue;
            };
            if listed.contains(uid) || self.workers.contains_key(uid) {
                continue;
            }
            tracing::info!(sandbox = %sandbox.id, pod_uid = %uid, "removing the sandbox of a pod that no longer exists");
            self.ctx.cri.remove_sandbox(&sandbox.id).await?;
            volumes::remove_pod_dir(&self.ctx.root.join(uid));
        }
        Ok(())
    }
}
