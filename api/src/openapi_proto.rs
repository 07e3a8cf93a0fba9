//! `/openapi/v2` as protobuf: the Swagger 2.0 document encoded as gnostic's `openapi.v2.Document`
//! message (`google/gnostic-models` `openapiv2/OpenAPIv2.proto`), which client-go's
//! `OpenAPISchema()` asks for first (`Accept:
//! application/com.github.proto-openapi.spec.v2@v1.0+protobuf`) and kubectl decodes for
//! `explain --output=plaintext-openapiv2` and client-side patch computation.
//!
//! The encoder walks the JSON document (the one source of truth) and writes each Swagger object
//! as its gnostic message. As gnostic does, free-form values (`default`, `example`, `enum`
//! members and `x-*` vendor extensions) travel as `Any { yaml }`; zero values of proto3 scalar
//! fields are left out, members of a `oneof` are always written.

use serde_json::{Map, Value};

/// The media type of the answer (upstream answers the dotted form, accepting both).
pub const CONTENT_TYPE: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// Whether `subtype` (after `application/`) names the protobuf OpenAPI v2 document.
pub fn is_protobuf_subtype(subtype: &str) -> bool {
    matches!(
        subtype,
        "com.github.proto-openapi.spec.v2@v1.0+protobuf"
            | "com.github.proto-openapi.spec.v2.v1.0+protobuf"
    )
}

/// The answer `/openapi/v2` gives to an `Accept` header, as upstream's kube-openapi handler
/// negotiates it: the clauses by falling `q` (more specific first among equals), the first one
/// that matches JSON or the protobuf document wins; `None` when none does (406). No header
/// means `*/*`.
pub fn negotiate_v2(accept: Option<&str>) -> Option<V2Format> {
    let accept = accept
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .unwrap_or("*/*");
    let mut clauses: Vec<(f32, u8, &str, &str)> = Vec::new();
    for clause in accept.split(',') {
        let mut parts = clause.split(';');
        let media = parts.next().unwrap_or("").trim();
        let mut q = 1.0f32;
        for p in parts {
            if let Some(v) = p.trim().strip_prefix("q=") {
                q = v.trim().parse().unwrap_or(0.0);
            }
        }
        let (ty, sub) = media.split_once('/').unwrap_or((media, ""));
        if q <= 0.0 || ty.is_empty() {
            continue;
        }
        let specificity = match (ty, sub) {
            ("*", _) => 0,
            (_, "*") => 1,
            _ => 2,
        };
        clauses.push((q, specificity, ty, sub));
    }
    clauses.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)));
    for (_, _, ty, sub) in clauses {
        if ty != "*" && ty != "application" {
            continue;
        }
        if sub == "*" || sub == "json" {
            return Some(V2Format::Json);
        }
        if is_protobuf_subtype(sub) {
            return Some(V2Format::Protobuf);
        }
    }
    None
}

/// The two encodings of `/openapi/v2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V2Format {
    Json,
    Protobuf,
}

/// Encodes a Swagger 2.0 document as gnostic's `openapi.v2.Document`.
pub fn encode_document(doc: &Value) -> Vec<u8> {
    document(doc).0
}

/// A protobuf message under construction.
#[derive(Default)]
struct Msg(Vec<u8>);

const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;

impl Msg {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(&mut self, field: u32, wire: u32) {
        self.varint(u64::from((field << 3) | wire));
    }

    fn len_field(&mut self, field: u32, bytes: &[u8]) {
        self.key(field, LEN);
        self.varint(bytes.len() as u64);
        self.0.extend_from_slice(bytes);
    }

    /// A proto3 string: left out when empty.
    fn string(&mut self, field: u32, s: &str) {
        if !s.is_empty() {
            self.len_field(field, s.as_bytes());
        }
    }

    /// `obj[key]` as a string field, when it is a non-empty string.
    fn str_of(&mut self, field: u32, obj: &Value, key: &str) {
        if let Some(s) = obj.get(key).and_then(Value::as_str) {
            self.string(field, s);
        }
    }

    /// `obj[key]` as `repeated string`.
    fn strings_of(&mut self, field: u32, obj: &Value, key: &str) {
        for s in obj.get(key).and_then(Value::as_array).into_iter().flatten() {
            if let Some(s) = s.as_str() {
                // Repeated strings keep empty members.
                self.len_field(field, s.as_bytes());
            }
        }
    }

    fn bool_of(&mut self, field: u32, obj: &Value, key: &str) {
        if obj.get(key).and_then(Value::as_bool) == Some(true) {
            self.key(field, VARINT);
            self.varint(1);
        }
    }

    fn int_of(&mut self, field: u32, obj: &Value, key: &str) {
        let v = obj.get(key).and_then(|v| {
            v.as_i64()
                .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
        });
        if let Some(v) = v.filter(|v| *v != 0) {
            self.key(field, VARINT);
            self.varint(v as u64);
        }
    }

    fn double_of(&mut self, field: u32, obj: &Value, key: &str) {
        if let Some(v) = obj.get(key).and_then(Value::as_f64).filter(|v| *v != 0.0) {
            self.key(field, FIXED64);
            self.0.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// An embedded message (always written: presence is meaningful).
    fn message(&mut self, field: u32, m: Msg) {
        self.len_field(field, &m.0);
    }

    /// `obj[key]` as an embedded message built by `f`, when present.
    fn message_of(&mut self, field: u32, obj: &Value, key: &str, f: fn(&Value) -> Msg) {
        if let Some(v) = obj.get(key).filter(|v| !v.is_null()) {
            self.message(field, f(v));
        }
    }

    /// `obj[key]` (an array) as repeated messages built by `f`.
    fn messages_of(&mut self, field: u32, obj: &Value, key: &str, f: fn(&Value) -> Msg) {
        for v in obj.get(key).and_then(Value::as_array).into_iter().flatten() {
            self.message(field, f(v));
        }
    }

    fn named(
        &mut self,
        field: u32,
        map: &Map<String, Value>,
        keep: impl Fn(&str) -> bool,
        f: fn(&Value) -> Msg,
    ) {
        for (name, v) in map.iter().filter(|(k, _)| keep(k)) {
            let mut pair = Msg::default();
            pair.string(1, name);
            pair.message(2, f(v));
            self.message(field, pair);
        }
    }

    /// The `x-*` members of `obj` as `repeated NamedAny vendor_extension`.
    fn extensions(&mut self, field: u32, obj: &Value) {
        if let Some(map) = obj.as_object() {
            self.named(field, map, |k| k.starts_with("x-"), any);
        }
    }
}

/// `Any { yaml = 2 }`: a free-form value as YAML text, as gnostic carries it.
fn any(v: &Value) -> Msg {
    let yaml = serde_yaml::to_string(v).unwrap_or_else(|_| v.to_string());
    let mut m = Msg::default();
    m.string(2, &yaml);
    m
}

fn document(v: &Value) -> Msg {
    let mut m = Msg::default();
    m.str_of(1, v, "swagger");
    m.message_of(2, v, "info", info);
    m.str_of(3, v, "host");
    m.str_of(4, v, "basePath");
    m.strings_of(5, v, "schemes");
    m.strings_of(6, v, "consumes");
    m.strings_of(7, v, "produces");
    m.message_of(8, v, "paths", paths);
    m.message_of(9, v, "definitions", |d| named_map(d, schema));
    m.message_of(10, v, "parameters", |d| named_map(d, parameter));
    m.message_of(11, v, "responses", |d| named_map(d, response));
    m.messages_of(12, v, "security", security_requirement);
    m.message_of(13, v, "securityDefinitions", |d| {
        named_map(d, security_definitions_item)
    });
    m.messages_of(14, v, "tags", tag);
    m.message_of(15, v, "externalDocs", external_docs);
    m.extensions(16, v);
    m
}

/// The messages that hold one `repeated Named* additional_properties = 1`.
fn named_map(v: &Value, f: fn(&Value) -> Msg) -> Msg {
    let mut m = Msg::default();
    if let Some(map) = v.as_object() {
        m.named(1, map, |_| true, f);
    }
    m
}

fn info(v: &Value) -> Msg {
    let mut m = Msg::default();
    m.str_of(1, v, "title");
    m.str_of(2, v, "version");
    m.str_of(3, v, "description");
    m.str_of(4, v, "termsOfService");
    m.message_of(5, v, "contact", |c| {
        let mut m = Msg::default();
        m.str_of(1, c, "name");
        m.str_of(2, c, "url");
        m.str_of(3, c, "email");
        m.extensions(4, c);
        m
    });
    m.message_of(6, v, "license", |l| {
        let mut m = Msg::default();
        m.str_of(1, l, "name");
        m.str_of(2, l, "url");
        m.extensions(3, l);
        m
    });
    m.extensions(7, v);
    m
}

fn external_docs(v: &Value) -> Msg {
    let mut m = Msg::default();
    m.str_of(1, v, "description");
    m.str_of(2, v, "url");
    m.extensions(3, v);
    m
}

fn tag(v: &Value) -> Msg {
    let mut m = Msg::default();
    m.str_of(1, v, "name");
    m.str_of(2, v, "description");
    m.message_of(3, v, "externalDocs", external_docs);
    m.extensions(4, v);
    m
}

fn paths(v: &Value) -> Msg {
    let mut m = Msg::default();
    m.extensions(1, v);
    if let Some(map) = v.as_object() {
        m.named(2, map, |k| !k.starts_with("x-"), path_item);
    }
    m
}

fn path_item(v: &Value) -> Msg {
    let mut m = Msg::default();
    m.str_of(1, v, "$ref");
    for (field, method) in [
        (2, "get"),
        (3, "put"),
        (4, "post"),
        (5, "delete"),
        (6, "options"),
        (7, "head"),
        (8, "patch"),
    ] {
        m.message_of(field, v, method, operation);
    }
    m.messages_of(9, v, "parameters", parameters_item);
    m.extensions(10, v);
    m
}

fn operation(v: &Value) -> Msg {
    let mut m = Msg::default();
    m.strings_of(1, v, "tags");
    m.str_of(2, v, "summary");
    m.str_of(3, v, "description");
    m.message_of(4, v, "externalDocs", external_docs);
    m.str_of(5, v, "operationId");
    m.strings_of(6, v, "produces");
    m.strings_of(7, v, "consumes");
    m.messages_of(8, v, "parameters", parameters_item);
    m.message_of(9, v, "responses", responses);
    m.strings_of(10, v, "schemes");
    m.bool_of(11, v, "deprecated");
    m.messages_of(12, v, "security", security_requirement);
    m.extensions(13, v);
    m
}

fn json_reference(v: &Value) -> Msg {
    let mut m = Msg::default();
    m.str_of(1, v, "$ref");
    m.str_of(2, v, "description");
    m
}

/// `ParametersItem { oneof { Parameter parameter = 1; JsonReference json_reference = 2; } }`
fn parameters_item(v: &Value) -> Msg {
    let mut m = Msg::default();
    if v.get("$ref").is_some() {
        m.message(2, json_reference(v));
    } else {
        m.message(1, parameter(v));
    }
    m
}

/// `Parameter { oneof { BodyParameter body_parameter = 1; NonBodyParameter
/// non_body_parameter = 2; } }`; the non-body kinds by `in`.
fn parameter(v: &Value) -> Msg {
    let mut m = Msg::default();
    let location = v.get("in").and_then(Value::as_str).unwrap_or("");
    if location == "body" {
        let mut body = Msg::default();
        body.str_of(1, v, "description");
        body.str_of(2, v, "name");
        body.str_of(3, v, "in");
        body.bool_of(4, v, "required");
        body.message_of(5, v, "schema", schema);
        body.extensions(6, v);
        m.message(1, body);
        return m;
    }
    // HeaderParameterSubSchema = 1, FormDataParameterSubSchema = 2,
    // QueryParameterSubSchema = 3, PathParameterSubSchema = 4. Query and form data carry
    // `allow_empty_value = 5`, which shifts their later fields by one.
    let (which, with_allow_empty) = match location {
        "header" => (1, false),
        "formData" => (2, true),
        "path" => (4, false),
        _ => (3, true),
    };
    let mut sub = Msg::default();
    sub.bool_of(1, v, "required");
    sub.str_of(2, v, "in");
    sub.str_of(3, v, "description");
    sub.str_of(4, v, "name");
    let base = if with_allow_empty {
        sub.bool_of(5, v, "allowEmptyValue");
        6
    } else {
        5
    };
    primitive_fields(&mut sub, v, base);
    sub.extensions(base + 17, v);
    let mut non_body = Msg::default();
    non_body.message(which, sub);
    m.message(2, non_body);
    m
}

/// The run of fields the parameter sub-schemas, `PrimitivesItems` and `Header` share, from
/// `type` at `base` to `multiple_of` at `base + 16`.
fn primitive_fields(m: &mut Msg, v: &Value, base: u32) {
    m.str_of(base, v, "type");
    m.str_of(base + 1, v, "format");
    m.message_of(base + 2, v, "items", primitives_items);
    m.str_of(base + 3, v, "collectionFormat");
    m.message_of(base + 4, v, "default", any);
    m.double_of(base + 5, v, "maximum");
    m.bool_of(base + 6, v, "exclusiveMaximum");
    m.double_of(base + 7, v, "minimum");
    m.bool_of(base + 8, v, "exclusiveMinimum");
    m.int_of(base + 9, v, "maxLength");
    m.int_of(base + 10, v, "minLength");
    m.str_of(base + 11, v, "pattern");
    m.int_of(base + 12, v, "maxItems");
    m.int_of(base + 13, v, "minItems");
    m.bool_of(base + 14, v, "uniqueItems");
    m.messages_of(base + 15, v, "enum", any);
    m.double_of(base + 16, v, "multipleOf");
}

fn primitives_items(v: &Value) -> Msg {
    let mut m = Msg::default();
    primitive_fields(&mut m, v, 1);
    m.extensions(18, v);
    m
}

fn header(v: &Value) -> Msg {
    let mut m = Msg::default();
    primitive_fields(&mut m, v, 1);
    m.str_of(18, v, "description");
    m.extensions(19, v);
    m
}

fn responses(v: &Value) -> Msg {
    let mut m = Msg::default();
    if let Some(map) = v.as_object() {
        m.named(1, map, |k| !k.starts_with("x-"), response_value);
    }
    m.extensions(2, v);
    m
}

/// `ResponseValue { oneof { Response response = 1; JsonReference json_reference = 2; } }`
fn response_value(v: &Value) -> Msg {
    let mut m = Msg::default();
    if v.get("$ref").is_some() {
        m.message(2, json_reference(v));
    } else {
        m.message(1, response(v));
    }
    m
}

fn response(v: &Value) -> Msg {
    let mut m = Msg::default();
    m.str_of(1, v, "description");
    // SchemaItem { oneof { Schema schema = 1; FileSchema file_schema = 2; } }
    m.message_of(2, v, "schema", |s| {
        let mut item = Msg::default();
        if s.get("type").and_then(Value::as_str) == Some("file") {
            let mut file = Msg::default();
            file.str_of(1, s, "format");
            file.str_of(2, s, "title");
            file.str_of(3, s, "description");
            file.message_of(4, s, "default", any);
            file.strings_of(5, s, "required");
            file.str_of(6, s, "type");
            file.bool_of(7, s, "readOnly");
            file.message_of(8, s, "externalDocs", external_docs);
            file.message_of(9, s, "example", any);
            file.extensions(10, s);
            item.message(2, file);
        } else {
            item.message(1, schema(s));
        }
        item
    });
    m.message_of(3, v, "headers", |h| named_map(h, header));
    m.message_of(4, v, "examples", |e| named_map(e, any));
    m.extensions(5, v);
    m
}

fn schema(v: &Value) -> Msg {
    let mut m = Msg::default();
    m.str_of(1, v, "$ref");
    m.str_of(2, v, "format");
    m.str_of(3, v, "title");
    m.str_of(4, v, "description");
    m.message_of(5, v, "default", any);
    m.double_of(6, v, "multipleOf");
    m.double_of(7, v, "maximum");
    m.bool_of(8, v, "exclusiveMaximum");
    m.double_of(9, v, "minimum");
    m.bool_of(10, v, "exclusiveMinimum");
    m.int_of(11, v, "maxLength");
    m.int_of(12, v, "minLength");
    m.str_of(13, v, "pattern");
    m.int_of(14, v, "maxItems");
    m.int_of(15, v, "minItems");
    m.bool_of(16, v, "uniqueItems");
    m.int_of(17, v, "maxProperties");
    m.int_of(18, v, "minProperties");
    m.strings_of(19, v, "required");
    m.messages_of(20, v, "enum", any);
    // AdditionalPropertiesItem { oneof { Schema schema = 1; bool boolean = 2; } }
    if let Some(ap) = v.get("additionalProperties") {
        let mut item = Msg::default();
        match ap {
            Value::Bool(b) => {
                item.key(2, VARINT);
                item.varint(u64::from(*b));
            }
            other => item.message(1, schema(other)),
        }
        m.message(21, item);
    }
    // TypeItem { repeated string value = 1; }
    match v.get("type") {
        Some(Value::String(t)) => {
            let mut item = Msg::default();
            item.len_field(1, t.as_bytes());
            m.message(22, item);
        }
        Some(t @ Value::Array(_)) => {
            let mut item = Msg::default();
            item.strings_of(1, &serde_json::json!({ "v": t }), "v");
            m.message(22, item);
        }
        _ => {}
    }
    // ItemsItem { repeated Schema schema = 1; }
    match v.get("items") {
        Some(Value::Array(list)) => {
            let mut item = Msg::default();
            for s in list {
                item.message(1, schema(s));
            }
            m.message(23, item);
        }
        Some(s @ Value::Object(_)) => {
            let mut item = Msg::default();
            item.message(1, schema(s));
            m.message(23, item);
        }
        _ => {}
    }
    m.messages_of(24, v, "allOf", schema);
    m.message_of(25, v, "properties", |p| named_map(p, schema));
    m.str_of(26, v, "discriminator");
    m.bool_of(27, v, "readOnly");
    m.message_of(28, v, "xml", |x| {
        let mut m = Msg::default();
        m.str_of(1, x, "name");
        m.str_of(2, x, "namespace");
        m.str_of(3, x, "prefix");
        m.bool_of(4, x, "attribute");
        m.bool_of(5, x, "wrapped");
        m.extensions(6, x);
        m
    });
    m.message_of(29, v, "externalDocs", external_docs);
    m.message_of(30, v, "example", any);
    m.extensions(31, v);
    m
}

/// `SecurityRequirement { repeated NamedStringArray additional_properties = 1; }`
fn security_requirement(v: &Value) -> Msg {
    named_map(v, |scopes| {
        let mut m = Msg::default();
        m.strings_of(1, &serde_json::json!({ "v": scopes }), "v");
        m
    })
}

/// `SecurityDefinitionsItem`: basic (1) or API key (2); OAuth2 flows (3-6) by `flow`.
fn security_definitions_item(v: &Value) -> Msg {
    let mut item = Msg::default();
    let mut m = Msg::default();
    let which = match v.get("type").and_then(Value::as_str).unwrap_or("") {
        "basic" => {
            m.str_of(1, v, "type");
            m.str_of(2, v, "description");
            m.extensions(3, v);
            1
        }
        "apiKey" => {
            m.str_of(1, v, "type");
            m.str_of(2, v, "name");
            m.str_of(3, v, "in");
            m.str_of(4, v, "description");
            m.extensions(5, v);
            2
        }
        _ => {
            let flow = v.get("flow").and_then(Value::as_str).unwrap_or("");
            m.str_of(1, v, "type");
            m.str_of(2, v, "flow");
            m.message_of(3, v, "scopes", |s| {
                named_map(s, |scope| {
                    // NamedString's value is a plain string, not a message: written by the
                    // caller's pair as field 2, so encode it raw here.
                    let mut m = Msg::default();
                    m.0.extend_from_slice(scope.as_str().unwrap_or("").as_bytes());
                    m
                })
            });
            match flow {
                "implicit" => {
                    m.str_of(4, v, "authorizationUrl");
                    m.str_of(5, v, "description");
                    m.extensions(6, v);
                    3
                }
                "password" => {
                    m.str_of(4, v, "tokenUrl");
                    m.str_of(5, v, "description");
                    m.extensions(6, v);
                    4
                }
                "application" => {
                    m.str_of(4, v, "tokenUrl");
                    m.str_of(5, v, "description");
                    m.extensions(6, v);
                    5
                }
                _ => {
                    m.str_of(4, v, "authorizationUrl");
                    m.str_of(5, v, "tokenUrl");
                    m.str_of(6, v, "description");
                    m.extensions(7, v);
                    6
                }
            }
        }
    };
    item.message(which, m);
    item
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A minimal protobuf reader: the fields of one message as (number, wire type, payload).
    fn fields(mut b: &[u8]) -> Vec<(u32, u32, Vec<u8>)> {
        fn varint(b: &mut &[u8]) -> u64 {
            let mut v = 0u64;
            let mut shift = 0;
            loop {
                let byte = b[0];
                *b = &b[1..];
                v |= u64::from(byte & 0x7f) << shift;
                if byte & 0x80 == 0 {
                    return v;
                }
                shift += 7;
            }
        }
        let mut out = Vec::new();
        while !b.is_empty() {
            let key = varint(&mut b);
            let (field, wire) = ((key >> 3) as u32, (key & 7) as u32);
            let payload = match wire {
                0 => varint(&mut b).to_le_bytes().to_vec(),
                1 => {
                    let (p, rest) = b.split_at(8);
                    b = rest;
                    p.to_vec()
                }
                2 => {
                    let n = varint(&mut b) as usize;
                    let (p, rest) = b.split_at(n);
                    b = rest;
                    p.to_vec()
                }
                other => panic!("unexpected wire type {other}"),
            };
            out.push((field, wire, payload));
        }
        out
    }

    fn field(b: &[u8], n: u32) -> Vec<Vec<u8>> {
        fields(b)
            .into_iter()
            .filter(|(f, _, _)| *f == n)
            .map(|(_, _, p)| p)
            .collect()
    }

    fn text(b: &[u8]) -> String {
        String::from_utf8(b.to_vec()).expect("utf-8")
    }

    /// The `Named*` pair of a repeated field whose name is `name`: its value bytes.
    fn named(pairs: &[Vec<u8>], name: &str) -> Option<Vec<u8>> {
        pairs.iter().find_map(|p| {
            (field(p, 1).first().map(|n| text(n.as_slice())).as_deref() == Some(name))
                .then(|| field(p, 2).into_iter().next().unwrap_or_default())
        })
    }

    #[test]
    fn document_fields_follow_gnostic_numbers() {
        let doc = json!({
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": "v1.36.0"},
            "paths": {"/api/v1/pods": {
                "get": {"operationId": "listPods", "parameters": [
                    {"$ref": "#/parameters/limit"},
                    {"name": "watch", "in": "query", "type": "boolean", "uniqueItems": true}
                ], "responses": {"200": {"description": "OK", "schema": {"$ref": "#/definitions/x"}}}},
                "parameters": [{"name": "namespace", "in": "path", "required": true, "type": "string"}]
            }},
            "definitions": {"io.k8s.api.core.v1.Pod": {
                "type": "object",
                "required": ["spec"],
                "properties": {
                    "spec": {"$ref": "#/definitions/io.k8s.api.core.v1.PodSpec"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "n": {"type": "integer", "format": "int32", "minimum": 1}
                },
                "x-kubernetes-group-version-kind": [{"group": "", "kind": "Pod", "version": "v1"}]
            }},
            "securityDefinitions": {"BearerToken": {"type": "apiKey", "name": "authorization", "in": "header"}},
            "security": [{"BearerToken": []}]
        });
        let b = encode_document(&doc);
        assert_eq!(text(&field(&b, 1)[0]), "2.0");
        let info = &field(&b, 2)[0];
        assert_eq!(text(&field(info, 1)[0]), "Kubernetes");
        assert_eq!(text(&field(info, 2)[0]), "v1.36.0");

        // Paths → NamedPathItem("/api/v1/pods") → PathItem.get (2) → Operation.
        let paths = &field(&b, 8)[0];
        let item = named(&field(paths, 2), "/api/v1/pods").expect("path");
        let get = &field(&item, 2)[0];
        assert_eq!(text(&field(get, 5)[0]), "listPods");
        let params = field(get, 8);
        // A $ref parameter is ParametersItem.json_reference (2).
        let reference = &field(&params[0], 2)[0];
        assert_eq!(text(&field(reference, 1)[0]), "#/parameters/limit");
        // A query parameter: Parameter(1) → NonBodyParameter(2) → QueryParameterSubSchema(3),
        // whose type is 6 and unique_items 20.
        let query = &field(&field(&field(&params[1], 1)[0], 2)[0], 3)[0];
        assert_eq!(text(&field(query, 4)[0]), "watch");
        assert_eq!(text(&field(query, 6)[0]), "boolean");
        assert_eq!(field(query, 20)[0][0], 1);
        // The path-level path parameter: PathParameterSubSchema (4) with type at 5.
        let path_param = &field(&field(&field(&field(&item, 9)[0], 1)[0], 2)[0], 4)[0];
        assert_eq!(field(path_param, 1)[0][0], 1, "required");
        assert_eq!(text(&field(path_param, 5)[0]), "string");
        // Responses → NamedResponseValue("200") → ResponseValue.response(1) → schema(2).
        let responses = &field(get, 9)[0];
        let ok = named(&field(responses, 1), "200").expect("200");
        let resp = &field(&ok, 1)[0];
        assert_eq!(text(&field(resp, 1)[0]), "OK");
        let schema = &field(&field(resp, 2)[0], 1)[0];
        assert_eq!(text(&field(schema, 1)[0]), "#/definitions/x");

        // Definitions → NamedSchema → Schema.
        let defs = &field(&b, 9)[0];
        let pod = named(&field(defs, 1), "io.k8s.api.core.v1.Pod").expect("Pod");
        assert_eq!(text(&field(&field(&pod, 22)[0], 1)[0]), "object");
        assert_eq!(text(&field(&pod, 19)[0]), "spec");
        let props = &field(&pod, 25)[0];
        let tags = named(&field(props, 1), "tags").expect("tags");
        let items = &field(&field(&tags, 23)[0], 1)[0];
        assert_eq!(text(&field(&field(items, 22)[0], 1)[0]), "string");
        let labels = named(&field(props, 1), "labels").expect("labels");
        let ap = &field(&field(&labels, 21)[0], 1)[0];
        assert_eq!(text(&field(&field(ap, 22)[0], 1)[0]), "string");
        let n = named(&field(props, 1), "n").expect("n");
        assert_eq!(text(&field(&n, 2)[0]), "int32");
        assert_eq!(field(&n, 9)[0], 1f64.to_le_bytes().to_vec(), "minimum");
        // Vendor extensions: NamedAny with Any.yaml (2) holding the value as YAML.
        let gvk = named(&field(&pod, 31), "x-kubernetes-group-version-kind").expect("gvk");
        let yaml = text(&field(&gvk, 2)[0]);
        let parsed: Value = serde_yaml::from_str(&yaml).expect("yaml");
        assert_eq!(
            parsed,
            json!([{"group": "", "kind": "Pod", "version": "v1"}])
        );

        // securityDefinitions → ApiKeySecurity (2); security → NamedStringArray.
        let sec = &field(&b, 13)[0];
        let bearer = named(&field(sec, 1), "BearerToken").expect("BearerToken");
        let api_key = &field(&bearer, 2)[0];
        assert_eq!(text(&field(api_key, 2)[0]), "authorization");
        assert_eq!(text(&field(api_key, 3)[0]), "header");
        let req = &field(&b, 12)[0];
        assert!(named(&field(req, 1), "BearerToken").is_some());
    }

    #[test]
    fn accept_negotiation() {
        use V2Format::*;
        let proto = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
        assert_eq!(negotiate_v2(None), Some(Json));
        assert_eq!(negotiate_v2(Some(proto)), Some(Protobuf));
        assert_eq!(
            negotiate_v2(Some(
                "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
            )),
            Some(Protobuf)
        );
        assert_eq!(negotiate_v2(Some("application/json, */*")), Some(Json));
        assert_eq!(
            negotiate_v2(Some(&format!("application/json;q=0.5, {proto}"))),
            Some(Protobuf)
        );
        assert_eq!(negotiate_v2(Some(&format!("*/*, {proto}"))), Some(Protobuf));
        assert_eq!(negotiate_v2(Some("text/html")), None);
        assert_eq!(negotiate_v2(Some("application/json;q=0")), None);
    }

    #[test]
    fn additional_properties_false_is_written() {
        let b = schema(&json!({"additionalProperties": false})).0;
        let item = &field(&b, 21)[0];
        assert_eq!(fields(item), vec![(2, 0, 0u64.to_le_bytes().to_vec())]);
    }
}
