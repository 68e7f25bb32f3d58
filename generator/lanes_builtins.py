"""The builtins of ["call", name, args] on lane values: the scalar ones here, the vector ones in
`generator.lanes_vector`.

The math functions whose NumPy versions may round differently from Python's `math` (all but
sqrt, floor, ceil, trunc, abs, min, max) are called through `math`, lane by lane, on the lanes
that execute; the rest are NumPy's, which give Python's bits.
"""

from __future__ import annotations

import math

import numpy as np

from generator.lanes_values import Unsure, full, is_bool, is_int, scalar_lanes
from generator.lanes_vector import VECTOR_BUILTINS, vector_call
from generator.warp_rng import rand_init

# the builtins evaluated lane by lane through Python's math module (same bits, same exceptions)
_MATH = {
    "sin": math.sin, "cos": math.cos, "tanh": math.tanh, "exp": math.exp, "log": math.log,
    "atan": math.atan, "atan2": math.atan2, "sinh": math.sinh, "cosh": math.cosh,
    "log2": math.log2, "log10": math.log10, "pow": math.pow, "acos": math.acos, "asin": math.asin,
}


def _math_call(name: str, fn, args: list, m):
    if not any(isinstance(a, np.ndarray) for a in args):
        return fn(*args)
    cols = [full(a, m)[m].tolist() for a in args]
    out = np.zeros(m.shape[0], dtype=np.float64)
    try:
        out[m] = [fn(*xs) for xs in zip(*cols)]
    except (ValueError, OverflowError, ZeroDivisionError, TypeError) as exc:
        raise Unsure(f"{name}: {exc}") from None
    return out


def py_min(a, b):
    # Python's min(a, b): a unless b < a
    if not isinstance(a, np.ndarray) and not isinstance(b, np.ndarray):
        return min(a, b)
    return np.where(b < a, b, a)


def py_max(a, b):
    if not isinstance(a, np.ndarray) and not isinstance(b, np.ndarray):
        return max(a, b)
    return np.where(b > a, b, a)


def _sqrt(m, x):
    if not isinstance(x, np.ndarray):
        return math.sqrt(x)
    if (x[m] < 0).any():
        raise Unsure("sqrt of a negative number")
    return np.sqrt(np.where(m, x, 0))


def _abs(m, x):
    return np.abs(x) if isinstance(x, np.ndarray) else abs(x)


def _rounding(name: str, py, np_fn):
    def rounded(m, x):
        if not isinstance(x, np.ndarray):
            return float(py(x))
        if x.dtype.kind == "f" and not np.isfinite(x[m]).all():
            raise Unsure(f"{name} of a non-finite number")
        # + 0.0: Python's float(math.ceil(-0.5)) is 0.0 (an int converted), NumPy's ceil -0.0
        return np_fn(x).astype(np.float64) + 0.0
    return rounded


def _float32(m, x):
    return x.astype(np.float64) if isinstance(x, np.ndarray) else float(x)


def _rand_init(m, *args):
    if not all(is_int(a) for a in args):
        raise Unsure("rand_init of a non-integer")
    return rand_init(*args)  # Warp's exact uint32 arithmetic, on ints and int64 lanes alike


def _sign(m, x):
    # Warp's sign: -1 where x < 0, else 1 (zeros of either sign and NaN: 1), in x's kind
    if not isinstance(x, np.ndarray):
        one = 1.0 if isinstance(x, float) else 1
        return -one if x < 0 else one
    return np.where(x < 0, -1, 1).astype(x.dtype)


def _round(m, x):
    # C's round, half away from zero: the fraction of |x| decides, exactly, in float64
    if not isinstance(x, np.ndarray):
        a = abs(x)
        r = math.floor(a)
        return math.copysign(float(r + 1 if a - r >= 0.5 else r), x)
    if x.dtype.kind != "f" or not np.isfinite(x[m]).all():
        raise Unsure("round of a non-finite or non-float value")
    a = np.abs(x)
    r = np.floor(a)
    return np.copysign(r + (a - r >= 0.5), x)


def _lerp(m, a, b, t):
    return a * (1.0 - t) + b * t


def _radians(m, x):
    return x * (math.pi / 180.0)


def _static(m, x):
    if isinstance(x, np.ndarray):
        raise Unsure("wp.static of a value that differs between lanes")
    return x


# the scalar builtins NumPy evaluates with Python's bits, each called as fn(m, *args)
_ELEMENTWISE = {
    "sqrt": _sqrt,
    "abs": _abs,
    "floor": _rounding("floor", math.floor, np.floor),
    "ceil": _rounding("ceil", math.ceil, np.ceil),
    "trunc": _rounding("trunc", math.trunc, np.trunc),
    "min": lambda m, a, b: py_min(a, b),
    "max": lambda m, a, b: py_max(a, b),
    "clamp": lambda m, x, lo, hi: py_min(py_max(x, lo), hi),
    "float32": _float32,
    "rand_init": _rand_init,
    "sign": _sign,
    "static": _static,
    "round": _round,
    "lerp": _lerp,
    "radians": _radians,
}
LANE_BUILTINS = frozenset(_MATH) | frozenset(_ELEMENTWISE) | VECTOR_BUILTINS


def call(name: str, args: list, m):
    """The builtin `name` of `args` (lane values) on the lanes in m."""
    if any(is_bool(a) for a in args):
        raise Unsure("a builtin on a bool")
    if name in VECTOR_BUILTINS:
        return vector_call(name, args, m)
    if any(isinstance(a, tuple) for a in args) or (name != "abs" and not all(scalar_lanes(a) for a in args)):
        raise Unsure(f"{name} of a vector")
    fn = _MATH.get(name)
    if fn is not None:
        return _math_call(name, fn, args, m)
    fn = _ELEMENTWISE.get(name)
    if fn is not None:
        return fn(m, *args)
    raise Unsure(f"builtin {name!r}")
