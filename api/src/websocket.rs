//! WebSocket streaming for `pods/exec`, `pods/attach` and `pods/portforward`, as upstream's API
//! server does it (k8s.io/apiserver/pkg/util/proxy: StreamTranslatorHandler and
//! TunnelingHandler):
//!
//! - exec/attach over `v5.channel.k8s.io` (or `v4.channel.k8s.io`): binary messages whose first
//!   byte is the channel (0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize; in v5 `255 <ch>`
//!   closes a channel), translated to the SPDY/3.1 remote-command protocol
//!   (`v4.channel.k8s.io`) towards the kubelet, one SPDY stream per channel.
//! - port-forward over `SPDY/3.1+portforward.k8s.io`: the client speaks SPDY itself and the
//!   WebSocket only carries its bytes, so the API server opens a SPDY upgrade to the kubelet
//!   and copies message payloads to that connection and back.

use bytes::{BufMut, Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{header, StatusCode};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::errors::ApiError;
use crate::spdy::{Frame, FrameReader, HeaderCompressor, FLAG_FIN};

/// The remote-command protocol with stream close (kubectl ≥ 1.30).
pub const V5: &str = "v5.channel.k8s.io";
/// The remote-command protocol without it.
pub const V4: &str = "v4.channel.k8s.io";
/// What the API server asks the kubelet for.
pub const SPDY_PROTOCOL: &str = V4;
/// The prefix of a SPDY protocol tunnelled through a WebSocket.
pub const TUNNEL_PREFIX: &str = "SPDY/3.1+";

const SEC_WEBSOCKET_PROTOCOL: &str = "sec-websocket-protocol";
const SEC_WEBSOCKET_KEY: &str = "sec-websocket-key";
const SEC_WEBSOCKET_VERSION: &str = "sec-websocket-version";
/// The header carrying the stream protocols offered and chosen on a SPDY upgrade.
pub const STREAM_PROTOCOL_VERSION: &str = "x-stream-protocol-version";

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;
/// v5: `[255, channel]` closes the channel.
const CLOSE: u8 = 255;
/// Largest data frame sent to the kubelet.
const MAX_DATA_FRAME: usize = 32 * 1024;
/// Largest error-stream Status kept.
const MAX_STATUS: usize = 64 * 1024;

/// The WebSocket subprotocols a request offers, in its order.
pub fn offered_protocols(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// The channel protocol the API server translates: v5 when offered, else v4.
pub fn channel_protocol(offered: &[String]) -> Option<&'static str> {
    [V5, V4]
        .into_iter()
        .find(|want| offered.iter().any(|p| p == want))
}

/// The SPDY protocols a port-forward request tunnels (`SPDY/3.1+X.k8s.io` gives `X.k8s.io`).
pub fn tunnel_protocols(offered: &[String]) -> Vec<String> {
    offered
        .iter()
        .filter_map(|p| p.strip_prefix(TUNNEL_PREFIX))
        .filter(|p| p.ends_with(".k8s.io"))
        .map(str::to_string)
        .collect()
}

/// Request headers that describe the WebSocket or upgrade and are not sent on towards the
/// kubelet's SPDY upgrade.
pub fn is_upgrade_header(name: &HeaderName) -> bool {
    name == header::UPGRADE
        || name == header::CONNECTION
        || name.as_str().starts_with("sec-websocket-")
        || name.as_str() == STREAM_PROTOCOL_VERSION
}

/// The `Sec-WebSocket-Accept` answer for a WebSocket upgrade request, or upstream's 400.
pub fn accept_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let version = headers
        .get(SEC_WEBSOCKET_VERSION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if version.trim() != "13" {
        return Err(ApiError::bad_request(
            "websocket: unsupported version: 13 not found in 'Sec-Websocket-Version' header",
        ));
    }
    match headers.get(SEC_WEBSOCKET_KEY) {
        Some(key) if !key.as_bytes().is_empty() => Ok(derive_accept_key(key.as_bytes())),
        _ => Err(ApiError::bad_request(
            "websocket: not a websocket handshake: 'Sec-WebSocket-Key' header must be Base64 encoded value of 16-byte in length",
        )),
    }
}

/// The headers of a `101` WebSocket answer choosing `protocol`.
pub fn switching_headers(accept: &str, protocol: Option<&str>) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(accept) {
        h.insert("sec-websocket-accept", v);
    }
    if let Some(v) = protocol.and_then(|p| HeaderValue::from_str(p).ok()) {
        h.insert(SEC_WEBSOCKET_PROTOCOL, v);
    }
    h
}

/// The protocol to answer a tunnelled port-forward with, from the kubelet's SPDY answer; an
/// answer that is no SPDY upgrade is upstream's 500.
pub fn tunnel_answer_protocol(backend: &HeaderMap) -> Result<Option<String>, ApiError> {
    let get = |n: &HeaderName| {
        backend
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase()
    };
    if !get(&header::CONNECTION).contains("upgrade") || !get(&header::UPGRADE).contains("spdy/3.1")
    {
        return Err(ApiError::internal(
            "unable to upgrade: missing upgrade headers in response",
        ));
    }
    Ok(backend
        .get(STREAM_PROTOCOL_VERSION)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| format!("{TUNNEL_PREFIX}{p}")))
}

/// Which streams an exec or attach carries.
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

async fn server_socket(
    upgrade: OnUpgrade,
) -> Result<WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>, hyper::Error> {
    let io = TokioIo::new(upgrade.await?);
    Ok(WebSocketStream::from_raw_socket(io, Role::Server, Some(WebSocketConfig::default())).await)
}

fn close_normal() -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    }))
}

/// Once both sides have upgraded, translates the client's channels to SPDY streams on the
/// kubelet's connection until the command ends or the client goes away.
pub fn translate(
    client: OnUpgrade,
    backend: OnUpgrade,
    protocol: &'static str,
    opts: StreamOptions,
) {
    tokio::spawn(async move {
        let (ws, spdy) = match tokio::join!(server_socket(client), backend) {
            (Ok(ws), Ok(spdy)) => (ws, TokioIo::new(spdy)),
            (c, b) => {
                tracing::debug!(client = ?c.err(), backend = ?b.err(), "stream upgrade failed");
                return;
            }
        };
        run_translation(ws, spdy, protocol == V5, opts).await;
    });
}

/// The SPDY stream ids of one remote command.
struct Streams {
    error: u32,
    stdin: Option<u32>,
    stdout: Option<u32>,
    stderr: Option<u32>,
    resize: Option<u32>,
}

/// Opens the streams as client-go does (error first), returning their ids and the frames.
fn open_streams(opts: StreamOptions) -> (Streams, Vec<Bytes>) {
    let mut compressor = HeaderCompressor::default();
    let mut frames = Vec::new();
    let mut next_id = 1u32;
    let mut open = |kind: &str| {
        let id = next_id;
        next_id += 2;
        let block = crate::spdy::name_value_block(&[("streamtype", kind)]);
        frames.push(
            Frame::SynStream {
                stream_id: id,
                associated_to: 0,
                priority: 0,
                flags: 0,
                header_block: compressor.compress(&block),
            }
            .to_bytes(),
        );
        id
    };
    let error = open("error");
    let stdin = opts.stdin.then(|| open("stdin"));
    let stdout = opts.stdout.then(|| open("stdout"));
    // With a terminal, stderr is merged into stdout (client-go opens no stderr stream).
    let stderr = (opts.stderr && !opts.tty).then(|| open("stderr"));
    let resize = opts.tty.then(|| open("resize"));
    (
        Streams {
            error,
            stdin,
            stdout,
            stderr,
            resize,
        },
        frames,
    )
}

fn data_frames(stream_id: u32, data: &[u8]) -> impl Iterator<Item = Bytes> + '_ {
    data.chunks(MAX_DATA_FRAME).map(move |chunk| {
        Frame::Data {
            stream_id,
            flags: 0,
            data: Bytes::copy_from_slice(chunk),
        }
        .to_bytes()
    })
}

fn channel_message(channel: u8, data: &[u8]) -> Message {
    let mut b = BytesMut::with_capacity(data.len() + 1);
    b.put_u8(channel);
    b.put_slice(data);
    Message::Binary(b.freeze())
}

async fn run_translation<S, IO>(ws: WebSocketStream<S>, spdy: IO, v5: bool, opts: StreamOptions)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (spdy_read, mut spdy_write) = tokio::io::split(spdy);
    let (streams, opening) = open_streams(opts);
    let (to_kubelet, mut outgoing) = mpsc::channel::<Bytes>(64);
    let writer = tokio::spawn(async move {
        for frame in opening {
            spdy_write.write_all(&frame).await?;
        }
        spdy_write.flush().await?;
        while let Some(frame) = outgoing.recv().await {
            spdy_write.write_all(&frame).await?;
            spdy_write.flush().await?;
        }
        spdy_write.shutdown().await
    });
    let (mut ws_tx, mut ws_rx) = ws.split();

    // Client to kubelet: stdin, resize, and (v5) the close of stdin. Ends `true` when the
    // client goes away.
    let (stdin_id, resize_id) = (streams.stdin, streams.resize);
    let tx = to_kubelet.clone();
    let mut from_client = tokio::spawn(async move {
        let mut stdin_open = stdin_id.is_some();
        while let Some(msg) = ws_rx.next().await {
            let data = match msg {
                Ok(Message::Binary(b)) => b,
                Ok(Message::Close(frame)) => {
                    tracing::debug!(?frame, "the stream client closed the connection");
                    break;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "reading from the stream client failed");
                    break;
                }
                Ok(_) => continue,
            };
            let Some((&channel, payload)) = data.split_first() else {
                continue;
            };
            let frames: Vec<Bytes> = match (channel, stdin_id, resize_id) {
                (STDIN, Some(id), _) if stdin_open => data_frames(id, payload).collect(),
                (RESIZE, _, Some(id)) => data_frames(id, payload).collect(),
                (CLOSE, Some(id), _) if v5 && stdin_open && payload == [STDIN] => {
                    // Half-closes the stdin stream; later stdin is dropped.
                    stdin_open = false;
                    vec![Frame::Data {
                        stream_id: id,
                        flags: FLAG_FIN,
                        data: Bytes::new(),
                    }
                    .to_bytes()]
                }
                _ => Vec::new(),
            };
            for f in frames {
                if tx.send(f).await.is_err() {
                    // The kubelet's side broke; its reader tells how.
                    return false;
                }
            }
        }
        true
    });

    // Kubelet to client. The lowest writable channel gets an empty message first, as upstream
    // tells the client the streams are ready.
    let first = if opts.stdout {
        STDOUT
    } else if opts.stderr {
        STDERR
    } else {
        ERROR
    };
    let mut client_gone = ws_tx.send(channel_message(first, &[])).await.is_err();
    let mut reader = FrameReader::new(spdy_read);
    let mut status = Vec::new();
    let mut ended_cleanly = false;
    let mut failure = None;
    let mut client_reading = true;
    while !client_gone {
        let frame = tokio::select! {
            f = reader.next() => f,
            gone = &mut from_client, if client_reading => {
                client_reading = false;
                if gone.unwrap_or(true) {
                    client_gone = true;
                    break;
                }
                continue;
            }
        };
        tracing::trace!(?frame, "frame from the kubelet");
        match frame {
            Ok(Some(Frame::Data {
                stream_id, data, ..
            })) => {
                if !data.is_empty() {
                    // Give back the window the data used, the stream's and the session's.
                    let delta = data.len() as u32;
                    for id in [stream_id, 0] {
                        let update = Frame::WindowUpdate {
                            stream_id: id,
                            delta,
                        };
                        let _ = to_kubelet.send(update.to_bytes()).await;
                    }
                }
                let channel = if stream_id == streams.error {
                    if status.len() + data.len() <= MAX_STATUS {
                        status.extend_from_slice(&data);
                    }
                    continue;
                } else if Some(stream_id) == streams.stdout {
                    STDOUT
                } else if Some(stream_id) == streams.stderr {
                    STDERR
                } else {
                    continue;
                };
                if !data.is_empty() && ws_tx.send(channel_message(channel, &data)).await.is_err() {
                    client_gone = true;
                }
            }
            Ok(Some(Frame::Ping { id })) => {
                // Answer the kubelet's pings (even ids); ours would be odd, and we send none.
                if id % 2 == 0 {
                    let _ = to_kubelet.send(Frame::Ping { id }.to_bytes()).await;
                }
            }
            Ok(Some(Frame::GoAway { .. })) | Ok(None) => {
                ended_cleanly = true;
                break;
            }
            Ok(Some(Frame::RstStream { stream_id, status }))
                if stream_id == streams.error && status != crate::spdy::RST_CANCEL =>
            {
                tracing::debug!(stream_id, status, "kubelet reset the error stream");
            }
            Ok(Some(_)) => {}
            Err(e) => {
                failure = Some(e.to_string());
                break;
            }
        }
    }
    tracing::debug!(
        client_gone,
        ended_cleanly,
        ?failure,
        status = %String::from_utf8_lossy(&status),
        "remote command ended"
    );
    from_client.abort();
    drop(to_kubelet);
    if !client_gone {
        let outcome = if !status.is_empty() {
            Outcome::Status(&status)
        } else if let Some(why) = failure {
            Outcome::Failed(why)
        } else if ended_cleanly {
            Outcome::Ended
        } else {
            Outcome::Failed("the kubelet's stream ended early".to_string())
        };
        let status = serde_json::to_vec(&client_status(outcome)).unwrap_or_default();
        let _ = ws_tx.send(channel_message(ERROR, &status)).await;
        let _ = ws_tx.send(close_normal()).await;
        let _ = ws_tx.close().await;
    }
    match writer.await {
        Ok(Err(e)) => tracing::debug!(error = %e, "writing to the kubelet ended"),
        Err(e) => tracing::debug!(error = %e, "kubelet writer failed"),
        Ok(Ok(())) => {}
    }
}

/// How the kubelet's side of a remote command ended.
enum Outcome<'a> {
    /// With this Status on the error stream.
    Status(&'a [u8]),
    /// Cleanly, with nothing on the error stream.
    Ended,
    /// With a broken connection.
    Failed(String),
}

/// Upstream's `apierrors.NewInternalError(err).Status()`, as its stream translator writes it.
fn internal_status(err: &str) -> serde_json::Value {
    json!({"metadata": {}, "status": "Failure",
           "message": format!("Internal error occurred: {err}"), "reason": "InternalError",
           "details": {"causes": [{"message": err}]}, "code": 500})
}

/// The Status the client gets on the error channel, as upstream's stream translator derives
/// it from what its SPDY executor made of the kubelet's Status: success, a non-zero exit code
/// (reason `NonZeroExitCode`, the code as the `ExitCode` cause), or an internal error.
fn client_status(outcome: Outcome<'_>) -> serde_json::Value {
    let success = json!({"metadata": {}, "status": "Success"});
    let raw = match outcome {
        Outcome::Ended => return success,
        Outcome::Failed(why) => return internal_status(&why),
        Outcome::Status(raw) => raw,
    };
    let Ok(status) = serde_json::from_slice::<serde_json::Value>(raw) else {
        return internal_status(&format!(
            "error stream protocol error: {}",
            String::from_utf8_lossy(raw)
        ));
    };
    let field = |k: &str| status.get(k).and_then(serde_json::Value::as_str);
    match field("status") {
        Some("Success") => success,
        Some("Failure") if field("reason") == Some("NonZeroExitCode") => {
            let causes = status
                .pointer("/details/causes")
                .and_then(serde_json::Value::as_array)
                .cloned()
                .unwrap_or_default();
            let code = causes
                .iter()
                .filter(|c| c.get("reason").and_then(serde_json::Value::as_str) == Some("ExitCode"))
                .find_map(|c| c.get("message")?.as_str()?.parse::<u8>().ok());
            match code {
                Some(rc) => json!({"metadata": {}, "status": "Failure",
                    "message": format!("command terminated with non-zero exit code: command terminated with exit code {rc}"),
                    "reason": "NonZeroExitCode",
                    "details": {"causes": [{"reason": "ExitCode", "message": rc.to_string()}]}}),
                None => internal_status(&format!(
                    "missing exit code in non-zero exit code error: {}",
                    serde_json::Value::Array(causes)
                )),
            }
        }
        Some("Failure") => internal_status(field("message").unwrap_or_default()),
        _ => internal_status("error stream protocol error: unknown error"),
    }
}

/// Once both sides have upgraded, carries the client's SPDY bytes in binary messages to the
/// kubelet's connection and back until either side ends.
pub fn tunnel(client: OnUpgrade, backend: OnUpgrade) {
    tokio::spawn(async move {
        let (ws, backend) = match tokio::join!(server_socket(client), backend) {
            (Ok(ws), Ok(b)) => (ws, TokioIo::new(b)),
            (c, b) => {
                tracing::debug!(client = ?c.err(), backend = ?b.err(), "tunnel upgrade failed");
                return;
            }
        };
        let (mut backend_read, mut backend_write) = tokio::io::split(backend);
        let (mut ws_tx, mut ws_rx) = ws.split();
        let up = async {
            while let Some(msg) = ws_rx.next().await {
                match msg {
                    Ok(Message::Binary(b)) => {
                        if backend_write.write_all(&b).await.is_err()
                            || backend_write.flush().await.is_err()
                        {
                            break;
                        }
                    }
                    Ok(Message::Close(_)) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            let _ = backend_write.shutdown().await;
        };
        let down = async {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match backend_read.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let msg = Message::Binary(Bytes::copy_from_slice(&buf[..n]));
                        if ws_tx.send(msg).await.is_err() {
                            return;
                        }
                    }
                }
            }
            let _ = ws_tx.send(close_normal()).await;
            let _ = ws_tx.close().await;
        };
        tokio::select! {
            _ = up => {}
            _ = down => {}
        }
    });
}

/// A plain answer relayed from the kubelet (status, content type, body).
pub fn relay(
    status: StatusCode,
    content_type: Option<HeaderValue>,
    body: Bytes,
) -> axum::response::Response {
    let mut r = axum::response::Response::new(axum::body::Body::from(body));
    *r.status_mut() = status;
    if let Some(ct) = content_type {
        r.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn protocols_are_negotiated_as_upstream() {
        let h = headers(&[
            (
                "Sec-WebSocket-Protocol",
                "v4.channel.k8s.io, v5.channel.k8s.io",
            ),
            ("Sec-WebSocket-Protocol", "base64.channel.k8s.io"),
        ]);
        let offered = offered_protocols(&h);
        assert_eq!(offered.len(), 3);
        assert_eq!(channel_protocol(&offered), Some(V5));
        assert_eq!(channel_protocol(&offered[..1]), Some(V4));
        assert_eq!(channel_protocol(&offered[2..]), None);
        let pf = vec![
            "SPDY/3.1+portforward.k8s.io".to_string(),
            "v4.channel.k8s.io".to_string(),
            "SPDY/3.1+other".to_string(),
        ];
        assert_eq!(tunnel_protocols(&pf), vec!["portforward.k8s.io"]);
    }

    #[test]
    fn handshake_answers() {
        // RFC 6455's example key.
        let h = headers(&[
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("sec-websocket-version", "13"),
        ]);
        assert_eq!(accept_key(&h).unwrap(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        let err = accept_key(&headers(&[("sec-websocket-version", "13")])).unwrap_err();
        assert_eq!(err.code, 400);
        let err = accept_key(&headers(&[("sec-websocket-key", "x")])).unwrap_err();
        assert_eq!(err.code, 400);
        let sw = switching_headers("abc", Some(V5));
        assert_eq!(sw["sec-websocket-protocol"], V5);
        assert_eq!(sw["upgrade"], "websocket");
        let ok = headers(&[
            ("connection", "Upgrade"),
            ("upgrade", "SPDY/3.1"),
            ("x-stream-protocol-version", "portforward.k8s.io"),
        ]);
        assert_eq!(
            tunnel_answer_protocol(&ok).unwrap().as_deref(),
            Some("SPDY/3.1+portforward.k8s.io")
        );
        assert_eq!(
            tunnel_answer_protocol(&headers(&[("upgrade", "websocket")]))
                .unwrap_err()
                .code,
            500
        );
        assert!(is_upgrade_header(&HeaderName::from_static(
            "sec-websocket-key"
        )));
        assert!(!is_upgrade_header(&header::USER_AGENT));
    }

    #[test]
    fn streams_open_in_client_go_order() {
        let (s, frames) = open_streams(StreamOptions {
            stdin: true,
            stdout: true,
            stderr: true,
            tty: true,
        });
        assert_eq!(
            (s.error, s.stdin, s.stdout, s.stderr, s.resize),
            (1, Some(3), Some(5), None, Some(7))
        );
        assert_eq!(frames.len(), 4);
        let mut buf = BytesMut::from(&frames[0][..]);
        let Some(Frame::SynStream { stream_id, .. }) = Frame::decode(&mut buf).unwrap() else {
            panic!("not a SYN_STREAM");
        };
        assert_eq!(stream_id, 1);
        let (s, _) = open_streams(StreamOptions {
            stdout: true,
            stderr: true,
            ..Default::default()
        });
        assert_eq!(
            (s.stdin, s.stdout, s.stderr, s.resize),
            (None, Some(3), Some(5), None)
        );
    }

    #[test]
    fn client_status_follows_upstreams_translator() {
        assert_eq!(
            client_status(Outcome::Status(br#"{"metadata":{},"status":"Success"}"#)),
            json!({"metadata": {}, "status": "Success"})
        );
        assert_eq!(client_status(Outcome::Ended)["status"], "Success");
        let exit = client_status(Outcome::Status(
            br#"{"status":"Failure","message":"x","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"42"}]}}"#,
        ));
        assert_eq!(
            exit,
            json!({"metadata": {}, "status": "Failure",
                   "message": "command terminated with non-zero exit code: command terminated with exit code 42",
                   "reason": "NonZeroExitCode",
                   "details": {"causes": [{"reason": "ExitCode", "message": "42"}]}})
        );
        let failed = client_status(Outcome::Status(
            br#"{"status":"Failure","message":"container not running"}"#,
        ));
        assert_eq!(failed["reason"], "InternalError");
        assert_eq!(failed["code"], 500);
        assert_eq!(
            failed["message"],
            "Internal error occurred: container not running"
        );
        let missing = client_status(Outcome::Status(
            br#"{"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[]}}"#,
        ));
        assert_eq!(missing["reason"], "InternalError");
        assert_eq!(client_status(Outcome::Status(b"not json"))["code"], 500);
        assert_eq!(
            client_status(Outcome::Failed("boom".into()))["details"]["causes"][0]["message"],
            "boom"
        );
    }

    #[tokio::test]
    async fn a_client_that_goes_away_ends_the_translation() {
        let (kubelet_side, translator_side) = tokio::io::duplex(1 << 16);
        let (client_side, server_side) = tokio::io::duplex(1 << 16);
        let server_ws = WebSocketStream::from_raw_socket(server_side, Role::Server, None).await;
        let opts = StreamOptions {
            stdout: true,
            stderr: true,
            ..Default::default()
        };
        let task = tokio::spawn(run_translation(server_ws, translator_side, true, opts));
        drop(client_side);
        tokio::time::timeout(std::time::Duration::from_secs(10), task)
            .await
            .expect("the translation ends")
            .unwrap();
        // The kubelet saw the three streams opened, then the end of the connection.
        let mut frames = FrameReader::new(kubelet_side);
        let mut opened = 0;
        while let Some(f) = frames.next().await.unwrap() {
            assert!(matches!(f, Frame::SynStream { .. }), "{f:?}");
            opened += 1;
        }
        assert_eq!(opened, 3);
    }

    /// A fake kubelet on one end of a pipe: checks what the translator sends and answers as
    /// containerd's streaming server does.
    #[tokio::test]
    async fn translation_carries_channels_and_the_status() {
        use tokio_tungstenite::tungstenite::protocol::Role;
        let (kubelet_side, translator_side) = tokio::io::duplex(1 << 20);
        let (client_side, server_side) = tokio::io::duplex(1 << 20);
        let server_ws = WebSocketStream::from_raw_socket(server_side, Role::Server, None).await;
        let mut client = WebSocketStream::from_raw_socket(client_side, Role::Client, None).await;
        let opts = StreamOptions {
            stdin: true,
            stdout: true,
            stderr: true,
            tty: false,
        };
        let task = tokio::spawn(run_translation(server_ws, translator_side, true, opts));
        let (kr, mut kw) = tokio::io::split(kubelet_side);
        let mut frames = FrameReader::new(kr);
        let mut syn = Vec::new();
        while syn.len() < 4 {
            if let Some(Frame::SynStream { stream_id, .. }) = frames.next().await.unwrap() {
                syn.push(stream_id);
            }
        }
        assert_eq!(syn, [1, 3, 5, 7]);
        // The client: the ready message, then stdin and its close.
        let ready = client.next().await.unwrap().unwrap();
        assert_eq!(ready, Message::Binary(Bytes::from_static(&[STDOUT])));
        client
            .send(Message::Binary(Bytes::from_static(b"\x00hello")))
            .await
            .unwrap();
        client
            .send(Message::Binary(Bytes::from_static(&[CLOSE, STDIN])))
            .await
            .unwrap();
        // After the close, stdin is dropped; a resize without a terminal goes nowhere.
        client
            .send(Message::Binary(Bytes::from_static(b"\x00late")))
            .await
            .unwrap();
        client
            .send(Message::Binary(Bytes::from_static(b"\x04{}")))
            .await
            .unwrap();
        let Some(Frame::Data {
            stream_id,
            data,
            flags,
        }) = frames.next().await.unwrap()
        else {
            panic!("no stdin data");
        };
        assert_eq!((stream_id, &data[..], flags), (3, &b"hello"[..], 0));
        let Some(Frame::Data {
            stream_id,
            data,
            flags,
        }) = frames.next().await.unwrap()
        else {
            panic!("no stdin close");
        };
        assert_eq!((stream_id, data.len(), flags), (3, 0, FLAG_FIN));
        // The kubelet: stdout, stderr, the exit status, then goes away.
        let mut out = BytesMut::new();
        for (id, d) in [(5u32, &b"out"[..]), (7, b"err")] {
            Frame::Data {
                stream_id: id,
                flags: 0,
                data: Bytes::copy_from_slice(d),
            }
            .encode(&mut out);
        }
        let status = br#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: exit status 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#;
        Frame::Data {
            stream_id: 1,
            flags: FLAG_FIN,
            data: Bytes::from_static(status),
        }
        .encode(&mut out);
        Frame::Ping { id: 2 }.encode(&mut out);
        Frame::GoAway {
            last_good_stream_id: 0,
            status: 0,
        }
        .encode(&mut out);
        kw.write_all(&out).await.unwrap();
        let mut got = Vec::new();
        while let Some(Ok(msg)) = client.next().await {
            match msg {
                Message::Binary(b) => got.push(b),
                Message::Close(_) => break,
                _ => {}
            }
        }
        assert_eq!(got[0][..], b"\x01out"[..]);
        assert_eq!(got[1][..], b"\x02err"[..]);
        assert_eq!(got[2][0], ERROR);
        let sent: serde_json::Value = serde_json::from_slice(&got[2][1..]).unwrap();
        assert_eq!(sent["reason"], "NonZeroExitCode");
        assert_eq!(sent["details"]["causes"][0]["message"], "3");
        // The kubelet got window updates for what it sent and its ping back.
        let mut updates = 0;
        let mut pong = false;
        while let Ok(Some(f)) = frames.next().await {
            match f {
                Frame::WindowUpdate { .. } => updates += 1,
                Frame::Ping { id: 2 } => pong = true,
                other => panic!("unexpected frame {other:?}"),
            }
        }
        assert_eq!(updates, 6);
        assert!(pong);
        task.await.unwrap();
    }
}
