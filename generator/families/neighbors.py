"""Neighbour sums over a `wp.HashGrid`: each thread queries the grid around its own point and, for
every point within the radius (the grid's candidates filtered by squared distance), adds a
weighted term to its output with `wp.atomic_add` (the form Warp differentiates inside the query's
dynamic loop), and may skip itself, read a value it computed before the loop, or count the
neighbours. The oracle finds the same neighbours by checking every pair."""

from generator.grammar import FloatExprs, VecExprs, bin_, c, call, cmp, ld, using_all, v
from generator.spec import HASH_GRID, ArgSpec, KernelSpec

NAME = "neighbors"
TARGET = "cpu"


def build(rng, name, seed):
    n = rng.choice((16, 24, 32, 48))
    dim = rng.choice((4, 8))
    radius = rng.choice((0.25, 0.375, 0.5, 0.625))  # multiples of 1/8: its square is exact in float32
    pts = ArgSpec("pts", "array", "vec3", (n,), low=-1.0, high=1.0)
    grid = ArgSpec("grid", HASH_GRID, "uint64", (dim, dim, dim), points="pts", cell=rng.choice((0.25, 0.5)))
    x = ArgSpec("x", "array", "float32", (n,))
    y = ArgSpec("y", "array", "float32", (n,), role="out")
    args = [pts, grid, x, y]
    body, inner = [], []
    xj = ld("x", v("j"))
    leaves, must = [xj, ld("x", v("i")), v("d2")], [xj]
    if rng.random() < 0.5:  # a value of the thread's own, computed before the loop and only read in it
        own = FloatExprs(rng, [ld("x", v("i"))])
        body.append(["let", "s", own.live_expr(rng.randint(1, 2), ld("x", v("i")))])
        leaves.append(v("s"))
        must.append(v("s"))
    scal = FloatExprs(rng, leaves)
    gap = bin_("-", ld("pts", v("j")), ld("pts", v("i")))
    vecs = VecExprs(rng, {"vec3": [gap, ld("pts", v("j"))]}, scal)
    term = using_all(rng, vecs.scalar(rng.randint(1, 3)), must)
    weight = rng.choice((call("exp", ["neg", v("d2")]), bin_("-", c(radius * radius), v("d2")), None))
    term = term if weight is None else bin_("*", weight, term)
    inner.append(["atomic", "add", "y", [v("i")], term])
    if rng.random() < 0.4:  # the neighbours counted too
        args.append(ArgSpec("count", "array", "int32", (n,), role="out"))
        inner.append(["atomic", "add", "count", [v("i")], c(1, "int32")])
    if rng.random() < 0.4:  # the thread's own point skipped
        inner = [["if", cmp("!=", v("j"), v("i")), inner, [], []]]
    body.append(["neighbors", "j", "grid", "pts", v("i"), c(radius), "d2", inner])
    return KernelSpec(NAME, seed, name, (n,), tuple(args), body)
