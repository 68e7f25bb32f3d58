"""Arrays of @wp.struct elements and nested structs: an input array of particles read field by
field (`pts[i].mass`, a neighbour's `pts[j].vel`), whose elements may hold a struct of their own
(`pts[i].frame.scale`), and a parameter block holding a nested struct (`p.frame.origin`)."""

from generator.grammar import FloatExprs, VecExprs, bin_, c, call, cmp, ld, using_all, v
from generator.spec import STRUCT_ARRAY, ArgSpec, KernelSpec

NAME = "struct_arrays"
TARGET = "cpu"

_ELEMENT_FIELDS = (("vel", "vec3"), ("charge", "float32"), ("radius", "float32"))


def _frame(rng) -> tuple:
    """The nested struct: an origin, a scale and maybe a twist, in a drawn order."""
    fields = [("origin", "vec3"), ("scale", "float32")] + ([("twist", "float32")] if rng.random() < 0.5 else [])
    rng.shuffle(fields)
    return tuple(fields)


def _reads(fields, read) -> tuple[list, list]:
    """(scalar reads, vec3 reads) of every value field, `read(path)` making the expression."""
    scalars, vecs = [], []
    for f in fields:
        if len(f) == 3:
            s, w = _reads(f[2], lambda path, head=f[0]: read(f"{head}.{path}"))
            scalars, vecs = scalars + s, vecs + w
        else:
            (vecs if f[1] == "vec3" else scalars).append(read(f[0]))
    return scalars, vecs


def build(rng, name, seed):
    n = rng.choice((16, 24, 32, 48))
    frame = (f"{name}_Frame", _frame(rng))
    element = [("mass", "float32"), *rng.sample(_ELEMENT_FIELDS, rng.randint(1, 2))]
    if rng.random() < 0.5:  # the elements hold the nested struct too
        element.append(("frame", *frame))
    rng.shuffle(element)
    params = [("gain", "float32"), ("frame", *frame)] + ([("steps", "int32")] if rng.random() < 0.4 else [])
    p = ArgSpec("p", "struct", f"{name}_Params", (), low=-1.0, high=1.0, fields=tuple(params))
    pts = ArgSpec("pts", STRUCT_ARRAY, f"{name}_Particle", (n,), low=-1.0, high=1.0, fields=tuple(element))
    x = ArgSpec("x", "array", "float32", (n,))
    out = ArgSpec("y", "array", "float32", (n,), role="out")
    body = []
    others = [v("i")]
    if rng.random() < 0.5:  # a neighbour's element, clamped into the array
        step = rng.choice((("+", "min", n - 1), ("-", "max", 0)))
        body.append(["let", "j", call(step[1], bin_(step[0], v("i"), c(1, "int32")), c(step[2], "int32"))])
        others.append(v("j"))
    elem_s, elem_v = [], []
    for idx in others:
        s, w = _reads(pts.fields, lambda path, idx=idx: ["sld", "pts", [idx], path])
        elem_s, elem_v = elem_s + s, elem_v + w
    par_s, par_v = _reads([f for f in params if f[1] != "int32"], lambda path: ["fld", "p", path])
    load = ld("x", v("i"))
    scal = FloatExprs(rng, elem_s + par_s + [load])
    ve = VecExprs(rng, {"vec3": elem_v + par_v}, scal)
    base = ve.scalar(rng.randint(1, 3))
    nested = rng.choice([e for e in elem_s + elem_v + par_s + par_v if "." in e[-1]])
    if nested in elem_v + par_v:
        nested = call("dot", nested, rng.choice(elem_v + par_v))
    # every kernel reads x (its gradient's input), an element and a nested field
    base = using_all(rng, base, [load, rng.choice(elem_s), nested])
    body.append(["let", "r", ["cast", "float32", base]])
    scal.leaves.append(v("r"))
    if ("steps", "int32") in params:  # an integer field bounds a loop: at most 3 steps, in a loop Warp unrolls
        update = ["set", "r", call("clamp", scal.live_expr(2, v("r")), c(-4.0), c(4.0))]
        body.append(["for", "k", c(0, "int32"), c(3, "int32"),
                     [["if", cmp("<", v("k"), ["fld", "p", "steps"]), [update], [], []]]])
    if rng.random() < 0.5:
        body.append(["if", cmp(">", v("r"), rng.choice(elem_s + par_s)), [["set", "r", scal.live_expr(2)]], [], []])
    body.append(["store", "y", [v("i")], scal.live_expr(rng.randint(0, 2), v("r"))])
    return KernelSpec(NAME, seed, name, (n,), (p, pts, x, out), body)
