//! Request parsing: which resource a path names, the query parameters, content negotiation.

use std::collections::HashMap;

use http::{HeaderMap, Method};

use crate::errors::{ApiError, ApiResult};

/// What a resource path names, as upstream's `RequestInfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePath {
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub resource: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// The legacy `/watch/` path prefix was used.
    pub legacy_watch: bool,
}

/// A parsed API path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiPath {
    /// `/api`
    LegacyRoot,
    /// `/apis`
    GroupsRoot,
    /// `/apis/{group}`
    Group(String),
    /// `/api/v1` or `/apis/{group}/{version}`
    GroupVersion(String, String),
    Resource(ResourcePath),
}

/// Parses `/api/...` and `/apis/...` paths. Returns `None` for anything else.
pub fn parse_api_path(path: &str) -> Option<ApiPath> {
    let trimmed = path.trim_end_matches('/');
    let parts: Vec<&str> = trimmed.split('/').skip(1).collect();
    let (group, version, rest): (String, String, &[&str]) = match parts.as_slice() {
        ["api"] => return Some(ApiPath::LegacyRoot),
        ["apis"] => return Some(ApiPath::GroupsRoot),
        ["apis", g] => return Some(ApiPath::Group(g.to_string())),
        ["api", v] => return Some(ApiPath::GroupVersion(String::new(), v.to_string())),
        ["apis", g, v] => return Some(ApiPath::GroupVersion(g.to_string(), v.to_string())),
        ["api", v, rest @ ..] => (String::new(), v.to_string(), rest),
        ["apis", g, v, rest @ ..] => (g.to_string(), v.to_string(), rest),
        _ => return None,
    };
    let mut rest = rest;
    let mut legacy_watch = false;
    if rest.first() == Some(&"watch") {
        legacy_watch = true;
        rest = &rest[1..];
    }
    if rest.iter().any(|p| p.is_empty()) {
        return None;
    }
    let mut namespace = None;
    if rest.len() >= 2 && rest[0] == "namespaces" {
        // namespaces/{ns}/{resource}... unless the third part is a namespace subresource.
        if rest.len() >= 3 && rest[2] != "status" && rest[2] != "finalize" {
            namespace = Some(rest[1].to_string());
            rest = &rest[2..];
        }
    }
    let seg = |i: usize| rest.get(i).map(|s| decode(s));
    let resource = seg(0)?;
    let name = seg(1);
    let subresource = if rest.len() > 2 {
        Some(rest[2..].join("/"))
    } else {
        None
    };
    Some(ApiPath::Resource(ResourcePath {
        group,
        version,
        namespace: namespace.map(|n| decode(&n)),
        resource,
        name,
        subresource,
        legacy_watch,
    }))
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// The query string as a multi-map (last value wins for scalars).
#[derive(Debug, Default, Clone)]
pub struct Query {
    values: HashMap<String, Vec<String>>,
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        let mut values: HashMap<String, Vec<String>> = HashMap::new();
        if let Some(raw) = raw {
            for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
                values
                    .entry(k.into_owned())
                    .or_default()
                    .push(v.into_owned());
            }
        }
        Query { values }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .get(key)
            .and_then(|v| v.last())
            .map(String::as_str)
    }

    pub fn all(&self, key: &str) -> &[String] {
        self.values.get(key).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn has(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }

    /// A boolean parameter: present with no value, `true` or `1` is true.
    pub fn flag(&self, key: &str) -> bool {
        match self.get(key) {
            Some(v) => v.is_empty() || v.eq_ignore_ascii_case("true") || v == "1",
            None => false,
        }
    }

    pub fn int(&self, key: &str) -> ApiResult<Option<i64>> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
                ApiError::bad_request(format!(
                    "invalid value for {key}: strconv.ParseInt: parsing {v:?}: invalid syntax"
                ))
            }),
        }
    }

    /// `dryRun=All` (any other value is rejected as upstream does).
    pub fn dry_run(&self) -> ApiResult<bool> {
        let mut dry = false;
        for v in self.all("dryRun") {
            match v.as_str() {
                "All" => dry = true,
                "" => {}
                other => {
                    return Err(ApiError::bad_request(format!(
                        "Invalid dry run value: {other:?}, only \"All\" is supported"
                    )))
                }
            }
        }
        Ok(dry)
    }
}

/// How the response body should be rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Json,
    Yaml,
    Table,
    /// `as=PartialObjectMetadata` / `PartialObjectMetadataList`.
    Metadata,
}

/// Chooses the response format from the Accept header, as upstream's negotiation does:
/// the first acceptable entry wins; protobuf-only clients get 406.
pub fn negotiate(headers: &HeaderMap) -> ApiResult<Output> {
    let accept = headers
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    if accept.trim().is_empty() {
        return Ok(Output::Json);
    }
    for entry in accept.split(',') {
        let mut parts = entry.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let params: HashMap<String, String> = parts
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let json_like = matches!(
            media.as_str(),
            "application/json" | "*/*" | "application/*" | "application/json-patch+json"
        );
        let yaml = media == "application/yaml";
        if !(json_like || yaml) {
            continue;
        }
        match params.get("as").map(String::as_str) {
            None => return Ok(if yaml { Output::Yaml } else { Output::Json }),
            Some("Table") => {
                let g_ok = params.get("g").is_none_or(|g| g == "meta.k8s.io");
                let v_ok = params.get("v").is_none_or(|v| v == "v1");
                if g_ok && v_ok && !yaml {
                    return Ok(Output::Table);
                }
            }
            Some("PartialObjectMetadata") | Some("PartialObjectMetadataList") => {
                let g_ok = params.get("g").is_none_or(|g| g == "meta.k8s.io");
                let v_ok = params.get("v").is_none_or(|v| v == "v1");
                if g_ok && v_ok && !yaml {
                    return Ok(Output::Metadata);
                }
            }
            Some(_) => continue,
        }
    }
    Err(ApiError::not_acceptable())
}

/// The body formats a write request may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    Json,
    /// `application/vnd.kubernetes.protobuf` (what client-go's typed clients send).
    Protobuf,
    Yaml,
    JsonPatch,
    MergePatch,
    StrategicMergePatch,
    ApplyPatch,
}

/// The body format from Content-Type, for create/update (`patch` false) or patch.
pub fn body_format(headers: &HeaderMap, patch: bool) -> ApiResult<BodyFormat> {
    let ct = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if patch {
        return match media.as_str() {
            "application/json-patch+json" => Ok(BodyFormat::JsonPatch),
            "application/merge-patch+json" => Ok(BodyFormat::MergePatch),
            "application/strategic-merge-patch+json" => Ok(BodyFormat::StrategicMergePatch),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => {
                Ok(BodyFormat::ApplyPatch)
            }
            _ => Err(ApiError::unsupported_media_type()),
        };
    }
    match media.as_str() {
        "" | "application/json" => Ok(BodyFormat::Json),
        "application/yaml" | "application/x-yaml" | "text/yaml" => Ok(BodyFormat::Yaml),
        "application/vnd.kubernetes.protobuf" => Ok(BodyFormat::Protobuf),
        _ => Err(ApiError::unknown_body_format()),
    }
}

/// The verb upstream's request info assigns (for metrics and, later, authorization).
pub fn verb(method: &Method, path: &ResourcePath, query: &Query) -> &'static str {
    let watch = path.legacy_watch || query.flag("watch");
    match *method {
        Method::GET | Method::HEAD => {
            if watch {
                "watch"
            } else if path.name.is_some() {
                "get"
            } else {
                "list"
            }
        }
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => {
            if path.name.is_some() {
                "delete"
            } else {
                "deletecollection"
            }
        }
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(path: &str) -> ResourcePath {
        match parse_api_path(path) {
            Some(ApiPath::Resource(r)) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn parses_paths() {
        assert_eq!(parse_api_path("/api"), Some(ApiPath::LegacyRoot));
        assert_eq!(
            parse_api_path("/apis/apps/v1"),
            Some(ApiPath::GroupVersion("apps".into(), "v1".into()))
        );
        let r = res("/api/v1/namespaces/default/configmaps/x");
        assert_eq!(r.namespace.as_deref(), Some("default"));
        assert_eq!(r.resource, "configmaps");
        assert_eq!(r.name.as_deref(), Some("x"));
        let r = res("/api/v1/namespaces/foo");
        assert_eq!(r.namespace, None);
        assert_eq!(r.resource, "namespaces");
        assert_eq!(r.name.as_deref(), Some("foo"));
        let r = res("/api/v1/namespaces/foo/status");
        assert_eq!(r.resource, "namespaces");
        assert_eq!(r.subresource.as_deref(), Some("status"));
        let r = res("/apis/apps/v1/namespaces/ns/deployments/d/scale");
        assert_eq!(r.group, "apps");
        assert_eq!(r.subresource.as_deref(), Some("scale"));
        let r = res("/api/v1/watch/namespaces/ns/pods");
        assert!(r.legacy_watch);
        assert_eq!(r.resource, "pods");
        assert_eq!(parse_api_path("/version"), None);
    }

    #[test]
    fn negotiates() {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::ACCEPT,
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
                .parse()
                .unwrap(),
        );
        assert_eq!(negotiate(&h).unwrap(), Output::Table);
        h.insert(
            http::header::ACCEPT,
            "application/vnd.kubernetes.protobuf, application/json"
                .parse()
                .unwrap(),
        );
        assert_eq!(negotiate(&h).unwrap(), Output::Json);
        h.insert(
            http::header::ACCEPT,
            "application/vnd.kubernetes.protobuf".parse().unwrap(),
        );
        assert_eq!(negotiate(&h).unwrap_err().code, 406);
    }
}
