"""The vector, matrix, quaternion and transform builtins (["call", name, args]) on lane values.

They are the NumPy operations the thread-by-thread interpreter's `BUILTINS` call, on stacks of
lanes (matmul, det, cross), or its sums written out in its order (`generator.linalg.dot`); the
sines and cosines of a quaternion go through Python's `math`, lane by lane.
"""

from __future__ import annotations

import math

import numpy as np

from generator import linalg
from generator.lanes_values import Unsure, elem, full, scalar_lanes


def _vec(name: str, x, *dims):
    """x, checked to hold one vector of shape dims per lane."""
    if not isinstance(x, np.ndarray) or x.shape[1:] != dims:
        raise Unsure(f"{name} of a {np.shape(x)[1:]} value")
    return x


def _lanes_math(fn, x, m):
    if not isinstance(x, np.ndarray):
        return fn(x)
    out = np.zeros(m.shape[0], dtype=np.float64)
    out[m] = [fn(v) for v in x[m].tolist()]
    return out


def _col(x):
    return x[:, None] if isinstance(x, np.ndarray) else x


def _rotate(q, v):
    # Warp's quat layout is (x, y, z, w)
    u, w = q[:, :3], q[:, 3]
    return v * _col(2.0 * w * w - 1.0) + np.cross(u, v) * _col(2.0 * w) + u * _col(2.0 * linalg.dot(u, v))


def _normalize(a):
    n = np.sqrt(linalg.dot(a, a))
    pos = n > 0.0
    return np.where(pos[:, None], a / np.where(pos, n, 1.0)[:, None], 0.0)


# builtins of one vector, or of two vectors of one shape
_ON_VECTORS = {
    "dot": lambda a, b: linalg.dot(a, b),
    "length": lambda a: np.sqrt(linalg.dot(a, a)),
    "length_sq": lambda a: linalg.dot(a, a),
    "normalize": _normalize,
    "cw_mul": lambda a, b: a * b,
    "cw_div": lambda a, b: a / b,
    "cross": lambda a, b: np.cross(_vec("cross", a, 3), b),
    "outer": lambda a, b: a[:, :, None] * b[:, None, :],
}
_OF_TWO_VECTORS = {"dot", "cw_mul", "cw_div", "cross", "outer"}


def _vector_operands(name: str, args: list) -> tuple:
    a = args[0]
    if elem(a) != 1:
        raise Unsure(f"{name} of a non-vector")
    if name not in _OF_TWO_VECTORS:
        return (a,)
    b = args[1]
    if not isinstance(b, np.ndarray) or b.shape != a.shape:
        raise Unsure(f"{name} of vectors of two shapes")
    return a, b


def _transform(m, p, q):
    return (_vec("transform", p, 3).astype(np.float64), _vec("transform", q, 4).astype(np.float64))


def _transform_point(m, t, x):
    if not (isinstance(t, tuple) and len(t) == 2):
        raise Unsure("transform_point of a non-transform")
    return _rotate(_vec("transform_point", t[1], 4), _vec("transform_point", x, 3)) + t[0]


def _transform_of(name: str, t) -> tuple:
    if not (isinstance(t, tuple) and len(t) == 2):
        raise Unsure(f"{name} of a non-transform")
    return _vec(name, t[0], 3), _vec(name, t[1], 4)


def _conjugate(q):
    return np.concatenate([-q[:, :3], q[:, 3:]], axis=1)


def _transform_vector(m, t, x):
    return _rotate(_transform_of("transform_vector", t)[1], _vec("transform_vector", x, 3))


def _transform_inverse(m, t):
    p, q = _transform_of("transform_inverse", t)
    q_inv = _conjugate(q)
    return -_rotate(q_inv, p), q_inv


def _transform_multiply(m, a, b):
    (ap, aq), (bp, bq) = _transform_of("transform_multiply", a), _transform_of("transform_multiply", b)
    return _rotate(aq, bp) + ap, _quat_mul(m, aq, bq)


def _transform_part(k: int):
    def part(m, t):
        return np.array(_transform_of("transform_get_" + ("translation", "rotation")[k], t)[k], dtype=np.float64)
    return part


def _transform_identity(m, dtype=None):
    n = m.shape[0]
    return np.zeros((n, 3)), np.tile(np.array([0.0, 0.0, 0.0, 1.0]), (n, 1))


def _transpose(m, a):
    if elem(a) != 2:
        raise Unsure("transpose of a non-matrix")
    return np.array(np.swapaxes(a, 1, 2))


def _determinant(m, a):
    if elem(a) != 2 or a.shape[1] != a.shape[2]:
        raise Unsure("determinant of a non-square matrix")
    return linalg.det(a)


def _quat_from_axis_angle(m, axis, angle):
    _vec("quat_from_axis_angle", axis, 3)
    if not scalar_lanes(angle):
        raise Unsure("quat_from_axis_angle of a vector angle")
    h = 0.5 * angle
    s_, c_ = _lanes_math(math.sin, h, m), _lanes_math(math.cos, h, m)
    return np.concatenate([axis.astype(np.float64) * _col(s_), full(c_, m)[:, None]], axis=1)


def _quat_rotate(m, q, v):
    return _rotate(_vec("quat_rotate", q, 4), _vec("quat_rotate", v, 3))


def _quat_rotate_inv(m, q, v):
    q = _vec("quat_rotate_inv", q, 4)
    return _rotate(np.concatenate([-q[:, :3], q[:, 3:]], axis=1), _vec("quat_rotate_inv", v, 3))


def _quat_mul(m, a, b):
    a, b = _vec("mul", a, 4), _vec("mul", b, 4)
    av, aw, bv, bw = a[:, :3], a[:, 3], b[:, :3], b[:, 3]
    return np.concatenate([_col(aw) * bv + _col(bw) * av + np.cross(av, bv), (aw * bw - linalg.dot(av, bv))[:, None]],
                          axis=1)


def _quat_inverse(m, q):
    return _conjugate(_vec("quat_inverse", q, 4).astype(np.float64))


def _quat_to_matrix(m, q):
    q = _vec("quat_to_matrix", q, 4)
    n = q.shape[0]
    return np.stack([_rotate(q, np.tile(e, (n, 1))) for e in np.eye(3)], axis=2)


def _quat_identity(m, dtype=None):
    return np.tile(np.array([0.0, 0.0, 0.0, 1.0]), (m.shape[0], 1))


def _trace(m, a):
    if elem(a) != 2 or a.shape[1] != a.shape[2]:
        raise Unsure("trace of a non-square matrix")
    return linalg.trace(a)


def _ddot(m, a, b):
    if elem(a) != 2 or not isinstance(b, np.ndarray) or b.shape != a.shape:
        raise Unsure("ddot of values that are not matrices of one shape")
    return linalg.ddot(a, b)


def _len(m, a):
    if elem(a) != 1:
        raise Unsure("len of a non-vector")
    return a.shape[1]


def _diag(m, a):
    a = _vec("diag", a, *np.shape(a)[1:2])
    n = a.shape[1]
    out = np.zeros((a.shape[0], n, n), dtype=a.dtype)
    out[:, np.arange(n), np.arange(n)] = a  # zeros off the diagonal (a * eye would give -0.0)
    return out


def _from_vectors(name: str, axis: int):
    def build(m, *vs):
        if not vs or any(elem(x) != 1 or x.shape != vs[0].shape for x in vs):
            raise Unsure(f"{name} of values that are not vectors of one length")
        return np.stack(vs, axis=axis)
    return build


def _spatial_vector(m, *xs):
    if len(xs) != 2:
        raise Unsure("spatial_vector of scalars")
    return np.concatenate([_vec("spatial_vector", x, 3).astype(np.float64) for x in xs], axis=1)


def _spatial_half(k: int):
    def half(m, s):
        return np.array(_vec("spatial_" + ("top", "bottom")[k], s, 6)[:, 3 * k:3 * k + 3], dtype=np.float64)
    return half


def _spatial_dot(m, a, b):
    return linalg.dot(_vec("spatial_dot", a, 6), _vec("spatial_dot", b, 6))


def _inverse(m, a):
    if elem(a) != 2 or a.shape[1] != a.shape[2]:
        raise Unsure("inverse of a non-square matrix")
    if (linalg.det(a)[m] == 0).any():
        raise Unsure("inverse of a singular matrix")
    return linalg.inverse(a)


def _get_diag(m, a):
    if elem(a) != 2 or a.shape[1] != a.shape[2]:
        raise Unsure("get_diag of a non-square matrix")
    return np.array(np.diagonal(a, axis1=1, axis2=2), dtype=np.float64)


def _quat_rpy(m, roll, pitch, yaw):
    if not all(scalar_lanes(a) and not isinstance(a, tuple) for a in (roll, pitch, yaw)):
        raise Unsure("quat_rpy of a vector angle")
    cy, sy = (full(_lanes_math(f, yaw * 0.5, m), m) for f in (math.cos, math.sin))
    cr, sr = (full(_lanes_math(f, roll * 0.5, m), m) for f in (math.cos, math.sin))
    cp, sp = (full(_lanes_math(f, pitch * 0.5, m), m) for f in (math.cos, math.sin))
    return np.stack([cy * sr * cp - sy * cr * sp, cy * cr * sp + sy * sr * cp, sy * cr * cp - cy * sr * sp,
                     cy * cr * cp + sy * sr * sp], axis=1)


def _quat_from_matrix(m, a):
    a = _vec("quat_from_matrix", a, 3, 3)
    out = np.zeros((a.shape[0], 4))
    for k in np.flatnonzero(m):  # lane by lane: the branches are the threads' own
        out[k] = linalg.quat_from_matrix(a[k])
    return out


def _edge_edge(m, p1, q1, p2, q2, epsilon):
    """closest_point_edge_edge lane by lane through the threads' own function (the same bits)."""
    ends = [_vec("closest_point_edge_edge", x, 3) for x in (p1, q1, p2, q2)]
    if isinstance(epsilon, np.ndarray):
        raise Unsure("closest_point_edge_edge of an epsilon per lane")
    out = np.zeros((m.shape[0], 3), dtype=np.float64)
    for j in np.flatnonzero(m).tolist():
        out[j] = linalg.closest_point_edge_edge(*(x[j] for x in ends), epsilon)
    return out


def _arg_extreme(name: str, fn):
    def arg(m, a):
        if elem(a) != 1:
            raise Unsure(f"{name} of a non-vector")
        return fn(a, axis=1).astype(np.int64)  # the first extreme component, as Warp's loop picks it
    return arg


_ON_TRANSFORMS = {"transform": _transform, "transformation": _transform, "transformf": _transform,
                  "transformd": _transform, "transformh": _transform,
                  "transform_point": _transform_point,
                  "transform_vector": _transform_vector, "transform_inverse": _transform_inverse,
                  "transform_multiply": _transform_multiply, "transform_get_translation": _transform_part(0),
                  "transform_get_rotation": _transform_part(1), "transform_identity": _transform_identity}
_ON_MATRICES_AND_QUATERNIONS = {
    "transpose": _transpose,
    "determinant": _determinant,
    "quat_from_axis_angle": _quat_from_axis_angle,
    "quat_rotate": _quat_rotate,
    "quat_rotate_inv": _quat_rotate_inv,
    "mul": _quat_mul,
    "quat_inverse": _quat_inverse,
    "quat_to_matrix": _quat_to_matrix,
    "quat_identity": _quat_identity,
    "len": _len,
    "trace": _trace,
    "ddot": _ddot,
    "diag": _diag,
    "matrix_from_rows": _from_vectors("matrix_from_rows", 1),
    "matrix_from_cols": _from_vectors("matrix_from_cols", 2),
    "spatial_vector": _spatial_vector,
    "spatial_top": _spatial_half(0),
    "spatial_bottom": _spatial_half(1),
    "spatial_dot": _spatial_dot,
    "inverse": _inverse,
    "inverse_approx": _inverse,
    "get_diag": _get_diag,
    "quat_rpy": _quat_rpy,
    "quat_from_matrix": _quat_from_matrix,
    "argmin": _arg_extreme("argmin", np.argmin),
    "argmax": _arg_extreme("argmax", np.argmax),
    "closest_point_edge_edge": _edge_edge,
}
VECTOR_BUILTINS = frozenset(_ON_TRANSFORMS) | frozenset(_ON_VECTORS) | frozenset(_ON_MATRICES_AND_QUATERNIONS)


def vector_call(name: str, args: list, m):
    """The vector builtin `name` of `args` on the lanes in m."""
    if name in _ON_TRANSFORMS:
        return _ON_TRANSFORMS[name](m, *args)
    if any(isinstance(a, tuple) for a in args):
        raise Unsure(f"{name} of a transform")
    if name in _ON_VECTORS:
        return _ON_VECTORS[name](*_vector_operands(name, args))
    if name in _ON_MATRICES_AND_QUATERNIONS:
        return _ON_MATRICES_AND_QUATERNIONS[name](m, *args)
    raise Unsure(f"builtin {name!r}")
