"""Dot products, matrix products and determinants for the oracle, summed in one fixed order with
plain float64 multiplies and adds: no BLAS or LAPACK.

np.dot, `@` and np.linalg.det hand float64 work to OpenBLAS, whose kernels differ by CPU (FMA or
not, blocking) and, for det, by how getrf was entered: the same 2x2 determinant once came out one
ulp apart from the thread-by-thread interpreter and from the lanes in the same process (a CI run's
oracle_test). The oracle's bits reach records (the gradient example's finite differences), so
they must not depend on the machine. Every function works on the last axes, so one thread's
values (the interpreter) and a stack of every thread's (the lanes) go through the same operations
in the same order and give the same bits. Determinants use Warp's own formulas (native/mat.h).
"""

from __future__ import annotations

import math

import numpy as np


def dot(a, b):
    """sum_k a[..., k] * b[..., k], k in order."""
    r = a[..., 0] * b[..., 0]
    for k in range(1, a.shape[-1]):
        r = r + a[..., k] * b[..., k]
    return r


def matvec(m, v):
    """m[..., r, k] times v[..., k] -> [..., r]."""
    r = m[..., :, 0] * v[..., None, 0]
    for k in range(1, m.shape[-1]):
        r = r + m[..., :, k] * v[..., None, k]
    return r


def matmul(a, b):
    """a[..., r, k] times b[..., k, c] -> [..., r, c]."""
    r = a[..., :, 0, None] * b[..., None, 0, :]
    for k in range(1, a.shape[-1]):
        r = r + a[..., :, k, None] * b[..., None, k, :]
    return r


def product(a, b):
    """`a @ b` for one thread's float64 values: matrix times matrix or vector, vector times matrix."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim == 1:
        return matvec(np.swapaxes(b, -1, -2), a)
    if b.ndim == 1:
        return matvec(a, b)
    return matmul(a, b)


def det(m):
    """Determinant of m[..., n, n] for n in 2, 3, 4, as Warp writes it."""
    n = m.shape[-1]
    x = lambda i, j: m[..., i, j]  # noqa: E731
    if n == 2:
        return x(0, 0) * x(1, 1) - x(1, 0) * x(0, 1)
    if n == 3:  # dot(row 0, cross(row 1, row 2))
        c0 = x(1, 1) * x(2, 2) - x(1, 2) * x(2, 1)
        c1 = x(1, 2) * x(2, 0) - x(1, 0) * x(2, 2)
        c2 = x(1, 0) * x(2, 1) - x(1, 1) * x(2, 0)
        return x(0, 0) * c0 + x(0, 1) * c1 + x(0, 2) * c2
    if n == 4:  # the 2x2 minors of columns 2 and 3, then the cofactors of columns 0 and 1
        y01 = x(0, 2) * x(1, 3) - x(1, 2) * x(0, 3)
        y02 = x(0, 2) * x(2, 3) - x(2, 2) * x(0, 3)
        y03 = x(0, 2) * x(3, 3) - x(3, 2) * x(0, 3)
        y12 = x(1, 2) * x(2, 3) - x(2, 2) * x(1, 3)
        y13 = x(1, 2) * x(3, 3) - x(3, 2) * x(1, 3)
        y23 = x(2, 2) * x(3, 3) - x(3, 2) * x(2, 3)
        z30 = x(1, 1) * y02 - x(2, 1) * y01 - x(0, 1) * y12
        z20 = x(0, 1) * y13 - x(1, 1) * y03 + x(3, 1) * y01
        z10 = x(2, 1) * y03 - x(3, 1) * y02 - x(0, 1) * y23
        z00 = x(1, 1) * y23 - x(2, 1) * y13 + x(3, 1) * y12
        return x(3, 0) * z30 + x(2, 0) * z20 + x(1, 0) * z10 + x(0, 0) * z00
    raise ValueError(f"determinant of a {n}x{n} matrix")


def inverse(m):
    """The inverse of m[..., n, n] (n in 2, 3, 4): the adjugate (cofactors by `det` of the minors)
    over the determinant, entry by entry in one order (the grammar inverts diagonally dominant
    matrices only, far from singular)."""
    n = m.shape[-1]
    d = det(m)
    out = np.empty(m.shape, dtype=np.float64)
    for i in range(n):
        for j in range(n):
            minor = np.delete(np.delete(m, i, axis=-2), j, axis=-1)
            cof = minor[..., 0, 0] if n == 2 else det(minor)
            out[..., j, i] = (cof if (i + j) % 2 == 0 else -cof) / d
    return out


def ddot(a, b):
    """sum_ij a[..., i, j] * b[..., i, j], rows then columns in order (Warp's ddot, native/mat.h)."""
    rows, cols = a.shape[-2], a.shape[-1]
    r = a[..., 0, 0] * b[..., 0, 0]
    for k in range(1, rows * cols):
        r = r + a[..., k // cols, k % cols] * b[..., k // cols, k % cols]
    return r


def trace(m):
    """m[..., 0, 0] + m[..., 1, 1] + ..., in order (Warp's trace)."""
    r = m[..., 0, 0]
    for k in range(1, m.shape[-1]):
        r = r + m[..., k, k]
    return r


def quat_from_matrix(m):
    """Warp's quat_from_matrix (native/quat.h) of one 3x3 matrix, (x, y, z, w): Shepperd's branches
    on the trace and the largest diagonal entry, then normalized (the grammar converts rotation
    matrices only, where every branch it takes has h >= 1)."""
    tr = m[0, 0] + m[1, 1] + m[2, 2]
    if tr >= 0.0:
        h = float(np.sqrt(tr + 1.0))
        w, h = 0.5 * h, 0.5 / h
        x, y, z = (m[2, 1] - m[1, 2]) * h, (m[0, 2] - m[2, 0]) * h, (m[1, 0] - m[0, 1]) * h
    else:
        k = 1 if m[1, 1] > m[0, 0] else 0
        k = 2 if m[2, 2] > m[k, k] else k
        i, j = (k + 1) % 3, (k + 2) % 3  # Warp's (0: 1, 2), (1: 2, 0), (2: 0, 1)
        h = float(np.sqrt((m[k, k] - (m[i, i] + m[j, j])) + 1.0))
        q = [0.0, 0.0, 0.0]
        q[k], h = 0.5 * h, 0.5 / h
        q[i], q[j] = (m[k, i] + m[i, k]) * h, (m[j, k] + m[k, j]) * h
        w = (m[j, i] - m[i, j]) * h
        x, y, z = q
    q = np.array([x, y, z, w], dtype=np.float64)
    n = float(np.sqrt(dot(q, q)))
    return q / n if n > 0.0 else np.zeros(4)


def _unit_clamp(x: float) -> float:
    return min(max(x, 0.0), 1.0)


def closest_point_edge_edge(p1, q1, p2, q2, epsilon: float) -> np.ndarray:
    """(s, t, distance) of the closest points p1 + s (q1 - p1) and p2 + t (q2 - p2) of two segments,
    in float64 (Ericson's Real-Time Collision Detection 5.1.9, as native/intersect.h): an edge whose
    squared length is <= epsilon is its first point. The distance is well-conditioned; s and t
    are not where the edges are near parallel (the grammar reads the distance only)."""
    d1, d2, r = q1 - p1, q2 - p2, p1 - p2
    a, e, f = float(dot(d1, d1)), float(dot(d2, d2)), float(dot(d2, r))
    s = t = 0.0
    if a <= epsilon and e > epsilon:
        t = _unit_clamp(f / e)
    elif a > epsilon and e <= epsilon:
        s = _unit_clamp(-float(dot(d1, r)) / a)
    elif a > epsilon:
        c, b = float(dot(d1, r)), float(dot(d1, d2))
        denom = a * e - b * b
        s = _unit_clamp((b * f - c * e) / denom) if denom > 0.0 else 0.0
        t = (b * s + f) / e
        if t < 0.0:
            s, t = _unit_clamp(-c / a), 0.0
        elif t > 1.0:
            s, t = _unit_clamp((b - c) / a), 1.0
    gap = (p2 + t * d2) - (p1 + s * d1)
    return np.array([s, t, float(np.sqrt(dot(gap, gap)))])


def box_meets(lower: np.ndarray, upper: np.ndarray, query: str, a, b) -> bool:
    """Whether the box [lower, upper] meets a BVH query, with Warp's closed tests (native/intersect.h):
    "aabb", the box from lower a to upper b (intersect_aabb_aabb: they overlap or touch); "sphere",
    centre a and radius b (intersect_sphere_aabb: the box's squared distance to a is at most b^2)."""
    if query == "aabb":
        return bool(np.all(lower <= b) and np.all(upper >= a))
    if query == "sphere":
        gap = np.maximum(np.maximum(lower - a, a - upper), 0.0)
        return float(dot(gap, gap)) <= max(b, 0.0) ** 2
    raise ValueError(f"unknown BVH query {query!r}")


def closest_on_mesh(points: np.ndarray, faces: np.ndarray, p: np.ndarray) -> tuple[float, np.ndarray]:
    """(squared distance, point) of the point of the triangle mesh (`points` (V, 3), `faces` (T, 3))
    closest to p, in float64, every triangle checked (Ericson's Real-Time Collision Detection 5.1.5,
    as native/intersect.h's closest_point_to_triangle: the first of its Voronoi regions that holds p,
    all triangles at once). Where two triangles are equally close, their closest points are the same
    point (a shared edge or vertex) or lie on the mesh's medial axis, where the point, not the
    distance, is ill-conditioned."""
    a, b, c = (points[faces[:, k]] for k in range(3))
    ab, ac, ap, bp, cp = b - a, c - a, p - a, p - b, p - c
    d1, d2, d3, d4, d5, d6 = dot(ab, ap), dot(ac, ap), dot(ab, bp), dot(ac, bp), dot(ab, cp), dot(ac, cp)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2
    with np.errstate(divide="ignore", invalid="ignore"):  # a ratio is read only in its own region
        t_ab, t_ac = d1 / (d1 - d3), d2 / (d2 - d6)
        t_bc = (d4 - d3) / ((d4 - d3) + (d5 - d6))
        v, w = vb / (va + vb + vc), vc / (va + vb + vc)
    regions = [(d1 <= 0) & (d2 <= 0), (d3 >= 0) & (d4 <= d3), (vc <= 0) & (d1 >= 0) & (d3 <= 0),
               (d6 >= 0) & (d5 <= d6), (vb <= 0) & (d2 >= 0) & (d6 <= 0),
               (va <= 0) & ((d4 - d3) >= 0) & ((d5 - d6) >= 0)]
    choices = [a, b, a + t_ab[:, None] * ab, c, a + t_ac[:, None] * ac, b + t_bc[:, None] * (c - b)]
    inside = a + v[:, None] * ab + w[:, None] * ac
    near = np.select([r[:, None] for r in regions], choices, inside)
    gap = near - p
    d2s = dot(gap, gap)
    k = int(np.argmin(d2s))
    return float(d2s[k]), near[k]


class Volume:
    """A `wp.Volume` of dense voxels (float64 here), voxel (i, j, k) at world origin + (i, j, k) * cell
    on each axis and the background 0 outside: the index-space maps and the sampling of
    native/volume.h (CLOSEST: the voxel of each coordinate rounded half away from zero, as roundf;
    LINEAR: the trilinear blend of the eight voxels around it)."""

    def __init__(self, dense: np.ndarray, origin: float, cell: float):
        self.dense, self.origin, self.cell = dense, origin, cell

    def to_index(self, p):
        return (np.asarray(p, dtype=np.float64) - self.origin) / self.cell

    def to_world(self, u):
        return self.origin + np.asarray(u, dtype=np.float64) * self.cell

    def lookup(self, i: int, j: int, k: int) -> float:
        if all(0 <= c < n for c, n in zip((i, j, k), self.dense.shape)):
            return float(self.dense[i, j, k])
        return 0.0

    def sample(self, u, mode: int) -> float:
        u = np.asarray(u, dtype=np.float64)
        if mode == 0:
            i, j, k = (int(np.sign(c) * np.floor(abs(c) + 0.5)) for c in u)
            return self.lookup(i, j, k)
        base = np.floor(u)
        f = u - base
        i, j, k = (int(c) for c in base)
        total = 0.0
        for di in (0, 1):
            for dj in (0, 1):
                for dk in (0, 1):
                    w = (f[0] if di else 1 - f[0]) * (f[1] if dj else 1 - f[1]) * (f[2] if dk else 1 - f[2])
                    total += w * self.lookup(i + di, j + dj, k + dk)
        return total


# the volume_* builtins of a Volume (generator.oracle_builtins.BUILTINS)
class Texture2D:
    """A one-channel `wp.Texture2D` of `data` ((height, width), row y holding texels x), sampled at
    normalized coordinates as Warp's CPU sampler does (native/texture.h): `filter` CLOSEST (the
    texel floor(u * width), after the address mode) or LINEAR (bilinear between the texels around
    u * width - 0.5), `address` WRAP, CLAMP, MIRROR or BORDER (0 outside) on both axes."""

    def __init__(self, data, filter: str, address: str):
        self.data, self.filter, self.address = np.asarray(data, dtype=np.float64), filter, address

    def _periodic(self) -> float:
        return {"WRAP": 1.0, "MIRROR": 2.0}.get(self.address, 0.0)

    def _index(self, i: int, n: int) -> int:
        if self.address == "WRAP":
            return i % n
        if self.address == "CLAMP":
            return min(max(i, 0), n - 1)
        if self.address == "MIRROR":
            m = i % (2 * n)
            return 2 * n - m - 1 if m >= n else m
        return i  # BORDER: out of bounds reads 0

    def _fetch(self, x: int, y: int) -> float:
        height, width = self.data.shape
        return float(self.data[y, x]) if 0 <= x < width and 0 <= y < height else 0.0

    def _nearest(self, c: float, n: int) -> int:
        period = self._periodic()
        t = (math.fmod(c, period) if period else c) * n
        return self._index(math.floor(t if period else max(-1.0, min(t, float(n)))), n)

    def _cell(self, c: float, n: int) -> tuple[int, float]:
        period = self._periodic()
        if period:
            c = math.fmod(c, period) + (period if math.fmod(c, period) < 0 else 0.0)
        t = c * n - 0.5
        if self.address == "CLAMP":
            t = max(0.0, min(t, n - 1.0))
        elif self.address == "BORDER":
            t = max(-2.0, min(t, float(n)))
        i = math.floor(t)
        return i, t - i

    def sample(self, u: float, v: float) -> float:
        height, width = self.data.shape
        if self.filter == "CLOSEST":
            return self._fetch(self._nearest(u, width), self._nearest(v, height))
        (x0, fx), (y0, fy) = self._cell(u, width), self._cell(v, height)
        x1, y1, x0, y0 = self._index(x0 + 1, width), self._index(y0 + 1, height), self._index(x0, width), self._index(y0, height)
        low = self._fetch(x0, y0) * (1 - fx) + self._fetch(x1, y0) * fx
        high = self._fetch(x0, y1) * (1 - fx) + self._fetch(x1, y1) * fx
        return low * (1 - fy) + high * fy


def _texture_sample(tex: Texture2D, *coords, dtype=None) -> float:
    """wp.texture_sample(tex, uv, dtype=float) or (tex, u, v, dtype=float): one float channel."""
    u, v = (coords[0][0], coords[0][1]) if len(coords) == 1 else coords
    return tex.sample(float(u), float(v))


VOLUME_BUILTINS = {
    "volume_world_to_index": lambda vol, p: vol.to_index(p),
    "volume_index_to_world": lambda vol, u: vol.to_world(u),
    "volume_sample_f": lambda vol, u, mode: vol.sample(u, mode),
    "volume_lookup_f": lambda vol, i, j, k: vol.lookup(i, j, k),
    "texture_sample": _texture_sample,  # a wp.Texture2D's
}
