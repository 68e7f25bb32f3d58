"""The scheduler's hardening: a worker that dies mid-chunk, a lost CUDA context (a CPU stand-in),
the attempt cap, --gpus and device assignment, and refusing to resume across a device change.

A GPU cannot be had here: where a test stands in for one, its name says `cpu_stand_in`."""

import functools
import json
import os
import sys

import pytest

from extractor import warp_adapter
import pipeline
from pipeline import cli, config, executors, plan, scheduler
from pipeline.testing import dataset_files, leftovers, records, reference_run, scratch_dirs
from generator.families import build_spec

FAMS = ["arith", "branch"]
COUNT = 60  # two chunks
_tmp = scratch_dirs("workers_test_")


@pytest.fixture(scope="module")
def reference():
    """An undisturbed run, one worker in this process."""
    return reference_run(COUNT, 5, tuple(FAMS))[0]


def test_a_worker_killed_mid_chunk_is_replaced_and_the_output_is_byte_identical(reference, monkeypatch):
    # a real fault: the worker SIGKILLs itself in the middle of chunk 1 (compiled, not yet written)
    out = _tmp("killed")
    m = pipeline.run(pipeline.RunConfig("cpu", COUNT, 5, out, FAMS, workers=2, quiet=True,
                                        faults=pipeline.Faults(kill_chunk="1")))
    assert m["counts"]["passed"] == COUNT
    assert [(d["chunk"], d["exitcode"]) for d in m["_run"]["worker_deaths"]] == [(1, -9)]
    assert dataset_files(out) == dataset_files(reference)
    assert not leftovers(out)


def test_sticky_cuda_error_cpu_stand_in_restarts_the_worker_and_rejects_the_culprit(reference, monkeypatch):
    # stand-in for a GPU launch that hits an illegal address: the worker raises CudaContextLost
    # for kernel 3 (there is no GPU to fault); the rest is the real control flow: the worker
    # exits, the parent starts a fresh one, the chunk runs again without the culprit
    family, seed = pipeline.kernel_plan(5, FAMS, 3)
    culprit = build_spec(family, seed).name
    out = _tmp("sticky")
    m = pipeline.run(pipeline.RunConfig("cpu", COUNT, 5, out, FAMS, workers=2, quiet=True,
                                        faults=pipeline.Faults(sticky_kernel=culprit)))
    assert m["counts"]["passed"] == COUNT
    assert m["rejects_by_reason"] == {"cuda_context_lost": 1}
    assert "illegal memory access" in m["reject_examples"]["cuda_context_lost"]["reason"]
    assert [(d["chunk"], d["exitcode"]) for d in m["_run"]["worker_deaths"]] == [(0, executors.EXIT_CUDA_LOST)]
    stats = json.load(open(os.path.join(out, "shard-00000.stats.json")))
    assert stats["outcomes"][3]["status"] == "rejected" and culprit in stats["outcomes"][3]["reason"]
    # every other record is byte for byte the undisturbed run's; one more kernel fills the gap
    ref, got = records(reference), records(out)
    assert len(got) == COUNT and got[:3] == ref[:3] and got[3:COUNT - 1] == ref[4:]
    assert culprit.encode() not in b"".join(got)
    assert not leftovers(out)


def test_a_kernel_that_kills_its_worker_twice_is_rejected_and_the_rest_is_byte_identical(reference, monkeypatch):
    # a real process death (SIGKILL) each time kernel 3 starts executing: the stand-in is only
    # for what kills it (a native crash, an out-of-memory kill). The worker's note names the
    # kernel; the first death is a strike, the second rejects it, the third run writes the chunk.
    family, seed = pipeline.kernel_plan(5, FAMS, 3)
    culprit = build_spec(family, seed).name
    out = _tmp("crash")
    m = pipeline.run(pipeline.RunConfig("cpu", COUNT, 5, out, FAMS, workers=2, quiet=True,
                                        faults=pipeline.Faults(crash_kernel=culprit)))
    assert m["counts"]["passed"] == COUNT
    assert m["rejects_by_reason"] == {"worker_died": 1}
    assert culprit in m["reject_examples"]["worker_died"]["reason"]
    assert [(d["chunk"], d["exitcode"], d["kernel"]) for d in m["_run"]["worker_deaths"]] == [(0, -9, culprit)] * 2
    ref, got = records(reference), records(out)
    assert len(got) == COUNT and got[:3] == ref[:3] and got[3:COUNT - 1] == ref[4:]
    assert not leftovers(out)


def test_a_chunk_that_keeps_killing_its_worker_ends_the_run_with_one_line(monkeypatch, capsys):
    # every worker that runs chunk 1 is SIGKILLed mid-chunk: the CLI's run carries the fault
    monkeypatch.setattr(cli, "RunConfig", functools.partial(pipeline.RunConfig, faults=pipeline.Faults(kill_chunk="1*")))
    out = _tmp("deaths")
    code = cli.main("cpu", ["--count", "60", "--seed", "5", "--out", out, "--families", "arith", "--workers", "2",
                            "--quiet", "--no-validate"])
    assert code == pipeline.EXIT_STOPPED
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: chunk 1 lost its worker {scheduler.MAX_WORKER_DEATHS + 1} times")
    assert os.path.exists(os.path.join(out, "shard-00000.stats.json"))  # what was written stays
    assert not os.path.exists(os.path.join(out, "shard-00001.stats.json"))


def test_a_record_json_cannot_hold_costs_that_record_not_the_run(monkeypatch):
    """A NaN anywhere in a record (here planted in the first kernel's coverage) is rejected with
    its reason and counted; the run goes on and writes its count."""
    from validator import checks

    real = checks.check_batch

    def poisoned(specs, *a, **k):
        results = real(specs, *a, **k)
        results[0].coverage = {**results[0].coverage, "planted": float("nan")}
        return results

    monkeypatch.setattr(checks, "check_batch", poisoned)
    out = _tmp("nan_record")
    m = pipeline.run(pipeline.RunConfig("cpu", 5, 1, out, ["arith"], workers=1, quiet=True))
    assert m["counts"]["passed"] == 5 and m["rejects_by_reason"] == {"record": 1}
    assert "not writable as canonical JSON" in m["reject_examples"]["record"]["reason"]


def _nothing_compiles(monkeypatch):
    from validator import checks

    monkeypatch.setattr(checks, "check_batch",
                        lambda specs, *a, **k: [checks.KernelResult.rejected("compile_cpu: stand-in: nothing compiles")
                                                 for _ in specs])


def test_a_run_that_passes_nothing_stops_with_one_line_and_keeps_its_manifest(monkeypatch, capsys):
    _nothing_compiles(monkeypatch)
    out = _tmp("zero")
    code = cli.main("cpu", ["--count", "10", "--out", out, "--workers", "1", "--quiet"])
    assert code == pipeline.EXIT_STOPPED
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: stopped drawing kernels after 200")
    assert f"{plan.ZERO_PASS_CHUNKS} chunks in a row passed nothing" in err[0] and "compile_cpu 200" in err[0]
    m = json.load(open(os.path.join(out, "manifest.json")))
    assert m["counts"]["attempted"] == 200 and m["counts"]["passed"] == 0
    assert m["rejects_by_reason"] == {"compile_cpu": 200}
    assert json.load(open(os.path.join(out, "run.json")))["stopped"]


def test_the_attempt_cap_ends_a_run_whatever_the_streak(monkeypatch):
    _nothing_compiles(monkeypatch)
    monkeypatch.setattr(plan, "ZERO_PASS_CHUNKS", 1000)
    out = _tmp("cap")
    with pytest.raises(pipeline.RunStopped, match=f"attempt cap of {plan.ATTEMPT_FLOOR} kernels"):
        pipeline.run(pipeline.RunConfig("cpu", 7, 1, out, ["arith"], workers=1, quiet=True))
    m = json.load(open(os.path.join(out, "manifest.json")))
    assert m["counts"]["attempted"] == max(plan.ATTEMPT_FACTOR * 7, plan.ATTEMPT_FLOOR)


def test_resuming_across_a_device_change_is_refused_cpu_stand_in(monkeypatch):
    # the GPU host is a stand-in: a device description, no device (nothing runs before the refusal)
    _nothing_compiles(monkeypatch)
    monkeypatch.setattr(plan, "ZERO_PASS_CHUNKS", 1)
    out = _tmp("devices")
    with pytest.raises(pipeline.RunStopped):
        pipeline.run(pipeline.RunConfig("cpu", 1, 1, out, ["arith"], workers=1, quiet=True))
    assert json.load(open(os.path.join(out, "run_config.json")))["devices"] == ["cpu"]
    monkeypatch.setattr(warp_adapter, "device_description", lambda d: f"{d} Stand-in GPU (sm_90)")
    with pytest.raises(pipeline.RunConflict, match="executed on cpu, this one would execute on cpu, cuda:0 Stand-in GPU"):
        pipeline.run(pipeline.RunConfig("cpu", 1, 1, out, ["arith"], workers=1, quiet=True, gpus=["cuda:0"]))
    # and the other way: a run begun on the GPU host is not resumed on a CPU host
    cfg = json.load(open(os.path.join(out, "run_config.json")))
    cfg["devices"] = ["cpu", "cuda:0 Stand-in GPU (sm_90)"]
    open(os.path.join(out, "run_config.json"), "w").write(json.dumps(cfg))
    with pytest.raises(pipeline.RunConflict, match="executed on cpu, cuda:0 Stand-in GPU .*this one would execute on cpu;"):
        pipeline.run(pipeline.RunConfig("cpu", 1, 1, out, ["arith"], workers=1, quiet=True))
    # another device of the same kind (cuda:1 instead of cuda:0) makes the same data
    assert config.device_kinds(["cpu", "cuda:0 X (sm_90)"]) == config.device_kinds(["cpu", "cuda:1 X (sm_90)"])
    assert config.device_kinds(["cpu", "cuda:0 X (sm_90)"]) != config.device_kinds(["cpu", "cuda:0 Y (sm_80)"])


def test_gpus_flag_values():
    have = ["cuda:0", "cuda:1"]

    def bad(msg):
        raise SystemExit(msg)

    assert cli.parse_gpus("auto", have, bad) is None
    assert cli.parse_gpus("none", have, bad) == []
    assert cli.parse_gpus("1", have, bad) == ["cuda:0"]
    assert cli.parse_gpus("cuda:1", have, bad) == ["cuda:1"]
    assert cli.parse_gpus("cuda:1,cuda:0", have, bad) == ["cuda:1", "cuda:0"]
    for value, msg in (("3", "has 2 CUDA devices"), ("0", "must be >= 1"), ("cuda:5", "cuda:5 is not a device here"),
                       ("cuda:0,cuda:0", "twice"), ("two", "expected auto, none"), ("", "expected auto, none")):
        with pytest.raises(SystemExit, match=msg):
            cli.parse_gpus(value, have, bad)


@pytest.mark.parametrize("argv,msg", [
    (["--gpus", "1"], "--gpus 1: this machine has 0 CUDA devices"),
    (["--gpus", "cuda:0"], "cuda:0 is not a device here: this machine has 0 CUDA devices"),
    (["--gpus", "-1"], "expected auto, none"),
])
def test_bad_gpus_give_a_one_line_error_and_exit_2_on_this_machine(argv, msg, capsys):
    if warp_adapter.cuda_devices():
        pytest.skip("this machine has a GPU")
    with pytest.raises(SystemExit) as e:
        cli.parse_args("cpu", argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and msg in err[0]


def test_workers_take_devices_round_robin_and_default_to_8_per_gpu(monkeypatch):
    import multiprocessing

    pool = executors.LocalExecutor(multiprocessing.get_context("spawn"), 3, _tmp("pool"), ["cuda:0", "cuda:1"])
    try:
        assert pool.devices == ["cuda:0", "cuda:1", "cuda:0"]
    finally:
        pool.close()
    pool = executors.LocalExecutor(multiprocessing.get_context("spawn"), 2, _tmp("pool"), [])
    try:
        assert pool.devices == [None, None]  # a machine without GPUs: no device per worker
    finally:
        pool.close()
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert pipeline.default_workers([]) == 16
    monkeypatch.setattr(config, "WORKERS_PER_GPU", 8)
    assert pipeline.default_workers(["cuda:0"]) == 8
    assert pipeline.default_workers(["cuda:0", "cuda:1"]) == 16
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert pipeline.default_workers(["cuda:0", "cuda:1"]) == 16
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert pipeline.default_workers(["cuda:0"]) == 2


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
