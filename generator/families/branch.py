"""Branching: if/elif/else chains on computed conditions (an integer flag compared, or taken as
a truth value with Python's bool(x)), and wp.where selects."""

from generator.grammar import FloatExprs, c, cmp, ld, v
from generator.spec import ArgSpec, KernelSpec

NAME = "branch"
TARGET = "cpu"


def build(rng, name, seed):
    n = rng.choice((16, 32, 48, 64))
    ins = [ArgSpec(f"x{k}", "array", "float32", (n,)) for k in range(rng.randint(1, 3))]
    flags = rng.random() < 0.4
    if flags:
        ins.append(ArgSpec("flag", "array", "int32", (n,), low=0, high=3))
    out = ArgSpec("y", "array", "float32", (n,), role="out")
    ex = FloatExprs(rng, [ld(a.name, v("i")) for a in ins if a.dtype == "float32"])
    body = [["let", "r", ex.expr(rng.randint(1, 2))]]
    ex.leaves.append(v("r"))

    def cond():
        if flags and rng.random() < 0.4:
            if rng.random() < 0.3:  # bool(flag[i]): true for flags 1..3
                truth = ["cast", "bool", ld("flag", v("i"))]
                return ["not", truth] if rng.random() < 0.3 else truth
            return cmp(rng.choice(("==", "!=")), ld("flag", v("i")), c(rng.randint(0, 3), "int32"))
        if rng.random() < 0.2:
            return cmp("==", ["mod", v("i"), c(rng.randint(2, 4), "int32")], c(0, "int32"))
        return ex.cond(rng.randint(1, 2))

    def arm():
        stmts = [["set", "r", ex.live_expr(rng.randint(1, 3))]]
        if rng.random() < 0.3:
            stmts.append(["aug", "r", rng.choice("+-*"), ex.expr(1)])
        return stmts

    elifs = [[cond(), arm()] for _ in range(rng.randint(0, 2))]
    else_ = arm() if rng.random() < 0.7 else []
    body.append(["if", cond(), arm(), elifs, else_])
    if rng.random() < 0.5:
        body.append(["set", "r", ["where", cond(), ex.expr(2), v("r")]])
    body.append(["store", "y", [v("i")], ex.live_expr(rng.randint(0, 2), v("r")) if rng.random() < 0.5 else v("r")])
    return KernelSpec(NAME, seed, name, (n,), tuple(ins + [out]), body)
