//! Node registration, the node Lease (renewed every 10 s) and the node status heartbeat.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::Api;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::cri::Cri;
use crate::{KubeletConfig, Result};

/// How often the Lease is renewed.
pub const LEASE_RENEW_INTERVAL: Duration = Duration::from_secs(10);
/// The Lease's duration; the node is considered lost after it.
pub const LEASE_DURATION_SECONDS: i32 = 40;
/// How often the full node status is reported even when nothing changed.
pub const STATUS_REPORT_INTERVAL: Duration = Duration::from_secs(60);
/// Version the kubelet reports (the API version meso emulates).
pub const KUBELET_VERSION: &str = concat!("v1.36.0-meso.", env!("CARGO_PKG_VERSION"));

const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

/// The host name from the kernel.
pub fn hostname() -> String {
    read_trimmed("/proc/sys/kernel/hostname").unwrap_or_else(|| "localhost".into())
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The address of the interface the default route uses (UDP connect sends no packet), else
/// loopback.
pub fn default_ip() -> IpAddr {
    UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("192.0.2.1:9").map(|_| s))
        .and_then(|s| s.local_addr())
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// Registers and keeps alive this kubelet's Node and Lease.
pub struct NodeAgent {
    nodes: Api<Node>,
    leases: Api<Lease>,
    name: String,
    ip: IpAddr,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    pod_cidr: String,
    capacity: Value,
    node_info: Value,
    /// Port of the kubelet's HTTPS server, published in `status.daemonEndpoints`.
    kubelet_port: u16,
}

impl NodeAgent {
    pub async fn new(
        client: kube::Client,
        config: &KubeletConfig,
        name: &str,
        kubelet_port: u16,
        cri: &Cri,
    ) -> Result<Self> {
        let version = cri.version().await?;
        let ip = config.node_ip.unwrap_or_else(default_ip);
        let arch = go_arch();
        let mut labels = BTreeMap::from([
            ("kubernetes.io/hostname".to_string(), name.to_string()),
            ("kubernetes.io/os".to_string(), "linux".to_string()),
            ("kubernetes.io/arch".to_string(), arch.to_string()),
            ("beta.kubernetes.io/os".to_string(), "linux".to_string()),
            ("beta.kubernetes.io/arch".to_string(), arch.to_string()),
        ]);
        labels.extend(config.node_labels.iter().cloned());
        let machine_id = read_trimmed("/etc/machine-id").unwrap_or_default();
        let node_info = json!({
            "machineID": machine_id,
            "systemUUID": read_trimmed("/sys/class/dmi/id/product_uuid").unwrap_or(machine_id),
            "bootID": read_trimmed("/proc/sys/kernel/random/boot_id").unwrap_or_default(),
            "kernelVersion": read_trimmed("/proc/sys/kernel/osrelease").unwrap_or_default(),
            "osImage": os_image(),
            "containerRuntimeVersion": format!("{}://{}", version.runtime_name, version.runtime_version),
            "kubeletVersion": KUBELET_VERSION,
            "operatingSystem": "linux",
            "architecture": arch,
        });
        Ok(Self {
            nodes: Api::all(client.clone()),
            leases: Api::namespaced(client, NODE_LEASE_NAMESPACE),
            name: name.to_string(),
            ip,
            labels,
            annotations: BTreeMap::from([(
                crate::localpath::ANN_NODE_DIR.to_string(),
                config.local_path_dir().to_string_lossy().into_owned(),
            )]),
            pod_cidr: config.pod_cidr.clone(),
            capacity: capacity(config),
            node_info,
            kubelet_port,
        })
    }

    pub fn internal_ip(&self) -> IpAddr {
        self.ip
    }

    /// Creates the Node (or merges our labels into an existing one) and reports its status.
    pub async fn register(&self) -> Result<()> {
        match self.nodes.get_opt(&self.name).await? {
            None => {
                let node: Node = serde_json::from_value(json!({
                    "metadata": {"name": self.name, "labels": self.labels,
                        "annotations": self.annotations},
                    "spec": {"podCIDR": self.pod_cidr, "podCIDRs": [self.pod_cidr]},
                }))
                .map_err(|e| crate::Error::Other(format!("building the Node: {e}")))?;
                self.nodes.create(&PostParams::default(), &node).await?;
                tracing::info!(node = %self.name, "registered the node");
            }
            Some(_) => {
                let patch = json!({"metadata": {"labels": self.labels,
                    "annotations": self.annotations}});
                self.nodes
                    .patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
                tracing::info!(node = %self.name, "node already registered; labels updated");
            }
        }
        self.report_status().await
    }

    /// Writes the full node status with a fresh heartbeat.
    async fn report_status(&self) -> Result<()> {
        let existing = self.nodes.get_status(&self.name).await?;
        let old: Vec<NodeCondition> = existing
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default();
        let now = Timestamp::now();
        let condition = |kind: &str, status: &str, reason: &str, message: &str| {
            let since = old
                .iter()
                .find(|c| c.type_ == kind && c.status == status)
                .and_then(|c| c.last_transition_time.clone())
                .unwrap_or(Time(now));
            json!({"type": kind, "status": status, "lastHeartbeatTime": Time(now),
                   "lastTransitionTime": since, "reason": reason, "message": message})
        };
        let status = json!({
            "capacity": self.capacity,
            "allocatable": self.capacity,
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "addresses": [
                {"type": "InternalIP", "address": self.ip.to_string()},
                {"type": "Hostname", "address": self.name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.kubelet_port}},
            "nodeInfo": self.node_info,
        });
        self.nodes
            .patch_status(
                &self.name,
                &PatchParams::default(),
                &Patch::Merge(&json!({ "status": status })),
            )
            .await?;
        Ok(())
    }

    /// Creates or renews the node's Lease.
    async fn renew_lease(&self) -> Result<()> {
        let spec = json!({
            "holderIdentity": self.name,
            "leaseDurationSeconds": LEASE_DURATION_SECONDS,
            "renewTime": k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(Timestamp::now()),
        });
        if self.leases.get_opt(&self.name).await?.is_some() {
            self.leases
                .patch(
                    &self.name,
                    &PatchParams::default(),
                    &Patch::Merge(&json!({ "spec": spec })),
                )
                .await?;
            return Ok(());
        }
        let node = self.nodes.get(&self.name).await?;
        let lease: Lease = serde_json::from_value(json!({
            "metadata": {
                "name": self.name,
                "namespace": NODE_LEASE_NAMESPACE,
                "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": self.name,
                                     "uid": node.metadata.uid.unwrap_or_default()}],
            },
            "spec": spec,
        }))
        .map_err(|e| crate::Error::Other(format!("building the Lease: {e}")))?;
        self.leases.create(&PostParams::default(), &lease).await?;
        Ok(())
    }

    /// Renews the Lease every 10 s and reports status every minute until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut lease_tick = tokio::time::interval(LEASE_RENEW_INTERVAL);
        let mut status_tick = tokio::time::interval(STATUS_REPORT_INTERVAL);
        status_tick.tick().await; // register() just reported
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = lease_tick.tick() => {
                    if let Err(e) = self.renew_lease().await {
                        tracing::warn!(error = %e, "renewing the node lease");
                    }
                }
                _ = status_tick.tick() => {
                    if let Err(e) = self.report_status().await {
                        tracing::warn!(error = %e, "reporting node status");
                    }
                }
            }
        }
    }
}

/// `GOARCH` spelling of this machine's architecture.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

fn os_image() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "Linux".into())
}

/// CPUs and memory (KiB) of this machine: the node's cpu and memory capacity and allocatable.
pub fn machine_cpus_and_memory_kib() -> (usize, u64) {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mem_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(0);
    (cpus, mem_kib)
}

/// cpu, memory, ephemeral-storage and pods of this machine.
fn capacity(config: &KubeletConfig) -> Value {
    let (cpus, mem_kib) = machine_cpus_and_memory_kib();
    json!({
        "cpu": cpus.to_string(),
        "memory": format!("{mem_kib}Ki"),
        "ephemeral-storage": format!("{}Ki", disk_kib(&config.data_dir)),
        "pods": config.max_pods.to_string(),
    })
}

fn disk_kib(path: &std::path::Path) -> u64 {
    let Ok(c) = std::ffi::CString::new(path.to_string_lossy().as_bytes()) else {
        return 0;
    };
    // SAFETY: statvfs writes into the zeroed struct we pass; the path is NUL-terminated.
    unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c.as_ptr(), &mut st) != 0 {
            return 0;
        }
        (st.f_blocks as u64).saturating_mul(st.f_frsize as u64) / 1024
    }
}
