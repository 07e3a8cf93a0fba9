//! The admission chain every write passes: defaulting and the built-in mutating
//! admission plugins (ServiceAccount, DefaultTolerationSeconds, Priority, LimitRanger,
//! DefaultStorageClass, StorageObjectInUseProtection), then
//! the kind-specific validation; ResourceQuota ([`crate::quota`]) charges the object last.

use meso_store::Store;
use serde_json::Value;

use crate::defaults;
use crate::errors::{ApiError, ApiResult};
use crate::registry::ResourceCtx;

fn is(ctx: &ResourceCtx, group: &str, resource: &str) -> bool {
    ctx.info.group == group && ctx.info.plural == resource
}

fn priority_class(store: &Store, name: &str) -> ApiResult<Option<Value>> {
    let kv = store.get(&format!(
        "/registry/scheduling.k8s.io/priorityclasses/{name}"
    ))?;
    Ok(kv.and_then(|kv| serde_json::from_slice(&kv.value).ok()))
}

/// The class marked `globalDefault`, if any.
fn global_default_priority_class(store: &Store) -> ApiResult<Option<Value>> {
    let list = store.list_cached("/registry/scheduling.k8s.io/priorityclasses/")?;
    Ok(list
        .iter()
        .filter_map(|kv| serde_json::from_slice::<Value>(&kv.value).ok())
        .find(|pc| pc.get("globalDefault") == Some(&Value::Bool(true))))
}

/// The default StorageClass for claims without one (upstream's `GetDefaultClass`): among the
/// classes annotated `storageclass.kubernetes.io/is-default-class: "true"` (or the beta key),
/// the newest, ties broken by name.
fn default_storage_class(store: &Store) -> ApiResult<Option<String>> {
    let list = store.list_cached("/registry/storage.k8s.io/storageclasses/")?;
    let mut defaults: Vec<(String, String)> = list
        .iter()
        .filter_map(|kv| serde_json::from_slice::<Value>(&kv.value).ok())
        .filter(|sc| {
            let a = &sc["metadata"]["annotations"];
            a["storageclass.kubernetes.io/is-default-class"] == "true"
                || a["storageclass.beta.kubernetes.io/is-default-class"] == "true"
        })
        .map(|sc| {
            let m = &sc["metadata"];
            (
                m["creationTimestamp"].as_str().unwrap_or("").to_string(),
                m["name"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    defaults.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    Ok(defaults.into_iter().next().map(|(_, name)| name))
}

fn forbidden(ctx: &ResourceCtx, name: &str, msg: String) -> ApiError {
    ApiError::forbidden(
        &ctx.info.group,
        &ctx.info.plural,
        name,
        format!(
            "{} {name:?} is forbidden: {msg}",
            crate::errors::qualified(&ctx.info.group, &ctx.info.plural)
        ),
    )
}

/// Defaulting, as upstream applies it while decoding a request body.
pub fn default(ctx: &ResourceCtx, obj: &mut Value) {
    defaults::apply_defaults(&ctx.info.group, &ctx.info.version, &ctx.info.kind, obj);
    if let Some(c) = ctx.info.custom.as_ref().filter(|c| c.schema.is_object()) {
        defaults::apply_crd_schema_defaults(&c.schema, obj);
    }
}

/// Mutating admission of a new object (after defaulting and the system metadata).
pub fn admit_create(store: &Store, ctx: &ResourceCtx, obj: &mut Value) -> ApiResult<()> {
    let (g, k) = (ctx.info.group.as_str(), ctx.info.kind.as_str());
    if is(ctx, "", "pods") {
        let name = crate::meta::meta_str(obj, "name").unwrap_or("").to_string();
        defaults::service_account_admission(obj, &crate::meta::name_suffix());
        defaults::default_toleration_seconds(obj);
        let named = obj
            .get("spec")
            .and_then(|s| s.get("priorityClassName"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        let class = match &named {
            Some(n) => priority_class(store, n)?,
            None => global_default_priority_class(store)?,
        };
        defaults::priority_admission(obj, class.as_ref()).map_err(|m| forbidden(ctx, &name, m))?;
        if let Some(ns) = ctx.namespace.as_deref() {
            crate::limitrange::admit_pod(store, ns, obj)?.map_err(|m| forbidden(ctx, &name, m))?;
        }
    }
    if is(ctx, "", "persistentvolumeclaims") {
        if let Some(ns) = ctx.namespace.as_deref() {
            let name = crate::meta::meta_str(obj, "name").unwrap_or("").to_string();
            crate::limitrange::admit_pvc(store, ns, obj)?.map_err(|m| forbidden(ctx, &name, m))?;
        }
        let class = default_storage_class(store)?;
        defaults::default_storage_class(obj, class.as_deref());
    }
    // StorageObjectInUseProtection: the PV controllers take these finalizers off once the
    // claim is unused or the volume unbound.
    if g.is_empty() && matches!(k, "PersistentVolumeClaim" | "PersistentVolume") {
        defaults::storage_object_in_use_protection(k, obj);
    }
    let uid = crate::meta::meta_str(obj, "uid").unwrap_or("").to_string();
    defaults::prepare_for_create(g, k, obj, &uid);
    Ok(())
}

/// Mutating admission of an update (after defaulting).
pub fn admit_update(ctx: &ResourceCtx, new: &mut Value, old: &Value) {
    let (g, k) = (ctx.info.group.as_str(), ctx.info.kind.as_str());
    if is(ctx, "", "services") {
        defaults::service_update_carry_over(new, old);
        crate::validation::normalize_service_cluster_ips(new, Some(old));
        default(ctx, new);
    }
    if is(ctx, "", "pods") {
        defaults::priority_admission_update(new, old);
    }
    defaults::prepare_for_update(g, k, new, old);
}

/// Re-defaulting of the object as it will be stored (upstream decodes and defaults the
/// stored object again, which also fixes the key order).
pub fn finish(ctx: &ResourceCtx, obj: &mut Value) {
    defaults::apply_defaults(&ctx.info.group, &ctx.info.version, &ctx.info.kind, obj);
}
