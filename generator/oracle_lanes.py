"""The oracle's fast path: a spec evaluated for all threads at once, one NumPy array per value.

`generator.oracle.Interpreter` runs the threads one after another, in Python. This module runs
the same statements over arrays of lanes (lane k is the k-th thread of that order), with a mask
of the lanes that execute each statement. It must give the bits the thread-by-thread interpreter
gives, or give up: whenever it cannot be sure, it raises `Unsure` and `run_oracle` evaluates the
spec thread by thread from the start. It gives up on
- constructs it does not evaluate (tiles, helpers with vector parameters; checked before it
  starts, `supported`);
- anything that would raise in the thread-by-thread interpreter (a division by zero, a math
  domain error, an index out of bounds, a non-finite value cast to an integer, a helper without
  a return), so that interpreter raises the exception itself, with its message;
- any memory access whose result would depend on running the threads in order rather than
  together (`_Track`): an element stored by one thread and read by another after the store or
  by a later thread before it, or stored by two; a float atomic_add whose contributions would
  not arrive in thread order; a plain access to an element updated atomically; and integers
  that might leave int64.

Values are Python scalars where every lane has the same value (literals, scalar arguments) and
float64, int64 or bool arrays otherwise, lanes first: a vec3 is a (lanes, 3) array, a mat33 a
(lanes, 3, 3) one, a transform a tuple of two. Vector and matrix operations are the NumPy ones the
thread-by-thread interpreter calls, on stacks (matmul, det, cross), or its sums written out in
its order (dot); `generator/oracle_test.py` checks the bits on the machine it runs on. Arithmetic
is IEEE on both paths; the math functions whose NumPy versions may round differently from
Python's `math` (all but sqrt, floor, ceil, trunc, abs, min, max) are called through `math`,
lane by lane, on the lanes that execute.
"""

from __future__ import annotations

import math

import numpy as np

from generator import linalg
from generator.spec import FLOAT_DTYPES, INT_DTYPES, KernelSpec, VEC_SHAPES

_M32 = 0xFFFFFFFF
# integers whose magnitude stays below this multiply without leaving int64
_SAFE_FACTOR = 2**31


class Unsure(Exception):
    """The lanes cannot be sure to give the thread-by-thread interpreter's bits here."""


# the builtins evaluated lane by lane through Python's math module (same bits, same exceptions)
_MATH = {
    "sin": math.sin, "cos": math.cos, "tanh": math.tanh, "exp": math.exp, "log": math.log,
    "atan": math.atan, "atan2": math.atan2, "sinh": math.sinh, "cosh": math.cosh,
    "log2": math.log2, "log10": math.log10, "pow": math.pow, "acos": math.acos, "asin": math.asin,
}
_NUMPY = {"sqrt", "abs", "floor", "ceil", "trunc", "min", "max", "clamp", "float32", "rand_init"}
_VECTOR = {"dot", "cross", "length", "length_sq", "normalize", "cw_mul", "transpose", "determinant", "outer",
           "quat_from_axis_angle", "quat_rotate", "quat_rotate_inv", "mul", "transform", "transform_point"}
_EXPR_TAGS = {"c", "v", "ld", "bin", "mod", "neg", "call", "where", "cmp", "and", "or", "not", "hcall", "cast",
              "fld", "randf", "vec", "comp", "mmul"}
_STMT_TAGS = {"let", "set", "aug", "store", "atomic", "if", "for", "while", "break", "continue", "ret", "expr",
              "ret_kernel"}
_SCALAR_DTYPES = set(FLOAT_DTYPES) | set(INT_DTYPES)
_VALUE_DTYPES = _SCALAR_DTYPES | set(VEC_SHAPES)


def _walk_ok(node, stmt: bool) -> bool:
    """Whether a statement list / expression uses only what the lanes evaluate (no recursion
    limit concerns: spec trees are shallow)."""
    if stmt:
        for s in node:
            tag = s[0]
            if tag not in _STMT_TAGS:
                return False
            if tag in ("let", "set"):
                ok = _walk_ok(s[2], False)
            elif tag == "aug":
                ok = _walk_ok(s[3], False)
            elif tag == "store":
                ok = all(_walk_ok(i, False) for i in s[2]) and _walk_ok(s[3], False)
            elif tag == "atomic":
                ok = s[1] in ("add", "min", "max") and all(_walk_ok(i, False) for i in s[3]) and _walk_ok(s[4], False)
            elif tag == "if":
                ok = (_walk_ok(s[1], False) and _walk_ok(s[2], True) and _walk_ok(s[4], True)
                      and all(_walk_ok(c, False) and _walk_ok(b, True) for c, b in s[3]))
            elif tag == "for":
                ok = _walk_ok(s[2], False) and _walk_ok(s[3], False) and _walk_ok(s[4], True)
            elif tag == "while":
                ok = _walk_ok(s[1], False) and _walk_ok(s[2], True)
            elif tag in ("ret", "expr"):
                ok = _walk_ok(s[1], False)
            else:
                ok = True
            if not ok:
                return False
        return True
    tag = node[0]
    if tag not in _EXPR_TAGS:
        return False
    if tag in ("c", "v", "fld"):
        return True
    if tag == "vec":
        return node[1] in VEC_SHAPES and all(_walk_ok(a, False) for a in node[2])
    if tag == "comp":
        return _walk_ok(node[1], False) and all(isinstance(k, int) for k in node[2])
    if tag == "mmul":
        return _walk_ok(node[1], False) and _walk_ok(node[2], False)
    if tag == "ld":
        return all(_walk_ok(i, False) for i in node[2])
    if tag in ("bin", "cmp"):
        return _walk_ok(node[2], False) and _walk_ok(node[3], False)
    if tag == "call":
        return (node[1] in _MATH or node[1] in _NUMPY or node[1] in _VECTOR) and all(_walk_ok(a, False) for a in node[2])
    if tag == "hcall":
        return all(_walk_ok(a, False) for a in node[2])
    if tag == "cast":
        return node[1] in _SCALAR_DTYPES and _walk_ok(node[2], False)
    if tag == "where":
        return all(_walk_ok(x, False) for x in node[1:4])
    if tag in ("and", "or", "mod"):
        return _walk_ok(node[1], False) and _walk_ok(node[2], False)
    if tag in ("neg", "not"):
        return _walk_ok(node[1], False)
    if tag == "randf":
        return all(_walk_ok(x, False) for x in node[2:])
    return False


def supported(spec: KernelSpec) -> bool:
    """Whether the lanes evaluate this spec at all (decided from the spec alone)."""
    if spec.launch != "grid":
        return False
    for a in spec.args:
        if a.kind == "struct":
            if any(t not in _VALUE_DTYPES for _, t in a.fields):
                return False
        elif a.dtype not in (_VALUE_DTYPES if a.kind == "array" else _SCALAR_DTYPES):
            return False
    for h in spec.helpers:
        if h.ret not in _SCALAR_DTYPES or any(t not in _SCALAR_DTYPES for _, t in h.params):
            return False
        if not _walk_ok(h.body, True):
            return False
    return _walk_ok(spec.body, True)


def _is_bool(x) -> bool:
    return isinstance(x, (bool, np.bool_)) or (isinstance(x, np.ndarray) and x.dtype == np.bool_)


def _is_int(x) -> bool:
    if isinstance(x, np.ndarray):
        return x.dtype.kind in "iu"
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def _is_float(x) -> bool:
    if isinstance(x, np.ndarray):
        return x.dtype.kind == "f"
    return isinstance(x, (float, np.floating))


def _truth(x):
    """Python's truth of each lane's value (a NaN is true)."""
    if isinstance(x, tuple) or (isinstance(x, np.ndarray) and x.ndim != 1):
        raise Unsure("the truth of a vector")
    if isinstance(x, np.ndarray):
        return x if x.dtype == np.bool_ else x != 0
    return bool(x)


def _elem(x) -> int:
    """How many element dimensions a lane value has (0 for scalars, 1 vec, 2 mat)."""
    return x.ndim - 1 if isinstance(x, np.ndarray) else 0


def _lift(x, k: int):
    """A lane value with its element dimensions right-aligned to k, as NumPy broadcasts one
    thread's values (a scalar against a vec3, a vec3 against a mat33's rows)."""
    if not isinstance(x, np.ndarray):
        return x
    e = x.ndim - 1
    if e >= k:
        return x
    return x.reshape((x.shape[0],) + (1,) * (k - e) + x.shape[1:])


def _where(m, a, b):
    """Per lane: a where m, else b (any element shape; tuples component by component)."""
    if isinstance(a, tuple) or isinstance(b, tuple):
        if not (isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b)):
            raise Unsure("a transform and another value in one variable")
        return tuple(_where(m, x, y) for x, y in zip(a, b))
    k = max(_elem(a), _elem(b))
    if k and _elem(a) != _elem(b):
        raise Unsure("a variable changes between element shapes")
    mm = m.reshape(m.shape + (1,) * k) if k else m
    return np.where(mm, a, b)


def _scalar_lanes(x) -> bool:
    return not isinstance(x, np.ndarray) or x.ndim == 1


def _pcg(state):
    b = (state * 747796405 + 2891336453) & _M32
    c = (((b >> ((b >> 28) + 4)) ^ b) * 277803737) & _M32
    return ((c >> 22) ^ c) & _M32


class _Track:
    """Who touched each element of an array the kernel writes: `writer` the thread that stored
    into it (-1 none), `reader` the highest thread that read it (-1 none), `atomic` whether an
    atomic updated it, `last` the highest thread whose atomic_add reached it.

    One thread after another, a read sees every write of the threads before it and none of the
    threads after it. All at once, a read sees the writes already executed. The two agree when
    an element stored into by thread t is read by no other thread after the store, and was read
    before it only by threads below t (they would have run before t); elements updated
    atomically are not read or stored into at all."""

    __slots__ = ("writer", "reader", "atomic", "last")

    def __init__(self, size: int):
        self.writer = np.full(size, -1, dtype=np.int64)
        self.reader = np.full(size, -1, dtype=np.int64)
        self.atomic = np.zeros(size, dtype=np.bool_)
        self.last = np.full(size, -1, dtype=np.int64)


def _written_arrays(stmts, out: set):
    for s in stmts:
        tag = s[0]
        if tag == "store":
            out.add(s[1])
        elif tag == "atomic":
            out.add(s[2])
        elif tag == "if":
            _written_arrays(s[2], out)
            _written_arrays(s[4], out)
            for _, b in s[3]:
                _written_arrays(b, out)
        elif tag == "for":
            _written_arrays(s[4], out)
        elif tag == "while":
            _written_arrays(s[2], out)


class Lanes:
    """`sets` > 1: that many input sets at once, each array stacked on a leading set axis; set k's
    threads are lanes k*threads .. (k+1)*threads - 1 and index set k's elements only."""

    def __init__(self, spec: KernelSpec, arrays: dict[str, np.ndarray], taken: set | None, sets: int = 1):
        self.shape = {a.name: tuple(a.shape) for a in spec.args if a.kind == "array"}
        lead = 1 if sets > 1 else 0
        # one row per element (a vec3 element is a row of 3): views, so writes land in arrays
        self.flat = {name: arr.reshape((-1,) + arr.shape[lead + len(self.shape[name]):]) for name, arr in arrays.items()}
        self.taken = taken
        self.helpers = {h.name: h for h in spec.helpers}
        self.sets = sets
        self.threads = int(np.prod(spec.dim))
        self.n = sets * self.threads
        self.lane = np.arange(self.n, dtype=np.int64)
        if sets > 1:  # where each lane's set starts, per array (in elements)
            self.base = {name: (self.lane // self.threads) * int(np.prod(self.shape[name], dtype=np.int64))
                         for name in self.flat}
        written: set = set()
        _written_arrays(spec.body, written)
        for h in spec.helpers:
            _written_arrays(h.body, written)
        self.track = {name: _Track(self.flat[name].shape[0]) for name in written if name in arrays}
        self.dead = np.zeros(self.n, dtype=np.bool_)  # lanes that returned (from the kernel or the helper)
        self.brk = np.zeros(self.n, dtype=np.bool_)  # lanes that left the innermost loop
        self.retval = None

    # ---- values -------------------------------------------------------------------------
    def _full(self, x):
        return x if isinstance(x, np.ndarray) else np.full(self.n, x)

    @staticmethod
    def _assign(env, name, value, m, every):
        if every or name not in env:
            env[name] = value
            return
        old = env[name]
        if _is_bool(value) != _is_bool(old):
            raise Unsure("a variable changes between bool and number")
        env[name] = _where(m, value, old)

    def _as(self, dtype, value, m):
        if not _scalar_lanes(value) or isinstance(value, tuple):
            raise Unsure("a vector where a scalar is expected")
        if dtype in FLOAT_DTYPES:
            if _is_bool(value) or _is_int(value):
                return value.astype(np.float64) if isinstance(value, np.ndarray) else float(value)
            return value if isinstance(value, np.ndarray) else float(value)
        if dtype == "bool":
            return _truth(value)
        if _is_float(value):
            if isinstance(value, np.ndarray):
                if not np.isfinite(value[m]).all():
                    raise Unsure("a non-finite value cast to an integer")
                if np.abs(value[m]).max(initial=0.0) >= 2.0**62:
                    raise Unsure("a float cast to an integer beyond int64")
                return np.trunc(np.where(m, value, 0.0)).astype(np.int64)
            return int(math.trunc(value))
        if isinstance(value, np.ndarray):
            return value.astype(np.int64)
        return int(value)

    def _index(self, name, idx_exprs, env, m):
        """Flat element indices of the active lanes (and the lanes), checked against the shape."""
        shape = self.shape[name]
        if len(idx_exprs) != len(shape):
            raise Unsure("an index with a different rank")
        flat = None
        for e, size in zip(idx_exprs, shape):
            k = self.expr(e, env, m)
            if not _is_int(k) or not _scalar_lanes(k):
                raise Unsure("an index that is not an integer")
            k = self._full(k)[m]
            if k.size and (k.min() < -size or k.max() >= size):
                raise Unsure("an index out of bounds")
            k = k % size
            flat = k if flat is None else flat * size + k
        if self.sets > 1:
            flat = flat + self.base[name][m]
        return flat, self.lane[m]

    def _read(self, name, flat, lanes):
        tr = self.track.get(name)
        if tr is None:
            return
        w = tr.writer[flat]
        if ((w != -1) & (w != lanes)).any():
            raise Unsure("a thread reads what another thread stored")
        if tr.atomic[flat].any():
            raise Unsure("a thread reads what threads update atomically")
        np.maximum.at(tr.reader, flat, lanes)

    def _write(self, name, flat, lanes):
        tr = self.track[name]
        w = tr.writer[flat]
        if ((w != -1) & (w != lanes)).any():
            raise Unsure("two threads store into one element")
        if (tr.reader[flat] > lanes).any():
            raise Unsure("a thread stores into what a later thread read")
        if tr.atomic[flat].any():
            raise Unsure("a thread stores into what threads update atomically")
        if flat.size > 1 and np.unique(flat).size < flat.size:
            raise Unsure("two threads store into one element")
        tr.writer[flat] = lanes

    # ---- expressions ----------------------------------------------------------------------
    def expr(self, e, env, m):
        tag = e[0]
        if tag == "c":
            return self._as(e[2], e[1], m)
        if tag == "v":
            return env[e[1]]
        if tag == "ld":
            flat, lanes = self._index(e[1], e[2], env, m)
            self._read(e[1], flat, lanes)
            src = self.flat[e[1]]
            out = np.zeros((self.n,) + src.shape[1:], dtype=src.dtype)
            out[m] = src[flat]
            return out
        if tag == "bin":
            a, b = self.expr(e[2], env, m), self.expr(e[3], env, m)
            return self._bin(e[1], a, b, m)
        if tag == "mod":
            a, k = self.expr(e[1], env, m), self.expr(e[2], env, m)
            if not (_is_int(a) and _is_int(k)):
                raise Unsure("% of non-integers")
            kk = self._full(k)[m]
            if (kk == 0).any():
                raise Unsure("% by zero")
            if isinstance(k, np.ndarray):
                k = np.where(m, k, 1)
            return a % k
        if tag == "neg":
            a = self.expr(e[1], env, m)
            if _is_bool(a):
                raise Unsure("- of a bool")
            return -a
        if tag == "call":
            return self._call(e[1], [self.expr(a, env, m) for a in e[2]], m)
        if tag == "where":
            c = _truth(self.expr(e[1], env, m))
            if not isinstance(c, np.ndarray):
                if self.taken is not None:
                    self.taken.add((id(e), c))
                return self.expr(e[2] if c else e[3], env, m)
            mt, mf = m & c, m & ~c
            a = b = 0
            if mt.any():
                if self.taken is not None:
                    self.taken.add((id(e), True))
                a = self.expr(e[2], env, mt)
            if mf.any():
                if self.taken is not None:
                    self.taken.add((id(e), False))
                b = self.expr(e[3], env, mf)
            if not mt.any():
                return b
            if not mf.any():
                return a
            if _is_bool(a) != _is_bool(b):
                raise Unsure("where() of a bool and a number")
            return _where(c, a, b)
        if tag == "cmp":
            a, b = self.expr(e[2], env, m), self.expr(e[3], env, m)
            if not (_scalar_lanes(a) and _scalar_lanes(b)) or isinstance(a, tuple) or isinstance(b, tuple):
                raise Unsure("a comparison of vectors")
            op = e[1]
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
        if tag == "and":
            a = _truth(self.expr(e[1], env, m))
            if not isinstance(a, np.ndarray):
                return _truth(self.expr(e[2], env, m)) if a else False
            mb = m & a
            if not mb.any():
                return a
            return a & _truth(self.expr(e[2], env, mb))
        if tag == "or":
            a = _truth(self.expr(e[1], env, m))
            if not isinstance(a, np.ndarray):
                return True if a else _truth(self.expr(e[2], env, m))
            mb = m & ~a
            if not mb.any():
                return a
            return a | _truth(self.expr(e[2], env, mb))
        if tag == "not":
            a = _truth(self.expr(e[1], env, m))
            return ~a if isinstance(a, np.ndarray) else not a
        if tag == "hcall":
            return self._hcall(e, env, m)
        if tag == "cast":
            return self._as(e[1], self.expr(e[2], env, m), m)
        if tag == "fld":
            return env[e[1]][e[2]]
        if tag == "randf":
            state = env[e[1]]
            if not _is_int(state):
                raise Unsure("an RNG state that is not an integer")
            new = _pcg(state)
            self._assign(env, e[1], new, m, False)
            u = (new >> 8) * (1.0 / 16777216.0)
            if len(e) > 2:
                lo, hi = self.expr(e[2], env, m), self.expr(e[3], env, m)
                if not isinstance(u, np.ndarray) and not isinstance(lo, np.ndarray) and not isinstance(hi, np.ndarray):
                    return float(np.float32(np.float32(hi - lo) * np.float32(u) + np.float32(lo)))
                f32 = (np.asarray(hi - lo).astype(np.float32) * np.asarray(u).astype(np.float32)
                       + np.asarray(lo).astype(np.float32))
                return self._full(f32.astype(np.float64))
            return u
        if tag == "vec":
            comps = [self.expr(a, env, m) for a in e[2]]
            if not all(_scalar_lanes(c) and not isinstance(c, tuple) for c in comps):
                raise Unsure("a vector component that is not a scalar")
            cols = [self._full(c).astype(np.float64) for c in comps]
            return np.stack(cols, axis=-1).reshape((self.n,) + VEC_SHAPES[e[1]])
        if tag == "comp":
            x = self.expr(e[1], env, m)
            if not isinstance(x, np.ndarray) or x.ndim - 1 != len(e[2]):
                raise Unsure("a component of a non-vector")
            return np.array(x[(slice(None),) + tuple(e[2])], dtype=np.float64)
        if tag == "mmul":
            a, b = self.expr(e[1], env, m), self.expr(e[2], env, m)
            if _elem(a) != 2 or _elem(b) not in (1, 2) or a.shape[2] != b.shape[1]:
                raise Unsure("a matrix product of other shapes")
            if _elem(b) == 1:
                return linalg.matvec(a, b)
            return linalg.matmul(a, b)
        raise Unsure(f"expression {tag!r}")

    def _bin(self, op, a, b, m):
        if _is_bool(a) or _is_bool(b):
            raise Unsure("arithmetic on bools")
        if isinstance(a, tuple) or isinstance(b, tuple):
            raise Unsure("arithmetic on a transform")
        k = max(_elem(a), _elem(b))
        if k:
            a, b = _lift(a, k), _lift(b, k)
        if op == "+":
            r = a + b
        elif op == "-":
            r = a - b
        elif op == "*":
            if _is_int(a) and _is_int(b):
                if np.abs(self._full(a)[m]).max(initial=0) >= _SAFE_FACTOR or \
                        np.abs(self._full(b)[m]).max(initial=0) >= _SAFE_FACTOR:
                    raise Unsure("an integer product that might leave int64")
            r = a * b
        elif op == "/":
            if (self._full(b)[m] == 0).any():
                raise Unsure("a division by zero")
            if isinstance(b, np.ndarray):
                b = np.where(m.reshape(m.shape + (1,) * (b.ndim - 1)), b, 1)
            r = a / b
        else:
            raise ValueError(op)
        if _is_int(r) and isinstance(r, np.ndarray) and r.size and np.abs(r[m]).max(initial=0) >= 2**62:
            raise Unsure("an integer beyond int64")
        return r

    def _call(self, name, args, m):
        if any(_is_bool(a) for a in args):
            raise Unsure("a builtin on a bool")
        if name in _VECTOR:
            return self._vector_call(name, args, m)
        if any(isinstance(a, tuple) for a in args) or (name != "abs" and not all(_scalar_lanes(a) for a in args)):
            raise Unsure(f"{name} of a vector")
        fn = _MATH.get(name)
        if fn is not None:
            if not any(isinstance(a, np.ndarray) for a in args):
                return fn(*args)
            cols = [self._full(a)[m].tolist() for a in args]
            out = np.zeros(self.n, dtype=np.float64)
            try:
                out[m] = [fn(*xs) for xs in zip(*cols)]
            except (ValueError, OverflowError, ZeroDivisionError, TypeError) as exc:
                raise Unsure(f"{name}: {exc}") from None
            return out
        if name == "sqrt":
            (x,) = args
            if not isinstance(x, np.ndarray):
                return math.sqrt(x)
            if (x[m] < 0).any():
                raise Unsure("sqrt of a negative number")
            return np.sqrt(np.where(m, x, 0))
        if name == "abs":
            (x,) = args
            return np.abs(x) if isinstance(x, np.ndarray) else abs(x)
        if name in ("floor", "ceil", "trunc"):
            (x,) = args
            if not isinstance(x, np.ndarray):
                f = {"floor": math.floor, "ceil": math.ceil, "trunc": math.trunc}[name]
                return float(f(x))
            if x.dtype.kind == "f" and not np.isfinite(x[m]).all():
                raise Unsure(f"{name} of a non-finite number")
            # + 0.0: Python's float(math.ceil(-0.5)) is 0.0 (an int converted), NumPy's ceil -0.0
            return {"floor": np.floor, "ceil": np.ceil, "trunc": np.trunc}[name](x).astype(np.float64) + 0.0
        if name == "min":
            a, b = args
            return self._min(a, b)
        if name == "max":
            a, b = args
            return self._max(a, b)
        if name == "clamp":
            x, lo, hi = args
            return self._min(self._max(x, lo), hi)
        if name == "float32":
            (x,) = args
            return x.astype(np.float64) if isinstance(x, np.ndarray) else float(x)
        if name == "rand_init":
            if not all(_is_int(a) for a in args):
                raise Unsure("rand_init of a non-integer")
            if len(args) == 1:
                return _pcg(args[0] & _M32)
            seed, offset = args
            return _pcg(((seed & _M32) + _pcg(offset & _M32)) & _M32)
        raise Unsure(f"builtin {name!r}")

    def _vector_call(self, name, args, m):
        def vec(x, *dims):
            if not isinstance(x, np.ndarray) or x.shape[1:] != dims:
                raise Unsure(f"{name} of a {np.shape(x)[1:]} value")
            return x

        def lanes_math(fn, x):
            if not isinstance(x, np.ndarray):
                return fn(x)
            out = np.zeros(self.n, dtype=np.float64)
            out[m] = [fn(v) for v in x[m].tolist()]
            return out

        def col(x):
            return x[:, None] if isinstance(x, np.ndarray) else x

        def rotate(q, v):
            u, w = q[:, :3], q[:, 3]
            return v * col(2.0 * w * w - 1.0) + np.cross(u, v) * col(2.0 * w) + u * col(2.0 * linalg.dot(u, v))

        if name == "transform":
            p, q = args
            return (vec(p, 3).astype(np.float64), vec(q, 4).astype(np.float64))
        if name == "transform_point":
            t, x = args
            if not (isinstance(t, tuple) and len(t) == 2):
                raise Unsure("transform_point of a non-transform")
            return rotate(vec(t[1], 4), vec(x, 3)) + t[0]
        if any(isinstance(a, tuple) for a in args):
            raise Unsure(f"{name} of a transform")
        if name in ("dot", "length", "length_sq", "normalize", "cw_mul", "cross", "outer"):
            a = args[0]
            if _elem(a) != 1:
                raise Unsure(f"{name} of a non-vector")
            if name in ("dot", "cw_mul", "cross", "outer"):
                b = args[1]
                if not isinstance(b, np.ndarray) or b.shape != a.shape:
                    raise Unsure(f"{name} of vectors of two shapes")
            if name == "dot":
                return linalg.dot(a, b)
            if name == "length":
                return np.sqrt(linalg.dot(a, a))
            if name == "length_sq":
                return linalg.dot(a, a)
            if name == "normalize":
                n = np.sqrt(linalg.dot(a, a))
                pos = n > 0.0
                return np.where(pos[:, None], a / np.where(pos, n, 1.0)[:, None], 0.0)
            if name == "cw_mul":
                return a * b
            if name == "cross":
                vec(a, 3)
                return np.cross(a, b)
            return a[:, :, None] * b[:, None, :]
        if name == "transpose":
            (a,) = args
            if _elem(a) != 2:
                raise Unsure("transpose of a non-matrix")
            return np.array(np.swapaxes(a, 1, 2))
        if name == "determinant":
            (a,) = args
            if _elem(a) != 2 or a.shape[1] != a.shape[2]:
                raise Unsure("determinant of a non-square matrix")
            return linalg.det(a)
        if name == "quat_from_axis_angle":
            axis, angle = args
            vec(axis, 3)
            if not _scalar_lanes(angle):
                raise Unsure("quat_from_axis_angle of a vector angle")
            h = 0.5 * angle
            s_, c_ = lanes_math(math.sin, h), lanes_math(math.cos, h)
            return np.concatenate([axis.astype(np.float64) * col(s_), self._full(c_)[:, None]], axis=1)
        if name == "quat_rotate":
            q, v = args
            return rotate(vec(q, 4), vec(v, 3))
        if name == "quat_rotate_inv":
            q, v = args
            q = vec(q, 4)
            return rotate(np.concatenate([-q[:, :3], q[:, 3:]], axis=1), vec(v, 3))
        if name == "mul":
            a, b = args
            a, b = vec(a, 4), vec(b, 4)
            av, aw, bv, bw = a[:, :3], a[:, 3], b[:, :3], b[:, 3]
            return np.concatenate([col(aw) * bv + col(bw) * av + np.cross(av, bv), (aw * bw - linalg.dot(av, bv))[:, None]],
                                  axis=1)
        raise Unsure(f"builtin {name!r}")

    @staticmethod
    def _min(a, b):
        # Python's min(a, b): a unless b < a
        if not isinstance(a, np.ndarray) and not isinstance(b, np.ndarray):
            return min(a, b)
        return np.where(b < a, b, a)

    @staticmethod
    def _max(a, b):
        if not isinstance(a, np.ndarray) and not isinstance(b, np.ndarray):
            return max(a, b)
        return np.where(b > a, b, a)

    def _hcall(self, e, env, m):
        h = self.helpers[e[1]]
        local = {n: self._as(t, self.expr(a, env, m), m) for (n, t), a in zip(h.params, e[2])}
        saved = self.dead, self.brk, self.retval
        self.dead = np.zeros(self.n, dtype=np.bool_)
        self.brk = np.zeros(self.n, dtype=np.bool_)
        self.retval = None
        try:
            self.block(h.body, local, m)
            if (m & ~self.dead).any():
                raise Unsure(f"helper {h.name} fell off its end")
            value = self.retval
        finally:
            self.dead, self.brk, self.retval = saved
        return self._as(h.ret, value, m)

    # ---- statements -------------------------------------------------------------------------
    def block(self, stmts, env, m):
        """Run the statements on the lanes in `m`; the lanes that reach the end of the block."""
        for s in stmts:
            m = self.stmt(s, env, m)
            if not m.any():
                return m
        return m

    def stmt(self, s, env, m):
        tag = s[0]
        if tag in ("let", "set"):
            self._assign(env, s[1], self.expr(s[2], env, m), m, m.all())
            return m
        if tag == "aug":
            v = self.expr(s[3], env, m)
            old = env[s[1]]
            op = s[2]
            new = self._bin(op, old, v, m) if op in "+-*" else None
            if new is None:
                raise ValueError(op)
            self._assign(env, s[1], new, m, m.all())
            return m
        if tag == "store":
            flat, lanes = self._index(s[1], s[2], env, m)
            v = self.expr(s[3], env, m)
            dst = self.flat[s[1]]
            if dst.dtype.kind != "f" and _is_float(v):
                raise Unsure("a float stored into an integer array")
            if isinstance(v, tuple) or np.shape(v)[1:] != dst.shape[1:] and isinstance(v, np.ndarray):
                raise Unsure("a value stored into an element of another shape")
            if dst.ndim > 1 and not isinstance(v, np.ndarray):
                raise Unsure("a scalar stored into a vector element")
            self._write(s[1], flat, lanes)
            dst[flat] = self._full(v)[m]
            return m
        if tag == "atomic":
            self._atomic(s, env, m)
            return m
        if tag == "if":
            return self._if(s, env, m)
        if tag == "for":
            start, stop = self.expr(s[2], env, m), self.expr(s[3], env, m)
            if not (_is_int(start) and _is_int(stop)):
                raise Unsure("a range of non-integers")
            v = self._full(start).astype(np.int64)
            live = m & (v < stop)
            outer = self.brk
            self.brk = np.zeros(self.n, dtype=np.bool_)
            try:
                while live.any():
                    self._assign(env, s[1], v, live, live.all())
                    self.block(s[4], env, live)
                    v = v + 1
                    live = live & ~self.brk & ~self.dead & (v < stop)
            finally:
                self.brk = outer
            return m & ~self.dead
        if tag == "while":
            outer = self.brk
            self.brk = np.zeros(self.n, dtype=np.bool_)
            live = m
            try:
                while True:
                    c = _truth(self.expr(s[1], env, live))
                    live = live & c
                    if not live.any():
                        break
                    self.block(s[2], env, live)
                    live = live & ~self.brk & ~self.dead
            finally:
                self.brk = outer
            return m & ~self.dead
        if tag == "break":
            self.brk = self.brk | m
            return np.zeros(self.n, dtype=np.bool_)
        if tag == "continue":
            return np.zeros(self.n, dtype=np.bool_)
        if tag == "ret":
            v = self.expr(s[1], env, m)
            if self.retval is None:
                self.retval = v
            else:
                if _is_bool(v) != _is_bool(self.retval):
                    raise Unsure("a helper returns a bool and a number")
                self.retval = _where(m, v, self.retval)
            self.dead = self.dead | m
            return np.zeros(self.n, dtype=np.bool_)
        if tag == "expr":
            self.expr(s[1], env, m)
            return m
        if tag == "ret_kernel":
            self.dead = self.dead | m
            return np.zeros(self.n, dtype=np.bool_)
        raise Unsure(f"statement {tag!r}")

    def _if(self, s, env, m):
        c = _truth(self.expr(s[1], env, m))
        c = np.broadcast_to(c, (self.n,)) if not isinstance(c, np.ndarray) else c
        flow = np.zeros(self.n, dtype=np.bool_)
        hit = m & c
        rest = m & ~c
        if hit.any():
            out = self.block(s[2], env, hit)
            if out.any() and self.taken is not None:
                self.taken.add((id(s), 0))
            flow |= out
        for k, (cond, body) in enumerate(s[3], 1):
            if not rest.any():
                break
            ck = _truth(self.expr(cond, env, rest))
            ck = np.broadcast_to(ck, (self.n,)) if not isinstance(ck, np.ndarray) else ck
            hit = rest & ck
            rest = rest & ~ck
            if hit.any():
                out = self.block(body, env, hit)
                if out.any() and self.taken is not None:
                    self.taken.add((id(s), k))
                flow |= out
        if rest.any():
            out = self.block(s[4], env, rest)
            if out.any() and self.taken is not None:
                self.taken.add((id(s), len(s[3]) + 1))
            flow |= out
        return flow

    def _atomic(self, s, env, m):
        name = s[2]
        flat, lanes = self._index(name, s[3], env, m)
        v = self.expr(s[4], env, m)
        dst = self.flat[name]
        if isinstance(v, tuple) or (isinstance(v, np.ndarray) and v.shape[1:] != dst.shape[1:]) or \
                (dst.ndim > 1 and not isinstance(v, np.ndarray)):
            raise Unsure("an atomic of another element shape")
        if dst.ndim > 1 and s[1] != "add":
            raise Unsure("an atomic min/max of vectors")
        v = self._full(v)[m]
        if _is_bool(v):
            v = v.astype(np.int64)
        if dst.dtype.kind != "f" and v.dtype.kind == "f":
            raise Unsure("a float added atomically into an integer array")
        tr = self.track[name]
        if (tr.writer[flat] != -1).any() or (tr.reader[flat] != -1).any():
            raise Unsure("an atomic on an element a plain access touched")
        op = s[1]
        if dst.dtype.kind == "f" and not np.isfinite(v).all():
            raise Unsure("a non-finite value in an atomic")
        if op == "add":
            if dst.dtype.kind == "f":
                # the float sum's bits depend on its order: the threads' contributions must
                # arrive in thread order, as they do one thread after another
                if (lanes < tr.last[flat]).any():
                    raise Unsure("float atomic_add contributions out of thread order")
                tr.last[flat] = lanes
            np.add.at(dst, flat, v)
        elif dst.dtype.kind == "f" and ((v == 0).any() or (dst[flat] == 0).any()):
            # Python's min(cur, v) keeps cur unless v < cur: of 0.0 and -0.0 the first stays,
            # where NumPy's minimum may take either; one lane after another, as the threads do
            less = op == "min"
            for f, x in zip(flat.tolist(), v.tolist()):
                if (x < dst[f]) if less else (x > dst[f]):
                    dst[f] = x
        elif op == "min":
            np.minimum.at(dst, flat, v)
        elif op == "max":
            np.maximum.at(dst, flat, v)
        else:
            raise ValueError(op)
        tr.atomic[flat] = True


def _set_values(values: list, threads: int):
    """One scalar argument's (or struct field's) values in each set, as one lane value: the
    value itself where every set has the same one (bit for bit), else one per lane, set by set."""
    first = values[0]
    if isinstance(first, np.ndarray):  # a vector struct field: a row per lane
        return np.concatenate([np.broadcast_to(v, (threads,) + v.shape) for v in values])
    if all(type(v) is type(first) and repr(v) == repr(first) for v in values[1:]):
        return first
    if {type(v) for v in values} not in ({int}, {float}):
        raise Unsure("scalar arguments of different kinds across input sets")
    return np.repeat(np.array(values, dtype=np.float64 if isinstance(first, float) else np.int64), threads)


def run_lanes_sets(spec: KernelSpec, prepared: list[tuple[dict, dict]]) -> None:
    """`run_lanes` of several input sets at once (each `prepare`d: arrays, scalars), into each
    set's arrays, or raise Unsure. Every lane computes what it computes in its own set's run: the
    sets share no element, and a scalar argument that differs between sets is a lane value."""
    first_arrays, first_scalars = prepared[0]
    stacked = {name: np.stack([p[0][name] for p in prepared]) for name in first_arrays}
    lanes = Lanes(spec, stacked, None, sets=len(prepared))
    env = {}
    for name, value in first_scalars.items():
        if isinstance(value, dict):
            env[name] = {f: _set_values([p[1][name][f] for p in prepared], lanes.threads) for f in value}
        else:
            env[name] = _set_values([p[1][name] for p in prepared], lanes.threads)
    _run_threads(spec, lanes, env)
    for k, (arrays, _) in enumerate(prepared):
        for name in arrays:
            arrays[name][...] = stacked[name][k]


def run_lanes(spec: KernelSpec, arrays: dict[str, np.ndarray], scalars: dict, taken: set | None) -> None:
    """Evaluate every thread of `spec` at once into `arrays` (and `taken`), or raise Unsure."""
    lanes = Lanes(spec, arrays, taken)
    env = dict(scalars)
    for name, value in scalars.items():
        if isinstance(value, dict):  # a struct: its vector fields become lane values
            env[name] = {f: (np.broadcast_to(v, (lanes.n,) + v.shape).copy() if isinstance(v, np.ndarray) else v)
                         for f, v in value.items()}
    _run_threads(spec, lanes, env)


def _run_threads(spec: KernelSpec, lanes: Lanes, env: dict) -> None:
    """The kernel body on every lane, each lane's thread ids bound (a lane's thread within its set)."""
    ids = np.unravel_index(lanes.lane % lanes.threads, spec.dim) if spec.dim else ()
    for name, ix in zip(spec.tid_names, ids):
        env[name] = ix.astype(np.int64)
    with np.errstate(all="ignore"):
        lanes.block(spec.body, env, np.ones(lanes.n, dtype=np.bool_))
