"""Arithmetic expression trees over Warp's math builtins (trig, hyperbolic, log/exp, pow, cbrt,
erf/erfc, rounding (floor, ceil, trunc, round, rint, frac), sign, copysign, step, nonzero,
smoothstep, fmod (wp.mod), floordiv, degrees/radians, atan2, asin/acos, wp.add / sub / div,
finiteness tests (wp.isfinite / isnan / isinf) guarding a value), each guarded into its safe
domain, with locals; sometimes a value quantized through Python's int(x) and float(x) (of an
input times a small literal, so the truncated value is far inside int32), a constant folded
by wp.static(<literal expression>), and assertions on the inputs (wp.expect_eq / expect_neq /
expect_near of identities, `generator.assertions`)."""

from generator.assertions import assertions
from generator.grammar import FloatExprs, bin_, float_literal, ld, v
from generator.spec import ArgSpec, KernelSpec

NAME = "arith"
TARGET = "cpu"


def build(rng, name, seed):
    n = rng.choice((16, 24, 32, 48, 64))
    n_in = rng.randint(1, 3)
    ins = [ArgSpec(f"x{k}", "array", "float32", (n,)) for k in range(n_in)]
    scal = [ArgSpec("s", "scalar", "float32", low=-1.0, high=1.0)] if rng.random() < 0.5 else []
    leaves = [ld(a.name, v("i")) for a in ins] + [v(s.name) for s in scal]
    ex = FloatExprs(rng, leaves, unary=FloatExprs.MATH)
    body = []
    if rng.random() < 0.25:  # float(int(x * k)): |x| <= 2 and k <= 8, so int() sees |value| <= 16
        scaled = bin_("*", rng.choice(leaves), float_literal(rng, 1.0, 8.0))
        body.append(["let", "q", bin_("*", ["cast", "float", ["cast", "int", scaled]], float_literal(rng, 0.125, 1.0))])
        ex.leaves.append(v("q"))
    for k in range(rng.randint(0, 3)):
        body.append(["let", f"t{k}", ex.expr(rng.randint(1, 3))])
        ex.leaves.append(v(f"t{k}"))
    n_out = rng.randint(1, 2)
    outs = [ArgSpec(f"y{k}", "array", "float32", (n,), role="out") for k in range(n_out)]
    for o in outs:
        e = ex.live_expr(rng.randint(1, 4), ex.leaves[-1] if body else None)
        if rng.random() < 0.12:
            e = bin_("*", e, static_constant(rng))
        body.append(["store", o.name, [v("i")], e])
    at = rng.randint(0, len(body) - n_out)  # before the stores, after some of the locals
    body[at:at] = assertions(rng, [ld(a.name, v("i")) for a in ins] + [v(s.name) for s in scal])
    return KernelSpec(NAME, seed, name, (n,), tuple(ins + scal + outs), body)


def static_constant(rng):
    """wp.static(a * b) or wp.static(a + b) of two float32 literals (multiples of 1/8 in [0.25, 2]):
    a constant Python folds when Warp builds the kernel, exact in float32."""
    a, b = float_literal(rng, 0.25, 2.0), float_literal(rng, 0.25, 2.0)
    return ["call", "static", [bin_(rng.choice("+*"), a, b)]]
