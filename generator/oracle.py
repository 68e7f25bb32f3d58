"""The NumPy oracle: evaluates a KernelSpec thread by thread, in float64 for float kernels.

It is an independent interpreter of the spec (it never looks at the rendered source or at
Warp), so agreement between it and Warp's compiled kernel is evidence that both are right.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from generator import linalg, oracle_lanes
from generator.spec import FLOAT_DTYPES, VEC_SHAPES, KernelSpec, is_float

_M32 = 0xFFFFFFFF


def _clamp(x, lo, hi):
    return min(max(x, lo), hi)


def rand_pcg(state: int) -> int:
    """Warp's rand_pcg (native/rand.h), in exact uint32 arithmetic."""
    b = (state * 747796405 + 2891336453) & _M32
    c = (((b >> ((b >> 28) + 4)) ^ b) * 277803737) & _M32
    return ((c >> 22) ^ c) & _M32


def rand_init(seed: int, offset: int | None = None) -> int:
    if offset is None:
        return rand_pcg(seed & _M32)
    return rand_pcg(((seed & _M32) + rand_pcg(offset & _M32)) & _M32)


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


BUILTINS = {
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
    "transpose": lambda m: np.array(m.T),
    "determinant": lambda m: float(linalg.det(m)),
    "outer": np.outer,
    "quat_from_axis_angle": _quat_from_axis_angle,
    "quat_rotate": _quat_rotate,
    "quat_rotate_inv": lambda q, v: _quat_rotate(np.concatenate([-q[:3], q[3:]]), v),
    "mul": _quat_mul,
    "transform": lambda p, q: (np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)),
    "transform_point": lambda t, x: _quat_rotate(t[1], x) + t[0],
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
    "tile_matmul": _tile_matmul,
    "tile_zeros": lambda shape, dtype=None: np.zeros(shape),
    "float32": float,
    "tile_transpose": lambda t: np.array(t.T),
}


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class _Return(Exception):
    def __init__(self, value):
        self.value = value


def _as(dtype: str, value):
    if dtype in FLOAT_DTYPES:
        return float(value)
    if dtype == "bool":
        return bool(value)
    return int(math.trunc(value)) if isinstance(value, float) else int(value)


def branch_points(spec: KernelSpec) -> dict[int, int]:
    """Every branch point of the spec (an `if` statement, a `where` expression), keyed by the
    identity of its node, with its number of possible outcomes (if: then, each elif, else or
    fall-through; where: true, false). Walked without recursion."""
    points: dict[int, int] = {}
    todo = [spec.body] + [h.body for h in spec.helpers]
    while todo:
        node = todo.pop()
        if not isinstance(node, list):
            continue
        if node and node[0] == "if" and len(node) == 5 and isinstance(node[3], list):
            points[id(node)] = 2 + len(node[3])
        elif node and node[0] == "where" and len(node) == 4:
            points[id(node)] = 2
        todo.extend(x for x in node if isinstance(x, list))
    return points


def atomic(arr, op: str, idx: tuple, v) -> None:
    """wp.atomic_add / atomic_min / atomic_max of one thread on `arr[idx]`."""
    if op == "add":
        arr[idx] += v
    elif op == "min":
        arr[idx] = min(arr[idx], v)
    elif op == "max":
        arr[idx] = max(arr[idx], v)
    else:
        raise ValueError(op)


class Interpreter:
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
        tag = e[0]
        if tag == "c":
            return _as(e[2], e[1])
        if tag == "v":
            return env[e[1]]
        if tag == "ld":
            idx = tuple(self.expr(i, env) for i in e[2])
            v = self.arrays[e[1]][idx]
            if isinstance(v, np.ndarray):
                return np.array(v, dtype=np.float64)  # a vector/matrix element: a copy
            return float(v) if self.arrays[e[1]].dtype.kind == "f" else int(v)
        if tag == "bin":
            a, b = self.expr(e[2], env), self.expr(e[3], env)
            op = e[1]
            if op == "+":
                return a + b
            if op == "-":
                return a - b
            if op == "*":
                return a * b
            if op == "/":
                return a / b
            raise ValueError(op)
        if tag == "mod":
            return self.expr(e[1], env) % self.expr(e[2], env)
        if tag == "neg":
            return -self.expr(e[1], env)
        if tag == "call":
            return BUILTINS[e[1]](*(self.expr(a, env) for a in e[2]))
        if tag == "where":
            cond = bool(self.expr(e[1], env))
            if self.taken is not None:
                self.taken.add((id(e), cond))
            return self.expr(e[2], env) if cond else self.expr(e[3], env)
        if tag == "cmp":
            a, b = self.expr(e[2], env), self.expr(e[3], env)
            return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b, "==": a == b, "!=": a != b}[e[1]]
        if tag == "and":
            return bool(self.expr(e[1], env)) and bool(self.expr(e[2], env))
        if tag == "or":
            return bool(self.expr(e[1], env)) or bool(self.expr(e[2], env))
        if tag == "not":
            return not self.expr(e[1], env)
        if tag == "hcall":
            h = self.helpers[e[1]]
            local = {n: _as(t, self.expr(a, env)) for (n, t), a in zip(h.params, e[2])}
            try:
                self.block(h.body, local)
            except _Return as r:
                return _as(h.ret, r.value)
            raise ValueError(f"helper {h.name} fell off its end")
        if tag == "cast":
            return _as(e[1], self.expr(e[2], env))
        if tag == "vec":
            vals = [float(self.expr(a, env)) for a in e[2]]
            return np.array(vals, dtype=np.float64).reshape(VEC_SHAPES[e[1]])
        if tag == "comp":
            return float(self.expr(e[1], env)[tuple(e[2])])
        if tag == "mmul":
            return linalg.product(self.expr(e[1], env), self.expr(e[2], env))
        if tag == "arr":
            return self.arrays[e[1]]
        if tag == "tuple":
            return tuple(self.expr(a, env) for a in e[1])
        if tag == "fnref":
            return BUILTINS[e[1]]
        if tag == "kwcall":
            args = [self.expr(a, env) for a in e[2]]
            kwargs = {k: self.expr(x, env) for k, x in e[3]}
            return BUILTINS[e[1]](*args, **kwargs)
        if tag == "fld":
            return env[e[1]][e[2]]
        if tag == "randf":
            env[e[1]] = rand_pcg(env[e[1]])
            u = (env[e[1]] >> 8) * (1.0 / 16777216.0)
            if len(e) > 2:
                lo, hi = self.expr(e[2], env), self.expr(e[3], env)
                return float(np.float32(np.float32(hi - lo) * np.float32(u) + np.float32(lo)))
            return u
        raise ValueError(f"unknown expression tag {tag!r}")

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
        for s in stmts:
            tag = s[0]
            if tag in ("let", "set"):
                env[s[1]] = self.expr(s[2], env)
            elif tag == "aug":
                v = self.expr(s[3], env)
                env[s[1]] = {"+": env[s[1]] + v, "-": env[s[1]] - v, "*": env[s[1]] * v}[s[2]]
            elif tag == "store":
                idx = tuple(self.expr(i, env) for i in s[2])
                self.arrays[s[1]][idx] = self.expr(s[3], env)
            elif tag == "atomic":
                arr = self.arrays[s[2]]
                idx = tuple(self.expr(i, env) for i in s[3])
                atomic(arr, s[1], idx, self.expr(s[4], env))
            elif tag == "if":
                if self.expr(s[1], env):
                    outcome = 0
                    self.block(s[2], env)
                else:
                    for outcome, (cond, body) in enumerate(s[3], 1):
                        if self.expr(cond, env):
                            self.block(body, env)
                            break
                    else:
                        outcome = len(s[3]) + 1
                        self.block(s[4], env)
                if self.taken is not None:
                    self.taken.add((id(s), outcome))
            elif tag == "for":
                start, stop = self.expr(s[2], env), self.expr(s[3], env)
                for v in range(start, stop):
                    env[s[1]] = v
                    if not self.iteration(s[4], env):
                        break
            elif tag == "while":
                while self.expr(s[1], env):
                    if not self.iteration(s[2], env):
                        break
            elif tag == "break":
                raise _Break()
            elif tag == "continue":
                raise _Continue()
            elif tag == "ret":
                raise _Return(self.expr(s[1], env))
            elif tag == "expr":
                self.expr(s[1], env)
            elif tag == "ret_kernel":
                raise _Return(None)
            else:
                raise ValueError(f"unknown statement tag {tag!r}")


_LANES = [True]


def lanes_enabled() -> bool:
    return _LANES[0]


def set_lanes(enabled: bool) -> bool:
    """Turn the all-threads-at-once path on or off (tests compare the two); the previous value."""
    previous, _LANES[0] = _LANES[0], enabled
    return previous


def prepare(spec: KernelSpec, inputs: dict) -> tuple[dict[str, np.ndarray], dict]:
    """The oracle's own copies of the inputs: arrays widened to float64 / int64, scalars and
    struct fields as Python values (vector fields as float64 arrays)."""
    arrays: dict[str, np.ndarray] = {}
    scalars: dict = {}
    for a in spec.args:
        v = inputs[a.name]
        if a.kind == "array":
            wide = np.float64 if is_float(a.dtype) else np.int64
            arrays[a.name] = np.array(v, dtype=wide, copy=True)
        elif a.kind == "struct":
            scalars[a.name] = {f: (np.array(v[f], dtype=np.float64) if t in VEC_SHAPES else _as(t, v[f])) for f, t in a.fields}
        else:
            scalars[a.name] = _as(a.dtype, v)
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
