"""The gradient check's reach per family (`generator/gradient_audit.py`, printed by
`//generator:audit -- --dataset DIR`): which kernels count as float kernels, the share with a
conclusive verdict, the reasons of the others, the 80% target, and a corrupt shard line."""

from __future__ import annotations

import json
import os
import sys
import tempfile

import pytest

from generator import gradient_audit
from generator.families import build_spec
from generator.spec import is_float

IN_PLACE = {"status": "not_run", "reason": "in-place (inout) array: Warp's adjoint does not model values overwritten in place"}
NO_ADJOINT = {"status": "not_run", "reason": "uses tile_max, whose adjoint Warp does not implement (MISSINGADJOINT in warp/native/tile_reduce.h)"}


def _first(family, want):
    for seed in range(200):
        spec = build_spec(family, seed)
        if want(spec):
            return spec
    raise AssertionError(f"no {family} kernel of that kind in 200 seeds")


def _write(records) -> str:
    d = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
    with open(os.path.join(d, "shard-00000.jsonl"), "w") as f:
        for spec, verdict in records:
            f.write(json.dumps({"family": spec.family, "spec": spec.to_json(),
                                "checks": {gradient_audit.CHECK: verdict}}) + "\n")
    return d


def test_the_share_counts_float_kernels_only_and_names_why_the_others_got_no_verdict():
    no_float_in = _first("random_numbers", lambda s: not any(a.kind == "array" and a.role == "in" and is_float(a.dtype)
                                                             for a in s.args))
    in_place = _first("matvec", lambda s: any(a.role == "inout" for a in s.args))
    out_of_place = _first("matvec", lambda s: not any(a.role == "inout" for a in s.args))
    assert not gradient_audit.float_kernel(no_float_in)  # nothing to differentiate: not counted
    assert gradient_audit.float_kernel(in_place) and gradient_audit.float_kernel(out_of_place)
    d = _write([(no_float_in, {"status": "not_run", "reason": "no float input array or no float output array"}),
                (in_place, IN_PLACE), (out_of_place, {"status": "passed"}), (out_of_place, {"status": "failed",
                                                                                        "reason": "gradient_mismatch: x"}),
                (out_of_place, {"status": "inconclusive", "reason": "kink: the one-sided differences disagree"})])
    fams = gradient_audit.per_family(d)
    assert set(fams) == {"matvec"}  # random_numbers had no float kernel
    m = fams["matvec"]
    assert (m["float_kernels"], m["conclusive"]) == (4, 2) and m["share"] == 0.5
    assert m["others"] == {"not_run: in-place": 1, "inconclusive: kink": 1}
    [msg] = gradient_audit.failures(fams)
    assert msg.startswith("matvec: gradient verdict on 2 of 4 float kernels (50.0% < 80%)"), msg


def test_the_target_is_80_percent_and_a_builtin_without_an_adjoint_is_named():
    spec = _first("tile_reduce", gradient_audit.float_kernel)
    at_target = _write([(spec, {"status": "passed"})] * 4 + [(spec, NO_ADJOINT)])
    assert gradient_audit.failures(gradient_audit.per_family(at_target)) == []
    below = _write([(spec, {"status": "passed"})] * 3 + [(spec, NO_ADJOINT)] * 2)
    [msg] = gradient_audit.failures(gradient_audit.per_family(below))
    assert msg.endswith("not_run: uses tile_max 2"), msg


def test_a_corrupt_shard_line_is_an_error_naming_it():
    spec = _first("arith", gradient_audit.float_kernel)
    d = _write([(spec, {"status": "passed"})])
    with open(os.path.join(d, "shard-00000.jsonl"), "a") as f:
        f.write("{not json\n")
    with pytest.raises(ValueError, match=r"shard-00000.jsonl:2: corrupt"):
        gradient_audit.per_family(d)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
