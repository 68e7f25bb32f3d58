"""Several dtypes: float64 and float16 arrays, int32/int64/uint32 integer arithmetic with
proven bounds (no overflow), and casts between integer and float values."""

from generator.grammar import FloatExprs, IntExprs, c, ld, v
from generator.spec import ArgSpec, KernelSpec

NAME = "dtypes"
TARGET = "cpu"


def _float64(rng, n):
    x = [ArgSpec(f"x{k}", "array", "float64", (n,)) for k in range(rng.randint(1, 2))]
    s = [ArgSpec("s", "scalar", "float64", low=-1.0, high=1.0)] if rng.random() < 0.5 else []
    ex = FloatExprs(rng, [ld(a.name, v("i")) for a in x] + [v(a.name) for a in s], dtype="float64",
                    unary=FloatExprs.MATH)
    body = [["let", "t", ex.expr(rng.randint(1, 3))]]
    ex.leaves.append(v("t"))
    out = ArgSpec("y", "array", "float64", (n,), role="out")
    body.append(["store", "y", [v("i")], ex.live_expr(rng.randint(1, 3), v("t"))])
    return x + s + [out], body


def _float16(rng, n):
    # half storage, float32 arithmetic: load, widen, compute, narrow on store
    x = [ArgSpec(f"h{k}", "array", "float16", (n,)) for k in range(rng.randint(1, 2))]
    ex = FloatExprs(rng, [["cast", "float32", ld(a.name, v("i"))] for a in x])
    body = [["let", "t", ex.live_expr(rng.randint(1, 3))]]
    ex.leaves = [v("t")] + ex.leaves[1:]  # later reads go through t
    out = ArgSpec("y", "array", "float16", (n,), role="out")
    body.append(["store", "y", [v("i")], ["cast", "float16", ex.live_expr(rng.randint(0, 2), v("t"))]])
    return x + [out], body


def _integer(rng, n):
    dt = rng.choice(("int32", "int64", "uint32"))
    unsigned = dt == "uint32"
    lo = 0 if unsigned or rng.random() < 0.5 else -50
    x = [ArgSpec(f"k{k}", "array", dt, (n,), low=lo, high=50) for k in range(rng.randint(1, 2))]
    bound = 50
    leaves = [(ld(a.name, v("i")), bound) for a in x]
    if dt == "int32":
        leaves.append((v("i"), n))  # the thread index itself is an int32
    ix = IntExprs(rng, leaves, dt, unsigned)
    e, b = ix.expr(rng.randint(1, 3))
    body = [["let", "t", e]]
    ix.leaves.append((v("t"), b))
    e2, b2 = ix.expr(rng.randint(1, 2))
    if not _mentions_any(e2):
        e2 = ["bin", "+", e2, v("t")] if b + b2 < IntExprs.LIMIT else v("t")
    args = x
    out = ArgSpec("y", "array", dt, (n,), role="out")
    body.append(["store", "y", [v("i")], e2])
    if rng.random() < 0.6:  # an integer result feeding float math, and back
        f = ArgSpec("f", "array", "float32", (n,), role="out")
        # only small integers become floats: exact in float32, so sin/cos see the oracle's argument
        # scaled by 1/16 so tanh/exp and friends see a range where they do not saturate
        small = [ld(x[0].name, v("i"))] + ([v("t")] if b <= 256 else [])
        leaves = [["bin", "*", ["cast", "float32", e], c(0.0625)] for e in small]
        ex = FloatExprs(rng, leaves)
        body.append(["store", "f", [v("i")], ex.live_expr(rng.randint(1, 2))])
        args = args + [out, f]
    else:
        args = args + [out]
    return args, body


def _mentions_any(e) -> bool:
    from generator.grammar import mentions

    return mentions(e, None)


def build(rng, name, seed):
    n = rng.choice((16, 32, 48))
    kind = rng.choice((_float64, _float16, _integer))
    args, body = kind(rng, n)
    return KernelSpec(NAME, seed, name, (n,), tuple(args), body)
