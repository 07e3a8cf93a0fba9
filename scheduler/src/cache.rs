//! The cluster as the scheduler sees it: nodes with the pods bound (or assumed) to them, kept
//! current by watches. A decision reads only this.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{
    Node, PersistentVolume, PersistentVolumeClaim, ReplicationController, Service,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::storage::v1::StorageClass;

use crate::model::{Labels, NodeInfo, PodInfo};

/// What a cache change means for pods waiting in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterEvent {
    NodeAdd,
    NodeUpdate,
    AssignedPodAdd,
    AssignedPodDelete,
    /// A PersistentVolumeClaim, PersistentVolume or StorageClass was added or changed.
    VolumeChange,
}

/// An assumed pod: placed by this scheduler, its binding not yet seen in the watch.
#[derive(Debug)]
struct Assumed {
    info: Arc<PodInfo>,
    /// Set when the binding call finished: past it, the pod is checked against the API.
    deadline: Option<Instant>,
}

/// Objects other than nodes and pods that plugins read, keyed by `namespace/name` (or `name`
/// for cluster-scoped kinds).
#[derive(Debug, Default)]
pub struct Objects {
    pub pdbs: HashMap<String, Arc<PodDisruptionBudget>>,
    pub pvcs: HashMap<String, Arc<PersistentVolumeClaim>>,
    pub pvs: HashMap<String, Arc<PersistentVolume>>,
    pub storage_classes: HashMap<String, Arc<StorageClass>>,
    pub services: HashMap<String, Arc<Service>>,
    pub replica_sets: HashMap<String, Arc<ReplicaSet>>,
    pub stateful_sets: HashMap<String, Arc<StatefulSet>>,
    pub replication_controllers: HashMap<String, Arc<ReplicationController>>,
}

#[derive(Debug, Default)]
pub struct Cache {
    /// Every node with a Node object or pods bound to it; `nodes[index[name]]`.
    nodes: Vec<NodeInfo>,
    index: HashMap<String, usize>,
    /// uid → node name, for every pod in some `NodeInfo`.
    pod_nodes: HashMap<String, String>,
    /// Pods bound by this scheduler whose binding the watch has not shown yet.
    assumed: HashMap<String, Assumed>,
    /// Pods using each PersistentVolumeClaim (`namespace/claim` → count), for
    /// VolumeRestrictions' ReadWriteOncePod check.
    pub pvc_users: HashMap<String, usize>,
    /// PDBs, PVCs, PVs, StorageClasses and the workloads owning pods.
    pub objects: Objects,
    /// Namespace labels (for affinity terms' `namespaceSelector`).
    pub namespaces: HashMap<String, Labels>,
    /// How many nodes carry each normalized image.
    pub image_nodes: HashMap<String, usize>,
    /// Pods nominated to a node by preemption: node → pods.
    pub nominated: HashMap<String, Vec<Arc<PodInfo>>>,
    /// Round-robin start for the adaptive node sampling.
    pub next_start: usize,
    /// Cached pods with pod (anti-)affinity terms.
    affinity_pods: usize,
    /// Nodes that exist as Node objects.
    live_nodes: usize,
}

impl Cache {
    pub fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    /// Nodes that exist as Node objects.
    pub fn node_count(&self) -> usize {
        self.live_nodes
    }

    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.index.get(name).map(|i| &self.nodes[*i])
    }

    fn node_mut(&mut self, name: &str) -> &mut NodeInfo {
        let i = match self.index.get(name) {
            Some(i) => *i,
            None => {
                self.nodes.push(NodeInfo::new(name));
                self.index.insert(name.to_string(), self.nodes.len() - 1);
                self.nodes.len() - 1
            }
        };
        &mut self.nodes[i]
    }

    /// Adds or updates a node; returns the event it amounts to, if it can make a pod fit.
    pub fn upsert_node(&mut self, node: Node) -> Option<ClusterEvent> {
        let name = node.metadata.name.clone().unwrap_or_default();
        let info = self.node_mut(&name);
        let existed = info.node.is_some();
        let before = (
            info.labels.clone(),
            info.taints.clone(),
            info.unschedulable,
            info.allocatable.clone(),
        );
        let old_images: Vec<String> = info.images.iter().map(|(n, _)| n.clone()).collect();
        info.set_node(Arc::new(node));
        let changed = before
            != (
                info.labels.clone(),
                info.taints.clone(),
                info.unschedulable,
                info.allocatable.clone(),
            );
        let new_images: Vec<String> = info.images.iter().map(|(n, _)| n.clone()).collect();
        self.count_images(&old_images, -1);
        self.count_images(&new_images, 1);
        self.live_nodes += usize::from(!existed);
        match (existed, changed) {
            (false, _) => Some(ClusterEvent::NodeAdd),
            (true, true) => Some(ClusterEvent::NodeUpdate),
            _ => None,
        }
    }

    fn count_images(&mut self, names: &[String], delta: isize) {
        let unique: HashSet<&String> = names.iter().collect();
        for n in unique {
            let e = self.image_nodes.entry(n.clone()).or_default();
            *e = e.saturating_add_signed(delta);
            if *e == 0 {
                self.image_nodes.remove(n);
            }
        }
    }

    pub fn remove_node(&mut self, name: &str) {
        let Some(&i) = self.index.get(name) else {
            return;
        };
        if self.nodes[i].node.is_none() {
            return;
        }
        self.live_nodes -= 1;
        let old: Vec<String> = self.nodes[i]
            .images
            .iter()
            .map(|(n, _)| n.clone())
            .collect();
        self.count_images(&old, -1);
        if self.nodes[i].pods.is_empty() {
            self.drop_node_at(i);
        } else {
            // Keep the accounting for its pods until they go; it is no longer a candidate.
            let n = &mut self.nodes[i];
            n.node = None;
            n.images.clear();
        }
    }

    fn drop_node_at(&mut self, i: usize) {
        let removed = self.nodes.swap_remove(i);
        self.index.remove(&removed.name);
        if let Some(moved) = self.nodes.get(i) {
            self.index.insert(moved.name.clone(), i);
        }
    }

    pub fn is_assumed(&self, uid: &str) -> bool {
        self.assumed.contains_key(uid)
    }

    /// The binding call for an assumed pod finished: if the watch has not confirmed it
    /// within `ttl`, [`expired`](Self::expired) hands it back to be checked (upstream's
    /// `FinishBinding` and `cleanupAssumedPods`). A zero `ttl` never expires.
    pub fn finish_binding(&mut self, uid: &str, ttl: Duration) {
        if ttl.is_zero() {
            return;
        }
        if let Some(a) = self.assumed.get_mut(uid) {
            a.deadline = Some(Instant::now() + ttl);
        }
    }

    /// Assumed pods past their deadline; each is handed out once (its deadline is cleared).
    pub fn expired(&mut self, now: Instant) -> Vec<Arc<PodInfo>> {
        self.assumed
            .values_mut()
            .filter(|a| a.deadline.is_some_and(|d| d <= now))
            .map(|a| {
                a.deadline = None;
                a.info.clone()
            })
            .collect()
    }

    pub fn contains_pod(&self, uid: &str) -> bool {
        self.pod_nodes.contains_key(uid)
    }

    /// A bound pod seen by the watch (added, updated, or confirming an assumed one).
    pub fn upsert_pod(&mut self, p: Arc<PodInfo>) -> Option<ClusterEvent> {
        let node = p.node_name.clone()?;
        let was_known = self.remove_pod_inner(&p.uid).is_some();
        self.assumed.remove(&p.uid);
        self.unnominate(&p.uid);
        self.insert_pod(&node, p);
        (!was_known).then_some(ClusterEvent::AssignedPodAdd)
    }

    fn insert_pod(&mut self, node: &str, p: Arc<PodInfo>) {
        self.count_pvc_users(&p, 1);
        self.affinity_pods += usize::from(p.has_affinity_terms);
        self.pod_nodes.insert(p.uid.clone(), node.to_string());
        self.node_mut(node).add_pod(p);
    }

    /// Places a pod on its chosen node before the binding is confirmed.
    pub fn assume(&mut self, p: Arc<PodInfo>) {
        let Some(node) = p.node_name.clone() else {
            return;
        };
        self.unnominate(&p.uid);
        self.remove_pod_inner(&p.uid);
        self.assumed.insert(
            p.uid.clone(),
            Assumed {
                info: p.clone(),
                deadline: None,
            },
        );
        self.insert_pod(&node, p);
    }

    /// Undoes [`assume`](Self::assume) after a failed binding.
    pub fn forget(&mut self, uid: &str) -> bool {
        if self.assumed.remove(uid).is_some() {
            self.remove_pod_inner(uid);
            return true;
        }
        false
    }

    pub fn remove_pod(&mut self, uid: &str) -> Option<ClusterEvent> {
        self.assumed.remove(uid);
        self.unnominate(uid);
        self.remove_pod_inner(uid)
            .map(|_| ClusterEvent::AssignedPodDelete)
    }

    fn remove_pod_inner(&mut self, uid: &str) -> Option<Arc<PodInfo>> {
        let node = self.pod_nodes.remove(uid)?;
        let i = *self.index.get(&node)?;
        let p = self.nodes[i].remove_pod(uid);
        if self.nodes[i].node.is_none() && self.nodes[i].pods.is_empty() {
            self.drop_node_at(i);
        }
        if let Some(p) = &p {
            self.count_pvc_users(p, -1);
            self.affinity_pods -= usize::from(p.has_affinity_terms);
        }
        p
    }

    fn count_pvc_users(&mut self, p: &PodInfo, delta: isize) {
        for claim in &p.claims {
            let key = format!("{}/{}", p.namespace, claim.name);
            let n = self.pvc_users.entry(key.clone()).or_default();
            *n = n.saturating_add_signed(delta);
            if *n == 0 {
                self.pvc_users.remove(&key);
            }
        }
    }

    pub fn nominate(&mut self, node: &str, p: Arc<PodInfo>) {
        self.unnominate(&p.uid);
        self.nominated.entry(node.to_string()).or_default().push(p);
    }

    pub fn unnominate(&mut self, uid: &str) {
        if self.nominated.is_empty() {
            return;
        }
        self.nominated.retain(|_, pods| {
            pods.retain(|p| p.uid != uid);
            !pods.is_empty()
        });
    }

    /// Every pod in the cache (bound or assumed).
    pub fn all_pods(&self) -> impl Iterator<Item = (&NodeInfo, &Arc<PodInfo>)> {
        self.nodes
            .iter()
            .flat_map(|n| n.pods.iter().map(move |p| (n, p)))
    }

    /// True when some cached pod has (anti-)affinity terms: the affinity plugins need a look.
    pub fn any_pod_with_affinity(&self) -> bool {
        self.affinity_pods > 0
    }

    /// Drops every pod and node whose key is not in `keep` (after a watch re-list).
    pub fn retain_pods(&mut self, keep: &HashSet<String>) {
        let gone: Vec<String> = self
            .pod_nodes
            .keys()
            .filter(|uid| !keep.contains(*uid) && !self.assumed.contains_key(*uid))
            .cloned()
            .collect();
        for uid in gone {
            self.remove_pod(&uid);
        }
    }

    pub fn retain_nodes(&mut self, keep: &HashSet<String>) {
        let gone: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| n.node.is_some() && !keep.contains(&n.name))
            .map(|n| n.name.clone())
            .collect();
        for n in gone {
            self.remove_node(&n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testutil::*;
    use serde_json::json;

    #[test]
    fn assumed_pods_expire_after_binding_and_free_the_node() {
        let mut c = cache(vec![node("a", json!({}), "2", json!({}))]);
        let p = pod(
            "p",
            json!({}),
            json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]}),
        );
        c.assume(p.assumed_on("a"));
        let requested = |c: &Cache| c.node("a").map_or(0, |n| n.requested.milli_cpu);
        assert_eq!(requested(&c), 1000);
        // Not before the binding finished, and never with a zero TTL.
        assert!(c
            .expired(Instant::now() + Duration::from_secs(3600))
            .is_empty());
        c.finish_binding("p", Duration::ZERO);
        assert!(c
            .expired(Instant::now() + Duration::from_secs(3600))
            .is_empty());
        c.finish_binding("p", Duration::from_secs(30));
        assert!(c.expired(Instant::now()).is_empty());
        let later = Instant::now() + Duration::from_secs(31);
        let expired = c.expired(later);
        assert_eq!(expired.len(), 1);
        // Handed out once; forgetting frees the node.
        assert!(c.expired(later).is_empty());
        assert!(c.forget("p"));
        assert_eq!(requested(&c), 0);
        assert!(!c.is_assumed("p"));
        // A pod the watch confirmed is no longer assumed and does not expire.
        c.assume(p.assumed_on("a"));
        c.upsert_pod(p.assumed_on("a"));
        c.finish_binding("p", Duration::from_secs(1));
        assert!(c.expired(later).is_empty());
        assert!(!c.forget("p"));
        assert_eq!(requested(&c), 1000);
        // The node goes but its pod keeps the accounting; it is no longer counted.
        assert_eq!(c.node_count(), 1);
        c.remove_node("a");
        c.remove_node("a");
        assert_eq!(c.node_count(), 0);
        assert_eq!(requested(&c), 1000);
        c.upsert_node(node("a", json!({}), "2", json!({})));
        assert_eq!(c.node_count(), 1);
    }
}
