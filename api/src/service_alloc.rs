//! Service ClusterIP and NodePort allocation. A ClusterIP is reserved by creating its
//! `networking.k8s.io/v1 IPAddress` object (as upstream's IPAddress allocator does), so an
//! address is never handed out twice and survives restarts; node ports are reserved by keys
//! of their own. Both are released when the Service is removed.

use std::net::Ipv4Addr;

use meso_store::{Store, StoreError};
use serde_json::{json, Value};

use crate::errors::{ApiError, ApiResult, Cause};
use crate::meta;

const IPADDRESS_PREFIX: &str = "/registry/networking.k8s.io/ipaddresses/";
const NODEPORT_PREFIX: &str = "/registry/meso/servicenodeports/";

/// The ranges services draw from.
#[derive(Debug, Clone)]
pub struct ServiceRanges {
    network: u32,
    prefix_len: u32,
    pub node_ports: (u16, u16),
}

impl ServiceRanges {
    /// Parses `10.43.0.0/16` and `30000-32767`.
    pub fn parse(cidr: &str, node_ports: &str) -> Result<ServiceRanges, String> {
        let (ip, len) = cidr
            .split_once('/')
            .ok_or_else(|| format!("invalid service CIDR {cidr:?}"))?;
        let ip: Ipv4Addr = ip
            .parse()
            .map_err(|_| format!("invalid service CIDR {cidr:?} (only IPv4 is supported)"))?;
        let len: u32 = len
            .parse()
            .map_err(|_| format!("invalid service CIDR {cidr:?}"))?;
        if !(8..=30).contains(&len) {
            return Err(format!("service CIDR {cidr:?}: prefix length must be 8-30"));
        }
        let mask = u32::MAX << (32 - len);
        let (lo, hi) = node_ports
            .split_once('-')
            .ok_or_else(|| format!("invalid node port range {node_ports:?}"))?;
        let lo: u16 = lo
            .trim()
            .parse()
            .map_err(|_| format!("invalid node port range {node_ports:?}"))?;
        let hi: u16 = hi
            .trim()
            .parse()
            .map_err(|_| format!("invalid node port range {node_ports:?}"))?;
        if lo == 0 || lo > hi {
            return Err(format!("invalid node port range {node_ports:?}"));
        }
        Ok(ServiceRanges {
            network: u32::from(ip) & mask,
            prefix_len: len,
            node_ports: (lo, hi),
        })
    }

    fn size(&self) -> u32 {
        1u32 << (32 - self.prefix_len)
    }

    /// The first usable address: the `kubernetes` Service's ClusterIP.
    pub fn first(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.network + 1)
    }

    fn contains(&self, ip: Ipv4Addr) -> bool {
        let v = u32::from(ip);
        v > self.network && v < self.network + self.size() - 1
    }

    pub fn cidr(&self) -> String {
        format!("{}/{}", Ipv4Addr::from(self.network), self.prefix_len)
    }
}

fn random_u32() -> u32 {
    let b = uuid::Uuid::new_v4().into_bytes();
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn service_type(svc: &Value) -> &str {
    svc.get("spec")
        .and_then(|s| s.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
}

fn invalid(name: &str, causes: Vec<Cause>) -> ApiError {
    ApiError::invalid("Service", "", name, causes)
}

async fn reserve_ip(store: &Store, ip: Ipv4Addr, ns: &str, name: &str) -> ApiResult<bool> {
    let obj = json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IPAddress",
        "metadata": {
            "name": ip.to_string(),
            "uid": meta::new_uid(),
            "creationTimestamp": meta::now_rfc3339(),
            "labels": {
                "ipaddress.kubernetes.io/ip-family": "IPv4",
                "ipaddress.kubernetes.io/managed-by": "ipallocator.k8s.io"
            }
        },
        "spec": {"parentRef": {"group": "", "resource": "services", "namespace": ns, "name": name}}
    });
    let bytes = serde_json::to_vec(&obj).map_err(|e| ApiError::internal(e.to_string()))?;
    match store
        .create(&format!("{IPADDRESS_PREFIX}{ip}"), bytes)
        .await
    {
        Ok(_) => Ok(true),
        Err(StoreError::AlreadyExists) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

async fn reserve_port(store: &Store, port: u16, ns: &str, name: &str) -> ApiResult<bool> {
    let v = serde_json::to_vec(&json!({"namespace": ns, "name": name}))
        .map_err(|e| ApiError::internal(e.to_string()))?;
    match store.create(&format!("{NODEPORT_PREFIX}{port}"), v).await {
        Ok(_) => Ok(true),
        Err(StoreError::AlreadyExists) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Reserves `ip` for the given service (used for the `kubernetes` Service at bootstrap).
pub async fn reserve_specific(
    store: &Store,
    ip: Ipv4Addr,
    ns: &str,
    name: &str,
) -> ApiResult<bool> {
    reserve_ip(store, ip, ns, name).await
}

/// Allocates the ClusterIP and node ports of a new Service, writing them into `svc`.
/// On error nothing stays reserved.
pub async fn allocate(
    store: &Store,
    ranges: &ServiceRanges,
    svc: &mut Value,
    ns: &str,
    name: &str,
) -> ApiResult<()> {
    let ty = service_type(svc).to_string();
    let mut reserved_ip: Option<Ipv4Addr> = None;
    if ty != "ExternalName" {
        let requested = svc
            .get("spec")
            .and_then(|s| s.get("clusterIP"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if requested != "None" {
            let ip = if requested.is_empty() {
                let size = ranges.size();
                let start = random_u32() % (size - 3);
                let mut found = None;
                for i in 0..size - 3 {
                    // Offsets 2..size-2: skip the network address and the kubernetes Service's.
                    let ip = Ipv4Addr::from(ranges.network + 2 + (start + i) % (size - 3));
                    if reserve_ip(store, ip, ns, name).await? {
                        found = Some(ip);
                        break;
                    }
                }
                found.ok_or_else(|| {
                    invalid(
                        name,
                        vec![Cause::invalid(
                            "spec.clusterIPs",
                            &json!([]),
                            "failed to allocate IP: range is full",
                        )],
                    )
                })?
            } else {
                let ip: Ipv4Addr = requested.parse().map_err(|_| {
                    invalid(
                        name,
                        vec![Cause::invalid(
                            "spec.clusterIPs[0]",
                            &json!(requested),
                            "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                        )],
                    )
                })?;
                if !ranges.contains(ip) {
                    return Err(invalid(name, vec![Cause::invalid(
                        "spec.clusterIPs",
                        &json!([requested]),
                        &format!("failed to allocate IP {requested}: the provided IP ({requested}) is not in the valid range. The range of valid IPs is {}", ranges.cidr()),
                    )]));
                }
                if !reserve_ip(store, ip, ns, name).await? {
                    return Err(invalid(name, vec![Cause::invalid(
                        "spec.clusterIPs",
                        &json!([requested]),
                        &format!("failed to allocate IP {requested}: provided IP is already allocated"),
                    )]));
                }
                ip
            };
            reserved_ip = Some(ip);
            if let Some(spec) = svc.get_mut("spec").and_then(Value::as_object_mut) {
                spec.insert("clusterIP".into(), json!(ip.to_string()));
                spec.insert("clusterIPs".into(), json!([ip.to_string()]));
            }
        } else if let Some(spec) = svc.get_mut("spec").and_then(Value::as_object_mut) {
            spec.insert("clusterIPs".into(), json!(["None"]));
        }
    }
    if ty == "NodePort" || ty == "LoadBalancer" {
        if let Err(e) = allocate_node_ports(store, ranges, svc, ns, name).await {
            if let Some(ip) = reserved_ip {
                let _ = store.delete(&format!("{IPADDRESS_PREFIX}{ip}"), None).await;
            }
            return Err(e);
        }
    }
    Ok(())
}

async fn allocate_node_ports(
    store: &Store,
    ranges: &ServiceRanges,
    svc: &mut Value,
    ns: &str,
    name: &str,
) -> ApiResult<()> {
    let (lo, hi) = ranges.node_ports;
    let span = u32::from(hi - lo) + 1;
    let mut taken: Vec<u16> = Vec::new();
    let ports_len = svc
        .get("spec")
        .and_then(|s| s.get("ports"))
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    for i in 0..ports_len {
        let requested = svc["spec"]["ports"][i]
            .get("nodePort")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let port = if requested != 0 {
            let ok = requested >= i64::from(lo) && requested <= i64::from(hi);
            let port = requested as u16;
            if !ok || !reserve_port(store, port, ns, name).await? {
                release_ports(store, &taken).await;
                let detail = if ok {
                    "provided port is already allocated".to_string()
                } else {
                    format!("provided port is not in the valid range. The range of valid ports is {lo}-{hi}")
                };
                return Err(invalid(
                    name,
                    vec![Cause::invalid(
                        format!("spec.ports[{i}].nodePort"),
                        &json!(requested),
                        &detail,
                    )],
                ));
            }
            port
        } else {
            let start = random_u32() % span;
            let mut found = None;
            for k in 0..span {
                let port = lo + ((start + k) % span) as u16;
                if reserve_port(store, port, ns, name).await? {
                    found = Some(port);
                    break;
                }
            }
            match found {
                Some(p) => p,
                None => {
                    release_ports(store, &taken).await;
                    return Err(invalid(
                        name,
                        vec![Cause::invalid(
                            format!("spec.ports[{i}].nodePort"),
                            &json!(0),
                            "failed to allocate a nodePort: range is full",
                        )],
                    ));
                }
            }
        };
        taken.push(port);
        svc["spec"]["ports"][i]["nodePort"] = json!(port);
    }
    Ok(())
}

async fn release_ports(store: &Store, ports: &[u16]) {
    for p in ports {
        let _ = store.delete(&format!("{NODEPORT_PREFIX}{p}"), None).await;
    }
}

/// Releases what a removed Service held.
pub async fn release(store: &Store, svc: &Value) {
    let spec = svc.get("spec");
    let ips: Vec<String> = spec
        .and_then(|s| s.get("clusterIPs"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    for ip in ips.iter().filter(|ip| ip.parse::<Ipv4Addr>().is_ok()) {
        let _ = store.delete(&format!("{IPADDRESS_PREFIX}{ip}"), None).await;
    }
    let ports: Vec<u16> = spec
        .and_then(|s| s.get("ports"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|p| p.get("nodePort").and_then(Value::as_u64))
                .filter_map(|p| u16::try_from(p).ok())
                .collect()
        })
        .unwrap_or_default();
    release_ports(store, &ports).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let r = ServiceRanges::parse("10.43.0.0/16", "30000-32767").unwrap();
        assert_eq!(r.first(), Ipv4Addr::new(10, 43, 0, 1));
        assert!(r.contains(Ipv4Addr::new(10, 43, 200, 7)));
        assert!(!r.contains(Ipv4Addr::new(10, 44, 0, 1)));
        assert!(!r.contains(Ipv4Addr::new(10, 43, 0, 0)));
        assert!(ServiceRanges::parse("nope", "1-2").is_err());
        assert!(ServiceRanges::parse("10.0.0.0/16", "5-1").is_err());
    }

    #[tokio::test]
    async fn allocations_are_unique_and_released() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Default::default()).unwrap();
        let r = ServiceRanges::parse("10.43.0.0/29", "30000-30001").unwrap();
        let mut seen = std::collections::HashSet::new();
        let mut svcs = Vec::new();
        for i in 0..5 {
            let mut s = json!({"spec": {"type": "ClusterIP", "ports": [{"port": 80}]}});
            allocate(&store, &r, &mut s, "ns", &format!("s{i}"))
                .await
                .unwrap();
            assert!(seen.insert(s["spec"]["clusterIP"].as_str().unwrap().to_string()));
            svcs.push(s);
        }
        let mut full = json!({"spec": {"ports": [{"port": 80}]}});
        assert_eq!(
            allocate(&store, &r, &mut full, "ns", "full")
                .await
                .unwrap_err()
                .code,
            422
        );
        release(&store, &svcs[0]).await;
        allocate(&store, &r, &mut full, "ns", "full").await.unwrap();
        assert_eq!(full["spec"]["clusterIP"], svcs[0]["spec"]["clusterIP"]);
        let mut np = json!({"spec": {"type": "NodePort", "ports": [{"port": 80}, {"port": 81}]}});
        release(&store, &svcs[1]).await;
        allocate(&store, &r, &mut np, "ns", "np").await.unwrap();
        let mut np2 = json!({"spec": {"type": "NodePort", "clusterIP": "None", "ports": [{"port": 80, "nodePort": 30000}]}});
        assert_eq!(
            allocate(&store, &r, &mut np2, "ns", "np2")
                .await
                .unwrap_err()
                .code,
            422
        );
    }
}
