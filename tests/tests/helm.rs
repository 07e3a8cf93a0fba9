//! Helm 4 against `meso server` (issue 3, "How it is checked"): `helm create`, install (Helm 4
//! installs with server-side apply), upgrade, history, rollback, uninstall, and
//! `helm template | kubectl apply --server-side -f -`. No `--wait`: pods need a kubelet.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use meso_tests::{poll_until, run_bounded, Kubectl, MesoServer};
use serde_json::Value;

const HELM_TIMEOUT: Duration = Duration::from_secs(120);

struct Helm<'a> {
    bin: PathBuf,
    srv: &'a MesoServer,
}

impl Helm<'_> {
    fn command(&self, args: &[&str]) -> Command {
        let home = self.srv.scratch_dir().join("helm-home");
        let mut cmd = Command::new(&self.bin);
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
        cmd
    }

    fn run(&self, args: &[&str]) -> Result<std::process::Output> {
        run_bounded(self.command(args), None, HELM_TIMEOUT)
    }

    fn ok(&self, args: &[&str]) -> Result<String> {
        let out = self.run(args)?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            bail!(
                "helm {} failed with {}\nstdout:\n{stdout}\nstderr:\n{}\n{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr),
                self.srv.log_tail(30)
            );
        }
        Ok(stdout)
    }
}

fn setup() -> Result<Option<(PathBuf, Kubectl)>> {
    let Some(helm) = meso_tests::helm() else {
        return Ok(None);
    };
    let Some(k) = meso_tests::kubectl_135().or_else(meso_tests::kubectl_132) else {
        return Ok(None);
    };
    Ok(Some((helm, k)))
}

fn kget(srv: &MesoServer, k: &Kubectl, ns: &str, what: &[&str]) -> Result<Value> {
    let mut args = vec!["-n", ns, "get"];
    args.extend_from_slice(what);
    args.extend_from_slice(&["-o", "json", "--show-managed-fields"]);
    let out = srv.kubectl_ok(k, &args)?;
    serde_json::from_str(&out).with_context(|| format!("kubectl output is not JSON:\n{out}"))
}

fn exists(srv: &MesoServer, k: &Kubectl, ns: &str, what: &[&str]) -> Result<bool> {
    let mut args = vec!["-n", ns, "get"];
    args.extend_from_slice(what);
    args.extend_from_slice(&["-o", "name", "--ignore-not-found"]);
    Ok(!srv.kubectl_ok(k, &args)?.trim().is_empty())
}

fn replicas(srv: &MesoServer, k: &Kubectl, ns: &str) -> Result<Value> {
    Ok(kget(srv, k, ns, &["deployment", "demo"])?["spec"]["replicas"].clone())
}

fn release_secrets(srv: &MesoServer, k: &Kubectl, ns: &str) -> Result<Vec<String>> {
    let v = kget(srv, k, ns, &["secrets", "-l", "owner=helm,name=demo"])?;
    let mut names: Vec<String> = v["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s["metadata"]["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    Ok(names)
}

fn history(helm: &Helm<'_>, ns: &str) -> Result<Vec<(i64, String, String)>> {
    let out = helm.ok(&["history", "demo", "-n", ns, "-o", "json"])?;
    let v: Value = serde_json::from_str(&out).with_context(|| format!("history JSON: {out}"))?;
    Ok(v.as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    (
                        r["revision"].as_i64().unwrap_or(-1),
                        r["status"].as_str().unwrap_or("").to_string(),
                        r["description"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default())
}

fn chart(srv: &MesoServer, helm: &Helm<'_>) -> Result<String> {
    helm.ok(&["create", "demo"])?;
    let dir = srv.scratch_dir().join("demo");
    ensure!(
        dir.join("Chart.yaml").is_file() && dir.join("templates/deployment.yaml").is_file(),
        "helm create did not write the chart"
    );
    Ok(path_str(&dir))
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

#[test]
fn helm_install_upgrade_history_rollback_uninstall() -> Result<()> {
    let Some((bin, k)) = setup()? else {
        return Ok(());
    };
    let srv = MesoServer::start()?;
    let helm = Helm { bin, srv: &srv };
    let chart = chart(&srv, &helm)?;
    let ns = "default";

    let out = helm.ok(&["install", "demo", &chart, "-n", ns])?;
    ensure!(
        out.contains("STATUS: deployed") && out.contains("REVISION: 1"),
        "helm install output:\n{out}"
    );
    let d = kget(&srv, &k, ns, &["deployment", "demo"])?;
    assert_eq!(d["spec"]["replicas"], 1, "{d}");
    assert_eq!(
        d["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "Helm"
    );
    assert_eq!(
        d["metadata"]["annotations"]["meta.helm.sh/release-name"],
        "demo"
    );
    let image = d["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or("");
    ensure!(image.starts_with("nginx:"), "chart image: {image}");
    // Helm 4 installs with server-side apply: the objects carry an Apply entry by "helm".
    let mf = d["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    ensure!(
        mf.iter()
            .any(|m| m["manager"] == "helm" && m["operation"] == "Apply"),
        "no server-side apply entry by helm: {mf:?}"
    );
    let svc = kget(&srv, &k, ns, &["service", "demo"])?;
    assert_eq!(svc["spec"]["type"], "ClusterIP");
    assert_eq!(svc["spec"]["ports"][0]["port"], 80);
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], "http");
    ensure!(exists(&srv, &k, ns, &["serviceaccount", "demo"])?);
    assert_eq!(
        release_secrets(&srv, &k, ns)?,
        ["sh.helm.release.v1.demo.v1"]
    );
    let rel = kget(&srv, &k, ns, &["secret", "sh.helm.release.v1.demo.v1"])?;
    assert_eq!(rel["type"], "helm.sh/release.v1");
    assert_eq!(rel["metadata"]["labels"]["status"], "deployed");

    let list = helm.ok(&["list", "-n", ns, "-o", "json"])?;
    let list: Value = serde_json::from_str(&list)?;
    assert_eq!(list[0]["name"], "demo", "{list}");
    assert_eq!(list[0]["status"], "deployed");

    // Upgrade.
    let out = helm.ok(&[
        "upgrade",
        "demo",
        &chart,
        "-n",
        ns,
        "--set",
        "replicaCount=3",
    ])?;
    ensure!(out.contains("REVISION: 2"), "helm upgrade output:\n{out}");
    assert_eq!(replicas(&srv, &k, ns)?, 3);
    let h = history(&helm, ns)?;
    ensure!(
        h.len() == 2
            && h[0].0 == 1
            && h[0].1 == "superseded"
            && h[1].0 == 2
            && h[1].1 == "deployed",
        "history after upgrade: {h:?}"
    );
    assert_eq!(
        release_secrets(&srv, &k, ns)?,
        ["sh.helm.release.v1.demo.v1", "sh.helm.release.v1.demo.v2"]
    );

    // Rollback to revision 1.
    helm.ok(&["rollback", "demo", "1", "-n", ns])?;
    assert_eq!(replicas(&srv, &k, ns)?, 1, "rollback restores replicas");
    let h = history(&helm, ns)?;
    ensure!(
        h.len() == 3 && h[2].0 == 3 && h[2].1 == "deployed" && h[2].2.contains("Rollback to 1"),
        "history after rollback: {h:?}"
    );
    let out = helm.ok(&["get", "values", "demo", "-n", ns, "-o", "json"])?;
    ensure!(
        !out.contains("replicaCount"),
        "rolled-back release still has the upgrade's values: {out}"
    );

    // Uninstall removes everything, including the release records.
    let out = helm.ok(&["uninstall", "demo", "-n", ns])?;
    ensure!(out.contains("uninstalled"), "helm uninstall output: {out}");
    poll_until(
        Duration::from_secs(20),
        "helm's objects to disappear",
        || {
            let left: Vec<&str> = ["deployment/demo", "service/demo", "serviceaccount/demo"]
                .into_iter()
                .filter(|w| exists(&srv, &k, ns, &[*w]).unwrap_or(true))
                .collect();
            Ok(left.is_empty().then_some(()))
        },
    )?;
    assert_eq!(release_secrets(&srv, &k, ns)?, Vec::<String>::new());
    let list = helm.ok(&["list", "-n", ns, "-o", "json"])?;
    assert_eq!(list.trim(), "[]");

    // A second release into a namespace Helm creates.
    helm.ok(&[
        "install",
        "demo",
        &chart,
        "-n",
        "apps",
        "--create-namespace",
    ])?;
    assert_eq!(replicas(&srv, &k, "apps")?, 1);
    assert_eq!(
        release_secrets(&srv, &k, "apps")?,
        ["sh.helm.release.v1.demo.v1"]
    );
    Ok(())
}

#[test]
fn helm_template_piped_to_kubectl_server_side_apply() -> Result<()> {
    let Some((bin, k)) = setup()? else {
        return Ok(());
    };
    let srv = MesoServer::start()?;
    let helm = Helm { bin, srv: &srv };
    let chart = chart(&srv, &helm)?;
    let manifest = helm.ok(&["template", "demo", &chart, "--set", "replicaCount=2"])?;
    ensure!(manifest.contains("kind: Deployment"), "{manifest}");

    let out = srv.kubectl_stdin_ok(&k, &["apply", "--server-side", "-f", "-"], &manifest)?;
    for line in [
        "serviceaccount/demo serverside-applied",
        "service/demo serverside-applied",
        "deployment.apps/demo serverside-applied",
    ] {
        ensure!(out.contains(line), "kubectl output lacks {line:?}:\n{out}");
    }
    let d = kget(&srv, &k, "default", &["deployment", "demo"])?;
    assert_eq!(d["spec"]["replicas"], 2);
    let mf = d["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    ensure!(
        mf.iter()
            .any(|m| m["manager"] == "kubectl" && m["operation"] == "Apply"),
        "{mf:?}"
    );
    let sa = kget(&srv, &k, "default", &["serviceaccount", "demo"])?;
    let svc = kget(&srv, &k, "default", &["service", "demo"])?;

    // Applying the same manifest again writes nothing.
    srv.kubectl_stdin_ok(&k, &["apply", "--server-side", "-f", "-"], &manifest)?;
    let sa2 = kget(&srv, &k, "default", &["serviceaccount", "demo"])?;
    let svc2 = kget(&srv, &k, "default", &["service", "demo"])?;
    assert_eq!(
        sa2["metadata"]["resourceVersion"], sa["metadata"]["resourceVersion"],
        "re-apply of an unchanged ServiceAccount wrote"
    );
    assert_eq!(
        svc2["metadata"]["resourceVersion"], svc["metadata"]["resourceVersion"],
        "re-apply of an unchanged Service wrote"
    );
    let d2 = kget(&srv, &k, "default", &["deployment", "demo"])?;
    assert_eq!(d2["metadata"]["generation"], d["metadata"]["generation"]);
    Ok(())
}
