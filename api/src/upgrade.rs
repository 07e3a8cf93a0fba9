//! The upgrade proxy shared by the API server (towards kubelets) and the kubelet (towards
//! containerd's streaming server): send an upgrade request on an HTTP/1.1 client connection,
//! await `101 Switching Protocols`, then join the two upgraded connections byte for byte. Any
//! other answer is handed back (its status, content type and a bounded body) for the caller to
//! relay.

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

/// The sending half of an HTTP/1.1 client connection that can be upgraded.
pub type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

/// What the backend answered an upgrade request.
pub enum Answer {
    /// `101`: the backend's headers and its upgraded connection.
    Switched {
        headers: HeaderMap,
        upgrade: OnUpgrade,
    },
    /// Anything else, to relay as it is.
    Refused {
        status: StatusCode,
        content_type: Option<HeaderValue>,
        body: Bytes,
    },
}

/// Headers never forwarded to a backend: the connection's own and the caller's credentials.
pub fn forwardable(name: &HeaderName) -> bool {
    !matches!(
        *name,
        header::HOST | header::AUTHORIZATION | header::CONTENT_LENGTH | header::TRANSFER_ENCODING
    )
}

/// Starts an HTTP/1.1 client connection over `io`; the connection task keeps running (with
/// upgrades) until the peer or the last sender goes away.
pub async fn handshake<IO>(io: IO) -> Result<Sender, hyper::Error>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "upgrade backend connection ended");
        }
    });
    Ok(sender)
}

/// An upgrade request for `uri` on `host` carrying the forwardable `headers` for which `keep`
/// holds.
pub fn request(
    method: Method,
    uri: &str,
    host: &str,
    headers: &HeaderMap,
    keep: impl Fn(&HeaderName) -> bool,
) -> Result<Request<Empty<Bytes>>, http::Error> {
    let mut out = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, host);
    for (name, value) in headers {
        if forwardable(name) && keep(name) {
            out = out.header(name, value);
        }
    }
    out.body(Empty::new())
}

/// Sends an upgrade request and waits for the answer; a refusal's body is read up to
/// `max_error_body` bytes.
pub async fn send(
    sender: &mut Sender,
    req: Request<Empty<Bytes>>,
    max_error_body: usize,
) -> Result<Answer, hyper::Error> {
    let mut resp = sender.send_request(req).await?;
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        let upgrade = hyper::upgrade::on(&mut resp);
        return Ok(Answer::Switched {
            headers: resp.headers().clone(),
            upgrade,
        });
    }
    let status = resp.status();
    let content_type = resp.headers().get(header::CONTENT_TYPE).cloned();
    let body = Limited::new(resp.into_body(), max_error_body)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Ok(Answer::Refused {
        status,
        content_type,
        body,
    })
}

/// Once both sides have upgraded, copies bytes both ways until either side ends.
pub fn join(client: OnUpgrade, backend: OnUpgrade) {
    tokio::spawn(async move {
        let (client, backend) = match tokio::join!(client, backend) {
            (Ok(c), Ok(b)) => (c, b),
            (c, b) => {
                tracing::debug!(client = ?c.err(), backend = ?b.err(), "stream upgrade failed");
                return;
            }
        };
        let (mut client, mut backend) = (TokioIo::new(client), TokioIo::new(backend));
        if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut backend).await {
            tracing::debug!(error = %e, "stream ended");
        }
    });
}
