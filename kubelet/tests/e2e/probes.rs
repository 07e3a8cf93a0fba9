//! End to end: probes, lifecycle hooks, active deadlines, image pull policies and a pull from a
//! real local registry, on a real `meso-kubelet` with its own containerd (see `pods.rs` for
//! the prerequisites; tests skip without them, and fail under `CI=true`).

use crate::common;

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use common::{http_get, prerequisites, status_of, touch, TestNode, BUSYBOX};
use k8s_openapi::api::core::v1::{ContainerStatus, PodStatus};
use kube::api::DeleteParams;
use serde_json::json;

fn condition(status: &PodStatus, kind: &str) -> Option<String> {
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == kind)
        .map(|c| c.status.clone())
}

fn waiting_reason(cs: &ContainerStatus) -> Option<String> {
    cs.state.as_ref()?.waiting.as_ref()?.reason.clone()
}

/// One pod exercises the startup probe (exec) gating the others, readiness (exec) driving
/// `ready` and the Ready condition, liveness (httpGet on a named port) restarting the
/// container, a tcpSocket readiness probe, postStart and preStop hooks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_and_hooks_drive_readiness_restarts_and_deletion() -> Result<()> {
    if !prerequisites() {
        return Ok(());
    }
    let node = TestNode::start().await?;
    let marks = node.server.scratch_dir().join("marks");
    std::fs::create_dir_all(marks.join("www"))?;
    touch(&marks.join("www/healthz"), "ok\n")?;
    let probe = |action: serde_json::Value, failures: i32| {
        let mut p = json!({"periodSeconds": 1, "timeoutSeconds": 1, "failureThreshold": failures});
        if let (Some(p), Some(a)) = (p.as_object_mut(), action.as_object()) {
            p.extend(a.clone());
        }
        p
    };
    node.create_pod(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probed"},
        "spec": {
            "terminationGracePeriodSeconds": 10,
            "containers": [
                {"name": "web", "image": BUSYBOX,
                 "command": ["httpd", "-f", "-p", "8080", "-h", "/marks/www"],
                 "ports": [{"name": "http", "containerPort": 8080}],
                 "startupProbe": probe(json!({"exec": {"command": ["test", "-f", "/marks/started"]}}), 120),
                 "readinessProbe": probe(json!({"exec": {"command": ["cat", "/marks/ready"]}}), 1),
                 "livenessProbe": probe(json!({"httpGet": {"path": "/healthz", "port": "http",
                                                           "httpHeaders": [{"name": "X-Probe", "value": "1"}]}}), 3),
                 "lifecycle": {
                     "postStart": {"exec": {"command": ["sh", "-c", "echo post-start > /marks/www/poststart.txt"]}},
                     "preStop": {"exec": {"command": ["sh", "-c", "echo pre-stop >> /marks/pre-stop"]}},
                 },
                 "volumeMounts": [{"name": "marks", "mountPath": "/marks"}]},
                {"name": "side", "image": BUSYBOX, "command": ["sleep", "3600"],
                 "readinessProbe": probe(json!({"tcpSocket": {"port": 8080}}), 1)},
            ],
            "volumes": [{"name": "marks", "hostPath": {"path": marks.display().to_string(), "type": "Directory"}}],
        }
    }))
    .await?;
    let pods = node.pods();

    // Running, but `web` is not started (startup probe pending) and so not ready; `side`'s
    // tcpSocket probe reaches httpd and makes it ready.
    let pod = node
        .wait(
            "side ready, web not started",
            Duration::from_secs(90),
            || async {
                let pod = pods.get("probed").await?;
                let ok = status_of(&pod, "side").is_some_and(|c| c.ready)
                    && status_of(&pod, "web")
                        .is_some_and(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()));
                Ok(ok.then_some(pod))
            },
        )
        .await?;
    let web = status_of(&pod, "web").context("web status")?;
    assert_eq!((web.started, web.ready), (Some(false), false), "{web:?}");
    let status = pod.status.clone().context("status")?;
    assert_eq!(condition(&status, "Ready").as_deref(), Some("False"));
    assert_eq!(status.phase.as_deref(), Some("Running"));

    // The startup probe passes: started, still not ready (no /marks/ready yet).
    touch(&marks.join("started"), "")?;
    node.wait("web started", Duration::from_secs(30), || async {
        let pod = pods.get("probed").await?;
        Ok(status_of(&pod, "web")
            .filter(|c| c.started == Some(true))
            .map(|_| ()))
    })
    .await?;
    let reasons = node
        .wait(
            "a readiness failure event",
            Duration::from_secs(30),
            || async {
                let events = node.event_reasons("probed").await?;
                let found = events
                    .iter()
                    .any(|(r, m)| r == "Unhealthy" && m.starts_with("Readiness probe failed: "));
                Ok(found.then_some(events))
            },
        )
        .await?;
    assert!(
        !reasons.iter().any(|(r, _)| r == "Killing"),
        "nothing was killed yet: {reasons:?}"
    );
    let pod = pods.get("probed").await?;
    assert!(!status_of(&pod, "web").is_some_and(|c| c.ready), "{pod:?}");

    // Readiness passes: the container and the pod become ready.
    touch(&marks.join("ready"), "yes\n")?;
    let pod = node.wait_running("probed").await?;
    let status = pod.status.clone().context("status")?;
    assert_eq!(condition(&status, "Ready").as_deref(), Some("True"));
    assert_eq!(
        condition(&status, "ContainersReady").as_deref(),
        Some("True")
    );
    assert_eq!(status_of(&pod, "web").map(|c| c.restart_count), Some(0));

    // postStart wrote a file the container serves.
    let pod_ip = status.pod_ip.clone().context("podIP")?;
    let body = http_get(&pod_ip, 8080, "/poststart.txt")?;
    assert!(body.contains("post-start"), "{body}");

    // Liveness fails (404): the container is killed and restarted.
    std::fs::remove_file(marks.join("www/healthz"))?;
    node.wait("web restarted", Duration::from_secs(60), || async {
        let pod = pods.get("probed").await?;
        Ok(status_of(&pod, "web")
            .filter(|c| c.restart_count >= 1)
            .map(|_| ()))
    })
    .await?;
    touch(&marks.join("www/healthz"), "ok\n")?;
    let events = node.event_reasons("probed").await?;
    assert!(
        events.iter().any(|(r, m)| r == "Unhealthy"
            && m == "Liveness probe failed: HTTP probe failed with statuscode: 404"),
        "{events:?}"
    );
    assert!(
        events.iter().any(|(r, m)| r == "Killing"
            && m == "Container web failed liveness probe, will be restarted"),
        "{events:?}"
    );
    // The preStop hook ran before that kill, too.
    let pre_stop = std::fs::read_to_string(marks.join("pre-stop")).unwrap_or_default();
    assert!(pre_stop.starts_with("pre-stop"), "{pre_stop:?}");
    let pod = node.wait_running("probed").await?;
    let web = status_of(&pod, "web").context("web status")?;
    assert!(web.restart_count >= 1 && web.ready, "{web:?}");

    // Deletion runs preStop again before SIGTERM.
    std::fs::remove_file(marks.join("pre-stop"))?;
    pods.delete("probed", &DeleteParams::default()).await?;
    node.wait("the pod to disappear", Duration::from_secs(40), || async {
        Ok(pods.get_opt("probed").await?.is_none().then_some(()))
    })
    .await?;
    let pre_stop =
        std::fs::read_to_string(marks.join("pre-stop")).context("preStop did not run")?;
    assert_eq!(pre_stop.trim(), "pre-stop");
    Ok(())
}

/// `activeDeadlineSeconds`, `imagePullPolicy: Never` and `Always` without a registry, a failing
/// postStart hook and resourceFieldRef env/downward API values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines_pull_policies_failed_hooks_and_resource_fields() -> Result<()> {
    if !prerequisites() {
        return Ok(());
    }
    let node = TestNode::start().await?;
    let pods = node.pods();
    node.create_pod(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "deadline"},
        "spec": {"activeDeadlineSeconds": 4, "terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "c", "image": BUSYBOX, "command": ["sleep", "3600"]}]}
    }))
    .await?;
    node.create_pod(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "never"},
        "spec": {"containers": [{"name": "c", "image": "meso.local/absent:1", "imagePullPolicy": "Never"}]}
    }))
    .await?;
    // Port 1 refuses at once: the pull fails without leaving the machine.
    node.create_pod(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "unpullable"},
        "spec": {"containers": [{"name": "c", "image": "127.0.0.1:1/absent:1", "imagePullPolicy": "Always"}]}
    }))
    .await?;
    node.create_pod(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "hookfail"},
        "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "c", "image": BUSYBOX, "command": ["sleep", "3600"],
                                 "lifecycle": {"postStart": {"exec": {"command": ["sh", "-c", "exit 7"]}}}}]}
    }))
    .await?;
    let script = "echo CPU_MILLI=$CPU_MILLI MEM_MI=$MEM_MI REQ_CPU=$REQ_CPU; \
                  echo FILE=$(cat /info/mem); sleep 3600";
    node.create_pod(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "resources"},
        "spec": {"containers": [{"name": "c", "image": BUSYBOX, "command": ["sh", "-c", script],
            "resources": {"limits": {"cpu": "250m", "memory": "32Mi"}},
            "env": [
                {"name": "CPU_MILLI", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1m"}}},
                {"name": "MEM_MI", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
                {"name": "REQ_CPU", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu"}}},
            ],
            "volumeMounts": [{"name": "info", "mountPath": "/info"}]}],
            "volumes": [{"name": "info", "downwardAPI": {"items": [
                {"path": "mem", "resourceFieldRef": {"containerName": "c", "resource": "limits.memory", "divisor": "1Ki"}}]}}]}
    }))
    .await?;

    let status = node
        .wait(
            "the deadline pod Failed",
            Duration::from_secs(60),
            || async {
                let status = pods.get("deadline").await?.status.unwrap_or_default();
                Ok((status.phase.as_deref() == Some("Failed")).then_some(status))
            },
        )
        .await?;
    assert_eq!(status.reason.as_deref(), Some("DeadlineExceeded"));
    assert_eq!(
        status.message.as_deref(),
        Some("Pod was active on the node longer than the specified deadline")
    );
    let events = node.event_reasons("deadline").await?;
    assert!(
        events.iter().any(|(r, _)| r == "DeadlineExceeded"),
        "{events:?}"
    );

    let reason_of = |name: &'static str, want: &'static str| {
        let pods = pods.clone();
        async move {
            let pod = pods.get(name).await?;
            Ok(status_of(&pod, "c")
                .and_then(|c| waiting_reason(&c))
                .filter(|r| r == want)
                .map(|_| pod))
        }
    };
    let pod = node
        .wait("ErrImageNeverPull", Duration::from_secs(30), || {
            reason_of("never", "ErrImageNeverPull")
        })
        .await?;
    let message = status_of(&pod, "c")
        .and_then(|c| c.state?.waiting?.message)
        .unwrap_or_default();
    assert_eq!(
        message,
        "Container image \"meso.local/absent:1\" is not present with pull policy of Never"
    );
    // A failed pull shows ErrImagePull (for a sync period), then backs off.
    node.wait("ImagePullBackOff", Duration::from_secs(30), || {
        reason_of("unpullable", "ImagePullBackOff")
    })
    .await?;
    let events = node.event_reasons("unpullable").await?;
    for (reason, message) in [
        ("Pulling", "Pulling image \"127.0.0.1:1/absent:1\""),
        ("Failed", "Error: ErrImagePull"),
        ("BackOff", "Back-off pulling image \"127.0.0.1:1/absent:1\""),
        ("Failed", "Error: ImagePullBackOff"),
    ] {
        assert!(
            events.iter().any(|(r, m)| r == reason && m == message),
            "{reason} {message}: {events:?}"
        );
    }

    let events = node
        .wait("FailedPostStartHook", Duration::from_secs(30), || async {
            let events = node.event_reasons("hookfail").await?;
            Ok(events
                .iter()
                .any(|(r, m)| {
                    r == "FailedPostStartHook"
                        && m.starts_with("Exec lifecycle hook ([sh -c exit 7]) for Container \"c\"")
                        && m.contains("failed - error: command 'sh -c exit 7' exited with 7: ")
                })
                .then_some(events))
        })
        .await?;
    assert!(
        events
            .iter()
            .any(|(r, m)| r == "Killing" && m == "FailedPostStartHook"),
        "{events:?}"
    );
    // restartPolicy Never: the killed container stays down and the pod fails.
    node.wait("hookfail Failed", Duration::from_secs(30), || async {
        let status = pods.get("hookfail").await?.status.unwrap_or_default();
        Ok((status.phase.as_deref() == Some("Failed")).then_some(()))
    })
    .await?;

    let pod = node.wait_running("resources").await?;
    let log = node
        .wait("the resources log", Duration::from_secs(20), || async {
            let log = node.container_log(&pod, "c");
            Ok(log.contains("FILE=").then_some(log))
        })
        .await?;
    // Requests default to limits in the API server, so requests.cpu is 250m → 1 CPU.
    assert!(log.contains("CPU_MILLI=250 MEM_MI=32 REQ_CPU=1"), "{log}");
    assert!(log.contains("FILE=32768"), "{log}");
    Ok(())
}

/// A `docker-registry` (Debian's distribution/distribution) on 127.0.0.1, optionally with
/// htpasswd authentication; killed on drop.
struct Registry {
    child: std::process::Child,
    addr: String,
    auth: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

impl Registry {
    fn start(auth: Option<(&str, &str)>) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
            dir.path().join("storage").display()
        );
        if let Some((user, password)) = auth {
            let out = std::process::Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .output()
                .context("running htpasswd (apache2-utils)")?;
            anyhow::ensure!(out.status.success(), "htpasswd failed: {out:?}");
            std::fs::write(dir.path().join("htpasswd"), &out.stdout)?;
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: meso-test\n    path: {}\n",
                dir.path().join("htpasswd").display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config)?;
        let log = std::fs::File::create(dir.path().join("registry.log"))?;
        let child = std::process::Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting docker-registry")?;
        Ok(Self {
            child,
            addr,
            auth: auth.map(|(u, p)| (u.to_string(), p.to_string())),
            _dir: dir,
        })
    }

    fn request(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.auth {
            Some((user, password)) => req.basic_auth(user, Some(password)),
            None => req,
        }
    }

    /// Pushes the image of an OCI archive (one manifest) as `repo:tag` over the v2 API.
    async fn push(&self, archive: &Path, repo: &str, tag: &str) -> Result<()> {
        let http = reqwest::Client::builder().no_proxy().build()?;
        let base = format!("http://{}", self.addr);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while http.get(format!("{base}/v2/")).send().await.is_err() {
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "registry not answering"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let layout = tempfile::tempdir()?;
        let status = std::process::Command::new("tar")
            .arg("-xf")
            .arg(archive)
            .arg("-C")
            .arg(layout.path())
            .status()?;
        anyhow::ensure!(status.success(), "unpacking {}", archive.display());
        let blob = |digest: &str| {
            let hex = digest.trim_start_matches("sha256:");
            std::fs::read(layout.path().join("blobs/sha256").join(hex))
                .with_context(|| format!("blob {digest}"))
        };
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(layout.path().join("index.json"))?)?;
        let manifest_digest = index["manifests"][0]["digest"]
            .as_str()
            .context("index.json without a manifest")?;
        let manifest_bytes = blob(manifest_digest)?;
        let manifest: serde_json::Value = serde_json::from_slice(&manifest_bytes)?;
        let mut digests = vec![manifest["config"]["digest"].clone()];
        digests.extend(manifest["layers"].as_array().cloned().unwrap_or_default());
        for d in digests {
            let digest = d
                .as_str()
                .or_else(|| d["digest"].as_str())
                .context("blob digest")?
                .to_string();
            let started = self
                .request(http.post(format!("{base}/v2/{repo}/blobs/uploads/")))
                .send()
                .await?;
            anyhow::ensure!(
                started.status().as_u16() == 202,
                "upload start: {started:?}"
            );
            let location = started
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .context("upload location")?
                .to_string();
            let location = if location.starts_with("http") {
                location
            } else {
                format!("{base}{location}")
            };
            let sep = if location.contains('?') { '&' } else { '?' };
            let put = self
                .request(http.put(format!("{location}{sep}digest={digest}")))
                .header("Content-Type", "application/octet-stream")
                .body(blob(&digest)?)
                .send()
                .await?;
            anyhow::ensure!(put.status().as_u16() == 201, "blob upload: {put:?}");
        }
        let media_type = manifest["mediaType"]
            .as_str()
            .unwrap_or("application/vnd.oci.image.manifest.v1+json")
            .to_string();
        let put = self
            .request(http.put(format!("{base}/v2/{repo}/manifests/{tag}")))
            .header("Content-Type", media_type)
            .body(manifest_bytes)
            .send()
            .await?;
        anyhow::ensure!(put.status().as_u16() == 201, "manifest upload: {put:?}");
        Ok(())
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `docker-registry` and `htpasswd` are installed; in CI their absence fails.
fn registry_prerequisites() -> bool {
    let missing: Vec<&str> = [
        ("docker-registry", "/usr/bin/docker-registry"),
        ("apache2-utils (htpasswd)", "/usr/bin/htpasswd"),
    ]
    .into_iter()
    .filter(|(_, path)| !Path::new(path).exists())
    .map(|(what, _)| what)
    .collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "registry test prerequisites missing: {}",
        missing.join(", ")
    );
    if meso_tests::is_ci() {
        panic!("{msg} (.ci/run installs them)");
    }
    eprintln!("SKIPPED: {msg}");
    false
}

/// Pulls from real local registries marked `--insecure-registry`: an open one, and one with
/// htpasswd authentication reached with and without `imagePullSecrets`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_pull_from_a_local_registry_with_pull_secrets() -> Result<()> {
    if !prerequisites() || !registry_prerequisites() {
        return Ok(());
    }
    let open = Registry::start(None)?;
    let locked = Registry::start(Some(("meso", "s3cret-pw")))?;
    let busybox = common::images()?.join("busybox.tar");
    open.push(&busybox, "meso/busybox", "pushed").await?;
    locked.push(&busybox, "meso/busybox", "locked").await?;
    let extra: Vec<String> = [&open.addr, &locked.addr]
        .iter()
        .flat_map(|a| ["--insecure-registry".to_string(), a.to_string()])
        .collect();
    let node = TestNode::start_with(&extra).await?;
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "regcred"},
        "type": "kubernetes.io/dockerconfigjson",
        "stringData": {".dockerconfigjson": json!({"auths": {locked.addr.clone(): {
            "username": "meso", "password": "s3cret-pw"}}}).to_string()},
    });
    kube::Api::<k8s_openapi::api::core::v1::Secret>::namespaced(node.client.clone(), "default")
        .create(&Default::default(), &serde_json::from_value(secret)?)
        .await?;
    let pod = |name: &str, image: String, secrets: serde_json::Value| {
        json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"imagePullSecrets": secrets,
                     "containers": [{"name": "c", "image": image, "command": ["sleep", "3600"],
                                     "imagePullPolicy": "Always"}]}
        })
    };
    node.create_pod(pod(
        "open",
        format!("{}/meso/busybox:pushed", open.addr),
        json!([]),
    ))
    .await?;
    // `Always`: the anonymous pod pulls even once the authenticated pod brought the image in,
    // and (as upstream) a failed pull does not fall back to the local copy.
    let locked_image = format!("{}/meso/busybox:locked", locked.addr);
    node.create_pod(pod(
        "authed",
        locked_image.clone(),
        json!([{"name": "regcred"}]),
    ))
    .await?;
    node.create_pod(pod("anonymous", locked_image.clone(), json!([])))
        .await?;

    let running = node.wait_running("open").await?;
    let image_id = status_of(&running, "c")
        .map(|c| c.image_id)
        .unwrap_or_default();
    assert!(image_id.contains("sha256:"), "{image_id}");
    let events = node.event_reasons("open").await?;
    assert!(
        events
            .iter()
            .any(|(r, m)| r == "Pulled" && m.starts_with("Successfully pulled image")),
        "{events:?}"
    );
    node.wait_running("authed").await?;
    // Without the secret the registry refuses: ErrImagePull, then back-off.
    let pods = node.pods();
    node.wait(
        "anonymous pull refused",
        Duration::from_secs(60),
        || async {
            let pod = pods.get("anonymous").await?;
            let reason = status_of(&pod, "c").and_then(|c| waiting_reason(&c));
            Ok(
                matches!(reason.as_deref(), Some("ErrImagePull" | "ImagePullBackOff"))
                    .then_some(()),
            )
        },
    )
    .await?;
    Ok(())
}
