"""The operators of a spec's expressions (+ - * / %, unary -, comparisons) on lane values.

Each gives the bits the thread-by-thread interpreter's Python operator gives on every lane that
executes (`m`), or raises Unsure where that interpreter would raise (a division by zero) or where
an integer might leave int64 (the interpreter's Python ints never overflow).
"""

from __future__ import annotations

import numpy as np

from generator.lanes_values import Unsure, elem, full, is_bool, is_int, lift, scalar_lanes

# integers whose magnitude stays below this multiply without leaving int64
_SAFE_FACTOR = 2**31


def arith(op: str, a, b, m):
    """a op b for op in + - * / (["bin", op, a, b] and ["aug", name, op, e])."""
    if is_bool(a) or is_bool(b):
        raise Unsure("arithmetic on bools")
    if isinstance(a, tuple) or isinstance(b, tuple):
        raise Unsure("arithmetic on a transform")
    k = max(elem(a), elem(b))
    if k:
        a, b = lift(a, k), lift(b, k)
    if op == "+":
        r = a + b
    elif op == "-":
        r = a - b
    elif op == "*":
        if is_int(a) and is_int(b):
            if np.abs(full(a, m)[m]).max(initial=0) >= _SAFE_FACTOR or \
                    np.abs(full(b, m)[m]).max(initial=0) >= _SAFE_FACTOR:
                raise Unsure("an integer product that might leave int64")
        r = a * b
    elif op == "/":
        if (full(b, m)[m] == 0).any():
            raise Unsure("a division by zero")
        if isinstance(b, np.ndarray):
            b = np.where(m.reshape(m.shape + (1,) * (b.ndim - 1)), b, 1)
        r = a / b
    else:
        raise ValueError(op)
    if is_int(r) and isinstance(r, np.ndarray) and r.size and np.abs(r[m]).max(initial=0) >= 2**62:
        raise Unsure("an integer beyond int64")
    return r


def modulo(a, k, m):
    """a % k of integers (["mod", a, k])."""
    if not (is_int(a) and is_int(k)):
        raise Unsure("% of non-integers")
    kk = full(k, m)[m]
    if (kk == 0).any():
        raise Unsure("% by zero")
    if isinstance(k, np.ndarray):
        k = np.where(m, k, 1)
    return a % k


def negate(a):
    if is_bool(a):
        raise Unsure("- of a bool")
    # Warp's scalar neg is 0 - x (native/builtin.h: -(+0.0) is +0.0, which wp.copysign sees), a vector's -x
    return 0 - a if scalar_lanes(a) and not isinstance(a, tuple) else -a


def compare(op: str, a, b):
    """a op b for op in < <= > >= == != on scalars (["cmp", op, a, b])."""
    if not (scalar_lanes(a) and scalar_lanes(b)) or isinstance(a, tuple) or isinstance(b, tuple):
        raise Unsure("a comparison of vectors")
    if op == "<":
        return a < b
    if op == "<=":
        return a <= b
    if op == ">":
        return a > b
    if op == ">=":
        return a >= b
    if op == "==":
        return a == b
    if op == "!=":
        return a != b
    raise ValueError(op)
