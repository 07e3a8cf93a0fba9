//! Container probes (liveness, readiness, startup) and lifecycle hook handlers, as upstream's
//! prober runs them: exec through CRI `ExecSync`, httpGet, tcpSocket, gRPC health checks and
//! (hooks only) sleep.
//!
//! Each probed container instance gets [`ContainerProbes`]: one task per probe that keeps
//! upstream's counters (`successThreshold`, `failureThreshold`) and publishes the results
//! ([`Health`]) the pod worker reads when it syncs; a change wakes the worker.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::{Container, HTTPGetAction, LifecycleHandler, Pod, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::sync::Notify;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::Recorder;
use crate::cri::Cri;

/// The kubelet version probes announce in their `User-Agent`, as upstream's `kube-probe/1.36`.
const PROBE_USER_AGENT: &str = "kube-probe/1.36";

/// Which probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    Liveness,
    Readiness,
    Startup,
}

impl ProbeKind {
    /// As upstream's events write it ("Liveness probe failed: ...").
    pub fn title(self) -> &'static str {
        match self {
            ProbeKind::Liveness => "Liveness",
            ProbeKind::Readiness => "Readiness",
            ProbeKind::Startup => "Startup",
        }
    }

    /// As upstream's kill messages write it ("failed liveness probe").
    pub fn lower(self) -> &'static str {
        match self {
            ProbeKind::Liveness => "liveness",
            ProbeKind::Readiness => "readiness",
            ProbeKind::Startup => "startup",
        }
    }
}

/// What a probe or hook does.
enum Action {
    Exec(Vec<String>),
    Http(HTTPGetAction),
    Tcp {
        host: Option<String>,
        port: IntOrString,
    },
    Grpc {
        port: i32,
        service: Option<String>,
    },
    Sleep(i64),
}

fn probe_action(p: &Probe) -> Option<Action> {
    if let Some(e) = &p.exec {
        Some(Action::Exec(e.command.clone().unwrap_or_default()))
    } else if let Some(h) = &p.http_get {
        Some(Action::Http(h.clone()))
    } else if let Some(t) = &p.tcp_socket {
        Some(Action::Tcp {
            host: t.host.clone(),
            port: t.port.clone(),
        })
    } else {
        p.grpc.as_ref().map(|g| Action::Grpc {
            port: g.port,
            service: g.service.clone(),
        })
    }
}

fn hook_action(h: &LifecycleHandler) -> Option<Action> {
    if let Some(e) = &h.exec {
        Some(Action::Exec(e.command.clone().unwrap_or_default()))
    } else if let Some(g) = &h.http_get {
        Some(Action::Http(g.clone()))
    } else if let Some(t) = &h.tcp_socket {
        Some(Action::Tcp {
            host: t.host.clone(),
            port: t.port.clone(),
        })
    } else {
        h.sleep.as_ref().map(|s| Action::Sleep(s.seconds))
    }
}

/// The container instance a handler runs against.
#[derive(Clone)]
pub struct Target {
    pub cri: Cri,
    pub container_id: String,
    pub pod_ip: String,
    pub container: Container,
}

/// A named port of the container, or a number.
fn resolve_port(port: &IntOrString, container: &Container) -> Result<u16, String> {
    let n = match port {
        IntOrString::Int(n) => *n,
        IntOrString::String(s) => match s.parse::<i32>() {
            Ok(n) => n,
            Err(_) => container
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(s.as_str()))
                .map(|p| p.container_port)
                .ok_or_else(|| format!("couldn't find port: {s} in {}", container.name))?,
        },
    };
    u16::try_from(n)
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("invalid port number: {n}"))
}

/// `host:port` with IPv6 hosts bracketed.
fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Redirects an HTTP probe follows at most, as Go's client (and so upstream's prober).
const MAX_REDIRECTS: usize = 10;
/// How much of a response body a probe reads, as upstream's `maxRespBodyLength`.
const MAX_BODY: usize = 10 * 1024;

/// A probe redirected more than [`MAX_REDIRECTS`] times; `url` is where the last redirect
/// pointed.
#[derive(Debug)]
struct TooManyRedirects {
    url: String,
}

impl std::fmt::Display for TooManyRedirects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "stopped after {MAX_REDIRECTS} redirects")
    }
}

impl std::error::Error for TooManyRedirects {}

/// Upstream's redirect rule for probes: redirects to the same host (name, port aside) are
/// followed up to [`MAX_REDIRECTS`]; a redirect elsewhere is not followed and its 3xx answer
/// is the result.
fn redirect_policy(attempt: reqwest::redirect::Attempt) -> reqwest::redirect::Action {
    let first = attempt.previous().first().and_then(|u| u.host_str());
    if attempt.url().host_str() != first {
        attempt.stop()
    } else if attempt.previous().len() >= MAX_REDIRECTS {
        let url = attempt.url().to_string();
        attempt.error(TooManyRedirects { url })
    } else {
        attempt.follow()
    }
}

fn http_client() -> Result<&'static reqwest::Client, String> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            // As upstream: no proxies, no certificate checks.
            reqwest::Client::builder()
                .no_proxy()
                .danger_accept_invalid_certs(true)
                .redirect(reqwest::redirect::Policy::custom(redirect_policy))
                .build()
                .map_err(|e| format!("building the HTTP client: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// A socket error as Go's net package words it ("connection refused", ...).
fn go_io_error(e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::ConnectionRefused => "connection refused".into(),
        ErrorKind::ConnectionReset => "connection reset by peer".into(),
        ErrorKind::HostUnreachable => "no route to host".into(),
        ErrorKind::NetworkUnreachable => "network is unreachable".into(),
        ErrorKind::TimedOut => "i/o timeout".into(),
        _ => e.to_string(),
    }
}

/// The innermost I/O error of an error chain.
fn io_cause<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a std::io::Error> {
    let mut found = None;
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = current {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            found = Some(io);
        }
        current = c.source();
    }
    found
}

/// The full chain of an error, as Go prints wrapped errors.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// An httpGet probe: success on 2xx and 3xx; a redirect that was not followed (to another
/// host) is a success with a warning (`Ok(Some(..))`), as upstream.
async fn http_get(
    h: &HTTPGetAction,
    container: &Container,
    pod_ip: &str,
    timeout: Duration,
) -> Result<Option<String>, String> {
    let port = resolve_port(&h.port, container)?;
    let host = h
        .host
        .clone()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| pod_ip.to_string());
    let scheme = h.scheme.as_deref().unwrap_or("HTTP").to_ascii_lowercase();
    let path = h.path.clone().unwrap_or_default();
    let path = if path.starts_with('/') {
        path
    } else {
        format!("/{path}")
    };
    let url = format!("{scheme}://{}{path}", host_port(&host, port));
    let mut req = http_client()?
        .get(&url)
        .timeout(timeout)
        .header("User-Agent", PROBE_USER_AGENT)
        .header("Accept", "*/*");
    for header in h.http_headers.iter().flatten() {
        req = req.header(header.name.as_str(), header.value.as_str());
    }
    let addr = host_port(&host, port);
    let resp = req.send().await.map_err(|e| {
        let too_many = e.is_redirect().then(|| too_many_redirects(&e)).flatten();
        if let Some(t) = too_many {
            return format!("Get {:?}: {t}", t.url);
        }
        let cause = if e.is_timeout() {
            "context deadline exceeded (Client.Timeout exceeded while awaiting headers)".into()
        } else if let (true, Some(io)) = (e.is_connect(), io_cause(&e)) {
            format!("dial tcp {addr}: connect: {}", go_io_error(io))
        } else {
            error_chain(&e)
        };
        format!("Get {url:?}: {cause}")
    })?;
    let code = resp.status().as_u16();
    if !(200..400).contains(&code) {
        return Err(format!("HTTP probe failed with statuscode: {code}"));
    }
    if code < 300 {
        return Ok(None);
    }
    let body = read_at_most(resp, MAX_BODY).await;
    Ok(Some(format!(
        "Probe terminated redirects, Response body: {body}"
    )))
}

/// The [`TooManyRedirects`] in an error's chain.
fn too_many_redirects<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a TooManyRedirects> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = current {
        if let Some(t) = c.downcast_ref::<TooManyRedirects>() {
            return Some(t);
        }
        current = c.source();
    }
    None
}

/// Up to `limit` bytes of a response body (what arrived before an error, if one happens).
async fn read_at_most(mut resp: reqwest::Response, limit: usize) -> String {
    let mut body = Vec::new();
    while body.len() < limit {
        match resp.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body.truncate(limit);
    String::from_utf8_lossy(&body).into_owned()
}

async fn tcp_connect(host: &str, port: u16, timeout: Duration) -> Result<(), String> {
    let addr = host_port(host, port);
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&addr)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("dial tcp {addr}: connect: {}", go_io_error(&e))),
        Err(_) => Err(format!("dial tcp {addr}: i/o timeout")),
    }
}

/// `grpc.health.v1.HealthCheckRequest`.
#[derive(Clone, PartialEq, prost::Message)]
struct HealthCheckRequest {
    #[prost(string, tag = "1")]
    service: String,
}

/// `grpc.health.v1.HealthCheckResponse` (status 1 is SERVING).
#[derive(Clone, PartialEq, prost::Message)]
struct HealthCheckResponse {
    #[prost(int32, tag = "1")]
    status: i32,
}

fn serving_status(status: i32) -> &'static str {
    match status {
        1 => "SERVING",
        2 => "NOT_SERVING",
        3 => "SERVICE_UNKNOWN",
        _ => "UNKNOWN",
    }
}

async fn grpc_check(host: &str, port: u16, service: &str, timeout: Duration) -> Result<(), String> {
    let addr = host_port(host, port);
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| format!("invalid address {addr}: {e}"))?
        .connect_timeout(timeout)
        .timeout(timeout);
    let secs = timeout.as_secs();
    let channel = endpoint.connect().await.map_err(|e| {
        format!(
            "timeout: failed to connect service {addr:?} within {secs}s: {}",
            error_chain(&e)
        )
    })?;
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| format!("failed to connect service {addr:?}: {e}"))?;
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/grpc.health.v1.Health/Check");
    let codec = tonic_prost::ProstCodec::<HealthCheckRequest, HealthCheckResponse>::default();
    let request = tonic::Request::new(HealthCheckRequest {
        service: service.to_string(),
    });
    let resp = match tokio::time::timeout(timeout, grpc.unary(request, path, codec)).await {
        Ok(Ok(r)) => r.into_inner(),
        Ok(Err(s)) if s.code() == tonic::Code::Unimplemented => {
            return Err(format!(
            "this server does not implement the grpc health protocol (grpc.health.v1.Health): {}",
            s.message()
        ))
        }
        Ok(Err(s)) if s.code() == tonic::Code::DeadlineExceeded => {
            return Err(format!(
                "timeout: health rpc did not complete within {secs}s"
            ))
        }
        Ok(Err(s)) => return Err(format!("health rpc probe failed: {}", s.message())),
        Err(_) => {
            return Err(format!(
                "timeout: health rpc did not complete within {secs}s"
            ))
        }
    };
    if resp.status == 1 {
        Ok(())
    } else {
        Err(format!(
            "service unhealthy (responded with {:?})",
            serving_status(resp.status)
        ))
    }
}

/// Runs a command in the container: its exit code and combined output, or why it did not run
/// to completion.
async fn exec_output(
    cmd: &[String],
    target: &Target,
    timeout: Duration,
) -> Result<(i32, String), String> {
    let secs = timeout.as_secs().max(1) as i64;
    let call = target
        .cri
        .exec_sync(&target.container_id, cmd.to_vec(), secs);
    // The runtime enforces the timeout; ours only guards against a runtime that hangs.
    let timed_out = || format!("command {:?} timed out", cmd.join(" "));
    let resp: cri::ExecSyncResponse =
        match tokio::time::timeout(timeout + Duration::from_secs(5), call).await {
            Ok(Ok(r)) => r,
            Ok(Err(crate::Error::Cri { status, .. }))
                if status.code() == tonic::Code::DeadlineExceeded
                    || status.message().contains("timeout") =>
            {
                return Err(timed_out())
            }
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err(timed_out()),
        };
    let mut output = String::from_utf8_lossy(&resp.stdout).into_owned();
    output.push_str(&String::from_utf8_lossy(&resp.stderr));
    Ok((resp.exit_code, output))
}

/// An exec probe: success on exit code 0, else the output is the failure.
async fn exec(cmd: &[String], target: &Target, timeout: Duration) -> Result<(), String> {
    match exec_output(cmd, target, timeout).await? {
        (0, _) => Ok(()),
        (_, output) => Err(output),
    }
}

/// Runs an action once; `Ok(Some(..))` is a success with a warning, `Err` carries upstream's
/// failure output.
async fn run(
    action: &Action,
    target: &Target,
    timeout: Duration,
) -> Result<Option<String>, String> {
    match action {
        Action::Exec(cmd) => exec(cmd, target, timeout).await.map(|()| None),
        Action::Http(h) => http_get(h, &target.container, &target.pod_ip, timeout).await,
        Action::Tcp { host, port } => {
            let port = resolve_port(port, &target.container)?;
            let host = host
                .clone()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| target.pod_ip.clone());
            tcp_connect(&host, port, timeout).await.map(|()| None)
        }
        Action::Grpc { port, service } => {
            let port = resolve_port(&IntOrString::Int(*port), &target.container)?;
            let service = service.clone().unwrap_or_default();
            grpc_check(&target.pod_ip, port, &service, timeout)
                .await
                .map(|()| None)
        }
        Action::Sleep(secs) => {
            tokio::time::sleep(Duration::from_secs((*secs).max(0) as u64)).await;
            Ok(None)
        }
    }
}

/// Runs a lifecycle hook (postStart, preStop) to completion or until `limit`; `Err` is
/// upstream's description of the failure.
pub async fn run_hook(
    hook: &LifecycleHandler,
    target: &Target,
    pod: &Pod,
    limit: Duration,
) -> Result<(), String> {
    let Some(action) = hook_action(hook) else {
        return Ok(());
    };
    let timed_out = || format!("timed out after {}s", limit.as_secs());
    // Exec hooks report the exit code and output apart, as upstream's message does.
    let (result, output) = match &action {
        Action::Exec(cmd) => {
            let ran = tokio::time::timeout(limit, exec_output(cmd, target, limit)).await;
            match ran {
                Ok(Ok((0, _))) => (Ok(()), String::new()),
                Ok(Ok((code, output))) => (
                    Err(format!(
                        "command '{}' exited with {code}: {output}",
                        cmd.join(" ")
                    )),
                    output,
                ),
                Ok(Err(e)) => (Err(e), String::new()),
                Err(_) => (Err(timed_out()), String::new()),
            }
        }
        _ => match tokio::time::timeout(limit, run(&action, target, limit)).await {
            Ok(r) => (r.map(|_| ()), String::new()),
            Err(_) => (Err(timed_out()), String::new()),
        },
    };
    let Err(error) = result else {
        return Ok(());
    };
    let m = &pod.metadata;
    let pod_name = format!(
        "{}_{}({})",
        m.name.as_deref().unwrap_or_default(),
        m.namespace.as_deref().unwrap_or_default(),
        m.uid.as_deref().unwrap_or_default()
    );
    let container = &target.container.name;
    Err(match &action {
        Action::Exec(cmd) => format!(
            "Exec lifecycle hook ([{}]) for Container {container:?} in Pod {pod_name:?} failed - error: {error}, message: {output:?}",
            cmd.join(" ")
        ),
        Action::Http(h) => format!(
            "HTTP lifecycle hook ({}) for Container {container:?} in Pod {pod_name:?} failed - error: {error}",
            h.path.as_deref().unwrap_or_default()
        ),
        _ => format!(
            "lifecycle hook for Container {container:?} in Pod {pod_name:?} failed - error: {error}"
        ),
    })
}

/// Probe results of one container instance.
#[derive(Debug, Clone, Default)]
pub struct Health {
    /// The startup probe succeeded (or there is none).
    pub started: bool,
    /// The readiness probe passes (or there is none).
    pub ready: bool,
    /// A liveness or startup probe reached its failure threshold: kill the container.
    pub failed: Option<ProbeKind>,
}

/// The probe tasks of one container instance; dropping it stops them.
pub struct ContainerProbes {
    health: Arc<Mutex<Health>>,
    _stop: DropGuard,
}

/// Whether a container has any probe.
pub fn has_probes(c: &Container) -> bool {
    c.liveness_probe.is_some() || c.readiness_probe.is_some() || c.startup_probe.is_some()
}

impl ContainerProbes {
    /// Starts the container's probes; `started_at` is the instance's start (ns since epoch),
    /// from which `initialDelaySeconds` counts. `wake` is notified on every change of result.
    pub fn start(
        target: Target,
        started_at: i64,
        pod: Arc<Pod>,
        recorder: Recorder,
        wake: Arc<Notify>,
    ) -> Self {
        let c = &target.container;
        let health = Arc::new(Mutex::new(Health {
            started: c.startup_probe.is_none(),
            ready: c.readiness_probe.is_none(),
            failed: None,
        }));
        let cancel = CancellationToken::new();
        let probes = [
            (ProbeKind::Startup, &c.startup_probe),
            (ProbeKind::Liveness, &c.liveness_probe),
            (ProbeKind::Readiness, &c.readiness_probe),
        ];
        for (kind, probe) in probes {
            let Some(probe) = probe.clone() else { continue };
            let Some(action) = probe_action(&probe) else {
                continue;
            };
            let worker = ProbeWorker {
                kind,
                probe,
                action,
                target: target.clone(),
                health: health.clone(),
                pod: pod.clone(),
                recorder: recorder.clone(),
                wake: wake.clone(),
            };
            let cancel = cancel.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    _ = worker.run(started_at) => {}
                }
            });
        }
        Self {
            health,
            _stop: cancel.drop_guard(),
        }
    }

    pub fn health(&self) -> Health {
        lock(&self.health).clone()
    }
}

fn lock(m: &Mutex<Health>) -> std::sync::MutexGuard<'_, Health> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One probe of one container instance.
struct ProbeWorker {
    kind: ProbeKind,
    probe: Probe,
    action: Action,
    target: Target,
    health: Arc<Mutex<Health>>,
    pod: Arc<Pod>,
    recorder: Recorder,
    wake: Arc<Notify>,
}

fn seconds(v: Option<i32>, default: i32) -> Duration {
    Duration::from_secs(v.unwrap_or(default).max(1) as u64)
}

impl ProbeWorker {
    async fn run(self, started_at: i64) {
        let p = &self.probe;
        let initial = Duration::from_secs(p.initial_delay_seconds.unwrap_or(0).max(0) as u64);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let running_for = now.saturating_sub(Duration::from_nanos(started_at.max(0) as u64));
        tokio::time::sleep(initial.saturating_sub(running_for)).await;
        let period = seconds(p.period_seconds, 10);
        let timeout = seconds(p.timeout_seconds, 1);
        let success_threshold = p.success_threshold.unwrap_or(1).max(1);
        let failure_threshold = p.failure_threshold.unwrap_or(3).max(1);
        let (mut successes, mut failures) = (0, 0);
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            // Liveness and readiness wait for the startup probe.
            if self.kind != ProbeKind::Startup && !lock(&self.health).started {
                continue;
            }
            match run(&self.action, &self.target, timeout).await {
                Ok(warning) => {
                    successes += 1;
                    failures = 0;
                    if let Some(warning) = warning {
                        self.recorder.record(
                            &self.pod,
                            Some(&self.target.container.name),
                            true,
                            "ProbeWarning",
                            format!("{} probe warning: {warning}", self.kind.title()),
                        );
                    }
                }
                Err(output) => {
                    successes = 0;
                    failures += 1;
                    tracing::debug!(container = %self.target.container.name, probe = self.kind.lower(), %output, "probe failed");
                    self.recorder.record(
                        &self.pod,
                        Some(&self.target.container.name),
                        true,
                        "Unhealthy",
                        format!("{} probe failed: {output}", self.kind.title()),
                    );
                }
            }
            let mut h = lock(&self.health);
            let done = match self.kind {
                ProbeKind::Readiness => {
                    let ready = if successes >= success_threshold {
                        true
                    } else if failures >= failure_threshold {
                        false
                    } else {
                        h.ready
                    };
                    let changed = ready != h.ready;
                    h.ready = ready;
                    if changed {
                        self.wake.notify_one();
                    }
                    false
                }
                ProbeKind::Liveness if failures >= failure_threshold => {
                    h.failed = Some(ProbeKind::Liveness);
                    true
                }
                ProbeKind::Liveness => false,
                ProbeKind::Startup if successes >= 1 => {
                    h.started = true;
                    true
                }
                ProbeKind::Startup if failures >= failure_threshold => {
                    h.failed = Some(ProbeKind::Startup);
                    true
                }
                ProbeKind::Startup => false,
            };
            drop(h);
            if done {
                self.wake.notify_one();
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_ports_resolve() {
        let c: Container = serde_json::from_value(serde_json::json!({
            "name": "c", "ports": [{"name": "http", "containerPort": 8080}]
        }))
        .unwrap_or_default();
        let named = IntOrString::String("http".into());
        assert_eq!(resolve_port(&named, &c), Ok(8080));
        assert_eq!(resolve_port(&IntOrString::String("81".into()), &c), Ok(81));
        assert_eq!(resolve_port(&IntOrString::Int(0), &c).ok(), None);
        let missing = IntOrString::String("grpc".into());
        assert_eq!(
            resolve_port(&missing, &c),
            Err("couldn't find port: grpc in c".into())
        );
    }

    #[test]
    fn ipv6_hosts_are_bracketed() {
        assert_eq!(host_port("10.0.0.1", 80), "10.0.0.1:80");
        assert_eq!(host_port("fd00::1", 80), "[fd00::1]:80");
    }

    #[tokio::test]
    async fn tcp_probe_reports_refused_connections() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await;
        let Ok(listener) = listener else {
            panic!("binding a local port");
        };
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let timeout = Duration::from_secs(1);
        assert_eq!(tcp_connect("127.0.0.1", port, timeout).await, Ok(()));
        drop(listener);
        let refused = tcp_connect("127.0.0.1", port, timeout).await;
        assert_eq!(
            refused,
            Err(format!(
                "dial tcp 127.0.0.1:{port}: connect: connection refused"
            ))
        );
        // httpGet words a refused connection the same way.
        let action: HTTPGetAction = serde_json::from_value(serde_json::json!({
            "path": "/healthz", "port": port
        }))
        .unwrap_or_default();
        let refused = http_get(&action, &Container::default(), "127.0.0.1", timeout).await;
        assert_eq!(
            refused,
            Err(format!(
                "Get \"http://127.0.0.1:{port}/healthz\": dial tcp 127.0.0.1:{port}: connect: connection refused"
            ))
        );
    }

    /// A tiny HTTP/1.0 server: `/hops/N` redirects to `/hops/N-1` (and `/hops/0` answers 200),
    /// `/loop` redirects to itself, `/away` redirects to the same port under another host name.
    async fn redirect_server() -> (u16, tokio::task::JoinHandle<()>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await;
        let Ok(listener) = listener else {
            panic!("binding a local port");
        };
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let server = tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = vec![0u8; 4096];
                let mut len = 0;
                while !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") && len < buf.len() {
                    match s.read(&mut buf[len..]).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => len += n,
                    }
                }
                let head = String::from_utf8_lossy(&buf[..len]).into_owned();
                let path = head.split(' ').nth(1).unwrap_or("/").to_string();
                let hops = path
                    .strip_prefix("/hops/")
                    .and_then(|n| n.parse::<u32>().ok());
                let (status, location) = match (path.as_str(), hops) {
                    (_, Some(0)) => ("200 OK", None),
                    (_, Some(n)) => ("302 Found", Some(format!("/hops/{}", n - 1))),
                    ("/loop", _) => ("302 Found", Some("/loop".to_string())),
                    ("/away", _) => (
                        "301 Moved Permanently",
                        Some(format!("http://localhost:{port}/hops/0")),
                    ),
                    _ => ("404 Not Found", None),
                };
                let mut answer = format!("HTTP/1.0 {status}\r\nContent-Length: 5\r\n");
                if let Some(l) = location {
                    answer.push_str(&format!("Location: {l}\r\n"));
                }
                answer.push_str("Connection: close\r\n\r\nmoved");
                let _ = s.write_all(answer.as_bytes()).await;
                let _ = s.shutdown().await;
            }
        });
        (port, server)
    }

    #[tokio::test]
    async fn http_probe_follows_redirects_to_the_same_host_only() {
        let (port, server) = redirect_server().await;
        let timeout = Duration::from_secs(2);
        let probe = |path: &str| {
            let action: HTTPGetAction = serde_json::from_value(serde_json::json!({
                "path": path, "port": port
            }))
            .unwrap_or_default();
            async move { http_get(&action, &Container::default(), "127.0.0.1", timeout).await }
        };
        // Same-host redirects are followed; the final answer counts.
        assert_eq!(probe("/hops/3").await, Ok(None));
        assert_eq!(probe("/hops/9").await, Ok(None));
        // Go's client gives up at the tenth redirect.
        assert_eq!(
            probe("/hops/10").await,
            Err(format!(
                "Get \"http://127.0.0.1:{port}/hops/0\": stopped after 10 redirects"
            ))
        );
        assert_eq!(
            probe("/loop").await,
            Err(format!(
                "Get \"http://127.0.0.1:{port}/loop\": stopped after 10 redirects"
            ))
        );
        // A redirect to another host is not followed: success with a warning and the body.
        assert_eq!(
            probe("/away").await,
            Ok(Some(
                "Probe terminated redirects, Response body: moved".into()
            ))
        );
        // A redirect that ends in an error status fails.
        assert_eq!(
            probe("/missing").await,
            Err("HTTP probe failed with statuscode: 404".into())
        );
        server.abort();
    }

    /// A `grpc.health.v1.Health` server answering every Check with one status.
    #[derive(Clone)]
    struct HealthServer(i32);

    impl tonic::server::NamedService for HealthServer {
        const NAME: &'static str = "grpc.health.v1.Health";
    }

    struct Check(i32);

    impl tonic::server::UnaryService<HealthCheckRequest> for Check {
        type Response = HealthCheckResponse;
        type Future =
            std::future::Ready<Result<tonic::Response<HealthCheckResponse>, tonic::Status>>;
        fn call(&mut self, _: tonic::Request<HealthCheckRequest>) -> Self::Future {
            std::future::ready(Ok(tonic::Response::new(HealthCheckResponse {
                status: self.0,
            })))
        }
    }

    type HttpRequest = tonic::codegen::http::Request<tonic::body::Body>;
    type HttpResponse = tonic::codegen::http::Response<tonic::body::Body>;

    impl tower::Service<HttpRequest> for HealthServer {
        type Response = HttpResponse;
        type Error = std::convert::Infallible;
        type Future = futures::future::BoxFuture<'static, Result<HttpResponse, Self::Error>>;

        fn poll_ready(
            &mut self,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), Self::Error>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn call(&mut self, req: HttpRequest) -> Self::Future {
            let status = self.0;
            Box::pin(async move {
                let codec =
                    tonic_prost::ProstCodec::<HealthCheckResponse, HealthCheckRequest>::default();
                let mut grpc = tonic::server::Grpc::new(codec);
                Ok(grpc.unary(Check(status), req).await)
            })
        }
    }

    async fn health_server(status: i32) -> (u16, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await;
        let Ok(listener) = listener else {
            panic!("binding a local port");
        };
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        let server = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(HealthServer(status))
                .serve_with_incoming(incoming)
                .await;
        });
        (port, server)
    }

    #[tokio::test]
    async fn grpc_probe_checks_the_health_service() {
        let timeout = Duration::from_secs(2);
        let (port, server) = health_server(1).await;
        let serving = grpc_check("127.0.0.1", port, "", timeout).await;
        server.abort();
        assert_eq!(serving, Ok(()));
        let (port, server) = health_server(2).await;
        let not_serving = grpc_check("127.0.0.1", port, "svc", timeout).await;
        server.abort();
        assert_eq!(
            not_serving,
            Err("service unhealthy (responded with \"NOT_SERVING\")".into())
        );
    }

    #[tokio::test]
    async fn grpc_probe_fails_on_a_server_that_is_not_grpc() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await;
        let Ok(listener) = listener else {
            panic!("binding a local port");
        };
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        // Accepts and closes every connection.
        let server = tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                drop(s);
            }
        });
        let result = grpc_check("127.0.0.1", port, "", Duration::from_secs(1)).await;
        server.abort();
        assert!(result.is_err(), "{result:?}");
    }
}
