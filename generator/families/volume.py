"""Samples of a `wp.Volume`: each thread maps a point of its own into the volume's index space
(`wp.volume_world_to_index`), samples the voxels there (`wp.volume_sample_f`, trilinear or
closest), may read one voxel by its integer coordinates (`wp.volume_lookup_f`) and map a point back
to world space (`wp.volume_index_to_world`), and writes terms of them and its own values. The
volume's voxels are its own seeded input; the oracle samples the same dense array."""

from generator.grammar import FloatExprs, VecExprs, bin_, c, ld, sample_term, v
from generator.spec import VOLUME, ArgSpec, KernelSpec

NAME = "volume"
TARGET = "cpu"


def build(rng, name, seed):
    n = rng.choice((8, 12, 16))
    cell = rng.choice((0.25, 0.5))
    shape = tuple(rng.choice((3, 4, 5, 8)) for _ in range(3))
    vol = ArgSpec("vol", VOLUME, "uint64", shape, low=-1.0, high=1.0, cell=cell)
    q = ArgSpec("q", "array", "vec3", (n,), low=-1.25, high=1.25)
    x = ArgSpec("x", "array", "float32", (n,))
    y = ArgSpec("y", "array", "float32", (n,), role="out")
    args = [vol, q, x, y]
    xi = ld("x", v("i"))
    point = ld("q", v("i"))
    if rng.random() < 0.3:  # the point moved by the thread's own value
        point = bin_("+", point, ["vec", "vec3", [bin_("*", c(rng.choice((0.125, 0.25))), xi), c(0.0), c(0.0)]])
    mode = "LINEAR" if rng.random() < 0.7 else "CLOSEST"
    body = [["let", "uvw", ["call", "volume_world_to_index", [v("vol"), point]]],
            ["let", "s", ["call", "volume_sample_f", [v("vol"), v("uvw"), ["vmode", mode]]]]]
    leaves = [xi, v("s")]
    if rng.random() < 0.4:  # one voxel by its integer coordinates (the thread's own column)
        ijk = [["mod", v("i"), c(shape[0], "int32")], c(rng.randrange(shape[1]), "int32"),
               c(rng.randrange(shape[2]), "int32")]
        body.append(["let", "g", ["call", "volume_lookup_f", [v("vol"), *ijk]]])
        leaves.append(v("g"))
    scal = FloatExprs(rng, leaves)
    vecs = VecExprs(rng, {"vec3": [v("uvw")]}, scal)
    term = sample_term(rng, vecs, leaves, v("uvw"), 3)
    body.append(["store", "y", [v("i")], term])
    if rng.random() < 0.4:  # a point back in world space, moved by the sample along every axis
        args.append(ArgSpec("w", "array", "vec3", (n,), role="out"))
        moved = bin_("+", v("uvw"), ["vec", "vec3", [v("s"), v("s"), v("s")]])
        body.append(["store", "w", [v("i")], ["call", "volume_index_to_world", [v("vol"), moved]]])
    return KernelSpec(NAME, seed, name, (n,), tuple(args), body)
