//! The container runtime: an existing containerd, or one the kubelet starts as its child with
//! a config generated under `DATA_DIR/containerd/`. Also writes the CNI network config.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::{Error, IoContext, KubeletConfig, PodEgress, Result};

/// How long a started containerd may take to open its socket.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long containerd may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Name of the CNI network (and of the conflist file).
pub const CNI_NETWORK: &str = "meso";

/// A containerd the kubelet talks to; `child` is set when the kubelet started it.
pub struct Runtime {
    socket: PathBuf,
    child: Option<Child>,
}

/// Paths of the managed containerd under the data dir.
pub struct Layout {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub socket: PathBuf,
    pub pid_file: PathBuf,
    pub log: PathBuf,
    pub cni_conf_dir: PathBuf,
}

impl Layout {
    pub fn new(data_dir: &Path) -> Self {
        let dir = data_dir.join("containerd");
        Self {
            config: dir.join("config.toml"),
            socket: dir.join("containerd.sock"),
            pid_file: dir.join("containerd.pid"),
            log: dir.join("containerd.log"),
            cni_conf_dir: data_dir.join("cni/net.d"),
            dir,
        }
    }
}

impl Runtime {
    /// Uses `--container-runtime-endpoint` when it names an existing socket, else generates the
    /// configs and starts containerd, waiting until its socket accepts connections.
    pub async fn start(config: &KubeletConfig) -> Result<Self> {
        if let Some(endpoint) = &config.container_runtime_endpoint {
            let socket = PathBuf::from(
                endpoint
                    .to_string_lossy()
                    .trim_start_matches("unix://")
                    .to_string(),
            );
            if !socket.exists() {
                return Err(Error::Other(format!(
                    "--container-runtime-endpoint {} does not exist",
                    socket.display()
                )));
            }
            tracing::info!(socket = %socket.display(), "using an existing container runtime");
            return Ok(Self {
                socket,
                child: None,
            });
        }
        let layout = Layout::new(&config.data_dir);
        write_configs(config, &layout)?;
        stop_stale(&layout).await;
        let _ = std::fs::remove_file(&layout.socket);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&layout.log)
            .context(|| format!("opening {}", layout.log.display()))?;
        let log_err = log
            .try_clone()
            .context(|| "cloning the containerd log handle".into())?;
        let mut cmd = Command::new(&config.containerd_bin);
        cmd.arg("--config")
            .arg(&layout.config)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .kill_on_drop(false);
        // containerd follows the kubelet if the kubelet dies without stopping it; containers
        // survive either way (their shims are separate processes).
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .context(|| format!("starting {}", config.containerd_bin.display()))?;
        if let Some(pid) = child.id() {
            std::fs::write(&layout.pid_file, pid.to_string())
                .context(|| format!("writing {}", layout.pid_file.display()))?;
            tracing::info!(pid, socket = %layout.socket.display(), log = %layout.log.display(), "started containerd");
        }
        let mut runtime = Self {
            socket: layout.socket.clone(),
            child: Some(child),
        };
        if let Err(e) = runtime.wait_socket().await {
            runtime.stop().await;
            return Err(e);
        }
        Ok(runtime)
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    async fn wait_socket(&mut self) -> Result<()> {
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(Error::Other(format!(
                        "containerd exited during startup with {status} (see containerd.log)"
                    )));
                }
            }
            if tokio::net::UnixStream::connect(&self.socket).await.is_ok() {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(Error::Other(format!(
                    "containerd did not open {} within {START_TIMEOUT:?}",
                    self.socket.display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops containerd if the kubelet started it (SIGTERM, then SIGKILL). Running containers
    /// are left alone.
    pub async fn stop(mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = child.id() {
            terminate(pid as i32, &mut child).await;
        }
    }
}

async fn terminate(pid: i32, child: &mut Child) {
    // SAFETY: kill(2) with a pid we own.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    match tokio::time::timeout(STOP_TIMEOUT, child.wait()).await {
        Ok(_) => tracing::info!(pid, "containerd stopped"),
        Err(_) => {
            tracing::warn!(pid, "containerd did not stop in time, killing it");
            let _ = child.kill().await;
        }
    }
}

/// Stops a containerd left running by an earlier kubelet with the same data dir.
async fn stop_stale(layout: &Layout) {
    let Ok(pid) = std::fs::read_to_string(&layout.pid_file) else {
        return;
    };
    let Ok(pid) = pid.trim().parse::<i32>() else {
        return;
    };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let ours = String::from_utf8_lossy(&cmdline).contains(&*layout.config.to_string_lossy());
    if !ours {
        return;
    }
    tracing::warn!(pid, "stopping a containerd left over by an earlier run");
    // SAFETY: kill(2); the process was checked to be our containerd.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    for _ in 0..100 {
        if !Path::new(&format!("/proc/{pid}")).exists() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

/// Writes containerd's config and the CNI conflist.
pub fn write_configs(config: &KubeletConfig, layout: &Layout) -> Result<()> {
    for dir in [&layout.dir, &layout.cni_conf_dir] {
        std::fs::create_dir_all(dir).context(|| format!("creating {}", dir.display()))?;
    }
    let toml = containerd_config(config, layout);
    write(&layout.config, &toml)?;
    for registry in &config.insecure_registries {
        let (dir, hosts) = insecure_registry_hosts(layout, registry)?;
        std::fs::create_dir_all(&dir).context(|| format!("creating {}", dir.display()))?;
        write(&dir.join("hosts.toml"), &hosts)?;
    }
    let conflist = cni_conflist(config);
    write(
        &layout
            .cni_conf_dir
            .join(format!("10-{CNI_NETWORK}.conflist")),
        &conflist,
    )
}

/// containerd's hosts directory entry for an insecure registry: plain HTTP first, and HTTPS
/// without certificate checks.
fn insecure_registry_hosts(layout: &Layout, registry: &str) -> Result<(PathBuf, String)> {
    let valid = !registry.is_empty()
        && registry
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if !valid {
        return Err(Error::Other(format!(
            "--insecure-registry {registry:?}: expected HOST or HOST:PORT"
        )));
    }
    let dir = layout.dir.join("certs.d").join(registry);
    let hosts = format!(
        r#"# Generated by meso-kubelet (--insecure-registry); rewritten at every start.
server = "http://{registry}"

[host."http://{registry}"]
  capabilities = ["pull", "resolve"]

[host."https://{registry}"]
  capabilities = ["pull", "resolve"]
  skip_verify = true
"#
    );
    Ok((dir, hosts))
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).context(|| format!("writing {}", path.display()))
}

/// containerd 1.6 config (version 2) with its own root, state and socket.
pub fn containerd_config(config: &KubeletConfig, layout: &Layout) -> String {
    let q = |p: &Path| toml_string(&p.to_string_lossy());
    let dir = &layout.dir;
    format!(
        r#"# Generated by meso-kubelet; rewritten at every start.
version = 2
root = {root}
state = {state}
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = {socket}

[ttrpc]
  address = {ttrpc}

[plugins."io.containerd.internal.v1.opt"]
  path = {opt}

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = {pause}
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false

[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  SystemdCgroup = false

[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = {cni_bin}
  conf_dir = {cni_conf}
  max_conf_num = 1

[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = {certs}
"#,
        root = q(&dir.join("root")),
        state = q(&dir.join("state")),
        socket = q(&layout.socket),
        ttrpc = q(&dir.join("containerd.sock.ttrpc")),
        opt = q(&dir.join("opt")),
        pause = toml_string(&config.pause_image),
        cni_bin = q(&config.cni_bin_dir),
        cni_conf = q(&layout.cni_conf_dir),
        certs = q(&dir.join("certs.d")),
    )
}

/// bridge + host-local + portmap conflist for the pod CIDR (loopback is set up by containerd
/// from the same bin dir).
pub fn cni_conflist(config: &KubeletConfig) -> String {
    let conf = serde_json::json!({
        "cniVersion": "1.0.0",
        "name": CNI_NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": config.cni_bridge,
                "isGateway": true,
                "ipMasq": config.pod_egress == PodEgress::Open,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": config.pod_cidr}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": config.data_dir.join("cni/ipam").to_string_lossy(),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": true}},
        ],
    });
    serde_json::to_string_pretty(&conf).unwrap_or_default()
}

fn toml_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}
