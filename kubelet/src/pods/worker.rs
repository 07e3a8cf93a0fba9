//! One pod's worker: each sync observes the runtime, takes the next step towards the spec
//! (sandbox, init containers in order, containers, restarts with back-off) and writes status.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::{Container, Pod, PodStatus};
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::Api;
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use super::probes::{self, ContainerProbes, ProbeKind};
use super::spec::{self, ContainerInputs, Sources};
use super::status::{self, ContainerObs, Observed, Waiting};
use super::{volumes, PodContext, PodUpdate};
use crate::metrics::Metrics;
use crate::Result;

/// First delay of the crash-loop back-off; it doubles up to [`MAX_BACKOFF`].
const INITIAL_BACKOFF: Duration = Duration::from_secs(10);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// A container that ran this long forgets its back-off.
const BACKOFF_RESET: Duration = Duration::from_secs(600);
/// Grace period when the pod names none.
const DEFAULT_GRACE_SECONDS: i64 = 30;
/// What is left for SIGTERM after a preStop hook, at least (upstream's minimum).
const MIN_GRACE_SECONDS: i64 = 2;
/// Image pull back-off: first delay, doubling up to the maximum (as upstream).
const PULL_BACKOFF: Duration = Duration::from_secs(10);
const MAX_PULL_BACKOFF: Duration = Duration::from_secs(300);
/// Upstream's status message of a pod past `activeDeadlineSeconds`.
const DEADLINE_MESSAGE: &str = "Pod was active on the node longer than the specified deadline";

/// A failed pull of an image: no new attempt before `until`.
struct PullBackoff {
    until: Instant,
    delay: Duration,
    error: String,
}

/// Upstream's default pull policy: `Always` for `:latest` or untagged images, else
/// `IfNotPresent` (the API server sets it; this covers objects that lack it).
fn default_pull_policy(image: &str) -> &'static str {
    let name = image.split('@').next().unwrap_or(image);
    let last = name.rsplit('/').next().unwrap_or(name);
    match last.split_once(':') {
        _ if image.contains('@') => "IfNotPresent",
        Some((_, tag)) if tag != "latest" => "IfNotPresent",
        _ => "Always",
    }
}

/// Drives one pod (identified by UID) on the runtime.
pub struct PodWorker {
    ctx: Arc<PodContext>,
    pod: Pod,
    uid: String,
    /// Host path of each volume, made when the first container of a sandbox starts.
    volumes: Option<HashMap<String, PathBuf>>,
    /// Current crash-loop delay per container name.
    backoff: HashMap<String, Duration>,
    /// Why a container is not running, as found by the last sync.
    waiting: HashMap<String, Waiting>,
    /// The pod reached Succeeded or Failed: nothing more is started.
    terminal: bool,
    /// Probes of the running container instances, by container ID.
    probes: HashMap<String, ContainerProbes>,
    /// Notified when a probe result changes: the worker syncs at once.
    wake: Arc<Notify>,
    /// Failed image pulls, by image.
    pull_backoff: HashMap<String, PullBackoff>,
}

/// The decision for one container after looking at its latest instance.
enum Step {
    /// Nothing to do: running, or finished for good.
    Keep,
    /// Start a new instance with this attempt number.
    Start(u32),
    /// Exited and due for a restart, but still backing off.
    BackOff(Duration),
}

impl PodWorker {
    pub fn new(ctx: Arc<PodContext>, pod: Pod) -> Self {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let terminal = matches!(
            pod.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        );
        Self {
            ctx,
            pod,
            uid,
            volumes: None,
            backoff: HashMap::new(),
            waiting: HashMap::new(),
            terminal,
            probes: HashMap::new(),
            wake: Arc::new(Notify::new()),
            pull_backoff: HashMap::new(),
        }
    }

    /// The pod's grace period from its spec (deletion overrides it elsewhere).
    fn spec_grace(&self) -> i64 {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds)
            .unwrap_or(DEFAULT_GRACE_SECONDS)
    }

    /// The container of the spec (regular or init) with this name.
    fn container_spec(&self, name: &str) -> Option<Container> {
        let spec = self.pod.spec.as_ref()?;
        spec.containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .find(|c| c.name == name)
            .cloned()
    }

    fn hook_target(&self, id: &str, c: &Container, pod_ip: &str) -> probes::Target {
        probes::Target {
            cri: self.ctx.cri.clone(),
            container_id: id.to_string(),
            pod_ip: pod_ip.to_string(),
            container: c.clone(),
        }
    }

    /// Kills one container instance as upstream does: a `Killing` event, the preStop hook
    /// (within the grace period), then (once every container in `after` has stopped, while
    /// grace is left) the stop signal with what is left of the grace period.
    async fn kill_container(
        &self,
        id: &str,
        name: &str,
        grace: i64,
        message: String,
        pod_ip: &str,
        after: Vec<watch::Receiver<bool>>,
    ) -> Result<()> {
        self.event(Some(name), false, "Killing", message);
        let started = Instant::now();
        let container = self.container_spec(name);
        let pre_stop = container
            .as_ref()
            .and_then(|c| c.lifecycle.as_ref())
            .and_then(|l| l.pre_stop.clone());
        if let (Some(hook), Some(c)) = (pre_stop, container.as_ref()) {
            let target = self.hook_target(id, c, pod_ip);
            let limit = Duration::from_secs(grace.max(0) as u64);
            if let Err(e) = probes::run_hook(&hook, &target, &self.pod, limit).await {
                tracing::warn!(pod = %self.name(), container = %name, error = %e, "preStop hook failed");
                self.event(Some(name), true, "FailedPreStopHook", e);
            }
        }
        let limit = Duration::from_secs(grace.max(0) as u64).saturating_sub(started.elapsed());
        let turn = futures::future::join_all(after.into_iter().map(|mut rx| async move {
            // A closed channel means the other kill is over, too.
            let _ = rx.wait_for(|stopped| *stopped).await;
        }));
        let _ = tokio::time::timeout(limit, turn).await;
        let left = grace - started.elapsed().as_secs() as i64;
        self.ctx
            .cri
            .stop_container(id, left.max(MIN_GRACE_SECONDS))
            .await
    }

    /// Position of a sidecar among the pod's sidecars; `None` for other containers.
    fn sidecar_rank(&self, name: &str) -> Option<usize> {
        let spec = self.pod.spec.as_ref()?;
        spec.init_containers
            .iter()
            .flatten()
            .filter(|c| status::is_sidecar(c))
            .position(|c| c.name == name)
    }

    /// Kills running container instances (`(id, name)`) in upstream's order: the main
    /// containers together, then the sidecars one after another in reverse order, all within
    /// one grace period (preStop hooks start at once).
    async fn kill_in_order(
        &self,
        running: &[(String, String)],
        grace: i64,
        pod_ip: &str,
    ) -> Result<()> {
        let ranks: Vec<Option<usize>> = running
            .iter()
            .map(|(_, name)| self.sidecar_rank(name))
            .collect();
        // Main containers (no rank) stop before sidecars; a later sidecar before an earlier.
        let stops_before = |a: Option<usize>, b: Option<usize>| match (a, b) {
            (None, Some(_)) => true,
            (Some(a), Some(b)) => a > b,
            _ => false,
        };
        let (stopped, watchers): (Vec<_>, Vec<_>) =
            running.iter().map(|_| watch::channel(false)).unzip();
        let kills = running.iter().enumerate().map(|(i, (id, name))| {
            let after: Vec<watch::Receiver<bool>> = (0..running.len())
                .filter(|&j| stops_before(ranks[j], ranks[i]))
                .map(|j| watchers[j].clone())
                .collect();
            let done = &stopped[i];
            async move {
                let message = format!("Stopping container {name}");
                let r = self
                    .kill_container(id, name, grace, message, pod_ip, after)
                    .await;
                let _ = done.send(true);
                r
            }
        });
        for r in futures::future::join_all(kills).await {
            r?;
        }
        Ok(())
    }

    /// Starts probes for newly running instances and stops those of instances that are gone.
    fn sync_probes(&mut self, observed: &Observed) {
        let Some(spec) = self.pod.spec.as_ref() else {
            return;
        };
        let pod_ip = observed
            .sandbox
            .as_ref()
            .map(|s| s.ip.clone())
            .unwrap_or_default();
        let mut live = HashSet::new();
        let mut pod: Option<Arc<Pod>> = None;
        let sidecars = spec
            .init_containers
            .iter()
            .flatten()
            .filter(|c| status::is_sidecar(c));
        for c in spec.containers.iter().chain(sidecars) {
            if !probes::has_probes(c) {
                continue;
            }
            let latest = observed.containers.get(&c.name).and_then(|o| o.first());
            let Some(latest) = latest.filter(|l| status::running(l)) else {
                continue;
            };
            live.insert(latest.id.clone());
            if self.probes.contains_key(&latest.id) {
                continue;
            }
            let pod = pod
                .get_or_insert_with(|| Arc::new(self.pod.clone()))
                .clone();
            let target = probes::Target {
                cri: self.ctx.cri.clone(),
                container_id: latest.id.clone(),
                pod_ip: pod_ip.clone(),
                container: c.clone(),
            };
            let started_at = latest.status.started_at;
            let p = ContainerProbes::start(
                target,
                started_at,
                pod,
                self.ctx.events.clone(),
                self.wake.clone(),
            );
            self.probes.insert(latest.id.clone(), p);
        }
        self.probes.retain(|id, _| live.contains(id));
    }

    /// Kills the containers whose liveness or startup probe failed; true if any was killed.
    async fn kill_unhealthy(&mut self, observed: &Observed) -> bool {
        let restart = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.restart_policy.as_deref())
            .unwrap_or("Always")
            != "Never";
        let pod_ip = observed
            .sandbox
            .as_ref()
            .map(|s| s.ip.clone())
            .unwrap_or_default();
        let failed: Vec<(String, ProbeKind)> = self
            .probes
            .iter()
            .filter_map(|(id, p)| p.health().failed.map(|k| (id.clone(), k)))
            .collect();
        let mut killed = false;
        for (id, kind) in failed {
            let Some((name, _)) = observed
                .containers
                .iter()
                .find(|(_, list)| list.first().is_some_and(|l| l.id == id))
            else {
                continue;
            };
            let probe = self.container_spec(name).and_then(|c| match kind {
                ProbeKind::Startup => c.startup_probe,
                _ => c.liveness_probe,
            });
            let grace = probe
                .and_then(|p| p.termination_grace_period_seconds)
                .unwrap_or_else(|| self.spec_grace());
            let message = if self.sidecar_rank(name).is_some() {
                format!("Init container {name} failed {} probe", kind.lower())
            } else if restart {
                format!(
                    "Container {name} failed {} probe, will be restarted",
                    kind.lower()
                )
            } else {
                format!("Container {name} failed {} probe", kind.lower())
            };
            tracing::info!(pod = %self.name(), container = %name, probe = kind.lower(), "killing an unhealthy container");
            if let Err(e) = self
                .kill_container(&id, name, grace, message, &pod_ip, Vec::new())
                .await
            {
                tracing::warn!(pod = %self.name(), container = %name, error = %e, "killing an unhealthy container");
            }
            self.probes.remove(&id);
            killed = true;
        }
        killed
    }

    /// Whether the pod has been active longer than `activeDeadlineSeconds`.
    fn deadline_exceeded(&self) -> bool {
        let deadline = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.active_deadline_seconds);
        let start = self.pod.status.as_ref().and_then(|s| s.start_time.as_ref());
        match (deadline, start) {
            (Some(d), Some(t)) => {
                k8s_openapi::jiff::Timestamp::now().as_second() - t.0.as_second() >= d
            }
            _ => false,
        }
    }

    /// Fails the pod past its deadline: kills its containers and writes phase Failed with
    /// reason `DeadlineExceeded`, as upstream.
    async fn fail_past_deadline(&mut self) -> Result<()> {
        tracing::info!(pod = %self.name(), "pod exceeded its active deadline; killing it");
        self.event(None, true, "DeadlineExceeded", DEADLINE_MESSAGE.into());
        let observed = self.observe().await?;
        let pod_ip = observed
            .sandbox
            .as_ref()
            .map(|s| s.ip.clone())
            .unwrap_or_default();
        let running: Vec<(String, String)> = observed
            .containers
            .iter()
            .filter_map(|(name, list)| {
                list.first()
                    .filter(|l| status::running(l))
                    .map(|l| (l.id.clone(), name.clone()))
            })
            .collect();
        self.kill_in_order(&running, self.spec_grace(), &pod_ip)
            .await?;
        self.probes.clear();
        self.waiting.clear();
        let mut observed = self.observe().await?;
        observed.failure = Some(("DeadlineExceeded".into(), DEADLINE_MESSAGE.into()));
        self.finish_sync(observed).await
    }

    fn event(&self, container: Option<&str>, warning: bool, reason: &str, message: String) {
        let recorder = &self.ctx.events;
        recorder.record(&self.pod, container, warning, reason, message);
    }

    fn name(&self) -> String {
        format!(
            "{}/{}",
            self.pod.metadata.namespace.as_deref().unwrap_or_default(),
            self.pod.metadata.name.as_deref().unwrap_or_default()
        )
    }

    /// Syncs on every update of the pod and every sync period until the pod is gone or the
    /// kubelet shuts down.
    pub async fn run(
        mut self,
        mut updates: watch::Receiver<PodUpdate>,
        shutdown: CancellationToken,
    ) {
        let period = Duration::from_secs(self.ctx.config.sync_period_seconds.max(1));
        let wake = self.wake.clone();
        loop {
            if self.pod.metadata.deletion_timestamp.is_some() {
                match self.terminate(true).await {
                    Ok(()) => return,
                    Err(e) => tracing::warn!(pod = %self.name(), error = %e, "terminating the pod"),
                }
            } else {
                Metrics::inc(&self.ctx.metrics.pod_syncs);
                if let Err(e) = self.sync().await {
                    Metrics::inc(&self.ctx.metrics.pod_sync_errors);
                    tracing::warn!(pod = %self.name(), error = %e, "pod sync failed");
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                changed = updates.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let latest = updates.borrow_and_update().clone();
                    match latest {
                        Some(pod) => self.pod = *pod,
                        None => {
                            // The object is gone (deleted by someone else, or force-deleted).
                            if let Err(e) = self.terminate(false).await {
                                tracing::warn!(pod = %self.name(), error = %e, "cleaning up a deleted pod");
                            }
                            return;
                        }
                    }
                }
                _ = wake.notified() => {}
                _ = tokio::time::sleep(period) => {}
            }
        }
    }

    /// One pass towards the spec, then a status write if anything changed.
    async fn sync(&mut self) -> Result<()> {
        if self.terminal {
            return Ok(());
        }
        if self.deadline_exceeded() {
            return self.fail_past_deadline().await;
        }
        let mut observed = self.observe().await?;
        let Some(spec) = self.pod.spec.clone() else {
            return Ok(());
        };
        if observed.sandbox.as_ref().is_none_or(|s| !s.ready) {
            self.start_sandbox(&mut observed).await?;
        }
        if observed.sandbox.as_ref().is_some_and(|s| s.ready) {
            let restart_policy = spec
                .restart_policy
                .clone()
                .unwrap_or_else(|| "Always".into());
            if self.main_done(&spec.containers, &observed, &restart_policy) {
                self.stop_sidecars(&observed).await?;
            } else if self.step_init_containers(&observed, &restart_policy).await {
                for c in &spec.containers {
                    let obs = observed
                        .containers
                        .get(&c.name)
                        .cloned()
                        .unwrap_or_default();
                    self.step_container(c, &obs, &restart_policy, &observed)
                        .await;
                }
            }
            observed = self.observe().await?;
            self.sync_probes(&observed);
            if self.kill_unhealthy(&observed).await {
                observed = self.observe().await?;
                self.sync_probes(&observed);
            }
        }
        self.finish_sync(observed).await
    }

    /// Init containers in order: a regular one runs to completion before the next starts; a
    /// sidecar only has to be started (running, past its startup probe) and is restarted
    /// whenever it exits, whatever the pod's restart policy. Once a main container ran, regular
    /// init containers are done for good and only the sidecars are kept running. True when
    /// the main containers may run.
    async fn step_init_containers(&mut self, observed: &Observed, restart_policy: &str) -> bool {
        let Some(spec) = self.pod.spec.clone() else {
            return false;
        };
        let main_started = status::main_started(&spec.containers, observed);
        for c in spec.init_containers.iter().flatten() {
            let obs = observed
                .containers
                .get(&c.name)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            if status::is_sidecar(c) {
                let latest = obs.first().filter(|l| status::running(l));
                let started = match latest {
                    Some(l) => {
                        c.startup_probe.is_none()
                            || self.probes.get(&l.id).is_some_and(|p| p.health().started)
                    }
                    // Just started and nothing to wait for: the next one may start now.
                    None => {
                        self.step_container(c, obs, "Always", observed).await
                            && c.startup_probe.is_none()
                    }
                };
                if !started && !main_started {
                    return false;
                }
                continue;
            }
            let done = obs
                .first()
                .is_some_and(|o| status::exited(o) && o.status.exit_code == 0);
            if done || main_started {
                continue;
            }
            // Init containers restart on failure unless the pod never restarts.
            let policy = if restart_policy == "Never" {
                "Never"
            } else {
                "OnFailure"
            };
            self.step_container(c, obs, policy, observed).await;
            return false;
        }
        true
    }

    /// Whether every main container has finished and will not restart (restart policy
    /// `Never`, or `OnFailure` after success): the pod is done, only its sidecars may still
    /// run.
    fn main_done(
        &self,
        containers: &[Container],
        observed: &Observed,
        restart_policy: &str,
    ) -> bool {
        restart_policy != "Always"
            && !containers.is_empty()
            && containers.iter().all(|c| {
                observed
                    .containers
                    .get(&c.name)
                    .and_then(|o| o.first())
                    .is_some_and(|l| {
                        status::exited(l) && (restart_policy == "Never" || l.status.exit_code == 0)
                    })
            })
    }

    /// Stops the running sidecars of a pod whose main containers are done, last first.
    async fn stop_sidecars(&mut self, observed: &Observed) -> Result<()> {
        let running: Vec<(String, String)> = observed
            .containers
            .iter()
            .filter(|(name, _)| self.sidecar_rank(name).is_some())
            .filter_map(|(name, list)| {
                list.first()
                    .filter(|l| status::running(l))
                    .map(|l| (l.id.clone(), name.clone()))
            })
            .collect();
        if running.is_empty() {
            return Ok(());
        }
        tracing::info!(pod = %self.name(), "main containers done; stopping the sidecars");
        let pod_ip = observed
            .sandbox
            .as_ref()
            .map(|s| s.ip.clone())
            .unwrap_or_default();
        self.kill_in_order(&running, self.spec_grace(), &pod_ip)
            .await
    }

    /// Writes the status of what was observed; a finished pod's sandbox is stopped.
    async fn finish_sync(&mut self, mut observed: Observed) -> Result<()> {
        observed.health = self
            .probes
            .iter()
            .map(|(id, p)| (id.clone(), p.health()))
            .collect();
        let new_status = status::pod_status(
            &self.pod,
            &observed,
            &self.waiting,
            &self.ctx.host_ip.to_string(),
        );
        let phase = new_status
            .get("phase")
            .and_then(|p| p.as_str())
            .unwrap_or_default()
            .to_string();
        self.write_status(new_status).await?;
        if phase == "Succeeded" || phase == "Failed" {
            tracing::info!(pod = %self.name(), %phase, "pod finished; stopping its sandbox");
            self.terminal = true;
            self.probes.clear();
            // As upstream, the sandbox is only stopped: the exited containers (and their logs)
            // stay until the pod is deleted.
            if let Some(s) = &observed.sandbox {
                self.ctx.cri.stop_sandbox(&s.id).await?;
            }
        }
        Ok(())
    }

    /// The pod's newest sandbox and, per container name, its instances in that sandbox
    /// (newest first).
    async fn observe(&self) -> Result<Observed> {
        let cri = &self.ctx.cri;
        let mut sandboxes = cri.list_sandboxes(Some(&self.uid)).await?;
        sandboxes.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        let mut observed = Observed::default();
        let Some(newest) = sandboxes.first() else {
            return Ok(observed);
        };
        if let Some(st) = cri.sandbox_status(&newest.id).await? {
            observed.sandbox = Some(status::SandboxObs {
                id: newest.id.clone(),
                attempt: newest.metadata.as_ref().map_or(0, |m| m.attempt),
                ready: st.state == cri::PodSandboxState::SandboxReady as i32,
                ip: st.network.map(|n| n.ip).unwrap_or_default(),
            });
        }
        let mut containers = cri.list_containers(Some(&self.uid)).await?;
        containers.retain(|c| c.pod_sandbox_id == newest.id);
        containers.sort_by_key(|c| std::cmp::Reverse(c.metadata.as_ref().map_or(0, |m| m.attempt)));
        for c in containers {
            let Some(meta) = c.metadata else { continue };
            let list = observed.containers.entry(meta.name).or_default();
            if list.len() >= 2 {
                continue; // older instances only matter for removal
            }
            if let Some(st) = cri.container_status(&c.id).await? {
                list.push(ContainerObs {
                    id: c.id,
                    attempt: meta.attempt,
                    status: st,
                });
            }
        }
        Ok(observed)
    }

    /// Removes old sandboxes of the pod, makes its volumes and starts a new sandbox.
    async fn start_sandbox(&mut self, observed: &mut Observed) -> Result<()> {
        let attempt = observed.sandbox.as_ref().map_or(0, |s| s.attempt + 1);
        for old in self.ctx.cri.list_sandboxes(Some(&self.uid)).await? {
            self.ctx.cri.remove_sandbox(&old.id).await?;
        }
        let config = spec::sandbox_config(&self.ctx, &self.pod, attempt);
        let log_dir = self.ctx.log_dir(&self.pod);
        std::fs::create_dir_all(&log_dir).map_err(|source| crate::Error::Io {
            context: format!("creating {}", log_dir.display()),
            source,
        })?;
        tracing::info!(pod = %self.name(), attempt, "starting the pod sandbox");
        self.volumes = None;
        let id = self.ctx.cri.run_sandbox(config).await?;
        Metrics::inc(&self.ctx.metrics.sandboxes_started);
        *observed = self.observe().await?;
        tracing::info!(pod = %self.name(), sandbox = %id, ip = ?observed.sandbox.as_ref().map(|s| &s.ip), "pod sandbox running");
        Ok(())
    }

    /// Decides what a container needs and does it, recording why it waits if it does; true
    /// if it started a new instance.
    async fn step_container(
        &mut self,
        c: &Container,
        obs: &[ContainerObs],
        restart_policy: &str,
        observed: &Observed,
    ) -> bool {
        let step = self.decide(c, obs, restart_policy);
        let previous = self.waiting.remove(&c.name).map(|w| w.reason);
        match step {
            Step::Keep => {}
            Step::BackOff(delay) => {
                let message = format!(
                    "back-off {}s restarting failed container={} pod={}_{}({})",
                    delay.as_secs(),
                    c.name,
                    self.pod.metadata.name.as_deref().unwrap_or_default(),
                    self.pod.metadata.namespace.as_deref().unwrap_or_default(),
                    self.uid
                );
                if previous.as_deref() != Some("CrashLoopBackOff") {
                    let event = format!(
                        "Back-off restarting failed container {} in pod {}",
                        c.name,
                        self.name()
                    );
                    self.event(Some(&c.name), true, "BackOff", event);
                }
                self.waiting
                    .insert(c.name.clone(), Waiting::new("CrashLoopBackOff", message));
            }
            Step::Start(attempt) => {
                if let Err(w) = self.start_container(c, attempt, observed).await {
                    tracing::warn!(pod = %self.name(), container = %c.name, reason = %w.reason, message = %w.message, "container not started");
                    if w.reason == "ContainerCreating" && !w.message.is_empty() {
                        if previous.as_ref() != Some(&w.reason) {
                            self.event(None, true, "FailedMount", w.message.clone());
                        }
                    } else if previous.as_ref() != Some(&w.reason) {
                        // Image errors name their reason; the others say what went wrong.
                        let what = match w.reason.as_str() {
                            "ErrImagePull" | "ImagePullBackOff" | "ErrImageNeverPull" => &w.reason,
                            _ => &w.message,
                        };
                        self.event(Some(&c.name), true, "Failed", format!("Error: {what}"));
                    }
                    self.waiting.insert(c.name.clone(), w);
                    return false;
                }
                // Keep the instance before this one (for `logs --previous`), drop older ones.
                for old in obs.iter().skip(1) {
                    if let Err(e) = self.ctx.cri.remove_container(&old.id).await {
                        tracing::warn!(container = %old.id, error = %e, "removing an old container");
                    }
                }
                return true;
            }
        }
        false
    }

    fn decide(&mut self, c: &Container, obs: &[ContainerObs], restart_policy: &str) -> Step {
        let Some(latest) = obs.first() else {
            return Step::Start(0);
        };
        let st = &latest.status;
        if st.state == cri::ContainerState::ContainerRunning as i32 {
            return Step::Keep;
        }
        let failed = !status::exited(latest) || st.exit_code != 0;
        let restart = match restart_policy {
            "Never" => false,
            "OnFailure" => failed,
            _ => true,
        };
        if !restart {
            return Step::Keep;
        }
        let ran = Duration::from_nanos((st.finished_at - st.started_at).max(0) as u64);
        if ran >= BACKOFF_RESET {
            self.backoff.remove(&c.name);
        }
        let finished = Duration::from_nanos(st.finished_at.max(0) as u64);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        if let Some(delay) = self.backoff.get(&c.name) {
            if now < finished + *delay {
                return Step::BackOff(*delay);
            }
        }
        let next = self
            .backoff
            .get(&c.name)
            .map_or(INITIAL_BACKOFF, |d| (*d * 2).min(MAX_BACKOFF));
        self.backoff.insert(c.name.clone(), next);
        Step::Start(latest.attempt + 1)
    }

    /// Pulls the image if needed, builds the config and starts one container instance.
    async fn start_container(
        &mut self,
        c: &Container,
        attempt: u32,
        observed: &Observed,
    ) -> std::result::Result<(), Waiting> {
        let Some(sandbox) = observed.sandbox.as_ref() else {
            return Err(Waiting::new("ContainerCreating", String::new()));
        };
        let sandbox_config = spec::sandbox_config(&self.ctx, &self.pod, sandbox.attempt);
        let namespace = self.pod.metadata.namespace.clone().unwrap_or_default();
        let mut sources = Sources::new(self.ctx.client.clone(), &namespace);
        self.ensure_image(c, &sandbox_config, &mut sources).await?;
        let host_ip = self.ctx.host_ip.to_string();
        let pod_dir = self.ctx.root.join(&self.uid);
        let host_network = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.host_network)
            .unwrap_or(false);
        let hosts_file = pod_dir.join("etc-hosts");
        let config_error = |e: spec::ConfigError| Waiting::new("CreateContainerConfigError", e.0);
        if self.volumes.is_none() {
            let inputs = ContainerInputs {
                pod: &self.pod,
                pod_ip: &sandbox.ip,
                host_ip: &host_ip,
                volumes: &HashMap::new(),
                hosts_file: None,
            };
            // As upstream, a volume that cannot be set up keeps the pod ContainerCreating.
            let made = volumes::prepare(&pod_dir, &inputs, &mut sources, &self.ctx.client)
                .await
                .map_err(|e| Waiting::new("ContainerCreating", e.0))?;
            let hostname = spec::sandbox_config(&self.ctx, &self.pod, 0).hostname;
            if !host_network {
                volumes::write_hosts_file(&hosts_file, &sandbox.ip, &hostname)
                    .map_err(config_error)?;
            }
            self.volumes = Some(made);
        }
        let empty = HashMap::new();
        let inputs = ContainerInputs {
            pod: &self.pod,
            pod_ip: &sandbox.ip,
            host_ip: &host_ip,
            volumes: self.volumes.as_ref().unwrap_or(&empty),
            hosts_file: (!host_network).then_some(hosts_file.as_path()),
        };
        let config = spec::container_config(&inputs, &mut sources, c, attempt)
            .await
            .map_err(config_error)?;
        let id = self
            .ctx
            .cri
            .create_and_start(&sandbox.id, config, sandbox_config)
            .await
            .map_err(|e| Waiting::new("RunContainerError", e.to_string()))?;
        Metrics::inc(&self.ctx.metrics.containers_started);
        self.event(
            Some(&c.name),
            false,
            "Created",
            format!("Created container: {}", c.name),
        );
        self.event(
            Some(&c.name),
            false,
            "Started",
            format!("Started container {}", c.name),
        );
        tracing::info!(pod = %self.name(), container = %c.name, attempt, id = %id, "started container");
        let post_start = c.lifecycle.as_ref().and_then(|l| l.post_start.as_ref());
        if let Some(hook) = post_start {
            let target = self.hook_target(&id, c, &sandbox.ip);
            let limit = Duration::from_secs(self.spec_grace().max(1) as u64);
            if let Err(e) = probes::run_hook(hook, &target, &self.pod, limit).await {
                tracing::warn!(pod = %self.name(), container = %c.name, error = %e, "postStart hook failed");
                self.event(Some(&c.name), true, "FailedPostStartHook", e.clone());
                let grace = self.spec_grace();
                let killed = self
                    .kill_container(
                        &id,
                        &c.name,
                        grace,
                        "FailedPostStartHook".into(),
                        &sandbox.ip,
                        Vec::new(),
                    )
                    .await;
                if let Err(k) = killed {
                    tracing::warn!(pod = %self.name(), container = %c.name, error = %k, "killing after a failed postStart hook");
                }
                return Err(Waiting::new("PostStartHookError", e));
            }
        }
        Ok(())
    }

    /// Makes sure the image is present, honouring `imagePullPolicy` and `imagePullSecrets`;
    /// failed pulls back off per image (10 s doubling to 5 min) as upstream.
    async fn ensure_image(
        &mut self,
        c: &Container,
        sandbox_config: &cri::PodSandboxConfig,
        sources: &mut Sources,
    ) -> std::result::Result<(), Waiting> {
        let image = c.image.clone().unwrap_or_default();
        let present = self
            .ctx
            .cri
            .image_status(&image)
            .await
            .map_err(|e| Waiting::new("ErrImagePull", e.to_string()))?
            .is_some();
        let policy = c
            .image_pull_policy
            .clone()
            .unwrap_or_else(|| default_pull_policy(&image).into());
        match (policy.as_str(), present) {
            ("Never", true) | ("IfNotPresent", true) => {
                let message = format!("Container image \"{image}\" already present on machine");
                self.event(Some(&c.name), false, "Pulled", message);
                return Ok(());
            }
            ("Never", false) => {
                let message =
                    format!("Container image \"{image}\" is not present with pull policy of Never");
                self.event(Some(&c.name), true, "ErrImageNeverPull", message.clone());
                return Err(Waiting::new("ErrImageNeverPull", message));
            }
            _ => {}
        }
        if let Some(b) = self.pull_backoff.get(&image) {
            if Instant::now() < b.until {
                let event = format!("Back-off pulling image \"{image}\"");
                self.event(Some(&c.name), false, "BackOff", event.clone());
                let message = format!("{event}: ErrImagePull: {}", b.error);
                return Err(Waiting::new("ImagePullBackOff", message));
            }
        }
        tracing::info!(pod = %self.name(), %image, "pulling image");
        Metrics::inc(&self.ctx.metrics.image_pulls);
        self.event(
            Some(&c.name),
            false,
            "Pulling",
            format!("Pulling image \"{image}\""),
        );
        let started = Instant::now();
        let auths = super::pull_secrets::credentials(&self.pod, sources, &image).await;
        let mut result = Err(String::new());
        // Without credentials one anonymous pull; else each credential until one works.
        let attempts: Vec<Option<cri::AuthConfig>> = if auths.is_empty() {
            vec![None]
        } else {
            auths.into_iter().map(Some).collect()
        };
        for auth in attempts {
            let pulled = self
                .ctx
                .cri
                .pull_image(&image, auth, sandbox_config.clone())
                .await;
            result = pulled.map_err(|e| match e {
                crate::Error::Cri { status, .. } => status.message().to_string(),
                other => other.to_string(),
            });
            if result.is_ok() {
                break;
            }
        }
        match result {
            Ok(_) => {
                self.pull_backoff.remove(&image);
                let message = format!(
                    "Successfully pulled image \"{image}\" in {:.3}s",
                    started.elapsed().as_secs_f64()
                );
                self.event(Some(&c.name), false, "Pulled", message);
                Ok(())
            }
            Err(error) => {
                tracing::warn!(pod = %self.name(), %image, %error, "image pull failed");
                let delay = self
                    .pull_backoff
                    .get(&image)
                    .map_or(PULL_BACKOFF, |b| (b.delay * 2).min(MAX_PULL_BACKOFF));
                self.pull_backoff.insert(
                    image.clone(),
                    PullBackoff {
                        until: Instant::now() + delay,
                        delay,
                        error: error.clone(),
                    },
                );
                let event = format!("Failed to pull image \"{image}\": {error}");
                self.event(Some(&c.name), true, "Failed", event);
                Err(Waiting::new("ErrImagePull", error))
            }
        }
    }

    /// Merge-patches the pod's status when it differs from what the API server has.
    async fn write_status(&mut self, new: serde_json::Value) -> Result<()> {
        // Both sides go through the typed form, so only real differences count.
        let typed: PodStatus = serde_json::from_value(new)
            .map_err(|e| crate::Error::Other(format!("building pod status: {e}")))?;
        let new = serde_json::to_value(&typed).unwrap_or_default();
        let old = serde_json::to_value(&self.pod.status).unwrap_or_default();
        let changed: Vec<&String> = new
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, v)| old.get(k.as_str()) != Some(v))
            .map(|(k, _)| k)
            .collect();
        if changed.is_empty() {
            return Ok(());
        }
        tracing::debug!(pod = %self.name(), ?changed, "writing pod status");
        let api: Api<Pod> = Api::namespaced(
            self.ctx.client.clone(),
            self.pod.metadata.namespace.as_deref().unwrap_or_default(),
        );
        let name = self.pod.metadata.name.clone().unwrap_or_default();
        let patch = serde_json::json!({ "status": new });
        let updated = api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Metrics::inc(&self.ctx.metrics.status_updates);
        tracing::debug!(pod = %self.name(), "pod status updated");
        self.pod = updated;
        Ok(())
    }

    /// Stops the pod's containers (SIGTERM, then SIGKILL after the grace period), removes its
    /// sandbox and files, and, if `delete_object`, deletes the pod object (grace 0, UID
    /// precondition).
    async fn terminate(&mut self, delete_object: bool) -> Result<()> {
        let grace = self
            .pod
            .metadata
            .deletion_grace_period_seconds
            .or_else(|| {
                self.pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
            })
            .unwrap_or(DEFAULT_GRACE_SECONDS);
        tracing::info!(pod = %self.name(), grace_seconds = grace, "killing the pod");
        self.probes.clear();
        let cri = &self.ctx.cri;
        let containers = cri.list_containers(Some(&self.uid)).await?;
        let pod_ip = self
            .pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .unwrap_or_default();
        let running: Vec<(String, String)> = containers
            .into_iter()
            .filter(|c| c.state == cri::ContainerState::ContainerRunning as i32)
            .map(|c| {
                let name = c.metadata.map(|m| m.name).unwrap_or_default();
                (c.id, name)
            })
            .collect();
        self.kill_in_order(&running, grace, &pod_ip).await?;
        for s in cri.list_sandboxes(Some(&self.uid)).await? {
            cri.remove_sandbox(&s.id).await?;
        }
        volumes::remove_pod_dir(&self.ctx.root.join(&self.uid));
        volumes::remove_pod_dir(&self.ctx.log_dir(&self.pod));
        if delete_object {
            let api: Api<Pod> = Api::namespaced(
                self.ctx.client.clone(),
                self.pod.metadata.namespace.as_deref().unwrap_or_default(),
            );
            let params = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(Preconditions {
                    uid: Some(self.uid.clone()),
                    resource_version: None,
                }),
                ..Default::default()
            };
            let name = self.pod.metadata.name.clone().unwrap_or_default();
            match api.delete(&name, &params).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
                Err(e) => return Err(e.into()),
            }
            tracing::info!(pod = %self.name(), "pod deleted");
        }
        Ok(())
    }
}
