"""Adversarial fault injection: does the re-validator catch every corruption, for the right reason?

Take valid records, corrupt each copy in one realistic way (one IR token edited, one output
element perturbed, outputs swapped between records, a NaN in an output, a field dropped or
mistyped, a hostile import or dunder trick in the source, the spec edited away from the source,
a truncated JSON line), write the faulty lines into shards, run `revalidate` over them and check
that every faulty line fails with the reason key of the FIRST check, in the validator's order,
that sees the fault:

    corrupt (JSON) -> bounds -> schema -> spec -> safety -> spec_source -> consistency -> codegen/compile -> ir_match
    -> execute_cpu -> io

An unmodified copy of every record the faults were drawn from rides along in the same shards (so
in the same compile batches) as a control: each must pass, which proves the faults are caught
because of what was injected, not because the record was bad to begin with.

Each entry of `FAULTS` is `fn(records, i, rng) -> Injection | None`: it deep-copies record i,
corrupts the copy and returns the faulty JSON line, the expected reason key and a short
description; None when the fault does not apply to that record.
"""

from __future__ import annotations

import copy
import json
import os
import random
import re
import string
import time
from typing import Callable, NamedTuple

import numpy as np

from schemas.dataset_format import SHARD_PREFIX, canonical_json, list_shards, shard_name
from validator import revalidate
from validator.outcomes import check_names


class Injection(NamedTuple):
    line: str  # the faulty JSONL line, without its newline
    expected: str  # the reason key (text before the first ':') the validator must give
    detail: str  # what was done, for the report


def dump(rec) -> str:
    """One JSONL line in the canonical encoding, but NaN is allowed (it is a fault here)."""
    return canonical_json(rec, allow_nan=True)


# ---- helpers


def _leaf_paths(data, path=()) -> list[tuple]:
    """Index paths to every scalar in a (nested) list; () for a bare scalar."""
    if isinstance(data, list):
        return [p for k, x in enumerate(data) for p in _leaf_paths(x, path + (k,))]
    return [path]


def _get(obj, path):
    for k in path:
        obj = obj[k]
    return obj


def _set(obj, path, value):
    if not path:
        raise ValueError("empty path")
    _get(obj, path[:-1])[path[-1]] = value


def _delete(obj, path):
    del _get(obj, path[:-1])[path[-1]]


def _path_text(path) -> str:
    return ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in path)


def _tensor_element(rec, rng, float_only=False):
    """A random element of a random output tensor: (name, tensor, index path) or None."""
    outs = [(n, t) for n, t in sorted(rec["io"]["outputs"].items())
            if not float_only or t["dtype"].startswith("float")]
    outs = [(n, t) for n, t in outs if _leaf_paths(t["data"])]
    if not outs:
        return None
    name, t = rng.choice(outs)
    return name, t, rng.choice(_leaf_paths(t["data"]))


def _element_set(t, path, value):
    if path:
        _set(t["data"], path, value)
    else:
        t["data"] = value


def _as_stored(value, dtype: str):
    """What the validator reads back for `value` in a tensor of `dtype`."""
    return np.array([value], dtype=dtype)[0]


# ---- the fault types (each must make the record fail, with the reason key it returns)

_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+")


def _edit_token(tok: str, rng: random.Random) -> str:
    if tok.isdigit():
        return str(int(tok) + rng.randint(1, 9))
    m = re.search(r"[0-9]+$", tok)
    if m and rng.random() < 0.5:  # var_12 -> var_13: the classic off-by-one-register edit
        return tok[:m.start()] + str(int(m.group()) + 1)
    k = rng.randrange(len(tok))
    c = tok[k]
    repl = rng.choice([x for x in string.ascii_lowercase if x != c.lower()])
    return tok[:k] + (repl.upper() if c.isupper() else repl) + tok[k + 1:]


def ir_token(records, i, rng):
    """Edit one token of one IR text (cpp/cuda/ptx x forward/backward)."""
    rec = copy.deepcopy(records[i])
    ir = rec["ir"]
    paths = [(t, d) for t in ("cpp", "cuda") for d in ("forward", "backward")]
    paths += [("ptx", arch, d) for arch in sorted(ir["ptx"]) for d in sorted(ir["ptx"][arch])]
    path = rng.choice(paths)
    text = _get(ir, path)
    toks = list(_TOKEN.finditer(text))
    if not toks:
        return None
    m = rng.choice(toks)
    new_tok = _edit_token(m.group(), rng)
    new = text[:m.start()] + new_tok + text[m.end():]
    if new == text:
        return None
    _set(ir, path, new)
    return Injection(dump(rec), "ir_match", f"ir.{_path_text(path)}: token {m.group()!r} -> {new_tok!r}")


def output_perturb(records, i, rng):
    """Change one element of one stored output: by +1 (or x0.5), by a sign flip, or by one ulp."""
    rec = copy.deepcopy(records[i])
    pick = _tensor_element(rec, rng)
    if pick is None:
        return None
    name, t, path = pick
    v = _get(t["data"], path) if path else t["data"]
    dtype = t["dtype"]
    if dtype.startswith("float"):
        how = rng.choice(("add", "negate", "ulp"))
        if how == "add":
            new = v + 1.0 if abs(v) < 1e3 else v * 0.5
        elif how == "negate":
            new = -v if v != 0 else 1.0
        else:
            new = float(np.nextafter(np.array(v, dtype=dtype), np.array(np.inf, dtype=dtype)))
    else:
        how = "add"
        new = v - 1 if v > 0 else v + 1
    if _as_stored(new, dtype) == _as_stored(v, dtype):
        return None
    _element_set(t, path, new)
    return Injection(dump(rec), "io", f"io.outputs.{name}{list(path)}: {v!r} -> {new!r} ({how})")


def output_swap(records, i, rng):
    """Give record i the stored outputs of another record whose outputs differ."""
    others = [j for j in range(len(records)) if j != i and records[j]["io"]["outputs"] != records[i]["io"]["outputs"]]
    if not others:
        return None
    j = rng.choice(others)
    rec = copy.deepcopy(records[i])
    rec["io"]["outputs"] = copy.deepcopy(records[j]["io"]["outputs"])
    return Injection(dump(rec), "io", f"io.outputs <- outputs of {records[j].get('id')}")


def output_nan(records, i, rng):
    """A NaN in one element of one float output (written as JSON's non-standard NaN token)."""
    rec = copy.deepcopy(records[i])
    pick = _tensor_element(rec, rng, float_only=True)
    if pick is None:
        return None
    name, t, path = pick
    _element_set(t, path, float("nan"))
    return Injection(dump(rec), "io", f"io.outputs.{name}{list(path)} = NaN")


_TOP = ["schema_version", "id", "family", "target", "seed", "kernel_name", "source", "spec", "args", "dim",
        "ir", "io", "checks", "toolchain"]
# the checks whose verdicts the schema requires, less the gradient checks (the audit predates them)
_CHECKS = list(check_names(lambda c: not c.gradient))
_TOOLCHAIN = ["warp_lang", "cuda_toolkit", "nvrtc", "llvm", "ptx_archs", "cpu", "cuda"]
_SPEC = ["spec_version", "family", "seed", "name", "dim", "args", "body"]


def _required_paths(rec) -> dict[str, list[tuple]]:
    """Paths whose removal breaks pair.schema.json, grouped by where they are."""
    ir, io = rec["ir"], rec["io"]
    groups = {
        "top": [(k,) for k in _TOP],
        "ir": [("ir", t) for t in ("cpp", "cuda", "ptx")]
              + [("ir", t, d) for t in ("cpp", "cuda") for d in ("forward", "backward")]
              + [("ir", "ptx", a, d) for a in sorted(ir["ptx"]) for d in sorted(ir["ptx"][a])]
              + ([("ir", "ptx", next(iter(ir["ptx"])))] if len(ir["ptx"]) == 1 else []),
        "io": [("io", "inputs"), ("io", "outputs")]
              + [("io", side, n, k) for side in ("inputs", "outputs") for n in sorted(io[side])
                 for k in ("dtype", "shape", "data")]
              + ([("io", "outputs", next(iter(io["outputs"])))] if len(io["outputs"]) == 1 else []),
        "checks": [("checks", k) for k in _CHECKS] + [("checks", k, "status") for k in _CHECKS],
        "toolchain": [("toolchain", k) for k in _TOOLCHAIN],
        "args": [("args", a, k) for a in range(len(rec["args"])) for k in ("name", "kind", "dtype", "shape", "role")],
        "spec": [("spec", k) for k in _SPEC],
    }
    return groups


def drop_field(records, i, rng):
    """Delete one required field, top-level or nested."""
    rec = copy.deepcopy(records[i])
    groups = _required_paths(rec)
    path = rng.choice(groups[rng.choice(sorted(groups))])
    _delete(rec, path)
    return Injection(dump(rec), "schema", f"dropped {_path_text(path)}")


def _mistypes(rec) -> list[tuple[tuple, object]]:
    """(path, wrong value) pairs that pair.schema.json rejects."""
    a = 0
    out_name = sorted(rec["io"]["outputs"])[0]
    out = rec["io"]["outputs"][out_name]
    return [
        (("seed",), str(rec["seed"])),
        (("seed",), -1 - rec["seed"] % 1000),
        (("dim",), ",".join(map(str, rec["dim"]))),
        (("dim", 0), str(rec["dim"][0])),
        (("dim",), []),
        (("kernel_name",), [rec["kernel_name"]]),
        (("kernel_name",), "1" + rec["kernel_name"]),
        (("schema_version",), 1.1),
        (("id",), rec["id"] + "0"),
        (("family",), rec["family"].upper()),
        (("target",), "gpu"),
        (("source",), ""),
        (("checks", "execute_cpu", "status"), "ok"),
        (("checks", "ir_match", "status"), "PASSED"),
        (("checks", "compile_cuda"), "passed"),
        (("checks", "execute_gpu"), {"status": "failed"}),  # a failed verdict must give its reason
        (("args", a, "role"), "output"),
        (("args", a, "dtype"), "float 32"),  # neither a dtype nor a struct class name
        (("args", a, "shape"), str(rec["args"][a]["shape"])),
        (("io", "outputs", out_name, "shape"), "x".join(map(str, out["shape"]))),
        (("io", "outputs", out_name, "dtype"), None),
        (("io", "outputs"), {}),
        (("ir", "cpp", "forward"), [rec["ir"]["cpp"]["forward"]]),
        (("ir", "cuda", "backward"), ""),
        (("toolchain", "cpu", "compiler"), "O2"),
        (("toolchain", "ptx_archs"), "sm_90"),
    ]


def mistype_field(records, i, rng):
    """Give one field a value of the wrong type (or outside its enum/pattern/range)."""
    rec = copy.deepcopy(records[i])
    path, value = rng.choice(_mistypes(rec))
    old = _get(rec, path)
    _set(rec, path, value)
    return Injection(dump(rec), "schema", f"{_path_text(path)}: {str(old)[:40]!r} -> {str(value)[:40]!r}")


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
    """Every expression/statement node (a list whose first element is its tag) in the bodies."""
    found = []

    def walk(x):
        if isinstance(x, list):
            if x and isinstance(x[0], str):
                found.append(x)
            for y in x:
                walk(y)

    walk(spec["body"])
    for h in spec.get("helpers", []):
        walk(h["body"])
    return found


_OPS = {"bin": ["+", "-", "*", "/"], "cmp": ["<", "<=", ">", ">="], "aug": ["+", "-", "*"]}


def spec_edit(records, i, rng):
    """Change one literal or operator of the spec (or its name, an arg dtype, its version)."""
    rec = copy.deepcopy(records[i])
    spec = rec["spec"]
    nodes = _spec_nodes(spec)
    lits = [n for n in nodes if n[0] == "c" and len(n) == 3 and isinstance(n[1], (int, float))]
    ops = [n for n in nodes if (n[0] in ("bin", "cmp") and n[1] in _OPS[n[0]]) or (n[0] == "aug" and n[2] in _OPS["aug"])]
    kinds = ["literal"] * 4 * bool(lits) + ["operator"] * 4 * bool(ops) + ["name", "arg_dtype", "version"]
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
    elif kind == "name":
        old = spec["name"]
        spec["name"] = old + "_x"
        detail = f"spec.name {old!r} -> {spec['name']!r}"
    elif kind == "arg_dtype":
        a = rng.randrange(len(spec["args"]))
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


def truncated_line(records, i, rng):
    """Cut the JSON line short, as an interrupted write or a torn copy would."""
    line = dump(records[i])
    cut = rng.randrange(1, len(line))
    return Injection(line[:cut], "corrupt", f"line cut at byte {cut} of {len(line)}")


FAULTS: dict[str, Callable] = {
    "ir_token": ir_token,
    "output_perturb": output_perturb,
    "output_swap": output_swap,
    "output_nan": output_nan,
    "drop_field": drop_field,
    "mistype_field": mistype_field,
    "hostile_import": hostile_import,
    "hostile_dunder": hostile_dunder,
    "hostile_call": hostile_call,
    "spec_edit": spec_edit,
    "truncated_line": truncated_line,
}


# ---- malformed tensors and fields that do not follow from the spec


def _malformed(t, how):
    if how == "dtype":
        t["dtype"] = "float33"
    elif how == "data":
        t["data"] = "abc"
    elif how == "shape":
        t["shape"] = [int(np.prod(t["shape"])) + 1]
    else:  # an integer tensor holding NaN
        t["dtype"] = "int32"
        _element_set(t, _leaf_paths(t["data"])[0], float("nan"))


def output_malformed(records, i, rng):
    """A stored output that is not a tensor: unknown dtype, non-numeric data, wrong shape, int NaN."""
    rec = copy.deepcopy(records[i])
    name = rng.choice(sorted(rec["io"]["outputs"]))
    how = rng.choice(("dtype", "data", "shape", "int_nan"))
    _malformed(rec["io"]["outputs"][name], how)
    return Injection(dump(rec), "io", f"io.outputs.{name}: malformed ({how})")


def _derived_edits(rec):
    """(path, new value, what) edits of fields that the spec and source determine."""
    edits = []
    name = next((n for n, t in sorted(rec["io"]["inputs"].items()) if _leaf_paths(t["data"])), None)
    if name is not None:
        t = rec["io"]["inputs"][name]
        path = _leaf_paths(t["data"])[0]
        v = _get(t["data"], path) if path else t["data"]
        edits.append((("io", "inputs", name, "data") + tuple(path), v + 1, f"io.inputs.{name}{list(path)} += 1"))
    edits += [
        (("dim", 0), rec["dim"][0] + 1, "dim[0] += 1"),
        (("args", 0, "dtype"), "float64" if rec["args"][0]["dtype"] != "float64" else "float32", "args[0].dtype changed"),
        (("kernel_name",), rec["kernel_name"] + "_x", "kernel_name += '_x'"),
        (("family",), "stencil" if rec["family"] != "stencil" else "arith", "family changed"),
        (("seed",), float(rec["seed"]), "seed -> float(seed), as a float64 JSON tool writes it"),
        (("id",), "0" * 16 if rec["id"] != "0" * 16 else "1" * 16, "id is not the source's hash"),
        (("checks", "execute_cpu"), {"status": "failed", "reason": "execute_cpu: tampered"}, "checks.execute_cpu -> failed"),
        (("checks", "compile_cuda"), {"status": "not_run", "reason": "tampered"}, "checks.compile_cuda -> not_run"),
    ]
    launches = rec["coverage"]["launch_dims"]
    # a claim of a launch size that never ran (or the drop of one that did)
    edits.append((("coverage", "launch_dims"), launches[:1] if len(launches) > 1 else launches + [[1] * len(rec["dim"])],
                  "coverage.launch_dims: one launch size dropped or added"))
    return edits


def derived_field(records, i, rng):
    """A field that follows from the spec/source (id, names, dim, args, seeded inputs, verdicts, launch sizes) edited."""
    rec = copy.deepcopy(records[i])
    path, value, what = rng.choice(_derived_edits(rec))
    if path[:2] == ("io", "inputs"):
        t = rec["io"]["inputs"][path[2]]
        _element_set(t, path[4:], value)
    else:
        _set(rec, path, value)
    return Injection(dump(rec), "consistency", what)


FAULTS["output_malformed"] = output_malformed
FAULTS["derived_field"] = derived_field


# ---- gradients: coherent forgeries whose only wrong part is the gradient or the backward code


def grad_perturb(records, i, rng):
    """Change one element of Warp's stored input gradient (everything else stays consistent)."""
    rec = copy.deepcopy(records[i])
    if not rec.get("grad"):
        return None
    name = rng.choice(sorted(rec["grad"]["g"]))
    t = rec["grad"]["g"][name]
    paths = _leaf_paths(t["data"])
    if not paths:
        return None
    path = rng.choice(paths)
    v = _get(t["data"], path) if path else t["data"]
    new = v + 1.0 if abs(v) < 1e3 else v * 0.5
    if _as_stored(new, t["dtype"]) == _as_stored(v, t["dtype"]):
        return None
    _element_set(t, path, new)
    return Injection(dump(rec), "gradient", f"grad.g.{name}{list(path)}: {v!r} -> {new!r}")


def backward_swap(records, i, rng):
    """Give record i another record's backward code (C++ or CUDA): the adjoint is no longer its own."""
    target = rng.choice(("cpp", "cuda"))
    others = [j for j in range(len(records)) if j != i and records[j]["ir"][target]["backward"] != records[i]["ir"][target]["backward"]]
    if not others:
        return None
    j = rng.choice(others)
    rec = copy.deepcopy(records[i])
    rec["ir"][target]["backward"] = records[j]["ir"][target]["backward"]
    return Injection(dump(rec), "ir_match", f"ir.{target}.backward <- that of {records[j].get('id')}")


FAULTS["spec_forgery"] = spec_forgery
FAULTS["grad_perturb"] = grad_perturb
FAULTS["backward_swap"] = backward_swap


# ---- the audit


def sample_records(dataset_dir: str, pool: int, rng: random.Random) -> list[dict]:
    """Up to `pool` records drawn uniformly from DIR/shard-*.jsonl (reservoir sampling, in file order)."""
    shards = list_shards(dataset_dir)
    if not shards:
        raise FileNotFoundError(f"no shard-*.jsonl files in {dataset_dir}")
    chosen: list[tuple[int, str]] = []
    seen = 0
    for shard in shards:
        with open(os.path.join(dataset_dir, shard), encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                if len(chosen) < pool:
                    chosen.append((seen, line))
                else:
                    k = rng.randrange(seen + 1)
                    if k < pool:
                        chosen[k] = (seen, line)
                seen += 1
    records = []
    for _, line in sorted(chosen):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # not a valid record: nothing to corrupt
        if isinstance(rec, dict):
            records.append(rec)
    return records


def audit(dataset_dir: str, workdir: str, n_faults: int = 500, seed: int = 0, pool: int = 60,
          per_shard: int = 100, types: list[str] | None = None) -> dict:
    """Inject `n_faults` faults into records of `dataset_dir`, re-validate them in `workdir`, score.

    Fault k is of type types[k % len(types)] (so every type gets a near-equal share), on a record
    drawn by random.Random(seed) from a pool of up to `pool` records sampled from the dataset.
    Every pool record is also written unmodified, as a control. Lines are shuffled together and
    written `per_shard` to a shard, so faulty records share compile batches with clean ones.
    """
    t0 = time.time()
    if n_faults < 1:
        raise ValueError("n_faults must be >= 1")
    names = list(types or FAULTS)
    unknown = [n for n in names if n not in FAULTS]
    if unknown:
        raise ValueError(f"unknown fault type {unknown[0]}")
    if os.path.isdir(workdir) and any(p.startswith(SHARD_PREFIX) for p in os.listdir(workdir)):
        raise ValueError(f"{workdir} already holds shard files; give the audit an empty directory")
    rng = random.Random(seed)
    records = sample_records(dataset_dir, pool, rng)
    if len(records) < 2:
        raise ValueError(f"{dataset_dir}: need at least 2 parseable records, found {len(records)}")

    entries = []  # (kind, type or None, record index, Injection or None, line)
    for k in range(n_faults):
        name = names[k % len(names)]
        inj = None
        for _ in range(100):
            i = rng.randrange(len(records))
            try:
                inj = FAULTS[name](records, i, rng)
            except (KeyError, TypeError, IndexError, ValueError, AttributeError):
                inj = None  # the record lacks what this fault needs: try another
            if inj is not None:
                break
        if inj is None:
            raise ValueError(f"fault type {name} applies to none of the sampled records")
        entries.append(("fault", name, i, inj, inj.line))
    for i, rec in enumerate(records):
        entries.append(("control", None, i, None, dump(rec)))
    rng.shuffle(entries)

    os.makedirs(workdir, exist_ok=True)
    by_where = {}
    for s in range(0, len(entries), per_shard):
        shard = shard_name(s // per_shard)
        with open(os.path.join(workdir, shard), "w", encoding="utf-8") as f:
            for n, e in enumerate(entries[s:s + per_shard], 1):
                f.write(e[4] + "\n")
                by_where[f"{shard}:{n}"] = e
    t1 = time.time()
    report = revalidate.revalidate(workdir, gpu=False)
    t2 = time.time()

    failures = {}
    unmatched = []
    for f in report["failures"]:
        if f["where"] in by_where and f["where"] not in failures:
            failures[f["where"]] = f
        else:
            unmatched.append(f)

    table = {n: {"expected": None, "injected": 0, "detected": 0, "right_reason": 0, "reasons": {},
                 "example": None, "wrong_reason_examples": [], "undetected_examples": []} for n in names}
    controls = {"count": 0, "false_positives": 0, "examples": []}
    for where, (kind, name, i, inj, _) in sorted(by_where.items()):
        f = failures.get(where)
        rid = records[i].get("id")
        if kind == "control":
            controls["count"] += 1
            if f:
                controls["false_positives"] += 1
                if len(controls["examples"]) < 5:
                    controls["examples"].append({"where": where, "id": rid, "reason": f["reason"][:300]})
            continue
        row = table[name]
        row["expected"] = row["expected"] or inj.expected
        row["injected"] += 1
        if not f:
            if len(row["undetected_examples"]) < 5:
                row["undetected_examples"].append({"where": where, "id": rid, "fault": inj.detail})
            continue
        row["detected"] += 1
        key = f["code"]
        row["reasons"][key] = row["reasons"].get(key, 0) + 1
        if key == inj.expected:
            row["right_reason"] += 1
            row["example"] = row["example"] or f["reason"][:200]
        elif len(row["wrong_reason_examples"]) < 5:
            row["wrong_reason_examples"].append({"where": where, "id": rid, "fault": inj.detail,
                                                 "expected": inj.expected, "reason": f["reason"][:300]})
    injected = sum(r["injected"] for r in table.values())
    detected = sum(r["detected"] for r in table.values())
    right = sum(r["right_reason"] for r in table.values())
    ok = right == injected and controls["false_positives"] == 0 and not unmatched
    return {
        "dataset": os.path.abspath(dataset_dir),
        "workdir": os.path.abspath(workdir),
        "seed": seed,
        "records_sampled": len(records),
        "lines": len(entries),
        "shards": (len(entries) + per_shard - 1) // per_shard,
        "by_type": table,
        "total": {"injected": injected, "detected": detected, "right_reason": right,
                  "detection_rate": detected / injected, "right_reason_rate": right / injected},
        "controls": controls,
        "unmatched_failures": unmatched[:10],
        "ok": ok,
        "seconds": {"inject": round(t1 - t0, 2), "revalidate": round(t2 - t1, 2), "total": round(time.time() - t0, 2)},
    }


def format_table(result: dict) -> str:
    rows = [f"{'fault type':<16} {'expected':<12} {'injected':>8} {'detected':>8} {'right':>6}  example reason"]
    for name, r in result["by_type"].items():
        ex = r["example"] or (r["wrong_reason_examples"][0]["reason"] if r["wrong_reason_examples"] else "-")
        rows.append(f"{name:<16} {r['expected'] or '-':<12} {r['injected']:>8} {r['detected']:>8} "
                    f"{r['right_reason']:>6}  {ex[:80]}")
    t = result["total"]
    rows.append(f"{'total':<16} {'':<12} {t['injected']:>8} {t['detected']:>8} {t['right_reason']:>6}")
    rows.append(f"detection rate: {100 * t['detection_rate']:.2f}% ({t['detected']}/{t['injected']}); "
                f"with the right reason: {100 * t['right_reason_rate']:.2f}% ({t['right_reason']}/{t['injected']})")
    c = result["controls"]
    rows.append(f"controls: {c['count']} unmodified records, {c['false_positives']} false positives")
    for name, r in result["by_type"].items():
        for e in r["undetected_examples"]:
            rows.append(f"  UNDETECTED {name} {e['where']} {e['id']}: {e['fault']}")
        for e in r["wrong_reason_examples"]:
            rows.append(f"  WRONG REASON {name} {e['where']} {e['id']}: {e['fault']}: expected {e['expected']}, "
                        f"got {e['reason'][:120]}")
    for e in c["examples"]:
        rows.append(f"  FALSE POSITIVE {e['where']} {e['id']}: {e['reason'][:120]}")
    for f in result["unmatched_failures"]:
        rows.append(f"  UNMATCHED FAILURE {f['where']}: {f['reason'][:120]}")
    s = result["seconds"]
    rows.append(f"{result['lines']} lines in {result['shards']} shard(s) from {result['records_sampled']} records; "
                f"revalidate {s['revalidate']} s, total {s['total']} s")
    return "\n".join(rows)
