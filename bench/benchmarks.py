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
