//! The namespace controller (upstream's `pkg/controller/namespace`): empties a deleted
//! namespace and then releases it.
//!
//! Deleting a namespace only marks it (the API server sets `deletionTimestamp` and
//! `status.phase: Terminating`, and refuses new content in it); the namespace stays while
//! `spec.finalizers` holds `kubernetes`. This controller then discovers every namespaced
//! resource the server offers that can be deleted (custom resources included), deletes its
//! instances in the namespace (deletecollection, else list and delete one by one), reports
//! progress in the namespace's status conditions, and once nothing is left removes
//! `kubernetes` through `PUT namespaces/{name}/finalize`, after which the API server deletes
//! the namespace. Content still terminating gracefully (pods) or held by finalizers makes it
//! look again after an estimate, as upstream. Unlike upstream (which waits 5 s for other API
//! servers of an HA control plane to see the deletion), the first pass starts at once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Namespace, NamespaceCondition, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{APIResourceList, Time};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::core::{ApiResource, DynamicObject};
use kube::runtime::controller::{Action, Controller};
use kube::ResourceExt;

use crate::scaffold::{run_controller_with_backoff, Context, Error, Result};
use crate::util;

pub const NAME: &str = "namespace-controller";
/// The finalizer token of this controller in `spec.finalizers`.
pub const FINALIZER: &str = "kubernetes";
/// How long to wait for content held by finalizers (upstream's `finalizerEstimateSeconds`).
const FINALIZER_ESTIMATE_SECONDS: i64 = 15;
/// The bound of the error backoff.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The condition types this controller maintains, in upstream's order, with the reason and
/// message each has when all is well.
const CONDITIONS: &[(&str, &str, &str)] = &[
    (
        "NamespaceDeletionDiscoveryFailure",
        "ResourcesDiscovered",
        "All resources successfully discovered",
    ),
    (
        "NamespaceDeletionGroupVersionParsingFailure",
        "ParsedGroupVersions",
        "All legacy kube types successfully parsed",
    ),
    (
        "NamespaceDeletionContentFailure",
        "ContentDeleted",
        "All content successfully deleted, may be waiting on finalization",
    ),
    (
        "NamespaceContentRemaining",
        "ContentRemoved",
        "All content successfully removed",
    ),
    (
        "NamespaceFinalizersRemaining",
        "ContentRemoved",
        "All content successfully removed",
    ),
];

pub fn controller(ctx: &Arc<Context>) -> BoxFuture<'static, ()> {
    let namespaces = ctx.informers.get::<Namespace>();
    let c = Controller::for_shared_stream(namespaces.subscribe(), namespaces.store());
    // A namespace being deleted is retried at least every minute (upstream's
    // `nsControllerRateLimiter`).
    let max = ctx.config.max_error_backoff.min(MAX_BACKOFF);
    run_controller_with_backoff(NAME, c, ctx.clone(), reconcile, max)
}

async fn reconcile(cached: Arc<Namespace>, ctx: Arc<Context>) -> Result<Action> {
    if cached.metadata.deletion_timestamp.is_none() {
        return Ok(Action::await_change());
    }
    let name = cached.name_any();
    let api: Api<Namespace> = Api::all(ctx.client.clone());
    // Several writers edit a terminating namespace: act on its latest state.
    let Some(mut ns) = util::absent_ok(api.get(&name).await)? else {
        return Ok(Action::await_change());
    };
    let Some(deleted_at) = ns.metadata.deletion_timestamp.clone() else {
        return Ok(Action::await_change());
    };
    if ns.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Terminating") {
        ns.status.get_or_insert_with(Default::default).phase = Some("Terminating".into());
        match util::absent_ok(api.replace_status(&name, &PostParams::default(), &ns).await)? {
            Some(updated) => ns = updated,
            None => return Ok(Action::await_change()),
        }
    }
    if !has_finalizer(&ns) {
        return Ok(Action::await_change());
    }

    let outcome = delete_all_content(&ctx, &name, &deleted_at).await;
    let mut status = ns.status.clone().unwrap_or_default();
    let mut conditions = status.conditions.take().unwrap_or_default();
    if update_conditions(&mut conditions, &outcome.conditions()) {
        status.conditions = Some(conditions);
        ns.status = Some(status);
        if let Err(e) = api.replace_status(&name, &PostParams::default(), &ns).await {
            tracing::warn!(controller = NAME, namespace = %name, error = %e, "updating the namespace conditions");
        }
    }
    if !outcome.errors.is_empty() {
        return Err(Error::Invalid(outcome.errors.join(", ")));
    }
    if outcome.estimate > 0 {
        tracing::debug!(controller = NAME, namespace = %name, estimate = outcome.estimate, "content remains");
        let secs = (outcome.estimate / 2 + 1) as u64;
        return Ok(Action::requeue(Duration::from_secs(secs)));
    }
    finalize(&api, &name).await?;
    tracing::info!(controller = NAME, namespace = %name, "namespace emptied and finalized");
    Ok(Action::await_change())
}

fn has_finalizer(ns: &Namespace) -> bool {
    ns.spec
        .as_ref()
        .and_then(|s| s.finalizers.as_ref())
        .is_some_and(|f| f.iter().any(|x| x == FINALIZER))
}

/// Removes this controller's token from `spec.finalizers` (the rest sorted, as upstream).
async fn finalize(api: &Api<Namespace>, name: &str) -> Result<()> {
    for _ in 0..16 {
        let Some(mut ns) = util::absent_ok(api.get(name).await)? else {
            return Ok(());
        };
        if !has_finalizer(&ns) {
            return Ok(());
        }
        let spec = ns.spec.get_or_insert_with(Default::default);
        let mut rest: Vec<String> = spec
            .finalizers
            .take()
            .unwrap_or_default()
            .into_iter()
            .filter(|f| f != FINALIZER)
            .collect();
        rest.sort();
        rest.dedup();
        spec.finalizers = Some(rest);
        match api
            .replace_subresource("finalize", name, &PostParams::default(), &ns)
            .await
        {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Invalid(format!(
        "finalizing namespace {name}: too many conflicts"
    )))
}

/// A namespaced resource the server serves, at its group's preferred version.
#[derive(Clone, Debug, PartialEq)]
struct Gvr {
    group: String,
    version: String,
    resource: String,
    kind: String,
    verbs: Vec<String>,
}

impl Gvr {
    fn has(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }

    /// How Go prints a `schema.GroupVersionResource`.
    fn go_string(&self) -> String {
        format!(
            "{}/{}, Resource={}",
            self.group, self.version, self.resource
        )
    }

    fn api(&self, client: &kube::Client, ns: &str) -> Api<DynamicObject> {
        let api_version = if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        };
        let ar = ApiResource {
            group: self.group.clone(),
            version: self.version.clone(),
            api_version,
            kind: self.kind.clone(),
            plural: self.resource.clone(),
        };
        Api::namespaced_with(client.clone(), ns, &ar)
    }
}

/// What one pass over a namespace's content found.
#[derive(Default, Debug)]
struct ContentOutcome {
    /// Why discovery was incomplete.
    discovery_error: Option<String>,
    /// A group version that could not be parsed.
    group_version_error: Option<String>,
    /// Per resource type, why deleting its content failed.
    content_errors: Vec<String>,
    /// Instances left per `resource.group`.
    remaining: BTreeMap<String, usize>,
    /// Instances left per finalizer they carry.
    finalizers: BTreeMap<String, usize>,
    /// Seconds to wait before looking again (0: do not wait).
    estimate: i64,
    /// Every error, for the requeue.
    errors: Vec<String>,
}

impl ContentOutcome {
    /// The failing conditions (upstream's `namespaceConditionUpdater`); the types not listed
    /// are reported as fine.
    fn conditions(&self) -> Vec<NamespaceCondition> {
        let cond = |type_: &str, reason: &str, message: String| NamespaceCondition {
            type_: type_.into(),
            status: "True".into(),
            reason: Some(reason.into()),
            message: Some(message),
            last_transition_time: Some(util::now()),
        };
        let mut out = Vec::new();
        if let Some(e) = &self.discovery_error {
            out.push(cond(
                "NamespaceDeletionDiscoveryFailure",
                "DiscoveryFailed",
                e.clone(),
            ));
        }
        if let Some(e) = &self.group_version_error {
            out.push(cond(
                "NamespaceDeletionGroupVersionParsingFailure",
                "GroupVersionParsingFailed",
                e.clone(),
            ));
        }
        if !self.content_errors.is_empty() {
            let mut msgs = self.content_errors.clone();
            msgs.sort();
            out.push(cond(
                "NamespaceDeletionContentFailure",
                "ContentDeletionFailed",
                format!(
                    "Failed to delete all resource types, {} remaining: {}",
                    msgs.len(),
                    msgs.join(", ")
                ),
            ));
        }
        let remaining: Vec<String> = self
            .remaining
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(r, n)| format!("{r} has {n} resource instances"))
            .collect();
        if !self.remaining.is_empty() {
            out.push(cond(
                "NamespaceContentRemaining",
                "SomeResourcesRemain",
                format!(
                    "Some resources are remaining: {}",
                    sorted(remaining).join(", ")
                ),
            ));
        }
        let finalizers: Vec<String> = self
            .finalizers
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(f, n)| format!("{f} in {n} resource instances"))
            .collect();
        if !self.finalizers.is_empty() {
            out.push(cond(
                "NamespaceFinalizersRemaining",
                "SomeFinalizersRemain",
                format!(
                    "Some content in the namespace has finalizers remaining: {}",
                    sorted(finalizers).join(", ")
                ),
            ));
        }
        out
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Merges `failing` into `conditions`: each maintained type takes its failing value or else
/// its fine value; the transition time moves only when the status does. True if changed.
fn update_conditions(
    conditions: &mut Vec<NamespaceCondition>,
    failing: &[NamespaceCondition],
) -> bool {
    let mut changed = false;
    for (type_, ok_reason, ok_message) in CONDITIONS {
        let wanted = failing
            .iter()
            .find(|c| c.type_ == *type_)
            .cloned()
            .unwrap_or_else(|| NamespaceCondition {
                type_: (*type_).into(),
                status: "False".into(),
                reason: Some((*ok_reason).into()),
                message: Some((*ok_message).into()),
                last_transition_time: Some(util::now()),
            });
        match conditions.iter_mut().find(|c| c.type_ == *type_) {
            None => {
                conditions.push(wanted);
                changed = true;
            }
            Some(old)
                if old.status != wanted.status
                    || old.reason != wanted.reason
                    || old.message != wanted.message =>
            {
                if old.status != wanted.status {
                    old.last_transition_time = Some(util::now());
                }
                old.status = wanted.status;
                old.reason = wanted.reason;
                old.message = wanted.message;
                changed = true;
            }
            Some(_) => {}
        }
    }
    changed
}

/// The text of an API error as a Go client prints it.
fn error_text(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

/// The namespaced, deletable resources of every group at its preferred version. A group
/// whose discovery fails is reported (as client-go's `ErrGroupDiscoveryFailed`) and the
/// others are still returned.
async fn discover(client: &kube::Client) -> (Vec<APIResourceList>, Option<String>) {
    let mut lists = Vec::new();
    let mut failed: Vec<String> = Vec::new();
    match client.list_core_api_versions().await {
        Ok(core) => {
            for v in core.versions {
                match client.list_core_api_resources(&v).await {
                    Ok(l) => lists.push(l),
                    Err(e) => failed.push(format!("{v}: {}", error_text(&e))),
                }
            }
        }
        Err(e) => return (lists, Some(error_text(&e))),
    }
    match client.list_api_groups().await {
        Ok(groups) => {
            for g in groups.groups {
                let gv = g
                    .preferred_version
                    .map(|v| v.group_version)
                    .or_else(|| g.versions.first().map(|v| v.group_version.clone()));
                let Some(gv) = gv else { continue };
                match client.list_api_group_resources(&gv).await {
                    Ok(l) => lists.push(l),
                    Err(e) => failed.push(format!("{gv}: {}", error_text(&e))),
                }
            }
        }
        Err(e) => return (lists, Some(error_text(&e))),
    }
    let error = (!failed.is_empty()).then(|| {
        failed.sort();
        format!(
            "Discovery failed for some groups, {} failing: unable to retrieve the complete list of server APIs: {}",
            failed.len(),
            failed.join(", ")
        )
    });
    (lists, error)
}

/// The deletable namespaced resources of `lists` (upstream's filter on the `delete` verb and
/// `discovery.GroupVersionResources`, which gives up on the first bad group version).
fn deletable(lists: &[APIResourceList]) -> std::result::Result<Vec<Gvr>, String> {
    let mut out: Vec<Gvr> = Vec::new();
    for list in lists {
        let (group, version) = parse_group_version(&list.group_version)?;
        for r in &list.resources {
            if !r.namespaced || r.name.contains('/') || !r.verbs.iter().any(|v| v == "delete") {
                continue;
            }
            let gvr = Gvr {
                group: r.group.clone().unwrap_or_else(|| group.clone()),
                version: r.version.clone().unwrap_or_else(|| version.clone()),
                resource: r.name.clone(),
                kind: r.kind.clone(),
                verbs: r.verbs.clone(),
            };
            if !out.contains(&gvr) {
                out.push(gvr);
            }
        }
    }
    Ok(out)
}

/// `schema.ParseGroupVersion`: "v1" is the core group, "g/v" a named one.
fn parse_group_version(gv: &str) -> std::result::Result<(String, String), String> {
    if gv.is_empty() || gv == "/" {
        return Ok((String::new(), String::new()));
    }
    match gv.split('/').collect::<Vec<_>>()[..] {
        [v] => Ok((String::new(), v.to_string())),
        [g, v] => Ok((g.to_string(), v.to_string())),
        _ => Err(format!("unexpected GroupVersion string: {gv}")),
    }
}

async fn delete_all_content(ctx: &Context, ns: &str, deleted_at: &Time) -> ContentOutcome {
    let mut out = ContentOutcome::default();
    let (lists, discovery_error) = discover(&ctx.client).await;
    if let Some(e) = discovery_error {
        out.errors.push(e.clone());
        out.discovery_error = Some(e);
    }
    let resources = match deletable(&lists) {
        Ok(r) => r,
        Err(e) => {
            out.errors.push(e.clone());
            out.group_version_error = Some(e);
            Vec::new()
        }
    };
    for gvr in &resources {
        let (left, err) = delete_resource(ctx, gvr, ns, deleted_at).await;
        if let Some(e) = err {
            out.errors.push(e.clone());
            out.content_errors.push(e);
        }
        out.estimate = out.estimate.max(left.estimate);
        if left.remaining > 0 {
            out.remaining
                .insert(format!("{}.{}", gvr.resource, gvr.group), left.remaining);
            for (f, n) in left.finalizers {
                *out.finalizers.entry(f).or_default() += n;
            }
        }
    }
    out
}

#[derive(Default, Debug)]
struct Left {
    estimate: i64,
    remaining: usize,
    finalizers: BTreeMap<String, usize>,
}

fn not_supported(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404 || s.code == 405)
}

/// Deletes every instance of `gvr` in `ns`; what is left and why deleting failed.
async fn delete_resource(
    ctx: &Context,
    gvr: &Gvr,
    ns: &str,
    deleted_at: &Time,
) -> (Left, Option<String>) {
    let mut estimate = 0;
    if gvr.group.is_empty() && gvr.resource == "pods" {
        match pods_grace_estimate(ctx, ns).await {
            Ok(e) => estimate = e,
            Err(e) => return (Left::default(), Some(error_text(&e))),
        }
        // Past the estimate since the namespace was deleted: nothing to wait for any more.
        if util::seconds_since(deleted_at) >= estimate as f64 {
            estimate = 0;
        }
    }
    let fail = |e: &kube::Error| {
        (
            Left {
                estimate,
                ..Default::default()
            },
            Some(error_text(e)),
        )
    };
    let api = gvr.api(&ctx.client, ns);
    // The namespace's content goes whatever its owners say: dependents are collected in the
    // background, never orphaned.
    let dp = DeleteParams::background();
    let mut collected = false;
    if gvr.has("deletecollection") {
        match api.delete_collection(&dp, &ListParams::default()).await {
            Ok(_) => collected = true,
            Err(e) if not_supported(&e) => {}
            Err(e) => return fail(&e),
        }
    }
    if !gvr.has("list") {
        return (
            Left {
                estimate,
                ..Default::default()
            },
            None,
        );
    }
    if !collected {
        match api.list_metadata(&ListParams::default()).await {
            Ok(list) => {
                for item in list.items {
                    match api.delete(&item.name_any(), &dp).await {
                        Ok(_) => {}
                        Err(e) if not_supported(&e) => {}
                        Err(e) => return fail(&e),
                    }
                }
            }
            Err(e) if not_supported(&e) => {
                return (
                    Left {
                        estimate,
                        ..Default::default()
                    },
                    None,
                )
            }
            Err(e) => return fail(&e),
        }
    }
    // What is left now.
    let items = match api.list_metadata(&ListParams::default()).await {
        Ok(list) => list.items,
        Err(e) if not_supported(&e) => Vec::new(),
        Err(e) => return fail(&e),
    };
    if items.is_empty() {
        return (Left::default(), None);
    }
    let mut finalizers: BTreeMap<String, usize> = BTreeMap::new();
    for item in &items {
        for f in item.metadata.finalizers.iter().flatten() {
            *finalizers.entry(f.clone()).or_default() += 1;
        }
    }
    let remaining = items.len();
    if estimate != 0 {
        return (
            Left {
                estimate,
                remaining,
                finalizers,
            },
            None,
        );
    }
    if !finalizers.is_empty() {
        return (
            Left {
                estimate: FINALIZER_ESTIMATE_SECONDS,
                remaining,
                finalizers,
            },
            None,
        );
    }
    (
        Left {
            estimate: 0,
            remaining,
            finalizers,
        },
        Some(format!(
            "unexpected items still remain in namespace: {ns} for gvr: {}",
            gvr.go_string()
        )),
    )
}

/// The longest grace period of the namespace's pods that are not finished.
async fn pods_grace_estimate(ctx: &Context, ns: &str) -> std::result::Result<i64, kube::Error> {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let pods = api.list(&ListParams::default()).await?;
    Ok(pods
        .items
        .iter()
        .filter(|p| !util::pod_is_terminal(p))
        .filter_map(|p| {
            p.spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds)
        })
        .max()
        .unwrap_or(0)
        .max(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResource;

    fn resource(name: &str, namespaced: bool, verbs: &[&str]) -> APIResource {
        APIResource {
            name: name.into(),
            kind: "K".into(),
            namespaced,
            verbs: verbs.iter().map(|v| v.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn only_namespaced_deletable_top_level_resources() {
        let lists = vec![
            APIResourceList {
                group_version: "v1".into(),
                resources: vec![
                    resource("pods", true, &["list", "delete", "deletecollection"]),
                    resource("pods/status", true, &["get", "patch"]),
                    resource("nodes", false, &["list", "delete"]),
                    resource("bindings", true, &["create"]),
                ],
            },
            APIResourceList {
                group_version: "example.com/v1".into(),
                resources: vec![resource("widgets", true, &["list", "delete"])],
            },
        ];
        let got = deletable(&lists).unwrap_or_default();
        let names: Vec<_> = got
            .iter()
            .map(|g| format!("{}/{}/{}", g.group, g.version, g.resource))
            .collect();
        assert_eq!(names, ["/v1/pods", "example.com/v1/widgets"]);
        assert_eq!(got[0].go_string(), "/v1, Resource=pods");

        let bad = vec![APIResourceList {
            group_version: "a/b/c".into(),
            resources: vec![],
        }];
        assert_eq!(
            deletable(&bad),
            Err("unexpected GroupVersion string: a/b/c".into())
        );
    }

    #[test]
    fn conditions_as_upstream() {
        let mut out = ContentOutcome::default();
        out.remaining.insert("pods.".into(), 2);
        out.remaining.insert("widgets.example.com".into(), 1);
        out.finalizers.insert("foo".into(), 1);
        let failing = out.conditions();
        let mut conds = Vec::new();
        assert!(update_conditions(&mut conds, &failing));
        let types: Vec<_> = conds.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(
            types,
            CONDITIONS.iter().map(|c| c.0).collect::<Vec<_>>(),
            "every maintained type, in order"
        );
        let remaining = &conds[3];
        assert_eq!(remaining.status, "True");
        assert_eq!(remaining.reason.as_deref(), Some("SomeResourcesRemain"));
        assert_eq!(
            remaining.message.as_deref(),
            Some("Some resources are remaining: pods. has 2 resource instances, widgets.example.com has 1 resource instances")
        );
        let fins = &conds[4];
        assert_eq!(fins.reason.as_deref(), Some("SomeFinalizersRemain"));
        assert_eq!(
            fins.message.as_deref(),
            Some("Some content in the namespace has finalizers remaining: foo in 1 resource instances")
        );
        assert_eq!(conds[0].status, "False");
        assert_eq!(conds[0].reason.as_deref(), Some("ResourcesDiscovered"));
        // Unchanged input: no update.
        assert!(!update_conditions(&mut conds, &failing));
        // All gone: every condition turns False with the fine reason.
        assert!(update_conditions(&mut conds, &[]));
        assert!(conds.iter().all(|c| c.status == "False"));
        assert_eq!(conds[4].reason.as_deref(), Some("ContentRemoved"));
        assert_eq!(
            conds[2].message.as_deref(),
            Some("All content successfully deleted, may be waiting on finalization")
        );

        let failed = ContentOutcome {
            content_errors: vec!["b".into(), "a".into()],
            ..Default::default()
        };
        let c = failed.conditions();
        assert_eq!(c[0].reason.as_deref(), Some("ContentDeletionFailed"));
        assert_eq!(
            c[0].message.as_deref(),
            Some("Failed to delete all resource types, 2 remaining: a, b")
        );
    }

    #[test]
    fn group_versions_parse_as_upstream() {
        assert_eq!(parse_group_version("v1"), Ok(("".into(), "v1".into())));
        assert_eq!(
            parse_group_version("apps/v1"),
            Ok(("apps".into(), "v1".into()))
        );
        assert!(parse_group_version("a/b/c").is_err());
    }
}
