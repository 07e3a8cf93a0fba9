//! End to end: the kubelet's embedded cluster DNS, asked by a busybox pod (`nslookup` over
//! UDP through the resolv.conf the kubelet writes) and by the test itself over UDP and TCP on
//! the pod gateway address (see `pods.rs` for the prerequisites; tests skip without them, and
//! fail under `CI=true`).

use crate::common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use common::{prerequisites, TestNode, BUSYBOX};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::PostParams;
use kube::Api;
use serde_json::json;

/// A DNS query for `name` (type A, class IN, recursion desired).
fn query(id: u16, name: &str) -> Vec<u8> {
    let mut msg = id.to_be_bytes().to_vec();
    msg.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        msg.push(label.len() as u8);
        msg.extend_from_slice(label.as_bytes());
    }
    msg.extend_from_slice(&[0, 0, 1, 0, 1]);
    msg
}

/// (rcode, the A addresses of the answer section) of a response to [`query`].
fn parse_answer(id: u16, msg: &[u8], question_len: usize) -> Result<(u8, Vec<Ipv4Addr>)> {
    if msg.len() < 12 || msg[..2] != id.to_be_bytes() || msg[2] & 0x80 == 0 {
        bail!("not a response to query {id}: {msg:?}");
    }
    let rcode = msg[3] & 0x0F;
    let ancount = u16::from_be_bytes([msg[6], msg[7]]);
    // Answers follow the echoed question; our server writes uncompressed names.
    let mut pos = question_len;
    let mut ips = Vec::new();
    for _ in 0..ancount {
        while let Some(&len) = msg.get(pos) {
            pos += 1;
            if len == 0 {
                break;
            }
            if len & 0xC0 == 0xC0 {
                pos += 1;
                break;
            }
            pos += usize::from(len);
        }
        let fixed = msg.get(pos..pos + 10).context("truncated record")?;
        let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let rdlen = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
        let data = msg
            .get(pos + 10..pos + 10 + rdlen)
            .context("truncated rdata")?;
        if rtype == 1 && rdlen == 4 {
            ips.push(Ipv4Addr::new(data[0], data[1], data[2], data[3]));
        }
        pos += 10 + rdlen;
    }
    Ok((rcode, ips))
}

fn ask_udp(server: SocketAddr, id: u16, name: &str) -> Result<(u8, Vec<Ipv4Addr>)> {
    let sock = UdpSocket::bind("0.0.0.0:0")?;
    sock.set_read_timeout(Some(Duration::from_secs(3)))?;
    let q = query(id, name);
    sock.send_to(&q, server)?;
    let mut buf = [0u8; 1500];
    let n = sock.recv(&mut buf).context("no UDP answer")?;
    parse_answer(id, &buf[..n], q.len())
}

fn ask_tcp(server: SocketAddr, id: u16, name: &str) -> Result<(u8, Vec<Ipv4Addr>)> {
    let mut s = TcpStream::connect_timeout(&server, Duration::from_secs(3))?;
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    let q = query(id, name);
    s.write_all(&(q.len() as u16).to_be_bytes())?;
    s.write_all(&q)?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len)?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut buf)?;
    parse_answer(id, &buf, q.len())
}

/// The `== <label>` sections of the client pod's output.
fn sections(log: &str) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let mut current = String::new();
    for line in log.lines() {
        if let Some(label) = line.strip_prefix("== ") {
            current = label.trim().to_string();
            continue;
        }
        let entry = out.entry(current.clone()).or_default();
        entry.push_str(line);
        entry.push('\n');
    }
    out
}

/// A Service, a headless Service with a hand-made EndpointSlice (this harness runs no
/// controllers) and a client pod resolving them, the search path, an unknown name and an
/// outside name under `--pod-egress=local`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_resolve_services_through_the_embedded_dns() -> Result<()> {
    if !prerequisites() {
        return Ok(());
    }
    let node = TestNode::start().await?;
    let cidr = node
        .args
        .iter()
        .skip_while(|a| *a != "--pod-cidr")
        .nth(1)
        .context("--pod-cidr")?;
    let gateway = meso_kubelet::dns::gateway_ip(cidr).context("gateway")?;
    let dns = SocketAddr::new(gateway, 53);

    node.create_pod(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-0", "labels": {"app": "web"}},
        "spec": {"hostname": "web-0", "subdomain": "hl", "terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "c", "image": BUSYBOX, "command": ["sleep", "3600"]}]}
    }))
    .await?;
    let web = node.wait_running("web-0").await?;
    let pod_ip = web
        .status
        .and_then(|s| s.pod_ip)
        .context("web-0 has no IP")?;

    let services: Api<Service> = Api::namespaced(node.client.clone(), "default");
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
    }))?;
    let cluster_ip = services
        .create(&PostParams::default(), &svc)
        .await?
        .spec
        .and_then(|s| s.cluster_ip)
        .context("no clusterIP")?;
    let headless: Service = serde_json::from_value(json!({
        "metadata": {"name": "hl"},
        "spec": {"clusterIP": "None", "selector": {"app": "web"},
                 "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
    }))?;
    services.create(&PostParams::default(), &headless).await?;
    let slices: Api<EndpointSlice> = Api::namespaced(node.client.clone(), "default");
    let slice: EndpointSlice = serde_json::from_value(json!({
        "metadata": {"name": "hl-1", "labels": {"kubernetes.io/service-name": "hl"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": [{"addresses": [pod_ip], "hostname": "web-0", "conditions": {"ready": true}}]
    }))?;
    slices.create(&PostParams::default(), &slice).await?;

    // From the host, over UDP and TCP, once the caches have the Services.
    let want: Ipv4Addr = cluster_ip.parse()?;
    node.wait(
        "the Service in the DNS cache",
        Duration::from_secs(20),
        || async {
            let (rcode, ips) = ask_udp(dns, 1, "web.default.svc.cluster.local")?;
            Ok((rcode == 0 && ips == vec![want]).then_some(()))
        },
    )
    .await?;
    assert_eq!(
        ask_tcp(dns, 2, "web.default.svc.cluster.local")?,
        (0, vec![want])
    );
    assert_eq!(
        ask_udp(dns, 3, "web-0.hl.default.svc.cluster.local")?,
        (0, vec![pod_ip.parse()?])
    );
    assert_eq!(ask_udp(dns, 4, "nosuch.default.svc.cluster.local")?.0, 3);
    assert_eq!(ask_tcp(dns, 5, "example.com")?.0, 5, "REFUSED");

    // From a pod, through the resolv.conf the kubelet wrote.
    let script = r#"
q() { echo "== $1"; nslookup -type=a "$1" 2>&1; echo "rc=$?"; }
q web.default.svc.cluster.local
q web
q hl.default.svc.cluster.local
q web-0.hl.default.svc.cluster.local
q kubernetes.default.svc.cluster.local
# The C library's resolver walks the search path (busybox nslookup only does for dotless names).
echo "== ping kubernetes.default.svc"; ping -c 1 -W 1 kubernetes.default.svc 2>&1 | head -n 1
q nosuch.default.svc.cluster.local
q example.com
echo "== resolv.conf"; cat /etc/resolv.conf
"#;
    node.create_pod(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "dig"},
        "spec": {"restartPolicy": "Never",
                 "containers": [{"name": "dig", "image": BUSYBOX, "command": ["sh", "-c", script]}]}
    }))
    .await?;
    let pods = node.pods();
    let dig = node
        .wait("dig finished", Duration::from_secs(90), || async {
            let pod = pods.get("dig").await?;
            let phase = pod.status.as_ref().and_then(|s| s.phase.clone());
            Ok(matches!(phase.as_deref(), Some("Succeeded") | Some("Failed")).then_some(pod))
        })
        .await?;
    let log = node.container_log(&dig, "dig");
    let out = sections(&log);
    let section = |name: &str| out.get(name).cloned().unwrap_or_default();
    let resolv = section("resolv.conf");
    assert!(resolv.contains(&format!("nameserver {gateway}")), "{log}");
    assert!(
        resolv.contains("search default.svc.cluster.local svc.cluster.local cluster.local"),
        "{log}"
    );
    assert!(resolv.contains("options ndots:5"), "{log}");
    let s = section("web.default.svc.cluster.local");
    assert!(
        s.contains(&format!("Address: {cluster_ip}")) && s.contains("rc=0"),
        "{log}"
    );
    // busybox asks every search domain and fails if any is NXDOMAIN: only the answer counts.
    let s = section("web");
    assert!(
        s.contains("Name:\tweb.default.svc.cluster.local")
            && s.contains(&format!("Address: {cluster_ip}")),
        "{log}"
    );
    for name in [
        "hl.default.svc.cluster.local",
        "web-0.hl.default.svc.cluster.local",
    ] {
        let s = section(name);
        assert!(
            s.contains(&format!("Address: {pod_ip}")) && s.contains("rc=0"),
            "{name}: {log}"
        );
    }
    let kubernetes = services.get("kubernetes").await?;
    let api_ip = kubernetes
        .spec
        .and_then(|s| s.cluster_ip)
        .context("kubernetes clusterIP")?;
    assert!(
        section("kubernetes.default.svc.cluster.local").contains(&format!("Address: {api_ip}")),
        "{log}"
    );
    assert!(
        section("ping kubernetes.default.svc").contains(&format!("({api_ip})")),
        "{log}"
    );
    let nosuch = section("nosuch.default.svc.cluster.local");
    assert!(
        nosuch.contains("NXDOMAIN") && nosuch.contains("rc=1"),
        "{log}"
    );
    // Outside names are refused, never forwarded (and no address comes back).
    let outside = section("example.com");
    assert!(
        outside.contains("REFUSED") && outside.contains("rc=1"),
        "{log}"
    );
    assert_eq!(
        outside.matches("Address:").count(),
        1,
        "only the server's own line: {log}"
    );
    Ok(())
}
