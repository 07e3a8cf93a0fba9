//! The running scheduler: watches into the cache and queue, the scheduling loop, binding,
//! status updates, events, preemption and leader election.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{
    Namespace, Node, PersistentVolume, PersistentVolumeClaim, Pod, ReplicationController, Service,
};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher::{self, Event as WatchEvent};
use kube::runtime::WatchStreamExt;
use kube::Resource;
use serde_json::json;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::cache::{Cache, ClusterEvent, Objects};
use crate::claims;
use crate::framework::{Preemption, Profile};
use crate::leader::{LeaderElector, LeaseConfig};
use crate::metrics::Metrics;
use crate::model::PodInfo;
use crate::plugins::volumes;
use crate::queue::{Popped, Queue};
use crate::watched::WatchedPod;
use crate::SchedulerConfig;

struct Scheduler {
    client: kube::Client,
    cache: Mutex<Cache>,
    queue: Arc<Queue>,
    metrics: Arc<Metrics>,
    profile: Profile,
    name: String,
    instance: String,
    binds: Arc<Semaphore>,
    writes: Arc<Semaphore>,
    /// This instance holds the lease (or runs without election).
    leading: AtomicBool,
    assumed_pod_ttl: Duration,
}

/// Upstream's PodScheduled condition for a pod waiting on its scheduling gates.
const GATED_REASON: &str = "SchedulingGated";
const GATED_MESSAGE: &str = "Scheduling is blocked due to non-empty scheduling gates";
/// How long PreBind waits for the pod's claims to be bound (upstream's `bindTimeoutSeconds`).
const PRE_BIND_TIMEOUT: Duration = Duration::from_secs(600);

/// Runs the scheduler with a given client until `shutdown` is cancelled.
pub async fn run_with_client(
    config: SchedulerConfig,
    client: kube::Client,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let host = crate::component::hostname();
    let sched = Arc::new(Scheduler {
        client: client.clone(),
        cache: Mutex::new(Cache::default()),
        queue: Arc::new(Queue::default()),
        metrics: Arc::new(Metrics::default()),
        profile: Profile::default(),
        name: config.scheduler_name.clone(),
        instance: format!("{}-{host}", config.scheduler_name),
        binds: Arc::new(Semaphore::new(config.parallel_binds.max(1))),
        writes: Arc::new(Semaphore::new(16)),
        leading: AtomicBool::new(false),
        assumed_pod_ttl: config.assumed_pod_ttl,
    });
    if let Some(addr) = config.metrics_addr()? {
        let (metrics, queue) = (sched.metrics.clone(), sched.queue.clone());
        let render = move || metrics.render(&queue);
        let bound = crate::component::serve_metrics(addr, render, shutdown.clone()).await?;
        tracing::info!(address = %bound, "serving /metrics over plain HTTP");
    }

    let (synced_tx, mut synced_rx) = mpsc::channel::<&'static str>(16);
    let objects = |what, kind| {
        tokio::spawn(watch_objects(
            sched.clone(),
            what,
            synced_tx.clone(),
            shutdown.clone(),
            kind,
        ))
    };
    let watchers = vec![
        objects("poddisruptionbudgets", ObjectKind::Pdb),
        objects("persistentvolumeclaims", ObjectKind::Pvc),
        objects("persistentvolumes", ObjectKind::Pv),
        objects("storageclasses", ObjectKind::StorageClass),
        objects("services", ObjectKind::Service),
        objects("replicasets", ObjectKind::ReplicaSet),
        objects("statefulsets", ObjectKind::StatefulSet),
        objects("replicationcontrollers", ObjectKind::ReplicationController),
        tokio::spawn(expire_assumed(sched.clone(), shutdown.clone())),
        tokio::spawn(watch_nodes(
            sched.clone(),
            synced_tx.clone(),
            shutdown.clone(),
        )),
        tokio::spawn(watch_pods(
            sched.clone(),
            synced_tx.clone(),
            shutdown.clone(),
        )),
        tokio::spawn(watch_namespaces(sched.clone(), synced_tx, shutdown.clone())),
    ];
    // Every watcher but the expiry loop reports once synced.
    for _ in 1..watchers.len() {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            what = synced_rx.recv() => match what {
                Some(w) => tracing::debug!(cache = w, "cache synced"),
                None => break,
            },
        }
    }
    tracing::info!("caches synced");

    let mut elector = config.leader_elect.then(|| {
        let identity = config
            .leader_elect_identity
            .clone()
            .unwrap_or_else(crate::leader::default_identity);
        LeaderElector::new(
            client.clone(),
            LeaseConfig {
                namespace: config.leader_elect_resource_namespace.clone(),
                name: config.leader_elect_resource_name.clone(),
                identity,
                lease_duration: config.leader_elect_lease_duration,
                renew_deadline: config.leader_elect_renew_deadline,
                retry_period: config.leader_elect_retry_period,
            },
        )
    });
    while !shutdown.is_cancelled() {
        if let Some(e) = elector.as_mut() {
            if !e.acquire(&shutdown).await {
                break;
            }
        }
        sched.metrics.set_leader(true);
        sched.leading.store(true, Ordering::Relaxed);
        let leading = shutdown.child_token();
        let worker = tokio::spawn(schedule_loop(sched.clone(), leading.clone()));
        match elector.as_mut() {
            Some(e) => e.hold(&shutdown).await,
            None => shutdown.cancelled().await,
        }
        leading.cancel();
        let _ = worker.await;
        sched.leading.store(false, Ordering::Relaxed);
        sched.metrics.set_leader(false);
        if !shutdown.is_cancelled() {
            tracing::warn!("lost leadership; standing by");
        }
    }
    // Let bindings in flight finish (bounded).
    let all = u32::try_from(config.parallel_binds.max(1)).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(Duration::from_secs(10), sched.binds.acquire_many(all)).await;
    for w in watchers {
        w.abort();
    }
    tracing::info!("scheduler stopped");
    Ok(())
}

impl Scheduler {
    fn cache(&self) -> MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn responsible(&self, pod: &Pod) -> bool {
        let spec = pod.spec.as_ref();
        let name = spec.and_then(|s| s.scheduler_name.as_deref()).unwrap_or("");
        name.is_empty() || name == self.name
    }

    fn apply_pod(self: &Arc<Self>, pod: Pod) {
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if matches!(phase, Some("Succeeded" | "Failed")) {
            let uid = pod.metadata.uid.clone().unwrap_or_default();
            return self.delete_pod(&uid);
        }
        let responsible =
            pod.spec.as_ref().is_some_and(|s| s.node_name.is_some()) || self.responsible(&pod);
        if !responsible {
            return;
        }
        let info = PodInfo::new(pod);
        if info.node_name.is_some() {
            self.queue.remove(&info.uid);
            let ev = self.cache().upsert_pod(info);
            if let Some(ev) = ev {
                self.queue.on_event(ev);
            }
        } else if info.terminating {
            self.queue.remove(&info.uid);
        } else if !self.cache().is_assumed(&info.uid) {
            let gated = info.gated.then(|| info.clone());
            self.queue.upsert(info);
            if let Some(info) = gated {
                if self.leading.load(Ordering::Relaxed) {
                    self.report_gated(info);
                }
            }
        }
    }

    /// Sets `PodScheduled=False, reason SchedulingGated` on a gated pod lacking it.
    fn report_gated(self: &Arc<Self>, info: Arc<PodInfo>) {
        let has = info
            .pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter().any(|c| {
                    c.type_ == "PodScheduled"
                        && c.status == "False"
                        && c.reason.as_deref() == Some(GATED_REASON)
                })
            });
        if has {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            let Ok(_permit) = me.writes.acquire().await else {
                return;
            };
            let status = json!({"status": {"conditions": [{
                "type": "PodScheduled", "status": "False", "reason": GATED_REASON,
                "message": GATED_MESSAGE, "lastProbeTime": null,
                "lastTransitionTime": Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            }]}});
            let pods: Api<Pod> = Api::namespaced(me.client.clone(), &info.namespace);
            if let Err(e) = pods
                .patch_status(
                    &info.name,
                    &PatchParams::default(),
                    &Patch::Strategic(status),
                )
                .await
            {
                tracing::debug!(pod = %info.key(), error = %e, "setting SchedulingGated");
            }
        });
    }

    fn delete_pod(&self, uid: &str) {
        self.queue.remove(uid);
        let ev = self.cache().remove_pod(uid);
        if let Some(ev) = ev {
            self.queue.on_event(ev);
        }
    }

    /// One scheduling cycle; binding continues in the background.
    fn schedule_one(self: &Arc<Self>, p: Popped) {
        let start = Instant::now();
        let info = p.info.clone();
        let outcome = {
            let mut cache = self.cache();
            match self.profile.schedule(&info, &mut cache) {
                Ok(node) => {
                    self.metrics.algorithm(start.elapsed());
                    cache.assume(info.assumed_on(&node));
                    Ok(node)
                }
                Err(fit) => {
                    self.metrics.algorithm(start.elapsed());
                    let pre = self.profile.preempt(&info, &cache, &fit);
                    if let Preemption::Victims { node, .. } = &pre {
                        cache.nominate(node, info.clone());
                    }
                    Err((fit, pre))
                }
            }
        };
        match outcome {
            Ok(node) => {
                tracing::debug!(pod = %info.key(), %node, "assumed");
                self.queue.done(&info.uid);
                let me = self.clone();
                tokio::spawn(async move { me.bind(info, node, start).await });
            }
            Err((fit, pre)) => {
                self.metrics.attempt("unschedulable", start.elapsed());
                let mut msg = fit.message();
                let mut rejected: Vec<&'static str> =
                    fit.statuses.iter().map(|(_, p, _)| *p).collect();
                rejected.sort_unstable();
                rejected.dedup();
                let nominated = match pre {
                    Preemption::NotHelpful(m) => {
                        msg.push_str(&format!(" preemption: {m}"));
                        None
                    }
                    Preemption::Victims { node, victims } => {
                        self.metrics.preemption_attempt();
                        let me = self.clone();
                        let (pod, n) = (info.clone(), node.clone());
                        tokio::spawn(async move { me.evict(pod, n, victims).await });
                        Some(node)
                    }
                };
                tracing::info!(pod = %info.key(), reason = %msg, "unschedulable");
                self.queue.failed(&p, rejected, false);
                let me = self.clone();
                tokio::spawn(async move { me.report_unschedulable(info, msg, nominated).await });
            }
        }
    }

    async fn bind(self: Arc<Self>, info: Arc<PodInfo>, node: String, start: Instant) {
        if !info.claims.is_empty() {
            if let Err(e) = self.pre_bind(&info, &node).await {
                self.cache().forget(&info.uid);
                self.metrics.attempt("error", start.elapsed());
                let msg = format!("running PreBind plugin \"VolumeBinding\": binding volumes: {e}");
                tracing::info!(pod = %info.key(), %node, error = %msg, "volumes not bound; retrying");
                self.queue.requeue(info.clone());
                if let Ok(_write) = self.writes.acquire().await {
                    self.event(&info, "Warning", "FailedScheduling", "Scheduling", &msg)
                        .await;
                }
                return;
            }
        }
        let Ok(permit) = self.binds.clone().acquire_owned().await else {
            return;
        };
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &info.namespace);
        let body = json!({
            "apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": info.name, "namespace": info.namespace, "uid": info.uid},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        });
        let result = pods
            .create_subresource::<_, serde_json::Value>(
                "binding",
                &info.name,
                &PostParams::default(),
                &body,
            )
            .await;
        // The event below is not part of the binding: free the slot for the next one.
        drop(permit);
        match result {
            Ok(_) => {
                self.cache().finish_binding(&info.uid, self.assumed_pod_ttl);
                self.metrics.attempt("scheduled", start.elapsed());
                tracing::debug!(pod = %info.key(), %node, "bound");
                let msg = format!(
                    "Successfully assigned {}/{} to {node}",
                    info.namespace, info.name
                );
                let Ok(_write) = self.writes.acquire().await else {
                    return;
                };
                self.event(&info, "Normal", "Scheduled", "Binding", &msg)
                    .await;
            }
            Err(e) => {
                self.cache().forget(&info.uid);
                match &e {
                    kube::Error::Api(s) if s.code == 404 || s.code == 409 => {
                        tracing::info!(pod = %info.key(), error = %e, "binding rejected; the watch will tell");
                    }
                    _ => {
                        self.metrics.attempt("error", start.elapsed());
                        tracing::warn!(pod = %info.key(), %node, error = %e, "binding failed; retrying");
                        self.queue.requeue(info);
                    }
                }
            }
        }
    }

    /// VolumeBinding's PreBind: pre-binds the chosen static volumes (`claimRef`) and asks for
    /// provisioning on `node` (`selected-node`), then waits, off the scheduling loop, until
    /// the PV controller has bound every claim of the pod (upstream's bind timeout: 600 s).
    async fn pre_bind(&self, info: &PodInfo, node: &str) -> Result<(), String> {
        let plan = volumes::plan_bindings(&self.cache(), info, node)
            .ok_or_else(|| "the chosen node can no longer satisfy the claims".to_string())?;
        for action in plan {
            match action {
                volumes::VolumeAction::PreBind { pv, pvc } => {
                    let mut pv = pv.as_ref().clone();
                    let name = pv.metadata.name.clone().unwrap_or_default();
                    if let Some(spec) = pv.spec.as_mut() {
                        spec.claim_ref = Some(claims::claim_ref(&pvc));
                    }
                    pv.metadata
                        .annotations
                        .get_or_insert_with(Default::default)
                        .insert(claims::ANN_BOUND_BY_CONTROLLER.into(), "yes".into());
                    let api: Api<PersistentVolume> = Api::all(self.client.clone());
                    api.replace(&name, &PostParams::default(), &pv)
                        .await
                        .map_err(|e| format!("pre-binding volume {name:?}: {e}"))?;
                }
                volumes::VolumeAction::Provision { pvc } => {
                    let ns = pvc.metadata.namespace.clone().unwrap_or_default();
                    let name = pvc.metadata.name.clone().unwrap_or_default();
                    let api: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), &ns);
                    let patch = json!({"metadata": {
                        "annotations": {claims::ANN_SELECTED_NODE: node},
                        "resourceVersion": pvc.metadata.resource_version,
                    }});
                    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                        .map_err(|e| format!("selecting node for claim {name:?}: {e}"))?;
                }
            }
        }
        let deadline = Instant::now() + PRE_BIND_TIMEOUT;
        loop {
            {
                let cache = self.cache();
                if !cache.is_assumed(&info.uid) {
                    return Err("the pod is no longer assumed".into());
                }
                if volumes::claims_bound(&cache, info, node)? {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err("timed out waiting for the condition".into());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `PodScheduled=False/Unschedulable` (when it changed) and a `FailedScheduling` event.
    async fn report_unschedulable(
        &self,
        info: Arc<PodInfo>,
        msg: String,
        nominated: Option<String>,
    ) {
        let Ok(_permit) = self.writes.acquire().await else {
            return;
        };
        let current = info.pod.status.as_ref();
        let same = current
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"))
            .is_some_and(|c| {
                c.status == "False"
                    && c.reason.as_deref() == Some("Unschedulable")
                    && c.message.as_deref() == Some(msg.as_str())
            });
        let nominated_now = current.and_then(|s| s.nominated_node_name.clone());
        if !same || (nominated.is_some() && nominated != nominated_now) {
            let mut status = json!({"conditions": [{
                "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                "message": msg, "lastProbeTime": null,
                "lastTransitionTime": Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            }]});
            if let Some(n) = &nominated {
                status["nominatedNodeName"] = json!(n);
            }
            let pods: Api<Pod> = Api::namespaced(self.client.clone(), &info.namespace);
            let patch = Patch::Strategic(json!({"status": status}));
            if let Err(e) = pods
                .patch_status(&info.name, &PatchParams::default(), &patch)
                .await
            {
                tracing::warn!(pod = %info.key(), error = %e, "updating PodScheduled");
            }
        }
        self.event(&info, "Warning", "FailedScheduling", "Scheduling", &msg)
            .await;
    }

    /// Deletes the victims gracefully (marking them `DisruptionTarget` first, as upstream).
    async fn evict(&self, preemptor: Arc<PodInfo>, node: String, victims: Vec<Arc<PodInfo>>) {
        for v in victims {
            tracing::info!(victim = %v.key(), preemptor = %preemptor.key(), %node, "preempting");
            let pods: Api<Pod> = Api::namespaced(self.client.clone(), &v.namespace);
            let cond = json!({"status": {"conditions": [{
                "type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler",
                "message": format!("{}: preempting to accommodate a higher priority pod", self.name),
                "lastTransitionTime": Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            }]}});
            if let Err(e) = pods
                .patch_status(&v.name, &PatchParams::default(), &Patch::Strategic(cond))
                .await
            {
                tracing::debug!(victim = %v.key(), error = %e, "marking DisruptionTarget");
            }
            match pods.delete(&v.name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => tracing::warn!(victim = %v.key(), error = %e, "deleting a victim"),
            }
            let msg = format!("Preempted by pod {} on node {node}", preemptor.uid);
            self.event(&v, "Normal", "Preempted", "Preempting", &msg)
                .await;
        }
    }

    /// An events.k8s.io/v1 Event about a pod, as the upstream scheduler's recorder writes.
    async fn event(&self, pod: &PodInfo, type_: &str, reason: &str, action: &str, note: &str) {
        let now = Timestamp::now();
        let ev = json!({
            "metadata": {
                "name": format!("{}.{:x}", pod.name, now.as_nanosecond()),
                "namespace": pod.namespace,
            },
            "eventTime": now.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
            "reportingController": self.name,
            "reportingInstance": self.instance,
            "action": action,
            "reason": reason,
            "type": type_,
            "note": note,
            "regarding": {
                "kind": "Pod", "apiVersion": "v1", "namespace": pod.namespace, "name": pod.name,
                "uid": pod.uid, "resourceVersion": pod.pod.meta().resource_version,
            },
        });
        let ev: Event = match serde_json::from_value(ev) {
            Ok(e) => e,
            Err(e) => return tracing::warn!(error = %e, "building an event"),
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &pod.namespace);
        if let Err(e) = api.create(&PostParams::default(), &ev).await {
            tracing::debug!(pod = %pod.key(), error = %e, reason, "recording an event");
        }
    }
}

async fn schedule_loop(sched: Arc<Scheduler>, stop: CancellationToken) {
    tracing::info!("scheduling");
    for info in sched.queue.gated() {
        sched.report_gated(info);
    }
    while let Some(p) = sched.queue.pop(&stop).await {
        sched.schedule_one(p);
        // Let watch and bind tasks run between decisions.
        tokio::task::yield_now().await;
    }
}

/// What a watch tells its cache.
enum Change<K> {
    Apply(K),
    Delete(K),
    /// After a (re-)list: everything not named here is gone.
    Resync(HashSet<String>),
}

/// Feeds a watch into `handle`; tells `synced` after the first full list. Objects are keyed
/// by `key` for re-lists.
async fn watch<K>(
    api: Api<K>,
    what: &'static str,
    synced: mpsc::Sender<&'static str>,
    stop: CancellationToken,
    key: fn(&K) -> String,
    mut handle: impl FnMut(Change<K>) + Send,
) where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    let cfg = watcher::Config::default().page_size(5000);
    let mut stream = watcher::watcher(api, cfg).default_backoff().boxed();
    let mut listing: Option<HashSet<String>> = None;
    let mut told = false;
    loop {
        let next = tokio::select! {
            _ = stop.cancelled() => return,
            n = stream.try_next() => n,
        };
        match next {
            Ok(Some(WatchEvent::Init)) => listing = Some(HashSet::new()),
            Ok(Some(WatchEvent::InitApply(o))) => {
                if let Some(l) = listing.as_mut() {
                    l.insert(key(&o));
                }
                handle(Change::Apply(o));
            }
            Ok(Some(WatchEvent::InitDone)) => {
                if let Some(seen) = listing.take() {
                    handle(Change::Resync(seen));
                }
                if !told {
                    told = true;
                    let _ = synced.send(what).await;
                }
            }
            Ok(Some(WatchEvent::Apply(o))) => handle(Change::Apply(o)),
            Ok(Some(WatchEvent::Delete(o))) => handle(Change::Delete(o)),
            Ok(None) => return,
            Err(e) => tracing::warn!(watch = what, error = %e, "watch failed; retrying"),
        }
    }
}

fn name_of<K: kube::Resource>(k: &K) -> String {
    k.meta().name.clone().unwrap_or_default()
}

fn uid_of<K: kube::Resource>(k: &K) -> String {
    k.meta().uid.clone().unwrap_or_default()
}

async fn watch_nodes(
    s: Arc<Scheduler>,
    synced: mpsc::Sender<&'static str>,
    stop: CancellationToken,
) {
    let api: Api<Node> = Api::all(s.client.clone());
    watch(api, "nodes", synced, stop, name_of, |c| match c {
        Change::Apply(n) => {
            let ev = s.cache().upsert_node(n);
            if let Some(ev) = ev {
                s.queue.on_event(ev);
            }
        }
        Change::Delete(n) => s.cache().remove_node(&name_of(&n)),
        Change::Resync(keep) => s.cache().retain_nodes(&keep),
    })
    .await;
}

async fn watch_pods(
    s: Arc<Scheduler>,
    synced: mpsc::Sender<&'static str>,
    stop: CancellationToken,
) {
    let api: Api<WatchedPod> = Api::all(s.client.clone());
    let s2 = s.clone();
    watch(api, "pods", synced, stop, uid_of, move |c| match c {
        Change::Apply(WatchedPod(p)) => s2.apply_pod(p),
        Change::Delete(p) => s2.delete_pod(&uid_of(&p)),
        Change::Resync(keep) => s2.cache().retain_pods(&keep),
    })
    .await;
}

async fn watch_namespaces(
    s: Arc<Scheduler>,
    synced: mpsc::Sender<&'static str>,
    stop: CancellationToken,
) {
    let api: Api<Namespace> = Api::all(s.client.clone());
    watch(api, "namespaces", synced, stop, name_of, |c| {
        let mut cache = s.cache();
        match c {
            Change::Apply(n) => {
                let labels = n.metadata.labels.clone().unwrap_or_default();
                cache.namespaces.insert(name_of(&n), labels);
            }
            Change::Delete(n) => {
                cache.namespaces.remove(&name_of(&n));
            }
            Change::Resync(keep) => cache.namespaces.retain(|n, _| keep.contains(n)),
        }
    })
    .await;
}

/// The kinds cached in [`Objects`].
#[derive(Debug, Clone, Copy)]
enum ObjectKind {
    Pdb,
    Pvc,
    Pv,
    StorageClass,
    Service,
    ReplicaSet,
    StatefulSet,
    ReplicationController,
}

/// `namespace/name`, or `name` for cluster-scoped objects.
fn key_of<K: kube::Resource>(k: &K) -> String {
    match k.meta().namespace.as_deref() {
        Some(ns) => format!("{ns}/{}", name_of(k)),
        None => name_of(k),
    }
}

async fn watch_objects(
    s: Arc<Scheduler>,
    what: &'static str,
    synced: mpsc::Sender<&'static str>,
    stop: CancellationToken,
    kind: ObjectKind,
) {
    let c = s.client.clone();
    let volume = Some(ClusterEvent::VolumeChange);
    match kind {
        ObjectKind::Pdb => {
            let api = Api::<PodDisruptionBudget>::all(c);
            watch_into(s, api, what, synced, stop, |o| &mut o.pdbs, None).await
        }
        ObjectKind::Pvc => {
            let api = Api::<PersistentVolumeClaim>::all(c);
            watch_into(s, api, what, synced, stop, |o| &mut o.pvcs, volume).await
        }
        ObjectKind::Pv => {
            let api = Api::<PersistentVolume>::all(c);
            watch_into(s, api, what, synced, stop, |o| &mut o.pvs, volume).await
        }
        ObjectKind::StorageClass => {
            let api = Api::<StorageClass>::all(c);
            watch_into(
                s,
                api,
                what,
                synced,
                stop,
                |o| &mut o.storage_classes,
                volume,
            )
            .await
        }
        ObjectKind::Service => {
            let api = Api::<Service>::all(c);
            watch_into(s, api, what, synced, stop, |o| &mut o.services, None).await
        }
        ObjectKind::ReplicaSet => {
            let api = Api::<ReplicaSet>::all(c);
            watch_into(s, api, what, synced, stop, |o| &mut o.replica_sets, None).await
        }
        ObjectKind::StatefulSet => {
            let api = Api::<StatefulSet>::all(c);
            watch_into(s, api, what, synced, stop, |o| &mut o.stateful_sets, None).await
        }
        ObjectKind::ReplicationController => {
            let api = Api::<ReplicationController>::all(c);
            let slot: fn(&mut Objects) -> &mut _ = |o| &mut o.replication_controllers;
            watch_into(s, api, what, synced, stop, slot, None).await
        }
    }
}

/// Mirrors a kind into its map in [`Objects`]; adds and updates raise `event`.
async fn watch_into<K>(
    s: Arc<Scheduler>,
    api: Api<K>,
    what: &'static str,
    synced: mpsc::Sender<&'static str>,
    stop: CancellationToken,
    slot: fn(&mut Objects) -> &mut HashMap<String, Arc<K>>,
    event: Option<ClusterEvent>,
) where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync,
    K: 'static,
{
    watch(api, what, synced, stop, key_of, move |c| {
        let mut cache = s.cache();
        let map = slot(&mut cache.objects);
        let changed = match c {
            Change::Apply(o) => {
                map.insert(key_of(&o), Arc::new(o));
                true
            }
            Change::Delete(o) => {
                map.remove(&key_of(&o));
                false
            }
            Change::Resync(keep) => {
                map.retain(|k, _| keep.contains(k));
                false
            }
        };
        drop(cache);
        if let Some(ev) = event.filter(|_| changed) {
            s.queue.on_event(ev);
        }
    })
    .await;
}

/// Every second, checks the assumed pods whose binding finished more than the TTL ago and
/// that the watch has still not confirmed: bound in the API → confirmed as the watch would;
/// gone or not bound → forgotten (freeing the node), and retried if still pending.
async fn expire_assumed(s: Arc<Scheduler>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let expired = s.cache().expired(std::time::Instant::now());
        for info in expired {
            let pods: Api<Pod> = Api::namespaced(s.client.clone(), &info.namespace);
            match pods.get_opt(&info.name).await {
                Ok(Some(p)) if uid_of(&p) == info.uid => {
                    if p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_none() {
                        tracing::warn!(pod = %info.key(), "assumed pod expired unbound; retrying");
                        s.cache().forget(&info.uid);
                    }
                    s.apply_pod(p);
                }
                Ok(_) => {
                    tracing::warn!(pod = %info.key(), "assumed pod expired and is gone");
                    if s.cache().forget(&info.uid) {
                        s.queue.on_event(ClusterEvent::AssignedPodDelete);
                    }
                }
                Err(e) => {
                    tracing::debug!(pod = %info.key(), error = %e, "checking an expired assumed pod");
                    s.cache().finish_binding(&info.uid, s.assumed_pod_ttl);
                }
            }
        }
    }
}
