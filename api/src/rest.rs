//! The generic REST handlers: one set for every resource, dispatching on the verb and
//! subresource; the per-kind differences live in the strategy.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{header, HeaderMap, Method, StatusCode};
use serde_json::{json, Map, Value};

use crate::errors::{ApiError, ApiResult};
use crate::meta;
use crate::registry::{list_metadata, DeleteOptions, ListOptions, ResourceCtx};
use crate::request::{body_format, negotiate, BodyFormat, Output, Query, ResourcePath};
use crate::resources::ResourceInfo;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::server::AppState;
use crate::table::{render_table, IncludeObject};

/// Upstream's request body limit.
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// A rendered response.
pub fn respond(status: StatusCode, output: Output, body: &Value) -> Response {
    match output {
        Output::Yaml => match serde_yaml::to_string(body) {
            Ok(s) => (status, [(header::CONTENT_TYPE, "application/yaml")], s).into_response(),
            Err(e) => ApiError::internal(format!("encoding yaml: {e}")).into_response(),
        },
        _ => match serde_json::to_vec(body) {
            Ok(v) => (status, [(header::CONTENT_TYPE, "application/json")], v).into_response(),
            Err(e) => ApiError::internal(format!("encoding json: {e}")).into_response(),
        },
    }
}

/// A rendered response with `Warning` headers (upstream's `299 - "<text>"` form).
pub fn respond_warn(
    status: StatusCode,
    output: Output,
    body: &Value,
    warnings: &[String],
) -> Response {
    let mut r = respond(status, output, body);
    for w in warnings {
        let text = format!("299 - {}", serde_json::Value::String(w.clone()));
        if let Ok(v) = http::HeaderValue::from_str(&text) {
            r.headers_mut().append(header::WARNING, v);
        }
    }
    r
}

/// The request as the resource handlers see it.
pub struct ResourceRequest {
    pub method: Method,
    pub headers: HeaderMap,
    pub query: Query,
    pub path: ResourcePath,
    pub body: Bytes,
    /// The connection's upgrade (exec, attach and port-forward streams).
    pub upgrade: Option<hyper::upgrade::OnUpgrade>,
}

/// Parses a request body (JSON or YAML) into an object.
pub fn decode_object(body: &[u8], format: BodyFormat, kind: &str) -> ApiResult<Value> {
    if format == BodyFormat::Protobuf {
        return crate::protobuf::decode_k8s_protobuf(body).map_err(|e| match e {
            crate::protobuf::ProtobufError::UnknownKind { .. } => ApiError::unknown_body_format(),
            e => ApiError::bad_request(format!(
                "the object provided is unrecognized (must be of type {kind}): {e}"
            )),
        });
    }
    let parsed: Result<Value, String> = match format {
        BodyFormat::Yaml => serde_yaml::from_slice::<Value>(body).map_err(|e| e.to_string()),
        _ => serde_json::from_slice::<Value>(body).map_err(|e| e.to_string()),
    };
    match parsed {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {kind}): couldn't get version/kind; json parse error: cannot unmarshal into Go value of type struct"
        ))),
        Err(e) => {
            let snippet: String = String::from_utf8_lossy(&body[..body.len().min(30)]).into_owned();
            Err(ApiError::bad_request(format!(
                "the object provided is unrecognized (must be of type {kind}): couldn't get version/kind; json parse error: {e} ({snippet} ...)"
            )))
        }
    }
}

/// Checks the body's apiVersion/kind against the endpoint.
fn check_type(
    info: &ResourceInfo,
    obj: &Value,
    expected_kind: &str,
    expected_av: &str,
) -> ApiResult<()> {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let av = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if kind.is_empty() {
        return Err(ApiError::bad_request(format!(
            "Object 'Kind' is missing in '{}'",
            truncate(&obj.to_string(), 200)
        )));
    }
    if av.is_empty() {
        return Err(ApiError::bad_request(format!(
            "Object 'apiVersion' is missing in '{}'",
            truncate(&obj.to_string(), 200)
        )));
    }
    if kind != expected_kind {
        return Err(ApiError::bad_request(format!(
            "{kind} in version {:?} cannot be handled as a {expected_kind}: no kind {kind:?} is registered for version {av:?} in scheme \"meso\"",
            av.rsplit('/').next().unwrap_or(av)
        )));
    }
    if av != expected_av {
        let group = av.rsplit_once('/').map_or("", |(g, _)| g);
        if group != info.group {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({av}) does not match the expected API version ({expected_av})"
            )));
        }
    }
    Ok(())
}

fn truncate(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_string();
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// Label `key=value` text of a `metav1.LabelSelector`, as Scale's `status.selector`.
fn selector_string(sel: Option<&Value>) -> String {
    let Some(sel) = sel else { return String::new() };
    let mut parts: Vec<String> = Vec::new();
    if let Some(ml) = sel.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in ml {
            parts.push(format!("{k}={}", v.as_str().unwrap_or("")));
        }
    }
    if let Some(exprs) = sel.get("matchExpressions").and_then(Value::as_array) {
        for e in exprs {
            let key = e.get("key").and_then(Value::as_str).unwrap_or("");
            let values: Vec<&str> = e
                .get("values")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut values = values;
            values.sort();
            match e.get("operator").and_then(Value::as_str).unwrap_or("") {
                "In" => parts.push(format!("{key} in ({})", values.join(","))),
                "NotIn" => parts.push(format!("{key} notin ({})", values.join(","))),
                "Exists" => parts.push(key.to_string()),
                "DoesNotExist" => parts.push(format!("!{key}")),
                _ => {}
            }
        }
    }
    parts.sort_by(|a, b| {
        let key = |s: &str| {
            s.trim_start_matches('!')
                .split([' ', '='])
                .next()
                .unwrap_or("")
                .to_string()
        };
        key(a).cmp(&key(b))
    });
    parts.join(",")
}

/// The `autoscaling/v1` Scale view of a scalable object (`paths`: a custom resource's
/// `subresources.scale`; built-ins use `.spec.replicas`, `.status.replicas`, `.spec.selector`).
fn to_scale(obj: &Value, paths: Option<&crate::crd::ScalePaths>) -> Value {
    if let Some(p) = paths {
        return custom_scale(obj, p);
    }
    let m = obj.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let mut meta = Map::new();
    for k in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = m.get(k) {
            meta.insert(k.into(), v.clone());
        }
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": meta,
        "spec": {"replicas": obj.get("spec").and_then(|s| s.get("replicas")).cloned().unwrap_or(json!(1))},
        "status": {
            "replicas": obj.get("status").and_then(|s| s.get("replicas")).cloned().unwrap_or(json!(0)),
            "selector": selector_string(obj.get("spec").and_then(|s| s.get("selector"))),
        }
    })
}

/// The Scale of a custom resource: replicas from its scale paths (0 when absent), the
/// selector as the label selector path's string.
fn custom_scale(obj: &Value, p: &crate::crd::ScalePaths) -> Value {
    let m = obj.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let mut meta = Map::new();
    for k in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = m.get(k) {
            meta.insert(k.into(), v.clone());
        }
    }
    let replicas = |path: &str| {
        crate::crd::get_path(obj, path)
            .and_then(Value::as_i64)
            .unwrap_or(0)
    };
    let mut status = Map::new();
    status.insert("replicas".into(), json!(replicas(&p.status_replicas)));
    if let Some(sel) = p
        .label_selector
        .as_deref()
        .and_then(|l| crate::crd::get_path(obj, l))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        status.insert("selector".into(), json!(sel));
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": meta,
        "spec": {"replicas": replicas(&p.spec_replicas)},
        "status": status,
    })
}

fn scale_paths(ctx: &ResourceCtx) -> Option<&crate::crd::ScalePaths> {
    ctx.info.custom.as_ref().and_then(|c| c.scale.as_ref())
}

impl AppState {
    /// Renders one object in the negotiated output.
    fn render_one(
        &self,
        ctx: &ResourceCtx,
        output: Output,
        query: &Query,
        obj: Value,
    ) -> ApiResult<Value> {
        match output {
            Output::Table => {
                let include = IncludeObject::parse(query.get("includeObject"))
                    .map_err(ApiError::bad_request)?;
                let rv = meta::meta_str(&obj, "resourceVersion")
                    .unwrap_or("")
                    .to_string();
                Ok(render_table(
                    &ctx.info.group,
                    &ctx.info.plural,
                    std::slice::from_ref(&obj),
                    include,
                    json!({"resourceVersion": rv}),
                    self.printer_columns(&ctx.info).as_deref(),
                    chrono::Utc::now(),
                ))
            }
            Output::Metadata => Ok(partial_metadata(&obj)),
            _ => Ok(obj),
        }
    }

    /// Handles one request to a resource path.
    pub async fn handle_resource(self: &Arc<Self>, req: ResourceRequest) -> Response {
        match self.resource_inner(req).await {
            Ok(r) => r,
            Err(e) => e.into_response(),
        }
    }

    async fn resource_inner(self: &Arc<Self>, req: ResourceRequest) -> ApiResult<Response> {
        let p = &req.path;
        let info = self
            .lookup(&p.group, &p.version, &p.resource)
            .ok_or_else(ApiError::no_resource)?;
        if info.namespaced() {
            if p.namespace.is_none() && p.name.is_some() {
                return Err(ApiError::no_resource());
            }
        } else if p.namespace.is_some() {
            return Err(ApiError::no_resource());
        }
        if let Some(sub) = &p.subresource {
            if !info.subresources.iter().any(|s| &s.name == sub) {
                return Err(ApiError::no_resource());
            }
        }
        if info.group == crate::metrics_server::GROUP {
            return crate::metrics_server::handle(self, &info, &req);
        }
        let output = negotiate(&req.headers)?;
        let ctx = ResourceCtx::new(info, p.namespace.clone());
        let watch = p.legacy_watch || req.query.flag("watch");
        match (&req.method, p.name.as_deref(), p.subresource.as_deref()) {
            (&Method::GET, None, None) if watch => self.watch(&ctx, &req, output),
            (&Method::GET, None, None) => self.list(&ctx, &req, output),
            (&Method::GET, Some(name), None | Some("status")) => {
                let obj = self.registry.get(&ctx, name)?;
                Ok(respond(
                    StatusCode::OK,
                    output,
                    &self.render_one(&ctx, output, &req.query, obj)?,
                ))
            }
            (&Method::GET, Some(name), Some("scale")) => {
                let obj = self.registry.get(&ctx, name)?;
                Ok(respond(
                    StatusCode::OK,
                    output,
                    &to_scale(&obj, scale_paths(&ctx)),
                ))
            }
            (&Method::POST, None, None) => self.create(&ctx, &req, output).await,
            (&Method::POST, Some(name), Some("binding")) => self.bind(&ctx, name, &req).await,
            (&Method::POST, Some(name), Some("token")) => {
                self.create_token(&ctx, name, &req, output).await
            }
            (&Method::POST, Some(name), Some("eviction")) => self.evict(&ctx, name, &req).await,
            (_, Some(name), Some(sub @ ("log" | "exec" | "attach" | "portforward"))) => {
                crate::proxy::pod_subresource(self, &ctx, name, sub, &req).await
            }
            (
                &Method::PUT,
                Some(name),
                sub @ (None | Some("status") | Some("scale") | Some("finalize")),
            ) => self.update(&ctx, name, sub, &req, output).await,
            (&Method::PATCH, Some(name), sub @ (None | Some("status") | Some("scale"))) => {
                self.patch(&ctx, name, sub, &req, output).await
            }
            (&Method::DELETE, Some(name), None) => self.delete(&ctx, name, &req, output).await,
            (&Method::DELETE, None, None) => self.delete_collection(&ctx, &req, output).await,
            _ => Err(ApiError::method_not_allowed()),
        }
    }

    fn list_options(&self, ctx: &ResourceCtx, q: &Query) -> ApiResult<ListOptions> {
        let label = match q.get("labelSelector").filter(|s| !s.is_empty()) {
            Some(s) => Some(LabelSelector::parse(s).map_err(|e| ApiError::bad_request(e.0))?),
            None => None,
        };
        let field = match q.get("fieldSelector").filter(|s| !s.is_empty()) {
            Some(s) => Some(
                FieldSelector::parse(s, &ctx.info.group, &ctx.info.plural)
                    .map_err(|e| ApiError::bad_request(e.0))?,
            ),
            None => None,
        };
        let limit = q.int("limit")?.unwrap_or(0).max(0) as usize;
        Ok(ListOptions {
            label,
            field,
            limit,
            continue_token: q.get("continue").map(str::to_string),
            resource_version: q.get("resourceVersion").map(str::to_string),
            resource_version_match: q.get("resourceVersionMatch").map(str::to_string),
        })
    }

    fn list(
        &self,
        ctx: &ResourceCtx,
        req: &ResourceRequest,
        output: Output,
    ) -> ApiResult<Response> {
        let opts = self.list_options(ctx, &req.query)?;
        let outcome = self.registry.list(ctx, &opts)?;
        let metadata = list_metadata(&outcome);
        let body = match output {
            Output::Table => {
                let include = IncludeObject::parse(req.query.get("includeObject"))
                    .map_err(ApiError::bad_request)?;
                let items: Vec<Value> = outcome
                    .items
                    .into_iter()
                    .map(|mut i| {
                        if let Some(o) = i.as_object_mut() {
                            o.insert("kind".into(), json!(ctx.info.kind));
                            o.insert("apiVersion".into(), json!(ctx.info.api_version()));
                        }
                        i
                    })
                    .collect();
                render_table(
                    &ctx.info.group,
                    &ctx.info.plural,
                    &items,
                    include,
                    metadata,
                    self.printer_columns(&ctx.info).as_deref(),
                    chrono::Utc::now(),
                )
            }
            Output::Metadata => json!({
                "kind": "PartialObjectMetadataList",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": metadata,
                "items": outcome.items.iter().map(partial_metadata).collect::<Vec<_>>(),
            }),
            _ => json!({
                "kind": ctx.info.list_kind,
                "apiVersion": ctx.info.api_version(),
                "metadata": metadata,
                "items": outcome.items,
            }),
        };
        Ok(respond(StatusCode::OK, output, &body))
    }

    fn watch(
        self: &Arc<Self>,
        ctx: &ResourceCtx,
        req: &ResourceRequest,
        output: Output,
    ) -> ApiResult<Response> {
        let opts = self.list_options(ctx, &req.query)?;
        let timeout = match req.query.int("timeoutSeconds")? {
            Some(t) if t > 0 => Duration::from_secs(t as u64),
            _ => Duration::from_secs(1800 + (rand_u64() % 1800)),
        };
        let include =
            IncludeObject::parse(req.query.get("includeObject")).map_err(ApiError::bad_request)?;
        let send_initial = match req.query.get("sendInitialEvents") {
            Some("true") => Some(true),
            Some("false") => Some(false),
            _ => None,
        };
        let request = crate::watch::WatchRequest {
            ctx: ctx.clone(),
            label: opts.label,
            field: opts.field,
            resource_version: opts.resource_version,
            send_initial_events: send_initial,
            bookmarks: req.query.flag("allowWatchBookmarks"),
            timeout,
            output,
            include_object: include,
        };
        let state = self.clone();
        let render_ctx = ctx.clone();
        let render: crate::watch::Renderer =
            Arc::new(move |obj: Value, first: bool| match output {
                Output::Table
                    if obj.get("kind").and_then(Value::as_str)
                        == Some(render_ctx.info.kind.as_str())
                        && meta::meta_str(&obj, "name").is_some() =>
                {
                    let rv = meta::meta_str(&obj, "resourceVersion")
                        .unwrap_or("")
                        .to_string();
                    let mut t = render_table(
                        &render_ctx.info.group,
                        &render_ctx.info.plural,
                        std::slice::from_ref(&obj),
                        include,
                        json!({"resourceVersion": rv}),
                        state.printer_columns(&render_ctx.info).as_deref(),
                        chrono::Utc::now(),
                    );
                    if !first {
                        if let Some(o) = t.as_object_mut() {
                            o.insert("columnDefinitions".into(), json!([]));
                        }
                    }
                    t
                }
                Output::Metadata if meta::meta_str(&obj, "name").is_some() => {
                    partial_metadata(&obj)
                }
                _ => obj,
            });
        let rx = crate::watch::start(
            self.registry.clone(),
            request,
            render,
            self.shutdown.clone(),
            self.metrics.clone(),
        )?;
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv()
                .await
                .map(|b| (Ok::<Bytes, std::io::Error>(b), rx))
        });
        let ct = if output == Output::Yaml {
            "application/yaml"
        } else {
            "application/json"
        };
        Ok(Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, ct)
            .header(header::CACHE_CONTROL, "no-cache, private")
            .body(Body::from_stream(stream))
            .unwrap_or_else(|_| ApiError::internal("building watch response").into_response()))
    }

    /// Unknown and duplicate fields under the request's `fieldValidation`.
    /// Checks unknown, duplicate and mistyped fields under the request's `fieldValidation`,
    /// then drops the unknown ones (upstream's typed decoding never stores them).
    fn validate_fields(
        &self,
        ctx: &ResourceCtx,
        req: &ResourceRequest,
        body: Option<&[u8]>,
        obj: &mut Value,
    ) -> ApiResult<Vec<String>> {
        let mode =
            crate::field_validation::FieldValidation::parse(req.query.get("fieldValidation"))?;
        let json_body = body.filter(|_| {
            !matches!(
                body_format(&req.headers, false),
                Ok(BodyFormat::Yaml | BodyFormat::Protobuf)
            )
        });
        let root =
            crate::schema_meta::root_for_gvk(&ctx.info.group, &ctx.info.version, &ctx.info.kind);
        let schema_unknown = match &ctx.info.custom {
            Some(c) => crate::crd::unknown_fields(&c.schema, obj),
            None => Vec::new(),
        };
        let warnings = crate::field_validation::check(
            mode,
            &ctx.info.kind,
            &ctx.info.version,
            json_body,
            obj,
            root,
            &schema_unknown,
        )?;
        if let Some(root) = root {
            crate::field_validation::prune_unknown(obj, root);
        }
        if let Some(c) = &ctx.info.custom {
            crate::crd::prune(&c.schema, obj);
        }
        Ok(warnings)
    }

    pub(crate) fn decode_write_body(
        &self,
        ctx: &ResourceCtx,
        req: &ResourceRequest,
        kind: &str,
        av: &str,
    ) -> ApiResult<Value> {
        let format = body_format(&req.headers, false)?;
        let obj = decode_object(&req.body, format, kind)?;
        check_type(&ctx.info, &obj, kind, av)?;
        Ok(obj)
    }

    async fn create(
        &self,
        ctx: &ResourceCtx,
        req: &ResourceRequest,
        output: Output,
    ) -> ApiResult<Response> {
        let dry_run = req.query.dry_run()?;
        let mut obj = self.decode_write_body(ctx, req, &ctx.info.kind, &ctx.info.api_version())?;
        if let Some(ns) = meta::meta_str(&obj, "namespace").filter(|s| !s.is_empty()) {
            if ctx.info.namespaced() && ctx.namespace.as_deref() != Some(ns) {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
        }
        if ctx.info.namespaced() && ctx.namespace.is_none() {
            return Err(ApiError::no_resource());
        }
        let warnings = self.validate_fields(ctx, req, Some(&req.body), &mut obj)?;
        let manager = field_manager(req)?;
        let created = self
            .registry
            .create(ctx, obj, dry_run, Some(&manager))
            .await?;
        Ok(respond_warn(
            StatusCode::CREATED,
            output,
            &self.render_one(ctx, output, &req.query, created)?,
            &warnings,
        ))
    }

    async fn update(
        &self,
        ctx: &ResourceCtx,
        name: &str,
        sub: Option<&str>,
        req: &ResourceRequest,
        output: Output,
    ) -> ApiResult<Response> {
        let dry_run = req.query.dry_run()?;
        if sub == Some("scale") {
            let scale = self.decode_write_body(ctx, req, "Scale", "autoscaling/v1")?;
            return self
                .write_scale(ctx, name, scale, dry_run, &field_manager(req)?, output)
                .await;
        }
        let mut obj = self.decode_write_body(ctx, req, &ctx.info.kind, &ctx.info.api_version())?;
        let body_name = meta::meta_str(&obj, "name").unwrap_or("");
        if body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        if let Some(ns) = meta::meta_str(&obj, "namespace").filter(|s| !s.is_empty()) {
            if ctx.info.namespaced() && ctx.namespace.as_deref() != Some(ns) {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
        }
        let warnings = self.validate_fields(ctx, req, Some(&req.body), &mut obj)?;
        let updated = self
            .registry
            .update_with(ctx, name, sub, dry_run, Some(&field_manager(req)?), |_| {
                Ok(obj.clone())
            })
            .await?;
        Ok(respond_warn(
            StatusCode::OK,
            output,
            &self.render_one(ctx, output, &req.query, updated)?,
            &warnings,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    async fn write_scale(
        &self,
        ctx: &ResourceCtx,
        name: &str,
        scale: Value,
        dry_run: bool,
        manager: &str,
        output: Output,
    ) -> ApiResult<Response> {
        let replicas = scale
            .get("spec")
            .and_then(|s| s.get("replicas"))
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if replicas < 0 {
            return Err(ApiError::invalid(
                "Scale",
                "autoscaling",
                name,
                vec![crate::errors::Cause::invalid(
                    "spec.replicas",
                    &json!(replicas),
                    "must be greater than or equal to 0",
                )],
            ));
        }
        let pinned = meta::meta_str(&scale, "resourceVersion").map(str::to_string);
        let updated = self
            .registry
            .update_with(ctx, name, Some("scale"), dry_run, Some(manager), |cur| {
                let mut next = cur.clone();
                if let Some(p) = scale_paths(ctx) {
                    crate::crd::set_path(&mut next, &p.spec_replicas, json!(replicas));
                } else if let Some(spec) = next.get_mut("spec").and_then(Value::as_object_mut) {
                    spec.insert("replicas".into(), json!(replicas));
                } else if let Some(o) = next.as_object_mut() {
                    o.insert("spec".into(), json!({"replicas": replicas}));
                }
                if let (Some(rv), Some(m)) = (&pinned, meta::metadata_mut(&mut next)) {
                    m.insert("resourceVersion".into(), json!(rv));
                }
                Ok(next)
            })
            .await?;
        Ok(respond(
            StatusCode::OK,
            output,
            &to_scale(&updated, scale_paths(ctx)),
        ))
    }

    async fn patch(
        &self,
        ctx: &ResourceCtx,
        name: &str,
        sub: Option<&str>,
        req: &ResourceRequest,
        output: Output,
    ) -> ApiResult<Response> {
        let dry_run = req.query.dry_run()?;
        let format = body_format(&req.headers, true)?;
        if format == BodyFormat::ApplyPatch {
            return self.server_side_apply(ctx, name, sub, req, output).await;
        }
        let manager = field_manager(req)?;
        let patch_doc: Option<Value> = match format {
            BodyFormat::JsonPatch => None,
            _ => Some(
                serde_json::from_slice(&req.body)
                    .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?,
            ),
        };
        if let Some(p) = &patch_doc {
            if !p.is_object() {
                return Err(ApiError::bad_request(
                    "error decoding patch: json: cannot unmarshal into Go value of type map[string]interface {}",
                ));
            }
        }
        if format == BodyFormat::StrategicMergePatch && ctx.strategy.custom {
            return Err(ApiError::unsupported_media_type());
        }
        let root =
            crate::schema_meta::root_for_gvk(&ctx.info.group, &ctx.info.version, &ctx.info.kind);
        let apply = |doc: &Value| -> ApiResult<Value> {
            let r = match format {
                BodyFormat::JsonPatch => crate::patch::apply_json_patch(doc, &req.body),
                BodyFormat::MergePatch => Ok(crate::patch::apply_merge_patch(
                    doc,
                    patch_doc.as_ref().unwrap_or(&Value::Null),
                )),
                _ => crate::patch::apply_strategic_merge_patch(
                    doc,
                    patch_doc.as_ref().unwrap_or(&Value::Null),
                    root,
                ),
            };
            r.map_err(patch_error)
        };
        if sub == Some("scale") {
            let cur = self.registry.get(ctx, name)?;
            let scale = apply(&to_scale(&cur, scale_paths(ctx)))?;
            return self
                .write_scale(ctx, name, scale, dry_run, &field_manager(req)?, output)
                .await;
        }
        let dup_body = (format != BodyFormat::JsonPatch).then_some(&req.body[..]);
        let mut warnings = Vec::new();
        let updated = self
            .registry
            .update_with(ctx, name, sub, dry_run, Some(&manager), |cur| {
                let mut patched = apply(cur)?;
                warnings = self.validate_fields(ctx, req, dup_body, &mut patched)?;
                if meta::meta_str(&patched, "name") != Some(name) {
                    return Err(ApiError::bad_request(
                        "metadata.name: Invalid value: the name of the object does not match the name on the URL",
                    ));
                }
                Ok(patched)
            })
            .await?;
        Ok(respond_warn(
            StatusCode::OK,
            output,
            &self.render_one(ctx, output, &req.query, updated)?,
            &warnings,
        ))
    }

    /// `PATCH` with `application/apply-patch+yaml`: server-side apply, creating the object
    /// when it does not exist.
    async fn server_side_apply(
        &self,
        ctx: &ResourceCtx,
        name: &str,
        sub: Option<&str>,
        req: &ResourceRequest,
        output: Output,
    ) -> ApiResult<Response> {
        let dry_run = req.query.dry_run()?;
        let manager = req
            .query
            .get("fieldManager")
            .filter(|m| !m.is_empty())
            .map(str::to_string)
            .ok_or_else(|| {
                ApiError::invalid(
                    "PatchOptions",
                    "meta.k8s.io",
                    "",
                    vec![crate::errors::Cause::required(
                        "fieldManager",
                        "is required for apply patch",
                    )],
                )
            })?;
        let force = req.query.flag("force");
        let mode =
            crate::field_validation::FieldValidation::parse(req.query.get("fieldValidation"))?;
        let mut warnings = Vec::new();
        let dups = crate::field_validation::duplicate_yaml_keys(&req.body);
        if !dups.is_empty() {
            match mode {
                crate::field_validation::FieldValidation::Strict => {
                    return Err(ApiError::bad_request(format!(
                        "error strict decoding YAML: error converting YAML to JSON: yaml: unmarshal errors:\n  {}",
                        dups.join("\n  ")
                    )))
                }
                crate::field_validation::FieldValidation::Warn => warnings = dups,
                crate::field_validation::FieldValidation::Ignore => {}
            }
        }
        let applied: Value = serde_yaml::from_slice(&req.body).map_err(|e| {
            ApiError::bad_request(format!(
                "error decoding YAML: error converting YAML to JSON: yaml: {e}"
            ))
        })?;
        if !applied.is_object() {
            return Err(ApiError::bad_request(
                "error decoding YAML: the apply body must be an object",
            ));
        }
        if let Some(body_name) = meta::meta_str(&applied, "name") {
            if body_name != name {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({body_name}) does not match the name on the URL ({name})"
                )));
            }
        }
        let schema = ctx.apply_schema();
        let ep = ctx.endpoint(&schema, sub);
        let now = meta::now_rfc3339();
        let existing = match self.registry.get(ctx, name) {
            Ok(o) => Some(o),
            Err(e) if e.code == 404 => None,
            Err(e) => return Err(e),
        };
        if existing.is_none() && sub.is_none() {
            let mut obj = crate::apply::apply(&ep, None, &applied, &manager, force, &now)
                .map_err(apply_error)?;
            if let Some(m) = meta::metadata_mut(&mut obj) {
                m.insert("name".into(), json!(name));
            }
            if ctx.info.namespaced() && ctx.namespace.is_none() {
                return Err(ApiError::no_resource());
            }
            match self.registry.create(ctx, obj, dry_run, None).await {
                Ok(created) => {
                    return Ok(respond_warn(
                        StatusCode::CREATED,
                        output,
                        &self.render_one(ctx, output, &req.query, created)?,
                        &warnings,
                    ))
                }
                // Lost a race with another creator: apply to what is there now.
                Err(e) if e.code == 409 && e.reason == "AlreadyExists" => {}
                Err(e) => return Err(e),
            }
        }
        let updated = self
            .registry
            .update_with(ctx, name, sub, dry_run, None, |cur| {
                crate::apply::apply(&ep, Some(cur), &applied, &manager, force, &now)
                    .map_err(apply_error)
            })
            .await?;
        Ok(respond_warn(
            StatusCode::OK,
            output,
            &self.render_one(ctx, output, &req.query, updated)?,
            &warnings,
        ))
    }

    fn delete_options(&self, req: &ResourceRequest) -> ApiResult<DeleteOptions> {
        let body = if req.body.iter().all(u8::is_ascii_whitespace) {
            None
        } else {
            let v: Value = if req.body.starts_with(crate::protobuf::MAGIC) {
                crate::protobuf::decode_k8s_protobuf(&req.body).map_err(|e| e.to_string())
            } else {
                serde_json::from_slice(&req.body)
                    .or_else(|_| serde_yaml::from_slice(&req.body))
                    .map_err(|e| e.to_string())
            }
            .map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))?;
            Some(v)
        };
        DeleteOptions::parse(body.as_ref(), &req.query)
    }

    async fn delete(
        &self,
        ctx: &ResourceCtx,
        name: &str,
        req: &ResourceRequest,
        output: Output,
    ) -> ApiResult<Response> {
        let opts = self.delete_options(req)?;
        let (obj, gone) = self.registry.delete(ctx, name, &opts).await?;
        if gone && !ctx.strategy.returns_deleted_object {
            let mut details = serde_json::Map::new();
            details.insert("name".into(), json!(name));
            if !ctx.info.group.is_empty() {
                details.insert("group".into(), json!(ctx.info.group));
            }
            details.insert("kind".into(), json!(ctx.info.plural));
            details.insert(
                "uid".into(),
                json!(meta::meta_str(&obj, "uid").unwrap_or("")),
            );
            let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details});
            return Ok(respond(StatusCode::OK, output, &status));
        }
        Ok(respond(
            StatusCode::OK,
            output,
            &self.render_one(ctx, output, &req.query, obj)?,
        ))
    }

    async fn delete_collection(
        &self,
        ctx: &ResourceCtx,
        req: &ResourceRequest,
        output: Output,
    ) -> ApiResult<Response> {
        if !ctx.info.has_verb("deletecollection") {
            return Err(ApiError::method_not_allowed());
        }
        let opts = self.delete_options(req)?;
        let list_opts = self.list_options(ctx, &req.query)?;
        let list = self.registry.list(
            ctx,
            &ListOptions {
                limit: 0,
                continue_token: None,
                ..list_opts
            },
        )?;
        let mut deleted = Vec::new();
        for item in list.items {
            let Some(name) = meta::meta_str(&item, "name").map(str::to_string) else {
                continue;
            };
            let item_ctx = match meta::meta_str(&item, "namespace") {
                Some(ns) if ctx.info.namespaced() => {
                    ResourceCtx::new(ctx.info.clone(), Some(ns.to_string()))
                }
                _ => ctx.clone(),
            };
            match self.registry.delete(&item_ctx, &name, &opts).await {
                Ok((obj, _)) => deleted.push(obj),
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        let body = json!({
            "kind": ctx.info.list_kind,
            "apiVersion": ctx.info.api_version(),
            "metadata": {"resourceVersion": self.registry.store.current_revision().to_string()},
            "items": deleted,
        });
        Ok(respond(StatusCode::OK, output, &body))
    }

    /// `pods/binding`: assigns a pod to a node, as the scheduler does.
    async fn bind(
        &self,
        ctx: &ResourceCtx,
        name: &str,
        req: &ResourceRequest,
    ) -> ApiResult<Response> {
        let binding = self.decode_write_body(ctx, req, "Binding", "v1")?;
        let node = binding
            .get("target")
            .and_then(|t| t.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if node.is_empty() {
            return Err(ApiError::invalid(
                "Binding",
                "",
                name,
                vec![crate::errors::Cause::required("target.name", "")],
            ));
        }
        let dry_run = req.query.dry_run()?;
        // The create's options are checked as for any create, though no manager is recorded.
        field_manager(req)?;
        // Upstream's binding writes the pod at the storage level: its managedFields are left
        // as they were (no entry for the scheduler) and the binding's annotations are copied.
        let annotations = binding
            .get("metadata")
            .and_then(|m| m.get("annotations"))
            .and_then(Value::as_object)
            .filter(|a| !a.is_empty())
            .cloned();
        self.registry
            .update_with(ctx, name, Some("binding"), dry_run, None, |cur| {
                let current_node = cur.get("spec").and_then(|s| s.get("nodeName")).and_then(Value::as_str).unwrap_or("");
                if !current_node.is_empty() {
                    return Err(ApiError::conflict(
                        "",
                        "pods/binding",
                        name,
                        &format!("pod {name} is already assigned to node {current_node:?}"),
                    ));
                }
                if meta::meta_str(cur, "deletionTimestamp").is_some() {
                    return Err(ApiError::conflict("", "pods/binding", name, &format!("pod {name} is being deleted, cannot be assigned to a host")));
                }
                let mut next = cur.clone();
                if let Some(spec) = next.get_mut("spec").and_then(Value::as_object_mut) {
                    spec.insert("nodeName".into(), json!(node));
                }
                if let (Some(add), Some(m)) = (&annotations, next.get_mut("metadata").and_then(Value::as_object_mut)) {
                    let a = m.entry("annotations").or_insert_with(|| json!({}));
                    if let Some(a) = a.as_object_mut() {
                        a.extend(add.clone());
                    }
                }
                if let Some(o) = next.as_object_mut() {
                    let status = o.entry("status").or_insert_with(|| json!({}));
                    if let Some(s) = status.as_object_mut() {
                        let conds = s.entry("conditions").or_insert_with(|| json!([]));
                        if let Some(c) = conds.as_array_mut() {
                            c.retain(|x| x.get("type").and_then(Value::as_str) != Some("PodScheduled"));
                            c.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": meta::now_rfc3339()}));
                        }
                    }
                }
                Ok(next)
            })
            .await?;
        Ok(respond(
            StatusCode::CREATED,
            Output::Json,
            &json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","code":201}),
        ))
    }
}

/// The field manager of a write: `fieldManager`, else derived from the User-Agent.
fn field_manager(req: &ResourceRequest) -> ApiResult<String> {
    if let Some(m) = req.query.get("fieldManager").filter(|m| !m.is_empty()) {
        if m.len() > 128 {
            return Err(ApiError::invalid(
                "PatchOptions",
                "meta.k8s.io",
                "",
                vec![crate::errors::Cause::too_long("fieldManager", 128)],
            ));
        }
        return Ok(m.to_string());
    }
    let ua = req
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    Ok(crate::apply::manager_from_user_agent(ua))
}

fn apply_error(e: crate::apply::ApplyError) -> ApiError {
    let status = e.to_status("", "", "");
    let mut err = ApiError::new(
        e.code(),
        match e.code() {
            409 => "Conflict",
            400 => "BadRequest",
            _ => "InternalError",
        },
        status["message"].as_str().unwrap_or_default(),
    );
    err.details = status.get("details").cloned();
    err
}

fn patch_error(e: crate::patch::PatchError) -> ApiError {
    let reason = match e.reason() {
        "" => "InternalError",
        r => r,
    };
    ApiError::new(e.code(), reason, e.status_message())
}

/// `meta.k8s.io/v1 PartialObjectMetadata` of an object.
pub fn partial_metadata(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

fn rand_u64() -> u64 {
    let b = uuid::Uuid::new_v4().into_bytes();
    u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_view() {
        let d = json!({"metadata":{"name":"d","namespace":"n","resourceVersion":"5"},
            "spec":{"replicas":3,"selector":{"matchLabels":{"app":"x"}}},"status":{"replicas":2}});
        let s = to_scale(&d, None);
        assert_eq!(s["spec"]["replicas"], 3);
        assert_eq!(s["status"]["selector"], "app=x");
        assert_eq!(s["metadata"]["resourceVersion"], "5");
    }

    #[test]
    fn malformed_json_is_400() {
        let e = decode_object(br#"{"apiVersion":"v1""#, BodyFormat::Json, "ConfigMap").unwrap_err();
        assert_eq!(e.code, 400);
        assert!(e
            .message
            .starts_with("the object provided is unrecognized (must be of type ConfigMap)"));
    }
}
