"""Which specs the lanes evaluate at all, decided from the spec alone, before they start: a grid
launch whose arguments, helpers and nodes are all of kinds the lanes know (no tiles, no helpers
with vector parameters, no builtins they do not evaluate)."""

from __future__ import annotations

from generator import spec_walk
from generator.lanes_builtins import LANE_BUILTINS
from generator.spec import (ATOMIC_OPS, CAST_FLOAT_DTYPES, FLOAT_DTYPES, INT_DTYPES, PY_CASTS, RAND_SAMPLES, SMALL_INT_DTYPES,
                            VALUE_VEC_TYPES, VEC_SHAPES, KernelSpec, flat_fields)

_EXPR_TAGS = {"c", "v", "ld", "bin", "mod", "neg", "call", "where", "cmp", "and", "or", "not", "hcall", "cast",
              "fld", "randf", "randi", "randu", "vec", "comp", "mmul", "fnref", "tuple", *RAND_SAMPLES}
_STMT_TAGS = {"let", "set", "aug", "store", "atomic", "if", "for", "while", "break", "continue", "ret", "expr",
              "ret_kernel"}
SCALAR_DTYPES = set(FLOAT_DTYPES) | set(INT_DTYPES)
_CAST_DTYPES = SCALAR_DTYPES | set(SMALL_INT_DTYPES) | set(PY_CASTS) | set(CAST_FLOAT_DTYPES)
KEYWORD_BUILTINS = frozenset({"identity", "matrix"})  # the kwcalls the lanes evaluate (`Lanes._kwcall`)
_VALUE_DTYPES = SCALAR_DTYPES | set(VEC_SHAPES)


def _statement_ok(s) -> bool:
    match s:
        case ["atomic", op, *_]:
            return op in ATOMIC_OPS
        case [tag, *_]:
            return tag in _STMT_TAGS
    return False


def _expression_ok(e) -> bool:
    match e:
        case ["vec", vtype, _]:
            return vtype in VEC_SHAPES or vtype in VALUE_VEC_TYPES
        case ["comp", _, keys]:
            return all(isinstance(k, int) for k in keys)
        case ["call", name, _]:
            return name in LANE_BUILTINS
        case ["kwcall", name, _, _]:
            return name in KEYWORD_BUILTINS
        case ["cast", dtype, _]:
            return dtype in _CAST_DTYPES
        case [tag, *_]:
            return tag in _EXPR_TAGS
    return False


def bodies_ok(*bodies) -> bool:
    """Whether every statement and expression of the bodies is one the lanes evaluate."""
    return all(_statement_ok(node) if is_statement else _expression_ok(node)
               for node, is_statement in spec_walk.walk(*bodies))


def _arg_ok(a) -> bool:
    if a.kind == "struct":
        return all(t in _VALUE_DTYPES for _, t in flat_fields(a.fields))
    return a.dtype in (_VALUE_DTYPES if a.kind == "array" else SCALAR_DTYPES)


def supported(spec: KernelSpec) -> bool:
    """Whether the lanes evaluate this spec at all (decided from the spec alone)."""
    if spec.launch != "grid":
        return False
    if not all(_arg_ok(a) for a in spec.args):
        return False
    for h in spec.helpers:
        if h.ret not in SCALAR_DTYPES or any(t not in SCALAR_DTYPES for _, t in h.params):
            return False
        if not bodies_ok(h.body):
            return False
    return bodies_ok(spec.body)
