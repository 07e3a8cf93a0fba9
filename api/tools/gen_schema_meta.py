#!/usr/bin/env python3
"""Generate the type-metadata table at the end of api/src/schema_meta.rs.

Usage:
    python3 api/tools/gen_schema_meta.py PATH/TO/v2.json[.gz] [PATH/TO/schema_meta.rs]

The input is the Kubernetes OpenAPI v2 document (GET /openapi/v2) of the
emulated release. Everything in schema_meta.rs after the marker line
`// @generated-below` is replaced; the hand-written part above it (the
navigation API) is kept as it is. The product never reads the OpenAPI
document itself: the generated table is committed.

What the table holds, per definition: its name, what it is (an object with
properties, an opaque JSON value, or a scalar-like type such as Time,
Quantity or IntOrString) and `x-kubernetes-map-type: atomic`; per property:
its name, its shape (scalar / ref / array of scalar|ref / map of
scalar|ref|array of scalar) and the list/patch extensions
(x-kubernetes-patch-strategy, x-kubernetes-patch-merge-key,
x-kubernetes-list-type, x-kubernetes-list-map-keys,
x-kubernetes-map-type). Plus the GVK -> definition map from
x-kubernetes-group-version-kind.
"""

import gzip
import json
import os
import sys

MARKER = "// @generated-below"

# Scalar codes; keep in sync with `Scalar::from_code` in schema_meta.rs.
SC_STRING = 0
SC_BYTES = 1
SC_INT32 = 2
SC_INT64 = 3
SC_INTEGER = 4
SC_DOUBLE = 5
SC_NUMBER = 6
SC_BOOLEAN = 7
SC_DATE_TIME = 8
SC_INT_OR_STRING = 9
SC_QUANTITY = 10

# Definition kinds; keep in sync with `DefKind` decoding in schema_meta.rs.
K_OBJECT = 255
K_OPAQUE = 254  # any JSON value (RawExtension, FieldsV1, JSON, ...)

ALLOWED_PROP_KEYS = {
    "$ref", "type", "format", "items", "additionalProperties", "description",
    "enum", "default",
    "x-kubernetes-patch-strategy", "x-kubernetes-patch-merge-key",
    "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
}


def scalar_code(schema, where):
    t = schema.get("type")
    f = schema.get("format")
    table = {
        ("string", None): SC_STRING,
        ("string", "byte"): SC_BYTES,
        ("string", "date-time"): SC_DATE_TIME,
        ("string", "int-or-string"): SC_INT_OR_STRING,
        ("integer", "int32"): SC_INT32,
        ("integer", "int64"): SC_INT64,
        ("integer", None): SC_INTEGER,
        ("number", "double"): SC_DOUBLE,
        ("number", None): SC_NUMBER,
        ("boolean", None): SC_BOOLEAN,
    }
    key = (t, f)
    if key not in table:
        raise SystemExit(f"unsupported scalar {key} at {where}")
    return table[key]


def ref_name(ref, where):
    prefix = "#/definitions/"
    if not ref.startswith(prefix):
        raise SystemExit(f"unsupported $ref {ref!r} at {where}")
    return ref[len(prefix):]


def rust_str(s):
    return json.dumps(s)  # JSON string escapes are valid Rust string escapes here


def main():
    if len(sys.argv) not in (2, 3):
        raise SystemExit(__doc__)
    src = sys.argv[1]
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[2] if len(sys.argv) == 3 else os.path.join(here, "..", "src", "schema_meta.rs")

    opener = gzip.open if src.endswith(".gz") else open
    with opener(src, "rt", encoding="utf-8") as fh:
        doc = json.load(fh)
    defs = doc["definitions"]
    def_names = sorted(defs)
    def_index = {n: i for i, n in enumerate(def_names)}
    if len(def_names) >= 0xFFFF:
        raise SystemExit("too many definitions for u16 indices")

    names = {}  # interned property names

    def intern(s):
        if s not in names:
            names[s] = len(names)
        return names[s]

    exts = {(None, None, None, (), None): 0}
    ext_list = [(None, None, None, (), None)]

    def ext_index(ps):
        key = (
            ps.get("x-kubernetes-patch-strategy"),
            ps.get("x-kubernetes-patch-merge-key"),
            ps.get("x-kubernetes-list-type"),
            tuple(ps.get("x-kubernetes-list-map-keys", ())),
            ps.get("x-kubernetes-map-type"),
        )
        if key not in exts:
            exts[key] = len(ext_list)
            ext_list.append(key)
        return exts[key]

    def shape(ps, where):
        """Rust expression for the property's shape."""
        if "$ref" in ps:
            return f"R({def_index[ref_name(ps['$ref'], where)]})"
        t = ps.get("type")
        if t == "array":
            it = ps["items"]
            if "$ref" in it:
                return f"Ar({def_index[ref_name(it['$ref'], where)]})"
            if it.get("type") in ("array", "object"):
                raise SystemExit(f"unsupported nested array at {where}")
            return f"As({scalar_code(it, where)})"
        if t == "object":
            ap = ps.get("additionalProperties")
            if not isinstance(ap, dict):
                raise SystemExit(f"object property without additionalProperties at {where}")
            if "$ref" in ap:
                return f"Mr({def_index[ref_name(ap['$ref'], where)]})"
            if ap.get("type") == "array":
                it = ap["items"]
                if "$ref" in it or it.get("type") in ("array", "object"):
                    raise SystemExit(f"unsupported map of arrays at {where}")
                return f"Mas({scalar_code(it, where)})"
            return f"Ms({scalar_code(ap, where)})"
        return f"S({scalar_code(ps, where)})"

    def_rows = []
    prop_rows = []
    for n in def_names:
        s = defs[n]
        props = s.get("properties") or {}
        flags = 0
        if s.get("x-kubernetes-map-type") == "atomic":
            flags |= 1
        if props:
            kind = K_OBJECT
        elif n == "io.k8s.apimachinery.pkg.api.resource.Quantity":
            kind = SC_QUANTITY
        elif s.get("type") == "string":
            kind = scalar_code(s, n)
        elif s.get("type") in (None, "object"):
            kind = K_OPAQUE
        else:
            raise SystemExit(f"unsupported definition shape {n}")
        start = len(prop_rows)
        for p in sorted(props):
            ps = props[p]
            where = f"{n}.{p}"
            unknown = set(ps) - ALLOWED_PROP_KEYS
            if unknown:
                raise SystemExit(f"unsupported property keys {sorted(unknown)} at {where}")
            prop_rows.append(f"P({intern(p)},{shape(ps, where)},{ext_index(ps)})")
        if len(prop_rows) - start > 0xFFFF or len(prop_rows) > 0xFFFF:
            raise SystemExit("too many properties for u16 indices")
        def_rows.append(f"D({rust_str(n)},{kind},{flags},{start},{len(prop_rows) - start})")

    gvks = {}
    for n in def_names:
        for g in defs[n].get("x-kubernetes-group-version-kind", []):
            key = (g.get("group", ""), g["version"], g["kind"])
            prev = gvks.get(key)
            if prev is not None and prev != n:
                raise SystemExit(f"GVK {key} maps to both {prev} and {n}")
            gvks[key] = n

    lines = []
    lines.append(MARKER)
    lines.append("// Generated by api/tools/gen_schema_meta.py from the Kubernetes v1.36 OpenAPI v2")
    lines.append("// document. Do not edit by hand: re-run the script.")
    lines.append("#[rustfmt::skip]")
    lines.append("mod table {")
    lines.append("use super::{Ext, D, P, Ty::*};")
    lines.append(f"pub(super) static NAMES: [&str; {len(names)}] = [")
    ordered = sorted(names, key=lambda k: names[k])
    for i in range(0, len(ordered), 8):
        lines.append(",".join(rust_str(x) for x in ordered[i:i + 8]) + ",")
    lines.append("];")
    lines.append(f"pub(super) static EXTS: [Ext; {len(ext_list)}] = [")
    for ps, mk, lt, lmk, mt in ext_list:
        def opt(v):
            return "None" if v is None else f"Some({rust_str(v)})"
        keys = "&[" + ",".join(rust_str(k) for k in lmk) + "]"
        lines.append(
            f"Ext{{patch_strategy:{opt(ps)},merge_key:{opt(mk)},list_type:{opt(lt)},"
            f"list_map_keys:{keys},map_type:{opt(mt)}}},"
        )
    lines.append("];")
    lines.append(f"pub(super) static DEFS: [D; {len(def_rows)}] = [")
    lines.extend(r + "," for r in def_rows)
    lines.append("];")
    lines.append(f"pub(super) static PROPS: [P; {len(prop_rows)}] = [")
    for i in range(0, len(prop_rows), 6):
        lines.append(",".join(prop_rows[i:i + 6]) + ",")
    lines.append("];")
    gvk_rows = sorted(gvks.items())
    lines.append(f"pub(super) static GVKS: [(&str, &str, &str, u16); {len(gvk_rows)}] = [")
    for (g, v, k), n in gvk_rows:
        lines.append(f"({rust_str(g)},{rust_str(v)},{rust_str(k)},{def_index[n]}),")
    lines.append("];")
    lines.append("}")
    generated = "\n".join(lines) + "\n"

    with open(out, encoding="utf-8") as fh:
        current = fh.read()
    pos = current.find("\n" + MARKER)
    if pos < 0:
        raise SystemExit(f"marker {MARKER!r} not found in {out}")
    with open(out, "w", encoding="utf-8") as fh:
        fh.write(current[: pos + 1] + generated)
    print(
        f"{out}: {len(def_rows)} definitions, {len(prop_rows)} properties, "
        f"{len(names)} names, {len(ext_list)} extension sets, {len(gvk_rows)} GVKs"
    )


if __name__ == "__main__":
    main()
