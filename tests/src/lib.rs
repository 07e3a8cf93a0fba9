//! Shared helpers for meso's end-to-end tests.
//!
//! [`MesoServer`] starts a real `meso server` process on a free loopback port with a fresh data
//! directory, waits until it is ready, and hands out clients: kubectl (1.32 and 1.35), a raw
//! HTTPS client holding the admin identity from the written kubeconfig, and a kube-rs client.
//! The process is stopped (SIGTERM, then SIGKILL) when the value is dropped, and the tail of
//! the server's log is printed to the test's captured output (shown for failing tests).
//!
//! Where binaries come from:
//! - `meso`: `$MESO_BIN`, else the newer of `<workspace>/target/{release,debug}/meso`.
//! - kubectl 1.32: `$MESO_KUBECTL_132`, else `/usr/bin/kubectl`.
//! - kubectl 1.35: `$MESO_KUBECTL_135`, else `/opt/meso-test-tools/kubectl-1.35`.
//! - helm: `$MESO_HELM`, else `/opt/meso-test-tools/helm`.
//!
//! A missing kubectl/helm makes the test that needs it skip with a printed message, except
//! under `CI=true`, where it fails.

pub mod golden;

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine;

/// How long a server may take from spawn to `/readyz` answering 200.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a server may take to exit after SIGTERM.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// Upper bound for any single kubectl invocation.
pub const KUBECTL_TIMEOUT: Duration = Duration::from_secs(60);

/// Directory where `.ci/run` installs kubectl 1.35 and helm.
pub const TOOLS_DIR: &str = "/opt/meso-test-tools";

/// True when running in CI (`CI=true`): missing prerequisites fail instead of skipping.
pub fn is_ci() -> bool {
    matches!(
        std::env::var("CI")
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Ok("true") | Ok("1")
    )
}

/// Whether this machine can run real pods: root, containerd, runc, ctr, the CNI plugins, nft,
/// busybox-static (for the test image) and gcc (for the pause image). `false` means the caller
/// skips, with the reason on stderr; under `CI=true` a missing prerequisite panics instead.
pub fn pod_prerequisites(suite: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let mut missing: Vec<&str> = Vec::new();
    if !root {
        missing.push("root");
    }
    for (what, path) in [
        ("containerd", "/usr/bin/containerd"),
        ("runc", "/usr/sbin/runc"),
        ("ctr", "/usr/bin/ctr"),
        ("CNI plugins", "/usr/lib/cni/bridge"),
        ("nft", "/usr/sbin/nft"),
        ("busybox-static", "/bin/busybox"),
        ("gcc", "/usr/bin/gcc"),
    ] {
        if !Path::new(path).exists() {
            missing.push(what);
        }
    }
    if missing.is_empty() {
        return true;
    }
    let msg = format!("{suite} prerequisites missing: {}", missing.join(", "));
    if is_ci() {
        panic!("{msg} (.ci/run installs them)");
    }
    eprintln!("SKIPPED: {msg}");
    false
}

/// The image archives (`pause.tar`, `busybox.tar`) that `deploy/images/build.sh` builds into
/// `out`, once per test process (later calls return the first result).
pub fn image_archives(out: &Path) -> Result<&'static Path> {
    static DIR: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    let built = DIR.get_or_init(|| {
        let script = workspace_root().join("deploy/images/build.sh");
        match Command::new("bash").arg(&script).arg(out).status() {
            Ok(s) if s.success() => Ok(out.to_path_buf()),
            other => Err(format!("{} failed: {other:?}", script.display())),
        }
    });
    built.as_deref().map_err(|e| anyhow!("{e}"))
}

/// The workspace root (parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// Locates the `meso` binary. Fails with a message saying how to build it.
pub fn meso_binary() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("MESO_BIN") {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        bail!("MESO_BIN={} does not exist", p.display());
    }
    let root = workspace_root();
    let candidates = [
        root.join("target/release/meso"),
        root.join("target/debug/meso"),
    ];
    // Prefer the most recently built one, so a stale release binary does not shadow a fresh
    // debug build (and vice versa).
    let newest = candidates
        .iter()
        .filter_map(|p| {
            let m = std::fs::metadata(p).ok()?;
            Some((m.modified().ok()?, p.clone()))
        })
        .max_by_key(|(t, _)| *t)
        .map(|(_, p)| p);
    newest.ok_or_else(|| {
        anyhow!(
            "the meso binary was not found (looked at $MESO_BIN, {} and {}). Build it first: \
             `cargo build --release --workspace --all-targets` (or set MESO_BIN)",
            candidates[0].display(),
            candidates[1].display()
        )
    })
}

/// Finds an external tool. `None` means "skip" (already explained on stderr); in CI a missing
/// tool panics so the test fails loudly.
pub fn external_tool(what: &str, env_var: &str, default: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env_var) {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Some(p);
        }
        panic!("{env_var}={} is set but does not exist", p.display());
    }
    let p = PathBuf::from(default);
    if p.is_file() {
        return Some(p);
    }
    if is_ci() {
        panic!(
            "{what} is required in CI but missing: not at {default} and {env_var} is unset \
             (.ci/run installs it)"
        );
    }
    eprintln!(
        "SKIPPED: {what} not found at {default} (set {env_var}, or run .ci/run once to install it)"
    );
    None
}

/// A kubectl binary together with the version it is known as in test names.
#[derive(Debug, Clone)]
pub struct Kubectl {
    pub version: &'static str,
    pub path: PathBuf,
}

pub fn kubectl_132() -> Option<Kubectl> {
    external_tool("kubectl 1.32", "MESO_KUBECTL_132", "/usr/bin/kubectl").map(|path| Kubectl {
        version: "1.32",
        path,
    })
}

pub fn kubectl_135() -> Option<Kubectl> {
    external_tool(
        "kubectl 1.35",
        "MESO_KUBECTL_135",
        &format!("{TOOLS_DIR}/kubectl-1.35"),
    )
    .map(|path| Kubectl {
        version: "1.35",
        path,
    })
}

pub fn helm() -> Option<PathBuf> {
    external_tool("helm", "MESO_HELM", &format!("{TOOLS_DIR}/helm"))
}

/// Runs a command with piped output and a hard deadline; the child is killed on timeout.
pub fn run_bounded(mut cmd: Command, stdin: Option<&[u8]>, timeout: Duration) -> Result<Output> {
    let desc = format!("{cmd:?}");
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().with_context(|| format!("spawning {desc}"))?;
    if let Some(input) = stdin {
        let mut w = child.stdin.take().context("child stdin")?;
        w.write_all(input)
            .with_context(|| format!("writing stdin of {desc}"))?;
    }
    let out = child.stdout.take().context("child stdout")?;
    let err = child.stderr.take().context("child stderr")?;
    let out_t = std::thread::spawn(move || read_all(out));
    let err_t = std::thread::spawn(move || read_all(err));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child
            .try_wait()
            .with_context(|| format!("waiting for {desc}"))?
        {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = err_t.join().unwrap_or_default();
            bail!(
                "{desc} did not finish within {timeout:?}; stderr so far:\n{}",
                String::from_utf8_lossy(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Ok(Output {
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    })
}

fn read_all(mut r: impl Read) -> Vec<u8> {
    let mut v = Vec::new();
    let _ = r.read_to_end(&mut v);
    v
}

/// Runs `fut` to completion on a fresh current-thread runtime in a separate OS thread, so it
/// works from synchronous tests and from inside another tokio runtime alike.
pub fn block_on_thread<T, F>(make: impl FnOnce() -> F + Send) -> Result<T>
where
    F: std::future::Future<Output = Result<T>>,
    T: Send,
{
    std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("building a tokio runtime")?;
            rt.block_on(make())
        })
        .join()
        .map_err(|_| anyhow!("helper thread panicked"))?
    })
}

/// The admin credentials and address read from `admin.kubeconfig`.
#[derive(Clone)]
pub struct Credentials {
    pub server: String,
    pub ca_pem: Vec<u8>,
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl Credentials {
    /// Parses a kubeconfig (current context, or the first cluster/user) with embedded or
    /// file-referenced certificates.
    pub fn from_kubeconfig(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let doc: serde_yaml::Value =
            serde_yaml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let current = doc.get("current-context").and_then(|v| v.as_str());
        let ctx = doc
            .get("contexts")
            .and_then(|c| c.as_sequence())
            .and_then(|seq| {
                seq.iter()
                    .find(|c| {
                        current.is_some() && c.get("name").and_then(|n| n.as_str()) == current
                    })
                    .or_else(|| seq.first())
            })
            .and_then(|c| c.get("context"));
        let cluster_name = ctx.and_then(|c| c.get("cluster")).and_then(|v| v.as_str());
        let user_name = ctx.and_then(|c| c.get("user")).and_then(|v| v.as_str());
        let pick = |list: &str, name: Option<&str>, inner: &str| -> Result<serde_yaml::Value> {
            let seq = doc
                .get(list)
                .and_then(|v| v.as_sequence())
                .with_context(|| format!("kubeconfig has no {list}"))?;
            let item = seq
                .iter()
                .find(|c| name.is_some() && c.get("name").and_then(|n| n.as_str()) == name)
                .or_else(|| seq.first())
                .with_context(|| format!("kubeconfig {list} is empty"))?;
            item.get(inner)
                .cloned()
                .with_context(|| format!("kubeconfig {list} entry has no {inner}"))
        };
        let cluster = pick("clusters", cluster_name, "cluster")?;
        let user = pick("users", user_name, "user")?;
        let server = cluster
            .get("server")
            .and_then(|v| v.as_str())
            .context("kubeconfig cluster has no server")?
            .trim_end_matches('/')
            .to_string();
        let base = path.parent().unwrap_or(Path::new("."));
        Ok(Self {
            server,
            ca_pem: data_or_file(&cluster, "certificate-authority", base)?,
            cert_pem: data_or_file(&user, "client-certificate", base)?,
            key_pem: data_or_file(&user, "client-key", base)?,
        })
    }

    fn builder(&self) -> Result<reqwest::ClientBuilder> {
        let ca =
            reqwest::Certificate::from_pem(&self.ca_pem).context("parsing the CA certificate")?;
        Ok(reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca)
            .user_agent("golden-capture")
            .connect_timeout(Duration::from_secs(10)))
    }

    /// A client that presents the admin client certificate.
    pub fn admin_client(&self) -> Result<reqwest::Client> {
        let mut pem = self.cert_pem.clone();
        pem.push(b'\n');
        pem.extend_from_slice(&self.key_pem);
        let id = reqwest::Identity::from_pem(&pem).context("parsing the admin client identity")?;
        self.builder()?
            .identity(id)
            .build()
            .context("building the admin HTTPS client")
    }

    /// A client that trusts the server but presents no credentials.
    pub fn anonymous_client(&self) -> Result<reqwest::Client> {
        self.builder()?
            .build()
            .context("building the anonymous HTTPS client")
    }
}

fn data_or_file(v: &serde_yaml::Value, key: &str, base: &Path) -> Result<Vec<u8>> {
    if let Some(d) = v.get(format!("{key}-data")).and_then(|d| d.as_str()) {
        return base64::engine::general_purpose::STANDARD
            .decode(d.trim())
            .with_context(|| format!("decoding {key}-data"));
    }
    if let Some(f) = v.get(key).and_then(|d| d.as_str()) {
        let p = base.join(f);
        return std::fs::read(&p).with_context(|| format!("reading {key} {}", p.display()));
    }
    bail!("kubeconfig has neither {key}-data nor {key}")
}

/// A running `meso server` with its own data directory and port.
pub struct MesoServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    child: Option<Child>,
    creds: Option<Credentials>,
    starts: u32,
    /// Whether the server runs without its agent, scheduler and controllers.
    bare: bool,
    /// The extra command-line arguments of the first start, used again by restarts.
    extra: Vec<String>,
}

impl MesoServer {
    /// Starts a server (`--disable-agent`, fresh temp data dir, free port) and waits for
    /// `admin.kubeconfig` and `/readyz`.
    pub fn start() -> Result<Self> {
        Self::start_with_args(&[])
    }

    /// Like [`start`](Self::start) with extra command-line arguments.
    pub fn start_with_args(extra: &[&str]) -> Result<Self> {
        Self::launch(extra, true, &|_| Ok(()))
    }

    /// A whole cluster in one process: like [`start_with_args`](Self::start_with_args) but
    /// with the local agent, the scheduler and the controllers running. `prepare` gets the
    /// (empty) data dir before the server starts, e.g. to put image archives into
    /// `<data dir>/agent/images/`.
    pub fn start_full(extra: &[&str], prepare: &dyn Fn(&Path) -> Result<()>) -> Result<Self> {
        Self::launch(extra, false, prepare)
    }

    fn launch(extra: &[&str], bare: bool, prepare: &dyn Fn(&Path) -> Result<()>) -> Result<Self> {
        let bin = meso_binary()?;
        let dir = tempfile::Builder::new()
            .prefix("meso-e2e-")
            .tempdir()
            .context("creating a temp dir")?;
        std::fs::create_dir_all(dir.path().join("data")).context("creating the data dir")?;
        let mut srv = Self {
            dir,
            bin,
            port: 0,
            child: None,
            creds: None,
            starts: 0,
            bare,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        prepare(&srv.data_dir())?;
        // A free port can be taken by someone else before the server binds it: retry then.
        let mut attempt = 0;
        loop {
            attempt += 1;
            srv.port = free_port()?;
            match srv.spawn() {
                Ok(()) => return Ok(srv),
                Err(e) if attempt < 3 && srv.log_tail(20).contains("Address already in use") => {
                    eprintln!("port {} was taken, retrying: {e:#}", srv.port);
                    let data = srv.data_dir();
                    std::fs::remove_dir_all(&data)
                        .and_then(|_| std::fs::create_dir_all(&data))
                        .context("resetting the data dir")?;
                    prepare(&data)?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
    /// A scratch directory private to this server's test (deleted with it).
    pub fn scratch_dir(&self) -> &Path {
        self.dir.path()
    }
    pub fn kubeconfig(&self) -> PathBuf {
        self.data_dir().join("admin.kubeconfig")
    }
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("meso.log")
    }
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }
    pub fn credentials(&self) -> Result<&Credentials> {
        self.creds
            .as_ref()
            .context("the server has not written its kubeconfig yet")
    }
    /// `https://127.0.0.1:PORT` as written in the kubeconfig.
    pub fn base_url(&self) -> Result<String> {
        Ok(self.credentials()?.server.clone())
    }
    /// A raw HTTPS client with the admin client certificate. Build one per tokio runtime.
    pub fn http(&self) -> Result<reqwest::Client> {
        self.credentials()?.admin_client()
    }
    /// A raw HTTPS client without credentials.
    pub fn http_anonymous(&self) -> Result<reqwest::Client> {
        self.credentials()?.anonymous_client()
    }
    /// `base_url() + path_and_query`.
    pub fn url(&self, path_and_query: &str) -> Result<String> {
        Ok(format!("{}{}", self.base_url()?, path_and_query))
    }

    /// A kube-rs client from the written kubeconfig.
    pub async fn kube_client(&self) -> Result<kube::Client> {
        let kc = kube::config::Kubeconfig::read_from(self.kubeconfig())
            .context("kube-rs reading admin.kubeconfig")?;
        let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .context("kube-rs config from admin.kubeconfig")?;
        kube::Client::try_from(cfg).context("building the kube-rs client")
    }

    fn spawn(&mut self) -> Result<()> {
        self.starts += 1;
        let log_path = self.log_path();
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let data_dir = self.data_dir();
        let port = self.port.to_string();
        let mut args: Vec<String> = vec!["server".into()];
        if self.bare {
            // A bare control plane: suites that need an agent, a scheduler or controllers
            // start their own.
            args.extend(
                [
                    "--disable-agent",
                    "--disable-scheduler",
                    "--disable-controllers",
                ]
                .map(Into::into),
            );
        }
        args.extend([
            "--data-dir".into(),
            data_dir.display().to_string(),
            "--secure-port".into(),
            port,
        ]);
        args.extend(self.extra.iter().cloned());
        writeln!(
            log,
            "===== meso-tests: start #{}: {} {}",
            self.starts,
            self.bin.display(),
            args.join(" ")
        )
        .context("writing the log header")?;
        let log_err = log.try_clone().context("cloning the log file handle")?;
        let mut cmd = Command::new(&self.bin);
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err));
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        cmd.env("NO_COLOR", "1");
        // If the test process dies without running destructors, take the server along.
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("spawning {}", self.bin.display()))?;
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let kubeconfig = self.kubeconfig();
        let mut last_err = String::from("admin.kubeconfig not written yet");
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(st) = child.try_wait().context("polling the server process")? {
                    self.child = None;
                    bail!(
                        "meso server exited during startup with {st}\n{}",
                        self.log_tail(60)
                    );
                }
            }
            if kubeconfig.is_file() {
                match Credentials::from_kubeconfig(&kubeconfig) {
                    Ok(c) => {
                        let ready = probe_readyz(&c);
                        match ready {
                            Ok(200) => {
                                self.creds = Some(c);
                                return Ok(());
                            }
                            Ok(code) => last_err = format!("/readyz answered {code}"),
                            Err(e) => last_err = format!("/readyz: {e:#}"),
                        }
                    }
                    Err(e) => last_err = format!("kubeconfig not usable yet: {e:#}"),
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "meso server not ready within {STARTUP_TIMEOUT:?} ({last_err})\n{}",
                    self.log_tail(60)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Fails (with the log tail) if the server process has exited.
    pub fn ensure_running(&mut self) -> Result<()> {
        if self.is_running() {
            Ok(())
        } else {
            bail!("meso server is not running\n{}", self.log_tail(60))
        }
    }

    fn signal(&self, sig: libc::c_int) -> Result<()> {
        let pid = self.pid().context("no server process")?;
        let pid = libc::pid_t::try_from(pid).context("pid out of range")?;
        // SAFETY: sending a signal to our own child process.
        let rc = unsafe { libc::kill(pid, sig) };
        if rc != 0 {
            bail!("kill({pid}, {sig}): {}", std::io::Error::last_os_error());
        }
        Ok(())
    }

    fn wait_exit(&mut self, timeout: Duration) -> Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        let Some(child) = self.child.as_mut() else {
            return Ok(None);
        };
        loop {
            if let Some(st) = child.try_wait().context("waiting for the server")? {
                self.child = None;
                return Ok(Some(st));
            }
            if Instant::now() > deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Graceful stop: SIGTERM, then wait up to [`SHUTDOWN_TIMEOUT`]. Fails if the process does
    /// not exit in time (it is then SIGKILLed) or exits unsuccessfully.
    pub fn stop(&mut self) -> Result<ExitStatus> {
        if self.child.is_none() {
            bail!("stop(): the server is not running");
        }
        self.signal(libc::SIGTERM)?;
        match self.wait_exit(SHUTDOWN_TIMEOUT)? {
            Some(st) if st.success() => Ok(st),
            Some(st) => bail!(
                "meso server exited with {st} after SIGTERM\n{}",
                self.log_tail(40)
            ),
            None => {
                let _ = self.signal(libc::SIGKILL);
                let _ = self.wait_exit(Duration::from_secs(10));
                bail!(
                    "meso server did not exit within {SHUTDOWN_TIMEOUT:?} of SIGTERM\n{}",
                    self.log_tail(40)
                )
            }
        }
    }

    /// Kills the server with SIGKILL and reaps it.
    pub fn sigkill(&mut self) -> Result<()> {
        self.signal(libc::SIGKILL)?;
        match self.wait_exit(Duration::from_secs(10))? {
            Some(_) => Ok(()),
            None => bail!("meso server survived SIGKILL for 10 s"),
        }
    }

    /// A whole cluster as `deploy/up.sh` starts it: [`start_full`](Self::start_full) with the
    /// local agent on a pod network and CNI bridge of its own (apart from other tests on the
    /// host), its kubelet on 127.0.0.1 with a free port, a 1 s pod sync period, and the
    /// archives in `images` (see [`image_archives`]) linked into the agent's image directory.
    /// The node is named `meso-<tag>-<n>`; `extra` adds flags. Returns the node's name too.
    pub fn start_cluster(tag: &str, extra: &[&str], images: &Path) -> Result<(Self, String)> {
        let n = std::process::id() % 98 + 2;
        let node = format!("meso-{tag}-{n}");
        let mut args = vec![
            format!("--pod-cidr=10.42.{n}.0/24"),
            "--pod-egress=local".to_string(),
            format!("--agent-arg=--cni-bridge=meso{n}"),
            format!("--agent-arg=--node-name={node}"),
            "--agent-arg=--node-ip=127.0.0.1".to_string(),
            "--agent-arg=--kubelet-address=127.0.0.1".to_string(),
            "--agent-arg=--kubelet-port=0".to_string(),
            "--agent-arg=--metrics-bind-address=127.0.0.1:0".to_string(),
            "--agent-arg=--sync-period-seconds=1".to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let srv = Self::start_full(&args, &|data: &Path| {
            let dir = data.join("agent/images");
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            for archive in ["pause.tar", "busybox.tar"] {
                std::os::unix::fs::symlink(images.join(archive), dir.join(archive))
                    .with_context(|| format!("linking {archive}"))?;
            }
            Ok(())
        })?;
        Ok((srv, node))
    }

    /// Waits up to `timeout` for node `node` to report `Ready=True`; the error carries the
    /// server's log tail.
    pub fn wait_node_ready(&self, k: &Kubectl, node: &str, timeout: Duration) -> Result<()> {
        poll_until(timeout, "the node Ready", || {
            let out = self.kubectl(
                k,
                &[
                    "get",
                    "node",
                    node,
                    "-o",
                    "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
                ],
            )?;
            let ready =
                out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "True";
            if !ready {
                std::thread::sleep(Duration::from_millis(200));
            }
            Ok(ready.then_some(()))
        })
        .map_err(|e| e.context(self.log_tail(60)))
    }

    /// Best effort before stopping a cluster: deletes every object of `kinds` and every pod,
    /// then waits up to a minute for the pods to be gone, so no container (nor its mounts
    /// under the data dir) outlives the test.
    pub fn remove_pods(&self, k: &Kubectl, kinds: &str) {
        let _ = self.kubectl(k, &["delete", kinds, "--all", "--wait=false"]);
        let _ = self.kubectl(k, &["delete", "pods", "--all", "--wait=false"]);
        let _ = poll_until(Duration::from_secs(60), "all pods gone", || {
            let pods = self.kubectl_ok(k, &["get", "pods", "-o", "name"])?;
            if pods.trim().is_empty() {
                return Ok(Some(()));
            }
            std::thread::sleep(Duration::from_millis(250));
            Ok(None)
        });
    }

    /// Starts the server again on the same data dir, port and extra arguments.
    pub fn start_again(&mut self) -> Result<()> {
        if self.child.is_some() {
            bail!("start_again(): the server is still running");
        }
        self.creds = None;
        self.spawn()
    }

    /// Graceful stop, then start again on the same data dir and port.
    pub fn restart(&mut self) -> Result<()> {
        self.stop()?;
        self.start_again()
    }

    /// The last `n` lines of the server's log, with a heading.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read(self.log_path())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|e| format!("(log unreadable: {e})"));
        let lines: Vec<&str> = text.lines().collect();
        let start = lines.len().saturating_sub(n);
        format!(
            "----- last {} lines of {} -----\n{}\n----- end of server log -----",
            lines.len() - start,
            self.log_path().display(),
            lines[start..].join("\n")
        )
    }

    /// Resident set size of the server process in KiB (from /proc/PID/status VmRSS).
    pub fn rss_kib(&self) -> Result<u64> {
        let pid = self.pid().context("no server process")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .context("reading /proc/PID/status")?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmRSS in /proc/PID/status")
    }

    /// A kubectl command pointed at this server, with its own discovery cache.
    pub fn kubectl_command(&self, k: &Kubectl) -> Command {
        let mut cmd = Command::new(&k.path);
        cmd.arg("--kubeconfig")
            .arg(self.kubeconfig())
            .arg("--cache-dir")
            .arg(self.dir.path().join(format!("kube-cache-{}", k.version)))
            .env_remove("KUBECONFIG")
            .env("HOME", self.dir.path())
            .env("TMPDIR", self.dir.path());
        cmd
    }

    /// Runs kubectl with `args` (bounded by [`KUBECTL_TIMEOUT`]).
    pub fn kubectl(&self, k: &Kubectl, args: &[&str]) -> Result<Output> {
        let mut cmd = self.kubectl_command(k);
        cmd.args(args);
        run_bounded(cmd, None, KUBECTL_TIMEOUT)
    }

    /// Runs kubectl with `args` and `stdin`.
    pub fn kubectl_stdin(&self, k: &Kubectl, args: &[&str], stdin: &str) -> Result<Output> {
        let mut cmd = self.kubectl_command(k);
        cmd.args(args);
        run_bounded(cmd, Some(stdin.as_bytes()), KUBECTL_TIMEOUT)
    }

    /// Runs kubectl and requires success; returns stdout.
    pub fn kubectl_ok(&self, k: &Kubectl, args: &[&str]) -> Result<String> {
        let out = self.kubectl(k, args)?;
        check_success(k, args, &out)
    }

    /// Runs kubectl with stdin and requires success; returns stdout.
    pub fn kubectl_stdin_ok(&self, k: &Kubectl, args: &[&str], stdin: &str) -> Result<String> {
        let out = self.kubectl_stdin(k, args, stdin)?;
        check_success(k, args, &out)
    }
}

/// Returns stdout if `out` succeeded, else an error quoting both streams.
pub fn check_success(k: &Kubectl, args: &[&str], out: &Output) -> Result<String> {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "kubectl {} {} failed with {}\nstdout:\n{}\nstderr:\n{}",
            k.version,
            args.join(" "),
            out.status,
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(stdout)
}

impl Drop for MesoServer {
    fn drop(&mut self) {
        // libtest shows captured output only for failing tests (panicking or returning Err),
        // so the log tail is always printed here and seen exactly when it matters.
        eprintln!("{}", self.log_tail(60));
        if self.child.is_some() {
            let _ = self.signal(libc::SIGTERM);
            if let Ok(None) = self.wait_exit(Duration::from_secs(10)) {
                let _ = self.signal(libc::SIGKILL);
                let _ = self.wait_exit(Duration::from_secs(5));
            }
        }
        if std::thread::panicking() && std::env::var_os("MESO_TEST_KEEP").is_some() {
            eprintln!("MESO_TEST_KEEP: keeping {}", self.dir.path().display());
            self.dir.disable_cleanup(true);
        }
    }
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("binding a probe socket")?;
    Ok(l.local_addr().context("probe socket address")?.port())
}

fn probe_readyz(c: &Credentials) -> Result<u16> {
    let c = c.clone();
    block_on_thread(move || async move {
        let client = c.admin_client()?;
        let resp = client
            .get(format!("{}/readyz", c.server))
            .timeout(Duration::from_secs(5))
            .send()
            .await?;
        Ok(resp.status().as_u16())
    })
}

/// Polls `f` every 50 ms until it returns `Some` or `timeout` passes.
pub fn poll_until<T>(
    timeout: Duration,
    what: &str,
    mut f: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    let mut last: Option<anyhow::Error> = None;
    loop {
        match f() {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last = Some(e),
        }
        if Instant::now() > deadline {
            return Err(match last {
                Some(e) => e.context(format!("timed out after {timeout:?} waiting for {what}")),
                None => anyhow!("timed out after {timeout:?} waiting for {what}"),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Writes `content` to `dir/name` and returns the path.
pub fn write_file(dir: &Path, name: &str, content: &str) -> Result<PathBuf> {
    let p = dir.join(name);
    let mut f = File::create(&p).with_context(|| format!("creating {}", p.display()))?;
    f.write_all(content.as_bytes())
        .with_context(|| format!("writing {}", p.display()))?;
    Ok(p)
}

/// Builds an HTTP method from its name.
pub fn method(name: &str) -> Result<reqwest::Method> {
    reqwest::Method::from_bytes(name.as_bytes()).with_context(|| format!("bad method {name}"))
}

/// Runs each named scenario `fn name(k: &Kubectl) -> anyhow::Result<()>` of the calling test
/// file as two tests, `kubectl_1_32::name` and `kubectl_1_35::name`, one per kubectl.
#[macro_export]
macro_rules! for_each_kubectl {
    ($($name:ident),* $(,)?) => {
        mod kubectl_1_32 {
            $(
                #[test]
                fn $name() -> anyhow::Result<()> {
                    let Some(k) = $crate::kubectl_132() else { return Ok(()) };
                    super::$name(&k)
                }
            )*
        }
        mod kubectl_1_35 {
            $(
                #[test]
                fn $name() -> anyhow::Result<()> {
                    let Some(k) = $crate::kubectl_135() else { return Ok(()) };
                    super::$name(&k)
                }
            )*
        }
    };
}
