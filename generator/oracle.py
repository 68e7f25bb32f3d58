"""The NumPy oracle: evaluates a KernelSpec thread by thread, in float64 for float kernels.

It is an independent interpreter of the spec (it never looks at the rendered source or at
Warp), so agreement between it and Warp's compiled kernel is evidence that both are right.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from generator.spec import FLOAT_DTYPES, KernelSpec


def _clamp(x, lo, hi):
    return min(max(x, lo), hi)


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


class Interpreter:
    def __init__(self, spec: KernelSpec, arrays: dict[str, np.ndarray], scalars: dict):
        self.spec = spec
        self.arrays = arrays
        self.scalars = scalars
        self.helpers = {h.name: h for h in spec.helpers}

    def expr(self, e, env):
        tag = e[0]
        if tag == "c":
            return _as(e[2], e[1])
        if tag == "v":
            return env[e[1]]
        if tag == "ld":
            idx = tuple(self.expr(i, env) for i in e[2])
            v = self.arrays[e[1]][idx]
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
            return self.expr(e[2], env) if self.expr(e[1], env) else self.expr(e[3], env)
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
                v = self.expr(s[4], env)
                if s[1] == "add":
                    arr[idx] += v
                elif s[1] == "min":
                    arr[idx] = min(arr[idx], v)
                elif s[1] == "max":
                    arr[idx] = max(arr[idx], v)
                else:
                    raise ValueError(s[1])
            elif tag == "if":
                if self.expr(s[1], env):
                    self.block(s[2], env)
                else:
                    for cond, body in s[3]:
                        if self.expr(cond, env):
                            self.block(body, env)
                            break
                    else:
                        self.block(s[4], env)
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
            else:
                raise ValueError(f"unknown statement tag {tag!r}")


def run_oracle(spec: KernelSpec, inputs: dict) -> dict[str, np.ndarray]:
    """Evaluate the spec on `inputs` (name -> ndarray or scalar); return every written array.

    Float arrays are evaluated in float64, integer arrays in int64 (the grammar keeps integer
    values far from overflow, so int64 equals the kernel's int32/uint32 result).
    """
    arrays: dict[str, np.ndarray] = {}
    scalars: dict = {}
    for a in spec.args:
        v = inputs[a.name]
        if a.kind == "array":
            wide = np.float64 if a.dtype in FLOAT_DTYPES else np.int64
            arrays[a.name] = np.array(v, dtype=wide, copy=True)
        else:
            scalars[a.name] = _as(a.dtype, v)
    interp = Interpreter(spec, arrays, scalars)
    for tid in itertools.product(*(range(d) for d in spec.dim)):
        env = dict(scalars)
        env.update(zip(spec.tid_names, tid))
        interp.block(spec.body, env)
    return {a.name: arrays[a.name] for a in spec.args if a.kind == "array" and a.role in ("out", "inout")}
