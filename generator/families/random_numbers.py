"""Random numbers: per-thread RNG streams from wp.rand_init(seed, tid) drawn with wp.randf (and
integers in a range: wp.randi, wp.randu; a component or the length of a uniform point in a square,
cube, triangle, ring, disk, sphere or hemisphere: wp.sample_unit_disk, ...), for Monte
Carlo estimates, jittered data and random masks.
The oracle reproduces Warp's PCG generator bit for bit."""

from generator.grammar import FloatExprs, bin_, c, cmp, float_literal, ld, using_all, v, with_literal
from generator.spec import RAND_SAMPLES, ArgSpec, KernelSpec

NAME = "random_numbers"
TARGET = "cuda"


def _sample(rng):
    """One component of a uniform point (wp.sample_unit_disk(state)[1], ...), or its length, or
    its squared length, drawn by one of rand.h's samplers (each advances the state)."""
    name = rng.choice(RAND_SAMPLES)
    point = [name, "state"]
    if rng.random() < 0.25 and name not in ("sample_unit_ring", "sample_unit_sphere_surface", "sample_unit_hemisphere_surface"):
        return ["call", rng.choice(("length", "length_sq")), [point]]  # (a point on a surface: length 1)
    size = 3 if name == "sample_unit_cube" or "sphere" in name else 2
    return ["comp", point, [rng.randrange(size)]]


def _draw(rng):
    if rng.random() < 0.2:
        return _sample(rng)
    r = rng.random()
    if r < 0.4:
        return ["randf", "state"]
    if r < 0.75:
        lo = float_literal(rng, -2, 0)
        return ["randf", "state", lo, float_literal(rng, 0.125, 2)]
    # an integer in [lo, lo + 2**k): wp.randi (int32 bounds) or wp.randu (uint32), as a float of [lo, lo + 1)
    # times 2**k (small integers and a power of two: exact in float32, as the oracle computes them)
    kind = "randi" if r < 0.9 else "randu"
    dt = "int32" if kind == "randi" else "uint32"
    lo, span = rng.randint(-8 if kind == "randi" else 0, 8), 1 << rng.randint(1, 4)
    draw = [kind, "state", c(lo, dt), c(lo + span, dt)]
    return bin_("*", ["cast", "float32", draw], c(1.0 / span))


def build(rng, name, seed):
    n = rng.choice((32, 64, 128, 256))
    args = [ArgSpec("seed", "scalar", "int32", low=0, high=100000)]
    data = [ArgSpec(f"x{k}", "array", "float32", (n,)) for k in range(rng.randint(0, 2))]
    args += data
    body = [["let", "state", ["call", "rand_init", [v("seed"), v("i")]]]]
    dleaves = [ld(a.name, v("i")) for a in data]
    kind = rng.random()
    out = ArgSpec("y", "array", "float32", (n,), role="out")
    if kind < 0.45:  # Monte Carlo: average of f(samples) or fraction inside a region
        samples = rng.choice((2, 4, 8, 16))
        body.append(["let", "acc", ["cast", "float32", c(0.0)]])
        draws = [["let", f"u{k}", _draw(rng)] for k in range(rng.randint(1, 3))]
        ex = FloatExprs(rng, [v(f"u{k}") for k in range(len(draws))] + dleaves)
        if rng.random() < 0.5:
            loop = draws + [["if", ex.cond(rng.randint(1, 2)), [["aug", "acc", "+", c(1.0)]], [], []]]
        else:
            loop = draws + [["aug", "acc", "+", using_all(rng, ex.live_expr(rng.randint(1, 3), v("u0")), dleaves)]]
        body.append(["for", "k", c(0, "int32"), c(samples, "int32"), loop])
        body.append(["store", "y", [v("i")], bin_("*", v("acc"), c(1.0 / samples))])
    elif kind < 0.75:  # jitter: data or draws through an expression tree
        draws = [["let", f"u{k}", _draw(rng)] for k in range(rng.randint(1, 3))]
        body += draws
        ex = FloatExprs(rng, [v(f"u{k}") for k in range(len(draws))] + dleaves)
        e = using_all(rng, ex.live_expr(rng.randint(2, 3), v("u0")), dleaves)
        body.append(["store", "y", [v("i")], with_literal(rng, e, -2, 2)])
    else:  # random mask / dropout with probability p
        body.append(["let", "u", ["randf", "state"]])
        p = float_literal(rng, 0.25, 0.75)
        ex = FloatExprs(rng, dleaves + [v("u")])
        keep = using_all(rng, ex.live_expr(rng.randint(1, 3), dleaves[0] if dleaves else v("u")), dleaves)
        body.append(["store", "y", [v("i")], ["where", cmp("<", v("u"), p), keep, float_literal(rng, -1, 1)]])
        if rng.random() < 0.5:
            args.append(ArgSpec("kept", "array", "int32", (1,), role="out"))
            body.append(["if", cmp("<", v("u"), p), [["atomic", "add", "kept", [c(0, "int32")], c(1, "int32")]], [], []])
    args.insert(1 + len(data), out)
    return KernelSpec(NAME, seed, name, (n,), tuple(args), body)
