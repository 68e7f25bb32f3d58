"""The real config of a release (tools/release_real.py): a harvest of the warp-lang wheel
(//harvest) released beside a generator run, loaded by `datasets`, re-checked by //tools:verify
and re-validated by //validator; forged harvests refused by the release's gate, forged real rows
caught by verify and the validator. Every forged source carries a payload that writes a marker
file if the text is ever imported; no test may find it.

Forgeries are coherent: a harvest edited has its manifest's sha256 rewritten; a release edited
has its shard re-signed in manifest.json (size and sha256), with the row's skeleton hash
recomputed, so only the content checks can catch it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys

import pytest

from tools.testing import fresh_copy, fresh_dir, read_manifest, refused, tmp_root, write_manifest

TMP = tmp_root("/tmp/real_release_test")
LIMIT = 40  # the wheel's first 40 kernels: 30 records, all compiled on both backends


@pytest.fixture(scope="module")
def harvest():
    from harvest import run as harvest_run

    out = fresh_dir(TMP, "harvest")
    os.makedirs(out)
    harvest_run.harvest(out, 2, LIMIT, harvest_run.Progress(True))
    return out


@pytest.fixture(scope="module")
def run():
    import pipeline

    out = fresh_dir(TMP, "run")
    pipeline.run(pipeline.RunConfig("cpu", 8, 3, out, ["arith"], workers=1, quiet=True, archs=["sm_90"]))
    return out


@pytest.fixture(scope="module")
def dist(harvest, run):
    from tools import release

    out = fresh_dir(TMP, "dist")
    assert release.main(["--in", run, harvest, "--out", out, "--version", "1.0.0"]) == 0
    return out


def _harvested(d: str) -> list[dict]:
    with open(os.path.join(d, "harvest.jsonl")) as f:
        return [json.loads(line) for line in f]


def _rewrite_harvest(d: str, records: list[dict]) -> None:
    """harvest.jsonl rewritten and its sha256 put in the manifest (a coherent forger)."""
    from harvest import run as harvest_run

    data = harvest_run.records_bytes(records)
    with open(os.path.join(d, "harvest.jsonl"), "wb") as f:
        f.write(data)
    m = read_manifest(d)
    m["harvest_sha256"] = hashlib.sha256(data).hexdigest()
    write_manifest(d, m)


def _marker(d: str) -> str:
    return os.path.join(d, "IMPORTED")


def _payload(d: str, source: str) -> str:
    return f"open({_marker(d)!r}, 'w').write('imported')\n" + source


def test_the_harvest_is_released_as_the_real_config(harvest, dist):
    from tools import dedup, release_real
    from tools.verify import verify

    m = read_manifest(dist)
    records = _harvested(harvest)
    both = [r for r in records if release_real.left_out(r) is None]
    (inp,) = m["real"]["inputs"]
    assert (inp["records"], inp["published"]) == (len(records), len(both))
    assert sum(inp["left_out_by_reason"].values()) == len(records) - len(both)
    # within the config, exact duplicates (a generic kernel's overloads share one text) are removed
    distinct = {dedup.source_key(release_real.entry_view(r)) for r in both}
    assert m["counts"]["configs"]["real"]["records"] == len(distinct)
    assert m["counts"]["configs"]["real"]["families"].keys() == {release_real.wheel_dir(r) for r in both}
    assert [c["name"] for c in m["real"]["columns"]] == [n for n, _, _ in release_real.columns(["sm_90"])]
    assert verify(dist) == []
    with open(os.path.join(dist, "README.md")) as f:
        card = f.read()
    assert "## The real config" in card and "held out" in card and "config_name: real" in card


def test_datasets_loads_the_real_config_with_the_harvest_s_text_and_code(harvest, dist):
    import datasets

    from tools import release_real

    m = read_manifest(dist)
    ds = datasets.load_dataset(dist, "real")
    assert {k: v.num_rows for k, v in ds.items()} == {s: n for s, n in m["counts"]["configs"]["real"]["splits"].items() if n}
    by_id = {release_real.real_id(r): r for r in _harvested(harvest)}
    for split in ds:
        for row in ds[split]:
            rec = by_id[row["id"]]
            assert row["origin"] == "real" and row["kernel_name"] == rec["name"] and row["source"] == rec["source"]
            assert json.loads(row["provenance"]) == rec["provenance"]
            assert row["ir_cpp_forward"] == rec["ir"]["cpp"]["forward"]
            assert row["ptx_sm_90"] == rec["ir"]["ptx"]["sm_90"]["forward"]
            assert release_real.to_real_record(row, "1.0.0") == {**rec, "schema_version": "1.0.0"}
    cpu = datasets.load_dataset(dist, "cpu")
    assert "provenance" not in cpu["train"].column_names and "spec" in cpu["train"].column_names


def test_a_real_kernel_s_text_is_kept_in_real_and_dropped_from_a_synthetic_config():
    from tools import dedup

    class E:  # an entry's fields exact_dedup reads (tools/release_inputs.py Entry)
        def __init__(self, key, source_key, ir_key):
            self.key, self.source_key, self.ir_key = key, source_key, ir_key

    synthetic = E(("cpu", "arith", 1, "a", "k"), b"same", b"ir1")
    real = E(("real", "tests", 0, "b", "k"), b"same", b"ir2")
    kept, exact = dedup.exact_dedup([synthetic, real])
    assert kept == [real]
    assert exact["removed_by_config"]["cpu"]["duplicate_source"] == 1 and "real" not in exact["removed_by_config"]


def test_the_validator_re_harvests_a_release_s_real_rows(dist, capsys):
    from validator import revalidate

    report = os.path.join(TMP, "dist_report.json")
    assert revalidate.main([dist, "--workers", "2", "--quiet", "--report", report]) == 0, capsys.readouterr().err
    with open(report) as f:
        r = json.load(f)
    m = read_manifest(dist)
    assert r["checks"]["reharvest"]["passed"]["count"] == m["counts"]["configs"]["real"]["records"]
    assert r["records"] == m["counts"]["records_out"] and r["failed"] == 0


# ---- forged harvests, through //tools:release ----

def _forge_harvest(harvest: str, name: str, edit) -> str:
    d = fresh_copy(TMP, harvest, name)
    records = _harvested(d)
    edit(d, records)
    _rewrite_harvest(d, records)
    return d


def _edit_source(d, records):
    records[0]["source"] = _payload(d, records[0]["source"])


def _move_lines(d, records):  # another kernel's place in the same file, the sha256 still the file's
    other = next(r for r in records[1:] if r["provenance"]["path"] == records[0]["provenance"]["path"]
                 and r["provenance"]["lines"] != records[0]["provenance"]["lines"])
    records[0]["provenance"]["lines"] = other["provenance"]["lines"]
    records[0]["source"] = _payload(d, records[0]["source"])


def _dotdot(d, records):
    p = records[0]["provenance"]
    p["path"] = "warp/tests/../" + p["path"].split("/", 1)[1]
    records[0]["source"] = _payload(d, records[0]["source"])


def _sha(d, records):
    records[0]["provenance"]["sha256"] = "0" * 64
    records[0]["source"] = _payload(d, records[0]["source"])


@pytest.mark.parametrize("edit, words", [
    (_edit_source, ["is not the wheel's text"]),
    (_move_lines, ["is not the wheel's text"]),
    (_dotdot, ["is not a harvested file"]),
    (_sha, ["sha256", "is not that of the installed"]),
], ids=["source_edited", "moved_to_other_lines", "path_with_dotdot", "wrong_sha256"])
def test_a_forged_harvest_is_refused_by_the_release_without_importing_it(harvest, run, edit, words, capsys):
    d = _forge_harvest(harvest, f"forged_{edit.__name__}", edit)
    refused(["--in", run, d, "--version", "1.0.0"], capsys, fresh_dir(TMP, "refused"), "release refused", *words)
    assert not os.path.exists(_marker(d))


def test_a_harvest_edited_after_it_was_written_is_refused(harvest, run, capsys):
    d = fresh_copy(TMP, harvest, "edited")
    records = _harvested(d)
    records.pop()
    from harvest import run as harvest_run

    with open(os.path.join(d, "harvest.jsonl"), "wb") as f:
        f.write(harvest_run.records_bytes(records))
    refused(["--in", run, d, "--version", "1.0.0"], capsys, fresh_dir(TMP, "refused"), "harvest_sha256")


def test_a_harvest_alone_is_not_a_release(harvest, capsys):
    refused(["--in", harvest, "--version", "1.0.0"], capsys, fresh_dir(TMP, "refused"), "no generator run")


# ---- forged real rows of a release, through //tools:verify and //validator ----

def _forge_release(dist: str, name: str, edit) -> str:
    """A copy of `dist` whose first real row is edited by `edit(d, row)`, its skeleton hash
    recomputed, the shard re-signed in manifest.json."""
    from tools import release, release_real
    from tools import release_format as fmt

    d = fresh_copy(TMP, dist, name)
    m = read_manifest(d)
    f = next(f for f in m["files"] if f.get("config") == "real" and f["split"] == "train")
    rows = fmt.open_parquet(os.path.join(d, f["path"])).read().to_pylist()
    edit(d, rows[0])
    rows[0]["skeleton_hash"] = fmt.skeleton_hash(rows[0]["source"])  # kept in train: verify may name its split too
    release.write_parquet(rows, release_real.arrow_schema(m["real"]["ptx_archs"]), os.path.join(d, f["path"]))
    with open(os.path.join(d, f["path"]), "rb") as fh:
        data = fh.read()
    f.update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    write_manifest(d, m)
    return d


def _validate(d: str, capsys) -> tuple[int, dict | None, str]:
    from validator import revalidate

    report = os.path.join(TMP, "forged_report.json")
    if os.path.exists(report):
        os.remove(report)
    rc = revalidate.main([d, "--workers", "2", "--quiet", "--report", report])
    err = capsys.readouterr().err
    if not os.path.exists(report):
        return rc, None, err
    with open(report) as f:
        return rc, json.load(f), err


def _row_source(d, row):
    row["source"] = _payload(d, row["source"])


def _row_ir(d, row):
    row["ir_cpp_forward"] = row["ir_cpp_forward"].replace("{", "{ ", 1)


def test_a_real_row_with_a_forged_source_fails_verify_and_the_validator(dist, capsys):
    from tools.verify import verify

    d = _forge_release(dist, "row_source", _row_source)
    assert any("is not the wheel's text" in p for p in verify(d)), verify(d)
    rc, report, _ = _validate(d, capsys)
    assert rc == 1 and report["failures_by_reason"].get("source_mismatch") == 1, report
    assert not os.path.exists(_marker(d))


def test_a_real_row_with_forged_code_fails_the_validator(dist, capsys):
    d = _forge_release(dist, "row_ir", _row_ir)
    rc, report, _ = _validate(d, capsys)
    assert rc == 1 and report["failures_by_reason"] == {"ir_mismatch": 1}, report


@pytest.mark.parametrize("field, value, words", [
    ("path", "warp/../warp/_src/utils.py", "is not a harvested file"),
    ("path", "/etc/passwd", "is not a harvested file"),
    ("sha256", "0" * 64, "is not that of the installed"),
], ids=["dotdot", "absolute", "sha256"])
def test_a_real_row_whose_provenance_leaves_the_wheel_is_refused(dist, capsys, field, value, words):
    from tools import release_real
    from tools.verify import verify

    def edit(d, row):
        p = json.loads(row["provenance"])
        p[field] = value
        row["provenance"] = json.dumps(p)
        row["source"] = _payload(d, row["source"])
        row["id"] = release_real.real_id({"provenance": p, "overload": row["overload"]})  # coherent id and folder
        row["wheel_dir"] = release_real.wheel_dir({"provenance": p})

    d = _forge_release(dist, f"row_{field}_{len(value)}", edit)
    assert any(words in p for p in verify(d)), verify(d)
    rc, report, err = _validate(d, capsys)
    assert rc == 2 and report is None and words in err and err.count("\n") == 1, err
    assert not os.path.exists(_marker(d))


def test_counts_by_wheel_folder_are_checked_by_verify(dist):
    from tools.verify import verify

    d = fresh_copy(TMP, dist, "counts")
    m = read_manifest(d)
    fams = m["counts"]["configs"]["real"]["families"]
    folder = next(iter(fams))
    fams[folder]["train"] += 1
    fams[folder]["total"] += 1
    write_manifest(d, m)
    problems = verify(d)
    assert any(f"real/{folder}/train holds" in p for p in problems), problems


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
