//! The garbage collector: a graph of every object's owner references, kept from metadata
//! watches of every deletable resource, and a worker that deletes dependents whose owners are
//! gone (background), deletes dependents before their owner (`foregroundDeletion`) and
//! orphans dependents (`orphan`), as upstream's `pkg/controller/garbagecollector`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{
    Api, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions, PropagationPolicy,
};
use kube::core::PartialObjectMeta;
use kube::discovery::{verbs, ApiResource, Discovery, Scope};
use kube::runtime::{watcher, WatchStreamExt};
use serde_json::json;
use tokio::sync::mpsc;

use crate::scaffold::{Context, Error, Result};

const ORPHAN: &str = "orphan";
const FOREGROUND: &str = "foregroundDeletion";

#[derive(Clone)]
struct Resource {
    ar: ApiResource,
    namespaced: bool,
}

#[derive(Clone)]
struct Node {
    resource: usize,
    namespace: Option<String>,
    name: String,
    owners: Vec<OwnerReference>,
    deleting: bool,
    finalizers: Vec<String>,
    resource_version: Option<String>,
}

impl Node {
    fn has_finalizer(&self, f: &str) -> bool {
        self.finalizers.iter().any(|x| x == f)
    }
}

enum Input {
    Event(usize, Box<watcher::Event<PartialObjectMeta<DynamicObject>>>),
    Retry(String),
}

#[derive(Default)]
struct Graph {
    nodes: HashMap<String, Node>,
    dependents: HashMap<String, HashSet<String>>,
}

impl Graph {
    fn upsert(&mut self, uid: String, node: Node) -> Vec<String> {
        let mut touched = vec![uid.clone()];
        if let Some(old) = self.nodes.get(&uid) {
            for o in &old.owners {
                if let Some(d) = self.dependents.get_mut(&o.uid) {
                    d.remove(&uid);
                }
            }
        }
        for o in &node.owners {
            self.dependents
                .entry(o.uid.clone())
                .or_default()
                .insert(uid.clone());
            touched.push(o.uid.clone());
        }
        if node.deleting {
            touched.extend(self.dependents.get(&uid).into_iter().flatten().cloned());
        }
        self.nodes.insert(uid, node);
        touched
    }

    fn remove(&mut self, uid: &str) -> Vec<String> {
        let mut touched: Vec<String> = self
            .dependents
            .get(uid)
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        if let Some(old) = self.nodes.remove(uid) {
            for o in &old.owners {
                if let Some(d) = self.dependents.get_mut(&o.uid) {
                    d.remove(uid);
                }
                touched.push(o.uid.clone());
            }
        }
        touched
    }
}

pub fn controller(ctx: &Arc<Context>) -> BoxFuture<'static, ()> {
    let ctx = ctx.clone();
    async move {
        let shutdown = ctx.shutdown.clone();
        tokio::select! {
            r = run(ctx) => if let Err(e) = r { tracing::error!(error = %e, "garbage collector stopped") },
            _ = shutdown.cancelled() => {}
        }
    }
    .boxed()
}

struct Collector {
    ctx: Arc<Context>,
    resources: Vec<Resource>,
    by_kind: HashMap<(String, String), usize>,
    graph: Graph,
}

async fn run(ctx: Arc<Context>) -> Result<()> {
    let discovery = Discovery::new(ctx.client.clone()).run().await?;
    let mut resources = Vec::new();
    for group in discovery.groups() {
        for (ar, caps) in group.recommended_resources() {
            let ok = [verbs::LIST, verbs::WATCH, verbs::DELETE, verbs::PATCH]
                .iter()
                .all(|v| caps.supports_operation(v));
            if ok && ar.kind != "Event" {
                resources.push(Resource {
                    namespaced: caps.scope == Scope::Namespaced,
                    ar,
                });
            }
        }
    }
    let by_kind = resources
        .iter()
        .enumerate()
        .map(|(i, r)| ((r.ar.api_version.clone(), r.ar.kind.clone()), i))
        .collect();
    let (tx, mut rx) = mpsc::channel::<Input>(1024);
    for (i, r) in resources.iter().enumerate() {
        let api: Api<PartialObjectMeta<DynamicObject>> = Api::all_with(ctx.client.clone(), &r.ar);
        let tx = tx.clone();
        let kind = r.ar.kind.clone();
        let shutdown = ctx.shutdown.clone();
        tokio::spawn(async move {
            let mut events =
                std::pin::pin!(watcher(api, watcher::Config::default()).default_backoff());
            loop {
                let ev =
                    tokio::select! { _ = shutdown.cancelled() => break, ev = events.next() => ev };
                match ev {
                    Some(Ok(ev)) => {
                        if tx.send(Input::Event(i, Box::new(ev))).await.is_err() {
                            break;
                        }
                    }
                    Some(Err(e)) => {
                        tracing::debug!(kind = %kind, error = %e, "gc watch failed, retrying")
                    }
                    None => break,
                }
            }
        });
    }
    tracing::info!(resources = resources.len(), "garbage collector watching");
    let mut gc = Collector {
        ctx: ctx.clone(),
        resources,
        by_kind,
        graph: Graph::default(),
    };
    let mut unsynced: HashSet<usize> = (0..gc.resources.len()).collect();
    let mut queue: VecDeque<String> = VecDeque::new();
    let mut queued: HashSet<String> = HashSet::new();
    let started = tokio::time::Instant::now();
    loop {
        // Act only on a graph built from every list (or after a minute, should one never list).
        let ready = unsynced.is_empty() || started.elapsed() > Duration::from_secs(60);
        let input = if ready && !queue.is_empty() {
            rx.try_recv().ok()
        } else if !queue.is_empty() {
            match tokio::time::timeout(Duration::from_secs(1), rx.recv()).await {
                Ok(None) => return Ok(()),
                Ok(i) => i,
                Err(_) => continue,
            }
        } else {
            match rx.recv().await {
                Some(i) => Some(i),
                None => return Ok(()),
            }
        };
        match input {
            Some(Input::Event(i, ev)) => {
                let touched = gc.apply(i, *ev, &mut unsynced);
                for uid in touched {
                    if queued.insert(uid.clone()) {
                        queue.push_back(uid);
                    }
                }
            }
            Some(Input::Retry(uid)) => {
                if queued.insert(uid.clone()) {
                    queue.push_back(uid);
                }
            }
            None => {
                if let Some(uid) = queue.pop_front() {
                    queued.remove(&uid);
                    if let Err(e) = gc.process(&uid).await {
                        tracing::warn!(uid = %uid, error = %e, "garbage collecting, will retry");
                        let tx = tx.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            let _ = tx.send(Input::Retry(uid)).await;
                        });
                    }
                }
            }
        }
    }
}

impl Collector {
    fn apply(
        &mut self,
        i: usize,
        ev: watcher::Event<PartialObjectMeta<DynamicObject>>,
        unsynced: &mut HashSet<usize>,
    ) -> Vec<String> {
        match ev {
            watcher::Event::Apply(o) | watcher::Event::InitApply(o) => {
                let m = o.metadata;
                let Some(uid) = m.uid else { return vec![] };
                let node = Node {
                    resource: i,
                    namespace: m.namespace,
                    name: m.name.unwrap_or_default(),
                    owners: m.owner_references.unwrap_or_default(),
                    deleting: m.deletion_timestamp.is_some(),
                    finalizers: m.finalizers.unwrap_or_default(),
                    resource_version: m.resource_version,
                };
                self.graph.upsert(uid, node)
            }
            watcher::Event::Delete(o) => o
                .metadata
                .uid
                .map(|u| self.graph.remove(&u))
                .unwrap_or_default(),
            watcher::Event::InitDone => {
                unsynced.remove(&i);
                vec![]
            }
            watcher::Event::Init => vec![],
        }
    }

    fn api(&self, node: &Node) -> Api<DynamicObject> {
        let r = &self.resources[node.resource];
        match (&node.namespace, r.namespaced) {
            (Some(ns), true) => Api::namespaced_with(self.ctx.client.clone(), ns, &r.ar),
            _ => Api::all_with(self.ctx.client.clone(), &r.ar),
        }
    }

    async fn patch_meta(&self, node: &Node, uid: &str, meta: serde_json::Value) -> Result<()> {
        let mut meta = meta;
        meta["uid"] = json!(uid);
        let r = self
            .api(node)
            .patch(
                &node.name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"metadata": meta})),
            )
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(Error::Kube(e)),
        }
    }

    async fn delete(&self, node: &Node, uid: &str, policy: PropagationPolicy) -> Result<()> {
        tracing::info!(name = %node.name, namespace = ?node.namespace, kind = %self.resources[node.resource].ar.kind, ?policy, "deleting dependent");
        let dp = DeleteParams {
            propagation_policy: Some(policy),
            preconditions: Some(Preconditions {
                uid: Some(uid.into()),
                resource_version: None,
            }),
            ..Default::default()
        };
        match self.api(node).delete(&node.name, &dp).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if matches!(s.code, 404 | 409) => Ok(()),
            Err(e) => Err(Error::Kube(e)),
        }
    }

    async fn remove_finalizer(&self, node: &Node, uid: &str, f: &str) -> Result<()> {
        let kept: Vec<&String> = node.finalizers.iter().filter(|x| *x != f).collect();
        self.patch_meta(
            node,
            uid,
            json!({"finalizers": kept, "resourceVersion": node.resource_version}),
        )
        .await
    }

    /// Whether the owner `r` of a dependent in `namespace` exists (`Some(waiting)`, where
    /// `waiting` says it is being deleted in the foreground) or not (`None`).
    async fn owner_state(
        &self,
        r: &OwnerReference,
        namespace: Option<&str>,
    ) -> Result<Option<bool>> {
        if let Some(o) = self.graph.nodes.get(&r.uid) {
            return Ok(Some(o.deleting && o.has_finalizer(FOREGROUND)));
        }
        let Some(&i) = self.by_kind.get(&(r.api_version.clone(), r.kind.clone())) else {
            return Ok(Some(false)); // an unknown kind: never collect on a guess
        };
        let res = &self.resources[i];
        let api: Api<DynamicObject> = match (namespace, res.namespaced) {
            (Some(ns), true) => Api::namespaced_with(self.ctx.client.clone(), ns, &res.ar),
            (None, true) => return Ok(None), // a cluster-scoped dependent cannot have a namespaced owner
            _ => Api::all_with(self.ctx.client.clone(), &res.ar),
        };
        Ok(api.get_opt(&r.name).await?.and_then(|o| {
            (o.metadata.uid.as_deref() == Some(r.uid.as_str())).then(|| {
                o.metadata.deletion_timestamp.is_some()
                    && o.metadata
                        .finalizers
                        .as_deref()
                        .unwrap_or_default()
                        .iter()
                        .any(|f| f == FOREGROUND)
            })
        }))
    }

    async fn process(&mut self, uid: &str) -> Result<()> {
        let Some(node) = self.graph.nodes.get(uid).cloned() else {
            return Ok(());
        };
        let dependents: Vec<(String, Node)> = self
            .graph
            .dependents
            .get(uid)
            .into_iter()
            .flatten()
            .filter_map(|d| self.graph.nodes.get(d).map(|n| (d.clone(), n.clone())))
            .collect();
        if node.deleting && node.has_finalizer(ORPHAN) {
            for (duid, d) in &dependents {
                let kept: Vec<&OwnerReference> = d.owners.iter().filter(|o| o.uid != uid).collect();
                self.patch_meta(d, duid, json!({"ownerReferences": kept}))
                    .await?;
            }
            return self.remove_finalizer(&node, uid, ORPHAN).await;
        }
        if node.deleting && node.has_finalizer(FOREGROUND) {
            let blocking = dependents.iter().filter(|(_, d)| {
                d.owners
                    .iter()
                    .any(|o| o.uid == uid && o.block_owner_deletion == Some(true))
            });
            if blocking.count() == 0 {
                return self.remove_finalizer(&node, uid, FOREGROUND).await;
            }
            for (duid, d) in dependents.iter().filter(|(_, d)| !d.deleting) {
                let has_dependents = self
                    .graph
                    .dependents
                    .get(duid)
                    .is_some_and(|s| !s.is_empty());
                let policy = if has_dependents {
                    PropagationPolicy::Foreground
                } else {
                    PropagationPolicy::Background
                };
                self.delete(d, duid, policy).await?;
            }
            return Ok(());
        }
        if node.owners.is_empty() || node.deleting {
            return Ok(());
        }
        let (mut solid, mut dangling, mut waiting) = (0, Vec::new(), Vec::new());
        for r in &node.owners {
            match self.owner_state(r, node.namespace.as_deref()).await? {
                None => dangling.push(r.uid.clone()),
                Some(true) => waiting.push(r.uid.clone()),
                Some(false) => solid += 1,
            }
        }
        if solid > 0 {
            if dangling.is_empty() && waiting.is_empty() {
                return Ok(());
            }
            let kept: Vec<&OwnerReference> = node
                .owners
                .iter()
                .filter(|o| !dangling.contains(&o.uid) && !waiting.contains(&o.uid))
                .collect();
            return self
                .patch_meta(&node, uid, json!({"ownerReferences": kept}))
                .await;
        }
        let has_dependents = !dependents.is_empty();
        let policy = if node.has_finalizer(ORPHAN) {
            PropagationPolicy::Orphan
        } else if node.has_finalizer(FOREGROUND) || (!waiting.is_empty() && has_dependents) {
            PropagationPolicy::Foreground
        } else {
            PropagationPolicy::Background
        };
        self.delete(&node, uid, policy).await
    }
}
