"""Complex control flow: nested branches inside bounded while/for loops with several exits,
early returns from the kernel, and per-thread iteration counts."""

from generator.grammar import FloatExprs, c, cmp, float_literal, ld, v
from generator.spec import ArgSpec, KernelSpec

NAME = "control_flow"
TARGET = "cuda"
# the share of kernels whose loop Warp unrolls and differentiates; the rest draw the while loop
# with break and continue, which it cannot
STATIC_SHARE = 0.8


def build(rng, name, seed):
    n = rng.choice((32, 64, 128))
    x = ArgSpec("x", "array", "float32", (n,))
    extra = [ArgSpec("z", "array", "float32", (n,))] if rng.random() < 0.5 else []
    out = ArgSpec("y", "array", "float32", (n,), role="out")
    steps = ArgSpec("steps", "array", "int32", (n,), role="out") if rng.random() < 0.5 else None
    args = [x] + extra + [out] + ([steps] if steps else [])
    leaves = [ld("x", v("i"))] + [ld("z", v("i")) for _ in extra]
    ex = FloatExprs(rng, leaves + [v("r")])
    body = []
    if rng.random() < 0.3:  # early exit: some threads write a fallback and return
        ex0 = FloatExprs(rng, leaves)
        early = [["store", "y", [v("i")], ex0.live_expr(1, leaves[0]) if rng.random() < 0.5 else leaves[0]]]
        if steps:
            early.append(["store", "steps", [v("i")], c(-1, "int32")])
        body.append(["if", cmp("<", leaves[0], float_literal(rng, -1.5, -0.5)), early + [["ret_kernel"]], [], []])
    body.append(["let", "r", ["cast", "float32", leaves[0]]])
    body.append(["let", "n", ["cast", "int32", c(0, "int32")]])
    limit = rng.randint(3, 10)
    inner = []
    arms = [["set", "r", ex.live_expr(rng.randint(1, 2), v("r"))]]
    elifs = [[ex.cond(1), [["set", "r", ex.expr(2)]]] for _ in range(rng.randint(0, 2))]
    inner.append(["if", ex.cond(1), arms, elifs, [["aug", "r", rng.choice("+-*"), float_literal(rng, 0.5, 1.5)]]])
    inner.append(["set", "r", ["call", "clamp", [v("r"), c(-16.0), c(16.0)]]])
    exit_early = rng.random() < 0.5
    skip_odd = rng.random() < 0.3
    if rng.random() < STATIC_SHARE:
        body += _unrolled(ex, inner, limit, exit_early, skip_odd)
    else:
        body.append(_while(ex, inner, limit, exit_early, skip_odd))
    body.append(["store", "y", [v("i")], v("r")])
    if steps:
        body.append(["store", "steps", [v("i")], v("n")])
    return KernelSpec(NAME, seed, name, (n,), tuple(args), body)


def _while(ex, inner, limit, exit_early, skip_odd):
    """A while loop counting n up to the limit, with a break and a continue: dynamic, so Warp
    declares r, mutated in it, non-differentiable."""
    if exit_early:
        inner = inner + [["if", ex.cond(1), [["break"]], [], []]]
    if skip_odd:
        inner = [["if", ["cmp", "==", ["mod", v("n"), c(2, "int32")], c(1, "int32")],
                  [["aug", "n", "+", c(1, "int32")], ["continue"]], [], []], *inner]
    return ["while", cmp("<", v("n"), c(limit, "int32")), [["aug", "n", "+", c(1, "int32")], *inner]]


def _unrolled(ex, inner, limit, exit_early, skip_odd):
    """The same steps in a loop Warp unrolls (a literal trip count, no break), so it differentiates
    r: the early exit sets a `done` flag that skips the remaining steps, and n counts the steps
    taken."""
    head = [["aug", "n", "+", c(1, "int32")]]
    if skip_odd:
        head.append(["if", ["cmp", "==", ["mod", v("t"), c(2, "int32")], c(1, "int32")], [["continue"]], [], []])
    if exit_early:
        head.insert(0, ["if", ["cmp", "==", v("done"), c(1, "int32")], [["continue"]], [], []])
        inner = inner + [["if", ex.cond(1), [["set", "done", c(1, "int32")]], [], []]]
    loop = ["for", "t", c(0, "int32"), c(limit, "int32"), [*head, *inner]]
    return ([["let", "done", ["cast", "int32", c(0, "int32")]]] if exit_early else []) + [loop]
