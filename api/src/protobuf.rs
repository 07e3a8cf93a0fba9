//! Decoding of Kubernetes protobuf request bodies.
//!
//! kubectl's typed clients and client-go programs send request bodies as
//! `Content-Type: application/vnd.kubernetes.protobuf`. meso keeps objects as JSON, so
//! [`decode_k8s_protobuf`] turns such a body into the JSON object the same request would
//! carry as `application/json`.
//!
//! The wire format is the 4 bytes `k8s\0` followed by a `runtime.Unknown` message
//! (1: typeMeta {1: apiVersion, 2: kind}, 2: raw, 3: contentEncoding, 4: contentType) whose
//! `raw` is the object's own message. The message type comes from apiVersion + kind; the
//! schema (tags, JSON names, shapes) is the generated table in `proto_schema.rs`.
//!
//! JSON rendering follows what Go's JSON encoder would write for the decoded Go struct:
//! * a field is emitted iff it is present on the wire (proto2 presence), repeated fields and
//!   maps iff non-empty;
//! * but a zero value of a non-pointer `omitempty` scalar (and of an `omitzero` field) is
//!   left out, because Go's protobuf encoder writes those fields even when zero while its
//!   JSON encoder drops them (`namespace: ""` must not appear, `replicas: 0` must);
//! * `json:",inline"` members join their parent object;
//! * the special types take their JSON forms: Quantity → string, Time → RFC 3339 seconds,
//!   MicroTime → RFC 3339 with microseconds, Duration → Go duration string, IntOrString →
//!   number or string, RawExtension / FieldsV1 / apiextensions JSON → the embedded JSON,
//!   bytes → base64, ExtraValue/Verbs → arrays, JSONSchemaPropsOr* → their union forms.
//!
//! Unknown fields are skipped. Input is never trusted: lengths are checked against the
//! remaining bytes, nesting is bounded by [`MAX_DEPTH`], and every failure is a
//! [`ProtobufError`], never a panic.

use std::borrow::Cow;

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::proto_schema::{
    Card, Field, Msg, Special, Ty, ANY_VERSION_KINDS, KINDS, MESSAGES, NAMES,
};

/// The prefix of every Kubernetes protobuf body.
pub const MAGIC: &[u8; 4] = b"k8s\0";

/// The media type of Kubernetes protobuf bodies.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// How deeply messages (and envelopes embedded in RawExtensions) may nest.
pub const MAX_DEPTH: usize = 100;

/// Why a protobuf body could not be decoded. The server answers 400 BadRequest with the
/// message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtobufError {
    #[error("protobuf body does not start with the \"k8s\\x00\" prefix")]
    MissingMagic,
    #[error("protobuf body names no apiVersion and kind")]
    MissingTypeMeta,
    #[error("protobuf body has unsupported contentEncoding {0:?}")]
    UnsupportedEncoding(String),
    #[error("no kind {kind:?} is registered for version {api_version:?} in the protobuf schema")]
    UnknownKind { api_version: String, kind: String },
    #[error("malformed protobuf body{}: {reason}", at(path))]
    Malformed { path: String, reason: String },
}

fn at(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!(" at {path}")
    }
}

impl ProtobufError {
    fn malformed(reason: impl Into<String>) -> Self {
        ProtobufError::Malformed {
            path: String::new(),
            reason: reason.into(),
        }
    }

    /// Prefixes the path of a `Malformed` error with a field name or `[index]`.
    fn within(self, segment: &str) -> Self {
        match self {
            ProtobufError::Malformed { path, reason } => {
                let path = if path.is_empty() {
                    segment.to_string()
                } else if path.starts_with('[') {
                    format!("{segment}{path}")
                } else {
                    format!("{segment}.{path}")
                };
                ProtobufError::Malformed { path, reason }
            }
            other => other,
        }
    }
}

type Result<T> = std::result::Result<T, ProtobufError>;

/// Decodes a Kubernetes protobuf body (`k8s\0` + `runtime.Unknown`) of any built-in
/// v1.36 kind into the JSON object the same request would carry as JSON, `kind` and
/// `apiVersion` included.
pub fn decode_k8s_protobuf(body: &[u8]) -> std::result::Result<Value, ProtobufError> {
    decode_envelope(body, 0)
}

/// The `apiVersion` and `kind` a protobuf body announces, without decoding the object.
pub fn peek_type_meta(body: &[u8]) -> std::result::Result<(String, String), ProtobufError> {
    let envelope = parse_envelope(body)?;
    Ok((envelope.api_version, envelope.kind))
}

struct Envelope<'a> {
    api_version: String,
    kind: String,
    raw: &'a [u8],
}

fn parse_envelope(body: &[u8]) -> Result<Envelope<'_>> {
    let rest = body
        .strip_prefix(MAGIC.as_slice())
        .ok_or(ProtobufError::MissingMagic)?;
    let mut type_meta: Vec<&[u8]> = Vec::new();
    let mut raw: &[u8] = &[];
    let mut encoding: &[u8] = &[];
    let mut reader = Reader::new(rest);
    while let Some((tag, value)) = reader.next_field()? {
        match (tag, value) {
            (1, Raw::Len(b)) => type_meta.push(b),
            (2, Raw::Len(b)) => raw = b,
            (3, Raw::Len(b)) => encoding = b,
            (1..=3, _) => return Err(wrong_wire_type().within("runtime.Unknown")),
            _ => {}
        }
    }
    if !encoding.is_empty() {
        return Err(ProtobufError::UnsupportedEncoding(
            String::from_utf8_lossy(encoding).into_owned(),
        ));
    }
    let type_meta = joined(&type_meta);
    let mut api_version = String::new();
    let mut kind = String::new();
    let mut reader = Reader::new(&type_meta);
    while let Some((tag, value)) = reader.next_field()? {
        match (tag, value) {
            (1, Raw::Len(b)) => api_version = String::from_utf8_lossy(b).into_owned(),
            (2, Raw::Len(b)) => kind = String::from_utf8_lossy(b).into_owned(),
            (1 | 2, _) => return Err(wrong_wire_type().within("typeMeta")),
            _ => {}
        }
    }
    if api_version.is_empty() || kind.is_empty() {
        return Err(ProtobufError::MissingTypeMeta);
    }
    Ok(Envelope {
        api_version,
        kind,
        raw,
    })
}

fn decode_envelope(body: &[u8], depth: usize) -> Result<Value> {
    if depth > MAX_DEPTH {
        return Err(too_deep());
    }
    let envelope = parse_envelope(body)?;
    let index = lookup_kind(&envelope.api_version, &envelope.kind).ok_or_else(|| {
        ProtobufError::UnknownKind {
            api_version: envelope.api_version.clone(),
            kind: envelope.kind.clone(),
        }
    })?;
    let object = decode_message(index, envelope.raw, depth + 1)?;
    let mut out = Map::new();
    out.insert("kind".into(), Value::String(envelope.kind));
    out.insert("apiVersion".into(), Value::String(envelope.api_version));
    match object {
        Value::Object(fields) => {
            for (k, v) in fields {
                out.insert(k, v);
            }
        }
        _ => return Err(ProtobufError::malformed("the object is not a JSON object")),
    }
    Ok(Value::Object(out))
}

/// The message of a (apiVersion, kind), as the schema table knows it.
fn lookup_kind(api_version: &str, kind: &str) -> Option<u16> {
    let (group, version) = match api_version.rsplit_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    if let Ok(i) = KINDS.binary_search_by(|(g, v, k, _)| (*g, *v, *k).cmp(&(group, version, kind)))
    {
        return KINDS.get(i).map(|row| row.3);
    }
    ANY_VERSION_KINDS
        .binary_search_by(|(k, _)| (*k).cmp(kind))
        .ok()
        .and_then(|i| ANY_VERSION_KINDS.get(i))
        .map(|row| row.1)
}

// ---------------------------------------------------------------- wire reading

/// One field value as it is on the wire.
#[derive(Clone, Copy, Debug)]
enum Raw<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32,
    Len(&'a [u8]),
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn varint(&mut self) -> Result<u64> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let byte = *self
                .buf
                .get(self.pos)
                .ok_or_else(|| ProtobufError::malformed("truncated varint"))?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(ProtobufError::malformed("varint longer than 10 bytes"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.buf.len())
            .ok_or_else(|| ProtobufError::malformed("length exceeds the remaining bytes"))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    /// The next (field number, value), or None at the end.
    fn next_field(&mut self) -> Result<Option<(u32, Raw<'a>)>> {
        if self.at_end() {
            return Ok(None);
        }
        let key = self.varint()?;
        let tag = key >> 3;
        if tag == 0 || tag > u64::from(u32::MAX >> 3) {
            return Err(ProtobufError::malformed(format!(
                "illegal field number {tag}"
            )));
        }
        let value = match key & 7 {
            0 => Raw::Varint(self.varint()?),
            1 => {
                let b = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                Raw::Fixed64(u64::from_le_bytes(a))
            }
            2 => {
                let len = self.varint()?;
                let len = usize::try_from(len)
                    .map_err(|_| ProtobufError::malformed("length exceeds the remaining bytes"))?;
                Raw::Len(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Raw::Fixed32
            }
            w => {
                return Err(ProtobufError::malformed(format!(
                    "unsupported wire type {w} (field {tag})"
                )))
            }
        };
        // `tag` fits in u32: checked above.
        Ok(Some((tag as u32, value)))
    }
}

fn wrong_wire_type() -> ProtobufError {
    ProtobufError::malformed("wrong wire type")
}

fn too_deep() -> ProtobufError {
    ProtobufError::malformed(format!("nesting deeper than {MAX_DEPTH} levels"))
}

/// The concatenation of a non-repeated message field's occurrences: protobuf merges them,
/// and parsing the concatenation is that merge.
fn joined<'a>(chunks: &[&'a [u8]]) -> Cow<'a, [u8]> {
    match chunks {
        [] => Cow::Borrowed(&[]),
        [one] => Cow::Borrowed(one),
        many => Cow::Owned(many.concat()),
    }
}

// ---------------------------------------------------------------- messages

type Occurrences<'a> = Vec<Vec<Raw<'a>>>;

fn message(index: u16) -> Result<&'static Msg> {
    MESSAGES
        .get(usize::from(index))
        .ok_or_else(|| ProtobufError::malformed(format!("schema has no message {index}")))
}

fn field_name(field: &Field) -> &'static str {
    NAMES.get(usize::from(field.name)).copied().unwrap_or("?")
}

/// Every occurrence of every known field of `msg` in `data`, aligned with `msg.fields`.
fn parse_fields<'a>(msg: &Msg, data: &'a [u8]) -> Result<Occurrences<'a>> {
    let mut out: Occurrences<'a> = vec![Vec::new(); msg.fields.len()];
    let mut reader = Reader::new(data);
    while let Some((tag, value)) = reader.next_field()? {
        if let Some(i) = msg.fields.iter().position(|f| f.tag == tag) {
            if let Some(slot) = out.get_mut(i) {
                slot.push(value);
            }
        }
    }
    Ok(out)
}

/// Decodes one message into its JSON form.
fn decode_message(index: u16, data: &[u8], depth: usize) -> Result<Value> {
    if depth > MAX_DEPTH {
        return Err(too_deep());
    }
    let msg = message(index)?;
    let occ = parse_fields(msg, data)?;
    if msg.special == Special::Object {
        let mut out = Map::new();
        object_into(msg, &occ, depth, &mut out)?;
        return Ok(Value::Object(out));
    }
    special_value(msg, &occ, data, depth).map_err(|e| match e {
        ProtobufError::Malformed { path, reason } if path.is_empty() => ProtobufError::Malformed {
            path,
            reason: format!("{} ({})", reason, msg.name),
        },
        other => other,
    })
}

/// The JSON form of a message whose form is not an object of its fields.
fn special_value(msg: &Msg, occ: &Occurrences<'_>, data: &[u8], depth: usize) -> Result<Value> {
    match msg.special {
        Special::Object => Err(ProtobufError::malformed("not a special type")),
        Special::Quantity => Ok(match last_bytes(msg, occ, 1)? {
            Some(b) => Value::String(String::from_utf8_lossy(b).into_owned()),
            None => Value::String("0".into()),
        }),
        Special::Time | Special::MicroTime => {
            if data.is_empty() {
                return Ok(Value::Null);
            }
            let seconds = last_varint(msg, occ, 1)?.map_or(0, |v| v as i64);
            let nanos = last_varint(msg, occ, 2)?.map_or(0, |v| v as i32);
            if msg.special == Special::Time {
                format_time(seconds, 0, false)
            } else {
                // Truncated to microseconds, as Go's MicroTime.Unmarshal does.
                let nanos = i64::from(nanos);
                format_time(seconds, nanos - nanos % 1000, true)
            }
        }
        Special::Duration => {
            let nanos = last_varint(msg, occ, 1)?.map_or(0, |v| v as i64);
            Ok(Value::String(go_duration(nanos)))
        }
        Special::IntOrString => {
            let kind = last_varint(msg, occ, 1)?.map_or(0, |v| v as i64);
            match kind {
                0 => {
                    let int_val = last_varint(msg, occ, 2)?.map_or(0, |v| v as i32);
                    Ok(Value::from(int_val))
                }
                1 => Ok(Value::String(
                    last_bytes(msg, occ, 3)?
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                        .unwrap_or_default(),
                )),
                other => Err(ProtobufError::malformed(format!(
                    "IntOrString has impossible type {other}"
                ))),
            }
        }
        Special::RawExtension => match last_bytes(msg, occ, 1)? {
            None | Some([]) => Ok(Value::Null),
            Some(raw) if raw.starts_with(MAGIC) => decode_envelope(raw, depth + 1),
            Some(raw) => parse_raw_json(raw),
        },
        Special::RawJson => match last_bytes(msg, occ, 1)? {
            None | Some([]) => Ok(Value::Null),
            Some(raw) => parse_raw_json(raw),
        },
        Special::Items => {
            let items = repeated_of(msg, occ, 1, depth)?;
            Ok(Value::Array(items))
        }
        Special::OrArray => {
            let schemas = repeated_of(msg, occ, 2, depth)?;
            if !schemas.is_empty() {
                return Ok(Value::Array(schemas));
            }
            Ok(single_of(msg, occ, 1, depth)?.unwrap_or(Value::Null))
        }
        Special::OrBool => {
            if let Some(schema) = single_of(msg, occ, 2, depth)? {
                return Ok(schema);
            }
            Ok(Value::Bool(
                last_varint(msg, occ, 1)?.is_some_and(|v| v != 0),
            ))
        }
        Special::OrStringArray => {
            let property = repeated_of(msg, occ, 2, depth)?;
            if !property.is_empty() {
                return Ok(Value::Array(property));
            }
            Ok(single_of(msg, occ, 1, depth)?.unwrap_or(Value::Null))
        }
    }
}

/// Adds the fields of an object message to `out`, in the table's (Go struct) order.
fn object_into(
    msg: &Msg,
    occ: &Occurrences<'_>,
    depth: usize,
    out: &mut Map<String, Value>,
) -> Result<()> {
    for (field, values) in msg.fields.iter().zip(occ.iter()) {
        if values.is_empty() {
            continue;
        }
        let name = field_name(field);
        match field.card {
            Card::One | Card::OmitZero => {
                let value = single(field.ty, values, depth).map_err(|e| e.within(name))?;
                if field.card == Card::OmitZero && is_zero(&value) {
                    continue;
                }
                out.insert(name.to_string(), value);
            }
            Card::Rep => {
                let items = repeated(field.ty, values, depth).map_err(|e| e.within(name))?;
                if !items.is_empty() {
                    out.insert(name.to_string(), Value::Array(items));
                }
            }
            Card::Map => {
                let entries = map_entries(field.ty, values, depth).map_err(|e| e.within(name))?;
                if !entries.is_empty() {
                    out.insert(name.to_string(), Value::Object(entries));
                }
            }
            Card::Inline => {
                let Ty::M(sub) = field.ty else {
                    return Err(ProtobufError::malformed("inline field is not a message"));
                };
                if depth + 1 > MAX_DEPTH {
                    return Err(too_deep());
                }
                let sub_msg = message(sub)?;
                let chunks = len_chunks(values)?;
                let data = joined(&chunks);
                let sub_occ = parse_fields(sub_msg, &data)?;
                if sub_msg.special == Special::Object {
                    object_into(sub_msg, &sub_occ, depth + 1, out)?;
                } else if let Value::Object(fields) = decode_message(sub, &data, depth + 1)? {
                    out.extend(fields);
                }
            }
        }
    }
    Ok(())
}

fn len_chunks<'a>(values: &[Raw<'a>]) -> Result<Vec<&'a [u8]>> {
    values
        .iter()
        .map(|v| match v {
            Raw::Len(b) => Ok(*b),
            _ => Err(wrong_wire_type()),
        })
        .collect()
}

/// A non-repeated field's value: the last occurrence of a scalar, the merge of all
/// occurrences of a message.
fn single(ty: Ty, values: &[Raw<'_>], depth: usize) -> Result<Value> {
    match ty {
        Ty::M(sub) => {
            let chunks = len_chunks(values)?;
            decode_message(sub, &joined(&chunks), depth + 1)
        }
        _ => match values.last() {
            Some(raw) => scalar(ty, *raw),
            None => Ok(Value::Null),
        },
    }
}

/// A repeated field's elements, packed or not.
fn repeated(ty: Ty, values: &[Raw<'_>], depth: usize) -> Result<Vec<Value>> {
    let mut out = Vec::with_capacity(values.len());
    for raw in values {
        match (ty, raw) {
            (Ty::M(sub), Raw::Len(b)) => {
                let index = out.len();
                out.push(
                    decode_message(sub, b, depth + 1)
                        .map_err(|e| e.within(&format!("[{index}]")))?,
                );
            }
            (Ty::Bool | Ty::I32 | Ty::I64, Raw::Len(b)) => {
                let mut reader = Reader::new(b);
                while !reader.at_end() {
                    out.push(scalar(ty, Raw::Varint(reader.varint()?))?);
                }
            }
            (Ty::F64, Raw::Len(b)) => {
                if b.len() % 8 != 0 {
                    return Err(ProtobufError::malformed("packed doubles of a bad length"));
                }
                for chunk in b.chunks_exact(8) {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(chunk);
                    out.push(scalar(ty, Raw::Fixed64(u64::from_le_bytes(a)))?);
                }
            }
            _ => out.push(scalar(ty, *raw)?),
        }
    }
    Ok(out)
}

/// A map field's entries (each a message {1: key, 2: value}); the last entry of a key wins.
fn map_entries(ty: Ty, values: &[Raw<'_>], depth: usize) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    for raw in values {
        let Raw::Len(entry) = raw else {
            return Err(wrong_wire_type());
        };
        let mut key = String::new();
        let mut vals: Vec<Raw<'_>> = Vec::new();
        let mut reader = Reader::new(entry);
        while let Some((tag, value)) = reader.next_field()? {
            match (tag, value) {
                (1, Raw::Len(b)) => key = String::from_utf8_lossy(b).into_owned(),
                (1, _) => return Err(wrong_wire_type()),
                (2, v) => vals.push(v),
                _ => {}
            }
        }
        let value = if vals.is_empty() {
            zero_value(ty, depth).map_err(|e| e.within(&key))?
        } else {
            single(ty, &vals, depth).map_err(|e| e.within(&key))?
        };
        out.insert(key, value);
    }
    Ok(out)
}

/// The value of a map entry that carries no value.
fn zero_value(ty: Ty, depth: usize) -> Result<Value> {
    Ok(match ty {
        Ty::Str | Ty::Bytes => Value::String(String::new()),
        Ty::Bool => Value::Bool(false),
        Ty::I32 | Ty::I64 => Value::from(0),
        Ty::F64 => Value::from(0.0),
        Ty::M(sub) => decode_message(sub, &[], depth + 1)?,
    })
}

fn scalar(ty: Ty, raw: Raw<'_>) -> Result<Value> {
    Ok(match (ty, raw) {
        (Ty::Str, Raw::Len(b)) => Value::String(String::from_utf8_lossy(b).into_owned()),
        (Ty::Bytes, Raw::Len(b)) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        (Ty::Bool, Raw::Varint(v)) => Value::Bool(v != 0),
        // Go keeps the low 32 bits of an int32 varint.
        (Ty::I32, Raw::Varint(v)) => Value::from(v as i32),
        (Ty::I64, Raw::Varint(v)) => Value::from(v as i64),
        (Ty::F64, Raw::Fixed64(bits)) => {
            let f = f64::from_bits(bits);
            Value::Number(
                serde_json::Number::from_f64(f)
                    .ok_or_else(|| ProtobufError::malformed(format!("{f} is not a JSON number")))?,
            )
        }
        _ => return Err(wrong_wire_type()),
    })
}

/// Go's JSON encoder leaves a zero value of an `omitempty` scalar out.
fn is_zero(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

// ---------------------------------------------------------------- special-type helpers

fn position(msg: &Msg, tag: u32) -> Option<usize> {
    msg.fields.iter().position(|f| f.tag == tag)
}

fn occurrences<'o, 'a>(msg: &Msg, occ: &'o Occurrences<'a>, tag: u32) -> &'o [Raw<'a>] {
    position(msg, tag)
        .and_then(|i| occ.get(i))
        .map_or(&[], |v| v.as_slice())
}

fn last_varint(msg: &Msg, occ: &Occurrences<'_>, tag: u32) -> Result<Option<u64>> {
    match occurrences(msg, occ, tag).last() {
        None => Ok(None),
        Some(Raw::Varint(v)) => Ok(Some(*v)),
        Some(_) => Err(wrong_wire_type()),
    }
}

fn last_bytes<'a>(msg: &Msg, occ: &Occurrences<'a>, tag: u32) -> Result<Option<&'a [u8]>> {
    match occurrences(msg, occ, tag).last() {
        None => Ok(None),
        Some(Raw::Len(b)) => Ok(Some(*b)),
        Some(_) => Err(wrong_wire_type()),
    }
}

fn single_of(msg: &Msg, occ: &Occurrences<'_>, tag: u32, depth: usize) -> Result<Option<Value>> {
    let values = occurrences(msg, occ, tag);
    match position(msg, tag).and_then(|i| msg.fields.get(i)) {
        Some(field) if !values.is_empty() => Ok(Some(single(field.ty, values, depth)?)),
        _ => Ok(None),
    }
}

fn repeated_of(msg: &Msg, occ: &Occurrences<'_>, tag: u32, depth: usize) -> Result<Vec<Value>> {
    let values = occurrences(msg, occ, tag);
    match position(msg, tag).and_then(|i| msg.fields.get(i)) {
        Some(field) => repeated(field.ty, values, depth),
        None => Ok(Vec::new()),
    }
}

fn parse_raw_json(raw: &[u8]) -> Result<Value> {
    serde_json::from_slice(raw)
        .map_err(|e| ProtobufError::malformed(format!("embedded bytes are not JSON: {e}")))
}

/// metav1.Time / MicroTime as Go's JSON encoder writes them (UTC; null for Go's zero time).
fn format_time(seconds: i64, nanos: i64, micro: bool) -> Result<Value> {
    // time.Unix normalises nanoseconds outside [0, 1e9).
    let total = i128::from(seconds) * 1_000_000_000 + i128::from(nanos);
    let secs = total.div_euclid(1_000_000_000);
    let nsec = total.rem_euclid(1_000_000_000);
    // Go's zero time.Time (0001-01-01T00:00:00Z) is encoded as null.
    if secs == -62_135_596_800 && nsec == 0 {
        return Ok(Value::Null);
    }
    let out_of_range = || ProtobufError::malformed(format!("time {seconds}s is out of range"));
    let secs = i64::try_from(secs).map_err(|_| out_of_range())?;
    let nsec = u32::try_from(nsec).map_err(|_| out_of_range())?;
    let t = chrono::DateTime::from_timestamp(secs, nsec).ok_or_else(out_of_range)?;
    use chrono::Datelike as _;
    if !(0..=9999).contains(&t.year()) {
        return Err(out_of_range());
    }
    let text = if micro {
        t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
    } else {
        t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    };
    Ok(Value::String(text))
}

/// Go's `time.Duration.String()`: "1h0m0s", "1.5s", "100ms", "1µs", "0s".
pub(crate) fn go_duration(nanos: i64) -> String {
    let sign = if nanos < 0 { "-" } else { "" };
    let u = nanos.unsigned_abs();
    if u == 0 {
        return "0s".to_string();
    }
    if u < 1_000_000_000 {
        let (prec, unit) = if u < 1_000 {
            (0, "ns")
        } else if u < 1_000_000 {
            (3, "µs")
        } else {
            (6, "ms")
        };
        let (int, frac) = split_fraction(u, prec);
        return format!("{sign}{int}{frac}{unit}");
    }
    let (secs, frac) = split_fraction(u, 9);
    let minutes = secs / 60;
    let s = secs % 60;
    if minutes == 0 {
        return format!("{sign}{s}{frac}s");
    }
    let hours = minutes / 60;
    let m = minutes % 60;
    if hours == 0 {
        format!("{sign}{m}m{s}{frac}s")
    } else {
        format!("{sign}{hours}h{m}m{s}{frac}s")
    }
}

/// `v / 10^prec` and the fraction as ".ddd" without trailing zeros ("" when zero).
fn split_fraction(v: u64, prec: u32) -> (u64, String) {
    let scale = 10u64.pow(prec);
    let frac = v % scale;
    if frac == 0 {
        return (v / scale, String::new());
    }
    let digits = format!("{frac:0width$}", width = prec as usize);
    (v / scale, format!(".{}", digits.trim_end_matches('0')))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_pb::api::apps::v1 as apps;
    use k8s_pb::api::core::v1 as core;
    use k8s_pb::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiext;
    use k8s_pb::apimachinery::pkg::api::resource::Quantity;
    use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
    use k8s_pb::apimachinery::pkg::runtime::{RawExtension, TypeMeta, Unknown};
    use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
    use prost::Message;
    use serde_json::json;

    use super::*;

    fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
        let unknown = Unknown {
            type_meta: Some(TypeMeta {
                api_version: Some(api_version.into()),
                kind: Some(kind.into()),
            }),
            raw: Some(raw),
            content_encoding: Some(String::new()),
            content_type: Some(String::new()),
        };
        let mut out = MAGIC.to_vec();
        out.extend(unknown.encode_to_vec());
        out
    }

    fn decode<M: Message>(api_version: &str, kind: &str, msg: &M) -> Value {
        decode_k8s_protobuf(&envelope(api_version, kind, msg.encode_to_vec())).unwrap()
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    fn q(v: &str) -> Quantity {
        Quantity { string: s(v) }
    }

    fn int(v: i32) -> Option<IntOrString> {
        Some(IntOrString {
            r#type: Some(0),
            int_val: Some(v),
            str_val: Some(String::new()),
        })
    }

    fn string(v: &str) -> Option<IntOrString> {
        Some(IntOrString {
            r#type: Some(1),
            int_val: Some(0),
            str_val: s(v),
        })
    }

    fn meta(name: &str) -> Option<meta::ObjectMeta> {
        Some(meta::ObjectMeta {
            name: s(name),
            ..Default::default()
        })
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A varint as protobuf writes it.
    fn varint(mut v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                return out;
            }
            out.push(byte | 0x80);
        }
    }

    /// A length-delimited field.
    fn len_field(tag: u32, data: &[u8]) -> Vec<u8> {
        let mut out = varint(u64::from(tag) << 3 | 2);
        out.extend(varint(data.len() as u64));
        out.extend_from_slice(data);
        out
    }

    fn varint_field(tag: u32, v: u64) -> Vec<u8> {
        let mut out = varint(u64::from(tag) << 3);
        out.extend(varint(v));
        out
    }

    #[test]
    fn namespace() {
        let ns = core::Namespace {
            metadata: Some(meta::ObjectMeta {
                name: s("team-a"),
                labels: map(&[("owner", "alice")]),
                ..Default::default()
            }),
            spec: Some(core::NamespaceSpec::default()),
            status: None,
        };
        assert_eq!(
            decode("v1", "Namespace", &ns),
            json!({
                "kind": "Namespace",
                "apiVersion": "v1",
                "metadata": {"name": "team-a", "labels": {"owner": "alice"}},
                "spec": {}
            })
        );
    }

    #[test]
    fn config_map_with_data_and_binary_data() {
        let cm = core::ConfigMap {
            metadata: Some(meta::ObjectMeta {
                name: s("cfg"),
                namespace: s("default"),
                ..Default::default()
            }),
            data: map(&[("a", "b"), ("multi", "line1\nline2")]),
            binary_data: [("blob".to_string(), vec![0u8, 1, 2, 255])].into(),
            immutable: Some(false),
        };
        let got = decode("v1", "ConfigMap", &cm);
        assert_eq!(
            got,
            json!({
                "kind": "ConfigMap",
                "apiVersion": "v1",
                "metadata": {"name": "cfg", "namespace": "default"},
                "immutable": false,
                "data": {"a": "b", "multi": "line1\nline2"},
                "binaryData": {"blob": "AAEC/w=="}
            })
        );
        // kind and apiVersion come first, as Go writes them.
        let keys: Vec<&String> = got.as_object().unwrap().keys().collect();
        assert_eq!(keys[..2], ["kind", "apiVersion"]);
    }

    #[test]
    fn secret_bytes_are_base64() {
        let secret = core::Secret {
            metadata: meta("s1"),
            immutable: None,
            data: [
                ("password".to_string(), b"p@ss".to_vec()),
                ("empty".to_string(), Vec::new()),
            ]
            .into(),
            string_data: map(&[("user", "admin")]),
            r#type: s("Opaque"),
        };
        assert_eq!(
            decode("v1", "Secret", &secret),
            json!({
                "kind": "Secret",
                "apiVersion": "v1",
                "metadata": {"name": "s1"},
                "data": {"empty": "", "password": "cEBzcw=="},
                "stringData": {"user": "admin"},
                "type": "Opaque"
            })
        );
    }

    fn web_container() -> core::Container {
        core::Container {
            name: s("web"),
            image: s("nginx:1.27"),
            command: vec!["nginx".into(), "-g".into(), "daemon off;".into()],
            working_dir: s(""),
            ports: vec![core::ContainerPort {
                name: s("http"),
                host_port: Some(0),
                container_port: Some(8080),
                protocol: s("TCP"),
                host_ip: None,
            }],
            env: vec![
                core::EnvVar {
                    name: s("MODE"),
                    value: s("prod"),
                    value_from: None,
                },
                core::EnvVar {
                    name: s("POD_NAME"),
                    value: None,
                    value_from: Some(core::EnvVarSource {
                        field_ref: Some(core::ObjectFieldSelector {
                            api_version: s("v1"),
                            field_path: s("metadata.name"),
                        }),
                        ..Default::default()
                    }),
                },
            ],
            resources: Some(core::ResourceRequirements {
                limits: [
                    ("cpu".to_string(), q("500m")),
                    ("memory".to_string(), q("128Mi")),
                ]
                .into(),
                requests: [("cpu".to_string(), q("100m"))].into(),
                claims: Vec::new(),
            }),
            liveness_probe: Some(core::Probe {
                handler: Some(core::ProbeHandler {
                    http_get: Some(core::HttpGetAction {
                        path: s("/healthz"),
                        port: int(8080),
                        scheme: s("HTTP"),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                initial_delay_seconds: Some(3),
                period_seconds: Some(10),
                ..Default::default()
            }),
            readiness_probe: Some(core::Probe {
                handler: Some(core::ProbeHandler {
                    tcp_socket: Some(core::TcpSocketAction {
                        port: string("http"),
                        host: None,
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            security_context: Some(core::SecurityContext {
                run_as_non_root: Some(false),
                allow_privilege_escalation: Some(false),
                ..Default::default()
            }),
            image_pull_policy: s("IfNotPresent"),
            volume_mounts: vec![core::VolumeMount {
                name: s("config"),
                mount_path: s("/etc/web"),
                read_only: Some(true),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn deployment_with_pod_template() {
        let deployment = apps::Deployment {
            metadata: Some(meta::ObjectMeta {
                name: s("web"),
                namespace: s(""),
                generation: Some(0),
                labels: map(&[("app", "web")]),
                ..Default::default()
            }),
            spec: Some(apps::DeploymentSpec {
                replicas: Some(0),
                selector: Some(meta::LabelSelector {
                    match_labels: map(&[("app", "web")]),
                    match_expressions: vec![meta::LabelSelectorRequirement {
                        key: s("tier"),
                        operator: s("In"),
                        values: vec!["fe".into(), "be".into()],
                    }],
                }),
                template: Some(core::PodTemplateSpec {
                    metadata: Some(meta::ObjectMeta {
                        labels: map(&[("app", "web")]),
                        creation_timestamp: Some(meta::Time::default()),
                        ..Default::default()
                    }),
                    spec: Some(core::PodSpec {
                        containers: vec![web_container()],
                        volumes: vec![core::Volume {
                            name: s("config"),
                            volume_source: Some(core::VolumeSource {
                                config_map: Some(core::ConfigMapVolumeSource {
                                    local_object_reference: Some(core::LocalObjectReference {
                                        name: s("web-config"),
                                    }),
                                    default_mode: Some(0o644),
                                    ..Default::default()
                                }),
                                ..Default::default()
                            }),
                        }],
                        security_context: Some(core::PodSecurityContext {
                            run_as_user: Some(0),
                            supplemental_groups: vec![1000, 2000],
                            ..Default::default()
                        }),
                        termination_grace_period_seconds: Some(0),
                        node_name: s(""),
                        host_network: Some(false),
                        ..Default::default()
                    }),
                }),
                strategy: Some(apps::DeploymentStrategy {
                    r#type: s("RollingUpdate"),
                    rolling_update: Some(apps::RollingUpdateDeployment {
                        max_unavailable: int(0),
                        max_surge: string("25%"),
                    }),
                }),
                revision_history_limit: Some(10),
                progress_deadline_seconds: Some(600),
                ..Default::default()
            }),
            status: Some(apps::DeploymentStatus::default()),
        };
        let expected = json!({
            "kind": "Deployment",
            "apiVersion": "apps/v1",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {
                "replicas": 0,
                "selector": {
                    "matchLabels": {"app": "web"},
                    "matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe", "be"]}]
                },
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "volumes": [{"name": "config", "configMap": {"name": "web-config", "defaultMode": 420}}],
                        "containers": [{
                            "name": "web",
                            "image": "nginx:1.27",
                            "command": ["nginx", "-g", "daemon off;"],
                            "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                            "env": [
                                {"name": "MODE", "value": "prod"},
                                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}
                            ],
                            "resources": {
                                "limits": {"cpu": "500m", "memory": "128Mi"},
                                "requests": {"cpu": "100m"}
                            },
                            "volumeMounts": [{"name": "config", "readOnly": true, "mountPath": "/etc/web"}],
                            "livenessProbe": {
                                "httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"},
                                "initialDelaySeconds": 3,
                                "periodSeconds": 10
                            },
                            "readinessProbe": {"tcpSocket": {"port": "http"}},
                            "imagePullPolicy": "IfNotPresent",
                            "securityContext": {"runAsNonRoot": false, "allowPrivilegeEscalation": false}
                        }],
                        "terminationGracePeriodSeconds": 0,
                        "securityContext": {"runAsUser": 0, "supplementalGroups": [1000, 2000]}
                    }
                },
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}},
                "revisionHistoryLimit": 10,
                "progressDeadlineSeconds": 600
            },
            "status": {}
        });
        let got = decode("apps/v1", "Deployment", &deployment);
        assert_eq!(got, expected);
        // Fields come out in Go struct order, as Go's JSON encoder writes them.
        let container = &got["spec"]["template"]["spec"]["containers"][0];
        let keys: Vec<&String> = container.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "name",
                "image",
                "command",
                "ports",
                "env",
                "resources",
                "volumeMounts",
                "livenessProbe",
                "readinessProbe",
                "imagePullPolicy",
                "securityContext"
            ]
        );
    }

    #[test]
    fn service_with_int_or_string_target_ports() {
        let service = core::Service {
            metadata: meta("web"),
            spec: Some(core::ServiceSpec {
                ports: vec![
                    core::ServicePort {
                        name: s("http"),
                        protocol: s("TCP"),
                        port: Some(80),
                        target_port: string("http"),
                        ..Default::default()
                    },
                    core::ServicePort {
                        name: s("metrics"),
                        port: Some(0),
                        target_port: int(9090),
                        node_port: Some(0),
                        ..Default::default()
                    },
                ],
                selector: map(&[("app", "web")]),
                cluster_ip: s(""),
                r#type: s("ClusterIP"),
                session_affinity: s("None"),
                ip_families: vec!["IPv4".into()],
                ..Default::default()
            }),
            status: None,
        };
        assert_eq!(
            decode("v1", "Service", &service),
            json!({
                "kind": "Service",
                "apiVersion": "v1",
                "metadata": {"name": "web"},
                "spec": {
                    "ports": [
                        {"name": "http", "protocol": "TCP", "port": 80, "targetPort": "http"},
                        {"name": "metrics", "port": 0, "targetPort": 9090}
                    ],
                    "selector": {"app": "web"},
                    "type": "ClusterIP",
                    "sessionAffinity": "None",
                    "ipFamilies": ["IPv4"]
                }
            })
        );
    }

    #[test]
    fn pod_with_full_object_meta() {
        let pod = core::Pod {
            metadata: Some(meta::ObjectMeta {
                name: s("web-0"),
                generate_name: s("web-"),
                namespace: s("prod"),
                uid: s("0b7a6c1e-7f2a-4c1d-9a49-5d7e0e3e5c11"),
                resource_version: s("42"),
                generation: Some(3),
                creation_timestamp: Some(meta::Time {
                    seconds: Some(1_700_000_000),
                    nanos: Some(123_456_789),
                }),
                deletion_grace_period_seconds: Some(0),
                labels: map(&[("app", "web"), ("tier", "frontend")]),
                annotations: map(&[("note", "hello \"world\"")]),
                owner_references: vec![meta::OwnerReference {
                    api_version: s("apps/v1"),
                    kind: s("ReplicaSet"),
                    name: s("web-5d4f8"),
                    uid: s("9f3c"),
                    controller: Some(true),
                    block_owner_deletion: Some(false),
                }],
                finalizers: vec!["example.com/cleanup".into()],
                managed_fields: vec![meta::ManagedFieldsEntry {
                    manager: s("kubectl"),
                    operation: s("Update"),
                    api_version: s("v1"),
                    time: Some(meta::Time {
                        seconds: Some(0),
                        nanos: None,
                    }),
                    fields_type: s("FieldsV1"),
                    fields_v1: Some(meta::FieldsV1 {
                        raw: Some(br#"{"f:metadata":{"f:labels":{".":{}}}}"#.to_vec()),
                    }),
                    subresource: None,
                }],
                ..Default::default()
            }),
            spec: Some(core::PodSpec {
                containers: vec![core::Container {
                    name: s("c"),
                    image: s("busybox"),
                    ..Default::default()
                }],
                restart_policy: s("Always"),
                ..Default::default()
            }),
            status: Some(core::PodStatus {
                phase: s("Running"),
                conditions: vec![core::PodCondition {
                    r#type: s("Ready"),
                    status: s("True"),
                    last_probe_time: Some(meta::Time::default()),
                    last_transition_time: Some(meta::Time {
                        seconds: Some(1_700_000_100),
                        nanos: Some(0),
                    }),
                    ..Default::default()
                }],
                start_time: Some(meta::Time {
                    seconds: Some(1_700_000_001),
                    nanos: None,
                }),
                ..Default::default()
            }),
        };
        assert_eq!(
            decode("v1", "Pod", &pod),
            json!({
                "kind": "Pod",
                "apiVersion": "v1",
                "metadata": {
                    "name": "web-0",
                    "generateName": "web-",
                    "namespace": "prod",
                    "uid": "0b7a6c1e-7f2a-4c1d-9a49-5d7e0e3e5c11",
                    "resourceVersion": "42",
                    "generation": 3,
                    "creationTimestamp": "2023-11-14T22:13:20Z",
                    "deletionGracePeriodSeconds": 0,
                    "labels": {"app": "web", "tier": "frontend"},
                    "annotations": {"note": "hello \"world\""},
                    "ownerReferences": [{
                        "apiVersion": "apps/v1",
                        "kind": "ReplicaSet",
                        "name": "web-5d4f8",
                        "uid": "9f3c",
                        "controller": true,
                        "blockOwnerDeletion": false
                    }],
                    "finalizers": ["example.com/cleanup"],
                    "managedFields": [{
                        "manager": "kubectl",
                        "operation": "Update",
                        "apiVersion": "v1",
                        "time": "1970-01-01T00:00:00Z",
                        "fieldsType": "FieldsV1",
                        "fieldsV1": {"f:metadata": {"f:labels": {".": {}}}}
                    }]
                },
                "spec": {
                    "containers": [{"name": "c", "image": "busybox"}],
                    "restartPolicy": "Always"
                },
                "status": {
                    "phase": "Running",
                    "conditions": [{
                        "type": "Ready",
                        "status": "True",
                        "lastProbeTime": null,
                        "lastTransitionTime": "2023-11-14T22:15:00Z"
                    }],
                    "startTime": "2023-11-14T22:13:21Z"
                }
            })
        );
    }

    #[test]
    fn events_carry_micro_time() {
        let event = k8s_pb::api::events::v1::Event {
            metadata: meta("e1"),
            event_time: Some(meta::MicroTime {
                seconds: Some(1_700_000_000),
                nanos: Some(123_456_789),
            }),
            reporting_controller: s("meso.dev/kubelet"),
            reporting_instance: s("node-1"),
            action: s("Pulling"),
            reason: s("Pulling"),
            regarding: Some(core::ObjectReference {
                kind: s("Pod"),
                name: s("web-0"),
                ..Default::default()
            }),
            note: s("pulling image"),
            r#type: s("Normal"),
            deprecated_count: Some(0),
            ..Default::default()
        };
        assert_eq!(
            decode("events.k8s.io/v1", "Event", &event),
            json!({
                "kind": "Event",
                "apiVersion": "events.k8s.io/v1",
                "metadata": {"name": "e1"},
                "eventTime": "2023-11-14T22:13:20.123456Z",
                "reportingController": "meso.dev/kubelet",
                "reportingInstance": "node-1",
                "action": "Pulling",
                "reason": "Pulling",
                "regarding": {"kind": "Pod", "name": "web-0"},
                "note": "pulling image",
                "type": "Normal"
            })
        );
        // The core/v1 Event has the same kind under another apiVersion.
        let core_event = core::Event {
            metadata: meta("e2"),
            involved_object: Some(core::ObjectReference {
                kind: s("Node"),
                name: s("n1"),
                ..Default::default()
            }),
            count: Some(2),
            event_time: Some(meta::MicroTime::default()),
            first_timestamp: Some(meta::Time {
                seconds: Some(1_700_000_000),
                nanos: None,
            }),
            ..Default::default()
        };
        assert_eq!(
            decode("v1", "Event", &core_event),
            json!({
                "kind": "Event",
                "apiVersion": "v1",
                "metadata": {"name": "e2"},
                "involvedObject": {"kind": "Node", "name": "n1"},
                "firstTimestamp": "2023-11-14T22:13:20Z",
                "count": 2,
                "eventTime": null
            })
        );
    }

    #[test]
    fn raw_extension_holds_json_or_a_nested_envelope() {
        let nested = envelope(
            "v1",
            "ConfigMap",
            core::ConfigMap {
                metadata: meta("inner"),
                ..Default::default()
            }
            .encode_to_vec(),
        );
        for (raw, data) in [
            (
                br#"{"spec":{"replicas":2}}"#.to_vec(),
                json!({"spec": {"replicas": 2}}),
            ),
            (
                nested,
                json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "inner"}}),
            ),
        ] {
            let revision = apps::ControllerRevision {
                metadata: meta("web-1"),
                data: Some(RawExtension { raw: Some(raw) }),
                revision: Some(1),
            };
            assert_eq!(
                decode("apps/v1", "ControllerRevision", &revision),
                json!({
                    "kind": "ControllerRevision",
                    "apiVersion": "apps/v1",
                    "metadata": {"name": "web-1"},
                    "data": data,
                    "revision": 1
                })
            );
        }
        let bad = apps::ControllerRevision {
            data: Some(RawExtension {
                raw: Some(b"\x01\x02not json".to_vec()),
            }),
            ..Default::default()
        };
        let err = decode_k8s_protobuf(&envelope(
            "apps/v1",
            "ControllerRevision",
            bad.encode_to_vec(),
        ))
        .unwrap_err();
        assert!(err.to_string().contains("at data"), "{err}");
    }

    fn schema(type_: &str) -> apiext::JsonSchemaProps {
        apiext::JsonSchemaProps {
            r#type: s(type_),
            ..Default::default()
        }
    }

    #[test]
    fn custom_resource_definition_schema() {
        let mut properties = BTreeMap::new();
        properties.insert(
            "replicas".to_string(),
            apiext::JsonSchemaProps {
                r#type: s("integer"),
                minimum: Some(0.0),
                maximum: Some(1.5e3),
                default: Some(apiext::Json {
                    raw: Some(b"1".to_vec()),
                }),
                ..Default::default()
            },
        );
        properties.insert(
            "tags".to_string(),
            apiext::JsonSchemaProps {
                r#type: s("array"),
                items: Some(Box::new(apiext::JsonSchemaPropsOrArray {
                    schema: Some(Box::new(schema("string"))),
                    j_son_schemas: Vec::new(),
                })),
                x_kubernetes_list_type: s("set"),
                ..Default::default()
            },
        );
        properties.insert(
            "labels".to_string(),
            apiext::JsonSchemaProps {
                r#type: s("object"),
                additional_properties: Some(Box::new(apiext::JsonSchemaPropsOrBool {
                    allows: Some(true),
                    schema: Some(Box::new(schema("string"))),
                })),
                ..Default::default()
            },
        );
        properties.insert(
            "mode".to_string(),
            apiext::JsonSchemaProps {
                r#type: s("string"),
                r#enum: vec![
                    apiext::Json {
                        raw: Some(br#""fast""#.to_vec()),
                    },
                    apiext::Json {
                        raw: Some(br#""safe""#.to_vec()),
                    },
                ],
                ..Default::default()
            },
        );
        properties.insert(
            "closed".to_string(),
            apiext::JsonSchemaProps {
                r#type: s("object"),
                additional_properties: Some(Box::new(apiext::JsonSchemaPropsOrBool {
                    allows: Some(false),
                    schema: None,
                })),
                dependencies: [(
                    "a".to_string(),
                    apiext::JsonSchemaPropsOrStringArray {
                        schema: None,
                        property: vec!["b".into()],
                    },
                )]
                .into(),
                ..Default::default()
            },
        );
        let crd = apiext::CustomResourceDefinition {
            metadata: meta("widgets.example.com"),
            spec: Some(apiext::CustomResourceDefinitionSpec {
                group: s("example.com"),
                names: Some(apiext::CustomResourceDefinitionNames {
                    plural: s("widgets"),
                    singular: s("widget"),
                    kind: s("Widget"),
                    list_kind: s("WidgetList"),
                    short_names: vec!["wd".into()],
                    ..Default::default()
                }),
                scope: s("Namespaced"),
                versions: vec![apiext::CustomResourceDefinitionVersion {
                    name: s("v1"),
                    served: Some(true),
                    storage: Some(true),
                    schema: Some(apiext::CustomResourceValidation {
                        open_apiv3_schema: Some(apiext::JsonSchemaProps {
                            r#type: s("object"),
                            properties: [(
                                "spec".to_string(),
                                apiext::JsonSchemaProps {
                                    r#type: s("object"),
                                    properties,
                                    required: vec!["replicas".into()],
                                    x_kubernetes_preserve_unknown_fields: Some(true),
                                    ..Default::default()
                                },
                            )]
                            .into(),
                            ..Default::default()
                        }),
                    }),
                    subresources: Some(apiext::CustomResourceSubresources {
                        status: Some(apiext::CustomResourceSubresourceStatus {}),
                        scale: None,
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: None,
        };
        assert_eq!(
            decode("apiextensions.k8s.io/v1", "CustomResourceDefinition", &crd),
            json!({
                "kind": "CustomResourceDefinition",
                "apiVersion": "apiextensions.k8s.io/v1",
                "metadata": {"name": "widgets.example.com"},
                "spec": {
                    "group": "example.com",
                    "names": {
                        "plural": "widgets",
                        "singular": "widget",
                        "shortNames": ["wd"],
                        "kind": "Widget",
                        "listKind": "WidgetList"
                    },
                    "scope": "Namespaced",
                    "versions": [{
                        "name": "v1",
                        "served": true,
                        "storage": true,
                        "schema": {"openAPIV3Schema": {
                            "type": "object",
                            "properties": {"spec": {
                                "type": "object",
                                "required": ["replicas"],
                                "properties": {
                                    "closed": {
                                        "type": "object",
                                        "additionalProperties": false,
                                        "dependencies": {"a": ["b"]}
                                    },
                                    "labels": {
                                        "type": "object",
                                        "additionalProperties": {"type": "string"}
                                    },
                                    "mode": {"type": "string", "enum": ["fast", "safe"]},
                                    "replicas": {
                                        "type": "integer",
                                        "default": 1,
                                        "maximum": 1500.0,
                                        "minimum": 0.0
                                    },
                                    "tags": {
                                        "type": "array",
                                        "items": {"type": "string"},
                                        "x-kubernetes-list-type": "set"
                                    }
                                },
                                "x-kubernetes-preserve-unknown-fields": true
                            }}
                        }},
                        "subresources": {"status": {}}
                    }]
                }
            })
        );
    }

    #[test]
    fn token_review_extra_values_are_arrays() {
        use k8s_pb::api::authentication::v1 as authn;
        let review = authn::TokenReview {
            metadata: None,
            spec: Some(authn::TokenReviewSpec {
                token: s("abc"),
                audiences: vec!["api".into()],
            }),
            status: Some(authn::TokenReviewStatus {
                authenticated: Some(true),
                user: Some(authn::UserInfo {
                    username: s("alice"),
                    groups: vec!["dev".into()],
                    extra: [(
                        "scopes".to_string(),
                        authn::ExtraValue {
                            items: vec!["read".into(), "write".into()],
                        },
                    )]
                    .into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        };
        assert_eq!(
            decode("authentication.k8s.io/v1", "TokenReview", &review),
            json!({
                "kind": "TokenReview",
                "apiVersion": "authentication.k8s.io/v1",
                "spec": {"token": "abc", "audiences": ["api"]},
                "status": {
                    "authenticated": true,
                    "user": {"username": "alice", "groups": ["dev"], "extra": {"scopes": ["read", "write"]}}
                }
            })
        );
    }

    #[test]
    fn delete_options_under_any_group_version() {
        let options = meta::DeleteOptions {
            grace_period_seconds: Some(0),
            preconditions: Some(meta::Preconditions {
                uid: s("u1"),
                resource_version: None,
            }),
            propagation_policy: s("Foreground"),
            dry_run: vec!["All".into()],
            ..Default::default()
        };
        for api_version in ["v1", "apps/v1", "meta.k8s.io/v1"] {
            assert_eq!(
                decode(api_version, "DeleteOptions", &options),
                json!({
                    "kind": "DeleteOptions",
                    "apiVersion": api_version,
                    "gracePeriodSeconds": 0,
                    "preconditions": {"uid": "u1"},
                    "propagationPolicy": "Foreground",
                    "dryRun": ["All"]
                })
            );
        }
    }

    #[test]
    fn subresource_kinds() {
        let scale = k8s_pb::api::autoscaling::v1::Scale {
            metadata: meta("web"),
            spec: Some(k8s_pb::api::autoscaling::v1::ScaleSpec { replicas: Some(0) }),
            status: None,
        };
        // Scale's spec.replicas is a non-pointer omitempty int32: 0 is left out.
        assert_eq!(
            decode("autoscaling/v1", "Scale", &scale),
            json!({"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": {"name": "web"}, "spec": {}})
        );
        let eviction = k8s_pb::api::policy::v1::Eviction {
            metadata: meta("web-0"),
            delete_options: Some(meta::DeleteOptions {
                grace_period_seconds: Some(30),
                ..Default::default()
            }),
        };
        assert_eq!(
            decode("policy/v1", "Eviction", &eviction),
            json!({
                "kind": "Eviction",
                "apiVersion": "policy/v1",
                "metadata": {"name": "web-0"},
                "deleteOptions": {"gracePeriodSeconds": 30}
            })
        );
    }

    #[test]
    fn repeated_scalars_packed_or_not() {
        // batch/v1 PodFailurePolicyOnExitCodesRequirement.values (tag 3) inside a Job.
        let mut packed = Vec::new();
        for v in [1u64, 42, 0xffff_ffff_ffff_ff85] {
            packed.extend(varint(v)); // the last is -123 as an int32 varint
        }
        let requirement = [
            len_field(2, b"In"),
            len_field(3, &packed),
            varint_field(3, 7),
        ]
        .concat();
        let rule = [len_field(1, b"FailJob"), len_field(2, &requirement)].concat();
        let policy = len_field(1, &rule);
        let spec = len_field(11, &policy);
        let job = len_field(2, &spec);
        let got = decode_k8s_protobuf(&envelope("batch/v1", "Job", job)).unwrap();
        assert_eq!(
            got["spec"]["podFailurePolicy"],
            json!({"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [1, 42, -123, 7]}}]})
        );
    }

    #[test]
    fn repeated_occurrences_of_a_message_field_merge() {
        // ObjectMeta (tag 1) split in two occurrences, as protobuf allows.
        let part1 = len_field(1, b"cm");
        let part2 = [
            len_field(3, b"ns"),
            len_field(11, &[len_field(1, b"k"), len_field(2, b"v")].concat()),
        ]
        .concat();
        let body = [
            len_field(1, &part1),
            len_field(1, &part2),
            len_field(2, &[len_field(1, b"a"), len_field(2, b"b")].concat()),
        ]
        .concat();
        let got = decode_k8s_protobuf(&envelope("v1", "ConfigMap", body)).unwrap();
        assert_eq!(
            got,
            json!({
                "kind": "ConfigMap",
                "apiVersion": "v1",
                "metadata": {"name": "cm", "namespace": "ns", "labels": {"k": "v"}},
                "data": {"a": "b"}
            })
        );
    }

    #[test]
    fn unknown_fields_are_skipped() {
        let mut fixed64 = varint(902 << 3 | 1);
        fixed64.extend([0u8; 8]);
        let mut fixed32 = varint(903 << 3 | 5);
        fixed32.extend([0u8; 4]);
        let body = [
            len_field(1, &len_field(1, b"cm")),
            varint_field(900, 5),
            len_field(901, b"whatever"),
            fixed64,
            fixed32,
        ]
        .concat();
        let got = decode_k8s_protobuf(&envelope("v1", "ConfigMap", body)).unwrap();
        assert_eq!(
            got,
            json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "cm"}})
        );
    }

    #[test]
    fn invalid_utf8_becomes_replacement_characters() {
        let body = len_field(1, &len_field(1, b"bad\xffname"));
        let got = decode_k8s_protobuf(&envelope("v1", "ConfigMap", body)).unwrap();
        assert_eq!(got["metadata"]["name"], json!("bad\u{fffd}name"));
    }

    #[test]
    fn every_kind_decodes_an_empty_object() {
        for (group, version, kind, _) in KINDS.iter() {
            let api_version = if group.is_empty() {
                version.to_string()
            } else {
                format!("{group}/{version}")
            };
            let got = decode_k8s_protobuf(&envelope(&api_version, kind, Vec::new())).unwrap();
            assert_eq!(got, json!({"kind": kind, "apiVersion": api_version}));
        }
        for (kind, _) in ANY_VERSION_KINDS.iter() {
            let got = decode_k8s_protobuf(&envelope("batch/v1", kind, Vec::new())).unwrap();
            assert_eq!(got, json!({"kind": kind, "apiVersion": "batch/v1"}));
        }
    }

    #[test]
    fn schema_table_is_consistent() {
        assert!(KINDS
            .windows(2)
            .all(|w| (w[0].0, w[0].1, w[0].2) < (w[1].0, w[1].1, w[1].2)));
        assert!(ANY_VERSION_KINDS.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(MESSAGES.windows(2).all(|w| w[0].name < w[1].name));
        for msg in MESSAGES.iter() {
            let mut tags: Vec<u32> = msg.fields.iter().map(|f| f.tag).collect();
            tags.sort_unstable();
            tags.dedup();
            assert_eq!(tags.len(), msg.fields.len(), "{}", msg.name);
            for field in msg.fields {
                assert!(usize::from(field.name) < NAMES.len());
                if let Ty::M(i) = field.ty {
                    let target = &MESSAGES[usize::from(i)];
                    if field.card == Card::Inline {
                        assert_eq!(target.special, Special::Object, "{}", msg.name);
                    }
                }
            }
        }
        let pod = lookup_kind("v1", "Pod").unwrap();
        assert_eq!(MESSAGES[usize::from(pod)].name, "api.core.v1.Pod");
        assert_eq!(
            lookup_kind("apps/v1", "DeploymentList").map(|i| MESSAGES[usize::from(i)].name),
            Some("api.apps.v1.DeploymentList")
        );
        assert!(lookup_kind("apps/v1beta1", "Deployment").is_none());
        assert!(lookup_kind("example.com/v1", "Widget").is_none());
    }

    // ------------------------------------------------------------ kubectl fixtures

    macro_rules! fixture {
        ($name:literal) => {
            decode_k8s_protobuf(include_bytes!(concat!(
                "../tests/fixtures/protobuf/",
                $name
            )))
            .unwrap()
        };
    }

    #[test]
    fn kubectl_create_configmap() {
        // kubectl create configmap x --from-literal=a=b
        assert_eq!(
            fixture!("configmap.pb"),
            json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "x"}, "data": {"a": "b"}})
        );
    }

    #[test]
    fn kubectl_create_deployment() {
        // kubectl create deployment web --image=busybox --replicas=0 --port=8080
        assert_eq!(
            fixture!("deployment.pb"),
            json!({
                "kind": "Deployment",
                "apiVersion": "apps/v1",
                "metadata": {"name": "web", "labels": {"app": "web"}},
                "spec": {
                    "replicas": 0,
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {
                        "metadata": {"labels": {"app": "web"}},
                        "spec": {"containers": [{
                            "name": "busybox",
                            "image": "busybox",
                            "ports": [{"containerPort": 8080}],
                            "resources": {}
                        }]}
                    },
                    "strategy": {}
                },
                "status": {}
            })
        );
    }

    #[test]
    fn kubectl_create_other_kinds() {
        // kubectl create namespace team-a
        assert_eq!(
            fixture!("namespace.pb"),
            json!({"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "team-a"}, "spec": {}, "status": {}})
        );
        // kubectl create secret generic s1 --from-literal=password='p@ss' --from-literal=bin=$'\x01\x02'
        assert_eq!(
            fixture!("secret.pb"),
            json!({"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "s1"}, "data": {"bin": "AQI=", "password": "cEBzcw=="}})
        );
        // kubectl create service clusterip web --tcp=80:http
        assert_eq!(
            fixture!("service-clusterip.pb"),
            json!({
                "kind": "Service",
                "apiVersion": "v1",
                "metadata": {"name": "web", "labels": {"app": "web"}},
                "spec": {
                    "ports": [{"name": "80-http", "protocol": "TCP", "port": 80, "targetPort": "http"}],
                    "selector": {"app": "web"},
                    "type": "ClusterIP"
                },
                "status": {"loadBalancer": {}}
            })
        );
        // kubectl create service nodeport np --tcp=8080:80 --node-port=30080
        assert_eq!(
            fixture!("service-nodeport.pb"),
            json!({
                "kind": "Service",
                "apiVersion": "v1",
                "metadata": {"name": "np", "labels": {"app": "np"}},
                "spec": {
                    "ports": [{"name": "8080-80", "protocol": "TCP", "port": 8080, "targetPort": 80, "nodePort": 30080}],
                    "selector": {"app": "np"},
                    "type": "NodePort"
                },
                "status": {"loadBalancer": {}}
            })
        );
        // kubectl create cronjob cj --image=busybox --schedule='*/5 * * * *' -- echo hi
        assert_eq!(
            fixture!("cronjob.pb"),
            json!({
                "kind": "CronJob",
                "apiVersion": "batch/v1",
                "metadata": {"name": "cj"},
                "spec": {
                    "schedule": "*/5 * * * *",
                    "jobTemplate": {
                        "metadata": {"name": "cj"},
                        "spec": {"template": {
                            "metadata": {},
                            "spec": {
                                "containers": [{"name": "cj", "image": "busybox", "command": ["echo", "hi"], "resources": {}}],
                                "restartPolicy": "OnFailure"
                            }
                        }}
                    }
                },
                "status": {}
            })
        );
        // kubectl create job j1 --image=busybox -- echo hi
        assert_eq!(
            fixture!("job.pb"),
            json!({
                "kind": "Job",
                "apiVersion": "batch/v1",
                "metadata": {"name": "j1"},
                "spec": {"template": {
                    "metadata": {},
                    "spec": {
                        "containers": [{"name": "j1", "image": "busybox", "command": ["echo", "hi"], "resources": {}}],
                        "restartPolicy": "Never"
                    }
                }},
                "status": {}
            })
        );
        // kubectl create quota q1 --hard=pods=10,requests.cpu=2
        assert_eq!(
            fixture!("resourcequota.pb"),
            json!({
                "kind": "ResourceQuota",
                "apiVersion": "v1",
                "metadata": {"name": "q1"},
                "spec": {"hard": {"pods": "10", "requests.cpu": "2"}},
                "status": {}
            })
        );
        // kubectl create serviceaccount sa1
        assert_eq!(
            fixture!("serviceaccount.pb"),
            json!({"kind": "ServiceAccount", "apiVersion": "v1", "metadata": {"name": "sa1"}})
        );
        // kubectl create poddisruptionbudget pdb1 --selector=app=web --min-available=50%
        assert_eq!(
            fixture!("poddisruptionbudget.pb"),
            json!({
                "kind": "PodDisruptionBudget",
                "apiVersion": "policy/v1",
                "metadata": {"name": "pdb1"},
                "spec": {"minAvailable": "50%", "selector": {"matchLabels": {"app": "web"}}},
                "status": {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0}
            })
        );
        // kubectl create priorityclass pc1 --value=1000 --description=hi
        assert_eq!(
            fixture!("priorityclass.pb"),
            json!({
                "kind": "PriorityClass",
                "apiVersion": "scheduling.k8s.io/v1",
                "metadata": {"name": "pc1"},
                "value": 1000,
                "description": "hi",
                "preemptionPolicy": "PreemptLowerPriority"
            })
        );
        // kubectl create role r1 --verb=get,list --resource=pods
        assert_eq!(
            fixture!("role.pb"),
            json!({
                "kind": "Role",
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "metadata": {"name": "r1"},
                "rules": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}]
            })
        );
    }

    #[test]
    fn peek_reports_type_meta() {
        let body = include_bytes!("../tests/fixtures/protobuf/deployment.pb");
        assert_eq!(
            peek_type_meta(body).unwrap(),
            ("apps/v1".to_string(), "Deployment".to_string())
        );
    }

    // ------------------------------------------------------------ special forms

    #[test]
    fn go_duration_strings() {
        for (nanos, text) in [
            (0, "0s"),
            (1, "1ns"),
            (999, "999ns"),
            (1_000, "1µs"),
            (1_500, "1.5µs"),
            (1_000_000, "1ms"),
            (100_000_000, "100ms"),
            (1_000_000_000, "1s"),
            (1_500_000_000, "1.5s"),
            (90_000_000_000, "1m30s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_723_000_000_001, "1h2m3.000000001s"),
            (-1_500_000_000, "-1.5s"),
            (i64::MAX, "2562047h47m16.854775807s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
        ] {
            assert_eq!(go_duration(nanos), text);
        }
    }

    #[test]
    fn times() {
        assert_eq!(
            format_time(0, 0, false).unwrap(),
            json!("1970-01-01T00:00:00Z")
        );
        assert_eq!(format_time(-62_135_596_800, 0, false).unwrap(), Value::Null);
        assert_eq!(
            format_time(1, -1000, true).unwrap(),
            json!("1970-01-01T00:00:00.999999Z")
        );
        assert_eq!(
            format_time(1_700_000_000, 5_000, true).unwrap(),
            json!("2023-11-14T22:13:20.000005Z")
        );
        assert!(format_time(i64::MAX, 0, false).is_err());
        assert!(format_time(253_402_300_800, 0, false).is_err()); // year 10000
    }

    #[test]
    fn int_or_string_with_impossible_type_is_an_error() {
        let svc = core::Service {
            spec: Some(core::ServiceSpec {
                ports: vec![core::ServicePort {
                    target_port: Some(IntOrString {
                        r#type: Some(7),
                        int_val: None,
                        str_val: None,
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let err = decode_k8s_protobuf(&envelope("v1", "Service", svc.encode_to_vec())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "malformed protobuf body at spec.ports[0].targetPort: IntOrString has impossible type 7 \
             (apimachinery.pkg.util.intstr.IntOrString)"
        );
    }

    #[test]
    fn non_finite_doubles_are_errors() {
        let crd = apiext::CustomResourceDefinition {
            spec: Some(apiext::CustomResourceDefinitionSpec {
                versions: vec![apiext::CustomResourceDefinitionVersion {
                    schema: Some(apiext::CustomResourceValidation {
                        open_apiv3_schema: Some(apiext::JsonSchemaProps {
                            maximum: Some(f64::NAN),
                            ..Default::default()
                        }),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let err = decode_k8s_protobuf(&envelope(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            crd.encode_to_vec(),
        ))
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("spec.versions[0].schema.openAPIV3Schema.maximum"),
            "{err}"
        );
    }

    // ------------------------------------------------------------ bad input

    #[test]
    fn envelope_errors() {
        assert_eq!(decode_k8s_protobuf(b""), Err(ProtobufError::MissingMagic));
        assert_eq!(
            decode_k8s_protobuf(b"{\"kind\":\"Pod\"}"),
            Err(ProtobufError::MissingMagic)
        );
        assert_eq!(
            decode_k8s_protobuf(b"k8s"),
            Err(ProtobufError::MissingMagic)
        );
        assert_eq!(
            decode_k8s_protobuf(b"k8s\0"),
            Err(ProtobufError::MissingTypeMeta)
        );
        assert_eq!(
            decode_k8s_protobuf(&envelope("v1", "Widget", Vec::new())),
            Err(ProtobufError::UnknownKind {
                api_version: "v1".into(),
                kind: "Widget".into()
            })
        );
        assert_eq!(
            decode_k8s_protobuf(&envelope("", "Pod", Vec::new())),
            Err(ProtobufError::MissingTypeMeta)
        );
        let mut gz = MAGIC.to_vec();
        gz.extend(
            Unknown {
                type_meta: Some(TypeMeta {
                    api_version: s("v1"),
                    kind: s("Pod"),
                }),
                raw: Some(Vec::new()),
                content_encoding: s("gzip"),
                content_type: None,
            }
            .encode_to_vec(),
        );
        assert_eq!(
            decode_k8s_protobuf(&gz),
            Err(ProtobufError::UnsupportedEncoding("gzip".into()))
        );
        let text = ProtobufError::UnknownKind {
            api_version: "v1".into(),
            kind: "Widget".into(),
        }
        .to_string();
        assert_eq!(
            text,
            "no kind \"Widget\" is registered for version \"v1\" in the protobuf schema"
        );
    }

    fn malformed(body: &[u8]) -> String {
        match decode_k8s_protobuf(body) {
            Err(ProtobufError::Malformed { path, reason }) => format!("{path}: {reason}"),
            Err(other) => panic!("expected Malformed, got {other}"),
            Ok(_) => panic!("expected Malformed, got a decoded object"),
        }
    }

    #[test]
    fn malformed_bodies() {
        // Truncated varint in the envelope.
        assert_eq!(malformed(b"k8s\0\x0a\xff"), ": truncated varint");
        // A varint of 11 bytes.
        assert_eq!(
            malformed(b"k8s\0\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"),
            ": varint longer than 10 bytes"
        );
        // A length prefix far beyond the body.
        assert_eq!(
            malformed(b"k8s\0\x12\xff\xff\xff\xff\x0f"),
            ": length exceeds the remaining bytes"
        );
        assert_eq!(
            malformed(b"k8s\0\x12\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"),
            ": length exceeds the remaining bytes"
        );
        // Field number 0 and group wire types.
        assert_eq!(malformed(b"k8s\0\x00\x00"), ": illegal field number 0");
        assert_eq!(
            malformed(b"k8s\0\x0b"),
            ": unsupported wire type 3 (field 1)"
        );
        // Truncated object: ObjectMeta claims 5 bytes, has 2.
        let body = envelope("v1", "ConfigMap", vec![0x0a, 0x05, 0x0a, 0x01]);
        assert_eq!(malformed(&body), ": length exceeds the remaining bytes");
        // Wrong wire type for a known field: metadata.name as a varint.
        let body = envelope("v1", "ConfigMap", len_field(1, &varint_field(1, 5)));
        assert_eq!(malformed(&body), "metadata.name: wrong wire type");
        // A string map entry whose value is a varint.
        let body = envelope(
            "v1",
            "ConfigMap",
            len_field(2, &[len_field(1, b"k"), varint_field(2, 1)].concat()),
        );
        assert_eq!(malformed(&body), "data.k: wrong wire type");
    }

    #[test]
    fn deep_nesting_is_bounded() {
        // JSONSchemaProps.not (tag 28) nested 10_000 times: never a stack overflow.
        let mut schema = Vec::new();
        for _ in 0..10_000 {
            schema = len_field(28, &schema);
        }
        let validation = len_field(1, &schema);
        let version = len_field(4, &validation);
        let spec = len_field(7, &version);
        let body = envelope(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            len_field(2, &spec),
        );
        assert!(malformed(&body).contains("nesting deeper than"));

        // Envelopes nested in RawExtensions.
        let mut raw = envelope("apps/v1", "ControllerRevision", Vec::new());
        for _ in 0..500 {
            raw = envelope(
                "apps/v1",
                "ControllerRevision",
                len_field(2, &len_field(1, &raw)),
            );
        }
        assert!(malformed(&raw).contains("nesting deeper than"));

        // A legitimately deep object is fine.
        let mut schema = Vec::new();
        for _ in 0..(MAX_DEPTH - 10) {
            schema = len_field(28, &schema);
        }
        let version = len_field(4, &len_field(1, &schema));
        let body = envelope(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            len_field(2, &len_field(7, &version)),
        );
        assert!(decode_k8s_protobuf(&body).is_ok());
    }

    /// A small deterministic generator, so the fuzz loop needs no dependency.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let seeds: Vec<Vec<u8>> = [
            &include_bytes!("../tests/fixtures/protobuf/deployment.pb")[..],
            &include_bytes!("../tests/fixtures/protobuf/service-clusterip.pb")[..],
            &include_bytes!("../tests/fixtures/protobuf/secret.pb")[..],
            &include_bytes!("../tests/fixtures/protobuf/poddisruptionbudget.pb")[..],
        ]
        .iter()
        .map(|b| b.to_vec())
        .collect();
        let kinds: Vec<(String, &str)> = KINDS
            .iter()
            .map(|(g, v, k, _)| {
                let av = if g.is_empty() {
                    v.to_string()
                } else {
                    format!("{g}/{v}")
                };
                (av, *k)
            })
            .collect();
        let mut decoded = 0usize;
        for round in 0..30_000 {
            let body = match round % 3 {
                // Pure noise after the magic.
                0 => {
                    let mut b = MAGIC.to_vec();
                    let n = rng.below(64);
                    b.extend((0..n).map(|_| rng.next() as u8));
                    b
                }
                // Random bytes as the object of a random kind.
                1 => {
                    let (av, k) = &kinds[rng.below(kinds.len())];
                    let n = rng.below(128);
                    envelope(av, k, (0..n).map(|_| rng.next() as u8).collect())
                }
                // Mutations of real kubectl bodies: flipped bytes, truncation.
                _ => {
                    let mut b = seeds[rng.below(seeds.len())].clone();
                    for _ in 0..1 + rng.below(4) {
                        let i = rng.below(b.len());
                        b[i] = rng.next() as u8;
                    }
                    if rng.below(4) == 0 {
                        let len = rng.below(b.len());
                        b.truncate(len);
                    }
                    b
                }
            };
            if decode_k8s_protobuf(&body).is_ok() {
                decoded += 1;
            }
        }
        // Some mutations still decode; most do not. Either way nothing panicked.
        assert!(decoded > 0);
    }
}
