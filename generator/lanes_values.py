"""Lane values: one value of every thread at once, and the ways the lanes shape and merge them.

A lane value is a Python scalar where every lane has the same value (literals, scalar arguments)
and a float64, int64 or bool array otherwise, lanes first: a vec3 is a (lanes, 3) array, a mat33
a (lanes, 3, 3) one, a transform a tuple of two. `m`, everywhere in the lanes, is the mask of the
lanes that execute: a bool array with one entry per lane.
"""

from __future__ import annotations

import math

import numpy as np

from generator.spec import CAST_FLOAT_DTYPES, FLOAT_DTYPES, PY_CASTS


class Unsure(Exception):
    """The lanes cannot be sure to give the thread-by-thread interpreter's bits here."""


def is_bool(x) -> bool:
    return isinstance(x, (bool, np.bool_)) or (isinstance(x, np.ndarray) and x.dtype == np.bool_)


def is_int(x) -> bool:
    if isinstance(x, np.ndarray):
        return x.dtype.kind in "iu"
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def is_float(x) -> bool:
    if isinstance(x, np.ndarray):
        return x.dtype.kind == "f"
    return isinstance(x, (float, np.floating))


def scalar_lanes(x) -> bool:
    """Whether x holds one scalar per lane (not a vector, matrix or transform per lane)."""
    return not isinstance(x, np.ndarray) or x.ndim == 1


def elem(x) -> int:
    """How many element dimensions a lane value has (0 for scalars, 1 vec, 2 mat)."""
    return x.ndim - 1 if isinstance(x, np.ndarray) else 0


def full(x, m: np.ndarray):
    """x as one entry per lane (a scalar repeated; an array as it is)."""
    return x if isinstance(x, np.ndarray) else np.full(m.shape[0], x)


def truth(x):
    """Python's truth of each lane's value (a NaN is true)."""
    if isinstance(x, tuple) or (isinstance(x, np.ndarray) and x.ndim != 1):
        raise Unsure("the truth of a vector")
    if isinstance(x, np.ndarray):
        return x if x.dtype == np.bool_ else x != 0
    return bool(x)


def lift(x, k: int):
    """A lane value with its element dimensions right-aligned to k, as NumPy broadcasts one
    thread's values (a scalar against a vec3, a vec3 against a mat33's rows)."""
    if not isinstance(x, np.ndarray):
        return x
    e = x.ndim - 1
    if e >= k:
        return x
    return x.reshape((x.shape[0],) + (1,) * (k - e) + x.shape[1:])


def where(m, a, b):
    """Per lane: a where m, else b (any element shape; tuples component by component)."""
    if isinstance(a, tuple) or isinstance(b, tuple):
        if not (isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b)):
            raise Unsure("a transform and another value in one variable")
        return tuple(where(m, x, y) for x, y in zip(a, b))
    k = max(elem(a), elem(b))
    if k and elem(a) != elem(b):
        raise Unsure("a variable changes between element shapes")
    mm = m.reshape(m.shape + (1,) * k) if k else m
    return np.where(mm, a, b)


def assign(env: dict, name: str, value, m, every: bool) -> None:
    """`name = value` on the lanes in m (`every`: on all lanes)."""
    if every or name not in env:
        env[name] = value
        return
    old = env[name]
    if is_bool(value) != is_bool(old):
        raise Unsure("a variable changes between bool and number")
    env[name] = where(m, value, old)


def cast(dtype: str, value, m):
    """`dtype(value)` on the lanes in m, as the thread-by-thread interpreter's `_as` casts."""
    if not scalar_lanes(value) or isinstance(value, tuple):
        raise Unsure("a vector where a scalar is expected")
    dtype = PY_CASTS.get(dtype, dtype)
    if dtype in FLOAT_DTYPES or dtype in CAST_FLOAT_DTYPES:  # not rounded, as the interpreter's `_as`
        if is_bool(value) or is_int(value):
            return value.astype(np.float64) if isinstance(value, np.ndarray) else float(value)
        return value if isinstance(value, np.ndarray) else float(value)
    if dtype == "bool":
        return truth(value)
    if is_float(value):
        if isinstance(value, np.ndarray):
            if not np.isfinite(value[m]).all():
                raise Unsure("a non-finite value cast to an integer")
            if np.abs(value[m]).max(initial=0.0) >= 2.0**62:
                raise Unsure("a float cast to an integer beyond int64")
            return _wrap(dtype, np.trunc(np.where(m, value, 0.0)).astype(np.int64), m)
        return _wrap(dtype, int(math.trunc(value)), m)
    if isinstance(value, np.ndarray):
        return _wrap(dtype, value.astype(np.int64), m)
    return _wrap(dtype, int(value), m)


# NumPy's conversion of int64 to a narrower integer type keeps the low bits, as C converts
_NARROW = {"int8": np.int8, "uint8": np.uint8, "int16": np.int16, "uint16": np.uint16, "int32": np.int32,
           "uint32": np.uint32}


def _wrap(dtype: str, v, m):
    """An int64 lane value (or a Python int) converted to the integer type `dtype`."""
    narrow = _NARROW.get(dtype)
    if narrow is not None:
        if isinstance(v, np.ndarray):
            return v.astype(narrow).astype(np.int64)
        return int(np.array(v, dtype=np.int64).astype(narrow))
    if dtype == "uint64" and (full(v, m)[m] < 0).any():
        raise Unsure("a negative value cast to uint64 (beyond int64 lanes)")
    return v
