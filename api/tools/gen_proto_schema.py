#!/usr/bin/env python3
"""Generate api/src/proto_schema.rs: the Kubernetes protobuf schema table that
api/src/protobuf.rs uses to turn `application/vnd.kubernetes.protobuf` request
bodies into the JSON objects the same requests would carry as JSON.

Usage:
    python3 api/tools/gen_proto_schema.py UPSTREAM OPENAPI_V1_36 [OUT] [--k8s-pb SRC]

UPSTREAM is a folder holding the Kubernetes Go API modules of the emulated
release (v1.36: tags v0.36.0), each in a sub-folder named after its repository:
    UPSTREAM/api                       github.com/kubernetes/api
    UPSTREAM/apimachinery              github.com/kubernetes/apimachinery
    UPSTREAM/apiextensions-apiserver   github.com/kubernetes/apiextensions-apiserver
    UPSTREAM/kube-aggregator           github.com/kubernetes/kube-aggregator
(e.g. `git clone --depth 1 -b v0.36.0 <repo> UPSTREAM/<name>` for each).

OPENAPI_V1_36 is the `src/v1_36` folder of the k8s-openapi 0.29 crate
(`~/.cargo/registry/src/*/k8s-openapi-0.29.0/src/v1_36`).

OUT defaults to api/src/proto_schema.rs beside this script. The product never
reads any of these inputs: the generated table is committed.

Where each fact comes from:
  * field tags and protobuf types: the `generated.proto` files (the very files
    the k8s-pb crate is generated from);
  * JSON names, `omitempty`/`omitzero`, pointer-or-value and `json:",inline"`:
    the Go struct tags in the same packages. Go's protobuf marshaller writes
    every non-pointer scalar even when it is zero, while Go's JSON encoder drops
    zero values of `omitempty` fields; the table marks those fields so the
    decoder drops them too (a pointer field that is present stays, even when
    zero: `replicas: 0`, `runAsNonRoot: false`);
  * which (group, version, kind) exist in v1.36: k8s-openapi's `Resource`
    impls. The JSON names are cross-checked against k8s-openapi's Deserialize
    visitors; any difference is reported and fails the run.

With `--k8s-pb SRC` (the `src` folder of a k8s-pb crate) the tags and scalar
types of every emitted field are also cross-checked against k8s-pb's prost
attributes, and fields/messages that k8s-pb lacks are listed (k8s-pb 0.9.0 is
generated from Kubernetes 1.35.0).

Only messages reachable from a served v1.36 kind (plus the meta/v1 option and
status kinds accepted in every group version) are emitted.
"""

import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "..", "src", "proto_schema.rs")

# Go module folder -> proto package prefix.
MODULES = {
    "api": "k8s.io.api",
    "apimachinery": "k8s.io.apimachinery",
    "apiextensions-apiserver": "k8s.io.apiextensions_apiserver",
    "kube-aggregator": "k8s.io.kube_aggregator",
}

META = "k8s.io.apimachinery.pkg.apis.meta.v1"
APIEXT = "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1"

# Messages whose JSON form is not an object of their fields.
SPECIAL = {
    "k8s.io.apimachinery.pkg.api.resource.Quantity": "Quantity",
    "k8s.io.apimachinery.pkg.api.resource.QuantityValue": "Quantity",
    META + ".Time": "Time",
    META + ".MicroTime": "MicroTime",
    META + ".Duration": "Duration",
    META + ".FieldsV1": "RawJson",
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString": "IntOrString",
    "k8s.io.apimachinery.pkg.runtime.RawExtension": "RawExtension",
    APIEXT + ".JSON": "RawJson",
    APIEXT + ".JSONSchemaPropsOrArray": "OrArray",
    APIEXT + ".JSONSchemaPropsOrBool": "OrBool",
    APIEXT + ".JSONSchemaPropsOrStringArray": "OrStringArray",
}

# meta/v1 kinds that every group version accepts (metav1.AddToGroupVersion and
# the unversioned types), whatever the apiVersion says.
ANY_VERSION_KINDS = [
    "APIGroup", "APIGroupList", "APIResourceList", "APIVersions",
    "CreateOptions", "DeleteOptions", "GetOptions", "ListOptions",
    "PatchOptions", "Status", "UpdateOptions", "WatchEvent",
]
# meta.k8s.io/v1 kinds that k8s-openapi does not list as resources.
# (Table has no protobuf form.)
META_GROUP_KINDS = ["PartialObjectMetadata", "PartialObjectMetadataList"]

SCALARS = {"string": "Str", "bytes": "Bytes", "bool": "Bool",
           "int32": "I32", "int64": "I64", "double": "F64"}

warnings = []


def die(msg):
    sys.exit("gen_proto_schema: " + msg)


# ---------------------------------------------------------------- proto files

class ProtoField:
    def __init__(self, label, type_, name, tag, key=None):
        self.label = label  # optional | repeated | map
        self.type = type_   # scalar name or full message name
        self.name = name
        self.tag = tag
        self.key = key


class ProtoMessage:
    def __init__(self, full, pkg, name, fields, pkg_dir):
        self.full = full
        self.pkg = pkg
        self.name = name
        self.fields = fields
        self.pkg_dir = pkg_dir


def strip_proto_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


FIELD_RE = re.compile(r"^(optional|repeated|required)\s+([\w.]+)\s+(\w+)\s*=\s*(\d+)\s*(\[[^\]]*\])?$")
MAP_RE = re.compile(r"^map\s*<\s*(\w+)\s*,\s*([\w.]+)\s*>\s+(\w+)\s*=\s*(\d+)\s*(\[[^\]]*\])?$")


def parse_proto(path, messages):
    text = strip_proto_comments(open(path, encoding="utf-8").read())
    m = re.search(r"^\s*package\s+([\w.]+)\s*;", text, flags=re.M)
    if not m:
        die(f"{path}: no package")
    pkg = m.group(1)
    raw = []
    for mm in re.finditer(r"\bmessage\s+(\w+)\s*\{(.*?)\n\}", text, flags=re.S):
        name, body = mm.group(1), mm.group(2)
        if re.search(r"\b(message|enum|oneof)\s+\w+\s*\{", body):
            die(f"{path}: nested declarations in {name} are not supported")
        fields = []
        for stmt in body.split(";"):
            stmt = " ".join(stmt.split())
            if not stmt or stmt.startswith("option ") or stmt.startswith("reserved "):
                continue
            fm = FIELD_RE.match(stmt)
            mp = MAP_RE.match(stmt)
            if fm:
                label, type_, fname, tag = fm.group(1), fm.group(2), fm.group(3), int(fm.group(4))
                fields.append(ProtoField("repeated" if label == "repeated" else "optional",
                                         type_, fname, tag))
            elif mp:
                key, val, fname, tag = mp.group(1), mp.group(2), mp.group(3), int(mp.group(4))
                if key != "string":
                    die(f"{path}: {name}.{fname}: map key {key} unsupported")
                fields.append(ProtoField("map", val, fname, tag, key=key))
            else:
                die(f"{path}: cannot parse field in {name}: {stmt!r}")
        raw.append((name, fields))
    for name, fields in raw:
        for f in fields:
            if f.type in SCALARS:
                continue
            if f.type in ("float", "uint32", "uint64", "sint32", "sint64", "fixed32",
                          "fixed64", "sfixed32", "sfixed64"):
                die(f"{path}: {name}.{f.name}: scalar {f.type} unsupported")
            if f.type.startswith("."):
                f.type = f.type[1:]
            elif "." not in f.type:
                f.type = pkg + "." + f.type
        full = pkg + "." + name
        messages[full] = ProtoMessage(full, pkg, name, fields, os.path.dirname(path))


def load_protos(upstream):
    messages = {}
    for mod in MODULES:
        root = os.path.join(upstream, mod)
        if not os.path.isdir(root):
            die(f"missing {root}")
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames
                                 if d not in ("testdata", "testing", "test", "fuzzer", "vendor"))
            if "generated.proto" in filenames:
                parse_proto(os.path.join(dirpath, "generated.proto"), messages)
    return messages


# ---------------------------------------------------------------- Go structs

class GoField:
    def __init__(self, name, gotype, json_name, omitempty, omitzero, inline, tag, order):
        self.name = name
        self.gotype = gotype
        self.json = json_name
        self.omitempty = omitempty
        self.omitzero = omitzero
        self.inline = inline
        self.tag = tag
        self.order = order


TAG_RE = re.compile(r'(\w+):"([^"]*)"')


def parse_go_dir(d):
    """(struct name -> {proto tag -> GoField}, type name -> (import path, name))
    for the non-test Go files of d."""
    structs = {}
    aliases = {}
    for fn in sorted(os.listdir(d)):
        if not fn.endswith(".go") or fn.endswith("_test.go") or fn == "generated.pb.go" \
                or fn.startswith("zz_generated"):
            continue
        cur = None
        order = 0
        text = open(os.path.join(d, fn), encoding="utf-8").read()
        imports = {}
        for im in re.finditer(r'^\s*(\w+\s+)?"([\w./-]+)"\s*$', text, flags=re.M):
            path = im.group(2)
            alias = im.group(1).strip() if im.group(1) else path.rsplit("/", 1)[-1]
            imports[alias] = path
        for line in text.splitlines(keepends=True):
            if cur is None:
                m = re.match(r"^type\s+(\w+)\s+struct\s*\{\s*$", line)
                if m:
                    cur = structs.setdefault(m.group(1), {})
                    order = 0
                    continue
                m = re.match(r"^type\s+(\w+)\s+struct\s*\{\s*\}\s*$", line)
                if m:
                    structs.setdefault(m.group(1), {})
                    continue
                m = re.match(r"^type\s+(\w+)\s+(\w+)\.(\w+)\s*$", line)
                if m and m.group(2) in imports:
                    aliases[m.group(1)] = (imports[m.group(2)], m.group(3))
                continue
            if line.startswith("}"):
                cur = None
                continue
            s = line.strip()
            if s.startswith("//") or "`" not in s:
                continue
            pre, tagstr = s.split("`", 1)
            tags = dict(TAG_RE.findall(tagstr))
            if "protobuf" not in tags or tags["protobuf"] == "-":
                continue
            toks = pre.split()
            if len(toks) == 1:
                gotype = toks[0]
                name = gotype.lstrip("*").split(".")[-1]
            elif len(toks) == 2:
                name, gotype = toks
            else:
                die(f"{d}/{fn}: cannot parse struct field {s!r}")
            ptag = tags["protobuf"].split(",")
            try:
                tag = int(ptag[1])
            except (IndexError, ValueError):
                die(f"{d}/{fn}: bad protobuf tag {s!r}")
            jparts = tags.get("json", name).split(",")
            json_name = jparts[0]
            opts = set(jparts[1:])
            inline = "inline" in opts
            if json_name == "-":
                json_name = name
            cur[tag] = GoField(name, gotype, json_name, "omitempty" in opts,
                               "omitzero" in opts, inline, tag, order)
            order += 1
    return structs, aliases


def go_import_dir(upstream, path):
    for mod in MODULES:
        prefix = "k8s.io/" + mod + "/"
        if path.startswith(prefix):
            return os.path.join(upstream, mod, path[len(prefix):])
    return None


# ---------------------------------------------------------------- k8s-openapi

def load_openapi(root):
    """(definition -> {normalised json name: json name}, [(apiVersion, kind, definition)])."""
    names = {}
    kinds = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for fn in sorted(filenames):
            if not fn.endswith(".rs") or fn == "mod.rs":
                continue
            text = open(os.path.join(dirpath, fn), encoding="utf-8").read()
            m = re.match(r"// Generated from definition (\S+)", text)
            if not m:
                continue
            definition = m.group(1)
            fields = dict((j, j) for j in re.findall(r'"([^"]+)" => Field::Key_\w+', text))
            names[definition] = fields
            rm = re.search(r'impl crate::Resource for \w+ \{\s*const API_VERSION: &\'static str = "([^"]*)";'
                           r'.*?const KIND: &\'static str = "([^"]*)";', text, flags=re.S)
            if rm:
                kinds.append((rm.group(1), rm.group(2), definition))
    return names, kinds


def openapi_to_proto(definition):
    # io.k8s.api.core.v1.Pod -> k8s.io.api.core.v1.Pod
    if not definition.startswith("io.k8s."):
        return None
    return "k8s.io." + definition[len("io.k8s."):].replace("-", "_")


# ---------------------------------------------------------------- k8s-pb (optional cross-check)

def load_k8s_pb(src):
    """proto-ish full name (lower-cased) -> {tag: (kind, label)} from prost attributes."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames.sort()
        if "mod.rs" not in filenames:
            continue
        rel = os.path.relpath(dirpath, src)
        if rel == ".":
            continue
        pkg = "k8s.io." + rel.replace(os.sep, ".")
        text = open(os.path.join(dirpath, "mod.rs"), encoding="utf-8").read()
        for mm in re.finditer(r"pub struct (\w+) \{(\}|.*?\n\})", text, flags=re.S):
            fields = {}
            for am in re.finditer(r"#\[prost\(([^\]]*)\)\]", mm.group(2)):
                attr = am.group(1)
                tm = re.search(r'tag = "(\d+)"', attr)
                if not tm:
                    continue
                kind = attr.split(",")[0].strip()
                if kind.startswith("btree_map") or kind.startswith("map"):
                    label = "map"
                    kind = re.search(r'= "([^"]*)"', attr).group(1).split(",")[1].strip()
                else:
                    label = "repeated" if "repeated" in attr else "optional"
                    kind = kind.split("=")[0].strip()
                fields[int(tm.group(1))] = (kind, label)
            out[(pkg + "." + mm.group(1)).lower()] = fields
    return out


# ---------------------------------------------------------------- main

def main():
    args = sys.argv[1:]
    k8s_pb = None
    if "--k8s-pb" in args:
        i = args.index("--k8s-pb")
        k8s_pb = args[i + 1]
        del args[i:i + 2]
    if len(args) not in (2, 3):
        die("usage: gen_proto_schema.py UPSTREAM OPENAPI_V1_36 [OUT] [--k8s-pb SRC]")
    upstream, openapi_root = args[0], args[1]
    out = args[2] if len(args) == 3 else DEFAULT_OUT

    messages = load_protos(upstream)
    go_cache = {}
    openapi_names, openapi_kinds = load_openapi(openapi_root)

    # ---- kinds
    kinds = {}  # (group, version, kind) -> full message name

    def add_kind(api_version, kind, full):
        if full not in messages:
            warnings.append(f"kind {api_version} {kind}: no proto message {full}")
            return
        group, version = api_version.rsplit("/", 1) if "/" in api_version else ("", api_version)
        kinds[(group, version, kind)] = full
        lst = full + "List"
        if lst in messages and (group, version, kind + "List") not in kinds:
            kinds[(group, version, kind + "List")] = lst

    for api_version, kind, definition in openapi_kinds:
        full = openapi_to_proto(definition)
        if full is None:
            continue
        if full.startswith(META + "."):
            continue  # handled as any-version kinds below
        add_kind(api_version, kind, full)
    for kind in META_GROUP_KINDS:
        add_kind("meta.k8s.io/v1", kind, META + "." + kind)
    any_kinds = {}
    for kind in ANY_VERSION_KINDS:
        if META + "." + kind not in messages:
            die(f"no meta/v1 message {kind}")
        any_kinds[kind] = META + "." + kind

    # ---- reachable messages
    reach = set()
    stack = sorted(set(kinds.values()) | set(any_kinds.values()))
    while stack:
        full = stack.pop()
        if full in reach:
            continue
        if full not in messages:
            die(f"unknown message {full}")
        reach.add(full)
        for f in messages[full].fields:
            if f.type not in SCALARS:
                stack.append(f.type)

    order = sorted(reach)
    index = {full: i for i, full in enumerate(order)}
    if len(order) > 65535:
        die("too many messages")

    # ---- fields
    names = set()
    emitted = {}  # full -> (special, [(sort key, tag, json name, ty, card, ProtoField)])
    openapi_problems = []
    for full in order:
        msg = messages[full]
        special = SPECIAL.get(full)
        d, goname = msg.pkg_dir, msg.name
        for _ in range(4):
            if d not in go_cache:
                go_cache[d] = parse_go_dir(d)
            structs, aliases = go_cache[d]
            if goname in structs or goname not in aliases:
                break
            path, goname = aliases[goname]
            d = go_import_dir(upstream, path)
            if d is None:
                die(f"{full}: alias to {path} outside the known modules")
        gostruct = go_cache[d][0].get(goname)
        if gostruct is None and special is None:
            # Named slice types (type ExtraValue []string) are wrapped as
            # `message X { repeated string items = 1; }`.
            if len(msg.fields) == 1 and msg.fields[0].name == "items" \
                    and msg.fields[0].label == "repeated" and msg.fields[0].tag == 1:
                special = "Items"
            else:
                die(f"{full}: no Go struct and no special JSON form")
        rows = []
        for f in msg.fields:
            gof = gostruct.get(f.tag) if gostruct else None
            if gostruct is not None and gof is None and special is None:
                warnings.append(f"{full}.{f.name} (tag {f.tag}): no Go field")
            json_name = gof.json if gof else f.name
            ty = SCALARS[f.type] if f.type in SCALARS else f"M({index[f.type]})"
            if f.label == "map":
                card = "Map"
            elif f.label == "repeated":
                card = "Rep"
            elif gof is not None and gof.inline:
                if f.type in SCALARS:
                    die(f"{full}.{f.name}: inline scalar")
                card = "Inline"
                json_name = ""
            else:
                card = "One"
                if gof is not None:
                    pointer = gof.gotype.startswith("*")
                    if gof.omitzero or (gof.omitempty and not pointer and f.type in SCALARS):
                        card = "OneOmitZero"
            sort_key = gof.order if gof else 10000 + f.tag
            rows.append((sort_key, f.tag, json_name, ty, card, f))
            if json_name:
                names.add(json_name)
        rows.sort(key=lambda r: r[0])
        emitted[full] = (special, rows)

    # ---- cross-check JSON names against k8s-openapi
    def json_names_of(full, seen=()):
        special, rows = emitted[full]
        out = set()
        for _, _, json_name, ty, card, f in rows:
            if card == "Inline":
                out |= json_names_of(f.type, seen + (full,))
            else:
                out.add(json_name)
        return out

    checked = 0
    for definition, fields in openapi_names.items():
        full = openapi_to_proto(definition)
        if full is None or full not in emitted or emitted[full][0] is not None:
            continue
        ours = json_names_of(full)
        # apiVersion/kind of a kind's own TypeMeta are not protobuf fields.
        theirs = set(fields) - ({"apiVersion", "kind"} - ours)
        if full == META + ".WatchEvent":
            continue  # k8s-openapi models WatchEvent as a typed enum, not a struct
        checked += 1
        if ours != theirs:
            openapi_problems.append(f"{full}: only in proto {sorted(ours - theirs)}, "
                                    f"only in k8s-openapi {sorted(theirs - ours)}")

    # ---- optional cross-check against k8s-pb
    pb_report = []
    if k8s_pb:
        pb = load_k8s_pb(k8s_pb)
        for full in order:
            _, rows = emitted[full]
            pbm = pb.get(full.lower())
            if pbm is None:
                pb_report.append(f"missing message {full}")
                continue
            for _, tag, json_name, ty, card, f in rows:
                got = pbm.get(tag)
                if got is None:
                    pb_report.append(f"missing field {full}.{f.name} (tag {tag})")
                    continue
                kind, label = got
                want = f.type if f.type in SCALARS else "message"
                if label != f.label or kind != want:
                    pb_report.append(f"type differs {full}.{f.name}: proto {f.label} {want}, "
                                     f"k8s-pb {label} {kind}")

    # ---- emit
    text = render(order, emitted, kinds, any_kinds, index, sorted(names))
    with open(out, "w", encoding="utf-8") as fh:
        fh.write(text)
    # The tables carry #[rustfmt::skip]; the hand-shaped rest must already be
    # what rustfmt wants.
    try:
        subprocess.run(["rustfmt", "--edition", "2021", "--check", out], check=True,
                       stdout=subprocess.DEVNULL)
    except OSError:
        warnings.append("rustfmt not found: formatting not checked")
    except subprocess.CalledProcessError:
        die("the generated file is not rustfmt-clean")

    for wmsg in warnings:
        print("warning:", wmsg, file=sys.stderr)
    if k8s_pb:
        print(f"k8s-pb cross-check ({k8s_pb}): {len(pb_report)} differences", file=sys.stderr)
        for line in pb_report:
            print("  k8s-pb:", line, file=sys.stderr)
    print(f"{len(order)} messages, {sum(len(r) for _, r in emitted.values())} fields, "
          f"{len(names)} names, {len(kinds)} kinds; k8s-openapi checked {checked} "
          f"definitions", file=sys.stderr)
    if openapi_problems:
        for p in openapi_problems:
            print("json name mismatch:", p, file=sys.stderr)
        die(f"{len(openapi_problems)} JSON name mismatches with k8s-openapi")


HEADER = """\
// @generated by api/tools/gen_proto_schema.py from the Kubernetes v1.36 Go API
// (generated.proto and struct tags of k8s.io/api, apimachinery, apiextensions-apiserver
// and kube-aggregator v0.36.0) and k8s-openapi 0.29 (v1_36). Do not edit by hand.

//! The Kubernetes protobuf schema: every message reachable from a v1.36 kind, with its
//! fields' tags, JSON names and shapes, and the (group, version, kind) -> message map.

/// A field's value type: a protobuf scalar or a message (index into [`MESSAGES`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ty {
    Str,
    Bytes,
    Bool,
    I32,
    I64,
    F64,
    M(u16),
}

/// A field's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Card {
    /// optional: emitted iff present on the wire.
    One,
    /// optional, but a zero value ("", 0, false, null, {}) is left out, as Go's JSON
    /// encoder does for non-pointer `omitempty` scalars and for `omitzero` fields (Go's
    /// protobuf encoder writes those fields even when they are zero).
    OmitZero,
    /// repeated (packed or not); emitted iff non-empty.
    Rep,
    /// map<string, Ty> (entries: key = 1, value = 2); emitted iff non-empty.
    Map,
    /// a message embedded with `json:",inline"`: its fields join the parent object.
    Inline,
}

/// How a message is rendered as JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Special {
    /// An object of its fields.
    Object,
    /// resource.Quantity {1: string} -> string.
    Quantity,
    /// metav1.Time {1: seconds, 2: nanos} -> RFC 3339 in seconds, or null.
    Time,
    /// metav1.MicroTime {1: seconds, 2: nanos} -> RFC 3339 with 6 fractional digits, or null.
    MicroTime,
    /// metav1.Duration {1: int64 nanoseconds} -> Go duration string. (No v1.36 message
    /// refers to it today; kept so that a table with one decodes it.)
    #[allow(dead_code)]
    Duration,
    /// intstr.IntOrString {1: type, 2: intVal, 3: strVal} -> number or string.
    IntOrString,
    /// runtime.RawExtension {1: bytes}: JSON bytes or a nested `k8s\\0` envelope.
    RawExtension,
    /// metav1.FieldsV1 / apiextensions JSON {1: bytes} -> the JSON value, or null.
    RawJson,
    /// A named Go slice (ExtraValue, Verbs) {1: repeated items} -> array.
    Items,
    /// JSONSchemaPropsOrArray {1: schema, 2: repeated schema} -> array or schema.
    OrArray,
    /// JSONSchemaPropsOrBool {1: allows, 2: schema} -> schema or bool.
    OrBool,
    /// JSONSchemaPropsOrStringArray {1: schema, 2: repeated string} -> array or schema.
    OrStringArray,
}

/// One field: protobuf tag, JSON name (index into [`NAMES`]; unused for `Inline`),
/// value type and shape.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Field {
    pub tag: u32,
    pub name: u16,
    pub ty: Ty,
    pub card: Card,
}

/// One message: its protobuf name (without `k8s.io.`), JSON form, and fields in JSON
/// (Go struct) order.
#[derive(Debug)]
pub(crate) struct Msg {
    pub name: &'static str,
    pub special: Special,
    pub fields: &'static [Field],
}

use Card::{Inline, Map, OmitZero, One, Rep};
use Special::*;
use Ty::{Bool, Bytes, Str, F64, I32, I64, M};

const fn f(tag: u32, name: u16, ty: Ty, card: Card) -> Field {
    Field {
        tag,
        name,
        ty,
        card,
    }
}

const fn m(name: &'static str, special: Special, fields: &'static [Field]) -> Msg {
    Msg {
        name,
        special,
        fields,
    }
}
"""

CARD_NAMES = {"One": "One", "OneOmitZero": "OmitZero", "Rep": "Rep", "Map": "Map",
              "Inline": "Inline"}


def pack(items, indent, width=100):
    """Lay out comma-separated items several to a line."""
    out = []
    line = indent
    for it in items:
        piece = it + ","
        if line.strip() and len(line) + 1 + len(piece) > width:
            out.append(line)
            line = indent
        line = line + (" " if line.strip() else "") + piece
    if line.strip():
        out.append(line)
    return out


def render(order, emitted, kinds, any_kinds, index, name_list):
    name_idx = {n: i for i, n in enumerate(name_list)}
    lines = [HEADER]
    w = lines.append
    w("/// Interned JSON names.")
    w("#[rustfmt::skip]")
    w(f"pub(crate) static NAMES: [&str; {len(name_list)}] = [")
    lines.extend(pack([rust_str(n) for n in name_list], "    "))
    w("];")
    w("")
    w("/// Every message, sorted by name; `Ty::M(i)` is `MESSAGES[i]`.")
    w("#[rustfmt::skip]")
    w(f"pub(crate) static MESSAGES: [Msg; {len(order)}] = [")
    for i, full in enumerate(order):
        special, rows = emitted[full]
        head = f"    /* {i} */ m({rust_str(full[len('k8s.io.'):])}, {special or 'Object'}, &["
        fs = [f"f({tag}, {name_idx[json_name] if json_name else 0}, {ty}, {CARD_NAMES[card]})"
              for _, tag, json_name, ty, card, _f in rows]
        if not fs:
            w(head + "]),")
            continue
        w(head)
        lines.extend(pack(fs, "        "))
        w("    ]),")
    w("];")
    w("")
    kind_rows = sorted(kinds.items())
    w("/// (group, version, kind) -> message index, sorted for binary search.")
    w("#[rustfmt::skip]")
    w(f"pub(crate) static KINDS: [(&str, &str, &str, u16); {len(kind_rows)}] = [")
    for (g, v, k), full in kind_rows:
        w(f"    ({rust_str(g)}, {rust_str(v)}, {rust_str(k)}, {index[full]}),")
    w("];")
    w("")
    any_rows = sorted(any_kinds.items())
    w("/// meta/v1 kinds accepted under any apiVersion, sorted for binary search.")
    w("#[rustfmt::skip]")
    w(f"pub(crate) static ANY_VERSION_KINDS: [(&str, u16); {len(any_rows)}] = [")
    lines.extend(pack([f"({rust_str(k)}, {index[full]})" for k, full in any_rows], "    "))
    w("];")
    return "\n".join(lines) + "\n"


def rust_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


if __name__ == "__main__":
    main()
