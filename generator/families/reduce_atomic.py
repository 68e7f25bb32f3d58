"""Atomic reductions: each thread computes a value and folds it into a few shared bins."""

from generator.grammar import FloatExprs, c, ld, v
from generator.spec import ArgSpec, KernelSpec

NAME = "reduce_atomic"
TARGET = "cuda"


def build(rng, name, seed):
    n = rng.choice((32, 64, 128, 256))
    bins = rng.choice((1, 2, 4, 8))
    ins = [ArgSpec(f"x{k}", "array", "float32", (n,)) for k in range(rng.randint(1, 2))]
    ex = FloatExprs(rng, [ld(a.name, v("i")) for a in ins])
    ops = ["add"] + rng.sample(["min", "max"], rng.randint(0, 1))
    outs = [ArgSpec(f"{op}_out", "array", "float32", (bins,), role="out") for op in ops]
    bucket = c(0, "int32") if bins == 1 else ["mod", v("i"), c(bins, "int32")]
    body = [["let", "val", ex.live_expr(rng.randint(1, 3), ex.leaves[0])]]
    ex.leaves.append(v("val"))
    for op in ops:
        stmt = ["atomic", op, f"{op}_out", [bucket], v("val") if op != "add" else ex.live_expr(rng.randint(0, 2), v("val"))]
        if rng.random() < 0.4:  # conditional reduction
            body.append(["if", ex.cond(1), [stmt], [], []])
        else:
            body.append(stmt)
    return KernelSpec(NAME, seed, name, (n,), tuple(ins + outs), body)
