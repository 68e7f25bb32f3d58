"""Boxes met by a query of a `wp.Bvh`: the BVH holds one box per point of an input array (a cube
of a drawn half-width around it); each thread asks it, with `wp.bvh_query_aabb` (a box around a
point of its own) or `wp.bvh_query_sphere` (a ball around it), for every box the query meets
(`wp.bvh_query_next`), and for each adds a weighted term of the box's centre, the gap to it and
their values to its output with `wp.atomic_add` (the form Warp differentiates inside the query's
dynamic loop); it may count the boxes, or skip its own. The oracle tests every box."""

from generator.grammar import FloatExprs, VecExprs, bin_, c, call, cmp, ld, mentions, using_all, v, vanishes
from generator.spec import BVH, ArgSpec, KernelSpec

NAME = "bvh"
TARGET = "cpu"

_EXTENTS = (0.125, 0.25, 0.375, 0.5)  # an aabb query's half-extents, per axis: multiples of 1/8, exact
_RADII = (0.25, 0.375, 0.5, 0.75)  # a sphere query's radius


def build(rng, name, seed):
    n = rng.choice((12, 16, 24, 32))
    ctr = ArgSpec("ctr", "array", "vec3", (n,), low=-1.0, high=1.0)
    bvh = ArgSpec("bvh", BVH, "uint64", (n,), points="ctr", cell=rng.choice((0.125, 0.25, 0.375)))
    x = ArgSpec("x", "array", "float32", (n,))
    y = ArgSpec("y", "array", "float32", (n,), role="out")
    own_box = rng.random() < 0.3  # the query around the thread's own box: it always meets it
    args = [ctr, bvh, x, y] if own_box else [ctr, bvh, ArgSpec("q", "array", "vec3", (n,), low=-1.0, high=1.0), x, y]
    xi, xj = ld("x", v("i")), ld("x", v("j"))
    point = ld("ctr" if own_box else "q", v("i"))
    if rng.random() < 0.3:  # lifted by the thread's own value (a multiple of 1/2048: still exact)
        point = bin_("+", point, ["vec", "vec3", [c(0.0), c(0.0), bin_("*", c(0.125), xi)]])
    body = [["let", "p", point]]
    leaves, must = [xj, xi], [xj]
    if rng.random() < 0.5:  # a value of the thread's own, computed before the query and only read in it
        body.append(["let", "s", FloatExprs(rng, [xi]).live_expr(rng.randint(1, 2), xi)])
        leaves.append(v("s"))
        must.append(v("s"))
    scal = FloatExprs(rng, leaves)
    gap = bin_("-", ld("ctr", v("j")), v("p"))
    vecs = VecExprs(rng, {"vec3": [gap, ld("ctr", v("j"))]}, scal)
    term = using_all(rng, vecs.scalar(rng.randint(1, 3)), must)
    while vanishes(term):  # a constant (the length of a normalized vector): its float32 value and gradient are noise
        term = using_all(rng, vecs.scalar(rng.randint(1, 3)), must)
    if not mentions(term, ld("ctr", v("j"))):  # the box's centre read (the array the BVH is built from: a live input)
        term = bin_(rng.choice("+-*"), term, ["comp", rng.choice((gap, ld("ctr", v("j")))), [rng.randrange(3)]])
    weights = [call("exp", ["neg", call("length_sq", gap)]), None, None]
    weights += [call("length", gap)] * (not own_box)  # (its kink at a zero gap: the own box's)
    weight = rng.choice(weights)
    inner = [["atomic", "add", "y", [v("i")], term if weight is None else bin_("*", weight, term)]]
    if rng.random() < 0.4:  # the boxes counted too
        args.append(ArgSpec("count", "array", "int32", (n,), role="out"))
        inner.append(["atomic", "add", "count", [v("i")], c(1, "int32")])
    if own_box and rng.random() < 0.5:  # the thread's own box skipped
        inner = [["if", cmp("!=", v("j"), v("i")), inner, [], []]]
    if rng.random() < 0.5:
        extent = ["vec", "vec3", [c(rng.choice(_EXTENTS)) for _ in range(3)]]
        query = ["aabb", bin_("-", v("p"), extent), bin_("+", v("p"), extent)]
    else:
        query = ["sphere", v("p"), c(rng.choice(_RADII))]
    body.append(["boxes", "j", "bvh", *query, inner])
    return KernelSpec(NAME, seed, name, (n,), tuple(args), body)
