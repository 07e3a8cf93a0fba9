//! Registry credentials from a pod's `imagePullSecrets` (`kubernetes.io/dockerconfigjson` and
//! `kubernetes.io/dockercfg` Secrets), turned into CRI `AuthConfig`s for the image's registry.

use base64::Engine;
use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;

use super::spec::Sources;

/// The registry host of an image reference, as the docker reference grammar reads it: the
/// first path component when it looks like a host (has `.` or `:`, or is `localhost`), else
/// Docker Hub.
pub fn registry_host(image: &str) -> &str {
    match image.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first,
        _ => "docker.io",
    }
}

/// The host a credential key names: `https://index.docker.io/v1/` → `index.docker.io`.
fn key_host(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key)
}

fn is_docker_hub(host: &str) -> bool {
    matches!(
        host,
        "docker.io" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com"
    )
}

fn host_matches(key: &str, registry: &str) -> bool {
    let host = key_host(key);
    host == registry || (is_docker_hub(host) && is_docker_hub(registry))
}

/// The entries of a docker config: `{"auths": {...}}` (`.dockerconfigjson`) or the bare map
/// (`.dockercfg`).
fn entries(doc: &Value) -> impl Iterator<Item = (&String, &Value)> {
    let map = doc.get("auths").unwrap_or(doc);
    map.as_object().into_iter().flatten()
}

fn auth_config(entry: &Value) -> cri::AuthConfig {
    let field = |name: &str| {
        entry
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let mut auth = cri::AuthConfig {
        username: field("username"),
        password: field("password"),
        auth: field("auth"),
        // Matched above; containerd would parse a bare `host:port` as a URL and refuse it.
        server_address: String::new(),
        identity_token: field("identitytoken"),
        registry_token: field("registrytoken"),
    };
    // `auth` is base64("user:password"); split it so every runtime understands it.
    if auth.username.is_empty() && !auth.auth.is_empty() {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.auth.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        if let Some((user, password)) = decoded.as_deref().and_then(|d| d.split_once(':')) {
            auth.username = user.to_string();
            auth.password = password.to_string();
        }
    }
    auth
}

/// Credentials for `image` from the pod's pull secrets, in order; missing or malformed Secrets
/// are skipped (as upstream, which pulls without them).
pub async fn credentials(pod: &Pod, sources: &mut Sources, image: &str) -> Vec<cri::AuthConfig> {
    let registry = registry_host(image);
    let refs = pod
        .spec
        .as_ref()
        .and_then(|s| s.image_pull_secrets.clone())
        .unwrap_or_default();
    let mut found = Vec::new();
    for r in refs {
        let data = match sources.secret(&r.name).await {
            Ok(Some(d)) => d,
            Ok(None) => {
                tracing::warn!(secret = %r.name, "image pull secret not found; pulling without it");
                continue;
            }
            Err(e) => {
                tracing::warn!(secret = %r.name, error = %e.0, "reading an image pull secret");
                continue;
            }
        };
        for key in [".dockerconfigjson", ".dockercfg"] {
            let Some(doc) = data
                .get(key)
                .and_then(|b| serde_json::from_slice::<Value>(b).ok())
            else {
                continue;
            };
            for (k, entry) in entries(&doc) {
                if host_matches(k, registry) {
                    found.push(auth_config(entry));
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn registry_hosts() {
        assert_eq!(registry_host("busybox"), "docker.io");
        assert_eq!(registry_host("library/busybox:1"), "docker.io");
        assert_eq!(registry_host("127.0.0.1:5000/busybox:1"), "127.0.0.1:5000");
        assert_eq!(registry_host("localhost/x"), "localhost");
        assert_eq!(registry_host("quay.io/a/b@sha256:00"), "quay.io");
    }

    #[test]
    fn docker_config_entries_match_their_registry() {
        let doc = json!({"auths": {
            "https://index.docker.io/v1/": {"auth": "dXNlcjpwYXNz"},
            "127.0.0.1:5000": {"username": "u", "password": "p"},
        }});
        let hub: Vec<_> = entries(&doc)
            .filter(|(k, _)| host_matches(k, "docker.io"))
            .map(|(_, e)| auth_config(e))
            .collect();
        assert_eq!(hub.len(), 1);
        assert_eq!(
            (hub[0].username.as_str(), hub[0].password.as_str()),
            ("user", "pass")
        );
        let local: Vec<_> = entries(&doc)
            .filter(|(k, _)| host_matches(k, "127.0.0.1:5000"))
            .map(|(_, e)| auth_config(e))
            .collect();
        assert_eq!(local.len(), 1);
        assert_eq!(local[0].username, "u");
        // .dockercfg has no "auths" wrapper.
        let legacy = json!({"quay.io": {"username": "q", "password": "w"}});
        assert_eq!(
            entries(&legacy)
                .filter(|(k, _)| host_matches(k, "quay.io"))
                .count(),
            1
        );
    }
}
