//! The three patch formats of PATCH requests, with upstream kube-apiserver semantics:
//!
//! - JSON patch (RFC 6902, `application/json-patch+json`), as `gopkg.in/evanphx/json-patch.v4`
//!   applies it for kube-apiserver: negative array indices count from the end, `replace` of a
//!   missing object member adds it, at most 10 000 operations, `copy` grows the document by at
//!   most 3 MiB;
//! - JSON merge patch (RFC 7386, `application/merge-patch+json`), as evanphx `MergePatch` does
//!   it (nulls are pruned from inserted values, also inside arrays);
//! - strategic merge patch (`application/strategic-merge-patch+json`), a port of
//!   `k8s.io/apimachinery/pkg/util/strategicpatch` (`StrategicMergeMapPatch`) driven by the
//!   per-type metadata of [`crate::schema_meta`]: lists merged by `patchMergeKey`, primitive
//!   lists merged as sets, `$patch: replace|delete`, `$retainKeys`,
//!   `$deleteFromPrimitiveList/<field>`, `$setElementOrder/<field>`, `null` deleting a key.
//!
//! Errors carry the HTTP status upstream answers with ([`PatchError::code`]).
//!
//! Inputs are expected to be `serde_json` values as parsed from a request or the store (whose
//! parser refuses more than [`MAX_DEPTH`] nested arrays/objects); the `*_body` entry points
//! parse the request body themselves, and no result nests deeper than its inputs allow, so a
//! result can always be stored and read back.

use std::collections::{HashMap, HashSet};
use std::io;

use serde_json::{Map, Number, Value};

use crate::schema_meta::{Node, TypeRef};

/// Upstream's limit on the number of operations of one JSON patch (`maxJSONPatchOperations`).
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;
/// Upstream's limit on how much `copy` operations may grow a document (`JSONPatchMaxCopyBytes`).
pub const JSON_PATCH_MAX_COPY_BYTES: u64 = 3 * 1024 * 1024;
/// The deepest nesting of arrays/objects that `serde_json` parses back (its recursion limit is
/// 128 levels, the 128th of which is refused); JSON patch results are kept within it.
pub const MAX_DEPTH: usize = 127;

const DIRECTIVE_MARKER: &str = "$patch";
const DELETE_DIRECTIVE: &str = "delete";
const REPLACE_DIRECTIVE: &str = "replace";
const MERGE_DIRECTIVE: &str = "merge";
const RETAIN_KEYS_STRATEGY: &str = "retainKeys";
const RETAIN_KEYS_DIRECTIVE: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST_PREFIX: &str = "$deleteFromPrimitiveList";
const SET_ELEMENT_ORDER_PREFIX: &str = "$setElementOrder";

/// Why a patch could not be applied. The server answers with a `metav1.Status` built from
/// [`code`](Self::code), [`reason`](Self::reason) and [`status_message`](Self::status_message).
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum PatchError {
    /// 400 BadRequest: the patch document is malformed (not JSON, not the expected shape, a
    /// malformed directive).
    #[error("{0}")]
    BadRequest(String),
    /// 422 Invalid: a well-formed patch that does not apply (JSON patch `test` failed, a path is
    /// missing; lists of lists in a strategic merge patch). Upstream sends the generic message
    /// "the server rejected our request due to an error in our request" with empty details; the
    /// string here is the detailed reason, for logs.
    #[error("{0}")]
    Unprocessable(String),
    /// 413 RequestEntityTooLarge: more than [`MAX_JSON_PATCH_OPERATIONS`] operations.
    #[error("Request entity too large: {0}")]
    TooLarge(String),
    /// 500 with an empty reason: upstream's strategic merge patch code returns a plain error for
    /// these (a list element missing its merge key, an unknown `$patch` value, …), which the
    /// apiserver turns into an InternalError-coded Status whose message is the error text.
    #[error("{0}")]
    Internal(String),
}

impl PatchError {
    /// The HTTP status code upstream answers with.
    pub fn code(&self) -> u16 {
        match self {
            PatchError::BadRequest(_) => 400,
            PatchError::Unprocessable(_) => 422,
            PatchError::TooLarge(_) => 413,
            PatchError::Internal(_) => 500,
        }
    }

    /// The `reason` of the Status ("" means the field is omitted, as upstream does for errors
    /// that are not API errors).
    pub fn reason(&self) -> &'static str {
        match self {
            PatchError::BadRequest(_) => "BadRequest",
            PatchError::Unprocessable(_) => "Invalid",
            PatchError::TooLarge(_) => "RequestEntityTooLarge",
            PatchError::Internal(_) => "",
        }
    }

    /// The `message` of the Status, as upstream words it.
    pub fn status_message(&self) -> String {
        match self {
            PatchError::Unprocessable(_) => {
                "the server rejected our request due to an error in our request".to_string()
            }
            other => other.to_string(),
        }
    }

    /// The detailed reason (for logs; for 422 it is not part of the Status).
    pub fn detail(&self) -> &str {
        match self {
            PatchError::BadRequest(m)
            | PatchError::Unprocessable(m)
            | PatchError::TooLarge(m)
            | PatchError::Internal(m) => m,
        }
    }
}

type Result<T> = std::result::Result<T, PatchError>;

// ---------------------------------------------------------------------------------------------
// Request bodies
// ---------------------------------------------------------------------------------------------

/// Parses a JSON (merge or strategic merge) patch body; anything that is not JSON is a 400
/// "invalid JSON patch", as upstream checks before anything else.
pub fn parse_patch_body(body: &[u8]) -> Result<Value> {
    serde_json::from_slice(body).map_err(|_| PatchError::BadRequest("invalid JSON patch".into()))
}

/// [`apply_merge_patch`] for a raw request body: not JSON, `null` or a scalar is a 400 like
/// upstream. A top-level array yields that array (nulls pruned), which the caller's decoding of
/// the result into the kind then rejects, as upstream does.
pub fn apply_merge_patch_body(doc: &Value, body: &[u8]) -> Result<Value> {
    let patch = parse_patch_body(body)?;
    match patch {
        Value::Object(_) | Value::Array(_) => Ok(apply_merge_patch(doc, &patch)),
        _ => Err(PatchError::BadRequest("Invalid JSON Patch".into())),
    }
}

/// [`apply_strategic_merge_patch`] for a raw request body.
pub fn apply_strategic_merge_patch_body(
    doc: &Value,
    body: &[u8],
    root: Option<TypeRef>,
) -> Result<Value> {
    let patch = parse_patch_body(body)?;
    apply_strategic_merge_patch(doc, &patch, root)
}

// ---------------------------------------------------------------------------------------------
// JSON patch (RFC 6902)
// ---------------------------------------------------------------------------------------------

/// Applies a JSON patch request body to `doc`. The operations apply in order to a copy of `doc`;
/// the first failing one fails the whole patch.
pub fn apply_json_patch(doc: &Value, patch_body: &[u8]) -> Result<Value> {
    let parsed = parse_patch_body(patch_body)?;
    let ops = match parsed {
        Value::Null => Vec::new(),
        Value::Array(ops) => ops,
        other => {
            return Err(PatchError::BadRequest(format!(
                "json: cannot unmarshal {} into Go value of type jsonpatch.Patch",
                json_kind(&other)
            )))
        }
    };
    let mut operations = Vec::with_capacity(ops.len());
    for op in ops {
        match op {
            Value::Object(m) => operations.push(Some(m)),
            Value::Null => operations.push(None),
            other => {
                return Err(PatchError::BadRequest(format!(
                    "json: cannot unmarshal {} into Go value of type jsonpatch.Operation",
                    json_kind(&other)
                )))
            }
        }
    }
    if operations.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(PatchError::TooLarge(format!(
            "The allowed maximum operations in a JSON patch is {}, got {}",
            MAX_JSON_PATCH_OPERATIONS,
            operations.len()
        )));
    }
    if exceeds_depth(doc, MAX_DEPTH) {
        return Err(PatchError::Unprocessable(
            "the object nests too deeply".to_string(),
        ));
    }
    let mut doc = doc.clone();
    let mut copied: u64 = 0;
    for op in &operations {
        let empty = Map::new();
        let op = Op(op.as_ref().unwrap_or(&empty));
        let kind = op.kind();
        let res = match kind {
            "add" => op_add(&mut doc, &op),
            "remove" => op_remove(&mut doc, &op),
            "replace" => op_replace(&mut doc, &op),
            "move" => op_move(&mut doc, &op),
            "test" => op_test(&mut doc, &op),
            "copy" => op_copy(&mut doc, &op, &mut copied),
            other => Err(format!("Unexpected kind: {other}")),
        };
        res.map_err(PatchError::Unprocessable)?;
    }
    Ok(doc)
}

/// One operation of a JSON patch (evanphx `Operation`: a map of raw members).
struct Op<'a>(&'a Map<String, Value>);

impl<'a> Op<'a> {
    fn kind(&self) -> &'a str {
        match self.0.get("op") {
            Some(Value::String(s)) => s,
            _ => "unknown",
        }
    }

    fn string_member(&self, name: &str, missing: &str) -> std::result::Result<&'a str, String> {
        match self.0.get(name) {
            None | Some(Value::Null) => Err(missing.to_string()),
            Some(Value::String(s)) => Ok(s),
            Some(other) => Err(format!(
                "json: cannot unmarshal {} into Go value of type string",
                json_kind(other)
            )),
        }
    }

    fn path(&self) -> std::result::Result<&'a str, String> {
        self.string_member("path", "operation missing path field: missing value")
    }

    fn from(&self) -> std::result::Result<&'a str, String> {
        self.string_member("from", "operation, missing from field: missing value")
    }

    /// The `value` member: None when absent (`null` is `Some(Null)`).
    fn value(&self) -> Option<&'a Value> {
        self.0.get("value")
    }
}

/// RFC 6901 reference token decoding.
fn decode_token(t: &str) -> String {
    if t.contains('~') {
        t.replace("~1", "/").replace("~0", "~")
    } else {
        t.to_string()
    }
}

/// Go's `strconv.Atoi`: optional sign, decimal digits, must fit in 64 bits.
fn atoi(s: &str) -> std::result::Result<i64, String> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    let syntax = || format!("strconv.Atoi: parsing {s:?}: invalid syntax");
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(syntax());
    }
    s.strip_prefix('+')
        .unwrap_or(s)
        .parse::<i64>()
        .map_err(|_| format!("strconv.Atoi: parsing {s:?}: value out of range"))
}

fn invalid_index(idx: i64) -> String {
    format!("Unable to access invalid index: {idx}: invalid index referenced")
}

/// Resolves an existing element index the way evanphx `partialArray.get/set/remove` do
/// (negative indices count from the end).
fn existing_index(key: &str, len: usize) -> std::result::Result<usize, String> {
    let idx = atoi(key)?;
    let len_i = i64::try_from(len).unwrap_or(i64::MAX);
    let adjusted = if idx < 0 {
        if idx < -len_i {
            return Err(invalid_index(idx));
        }
        idx + len_i
    } else {
        idx
    };
    if adjusted >= len_i {
        return Err(invalid_index(adjusted));
    }
    usize::try_from(adjusted).map_err(|_| invalid_index(idx))
}

/// evanphx `findObject`: the container that holds the last token of `path`, that token, and
/// the number of tokens (the nesting level a value placed there gets).
fn find_object<'d>(doc: &'d mut Value, path: &str) -> Option<(&'d mut Value, String, usize)> {
    let split: Vec<&str> = path.split('/').collect();
    if split.len() < 2 {
        return None;
    }
    let last = split.len() - 1;
    let key = decode_token(split.get(last)?);
    let mut cur = doc;
    for part in split.get(1..last)? {
        let part = decode_token(part);
        let next = match cur {
            Value::Object(m) => m.get_mut(&part)?,
            Value::Array(a) => {
                let idx = existing_index(&part, a.len()).ok()?;
                a.get_mut(idx)?
            }
            _ => return None,
        };
        if !(next.is_object() || next.is_array()) {
            return None;
        }
        cur = next;
    }
    Some((cur, key, last))
}

fn container_get(con: &Value, key: &str) -> std::result::Result<Option<Value>, String> {
    match con {
        Value::Object(m) => Ok(m.get(key).cloned()),
        Value::Array(a) => {
            let idx = existing_index(key, a.len())?;
            Ok(a.get(idx).cloned())
        }
        _ => Err("invalid state detected".to_string()),
    }
}

fn container_add(con: &mut Value, key: &str, val: Value) -> std::result::Result<(), String> {
    match con {
        Value::Object(m) => {
            m.insert(key.to_string(), val);
            Ok(())
        }
        Value::Array(a) => {
            if key == "-" {
                a.push(val);
                return Ok(());
            }
            let idx = atoi(key)
                .map_err(|e| format!("value was not a proper array index: '{key}': {e}"))?;
            let size = i64::try_from(a.len()).unwrap_or(i64::MAX).saturating_add(1);
            if idx >= size {
                return Err(invalid_index(idx));
            }
            let idx = if idx < 0 {
                if idx < -size {
                    return Err(invalid_index(idx));
                }
                idx + size
            } else {
                idx
            };
            let idx = usize::try_from(idx).map_err(|_| invalid_index(idx))?;
            if idx > a.len() {
                return Err(invalid_index(i64::try_from(idx).unwrap_or(i64::MAX)));
            }
            a.insert(idx, val);
            Ok(())
        }
        _ => Err("invalid state detected".to_string()),
    }
}

fn container_remove(con: &mut Value, key: &str) -> std::result::Result<Option<Value>, String> {
    match con {
        Value::Object(m) => match m.shift_remove(key) {
            Some(v) => Ok(Some(v)),
            None => Err(format!(
                "Unable to remove nonexistent key: {key}: missing value"
            )),
        },
        Value::Array(a) => {
            let idx = atoi(key)?;
            let len = i64::try_from(a.len()).unwrap_or(i64::MAX);
            if idx >= len {
                return Err(invalid_index(idx));
            }
            let idx = if idx < 0 {
                if idx < -len {
                    return Err(invalid_index(idx));
                }
                idx + len
            } else {
                idx
            };
            let idx = usize::try_from(idx).map_err(|_| invalid_index(idx))?;
            if idx >= a.len() {
                return Err(invalid_index(i64::try_from(idx).unwrap_or(i64::MAX)));
            }
            Ok(Some(a.remove(idx)))
        }
        _ => Err("invalid state detected".to_string()),
    }
}

fn container_set(con: &mut Value, key: &str, val: Value) -> std::result::Result<(), String> {
    match con {
        Value::Object(m) => {
            m.insert(key.to_string(), val);
            Ok(())
        }
        Value::Array(a) => {
            let idx = existing_index(key, a.len())?;
            match a.get_mut(idx) {
                Some(slot) => {
                    *slot = val;
                    Ok(())
                }
                None => Err(invalid_index(i64::try_from(idx).unwrap_or(i64::MAX))),
            }
        }
        _ => Err("invalid state detected".to_string()),
    }
}

/// Refuses to place `val` at nesting level `level` if the document would then nest deeper than
/// [`MAX_DEPTH`].
fn check_placement(level: usize, val: &Value) -> std::result::Result<(), String> {
    if level > MAX_DEPTH || exceeds_depth(val, MAX_DEPTH - level) {
        return Err(format!(
            "the patched object would nest deeper than {MAX_DEPTH} levels"
        ));
    }
    Ok(())
}

fn op_add(doc: &mut Value, op: &Op<'_>) -> std::result::Result<(), String> {
    let path = op
        .path()
        .map_err(|_| "add operation failed to decode path: missing value".to_string())?;
    let (con, key, level) = find_object(doc, path).ok_or_else(|| {
        format!("add operation does not apply: doc is missing path: \"{path}\": missing value")
    })?;
    let val = op.value().cloned().unwrap_or(Value::Null);
    check_placement(level, &val)?;
    container_add(con, &key, val).map_err(|e| format!("error in add for path: '{path}': {e}"))
}

fn op_remove(doc: &mut Value, op: &Op<'_>) -> std::result::Result<(), String> {
    let path = op
        .path()
        .map_err(|_| "remove operation failed to decode path: missing value".to_string())?;
    let (con, key, _) = find_object(doc, path).ok_or_else(|| {
        format!("remove operation does not apply: doc is missing path: \"{path}\": missing value")
    })?;
    container_remove(con, &key)
        .map(|_| ())
        .map_err(|e| format!("error in remove for path: '{path}': {e}"))
}

fn op_replace(doc: &mut Value, op: &Op<'_>) -> std::result::Result<(), String> {
    let path = op
        .path()
        .map_err(|e| format!("replace operation failed to decode path: {e}"))?;
    if path.is_empty() {
        return match op.value() {
            Some(v @ (Value::Object(_) | Value::Array(_))) => {
                check_placement(0, v)?;
                *doc = v.clone();
                Ok(())
            }
            _ => Err("replace operation value must be object or array".to_string()),
        };
    }
    let (con, key, level) = find_object(doc, path).ok_or_else(|| {
        format!("replace operation does not apply: doc is missing path: {path}: missing value")
    })?;
    if container_get(con, &key).is_err() {
        return Err(format!(
            "replace operation does not apply: doc is missing key: {path}: missing value"
        ));
    }
    let val = op.value().cloned().unwrap_or(Value::Null);
    check_placement(level, &val)?;
    container_set(con, &key, val).map_err(|e| format!("error in remove for path: '{path}': {e}"))
}

fn op_move(doc: &mut Value, op: &Op<'_>) -> std::result::Result<(), String> {
    let from = op
        .from()
        .map_err(|e| format!("move operation failed to decode from: {e}"))?;
    let (con, key, from_level) = find_object(doc, from).ok_or_else(|| {
        format!("move operation does not apply: doc is missing from path: {from}: missing value")
    })?;
    container_get(con, &key).map_err(|e| format!("error in move for path: '{key}': {e}"))?;
    let val = container_remove(con, &key)
        .map_err(|e| format!("error in move for path: '{key}': {e}"))?
        .unwrap_or(Value::Null);
    let path = op
        .path()
        .map_err(|e| format!("move operation failed to decode path: {e}"))?;
    let (con, key, level) = find_object(doc, path).ok_or_else(|| {
        format!(
            "move operation does not apply: doc is missing destination path: {path}: missing value"
        )
    })?;
    if level > from_level {
        check_placement(level, &val)?;
    }
    container_add(con, &key, val).map_err(|e| format!("error in move for path: '{path}': {e}"))
}

fn op_test(doc: &mut Value, op: &Op<'_>) -> std::result::Result<(), String> {
    let path = op
        .path()
        .map_err(|e| format!("test operation failed to decode path: {e}"))?;
    let failed = || format!("testing value {path} failed: test failed");
    if path.is_empty() {
        return match op.value() {
            Some(v) if v == doc => Ok(()),
            _ => Err(failed()),
        };
    }
    let (con, key, _) = find_object(doc, path).ok_or_else(|| {
        format!("test operation does not apply: is missing path: {path}: missing value")
    })?;
    let val =
        container_get(con, &key).map_err(|e| format!("error in test for path: '{path}': {e}"))?;
    let expected = op.value();
    match (val, expected) {
        (None | Some(Value::Null), None | Some(Value::Null)) => Ok(()),
        (None | Some(Value::Null), Some(_)) | (Some(_), None) => Err(failed()),
        (Some(actual), Some(expected)) => {
            if &actual == expected {
                Ok(())
            } else {
                Err(failed())
            }
        }
    }
}

fn op_copy(doc: &mut Value, op: &Op<'_>, copied: &mut u64) -> std::result::Result<(), String> {
    let from = op
        .from()
        .map_err(|e| format!("copy operation failed to decode from: {e}"))?;
    let (con, key, _) = find_object(doc, from).ok_or_else(|| {
        format!("copy operation does not apply: doc is missing from path: {from}: missing value")
    })?;
    let val =
        container_get(con, &key).map_err(|e| format!("error in copy for from: '{from}': {e}"))?;
    let path = op
        .path()
        .map_err(|_| "copy operation failed to decode path: missing value".to_string())?;
    let (con, key, level) = find_object(doc, path).ok_or_else(|| {
        format!(
            "copy operation does not apply: doc is missing destination path: {path}: missing value"
        )
    })?;
    // evanphx counts the serialized copy; a null (or missing) source counts nothing.
    let size = val
        .as_ref()
        .filter(|v| !v.is_null())
        .map(serialized_len)
        .unwrap_or(0);
    *copied = copied.saturating_add(size);
    if *copied > JSON_PATCH_MAX_COPY_BYTES {
        return Err(format!(
            "Unable to complete the copy, the accumulated size increase of copy is {}, exceeding the limit {}",
            copied, JSON_PATCH_MAX_COPY_BYTES
        ));
    }
    let val = val.unwrap_or(Value::Null);
    check_placement(level, &val)?;
    container_add(con, &key, val).map_err(|e| format!("error while adding value during copy: {e}"))
}

struct CountingWriter(u64);

impl io::Write for CountingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 = self
            .0
            .saturating_add(u64::try_from(buf.len()).unwrap_or(u64::MAX));
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn serialized_len(v: &Value) -> u64 {
    let mut w = CountingWriter(0);
    match serde_json::to_writer(&mut w, v) {
        Ok(()) => w.0,
        Err(_) => u64::MAX,
    }
}

/// Whether `v` has more than `limit` levels of nested arrays/objects (a scalar has 0, `{}` 1).
/// Iterative, so it is safe on any input.
pub fn exceeds_depth(v: &Value, limit: usize) -> bool {
    let mut stack: Vec<(&Value, usize)> = vec![(v, 0)];
    while let Some((v, level)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Object(m) => Box::new(m.values()),
            Value::Array(a) => Box::new(a.iter()),
            _ => continue,
        };
        let level = level + 1;
        if level > limit {
            return true;
        }
        stack.extend(children.map(|c| (c, level)));
    }
    false
}

// ---------------------------------------------------------------------------------------------
// JSON merge patch (RFC 7386)
// ---------------------------------------------------------------------------------------------

/// Applies a JSON merge patch: members of an object patch merge recursively into the document,
/// `null` deletes a member, anything else (arrays included) replaces. A non-object patch
/// replaces the whole document.
pub fn apply_merge_patch(doc: &Value, patch: &Value) -> Value {
    match (doc, patch) {
        (Value::Object(d), Value::Object(p)) => {
            let mut d = d.clone();
            merge_docs(&mut d, p);
            Value::Object(d)
        }
        (_, p) => {
            let mut p = p.clone();
            prune_nulls(&mut p);
            p
        }
    }
}

fn merge_docs(doc: &mut Map<String, Value>, patch: &Map<String, Value>) {
    let mut deleted: HashSet<&str> = HashSet::new();
    for (k, v) in patch {
        if v.is_null() {
            deleted.insert(k.as_str());
            continue;
        }
        match doc.get_mut(k) {
            Some(cur) if !cur.is_null() => merge_value(cur, v),
            _ => {
                let mut v = v.clone();
                prune_nulls(&mut v);
                doc.insert(k.clone(), v);
            }
        }
    }
    if !deleted.is_empty() {
        doc.retain(|k, _| !deleted.contains(k.as_str()));
    }
}

fn merge_value(cur: &mut Value, patch: &Value) {
    match (cur, patch) {
        (Value::Object(c), Value::Object(p)) => merge_docs(c, p),
        (cur @ Value::Object(_), p) => *cur = p.clone(),
        (cur, p) => {
            let mut p = p.clone();
            prune_nulls(&mut p);
            *cur = p;
        }
    }
}

/// evanphx `pruneNulls`: drops null members of objects, also of objects inside arrays (null
/// array elements stay).
fn prune_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            for v in m.values_mut() {
                prune_nulls(v);
            }
        }
        Value::Array(a) => {
            for v in a.iter_mut() {
                prune_nulls(v);
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Strategic merge patch
// ---------------------------------------------------------------------------------------------

/// Applies a strategic merge patch to `doc`, an object of the kind whose root definition is
/// `root`. With `root == None` (custom resources, which upstream refuses with 415 for this
/// patch type) it behaves as a JSON merge patch. A `null` patch changes nothing.
pub fn apply_strategic_merge_patch(
    doc: &Value,
    patch: &Value,
    root: Option<TypeRef>,
) -> Result<Value> {
    let patch = match patch {
        Value::Object(m) => m,
        Value::Null => return Ok(doc.clone()),
        other => {
            return Err(PatchError::BadRequest(format!(
                "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                json_kind(other)
            )))
        }
    };
    let Some(root) = root else {
        return Ok(apply_merge_patch(doc, &Value::Object(patch.clone())));
    };
    // Inputs come from serde_json, which parses at most MAX_DEPTH levels; the recursion below
    // follows the patch, so refuse anything deeper (built by other means) up front.
    if exceeds_depth(doc, MAX_DEPTH) {
        return Err(PatchError::BadRequest(
            "the object nests too deeply".to_string(),
        ));
    }
    if patch.values().any(|v| exceeds_depth(v, MAX_DEPTH - 1)) {
        return Err(PatchError::BadRequest(
            "the patch nests too deeply".to_string(),
        ));
    }
    let original = match doc {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    merge_map(original, patch.clone(), Node::Type(root)).map(Value::Object)
}

/// Patch metadata of one field: its strategy (without `retainKeys`) and merge key.
#[derive(Default)]
struct PatchMeta {
    strategy: &'static str,
    merge_key: &'static str,
}

fn patch_meta(meta: Option<crate::schema_meta::FieldMeta>) -> Result<PatchMeta> {
    let Some(meta) = meta else {
        return Ok(PatchMeta::default());
    };
    let strategies: Vec<&'static str> = match meta.patch_strategy {
        Some(s) => s.split(',').collect(),
        None => Vec::new(),
    };
    let strategy = match strategies.as_slice() {
        [] => "",
        [s] if *s == RETAIN_KEYS_STRATEGY => "",
        [s] => s,
        [a, b] if *a == RETAIN_KEYS_STRATEGY => b,
        [a, b] if *b == RETAIN_KEYS_STRATEGY => a,
        _ => {
            return Err(PatchError::Internal(format!(
                "unexpected patch strategy: [{}]",
                strategies.join(" ")
            )))
        }
    };
    Ok(PatchMeta {
        strategy,
        merge_key: meta.patch_merge_key.unwrap_or(""),
    })
}

/// `LookupPatchMetadataForStruct`: the schema of member `key` and its patch metadata.
fn lookup_struct(schema: Node, key: &str) -> Result<(Node, PatchMeta)> {
    let (node, meta) = schema.child(key);
    Ok((node, patch_meta(meta)?))
}

/// `LookupPatchMetadataForSlice`: the schema of the elements of list member `key` and its
/// patch metadata.
fn lookup_slice(schema: Node, key: &str) -> Result<(Node, PatchMeta)> {
    let (node, meta) = schema.child(key);
    Ok((node.elem(), patch_meta(meta)?))
}

/// `mergeMap`: merges `patch` into `original` (server-side options: parallel lists merged,
/// unmatched nulls ignored).
fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    schema: Node,
) -> Result<Map<String, Value>> {
    if let Some(directive) = patch.get(DIRECTIVE_MARKER) {
        return match directive.as_str() {
            Some(REPLACE_DIRECTIVE) => {
                patch.shift_remove(DIRECTIVE_MARKER);
                let mut v = Value::Object(patch);
                strip_directive_keys(&mut v);
                match v {
                    Value::Object(m) => Ok(m),
                    _ => Ok(Map::new()),
                }
            }
            Some(DELETE_DIRECTIVE) => Ok(Map::new()),
            _ => Err(err_bad_patch_type(directive, &patch)),
        };
    }

    let mut entries: Vec<(String, Option<Value>)> =
        patch.into_iter().map(|(k, v)| (k, Some(v))).collect();

    apply_retain_keys_directive(&mut original, &mut entries)?;
    merge_patch_into_original(&mut original, &mut entries, schema)?;

    let mut deleted: HashSet<String> = HashSet::new();
    for (k, patch_v) in entries {
        let Some(patch_v) = patch_v else { continue };
        let (is_delete_list, k) = if k.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX) {
            (true, extract_key(&k, DELETE_FROM_PRIMITIVE_LIST_PREFIX)?)
        } else {
            (false, k)
        };

        if patch_v.is_null() {
            deleted.insert(k);
            continue;
        }

        let Some(orig_v) = original.get_mut(&k) else {
            if !is_delete_list {
                if let Some(v) = clean_inserted(patch_v) {
                    original.insert(k, v);
                }
            }
            continue;
        };

        if go_type(orig_v) != go_type(&patch_v) {
            if !is_delete_list {
                match clean_inserted(patch_v) {
                    Some(v) => *orig_v = v,
                    None => {
                        deleted.insert(k);
                    }
                }
            }
            continue;
        }

        match (orig_v, patch_v) {
            (Value::Object(o), Value::Object(p)) => {
                let (sub, meta) = lookup_struct(schema, &k)?;
                let o = std::mem::take(o);
                let merged = if meta.strategy != REPLACE_DIRECTIVE {
                    merge_map(o, p, sub)?
                } else {
                    strip_map(p)
                };
                if let Some(slot) = original.get_mut(&k) {
                    *slot = Value::Object(merged);
                }
            }
            (Value::Array(o), Value::Array(p)) => {
                let (sub, meta) = lookup_slice(schema, &k)?;
                let o = std::mem::take(o);
                let merged =
                    merge_slice_handler(o, p, sub, meta.strategy, meta.merge_key, is_delete_list)?;
                if let Some(slot) = original.get_mut(&k) {
                    *slot = Value::Array(merged);
                }
            }
            (slot, p) => match remove_directives(p) {
                Some(v) => *slot = v,
                None => {
                    deleted.insert(k);
                }
            },
        }
    }
    if !deleted.is_empty() {
        original.retain(|k, _| !deleted.contains(k));
    }
    Ok(original)
}

/// A value taken from the patch as it is (a new member, or one whose type changed): nulls and
/// elements carrying `$patch` are dropped (`discardNullValuesFromPatch`, `removeDirectives`),
/// and the other directive keys too (upstream's typed decoding drops them as unknown fields).
fn clean_inserted(mut v: Value) -> Option<Value> {
    discard_null_values(&mut v);
    let mut v = remove_directives(v)?;
    strip_directive_keys(&mut v);
    Some(v)
}

fn strip_map(m: Map<String, Value>) -> Map<String, Value> {
    let mut v = Value::Object(m);
    strip_directive_keys(&mut v);
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn strip_list(mut l: Vec<Value>) -> Vec<Value> {
    for v in l.iter_mut() {
        strip_directive_keys(v);
    }
    l
}

fn is_directive_key(k: &str) -> bool {
    k == DIRECTIVE_MARKER
        || k == RETAIN_KEYS_DIRECTIVE
        || k.starts_with(SET_ELEMENT_ORDER_PREFIX)
        || k.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
}

/// Removes directive keys left in values copied from the patch.
fn strip_directive_keys(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if m.keys().any(|k| is_directive_key(k)) {
                m.retain(|k, _| !is_directive_key(k));
            }
            for v in m.values_mut() {
                strip_directive_keys(v);
            }
        }
        Value::Array(a) => {
            for v in a.iter_mut() {
                strip_directive_keys(v);
            }
        }
        _ => {}
    }
}

/// `discardNullValuesFromPatch`.
fn discard_null_values(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            for v in m.values_mut() {
                discard_null_values(v);
            }
        }
        Value::Array(a) => {
            for v in a.iter_mut() {
                discard_null_values(v);
            }
        }
        _ => {}
    }
}

/// `removeDirectives`: None when the value itself is a `$patch` map.
fn remove_directives(v: Value) -> Option<Value> {
    match v {
        Value::Object(m) => {
            if m.contains_key(DIRECTIVE_MARKER) {
                return None;
            }
            let mut out = Map::new();
            for (k, v) in m {
                if let Some(v) = remove_directives(v) {
                    out.insert(k, v);
                }
            }
            Some(Value::Object(out))
        }
        Value::Array(a) => Some(Value::Array(
            a.into_iter().filter_map(remove_directives).collect(),
        )),
        other => Some(other),
    }
}

/// `extractKey`: the field name after `prefix/`.
fn extract_key(s: &str, prefix: &str) -> Result<String> {
    match s.split_once('/') {
        Some((head, rest)) if head == prefix => Ok(rest.to_string()),
        _ => Err(match prefix {
            DELETE_FROM_PRIMITIVE_LIST_PREFIX => {
                PatchError::BadRequest("invalid patch format of primitive list".into())
            }
            SET_ELEMENT_ORDER_PREFIX => {
                PatchError::BadRequest("invalid patch format of setElementOrder list".into())
            }
            _ => PatchError::Internal(format!("fail to find unknown prefix {prefix:?} in {s}\n")),
        }),
    }
}

/// `applyRetainKeysDirective`: with `$retainKeys`, members of `original` missing from the list
/// are cleared; every non-null member of the patch must be in the list.
fn apply_retain_keys_directive(
    original: &mut Map<String, Value>,
    entries: &mut [(String, Option<Value>)],
) -> Result<()> {
    let Some(retain) = entries
        .iter_mut()
        .find(|(k, v)| k == RETAIN_KEYS_DIRECTIVE && v.is_some())
        .and_then(|(_, v)| v.take())
    else {
        return Ok(());
    };
    let bad = || PatchError::BadRequest("invalid patch format of retainKeys".into());
    let Value::Array(list) = retain else {
        return Err(bad());
    };
    let keep: HashSet<&str> = list.iter().filter_map(Value::as_str).collect();
    for (k, v) in entries.iter() {
        let Some(v) = v else { continue };
        if v.is_null()
            || k.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
            || k.starts_with(SET_ELEMENT_ORDER_PREFIX)
        {
            continue;
        }
        if !keep.contains(k.as_str()) {
            return Err(bad());
        }
    }
    original.retain(|k, _| keep.contains(k.as_str()));
    Ok(())
}

/// `mergePatchIntoOriginal`: handles each `$setElementOrder/<field>` together with the patch
/// list `<field>`: merges them, then orders the result (setElementOrder list first, then the
/// order of the live list). Both entries are consumed.
fn merge_patch_into_original(
    original: &mut Map<String, Value>,
    entries: &mut [(String, Option<Value>)],
    schema: Node,
) -> Result<()> {
    let order_entries: Vec<usize> = entries
        .iter()
        .enumerate()
        .filter(|(_, (k, v))| k.starts_with(SET_ELEMENT_ORDER_PREFIX) && v.is_some())
        .map(|(i, _)| i)
        .collect();
    if order_entries.is_empty() {
        return Ok(());
    }
    let positions: HashMap<String, usize> = entries
        .iter()
        .enumerate()
        .rev()
        .map(|(i, (k, _))| (k.clone(), i))
        .collect();

    for i in order_entries {
        let Some((key, slot)) = entries.get_mut(i) else {
            continue;
        };
        let key = key.clone();
        let Some(set_order) = slot.take() else {
            continue;
        };
        let Value::Array(set_order) = set_order else {
            return Err(err_bad_arg_type("[]interface {}", &set_order));
        };
        let original_key = extract_key(&key, SET_ELEMENT_ORDER_PREFIX)?;

        let original_list = match original.get(&original_key) {
            None => None,
            Some(Value::Array(a)) => Some(a.clone()),
            Some(other) => return Err(err_bad_arg_type("[]interface {}", other)),
        };
        let patch_pos = positions
            .get(&original_key)
            .copied()
            .filter(|p| entries.get(*p).is_some_and(|(_, v)| v.is_some()));
        let patch_list = match patch_pos.and_then(|p| entries.get(p)) {
            None | Some((_, None)) => None,
            Some((_, Some(Value::Array(a)))) => Some(a.clone()),
            Some((_, Some(other))) => return Err(err_bad_arg_type("[]interface {}", other)),
        };

        let (sub, meta) = lookup_slice(schema, &original_key)?;
        validate_patch_with_set_order_list(
            patch_list.as_deref().unwrap_or(&[]),
            &set_order,
            meta.merge_key,
        )?;

        let element_kind = slice_element_type(&[
            original_list.as_deref().unwrap_or(&[]),
            patch_list.as_deref().unwrap_or(&[]),
        ]);
        let server_order = match (&original_list, &patch_list, &element_kind) {
            (Some(o), Some(p), Ok(GoType::Map))
                if meta.strategy == MERGE_DIRECTIVE && !meta.merge_key.is_empty() =>
            {
                aliased_live_order(o, p, meta.merge_key)
            }
            _ => original_list.clone().unwrap_or_default(),
        };
        let merged = match (original_list, patch_list) {
            (Some(o), None) => o,
            (None, Some(p)) => match remove_directives(Value::Array(p)) {
                Some(Value::Array(a)) => strip_list(a),
                _ => Vec::new(),
            },
            (Some(o), Some(p)) => {
                merge_slice_handler(o, p, sub, meta.strategy, meta.merge_key, false)?
            }
            (None, None) => continue,
        };

        let ordered = match element_kind {
            // Nothing to order (upstream errors out on two empty lists; keep them empty).
            Err(_) if merged.is_empty() => merged,
            Err(e) => return Err(e),
            Ok(kind) => {
                let (patch_items, server_only) = if meta.merge_key.is_empty() {
                    partition_primitives_by_present_in_list(merged, &set_order)
                } else {
                    partition_maps_by_present_in_list(merged, &set_order, meta.merge_key)?
                };
                normalize_element_order(
                    patch_items,
                    server_only,
                    &set_order,
                    &server_order,
                    meta.merge_key,
                    kind,
                )?
            }
        };
        original.insert(original_key, Value::Array(ordered));
        if let Some((_, v)) = patch_pos.and_then(|p| entries.get_mut(p)) {
            *v = None;
        }
    }
    Ok(())
}

/// The live list as upstream's `$setElementOrder` handling sees it once the list is merged.
///
/// Upstream orders the server-only elements by the live list it read before merging, but the
/// merge reused that list's memory (Go slices): each `$patch: delete` shifted the following
/// elements left in place (leaving the last one duplicated) and each appended patch element was
/// written into the freed slots. Replaying those writes on the merge keys reproduces the order
/// upstream ends up with (elements are only looked at through their merge key).
fn aliased_live_order(original: &[Value], patch: &[Value], merge_key: &str) -> Vec<Value> {
    let mut live: Vec<Value> = original.iter().map(|v| key_stub(v, merge_key)).collect();
    let window = live.len();
    let mut len = window;
    let key_of = |v: &Value| v.as_object().and_then(|m| m.get(merge_key)).map(vkey);
    let mut replace = false;
    for p in patch {
        let Some(m) = p.as_object() else {
            return live;
        };
        match m.get(DIRECTIVE_MARKER).map(|d| d.as_str()) {
            None => {}
            Some(Some(DELETE_DIRECTIVE)) => {
                let Some(target) = m.get(merge_key).map(vkey) else {
                    return live;
                };
                while let Some(i) = live
                    .get(..len)
                    .and_then(|l| l.iter().position(|o| key_of(o).as_ref() == Some(&target)))
                {
                    for k in i..len.saturating_sub(1) {
                        if let Some(next) = live.get(k + 1).cloned() {
                            if let Some(slot) = live.get_mut(k) {
                                *slot = next;
                            }
                        }
                    }
                    len -= 1;
                }
            }
            Some(Some(REPLACE_DIRECTIVE)) => replace = true,
            Some(_) => return live,
        }
    }
    if replace {
        return live;
    }
    let mut present: HashSet<VKey> = live.iter().take(len).filter_map(key_of).collect();
    let mut moved = false;
    for p in patch {
        if p.get(DIRECTIVE_MARKER).is_some() {
            continue;
        }
        let Some(key) = key_of(p) else {
            return live;
        };
        if present.contains(&key) {
            continue;
        }
        if !moved && len < window {
            if let Some(slot) = live.get_mut(len) {
                *slot = key_stub(p, merge_key);
            }
            len += 1;
        } else {
            // Appending beyond the original length moves to new memory: nothing more shows.
            moved = true;
        }
        present.insert(key);
    }
    live
}

/// `validatePatchWithSetOrderList`: the patch list's items (deletions aside) must appear in the
/// `$setElementOrder` list, in the same relative order.
fn validate_patch_with_set_order_list(
    patch_list: &[Value],
    set_order: &[Value],
    merge_key: &str,
) -> Result<()> {
    if set_order.is_empty() || patch_list.is_empty() {
        return Ok(());
    }
    let non_delete: Vec<&Value> = if merge_key.is_empty() {
        patch_list.iter().collect()
    } else {
        let mut out = Vec::new();
        for v in patch_list {
            let Value::Object(m) = v else {
                return Err(err_bad_arg_type("map[string]interface {}", v));
            };
            if m.get(DIRECTIVE_MARKER).and_then(Value::as_str) != Some(DELETE_DIRECTIVE) {
                out.push(v);
            }
        }
        out
    };
    let (mut pi, mut si) = (0usize, 0usize);
    while let (Some(p), Some(s)) = (non_delete.get(pi), set_order.get(si)) {
        if p.as_object()
            .is_some_and(|m| m.contains_key(DIRECTIVE_MARKER))
        {
            pi += 1;
            continue;
        }
        if merge_key_value_equal(p, s, merge_key)? {
            pi += 1;
        }
        si += 1;
    }
    if pi < non_delete.len() && si >= set_order.len() {
        return Err(PatchError::Internal(format!(
            "The order in patch list:\n{}\n doesn't match {} list:\n{}\n",
            clip(go_fmt_list(patch_list)),
            SET_ELEMENT_ORDER_PREFIX,
            clip(go_fmt_list(set_order))
        )));
    }
    Ok(())
}

fn merge_key_value_equal(left: &Value, right: &Value, merge_key: &str) -> Result<bool> {
    if merge_key.is_empty() {
        return Ok(left == right);
    }
    let Value::Object(l) = left else {
        return Err(err_bad_arg_type("map[string]interface {}", left));
    };
    let Value::Object(r) = right else {
        return Err(err_bad_arg_type("map[string]interface {}", right));
    };
    let lv = l
        .get(merge_key)
        .ok_or_else(|| err_no_merge_key(l, merge_key))?;
    let rv = r
        .get(merge_key)
        .ok_or_else(|| err_no_merge_key(r, merge_key))?;
    Ok(lv == rv)
}

/// `mergeSliceHandler`: lists with the merge strategy (and deletion lists) are merged, others
/// replaced by the patch.
fn merge_slice_handler(
    original: Vec<Value>,
    patch: Vec<Value>,
    schema: Node,
    strategy: &str,
    merge_key: &str,
    is_delete_list: bool,
) -> Result<Vec<Value>> {
    if strategy == MERGE_DIRECTIVE || is_delete_list {
        merge_slice(original, patch, schema, merge_key, is_delete_list)
    } else {
        Ok(strip_list(patch))
    }
}

/// Go's dynamic type of a decoded JSON value, as `reflect.TypeOf` sees it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum GoType {
    Nil,
    Bool,
    Int,
    Float,
    String,
    Map,
    Slice,
}

fn go_type(v: &Value) -> GoType {
    match v {
        Value::Null => GoType::Nil,
        Value::Bool(_) => GoType::Bool,
        Value::Number(n) if n.is_f64() => GoType::Float,
        Value::Number(_) => GoType::Int,
        Value::String(_) => GoType::String,
        Value::Object(_) => GoType::Map,
        Value::Array(_) => GoType::Slice,
    }
}

fn go_type_name(v: &Value) -> &'static str {
    match go_type(v) {
        GoType::Nil => "%!s(<nil>)",
        GoType::Bool => "bool",
        GoType::Int => "int64",
        GoType::Float => "float64",
        GoType::String => "string",
        GoType::Map => "map[string]interface {}",
        GoType::Slice => "[]interface {}",
    }
}

/// `sliceElementType`: all elements of all lists must have one type, which is not a list.
fn slice_element_type(lists: &[&[Value]]) -> Result<GoType> {
    let mut prev: Option<GoType> = None;
    for v in lists.iter().flat_map(|l| l.iter()) {
        let t = go_type(v);
        match prev {
            None => {
                if t == GoType::Slice {
                    return Err(PatchError::Unprocessable(
                        "lists of lists are not supported".into(),
                    ));
                }
                if t == GoType::Nil {
                    return Err(PatchError::Internal(
                        "runtime error: invalid memory address or nil pointer dereference".into(),
                    ));
                }
                prev = Some(t);
            }
            Some(p) if p != t => {
                return Err(PatchError::Internal(format!(
                    "list element types are not identical: {}",
                    clip(format!(
                        "[{}]",
                        lists
                            .iter()
                            .map(|l| go_fmt_list(l))
                            .collect::<Vec<_>>()
                            .join(" ")
                    ))
                )));
            }
            Some(_) => {}
        }
    }
    prev.ok_or_else(|| PatchError::Internal("no elements in any of the given slices".into()))
}

/// `mergeSlice`: merges two lists with the merge strategy.
fn merge_slice(
    original: Vec<Value>,
    patch: Vec<Value>,
    schema: Node,
    merge_key: &str,
    is_delete_list: bool,
) -> Result<Vec<Value>> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    let kind = slice_element_type(&[&original, &patch])?;

    if kind != GoType::Map {
        if is_delete_list {
            let remove: HashSet<VKey> = patch.iter().map(vkey).collect();
            return Ok(original
                .into_iter()
                .filter(|v| !remove.contains(&vkey(v)))
                .collect());
        }
        let mut seen: HashSet<VKey> = HashSet::new();
        let mut merged = Vec::with_capacity(original.len() + patch.len());
        for v in original.iter().chain(patch.iter()) {
            if seen.insert(vkey(v)) {
                merged.push(v.clone());
            }
        }
        let (patch_items, server_only) = partition_primitives_by_present_in_list(merged, &patch);
        return normalize_element_order(patch_items, server_only, &patch, &original, "", kind);
    }

    if merge_key.is_empty() {
        return Err(PatchError::Internal(format!(
            "cannot merge lists without merge key for {}",
            match schema {
                Node::Type(_) => "struct",
                _ => "interface",
            }
        )));
    }
    let (original, patch) = merge_slice_with_special_elements(original, patch, merge_key)?;
    // Only the merge keys of the live list matter for ordering.
    let server_order: Vec<Value> = original.iter().map(|v| key_stub(v, merge_key)).collect();
    let merged = merge_slice_without_special_elements(original, &patch, merge_key, schema)?;
    let (patch_items, server_only) = partition_maps_by_present_in_list(merged, &patch, merge_key)?;
    normalize_element_order(
        patch_items,
        server_only,
        &patch,
        &server_order,
        merge_key,
        kind,
    )
}

/// A map holding only the merge key of `v` (or `v` itself when it has none), standing in for a
/// live list element where only its merge key is looked at.
fn key_stub(v: &Value, merge_key: &str) -> Value {
    match v {
        Value::Object(m) => match m.get(merge_key) {
            Some(k) => {
                let mut stub = Map::new();
                stub.insert(merge_key.to_string(), k.clone());
                Value::Object(stub)
            }
            None => v.clone(),
        },
        other => other.clone(),
    }
}

/// `mergeSliceWithSpecialElements`: applies `$patch: delete` elements to the live list; a
/// `$patch: replace` element makes the patch's other elements the whole list.
fn merge_slice_with_special_elements(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut without_special = Vec::with_capacity(patch.len());
    let mut replace = false;
    for v in patch {
        let Value::Object(m) = &v else {
            return Err(err_bad_arg_type("map[string]interface {}", &v));
        };
        match m.get(DIRECTIVE_MARKER) {
            None => without_special.push(v),
            Some(directive) => match directive.as_str() {
                Some(DELETE_DIRECTIVE) => {
                    let Some(merge_value) = m.get(merge_key) else {
                        return Err(err_no_merge_key(m, merge_key));
                    };
                    if let Some((i, _)) = original.iter().enumerate().find(|(_, o)| !o.is_object())
                    {
                        return Err(PatchError::Internal(format!(
                            "value for key {i} is not a map"
                        )));
                    }
                    original.retain(|o| {
                        o.as_object().and_then(|o| o.get(merge_key)) != Some(merge_value)
                    });
                }
                Some(REPLACE_DIRECTIVE) => replace = true,
                Some(MERGE_DIRECTIVE) => {
                    return Err(PatchError::Internal(
                        "merging lists cannot yet be specified in the patch".into(),
                    ))
                }
                _ => return Err(err_bad_patch_type(directive, m)),
            },
        }
    }
    if replace {
        return Ok((strip_list(without_special), Vec::new()));
    }
    Ok((original, without_special))
}

/// `mergeSliceWithoutSpecialElements`: patch elements merge into the live element with the same
/// merge key, or are appended.
fn merge_slice_without_special_elements(
    mut original: Vec<Value>,
    patch: &[Value],
    merge_key: &str,
    schema: Node,
) -> Result<Vec<Value>> {
    let mut index: HashMap<VKey, usize> = HashMap::new();
    for (i, o) in original.iter().enumerate() {
        let Value::Object(m) = o else {
            return Err(PatchError::Internal(format!(
                "value for key {i} is not a map"
            )));
        };
        if let Some(k) = m.get(merge_key) {
            index.entry(vkey(k)).or_insert(i);
        }
    }
    for v in patch {
        let Value::Object(p) = v else {
            return Err(err_bad_arg_type("map[string]interface {}", v));
        };
        let Some(merge_value) = p.get(merge_key) else {
            return Err(err_no_merge_key(p, merge_key));
        };
        let key = vkey(merge_value);
        match index.get(&key).copied() {
            Some(i) => {
                if let Some(slot) = original.get_mut(i) {
                    let o = match std::mem::take(slot) {
                        Value::Object(o) => o,
                        _ => Map::new(),
                    };
                    *slot = Value::Object(merge_map(o, p.clone(), schema)?);
                }
            }
            None => {
                index.insert(key, original.len());
                let mut v = v.clone();
                strip_directive_keys(&mut v);
                original.push(v);
            }
        }
    }
    Ok(original)
}

/// `partitionPrimitivesByPresentInList`.
fn partition_primitives_by_present_in_list(
    merged: Vec<Value>,
    partition_by: &[Value],
) -> (Vec<Value>, Vec<Value>) {
    let present: HashSet<VKey> = partition_by.iter().map(vkey).collect();
    merged.into_iter().partition(|v| present.contains(&vkey(v)))
}

/// `partitionMapsByPresentInList`: splits by whether an element's merge key appears in
/// `partition_by`.
fn partition_maps_by_present_in_list(
    merged: Vec<Value>,
    partition_by: &[Value],
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut present: HashSet<VKey> = HashSet::new();
    for (i, v) in partition_by.iter().enumerate() {
        let Value::Object(m) = v else {
            return Err(PatchError::Internal(format!(
                "value for key {i} is not a map"
            )));
        };
        if let Some(k) = m.get(merge_key) {
            present.insert(vkey(k));
        }
    }
    let mut patch_items = Vec::new();
    let mut server_only = Vec::new();
    for v in merged {
        let key = match &v {
            Value::Object(m) => match m.get(merge_key) {
                Some(k) => vkey(k),
                None => return Err(err_no_merge_key(m, merge_key)),
            },
            other => return Err(err_bad_arg_type("map[string]interface {}", other)),
        };
        if present.contains(&key) {
            patch_items.push(v);
        } else {
            server_only.push(v);
        }
    }
    Ok((patch_items, server_only))
}

/// The value an element is identified by in ordering: its merge key for maps, itself otherwise
/// (`index` in upstream; a missing merge key is Go's nil, like JSON null).
fn order_key(v: &Value, merge_key: &str, kind: GoType) -> VKey {
    if kind == GoType::Map {
        match v.as_object().and_then(|m| m.get(merge_key)) {
            Some(k) => vkey(k),
            None => VKey::Null,
        }
    } else {
        vkey(v)
    }
}

fn first_positions(order: &[Value], merge_key: &str, kind: GoType) -> HashMap<VKey, usize> {
    let mut pos = HashMap::new();
    for (i, v) in order.iter().enumerate() {
        pos.entry(order_key(v, merge_key, kind)).or_insert(i);
    }
    pos
}

/// `normalizeElementOrder`: sorts the patch items by `patch_order` and the server-only items by
/// `server_order`, then interleaves them.
fn normalize_element_order(
    patch_items: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: &str,
    kind: GoType,
) -> Result<Vec<Value>> {
    let patch_items = normalize_slice_order(patch_items, patch_order, merge_key, kind)?;
    let server_only = normalize_slice_order(server_only, server_order, merge_key, kind)?;
    Ok(merge_sorted_slice(
        server_only,
        patch_items,
        server_order,
        merge_key,
        kind,
    ))
}

fn validate_merge_key_in_list(merge_key: &str, list: &[Value]) -> Result<()> {
    for item in list {
        let Value::Object(m) = item else {
            return Err(err_bad_arg_type("map[string]interface {}", item));
        };
        if !m.contains_key(merge_key) {
            return Err(err_no_merge_key(m, merge_key));
        }
    }
    Ok(())
}

/// `normalizeSliceOrder`: sorts `to_sort` by position in `order` (with upstream's comparator:
/// an element missing from `order` counts as smaller than anything, and Go's stable sort
/// algorithm, since with that comparator the outcome depends on the algorithm); elements
/// carrying `$patch: delete` go last.
fn normalize_slice_order(
    to_sort: Vec<Value>,
    order: &[Value],
    merge_key: &str,
    kind: GoType,
) -> Result<Vec<Value>> {
    let (to_sort, to_delete) = if kind == GoType::Map {
        validate_merge_key_in_list(merge_key, &to_sort)?;
        validate_merge_key_in_list(merge_key, order)?;
        to_sort.into_iter().partition::<Vec<Value>, _>(|v| {
            v.get(DIRECTIVE_MARKER).and_then(Value::as_str) != Some(DELETE_DIRECTIVE)
        })
    } else {
        (to_sort, Vec::new())
    };
    let pos = first_positions(order, merge_key, kind);
    let mut keyed: Vec<(Option<usize>, Value)> = to_sort
        .into_iter()
        .map(|v| (pos.get(&order_key(&v, merge_key, kind)).copied(), v))
        .collect();
    go_stable_sort(&mut keyed, |x, y| match (x.0, y.0) {
        (Some(a), Some(b)) => a < b,
        _ => true,
    });
    let mut out: Vec<Value> = keyed.into_iter().map(|(_, v)| v).collect();
    out.extend(to_delete);
    Ok(out)
}

/// Go's `sort.SliceStable` (insertion sort of blocks of 20, then SymMerge), step for step.
fn go_stable_sort<T>(data: &mut [T], less: impl Fn(&T, &T) -> bool) {
    let n = data.len();
    let mut block = 20;
    let (mut a, mut b) = (0, block);
    while b <= n {
        go_insertion_sort(data, a, b, &less);
        a = b;
        b += block;
    }
    go_insertion_sort(data, a, n, &less);
    while block < n {
        a = 0;
        b = 2 * block;
        while b <= n {
            go_sym_merge(data, a, a + block, b, &less);
            a = b;
            b += 2 * block;
        }
        let m = a + block;
        if m < n {
            go_sym_merge(data, a, m, n, &less);
        }
        block *= 2;
    }
}

fn go_less<T>(data: &[T], i: usize, j: usize, less: &impl Fn(&T, &T) -> bool) -> bool {
    match (data.get(i), data.get(j)) {
        (Some(x), Some(y)) => less(x, y),
        _ => false,
    }
}

fn go_swap<T>(data: &mut [T], i: usize, j: usize) {
    if i < data.len() && j < data.len() {
        data.swap(i, j);
    }
}

fn go_insertion_sort<T>(data: &mut [T], a: usize, b: usize, less: &impl Fn(&T, &T) -> bool) {
    for i in a + 1..b {
        let mut j = i;
        while j > a && go_less(data, j, j - 1, less) {
            go_swap(data, j, j - 1);
            j -= 1;
        }
    }
}

fn go_sym_merge<T>(data: &mut [T], a: usize, m: usize, b: usize, less: &impl Fn(&T, &T) -> bool) {
    if m - a == 1 {
        let (mut i, mut j) = (m, b);
        while i < j {
            let h = (i + j) / 2;
            if go_less(data, h, a, less) {
                i = h + 1;
            } else {
                j = h;
            }
        }
        for k in a..i.saturating_sub(1) {
            go_swap(data, k, k + 1);
        }
        return;
    }
    if b - m == 1 {
        let (mut i, mut j) = (a, m);
        while i < j {
            let h = (i + j) / 2;
            if !go_less(data, m, h, less) {
                i = h + 1;
            } else {
                j = h;
            }
        }
        let mut k = m;
        while k > i {
            go_swap(data, k, k - 1);
            k -= 1;
        }
        return;
    }
    let mid = (a + b) / 2;
    let n = mid + m;
    let (mut start, mut r) = if m > mid { (n - b, mid) } else { (a, m) };
    let p = n - 1;
    while start < r {
        let c = (start + r) / 2;
        if !go_less(data, p - c, c, less) {
            start = c + 1;
        } else {
            r = c;
        }
    }
    let end = n - start;
    if start < m && m < end {
        go_rotate(data, start, m, end);
    }
    if a < start && start < mid {
        go_sym_merge(data, a, start, mid, less);
    }
    if mid < end && end < b {
        go_sym_merge(data, mid, end, b, less);
    }
}

fn go_rotate<T>(data: &mut [T], a: usize, m: usize, b: usize) {
    let (mut i, mut j) = (m - a, b - m);
    while i != j {
        if i > j {
            go_swap_range(data, m - i, m, j);
            i -= j;
        } else {
            go_swap_range(data, m - i, m + j - i, i);
            j -= i;
        }
    }
    go_swap_range(data, m - i, m, i);
}

fn go_swap_range<T>(data: &mut [T], a: usize, b: usize, n: usize) {
    for i in 0..n {
        go_swap(data, a + i, b + i);
    }
}

/// `mergeSortedSlice`: inserts each of `left` (server-only items) into `right` (patch items)
/// before the first item that comes after it in the live list.
fn merge_sorted_slice(
    left: Vec<Value>,
    right: Vec<Value>,
    server_order: &[Value],
    merge_key: &str,
    kind: GoType,
) -> Vec<Value> {
    let pos = first_positions(server_order, merge_key, kind);
    let index = |v: &Value| pos.get(&order_key(v, merge_key, kind)).copied();
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => matches!((index(l), index(r)), (Some(li), Some(ri)) if li < ri),
        };
        let next = if take_left { left.next() } else { right.next() };
        if let Some(v) = next {
            out.push(v);
        }
    }
    out
}

/// A hashable stand-in for a JSON value with Go's `==` on decoded values: numbers of different
/// Go types (int64 / float64) differ, -0.0 equals 0.0.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
enum VKey {
    Null,
    Bool(bool),
    PosInt(u64),
    NegInt(i64),
    Float(u64),
    Str(String),
    Other(String),
}

fn vkey(v: &Value) -> VKey {
    match v {
        Value::Null => VKey::Null,
        Value::Bool(b) => VKey::Bool(*b),
        Value::Number(n) => number_key(n),
        Value::String(s) => VKey::Str(s.clone()),
        other => VKey::Other(other.to_string()),
    }
}

fn number_key(n: &Number) -> VKey {
    if let Some(u) = n.as_u64() {
        VKey::PosInt(u)
    } else if let Some(i) = n.as_i64() {
        VKey::NegInt(i)
    } else {
        let f = n.as_f64().unwrap_or(0.0);
        VKey::Float(if f == 0.0 { 0 } else { f.to_bits() })
    }
}

// ---------------------------------------------------------------------------------------------
// Error texts (as upstream's mergepatch package words them)
// ---------------------------------------------------------------------------------------------

fn err_no_merge_key(m: &Map<String, Value>, key: &str) -> PatchError {
    PatchError::Internal(format!(
        "map: {} does not contain declared merge key: {}",
        clip(go_fmt_map(m)),
        key
    ))
}

fn err_bad_arg_type(expected: &str, actual: &Value) -> PatchError {
    PatchError::Internal(format!(
        "expected a {}, but received a {}",
        expected,
        go_type_name(actual)
    ))
}

fn err_bad_patch_type(t: &Value, m: &Map<String, Value>) -> PatchError {
    PatchError::Internal(format!(
        "unknown patch type: {} in map: {}",
        clip(go_fmt(t)),
        clip(go_fmt_map(m))
    ))
}

/// Error texts quote patch content the way Go prints it; keep them readable for huge inputs.
const MAX_QUOTED: usize = 2048;

fn clip(mut s: String) -> String {
    if s.len() > MAX_QUOTED {
        let mut end = MAX_QUOTED;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str("...");
    }
    s
}

/// Go's `%v` of a decoded JSON value.
fn go_fmt(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Object(m) => go_fmt_map(m),
        Value::Array(a) => go_fmt_list(a),
    }
}

fn go_fmt_map(m: &Map<String, Value>) -> String {
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort();
    let parts: Vec<String> = keys
        .into_iter()
        .filter_map(|k| m.get(k).map(|v| format!("{}:{}", k, go_fmt(v))))
        .collect();
    format!("map[{}]", parts.join(" "))
}

fn go_fmt_list(a: &[Value]) -> String {
    format!("[{}]", a.iter().map(go_fmt).collect::<Vec<_>>().join(" "))
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Object(_) => "object",
        Value::Array(_) => "array",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema_meta::root_for_gvk;
    use serde_json::json;

    fn deployment() -> Option<TypeRef> {
        root_for_gvk("apps", "v1", "Deployment")
    }

    fn pod() -> Option<TypeRef> {
        root_for_gvk("", "v1", "Pod")
    }

    fn smp(doc: Value, patch: Value, root: Option<TypeRef>) -> Value {
        match apply_strategic_merge_patch(&doc, &patch, root) {
            Ok(v) => v,
            Err(e) => panic!("strategic merge patch failed: {e:?}"),
        }
    }

    fn smp_err(doc: Value, patch: Value, root: Option<TypeRef>) -> PatchError {
        match apply_strategic_merge_patch(&doc, &patch, root) {
            Ok(v) => panic!("expected an error, got {v}"),
            Err(e) => e,
        }
    }

    fn jp(doc: Value, patch: Value) -> std::result::Result<Value, PatchError> {
        apply_json_patch(&doc, patch.to_string().as_bytes())
    }

    // ---------------------------------------------------------------- captured upstream answers

    const UPSTREAM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/upstream");

    fn capture(name: &str) -> Value {
        let path = format!("{UPSTREAM}/{name}");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn request_body(c: &Value) -> Value {
        c["request"]["body"].clone()
    }

    fn response_body(c: &Value) -> Value {
        c["response"]["body"].clone()
    }

    /// Drops what varies from run to run or is the server's business, not the patch's.
    fn normalize(mut v: Value) -> Value {
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            for k in [
                "resourceVersion",
                "uid",
                "creationTimestamp",
                "managedFields",
                "generation",
            ] {
                m.shift_remove(k);
            }
        }
        v
    }

    /// The container defaults the apiserver adds after a patch (the captures show them).
    fn default_containers(mut v: Value) -> Value {
        if let Some(cs) = v
            .pointer_mut("/spec/template/spec/containers")
            .and_then(Value::as_array_mut)
        {
            for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                for (k, d) in [
                    ("resources", json!({})),
                    ("terminationMessagePath", json!("/dev/termination-log")),
                    ("terminationMessagePolicy", json!("File")),
                    ("imagePullPolicy", json!("IfNotPresent")),
                ] {
                    if !c.contains_key(k) {
                        c.insert(k.to_string(), d);
                    }
                }
            }
        }
        v
    }

    fn assert_same(actual: Value, expected: Value, what: &str) {
        let (a, e) = (normalize(actual), normalize(expected));
        assert!(a == e, "{what}:\n  got      {a}\n  expected {e}");
    }

    #[test]
    fn captured_patch_demo_sequence() {
        let created = response_body(&capture("patch/00-create.json"));

        // 01: containers merge by name, env merges by name (new items first), sidecar untouched.
        let c01 = capture("patch/01-strategic-merge-patch.json");
        let after01 = smp(created.clone(), request_body(&c01), deployment());
        assert_same(
            after01.clone(),
            response_body(&c01),
            "01 strategic merge patch",
        );
        let env = &after01["spec"]["template"]["spec"]["containers"][0]["env"];
        assert_eq!(
            env,
            &json!([{"name": "B", "value": "2"}, {"name": "A", "value": "1"}])
        );

        // 02: merge patch of labels and replicas.
        let c02 = capture("patch/02-merge-patch.json");
        let after02 = apply_merge_patch(&response_body(&c01), &request_body(&c02));
        assert_same(after02.clone(), response_body(&c02), "02 merge patch");
        assert_same(
            apply_merge_patch(&after01, &request_body(&c02)),
            response_body(&c02),
            "02 merge patch on our own 01 result",
        );

        // 03: a merge patch replaces lists wholesale (then the server defaults the container).
        let c03 = capture("patch/03-merge-patch-replaces-list.json");
        let after03 = apply_merge_patch(&response_body(&c02), &request_body(&c03));
        assert_same(
            default_containers(after03),
            response_body(&c03),
            "03 merge patch",
        );

        // 04: JSON patch: test, replace, add a map, append to a list.
        let c04 = capture("patch/04-json-patch.json");
        let body04 = request_body(&c04).to_string();
        let after04 = apply_json_patch(&response_body(&c03), body04.as_bytes()).unwrap();
        assert_same(
            default_containers(after04),
            response_body(&c04),
            "04 json patch",
        );

        // 05, 06: failing JSON patches answer 422 Invalid with the generic message.
        for name in [
            "patch/05-json-patch-test-fails.json",
            "patch/06-json-patch-missing-path.json",
        ] {
            let c = capture(name);
            let body = request_body(&c).to_string();
            let err = apply_json_patch(&response_body(&c04), body.as_bytes()).unwrap_err();
            let status = response_body(&c);
            assert_eq!(
                u64::from(err.code()),
                status["code"].as_u64().unwrap(),
                "{name}"
            );
            assert_eq!(c["response"]["status"], status["code"]);
            assert_eq!(err.reason(), status["reason"].as_str().unwrap(), "{name}");
            assert_eq!(
                err.status_message(),
                status["message"].as_str().unwrap(),
                "{name}"
            );
        }

        // 07: `$patch: delete` removes the sidecar2 container.
        let c07 = capture("patch/07-strategic-merge-patch-delete-directive.json");
        let after07 = smp(response_body(&c04), request_body(&c07), deployment());
        assert_same(after07, response_body(&c07), "07 delete directive");
    }

    #[test]
    fn captured_kubectl_apply_three_way_patch() {
        let before = response_body(&capture("patch/kubectl-apply-2-get.json"));
        let c = capture("patch/kubectl-apply-2-patch.json");
        let after = smp(before, request_body(&c), deployment());
        assert_same(after.clone(), response_body(&c), "kubectl apply patch");
        // $setElementOrder put A before B although B came from the patch.
        assert_eq!(
            after["spec"]["template"]["spec"]["containers"][0]["env"],
            json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])
        );
        // The created object itself is what the first apply posted (defaults aside).
        let post = capture("patch/kubectl-apply-1-post.json");
        assert_eq!(post["response"]["status"], json!(201));
    }

    #[test]
    fn captured_merge_patches_of_subresources() {
        let node = response_body(&capture("defaults/node.json"));
        let c = capture("defaults/node-status-patch.json");
        assert_same(
            apply_merge_patch(&node, &request_body(&c)),
            response_body(&c),
            "node status merge patch",
        );

        let scale = response_body(&capture("subresources/deployment-scale-get.json"));
        let c = capture("subresources/deployment-scale-patch-merge.json");
        let body = request_body(&c).to_string();
        assert_same(
            apply_merge_patch_body(&scale, body.as_bytes()).unwrap(),
            response_body(&c),
            "scale merge patch",
        );

        // The status strategy then resets spec from the stored object: only status is the
        // patch's result.
        let dep = response_body(&capture("subresources/deployment-status-get.json"));
        let c = capture("subresources/deployment-status-patch-merge.json");
        let patched = apply_merge_patch(&dep, &request_body(&c));
        assert_eq!(patched["status"], response_body(&c)["status"]);
        assert_eq!(patched["spec"]["replicas"], json!(9));
    }

    #[test]
    fn captured_strategic_patch_as_body() {
        let created = response_body(&capture("patch/00-create.json"));
        let c01 = capture("patch/01-strategic-merge-patch.json");
        let body = request_body(&c01).to_string();
        let after = apply_strategic_merge_patch_body(&created, body.as_bytes(), deployment());
        assert_same(after.unwrap(), response_body(&c01), "01 as body");
    }

    // ------------------------------------------------------------ strategic merge patch: lists

    fn pod_with(containers: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
               "spec": {"containers": containers}})
    }

    #[test]
    fn smp_containers_merge_by_name_and_new_ones_come_first() {
        let doc = pod_with(json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]));
        let out = smp(
            doc,
            json!({"spec": {"containers": [{"name": "c", "image": "c:1"}, {"name": "b", "image": "b:2"}]}}),
            pod(),
        );
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "c", "image": "c:1"}, {"name": "a", "image": "a:1"}, {"name": "b", "image": "b:2"}])
        );
    }

    #[test]
    fn smp_set_image_like_kubectl() {
        let doc = pod_with(
            json!([{"name": "app", "image": "nginx:1.25", "env": [{"name": "A", "value": "1"}]}]),
        );
        let out = smp(
            doc,
            json!({"spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}),
            pod(),
        );
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "app", "image": "nginx:1.27", "env": [{"name": "A", "value": "1"}]}])
        );
    }

    #[test]
    fn smp_rollout_restart_annotation() {
        let doc = json!({"spec": {"template": {"metadata": {"labels": {"app": "x"}}}}});
        let out = smp(
            doc,
            json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}}}}}),
            deployment(),
        );
        assert_eq!(
            out,
            json!({"spec": {"template": {"metadata": {"labels": {"app": "x"},
                "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}}}}})
        );
    }

    #[test]
    fn smp_ports_merge_by_container_port_and_mounts_by_path() {
        let doc = pod_with(
            json!([{"name": "a", "ports": [{"containerPort": 80, "name": "http"}],
            "volumeMounts": [{"name": "v", "mountPath": "/data"}]}]),
        );
        let out = smp(
            doc,
            json!({"spec": {"containers": [{"name": "a",
                "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443}],
                "volumeMounts": [{"name": "w", "mountPath": "/data", "readOnly": true}]}]}}),
            pod(),
        );
        assert_eq!(
            out["spec"]["containers"][0]["ports"],
            json!([{"containerPort": 80, "name": "http", "protocol": "TCP"}, {"containerPort": 443}])
        );
        assert_eq!(
            out["spec"]["containers"][0]["volumeMounts"],
            json!([{"name": "w", "mountPath": "/data", "readOnly": true}])
        );
    }

    #[test]
    fn smp_delete_directive_in_list() {
        let doc = pod_with(
            json!([{"name": "a", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}]),
        );
        // What kubectl apply sends when env B is dropped from the manifest.
        let out = smp(
            doc,
            json!({"spec": {"$setElementOrder/containers": [{"name": "a"}],
                "containers": [{"$setElementOrder/env": [{"name": "A"}], "name": "a",
                                "env": [{"$patch": "delete", "name": "B"}]}]}}),
            pod(),
        );
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "a", "env": [{"name": "A", "value": "1"}]}])
        );
    }

    #[test]
    fn smp_replace_directive_in_list() {
        let doc = pod_with(json!([{"name": "a", "image": "a"}, {"name": "b", "image": "b"}]));
        let out = smp(
            doc,
            json!({"spec": {"containers": [{"$patch": "replace"}, {"name": "c", "image": "c"}]}}),
            pod(),
        );
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "c", "image": "c"}])
        );
    }

    #[test]
    fn smp_merge_directive_in_list_is_an_error() {
        let doc = pod_with(json!([{"name": "a"}]));
        let err = smp_err(
            doc,
            json!({"spec": {"containers": [{"$patch": "merge", "name": "a"}]}}),
            pod(),
        );
        assert_eq!(err.code(), 500);
        assert_eq!(
            err.detail(),
            "merging lists cannot yet be specified in the patch"
        );
    }

    #[test]
    fn smp_unknown_directive_is_an_error() {
        let doc = pod_with(json!([{"name": "a"}]));
        let err = smp_err(
            doc,
            json!({"spec": {"containers": [{"$patch": "bogus", "name": "a"}]}}),
            pod(),
        );
        assert_eq!(err.code(), 500);
        assert_eq!(
            err.detail(),
            "unknown patch type: bogus in map: map[$patch:bogus name:a]"
        );
    }

    #[test]
    fn smp_element_without_merge_key_is_an_error() {
        let doc = pod_with(json!([{"name": "a"}]));
        let err = smp_err(
            doc,
            json!({"spec": {"containers": [{"image": "x"}]}}),
            pod(),
        );
        assert_eq!(err.code(), 500);
        assert_eq!(
            err.detail(),
            "map: map[image:x] does not contain declared merge key: name"
        );
        let err = smp_err(
            pod_with(json!([{"name": "a"}])),
            json!({"spec": {"containers": [{"$patch": "delete", "image": "x"}]}}),
            pod(),
        );
        assert_eq!(err.code(), 500);
    }

    #[test]
    fn smp_list_of_lists_is_unprocessable() {
        let doc = json!({"metadata": {"finalizers": [["a"]]}});
        let err = smp_err(doc, json!({"metadata": {"finalizers": [["b"]]}}), pod());
        assert_eq!(err.code(), 422);
        assert_eq!(err.detail(), "lists of lists are not supported");
    }

    #[test]
    fn smp_mixed_element_types_is_an_error() {
        let doc = json!({"metadata": {"finalizers": ["a"]}});
        let err = smp_err(doc, json!({"metadata": {"finalizers": [1]}}), pod());
        assert_eq!(err.code(), 500);
    }

    #[test]
    fn smp_lists_without_strategy_are_replaced() {
        let doc = json!({"spec": {"tolerations": [{"key": "a", "operator": "Exists"}],
                                  "containers": [{"name": "a", "command": ["sleep", "1"]}]}});
        let out = smp(
            doc,
            json!({"spec": {"tolerations": [{"key": "b", "operator": "Exists"}],
                            "containers": [{"name": "a", "command": ["true"]}]}}),
            pod(),
        );
        assert_eq!(
            out["spec"]["tolerations"],
            json!([{"key": "b", "operator": "Exists"}])
        );
        assert_eq!(out["spec"]["containers"][0]["command"], json!(["true"]));
    }

    #[test]
    fn smp_primitive_merge_list_is_a_set() {
        let doc = json!({"metadata": {"finalizers": ["a", "b"]}});
        let out = smp(doc, json!({"metadata": {"finalizers": ["c", "a"]}}), pod());
        assert_eq!(out["metadata"]["finalizers"], json!(["c", "a", "b"]));
    }

    #[test]
    fn smp_delete_from_primitive_list() {
        let doc = json!({"metadata": {"finalizers": ["a", "b", "c"]}});
        let out = smp(
            doc.clone(),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "x"]}}),
            pod(),
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["a", "c"]));
        // Together with additions and an order, as kubectl apply sends them.
        let out = smp(
            doc.clone(),
            json!({"metadata": {"$setElementOrder/finalizers": ["c", "d", "a"],
                                "$deleteFromPrimitiveList/finalizers": ["b"],
                                "finalizers": ["d"]}}),
            pod(),
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["c", "d", "a"]));
        // A malformed directive key is a bad request.
        let err = smp_err(
            doc,
            json!({"metadata": {"$deleteFromPrimitiveListfinalizers": ["b"]}}),
            pod(),
        );
        assert_eq!(
            err,
            PatchError::BadRequest("invalid patch format of primitive list".into())
        );
    }

    #[test]
    fn smp_set_element_order_reorders_without_patch_list() {
        let doc = pod_with(json!([{"name": "a"}, {"name": "b"}, {"name": "c"}]));
        let out = smp(
            doc,
            json!({"spec": {"$setElementOrder/containers": [{"name": "c"}, {"name": "a"}, {"name": "b"}]}}),
            pod(),
        );
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "c"}, {"name": "a"}, {"name": "b"}])
        );
    }

    #[test]
    fn smp_set_element_order_keeps_server_only_items_in_place() {
        let doc = pod_with(json!([{"name": "a"}, {"name": "s"}, {"name": "b"}]));
        let out = smp(
            doc,
            json!({"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}, {"name": "n"}],
                            "containers": [{"name": "n", "image": "n"}]}}),
            pod(),
        );
        // patch order b, a, n; the server-only s goes before the first item that followed it
        // in the live list (b).
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "s"}, {"name": "b"}, {"name": "a"}, {"name": "n", "image": "n"}])
        );
    }

    #[test]
    fn smp_set_element_order_with_server_only_items_and_deletions() {
        // kubectl apply dropping "old" and adding "new" while the live object also has an
        // element it never applied ("inj", say injected by a webhook). Upstream places the
        // server-only element by the live list as its Go slices were rewritten during the merge
        // (answer checked against apimachinery's code).
        let doc = pod_with(json!([{"name": "app"}, {"name": "inj"}, {"name": "old"}]));
        let out = smp(
            doc,
            json!({"spec": {"$setElementOrder/containers": [{"name": "app"}, {"name": "new"}],
                            "containers": [{"name": "new", "image": "n"}, {"name": "old", "$patch": "delete"}]}}),
            pod(),
        );
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "app"}, {"name": "inj"}, {"name": "new", "image": "n"}])
        );
        let doc =
            json!({"metadata": {"ownerReferences": [{"uid": "a"}, {"uid": "d", "name": "x"}]}});
        let out = smp(
            doc,
            json!({"metadata": {"$setElementOrder/ownerReferences": [{"uid": "a"}, {"uid": "a"}],
                                "ownerReferences": [{"uid": "a", "$patch": "delete"}, {"uid": "a", "kind": "K"},
                                                    {"uid": "a", "$patch": "delete"}]}}),
            pod(),
        );
        assert_eq!(
            out["metadata"]["ownerReferences"],
            json!([{"uid": "d", "name": "x"}, {"uid": "a", "kind": "K"}])
        );
    }

    #[test]
    fn smp_empty_set_element_order_sorts_like_go() {
        // Nothing is found in an empty order list; upstream's comparator then calls every
        // element smaller, and Go's insertion sort reverses the list.
        let out = smp(
            json!({"spec": {}}),
            json!({"spec": {"$setElementOrder/containers": [], "containers": [{"name": "b"}, {"name": "a"}]}}),
            pod(),
        );
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "a"}, {"name": "b"}])
        );
        let mut v: Vec<u32> = (0..50).collect();
        go_stable_sort(&mut v, |_, _| true);
        let mut w: Vec<u32> = (0..50).rev().collect();
        go_stable_sort(&mut w, |a, b| a < b);
        assert_eq!(w, (0..50).collect::<Vec<_>>());
        let mut x: Vec<(u32, u32)> = (0..100).map(|i| (i % 7, i)).collect();
        go_stable_sort(&mut x, |a, b| a.0 < b.0);
        let mut y = x.clone();
        y.sort_by_key(|p| p.0);
        assert_eq!(x, y);
    }

    #[test]
    fn smp_set_element_order_for_a_new_list() {
        let doc = pod_with(json!([{"name": "a"}]));
        let out = smp(
            doc,
            json!({"spec": {"$setElementOrder/initContainers": [{"name": "y"}, {"name": "x"}],
                            "initContainers": [{"name": "y", "image": "y"}, {"name": "z", "$patch": "delete"},
                                               {"name": "x", "image": "x"}]}}),
            pod(),
        );
        assert_eq!(
            out["spec"]["initContainers"],
            json!([{"name": "y", "image": "y"}, {"name": "x", "image": "x"}])
        );
    }

    #[test]
    fn smp_set_element_order_mismatch_is_an_error() {
        let doc = pod_with(json!([{"name": "a"}]));
        let err = smp_err(
            doc.clone(),
            json!({"spec": {"$setElementOrder/containers": [{"name": "a"}],
                            "containers": [{"name": "b"}]}}),
            pod(),
        );
        assert_eq!(err.code(), 500);
        let err = smp_err(
            doc.clone(),
            json!({"spec": {"$setElementOrderXcontainers": [{"name": "a"}]}}),
            pod(),
        );
        assert_eq!(err.code(), 400);
        let err = smp_err(
            doc,
            json!({"spec": {"$setElementOrder/containers": "a"}}),
            pod(),
        );
        assert_eq!(err.code(), 500);
    }

    #[test]
    fn smp_new_list_drops_directive_elements() {
        let doc = pod_with(json!([{"name": "a"}]));
        let out = smp(
            doc,
            json!({"spec": {"initContainers": [{"name": "i", "image": "x"}, {"name": "j", "$patch": "delete"}]}}),
            pod(),
        );
        assert_eq!(
            out["spec"]["initContainers"],
            json!([{"name": "i", "image": "x"}])
        );
    }

    #[test]
    fn smp_other_merge_keys() {
        let doc = json!({
            "metadata": {"ownerReferences": [{"uid": "1", "name": "a", "kind": "K", "apiVersion": "v1"}]},
            "spec": {"imagePullSecrets": [{"name": "s1"}], "containers": []},
            "status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "Initialized", "status": "True"}]}
        });
        let out = smp(
            doc,
            json!({"metadata": {"ownerReferences": [{"uid": "2", "name": "b", "kind": "K", "apiVersion": "v1"}]},
                   "spec": {"imagePullSecrets": [{"name": "s2"}]},
                   "status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
            pod(),
        );
        assert_eq!(
            out["metadata"]["ownerReferences"].as_array().unwrap().len(),
            2
        );
        assert_eq!(
            out["spec"]["imagePullSecrets"],
            json!([{"name": "s2"}, {"name": "s1"}])
        );
        assert_eq!(
            out["status"]["conditions"],
            json!([{"type": "Ready", "status": "True"}, {"type": "Initialized", "status": "True"}])
        );
        let svc = root_for_gvk("", "v1", "Service");
        let out = smp(
            json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]}}),
            json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}),
            svc,
        );
        assert_eq!(
            out["spec"]["ports"],
            json!([{"port": 80, "targetPort": 9090}, {"port": 443}])
        );
    }

    #[test]
    fn smp_merge_keys_compare_like_go() {
        // 80 and 80.0 are different Go values (int64 vs float64): no match, appended.
        let doc = pod_with(json!([{"name": "a", "ports": [{"containerPort": 80}]}]));
        let out = smp(
            doc,
            json!({"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 80.0, "name": "x"}]}]}}),
            pod(),
        );
        assert_eq!(
            out["spec"]["containers"][0]["ports"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
    }

    // ------------------------------------------------------------- strategic merge patch: maps

    #[test]
    fn smp_null_deletes_and_unmatched_null_is_ignored() {
        let doc = json!({"metadata": {"labels": {"a": "1", "b": "2"}}});
        let out = smp(
            doc,
            json!({"metadata": {"labels": {"a": null, "c": "3", "z": null}, "annotations": {"x": null, "y": "1"}}}),
            pod(),
        );
        assert_eq!(
            out,
            json!({"metadata": {"labels": {"b": "2", "c": "3"}, "annotations": {"y": "1"}}})
        );
    }

    #[test]
    fn smp_replace_and_delete_directives_on_maps() {
        let doc = json!({"metadata": {"labels": {"a": "1", "b": "2"}, "annotations": {"x": "1"}}});
        let out = smp(
            doc.clone(),
            json!({"metadata": {"labels": {"$patch": "replace", "c": "3"}}}),
            pod(),
        );
        assert_eq!(out["metadata"]["labels"], json!({"c": "3"}));
        let out = smp(
            doc.clone(),
            json!({"metadata": {"annotations": {"$patch": "delete"}}}),
            pod(),
        );
        assert_eq!(out["metadata"]["annotations"], json!({}));
        assert_eq!(out["metadata"]["labels"], json!({"a": "1", "b": "2"}));
        // `$patch: merge` is no directive upstream accepts on a map.
        let err = smp_err(
            doc.clone(),
            json!({"metadata": {"labels": {"$patch": "merge"}}}),
            pod(),
        );
        assert_eq!(err.code(), 500);
        // A `$patch` map for a member the object lacks is dropped, as upstream does.
        let out = smp(
            doc,
            json!({"spec": {"affinity": {"$patch": "replace", "nodeAffinity": {}}}}),
            pod(),
        );
        assert_eq!(out.get("spec"), Some(&json!({})));
    }

    #[test]
    fn smp_replace_strategy_on_a_map_field() {
        let pdb = root_for_gvk("policy", "v1", "PodDisruptionBudget");
        let doc = json!({"spec": {"selector": {"matchLabels": {"a": "1"}}, "minAvailable": 1}});
        let out = smp(
            doc.clone(),
            json!({"spec": {"selector": {"matchLabels": {"b": "2"}}}}),
            pdb,
        );
        assert_eq!(out["spec"]["selector"], json!({"matchLabels": {"b": "2"}}));
        // Deployment's selector has no such strategy: merged.
        let out = smp(
            doc,
            json!({"spec": {"selector": {"matchLabels": {"b": "2"}}}}),
            deployment(),
        );
        assert_eq!(
            out["spec"]["selector"],
            json!({"matchLabels": {"a": "1", "b": "2"}})
        );
    }

    #[test]
    fn smp_retain_keys_on_deployment_strategy() {
        let doc = json!({"spec": {"strategy": {"type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}}});
        // What kubectl apply sends when the manifest switches to Recreate.
        let out = smp(
            doc.clone(),
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": null, "type": "Recreate"}}}),
            deployment(),
        );
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
        // Without rollingUpdate: null the retainKeys list alone clears it.
        let out = smp(
            doc.clone(),
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
            deployment(),
        );
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
        // A patched member missing from the list is a bad request.
        let err = smp_err(
            doc.clone(),
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 1}}}}),
            deployment(),
        );
        assert_eq!(
            err,
            PatchError::BadRequest("invalid patch format of retainKeys".into())
        );
        let err = smp_err(
            doc,
            json!({"spec": {"strategy": {"$retainKeys": "type"}}}),
            deployment(),
        );
        assert_eq!(err.code(), 400);
    }

    #[test]
    fn smp_retain_keys_in_volume_elements() {
        let doc = json!({"spec": {"containers": [], "volumes": [
            {"name": "v", "configMap": {"name": "cm"}}, {"name": "w", "emptyDir": {}}]}});
        let out = smp(
            doc,
            json!({"spec": {"volumes": [{"$retainKeys": ["name", "secret"], "name": "v",
                                          "secret": {"secretName": "s"}}]}}),
            pod(),
        );
        assert_eq!(
            out["spec"]["volumes"],
            json!([{"name": "v", "secret": {"secretName": "s"}}, {"name": "w", "emptyDir": {}}])
        );
    }

    #[test]
    fn smp_maps_of_quantities_merge() {
        let doc = pod_with(json!([{"name": "a", "resources": {"limits": {"cpu": "1"}}}]));
        let out = smp(
            doc,
            json!({"spec": {"containers": [{"name": "a", "resources": {"limits": {"memory": "1Gi"}}}]}}),
            pod(),
        );
        assert_eq!(
            out["spec"]["containers"][0]["resources"],
            json!({"limits": {"cpu": "1", "memory": "1Gi"}})
        );
    }

    #[test]
    fn smp_unknown_fields_merge_like_a_merge_patch() {
        let doc = json!({"spec": {"x-unknown": {"a": 1, "l": [1, 2]}}});
        let out = smp(
            doc,
            json!({"spec": {"x-unknown": {"b": 2, "l": [3], "a": null}}}),
            pod(),
        );
        assert_eq!(out, json!({"spec": {"x-unknown": {"l": [3], "b": 2}}}));
    }

    #[test]
    fn smp_type_change_replaces() {
        let doc = json!({"spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}}}});
        let out = smp(
            doc,
            json!({"spec": {"replicas": "two", "selector": "x"}}),
            deployment(),
        );
        assert_eq!(out, json!({"spec": {"replicas": "two", "selector": "x"}}));
    }

    #[test]
    fn smp_directive_keys_never_reach_the_result() {
        let doc = json!({"spec": {"tolerations": [{"key": "a"}]}});
        let out = smp(
            doc,
            json!({"spec": {"tolerations": [{"key": "b", "$patch": "delete"}],
                            "containers": [{"name": "n", "$setElementOrder/env": [{"name": "E"}],
                                            "env": [{"name": "E"}]}]}}),
            pod(),
        );
        assert_eq!(
            out,
            json!({"spec": {"tolerations": [{"key": "b"}], "containers": [{"name": "n", "env": [{"name": "E"}]}]}})
        );
    }

    #[test]
    fn smp_whole_object_directives_and_edge_inputs() {
        let doc = json!({"metadata": {"name": "a"}, "spec": {}});
        assert_eq!(
            smp(doc.clone(), json!({"$patch": "delete"}), pod()),
            json!({})
        );
        assert_eq!(smp(doc.clone(), json!(null), pod()), doc);
        assert_eq!(smp_err(doc.clone(), json!([1]), pod()).code(), 400);
        assert_eq!(smp_err(doc.clone(), json!("x"), pod()).code(), 400);
        let err = apply_strategic_merge_patch_body(&doc, b"{not json", pod()).unwrap_err();
        assert_eq!(err, PatchError::BadRequest("invalid JSON patch".into()));
    }

    #[test]
    fn smp_without_schema_is_a_merge_patch() {
        let doc = json!({"spec": {"items": [{"name": "a", "v": 1}, {"name": "b"}], "keep": true}});
        let out = smp(
            doc,
            json!({"spec": {"items": [{"name": "a", "v": 2}], "keep": null}}),
            None,
        );
        assert_eq!(out, json!({"spec": {"items": [{"name": "a", "v": 2}]}}));
    }

    #[test]
    fn smp_refuses_deep_inputs_without_overflowing() {
        let wrap = |k: &str, v: Value| {
            let mut m = Map::new();
            m.insert(k.to_string(), v);
            Value::Object(m)
        };
        let mut deep = json!("leaf");
        for _ in 0..5000 {
            deep = wrap("a", deep);
        }
        let patch = wrap("spec", deep);
        let err = apply_strategic_merge_patch(&json!({}), &patch, pod()).unwrap_err();
        assert_eq!(err.code(), 400);
        let err = apply_strategic_merge_patch(&patch, &json!({}), pod()).unwrap_err();
        assert_eq!(err.code(), 400);
        // Take it apart without recursion so the test itself does not overflow on drop.
        dismantle(patch);
        dismantle(deep_array(100_000));
    }

    fn deep_array(n: usize) -> Value {
        let mut v = json!([]);
        for _ in 0..n {
            v = Value::Array(vec![v]);
        }
        v
    }

    fn dismantle(v: Value) {
        let mut stack = vec![v];
        while let Some(v) = stack.pop() {
            match v {
                Value::Array(a) => stack.extend(a),
                Value::Object(m) => stack.extend(m.into_iter().map(|(_, v)| v)),
                _ => {}
            }
        }
    }

    #[test]
    fn smp_large_lists_stay_fast() {
        let n = 20_000;
        let live: Vec<Value> = (0..n)
            .map(|i| json!({"name": format!("c{i}"), "image": "x"}))
            .collect();
        let patch: Vec<Value> = (0..n)
            .rev()
            .map(|i| json!({"name": format!("c{i}"), "image": "y"}))
            .collect();
        let order: Vec<Value> = (0..n)
            .rev()
            .map(|i| json!({"name": format!("c{i}")}))
            .collect();
        let start = std::time::Instant::now();
        let out = smp(
            pod_with(Value::Array(live)),
            json!({"spec": {"$setElementOrder/containers": order, "containers": patch}}),
            pod(),
        );
        let last = format!("c{}", n - 1);
        assert_eq!(
            out["spec"]["containers"][0],
            json!({"name": last, "image": "y"})
        );
        assert_eq!(out["spec"]["containers"].as_array().unwrap().len(), n);
        assert!(start.elapsed().as_secs() < 20);
        let fins: Vec<Value> = (0..n).map(|i| json!(format!("f{i}"))).collect();
        let out = smp(
            json!({"metadata": {"finalizers": fins.clone()}}),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": fins, "finalizers": ["z"]}}),
            pod(),
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["z"]));
    }

    // ------------------------------------------------------------------------ JSON merge patch

    #[test]
    fn merge_patch_rfc7386_examples() {
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (
                json!({"a": "b", "b": "c"}),
                json!({"a": null}),
                json!({"b": "c"}),
            ),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (
                json!({"a": [{"b": "c"}]}),
                json!({"a": [1]}),
                json!({"a": [1]}),
            ),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a": "b"}), json!(["c"]), json!(["c"])),
            (json!({"a": "foo"}), json!(null), json!(null)),
            (json!({"a": "foo"}), json!("bar"), json!("bar")),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
            (
                json!([1, 2]),
                json!({"a": "b", "c": null}),
                json!({"a": "b"}),
            ),
            (
                json!({}),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
        ];
        for (doc, patch, want) in cases {
            assert_eq!(apply_merge_patch(&doc, &patch), want, "{doc} + {patch}");
        }
    }

    #[test]
    fn merge_patch_prunes_nulls_like_evanphx() {
        // Inserted values lose their null members, also inside arrays…
        assert_eq!(
            apply_merge_patch(&json!({}), &json!({"a": [{"b": null, "c": 1}, null]})),
            json!({"a": [{"c": 1}, null]})
        );
        // …but an array replacing an object is taken as it is.
        assert_eq!(
            apply_merge_patch(&json!({"a": {"x": 1}}), &json!({"a": [{"b": null}]})),
            json!({"a": [{"b": null}]})
        );
        // A null member of the document is replaced like a missing one.
        assert_eq!(
            apply_merge_patch(&json!({"a": null}), &json!({"a": {"b": null, "c": 1}})),
            json!({"a": {"c": 1}})
        );
    }

    #[test]
    fn merge_patch_keeps_member_order() {
        let out = apply_merge_patch(
            &json!({"a": 1, "b": 2, "c": 3}),
            &json!({"b": null, "d": 4, "a": 5}),
        );
        let keys: Vec<&String> = out.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["a", "c", "d"]);
    }

    #[test]
    fn merge_patch_body_errors() {
        let doc = json!({"a": 1});
        for (body, code) in [
            (&b"null"[..], 400),
            (b"1", 400),
            (b"\"x\"", 400),
            (b"{", 400),
            (b"", 400),
        ] {
            assert_eq!(apply_merge_patch_body(&doc, body).unwrap_err().code(), code);
        }
        assert_eq!(apply_merge_patch_body(&doc, b"[1]").unwrap(), json!([1]));
        assert_eq!(
            apply_merge_patch_body(&doc, b"{\"b\":2}").unwrap(),
            json!({"a": 1, "b": 2})
        );
    }

    // ------------------------------------------------------------------------------ JSON patch

    #[test]
    fn json_patch_operations() {
        let doc = json!({"a": {"b": [1, 2, 3]}, "c": "x"});
        let out = jp(
            doc.clone(),
            json!([
                {"op": "add", "path": "/a/b/1", "value": 9},
                {"op": "add", "path": "/a/b/-", "value": 4},
                {"op": "remove", "path": "/a/b/0"},
                {"op": "replace", "path": "/c", "value": "y"},
                {"op": "copy", "from": "/c", "path": "/d"},
                {"op": "move", "from": "/d", "path": "/a/e"},
                {"op": "test", "path": "/a/e", "value": "y"},
                {"op": "add", "path": "/a/b/-1", "value": 7},
                {"op": "add", "path": "/f~1g", "value": {"h~0": true}}
            ]),
        )
        .unwrap();
        // -1 in an add means after the last element (evanphx counts from len+1).
        assert_eq!(
            out,
            json!({"a": {"b": [9, 2, 3, 4, 7], "e": "y"}, "c": "y", "f/g": {"h~0": true}})
        );
        let keys: Vec<&String> = out.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["a", "c", "f/g"]);
    }

    #[test]
    fn json_patch_upstream_quirks() {
        let doc = json!({"a": {"b": 1}, "l": [1, 2, 3], "n": null});
        // replace of a missing member of an existing object adds it (evanphx v4).
        assert_eq!(
            jp(
                doc.clone(),
                json!([{"op": "replace", "path": "/a/c", "value": 2}])
            )
            .unwrap()["a"],
            json!({"b": 1, "c": 2})
        );
        // negative indices count from the end.
        assert_eq!(
            jp(doc.clone(), json!([{"op": "remove", "path": "/l/-1"}])).unwrap()["l"],
            json!([1, 2])
        );
        assert_eq!(
            jp(
                doc.clone(),
                json!([{"op": "replace", "path": "/l/-3", "value": 0}])
            )
            .unwrap()["l"],
            json!([0, 2, 3])
        );
        // add without a value adds null; test of a missing member against null passes.
        let out = jp(
            doc.clone(),
            json!([{"op": "add", "path": "/z"}, {"op": "test", "path": "/y", "value": null},
                                        {"op": "test", "path": "/n"}]),
        )
        .unwrap();
        assert_eq!(out["z"], json!(null));
        // copy from a missing member copies null.
        assert_eq!(
            jp(
                doc.clone(),
                json!([{"op": "copy", "from": "/q", "path": "/w"}])
            )
            .unwrap()["w"],
            json!(null)
        );
        // replace of the whole document.
        assert_eq!(
            jp(
                doc.clone(),
                json!([{"op": "replace", "path": "", "value": {"x": 1}}])
            )
            .unwrap(),
            json!({"x": 1})
        );
        assert_eq!(
            jp(
                doc.clone(),
                json!([{"op": "test", "path": "", "value": doc.clone()}])
            )
            .unwrap(),
            doc
        );
        // a null patch is an empty patch.
        assert_eq!(apply_json_patch(&doc, b"null").unwrap(), doc);
    }

    #[test]
    fn json_patch_failures_are_unprocessable() {
        let doc = json!({"a": {"b": 1}, "l": [1, 2, 3]});
        let cases = [
            (json!([{"op": "test", "path": "/a/b", "value": 2}]), "testing value /a/b failed: test failed"),
            (json!([{"op": "test", "path": "/a/b"}]), "testing value /a/b failed: test failed"),
            (json!([{"op": "replace", "path": "/nosuch/x", "value": 1}]),
             "replace operation does not apply: doc is missing path: /nosuch/x: missing value"),
            (json!([{"op": "add", "path": "/nosuch/x", "value": 1}]),
             "add operation does not apply: doc is missing path: \"/nosuch/x\": missing value"),
            (json!([{"op": "remove", "path": "/a/c"}]),
             "error in remove for path: '/a/c': Unable to remove nonexistent key: c: missing value"),
            (json!([{"op": "remove", "path": "/l/3"}]),
             "error in remove for path: '/l/3': Unable to access invalid index: 3: invalid index referenced"),
            (json!([{"op": "add", "path": "/l/5", "value": 1}]),
             "error in add for path: '/l/5': Unable to access invalid index: 5: invalid index referenced"),
            (json!([{"op": "add", "path": "/l/x", "value": 1}]),
             "error in add for path: '/l/x': value was not a proper array index: 'x': strconv.Atoi: parsing \"x\": invalid syntax"),
            (json!([{"op": "replace", "path": "/l/99999999999", "value": 1}]),
             "replace operation does not apply: doc is missing key: /l/99999999999: missing value"),
            (json!([{"op": "add", "path": "/l/99999999999999999999999", "value": 1}]),
             "error in add for path: '/l/99999999999999999999999': value was not a proper array index: '99999999999999999999999': strconv.Atoi: parsing \"99999999999999999999999\": value out of range"),
            (json!([{"op": "add", "path": "/l/-9223372036854775808", "value": 1}]),
             "error in add for path: '/l/-9223372036854775808': Unable to access invalid index: -9223372036854775808: invalid index referenced"),
            (json!([{"op": "add", "path": "/a/b/c", "value": 1}]),
             "add operation does not apply: doc is missing path: \"/a/b/c\": missing value"),
            (json!([{"op": "add", "path": "", "value": 1}]),
             "add operation does not apply: doc is missing path: \"\": missing value"),
            (json!([{"op": "add", "value": 1}]), "add operation failed to decode path: missing value"),
            (json!([{"op": "move", "from": "/a", "path": "/a/x"}]),
             "move operation does not apply: doc is missing destination path: /a/x: missing value"),
            (json!([{"op": "frobnicate", "path": "/a"}]), "Unexpected kind: frobnicate"),
            (json!([null]), "Unexpected kind: unknown"),
            (json!([{"op": "replace", "path": "", "value": 1}]), "replace operation value must be object or array"),
        ];
        for (patch, detail) in cases {
            let err = jp(doc.clone(), patch.clone()).unwrap_err();
            assert_eq!(
                err,
                PatchError::Unprocessable(detail.to_string()),
                "{patch}"
            );
            assert_eq!(err.code(), 422);
        }
    }

    #[test]
    fn json_patch_malformed_bodies_are_bad_requests() {
        let doc = json!({});
        for body in [&b"{"[..], b"", b"{\"op\":\"add\"}", b"[1]", b"\"x\""] {
            let err = apply_json_patch(&doc, body).unwrap_err();
            assert_eq!(err.code(), 400, "{}", String::from_utf8_lossy(body));
        }
        assert_eq!(
            apply_json_patch(&doc, b"{}").unwrap_err().detail(),
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
        );
    }

    #[test]
    fn json_patch_limits() {
        let doc = json!({"a": 1});
        let ops: Vec<Value> = (0..10_001)
            .map(|_| json!({"op": "test", "path": "/a", "value": 1}))
            .collect();
        let err = jp(doc.clone(), Value::Array(ops)).unwrap_err();
        assert_eq!(err.code(), 413);
        assert_eq!(
            err.status_message(),
            "Request entity too large: The allowed maximum operations in a JSON patch is 10000, got 10001"
        );
        let ops: Vec<Value> = (0..10_000)
            .map(|_| json!({"op": "test", "path": "/a", "value": 1}))
            .collect();
        assert!(jp(doc, Value::Array(ops)).is_ok());

        // Doubling a document with copies stops at 3 MiB.
        let mut ops = vec![json!({"op": "add", "path": "/x", "value": "0123456789".repeat(1000)})];
        for i in 0..400 {
            ops.push(json!({"op": "copy", "from": "/x", "path": format!("/y{i}")}));
        }
        let err = jp(json!({}), Value::Array(ops)).unwrap_err();
        assert!(
            err.detail().starts_with("Unable to complete the copy"),
            "{err}"
        );

        // Nesting stays parseable: copying a subtree into itself until too deep fails cleanly.
        let mut ops = vec![json!({"op": "add", "path": "/a", "value": {}})];
        let mut path = "/a".to_string();
        for _ in 0..200 {
            ops.push(json!({"op": "copy", "from": "/a", "path": format!("{path}/a")}));
            path.push_str("/a");
        }
        let err = jp(json!({}), Value::Array(ops)).unwrap_err();
        assert_eq!(err.code(), 422);
        assert!(err.detail().contains("nest deeper"), "{err}");

        let mut ops = vec![
            json!({"op": "add", "path": "/a", "value": {}}),
            json!({"op": "add", "path": "/b", "value": {}}),
        ];
        let mut path = String::new();
        for _ in 0..126 {
            path.push_str("/a");
            ops.push(json!({"op": "add", "path": format!("{path}/a"), "value": {}}));
        }
        // moving the chain under itself … is refused when too deep
        let err = jp(json!({}), Value::Array(ops.clone())).unwrap_err();
        assert!(err.detail().contains("nest deeper"), "{err}");
        ops.truncate(120);
        ops.push(
            json!({"op": "move", "from": "/a", "path": format!("/b/{}", "x/".repeat(0) + "a")}),
        );
        let ok = jp(json!({}), Value::Array(ops.clone())).unwrap();
        assert!(!exceeds_depth(&ok, MAX_DEPTH));
    }

    #[test]
    fn serde_json_parses_exactly_max_depth() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(serde_json::from_str::<Value>(&nested(MAX_DEPTH)).is_ok());
        assert!(serde_json::from_str::<Value>(&nested(MAX_DEPTH + 1)).is_err());
        let v: Value = serde_json::from_str(&nested(MAX_DEPTH)).unwrap();
        assert!(!exceeds_depth(&v, MAX_DEPTH));
        assert!(exceeds_depth(&v, MAX_DEPTH - 1));
    }

    #[test]
    fn value_equality_ignores_member_order_but_not_list_order() {
        assert_eq!(json!({"a": 1, "b": 2}), json!({"b": 2, "a": 1}));
        assert_ne!(json!([1, 2]), json!([2, 1]));
    }

    #[test]
    fn error_texts_stay_short() {
        let big: Vec<Value> = (0..10_000)
            .map(|i| json!({"name": format!("c{i}")}))
            .collect();
        let err = smp_err(
            pod_with(json!([{"name": "a"}])),
            json!({"spec": {"$setElementOrder/containers": [{"name": "a"}], "containers": big}}),
            pod(),
        );
        assert_eq!(err.code(), 500);
        assert!(
            err.detail().len() < 3 * MAX_QUOTED,
            "{}",
            err.detail().len()
        );
        assert!(err
            .detail()
            .starts_with("The order in patch list:\n[map[name:c0] map[name:c1]"));
    }

    #[test]
    fn error_statuses() {
        let e = PatchError::Internal("boom".into());
        assert_eq!(
            (e.code(), e.reason(), e.status_message()),
            (500, "", "boom".to_string())
        );
        let e = PatchError::BadRequest("bad".into());
        assert_eq!(
            (e.code(), e.reason(), e.status_message()),
            (400, "BadRequest", "bad".to_string())
        );
        let e = PatchError::Unprocessable("x".into());
        assert_eq!(e.reason(), "Invalid");
        assert_eq!(e.detail(), "x");
    }
}
