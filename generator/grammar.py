"""Random expression and statement building blocks, well-defined by construction.

Like Csmith's safe-math wrappers, every operator the grammar emits is total on the values it
can see: division only by `abs(x) + c` with c >= 1, sqrt/log only of `abs(x) + c`, exp only of
a clamped argument, no float equality, indices always in range, loops always bounded.
"""

from __future__ import annotations

import random


def c(value, dtype="float32"):
    return ["c", value, dtype]


def v(name):
    return ["v", name]


def ld(arr, *idx):
    return ["ld", arr, list(idx)]


def bin_(op, a, b):
    return ["bin", op, a, b]


def call(fn, *args):
    return ["call", fn, list(args)]


def cmp(op, a, b):
    return ["cmp", op, a, b]


def float_literal(rng: random.Random, lo=-4.0, hi=4.0) -> list:
    """A literal that is a multiple of 1/8: exact in float16/32/64."""
    return c(round(rng.uniform(lo, hi) * 8) / 8.0)


def safe_div(a, b):
    return bin_("/", a, bin_("+", call("abs", b), c(1.0)))


class FloatExprs:
    """Builds float32 expression trees over a set of leaves (loads, locals, tid casts)."""

    UNARY = ("sin", "cos", "tanh", "abs", "sqrt", "log", "exp", "neg")
    BINARY = ("+", "-", "*", "/", "min", "max", "where", "helper")

    def __init__(self, rng: random.Random, leaves: list, helpers: list | None = None):
        self.rng = rng
        self.leaves = list(leaves)
        self.helpers = helpers or []  # (name, arity) of float->float helpers callable here

    def leaf(self):
        r = self.rng.random()
        if r < 0.2:
            return float_literal(self.rng)
        return self.rng.choice(self.leaves)

    def unary(self, fn, a):
        if fn == "neg":
            return ["neg", a]
        if fn == "sqrt":
            return call("sqrt", bin_("+", call("abs", a), float_literal(self.rng, 0.125, 2.0)))
        if fn == "log":
            return call("log", bin_("+", call("abs", a), float_literal(self.rng, 1.0, 3.0)))
        if fn == "exp":
            return call("exp", call("clamp", a, c(-3.0), c(3.0)))
        return call(fn, a)

    def cond(self, depth: int):
        op = self.rng.choice(("<", "<=", ">", ">="))
        e = cmp(op, self.expr(depth), self.leaf() if self.rng.random() < 0.5 else float_literal(self.rng, -2, 2))
        if depth > 0 and self.rng.random() < 0.25:
            other = cmp(self.rng.choice(("<", ">")), self.leaf(), float_literal(self.rng, -2, 2))
            e = [self.rng.choice(("and", "or")), e, other]
        return e

    def live_expr(self, depth: int, must=None):
        """An expression that reads data (and `must`, if given): no constant outputs."""
        e = self.expr(depth)
        if must is not None and not _mentions(e, must):
            return bin_(self.rng.choice("+-*"), e, must)
        if must is None and not _mentions(e, None):
            return bin_(self.rng.choice("+-*"), e, self.rng.choice(self.leaves))
        return e

    def expr(self, depth: int):
        if depth <= 0 or self.rng.random() < 0.15:
            return self.leaf()
        r = self.rng.random()
        if r < 0.35:
            return self.unary(self.rng.choice(self.UNARY), self.expr(depth - 1))
        op = self.rng.choice(self.BINARY if self.helpers else self.BINARY[:-1])
        a, b = self.expr(depth - 1), self.expr(depth - 1)
        if a == b:  # `wp.max(x, x)` and `wp.where(c, x, x)` teach nothing: use a literal instead
            b = float_literal(self.rng)
        if op in ("+", "-", "*"):
            return bin_(op, a, b)
        if op == "/":
            return safe_div(a, b)
        if op in ("min", "max"):
            return call(op, a, b)
        if op == "where":
            return ["where", self.cond(depth - 1), a, b]
        name, arity = self.rng.choice(self.helpers)
        args = [a, b] + [self.expr(depth - 2) for _ in range(arity - 2)]
        return ["hcall", name, args[:arity]]


def _mentions(e, target) -> bool:
    """Whether expression `e` contains `target` (or, with target None, any variable or load)."""
    if not isinstance(e, list):
        return False
    if e == target or (target is None and e and e[0] in ("v", "ld")):
        return True
    return any(_mentions(x, target) for x in e if isinstance(x, list))


def helper_spec(rng: random.Random, name: str, arity: int):
    """A float32 @wp.func with `arity` parameters, a local or two and a return."""
    from generator.spec import HelperSpec

    params = tuple((f"p{k}", "float32") for k in range(arity))
    ex = FloatExprs(rng, [v(p) for p, _ in params])
    body = []
    if rng.random() < 0.6:
        body.append(["let", "t", ex.expr(2)])
        ex.leaves.append(v("t"))
    if rng.random() < 0.4:
        body.append(["if", ex.cond(1), [["ret", ex.expr(2)]], [], []])
    body.append(["ret", ex.live_expr(rng.randint(1, 3))])
    return HelperSpec(name, params, "float32", body)
