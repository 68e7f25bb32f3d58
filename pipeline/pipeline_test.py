"""A run end to end: exactly `count` valid records and a manifest, the same bytes whatever the
worker count, resume after a lost chunk, codegen only (--no-validate), the validator on clean and
damaged data, SIGTERM and SIGKILL of a CLI run then its resume, one-line flag errors, and the
disk a run leaves behind (nothing outside --out, no Warp cache, a worker's cache emptied per batch)."""

import filecmp
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from extractor import warp_adapter
import pipeline
from pipeline import cli
from pipeline.testing import child_env, reference_run, scratch_dirs, shards as _shards, wait_for_chunks
from validator import checks, revalidate

_tmp = scratch_dirs(fresh=False)


@pytest.fixture(scope="module")
def run_a():
    """60 validated pairs by two worker processes."""
    return reference_run(60, 7, ("arith", "branch", "loop"), workers=2)


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
    # the run's toolchain is the one its records were compiled with, measured, not restated
    assert all(r["toolchain"] == m["toolchain"] for r in recs)
    assert m["toolchain"]["cpu"]["compiler"]["block_dim"] == warp_adapter.CPU_BLOCK_DIM
    # the families keep their share of what was written (a family rejected more often would shrink)
    from generator import diversity
    assert diversity.dataset_share_failures(m, tolerance=0.05) == []


def test_kernel_names_that_collide_in_a_chunk_are_counted_not_paired_wrongly(monkeypatch):
    from generator import families

    monkeypatch.setattr(families, "kernel_name", lambda family, seed: f"{family}_collide")
    out = _tmp("run_collide")
    m = pipeline.run(pipeline.RunConfig("cpu", 1, 3, out, ["arith"], workers=1, quiet=True))
    assert m["counts"]["passed"] == 1
    assert m["rejects_by_reason"]["name_collision"] == m["counts"]["rejected"] == pipeline.CHUNK - 1


def test_a_run_leaves_no_warp_cache_behind(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    pipeline.run(pipeline.RunConfig("cpu", 5, 1, str(tmp_path / "out"), ["arith"], workers=2, quiet=True))
    assert sorted(os.listdir(tmp_path)) == ["out"], "the run's temporary directory (workers' Warp caches) remains"


def test_same_seed_same_bytes_whatever_the_worker_count(run_a):
    out, _ = run_a
    other = _tmp("run_b")
    pipeline.run(pipeline.RunConfig("cpu", 60, 7, other, ["arith", "branch", "loop"], workers=1, quiet=True))
    assert _shards(out) == _shards(other)
    for s in _shards(out):
        assert filecmp.cmp(os.path.join(out, s), os.path.join(other, s), shallow=False), s
    assert filecmp.cmp(os.path.join(out, "manifest.json"), os.path.join(other, "manifest.json"), shallow=False)


def test_resume_redoes_only_unfinished_chunks_and_gives_the_same_bytes(run_a):
    out, _ = run_a
    resumed = _tmp("run_c")
    fams = ["arith", "branch", "loop"]
    first = pipeline.run(pipeline.RunConfig("cpu", 100, 7, resumed, fams, workers=1, quiet=True))
    snapshot = {s: open(os.path.join(resumed, s), "rb").read() for s in _shards(resumed)}
    os.remove(os.path.join(resumed, "shard-00001.stats.json"))  # as if killed before chunk 1 finished
    before = os.stat(os.path.join(resumed, "shard-00000.jsonl")).st_mtime_ns
    again = pipeline.run(pipeline.RunConfig("cpu", 100, 7, resumed, fams, workers=1, quiet=True))
    assert os.stat(os.path.join(resumed, "shard-00000.jsonl")).st_mtime_ns == before, "a complete chunk was redone"
    assert {s: open(os.path.join(resumed, s), "rb").read() for s in _shards(resumed)} == snapshot
    assert again["counts"] == first["counts"] and first["counts"]["passed"] == 100
    # the rate counts only the pairs this invocation made, not those it found on disk
    chunk0 = json.load(open(os.path.join(resumed, "shard-00000.stats.json")))
    kept = sum(o["status"] == "passed" for o in chunk0["outcomes"])
    assert first["_run"]["resumed_pairs"] == 0 and again["_run"]["resumed_pairs"] == kept > 0
    run = again["_run"]
    assert abs(run["pairs_per_s"] * run["seconds"] - (100 - kept)) < 1
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


def test_no_validate_writes_the_same_cpp_and_cuda_without_compiling(run_a):
    out, _ = run_a
    fast = _tmp("run_nv")
    m = pipeline.run(pipeline.RunConfig("cpu", 60, 7, fast, ["arith", "branch", "loop"], workers=2, quiet=True, validate=False))
    full = {json.loads(l)["id"]: json.loads(l) for s in _shards(out) if s.endswith(".jsonl") for l in open(os.path.join(out, s))}
    recs = [json.loads(l) for s in _shards(fast) if s.endswith(".jsonl") for l in open(os.path.join(fast, s))]
    assert len(recs) == 60 and {r["id"] for r in recs} == set(full)
    for r in recs:
        assert checks.check_schema(r) == checks.PASSED
        assert "ptx" not in r["ir"] and r["io"]["outputs"] == {}
        assert r["io"]["inputs"] == full[r["id"]]["io"]["inputs"]
        for k in ("compile_cpu", "compile_cuda", "execute_cpu", "execute_gpu"):
            assert r["checks"][k] == checks.not_run(checks.NO_VALIDATE)
        assert {k: r["ir"][k] for k in ("cpp", "cuda")} == {k: full[r["id"]]["ir"][k] for k in ("cpp", "cuda")}
    assert m["validation"]["compile_cuda"] == {"not_run": 60} and m["generator"]["validate"] is False
    # the validator does not take unvalidated records for validated ones
    rep = revalidate.revalidate(fast)
    assert rep["failed"] == 60 and "compile_cpu is not_run" in rep["failures"][0]["reason"]
    # nor can a run resume into a directory written in the other mode
    with pytest.raises(pipeline.RunConflict, match="different config"):
        pipeline.run(pipeline.RunConfig("cpu", 60, 7, fast, ["arith", "branch", "loop"], workers=1, quiet=True, validate=True))


def _cli(out, count, seed=3, env=None):
    code = "import sys; from pipeline.cli import main; sys.exit(main('cpu'))"
    args = ["--count", str(count), "--seed", str(seed), "--out", out, "--families", "arith,branch,loop,dtypes",
            "--workers", "2", "--quiet", "--no-validate"]
    # the run's temporary directory under the test's own (a SIGKILLed run cannot remove it: it
    # stayed in /tmp when Bazel's TMPDIR was the machine's)
    tmpdir = _tmp("cli_tmpdir")
    os.makedirs(tmpdir, exist_ok=True)
    return subprocess.Popen([sys.executable, "-c", code, *args], env=child_env(**{"TMPDIR": tmpdir, **(env or {})}),
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_sigterm_stops_the_workers_and_removes_the_run_s_temporary_directory():
    """`kill PID` (SIGTERM) of a run: one error line, exit 143, no process of the run left, its
    temporary directory gone; the chunks it finished stay and the same command completes the
    run with the bytes of an uninterrupted one."""
    ref, out, tmp = _tmp("term_ref"), _tmp("term_run"), _tmp("term_tmpdir")
    for d in (ref, out, tmp):
        shutil.rmtree(d, ignore_errors=True)
    os.makedirs(tmp)
    assert _cli(ref, 400).wait() == 0
    proc = _cli(out, 400, env={"TMPDIR": tmp})
    wait_for_chunks(proc, out, 2)
    proc.terminate()
    assert proc.wait(timeout=120) == 143
    err = proc.stderr.read().decode()
    assert "terminated (SIGTERM)" in err and err.count("error:") == 1, err
    with pytest.raises(ProcessLookupError):  # no worker of the run's session is still running
        for _ in range(100):
            os.killpg(proc.pid, 0)
            time.sleep(0.1)
    assert os.listdir(tmp) == []
    assert 2 <= len([n for n in os.listdir(out) if n.endswith(".stats.json")]) < 8
    assert _cli(out, 400).wait() == 0
    assert _shards(out) == _shards(ref)
    for name in _shards(ref) + ["manifest.json"]:
        assert filecmp.cmp(os.path.join(ref, name), os.path.join(out, name), shallow=False), name


def test_sigkill_mid_run_then_rerun_gives_every_pair_exactly_once():
    ref, killed = _tmp("kill_ref"), _tmp("kill_run")
    assert _cli(ref, 1000).wait() == 0
    proc = _cli(killed, 1000)
    wait_for_chunks(proc, killed, 4)  # kill once a few chunks are on disk, well before the end
    os.killpg(proc.pid, signal.SIGKILL)  # the parent and every worker, mid-write or not
    proc.wait()
    partial = [n for n in os.listdir(killed) if n.endswith(".stats.json")]
    assert 4 <= len(partial) < 20
    assert _cli(killed, 1000).wait() == 0
    assert _shards(killed) == _shards(ref) and not [n for n in os.listdir(killed) if ".tmp-" in n]
    for s in _shards(ref):
        assert filecmp.cmp(os.path.join(ref, s), os.path.join(killed, s), shallow=False), s
    assert filecmp.cmp(os.path.join(ref, "manifest.json"), os.path.join(killed, "manifest.json"), shallow=False)
    ids = [json.loads(l)["id"] for s in _shards(killed) if s.endswith(".jsonl") for l in open(os.path.join(killed, s))]
    assert len(ids) == 1000 and len(set(ids)) == len(ids)


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


def test_a_run_leaves_nothing_outside_its_out_and_its_temporary_directory():
    """Bounded disk: a validated 100-pair run with two workers, HOME and TMPDIR fresh empty
    directories, one worker SIGKILLed in the middle of chunk 1 (after its compiles). Afterwards
    HOME and TMPDIR are empty again (no Warp cache in ~/.cache, the run's temporary directory and
    the workers' private caches removed, and no NVRTC precompiled header, about 80 MB, which NVRTC
    removes at exit only: a killed worker used to leave one in $TMPDIR), and --out holds the
    dataset's files only."""
    base = _tmp("bounded")
    home, tmp, out = (os.path.join(base, d) for d in ("home", "tmp", "out"))
    os.makedirs(home)
    os.makedirs(tmp)
    # the CLI's run carries a fault (tests only, as data): its worker is SIGKILLed mid-chunk 1
    code = ("import functools, sys; from pipeline import cli, config; "
            "cli.RunConfig = functools.partial(config.RunConfig, faults=config.Faults(kill_chunk='1')); "
            "sys.exit(cli.main('cpu'))")
    env = child_env(HOME=home, TMPDIR=tmp, XDG_CACHE_HOME=os.path.join(home, ".cache"))
    env.pop("TEST_TMPDIR", None)
    env.pop("WARP_IR_RUN_DIR", None)
    done = subprocess.run([sys.executable, "-c", code, "--count", "100", "--seed", "3", "--out", out,
                           "--families", "arith,branch", "--workers", "2", "--quiet"], env=env,
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-2000:]
    left = [os.path.join(d, n) for root in (home, tmp) for d, dirs, names in os.walk(root) for n in dirs + names]
    assert left == [], left[:10]
    with open(os.path.join(out, "run.json")) as f:
        assert [d["chunk"] for d in json.load(f)["worker_deaths"]] == [1]  # the kill did happen
    assert sorted(os.listdir(out)) == ["manifest.json", "run.json", "run_config.json", "shard-00000.jsonl",
                                       "shard-00000.stats.json", "shard-00001.jsonl", "shard-00001.stats.json"]


def test_a_worker_s_private_cache_holds_no_batch_after_it_is_done():
    """The build products of a batch (about 1 MB per 50 kernels) go when the batch does, so a
    worker's cache does not grow with the number of chunks it runs."""
    from generator.families import build_spec
    from generator.render import render_source

    specs = [build_spec("arith", s) for s in (1, 2, 3)]
    for _ in range(3):
        results = checks.check_batch(specs)
        assert all(r.verdicts["execute_cpu"].passed for r in results)
        assert warp_adapter.cache_bytes() == 0
    # and the measurement can see a batch's products while its module is loaded
    workdir = _tmp("loaded")
    os.makedirs(workdir, exist_ok=True)
    module, _ = warp_adapter.load_batch({s.name: render_source(s) for s in specs}, workdir)
    warp_adapter.compile_cpu(module)
    assert warp_adapter.cache_bytes() > 0
    warp_adapter.unload(module)
    assert warp_adapter.cache_bytes() == 0


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
