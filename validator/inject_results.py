"""Faults in what a fresh run recomputes: one IR token edited, another record's backward code,
stored outputs perturbed, swapped, made NaN or malformed, Warp's stored gradient perturbed. Each
`fn(records, i, rng) -> Injection | None` deep-copies record i and corrupts the copy (None: the
fault does not apply to that record); the kinds and reason keys are registered in fault_kinds.
"""

from __future__ import annotations

import copy
import random
import re
import string

import numpy as np

from validator.injection import (Injection, as_stored, dump, element_set, get_at, leaf_paths, path_text, set_at,
                                 tensor_element)


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
    text = get_at(ir, path)
    toks = list(_TOKEN.finditer(text))
    if not toks:
        return None
    m = rng.choice(toks)
    new_tok = _edit_token(m.group(), rng)
    new = text[:m.start()] + new_tok + text[m.end():]
    if new == text:
        return None
    set_at(ir, path, new)
    return Injection(dump(rec), "ir_match", f"ir.{path_text(path)}: token {m.group()!r} -> {new_tok!r}")


def output_perturb(records, i, rng):
    """Change one element of one stored output: by +1 (or x0.5), by a sign flip, or by one ulp."""
    rec = copy.deepcopy(records[i])
    pick = tensor_element(rec, rng)
    if pick is None:
        return None
    name, t, path = pick
    v = get_at(t["data"], path) if path else t["data"]
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
    if as_stored(new, dtype) == as_stored(v, dtype):
        return None
    element_set(t, path, new)
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
    pick = tensor_element(rec, rng, float_only=True)
    if pick is None:
        return None
    name, t, path = pick
    element_set(t, path, float("nan"))
    return Injection(dump(rec), "io", f"io.outputs.{name}{list(path)} = NaN")


def _malformed(t, how):
    if how == "dtype":
        t["dtype"] = "float33"
    elif how == "data":
        t["data"] = "abc"
    elif how == "shape":
        t["shape"] = [int(np.prod(t["shape"])) + 1]
    else:  # an integer tensor holding NaN
        t["dtype"] = "int32"
        element_set(t, leaf_paths(t["data"])[0], float("nan"))


def output_malformed(records, i, rng):
    """A stored output that is not a tensor: unknown dtype, non-numeric data, wrong shape, int NaN."""
    rec = copy.deepcopy(records[i])
    name = rng.choice(sorted(rec["io"]["outputs"]))
    how = rng.choice(("dtype", "data", "shape", "int_nan"))
    _malformed(rec["io"]["outputs"][name], how)
    return Injection(dump(rec), "io", f"io.outputs.{name}: malformed ({how})")


def grad_perturb(records, i, rng):
    """Change one element of Warp's stored input gradient (everything else stays consistent)."""
    rec = copy.deepcopy(records[i])
    if not rec.get("grad"):
        return None
    name = rng.choice(sorted(rec["grad"]["g"]))
    t = rec["grad"]["g"][name]
    paths = leaf_paths(t["data"])
    if not paths:
        return None
    path = rng.choice(paths)
    v = get_at(t["data"], path) if path else t["data"]
    new = v + 1.0 if abs(v) < 1e3 else v * 0.5
    if as_stored(new, t["dtype"]) == as_stored(v, t["dtype"]):
        return None
    element_set(t, path, new)
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
