"""Conditional reductions: counts of elements meeting a predicate, masked sums and masked
extrema, folded atomically into one or a few bins."""

from generator.grammar import FloatExprs, c, cmp, ld, v
from generator.spec import ArgSpec, KernelSpec

NAME = "cond_reduce"
TARGET = "cuda"


def build(rng, name, seed):
    n = rng.choice((64, 128, 256, 512))
    x = [ArgSpec(f"x{k}", "array", "float32", (n,)) for k in range(rng.randint(1, 2))]
    thr = [ArgSpec("threshold", "scalar", "float32", low=-1.0, high=1.0)] if rng.random() < 0.5 else []
    ex = FloatExprs(rng, [ld(a.name, v("i")) for a in x] + [v(s.name) for s in thr])
    body = [["let", "val", ex.live_expr(rng.randint(1, 2), ld(x[0].name, v("i")))]]
    ex.leaves.append(v("val"))
    pred = cmp(rng.choice((">", "<", ">=", "<=")), v("val"), v("threshold") if thr else ex.lit(-1, 1))
    if rng.random() < 0.3:
        pred = [rng.choice(("and", "or")), pred, ex.cond(1)]
    groups = rng.choice((1, 1, 2, 4))
    g = c(0, "int32") if groups == 1 else ["mod", v("i"), c(groups, "int32")]
    count = ArgSpec("count", "array", "int32", (groups,), role="out")
    total = ArgSpec("total", "array", "float32", (groups,), role="out")
    then = [["atomic", "add", "count", [g], c(1, "int32")],
            ["atomic", "add", "total", [g], ex.live_expr(rng.randint(0, 1), v("val"))]]
    outs = [count, total]
    if rng.random() < 0.15:  # an in-place min/max array: the gradient check leaves such kernels alone
        op = rng.choice(("max", "min"))
        outs.append(ArgSpec(f"{op}_val", "array", "float32", (groups,), role="inout",
                            low=-16.0 if op == "max" else 16.0, high=-16.0 if op == "max" else 16.0))
        then.append(["atomic", op, f"{op}_val", [g], v("val")])
    els = []
    if rng.random() < 0.4:  # the complement is counted too
        outs.append(ArgSpec("rest", "array", "int32", (groups,), role="out"))
        els = [["atomic", "add", "rest", [g], c(1, "int32")]]
    body.append(["if", pred, then, [], els])
    return KernelSpec(NAME, seed, name, (n,), tuple(x + thr + outs), body)
