//! Resource quantities and the per-pod request arithmetic of kube-scheduler
//! (`k8s.io/component-helpers/resource.PodRequests`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// CPU (in millicores) assumed for a container without a cpu request when scoring.
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// Memory (bytes) assumed for a container without a memory request when scoring.
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// Parses a Kubernetes quantity (`100m`, `1.5Gi`, `2e3`, `1k`) into its value scaled by `scale`
/// (1000 for millicores), rounded up. `None` for malformed input.
pub fn parse_quantity(q: &str, scale: f64) -> Option<i64> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    let num: f64 = num.parse().ok()?;
    let mult = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        s if s.starts_with(['e', 'E']) => 10f64.powi(s[1..].parse().ok()?),
        _ => return None,
    };
    let v = (num * mult * scale).ceil();
    v.is_finite().then_some(v as i64)
}

/// A set of resource amounts: cpu in millicores, the rest in their base unit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    pub pods: i64,
    /// Extended and hugepages resources by name.
    pub scalar: BTreeMap<String, i64>,
}

impl Resources {
    /// Reads a `requests`/`allocatable` map. Unparsable amounts count as zero.
    pub fn from_map(m: &BTreeMap<String, Quantity>) -> Self {
        let mut r = Resources::default();
        for (name, q) in m {
            r.set(name, q);
        }
        r
    }

    fn set(&mut self, name: &str, q: &Quantity) {
        let scale = if name == "cpu" { 1000.0 } else { 1.0 };
        let v = parse_quantity(&q.0, scale).unwrap_or(0);
        match name {
            "cpu" => self.milli_cpu = v,
            "memory" => self.memory = v,
            "ephemeral-storage" => self.ephemeral_storage = v,
            "pods" => self.pods = v,
            n if is_scalar(n) => {
                self.scalar.insert(n.to_string(), v);
            }
            _ => {}
        }
    }

    pub fn add(&mut self, o: &Resources) {
        self.milli_cpu += o.milli_cpu;
        self.memory += o.memory;
        self.ephemeral_storage += o.ephemeral_storage;
        self.pods += o.pods;
        for (k, v) in &o.scalar {
            *self.scalar.entry(k.clone()).or_default() += v;
        }
    }

    pub fn sub(&mut self, o: &Resources) {
        self.milli_cpu -= o.milli_cpu;
        self.memory -= o.memory;
        self.ephemeral_storage -= o.ephemeral_storage;
        self.pods -= o.pods;
        for (k, v) in &o.scalar {
            *self.scalar.entry(k.clone()).or_default() -= v;
        }
    }

    /// Element-wise maximum.
    pub fn max_with(&mut self, o: &Resources) {
        self.milli_cpu = self.milli_cpu.max(o.milli_cpu);
        self.memory = self.memory.max(o.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(o.ephemeral_storage);
        for (k, v) in &o.scalar {
            let e = self.scalar.entry(k.clone()).or_default();
            *e = (*e).max(*v);
        }
    }

    pub fn scalar(&self, name: &str) -> i64 {
        self.scalar.get(name).copied().unwrap_or(0)
    }

    pub fn is_zero(&self) -> bool {
        self.milli_cpu == 0
            && self.memory == 0
            && self.ephemeral_storage == 0
            && self.scalar.values().all(|v| *v == 0)
    }
}

/// Extended resources (`example.com/gpu`), hugepages and attachable volumes: everything the
/// scheduler accounts for besides cpu, memory, ephemeral-storage and pods.
fn is_scalar(name: &str) -> bool {
    name.starts_with("hugepages-")
        || name.starts_with("attachable-volumes-")
        || (name.contains('/')
            && !name.starts_with("kubernetes.io/")
            && !name.starts_with("requests."))
}

fn container_requests(c: &Container) -> Resources {
    c.resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .map(Resources::from_map)
        .unwrap_or_default()
}

/// What a pod asks of a node: `(requests, non-zero cpu/memory for scoring)`.
///
/// Requests are the sum over containers, raised to the largest init container (restartable
/// "sidecar" init containers run alongside and add up), plus the pod overhead.
pub fn pod_requests(pod: &Pod) -> (Resources, (i64, i64)) {
    let Some(spec) = pod.spec.as_ref() else {
        return (Resources::default(), (0, 0));
    };
    let mut sum = Resources::default();
    let (mut nz_cpu, mut nz_mem) = (0, 0);
    for c in &spec.containers {
        let r = container_requests(c);
        nz_cpu += non_zero(r.milli_cpu, DEFAULT_MILLI_CPU_REQUEST, c, "cpu");
        nz_mem += non_zero(r.memory, DEFAULT_MEMORY_REQUEST, c, "memory");
        sum.add(&r);
    }
    let mut init_max = Resources::default();
    let mut sidecars = Resources::default();
    for c in spec.init_containers.iter().flatten() {
        let r = container_requests(c);
        if c.restart_policy.as_deref() == Some("Always") {
            sidecars.add(&r);
            sum.add(&r);
            init_max.max_with(&sidecars);
        } else {
            let mut with_sidecars = r;
            with_sidecars.add(&sidecars);
            init_max.max_with(&with_sidecars);
        }
    }
    sum.max_with(&init_max);
    if let Some(over) = spec.overhead.as_ref() {
        let o = Resources::from_map(over);
        nz_cpu += o.milli_cpu;
        nz_mem += o.memory;
        sum.add(&o);
    }
    sum.pods = 1;
    (sum, (nz_cpu, nz_mem))
}

fn non_zero(v: i64, default: i64, c: &Container, name: &str) -> i64 {
    let explicit = c
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .is_some_and(|m| m.contains_key(name));
    if v == 0 && !explicit {
        default
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("100m", 1000.0), Some(100));
        assert_eq!(parse_quantity("2", 1000.0), Some(2000));
        assert_eq!(parse_quantity("1.5", 1000.0), Some(1500));
        assert_eq!(parse_quantity("1Gi", 1.0), Some(1 << 30));
        assert_eq!(parse_quantity("128974848", 1.0), Some(128_974_848));
        assert_eq!(parse_quantity("129e6", 1.0), Some(129_000_000));
        assert_eq!(parse_quantity("1k", 1.0), Some(1000));
        assert_eq!(parse_quantity("junk", 1.0), None);
        assert_eq!(parse_quantity("1Q", 1.0), None);
    }

    #[test]
    fn init_containers_and_overhead() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "spec": {
                "containers": [
                    {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "1Mi"}}},
                    {"name": "b", "resources": {"requests": {"cpu": "200m", "example.com/gpu": "1"}}}
                ],
                "initContainers": [
                    {"name": "i", "resources": {"requests": {"cpu": "1", "memory": "1Ki"}}}
                ],
                "overhead": {"cpu": "10m"}
            }
        }))
        .unwrap_or_default();
        let (r, nz) = pod_requests(&pod);
        assert_eq!(r.milli_cpu, 1010);
        assert_eq!(r.memory, 1 << 20);
        assert_eq!(r.scalar("example.com/gpu"), 1);
        assert_eq!(r.pods, 1);
        // b has no memory request: scoring assumes the default for it.
        assert_eq!(nz, (310, (1 << 20) + DEFAULT_MEMORY_REQUEST));
    }
}
