//! Test helpers: a real `meso server` process, simulated nodes, and schedulers run in-process.
//!
//! The `meso` binary: `$MESO_BIN`, else the newer of `<workspace>/target/{release,debug}/meso`.
#![allow(dead_code)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub fn meso_binary() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("MESO_BIN") {
        return Ok(PathBuf::from(p));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .context("workspace root")?;
    ["target/release/meso", "target/debug/meso"]
        .iter()
        .map(|p| root.join(p))
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .max_by_key(|(t, _)| *t)
        .map(|(_, p)| p)
        .ok_or_else(|| anyhow!("no meso binary: build it (`cargo build -p meso`) or set MESO_BIN"))
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A running `meso server --disable-agent` on a free port with a fresh data dir.
pub struct Server {
    child: Child,
    dir: tempfile::TempDir,
    pub client: kube::Client,
}

impl Server {
    pub async fn start() -> Result<Server> {
        init_logs();
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("data");
        let log = std::fs::File::create(dir.path().join("meso.log"))?;
        let child = Command::new(meso_binary()?)
            .args([
                "server",
                "--disable-agent",
                "--disable-scheduler",
                "--disable-controllers",
                "--data-dir",
            ])
            .arg(&data)
            .args(["--secure-port", &free_port()?.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting meso server")?;
        let kubeconfig = data.join("admin.kubeconfig");
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut server = None;
        while Instant::now() < deadline {
            if kubeconfig.exists() {
                if let Ok(client) = client_from(&kubeconfig).await {
                    if client.apiserver_version().await.is_ok() {
                        server = Some(client);
                        break;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let Some(client) = server else {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
            bail!("meso server did not become ready");
        };
        Ok(Server { child, dir, client })
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("data/admin.kubeconfig")
    }

    fn stop(&mut self) {
        let pid = self.child.id();
        // SIGTERM, then reap (the server shuts down quickly); kill if it lingers.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn client_from(path: &Path) -> Result<kube::Client> {
    let kc = kube::config::Kubeconfig::read_from(path)?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
    Ok(kube::Client::try_from(cfg)?)
}

pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("meso_scheduler=info")),
        )
        .with_test_writer()
        .try_init();
}

/// A scheduler running in this process.
pub struct Scheduler {
    pub stop: CancellationToken,
    pub task: JoinHandle<Result<()>>,
    pub metrics: String,
}

impl Scheduler {
    pub async fn shutdown(self) -> Result<()> {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(20), self.task).await???;
        Ok(())
    }
}

pub fn start_scheduler(
    client: &kube::Client,
    identity: &str,
    fast_lease: bool,
) -> Result<Scheduler> {
    let port = free_port()?;
    let mut args = vec![
        "meso-scheduler".to_string(),
        format!("--metrics-bind-address=127.0.0.1:{port}"),
        format!("--leader-elect-identity={identity}"),
    ];
    if fast_lease {
        args.extend([
            "--leader-elect-lease-duration=3s".into(),
            "--leader-elect-renew-deadline=2s".into(),
            "--leader-elect-retry-period=300ms".into(),
        ]);
    }
    let cfg = <meso_scheduler::SchedulerConfig as clap::Parser>::try_parse_from(args)?;
    let stop = CancellationToken::new();
    let task = tokio::spawn(meso_scheduler::run_with_client(
        cfg,
        client.clone(),
        stop.clone(),
    ));
    Ok(Scheduler {
        stop,
        task,
        metrics: format!("http://127.0.0.1:{port}/metrics"),
    })
}

/// A Ready node with the given labels, cpu, and spec (taints, unschedulable).
pub async fn node(
    client: &kube::Client,
    name: &str,
    labels: Value,
    cpu: &str,
    spec: Value,
) -> Result<()> {
    node_sized(client, name, labels, cpu, "8Gi", spec).await
}

/// [`node`] with a given memory too.
pub async fn node_sized(
    client: &kube::Client,
    name: &str,
    labels: Value,
    cpu: &str,
    memory: &str,
    spec: Value,
) -> Result<()> {
    let api: Api<Node> = Api::all(client.clone());
    let mut labels = labels;
    labels["kubernetes.io/hostname"] = json!(name);
    let n: Node = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
    }))?;
    api.create(&PostParams::default(), &n).await?;
    let res = json!({"cpu": cpu, "memory": memory, "pods": "110", "ephemeral-storage": "100Gi"});
    let status = json!({"status": {
        "capacity": res, "allocatable": res,
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                        "message": "simulated", "lastHeartbeatTime": "2025-01-01T00:00:00Z",
                        "lastTransitionTime": "2025-01-01T00:00:00Z"}],
    }});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(())
}

/// A pod in `default` with one container and the given cpu request, plus `spec` merged in.
pub async fn pod(
    client: &kube::Client,
    name: &str,
    labels: Value,
    cpu: &str,
    spec: Value,
) -> Result<()> {
    let mut s = json!({"containers": [{"name": "c", "image": "busybox",
        "resources": {"requests": {"cpu": cpu}}}]});
    if let (Some(o), Some(extra)) = (s.as_object_mut(), spec.as_object()) {
        o.extend(extra.clone());
    }
    let p: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": labels},
        "spec": s,
    }))?;
    Api::<Pod>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &p)
        .await?;
    Ok(())
}

/// Creates a namespaced object (in its `metadata.namespace`, else `default`) from its JSON.
pub async fn create<K>(client: &kube::Client, obj: Value) -> Result<K>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::Serialize
        + serde::de::DeserializeOwned,
{
    let o: K = serde_json::from_value(obj)?;
    let ns = o
        .meta()
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    Ok(Api::<K>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &o)
        .await?)
}

/// Creates a cluster-scoped object from its JSON.
pub async fn create_cluster<K>(client: &kube::Client, obj: Value) -> Result<K>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::ClusterResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::Serialize
        + serde::de::DeserializeOwned,
{
    let o: K = serde_json::from_value(obj)?;
    Ok(Api::<K>::all(client.clone())
        .create(&PostParams::default(), &o)
        .await?)
}

/// The pod's `PodScheduled` condition once its status is `False`.
pub async fn unscheduled_condition(
    client: &kube::Client,
    name: &str,
) -> Result<k8s_openapi::api::core::v1::PodCondition> {
    eventually(20, &format!("PodScheduled=False on {name}"), || async {
        let p = get_pod(client, name).await?;
        Ok(p.status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.type_ == "PodScheduled" && c.status == "False"))
    })
    .await
}

pub async fn get_pod(client: &kube::Client, name: &str) -> Result<Pod> {
    Ok(Api::<Pod>::namespaced(client.clone(), "default")
        .get(name)
        .await?)
}

pub fn node_of(p: &Pod) -> Option<String> {
    p.spec.as_ref().and_then(|s| s.node_name.clone())
}

/// Polls `f` until it yields `Some`, for up to `secs`.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut last = String::new();
    while Instant::now() < deadline {
        match f().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last = format!("{e:#}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("timed out waiting for {what} {last}")
}

pub async fn wait_bound(client: &kube::Client, name: &str) -> Result<String> {
    eventually(30, &format!("{name} to be bound"), || async {
        Ok(node_of(&get_pod(client, name).await?))
    })
    .await
}

/// Notes of events about the pod `name` with `reason`.
pub async fn events(client: &kube::Client, name: &str, reason: &str) -> Result<Vec<String>> {
    let list = Api::<Event>::namespaced(client.clone(), "default")
        .list(&ListParams::default())
        .await?;
    Ok(list
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .filter(|e| e.reason.as_deref() == Some(reason))
        .filter_map(|e| e.note)
        .collect())
}

pub async fn http_get(url: &str) -> Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").context("http url")?;
    let (host, path) = rest.split_once('/').context("path")?;
    let mut s = tokio::net::TcpStream::connect(host).await?;
    s.write_all(
        format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut out = String::new();
    s.read_to_string(&mut out).await?;
    Ok(out)
}
