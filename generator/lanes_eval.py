"""The lanes' evaluator: a spec's statements and expressions run for every thread at once, with a
mask of the lanes that execute each statement (lane k is the k-th thread in launch order).

Control flow is masks: a branch runs its body on the lanes whose condition holds, a loop runs
while some lane is still in it, and `break`, `continue` and `return` take lanes out of the mask
of the rest of their block (`brk`: lanes that left the innermost loop; `dead`: lanes that
returned, from the kernel or from the helper being called).
"""

from __future__ import annotations

import numpy as np

from generator import linalg
from generator.lanes_builtins import call
from generator.lanes_memory import Memory, written_arrays
from generator.lanes_ops import arith, compare, modulo, negate
from generator.lanes_values import Unsure, assign, cast, elem, full, is_bool, is_int, scalar_lanes, truth, where
from generator.spec import FLOAT_DTYPES, RAND_SAMPLES, VALUE_VEC_TYPES, VEC_SHAPES, KernelSpec
from generator.warp_rng import rand_int, rand_pcg, sample, unit_float


class Lanes:
    """`sets` > 1: that many input sets at once, each array stacked on a leading set axis; set k's
    threads are lanes k*threads .. (k+1)*threads - 1 and index set k's elements only."""

    def __init__(self, spec: KernelSpec, arrays: dict[str, np.ndarray], taken: set | None, sets: int = 1):
        self.taken = taken
        self.helpers = {h.name: h for h in spec.helpers}
        self.sets = sets
        self.threads = int(np.prod(spec.dim))
        self.n = sets * self.threads
        self.lane = np.arange(self.n, dtype=np.int64)
        self.memory = Memory(spec, arrays, self.lane, sets, self.threads, written_arrays(spec))
        self.dead = np.zeros(self.n, dtype=np.bool_)  # lanes that returned (from the kernel or the helper)
        self.brk = np.zeros(self.n, dtype=np.bool_)  # lanes that left the innermost loop
        self.retval = None

    def _none(self) -> np.ndarray:
        return np.zeros(self.n, dtype=np.bool_)

    def _every(self, c) -> np.ndarray:
        return np.broadcast_to(c, (self.n,)) if not isinstance(c, np.ndarray) else c

    def _locate(self, name, index, env, m):
        return self.memory.locate(name, index, lambda e: self.expr(e, env, m), m)

    # ---- expressions ----------------------------------------------------------------------
    def expr(self, e, env, m):
        match e:
            case ["v", name]:
                return env[name]
            case ["c", value, dtype]:
                return cast(dtype, value, m)
            case ["bin", op, a, b]:
                x, y = self.expr(a, env, m), self.expr(b, env, m)
                return arith(op, x, y, m)
            case ["ld", name, index]:
                flat, lanes = self._locate(name, index, env, m)
                return self.memory.load(name, flat, lanes, m)
            case ["call", name, args]:
                return call(name, [self.expr(a, env, m) for a in args], m)
            case ["cmp", op, a, b]:
                x, y = self.expr(a, env, m), self.expr(b, env, m)
                return compare(op, x, y)
            case ["where", cond, a, b]:
                return self._where(e, cond, a, b, env, m)
            case ["mod", a, k]:
                x, y = self.expr(a, env, m), self.expr(k, env, m)
                return modulo(x, y, m)
            case ["cast", dtype, a]:
                return cast(dtype, self.expr(a, env, m), m)
            case ["comp", a, keys]:
                return self._comp(self.expr(a, env, m), keys)
            case ["and", a, b]:
                return self._and(a, b, env, m)
            case ["randf", state, *bounds]:
                return self._randf(state, bounds, env, m)
            case ["randi" | "randu" as kind, state, *bounds]:
                return self._rand_int(kind, state, bounds, env, m)
            case [str() as kind, str() as state] if kind in RAND_SAMPLES:
                return self._sample(kind, state, env, m)
            case ["vec", vtype, comps]:
                return self._vec(vtype, [self.expr(a, env, m) for a in comps], m)
            case ["tuple", items]:  # atomic_cas's (compare, value)
                return tuple(self.expr(a, env, m) for a in items)
            case ["neg", a]:
                return negate(self.expr(a, env, m))
            case ["or", a, b]:
                return self._or(a, b, env, m)
            case ["fld", name, field]:
                return env[name][field]
            case ["hcall", name, args]:
                return self._hcall(name, args, env, m)
            case ["mmul", a, b]:
                return self._mmul(self.expr(a, env, m), self.expr(b, env, m))
            case ["not", a]:
                x = truth(self.expr(a, env, m))
                return ~x if isinstance(x, np.ndarray) else not x
            case ["kwcall", name, args, keywords]:
                return self._kwcall(name, args, keywords, env, m)
        raise Unsure(f"expression {e[0]!r}")

    def _where(self, e, cond, a, b, env, m):
        c = truth(self.expr(cond, env, m))
        if not isinstance(c, np.ndarray):
            if self.taken is not None:
                self.taken.add((id(e), c))
            return self.expr(a if c else b, env, m)
        mt, mf = m & c, m & ~c
        x = y = 0
        if mt.any():
            if self.taken is not None:
                self.taken.add((id(e), True))
            x = self.expr(a, env, mt)
        if mf.any():
            if self.taken is not None:
                self.taken.add((id(e), False))
            y = self.expr(b, env, mf)
        if not mt.any():
            return y
        if not mf.any():
            return x
        if is_bool(x) != is_bool(y):
            raise Unsure("where() of a bool and a number")
        return where(c, x, y)

    def _and(self, a, b, env, m):
        x = truth(self.expr(a, env, m))
        if not isinstance(x, np.ndarray):
            return truth(self.expr(b, env, m)) if x else False
        mb = m & x
        if not mb.any():
            return x
        return x & truth(self.expr(b, env, mb))

    def _or(self, a, b, env, m):
        x = truth(self.expr(a, env, m))
        if not isinstance(x, np.ndarray):
            return True if x else truth(self.expr(b, env, m))
        mb = m & ~x
        if not mb.any():
            return x
        return x | truth(self.expr(b, env, mb))

    def _rand_int(self, kind, state_name, bounds, env, m):
        state = env[state_name]
        lo_hi = [self.expr(b, env, m) for b in bounds]
        if not is_int(state) or not all(is_int(b) for b in lo_hi):
            raise Unsure(f"{kind} of a state or bounds that are not integers")
        new = rand_pcg(state)
        assign(env, state_name, new, m, False)
        return rand_int(kind, new, *lo_hi)

    def _sample(self, kind, state_name, env, m):
        """A sampler's point on the lanes in m, lane by lane through the threads' own function
        (`warp_rng.sample`: the same bits): one (k,) vector per lane."""
        state = full(env[state_name], m)
        if not is_int(state):
            raise Unsure("an RNG state that is not an integer")
        new, out = state.copy(), np.zeros((m.shape[0], len(sample(kind, 0)[1])), dtype=np.float64)
        for j in np.flatnonzero(m).tolist():
            new[j], out[j] = sample(kind, int(state[j]))
        assign(env, state_name, new, m, False)
        return out

    def _randf(self, state_name, bounds, env, m):
        state = env[state_name]
        if not is_int(state):
            raise Unsure("an RNG state that is not an integer")
        new = rand_pcg(state)
        assign(env, state_name, new, m, False)
        u = unit_float(new)
        if not bounds:
            return u
        lo, hi = self.expr(bounds[0], env, m), self.expr(bounds[1], env, m)
        if not isinstance(u, np.ndarray) and not isinstance(lo, np.ndarray) and not isinstance(hi, np.ndarray):
            return float(np.float32(np.float32(hi - lo) * np.float32(u) + np.float32(lo)))
        f32 = (np.asarray(hi - lo).astype(np.float32) * np.asarray(u).astype(np.float32)
               + np.asarray(lo).astype(np.float32))
        return full(f32.astype(np.float64), m)

    def _vec(self, vtype, comps, m):
        if not all(scalar_lanes(c) and not isinstance(c, tuple) for c in comps):
            raise Unsure("a vector component that is not a scalar")
        shape, scalar = VALUE_VEC_TYPES.get(vtype) or (VEC_SHAPES[vtype], "float32")
        if scalar not in FLOAT_DTYPES and not all(is_int(c) for c in comps):
            raise Unsure("an integer vector of components that are not integers")
        cols = [full(cast(scalar, c, m), m) for c in comps]
        return np.stack(cols, axis=-1).reshape((self.n,) + shape)

    @staticmethod
    def _comp(x, keys):
        if not isinstance(x, np.ndarray) or x.ndim - 1 != len(keys):
            raise Unsure("a component of a non-vector")
        return np.array(x[(slice(None),) + tuple(keys)])  # float64, or int64 of an integer vector

    def _kwcall(self, name, args, keywords, env, m):
        """wp.identity(n=N, dtype=wp.float32) and wp.matrix(*scalars, shape=(N, N), dtype=wp.float32),
        the keyword calls the lanes evaluate."""
        kw = dict(keywords)
        if name == "matrix" and set(kw) == {"shape", "dtype"} and kw["dtype"] == ["fnref", "float32"]:
            shape = tuple(x[1] if x[0] == "c" else None for x in kw["shape"][1])
            if shape not in ((2, 2), (3, 3), (4, 4)) or len(args) != shape[0] * shape[1]:
                raise Unsure(f"wp.matrix of shape {shape}")
            return self._vec(f"mat{shape[0]}{shape[1]}", [self.expr(a, env, m) for a in args], m)
        if name != "identity" or args or set(kw) != {"n", "dtype"} or kw["n"][0] != "c" or kw["dtype"][0] != "fnref":
            raise Unsure(f"keyword call {name!r}")
        n = int(kw["n"][1])
        return np.broadcast_to(np.eye(n, dtype=np.float64), (self.n, n, n)).copy()

    @staticmethod
    def _mmul(a, b):
        if elem(a) != 2 or elem(b) not in (1, 2) or a.shape[2] != b.shape[1]:
            raise Unsure("a matrix product of other shapes")
        if elem(b) == 1:
            return linalg.matvec(a, b)
        return linalg.matmul(a, b)

    def _hcall(self, name, args, env, m):
        h = self.helpers[name]
        local = {n: cast(t, self.expr(a, env, m), m) for (n, t), a in zip(h.params, args)}
        saved = self.dead, self.brk, self.retval
        self.dead = self._none()
        self.brk = self._none()
        self.retval = None
        try:
            self.block(h.body, local, m)
            if (m & ~self.dead).any():
                raise Unsure(f"helper {h.name} fell off its end")
            value = self.retval
        finally:
            self.dead, self.brk, self.retval = saved
        return cast(h.ret, value, m)

    # ---- statements -------------------------------------------------------------------------
    def block(self, stmts, env, m):
        """Run the statements on the lanes in `m`; the lanes that reach the end of the block."""
        for s in stmts:
            m = self.stmt(s, env, m)
            if not m.any():
                return m
        return m

    def stmt(self, s, env, m):
        """Run one statement on the lanes in `m`; the lanes that go on to the next statement."""
        match s:
            case ["let" | "set", name, value]:
                assign(env, name, self.expr(value, env, m), m, m.all())
            case ["if", cond, then, elifs, orelse]:
                return self._if(s, cond, then, elifs, orelse, env, m)
            case ["aug", name, op, value]:
                self._aug(name, op, value, env, m)
            case ["atomic", op, name, index, value]:
                flat, lanes = self._locate(name, index, env, m)
                self.memory.atomic(op, name, flat, lanes, self.expr(value, env, m), m)
            case ["store", name, index, value]:
                flat, lanes = self._locate(name, index, env, m)
                self.memory.store(name, flat, lanes, self.expr(value, env, m), m)
            case ["for", var, start, stop, body, *order]:
                return self._for(var, start, stop, body, env, m, order == ["reversed"])
            case ["continue"]:
                return self._none()
            case ["while", cond, body]:
                return self._while(cond, body, env, m)
            case ["ret", value]:
                self._return(self.expr(value, env, m), m)
                return self._none()
            case ["break"]:
                self.brk = self.brk | m
                return self._none()
            case ["expr", value]:
                self.expr(value, env, m)
            case ["ret_kernel"]:
                self.dead = self.dead | m
                return self._none()
            case _:
                raise Unsure(f"statement {s[0]!r}")
        return m

    def _aug(self, name, op, value, env, m):
        v = self.expr(value, env, m)
        old = env[name]
        if op not in "+-*":
            raise ValueError(op)
        assign(env, name, arith(op, old, v, m), m, m.all())

    def _return(self, v, m):
        if self.retval is None:
            self.retval = v
        else:
            if is_bool(v) != is_bool(self.retval):
                raise Unsure("a helper returns a bool and a number")
            self.retval = where(m, v, self.retval)
        self.dead = self.dead | m

    def _branch(self, s, outcome, body, env, hit):
        """One branch of an `if` on the lanes `hit`; the lanes that come out of its end."""
        out = self.block(body, env, hit)
        if out.any() and self.taken is not None:
            self.taken.add((id(s), outcome))
        return out

    def _if(self, s, cond, then, elifs, orelse, env, m):
        c = self._every(truth(self.expr(cond, env, m)))
        flow = self._none()
        hit = m & c
        rest = m & ~c
        if hit.any():
            flow |= self._branch(s, 0, then, env, hit)
        for k, (elif_cond, body) in enumerate(elifs, 1):
            if not rest.any():
                break
            ck = self._every(truth(self.expr(elif_cond, env, rest)))
            hit = rest & ck
            rest = rest & ~ck
            if hit.any():
                flow |= self._branch(s, k, body, env, hit)
        if rest.any():
            flow |= self._branch(s, len(elifs) + 1, orelse, env, rest)
        return flow

    def _for(self, var, start, stop, body, env, m, backward=False):
        first, end = self.expr(start, env, m), self.expr(stop, env, m)
        if not (is_int(first) and is_int(end)):
            raise Unsure("a range of non-integers")
        if backward:  # reversed(range(first, end)): end - 1 down to first
            first, end = full(end, m) - 1, full(first, m) - 1
        step = -1 if backward else 1
        v = full(first, m).astype(np.int64)
        live = m & (v * step < end * step)
        outer = self.brk
        self.brk = self._none()
        try:
            while live.any():
                assign(env, var, v, live, live.all())
                self.block(body, env, live)
                v = v + step
                live = live & ~self.brk & ~self.dead & (v * step < end * step)
        finally:
            self.brk = outer
        return m & ~self.dead

    def _while(self, cond, body, env, m):
        outer = self.brk
        self.brk = self._none()
        live = m
        try:
            while True:
                live = live & truth(self.expr(cond, env, live))
                if not live.any():
                    break
                self.block(body, env, live)
                live = live & ~self.brk & ~self.dead
        finally:
            self.brk = outer
        return m & ~self.dead
