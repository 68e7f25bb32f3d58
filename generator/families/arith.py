"""Arithmetic expression trees over Warp builtins, with locals and optional @wp.func helpers."""

from generator.grammar import FloatExprs, helper_spec, ld, v
from generator.spec import ArgSpec, KernelSpec

NAME = "arith"
TARGET = "cpu"


def build(rng, name, seed):
    n = rng.choice((16, 24, 32, 48, 64))
    n_in = rng.randint(1, 3)
    ins = [ArgSpec(f"x{k}", "array", "float32", (n,)) for k in range(n_in)]
    scal = [ArgSpec("s", "scalar", "float32", low=-1.0, high=1.0)] if rng.random() < 0.5 else []
    helpers = []
    if rng.random() < 0.35:
        helpers.append(helper_spec(rng, f"{name}_f", rng.randint(1, 3)))
    leaves = [ld(a.name, v("i")) for a in ins] + [v(s.name) for s in scal]
    ex = FloatExprs(rng, leaves, [(h.name, len(h.params)) for h in helpers])
    body = []
    for k in range(rng.randint(0, 3)):
        body.append(["let", f"t{k}", ex.expr(rng.randint(1, 3))])
        ex.leaves.append(v(f"t{k}"))
    n_out = rng.randint(1, 2)
    outs = [ArgSpec(f"y{k}", "array", "float32", (n,), role="out") for k in range(n_out)]
    for o in outs:
        body.append(["store", o.name, [v("i")], ex.live_expr(rng.randint(1, 4), ex.leaves[-1] if body else None)])
    return KernelSpec(NAME, seed, name, (n,), tuple(ins + scal + outs), body, tuple(helpers))
