"""The report of a small real release: every number it states comes from the release.

Generates 30 CPU and 20 CUDA kernels with the real pipeline, releases them, writes the report,
then checks that each number in report.md is a value of facts.json, that the key facts equal the
manifest and the shards, that the HTML is self-contained, the PNGs valid and deterministic, the
sample excerpts verbatim, and that bad input gives one line and exit 2 and writes nothing.
"""

import base64
import collections
import glob
import hashlib
import json
import os
import re
import shutil
import sys

import pyarrow.parquet as pq
import pytest

TMP = os.environ.get("TEST_TMPDIR") or "/tmp/report_test"
os.makedirs(TMP, exist_ok=True)
os.environ.setdefault("MPLCONFIGDIR", os.path.join(TMP, "mpl"))

import pipeline  # noqa: E402
from report import facts as facts_mod  # noqa: E402
from report import report_main as report  # noqa: E402
from tools import release, verify  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _tmp(name):
    path = os.path.join(TMP, name)
    shutil.rmtree(path, ignore_errors=True)
    return path


@pytest.fixture(scope="module")
def dist():
    cpu, cuda, out = _tmp("in_cpu"), _tmp("in_cuda"), _tmp("dist")
    pipeline.run(pipeline.RunConfig("cpu", 30, 3, cpu, ["arith", "branch"], workers=1, quiet=True, archs=["sm_90"]))
    pipeline.run(pipeline.RunConfig("cuda", 20, 3, cuda, ["stencil", "matvec"], workers=1, quiet=True, archs=["sm_90"]))
    assert release.main(["--in", cpu, cuda, "--out", out, "--version", "1.0.0"]) == 0
    assert report.main([out]) == 0
    return out


def _read(path, mode="r"):
    with open(path, mode) as f:
        return f.read()


def _load(dist):
    m = json.loads(_read(os.path.join(dist, "manifest.json")))
    built = json.loads(_read(os.path.join(dist, "report", "facts.json")))
    rows = collections.defaultdict(list)
    for f in m["files"]:
        if f["path"].endswith(".parquet"):
            rows[f["config"]] += pq.read_table(os.path.join(dist, f["path"])).to_pylist()
    return m, built, rows


def _leaves(obj):
    """Every value, and every dict key (family and reject reason names are data too)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield k
            yield from _leaves(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _leaves(v)
    else:
        yield obj


def _prose(md: str) -> str:
    """report.md without its fenced code blocks (the verbatim samples, checked separately)."""
    return re.sub(r"^(`{3,})[^\n]*\n.*?^\1$", "", md, flags=re.S | re.M)


def _numbers(text: str) -> list[str]:
    """Every number in the text: words of digits (and dots), not parts of identifiers like sm_90."""
    words = (w.rstrip(".") for w in re.findall(r"[A-Za-z0-9_.]+", text))
    return [w for w in words if re.fullmatch(r"\d+(\.\d+)*", w)]


def test_every_number_in_the_report_is_a_fact(dist):
    _, built, _ = _load(dist)
    allowed = {str(v) for v in _leaves(built["facts"]) if v is not None and not isinstance(v, bool)}
    # a quoted string fact (an input path, a version, a reason) brings the digits inside it
    allowed |= {n for v in _leaves(built["facts"]) if isinstance(v, str) for n in _numbers(v)}
    md = _read(os.path.join(dist, "report", "report.md"))
    numbers = _numbers(_prose(md))
    assert len(numbers) > 100
    stray = sorted({n for n in numbers if n not in allowed})
    assert not stray, f"numbers in report.md that are not in facts.json: {stray}"
    assert set(built["sources"]) == set(built["facts"])


def test_key_facts_equal_the_manifest_and_the_shards(dist):
    m, built, rows = _load(dist)
    F = built["facts"]
    assert F["counts"]["records_in"] == m["counts"]["records_in"]
    assert F["counts"]["records_out"] == m["counts"]["records_out"] == sum(len(v) for v in rows.values())
    for config, c in m["counts"]["configs"].items():
        fc = F["counts"]["configs"][config]
        assert fc["records"] == c["records"] and fc["splits"] == c["splits"] and fc["families"] == c["families"]
        got = collections.Counter(r["family"] for r in rows[config])
        assert {f: v["total"] for f, v in fc["families"].items()} == dict(got)
        for fam, v in F["diversity"]["configs"][config]["families"].items():
            assert v["skeletons"] == len({r["skeleton_hash"] for r in rows[config] if r["family"] == fam})
        # lengths recomputed independently of report/facts.py
        ptx = [len(re.findall(r"\w+|[^\w\s]", r["ptx_sm_90"])) for r in rows[config]]
        s = F["lengths"]["configs"][config]["ptx_sm_90"]["tokens"]
        assert s["max"] == max(ptx)
        assert s["p50"] == sorted(ptx)[-(-len(ptx) // 2) - 1]
        assert F["lengths"]["configs"][config]["source"]["chars"]["max"] == max(len(r["source"]) for r in rows[config])
        # every pair of these grid families ran at a second launch size, and the report counts them
        second = collections.Counter(r["family"] for r in rows[config] if len(json.loads(r["coverage"])["launch_dims"]) == 2)
        assert {f: d["second_launch"] for f, d in F["gradient"]["configs"][config].items()} == dict(got) == dict(second)
    assert F["dedup"]["removed_total"] == m["dedup"]["removed_total"] and F["dedup"]["removed"] == m["dedup"]["removed"]
    for k in ("pairs", "within_split_pairs", "cross_split_pairs", "clusters", "largest_cluster"):
        assert F["near_duplicates"][k] == m["near_duplicates"][k]
    assert F["validation"]["verdicts"] == m["validation"]["verdicts"]
    assert F["validation"]["gpu_executed"] == m["validation"]["gpu_executed"]
    assert F["generation"]["attempted"] == sum(i["counts"]["attempted"] for i in m["inputs"])
    # throughput comes from the runs' run.json, carried by the manifest
    for run, i in zip(F["throughput"]["runs"], m["inputs"]):
        assert run["pairs_per_s"] == i["run"]["pairs_per_s"] > 0
        assert run["stage_seconds"] == i["run"]["stage_seconds"]
    md = _read(os.path.join(dist, "report", "report.md"))
    assert f"{m['counts']['records_out']} pairs released ({m['counts']['records_in']} in" in md
    assert f"GPU execution ran: {'yes' if m['validation']['gpu_executed'] else 'no'}." in md


def test_samples_are_verbatim_from_the_shards(dist):
    _, built, rows = _load(dist)
    by_id = {(c, r["id"]): r for c, rs in rows.items() for r in rs}
    samples = built["facts"]["samples"]["records"]
    assert {s["config"] for s in samples} == {"cpu", "cuda"}
    assert len({s["family"] for s in samples}) >= 3
    md = _read(os.path.join(dist, "report", "report.md"))
    for s in samples:
        r = by_id[(s["config"], s["id"])]
        assert r["id"] == min(x["id"] for x in rows[s["config"]] if x["family"] == s["family"])
        for field, v in s["fields"].items():
            assert r[field].startswith(v["excerpt"]) and v["excerpt"] in md
    blocks = re.findall(r"^(`{3,})[^\n]*\n(.*?)\n\1$", md, flags=re.S | re.M)
    cells = [v for rs in rows.values() for r in rs for v in r.values() if isinstance(v, str)]
    assert blocks
    for _, code in blocks:
        assert any(cell.startswith(code) for cell in cells), code[:80]


def test_html_is_self_contained_and_pngs_are_valid(dist):
    out = os.path.join(dist, "report")
    html = _read(os.path.join(out, "report.html"))
    assert html.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html)
    assert "<link" not in html and "<script" not in html and "@import" not in html
    pngs = sorted(glob.glob(os.path.join(out, "*.png")))
    names = {os.path.basename(p) for p in pngs}
    assert {"family_distribution.png", "reject_reasons.png", "skeleton_diversity.png", "ptx_size.png",
            "lengths_cpu.png", "lengths_cuda.png"} <= names
    for p in pngs:
        data = _read(p, "rb")
        assert data.startswith(PNG_MAGIC) and b"IEND" in data[-12:]
        assert b"Software" not in data
        assert "data:image/png;base64," + base64.b64encode(data).decode() in html
        assert f"]({os.path.basename(p)})" in _read(os.path.join(out, "report.md"))
    # the release still verifies with its report inside
    assert verify.verify(dist) == []


def test_the_same_release_gives_the_same_report(dist, tmp_path):
    first = {n: hashlib.sha256(_read(p, "rb")).hexdigest() for p in glob.glob(os.path.join(dist, "report", "*"))
             for n in [os.path.basename(p)]}
    again = str(tmp_path / "again")
    assert report.main([dist, "--out", again]) == 0
    second = {n: hashlib.sha256(_read(os.path.join(again, n), "rb")).hexdigest() for n in os.listdir(again)}
    assert second == first
    # rewriting over a previous report replaces it
    assert report.main([dist]) == 0


def _refused(args, capsys, *words):
    rc = report.main(args)
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    for w in words:
        assert w in err
    return err


def test_bad_input_gives_one_line_and_writes_nothing(dist, capsys):
    missing = os.path.join(TMP, "no_such_dir")
    _refused([missing], capsys, "not a directory")
    assert not os.path.exists(missing)

    empty = _tmp("not_a_release")
    os.makedirs(empty)
    _refused([empty], capsys, "no manifest.json")
    assert os.listdir(empty) == []

    broken = _tmp("broken_manifest")
    shutil.copytree(dist, broken, ignore=shutil.ignore_patterns("report"))
    m = json.loads(_read(os.path.join(broken, "manifest.json")))
    m["counts"]["records_out"] = -1
    with open(os.path.join(broken, "manifest.json"), "w") as f:
        json.dump(m, f)
    _refused([broken], capsys, "manifest schema", "records_out")
    assert not os.path.exists(os.path.join(broken, "report"))
    assert not [n for n in os.listdir(broken) if n.startswith(".report-")]

    other = _tmp("other_kind")
    os.makedirs(other)
    with open(os.path.join(other, "manifest.json"), "w") as f:
        json.dump({"kind": "generator-run"}, f)
    _refused([other], capsys, "not a release manifest")

    occupied = _tmp("occupied")
    os.makedirs(occupied)
    with open(os.path.join(occupied, "keep.txt"), "w") as f:
        f.write("mine")
    _refused([dist, "--out", occupied], capsys, "refusing to overwrite")
    assert os.listdir(occupied) == ["keep.txt"]

    with pytest.raises(SystemExit) as e:
        report.main([dist, "--samples", "-1"])
    assert e.value.code == 2


def test_percentile_is_nearest_rank():
    assert facts_mod.percentile([5, 1, 3, 2, 4], 50) == 3
    assert facts_mod.percentile(list(range(1, 101)), 99) == 99
    assert facts_mod.percentile([7], 99) == 7
    assert facts_mod.next_pow2(1000) == 1024 and facts_mod.next_pow2(1024) == 1024


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
