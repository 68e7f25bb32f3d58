"""Nested loops over 2-D and 3-D launches: small matrix products, windowed sums and
triangular loops, with loop-carried accumulators and clamped neighbour indices."""

from generator.grammar import FloatExprs, bin_, c, call, cmp, float_literal, ld, v
from generator.spec import ArgSpec, KernelSpec

NAME = "nested_loops"
TARGET = "cpu"
# loops with literal bounds and no break are unrolled, and so differentiated, by Warp
BREAK_SHARE = 0.12


def build(rng, name, seed):
    if rng.random() < 0.5:  # 2-D: out[i, j] = f(sum_p sum_q ...)
        n, m, kk = rng.choice((4, 6, 8)), rng.choice((4, 6, 8)), rng.choice((3, 4, 5, 6))
        a = ArgSpec("a", "array", "float32", (n, kk))
        b = ArgSpec("b", "array", "float32", (kk, m))
        out = ArgSpec("out", "array", "float32", (n, m), role="out")
        args, tids, dim = [a, b, out], ("i", "j"), (n, m)
        leaves = [ld("a", v("i"), v("p")), ld("b", v("p"), v("j"))]
        inner_leaves = leaves + [ld("a", v("i"), v("q")), ld("b", v("q"), v("j"))]
        outer, inner = kk, kk
    else:  # 3-D: each cell sums a window of its row in a third dimension
        d0, d1, d2 = rng.choice((2, 3, 4)), rng.choice((3, 4)), rng.choice((4, 6, 8))
        x = ArgSpec("x", "array", "float32", (d0, d1, d2))
        out = ArgSpec("out", "array", "float32", (d0, d1, d2), role="out")
        args, tids, dim = [x, out], ("i", "j", "k"), (d0, d1, d2)
        clamp_p = call("min", bin_("+", v("k"), v("p")), c(d2 - 1, "int32"))
        clamp_q = call("min", bin_("+", v("j"), v("q")), c(d1 - 1, "int32"))
        leaves = [ld("x", v("i"), v("j"), clamp_p)]
        inner_leaves = leaves + [ld("x", v("i"), clamp_q, clamp_p)]
        outer, inner = rng.randint(2, 4), rng.randint(2, 3)
    ex = FloatExprs(rng, leaves + [v("acc")])
    body = [["let", "acc", ["cast", "float32", float_literal(rng, -1, 1)]]]
    if rng.random() < 0.6:
        inx = FloatExprs(rng, inner_leaves + [v("acc")])
        inner_body = [["aug", "acc", "+", inx.live_expr(rng.randint(1, 2), inner_leaves[-1])]]
        if rng.random() < 0.3:
            inner_body.insert(0, ["if", inx.cond(1), [["continue"]], [], []])
        if rng.random() < 0.3:  # triangular: q from p on, as a guard so the loop keeps its literal bounds
            inner_body.insert(0, ["if", cmp("<", v("q"), v("p")), [["continue"]], [], []])
        loop = [["for", "q", c(0, "int32"), c(inner, "int32"), inner_body]]
        if rng.random() < 0.5:
            loop.append(["aug", "acc", rng.choice("+-*"), call("clamp", ex.expr(1), c(-2.0), c(2.0))])
    else:
        loop = [["aug", "acc", rng.choice("+-"), ex.live_expr(rng.randint(1, 3), leaves[0])]]
    if rng.random() < BREAK_SHARE:  # a break makes the loop dynamic: Warp cannot differentiate it
        loop.append(["if", ex.cond(1), [["break"]], [], []])
    body.append(["for", "p", c(0, "int32"), c(outer, "int32"), loop])
    fin = FloatExprs(rng, [v("acc")])
    body.append(["store", "out", [v(t) for t in tids], fin.live_expr(rng.randint(0, 2), v("acc"))])
    return KernelSpec(NAME, seed, name, dim, tuple(args), body, tid_names=tids)
