//! Service proxy (`--proxy-mode=nftables`): what kube-proxy's nftables mode does, for this node.
//!
//! Services and EndpointSlices are watched (kube-rs reflectors); every change (coalesced, at most
//! one sync per [`MIN_SYNC_INTERVAL`]) renders one `nft -f` script that replaces this kubelet's
//! `ip` table atomically. ClusterIPs, external IPs and NodePorts (on the node IP and
//! 127.0.0.1) are DNAT-ed to a random usable endpoint (`numgen random mod N`); traffic from the
//! host or from outside the pod CIDR and hairpin traffic is masqueraded; a port without
//! endpoints rejects new connections; `sessionAffinity: ClientIP` pins a client to an endpoint
//! through per-endpoint dynamic sets with a timeout.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Resource, ResourceExt};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{egress, KubeletConfig, Result};

/// How the kubelet translates Service traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProxyMode {
    /// nftables rules, as kube-proxy's nftables mode.
    Nftables,
    /// No service proxy (Services then only work through another proxy).
    None,
}

/// At most one sync per this interval; changes in between are coalesced.
pub const MIN_SYNC_INTERVAL: Duration = Duration::from_millis(500);
/// Checks the table is still there (and re-creates it) this often.
const RESYNC_INTERVAL: Duration = Duration::from_secs(30);
/// The packet mark of connections to masquerade (kube-proxy's default bit).
const MASQ_MARK: &str = "0x4000";
/// The label linking an EndpointSlice to its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// Session affinity timeout when `sessionAffinityConfig` does not give one (3 hours).
const DEFAULT_AFFINITY_SECONDS: i32 = 10800;

/// The proxy's nftables table of a kubelet (one per bridge, like the egress table).
pub fn table_name(config: &KubeletConfig) -> String {
    format!("{}_proxy", egress::table_name(config))
}

/// What the rules need to know about the node.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub table: String,
    pub bridge: String,
    pub pod_cidr: String,
    pub node_name: String,
    /// Addresses NodePorts answer on (the node IP and 127.0.0.1).
    pub node_ips: Vec<Ipv4Addr>,
}

impl NodeInfo {
    pub fn new(config: &KubeletConfig, node_name: &str, node_ip: IpAddr) -> Self {
        let mut node_ips = vec![Ipv4Addr::LOCALHOST];
        if let IpAddr::V4(ip) = node_ip {
            if !node_ips.contains(&ip) {
                node_ips.push(ip);
            }
        }
        Self {
            table: table_name(config),
            bridge: config.cni_bridge.clone(),
            pod_cidr: config.pod_cidr.clone(),
            node_name: node_name.to_string(),
            node_ips,
        }
    }
}

/// One endpoint of a service port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Endpoint {
    pub ip: Ipv4Addr,
    pub port: u16,
}

/// One port of a Service, with the endpoints its traffic may go to.
#[derive(Debug, Clone)]
pub struct ServicePort {
    /// `namespace/name/protocol/port-name`, unique; used in chain names.
    pub id: String,
    pub protocol: &'static str,
    pub port: u16,
    pub cluster_ip: Option<Ipv4Addr>,
    pub external_ips: Vec<Ipv4Addr>,
    pub node_port: Option<u16>,
    /// Endpoints for traffic to the cluster IP (node-local ones only for
    /// `internalTrafficPolicy: Local`).
    pub cluster_endpoints: Vec<Endpoint>,
    /// Endpoints for traffic from outside to a NodePort or external IP; `None` when
    /// `externalTrafficPolicy` is `Cluster` (then the cluster endpoints serve it).
    pub local_endpoints: Option<Vec<Endpoint>>,
    /// Seconds of `sessionAffinity: ClientIP`.
    pub affinity_seconds: Option<i32>,
}

fn protocol(p: Option<&str>) -> Option<&'static str> {
    match p.unwrap_or("TCP") {
        "TCP" => Some("tcp"),
        "UDP" => Some("udp"),
        "SCTP" => Some("sctp"),
        _ => None,
    }
}

fn u16_of(v: i32) -> Option<u16> {
    u16::try_from(v).ok().filter(|p| *p != 0)
}

/// The service ports to program, from the reflectors' contents.
pub fn service_ports(
    services: &[Arc<Service>],
    slices: &[Arc<EndpointSlice>],
    node_name: &str,
) -> Vec<ServicePort> {
    // Slices by (namespace, service name).
    let mut by_service: BTreeMap<(String, String), Vec<&EndpointSlice>> = BTreeMap::new();
    for slice in slices {
        if slice.address_type != "IPv4" || slice.meta().deletion_timestamp.is_some() {
            continue;
        }
        if let Some(svc) = slice.labels().get(SERVICE_NAME_LABEL) {
            by_service
                .entry((slice.namespace().unwrap_or_default(), svc.clone()))
                .or_default()
                .push(slice);
        }
    }
    let mut out = Vec::new();
    for svc in services {
        let Some(spec) = svc.spec.as_ref() else {
            continue;
        };
        if spec.type_.as_deref() == Some("ExternalName") {
            continue;
        }
        let cluster_ip = spec
            .cluster_ip
            .as_deref()
            .and_then(|ip| ip.parse::<Ipv4Addr>().ok());
        let external_ips: Vec<Ipv4Addr> = spec
            .external_ips
            .iter()
            .flatten()
            .filter_map(|ip| ip.parse().ok())
            .collect();
        if cluster_ip.is_none() && external_ips.is_empty() {
            continue; // headless, or not IPv4
        }
        let ns = svc.namespace().unwrap_or_default();
        let name = svc.name_any();
        let key = (ns.clone(), name.clone());
        let svc_slices = by_service.get(&key).map(Vec::as_slice).unwrap_or(&[]);
        let affinity_seconds = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
            spec.session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .unwrap_or(DEFAULT_AFFINITY_SECONDS)
        });
        let internal_local = spec.internal_traffic_policy.as_deref() == Some("Local");
        let external_local = spec.external_traffic_policy.as_deref() == Some("Local")
            && matches!(spec.type_.as_deref(), Some("NodePort" | "LoadBalancer"));
        for sp in spec.ports.iter().flatten() {
            let (Some(proto), Some(port)) = (protocol(sp.protocol.as_deref()), u16_of(sp.port))
            else {
                continue;
            };
            let port_name = sp.name.clone().unwrap_or_default();
            let all = endpoints_for(svc_slices, &port_name, sp.protocol.as_deref());
            let pick = |local: bool| -> Vec<Endpoint> {
                let candidates: Vec<&Candidate> = all
                    .iter()
                    .filter(|c| !local || c.node_name.as_deref() == Some(node_name))
                    .collect();
                usable(&candidates)
            };
            out.push(ServicePort {
                id: format!(
                    "{ns}/{name}/{proto}/{}",
                    if port_name.is_empty() {
                        "-"
                    } else {
                        &port_name
                    }
                ),
                protocol: proto,
                port,
                cluster_ip,
                external_ips: external_ips.clone(),
                node_port: sp.node_port.and_then(u16_of),
                cluster_endpoints: pick(internal_local),
                local_endpoints: external_local.then(|| pick(true)),
                affinity_seconds,
            });
        }
    }
    out
}

struct Candidate {
    endpoint: Endpoint,
    ready: bool,
    serving: bool,
    terminating: bool,
    node_name: Option<String>,
}

/// Every endpoint the slices give for the service port named `port_name`.
fn endpoints_for(
    slices: &[&EndpointSlice],
    port_name: &str,
    proto: Option<&str>,
) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = Vec::new();
    for slice in slices {
        let Some(target) = slice.ports.iter().flatten().find(|p| {
            p.name.as_deref().unwrap_or_default() == port_name
                && p.protocol.as_deref().unwrap_or("TCP") == proto.unwrap_or("TCP")
        }) else {
            continue;
        };
        let Some(port) = target.port.and_then(u16_of) else {
            continue;
        };
        for e in slice.endpoints.iter().flatten() {
            let conditions = e.conditions.clone().unwrap_or_default();
            // As upstream: an unknown `ready` is ready, an unknown `serving` follows `ready`.
            let ready = conditions.ready.unwrap_or(true);
            let serving = conditions.serving.unwrap_or(ready);
            let terminating = conditions.terminating.unwrap_or(false);
            for ip in e
                .addresses
                .iter()
                .filter_map(|a| a.parse::<Ipv4Addr>().ok())
            {
                let endpoint = Endpoint { ip, port };
                if out.iter().any(|c| c.endpoint == endpoint) {
                    continue; // the same pod in two slices
                }
                out.push(Candidate {
                    endpoint,
                    ready,
                    serving,
                    terminating,
                    node_name: e.node_name.clone(),
                });
            }
        }
    }
    out
}

/// Ready endpoints; when there are none, the serving terminating ones (as upstream).
fn usable(candidates: &[&Candidate]) -> Vec<Endpoint> {
    let mut ready: Vec<Endpoint> = candidates
        .iter()
        .filter(|c| c.ready && !c.terminating)
        .map(|c| c.endpoint.clone())
        .collect();
    if ready.is_empty() {
        ready = candidates
            .iter()
            .filter(|c| c.serving && c.terminating)
            .map(|c| c.endpoint.clone())
            .collect();
    }
    ready.sort();
    ready
}

/// Writes a set/map element list (nothing for an empty one: `elements = { }` is invalid).
fn elements<I: IntoIterator<Item = String>>(items: I) -> String {
    let items: Vec<String> = items.into_iter().collect();
    if items.is_empty() {
        String::new()
    } else {
        format!("    elements = {{ {} }}\n", items.join(",\n      "))
    }
}

fn endpoint_chain(id: &str, e: &Endpoint) -> String {
    format!("ep-{id}__{}/{}", e.ip, e.port)
}

fn affinity_set(id: &str, e: &Endpoint) -> String {
    format!("aff-{id}__{}/{}", e.ip, e.port)
}

/// The rules of one "pick an endpoint" chain: sticky clients first, then a random endpoint.
fn pick_rules(sp: &ServicePort, endpoints: &[Endpoint]) -> String {
    let mut s = String::new();
    if sp.affinity_seconds.is_some() {
        for e in endpoints {
            s.push_str(&format!(
                "    ip saddr @{} goto {}\n",
                affinity_set(&sp.id, e),
                endpoint_chain(&sp.id, e)
            ));
        }
    }
    let targets: Vec<String> = endpoints
        .iter()
        .enumerate()
        .map(|(i, e)| format!("{i} : goto {}", endpoint_chain(&sp.id, e)))
        .collect();
    s.push_str(&format!(
        "    numgen random mod {} vmap {{ {} }}\n",
        endpoints.len(),
        targets.join(", ")
    ));
    s
}

/// The nft script that replaces the proxy table with rules for `ports`.
pub fn ruleset(node: &NodeInfo, ports: &[ServicePort]) -> String {
    let table = &node.table;
    let mut cluster_ips: BTreeSet<Ipv4Addr> = BTreeSet::new();
    let mut service_ips: Vec<String> = Vec::new();
    let mut node_ports: Vec<String> = Vec::new();
    let mut no_endpoint_services: Vec<String> = Vec::new();
    let mut no_endpoint_nodeports: Vec<String> = Vec::new();
    let mut chains = String::new();
    let mut sets = String::new();
    for sp in ports {
        let id = &sp.id;
        let (proto, port) = (sp.protocol, sp.port);
        let has_cluster = !sp.cluster_endpoints.is_empty();
        let external = sp.local_endpoints.as_ref().unwrap_or(&sp.cluster_endpoints);
        let has_external = !external.is_empty();
        // Connections that would otherwise find no endpoint: refused, as upstream; dropped for
        // an external-local policy with endpoints only elsewhere.
        let external_verdict = if has_cluster {
            "drop"
        } else {
            "goto reject-chain"
        };
        if let Some(ip) = sp.cluster_ip {
            cluster_ips.insert(ip);
            if has_cluster {
                service_ips.push(format!("{ip} . {proto} . {port} : goto svc-{id}"));
            } else {
                no_endpoint_services.push(format!("{ip} . {proto} . {port} : goto reject-chain"));
            }
        }
        for ip in &sp.external_ips {
            if has_external {
                service_ips.push(format!("{ip} . {proto} . {port} : goto ext-{id}"));
            } else {
                no_endpoint_services.push(format!("{ip} . {proto} . {port} : {external_verdict}"));
            }
        }
        if let Some(np) = sp.node_port {
            if has_external {
                node_ports.push(format!("{proto} . {np} : goto ext-{id}"));
            } else {
                no_endpoint_nodeports.push(format!("{proto} . {np} : {external_verdict}"));
            }
        }
        if has_cluster {
            chains.push_str(&format!(
                "  chain svc-{id} {{\n    ip saddr != {pods} jump mark-for-masquerade\n{}  }}\n",
                pick_rules(sp, &sp.cluster_endpoints),
                pods = node.pod_cidr,
            ));
        }
        if has_external && (!sp.external_ips.is_empty() || sp.node_port.is_some()) {
            let mut rules = String::new();
            match &sp.local_endpoints {
                // Cluster policy: everything from outside is masqueraded.
                None => rules.push_str(&format!(
                    "    jump mark-for-masquerade\n    goto svc-{id}\n"
                )),
                // Local policy: pods and the host itself use the cluster endpoints; clients
                // outside keep their source address and reach only this node's endpoints.
                Some(local) => {
                    if has_cluster {
                        rules.push_str(&format!(
                            "    ip saddr {pods} goto svc-{id}\n    fib saddr type local jump mark-for-masquerade\n    fib saddr type local goto svc-{id}\n",
                            pods = node.pod_cidr
                        ));
                    }
                    rules.push_str(&pick_rules(sp, local));
                }
            }
            chains.push_str(&format!("  chain ext-{id} {{\n{rules}  }}\n"));
        }
        let mut all: Vec<&Endpoint> = sp.cluster_endpoints.iter().collect();
        if let Some(local) = &sp.local_endpoints {
            all.extend(local.iter().filter(|e| !sp.cluster_endpoints.contains(e)));
        }
        for e in all {
            let mut rules = format!("    ip saddr {} jump mark-for-masquerade\n", e.ip);
            if let Some(timeout) = sp.affinity_seconds {
                let set = affinity_set(id, e);
                sets.push_str(&format!(
                    "  set {set} {{\n    type ipv4_addr\n    flags dynamic,timeout\n    timeout {timeout}s\n  }}\n"
                ));
                rules.push_str(&format!("    update @{set} {{ ip saddr }}\n"));
            }
            rules.push_str(&format!(
                "    meta l4proto {proto} dnat to {}:{}\n",
                e.ip, e.port
            ));
            chains.push_str(&format!(
                "  chain {} {{\n{rules}  }}\n",
                endpoint_chain(id, e)
            ));
        }
    }
    let node_ips = elements(node.node_ips.iter().map(|ip| ip.to_string()));
    let cluster_ip_set = elements(cluster_ips.iter().map(|ip| ip.to_string()));
    let service_ips = elements(service_ips);
    let node_ports = elements(node_ports);
    let no_endpoint_services = elements(no_endpoint_services);
    let no_endpoint_nodeports = elements(no_endpoint_nodeports);
    format!(
        r#"add table ip {table}
delete table ip {table}
table ip {table} {{
  set nodeport-ips {{
    type ipv4_addr
{node_ips}  }}
  set cluster-ips {{
    type ipv4_addr
{cluster_ip_set}  }}
  map service-ips {{
    type ipv4_addr . inet_proto . inet_service : verdict
{service_ips}  }}
  map service-nodeports {{
    type inet_proto . inet_service : verdict
{node_ports}  }}
  map no-endpoint-services {{
    type ipv4_addr . inet_proto . inet_service : verdict
{no_endpoint_services}  }}
  map no-endpoint-nodeports {{
    type inet_proto . inet_service : verdict
{no_endpoint_nodeports}  }}
{sets}  chain filter-input {{
    type filter hook input priority -110; policy accept;
    iifname "{bridge}" ip daddr 127.0.0.0/8 ct direction original drop
    ct state new ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports
    ct state new ip daddr . meta l4proto . th dport vmap @no-endpoint-services
  }}
  chain filter-forward {{
    type filter hook forward priority -110; policy accept;
    ct state new ip daddr . meta l4proto . th dport vmap @no-endpoint-services
    ct state new ip daddr @cluster-ips reject
  }}
  chain filter-output {{
    type filter hook output priority -110; policy accept;
    ct state new ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports
    ct state new ip daddr . meta l4proto . th dport vmap @no-endpoint-services
  }}
  chain filter-output-post-dnat {{
    type filter hook output priority -90; policy accept;
    ct state new ip daddr @cluster-ips reject
  }}
  chain nat-prerouting {{
    type nat hook prerouting priority dstnat; policy accept;
    jump services
  }}
  chain nat-output {{
    type nat hook output priority -100; policy accept;
    jump services
  }}
  chain nat-postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    jump masquerading
  }}
  chain services {{
    ip daddr . meta l4proto . th dport vmap @service-ips
    ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports
  }}
  chain masquerading {{
    meta mark & {MASQ_MARK} == 0 return
    meta mark set meta mark ^ {MASQ_MARK}
    masquerade fully-random
  }}
  chain mark-for-masquerade {{
    meta mark set meta mark | {MASQ_MARK}
  }}
  chain reject-chain {{
    reject
  }}
{chains}}}
"#,
        bridge = node.bridge,
    )
}

/// Removes the proxy table (nothing if there is none).
pub fn remove(config: &KubeletConfig) -> Result<()> {
    let table = table_name(config);
    egress::nft(&format!("add table ip {table}\ndelete table ip {table}\n"))
}

/// NodePorts on 127.0.0.1 are DNAT-ed to pods behind the bridge: the kernel only routes a
/// loopback source out of (and replies to it in through) an interface with `route_localnet`.
/// The table's `filter-input` chain drops anything else from the bridge to 127.0.0.0/8.
/// Without the table (the proxy stopped) the setting goes back off.
fn route_localnet(bridge: &str, on: bool) {
    let path = format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet");
    if std::path::Path::new(&path).exists() {
        if let Err(e) = std::fs::write(&path, if on { "1" } else { "0" }) {
            tracing::warn!(%path, error = %e, "cannot set route_localnet: NodePorts on 127.0.0.1 may not work");
        }
    }
}

fn watch<K>(client: &kube::Client, changed: Arc<Notify>, shutdown: CancellationToken) -> Store<K>
where
    K: Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store::<K>();
    let api: Api<K> = Api::all(client.clone());
    tokio::spawn(async move {
        let events = reflector::reflector(
            writer,
            watcher(api, watcher::Config::default()).default_backoff(),
        );
        let mut events = std::pin::pin!(events);
        loop {
            let event = tokio::select! {
                _ = shutdown.cancelled() => break,
                e = events.next() => e,
            };
            match event {
                Some(Ok(_)) => changed.notify_one(),
                Some(Err(e)) => tracing::warn!(error = %e, "service proxy watch failed, retrying"),
                None => break,
            }
        }
    });
    store
}

/// Runs the proxy until `shutdown`, then removes its table.
pub async fn run(
    client: kube::Client,
    node: NodeInfo,
    config: KubeletConfig,
    shutdown: CancellationToken,
) {
    let changed = Arc::new(Notify::new());
    let services = watch::<Service>(&client, changed.clone(), shutdown.clone());
    let slices = watch::<EndpointSlice>(&client, changed.clone(), shutdown.clone());
    let ready = async {
        let _ = services.wait_until_ready().await;
        let _ = slices.wait_until_ready().await;
    };
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = ready => {}
    }
    let mut applied: Option<String> = None;
    let mut last_sync: Option<Instant> = None;
    let mut last_check = Instant::now();
    while !shutdown.is_cancelled() {
        if let Some(wait) = last_sync.and_then(|t| MIN_SYNC_INTERVAL.checked_sub(t.elapsed())) {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        last_sync = Some(Instant::now());
        let ports = service_ports(&services.state(), &slices.state(), &node.node_name);
        let script = ruleset(&node, &ports);
        // A missing table (flushed by someone else) is re-created by the periodic check.
        let stale = last_check.elapsed() >= RESYNC_INTERVAL;
        if stale {
            last_check = Instant::now();
        }
        let missing = stale && !table_exists(&node.table).await;
        if applied.as_deref() != Some(script.as_str()) || missing {
            let apply = script.clone();
            match tokio::task::spawn_blocking(move || egress::nft(&apply)).await {
                Ok(Ok(())) => {
                    // Only once the table guards 127.0.0.0/8 from the bridge.
                    route_localnet(&node.bridge, true);
                    tracing::debug!(ports = ports.len(), "service rules synced");
                    applied = Some(script);
                }
                Ok(Err(e)) => tracing::error!(error = %e, "programming service rules"),
                Err(e) => tracing::error!(error = %e, "programming service rules"),
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = changed.notified() => {}
            _ = tokio::time::sleep(RESYNC_INTERVAL) => {}
        }
    }
    route_localnet(&node.bridge, false);
    if let Err(e) = remove(&config) {
        tracing::warn!(error = %e, "removing service rules");
    }
}

async fn table_exists(table: &str) -> bool {
    tokio::process::Command::new("nft")
        .args(["list", "table", "ip", table])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node() -> NodeInfo {
        NodeInfo {
            table: "meso_br_x_proxy".into(),
            bridge: "br-x".into(),
            pod_cidr: "10.42.7.0/24".into(),
            node_name: "n1".into(),
            node_ips: vec![Ipv4Addr::LOCALHOST, Ipv4Addr::new(192, 0, 2, 2)],
        }
    }

    fn service(spec: serde_json::Value) -> Arc<Service> {
        Arc::new(
            serde_json::from_value(
                json!({"metadata": {"name": "web", "namespace": "ns"}, "spec": spec}),
            )
            .expect("service"),
        )
    }

    fn slice(ports: serde_json::Value, endpoints: serde_json::Value) -> Arc<EndpointSlice> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": "web-abc", "namespace": "ns",
                             "labels": {SERVICE_NAME_LABEL: "web"}},
                "addressType": "IPv4", "ports": ports, "endpoints": endpoints,
            }))
            .expect("slice"),
        )
    }

    fn ep(ip: &str, ready: bool, serving: bool, terminating: bool) -> serde_json::Value {
        json!({"addresses": [ip], "nodeName": "n1",
               "conditions": {"ready": ready, "serving": serving, "terminating": terminating}})
    }

    #[test]
    fn ready_endpoints_of_the_named_port_are_load_balanced_and_masqueraded() {
        let svc = service(json!({"clusterIP": "10.43.0.5", "type": "NodePort",
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "nodePort": 30080}]}));
        let sl = slice(
            json!([{"name": "http", "port": 8080, "protocol": "TCP"}]),
            json!([
                ep("10.42.7.2", true, true, false),
                ep("10.42.7.3", true, true, false),
                ep("10.42.7.4", false, false, false)
            ]),
        );
        let ports = service_ports(&[svc], &[sl], "n1");
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0].cluster_endpoints.len(), 2, "{ports:?}");
        let rules = ruleset(&node(), &ports);
        assert!(
            rules.starts_with("add table ip meso_br_x_proxy\ndelete table ip meso_br_x_proxy\n")
        );
        assert!(
            rules.contains("10.43.0.5 . tcp . 80 : goto svc-ns/web/tcp/http"),
            "{rules}"
        );
        assert!(
            rules.contains("tcp . 30080 : goto ext-ns/web/tcp/http"),
            "{rules}"
        );
        assert!(rules.contains("numgen random mod 2 vmap { 0 : goto ep-ns/web/tcp/http__10.42.7.2/8080, 1 : goto ep-ns/web/tcp/http__10.42.7.3/8080 }"), "{rules}");
        assert!(rules.contains("meta l4proto tcp dnat to 10.42.7.3:8080"));
        assert!(rules.contains("ip saddr != 10.42.7.0/24 jump mark-for-masquerade"));
        assert!(
            rules.contains("ip saddr 10.42.7.2 jump mark-for-masquerade"),
            "hairpin"
        );
        assert!(!rules.contains("10.42.7.4"), "unready endpoint: {rules}");
        assert!(
            rules.contains("elements = { 127.0.0.1,\n      192.0.2.2 }"),
            "{rules}"
        );
    }

    #[test]
    fn terminating_endpoints_serve_only_without_ready_ones_and_none_rejects() {
        let svc = service(json!({"clusterIP": "10.43.0.5",
            "ports": [{"port": 53, "protocol": "UDP"}]}));
        let sl = slice(
            json!([{"port": 5353, "protocol": "UDP"}]),
            json!([
                ep("10.42.7.8", false, true, true),
                ep("10.42.7.9", false, false, true)
            ]),
        );
        let ports = service_ports(std::slice::from_ref(&svc), &[sl], "n1");
        assert_eq!(
            ports[0].cluster_endpoints,
            vec![Endpoint {
                ip: Ipv4Addr::new(10, 42, 7, 8),
                port: 5353
            }]
        );
        let empty = service_ports(&[svc], &[], "n1");
        let rules = ruleset(&node(), &empty);
        assert!(
            rules.contains("10.43.0.5 . udp . 53 : goto reject-chain"),
            "{rules}"
        );
        assert!(!rules.contains("chain svc-"), "{rules}");
    }

    #[test]
    fn client_ip_affinity_and_local_policies() {
        let svc = service(json!({"clusterIP": "10.43.0.6", "type": "NodePort",
            "sessionAffinity": "ClientIP", "externalTrafficPolicy": "Local",
            "internalTrafficPolicy": "Local",
            "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}},
            "ports": [{"port": 80, "nodePort": 30081}]}));
        let mut other = ep("10.42.7.3", true, true, false);
        other["nodeName"] = json!("n2");
        let sl = slice(
            json!([{"port": 80}]),
            json!([ep("10.42.7.2", true, true, false), other]),
        );
        let ports = service_ports(&[svc], &[sl], "n1");
        assert_eq!(ports[0].cluster_endpoints.len(), 1);
        assert_eq!(ports[0].local_endpoints.as_ref().map(Vec::len), Some(1));
        let rules = ruleset(&node(), &ports);
        assert!(rules.contains("timeout 60s"), "{rules}");
        assert!(
            rules.contains("update @aff-ns/web/tcp/-__10.42.7.2/80 { ip saddr }"),
            "{rules}"
        );
        assert!(rules.contains(
            "ip saddr @aff-ns/web/tcp/-__10.42.7.2/80 goto ep-ns/web/tcp/-__10.42.7.2/80"
        ));
        assert!(
            rules.contains("ip saddr 10.42.7.0/24 goto svc-ns/web/tcp/-"),
            "{rules}"
        );
        assert!(!rules.contains("10.42.7.3"), "{rules}");
    }

    #[test]
    fn headless_and_external_name_services_get_no_rules() {
        let headless = service(json!({"clusterIP": "None", "ports": [{"port": 80}]}));
        let external = service(json!({"type": "ExternalName", "externalName": "example.com"}));
        assert!(service_ports(&[headless, external], &[], "n1").is_empty());
    }

    /// The rendered script is valid nft (checked, not applied, by `nft -c`); needs root.
    #[test]
    fn rendered_ruleset_passes_nft_check() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 || !std::path::Path::new("/usr/sbin/nft").exists() {
            assert!(!meso_ci(), "nft check needs root and nft under CI");
            eprintln!("SKIPPED: needs root and nft");
            return;
        }
        let svc = service(json!({"clusterIP": "10.43.0.6", "type": "NodePort",
            "sessionAffinity": "ClientIP", "externalTrafficPolicy": "Local",
            "externalIPs": ["192.0.2.50"],
            "ports": [{"name": "http", "port": 80, "nodePort": 30081},
                      {"name": "dns", "port": 53, "protocol": "UDP", "nodePort": 30082}]}));
        let sl = slice(
            json!([{"name": "http", "port": 8080}]),
            json!([
                ep("10.42.7.2", true, true, false),
                ep("10.42.7.3", true, true, false)
            ]),
        );
        let script = ruleset(&node(), &service_ports(&[svc], &[sl], "n1"));
        let mut child = std::process::Command::new("nft")
            .args(["-c", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("nft");
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(script.as_bytes())
            .expect("write");
        let out = child.wait_with_output().expect("nft");
        assert!(
            out.status.success(),
            "{}\n{script}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn meso_ci() -> bool {
        std::env::var("CI").is_ok_and(|v| v == "true")
    }
}
