"""`bazel run //generator:audit -- [--target cpu|cuda|all] [--count 20000] [--seed 0] [--json PATH]
[--dataset DIR...] [--coverage]`: the generator's diversity targets over the kernels a run would
draw, and, given generated dataset directories, the compile/oracle pass rate from their
manifests; with --coverage, instead, the Warp builtins those kernels call against the ones the
installed warp-lang wheel's own kernels call (read with ast, nothing imported).
Exit 1 when a target is missed."""

from __future__ import annotations

import argparse
import json
import os
import sys

from generator import coverage, diversity, gradient_audit
from runtime.process import caller_dir
from schemas.dataset_format import RUN_MANIFEST, pretty_json


def _rates(directory: str) -> dict:
    with open(os.path.join(directory, RUN_MANIFEST)) as f:
        m = json.load(f)
    c = m["counts"]
    return {"dir": directory, "target": m["generator"]["target"], "attempted": c["attempted"], "passed": c["passed"],
            "pass_rate": c["passed"] / max(c["attempted"], 1), "rejects_by_reason": m["rejects_by_reason"],
            "reject_examples": m.get("reject_examples", {}), "gradient": _gradient(m)}


def _gradient(m: dict) -> dict:
    """The gradient check over a run: verdicts (the findings count as failed), and the share of
    the kernels it ran on (passed, failed, inconclusive) that got a conclusive verdict."""
    totals: dict[str, int] = {}
    for per in m.get("gradient_by_family", {}).values():
        for status, n in per.items():
            totals[status] = totals.get(status, 0) + n
    ran = totals.get("passed", 0) + totals.get("failed", 0) + totals.get("inconclusive", 0)
    conclusive = totals.get("passed", 0) + totals.get("failed", 0)
    return {"verdicts": dict(sorted(totals.items())), "ran": ran,
            "conclusive_rate": conclusive / ran if ran else None, "by_family": m.get("gradient_by_family", {})}


def _coverage(targets, count: int, seed: int, results: dict) -> bool:
    """Print the language coverage of the kernels drawn for `targets`; True when a target is missed."""
    root = coverage.wheel_root()
    names = coverage.builtin_names(root)
    real = coverage.wheel_usage(root, names)
    ours = coverage.Usage()
    for target in targets:
        drawn = coverage.generator_usage(target, count, seed, names)
        ours.functions += drawn.functions
        ours.sites.update(drawn.sites)
    cov = results["coverage"] = coverage.coverage(ours, real)
    print(f"generator ({', '.join(targets)}, {count} kernels each, seed {seed}): {cov['generator']['builtins']} "
          f"distinct Warp builtins")
    print(f"warp-lang wheel ({root}): {cov['real']['functions']} kernels and funcs in {cov['real']['files']} files "
          f"({cov['real']['unreadable_files']} unreadable) call {cov['real']['builtins']} builtins at "
          f"{cov['real']['call_sites']} call sites")
    print(f"covered: {cov['covered_builtins']} of their builtins, {cov['call_site_share']:.1%} of their call sites")
    print("missing, most called first: " + ", ".join(f"{m['builtin']} {m['call_sites']}" for m in cov["missing"][:40])
          + (f", and {len(cov['missing']) - 40} more" if len(cov["missing"]) > 40 else ""))
    missed = coverage.failures(cov)
    for msg in missed:
        print(f"  MISSED: {msg}")
    return bool(missed)


def _diversity(targets, count: int, seed: int, results: dict) -> bool:
    failed = False
    for target in targets:
        r = diversity.audit(target, count, seed)
        results["generator"].append(r)
        print(f"{target}: {r['kernels']} kernels  distinct sources {r['distinct_sources']:.2%}  "
              f"distinct skeletons {r['distinct_skeletons']:.2%}  max family-share deviation {r['max_share_deviation']:.2%}  "
              f"unused parameter {r['unused_args']:.2%}")
        print(f"  {'family':<16}{'kernels':>8}{'share':>8}{'sources':>9}{'skeletons':>11}{'unused':>8}")
        for f, d in r["families"].items():
            print(f"  {f:<16}{d['kernels']:>8}{d['share']:>8.1%}{d['distinct_sources']:>9.2%}{d['distinct_skeletons']:>11.2%}"
                  f"{d['unused_args']:>8.1%}")
        for msg in r["failures"]:
            print(f"  MISSED: {msg}")
        failed |= bool(r["failures"])
    return failed


def _dataset(path: str, shown: str, results: dict) -> bool:
    r = _rates(path)
    results["datasets"].append(r)
    ok = r["pass_rate"] >= 0.995
    with open(os.path.join(path, RUN_MANIFEST)) as f:
        shares = diversity.dataset_share_failures(json.load(f))
    r["share_failures"] = shares
    failed = not ok or bool(shares)
    print(f"{shown} ({r['target']}): {r['passed']}/{r['attempted']} compiled on CPU and CUDA (NVRTC) and matched the "
          f"oracle: {r['pass_rate']:.2%}{'' if ok else '  MISSED: < 99.5%'}")
    for msg in shares:
        print(f"  MISSED: {msg}")
    gr = r["gradient"]
    if gr["ran"]:
        ok = gr["conclusive_rate"] >= 0.99
        failed |= not ok
        print(f"  gradient check: {', '.join(f'{k} {n}' for k, n in gr['verdicts'].items())}; conclusive on "
              f"{gr['conclusive_rate']:.2%} of the {gr['ran']} kernels it ran on{'' if ok else '  MISSED: < 99%'}")
        for fam, per in gr["by_family"].items():
            print(f"    {fam:<16} {', '.join(f'{k} {n}' for k, n in per.items())}")
    fams = r["gradient_on_float_kernels"] = gradient_audit.per_family(path)
    print(f"  gradient verdict on float kernels (target {gradient_audit.TARGET:.0%} per family): "
          + ", ".join(f"{fam} {d['conclusive']}/{d['float_kernels']}" for fam, d in fams.items()))
    for msg in gradient_audit.failures(fams):
        print(f"  MISSED: {msg}")
        failed = True
    for reason, n in r["rejects_by_reason"].items():
        print(f"  {reason}: {n}  e.g. {r['reject_examples'][reason]['reason'][:160]}")
    return failed


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="bazel run //generator:audit --", description=__doc__)
    p.add_argument("--target", choices=("cpu", "cuda", "all"), default="all")
    p.add_argument("--count", type=int, default=20000, help="kernels drawn per target (default 20000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dataset", nargs="*", default=[], help="generated dataset dirs whose manifests give pass rates")
    p.add_argument("--coverage", action="store_true",
                   help="report the Warp builtins the drawn kernels call against the installed wheel's own kernels")
    p.add_argument("--json", help="also write the full result here")
    args = p.parse_args(argv)
    if args.count < 1:
        print(f"error: --count must be >= 1, got {args.count}", file=sys.stderr)
        return 2
    base = caller_dir()
    targets = ("cpu", "cuda") if args.target == "all" else (args.target,)
    results = {"targets": diversity.TARGETS, "generator": [], "datasets": []}
    if args.coverage:
        try:
            failed = _coverage(targets, args.count, args.seed, results)
        except (OSError, SyntaxError) as e:
            print(f"error: cannot read the installed warp-lang wheel: {e}", file=sys.stderr)
            return 2
    else:
        failed = _diversity(targets, args.count, args.seed, results)
    for d in args.dataset:
        path = os.path.join(base, d)
        if not os.path.isfile(os.path.join(path, RUN_MANIFEST)):
            print(f"error: {d}: no manifest.json (not a generated dataset directory)", file=sys.stderr)
            return 2
        try:
            failed |= _dataset(path, d, results)
        except (OSError, ValueError, KeyError) as e:
            print(f"error: {d}: cannot read its records: {e}", file=sys.stderr)
            return 2
    if args.json:
        with open(os.path.join(base, args.json), "w") as f:
            f.write(pretty_json(results))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
