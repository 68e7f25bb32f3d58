"""`bazel run //generator:audit -- [--target cpu|cuda|all] [--count 20000] [--seed 0] [--json PATH]
[--dataset DIR...]`: the generator's diversity targets over the kernels a run would draw, and,
given generated dataset directories, the compile/oracle pass rate from their manifests.
Exit 1 when a target is missed."""

from __future__ import annotations

import argparse
import json
import os
import sys

from generator import diversity
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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="bazel run //generator:audit --", description=__doc__)
    p.add_argument("--target", choices=("cpu", "cuda", "all"), default="all")
    p.add_argument("--count", type=int, default=20000, help="kernels drawn per target (default 20000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dataset", nargs="*", default=[], help="generated dataset dirs whose manifests give pass rates")
    p.add_argument("--json", help="also write the full result here")
    args = p.parse_args(argv)
    if args.count < 1:
        print(f"error: --count must be >= 1, got {args.count}", file=sys.stderr)
        return 2
    base = caller_dir()
    results, failed = {"targets": diversity.TARGETS, "generator": [], "datasets": []}, False
    for target in (("cpu", "cuda") if args.target == "all" else (args.target,)):
        r = diversity.audit(target, args.count, args.seed)
        results["generator"].append(r)
        print(f"{target}: {r['kernels']} kernels  distinct sources {r['distinct_sources']:.2%}  "
              f"distinct skeletons {r['distinct_skeletons']:.2%}  max family-share deviation {r['max_share_deviation']:.2%}")
        print(f"  {'family':<16}{'kernels':>8}{'share':>8}{'sources':>9}{'skeletons':>11}")
        for f, d in r["families"].items():
            print(f"  {f:<16}{d['kernels']:>8}{d['share']:>8.1%}{d['distinct_sources']:>9.2%}{d['distinct_skeletons']:>11.2%}")
        for msg in r["failures"]:
            print(f"  MISSED: {msg}")
        failed |= bool(r["failures"])
    for d in args.dataset:
        path = os.path.join(base, d)
        if not os.path.isfile(os.path.join(path, RUN_MANIFEST)):
            print(f"error: {d}: no manifest.json (not a generated dataset directory)", file=sys.stderr)
            return 2
        r = _rates(path)
        results["datasets"].append(r)
        ok = r["pass_rate"] >= 0.995
        with open(os.path.join(path, RUN_MANIFEST)) as f:
            shares = diversity.dataset_share_failures(json.load(f))
        r["share_failures"] = shares
        failed |= not ok or bool(shares)
        print(f"{d} ({r['target']}): {r['passed']}/{r['attempted']} compiled on CPU and CUDA (NVRTC) and matched the "
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
        for reason, n in r["rejects_by_reason"].items():
            print(f"  {reason}: {n}  e.g. {r['reject_examples'][reason]['reason'][:160]}")
    if args.json:
        with open(os.path.join(base, args.json), "w") as f:
            f.write(pretty_json(results))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
