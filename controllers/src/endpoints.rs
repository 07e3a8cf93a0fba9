//! Endpoints and EndpointSlices of Services with a selector, from the selected pods' IPs and
//! readiness (upstream's endpoints-controller and endpointslice-controller), and
//! EndpointSlices mirroring the user-made Endpoints of selector-less Services
//! (endpointslice-mirroring-controller).

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service, ServicePort};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::ResourceExt;
use serde_json::{json, Value};

use crate::events::object_reference;
use crate::scaffold::{run_controller, Context, Result};
use crate::util;

const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
const MANAGED_BY: &str = "endpointslice-controller.k8s.io";

/// An Endpoints subset: ports, ready and not-ready addresses.
type Subset = (Vec<Value>, Vec<Value>, Vec<Value>);

fn selector(svc: &Service) -> Option<&BTreeMap<String, String>> {
    svc.spec
        .as_ref()?
        .selector
        .as_ref()
        .filter(|s| !s.is_empty())
}

/// Wakes the services in the pod's namespace that select it.
fn pod_to_services(services: Store<Service>) -> impl Fn(Arc<Pod>) -> Vec<ObjectRef<Service>> {
    move |pod: Arc<Pod>| {
        let ns = pod.namespace().unwrap_or_default();
        services
            .state_filter(|s| {
                s.metadata.namespace.as_deref() == Some(ns.as_str())
                    && selector(s)
                        .is_some_and(|sel| sel.iter().all(|(k, v)| pod.labels().get(k) == Some(v)))
            })
            .iter()
            .map(|s| ObjectRef::from_obj(s.as_ref()))
            .collect()
    }
}

/// A pod's endpoint: (ip, ready, serving, terminating, resolved ports).
struct PodEndpoint {
    pod: Arc<Pod>,
    ip: String,
    ready: bool,
    terminating: bool,
    ports: Vec<Value>,
}

fn resolve_port(pod: &Pod, port: &ServicePort) -> Option<i32> {
    match port.target_port.as_ref() {
        None => Some(port.port),
        Some(IntOrString::Int(i)) => Some(*i),
        Some(IntOrString::String(name)) => pod
            .spec
            .as_ref()?
            .containers
            .iter()
            .flat_map(|c| c.ports.iter().flatten())
            .find(|p| {
                p.name.as_deref() == Some(name.as_str())
                    && p.protocol.as_deref().unwrap_or("TCP")
                        == port.protocol.as_deref().unwrap_or("TCP")
            })
            .map(|p| p.container_port),
    }
}

fn endpoints_of(svc: &Service, ctx: &Context) -> Vec<PodEndpoint> {
    let Some(sel) = selector(svc) else {
        return vec![];
    };
    let ns = svc.namespace().unwrap_or_default();
    let publish_not_ready = svc
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false);
    let ports = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default();
    let mut out: Vec<PodEndpoint> = ctx
        .informers
        .get::<Pod>()
        .store()
        .state_filter(|p| {
            p.metadata.namespace.as_deref() == Some(ns.as_str())
                && sel.iter().all(|(k, v)| p.labels().get(k) == Some(v))
        })
        .into_iter()
        .filter(|p| {
            !matches!(
                p.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            )
        })
        .filter_map(|p| {
            let ip = p
                .status
                .as_ref()?
                .pod_ip
                .clone()
                .filter(|ip| !ip.is_empty())?;
            let ports = ports
                .iter()
                .filter_map(|sp| {
                    resolve_port(&p, sp).map(|port| {
                        json!({"name": sp.name.clone().unwrap_or_default(), "port": port,
                    "protocol": sp.protocol.clone().unwrap_or_else(|| "TCP".into())})
                    })
                })
                .collect();
            Some(PodEndpoint {
                ready: util::pod_is_ready(&p) || publish_not_ready,
                terminating: p.metadata.deletion_timestamp.is_some(),
                ip,
                ports,
                pod: p,
            })
        })
        .collect();
    out.sort_by(|a, b| a.ip.cmp(&b.ip));
    out
}

fn target_ref(p: &Pod) -> Value {
    let r = object_reference(p);
    json!({"kind": "Pod", "name": r.name, "namespace": r.namespace, "uid": r.uid})
}

pub fn controller(ctx: &Arc<Context>) -> BoxFuture<'static, ()> {
    let services = ctx.informers.get::<Service>();
    let pods = ctx.informers.get::<Pod>();
    let endpoints = ctx.informers.get::<Endpoints>();
    let c = Controller::for_shared_stream(services.subscribe(), services.store())
        .watches_shared_stream(pods.subscribe(), pod_to_services(services.store()))
        .watches_shared_stream(endpoints.subscribe(), |e: Arc<Endpoints>| {
            Some(
                ObjectRef::<Service>::new(&e.name_any()).within(&e.namespace().unwrap_or_default()),
            )
        });
    run_controller("endpoints-controller", c, ctx.clone(), reconcile_endpoints)
}

async fn reconcile_endpoints(svc: Arc<Service>, ctx: Arc<Context>) -> Result<Action> {
    if selector(&svc).is_none() || svc.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ns = svc.namespace().unwrap_or_default();
    let name = svc.name_any();
    // One subset per distinct port list, as upstream's repacking.
    let mut subsets: BTreeMap<String, Subset> = BTreeMap::new();
    for e in endpoints_of(&svc, &ctx)
        .into_iter()
        .filter(|e| !e.terminating)
    {
        let key = serde_json::to_string(&e.ports)?;
        let entry = subsets
            .entry(key)
            .or_insert_with(|| (e.ports.clone(), vec![], vec![]));
        let addr = json!({"ip": e.ip, "nodeName": e.pod.spec.as_ref().and_then(|s| s.node_name.clone()), "targetRef": target_ref(&e.pod)});
        if e.ready {
            entry.1.push(addr)
        } else {
            entry.2.push(addr)
        }
    }
    let subsets: Vec<Value> = subsets
        .into_values()
        .map(|(ports, ready, not_ready)| {
            let mut s = json!({"ports": ports});
            if !ready.is_empty() {
                s["addresses"] = json!(ready);
            }
            if !not_ready.is_empty() {
                s["notReadyAddresses"] = json!(not_ready);
            }
            s
        })
        .collect();
    let mut labels = svc.labels().clone();
    labels.insert(
        "endpointslice.kubernetes.io/skip-mirror".into(),
        "true".into(),
    );
    let api: Api<Endpoints> = Api::namespaced(ctx.client.clone(), &ns);
    let current = ctx
        .informers
        .get::<Endpoints>()
        .store()
        .get(&ObjectRef::new(&name).within(&ns));
    let wanted: Endpoints = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "subsets": subsets,
    }))?;
    let result = match current {
        None => api
            .create(&PostParams::default(), &wanted)
            .await
            .map(|_| ()),
        Some(cur)
            if serde_json::to_value(&cur.subsets)? != serde_json::to_value(&wanted.subsets)?
                || cur.labels() != wanted.labels() =>
        {
            let mut next = (*cur).clone();
            next.subsets = wanted.subsets;
            next.metadata.labels = wanted.metadata.labels;
            api.replace(&name, &PostParams::default(), &next)
                .await
                .map(|_| ())
        }
        Some(_) => Ok(()),
    };
    match result {
        Ok(()) => Ok(Action::await_change()),
        Err(kube::Error::Api(s)) if matches!(s.code, 403 | 404) => Ok(Action::await_change()),
        Err(e) => Err(e.into()),
    }
}

pub fn slice_controller(ctx: &Arc<Context>) -> BoxFuture<'static, ()> {
    let services = ctx.informers.get::<Service>();
    let pods = ctx.informers.get::<Pod>();
    let slices = ctx.informers.get::<EndpointSlice>();
    let c = Controller::for_shared_stream(services.subscribe(), services.store())
        .watches_shared_stream(pods.subscribe(), pod_to_services(services.store()))
        .owns_shared_stream(slices.subscribe());
    run_controller("endpointslice-controller", c, ctx.clone(), reconcile_slices)
}

async fn reconcile_slices(svc: Arc<Service>, ctx: Arc<Context>) -> Result<Action> {
    if selector(&svc).is_none() || svc.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ns = svc.namespace().unwrap_or_default();
    let name = svc.name_any();
    let api: Api<EndpointSlice> = Api::namespaced(ctx.client.clone(), &ns);
    // One slice per distinct port list (IPv4; at most 100 endpoints each, as upstream).
    let mut groups: BTreeMap<String, (Vec<Value>, Vec<Value>)> = BTreeMap::new();
    for e in endpoints_of(&svc, &ctx) {
        let key = serde_json::to_string(&e.ports)?;
        let entry = groups
            .entry(key)
            .or_insert_with(|| (e.ports.clone(), vec![]));
        let serving = util::pod_is_ready(&e.pod) || e.ready;
        entry.1.push(json!({
            "addresses": [e.ip],
            "conditions": {"ready": serving && !e.terminating, "serving": serving, "terminating": e.terminating},
            "targetRef": target_ref(&e.pod),
            "nodeName": e.pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        }));
    }
    let mut wanted: Vec<(Vec<Value>, Vec<Value>)> = Vec::new();
    for (ports, eps) in groups.into_values() {
        for chunk in eps.chunks(100) {
            wanted.push((ports.clone(), chunk.to_vec()));
        }
    }
    if wanted.is_empty() {
        // A placeholder slice, as upstream keeps for a service without endpoints.
        wanted.push((vec![], vec![]));
    }
    let mut existing: Vec<Arc<EndpointSlice>> = ctx
        .informers
        .get::<EndpointSlice>()
        .store()
        .state_filter(|s| {
            s.metadata.namespace.as_deref() == Some(ns.as_str())
                && s.labels().get(SERVICE_NAME_LABEL) == Some(&name)
                && s.labels().get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY)
        });
    existing.sort_by_key(|s| s.name_any());
    let mut labels = svc.labels().clone();
    labels.insert(SERVICE_NAME_LABEL.into(), name.clone());
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    let owner = util::controller_owner_ref(svc.as_ref());
    for (i, (ports, endpoints)) in wanted.iter().enumerate() {
        let body = json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"generateName": format!("{name}-"), "namespace": ns, "labels": labels, "ownerReferences": [owner]},
            "addressType": "IPv4", "endpoints": endpoints, "ports": ports,
        });
        let mut slice: EndpointSlice = serde_json::from_value(body)?;
        match existing.get(i) {
            Some(cur) => {
                let same = serde_json::to_value(&cur.endpoints)?
                    == serde_json::to_value(&slice.endpoints)?
                    && serde_json::to_value(&cur.ports)? == serde_json::to_value(&slice.ports)?
                    && cur.labels() == slice.labels();
                if !same {
                    slice.metadata = cur.metadata.clone();
                    slice.metadata.labels = Some(labels.clone());
                    util::absent_ok(
                        api.replace(&cur.name_any(), &PostParams::default(), &slice)
                            .await,
                    )?;
                }
            }
            None => match api.create(&PostParams::default(), &slice).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if matches!(s.code, 403 | 404) => {}
                Err(e) => return Err(e.into()),
            },
        }
    }
    for extra in existing.iter().skip(wanted.len()) {
        util::absent_ok(
            api.delete(&extra.name_any(), &DeleteParams::default())
                .await,
        )?;
    }
    Ok(Action::await_change())
}

const MIRROR_MANAGED_BY: &str = "endpointslicemirroring-controller.k8s.io";
const SKIP_MIRROR_LABEL: &str = "endpointslice.kubernetes.io/skip-mirror";
const LEADER_ANNOTATION: &str = "control-plane.alpha.kubernetes.io/leader";
/// Addresses mirrored per Endpoints subset, as upstream.
const MAX_MIRRORED_PER_SUBSET: usize = 1000;

/// Whether the Endpoints object is one the mirroring controller copies into EndpointSlices:
/// its Service exists without a selector, and it is neither marked `skip-mirror` nor a
/// leader-election lock.
fn mirrored(ep: &Endpoints, svc: Option<&Service>) -> bool {
    svc.is_some_and(|s| selector(s).is_none() && s.metadata.deletion_timestamp.is_none())
        && ep.metadata.deletion_timestamp.is_none()
        && ep.labels().get(SKIP_MIRROR_LABEL).map(String::as_str) != Some("true")
        && !ep.annotations().contains_key(LEADER_ANNOTATION)
}

/// The slices mirroring `ep`: per subset and address family, at most 100 endpoints each:
/// (address type, ports, endpoints).
fn mirror_slices(ep: &Endpoints) -> Result<Vec<(String, Value, Vec<Value>)>> {
    let mut out = Vec::new();
    for subset in ep.subsets.iter().flatten() {
        let ports: Vec<Value> = subset
            .ports
            .iter()
            .flatten()
            .map(|p| {
                let mut v = json!({"port": p.port, "protocol": p.protocol.clone().unwrap_or_else(|| "TCP".into())});
                if let Some(n) = &p.name {
                    v["name"] = json!(n);
                }
                if let Some(a) = &p.app_protocol {
                    v["appProtocol"] = json!(a);
                }
                v
            })
            .collect();
        let mut by_family: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        let ready = subset.addresses.iter().flatten().map(|a| (a, true));
        let not_ready = subset
            .not_ready_addresses
            .iter()
            .flatten()
            .map(|a| (a, false));
        for (addr, is_ready) in ready.chain(not_ready).take(MAX_MIRRORED_PER_SUBSET) {
            let family = match addr.ip.parse::<std::net::IpAddr>() {
                Ok(std::net::IpAddr::V4(_)) => "IPv4",
                Ok(std::net::IpAddr::V6(_)) => "IPv6",
                Err(_) => continue,
            };
            let mut e = json!({"addresses": [addr.ip], "conditions": {"ready": is_ready}});
            if let Some(h) = addr.hostname.as_ref().filter(|h| !h.is_empty()) {
                e["hostname"] = json!(h);
            }
            if let Some(n) = &addr.node_name {
                e["nodeName"] = json!(n);
            }
            if let Some(t) = &addr.target_ref {
                e["targetRef"] = serde_json::to_value(t)?;
            }
            by_family.entry(family).or_default().push(e);
        }
        for (family, endpoints) in by_family {
            for chunk in endpoints.chunks(100) {
                out.push((family.to_string(), json!(ports), chunk.to_vec()));
            }
        }
    }
    Ok(out)
}

pub fn mirroring_controller(ctx: &Arc<Context>) -> BoxFuture<'static, ()> {
    let endpoints = ctx.informers.get::<Endpoints>();
    let services = ctx.informers.get::<Service>();
    let slices = ctx.informers.get::<EndpointSlice>();
    let c = Controller::for_shared_stream(endpoints.subscribe(), endpoints.store())
        .watches_shared_stream(services.subscribe(), |s: Arc<Service>| {
            Some(
                ObjectRef::<Endpoints>::new(&s.name_any())
                    .within(&s.namespace().unwrap_or_default()),
            )
        })
        .owns_shared_stream(slices.subscribe());
    run_controller(
        "endpointslice-mirroring-controller",
        c,
        ctx.clone(),
        reconcile_mirroring,
    )
}

async fn reconcile_mirroring(ep: Arc<Endpoints>, ctx: Arc<Context>) -> Result<Action> {
    let ns = ep.namespace().unwrap_or_default();
    let name = ep.name_any();
    let svc = ctx
        .informers
        .get::<Service>()
        .store()
        .get(&ObjectRef::new(&name).within(&ns));
    // Deleted Endpoints arrive as their last state; the cache tells whether they still exist.
    let exists = ctx
        .informers
        .get::<Endpoints>()
        .store()
        .get(&ObjectRef::new(&name).within(&ns))
        .is_some();
    let wanted = if exists && mirrored(&ep, svc.as_deref()) {
        mirror_slices(&ep)?
    } else {
        vec![]
    };
    let api: Api<EndpointSlice> = Api::namespaced(ctx.client.clone(), &ns);
    let mut existing: Vec<Arc<EndpointSlice>> = ctx
        .informers
        .get::<EndpointSlice>()
        .store()
        .state_filter(|s| {
            s.metadata.namespace.as_deref() == Some(ns.as_str())
                && s.labels().get(SERVICE_NAME_LABEL) == Some(&name)
                && s.labels().get(MANAGED_BY_LABEL).map(String::as_str) == Some(MIRROR_MANAGED_BY)
        });
    existing.sort_by_key(|s| s.name_any());
    let mut labels = ep.labels().clone();
    labels.insert(SERVICE_NAME_LABEL.into(), name.clone());
    labels.insert(MANAGED_BY_LABEL.into(), MIRROR_MANAGED_BY.into());
    let mut annotations = ep.annotations().clone();
    annotations.remove("endpoints.kubernetes.io/last-change-trigger-time");
    annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    let owner = util::controller_owner_ref(ep.as_ref());
    for (i, (family, ports, endpoints)) in wanted.iter().enumerate() {
        let body = json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"generateName": format!("{name}-"), "namespace": ns, "labels": labels,
                "annotations": annotations, "ownerReferences": [owner]},
            "addressType": family, "endpoints": endpoints, "ports": ports,
        });
        let mut slice: EndpointSlice = serde_json::from_value(body)?;
        match existing.get(i) {
            Some(cur) if cur.address_type != slice.address_type => {
                // The address type is immutable: replace the slice.
                util::absent_ok(api.delete(&cur.name_any(), &DeleteParams::default()).await)?;
                create_ignoring_terminating(&api, &slice).await?;
            }
            Some(cur) => {
                let same = serde_json::to_value(&cur.endpoints)?
                    == serde_json::to_value(&slice.endpoints)?
                    && serde_json::to_value(&cur.ports)? == serde_json::to_value(&slice.ports)?
                    && cur.labels() == slice.labels()
                    && cur.annotations() == slice.annotations();
                if !same {
                    let (labels, annotations) = (
                        slice.metadata.labels.take(),
                        slice.metadata.annotations.take(),
                    );
                    slice.metadata = cur.metadata.clone();
                    slice.metadata.labels = labels;
                    slice.metadata.annotations = annotations;
                    util::absent_ok(
                        api.replace(&cur.name_any(), &PostParams::default(), &slice)
                            .await,
                    )?;
                }
            }
            None => create_ignoring_terminating(&api, &slice).await?,
        }
    }
    for extra in existing.iter().skip(wanted.len()) {
        util::absent_ok(
            api.delete(&extra.name_any(), &DeleteParams::default())
                .await,
        )?;
    }
    Ok(Action::await_change())
}

async fn create_ignoring_terminating(
    api: &Api<EndpointSlice>,
    slice: &EndpointSlice,
) -> Result<()> {
    match api.create(&PostParams::default(), slice).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if matches!(s.code, 403 | 404) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
