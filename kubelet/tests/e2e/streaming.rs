//! End to end: `kubectl logs`, `exec`, `attach` and `port-forward` through a real `meso server`
//! and a real `meso-kubelet` (its HTTPS server proxying to containerd's streaming server).
//!
//! Same prerequisites as `pods.rs` (root, containerd, runc, CNI, ...), plus kubectl 1.32 and
//! 1.35; without them the test skips, except under `CI=true`, where it fails.
//!
//! kubectl 1.35 streams over WebSocket (exec/attach `v5.channel.k8s.io`, port-forward tunnelled
//! SPDY); kubectl 1.32 is told to use SPDY/3.1 (its WebSocket features off), so both the
//! translated and the passed-through paths run. The API server's
//! `apiserver_stream_upgrades_total` says which protocol each one used.

use crate::common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use common::{http_get, prerequisites, TestNode, BUSYBOX};
use futures::{SinkExt, StreamExt};
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use meso_tests::{kubectl_132, kubectl_135, run_bounded, Kubectl};
use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

const KUBECTL_TIMEOUT: Duration = Duration::from_secs(60);

fn kubectl(node: &TestNode, k: &Kubectl) -> Command {
    let mut cmd = Command::new(&k.path);
    cmd.arg("--kubeconfig").arg(node.server.kubeconfig());
    if k.version == "1.32" {
        // 1.32 would use WebSocket too; keep it on SPDY/3.1 so the passthrough path runs.
        cmd.env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false")
            .env("KUBECTL_PORT_FORWARD_WEBSOCKETS", "false");
    }
    cmd
}

/// The API server's `apiserver_stream_upgrades_total`, by (protocol, subresource).
async fn stream_upgrades(node: &TestNode) -> Result<BTreeMap<(String, String), u64>> {
    let text = node
        .server
        .http()?
        .get(node.server.url("/metrics")?)
        .send()
        .await?
        .text()
        .await?;
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("apiserver_stream_upgrades_total{protocol=\"") else {
            continue;
        };
        let (protocol, rest) = rest
            .split_once("\",subresource=\"")
            .context(line.to_string())?;
        let (sub, n) = rest.split_once("\"} ").context(line.to_string())?;
        out.insert((protocol.to_string(), sub.to_string()), n.trim().parse()?);
    }
    Ok(out)
}

/// How many more `protocol` upgrades of `sub` `after` counts than `before`.
fn grown(
    before: &BTreeMap<(String, String), u64>,
    after: &BTreeMap<(String, String), u64>,
    protocol: &str,
    sub: &str,
) -> u64 {
    let key = (protocol.to_string(), sub.to_string());
    after.get(&key).copied().unwrap_or(0) - before.get(&key).copied().unwrap_or(0)
}

/// A WebSocket upgrade request for a pod subresource, as client-go's WebSocket executor sends
/// it (RFC 6455's sample key).
fn websocket_request(
    http: &reqwest::Client,
    url: String,
    protocol: &str,
) -> reqwest::RequestBuilder {
    http.get(url)
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "13")
        .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("Sec-WebSocket-Protocol", protocol)
}

/// Hand-driven WebSocket execs: v5 (the channel bytes both ways, the close of stdin, the exit
/// status as a Status on the error channel), v4 (translated the same way, without close), and
/// a base64 protocol (passed through).
async fn raw_websocket_exec(node: &TestNode) -> Result<()> {
    let http = node.server.http()?;
    let script = "cat; echo err >&2; exit 7";
    let url = node.server.url(&format!(
        "/api/v1/namespaces/default/pods/web/exec?command=sh&command=-c&command={}&stdin=true&stdout=true&stderr=true",
        script.replace(' ', "%20").replace(';', "%3B").replace('&', "%26").replace('>', "%3E")
    ))?;
    let resp = websocket_request(&http, url, "v5.channel.k8s.io")
        .send()
        .await?;
    ensure!(resp.status().as_u16() == 101, "{:?}", resp.text().await?);
    assert_eq!(
        resp.headers()["sec-websocket-protocol"],
        "v5.channel.k8s.io"
    );
    assert_eq!(
        resp.headers()["sec-websocket-accept"],
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
    let io = resp.upgrade().await?;
    let mut ws = WebSocketStream::from_raw_socket(io, Role::Client, None).await;
    ws.send(Message::Binary(b"\x00ping".to_vec().into()))
        .await?;
    ws.send(Message::Binary(vec![255, 0].into())).await?;
    let mut messages = Vec::new();
    tokio::time::timeout(KUBECTL_TIMEOUT, async {
        while let Some(msg) = ws.next().await {
            match msg? {
                Message::Binary(b) => messages.push(b.to_vec()),
                Message::Close(_) => break,
                _ => {}
            }
        }
        Ok::<_, anyhow::Error>(())
    })
    .await
    .context("the v5 exec did not end")??;
    assert_eq!(messages.first(), Some(&vec![1u8]), "ready message first");
    let channel = |c: u8| -> Vec<u8> {
        messages
            .iter()
            .filter(|m| m.first() == Some(&c))
            .flat_map(|m| m[1..].to_vec())
            .collect()
    };
    assert_eq!(channel(1), b"ping", "stdout");
    assert_eq!(channel(2), b"err\n", "stderr");
    let status: serde_json::Value = serde_json::from_slice(&channel(3))?;
    assert_eq!(status["status"], "Failure", "{status}");
    assert_eq!(status["reason"], "NonZeroExitCode", "{status}");
    assert_eq!(status["details"]["causes"][0]["reason"], "ExitCode");
    assert_eq!(status["details"]["causes"][0]["message"], "7");
    assert_eq!(
        messages.last().map(|m| m[0]),
        Some(3),
        "the status comes last"
    );

    // v4: the same channels, no close.
    let url = node
        .server
        .url("/api/v1/namespaces/default/pods/web/exec?command=echo&command=v4&stdout=true")?;
    let resp = websocket_request(&http, url, "v4.channel.k8s.io")
        .send()
        .await?;
    ensure!(resp.status().as_u16() == 101, "{:?}", resp.text().await?);
    assert_eq!(
        resp.headers()["sec-websocket-protocol"],
        "v4.channel.k8s.io"
    );
    let io = resp.upgrade().await?;
    let mut ws = WebSocketStream::from_raw_socket(io, Role::Client, None).await;
    let mut v4 = Vec::new();
    tokio::time::timeout(KUBECTL_TIMEOUT, async {
        while let Some(Ok(msg)) = ws.next().await {
            match msg {
                Message::Binary(b) => v4.push(b.to_vec()),
                Message::Close(_) => break,
                _ => {}
            }
        }
    })
    .await
    .context("the v4 exec did not end")?;
    assert_eq!(
        v4,
        vec![
            vec![1],
            b"\x01v4\n".to_vec(),
            b"\x03{\"metadata\":{},\"status\":\"Success\"}".to_vec()
        ]
    );

    // Protocols the API server does not translate pass through to the kubelet (whose runtime
    // serves them itself), as upstream: the base64 channel protocol.
    let url = node
        .server
        .url("/api/v1/namespaces/default/pods/web/exec?command=echo&command=b64&stdout=true")?;
    let resp = websocket_request(&http, url, "v4.base64.channel.k8s.io")
        .send()
        .await?;
    ensure!(resp.status().as_u16() == 101, "{:?}", resp.text().await?);
    assert_eq!(
        resp.headers()["sec-websocket-protocol"],
        "v4.base64.channel.k8s.io"
    );
    let io = resp.upgrade().await?;
    let mut ws = WebSocketStream::from_raw_socket(io, Role::Client, None).await;
    let mut texts = Vec::new();
    tokio::time::timeout(KUBECTL_TIMEOUT, async {
        // The runtime may end the connection without a close message.
        while let Some(Ok(msg)) = ws.next().await {
            match msg {
                Message::Text(t) => texts.push(t.to_string()),
                Message::Close(_) => break,
                _ => {}
            }
        }
    })
    .await
    .context("the base64 exec did not end")?;
    use base64::Engine as _;
    let decoded = |c: char| -> Result<String> {
        let mut out = Vec::new();
        for t in texts.iter().filter(|t| t.starts_with(c)) {
            out.extend(base64::engine::general_purpose::STANDARD.decode(&t[1..])?);
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    };
    assert_eq!(decoded('1')?, "b64\n", "{texts:?}");
    assert!(decoded('3')?.contains("Success"), "{texts:?}");

    // The kubelet's refusal comes back as the HTTP answer, before any upgrade.
    let url = node
        .server
        .url("/api/v1/namespaces/default/pods/web/exec?command=true")?;
    let resp = websocket_request(&http, url, "v5.channel.k8s.io")
        .send()
        .await?;
    assert_eq!(resp.status().as_u16(), 400);
    assert!(resp
        .text()
        .await?
        .contains("you must specify at least 1 of stdin, stdout, stderr"));
    Ok(())
}

/// Runs kubectl to completion: (success, stdout, stderr).
fn run(
    node: &TestNode,
    k: &Kubectl,
    args: &[&str],
    stdin: Option<&[u8]>,
) -> Result<(bool, String, String)> {
    let mut cmd = kubectl(node, k);
    cmd.args(args);
    let out = run_bounded(cmd, stdin, KUBECTL_TIMEOUT)?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// Runs kubectl and fails with its stderr unless it succeeds; returns stdout.
fn run_ok(node: &TestNode, k: &Kubectl, args: &[&str], stdin: Option<&[u8]>) -> Result<String> {
    let (ok, out, err) = run(node, k, args, stdin)?;
    if !ok {
        bail!(
            "kubectl {} {args:?} failed:\n{err}\nstdout:\n{out}",
            k.version
        );
    }
    Ok(out)
}

/// A long-running kubectl whose stdout lines arrive on a channel; killed on drop.
struct Background {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Background {
    fn spawn(mut cmd: Command) -> Result<Self> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("spawning kubectl")?;
        let stdout = child.stdout.take().context("stdout")?;
        let stderr = child.stderr.take().context("stderr")?;
        let (tx, lines) = std::sync::mpsc::channel();
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx2.send(format!("stderr: {line}"));
            }
        });
        Ok(Self { child, lines })
    }

    /// Waits (bounded) for a line satisfying `want`; returns every line seen.
    fn wait_for(&self, timeout: Duration, want: impl Fn(&str) -> bool) -> Result<Vec<String>> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let done = want(&line);
                    seen.push(line);
                    if done {
                        return Ok(seen);
                    }
                }
                Err(_) => bail!("timed out after {timeout:?}; lines so far: {seen:#?}"),
            }
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `kubectl exec -it POD -- sh` on a pseudo-terminal, types `input`, and returns what the
/// terminal showed once kubectl exits (bounded).
fn exec_on_pty(node: &TestNode, k: &Kubectl, pod: &str, input: &str) -> Result<String> {
    let (mut master, slave) = {
        let (mut m, mut s) = (0, 0);
        // SAFETY: openpty writes two fds into the given pointers; null name/termios/winsize.
        let rc = unsafe {
            libc::openpty(
                &mut m,
                &mut s,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        if rc != 0 {
            bail!("openpty: {}", std::io::Error::last_os_error());
        }
        // SAFETY: both fds were just opened and are owned here.
        unsafe {
            (
                std::fs::File::from(OwnedFd::from_raw_fd(m)),
                OwnedFd::from_raw_fd(s),
            )
        }
    };
    let mut cmd = kubectl(node, k);
    cmd.args(["exec", "-it", pod, "--", "sh"])
        .stdin(Stdio::from(slave.try_clone()?))
        .stdout(Stdio::from(slave.try_clone()?))
        .stderr(Stdio::from(slave));
    let mut child = cmd.spawn().context("spawning kubectl exec -it")?;
    let mut reader = master.try_clone()?;
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        // Ends with EIO once every slave fd is closed (kubectl exited).
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    // Give the remote shell a moment, then type.
    std::thread::sleep(Duration::from_secs(2));
    master.write_all(input.as_bytes())?;
    let deadline = Instant::now() + KUBECTL_TIMEOUT;
    let mut shown = Vec::new();
    loop {
        while let Ok(chunk) = rx.try_recv() {
            shown.extend(chunk);
        }
        if let Some(status) = child.try_wait()? {
            std::thread::sleep(Duration::from_millis(200));
            while let Ok(chunk) = rx.try_recv() {
                shown.extend(chunk);
            }
            let text = String::from_utf8_lossy(&shown).into_owned();
            if !status.success() {
                bail!("kubectl exec -it exited with {status}:\n{text}");
            }
            return Ok(text);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "kubectl exec -it did not finish:\n{}",
                String::from_utf8_lossy(&shown)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_logs_exec_attach_and_port_forward() -> Result<()> {
    if !prerequisites() {
        return Ok(());
    }
    let (Some(k132), Some(k135)) = (kubectl_132(), kubectl_135()) else {
        return Ok(());
    };
    let node = TestNode::start().await?;
    let busybox = |name: &str, script: &str| {
        json!({"name": name, "image": BUSYBOX, "imagePullPolicy": "IfNotPresent",
               "command": ["sh", "-c", script]})
    };
    node.create_pod(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
        "spec": {"containers": [busybox("web",
            "mkdir -p /www && echo hello-through-port-forward > /www/index.html && exec httpd -f -p 8080 -h /www")]}
    }))
    .await?;
    node.create_pod(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ticker"},
        "spec": {"containers": [
            busybox("tick", "i=0; while true; do i=$((i+1)); echo line-$i; sleep 0.5; done"),
            busybox("side", "echo side-says-hi; exec sleep 3600"),
        ]}
    }))
    .await?;
    node.create_pod(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "crash"},
        "spec": {"containers": [busybox("c", "echo run-at-$(date +%s%N); sleep 1; exit 1")]}
    }))
    .await?;
    node.create_pod(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "nopull"},
        "spec": {"containers": [{"name": "c", "image": "meso.invalid/none:v1", "imagePullPolicy": "Never"}]}
    }))
    .await?;
    node.wait_running("web").await?;
    node.wait_running("ticker").await?;

    // --- logs ---
    let k = &k135;
    let out = node
        .wait("three ticker lines", Duration::from_secs(20), || async {
            let out = run_ok(&node, k, &["logs", "ticker", "-c", "tick"], None)?;
            Ok((out.lines().count() >= 3).then_some(out))
        })
        .await?;
    assert!(out.starts_with("line-1\nline-2\n"), "{out}");
    // kubectl picks the first container itself; the API server answers as upstream.
    let http = node.server.http()?;
    let resp = http
        .get(
            node.server
                .url("/api/v1/namespaces/default/pods/ticker/log")?,
        )
        .send()
        .await?;
    assert_eq!(resp.status().as_u16(), 400);
    let status: serde_json::Value = resp.json().await?;
    assert_eq!(
        status["message"],
        "a container name must be specified for pod ticker, choose one of: [tick side]"
    );
    let side = run_ok(&node, &k132, &["logs", "ticker", "-c", "side"], None)?;
    assert_eq!(side, "side-says-hi\n");
    let tail = run_ok(
        &node,
        k,
        &["logs", "ticker", "-c", "tick", "--tail=2"],
        None,
    )?;
    let lines: Vec<&str> = tail.lines().collect();
    assert_eq!(lines.len(), 2, "{tail}");
    assert!(lines.iter().all(|l| l.starts_with("line-")), "{tail}");
    let stamped = run_ok(
        &node,
        k,
        &["logs", "ticker", "-c", "tick", "--timestamps", "--tail=1"],
        None,
    )?;
    let (time, text) = stamped
        .trim_end()
        .split_once(' ')
        .context("timestamped line")?;
    assert!(chrono_like(time) && text.starts_with("line-"), "{stamped}");
    let limited = run_ok(
        &node,
        k,
        &["logs", "ticker", "-c", "tick", "--limit-bytes=4"],
        None,
    )?;
    assert_eq!(limited, "line");
    // -f: lines written after the request arrive, within a bounded time.
    let mut follow = kubectl(&node, k);
    follow.args(["logs", "-f", "ticker", "-c", "tick", "--tail=1"]);
    let follow = Background::spawn(follow)?;
    let first = follow.wait_for(Duration::from_secs(20), |l| l.starts_with("line-"))?;
    let n: u32 = first
        .last()
        .and_then(|l| l.trim_start_matches("line-").parse().ok())
        .context("line number")?;
    follow.wait_for(Duration::from_secs(20), |l| {
        l.trim_start_matches("line-")
            .parse::<u32>()
            .is_ok_and(|m| m >= n + 3)
    })?;
    drop(follow);
    // A container that is still waiting: upstream's message.
    let (ok, _, err) = run(&node, k, &["logs", "nopull"], None)?;
    assert!(
        !ok && err.contains(r#"container "c" in pod "nopull" is waiting to start"#),
        "{err}"
    );
    // --previous after a restart.
    let pods = node.pods();
    node.wait("crash restarted", Duration::from_secs(90), || async {
        let pod = pods.get("crash").await?;
        let restarts = pod
            .status
            .and_then(|s| s.container_statuses)
            .unwrap_or_default()
            .first()
            .map_or(0, |c| c.restart_count);
        Ok((restarts >= 1).then_some(()))
    })
    .await?;
    let previous = run_ok(&node, k, &["logs", "crash", "--previous"], None)?;
    assert!(previous.starts_with("run-at-"), "{previous}");
    let (ok, _, err) = run(&node, k, &["logs", "web", "--previous"], None)?;
    assert!(
        !ok && err.contains(r#"previous terminated container "web" in pod "web" not found"#),
        "{err}"
    );

    // --- exec: kubectl 1.35 over WebSocket v5 (translated to SPDY towards the kubelet),
    // kubectl 1.32 over SPDY/3.1 (passed through) ---
    for (kc, protocol, other) in [(&k135, "websocket", "spdy"), (&k132, "spdy", "websocket")] {
        let before = stream_upgrades(&node).await?;
        let out = run_ok(
            &node,
            kc,
            &["exec", "web", "--", "sh", "-c", "echo $HOSTNAME"],
            None,
        )?;
        assert_eq!(out, "web\n", "kubectl {}", kc.version);
        // Ends only once the end of stdin reaches `cat` (v5's close of the stdin channel).
        let out = run_ok(
            &node,
            kc,
            &["exec", "-i", "web", "--", "cat"],
            Some(b"hi\n"),
        )?;
        assert_eq!(out, "hi\n", "kubectl {}", kc.version);
        let mut cmd = kubectl(&node, kc);
        cmd.args(["exec", "web", "--", "sh", "-c", "echo partial; exit 3"]);
        let out = run_bounded(cmd, None, KUBECTL_TIMEOUT)?;
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "kubectl {}: {err}", kc.version);
        assert!(err.contains("exit code 3"), "kubectl {}: {err}", kc.version);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "partial\n");
        let after = stream_upgrades(&node).await?;
        assert_eq!(
            grown(&before, &after, protocol, "exec"),
            3,
            "kubectl {}: {after:?}",
            kc.version
        );
        assert_eq!(
            grown(&before, &after, other, "exec"),
            0,
            "kubectl {} fell back: {after:?}",
            kc.version
        );
    }
    let before = stream_upgrades(&node).await?;
    let shown = exec_on_pty(&node, &k135, "web", "echo $((6*7)); exit\r")?;
    assert!(shown.contains("42"), "{shown}");
    let after = stream_upgrades(&node).await?;
    assert_eq!(grown(&before, &after, "websocket", "exec"), 1, "{after:?}");
    raw_websocket_exec(&node).await?;
    // kube-rs's exec (WebSocket, v5 with v4 offered too): output and the Status.
    let mut attached = node
        .pods()
        .exec(
            "web",
            ["sh", "-c", "echo from-kube-rs; exit 5"],
            &kube::api::AttachParams::default().stderr(false),
        )
        .await?;
    let mut stdout = attached.stdout().context("kube-rs stdout")?;
    let status = attached.take_status().context("kube-rs status")?;
    let mut out = String::new();
    tokio::time::timeout(KUBECTL_TIMEOUT, async {
        use tokio::io::AsyncReadExt;
        stdout.read_to_string(&mut out).await
    })
    .await
    .context("kube-rs exec output")??;
    assert_eq!(out, "from-kube-rs\n");
    let status = tokio::time::timeout(KUBECTL_TIMEOUT, status)
        .await
        .context("kube-rs exec status")?
        .context("no status")?;
    assert_eq!(
        status.reason.as_deref(),
        Some("NonZeroExitCode"),
        "{status:?}"
    );
    tokio::time::timeout(KUBECTL_TIMEOUT, attached.join())
        .await
        .context("kube-rs exec join")??;

    // --- attach ---
    let before = stream_upgrades(&node).await?;
    let mut attach = kubectl(&node, k);
    attach.args(["attach", "ticker", "-c", "tick"]);
    let attach = Background::spawn(attach)?;
    attach.wait_for(Duration::from_secs(20), |l| l.starts_with("line-"))?;
    drop(attach);
    let after = stream_upgrades(&node).await?;
    assert_eq!(
        grown(&before, &after, "websocket", "attach"),
        1,
        "{after:?}"
    );

    // --- port-forward: 1.35 tunnels SPDY through a WebSocket, 1.32 upgrades to SPDY ---
    for (kc, protocol) in [(&k135, "websocket"), (&k132, "spdy")] {
        let before = stream_upgrades(&node).await?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut pf = kubectl(&node, kc);
        pf.args([
            "port-forward",
            "pod/web",
            &format!("{port}:8080"),
            "--address",
            "127.0.0.1",
        ]);
        let pf = Background::spawn(pf)?;
        pf.wait_for(Duration::from_secs(20), |l| l.contains("Forwarding from"))?;
        let body = http_get("127.0.0.1", port, "/index.html")?;
        assert!(
            body.contains("200 OK") && body.contains("hello-through-port-forward"),
            "kubectl {}: {body}",
            kc.version
        );
        let after = stream_upgrades(&node).await?;
        assert_eq!(
            grown(&before, &after, protocol, "portforward"),
            1,
            "kubectl {}: {after:?}",
            kc.version
        );
    }

    // --- only the API server may call the kubelet ---
    let n: Node = Api::all(node.client.clone()).get(&node.name).await?;
    let port = n
        .status
        .and_then(|s| s.daemon_endpoints)
        .and_then(|d| d.kubelet_endpoint)
        .map(|e| e.port)
        .context("daemonEndpoints")?;
    assert_ne!(port, 10250, "the test kubelet picks a free port");
    let url = format!("https://127.0.0.1:{port}/containerLogs/default/ticker/tick");
    let anonymous = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()?;
    assert_eq!(anonymous.get(&url).send().await?.status().as_u16(), 401);
    let creds = node.server.credentials()?;
    let mut pem = creds.cert_pem.clone();
    pem.extend_from_slice(&creds.key_pem);
    let admin = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .identity(reqwest::Identity::from_pem(&pem)?)
        .build()?;
    let resp = admin.get(&url).send().await?;
    assert_eq!(resp.status().as_u16(), 403);
    let api_cert = std::fs::read(
        node.server
            .data_dir()
            .join("tls/apiserver-kubelet-client.crt"),
    )?;
    let mut pem = api_cert;
    pem.extend(std::fs::read(
        node.server
            .data_dir()
            .join("tls/apiserver-kubelet-client.key"),
    )?);
    let apiserver = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .identity(reqwest::Identity::from_pem(&pem)?)
        .build()?;
    let resp = apiserver.get(format!("{url}?tailLines=1")).send().await?;
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.text().await?.starts_with("line-"));
    Ok(())
}

/// Whether `s` looks like an RFC 3339 time with fractional seconds.
fn chrono_like(s: &str) -> bool {
    s.len() > 20 && s.as_bytes()[4] == b'-' && s.contains('T') && s.contains('.')
}
