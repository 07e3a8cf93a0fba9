//! Translating a pod spec into CRI configs: the sandbox config, container configs with their
//! environment, mounts and resources.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, ResourceFieldSelector, Secret};
use kube::Api;

use super::PodContext;
use crate::cri::{LABEL_CONTAINER_NAME, LABEL_POD_NAME, LABEL_POD_NAMESPACE, LABEL_POD_UID};

/// A container config that cannot be built: shown as `CreateContainerConfigError`.
#[derive(Debug)]
pub struct ConfigError(pub String);

/// ConfigMaps and Secrets of the pod's namespace, fetched once per sync.
pub struct Sources {
    configmaps: Api<ConfigMap>,
    secrets: Api<Secret>,
    cm_cache: HashMap<String, Option<BTreeMap<String, Vec<u8>>>>,
    secret_cache: HashMap<String, Option<BTreeMap<String, Vec<u8>>>>,
}

impl Sources {
    pub fn new(client: kube::Client, namespace: &str) -> Self {
        Self {
            configmaps: Api::namespaced(client.clone(), namespace),
            secrets: Api::namespaced(client, namespace),
            cm_cache: HashMap::new(),
            secret_cache: HashMap::new(),
        }
    }

    /// The data of a ConfigMap (`binaryData` included), `None` when it does not exist.
    pub async fn configmap(
        &mut self,
        name: &str,
    ) -> Result<Option<&BTreeMap<String, Vec<u8>>>, ConfigError> {
        if !self.cm_cache.contains_key(name) {
            let cm = self
                .configmaps
                .get_opt(name)
                .await
                .map_err(|e| ConfigError(format!("getting configmap {name:?}: {e}")))?;
            let data = cm.map(|cm| {
                let mut d: BTreeMap<String, Vec<u8>> = cm
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.into_bytes()))
                    .collect();
                d.extend(
                    cm.binary_data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, v.0)),
                );
                d
            });
            self.cm_cache.insert(name.to_string(), data);
        }
        Ok(self.cm_cache.get(name).and_then(Option::as_ref))
    }

    /// The decoded data of a Secret (`stringData` is folded in by the API server).
    pub async fn secret(
        &mut self,
        name: &str,
    ) -> Result<Option<&BTreeMap<String, Vec<u8>>>, ConfigError> {
        if !self.secret_cache.contains_key(name) {
            let s = self
                .secrets
                .get_opt(name)
                .await
                .map_err(|e| ConfigError(format!("getting secret {name:?}: {e}")))?;
            let data = s.map(|s| {
                let mut d: BTreeMap<String, Vec<u8>> = s
                    .string_data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.into_bytes()))
                    .collect();
                d.extend(
                    s.data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, v.0)),
                );
                d
            });
            self.secret_cache.insert(name.to_string(), data);
        }
        Ok(self.secret_cache.get(name).and_then(Option::as_ref))
    }
}

fn cri_labels(pod: &Pod) -> HashMap<String, String> {
    let m = &pod.metadata;
    HashMap::from([
        (LABEL_POD_UID.into(), m.uid.clone().unwrap_or_default()),
        (LABEL_POD_NAME.into(), m.name.clone().unwrap_or_default()),
        (
            LABEL_POD_NAMESPACE.into(),
            m.namespace.clone().unwrap_or_default(),
        ),
    ])
}

fn host_network(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false)
}

fn namespace_options(pod: &Pod) -> cri::NamespaceOption {
    let spec = pod.spec.as_ref();
    let shared_pid = spec
        .and_then(|s| s.share_process_namespace)
        .unwrap_or(false);
    let host_pid = spec.and_then(|s| s.host_pid).unwrap_or(false);
    let host_ipc = spec.and_then(|s| s.host_ipc).unwrap_or(false);
    let mode = |host: bool, pod_wide: bool| {
        if host {
            cri::NamespaceMode::Node
        } else if pod_wide {
            cri::NamespaceMode::Pod
        } else {
            cri::NamespaceMode::Container
        }
    };
    cri::NamespaceOption {
        network: mode(host_network(pod), true) as i32,
        pid: mode(host_pid, shared_pid) as i32,
        ipc: mode(host_ipc, true) as i32,
        ..Default::default()
    }
}

/// The pod's sandbox config for a given attempt.
pub fn sandbox_config(ctx: &PodContext, pod: &Pod, attempt: u32) -> cri::PodSandboxConfig {
    let m = &pod.metadata;
    let spec = pod.spec.clone().unwrap_or_default();
    let namespace = m.namespace.clone().unwrap_or_default();
    let hostname = spec
        .hostname
        .clone()
        .unwrap_or_else(|| m.name.clone().unwrap_or_default());
    let host = crate::dns::ResolvConf::host(&ctx.config.resolv_conf);
    let dns_config = pod_dns_config(&ctx.config, pod, &host);
    let port_mappings = spec
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            let host_port = p.host_port.filter(|hp| *hp > 0)?;
            let protocol = match p.protocol.as_deref() {
                Some("UDP") => cri::Protocol::Udp,
                Some("SCTP") => cri::Protocol::Sctp,
                _ => cri::Protocol::Tcp,
            };
            Some(cri::PortMapping {
                protocol: protocol as i32,
                container_port: p.container_port,
                host_port,
                host_ip: p.host_ip.clone().unwrap_or_default(),
            })
        })
        .collect();
    let mut labels: HashMap<String, String> =
        m.labels.clone().unwrap_or_default().into_iter().collect();
    labels.extend(cri_labels(pod));
    let sysctls = spec
        .security_context
        .as_ref()
        .and_then(|s| s.sysctls.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|s| (s.name, s.value))
        .collect();
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: m.name.clone().unwrap_or_default(),
            uid: m.uid.clone().unwrap_or_default(),
            namespace,
            attempt,
        }),
        hostname: if host_network(pod) {
            String::new()
        } else {
            hostname.chars().take(63).collect()
        },
        log_directory: ctx.log_dir(pod).to_string_lossy().into_owned(),
        dns_config: Some(dns_config),
        port_mappings,
        labels,
        annotations: m
            .annotations
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        linux: Some(cri::LinuxPodSandboxConfig {
            cgroup_parent: format!("/meso/pod{}", m.uid.as_deref().unwrap_or_default()),
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(namespace_options(pod)),
                ..Default::default()
            }),
            sysctls,
            ..Default::default()
        }),
        windows: None,
    }
}

/// The pod's resolv.conf as upstream's kubelet builds it from `dnsPolicy` and `dnsConfig`:
/// `ClusterFirst` (the default; `Default` for host-network pods unless
/// `ClusterFirstWithHostNet`) gets the cluster nameserver (`--cluster-dns`, else the embedded
/// DNS server's gateway address), the cluster search path then the host's, and `ndots:5`;
/// `Default` gets the host's resolv.conf, without loopback nameservers and, under
/// `--pod-egress=local`, without any (nothing outside the machine is asked); `None` starts
/// empty. `dnsConfig` is then merged in: nameservers and searches appended without
/// duplicates, options overriding by name.
pub fn pod_dns_config(
    config: &crate::KubeletConfig,
    pod: &Pod,
    host: &crate::dns::ResolvConf,
) -> cri::DnsConfig {
    let spec = pod.spec.clone().unwrap_or_default();
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let cluster_servers: Vec<String> = if !config.cluster_dns.is_empty() {
        config.cluster_dns.iter().map(|ip| ip.to_string()).collect()
    } else if config.embedded_dns {
        crate::dns::gateway_ip(&config.pod_cidr)
            .map(|ip| ip.to_string())
            .into_iter()
            .collect()
    } else {
        vec![]
    };
    let host_network = spec.host_network.unwrap_or(false);
    let policy = spec.dns_policy.as_deref().unwrap_or("ClusterFirst");
    let cluster = match policy {
        "ClusterFirstWithHostNet" => true,
        "ClusterFirst" => !host_network,
        _ => false,
    } && !cluster_servers.is_empty();
    let mut dns = if policy == "None" {
        cri::DnsConfig::default()
    } else if cluster {
        let domain = config.cluster_domain.trim_end_matches('.');
        let mut searches = vec![
            format!("{namespace}.svc.{domain}"),
            format!("svc.{domain}"),
            domain.to_string(),
        ];
        searches.extend(host.searches.iter().cloned());
        cri::DnsConfig {
            servers: cluster_servers,
            searches,
            options: vec!["ndots:5".into()],
        }
    } else {
        let servers = match config.pod_egress {
            crate::PodEgress::Local => vec![],
            crate::PodEgress::Open => {
                let reachable: Vec<String> = host
                    .nameservers
                    .iter()
                    .filter(|ip| !ip.is_loopback())
                    .map(|ip| ip.to_string())
                    .collect();
                // Only a host-local stub: the embedded server forwards to it.
                if reachable.is_empty() && !host.nameservers.is_empty() && config.embedded_dns {
                    crate::dns::gateway_ip(&config.pod_cidr)
                        .map(|ip| ip.to_string())
                        .into_iter()
                        .collect()
                } else {
                    reachable
                }
            }
        };
        cri::DnsConfig {
            servers,
            searches: host.searches.clone(),
            options: host.options.clone(),
        }
    };
    if let Some(extra) = &spec.dns_config {
        dns.servers
            .extend(extra.nameservers.iter().flatten().cloned());
        dns.searches
            .extend(extra.searches.iter().flatten().cloned());
        for o in extra.options.iter().flatten() {
            let Some(name) = o.name.clone() else { continue };
            let option = match &o.value {
                Some(v) => format!("{name}:{v}"),
                None => name.clone(),
            };
            dns.options
                .retain(|existing| existing.split(':').next() != Some(name.as_str()));
            dns.options.push(option);
        }
    }
    let mut seen = std::collections::HashSet::new();
    dns.servers.retain(|s| seen.insert(s.clone()));
    dns.servers.truncate(3);
    let mut seen = std::collections::HashSet::new();
    dns.searches.retain(|s| seen.insert(s.clone()));
    dns.searches.truncate(32);
    if dns.servers.is_empty() && dns.searches.is_empty() && dns.options.is_empty() {
        // An empty config makes the runtime copy the host's resolv.conf (and its outside
        // nameservers); `ndots:1` is the resolver's default, so the file says nothing else.
        dns.options.push("ndots:1".into());
    }
    dns
}

/// Everything a container config needs besides the container itself.
pub struct ContainerInputs<'a> {
    pub pod: &'a Pod,
    pub pod_ip: &'a str,
    pub host_ip: &'a str,
    /// Host path of each volume by name.
    pub volumes: &'a HashMap<String, std::path::PathBuf>,
    /// The pod's `/etc/hosts`, mounted into each container (none for host-network pods).
    pub hosts_file: Option<&'a Path>,
}

/// The pod's `persistentVolumeClaim` volume `name` asks for read-only mounts.
fn claim_read_only(pod: &Pod, name: &str) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .and_then(|vs| vs.iter().find(|v| v.name == name))
        .and_then(|v| v.persistent_volume_claim.as_ref())
        .and_then(|c| c.read_only)
        .unwrap_or(false)
}

/// The CRI config of one container attempt.
pub async fn container_config(
    inputs: &ContainerInputs<'_>,
    sources: &mut Sources,
    container: &Container,
    attempt: u32,
) -> Result<cri::ContainerConfig, ConfigError> {
    let envs = environment(inputs, sources, container).await?;
    let mut mounts = Vec::new();
    for vm in container.volume_mounts.iter().flatten() {
        let host = inputs.volumes.get(&vm.name).ok_or_else(|| {
            ConfigError(format!("volume {:?} is not defined in the pod", vm.name))
        })?;
        let host_path = match vm.sub_path.as_deref().filter(|s| !s.is_empty()) {
            Some(sub) if sub.split('/').any(|p| p == "..") || sub.starts_with('/') => {
                return Err(ConfigError(format!("invalid subPath {sub:?}")));
            }
            Some(sub) => {
                let p = host.join(sub);
                if !p.exists() {
                    std::fs::create_dir_all(&p)
                        .map_err(|e| ConfigError(format!("creating subPath {sub:?}: {e}")))?;
                }
                p
            }
            None => host.clone(),
        };
        mounts.push(cri::Mount {
            container_path: vm.mount_path.clone(),
            host_path: host_path.to_string_lossy().into_owned(),
            readonly: vm.read_only.unwrap_or(false) || claim_read_only(inputs.pod, &vm.name),
            ..Default::default()
        });
    }
    let has_etc_hosts = mounts.iter().any(|m| m.container_path == "/etc/hosts");
    if let (Some(hosts), false) = (inputs.hosts_file, has_etc_hosts) {
        mounts.push(cri::Mount {
            container_path: "/etc/hosts".into(),
            host_path: hosts.to_string_lossy().into_owned(),
            ..Default::default()
        });
    }
    let mut labels = cri_labels(inputs.pod);
    labels.insert(LABEL_CONTAINER_NAME.into(), container.name.clone());
    let sc = container.security_context.clone().unwrap_or_default();
    let pod_sc = inputs
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.security_context.clone())
        .unwrap_or_default();
    let capabilities = sc.capabilities.as_ref().map(|c| cri::Capability {
        add_capabilities: c.add.clone().unwrap_or_default(),
        drop_capabilities: c.drop.clone().unwrap_or_default(),
        ..Default::default()
    });
    let privileged = sc.privileged.unwrap_or(false);
    Ok(cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata {
            name: container.name.clone(),
            attempt,
        }),
        image: Some(cri::ImageSpec {
            image: container.image.clone().unwrap_or_default(),
            ..Default::default()
        }),
        command: container.command.clone().unwrap_or_default(),
        args: container.args.clone().unwrap_or_default(),
        working_dir: container.working_dir.clone().unwrap_or_default(),
        envs,
        mounts,
        labels,
        log_path: format!("{}/{attempt}.log", container.name),
        stdin: container.stdin.unwrap_or(false),
        stdin_once: container.stdin_once.unwrap_or(false),
        tty: container.tty.unwrap_or(false),
        linux: Some(cri::LinuxContainerConfig {
            resources: Some(resources(container)),
            security_context: Some(cri::LinuxContainerSecurityContext {
                capabilities,
                privileged,
                namespace_options: Some(namespace_options(inputs.pod)),
                run_as_user: sc
                    .run_as_user
                    .or(pod_sc.run_as_user)
                    .map(|value| cri::Int64Value { value }),
                run_as_group: sc
                    .run_as_group
                    .or(pod_sc.run_as_group)
                    .map(|value| cri::Int64Value { value }),
                readonly_rootfs: sc.read_only_root_filesystem.unwrap_or(false),
                supplemental_groups: pod_sc.supplemental_groups.clone().unwrap_or_default(),
                no_new_privs: !sc.allow_privilege_escalation.unwrap_or(true),
                masked_paths: if privileged {
                    vec![]
                } else {
                    default_masked_paths()
                },
                readonly_paths: if privileged {
                    vec![]
                } else {
                    default_readonly_paths()
                },
                ..Default::default()
            }),
        }),
        ..Default::default()
    })
}

fn default_masked_paths() -> Vec<String> {
    [
        "/proc/asound",
        "/proc/acpi",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/timer_list",
        "/proc/timer_stats",
        "/proc/sched_debug",
        "/proc/scsi",
        "/sys/firmware",
    ]
    .map(String::from)
    .to_vec()
}

fn default_readonly_paths() -> Vec<String> {
    [
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/sys",
        "/proc/sysrq-trigger",
    ]
    .map(String::from)
    .to_vec()
}

/// cgroup limits from the container's resources.
fn resources(container: &Container) -> cri::LinuxContainerResources {
    let res = container.resources.clone().unwrap_or_default();
    let get =
        |m: &Option<BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
         key: &str| {
            m.as_ref()
                .and_then(|m| m.get(key))
                .and_then(|q| parse_quantity(&q.0))
        };
    let cpu_request = get(&res.requests, "cpu").or(get(&res.limits, "cpu"));
    let cpu_limit = get(&res.limits, "cpu");
    let memory_limit = get(&res.limits, "memory");
    const PERIOD: i64 = 100_000;
    cri::LinuxContainerResources {
        cpu_shares: cpu_request.map_or(2, |c| ((c * 1024.0) as i64).max(2)),
        cpu_period: if cpu_limit.is_some() { PERIOD } else { 0 },
        cpu_quota: cpu_limit.map_or(0, |c| ((c * PERIOD as f64) as i64).max(1000)),
        memory_limit_in_bytes: memory_limit.map_or(0, |m| m as i64),
        oom_score_adj: 0,
        ..Default::default()
    }
}

/// Parses a Kubernetes quantity (`100m`, `64Mi`, `1.5G`, `2e3`) into a number.
pub fn parse_quantity(s: &str) -> Option<f64> {
    let s = s.trim();
    let suffixes: [(&str, f64); 13] = [
        ("Ki", 1024f64),
        ("Mi", 1024f64.powi(2)),
        ("Gi", 1024f64.powi(3)),
        ("Ti", 1024f64.powi(4)),
        ("Pi", 1024f64.powi(5)),
        ("Ei", 1024f64.powi(6)),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
    ];
    for (suffix, factor) in suffixes {
        if let Some(n) = s.strip_suffix(suffix) {
            return n.parse::<f64>().ok().map(|v| v * factor);
        }
    }
    s.parse::<f64>().ok()
}

/// `envFrom` then `env`, later entries winning, with `$(VAR)` expansion as upstream.
async fn environment(
    inputs: &ContainerInputs<'_>,
    sources: &mut Sources,
    container: &Container,
) -> Result<Vec<cri::KeyValue>, ConfigError> {
    let mut vars: Vec<(String, String)> = Vec::new();
    let set = |vars: &mut Vec<(String, String)>, k: String, v: String| match vars
        .iter_mut()
        .find(|(name, _)| *name == k)
    {
        Some(slot) => slot.1 = v,
        None => vars.push((k, v)),
    };
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let (data, optional, what, name) = if let Some(r) = &from.config_map_ref {
            let d = sources.configmap(&r.name).await?.cloned();
            (d, r.optional.unwrap_or(false), "configmap", r.name.clone())
        } else if let Some(r) = &from.secret_ref {
            let d = sources.secret(&r.name).await?.cloned();
            (d, r.optional.unwrap_or(false), "secret", r.name.clone())
        } else {
            continue;
        };
        match data {
            Some(d) => {
                for (k, v) in d {
                    set(
                        &mut vars,
                        format!("{prefix}{k}"),
                        String::from_utf8_lossy(&v).into(),
                    );
                }
            }
            None if optional => {}
            None => return Err(ConfigError(format!("{what} {name:?} not found"))),
        }
    }
    for env in container.env.iter().flatten() {
        let value = match &env.value_from {
            None => expand(env.value.as_deref().unwrap_or_default(), &vars),
            Some(from) => {
                if let Some(f) = &from.field_ref {
                    field_value(inputs, &f.field_path)?
                } else if let Some(r) = &from.resource_field_ref {
                    resource_value(container, r)?
                } else if let Some(r) = &from.config_map_key_ref {
                    let d = sources.configmap(&r.name).await?;
                    match (d.and_then(|d| d.get(&r.key)), r.optional.unwrap_or(false)) {
                        (Some(v), _) => String::from_utf8_lossy(v).into_owned(),
                        (None, true) => continue,
                        (None, false) => {
                            return Err(ConfigError(match d {
                                None => format!("configmap {:?} not found", r.name),
                                Some(_) => {
                                    format!("couldn't find key {} in ConfigMap {}", r.key, r.name)
                                }
                            }))
                        }
                    }
                } else if let Some(r) = &from.secret_key_ref {
                    let d = sources.secret(&r.name).await?;
                    match (d.and_then(|d| d.get(&r.key)), r.optional.unwrap_or(false)) {
                        (Some(v), _) => String::from_utf8_lossy(v).into_owned(),
                        (None, true) => continue,
                        (None, false) => {
                            return Err(ConfigError(match d {
                                None => format!("secret {:?} not found", r.name),
                                Some(_) => {
                                    format!("couldn't find key {} in Secret {}", r.key, r.name)
                                }
                            }))
                        }
                    }
                } else {
                    continue;
                }
            }
        };
        set(&mut vars, env.name.clone(), value);
    }
    Ok(vars
        .into_iter()
        .map(|(key, value)| cri::KeyValue { key, value })
        .collect())
}

/// `$(NAME)` references to earlier variables; `$$` escapes; unknown references stay as is.
fn expand(input: &str, vars: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = input;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some((name, tail)) = after.strip_prefix('(').and_then(|a| a.split_once(')')) {
            match vars.iter().find(|(k, _)| k == name) {
                Some((_, v)) => out.push_str(v),
                None => out.push_str(&format!("$({name})")),
            }
            rest = tail;
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// A container's resource (`resourceFieldRef`) in units of its divisor, rounded up, as
/// upstream: limits default to the node's allocatable, requests to zero.
pub fn resource_value(
    container: &Container,
    sel: &ResourceFieldSelector,
) -> Result<String, ConfigError> {
    let (side, name) = sel
        .resource
        .split_once('.')
        .ok_or_else(|| ConfigError(format!("unsupported container resource: {}", sel.resource)))?;
    let res = container.resources.clone().unwrap_or_default();
    let map = match side {
        "limits" => &res.limits,
        "requests" => &res.requests,
        _ => {
            return Err(ConfigError(format!(
                "unsupported container resource: {}",
                sel.resource
            )))
        }
    };
    let set = map
        .as_ref()
        .and_then(|m| m.get(name))
        .map(|q| {
            parse_quantity(&q.0).ok_or_else(|| {
                ConfigError(format!("invalid quantity {:?} of {}", q.0, sel.resource))
            })
        })
        .transpose()?;
    let value = match (set, side, name) {
        (Some(v), _, _) => v,
        (None, "limits", "cpu") => crate::node::machine_cpus_and_memory_kib().0 as f64,
        (None, "limits", "memory") => crate::node::machine_cpus_and_memory_kib().1 as f64 * 1024.0,
        (None, "limits", "ephemeral-storage") => 0.0,
        (None, _, "cpu" | "memory" | "ephemeral-storage") => 0.0,
        (None, _, other) if other.starts_with("hugepages-") => 0.0,
        _ => {
            return Err(ConfigError(format!(
                "unsupported container resource: {}",
                sel.resource
            )))
        }
    };
    let divisor = match &sel.divisor {
        Some(d) => parse_quantity(&d.0)
            .filter(|d| *d > 0.0)
            .ok_or_else(|| ConfigError(format!("invalid divisor {:?}", d.0)))?,
        None => 1.0,
    };
    // Integer arithmetic (milli-units for cpu, units otherwise) avoids 0.5/0.001 = 500.0001.
    let scale = if name == "cpu" { 1000.0 } else { 1.0 };
    let (v, d) = (
        (value * scale).round() as u128,
        (divisor * scale).round() as u128,
    );
    Ok(v.div_ceil(d.max(1)).to_string())
}

/// `resourceFieldRef` of a downward API volume item: the named container's resource.
pub fn pod_resource_value(pod: &Pod, sel: &ResourceFieldSelector) -> Result<String, ConfigError> {
    let spec = pod.spec.as_ref();
    let wanted = sel.container_name.as_deref().unwrap_or_default();
    let container = spec
        .into_iter()
        .flat_map(|s| {
            s.containers
                .iter()
                .chain(s.init_containers.iter().flatten())
        })
        .find(|c| c.name == wanted)
        .ok_or_else(|| ConfigError(format!("container {wanted:?} not found in the pod")))?;
    resource_value(container, sel)
}

/// A downward API field of the pod (`fieldRef.fieldPath`).
pub fn field_value(inputs: &ContainerInputs<'_>, path: &str) -> Result<String, ConfigError> {
    let m = &inputs.pod.metadata;
    let spec = inputs.pod.spec.as_ref();
    let subscript = |prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|r| r.strip_prefix("['").or_else(|| r.strip_prefix("[\"")))
            .and_then(|r| r.strip_suffix("']").or_else(|| r.strip_suffix("\"]")))
    };
    let map_text = |m: &Option<BTreeMap<String, String>>| {
        m.iter()
            .flatten()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    Ok(match path {
        "metadata.name" => m.name.clone().unwrap_or_default(),
        "metadata.namespace" => m.namespace.clone().unwrap_or_default(),
        "metadata.uid" => m.uid.clone().unwrap_or_default(),
        "metadata.labels" => map_text(&m.labels),
        "metadata.annotations" => map_text(&m.annotations),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.hostIP" | "status.hostIPs" => inputs.host_ip.to_string(),
        "status.podIP" | "status.podIPs" => inputs.pod_ip.to_string(),
        _ => {
            if let Some(key) = subscript("metadata.labels") {
                m.labels
                    .as_ref()
                    .and_then(|l| l.get(key))
                    .cloned()
                    .unwrap_or_default()
            } else if let Some(key) = subscript("metadata.annotations") {
                m.annotations
                    .as_ref()
                    .and_then(|l| l.get(key))
                    .cloned()
                    .unwrap_or_default()
            } else {
                return Err(ConfigError(format!("unsupported fieldPath {path:?}")));
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("100m"), Some(0.1));
        assert_eq!(parse_quantity("64Mi"), Some(64.0 * 1024.0 * 1024.0));
        assert_eq!(parse_quantity("2"), Some(2.0));
        assert_eq!(parse_quantity("1G"), Some(1e9));
        assert_eq!(parse_quantity("x"), None);
    }

    #[test]
    fn resource_field_refs_round_up_by_divisor() {
        let c: Container = serde_json::from_value(serde_json::json!({
            "name": "c",
            "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}, "requests": {"cpu": "250m"}}
        }))
        .unwrap_or_default();
        let sel = |resource: &str, divisor: Option<&str>| ResourceFieldSelector {
            resource: resource.into(),
            divisor: divisor
                .map(|d| k8s_openapi::apimachinery::pkg::api::resource::Quantity(d.into())),
            container_name: None,
        };
        let value = |s| resource_value(&c, &s).map_err(|e| e.0);
        assert_eq!(value(sel("limits.cpu", None)), Ok("1".into()));
        assert_eq!(value(sel("limits.cpu", Some("1m"))), Ok("500".into()));
        assert_eq!(value(sel("requests.cpu", Some("1m"))), Ok("250".into()));
        assert_eq!(value(sel("limits.memory", Some("1Mi"))), Ok("64".into()));
        assert_eq!(value(sel("requests.memory", None)), Ok("0".into()));
        let node_cpus = crate::node::machine_cpus_and_memory_kib().0.to_string();
        let bare = Container::default();
        assert_eq!(
            resource_value(&bare, &sel("limits.cpu", None)).map_err(|e| e.0),
            Ok(node_cpus)
        );
        assert!(value(sel("limits.gpu", None)).is_err());
    }

    #[test]
    fn expansion() {
        let vars = vec![("A".to_string(), "1".to_string())];
        assert_eq!(expand("x$(A)y", &vars), "x1y");
        assert_eq!(expand("$(B)", &vars), "$(B)");
        assert_eq!(expand("$$(A)", &vars), "$(A)");
        assert_eq!(expand("a$b", &vars), "a$b");
    }

    #[test]
    fn pod_dns_follows_policy_egress_and_dns_config() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            config: crate::KubeletConfig,
        }
        let config = |args: &[&str]| {
            Cli::parse_from(["kubelet", "--pod-cidr", "10.42.7.0/24"].iter().chain(args)).config
        };
        let pod = |spec: serde_json::Value| -> Pod {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "p", "namespace": "shop"}, "spec": spec
            }))
            .unwrap_or_default()
        };
        let host = crate::dns::ResolvConf::parse(
            "nameserver 127.0.0.53\nnameserver 192.0.2.1\nsearch corp.example\noptions edns0\n",
        );
        let local = config(&[]);
        let d = pod_dns_config(&local, &pod(serde_json::json!({})), &host);
        assert_eq!(d.servers, vec!["10.42.7.1"]);
        assert_eq!(
            d.searches,
            vec![
                "shop.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local",
                "corp.example"
            ]
        );
        assert_eq!(d.options, vec!["ndots:5"]);
        let explicit = config(&["--cluster-dns", "10.43.0.10"]);
        let d = pod_dns_config(&explicit, &pod(serde_json::json!({})), &host);
        assert_eq!(d.servers, vec!["10.43.0.10"]);
        // Host network: ClusterFirst means Default, unless ClusterFirstWithHostNet.
        let d = pod_dns_config(
            &local,
            &pod(serde_json::json!({"hostNetwork": true})),
            &host,
        );
        assert_eq!(
            (d.servers.len(), d.options.clone()),
            (0, vec!["edns0".to_string()])
        );
        let d = pod_dns_config(
            &local,
            &pod(serde_json::json!({"hostNetwork": true, "dnsPolicy": "ClusterFirstWithHostNet"})),
            &host,
        );
        assert_eq!(d.servers, vec!["10.42.7.1"]);
        // Default: no outside nameserver under local egress; no loopback one under open.
        let default = pod(serde_json::json!({"dnsPolicy": "Default"}));
        assert!(pod_dns_config(&local, &default, &host).servers.is_empty());
        let open = config(&["--pod-egress", "open"]);
        assert_eq!(
            pod_dns_config(&open, &default, &host).servers,
            vec!["192.0.2.1"]
        );
        // Without any cluster nameserver ClusterFirst falls back to Default.
        let off = config(&["--embedded-dns", "false"]);
        let d = pod_dns_config(&off, &pod(serde_json::json!({})), &host);
        assert_eq!(
            (d.servers.len(), d.searches.clone()),
            (0, vec!["corp.example".to_string()])
        );
        // An empty result would make the runtime copy the host's file.
        let d = pod_dns_config(&off, &pod(serde_json::json!({})), &Default::default());
        assert_eq!(d.options, vec!["ndots:1"]);
        // None uses dnsConfig only; dnsConfig merges into ClusterFirst.
        let d = pod_dns_config(
            &local,
            &pod(serde_json::json!({"dnsPolicy": "None", "dnsConfig": {
                "nameservers": ["1.2.3.4"], "searches": ["a.example"],
                "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}})),
            &host,
        );
        assert_eq!(
            (d.servers, d.searches, d.options),
            (
                vec!["1.2.3.4".to_string()],
                vec!["a.example".to_string()],
                vec!["ndots:2".to_string(), "edns0".to_string()]
            )
        );
        let d = pod_dns_config(
            &local,
            &pod(serde_json::json!({"dnsConfig": {
                "nameservers": ["10.42.7.1", "1.2.3.4"], "searches": ["cluster.local", "x"],
                "options": [{"name": "ndots", "value": "2"}]}})),
            &host,
        );
        assert_eq!(d.servers, vec!["10.42.7.1", "1.2.3.4"]);
        assert_eq!(d.searches.last().map(String::as_str), Some("x"));
        assert_eq!(d.searches.len(), 5);
        assert_eq!(d.options, vec!["ndots:2"]);
    }
}
