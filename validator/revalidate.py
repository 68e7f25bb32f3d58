"""Re-validate a dataset directory: every record re-checked from scratch, nothing trusted.

Usage: bazel run //validator -- DIR [--report PATH]   (or: python -m validator DIR)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from generator.spec import KernelSpec
from extractor import warp_adapter
from validator import checks

BATCH = 50


def read_records(path: str):
    """Yield (shard, line number, record); a corrupt line is reported, not skipped."""
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                yield n, None, f"corrupt: {os.path.basename(path)}:{n}: {e.msg}"
                continue
            yield n, rec, None


def revalidate(directory: str) -> dict:
    shards = sorted(p for p in os.listdir(directory) if p.startswith("shard-") and p.endswith(".jsonl"))
    if not shards:
        raise FileNotFoundError(f"no shard-*.jsonl files in {directory}")
    failures: list[dict] = []
    total = 0
    pending: list[tuple[str, dict]] = []

    def fail(where: str, rec, reason: str):
        failures.append({"where": where, "id": rec.get("id") if isinstance(rec, dict) else None, "reason": reason})

    def flush():
        specs = [KernelSpec.from_json(r["spec"]) for _, r in pending]
        results = checks.check_batch(specs, [r["source"] for _, r in pending])
        for (where, rec), spec, res in zip(pending, specs, results):
            if "error" in res:
                fail(where, rec, res["error"])
                continue
            if res["ir"] != {k: rec["ir"][k] for k in ("cpp", "cuda")}:
                target = next(t for t in ("cpp", "cuda") if res["ir"][t] != rec["ir"].get(t))
                fail(where, rec, f"ir_match: stored {target} IR differs from a fresh extraction")
                continue
            if res["execute_cpu"]["status"] != "passed":
                fail(where, rec, res["execute_cpu"]["reason"])
                continue
            stored = rec["io"]["outputs"]
            for a in spec.args:
                if a.name in res["outputs"]:
                    if a.name not in stored:
                        fail(where, rec, f"io: stored outputs lack {a.name}")
                        break
                    s = checks.tensor_from_json(stored[a.name])
                    if s.shape != res["outputs"][a.name].shape or not (s == res["outputs"][a.name]).all():
                        fail(where, rec, f"io: stored output {a.name} differs from a fresh CPU execution")
                        break
        pending.clear()

    for shard in shards:
        for n, rec, err in read_records(os.path.join(directory, shard)):
            total += 1
            where = f"{shard}:{n}"
            if err:
                fail(where, None, err)
                continue
            for check in (checks.check_schema, lambda r: checks.check_safety(r["source"]), checks.check_spec_source):
                v = check(rec)
                if v["status"] != "passed":
                    fail(where, rec, v["reason"])
                    break
            else:
                pending.append((where, rec))
                if len(pending) >= BATCH:
                    flush()
    if pending:
        flush()
    reasons: dict[str, int] = {}
    for f in failures:
        key = f["reason"].split(":", 1)[0]
        reasons[key] = reasons.get(key, 0) + 1
    return {"directory": os.path.abspath(directory), "records": total, "passed": total - len(failures),
            "failed": len(failures), "failures_by_reason": reasons, "failures": failures,
            "gpu": "not_run: " + ("GPU execution is not part of this validator version" if warp_adapter.cuda_available() else "no CUDA device on this machine")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bazel run //validator --", description="Re-validate a dataset directory.")
    p.add_argument("dir", help="directory holding shard-*.jsonl (as written by //generator:cpu or :cuda)")
    p.add_argument("--report", help="where to write the JSON report (default DIR/validation_report.json)")
    args = p.parse_args(argv)
    base = os.environ.get("WARP_IR_CALLER_DIR") or os.environ.get("BUILD_WORKING_DIRECTORY") or os.getcwd()
    directory = os.path.join(base, args.dir)
    if not os.path.isdir(directory):
        print(f"error: {args.dir}: not a directory", file=sys.stderr)
        return 2
    t0 = time.time()
    try:
        report = revalidate(directory)
    except (FileNotFoundError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    report["seconds"] = round(time.time() - t0, 2)
    out = os.path.join(base, args.report) if args.report else os.path.join(directory, "validation_report.json")
    with open(out, "w") as f:
        json.dump(report, f, indent=2, sort_keys=True)
    print(f"{report['records']} records: {report['passed']} passed, {report['failed']} failed; report: {out}")
    for reason, n in sorted(report["failures_by_reason"].items()):
        print(f"  {reason}: {n}")
    for f in report["failures"][:10]:
        print(f"  {f['where']} {f['id']}: {f['reason']}")
    return 1 if report["failed"] else 0
