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


def float_literal(rng: random.Random, lo=-4.0, hi=4.0, dtype="float32") -> list:
    """A literal that is a multiple of 1/8: exact in float16/32/64."""
    return c(round(rng.uniform(lo, hi) * 8) / 8.0, dtype)


def safe_div(a, b, dtype="float32"):
    return bin_("/", a, bin_("+", call("abs", b), c(1.0, dtype)))


def direction(e):
    """The vector expression e without the negations, normalizations and scalings that keep its
    direction: two vectors with one direction are parallel."""
    while True:
        match e:
            case ["neg", x] | ["call", "normalize", [x]] | ["bin", "*", _, x]:
                e = x
            case _:
                return e


def vanishes(e, planar: bool = False) -> bool:
    """Whether `e` holds a part that is constant whatever the inputs, so its float32 value and
    Warp's gradient of it are rounding noise (1e-9 to 1e-6) where the float64 oracle's are about 0:
    a triple product dot(cross(a, b), c) (in either order) whose c is parallel to a or b (zero), or
    the length of a normalized vector (one). With `planar` (every vector of `e` but those built of
    scalars lies in one plane), any triple product: it is 0 there."""
    todo = [e]
    while todo:
        n = todo.pop()
        if n[:2] in (["call", "length"], ["call", "length_sq"]) and len(n[2]) == 1 and \
                n[2][0][:2] == ["call", "normalize"]:
            return True
        if n[:2] == ["call", "dot"] and len(n[2]) == 2:
            a, b = n[2]
            for u, w in ((direction(a), b), (direction(b), a)):
                if u[:2] == ["call", "cross"] and (planar or direction(w) in (direction(u[2][0]), direction(u[2][1]))):
                    return True
        todo.extend(x for x in n if isinstance(x, list) and x and isinstance(x[0], str))
    return False


class FloatExprs:
    """Builds float32 expression trees over a set of leaves (loads, locals, tid casts)."""

    UNARY = ("sin", "cos", "tanh", "abs", "sqrt", "log", "exp", "neg")
    # the wider builtin set (arith family): each guarded into its safe domain below
    MATH = UNARY + ("atan", "sinh", "cosh", "log2", "log10", "floor", "ceil", "trunc", "pow", "asin", "acos", "atan2",
                    "sign", "round", "radians", "lerp", "tan", "degrees", "erf", "erfc", "cbrt", "frac", "rint",
                    "copysign", "step", "nonzero", "smoothstep", "mod", "floordiv", "isfinite", "isnan", "isinf",
                    "add", "sub", "div", "erfinv", "erfcinv")
    BINARY = ("+", "-", "*", "/", "min", "max", "where", "helper")

    def __init__(self, rng: random.Random, leaves: list, helpers: list | None = None, dtype: str = "float32",
                 unary: tuple | None = None):
        self.rng = rng
        self.leaves = list(leaves)
        self.helpers = helpers or []  # (name, arity) of float->float helpers callable here
        self.dt = dtype
        self.unary_ops = unary or self.UNARY

    def lit(self, lo=-4.0, hi=4.0):
        return float_literal(self.rng, lo, hi, self.dt)

    def leaf(self):
        r = self.rng.random()
        if r < 0.2:
            return self.lit()
        return self.rng.choice(self.leaves)

    def unary(self, fn, a):
        dt = self.dt
        if fn == "neg":
            return ["neg", a]
        if fn == "sqrt":
            return call("sqrt", bin_("+", call("abs", a), self.lit(0.125, 2.0)))
        if fn in ("log", "log2", "log10"):
            return call(fn, bin_("+", call("abs", a), self.lit(1.0, 3.0)))
        if fn in ("exp", "sinh", "cosh"):
            return call(fn, call("clamp", a, c(-3.0, dt), c(3.0, dt)))
        if fn == "pow":  # positive base, small exponent
            return call("pow", bin_("+", call("abs", a), self.lit(0.5, 1.5)), self.lit(0.5, 2.5))
        if fn in ("asin", "acos"):
            return call(fn, call("clamp", a, c(-0.875, dt), c(0.875, dt)))
        if fn == "atan2":
            return call("atan2", a, bin_("+", call("abs", self.leaf()), self.lit(0.5, 2.0)))
        if fn == "lerp":  # from a toward another leaf, a literal fraction of the way
            return call("lerp", a, self.leaf(), self.lit(0.0, 1.0))
        return self.unary_more(fn, a)

    def unary_more(self, fn, a):
        """The rest of MATH: tan away from its poles, cbrt away from its infinite slope at 0,
        fmod (wp.mod) and floor division by a positive literal (Warp's mod has no adjoint in its
        divisor), step and nonzero (0 or 1) scaling a leaf, smoothstep between two literal edges,
        a finiteness test guarding the value it tests, add / sub / div of a second operand, erfinv /
        erfcinv of a value clamped away from their poles."""
        dt = self.dt
        if fn == "tan":  # |a| <= 1.25 < pi / 2
            return call("tan", call("clamp", a, c(-1.25, dt), c(1.25, dt)))
        if fn == "cbrt":
            return call("cbrt", bin_("+", call("abs", a), self.lit(0.5, 2.0)))
        if fn in ("mod", "floordiv"):
            return call(fn, a, self.lit(0.5, 3.0))
        if fn == "copysign":  # the sign of an input or literal (exact on both sides of the check)
            return call("copysign", a, self.leaf())
        if fn in ("step", "nonzero"):
            return bin_("*", call(fn, a), self.leaf())
        if fn == "smoothstep":
            return call("smoothstep", self.lit(-3.0, -0.5), self.lit(0.5, 3.0), a)
        if fn == "isfinite":
            return ["where", call("isfinite", a), a, self.lit()]
        if fn in ("isnan", "isinf"):
            return ["where", call(fn, a), self.lit(), a]
        if fn in ("add", "sub"):
            return call(fn, a, self.leaf())
        if fn == "div":  # float32 sometimes by wp.div_approx (a GPU's fast division, within float32's tolerance)
            name = "div_approx" if dt == "float32" and self.rng.random() < 0.3 else "div"
            return call(name, a, bin_("+", call("abs", self.leaf()), self.lit(1.0, 2.0)))
        if fn == "erfinv":  # away from its poles at -1 and 1
            return call("erfinv", call("clamp", a, c(-0.875, dt), c(0.875, dt)))
        if fn == "erfcinv":  # away from its poles at 0 and 2
            return call("erfcinv", call("clamp", a, c(0.125, dt), c(1.875, dt)))
        return call(fn, a)

    def cond(self, depth: int):
        op = self.rng.choice(("<", "<=", ">", ">="))
        lhs, rhs = self.expr(depth), self.leaf() if self.rng.random() < 0.5 else self.lit(-2, 2)
        if lhs == rhs:  # never compare a value with itself
            rhs = self.lit(-2, 2)
        e = cmp(op, lhs, rhs)
        if depth > 0 and self.rng.random() < 0.25:
            other = cmp(self.rng.choice(("<", ">")), self.leaf(), self.lit(-2, 2))
            e = [self.rng.choice(("and", "or")), e, other]
        return e

    def live_expr(self, depth: int, must=None):
        """An expression that reads data (and `must`, if given): no constant outputs."""
        e = self.expr(depth)
        if must is not None and not mentions(e, must):
            return bin_(self.rng.choice("+-*"), e, must)
        if must is None and not mentions(e, None):
            return bin_(self.rng.choice("+-*"), e, self.rng.choice(self.leaves))
        if e[0] in ("v", "ld", "cast"):  # a bare copy of an input teaches nothing
            return bin_(self.rng.choice("+-*"), e, self.lit())
        return e

    def expr(self, depth: int):
        if depth <= 0 or self.rng.random() < 0.15:
            return self.leaf()
        r = self.rng.random()
        if r < 0.35:
            return self.unary(self.rng.choice(self.unary_ops), self.expr(depth - 1))
        op = self.rng.choice(self.BINARY if self.helpers else self.BINARY[:-1])
        a, b = self.expr(depth - 1), self.expr(depth - 1)
        if a == b:  # `wp.max(x, x)` and `wp.where(c, x, x)` teach nothing: use a literal instead
            b = self.lit()
        if op in ("+", "-", "*"):
            return bin_(op, a, b)
        if op == "/":
            return safe_div(a, b, self.dt)
        if op in ("min", "max"):
            return call(op, a, b)
        if op == "where":
            return ["where", self.cond(depth - 1), a, b]
        name, arity = self.rng.choice(self.helpers)
        args = [a, b] + [self.expr(depth - 2) for _ in range(arity - 2)]
        return ["hcall", name, args[:arity]]


def using_all(rng: random.Random, e, leaves: list):
    """`e`, combined with each of `leaves` it does not read yet (so every input array or scalar
    the family drew is a live parameter)."""
    for leaf in leaves:
        if not mentions(e, leaf):
            e = bin_(rng.choice("+-*"), e, leaf)
    return e


def size(e) -> int:
    """The number of lists and atoms in an expression: a term smaller than about 24 (`x[i] + s` is
    13) is one that many kernels of a family would share."""
    return 1 + sum(size(x) for x in e) if isinstance(e, list) else 1


def mentions(e, target) -> bool:
    """Whether expression `e` contains `target` (or, with target None, any variable or load)."""
    if not isinstance(e, list):
        return False
    if e == target or (target is None and e and e[0] in ("v", "ld")):
        return True
    return any(mentions(x, target) for x in e if isinstance(x, list))


def sample_term(rng: random.Random, vecs, leaves: list, point, dims: int):
    """A scalar term of `vecs` reading all `leaves`, redrawn while constant (the length of a unit
    vector: float32 noise) or smaller than 24 (`size`); 3 times in 10 where it does not read
    `point`, combined with one of its `dims` components. The texture and volume families' term."""
    term = using_all(rng, vecs.scalar(rng.randint(2, 3)), leaves)
    while vanishes(term) or size(term) < 24:
        term = using_all(rng, vecs.scalar(rng.randint(2, 3)), leaves)
    if rng.random() < 0.3 and not mentions(term, point):
        term = bin_(rng.choice("+-*"), term, ["comp", point, [rng.randrange(dims)]])
    return term


def helper_spec(rng: random.Random, name: str, arity: int, callable_helpers: list | None = None):
    """A float32 @wp.func with `arity` parameters, a local or two and a return.

    `callable_helpers` [(name, arity)] are earlier helpers this one may call (nested calls)."""
    from generator.spec import HelperSpec

    params = tuple((f"p{k}", "float32") for k in range(arity))
    ex = FloatExprs(rng, [v(p) for p, _ in params], callable_helpers)
    body = []
    if rng.random() < 0.6:
        body.append(["let", "t", ex.expr(2)])
        ex.leaves.append(v("t"))
    if rng.random() < 0.4:
        body.append(["if", ex.cond(1), [["ret", ex.expr(2)]], [], []])
    body.append(["ret", ex.live_expr(rng.randint(1, 3))])
    return HelperSpec(name, params, "float32", body)


VEC_LEN = {"vec2": 2, "vec3": 3, "vec4": 4}


class VecExprs:
    """Typed float32 vector expressions: vecN values and the scalars derived from them.

    `vleaves` maps a vector type to expressions of that type; `scalars` is a FloatExprs over
    the scalar leaves, which also receives the scalars this builder derives (dot, length, x[k]).
    """

    def __init__(self, rng: random.Random, vleaves: dict, scalars: FloatExprs):
        self.rng = rng
        self.vleaves = {t: list(ls) for t, ls in vleaves.items()}
        self.s = scalars

    def vec(self, vt: str, depth: int):
        rng = self.rng
        n = VEC_LEN[vt]
        if depth <= 0 or rng.random() < 0.15:
            if self.vleaves.get(vt) and rng.random() < 0.8:
                return rng.choice(self.vleaves[vt])
            return ["vec", vt, [self.scalar(depth - 1) if rng.random() < 0.5 else self.s.lit(-2, 2) for _ in range(n)]]
        r = rng.random()
        if r < 0.3:
            op = rng.choice("+-")
            a, b = self.vec(vt, depth - 1), self.vec(vt, depth - 1)
            if a == b:
                b = ["vec", vt, [self.s.lit(-2, 2) for _ in range(n)]]
            return bin_(op, a, b)
        if r < 0.5:
            return bin_("*", self.scalar(depth - 1), self.vec(vt, depth - 1))
        if r < 0.6:
            return ["neg", self.vec(vt, depth - 1)]
        if r < 0.7:
            return call("normalize", self.vec(vt, depth - 1))
        if r < 0.8 and vt == "vec3":
            a, b = self.vec(vt, depth - 1), self.vec(vt, depth - 1)
            if direction(a) == direction(b):  # parallel (cross(-p, normalize(p))): zero up to rounding
                b = ["vec", vt, [self.s.lit(-2, 2) for _ in range(n)]]
            return call("cross", a, b)
        if r < 0.85:
            return call("cw_mul", self.vec(vt, depth - 1), self.vec(vt, depth - 1))
        if r < 0.9:  # componentwise division by a vector whose components are |x| + 1, |y| + 1.5, ... >= 1
            # (distinct offsets: a divisor of equal components would only scale the vector, and a
            # cross product with the undivided vector would then be zero up to rounding)
            safe = ["vec", vt, [bin_("+", call("abs", self.scalar(depth - 2)), c(1.0 + 0.5 * k)) for k in range(n)]]
            return call("cw_div", self.vec(vt, depth - 1), safe)
        if r < 0.93 and vt == "vec3":  # one half of a spatial vector (6 components) of two vec3s
            a, b = self.vec(vt, depth - 1), self.vec(vt, depth - 1)
            return call(rng.choice(("spatial_top", "spatial_bottom")), call("spatial_vector", a, b))
        comps = [self.scalar(depth - 1) for _ in range(n)]
        if rng.random() < 0.3:  # wp.vector(x, y, z): the generic constructor (float32 components)
            return call("vector", *comps)
        if vt == "vec4" and rng.random() < 0.3:
            return ["vec", "vec4f", comps]
        return ["vec", vt, comps]

    def scalar(self, depth: int):
        rng = self.rng
        if depth <= 0 or rng.random() < 0.3:
            return self.s.expr(max(depth, 0))
        vt = rng.choice([t for t in self.vleaves if self.vleaves[t]] or ["vec3"])
        r = rng.random()
        if r < 0.35:
            return call("dot", self.vec(vt, depth - 1), self.vec(vt, depth - 1))
        if r < 0.55:
            return call("length", self.vec(vt, depth - 1))
        if r < 0.65:
            return call("length_sq", self.vec(vt, depth - 1))
        if r < 0.85:
            e = self.vec(vt, depth - 1)
            return ["comp", e, [rng.randrange(VEC_LEN[vt])]]
        if r < 0.88 and vt == "vec3":  # the dot product of two spatial vectors: dot(a, c) + dot(b, d)
            return call("spatial_dot", call("spatial_vector", self.vec(vt, depth - 1), self.vec(vt, depth - 1)),
                        call("spatial_vector", self.vec(vt, depth - 1), self.vec(vt, depth - 1)))
        a, b = self.scalar(depth - 1), self.s.expr(depth - 1)
        if a == b:  # x - x teaches nothing
            b = self.s.lit()
        return bin_(rng.choice("+-*"), a, b)


class IntExprs:
    """Integer expressions with a proven bound: |value| <= bound < limit (2**30 unless given: no
    overflow possible; a small type's own range for int8 / uint8 / int16 / uint16, whose operands
    C promotes to int, so no intermediate overflows either).

    Leaves are (expr, bound) pairs of non-negative values when `unsigned` (uint32: no
    subtraction, no negation)."""

    LIMIT = 2**30

    def __init__(self, rng: random.Random, leaves: list, dtype: str = "int32", unsigned: bool = False,
                 limit: int | None = None):
        self.rng, self.leaves, self.dt, self.unsigned = rng, list(leaves), dtype, unsigned
        self.limit = limit or self.LIMIT

    def lit(self, lo=1, hi=9):
        k = self.rng.randint(lo, hi)
        return (c(k, self.dt), k)

    def expr(self, depth: int):
        rng = self.rng
        if depth <= 0 or rng.random() < 0.2:
            return rng.choice(self.leaves) if rng.random() < 0.8 else self.lit()
        a, b = self.expr(depth - 1), self.expr(depth - 1)
        ops = ["+", "*", "min", "max", "mod", "where"] + ([] if self.unsigned else ["-", "neg"])
        op = rng.choice(ops)
        if op == "*" and a[1] * b[1] >= self.limit:
            op = "+"
        if op in ("+", "-"):
            if a[1] + b[1] >= self.limit:
                return a
            return (bin_(op, a[0], b[0]), a[1] + b[1])
        if op == "*":
            return (bin_("*", a[0], b[0]), a[1] * b[1])
        if op in ("min", "max"):
            return (call(op, a[0], b[0]), max(a[1], b[1]))
        if op == "neg":
            return (["neg", a[0]], a[1])
        if op == "mod":  # a % k on a value made non-negative first: C and Python agree
            k = rng.randint(2, 9)
            base = a[0] if self.unsigned else call("abs", a[0])
            return (["mod", base, c(k, self.dt)], k - 1)
        if a[0] == b[0]:  # never compare a value with itself
            b = self.lit()
        cond = cmp(rng.choice(("<", "<=", ">", ">=", "==", "!=")), a[0], b[0])
        x, y = self.expr(depth - 1), self.expr(depth - 1)
        return (["where", cond, x[0], y[0]], max(x[1], y[1]))


def has_float_literal(e) -> bool:
    if not isinstance(e, list) or not e:
        return False
    if e[0] == "c" and isinstance(e[1], float):
        return True
    return any(has_float_literal(x) for x in e if isinstance(x, list))


def with_literal(rng: random.Random, e, lo=0.25, hi=2.0):
    """`e`, scaled by a random literal unless it already holds one: a kernel is never just its
    skeleton with no constant of its own (which makes exact duplicates likely)."""
    return e if has_float_literal(e) else bin_("*", e, float_literal(rng, lo, hi))
