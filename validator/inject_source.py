"""Faults in a record's source and spec: a hostile import, dunder walk or builtin call in the
source (safety's), the spec edited away from the source, or a coherent forgery whose source is
re-rendered from the edited spec (spec's). Each `fn(records, i, rng) -> Injection | None`
deep-copies record i and corrupts the copy; the kinds and reason keys are registered in
fault_kinds.
"""

from __future__ import annotations

import copy
import json

from generator import spec_walk
from validator.injection import Injection, dump


_WARP_IMPORT = "import warp as wp\n"
_HOSTILE_IMPORTS = [
    lambda s: "import os\n" + s,
    lambda s: s.replace(_WARP_IMPORT, _WARP_IMPORT + "import subprocess\n", 1),
    lambda s: s.replace(_WARP_IMPORT, "import warp as wp, os\n", 1),
    lambda s: s.replace(_WARP_IMPORT, _WARP_IMPORT + "from os import system\n", 1),
    lambda s: s.replace(_WARP_IMPORT, "import os as wp\n", 1),
    lambda s: s.replace(_WARP_IMPORT, _WARP_IMPORT + "import ctypes\n", 1),
    lambda s: s + "\nimport shutil\n",
]


def hostile_import(records, i, rng):
    """Add an import of os/subprocess/ctypes/... to the source."""
    rec = copy.deepcopy(records[i])
    k = rng.randrange(len(_HOSTILE_IMPORTS))
    new = _HOSTILE_IMPORTS[k](rec["source"])
    if new == rec["source"]:
        return None
    rec["source"] = new
    return Injection(dump(rec), "safety", f"hostile import variant {k}")


def _insert_in_kernel(source: str, line: str) -> str | None:
    """Insert `line` (already indented) right after the kernel's `... = wp.tid()` line."""
    lines = source.split("\n")
    try:
        at = lines.index("@wp.kernel")
    except ValueError:
        return None
    for k in range(at, len(lines)):
        if lines[k].startswith("    ") and lines[k].endswith("= wp.tid()"):
            return "\n".join(lines[:k + 1] + [line] + lines[k + 1:])
    for k in range(at, len(lines)):  # no wp.tid(): right after the kernel's def line
        if lines[k].startswith("def ") and lines[k].endswith(":"):
            return "\n".join(lines[:k + 1] + [line] + lines[k + 1:])
    return None


def _first_array(rec) -> str:
    return next((a["name"] for a in rec["args"] if a["kind"] == "array"), "wp")


_DUNDER = [
    lambda r: "    __import__('os').system('touch /tmp/pwned')",
    lambda r: "    _m = __import__('subprocess')",
    lambda r: f"    _c = {_first_array(r)}.__class__",
    lambda r: "    _d = wp.__dict__",
    lambda r: "    _b = __builtins__",
    lambda r: "    _s = wp.tid.__globals__",
    lambda r: f"    _t = {_first_array(r)}.__class__.__base__.__subclasses__()",
]


def hostile_dunder(records, i, rng):
    """Inside the kernel body: an __import__ call or a dunder attribute walk (valid Python)."""
    rec = copy.deepcopy(records[i])
    k = rng.randrange(len(_DUNDER))
    line = _DUNDER[k](rec)
    new = _insert_in_kernel(rec["source"], line)
    if new is None:
        return None
    rec["source"] = new
    return Injection(dump(rec), "safety", f"kernel body += {line.strip()!r}")


_HOSTILE_CALLS = [
    "    open('/etc/passwd')",
    "    eval('1')",
    "    exec('import os')",
    "    _g = getattr(wp, 'config')",
    "    _k = globals()",
    "    print(i)",
]


def hostile_call(records, i, rng):
    """Inside the kernel body: a call of a Python builtin that is not a Warp builtin (open, eval, ...)."""
    rec = copy.deepcopy(records[i])
    line = rng.choice(_HOSTILE_CALLS)
    new = _insert_in_kernel(rec["source"], line)
    if new is None:
        return None
    rec["source"] = new
    return Injection(dump(rec), "safety", f"kernel body += {line.strip()!r}")


def _spec_nodes(spec) -> list[list]:
    """Every expression/statement node (a list whose first element is its tag) in the bodies of a
    spec's JSON form, in the one walk's order (`generator.spec_walk`)."""
    return list(spec_walk.nodes(spec["body"], *(h["body"] for h in spec.get("helpers", []))))


_OPS = {"bin": ["+", "-", "*", "/"], "cmp": ["<", "<=", ">", ">="], "aug": ["+", "-", "*"]}


def _struct_fields(spec) -> list[tuple[str, list]]:
    """(where, field) of every value field of a struct array's elements and of a nested struct, in
    a spec's JSON form (the plain struct arguments' own fields: none, so their draws stay as before)."""
    found = []

    def visit(where: str, fields: list, own: bool) -> None:
        for f in fields:
            if len(f) == 3:
                visit(f"{where}.{f[0]}", f[2], True)
            elif own:
                found.append((where, f))

    for k, a in enumerate(spec.get("args", [])):
        visit(f"spec.args[{k}]", a.get("fields", []), a.get("kind") == "struct_array")
    return found


_OBJECT_KINDS = ("hash_grid", "mesh", "volume", "bvh", "texture2d")  # built by the launch, not plain data


def _object_edit(arg: dict, args: list) -> str:
    """How an object argument is built, changed: a hash grid's cell width, a volume's voxel size, a
    BVH's boxes' half-width, a texture's filter mode, or a mesh's rows of vertices."""
    k = args.index(arg)
    if arg["kind"] == "texture2d":
        old = arg["sampler"]
        filter_, address = old.split("/")
        arg["sampler"] = new = ("CLOSEST" if filter_ == "LINEAR" else "LINEAR") + "/" + address
        return f"spec.args[{k}] sampler {old!r} -> {new!r}"
    if arg["kind"] in ("hash_grid", "volume", "bvh"):
        old = arg["cell"]
        arg["cell"] = new = 0.5 if old != 0.5 else 0.25
        return f"spec.args[{k}] cell {old!r} -> {new!r}"
    old = list(arg["shape"])
    arg["shape"][0] = 5 if old[0] != 5 else 3
    return f"spec.args[{k}] shape {old!r} -> {arg['shape']!r}"


def spec_edit(records, i, rng):
    """Change one literal or operator of the spec (or its name, an arg dtype, its version, a module
    constant's value, a struct array's or nested struct's field dtype, or how an object is built)."""
    rec = copy.deepcopy(records[i])
    spec = rec["spec"]
    nodes = _spec_nodes(spec)
    lits = [n for n in nodes if n[0] == "c" and len(n) == 3 and isinstance(n[1], (int, float))]
    ops = [n for n in nodes if (n[0] in ("bin", "cmp") and n[1] in _OPS[n[0]]) or (n[0] == "aug" and n[2] in _OPS["aug"])]
    kinds = ["literal"] * 4 * bool(lits) + ["operator"] * 4 * bool(ops) + ["name", "arg_dtype", "version"]
    kinds += ["constant"] * 2 * bool(spec.get("constants"))  # only where the spec has some: other draws as before
    fields = _struct_fields(spec)
    kinds += ["field"] * 2 * bool(fields)  # a struct array's or a nested struct's field (likewise)
    objects = [k for k, a in enumerate(spec.get("args", [])) if a.get("kind") in _OBJECT_KINDS]
    kinds += ["object"] * 2 * bool(objects)  # a hash grid's cell width, a mesh's grid, a volume's voxel size, a BVH's boxes, a texture's filter (likewise)
    kind = rng.choice(kinds)
    if kind == "literal":
        n = rng.choice(lits)
        old = n[1]
        if n[2] == "bool":
            n[1] = not old
        elif isinstance(old, int) and not isinstance(old, bool):
            n[1] = old + rng.choice((1, 2, -1))
        else:
            n[1] = old + rng.choice((0.5, 1.0, -0.25))
        detail = f"literal {old!r} -> {n[1]!r} ({n[2]})"
    elif kind == "operator":
        n = rng.choice(ops)
        k = 2 if n[0] == "aug" else 1
        old = n[k]
        n[k] = rng.choice([o for o in _OPS[n[0]] if o != old])
        detail = f"{n[0]} operator {old!r} -> {n[k]!r}"
    elif kind == "constant":
        k = rng.randrange(len(spec["constants"]))
        old = spec["constants"][k][2]
        spec["constants"][k][2] = old + (1 if isinstance(old, int) else rng.choice((0.5, -0.25)))
        detail = f"spec.constants[{k}] {old!r} -> {spec['constants'][k][2]!r}"
    elif kind == "field":
        where, f = rng.choice(fields)
        old = f[1]
        f[1] = "float64" if old != "float64" else "float32"
        detail = f"{where} {f[0]} dtype {old!r} -> {f[1]!r}"
    elif kind == "object":
        detail = _object_edit(spec["args"][rng.choice(objects)], spec["args"])
    elif kind == "name":
        old = spec["name"]
        spec["name"] = old + "_x"
        detail = f"spec.name {old!r} -> {spec['name']!r}"
    elif kind == "arg_dtype":  # a plain argument's: an object's dtype is fixed by the schema, which would refuse it first
        plain = [k for k, x in enumerate(spec["args"]) if x.get("kind") not in _OBJECT_KINDS]
        a = plain[rng.randrange(len(plain))]
        old = spec["args"][a]["dtype"]
        spec["args"][a]["dtype"] = "float64" if old != "float64" else "float32"
        detail = f"spec.args[{a}].dtype {old!r} -> {spec['args'][a]['dtype']!r}"
    else:
        old = spec["spec_version"]
        spec["spec_version"] = old + 1
        detail = f"spec.spec_version {old!r} -> {spec['spec_version']!r}"
    return Injection(dump(rec), "spec", detail)


def spec_forgery(records, i, rng):
    """A coherent forgery: the spec edited as in spec_edit, then the source re-rendered from it and
    every derived field (id, kernel_name, args, dim, io.inputs) recomputed, so only the claim that
    this is the generator's spec for (family, seed) is false."""
    from generator import records as rec_fields
    from generator.inputs import make_inputs
    from generator.render import render_source
    from generator.spec import KernelSpec

    inj = spec_edit(records, i, rng)
    rec = json.loads(inj.line)
    try:
        spec = KernelSpec.from_json(rec["spec"])
        rec["source"] = render_source(spec)
    except (ValueError, KeyError, TypeError):
        return None  # spec_version edits do not render: spec_edit covers them
    rec.update(id=rec_fields.record_id(rec["source"], spec.name), kernel_name=spec.name, dim=list(spec.dim),
               args=[rec_fields.arg_json(a) for a in spec.args])
    rec["io"]["inputs"] = rec_fields.inputs_json(spec, make_inputs(spec))
    return Injection(dump(rec), "spec", f"coherent: {inj.detail}, source re-rendered, derived fields recomputed")
