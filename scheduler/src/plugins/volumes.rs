//! The volume plugins of the default profile, for pods using PersistentVolumeClaims:
//! VolumeRestrictions (ReadWriteOncePod conflicts), VolumeBinding (claims exist and are bound;
//! a bound PersistentVolume's node affinity) and VolumeZone (a bound volume's zone and region
//! labels against the node's).
//!
//! Unbound claims of a WaitForFirstConsumer class are bound by the scheduler: a node fits when
//! an available volume satisfying the claim may be used there (its node affinity) or the
//! class can provision there (its provisioner and `allowedTopologies`); once the node is chosen
//! [`plan_bindings`] says what PreBind writes: a static volume's `claimRef` (pre-binding it,
//! the PV controller completes the binding) or the claim's `volume.kubernetes.io/selected-node`
//! annotation (the provisioner makes a volume on that node).

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;

use super::{state, Failure, FilterResult, Plugin, State};
use crate::cache::Cache;
use crate::claims::{self, find_match, NO_PROVISIONER};
use crate::model::{node_term_matches, NodeInfo, PodInfo};

pub struct VolumeRestrictions;
pub struct VolumeBinding;
pub struct VolumeZone;

const RWOP_CONFLICT: &str =
    "node has pod using PersistentVolumeClaim with the same name and ReadWriteOncePod access mode";
const NODE_CONFLICT: &str = "node(s) had volume node affinity conflict";
const PV_NOT_EXIST: &str =
    "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)";
const ZONE_CONFLICT: &str = "node(s) had no available volume zone";
const UNBOUND_IMMEDIATE: &str = "pod has unbound immediate PersistentVolumeClaims";
const BIND_CONFLICT: &str = "node(s) didn't find available persistent volumes to bind";

fn claim<'a>(cache: &'a Cache, pod: &PodInfo, name: &str) -> Option<&'a PersistentVolumeClaim> {
    cache
        .objects
        .pvcs
        .get(&format!("{}/{name}", pod.namespace))
        .map(|c| c.as_ref())
}

/// The PersistentVolume a claim is bound to (`spec.volumeName`), if any.
fn bound_volume(pvc: &PersistentVolumeClaim) -> Option<&str> {
    pvc.spec
        .as_ref()
        .and_then(|s| s.volume_name.as_deref())
        .filter(|v| !v.is_empty())
}

fn class_of<'a>(cache: &'a Cache, pvc: &PersistentVolumeClaim) -> Option<&'a Arc<StorageClass>> {
    let class = claims::claim_class(pvc);
    (!class.is_empty())
        .then(|| cache.objects.storage_classes.get(class))
        .flatten()
}

/// The claim's StorageClass binds only once a pod using it is scheduled.
fn waits_for_first_consumer(cache: &Cache, pvc: &PersistentVolumeClaim) -> bool {
    claims::delays_binding(class_of(cache, pvc).map(|c| c.as_ref()))
}

/// The volume's required node affinity accepts the node (no affinity: every node).
fn volume_fits_node(pv: &PersistentVolume, node: &NodeInfo) -> bool {
    pv.spec
        .as_ref()
        .and_then(|s| s.node_affinity.as_ref())
        .and_then(|a| a.required.as_ref())
        .is_none_or(|sel| {
            sel.node_selector_terms
                .iter()
                .any(|t| node_term_matches(t, node))
        })
}

/// The class can provision a volume reachable from the node: it names a provisioner and its
/// `allowedTopologies` (if any) accept the node's labels.
fn class_provisions_on(class: &StorageClass, node: &NodeInfo) -> bool {
    if class.provisioner.is_empty() || class.provisioner == NO_PROVISIONER {
        return false;
    }
    let terms = class.allowed_topologies.as_deref().unwrap_or(&[]);
    terms.is_empty()
        || terms.iter().any(|t| {
            t.match_label_expressions.iter().flatten().all(|r| {
                node.labels
                    .get(&r.key)
                    .is_some_and(|v| r.values.contains(v))
            })
        })
}

/// How a delayed-binding claim gets its volume on the chosen node.
pub enum VolumeAction {
    /// Pre-bind this available volume to the claim (`claimRef`).
    PreBind {
        pv: Arc<PersistentVolume>,
        pvc: Arc<PersistentVolumeClaim>,
    },
    /// Ask the class's provisioner for a volume on the node (`selected-node`).
    Provision { pvc: Arc<PersistentVolumeClaim> },
}

/// The delayed-binding claims of the pod that are still unbound.
fn unbound_delayed(cache: &Cache, pod: &PodInfo) -> Vec<Arc<PersistentVolumeClaim>> {
    pod.claims
        .iter()
        .filter_map(|c| {
            cache
                .objects
                .pvcs
                .get(&format!("{}/{}", pod.namespace, c.name))
        })
        .filter(|pvc| claims::claim_volume(pvc).is_none() && waits_for_first_consumer(cache, pvc))
        .cloned()
        .collect()
}

/// Decides, per unbound claim and for each node, between a static volume and provisioning;
/// `None` when some claim can have neither there.
fn choose(
    unbound: &[(Arc<PersistentVolumeClaim>, Option<Arc<StorageClass>>)],
    volumes: &[Arc<PersistentVolume>],
    node: &NodeInfo,
) -> Option<Vec<VolumeAction>> {
    let mut actions = Vec::new();
    let mut taken: Vec<&str> = Vec::new();
    for (pvc, class) in unbound {
        let fits = |pv: &PersistentVolume| {
            volume_fits_node(pv, node)
                && !taken.contains(&pv.metadata.name.as_deref().unwrap_or(""))
        };
        let found = find_match(volumes.iter().map(|v| v.as_ref()), pvc, true, Some(&fits));
        if let Some(pv) =
            found.and_then(|pv| volumes.iter().find(|v| v.metadata.name == pv.metadata.name))
        {
            taken.push(pv.metadata.name.as_deref().unwrap_or(""));
            actions.push(VolumeAction::PreBind {
                pv: pv.clone(),
                pvc: pvc.clone(),
            });
        } else if class.as_ref().is_some_and(|c| class_provisions_on(c, node)) {
            actions.push(VolumeAction::Provision { pvc: pvc.clone() });
        } else {
            return None;
        }
    }
    Some(actions)
}

/// What PreBind must write for the pod's delayed-binding claims on `node` (empty when the pod
/// has none); `None` when they can no longer be satisfied there.
pub fn plan_bindings(cache: &Cache, pod: &PodInfo, node: &str) -> Option<Vec<VolumeAction>> {
    let unbound = unbound_delayed(cache, pod);
    if unbound.is_empty() {
        return Some(Vec::new());
    }
    let node = cache.node(node)?;
    let with_class: Vec<_> = unbound
        .into_iter()
        .map(|pvc| {
            let class = class_of(cache, &pvc).cloned();
            (pvc, class)
        })
        .collect();
    let volumes: Vec<_> = cache.objects.pvs.values().cloned().collect();
    choose(&with_class, &volumes, node)
}

/// The pod's claims are all bound (the PV controller finished what PreBind started); `Err`
/// with a reason when waiting is pointless (a claim is gone, or its provisioner gave the
/// node back by removing `selected-node`).
pub fn claims_bound(cache: &Cache, pod: &PodInfo, node: &str) -> Result<bool, String> {
    let mut all = true;
    for c in &pod.claims {
        let Some(pvc) = claim(cache, pod, &c.name) else {
            return Err(format!("persistentvolumeclaim \"{}\" not found", c.name));
        };
        if claims::claim_volume(pvc).is_some()
            && pvc.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound")
        {
            continue;
        }
        all = false;
        let provisioning = claims::selected_node(pvc);
        let prebound = cache
            .objects
            .pvs
            .values()
            .any(|pv| claims::is_claimed_by(pv, pvc));
        if !prebound && waits_for_first_consumer(cache, pvc) && provisioning != Some(node) {
            return Err(format!(
                "persistentvolumeclaim \"{}\" is no longer being provisioned on node {node:?}",
                c.name
            ));
        }
    }
    Ok(all)
}

/// Pods (node, uid) already using one of the pod's ReadWriteOncePod claims.
struct RwopUsers(Vec<(String, String)>);

impl Plugin for VolumeRestrictions {
    fn name(&self) -> &'static str {
        "VolumeRestrictions"
    }

    fn prepare(&self, pod: &PodInfo, cache: &Cache) -> State {
        let rwop: BTreeSet<&str> = pod
            .claims
            .iter()
            .filter(|c| {
                claim(cache, pod, &c.name).is_some_and(|pvc| {
                    pvc.spec
                        .as_ref()
                        .and_then(|s| s.access_modes.as_ref())
                        .is_some_and(|m| m.iter().any(|m| m == "ReadWriteOncePod"))
                })
            })
            .filter(|c| {
                cache
                    .pvc_users
                    .contains_key(&format!("{}/{}", pod.namespace, c.name))
            })
            .map(|c| c.name.as_str())
            .collect();
        if rwop.is_empty() {
            return None;
        }
        let users = cache
            .all_pods()
            .filter(|(_, p)| {
                p.uid != pod.uid
                    && p.namespace == pod.namespace
                    && p.claims.iter().any(|c| rwop.contains(c.name.as_str()))
            })
            .map(|(n, p)| (n.name.clone(), p.uid.clone()))
            .collect();
        Some(Box::new(RwopUsers(users)))
    }

    /// A conflict anywhere blocks every node; on the node being evaluated only the users
    /// still on it count (so preemption can free it).
    fn filter(&self, _: &PodInfo, node: &NodeInfo, st: &State) -> FilterResult {
        let Some(RwopUsers(users)) = state::<RwopUsers>(st) else {
            return Ok(());
        };
        let conflict = users
            .iter()
            .any(|(n, uid)| *n != node.name || node.pods.iter().any(|p| p.uid == *uid));
        if conflict {
            return Err(Failure::unschedulable(RWOP_CONFLICT));
        }
        Ok(())
    }
}

/// The bound volumes of the pod's claims (`None` for a claim bound to a missing volume), and
/// its unbound delayed-binding claims with their class and the volumes they might get.
struct BoundVolumes {
    bound: Vec<Option<Arc<PersistentVolume>>>,
    unbound: Vec<(Arc<PersistentVolumeClaim>, Option<Arc<StorageClass>>)>,
    volumes: Vec<Arc<PersistentVolume>>,
}

impl Plugin for VolumeBinding {
    fn name(&self) -> &'static str {
        "VolumeBinding"
    }

    fn pre_filter(&self, pod: &PodInfo, cache: &Cache) -> Result<State, Failure> {
        if pod.claims.is_empty() {
            return Ok(None);
        }
        let mut bound = Vec::new();
        let mut unbound = Vec::new();
        let mut unbound_immediate = false;
        for c in &pod.claims {
            let Some(pvc) = claim(cache, pod, &c.name) else {
                return Err(Failure::unresolvable(if c.ephemeral {
                    format!(
                        "waiting for ephemeral volume controller to create the persistentvolumeclaim \"{}\"",
                        c.name
                    )
                } else {
                    format!("persistentvolumeclaim \"{}\" not found", c.name)
                }));
            };
            if pvc.metadata.deletion_timestamp.is_some() {
                return Err(Failure::unresolvable(format!(
                    "persistentvolumeclaim \"{}\" is being deleted",
                    c.name
                )));
            }
            match bound_volume(pvc) {
                Some(pv) => bound.push(cache.objects.pvs.get(pv).cloned()),
                None if waits_for_first_consumer(cache, pvc) => {
                    unbound.push((Arc::new(pvc.clone()), class_of(cache, pvc).cloned()))
                }
                None => unbound_immediate = true,
            }
        }
        if unbound_immediate {
            return Err(Failure::unresolvable(UNBOUND_IMMEDIATE));
        }
        if bound.is_empty() && unbound.is_empty() {
            return Ok(None);
        }
        let volumes = if unbound.is_empty() {
            Vec::new()
        } else {
            cache
                .objects
                .pvs
                .values()
                .filter(|pv| {
                    pv.spec.as_ref().is_some_and(|s| s.claim_ref.is_none())
                        || unbound.iter().any(|(c, _)| claims::is_claimed_by(pv, c))
                })
                .cloned()
                .collect()
        };
        Ok(Some(Box::new(BoundVolumes {
            bound,
            unbound,
            volumes,
        })))
    }

    fn filter(&self, _: &PodInfo, node: &NodeInfo, st: &State) -> FilterResult {
        let Some(st) = state::<BoundVolumes>(st) else {
            return Ok(());
        };
        let mut reasons = Vec::new();
        for pv in &st.bound {
            let Some(pv) = pv else {
                reasons.push(PV_NOT_EXIST.to_string());
                continue;
            };
            if !volume_fits_node(pv, node) {
                reasons.push(NODE_CONFLICT.to_string());
            }
        }
        if !st.unbound.is_empty() && choose(&st.unbound, &st.volumes, node).is_none() {
            reasons.push(BIND_CONFLICT.to_string());
        }
        reasons.dedup();
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(Failure {
                unresolvable: true,
                reasons,
            })
        }
    }
}

const ZONE_LABELS: [&str; 4] = [
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
];

/// The GA label of a beta topology label (and GA labels as they are).
fn ga_label(key: &str) -> &str {
    match key {
        "failure-domain.beta.kubernetes.io/zone" => "topology.kubernetes.io/zone",
        "failure-domain.beta.kubernetes.io/region" => "topology.kubernetes.io/region",
        k => k,
    }
}

/// (label, allowed values) of the pod's bound volumes.
struct VolumeTopology(Vec<(String, BTreeSet<String>)>);

impl Plugin for VolumeZone {
    fn name(&self) -> &'static str {
        "VolumeZone"
    }

    fn prepare(&self, pod: &PodInfo, cache: &Cache) -> State {
        if pod.claims.is_empty() {
            return None;
        }
        let mut topology = Vec::new();
        for c in &pod.claims {
            let Some(pv) = claim(cache, pod, &c.name)
                .and_then(bound_volume)
                .and_then(|v| cache.objects.pvs.get(v))
            else {
                continue;
            };
            let Some(labels) = pv.metadata.labels.as_ref() else {
                continue;
            };
            for key in ZONE_LABELS {
                if let Some(v) = labels.get(key) {
                    // `LabelZonesToSet`: several zones are joined with `__`.
                    let values = v
                        .split("__")
                        .map(str::trim)
                        .filter(|z| !z.is_empty())
                        .map(String::from)
                        .collect();
                    topology.push((key.to_string(), values));
                }
            }
        }
        (!topology.is_empty()).then(|| Box::new(VolumeTopology(topology)) as _)
    }

    /// A node without any zone or region label accepts any volume (as upstream).
    fn filter(&self, _: &PodInfo, node: &NodeInfo, st: &State) -> FilterResult {
        let Some(VolumeTopology(topology)) = state::<VolumeTopology>(st) else {
            return Ok(());
        };
        if !ZONE_LABELS.iter().any(|k| node.labels.contains_key(*k)) {
            return Ok(());
        }
        for (key, values) in topology {
            let v = node
                .labels
                .get(key)
                .or_else(|| node.labels.get(ga_label(key)));
            if !v.is_some_and(|v| values.contains(v)) {
                return Err(Failure::unresolvable(ZONE_CONFLICT));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testutil::*;
    use serde_json::json;

    fn with_claim(c: &mut Cache, name: &str, volume: Option<&str>, modes: &[&str]) {
        let pvc: PersistentVolumeClaim = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"accessModes": modes, "volumeName": volume.unwrap_or("")},
        }))
        .unwrap_or_default();
        c.objects
            .pvcs
            .insert(format!("default/{name}"), Arc::new(pvc));
    }

    fn with_volume(c: &mut Cache, name: &str, labels: serde_json::Value, spec: serde_json::Value) {
        let pv: PersistentVolume = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": labels}, "spec": spec,
        }))
        .unwrap_or_default();
        c.objects.pvs.insert(name.to_string(), Arc::new(pv));
    }

    fn user(name: &str, claim: &str) -> Arc<PodInfo> {
        pod(
            name,
            json!({}),
            json!({"volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": claim}}]}),
        )
    }

    fn n(c: &Cache, name: &str) -> NodeInfo {
        c.node(name)
            .map(|n| n.clone_for_simulation())
            .unwrap_or_default()
    }

    #[test]
    fn binding_checks_claims_and_volume_affinity() {
        let mut c = cache(vec![
            node("a", json!({"disk": "a"}), "4", json!({})),
            node("b", json!({"disk": "b"}), "4", json!({})),
        ]);
        let p = user("p", "data");
        assert_eq!(
            VolumeBinding.pre_filter(&p, &c).err(),
            Some(Failure::unresolvable(
                "persistentvolumeclaim \"data\" not found"
            ))
        );
        // Unbound, immediate: nothing can help.
        with_claim(&mut c, "data", None, &["ReadWriteOnce"]);
        assert_eq!(
            VolumeBinding.pre_filter(&p, &c).err(),
            Some(Failure::unresolvable(UNBOUND_IMMEDIATE))
        );
        with_claim(&mut c, "data", Some("pv1"), &["ReadWriteOnce"]);
        let st = VolumeBinding.pre_filter(&p, &c).ok().flatten();
        assert_eq!(
            VolumeBinding.filter(&p, &n(&c, "a"), &st),
            Err(Failure::unresolvable(PV_NOT_EXIST))
        );
        with_volume(
            &mut c,
            "pv1",
            json!({}),
            json!({"nodeAffinity": {"required": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["b"]}]}]}}}),
        );
        let st = VolumeBinding.pre_filter(&p, &c).ok().flatten();
        assert_eq!(
            VolumeBinding.filter(&p, &n(&c, "a"), &st),
            Err(Failure::unresolvable(NODE_CONFLICT))
        );
        assert!(VolumeBinding.filter(&p, &n(&c, "b"), &st).is_ok());
    }

    #[test]
    fn delayed_binding_picks_a_local_volume_or_provisions() {
        let host = "kubernetes.io/hostname";
        let mut c = cache(vec![
            node("a", json!({host: "a"}), "4", json!({})),
            node("b", json!({host: "b"}), "4", json!({})),
        ]);
        let class = |provisioner: &str, topology: serde_json::Value| -> Arc<StorageClass> {
            Arc::new(
                serde_json::from_value(json!({"metadata": {"name": "local"},
                    "provisioner": provisioner, "volumeBindingMode": "WaitForFirstConsumer",
                    "allowedTopologies": topology}))
                .unwrap_or_default(),
            )
        };
        c.objects
            .storage_classes
            .insert("local".into(), class(NO_PROVISIONER, json!([])));
        let pvc: PersistentVolumeClaim = serde_json::from_value(json!({
            "metadata": {"name": "data", "namespace": "default", "uid": "c1"},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "local",
                     "resources": {"requests": {"storage": "1Gi"}}},
        }))
        .unwrap_or_default();
        c.objects.pvcs.insert("default/data".into(), Arc::new(pvc));
        let p = user("p", "data");
        let st = VolumeBinding.pre_filter(&p, &c).ok().flatten();
        for n_ in ["a", "b"] {
            assert_eq!(
                VolumeBinding.filter(&p, &n(&c, n_), &st),
                Err(Failure::unresolvable(BIND_CONFLICT))
            );
        }
        with_volume(
            &mut c,
            "pv-b",
            json!({}),
            json!({"capacity": {"storage": "2Gi"}, "accessModes": ["ReadWriteOnce"],
                   "storageClassName": "local",
                   "nodeAffinity": {"required": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": host, "operator": "In", "values": ["b"]}]}]}}}),
        );
        let st = VolumeBinding.pre_filter(&p, &c).ok().flatten();
        assert!(VolumeBinding.filter(&p, &n(&c, "a"), &st).is_err());
        assert!(VolumeBinding.filter(&p, &n(&c, "b"), &st).is_ok());
        let plan = plan_bindings(&c, &p, "b").unwrap_or_default();
        assert!(matches!(plan.as_slice(),
            [VolumeAction::PreBind { pv, .. }] if pv.metadata.name.as_deref() == Some("pv-b")));
        // A provisioner limited to node a by allowedTopologies.
        c.objects.storage_classes.insert(
            "local".into(),
            class(
                "rancher.io/local-path",
                json!([{"matchLabelExpressions": [{"key": host, "values": ["a"]}]}]),
            ),
        );
        let st = VolumeBinding.pre_filter(&p, &c).ok().flatten();
        assert!(VolumeBinding.filter(&p, &n(&c, "a"), &st).is_ok());
        let plan = plan_bindings(&c, &p, "a").unwrap_or_default();
        assert!(matches!(plan.as_slice(), [VolumeAction::Provision { .. }]));
        // Not bound yet, and provisioning was asked of node a only.
        let mut asked = c.objects.pvcs["default/data"].as_ref().clone();
        asked.metadata.annotations =
            Some([(claims::ANN_SELECTED_NODE.to_string(), "a".to_string())].into());
        c.objects
            .pvcs
            .insert("default/data".into(), Arc::new(asked));
        assert_eq!(claims_bound(&c, &p, "a"), Ok(false));
        assert!(claims_bound(&c, &p, "b").is_err());
    }

    #[test]
    fn zone_labels_of_the_volume() {
        let zone = "topology.kubernetes.io/zone";
        let mut c = cache(vec![
            node("a", json!({zone: "z1"}), "4", json!({})),
            node("b", json!({zone: "z2"}), "4", json!({})),
            node("bare", json!({}), "4", json!({})),
            node(
                "beta",
                json!({"failure-domain.beta.kubernetes.io/zone": "z3"}),
                "4",
                json!({}),
            ),
        ]);
        with_claim(&mut c, "data", Some("pv1"), &["ReadWriteOnce"]);
        with_volume(&mut c, "pv1", json!({zone: "z2__z3"}), json!({}));
        let p = user("p", "data");
        let st = VolumeZone.prepare(&p, &c);
        assert_eq!(
            VolumeZone.filter(&p, &n(&c, "a"), &st),
            Err(Failure::unresolvable(ZONE_CONFLICT))
        );
        assert!(VolumeZone.filter(&p, &n(&c, "b"), &st).is_ok());
        assert!(VolumeZone.filter(&p, &n(&c, "bare"), &st).is_ok());
        // A node with only the beta label does not have the volume's GA key.
        assert!(VolumeZone.filter(&p, &n(&c, "beta"), &st).is_err());
    }

    #[test]
    fn read_write_once_pod_conflicts() {
        let mut c = cache(vec![
            node("a", json!({}), "4", json!({})),
            node("b", json!({}), "4", json!({})),
        ]);
        with_claim(&mut c, "solo", Some("pv1"), &["ReadWriteOncePod"]);
        with_claim(&mut c, "shared", Some("pv2"), &["ReadWriteOnce"]);
        place(&mut c, &user("holder", "solo"), "a");
        place(&mut c, &user("other", "shared"), "a");
        let p = user("p", "solo");
        let st = VolumeRestrictions.prepare(&p, &c);
        assert_eq!(
            VolumeRestrictions.filter(&p, &n(&c, "b"), &st),
            Err(Failure::unschedulable(RWOP_CONFLICT))
        );
        // Preemption's view: node a without the holder is free.
        let mut sim = n(&c, "a");
        sim.remove_pod("holder");
        assert!(VolumeRestrictions.filter(&p, &sim, &st).is_ok());
        let q = user("q", "shared");
        assert!(VolumeRestrictions.prepare(&q, &c).is_none());
        c.remove_pod("holder");
        assert!(VolumeRestrictions.prepare(&p, &c).is_none());
    }
}
