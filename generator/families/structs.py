"""@wp.struct arguments: a parameter block of scalar, integer and vector fields passed by value,
read field by field to drive arithmetic, branches and loop bounds."""

from generator.grammar import FloatExprs, VecExprs, c, cmp, ld, v
from generator.spec import ArgSpec, KernelSpec

NAME = "structs"
TARGET = "cpu"

FIELD_NAMES = ("scale", "offset", "gain", "bias", "lo", "hi", "rate", "weight")


def build(rng, name, seed):
    n = rng.choice((16, 32, 48))
    names = rng.sample(FIELD_NAMES, rng.randint(2, 4))
    fields = [(f, "float32") for f in names]
    use_vec = rng.random() < 0.5
    if use_vec:
        fields.append(("axis", "vec3"))
    use_steps = rng.random() < 0.4
    if use_steps:
        fields.append(("steps", "int32"))
    struct_name = f"{name}_Params"
    p = ArgSpec("p", "struct", struct_name, (), low=-1.0, high=1.0, fields=tuple(fields))
    x = ArgSpec("x", "array", "vec3" if use_vec else "float32", (n,))
    out = ArgSpec("y", "array", "float32", (n,), role="out")
    fl = [["fld", "p", f] for f in names]
    if use_vec:
        scal = FloatExprs(rng, fl + [["comp", ld("x", v("i")), [rng.randrange(3)]]])
        ve = VecExprs(rng, {"vec3": [ld("x", v("i")), ["fld", "p", "axis"]]}, scal)
        base = ve.scalar(rng.randint(1, 2))
        if base[0] != "call" or base[1] not in ("dot", "length", "length_sq"):
            base = ["bin", "+", base, ["call", "dot", [ld("x", v("i")), ["fld", "p", "axis"]]]]
    else:
        scal = FloatExprs(rng, fl + [ld("x", v("i"))])
        base = scal.live_expr(rng.randint(1, 2), ld("x", v("i")))
    body = [["let", "r", ["cast", "float32", base]]]
    scal.leaves.append(v("r"))
    if use_steps:  # an integer field bounds a loop: at most 4 steps, a guard in a loop Warp unrolls
        step = ["set", "r", ["call", "clamp", [scal.expr(2), c(-4.0), c(4.0)]]]
        body.append(["for", "k", c(0, "int32"), c(4, "int32"), [["if", cmp("<", v("k"), ["fld", "p", "steps"]), [step], [], []]]])
    if rng.random() < 0.5:
        body.append(["if", cmp(">", v("r"), rng.choice(fl)), [["set", "r", scal.expr(2)]], [], []])
    body.append(["store", "y", [v("i")], scal.live_expr(rng.randint(0, 2), v("r"))])
    return KernelSpec(NAME, seed, name, (n,), (p, x, out), body)
