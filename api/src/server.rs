//! The API server process: configuration, state, routing, authentication, TLS serving
//! and graceful shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use meso_store::{Store, StoreOptions};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::auth::{self, PeerIdentity, TokenFile};
use crate::certs::Pki;
use crate::errors::ApiError;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::request::{self, parse_api_path, ApiPath, Query};
use crate::resources::{ResourceInfo, ResourceTable};
use crate::rest::{ResourceRequest, MAX_BODY};

/// Flags of the API server (shared by `meso-apiserver` and `meso server`).
#[derive(Debug, Clone, clap::Args)]
pub struct ApiServerArgs {
    /// Directory for the store, certificates and the admin kubeconfig
    /// [default: /var/lib/meso as root, else $HOME/.local/share/meso].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Address to serve HTTPS on.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind_address: String,
    /// Port to serve HTTPS on.
    #[arg(long, default_value_t = 6443)]
    pub secure_port: u16,
    /// Extra subject alternative names for the serving certificate.
    #[arg(long = "tls-san")]
    pub tls_san: Vec<String>,
    /// The address other members of the cluster (and pods) reach this API server at; it is
    /// what the `kubernetes` Service's endpoints point to [default: the host's first
    /// non-loopback IPv4 address, else the bind address].
    #[arg(long)]
    pub advertise_address: Option<std::net::IpAddr>,
    /// Static bearer tokens: CSV lines `token,user,uid,"group1,group2"`.
    #[arg(long)]
    pub token_auth_file: Option<PathBuf>,
    /// The range Service ClusterIPs are allocated from; its first address is the
    /// `kubernetes` Service's.
    #[arg(long, default_value = "10.43.0.0/16")]
    pub service_cluster_ip_range: String,
    /// The range of Service node ports.
    #[arg(long, default_value = "30000-32767")]
    pub service_node_port_range: String,
    /// Keep store events for watchers at least this long (seconds).
    #[arg(long, default_value_t = 300)]
    pub watch_history_seconds: u64,
    /// Keep at least this many most recent store revisions for watchers.
    #[arg(long, default_value_t = 100_000)]
    pub watch_history_revisions: u64,
    /// How often every kubelet's resource metrics are scraped for `metrics.k8s.io`
    /// (metrics-server's flag).
    #[arg(long, default_value = "15s", value_parser = crate::flags::parse_duration)]
    pub metric_resolution: Duration,
}

impl ApiServerArgs {
    /// The data directory, defaulted as documented.
    pub fn data_dir(&self) -> PathBuf {
        match &self.data_dir {
            Some(d) => d.clone(),
            None => Self::default_data_dir(),
        }
    }

    /// `/var/lib/meso` as root, else `$HOME/.local/share/meso`.
    pub fn default_data_dir() -> PathBuf {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        if root {
            PathBuf::from("/var/lib/meso")
        } else {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."));
            home.join(".local/share/meso")
        }
    }

    /// The URL clients use to reach the server.
    pub fn server_url(&self) -> String {
        let host = match self.bind_address.as_str() {
            "0.0.0.0" | "" => "127.0.0.1".to_string(),
            "::" => "[::1]".to_string(),
            a if a.contains(':') => format!("[{a}]"),
            a => a.to_string(),
        };
        format!("https://{host}:{}", self.secure_port)
    }
}

/// Shared state of the running server.
pub struct AppState {
    pub registry: Registry,
    pub resources: RwLock<ResourceTable>,
    /// The OpenAPI documents of the current resource table (rendered on first use).
    pub openapi: RwLock<Arc<crate::openapi::OpenApi>>,
    pub metrics: Arc<Metrics>,
    pub tokens: TokenFile,
    /// Signs and verifies service account tokens.
    pub sa_tokens: crate::sa_token::TokenSigner,
    pub shutdown: CancellationToken,
    pub server_address: String,
    pub ready: AtomicBool,
    pub started: Instant,
    /// TLS towards kubelets (the API server's kubelet-client certificate).
    pub kubelet_tls: Arc<rustls::ClientConfig>,
    /// The node and container usage `metrics.k8s.io` serves.
    pub resource_metrics: crate::metrics_server::MetricsCache,
    /// How often kubelets are scraped for `resource_metrics`.
    pub metric_resolution: Duration,
}

impl AppState {
    pub fn lookup(&self, group: &str, version: &str, plural: &str) -> Option<ResourceInfo> {
        self.resources
            .read()
            .ok()
            .and_then(|t| t.get(group, version, plural).cloned())
    }

    fn group_version_known(&self, group: &str, version: &str) -> bool {
        self.resources
            .read()
            .map(|t| t.iter().any(|r| r.group == group && r.version == version))
            .unwrap_or(false)
    }

    /// additionalPrinterColumns of a custom resource (`None` for built-ins).
    pub fn printer_columns(&self, info: &ResourceInfo) -> Option<Vec<Value>> {
        info.custom.as_ref().map(|c| c.printer_columns.clone())
    }
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

fn json_response(status: StatusCode, content_type: &str, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let ct =
        HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static("application/json"));
    let mut r = (status, bytes).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, ct);
    r
}

/// `/version`.
pub fn version_info() -> Value {
    json!({
        "major": "1",
        "minor": "36",
        "emulationMajor": "1",
        "emulationMinor": "36",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "35",
        "gitVersion": format!("v1.36.0-meso.{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "rust",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, match std::env::consts::ARCH { "x86_64" => "amd64", "aarch64" => "arm64", a => a }),
    })
}

fn health(state: &AppState, which: &str, query: &Query) -> Response {
    let ready = state.ready.load(Ordering::SeqCst);
    let shutting_down = state.shutdown.is_cancelled();
    let store_ok = state
        .registry
        .store
        .get("/registry/core/namespaces/default")
        .is_ok();
    let mut checks: Vec<(&str, bool)> = vec![("ping", true), ("log", true), ("store", store_ok)];
    if which == "readyz" {
        checks.push(("poststarthook/bootstrap-namespaces", ready));
        checks.push(("shutdown", !shutting_down));
    }
    let ok = checks.iter().all(|(_, ok)| *ok);
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    if query.has("verbose") {
        let mut body = String::new();
        for (name, ok) in &checks {
            body.push_str(&format!(
                "[{}]{name} {}\n",
                if *ok { "+" } else { "-" },
                if *ok { "ok" } else { "failed: reason withheld" }
            ));
        }
        body.push_str(&format!(
            "{which} check {}\n",
            if ok { "passed" } else { "failed" }
        ));
        text(status, body)
    } else {
        text(
            status,
            if ok {
                "ok".to_string()
            } else {
                format!("{which} check failed")
            },
        )
    }
}

fn wants_aggregated(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .next()
        .is_some_and(|first| {
            first.contains("as=APIGroupDiscoveryList")
                && first.contains("g=apidiscovery.k8s.io")
                && first.contains("v=v2")
        })
        || headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|e| {
                e.contains("as=APIGroupDiscoveryList")
                    && e.contains("v=v2")
                    && !e.contains("v=v2beta1")
            })
}

const AGGREGATED_CT: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

async fn discovery(state: &AppState, path: ApiPath, headers: &http::HeaderMap) -> Response {
    let table = match state.resources.read() {
        Ok(t) => t,
        Err(_) => return ApiError::internal("resource table unavailable").into_response(),
    };
    match path {
        ApiPath::LegacyRoot => {
            if wants_aggregated(headers) {
                json_response(StatusCode::OK, AGGREGATED_CT, &table.aggregated(true))
            } else {
                json_response(
                    StatusCode::OK,
                    "application/json",
                    &table.api_versions(&state.server_address),
                )
            }
        }
        ApiPath::GroupsRoot => {
            if wants_aggregated(headers) {
                json_response(StatusCode::OK, AGGREGATED_CT, &table.aggregated(false))
            } else {
                json_response(StatusCode::OK, "application/json", &table.api_group_list())
            }
        }
        ApiPath::Group(g) => match table.api_group(&g) {
            Some(v) => json_response(StatusCode::OK, "application/json", &v),
            None => text(StatusCode::NOT_FOUND, "404 page not found\n"),
        },
        ApiPath::GroupVersion(g, v) => match table.api_resource_list(&g, &v) {
            Some(doc) => json_response(StatusCode::OK, "application/json", &doc),
            None => text(StatusCode::NOT_FOUND, "404 page not found\n"),
        },
        ApiPath::Resource(_) => text(StatusCode::NOT_FOUND, "404 page not found\n"),
    }
}

/// `/openapi/v2`, `/openapi/v3` and `/openapi/v3/{path}`, with ETags and 304s as upstream.
async fn openapi(
    state: &AppState,
    rest: &str,
    query: &Query,
    headers: &http::HeaderMap,
) -> Response {
    let doc = match state.openapi.read() {
        Ok(d) => d.clone(),
        Err(_) => return ApiError::internal("openapi unavailable").into_response(),
    };
    let rest = rest.trim_end_matches('/').to_string();
    let rest_path = rest.clone();
    let if_none_match = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim_matches('"').to_string());
    let hash_requested = query.get("hash").map(str::to_string);
    let mut content_type = "application/json";
    let mut v2_format = crate::openapi_proto::V2Format::Json;
    if rest == "v2" {
        let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
        let Some(format) = crate::openapi_proto::negotiate_v2(accept) else {
            return text(StatusCode::NOT_ACCEPTABLE, "406 - Not Acceptable\n");
        };
        v2_format = format;
        if format == crate::openapi_proto::V2Format::Protobuf {
            content_type = crate::openapi_proto::CONTENT_TYPE;
        }
    }
    // Rendering is CPU work: keep it off the reactor threads.
    let rendered = tokio::task::spawn_blocking(move || -> Option<(Vec<u8>, String, bool)> {
        match rest.as_str() {
            "v2" => {
                let (b, etag) = match v2_format {
                    crate::openapi_proto::V2Format::Json => doc.v2(),
                    crate::openapi_proto::V2Format::Protobuf => doc.v2_protobuf(),
                };
                Some((b.to_vec(), etag.trim_matches('"').to_string(), false))
            }
            "v3" => {
                let b = serde_json::to_vec(&doc.v3_index()).unwrap_or_default();
                Some((b, String::new(), false))
            }
            other => {
                let p = other.strip_prefix("v3/")?;
                let (b, hash) = doc.v3_doc(p)?;
                Some((b.to_vec(), hash.to_string(), true))
            }
        }
    })
    .await;
    let Ok(Some((bytes, etag, immutable))) = rendered else {
        return text(StatusCode::NOT_FOUND, "404 page not found\n");
    };
    // A stale `?hash=` is redirected to the current document, as upstream does.
    if let Some(h) = hash_requested
        .as_deref()
        .filter(|h| immutable && *h != etag)
    {
        tracing::debug!(requested = h, current = %etag, "stale OpenAPI hash");
        let location = format!("/openapi/{rest_path}?hash={etag}");
        return Response::builder()
            .status(StatusCode::MOVED_PERMANENTLY)
            .header(header::LOCATION, location)
            .header(header::VARY, "Accept")
            .body(Body::empty())
            .unwrap_or_else(|_| StatusCode::MOVED_PERMANENTLY.into_response());
    }
    let mut builder = Response::builder().header(header::CONTENT_TYPE, content_type);
    if !etag.is_empty() {
        builder = builder.header(header::ETAG, format!("\"{etag}\""));
        if if_none_match.as_deref() == Some(etag.as_str()) {
            return builder
                .status(StatusCode::NOT_MODIFIED)
                .body(Body::empty())
                .unwrap_or_else(|_| StatusCode::NOT_MODIFIED.into_response());
        }
    }
    let hashed = immutable && hash_requested.as_deref() == Some(etag.as_str());
    if hashed {
        let expires = chrono::Utc::now() + chrono::Duration::days(365);
        builder = builder
            .header(header::CACHE_CONTROL, "public, immutable")
            .header(
                header::EXPIRES,
                expires.format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
            );
    } else {
        builder = builder.header(header::CACHE_CONTROL, "no-cache, private");
    }
    builder
        .header(header::VARY, "Accept")
        .status(StatusCode::OK)
        .body(Body::from(bytes))
        .unwrap_or_else(|_| ApiError::internal("building response").into_response())
}

/// Paths anonymous users may read (upstream's system:public-info-viewer).
fn public_path(path: &str) -> bool {
    matches!(
        path,
        "/healthz" | "/livez" | "/readyz" | "/version" | "/version/"
    ) || path.starts_with("/healthz/")
        || path.starts_with("/livez/")
        || path.starts_with("/readyz/")
}

/// The single entry point of every request.
async fn handle(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let start = Instant::now();
    let (mut parts, body) = req.into_parts();
    let upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
    let path = parts.uri.path().to_string();
    let query = Query::parse(parts.uri.query());
    let user = auth::authenticate(
        &parts.headers,
        parts.extensions.get::<PeerIdentity>(),
        &state.tokens,
        &|t| state.authenticate_service_account_token(t),
    );
    let user = match user {
        Ok(u) => u,
        Err(auth::InvalidCredentials) => return ApiError::unauthorized().into_response(),
    };
    if user.is_anonymous() && !public_path(&path) {
        return ApiError::unauthorized().into_response();
    }
    match path.as_str() {
        "/version" | "/version/" => {
            return json_response(StatusCode::OK, "application/json", &version_info())
        }
        "/healthz" | "/livez" | "/readyz" => {
            return health(&state, path.trim_start_matches('/'), &query)
        }
        "/.well-known/openid-configuration" => {
            let url = format!("https://{}", state.server_address);
            let doc = crate::sa_token::openid_configuration(&url);
            return json_response(StatusCode::OK, "application/json", &doc);
        }
        "/openid/v1/jwks" => {
            let jwks = state.sa_tokens.jwks();
            return json_response(StatusCode::OK, "application/jwk-set+json", &jwks);
        }
        "/metrics" => {
            let store = &state.registry.store;
            return (
                StatusCode::OK,
                [(
                    header::CONTENT_TYPE,
                    "text/plain; version=0.0.4; charset=utf-8",
                )],
                state.metrics.render(store),
            )
                .into_response();
        }
        _ => {}
    }
    if let Some(rest) = path.strip_prefix("/openapi/") {
        return openapi(&state, rest, &query, &parts.headers).await;
    }
    if path.starts_with("/healthz/") || path.starts_with("/livez/") || path.starts_with("/readyz/")
    {
        return health(
            &state,
            path.trim_start_matches('/')
                .split('/')
                .next()
                .unwrap_or("healthz"),
            &query,
        );
    }
    let Some(api_path) = parse_api_path(&path) else {
        return text(StatusCode::NOT_FOUND, "404 page not found\n");
    };
    let ApiPath::Resource(rp) = api_path else {
        return discovery(&state, api_path, &parts.headers).await;
    };
    if !state.group_version_known(&rp.group, &rp.version) {
        return text(StatusCode::NOT_FOUND, "404 page not found\n");
    }
    let verb = request::verb(&parts.method, &rp, &query);
    let (group, resource) = (rp.group.clone(), rp.resource.clone());
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) => {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.to_string().contains("length limit"))
                || e.to_string().contains("length limit");
            let err = if too_large {
                ApiError::too_large(MAX_BODY)
            } else {
                ApiError::bad_request(format!("reading request body: {e}"))
            };
            return err.into_response();
        }
    };
    let resp = state
        .handle_resource(ResourceRequest {
            method: parts.method,
            headers: parts.headers,
            query,
            path: rp,
            body: bytes,
            upgrade,
        })
        .await;
    let code = resp.status().as_u16();
    tracing::debug!(verb, group = %group, resource = %resource, code, elapsed_ms = start.elapsed().as_millis() as u64, user = %user.name, "request");
    state
        .metrics
        .observe(verb, &group, &resource, code, start.elapsed());
    resp
}

/// The HTTP application (without TLS), e.g. for tests.
pub fn router(state: Arc<AppState>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(state)
}

/// Creates the namespaces that exist from the start.
async fn bootstrap(state: &AppState, secure_port: u16) -> anyhow::Result<()> {
    let info = state
        .lookup("", "v1", "namespaces")
        .ok_or_else(|| anyhow::anyhow!("namespaces missing from the resource table"))?;
    let ctx = crate::registry::ResourceCtx::new(info, None);
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        if state.registry.store.get(&ctx.key(ns))?.is_some() {
            continue;
        }
        let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}}});
        match state
            .registry
            .create(&ctx, obj, false, Some(SYSTEM_MANAGER))
            .await
        {
            Ok(_) => {}
            Err(e) if e.code == 409 => {}
            Err(e) => return Err(anyhow::anyhow!("creating namespace {ns}: {e}")),
        }
    }
    // The `kubernetes` Service: the first address of the service range, pointing at us.
    let svc_info = state
        .lookup("", "v1", "services")
        .ok_or_else(|| anyhow::anyhow!("services missing from the resource table"))?;
    let svc_ctx = crate::registry::ResourceCtx::new(svc_info, Some("default".into()));
    if state
        .registry
        .store
        .get(&svc_ctx.key("kubernetes"))?
        .is_none()
    {
        let ip = state.registry.service_ranges.first().to_string();
        let svc = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default",
                "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"type": "ClusterIP", "clusterIP": ip, "sessionAffinity": "None",
                "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "internalTrafficPolicy": "Cluster",
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": secure_port}]}
        });
        match state
            .registry
            .create(&svc_ctx, svc, false, Some(SYSTEM_MANAGER))
            .await
        {
            Ok(_) => {}
            Err(e) if e.code == 409 => {}
            Err(e) => return Err(anyhow::anyhow!("creating the kubernetes Service: {e}")),
        }
    }
    Ok(())
}

fn tls_config(pki: &Pki) -> anyhow::Result<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pki.ca_cert_pem.as_bytes()) {
        roots.add(cert?)?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .allow_unauthenticated()
    .build()?;
    let certs: Vec<_> =
        rustls_pemfile::certs(&mut pki.serving_cert_pem.as_bytes()).collect::<Result<_, _>>()?;
    let key = rustls_pemfile::private_key(&mut pki.serving_key_pem.as_bytes())?
        .ok_or_else(|| anyhow::anyhow!("serving key missing"))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}

fn peer_identity(conn: &rustls::ServerConnection) -> PeerIdentity {
    let user = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(|der| crate::certs::client_identity(der.as_ref()))
        .map(|(cn, orgs)| auth::user_from_cert(cn, orgs));
    PeerIdentity(user)
}

/// A running API server.
pub struct ApiServer {
    pub state: Arc<AppState>,
    pub addr: SocketAddr,
    listener: tokio::net::TcpListener,
    pub kubeconfig: PathBuf,
    pub pki: Pki,
    pub data_dir: PathBuf,
}

impl ApiServer {
    /// Opens the store, creates the PKI and kubeconfig, binds the port and bootstraps.
    pub async fn start(
        args: &ApiServerArgs,
        shutdown: CancellationToken,
    ) -> anyhow::Result<ApiServer> {
        let data_dir = args.data_dir();
        std::fs::create_dir_all(&data_dir)?;
        let store = Store::open(
            &data_dir.join("store"),
            StoreOptions {
                compaction_window: Duration::from_secs(args.watch_history_seconds),
                compaction_min_revisions: args.watch_history_revisions,
                ..Default::default()
            },
        )?;
        store.start_compactor();
        let mut sans = vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "::1".to_string(),
        ];
        if let Ok(h) = hostname() {
            sans.push(h);
        }
        if !matches!(args.bind_address.as_str(), "0.0.0.0" | "::" | "") {
            sans.push(args.bind_address.clone());
        }
        sans.extend(args.tls_san.iter().cloned());
        // In-cluster clients reach us through the `kubernetes` Service.
        for name in [
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ] {
            sans.push(name.to_string());
        }
        if let Ok(r) = crate::service_alloc::ServiceRanges::parse(
            &args.service_cluster_ip_range,
            &args.service_node_port_range,
        ) {
            sans.push(r.first().to_string());
        }
        if let Some(a) = args
            .advertise_address
            .map(|a| a.to_string())
            .or_else(|| host_ipv4().map(|a| a.to_string()))
        {
            sans.push(a);
        }
        let pki = Pki::ensure(&data_dir.join("tls"), &sans)?;
        let sa_tokens = crate::sa_token::TokenSigner::load_or_create(&data_dir.join("tls"))?;
        let tokens = match &args.token_auth_file {
            Some(p) => TokenFile::load(p)?,
            None => TokenFile::default(),
        };
        let ranges = crate::service_alloc::ServiceRanges::parse(
            &args.service_cluster_ip_range,
            &args.service_node_port_range,
        )
        .map_err(|e| anyhow::anyhow!(e))?;
        let addr: SocketAddr = format!("{}:{}", args.bind_address, args.secure_port)
            .parse()
            .or_else(|_| format!("[{}]:{}", args.bind_address, args.secure_port).parse())?;
        let table = crate::metrics_server::served_base();
        let state = Arc::new(AppState {
            registry: Registry::new(store, ranges),
            openapi: RwLock::new(Arc::new(crate::openapi::OpenApi::build(&table))),
            resources: RwLock::new(table),
            metrics: Arc::new(Metrics::default()),
            tokens,
            sa_tokens,
            shutdown,
            server_address: format!(
                "{}:{}",
                if args.bind_address == "0.0.0.0" {
                    "127.0.0.1"
                } else {
                    &args.bind_address
                },
                args.secure_port
            ),
            ready: AtomicBool::new(false),
            started: Instant::now(),
            kubelet_tls: Arc::new(crate::proxy::kubelet_tls(&pki)?),
            resource_metrics: Default::default(),
            metric_resolution: args.metric_resolution,
        });
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("binding {addr}: {e}"))?;
        bootstrap(&state, args.secure_port).await?;
        // Every stored CRD is served before /readyz says so.
        crate::crd::start(&state).await?;
        let advertise = args
            .advertise_address
            .map(|a| a.to_string())
            .or_else(|| host_ipv4().map(|a| a.to_string()))
            .unwrap_or_else(|| args.bind_address.clone());
        reconcile_kubernetes_endpoints(&state, &advertise, args.secure_port).await?;
        let kubeconfig = data_dir.join("admin.kubeconfig");
        crate::certs::write_file(
            &kubeconfig,
            pki.admin_kubeconfig(&args.server_url()).as_bytes(),
            0o600,
        )?;
        Ok(ApiServer {
            state,
            addr,
            listener,
            kubeconfig,
            pki,
            data_dir,
        })
    }

    /// Serves HTTPS until the shutdown token fires, then drains connections and flushes
    /// the store.
    pub async fn serve(self) -> anyhow::Result<()> {
        let listener = self.listener;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls_config(&self.pki)?));
        let app = router(self.state.clone());
        let shutdown = self.state.shutdown.clone();
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        tokio::spawn(crate::metrics_server::run(
            self.state.clone(),
            self.state.metric_resolution,
        ));
        self.state.ready.store(true, Ordering::SeqCst);
        tracing::info!(addr = %self.addr, kubeconfig = %self.kubeconfig.display(), "serving");
        loop {
            let (tcp, peer) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = shutdown.cancelled() => break,
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let app = app.clone();
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp))
                    .await
                {
                    Ok(Ok(t)) => t,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
                let identity = peer_identity(tls.get_ref().1);
                let svc = app.map_request(move |mut req: Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(identity.clone());
                    req.map(Body::new)
                });
                let svc = hyper_util::service::TowerToHyperService::new(svc);
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), svc);
                if let Err(e) = watcher.watch(conn.into_owned()).await {
                    tracing::debug!(%peer, error = %e, "connection ended with error");
                }
            });
        }
        self.state.ready.store(false, Ordering::SeqCst);
        drop(listener);
        tracing::info!("shutting down: draining connections");
        if tokio::time::timeout(Duration::from_secs(20), graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("connections did not drain in time");
        }
        self.state.registry.store.flush().await?;
        self.state.registry.store.close();
        tracing::info!("stopped");
        Ok(())
    }
}

/// The host's first non-loopback IPv4 address of an interface that is up.
fn host_ipv4() -> Option<std::net::Ipv4Addr> {
    let mut addrs: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `addrs` with a list we free below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut addrs) } != 0 {
        return None;
    }
    let mut found = None;
    let mut cur = addrs;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        let up = ifa.ifa_flags & (libc::IFF_UP as u32) != 0;
        let loopback = ifa.ifa_flags & (libc::IFF_LOOPBACK as u32) != 0;
        if !up || loopback || ifa.ifa_addr.is_null() {
            continue;
        }
        // SAFETY: ifa_addr is non-null and points at a sockaddr of the family it names.
        let family = unsafe { (*ifa.ifa_addr).sa_family };
        if i32::from(family) == libc::AF_INET {
            // SAFETY: for AF_INET the sockaddr is a sockaddr_in.
            let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
            found = Some(std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)));
            break;
        }
    }
    // SAFETY: `addrs` came from a successful getifaddrs.
    unsafe { libc::freeifaddrs(addrs) };
    found
}

/// Points the `kubernetes` Service's Endpoints and EndpointSlice at this API server.
async fn reconcile_kubernetes_endpoints(
    state: &AppState,
    address: &str,
    port: u16,
) -> anyhow::Result<()> {
    let endpoints = json!({
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "kubernetes", "namespace": "default",
            "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": [{"ip": address}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]
    });
    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "kubernetes", "namespace": "default",
            "labels": {"kubernetes.io/service-name": "kubernetes"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [address], "conditions": {"ready": true}}],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}]
    });
    for (group, version, plural, obj) in [
        ("", "v1", "endpoints", endpoints),
        ("discovery.k8s.io", "v1", "endpointslices", slice),
    ] {
        let info = state
            .lookup(group, version, plural)
            .ok_or_else(|| anyhow::anyhow!("{plural} missing from the resource table"))?;
        let ctx = crate::registry::ResourceCtx::new(info, Some("default".into()));
        let exists = state.registry.store.get(&ctx.key("kubernetes"))?.is_some();
        let result = if exists {
            state
                .registry
                .update_with(
                    &ctx,
                    "kubernetes",
                    None,
                    false,
                    Some(SYSTEM_MANAGER),
                    |cur| {
                        let mut next = obj.clone();
                        next["metadata"] = cur["metadata"].clone();
                        Ok(next)
                    },
                )
                .await
        } else {
            state
                .registry
                .create(&ctx, obj, false, Some(SYSTEM_MANAGER))
                .await
        };
        result.map_err(|e| anyhow::anyhow!("reconciling the kubernetes {plural}: {e}"))?;
    }
    Ok(())
}

/// The field manager of the API server's own writes.
const SYSTEM_MANAGER: &str = "kube-apiserver";

fn hostname() -> std::io::Result<String> {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname")?;
    Ok(h.trim().to_string())
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut t), Ok(mut i)) => {
            tokio::select! {
                _ = t.recv() => {},
                _ = i.recv() => {},
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Initialises `tracing` from `RUST_LOG` (default `info`); JSON when `MESO_LOG_FORMAT=json`.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("MESO_LOG_FORMAT").as_deref() == Ok("json") {
        let _ = builder.json().try_init();
    } else {
        let _ = builder.try_init();
    }
}

/// Runs the API server until SIGTERM.
pub async fn run(args: ApiServerArgs) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let server = ApiServer::start(&args, shutdown.clone()).await?;
    let token = shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("signal received");
        token.cancel();
    });
    server.serve().await
}
