"""//tools:verify and //validator on tampered copies of a release: a flipped byte, a deleted
shard, an edited count, a re-signed forged row, an unlisted file and a broken manifest are each
caught by verify, by file and record; a coherent forgery of stored outputs passes verify and is
caught by the validator, which re-executes every row of a downloaded release.
"""

import functools
import json
import os
import shutil
import sys

import pytest

from tools.testing import (  # tmp_root sets datasets offline before it is imported
    release_fixtures, fresh_copy, fresh_dir, read_manifest, resign_shard, tmp_root, write_manifest,
)

TMP = tmp_root("/tmp/release_verify_test")

from schemas.dataset_format import canonical_json  # noqa: E402
from tools import verify  # noqa: E402

_tmp = functools.partial(fresh_dir, TMP)  # TMP/name, emptied
_copy = functools.partial(fresh_copy, TMP)  # a copy of src as TMP/name
_, dist = release_fixtures(TMP)  # the small runs' release (tools/testing.py)


def _shard(d):
    m = read_manifest(d)
    return next(f for f in m["files"] if f["path"].endswith(".parquet") and f["rows"] > 0)["path"]


def test_verify_fails_on_a_flipped_byte(dist, capsys):
    d = _copy(dist, "tamper_flip")
    path = os.path.join(d, _shard(d))
    with open(path, "r+b") as f:
        f.seek(os.path.getsize(path) // 2)
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 0x01]))
    problems = verify.verify(d)
    assert problems and "sha256" in problems[0] and _shard(d) in problems[0]
    assert verify.main([d]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_verify_fails_on_a_deleted_shard(dist):
    d = _copy(dist, "tamper_delete")
    os.remove(os.path.join(d, _shard(d)))
    problems = verify.verify(d)
    assert any("missing" in p for p in problems)
    assert any(p.startswith("counts:") for p in problems)


def test_verify_fails_on_an_edited_count(dist):
    d = _copy(dist, "tamper_count")
    m = read_manifest(d)
    m["counts"]["configs"]["cpu"]["splits"]["train"] += 1
    m["counts"]["configs"]["cpu"]["records"] += 1
    m["counts"]["records_out"] += 1
    write_manifest(d, m)
    problems = verify.verify(d)
    assert any("counts: cpu/train" in p for p in problems)


def test_verify_fails_on_a_re_signed_forged_row(dist):
    """Checksums alone would pass: the shard is rewritten and re-listed with its new sha256."""
    import pyarrow.parquet as pq

    d = _copy(dist, "tamper_forge")
    rel = _shard(d)
    rows = pq.read_table(os.path.join(d, rel)).to_pylist()
    rows[0]["source"] = rows[0]["source"].replace("wp.tid()", "wp.tid() ", 1)
    m = read_manifest(d)
    resign_shard(d, rel, rows, m)
    problems = verify.verify(d)
    assert len(problems) == 1 and "spec_source" in problems[0] and rows[0]["id"] in problems[0], problems


def test_the_validator_re_executes_a_downloaded_release_and_catches_what_verify_cannot(dist, capsys):
    """`//validator -- DIST` on a release (its Parquet files: no run directory): every record is
    re-executed and passes, and the report goes beside the release (a file added to it would fail
    verify). A coherent forgery, one row's stored outputs changed and its shard re-signed, passes
    verify (nothing there executes) and fails the validator, by row and id."""
    import numpy as np
    import pyarrow.parquet as pq
    from validator import revalidate

    report = revalidate.revalidate(dist, gpu=False, workers=2)
    assert report["kind"] == "release" and report["failed"] == 0, report["failures"][:3]
    assert report["records"] == read_manifest(dist)["counts"]["records_out"] and report["findings"]["records"] == 0
    d = _copy(dist, "forged_outputs")
    rel = _shard(d)
    rows = pq.read_table(os.path.join(d, rel)).to_pylist()
    outs = json.loads(rows[0]["outputs"])
    name = sorted(outs)[0]
    flat = np.array(outs[name]["data"]).ravel()
    flat[0] = flat[0] + 1
    outs[name]["data"] = flat.reshape(outs[name]["shape"]).tolist()
    rows[0]["outputs"] = canonical_json(outs)
    resign_shard(d, rel, rows, read_manifest(d))
    assert verify.verify(d) == []
    assert revalidate.main([d, "--device", "cpu", "--quiet"]) == 1
    out = capsys.readouterr().out
    assert f"{report['records']} records: {report['records'] - 1} passed, 1 failed" in out
    assert f"{rel}:1 {rows[0]['id']}: io: stored output {name} differs from a fresh CPU execution" in out, out
    assert os.path.isfile(d + ".validation_report.json") and verify.verify(d) == []


def test_verify_fails_on_an_unlisted_file_and_a_broken_manifest(dist):
    d = _copy(dist, "tamper_extra")
    shutil.copy(os.path.join(d, _shard(d)), os.path.join(d, "data", "cpu", "train-00009-of-00009.parquet"))
    assert any("not listed" in p for p in verify.verify(d))
    m = read_manifest(d)
    del m["files"]
    write_manifest(d, m)
    assert "manifest schema" in verify.verify(d)[0]


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
