"""The thread-by-thread oracle's builtins: each Warp builtin a spec calls, as Python / NumPy on one
thread's values (floats in float64, vectors and matrices as float64 arrays, a tile as one NumPy
array), by name. `generator.oracle.Interpreter` calls them; the safety check
(`validator.safety`) takes the names Warp kernels may call from this table.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from generator import linalg
from generator.spec import TILE_BLOCK_DIM
from generator.oracle_expect import EXPECT
from generator.warp_rng import rand_init


def _clamp(x, lo, hi):
    return min(max(x, lo), hi)


def _normalize(v):
    n = float(np.sqrt(linalg.dot(v, v)))
    return v / n if n > 0.0 else np.zeros_like(v)


def _quat_from_axis_angle(axis, angle):
    h = 0.5 * angle
    return np.concatenate([np.asarray(axis, dtype=np.float64) * math.sin(h), [math.cos(h)]])


def _quat_rotate(q, v):
    # Warp's quat layout is (x, y, z, w)
    u, w = q[:3], q[3]
    return v * (2.0 * w * w - 1.0) + np.cross(u, v) * (2.0 * w) + u * (2.0 * float(linalg.dot(u, v)))


def _quat_mul(a, b):
    av, aw, bv, bw = a[:3], a[3], b[:3], b[3]
    return np.concatenate([aw * bv + bw * av + np.cross(av, bv), [aw * bw - float(linalg.dot(av, bv))]])


def _quat_inverse(q):
    # Warp's quat_inverse (native/quat.h) is the conjugate: (-x, -y, -z, w), no division by |q|^2
    return np.concatenate([-np.asarray(q[:3], dtype=np.float64), [float(q[3])]])


def _quat_to_matrix(q):
    # native/quat.h: the columns are the rotated unit axes
    return np.stack([_quat_rotate(q, e) for e in np.eye(3)], axis=1)


def _transform_inverse(t):
    q_inv = _quat_inverse(t[1])
    return -_quat_rotate(q_inv, t[0]), q_inv


def _transform_multiply(a, b):
    return _quat_rotate(a[1], b[0]) + a[0], _quat_mul(a[1], b[1])


def _tile_load(arr, shape, offset):
    sl = tuple(slice(o, o + s) for o, s in zip(offset, shape))
    return np.array(arr[sl], dtype=np.float64)


def _tile_store(arr, t, offset):
    sl = tuple(slice(o, o + s) for o, s in zip(offset, t.shape))
    arr[sl] = t


def _tile_atomic_add(arr, t, offset=None):
    offset = offset or (0,) * t.ndim
    sl = tuple(slice(o, o + s) for o, s in zip(offset, t.shape))
    arr[sl] += t


def _tile_matmul(a, b, out=None):
    if out is None:
        return linalg.product(a, b)
    out += linalg.product(a, b)  # the 3-argument form accumulates into `out` in place
    return None


def _tile_map(fn, *tiles):
    return np.vectorize(fn, otypes=[np.float64])(*tiles)


def _untile(t):
    # the oracle runs a tile kernel's body once per tile, not once per thread: it takes back only
    # a tile whose lanes all hold one value (the grammar tiles block-uniform values only)
    if not np.all(t == t.flat[0]):
        raise ValueError("untile of a tile whose lanes differ: the oracle has no per-thread values")
    return float(t.flat[0])


def _unique_extreme(t, fn):
    # Warp leaves which index a tied extreme gives unspecified (it depends on block_dim and device)
    i = int(fn(t))
    if np.count_nonzero(t == t.flat[i]) != 1:
        raise ValueError("tile_argmin / tile_argmax of a tile whose extreme is tied")
    return np.array([i])


def _tile_sort(keys, values):
    # in place, ascending keys with the values permuted along; Warp's sort is not stable, so the
    # keys must be distinct
    flat = keys.ravel()
    if len(np.unique(flat)) != flat.size:
        raise ValueError("tile_sort of tied keys: their order is unspecified")
    order = np.argsort(flat, kind="stable")
    keys[...] = flat[order].reshape(keys.shape)
    values[...] = values.ravel()[order].reshape(values.shape)


def _tile_axpy(alpha, src, dest):
    dest += alpha * src  # in place, as Warp's dest += alpha * src


def _tile_view(t, offset, shape):
    sl = tuple(slice(o, o + s) for o, s in zip(offset, shape))
    return np.array(t[sl], dtype=np.float64)


def _lower_bound(arr, *args):
    # native/array.h: a binary search of [begin, end) whose upper end starts at end - 1, so a value
    # above every element gives end - 1, not end (NumPy's searchsorted, side="left", capped)
    begin, end, value = (0, arr.shape[0], args[0]) if len(args) == 1 else args
    part = np.array([arr[(k,)] for k in range(begin, end)])  # element by element: the race check's arrays note each read
    if np.any(part[1:] < part[:-1]):
        raise ValueError("lower_bound of a range that is not sorted")
    return begin + min(int(np.searchsorted(part, value, side="left")), max(end - begin - 1, 0))


def _tile_diag_add(a, d):
    out = np.array(a, dtype=np.float64)  # a new tile: d on the diagonal, every other entry as in a
    k = np.arange(len(d))
    out[k, k] += d
    return out


def _sign(x):
    # Warp's sign (native/builtin.h): -1 if x < 0 else 1, so sign(0.0) = sign(-0.0) = 1
    one = 1.0 if isinstance(x, float) else 1
    return -one if x < 0 else one


def _round(x):
    # C's round: half away from zero (Python's round() is half to even)
    a = abs(x)
    r = math.floor(a)
    return math.copysign(float(r + 1 if a - r >= 0.5 else r), x)


def _rint(x):
    # C's rint (round half to even, the sign of x kept: rint(-0.4) = -0.0); Python's round() is half to even
    return math.copysign(float(round(x)), x)


def _frac(x):
    # Warp's frac (native/builtin.h): x - trunc(x), with C's trunc keeping the sign (frac(-0.0) = 0.0)
    return x - math.copysign(float(math.trunc(x)), x)


def _smoothstep(edge0, edge1, x):
    # Warp's formula (native/builtin.h): t = clamp((x - edge0) / (edge1 - edge0), 0, 1), t * t * (3 - 2 t)
    t = _clamp((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _mod(a, b):
    # Warp's mod: C's truncated remainder (fmod on floats, % on integers), the sign of a
    if isinstance(a, int) and isinstance(b, int):
        r = abs(a) % abs(b)
        return r if a >= 0 else -r
    return math.fmod(a, b)


def _floordiv(a, b):
    # Warp's floordiv: floor(a / b) on floats, floor division on integers (Python's //)
    if isinstance(a, int) and isinstance(b, int):
        return a // b
    return float(math.floor(a / b))


def _div(a, b):
    # Warp's div: a / b, truncated toward zero on integers (C)
    if isinstance(a, int) and isinstance(b, int):
        q = abs(a) // abs(b)
        return q if (a >= 0) == (b >= 0) else -q
    return a / b


def _quat_rpy(roll, pitch, yaw):
    # Warp's quat_rpy (native/quat.h): half angles, products in its order, (x, y, z, w)
    cy, sy = math.cos(yaw * 0.5), math.sin(yaw * 0.5)
    cr, sr = math.cos(roll * 0.5), math.sin(roll * 0.5)
    cp, sp = math.cos(pitch * 0.5), math.sin(pitch * 0.5)
    return np.array([cy * sr * cp - sy * cr * sp, cy * cr * sp + sy * sr * cp, sy * cr * cp - cy * sr * sp,
                     cy * cr * cp + sy * sr * sp], dtype=np.float64)


def _bit_count(x):
    # Warp's bit_count: the set bits of x's two's complement; the grammar counts int32 / uint32 values only
    if not -(1 << 31) <= x < (1 << 32):
        raise ValueError(f"bit_count of {x}, not an int32 / uint32 value")
    return bin(x & 0xFFFFFFFF).count("1")


def erfinv(y):
    """erf's inverse in float64, for |y| < 1: Winitzki's approximation (about 2e-3 relative), then
    Newton's steps on math.erf (each squares the error: the last two change at most an ulp)."""
    if not -1.0 < y < 1.0:
        raise ValueError(f"erfinv of {y}")
    if y == 0.0:
        return y
    a, ln = 0.147, math.log1p(-y * y)
    t = 2.0 / (math.pi * a) + 0.5 * ln
    x = math.copysign(math.sqrt(math.sqrt(t * t - ln / a) - t), y)
    for _ in range(4):
        x -= (math.erf(x) - y) / (2.0 / math.sqrt(math.pi) * math.exp(-x * x))
    return x


def erfcinv(y):
    """erfc's inverse, for 0 < y < 2: erfinv(1 - y)."""
    return erfinv(1.0 - y)


def _identity(n, dtype=None):
    return np.eye(n, dtype=np.float64)


def _diag(v):
    # zeros off the diagonal, not v * eye (whose -x * 0.0 would be -0.0)
    out = np.zeros((len(v), len(v)), dtype=v.dtype)
    out[np.arange(len(v)), np.arange(len(v))] = v
    return out


BUILTINS = {
    **linalg.VOLUME_BUILTINS,  # a wp.Volume's: index space, sampling and lookups
    **EXPECT,
    "sin": math.sin,
    "cos": math.cos,
    "tanh": math.tanh,
    "exp": math.exp,
    "log": math.log,
    "sqrt": math.sqrt,
    "abs": abs,
    "floor": lambda x: float(math.floor(x)),
    "ceil": lambda x: float(math.ceil(x)),
    "min": min,
    "max": max,
    "clamp": _clamp,
    "trunc": lambda x: float(math.trunc(x)),
    "atan": math.atan,
    "atan2": math.atan2,
    "sinh": math.sinh,
    "cosh": math.cosh,
    "log2": math.log2,
    "log10": math.log10,
    "pow": math.pow,
    "acos": math.acos,
    "asin": math.asin,
    # vector / matrix / quaternion math on float64 NumPy arrays
    "dot": lambda a, b: float(linalg.dot(a, b)),
    "cross": np.cross,
    "length": lambda a: float(np.sqrt(linalg.dot(a, a))),
    "length_sq": lambda a: float(linalg.dot(a, a)),
    "normalize": _normalize,
    "cw_mul": lambda a, b: a * b,
    "cw_div": lambda a, b: a / b,
    "transpose": lambda m: np.array(m.T),
    "determinant": lambda m: float(linalg.det(m)),
    "outer": np.outer,
    "quat_from_axis_angle": _quat_from_axis_angle,
    "quat_rotate": _quat_rotate,
    "quat_rotate_inv": lambda q, v: _quat_rotate(np.concatenate([-q[:3], q[3:]]), v),
    "mul": _quat_mul,
    "transform": lambda p, q: (np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)),
    "transform_point": lambda t, x: _quat_rotate(t[1], x) + t[0],
    "transform_vector": lambda t, x: _quat_rotate(t[1], x),
    "transform_inverse": _transform_inverse,
    "transform_multiply": _transform_multiply,
    "transform_get_translation": lambda t: np.array(t[0], dtype=np.float64),
    "transform_get_rotation": lambda t: np.array(t[1], dtype=np.float64),
    "transform_identity": lambda dtype=None: (np.zeros(3), np.array([0.0, 0.0, 0.0, 1.0])),
    "quat_identity": lambda dtype=None: np.array([0.0, 0.0, 0.0, 1.0]),
    "quat_inverse": _quat_inverse,
    "quat_to_matrix": _quat_to_matrix,
    # RNG (exact reproduction of Warp's)
    "rand_init": rand_init,
    # tiles: one NumPy array per tile, the body evaluated once per tile index
    "tile_load": _tile_load,
    "tile_store": _tile_store,
    "tile_atomic_add": _tile_atomic_add,
    "tile_map": _tile_map,
    "tile_sum": lambda t: np.array([t.sum()]),
    "tile_max": lambda t: np.array([t.max()]),
    "tile_min": lambda t: np.array([t.min()]),
    "tile_scan_inclusive": lambda t: np.cumsum(t),
    "tile_scan_exclusive": lambda t: np.cumsum(t) - t,
    "tile_scan_max_inclusive": lambda t: np.maximum.accumulate(t),
    "tile_scan_min_inclusive": lambda t: np.minimum.accumulate(t),
    # wp.tile_reduce(wp.add / wp.min / wp.max, t): the tile folded by the builtin, in index order
    "tile_reduce": lambda fn, t: np.array([functools.reduce(fn, t.ravel().tolist())]),
    "tile_broadcast": lambda t, shape: np.array(np.broadcast_to(t, shape), dtype=np.float64),
    "tile_extract": lambda t, *idx: float(t[idx]),
    "tile_matmul": _tile_matmul,
    "tile_zeros": lambda shape, dtype=None: np.zeros(shape),
    "tile_ones": lambda shape, dtype=None: np.ones(shape),
    "tile_full": lambda shape, value, dtype=None: np.full(shape, float(value)),
    "tile_arange": lambda *args, dtype=None: np.arange(*args).astype(np.float64),
    "float32": float,
    "tile_transpose": lambda t: np.array(t.T),
    "float64": float,
    # a block-uniform value as a tile of one lane per thread, and back (`_untile`)
    "tile": lambda x: np.full((TILE_BLOCK_DIM,), float(x)),
    "untile": _untile,
    "tile_argmin": lambda t: _unique_extreme(t, np.argmin),
    "tile_argmax": lambda t: _unique_extreme(t, np.argmax),
    "tile_sort": _tile_sort,
    "tile_axpy": _tile_axpy,
    "tile_dot": lambda a, b: np.array([float(np.dot(a.ravel(), b.ravel()))]),
    "tile_astype": lambda t, dtype: np.array(t, dtype=np.float64),  # float32 <-> float64 only: the oracle is float64
    "tile_view": _tile_view,
    "tile_reshape": lambda t, shape: np.array(t.reshape(shape), dtype=np.float64),  # row-major, as NumPy's
    "tile_squeeze": lambda t: np.array(np.squeeze(t), dtype=np.float64),
    "tile_diag_add": _tile_diag_add,
    # scalar and matrix builders
    "sign": _sign,
    "static": lambda x: x,  # wp.static(e) of a literal expression: e's value, folded by Python
    "identity": _identity,
    "diag": _diag,
    "round": _round,
    "lerp": lambda a, b, t: a * (1.0 - t) + b * t,  # Warp's formula (native/builtin.h)
    "radians": lambda x: x * (math.pi / 180.0),
    "trace": lambda m: float(linalg.trace(m)),
    "ddot": lambda a, b: float(linalg.ddot(a, b)),
    "matrix_from_rows": lambda *rows: np.stack(rows, axis=0),
    "matrix_from_cols": lambda *cols: np.stack(cols, axis=1),
    # the generic vector constructor, spatial vectors (6 components: top, bottom), matrix inverse
    "vector": lambda *xs: np.array([float(x) for x in xs], dtype=np.float64),
    "spatial_vector": lambda *xs: (np.concatenate([np.asarray(x, dtype=np.float64) for x in xs]) if len(xs) == 2
                                   else np.array([float(x) for x in xs], dtype=np.float64)),
    "spatial_top": lambda s: np.array(s[:3], dtype=np.float64),
    "spatial_bottom": lambda s: np.array(s[3:], dtype=np.float64),
    "spatial_dot": lambda a, b: float(linalg.dot(a, b)),
    "inverse": linalg.inverse,
    "get_diag": lambda m: np.array(np.diagonal(m), dtype=np.float64),
    "transformation": lambda p, q: (np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)),
    "transformf": lambda p, q: (np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)),
    "transformd": lambda p, q: (np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)),
    "transformh": lambda p, q: (np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)),
    "quat_rpy": _quat_rpy,
    "quat_from_matrix": linalg.quat_from_matrix,
    # the index of a vector's first smallest / largest component (integer vectors: exact ties)
    "argmin": lambda a: int(np.argmin(a)),
    "argmax": lambda a: int(np.argmax(a)),
    "bit_count": _bit_count,
    "closest_point_edge_edge": linalg.closest_point_edge_edge,
    "lower_bound": _lower_bound,
    "erfinv": erfinv,
    "erfcinv": erfcinv,
    "inverse_approx": linalg.inverse,
    "matrix": lambda *xs, shape, dtype=None: np.array([float(x) for x in xs], dtype=np.float64).reshape(shape),
    "div_approx": lambda a, b: a / b,  # exact on the CPU; a GPU's is within float32's tolerance
    # more scalar math (Warp's native/builtin.h formulas)
    "tan": math.tan,
    "degrees": lambda x: x * (180.0 / math.pi),
    "erf": math.erf,
    "erfc": math.erfc,
    "cbrt": math.cbrt,
    "frac": _frac,
    "rint": _rint,
    "copysign": math.copysign,
    "step": lambda x: 1.0 if x < 0 else 0.0,  # Warp's step: 1 where x < 0 (not GLSL's)
    "nonzero": lambda x: 0.0 if x == 0 else 1.0,
    "smoothstep": _smoothstep,
    "mod": _mod,
    "floordiv": _floordiv,
    "isfinite": math.isfinite,
    "isnan": math.isnan,
    "isinf": math.isinf,
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "div": _div,
}

# builtins a kernel calls by Python's bare name, not as wp.NAME: len(v) of a vector; with the casts
# float(x), int(x), bool(x) (["cast", ...], `generator.spec.PY_CASTS`) and range(...) / reversed(range(...)) of loops, the
# only bare calls the safety wall admits (`validator.safety`)
BARE_BUILTINS = {"len": len}
BARE_CALLS = frozenset(BARE_BUILTINS) | frozenset({"range", "reversed", "float", "int", "bool"})
