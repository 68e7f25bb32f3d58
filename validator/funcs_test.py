"""The funcs family's constructs on the real compile: a helper returning two values unpacked at
its call, a generic (`typing.Any`) helper called with a float32 and a vec3, module constants read
as a value and as a loop's trip count, and a 4-D launch over 4-D arrays. The oracle is held to the
same arithmetic written out in NumPy here, Warp's CPU run and gradient to the oracle, the stored
C++ to one overload of the generic helper per argument type, the safety wall to exactly the new
forms (each near miss refused for its reason), and the spec check to the module constants (a
forged one fails, and the fault audit draws such forgeries)."""

import re
import sys

import numpy as np
import pytest

from generator import oracle
from generator.families import build_spec
from generator.render import render_source
from generator.spec import GENERIC, ArgSpec, HelperSpec, KernelSpec
from validator import checks

# near misses of the funcs family's forms: the safety wall refuses each, for this reason
NEAR_MISSES = {
    "import warp as wp\nK = wp.constant(2 ** 9)\n": "wp.constant at line 2 other than a module constant",
    "import warp as wp\nK = wp.constant(1099511627776)\n": "wp.constant at line 2 other than a module constant",
    "import warp as wp\nK = wp.constant(x)\n": "wp.constant at line 2 other than a module constant",
    "import warp as wp\nK = L = wp.constant(1)\n": "wp.constant at line 2 other than a module constant",
    "import warp as wp\nK = wp.constant\n": "wp.constant at line 2 other than a module constant",
    "import warp as wp\nrange = wp.constant(3)\n": "shadows a Python builtin",
    "import warp as wp\n\n@wp.kernel\ndef k():\n    q = wp.constant(1.0)\n": "wp.constant at line 5",
    "from os import path\n": "disallowed import",
    "from typing import List\nimport warp as wp\n": "disallowed import",
    "from typing import Any as wp\n": "disallowed import",
    "import warp as wp\nfrom typing import Any\n": "from-import at line 2",
    "from typing import Any\nimport warp as wp\n\n@wp.kernel\ndef k(a: Any):\n    pass\n": "parameter a of k",
    "import warp as wp\n\n@wp.func\ndef f(a: Any):\n    return a\n": "parameter a of f",
    "from typing import Any\nimport warp as wp\n\n@wp.func\ndef f(a: Any) -> Any:\n    return a\n": "return annotation",
}

V = lambda name: ["v", name]  # noqa: E731 - the spec's own shorthand
IJKL = [V("i"), V("j"), V("k"), V("l")]
DIM = (2, 2, 2, 3)


def _spec() -> KernelSpec:
    pair = HelperSpec("t4_pair", (("a", "float32"), ("b", "float32")), ("float32", "float32"),
                      [["ret", ["tuple", [["bin", "+", V("a"), V("b")], ["bin", "*", V("a"), V("b")]]]]])
    mix = HelperSpec("t4_mix", (("a", GENERIC), ("s", "float32")), GENERIC,
                     [["ret", ["bin", "+", ["bin", "*", V("a"), V("s")], V("a")]]])
    body = [
        ["unpack", ["p", "q"], ["hcall", "t4_pair", [["ld", "x", IJKL], V("t4_k")]]],
        ["let", "u", ["hcall", "t4_mix", [["ld", "w", [V("l")]], V("q")]]],
        ["let", "acc", ["cast", "float32", ["hcall", "t4_mix", [V("p"), ["c", 0.5, "float32"]]]]],
        ["for", "t", ["c", 0, "int32"], V("t4_n"), [["aug", "acc", "+", V("q")]]],
        ["store", "y", IJKL, ["bin", "+", V("acc"), ["comp", V("u"), [1]]]],
    ]
    args = (ArgSpec("x", "array", "float32", DIM), ArgSpec("w", "array", "vec3", (DIM[-1],)),
            ArgSpec("y", "array", "float32", DIM, role="out"))
    return KernelSpec("funcs", 0, "t4", DIM, args, body, (pair, mix), ("i", "j", "k", "l"),
                      constants=(("t4_k", "float32", 1.5), ("t4_n", "int32", 3)))


def _inputs():
    x = (np.arange(np.prod(DIM), dtype=np.float32).reshape(DIM) - 11.0) / 8.0
    w = (np.arange(DIM[-1] * 3, dtype=np.float32).reshape(DIM[-1], 3) - 4.0) / 4.0
    return {"x": x, "w": w, "y": np.zeros(DIM, dtype=np.float32)}


def test_the_oracle_evaluates_the_constructs_as_numpy_does():
    spec, inputs = _spec(), _inputs()
    x, w = inputs["x"].astype(np.float64), inputs["w"].astype(np.float64)
    p, q = x + 1.5, x * 1.5  # t4_pair(x, t4_k)
    u1 = w[:, 1][None, None, None, :] * q + w[:, 1][None, None, None, :]  # component 1 of t4_mix(w[l], q)
    acc = (p * 0.5 + p) + 3 * q  # t4_mix(p, 0.5), then t4_n = 3 steps of + q
    for lanes in (True, False):
        with oracle.lanes(lanes):
            got = oracle.run_oracle(spec, inputs)["y"]
        np.testing.assert_allclose(got, acc + u1, rtol=1e-12)


@pytest.mark.parametrize("source,reason", list(NEAR_MISSES.items()))
def test_the_safety_wall_admits_the_new_forms_exactly(source, reason):
    v = checks.check_safety(source)
    assert v["status"] == "failed" and reason in v["reason"], v


def test_the_rendered_module_holds_each_construct_and_passes_the_safety_wall():
    source = render_source(_spec())
    for line in ("from typing import Any", "t4_k = wp.constant(1.5)", "t4_n = wp.constant(3)",
                 "def t4_pair(a: wp.float32, b: wp.float32):", "    return (a + b, a * b)",
                 "def t4_mix(a: Any, s: wp.float32):", "    p, q = t4_pair(x[i, j, k, l], t4_k)",
                 "    for t in range(0, t4_n):", "    i, j, k, l = wp.tid()",
                 "def t4(x: wp.array4d(dtype=wp.float32), w: wp.array(dtype=wp.vec3), y: wp.array4d(dtype=wp.float32)):"):
        assert line in source.split("\n"), line
    assert checks.check_safety(source) == checks.PASSED
    spec = _spec()
    assert KernelSpec.from_json(spec.to_json()) == spec


def test_warp_runs_the_constructs_as_the_oracle_and_compiles_one_overload_per_type():
    spec = _spec()
    drawn = [build_spec("funcs", s) for s in range(3)]
    results = checks.check_batch([spec, *drawn])
    for s, res in zip([spec, *drawn], results):
        assert res.error is None, f"{s.name}: {res.error}"
        for check in ("compile_cpu", "compile_cuda", "execute_cpu", "execute_backward_cpu"):
            assert res.verdicts[check].passed, f"{s.name} {check}: {res.verdicts[check]}"
    for target in ("cpp", "cuda"):
        forward = results[0].ir[target]["forward"]
        # the generic helper twice, a float32 and a vec3 instance; the two-valued one returns by reference
        heads = re.findall(r"^static CUDA_CALLABLE (.+) t4_mix_0\(|^static (.+) t4_mix_0\(", forward, re.M)
        kinds = sorted("vec_t<3" in "".join(h) for h in heads)
        assert kinds == [False, True], (target, heads)
        assert re.search(r"^(static CUDA_CALLABLE |static )void t4_pair_0\(", forward, re.M), target


def test_a_forged_module_constant_is_caught_by_the_spec_check_and_the_fault_audit_draws_one():
    """A record whose constant differs from what (family, seed) draws fails `spec`, even as a
    coherent forgery (source re-rendered, derived fields recomputed); the fault audit's spec
    edits pick the constants of a spec that has some."""
    import json
    import random

    from pipeline import chunk
    from validator import inject_source, verdicts

    spec = next(s for s in (build_spec("funcs", k) for k in range(20)) if len(s.constants) == 2)
    res = checks.check_batch([spec])[0]
    record = chunk.build_record(spec, render_source(spec), "cpu", res)
    assert verdicts.check_static(record) == checks.PASSED
    edits = [(inject_source.spec_edit, "spec.constants["), (inject_source.spec_forgery, "coherent: spec.constants[")]
    for inject, prefix in edits:
        drawn = [inject([record], 0, random.Random(k)) for k in range(40)]
        found = [inj for inj in drawn if inj is not None and inj.detail.startswith(prefix)]
        assert found, inject.__name__
        forged = json.loads(found[0].line)
        assert forged["spec"]["constants"] != record["spec"]["constants"]
        verdict = verdicts.check_static(forged)
        assert verdict["status"] == "failed" and "constants differs" in verdict["reason"], verdict


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
