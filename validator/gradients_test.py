"""The gradient check against real Warp adjoints: it passes right ones, catches a wrong one, calls
a kink inconclusive, and re-validation catches a stored gradient that is not Warp's."""

import json
import os
import sys
import tempfile

import numpy as np
import pytest

from extractor import warp_adapter
import pipeline
from generator.families import FAMILIES, build_spec
from generator.inputs import INPUT_SETS, make_inputs
from generator.liveness import dead_output
from generator.oracle import run_oracle
from generator.render import render_source
from generator.spec import ArgSpec, KernelSpec
from validator import checks, gradients, revalidate


def _compiled(specs):
    d = tempfile.mkdtemp()
    module, kernels = warp_adapter.load_batch({s.name: render_source(s) for s in specs}, d)
    warp_adapter.compile_cpu(module)
    return kernels


def _seen(name: str) -> KernelSpec:
    """A kernel an earlier generator drew, kept as its spec's JSON (testdata/seen_kernels.json)
    because the case it shows is rare and today's generator draws other kernels for its seed."""
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "testdata", "seen_kernels.json")) as f:
        return KernelSpec.from_json(json.load(f)[name])


def test_right_adjoints_pass():
    specs = [build_spec(f, s) for f in ("arith", "vecmath", "matrix", "stencil", "tile_matmul") for s in range(3)]
    kernels = _compiled(specs)
    for spec in specs:
        verdict, example = checks.execute_backward(kernels[spec.name], spec, make_inputs(spec))
        assert verdict.to_json() == {"status": "passed"}, (spec.family, spec.seed, verdict)
        assert len(example["dot"]) == gradients.DIRECTIONS and np.allclose(example["dot"], example["fd"], rtol=1e-2)


def test_a_wrong_adjoint_is_a_mismatch(monkeypatch):
    # Warp leaves tile_scan's adjoint empty (MISSINGADJOINT): its gradient is zero, the truth is
    # not. With Warp's own declaration ignored, the check must catch it.
    spec = build_spec("tile_scan", 0)
    kernels = _compiled([spec])
    verdict, _ = checks.execute_backward(kernels[spec.name], spec, make_inputs(spec))
    assert verdict.status == "not_run" and "MISSINGADJOINT" in verdict.reason
    assert "tile_scan_exclusive" in warp_adapter.missing_adjoints() or "tile_scan_inclusive" in warp_adapter.missing_adjoints()
    monkeypatch.setattr(warp_adapter, "missing_adjoints", lambda: {})
    verdict, example = checks.execute_backward(kernels[spec.name], spec, make_inputs(spec))
    assert verdict.status == "failed" and verdict.reason.startswith("gradient_mismatch:"), verdict
    assert example["dot"][-1] != pytest.approx(example["fd"][-1], rel=1e-2)


def test_adjoints_left_empty_inside_a_macro_are_missing_too():
    # Warp 1.19 declares frac's adjoint (the derivative is 1 between integers) empty inside a macro,
    # `{ \ /* MISSINGADJOINT ... */ \ }`: a kernel calling wp.frac gets no gradient verdict
    missing = warp_adapter.missing_adjoints()
    assert {"frac", "rint", "floordiv", "step", "nonzero"} <= set(missing)
    assert "frac" not in gradients.ZERO_DERIVATIVE


def test_a_builtin_called_on_literals_only_needs_no_adjoint():
    """Warp leaves tile_arange's adjoint empty. Called on literals it is a constant, whose
    derivative is zero, so the kernel is checked (and Warp's gradient through the rest agrees);
    the same call fed by a variable is refused again."""
    missing = warp_adapter.missing_adjoints()
    assert "tile_arange" in missing
    for seed in range(100):
        spec = build_spec("tile_reduce", seed)
        if "tile_arange" in gradients.builtins_used(spec) and gradients.arrays_to_check(spec, missing)[2] is None:
            break
    else:
        raise AssertionError("no tile_reduce kernel with a literal tile_arange in 100 seeds")
    assert "tile_arange" not in gradients.builtins_on_values(spec)
    kernels = _compiled([spec])
    verdict, example = checks.execute_backward(kernels[spec.name], spec, make_inputs(spec))
    assert verdict.to_json() == {"status": "passed"}, verdict

    def fed(node):  # every tile_arange(<literal>) made tile_arange(i)
        if isinstance(node, list) and node[:2] == ["kwcall", "tile_arange"]:
            return ["kwcall", "tile_arange", [["v", "i"]], node[3]]
        return [fed(x) for x in node] if isinstance(node, list) else node
    forged = KernelSpec(spec.family, spec.seed, spec.name, spec.dim, spec.args, fed(spec.body), launch=spec.launch)
    assert "tile_arange" in gradients.builtins_on_values(forged)
    assert "tile_arange, whose adjoint Warp does not implement" in gradients.arrays_to_check(forged, missing)[2]


def test_every_family_but_tile_scan_leaves_the_gradient_check_four_in_five_of_its_float_kernels():
    """What the generator alone decides (in-place arrays, builtins whose adjoint Warp leaves empty)
    takes at most 15% of any family's float kernels, so with Warp's own non-differentiable
    warnings on top each family still gets verdicts on 80% (measured per family by
    `//generator:audit -- --dataset DIR`). tile_scan is the exception the README names: Warp
    implements no adjoint for any tile_scan_* builtin, and every kernel of the family scans."""
    from generator.gradient_audit import float_kernel

    missing = warp_adapter.missing_adjoints()
    declined = {}
    for family in sorted(FAMILIES):
        specs = [s for s in (build_spec(family, seed) for seed in range(100)) if float_kernel(s)]
        declined[family] = sum(gradients.arrays_to_check(s, missing)[2] is not None for s in specs) / len(specs)
    assert declined.pop("tile_scan") == 1.0
    assert max(declined.values()) <= 0.15, declined
    assert {"tile_scan_inclusive", "tile_scan_exclusive", "tile_scan_max_inclusive", "tile_scan_min_inclusive"} <= set(missing)


def _abs_spec():
    x = ArgSpec("x", "array", "float32", (4,))
    y = ArgSpec("y", "array", "float32", (4,), role="out")
    body = [["store", "y", [["v", "i"]], ["call", "abs", [["ld", "x", [["v", "i"]]]]]]]
    return KernelSpec("arith", 1, "k", (4,), (x, y), body)


def test_a_kink_is_inconclusive_never_passed():
    spec = _abs_spec()
    w = {"y": np.array([1.0, -0.5, 0.25, 2.0])}
    vs = [{"x": np.array([0.5, 1.0, -1.0, 0.25])}]
    smooth = {"x": np.array([0.5, -1.0, 1.5, -0.25], dtype=np.float32), "y": np.zeros(4, np.float32)}
    g = {"x": np.sign(smooth["x"]) * w["y"]}
    assert gradients.compare(spec, smooth, g, w, vs)[0] == {"status": "passed"}
    g_wrong = {"x": -g["x"]}
    assert gradients.compare(spec, smooth, g_wrong, w, vs)[0]["status"] == "failed"
    kinked = {**smooth, "x": np.array([0.0, -1.0, 1.5, -0.25], dtype=np.float32)}  # abs at its kink
    for guess in (np.sign(kinked["x"]) * w["y"], np.ones(4) * w["y"]):
        verdict = gradients.compare(spec, kinked, {"x": guess}, w, vs)[0]
        assert verdict["status"] == "inconclusive" and "kink" in verdict["reason"], verdict


def test_every_family_draws_live_kernels():
    for family in sorted(FAMILIES):
        for seed in range(15):
            spec = build_spec(family, seed)
            sets = [make_inputs(spec, k) for k in range(INPUT_SETS)]
            assert dead_output(spec, sets, [run_oracle(spec, s) for s in sets]) is None, (family, seed)


def test_an_output_that_changes_only_below_its_dtype_is_dead_and_the_generator_redraws_it():
    """Seen at 20,000 CPU kernels: nested_loops seed 3782943617340609890 first drew a kernel whose
    float64 oracle outputs differed by 3e-15 between input sets, one float32 value: Warp's output
    was the same for all three, rejected as dead_output. Compared in the output's dtype, the
    generator sees it dead and draws again; the kernel it draws now is live in float32. (That
    first draw is kept as JSON: the generator's families have changed since.)"""
    from generator import families

    first = _seen("dead_below_dtype")
    assert not families._live(first)  # build_spec would draw again
    family, seed = first.family, first.seed
    sets = [make_inputs(first, k) for k in range(INPUT_SETS)]
    outs = [run_oracle(first, x) for x in sets]
    assert not all(np.array_equal(o["out"], outs[0]["out"]) for o in outs)  # float64 differs...
    assert "same for all 3" in dead_output(first, sets, outs)  # ...float32 does not
    spec = build_spec(family, seed)
    assert spec != first
    sets = [make_inputs(spec, k) for k in range(INPUT_SETS)]
    assert dead_output(spec, sets, [run_oracle(spec, x) for x in sets]) is None


def test_a_dead_output_and_a_copied_input_are_named():
    spec = _abs_spec()
    sets = [{"x": np.full(4, float(k)), "y": np.zeros(4)} for k in range(3)]
    assert "same for all 3" in dead_output(spec, sets, [{"y": np.ones(4)}] * 3)
    assert "copy of input x" in dead_output(spec, sets, [{"y": s["x"]} for s in sets])
    assert dead_output(spec, sets, [{"y": s["x"] + 1} for s in sets]) is None


def test_revalidation_catches_a_stored_gradient_that_is_not_warps(tmp_path):
    out = str(tmp_path / "run")
    pipeline.run(pipeline.RunConfig("cpu", 8, 3, out, ["arith", "vecmath"], workers=1, quiet=True))
    shard = os.path.join(out, "shard-00000.jsonl")
    recs = [json.loads(line) for line in open(shard)]
    k = next(i for i, r in enumerate(recs) if r["grad"])
    assert revalidate.revalidate(out)["failed"] == 0
    g = recs[k]["grad"]["g"]
    name = next(iter(g))
    flat = np.array(g[name]["data"], dtype=np.float64).ravel()
    flat[0] = flat[0] * 2 + 1.0  # a coherent forgery: only the gradient is wrong
    g[name]["data"] = flat.reshape(g[name]["shape"]).tolist()
    with open(shard, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in recs)
    report = revalidate.revalidate(out)
    assert report["failed"] == 1 and report["failures"][0]["reason"].startswith("gradient:"), report["failures"]


def test_a_finding_reproduces_under_revalidation_and_a_passing_record_would_not(monkeypatch):
    """A real wrong adjoint (tile_scan's, Warp's MISSINGADJOINT declaration ignored) stored as a
    finding: a fresh check of it passes //validator's judge as a finding (the mismatch is there
    again, the example is the same), and fails it as a main record."""
    from pipeline.chunk import build_record

    monkeypatch.setattr(warp_adapter, "missing_adjoints", lambda: {})
    spec = build_spec("tile_scan", 0)
    first, again = checks.check_batch([spec], gpu=False)[0], checks.check_batch([spec], gpu=False)[0]
    assert first.verdicts["execute_backward_cpu"].reason_code == checks.GRADIENT_MISMATCH
    rec = json.loads(json.dumps(build_record(spec, render_source(spec), "cuda", first)))
    assert checks.unpublishable(rec["checks"], finding=True) is None
    assert revalidate._judge_one(spec, again, rec, finding=True)[0] is None
    assert revalidate._judge_one(spec, again, rec)[0].startswith("gradient_mismatch:")


def _list_in_manifest(run: str) -> None:
    """The run's manifest re-signed to list its shard and its findings' shard as they now are."""
    import hashlib

    path = os.path.join(run, "manifest.json")
    with open(path) as f:
        m = json.load(f)
    entries = []
    for rel in ("shard-00000.jsonl", "adjoint_mismatch/shard-00000.jsonl"):
        with open(os.path.join(run, rel), "rb") as f:
            data = f.read()
        entries.append({"path": rel, "records": data.count(b"\n"), "bytes": len(data),
                        "sha256": hashlib.sha256(data).hexdigest()})
    m["shards"], m["adjoint_mismatch"] = entries[:1], {"records": entries[1]["records"], "shards": entries[1:]}
    with open(path, "w") as f:
        json.dump(m, f)


def test_revalidation_holds_a_run_s_findings_to_their_rule(tmp_path):
    """//validator re-checks the records of a run's adjoint_mismatch/ too. Two coherent
    forgeries there: a real pair whose gradient verdict was rewritten to a mismatch (every other
    field untouched: its mismatch does not reproduce), and a real pair moved there as it is (not
    a finding at all). Both fail, by name; the main shard's records still pass."""
    out = str(tmp_path / "run")
    pipeline.run(pipeline.RunConfig("cpu", 8, 3, out, ["arith", "vecmath"], workers=1, quiet=True))
    shard = os.path.join(out, "shard-00000.jsonl")
    recs = [json.loads(line) for line in open(shard)]
    ks = [i for i, r in enumerate(recs) if r["checks"]["execute_backward_cpu"]["status"] == "passed"][:2]
    forged, moved = recs[ks[0]], recs[ks[1]]
    forged["checks"]["execute_backward_cpu"] = {
        "status": "failed", "reason": "gradient_mismatch: direction 0: Warp's <g, v> = 1.5, the oracle's finite "
                                      "differences 0.75 (planted by the test)"}
    with open(shard, "w") as f:
        f.writelines(json.dumps(r) + "\n" for i, r in enumerate(recs) if i not in ks)
    os.makedirs(os.path.join(out, "adjoint_mismatch"))
    with open(os.path.join(out, "adjoint_mismatch", "shard-00000.jsonl"), "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in (forged, moved))
    _list_in_manifest(out)  # the validator judges exactly what the run's manifest lists
    report = revalidate.revalidate(out)
    assert report["records"] == 8 and report["findings"] == {"records": 2, "failed": 2}, report
    assert [f["where"] for f in report["failures"]] == ["adjoint_mismatch/shard-00000.jsonl:1",
                                                        "adjoint_mismatch/shard-00000.jsonl:2"]
    first, second = (f["reason"] for f in report["failures"])
    assert first.startswith("finding: the stored gradient_mismatch does not reproduce: a fresh backward run gives passed")
    assert second.startswith("finding: the record is in adjoint_mismatch but no gradient check failed"), second


def test_a_gradient_that_overflowed_is_inconclusive_and_its_record_is_written():
    """Seen at 20,000 CPU kernels (chunk 157 of seed 0): an accumulator overflows to inf in a
    statically unrolled double loop, a clamp saturates the output, and Warp's adjoint is NaN
    (0 * inf). Before, the NaN gradient was a `gradient_mismatch` finding whose NaN values could
    not be written as JSON, and the run died; now it is inconclusive with its reason, no example,
    and the record is written and valid."""
    from pipeline import chunk
    from schemas.dataset_format import canonical_json

    spec = _seen("gradient_overflow")  # build_spec("nested_loops", 6554194573877164820) then
    [res] = checks.check_batch([spec])
    v = res.verdicts["execute_backward_cpu"]
    assert v.status == "inconclusive" and "NaN or infinity" in v.reason, v
    assert res.grad is None and res.verdicts["execute_cpu"].passed
    record = chunk.build_record(spec, render_source(spec), "cpu", res)
    canonical_json(record)
    assert checks.check_schema(record) == checks.PASSED


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
