import filecmp
import json
import os
import sys

import pytest

from extractor import warp_adapter
from generator import cli, pipeline
from validator import checks, revalidate


def _tmp(name):
    return os.path.join(os.environ.get("TEST_TMPDIR", "/tmp"), name)


@pytest.fixture(scope="module")
def run_a():
    out = _tmp("run_a")
    m = pipeline.run("cpu", 60, 7, out, ["arith", "branch", "loop"], workers=2, quiet=True)
    return out, m


def _shards(out):
    return sorted(p for p in os.listdir(out) if p.startswith("shard-"))


def test_writes_exactly_count_valid_records_and_a_manifest(run_a):
    out, m = run_a
    gpu = warp_adapter.cuda_available()
    recs = [json.loads(l) for s in _shards(out) if s.endswith(".jsonl") for l in open(os.path.join(out, s))]
    assert len(recs) == 60 == m["counts"]["passed"]
    assert m["counts"]["attempted"] == m["counts"]["passed"] + m["counts"]["rejected"]
    assert sum(m["rejects_by_reason"].values()) == m["counts"]["rejected"]
    for r in recs:
        assert checks.check_schema(r) == checks.PASSED
        assert r["checks"]["execute_cpu"]["status"] == "passed"
        assert r["checks"]["compile_cuda"]["status"] == "passed"
        assert list(r["ir"]["ptx"]) == ["sm_90"] and r["kernel_name"] in r["ir"]["ptx"]["sm_90"]["forward"]
        assert r["checks"]["execute_gpu"]["status"] == ("passed" if gpu else "not_run")
    with open(os.path.join(out, "manifest.json")) as f:
        assert json.load(f)["counts"] == m["counts"]
    assert m["validation"]["compile_cuda"] == {"passed": 60}
    assert m["validation"]["execute_cpu"] == {"passed": 60}
    assert m["validation"]["execute_gpu"] == ({"passed": 60} if gpu else {"not_run": 60})
    assert m["toolchain"]["ptx_archs"] == ["sm_90"] and m["toolchain"]["nvrtc"]


def test_same_seed_same_bytes_whatever_the_worker_count(run_a):
    out, _ = run_a
    other = _tmp("run_b")
    pipeline.run("cpu", 60, 7, other, ["arith", "branch", "loop"], workers=1, quiet=True)
    assert _shards(out) == _shards(other)
    for s in _shards(out):
        assert filecmp.cmp(os.path.join(out, s), os.path.join(other, s), shallow=False), s
    assert filecmp.cmp(os.path.join(out, "manifest.json"), os.path.join(other, "manifest.json"), shallow=False)


def test_resume_redoes_only_unfinished_chunks_and_gives_the_same_bytes(run_a):
    out, _ = run_a
    resumed = _tmp("run_c")
    fams = ["arith", "branch", "loop"]
    first = pipeline.run("cpu", 100, 7, resumed, fams, workers=1, quiet=True)
    snapshot = {s: open(os.path.join(resumed, s), "rb").read() for s in _shards(resumed)}
    os.remove(os.path.join(resumed, "shard-00001.stats.json"))  # as if killed before chunk 1 finished
    before = os.stat(os.path.join(resumed, "shard-00000.jsonl")).st_mtime_ns
    again = pipeline.run("cpu", 100, 7, resumed, fams, workers=1, quiet=True)
    assert os.stat(os.path.join(resumed, "shard-00000.jsonl")).st_mtime_ns == before, "a complete chunk was redone"
    assert {s: open(os.path.join(resumed, s), "rb").read() for s in _shards(resumed)} == snapshot
    assert again["counts"] == first["counts"] and first["counts"]["passed"] == 100
    # chunk 0 is complete in both runs, so it is byte-identical to the 60-pair run's chunk 0
    assert filecmp.cmp(os.path.join(out, "shard-00000.jsonl"), os.path.join(resumed, "shard-00000.jsonl"), shallow=False)


def test_validator_passes_clean_data_and_names_each_injected_fault(run_a, tmp_path):
    out, _ = run_a
    assert revalidate.revalidate(out)["failed"] == 0
    shard = os.path.join(out, "shard-00000.jsonl")
    lines = open(shard).read().splitlines()
    recs = [json.loads(l) for l in lines[:5]]
    recs[0]["ir"]["cpp"]["forward"] = recs[0]["ir"]["cpp"]["forward"].replace("wp::", "wq::", 1)
    name, t = next(iter(recs[1]["io"]["outputs"].items()))
    t["data"][0] = t["data"][0] + 1.0
    recs[2]["source"] = "import os\n" + recs[2]["source"]
    del recs[3]["toolchain"]
    recs[4]["io"]["outputs"], recs[0]["io"]["outputs"] = recs[0]["io"]["outputs"], recs[4]["io"]["outputs"]
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "shard-00000.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs) + "{not json\n")
    rep = revalidate.revalidate(str(bad))
    reasons = {f["where"]: f["reason"] for f in rep["failures"]}
    assert reasons["shard-00000.jsonl:1"].startswith("ir_match")
    assert reasons["shard-00000.jsonl:2"].startswith("io")
    assert reasons["shard-00000.jsonl:3"].startswith("safety") or reasons["shard-00000.jsonl:3"].startswith("spec_source")
    assert reasons["shard-00000.jsonl:4"].startswith("schema")
    assert reasons["shard-00000.jsonl:5"].startswith("io")
    assert reasons["shard-00000.jsonl:6"].startswith("corrupt")
    assert rep["failed"] == 6


@pytest.mark.parametrize("argv,msg", [
    (["--families", "nope"], "unknown family nope"),
    (["--seed", "-1"], "--seed must be"),
    (["--count", "0"], "--count must be"),
    (["--workers", "0"], "--workers must be"),
    (["--count", "abc"], "invalid int value"),
    (["--arch", "sm_1"], "--arch sm_1 is not supported"),
])
def test_bad_arguments_give_a_one_line_error_and_exit_2(argv, msg, capsys):
    with pytest.raises(SystemExit) as e:
        cli.parse_args("cpu", argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert msg in err[-1]


def test_cli_end_to_end_writes_a_summary(capsys):
    out = _tmp("cli_out")
    assert cli.main("cuda", ["--count", "10", "--out", out, "--workers", "1", "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "wrote 10 pairs" in text and "reduce_atomic" in text and "stencil" in text


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
