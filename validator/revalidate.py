"""Re-validate a dataset directory: every record re-checked from scratch, nothing trusted.
A run's manifest.json, where the directory has one, must meet schemas/run_manifest.schema.json.

Usage: bazel run //validator -- DIR [--report PATH] [--device auto|cpu|cuda]
   or, without Bazel (e.g. on a GPU machine): python -m validator DIR --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import shutil
import tempfile
import time

import schemas
from extractor import warp_adapter
from generator import records
from generator.paths import caller_dir
from generator.spec import KernelSpec
from schemas.dataset_format import RunManifestError, list_shards, read_records, read_run_manifest
from validator import checks, sandbox
from validator.verdicts import ValidatorError

BATCH = 50


def _compare_outputs(spec, fresh: dict, stored: dict) -> str | None:
    for a in spec.args:
        if a.name in fresh:
            if a.name not in stored:
                return f"io: stored outputs lack {a.name}"
            try:
                s = checks.tensor_from_json(stored[a.name])
            except (TypeError, ValueError, KeyError) as e:
                return f"io: stored output {a.name} is not a valid tensor: {type(e).__name__}: {str(e)[:100]}"
            if s.shape != fresh[a.name].shape or s.dtype != fresh[a.name].dtype or not (s == fresh[a.name]).all():
                return f"io: stored output {a.name} differs from a fresh CPU execution"
    extra = set(stored) - set(fresh)
    if extra:
        return f"io: stored outputs hold {sorted(extra)[0]}, which the kernel does not write"
    return None


class NoShards(ValidatorError):
    """The directory holds no shard-*.jsonl file."""


class ToolchainMismatch(ValidatorError):
    """The dataset was made with other compilers than this validator runs: its IR cannot match."""


def _first_toolchain(directory: str, shards: list[str]) -> dict | None:
    for shard in shards:
        for _, rec, err in read_records(os.path.join(directory, shard)):
            if not err and isinstance(rec, dict) and isinstance(rec.get("toolchain"), dict):
                return {**rec["toolchain"], "_schema_version": rec.get("schema_version")}
    return None


def check_toolchain(directory: str, shards: list[str]) -> None:
    """Stop before any work when the records were made with another Warp, NVRTC or LLVM."""
    stored = _first_toolchain(directory, shards)
    if stored is None:
        return
    version = stored.get("_schema_version")
    if version != schemas.PAIR_SCHEMA_VERSION:
        raise ToolchainMismatch(f"{directory}: records of pair schema {version}; this validator reads "
                                f"{schemas.PAIR_SCHEMA_VERSION} (records of another schema lack checks this one "
                                f"requires, or store code Warp did not compile as stored: regenerate them)")
    here = warp_adapter.compilers()
    diff = [k for k in here if stored.get(k) != here[k]]
    if diff:
        made = ", ".join(f"{k} {stored.get(k)}" for k in diff)
        this = ", ".join(f"{k} {here[k]}" for k in diff)
        raise ToolchainMismatch(f"{directory}: made with {made}; this validator runs {this}: "
                                f"re-validate with the same toolchain (see the record's toolchain)")


def _toolchain_diff(stored: dict, fresh: dict) -> str:
    for key in sorted(set(stored) | set(fresh)):
        if stored.get(key) != fresh.get(key):
            if isinstance(stored.get(key), dict) and isinstance(fresh.get(key), dict):
                return f"{key}.{_toolchain_diff(stored[key], fresh[key])}"
            return f"{key}: stored {json.dumps(stored.get(key))[:80]}, compiled with {json.dumps(fresh.get(key))[:80]}"
    return "equal"


def _compare_gradient(res: checks.KernelResult, rec: dict) -> str | None:
    """The stored gradient verdict, example and branch coverage must be what a fresh run gives."""
    fresh, stored = res.verdicts["execute_backward_cpu"], rec["checks"]["execute_backward_cpu"]
    if fresh.status == "failed":
        return fresh.reason
    if fresh.status != stored["status"]:
        return f"gradient: stored execute_backward_cpu is {stored['status']}, a fresh run gives {fresh.status}"
    if records.grad_json(res.grad) != rec["grad"]:
        return "gradient: the stored gradient example differs from a fresh backward run"
    if res.coverage != rec["coverage"]:
        return "consistency: the stored branch coverage differs from the oracle's"
    return None


def revalidate(directory: str, gpu: bool | None = None) -> dict:
    shards = list_shards(directory)
    if not shards:
        raise NoShards(f"no shard-*.jsonl files in {directory}")
    check_toolchain(directory, shards)
    read_run_manifest(directory)  # a run's manifest, where there is one, meets its schema
    failures: list[dict] = []
    total = 0
    pending: list[tuple[str, dict]] = []
    gpu_counts: dict[str, int] = {}
    gpu_notes: set[str] = set()

    def fail(where: str, rec, reason: str):
        failures.append({"where": where, "id": rec.get("id") if isinstance(rec, dict) else None,
                         "code": checks.split_reason(reason)[0], "reason": reason})

    def flush():
        if not pending:
            return
        archs = sorted(pending[0][1]["ir"]["ptx"])
        specs = [KernelSpec.from_json(r["spec"]) for _, r in pending]
        # what is compiled and imported is the rendering of the generator's own spec (check_spec
        # proved the stored spec is it), never the record's text
        results = box.check_batch(specs, archs)
        for (where, rec), spec, res in zip(pending, specs, results):
            if res.error:
                fail(where, rec, res.error.reason)
                continue
            if res.toolchain != rec["toolchain"]:
                fail(where, rec, f"toolchain: {_toolchain_diff(rec['toolchain'], res.toolchain)}")
                continue
            if res.ir != rec["ir"]:
                target = next((t for t in ("cpp", "cuda", "ptx") if res.ir[t] != rec["ir"].get(t)), "ir")
                fail(where, rec, f"ir_match: stored {target} IR differs from a fresh extraction")
                continue
            if not res.verdicts["execute_cpu"].passed:
                fail(where, rec, res.verdicts["execute_cpu"].reason)
                continue
            g = res.verdicts["execute_gpu"]
            gpu_counts[g.status] = gpu_counts.get(g.status, 0) + 1
            if g.status == "not_run":
                gpu_notes.add(g.reason)
            if g.status == "failed":
                fail(where, rec, g.reason)
                continue
            reason = _compare_outputs(spec, res.outputs, rec["io"]["outputs"]) or _compare_gradient(res, rec)
            if reason:
                fail(where, rec, reason)
        pending.clear()

    # compile and execute only in the sandbox: a child process with resource limits
    run_dir = tempfile.mkdtemp(prefix="warp-ir-validate-")
    box = sandbox.Sandbox(gpu, run_dir, cpu_only=gpu is False or not warp_adapter.cuda_available())
    try:
        for shard in shards:
            for n, rec, err in read_records(os.path.join(directory, shard)):
                total += 1
                where = f"{shard}:{n}"
                if err:
                    fail(where, None, err)
                    continue
                v = checks.check_static(rec) if isinstance(rec, dict) else checks.failed("schema: (root): not an object")
                if v["status"] != "passed":
                    fail(where, rec, v["reason"])
                else:
                    if pending and sorted(rec["ir"]["ptx"]) != sorted(pending[0][1]["ir"]["ptx"]):
                        flush()
                    pending.append((where, rec))
                    if len(pending) >= BATCH:
                        flush()
        flush()
    finally:
        box.close()
        shutil.rmtree(run_dir, ignore_errors=True)
    reasons: dict[str, int] = {}
    for f in failures:
        key = f["code"]
        reasons[key] = reasons.get(key, 0) + 1
    return {"directory": os.path.abspath(directory), "records": total, "passed": total - len(failures),
            "failed": len(failures), "failures_by_reason": reasons, "failures": failures,
            "execute_gpu": dict(sorted(gpu_counts.items())), "execute_gpu_notes": sorted(gpu_notes),
            "toolchain": warp_adapter.compilers()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bazel run //validator --", description="Re-validate a dataset directory.")
    p.add_argument("dir", help="directory holding shard-*.jsonl (as written by //generator:cpu or :cuda)")
    p.add_argument("--report", help="where to write the JSON report (default DIR/validation_report.json)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="auto: also execute on the GPU where one exists (default); cpu: CPU only; "
                        "cuda: require a GPU and execute every pair on it too")
    args = p.parse_args(argv)
    base = caller_dir()
    directory = os.path.join(base, args.dir)
    if not os.path.isdir(directory):
        print(f"error: {args.dir}: not a directory", file=sys.stderr)
        return 2
    gpu = {"auto": None, "cpu": False, "cuda": True}[args.device]
    if gpu and not warp_adapter.cuda_available():
        print("error: --device cuda: no CUDA device on this machine", file=sys.stderr)
        return 2
    t0 = time.time()
    try:
        report = revalidate(directory, gpu)
    except (ValidatorError, RunManifestError, OSError) as e:  # OSError: the directory cannot be read
        print(f"error: {e}", file=sys.stderr)
        return 2
    report["seconds"] = round(time.time() - t0, 2)
    out = os.path.join(base, args.report) if args.report else os.path.join(directory, "validation_report.json")
    with open(out, "w") as f:
        json.dump(report, f, indent=2, sort_keys=True)
    print(f"{report['records']} records: {report['passed']} passed, {report['failed']} failed; report: {out}")
    print("GPU execution: " + (", ".join(f"{s} {n}" for s, n in report["execute_gpu"].items()) or "none")
          + (f" ({'; '.join(report['execute_gpu_notes'])})" if report["execute_gpu_notes"] else ""))
    for reason, n in sorted(report["failures_by_reason"].items()):
        print(f"  {reason}: {n}")
    for f in report["failures"][:10]:
        print(f"  {f['where']} {f['id']}: {f['reason']}")
    return 1 if report["failed"] else 0
