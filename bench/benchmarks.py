"""pytest-benchmark cases behind `./bazelw run //bench` (sizes come from bench_main's flags).

Each case runs once (a run is seconds to minutes of real compiling; repeating it would only
multiply the wait) and leaves its figures in the results file that bench_main turns into
the README's table.
"""

import json
import os

import pytest

from bench import harness

SIZES = json.loads(os.environ.get("WARP_IR_BENCH_SIZES", "{}"))
RESULTS: dict = {}


@pytest.fixture(scope="session", autouse=True)
def _save_results():
    yield
    harness.save(RESULTS, os.environ["WARP_IR_BENCH_RESULTS"])


def _once(benchmark, fn, *args, **kwargs):
    return benchmark.pedantic(fn, args=args, kwargs=kwargs, rounds=1, iterations=1, warmup_rounds=0)


def test_naive_baseline(benchmark):
    r = _once(benchmark, harness.naive, SIZES["count"])
    assert r["pairs"] == SIZES["count"]
    RESULTS["naive"] = r
    benchmark.extra_info.update(r)


def test_codegen_only(benchmark):
    r = _once(benchmark, harness.pipeline_run, SIZES["count"], False, SIZES["workers"])
    assert r["pairs"] == SIZES["count"]
    RESULTS["codegen_only"] = r
    benchmark.extra_info.update(r)


def test_full_validation(benchmark):
    r = _once(benchmark, harness.pipeline_run, SIZES["validate_count"], True, SIZES["workers"])
    assert r["pairs"] == SIZES["validate_count"]
    RESULTS["full_validation"] = r
    benchmark.extra_info.update(r)


@pytest.mark.parametrize("which", ["rss_small", "rss_large"])
def test_worker_memory_is_flat_in_count(benchmark, which):
    if not SIZES.get(which):
        pytest.skip(f"{which} not requested")
    r = _once(benchmark, harness.pipeline_run, SIZES[which], False, SIZES["workers"])
    assert r["pairs"] == SIZES[which]
    RESULTS[which] = r
    benchmark.extra_info.update(r)


@pytest.mark.parametrize("which", ["local_1", "local_2", "ray"])
def test_full_validation_by_executor(benchmark, which):
    """Full validation of the same kernels with 1 and 2 local workers and as Ray tasks (2 at once,
    on a local Ray instance the run starts itself: its start-up counts)."""
    count = SIZES.get("scale_count")
    if not count:
        pytest.skip("--scale-count 0")
    workers, executor = {"local_1": (1, "local"), "local_2": (2, "local"), "ray": (2, "ray")}[which]
    r = _once(benchmark, harness.pipeline_run, count, True, workers, executor=executor)
    assert r["pairs"] == count
    RESULTS[which] = r
    benchmark.extra_info.update(r)


@pytest.mark.parametrize("which", ["release_small", "release_large"])
def test_release_verify_report_memory(benchmark, which, tmp_path):
    """Peak RSS of //tools:release, //tools:verify and //report over a validated run of the given
    size (made here with seed 0, or an existing run passed with --release-runs)."""
    want = SIZES.get(which)
    if not want:
        pytest.skip(f"{which} not requested")
    run_dir = want.get("dir")
    if run_dir is None:
        run_dir = str(tmp_path / "run")
        harness.pipeline_run(want["count"], True, SIZES["workers"], keep=run_dir)
    r = _once(benchmark, harness.release_memory, run_dir)
    RESULTS[which] = r
    benchmark.extra_info.update(r)
