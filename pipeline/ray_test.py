"""The Ray executor (--executor ray) on a real local Ray instance started by this test: the same
bytes as a local run, a Ray worker SIGKILLed mid-chunk, the driver SIGKILLed mid-run and the run
resumed, the validator's report, and one-line errors for what Ray cannot do.

One Ray instance for the module (2 CPUs; its files under a short directory in /tmp, since Ray's
unix sockets need paths under 108 characters; HOME a temporary directory, where Ray keeps its
auth token: Bazel may leave HOME unset). A process connected to Ray runs its Ray tasks there."""

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

import pipeline
from pipeline import cli
from pipeline.testing import child_env, dataset_files, leftovers, records, reference_run, scratch_dirs, wait_for_chunks
from validator import revalidate

FAMS = ["arith", "branch"]
COUNT = 60  # two chunks, validated
NV_COUNT = 400  # eight chunks, codegen only: the kill tests need chunks that finish one by one
CLI = os.path.join(os.path.dirname(os.path.abspath(pipeline.__file__)), "cpu.py")
_tmp = scratch_dirs("ray_test_")


def _files(out):
    """The dataset's bytes, its run_config.json too."""
    return dataset_files(out, also=("run_config.json",))


@pytest.fixture(scope="module")
def cluster():
    """A local Ray instance for the module; yields its address (for drivers that join it). TMPDIR
    is a fresh directory for the module, Ray's raylet and workers included, so that what a run
    leaves in it can be seen."""
    import ray

    base = tempfile.mkdtemp(prefix="rt-", dir="/tmp")
    saved = {k: os.environ.get(k) for k in ("HOME", "TMPDIR")}
    for k in saved:
        os.environ[k] = os.path.join(base, k.lower())
        os.makedirs(os.environ[k])
    tempfile.tempdir = os.environ["TMPDIR"]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="error",
             _temp_dir=os.path.join(base, "r"))
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        tempfile.tempdir = None
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def reference():
    """A local run, one worker in this process, validated."""
    return reference_run(COUNT, 5, tuple(FAMS))[0]


@pytest.fixture(scope="module")
def reference_nv():
    """A local codegen-only run, one worker in this process."""
    return reference_run(NV_COUNT, 3, tuple(FAMS), validate=False)[0]


@pytest.fixture(scope="module")
def ray_run(cluster, reference):
    out = _tmp("ray")
    m = pipeline.run(pipeline.RunConfig("cpu", COUNT, 5, out, FAMS, quiet=True, executor="ray"))
    return out, m


def test_a_ray_run_gives_the_bytes_of_a_local_run(ray_run, reference):
    out, m = ray_run
    assert m["counts"]["passed"] == COUNT
    assert _files(out) == _files(reference)
    run = json.load(open(os.path.join(out, "run.json")))
    assert run["executor"] == "ray" and run["workers"] == 2 and run["worker_deaths"] == []
    assert json.load(open(os.path.join(reference, "run.json")))["executor"] == "local"
    assert not leftovers(out)
    # the Ray workers' private Warp caches and temporary files went with the run (they are killed,
    # not exited, at its end); what is left is this process's, which ran the reference run (Warp's
    # per-thread precompiled-header directory carries no pid: a Ray worker's would be in the run's)
    mine = (f"warp-cache-{os.getpid()}-", f"__nvrtc_auto_pch_{os.getpid()}_", "wp_pch_")
    assert [n for n in os.listdir(tempfile.gettempdir()) if not n.startswith(mine)] == []


def test_a_ray_worker_killed_mid_chunk_is_run_again_and_the_output_is_exact(cluster, reference_nv, monkeypatch):
    # a real SIGKILL of the Ray worker in the middle of chunk 1 (after its codegen, before its
    # write), once per run; the fault reaches the Ray worker in the chunk task, as data
    out = _tmp("ray_killed")
    m = pipeline.run(pipeline.RunConfig("cpu", NV_COUNT, 3, out, FAMS, quiet=True, validate=False, executor="ray",
                                        faults=pipeline.Faults(kill_chunk="1")))
    assert m["counts"]["passed"] == NV_COUNT
    assert [(d["chunk"], d["exitcode"]) for d in m["_run"]["worker_deaths"]] == [(1, None)]
    assert _files(out) == _files(reference_nv)
    assert not leftovers(out)


def test_a_chunk_that_keeps_killing_its_ray_worker_ends_the_run_with_one_line(cluster, monkeypatch, capsys):
    # every Ray worker that runs chunk 1 dies: the scheduler's death count stops the run, as locally
    monkeypatch.setattr(cli, "RunConfig", functools.partial(pipeline.RunConfig, faults=pipeline.Faults(kill_chunk="1*")))
    out = _tmp("ray_deaths")
    code = cli.main("cpu", ["--count", "60", "--seed", "5", "--out", out, "--families", "arith", "--quiet",
                            "--no-validate", "--executor", "ray"])
    assert code == pipeline.EXIT_STOPPED
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: chunk 1 lost its worker 4 times"), err[-3:]
    assert os.path.exists(os.path.join(out, "shard-00000.stats.json"))


def test_sticky_cuda_error_cpu_stand_in_on_ray_kills_the_worker_and_rejects_the_culprit(cluster, reference_nv,
                                                                                          monkeypatch):
    # the stand-in raises CudaContextLost for kernel 3 in the Ray worker, which exits at once
    # (EXIT_CUDA_LOST): a worker death for the scheduler; the chunk runs again without the culprit
    from generator.families import build_spec

    family, seed = pipeline.kernel_plan(3, FAMS, 3)
    culprit = build_spec(family, seed).name
    out = _tmp("ray_sticky")
    m = pipeline.run(pipeline.RunConfig("cpu", 100, 3, out, FAMS, quiet=True, validate=False, executor="ray",
                                        faults=pipeline.Faults(sticky_kernel=culprit)))
    assert m["counts"]["passed"] == 100 and m["rejects_by_reason"] == {"cuda_context_lost": 1}
    assert [(d["chunk"], d["exitcode"]) for d in m["_run"]["worker_deaths"]] == [(0, None)]  # Ray hides the status
    ref, got = records(reference_nv), records(out)
    assert got[:3] == ref[:3] and got[3:99] == ref[4:100] and culprit.encode() not in b"".join(got)
    assert not leftovers(out)


def _cli(out, *extra):
    return subprocess.Popen([sys.executable, CLI, "--count", str(NV_COUNT), "--seed", "3", "--out", out,
                             "--families", ",".join(FAMS), "--quiet", "--no-validate", "--executor", "ray", *extra],
                            env=child_env(), start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_the_driver_killed_mid_run_then_rerun_gives_the_uninterrupted_bytes(cluster, reference_nv):
    # the driver starts its own Ray instance (the default), which shares its process group: a
    # SIGKILL of the group takes the driver, Ray and its workers at once, mid-write or not
    killed = _tmp("ray_driver_killed")
    proc = _cli(killed, "--workers", "1")
    wait_for_chunks(proc, killed, 2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = [n for n in os.listdir(killed) if n.endswith(".stats.json")]
    assert 2 <= len(partial) < NV_COUNT // pipeline.CHUNK
    # resumed by a driver that joins this module's cluster (--ray-address)
    again = _cli(killed, "--ray-address", cluster)
    _, err = again.communicate(timeout=600)
    assert again.returncode == 0, err[-2000:]
    assert _files(killed) == _files(reference_nv)
    assert not leftovers(killed)
    ids = [json.loads(line)["id"] for n in sorted(os.listdir(killed)) if n.endswith(".jsonl")
           for line in open(os.path.join(killed, n))]
    assert len(ids) == NV_COUNT == len(set(ids))


def _ray_crashed(err: bytes) -> bool:
    """Ray's core worker aborted the driver (its own bug), not our SIGTERM handling."""
    return b"discovered a bug in Ray" in err or b"_raylet.so" in err


def test_sigterm_of_a_ray_run_s_driver_is_a_clean_stop_then_the_rerun_resumes(cluster, reference_nv):
    """`kill PID` of a driver with its own Ray instance: exit 143 and one error line, as for a
    local run (ray.init puts in a SIGTERM handler that ended the process at once with status 1
    and no message; `connect_ray` puts the caller's back), nothing of the run left running, and
    the rerun gives the uninterrupted bytes.

    Ray 2.60's core worker itself sometimes aborts the driver on the way down (exit 1, "task_manager.cc
    ... An unexpected system state has occurred. You have likely discovered a bug in Ray"): seen in
    5 of 15 runs of this test on a loaded 2-core machine (2026-12-05; 0 of 4 runs of the commit
    before, whose driver and executor code is the same). That crash, and only it, gets up to two
    more tries, known by its message or by Ray's native stack trace on stderr (`_raylet.so`
    frames: seen once more on 2026-12-05 with a trace and no message, a fresh-clone CI run beside
    a harvest); any other outcome fails at once."""
    for attempt in (1, 2, 3):
        out = _tmp("ray_driver_term")
        proc = _cli(out, "--workers", "1")
        wait_for_chunks(proc, out, 1)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
        if not (attempt < 3 and proc.returncode == 1 and _ray_crashed(err)):
            break
    assert proc.returncode == 143, err[-2000:]
    lines = [ln for ln in err.decode().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "terminated (SIGTERM)" in lines[0], err[-2000:]
    with pytest.raises(ProcessLookupError):  # Ray's processes went with the driver
        for _ in range(200):
            os.killpg(proc.pid, 0)
            time.sleep(0.1)
    again = _cli(out, "--ray-address", cluster)
    _, err = again.communicate(timeout=600)
    assert again.returncode == 0, err[-2000:]
    assert _files(out) == _files(reference_nv) and not leftovers(out)


def _damaged_copy(src, name):
    """A copy of a validated run with three records broken, in both shards (file order matters)."""
    out = _tmp(name)
    shutil.copytree(src, out)
    for shard, n in (("shard-00000.jsonl", 1), ("shard-00000.jsonl", 4), ("shard-00001.jsonl", 6)):
        path = os.path.join(out, shard)
        lines = open(path).read().splitlines()
        if n == 1:
            lines[n] = lines[n][:40]  # torn
        elif n == 4:
            lines[n] = lines[n].replace('"outputs":{', '"outputs":{"zz":1,', 1)
        else:
            lines[n] = lines[n].replace('"kernel_name":"', '"kernel_name":"x', 1)
        open(path, "w").write("\n".join(lines) + "\n")
    return out


def test_the_validator_on_ray_gives_the_local_report(cluster, ray_run, capsys):
    out = _damaged_copy(ray_run[0], "validate")
    local, on_ray = os.path.join(out, "local.json"), os.path.join(out, "ray.json")
    assert revalidate.main([out, "--workers", "2", "--quiet", "--report", local]) == 1
    assert revalidate.main([out, "--executor", "ray", "--quiet", "--report", on_ray]) == 1
    a, b = json.load(open(local)), json.load(open(on_ray))
    assert (a.pop("executor"), b.pop("executor")) == ("local", "ray")
    assert a.pop("seconds") and b.pop("seconds")
    assert a == b  # workers too: the cluster's two CPUs
    assert [f["where"] for f in a["failures"]] == ["shard-00000.jsonl:2", "shard-00000.jsonl:5", "shard-00001.jsonl:7"]
    assert a["passed"] == COUNT - 3 and a["execute_gpu"] == {"not_run": COUNT - 3}


@pytest.mark.parametrize("argv,msg", [
    (["--ray-address", "auto"], "--ray-address auto needs --executor ray"),
    (["--executor", "ray", "--gpus", "1"], "--executor ray executes on CPUs only"),
    (["--executor", "ray", "--ray-address", ""], "--ray-address is empty"),
    (["--executor", "dask"], "invalid choice: 'dask'"),
])
def test_bad_executor_flags_give_a_one_line_error_and_exit_2(argv, msg, capsys):
    with pytest.raises(SystemExit) as e:
        cli.parse_args("cpu", argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "error: " in err[-1] and msg in err[-1]


def test_a_local_ray_instance_writes_nothing_to_home_and_runs_where_home_cannot_be_written(cluster):
    # Ray 2.60 writes a new auth token to ~/.ray/auth_token for every local instance where none is
    # configured; HOME=/dev/null (not a directory) makes that write fail, as Bazel's read-only HOME
    # did for //bench. Each entry point starts an instance of its own (no --ray-address).
    out, report = _tmp("home_null"), _tmp("home_null_report.json")
    env = child_env({k: v for k, v in os.environ.items() if not k.startswith("RAY_")}, HOME="/dev/null")
    cwd = os.path.dirname(os.path.dirname(CLI))
    gen = subprocess.run([sys.executable, CLI, "--count", "8", "--seed", "1", "--out", out, "--families", "arith",
                          "--workers", "1", "--quiet", "--no-validate", "--executor", "ray"],
                         env=env, capture_output=True, text=True, timeout=300, cwd=cwd)
    assert gen.returncode == 0, gen.stderr[-2000:]
    assert json.load(open(os.path.join(out, "manifest.json")))["counts"]["passed"] == 8
    val = subprocess.run([sys.executable, "-c", "import sys; from validator.revalidate import main; sys.exit(main())",
                          out, "--executor", "ray", "--workers", "1", "--quiet", "--report", report],
                         env=env, capture_output=True, text=True, timeout=600, cwd=cwd)
    # it judged every record on Ray (codegen-only records fail it: their compiles did not run)
    assert val.returncode == 1, val.stderr[-2000:]
    got = json.load(open(report))
    assert (got["executor"], got["failed"], got["failures_by_reason"]) == ("ray", 8, {"consistency": 8}), got


def test_a_ray_address_nothing_answers_at_is_one_line_and_exit_2():
    # drivers of their own (this process is connected already); ray.init alone waits minutes there
    out, empty = _tmp("unreachable"), _tmp("unreachable_dir")
    os.makedirs(empty)
    env = child_env()
    for cmd in ([CLI, "--out", out, "--executor", "ray", "--ray-address", "127.0.0.1:1"],
                ["-c", "import sys; from validator.revalidate import main; sys.exit(main())", empty, "--executor", "ray",
                 "--ray-address", "127.0.0.1:1"]):
        t0 = time.time()
        done = subprocess.run([sys.executable, *cmd], env=env, capture_output=True, text=True, timeout=120,
                              cwd=os.path.dirname(os.path.dirname(CLI)))
        err = [line for line in done.stderr.strip().splitlines() if not line.startswith("Warp CUDA")]
        assert done.returncode == 2, done.stderr[-2000:]
        assert len(err) == 1 and err[0].startswith("error: --ray-address 127.0.0.1:1: no Ray cluster answers"), err
        assert time.time() - t0 < 60
    assert not os.path.exists(out)  # nothing written


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
