"""The report of a small real release: every number it states comes from the release.

Generates 30 CPU and 20 CUDA kernels with the real pipeline, releases them, writes the report,
then checks that each number in report.md is a value of facts.json, that the key facts equal the
manifest and the shards, that the HTML is self-contained, the PNGs valid and deterministic, the
sample excerpts verbatim, the same release giving the same bytes, and that bad input gives one
line and exit 2 and writes nothing. Forged copies of the release check that untrusted text comes
out inert (markup, TeX-like reasons, escape sequences), that values of an unexpected type are left
out with a note, that long lists are capped (20,000 reasons), that a FIFO, a symlinked or nested
manifest and a Parquet bomb are refused, and that SIGTERM stops it cleanly; and, alone, the byte
cap of excerpts and nearest-rank percentiles (report/samples.py, report/measures.py). (Over 400
lines: every check shares the one release the fixture builds, one test per forged attack.)
"""

import base64
import collections
import glob
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pyarrow as pa
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


def test_coverage_is_the_builtins_the_sources_call_against_the_wheel(dist):
    """The report's builtins per config are the wheel's builtin names the shards' sources call in
    their kernel and func bodies (found here by a plain walk of every call, `wp.name(...)` or
    `name(...)`), and their share of the wheel's call sites is recomputed from the wheel's
    usage as generator/coverage.py reads it."""
    import ast

    from generator import coverage as gc

    def calls(source):
        out = set()
        for fn in ast.walk(ast.parse(source)):
            if isinstance(fn, ast.FunctionDef) and fn.decorator_list:
                for node in (x for stmt in fn.body for x in ast.walk(stmt)):
                    f = getattr(node, "func", None)
                    if isinstance(f, ast.Name):
                        out.add(f.id)
                    elif isinstance(f, ast.Attribute) and getattr(f.value, "id", None) == "wp":
                        out.add(f.attr)
        return out

    _, built, rows = _load(dist)
    c = built["facts"]["coverage"]
    names = gc.builtin_names(gc.wheel_root())
    every = set()
    for config, rs in rows.items():
        got = {n for r in rs for n in calls(r["source"]) if n in names}
        assert c["configs"][config] == len(got) > 5, config
        every |= got
    assert c["builtins"] == len(every) and c["unparsed_sources"] == 0
    wheel = gc.wheel_usage(gc.wheel_root(), names)
    total = sum(wheel.sites.values())
    assert c["real_call_sites"] == total > 10000 and c["real_builtins"] == len(wheel.sites)
    assert c["call_site_pct"] == round(100 * sum(n for b, n in wheel.sites.items() if b in every) / total, 1)
    top = sorted(((n, b) for b, n in wheel.sites.items() if b not in every), key=lambda x: (-x[0], x[1]))
    assert c["missing"] == [[b, n] for n, b in top[:10]]
    md = _read(os.path.join(dist, "report", "report.md"))
    assert "## Language coverage" in md and f"cover {c['call_site_pct']}% of those call sites" in md


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


def test_the_explorer_s_default_folder_leaves_the_release_a_release(dist):
    """The README's order ends with //report:explore writing DIST/explore beside DIST/report: the
    release still verifies, and //report and the explorer run again over it, each past the other's
    folder (the validator skips both too: tools/hostile_files_test.py)."""
    from report import explore_main

    d = _tmp("with_explorer")
    shutil.copytree(dist, d)
    assert explore_main.main([d]) == 0 and os.path.isfile(os.path.join(d, "explore", "index.html"))
    assert verify.verify(d) == []
    assert report.main([d]) == 0 and explore_main.main([d]) == 0
    assert verify.verify(d) == []


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


# ---- a hostile release: files, not only records ----------------------------------------------

PAYLOADS = ["<script>alert(1)</script>", "<img src=x onerror=alert(2)>", "[click](javascript:alert(3))",
            "![x](javascript:alert(4)) **bold** `code` | pipe\n# heading"]
SHARD = "data/cpu/train-00000-of-00001.parquet"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _forge(dist, name):
    """A copy of the release (its report left out) to forge, and its manifest."""
    path = _tmp(name)
    shutil.copytree(dist, path, ignore=shutil.ignore_patterns("report"))
    return path, json.loads(_read(os.path.join(path, "manifest.json")))


def _write_manifest(path, m):
    with open(os.path.join(path, "manifest.json"), "w") as f:
        json.dump(m, f)


def _resign(path, rel, m):
    """List the rewritten file `rel` in the manifest `m` with its new size and sha256 (as
    tools/testing.py resign_shard does; that target is not visible to //report)."""
    data = _read(os.path.join(path, rel), "rb")
    entry = next(f for f in m["files"] if f["path"] == rel)
    entry.update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    _write_manifest(path, m)


# runs //report in a grandchild and prints its exit status and peak RSS: getrusage(RUSAGE_CHILDREN)
# of this small launcher covers that one child (a child's ru_maxrss also counts the memory of the
# process it was forked from, so the test process, which built a bomb, must not be its parent)
LAUNCHER = """import resource, subprocess, sys
code = "import sys; from report.report_main import main; sys.exit(main(sys.argv[1:]))"
try:
    rc = subprocess.run([sys.executable, "-c", code, *sys.argv[2:]], stdout=subprocess.DEVNULL,
                        timeout=float(sys.argv[1])).returncode
except subprocess.TimeoutExpired:
    rc = "timeout"
print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)
"""


def _child(args, timeout=60):
    """`//report ARGS` in a child process: (exit status, stderr, seconds, its peak RSS in bytes)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-c", LAUNCHER, str(timeout), *args], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=timeout + 30)
    took = time.monotonic() - t0
    rc, peak = p.stdout.split()
    assert rc != "timeout", f"//report {args} still running after {timeout} s"
    return int(rc), p.stderr, took, int(peak)


def _one_line(err):
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "\x1b" not in err and "Traceback" not in err, err
    return err


def test_markup_in_a_reject_reason_and_a_note_comes_out_inert(dist):
    path, m = _forge(dist, "markup")
    m["inputs"][0]["rejects_by_reason"] = {p: 3 + k for k, p in enumerate(PAYLOADS)}
    m["validation"]["notes"]["evil <b>"] = PAYLOADS
    m["inputs"][1]["run"]["stage_seconds"]["<svg onload=alert(5)>"] = 1.0
    _write_manifest(path, m)
    assert report.main([path]) == 0
    md = _read(os.path.join(path, "report", "report.md"))
    html = _read(os.path.join(path, "report", "report.html"))
    for raw in ("<script", "<img src=x", "<svg", "<b>", "\n# heading"):
        assert raw not in md and raw not in html, raw
    assert not re.search(r"(?<!\\)\]\(javascript:", md)  # every link's bracket escaped: plain text
    assert not re.search(r"(href|src)\s*=\s*[\"']?javascript", html, re.I)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in md and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(2)&gt;" in html and "\\*\\*bold\\*\\*" in md
    assert "<strong>bold</strong>" not in html and "<code>code</code>" not in html
    # a table row is still one row: the payload's pipe is escaped, its newline written as \x0a
    rows = [ln for ln in md.splitlines() if "pipe" in ln]
    assert len(rows) == 3 and all("\\| pipe\\\\x0a\\# heading" in ln for ln in rows), rows


def test_a_tex_like_reason_is_drawn_literally(dist):
    path, m = _forge(dist, "tex")
    m["inputs"][0]["rejects_by_reason"] = {"$\\frac{a}{$": 2, "$x^{": 1, "a $$ b \\sqrt{": 4, "$\\mathrm{$": 1}
    _write_manifest(path, m)
    assert report.main([path]) == 0
    png = _read(os.path.join(path, "report", "reject_reasons.png"), "rb")
    assert png.startswith(PNG_MAGIC)
    assert "$x^{" in _read(os.path.join(path, "report", "facts.json"))


def test_a_non_numeric_stage_time_is_left_out_with_a_note(dist):
    path, m = _forge(dist, "stage_time")
    run0, run1 = m["inputs"][0]["run"], m["inputs"][1]["run"]
    run0["stage_seconds"]["llvm"] = "fast"
    run0["stage_seconds"]["nvrtc"] = None
    run0["pairs_per_s"] = float("inf")  # json writes Infinity, which Python's json reads
    del run0["seconds"]
    run1["stage_seconds"] = "lots"
    run1["workers"] = [1]
    _write_manifest(path, m)
    assert report.main([path]) == 0
    F = json.loads(_read(os.path.join(path, "report", "facts.json")))["facts"]
    r0, r1 = F["throughput"]["runs"]
    assert "llvm" not in r0["stage_seconds"] and r0["stage_seconds"]["cut"] == run0["stage_seconds"]["cut"]
    assert r0["pairs_per_s"] is None and r0["seconds"] is None and r1["stage_seconds"] is None
    assert {x["name"] for x in F["skipped"]["values"]} >= {"llvm", "nvrtc", "pairs_per_s", "stage_seconds", "workers"}
    md = _read(os.path.join(path, "report", "report.md"))
    assert "Left out of these figures" in md and "llvm = fast" in md


def test_twenty_thousand_distinct_reasons_are_capped_and_fast(dist):
    path, m = _forge(dist, "many_reasons")
    m["inputs"][0]["rejects_by_reason"] = {f"reason {k:05d}": k + 1 for k in range(20000)}
    _write_manifest(path, m)
    t0 = time.monotonic()
    assert report.main([path]) == 0
    assert time.monotonic() - t0 < 30
    md = _read(os.path.join(path, "report", "report.md"))
    assert "reason 19999" in md and "reason 19950" in md and "reason 19949" not in md and "reason 00000" not in md
    assert "Top 50 reasons shown, and 19950 more" in md
    assert len(md) < 300_000 and os.path.getsize(os.path.join(path, "report", "reject_reasons.png")) < 500_000
    g = json.loads(_read(os.path.join(path, "report", "facts.json")))["facts"]["generation"]
    assert len(g["reasons"]) == 50 and g["reasons_more"] == 19950 and g["reasons_distinct"] == 20000
    assert g["reasons_more_kernels"] == sum(range(1, 19951))


def test_excerpts_are_capped_in_bytes():
    big = "x" * (10 << 20) + "\nmore\n"
    ex, cut = facts_mod.excerpt(big, 40)
    assert cut and len(ex.encode()) <= facts_mod.EXCERPT_BYTES and big.startswith(ex)
    wide = "\u00e9" * facts_mod.EXCERPT_BYTES  # two bytes each
    ex, cut = facts_mod.excerpt(wide, 40)
    assert cut and len(ex.encode()) <= facts_mod.EXCERPT_BYTES and wide.startswith(ex)
    assert facts_mod.excerpt("a\nb\nc\n", 2) == ("a\nb", False) and facts_mod.excerpt("a\nb\n", 40) == ("a\nb", False)


def test_a_fifo_at_a_listed_parquet_path_or_at_the_manifest_is_refused_at_once(dist):
    path, _ = _forge(dist, "fifo")
    os.unlink(os.path.join(path, SHARD))
    os.mkfifo(os.path.join(path, SHARD))
    rc, err, took, _ = _child([path], timeout=30)
    assert rc == 2 and "FIFO" in _one_line(err) and took < 20, (rc, err, took)
    assert not os.path.exists(os.path.join(path, "report"))
    path, _ = _forge(dist, "fifo_manifest")
    os.unlink(os.path.join(path, "manifest.json"))
    os.mkfifo(os.path.join(path, "manifest.json"))
    rc, err, took, _ = _child([path], timeout=30)
    assert rc == 2 and "FIFO" in _one_line(err), (rc, err)


def test_a_symlinked_or_nested_manifest_is_refused(dist, capsys):
    path, m = _forge(dist, "link")
    elsewhere = os.path.join(TMP, "manifest_elsewhere.json")
    shutil.copy(os.path.join(path, "manifest.json"), elsewhere)
    os.unlink(os.path.join(path, "manifest.json"))
    os.symlink(elsewhere, os.path.join(path, "manifest.json"))
    err = _refused([path], capsys, "symbolic link")
    assert not os.path.exists(os.path.join(path, "report"))
    os.unlink(os.path.join(path, "manifest.json"))
    with open(os.path.join(path, "manifest.json"), "w") as f:
        f.write("[" * 200_000 + "]" * 200_000)
    err = _refused([path], capsys, "nested deeper")
    assert "Traceback" not in err


def test_a_parquet_bomb_is_refused_in_bounded_memory(dist):
    path, m = _forge(dist, "bomb")
    t = pq.read_table(os.path.join(path, SHARD))
    n, big = t.num_rows, 600 << 20
    offsets = pa.array([0] + [big] * n, pa.int32()).buffers()[1]
    data = pa.py_buffer(bytes(big))  # zeros (valid UTF-8), lazily mapped here
    cell = pa.Array.from_buffers(pa.string(), n, [None, offsets, data])  # row 0: 600 MB; the rest empty
    for col in ("source", "ir_cpp_forward"):  # one row group, 1.2 GB uncompressed
        t = t.set_column(t.schema.get_field_index(col), col, cell)
    pq.write_table(t, os.path.join(path, SHARD), compression="zstd", use_dictionary=False, write_statistics=False,
                   row_group_size=n)
    del t, cell, data
    assert os.path.getsize(os.path.join(path, SHARD)) < 2 << 20
    _resign(path, SHARD, m)
    rc, err, took, peak = _child([path], timeout=120)
    assert rc == 2 and "refused" in _one_line(err) and SHARD in err, err
    assert peak is not None and peak < 1.5e9, peak
    assert not os.path.exists(os.path.join(path, "report"))


def test_escape_sequences_in_an_id_are_printed_quoted(dist, capsys):
    path, m = _forge(dist, "escape_id")
    t = pq.read_table(os.path.join(path, SHARD))
    rows = t.to_pylist()
    rows[0]["id"] = "\x1b]0;owned\x07\x1b[2J\u202eevil"
    rows[0]["coverage"] = "{not json"
    pq.write_table(pa.Table.from_pylist(rows, schema=t.schema), os.path.join(path, SHARD), compression="zstd")
    _resign(path, SHARD, m)
    err = _refused([path], capsys, "coverage is not JSON", "\\x1b]0;owned\\x07\\x1b[2J\\u202eevil")
    assert "\x1b" not in err and "\x07" not in err and "\u202e" not in err


def test_sigterm_stops_the_report_with_one_line_and_nothing_written(dist):
    parent = _tmp("sigterm")
    os.makedirs(parent)
    out, flag = os.path.join(parent, "out"), os.path.join(TMP, "sigterm_flag")
    if os.path.exists(flag):
        os.unlink(flag)
    # the report is held in its plotting step (after its temporary directory exists) until killed
    code = ("import sys, time; from report import plots; from report.report_main import main\n"
            "def held(*a):\n    open(sys.argv[1], 'w').close(); time.sleep(60)\n"
            "plots.draw_all = held\nsys.exit(main(sys.argv[2:]))")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    p = subprocess.Popen([sys.executable, "-c", code, flag, dist, "--out", out], cwd=ROOT, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not os.path.exists(flag) and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert os.path.exists(flag), p.communicate(timeout=5)
        assert [n for n in os.listdir(parent) if n.startswith(".report-")]  # the report being built
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=10)
        took = time.monotonic() - t0
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    err = err.decode()
    assert p.returncode == 143 and took < 5, (p.returncode, err, took)
    assert err.startswith("error: terminated (SIGTERM)") and err.count("\n") == 1, err
    assert os.listdir(parent) == []  # no report, no half-built one


def test_percentile_is_nearest_rank():
    assert facts_mod.percentile([5, 1, 3, 2, 4], 50) == 3
    assert facts_mod.percentile(list(range(1, 101)), 99) == 99
    assert facts_mod.percentile([7], 99) == 7
    assert facts_mod.next_pow2(1000) == 1024 and facts_mod.next_pow2(1024) == 1024


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
