//! ResourceQuota: what an object uses (upstream's quota evaluators), which quotas match it
//! (scopes), and the admission check that charges a new object to every matching quota's
//! `status.used` with a compare-and-swap on the quota, so concurrent creates cannot both take
//! the last slot. The resourcequota controller recomputes `status` from the objects with
//! [`compute_used`], the same evaluators.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use meso_store::{Store, StoreError};
use serde_json::{json, Map, Value};

use crate::errors::{ApiError, ApiResult};
use crate::registry::ResourceCtx;
use crate::validation::{is_extended_resource, is_huge_pages, quantity_of, QFormat, Quantity};

/// A resource list: resource name → amount.
type ResourceList = BTreeMap<String, Quantity>;

fn one() -> Quantity {
    count(1)
}

fn count(n: i128) -> Quantity {
    Quantity {
        nano: n * crate::validation::NANO,
        format: QFormat::DecimalSI,
    }
}

/// `Quantity.Add`: the sum keeps the first operand's format, unless that one is zero.
fn add(a: Quantity, b: Quantity) -> Quantity {
    Quantity {
        nano: a.nano.saturating_add(b.nano),
        format: if a.nano == 0 { b.format } else { a.format },
    }
}

/// Parses a `ResourceList` (entries that do not parse are left out; validation rejects them).
fn parse_list(v: Option<&Value>) -> ResourceList {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| quantity_of(v).map(|q| (k.clone(), q)))
                .collect()
        })
        .unwrap_or_default()
}

fn render_list(l: &ResourceList) -> Value {
    Value::Object(
        l.iter()
            .map(|(k, q)| (k.clone(), json!(q.canonical())))
            .collect(),
    )
}

fn add_into(into: &mut ResourceList, from: &ResourceList) {
    for (k, q) in from {
        let v = into.get(k).map_or(*q, |cur| add(*cur, *q));
        into.insert(k.clone(), v);
    }
}

fn pretty(l: &ResourceList) -> String {
    l.iter()
        .map(|(k, q)| format!("{k}={}", q.canonical()))
        .collect::<Vec<_>>()
        .join(",")
}

/// The quota resource counting objects of `plural.group` (`count/pods`, `count/deployments.apps`).
fn object_count_name(group: &str, plural: &str) -> String {
    if group.is_empty() {
        format!("count/{plural}")
    } else {
        format!("count/{plural}.{group}")
    }
}

/// The legacy object-count names of core resources.
fn legacy_count_name(group: &str, plural: &str) -> Option<&'static str> {
    if !group.is_empty() {
        return None;
    }
    Some(match plural {
        "pods" => "pods",
        "services" => "services",
        "configmaps" => "configmaps",
        "secrets" => "secrets",
        "persistentvolumeclaims" => "persistentvolumeclaims",
        "replicationcontrollers" => "replicationcontrollers",
        "resourcequotas" => "resourcequotas",
        _ => return None,
    })
}

/// Whether a quota resource name is charged by objects of `plural.group`.
fn charged_by(name: &str, group: &str, plural: &str) -> bool {
    if name == object_count_name(group, plural) || Some(name) == legacy_count_name(group, plural) {
        return true;
    }
    match (group, plural) {
        ("", "pods") => {
            matches!(
                name,
                "cpu"
                    | "memory"
                    | "ephemeral-storage"
                    | "requests.cpu"
                    | "requests.memory"
                    | "requests.ephemeral-storage"
                    | "limits.cpu"
                    | "limits.memory"
                    | "limits.ephemeral-storage"
            ) || is_huge_pages(name)
                || name.strip_prefix("requests.").is_some_and(|r| {
                    is_huge_pages(r) || (r.contains('/') && is_extended_resource(r))
                })
        }
        ("", "services") => matches!(name, "services.nodeports" | "services.loadbalancers"),
        ("", "persistentvolumeclaims") => {
            name == "requests.storage"
                || name.ends_with(".storageclass.storage.k8s.io/requests.storage")
                || name.ends_with(".storageclass.storage.k8s.io/persistentvolumeclaims")
        }
        _ => false,
    }
}

/// The (group, plural) a quota resource name counts: what the controller lists to compute
/// its usage. `None` for names no evaluator knows.
pub fn counted_resource(name: &str) -> Option<(String, String)> {
    if let Some(rest) = name.strip_prefix("count/") {
        return Some(match rest.split_once('.') {
            Some((plural, group)) => (group.to_string(), plural.to_string()),
            None => (String::new(), rest.to_string()),
        });
    }
    for plural in [
        "pods",
        "services",
        "configmaps",
        "secrets",
        "persistentvolumeclaims",
        "replicationcontrollers",
        "resourcequotas",
    ] {
        if charged_by(name, "", plural) {
            return Some((String::new(), plural.to_string()));
        }
    }
    None
}

fn containers<'a>(pod: &'a Value, field: &str) -> impl Iterator<Item = &'a Value> {
    pod.get("spec")
        .and_then(|s| s.get(field))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn container_list(c: &Value, which: &str) -> ResourceList {
    parse_list(c.get("resources").and_then(|r| r.get(which)))
}

fn max_into(into: &mut ResourceList, from: &ResourceList) {
    for (k, q) in from {
        if into.get(k).is_none_or(|cur| q.nano > cur.nano) {
            into.insert(k.clone(), *q);
        }
    }
}

/// Upstream's `PodRequests`/`PodLimits`: the sum over containers and sidecars, or the largest
/// init container (plus the sidecars started before it) when that is more; plus overhead.
/// Pod-level resources, when set, win.
pub(crate) fn pod_resources(pod: &Value, which: &str) -> ResourceList {
    let pod_level = parse_list(
        pod.get("spec")
            .and_then(|s| s.get("resources"))
            .and_then(|r| r.get(which)),
    );
    let mut sum = ResourceList::new();
    for c in containers(pod, "containers") {
        add_into(&mut sum, &container_list(c, which));
    }
    let mut sidecars = ResourceList::new();
    let mut init_max = ResourceList::new();
    for c in containers(pod, "initContainers") {
        let own = container_list(c, which);
        if c.get("restartPolicy").and_then(Value::as_str) == Some("Always") {
            add_into(&mut sum, &own);
            add_into(&mut sidecars, &own);
        } else {
            let mut tmp = own;
            add_into(&mut tmp, &sidecars);
            max_into(&mut init_max, &tmp);
        }
    }
    max_into(&mut sum, &init_max);
    for (k, q) in pod_level {
        if matches!(k.as_str(), "cpu" | "memory") {
            sum.insert(k, q);
        }
    }
    if which == "requests" || !sum.is_empty() {
        let overhead = parse_list(pod.get("spec").and_then(|s| s.get("overhead")));
        for (k, q) in overhead {
            if let Some(cur) = sum.get(&k).copied() {
                sum.insert(k, add(cur, q));
            } else if which == "requests" {
                sum.insert(k, q);
            }
        }
    }
    sum
}

/// Upstream's `podComputeUsageHelper`.
fn compute_usage(requests: &ResourceList, limits: &ResourceList) -> ResourceList {
    let mut out = ResourceList::new();
    out.insert("pods".into(), one());
    for (res, req_name, lim_name) in [
        ("cpu", "requests.cpu", "limits.cpu"),
        ("memory", "requests.memory", "limits.memory"),
        (
            "ephemeral-storage",
            "requests.ephemeral-storage",
            "limits.ephemeral-storage",
        ),
    ] {
        if let Some(q) = requests.get(res) {
            out.insert(res.into(), *q);
            out.insert(req_name.into(), *q);
        }
        if let Some(q) = limits.get(res) {
            out.insert(lim_name.into(), *q);
        }
    }
    for (res, q) in requests {
        if is_huge_pages(res) {
            out.insert(res.clone(), *q);
            out.insert(format!("requests.{res}"), *q);
        } else if res.contains('/') && is_extended_resource(res) {
            out.insert(format!("requests.{res}"), *q);
        }
    }
    out
}

fn is_deleted_past_grace(obj: &Value) -> bool {
    let Some(ts) = crate::meta::meta_str(obj, "deletionTimestamp") else {
        return false;
    };
    let Ok(at) = chrono::DateTime::parse_from_rfc3339(ts) else {
        return false;
    };
    let grace = obj
        .get("metadata")
        .and_then(|m| m.get("deletionGracePeriodSeconds"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    chrono::Utc::now() > at + chrono::Duration::seconds(grace)
}

/// Whether a pod still counts against compute quota (upstream's `QuotaV1Pod`): not once it
/// has succeeded or failed, nor once its deletion grace period has run out.
pub fn pod_counts(pod: &Value) -> bool {
    let phase = pod
        .get("status")
        .and_then(|s| s.get("phase"))
        .and_then(Value::as_str);
    !matches!(phase, Some("Succeeded" | "Failed")) && !is_deleted_past_grace(pod)
}

/// What one object of `plural.group` uses.
fn usage(group: &str, plural: &str, obj: &Value) -> ResourceList {
    let mut out = ResourceList::new();
    out.insert(object_count_name(group, plural), one());
    let legacy = legacy_count_name(group, plural);
    match (group, plural) {
        ("", "pods") => {
            if pod_counts(obj) {
                let usage = compute_usage(
                    &pod_resources(obj, "requests"),
                    &pod_resources(obj, "limits"),
                );
                add_into(&mut out, &usage);
            }
        }
        ("", "services") => {
            out.insert("services".into(), one());
            let spec = obj.get("spec");
            let ports: Vec<&Value> = spec
                .and_then(|s| s.get("ports"))
                .and_then(Value::as_array)
                .map(|a| a.iter().collect())
                .unwrap_or_default();
            match spec.and_then(|s| s.get("type")).and_then(Value::as_str) {
                Some("NodePort") => {
                    out.insert("services.nodeports".into(), count(ports.len() as i128));
                }
                Some("LoadBalancer") => {
                    let allocate = spec
                        .and_then(|s| s.get("allocateLoadBalancerNodePorts"))
                        .and_then(Value::as_bool)
                        .unwrap_or(true);
                    let n = if allocate {
                        ports.len()
                    } else {
                        ports
                            .iter()
                            .filter(|p| p.get("nodePort").and_then(Value::as_i64).unwrap_or(0) != 0)
                            .count()
                    };
                    out.insert("services.nodeports".into(), count(n as i128));
                    out.insert("services.loadbalancers".into(), one());
                }
                _ => {}
            }
        }
        ("", "persistentvolumeclaims") => {
            out.insert("persistentvolumeclaims".into(), one());
            let spec = obj.get("spec");
            let class = spec
                .and_then(|s| s.get("storageClassName"))
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty());
            if let Some(c) = class {
                out.insert(
                    format!("{c}.storageclass.storage.k8s.io/persistentvolumeclaims"),
                    one(),
                );
            }
            let storage = spec
                .and_then(|s| s.get("resources"))
                .and_then(|r| r.get("requests"))
                .and_then(|r| r.get("storage"))
                .and_then(quantity_of);
            if let Some(q) = storage {
                out.insert("requests.storage".into(), q);
                if let Some(c) = class {
                    out.insert(
                        format!("{c}.storageclass.storage.k8s.io/requests.storage"),
                        q,
                    );
                }
            }
        }
        _ => {
            if let Some(l) = legacy {
                out.insert(l.into(), one());
            }
        }
    }
    out
}

/// The pod's QoS class is BestEffort: no container asks for or limits cpu or memory.
fn best_effort(pod: &Value) -> bool {
    let pod_level = pod.get("spec").and_then(|s| s.get("resources"));
    let any = |r: Option<&Value>| {
        ["requests", "limits"].iter().any(|w| {
            let l = parse_list(r.and_then(|r| r.get(*w)));
            ["cpu", "memory"]
                .iter()
                .any(|k| l.get(*k).is_some_and(|q| q.nano != 0))
        })
    };
    if any(pod_level) {
        return false;
    }
    !containers(pod, "containers")
        .chain(containers(pod, "initContainers"))
        .any(|c| any(c.get("resources")))
}

fn cross_namespace_affinity(pod: &Value) -> bool {
    let Some(aff) = pod.get("spec").and_then(|s| s.get("affinity")) else {
        return false;
    };
    ["podAffinity", "podAntiAffinity"].iter().any(|kind| {
        let Some(a) = aff.get(*kind) else {
            return false;
        };
        let required = a
            .get("requiredDuringSchedulingIgnoredDuringExecution")
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        let preferred = a
            .get("preferredDuringSchedulingIgnoredDuringExecution")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|w| w.get("podAffinityTerm"));
        required.chain(preferred).any(|t| {
            t.get("namespaceSelector").is_some_and(|s| !s.is_null())
                || t.get("namespaces")
                    .and_then(Value::as_array)
                    .is_some_and(|n| !n.is_empty())
        })
    })
}

/// One scope requirement: (scope name, operator, values).
type ScopeReq = (String, String, Vec<String>);

fn scope_requirements(quota: &Value) -> Vec<ScopeReq> {
    let spec = quota.get("spec");
    let mut out: Vec<ScopeReq> = spec
        .and_then(|s| s.get("scopes"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|s| (s.to_string(), "Exists".to_string(), vec![]))
        .collect();
    let exprs = spec
        .and_then(|s| s.get("scopeSelector"))
        .and_then(|s| s.get("matchExpressions"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    for e in exprs {
        let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let values = e
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect();
        out.push((s("scopeName"), s("operator"), values));
    }
    out
}

/// Whether a pod matches one scope requirement (upstream's `podMatchesScopeFunc`).
fn pod_matches_scope(pod: &Value, (scope, op, values): &ScopeReq) -> bool {
    let spec = pod.get("spec");
    match scope.as_str() {
        "Terminating" => spec
            .and_then(|s| s.get("activeDeadlineSeconds"))
            .and_then(Value::as_i64)
            .is_some_and(|d| d >= 0),
        "NotTerminating" => spec
            .and_then(|s| s.get("activeDeadlineSeconds"))
            .and_then(Value::as_i64)
            .is_none_or(|d| d < 0),
        "BestEffort" => best_effort(pod),
        "NotBestEffort" => !best_effort(pod),
        "CrossNamespacePodAffinity" => cross_namespace_affinity(pod),
        "PriorityClass" => {
            let class = spec
                .and_then(|s| s.get("priorityClassName"))
                .and_then(Value::as_str)
                .unwrap_or("");
            match op.as_str() {
                "Exists" => !class.is_empty(),
                "In" => values.iter().any(|v| v == class),
                "NotIn" => !values.iter().any(|v| v == class),
                // The class is always a key of the set the selector matches against.
                _ => false,
            }
        }
        _ => false,
    }
}

/// Whether the quota's scopes select the object (only pods have scopes; a scoped quota
/// counts no other kind).
fn matches_scopes(quota: &Value, group: &str, plural: &str, obj: &Value) -> bool {
    let reqs = scope_requirements(quota);
    if reqs.is_empty() {
        return true;
    }
    group.is_empty() && plural == "pods" && reqs.iter().all(|r| pod_matches_scope(obj, r))
}

/// Every hard resource of the quota set to the summed usage of the matching `objects`
/// (all of resource `plural.group`, one namespace). Feed it each counted resource in turn,
/// starting from an empty map: the controller's usage computation.
pub fn compute_used(
    quota: &Value,
    group: &str,
    plural: &str,
    objects: &[Value],
    used: &mut Map<String, Value>,
) {
    let hard = parse_list(quota.get("spec").and_then(|s| s.get("hard")));
    let mut sums = parse_list(Some(&Value::Object(used.clone())));
    for name in hard.keys() {
        if charged_by(name, group, plural) {
            sums.entry(name.clone()).or_insert_with(|| count(0));
        }
    }
    for obj in objects {
        if !matches_scopes(quota, group, plural, obj) {
            continue;
        }
        for (k, q) in usage(group, plural, obj) {
            if hard.contains_key(&k) {
                let v = sums.get(&k).map_or(q, |cur| add(*cur, q));
                sums.insert(k, v);
            }
        }
    }
    if let Value::Object(m) = render_list(&sums) {
        used.extend(m);
    }
}

/// The quota resources `obj` must declare for every container (upstream's pod evaluator
/// `Constraints`): cpu and memory requests and limits the quota tracks.
fn pod_constraints(pod: &Value, hard: &ResourceList) -> Option<String> {
    let pod_level = pod
        .get("spec")
        .and_then(|s| s.get("resources"))
        .and_then(Value::as_object)
        .is_some_and(|r| !r.is_empty());
    if pod_level {
        return None;
    }
    const VALIDATED: &[&str] = &[
        "cpu",
        "memory",
        "requests.cpu",
        "requests.memory",
        "limits.cpu",
        "limits.memory",
    ];
    let required: BTreeSet<&str> = VALIDATED
        .iter()
        .copied()
        .filter(|r| hard.contains_key(*r))
        .collect();
    if required.is_empty() {
        return None;
    }
    let mut missing: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for c in containers(pod, "containers").chain(containers(pod, "initContainers")) {
        let usage = compute_usage(&container_list(c, "requests"), &container_list(c, "limits"));
        let name = c.get("name").and_then(Value::as_str).unwrap_or("");
        for r in &required {
            if !usage.contains_key(*r) {
                missing.entry(r).or_default().insert(name.to_string());
            }
        }
    }
    if missing.is_empty() {
        return None;
    }
    let parts: Vec<String> = missing
        .iter()
        .map(|(r, names)| {
            format!(
                "{r} for: {}",
                names.iter().cloned().collect::<Vec<_>>().join(",")
            )
        })
        .collect();
    Some(format!("must specify {}", parts.join("; ")))
}

fn quota_prefix(ns: &str) -> String {
    format!("/registry/core/resourcequotas/{ns}/")
}

/// Charges a new object to the quotas of its namespace, or refuses it with upstream's 403
/// (`exceeded quota: …`, `failed quota: …`, `status unknown for quota: …`). Each quota's
/// `status.used` is raised with a compare-and-swap on the quota; a lost race re-reads and
/// re-checks that quota. A dry run checks without charging.
pub async fn admit_create(
    store: &Store,
    ctx: &ResourceCtx,
    obj: &Value,
    dry_run: bool,
) -> ApiResult<()> {
    let delta = usage(&ctx.info.group, &ctx.info.plural, obj);
    charge(store, ctx, obj, delta, dry_run).await
}

/// Charges what an update adds (upstream's services and PersistentVolumeClaims evaluators
/// handle updates: a Service turned NodePort or LoadBalancer, a claim grown). Pods are only
/// charged at creation.
pub async fn admit_update(
    store: &Store,
    ctx: &ResourceCtx,
    new: &Value,
    old: &Value,
    dry_run: bool,
) -> ApiResult<()> {
    let (group, plural) = (ctx.info.group.as_str(), ctx.info.plural.as_str());
    if !(group.is_empty() && matches!(plural, "services" | "persistentvolumeclaims")) {
        return Ok(());
    }
    let before = usage(group, plural, old);
    let delta: ResourceList = usage(group, plural, new)
        .into_iter()
        .filter_map(|(k, q)| {
            let grown = q.nano - before.get(&k).map_or(0, |b| b.nano);
            (grown > 0).then_some((
                k,
                Quantity {
                    nano: grown,
                    format: q.format,
                },
            ))
        })
        .collect();
    if delta.is_empty() {
        return Ok(());
    }
    charge(store, ctx, new, delta, dry_run).await
}

async fn charge(
    store: &Store,
    ctx: &ResourceCtx,
    obj: &Value,
    delta: ResourceList,
    dry_run: bool,
) -> ApiResult<()> {
    let Some(ns) = ctx.namespace.as_deref().filter(|_| ctx.info.namespaced()) else {
        return Ok(());
    };
    let (group, plural) = (ctx.info.group.as_str(), ctx.info.plural.as_str());
    let name = crate::meta::meta_str(obj, "name").unwrap_or("").to_string();
    let forbidden = |msg: String| {
        ApiError::forbidden(
            group,
            plural,
            &name,
            format!(
                "{} {name:?} is forbidden: {msg}",
                crate::errors::qualified(group, plural)
            ),
        )
    };
    let is_pod = group.is_empty() && plural == "pods";
    let mut charged: HashSet<String> = HashSet::new();
    for _ in 0..64 {
        let list = store.list_cached(&quota_prefix(ns))?;
        let mut quotas: Vec<(String, u64, Value)> = list
            .iter()
            .filter_map(|kv| {
                let q: Value = serde_json::from_slice(&kv.value).ok()?;
                Some((kv.key.clone(), kv.mod_revision, q))
            })
            .filter(|(_, _, q)| !charged.contains(crate::meta::meta_str(q, "name").unwrap_or("")))
            .collect();
        quotas.sort_by(|a, b| {
            crate::meta::meta_str(&a.2, "name").cmp(&crate::meta::meta_str(&b.2, "name"))
        });
        // Which quotas apply, and the checks that need no arithmetic, first for all.
        let mut applicable = Vec::new();
        for (key, rev, q) in quotas {
            let qname = crate::meta::meta_str(&q, "name").unwrap_or("").to_string();
            if !matches_scopes(&q, group, plural, obj) {
                continue;
            }
            let status = q.get("status");
            let hard = parse_list(status.and_then(|s| s.get("hard")));
            // As upstream, only what the controller has put in `status.hard` is enforced.
            let restricted: Vec<&String> = hard
                .keys()
                .filter(|k| charged_by(k, group, plural))
                .collect();
            if restricted.is_empty() {
                continue;
            }
            if is_pod {
                if let Some(m) = pod_constraints(obj, &hard) {
                    return Err(forbidden(format!("failed quota: {qname}: {m}")));
                }
            }
            let used = parse_list(status.and_then(|s| s.get("used")));
            if restricted.iter().any(|r| !used.contains_key(r.as_str())) {
                let names: Vec<&str> = restricted.iter().map(|r| r.as_str()).collect();
                return Err(forbidden(format!(
                    "status unknown for quota: {qname}, resources: {}",
                    names.join(",")
                )));
            }
            applicable.push((key, rev, q, qname, hard, used));
        }
        let mut writes = Vec::new();
        for (key, rev, mut q, qname, hard, used) in applicable {
            let requested: ResourceList = delta
                .iter()
                .filter(|(k, _)| hard.contains_key(*k))
                .map(|(k, v)| (k.clone(), *v))
                .collect();
            if requested.is_empty() {
                continue;
            }
            let mut new_used = used.clone();
            add_into(&mut new_used, &requested);
            let exceeded: Vec<&String> = requested
                .keys()
                .filter(|k| {
                    let (Some(n), Some(h)) = (new_used.get(*k), hard.get(*k)) else {
                        return false;
                    };
                    n.nano > h.nano
                })
                .collect();
            if !exceeded.is_empty() {
                let mask = |l: &ResourceList| -> ResourceList {
                    l.iter()
                        .filter(|(k, _)| exceeded.contains(k))
                        .map(|(k, v)| (k.clone(), *v))
                        .collect()
                };
                return Err(forbidden(format!(
                    "exceeded quota: {qname}, requested: {}, used: {}, limited: {}",
                    pretty(&mask(&requested)),
                    pretty(&mask(&used)),
                    pretty(&mask(&hard)),
                )));
            }
            if let Some(status) = q.get_mut("status").and_then(Value::as_object_mut) {
                let mut all = parse_list(status.get("used"));
                for (k, v) in &new_used {
                    if requested.contains_key(k) {
                        all.insert(k.clone(), *v);
                    }
                }
                status.insert("used".into(), render_list(&all));
            }
            writes.push((key, rev, q, qname));
        }
        if dry_run {
            return Ok(());
        }
        let mut conflict = false;
        for (key, rev, q, qname) in writes {
            let bytes = serde_json::to_vec(&q)
                .map_err(|e| ApiError::internal(format!("encoding quota: {e}")))?;
            match store.update(&key, rev, bytes).await {
                Ok(_) => {
                    charged.insert(qname);
                }
                Err(StoreError::Conflict { .. }) | Err(StoreError::NotFound) => {
                    conflict = true;
                    break;
                }
                Err(e) => return Err(e.into()),
            }
        }
        if !conflict {
            return Ok(());
        }
    }
    Err(ApiError::new(
        409,
        "Conflict",
        "too many concurrent quota updates; please retry",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(containers: Value) -> Value {
        json!({"metadata": {"name": "p"}, "spec": {"containers": containers}})
    }

    #[test]
    fn pod_usage_sums_containers_and_takes_the_largest_init() {
        let mut p = pod(json!([
            {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "200m"}}},
            {"name": "b", "resources": {"requests": {"cpu": "300m", "memory": "64Mi"}}}
        ]));
        p["spec"]["initContainers"] =
            json!([{"name": "i", "resources": {"requests": {"cpu": "1"}}}]);
        let u = usage("", "pods", &p);
        assert_eq!(u["pods"].canonical(), "1");
        assert_eq!(u["count/pods"].canonical(), "1");
        assert_eq!(u["requests.cpu"].canonical(), "1");
        assert_eq!(u["cpu"].canonical(), "1");
        assert_eq!(u["requests.memory"].canonical(), "128Mi");
        assert_eq!(u["limits.cpu"].canonical(), "200m");
        p["status"] = json!({"phase": "Succeeded"});
        let u = usage("", "pods", &p);
        assert!(!u.contains_key("pods"));
        assert!(u.contains_key("count/pods"));
    }

    #[test]
    fn service_usage_counts_node_ports() {
        let s = json!({"spec": {"type": "LoadBalancer", "ports": [{"port": 1}, {"port": 2}]}});
        let u = usage("", "services", &s);
        assert_eq!(u["services.nodeports"].canonical(), "2");
        assert_eq!(u["services.loadbalancers"].canonical(), "1");
        assert_eq!(u["services"].canonical(), "1");
    }

    #[test]
    fn scopes_select_pods() {
        let q = json!({"spec": {"scopes": ["BestEffort"]}});
        let be = pod(json!([{"name": "a"}]));
        let not_be = pod(json!([{"name": "a", "resources": {"requests": {"cpu": "1"}}}]));
        assert!(matches_scopes(&q, "", "pods", &be));
        assert!(!matches_scopes(&q, "", "pods", &not_be));
        assert!(!matches_scopes(&q, "", "configmaps", &json!({})));
        let q = json!({"spec": {"scopeSelector": {"matchExpressions": [
            {"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}]}}});
        let mut hi = be.clone();
        hi["spec"]["priorityClassName"] = json!("high");
        assert!(matches_scopes(&q, "", "pods", &hi));
        assert!(!matches_scopes(&q, "", "pods", &be));
    }

    #[test]
    fn constraints_name_missing_resources_per_container() {
        let hard: ResourceList = [
            ("requests.cpu".to_string(), one()),
            ("limits.memory".to_string(), one()),
        ]
        .into_iter()
        .collect();
        let p = pod(json!([
            {"name": "b", "resources": {"requests": {"cpu": "1"}}},
            {"name": "a"}
        ]));
        assert_eq!(
            pod_constraints(&p, &hard).as_deref(),
            Some("must specify limits.memory for: a,b; requests.cpu for: a")
        );
    }

    #[test]
    fn controller_usage_counts_matching_objects() {
        let q = json!({"spec": {"hard": {"pods": "5", "requests.cpu": "2", "configmaps": "3"}}});
        let pods = vec![
            pod(json!([{"name": "a", "resources": {"requests": {"cpu": "500m"}}}])),
            pod(json!([{"name": "a", "resources": {"requests": {"cpu": "250m"}}}])),
        ];
        let mut used = Map::new();
        compute_used(&q, "", "pods", &pods, &mut used);
        compute_used(&q, "", "configmaps", &[], &mut used);
        assert_eq!(used["pods"], json!("2"));
        assert_eq!(used["requests.cpu"], json!("750m"));
        assert_eq!(used["configmaps"], json!("0"));
        assert_eq!(
            counted_resource("count/deployments.apps"),
            Some(("apps".into(), "deployments".into()))
        );
        assert_eq!(
            counted_resource("requests.cpu"),
            Some((String::new(), "pods".into()))
        );
        assert_eq!(
            counted_resource("requests.storage"),
            Some((String::new(), "persistentvolumeclaims".into()))
        );
    }
}
