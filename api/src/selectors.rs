//! Label selectors and field selectors for list and watch, parsed and applied exactly as
//! Kubernetes v1.36 does it:
//!
//! * label selectors: `k8s.io/apimachinery/pkg/labels` (the lexer/parser of `selector.go`,
//!   `NewRequirement` and its key/value validation from `pkg/api/validate/content`), plus
//!   `metav1.LabelSelectorAsSelector` for the `metav1.LabelSelector` JSON object;
//! * field selectors: `k8s.io/apimachinery/pkg/fields` (term splitting, escaping, sorting) and the
//!   per-kind field label conversion functions the kube-apiserver registers
//!   (`AddFieldLabelConversionFunc`, `runtime.DefaultMetaV1FieldSelectorConversion`) together with
//!   the per-kind `GetAttrs`/`ToSelectableFields` that decide what a field's value is.
//!
//! Every error text is upstream's, byte for byte; the API server wraps a [`SelectorError`] in a
//! `400 BadRequest` Status whose `message` is the error's text.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};

use serde_json::{Map, Value};

/// A selector that could not be parsed, converted or validated. The text is upstream's message;
/// the API server answers it as a `400 BadRequest` Status.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[error("{0}")]
pub struct SelectorError(pub String);

// ---------------------------------------------------------------------------------------------
// Go formatting helpers (what fmt's %q and encoding/json print)
// ---------------------------------------------------------------------------------------------

/// Go's `unicode.IsPrint`, close enough: letters, marks, numbers, punctuation, symbols and the
/// ASCII space are printable; controls, format characters, non-ASCII spaces, surrogates, private
/// use and non-characters are not. (Unassigned code points are treated as printable.)
fn go_is_print(c: char) -> bool {
    let u = c as u32;
    if u < 0x80 {
        return (0x20..0x7f).contains(&u);
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(
        u,
        0xAD | 0x600..=0x605
            | 0x61C
            | 0x6DD
            | 0x70F
            | 0x890..=0x891
            | 0x8E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xFDD0..=0xFDEF
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0xFFFE..=0xFFFF
            | 0xE000..=0xF8FF
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
            | 0xF0000..=0x10FFFF
    )
}

/// Go's `strconv.Quote`, which is what `fmt`'s `%q` prints for a string.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{07}' => out.push_str("\\a"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{0b}' => out.push_str("\\v"),
            c if go_is_print(c) => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// A string as Go's `encoding/json` writes it (HTML characters escaped, as `json.Marshal` does).
fn go_json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 || c == '<' || c == '>' || c == '&' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ---------------------------------------------------------------------------------------------
// Label key and value validation (k8s.io/apimachinery/pkg/api/validate/content)
// ---------------------------------------------------------------------------------------------

const LABEL_KEY_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_KEY_ERR_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_KEY_MAX_LENGTH: usize = 63;
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_MAX_LENGTH: usize = 63;
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_MAX_LENGTH: usize = 253;
const EMPTY_ERROR: &str = "must be non-empty";

/// `content.RegexError`.
fn regex_error(msg: &str, re: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{re}')");
    }
    let mut out = format!("{msg} (e.g. ");
    for (i, example) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push('\'');
        out.push_str(example);
        out.push_str("', ");
    }
    out.push_str("regex used for validation is '");
    out.push_str(re);
    out.push_str("')");
    out
}

/// `content.MaxLenError`.
fn max_len_error(length: usize) -> String {
    format!("must be no more than {length} bytes")
}

/// Matches `^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`.
fn is_label_key_name(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// Matches `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`.
fn is_dns1123_label_format(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            alnum(first) && alnum(last) && b.iter().all(|c| alnum(c) || *c == b'-')
        }
        _ => false,
    }
}

/// `content.IsDNS1123Subdomain`.
fn dns1123_subdomain_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    if !value.split('.').all(is_dns1123_label_format) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_ERR_MSG,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// Upstream's `content.IsLabelKey` (a.k.a. `validation.IsQualifiedName`): the reasons `value` is
/// not a valid label key, empty when it is one.
pub fn label_key_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push(format!("prefix part {EMPTY_ERROR}"));
            } else {
                for msg in dns1123_subdomain_errors(prefix) {
                    errs.push(format!("prefix part {msg}"));
                }
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a valid label key {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(LABEL_KEY_ERR_MSG, LABEL_KEY_FMT, &["MyName", "my.name", "123-abc"])
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push(format!("name part {EMPTY_ERROR}"));
    } else if name.len() > LABEL_KEY_MAX_LENGTH {
        errs.push(format!("name part {}", max_len_error(LABEL_KEY_MAX_LENGTH)));
    }
    if !is_label_key_name(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                LABEL_KEY_ERR_MSG,
                LABEL_KEY_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// Upstream's `content.IsLabelValue` (a.k.a. `validation.IsValidLabelValue`): the reasons `value`
/// is not a valid label value, empty when it is one.
pub fn label_value_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > LABEL_VALUE_MAX_LENGTH {
        errs.push(max_len_error(LABEL_VALUE_MAX_LENGTH));
    }
    if !(value.is_empty() || is_label_key_name(value)) {
        errs.push(regex_error(
            LABEL_VALUE_ERR_MSG,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// The bad value of a `field.Invalid` error, rendered as upstream's `field.Error.ErrorBody` does:
/// strings with `%q`, anything else through `json.Marshal`.
enum BadValue<'a> {
    Str(&'a str),
    /// A `[]string`; an empty one is always a nil slice where these errors arise, so `null`.
    List(&'a [String]),
}

/// `field.Invalid(path, value, detail).Error()`.
fn invalid(field: &str, bad: BadValue<'_>, detail: &str) -> String {
    let value = match bad {
        BadValue::Str(s) => go_quote(s),
        BadValue::List([]) => "null".to_string(),
        BadValue::List(list) => {
            let items: Vec<String> = list.iter().map(|s| go_json_string(s)).collect();
            format!("[{}]", items.join(","))
        }
    };
    if detail.is_empty() {
        format!("{field}: Invalid value: {value}")
    } else {
        format!("{field}: Invalid value: {value}: {detail}")
    }
}

/// `field.ErrorList.ToAggregate().Error()`: duplicates dropped, one message alone, several as
/// `[a, b]`.
fn aggregate(errs: Vec<String>) -> Option<String> {
    let mut seen = BTreeSet::new();
    let mut unique = Vec::new();
    for e in errs {
        if seen.insert(e.clone()) {
            unique.push(e);
        }
    }
    match unique.len() {
        0 => None,
        1 => unique.pop(),
        _ => Some(format!("[{}]", unique.join(", "))),
    }
}

// ---------------------------------------------------------------------------------------------
// Label selector requirements
// ---------------------------------------------------------------------------------------------

/// A label selector operator (`k8s.io/apimachinery/pkg/selection`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `!key`
    DoesNotExist,
    /// `key=value`
    Equals,
    /// `key==value`
    DoubleEquals,
    /// `key in (a,b)`
    In,
    /// `key!=value`
    NotEquals,
    /// `key notin (a,b)`
    NotIn,
    /// `key`
    Exists,
    /// `key>3`
    GreaterThan,
    /// `key<3`
    LessThan,
}

impl Operator {
    /// Upstream's spelling of the operator (`selection.Operator`).
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::DoesNotExist => "!",
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::In => "in",
            Operator::NotEquals => "!=",
            Operator::NotIn => "notin",
            Operator::Exists => "exists",
            Operator::GreaterThan => "gt",
            Operator::LessThan => "lt",
        }
    }
}

/// Something labels can be looked up in.
trait LabelLookup {
    fn lookup(&self, key: &str) -> Option<&str>;
}

impl LabelLookup for Map<String, Value> {
    fn lookup(&self, key: &str) -> Option<&str> {
        // Labels are strings; anything else is not a label.
        self.get(key).and_then(Value::as_str)
    }
}

impl LabelLookup for BTreeMap<String, String> {
    fn lookup(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

struct NoLabels;

impl LabelLookup for NoLabels {
    fn lookup(&self, _key: &str) -> Option<&str> {
        None
    }
}

/// One requirement of a label selector: a key, an operator and values (`labels.Requirement`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

impl Requirement {
    /// `labels.NewRequirement`: validates the key, the number of values for the operator, the
    /// integers of `gt`/`lt` and every value, with upstream's messages.
    pub fn new(key: &str, operator: Operator, values: Vec<String>) -> Result<Self, SelectorError> {
        let mut errs = Vec::new();
        let key_errs = label_key_errors(key);
        if !key_errs.is_empty() {
            errs.push(invalid("key", BadValue::Str(key), &key_errs.join("; ")));
        }
        match operator {
            Operator::In | Operator::NotIn => {
                if values.is_empty() {
                    errs.push(invalid(
                        "values",
                        BadValue::List(&values),
                        "for 'in', 'notin' operators, values set can't be empty",
                    ));
                }
            }
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals => {
                if values.len() != 1 {
                    errs.push(invalid(
                        "values",
                        BadValue::List(&values),
                        "exact-match compatibility requires one single value",
                    ));
                }
            }
            Operator::Exists | Operator::DoesNotExist => {
                if !values.is_empty() {
                    errs.push(invalid(
                        "values",
                        BadValue::List(&values),
                        "values set must be empty for exists and does not exist",
                    ));
                }
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    errs.push(invalid(
                        "values",
                        BadValue::List(&values),
                        "for 'Gt', 'Lt' operators, exactly one value is required",
                    ));
                }
                for (i, v) in values.iter().enumerate() {
                    if v.parse::<i64>().is_err() {
                        errs.push(invalid(
                            &format!("values[{i}]"),
                            BadValue::Str(v),
                            "for 'Gt', 'Lt' operators, the value must be an integer",
                        ));
                    }
                }
            }
        }
        for (i, v) in values.iter().enumerate() {
            let value_errs = label_value_errors(v);
            if !value_errs.is_empty() {
                errs.push(invalid(
                    &format!("values[{i}][{key}]"),
                    BadValue::Str(v),
                    &value_errs.join("; "),
                ));
            }
        }
        match aggregate(errs) {
            Some(msg) => Err(SelectorError(msg)),
            None => Ok(Requirement {
                key: key.to_string(),
                operator,
                values,
            }),
        }
    }

    /// The label key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The operator.
    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The values, in the order given (sorted and without duplicates when parsed from a string).
    pub fn values(&self) -> &[String] {
        &self.values
    }

    fn has_value(&self, value: &str) -> bool {
        self.values.iter().any(|v| v == value)
    }

    fn matches_lookup<L: LabelLookup + ?Sized>(&self, labels: &L) -> bool {
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => {
                match labels.lookup(&self.key) {
                    Some(v) => self.has_value(v),
                    None => false,
                }
            }
            Operator::NotIn | Operator::NotEquals => match labels.lookup(&self.key) {
                Some(v) => !self.has_value(v),
                None => true,
            },
            Operator::Exists => labels.lookup(&self.key).is_some(),
            Operator::DoesNotExist => labels.lookup(&self.key).is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let Some(label_value) = labels.lookup(&self.key) else {
                    return false;
                };
                let Ok(label_value) = label_value.parse::<i64>() else {
                    return false;
                };
                let [wanted] = self.values.as_slice() else {
                    return false;
                };
                let Ok(wanted) = wanted.parse::<i64>() else {
                    return false;
                };
                (self.operator == Operator::GreaterThan && label_value > wanted)
                    || (self.operator == Operator::LessThan && label_value < wanted)
            }
        }
    }

    /// Whether the requirement holds for a labels map (JSON object of strings).
    pub fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        match labels {
            Some(map) => self.matches_lookup(map),
            None => self.matches_lookup(&NoLabels),
        }
    }
}

impl fmt::Display for Requirement {
    /// `Requirement.String()`: `!key`, `key`, `key=v`, `key in (a,b)` (values sorted), …
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let op = match self.operator {
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => " in ",
            Operator::NotIn => " notin ",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
        };
        f.write_str(op)?;
        let set = matches!(self.operator, Operator::In | Operator::NotIn);
        if set {
            f.write_str("(")?;
        }
        if let [only] = self.values.as_slice() {
            f.write_str(only)?;
        } else {
            let mut sorted: Vec<&str> = self.values.iter().map(String::as_str).collect();
            sorted.sort_unstable();
            f.write_str(&sorted.join(","))?;
        }
        if set {
            f.write_str(")")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The label selector lexer and parser (labels/selector.go)
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Error,
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

/// `string2token`.
fn literal_token(s: &[u8]) -> Option<Token> {
    Some(match s {
        b")" => Token::ClosedPar,
        b"," => Token::Comma,
        b"!" => Token::DoesNotExist,
        b"==" => Token::DoubleEquals,
        b"=" => Token::Equals,
        b">" => Token::GreaterThan,
        b"in" => Token::In,
        b"<" => Token::LessThan,
        b"!=" => Token::NotEquals,
        b"notin" => Token::NotIn,
        b"(" => Token::OpenPar,
        _ => return None,
    })
}

fn is_selector_whitespace(ch: u8) -> bool {
    matches!(ch, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special_symbol(ch: u8) -> bool {
    matches!(ch, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

fn bytes_to_string(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// Upstream's byte-oriented lexer. Like upstream, a NUL byte reads as the end of the input.
struct Lexer<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Lexer<'_> {
    fn read(&mut self) -> u8 {
        match self.s.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                b
            }
            None => 0,
        }
    }

    fn unread(&mut self) {
        self.pos = self.pos.saturating_sub(1);
    }

    fn scan_id_or_keyword(&mut self) -> (Token, String) {
        let mut buffer = Vec::new();
        loop {
            let ch = self.read();
            if ch == 0 {
                break;
            }
            if is_special_symbol(ch) || is_selector_whitespace(ch) {
                self.unread();
                break;
            }
            buffer.push(ch);
        }
        let token = literal_token(&buffer).unwrap_or(Token::Identifier);
        (token, bytes_to_string(buffer))
    }

    fn scan_special_symbol(&mut self) -> (Token, String) {
        let mut last: Option<(Token, usize)> = None;
        let mut buffer = Vec::new();
        loop {
            let ch = self.read();
            if ch == 0 {
                break;
            }
            if is_special_symbol(ch) {
                buffer.push(ch);
                if let Some(token) = literal_token(&buffer) {
                    last = Some((token, buffer.len()));
                } else if last.is_some() {
                    self.unread();
                    break;
                }
            } else {
                self.unread();
                break;
            }
        }
        match last {
            Some((token, len)) => {
                buffer.truncate(len);
                (token, bytes_to_string(buffer))
            }
            None => (
                Token::Error,
                format!(
                    "error expected: keyword found '{}'",
                    bytes_to_string(buffer)
                ),
            ),
        }
    }

    fn lex(&mut self) -> (Token, String) {
        let mut ch = self.read();
        while is_selector_whitespace(ch) {
            ch = self.read();
        }
        if ch == 0 {
            return (Token::EndOfString, String::new());
        }
        self.unread();
        if is_special_symbol(ch) {
            self.scan_special_symbol()
        } else {
            self.scan_id_or_keyword()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ParserContext {
    KeyAndOperator,
    Values,
}

struct Parser {
    items: Vec<(Token, String)>,
    position: usize,
}

impl Parser {
    fn new(selector: &str) -> Self {
        let mut lexer = Lexer {
            s: selector.as_bytes(),
            pos: 0,
        };
        let mut items = Vec::new();
        loop {
            let (token, literal) = lexer.lex();
            let end = token == Token::EndOfString;
            items.push((token, literal));
            if end {
                break;
            }
        }
        Parser { items, position: 0 }
    }

    fn item(&self, index: usize, context: ParserContext) -> (Token, String) {
        let (token, literal) = match self.items.get(index) {
            Some((t, l)) => (*t, l.clone()),
            None => (Token::EndOfString, String::new()),
        };
        let token = match (context, token) {
            (ParserContext::Values, Token::In | Token::NotIn) => Token::Identifier,
            (_, t) => t,
        };
        (token, literal)
    }

    fn lookahead(&self, context: ParserContext) -> (Token, String) {
        self.item(self.position, context)
    }

    fn consume(&mut self, context: ParserContext) -> (Token, String) {
        let item = self.item(self.position, context);
        self.position += 1;
        item
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, SelectorError> {
        let mut requirements = Vec::new();
        loop {
            let (token, literal) = self.lookahead(ParserContext::Values);
            match token {
                Token::Identifier | Token::DoesNotExist => {
                    let requirement = self
                        .parse_requirement()
                        .map_err(|e| SelectorError(format!("unable to parse requirement: {e}")))?;
                    requirements.push(requirement);
                    let (t, l) = self.consume(ParserContext::Values);
                    match t {
                        Token::EndOfString => return Ok(requirements),
                        Token::Comma => {
                            let (t2, l2) = self.lookahead(ParserContext::Values);
                            if t2 != Token::Identifier && t2 != Token::DoesNotExist {
                                return Err(SelectorError(format!(
                                    "found '{l2}', expected: identifier after ','"
                                )));
                            }
                        }
                        _ => {
                            return Err(SelectorError(format!(
                                "found '{l}', expected: ',' or 'end of string'"
                            )))
                        }
                    }
                }
                Token::EndOfString => return Ok(requirements),
                _ => {
                    return Err(SelectorError(format!(
                        "found '{literal}', expected: !, identifier, or 'end of string'"
                    )))
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, String> {
        let (key, operator) = self.parse_key_and_infer_operator()?;
        if let Some(op @ (Operator::Exists | Operator::DoesNotExist)) = operator {
            return Requirement::new(&key, op, Vec::new()).map_err(|e| e.0);
        }
        let operator = self.parse_operator()?;
        let values = match operator {
            Operator::In | Operator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        Requirement::new(&key, operator, values.into_iter().collect()).map_err(|e| e.0)
    }

    fn parse_key_and_infer_operator(&mut self) -> Result<(String, Option<Operator>), String> {
        let mut operator = None;
        let (mut token, mut literal) = self.consume(ParserContext::Values);
        if token == Token::DoesNotExist {
            operator = Some(Operator::DoesNotExist);
            (token, literal) = self.consume(ParserContext::Values);
        }
        if token != Token::Identifier {
            return Err(format!("found '{literal}', expected: identifier"));
        }
        let key_errs = label_key_errors(&literal);
        if !key_errs.is_empty() {
            // The parser validates the key with its own (nil) path.
            return Err(invalid(
                "<nil>",
                BadValue::Str(&literal),
                &key_errs.join("; "),
            ));
        }
        let (next, _) = self.lookahead(ParserContext::Values);
        if (next == Token::EndOfString || next == Token::Comma)
            && operator != Some(Operator::DoesNotExist)
        {
            operator = Some(Operator::Exists);
        }
        Ok((literal, operator))
    }

    fn parse_operator(&mut self) -> Result<Operator, String> {
        let (token, literal) = self.consume(ParserContext::KeyAndOperator);
        Ok(match token {
            Token::In => Operator::In,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            Token::NotIn => Operator::NotIn,
            Token::NotEquals => Operator::NotEquals,
            _ => {
                return Err(format!(
                    "found '{literal}', expected: in, notin, =, ==, !=, gt, lt"
                ))
            }
        })
    }

    fn parse_values(&mut self) -> Result<BTreeSet<String>, String> {
        let (token, literal) = self.consume(ParserContext::Values);
        if token != Token::OpenPar {
            return Err(format!("found '{literal}' expected: '('"));
        }
        let (token, literal) = self.lookahead(ParserContext::Values);
        match token {
            Token::Identifier | Token::Comma => {
                let set = self.parse_identifiers_list()?;
                let (closing, _) = self.consume(ParserContext::Values);
                if closing != Token::ClosedPar {
                    return Err(format!("found '{literal}', expected: ')'"));
                }
                Ok(set)
            }
            Token::ClosedPar => {
                self.consume(ParserContext::Values);
                Ok(BTreeSet::from([String::new()]))
            }
            _ => Err(format!(
                "found '{literal}', expected: ',', ')' or identifier"
            )),
        }
    }

    fn parse_identifiers_list(&mut self) -> Result<BTreeSet<String>, String> {
        let mut set = BTreeSet::new();
        loop {
            let (token, literal) = self.consume(ParserContext::Values);
            match token {
                Token::Identifier => {
                    set.insert(literal);
                    let (t2, l2) = self.lookahead(ParserContext::Values);
                    match t2 {
                        Token::Comma => continue,
                        Token::ClosedPar => return Ok(set),
                        _ => return Err(format!("found '{l2}', expected: ',' or ')'")),
                    }
                }
                Token::Comma => {
                    if set.is_empty() {
                        set.insert(String::new()); // "(,"
                    }
                    let (t2, _) = self.lookahead(ParserContext::Values);
                    if t2 == Token::ClosedPar {
                        set.insert(String::new()); // ",)"
                        return Ok(set);
                    }
                    if t2 == Token::Comma {
                        set.insert(String::new()); // ",,"
                    }
                }
                _ => return Err(format!("found '{literal}', expected: ',', or identifier")),
            }
        }
    }

    fn parse_exact_value(&mut self) -> Result<BTreeSet<String>, String> {
        let (token, _) = self.lookahead(ParserContext::Values);
        if token == Token::EndOfString || token == Token::Comma {
            return Ok(BTreeSet::from([String::new()]));
        }
        let (token, literal) = self.consume(ParserContext::Values);
        if token == Token::Identifier {
            return Ok(BTreeSet::from([literal]));
        }
        Err(format!("found '{literal}', expected: identifier"))
    }
}

// ---------------------------------------------------------------------------------------------
// LabelSelector
// ---------------------------------------------------------------------------------------------

/// A label selector: requirements that must all hold (`labels.Selector`), or the selector that
/// matches nothing (`labels.Nothing()`, what a null `metav1.LabelSelector` converts to).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
    nothing: bool,
}

impl LabelSelector {
    /// The selector that matches every object (`labels.Everything()`).
    pub fn everything() -> Self {
        Self::default()
    }

    /// The selector that matches no object (`labels.Nothing()`).
    pub fn nothing() -> Self {
        LabelSelector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// Parses the `labelSelector` query parameter syntax (`labels.Parse`): `k=v`, `k==v`, `k!=v`,
    /// `k in (a,b)`, `k notin (a,b)`, `k`, `!k`, `k>1`, `k<1`, comma-separated.
    pub fn parse(selector: &str) -> Result<Self, SelectorError> {
        let mut requirements = Parser::new(selector).parse()?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// Converts a `metav1.LabelSelector` JSON object (`matchLabels`, `matchExpressions`) as
    /// `metav1.LabelSelectorAsSelector` does: `null` selects nothing, `{}` selects everything,
    /// and an invalid key, value or operator is an error with upstream's message.
    pub fn from_label_selector_json(v: &Value) -> Result<Self, SelectorError> {
        let obj = match v {
            Value::Null => return Ok(Self::nothing()),
            Value::Object(obj) => obj,
            other => {
                return Err(SelectorError(format!(
                    "json: cannot unmarshal {} into Go value of type v1.LabelSelector",
                    json_type_name(other)
                )))
            }
        };
        let mut match_labels: Vec<(&str, &str)> = Vec::new();
        match obj.get("matchLabels") {
            None | Some(Value::Null) => {}
            Some(Value::Object(labels)) => {
                for (k, v) in labels {
                    match v {
                        Value::String(s) => match_labels.push((k, s)),
                        other => {
                            return Err(SelectorError(format!(
                                "json: cannot unmarshal {} into Go struct field LabelSelector.matchLabels of type string",
                                json_type_name(other)
                            )))
                        }
                    }
                }
            }
            Some(other) => {
                return Err(SelectorError(format!(
                    "json: cannot unmarshal {} into Go struct field LabelSelector.matchLabels of type map[string]string",
                    json_type_name(other)
                )))
            }
        }
        let mut expressions: Vec<(String, String, Vec<String>)> = Vec::new();
        match obj.get("matchExpressions") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for item in items {
                    expressions.push(parse_selector_requirement_json(item)?);
                }
            }
            Some(other) => {
                return Err(SelectorError(format!(
                    "json: cannot unmarshal {} into Go struct field LabelSelector.matchExpressions of type []v1.LabelSelectorRequirement",
                    json_type_name(other)
                )))
            }
        }
        if match_labels.is_empty() && expressions.is_empty() {
            return Ok(Self::everything());
        }
        // Upstream walks matchLabels in Go's random map order; sorted keys make the first
        // reported error deterministic.
        match_labels.sort_unstable();
        let mut requirements = Vec::with_capacity(match_labels.len() + expressions.len());
        for (k, v) in match_labels {
            requirements.push(Requirement::new(k, Operator::Equals, vec![v.to_string()])?);
        }
        for (key, operator, values) in expressions {
            let op = match operator.as_str() {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => {
                    return Err(SelectorError(format!(
                        "{} is not a valid label selector operator",
                        go_quote(other)
                    )))
                }
            };
            requirements.push(Requirement::new(&key, op, values)?);
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// A selector that matches exactly the given labels (`labels.SelectorFromValidatedSet`, what
    /// a Service's or ReplicationController's `spec.selector` map means). No validation; an
    /// empty set selects everything.
    pub fn from_set<'a>(set: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut requirements: Vec<Requirement> = set
            .into_iter()
            .map(|(k, v)| Requirement {
                key: k.to_string(),
                operator: Operator::Equals,
                values: vec![v.to_string()],
            })
            .collect();
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        LabelSelector {
            requirements,
            nothing: false,
        }
    }

    /// Whether the labels (a JSON object of strings; `None` when the object has none) match.
    pub fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        if self.nothing {
            return false;
        }
        match labels {
            Some(map) => self.requirements.iter().all(|r| r.matches_lookup(map)),
            None => self
                .requirements
                .iter()
                .all(|r| r.matches_lookup(&NoLabels)),
        }
    }

    /// Whether the labels match.
    pub fn matches_labels(&self, labels: &BTreeMap<String, String>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches_lookup(labels))
    }

    /// Whether an object's `metadata.labels` match.
    pub fn matches_object(&self, obj: &Value) -> bool {
        let labels = obj
            .get("metadata")
            .and_then(|m| m.get("labels"))
            .and_then(Value::as_object);
        self.matches(labels)
    }

    /// True when the selector does not restrict anything (`Selector.Empty()`); false for
    /// [`LabelSelector::nothing`].
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// True for the selector that matches nothing (`labels.MatchesNothing`).
    pub fn matches_nothing(&self) -> bool {
        self.nothing
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// The single value `label` must have, if the selector pins one (`RequiresExactMatch`).
    pub fn requires_exact_match(&self, label: &str) -> Option<&str> {
        let requirement = self.requirements.iter().find(|r| r.key == label)?;
        match (requirement.operator, requirement.values.as_slice()) {
            (Operator::Equals | Operator::DoubleEquals | Operator::In, [value]) => Some(value),
            _ => None,
        }
    }
}

impl fmt::Display for LabelSelector {
    /// `Selector.String()`: the requirements joined by `,` (empty for everything and nothing).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// One `metav1.LabelSelectorRequirement` as `(key, operator, values)`; missing members are
/// empty, as Go's decoder leaves them.
fn parse_selector_requirement_json(
    v: &Value,
) -> Result<(String, String, Vec<String>), SelectorError> {
    let obj = match v {
        Value::Object(obj) => obj,
        Value::Null => return Ok((String::new(), String::new(), Vec::new())),
        other => {
            return Err(SelectorError(format!(
                "json: cannot unmarshal {} into Go struct field LabelSelector.matchExpressions of type v1.LabelSelectorRequirement",
                json_type_name(other)
            )))
        }
    };
    let string_member = |name: &str| -> Result<String, SelectorError> {
        match obj.get(name) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(SelectorError(format!(
                "json: cannot unmarshal {} into Go struct field LabelSelectorRequirement.matchExpressions.{name} of type string",
                json_type_name(other)
            ))),
        }
    };
    let key = string_member("key")?;
    let operator = string_member("operator")?;
    let mut values = Vec::new();
    match obj.get("values") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for item in items {
                match item {
                    Value::String(s) => values.push(s.clone()),
                    // encoding/json decodes a null array element into "".
                    Value::Null => values.push(String::new()),
                    other => {
                        return Err(SelectorError(format!(
                            "json: cannot unmarshal {} into Go struct field LabelSelectorRequirement.matchExpressions.values of type string",
                            json_type_name(other)
                        )))
                    }
                }
            }
        }
        Some(other) => {
            return Err(SelectorError(format!(
                "json: cannot unmarshal {} into Go struct field LabelSelectorRequirement.matchExpressions.values of type []string",
                json_type_name(other)
            )))
        }
    }
    Ok((key, operator, values))
}

// ---------------------------------------------------------------------------------------------
// Field selectors (k8s.io/apimachinery/pkg/fields)
// ---------------------------------------------------------------------------------------------

/// The operator of a field selector term. `==` parses as [`FieldOp::Equals`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldOp {
    /// `field=value` or `field==value`
    Equals,
    /// `field!=value`
    NotEquals,
}

/// One term of a field selector, with the field already converted to the name upstream's
/// selectable field set uses (e.g. a pod's `spec.host` becomes `spec.nodeName`, an
/// `events.k8s.io` event's `regarding.name` becomes `involvedObject.name`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    pub field: String,
    pub op: FieldOp,
    pub value: String,
}

/// What a field selector applies to, which decides how a field's value is read.
#[derive(Debug, Clone, PartialEq, Eq)]
enum FieldTarget {
    Builtin { group: String, resource: String },
    CustomResource,
}

/// A field selector (`fields.Selector`) validated for one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSelector {
    terms: Vec<FieldRequirement>,
    target: FieldTarget,
}

/// `fields.splitTerms`: split on unescaped commas.
fn split_terms(selector: &str) -> Vec<&str> {
    if selector.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in selector.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(selector.get(start..i).unwrap_or_default());
            start = i + 1;
        }
    }
    terms.push(selector.get(start..).unwrap_or_default());
    terms
}

/// `fields.splitTerm`: the first `!=`, `==` or `=` (in that order of preference at each position).
fn split_term(term: &str) -> Option<(&str, FieldOp, &str)> {
    const OPERATORS: [(&str, FieldOp); 3] = [
        ("!=", FieldOp::NotEquals),
        ("==", FieldOp::Equals),
        ("=", FieldOp::Equals),
    ];
    for (i, _) in term.char_indices() {
        let remaining = term.get(i..).unwrap_or_default();
        for (op_str, op) in OPERATORS {
            if remaining.starts_with(op_str) {
                let lhs = term.get(..i).unwrap_or_default();
                let rhs = term.get(i + op_str.len()..).unwrap_or_default();
                return Some((lhs, op, rhs));
            }
        }
    }
    None
}

/// `fields.UnescapeValue`.
fn unescape_field_value(s: &str) -> Result<String, SelectorError> {
    if !s.contains(['\\', ',', '=']) {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            match c {
                '\\' | ',' | '=' => out.push(c),
                _ => {
                    return Err(SelectorError(format!(
                        "invalid field selector: invalid escape sequence: \\{c}"
                    )))
                }
            }
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => {
                // Go prints the rune with %v: its code point in decimal.
                return Err(SelectorError(format!(
                    "invalid field selector: unescaped character in value: {}",
                    c as u32
                )));
            }
            _ => out.push(c),
        }
    }
    if in_slash {
        return Err(SelectorError(
            "invalid field selector: invalid escape sequence: \\".to_string(),
        ));
    }
    Ok(out)
}

/// `fields.EscapeValue`.
fn escape_field_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `fields.ParseSelector` without the transform: the terms in sorted order.
fn parse_field_terms(selector: &str) -> Result<Vec<(String, FieldOp, String)>, SelectorError> {
    let mut parts = split_terms(selector);
    parts.sort_unstable();
    let mut items = Vec::with_capacity(parts.len());
    for part in parts {
        if part.is_empty() {
            continue;
        }
        let Some((lhs, op, rhs)) = split_term(part) else {
            return Err(SelectorError(format!(
                "invalid selector: '{selector}'; can't understand '{part}'"
            )));
        };
        items.push((lhs.to_string(), op, unescape_field_value(rhs)?));
    }
    Ok(items)
}

/// How a kind's field labels are converted (`FieldLabelConversionFunc`), and the message of its
/// error for an unsupported label.
#[derive(Debug, Clone, Copy)]
enum Conversion {
    /// No conversion function registered: `runtime.DefaultMetaV1FieldSelectorConversion`.
    Default,
    /// An explicit table of `(label, converted label)` and the style of its error.
    Table(&'static [(&'static str, &'static str)], Unsupported),
}

#[derive(Debug, Clone, Copy)]
enum Unsupported {
    /// `field label not supported: %s` (core/v1, certificates, events.k8s.io, custom resources).
    Plain,
    /// `field label %q not supported for Job` (batch/v1).
    Job,
    /// `field label not supported for resource.k8s.io/v1, Kind=ResourceSlice: %s`.
    ResourceSlice,
}

const POD_FIELDS: &[(&str, &str)] = &[
    ("metadata.name", "metadata.name"),
    ("metadata.namespace", "metadata.namespace"),
    ("spec.nodeName", "spec.nodeName"),
    ("spec.restartPolicy", "spec.restartPolicy"),
    ("spec.schedulerName", "spec.schedulerName"),
    ("spec.serviceAccountName", "spec.serviceAccountName"),
    ("spec.hostNetwork", "spec.hostNetwork"),
    ("status.phase", "status.phase"),
    ("status.podIP", "status.podIP"),
    ("status.podIPs", "status.podIPs"),
    ("status.nominatedNodeName", "status.nominatedNodeName"),
    // For old v1 clients which send spec.host.
    ("spec.host", "spec.nodeName"),
];

const NODE_FIELDS: &[(&str, &str)] = &[
    ("metadata.name", "metadata.name"),
    ("spec.unschedulable", "spec.unschedulable"),
];

const REPLICATION_CONTROLLER_FIELDS: &[(&str, &str)] = &[
    ("metadata.name", "metadata.name"),
    ("metadata.namespace", "metadata.namespace"),
    ("status.replicas", "status.replicas"),
];

const CORE_EVENT_FIELDS: &[(&str, &str)] = &[
    ("involvedObject.kind", "involvedObject.kind"),
    ("involvedObject.namespace", "involvedObject.namespace"),
    ("involvedObject.name", "involvedObject.name"),
    ("involvedObject.uid", "involvedObject.uid"),
    ("involvedObject.apiVersion", "involvedObject.apiVersion"),
    (
        "involvedObject.resourceVersion",
        "involvedObject.resourceVersion",
    ),
    ("involvedObject.fieldPath", "involvedObject.fieldPath"),
    ("reason", "reason"),
    ("reportingComponent", "reportingComponent"),
    ("source", "source"),
    ("type", "type"),
    ("metadata.namespace", "metadata.namespace"),
    ("metadata.name", "metadata.name"),
];

const NAMESPACE_FIELDS: &[(&str, &str)] = &[
    ("status.phase", "status.phase"),
    ("metadata.name", "metadata.name"),
];

const SECRET_FIELDS: &[(&str, &str)] = &[
    ("type", "type"),
    ("metadata.namespace", "metadata.namespace"),
    ("metadata.name", "metadata.name"),
];

const SERVICE_FIELDS: &[(&str, &str)] = &[
    ("metadata.namespace", "metadata.namespace"),
    ("metadata.name", "metadata.name"),
    ("spec.clusterIP", "spec.clusterIP"),
    ("spec.type", "spec.type"),
];

const JOB_FIELDS: &[(&str, &str)] = &[
    ("metadata.name", "metadata.name"),
    ("metadata.namespace", "metadata.namespace"),
    ("status.successful", "status.successful"),
];

const SIGNER_FIELDS: &[(&str, &str)] = &[
    ("metadata.name", "metadata.name"),
    ("spec.signerName", "spec.signerName"),
];

const POD_CERTIFICATE_REQUEST_FIELDS: &[(&str, &str)] = &[
    ("metadata.name", "metadata.name"),
    ("spec.signerName", "spec.signerName"),
    ("spec.podName", "spec.podName"),
    ("spec.nodeName", "spec.nodeName"),
];

/// events.k8s.io names mapped onto the field set of the (shared) core Event storage.
const EVENTS_V1_FIELDS: &[(&str, &str)] = &[
    ("reason", "reason"),
    ("regarding.kind", "involvedObject.kind"),
    ("regarding.namespace", "involvedObject.namespace"),
    ("regarding.name", "involvedObject.name"),
    ("regarding.uid", "involvedObject.uid"),
    ("regarding.apiVersion", "involvedObject.apiVersion"),
    (
        "regarding.resourceVersion",
        "involvedObject.resourceVersion",
    ),
    ("regarding.fieldPath", "involvedObject.fieldPath"),
    ("reportingController", "reportingComponent"),
    ("source", "source"),
    ("type", "type"),
    ("metadata.namespace", "metadata.namespace"),
    ("metadata.name", "metadata.name"),
];

const RESOURCE_SLICE_FIELDS: &[(&str, &str)] = &[
    ("metadata.name", "metadata.name"),
    ("spec.nodeName", "spec.nodeName"),
    ("spec.driver", "spec.driver"),
];

const DEFAULT_FIELDS: &[&str] = &["metadata.name", "metadata.namespace"];

/// The legacy core group may be spelled `""` or `"core"`.
fn normalize_group(group: &str) -> &str {
    if group == "core" {
        ""
    } else {
        group
    }
}

fn conversion_for(group: &str, resource: &str) -> Conversion {
    use Unsupported::{Job, Plain, ResourceSlice};
    match (normalize_group(group), resource) {
        ("", "pods") => Conversion::Table(POD_FIELDS, Plain),
        ("", "nodes") => Conversion::Table(NODE_FIELDS, Plain),
        ("", "replicationcontrollers") => Conversion::Table(REPLICATION_CONTROLLER_FIELDS, Plain),
        ("", "events") => Conversion::Table(CORE_EVENT_FIELDS, Plain),
        ("", "namespaces") => Conversion::Table(NAMESPACE_FIELDS, Plain),
        ("", "secrets") => Conversion::Table(SECRET_FIELDS, Plain),
        ("", "services") => Conversion::Table(SERVICE_FIELDS, Plain),
        ("batch", "jobs") => Conversion::Table(JOB_FIELDS, Job),
        ("certificates.k8s.io", "certificatesigningrequests" | "clustertrustbundles") => {
            Conversion::Table(SIGNER_FIELDS, Plain)
        }
        ("certificates.k8s.io", "podcertificaterequests") => {
            Conversion::Table(POD_CERTIFICATE_REQUEST_FIELDS, Plain)
        }
        ("events.k8s.io", "events") => Conversion::Table(EVENTS_V1_FIELDS, Plain),
        ("resource.k8s.io", "resourceslices") => {
            Conversion::Table(RESOURCE_SLICE_FIELDS, ResourceSlice)
        }
        _ => Conversion::Default,
    }
}

/// `ConvertFieldLabel`: the field name upstream filters on, or upstream's error.
fn convert_field_label(conversion: Conversion, label: &str) -> Result<String, SelectorError> {
    match conversion {
        Conversion::Default => {
            if DEFAULT_FIELDS.contains(&label) {
                Ok(label.to_string())
            } else {
                Err(SelectorError(format!(
                    "{} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
                    go_quote(label)
                )))
            }
        }
        Conversion::Table(table, unsupported) => {
            match table.iter().find(|(external, _)| *external == label) {
                Some((_, internal)) => Ok((*internal).to_string()),
                None => Err(SelectorError(match unsupported {
                    Unsupported::Plain => format!("field label not supported: {label}"),
                    Unsupported::Job => {
                        format!("field label {} not supported for Job", go_quote(label))
                    }
                    Unsupported::ResourceSlice => format!(
                        "field label not supported for resource.k8s.io/v1, Kind=ResourceSlice: {label}"
                    ),
                })),
            }
        }
    }
}

/// The field labels a field selector on `group`/`resource` accepts, in upstream's order (the
/// pods' legacy alias `spec.host` included). Resources without their own conversion accept
/// `metadata.name` and `metadata.namespace`.
pub fn supported_fields(group: &str, resource: &str) -> Vec<&'static str> {
    match conversion_for(group, resource) {
        Conversion::Default => DEFAULT_FIELDS.to_vec(),
        Conversion::Table(table, _) => table.iter().map(|(external, _)| *external).collect(),
    }
}

// --- reading field values from objects ------------------------------------------------------

fn value_at<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(obj, |v, key| v.get(key))
}

/// A string member, `""` when absent (Go's zero value).
fn str_at(obj: &Value, path: &[&str]) -> String {
    value_at(obj, path)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// A boolean member formatted as Go's `strconv.FormatBool`, `false` when absent.
fn bool_at(obj: &Value, path: &[&str]) -> String {
    let b = value_at(obj, path)
        .and_then(Value::as_bool)
        .unwrap_or(false);
    b.to_string()
}

/// An integer member formatted as Go's `strconv.Itoa`, `0` when absent.
fn int_at(obj: &Value, path: &[&str]) -> String {
    let n = value_at(obj, path)
        .and_then(|v| {
            v.as_i64().or_else(|| {
                v.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                    .map(|f| f as i64)
            })
        })
        .unwrap_or(0);
    n.to_string()
}

/// The pod's primary IP as the internal object has it: `status.podIP` when set (it wins over a
/// differing `status.podIPs[0]`), else `status.podIPs[0].ip`.
fn pod_ip(obj: &Value) -> String {
    let pod_ip = str_at(obj, &["status", "podIP"]);
    if !pod_ip.is_empty() {
        return pod_ip;
    }
    value_at(obj, &["status", "podIPs"])
        .and_then(Value::as_array)
        .and_then(|ips| ips.first())
        .map(|first| str_at(first, &["ip"]))
        .unwrap_or_default()
}

/// Whether an Event object is in the events.k8s.io shape (`regarding`, `reportingController`,
/// `deprecatedSource`) rather than the core/v1 one (`involvedObject`, `reportingComponent`,
/// `source`).
fn is_events_k8s_io_shape(obj: &Value) -> bool {
    match obj.get("apiVersion").and_then(Value::as_str) {
        Some(api_version) if api_version.starts_with("events.k8s.io/") => true,
        Some("v1") => false,
        _ => obj.get("involvedObject").is_none() && obj.get("regarding").is_some(),
    }
}

/// The Event's selectable fields (`event.ToSelectableFields`), by their core/v1 names.
fn event_field(obj: &Value, field: &str) -> Option<String> {
    let (reference, source, reporting) = if is_events_k8s_io_shape(obj) {
        ("regarding", "deprecatedSource", "reportingController")
    } else {
        ("involvedObject", "source", "reportingComponent")
    };
    if let Some(member) = field.strip_prefix("involvedObject.") {
        return match member {
            "kind" | "namespace" | "name" | "uid" | "apiVersion" | "resourceVersion"
            | "fieldPath" => Some(str_at(obj, &[reference, member])),
            _ => None,
        };
    }
    Some(match field {
        "reason" => str_at(obj, &["reason"]),
        "type" => str_at(obj, &["type"]),
        "reportingComponent" => str_at(obj, &[reporting]),
        "source" => {
            let component = str_at(obj, &[source, "component"]);
            if component.is_empty() {
                str_at(obj, &[reporting])
            } else {
                component
            }
        }
        _ => return None,
    })
}

/// A field's value by its converted (internal) name, as the kind's `GetAttrs` computes it.
/// `None` for a field the kind does not know.
fn builtin_field_value(group: &str, resource: &str, obj: &Value, field: &str) -> Option<String> {
    match field {
        "metadata.name" => return Some(str_at(obj, &["metadata", "name"])),
        "metadata.namespace" => return Some(str_at(obj, &["metadata", "namespace"])),
        _ => {}
    }
    let value = match (normalize_group(group), resource, field) {
        ("", "pods", "spec.nodeName") => str_at(obj, &["spec", "nodeName"]),
        ("", "pods", "spec.restartPolicy") => str_at(obj, &["spec", "restartPolicy"]),
        ("", "pods", "spec.schedulerName") => str_at(obj, &["spec", "schedulerName"]),
        ("", "pods", "spec.serviceAccountName") => str_at(obj, &["spec", "serviceAccountName"]),
        ("", "pods", "spec.hostNetwork") => bool_at(obj, &["spec", "hostNetwork"]),
        ("", "pods", "status.phase") => str_at(obj, &["status", "phase"]),
        ("", "pods", "status.podIP") => pod_ip(obj),
        // Accepted by the conversion but never part of the pod's field set: always "".
        ("", "pods", "status.podIPs") => String::new(),
        ("", "pods", "status.nominatedNodeName") => str_at(obj, &["status", "nominatedNodeName"]),
        ("", "nodes", "spec.unschedulable") => bool_at(obj, &["spec", "unschedulable"]),
        ("", "replicationcontrollers", "status.replicas") => int_at(obj, &["status", "replicas"]),
        ("", "events", f) | ("events.k8s.io", "events", f) => event_field(obj, f)?,
        ("", "namespaces", "status.phase") => str_at(obj, &["status", "phase"]),
        ("", "secrets", "type") => str_at(obj, &["type"]),
        ("", "services", "spec.clusterIP") => str_at(obj, &["spec", "clusterIP"]),
        ("", "services", "spec.type") => str_at(obj, &["spec", "type"]),
        ("batch", "jobs", "status.successful") => int_at(obj, &["status", "succeeded"]),
        (
            "certificates.k8s.io",
            "certificatesigningrequests" | "clustertrustbundles" | "podcertificaterequests",
            "spec.signerName",
        ) => str_at(obj, &["spec", "signerName"]),
        ("certificates.k8s.io", "podcertificaterequests", "spec.podName") => {
            str_at(obj, &["spec", "podName"])
        }
        ("certificates.k8s.io", "podcertificaterequests", "spec.nodeName") => {
            str_at(obj, &["spec", "nodeName"])
        }
        ("resource.k8s.io", "resourceslices", "spec.nodeName") => {
            str_at(obj, &["spec", "nodeName"])
        }
        ("resource.k8s.io", "resourceslices", "spec.driver") => str_at(obj, &["spec", "driver"]),
        _ => return None,
    };
    Some(value)
}

/// The value a field selector compares `field` against for an object of `group`/`resource`, as
/// upstream's `GetAttrs` computes it: absent strings are `""`, booleans `"true"`/`"false"`
/// (absent: `"false"`), counts decimal (absent: `"0"`), `metadata.namespace` of a cluster-scoped
/// object `""`. `field` may be the label a client sends (`spec.host`, `regarding.name`) or the
/// converted name. `None` when the resource has no such selectable field.
pub fn field_value(group: &str, resource: &str, obj: &Value, field: &str) -> Option<String> {
    let internal = convert_field_label(conversion_for(group, resource), field)
        .unwrap_or_else(|_| field.to_string());
    builtin_field_value(group, resource, obj, &internal)
}

/// A custom resource's field value: metadata name/namespace, or a selectable field's scalar
/// formatted as upstream does (strings as they are, integers in decimal, booleans
/// `true`/`false`), `""` when absent or of another type.
fn custom_resource_field_value(obj: &Value, field: &str) -> String {
    let path: Vec<&str> = field.split('.').collect();
    match value_at(obj, &path) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) => i.to_string(),
            None => n.to_string(),
        },
        _ => String::new(),
    }
}

impl FieldSelector {
    /// The selector that matches every object.
    pub fn everything() -> Self {
        FieldSelector {
            terms: Vec::new(),
            target: FieldTarget::CustomResource,
        }
    }

    /// Parses the `fieldSelector` query parameter (`fields.ParseSelector`) and converts every
    /// field label as the kube-apiserver does for `group`/`resource` (`ConvertFieldLabel`),
    /// failing with upstream's message on a syntax error or an unsupported field. Terms are
    /// taken in sorted order, as upstream does, so the first error reported is upstream's.
    pub fn parse(selector: &str, group: &str, resource: &str) -> Result<Self, SelectorError> {
        let conversion = conversion_for(group, resource);
        let mut terms = Vec::new();
        for (field, op, value) in parse_field_terms(selector)? {
            let field = convert_field_label(conversion, &field)?;
            terms.push(FieldRequirement { field, op, value });
        }
        Ok(FieldSelector {
            terms,
            target: FieldTarget::Builtin {
                group: normalize_group(group).to_string(),
                resource: resource.to_string(),
            },
        })
    }

    /// Parses a field selector for a custom resource: `metadata.name`, `metadata.namespace`
    /// (namespaced resources only) and the CRD version's `selectableFields` (their `jsonPath`
    /// with or without the leading dot, e.g. `.spec.color`) are accepted; anything else is
    /// `field label not supported: <label>`.
    pub fn parse_custom_resource(
        selector: &str,
        namespaced: bool,
        selectable_fields: &[String],
    ) -> Result<Self, SelectorError> {
        let mut terms = Vec::new();
        for (field, op, value) in parse_field_terms(selector)? {
            let accepted = field == "metadata.name"
                || (namespaced && field == "metadata.namespace")
                || selectable_fields
                    .iter()
                    .any(|f| f.strip_prefix('.').unwrap_or(f) == field);
            if !accepted {
                return Err(SelectorError(format!("field label not supported: {field}")));
            }
            terms.push(FieldRequirement { field, op, value });
        }
        Ok(FieldSelector {
            terms,
            target: FieldTarget::CustomResource,
        })
    }

    fn value_of(&self, obj: &Value, field: &str) -> String {
        match &self.target {
            FieldTarget::Builtin { group, resource } => {
                builtin_field_value(group, resource, obj, field).unwrap_or_default()
            }
            FieldTarget::CustomResource => custom_resource_field_value(obj, field),
        }
    }

    /// Whether the object satisfies every term (a field the object lacks reads as `""`).
    pub fn matches(&self, obj: &Value) -> bool {
        self.terms.iter().all(|term| {
            let actual = self.value_of(obj, &term.field);
            match term.op {
                FieldOp::Equals => actual == term.value,
                FieldOp::NotEquals => actual != term.value,
            }
        })
    }

    /// True when the selector does not restrict anything.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The value `field` must equal, if an `=`/`==` term pins it (`RequiresExactMatch`), e.g.
    /// `spec.nodeName` for a kubelet's pod watch. `field` may also be the label a client sends
    /// (`spec.host`, `regarding.name`).
    pub fn exact_value(&self, field: &str) -> Option<&str> {
        let internal = match &self.target {
            FieldTarget::Builtin { group, resource } => {
                convert_field_label(conversion_for(group, resource), field)
                    .unwrap_or_else(|_| field.to_string())
            }
            FieldTarget::CustomResource => field.to_string(),
        };
        self.terms
            .iter()
            .find(|t| t.op == FieldOp::Equals && t.field == internal)
            .map(|t| t.value.as_str())
    }

    /// The terms, in upstream's (sorted) order, with converted field names.
    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.terms
    }
}

impl fmt::Display for FieldSelector {
    /// `Selector.String()`: `field=value` / `field!=value` terms with values escaped, joined by
    /// `,`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, term) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let op = match term.op {
                FieldOp::Equals => "=",
                FieldOp::NotEquals => "!=",
            };
            write!(f, "{}{}{}", term.field, op, escape_field_value(&term.value))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const UPSTREAM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/upstream");

    const NAME_PART_REGEX: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    const VALUE_REGEX: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
    const PREFIX_REGEX: &str = "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

    fn golden(path: &str) -> Value {
        let text = std::fs::read_to_string(format!("{UPSTREAM}/{path}")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// The decoded value of one query parameter of a golden request.
    fn golden_query_param(case: &Value, name: &str) -> String {
        let query = case["request"]["query"].as_str().unwrap();
        let raw = query
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .unwrap();
        percent_decode(raw)
    }

    fn percent_decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'%' => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 3;
                }
                b'+' => {
                    out.push(b' ');
                    i += 1;
                }
                b => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        String::from_utf8(out).unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> Map<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect()
    }

    fn parse_err(s: &str) -> String {
        match LabelSelector::parse(s) {
            Ok(sel) => panic!("{s:?} parsed as {sel:?}"),
            Err(e) => e.0,
        }
    }

    fn tokens(s: &str) -> Vec<(Token, String)> {
        Parser::new(s).items
    }

    // ---- Go formatting ----------------------------------------------------------------------

    #[test]
    fn go_quote_matches_strconv_quote() {
        assert_eq!(go_quote("abc"), r#""abc""#);
        assert_eq!(go_quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(
            go_quote("\n\t\r\u{7}\u{8}\u{c}\u{b}"),
            r#""\n\t\r\a\b\f\v""#
        );
        assert_eq!(go_quote("\u{0}\u{1f}\u{7f}"), r#""\x00\x1f\x7f""#);
        assert_eq!(go_quote("é日本"), "\"é日本\"");
        assert_eq!(
            go_quote("\u{a0}\u{200b}\u{feff}"),
            r#""\u00a0\u200b\ufeff""#
        );
        assert_eq!(go_quote("\u{e0001}"), r#""\U000e0001""#);
        assert_eq!(go_quote("😀"), "\"😀\"");
    }

    #[test]
    fn go_json_string_escapes_like_encoding_json() {
        assert_eq!(go_json_string("a"), r#""a""#);
        assert_eq!(go_json_string("<a&b>"), r#""\u003ca\u0026b\u003e""#);
        assert_eq!(go_json_string("\"\\\n\u{1}"), r#""\"\\\n\u0001""#);
        assert_eq!(go_json_string("\u{2028}é"), "\"\\u2028é\"");
    }

    // ---- validation ------------------------------------------------------------------------

    #[test]
    fn label_key_validation_messages() {
        assert!(label_key_errors("a").is_empty());
        assert!(label_key_errors("example.com/My_Name-1.x").is_empty());
        assert!(label_key_errors(&"a".repeat(63)).is_empty());
        assert!(label_key_errors(&format!("{}/a", "b".repeat(253))).is_empty());
        assert_eq!(
            label_key_errors(""),
            vec![
                "name part must be non-empty".to_string(),
                NAME_PART_REGEX.to_string()
            ]
        );
        assert_eq!(label_key_errors("-a"), vec![NAME_PART_REGEX.to_string()]);
        assert_eq!(
            label_key_errors(&"a".repeat(64)),
            vec!["name part must be no more than 63 bytes".to_string()]
        );
        assert_eq!(
            label_key_errors("/a"),
            vec!["prefix part must be non-empty".to_string()]
        );
        assert_eq!(label_key_errors("A.com/a"), vec![PREFIX_REGEX.to_string()]);
        assert_eq!(
            label_key_errors(&format!("{}/a", "b".repeat(254))),
            vec!["prefix part must be no more than 253 bytes".to_string()]
        );
        assert_eq!(
            label_key_errors("a..b/c"),
            vec![PREFIX_REGEX.to_string()],
            "empty DNS label inside the prefix"
        );
        assert_eq!(
            label_key_errors("a/b/c"),
            vec!["a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')".to_string()]
        );
        assert_eq!(
            label_key_errors("/"),
            vec![
                "prefix part must be non-empty".to_string(),
                "name part must be non-empty".to_string(),
                NAME_PART_REGEX.to_string()
            ]
        );
    }

    #[test]
    fn label_value_validation_messages() {
        for ok in ["", "a", "A-b_c.9", &"x".repeat(63)] {
            assert!(label_value_errors(ok).is_empty(), "{ok:?}");
        }
        assert_eq!(label_value_errors("-a"), vec![VALUE_REGEX.to_string()]);
        assert_eq!(label_value_errors("a b"), vec![VALUE_REGEX.to_string()]);
        assert_eq!(
            label_value_errors(&"x".repeat(64)),
            vec!["must be no more than 63 bytes".to_string()]
        );
        assert_eq!(
            label_value_errors(&format!("-{}", "x".repeat(63))),
            vec![
                "must be no more than 63 bytes".to_string(),
                VALUE_REGEX.to_string()
            ]
        );
    }

    // ---- lexer ----------------------------------------------------------------------------

    #[test]
    fn lexer_single_tokens() {
        let cases: &[(&str, Token)] = &[
            ("", Token::EndOfString),
            (",", Token::Comma),
            ("notin", Token::NotIn),
            ("in", Token::In),
            ("=", Token::Equals),
            ("==", Token::DoubleEquals),
            (">", Token::GreaterThan),
            ("<", Token::LessThan),
            ("!=", Token::NotEquals),
            ("!", Token::DoesNotExist),
            ("(", Token::OpenPar),
            (")", Token::ClosedPar),
            ("~", Token::Identifier),
            ("||", Token::Identifier),
            ("key", Token::Identifier),
        ];
        for (input, want) in cases {
            let items = tokens(input);
            assert_eq!(items[0].0, *want, "{input:?}");
            if *want != Token::EndOfString {
                assert_eq!(items[0].1, *input);
            }
        }
    }

    #[test]
    fn lexer_sequences() {
        use Token::*;
        let cases: &[(&str, &[Token])] = &[
            (
                "key in ( value )",
                &[Identifier, In, OpenPar, Identifier, ClosedPar],
            ),
            (
                "key notin ( value )",
                &[Identifier, NotIn, OpenPar, Identifier, ClosedPar],
            ),
            (
                "key in ( value1, value2 )",
                &[
                    Identifier, In, OpenPar, Identifier, Comma, Identifier, ClosedPar,
                ],
            ),
            ("key", &[Identifier]),
            ("!key", &[DoesNotExist, Identifier]),
            ("()", &[OpenPar, ClosedPar]),
            (
                "x in (),y",
                &[Identifier, In, OpenPar, ClosedPar, Comma, Identifier],
            ),
            (
                "== != (), = notin",
                &[
                    DoubleEquals,
                    NotEquals,
                    OpenPar,
                    ClosedPar,
                    Comma,
                    Equals,
                    NotIn,
                ],
            ),
            ("key>2", &[Identifier, GreaterThan, Identifier]),
            ("key<1", &[Identifier, LessThan, Identifier]),
            ("a!==b", &[Identifier, NotEquals, Equals, Identifier]),
            ("a>=b", &[Identifier, GreaterThan, Equals, Identifier]),
            ("a===b", &[Identifier, DoubleEquals, Equals, Identifier]),
            ("a\tb\r\nc", &[Identifier, Identifier, Identifier]),
            // A NUL byte ends an identifier and, where a token would start, the input.
            ("a\u{0}b", &[Identifier, Identifier]),
            // ... but a NUL right after a symbol is swallowed with it.
            ("a,\u{0}b", &[Identifier, Comma, Identifier]),
            ("a, \u{0}b", &[Identifier, Comma]),
            ("\u{0}a=b", &[]),
        ];
        for (input, want) in cases {
            let got: Vec<Token> = tokens(input).into_iter().map(|(t, _)| t).collect();
            let mut want = want.to_vec();
            want.push(EndOfString);
            assert_eq!(got, want, "{input:?}");
        }
    }

    // ---- label selector parsing ---------------------------------------------------------

    #[test]
    fn label_selector_parses_every_operator() {
        let cases: &[(&str, &str, Operator, &[&str])] = &[
            ("x=a", "x", Operator::Equals, &["a"]),
            ("x==a", "x", Operator::DoubleEquals, &["a"]),
            ("x!=a", "x", Operator::NotEquals, &["a"]),
            ("x in (b,a,b)", "x", Operator::In, &["a", "b"]),
            ("x notin (a)", "x", Operator::NotIn, &["a"]),
            ("x", "x", Operator::Exists, &[]),
            ("!x", "x", Operator::DoesNotExist, &[]),
            ("x>1", "x", Operator::GreaterThan, &["1"]),
            ("x<10", "x", Operator::LessThan, &["10"]),
            ("x=", "x", Operator::Equals, &[""]),
            ("x!=", "x", Operator::NotEquals, &[""]),
            ("x in ()", "x", Operator::In, &[""]),
            ("x in (,a)", "x", Operator::In, &["", "a"]),
            ("x in (a,)", "x", Operator::In, &["", "a"]),
            ("x in (a,,b)", "x", Operator::In, &["", "a", "b"]),
            ("x in (,)", "x", Operator::In, &[""]),
            ("x=in", "x", Operator::Equals, &["in"]),
            ("x in (in,notin)", "x", Operator::In, &["in", "notin"]),
            ("in=x", "in", Operator::Equals, &["x"]),
            ("notin in (a)", "notin", Operator::In, &["a"]),
            (
                "example.com/a-b_c.d=V.1",
                "example.com/a-b_c.d",
                Operator::Equals,
                &["V.1"],
            ),
            ("  x  in  ( a , b )  ", "x", Operator::In, &["a", "b"]),
            ("\tx\n=\ra", "x", Operator::Equals, &["a"]),
        ];
        for (input, key, op, values) in cases {
            let sel = LabelSelector::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(sel.requirements().len(), 1, "{input:?}");
            let r = &sel.requirements()[0];
            assert_eq!(r.key(), *key, "{input:?}");
            assert_eq!(r.operator(), *op, "{input:?}");
            assert_eq!(r.values(), *values, "{input:?}");
        }
    }

    #[test]
    fn label_selector_good_strings_and_canonical_form() {
        let cases: &[(&str, &str)] = &[
            ("", ""),
            ("x=a,y=b,z=c", "x=a,y=b,z=c"),
            ("z=c,x=a,y=b", "x=a,y=b,z=c"),
            ("x!=a,y=b", "x!=a,y=b"),
            ("x=a,y!=b", "x=a,y!=b"),
            ("x=a,y==b", "x=a,y==b"),
            (
                "x in (foo,,baz),y,z notin ()",
                "x in (,baz,foo),y,z notin ()",
            ),
            (
                "x in (foo,bar),y notin (c,a)",
                "x in (bar,foo),y notin (a,c)",
            ),
            ("!x", "!x"),
            ("x>1", "x>1"),
            ("x>1,z<5", "x>1,z<5"),
            ("x=,z= ", "x=,z="),
            ("x= ,z= ", "x=,z="),
            ("!x,y", "!x,y"),
            (" ", ""),
            // Like upstream's lexer, a NUL byte where a token starts ends the input, and one
            // right after a symbol is swallowed with it.
            ("\u{0}a=b", ""),
            ("a,\u{0}b", "a,b"),
            ("x>01", "x>01"),
            ("x<+5", ""), // checked below: "+5" is an integer but not a valid label value
        ];
        for (input, want) in cases {
            if input.contains('+') {
                continue;
            }
            let sel = LabelSelector::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(sel.to_string(), *want, "{input:?}");
            // The canonical form parses back to the same selector.
            assert_eq!(
                LabelSelector::parse(&sel.to_string()).unwrap(),
                sel,
                "{input:?}"
            );
        }
    }

    /// Upstream's TestSetSelectorParser table: validity and, where given, the requirements.
    #[test]
    fn label_selector_upstream_set_parser_table() {
        let valid: &[(&str, &str)] = &[
            ("", ""),
            ("\rx", "x"),
            (
                "this-is-a-dns.domain.com/key-with-dash",
                "this-is-a-dns.domain.com/key-with-dash",
            ),
            (
                "this-is-another-dns.domain.com/key-with-dash in (so,what)",
                "this-is-another-dns.domain.com/key-with-dash in (so,what)",
            ),
            (
                "0.1.2.domain/99 notin (10.10.100.1, tick.tack.clock)",
                "0.1.2.domain/99 notin (10.10.100.1,tick.tack.clock)",
            ),
            ("foo  in\t (abc)", "foo in (abc)"),
            ("x notin\n (abc)", "x notin (abc)"),
            ("x  notin\t\t\t(abc,def)", "x notin (abc,def)"),
            ("x in (abc,def)", "x in (abc,def)"),
            ("x in (abc,)", "x in (,abc)"),
            ("x in (abc,abc)", "x in (abc)"),
            ("x in ()", "x in ()"),
            ("x in (a,,)", "x in (,a)"),
            ("x in (a,,,)", "x in (,a)"),
            ("x in (a,,,,,,)", "x in (,a)"),
            ("x in (a,,a,,a,,a,,)", "x in (,a)"),
            (
                "x notin (abc,,def),bar,z in (),w",
                "bar,w,x notin (,abc,def),z in ()",
            ),
            ("x,y in (a)", "x,y in (a)"),
            ("x=a", "x=a"),
            ("x>1", "x>1"),
            ("x<7", "x<7"),
            ("x=a,y!=b", "x=a,y!=b"),
            ("x=a,y!=b,z in (h,i,j)", "x=a,y!=b,z in (h,i,j)"),
            ("x notin ( )", "x notin ()"),
            ("x notin (, a)", "x notin (,a)"),
            ("a ", "a"),
            ("a in (x,y,notin, z,in)", "a in (in,notin,x,y,z)"),
        ];
        for (input, canonical) in valid {
            let sel = LabelSelector::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(sel.to_string(), *canonical, "{input:?}");
        }
        let invalid = [
            "x=a||y=b",
            "x,,y",
            ",x,y",
            "x nott in (y)",
            "a in (xyz),",
            "a in (xyz)b notin ()",
            "a in (xyz abc)",
            "a notin(",
            "a (",
            "(",
        ];
        for input in invalid {
            assert!(LabelSelector::parse(input).is_err(), "{input:?}");
        }
        // TestRequirementConstructor's key longer than a DNS subdomain: only the key is wrong.
        let long_key = "a".repeat(254);
        assert_eq!(
            Requirement::new(&long_key, Operator::Exists, vec![])
                .unwrap_err()
                .0,
            format!("key: Invalid value: \"{long_key}\": name part must be no more than 63 bytes")
        );
        assert_eq!(
            Requirement::new("x1", Operator::In, vec![]).unwrap_err().0,
            "values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty"
        );
        assert_eq!(
            Requirement::new("x13", Operator::GreaterThan, vec![])
                .unwrap_err()
                .0,
            "values: Invalid value: null: for 'Gt', 'Lt' operators, exactly one value is required"
        );
    }

    #[test]
    fn label_selector_bad_strings() {
        for bad in [
            "x=a||y=b",
            "x==a==b",
            "!x=a",
            "x<a",
            "close ~= value",
            "x=a,",
            ",x",
            "x in",
            "x notin (",
            "x in (a",
            "(x)",
            "x in (a)(b)",
            "x=a=b",
        ] {
            assert!(
                LabelSelector::parse(bad).is_err(),
                "{bad:?} should not parse"
            );
        }
    }

    #[test]
    fn label_selector_error_messages() {
        let cases: &[(&str, String)] = &[
            // The golden capture's case.
            ("a in (x", "unable to parse requirement: found '', expected: ',' or ')'".into()),
            ("a in (x y)", "unable to parse requirement: found 'y', expected: ',' or ')'".into()),
            ("a in (x,", "unable to parse requirement: found '', expected: ',', or identifier".into()),
            ("a in (x,=", "unable to parse requirement: found '=', expected: ',', or identifier".into()),
            ("a in (=", "unable to parse requirement: found '=', expected: ',', ')' or identifier".into()),
            ("a in (", "unable to parse requirement: found '', expected: ',', ')' or identifier".into()),
            ("a in x", "unable to parse requirement: found 'x' expected: '('".into()),
            ("a in", "unable to parse requirement: found '' expected: '('".into()),
            ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt".into()),
            ("a (", "unable to parse requirement: found '(', expected: in, notin, =, ==, !=, gt, lt".into()),
            ("close ~= value", "unable to parse requirement: found '~', expected: in, notin, =, ==, !=, gt, lt".into()),
            ("a=(", "unable to parse requirement: found '(', expected: identifier".into()),
            ("a!=)", "unable to parse requirement: found ')', expected: identifier".into()),
            ("!", "unable to parse requirement: found '', expected: identifier".into()),
            ("!,a", "unable to parse requirement: found ',', expected: identifier".into()),
            ("!!a", "unable to parse requirement: found '!', expected: identifier".into()),
            ("=a", "found '=', expected: !, identifier, or 'end of string'".into()),
            ("!=a", "found '!=', expected: !, identifier, or 'end of string'".into()),
            (",a", "found ',', expected: !, identifier, or 'end of string'".into()),
            ("(a)", "found '(', expected: !, identifier, or 'end of string'".into()),
            ("a,", "found '', expected: identifier after ','".into()),
            ("a,,b", "found ',', expected: identifier after ','".into()),
            ("a,=b", "found '=', expected: identifier after ','".into()),
            ("a=b c", "found 'c', expected: ',' or 'end of string'".into()),
            ("x=a||y=b", format!("unable to parse requirement: values[0][x]: Invalid value: \"a||y\": {VALUE_REGEX}")),
            ("x=a|b", format!("unable to parse requirement: values[0][x]: Invalid value: \"a|b\": {VALUE_REGEX}")),
            ("x==a==b", "found '==', expected: ',' or 'end of string'".into()),
            ("!x=a", "found '=', expected: ',' or 'end of string'".into()),
            ("a in (b) c", "found 'c', expected: ',' or 'end of string'".into()),
            ("a\u{0}b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt".into()),
            ("a, \u{0}b", "found '', expected: identifier after ','".into()),
            (
                "x<a",
                "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer".into(),
            ),
            (
                "x>",
                "unable to parse requirement: values[0]: Invalid value: \"\": for 'Gt', 'Lt' operators, the value must be an integer".into(),
            ),
            (
                "x>99999999999999999999",
                "unable to parse requirement: values[0]: Invalid value: \"99999999999999999999\": for 'Gt', 'Lt' operators, the value must be an integer".into(),
            ),
            (
                "x>1.5",
                "unable to parse requirement: values[0]: Invalid value: \"1.5\": for 'Gt', 'Lt' operators, the value must be an integer".into(),
            ),
            ("x>-1", format!("unable to parse requirement: values[0][x]: Invalid value: \"-1\": {VALUE_REGEX}")),
            ("x<+5", format!("unable to parse requirement: values[0][x]: Invalid value: \"+5\": {VALUE_REGEX}")),
            (
                "x>-",
                format!("unable to parse requirement: [values[0]: Invalid value: \"-\": for 'Gt', 'Lt' operators, the value must be an integer, values[0][x]: Invalid value: \"-\": {VALUE_REGEX}]"),
            ),
            ("a=-b", format!("unable to parse requirement: values[0][a]: Invalid value: \"-b\": {VALUE_REGEX}")),
            ("a=b\u{a0}", format!("unable to parse requirement: values[0][a]: Invalid value: \"b\\u00a0\": {VALUE_REGEX}")),
            (
                &format!("a={}", "v".repeat(64)),
                format!("unable to parse requirement: values[0][a]: Invalid value: \"{}\": must be no more than 63 bytes", "v".repeat(64)),
            ),
            // Values are sorted before they are validated, so the indexes are the sorted ones.
            ("a in (b,-c)", format!("unable to parse requirement: values[0][a]: Invalid value: \"-c\": {VALUE_REGEX}")),
            (
                "a in (z,-d,-c)",
                format!("unable to parse requirement: [values[0][a]: Invalid value: \"-c\": {VALUE_REGEX}, values[1][a]: Invalid value: \"-d\": {VALUE_REGEX}]"),
            ),
            ("a notin (x y", "unable to parse requirement: found 'y', expected: ',' or ')'".into()),
            // The parser validates keys itself, with a nil path.
            ("-a", format!("unable to parse requirement: <nil>: Invalid value: \"-a\": {NAME_PART_REGEX}")),
            ("!-a", format!("unable to parse requirement: <nil>: Invalid value: \"-a\": {NAME_PART_REGEX}")),
            ("-a=b", format!("unable to parse requirement: <nil>: Invalid value: \"-a\": {NAME_PART_REGEX}")),
            ("/a", "unable to parse requirement: <nil>: Invalid value: \"/a\": prefix part must be non-empty".into()),
            ("A.com/a", format!("unable to parse requirement: <nil>: Invalid value: \"A.com/a\": {PREFIX_REGEX}")),
            ("a/", format!("unable to parse requirement: <nil>: Invalid value: \"a/\": name part must be non-empty; {NAME_PART_REGEX}")),
            (
                "a/b/c=d",
                "unable to parse requirement: <nil>: Invalid value: \"a/b/c\": a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')".into(),
            ),
            (
                &"k".repeat(64),
                format!("unable to parse requirement: <nil>: Invalid value: \"{}\": name part must be no more than 63 bytes", "k".repeat(64)),
            ),
            ("é", format!("unable to parse requirement: <nil>: Invalid value: \"é\": {NAME_PART_REGEX}")),
            ("a\"b", format!("unable to parse requirement: <nil>: Invalid value: \"a\\\"b\": {NAME_PART_REGEX}")),
            // The key is checked before anything after it.
            ("-a in (", format!("unable to parse requirement: <nil>: Invalid value: \"-a\": {NAME_PART_REGEX}")),
            // The first bad requirement wins.
            ("a=-b,-c", format!("unable to parse requirement: values[0][a]: Invalid value: \"-b\": {VALUE_REGEX}")),
        ];
        for (input, want) in cases {
            assert_eq!(parse_err(input), *want, "{input:?}");
        }
    }

    #[test]
    fn label_selector_golden_invalid_selector() {
        let case = golden("errors/list-invalid-labelselector-400.json");
        let selector = golden_query_param(&case, "labelSelector");
        assert_eq!(selector, "a in (x");
        let err = LabelSelector::parse(&selector).unwrap_err();
        assert_eq!(
            err.to_string(),
            case["response"]["body"]["message"].as_str().unwrap()
        );
    }

    #[test]
    fn label_selector_golden_set_based_list() {
        // labels: list-0 a=x; list-1 a=y; list-2 a=x,b=1; list-3 a=z; list-4 none
        let case = golden("list/configmaps-labelSelector-set.json");
        let sel = LabelSelector::parse(&golden_query_param(&case, "labelSelector")).unwrap();
        let objects = [
            ("list-0", json!({"a": "x"})),
            ("list-1", json!({"a": "y"})),
            ("list-2", json!({"a": "x", "b": "1"})),
            ("list-3", json!({"a": "z"})),
        ];
        let mut selected: Vec<&str> = objects
            .iter()
            .filter(|(_, l)| sel.matches(l.as_object()))
            .map(|(n, _)| *n)
            .collect();
        if sel.matches(None) {
            selected.push("list-4");
        }
        let want: Vec<&str> = case["response"]["body"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(selected, want);
    }

    // ---- label selector matching ----------------------------------------------------------

    #[test]
    fn label_selector_matches_table() {
        let set = labels(&[
            ("x", "y"),
            ("z", "w"),
            ("n", "5"),
            ("e", ""),
            ("big", "050"),
            ("s", "abc"),
        ]);
        let yes = [
            "",
            "x=y",
            "x==y",
            "x!=z",
            "a!=z",
            "x",
            "!a",
            "x in (y,q)",
            "x notin (q)",
            "a notin (q)",
            "x=y,z=w",
            "x=y,!a",
            "n>4",
            "n<6",
            "n>0",
            "big>49",
            "big<51",
            "e=",
            "e",
            "e in ()",
            "e in (,q)",
            "e notin (q)",
            "x notin ()",
            "!in",
            "z in (w)",
        ];
        let no = [
            "x=z",
            "x!=y",
            "a",
            "!x",
            "x in (q)",
            "x notin (y)",
            "a in (q)",
            "a=b",
            "x=y,z=q",
            "n>5",
            "n<5",
            "m>1",
            "m<1",
            "s>1",
            "s<1",
            "e!=",
            "a=",
            "e notin ()",
            "x=Y",
        ];
        for s in yes {
            let sel = LabelSelector::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"));
            assert!(sel.matches(Some(&set)), "{s:?} should match");
            let btree: BTreeMap<String, String> = set
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            assert!(
                sel.matches_labels(&btree),
                "{s:?} should match the BTreeMap"
            );
        }
        for s in no {
            let sel = LabelSelector::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"));
            assert!(!sel.matches(Some(&set)), "{s:?} should not match");
        }
    }

    #[test]
    fn label_selector_matches_missing_labels() {
        // An object without labels: only negative requirements hold.
        for (s, want) in [
            ("", true),
            ("!a", true),
            ("a notin (b)", true),
            ("a!=b", true),
            ("a", false),
            ("a=b", false),
            ("a in (b)", false),
            ("a>1", false),
            ("a<1", false),
            ("a=", false),
        ] {
            let sel = LabelSelector::parse(s).unwrap();
            assert_eq!(sel.matches(None), want, "{s:?}");
            assert_eq!(sel.matches(Some(&Map::new())), want, "{s:?}");
            assert_eq!(sel.matches_labels(&BTreeMap::new()), want, "{s:?}");
            assert_eq!(
                sel.matches_object(&json!({"metadata": {"name": "n"}})),
                want,
                "{s:?}"
            );
        }
    }

    #[test]
    fn label_selector_ignores_non_string_label_values() {
        let set: Map<String, Value> = json!({"a": 1, "b": "1"}).as_object().unwrap().clone();
        assert!(!LabelSelector::parse("a").unwrap().matches(Some(&set)));
        assert!(LabelSelector::parse("b").unwrap().matches(Some(&set)));
    }

    #[test]
    fn label_selector_gt_lt_use_int64() {
        let set = labels(&[
            ("n", "9223372036854775807"),
            ("m", "-9223372036854775808"),
            ("o", "+3"),
        ]);
        assert!(LabelSelector::parse("n>9223372036854775806")
            .unwrap()
            .matches(Some(&set)));
        assert!(!LabelSelector::parse("n>9223372036854775807")
            .unwrap()
            .matches(Some(&set)));
        assert!(LabelSelector::parse("m<0").unwrap().matches(Some(&set)));
        assert!(
            LabelSelector::parse("o>2").unwrap().matches(Some(&set)),
            "Go's ParseInt takes a leading '+'"
        );
        let overflow = labels(&[("n", "9223372036854775808")]);
        assert!(!LabelSelector::parse("n>1")
            .unwrap()
            .matches(Some(&overflow)));
        assert!(!LabelSelector::parse("n<1")
            .unwrap()
            .matches(Some(&overflow)));
    }

    #[test]
    fn label_selector_object_and_accessors() {
        let sel = LabelSelector::parse("app=web,tier in (fe),!canary").unwrap();
        assert!(!sel.is_empty());
        assert!(!sel.matches_nothing());
        assert!(sel.matches_object(&json!({"metadata": {"labels": {"app": "web", "tier": "fe"}}})));
        assert!(!sel.matches_object(
            &json!({"metadata": {"labels": {"app": "web", "tier": "fe", "canary": "1"}}})
        ));
        let keys: Vec<&str> = sel.requirements().iter().map(Requirement::key).collect();
        assert_eq!(keys, ["app", "canary", "tier"]);
        assert_eq!(sel.requires_exact_match("app"), Some("web"));
        assert_eq!(sel.requires_exact_match("tier"), Some("fe"));
        assert_eq!(sel.requires_exact_match("canary"), None);
        assert_eq!(sel.requires_exact_match("other"), None);
        assert_eq!(
            LabelSelector::parse("a in (b,c)")
                .unwrap()
                .requires_exact_match("a"),
            None
        );
        assert_eq!(
            LabelSelector::parse("a==b")
                .unwrap()
                .requires_exact_match("a"),
            Some("b")
        );
        assert_eq!(
            LabelSelector::parse("a!=b")
                .unwrap()
                .requires_exact_match("a"),
            None
        );

        assert!(LabelSelector::everything().is_empty());
        assert!(LabelSelector::everything().matches(None));
        assert!(LabelSelector::parse("").unwrap().is_empty());
        assert_eq!(
            LabelSelector::parse("").unwrap(),
            LabelSelector::everything()
        );
        let nothing = LabelSelector::nothing();
        assert!(!nothing.is_empty());
        assert!(nothing.matches_nothing());
        assert!(!nothing.matches(None));
        assert!(!nothing.matches(Some(&labels(&[("a", "b")]))));
        assert!(!nothing.matches_labels(&BTreeMap::new()));
        assert_eq!(nothing.to_string(), "");
    }

    #[test]
    fn label_selector_from_set() {
        let sel = LabelSelector::from_set([("b", "2"), ("a", "1")]);
        assert_eq!(sel.to_string(), "a=1,b=2");
        assert!(sel.matches(Some(&labels(&[("a", "1"), ("b", "2"), ("c", "3")]))));
        assert!(!sel.matches(Some(&labels(&[("a", "1")]))));
        assert!(LabelSelector::from_set([]).is_empty());
    }

    #[test]
    fn requirement_new_validates() {
        assert!(Requirement::new("a", Operator::In, vec!["b".into()]).is_ok());
        assert_eq!(
            Requirement::new("a", Operator::Equals, vec![])
                .unwrap_err()
                .0,
            "values: Invalid value: null: exact-match compatibility requires one single value"
        );
        assert_eq!(
            Requirement::new("a", Operator::NotEquals, vec!["x".into(), "y".into()]).unwrap_err().0,
            "values: Invalid value: [\"x\",\"y\"]: exact-match compatibility requires one single value"
        );
        assert_eq!(
            Requirement::new("a", Operator::GreaterThan, vec!["1".into(), "2".into()]).unwrap_err().0,
            "values: Invalid value: [\"1\",\"2\"]: for 'Gt', 'Lt' operators, exactly one value is required"
        );
        assert_eq!(
            Requirement::new("a", Operator::DoesNotExist, vec!["<b>".into()]).unwrap_err().0,
            format!("[values: Invalid value: [\"\\u003cb\\u003e\"]: values set must be empty for exists and does not exist, values[0][a]: Invalid value: \"<b>\": {VALUE_REGEX}]")
        );
        assert_eq!(Operator::GreaterThan.as_str(), "gt");
        assert_eq!(Operator::DoesNotExist.as_str(), "!");
    }

    // ---- metav1.LabelSelector JSON ---------------------------------------------------------

    #[test]
    fn label_selector_json_conversion() {
        let sel = LabelSelector::from_label_selector_json(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["fe", "be"]},
                {"key": "env", "operator": "NotIn", "values": ["prod"]},
                {"key": "team", "operator": "Exists"},
                {"key": "canary", "operator": "DoesNotExist", "values": []}
            ]
        }))
        .unwrap();
        assert_eq!(
            sel.to_string(),
            "app=web,!canary,env notin (prod),team,tier in (be,fe)"
        );
        let ok = labels(&[("app", "web"), ("tier", "be"), ("team", "t")]);
        assert!(sel.matches(Some(&ok)));
        let mut bad = ok.clone();
        bad.insert("env".into(), json!("prod"));
        assert!(!sel.matches(Some(&bad)));
        let mut bad = ok.clone();
        bad.insert("canary".into(), json!("yes"));
        assert!(!sel.matches(Some(&bad)));
        let mut bad = ok.clone();
        bad.remove("team");
        assert!(!sel.matches(Some(&bad)));
        // matchLabels and an In expression agree with the string syntax.
        assert_eq!(
            LabelSelector::from_label_selector_json(&json!({"matchLabels": {"b": "2", "a": "1"}}))
                .unwrap(),
            LabelSelector::parse("a=1,b=2").unwrap()
        );
    }

    #[test]
    fn label_selector_json_null_and_empty() {
        let nothing = LabelSelector::from_label_selector_json(&Value::Null).unwrap();
        assert!(nothing.matches_nothing());
        assert!(!nothing.matches(None));
        for empty in [
            json!({}),
            json!({"matchLabels": {}}),
            json!({"matchLabels": null, "matchExpressions": []}),
        ] {
            let sel = LabelSelector::from_label_selector_json(&empty).unwrap();
            assert!(sel.is_empty(), "{empty}");
            assert!(sel.matches(None));
        }
    }

    #[test]
    fn label_selector_json_errors() {
        let cases: Vec<(Value, String)> = vec![
            (json!({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}), "\"Gt\" is not a valid label selector operator".into()),
            (json!({"matchExpressions": [{"key": "a", "operator": "in", "values": ["1"]}]}), "\"in\" is not a valid label selector operator".into()),
            (json!({"matchExpressions": [{"key": "a"}]}), "\"\" is not a valid label selector operator".into()),
            (json!({"matchExpressions": [{"key": "a", "operator": "In"}]}), "values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty".into()),
            (json!({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": []}]}), "values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty".into()),
            (json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}), "values: Invalid value: [\"x\"]: values set must be empty for exists and does not exist".into()),
            (json!({"matchExpressions": [{"key": "a", "operator": "DoesNotExist", "values": ["x", "y"]}]}), "values: Invalid value: [\"x\",\"y\"]: values set must be empty for exists and does not exist".into()),
            (json!({"matchExpressions": [{"key": "a b", "operator": "Exists"}]}), format!("key: Invalid value: \"a b\": {NAME_PART_REGEX}")),
            (json!({"matchExpressions": [{"operator": "Exists"}]}), format!("key: Invalid value: \"\": name part must be non-empty; {NAME_PART_REGEX}")),
            (json!({"matchExpressions": [{"key": "a", "operator": "In", "values": ["ok", "-bad"]}]}), format!("values[1][a]: Invalid value: \"-bad\": {VALUE_REGEX}")),
            (json!({"matchLabels": {"a": "b c"}}), format!("values[0][a]: Invalid value: \"b c\": {VALUE_REGEX}")),
            (json!({"matchLabels": {"-a": "-b"}}), format!("[key: Invalid value: \"-a\": {NAME_PART_REGEX}, values[0][-a]: Invalid value: \"-b\": {VALUE_REGEX}]")),
            // matchLabels are converted before matchExpressions, in key order.
            (json!({"matchLabels": {"z": "-z", "y": "-y"}, "matchExpressions": [{"key": "a", "operator": "Bad"}]}), format!("values[0][y]: Invalid value: \"-y\": {VALUE_REGEX}")),
            (json!({"matchExpressions": [{"key": "a", "operator": "Bad"}, {"key": "-b", "operator": "Exists"}]}), "\"Bad\" is not a valid label selector operator".into()),
        ];
        for (input, want) in cases {
            assert_eq!(
                LabelSelector::from_label_selector_json(&input)
                    .unwrap_err()
                    .0,
                want,
                "{input}"
            );
        }
    }

    #[test]
    fn label_selector_json_wrong_types_are_errors() {
        for bad in [
            json!("a=b"),
            json!(1),
            json!([]),
            json!({"matchLabels": []}),
            json!({"matchLabels": {"a": 1}}),
            json!({"matchExpressions": {}}),
            json!({"matchExpressions": [1]}),
            json!({"matchExpressions": [{"key": 1, "operator": "Exists"}]}),
            json!({"matchExpressions": [{"key": "a", "operator": "In", "values": "x"}]}),
            json!({"matchExpressions": [{"key": "a", "operator": "In", "values": [1]}]}),
        ] {
            assert!(
                LabelSelector::from_label_selector_json(&bad).is_err(),
                "{bad}"
            );
        }
        // null members read as Go's zero values.
        let sel = LabelSelector::from_label_selector_json(
            &json!({"matchExpressions": [{"key": "a", "operator": "In", "values": [null, "b"]}]}),
        )
        .unwrap();
        assert_eq!(sel.requirements()[0].values(), ["", "b"]);
    }

    // ---- field selectors -------------------------------------------------------------------

    fn field_err(s: &str, group: &str, resource: &str) -> String {
        match FieldSelector::parse(s, group, resource) {
            Ok(sel) => panic!("{s:?} parsed as {sel:?}"),
            Err(e) => e.0,
        }
    }

    #[test]
    fn field_selector_golden_unsupported_field() {
        let case = golden("errors/list-unsupported-fieldselector-400.json");
        let selector = golden_query_param(&case, "fieldSelector");
        let err = FieldSelector::parse(&selector, "", "configmaps").unwrap_err();
        assert_eq!(
            err.to_string(),
            case["response"]["body"]["message"].as_str().unwrap()
        );
        assert_eq!(err.to_string(), "\"data.k\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"");
    }

    #[test]
    fn field_selector_golden_lists() {
        let case = golden("list/configmaps-fieldSelector-name.json");
        let sel = FieldSelector::parse(
            &golden_query_param(&case, "fieldSelector"),
            "",
            "configmaps",
        )
        .unwrap();
        let names: Vec<String> = (0..5).map(|i| format!("list-{i}")).collect();
        let selected: Vec<&str> = names
            .iter()
            .filter(|n| sel.matches(&json!({"metadata": {"name": n, "namespace": "golden"}})))
            .map(String::as_str)
            .collect();
        assert_eq!(selected, ["list-3"]);
        assert_eq!(sel.exact_value("metadata.name"), Some("list-3"));

        let case = golden("list/pods-fieldSelector-nodeName.json");
        let sel =
            FieldSelector::parse(&golden_query_param(&case, "fieldSelector"), "", "pods").unwrap();
        for item in case["response"]["body"]["items"].as_array().unwrap() {
            assert!(sel.matches(item));
        }
        assert!(!sel.matches(&json!({"metadata": {"name": "unbound"}, "spec": {}})));
        assert!(!sel
            .matches(&json!({"metadata": {"name": "other"}, "spec": {"nodeName": "other-node"}})));
        assert_eq!(sel.exact_value("spec.nodeName"), Some("golden-node"));
    }

    #[test]
    fn field_selector_syntax() {
        let sel = FieldSelector::parse("metadata.name=a", "", "configmaps").unwrap();
        assert_eq!(
            sel.requirements(),
            [FieldRequirement {
                field: "metadata.name".into(),
                op: FieldOp::Equals,
                value: "a".into()
            }]
        );
        let sel = FieldSelector::parse("metadata.name==a", "", "configmaps").unwrap();
        assert_eq!(sel.requirements()[0].op, FieldOp::Equals);
        assert_eq!(sel.to_string(), "metadata.name=a");
        let sel = FieldSelector::parse("metadata.name!=a", "", "configmaps").unwrap();
        assert_eq!(sel.requirements()[0].op, FieldOp::NotEquals);
        assert_eq!(sel.exact_value("metadata.name"), None);
        // Terms are sorted.
        let sel = FieldSelector::parse("metadata.namespace=ns,metadata.name=a", "", "configmaps")
            .unwrap();
        assert_eq!(sel.to_string(), "metadata.name=a,metadata.namespace=ns");
        // Empty values, and "=" after the first operator only inside an escape.
        let sel = FieldSelector::parse("metadata.name=", "", "configmaps").unwrap();
        assert_eq!(sel.requirements()[0].value, "");
        // "!=" wins over "=" at the same position; "=!" is "=" followed by a value.
        let sel = FieldSelector::parse("metadata.name=!a", "", "configmaps").unwrap();
        assert_eq!(
            (
                sel.requirements()[0].op,
                sel.requirements()[0].value.as_str()
            ),
            (FieldOp::Equals, "!a")
        );
        // Empty terms are skipped.
        for empty in ["", ",", ",,,"] {
            assert!(
                FieldSelector::parse(empty, "", "pods").unwrap().is_empty(),
                "{empty:?}"
            );
        }
        let sel = FieldSelector::parse(",metadata.name=a,", "", "pods").unwrap();
        assert_eq!(sel.requirements().len(), 1);
        assert!(FieldSelector::everything().is_empty());
        assert!(FieldSelector::everything().matches(&json!({})));
    }

    /// Upstream's TestSplitTerms, TestSplitTerm and TestEscapeValue tables.
    #[test]
    fn field_selector_upstream_split_and_escape_tables() {
        let split: &[(&str, &[&str])] = &[
            ("a", &["a"]),
            ("a=avalue", &["a=avalue"]),
            ("a=avalue,b=bvalue", &["a=avalue", "b=bvalue"]),
            (
                "a=avalue,b==bvalue,c!=cvalue",
                &["a=avalue", "b==bvalue", "c!=cvalue"],
            ),
            ("", &[]),
            ("a=a,", &["a=a", ""]),
            (",a=a", &["", "a=a"]),
            (r"k=\,,k2=v2", &[r"k=\,", "k2=v2"]),
            (r"k=\\,k2=v2", &[r"k=\\", "k2=v2"]),
            (r"k=\\\,,k2=v2", &[r"k=\\\,", "k2=v2"]),
            (r"k=\a\b\", &[r"k=\a\b\"]),
            (r"k=\", &[r"k=\"]),
            ("함=수,목=록", &["함=수", "목=록"]),
        ];
        for (input, want) in split {
            assert_eq!(split_terms(input), *want, "{input:?}");
        }
        type Split<'a> = Option<(&'a str, FieldOp, &'a str)>;
        let term: &[(&str, Split)] = &[
            ("a=value", Some(("a", FieldOp::Equals, "value"))),
            ("b==value", Some(("b", FieldOp::Equals, "value"))),
            ("c!=value", Some(("c", FieldOp::NotEquals, "value"))),
            ("", None),
            ("a", None),
            (r"k=\,", Some(("k", FieldOp::Equals, r"\,"))),
            (r"k=\=", Some(("k", FieldOp::Equals, r"\="))),
            (
                r"k=\\\a\b\=\,\",
                Some(("k", FieldOp::Equals, r"\\\a\b\=\,\")),
            ),
            ("함=수", Some(("함", FieldOp::Equals, "수"))),
        ];
        for (input, want) in term {
            assert_eq!(split_term(input), *want, "{input:?}");
        }
        let escapes: &[(&str, &str)] = &[
            ("", ""),
            ("a", "a"),
            ("=", r"\="),
            (",", r"\,"),
            (r"\", r"\\"),
            (r"\=\,\", r"\\\=\\\,\\"),
        ];
        for (raw, escaped) in escapes {
            assert_eq!(escape_field_value(raw), *escaped);
            assert_eq!(unescape_field_value(escaped).unwrap(), *raw);
        }
        for bad in [r"\", r"\\\", r"\a"] {
            assert!(unescape_field_value(bad)
                .unwrap_err()
                .0
                .starts_with("invalid field selector: invalid escape sequence: "));
        }
    }

    #[test]
    fn field_selector_escapes() {
        let cases: &[(&str, &str, &str)] = &[
            (r"metadata.name=a\,b", "a,b", r"metadata.name=a\,b"),
            (r"metadata.name=a\=b", "a=b", r"metadata.name=a\=b"),
            (r"metadata.name=a\\b", r"a\b", r"metadata.name=a\\b"),
            (r"metadata.name=\\\,\=", r"\,=", r"metadata.name=\\\,\="),
            ("metadata.name=é", "é", "metadata.name=é"),
        ];
        for (input, value, canonical) in cases {
            let sel = FieldSelector::parse(input, "", "configmaps")
                .unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(sel.requirements()[0].value, *value, "{input:?}");
            assert_eq!(sel.to_string(), *canonical, "{input:?}");
            assert_eq!(
                FieldSelector::parse(&sel.to_string(), "", "configmaps").unwrap(),
                sel
            );
            assert!(sel.matches(&json!({"metadata": {"name": value}})));
        }
    }

    #[test]
    fn field_selector_error_messages() {
        let cases: &[(&str, &str, &str, &str)] = &[
            ("abc", "", "pods", "invalid selector: 'abc'; can't understand 'abc'"),
            ("metadata.name=a,b", "", "pods", "invalid selector: 'metadata.name=a,b'; can't understand 'b'"),
            // Terms are checked in sorted order: "a" sorts before "metadata.name=x".
            ("metadata.name=x,a", "", "pods", "invalid selector: 'metadata.name=x,a'; can't understand 'a'"),
            (r"metadata.name=a\b", "", "pods", r"invalid field selector: invalid escape sequence: \b"),
            (r"metadata.name=a\", "", "pods", r"invalid field selector: invalid escape sequence: \"),
            (r"metadata.name=a\é", "", "pods", r"invalid field selector: invalid escape sequence: \é"),
            ("metadata.name=a=b", "", "pods", "invalid field selector: unescaped character in value: 61"),
            // The escape is not honoured when the term is split at its operator.
            (r"a\=b=c", "", "pods", "invalid field selector: unescaped character in value: 61"),
            // A syntax error anywhere beats an unsupported field.
            ("data.k=v,zzz", "", "configmaps", "invalid selector: 'data.k=v,zzz'; can't understand 'zzz'"),
            // Unsupported fields: the first in sorted order is reported.
            ("z.z=1,data.k=v", "", "configmaps", "\"data.k\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""),
            ("metadata.name = x", "", "configmaps", "\"metadata.name \" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""),
            ("=x", "", "configmaps", "\"\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""),
            ("status.replicas=0", "apps", "replicasets", "\"status.replicas\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""),
            ("spec.x\"y=1", "apps", "deployments", "\"spec.x\\\"y\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""),
            ("spec.nodeName=a,foo=bar", "", "pods", "field label not supported: foo"),
            ("metadata.namespace=x", "", "nodes", "field label not supported: metadata.namespace"),
            ("metadata.namespace=x", "", "namespaces", "field label not supported: metadata.namespace"),
            ("spec.type=x", "", "secrets", "field label not supported: spec.type"),
            ("involvedObject.kind=Pod", "events.k8s.io", "events", "field label not supported: involvedObject.kind"),
            ("regarding.kind=Pod", "", "events", "field label not supported: regarding.kind"),
            ("metadata.namespace=x", "certificates.k8s.io", "certificatesigningrequests", "field label not supported: metadata.namespace"),
            ("status.active=1", "batch", "jobs", "field label \"status.active\" not supported for Job"),
            ("status.successful=1", "batch", "cronjobs", "\"status.successful\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""),
            ("spec.pool=x", "resource.k8s.io", "resourceslices", "field label not supported for resource.k8s.io/v1, Kind=ResourceSlice: spec.pool"),
        ];
        for (input, group, resource, want) in cases {
            assert_eq!(
                field_err(input, group, resource),
                *want,
                "{input:?} on {group}/{resource}"
            );
        }
    }

    #[test]
    fn supported_fields_per_resource() {
        assert_eq!(
            supported_fields("", "configmaps"),
            ["metadata.name", "metadata.namespace"]
        );
        assert_eq!(
            supported_fields("apps", "deployments"),
            ["metadata.name", "metadata.namespace"]
        );
        assert_eq!(
            supported_fields("example.com", "widgets"),
            ["metadata.name", "metadata.namespace"]
        );
        assert_eq!(
            supported_fields("", "pods"),
            [
                "metadata.name",
                "metadata.namespace",
                "spec.nodeName",
                "spec.restartPolicy",
                "spec.schedulerName",
                "spec.serviceAccountName",
                "spec.hostNetwork",
                "status.phase",
                "status.podIP",
                "status.podIPs",
                "status.nominatedNodeName",
                "spec.host",
            ]
        );
        assert_eq!(
            supported_fields("core", "pods"),
            supported_fields("", "pods")
        );
        assert_eq!(
            supported_fields("", "nodes"),
            ["metadata.name", "spec.unschedulable"]
        );
        assert_eq!(
            supported_fields("", "namespaces"),
            ["status.phase", "metadata.name"]
        );
        assert_eq!(
            supported_fields("", "secrets"),
            ["type", "metadata.namespace", "metadata.name"]
        );
        assert_eq!(
            supported_fields("", "services"),
            [
                "metadata.namespace",
                "metadata.name",
                "spec.clusterIP",
                "spec.type"
            ]
        );
        assert_eq!(
            supported_fields("", "replicationcontrollers"),
            ["metadata.name", "metadata.namespace", "status.replicas"]
        );
        assert_eq!(
            supported_fields("batch", "jobs"),
            ["metadata.name", "metadata.namespace", "status.successful"]
        );
        assert_eq!(
            supported_fields("certificates.k8s.io", "certificatesigningrequests"),
            ["metadata.name", "spec.signerName"]
        );
        assert_eq!(
            supported_fields("resource.k8s.io", "resourceslices"),
            ["metadata.name", "spec.nodeName", "spec.driver"]
        );
        assert!(supported_fields("", "events").contains(&"involvedObject.uid"));
        assert!(supported_fields("events.k8s.io", "events").contains(&"regarding.name"));
        // Every supported field parses.
        for (group, resource) in [
            ("", "pods"),
            ("", "nodes"),
            ("", "events"),
            ("events.k8s.io", "events"),
            ("batch", "jobs"),
            ("resource.k8s.io", "resourceslices"),
            ("certificates.k8s.io", "podcertificaterequests"),
            ("", "configmaps"),
        ] {
            for field in supported_fields(group, resource) {
                assert!(
                    FieldSelector::parse(&format!("{field}=x"), group, resource).is_ok(),
                    "{group}/{resource} {field}"
                );
            }
        }
    }

    #[test]
    fn pod_fields() {
        let pod = json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {"nodeName": "n1", "restartPolicy": "Always", "schedulerName": "default-scheduler", "serviceAccountName": "sa", "hostNetwork": true},
            "status": {"phase": "Running", "podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}], "nominatedNodeName": "n2"}
        });
        let bare = json!({"metadata": {"name": "q", "namespace": "ns"}, "spec": {}});
        let cases: &[(&str, &str, &str)] = &[
            ("metadata.name", "p", "q"),
            ("metadata.namespace", "ns", "ns"),
            ("spec.nodeName", "n1", ""),
            ("spec.host", "n1", ""),
            ("spec.restartPolicy", "Always", ""),
            ("spec.schedulerName", "default-scheduler", ""),
            ("spec.serviceAccountName", "sa", ""),
            ("spec.hostNetwork", "true", "false"),
            ("status.phase", "Running", ""),
            ("status.podIP", "10.0.0.1", ""),
            ("status.podIPs", "", ""),
            ("status.nominatedNodeName", "n2", ""),
        ];
        for (field, full, empty) in cases {
            assert_eq!(
                field_value("", "pods", &pod, field).as_deref(),
                Some(*full),
                "{field}"
            );
            assert_eq!(
                field_value("", "pods", &bare, field).as_deref(),
                Some(*empty),
                "{field}"
            );
            let sel = FieldSelector::parse(&format!("{field}={full}"), "", "pods").unwrap();
            assert!(sel.matches(&pod), "{field}={full}");
            assert_eq!(
                sel.matches(&bare),
                full == empty,
                "{field}={full} on the bare pod"
            );
            let sel = FieldSelector::parse(&format!("{field}!={full}"), "", "pods").unwrap();
            assert!(!sel.matches(&pod), "{field}!={full}");
        }
        assert_eq!(field_value("", "pods", &pod, "spec.containers"), None);
        // podIPs[0] stands in for a missing podIP.
        let only_ips = json!({"status": {"podIPs": [{"ip": "fd00::2"}]}});
        assert_eq!(
            field_value("", "pods", &only_ips, "status.podIP").as_deref(),
            Some("fd00::2")
        );
        // spec.host is converted, so the kubelet optimisation sees spec.nodeName.
        let sel = FieldSelector::parse("spec.host=n1", "", "pods").unwrap();
        assert_eq!(sel.requirements()[0].field, "spec.nodeName");
        assert_eq!(sel.exact_value("spec.nodeName"), Some("n1"));
        assert_eq!(sel.exact_value("spec.host"), Some("n1"));
        assert_eq!(sel.to_string(), "spec.nodeName=n1");
        // kubelet-style selectors.
        let sel = FieldSelector::parse(
            "spec.nodeName=n1,status.phase!=Succeeded,status.phase!=Failed",
            "",
            "pods",
        )
        .unwrap();
        assert!(sel.matches(&pod));
        assert_eq!(sel.exact_value("spec.nodeName"), Some("n1"));
        assert_eq!(sel.exact_value("status.phase"), None);
        let mut done = pod.clone();
        done["status"]["phase"] = json!("Succeeded");
        assert!(!sel.matches(&done));
        // Unscheduled pods: spec.nodeName= matches.
        assert!(FieldSelector::parse("spec.nodeName=", "", "pods")
            .unwrap()
            .matches(&bare));
    }

    #[test]
    fn other_builtin_fields() {
        let cases: Vec<(&str, &str, Value, &str, &str)> = vec![
            (
                "",
                "nodes",
                json!({"metadata": {"name": "n"}, "spec": {"unschedulable": true}}),
                "spec.unschedulable",
                "true",
            ),
            (
                "",
                "nodes",
                json!({"metadata": {"name": "n"}, "spec": {}}),
                "spec.unschedulable",
                "false",
            ),
            (
                "",
                "nodes",
                json!({"metadata": {"name": "n"}}),
                "metadata.name",
                "n",
            ),
            (
                "",
                "replicationcontrollers",
                json!({"status": {"replicas": 3}}),
                "status.replicas",
                "3",
            ),
            (
                "",
                "replicationcontrollers",
                json!({"status": {}}),
                "status.replicas",
                "0",
            ),
            (
                "",
                "namespaces",
                json!({"metadata": {"name": "x"}, "status": {"phase": "Terminating"}}),
                "status.phase",
                "Terminating",
            ),
            (
                "",
                "namespaces",
                json!({"metadata": {"name": "x"}}),
                "metadata.name",
                "x",
            ),
            (
                "",
                "persistentvolumes",
                json!({"metadata": {"name": "pv"}}),
                "metadata.namespace",
                "",
            ),
            (
                "",
                "secrets",
                json!({"type": "kubernetes.io/tls"}),
                "type",
                "kubernetes.io/tls",
            ),
            (
                "",
                "services",
                json!({"spec": {"clusterIP": "None", "type": "ClusterIP"}}),
                "spec.clusterIP",
                "None",
            ),
            (
                "",
                "services",
                json!({"spec": {"clusterIP": "None", "type": "ClusterIP"}}),
                "spec.type",
                "ClusterIP",
            ),
            (
                "batch",
                "jobs",
                json!({"status": {"succeeded": 2}}),
                "status.successful",
                "2",
            ),
            ("batch", "jobs", json!({}), "status.successful", "0"),
            (
                "certificates.k8s.io",
                "certificatesigningrequests",
                json!({"spec": {"signerName": "kubernetes.io/kubelet-serving"}}),
                "spec.signerName",
                "kubernetes.io/kubelet-serving",
            ),
            (
                "certificates.k8s.io",
                "podcertificaterequests",
                json!({"spec": {"podName": "p", "nodeName": "n"}}),
                "spec.nodeName",
                "n",
            ),
            (
                "resource.k8s.io",
                "resourceslices",
                json!({"spec": {"nodeName": "n", "driver": "gpu.example.com"}}),
                "spec.driver",
                "gpu.example.com",
            ),
            (
                "resource.k8s.io",
                "resourceslices",
                json!({"spec": {"allNodes": true, "driver": "d"}}),
                "spec.nodeName",
                "",
            ),
            (
                "",
                "configmaps",
                json!({"metadata": {"name": "c", "namespace": "ns"}}),
                "metadata.namespace",
                "ns",
            ),
            (
                "rbac.authorization.k8s.io",
                "clusterroles",
                json!({"metadata": {"name": "c"}}),
                "metadata.namespace",
                "",
            ),
        ];
        for (group, resource, obj, field, want) in cases {
            assert_eq!(
                field_value(group, resource, &obj, field).as_deref(),
                Some(want),
                "{group}/{resource} {field}"
            );
            let sel = FieldSelector::parse(
                &format!("{field}={}", escape_field_value(want)),
                group,
                resource,
            )
            .unwrap();
            assert!(sel.matches(&obj), "{group}/{resource} {field}={want}");
            let sel = FieldSelector::parse(&format!("{field}=other"), group, resource).unwrap();
            assert!(!sel.matches(&obj), "{group}/{resource} {field}=other");
        }
        assert_eq!(field_value("", "configmaps", &json!({}), "data.k"), None);
        assert_eq!(
            field_value(
                "apps",
                "replicasets",
                &json!({"status": {"replicas": 1}}),
                "status.replicas"
            ),
            None
        );
    }

    #[test]
    fn event_fields_core_and_events_k8s_io() {
        let core = json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "e", "namespace": "ns"},
            "involvedObject": {"kind": "Pod", "namespace": "ns", "name": "p", "uid": "u1", "apiVersion": "v1", "resourceVersion": "7", "fieldPath": "spec.containers{c}"},
            "reason": "Started", "type": "Normal", "source": {"component": "kubelet"}, "reportingComponent": "kubelet-rc"
        });
        for (field, want) in [
            ("involvedObject.kind", "Pod"),
            ("involvedObject.namespace", "ns"),
            ("involvedObject.name", "p"),
            ("involvedObject.uid", "u1"),
            ("involvedObject.apiVersion", "v1"),
            ("involvedObject.resourceVersion", "7"),
            ("involvedObject.fieldPath", "spec.containers{c}"),
            ("reason", "Started"),
            ("type", "Normal"),
            ("source", "kubelet"),
            ("reportingComponent", "kubelet-rc"),
            ("metadata.name", "e"),
            ("metadata.namespace", "ns"),
        ] {
            assert_eq!(
                field_value("", "events", &core, field).as_deref(),
                Some(want),
                "{field}"
            );
        }
        // source falls back to the reporting controller.
        let no_source = json!({"apiVersion": "v1", "reportingComponent": "ctrl"});
        assert_eq!(
            field_value("", "events", &no_source, "source").as_deref(),
            Some("ctrl")
        );

        let sel = FieldSelector::parse(
            "involvedObject.name=p,involvedObject.kind=Pod,type!=Warning",
            "",
            "events",
        )
        .unwrap();
        assert!(sel.matches(&core));

        // events.k8s.io: its own labels, converted to the core field set, read from either shape.
        let v1 = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e", "namespace": "ns"},
            "regarding": {"kind": "Pod", "name": "p", "uid": "u1"},
            "reason": "Started", "type": "Normal", "reportingController": "kubelet", "deprecatedSource": {}
        });
        let sel = FieldSelector::parse(
            "regarding.name=p,regarding.kind=Pod,reportingController=kubelet,source=kubelet",
            "events.k8s.io",
            "events",
        )
        .unwrap();
        let fields: Vec<&str> = sel
            .requirements()
            .iter()
            .map(|r| r.field.as_str())
            .collect();
        assert_eq!(
            fields,
            [
                "involvedObject.kind",
                "involvedObject.name",
                "reportingComponent",
                "source"
            ]
        );
        assert!(sel.matches(&v1));
        let mut other = v1.clone();
        other["regarding"]["name"] = json!("q");
        assert!(!sel.matches(&other));
        let core_shape = json!({"apiVersion": "v1", "involvedObject": {"kind": "Pod", "name": "p"}, "reportingComponent": "kubelet", "source": {"component": "kubelet"}});
        assert!(sel.matches(&core_shape));
        assert_eq!(sel.exact_value("regarding.name"), Some("p"));
        assert_eq!(sel.exact_value("involvedObject.name"), Some("p"));
        assert_eq!(
            field_value("events.k8s.io", "events", &v1, "regarding.uid").as_deref(),
            Some("u1")
        );
        assert_eq!(
            field_value("events.k8s.io", "events", &v1, "reportingController").as_deref(),
            Some("kubelet")
        );
        assert_eq!(field_value("events.k8s.io", "events", &v1, "note"), None);
    }

    #[test]
    fn custom_resource_field_selectors() {
        let fields = vec![
            ".spec.color".to_string(),
            "spec.size".to_string(),
            ".spec.enabled".to_string(),
            ".status.ratio".to_string(),
        ];
        let obj = json!({"metadata": {"name": "w", "namespace": "ns"}, "spec": {"color": "red", "size": 3, "enabled": false}, "status": {"ratio": 0.5}});
        let sel = FieldSelector::parse_custom_resource(
            "spec.color=red,spec.size=3,spec.enabled=false,metadata.name=w",
            true,
            &fields,
        )
        .unwrap();
        assert!(sel.matches(&obj));
        assert_eq!(sel.exact_value("spec.color"), Some("red"));
        assert!(
            FieldSelector::parse_custom_resource("status.ratio=0.5", true, &fields)
                .unwrap()
                .matches(&obj)
        );
        assert!(
            !FieldSelector::parse_custom_resource("spec.color=blue", true, &fields)
                .unwrap()
                .matches(&obj)
        );
        assert!(
            FieldSelector::parse_custom_resource("spec.color=", true, &fields)
                .unwrap()
                .matches(&json!({"spec": {}}))
        );
        assert!(
            FieldSelector::parse_custom_resource("metadata.namespace=ns", true, &fields)
                .unwrap()
                .matches(&obj)
        );
        assert_eq!(
            FieldSelector::parse_custom_resource("metadata.namespace=ns", false, &fields)
                .unwrap_err()
                .0,
            "field label not supported: metadata.namespace"
        );
        assert_eq!(
            FieldSelector::parse_custom_resource("spec.shape=round", true, &fields)
                .unwrap_err()
                .0,
            "field label not supported: spec.shape"
        );
        assert_eq!(
            FieldSelector::parse_custom_resource("spec.color", true, &fields)
                .unwrap_err()
                .0,
            "invalid selector: 'spec.color'; can't understand 'spec.color'"
        );
    }

    // ---- robustness --------------------------------------------------------------------------

    /// A small deterministic generator (xorshift64*), so the fuzz tests need no crate.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    const PIECES: &[&str] = &[
        "a",
        "b",
        "x",
        "k8s.io/",
        "/",
        ".",
        "-",
        "_",
        "0",
        "9",
        "=",
        "==",
        "!=",
        "!",
        "(",
        ")",
        ",",
        " ",
        "\t",
        "\n",
        "in",
        "notin",
        ">",
        "<",
        "\\",
        "\\,",
        "\\=",
        "\u{0}",
        "é",
        "\u{a0}",
        "😀",
        "metadata.name",
        "spec.nodeName",
        "status.phase",
        "\"",
        "'",
        "~",
        "||",
        "in (",
        "notin (",
    ];

    fn random_selector(rng: &mut Rng) -> String {
        let len = rng.below(24);
        (0..len).map(|_| PIECES[rng.below(PIECES.len())]).collect()
    }

    fn random_bytes(rng: &mut Rng) -> String {
        let len = rng.below(32);
        let bytes: Vec<u8> = (0..len).map(|_| (rng.next() & 0xff) as u8).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[test]
    fn fuzz_label_selectors_never_panic_and_round_trip() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let set = labels(&[("a", "b"), ("x", "1"), ("k8s.io/a", "")]);
        let mut parsed = 0;
        for i in 0..40_000 {
            let input = if i % 4 == 0 {
                random_bytes(&mut rng)
            } else {
                random_selector(&mut rng)
            };
            match LabelSelector::parse(&input) {
                Ok(sel) => {
                    parsed += 1;
                    let _ = sel.matches(Some(&set));
                    let _ = sel.matches(None);
                    let canonical = sel.to_string();
                    let again = LabelSelector::parse(&canonical)
                        .unwrap_or_else(|e| panic!("{input:?} -> {canonical:?}: {e}"));
                    assert_eq!(again, sel, "{input:?} -> {canonical:?}");
                }
                Err(e) => assert!(!e.0.is_empty()),
            }
        }
        assert!(
            parsed > 1_000,
            "the generator should produce valid selectors too ({parsed})"
        );
    }

    #[test]
    fn fuzz_field_selectors_never_panic() {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        let kinds = [
            ("", "pods"),
            ("", "configmaps"),
            ("", "events"),
            ("events.k8s.io", "events"),
            ("batch", "jobs"),
            ("resource.k8s.io", "resourceslices"),
            ("", "nodes"),
        ];
        let objects = [
            json!({}),
            json!(null),
            json!([1]),
            json!({"metadata": 1, "spec": "x", "status": {"podIPs": "x"}}),
            json!({"metadata": {"name": "a"}, "spec": {"nodeName": "a", "hostNetwork": "yes"}, "status": {"replicas": 1.5, "succeeded": 1e300}}),
        ];
        let mut parsed = 0;
        for i in 0..40_000 {
            let input = if i % 4 == 0 {
                random_bytes(&mut rng)
            } else {
                random_selector(&mut rng)
            };
            let (group, resource) = kinds[i % kinds.len()];
            match FieldSelector::parse(&input, group, resource) {
                Ok(sel) => {
                    parsed += 1;
                    for obj in &objects {
                        let _ = sel.matches(obj);
                    }
                    let _ = sel.exact_value("metadata.name");
                    let again = FieldSelector::parse(&sel.to_string(), group, resource)
                        .unwrap_or_else(|e| panic!("{input:?} -> {}: {e}", sel));
                    assert_eq!(again, sel);
                }
                Err(e) => assert!(!e.0.is_empty()),
            }
            let _ =
                FieldSelector::parse_custom_resource(&input, i % 2 == 0, &["spec.a".to_string()]);
        }
        assert!(parsed > 100, "{parsed}");
        for obj in &objects {
            for (group, resource) in kinds {
                for field in supported_fields(group, resource) {
                    let _ = field_value(group, resource, obj, field);
                }
            }
        }
    }

    #[test]
    fn fuzz_label_selector_json_never_panics() {
        let mut rng = Rng(0xdead_beef_cafe_f00d);
        let scalars = [
            json!(null),
            json!(1),
            json!("In"),
            json!("Exists"),
            json!("a"),
            json!("-"),
            json!([]),
            json!({}),
            json!(["x"]),
            json!([1]),
        ];
        for _ in 0..10_000 {
            let mut expr = Map::new();
            for member in ["key", "operator", "values"] {
                if rng.below(3) > 0 {
                    expr.insert(member.into(), scalars[rng.below(scalars.len())].clone());
                }
            }
            let mut sel = Map::new();
            if rng.below(2) == 0 {
                sel.insert("matchExpressions".into(), json!([Value::Object(expr)]));
            }
            if rng.below(2) == 0 {
                sel.insert(
                    "matchLabels".into(),
                    json!({"a": scalars[rng.below(scalars.len())].clone()}),
                );
            }
            let _ = LabelSelector::from_label_selector_json(&Value::Object(sel));
        }
    }

    #[test]
    fn huge_and_pathological_inputs() {
        let long_value = format!("a={}", "b".repeat(1 << 20));
        assert!(parse_err(&long_value).contains("must be no more than 63 bytes"));
        assert!(LabelSelector::parse(&"(".repeat(100_000)).is_err());
        assert!(LabelSelector::parse(&")".repeat(100_000)).is_err());
        assert!(LabelSelector::parse(&"!".repeat(100_000)).is_err());
        assert!(LabelSelector::parse(&"=".repeat(100_000)).is_err());
        assert!(LabelSelector::parse(&" ".repeat(100_000))
            .unwrap()
            .is_empty());
        let many_values = format!("a in ({})", vec!["x"; 100_000].join(","));
        assert_eq!(
            LabelSelector::parse(&many_values).unwrap().requirements()[0].values(),
            ["x"]
        );
        let many_reqs: Vec<String> = (0..20_000).map(|i| format!("k{i}=v")).collect();
        assert_eq!(
            LabelSelector::parse(&many_reqs.join(","))
                .unwrap()
                .requirements()
                .len(),
            20_000
        );
        let unbalanced = format!("a in ({}", "x,".repeat(50_000));
        assert_eq!(
            parse_err(&unbalanced),
            "unable to parse requirement: found '', expected: ',', or identifier"
        );

        let long_field = format!("metadata.name={}", "n".repeat(1 << 20));
        let sel = FieldSelector::parse(&long_field, "", "configmaps").unwrap();
        assert_eq!(
            sel.exact_value("metadata.name").map(str::len),
            Some(1 << 20)
        );
        assert!(FieldSelector::parse(&",".repeat(100_000), "", "pods")
            .unwrap()
            .is_empty());
        assert!(FieldSelector::parse(&"\\".repeat(100_001), "", "pods").is_err());
        let many_terms: Vec<String> = (0..20_000).map(|i| format!("metadata.name=n{i}")).collect();
        assert_eq!(
            FieldSelector::parse(&many_terms.join(","), "", "pods")
                .unwrap()
                .requirements()
                .len(),
            20_000
        );
    }
}
