"""Command line of //generator:cpu and //generator:cuda."""

from __future__ import annotations

import argparse
import os
import sys

from generator.families import FAMILIES, families_for
from generator.paths import caller_path

DEFAULT_COUNT = 300  # the embedded default config: a small real dataset
DEFAULT_SEED = 0


def _resolve(path: str) -> str:
    """Relative paths are relative to where the user ran ./bazelw (not Bazel's runfiles)."""
    return caller_path(path)


def parse_args(target: str, argv: list[str]) -> argparse.Namespace:
    workspace = os.environ.get("BUILD_WORKSPACE_DIRECTORY") or os.getcwd()
    p = argparse.ArgumentParser(
        prog=f"bazel run //generator:{target} --",
        description=f"Generate validated Warp kernel -> IR pairs from the {target.upper()} families "
        f"({', '.join(families_for(target))}).",
    )
    p.add_argument("--count", type=int, default=DEFAULT_COUNT, help=f"pairs to write (default {DEFAULT_COUNT})")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="run seed, an integer >= 0 (default 0)")
    p.add_argument("--out", default=os.path.join(workspace, "out", target),
                   help=f"output directory (default out/{target}/ in the workspace)")
    p.add_argument("--families", default=",".join(families_for(target)),
                   help="comma-separated families to draw from, uniformly (default: all of this target's)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes (default: all cores)")
    p.add_argument("--arch", default="sm_90",
                   help="comma-separated NVRTC targets for the PTX of every pair (default sm_90)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--no-validate", dest="validate", action="store_false",
                   help="codegen only (the fast path): C++ and CUDA forward+backward from Warp's codegen; no PTX, "
                        "no compile, no execution (those verdicts are not_run, and //tools:release refuses such data)")
    args = p.parse_args(argv)

    def bad(msg: str):
        print(f"error: {msg}", file=sys.stderr)
        sys.exit(2)

    if args.count < 1:
        bad(f"--count must be >= 1, got {args.count}")
    if not 0 <= args.seed < 2**63:
        bad(f"--seed must be in [0, 2**63), got {args.seed}")
    if args.workers < 1:
        bad(f"--workers must be >= 1, got {args.workers}")
    fams = [f.strip() for f in args.families.split(",") if f.strip()]
    unknown = [f for f in fams if f not in FAMILIES]
    if not fams or unknown:
        bad(f"unknown family {', '.join(unknown) or '(none given)'}; known: {', '.join(sorted(FAMILIES))}")
    if len(set(fams)) != len(fams):
        bad(f"--families lists a family twice: {args.families}")
    args.families = fams
    archs = [a.strip() for a in args.arch.split(",") if a.strip()]
    if not archs or len(set(archs)) != len(archs):
        bad(f"--arch must list distinct targets like sm_90, got {args.arch!r}")
    from extractor import warp_adapter

    supported = warp_adapter.nvrtc_archs()
    unsupported = [a for a in archs if a not in supported]
    if unsupported:
        bad(f"--arch {', '.join(unsupported)} is not supported by the bundled NVRTC; supported: {', '.join(supported)}")
    args.arch = archs
    args.out = _resolve(args.out)
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        bad(f"--out {args.out} exists and is not a directory")
    return args


def main(target: str, argv: list[str] | None = None) -> int:
    args = parse_args(target, sys.argv[1:] if argv is None else argv)
    from generator import pipeline

    try:
        m = pipeline.run(target, args.count, args.seed, args.out, args.families, args.workers, args.quiet, args.arch,
                         validate=args.validate)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    c = m["counts"]
    print(f"wrote {c['passed']} pairs to {args.out} ({len(m['shards'])} shards + manifest.json)")
    print(f"attempted {c['attempted']}, rejected {c['rejected']}" + (
        ": " + ", ".join(f"{k} {v}" for k, v in m["rejects_by_reason"].items()) if m["rejects_by_reason"] else ""))
    for fam, fc in c["by_family"].items():
        print(f"  {fam:<16} {fc['passed']:>6} passed {fc['rejected']:>4} rejected")
    v = m["validation"]
    print(f"{m['_run']['pairs_per_s']} pairs/s over {m['_run']['seconds']} s with {args.workers} workers")
    print("checks on written pairs: " + "; ".join(
        f"{k} " + ", ".join(f"{s} {n}" for s, n in sorted(v[k].items())) for k in ("compile_cpu", "compile_cuda", "execute_cpu", "execute_gpu")))
    if m["validation_notes"]:
        print("  " + "; ".join(f"{k}: {r}" for k, r in m["validation_notes"].items()))
    return 0
