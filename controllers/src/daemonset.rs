//! The DaemonSet controller, as upstream's `pkg/controller/daemon`: one pod on every node the
//! pod may run on (nodeSelector, required node affinity, taints against the pod's tolerations
//! plus the ones the controller adds), each created with a required node affinity on
//! `metadata.name` so that the scheduler places it; RollingUpdate with `maxUnavailable` and
//! `maxSurge`, or OnDelete; ControllerRevisions for `kubectl rollout history|undo`; and the
//! status `kubectl rollout status` reads.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Node, Pod, PodTemplateSpec, Toleration};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::ResourceExt;
use meso_scheduler::model::{pod_matches_node_selector, untolerated_taint, NodeInfo, PodInfo};
use serde_json::json;

use crate::history::{self, REVISION_HASH_LABEL};
use crate::scaffold::{run_controller, Context, Error, Result};
use crate::util;

const COMPONENT: &str = "daemonset-controller";
/// The deprecated label upstream still puts on daemon pods.
const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";

pub fn controller(ctx: &Arc<Context>) -> BoxFuture<'static, ()> {
    let sets = ctx.informers.get::<DaemonSet>();
    let pods = ctx.informers.get::<Pod>();
    let nodes = ctx.informers.get::<Node>();
    let revisions = ctx.informers.get::<ControllerRevision>();
    let all = sets.store();
    let c = Controller::for_shared_stream(sets.subscribe(), sets.store())
        .watches_shared_stream(
            pods.subscribe(),
            util::owner_or_adopters(sets.store(), |s: &DaemonSet| {
                s.spec.as_ref().map(|s| &s.selector)
            }),
        )
        .owns_shared_stream(revisions.subscribe())
        // Any node change may change where every daemon set should run.
        .watches_shared_stream(nodes.subscribe(), move |_node: Arc<Node>| {
            all.state()
                .iter()
                .map(|d| ObjectRef::from_obj(d.as_ref()))
                .collect::<Vec<_>>()
        });
    run_controller(COMPONENT, c, ctx.clone(), reconcile)
}

/// The tolerations the controller adds to every daemon pod (upstream's
/// `AddOrUpdateDaemonPodTolerations`).
pub fn default_tolerations(host_network: bool) -> Vec<Toleration> {
    let mut t: Vec<(&str, &str)> = vec![
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if host_network {
        t.push(("node.kubernetes.io/network-unavailable", "NoSchedule"));
    }
    t.into_iter()
        .map(|(key, effect)| Toleration {
            key: Some(key.into()),
            operator: Some("Exists".into()),
            effect: Some(effect.into()),
            ..Default::default()
        })
        .collect()
}

/// The template's tolerations with the defaults added (the ones with the same key and effect
/// are replaced, as upstream).
fn with_default_tolerations(template: &PodTemplateSpec) -> Vec<Toleration> {
    let spec = template.spec.clone().unwrap_or_default();
    let mut t = spec.tolerations.unwrap_or_default();
    for d in default_tolerations(spec.host_network.unwrap_or(false)) {
        t.retain(|x| !(x.key == d.key && x.effect == d.effect));
        t.push(d);
    }
    t
}

/// Whether a daemon pod should run on `node` (a new one may be placed) and whether an existing
/// one may stay (only an untolerated NoExecute taint evicts), as upstream's
/// `NodeShouldRunDaemonPod`.
pub fn should_run(template: &PodTemplateSpec, node: &Node) -> (bool, bool) {
    let mut spec = template.spec.clone().unwrap_or_default();
    spec.tolerations = Some(with_default_tolerations(template));
    let pod = PodInfo::new(Pod {
        metadata: template.metadata.clone().unwrap_or_default(),
        spec: Some(spec),
        status: None,
    });
    let mut info = NodeInfo::new(&node.name_any());
    info.set_node(Arc::new(node.clone()));
    if !pod_matches_node_selector(&pod, &info) {
        return (false, false);
    }
    let tolerations = pod.tolerations();
    let run = untolerated_taint(&info.taints, tolerations, &["NoSchedule", "NoExecute"]).is_none();
    let stay = untolerated_taint(&info.taints, tolerations, &["NoExecute"]).is_none();
    (run, stay)
}

/// The node a daemon pod is for: its `nodeName`, or the node its affinity names.
fn node_of(p: &Pod) -> Option<String> {
    let spec = p.spec.as_ref()?;
    if let Some(n) = spec.node_name.clone().filter(|n| !n.is_empty()) {
        return Some(n);
    }
    spec.affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms
        .iter()
        .flat_map(|t| t.match_fields.iter().flatten())
        .find(|r| r.key == "metadata.name" && r.operator == "In")
        .and_then(|r| r.values.as_ref()?.first().cloned())
}

/// `IntOrString` of `total`, percentages rounded up.
fn scaled(v: Option<&IntOrString>, total: i32, default: i32) -> i32 {
    match v {
        None => default,
        Some(IntOrString::Int(i)) => *i,
        Some(IntOrString::String(s)) => s
            .strip_suffix('%')
            .and_then(|p| p.parse::<i64>().ok())
            .map_or(default, |p| ((p * i64::from(total) + 99) / 100) as i32),
    }
}

/// The daemon pod for `node`: the template with the default tolerations and a required node
/// affinity on the node's name (replacing the template's terms, which were checked already).
fn new_pod(ds: &DaemonSet, node: &str, hash: &str) -> Result<Pod> {
    let spec = ds.spec.clone().unwrap_or_default();
    let ns = ds.namespace().unwrap_or_default();
    let mut template = spec.template.clone();
    let tolerations = with_default_tolerations(&template);
    let pod_spec = template.spec.get_or_insert_with(Default::default);
    pod_spec.tolerations = Some(tolerations);
    let affinity = pod_spec.affinity.get_or_insert_with(Default::default);
    let node_affinity = affinity.node_affinity.get_or_insert_with(Default::default);
    node_affinity.required_during_scheduling_ignored_during_execution = Some(
        serde_json::from_value(json!({"nodeSelectorTerms": [{"matchFields": [
            {"key": "metadata.name", "operator": "In", "values": [node]}]}]}))?,
    );
    let labels = template
        .metadata
        .get_or_insert_with(Default::default)
        .labels
        .get_or_insert_with(Default::default);
    labels.insert(REVISION_HASH_LABEL.into(), hash.into());
    labels.insert(
        TEMPLATE_GENERATION_LABEL.into(),
        ds.metadata.generation.unwrap_or(0).to_string(),
    );
    util::pod_from_template(
        &template,
        &ns,
        &format!("{}-", ds.name_any()),
        util::controller_owner_ref(ds),
    )
}

/// The pod control of one sync, which remembers its first failure and goes on.
struct DaemonPods<'a> {
    pods: util::PodControl<'a, DaemonSet>,
    failure: Option<Error>,
}

impl DaemonPods<'_> {
    async fn create(&mut self, node: &str, hash: &str) {
        let result = match new_pod(self.pods.owner, node, hash) {
            Ok(pod) => self.pods.create(&pod).await.map(drop),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            self.failure.get_or_insert(e);
        }
    }

    async fn delete(&mut self, pod: &Pod) {
        if let Err(e) = self.pods.delete(pod).await {
            self.failure.get_or_insert(e);
        }
    }
}

async fn reconcile(ds: Arc<DaemonSet>, ctx: Arc<Context>) -> Result<Action> {
    if ds.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ns = ds.namespace().unwrap_or_default();
    let name = ds.name_any();
    let key = format!("{COMPONENT}/{ns}/{name}");
    let spec = ds.spec.clone().unwrap_or_default();
    let status = ds.status.clone().unwrap_or_default();
    let min_ready = spec.min_ready_seconds.unwrap_or(0);

    let (in_ns, synced) = util::namespace_pods(&ctx, &key, &ns);
    let owner = util::controller_owner_ref(ds.as_ref());
    let client = ctx.client.clone();
    let pods = util::claim(
        |ns| Api::namespaced(client.clone(), ns),
        &owner,
        false,
        &spec.selector,
        in_ns,
    )
    .await?;
    let history = history::sync(
        &ctx,
        ds.as_ref(),
        &spec.selector,
        &spec.template,
        status.collision_count.unwrap_or(0),
    )
    .await?;
    let hash = history::hash_of(&history.update)
        .unwrap_or_default()
        .to_string();

    let nodes = ctx.informers.get::<Node>().store().state();
    let mut by_node: HashMap<String, Vec<Arc<Pod>>> = HashMap::new();
    for p in &pods {
        if let Some(n) = node_of(p) {
            by_node.entry(n).or_default().push(p.clone());
        }
    }
    let live = |n: &str| -> Vec<Arc<Pod>> {
        let mut v: Vec<Arc<Pod>> = by_node
            .get(n)
            .into_iter()
            .flatten()
            .filter(|p| p.metadata.deletion_timestamp.is_none() && !util::pod_is_terminal(p))
            .cloned()
            .collect();
        // Oldest first: the one kept when there are too many.
        v.sort_by_key(|p| p.metadata.creation_timestamp.clone().map(|t| t.0));
        v
    };
    let eligibility: Vec<(String, bool, bool)> = nodes
        .iter()
        .map(|n| {
            let (run, stay) = should_run(&spec.template, n);
            (n.name_any(), run, stay)
        })
        .collect();
    let desired = eligibility.iter().filter(|e| e.1).count() as i32;
    let strategy = spec.update_strategy.clone().unwrap_or_default();
    let rolling = strategy.type_.as_deref() != Some("OnDelete");
    let ru = strategy.rolling_update.clone().unwrap_or_default();
    let max_surge = scaled(ru.max_surge.as_ref(), desired, 0).max(0);
    let mut max_unavailable = scaled(ru.max_unavailable.as_ref(), desired, 1).max(0);
    if max_surge == 0 && max_unavailable == 0 {
        max_unavailable = 1;
    }

    let mut sync = DaemonPods {
        pods: util::PodControl::new(&ctx, COMPONENT, ds.as_ref(), &key),
        failure: None,
    };
    let mut requeue: Option<Duration> = None;
    if synced {
        // Pods for nodes that are gone.
        for (node, ps) in &by_node {
            if !eligibility.iter().any(|e| &e.0 == node) {
                for p in ps
                    .iter()
                    .filter(|p| p.metadata.deletion_timestamp.is_none())
                {
                    sync.delete(p).await;
                }
            }
        }
        let mut unavailable = 0;
        let mut surging = 0;
        let mut outdated: Vec<(String, Vec<Arc<Pod>>)> = Vec::new();
        for (node, run, stay) in &eligibility {
            let here = live(node);
            let failed: Vec<&Arc<Pod>> = by_node
                .get(node)
                .into_iter()
                .flatten()
                .filter(|p| util::pod_is_terminal(p) && p.metadata.deletion_timestamp.is_none())
                .collect();
            if !failed.is_empty() {
                // A failed daemon pod is replaced, with a per-node backoff (1 s doubling up to
                // 15 minutes, as upstream) so that a pod the node keeps rejecting does not
                // loop.
                let backoff_key = format!("{}/{node}", ds.uid().unwrap_or_default());
                match failure_backoff(&ctx.pod_failures, &backoff_key, tokio::time::Instant::now())
                {
                    Some(wait) => {
                        requeue = Some(requeue.map_or(wait, |r: Duration| r.min(wait)));
                        continue;
                    }
                    None => {
                        for p in failed {
                            sync.delete(p).await;
                        }
                    }
                }
            }
            if *run {
                let new: Vec<&Arc<Pod>> = here
                    .iter()
                    .filter(|p| revision_hash(p) == Some(hash.as_str()))
                    .collect();
                if here.is_empty() {
                    sync.create(node, &hash).await;
                    unavailable += 1;
                    continue;
                }
                if !here.iter().any(|p| util::pod_is_available(p, min_ready)) {
                    unavailable += 1;
                }
                if rolling && new.len() < here.len() {
                    if !new.is_empty() {
                        surging += 1;
                    }
                    outdated.push((node.clone(), here.clone()));
                } else if here.len() > 1 {
                    for p in &here[1..] {
                        sync.delete(p).await;
                    }
                }
            } else if !stay {
                for p in &here {
                    sync.delete(p).await;
                }
            } else if here.len() > 1 {
                for p in &here[1..] {
                    sync.delete(p).await;
                }
            }
        }
        // Rolling update, node by node.
        for (node, here) in outdated {
            let (new, old): (Vec<_>, Vec<_>) = here
                .iter()
                .partition(|p| revision_hash(p) == Some(hash.as_str()));
            let old_available = old.iter().any(|p| util::pod_is_available(p, min_ready));
            if max_surge > 0 {
                match new.first() {
                    Some(n) if util::pod_is_available(n, min_ready) => {
                        for p in old {
                            sync.delete(p).await;
                        }
                    }
                    Some(_) => {}
                    None if !old_available => {
                        for p in old {
                            sync.delete(p).await;
                        }
                    }
                    None if surging < max_surge => {
                        surging += 1;
                        sync.create(&node, &hash).await;
                    }
                    None => {}
                }
            } else if !old_available {
                for p in old {
                    sync.delete(p).await;
                }
            } else if unavailable < max_unavailable {
                unavailable += 1;
                for p in old {
                    sync.delete(p).await;
                }
            }
        }
    }

    // Status, node by node, from the pods as observed.
    let (mut current, mut misscheduled, mut ready, mut available, mut updated) = (0, 0, 0, 0, 0);
    for (node, run, _) in &eligibility {
        let here = live(node);
        if !*run {
            if !here.is_empty() {
                misscheduled += 1;
            }
            continue;
        }
        if here.is_empty() {
            continue;
        }
        current += 1;
        if here.iter().any(|p| util::pod_is_ready(p)) {
            ready += 1;
        }
        if here.iter().any(|p| util::pod_is_available(p, min_ready)) {
            available += 1;
        }
        if here.iter().any(|p| revision_hash(p) == Some(hash.as_str())) {
            updated += 1;
        }
    }
    let st = json!({
        "desiredNumberScheduled": desired,
        "currentNumberScheduled": current,
        "numberMisscheduled": misscheduled,
        "numberReady": ready,
        "numberAvailable": available,
        "numberUnavailable": desired - available,
        "updatedNumberScheduled": updated,
        "observedGeneration": ds.metadata.generation,
        "collisionCount": history.collision_count,
    });
    let old = serde_json::to_value(&status)?;
    let changed = st.as_object().is_some_and(|o| {
        o.iter()
            .any(|(k, v)| old.get(k).cloned().unwrap_or(json!(0)) != *v)
    });
    if changed {
        let api: Api<DaemonSet> = Api::namespaced(ctx.client.clone(), &ns);
        util::absent_ok(
            api.patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"status": st})),
            )
            .await,
        )?;
    }
    let hashes: Vec<&str> = pods.iter().filter_map(|p| revision_hash(p)).collect();
    history::truncate(
        &ctx,
        &ns,
        &history,
        spec.revision_history_limit.unwrap_or(10),
        |r| history::hash_of(r).is_some_and(|h| hashes.contains(&h)),
    )
    .await?;
    if let Some(e) = sync.failure {
        return Err(e);
    }
    if !synced {
        return Ok(Action::requeue(Duration::from_secs(5)));
    }
    if min_ready > 0 && ready != available {
        let wait = Duration::from_secs(min_ready as u64);
        requeue = Some(requeue.map_or(wait, |r| r.min(wait)));
    }
    Ok(requeue.map_or_else(Action::await_change, Action::requeue))
}

const FAILED_POD_BACKOFF: Duration = Duration::from_secs(1);
const FAILED_POD_BACKOFF_MAX: Duration = Duration::from_secs(15 * 60);

type FailureTable = std::collections::HashMap<String, (u32, tokio::time::Instant)>;

/// `None` when a failed pod under `key` may be replaced at `now` (which counts one more
/// failure), else how long to wait.
fn failure_backoff(
    table: &std::sync::Mutex<FailureTable>,
    key: &str,
    now: tokio::time::Instant,
) -> Option<Duration> {
    let mut f = table.lock().unwrap_or_else(|e| e.into_inner());
    let n = match f.get(key).copied() {
        Some((n, at)) => {
            let delay = FAILED_POD_BACKOFF
                .saturating_mul(1 << n.saturating_sub(1).min(20))
                .min(FAILED_POD_BACKOFF_MAX);
            if now < at + delay {
                return Some(at + delay - now);
            }
            // Quiet for twice the longest delay: start over.
            if now > at + 2 * FAILED_POD_BACKOFF_MAX {
                0
            } else {
                n
            }
        }
        None => 0,
    };
    f.insert(key.to_string(), (n + 1, now));
    None
}

fn revision_hash(p: &Pod) -> Option<&str> {
    p.labels().get(REVISION_HASH_LABEL).map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(labels: serde_json::Value, taints: serde_json::Value) -> Node {
        serde_json::from_value(json!({"metadata": {"name": "n1", "labels": labels},
            "spec": {"taints": taints}}))
        .unwrap_or_default()
    }

    #[test]
    fn failed_pod_backoff_doubles() {
        let table = std::sync::Mutex::default();
        let t0 = tokio::time::Instant::now();
        let s = Duration::from_secs;
        assert_eq!(failure_backoff(&table, "k", t0), None);
        assert_eq!(
            failure_backoff(&table, "k", t0 + Duration::from_millis(400)),
            Some(Duration::from_millis(600))
        );
        assert_eq!(failure_backoff(&table, "k", t0 + s(1)), None);
        assert_eq!(failure_backoff(&table, "k", t0 + s(2)), Some(s(1)));
        assert_eq!(failure_backoff(&table, "k", t0 + s(3)), None);
        assert_eq!(failure_backoff(&table, "k", t0 + s(4)), Some(s(3)));
        assert_eq!(failure_backoff(&table, "other", t0 + s(4)), None);
    }

    #[test]
    fn eligibility() {
        let t: PodTemplateSpec = serde_json::from_value(json!({"spec": {
            "nodeSelector": {"disk": "ssd"},
            "containers": [{"name": "c", "image": "busybox"}]}}))
        .unwrap_or_default();
        assert_eq!(
            should_run(&t, &node(json!({"disk": "ssd"}), json!([]))),
            (true, true)
        );
        assert_eq!(should_run(&t, &node(json!({}), json!([]))), (false, false));
        let tainted = |effect: &str| {
            node(
                json!({"disk": "ssd"}),
                json!([{"key": "dedicated", "value": "db", "effect": effect}]),
            )
        };
        assert_eq!(should_run(&t, &tainted("NoSchedule")), (false, true));
        assert_eq!(should_run(&t, &tainted("NoExecute")), (false, false));
        assert_eq!(should_run(&t, &tainted("PreferNoSchedule")), (true, true));
        // The default tolerations cover a not-ready node and a cordoned one.
        let not_ready = node(
            json!({"disk": "ssd"}),
            json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"},
                   {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]),
        );
        assert_eq!(should_run(&t, &not_ready), (true, true));
        let affinity: PodTemplateSpec = serde_json::from_value(json!({"spec": {
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                {"nodeSelectorTerms": [{"matchFields": [
                    {"key": "metadata.name", "operator": "In", "values": ["n2"]}]}]}}},
            "containers": [{"name": "c", "image": "busybox"}]}}))
        .unwrap_or_default();
        assert_eq!(
            should_run(&affinity, &node(json!({}), json!([]))),
            (false, false)
        );
        let pod = new_pod(
            &serde_json::from_value(json!({"metadata": {"name": "ds", "namespace": "x"},
                "spec": {"selector": {}, "template": affinity}}))
            .unwrap_or_default(),
            "n1",
            "abc",
        )
        .ok();
        assert_eq!(pod.as_ref().and_then(node_of).as_deref(), Some("n1"));
        assert_eq!(
            pod.as_ref()
                .and_then(|p| revision_hash(p).map(String::from))
                .as_deref(),
            Some("abc")
        );
    }
}
