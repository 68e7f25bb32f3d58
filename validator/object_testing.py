"""What the object families' tests (validator/neighbors_test.py, mesh_test.py, volume_test.py,
bvh_test.py, texture_test.py) each assert the same way: the safety wall's verdict on a near miss of
a family's forms, a spec run by Warp as by the oracle on chosen input sets (edge cases), drawn
kernels compiled, run against the oracle and differentiated, a spec's record
as the pipeline writes it, the schema refusing malformed records of it, and a forged build
parameter of an object (a cell width, a grid of vertices, a voxel size, a half-width, a sampler)
caught by the spec check, as the fault audit draws it."""

from __future__ import annotations

import copy
import json
import random

import numpy as np

from generator.families import build_spec
from generator.render import render_source
from validator import checks


def assert_safety_verdict(source: str, reason: str | None) -> None:
    """The wall admits `source` (reason None) or refuses it with `reason` in its one line."""
    v = checks.check_safety(source)
    if reason is None:
        assert v == checks.PASSED, v
    else:
        assert v["status"] == "failed" and reason in v["reason"], v


def assert_warp_runs_as_the_oracle(kernel, spec, cases, exact=(), close=("y",), rtol: float = 1e-5,
                                   atol: float = 1e-6) -> None:
    """`kernel` (`spec`'s rendering, which the test imported) run on the CPU on each input set of
    `cases`: its outputs named in `exact` equal the oracle's, those in `close` agree with them
    within `rtol` and `atol`."""
    from generator import oracle
    from validator.launch import run_cpu

    for case in cases:
        got, want = run_cpu(kernel, spec, case), oracle.run_oracle(spec, case)
        for name in exact:
            np.testing.assert_array_equal(got[name], want[name])
        for name in close:
            np.testing.assert_allclose(got[name], want[name], rtol=rtol, atol=atol)


def assert_drawn_kernels_run(spec, family: str, forward: str, backward: str | None = None) -> list:
    """`spec` and three drawn kernels of `family` compile for both targets, match the oracle on the
    CPU and get a gradient verdict (passed; a drawn one may be inconclusive, a kink), and `spec`'s
    forward (and backward) code of both targets names `forward` (`backward`). The results."""
    drawn = [build_spec(family, s) for s in range(3)]
    results = checks.check_batch([spec, *drawn])
    for s, res in zip([spec, *drawn], results):
        assert res.error is None, f"{s.name}: {res.error}"
        for check in ("compile_cpu", "compile_cuda", "execute_cpu"):
            assert res.verdicts[check].passed, f"{s.name} {check}: {res.verdicts[check]}"
        grad = res.verdicts["execute_backward_cpu"]
        assert grad.passed or (s is not spec and grad.status == "inconclusive"), f"{s.name}: {grad}"
    for target in ("cpp", "cuda"):
        assert forward in results[0].ir[target]["forward"], target
        assert backward is None or backward in results[0].ir[target]["backward"], target
    return results


def record(spec, build_record) -> dict:
    """The record the pipeline writes for `spec` (`build_record`: pipeline.chunk's, which a test, not
    this room, may import)."""
    res = checks.check_batch([spec])[0]
    assert res.error is None, res.error
    return build_record(spec, render_source(spec), "cpu", res)


def assert_schema_refuses(record: dict, bad: dict) -> None:
    """Every edit of `bad` (what it forges -> a function that changes a record in place), applied to
    a copy of `record`, fails the schema check."""
    from validator import verdicts

    for what, edit in bad.items():
        forged = copy.deepcopy(record)
        edit(forged)
        assert verdicts.check_schema(forged)["status"] == "failed", what


def assert_forged_build_fails(family: str, seed: int, word: str, build_record) -> None:
    """A record of (family, seed) whose object is built otherwise than the generator draws it (the
    fault audit's edit naming `word`, e.g. " cell ") fails `spec` with "args differs", as an edit
    and as a coherent forgery (whose source, which does not name the build parameter, is the same)."""
    from validator import inject_source, verdicts

    rec = record(build_spec(family, seed), build_record)
    assert verdicts.check_static(rec) == checks.PASSED
    for inject, prefix in ((inject_source.spec_edit, "spec.args["), (inject_source.spec_forgery, "coherent: spec.args[")):
        drawn = [inject([rec], 0, random.Random(k)) for k in range(60)]
        found = [inj for inj in drawn if inj is not None and inj.detail.startswith(prefix) and word in inj.detail]
        assert found, inject.__name__
        forged = json.loads(found[0].line)
        assert forged["source"] == rec["source"]
        verdict = verdicts.check_static(forged)
        assert verdict["status"] == "failed" and "args differs" in verdict["reason"], verdict
