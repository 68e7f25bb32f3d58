"""A hostile dataset is files, not only records. Each attack below is one a red team ran against
a real run and its release (issue 26), a coherent forgery where it can be (shards re-signed,
counts kept): hidden records, swapped splits, a report written through a link, parser crashes,
a decompression bomb, a FIFO, terminal and markup injection. Each is sent through every entry
point that reads such a file: //validator, //tools:release, //tools:verify (//report: its own
test). Tools that could hang or balloon run in a child process with a timeout, which reports its
own peak memory (VmHWM). (Over 400 lines: one test per attack, read together as the red team's list.)

The attacks are the registry's (validator/fault_kinds.py, suite HOSTILE_FILES): each test that
tries one is marked `@tries(name)`, and what //validator answers is held to the registry's reason
keys (or REFUSED: exit 2, one error line); a registered attack without its test fails
`test_every_registered_file_attack_has_its_test`."""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

from tools.testing import fresh_dir, tmp_root  # noqa: E402 (sets datasets offline before it is imported)

TMP = tmp_root("/tmp/hostile_files_test")

import pipeline  # noqa: E402
from schemas.dataset_format import canonical_json  # noqa: E402
from tools import release, verify  # noqa: E402
from tools.testing import resign_shard  # noqa: E402
from validator import fault_kinds, revalidate  # noqa: E402
from validator.fault_kinds import REFUSED, Suite, tries  # noqa: E402


def _tmp(name):
    return fresh_dir(TMP, name)


def _copy(src, name):
    dst = _tmp(name)
    shutil.copytree(src, dst, symlinks=True)
    return dst


def _json(path):
    with open(path) as f:
        return json.load(f)


def _dump(obj, path):
    with open(path, "w") as f:
        json.dump(obj, f)


@pytest.fixture(scope="module")
def run_dir():
    out = _tmp("run")
    pipeline.run(pipeline.RunConfig("cpu", 8, 5, out, ["arith"], workers=1, quiet=True, archs=["sm_90"]))
    return out


@pytest.fixture(scope="module")
def dist(run_dir):
    out = _tmp("dist")
    assert release.main(["--in", run_dir, "--out", out, "--version", "1.0.0", "--split", "50,0,50"]) == 0
    m = _json(os.path.join(out, "manifest.json"))
    splits = {f["split"] for f in m["files"] if f["path"].endswith(".parquet") and f["rows"]}
    assert splits == {"train", "test"}, splits  # the swap attacks need both
    return out


def _lines(run):
    with open(os.path.join(run, "shard-00000.jsonl"), "rb") as f:
        return f.read().splitlines()


def _resign_run(d):
    """Every shard the run's manifest lists re-signed (bytes, sha256, records) from disk."""
    m = _json(os.path.join(d, "manifest.json"))
    for s in m["shards"] + m["adjoint_mismatch"]["shards"]:
        with open(os.path.join(d, s["path"]), "rb") as f:
            data = f.read()
        s.update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest(), records=data.count(b"\n"))
    _dump(m, os.path.join(d, "manifest.json"))
    return m


def _forged_outputs(line: bytes) -> bytes:
    """A coherent forgery: one stored output element plus one (only re-execution can tell)."""
    r = json.loads(line)
    flat = next(iter(r["io"]["outputs"].values()))["data"]
    while isinstance(flat[0], list):
        flat = flat[0]
    flat[0] = flat[0] + 1.0
    return canonical_json(r).encode()


RUNNER = r"""
import json, sys
sys.path[:0] = json.loads(sys.argv[1])
import importlib
rc = 99
try:
    rc = importlib.import_module(sys.argv[2]).main(sys.argv[3:])
finally:
    hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
    print("VmHWM_kB", hwm, file=sys.stderr)
sys.exit(rc)
"""


def _tool(module, *args, timeout=300):
    """`module.main(args)` in a child process: (exit status, stdout, stderr without the peak
    line, peak RSS in MB); a child that outlives `timeout` fails the test."""
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-c", RUNNER, json.dumps(sys.path), module, *args],
                       capture_output=True, text=True, timeout=timeout, cwd=TMP)
    err = [line for line in p.stderr.splitlines() if not line.startswith("VmHWM_kB")]
    peak = [int(line.split()[1]) / 1024 for line in p.stderr.splitlines() if line.startswith("VmHWM_kB")]
    return p.returncode, p.stdout, "\n".join(err), (peak[0] if peak else None), time.monotonic() - t0


def _rejected_as(kind: str, report: str) -> None:
    """Every failure in //validator's report carries a reason key the registry gives `kind`."""
    codes = {f["code"] for f in _json(report)["failures"]}
    assert codes and codes <= fault_kinds.kind(kind).reasons, (kind, codes)


def _refused(kind: str) -> int:
    """//validator's exit status for an input it refuses whole, as the registry says it must."""
    assert fault_kinds.kind(kind).reasons == {REFUSED}, kind
    return 2


def test_every_registered_file_attack_has_its_test():
    assert fault_kinds.untried(globals(), Suite.HOSTILE_FILES) == []
    assert len(fault_kinds.kinds(Suite.HOSTILE_FILES)) >= 16


def _error_line(err: str) -> str:
    lines = [x for x in err.splitlines() if x.startswith("error:")]
    assert len(lines) == 1, err[-2000:]
    return lines[0]


# ---- hidden records ------------------------------------------------------------------------------

@tries("shard_name_newline")
def test_a_shard_listed_under_a_name_with_a_newline_is_refused_by_the_validator_and_the_release(run_dir, capsys):
    """The run manifest's pattern ^shard-[0-9]{5,}\\.jsonl$ accepted "shard-00001.jsonl\\n": the
    validator (which listed the directory) never saw that file, the release (which read the
    manifest) published its forged record."""
    d = _copy(run_dir, "hidden_newline")
    lines = _lines(d)
    with open(os.path.join(d, "shard-00000.jsonl"), "wb") as f:
        f.write(b"".join(x + b"\n" for x in lines[1:]))
    with open(os.path.join(d, "shard-00001.jsonl\n"), "wb") as f:
        f.write(_forged_outputs(lines[0]) + b"\n")
    m = _json(os.path.join(d, "manifest.json"))
    m["shards"].append({"path": "shard-00001.jsonl\n", "records": 1, "bytes": 0, "sha256": "0" * 64})
    _dump(m, os.path.join(d, "manifest.json"))
    _resign_run(d)
    # refused by the schema's pattern, now read as written (to the end of the text), and by the
    # file rule's canonical names behind it (schemas/files_test.py)
    assert revalidate.main([d, "--device", "cpu", "--quiet"]) == _refused("shard_name_newline")
    line = _error_line(capsys.readouterr().err)
    assert "at shards/1/path" in line and "shard-00001.jsonl" in line
    out = _tmp("hidden_newline_dist")
    assert release.main(["--in", d, "--out", out, "--version", "1.0.0"]) == 1
    assert "at shards/1/path" in _error_line(capsys.readouterr().err) and not os.path.exists(out)


@tries("unlisted_data_file")
def test_a_data_file_in_a_run_that_its_manifest_does_not_list_is_refused(run_dir, capsys):
    d = _copy(run_dir, "hidden_unlisted")
    with open(os.path.join(d, "shard-00001.jsonl.bak"), "wb") as f:
        f.write(_forged_outputs(_lines(d)[0]) + b"\n")
    assert revalidate.main([d, "--device", "cpu", "--quiet"]) == _refused("unlisted_data_file")
    assert "shard-00001.jsonl.bak: in the run but not one of the shards manifest.json lists" in _error_line(capsys.readouterr().err)
    out = _tmp("hidden_unlisted_dist")
    assert release.main(["--in", d, "--out", out, "--version", "1.0.0"]) == 1
    assert "unvalidated shard" in _error_line(capsys.readouterr().err) and not os.path.exists(out)


def _parquet(d, split):
    m = _json(os.path.join(d, "manifest.json"))
    return next(f for f in m["files"] if f["path"].endswith(".parquet") and f["split"] == split)


@tries("parquet_name_newline")
def test_a_release_listing_a_parquet_file_under_a_name_with_a_newline_is_refused(dist, capsys):
    """Coherent: one row moves from the train file to "train-...parquet\\n" (forged outputs), both
    re-signed, counts unchanged. Verify said ok, the validator never read the file, and the
    card's `load_dataset` call globbed it in."""
    import pyarrow.parquet as pq

    d = _copy(dist, "hidden_parquet")
    train = _parquet(d, "train")
    rows = pq.read_table(os.path.join(d, train["path"])).to_pylist()
    outs = json.loads(rows[0]["outputs"])
    flat = next(iter(outs.values()))["data"]
    while isinstance(flat[0], list):
        flat = flat[0]
    flat[0] += 1.0
    rows[0]["outputs"] = canonical_json(outs)
    m = _json(os.path.join(d, "manifest.json"))
    hidden = train["path"] + "\n"
    m["files"].append({**train, "path": hidden, "rows": 1})
    resign_shard(d, hidden, rows[:1], m)
    next(f for f in m["files"] if f["path"] == train["path"])["rows"] = len(rows) - 1
    resign_shard(d, train["path"], rows[1:], m)
    problems = verify.verify(d)
    assert any("manifest schema at files/" in p for p in problems), problems
    assert verify.main([d]) == 1 and "\n" not in _error_line(capsys.readouterr().err)
    assert revalidate.main([d, "--device", "cpu", "--quiet"]) == _refused("parquet_name_newline")
    assert "at files/" in _error_line(capsys.readouterr().err)


@tries("swapped_splits")
def test_swapped_split_files_are_refused_and_an_accepted_release_loads_as_verified(dist, capsys):
    """Train and test files swapped, each manifest entry re-signed to its new content (config,
    split, rows, sha256): every row sits in the split its entry says, so only the path tells."""
    import datasets
    import pyarrow.parquet as pq

    # an accepted release: load_dataset, as the card tells users, gives exactly the rows verify read
    assert verify.verify(dist) == []
    m = _json(os.path.join(dist, "manifest.json"))
    for split in ("train", "test"):
        f = _parquet(dist, split)
        ids = sorted(pq.read_table(os.path.join(dist, f["path"]))["id"].to_pylist())
        loaded = datasets.load_dataset("parquet", data_dir=os.path.join(dist, "data", "cpu"))
        assert sorted(loaded[split]["id"]) == ids and m["counts"]["configs"]["cpu"]["splits"][split] == len(ids)

    d = _copy(dist, "swapped")
    m = _json(os.path.join(d, "manifest.json"))
    train, test = _parquet(d, "train"), _parquet(d, "test")
    tmp = os.path.join(d, "swap")
    os.rename(os.path.join(d, train["path"]), tmp)
    os.rename(os.path.join(d, test["path"]), os.path.join(d, train["path"]))
    os.rename(tmp, os.path.join(d, test["path"]))
    for f in m["files"]:
        if f["path"] == train["path"]:
            f.update(split="test", rows=test["rows"], bytes=test["bytes"], sha256=test["sha256"])
        elif f["path"] == test["path"]:
            f.update(split="train", rows=train["rows"], bytes=train["bytes"], sha256=train["sha256"])
    _dump(m, os.path.join(d, "manifest.json"))
    problems = verify.verify(d)
    assert any("its path is cpu/train, manifest.json lists it as cpu/test" in p for p in problems), problems
    assert revalidate.main([d, "--device", "cpu", "--quiet"]) == _refused("swapped_splits")
    assert "its path is cpu/" in _error_line(capsys.readouterr().err)


# ---- writes outside ------------------------------------------------------------------------------

def _one_record_run(run_dir, name, line=None):
    d = _copy(run_dir, name)
    line = line or _lines(d)[0]
    with open(os.path.join(d, "shard-00000.jsonl"), "wb") as f:
        f.write(line + b"\n")
    _resign_run(d)
    return d


@tries("report_link")
def test_the_validator_never_writes_its_report_through_a_planted_link(run_dir, capsys):
    d = _one_record_run(run_dir, "link_report")
    precious = os.path.join(TMP, "precious.txt")
    with open(precious, "w") as f:
        f.write("outside the dataset")
    os.symlink(precious, os.path.join(d, "validation_report.json"))
    # a link among a run's files is refused before any work
    assert revalidate.main([d, "--device", "cpu", "--quiet"]) == _refused("report_link")
    assert "validation_report.json" in _error_line(capsys.readouterr().err)
    # a link at a report path outside the run: replaced, never written through
    os.unlink(os.path.join(d, "validation_report.json"))
    report = os.path.join(TMP, "link_report.json")
    if os.path.lexists(report):
        os.unlink(report)
    os.symlink(precious, report)
    assert revalidate.main([d, "--device", "cpu", "--quiet", "--report", report]) == 0
    capsys.readouterr()
    with open(precious) as f:
        assert f.read() == "outside the dataset"
    assert not os.path.islink(report) and _json(report)["passed"] == 1


@tries("release_inside_input")
def test_the_release_is_never_written_inside_its_input(run_dir, capsys):
    assert release.main(["--in", run_dir, "--out", os.path.join(run_dir, "dist"), "--version", "1.0.0"]) == 2
    assert "overlap" in _error_line(capsys.readouterr().err)
    assert not os.path.exists(os.path.join(run_dir, "dist"))


@tries("report_inside_release")
def test_the_validator_report_of_a_release_is_never_written_inside_it(dist, capsys):
    d = _copy(dist, "report_inside")
    rc = revalidate.main([d, "--device", "cpu", "--quiet", "--report", os.path.join(d, "data", "r.json")])
    assert rc == _refused("report_inside_release") and "inside the release" in _error_line(capsys.readouterr().err)
    assert verify.verify(d) == []


@tries("rows_in_derived_folder")
def test_rows_planted_in_the_report_and_explorer_folders_are_read_by_no_tool(dist, capsys):
    """//report and //report:explore write into the release (DIST/report, DIST/explore, the
    README's order), so every reader of its file set skips those two folders. A listed Parquet file
    copied under both, where a data/ path would name it a shard, is read by nothing: verify passes,
    the validator re-validates exactly the listed rows, the card's config loads exactly them. The
    same copy anywhere else unlisted is refused by verify and the validator."""
    import datasets

    d = _copy(dist, "derived_rows")
    m = _json(os.path.join(d, "manifest.json"))
    train = _parquet(d, "train")
    for folder in ("report", "explore"):
        os.makedirs(os.path.join(d, folder, "data", "cpu"))
        shutil.copy(os.path.join(d, train["path"]), os.path.join(d, folder, train["path"]))
    assert verify.verify(d) == []
    report = os.path.join(TMP, "derived_rows_report.json")
    assert revalidate.main([d, "--device", "cpu", "--quiet", "--report", report]) == 0
    capsys.readouterr()
    assert _json(report)["records"] == m["counts"]["records_out"] == _json(report)["passed"]
    loaded = datasets.load_dataset(d, "cpu")
    assert sum(len(loaded[s]) for s in loaded) == m["counts"]["records_out"]
    stray = os.path.join(d, "data", "cpu", "train-00001-of-00002.parquet")
    shutil.copy(os.path.join(d, train["path"]), stray)
    assert any("train-00001-of-00002.parquet: present but not listed" in p for p in verify.verify(d))
    assert revalidate.main([d, "--device", "cpu", "--quiet"]) == _refused("rows_in_derived_folder")
    assert "not listed" in _error_line(capsys.readouterr().err)


# ---- crashes: one record's reject, never a traceback ----------------------------------------------

LONG = "\nx = " + "+".join(["1"] * 30000)  # 100 KB of one expression: Python's parser recurses


@tries("long_expression")
def test_a_source_of_one_long_expression_is_one_reject_in_every_entry_point(run_dir, dist, capsys):
    import pyarrow.parquet as pq

    r = json.loads(_lines(run_dir)[0])
    r["source"] += LONG
    d = _one_record_run(run_dir, "long_expr", canonical_json(r).encode())
    assert revalidate.main([d, "--device", "cpu", "--quiet"]) == 1
    assert "bounds: too deeply nested to check" in capsys.readouterr().out
    report = _json(os.path.join(d, "validation_report.json"))
    assert report["failed"] == 1 and report["failures"][0]["code"] == "bounds"
    _rejected_as("long_expression", os.path.join(d, "validation_report.json"))
    out = _tmp("long_expr_dist")
    assert release.main(["--in", d, "--out", out, "--version", "1.0.0"]) == 1
    assert "too deeply nested" in _error_line(capsys.readouterr().err) and not os.path.exists(out)

    d = _copy(dist, "long_expr_release")
    f = _parquet(d, "train")
    rows = pq.read_table(os.path.join(d, f["path"])).to_pylist()
    rows[0]["source"] += LONG
    resign_shard(d, f["path"], rows, _json(os.path.join(d, "manifest.json")))
    problems = verify.verify(d)
    assert len(problems) == 1 and "cannot be checked (RecursionError)" in problems[0], problems
    assert revalidate.main([d, "--device", "cpu", "--quiet"]) == 1
    assert "bounds: too deeply nested to check" in capsys.readouterr().out
    _rejected_as("long_expression", os.path.normpath(d) + ".validation_report.json")


@tries("null_cells", "ptx_arch_mismatch")
def test_null_cells_and_a_ptx_arch_not_the_toolchains_are_rejects_not_tracebacks(dist, capsys):
    import pyarrow.parquet as pq

    d = _copy(dist, "null_cells")
    f = _parquet(d, "train")
    m = _json(os.path.join(d, "manifest.json"))
    rows = pq.read_table(os.path.join(d, f["path"])).to_pylist()
    rows[0]["outputs"] = None
    rows[1]["source"] = None
    resign_shard(d, f["path"], rows, m)
    problems = verify.verify(d)
    assert sum("cannot be checked" in p for p in problems) == 2, problems
    assert revalidate.main([d, "--device", "cpu", "--quiet"]) == 1
    out = capsys.readouterr().out
    assert f"{len(rows) + _parquet(d, 'test')['rows'] - 2} passed, 2 failed" in out
    _rejected_as("null_cells", os.path.normpath(d) + ".validation_report.json")

    d = _copy(dist, "ptx_arch")
    table = pq.read_table(os.path.join(d, f["path"]))
    table = table.rename_columns(["ptx_sm_80" if c == "ptx_sm_90" else c for c in table.column_names])
    pq.write_table(table, os.path.join(d, f["path"]), compression="zstd")
    m = _json(os.path.join(d, "manifest.json"))
    data = open(os.path.join(d, f["path"]), "rb").read()
    next(x for x in m["files"] if x["path"] == f["path"]).update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    _dump(m, os.path.join(d, "manifest.json"))
    assert any("columns differ" in p for p in verify.verify(d))
    assert revalidate.main([d, "--device", "cpu", "--quiet"]) == 1
    assert "PTX columns are not the toolchain's archs" in capsys.readouterr().out
    _rejected_as("ptx_arch_mismatch", os.path.normpath(d) + ".validation_report.json")


# ---- memory and hangs ------------------------------------------------------------------------------

BOMB = r"""
import sys
import pyarrow as pa, pyarrow.parquet as pq
rows = pq.read_table(sys.argv[1]).to_pylist()
big = "A" * (1900 << 20)  # 1.9 GB of one letter (an Arrow string holds at most 2 GiB): a few MB compressed
rows[0]["source"] = big
pq.write_table(pa.Table.from_pylist(rows[:1], schema=pq.read_schema(sys.argv[1])), sys.argv[2], compression="zstd")
"""


@tries("parquet_bomb")
def test_a_parquet_bomb_is_refused_by_verify_and_the_validator_within_1_5_gb(dist):
    d = _copy(dist, "bomb")
    f = _parquet(d, "train")
    path = os.path.join(d, f["path"])
    subprocess.run([sys.executable, "-c", BOMB, path, path + ".bomb"], check=True, timeout=300)
    os.replace(path + ".bomb", path)
    assert os.path.getsize(path) < 64 << 20
    m = _json(os.path.join(d, "manifest.json"))
    data = open(path, "rb").read()
    next(x for x in m["files"] if x["path"] == f["path"]).update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest(),
                                                                   rows=1)
    _dump(m, os.path.join(d, "manifest.json"))
    for module, args, want in (("tools.verify", [d], 1), ("validator.revalidate", [d, "--device", "cpu", "--quiet"], 1)):
        rc, out, err, peak, _ = _tool(module, *args)
        assert rc == want, (module, rc, err[-2000:])
        assert "uncompressed, over" in out + err, (module, out, err[-2000:])
        assert peak < 1536, (module, peak)
    _rejected_as("parquet_bomb", os.path.normpath(d) + ".validation_report.json")


@tries("torn_row_group")
def test_a_parquet_file_whose_row_group_does_not_decode_is_a_problem_not_a_traceback(dist):
    """Footer intact, the data of every file's first row group overwritten, every file re-signed:
    verify names the first file in its one error line and exits 1 (it once crashed on the first
    file, and read a stale row count on the others); //validator rejects each as corrupt."""
    import pyarrow.parquet as pq
    d = _copy(dist, "torn_row_group")
    m = _json(os.path.join(d, "manifest.json"))
    torn = []
    for entry in (f for f in m["files"] if f["path"].endswith(".parquet")):
        path = os.path.join(d, entry["path"])
        col = pq.ParquetFile(path).metadata.row_group(0).column(0)
        start = col.dictionary_page_offset or col.data_page_offset
        with open(path, "r+b") as f:
            f.seek(start + 4)
            f.write(b"\xff" * min(64, col.total_compressed_size - 8))
        data = open(path, "rb").read()
        entry.update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
        torn.append(entry["path"])
    _dump(m, os.path.join(d, "manifest.json"))
    rc, out, err, _, _ = _tool("tools.verify", d)
    assert rc == 1 and "Traceback" not in err, (rc, out, err[-2000:])
    assert f"{torn[0]}: not a readable Parquet file" in _error_line(err), (torn, err[-2000:])
    rc, out, err, _, _ = _tool("validator.revalidate", d, "--device", "cpu", "--quiet")
    assert rc == 1 and "Traceback" not in err and all(f"{p}: not a readable Parquet file" in out for p in torn), \
        (rc, out, err[-2000:])
    _rejected_as("torn_row_group", os.path.normpath(d) + ".validation_report.json")


@tries("overlong_line")
def test_an_overlong_line_is_one_reject_read_past_in_bounded_memory(run_dir):
    d = _copy(run_dir, "long_line")
    with open(os.path.join(d, "shard-00000.jsonl"), "ab") as f:
        f.write(b'{"id": "' + b"7" * (200 << 20) + b'"}\n')
    _resign_run(d)
    rc, out, err, peak, _ = _tool("validator.revalidate", d, "--device", "cpu", "--quiet")
    assert rc == 1 and "a line over" in out, (out, err[-2000:])
    assert peak < 1536, peak
    report = _json(os.path.join(d, "validation_report.json"))
    assert report["records"] == 9 and report["failed"] == 1
    _rejected_as("overlong_line", os.path.join(d, "validation_report.json"))


@tries("fifo")
def test_a_fifo_at_a_listed_path_blocks_no_tool(run_dir, dist):
    d = _copy(run_dir, "fifo_run")
    os.unlink(os.path.join(d, "shard-00000.jsonl"))
    os.mkfifo(os.path.join(d, "shard-00000.jsonl"))
    rc, _, err, _, took = _tool("validator.revalidate", d, "--device", "cpu", "--quiet", timeout=60)
    assert rc == _refused("fifo") and "is a FIFO" in _error_line(err) and took < 30
    rc, _, err, _, took = _tool("tools.release", "--in", d, "--out", _tmp("fifo_out"), "--version", "1.0.0", timeout=60)
    assert rc == 1 and "is a FIFO" in _error_line(err) and took < 30

    r = _copy(dist, "fifo_dist")
    f = _parquet(r, "train")
    os.unlink(os.path.join(r, f["path"]))
    os.mkfifo(os.path.join(r, f["path"]))
    for module, args, want in (("tools.verify", [r], 1), ("validator.revalidate", [r, "--device", "cpu", "--quiet"], 2)):
        rc, _, err, _, took = _tool(module, *args, timeout=60)
        assert rc == want and "is a FIFO" in _error_line(err), (module, rc, err[-1500:])



SLOW = r"""
import functools, json, os, sys, time
sys.path[:0] = json.loads(sys.argv[1])
import importlib
module, slowed, marker = sys.argv[2], sys.argv[3].split(":"), sys.argv[4]
owner = importlib.import_module(slowed[0])
real = getattr(owner, slowed[1])

@functools.wraps(real)
def slow(*a, **k):  # the test's own stand-in for a long run: this process alone, no hook in the tool
    open(marker, "w").close()
    time.sleep(3600)
    return real(*a, **k)

setattr(owner, slowed[1], slow)
sys.exit(importlib.import_module(module).main(sys.argv[5:]))
"""


@pytest.mark.parametrize("module,slowed,args", [
    ("tools.verify", "tools.verify:_check_row", ["DIST"]),
    ("tools.release", "tools.release_inputs:_gate_record", ["--in", "RUN", "--out", "OUT", "--version", "1.0.0"]),
    ("validator.revalidate", "validator.checks:check_static", ["RUN", "--device", "cpu", "--quiet"]),
])
def test_sigterm_stops_each_tool_within_5_seconds_with_one_line(run_dir, dist, module, slowed, args):
    marker = os.path.join(TMP, f"slow_{module}")
    if os.path.exists(marker):
        os.unlink(marker)
    out = _tmp(f"sigterm_{module}")
    args = [{"DIST": dist, "RUN": run_dir, "OUT": out}.get(a, a) for a in args]
    p = subprocess.Popen([sys.executable, "-c", SLOW, json.dumps(sys.path), module, slowed, marker, *args],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=TMP)
    deadline = time.monotonic() + 120
    while not os.path.exists(marker):
        assert p.poll() is None and time.monotonic() < deadline, p.communicate()
        time.sleep(0.1)
    t0 = time.monotonic()
    p.terminate()
    _, err = p.communicate(timeout=30)
    assert time.monotonic() - t0 < 5
    assert p.returncode == 143 and "terminated (SIGTERM)" in _error_line(err), (p.returncode, err[-1500:])
    assert not os.path.exists(out) and not [n for n in os.listdir(TMP) if n.startswith(".release-")]


# ---- terminal and markup injection -----------------------------------------------------------------

FAKE = "\x1b[2K\r\x1b[32m8 records: 8 passed, 0 failed\n"


@tries("escape_in_id", "escape_in_file_name")
def test_escape_sequences_in_ids_and_file_names_are_printed_quoted(run_dir, capsys):
    r = json.loads(_lines(run_dir)[0])
    r["id"] = FAKE
    d = _one_record_run(run_dir, "escape_id", canonical_json(r).encode())
    assert revalidate.main([d, "--device", "cpu", "--quiet"]) == 1
    out, err = capsys.readouterr()
    assert "\x1b" not in out + err and "\\x1b[2K\\x0d" in out
    assert sum(line.startswith("8 records") for line in out.splitlines()) == 0
    _rejected_as("escape_in_id", os.path.join(d, "validation_report.json"))

    d = _copy(run_dir, "escape_name")
    with open(os.path.join(d, "x" + FAKE + ".jsonl"), "w") as f:
        f.write("{}\n")
    for rc_want, main, args in ((_refused("escape_in_file_name"), revalidate.main, [d, "--device", "cpu", "--quiet"]),
                                (1, release.main, ["--in", d, "--out", _tmp("escape_out"), "--version", "1.0.0"])):
        assert main(args) == rc_want
        out, err = capsys.readouterr()
        assert "\x1b" not in out + err and "\\x1b[2K" in _error_line(err)


@tries("markup_in_manifest")
def test_markup_in_a_run_manifest_reaches_the_card_inert_and_a_forged_card_is_refused(run_dir, capsys):
    d = _copy(run_dir, "markup")
    m = _json(os.path.join(d, "manifest.json"))
    payload = "<script>alert(1)</script> [x](javascript:alert(1)) ```\n# fake heading"
    m["validation_notes"]["execute_gpu"] = payload
    _dump(m, os.path.join(d, "manifest.json"))
    out = _tmp("markup_dist")
    assert release.main(["--in", d, "--out", out, "--version", "1.0.0"]) == 0
    capsys.readouterr()
    with open(os.path.join(out, "README.md")) as f:
        card_text = f.read()
    assert "<script>" not in card_text and "\n# fake heading" not in card_text
    assert not re.search(r"(?<!\\)\]\(javascript", card_text)  # an escaped \](...) is text, not a link
    assert "&lt;script&gt;" in card_text
    assert verify.verify(out) == []
    # a card re-written with the payload raw (and re-signed) is not the card the manifest renders
    forged = card_text.replace("&lt;script&gt;", "<script>")
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write(forged)
    rm = _json(os.path.join(out, "manifest.json"))
    entry = next(x for x in rm["files"] if x["path"] == "README.md")
    entry.update(bytes=len(forged.encode()), sha256=hashlib.sha256(forged.encode()).hexdigest())
    _dump(rm, os.path.join(out, "manifest.json"))
    assert any("not the card manifest.json renders to" in p for p in verify.verify(out))


def test_the_tools_pass_the_untouched_run_and_release(run_dir, dist):
    """The rule refuses forgeries, not real data: the run and its release pass every tool."""
    assert verify.verify(dist) == []
    report = revalidate.revalidate(dist, gpu=False, workers=1)
    assert report["failed"] == 0 and report["records"] == _json(os.path.join(dist, "manifest.json"))["counts"]["records_out"]
    report = revalidate.revalidate(run_dir, gpu=False, workers=1)
    assert report["failed"] == 0 and report["records"] == 8



def test_a_cpu_only_validator_runs_under_an_address_space_limit_it_gives_back(run_dir, monkeypatch, capsys):
    """What the caps miss still meets a limit: during a CPU-only local re-validation the process's
    soft RLIMIT_AS is MAIN_ADDRESS_SPACE above what it held at the start; after, it is as before."""
    import resource

    seen = []

    def judge(*a, **k):
        seen.append(resource.getrlimit(resource.RLIMIT_AS))
        raise revalidate.NoShards("stop here")

    before = resource.getrlimit(resource.RLIMIT_AS)
    monkeypatch.setattr(revalidate, "revalidate", judge)
    assert revalidate.main([run_dir, "--device", "cpu", "--quiet"]) == 2
    capsys.readouterr()
    with open("/proc/self/status") as f:
        size = next(int(line.split()[1]) << 10 for line in f if line.startswith("VmSize:"))
    soft, hard = seen[0]
    assert hard == before[1] and 0 < soft - revalidate.MAIN_ADDRESS_SPACE <= size + (256 << 20), (soft, size)
    assert resource.getrlimit(resource.RLIMIT_AS) == before

if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
