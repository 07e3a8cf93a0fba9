//! Helpers shared by the controllers: owner references, label selectors, pod state,
//! expectations, adoption and slow-start batches.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Debug;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, OwnerReference, Time};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::Resource;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;

use crate::events::{NORMAL, WARNING};
use crate::scaffold::{Context, Error, Result};

/// PEM armour around DER bytes.
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

pub fn now() -> Time {
    Time(jiff::Timestamp::now())
}

/// Seconds from `t` to now (negative if `t` is in the future).
pub fn seconds_since(t: &Time) -> f64 {
    let d = jiff::Timestamp::now().as_millisecond() - t.0.as_millisecond();
    d as f64 / 1000.0
}

/// The owner reference that marks `owner` as the controller of a dependent.
pub fn controller_owner_ref<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: owner.meta().name.clone().unwrap_or_default(),
        uid: owner.meta().uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The reference to the controller of `obj`, if it has one.
pub fn controller_of<K: Resource>(obj: &K) -> Option<&OwnerReference> {
    obj.meta()
        .owner_references
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|r| r.controller == Some(true))
}

/// Whether `labels` satisfy `selector` (an empty selector matches everything).
pub fn selector_matches(
    selector: &LabelSelector,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    let empty = BTreeMap::new();
    let labels = labels.unwrap_or(&empty);
    let by_labels = selector
        .match_labels
        .as_ref()
        .is_none_or(|m| m.iter().all(|(k, v)| labels.get(k) == Some(v)));
    by_labels
        && selector
            .match_expressions
            .as_deref()
            .unwrap_or_default()
            .iter()
            .all(|e| {
                let values = e.values.as_deref().unwrap_or_default();
                let value = labels.get(&e.key);
                match e.operator.as_str() {
                    "In" => value.is_some_and(|v| values.contains(v)),
                    "NotIn" => value.is_none_or(|v| !values.contains(v)),
                    "Exists" => value.is_some(),
                    "DoesNotExist" => value.is_none(),
                    _ => false,
                }
            })
}

/// Whether `selector` selects nothing at all (an empty selector selects nothing for
/// controllers, as upstream's `LabelSelectorAsSelector` of an empty one is refused).
pub fn selector_is_empty(selector: &LabelSelector) -> bool {
    selector.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(|e| e.is_empty())
}

/// Maps a child to its controller, or, for an orphan, to every owner in its namespace whose
/// selector matches it (which may adopt it), as upstream's informer handlers.
pub fn owner_or_adopters<Owner, Child>(
    owners: Store<Owner>,
    selector: fn(&Owner) -> Option<&LabelSelector>,
) -> impl Fn(Arc<Child>) -> Vec<ObjectRef<Owner>>
where
    Owner: Resource<DynamicType = ()> + Clone + 'static,
    Child: Resource,
{
    move |child: Arc<Child>| {
        let ns = child.meta().namespace.clone().unwrap_or_default();
        match controller_of(child.as_ref()) {
            Some(r) if r.kind == Owner::kind(&()) => vec![ObjectRef::new(&r.name).within(&ns)],
            Some(_) => vec![],
            None => owners
                .state_filter(|o| {
                    o.meta().namespace.as_deref() == Some(ns.as_str())
                        && selector(o).is_some_and(|s| {
                            !selector_is_empty(s)
                                && selector_matches(s, child.meta().labels.as_ref())
                        })
                })
                .iter()
                .map(|o| ObjectRef::from_obj(o.as_ref()))
                .collect(),
        }
    }
}

/// Succeeded or Failed.
pub fn pod_is_terminal(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    matches!(phase, Some("Succeeded" | "Failed"))
}

/// Not terminal and not being deleted.
pub fn pod_is_active(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none() && !pod_is_terminal(pod)
}

/// The `Ready` condition's time of becoming true, if the pod is ready.
pub fn pod_ready_since(pod: &Pod) -> Option<Option<&Time>> {
    pod.status
        .as_ref()?
        .conditions
        .as_deref()?
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")
        .map(|c| c.last_transition_time.as_ref())
}

pub fn pod_is_ready(pod: &Pod) -> bool {
    pod_ready_since(pod).is_some()
}

/// Ready for at least `min_ready_seconds`.
pub fn pod_is_available(pod: &Pod, min_ready_seconds: i32) -> bool {
    match pod_ready_since(pod) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(None) => false,
        Some(Some(t)) => seconds_since(t) >= f64::from(min_ready_seconds),
    }
}

/// A pod from `template`, named `<generate_name>…`, owned by `owner`.
pub fn pod_from_template(
    template: &PodTemplateSpec,
    namespace: &str,
    generate_name: &str,
    owner: OwnerReference,
) -> Result<Pod> {
    let meta = template.metadata.clone().unwrap_or_default();
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": generate_name,
            "namespace": namespace,
            "labels": meta.labels.unwrap_or_default(),
            "annotations": meta.annotations.unwrap_or_default(),
            "finalizers": meta.finalizers.unwrap_or_default(),
            "ownerReferences": [owner],
        },
        "spec": template.spec,
    });
    Ok(serde_json::from_value(pod)?)
}

/// Creations (by name) and deletions (by uid) that a controller issued and its cache has
/// not shown yet; the controller does not act on a stale cache until they are seen (or
/// five minutes pass, as upstream's expectations TTL).
#[derive(Default)]
pub struct Expectations {
    pending: Mutex<HashMap<String, Pending>>,
}

struct Pending {
    creates: HashSet<String>,
    deletes: HashSet<String>,
    since: Instant,
}

const EXPECTATIONS_TTL: Duration = Duration::from_secs(300);

impl Expectations {
    pub fn add(
        &self,
        key: &str,
        creates: impl IntoIterator<Item = String>,
        deletes: impl IntoIterator<Item = String>,
    ) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let entry = p.entry(key.to_string()).or_insert_with(|| Pending {
            creates: HashSet::new(),
            deletes: HashSet::new(),
            since: Instant::now(),
        });
        entry.creates.extend(creates);
        entry.deletes.extend(deletes);
        entry.since = Instant::now();
    }

    /// Drops what the cache now shows; true when nothing is left to wait for.
    pub fn satisfied(
        &self,
        key: &str,
        created: impl Fn(&str) -> bool,
        deleted: impl Fn(&str) -> bool,
    ) -> bool {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let Some(entry) = p.get_mut(key) else {
            return true;
        };
        entry.creates.retain(|n| !created(n));
        entry.deletes.retain(|u| !deleted(u));
        if (entry.creates.is_empty() && entry.deletes.is_empty())
            || entry.since.elapsed() > EXPECTATIONS_TTL
        {
            p.remove(key);
            return true;
        }
        false
    }

    /// Stops waiting for the given creations (by name) and deletions (by uid), which failed.
    pub fn lower(
        &self,
        key: &str,
        creates: impl IntoIterator<Item = String>,
        deletes: impl IntoIterator<Item = String>,
    ) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = p.get_mut(key) {
            for c in creates {
                entry.creates.remove(&c);
            }
            for d in deletes {
                entry.deletes.remove(&d);
            }
        }
    }

    pub fn forget(&self, key: &str) {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

/// Creates and deletes the pods of one owner, recording each as an expectation (under the
/// owner's key) and as an Event on the owner, as upstream's `RealPodControl`.
pub struct PodControl<'a, K> {
    pub ctx: &'a Context,
    pub component: &'static str,
    pub owner: &'a K,
    pub key: &'a str,
    pub api: Api<Pod>,
}

impl<K: Resource<DynamicType = ()>> PodControl<'_, K> {
    pub fn new<'a>(
        ctx: &'a Context,
        component: &'static str,
        owner: &'a K,
        key: &'a str,
    ) -> PodControl<'a, K> {
        let ns = owner.meta().namespace.clone().unwrap_or_default();
        PodControl {
            ctx,
            component,
            owner,
            key,
            api: Api::namespaced(ctx.client.clone(), &ns),
        }
    }

    pub async fn create(&self, pod: &Pod) -> Result<Pod> {
        match self.api.create(&PostParams::default(), pod).await {
            Ok(p) => {
                let name = p.metadata.name.clone().unwrap_or_default();
                self.ctx.expectations.add(self.key, [name.clone()], []);
                self.ctx.events.publish(
                    self.component,
                    self.owner,
                    NORMAL,
                    "SuccessfulCreate",
                    format!("Created pod: {name}"),
                );
                Ok(p)
            }
            Err(e) => {
                self.ctx.events.publish(
                    self.component,
                    self.owner,
                    WARNING,
                    "FailedCreate",
                    format!("Error creating: {e}"),
                );
                Err(Error::Kube(e))
            }
        }
    }

    /// Deletes `pod` (one already gone is fine).
    pub async fn delete(&self, pod: &Pod) -> Result<()> {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let uid = pod.metadata.uid.clone();
        self.ctx.expectations.add(self.key, [], uid.clone());
        match self.api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {
                self.ctx.events.publish(
                    self.component,
                    self.owner,
                    NORMAL,
                    "SuccessfulDelete",
                    format!("Deleted pod: {name}"),
                );
                Ok(())
            }
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => {
                self.ctx.expectations.lower(self.key, [], uid);
                self.ctx.events.publish(
                    self.component,
                    self.owner,
                    WARNING,
                    "FailedDelete",
                    format!("Error deleting: {e}"),
                );
                Err(Error::Kube(e))
            }
        }
    }
}

/// `Ok(None)` for a 404, so that acting on an object deleted meanwhile is not an error.
pub fn absent_ok<T>(r: std::result::Result<T, kube::Error>) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
        Err(e) => Err(Error::Kube(e)),
    }
}

/// Merge-patches `name` (its `status` subresource when `status`) through `api`; `Ok(None)` when
/// the object is gone meanwhile.
pub async fn merge_patch<K>(
    api: &Api<K>,
    name: &str,
    status: bool,
    patch: &serde_json::Value,
) -> Result<Option<K>>
where
    K: Clone + DeserializeOwned + Debug,
{
    let pp = PatchParams::default();
    let patch = Patch::Merge(patch);
    if status {
        absent_ok(api.patch_status(name, &pp, &patch).await)
    } else {
        absent_ok(api.patch(name, &pp, &patch).await)
    }
}

/// Whether `obj` is cached in `store` under its name (the result of a create).
pub fn in_namespace<K: Resource>(objs: &[Arc<K>], name: &str) -> bool {
    objs.iter().any(|o| o.meta().name.as_deref() == Some(name))
}

/// Whether nothing in `objs` with `uid` is still alive (gone, or being deleted).
pub fn gone_or_deleting<K: Resource>(objs: &[Arc<K>], uid: &str) -> bool {
    !objs
        .iter()
        .any(|o| o.meta().uid.as_deref() == Some(uid) && o.meta().deletion_timestamp.is_none())
}

/// Adopts the orphans that `selector` matches and releases the owned objects it no longer
/// matches, as upstream's `ControllerRefManager`; returns the objects `owner` now controls.
pub async fn claim<K>(
    api_for: impl Fn(&str) -> Api<K>,
    owner: &OwnerReference,
    owner_deleting: bool,
    selector: &LabelSelector,
    candidates: Vec<Arc<K>>,
) -> Result<Vec<Arc<K>>>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Serialize + Debug,
{
    let mut owned = Vec::new();
    for obj in candidates {
        let meta = obj.meta();
        let matches =
            !selector_is_empty(selector) && selector_matches(selector, meta.labels.as_ref());
        let refs = meta.owner_references.clone().unwrap_or_default();
        let ns = meta.namespace.clone().unwrap_or_default();
        let name = meta.name.clone().unwrap_or_default();
        match controller_of(obj.as_ref()) {
            Some(c) if c.uid == owner.uid => {
                if matches || owner_deleting {
                    owned.push(obj);
                    continue;
                }
                let kept: Vec<_> = refs.into_iter().filter(|r| r.uid != owner.uid).collect();
                patch_owner_refs(&api_for(&ns), &name, meta.uid.as_deref(), kept).await?;
            }
            Some(_) => {}
            None => {
                if !matches || owner_deleting || meta.deletion_timestamp.is_some() {
                    continue;
                }
                let mut refs: Vec<_> = refs.into_iter().filter(|r| r.uid != owner.uid).collect();
                refs.push(owner.clone());
                if patch_owner_refs(&api_for(&ns), &name, meta.uid.as_deref(), refs).await? {
                    owned.push(obj);
                }
            }
        }
    }
    Ok(owned)
}

/// Sets `metadata.ownerReferences` with the object's uid as precondition; `false` when the
/// object is gone or changed identity.
pub async fn patch_owner_refs<K>(
    api: &Api<K>,
    name: &str,
    uid: Option<&str>,
    refs: Vec<OwnerReference>,
) -> Result<bool>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let patch = json!({"metadata": {"ownerReferences": refs, "uid": uid}});
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if matches!(s.code, 404 | 409 | 422) => {
            tracing::debug!(name, error = %s.message, "owner references not updated");
            Ok(false)
        }
        Err(e) => Err(Error::Kube(e)),
    }
}

/// Runs `count` operations in batches of 1, 2, 4, … (upstream's slow start), stopping after
/// the first batch with a failure. Returns the successes and the first error.
pub async fn slow_start<T, F, Fut>(count: usize, op: F) -> (Vec<T>, Option<Error>)
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut done = Vec::new();
    let mut batch = 1usize;
    let mut started = 0usize;
    while started < count {
        let n = batch.min(count - started);
        let results = futures::future::join_all((started..started + n).map(&op)).await;
        started += n;
        let mut first_err = None;
        for r in results {
            match r {
                Ok(v) => done.push(v),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if first_err.is_some() {
            return (done, first_err);
        }
        batch *= 2;
    }
    (done, None)
}

/// FNV-1a, 32 bits.
pub fn fnv32a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// Upstream's `rand.SafeEncodeString`: no vowels, no look-alikes.
pub fn safe_encode(s: &str) -> String {
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    s.bytes()
        .map(|b| ALPHANUMS[usize::from(b) % ALPHANUMS.len()] as char)
        .collect()
}

/// Sorts newest first by creation time, then name.
pub fn newest_first<K: Resource>(objs: &mut [Arc<K>]) {
    objs.sort_by(|a, b| {
        let ta = a.meta().creation_timestamp.as_ref().map(|t| t.0);
        let tb = b.meta().creation_timestamp.as_ref().map(|t| t.0);
        tb.cmp(&ta).then_with(|| a.meta().name.cmp(&b.meta().name))
    });
}

/// The cached pods of namespace `ns`, and whether the pod creations and deletions expected
/// under `key` have all shown up in that cache.
pub fn namespace_pods(ctx: &Context, key: &str, ns: &str) -> (Vec<Arc<Pod>>, bool) {
    let in_ns = ctx
        .informers
        .get::<Pod>()
        .store()
        .state_filter(|p| p.metadata.namespace.as_deref() == Some(ns));
    let synced = ctx.expectations.satisfied(
        key,
        |n| in_namespace(&in_ns, n),
        |u| gone_or_deleting(&in_ns, u),
    );
    (in_ns, synced)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    #[test]
    fn selectors() {
        let labels: BTreeMap<String, String> = [("app".to_string(), "web".to_string())].into();
        let mut s = LabelSelector {
            match_labels: Some(labels.clone()),
            ..Default::default()
        };
        assert!(selector_matches(&s, Some(&labels)));
        s.match_expressions = Some(vec![LabelSelectorRequirement {
            key: "tier".into(),
            operator: "DoesNotExist".into(),
            values: None,
        }]);
        assert!(selector_matches(&s, Some(&labels)));
        assert!(!selector_matches(&s, None));
        assert!(selector_is_empty(&LabelSelector::default()));
    }

    #[tokio::test]
    async fn slow_start_batches() {
        let (ok, err) = slow_start(7, |i| async move {
            if i == 4 {
                Err(Error::Invalid("x".into()))
            } else {
                Ok(i)
            }
        })
        .await;
        // batches 1, 2, 4: the third fails once and stops further batches.
        assert_eq!(ok.len(), 6);
        assert!(err.is_some());
    }
}
