"""//validator on a harvest of real kernels (validator/real.py): a fresh harvest passes; forged
records fail or are refused, and none of their text is ever imported.

Every forged source carries a payload that writes a marker file when imported; no test may
find the marker. Forgeries are coherent where they can be: a record's source with its
provenance kept, a record moved to another kernel's lines of the same file (sha256 still the
file's), a record dropped with the manifest's counts and sha256 rewritten to match, the lines
reordered with the manifest's sha256 rewritten. Provenance that does not resolve inside the
installed wheel (another path, `..`, an absolute path, a file outside the harvested folders,
another sha256, another warp-lang) refuses the directory with one line and exit 2 before
anything is lowered.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest

from harvest import run as harvest_run
from schemas.dataset_format import canonical_json, pretty_json
from validator import real, revalidate

ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
TMP = os.environ.get("TEST_TMPDIR") or "/tmp/real_test"
LIMIT = 40  # the wheel's first 40 kernels: 30 records (generic overloads included), 26 lowered


@pytest.fixture(scope="module")
def harvest_dir():
    out = os.path.join(TMP, "harvest")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    harvest_run.harvest(out, 2, LIMIT, harvest_run.Progress(True))
    return out


def _records(d: str) -> list[dict]:
    with open(os.path.join(d, harvest_run.RECORDS)) as f:
        return [json.loads(line) for line in f]


def _write(d: str, records: list[dict], manifest_too: bool = False) -> None:
    data = harvest_run.records_bytes(records)
    with open(os.path.join(d, harvest_run.RECORDS), "wb") as f:
        f.write(data)
    if manifest_too:  # a coherent forger rewrites the manifest's sha256 (and counts) to match
        path = os.path.join(d, harvest_run.MANIFEST)
        with open(path) as f:
            m = json.load(f)
        m["harvest_sha256"] = hashlib.sha256(data).hexdigest()
        with open(path, "w") as f:
            f.write(pretty_json(m))


def _copy(src: str, name: str) -> str:
    d = os.path.join(TMP, name)
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(src, d)
    if os.path.exists(os.path.join(d, "validation_report.json")):
        os.remove(os.path.join(d, "validation_report.json"))
    return d


def _marker(d: str) -> str:
    return os.path.join(d, "IMPORTED")


def _payload(d: str, source: str) -> str:
    """The source with a first line that leaves a marker file when the text is imported."""
    return f"open({_marker(d)!r}, 'w').write('imported')\n" + source


def _validate(d: str, capsys) -> tuple[int, dict | None, str]:
    rc = revalidate.main([d, "--workers", "2", "--quiet"])
    err = capsys.readouterr().err
    path = os.path.join(d, "validation_report.json")
    report = json.load(open(path)) if os.path.exists(path) and rc != 2 else None
    return rc, report, err


def test_a_fresh_harvest_passes_through_the_validator_binary(harvest_dir):
    """`python -m validator DIR` (what //validator runs): every record re-harvested equal, exit 0."""
    d = _copy(harvest_dir, "fresh")
    p = subprocess.run([sys.executable, "-m", "validator", d, "--workers", "2", "--quiet"], cwd=ROOT,
                       capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stdout + p.stderr
    report = json.load(open(os.path.join(d, "validation_report.json")))
    n = len(_records(d))
    assert report["kind"] == "real" and report["records"] == n == report["passed"] and n >= 20
    assert report["checks"]["reharvest"]["passed"]["count"] == n and report["failures"] == []


def test_forged_records_fail_by_field_and_none_is_imported(harvest_dir, capsys):
    """In one directory: a source edited with its provenance kept (and its extraction's list
    untouched), the C++ forward edited, a compile verdict turned to passed-with-a-message, a
    record moved to the lines of another kernel of its file, a record duplicated: each fails with
    the field it forged; the moved one's own kernel is then missing."""
    d = _copy(harvest_dir, "forged")
    recs = _records(d)
    plain = [i for i, r in enumerate(recs) if r["overload"] is None]
    a, b, c, e = plain[:4]
    recs[a]["source"] = _payload(d, recs[a]["source"])
    recs[b]["ir"]["cpp"]["forward"] = recs[b]["ir"]["cpp"]["forward"].replace("{", "{ /* forged */", 1)
    recs[c]["compile"]["cpu"] = {"status": "failed", "reason": "cpu_compile:RuntimeError", "message": "forged"}
    same_file = next(i for i in plain[4:] if recs[i]["provenance"]["path"] == recs[e]["provenance"]["path"])
    moved = copy.deepcopy(recs[e])
    moved["provenance"]["lines"] = recs[same_file]["provenance"]["lines"]
    moved["source"] = _payload(d, moved["source"])
    recs[e] = moved
    recs.append(copy.deepcopy(recs[-1]))
    _write(d, recs)
    rc, report, _ = _validate(d, capsys)
    assert rc == 1
    by_id = {}
    for f in report["failures"]:
        by_id.setdefault(f["id"], []).append(f["code"])
    where = real._where
    assert by_id[where(recs[a])] == ["source_mismatch"]
    assert by_id[where(recs[b])] == ["ir_mismatch"]
    assert by_id[where(recs[c])] == ["compile_mismatch"]
    assert "name_mismatch" in by_id[where(moved)] or "source_mismatch" in by_id[where(moved)]
    assert "duplicate" in by_id[where(recs[-1])]
    original = _records(harvest_dir)[e]
    assert "missing" in by_id[where(original)]
    assert not os.path.exists(_marker(d))


@pytest.fixture(scope="module")
def launched_dir():
    """A harvest of warp/tests/test_ref.py: most of its kernels carry a launch its tests made."""
    out = os.path.join(TMP, "launched")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    harvest_run.harvest(out, 2, None, harvest_run.Progress(True), "warp/tests/test_ref.py")
    return out


def test_forged_launches_fail_the_reharvest(launched_dir, capsys):
    """Coherent forgeries of the recorded launches (the manifest's sha256 rewritten): an output
    byte changed with replay_cpu still passed, a launch dropped (replay_cpu not_launched), another
    kernel's launch given to a kernel the tests never launched, a failed replay turned to passed:
    each fails `launch_mismatch` or `execute_mismatch`, the validator having recorded the
    launches again from the wheel's own test module; the untouched records pass."""
    d = _copy(launched_dir, "forged_launches")
    recs = _records(d)
    launched = [i for i, r in enumerate(recs) if r["launch"] is not None]
    quiet = [i for i, r in enumerate(recs) if r["launch"] is None and r["compile"]["cpu"]["status"] == "passed"]
    assert len(launched) >= 25 and quiet
    a, b, c = launched[:3]
    arg = next(x for x in recs[a]["launch"]["args"] if x["kind"] == "array")
    raw = bytearray(base64.b64decode(arg["out"] or arg["in"]))
    raw[-1] ^= 0x40
    arg["out"] = base64.b64encode(bytes(raw)).decode()
    recs[b]["launch"] = None
    recs[b]["execute"]["replay_cpu"] = {"status": "not_run", "reason": "not_launched"}
    recs[quiet[0]]["launch"] = copy.deepcopy(recs[c]["launch"])
    recs[quiet[0]]["execute"]["replay_cpu"] = {"status": "passed"}
    recs[c]["execute"]["replay_cpu"] = {"status": "failed", "reason": "outputs_differ", "message": "forged"}
    _write(d, recs, manifest_too=True)
    rc, report, _ = _validate(d, capsys)
    assert rc == 1
    codes = {f["id"]: f["code"] for f in report["failures"]}
    where = real._where
    assert codes == {where(recs[a]): "launch_mismatch", where(recs[b]): "launch_mismatch",
                     where(recs[quiet[0]]): "launch_mismatch", where(recs[c]): "execute_mismatch"}
    assert report["passed"] == len(recs) - 4


def test_a_record_hidden_with_a_coherent_manifest_is_missing(harvest_dir, capsys):
    """A record dropped and the manifest rewritten to match (its counts and sha256): the
    re-harvest yields the kernel, so the directory fails `missing` naming it."""
    d = _copy(harvest_dir, "hidden")
    recs = _records(d)
    gone = next(r for r in recs if r["overload"] is None)
    kept = [r for r in recs if r is not gone]
    _write(d, kept, manifest_too=True)
    path = os.path.join(d, harvest_run.MANIFEST)
    m = json.load(open(path))
    m["counts"]["records"] -= 1
    m["counts"]["cpu_compiled"] -= gone["compile"]["cpu"]["status"] == "passed"
    open(path, "w").write(pretty_json(m))
    rc, report, _ = _validate(d, capsys)
    assert rc == 1 and [f["code"] for f in report["failures"]] == ["missing"]
    assert report["failures"][0]["id"] == f"{gone['provenance']['path']}:{gone['provenance']['lines'][0]}-" \
                                          f"{gone['provenance']['lines'][1]}"


def test_reordered_lines_and_forged_counts_fail_the_file_checks(harvest_dir, capsys):
    """Every record intact but in another order (the manifest's sha256 rewritten to the new
    bytes) and a count in the manifest raised: `bytes_mismatch` and `manifest_mismatch`."""
    d = _copy(harvest_dir, "reordered")
    recs = _records(d)
    _write(d, recs[::-1], manifest_too=True)
    path = os.path.join(d, harvest_run.MANIFEST)
    m = json.load(open(path))
    m["counts"]["cpu_compiled"] += 1
    open(path, "w").write(pretty_json(m))
    rc, report, _ = _validate(d, capsys)
    assert rc == 1
    codes = [f["code"] for f in report["failures"]]
    assert codes == ["bytes_mismatch", "manifest_mismatch"], codes
    assert "counts" in report["failures"][1]["reason"] and "harvest_sha256" in report["failures"][1]["reason"]


def _provenance_forgeries(d: str, rec: dict, wheel_version: str) -> dict:
    sha = rec["provenance"]["sha256"]
    return {
        "dotdot": {"path": "warp/tests/../../../../etc/passwd"},
        "absolute": {"path": "/etc/passwd"},
        "outside_harvested": {"path": "warp/__init__.py"},
        "missing_file": {"path": "warp/tests/test_no_such_file.py"},
        "wrong_sha256": {"sha256": hashlib.sha256(sha.encode()).hexdigest()},
        "other_warp": {"warp_lang": "1.18.0" if wheel_version != "1.18.0" else "1.17.0"},
    }


@pytest.mark.parametrize("attack", ["dotdot", "absolute", "outside_harvested", "missing_file", "wrong_sha256",
                                    "other_warp"])
def test_provenance_outside_the_installed_wheel_is_refused_before_anything_runs(harvest_dir, capsys, attack):
    """One line, exit 2, no report, no marker: the record's text (a payload) never imported."""
    d = _copy(harvest_dir, f"prov_{attack}")
    recs = _records(d)
    last = recs[-1]
    last["source"] = _payload(d, last["source"])
    last["provenance"].update(_provenance_forgeries(d, last, last["provenance"]["warp_lang"])[attack])
    _write(d, recs, manifest_too=True)
    rc, report, err = _validate(d, capsys)
    assert rc == 2 and report is None, err
    assert len(err.strip().splitlines()) == 1 and "provenance" in err and f"{harvest_run.RECORDS}:{len(recs)}" in err
    assert not os.path.exists(_marker(d))
    assert not os.path.exists(os.path.join(d, "validation_report.json"))


def test_unreadable_harvest_files_are_refused(harvest_dir, capsys):
    """harvest.jsonl a link (to the genuine file), or a manifest whose limit is not a count: one
    line, exit 2."""
    d = _copy(harvest_dir, "linked")
    target = os.path.join(TMP, "linked_target.jsonl")
    shutil.move(os.path.join(d, harvest_run.RECORDS), target)
    os.symlink(target, os.path.join(d, harvest_run.RECORDS))
    rc, _, err = _validate(d, capsys)
    assert rc == 2 and "symbolic link" in err and len(err.strip().splitlines()) == 1
    d = _copy(harvest_dir, "bad_limit")
    path = os.path.join(d, harvest_run.MANIFEST)
    m = json.load(open(path))
    m["limit"] = "all"
    open(path, "w").write(pretty_json(m))
    rc, _, err = _validate(d, capsys)
    assert rc == 2 and "limit" in err and len(err.strip().splitlines()) == 1


def test_a_record_that_breaks_the_schema_fails_and_the_rest_are_judged(harvest_dir, capsys):
    """A record with an unknown field fails `schema`; with it gone from the kernels held, its
    kernel is also missing; no other record fails."""
    d = _copy(harvest_dir, "schema")
    recs = _records(d)
    recs[0]["extra"] = canonical_json({"x": 1})
    _write(d, recs)
    rc, report, _ = _validate(d, capsys)
    assert rc == 1
    codes = sorted(f["code"] for f in report["failures"])
    assert codes == ["missing", "schema"], codes


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v"]))
