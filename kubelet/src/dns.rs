//! The embedded cluster DNS server (what CoreDNS's `kubernetes` plugin does for a cluster).
//!
//! It listens on UDP and TCP port 53 of the pod bridge's gateway address (the first address of
//! `--pod-cidr`, which pods reach the host on) and answers from watch caches of Services,
//! EndpointSlices and Pods, following the Kubernetes DNS specification:
//!
//! - `<svc>.<ns>.svc.<domain>`: A/AAAA of the ClusterIPs; for a headless Service the ready
//!   endpoint addresses; an ExternalName Service is a CNAME;
//! - `<host>.<svc>.<ns>.svc.<domain>`: an endpoint of a headless Service by its hostname (or
//!   its dashed address);
//! - `_<port>._<proto>.<svc>.<ns>.svc.<domain>`: SRV records of a named port;
//! - `<a-b-c-d>.<ns>.pod.<domain>`: a pod by its (dashed) IP;
//! - PTR records of ClusterIPs, headless endpoints and pod IPs;
//! - any other name in the cluster domain is NXDOMAIN with the zone's SOA.
//!
//! Names outside the cluster domain (and reverse names of unknown addresses) are forwarded to
//! the host's resolvers under `--pod-egress=open`, and REFUSED under `--pod-egress=local`.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Resource};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;

use crate::{Error, IoContext, KubeletConfig, PodEgress, Result};

/// Time to live of every answer (CoreDNS's default for the kubernetes plugin).
const TTL: u32 = 5;
/// Largest answer sent over UDP (no EDNS): longer ones are truncated with TC set.
const UDP_MAX: usize = 512;

pub const TYPE_A: u16 = 1;
pub const TYPE_NS: u16 = 2;
pub const TYPE_CNAME: u16 = 5;
pub const TYPE_SOA: u16 = 6;
pub const TYPE_PTR: u16 = 12;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_SRV: u16 = 33;
pub const TYPE_ANY: u16 = 255;

pub const RCODE_NOERROR: u8 = 0;
pub const RCODE_FORMERR: u8 = 1;
pub const RCODE_SERVFAIL: u8 = 2;
pub const RCODE_NXDOMAIN: u8 = 3;
pub const RCODE_NOTIMP: u8 = 4;
pub const RCODE_REFUSED: u8 = 5;

/// The gateway address of a pod CIDR: its first host address, which the CNI bridge gets.
pub fn gateway_ip(pod_cidr: &str) -> Option<IpAddr> {
    let (net, bits) = pod_cidr.split_once('/')?;
    let bits: u32 = bits.parse().ok()?;
    match net.parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) if bits < 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            Some(IpAddr::V4(Ipv4Addr::from((u32::from(v4) & mask) + 1)))
        }
        IpAddr::V6(v6) if bits < 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            Some(IpAddr::V6(Ipv6Addr::from((u128::from(v6) & mask) + 1)))
        }
        _ => None,
    }
}

// ----- host resolv.conf -----

/// What a resolv.conf says.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ResolvConf {
    pub nameservers: Vec<IpAddr>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
}

impl ResolvConf {
    pub fn parse(text: &str) -> Self {
        let mut rc = Self::default();
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or_default();
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => {
                    // A scoped IPv6 address (`fe80::1%eth0`) is not usable from a pod.
                    if let Some(ip) = words.next().and_then(|w| w.parse().ok()) {
                        rc.nameservers.push(ip);
                    }
                }
                // The last `search` (or `domain`) line wins, as in glibc.
                Some("search") | Some("domain") => {
                    rc.searches = words.map(|w| w.trim_end_matches('.').to_string()).collect()
                }
                Some("options") => rc.options.extend(words.map(str::to_string)),
                _ => {}
            }
        }
        rc
    }

    /// The host's resolvers: `path`, or systemd-resolved's upstream list when `path` only
    /// names its local stub (127.0.0.53), as upstream's kubelet and k3s do.
    pub fn host(path: &Path) -> Self {
        let rc = Self::parse(&std::fs::read_to_string(path).unwrap_or_default());
        if !rc.nameservers.is_empty() && rc.nameservers.iter().all(|ip| ip.is_loopback()) {
            let resolved = Path::new("/run/systemd/resolve/resolv.conf");
            if let Ok(text) = std::fs::read_to_string(resolved) {
                let upstream = Self::parse(&text);
                if !upstream.nameservers.is_empty() {
                    return Self {
                        nameservers: upstream.nameservers,
                        ..rc
                    };
                }
            }
        }
        rc
    }
}

// ----- records -----

/// Data of one resource record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Cname(String),
    Ptr(String),
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: String,
    },
    Soa {
        mname: String,
        rname: String,
        serial: u32,
        refresh: u32,
        retry: u32,
        expire: u32,
        minimum: u32,
    },
}

impl RData {
    pub fn rtype(&self) -> u16 {
        match self {
            RData::A(_) => TYPE_A,
            RData::Aaaa(_) => TYPE_AAAA,
            RData::Cname(_) => TYPE_CNAME,
            RData::Ptr(_) => TYPE_PTR,
            RData::Srv { .. } => TYPE_SRV,
            RData::Soa { .. } => TYPE_SOA,
        }
    }

    fn ip(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => RData::A(v4),
            IpAddr::V6(v6) => RData::Aaaa(v6),
        }
    }
}

/// One resource record (class IN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Lower case, without the trailing dot.
    pub name: String,
    pub ttl: u32,
    pub data: RData,
}

/// What the cluster says about a question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// NOERROR; no records means NODATA (the SOA goes in the authority section).
    Answer(Vec<Record>),
    /// The name does not exist in the cluster domain.
    NxDomain,
    /// Not ours: forward or refuse.
    NotInZone,
}

/// A consistent view of the cluster objects the answers come from.
#[derive(Default)]
pub struct Cluster {
    pub services: Vec<Arc<Service>>,
    pub slices: Vec<Arc<EndpointSlice>>,
    pub pods: Vec<Arc<Pod>>,
}

fn is_ipv4_family(ip: &IpAddr) -> bool {
    matches!(ip, IpAddr::V4(_))
}

/// Whether a record of `data` answers a question of type `qtype`.
fn wanted(qtype: u16, data: &RData) -> bool {
    qtype == TYPE_ANY || data.rtype() == qtype
}

/// The dashed form of an address as a DNS label (`10-42-0-5`, `fd00--1`).
fn dashed(ip: &IpAddr) -> String {
    ip.to_string().replace(['.', ':'], "-")
}

fn undash(label: &str) -> Option<IpAddr> {
    label
        .replace('-', ".")
        .parse::<Ipv4Addr>()
        .map(IpAddr::V4)
        .ok()
        .or_else(|| {
            label
                .replace('-', ":")
                .parse::<Ipv6Addr>()
                .ok()
                .map(IpAddr::V6)
        })
}

/// A ready endpoint of a Service (EndpointSlice `conditions.ready` unset counts as ready).
struct Endpoint {
    ip: IpAddr,
    hostname: Option<String>,
    /// (name, protocol, port) of the slice.
    ports: Vec<(String, String, u16)>,
}

impl Cluster {
    fn service(&self, ns: &str, name: &str) -> Option<&Service> {
        self.services
            .iter()
            .find(|s| {
                s.metadata.namespace.as_deref() == Some(ns)
                    && s.metadata.name.as_deref() == Some(name)
            })
            .map(Arc::as_ref)
    }

    fn endpoints(&self, ns: &str, svc: &str) -> Vec<Endpoint> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        for slice in &self.slices {
            let m = &slice.metadata;
            let owned = m.namespace.as_deref() == Some(ns)
                && m.labels
                    .as_ref()
                    .and_then(|l| l.get("kubernetes.io/service-name"))
                    .map(String::as_str)
                    == Some(svc);
            if !owned {
                continue;
            }
            let ports: Vec<(String, String, u16)> = slice
                .ports
                .iter()
                .flatten()
                .filter_map(|p| {
                    Some((
                        p.name.clone().unwrap_or_default(),
                        p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                        u16::try_from(p.port?).ok()?,
                    ))
                })
                .collect();
            for e in slice.endpoints.iter().flatten() {
                let ready = e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
                if !ready {
                    continue;
                }
                for ip in e.addresses.iter().filter_map(|a| a.parse::<IpAddr>().ok()) {
                    if seen.insert((ip, e.hostname.clone())) {
                        out.push(Endpoint {
                            ip,
                            hostname: e.hostname.clone(),
                            ports: ports.clone(),
                        });
                    }
                }
            }
        }
        out
    }

    /// Answers a question about `qname` (any case, trailing dot optional) in `domain`.
    pub fn resolve(&self, domain: &str, qname: &str, qtype: u16) -> Resolution {
        let qname = qname.trim_end_matches('.').to_ascii_lowercase();
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        if let Some(ip) = reverse_ip(&qname) {
            return self.reverse(&domain, &qname, ip, qtype);
        }
        let rest = if qname == domain {
            ""
        } else if let Some(r) = qname.strip_suffix(&format!(".{domain}")) {
            r
        } else {
            return Resolution::NotInZone;
        };
        let labels: Vec<&str> = if rest.is_empty() {
            vec![]
        } else {
            rest.split('.').collect()
        };
        let record = |data: RData| Record {
            name: qname.clone(),
            ttl: TTL,
            data,
        };
        let answer = |datas: Vec<RData>| {
            Resolution::Answer(
                datas
                    .into_iter()
                    .filter(|d| wanted(qtype, d))
                    .map(record)
                    .collect(),
            )
        };
        match labels.as_slice() {
            // The zone apex and the `svc`/`pod` subtrees exist (empty non-terminals).
            [] => answer(if qtype == TYPE_SOA {
                vec![soa(&domain).data]
            } else {
                vec![]
            }),
            ["svc"] | ["pod"] => answer(vec![]),
            [ns, "svc"] | [ns, "pod"] => {
                let exists = self
                    .services
                    .iter()
                    .any(|s| s.metadata.namespace.as_deref() == Some(*ns))
                    || self
                        .pods
                        .iter()
                        .any(|p| p.metadata.namespace.as_deref() == Some(*ns));
                if exists {
                    answer(vec![])
                } else {
                    Resolution::NxDomain
                }
            }
            [name, ns, "svc"] => {
                let Some(svc) = self.service(ns, name) else {
                    return Resolution::NxDomain;
                };
                let spec = svc.spec.clone().unwrap_or_default();
                if spec.type_.as_deref() == Some("ExternalName") {
                    let target = spec.external_name.unwrap_or_default();
                    return Resolution::Answer(vec![record(RData::Cname(
                        target.trim_end_matches('.').to_ascii_lowercase(),
                    ))]);
                }
                let fqdn = format!("{name}.{ns}.svc.{domain}");
                let mut datas: Vec<RData> = self.service_ips(svc, ns, name);
                // SRV at the bare name: one per named port, as CoreDNS.
                for p in spec.ports.iter().flatten() {
                    if p.name.as_deref().is_some_and(|n| !n.is_empty()) {
                        datas.push(RData::Srv {
                            priority: 0,
                            weight: 100,
                            port: u16::try_from(p.port).unwrap_or(0),
                            target: fqdn.clone(),
                        });
                    }
                }
                answer(datas)
            }
            [host, name, ns, "svc"] if !host.starts_with('_') => {
                // Endpoint names exist only under headless Services, as in CoreDNS.
                let headless = self
                    .service(ns, name)
                    .is_some_and(|s| s.spec.as_ref().is_some_and(is_headless));
                if !headless {
                    return Resolution::NxDomain;
                }
                let ips: Vec<RData> = self
                    .endpoints(ns, name)
                    .into_iter()
                    .filter(|e| match &e.hostname {
                        Some(h) => h.eq_ignore_ascii_case(host),
                        None => dashed(&e.ip) == *host,
                    })
                    .map(|e| RData::ip(e.ip))
                    .collect();
                if ips.is_empty() {
                    Resolution::NxDomain
                } else {
                    answer(ips)
                }
            }
            [port, proto, name, ns, "svc"] if port.starts_with('_') && proto.starts_with('_') => {
                let (port, proto) = (&port[1..], &proto[1..]);
                let Some(svc) = self.service(ns, name) else {
                    return Resolution::NxDomain;
                };
                let spec = svc.spec.clone().unwrap_or_default();
                let matches = |pname: &str, pproto: &str| {
                    pname.eq_ignore_ascii_case(port) && pproto.eq_ignore_ascii_case(proto)
                };
                let fqdn = format!("{name}.{ns}.svc.{domain}");
                let mut srvs = Vec::new();
                if is_headless(&spec) {
                    for e in self.endpoints(ns, name) {
                        let host = e.hostname.clone().unwrap_or_else(|| dashed(&e.ip));
                        for (pname, pproto, pport) in &e.ports {
                            if matches(pname, pproto) {
                                srvs.push(RData::Srv {
                                    priority: 0,
                                    weight: 100,
                                    port: *pport,
                                    target: format!("{host}.{fqdn}"),
                                });
                            }
                        }
                    }
                } else if spec.type_.as_deref() != Some("ExternalName") {
                    for p in spec.ports.iter().flatten() {
                        let pproto = p.protocol.as_deref().unwrap_or("TCP");
                        if matches(p.name.as_deref().unwrap_or_default(), pproto) {
                            srvs.push(RData::Srv {
                                priority: 0,
                                weight: 100,
                                port: u16::try_from(p.port).unwrap_or(0),
                                target: fqdn.clone(),
                            });
                        }
                    }
                }
                if srvs.is_empty() {
                    Resolution::NxDomain
                } else {
                    answer(srvs)
                }
            }
            [dashed_ip, ns, "pod"] => match undash(dashed_ip) {
                Some(ip)
                    if self
                        .pod_by_ip(ip)
                        .is_some_and(|p| p.metadata.namespace.as_deref() == Some(*ns)) =>
                {
                    answer(vec![RData::ip(ip)])
                }
                _ => Resolution::NxDomain,
            },
            _ => Resolution::NxDomain,
        }
    }

    /// A/AAAA data of a Service: its ClusterIPs, or its ready endpoints when headless.
    fn service_ips(&self, svc: &Service, ns: &str, name: &str) -> Vec<RData> {
        let spec = svc.spec.clone().unwrap_or_default();
        if is_headless(&spec) {
            let ips: BTreeSet<IpAddr> = self.endpoints(ns, name).iter().map(|e| e.ip).collect();
            return ips.into_iter().map(RData::ip).collect();
        }
        let mut ips: Vec<IpAddr> = spec
            .cluster_ips
            .iter()
            .flatten()
            .filter_map(|ip| ip.parse().ok())
            .collect();
        if ips.is_empty() {
            ips.extend(spec.cluster_ip.and_then(|ip| ip.parse::<IpAddr>().ok()));
        }
        ips.sort_by_key(|ip| !is_ipv4_family(ip));
        ips.into_iter().map(RData::ip).collect()
    }

    fn pod_by_ip(&self, ip: IpAddr) -> Option<&Pod> {
        self.pods
            .iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.host_network) != Some(true))
            .find(|p| {
                p.status.as_ref().is_some_and(|s| {
                    s.pod_ips
                        .iter()
                        .flatten()
                        .any(|i| i.ip.parse::<IpAddr>().ok() == Some(ip))
                        || s.pod_ip.as_deref().and_then(|i| i.parse().ok()) == Some(ip)
                })
            })
            .map(Arc::as_ref)
    }

    /// PTR of a ClusterIP, a headless endpoint with a hostname, or a pod IP; unknown addresses
    /// are not ours (forwarded or refused).
    fn reverse(&self, domain: &str, qname: &str, ip: IpAddr, qtype: u16) -> Resolution {
        let mut target = None;
        for svc in &self.services {
            let (Some(ns), Some(name)) = (&svc.metadata.namespace, &svc.metadata.name) else {
                continue;
            };
            let spec = svc.spec.clone().unwrap_or_default();
            if is_headless(&spec) {
                if let Some(e) = self.endpoints(ns, name).into_iter().find(|e| e.ip == ip) {
                    let host = e.hostname.unwrap_or_else(|| dashed(&ip));
                    target = Some(format!("{host}.{name}.{ns}.svc.{domain}"));
                    break;
                }
            } else if self.service_ips(svc, ns, name).contains(&RData::ip(ip)) {
                target = Some(format!("{name}.{ns}.svc.{domain}"));
                break;
            }
        }
        if target.is_none() {
            if let Some(ns) = self
                .pod_by_ip(ip)
                .and_then(|p| p.metadata.namespace.clone())
            {
                target = Some(format!("{}.{ns}.pod.{domain}", dashed(&ip)));
            }
        }
        match target {
            None => Resolution::NotInZone,
            Some(t) => Resolution::Answer(
                Some(RData::Ptr(t))
                    .filter(|d| wanted(qtype, d))
                    .map(|data| Record {
                        name: qname.to_string(),
                        ttl: TTL,
                        data,
                    })
                    .into_iter()
                    .collect(),
            ),
        }
    }
}

fn is_headless(spec: &k8s_openapi::api::core::v1::ServiceSpec) -> bool {
    spec.cluster_ip.as_deref() == Some("None") && spec.type_.as_deref() != Some("ExternalName")
}

/// The address of a reverse name (`4.3.2.1.in-addr.arpa`, 32 nibbles `.ip6.arpa`).
fn reverse_ip(qname: &str) -> Option<IpAddr> {
    if let Some(rest) = qname.strip_suffix(".in-addr.arpa") {
        let octets: Vec<u8> = rest
            .split('.')
            .rev()
            .map(|o| o.parse().ok())
            .collect::<Option<_>>()?;
        let octets: [u8; 4] = octets.try_into().ok()?;
        return Some(IpAddr::V4(Ipv4Addr::from(octets)));
    }
    let rest = qname.strip_suffix(".ip6.arpa")?;
    let nibbles: Vec<u32> = rest
        .split('.')
        .rev()
        .map(|n| {
            (n.len() == 1)
                .then(|| n.chars().next()?.to_digit(16))
                .flatten()
        })
        .collect::<Option<_>>()?;
    if nibbles.len() != 32 {
        return None;
    }
    let value = nibbles
        .iter()
        .fold(0u128, |acc, n| (acc << 4) | u128::from(*n));
    Some(IpAddr::V6(Ipv6Addr::from(value)))
}

/// The SOA of the cluster zone (as CoreDNS writes it).
pub fn soa(domain: &str) -> Record {
    Record {
        name: domain.to_string(),
        ttl: TTL,
        data: RData::Soa {
            mname: format!("ns.dns.{domain}"),
            rname: format!("hostmaster.{domain}"),
            serial: 1,
            refresh: 7200,
            retry: 1800,
            expire: 86400,
            minimum: TTL,
        },
    }
}

// ----- wire format -----

/// A parsed query: header fields and its single question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub id: u16,
    pub opcode: u8,
    pub recursion_desired: bool,
    pub name: String,
    pub qtype: u16,
    pub qclass: u16,
}

/// Why a message cannot be answered: the header to echo (if it was readable) and the rcode.
#[derive(Debug)]
pub struct BadQuery {
    pub id: Option<u16>,
    pub rcode: u8,
}

/// Reads a (possibly compressed) name at `pos`; returns it and the position after it.
fn read_name(msg: &[u8], mut pos: usize) -> Option<(String, usize)> {
    let mut labels: Vec<String> = Vec::new();
    let mut end = None;
    let mut jumps = 0;
    let mut total = 0;
    loop {
        let len = *msg.get(pos)? as usize;
        if len == 0 {
            end.get_or_insert(pos + 1);
            break;
        }
        match len & 0xC0 {
            0xC0 => {
                let low = *msg.get(pos + 1)? as usize;
                end.get_or_insert(pos + 2);
                jumps += 1;
                if jumps > 16 {
                    return None;
                }
                pos = ((len & 0x3F) << 8) | low;
            }
            0 => {
                let label = msg.get(pos + 1..pos + 1 + len)?;
                total += len + 1;
                if total > 255 {
                    return None;
                }
                labels.push(String::from_utf8_lossy(label).into_owned());
                pos += 1 + len;
            }
            _ => return None,
        }
    }
    Some((labels.join("."), end?))
}

pub fn parse_query(msg: &[u8]) -> Result<Query, BadQuery> {
    let bad = |id, rcode| BadQuery { id, rcode };
    if msg.len() < 12 {
        return Err(bad(None, RCODE_FORMERR));
    }
    let id = u16::from_be_bytes([msg[0], msg[1]]);
    let flags = u16::from_be_bytes([msg[2], msg[3]]);
    if flags & 0x8000 != 0 {
        // A response: never answer it (no reflection loops).
        return Err(bad(None, RCODE_FORMERR));
    }
    let opcode = ((flags >> 11) & 0xF) as u8;
    if opcode != 0 {
        return Err(bad(Some(id), RCODE_NOTIMP));
    }
    let qdcount = u16::from_be_bytes([msg[4], msg[5]]);
    if qdcount != 1 {
        return Err(bad(Some(id), RCODE_FORMERR));
    }
    let (name, pos) = read_name(msg, 12).ok_or(bad(Some(id), RCODE_FORMERR))?;
    let fixed = msg.get(pos..pos + 4).ok_or(bad(Some(id), RCODE_FORMERR))?;
    Ok(Query {
        id,
        opcode,
        recursion_desired: flags & 0x0100 != 0,
        name,
        qtype: u16::from_be_bytes([fixed[0], fixed[1]]),
        qclass: u16::from_be_bytes([fixed[2], fixed[3]]),
    })
}

fn write_name(out: &mut Vec<u8>, name: &str) -> Option<()> {
    let name = name.trim_end_matches('.');
    let start = out.len();
    if !name.is_empty() {
        for label in name.split('.') {
            if label.is_empty() || label.len() > 63 {
                return None;
            }
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
    }
    out.push(0);
    (out.len() - start <= 255).then_some(())
}

fn write_record(out: &mut Vec<u8>, r: &Record) -> Option<()> {
    write_name(out, &r.name)?;
    out.extend_from_slice(&r.data.rtype().to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&r.ttl.to_be_bytes());
    let len_at = out.len();
    out.extend_from_slice(&[0, 0]);
    match &r.data {
        RData::A(ip) => out.extend_from_slice(&ip.octets()),
        RData::Aaaa(ip) => out.extend_from_slice(&ip.octets()),
        RData::Cname(n) | RData::Ptr(n) => write_name(out, n)?,
        RData::Srv {
            priority,
            weight,
            port,
            target,
        } => {
            for v in [priority, weight, port] {
                out.extend_from_slice(&v.to_be_bytes());
            }
            write_name(out, target)?;
        }
        RData::Soa {
            mname,
            rname,
            serial,
            refresh,
            retry,
            expire,
            minimum,
        } => {
            write_name(out, mname)?;
            write_name(out, rname)?;
            for v in [serial, refresh, retry, expire, minimum] {
                out.extend_from_slice(&v.to_be_bytes());
            }
        }
    }
    let rdlen = u16::try_from(out.len() - len_at - 2).ok()?;
    out[len_at..len_at + 2].copy_from_slice(&rdlen.to_be_bytes());
    Some(())
}

/// A response message.
#[derive(Debug, Clone)]
pub struct Response {
    pub id: u16,
    pub recursion_desired: bool,
    pub recursion_available: bool,
    pub authoritative: bool,
    pub rcode: u8,
    /// (name, type, class) echoed from the query.
    pub question: Option<(String, u16, u16)>,
    pub answers: Vec<Record>,
    pub authority: Vec<Record>,
}

impl Response {
    /// The wire form, truncated (TC set, records dropped) to fit `limit` bytes.
    pub fn encode(&self, limit: usize) -> Vec<u8> {
        let head = |tc: bool, an: usize, ns: usize| {
            let mut flags: u16 = 0x8000;
            flags |= u16::from(self.authoritative) << 10;
            flags |= u16::from(tc) << 9;
            flags |= u16::from(self.recursion_desired) << 8;
            flags |= u16::from(self.recursion_available) << 7;
            flags |= u16::from(self.rcode & 0xF);
            let mut out = Vec::with_capacity(512);
            out.extend_from_slice(&self.id.to_be_bytes());
            out.extend_from_slice(&flags.to_be_bytes());
            for count in [usize::from(self.question.is_some()), an, ns, 0] {
                out.extend_from_slice(&(count as u16).to_be_bytes());
            }
            out
        };
        let build = |tc: bool, answers: &[Record], authority: &[Record]| -> Option<Vec<u8>> {
            let mut out = head(tc, answers.len(), authority.len());
            if let Some((name, qtype, qclass)) = &self.question {
                write_name(&mut out, name)?;
                out.extend_from_slice(&qtype.to_be_bytes());
                out.extend_from_slice(&qclass.to_be_bytes());
            }
            for r in answers.iter().chain(authority) {
                write_record(&mut out, r)?;
            }
            Some(out)
        };
        match build(false, &self.answers, &self.authority) {
            Some(out) if out.len() <= limit => out,
            Some(_) => {
                // Keep as many answers as fit; the client retries over TCP.
                let mut n = self.answers.len();
                while n > 0 {
                    n -= 1;
                    if let Some(out) = build(true, &self.answers[..n], &[]) {
                        if out.len() <= limit {
                            return out;
                        }
                    }
                }
                head(true, 0, 0)
            }
            None => {
                let mut failed = self.clone();
                failed.rcode = RCODE_SERVFAIL;
                failed.answers.clear();
                failed.authority.clear();
                failed.question = None;
                head_only(&failed)
            }
        }
    }
}

fn head_only(r: &Response) -> Vec<u8> {
    let mut flags: u16 = 0x8000 | u16::from(r.rcode & 0xF);
    flags |= u16::from(r.recursion_desired) << 8;
    let mut out = r.id.to_be_bytes().to_vec();
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&[0; 8]);
    out
}

// ----- the server -----

/// Where names outside the cluster go.
#[derive(Debug, Clone)]
pub enum Upstream {
    /// `--pod-egress=local`: REFUSED.
    Refuse,
    /// `--pod-egress=open`: these resolvers (UDP port 53).
    Forward(Vec<SocketAddr>),
}

/// The answer to a query from the cluster view, or `None` when it is not ours.
pub fn answer_local(cluster: &Cluster, domain: &str, q: &Query) -> Option<Response> {
    let mut resp = Response {
        id: q.id,
        recursion_desired: q.recursion_desired,
        recursion_available: false,
        authoritative: true,
        rcode: RCODE_NOERROR,
        question: Some((q.name.clone(), q.qtype, q.qclass)),
        answers: vec![],
        authority: vec![],
    };
    if q.qclass != 1 && q.qclass != 255 {
        return None;
    }
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    match cluster.resolve(&domain, &q.name, q.qtype) {
        Resolution::NotInZone => return None,
        Resolution::NxDomain => {
            resp.rcode = RCODE_NXDOMAIN;
            resp.authority.push(soa(&domain));
        }
        Resolution::Answer(records) => {
            if records.is_empty() && !q.name.ends_with(".arpa") {
                resp.authority.push(soa(&domain));
            }
            resp.answers = records;
        }
    }
    Some(resp)
}

struct Server {
    domain: String,
    upstream: Upstream,
    services: Store<Service>,
    slices: Store<EndpointSlice>,
    pods: Store<Pod>,
}

impl Server {
    fn cluster(&self) -> Cluster {
        Cluster {
            services: self.services.state(),
            slices: self.slices.state(),
            pods: self.pods.state(),
        }
    }

    /// The response to one message (`None`: drop it), at most `limit` bytes.
    async fn handle(&self, msg: &[u8], limit: usize) -> Option<Vec<u8>> {
        let q = match parse_query(msg) {
            Ok(q) => q,
            Err(BadQuery {
                id: Some(id),
                rcode,
            }) => {
                return Some(head_only(&Response {
                    id,
                    recursion_desired: false,
                    recursion_available: false,
                    authoritative: false,
                    rcode,
                    question: None,
                    answers: vec![],
                    authority: vec![],
                }))
            }
            Err(_) => return None,
        };
        if let Some(resp) = answer_local(&self.cluster(), &self.domain, &q) {
            return Some(resp.encode(limit));
        }
        let refuse = |rcode| {
            Response {
                id: q.id,
                recursion_desired: q.recursion_desired,
                recursion_available: matches!(self.upstream, Upstream::Forward(_)),
                authoritative: false,
                rcode,
                question: Some((q.name.clone(), q.qtype, q.qclass)),
                answers: vec![],
                authority: vec![],
            }
            .encode(limit)
        };
        match &self.upstream {
            Upstream::Refuse => Some(refuse(RCODE_REFUSED)),
            Upstream::Forward(servers) => match forward(servers, msg).await {
                Some(reply) if reply.len() <= limit => Some(reply),
                // Too long for the client's UDP: let it retry over TCP.
                Some(_) => {
                    let mut tc = refuse(RCODE_NOERROR);
                    if tc.len() > 3 {
                        tc[2] |= 0x02;
                    }
                    Some(tc)
                }
                None => Some(refuse(RCODE_SERVFAIL)),
            },
        }
    }
}

/// Sends the query to each upstream in turn (UDP, 2 s each) and returns the first reply.
async fn forward(servers: &[SocketAddr], msg: &[u8]) -> Option<Vec<u8>> {
    for server in servers {
        let bind: SocketAddr = if server.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let Ok(sock) = UdpSocket::bind(bind).await else {
            continue;
        };
        if sock.connect(server).await.is_err() || sock.send(msg).await.is_err() {
            continue;
        }
        let mut buf = vec![0u8; 65535];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(2), sock.recv(&mut buf)).await {
            buf.truncate(n);
            if buf.get(..2) == msg.get(..2) {
                return Some(buf);
            }
        }
    }
    None
}

/// A socket bound to `addr` with IP_FREEBIND, so it can bind the gateway address before the
/// CNI plugin has created the bridge that carries it.
fn freebind_socket(addr: SocketAddr, kind: libc::c_int) -> std::io::Result<OwnedFd> {
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain socket(2); the descriptor is owned right away.
    let fd = unsafe { libc::socket(family, kind | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor nobody else owns.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let one: libc::c_int = 1;
    let (level, opt) = if addr.is_ipv4() {
        (libc::SOL_IP, libc::IP_FREEBIND)
    } else {
        (libc::SOL_IPV6, libc::IPV6_FREEBIND)
    };
    for (level, opt) in [(level, opt), (libc::SOL_SOCKET, libc::SO_REUSEADDR)] {
        // SAFETY: setsockopt with a pointer to a live c_int and its size.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                level,
                opt,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    let rc = match addr {
        SocketAddr::V4(a) => {
            let sa = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: bind with a valid sockaddr_in and its size.
            unsafe {
                libc::bind(
                    fd,
                    (&sa as *const libc::sockaddr_in).cast(),
                    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                )
            }
        }
        SocketAddr::V6(a) => {
            let sa = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: 0,
            };
            // SAFETY: bind with a valid sockaddr_in6 and its size.
            unsafe {
                libc::bind(
                    fd,
                    (&sa as *const libc::sockaddr_in6).cast(),
                    std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
                )
            }
        }
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if kind == libc::SOCK_STREAM {
        // SAFETY: listen(2) on our bound socket.
        if unsafe { libc::listen(fd, 128) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(owned)
}

/// A reflector-backed cache of `K`, fed until `shutdown`.
fn cache<K>(api: Api<K>, shutdown: CancellationToken) -> Store<K>
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher(api, watcher::Config::default()))
        .default_backoff()
        .applied_objects();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                item = stream.next() => match item {
                    Some(Ok(_)) => {}
                    Some(Err(e)) => tracing::debug!(error = %e, "dns watch error (retrying)"),
                    None => return,
                },
            }
        }
    });
    reader
}

/// Where `config` says the DNS server listens: the gateway of the pod CIDR, port 53.
pub fn listen_addr(config: &KubeletConfig) -> Option<SocketAddr> {
    gateway_ip(&config.pod_cidr).map(|ip| SocketAddr::new(ip, 53))
}

/// Starts the DNS server (UDP and TCP) until `shutdown`.
pub async fn start(
    client: kube::Client,
    config: &KubeletConfig,
    shutdown: CancellationToken,
) -> Result<()> {
    let addr = listen_addr(config)
        .ok_or_else(|| Error::Other(format!("pod CIDR {:?} has no gateway", config.pod_cidr)))?;
    let hint = || format!("binding the cluster DNS to {addr} (or pass --embedded-dns=false)");
    let udp = freebind_socket(addr, libc::SOCK_DGRAM).context(hint)?;
    let udp = UdpSocket::from_std(std::net::UdpSocket::from(udp)).context(hint)?;
    let tcp = freebind_socket(addr, libc::SOCK_STREAM).context(hint)?;
    let tcp = TcpListener::from_std(std::net::TcpListener::from(tcp)).context(hint)?;
    let upstream = match config.pod_egress {
        PodEgress::Local => Upstream::Refuse,
        PodEgress::Open => Upstream::Forward(
            ResolvConf::parse(&std::fs::read_to_string(&config.resolv_conf).unwrap_or_default())
                .nameservers
                .into_iter()
                .filter(|ip| *ip != addr.ip())
                .map(|ip| SocketAddr::new(ip, 53))
                .collect(),
        ),
    };
    let server = Arc::new(Server {
        domain: config
            .cluster_domain
            .trim_end_matches('.')
            .to_ascii_lowercase(),
        upstream,
        services: cache(Api::all(client.clone()), shutdown.clone()),
        slices: cache(Api::all(client.clone()), shutdown.clone()),
        pods: cache(Api::all(client), shutdown.clone()),
    });
    tracing::info!(%addr, domain = %server.domain, upstream = ?server.upstream, "cluster DNS listening");
    let udp = Arc::new(udp);
    tokio::spawn(serve_udp(udp, server.clone(), shutdown.clone()));
    tokio::spawn(serve_tcp(tcp, server, shutdown));
    Ok(())
}

async fn serve_udp(sock: Arc<UdpSocket>, server: Arc<Server>, shutdown: CancellationToken) {
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = sock.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(error = %e, "dns udp receive");
                    continue;
                }
            },
        };
        let msg = buf[..n].to_vec();
        let (sock, server) = (sock.clone(), server.clone());
        tokio::spawn(async move {
            if let Some(reply) = server.handle(&msg, UDP_MAX).await {
                let _ = sock.send_to(&reply, peer).await;
            }
        });
    }
}

async fn serve_tcp(listener: TcpListener, server: Arc<Server>, shutdown: CancellationToken) {
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::debug!(error = %e, "dns tcp accept");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let server = server.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = serve_conn(stream, &server) => {}
            }
        });
    }
}

/// Length-prefixed messages on one connection, closed after 10 s idle.
async fn serve_conn(mut stream: TcpStream, server: &Server) -> std::io::Result<()> {
    loop {
        let mut len = [0u8; 2];
        match tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut len)).await {
            Ok(Ok(_)) => {}
            _ => return Ok(()),
        }
        let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
        tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut msg))
            .await
            .map_err(|_| std::io::ErrorKind::TimedOut)??;
        let Some(reply) = server.handle(&msg, usize::from(u16::MAX)).await else {
            return Ok(());
        };
        let reply_len = u16::try_from(reply.len()).unwrap_or(u16::MAX);
        stream.write_all(&reply_len.to_be_bytes()).await?;
        stream.write_all(&reply[..usize::from(reply_len)]).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Arc<T> {
        Arc::new(serde_json::from_value(v).expect("valid object"))
    }

    fn cluster() -> Cluster {
        Cluster {
            services: vec![
                obj(json!({"metadata": {"name": "web", "namespace": "shop"},
                    "spec": {"clusterIP": "10.43.0.10", "clusterIPs": ["10.43.0.10"],
                             "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}})),
                obj(
                    json!({"metadata": {"name": "kubernetes", "namespace": "default"},
                    "spec": {"clusterIP": "10.43.0.1", "ports": [{"name": "https", "port": 443}]}}),
                ),
                obj(json!({"metadata": {"name": "db", "namespace": "shop"},
                    "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}})),
                obj(json!({"metadata": {"name": "ext", "namespace": "shop"},
                    "spec": {"type": "ExternalName", "externalName": "Example.COM."}})),
                obj(json!({"metadata": {"name": "dual", "namespace": "shop"},
                    "spec": {"clusterIP": "fd00::10", "clusterIPs": ["fd00::10", "10.43.0.20"]}})),
            ],
            slices: vec![obj(json!({
            "metadata": {"name": "db-abc", "namespace": "shop",
                         "labels": {"kubernetes.io/service-name": "db"}},
            "addressType": "IPv4",
            "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
            "endpoints": [
                {"addresses": ["10.42.0.5"], "hostname": "db-0", "conditions": {"ready": true}},
                {"addresses": ["10.42.0.6"]},
                {"addresses": ["10.42.0.7"], "hostname": "db-2", "conditions": {"ready": false}},
            ]}))],
            pods: vec![obj(json!({"metadata": {"name": "p", "namespace": "shop"},
                "status": {"podIP": "10.42.0.9", "podIPs": [{"ip": "10.42.0.9"}]}}))],
        }
    }

    fn datas(r: Resolution) -> Vec<RData> {
        match r {
            Resolution::Answer(rs) => rs.into_iter().map(|r| r.data).collect(),
            other => panic!("expected an answer, got {other:?}"),
        }
    }

    const D: &str = "cluster.local";

    #[test]
    fn services_resolve_to_cluster_ips_and_headless_to_ready_endpoints() {
        let c = cluster();
        let a = |ip: &str| RData::A(ip.parse().expect("ip"));
        assert_eq!(
            datas(c.resolve(D, "WEB.shop.svc.cluster.local.", TYPE_A)),
            vec![a("10.43.0.10")]
        );
        assert_eq!(
            datas(c.resolve(D, "kubernetes.default.svc.cluster.local", TYPE_A)),
            vec![a("10.43.0.1")]
        );
        assert_eq!(
            datas(c.resolve(D, "db.shop.svc.cluster.local", TYPE_A)),
            vec![a("10.42.0.5"), a("10.42.0.6")]
        );
        assert_eq!(
            datas(c.resolve(D, "db-0.db.shop.svc.cluster.local", TYPE_A)),
            vec![a("10.42.0.5")]
        );
        assert_eq!(
            datas(c.resolve(D, "10-42-0-6.db.shop.svc.cluster.local", TYPE_A)),
            vec![a("10.42.0.6")]
        );
        assert_eq!(
            c.resolve(D, "x.web.shop.svc.cluster.local", TYPE_A),
            Resolution::NxDomain
        );
        // Not ready: no record.
        assert_eq!(
            c.resolve(D, "db-2.db.shop.svc.cluster.local", TYPE_A),
            Resolution::NxDomain
        );
        // Dual stack: A and AAAA each get their family; an IPv4-only Service has no AAAA.
        assert_eq!(
            datas(c.resolve(D, "dual.shop.svc.cluster.local", TYPE_AAAA)),
            vec![RData::Aaaa("fd00::10".parse().expect("ip"))]
        );
        assert_eq!(
            datas(c.resolve(D, "dual.shop.svc.cluster.local", TYPE_A)),
            vec![a("10.43.0.20")]
        );
        assert_eq!(
            datas(c.resolve(D, "web.shop.svc.cluster.local", TYPE_AAAA)),
            vec![]
        );
    }

    #[test]
    fn srv_cname_ptr_pods_and_unknown_names() {
        let c = cluster();
        assert_eq!(
            datas(c.resolve(D, "_http._tcp.web.shop.svc.cluster.local", TYPE_SRV)),
            vec![RData::Srv {
                priority: 0,
                weight: 100,
                port: 80,
                target: "web.shop.svc.cluster.local".into()
            }]
        );
        let srv = datas(c.resolve(D, "_pg._tcp.db.shop.svc.cluster.local", TYPE_SRV));
        assert_eq!(srv.len(), 2, "{srv:?}");
        assert!(srv.contains(&RData::Srv {
            priority: 0,
            weight: 100,
            port: 5432,
            target: "db-0.db.shop.svc.cluster.local".into()
        }));
        assert_eq!(
            c.resolve(D, "_pg._udp.db.shop.svc.cluster.local", TYPE_SRV),
            Resolution::NxDomain
        );
        assert_eq!(
            datas(c.resolve(D, "ext.shop.svc.cluster.local", TYPE_A)),
            vec![RData::Cname("example.com".into())]
        );
        assert_eq!(
            datas(c.resolve(D, "10.0.43.10.in-addr.arpa", TYPE_PTR)),
            vec![RData::Ptr("web.shop.svc.cluster.local".into())]
        );
        assert_eq!(
            datas(c.resolve(D, "5.0.42.10.in-addr.arpa", TYPE_PTR)),
            vec![RData::Ptr("db-0.db.shop.svc.cluster.local".into())]
        );
        assert_eq!(
            datas(c.resolve(D, "9.0.42.10.in-addr.arpa", TYPE_PTR)),
            vec![RData::Ptr("10-42-0-9.shop.pod.cluster.local".into())]
        );
        assert_eq!(
            c.resolve(D, "8.8.8.8.in-addr.arpa", TYPE_PTR),
            Resolution::NotInZone
        );
        assert_eq!(
            datas(c.resolve(D, "10-42-0-9.shop.pod.cluster.local", TYPE_A)),
            vec![RData::A("10.42.0.9".parse().expect("ip"))]
        );
        assert_eq!(
            c.resolve(D, "10-42-0-9.other.pod.cluster.local", TYPE_A),
            Resolution::NxDomain
        );
        assert_eq!(
            c.resolve(D, "nosuch.shop.svc.cluster.local", TYPE_A),
            Resolution::NxDomain
        );
        assert_eq!(
            c.resolve(D, "a.b.c.cluster.local", TYPE_A),
            Resolution::NxDomain
        );
        assert_eq!(
            c.resolve(D, "nosuch.svc.cluster.local", TYPE_A),
            Resolution::NxDomain
        );
        assert_eq!(
            datas(c.resolve(D, "shop.svc.cluster.local", TYPE_A)),
            vec![]
        );
        assert_eq!(c.resolve(D, "example.com", TYPE_A), Resolution::NotInZone);
        assert_eq!(
            c.resolve(D, "web.shop.svc.cluster.local.example.com", TYPE_A),
            Resolution::NotInZone
        );
        assert!(matches!(
            datas(c.resolve(D, "cluster.local", TYPE_SOA)).as_slice(),
            [RData::Soa { .. }]
        ));
    }

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut msg = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        write_name(&mut msg, name).expect("name");
        msg.extend_from_slice(&qtype.to_be_bytes());
        msg.extend_from_slice(&1u16.to_be_bytes());
        msg
    }

    #[test]
    fn wire_round_trip_nxdomain_with_soa_and_truncation() {
        let c = cluster();
        let q = parse_query(&query("web.shop.svc.cluster.local", TYPE_A)).expect("query");
        assert_eq!((q.id, q.qtype, q.recursion_desired), (0x1234, TYPE_A, true));
        let resp = answer_local(&c, D, &q).expect("ours").encode(UDP_MAX);
        assert_eq!(&resp[..2], &[0x12, 0x34]);
        assert_eq!(resp[2] & 0x84, 0x84, "QR and AA");
        assert_eq!(resp[3] & 0x0F, RCODE_NOERROR);
        assert_eq!(u16::from_be_bytes([resp[6], resp[7]]), 1, "one answer");
        assert_eq!(&resp[resp.len() - 4..], &[10, 43, 0, 10]);

        let q = parse_query(&query("nosuch.shop.svc.cluster.local", TYPE_A)).expect("query");
        let resp = answer_local(&c, D, &q).expect("ours").encode(UDP_MAX);
        assert_eq!(resp[3] & 0x0F, RCODE_NXDOMAIN);
        assert_eq!(
            u16::from_be_bytes([resp[8], resp[9]]),
            1,
            "SOA in authority"
        );

        assert!(answer_local(
            &c,
            D,
            &parse_query(&query("example.com", TYPE_A)).expect("q")
        )
        .is_none());

        // A compressed question name is read; a pointer loop is a format error.
        let mut msg = query("a.example", TYPE_A);
        let (name, _) = read_name(&msg, 12).expect("name");
        assert_eq!(name, "a.example");
        msg.truncate(12);
        msg.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1]);
        assert_eq!(
            parse_query(&msg).err().map(|e| e.rcode),
            Some(RCODE_FORMERR)
        );
        assert!(parse_query(&[1, 2, 3]).is_err());

        let many = Response {
            id: 7,
            recursion_desired: false,
            recursion_available: false,
            authoritative: true,
            rcode: 0,
            question: Some(("x.cluster.local".into(), TYPE_A, 1)),
            answers: (0..100)
                .map(|i| Record {
                    name: "x.cluster.local".into(),
                    ttl: TTL,
                    data: RData::A(Ipv4Addr::new(10, 0, 0, i)),
                })
                .collect(),
            authority: vec![],
        };
        let udp = many.encode(UDP_MAX);
        assert!(udp.len() <= UDP_MAX);
        assert_eq!(udp[2] & 0x02, 0x02, "TC set");
        assert!(many.encode(65535).len() > UDP_MAX);
    }

    #[test]
    fn gateway_and_resolv_conf() {
        assert_eq!(gateway_ip("10.42.7.0/24"), "10.42.7.1".parse().ok());
        assert_eq!(gateway_ip("10.42.7.9/24"), "10.42.7.1".parse().ok());
        assert_eq!(gateway_ip("fd00:42::/64"), "fd00:42::1".parse().ok());
        assert_eq!(gateway_ip("nonsense"), None);
        let rc = ResolvConf::parse(
            "# comment\nnameserver 127.0.0.53\nnameserver 1.1.1.1 ; x\nsearch a.example. b\noptions edns0 trust-ad\n",
        );
        assert_eq!(
            rc,
            ResolvConf {
                nameservers: vec![
                    "127.0.0.53".parse().expect("ip"),
                    "1.1.1.1".parse().expect("ip")
                ],
                searches: vec!["a.example".into(), "b".into()],
                options: vec!["edns0".into(), "trust-ad".into()],
            }
        );
    }

    fn server(upstream: Upstream) -> Server {
        Server {
            domain: D.into(),
            upstream,
            services: reflector::store().0,
            slices: reflector::store().0,
            pods: reflector::store().0,
        }
    }

    #[tokio::test]
    async fn outside_names_are_refused_or_forwarded_and_cluster_names_never_leave() {
        // A fake upstream that answers every query with its id and rcode 0, and counts them.
        let upstream = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let upstream_addr = upstream.local_addr().expect("addr");
        let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = asked.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            while let Ok((n, peer)) = upstream.recv_from(&mut buf).await {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut reply = buf[..n].to_vec();
                reply[2] |= 0x80;
                let _ = upstream.send_to(&reply, peer).await;
            }
        });
        let rcode = |r: &[u8]| r[3] & 0x0F;

        let local = server(Upstream::Refuse);
        let reply = local
            .handle(&query("example.com", TYPE_A), UDP_MAX)
            .await
            .expect("reply");
        assert_eq!(rcode(&reply), RCODE_REFUSED);

        let open = server(Upstream::Forward(vec![upstream_addr]));
        let q = query("example.com", TYPE_A);
        let reply = open.handle(&q, UDP_MAX).await.expect("reply");
        assert_eq!(
            (&reply[..2], reply[2] & 0x80, rcode(&reply)),
            (&q[..2], 0x80, 0)
        );
        assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 1);

        // Cluster names are answered here, even when unknown.
        let reply = open
            .handle(&query("nosuch.default.svc.cluster.local", TYPE_A), UDP_MAX)
            .await
            .expect("reply");
        assert_eq!(rcode(&reply), RCODE_NXDOMAIN);
        assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 1);

        // A dead upstream is SERVFAIL; responses and garbage are dropped, not answered.
        let dead = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let dead = server(Upstream::Forward(vec![dead.local_addr().expect("addr")]));
        let reply = dead.handle(&q, UDP_MAX).await.expect("reply");
        assert_eq!(rcode(&reply), RCODE_SERVFAIL);
        let mut response = q.clone();
        response[2] |= 0x80;
        assert!(open.handle(&response, UDP_MAX).await.is_none());
        assert!(open.handle(&[0, 1], UDP_MAX).await.is_none());
        let mut notify = q.clone();
        notify[2] = 0x20; // opcode 4 (NOTIFY)
        let reply = open.handle(&notify, UDP_MAX).await.expect("reply");
        assert_eq!(rcode(&reply), RCODE_NOTIMP);
    }
}
