"""User @wp.func helpers: two to four of them, later ones calling earlier ones (nested calls),
called from the kernel, sometimes from a loop (its trip count a literal or wp.static of a literal
expression) or a branch."""

from generator.grammar import FloatExprs, c, helper_spec, ld, v
from generator.spec import ArgSpec, KernelSpec

NAME = "helpers"
TARGET = "cpu"


def _calls(tree, name) -> bool:
    if not isinstance(tree, list):
        return False
    if len(tree) > 1 and tree[0] == "hcall" and tree[1] == name:
        return True
    return any(_calls(x, name) for x in tree)


def build(rng, name, seed):
    n = rng.choice((16, 32, 48))
    ins = [ArgSpec(f"x{k}", "array", "float32", (n,)) for k in range(rng.randint(1, 3))]
    helpers = []
    for k in range(rng.randint(2, 4)):
        callable_ = [(h.name, len(h.params)) for h in helpers if rng.random() < 0.7]
        h = helper_spec(rng, f"{name}_h{k}", rng.randint(1, 3), callable_ or None)
        if helpers and not _calls(h.body, helpers[-1].name):
            # chain: every helper calls the one before it, so all of them are live code
            prev = helpers[-1]
            ret = h.body[-1]
            extra = [v(h.params[m % len(h.params)][0]) for m in range(len(prev.params) - 1)]
            h.body[-1] = ["ret", ["hcall", prev.name, [ret[1]] + extra]]
        helpers.append(h)
    calls = [(h.name, len(h.params)) for h in helpers]
    ex = FloatExprs(rng, [ld(a.name, v("i")) for a in ins], calls)
    last = helpers[-1]  # always called, so the nesting chain is live
    first_call = ["hcall", last.name, [ex.live_expr(rng.randint(0, 2)) for _ in last.params]]
    shape = rng.random()
    body = []
    if shape < 0.4:  # h is loop-carried: declare it dynamic (a cast), then iterate a helper
        body.append(["let", "h", ["cast", "float32", first_call]])
        hname, arity = rng.choice(calls)
        again = ["hcall", hname, [v("h")] + [ex.expr(1) for _ in range(arity - 1)]]
        # clamp the loop-carried value: an iterated helper chain can otherwise grow past float32's range
        again = ["call", "clamp", [again, c(-8.0), c(8.0)]]
        trips = rng.randint(2, 4)
        stop = ["c", trips, "int32"]
        if rng.random() < 0.4:  # the trip count as wp.static(<literal expression>): an unrolled loop
            a = rng.randint(1, trips - 1)
            stop = ["call", "static", [["bin", "*", ["c", 2, "int32"], ["c", 2, "int32"]] if trips == 4 and a == 2
                                       else ["bin", "+", ["c", a, "int32"], ["c", trips - a, "int32"]]]]
        body.append(["for", "k", ["c", 0, "int32"], stop, [["set", "h", again]]])
    elif shape < 0.7:
        body.append(["let", "h", ["cast", "float32", first_call]])
        body.append(["if", ex.cond(1), [["set", "h", ex.expr(2)]], [], []])
    else:
        body.append(["let", "h", first_call])
    ex.leaves.append(v("h"))
    out = ArgSpec("y", "array", "float32", (n,), role="out")
    body.append(["store", "y", [v("i")], ex.live_expr(rng.randint(1, 3), v("h"))])
    return KernelSpec(NAME, seed, name, (n,), tuple(ins + [out]), body, tuple(helpers))
