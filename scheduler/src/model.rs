//! The scheduler's view of pods and nodes: parsed once when they enter the cache, so a
//! scheduling decision does no parsing of quantities or selectors' inputs.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    Node, NodeSelectorRequirement, NodeSelectorTerm, Pod, Taint, Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};

use crate::resources::{pod_requests, Resources};

pub type Labels = BTreeMap<String, String>;

/// A host port a pod's container claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub ip: String,
    pub protocol: String,
    pub port: i32,
}

impl HostPort {
    pub fn conflicts(&self, o: &HostPort) -> bool {
        let any = |ip: &str| ip.is_empty() || ip == "0.0.0.0" || ip == "::";
        self.port == o.port
            && self.protocol == o.protocol
            && (self.ip == o.ip || any(&self.ip) || any(&o.ip))
    }
}

/// A PersistentVolumeClaim a pod's volume uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub name: String,
    /// A generic ephemeral volume: the claim `<pod>-<volume>` is made by a controller.
    pub ephemeral: bool,
}

/// A pod with everything the plugins read precomputed.
#[derive(Debug)]
pub struct PodInfo {
    pub pod: Pod,
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub labels: Labels,
    pub node_name: Option<String>,
    pub priority: i32,
    pub created: Option<Time>,
    pub requests: Resources,
    /// cpu (milli) and memory with the scoring defaults for unset requests.
    pub non_zero: (i64, i64),
    pub host_ports: Vec<HostPort>,
    pub terminating: bool,
    pub has_required_anti_affinity: bool,
    pub has_affinity_terms: bool,
    /// `spec.schedulingGates` is not empty: the pod is not to be attempted yet.
    pub gated: bool,
    /// The PersistentVolumeClaims its volumes use.
    pub claims: Vec<Claim>,
}

impl PodInfo {
    pub fn new(pod: Pod) -> Arc<PodInfo> {
        let (requests, non_zero) = pod_requests(&pod);
        let spec = pod.spec.as_ref();
        let host_ports = spec
            .map(|s| {
                s.containers
                    .iter()
                    .flat_map(|c| c.ports.iter().flatten())
                    .filter_map(|p| {
                        let port = p.host_port.filter(|hp| *hp > 0)?;
                        Some(HostPort {
                            ip: p.host_ip.clone().unwrap_or_default(),
                            protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                            port,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let affinity = spec.and_then(|s| s.affinity.as_ref());
        let anti = affinity.and_then(|a| a.pod_anti_affinity.as_ref());
        let aff = affinity.and_then(|a| a.pod_affinity.as_ref());
        let has_required_anti_affinity = anti
            .and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .is_some_and(|v| !v.is_empty());
        let has_affinity_terms = has_required_anti_affinity
            || anti.is_some_and(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
                    .is_some_and(|v| !v.is_empty())
            })
            || aff.is_some_and(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
                    .is_some_and(|v| !v.is_empty())
                    || a.preferred_during_scheduling_ignored_during_execution
                        .as_ref()
                        .is_some_and(|v| !v.is_empty())
            });
        let m = &pod.metadata;
        let pod_name = m.name.as_deref().unwrap_or("");
        let claims = spec
            .and_then(|s| s.volumes.as_ref())
            .map(|vols| {
                vols.iter()
                    .filter_map(|v| {
                        if let Some(c) = &v.persistent_volume_claim {
                            return Some(Claim {
                                name: c.claim_name.clone(),
                                ephemeral: false,
                            });
                        }
                        v.ephemeral.as_ref().map(|_| Claim {
                            name: format!("{pod_name}-{}", v.name),
                            ephemeral: true,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Arc::new(PodInfo {
            uid: m.uid.clone().unwrap_or_default(),
            namespace: m.namespace.clone().unwrap_or_default(),
            name: m.name.clone().unwrap_or_default(),
            labels: m.labels.clone().unwrap_or_default(),
            node_name: spec
                .and_then(|s| s.node_name.clone())
                .filter(|n| !n.is_empty()),
            priority: spec.and_then(|s| s.priority).unwrap_or(0),
            created: m.creation_timestamp.clone(),
            terminating: m.deletion_timestamp.is_some(),
            requests,
            non_zero,
            host_ports,
            has_required_anti_affinity,
            has_affinity_terms,
            gated: spec
                .and_then(|s| s.scheduling_gates.as_ref())
                .is_some_and(|g| !g.is_empty()),
            claims,
            pod,
        })
    }

    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    pub fn tolerations(&self) -> &[Toleration] {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.tolerations.as_deref())
            .unwrap_or(&[])
    }

    pub fn preempts(&self) -> bool {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.preemption_policy.as_deref())
            != Some("Never")
    }

    /// A copy bound to `node` (the "assumed" pod, before the API confirms the binding).
    pub fn assumed_on(&self, node: &str) -> Arc<PodInfo> {
        let mut pod = self.pod.clone();
        if let Some(spec) = pod.spec.as_mut() {
            spec.node_name = Some(node.to_string());
        }
        PodInfo::new(pod)
    }
}

/// A node and the pods on it, with their sums kept up to date.
#[derive(Debug, Default)]
pub struct NodeInfo {
    pub name: String,
    pub node: Option<Arc<Node>>,
    pub labels: Labels,
    pub taints: Vec<Taint>,
    pub unschedulable: bool,
    pub allocatable: Resources,
    /// Normalized image names present on the node with their sizes.
    pub images: Vec<(String, i64)>,
    pub pods: Vec<Arc<PodInfo>>,
    pub requested: Resources,
    pub non_zero_requested: (i64, i64),
    pub host_ports: Vec<HostPort>,
    pub pods_with_affinity: usize,
}

impl NodeInfo {
    pub fn new(name: &str) -> Self {
        NodeInfo {
            name: name.to_string(),
            ..Default::default()
        }
    }

    pub fn set_node(&mut self, node: Arc<Node>) {
        self.labels = node.metadata.labels.clone().unwrap_or_default();
        let spec = node.spec.as_ref();
        self.taints = spec.and_then(|s| s.taints.clone()).unwrap_or_default();
        self.unschedulable = spec.and_then(|s| s.unschedulable).unwrap_or(false);
        let status = node.status.as_ref();
        self.allocatable = status
            .and_then(|s| s.allocatable.as_ref().or(s.capacity.as_ref()))
            .map(Resources::from_map)
            .unwrap_or_default();
        self.images = status
            .and_then(|s| s.images.as_ref())
            .map(|imgs| {
                imgs.iter()
                    .flat_map(|i| {
                        let size = i.size_bytes.unwrap_or(0);
                        i.names
                            .iter()
                            .flatten()
                            .map(move |n| (normalize_image(n), size))
                    })
                    .collect()
            })
            .unwrap_or_default();
        self.node = Some(node);
    }

    pub fn add_pod(&mut self, p: Arc<PodInfo>) {
        self.requested.add(&p.requests);
        self.non_zero_requested.0 += p.non_zero.0;
        self.non_zero_requested.1 += p.non_zero.1;
        self.host_ports.extend(p.host_ports.iter().cloned());
        if p.has_affinity_terms {
            self.pods_with_affinity += 1;
        }
        self.pods.push(p);
    }

    pub fn remove_pod(&mut self, uid: &str) -> Option<Arc<PodInfo>> {
        let i = self.pods.iter().position(|p| p.uid == uid)?;
        let p = self.pods.swap_remove(i);
        self.requested.sub(&p.requests);
        self.non_zero_requested.0 -= p.non_zero.0;
        self.non_zero_requested.1 -= p.non_zero.1;
        for hp in &p.host_ports {
            if let Some(j) = self.host_ports.iter().position(|h| h == hp) {
                self.host_ports.swap_remove(j);
            }
        }
        if p.has_affinity_terms {
            self.pods_with_affinity -= 1;
        }
        Some(p)
    }

    /// A copy for "what if" evaluation (preemption).
    pub fn clone_for_simulation(&self) -> NodeInfo {
        let mut n = NodeInfo::new(&self.name);
        if let Some(node) = &self.node {
            n.set_node(node.clone());
        }
        for p in &self.pods {
            n.add_pod(p.clone());
        }
        n
    }
}

/// `nginx` → `docker.io/library/nginx:latest`, as node image lists name them.
pub fn normalize_image(name: &str) -> String {
    let mut n = name.to_string();
    let last = n.rsplit('/').next().unwrap_or("");
    if !last.contains(':') && !n.contains('@') {
        n.push_str(":latest");
    }
    let first = n.split('/').next().unwrap_or("");
    let has_registry =
        n.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    if !has_registry {
        if n.contains('/') {
            n = format!("docker.io/{n}");
        } else {
            n = format!("docker.io/library/{n}");
        }
    }
    n
}

/// `metav1.LabelSelectorAsSelector(sel).Matches(labels)`. `None` matches nothing.
pub fn selector_matches(sel: Option<&LabelSelector>, labels: &Labels) -> bool {
    let Some(sel) = sel else { return false };
    sel.match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v))
        && sel.match_expressions.iter().flatten().all(|e| {
            let values = e.values.as_deref().unwrap_or(&[]);
            let got = labels.get(&e.key);
            match e.operator.as_str() {
                "In" => got.is_some_and(|g| values.contains(g)),
                "NotIn" => got.is_none_or(|g| !values.contains(g)),
                "Exists" => got.is_some(),
                "DoesNotExist" => got.is_none(),
                _ => false,
            }
        })
}

fn node_requirement_matches(r: &NodeSelectorRequirement, value: Option<&String>) -> bool {
    let values = r.values.as_deref().unwrap_or(&[]);
    let as_int = |s: &str| s.parse::<i64>().ok();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.contains(v)),
        "NotIn" => value.is_none_or(|v| !values.contains(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        op @ ("Gt" | "Lt") => {
            let (Some(v), Some(bound)) = (
                value.and_then(|v| as_int(v)),
                values.first().and_then(|b| as_int(b)),
            ) else {
                return false;
            };
            if op == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

/// One node selector term: all expressions on labels and all fields (only `metadata.name`)
/// must hold; a term with neither matches nothing.
pub fn node_term_matches(t: &NodeSelectorTerm, node: &NodeInfo) -> bool {
    let exprs = t.match_expressions.as_deref().unwrap_or(&[]);
    let fields = t.match_fields.as_deref().unwrap_or(&[]);
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    exprs
        .iter()
        .all(|r| node_requirement_matches(r, node.labels.get(&r.key)))
        && fields.iter().all(|r| {
            r.key == "metadata.name"
                && matches!(r.operator.as_str(), "In" | "NotIn")
                && node_requirement_matches(r, Some(&node.name))
        })
}

/// The pod's `nodeSelector` and required node affinity both accept the node.
pub fn pod_matches_node_selector(pod: &PodInfo, node: &NodeInfo) -> bool {
    let Some(spec) = pod.pod.spec.as_ref() else {
        return true;
    };
    if let Some(sel) = &spec.node_selector {
        if !sel.iter().all(|(k, v)| node.labels.get(k) == Some(v)) {
            return false;
        }
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    match required {
        Some(sel) => sel
            .node_selector_terms
            .iter()
            .any(|t| node_term_matches(t, node)),
        None => true,
    }
}

/// `v1.Toleration.ToleratesTaint`.
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = t.effect.as_deref().filter(|e| !e.is_empty()) {
        if effect != taint.effect {
            return false;
        }
    }
    let key = t.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => {
            !key.is_empty()
                && t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        _ => false,
    }
}

/// The first taint with one of `effects` that no toleration tolerates.
pub fn untolerated_taint<'a>(
    taints: &'a [Taint],
    tolerations: &[Toleration],
    effects: &[&str],
) -> Option<&'a Taint> {
    taints
        .iter()
        .filter(|t| effects.contains(&t.effect.as_str()))
        .find(|t| !tolerations.iter().any(|tol| tolerates(tol, t)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_normalize() {
        assert_eq!(normalize_image("nginx"), "docker.io/library/nginx:latest");
        assert_eq!(normalize_image("foo/bar:1"), "docker.io/foo/bar:1");
        assert_eq!(
            normalize_image("registry.k8s.io/pause:3.10"),
            "registry.k8s.io/pause:3.10"
        );
        assert_eq!(
            normalize_image("localhost:5000/x"),
            "localhost:5000/x:latest"
        );
    }

    #[test]
    fn toleration_matching() {
        let taint = Taint {
            key: "k".into(),
            value: Some("v".into()),
            effect: "NoSchedule".into(),
            ..Default::default()
        };
        let eq = |k: &str, v: &str| Toleration {
            key: Some(k.into()),
            value: Some(v.into()),
            ..Default::default()
        };
        assert!(tolerates(&eq("k", "v"), &taint));
        assert!(!tolerates(&eq("k", "w"), &taint));
        let exists_all = Toleration {
            operator: Some("Exists".into()),
            ..Default::default()
        };
        assert!(tolerates(&exists_all, &taint));
        let wrong_effect = Toleration {
            effect: Some("NoExecute".into()),
            ..eq("k", "v")
        };
        assert!(!tolerates(&wrong_effect, &taint));
    }
}
