"""`./bazelw run //bench -- [flags]`: the speed and memory benchmarks, printed as a table.

Runs pytest-benchmark over bench/benchmarks.py: the naive baseline (the seed's method, one
process), codegen-only (`--no-validate`, both targets, forward and backward, all cores), full
validation, and worker peak RSS at two run sizes. Prints pytest-benchmark's table, then the
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
from generator.paths import caller_path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bazel run //bench --", description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=2000, help="kernels for the naive and codegen-only runs (default 2000)")
    p.add_argument("--validate-count", type=int, default=300, help="kernels for the full-validation run (default 300)")
    p.add_argument("--rss-small", type=int, default=1000, help="codegen-only run size for the first RSS figure (0: skip)")
    p.add_argument("--rss-large", type=int, default=20000, help="codegen-only run size for the second RSS figure (0: skip)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes (default: all cores)")
    p.add_argument("--json", help="also write the results here (JSON)")
    args = p.parse_args(argv)
    for name in ("count", "validate_count", "workers"):
        if getattr(args, name) < 1:
            print(f"error: --{name.replace('_', '-')} must be >= 1", file=sys.stderr)
            return 2
    sizes = {"count": args.count, "validate_count": args.validate_count, "workers": args.workers,
             "rss_small": args.rss_small, "rss_large": args.rss_large}
    with tempfile.TemporaryDirectory(prefix="warp-ir-bench-") as tmp:
        results_path = os.path.join(tmp, "results.json")
        os.environ["WARP_IR_BENCH_SIZES"] = json.dumps(sizes)
        os.environ["WARP_IR_BENCH_RESULTS"] = results_path
        here = os.path.dirname(os.path.abspath(__file__))
        code = pytest.main([os.path.join(here, "benchmarks.py"), "-q", "-p", "no:cacheprovider",
                            "--benchmark-columns=min,rounds", "--benchmark-sort=name"])
        if code != 0 or not os.path.exists(results_path):
            print(f"error: a benchmark failed (pytest exit {int(code)})", file=sys.stderr)
            return 1
        with open(results_path) as f:
            results = json.load(f)
    print()
    print(harness.table(results))
    if args.json:
        harness.save(results, caller_path(args.json))
    return 0


if __name__ == "__main__":
    sys.exit(main())
