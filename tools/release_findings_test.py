"""Findings (a run's adjoint_mismatch records) through //tools:release, //tools:verify and
//validator: published as their own config, out of the training configs, with their reproducer;
a finding moved into a training config, or a passing row into the findings, fails verify; and the
gate holds each finding to its rule (a gradient_mismatch, nothing else failed, listed and counted
in the run's manifest).
"""

import functools
import hashlib
import json
import os
import shutil
import sys

import pytest

from tools.testing import (  # tmp_root sets datasets offline before it is imported
    release_fixtures, fresh_copy, fresh_dir, read_manifest, refused, release_cli, resign_shard, rewrite_run, tmp_root, write_manifest,
)

TMP = tmp_root("/tmp/release_findings_test")

from schemas.dataset_format import canonical_json  # noqa: E402
from tools import verify  # noqa: E402

_tmp = functools.partial(fresh_dir, TMP)  # TMP/name, emptied
_copy = functools.partial(fresh_copy, TMP)  # a copy of src as TMP/name
inputs, _ = release_fixtures(TMP)  # the small runs (tools/testing.py)


MISMATCH = {"status": "failed", "reason": "gradient_mismatch: direction 0: Warp's <g, v> = 1.5, the oracle's "
                                          "finite differences 0.75 (planted by the test)"}


def _with_finding(src, name, edit=None):
    """A copy of the run `src` in which one record with a passing gradient check has moved from
    its shard to adjoint_mismatch/shard-00000.jsonl, its execute_backward_cpu made a
    gradient_mismatch (no generated kernel has shown a real one), and both shards re-listed in
    the run's manifest; `edit(record)` changes the moved record further. Returns (run, record)."""
    d = _copy(src, name)
    moved = []

    def take(recs):
        k = next(k for k, r in enumerate(recs) if r["checks"]["execute_backward_cpu"]["status"] == "passed")
        moved.append(recs.pop(k))

    m = rewrite_run(d, take)
    r = moved[0]
    r["checks"]["execute_backward_cpu"] = dict(MISMATCH)
    if edit:
        edit(r)
    os.makedirs(os.path.join(d, "adjoint_mismatch"))
    data = (canonical_json(r) + "\n").encode()
    with open(os.path.join(d, "adjoint_mismatch", "shard-00000.jsonl"), "wb") as f:
        f.write(data)
    m["adjoint_mismatch"] = {"records": 1, "shards": [{"path": "adjoint_mismatch/shard-00000.jsonl", "records": 1,
                                                       "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}]}
    write_manifest(d, m)
    return d, r


def test_findings_are_published_as_their_own_config_and_verify(inputs, capsys):
    import pyarrow.parquet as pq

    run, finding = _with_finding(inputs[0], "with_finding")
    out = _tmp("out_finding")
    rc, err = release_cli(["--in", run, inputs[1], "--out", out, "--version", "1.0.0", "--jsonl"], capsys)
    assert rc == 0, err
    m = read_manifest(out)
    assert set(m["counts"]["configs"]) == {"cpu", "cuda", "adjoint_mismatch"}
    assert m["counts"]["configs"]["adjoint_mismatch"]["records"] == 1
    assert m["validation"]["verdicts"]["adjoint_mismatch"]["execute_backward_cpu"] == {"failed": 1}
    assert "failed" not in m["validation"]["verdicts"]["cpu"]["execute_backward_cpu"]
    rows = [row for f in m["files"] if f["path"].startswith("data/adjoint_mismatch/")
            for row in pq.read_table(os.path.join(out, f["path"])).to_pylist()]
    assert [(r["id"], r["target"]) for r in rows] == [(finding["id"], "cpu")]
    assert json.loads(rows[0]["checks"])["execute_backward_cpu"] == MISMATCH
    assert json.loads(rows[0]["grad"]) == finding["grad"]  # the reproducer travels with it
    cpu_ids = {r["id"] for f in m["files"] if f["path"].startswith("data/cpu/")
               for r in pq.read_table(os.path.join(out, f["path"]), columns=["id"]).to_pylist()}
    assert finding["id"] not in cpu_ids
    with open(os.path.join(out, "README.md")) as f:
        card = f.read()
    assert "config_name: adjoint_mismatch" in card and "is not training data: its 1 pairs" in card
    assert 'data_dir="data/cpu"' in card
    assert verify.verify(out) == []
    # //validator on the release re-checks the finding by its rule: a planted one does not reproduce
    from validator import revalidate

    assert revalidate.main([out, "--device", "cpu", "--workers", "2", "--quiet"]) == 1
    printed = capsys.readouterr().out
    assert "of which 1 findings (adjoint_mismatch/, held to their own rule): 0 reproduced, 1 failed" in printed, printed
    with open(out + ".validation_report.json") as f:
        report = json.load(f)
    assert report["findings"] == {"records": 1, "failed": 1} and report["failed"] == 1, report["failures"]
    assert report["failures"][0]["where"].startswith("data/adjoint_mismatch/")
    assert report["failures"][0]["reason"].startswith("finding: the stored gradient_mismatch does not reproduce")

    # verify: the finding re-signed into the cpu config, and a passing row into adjoint_mismatch
    for name, into, row_from, words in (("tamper_finding_in_cpu", "data/cpu/", "adjoint_mismatch", "failed verdict for execute_backward_cpu"),
                                        ("tamper_passed_in_findings", "data/adjoint_mismatch/", "cpu", "no gradient check failed")):
        d = _copy(out, name)
        dm = read_manifest(d)
        target = next(f for f in dm["files"] if f["path"].startswith(into) and f["path"].endswith(".parquet"))
        donor = next(f for f in dm["files"] if f["path"].startswith(f"data/{row_from}/") and f["path"].endswith(".parquet"))
        moved = dict(pq.read_table(os.path.join(d, donor["path"])).to_pylist()[0], split=target["split"])
        kept = pq.read_table(os.path.join(d, target["path"])).to_pylist()
        # the moved row replaces one, so every count still adds up and only the verdict rule can tell
        moved["split"] = kept[0]["split"]
        rows_now = [moved] + kept[1:]
        resign_shard(d, target["path"], rows_now, dm)
        problems = verify.verify(d)
        assert any(words in p and moved["id"] in p for p in problems), problems


def test_the_gate_holds_findings_to_their_rule(inputs, capsys):
    # a "finding" whose gradient check passed: not a finding
    run, _ = _with_finding(inputs[0], "finding_passed",
                           lambda r: r["checks"].update(execute_backward_cpu={"status": "passed"}))
    refused(["--in", run, "--version", "1.0.0"], capsys, _tmp("out_f1"), "adjoint_mismatch",
             "no gradient check failed as gradient_mismatch")
    # a finding whose forward run failed too
    run, _ = _with_finding(inputs[0], "finding_cpu_failed",
                           lambda r: r["checks"].update(execute_cpu={"status": "failed", "reason": "execute_cpu: x"}))
    refused(["--in", run, "--version", "1.0.0"], capsys, _tmp("out_f2"), "no passing verdict for execute_cpu")
    # a gradient failure of another kind is not a finding
    run, _ = _with_finding(inputs[0], "finding_other_reason", lambda r: r["checks"].update(
        execute_backward_cpu={"status": "failed", "reason": "execute_backward_cpu: RuntimeError: x"}))
    refused(["--in", run, "--version", "1.0.0"], capsys, _tmp("out_f3"), "failed verdict for execute_backward_cpu")
    # a findings file the manifest does not list, and a listed count that is wrong
    run, _ = _with_finding(inputs[0], "finding_unlisted")
    shutil.copy(os.path.join(run, "adjoint_mismatch", "shard-00000.jsonl"), os.path.join(run, "adjoint_mismatch", "shard-00001.jsonl"))
    refused(["--in", run, "--version", "1.0.0"], capsys, _tmp("out_f4"), "adjoint_mismatch/shard-00001.jsonl",
             "unvalidated")
    run, _ = _with_finding(inputs[0], "finding_count")
    m = read_manifest(run)
    m["adjoint_mismatch"]["records"] = 2
    write_manifest(run, m)
    refused(["--in", run, "--version", "1.0.0"], capsys, _tmp("out_f5"), "adjoint_mismatch holds 1 records")
    # and a main-config record with a gradient mismatch is refused as before
    bad = _copy(inputs[0], "mismatch_in_main")
    rewrite_run(bad, lambda recs: recs[0]["checks"].update(execute_backward_cpu=dict(MISMATCH)))
    refused(["--in", bad, "--version", "1.0.0"], capsys, _tmp("out_f6"), "failed verdict for execute_backward_cpu")


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
