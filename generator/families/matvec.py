"""Matrix-vector products with loops: y = alpha * op(A) x' + beta * y, where x' is a mapped
input and op is A or its transpose, one output row per thread."""

from generator.grammar import FloatExprs, bin_, c, float_literal, ld, v, with_literal
from generator.spec import ArgSpec, KernelSpec

NAME = "matvec"
TARGET = "cuda"


def build(rng, name, seed):
    rows, cols = rng.choice((8, 16, 32, 64)), rng.choice((4, 8, 12, 16))
    trans = rng.random() < 0.3
    a = ArgSpec("A", "array", "float32", (cols, rows) if trans else (rows, cols))
    x = ArgSpec("x", "array", "float32", (cols,))
    args = [a, x]
    aij = ld("A", v("k"), v("i")) if trans else ld("A", v("i"), v("k"))
    xk = with_literal(rng, FloatExprs(rng, [ld("x", v("k"))]).live_expr(rng.randint(0, 2), ld("x", v("k"))))
    body = [["let", "acc", ["cast", "float32", float_literal(rng, -0.5, 0.5)]]]
    term = bin_("*", aij, xk)
    loop = [["aug", "acc", "+", term]]
    if rng.random() < 0.3:  # banded / masked product
        loop.insert(0, ["if", ["cmp", ">", ld("x", v("k")), float_literal(rng, -1.5, 1.5)], [], [], [["continue"]]])
    body.append(["for", "k", c(0, "int32"), c(cols, "int32"), loop])
    scal = []
    if rng.random() < 0.5:
        scal.append(ArgSpec("alpha", "scalar", "float32", low=0.5, high=2.0))
        body.append(["set", "acc", bin_("*", v("alpha"), v("acc"))])
    form = rng.random()
    if form < 0.05:  # y is read and written in place: beta * y + A x (no gradient check: in-place)
        y = ArgSpec("y", "array", "float32", (rows,), role="inout")
        beta = float_literal(rng, -1, 1)
        body.append(["store", "y", [v("i")], bin_("+", bin_("*", beta, ld("y", v("i"))), v("acc"))])
    elif form < 0.5:  # the same update out of place: y = beta * y0 + A x
        scal.append(ArgSpec("y0", "array", "float32", (rows,)))
        y = ArgSpec("y", "array", "float32", (rows,), role="out")
        beta = float_literal(rng, -1, 1)
        body.append(["store", "y", [v("i")], bin_("+", bin_("*", beta, ld("y0", v("i"))), v("acc"))])
    else:
        y = ArgSpec("y", "array", "float32", (rows,), role="out")
        fin = FloatExprs(rng, [v("acc")])
        body.append(["store", "y", [v("i")], fin.live_expr(rng.randint(0, 2), v("acc"))])
    return KernelSpec(NAME, seed, name, (rows,), tuple(args + scal + [y]), body)
