//! Pod status as upstream shapes it, computed from what the runtime reports.

use std::collections::HashMap;

use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::{json, Value};

use super::probes::Health;

/// The pod's newest sandbox.
#[derive(Debug, Clone)]
pub struct SandboxObs {
    pub id: String,
    pub attempt: u32,
    pub ready: bool,
    pub ip: String,
}

/// One instance of a container.
#[derive(Debug, Clone)]
pub struct ContainerObs {
    pub id: String,
    pub attempt: u32,
    pub status: cri::ContainerStatus,
}

/// What the runtime has for a pod.
#[derive(Debug, Default)]
pub struct Observed {
    pub sandbox: Option<SandboxObs>,
    /// Instances per container name in the newest sandbox, newest first (at most two).
    pub containers: HashMap<String, Vec<ContainerObs>>,
    /// Probe results by container ID; a running container without an entry has no probes
    /// and is started and ready.
    pub health: HashMap<String, Health>,
    /// The kubelet failed the pod (`reason`, `message`), e.g. `DeadlineExceeded`.
    pub failure: Option<(String, String)>,
}

/// Why a container is not running.
#[derive(Debug, Clone)]
pub struct Waiting {
    pub reason: String,
    pub message: String,
}

impl Waiting {
    pub fn new(reason: &str, message: String) -> Self {
        Self {
            reason: reason.into(),
            message,
        }
    }
}

pub fn exited(o: &ContainerObs) -> bool {
    o.status.state == cri::ContainerState::ContainerExited as i32
}

pub fn running(o: &ContainerObs) -> bool {
    o.status.state == cri::ContainerState::ContainerRunning as i32
}

/// A sidecar: an init container with `restartPolicy: Always` (KEP-753), which keeps running
/// beside the main containers.
pub fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// Running and past its startup probe (if it has one).
fn started(latest: Option<&ContainerObs>, health: &HashMap<String, Health>) -> bool {
    latest.is_some_and(|l| running(l) && health.get(&l.id).is_none_or(|h| h.started))
}

fn time(nanos: i64) -> Value {
    Timestamp::from_nanosecond(nanos as i128)
        .map(|t| json!(Time(t)))
        .unwrap_or(Value::Null)
}

fn terminated(o: &ContainerObs) -> Value {
    let s = &o.status;
    let reason = match s.reason.as_str() {
        "" if s.exit_code == 0 => "Completed",
        "" => "Error",
        r => r,
    };
    let mut t = json!({
        "exitCode": s.exit_code,
        "reason": reason,
        "startedAt": time(s.started_at),
        "finishedAt": time(s.finished_at),
        "containerID": format!("containerd://{}", o.id),
    });
    if !s.message.is_empty() {
        t["message"] = json!(s.message);
    }
    json!({ "terminated": t })
}

/// One entry of `containerStatuses`/`initContainerStatuses`. A regular init container is
/// ready once it exited with 0; the others when running, started and passing readiness.
fn container_status(
    c: &Container,
    regular_init: bool,
    obs: &[ContainerObs],
    health: &HashMap<String, Health>,
    waiting: Option<&Waiting>,
    default_waiting: &str,
) -> Value {
    let latest = obs.first();
    let is_started = started(latest, health);
    let probed = latest.and_then(|l| health.get(&l.id));
    let ready = if regular_init {
        latest.is_some_and(|l| exited(l) && l.status.exit_code == 0)
    } else {
        is_started && probed.is_none_or(|h| h.ready)
    };
    let state = match (latest, waiting) {
        (Some(l), _) if running(l) => json!({"running": {"startedAt": time(l.status.started_at)}}),
        (_, Some(w)) => {
            let mut w2 = json!({"reason": w.reason});
            if !w.message.is_empty() {
                w2["message"] = json!(w.message);
            }
            json!({ "waiting": w2 })
        }
        (Some(l), None) if exited(l) => terminated(l),
        _ => json!({"waiting": {"reason": default_waiting}}),
    };
    // Restarting (waiting) shows the latest exit; otherwise the instance before it.
    let last_state = match (latest, waiting) {
        (Some(l), Some(_)) if exited(l) => terminated(l),
        _ => obs
            .get(1)
            .filter(|p| exited(p))
            .map(terminated)
            .unwrap_or(json!({})),
    };
    let mut s = json!({
        "name": c.name,
        "state": state,
        "lastState": last_state,
        "ready": ready,
        "restartCount": latest.map_or(0, |l| l.attempt),
        "image": c.image.clone().unwrap_or_default(),
        "imageID": latest.map(|l| l.status.image_ref.clone()).unwrap_or_default(),
        "started": is_started,
    });
    if let Some(l) = latest {
        s["containerID"] = json!(format!("containerd://{}", l.id));
    }
    s
}

/// The full status the kubelet owns: phase, conditions, container statuses, IPs, times, QoS.
pub fn pod_status(
    pod: &Pod,
    observed: &Observed,
    waiting: &HashMap<String, Waiting>,
    host_ip: &str,
) -> Value {
    let spec = pod.spec.clone().unwrap_or_default();
    let old = pod.status.clone().unwrap_or_default();
    let empty = Vec::new();
    let obs_of = |name: &str| observed.containers.get(name).unwrap_or(&empty);
    let init = spec.init_containers.clone().unwrap_or_default();
    let health = &observed.health;
    // A regular init container is done when it exited with 0, a sidecar once it started.
    let init_done = |c: &Container| {
        let latest = obs_of(&c.name).first();
        if is_sidecar(c) {
            started(latest, health)
        } else {
            latest.is_some_and(|o| exited(o) && o.status.exit_code == 0)
        }
    };
    // Once a main container ran in this sandbox the pod stays initialized, even while a
    // sidecar restarts (upstream's `HasAnyRegularContainerStarted`).
    let main_started = main_started(&spec.containers, observed);
    let initialized = main_started || init.iter().all(init_done);
    let restart_policy = spec.restart_policy.as_deref().unwrap_or("Always");

    let init_statuses: Vec<Value> = init
        .iter()
        .map(|c| {
            let obs = obs_of(&c.name);
            let regular = !is_sidecar(c);
            container_status(
                c,
                regular,
                obs,
                health,
                waiting.get(&c.name),
                "PodInitializing",
            )
        })
        .collect();
    let default_waiting = if initialized {
        "ContainerCreating"
    } else {
        "PodInitializing"
    };
    let statuses: Vec<Value> = spec
        .containers
        .iter()
        .map(|c| {
            let obs = obs_of(&c.name);
            container_status(c, false, obs, health, waiting.get(&c.name), default_waiting)
        })
        .collect();

    // Sidecars restart whatever the pod's policy: only a regular init container fails a pod.
    let init_failed = restart_policy == "Never"
        && !main_started
        && init.iter().filter(|c| !is_sidecar(c)).any(|c| {
            obs_of(&c.name)
                .first()
                .is_some_and(|o| exited(o) && o.status.exit_code != 0)
        });
    // Running sidecars keep the pod Running; their exits never decide the phase.
    let sidecars_running = init
        .iter()
        .filter(|c| is_sidecar(c) && obs_of(&c.name).first().is_some_and(running))
        .count();
    let phase = if observed.failure.is_some() || init_failed {
        "Failed"
    } else if !initialized {
        "Pending"
    } else {
        phase(
            &spec.containers,
            &statuses,
            restart_policy,
            sidecars_running,
        )
    };

    let ready_names = |list: &[Value]| -> Vec<String> {
        list.iter()
            .filter(|s| s["ready"] != json!(true))
            .filter_map(|s| s["name"].as_str().map(String::from))
            .collect()
    };
    // Sidecars count for readiness (upstream's `GenerateContainersReadyCondition`).
    let sidecar_statuses: Vec<Value> = init
        .iter()
        .zip(&init_statuses)
        .filter(|(c, _)| is_sidecar(c))
        .map(|(_, s)| s.clone())
        .collect();
    let mut unready = ready_names(&sidecar_statuses);
    unready.extend(ready_names(&statuses));
    let incomplete: Vec<String> = if main_started {
        Vec::new()
    } else {
        init.iter()
            .filter(|c| !init_done(c))
            .map(|c| c.name.clone())
            .collect()
    };
    let sandbox_ready = observed.sandbox.as_ref().is_some_and(|s| s.ready);
    let terminal = phase == "Succeeded" || phase == "Failed";
    let (ready, ready_reason, ready_message) = if terminal {
        (false, "PodCompleted", String::new())
    } else if unready.is_empty() {
        (true, "", String::new())
    } else {
        let message = format!("containers with unready status: [{}]", unready.join(" "));
        (false, "ContainersNotReady", message)
    };
    let conditions = vec![
        (
            "PodReadyToStartContainers",
            sandbox_ready,
            "",
            String::new(),
        ),
        (
            "Initialized",
            incomplete.is_empty(),
            match (incomplete.is_empty(), phase) {
                (true, "Succeeded") => "PodCompleted",
                (true, _) => "",
                (false, _) => "ContainersNotInitialized",
            },
            if incomplete.is_empty() {
                String::new()
            } else {
                format!(
                    "containers with incomplete status: [{}]",
                    incomplete.join(" ")
                )
            },
        ),
        ("Ready", ready, ready_reason, ready_message.clone()),
        ("ContainersReady", ready, ready_reason, ready_message),
        ("PodScheduled", true, "", String::new()),
    ];
    let now = Time(Timestamp::now());
    let conditions: Vec<Value> = conditions
        .into_iter()
        .map(|(kind, ok, reason, message)| {
            let status = if ok { "True" } else { "False" };
            let since = old
                .conditions
                .iter()
                .flatten()
                .find(|c| c.type_ == kind && c.status == status)
                .and_then(|c| c.last_transition_time.clone())
                .unwrap_or_else(|| now.clone());
            let mut c = json!({"type": kind, "status": status, "lastTransitionTime": since});
            if !reason.is_empty() {
                c["reason"] = json!(reason);
            }
            if !message.is_empty() {
                c["message"] = json!(message);
            }
            c
        })
        .collect();

    let mut status = json!({
        "phase": phase,
        "conditions": conditions,
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "startTime": old.start_time.clone().unwrap_or(now),
        "containerStatuses": statuses,
        "qosClass": qos_class(&spec.containers, &init),
    });
    if let Some((reason, message)) = &observed.failure {
        status["reason"] = json!(reason);
        status["message"] = json!(message);
    }
    if !init_statuses.is_empty() {
        status["initContainerStatuses"] = json!(init_statuses);
    }
    let pod_ip = match (&observed.sandbox, spec.host_network.unwrap_or(false)) {
        (_, true) => host_ip.to_string(),
        (Some(s), false) if s.ready && !s.ip.is_empty() => s.ip.clone(),
        _ => String::new(),
    };
    if !pod_ip.is_empty() {
        status["podIP"] = json!(pod_ip);
        status["podIPs"] = json!([{ "ip": pod_ip }]);
    } else if let Some(ip) = old.pod_ip.filter(|_| terminal) {
        // A finished pod keeps the address it had.
        status["podIP"] = json!(ip);
    }
    status
}

/// Whether a main container has run in the pod's current sandbox.
pub fn main_started(containers: &[Container], observed: &Observed) -> bool {
    containers.iter().any(|c| {
        observed
            .containers
            .get(&c.name)
            .is_some_and(|o| !o.is_empty())
    })
}

/// Upstream's `getPhase` for initialized pods; running sidecars count as running containers.
fn phase(
    containers: &[Container],
    statuses: &[Value],
    restart_policy: &str,
    sidecars_running: usize,
) -> &'static str {
    let (mut running, mut waiting, mut stopped, mut succeeded) = (sidecars_running, 0, 0, 0);
    for s in statuses {
        let state = &s["state"];
        if state.get("running").is_some() {
            running += 1;
        } else if let Some(t) = state.get("terminated") {
            stopped += 1;
            if t["exitCode"] == json!(0) {
                succeeded += 1;
            }
        } else if s["lastState"].get("terminated").is_some() {
            stopped += 1;
        } else {
            waiting += 1;
        }
    }
    if waiting > 0 || containers.is_empty() {
        return "Pending";
    }
    if running > 0 {
        return "Running";
    }
    match restart_policy {
        "Always" => "Running",
        "OnFailure" if stopped == succeeded => "Succeeded",
        "OnFailure" => "Running",
        _ if stopped == succeeded => "Succeeded",
        _ => "Failed",
    }
}

/// BestEffort, Burstable or Guaranteed, as upstream's `GetPodQOS`.
pub fn qos_class(containers: &[Container], init: &[Container]) -> &'static str {
    let mut any = false;
    let mut guaranteed = true;
    for c in containers.iter().chain(init) {
        let r = c.resources.clone().unwrap_or_default();
        let requests = r.requests.unwrap_or_default();
        let limits = r.limits.unwrap_or_default();
        for res in ["cpu", "memory"] {
            let (req, lim) = (requests.get(res), limits.get(res));
            if req.is_some() || lim.is_some() {
                any = true;
            }
            match (req, lim) {
                (_, None) => guaranteed = false,
                (Some(a), Some(b)) if a != b => guaranteed = false,
                _ => {}
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(resources: Value) -> Container {
        serde_json::from_value(json!({"name": "c", "resources": resources})).unwrap_or_default()
    }

    #[test]
    fn qos() {
        assert_eq!(qos_class(&[container(json!({}))], &[]), "BestEffort");
        let g = json!({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}});
        assert_eq!(qos_class(&[container(g)], &[]), "Guaranteed");
        let b = json!({"requests": {"memory": "1Gi"}});
        assert_eq!(qos_class(&[container(b)], &[]), "Burstable");
    }

    fn instance(id: &str, state: cri::ContainerState, exit_code: i32) -> Vec<ContainerObs> {
        vec![ContainerObs {
            id: id.into(),
            attempt: 0,
            status: cri::ContainerStatus {
                state: state as i32,
                exit_code,
                ..Default::default()
            },
        }]
    }

    fn condition(status: &Value, kind: &str) -> (String, String) {
        let c = status["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == json!(kind))
            .cloned()
            .unwrap_or_default();
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        (text(&c["status"]), text(&c["message"]))
    }

    #[test]
    fn sidecars_count_for_readiness_and_not_for_the_phase() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {
                "restartPolicy": "Never",
                "initContainers": [
                    {"name": "init"},
                    {"name": "side", "restartPolicy": "Always"},
                ],
                "containers": [{"name": "main"}],
            }
        }))
        .unwrap_or_default();
        use cri::ContainerState::{ContainerExited, ContainerRunning};
        let mut observed = Observed::default();
        observed
            .containers
            .insert("init".into(), instance("i", ContainerExited, 0));
        observed
            .containers
            .insert("side".into(), instance("s", ContainerRunning, 0));
        let not_ready = Health {
            started: true,
            ready: false,
            failed: None,
        };
        observed.health.insert("s".into(), not_ready);
        let waiting = HashMap::new();

        // Initialized once the sidecar started; its readiness holds the pod back.
        let status = pod_status(&pod, &observed, &waiting, "10.0.0.1");
        assert_eq!(status["phase"], json!("Pending"));
        assert_eq!(condition(&status, "Initialized").0, "True");
        let ready = condition(&status, "Ready");
        assert_eq!(ready.1, "containers with unready status: [side main]");
        let init = &status["initContainerStatuses"];
        assert_eq!(init[0]["ready"], json!(true), "{init}");
        assert_eq!(
            (&init[1]["started"], &init[1]["ready"]),
            (&json!(true), &json!(false))
        );

        // The main container finished, the sidecar still runs: not done yet.
        observed
            .containers
            .insert("main".into(), instance("m", ContainerExited, 0));
        let status = pod_status(&pod, &observed, &waiting, "10.0.0.1");
        assert_eq!(status["phase"], json!("Running"));

        // The sidecar was stopped (exit 143): its exit code does not count.
        observed
            .containers
            .insert("side".into(), instance("s", ContainerExited, 143));
        let status = pod_status(&pod, &observed, &waiting, "10.0.0.1");
        assert_eq!(status["phase"], json!("Succeeded"));
        assert_eq!(
            condition(&status, "Initialized"),
            ("True".into(), String::new())
        );
        assert_eq!(condition(&status, "Ready").0, "False");
    }

    #[test]
    fn phases_follow_restart_policy() {
        let c = [container(json!({}))];
        let running = json!({"state": {"running": {}}, "lastState": {}});
        let failed = json!({"state": {"terminated": {"exitCode": 1}}, "lastState": {}});
        let ok = json!({"state": {"terminated": {"exitCode": 0}}, "lastState": {}});
        let creating =
            json!({"state": {"waiting": {"reason": "ContainerCreating"}}, "lastState": {}});
        let backoff = json!({"state": {"waiting": {"reason": "CrashLoopBackOff"}},
                             "lastState": {"terminated": {"exitCode": 1}}});
        assert_eq!(phase(&c, &[running], "Always", 0), "Running");
        assert_eq!(phase(&c, &[creating], "Always", 0), "Pending");
        assert_eq!(phase(&c, &[backoff], "Always", 0), "Running");
        assert_eq!(
            phase(&c, std::slice::from_ref(&failed), "Never", 0),
            "Failed"
        );
        assert_eq!(
            phase(&c, std::slice::from_ref(&failed), "OnFailure", 0),
            "Running"
        );
        // A finished main container with a sidecar still running: not done until it stops.
        assert_eq!(phase(&c, std::slice::from_ref(&ok), "Never", 1), "Running");
        assert_eq!(phase(&c, &[ok], "Never", 0), "Succeeded");
    }
}
