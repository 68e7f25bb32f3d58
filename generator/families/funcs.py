"""Generic and multi-valued @wp.func helpers and module constants, over 2-, 3- and 4-D launches
and arrays: a helper that returns two values, unpacked where it is called (`p, q = h(a, b)`); a
generic helper (a `typing.Any` parameter) that Warp compiles once per argument type it is called
with, here a float32 and, in most kernels, a vec3; and module-level `wp.constant`s, read as a
value and as a loop's trip count (a constant bound: Warp unrolls the loop)."""

from generator.grammar import FloatExprs, bin_, c, call, ld, v
from generator.spec import GENERIC, ArgSpec, HelperSpec, KernelSpec

NAME = "funcs"
TARGET = "cpu"

_DIMS = {2: ((4, 6), (4, 6, 8)), 3: ((2, 3), (3, 4), (4,)), 4: ((2,), (2,), (2, 3), (3, 4))}
_TIDS = ("i", "j", "k", "l")


def _pair(rng, name) -> HelperSpec:
    """float32 (a, b) -> two float32 values, each reading its own parameter (so both are live)."""
    ex = FloatExprs(rng, [v("a"), v("b")])
    body = []
    if rng.random() < 0.5:
        body.append(["let", "t", ex.expr(2)])
        ex.leaves.append(v("t"))
    first, second = ex.live_expr(rng.randint(1, 2), v("a")), ex.live_expr(rng.randint(1, 2), v("b"))
    body.append(["ret", ["tuple", [first, second]]])
    return HelperSpec(name, (("a", "float32"), ("b", "float32")), ("float32", "float32"), body)


def _generic_value(rng, scal: FloatExprs, depth: int):
    """An expression of the generic parameter `a` that is valid for a float32 and a vec3 alike:
    sums and differences of `a`, scaled by float32 expressions of `s`, and its negation."""
    if depth <= 0:
        return v("a")
    r = rng.random()
    if r < 0.45:
        return bin_("*", _generic_value(rng, scal, depth - 1), scal.expr(1))
    if r < 0.85:  # a + a * s'  (never a - a: the second operand is always scaled)
        scaled = bin_("*", scal.expr(1), _generic_value(rng, scal, depth - 1))
        return bin_(rng.choice("+-"), _generic_value(rng, scal, depth - 1), scaled)
    return ["neg", _generic_value(rng, scal, depth - 1)]


def _generic(rng, name) -> HelperSpec:
    """(a: Any, s: float32) -> the type of a: Warp infers the return type of each overload."""
    scal = FloatExprs(rng, [v("s")], unary=("sin", "cos", "tanh", "abs"))
    value = _generic_value(rng, scal, rng.randint(1, 2))
    if value == v("a"):
        value = bin_("*", v("a"), v("s"))
    return HelperSpec(name, (("a", GENERIC), ("s", "float32")), GENERIC, [["ret", value]])


def build(rng, name, seed):
    ndim = rng.choice((2, 3, 4))
    dim = tuple(rng.choice(options) for options in _DIMS[ndim])
    tids = _TIDS[:ndim]
    here = [v(t) for t in tids]
    x = ArgSpec("x", "array", "float32", dim)
    vecs = ArgSpec("w", "array", "vec3", (dim[-1],))
    out = ArgSpec("y", "array", "float32", dim, role="out")
    scale, reps = f"{name}_scale", f"{name}_reps"
    constants = [(scale, "float32", rng.randint(16, 128) / 64)]  # exact in float32
    pair, mix = _pair(rng, f"{name}_pair"), _generic(rng, f"{name}_mix")
    load = ld("x", *here)
    if rng.random() < 0.4:  # the neighbour along the last axis, clamped
        last = call("min", bin_("+", here[-1], c(1, "int32")), c(dim[-1] - 1, "int32"))
        second = ld("x", *here[:-1], last)
    else:
        second = v(scale)
    body = [["unpack", ["p", "q"], ["hcall", pair.name, [load, second]]],
            ["let", "r", ["hcall", mix.name, [v("p"), v("q") if rng.random() < 0.5 else v(scale)]]]]
    leaves = [v("r"), v("q")]
    if rng.random() < 0.75:  # the vec3 overload of the same generic helper
        body.append(["let", "u", ["hcall", mix.name, [ld("w", here[-1]), v("q")]]])
        leaves.append(rng.choice((["comp", v("u"), [rng.randrange(3)]], call("dot", v("u"), v("u")),
                                  call("length", v("u")))))
    if rng.random() < 0.6:  # a loop whose trip count is a module constant: Warp unrolls it
        constants.append((reps, "int32", rng.randint(2, 4)))
        step = FloatExprs(rng, [v("acc"), v("q")])
        update = call("clamp", step.live_expr(rng.randint(1, 2), v("acc")), c(-4.0), c(4.0))
        body += [["let", "acc", ["cast", "float32", v("r")]],
                 ["for", "t", c(0, "int32"), v(reps), [["set", "acc", update]]]]
        leaves.append(v("acc"))
    fin = FloatExprs(rng, leaves)
    value = fin.live_expr(rng.randint(1, 2), leaves[-1])
    for leaf in leaves[:-1]:
        if rng.random() < 0.5:
            value = bin_(rng.choice("+-"), value, leaf)
    body.append(["store", "y", here, value])
    return KernelSpec(NAME, seed, name, dim, (x, vecs, out), body, (pair, mix), tids, constants=tuple(constants))
