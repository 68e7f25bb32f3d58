"""`./bazelw run //bench -- [flags]`: the speed and memory benchmarks, printed as a table.

Runs pytest-benchmark over bench/benchmarks.py: the naive baseline (the seed's method, one
process), codegen-only (`--no-validate`, both targets, forward and backward, all cores), full
validation, and worker peak RSS at two run sizes; full validation with 1 and 2 local workers and as
Ray tasks; peak RSS of release, verify and report at two release sizes. Prints pytest-benchmark's table, then the
README's table (pairs/s, ratio to the naive baseline, share of time inside Warp, per stage).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

import pytest

from bench import harness
from runtime.process import caller_path
from schemas.dataset_format import RUN_MANIFEST


# --cases: name -> the benchmarks.py tests it selects (pytest -k)
CASES = {"naive": "test_naive_baseline", "codegen_only": "test_codegen_only", "full_validation": "test_full_validation",
         "rss": "test_worker_memory_is_flat_in_count", "executors": "test_full_validation_by_executor",
         "release_memory": "test_release_verify_report_memory"}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bazel run //bench --", description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=2000, help="kernels for the naive and codegen-only runs (default 2000)")
    p.add_argument("--validate-count", type=int, default=300, help="kernels for the full-validation run (default 300)")
    p.add_argument("--rss-small", type=int, default=1000, help="codegen-only run size for the first RSS figure (0: skip)")
    p.add_argument("--rss-large", type=int, default=20000, help="codegen-only run size for the second RSS figure (0: skip)")
    p.add_argument("--scale-count", type=int, default=300,
                   help="validated pairs for the 1-worker, 2-worker and Ray rows (default 300; 0: skip)")
    p.add_argument("--release-small", type=int, default=2000,
                   help="validated records (made here) for the first release/verify/report memory figure (0: skip)")
    p.add_argument("--release-large", type=int, default=20000,
                   help="validated records (made here) for the second release/verify/report memory figure (0: skip)")
    p.add_argument("--release-runs", metavar="SMALL,LARGE",
                   help="existing validated runs to release for the two memory figures instead of making them")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes (default: all cores)")
    p.add_argument("--cases", default=",".join(CASES),
                   help=f"the cases to run, comma-separated (default all: {','.join(CASES)})")
    p.add_argument("--json", help="also write the results here (JSON)")
    return p


def _sizes(args: argparse.Namespace) -> tuple[dict | None, list[str]]:
    """The sizes the benchmarks read and the cases to run; (None, []) after printing the error
    of a bad flag."""
    for name in ("count", "validate_count", "workers"):
        if getattr(args, name) < 1:
            print(f"error: --{name.replace('_', '-')} must be >= 1", file=sys.stderr)
            return None, []
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if not cases or unknown:
        print(f"error: unknown case {', '.join(unknown) or '(none given)'}; known: {', '.join(CASES)}", file=sys.stderr)
        return None, []
    for name in ("scale_count", "release_small", "release_large", "rss_small", "rss_large"):
        if getattr(args, name) < 0:
            print(f"error: --{name.replace('_', '-')} must be >= 0", file=sys.stderr)
            return None, []
    releases = {"release_small": {"count": args.release_small} if args.release_small else None,
                "release_large": {"count": args.release_large} if args.release_large else None}
    if args.release_runs:
        dirs = [caller_path(d) for d in args.release_runs.split(",")]
        missing = [d for d in dirs if not os.path.isfile(os.path.join(d, RUN_MANIFEST))]
        if len(dirs) != 2 or missing:
            print(f"error: --release-runs needs two finished runs SMALL,LARGE; "
                  f"{'no manifest.json in ' + ', '.join(missing) if missing else f'got {len(dirs)}'}", file=sys.stderr)
            return None, []
        releases = {"release_small": {"dir": dirs[0]}, "release_large": {"dir": dirs[1]}}
    return {"count": args.count, "validate_count": args.validate_count, "workers": args.workers,
            "rss_small": args.rss_small, "rss_large": args.rss_large, "scale_count": args.scale_count, **releases}, cases


def _measure(sizes: dict, cases: list[str]) -> dict | None:
    """pytest-benchmark over benchmarks.py for `cases` (its table printed); the results, or None
    after printing why there are none."""
    with tempfile.TemporaryDirectory(prefix="warp-ir-bench-") as tmp:
        results_path = os.path.join(tmp, "results.json")
        os.environ["WARP_IR_BENCH_SIZES"] = json.dumps(sizes)
        os.environ["WARP_IR_BENCH_RESULTS"] = results_path
        here = os.path.dirname(os.path.abspath(__file__))
        code = pytest.main([os.path.join(here, "benchmarks.py"), "-q", "-p", "no:cacheprovider",
                            "-k", " or ".join(CASES[c] for c in cases),
                            "--benchmark-columns=min,rounds", "--benchmark-sort=name"])
        if code != 0 or not os.path.exists(results_path):
            print(f"error: a benchmark failed (pytest exit {int(code)})", file=sys.stderr)
            return None
        with open(results_path) as f:
            return json.load(f)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    sizes, cases = _sizes(args)
    if sizes is None:
        return 2
    results = _measure(sizes, cases)
    if results is None:
        return 1
    text = harness.table(results)
    if text:
        print()
        print(text)
    if "release_small" in results or "release_large" in results:
        print()
        print(harness.release_table(results))
    if args.json:
        harness.save(results, caller_path(args.json))
    return 0


if __name__ == "__main__":
    sys.exit(main())
