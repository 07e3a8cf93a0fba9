//! Service account tokens as upstream issues them: ES256-signed JWTs from the TokenRequest API
//! (`POST /api/v1/namespaces/{ns}/serviceaccounts/{name}/token`), their verification when
//! clients present them as bearer tokens, and the OIDC discovery documents
//! (`/.well-known/openid-configuration`, `/openid/v1/jwks`).
//!
//! The signing key is a P-256 key generated into the API server's PKI directory at first start
//! (`service-account.key`, PKCS#8 PEM) and reused afterwards. The key id (`kid`) is upstream's:
//! the unpadded base64url SHA-256 of the public key's PKIX DER encoding.

use std::path::Path;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, KeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED,
    ECDSA_P256_SHA256_FIXED_SIGNING,
};
use serde_json::{json, Map, Value};

use crate::auth::{InvalidCredentials, UserInfo};
use crate::errors::{ApiError, ApiResult, Cause};
use crate::registry::ResourceCtx;
use crate::request::Output;
use crate::rest::ResourceRequest;
use crate::server::AppState;
use axum::response::Response;
use http::StatusCode;

/// The issuer (`iss`) of every token, and the default audience, as upstream's default
/// `--service-account-issuer`.
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// The key file in the PKI directory.
pub const KEY_FILE: &str = "service-account.key";

/// Default and minimum lifetimes of requested tokens (upstream's TokenRequest validation).
pub const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
pub const MIN_EXPIRATION_SECONDS: i64 = 600;
/// 2^32 seconds: the largest lifetime upstream accepts.
pub const MAX_EXPIRATION_SECONDS: i64 = 1 << 32;
/// The lifetime the kubelet asks for; upstream extends such pod-bound tokens for the API
/// server's own audience to a year (`--service-account-extend-token-expiration`), warning
/// after the requested lifetime.
pub const KUBELET_EXPIRATION_SECONDS: i64 = 3607;
const EXTENDED_EXPIRATION_SECONDS: i64 = 365 * 24 * 3600;
/// Clock skew tolerated on `exp`/`nbf`/`iat`, as go-jose's default leeway.
const LEEWAY_SECONDS: i64 = 60;

/// DER prefix of a PKIX SubjectPublicKeyInfo for an uncompressed P-256 point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("service account key {0}: {1}")]
    Io(String, std::io::Error),
    #[error("service account key {0}: not a PKCS#8 P-256 private key in PEM")]
    Malformed(String),
    #[error("generating the service account key failed")]
    Generate,
}

/// A token that does not authenticate anyone (the request answers 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid service account token: {0}")]
pub struct InvalidToken(pub &'static str);

/// The key that signs and verifies service account tokens.
pub struct TokenSigner {
    key: EcdsaKeyPair,
    kid: String,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("kid", &self.kid)
            .finish()
    }
}

impl TokenSigner {
    /// Loads `dir/service-account.key`, generating it on first use.
    pub fn load_or_create(dir: &Path) -> Result<TokenSigner, KeyError> {
        let path = dir.join(KEY_FILE);
        let shown = path.display().to_string();
        match std::fs::read_to_string(&path) {
            Ok(pem) => {
                let der = pem_body(&pem).ok_or_else(|| KeyError::Malformed(shown.clone()))?;
                TokenSigner::from_pkcs8(&der).ok_or(KeyError::Malformed(shown))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let rng = SystemRandom::new();
                let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|_| KeyError::Generate)?;
                let pem = to_pem("PRIVATE KEY", doc.as_ref());
                crate::certs::write_file(&path, pem.as_bytes(), 0o600).map_err(|e| {
                    KeyError::Io(shown.clone(), std::io::Error::other(e.to_string()))
                })?;
                TokenSigner::from_pkcs8(doc.as_ref()).ok_or(KeyError::Malformed(shown))
            }
            Err(e) => Err(KeyError::Io(shown, e)),
        }
    }

    fn from_pkcs8(der: &[u8]) -> Option<TokenSigner> {
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng).ok()?;
        let kid = URL_SAFE_NO_PAD.encode(sha256(&spki_der(key.public_key().as_ref())));
        Some(TokenSigner { key, kid })
    }

    /// The key id carried in every token's header and in the JWKS.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Signs `claims` as a compact JWS (`{"alg":"ES256","kid":…}`).
    pub fn sign(&self, claims: &Value) -> Option<String> {
        let header = json!({"alg": "ES256", "kid": self.kid});
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = self
            .key
            .sign(&SystemRandom::new(), signing_input.as_bytes())
            .ok()?;
        Some(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(sig.as_ref())
        ))
    }

    /// Checks a compact JWS's signature against this key and returns its claims. Tokens of
    /// other issuers or other shapes answer `Ok(None)` (not ours to judge), a token of ours
    /// that fails any check `Err`.
    pub fn verify(
        &self,
        token: &str,
        now: i64,
    ) -> Result<Option<Map<String, Value>>, InvalidToken> {
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Ok(None);
        };
        let decode_json = |p: &str| -> Option<Map<String, Value>> {
            let bytes = URL_SAFE_NO_PAD.decode(p).ok()?;
            match serde_json::from_slice(&bytes).ok()? {
                Value::Object(m) => Some(m),
                _ => None,
            }
        };
        let (Some(header), Some(claims)) = (decode_json(h), decode_json(c)) else {
            return Ok(None);
        };
        if claims.get("iss").and_then(Value::as_str) != Some(ISSUER) {
            return Ok(None);
        }
        if header.get("alg").and_then(Value::as_str) != Some("ES256") {
            return Err(InvalidToken("unsupported signing algorithm"));
        }
        let sig = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| InvalidToken("malformed signature"))?;
        let public =
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, self.key.public_key().as_ref());
        let signed = &token[..h.len() + 1 + c.len()];
        public
            .verify(signed.as_bytes(), &sig)
            .map_err(|_| InvalidToken("invalid signature"))?;
        let num = |k: &str| claims.get(k).and_then(Value::as_i64);
        match num("exp") {
            Some(exp) if now <= exp + LEEWAY_SECONDS => {}
            Some(_) => return Err(InvalidToken("token has expired")),
            None => return Err(InvalidToken("token has no expiry")),
        }
        if num("nbf").is_some_and(|nbf| now + LEEWAY_SECONDS < nbf)
            || num("iat").is_some_and(|iat| now + LEEWAY_SECONDS < iat)
        {
            return Err(InvalidToken("token used before issued"));
        }
        let audiences: Vec<&str> = match claims.get("aud") {
            Some(Value::String(a)) => vec![a.as_str()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !audiences.contains(&ISSUER) {
            return Err(InvalidToken("token audiences are not the API server's"));
        }
        Ok(Some(claims))
    }

    /// `/openid/v1/jwks`: the public key as a JWK set.
    pub fn jwks(&self) -> Value {
        let point = self.key.public_key().as_ref();
        let (x, y) = point
            .get(1..)
            .map(|p| p.split_at(p.len() / 2))
            .unwrap_or((&[], &[]));
        json!({"keys": [{
            "use": "sig",
            "kty": "EC",
            "kid": self.kid,
            "crv": "P-256",
            "alg": "ES256",
            "x": URL_SAFE_NO_PAD.encode(x),
            "y": URL_SAFE_NO_PAD.encode(y),
        }]})
    }
}

/// `/.well-known/openid-configuration` as upstream serves it; the key set's URL is on the
/// API server's external address (`https://host:port`).
pub fn openid_configuration(server_url: &str) -> Value {
    json!({
        "issuer": ISSUER,
        "jwks_uri": format!("{server_url}/openid/v1/jwks"),
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
    })
}

/// The claims of a token for service account `sa` (an object) in `ns`, optionally bound to
/// `bound` (`(kind, name, uid)`, kind `Pod` or `Secret`) and carrying the pod's node
/// (`(name, uid)`), as upstream's `serviceaccount.Claims`.
#[allow(clippy::too_many_arguments)]
pub fn claims(
    ns: &str,
    sa_name: &str,
    sa_uid: &str,
    audiences: &[String],
    now: i64,
    expiration_seconds: i64,
    warn_after: Option<i64>,
    bound: Option<(&str, &str, &str)>,
    node: Option<(&str, &str)>,
) -> Value {
    let mut k8s = Map::new();
    k8s.insert("namespace".into(), json!(ns));
    k8s.insert(
        "serviceaccount".into(),
        json!({"name": sa_name, "uid": sa_uid}),
    );
    if let Some((kind, name, uid)) = bound {
        let key = if kind == "Secret" { "secret" } else { "pod" };
        k8s.insert(key.into(), json!({"name": name, "uid": uid}));
    }
    if let Some((name, uid)) = node {
        k8s.insert("node".into(), json!({"name": name, "uid": uid}));
    }
    if let Some(w) = warn_after {
        k8s.insert("warnafter".into(), json!(w));
    }
    json!({
        "aud": audiences,
        "exp": now + expiration_seconds,
        "iat": now,
        "iss": ISSUER,
        "jti": uuid::Uuid::new_v4().to_string(),
        "kubernetes.io": k8s,
        "nbf": now,
        "sub": format!("system:serviceaccount:{ns}:{sa_name}"),
    })
}

/// The lifetime written into a token (`exp - iat`) and its `warnafter`, for a request of
/// `requested` seconds: upstream extends the kubelet's 3607 s pod-bound tokens for the API
/// server's audience to a year.
pub fn effective_expiration(
    requested: i64,
    audiences: &[String],
    pod_bound: bool,
    now: i64,
) -> (i64, Option<i64>) {
    let api_audience = audiences.iter().any(|a| a == ISSUER);
    if requested == KUBELET_EXPIRATION_SECONDS && pod_bound && api_audience {
        (EXTENDED_EXPIRATION_SECONDS, Some(now + requested))
    } else {
        (requested, None)
    }
}

/// What a verified token says about its subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSubject {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// `(kind, name, uid)` of the object the token is bound to (`Pod` or `Secret`).
    pub bound: Option<(String, String, String)>,
}

/// Reads the subject of verified claims; `None` when they lack it.
pub fn subject(claims: &Map<String, Value>) -> Option<TokenSubject> {
    let k8s = claims.get("kubernetes.io")?;
    let s = |v: Option<&Value>, k: &str| -> Option<String> {
        v?.get(k).and_then(Value::as_str).map(str::to_string)
    };
    let namespace = s(Some(k8s), "namespace")?;
    let sa = k8s.get("serviceaccount");
    let (name, uid) = (s(sa, "name")?, s(sa, "uid")?);
    let sub = claims.get("sub").and_then(Value::as_str)?;
    if sub != format!("system:serviceaccount:{namespace}:{name}") {
        return None;
    }
    let bound = ["pod", "secret"].iter().find_map(|key| {
        let r = k8s.get(*key)?;
        let kind = if *key == "pod" { "Pod" } else { "Secret" };
        Some((kind.to_string(), s(Some(r), "name")?, s(Some(r), "uid")?))
    });
    Some(TokenSubject {
        namespace,
        name,
        uid,
        bound,
    })
}

fn spki_der(point: &[u8]) -> Vec<u8> {
    let mut der = P256_SPKI_PREFIX.to_vec();
    der.extend_from_slice(point);
    der
}

fn sha256(data: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(data).to_vec()
}

fn to_pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn pem_body(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("-----"))
        .collect();
    STANDARD.decode(body).ok()
}

// ---------------------------------------------------------------------------------------------
// The TokenRequest API and bearer-token authentication, on the API server's state.

/// How long after its deletion a bound pod or secret stops validating tokens (upstream's
/// `invalidIfDeletedBefore` grace of a minute).
const DELETED_GRACE_SECONDS: i64 = 60;

fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = v;
    for p in path {
        match cur.get(p) {
            Some(next) => cur = next,
            None => return "",
        }
    }
    cur.as_str().unwrap_or("")
}

impl AppState {
    fn get_core_object(&self, plural: &str, ns: &str, name: &str) -> ApiResult<Value> {
        let info = self
            .lookup("", "v1", plural)
            .ok_or_else(ApiError::no_resource)?;
        self.registry
            .get(&ResourceCtx::new(info, Some(ns.to_string())), name)
    }

    /// Authenticates a bearer token issued by [`AppState::create_token`]: `None` when the token
    /// is not one of ours, else the service account's user, or `InvalidCredentials` when the
    /// token is expired, forged, or its service account or bound object is gone or replaced.
    pub fn authenticate_service_account_token(
        &self,
        token: &str,
    ) -> Option<Result<UserInfo, InvalidCredentials>> {
        let now = chrono::Utc::now().timestamp();
        let reject = |why: &str| {
            tracing::debug!(reason = why, "service account token rejected");
            Some(Err(InvalidCredentials))
        };
        let claims = match self.sa_tokens.verify(token, now) {
            Ok(Some(c)) => c,
            Ok(None) => return None,
            Err(InvalidToken(why)) => return reject(why),
        };
        let Some(subject) = subject(&claims) else {
            return reject("token names no service account");
        };
        let ns = subject.namespace.as_str();
        match self.get_core_object("serviceaccounts", ns, &subject.name) {
            Ok(sa) if str_at(&sa, &["metadata", "uid"]) == subject.uid => {}
            Ok(_) => return reject("service account was recreated"),
            Err(_) => return reject("service account does not exist"),
        }
        if let Some((kind, name, uid)) = &subject.bound {
            let plural = if kind == "Pod" { "pods" } else { "secrets" };
            match self.get_core_object(plural, ns, name) {
                Ok(obj) if str_at(&obj, &["metadata", "uid"]) == uid => {
                    let deleted = chrono::DateTime::parse_from_rfc3339(str_at(
                        &obj,
                        &["metadata", "deletionTimestamp"],
                    ))
                    .map(|t| t.timestamp());
                    if deleted.is_ok_and(|t| t < now - DELETED_GRACE_SECONDS) {
                        return reject("bound object was deleted");
                    }
                }
                Ok(_) => return reject("bound object was recreated"),
                Err(_) => return reject("bound object does not exist"),
            }
        }
        Some(Ok(UserInfo {
            name: format!("system:serviceaccount:{ns}:{}", subject.name),
            uid: subject.uid,
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{ns}"),
                "system:authenticated".into(),
            ],
        }))
    }

    /// `POST /api/v1/namespaces/{ns}/serviceaccounts/{name}/token`: issues a token for the
    /// service account as upstream's TokenRequest REST does.
    pub(crate) async fn create_token(
        &self,
        ctx: &ResourceCtx,
        name: &str,
        req: &ResourceRequest,
        output: Output,
    ) -> ApiResult<Response> {
        const GROUP: &str = "authentication.k8s.io";
        const KIND: &str = "TokenRequest";
        let ns = ctx.namespace.clone().unwrap_or_default();
        let mut tr = self.decode_write_body(ctx, req, KIND, "authentication.k8s.io/v1")?;
        let dry_run = req.query.dry_run()?;
        let field_invalid = |field: &str, value: &str, detail: &str| {
            ApiError::invalid(
                KIND,
                GROUP,
                name,
                vec![Cause::invalid(field, &json!(value), detail)],
            )
        };
        let req_name = str_at(&tr, &["metadata", "name"]).to_string();
        if !req_name.is_empty() && req_name != name {
            return Err(field_invalid(
                "metadata.name",
                &req_name,
                "must match the service account name if specified",
            ));
        }
        let req_ns = str_at(&tr, &["metadata", "namespace"]).to_string();
        if !req_ns.is_empty() && req_ns != ns {
            return Err(field_invalid(
                "metadata.namespace",
                &req_ns,
                "must match the service account namespace if specified",
            ));
        }
        let sa = self.registry.get(ctx, name)?;
        let spec = tr.get("spec").cloned().unwrap_or_else(|| json!({}));
        let mut audiences: Vec<String> = spec
            .get("audiences")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        if audiences.is_empty() {
            audiences.push(ISSUER.to_string());
        }
        let requested = match spec.get("expirationSeconds") {
            None | Some(Value::Null) => DEFAULT_EXPIRATION_SECONDS,
            Some(v) => v.as_i64().ok_or_else(|| {
                ApiError::bad_request(format!(
                    "TokenRequest.spec.expirationSeconds: expected an integer, got {v}"
                ))
            })?,
        };
        let mut causes = Vec::new();
        if requested < MIN_EXPIRATION_SECONDS {
            causes.push(Cause::invalid(
                "spec.expirationSeconds",
                &json!(requested),
                "may not specify a duration less than 10 minutes",
            ));
        }
        if requested > MAX_EXPIRATION_SECONDS {
            causes.push(Cause::invalid(
                "spec.expirationSeconds",
                &json!(requested),
                "may not specify a duration larger than 2^32 seconds",
            ));
        }
        if !causes.is_empty() {
            return Err(ApiError::invalid(KIND, GROUP, "", causes));
        }

        // The bound object: a pod running as this service account, or a secret (or a node).
        let mut bound: Option<(String, String, String)> = None;
        let mut node: Option<(String, String)> = None;
        if let Some(r) = spec.get("boundObjectRef").filter(|r| !r.is_null()) {
            let kind = str_at(r, &["kind"]);
            let api_version = str_at(r, &["apiVersion"]);
            let ref_name = str_at(r, &["name"]).to_string();
            let ref_uid = str_at(r, &["uid"]);
            let (plural, resource) = match (api_version, kind) {
                ("v1" | "", "Pod") => ("pods", "Pod"),
                ("v1" | "", "Secret") => ("secrets", "Secret"),
                ("v1" | "", "Node") => ("nodes", "Node"),
                _ => {
                    let gvk = gvk_string(api_version, kind);
                    return Err(ApiError::bad_request(format!(
                        "cannot bind token to object of type {gvk}"
                    )));
                }
            };
            let obj = if plural == "nodes" {
                let info = self
                    .lookup("", "v1", "nodes")
                    .ok_or_else(ApiError::no_resource)?;
                self.registry
                    .get(&ResourceCtx::new(info, None), &ref_name)?
            } else {
                self.get_core_object(plural, &ns, &ref_name)?
            };
            let uid = str_at(&obj, &["metadata", "uid"]).to_string();
            if !ref_uid.is_empty() && ref_uid != uid {
                return Err(ApiError::conflict(
                    "",
                    resource,
                    &ref_name,
                    &format!(
                        "the UID in the bound object reference ({ref_uid}) does not match the UID in record. The object might have been deleted and then recreated"
                    ),
                ));
            }
            match plural {
                "pods" => {
                    let pod_sa = str_at(&obj, &["spec", "serviceAccountName"]);
                    let pod_sa = if pod_sa.is_empty() { "default" } else { pod_sa };
                    if pod_sa != name {
                        return Err(ApiError::bad_request(format!(
                            "cannot bind token for serviceaccount {name:?} to pod running with different serviceaccount name."
                        )));
                    }
                    let node_name = str_at(&obj, &["spec", "nodeName"]).to_string();
                    if !node_name.is_empty() {
                        if let Some(info) = self.lookup("", "v1", "nodes") {
                            if let Ok(n) =
                                self.registry.get(&ResourceCtx::new(info, None), &node_name)
                            {
                                node =
                                    Some((node_name, str_at(&n, &["metadata", "uid"]).to_string()));
                            }
                        }
                    }
                    bound = Some(("Pod".into(), ref_name, uid));
                }
                "secrets" => bound = Some(("Secret".into(), ref_name, uid)),
                _ => node = Some((ref_name, uid)),
            }
        }

        let now = chrono::Utc::now().timestamp();
        let pod_bound = matches!(&bound, Some((k, _, _)) if k == "Pod");
        let (lifetime, warn_after) = effective_expiration(requested, &audiences, pod_bound, now);
        let mut spec_out = spec.clone();
        if let Some(o) = spec_out.as_object_mut() {
            o.insert("audiences".into(), json!(audiences));
            o.insert("expirationSeconds".into(), json!(requested));
            o.entry("boundObjectRef").or_insert(Value::Null);
        }
        if let Some(o) = tr.as_object_mut() {
            let meta = o.entry("metadata").or_insert_with(|| json!({}));
            if let Some(m) = meta.as_object_mut() {
                m.insert("name".into(), json!(name));
                m.insert("namespace".into(), json!(ns));
                m.insert("creationTimestamp".into(), json!(rfc3339(now)));
            }
            o.insert("spec".into(), spec_out);
            o.insert(
                "status".into(),
                json!({"token": "", "expirationTimestamp": null}),
            );
        }
        if !dry_run {
            let sa_uid = str_at(&sa, &["metadata", "uid"]);
            let c = claims(
                &ns,
                name,
                sa_uid,
                &audiences,
                now,
                lifetime,
                warn_after,
                bound
                    .as_ref()
                    .map(|(k, n, u)| (k.as_str(), n.as_str(), u.as_str())),
                node.as_ref().map(|(n, u)| (n.as_str(), u.as_str())),
            );
            let token = self
                .sa_tokens
                .sign(&c)
                .ok_or_else(|| ApiError::internal("failed to sign the service account token"))?;
            if let Some(o) = tr.as_object_mut() {
                o.insert(
                    "status".into(),
                    json!({"token": token, "expirationTimestamp": rfc3339(now + requested)}),
                );
            }
        }
        Ok(crate::rest::respond(StatusCode::CREATED, output, &tr))
    }
}

/// `GroupVersionKind.String()`: `group/version, Kind=kind`.
fn gvk_string(api_version: &str, kind: &str) -> String {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    format!("{group}/{version}, Kind={kind}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> (tempfile::TempDir, TokenSigner) {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = TokenSigner::load_or_create(dir.path()).expect("key");
        (dir, s)
    }

    fn api_aud() -> Vec<String> {
        vec![ISSUER.to_string()]
    }

    #[test]
    fn key_is_created_once_and_reused() {
        let (dir, a) = signer();
        let b = TokenSigner::load_or_create(dir.path()).expect("reload");
        assert_eq!(a.kid(), b.kid());
        let token = a
            .sign(&claims(
                "ns",
                "sa",
                "u1",
                &api_aud(),
                1000,
                3600,
                None,
                None,
                None,
            ))
            .expect("sign");
        assert!(b.verify(&token, 1000).expect("valid").is_some());
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
            .expect("key file");
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn verify_checks_signature_expiry_and_audience() {
        let (_d, s) = signer();
        let now = 1_700_000_000;
        let bound = Some(("Pod", "p", "pu"));
        let token = s
            .sign(&claims(
                "ns",
                "sa",
                "u1",
                &api_aud(),
                now,
                600,
                None,
                bound,
                None,
            ))
            .expect("sign");
        let c = s.verify(&token, now + 10).expect("valid").expect("ours");
        assert_eq!(c["sub"], "system:serviceaccount:ns:sa");
        assert_eq!(c["exp"], now + 600);
        let subj = subject(&c).expect("subject");
        assert_eq!(subj.uid, "u1");
        assert_eq!(
            subj.bound,
            Some(("Pod".to_string(), "p".to_string(), "pu".to_string()))
        );
        // Expired (beyond the minute of leeway).
        assert_eq!(
            s.verify(&token, now + 600 + 61),
            Err(InvalidToken("token has expired"))
        );
        // Tampered claims: the signature no longer matches.
        let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
        let mut forged = c.clone();
        forged.insert("sub".into(), json!("system:serviceaccount:ns:admin"));
        parts[1] = URL_SAFE_NO_PAD.encode(Value::Object(forged).to_string());
        assert_eq!(
            s.verify(&parts.join("."), now),
            Err(InvalidToken("invalid signature"))
        );
        // Another key's token.
        let (_d2, other) = signer();
        assert_eq!(
            other.verify(&token, now),
            Err(InvalidToken("invalid signature"))
        );
        // Another audience only.
        let t = s
            .sign(&claims(
                "ns",
                "sa",
                "u1",
                &["vault".to_string()],
                now,
                600,
                None,
                None,
                None,
            ))
            .expect("sign");
        assert!(s.verify(&t, now).is_err());
        // Not a JWT, or another issuer's: not ours to judge.
        assert_eq!(s.verify("abc", now), Ok(None));
        let foreign = format!(
            "{}.{}.sig",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256"}"#),
            URL_SAFE_NO_PAD.encode(r#"{"iss":"https://elsewhere"}"#)
        );
        assert_eq!(s.verify(&foreign, now), Ok(None));
    }

    #[test]
    fn jwks_describes_the_key() {
        let (_d, s) = signer();
        let jwks = s.jwks();
        let k = &jwks["keys"][0];
        assert_eq!(k["kid"], s.kid());
        assert_eq!(k["crv"], "P-256");
        let x = URL_SAFE_NO_PAD
            .decode(k["x"].as_str().unwrap_or(""))
            .expect("x");
        let y = URL_SAFE_NO_PAD
            .decode(k["y"].as_str().unwrap_or(""))
            .expect("y");
        assert_eq!((x.len(), y.len()), (32, 32));
    }

    #[test]
    fn kubelet_tokens_are_extended() {
        let now = 100;
        assert_eq!(
            effective_expiration(3607, &api_aud(), true, now),
            (EXTENDED_EXPIRATION_SECONDS, Some(now + 3607))
        );
        assert_eq!(
            effective_expiration(3607, &api_aud(), false, now),
            (3607, None)
        );
        assert_eq!(
            effective_expiration(3607, &["x".to_string()], true, now),
            (3607, None)
        );
        assert_eq!(
            effective_expiration(3600, &api_aud(), true, now),
            (3600, None)
        );
    }
}
