"""The struct_arrays family's constructs on the real compile: an input array of @wp.struct elements
read field by field (`pts[i].mass`, a neighbour's `pts[j].vel`), a struct nested in those elements
and in a parameter block (`pts[i].frame.scale`, `p.frame.origin`). The oracle is held to the same
arithmetic written out in NumPy here, Warp's CPU run and gradient to the oracle, the stored C++ and
CUDA to holding the nested struct's definition, the record to the pair schema (and the schema to
refusing malformed struct fields), the safety wall to exactly the new forms (each near miss refused
for its reason), and the spec check to the struct fields (a forged field's dtype fails it, and the
fault audit draws such forgeries)."""

import copy
import json
import random
import sys

import numpy as np
import pytest

from generator import oracle, records
from generator.families import build_spec
from generator.inputs import make_inputs
from generator.render import render_source
from generator.spec import STRUCT_ARRAY, ArgSpec, KernelSpec, flat_fields, struct_classes
from validator import checks

_S = "@wp.struct\nclass F:\n    s: wp.float32\n\n@wp.struct\nclass P:\n    m: wp.float32\n    f: F\n\n"
_K = "import warp as wp\n\n" + _S + "@wp.kernel\ndef k(p: P, pts: wp.array(dtype=P), y: wp.array(dtype=wp.float32)):\n"
# near misses of the family's forms: the safety wall refuses each, for this reason
NEAR_MISSES = {
    _K + "    y[0] = pts[0].f.s + p.f.s + pts[1].m\n": None,  # the forms themselves: admitted
    "import warp as wp\n\n@wp.struct\nclass P:\n    f: F\n\n@wp.struct\nclass F:\n    s: wp.float32\n":
        "struct field at line 5",  # a class defined below
    "import warp as wp\n\n@wp.struct\nclass P:\n    f: P\n": "struct field at line 5",  # itself
    "import warp as wp\n\n@wp.struct\nclass P:\n    f: open\n": "struct field at line 5",
    # a field typed by a name no class has, read through (the allowlist runs before the field check)
    "import warp as wp\n\n@wp.struct\nclass P:\n    f: Q\n\n@wp.kernel\ndef k(p: P):\n    y = p.f.g.h\n":
        "attribute access .h",
    _K + "    pts[0].m = 1.0\n": "attribute access .m",  # a field written
    _K + "    p.f.s = 1.0\n": "attribute access .s",
    _K + "    y[0] = pts[0][0].m\n": "attribute access .m",
    _K + "    y[0] = p.f.t\n": "attribute access .t",  # not a field of F
    _K + "    y[0] = p.m.real\n": "attribute access .real",  # a value field is no struct
    _K + "    y[0] = y[0].m\n": "attribute access .m",  # an array of floats
    _K + "    y[0] = p.f.__class__\n": "attribute access .__class__",
    _K + "    y[0] = (p if True else p).m\n": "attribute access .m",
    "import warp as wp\n\n" + _S + "@wp.kernel\ndef k(pts: wp.array2d(dtype=P)):\n    pass\n": "parameter pts of k",
    "import warp as wp\n\n" + _S + "@wp.kernel\ndef k(pts: wp.array(dtype=P, ndim=1)):\n    pass\n":
        "parameter pts of k",
    "import warp as wp\n\n" + _S + "@wp.kernel\ndef k(pts: wp.array(dtype=Q)):\n    pass\n": "parameter pts of k",
}

V = lambda name: ["v", name]  # noqa: E731 - the spec's own shorthand
N = 6
FRAME = ("t_Frame", (("origin", "vec3"), ("scale", "float32")))
P_FIELDS = (("gain", "float32"), ("frame", *FRAME))
E_FIELDS = (("mass", "float32"), ("frame", *FRAME), ("vel", "vec3"))


def _spec() -> KernelSpec:
    j = ["call", "min", [["bin", "+", V("i"), ["c", 1, "int32"]], ["c", N - 1, "int32"]]]
    sld = lambda idx, path: ["sld", "pts", [idx], path]  # noqa: E731
    body = [
        ["let", "j", j],
        ["let", "r", ["bin", "*", ["ld", "x", [V("i")]], sld(V("i"), "mass")]],
        ["let", "d", ["call", "dot", [sld(V("j"), "vel"), ["fld", "p", "frame.origin"]]]],
        ["store", "y", [V("i")], ["bin", "+", ["bin", "+", V("r"), ["bin", "*", V("d"), sld(V("i"), "frame.scale")]],
                                  ["bin", "*", ["fld", "p", "gain"], ["comp", sld(V("i"), "frame.origin"), [2]]]]],
    ]
    args = (ArgSpec("p", "struct", "t_Params", (), fields=P_FIELDS),
            ArgSpec("pts", STRUCT_ARRAY, "t_Particle", (N,), fields=E_FIELDS),
            ArgSpec("x", "array", "float32", (N,)), ArgSpec("y", "array", "float32", (N,), role="out"))
    return KernelSpec("struct_arrays", 0, "t", (N,), args, body)


def test_the_oracle_evaluates_the_constructs_as_numpy_does():
    spec = _spec()
    inputs = make_inputs(spec)
    pts, p = inputs["pts"], inputs["p"]
    assert sorted(pts) == ["frame.origin", "frame.scale", "mass", "vel"] and pts["vel"].shape == (N, 3)
    assert sorted(p) == ["frame.origin", "frame.scale", "gain"] and p["frame.origin"].shape == (3,)
    f64 = lambda a: np.asarray(a, dtype=np.float64)  # noqa: E731
    j = np.minimum(np.arange(N) + 1, N - 1)
    want = (f64(inputs["x"]) * f64(pts["mass"]) + (f64(pts["vel"])[j] @ f64(p["frame.origin"])) * f64(pts["frame.scale"])
            + float(p["gain"]) * f64(pts["frame.origin"])[:, 2])
    for lanes in (True, False):
        with oracle.lanes(lanes):
            got = oracle.run_oracle(spec, inputs)["y"]
        np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("source,reason", list(NEAR_MISSES.items()))
def test_the_safety_wall_admits_the_new_forms_exactly(source, reason):
    v = checks.check_safety(source)
    if reason is None:
        assert v == checks.PASSED, v
    else:
        assert v["status"] == "failed" and reason in v["reason"], v


def test_the_rendered_module_defines_the_nested_struct_first_and_round_trips():
    spec = _spec()
    source = render_source(spec)
    lines = source.split("\n")
    for line in ("class t_Frame:", "    frame: t_Frame", "    y[i] = r + d * pts[i].frame.scale + p.gain * pts[i].frame.origin[2]",
                 "    d = wp.dot(pts[j].vel, p.frame.origin)",
                 "def t(p: t_Params, pts: wp.array(dtype=t_Particle), x: wp.array(dtype=wp.float32), "
                 "y: wp.array(dtype=wp.float32)):"):
        assert line in lines, line
    assert lines.index("class t_Frame:") < lines.index("class t_Params:") < lines.index("class t_Particle:")
    assert source.count("class t_Frame:") == 1  # one class for both holders
    assert [c for c, _ in struct_classes(spec.args)] == ["t_Frame", "t_Params", "t_Particle"]
    assert flat_fields(E_FIELDS) == [("mass", "float32"), ("frame.origin", "vec3"), ("frame.scale", "float32"),
                                     ("vel", "vec3")]
    assert checks.check_safety(source) == checks.PASSED
    assert KernelSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec


def _record(spec):
    from pipeline import chunk
    res = checks.check_batch([spec])[0]
    assert res.error is None, res.error
    return chunk.build_record(spec, render_source(spec), "cpu", res), res


def test_warp_runs_the_constructs_as_the_oracle_and_the_ir_holds_the_nested_struct():
    spec = _spec()
    drawn = [build_spec("struct_arrays", s) for s in range(3)]
    results = checks.check_batch([spec, *drawn])
    for s, res in zip([spec, *drawn], results):
        assert res.error is None, f"{s.name}: {res.error}"
        for check in ("compile_cpu", "compile_cuda", "execute_cpu"):
            assert res.verdicts[check].passed, f"{s.name} {check}: {res.verdicts[check]}"
        # the gradient: passed (a drawn kernel may sit on a kink of a clamp: inconclusive, never failed)
        grad = res.verdicts["execute_backward_cpu"]
        assert grad.passed or (s is not spec and grad.status == "inconclusive"), f"{s.name}: {grad}"
    for target in ("cpp", "cuda"):  # the nested struct is a field, never a parameter: cut in all the same
        forward = results[0].ir[target]["forward"]
        assert forward.index("struct t_Frame_") < forward.index("struct t_Particle_"), target
        assert "struct t_Params_" in forward, target


def test_the_record_meets_the_pair_schema_and_the_schema_refuses_malformed_struct_fields():
    from validator import verdicts
    record, _ = _record(_spec())
    assert verdicts.check_schema(record) == checks.PASSED
    assert record["io"]["inputs"]["pts.frame.origin"]["shape"] == [N, 3]
    assert record["io"]["inputs"]["p.frame.scale"]["shape"] == []
    assert [a["kind"] for a in record["args"]] == ["struct", STRUCT_ARRAY, "array", "array"]
    bad = {
        "a nested class that is no identifier": lambda r: r["args"][1]["fields"][1].__setitem__(1, "t Frame"),
        "a nested struct without fields": lambda r: r["args"][1]["fields"][1].__setitem__(2, []),
        "a value field of no dtype": lambda r: r["args"][1]["fields"][0].__setitem__(1, "float128"),
        "a struct array without fields": lambda r: r["args"][1].pop("fields"),
        "fields on a plain array": lambda r: r["args"][2].__setitem__("fields", [["a", "float32"]]),
        "a field of four parts": lambda r: r["args"][0]["fields"][0].append("x"),
        "an older record": lambda r: r.__setitem__("schema_version", "2.3.0"),
    }
    for what, edit in bad.items():
        forged = copy.deepcopy(record)
        edit(forged)
        assert verdicts.check_schema(forged)["status"] == "failed", what


def test_a_forged_struct_field_is_caught_by_the_spec_check_and_the_fault_audit_draws_one():
    """A record whose struct array's (or nested struct's) field differs from what (family, seed)
    draws fails `spec`, even as a coherent forgery (source re-rendered, inputs and args
    recomputed); the fault audit's spec edits pick such fields."""
    from validator import inject_source, verdicts

    spec = build_spec("struct_arrays", 56)
    record, _ = _record(spec)
    assert verdicts.check_static(record) == checks.PASSED
    for inject, prefix in ((inject_source.spec_edit, "spec.args["), (inject_source.spec_forgery, "coherent: spec.args[")):
        drawn = [inject([record], 0, random.Random(k)) for k in range(60)]
        found = [inj for inj in drawn if inj is not None and inj.detail.startswith(prefix) and " dtype " in inj.detail]
        assert found, inject.__name__
        forged = json.loads(found[0].line)
        assert forged["spec"]["args"] != record["spec"]["args"]
        verdict = verdicts.check_static(forged)
        assert verdict["status"] == "failed" and "args differs" in verdict["reason"], verdict
    # and the inputs a coherent forgery recomputes follow its own fields
    forged_spec = KernelSpec.from_json(json.loads(found[0].line)["spec"])
    assert records.inputs_json(forged_spec, make_inputs(forged_spec)).keys() == record["io"]["inputs"].keys()


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
