//! PersistentVolume ↔ PersistentVolumeClaim matching, as upstream's
//! `pkg/controller/volume/persistentvolume` (`findMatchingVolume`, `checkVolumeSatisfyClaim`)
//! does it. One code path shared by the PV controller's binder and the scheduler's
//! VolumeBinding plugin.

use k8s_openapi::api::core::v1::{
    ObjectReference, PersistentVolume, PersistentVolumeClaim, PersistentVolumeSpec,
};
use k8s_openapi::api::storage::v1::StorageClass;

use crate::model::{selector_matches, Labels};
use crate::resources::parse_quantity;

/// Set on a claim once the binder finished binding it.
pub const ANN_BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";
/// Set on a claim (volume) whose `volumeName` (`claimRef`) the binder wrote.
pub const ANN_BOUND_BY_CONTROLLER: &str = "pv.kubernetes.io/bound-by-controller";
/// The node the scheduler chose for a delayed-binding claim's first consumer.
pub const ANN_SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
/// The provisioner asked to make a volume for a claim.
pub const ANN_STORAGE_PROVISIONER: &str = "volume.kubernetes.io/storage-provisioner";
pub const ANN_BETA_STORAGE_PROVISIONER: &str = "volume.beta.kubernetes.io/storage-provisioner";
/// The provisioner that made a volume.
pub const ANN_PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
pub const ANN_BETA_STORAGE_CLASS: &str = "volume.beta.kubernetes.io/storage-class";
/// Provisioner name of classes whose volumes are only ever made by hand.
pub const NO_PROVISIONER: &str = "kubernetes.io/no-provisioner";

fn annotation<'a>(meta: &'a kube::api::ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

/// The claim's class: `spec.storageClassName`, else the beta annotation, else `""`.
pub fn claim_class(pvc: &PersistentVolumeClaim) -> &str {
    annotation(&pvc.metadata, ANN_BETA_STORAGE_CLASS)
        .or_else(|| {
            pvc.spec
                .as_ref()
                .and_then(|s| s.storage_class_name.as_deref())
        })
        .unwrap_or("")
}

/// The volume's class: the beta annotation, else `spec.storageClassName`, else `""`.
pub fn volume_class(pv: &PersistentVolume) -> &str {
    annotation(&pv.metadata, ANN_BETA_STORAGE_CLASS)
        .or_else(|| {
            pv.spec
                .as_ref()
                .and_then(|s| s.storage_class_name.as_deref())
        })
        .unwrap_or("")
}

/// The volume a claim names in `spec.volumeName`, if any.
pub fn claim_volume(pvc: &PersistentVolumeClaim) -> Option<&str> {
    pvc.spec
        .as_ref()
        .and_then(|s| s.volume_name.as_deref())
        .filter(|v| !v.is_empty())
}

/// The node chosen for a delayed-binding claim.
pub fn selected_node(pvc: &PersistentVolumeClaim) -> Option<&str> {
    annotation(&pvc.metadata, ANN_SELECTED_NODE).filter(|n| !n.is_empty())
}

/// Whether the claim carries `key` = `yes`.
pub fn has_yes(meta: &kube::api::ObjectMeta, key: &str) -> bool {
    annotation(meta, key) == Some("yes")
}

/// The class binds only once a pod using the claim is scheduled.
pub fn delays_binding(class: Option<&StorageClass>) -> bool {
    class.and_then(|c| c.volume_binding_mode.as_deref()) == Some("WaitForFirstConsumer")
}

/// Bytes of a storage quantity (`None` when absent or malformed).
fn storage(q: Option<&k8s_openapi::apimachinery::pkg::api::resource::Quantity>) -> Option<i64> {
    q.and_then(|q| parse_quantity(&q.0, 1.0))
}

/// What the claim asks for (`spec.resources.requests.storage`), 0 when unset.
pub fn requested_bytes(pvc: &PersistentVolumeClaim) -> i64 {
    storage(
        pvc.spec
            .as_ref()
            .and_then(|s| s.resources.as_ref())
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get("storage")),
    )
    .unwrap_or(0)
}

fn capacity_bytes(spec: &PersistentVolumeSpec) -> i64 {
    storage(spec.capacity.as_ref().and_then(|c| c.get("storage"))).unwrap_or(0)
}

/// The volume's `claimRef` points at this claim (by uid when the reference has one).
pub fn is_claimed_by(pv: &PersistentVolume, pvc: &PersistentVolumeClaim) -> bool {
    let Some(r) = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else {
        return false;
    };
    if r.name.as_deref() != pvc.metadata.name.as_deref()
        || r.namespace.as_deref() != pvc.metadata.namespace.as_deref()
    {
        return false;
    }
    match r.uid.as_deref().filter(|u| !u.is_empty()) {
        Some(uid) => Some(uid) == pvc.metadata.uid.as_deref(),
        None => true,
    }
}

/// The reference a volume bound to `pvc` carries.
pub fn claim_ref(pvc: &PersistentVolumeClaim) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("PersistentVolumeClaim".into()),
        name: pvc.metadata.name.clone(),
        namespace: pvc.metadata.namespace.clone(),
        uid: pvc.metadata.uid.clone(),
        resource_version: pvc.metadata.resource_version.clone(),
        ..Default::default()
    }
}

/// Class, access modes, volume mode, size and label selector of the claim accept the volume
/// (upstream's `checkVolumeSatisfyClaim` plus the selector).
pub fn satisfies(pv: &PersistentVolume, pvc: &PersistentVolumeClaim) -> bool {
    let (Some(vs), Some(cs)) = (pv.spec.as_ref(), pvc.spec.as_ref()) else {
        return false;
    };
    if volume_class(pv) != claim_class(pvc) {
        return false;
    }
    let have = vs.access_modes.as_deref().unwrap_or(&[]);
    if !cs.access_modes.iter().flatten().all(|m| have.contains(m)) {
        return false;
    }
    let mode = |m: Option<&String>| m.map_or("Filesystem", |s| s.as_str()).to_string();
    if mode(vs.volume_mode.as_ref()) != mode(cs.volume_mode.as_ref()) {
        return false;
    }
    if capacity_bytes(vs) < requested_bytes(pvc) {
        return false;
    }
    if let Some(sel) = cs.selector.as_ref() {
        let labels: Labels = pv.metadata.labels.clone().unwrap_or_default();
        if !selector_matches(Some(sel), &labels) {
            return false;
        }
    }
    true
}

/// The best volume for the claim, as upstream's `findMatchingVolume`: a volume pre-bound to
/// the claim wins; otherwise the smallest available volume that satisfies it. With
/// `delay_binding` (a WaitForFirstConsumer class) unbound volumes are only considered when
/// `on_node` accepts them (the scheduler passes the node's check; the binder passes none and
/// so leaves them to the scheduler). Volumes being deleted are never chosen.
pub fn find_match<'a>(
    volumes: impl IntoIterator<Item = &'a PersistentVolume>,
    pvc: &PersistentVolumeClaim,
    delay_binding: bool,
    on_node: Option<&dyn Fn(&PersistentVolume) -> bool>,
) -> Option<&'a PersistentVolume> {
    let mut best: Option<(&PersistentVolume, i64)> = None;
    for pv in volumes {
        if pv.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let Some(spec) = pv.spec.as_ref() else {
            continue;
        };
        if is_claimed_by(pv, pvc) {
            if satisfies(pv, pvc) && on_node.is_none_or(|f| f(pv)) {
                return Some(pv);
            }
            continue;
        }
        if spec.claim_ref.is_some() {
            continue;
        }
        let phase = pv.status.as_ref().and_then(|s| s.phase.as_deref());
        if !matches!(phase, None | Some("Available" | "Pending")) {
            continue;
        }
        if delay_binding && on_node.is_none() {
            continue;
        }
        if !satisfies(pv, pvc) || !on_node.is_none_or(|f| f(pv)) {
            continue;
        }
        let size = capacity_bytes(spec);
        if best.is_none_or(|(_, s)| size < s) {
            best = Some((pv, size));
        }
    }
    best.map(|(pv, _)| pv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pv(name: &str, spec: serde_json::Value) -> PersistentVolume {
        serde_json::from_value(
            json!({"metadata": {"name": name, "labels": {"tier": name}}, "spec": spec}),
        )
        .unwrap_or_default()
    }

    #[test]
    fn best_match_is_the_smallest_fit_or_the_pre_bound_one() {
        let pvc: PersistentVolumeClaim = serde_json::from_value(json!({
            "metadata": {"name": "c", "namespace": "ns", "uid": "u1"},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "",
                     "resources": {"requests": {"storage": "1Gi"}}},
        }))
        .unwrap_or_default();
        let base = |size: &str| json!({"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce", "ReadOnlyMany"]});
        let small = pv("small", base("512Mi"));
        let big = pv("big", base("10Gi"));
        let fit = pv("fit", base("2Gi"));
        let mut rox = base("2Gi");
        rox["accessModes"] = json!(["ReadOnlyMany"]);
        let rox = pv("rox", rox);
        let mut classy = base("1Gi");
        classy["storageClassName"] = json!("fast");
        let classy = pv("classy", classy);
        let all = [small, big.clone(), fit, rox, classy];
        let got = find_match(all.iter(), &pvc, false, None);
        assert_eq!(got.and_then(|p| p.metadata.name.as_deref()), Some("fit"));
        // Delayed binding leaves unbound volumes to the scheduler.
        assert!(find_match(all.iter(), &pvc, true, None).is_none());
        let accept_big: &dyn Fn(&PersistentVolume) -> bool =
            &|p| p.metadata.name.as_deref() == Some("big");
        let got = find_match(all.iter(), &pvc, true, Some(accept_big));
        assert_eq!(got.and_then(|p| p.metadata.name.as_deref()), Some("big"));
        // A volume pre-bound to the claim wins over a smaller one.
        let mut pre = base("20Gi");
        pre["claimRef"] = json!({"name": "c", "namespace": "ns"});
        let pre = pv("pre", pre);
        let all = [big, pre];
        let got = find_match(all.iter(), &pvc, true, None);
        assert_eq!(got.and_then(|p| p.metadata.name.as_deref()), Some("pre"));
        // A selector must match the volume's labels.
        let mut sel = pvc.clone();
        if let Some(s) = sel.spec.as_mut() {
            s.selector = serde_json::from_value(json!({"matchLabels": {"tier": "gold"}})).ok();
        }
        assert!(find_match(all[..1].iter(), &sel, false, None).is_none());
    }
}
