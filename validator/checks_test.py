"""The checks on real Warp compiles: CPU execution equals the oracle and records fit the schema,
hostile sources are rejected unrun, every family compiles for both targets, `compare` catches each
kind of wrong or vacuous output, the schema check (compiled and jsonschema) names the field, the
safety walk, verdicts round-trip to the stored form, races and launch-size-only matches are
rejected, and the second launch sizes."""

import json
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from pipeline import chunk
from generator.families import FAMILIES, build_spec
from generator.inputs import make_inputs, second_launch
from generator.oracle import run_oracle
from generator.render import render_source
from generator.strategies import specs
from validator import checks


@settings(max_examples=4)
@given(st.lists(specs(), min_size=4, max_size=6, unique_by=lambda s: s.name))
def test_warp_cpu_execution_equals_the_oracle_and_records_fit_the_schema(batch):
    results = checks.check_batch(batch)
    for spec, res in zip(batch, results):
        assert res.error is None, f"{spec.family}/{spec.seed}: {res.error}"
        assert res.verdicts["execute_cpu"].passed, f"{spec.family}/{spec.seed}: {res.verdicts['execute_cpu']}"
        record = chunk.build_record(spec, render_source(spec), "cpu", res)
        assert checks.check_schema(record) == checks.PASSED, f"{spec.family}/{spec.seed}: record breaks the schema"


HOSTILE = {
    "import os\n": "disallowed import",
    "import warp as wp\nimport os\n": "disallowed import",
    "import warp as wp\n\n@wp.kernel\ndef k(a: wp.array(dtype=float)):\n    __import__('os')\n": "__import__",
    "import warp as wp\n\n@wp.kernel\ndef k(a: wp.array(dtype=float)):\n    open('/etc/passwd')\n": "call of open",
    "import warp as wp\n\n@wp.kernel\ndef k(a: wp.array(dtype=float)):\n    a.__class__\n": "disallowed attribute access",
    "import warp as wp\n\n@wp.kernel\ndef k(a: wp.array(dtype=float)):\n    wp._src.os\n": "disallowed attribute access",
    "import warp as wp\nprint(1)\n": "call of print",
    "import warp as wp\nx = 1\n": "top-level Assign",
    "import warp as wp\n\n@evil\ndef k():\n    pass\n": "decorators",
    "import warp as wp\n\n@wp.kernel\ndef k():\n    lambda: 0\n": "disallowed syntax Lambda",
    "def (": "does not parse",
    "import warp as wp\n\n@wp.struct\nclass S(object):\n    x: wp.float32\n": "plain @wp.struct",
    "import warp as wp\n\n@wp.struct\nclass S:\n    def f(self):\n        pass\n": "only declare typed fields",
    "import warp as wp\n\n@wp.struct\nclass S:\n    x: wp.float32 = 1.0\n": "only declare typed fields",
    "import warp as wp\n\n@wp.kernel\ndef k(a: wp.array(dtype=float)):\n    a.ptr\n": "disallowed attribute access .ptr",
    "import warp as wp\n\n@wp.struct\nclass S:\n    x: wp.float32\n\n@wp.kernel\ndef k(p: S):\n    p.y\n": "disallowed attribute access .y",
    "import warp as wp\n\n@wp.kernel\ndef k():\n    class T:\n        pass\n": "nested class",
    "import warp as wp\n\n@wp.kernel\ndef k():\n    x: int = 1\n": "annotated assignment outside a struct",
}


@pytest.mark.parametrize("source,reason", list(HOSTILE.items()))
def test_hostile_sources_are_rejected_without_running(source, reason):
    v = checks.check_safety(source)
    assert v["status"] == "failed" and reason in v["reason"], v


@given(specs())
def test_generated_sources_pass_the_safety_check(spec):
    assert checks.check_safety(render_source(spec)) == checks.PASSED


def test_every_family_compiles_for_cpu_and_cuda_and_matches_its_oracle():
    batch = [build_spec(f, s) for f in sorted(FAMILIES) for s in (11, 12)]
    results = checks.check_batch(batch)
    for spec, res in zip(batch, results):
        assert res.error is None, f"{spec.family}/{spec.seed}: {res.error}"
        assert res.verdicts["execute_cpu"].passed, f"{spec.family}/{spec.seed}: {res.verdicts['execute_cpu']}"
        assert res.ir["ptx"]["sm_90"]["forward"], f"{spec.family}: no PTX"
        small = second_launch(spec)
        assert res.coverage["launch_dims"] == [list(spec.dim)] + ([list(small)] if small else []), spec.family
        # every grid family's kernels have a dimension above 2, so every one runs at two sizes
        assert (small is None) == (spec.launch == "tiled"), f"{spec.family}: second launch {small}"


def test_compare_catches_each_kind_of_wrong_output():
    spec = build_spec("arith", 3)
    expected = next(iter(run_oracle(spec, make_inputs(spec)).values()))
    good = expected.astype(np.float32)
    assert checks.compare("y", good, expected, "float32") is None
    bad = good.copy()
    bad[5] += 0.01 * (abs(bad[5]) + 1)
    assert "mismatch at flat index 5" in checks.compare("y", bad, expected, "float32")
    nan = good.copy()
    nan[0] = np.nan
    assert "NaN/Inf" in checks.compare("y", nan, expected, "float32")
    assert "shape" in checks.compare("y", good[:-1], expected, "float32")
    assert "dtype" in checks.compare("y", good.astype(np.float64), expected, "float32")
    const = np.full_like(good, good[0])
    assert checks.compare("y", const, expected, "float32") is not None


def test_vacuous_output_is_rejected_even_within_tolerance():
    expected = np.linspace(0, 1e-5, 16)
    assert "vacuous" in checks.compare("y", np.zeros(16, np.float32), expected, "float32")


def test_saturated_output_below_float_resolution_is_not_vacuous():
    expected = np.tanh(np.linspace(9.5, 12.0, 16))  # 1 - 1e-8 .. 1 - 1e-10: all 1.0 in float32
    assert np.ptp(expected) > 0 and np.all(expected.astype(np.float32) == 1.0)
    assert checks.compare("f", np.ones(16, np.float32), expected, "float32") is None


def test_schema_violations_name_the_field():
    assert checks.check_schema({"schema_version": "1.1.0"})["status"] == "failed"
    assert "required" in checks.check_schema({"schema_version": "1.1.0"})["reason"]


def _schema_test_records() -> list[dict]:
    """Records as `chunk.build_record` makes them, without Warp (stand-in IR and toolchain): a
    codegen-only struct kernel, and a validated one with PTX, outputs and a gradient example."""
    out = []
    for family, seed, full in (("structs", 3, False), ("arith", 4, True)):
        spec = build_spec(family, seed)
        inputs = make_inputs(spec)
        ir = {"cpp": {"forward": "void f() {}", "backward": "void b() {}"},
              "cuda": {"forward": "void f() {}", "backward": "void b() {}"}}
        backend = {"options": {"block_dim": 1}, "compiler": None}
        toolchain = {"warp_lang": "1.0", "cuda_toolkit": None, "nvrtc": None, "llvm": "18.1", "ptx_archs": ["sm_90"],
                     "cpu": backend, "cuda": {"options": {"block_dim": 256}, "compiler": {"fast_math": False}}}
        verdict = checks.PASSED if full else checks.not_run(checks.NO_VALIDATE)
        outputs, grad = {}, None
        if full:
            ir["ptx"] = {"sm_90": {"forward": ".entry f() {}"}}
            outputs = run_oracle(spec, inputs)
            arr = np.linspace(-1, 1, 4)
            grad = {"w": {"y": arr}, "v": [{"x": arr}], "g": {"x": arr}, "dot": [0.5], "fd": [0.5], "point": "seeded"}
        verdicts = {k: checks.Verdict.from_json(k, verdict) for k in checks.KERNEL_CHECKS}
        if full:
            verdicts["execute_gpu"] = checks.Verdict("execute_gpu", "passed", max_abs_diff=0.0)
        res = checks.KernelResult(ir=ir, inputs=inputs, outputs=outputs, verdicts=verdicts, grad=grad,
                                  coverage=checks.coverage(spec, set()), toolchain=toolchain)
        out.append(chunk.build_record(spec, render_source(spec), "cpu", res))
    return out


# values put in place of every part of a record: each JSON type, the edge values the schema's
# keywords test (integral floats, bools next to integers, empty and wrong-kind containers)
_SCHEMA_PROBES = [None, True, 0, -1, 1.0, 1.5, 2 ** 63, "", "x", "passed", "sm_90", [], [1], ["a", "b"], {},
                  {"status": "failed"}]


def _mutations(record):
    """The record with each part (objects and the first item of lists, to depth 5) deleted,
    replaced by each probe, given an unknown key or an extra item."""
    def paths(x, pre=()):
        yield pre
        if len(pre) < 5 and isinstance(x, dict):
            for k, v in x.items():
                yield from paths(v, pre + (k,))
        elif len(pre) < 5 and isinstance(x, list) and x:
            yield from paths(x[0], pre + (0,))

    def at(x, path):
        for k in path:
            x = x[k]
        return x

    for path in list(paths(record)):
        for probe in (["delete"] if path else []) + _SCHEMA_PROBES + ["extra"]:
            m = json.loads(json.dumps(record))
            if probe == "extra":
                target = at(m, path)
                if isinstance(target, dict):
                    target["zz_unknown"] = 1
                elif isinstance(target, list):
                    target.append("x")
                else:
                    continue
            elif probe == "delete":
                del at(m, path[:-1])[path[-1]]
            elif path:
                at(m, path[:-1])[path[-1]] = probe
            else:
                m = probe
            yield path, probe, m


def test_the_compiled_schema_check_agrees_with_jsonschema_on_every_mutation():
    # check_schema passes a record on the compiled predicate alone: it must never pass one that
    # jsonschema's Draft 2020-12 validator rejects, nor (less harmful) fail one it accepts
    from validator import verdicts
    fast, slow = verdicts._pair_fast_check(), verdicts._pair_validator()
    assert fast is not None, "the pair schema no longer compiles: check_schema falls back to jsonschema for every record"
    n = 0
    for record in _schema_test_records():
        assert fast(record) and slow.is_valid(record) and checks.check_schema(record) == checks.PASSED
        for path, probe, m in _mutations(record):
            want = slow.is_valid(m)
            assert fast(m) == want, f"{'/'.join(map(str, path))} := {probe!r}: jsonschema says valid={want}"
            n += 1
    assert n > 3000


def test_the_schema_compiler_refuses_what_it_does_not_know():
    import jsonschema
    from validator import verdicts
    for schema in ({"uniqueItems": True}, {"properties": {"a": {"not": {}}}}, {"$ref": "other.json#/x"},
                   {"patternProperties": {"^a": {}}, "additionalProperties": False}, {"format": "email"}):
        with pytest.raises(verdicts._Unsupported):
            verdicts._compile_schema(jsonschema.Draft202012Validator(schema))
    ok = verdicts._compile_schema(jsonschema.Draft202012Validator({"type": "integer", "x-note": 1}))
    assert ok(1) and ok(2.0) and not ok(True) and not ok(1.5) and not ok("1")


def test_a_failed_schema_check_keeps_jsonschemas_reason():
    for built_here in (False, True):
        record = _schema_test_records()[0]
        record["seed"] = -1
        assert checks.check_schema(record, built_here) == checks.failed("schema: seed: -1 is less than the minimum of 0")
        record = _schema_test_records()[1]
        del record["ir"]["ptx"]
        assert checks.check_schema(record, built_here) == checks.failed("schema: ir: 'ptx' is a required property")


def test_records_from_elsewhere_are_judged_by_jsonschema_alone(monkeypatch):
    # the compiled check serves only records the pipeline just built; a shard's or a release's
    # record (check_static, the release gate) goes to jsonschema even if the compiled check erred
    from validator import verdicts
    record = _schema_test_records()[0]
    record["seed"] = -1
    monkeypatch.setattr(verdicts, "_pair_fast_check", lambda: (lambda r: True))  # a compiled check that passes all
    assert checks.check_schema(record)["status"] == "failed"
    assert verdicts.check_static(record)["status"] == "failed"
    assert checks.check_schema(record, built_here=True) == checks.PASSED  # the stand-in was consulted here only


def test_the_safety_walk_is_ast_walk():
    import ast
    from validator import verdicts
    sources = [render_source(build_spec(f, s)) for f in sorted(FAMILIES) for s in (1, 2)] + list(HOSTILE)
    for source in sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        assert verdicts._walk(tree) == list(ast.walk(tree))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                assert [verdicts._decorator_text(d) for d in node.decorator_list] == [ast.unparse(d) for d in node.decorator_list]
    # every syntax Python has, from the standard library's own sources: the walk reads only the
    # fields that can hold nodes (`verdicts._PLAIN_FIELDS` skipped), and must still be ast.walk
    import asyncio.tasks, dataclasses, inspect as inspect_mod, string, typing  # noqa: E401
    hostile_syntax = ("async def f(*a, b=1, **k):\n    async with x as y:\n        await z\n"
                      "    [i async for i in y if i]\n"
                      "def g():\n    global q\n    nonlocal_ = lambda: (yield)\n    match q:\n"
                      "        case [1, *rest] | {'k': 2, **kw} if rest: pass\n        case C(a=1) as c: pass\n"
                      "    try:\n        pass\n    except* (E, F) as e:\n        del e\n"
                      "    x: int = f'{q!r:>{w}}' ; (y := 3); assert y, 'm'; raise E from None\n"
                      "from . import a as b\n")
    for source in [inspect_mod.getsource(m) for m in (asyncio.tasks, dataclasses, inspect_mod, string, typing)] + [hostile_syntax]:
        tree = ast.parse(source)
        assert verdicts._walk(tree) == list(ast.walk(tree))
    for text in ("wp.kernel", "wp.func", "evil", "wp.kernel(module='m')", "a.b.c", "(wp).struct", "x[0].y"):
        d = ast.parse(f"@{text}\ndef f():\n    pass\n").body[0].decorator_list[0]
        assert verdicts._decorator_text(d) == ast.unparse(d)


@pytest.mark.parametrize("stored", [
    {"status": "passed"},
    {"status": "passed", "max_abs_diff": 0.0},
    {"status": "failed", "reason": "execute_gpu: against CPU: output y: 3 elements off"},
    {"status": "failed", "reason": "sandbox"},
    {"status": "not_run", "reason": "in-place (inout) array: Warp's adjoint does not model values overwritten"},
    {"status": "inconclusive", "reason": "gradient: kink at the inputs along direction 0"},
])
def test_a_verdict_reads_and_writes_the_stored_form_exactly(stored):
    v = checks.Verdict.from_json("execute_gpu", stored)
    assert v.to_json() == stored
    if stored["status"] == "failed":
        assert v.reason_code == stored["reason"].split(":")[0] and v.reason == stored["reason"]
    else:
        assert v.reason_code is None


def test_a_failure_needs_a_code_and_a_status_must_be_known():
    with pytest.raises(ValueError, match="reason code"):
        checks.Verdict("execute_cpu", "failed")
    with pytest.raises(ValueError, match="unknown status"):
        checks.Verdict("execute_cpu", "ok")
    r = checks.KernelResult.rejected("compile_cpu: RuntimeError: boom")
    assert r.error.reason_code == "compile_cpu" and r.error.detail == "RuntimeError: boom"



def _asserting(name: str, assertion: list):
    from generator.spec import ArgSpec, KernelSpec
    args = (ArgSpec("x", "array", "float32", (16,)), ArgSpec("y", "array", "float32", (16,), role="out"))
    x = ["ld", "x", [["v", "i"]]]
    fill = lambda e: x if e == "X" else [fill(a) for a in e] if isinstance(e, list) else e
    body = [["expr", ["call", assertion[0], [fill(a) for a in assertion[1:]]]],
            ["store", "y", [["v", "i"]], ["bin", "*", ["c", 2.0, "float32"], x]]]
    return KernelSpec("arith", 1, name, (16,), args, body)


def test_a_failed_assertion_is_seen_in_what_the_kernel_prints():
    """wp.expect_* only prints when it fails: the launch reads fd 1 back, and a failed one fails
    execute_cpu with Warp's printed line; one that holds passes. The coherent forgery: an
    assertion exact in the oracle's float64 ((x + 1e8) - 1e8 == x) that float32 breaks, so only
    what Warp printed can tell; and the oracle itself refuses an assertion that does not hold."""
    plus = lambda a, b: ["bin", "+", a, b]
    big = ["c", 1.0e8, "float32"]
    rounded = _asserting("arith_rounded", ["expect_eq", ["bin", "-", plus("X", big), big], "X"])
    holds = _asserting("arith_holds", ["expect_near", plus("X", "X"), ["bin", "*", "X", ["c", 2.0, "float32"]],
                                       ["c", 1e-6, "float32"]])
    assert run_oracle(rounded, make_inputs(rounded, 0))  # float64: the identity holds
    off, ok = checks.check_batch([rounded, holds])
    v = off.verdicts["execute_cpu"]
    assert v.status == "failed" and "KernelAssertionFailed" in v.detail and "expect_eq() failed" in v.detail, v
    assert ok.verdicts["execute_cpu"].passed, ok.verdicts["execute_cpu"]
    false = _asserting("arith_false", ["expect_neq", "X", "X"])
    with pytest.raises(ValueError, match="expect_neq does not hold in the oracle"):
        run_oracle(false, make_inputs(false, 0))


def test_every_rng_sample_matches_warp_on_the_cpu():
    """Each wp.sample_* the random_numbers family draws (`generator.spec.RAND_SAMPLES`), one after
    another from one state per thread, every component stored: Warp's CPU run equals the oracle's
    `warp_rng.sample` (the same draws in the same order; float32 rounding within the comparison's
    tolerance), on 64 threads (it fails when the sphere's two draws are swapped in the oracle)."""
    from generator.spec import RAND_SAMPLES, ArgSpec, KernelSpec
    i = ["v", "i"]
    body = [["let", "state", ["call", "rand_init", [["v", "seed"], i]]]]
    args = [ArgSpec("seed", "scalar", "int32", low=0, high=100000)]
    for k, kind in enumerate(RAND_SAMPLES):
        n = 3 if kind == "sample_unit_cube" or "sphere" in kind else 2
        body.append(["let", f"p{k}", [kind, "state"]])
        args.append(ArgSpec(f"out{k}", "array", "float32", (64, n), role="out"))
        body += [["store", f"out{k}", [i, ["c", j, "int32"]], ["comp", ["v", f"p{k}"], [j]]] for j in range(n)]
    spec = KernelSpec("random_numbers", 1, "random_numbers_samples", (64,), tuple(args), body)
    (res,) = checks.check_batch([spec])
    assert res.error is None, res.error
    assert res.verdicts["execute_cpu"].passed, res.verdicts["execute_cpu"]



def test_a_kernel_with_a_data_race_is_rejected_with_its_reason():
    # thread i stores y[i] from y[i + 1]: on the CPU (and in the oracle) the threads run in
    # order and agree; on a GPU the result depends on their timing
    from generator.spec import ArgSpec, KernelSpec
    i = ["v", "i"]
    nxt = ["mod", ["bin", "+", i, ["c", 1, "int32"]], ["c", 16, "int32"]]
    body = [["store", "y", [i], ["bin", "+", ["ld", "x", [i]], ["bin", "*", ["c", 0.5, "float32"], ["ld", "y", [nxt]]]]]]
    racy = KernelSpec("arith", 1, "arith_racy", (16,), (ArgSpec("x", "array", "float32", (16,)),
                                                          ArgSpec("y", "array", "float32", (16,), role="inout")), body)
    fine = build_spec("arith", 2)
    racy_result, fine_result = checks.check_batch([racy, fine])
    verdict = racy_result.verdicts["execute_cpu"]
    assert verdict.status == "failed" and verdict.reason_code == "data_race", verdict
    assert "element y[" in verdict.detail and "thread" in verdict.detail
    assert fine_result.verdicts["execute_cpu"].passed



def test_a_kernel_that_matches_only_at_its_full_launch_size_is_rejected(tmp_path):
    # Warp runs y[i] = 2 x[i]; the spec says y[31 - i] = 2 x[31 - i]. Launched on all 32 threads
    # both write every element the same; launched on 17 they write different halves, so only the
    # second launch size tells them apart
    from extractor import warp_adapter
    from generator.spec import ArgSpec, KernelSpec
    i = ["v", "i"]
    rev = ["bin", "-", ["c", 31, "int32"], i]
    args = (ArgSpec("x", "array", "float32", (32,)), ArgSpec("y", "array", "float32", (32,), role="out"))
    body = lambda k: [["store", "y", [k], ["bin", "*", ["c", 2.0, "float32"], ["ld", "x", [k]]]]]
    forward = KernelSpec("arith", 1, "arith_forward", (32,), args, body(i))
    backward = KernelSpec("arith", 1, "arith_reversed", (32,), args, body(rev))
    assert second_launch(backward) == (17,)
    module, kernels = warp_adapter.load_batch({forward.name: render_source(forward)}, str(tmp_path))
    warp_adapter.compile_cpu(module)
    sets = [make_inputs(backward, k) for k in range(3)]
    launches: list = []
    verdict, _ = checks.execute_and_compare(kernels[forward.name], backward, sets, set(), launches)
    assert verdict.status == "failed" and verdict.reason.startswith("execute_cpu: launch size [17]: output y"), verdict
    assert launches == [[32]]  # the full size matched; the second did not
    launches = []
    verdict, _ = checks.execute_and_compare(kernels[forward.name], forward, sets, set(), launches)
    assert verdict.to_json() == checks.PASSED and launches == [[32], [17]]
    warp_adapter.unload(module)


def test_second_launch_sizes():
    spec = build_spec("nested_loops", 3)
    assert second_launch(spec) == tuple(d // 2 + 1 for d in spec.dim)
    import dataclasses
    assert second_launch(dataclasses.replace(spec, dim=(2, 1))) is None
    assert second_launch(dataclasses.replace(spec, dim=(2, 3))) == (2, 2)
    assert second_launch(build_spec("tile_reduce", 1)) is None


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
