"""Closest points on a `wp.Mesh`: each thread queries a height-field mesh (its vertices' heights
the mesh argument's own seeded input) for the point closest to a point of its own with
`wp.mesh_query_point_no_sign` (face and barycentric coordinates written into locals), evaluates it
with `wp.mesh_eval_position` and, if it lies within the query's distance, writes a term of the
closest point, the gap to it and its own values, and may write the point itself or a hit flag.
The oracle finds the same point by checking every triangle."""

from generator.grammar import FloatExprs, VecExprs, bin_, c, ld, mentions, using_all, v, vanishes
from generator.spec import MESH, MESH_SPANS, ArgSpec, KernelSpec

NAME = "mesh"
TARGET = "cpu"


def build(rng, name, seed):
    n = rng.choice((8, 12, 16))
    shape = (rng.choice(MESH_SPANS) + 1, rng.choice(MESH_SPANS) + 1)
    mesh = ArgSpec("mesh", MESH, "uint64", shape, low=-0.5, high=0.5)
    q = ArgSpec("q", "array", "vec3", (n,), low=-1.0, high=1.0)
    x = ArgSpec("x", "array", "float32", (n,))
    y = ArgSpec("y", "array", "float32", (n,), role="out")
    args = [mesh, q, x, y]
    xi = ld("x", v("i"))
    point = ld("q", v("i"))
    if rng.random() < 0.3:  # the query point lifted by the thread's own value
        point = bin_("+", point, ["vec", "vec3", [c(0.0), c(0.0), bin_("*", c(rng.choice((0.125, 0.25, 0.5))), xi)]])
    elif rng.random() < 0.3:  # or scaled
        point = bin_("*", c(rng.choice((0.5, 0.75, 1.25, 1.5))), point)
    body = [["let", "p", point]]
    leaves = [xi, v("d")] if rng.random() < 0.5 else [xi]
    if rng.random() < 0.5:  # a value of the thread's own, computed before the query and read in its body
        body.append(["let", "s", FloatExprs(rng, [xi]).live_expr(rng.randint(1, 2), xi)])
        leaves.append(v("s"))
    max_dist = rng.choice((0.5, 0.75, 1.0, 4.0))  # 4.0: always within; the others miss some points
    scal = FloatExprs(rng, leaves)
    gap = bin_("-", v("cp"), v("p"))
    vecs = VecExprs(rng, {"vec3": [gap, v("cp")]}, scal)
    inner = []
    must = [xi] + [v("s")] * (v("s") in leaves)
    term = using_all(rng, vecs.scalar(rng.randint(2, 3)), must)
    # a constant (every vector here but those built of scalars lies in the plane of cp and p, so any
    # triple product is 0): its float32 value and gradient are rounding noise
    while vanishes(term, planar=True):
        term = using_all(rng, vecs.scalar(rng.randint(2, 3)), must)
    if not mentions(term, v("cp")) and not mentions(term, v("d")):  # the closest point read: its height
        term = bin_(rng.choice("+-*"), term, ["comp", v("cp"), [2]])
    if mentions(term, v("d")):  # the distance, computed once
        inner.append(["let", "d", ["call", "length", [gap]]])
    inner.append(["store", "y", [v("i")], term])
    if rng.random() < 0.4:  # the closest point itself
        args.append(ArgSpec("near", "array", "vec3", (n,), role="out"))
        inner.append(["store", "near", [v("i")], v("cp")])
    if max_dist < 4.0 and rng.random() < 0.4:  # which threads found a point
        args.append(ArgSpec("hit", "array", "int32", (n,), role="out"))
        inner.append(["store", "hit", [v("i")], c(1, "int32")])
    body.append(["closest", "cp", "mesh", v("p"), c(max_dist), inner])
    return KernelSpec(NAME, seed, name, (n,), tuple(args), body)
