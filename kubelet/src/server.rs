//! The kubelet's HTTPS server (`--kubelet-port`, 10250 by default) for the API server:
//! `GET /containerLogs/{ns}/{pod}/{container}` from the CRI log files, `GET /metrics/resource`
//! (resource usage for metrics.k8s.io, [`crate::resource_metrics`]), and
//! `/exec/{ns}/{pod}/{container}`, `/attach/{ns}/{pod}/{container}`, `/portForward/{ns}/{pod}`,
//! which ask CRI for a single-use URL of containerd's streaming server and proxy the upgraded
//! connection to it untouched (SPDY/3.1; the API server translates kubectl's WebSocket streams
//! to SPDY itself, and passes any other WebSocket protocol through to here).
//!
//! TLS: the serving certificate of `--tls-cert-file`/`--tls-private-key-file` (`meso server`
//! issues one from the cluster CA for its agent), else a self-signed one, which the API server
//! accepts as upstream's does without `--kubelet-certificate-authority`. Callers must present a
//! client certificate signed by the cluster CA (the CA of the kubelet's kubeconfig) naming the
//! API server's kubelet-client identity: no certificate is 401, any other identity 403.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_cri::v1 as cri_api;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use kube::Api;
use meso_api::upgrade;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::cri::Cri;
use crate::logs::{self, LogOptions};
use crate::{Error, IoContext, KubeletConfig, Result};

/// Common name of the client certificate the API server calls kubelets with.
pub const API_SERVER_CLIENT_CN: &str = "kube-apiserver-kubelet-client";

type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// How long a caller may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest error body relayed from the streaming server.
const MAX_ERROR_BODY: usize = 64 * 1024;

fn text(status: StatusCode, message: impl Into<String>) -> Response<Body> {
    let mut r = Response::new(
        Full::new(Bytes::from(message.into()))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Binds the server's port (`0` picks a free one) before the node is registered, so the Node
/// can publish it.
pub async fn bind(config: &KubeletConfig) -> Result<TcpListener> {
    let addr = SocketAddr::new(config.kubelet_address, config.kubelet_port);
    TcpListener::bind(addr)
        .await
        .context(|| format!("binding the kubelet server to {addr}"))
}

/// The server's TLS configuration: serving certificate and client-certificate verification
/// against `client_cas` (DER).
pub fn tls_config(
    config: &KubeletConfig,
    client_cas: &[Vec<u8>],
    node_name: &str,
    node_ip: IpAddr,
) -> Result<rustls::ServerConfig> {
    let tls_err = |e: String| Error::Other(format!("kubelet server TLS: {e}"));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let (certs, key) = match (&config.tls_cert_file, &config.tls_private_key_file) {
        (Some(cert), Some(key)) => {
            let cert_pem = std::fs::read(cert).context(|| format!("reading {}", cert.display()))?;
            let key_pem = std::fs::read(key).context(|| format!("reading {}", key.display()))?;
            let certs = rustls_pemfile::certs(&mut cert_pem.as_slice())
                .collect::<std::result::Result<Vec<_>, _>>()
                .context(|| format!("parsing {}", cert.display()))?;
            let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
                .context(|| format!("parsing {}", key.display()))?
                .ok_or_else(|| tls_err(format!("no private key in {}", key.display())))?;
            (certs, key)
        }
        _ => {
            // Self-signed, as upstream's kubelet without a serving certificate.
            let sans: Vec<String> = [node_name, &node_ip.to_string(), "localhost", "127.0.0.1"]
                .iter()
                .map(|s| s.to_string())
                // A node name that is no valid DNS name is left out of the certificate.
                .filter(|s| rcgen::CertificateParams::new(vec![s.clone()]).is_ok())
                .collect();
            let key = rcgen::KeyPair::generate().map_err(|e| tls_err(e.to_string()))?;
            let mut params =
                rcgen::CertificateParams::new(sans).map_err(|e| tls_err(e.to_string()))?;
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, format!("{node_name}@kubelet"));
            let cert = params
                .self_signed(&key)
                .map_err(|e| tls_err(e.to_string()))?;
            let key = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der())
                .map_err(|e| tls_err(e.to_string()))?;
            (vec![cert.der().clone()], key)
        }
    };
    let mut roots = rustls::RootCertStore::empty();
    for der in client_cas {
        if let Err(e) = roots.add(rustls::pki_types::CertificateDer::from(der.clone())) {
            tracing::warn!(error = %e, "ignoring an unusable client CA certificate");
        }
    }
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(e.to_string()))?;
    let builder = if roots.is_empty() {
        tracing::warn!("no cluster CA in the kubeconfig: every kubelet server request gets 401");
        builder.with_no_client_auth()
    } else {
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| tls_err(e.to_string()))?;
        builder.with_client_cert_verifier(verifier)
    };
    let mut cfg = builder
        .with_single_cert(certs, key)
        .map_err(|e| tls_err(e.to_string()))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// The common name of a verified client certificate.
fn peer_common_name(conn: &rustls::ServerConnection) -> Option<String> {
    let der = conn.peer_certificates()?.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let cn = cert.subject().iter_common_name().next()?.as_str().ok()?;
    Some(cn.to_string())
}

/// What the server needs to answer requests.
pub struct KubeletServer {
    pub client: kube::Client,
    pub cri: Cri,
}

/// Serves `listener` until `shutdown`.
pub fn spawn(
    listener: TcpListener,
    tls: rustls::ServerConfig,
    server: Arc<KubeletServer>,
    shutdown: CancellationToken,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "kubelet server accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = shutdown.cancelled() => return,
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let server = server.clone();
            tokio::spawn(async move {
                let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
                {
                    Ok(Ok(t)) => t,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "kubelet server TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
                let caller = peer_common_name(tls.get_ref().1);
                let svc = hyper::service::service_fn(move |req| {
                    let server = server.clone();
                    let caller = caller.clone();
                    async move { Ok::<_, Infallible>(server.handle(req, caller).await) }
                });
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                if let Err(e) = builder
                    .serve_connection_with_upgrades(TokioIo::new(tls), svc)
                    .await
                {
                    tracing::debug!(%peer, error = %e, "kubelet server connection ended");
                }
            });
        }
    });
}

/// The query parameters of a request (repeated keys kept in order).
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(query: Option<&str>) -> Self {
        Params(
            form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                .into_owned()
                .collect(),
        )
    }
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }
    /// `1` or `true` (upstream's API server sends `1`).
    fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("1" | "true" | "True"))
    }
}

/// What an upgraded stream is for.
#[derive(Debug, Clone, Copy, PartialEq)]
enum StreamKind {
    Exec,
    Attach,
    PortForward,
}

impl KubeletServer {
    async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        caller: Option<String>,
    ) -> Response<Body> {
        let Some(user) = caller else {
            return text(StatusCode::UNAUTHORIZED, "Unauthorized");
        };
        if user != API_SERVER_CLIENT_CN {
            let verb = if req.method() == Method::GET {
                "get"
            } else {
                "create"
            };
            return text(
                StatusCode::FORBIDDEN,
                format!("Forbidden (user={user}, verb={verb}, resource=nodes, subresource=proxy)"),
            );
        }
        let path = req.uri().path().to_string();
        let params = Params::parse(req.uri().query());
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (req.method(), segments.as_slice()) {
            (&Method::GET, ["healthz"]) => text(StatusCode::OK, "ok"),
            (&Method::GET, ["metrics", "resource"]) => {
                let mut r = text(
                    StatusCode::OK,
                    crate::resource_metrics::collect(&self.cri).await,
                );
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                );
                r
            }
            (&Method::GET, ["containerLogs", ns, pod, container]) => {
                self.container_logs(ns, pod, container, &params).await
            }
            (&Method::GET | &Method::POST, ["exec", ns, pod, container]) => {
                self.stream(StreamKind::Exec, ns, pod, container, &params, req)
                    .await
            }
            (&Method::GET | &Method::POST, ["attach", ns, pod, container]) => {
                self.stream(StreamKind::Attach, ns, pod, container, &params, req)
                    .await
            }
            (&Method::GET | &Method::POST, ["portForward", ns, pod]) => {
                self.stream(StreamKind::PortForward, ns, pod, "", &params, req)
                    .await
            }
            _ => text(StatusCode::NOT_FOUND, "404 page not found\n"),
        }
    }

    async fn pod(&self, ns: &str, name: &str) -> std::result::Result<Pod, Response<Body>> {
        match Api::<Pod>::namespaced(self.client.clone(), ns)
            .get_opt(name)
            .await
        {
            Ok(Some(p)) => Ok(p),
            Ok(None) => Err(text(
                StatusCode::NOT_FOUND,
                format!("pod {name:?} does not exist"),
            )),
            Err(e) => Err(text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("getting pod {name:?}: {e}"),
            )),
        }
    }

    async fn container_logs(
        &self,
        ns: &str,
        pod_name: &str,
        container: &str,
        params: &Params,
    ) -> Response<Body> {
        let pod = match self.pod(ns, pod_name).await {
            Ok(p) => p,
            Err(r) => return r,
        };
        let spec = pod.spec.clone().unwrap_or_default();
        let known = spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .any(|c| c.name == container);
        if !known {
            return text(
                StatusCode::NOT_FOUND,
                format!("container {container:?} not found in pod {pod_name:?}"),
            );
        }
        let opts = match log_options(params) {
            Ok(o) => o,
            Err(e) => return text(StatusCode::BAD_REQUEST, e),
        };
        let id = match log_container_id(&pod, container, params.flag("previous")) {
            Ok(id) => id,
            Err(e) => return text(StatusCode::BAD_REQUEST, e),
        };
        let status = match self.cri.container_status(&id).await {
            Ok(Some(s)) => s,
            Ok(None) => {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!("failed to get container status {id:?}: not found"),
                )
            }
            Err(e) => {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!("failed to get container status {id:?}: {e}"),
                )
            }
        };
        let path = std::path::PathBuf::from(&status.log_path);
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
        let cri = self.cri.clone();
        tokio::spawn(async move {
            logs::stream(&path, opts, tx, move || {
                let cri = cri.clone();
                let id = id.clone();
                async move {
                    matches!(cri.container_status(&id).await,
                        Ok(Some(s)) if s.state == cri_api::ContainerState::ContainerRunning as i32)
                }
            })
            .await
        });
        let body = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv()
                .await
                .map(|b| (Ok::<_, std::io::Error>(Frame::data(b)), rx))
        });
        let mut r = Response::new(BodyExt::boxed_unsync(StreamBody::new(body)));
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        r
    }

    async fn stream(
        &self,
        kind: StreamKind,
        ns: &str,
        pod_name: &str,
        container: &str,
        params: &Params,
        req: Request<Incoming>,
    ) -> Response<Body> {
        let pod = match self.pod(ns, pod_name).await {
            Ok(p) => p,
            Err(r) => return r,
        };
        let url = match kind {
            StreamKind::PortForward => {
                let uid = pod.metadata.uid.clone().unwrap_or_default();
                let sandbox = match self.cri.list_sandboxes(Some(&uid)).await {
                    Ok(mut s) => {
                        s.retain(|s| s.state == cri_api::PodSandboxState::SandboxReady as i32);
                        s.sort_by_key(|s| std::cmp::Reverse(s.created_at));
                        s.into_iter().next()
                    }
                    Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
                };
                let Some(sandbox) = sandbox else {
                    return text(
                        StatusCode::NOT_FOUND,
                        format!("pod {pod_name:?} has no running sandbox"),
                    );
                };
                let port = params
                    .all("port")
                    .iter()
                    .filter_map(|p| p.parse::<i32>().ok())
                    .collect();
                self.cri
                    .port_forward_url(cri_api::PortForwardRequest {
                        pod_sandbox_id: sandbox.id,
                        port,
                    })
                    .await
            }
            StreamKind::Exec | StreamKind::Attach => {
                let Some(id) = running_container_id(&pod, container) else {
                    return text(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("container not found ({container:?})"),
                    );
                };
                let (stdin, stdout, stderr, tty) = (
                    params.flag("input"),
                    params.flag("output"),
                    params.flag("error"),
                    params.flag("tty"),
                );
                if !stdin && !stdout && !stderr {
                    return text(
                        StatusCode::BAD_REQUEST,
                        "you must specify at least 1 of stdin, stdout, stderr",
                    );
                }
                if kind == StreamKind::Exec {
                    self.cri
                        .exec_url(cri_api::ExecRequest {
                            container_id: id,
                            cmd: params.all("command"),
                            tty,
                            stdin,
                            stdout,
                            stderr,
                        })
                        .await
                } else {
                    self.cri
                        .attach_url(cri_api::AttachRequest {
                            container_id: id,
                            stdin,
                            tty,
                            stdout,
                            stderr,
                        })
                        .await
                }
            }
        };
        match url {
            Ok(url) => proxy_upgrade(req, &url).await,
            Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        }
    }
}

/// The log options of a `containerLogs` query.
fn log_options(params: &Params) -> std::result::Result<LogOptions, String> {
    let number = |key: &str| -> std::result::Result<Option<i64>, String> {
        params
            .get(key)
            .filter(|v| !v.is_empty())
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| format!("invalid {key}: {v:?}"))
            })
            .transpose()
    };
    let mut opts = LogOptions {
        tail_lines: number("tailLines")?.map(|n| n.max(0) as usize),
        limit_bytes: number("limitBytes")?.map(|n| n.max(0) as u64),
        timestamps: params.flag("timestamps"),
        follow: params.flag("follow"),
        since: None,
    };
    if let Some(s) = number("sinceSeconds")? {
        let since = chrono::Utc::now() - chrono::Duration::seconds(s);
        opts.since = Some(since.fixed_offset());
    } else if let Some(t) = params.get("sinceTime").filter(|v| !v.is_empty()) {
        opts.since = Some(logs::parse_time(t).ok_or_else(|| format!("invalid sinceTime: {t:?}"))?);
    }
    Ok(opts)
}

/// The runtime ID of a `containerd://ID` container ID.
fn runtime_id(container_id: &str) -> String {
    container_id
        .split_once("://")
        .map_or(container_id, |(_, id)| id)
        .to_string()
}

fn container_status<'p>(pod: &'p Pod, name: &str) -> Option<&'p ContainerStatus> {
    let status = pod.status.as_ref()?;
    status
        .container_statuses
        .iter()
        .flatten()
        .chain(status.init_container_statuses.iter().flatten())
        .find(|c| c.name == name)
}

/// The ID of the running instance of a container.
fn running_container_id(pod: &Pod, name: &str) -> Option<String> {
    let cs = container_status(pod, name)?;
    cs.state.as_ref()?.running.as_ref()?;
    cs.container_id.as_deref().map(runtime_id)
}

/// Which instance's log to read, with upstream's errors for a container without one.
fn log_container_id(pod: &Pod, name: &str, previous: bool) -> std::result::Result<String, String> {
    let pod_name = pod.metadata.name.as_deref().unwrap_or_default();
    let Some(cs) = container_status(pod, name) else {
        return Err(format!(
            "container {name:?} in pod {pod_name:?} is not available"
        ));
    };
    let state = cs.state.clone().unwrap_or_default();
    let last = cs.last_state.as_ref().and_then(|s| s.terminated.as_ref());
    let last_id = last
        .and_then(|t| t.container_id.as_deref())
        .filter(|id| !id.is_empty());
    let terminated = || format!("container {name:?} in pod {pod_name:?} is terminated");
    let id = if previous {
        last_id.ok_or_else(|| {
            format!("previous terminated container {name:?} in pod {pod_name:?} not found")
        })?
    } else if state.running.is_some() {
        cs.container_id.as_deref().unwrap_or_default()
    } else if let Some(t) = &state.terminated {
        match t.container_id.as_deref().filter(|id| !id.is_empty()) {
            Some(id) => id,
            None => last_id.ok_or_else(terminated)?,
        }
    } else if last.is_some() {
        last_id.ok_or_else(terminated)?
    } else if let Some(w) = &state.waiting {
        let reason = w.reason.as_deref().unwrap_or_default();
        let why = match reason {
            "ErrImagePull" => "image can't be pulled",
            "ImagePullBackOff" => "trying and failing to pull image",
            other => other,
        };
        return Err(format!(
            "container {name:?} in pod {pod_name:?} is waiting to start: {why}"
        ));
    } else {
        return Err(format!(
            "container {name:?} in pod {pod_name:?} is waiting to start - no logs yet"
        ));
    };
    if id.is_empty() {
        return Err(format!(
            "container {name:?} in pod {pod_name:?} is waiting to start - no logs yet"
        ));
    }
    Ok(runtime_id(id))
}

/// Sends `req`'s upgrade request to `url` (containerd's streaming server, plain HTTP) and, on
/// `101 Switching Protocols`, joins the two upgraded connections byte for byte (the routine the
/// API server uses towards kubelets). Any other answer is relayed as it is.
async fn proxy_upgrade(mut req: Request<Incoming>, url: &str) -> Response<Body> {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{what} {url}: {e}"),
        )
    };
    let uri: http::Uri = match url.parse() {
        Ok(u) => u,
        Err(e) => return fail("parsing the streaming URL", &e),
    };
    let Some(authority) = uri.authority().cloned() else {
        return fail("parsing the streaming URL", &"no host");
    };
    let tcp = match TcpStream::connect(authority.as_str()).await {
        Ok(t) => t,
        Err(e) => return fail("connecting to", &e),
    };
    let mut sender = match upgrade::handshake(tcp).await {
        Ok(s) => s,
        Err(e) => return fail("connecting to", &e),
    };
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let out = match upgrade::request(
        req.method().clone(),
        path,
        authority.as_str(),
        req.headers(),
        |_| true,
    ) {
        Ok(r) => r,
        Err(e) => return fail("building the request to", &e),
    };
    let client_upgrade = hyper::upgrade::on(&mut req);
    match upgrade::send(&mut sender, out, MAX_ERROR_BODY).await {
        Err(e) => fail("requesting", &e),
        Ok(upgrade::Answer::Refused {
            status,
            content_type,
            body,
        }) => {
            let mut r = Response::new(
                Full::new(body)
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            );
            *r.status_mut() = status;
            if let Some(ct) = content_type {
                r.headers_mut().insert(header::CONTENT_TYPE, ct);
            }
            r
        }
        Ok(upgrade::Answer::Switched { headers, upgrade }) => {
            let mut r = Response::new(Empty::new().map_err(|never| match never {}).boxed_unsync());
            *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            *r.headers_mut() = headers;
            upgrade::join(client_upgrade, upgrade);
            r
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(statuses: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c"}]},
            "status": {"containerStatuses": statuses},
        }))
        .unwrap()
    }

    #[test]
    fn log_container_follows_upstream_rules() {
        let waiting = pod(
            json!([{"name": "c", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ContainerCreating"}}}]),
        );
        assert_eq!(
            log_container_id(&waiting, "c", false).unwrap_err(),
            r#"container "c" in pod "p" is waiting to start: ContainerCreating"#
        );
        assert_eq!(
            log_container_id(&waiting, "c", true).unwrap_err(),
            r#"previous terminated container "c" in pod "p" not found"#
        );
        let restarted = pod(
            json!([{"name": "c", "image": "i", "imageID": "", "ready": true, "restartCount": 1,
            "containerID": "containerd://new",
            "state": {"running": {}},
            "lastState": {"terminated": {"exitCode": 1, "containerID": "containerd://old"}}}]),
        );
        assert_eq!(log_container_id(&restarted, "c", false).unwrap(), "new");
        assert_eq!(log_container_id(&restarted, "c", true).unwrap(), "old");
        assert!(log_container_id(&restarted, "x", false)
            .unwrap_err()
            .contains("is not available"));
    }

    #[test]
    fn log_options_parse_the_query() {
        let p = Params::parse(Some(
            "tailLines=3&limitBytes=10&timestamps=true&follow=1&sinceTime=2024-01-01T00:00:00Z",
        ));
        let o = log_options(&p).unwrap();
        assert_eq!(
            (o.tail_lines, o.limit_bytes, o.timestamps, o.follow),
            (Some(3), Some(10), true, true)
        );
        assert!(o.since.is_some());
        assert!(log_options(&Params::parse(Some("tailLines=x"))).is_err());
    }
}
