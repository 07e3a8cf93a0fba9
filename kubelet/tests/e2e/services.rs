//! End to end: Services through the kubelet's nftables proxy, on a real `meso-kubelet` with its
//! own containerd and the real endpoint controllers (see `pods.rs` for the prerequisites; tests
//! skip without them, and fail under `CI=true`).

use crate::common;

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use common::{http_get, prerequisites, TestNode, BUSYBOX};
use k8s_openapi::api::core::v1::Service;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::Api;
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// Runs the controllers (endpoints, EndpointSlices) against the node's server until dropped.
struct Controllers(CancellationToken);

impl Controllers {
    fn start(node: &TestNode) -> Self {
        let token = CancellationToken::new();
        let config = meso_controllers::Config {
            kubeconfig: Some(node.server.kubeconfig()),
            leader_elect: false,
            metrics_bind_address: "0".into(),
            ..Default::default()
        };
        let run = meso_controllers::run(config, token.clone());
        tokio::spawn(async move {
            if let Err(e) = run.await {
                eprintln!("controllers failed: {e:#}");
            }
        });
        Self(token)
    }
}

impl Drop for Controllers {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// A busybox web server answering `/` with its pod name, which also asks `service_ip` every
/// second and serves the answers at `/hairpin`.
fn web_pod(name: &str, service_ip: &str) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [{
                "name": "web", "image": BUSYBOX,
                "command": ["sh", "-c", format!("mkdir -p /www && echo \"$POD\" > /www/index.html && httpd -p 8080 -h /www && \
                     while true; do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {service_ip} 80 >> /www/hairpin; sleep 1; done")],
                "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                "ports": [{"name": "http", "containerPort": 8080}],
                "readinessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 1},
            }],
        },
    })
}

/// The body of an HTTP answer.
fn body(answer: &str) -> &str {
    answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.trim())
        .unwrap_or_default()
}

/// ClusterIP and NodePort traffic reaches ready pods through the named target port, is balanced
/// over both backends (or sticks to one with ClientIP affinity), works from the host, from a pod
/// and from a backend to itself, and a Service without endpoints refuses connections at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_ip_and_node_port_reach_ready_pods_and_refuse_without_endpoints() -> Result<()> {
    if !prerequisites() {
        return Ok(());
    }
    let mut node = TestNode::start().await?;
    let _controllers = Controllers::start(&node);
    let services: Api<Service> = Api::namespaced(node.client.clone(), "default");
    let svc: Service = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"type": "NodePort", "selector": {"app": "web"},
                 "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    }))?;
    let svc = services.create(&PostParams::default(), &svc).await?;
    let spec = svc.spec.context("service spec")?;
    let cluster_ip = spec.cluster_ip.context("clusterIP")?;
    let node_port = spec
        .ports
        .as_ref()
        .and_then(|p| p.first())
        .and_then(|p| p.node_port)
        .context("nodePort")?;
    let node_port = u16::try_from(node_port)?;
    for name in ["web-1", "web-2"] {
        node.create_pod(web_pod(name, &cluster_ip)).await?;
    }
    for name in ["web-1", "web-2"] {
        node.wait_running(name).await?;
    }

    // From the host: both backends answer within a bounded number of requests.
    let seen = node
        .wait(
            "both backends behind the cluster IP",
            Duration::from_secs(60),
            || {
                let ip = cluster_ip.clone();
                async move {
                    let mut seen = BTreeSet::new();
                    for _ in 0..20 {
                        seen.insert(body(&http_get(&ip, 80, "/")?).to_string());
                    }
                    Ok((seen.len() == 2).then_some(seen))
                }
            },
        )
        .await?;
    assert_eq!(
        seen,
        BTreeSet::from(["web-1".to_string(), "web-2".to_string()])
    );

    // The NodePort on the node IP (127.0.0.1 in these tests).
    let answer = http_get("127.0.0.1", node_port, "/")?;
    assert!(
        ["web-1", "web-2"].contains(&body(&answer)),
        "nodePort {node_port}: {answer}"
    );

    // From a pod (busybox's static wget crashes, so HTTP by hand with nc).
    node.create_pod(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "client"},
        "spec": {
            "restartPolicy": "Never", "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "nc", "image": BUSYBOX,
                            "command": ["sh", "-c", format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {cluster_ip} 80")]}],
        },
    }))
    .await?;
    let pods = node.pods();
    let client = node
        .wait("client pod done", Duration::from_secs(60), || async {
            let pod = pods.get("client").await?;
            let phase = pod.status.as_ref().and_then(|s| s.phase.clone());
            Ok(matches!(phase.as_deref(), Some("Succeeded" | "Failed")).then_some(pod))
        })
        .await?;
    let log = node.container_log(&client, "nc");
    let phase = client.status.as_ref().and_then(|s| s.phase.clone());
    assert_eq!(
        phase.as_deref(),
        Some("Succeeded"),
        "nc log: {log}\n{:?}",
        client.status
    );
    assert!(
        log.lines().any(|l| l == "web-1" || l == "web-2"),
        "nc log: {log}"
    );

    // Hairpin: each backend asks the service in a loop and logs the answers; over enough
    // requests it reaches itself.
    for name in ["web-1", "web-2"] {
        let ip = node
            .wait_running(name)
            .await?
            .status
            .and_then(|s| s.pod_ip)
            .context("podIP")?;
        node.wait(
            &format!("{name} reaching itself through the service"),
            Duration::from_secs(60),
            || {
                let ip = ip.clone();
                async move {
                    let log = http_get(&ip, 8080, "/hairpin")?;
                    Ok(body(&log).lines().any(|l| l == name).then_some(()))
                }
            },
        )
        .await?;
    }

    // sessionAffinity ClientIP: the host then always reaches the same backend.
    services
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"sessionAffinity": "ClientIP"}})),
        )
        .await?;
    node.wait(
        "sticky backend with ClientIP affinity",
        Duration::from_secs(30),
        || {
            let ip = cluster_ip.clone();
            async move {
                let mut seen = BTreeSet::new();
                for _ in 0..12 {
                    seen.insert(body(&http_get(&ip, 80, "/")?).to_string());
                }
                Ok((seen.len() == 1).then_some(()))
            }
        },
    )
    .await?;

    // No backends: new connections are refused at once instead of hanging.
    for name in ["web-1", "web-2"] {
        pods.delete(name, &DeleteParams::default().grace_period(0))
            .await?;
    }
    let addr = format!("{cluster_ip}:80").parse()?;
    node.wait(
        "connection refused without endpoints",
        Duration::from_secs(60),
        || async move {
            let started = Instant::now();
            match TcpStream::connect_timeout(&addr, Duration::from_secs(3)) {
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                    assert!(started.elapsed() < Duration::from_secs(2));
                    Ok(Some(()))
                }
                Err(e) => bail!("connect: {e}"),
                Ok(_) => Ok(None),
            }
        },
    )
    .await?;
    let refused = TcpStream::connect_timeout(
        &format!("127.0.0.1:{node_port}").parse()?,
        Duration::from_secs(3),
    );
    assert!(
        matches!(&refused, Err(e) if e.kind() == ErrorKind::ConnectionRefused),
        "nodePort without endpoints: {refused:?}"
    );
    services.delete("web", &DeleteParams::default()).await?;

    // The kubelet removes its table when it stops.
    let bridge = node
        .args
        .iter()
        .skip_while(|a| *a != "--cni-bridge")
        .nth(1)
        .context("--cni-bridge")?
        .clone();
    let table = format!("meso_{bridge}_proxy");
    let listed = |table: &str| {
        std::process::Command::new("nft")
            .args(["list", "table", "ip", table])
            .output()
            .map(|o| o.status.success())
    };
    let localnet = format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet");
    assert!(listed(&table)?, "table {table} while running");
    assert_eq!(std::fs::read_to_string(&localnet)?.trim(), "1");
    node.stop_kubelet(libc::SIGTERM);
    assert!(!listed(&table)?, "table {table} left after shutdown");
    assert_eq!(std::fs::read_to_string(&localnet)?.trim(), "0");
    Ok(())
}
