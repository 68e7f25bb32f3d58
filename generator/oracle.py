"""The NumPy oracle: evaluates a KernelSpec thread by thread, in float64 for float kernels.

It is an independent interpreter of the spec (it never looks at the rendered source or at
Warp), so agreement between it and Warp's compiled kernel is evidence that both are right.

Over 400 lines: one interpreter, whose expression and statement matches sit together so that a
new tag is read in one place, and the inputs' preparation it shares with the lanes.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import operator

import numpy as np

from generator import linalg, oracle_lanes, spec_walk
from generator.oracle_builtins import BARE_BUILTINS, BUILTINS
from generator.spec import (BVH, CAST_FLOAT_DTYPES, FLOAT_DTYPES, GENERIC, INT_BITS, PY_CASTS, RAND_DRAWS, RAND_SAMPLES,
                            HASH_GRID, MESH, STRUCT_ARRAY, TEXTURE, VOLUME, VOLUME_MODES, VOLUME_ORIGIN, VALUE_VEC_TYPES, VEC_SHAPES, KernelSpec, flat_fields, is_float,
                            mesh_geometry)
from generator.warp_rng import rand_int, rand_pcg, sample, unit_float

# the operators of ["bin", op, a, b], ["aug", name, op, e] and ["cmp", op, a, b]
_ARITH = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}
_AUG = {"+": operator.add, "-": operator.sub, "*": operator.mul}
_CALLABLE = {**BUILTINS, **BARE_BUILTINS}  # ["call", name, args]: wp.NAME(...) or a bare len(...)
_CMP = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq, "!=": operator.ne}


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class _Return(Exception):
    def __init__(self, value):
        self.value = value


_DRAWS = frozenset(RAND_DRAWS) | frozenset(RAND_SAMPLES)  # the expressions that advance an RNG state variable


def _as(dtype: str, value):
    if dtype == GENERIC:  # a generic helper's parameter or return: the value as it is
        return value
    dtype = PY_CASTS.get(dtype, dtype)
    if dtype in FLOAT_DTYPES or dtype in CAST_FLOAT_DTYPES:
        # float16 / bfloat16 narrowing is not rounded here: the grammar narrows only where the
        # output's tolerance covers it (float16 arrays, a bfloat16 cast on a float16 store)
        return float(value)
    if dtype == "bool":
        return bool(value)
    v = int(math.trunc(value)) if isinstance(value, float) else int(value)
    return wrap_int(dtype, v)


def wrap_int(dtype: str, v: int) -> int:
    """`v` converted to the integer type `dtype` as C converts: modulo 2**bits (the grammar keeps
    values cast to a signed type within its range; unsigned wrap-around is defined)."""
    bits, signed = INT_BITS[dtype]
    low = -(1 << (bits - 1)) if signed else 0
    if low <= v < low + (1 << bits):
        return v
    return (v - low) % (1 << bits) + low


def vec_type(vtype: str) -> tuple[tuple[int, ...], str]:
    """(element shape, scalar dtype) of a vector, matrix or quaternion type a ["vec", ...] builds."""
    if vtype in VALUE_VEC_TYPES:
        return VALUE_VEC_TYPES[vtype]
    return VEC_SHAPES[vtype], "float32"


def branch_points(spec: KernelSpec) -> dict[int, int]:
    """Every branch point of the spec (an `if` statement, a `where` expression), keyed by the
    identity of its node, with its number of possible outcomes (if: then, each elif, else or
    fall-through; where: true, false)."""
    points: dict[int, int] = {}
    for node in spec_walk.nodes(*spec_walk.spec_bodies(spec)):
        match node:
            case ["if", _, _, list() as elifs, _]:
                points[id(node)] = 2 + len(elifs)
            case ["where", _, _, _]:
                points[id(node)] = 2
    return points


def atomic(arr, op: str, idx: tuple, v) -> None:
    """wp.atomic_<op> of one thread on `arr[idx]` (`generator.spec.ATOMIC_OPS`)."""
    if op == "add":
        arr[idx] += v
    elif op == "sub":
        arr[idx] -= v
    elif op in ("and", "or", "xor"):
        cur, x = int(arr[idx]), int(v)
        arr[idx] = cur & x if op == "and" else cur | x if op == "or" else cur ^ x
    elif op == "min":
        arr[idx] = min(arr[idx], v)
    elif op == "max":
        arr[idx] = max(arr[idx], v)
    elif op == "exch":
        arr[idx] = v
    elif op == "cas":  # v: (compare, value)
        if arr[idx] == v[0]:
            arr[idx] = v[1]
    else:
        raise ValueError(op)


class Interpreter:
    """The threads of a launch one after another, each walking the spec's statements (`block`)
    and expressions (`expr`) on its own environment of locals."""

    def __init__(self, spec: KernelSpec, arrays: dict[str, np.ndarray], scalars: dict, taken: set | None = None):
        self.spec = spec
        self.arrays = arrays
        self.scalars = scalars
        self.helpers = {h.name: h for h in spec.helpers}
        self.taken = taken  # (branch point, outcome) pairs seen, when coverage is wanted
        self.thread = None  # the running thread's number, in launch order

    def run(self) -> None:
        """Every thread of the launch, one after another."""
        for k, tid in enumerate(itertools.product(*(range(d) for d in self.spec.dim))):
            self.thread = k
            env = dict(self.scalars)
            env.update(zip(self.spec.tid_names, tid))
            try:
                self.block(self.spec.body, env)
            except _Return:  # an early `return` from the kernel ends this thread
                pass

    def expr(self, e, env):
        match e:
            case ["v", name]:
                return env[name]
            case ["c", value, dtype]:
                return _as(dtype, value)
            case ["bin", op, a, b]:
                x, y = self.expr(a, env), self.expr(b, env)
                if op not in _ARITH:
                    raise ValueError(op)
                return _ARITH[op](x, y)
            case ["ld", name, index]:
                return self._load(name, index, env)
            case ["sld", name, index, field]:  # a struct array's field: an array of its own (`prepare`)
                return self._load(f"{name}.{field}", index, env)
            case ["call", name, args]:
                return _CALLABLE[name](*(self.expr(a, env) for a in args))
            case ["cmp", op, a, b]:
                x, y = self.expr(a, env), self.expr(b, env)
                return _CMP[op](x, y)
            case ["where", cond, a, b]:
                return self._where(e, cond, a, b, env)
            case ["mod", a, k]:
                return self.expr(a, env) % self.expr(k, env)
            case ["cast", dtype, a]:
                return _as(dtype, self.expr(a, env))
            case ["comp", a, keys]:
                return self.expr(a, env)[tuple(keys)].item()  # a float, or an int of an integer vector
            case ["and", a, b]:
                return bool(self.expr(a, env)) and bool(self.expr(b, env))
            case [str() as kind, str() as state, *bounds] if kind in _DRAWS:  # advance the state variable
                return self._draw(kind, state, bounds, env)
            case ["vec", vtype, comps]:
                return self._vec(vtype, comps, env)
            case ["neg", a]:  # Warp's scalar neg is 0 - x (native/builtin.h: -(+0.0) is +0.0), a vector's -x
                x = self.expr(a, env)
                return -x if isinstance(x, np.ndarray) else 0 - x
            case ["or", a, b]:
                return bool(self.expr(a, env)) or bool(self.expr(b, env))
            case ["fld", name, field]:
                return env[name][field]
            case ["kwcall", name, args, keywords]:
                values = [self.expr(a, env) for a in args]
                kwargs = {k: self.expr(x, env) for k, x in keywords}
                return BUILTINS[name](*values, **kwargs)
            case ["tuple", items]:
                return tuple(self.expr(a, env) for a in items)
            case ["hcall", name, args]:
                return self._hcall(name, args, env)
            case ["arr", name]:
                return self.arrays[name]
            case ["fnref", name]:
                return float if name == "float" else BUILTINS[name]
            case ["vmode", mode]:
                return VOLUME_MODES[mode]
            case ["mmul", a, b]:
                return linalg.product(self.expr(a, env), self.expr(b, env))
            case ["not", a]:
                return not self.expr(a, env)
        raise ValueError(f"unknown expression tag {e[0]!r}")

    def _load(self, name, index, env):
        v = self.arrays[name][tuple(self.expr(i, env) for i in index)]
        if isinstance(v, np.ndarray):
            return np.array(v, dtype=np.float64)  # a vector/matrix element: a copy
        return float(v) if self.arrays[name].dtype.kind == "f" else int(v)

    def _vec(self, vtype, comps, env):
        shape, scalar = vec_type(vtype)
        vals = [_as(scalar, self.expr(a, env)) for a in comps]
        return np.array(vals, dtype=np.float64 if scalar in FLOAT_DTYPES else np.int64).reshape(shape)

    def _where(self, e, cond, a, b, env):
        truth = bool(self.expr(cond, env))
        if self.taken is not None:
            self.taken.add((id(e), truth))
        return self.expr(a, env) if truth else self.expr(b, env)

    def _hcall(self, name, args, env):
        h = self.helpers[name]
        local = {n: _as(t, self.expr(a, env)) for (n, t), a in zip(h.params, args)}
        try:
            self.block(h.body, local)
        except _Return as r:
            if isinstance(h.ret, tuple):  # several values
                return tuple(_as(t, x) for t, x in zip(h.ret, r.value, strict=True))
            return _as(h.ret, r.value)
        raise ValueError(f"helper {h.name} fell off its end")

    def _draw(self, kind, state, bounds, env):
        """wp.randf / randi / randu(state[, lo, hi]), or a sampler's point (RAND_SAMPLES)."""
        if kind == "randf":
            return self._randf(state, bounds, env)
        if kind in RAND_SAMPLES:
            env[state], value = sample(kind, env[state])
            return np.array(value, dtype=np.float64)
        return self._rand_int(kind, state, bounds, env)

    def _rand_int(self, kind, state, bounds, env):
        env[state] = rand_pcg(env[state])
        return rand_int(kind, env[state], *(self.expr(b, env) for b in bounds))

    def _randf(self, state, bounds, env):
        env[state] = rand_pcg(env[state])
        u = unit_float(env[state])
        if bounds:
            lo, hi = self.expr(bounds[0], env), self.expr(bounds[1], env)
            return float(np.float32(np.float32(hi - lo) * np.float32(u) + np.float32(lo)))
        return u

    def iteration(self, body, env) -> bool:
        """One loop iteration; False when the body breaks out of the loop."""
        try:
            self.block(body, env)
        except _Continue:
            pass
        except _Break:
            return False
        return True

    def block(self, stmts, env):
        """The statements one after another (nested bodies run through `block` again, so a
        subclass that watches statements sees every one)."""
        for s in stmts:
            self.statement(s, env)

    def statement(self, s, env):
        match s:
            case ["let" | "set", name, value]:
                env[name] = self.expr(value, env)
            case ["if", cond, then, elifs, orelse]:
                self._if(s, cond, then, elifs, orelse, env)
            case ["unpack", names, value]:
                env.update(zip(names, self.expr(value, env), strict=True))
            case ["aug", name, op, value]:
                v = self.expr(value, env)
                old = env[name]
                env[name] = _AUG[op](old, v)
            case ["atomic", op, name, index, value]:
                arr = self.arrays[name]
                idx = tuple(self.expr(i, env) for i in index)
                atomic(arr, op, idx, self.expr(value, env))
            case ["store", name, index, value]:
                idx = tuple(self.expr(i, env) for i in index)
                self.arrays[name][idx] = self.expr(value, env)
            case ["for", var, start, stop, body, *order]:
                first, end = self.expr(start, env), self.expr(stop, env)
                for v in (reversed(range(first, end)) if order == ["reversed"] else range(first, end)):
                    env[var] = v
                    if not self.iteration(body, env):
                        break
            case ["neighbors", var, _, points, center, radius, dist, body]:  # the hash grid's query, brute force
                pts = self.arrays[points]  # read point by point: the race check watches each element read
                at, r2 = pts[(self.expr(center, env),)], self.expr(radius, env) ** 2
                for j in range(pts.shape[0]):
                    d2 = float(((pts[(j,)] - at) ** 2).sum())  # exact: see render._neighbors
                    if d2 > r2:
                        continue
                    env[var], env[dist] = j, d2
                    if not self.iteration(body, env):
                        break
            case ["boxes", *_]:
                self._boxes(s, env)
            case ["closest", var, mesh, point, max_dist, body]:  # the mesh's closest point, brute force
                d2, env[var] = linalg.closest_on_mesh(*self.scalars[mesh], np.asarray(self.expr(point, env), np.float64))
                if d2 < self.expr(max_dist, env) ** 2:  # Warp's test: strictly within
                    self.block(body, env)
            case ["continue"]:
                raise _Continue()
            case ["while", cond, body]:
                while self.expr(cond, env):
                    if not self.iteration(body, env):
                        break
            case ["ret", value]:
                raise _Return(self.expr(value, env))
            case ["break"]:
                raise _Break()
            case ["expr", value]:
                self.expr(value, env)
            case ["ret_kernel"]:
                raise _Return(None)
            case _:
                raise ValueError(f"unknown statement tag {s[0]!r}")

    def _boxes(self, s, env):
        """["boxes", j, bvh, query, a, b, body]: the BVH's query, brute force over its boxes."""
        _, var, bvh, query, a, b, body = s
        points, half = self.scalars[bvh]
        pts = self.arrays[points]  # read point by point, as ["neighbors", ...]
        lo, hi = np.asarray(self.expr(a, env), np.float64), self.expr(b, env)
        for j in range(pts.shape[0]):
            if not linalg.box_meets(pts[(j,)] - half, pts[(j,)] + half, query, lo, hi):
                continue
            env[var] = j
            if not self.iteration(body, env):
                break

    def _if(self, s, cond, then, elifs, orelse, env):
        if self.expr(cond, env):
            outcome = 0
            self.block(then, env)
        else:
            for outcome, (c, body) in enumerate(elifs, 1):
                if self.expr(c, env):
                    self.block(body, env)
                    break
            else:
                outcome = len(elifs) + 1
                self.block(orelse, env)
        if self.taken is not None:
            self.taken.add((id(s), outcome))


_LANES = [True]


def lanes_enabled() -> bool:
    return _LANES[0]


@contextlib.contextmanager
def lanes(enabled: bool):
    """The all-threads-at-once path on or off for the block (tests compare the two), then as before."""
    previous, _LANES[0] = _LANES[0], enabled
    try:
        yield
    finally:
        _LANES[0] = previous


def prepare(spec: KernelSpec, inputs: dict) -> tuple[dict[str, np.ndarray], dict]:
    """The oracle's own copies of the inputs: arrays widened to float64 / int64, scalars and
    struct fields as Python values (vector fields as float64 arrays)."""
    arrays: dict[str, np.ndarray] = {}
    scalars: dict = {}
    for a in spec.args:
        if a.kind == HASH_GRID:  # built from its points, which the oracle searches by brute force
            continue
        if a.kind == BVH:  # boxes around its points (which the oracle reads as they are), searched by brute force
            scalars[a.name] = (a.points, a.cell)
            continue
        if a.kind == MESH:  # its vertices and triangles (never written), searched by brute force
            xy, faces = mesh_geometry(a.shape)
            points = np.column_stack([np.asarray(xy, np.float64), np.ravel(inputs[a.name]).astype(np.float64)])
            scalars[a.name] = (points, np.asarray(faces, dtype=np.int64))
            continue
        if a.kind == TEXTURE:  # its texels (never written), read by texture_sample
            scalars[a.name] = linalg.Texture2D(inputs[a.name], *a.sampler.split("/"))
            continue
        if a.kind == VOLUME:  # its voxels (never written), read by the volume_* builtins
            scalars[a.name] = linalg.Volume(np.array(inputs[a.name], dtype=np.float64), VOLUME_ORIGIN, a.cell)
            continue
        v = inputs[a.name]
        if a.kind == "array":
            wide = np.float64 if is_float(a.dtype) else np.int64
            arrays[a.name] = np.array(v, dtype=wide, copy=True)
        elif a.kind == "struct":
            scalars[a.name] = {f: (np.array(v[f], dtype=np.float64) if t in VEC_SHAPES else _as(t, v[f]))
                               for f, t in flat_fields(a.fields)}
        elif a.kind == STRUCT_ARRAY:  # each field of the elements an array, `name.field`, read by ["sld", ...]
            for f, t in flat_fields(a.fields):
                arrays[f"{a.name}.{f}"] = np.array(v[f], dtype=np.float64 if is_float(t) else np.int64, copy=True)
        else:
            scalars[a.name] = _as(a.dtype, v)
    for name, dtype, value in spec.constants:  # the module's wp.constant()s: read like scalar arguments
        scalars[name] = _as(dtype, value)
    return arrays, scalars


def _written(spec: KernelSpec, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays the kernel writes (its out and inout arguments), by name."""
    return {a.name: arrays[a.name] for a in spec.args if a.kind == "array" and a.role in ("out", "inout")}


def run_oracle_sets(spec: KernelSpec, input_sets: list[dict]) -> list[dict[str, np.ndarray]]:
    """`run_oracle` of each input set (no branch record): all sets at once on the lanes where
    they can be (`oracle_lanes.run_lanes_sets`), else set by set, raising what `run_oracle`
    raises. The liveness check's two first sets (`generator.families`)."""
    if len(input_sets) > 1 and lanes_enabled() and oracle_lanes.supported(spec):
        prepared = [prepare(spec, inputs) for inputs in input_sets]
        try:
            oracle_lanes.run_lanes_sets(spec, prepared)
        except (oracle_lanes.Unsure, ArithmeticError, LookupError, TypeError, ValueError):
            pass  # set by set, from the inputs again
        else:
            return [_written(spec, arrays) for arrays, _ in prepared]
    return [run_oracle(spec, inputs) for inputs in input_sets]


def run_oracle(spec: KernelSpec, inputs: dict, taken: set | None = None) -> dict[str, np.ndarray]:
    """Evaluate the spec on `inputs` (name -> ndarray or scalar); return every written array.
    With `taken`, every (branch point, outcome) the evaluation passes is added to it.

    Float arrays are evaluated in float64, integer arrays in int64 (the grammar keeps integer
    values far from overflow, so int64 equals the kernel's int32/uint32 result).
    """
    arrays, scalars = prepare(spec, inputs)
    if lanes_enabled() and oracle_lanes.supported(spec):
        fast_taken: set | None = set() if taken is not None else None
        try:
            oracle_lanes.run_lanes(spec, arrays, scalars, fast_taken)
        except (oracle_lanes.Unsure, ArithmeticError, LookupError, TypeError, ValueError):
            # the threads one by one decide, and raise what they raise, from the inputs again
            arrays, scalars = prepare(spec, inputs)
        else:
            if taken is not None:
                taken |= fast_taken
            return _written(spec, arrays)
    Interpreter(spec, arrays, scalars, taken).run()
    return _written(spec, arrays)
