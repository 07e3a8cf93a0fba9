//! `pods/eviction`: a delete that honours PodDisruptionBudgets, as upstream's `EvictionREST`
//! (`pkg/registry/core/pod/storage/eviction.go`).
//!
//! A terminal, pending or already deleting pod is deleted without consulting any budget. Else
//! the one budget whose selector matches the pod must allow a disruption: its
//! `status.disruptionsAllowed` is decremented and the pod recorded in `status.disruptedPods`
//! (compare-and-swap, retried on races) before the pod is deleted; a budget that allows none
//! answers 429 with the `DisruptionBudget` cause. A not-ready pod does not consume the budget
//! while the budget is otherwise met (or always, with `unhealthyPodEvictionPolicy:
//! AlwaysAllow`); it is then deleted with its resourceVersion as precondition, so that a pod
//! which became ready meanwhile is not taken.

use std::time::Duration;

use axum::response::Response;
use http::StatusCode;
use serde_json::{json, Value};

use crate::errors::{ApiError, ApiResult};
use crate::meta;
use crate::registry::{DeleteOptions, ListOptions, ResourceCtx};
use crate::request::{body_format, Output};
use crate::rest::{decode_object, respond, ResourceRequest};
use crate::selectors::LabelSelector;
use crate::server::AppState;

/// Upstream's `MaxDisruptedPodSize`: budgets with more unconfirmed evictions refuse more.
const MAX_DISRUPTED_POD_SIZE: usize = 2000;
/// Upstream's `EvictionsRetry`: 20 steps of 500 ms for conflicts on the pod delete.
const RETRY_STEPS: usize = 20;
const RETRY_DELAY: Duration = Duration::from_millis(500);

const BUDGET_VIOLATION: &str = "Cannot evict pod as it would violate the pod's disruption budget.";

/// 429 TooManyRequests with one `DisruptionBudget` cause (and `Retry-After` when non-zero).
fn too_many_requests(cause: String, retry_after: u64) -> ApiError {
    let mut details = json!({"causes": [{"reason": "DisruptionBudget", "message": cause}]});
    let mut err = ApiError::new(429, "TooManyRequests", BUDGET_VIOLATION);
    if retry_after > 0 {
        details["retryAfterSeconds"] = json!(retry_after);
        err.retry_after = Some(retry_after);
    }
    err.with_details(details)
}

fn still_processing(pdb: &str) -> ApiError {
    too_many_requests(
        format!("The disruption budget {pdb} is still being processed by the server."),
        10,
    )
}

fn forbidden_pdb(pdb: &str, why: &str) -> ApiError {
    ApiError::forbidden(
        "policy",
        "poddisruptionbudget",
        pdb,
        format!("poddisruptionbudget.policy {pdb:?} is forbidden: {why}"),
    )
}

fn phase(pod: &Value) -> &str {
    pod.get("status")
        .and_then(|s| s.get("phase"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn deleting(pod: &Value) -> bool {
    meta::meta_str(pod, "deletionTimestamp").is_some()
}

/// Pods whose deletion disrupts nothing more (upstream's `canIgnorePDB`).
fn can_ignore_pdb(pod: &Value) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed" | "Pending") || deleting(pod)
}

/// Whether the pod's `Ready` condition is true.
pub fn pod_is_ready(pod: &Value) -> bool {
    pod.get("status")
        .and_then(|s| s.get("conditions"))
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some("Ready")
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

fn status_i64(pdb: &Value, field: &str) -> i64 {
    pdb.get("status")
        .and_then(|s| s.get(field))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// Sets the `DisruptionAllowed` condition from `disruptionsAllowed`, as upstream's
/// `UpdateDisruptionAllowedCondition` (the transition time changes only with the status).
pub fn set_disruption_allowed_condition(status: &mut serde_json::Map<String, Value>) {
    let allowed = status
        .get("disruptionsAllowed")
        .and_then(Value::as_i64)
        .unwrap_or(0)
        > 0;
    let observed = status
        .get("observedGeneration")
        .cloned()
        .unwrap_or(json!(0));
    let (cstatus, reason) = if allowed {
        ("True", "SufficientPods")
    } else {
        ("False", "InsufficientPods")
    };
    let conds = status.entry("conditions").or_insert_with(|| json!([]));
    if !conds.is_array() {
        *conds = json!([]);
    }
    let Some(list) = conds.as_array_mut() else {
        return;
    };
    let existing = list
        .iter_mut()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("DisruptionAllowed"));
    match existing {
        Some(c) => {
            if c.get("status").and_then(Value::as_str) != Some(cstatus) {
                c["lastTransitionTime"] = json!(meta::now_rfc3339());
            }
            c["status"] = json!(cstatus);
            c["reason"] = json!(reason);
            c["observedGeneration"] = observed;
            if c.get("message").is_none() {
                c["message"] = json!("");
            }
        }
        None => list.push(json!({
            "type": "DisruptionAllowed",
            "status": cstatus,
            "reason": reason,
            "message": "",
            "observedGeneration": observed,
            "lastTransitionTime": meta::now_rfc3339(),
        })),
    }
}

impl AppState {
    /// `POST pods/{name}/eviction`.
    pub(crate) async fn evict(
        &self,
        ctx: &ResourceCtx,
        name: &str,
        req: &ResourceRequest,
    ) -> ApiResult<Response> {
        let format = body_format(&req.headers, false)?;
        let eviction = decode_object(&req.body, format, "Eviction")?;
        let kind = eviction.get("kind").and_then(Value::as_str).unwrap_or("");
        let av = eviction
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        if kind != "Eviction" || !matches!(av, "policy/v1" | "policy/v1beta1") {
            return Err(ApiError::bad_request(format!(
                "the object provided is unrecognized (must be of type Eviction): {kind} in version {av:?} cannot be handled as a Eviction"
            )));
        }
        if let Some(ns) = meta::meta_str(&eviction, "namespace").filter(|s| !s.is_empty()) {
            if ctx.namespace.as_deref() != Some(ns) {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
        }
        if meta::meta_str(&eviction, "name").unwrap_or("") != name {
            return Err(ApiError::bad_request(
                "name in URL does not match name in Eviction object",
            ));
        }
        let body_opts = eviction.get("deleteOptions").filter(|v| !v.is_null());
        // Upstream's propagateDryRun: both set and different is an error.
        let query_dry: Vec<&String> = req.query.all("dryRun").iter().collect();
        let body_dry = body_opts
            .and_then(|o| o.get("dryRun"))
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty());
        if let Some(b) = body_dry {
            let b: Vec<&str> = b.iter().filter_map(Value::as_str).collect();
            let q: Vec<&str> = query_dry.iter().map(|s| s.as_str()).collect();
            if !q.is_empty() && q != b {
                return Err(ApiError::internal(format!(
                    "Non-matching dry-run options in request and content: {q:?} and {b:?}"
                )));
            }
        }
        let opts = DeleteOptions::parse(body_opts, &req.query)?;
        let rv_pinned = opts.precondition_rv.is_some();

        // Pods whose deletion can skip the budgets (retried on conflicts unless pinned).
        let mut pod = Value::Null;
        for attempt in 0..RETRY_STEPS {
            pod = self.registry.get(ctx, name)?;
            if !can_ignore_pdb(&pod) {
                break;
            }
            let mut o = opts.clone();
            let enforce_rv = !matches!(phase(&pod), "Succeeded" | "Failed") && !deleting(&pod);
            if enforce_rv && !rv_pinned {
                o.precondition_rv = meta::meta_str(&pod, "resourceVersion").map(str::to_string);
            }
            match self.registry.delete(ctx, name, &o).await {
                Ok(_) => return Ok(success()),
                Err(e) if e.code == 409 && !rv_pinned && attempt + 1 < RETRY_STEPS => {
                    tokio::time::sleep(RETRY_DELAY).await;
                }
                Err(e) => return Err(e),
            }
        }

        let pdb_info = self
            .lookup("policy", "v1", "poddisruptionbudgets")
            .ok_or_else(|| ApiError::internal("the PodDisruptionBudget resource is not served"))?;
        let pdb_ctx = ResourceCtx::new(pdb_info, ctx.namespace.clone());
        let pdbs: Vec<Value> = self
            .registry
            .list(&pdb_ctx, &ListOptions::default())?
            .items
            .into_iter()
            .filter(|pdb| {
                let sel = pdb.get("spec").and_then(|s| s.get("selector"));
                match sel.map(LabelSelector::from_label_selector_json) {
                    // A nil or empty selector matches nothing, an invalid one neither.
                    Some(Ok(s)) if !s.is_empty() && !s.matches_nothing() => s.matches_object(&pod),
                    _ => false,
                }
            })
            .collect();
        if pdbs.len() > 1 {
            return Ok(respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                Output::Json,
                &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
                    "code": 500}),
            ));
        }
        let mut precondition_from_pod = false;
        let mut pdb_name = String::new();
        if let Some(pdb) = pdbs.first() {
            pdb_name = meta::meta_str(pdb, "name").unwrap_or("").to_string();
            let always_allow = pdb
                .get("spec")
                .and_then(|s| s.get("unhealthyPodEvictionPolicy"))
                .and_then(Value::as_str)
                == Some("AlwaysAllow");
            let desired = status_i64(pdb, "desiredHealthy");
            let healthy = status_i64(pdb, "currentHealthy");
            if !pod_is_ready(&pod) && (always_allow || (healthy >= desired && desired > 0)) {
                precondition_from_pod = true;
            } else {
                self.check_and_decrement(&pdb_ctx, &pdb_name, name, opts.dry_run)
                    .await?;
            }
        }
        let mut o = opts.clone();
        if precondition_from_pod {
            o.precondition_rv = meta::meta_str(&pod, "resourceVersion").map(str::to_string);
        }
        match self.registry.delete(ctx, name, &o).await {
            Ok(_) => Ok(success()),
            Err(e) if e.code == 409 && precondition_from_pod && !rv_pinned => {
                Err(still_processing(&pdb_name))
            }
            Err(e) => Err(e),
        }
    }

    /// Verifies that the budget allows one more disruption and records it (upstream's
    /// `checkAndDecrement`); the store's compare-and-swap retries it on concurrent writes.
    async fn check_and_decrement(
        &self,
        pdb_ctx: &ResourceCtx,
        pdb_name: &str,
        pod_name: &str,
        dry_run: bool,
    ) -> ApiResult<()> {
        self.registry
            .update_with(pdb_ctx, pdb_name, Some("status"), dry_run, None, |cur| {
                let generation = cur
                    .get("metadata")
                    .and_then(|m| m.get("generation"))
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                if status_i64(cur, "observedGeneration") < generation {
                    return Err(still_processing(pdb_name));
                }
                let allowed = status_i64(cur, "disruptionsAllowed");
                if allowed < 0 {
                    return Err(forbidden_pdb(pdb_name, "pdb disruptions allowed is negative"));
                }
                let disrupted = cur
                    .get("status")
                    .and_then(|s| s.get("disruptedPods"))
                    .and_then(Value::as_object)
                    .map_or(0, |m| m.len());
                if disrupted > MAX_DISRUPTED_POD_SIZE {
                    return Err(forbidden_pdb(
                        pdb_name,
                        "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
                    ));
                }
                if allowed == 0 {
                    return Err(too_many_requests(
                        format!(
                            "The disruption budget {pdb_name} needs {} healthy pods and has {} currently",
                            status_i64(cur, "desiredHealthy"),
                            status_i64(cur, "currentHealthy")
                        ),
                        0,
                    ));
                }
                let mut next = cur.clone();
                // Not pinned to this revision: on a concurrent write the store's
                // compare-and-swap fails and this check runs again on the newer budget, as
                // upstream retries its conflicts.
                if let Some(m) = next.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.remove("resourceVersion");
                }
                let Some(status) = next.get_mut("status").and_then(Value::as_object_mut) else {
                    return Err(still_processing(pdb_name));
                };
                status.insert("disruptionsAllowed".into(), json!(allowed - 1));
                if allowed - 1 == 0 {
                    set_disruption_allowed_condition(status);
                }
                let pods = status
                    .entry("disruptedPods")
                    .or_insert_with(|| json!({}));
                if !pods.is_object() {
                    *pods = json!({});
                }
                pods[pod_name] = json!(meta::now_rfc3339());
                Ok(next)
            })
            .await
            .map(|_| ())
    }
}

fn success() -> Response {
    respond(
        StatusCode::CREATED,
        Output::Json,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_error_shape() {
        let s = still_processing("pdb").to_status();
        assert_eq!(s["code"], 429);
        assert_eq!(s["reason"], "TooManyRequests");
        assert_eq!(s["details"]["retryAfterSeconds"], 10);
        assert_eq!(s["details"]["causes"][0]["reason"], "DisruptionBudget");
        let s = too_many_requests("x".into(), 0).to_status();
        assert!(s["details"].get("retryAfterSeconds").is_none());
    }

    #[test]
    fn condition_follows_allowed() {
        let mut st = serde_json::Map::new();
        st.insert("disruptionsAllowed".into(), json!(0));
        set_disruption_allowed_condition(&mut st);
        assert_eq!(st["conditions"][0]["reason"], "InsufficientPods");
        st.insert("disruptionsAllowed".into(), json!(2));
        set_disruption_allowed_condition(&mut st);
        assert_eq!(st["conditions"][0]["status"], "True");
        assert_eq!(st["conditions"].as_array().map(Vec::len), Some(1));
        assert!(can_ignore_pdb(&json!({"status": {"phase": "Pending"}})));
        assert!(!can_ignore_pdb(&json!({"status": {"phase": "Running"}})));
    }
}
