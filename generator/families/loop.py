"""Loops: bounded for/while loops with data-dependent break and continue, and accumulators; most
with a literal trip count Warp unrolls and differentiates, the rest dynamic."""

from generator.grammar import FloatExprs, bin_, c, cmp, float_literal, ld, v
from generator.spec import ArgSpec, KernelSpec

NAME = "loop"
TARGET = "cpu"
# the share of kernels whose loop Warp can differentiate (an unrolled literal trip count); the
# rest draw the dynamic forms (data-dependent bounds, while, break) that it cannot
STATIC_SHARE = 0.85


def build(rng, name, seed):
    n = rng.choice((8, 16, 32))
    m = rng.choice((4, 6, 8, 12))  # length of the row each thread walks
    x = ArgSpec("x", "array", "float32", (n, m))
    extra = [ArgSpec("w", "array", "float32", (m,))] if rng.random() < 0.5 else []
    count = ArgSpec("count", "array", "int32", (n,), low=0, high=m) if rng.random() < 0.5 else None
    out = ArgSpec("y", "array", "float32", (n,), role="out")
    args = [x] + extra + ([count] if count else []) + [out]
    bound = ld("count", v("i")) if count else c(rng.randint(1, m), "int32")

    leaves = [ld("x", v("i"), v("k"))] + ([ld("w", v("k"))] if extra else []) + [v("acc")]
    ex = FloatExprs(rng, leaves)
    # a loop-carried local must be declared dynamic in Warp: wp.float32(...), not a bare literal
    body = [["let", "acc", ["cast", "float32", float_literal(rng, -1, 1)]]]
    loop_body = []
    if rng.random() < 0.5:
        loop_body.append(["if", ex.cond(1), [["continue"]], [], []])
    loop_body.append(["aug", "acc", rng.choice("+-"), ex.live_expr(rng.randint(1, 2), leaves[0])])
    if rng.random() < 0.3:
        loop_body.append(["set", "acc", ["call", "clamp", [v("acc"), c(-8.0), c(8.0)]]])
    if rng.random() < STATIC_SHARE:
        body.append(_static_loop(rng, m, count, loop_body))
    else:
        body += _dynamic_loop(rng, ex, bound, loop_body)
    ex2 = FloatExprs(rng, [v("acc")] + ([ld("x", v("i"), c(0, "int32"))]))
    body.append(["store", "y", [v("i")], ex2.live_expr(rng.randint(0, 2), v("acc"))])
    return KernelSpec(NAME, seed, name, (n,), tuple(args), body)


def _static_loop(rng, m, count, loop_body):
    """A loop Warp unrolls and so differentiates: a literal trip count (at most the row length,
    within Warp's default max_unroll), no break; a per-thread count becomes a guard that skips the
    rest of the row."""
    if count:
        loop_body = [["if", cmp(">=", v("k"), ld("count", v("i"))), [["continue"]], [], []], *loop_body]
        return ["for", "k", c(0, "int32"), c(m, "int32"), loop_body]
    return ["for", "k", c(0, "int32"), c(rng.randint(2, m), "int32"), loop_body]


def _dynamic_loop(rng, ex, bound, loop_body):
    """A dynamic loop (a data-dependent bound, a while, a break): Warp declares a local mutated in
    it non-differentiable, so these kernels carry no gradient verdict, by design."""
    if rng.random() < 0.5:
        loop_body = loop_body + [["if", ex.cond(1), [["break"]], [], []]]
    if rng.random() < 0.5:  # k up from 0, or down to 0 (reversed(range(0, bound)), which Warp never unrolls)
        return [["for", "k", c(0, "int32"), bound, loop_body, *(["reversed"] if rng.random() < 0.4 else [])]]
    # while form: the counter advances before any continue, so the loop always terminates
    cond = cmp("<", bin_("+", v("k"), c(1, "int32")), bound)
    return [["let", "k", ["cast", "int32", c(-1, "int32")]], ["while", cond, [["aug", "k", "+", c(1, "int32")], *loop_body]]]
