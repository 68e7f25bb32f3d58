"""Atomics on the CPU: scatter-adds (or subtractions) into data-dependent bins (histograms),
integer counters, the bits of each bin's thread indices (atomic or / xor, and into an all-ones mask),
and atomic min/max, sometimes under a condition or into 2-D bins; the bins flagged under a
condition, by wp.atomic_exch or wp.atomic_cas of one literal (the same whatever the order)."""

from generator.grammar import FloatExprs, c, cmp, ld, v
from generator.spec import ArgSpec, KernelSpec

NAME = "atomics"
TARGET = "cpu"


def build(rng, name, seed):
    n = rng.choice((32, 64, 96, 128))
    bins = rng.choice((2, 4, 5, 8, 16))
    two_d = rng.random() < 0.3
    key = ArgSpec("key", "array", "int32", (n,), low=0, high=bins - 1)
    x = [ArgSpec(f"x{k}", "array", "float32", (n,)) for k in range(rng.randint(1, 2))]
    ex = FloatExprs(rng, [ld(a.name, v("i")) for a in x])
    args = [key] + x
    body = [["let", "b", ld("key", v("i"))], ["let", "val", ex.live_expr(rng.randint(1, 3), ex.leaves[0])]]
    ex.leaves.append(v("val"))
    idx = [v("b")]
    shape = (bins,)
    if two_d:
        lanes = rng.choice((2, 3))
        body.append(["let", "lane", ["mod", v("i"), c(lanes, "int32")]])
        idx, shape = [v("lane"), v("b")], (lanes, bins)
    stmts = []
    hist = ArgSpec("hist", "array", "float32", shape, role="out")
    args.append(hist)
    # atomic_sub into a zeroed bin accumulates the negated sum (the same order of terms)
    stmts.append(["atomic", rng.choices(("add", "sub"), weights=(70, 30))[0], "hist", idx,
                  ex.live_expr(rng.randint(0, 2), v("val"))])
    if rng.random() < 0.6:
        args.append(ArgSpec("count", "array", "int32", shape, role="out"))
        stmts.append(["atomic", "add", "count", idx, c(1, "int32")])
    if rng.random() < 0.3:
        # the bits of the bin's thread indices: or, xor and and are exact and commutative, so the
        # mask does not depend on the threads' order; and starts from an all-ones mask (in place)
        op = rng.choices(("or", "xor", "and"), weights=(45, 45, 10))[0]
        args.append(ArgSpec("mask", "array", "int32", shape, role="inout", low=-1, high=-1) if op == "and"
                    else ArgSpec("mask", "array", "int32", shape, role="out"))
        stmts.append(["atomic", op, "mask", idx, v("i")])
    # min/max bins are in-place arrays, which the gradient check leaves alone: most kernels have none
    for op in rng.sample(["min", "max"], rng.choices((0, 1, 2), weights=(88, 9, 3))[0]):
        # min/max bins start at the input range's bound, not 0, so they record real data
        args.append(ArgSpec(f"{op}v", "array", "float32", shape, role="inout",
                            low=8.0 if op == "min" else -8.0, high=8.0 if op == "min" else -8.0))
        stmts.append(["atomic", op, f"{op}v", idx, v("val")])
    if rng.random() < 0.4:
        body.append(["if", ex.cond(1), stmts, [], []])
    else:
        body += stmts
    if rng.random() < 0.3:
        body.append(_flag(rng, ex, args, idx, shape))
    return KernelSpec(NAME, seed, name, (n,), tuple(args), body)


def _flag(rng, ex, args, idx, shape):
    """The bins some thread flagged where its value is below or above a literal: wp.atomic_exch(flag, b, k) or
    wp.atomic_cas(flag, b, 0, k) of one literal k into a zeroed array. Every flagging thread
    writes the same k (cas: the first one finds 0 and sets k, the rest find k), so the result
    does not depend on the threads' order."""
    args.append(ArgSpec("flag", "array", "int32", shape, role="out"))
    k = c(rng.randint(1, 9), "int32")
    op = rng.choice(("exch", "cas"))
    value = ["tuple", [c(0, "int32"), k]] if op == "cas" else k
    return ["if", cmp(rng.choice(("<", ">")), v("val"), ex.lit(-1, 1)), [["atomic", op, "flag", idx, value]], [], []]
