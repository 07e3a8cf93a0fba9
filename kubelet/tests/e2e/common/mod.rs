//! What the kubelet e2e tests and the pod startup benchmark share: prerequisites, the image
//! archives, and [`TestNode`] (a `meso server` plus one `meso-kubelet` with its own
//! containerd). Every node gets its own bridge and pod CIDR, and `--pod-egress=local`, so
//! nothing leaves the machine.
#![allow(dead_code)] // each test crate uses a part

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use k8s_openapi::api::core::v1::{ContainerStatus, Event, Node, Pod};
use kube::api::PostParams;
use kube::Api;
use meso_tests::MesoServer;
use serde_json::json;

/// The busybox image `deploy/images/build.sh` builds (a fixed tag: `latest` would default to
/// `imagePullPolicy: Always`, which needs a registry).
pub const BUSYBOX: &str = "busybox:stable";

pub const KUBELET: &str = env!("CARGO_BIN_EXE_meso-kubelet");

/// Whether this machine can run pods; `false` means skip (explained), and in CI it panics.
pub fn prerequisites() -> bool {
    meso_tests::pod_prerequisites("kubelet e2e")
}

/// The image archives, built once per test process by `deploy/images/build.sh`.
pub fn images() -> Result<&'static Path> {
    meso_tests::image_archives(&PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("meso-images"))
}

/// A control plane plus one kubelet node.
pub struct TestNode {
    pub server: MesoServer,
    pub name: String,
    pub args: Vec<String>,
    pub data_dir: PathBuf,
    pub kubelet: Option<Child>,
    pub client: kube::Client,
}

impl TestNode {
    pub async fn start() -> Result<Self> {
        Self::start_with(&[]).await
    }

    /// A node whose kubelet gets `extra` flags besides the usual ones.
    pub async fn start_with(extra: &[String]) -> Result<Self> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = (std::process::id() % 100 + NEXT.fetch_add(1, Ordering::Relaxed) * 7) % 150 + 100;
        let server = MesoServer::start()?;
        let data_dir = server.scratch_dir().join("agent");
        std::fs::create_dir_all(data_dir.join("images"))?;
        for archive in ["pause.tar", "busybox.tar"] {
            std::os::unix::fs::symlink(
                images()?.join(archive),
                data_dir.join("images").join(archive),
            )?;
        }
        let name = format!("node-{n}");
        let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let args: Vec<String> = [
            "--data-dir",
            &data_dir.display().to_string(),
            "--kubeconfig",
            &server.kubeconfig().display().to_string(),
            "--node-name",
            &name,
            "--node-ip",
            "127.0.0.1",
            "--pod-cidr",
            &format!("10.42.{n}.0/24"),
            "--cni-bridge",
            &format!("mesot{n}"),
            "--pod-egress",
            "local",
            "--metrics-bind-address",
            &format!("127.0.0.1:{metrics_port}"),
            "--sync-period-seconds",
            "1",
            "--kubelet-port",
            "0",
            "--kubelet-address",
            "127.0.0.1",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain(extra.iter().cloned())
        .collect();
        let client = server.kube_client().await?;
        let mut node = Self {
            server,
            name,
            args,
            data_dir,
            kubelet: None,
            client,
        };
        node.start_kubelet()?;
        node.wait_ready().await?;
        Ok(node)
    }

    pub fn start_kubelet(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.server.scratch_dir().join("kubelet.log"))?;
        let child = Command::new(KUBELET)
            .args(&self.args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("spawning meso-kubelet")?;
        self.kubelet = Some(child);
        Ok(())
    }

    /// Stops the kubelet with `signal` and waits for it to exit.
    pub fn stop_kubelet(&mut self, signal: i32) {
        if let Some(mut child) = self.kubelet.take() {
            // SAFETY: kill(2) on our own child.
            unsafe { libc::kill(child.id() as i32, signal) };
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn kubelet_log(&self) -> String {
        let log = std::fs::read_to_string(self.server.scratch_dir().join("kubelet.log"))
            .unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(80)..].join("\n")
    }

    pub async fn wait_ready(&self) -> Result<()> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        self.wait("node Ready", Duration::from_secs(60), || async {
            let node = nodes.get_opt(&self.name).await?;
            let ready = node
                .and_then(|n| n.status)
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            Ok(ready.then_some(()))
        })
        .await
    }

    /// Polls `check` every 250 ms until it answers `Some`, or fails after `timeout` with the
    /// kubelet's log.
    pub async fn wait<T, F, Fut>(&self, what: &str, timeout: Duration, mut check: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Option<T>>>,
    {
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        loop {
            match check().await {
                Ok(Some(v)) => return Ok(v),
                Ok(None) => {}
                Err(e) => last = format!("{e:#}"),
            }
            if Instant::now() > deadline {
                bail!(
                    "timed out waiting for {what} ({last})\nkubelet log:\n{}",
                    self.kubelet_log()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    pub fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), "default")
    }

    pub async fn create_pod(&self, spec: serde_json::Value) -> Result<Pod> {
        let mut pod = spec;
        pod["spec"]["nodeName"] = json!(self.name);
        let pod: Pod = serde_json::from_value(pod)?;
        Ok(self.pods().create(&PostParams::default(), &pod).await?)
    }

    /// Waits until the pod is Running with every container ready, and returns it.
    pub async fn wait_running(&self, name: &str) -> Result<Pod> {
        let pods = self.pods();
        self.wait(
            &format!("pod {name} Running"),
            Duration::from_secs(90),
            || async {
                let pod = pods.get(name).await?;
                let status = pod.status.clone().unwrap_or_default();
                let ready = status.container_statuses.iter().flatten().all(|c| c.ready);
                Ok((status.phase.as_deref() == Some("Running") && ready).then_some(pod))
            },
        )
        .await
    }

    /// Everything the pod's container has written to its CRI log so far (log lines without
    /// the CRI prefix).
    pub fn container_log(&self, pod: &Pod, container: &str) -> String {
        let m = &pod.metadata;
        let dir = self.data_dir.join("logs").join(format!(
            "{}_{}_{}",
            m.namespace.as_deref().unwrap_or_default(),
            m.name.as_deref().unwrap_or_default(),
            m.uid.as_deref().unwrap_or_default()
        ));
        let mut out = String::new();
        for attempt in 0..10 {
            let text = std::fs::read_to_string(dir.join(container).join(format!("{attempt}.log")))
                .unwrap_or_default();
            for line in text.lines() {
                // "<time> stdout F <text>"
                out.push_str(line.splitn(4, ' ').nth(3).unwrap_or_default());
                out.push('\n');
            }
        }
        out
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.stop_kubelet(libc::SIGTERM);
        match Command::new(KUBELET)
            .args(&self.args)
            .arg("teardown")
            .output()
        {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "kubelet teardown failed ({}):\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => eprintln!("kubelet teardown did not run: {e}"),
        }
    }
}

pub fn http_get(ip: &str, port: u16, path: &str) -> Result<String> {
    let mut s =
        TcpStream::connect_timeout(&format!("{ip}:{port}").parse()?, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {ip}\r\n\r\n")?;
    let mut body = String::new();
    s.read_to_string(&mut body)?;
    Ok(body)
}

impl TestNode {
    /// Reasons of the events about a pod, oldest first.
    pub async fn event_reasons(&self, pod: &str) -> Result<Vec<(String, String)>> {
        let events: Api<Event> = Api::namespaced(self.client.clone(), "default");
        Ok(events
            .list(&Default::default())
            .await?
            .items
            .into_iter()
            .filter(|e| e.involved_object.name.as_deref() == Some(pod))
            .map(|e| (e.reason.unwrap_or_default(), e.message.unwrap_or_default()))
            .collect())
    }
}

/// The status of a regular container of the pod.
pub fn status_of(pod: &Pod, container: &str) -> Option<ContainerStatus> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    statuses.iter().find(|c| c.name == container).cloned()
}

/// The status of an init container (or sidecar) of the pod.
pub fn init_status_of(pod: &Pod, container: &str) -> Option<ContainerStatus> {
    let statuses = pod.status.as_ref()?.init_container_statuses.as_ref()?;
    statuses.iter().find(|c| c.name == container).cloned()
}

/// Writes `text` to a file of a test (a mark a probe or container looks for).
pub fn touch(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
