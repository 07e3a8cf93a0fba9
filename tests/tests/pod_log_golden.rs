//! `pods/log` of pods without a reachable kubelet, compared with kube-apiserver v1.36's answers
//! (`/work/shared/upstream/subresources/pod-log-*.json`): an unbound pod answers 204 with no
//! body, a pod bound to a node without addresses answers upstream's 500.

use anyhow::{bail, Result};
use meso_tests::golden::{self, compare_reply};
use meso_tests::MesoServer;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_log_without_a_kubelet_matches_upstream() -> Result<()> {
    let srv = MesoServer::start()?;
    let client = srv.http()?;
    let base = srv.base_url()?;
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bind-demo"},
                     "spec": {"nodeName": "golden-node",
                              "containers": [{"name": "c", "image": "busybox:1.36"}]}});
    let setup = [
        (
            "/api/v1/namespaces",
            golden::load("defaults/namespace.json")?.request.body,
        ),
        (
            "/api/v1/nodes",
            golden::load("defaults/node.json")?.request.body,
        ),
        (
            "/api/v1/namespaces/golden/pods",
            golden::load("defaults/pod-busybox.json")?.request.body,
        ),
        ("/api/v1/namespaces/golden/pods", pod),
    ];
    for (path, body) in setup {
        let r = client
            .post(format!("{base}{path}"))
            .json(&body)
            .send()
            .await?;
        if r.status().as_u16() != 201 {
            bail!("setup POST {path}: {} {}", r.status(), r.text().await?);
        }
    }
    let mut failures = Vec::new();
    for file in [
        "subresources/pod-log-unbound.json",
        "subresources/pod-log-bound-no-kubelet.json",
    ] {
        let cap = golden::load(file)?;
        let reply = golden::replay(&client, &base, &cap.request, &[]).await?;
        let problems = compare_reply(&cap.response, &reply, true);
        failures.push((file.to_string(), problems));
    }
    golden::report("pod logs", &failures, 2)
}
