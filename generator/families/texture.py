"""Samples of a `wp.Texture2D`: the texture holds one float channel, 4 to 16 texels a side (its
texels its own seeded input), filtered bilinearly or to the closest texel, its address mode wrap,
clamp, mirror or border; each thread samples it with `wp.texture_sample` at a point of its own in
normalized coordinates (a vec2, or its two components), may sample a second point a step away,
and writes terms of the samples, the point and its own values, and may write the sample itself.
The oracle samples the same texels as Warp's CPU sampler does."""

from generator.grammar import FloatExprs, VecExprs, bin_, c, ld, sample_term, v
from generator.spec import TEXTURE, TEXTURE_ADDRESSES, ArgSpec, KernelSpec

NAME = "texture"
TARGET = "cpu"

# the texture's sides and the point's scales keep every texel coordinate a multiple of 1/128: exact
# in float32 (and within the 8 fractional bits of a CUDA texture unit's weights)
_SIDES = (4, 8, 16)
_SCALES = (0.5, 1.5, 2.0)


def _sample(rng, at):
    """wp.texture_sample(tex, at, dtype=float), or with at's two components."""
    coords = [["comp", at, [0]], ["comp", at, [1]]] if rng.random() < 0.3 else [at]
    return ["kwcall", "texture_sample", [v("tex"), *coords], [["dtype", ["fnref", "float"]]]]


def build(rng, name, seed):
    n = rng.choice((8, 12, 16))
    sampler = f"{rng.choice(('LINEAR', 'LINEAR', 'CLOSEST'))}/{rng.choice(tuple(TEXTURE_ADDRESSES))}"
    tex = ArgSpec("tex", TEXTURE, "float32", (rng.choice(_SIDES), rng.choice(_SIDES)), low=-1.0, high=1.0, sampler=sampler)
    uv = ArgSpec("uv", "array", "vec2", (n,), low=-0.5, high=1.5)  # beyond [0, 1]: the address mode decides
    x = ArgSpec("x", "array", "float32", (n,))
    y = ArgSpec("y", "array", "float32", (n,), role="out")
    args = [tex, uv, x, y]
    xi = ld("x", v("i"))
    point = ld("uv", v("i"))
    if rng.random() < 0.3:  # the point scaled
        point = bin_("*", c(rng.choice(_SCALES)), point)
    body = [["let", "p", point], ["let", "s", _sample(rng, v("p"))]]
    leaves = [xi, v("s")]
    if rng.random() < 0.4:  # a second sample, a step of 1/16 to 1/4 away along one axis or both
        step = ["vec", "vec2", [c(rng.choice((0.0, 0.0625, 0.125, 0.25))), c(rng.choice((0.0625, -0.125, 0.25)))]]
        body.append(["let", "t", _sample(rng, bin_("+", v("p"), step))])
        leaves.append(v("t"))
    if rng.random() < 0.4:  # a value of the thread's own, computed from x[i] before the samples are read
        body.insert(1, ["let", "a", FloatExprs(rng, [xi]).live_expr(rng.randint(1, 2), xi)])
        leaves.append(v("a"))
    scal = FloatExprs(rng, leaves)
    vecs = VecExprs(rng, {"vec2": [v("p")]}, scal)
    term = sample_term(rng, vecs, leaves, v("p"), 2)
    body.append(["store", "y", [v("i")], term])
    if rng.random() < 0.3:  # the sample itself
        args.append(ArgSpec("w", "array", "float32", (n,), role="out"))
        body.append(["store", "w", [v("i")], v("s")])
    return KernelSpec(NAME, seed, name, (n,), tuple(args), body)
