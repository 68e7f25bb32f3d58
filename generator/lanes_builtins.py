"""The builtins of ["call", name, args] on lane values: the scalar ones here, the vector ones in
`generator.lanes_vector`.

The math functions whose NumPy versions may round differently from Python's `math` (all but
sqrt, floor, ceil, trunc, abs, min, max) are called through `math`, lane by lane, on the lanes
that execute; the rest are NumPy's, which give Python's bits.
"""

from __future__ import annotations

import math

import numpy as np

from generator.lanes_values import Unsure, cast, full, is_bool, is_int, scalar_lanes
from generator.lanes_vector import VECTOR_BUILTINS, vector_call
from generator.oracle_builtins import erfcinv, erfinv
from generator.oracle_expect import FAILS
from generator.warp_rng import rand_init

# the builtins evaluated lane by lane through Python's math module (same bits, same exceptions)
_MATH = {
    "sin": math.sin, "cos": math.cos, "tanh": math.tanh, "exp": math.exp, "log": math.log,
    "atan": math.atan, "atan2": math.atan2, "sinh": math.sinh, "cosh": math.cosh,
    "log2": math.log2, "log10": math.log10, "pow": math.pow, "acos": math.acos, "asin": math.asin,
    "tan": math.tan, "erf": math.erf, "erfc": math.erfc, "cbrt": math.cbrt,
    "erfinv": erfinv, "erfcinv": erfcinv,  # the threads' own float64 functions (Newton's steps on math.erf)
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


def _frac(m, x):
    if not isinstance(x, np.ndarray):
        return x - math.copysign(float(math.trunc(x)), x)
    if x.dtype.kind != "f" or not np.isfinite(x[m]).all():
        raise Unsure("frac of a non-finite or non-float value")
    return x - np.trunc(x)  # NumPy's trunc keeps the sign, as C's does


def _rint(m, x):
    if not isinstance(x, np.ndarray):
        return math.copysign(float(round(x)), x)
    if x.dtype.kind != "f" or not np.isfinite(x[m]).all():
        raise Unsure("rint of a non-finite or non-float value")
    return np.rint(x)  # half to even, the sign kept


def _float_lanes(name: str, *xs) -> None:
    if any(isinstance(x, np.ndarray) and x.dtype.kind != "f" for x in xs) or any(isinstance(x, int) for x in xs):
        raise Unsure(f"{name} of an integer")


def _copysign(m, a, b):
    if not isinstance(a, np.ndarray) and not isinstance(b, np.ndarray):
        return math.copysign(a, b)
    _float_lanes("copysign", a, b)
    return np.copysign(a, b)


def _step(m, x):
    if not isinstance(x, np.ndarray):
        return 1.0 if x < 0 else 0.0
    _float_lanes("step", x)
    return np.where(x < 0, 1.0, 0.0)


def _nonzero(m, x):
    if not isinstance(x, np.ndarray):
        return 0.0 if x == 0 else 1.0
    _float_lanes("nonzero", x)
    return np.where(x == 0, 0.0, 1.0)


def _smoothstep(m, edge0, edge1, x):
    _float_lanes("smoothstep", edge0, edge1, x)
    width = edge1 - edge0
    if (full(width, m)[m] == 0).any():
        raise Unsure("smoothstep between equal edges")
    t = py_min(py_max((x - edge0) / width, 0.0), 1.0)
    return t * t * (3.0 - 2.0 * t)


def _divisor(name: str, a, b, m):
    _float_lanes(name, a, b)
    if (full(b, m)[m] == 0).any():
        raise Unsure(f"{name} by zero")


def _mod(m, a, b):
    if not isinstance(a, np.ndarray) and not isinstance(b, np.ndarray):
        return math.fmod(a, b) if isinstance(a, float) or isinstance(b, float) else int(math.copysign(abs(a) % abs(b), a))
    _divisor("mod", a, b, m)
    return np.fmod(a, np.where(m, b, 1.0))  # exact, as C's fmod and Python's math.fmod


def _floordiv(m, a, b):
    if not isinstance(a, np.ndarray) and not isinstance(b, np.ndarray):
        return float(math.floor(a / b)) if isinstance(a, float) or isinstance(b, float) else a // b
    _divisor("floordiv", a, b, m)
    return np.floor(a / np.where(m, b, 1.0)) + 0.0  # + 0.0: Python's float(math.floor(-0.0)) is 0.0


def _div(m, a, b):
    if not isinstance(a, np.ndarray) and not isinstance(b, np.ndarray) and (isinstance(a, float) or isinstance(b, float)):
        return a / b
    _divisor("div", a, b, m)
    return a / np.where(m, b, 1.0)


def _test(fn, np_fn):
    def tested(m, x):
        if not isinstance(x, np.ndarray):
            return fn(x)
        _float_lanes("a finiteness test", x)
        return np_fn(x)
    return tested


def _bit_count(m, x):
    if not is_int(x):
        raise Unsure("bit_count of a non-integer")
    if not isinstance(x, np.ndarray):
        return bin(x & 0xFFFFFFFF).count("1") if -(1 << 31) <= x < (1 << 32) else _bit_count_range()
    if ((x[m] < -(1 << 31)) | (x[m] >= (1 << 32))).any():
        _bit_count_range()
    return np.bitwise_count(np.bitwise_and(x, 0xFFFFFFFF)).astype(np.int64)  # two's complement, 32 bits


def _bit_count_range():
    raise Unsure("bit_count of a value that is not an int32 / uint32")


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
    "degrees": lambda m, x: x * (180.0 / math.pi),
    "frac": _frac,
    "rint": _rint,
    "copysign": _copysign,
    "step": _step,
    "nonzero": _nonzero,
    "smoothstep": _smoothstep,
    "mod": _mod,
    "floordiv": _floordiv,
    "div": _div,
    "div_approx": _div,
    "add": lambda m, a, b: a + b,
    "sub": lambda m, a, b: a - b,
    "vector": lambda m, *xs: np.stack([full(cast("float32", x, m), m) for x in xs], axis=-1).astype(np.float64),
    "bit_count": _bit_count,
    "isfinite": _test(math.isfinite, np.isfinite),
    "isnan": _test(math.isnan, np.isnan),
    "isinf": _test(math.isinf, np.isinf),
}


def _expect(name: str):
    """wp.expect_* on the lanes that run it: nothing, or Unsure where it fails on one (the threads
    one by one then raise the oracle's reason)."""
    def on_lanes(m, *args):
        cols = [np.asarray(full(a, m)[m], dtype=np.float64) for a in args]
        if np.any(FAILS[name](*cols)):
            raise Unsure(f"{name} fails on a thread")
    return on_lanes


_ELEMENTWISE.update({name: _expect(name) for name in FAILS})
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
