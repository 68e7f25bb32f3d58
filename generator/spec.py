"""KernelSpec: the typed, JSON-serializable model of one generated Warp kernel.

The spec, not the rendered text, is where correctness lives: it renders to Warp Python
(`generator.render`), evaluates to the NumPy oracle (`generator.oracle`) and fixes the inputs
(`generator.inputs`). Bodies are trees of plain JSON lists so a spec round-trips through a
record byte for byte.

Expressions (first element is the tag):
  ["c", value, dtype]            literal
  ["v", name]                    local variable or scalar argument
  ["ld", array, [index...]]      array element load
  ["bin", op, a, b]              op in + - * /  (the grammar only divides by values >= 1)
  ["neg", a]
  ["call", builtin, [args...]]   Warp builtin (wp.sin, wp.min, ...)
  ["where", cond, a, b]          wp.where
  ["cmp", op, a, b]              < <= > >= (and == != on integers only)
  ["and", a, b] / ["or", a, b] / ["not", a]
  ["hcall", helper, [args...]]   call of one of the spec's own @wp.func helpers
  ["cast", dtype, a]             wp.float32(a), wp.int32(a), ...
  ["mod", a, k]                  integer a % k with a >= 0 and literal k > 0

Statements:
  ["let", name, expr]            first assignment (declares the local)
  ["set", name, expr]            re-assignment
  ["aug", name, op, expr]        name op= expr  (op in + - *)
  ["store", array, [index...], expr]
  ["atomic", op, array, [index...], expr]       wp.atomic_add / atomic_min / atomic_max
  ["if", cond, [then...], [[cond, [body...]]...], [else...]]
  ["for", var, start, stop, [body...]]          for var in range(start, stop)
  ["while", cond, [body...]]                    the grammar makes every while terminate
  ["break"] / ["continue"]
  ["ret", expr]                                 helpers only
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

SPEC_VERSION = 1

FLOAT_DTYPES = ("float16", "float32", "float64")
INT_DTYPES = ("int32", "int64", "uint32")
DTYPES = FLOAT_DTYPES + INT_DTYPES


@dataclasses.dataclass(frozen=True)
class ArgSpec:
    """One kernel argument. `kind` is "array" or "scalar"; arrays have `shape`."""

    name: str
    kind: str
    dtype: str
    shape: tuple[int, ...] = ()
    role: str = "in"  # "in", "out" (written by the kernel) or "inout"
    low: float = -2.0  # input value range, used by generator.inputs
    high: float = 2.0

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["shape"] = list(self.shape)
        return d

    @staticmethod
    def from_json(d: dict[str, Any]) -> "ArgSpec":
        return ArgSpec(**{**d, "shape": tuple(d["shape"])})


@dataclasses.dataclass(frozen=True)
class HelperSpec:
    """A user @wp.func: typed parameters, return dtype and a body ending in ["ret", ...]."""

    name: str
    params: tuple[tuple[str, str], ...]
    ret: str
    body: list

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "params": [list(p) for p in self.params], "ret": self.ret, "body": self.body}

    @staticmethod
    def from_json(d: dict[str, Any]) -> "HelperSpec":
        return HelperSpec(d["name"], tuple(tuple(p) for p in d["params"]), d["ret"], d["body"])


@dataclasses.dataclass(frozen=True)
class KernelSpec:
    family: str
    seed: int
    name: str
    dim: tuple[int, ...]
    args: tuple[ArgSpec, ...]
    body: list
    helpers: tuple[HelperSpec, ...] = ()
    tid_names: tuple[str, ...] = ("i",)

    def arg(self, name: str) -> ArgSpec:
        for a in self.args:
            if a.name == name:
                return a
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        return {
            "spec_version": SPEC_VERSION,
            "family": self.family,
            "seed": self.seed,
            "name": self.name,
            "dim": list(self.dim),
            "tid_names": list(self.tid_names),
            "args": [a.to_json() for a in self.args],
            "helpers": [h.to_json() for h in self.helpers],
            "body": self.body,
        }

    @staticmethod
    def from_json(d: dict[str, Any]) -> "KernelSpec":
        if d.get("spec_version") != SPEC_VERSION:
            raise ValueError(f"unsupported spec_version {d.get('spec_version')!r} (expected {SPEC_VERSION})")
        return KernelSpec(
            family=d["family"],
            seed=d["seed"],
            name=d["name"],
            dim=tuple(d["dim"]),
            args=tuple(ArgSpec.from_json(a) for a in d["args"]),
            body=d["body"],
            helpers=tuple(HelperSpec.from_json(h) for h in d["helpers"]),
            tid_names=tuple(d["tid_names"]),
        )


def canonical_json(obj: Any) -> str:
    """The one JSON encoding used for hashing and for records: sorted keys, no spaces."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def derive_seed(*parts: Any) -> int:
    """A 63-bit seed from any parts, identical on every machine and Python version."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1
