import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from pipeline import chunk
from generator.families import FAMILIES, build_spec
from generator.inputs import make_inputs
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


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
