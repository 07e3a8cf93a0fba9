//! The one generic store path every resource goes through: keys, encoding, and
//! get/list/create/update/delete with the per-kind [`Strategy`] deciding what differs.

use base64::Engine;
use meso_store::{KeyValue, Store, StoreError};
use serde_json::{json, Map, Value};

use crate::errors::{ApiError, ApiResult, Cause};
use crate::meta;
use crate::resources::ResourceInfo;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::service_alloc::ServiceRanges;
use crate::strategy::Strategy;

/// The namespaces that may not be deleted (upstream's immortal namespaces).
const IMMORTAL_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];

/// The resource a request addresses, with its strategy and namespace.
#[derive(Debug, Clone)]
pub struct ResourceCtx {
    pub info: ResourceInfo,
    /// `info.api_version()`, computed once.
    pub api_version: String,
    pub strategy: Strategy,
    pub namespace: Option<String>,
}

impl ResourceCtx {
    pub fn new(info: ResourceInfo, namespace: Option<String>) -> Self {
        let strategy = Strategy::for_resource(&info);
        ResourceCtx {
            api_version: info.api_version(),
            info,
            strategy,
            namespace,
        }
    }

    fn group(&self) -> &str {
        &self.info.group
    }

    fn resource(&self) -> &str {
        &self.info.plural
    }

    fn not_found(&self, name: &str) -> ApiError {
        ApiError::not_found(self.group(), self.resource(), name)
    }

    /// `/registry/{group}/{resource}/[{namespace}/]` (core is written `core`).
    pub fn prefix(&self) -> String {
        let g = match crate::conversion::storage_group(&self.info.group, &self.info.plural) {
            "" => "core",
            g => g,
        };
        match (&self.namespace, self.info.namespaced()) {
            (Some(ns), true) => format!("/registry/{g}/{}/{ns}/", self.info.plural),
            _ => format!("/registry/{g}/{}/", self.info.plural),
        }
    }

    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix())
    }

    /// Decodes a stored value into the object served for this resource's version.
    pub fn decode(&self, value: &[u8], revision: u64) -> ApiResult<Value> {
        let mut obj: Value = serde_json::from_slice(value)
            .map_err(|e| ApiError::internal(format!("decoding stored object: {e}")))?;
        crate::conversion::from_storage(&self.info.group, &self.info.plural, &mut obj);
        if let Some(o) = obj.as_object_mut() {
            o.insert("apiVersion".into(), json!(self.info.api_version()));
            o.insert("kind".into(), json!(self.info.kind));
        }
        if let Some(m) = meta::metadata_mut(&mut obj) {
            m.insert("resourceVersion".into(), json!(revision.to_string()));
        }
        Ok(obj)
    }

    /// Encodes an object for the store, in the stored form of its resource.
    pub fn encode(&self, obj: &Value) -> ApiResult<Vec<u8>> {
        // Custom resources (conversion strategy None): only apiVersion changes.
        let storage_version = self
            .info
            .custom
            .as_ref()
            .map(|c| c.storage_version.as_str())
            .filter(|v| !v.is_empty());
        if storage_version.is_none()
            && !crate::conversion::converts(&self.info.group, &self.info.plural)
        {
            // The stored form is the served one: no copy.
            return encode(obj);
        }
        let mut obj = obj.clone();
        crate::conversion::to_storage(&self.info.group, &self.info.plural, &mut obj);
        if let (Some(v), Some(o)) = (storage_version, obj.as_object_mut()) {
            o.insert(
                "apiVersion".into(),
                json!(format!("{}/{}", self.info.group, v)),
            );
        }
        encode(&obj)
    }

    /// The object as [`decode`](Self::decode) would read back `obj` just written at `revision`,
    /// without the round trip through its bytes where the stored form is the served one.
    pub fn written(&self, mut obj: Value, kv: &KeyValue) -> ApiResult<Value> {
        if crate::conversion::converts(&self.info.group, &self.info.plural) {
            return self.decode_kv(kv);
        }
        if let Some(o) = obj.as_object_mut() {
            o.insert("apiVersion".into(), json!(self.info.api_version()));
            o.insert("kind".into(), json!(self.info.kind));
        }
        if let Some(m) = meta::metadata_mut(&mut obj) {
            // What `encode` (leaves them out, the other keys in order) and `decode` do.
            m.shift_remove("resourceVersion");
            m.shift_remove("selfLink");
            m.insert("resourceVersion".into(), json!(kv.mod_revision.to_string()));
        }
        Ok(obj)
    }

    /// The schema server-side apply and managedFields use for this resource.
    pub fn apply_schema(&self) -> crate::apply::Schema {
        if let Some(c) = self.info.custom.as_ref().filter(|c| c.schema.is_object()) {
            return crate::apply::Schema::from_crd_openapi_v3(&c.schema);
        }
        crate::apply::Schema::for_gvk(&self.info.group, &self.info.version, &self.info.kind)
    }

    /// The apply endpoint of this resource (or one of its subresources).
    pub fn endpoint<'a>(
        &'a self,
        schema: &'a crate::apply::Schema,
        subresource: Option<&'a str>,
    ) -> crate::apply::Endpoint<'a> {
        const MAIN_WITH_STATUS: &[&[&str]] = &[&["status"]];
        const STATUS: &[&[&str]] = &[&["spec"]];
        let reset_fields: &[&[&str]] = match subresource {
            Some("status") => STATUS,
            None if self.strategy.has_status => MAIN_WITH_STATUS,
            _ => &[],
        };
        crate::apply::Endpoint {
            schema,
            api_version: &self.api_version,
            kind: &self.info.kind,
            subresource,
            reset_fields,
        }
    }

    pub fn decode_kv(&self, kv: &KeyValue) -> ApiResult<Value> {
        self.decode(&kv.value, kv.mod_revision)
    }
}

/// Encodes an object for the store: resourceVersion and selfLink are not stored (left out as
/// it is written, without a copy of the object).
fn encode(obj: &Value) -> ApiResult<Vec<u8>> {
    serde_json::to_vec(&Stored(obj))
        .map_err(|e| ApiError::internal(format!("encoding object: {e}")))
}

/// Serializes an object as [`encode`] stores it.
struct Stored<'a>(&'a Value);

/// Serializes a map without the given keys.
struct Without<'a>(&'a Map<String, Value>, &'static [&'static str]);

impl serde::Serialize for Without<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let kept = || self.0.iter().filter(|(k, _)| !self.1.contains(&k.as_str()));
        let mut map = s.serialize_map(Some(kept().count()))?;
        for (k, v) in kept() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl serde::Serialize for Stored<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let Value::Object(o) = self.0 else {
            return self.0.serialize(s);
        };
        let mut map = s.serialize_map(Some(o.len()))?;
        for (k, v) in o {
            match v {
                Value::Object(m) if k == "metadata" => {
                    map.serialize_entry(k, &Without(m, &["resourceVersion", "selfLink"]))?
                }
                v => map.serialize_entry(k, v)?,
            }
        }
        map.end()
    }
}

/// Whether two objects are equal but for `metadata.resourceVersion` (compared in place: no
/// copies of either).
fn same_but_rv(a: &Value, b: &Value) -> bool {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return a == b;
    };
    let meta_equal = |x: Option<&Value>, y: Option<&Value>| match (x, y) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let fields = |m: &'_ serde_json::Map<String, Value>| {
                m.iter()
                    .filter(|(k, _)| k.as_str() != "resourceVersion")
                    .count()
            };
            fields(x) == fields(y)
                && x.iter()
                    .filter(|(k, _)| k.as_str() != "resourceVersion")
                    .all(|(k, v)| y.get(k) == Some(v))
        }
        (x, y) => x == y,
    };
    a.len() == b.len()
        && meta_equal(a.get("metadata"), b.get("metadata"))
        && a.iter()
            .filter(|(k, _)| k.as_str() != "metadata")
            .all(|(k, v)| b.get(k) == Some(v))
}

/// Options of a list (and the initial state of a watch).
#[derive(Debug, Default)]
pub struct ListOptions {
    pub label: Option<LabelSelector>,
    pub field: Option<FieldSelector>,
    pub limit: usize,
    pub continue_token: Option<String>,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
}

pub struct ListOutcome {
    pub items: Vec<Value>,
    pub revision: u64,
    pub continue_token: Option<String>,
    pub remaining: Option<u64>,
}

/// Options of a delete (`metav1.DeleteOptions`).
#[derive(Debug, Default, Clone)]
pub struct DeleteOptions {
    pub grace_period_seconds: Option<i64>,
    pub propagation_policy: Option<String>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
    pub dry_run: bool,
}

impl DeleteOptions {
    /// From a DeleteOptions body (may be empty) and the query string.
    pub fn parse(body: Option<&Value>, query: &crate::request::Query) -> ApiResult<Self> {
        let mut o = DeleteOptions {
            dry_run: query.dry_run()?,
            grace_period_seconds: query.int("gracePeriodSeconds")?,
            propagation_policy: query.get("propagationPolicy").map(str::to_string),
            ..Default::default()
        };
        if query.get("orphanDependents") == Some("true") && o.propagation_policy.is_none() {
            o.propagation_policy = Some("Orphan".into());
        }
        if let Some(b) = body {
            if !b.is_object() {
                return Err(ApiError::bad_request(format!(
                    "json: cannot unmarshal {} into Go value of type v1.DeleteOptions",
                    if b.is_array() { "array" } else { "value" }
                )));
            }
            if let Some(root) =
                crate::schema_meta::definition("io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions")
            {
                if let Some(e) = crate::field_validation::type_error(b, root, "DeleteOptions") {
                    return Err(ApiError::bad_request(e));
                }
            }
            if let Some(g) = b.get("gracePeriodSeconds").and_then(Value::as_i64) {
                o.grace_period_seconds = Some(g);
            }
            if let Some(p) = b.get("propagationPolicy").and_then(Value::as_str) {
                o.propagation_policy = Some(p.to_string());
            }
            if b.get("orphanDependents") == Some(&Value::Bool(true))
                && o.propagation_policy.is_none()
            {
                o.propagation_policy = Some("Orphan".into());
            }
            if let Some(pre) = b.get("preconditions") {
                o.precondition_uid = pre.get("uid").and_then(Value::as_str).map(str::to_string);
                o.precondition_rv = pre
                    .get("resourceVersion")
                    .and_then(Value::as_str)
                    .map(str::to_string);
            }
            if let Some(d) = b.get("dryRun").and_then(Value::as_array) {
                if d.iter().any(|v| v == "All") {
                    o.dry_run = true;
                }
            }
        }
        if let Some(p) = &o.propagation_policy {
            if !matches!(p.as_str(), "Orphan" | "Background" | "Foreground") {
                return Err(ApiError::invalid(
                    "DeleteOptions",
                    "",
                    "",
                    vec![Cause::not_supported(
                        "propagationPolicy",
                        &json!(p),
                        &["Foreground", "Background", "Orphan", "nil"],
                    )],
                ));
            }
        }
        if let Some(g) = o.grace_period_seconds {
            if g < 0 {
                o.grace_period_seconds = Some(0);
            }
        }
        Ok(o)
    }
}

/// Continue tokens as upstream writes them: base64url of
/// `{"v":"meta.k8s.io/v1","rv":N,"start":"<key after the prefix>\u0000"}`.
pub fn encode_continue(revision: u64, start_after_key: &str) -> String {
    let body =
        json!({"v": "meta.k8s.io/v1", "rv": revision, "start": format!("{start_after_key}\u{0}")});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(body.to_string())
}

fn decode_continue(token: &str) -> ApiResult<(u64, String)> {
    let bad = || {
        ApiError::bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
    };
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    if v.get("v").and_then(Value::as_str) != Some("meta.k8s.io/v1") {
        return Err(bad());
    }
    let rv = v.get("rv").and_then(Value::as_u64).ok_or_else(bad)?;
    let start = v.get("start").and_then(Value::as_str).ok_or_else(bad)?;
    if start.contains("..") || start.starts_with('/') && start.len() == 1 {
        return Err(bad());
    }
    Ok((rv, start.to_string()))
}

/// Whether an object passes the list/watch selectors.
pub fn selected(obj: &Value, label: Option<&LabelSelector>, field: Option<&FieldSelector>) -> bool {
    let labels = obj
        .get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object);
    label.is_none_or(|l| l.matches(labels)) && field.is_none_or(|f| f.matches(obj))
}

/// The generic registry over the store.
#[derive(Clone)]
pub struct Registry {
    pub store: Store,
    /// Where Services get their ClusterIPs and node ports.
    pub service_ranges: std::sync::Arc<ServiceRanges>,
}

fn is_service(ctx: &ResourceCtx) -> bool {
    ctx.info.group.is_empty() && ctx.info.plural == "services"
}

impl Registry {
    pub fn new(store: Store, service_ranges: ServiceRanges) -> Self {
        Registry {
            store,
            service_ranges: std::sync::Arc::new(service_ranges),
        }
    }

    /// Releases what a removed object held (Service IPs and ports).
    async fn after_remove(&self, ctx: &ResourceCtx, obj: &Value) {
        if is_service(ctx) {
            crate::service_alloc::release(&self.store, obj).await;
        }
    }

    pub fn get(&self, ctx: &ResourceCtx, name: &str) -> ApiResult<Value> {
        match self.store.get(&ctx.key(name))? {
            Some(kv) => ctx.decode_kv(&kv),
            None => Err(ctx.not_found(name)),
        }
    }

    /// Admits a create into `ns` as upstream's NamespaceLifecycle admission does: the
    /// namespace must exist and must not be terminating. `name` is the object's name (or its
    /// generateName) for the error message.
    pub fn check_namespace_for_create(
        &self,
        ctx: &ResourceCtx,
        ns: &str,
        name: &str,
    ) -> ApiResult<()> {
        let kv = self.store.get(&format!("/registry/core/namespaces/{ns}"))?;
        let Some(kv) = kv else {
            return Err(ApiError::not_found("", "namespaces", ns));
        };
        let obj: Value = serde_json::from_slice(&kv.value).unwrap_or(Value::Null);
        let terminating = obj
            .get("metadata")
            .and_then(|m| m.get("deletionTimestamp"))
            .is_some()
            || obj
                .get("status")
                .and_then(|s| s.get("phase"))
                .and_then(Value::as_str)
                == Some("Terminating");
        if terminating {
            let name = if name.is_empty() { "Unknown" } else { name };
            let resource = crate::errors::qualified(ctx.group(), ctx.resource());
            let mut err = ApiError::forbidden(
                ctx.group(),
                ctx.resource(),
                name,
                format!("{resource} {name:?} is forbidden: unable to create new content in namespace {ns} because it is being terminated"),
            );
            if let Some(Value::Object(d)) = err.details.as_mut() {
                d.insert(
                    "causes".into(),
                    json!([{
                        "reason": "NamespaceTerminating",
                        "message": format!("namespace {ns} is being terminated"),
                        "field": "metadata.namespace",
                    }]),
                );
            }
            return Err(err);
        }
        Ok(())
    }

    pub fn list(&self, ctx: &ResourceCtx, opts: &ListOptions) -> ApiResult<ListOutcome> {
        let prefix = ctx.prefix();
        let current = self.store.current_revision();
        let mut from: Option<String> = None;
        if let Some(token) = opts.continue_token.as_deref().filter(|t| !t.is_empty()) {
            if opts
                .resource_version
                .as_deref()
                .is_some_and(|r| !r.is_empty())
            {
                return Err(ApiError::bad_request(
                    "specifying resource version is not allowed when using continue",
                ));
            }
            let (_, start) = decode_continue(token)?;
            from = Some(format!("{prefix}{start}"));
        } else if let Some(rv) = opts.resource_version.as_deref().filter(|r| !r.is_empty()) {
            let n: u64 = rv
                .parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv}")))?;
            match opts.resource_version_match.as_deref() {
                Some("Exact") if n != current => {
                    return Err(ApiError::expired(format!(
                        "The resourceVersion for the provided list is too old. (requested {n}, current {current})"
                    )));
                }
                _ if n > current => {
                    let mut e = ApiError::timeout(format!(
                        "Too large resource version: {n}, current: {current}"
                    ));
                    e.details = Some(
                        json!({"causes":[{"reason":"ResourceVersionTooLarge","message":"Too large resource version"}],"retryAfterSeconds":1}),
                    );
                    e.retry_after = Some(1);
                    return Err(e);
                }
                _ => {}
            }
        } else if opts
            .resource_version_match
            .as_deref()
            .is_some_and(|m| !m.is_empty())
        {
            return Err(ApiError::bad_request(
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            ));
        }
        let label = opts.label.as_ref().filter(|l| !l.is_empty());
        let field = opts.field.as_ref().filter(|f| !f.is_empty());
        let limit = opts.limit;
        let batch = if limit == 0 { 0 } else { limit.max(64) };
        let mut items = Vec::new();
        let mut revision = None;
        let mut last_key: Option<String> = None;
        let mut more_after_last = false;
        loop {
            let page = self.store.list(&prefix, from.as_deref(), batch)?;
            revision.get_or_insert(page.revision);
            let n = page.items.len();
            let mut page_last: Option<String> = None;
            for (i, kv) in page.items.into_iter().enumerate() {
                page_last = Some(kv.key.clone());
                let obj = ctx.decode_kv(&kv)?;
                if !selected(&obj, label, field) {
                    continue;
                }
                items.push(obj);
                if limit > 0 && items.len() >= limit {
                    last_key = Some(kv.key.clone());
                    more_after_last = i + 1 < n || page.more;
                    break;
                }
            }
            if last_key.is_some() || !page.more || n == 0 {
                break;
            }
            // The next page starts just after this page's last key.
            from = page_last.map(|k| format!("{k}\u{0}"));
            if from.is_none() {
                break;
            }
        }
        let revision = revision.unwrap_or(current);
        let (continue_token, remaining) = match (last_key, more_after_last) {
            (Some(k), true) => {
                // Upstream counts the rest only when no selector filters it.
                let remaining = if label.is_none() && field.is_none() {
                    self.store.count_after(&prefix, &k).ok().map(|n| n as u64)
                } else {
                    None
                };
                (
                    Some(encode_continue(
                        revision,
                        k.strip_prefix(&prefix).unwrap_or(&k),
                    )),
                    remaining,
                )
            }
            _ => (None, None),
        };
        for item in &mut items {
            if let Some(o) = item.as_object_mut() {
                o.remove("kind");
                o.remove("apiVersion");
            }
        }
        Ok(ListOutcome {
            items,
            revision,
            continue_token,
            remaining,
        })
    }

    /// Creates an object (already decoded and checked against the URL).
    /// Creates an object. `manager` records an Update entry in managedFields (None when the
    /// caller recorded them already, as server-side apply does).
    pub async fn create(
        &self,
        ctx: &ResourceCtx,
        mut obj: Value,
        dry_run: bool,
        manager: Option<&str>,
    ) -> ApiResult<Value> {
        if ctx.info.custom.as_ref().is_some_and(|c| c.terminating) {
            return Err(ApiError::new(
                405,
                "MethodNotAllowed",
                "create not allowed while custom resource definition is terminating",
            )
            .with_details(json!({"group": ctx.group(), "kind": ctx.resource()})));
        }
        let Some(m) = meta::metadata_mut(&mut obj) else {
            return Err(ApiError::bad_request("object must be a JSON object"));
        };
        let name = m
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let generate = m
            .get("generateName")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let requested_name = name.clone();
        let name = if name.is_empty() && !generate.is_empty() {
            let n = format!("{generate}{}", meta::name_suffix());
            m.insert("name".into(), json!(n));
            n
        } else {
            name
        };
        m.insert("uid".into(), json!(meta::new_uid()));
        m.insert("creationTimestamp".into(), json!(meta::now_rfc3339()));
        m.remove("resourceVersion");
        m.remove("selfLink");
        if ctx.info.namespaced() {
            if let Some(ns) = &ctx.namespace {
                m.insert("namespace".into(), json!(ns));
            }
        } else {
            m.remove("namespace");
        }
        crate::admission::default(ctx, &mut obj);
        if let Some(manager) = manager {
            let schema = ctx.apply_schema();
            crate::apply::record_update(
                &ctx.endpoint(&schema, None),
                None,
                &mut obj,
                manager,
                &meta::now_rfc3339(),
            );
        }
        // NamespaceLifecycle comes first among the admission plugins, before validation.
        if let Some(ns) = ctx.namespace.as_deref().filter(|_| ctx.info.namespaced()) {
            let shown = if requested_name.is_empty() {
                &generate
            } else {
                &requested_name
            };
            self.check_namespace_for_create(ctx, ns, shown)?;
        }
        crate::admission::admit_create(&self.store, ctx, &mut obj)?;
        ctx.strategy.prepare_for_create(&mut obj);
        crate::admission::finish(ctx, &mut obj);
        self.validate(ctx, &obj, None, &name, true)?;
        let key = ctx.key(&name);
        if self.store.get(&key)?.is_some() {
            return Err(ApiError::already_exists(ctx.group(), ctx.resource(), &name));
        }
        crate::quota::admit_create(&self.store, ctx, &obj, dry_run).await?;
        if dry_run {
            return Ok(obj);
        }
        let ns = ctx.namespace.clone().unwrap_or_default();
        if is_service(ctx) {
            crate::service_alloc::allocate(&self.store, &self.service_ranges, &mut obj, &ns, &name)
                .await?;
            crate::validation::normalize_service_cluster_ips(&mut obj, None);
        }
        match self.store.create(&key, ctx.encode(&obj)?).await {
            Ok(kv) => ctx.written(obj, &kv),
            Err(e) => {
                self.after_remove(ctx, &obj).await;
                match e {
                    StoreError::AlreadyExists => {
                        Err(ApiError::already_exists(ctx.group(), ctx.resource(), &name))
                    }
                    e => Err(e.into()),
                }
            }
        }
    }

    fn validate(
        &self,
        ctx: &ResourceCtx,
        obj: &Value,
        old: Option<&Value>,
        name: &str,
        kind_checks: bool,
    ) -> ApiResult<()> {
        let mut causes = Vec::new();
        let generate = meta::meta_str(obj, "generateName").unwrap_or("");
        if name.is_empty() {
            causes.push(Cause::required(
                "metadata.name",
                "name or generateName is required",
            ));
        } else if old.is_none() {
            let rule_errors = meta::validate_name(name, ctx.strategy.name_rule);
            for e in rule_errors {
                let field = if !generate.is_empty() && name.starts_with(generate) {
                    "metadata.generateName"
                } else {
                    "metadata.name"
                };
                let shown = if field == "metadata.generateName" {
                    generate
                } else {
                    name
                };
                causes.push(Cause::invalid(field, &json!(shown), &e));
            }
        }
        if let Some(e) = crate::validation::quantity_decode_error(
            &ctx.info.group,
            &ctx.info.version,
            &ctx.info.kind,
            obj,
        ) {
            return Err(ApiError::bad_request(e));
        }
        if kind_checks {
            causes.extend(ctx.strategy.validate(obj, old));
        } else if let Some(m) = obj.get("metadata").and_then(Value::as_object) {
            causes.extend(meta::validate_labels_annotations(m, "metadata"));
        }
        if let Some(c) = &ctx.info.custom {
            causes.extend(crate::crd::validate(&c.schema, obj));
        }
        if causes.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(&ctx.info.kind, ctx.group(), name, causes))
        }
    }

    /// Reads the object, computes its new state with `mutate`, and writes it with
    /// compare-and-swap, retrying on races unless the caller pinned a resourceVersion.
    /// Returns the stored object, or the would-be object for a dry run.
    pub async fn update_with<F>(
        &self,
        ctx: &ResourceCtx,
        name: &str,
        subresource: Option<&str>,
        dry_run: bool,
        manager: Option<&str>,
        mut mutate: F,
    ) -> ApiResult<Value>
    where
        F: FnMut(&Value) -> ApiResult<Value>,
    {
        let key = ctx.key(name);
        for _ in 0..64 {
            let Some(kv) = self.store.get(&key)? else {
                return Err(ctx.not_found(name));
            };
            let current = ctx.decode_kv(&kv)?;
            let mut new = mutate(&current)?;
            if !new.is_object() {
                return Err(ApiError::bad_request("the object must be a JSON object"));
            }
            let pinned = meta::meta_str(&new, "resourceVersion")
                .filter(|s| !s.is_empty())
                .map(str::to_string);
            if let Some(rv) = &pinned {
                if *rv != kv.mod_revision.to_string() {
                    return Err(ApiError::stale(ctx.group(), ctx.resource(), name));
                }
            }
            crate::admission::default(ctx, &mut new);
            if let Some(manager) = manager {
                let schema = ctx.apply_schema();
                crate::apply::record_update(
                    &ctx.endpoint(&schema, subresource),
                    Some(&current),
                    &mut new,
                    manager,
                    &meta::now_rfc3339(),
                );
            }
            crate::admission::admit_update(ctx, &mut new, &current);
            ctx.strategy
                .prepare_for_update(&mut new, &current, subresource);
            crate::admission::finish(ctx, &mut new);
            if let Some(o) = new.as_object_mut() {
                o.insert("apiVersion".into(), json!(ctx.info.api_version()));
                o.insert("kind".into(), json!(ctx.info.kind));
            }
            self.validate(ctx, &new, Some(&current), name, subresource.is_none())?;
            // A deleting object whose last finalizer is gone is removed.
            let deleting = meta::meta_str(&new, "deletionTimestamp").is_some();
            let no_finalizers = new
                .get("metadata")
                .and_then(|m| m.get("finalizers"))
                .and_then(Value::as_array)
                .is_none_or(|f| f.is_empty());
            if deleting && no_finalizers && !self.spec_finalizers_pending(ctx, &new) {
                if dry_run {
                    return Ok(new);
                }
                match self.store.delete(&key, Some(kv.mod_revision)).await {
                    Ok(_) => {
                        self.after_remove(ctx, &current).await;
                        return Ok(new);
                    }
                    Err(StoreError::Conflict { .. }) if pinned.is_none() => continue,
                    Err(StoreError::Conflict { .. }) => {
                        return Err(ApiError::stale(ctx.group(), ctx.resource(), name))
                    }
                    Err(StoreError::NotFound) => return Err(ctx.not_found(name)),
                    Err(e) => return Err(e.into()),
                }
            }
            if same_but_rv(&new, &current) {
                return Ok(current);
            }
            if subresource.is_none() {
                crate::quota::admit_update(&self.store, ctx, &new, &current, dry_run).await?;
            }
            if dry_run {
                return Ok(new);
            }
            match self
                .store
                .update(&key, kv.mod_revision, ctx.encode(&new)?)
                .await
            {
                Ok(kv) => return ctx.written(new, &kv),
                Err(StoreError::Conflict { .. }) if pinned.is_none() => continue,
                Err(StoreError::Conflict { .. }) => {
                    return Err(ApiError::stale(ctx.group(), ctx.resource(), name))
                }
                Err(StoreError::NotFound) => return Err(ctx.not_found(name)),
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::new(
            409,
            "Conflict",
            "too many concurrent updates; please retry",
        ))
    }

    /// Namespaces stay while `spec.finalizers` is non-empty.
    fn spec_finalizers_pending(&self, ctx: &ResourceCtx, obj: &Value) -> bool {
        ctx.info.group.is_empty()
            && ctx.info.plural == "namespaces"
            && obj
                .get("spec")
                .and_then(|s| s.get("finalizers"))
                .and_then(Value::as_array)
                .is_some_and(|f| !f.is_empty())
    }

    /// Deletes an object. Returns the object and whether it is gone now (false when
    /// finalizers or graceful termination keep it).
    pub async fn delete(
        &self,
        ctx: &ResourceCtx,
        name: &str,
        opts: &DeleteOptions,
    ) -> ApiResult<(Value, bool)> {
        if ctx.info.group.is_empty()
            && ctx.info.plural == "namespaces"
            && IMMORTAL_NAMESPACES.contains(&name)
        {
            // Upstream's NamespaceLifecycle admission.
            return Err(ApiError::forbidden(
                "",
                "namespaces",
                name,
                format!("namespaces {name:?} is forbidden: this namespace may not be deleted"),
            ));
        }
        let key = ctx.key(name);
        for _ in 0..64 {
            let Some(kv) = self.store.get(&key)? else {
                return Err(ctx.not_found(name));
            };
            let current = ctx.decode_kv(&kv)?;
            let uid = meta::meta_str(&current, "uid").unwrap_or("");
            if let Some(want) = &opts.precondition_uid {
                if want != uid {
                    return Err(ApiError::conflict(
                        "",
                        &ctx.info.kind,
                        name,
                        &format!("the UID in the precondition ({want}) does not match the UID in record ({uid}). The object might have been deleted and then recreated"),
                    ));
                }
            }
            if let Some(want) = &opts.precondition_rv {
                let have = kv.mod_revision.to_string();
                if *want != have {
                    return Err(ApiError::conflict(
                        "",
                        &ctx.info.kind,
                        name,
                        &format!("the ResourceVersion in the precondition ({want}) does not match the ResourceVersion in record ({have}). The object might have been modified"),
                    ));
                }
            }
            let mut next = current.clone();
            let mut changed = false;
            let already_deleting = meta::meta_str(&current, "deletionTimestamp").is_some();
            let is_crd = ctx.info.group == "apiextensions.k8s.io"
                && ctx.info.plural == "customresourcedefinitions";
            if is_crd && !already_deleting {
                // Its custom resources go first (the cleanup controller in crd.rs).
                crate::crd::mark_deleting(&mut next);
                changed = true;
            }
            if let Some(m) = meta::metadata_mut(&mut next) {
                let mut finalizers: Vec<Value> = m
                    .get("finalizers")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let wanted = match opts.propagation_policy.as_deref() {
                    Some("Foreground") => Some("foregroundDeletion"),
                    Some("Orphan") => Some("orphan"),
                    _ => None,
                };
                if let Some(f) = wanted {
                    if !finalizers.iter().any(|x| x == f) && !already_deleting {
                        finalizers.push(json!(f));
                        m.insert("finalizers".into(), Value::Array(finalizers.clone()));
                        changed = true;
                    }
                }
                let is_namespace = ctx.info.group.is_empty() && ctx.info.plural == "namespaces";
                let grace = ctx
                    .strategy
                    .graceful_delete_seconds(&current, opts.grace_period_seconds);
                let blocked = !finalizers.is_empty() || is_namespace;
                if blocked || grace.is_some() {
                    if !already_deleting {
                        let secs = grace.unwrap_or(0);
                        let when = chrono::Utc::now() + chrono::Duration::seconds(secs);
                        m.insert(
                            "deletionTimestamp".into(),
                            json!(when.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
                        );
                        m.insert("deletionGracePeriodSeconds".into(), json!(secs));
                        if ctx.strategy.tracks_generation {
                            let g = m.get("generation").and_then(Value::as_i64).unwrap_or(0);
                            m.insert("generation".into(), json!(g + 1));
                        }
                        changed = true;
                    } else if let (Some(g), Some(cur)) = (
                        grace,
                        m.get("deletionGracePeriodSeconds").and_then(Value::as_i64),
                    ) {
                        // A shorter grace period may be requested later.
                        if g < cur {
                            let when = chrono::Utc::now() + chrono::Duration::seconds(g);
                            m.insert(
                                "deletionTimestamp".into(),
                                json!(when.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
                            );
                            m.insert("deletionGracePeriodSeconds".into(), json!(g));
                            changed = true;
                        }
                    }
                    if is_namespace {
                        if let Some(o) = next.as_object_mut() {
                            let status = o.entry("status").or_insert_with(|| json!({}));
                            match status.as_object_mut() {
                                Some(st) => {
                                    st.insert("phase".into(), json!("Terminating"));
                                }
                                None => *status = json!({"phase": "Terminating"}),
                            }
                        }
                        changed = changed || !already_deleting;
                        if next
                            .get("spec")
                            .and_then(|s| s.get("finalizers"))
                            .and_then(Value::as_array)
                            .is_none_or(|f| f.is_empty())
                            && finalizers.is_empty()
                        {
                            // Nothing holds it: remove now.
                            return self.remove(ctx, name, &kv, &current, opts).await;
                        }
                    }
                    if !changed || opts.dry_run {
                        return Ok((next, false));
                    }
                    match self
                        .store
                        .update(&key, kv.mod_revision, ctx.encode(&next)?)
                        .await
                    {
                        Ok(kv) => return Ok((ctx.decode_kv(&kv)?, false)),
                        Err(StoreError::Conflict { .. }) => continue,
                        Err(StoreError::NotFound) => return Err(ctx.not_found(name)),
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            match self.remove(ctx, name, &kv, &current, opts).await {
                Err(e) if e.code == 409 && e.reason == "Conflict" && e.message.is_empty() => {
                    continue
                }
                other => return other,
            }
        }
        Err(ApiError::new(
            409,
            "Conflict",
            "too many concurrent updates; please retry",
        ))
    }

    async fn remove(
        &self,
        ctx: &ResourceCtx,
        name: &str,
        kv: &KeyValue,
        current: &Value,
        opts: &DeleteOptions,
    ) -> ApiResult<(Value, bool)> {
        if opts.dry_run {
            return Ok((current.clone(), true));
        }
        match self
            .store
            .delete(&ctx.key(name), Some(kv.mod_revision))
            .await
        {
            Ok(_) => {
                self.after_remove(ctx, current).await;
                Ok((current.clone(), true))
            }
            Err(StoreError::Conflict { .. }) => Err(ApiError::new(409, "Conflict", "")),
            Err(StoreError::NotFound) => Err(ctx.not_found(name)),
            Err(e) => Err(e.into()),
        }
    }
}

/// The `metadata` of a list response.
pub fn list_metadata(outcome: &ListOutcome) -> Value {
    let mut m = Map::new();
    m.insert(
        "resourceVersion".into(),
        json!(outcome.revision.to_string()),
    );
    if let Some(c) = &outcome.continue_token {
        m.insert("continue".into(), json!(c));
    }
    if let Some(r) = outcome.remaining {
        m.insert("remainingItemCount".into(), json!(r));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_form_leaves_out_resource_version_and_self_link() {
        let obj = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "a", "resourceVersion": "7", "selfLink": "/x", "uid": "u"},
            "spec": {"nodeName": "n", "metadata": {"resourceVersion": "kept below the top"}},
        });
        let stored: Value = serde_json::from_slice(&encode(&obj).unwrap()).unwrap();
        let mut want = obj.clone();
        let m = want["metadata"].as_object_mut().unwrap();
        m.remove("resourceVersion");
        m.remove("selfLink");
        assert_eq!(stored, want);
        // Key order is kept.
        let keys: Vec<_> = stored["metadata"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(keys, ["name", "uid"]);
        assert_eq!(encode(&json!([1])).unwrap(), b"[1]");
    }

    #[test]
    fn continue_token_round_trips() {
        let t = encode_continue(20692, "list-1");
        assert_eq!(
            t,
            "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MjA2OTIsInN0YXJ0IjoibGlzdC0xXHUwMDAwIn0"
        );
        let (rv, start) = decode_continue(&t).unwrap();
        assert_eq!(rv, 20692);
        assert_eq!(start, "list-1\u{0}");
        assert!(decode_continue("!!!").is_err());
    }

    fn ctx(group: &str, version: &str, plural: &str) -> ResourceCtx {
        let table = crate::resources::ResourceTable::builtin();
        let info = table.get(group, version, plural).cloned().unwrap();
        ResourceCtx::new(info, Some("default".into()))
    }

    /// An object just written is served exactly as reading it back from the store serves it.
    #[test]
    fn written_matches_decoding_the_stored_bytes() {
        let kv = |ctx: &ResourceCtx, obj: &Value| KeyValue {
            key: "k".into(),
            value: ctx.encode(obj).unwrap(),
            create_revision: 7,
            mod_revision: 9,
        };
        let pods = ctx("", "v1", "pods");
        let pod = json!({
            "metadata": {"name": "p", "resourceVersion": "3", "selfLink": "/x",
                "namespace": "default", "uid": "u", "labels": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "i"}], "n": 1.5, "z": null},
            "kind": "Pod",
        });
        let stored = kv(&pods, &pod);
        let got = pods.written(pod, &stored).unwrap();
        let want = pods.decode_kv(&stored).unwrap();
        assert_eq!(got, want);
        assert_eq!(
            serde_json::to_string(&got).unwrap(),
            serde_json::to_string(&want).unwrap(),
            "same key order"
        );
        assert_eq!(got["metadata"]["resourceVersion"], "9");
        // Stored in another form: read back through the bytes.
        let events = ctx("events.k8s.io", "v1", "events");
        let ev = json!({"metadata": {"name": "e"}, "note": "hi", "regarding": {"name": "p"}});
        let stored = kv(&events, &ev);
        let got = events.written(ev, &stored).unwrap();
        let want = events.decode_kv(&stored).unwrap();
        assert_eq!(
            serde_json::to_string(&got).unwrap(),
            serde_json::to_string(&want).unwrap()
        );
    }

    #[test]
    fn same_but_rv_ignores_only_the_resource_version() {
        let a = json!({"metadata": {"name": "a", "resourceVersion": "1"}, "spec": {"x": 1}});
        let b = json!({"metadata": {"resourceVersion": "2", "name": "a"}, "spec": {"x": 1}});
        assert!(same_but_rv(&a, &b));
        assert!(same_but_rv(
            &a,
            &json!({"metadata": {"name": "a"}, "spec": {"x": 1}})
        ));
        assert!(!same_but_rv(
            &a,
            &json!({"metadata": {"name": "b"}, "spec": {"x": 1}})
        ));
        assert!(!same_but_rv(
            &a,
            &json!({"metadata": {"name": "a"}, "spec": {"x": 2}})
        ));
        assert!(!same_but_rv(
            &a,
            &json!({"metadata": {"name": "a", "uid": "u"}, "spec": {"x": 1}})
        ));
        assert!(!same_but_rv(&a, &json!({"metadata": {"name": "a"}})));
        assert!(!same_but_rv(
            &a,
            &json!({"metadata": {"name": "a"}, "spec": {"x": 1}, "status": {}})
        ));
        assert!(!same_but_rv(
            &json!({"spec": 1}),
            &json!({"metadata": {}, "spec": 1})
        ));
    }
}
