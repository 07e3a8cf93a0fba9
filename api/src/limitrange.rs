//! LimitRanger admission: the LimitRanges of a namespace default the requests and limits of
//! new pods' containers (`default`, `defaultRequest`) and bound pods, containers and
//! PersistentVolumeClaims (`min`, `max`, `maxLimitRequestRatio`), with upstream's messages.

use meso_store::Store;
use serde_json::{json, Map, Value};

use crate::errors::ApiResult;
use crate::validation::{quantity_of, Quantity};

const ANNOTATION: &str = "kubernetes.io/limit-ranger";

/// The LimitRanges of `ns`, sorted by name.
fn limit_ranges(store: &Store, ns: &str) -> ApiResult<Vec<Value>> {
    let list = store.list_cached(&format!("/registry/core/limitranges/{ns}/"))?;
    let mut out: Vec<Value> = list
        .iter()
        .filter_map(|kv| serde_json::from_slice(&kv.value).ok())
        .collect();
    out.sort_by(|a, b| crate::meta::meta_str(a, "name").cmp(&crate::meta::meta_str(b, "name")));
    Ok(out)
}

/// The items of the given type across the ranges.
fn items<'a>(ranges: &'a [Value], kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    ranges
        .iter()
        .filter_map(|r| r.get("spec")?.get("limits")?.as_array())
        .flatten()
        .filter(move |i| i.get("type").and_then(Value::as_str) == Some(kind))
}

fn entries(item: &Value, field: &str) -> Vec<(String, Quantity)> {
    let mut v: Vec<(String, Quantity)> = item
        .get(field)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| quantity_of(v).map(|q| (k.clone(), q)))
                .collect()
        })
        .unwrap_or_default();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// `Quantity.MilliValue()` (rounded up) as upstream compares.
fn milli(q: &Quantity) -> i128 {
    let d: i128 = 1_000_000;
    if q.nano >= 0 {
        (q.nano + d - 1) / d
    } else {
        q.nano / d
    }
}

type List = Map<String, Value>;

fn get(l: &List, name: &str) -> Option<Quantity> {
    l.get(name).and_then(quantity_of)
}

fn min_constraint(
    kind: &str,
    res: &str,
    enforced: &Quantity,
    req: &List,
    lim: &List,
) -> Option<String> {
    let e = enforced.canonical();
    let Some(r) = get(req, res) else {
        return Some(format!(
            "minimum {res} usage per {kind} is {e}.  No request is specified"
        ));
    };
    if milli(&r) < milli(enforced) {
        return Some(format!(
            "minimum {res} usage per {kind} is {e}, but request is {}",
            r.canonical()
        ));
    }
    match get(lim, res) {
        Some(l) if milli(&l) < milli(enforced) => Some(format!(
            "minimum {res} usage per {kind} is {e}, but limit is {}",
            l.canonical()
        )),
        _ => None,
    }
}

fn max_constraint(
    kind: &str,
    res: &str,
    enforced: &Quantity,
    req: &List,
    lim: &List,
) -> Option<String> {
    let e = enforced.canonical();
    let Some(l) = get(lim, res) else {
        return Some(format!(
            "maximum {res} usage per {kind} is {e}.  No limit is specified"
        ));
    };
    if milli(&l) > milli(enforced) {
        return Some(format!(
            "maximum {res} usage per {kind} is {e}, but limit is {}",
            l.canonical()
        ));
    }
    match get(req, res) {
        Some(r) if milli(&r) > milli(enforced) => Some(format!(
            "maximum {res} usage per {kind} is {e}, but request is {}",
            r.canonical()
        )),
        _ => None,
    }
}

fn max_request_constraint(
    kind: &str,
    res: &str,
    enforced: &Quantity,
    req: &List,
) -> Option<String> {
    let e = enforced.canonical();
    let Some(r) = get(req, res) else {
        return Some(format!(
            "maximum {res} usage per {kind} is {e}.  No request is specified"
        ));
    };
    (milli(&r) > milli(enforced)).then(|| {
        format!(
            "maximum {res} usage per {kind} is {e}, but request is {}",
            r.canonical()
        )
    })
}

fn ratio_constraint(
    kind: &str,
    res: &str,
    enforced: &Quantity,
    req: &List,
    lim: &List,
) -> Option<String> {
    let e = enforced.canonical();
    let r = get(req, res).map(|q| milli(&q)).unwrap_or(0);
    if r == 0 {
        return Some(format!("{res} max limit to request ratio per {kind} is {e}, but no request is specified or request is 0"));
    }
    let l = get(lim, res).map(|q| milli(&q)).unwrap_or(0);
    if l == 0 {
        return Some(format!("{res} max limit to request ratio per {kind} is {e}, but no limit is specified or limit is 0"));
    }
    let observed = l as f64 / r as f64;
    (observed * 1000.0 > milli(enforced) as f64).then(|| {
        format!("{res} max limit to request ratio per {kind} is {e}, but provided ratio is {observed:.6}")
    })
}

/// min, max and maxLimitRequestRatio of one item against requests/limits.
fn check_item(kind: &str, item: &Value, req: &List, lim: &List, errs: &mut Vec<String>) {
    for (res, q) in entries(item, "min") {
        errs.extend(min_constraint(kind, &res, &q, req, lim));
    }
    for (res, q) in entries(item, "max") {
        errs.extend(max_constraint(kind, &res, &q, req, lim));
    }
    for (res, q) in entries(item, "maxLimitRequestRatio") {
        errs.extend(ratio_constraint(kind, &res, &q, req, lim));
    }
}

fn list_of(res: Option<&Value>, which: &str) -> List {
    res.and_then(|r| r.get(which))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// Upstream's aggregate of errors: one message, or `[a, b]`.
fn aggregate(errs: Vec<String>) -> Option<String> {
    match errs.len() {
        0 => None,
        1 => errs.into_iter().next(),
        _ => Some(format!("[{}]", errs.join(", "))),
    }
}

/// Defaults the containers' requests and limits from each range in turn (within a range the
/// last Container item wins, as upstream), recording what the last range that set anything
/// set in the `kubernetes.io/limit-ranger` annotation.
fn default_pod(pod: &mut Value, ranges: &[Value]) {
    for range in ranges {
        let mut limits_default = Map::new();
        let mut requests_default = Map::new();
        for item in items(std::slice::from_ref(range), "Container") {
            for (field, into) in [
                ("defaultRequest", &mut requests_default),
                ("default", &mut limits_default),
            ] {
                for (k, v) in item
                    .get(field)
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                {
                    into.insert(k.clone(), v.clone());
                }
            }
        }
        if limits_default.is_empty() && requests_default.is_empty() {
            continue;
        }
        let mut notes: Vec<String> = Vec::new();
        for (field, what) in [
            ("containers", "container"),
            ("initContainers", "init container"),
        ] {
            let Some(list) = pod
                .get_mut("spec")
                .and_then(|s| s.get_mut(field))
                .and_then(Value::as_array_mut)
            else {
                continue;
            };
            for c in list {
                let name = c
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let Some(co) = c.as_object_mut() else {
                    continue;
                };
                let res = co.entry("resources").or_insert_with(|| json!({}));
                let Some(res) = res.as_object_mut() else {
                    continue;
                };
                let limits = fill(res, "limits", &limits_default);
                let requests = fill(res, "requests", &requests_default);
                if !requests.is_empty() {
                    notes.push(format!("{} request for {what} {name}", requests.join(", ")));
                }
                if !limits.is_empty() {
                    notes.push(format!("{} limit for {what} {name}", limits.join(", ")));
                }
            }
        }
        if notes.is_empty() {
            continue;
        }
        if let Some(m) = crate::meta::metadata_mut(pod) {
            let ann = m.entry("annotations").or_insert_with(|| json!({}));
            if let Some(a) = ann.as_object_mut() {
                a.insert(
                    ANNOTATION.into(),
                    json!(format!("LimitRanger plugin set: {}", notes.join("; "))),
                );
            }
        }
    }
}

/// Sets the `defaults` missing from `res[which]`; returns their names, sorted.
fn fill(res: &mut Map<String, Value>, which: &str, defaults: &Map<String, Value>) -> Vec<String> {
    let mut names = Vec::new();
    if defaults.is_empty() {
        return names;
    }
    let l = res.entry(which).or_insert_with(|| json!({}));
    if let Some(l) = l.as_object_mut() {
        for (k, v) in defaults {
            if !l.contains_key(k) {
                l.insert(k.clone(), v.clone());
                names.push(k.clone());
            }
        }
    }
    names.sort();
    names
}

/// Upstream's `podRequests`/`podLimits` for the Pod type: containers summed, the largest init
/// container when bigger.
fn pod_totals(pod: &Value, which: &str) -> List {
    let mut out: std::collections::BTreeMap<String, Quantity> = Default::default();
    let spec = pod.get("spec");
    for c in spec
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for (k, q) in list_of(c.get("resources"), which) {
            let Some(q) = quantity_of(&q) else { continue };
            let sum = out.get(&k).map_or(q, |cur| Quantity {
                nano: cur.nano.saturating_add(q.nano),
                format: cur.format,
            });
            out.insert(k, sum);
        }
    }
    for c in spec
        .and_then(|s| s.get("initContainers"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for (k, q) in list_of(c.get("resources"), which) {
            let Some(q) = quantity_of(&q) else { continue };
            if out.get(&k).is_none_or(|cur| q.nano > cur.nano) {
                out.insert(k, q);
            }
        }
    }
    out.into_iter()
        .map(|(k, q)| (k, json!(q.canonical())))
        .collect()
}

/// Defaults then checks a new pod; `Err(message)` is the Forbidden reason.
pub fn admit_pod(store: &Store, ns: &str, pod: &mut Value) -> ApiResult<Result<(), String>> {
    let ranges = limit_ranges(store, ns)?;
    if ranges.is_empty() {
        return Ok(Ok(()));
    }
    default_pod(pod, &ranges);
    let mut errs = Vec::new();
    for item in items(&ranges, "Container") {
        for field in ["containers", "initContainers"] {
            for c in pod
                .get("spec")
                .and_then(|s| s.get(field))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let res = c.get("resources");
                check_item(
                    "Container",
                    item,
                    &list_of(res, "requests"),
                    &list_of(res, "limits"),
                    &mut errs,
                );
            }
        }
    }
    for item in items(&ranges, "Pod") {
        let (req, lim) = (pod_totals(pod, "requests"), pod_totals(pod, "limits"));
        check_item("Pod", item, &req, &lim, &mut errs);
    }
    Ok(aggregate(errs).map_or(Ok(()), Err))
}

/// Checks a new PersistentVolumeClaim's storage request against the PVC items.
pub fn admit_pvc(store: &Store, ns: &str, pvc: &Value) -> ApiResult<Result<(), String>> {
    let ranges = limit_ranges(store, ns)?;
    let req = list_of(pvc.get("spec").and_then(|s| s.get("resources")), "requests");
    let mut errs = Vec::new();
    for item in items(&ranges, "PersistentVolumeClaim") {
        for (res, q) in entries(item, "min") {
            errs.extend(min_constraint(
                "PersistentVolumeClaim",
                &res,
                &q,
                &req,
                &List::new(),
            ));
        }
        for (res, q) in entries(item, "max") {
            errs.extend(max_request_constraint(
                "PersistentVolumeClaim",
                &res,
                &q,
                &req,
            ));
        }
    }
    Ok(aggregate(errs).map_or(Ok(()), Err))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(limits: Value) -> Vec<Value> {
        vec![json!({"metadata": {"name": "l"}, "spec": {"limits": limits}})]
    }

    #[test]
    fn defaults_fill_missing_requests_and_limits() {
        let ranges = range(json!([{"type": "Container",
            "default": {"cpu": "500m", "memory": "128Mi"},
            "defaultRequest": {"cpu": "100m", "memory": "64Mi"}}]));
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "a"},
            {"name": "b", "resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "1"}}}
        ]}});
        default_pod(&mut pod, &ranges);
        let a = &pod["spec"]["containers"][0]["resources"];
        assert_eq!(a["limits"]["cpu"], json!("500m"));
        assert_eq!(a["requests"]["memory"], json!("64Mi"));
        let b = &pod["spec"]["containers"][1]["resources"];
        assert_eq!(b["limits"]["cpu"], json!("1"));
        assert_eq!(b["limits"]["memory"], json!("128Mi"));
        assert_eq!(
            pod["metadata"]["annotations"][ANNOTATION],
            json!("LimitRanger plugin set: cpu, memory request for container a; cpu, memory limit for container a; memory request for container b; memory limit for container b")
        );
    }

    #[test]
    fn constraints_report_upstream_messages() {
        let item = json!({"type": "Container", "max": {"cpu": "500m"}, "min": {"memory": "10Mi"},
            "maxLimitRequestRatio": {"cpu": "2"}});
        let req: List = json!({"cpu": "250m", "memory": "5Mi"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let lim: List = json!({"cpu": "1"}).as_object().cloned().unwrap_or_default();
        let mut errs = vec![];
        check_item("Container", &item, &req, &lim, &mut errs);
        assert_eq!(
            aggregate(errs).as_deref(),
            Some("[minimum memory usage per Container is 10Mi, but request is 5Mi, maximum cpu usage per Container is 500m, but limit is 1, cpu max limit to request ratio per Container is 2, but provided ratio is 4.000000]")
        );
    }
}
