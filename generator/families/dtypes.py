"""Several dtypes: float64 and float16 arrays (float64 vectors, quaternions, matrices and
transforms: wp.vec3d, wp.vec4d, wp.quatd, wp.mat22d, wp.mat44d, wp.transformd, ...; half ones of
the loaded halves: wp.vec3h, wp.mat33h, wp.transformh of a wp.quath; a result rounded through
wp.bfloat16 before its float16 store), int32/int64/uint32 integer arithmetic with proven
bounds (no overflow; int32 and uint32 vectors: wp.vec2i ... vec4i, wp.vec2ui ... vec4ui, the index of
their smallest or largest component: wp.argmin / argmax; the set bits of a value: wp.bit_count),
arithmetic in the small integer types int8/uint8/int16/uint16/uint64 (loaded through casts, each
kept within its type's range; int16 vectors: wp.vec3s), unsigned wrap-around by a narrowing cast, and casts between integer
and float values (wp.float32(x) and Python's float(x))."""

from generator.grammar import FloatExprs, IntExprs, c, call, float_literal, ld, mentions, using_all, v
from generator.spec import SMALL_INT_DTYPES, ArgSpec, KernelSpec

NAME = "dtypes"
TARGET = "cpu"


def _float64(rng, n):
    x = [ArgSpec(f"x{k}", "array", "float64", (n,)) for k in range(rng.randint(1, 2))]
    s = [ArgSpec("s", "scalar", "float64", low=-1.0, high=1.0)] if rng.random() < 0.5 else []
    ex = FloatExprs(rng, [ld(a.name, v("i")) for a in x] + [v(a.name) for a in s], dtype="float64",
                    unary=FloatExprs.MATH)
    body = [["let", "t", ex.expr(rng.randint(1, 3))]]
    ex.leaves.append(v("t"))
    if rng.random() < 0.3:  # a float64 vector or matrix of the values so far, and a scalar of it
        ex.leaves.append(_float64_composite(rng, ex, body))
    out = ArgSpec("y", "array", "float64", (n,), role="out")
    body.append(["store", "y", [v("i")], using_all(rng, ex.live_expr(rng.randint(1, 3), v("t")), ex.leaves[-1:])])
    return x + s + [out], body


_F64_COMPOSITES = {"vec2d": (2,), "vec3d": (3,), "vec4d": (4,), "quatd": (4,), "mat22d": (2, 2), "mat33d": (3, 3),
                   "mat44d": (4, 4)}


def _float64_composite(rng, ex, body):
    """`d = wp.vec3d(...)` (or vec2d, vec4d, quatd, mat22d, mat33d, mat44d) of float64 expressions
    appended to body; a float64 scalar of d: its length, a dot product or determinant, a component,
    or (quatd) a component of a point moved by the wp.transformd of a vec3d and d."""
    vt = rng.choice(tuple(_F64_COMPOSITES))
    shape = _F64_COMPOSITES[vt]
    size = shape[0] * (shape[1] if len(shape) == 2 else 1)
    body.append(["let", "d", ["vec", vt, [ex.expr(1) if rng.random() < 0.6 else ex.lit(-2, 2) for _ in range(size)]]])
    if vt == "quatd" and rng.random() < 0.5:  # Warp's rotation formula holds for any quaternion, not only unit ones
        p, x = (["vec", "vec3d", [ex.expr(1) if rng.random() < 0.4 else ex.lit(-2, 2) for _ in range(3)]]
                for _ in range(2))
        body.append(["let", "pd", call("transform_point", call("transformd", p, v("d")), x)])
        return ["comp", v("pd"), [rng.randrange(3)]]
    if rng.random() < 0.3:
        return ["comp", v("d"), [rng.randrange(k) for k in shape]]
    if len(shape) == 2:
        return call(rng.choice(("determinant", "trace")), v("d"))
    fn = rng.choice(("length", "length_sq", "dot"))
    return call(fn, v("d"), *([v("d")] if fn == "dot" else []))


def _float16(rng, n):
    # half storage, float32 arithmetic: load, widen, compute, narrow on store
    x = [ArgSpec(f"h{k}", "array", "float16", (n,)) for k in range(rng.randint(1, 2))]
    ex = FloatExprs(rng, [["cast", "float32", ld(a.name, v("i"))] for a in x])
    body = [["let", "t", ex.live_expr(rng.randint(1, 3))]]
    ex.leaves = [v("t")] + ex.leaves[1:]  # later reads go through t
    out = ArgSpec("y", "array", "float16", (n,), role="out")
    e = ex.live_expr(rng.randint(0, 2), v("t"))
    if rng.random() < 0.35:  # plus a half scalar of a vec3h / mat33h / transformh of the loaded halves
        e = ["bin", "+", e, ["cast", "float32", _half_composite(rng, [ld(a.name, v("i")) for a in x], body)]]
    if rng.random() < 0.25:  # through bfloat16 first: 8 significant bits, within float16's tolerance
        e = ["cast", "bfloat16", e]
    body.append(["store", "y", [v("i")], ["cast", "float16", e]])
    return x + [out], body


# quaternions whose rotation Warp's half arithmetic computes exactly on multiples of 1/256 in [-2, 2]:
# the identity, the half turns about x, y, z, and the third of a turn that cycles the axes
_EXACT_QUATS = ((0.0, 0.0, 0.0, 1.0), (1.0, 0.0, 0.0, 0.0), (0.0, 1.0, 0.0, 0.0), (0.0, 0.0, 1.0, 0.0),
                (0.5, 0.5, 0.5, 0.5), (-0.5, -0.5, -0.5, 0.5))


def _half_composite(rng, loads, body):
    """`hd = wp.vec3h(...)` (or wp.mat33h, or wp.transformh of a vec3h and a wp.quath) of the loaded
    halves and half literals, appended to body; a float16 scalar of it that half arithmetic gives
    within a rounding or two of the exact value (the oracle does not round): a component, a dot
    product with a vector of 0, +-1/2 and +-1, a trace, or a point moved by the transform (its
    rotation one of _EXACT_QUATS; a component of its translation or rotation otherwise)."""
    def comps(k):
        return [rng.choice(loads) if rng.random() < 0.7 else float_literal(rng, -2, 2, "float16") for _ in range(k)]
    kind = rng.choice(("vec3h", "mat33h", "transformh"))
    if kind == "vec3h":
        body.append(["let", "hd", ["vec", "vec3h", comps(3)]])
        if rng.random() < 0.4:
            return ["comp", v("hd"), [rng.randrange(3)]]
        w = ["vec", "vec3h", [c(rng.choice((-1.0, -0.5, 0.0, 0.5, 1.0)), "float16") for _ in range(3)]]
        return call("dot", v("hd"), w)
    if kind == "mat33h":
        body.append(["let", "hd", ["vec", "mat33h", comps(9)]])
        return call("trace", v("hd")) if rng.random() < 0.6 else ["comp", v("hd"), [rng.randrange(3), rng.randrange(3)]]
    exact = rng.random() < 0.6
    q = [c(x, "float16") for x in rng.choice(_EXACT_QUATS)] if exact else comps(4)
    body.append(["let", "hd", call("transformh", ["vec", "vec3h", comps(3)], ["vec", "quath", q])])
    if exact:
        return ["comp", call("transform_point", v("hd"), ["vec", "vec3h", comps(3)]), [rng.randrange(3)]]
    part = rng.choice((("transform_get_translation", 3), ("transform_get_rotation", 4)))
    return ["comp", call(part[0], v("hd")), [rng.randrange(part[1])]]


def _integer(rng, n):
    if rng.random() < 0.4:
        return _narrow(rng, n)
    dt = rng.choice(("int32", "int64", "uint32"))
    unsigned = dt == "uint32"
    lo = 0 if unsigned or rng.random() < 0.5 else -50
    x = [ArgSpec(f"k{k}", "array", dt, (n,), low=lo, high=50) for k in range(rng.randint(1, 2))]
    bound = 50
    leaves = [(ld(a.name, v("i")), bound) for a in x]
    if dt == "int32":
        leaves.append((v("i"), n))  # the thread index itself is an int32
    ix = IntExprs(rng, leaves, dt, unsigned)
    body = []
    groups = []  # leaves t reads one of: the vector's, the bit count
    if dt != "int64" and rng.random() < 0.5:  # an int32 / uint32 vector whose components feed the arithmetic
        groups.append(_int_vector(rng, ix, dt, body))
    if rng.random() < 0.2:  # an index a binary search finds in a sorted input
        x = x + [_search(rng, ix, x, n, body, groups)]
    if dt != "int64" and rng.random() < 0.25:  # the set bits of an int32 / uint32 value (wp.bit_count, int32)
        bits = call("bit_count", ix.expr(rng.randint(1, 2))[0])
        groups.append([(bits if dt == "int32" else ["cast", dt, bits], 32)])
    for parts in groups:
        ix.leaves += parts
    e, b = ix.expr(rng.randint(1, 3))
    for parts in groups:
        if not any(mentions(e, p) for p, _ in parts):
            p, bp = rng.choice(parts)
            e, b = (["bin", "+", e, p], b + bp) if b + bp < IntExprs.LIMIT else (p, bp)
    body.append(["let", "t", e])
    ix.leaves.append((v("t"), b))
    e2, b2 = ix.expr(rng.randint(1, 2))
    if not mentions(e2, v("t")):  # t stays live (and with it the vector, bit count or search it read)
        e2 = ["bin", "+", e2, v("t")] if b + b2 < IntExprs.LIMIT else v("t")
    args = x
    out = ArgSpec("y", "array", dt, (n,), role="out")
    body.append(["store", "y", [v("i")], e2])
    if rng.random() < 0.6:  # an integer result feeding float math, and back
        f = ArgSpec("f", "array", "float32", (n,), role="out")
        # only small integers become floats: exact in float32, so sin/cos see the oracle's argument
        # scaled by 1/16 so tanh/exp and friends see a range where they do not saturate
        small = [ld(x[0].name, v("i"))] + ([v("t")] if b <= 256 else [])
        to_float = rng.choice(("float32", "float"))  # wp.float32(x) or Python's float(x)
        leaves = [["bin", "*", ["cast", to_float, e], c(0.0625)] for e in small]
        ex = FloatExprs(rng, leaves)
        body.append(["store", "f", [v("i")], ex.live_expr(rng.randint(1, 2))])
        args = args + [out, f]
    else:
        args = args + [out]
    return args, body


def _search(rng, ix, x, n, body, groups):
    """`lb = wp.lower_bound(sk, value)` (or of the range [lo, hi) of sk) of an expression, sk a
    sorted input of the kernel's integer type, appended to body; the index (an int32 in [0, n - 1]:
    Warp's search never passes the range's last element) and the element of an input there, as a
    group of leaves. The sorted input itself."""
    sk = ArgSpec("sk", "array", ix.dt, (n,), low=0, high=50, ascending=True)
    value, _ = ix.expr(rng.randint(0, 1))
    if rng.random() < 0.5:
        found = call("lower_bound", ["arr", "sk"], value)
    else:
        lo = rng.randrange(n // 2)
        found = call("lower_bound", ["arr", "sk"], c(lo, "int32"), c(rng.randint(lo + 1, n), "int32"), value)
    body.append(["let", "lb", found])
    index = v("lb") if ix.dt == "int32" else ["cast", ix.dt, v("lb")]
    groups.append([(index, n), (ld(rng.choice(x + [sk]).name, v("lb")), 50)])
    return sk


_INT_VECTORS = {"int32": ("vec2i", "vec3i", "vec4i"), "uint32": ("vec2ui", "vec3ui", "vec4ui"), "int16": ("vec3s",)}


def _int_vector(rng, ix, dt, body):
    """`vi = wp.vec3i(...)` (vec2i ... vec4ui) of integer expressions appended to body; its
    components, and sometimes the index of its first smallest / largest one (wp.argmin /
    argmax, exact on integers, ties to the first), as (expression, bound) leaves."""
    vt = rng.choice(_INT_VECTORS[dt])
    comps = [ix.expr(1) for _ in range(int(vt[3]))]
    body.append(["let", "vi", ["vec", vt, [e for e, _ in comps]]])
    parts = [(["comp", v("vi"), [k]], b) for k, (_, b) in enumerate(comps)]
    if rng.random() < 0.3:
        parts.append((["cast", dt, call(rng.choice(("argmin", "argmax")), v("vi"))], len(comps)))
    return parts


# the largest input value of int32 arrays computed on in each small type (kept small so products fit)
_SMALL_INPUT = {"int8": 11, "uint8": 15, "int16": 50, "uint16": 50, "uint64": 50}


def _narrow(rng, n):
    """Integer arithmetic in a small type (int8 ... uint64) on int32 inputs narrowed by casts,
    every value within the type's range (C promotes 8- and 16-bit operands to int, so no
    intermediate overflows either); widened back to int32 to store. Sometimes also an int32 value
    narrowed to uint8 / uint16 on purpose: unsigned wrap-around, defined and reproduced by the oracle."""
    st = rng.choice(tuple(SMALL_INT_DTYPES))
    bits, signed = SMALL_INT_DTYPES[st]
    limit = min(1 << (bits - 1 if signed else bits), IntExprs.LIMIT)
    hi = _SMALL_INPUT[st]
    lo = -hi if signed and rng.random() < 0.5 else 0
    x = [ArgSpec(f"k{k}", "array", "int32", (n,), low=lo, high=hi) for k in range(rng.randint(1, 2))]
    leaves = [(["cast", st, ld(a.name, v("i"))], hi) for a in x] + [(["cast", st, v("i")], n)]
    ix = IntExprs(rng, leaves, st, unsigned=not signed, limit=limit)
    body = []
    parts = _int_vector(rng, ix, st, body) if st == "int16" and rng.random() < 0.5 else []  # wp.vec3s
    ix.leaves += parts
    e, b = ix.expr(rng.randint(1, 3))
    if parts and not any(mentions(e, p) for p, _ in parts):
        p, bp = rng.choice(parts)
        e, b = (["bin", "+", e, p], b + bp) if b + bp < limit else (p, bp)
    body.append(["let", "t", e])
    ix.leaves.append((v("t"), b))
    e2, b2 = ix.expr(rng.randint(1, 2))
    if not mentions(e2, v("t")):
        e2 = ["bin", "+", e2, v("t")] if b + b2 < limit else v("t")
    outs = [ArgSpec("y", "array", "int32", (n,), role="out")]
    body.append(["store", "y", [v("i")], ["cast", "int32", e2]])
    if rng.random() < 0.4:  # an int32 value well past 8 / 16 bits, narrowed: wrap-around
        wide = IntExprs(rng, [(ld(a.name, v("i")), hi) for a in x] + [(v("i"), n)])
        w, bw = wide.expr(rng.randint(1, 2))
        scale = min(rng.randint(100, 5000), IntExprs.LIMIT // (bw + 1))  # |w * scale + i| < 2**31
        w = ["bin", "+", ["bin", "*", w, c(scale, "int32")], v("i")]
        outs.append(ArgSpec("w", "array", "int32", (n,), role="out"))
        body.append(["store", "w", [v("i")], ["cast", "int32", ["cast", rng.choice(("uint8", "uint16")), w]]])
    if rng.random() < 0.3:  # and the small value as a float
        outs.append(ArgSpec("f", "array", "float32", (n,), role="out"))
        fe = FloatExprs(rng, [["bin", "*", ["cast", "float", v("t")], c(0.0625)]])
        body.append(["store", "f", [v("i")], fe.live_expr(rng.randint(1, 2))])
    return x + outs, body


def build(rng, name, seed):
    n = rng.choice((16, 32, 48))
    kind = rng.choice((_float64, _float16, _integer))
    args, body = kind(rng, n)
    return KernelSpec(NAME, seed, name, (n,), tuple(args), body)
