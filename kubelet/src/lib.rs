//! meso-kubelet: the node agent.
//!
//! It registers a `Node` (and renews its `Lease`), runs the pods bound to it on containerd through
//! CRI, and writes their status back. Unless `--container-runtime-endpoint` names a running
//! containerd, it starts its own as a child process with a config generated under the data dir.
//!
//! Layout: [`containerd`] (the managed child and the CNI config), [`cri`] (the gRPC client),
//! [`node`] (registration, lease, heartbeat), [`pods`] (watch, per-pod workers, volumes, status),
//! [`dns`] (the embedded cluster DNS server), [`egress`] (packet filter for
//! `--pod-egress=local`), [`proxy`] (Service translation), [`images`] (archive import),
//! [`metrics`] (`/metrics`), [`server`] (the HTTPS server for logs, exec, attach and
//! port-forward) and [`logs`] (reading CRI log files).

pub mod containerd;
pub mod cri;
pub mod dns;
pub mod egress;
pub mod images;
pub mod localpath;
pub mod logs;
pub mod metrics;
pub mod node;
pub mod pods;
pub mod proxy;
pub mod resource_metrics;
pub mod server;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

/// Errors of the kubelet library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("CRI {call}: {status}")]
    Cri {
        call: &'static str,
        #[source]
        status: tonic::Status,
    },
    #[error("connecting to the container runtime at {endpoint}: {message}")]
    Connect { endpoint: String, message: String },
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches a description to an I/O error.
pub(crate) trait IoContext<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io {
            context: what(),
            source,
        })
    }
}

/// Where forwarded pod traffic may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PodEgress {
    /// Only to other pods and this host: nothing leaves the machine.
    Local,
    /// Anywhere the host can reach (masqueraded behind the host's address).
    Open,
}

/// Command-line configuration of the kubelet.
#[derive(Debug, Clone, clap::Args)]
pub struct KubeletConfig {
    /// Where the kubelet keeps its state: containerd's root, pod volumes, CNI config.
    #[arg(long, env = "MESO_DATA_DIR", default_value = "/var/lib/meso/agent")]
    pub data_dir: PathBuf,
    /// Kubeconfig to reach the API server (default: DATA_DIR/../admin.kubeconfig, as
    /// `meso server` writes it).
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Name of this node (default: the host name).
    #[arg(long)]
    pub node_name: Option<String>,
    /// Address published as the node's InternalIP and pods' hostIP (default: the address of
    /// the interface of the default route, else 127.0.0.1).
    #[arg(long)]
    pub node_ip: Option<IpAddr>,
    /// Labels added to the node, `key=value` (repeatable).
    #[arg(long = "node-label", value_parser = parse_label)]
    pub node_labels: Vec<(String, String)>,
    /// CRI socket of an existing containerd; when unset, the kubelet starts its own.
    #[arg(long)]
    pub container_runtime_endpoint: Option<PathBuf>,
    /// containerd binary for the managed runtime.
    #[arg(long, default_value = "containerd")]
    pub containerd_bin: PathBuf,
    /// Image of the pod sandbox (infra) container.
    #[arg(long, default_value = images::PAUSE_IMAGE)]
    pub pause_image: String,
    /// Pod network of this node.
    #[arg(long, default_value = "10.42.0.0/24")]
    pub pod_cidr: String,
    /// Service network (for the egress rules).
    #[arg(long, default_value = "10.43.0.0/16")]
    pub service_cidr: String,
    /// Linux bridge the CNI plugin attaches pods to.
    #[arg(long, default_value = "meso0")]
    pub cni_bridge: String,
    /// Directory with the CNI plugin binaries.
    #[arg(long, default_value = "/usr/lib/cni")]
    pub cni_bin_dir: PathBuf,
    /// Where forwarded pod traffic may go; `local` keeps every packet on this machine.
    #[arg(long, value_enum, default_value_t = PodEgress::Local)]
    pub pod_egress: PodEgress,
    /// How Service traffic (ClusterIPs, NodePorts) is translated to endpoints on this node.
    #[arg(long, value_enum, default_value_t = proxy::ProxyMode::Nftables)]
    pub proxy_mode: proxy::ProxyMode,
    /// Nameservers written into `ClusterFirst` pods' resolv.conf instead of the embedded DNS
    /// server's address (repeatable).
    #[arg(long = "cluster-dns")]
    pub cluster_dns: Vec<IpAddr>,
    /// Cluster domain for pods' DNS search paths and the embedded DNS server's zone.
    #[arg(long, default_value = "cluster.local")]
    pub cluster_domain: String,
    /// Run the cluster DNS server on the pod bridge's gateway address (UDP/TCP port 53).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub embedded_dns: bool,
    /// The host's resolver configuration: what `dnsPolicy: Default` pods get and where the
    /// embedded DNS forwards outside names under `--pod-egress=open`.
    #[arg(long, default_value = "/etc/resolv.conf")]
    pub resolv_conf: PathBuf,
    /// Maximum number of pods on this node.
    #[arg(long, default_value_t = 110)]
    pub max_pods: u32,
    /// Address of the `/metrics` endpoint (empty to disable).
    #[arg(long, default_value = "127.0.0.1:10249")]
    pub metrics_bind_address: String,
    /// A registry reached over plain HTTP (or HTTPS without verification), `HOST:PORT`
    /// (repeatable); written into the managed containerd's registry hosts.
    #[arg(long = "insecure-registry")]
    pub insecure_registries: Vec<String>,
    /// Where local-path PersistentVolumes of this node live (default: DATA_DIR/storage); the
    /// Node announces it in its `storage.meso.io/local-path-dir` annotation, and directories
    /// there whose volume is gone are removed.
    #[arg(long)]
    pub local_path_dir: Option<PathBuf>,
    /// Seconds between pod resyncs (status refresh, restarts) besides watch events.
    #[arg(long, default_value_t = 2)]
    pub sync_period_seconds: u64,
    /// Port of the kubelet's HTTPS server (logs, exec, attach, port-forward); 0 picks a free
    /// one. The Node publishes it in `status.daemonEndpoints`.
    #[arg(long, default_value_t = 10250)]
    pub kubelet_port: u16,
    /// Address the kubelet's HTTPS server listens on.
    #[arg(long, default_value = "0.0.0.0")]
    pub kubelet_address: IpAddr,
    /// Serving certificate (PEM) of the kubelet's HTTPS server; without it (and its key) the
    /// kubelet makes a self-signed one.
    #[arg(long, requires = "tls_private_key_file")]
    pub tls_cert_file: Option<PathBuf>,
    /// Private key (PEM) of `--tls-cert-file`.
    #[arg(long, requires = "tls_cert_file")]
    pub tls_private_key_file: Option<PathBuf>,
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("`{s}` is not key=value"))
}

impl KubeletConfig {
    /// The directory of this node's local-path volumes.
    pub fn local_path_dir(&self) -> PathBuf {
        self.local_path_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("storage"))
    }

    /// The node name: the flag, else the host name in lower case.
    pub fn node_name(&self) -> String {
        self.node_name
            .clone()
            .unwrap_or_else(node::hostname)
            .to_lowercase()
    }

    /// The kubeconfig path: the flag, else `admin.kubeconfig` beside or above the data dir.
    pub fn kubeconfig_path(&self) -> PathBuf {
        if let Some(k) = &self.kubeconfig {
            return k.clone();
        }
        let here = self.data_dir.join("admin.kubeconfig");
        match self.data_dir.parent() {
            Some(parent) if !here.exists() => parent.join("admin.kubeconfig"),
            _ => here,
        }
    }
}

/// The client configuration of the configured kubeconfig.
pub async fn kube_config(config: &KubeletConfig) -> Result<kube::Config> {
    let path = config.kubeconfig_path();
    let kc = kube::config::Kubeconfig::read_from(&path)
        .map_err(|e| Error::Other(format!("reading kubeconfig {}: {e}", path.display())))?;
    kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .map_err(|e| Error::Other(format!("kubeconfig {}: {e}", path.display())))
}

/// Builds a kube client from the configured kubeconfig.
pub async fn kube_client(config: &KubeletConfig) -> Result<kube::Client> {
    Ok(kube::Client::try_from(kube_config(config).await?)?)
}

/// The cluster CA certificates (DER) of a client configuration.
fn cluster_cas(cfg: &kube::Config) -> Vec<Vec<u8>> {
    if let Some(certs) = &cfg.root_cert {
        return certs.clone();
    }
    let Some(file) = &cfg.root_cert_file else {
        return Vec::new();
    };
    match std::fs::read(file) {
        Ok(pem) => rustls_pemfile::certs(&mut pem.as_slice())
            .filter_map(|c| c.ok().map(|c| c.to_vec()))
            .collect(),
        Err(e) => {
            tracing::warn!(file = %file.display(), error = %e, "reading the cluster CA");
            Vec::new()
        }
    }
}

/// Runs the kubelet until `shutdown` is cancelled.
///
/// Containers keep running when the kubelet stops; a restarted kubelet adopts them.
pub async fn run(config: KubeletConfig, shutdown: CancellationToken) -> Result<()> {
    let node_name = config.node_name();
    tracing::info!(node = %node_name, data_dir = %config.data_dir.display(), "starting kubelet");
    std::fs::create_dir_all(&config.data_dir)
        .context(|| format!("creating {}", config.data_dir.display()))?;
    let metrics = Arc::new(metrics::Metrics::default());
    if !config.metrics_bind_address.is_empty() {
        metrics::serve(
            &config.metrics_bind_address,
            metrics.clone(),
            shutdown.clone(),
        )
        .await?;
    }

    egress::install(&config)?;
    // Rules of a previous run point at pods that may be gone: start from none.
    proxy::remove(&config)?;
    let runtime = containerd::Runtime::start(&config).await?;
    let result = run_with_runtime(&config, &node_name, &runtime, metrics, shutdown).await;
    runtime.stop().await;
    result
}

async fn run_with_runtime(
    config: &KubeletConfig,
    node_name: &str,
    runtime: &containerd::Runtime,
    metrics: Arc<metrics::Metrics>,
    shutdown: CancellationToken,
) -> Result<()> {
    let cri = cri::Cri::connect(runtime.socket()).await?;
    images::import_dir(runtime.socket(), &config.data_dir.join("images")).await;
    let kube_cfg = kube_config(config).await?;
    let client_cas = cluster_cas(&kube_cfg);
    let client = kube::Client::try_from(kube_cfg)?;
    if config.embedded_dns {
        dns::start(client.clone(), config, shutdown.clone()).await?;
    }
    let listener = server::bind(config).await?;
    let kubelet_port = listener
        .local_addr()
        .context(|| "reading the kubelet server's address".to_string())?
        .port();
    let node = node::NodeAgent::new(client.clone(), config, node_name, kubelet_port, &cri).await?;
    let host_ip = node.internal_ip();
    let tls = server::tls_config(config, &client_cas, node_name, host_ip)?;
    server::spawn(
        listener,
        tls,
        Arc::new(server::KubeletServer {
            client: client.clone(),
            cri: cri.clone(),
        }),
        shutdown.clone(),
    );
    tracing::info!(port = kubelet_port, "kubelet server listening");
    node.register().await?;
    let node_task = tokio::spawn(node.run(shutdown.clone()));
    let storage_task = tokio::spawn(localpath::run(
        client.clone(),
        config.local_path_dir(),
        shutdown.clone(),
    ));
    let proxy_task = (config.proxy_mode == proxy::ProxyMode::Nftables).then(|| {
        let info = proxy::NodeInfo::new(config, node_name, host_ip);
        tokio::spawn(proxy::run(
            client.clone(),
            info,
            config.clone(),
            shutdown.clone(),
        ))
    });
    let manager = pods::PodManager::new(pods::PodContext {
        events: pods::Recorder::new(client.clone(), node_name),
        client,
        cri,
        node_name: node_name.to_string(),
        host_ip,
        root: config.data_dir.join("pods"),
        config: config.clone(),
        metrics,
    });
    let result = manager.run(shutdown.clone()).await;
    shutdown.cancel();
    let _ = node_task.await;
    let _ = storage_task.await;
    if let Some(task) = proxy_task {
        let _ = task.await;
    }
    result
}
