"""Arithmetic expression trees over Warp's math builtins (trig, hyperbolic, log/exp, pow,
rounding, atan2, asin/acos), each guarded into its safe domain, with locals."""

from generator.grammar import FloatExprs, ld, v
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
    for k in range(rng.randint(0, 3)):
        body.append(["let", f"t{k}", ex.expr(rng.randint(1, 3))])
        ex.leaves.append(v(f"t{k}"))
    n_out = rng.randint(1, 2)
    outs = [ArgSpec(f"y{k}", "array", "float32", (n,), role="out") for k in range(n_out)]
    for o in outs:
        body.append(["store", o.name, [v("i")], ex.live_expr(rng.randint(1, 4), ex.leaves[-1] if body else None)])
    return KernelSpec(NAME, seed, name, (n,), tuple(ins + scal + outs), body)
