"""Bounded 2-D stencils: neighbour reads with clamped indices or explicit bounds checks, sometimes
with assertions on the neighbours read (wp.expect_eq / expect_neq / expect_near of identities,
`generator.assertions`)."""

from generator.assertions import assertions
from generator.grammar import FloatExprs, bin_, c, call, cmp, float_literal, ld, v
from generator.spec import ArgSpec, KernelSpec

NAME = "stencil"
TARGET = "cuda"

OFFSETS = [(-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (1, 1), (-1, 1), (1, -1), (0, 0)]


def _index(var, off, size):
    if off == 0:
        return v(var)
    if off < 0:
        return call("max", bin_("-", v(var), c(-off, "int32")), c(0, "int32"))
    return call("min", bin_("+", v(var), c(off, "int32")), c(size - 1, "int32"))


def build(rng, name, seed):
    h, w = rng.choice((8, 12, 16)), rng.choice((8, 12, 16))
    grid = ArgSpec("u", "array", "float32", (h, w))
    coef = [ArgSpec("alpha", "scalar", "float32", low=0.0, high=1.0)] if rng.random() < 0.5 else []
    out = ArgSpec("out", "array", "float32", (h, w), role="out")
    taps = rng.sample(OFFSETS, rng.randint(2, 5))
    body = []
    for k, (di, dj) in enumerate(taps):
        body.append(["let", f"n{k}", ld("u", _index("i", di, h), _index("j", dj, w))])
    leaves = [v(f"n{k}") for k in range(len(taps))] + [v(s.name) for s in coef]
    ex = FloatExprs(rng, leaves)
    acc = None
    for k in range(len(taps)):
        term = bin_("*", float_literal(rng, -1, 1), v(f"n{k}")) if rng.random() < 0.7 else ex.expr(1)
        acc = term if acc is None else bin_("+", acc, term)
    body.append(["let", "s", acc])
    ex.leaves.append(v("s"))
    value = ex.live_expr(rng.randint(0, 2), v("s"))
    if rng.random() < 0.5:
        interior = ["and", ["and", cmp(">", v("i"), c(0, "int32")), cmp("<", v("i"), c(h - 1, "int32"))],
                    ["and", cmp(">", v("j"), c(0, "int32")), cmp("<", v("j"), c(w - 1, "int32"))]]
        body.append(["if", interior, [["store", "out", [v("i"), v("j")], value]], [],
                     [["store", "out", [v("i"), v("j")], ld("u", v("i"), v("j"))]]])
    else:
        body.append(["store", "out", [v("i"), v("j")], value])
    body[len(taps):len(taps)] = assertions(rng, [v(f"n{k}") for k in range(len(taps))])
    return KernelSpec(NAME, seed, name, (h, w), tuple([grid] + coef + [out]), body, tid_names=("i", "j"))
