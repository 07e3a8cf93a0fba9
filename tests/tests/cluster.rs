//! One whole cluster end to end (issue 6, "How it is checked"): a real `meso server` as root
//! with its API server, controllers, scheduler and local agent (its own containerd), as
//! `deploy/up.sh` runs it, driven by kubectl 1.35 and Helm 4: a Deployment rolled out, scaled,
//! changed, rolled back; a Service reached from the host (nftables proxy) and from a Job pod by
//! its DNS name; `kubectl logs`/`exec` through the kubelet's cluster-CA serving certificate; a
//! Helm chart installed with `--wait` and tested; cascading deletion; a clean SIGTERM.
//!
//! Needs root, containerd, runc, the CNI plugins, nft, gcc and busybox-static. Without them the
//! test is skipped with a message, except under `CI=true`, where it fails.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use meso_tests::{poll_until, run_bounded, Kubectl, MesoServer};

/// What the web pods serve at `/x`.
const PAGE: &str = "hello-from-meso";
/// The web pods' command: a known file, a log line, then busybox httpd in the foreground.
const WEB_CMD: &str =
    "mkdir -p /www && echo hello-from-meso > /www/x && echo web-serving && exec httpd -f -p 8080 -h /www";

struct Cluster {
    srv: MesoServer,
    k: Kubectl,
    helm: PathBuf,
    node: String,
}

impl Cluster {
    fn kubectl(&self, args: &[&str]) -> Result<String> {
        self.srv
            .kubectl_ok(&self.k, args)
            .map_err(|e| e.context(self.srv.log_tail(40)))
    }

    /// kubectl with a longer bound, for `rollout status` and `wait`.
    fn kubectl_long(&self, args: &[&str], timeout: Duration) -> Result<String> {
        let mut cmd = self.srv.kubectl_command(&self.k);
        cmd.args(args);
        let out = run_bounded(cmd, None, timeout)?;
        meso_tests::check_success(&self.k, args, &out).map_err(|e| e.context(self.srv.log_tail(40)))
    }

    fn jsonpath(&self, args: &[&str], path: &str) -> Result<String> {
        let jp = format!("jsonpath={path}");
        let mut all = args.to_vec();
        all.extend_from_slice(&["-o", &jp]);
        Ok(self.kubectl(&all)?.trim().to_string())
    }

    fn helm(&self, args: &[&str], timeout: Duration) -> Result<String> {
        let home = self.srv.scratch_dir().join("helm-home");
        let mut cmd = Command::new(&self.helm);
        cmd.args(args)
            .arg("--kubeconfig")
            .arg(self.srv.kubeconfig())
            .current_dir(self.srv.scratch_dir())
            .env_remove("KUBECONFIG")
            .env("HOME", &home)
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_DATA_HOME", home.join("data"))
            .env("TMPDIR", self.srv.scratch_dir());
        let out = run_bounded(cmd, None, timeout)?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            bail!(
                "helm {} failed with {}\nstdout:\n{stdout}\nstderr:\n{}\n{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr),
                self.srv.log_tail(40)
            );
        }
        Ok(stdout)
    }

    fn rollout_status(&self, what: &str) -> Result<()> {
        let out = self.kubectl_long(
            &["rollout", "status", what, "--timeout=120s"],
            Duration::from_secs(130),
        )?;
        ensure!(
            out.contains("successfully rolled out"),
            "rollout status {what}: {out}"
        );
        Ok(())
    }

    /// Names of the pods matching `selector` (none terminating).
    fn pods(&self, selector: &str) -> Result<Vec<String>> {
        let out = self.jsonpath(
            &["get", "pods", "-l", selector],
            "{range .items[*]}{.metadata.name} {.metadata.deletionTimestamp}{\"\\n\"}{end}",
        )?;
        Ok(out
            .lines()
            .filter(|l| l.split_whitespace().count() == 1)
            .map(|l| l.trim().to_string())
            .collect())
    }
}

/// One HTTP/1.0 GET over a plain TCP connection; the whole answer.
fn http_get(addr: &str, path: &str) -> Result<String> {
    let sock: std::net::SocketAddr = addr.parse().with_context(|| format!("address {addr}"))?;
    let mut s = TcpStream::connect_timeout(&sock, Duration::from_secs(3))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Running processes whose command line names `needle` (our containerd and its shims, whose
/// `-address` is under the data dir), as (pid, comm).
fn processes_of(needle: &str) -> Vec<(u32, String)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            if !String::from_utf8_lossy(&cmdline).contains(needle) {
                return None;
            }
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            Some((pid, comm.trim().to_string()))
        })
        .collect()
}

/// SIGKILLs `pids` and their children (a shim's child is its container's init).
fn kill_with_children(pids: &[u32]) {
    let children: Vec<u32> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_str()?.parse::<u32>().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // `pid (comm) state ppid ...`: comm may hold spaces, so parse after the last ')'.
            let ppid = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            pids.contains(&ppid).then_some(pid)
        })
        .collect();
    for pid in children.iter().chain(pids) {
        // SAFETY: kill(2) on a process started for this test's data dir.
        unsafe { libc::kill(*pid as libc::pid_t, libc::SIGKILL) };
    }
}

#[test]
fn whole_cluster_with_kubectl_and_helm() -> Result<()> {
    if !meso_tests::pod_prerequisites("cluster e2e") {
        return Ok(());
    }
    let (Some(k), Some(helm)) = (meso_tests::kubectl_135(), meso_tests::helm()) else {
        return Ok(());
    };
    let started = Instant::now();
    let images = meso_tests::image_archives(
        &PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("meso-images"),
    )?;
    let (srv, node) = MesoServer::start_cluster("e2e", &[], images)?;
    let mut c = Cluster { srv, k, helm, node };
    let result = scenario(&c);
    let data_dir = c.srv.data_dir().display().to_string();
    if result.is_err() {
        c.srv.remove_pods(&c.k, "deployments,replicasets,jobs");
    }
    // 6. SIGTERM: a clean exit; the agent's containerd goes with it, and since every pod was
    // deleted first, no shim or container is left either.
    let stopped = c.srv.stop();
    let left = poll_until(
        Duration::from_secs(15),
        "the agent's processes to exit",
        || Ok(processes_of(&data_dir).is_empty().then_some(())),
    );
    let survivors = processes_of(&data_dir);
    kill_with_children(&survivors.iter().map(|(pid, _)| *pid).collect::<Vec<_>>());
    result?;
    stopped?;
    if left.is_err() {
        bail!("processes {survivors:?} of {data_dir} survived the server's SIGTERM");
    }
    eprintln!("whole cluster e2e took {:?}", started.elapsed());
    Ok(())
}

fn scenario(c: &Cluster) -> Result<()> {
    // 1. The node registers and becomes Ready.
    c.srv
        .wait_node_ready(&c.k, &c.node, Duration::from_secs(90))?;

    // A Deployment: rollout, scale, change, history, undo.
    c.kubectl(&[
        "create",
        "deployment",
        "web",
        "--image=busybox:stable",
        "--replicas=2",
        "--port=8080",
        "--",
        "sh",
        "-c",
        WEB_CMD,
    ])?;
    c.rollout_status("deployment/web")?;
    let pods = c.jsonpath(
        &["get", "pods", "-l", "app=web"],
        "{range .items[*]}{.status.phase} {.status.podIP} {.spec.nodeName}{\"\\n\"}{end}",
    )?;
    let running: Vec<&str> = pods.lines().filter(|l| !l.trim().is_empty()).collect();
    ensure!(running.len() == 2, "two web pods expected:\n{pods}");
    for line in &running {
        let f: Vec<&str> = line.split_whitespace().collect();
        ensure!(
            f.len() == 3 && f[0] == "Running" && f[1].starts_with("10.42.") && f[2] == c.node,
            "a web pod is not Running with an IP on {}: {line}",
            c.node
        );
    }
    c.kubectl(&["scale", "deployment/web", "--replicas=3"])?;
    c.rollout_status("deployment/web")?;
    let ready = c.jsonpath(&["get", "deployment", "web"], "{.status.readyReplicas}")?;
    ensure!(ready == "3", "readyReplicas after scaling to 3: {ready}");

    c.kubectl(&["set", "env", "deployment/web", "X=1"])?;
    c.rollout_status("deployment/web")?;
    let history = c.kubectl(&["rollout", "history", "deployment/web"])?;
    let revisions: Vec<&str> = history
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.parse::<u32>().is_ok())
        .collect();
    ensure!(revisions == ["1", "2"], "rollout history:\n{history}");
    let env = c.jsonpath(
        &["get", "pods", "-l", "app=web"],
        "{.items[*].spec.containers[0].env[0].name}",
    )?;
    ensure!(
        c.pods("app=web")?.len() == 3,
        "three web pods after the env change"
    );
    ensure!(env.contains('X'), "new pods carry X=1: {env:?}");
    c.kubectl(&["rollout", "undo", "deployment/web"])?;
    c.rollout_status("deployment/web")?;
    let env = c.jsonpath(
        &["get", "deployment", "web"],
        "{.spec.template.spec.containers[0].env}",
    )?;
    ensure!(
        env.is_empty(),
        "undo brings back the template without X: {env}"
    );
    let history = c.kubectl(&["rollout", "history", "deployment/web"])?;
    ensure!(
        history.lines().any(|l| l.trim_start().starts_with('3')),
        "undo makes revision 3:\n{history}"
    );

    // 2. A Service: from the host through the nftables proxy, from a pod by DNS name.
    c.kubectl(&[
        "expose",
        "deployment",
        "web",
        "--port=80",
        "--target-port=8080",
    ])?;
    let ip = c.jsonpath(&["get", "service", "web"], "{.spec.clusterIP}")?;
    ensure!(ip.starts_with("10.43."), "ClusterIP {ip}");
    let addr = format!("{ip}:80");
    let answer = poll_until(Duration::from_secs(30), "the ClusterIP to answer", || {
        Ok(http_get(&addr, "/x").ok().filter(|a| a.contains(PAGE)))
    })?;
    ensure!(answer.starts_with("HTTP/1."), "answer: {answer}");

    c.kubectl(&[
        "create",
        "job",
        "fetch",
        "--image=busybox:stable",
        "--",
        "sh",
        "-c",
        "printf 'GET /x HTTP/1.0\\r\\n\\r\\n' | nc web.default.svc.cluster.local 80 | grep hello-from-meso",
    ])?;
    c.kubectl_long(
        &[
            "wait",
            "--for=condition=Complete",
            "job/fetch",
            "--timeout=90s",
        ],
        Duration::from_secs(100),
    )?;
    // The job succeeds only if grep found the page in nc's answer; a finished pod's logs stay
    // readable.
    let logs = c.kubectl(&["logs", "job/fetch"])?;
    ensure!(
        logs.contains("hello-from-meso"),
        "kubectl logs job/fetch: {logs:?}"
    );

    // 3. logs and exec through the real server and the agent's serving certificate.
    let pods = c.pods("app=web")?;
    let pod = pods.first().context("no web pod")?;
    let logs = c.kubectl(&["logs", pod])?;
    ensure!(logs.contains("web-serving"), "kubectl logs {pod}: {logs:?}");
    let out = c.kubectl(&["exec", pod, "--", "echo", "exec-works"])?;
    ensure!(out == "exec-works\n", "kubectl exec {pod}: {out:?}");

    // 4. Helm 4: a created chart adapted to busybox, installed with --wait, tested.
    helm_chart(c)?;

    // 5. Deleting the Deployment removes its ReplicaSets and pods (background cascade).
    c.kubectl(&["delete", "deployment", "web"])?;
    c.kubectl(&["delete", "job", "fetch"])?;
    poll_until(
        Duration::from_secs(60),
        "web ReplicaSets and pods gone",
        || {
            let rs = c.kubectl(&["get", "replicasets", "-l", "app=web", "-o", "name"])?;
            let pods = c.kubectl(&["get", "pods", "-l", "app=web", "-o", "name"])?;
            Ok((rs.trim().is_empty() && pods.trim().is_empty()).then_some(()))
        },
    )?;
    // Leave no containers behind: every pod gone before the server stops.
    c.kubectl(&["delete", "pods", "--all", "--wait=false"])?;
    poll_until(Duration::from_secs(60), "all pods gone", || {
        let pods = c.kubectl(&["get", "pods", "-o", "name"])?;
        Ok(pods.trim().is_empty().then_some(()))
    })?;
    Ok(())
}

fn helm_chart(c: &Cluster) -> Result<()> {
    let timeout = Duration::from_secs(150);
    c.helm(&["create", "demo"], timeout)?;
    let chart = c.srv.scratch_dir().join("demo");
    let edit = |file: &str, from: &str, to: &str| -> Result<()> {
        let p = chart.join(file);
        let text = std::fs::read_to_string(&p).with_context(|| format!("reading {file}"))?;
        ensure!(text.contains(from), "{file} has no {from:?}:\n{text}");
        std::fs::write(&p, text.replacen(from, to, 1)).with_context(|| format!("writing {file}"))
    };
    edit("values.yaml", "repository: nginx", "repository: busybox")?;
    edit("values.yaml", "tag: \"\"", "tag: stable")?;
    ensure!(
        std::fs::read_to_string(chart.join("values.yaml"))?.contains("pullPolicy: IfNotPresent"),
        "the chart pulls only if not present"
    );
    edit(
        "templates/deployment.yaml",
        "imagePullPolicy: {{ .Values.image.pullPolicy }}\n",
        "imagePullPolicy: {{ .Values.image.pullPolicy }}\n          command: [\"sh\", \"-c\", \"mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p {{ .Values.service.port }} -h /www\"]\n",
    )?;
    // The chart's test runs `wget` from `busybox` (latest, pulled); ours asks with nc.
    std::fs::write(
        chart.join("templates/tests/test-connection.yaml"),
        r#"apiVersion: v1
kind: Pod
metadata:
  name: "{{ include "demo.fullname" . }}-test-connection"
  labels:
    {{- include "demo.labels" . | nindent 4 }}
  annotations:
    "helm.sh/hook": test
spec:
  containers:
    - name: nc
      image: busybox:stable
      imagePullPolicy: IfNotPresent
      command: ["sh", "-c", "printf 'GET / HTTP/1.0\r\n\r\n' | nc {{ include "demo.fullname" . }} {{ .Values.service.port }} | grep '200 OK'"]
  restartPolicy: Never
"#,
    )
    .context("writing the chart's test")?;
    c.helm(
        &["install", "demo", "./demo", "--wait", "--timeout", "2m"],
        timeout,
    )?;
    let ready = c.jsonpath(&["get", "deployment", "demo"], "{.status.readyReplicas}")?;
    ensure!(
        ready == "1",
        "demo readyReplicas after helm --wait: {ready}"
    );
    let out = c.helm(&["test", "demo", "--timeout", "2m"], timeout)?;
    ensure!(out.contains("Succeeded"), "helm test: {out}");
    c.helm(&["uninstall", "demo", "--wait", "--timeout", "2m"], timeout)?;
    let left = c.kubectl(&[
        "get",
        "deployment,service",
        "-l",
        "app.kubernetes.io/instance=demo",
        "-o",
        "name",
    ])?;
    ensure!(left.trim().is_empty(), "left after helm uninstall: {left}");
    Ok(())
}
