"""Vector math over vec2/vec3/vec4 arrays: constructors (wp.vec3, or by its float32 name
wp.vec3f; vec2f likewise), dot, cross, length, normalize, component-wise products and component
access, Python's len(v) of a vector, the distance between two segments (wp.closest_point_edge_edge),
storing vectors and scalars."""

from generator.grammar import VEC_LEN, FloatExprs, VecExprs, c, ld, v
from generator.spec import ArgSpec, KernelSpec, derive_seed

NAME = "vecmath"
TARGET = "cpu"


def build(rng, name, seed):
    n = rng.choice((8, 16, 32))
    vt = rng.choice(("vec2", "vec3", "vec3", "vec4"))
    vin = [ArgSpec(f"a{k}", "array", vt, (n,)) for k in range(rng.randint(1, 2))]
    sin = [ArgSpec("w", "array", "float32", (n,))] if rng.random() < 0.5 else []
    scal = FloatExprs(rng, [ld(a.name, v("i")) for a in sin] or [["comp", ld(vin[0].name, v("i")), [0]]])
    ve = VecExprs(rng, {vt: [ld(a.name, v("i")) for a in vin]}, scal)
    body = [["let", "p", ve.vec(vt, rng.randint(1, 2))]]
    ve.vleaves[vt].append(v("p"))
    if rng.random() < 0.6:
        body.append(["let", "d", ve.scalar(rng.randint(1, 2))])
        scal.leaves.append(v("d"))
    # a coin of its own (the seed's, not the stream's): kernels without the distance draw as before
    gap = vt == "vec3" and derive_seed(NAME, seed, "segments") % 100 < 15
    if gap:  # the distance between two segments of vectors so far (wp.closest_point_edge_edge's third component)
        ends = [ve.vec(vt, rng.randint(0, 1)) for _ in range(4)]
        body.append(["let", "g", ["comp", ["call", "closest_point_edge_edge", ends + [c(2.0 ** -13)]], [2]]])
    args = vin + sin
    outs = []
    if rng.random() < 0.8:
        outs.append(ArgSpec("out", "array", vt, (n,), role="out"))
        e = ve.vec(vt, rng.randint(1, 3))
        if e == v("p") or rng.random() < 0.5:
            e = ["bin", rng.choice("+-"), e, v("p")] if e != v("p") else e
        body.append(["store", "out", [v("i")], e])
    if not outs or gap or rng.random() < 0.5:
        outs.append(ArgSpec("s", "array", "float32", (n,), role="out"))
        e = ["bin", "+", ve.scalar(rng.randint(1, 3)), ["comp", v("p"), [rng.randrange(VEC_LEN[vt])]]]
        if gap:
            e = ["bin", "+", e, v("g")]
        if rng.random() < 0.2:  # divided by the vector's length as Python counts it: len(p), a constant
            e = ["bin", "/", e, ["cast", "float", ["call", "len", [v("p")]]]]
        body.append(["store", "s", [v("i")], e])
    if vt in ("vec2", "vec3") and rng.random() < 0.3:  # the constructors by their float32 names
        body = _renamed(body, vt, vt + "f")
    return KernelSpec(NAME, seed, name, (n,), tuple(args + outs), body)


def _renamed(tree, old: str, new: str):
    """`tree` with every ["vec", old, ...] constructor written ["vec", new, ...] (an alias)."""
    if not isinstance(tree, list):
        return tree
    if len(tree) == 3 and tree[0] == "vec" and tree[1] == old:
        return ["vec", new, _renamed(tree[2], old, new)]
    return [_renamed(x, old, new) for x in tree]
