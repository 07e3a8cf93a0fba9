//! `pods/log`, `pods/exec`, `pods/attach` and `pods/portforward`: the API server picks the
//! container as upstream does, finds the pod's node (InternalIP and the kubelet port the Node
//! publishes) and proxies to the kubelet's HTTPS server with its kubelet-client certificate.
//! Logs stream back as chunked `text/plain`. Exec, attach and port-forward: a SPDY/3.1 upgrade
//! passes through untouched; a WebSocket exec/attach (`v5.channel.k8s.io`, `v4.channel.k8s.io`)
//! is translated to SPDY towards the kubelet and a WebSocket port-forward
//! (`SPDY/3.1+portforward.k8s.io`) is tunnelled ([`crate::websocket`]); other WebSocket
//! protocols pass through to the kubelet, as upstream's API server does.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{header, HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt, Empty, Limited};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde_json::{json, Value};

use crate::certs::Pki;
use crate::errors::{ApiError, ApiResult, Cause};
use crate::registry::ResourceCtx;
use crate::request::Query;
use crate::rest::ResourceRequest;
use crate::server::AppState;
use crate::{upgrade, websocket};

/// The kubelet port when a Node publishes none.
const DEFAULT_KUBELET_PORT: u16 = 10250;
/// How long connecting to a kubelet may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest error body read from a kubelet (upstream's limit).
const MAX_ERROR_BODY: usize = 50_000;

/// Accepts any kubelet serving certificate, as upstream's API server does without
/// `--kubelet-certificate-authority` (handshake signatures are still checked).
#[derive(Debug)]
struct AnyKubeletCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyKubeletCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// TLS towards kubelets: the kubelet-client certificate, any serving certificate.
pub fn kubelet_tls(pki: &Pki) -> anyhow::Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs: Vec<_> = rustls_pemfile::certs(&mut pki.kubelet_client_cert_pem.as_bytes())
        .collect::<Result<_, _>>()?;
    let key = rustls_pemfile::private_key(&mut pki.kubelet_client_key_pem.as_bytes())?
        .ok_or_else(|| anyhow::anyhow!("kubelet client key missing"))?;
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyKubeletCert(provider)))
        .with_client_auth_cert(certs, key)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

fn names(list: Option<&Value>) -> Vec<String> {
    list.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
        .collect()
}

/// The container a request is for, with upstream's errors: the only container by default,
/// else any container, init container or ephemeral container named.
fn choose_container(pod: &Value, name: &str, requested: Option<&str>) -> ApiResult<String> {
    let spec = pod.get("spec");
    let containers = names(spec.and_then(|s| s.get("containers")));
    let init = names(spec.and_then(|s| s.get("initContainers")));
    let ephemeral = names(spec.and_then(|s| s.get("ephemeralContainers")));
    match requested.filter(|c| !c.is_empty()) {
        None => match containers.as_slice() {
            [only] => Ok(only.clone()),
            [] => Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}"
            ))),
            _ => {
                let mut msg = format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    containers.join(" ")
                );
                if !init.is_empty() {
                    msg.push_str(&format!(
                        " or one of the init containers: [{}]",
                        init.join(" ")
                    ));
                }
                Err(ApiError::bad_request(msg))
            }
        },
        Some(c)
            if containers
                .iter()
                .chain(&init)
                .chain(&ephemeral)
                .any(|n| n == c) =>
        {
            Ok(c.to_string())
        }
        Some(c) => Err(ApiError::bad_request(format!(
            "container {c} is not valid for pod {name}"
        ))),
    }
}

/// Upstream's `ValidatePodLogOptions`.
fn validate_log_options(name: &str, q: &Query) -> ApiResult<()> {
    let mut causes = Vec::new();
    if let Some(n) = q.int("tailLines")?.filter(|n| *n < 0) {
        causes.push(Cause::invalid(
            "tailLines",
            &json!(n),
            "must be greater than or equal to 0",
        ));
    }
    if let Some(n) = q.int("limitBytes")?.filter(|n| *n < 1) {
        causes.push(Cause::invalid(
            "limitBytes",
            &json!(n),
            "must be greater than 0",
        ));
    }
    let since_seconds = q.int("sinceSeconds")?;
    let since_time = q.get("sinceTime").filter(|s| !s.is_empty());
    if let Some(t) = since_time {
        if chrono::DateTime::parse_from_rfc3339(t).is_err() {
            return Err(ApiError::bad_request(format!(
                "parsing time {t:?} as \"2006-01-02T15:04:05Z07:00\": cannot parse"
            )));
        }
    }
    match (since_seconds, since_time) {
        (Some(_), Some(_)) => causes.push(Cause::forbidden(
            "",
            "at most one of `sinceTime` or `sinceSeconds` may be specified",
        )),
        (Some(n), None) if n < 1 => causes.push(Cause::invalid(
            "sinceSeconds",
            &json!(n),
            "must be greater than 0",
        )),
        _ => {}
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid("PodLogOptions", "", name, causes))
    }
}

/// Where the kubelet of `node` listens: its InternalIP (else another address) and the port
/// in `status.daemonEndpoints`.
fn kubelet_address(state: &AppState, node: &str) -> ApiResult<(String, u16)> {
    let info = state
        .lookup("", "v1", "nodes")
        .ok_or_else(|| ApiError::internal("the nodes resource is not registered"))?;
    let node = state.registry.get(&ResourceCtx::new(info, None), node)?;
    let status = node.get("status");
    let addresses: Vec<(String, String)> = status
        .and_then(|s| s.get("addresses"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| {
            Some((
                a.get("type")?.as_str()?.to_string(),
                a.get("address")?.as_str()?.to_string(),
            ))
        })
        .collect();
    let address = [
        "InternalIP",
        "Hostname",
        "InternalDNS",
        "ExternalIP",
        "ExternalDNS",
    ]
    .iter()
    .find_map(|t| addresses.iter().find(|(at, _)| at == t))
    .map(|(_, a)| a.clone())
    .ok_or_else(|| {
        let known: Vec<String> = addresses
            .iter()
            .map(|(t, a)| format!("{{{t} {a}}}"))
            .collect();
        ApiError::internal(format!(
            "no preferred addresses found; known addresses: [{}]",
            known.join(" ")
        ))
    })?;
    let port = status
        .and_then(|s| s.pointer("/daemonEndpoints/kubeletEndpoint/Port"))
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0)
        .unwrap_or(DEFAULT_KUBELET_PORT);
    Ok((address, port))
}

/// Opens an HTTP/1.1 connection over TLS to a kubelet.
async fn connect_kubelet(state: &AppState, host: &str, port: u16) -> ApiResult<upgrade::Sender> {
    let unreachable =
        |e: &dyn std::fmt::Display| ApiError::internal(format!("error dialing backend: {e}"));
    let tcp = tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port)),
    )
    .await
    .map_err(|_| unreachable(&"dial timeout"))?
    .map_err(|e| unreachable(&e))?;
    let _ = tcp.set_nodelay(true);
    let server_name = match host.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
        Ok(ip) => ServerName::IpAddress(ip.into()),
        Err(_) => ServerName::try_from(host.to_string()).map_err(|e| unreachable(&e))?,
    };
    let tls = tokio_rustls::TlsConnector::from(state.kubelet_tls.clone())
        .connect(server_name, tcp)
        .await
        .map_err(|e| unreachable(&e))?;
    upgrade::handshake(tls).await.map_err(|e| unreachable(&e))
}

fn encode(params: &[(&str, String)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        s.append_pair(k, v);
    }
    s.finish()
}

fn seg(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Serves one of the streaming subresources of a pod.
pub async fn pod_subresource(
    state: &Arc<AppState>,
    ctx: &ResourceCtx,
    name: &str,
    sub: &str,
    req: &ResourceRequest,
) -> ApiResult<Response> {
    if !ctx.info.group.is_empty() || ctx.info.plural != "pods" {
        return Err(ApiError::no_resource());
    }
    let is_get = req.method == http::Method::GET;
    let is_post = req.method == http::Method::POST;
    match sub {
        "log" if !is_get => return Err(ApiError::method_not_allowed()),
        "exec" | "attach" | "portforward" if !(is_get || is_post) => {
            return Err(ApiError::method_not_allowed())
        }
        _ => {}
    }
    let q = &req.query;
    if sub == "log" {
        validate_log_options(name, q)?;
    }
    let pod = state.registry.get(ctx, name)?;
    let ns = ctx.namespace.clone().unwrap_or_default();
    let container = match sub {
        "portforward" => String::new(),
        _ => choose_container(&pod, name, q.get("container"))?,
    };
    let node = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if node.is_empty() {
        if sub == "log" {
            // Upstream streams from an empty location: no content.
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    let yes = |key: &str| q.flag(key).then(|| "1".to_string());
    let (path, params): (String, Vec<(&str, String)>) = match sub {
        "log" => {
            let mut p: Vec<(&str, String)> = Vec::new();
            for key in ["follow", "previous", "timestamps"] {
                if q.flag(key) {
                    p.push((key, "true".into()));
                }
            }
            for key in ["sinceSeconds", "sinceTime", "tailLines", "limitBytes"] {
                if let Some(v) = q.get(key).filter(|v| !v.is_empty()) {
                    p.push((key, v.to_string()));
                }
            }
            (
                format!(
                    "/containerLogs/{}/{}/{}",
                    seg(&ns),
                    seg(name),
                    seg(&container)
                ),
                p,
            )
        }
        "exec" | "attach" => {
            let mut p: Vec<(&str, String)> = Vec::new();
            if sub == "exec" {
                for c in q.all("command") {
                    p.push(("command", c.clone()));
                }
            }
            for (from, to) in [
                ("stdin", "input"),
                ("stdout", "output"),
                ("stderr", "error"),
                ("tty", "tty"),
            ] {
                if let Some(v) = yes(from) {
                    p.push((to, v));
                }
            }
            (
                format!("/{sub}/{}/{}/{}", seg(&ns), seg(name), seg(&container)),
                p,
            )
        }
        _ => {
            let p = q
                .all("ports")
                .iter()
                .flat_map(|v| v.split(','))
                .map(|port| ("port", port.trim().to_string()))
                .collect();
            (format!("/portForward/{}/{}", seg(&ns), seg(name)), p)
        }
    };
    let uri = if params.is_empty() {
        path
    } else {
        format!("{path}?{}", encode(&params))
    };
    if sub == "log" {
        let (host, port) = kubelet_address(state, node)?;
        return stream_log(state, &host, port, &uri, name).await;
    }
    let upgrade_header = req
        .headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if upgrade_header.is_empty() {
        return Err(ApiError::bad_request("Upgrade request required"));
    }
    let (host, port) = kubelet_address(state, node)?;
    if upgrade_header.to_ascii_lowercase().contains("websocket") {
        let offered = websocket::offered_protocols(&req.headers);
        let mode = if sub == "portforward" {
            let tunnelled = websocket::tunnel_protocols(&offered);
            (!tunnelled.is_empty()).then_some(WebSocketMode::Tunnel(tunnelled))
        } else {
            websocket::channel_protocol(&offered).map(|protocol| {
                WebSocketMode::Translate(
                    protocol,
                    websocket::StreamOptions {
                        stdin: q.flag("stdin"),
                        stdout: q.flag("stdout"),
                        stderr: q.flag("stderr"),
                        tty: q.flag("tty"),
                    },
                )
            })
        };
        if let Some(mode) = mode {
            return websocket_stream(state, &host, port, &uri, req, sub, mode).await;
        }
    }
    passthrough(state, &host, port, &uri, req, sub).await
}

/// How the API server serves a WebSocket stream itself.
enum WebSocketMode {
    /// exec/attach: channels translated to SPDY streams.
    Translate(&'static str, websocket::StreamOptions),
    /// port-forward: these SPDY protocols tunnelled through the WebSocket.
    Tunnel(Vec<String>),
}

fn subresource_label(sub: &str) -> &'static str {
    match sub {
        "exec" => "exec",
        "attach" => "attach",
        _ => "portforward",
    }
}

/// Serves a WebSocket exec/attach/port-forward: opens a SPDY/3.1 upgrade to the kubelet and,
/// once it answers `101`, accepts the client's WebSocket and joins the two.
async fn websocket_stream(
    state: &AppState,
    host: &str,
    port: u16,
    uri: &str,
    req: &ResourceRequest,
    sub: &str,
    mode: WebSocketMode,
) -> ApiResult<Response> {
    let accept = websocket::accept_key(&req.headers)?;
    let Some(client_upgrade) = req.upgrade.clone() else {
        return Err(ApiError::bad_request("Upgrade request required"));
    };
    let mut sender = connect_kubelet(state, host, port).await?;
    let mut out = upgrade::request(
        http::Method::POST,
        uri,
        &format!("{host}:{port}"),
        &req.headers,
        |name| !websocket::is_upgrade_header(name),
    )
    .map_err(|e| ApiError::internal(e.to_string()))?;
    let headers = out.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
    let spdy_protocols = match &mode {
        WebSocketMode::Translate(..) => vec![websocket::SPDY_PROTOCOL.to_string()],
        WebSocketMode::Tunnel(p) => p.clone(),
    };
    for p in &spdy_protocols {
        let value = HeaderValue::from_str(p).map_err(|e| ApiError::bad_request(e.to_string()))?;
        headers.append(websocket::STREAM_PROTOCOL_VERSION, value);
    }
    let (backend_headers, backend_upgrade) = match send_upgrade(&mut sender, out).await? {
        Ok(switched) => switched,
        Err(refusal) => return Ok(refusal),
    };
    let protocol = match &mode {
        WebSocketMode::Translate(protocol, _) => Some(protocol.to_string()),
        WebSocketMode::Tunnel(_) => websocket::tunnel_answer_protocol(&backend_headers)?,
    };
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    *r.headers_mut() = websocket::switching_headers(&accept, protocol.as_deref());
    match mode {
        WebSocketMode::Translate(protocol, opts) => {
            websocket::translate(client_upgrade, backend_upgrade, protocol, opts)
        }
        WebSocketMode::Tunnel(_) => websocket::tunnel(client_upgrade, backend_upgrade),
    }
    state
        .metrics
        .stream_upgraded("websocket", subresource_label(sub));
    tracing::debug!(subresource = sub, protocol = ?protocol, "websocket stream upgraded");
    Ok(r)
}

/// `GET path` on the kubelet of `node`: the whole body (at most `limit` bytes) of a
/// successful answer, else an error naming the status.
pub async fn kubelet_get(
    state: &AppState,
    node: &str,
    path: &str,
    limit: usize,
) -> ApiResult<Bytes> {
    let (host, port) = kubelet_address(state, node)?;
    let mut sender = connect_kubelet(state, &host, port).await?;
    let request = Request::get(path)
        .header(header::HOST, format!("{host}:{port}"))
        .body(Empty::<Bytes>::new())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let resp = sender
        .send_request(request)
        .await
        .map_err(|e| ApiError::internal(format!("error reading from the kubelet: {e}")))?;
    let status = resp.status();
    let body = Limited::new(resp.into_body(), limit)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .map_err(|e| ApiError::internal(format!("error reading from the kubelet: {e}")))?;
    if !status.is_success() {
        return Err(ApiError::internal(format!(
            "the kubelet answered {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(MAX_ERROR_BODY)])
        )));
    }
    Ok(body)
}

/// Streams a kubelet's log answer, or turns its error into upstream's Status.
/// Sends an upgrade request to the kubelet: its headers and connection once it switched
/// protocols, or else a response relaying its answer (as upstream's upgrade-aware proxy does).
async fn send_upgrade(
    sender: &mut upgrade::Sender,
    out: Request<Empty<Bytes>>,
) -> ApiResult<Result<(http::HeaderMap, hyper::upgrade::OnUpgrade), Response>> {
    let answer = upgrade::send(sender, out, MAX_ERROR_BODY)
        .await
        .map_err(|e| ApiError::internal(format!("error proxying to the kubelet: {e}")))?;
    Ok(match answer {
        upgrade::Answer::Refused {
            status,
            content_type,
            body,
        } => Err(websocket::relay(status, content_type, body)),
        upgrade::Answer::Switched { headers, upgrade } => Ok((headers, upgrade)),
    })
}

async fn stream_log(
    state: &AppState,
    host: &str,
    port: u16,
    uri: &str,
    name: &str,
) -> ApiResult<Response> {
    let mut sender = connect_kubelet(state, host, port).await?;
    let request = Request::get(uri)
        .header(header::HOST, format!("{host}:{port}"))
        .body(Empty::<Bytes>::new())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let resp = sender
        .send_request(request)
        .await
        .map_err(|e| ApiError::internal(format!("error reading from the kubelet: {e}")))?;
    let status = resp.status();
    if status.is_success() {
        let mut r = Response::new(Body::new(resp.into_body()));
        *r.status_mut() = StatusCode::OK;
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        return Ok(r);
    }
    let body = Limited::new(resp.into_body(), MAX_ERROR_BODY)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&body).into_owned();
    Err(match status {
        StatusCode::BAD_REQUEST => ApiError::bad_request(text),
        StatusCode::NOT_FOUND => ApiError::new(
            404,
            "NotFound",
            format!("the server could not find the requested resource ( pods/log {name})"),
        ),
        StatusCode::INTERNAL_SERVER_ERROR => {
            ApiError::internal(format!("Internal error occurred: {text}"))
        }
        other => ApiError::new(other.as_u16(), "", text),
    })
}

/// Proxies an upgrade request to the kubelet as it is; on `101` joins the two connections.
async fn passthrough(
    state: &AppState,
    host: &str,
    port: u16,
    uri: &str,
    req: &ResourceRequest,
    sub: &str,
) -> ApiResult<Response> {
    let mut sender = connect_kubelet(state, host, port).await?;
    let out = upgrade::request(
        req.method.clone(),
        uri,
        &format!("{host}:{port}"),
        &req.headers,
        |_| true,
    )
    .map_err(|e| ApiError::internal(e.to_string()))?;
    let (headers, backend_upgrade) = match send_upgrade(&mut sender, out).await? {
        Ok(switched) => switched,
        Err(refusal) => return Ok(refusal),
    };
    let Some(client_upgrade) = req.upgrade.clone() else {
        return Err(ApiError::bad_request("Upgrade request required"));
    };
    let protocol = match req
        .headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
    {
        Some(u) if u.to_ascii_lowercase().contains("websocket") => "websocket",
        _ => "spdy",
    };
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    *r.headers_mut() = headers;
    upgrade::join(client_upgrade, backend_upgrade);
    state
        .metrics
        .stream_upgraded(protocol, subresource_label(sub));
    tracing::debug!(subresource = sub, protocol, "stream upgrade passed through");
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_choice_matches_upstream_messages() {
        let pod = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}],
                                  "initContainers": [{"name": "i"}]}});
        assert_eq!(
            choose_container(&pod, "p", None).unwrap_err().message,
            "a container name must be specified for pod p, choose one of: [a b] or one of the init containers: [i]"
        );
        assert_eq!(choose_container(&pod, "p", Some("i")).unwrap(), "i");
        let err = choose_container(&pod, "p", Some("x")).unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (400, "container x is not valid for pod p")
        );
        let one = json!({"spec": {"containers": [{"name": "only"}]}});
        assert_eq!(choose_container(&one, "p", None).unwrap(), "only");
    }

    #[test]
    fn log_options_are_validated_as_upstream() {
        let q = Query::parse(Some("tailLines=-1&sinceSeconds=0"));
        let err = validate_log_options("p", &q).unwrap_err();
        assert_eq!(err.code, 422);
        assert!(
            err.message.contains("tailLines: Invalid value: -1"),
            "{}",
            err.message
        );
        let q = Query::parse(Some("sinceSeconds=5&sinceTime=2024-01-01T00:00:00Z"));
        assert!(validate_log_options("p", &q)
            .unwrap_err()
            .message
            .contains("at most one of"));
        assert!(validate_log_options("p", &Query::parse(Some("tailLines=3"))).is_ok());
    }
}
