"""Matrix, quaternion and transform math: mat22/33/44 times vectors and matrices, transpose,
determinant, trace, double dot products (wp.ddot), outer products, matrices built from vectors
(wp.matrix_from_rows / _cols, wp.diag), from scalars (wp.mat22 / wp.mat22f / wp.mat33 / wp.mat33f /
wp.mat44 constructors, the generic wp.matrix) and wp.identity, inverses (wp.inverse, inverse_approx)
of diagonally dominant matrices, rotations from axis-angle, roll-pitch-yaw (wp.quat_rpy) or
constructed (wp.quat / wp.quatf) quaternions (rotating directly, inversely, by the inverse, as a
matrix, or by the quaternion of that matrix: wp.quat_from_matrix), a matrix's diagonal
(wp.get_diag), and rigid transforms (wp.transform / transformation / transformf; applied to points
and vectors, inverted, multiplied, taken apart)."""

from generator.grammar import FloatExprs, VecExprs, bin_, c, call, ld, mentions, v, with_literal
from generator.spec import ArgSpec, KernelSpec

NAME = "matrix"
TARGET = "cpu"

MAT = {"mat22": "vec2", "mat33": "vec3", "mat44": "vec4"}


def build(rng, name, seed):
    n = rng.choice((8, 16, 24))
    if rng.random() < 0.55:
        return _matrices(rng, name, seed, n)
    return _rotations(rng, name, seed, n)


def _matrices(rng, name, seed, n):
    """y = a * x for a matrix a built from m (transposed, squared or plus an outer product),
    stored with an optional determinant."""
    mt = rng.choice(tuple(MAT))
    vt = MAT[mt]
    m = ArgSpec("m", "array", mt, (n,), low=-1.0, high=1.0)
    x = ArgSpec("x", "array", vt, (n,))
    args = [m, x]
    scal = FloatExprs(rng, [["comp", ld("x", v("i")), [0]]])
    ve = VecExprs(rng, {vt: [ld("x", v("i"))]}, scal)
    body = [["let", "a", _matrix(rng, mt, vt, scal, ve)]]
    body.append(["let", "y", ["mmul", v("a"), with_literal(rng, ve.vec(vt, rng.randint(1, 2)))]])
    ve.vleaves[vt].append(v("y"))
    outs = [ArgSpec("out", "array", vt, (n,), role="out")]
    fin = ve.vec(vt, rng.randint(1, 2))
    keep = fin != v("y") and mentions(fin, v("y")) and rng.random() < 0.5  # the product y always reaches out
    body.append(["store", "out", [v("i")], fin if keep else bin_("+", v("y"), with_literal(rng, fin))])
    if rng.random() < 0.6:
        outs.append(ArgSpec("det", "array", "float32", (n,), role="out"))
        r = rng.random()  # the determinant, the trace, or the double dot product with m[i]
        e = call("determinant", v("a")) if r < 0.55 else call("trace", v("a")) if r < 0.75 else \
            call("ddot", v("a"), ld("m", v("i"))) if r < 0.9 else call("dot", call("get_diag", v("a")), ld("x", v("i")))
        if rng.random() < 0.5:
            e = bin_("+", e, ["comp", v("a"), [rng.randrange(2), rng.randrange(2)]])
        body.append(["store", "det", [v("i")], e])
    return KernelSpec(NAME, seed, name, (n,), tuple(args + outs), body)


def _matrix(rng, mt, vt, scal, ve):
    """The matrix `a`: m[i] transposed, squared, plus an outer product, combined with a matrix
    built from vectors, from scalars or as the identity, or m[i] itself."""
    mexpr = ld("m", v("i"))
    size = int(mt[3])
    r = rng.random()
    if r < 0.22:
        return call("transpose", mexpr)
    if r < 0.38:
        return ["mmul", mexpr, call("transpose", ld("m", v("i")))]
    if r < 0.46:
        return bin_("+", mexpr, call("outer", ld("x", v("i")), ve.vec(vt, 1)))
    if r < 0.58:  # rows or columns: x[i] and vector expressions
        vecs = [ld("x", v("i"))] + [ve.vec(vt, 1) for _ in range(size - 1)]
        rng.shuffle(vecs)
        built = call(rng.choice(("matrix_from_rows", "matrix_from_cols")), *vecs)
        return ["mmul", mexpr, built] if rng.random() < 0.5 else bin_(rng.choice("+-"), mexpr, built)
    if r < 0.68:  # plus a scaled identity, or a diagonal matrix of a vector
        if rng.random() < 0.5:
            eye = ["kwcall", "identity", [], [["n", c(size, "int32")], ["dtype", ["fnref", "float32"]]]]
            return bin_("+", mexpr, bin_("*", scal.lit(0.5, 2.0), eye))
        d = call("diag", ve.vec(vt, 1))
        return ["mmul", mexpr, d] if rng.random() < 0.5 else bin_("+", mexpr, d)
    if r < 0.78:  # a wp.mat22 / wp.mat33 / wp.mat44 of scalars, row by row (wp.mat22f / mat33f: float32 names)
        ctor = mt + "f" if mt != "mat44" and rng.random() < 0.5 else mt
        comps = [scal.expr(1) if rng.random() < 0.4 else scal.lit(-2, 2) for _ in range(size * size)]
        built = ["vec", ctor, comps]
        if rng.random() < 0.2:  # the generic wp.matrix(..., shape=(n, n), dtype=wp.float32)
            built = ["kwcall", "matrix", comps, [["shape", ["tuple", [c(size, "int32"), c(size, "int32")]]],
                                                 ["dtype", ["fnref", "float32"]]]]
        return ["mmul", mexpr, built] if rng.random() < 0.5 else bin_("+", mexpr, built)
    if r < 0.88:  # the inverse of m[i] + s I, s > size: diagonally dominant (|m| <= 1), far from singular
        eye = ["kwcall", "identity", [], [["n", c(size, "int32")], ["dtype", ["fnref", "float32"]]]]
        # wp.inverse_approx: the same inverse on the CPU, single precision on a GPU (within float32's tolerance)
        inv = call(rng.choice(("inverse", "inverse", "inverse_approx")),
                   bin_("+", mexpr, bin_("*", scal.lit(size + 1, size + 3), eye)))
        return ["mmul", mexpr, inv] if rng.random() < 0.5 else bin_("+", mexpr, inv)
    return mexpr


def _transformed(rng, op, scal, pt):
    """`r`: the point moved by the rigid transform (t[i], q), by way of `op`: transform_point;
    transform_vector plus the transform's translation; transform_point of its inverse; or of its
    product with a second transform (a literal translation with the identity rotation, an
    axis-angle one, or the identity transform), applied whole or by its rotation and translation."""
    # wp.transformation and wp.transformf: the same rigid transform under its other names
    tf = call(rng.choice(("transform", "transform", "transformation", "transformf")), ld("t", v("i")), v("q"))
    if op == "transform_point":
        return [["let", "r", call("transform_point", tf, pt)]]
    body = [["let", "tf", tf]]
    if op == "transform_vector":
        return body + [["let", "r", bin_("+", call("transform_vector", v("tf"), pt), call("transform_get_translation", v("tf")))]]
    if op == "transform_inverse":
        return body + [["let", "r", call("transform_point", call("transform_inverse", v("tf")), pt)]]
    r = rng.random()
    if r < 0.4:
        other = call("transform", ["vec", "vec3", [scal.lit(-2, 2) for _ in range(3)]], call("quat_identity"))
    elif r < 0.8:
        other = call("transform", ["vec", "vec3", [scal.lit(-2, 2) for _ in range(3)]],
                     call("quat_from_axis_angle", ["vec", "vec3", [c(1.0), c(0.0), c(0.0)]], scal.lit(-3, 3)))
    else:
        other = call("transform_identity")
    pair = (v("tf"), other) if rng.random() < 0.5 else (other, v("tf"))
    body.append(["let", "tm", call("transform_multiply", *pair)])
    if rng.random() < 0.5:
        return body + [["let", "r", call("transform_point", v("tm"), pt)]]
    return body + [["let", "r", bin_("+", call("quat_rotate", call("transform_get_rotation", v("tm")), pt),
                                     call("transform_get_translation", v("tm")))]]


def _rotations(rng, name, seed, n):
    """A point rotated by an axis-angle quaternion (times a second one), directly, inversely or
    as a rigid transform."""
    axis = ArgSpec("axis", "array", "vec3", (n,))
    ang = ArgSpec("angle", "array", "float32", (n,), low=-3.0, high=3.0)
    pts = ArgSpec("p", "array", "vec3", (n,))
    args = [axis, ang, pts]
    scal = FloatExprs(rng, [ld("angle", v("i"))])
    ve = VecExprs(rng, {"vec3": [ld("p", v("i"))]}, scal)
    # a unit axis that can never be zero: normalize(axis + (0, 0, 3)) with |axis| components <= 2
    axis_ = call("normalize", bin_("+", ld("axis", v("i")), ["vec", "vec3", [c(0.0), c(0.0), c(3.0)]]))
    body = [["let", "q", call("quat_from_axis_angle", axis_, scal.live_expr(rng.randint(0, 2), ld("angle", v("i"))))]]
    unit = True  # q a unit quaternion: a rotation, whose matrix converts back (quat_from_matrix)
    if rng.random() < 0.3:
        q2 = call("quat_from_axis_angle", ["vec", "vec3", [c(0.0), c(1.0), c(0.0)]], scal.lit(-3, 3))
        body.append(["set", "q", call("mul", v("q"), q2)])
    elif rng.random() < 0.2:  # times a quaternion constructed from (x, y, z, w) components
        q2 = ["vec", rng.choice(("quat", "quatf")),
              [scal.lit(-1, 1) for _ in range(3)] + [scal.expr(1) if rng.random() < 0.5 else scal.lit(0.5, 1)]]
        body.append(["set", "q", call("mul", q2, v("q")) if rng.random() < 0.5 else call("mul", v("q"), q2)])
        unit = False
    elif rng.random() < 0.25:  # times the rotation of a roll, a pitch and a yaw (wp.quat_rpy)
        q2 = call("quat_rpy", *[scal.expr(1) if rng.random() < 0.3 else scal.lit(-3, 3) for _ in range(3)])
        body.append(["set", "q", call("mul", q2, v("q")) if rng.random() < 0.5 else call("mul", v("q"), q2)])
    ops = ("quat_rotate", "quat_rotate_inv", "transform_point", "quat_to_matrix", "quat_inverse",
           "transform_vector", "transform_inverse", "transform_multiply")
    op = rng.choice(ops + ("quat_from_matrix",) if unit else ops)
    pt = with_literal(rng, ve.vec("vec3", rng.randint(0, 2)))
    if op.startswith("transform"):
        args.append(ArgSpec("t", "array", "vec3", (n,)))
        body += _transformed(rng, op, scal, pt)
    elif op == "quat_to_matrix":  # the rotation as a matrix: its columns are the rotated axes
        body.append(["let", "r", ["mmul", call("quat_to_matrix", v("q")), pt]])
    elif op == "quat_from_matrix":  # q's rotation matrix back to a quaternion (+-q: the same rotation)
        qm = call("quat_from_matrix", call("quat_to_matrix", v("q")))
        body.append(["let", "r", call("quat_rotate", qm, pt)])
    elif op == "quat_inverse":  # Warp's inverse is the conjugate (q is a unit quaternion here)
        body.append(["let", "r", call("quat_rotate", call("quat_inverse", v("q")), pt)])
    else:
        body.append(["let", "r", call(op, v("q"), pt)])
    ve.vleaves["vec3"].append(v("r"))
    outs = [ArgSpec("out", "array", "vec3", (n,), role="out")]
    fin = ve.vec("vec3", rng.randint(0, 1)) if rng.random() < 0.4 else v("r")
    if not mentions(fin, v("r")):  # the rotated point is always part of the output
        fin = bin_(rng.choice("+-"), fin, v("r"))
    body.append(["store", "out", [v("i")], fin])
    if rng.random() < 0.4:
        outs.append(ArgSpec("qw", "array", "float32", (n,), role="out"))
        body.append(["store", "qw", [v("i")], ["comp", v("q"), [3]]])
    return KernelSpec(NAME, seed, name, (n,), tuple(args + outs), body)
