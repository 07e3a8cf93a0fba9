//! The namespace controller against a real `meso server` (bare control plane) with the
//! controller manager in-process and the simulated kubelet of `common`: deleting a namespace
//! empties it (every resource found through discovery, custom resources included, pods
//! terminating gracefully), then
//! removes it;
//! content held by a finalizer keeps it Terminating with upstream's conditions; nothing new
//! may be created in a terminating namespace.

use crate::common;

use anyhow::{ensure, Context as _, Result};
use common::{Cluster, Sim};
use serde_json::Value;

fn condition<'a>(ns: &'a Value, type_: &str) -> Option<&'a Value> {
    ns["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

/// Whether `kubectl get <what> -n <ns> --ignore-not-found -o name` lists nothing.
fn none_left(c: &Cluster, what: &str, ns: &str) -> Result<bool> {
    let out = c.kubectl(&["get", what, "-n", ns, "--ignore-not-found", "-o", "name"])?;
    Ok(out.trim().is_empty())
}

fn namespace_gone(c: &Cluster, ns: &str) -> Result<bool> {
    let out = c.kubectl(&["get", "namespace", ns, "--ignore-not-found", "-o", "name"])?;
    Ok(out.trim().is_empty())
}

#[test]
fn deleting_a_namespace_empties_and_removes_it() -> Result<()> {
    let Some(c) = Cluster::start()? else {
        return Ok(());
    };
    c.node("ns-node", serde_json::json!({}), serde_json::json!([]))?;

    // 1. A namespace full of things: all of it goes, then the namespace.
    c.namespace("doomed", Some(Sim::Ready))?;
    c.kubectl(&[
        "create",
        "configmap",
        "cm",
        "-n",
        "doomed",
        "--from-literal=k=v",
    ])?;
    c.kubectl(&[
        "create",
        "secret",
        "generic",
        "s",
        "-n",
        "doomed",
        "--from-literal=k=v",
    ])?;
    c.kubectl(&[
        "create",
        "deployment",
        "web",
        "-n",
        "doomed",
        "--image=busybox",
        "--replicas=2",
    ])?;
    c.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: bound, namespace: doomed}
spec:
  nodeName: ns-node
  terminationGracePeriodSeconds: 2
  containers: [{name: c, image: busybox}]
"#,
    )?;
    c.wait("the deployment's pods", 30, |c| {
        Ok((common::count_pods(c, "doomed", "app=web")? == 2).then_some(()))
    })?;
    // A custom resource: the controller finds its type through discovery.
    c.apply(
        r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.golden.example.com}
spec:
  group: golden.example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, listKind: WidgetList, shortNames: [wdg]}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, properties: {size: {type: integer}}}
"#,
    )?;
    c.kubectl(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.golden.example.com",
        "--timeout=20s",
    ])?;
    c.apply(
        r#"
apiVersion: golden.example.com/v1
kind: Widget
metadata: {name: w, namespace: doomed}
spec: {size: 1}
"#,
    )?;
    ensure!(
        !none_left(&c, "widgets", "doomed")?,
        "the widget was created"
    );
    // kubectl 1.32 waits for the namespace to be gone.
    let out = c.kubectl(&["delete", "namespace", "doomed", "--timeout=50s"])?;
    ensure!(out.contains("namespace \"doomed\" deleted"), "{out}");
    ensure!(namespace_gone(&c, "doomed")?, "the namespace is gone");
    for what in [
        "configmaps",
        "secrets",
        "deployments",
        "replicasets",
        "pods",
        "serviceaccounts",
        "widgets",
    ] {
        ensure!(none_left(&c, what, "doomed")?, "{what} left in doomed");
    }

    // 2. An object with a finalizer keeps the namespace Terminating.
    c.namespace("held", None)?;
    c.apply(
        r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: held-cm, namespace: held, finalizers: [example.com/hold]}
data: {k: v}
"#,
    )?;
    c.kubectl(&["delete", "namespace", "held", "--wait=false"])?;
    let ns = c.wait("the finalizers-remaining condition", 40, |c| {
        let ns = c.json(&["get", "namespace", "held"])?;
        let found =
            condition(&ns, "NamespaceFinalizersRemaining").is_some_and(|c| c["status"] == "True");
        Ok(found.then_some(ns))
    })?;
    assert_eq!(ns["status"]["phase"], "Terminating");
    assert_eq!(ns["spec"]["finalizers"], serde_json::json!(["kubernetes"]));
    let fins = condition(&ns, "NamespaceFinalizersRemaining").cloned();
    let fins = fins.context("NamespaceFinalizersRemaining")?;
    assert_eq!(fins["reason"], "SomeFinalizersRemain");
    assert_eq!(
        fins["message"],
        "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
    );
    let left = condition(&ns, "NamespaceContentRemaining").cloned();
    let left = left.context("NamespaceContentRemaining")?;
    assert_eq!(left["status"], "True");
    assert_eq!(left["reason"], "SomeResourcesRemain");
    assert_eq!(
        left["message"],
        "Some resources are remaining: configmaps. has 1 resource instances"
    );
    let discovered = condition(&ns, "NamespaceDeletionDiscoveryFailure").cloned();
    let discovered = discovered.context("NamespaceDeletionDiscoveryFailure")?;
    assert_eq!(discovered["status"], "False");
    assert_eq!(discovered["reason"], "ResourcesDiscovered");
    assert_eq!(
        discovered["message"],
        "All resources successfully discovered"
    );
    let content = condition(&ns, "NamespaceDeletionContentFailure").cloned();
    assert_eq!(
        content.context("NamespaceDeletionContentFailure")?["reason"],
        "ContentDeleted"
    );

    // 3. Nothing new in a terminating namespace: 403 as upstream's NamespaceLifecycle.
    let (code, status) = meso_tests::block_on_thread(|| async {
        let http = c.server.http()?;
        let r = http
            .post(c.server.url("/api/v1/namespaces/held/configmaps")?)
            .json(&serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "late"}, "data": {"a": "b"}}))
            .send()
            .await?;
        let code = r.status().as_u16();
        let body: Value = r.json().await?;
        anyhow::Ok((code, body))
    })?;
    assert_eq!(code, 403, "{status}");
    assert_eq!(status["reason"], "Forbidden");
    assert_eq!(
        status["message"],
        "configmaps \"late\" is forbidden: unable to create new content in namespace held because it is being terminated"
    );
    assert_eq!(status["details"]["name"], "late");
    assert_eq!(status["details"]["kind"], "configmaps");
    assert_eq!(
        status["details"]["causes"],
        serde_json::json!([{"reason": "NamespaceTerminating",
            "message": "namespace held is being terminated", "field": "metadata.namespace"}])
    );

    // 4. The finalizer goes: the object, then the namespace.
    c.kubectl(&[
        "patch",
        "configmap",
        "held-cm",
        "-n",
        "held",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ])?;
    c.wait("the held namespace gone", 40, |c| {
        Ok(namespace_gone(c, "held")?.then_some(()))
    })?;

    // The namespaces every cluster has may not be deleted.
    let out = c
        .server
        .kubectl(&c.k, &["delete", "namespace", "default"])?;
    ensure!(!out.status.success(), "deleting default succeeded");
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        err.contains("namespaces \"default\" is forbidden: this namespace may not be deleted"),
        "{err}"
    );
    Ok(())
}
