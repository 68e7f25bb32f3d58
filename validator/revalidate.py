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
import queue
import tempfile
import threading
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


def _count_lines(path: str) -> int:
    with open(path, "rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


class _Progress:
    """records judged / records in the shards, on stderr (off when quiet)."""

    def __init__(self, total: int, quiet: bool):
        self.total, self.quiet, self.done, self.failed, self.start = total, quiet, 0, 0, time.time()

    def update(self, done: int, failed: int) -> None:
        self.done += done
        self.failed += failed
        if self.quiet:
            return
        rate = self.done / max(time.time() - self.start, 1e-9)
        bar = "#" * int(30 * min(self.done / max(self.total, 1), 1.0))
        sys.stderr.write(f"\r[{bar:<30}] {self.done}/{self.total} records  {rate:6.1f}/s  failed {self.failed}")
        sys.stderr.flush()

    def close(self) -> None:
        if not self.quiet:
            sys.stderr.write("\n")


def revalidate(directory: str, gpu: bool | None = None, workers: int = 1, quiet: bool = True) -> dict:
    """Re-check every record of `directory`. Batches of BATCH records are compiled and executed
    in `workers` sandboxes at once (each its own child process), fed in file order; the report
    lists failures in file order whatever `workers` is."""
    shards = list_shards(directory)
    if not shards:
        raise NoShards(f"no shard-*.jsonl files in {directory}")
    check_toolchain(directory, shards)
    read_run_manifest(directory)  # a run's manifest, where there is one, meets its schema
    failures: list[tuple[tuple[int, int], dict]] = []
    total = 0
    gpu_counts: dict[str, int] = {}
    gpu_notes: set[str] = set()
    lock = threading.Lock()
    progress = _Progress(sum(_count_lines(os.path.join(directory, s)) for s in shards), quiet)

    def fail(key, where: str, rec, reason: str):
        with lock:
            failures.append((key, {"where": where, "id": rec.get("id") if isinstance(rec, dict) else None,
                                   "code": checks.split_reason(reason)[0], "reason": reason}))

    def judge(box, batch: list[tuple]) -> None:
        archs = sorted(batch[0][2]["ir"]["ptx"])
        specs = [KernelSpec.from_json(r["spec"]) for _, _, r in batch]
        # what is compiled and imported is the rendering of the generator's own spec (check_spec
        # proved the stored spec is it), never the record's text
        results = box.check_batch(specs, archs)
        failed = 0
        for (key, where, rec), spec, res in zip(batch, specs, results):
            reason, g = _judge_one(spec, res, rec)
            if g is not None:
                with lock:
                    gpu_counts[g.status] = gpu_counts.get(g.status, 0) + 1
                    if g.status == "not_run":
                        gpu_notes.add(g.reason)
            if reason:
                failed += 1
                fail(key, where, rec, reason)
        with lock:
            progress.update(len(batch), failed)

    # compile and execute only in sandboxes: child processes with resource limits
    run_dir = tempfile.mkdtemp(prefix="warp-ir-validate-")
    cpu_only = gpu is False or not warp_adapter.cuda_available()
    work: queue.Queue = queue.Queue(maxsize=2 * workers)
    errors: list[BaseException] = []

    def worker() -> None:
        box = sandbox.Sandbox(gpu, run_dir, cpu_only=cpu_only)
        try:
            while (batch := work.get()) is not None:
                try:
                    if not errors:
                        judge(box, batch)
                except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
                    errors.append(e)
        finally:
            box.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
    for t in threads:
        t.start()
    pending: list[tuple] = []

    def flush() -> None:
        if pending:
            work.put(list(pending))
            pending.clear()

    try:
        for si, shard in enumerate(shards):
            for n, rec, err in read_records(os.path.join(directory, shard)):
                total += 1
                key, where = (si, n), f"{shard}:{n}"
                if err:
                    fail(key, where, None, err)
                    progress.update(1, 1)
                    continue
                v = checks.check_static(rec) if isinstance(rec, dict) else checks.failed("schema: (root): not an object")
                if v["status"] != "passed":
                    fail(key, where, rec, v["reason"])
                    progress.update(1, 1)
                else:
                    if pending and sorted(rec["ir"]["ptx"]) != sorted(pending[0][2]["ir"]["ptx"]):
                        flush()
                    pending.append((key, where, rec))
                    if len(pending) >= BATCH:
                        flush()
        flush()
    finally:
        for _ in threads:
            work.put(None)
        for t in threads:
            t.join()
        progress.close()
        shutil.rmtree(run_dir, ignore_errors=True)
    if errors:
        raise errors[0]
    ordered = [f for _, f in sorted(failures, key=lambda kf: kf[0])]
    reasons: dict[str, int] = {}
    for f in ordered:
        reasons[f["code"]] = reasons.get(f["code"], 0) + 1
    return {"directory": os.path.abspath(directory), "records": total, "passed": total - len(ordered),
            "failed": len(ordered), "failures_by_reason": dict(sorted(reasons.items())), "failures": ordered,
            "execute_gpu": dict(sorted(gpu_counts.items())), "execute_gpu_notes": sorted(gpu_notes),
            "toolchain": warp_adapter.compilers()}


def _judge_one(spec, res: checks.KernelResult, rec: dict) -> tuple[str | None, checks.Verdict | None]:
    """(why a fresh check of one record disagrees with what it stores, or None; the fresh GPU
    verdict where the record got as far as GPU execution, else None)."""
    if res.error:
        return res.error.reason, None
    if res.toolchain != rec["toolchain"]:
        return f"toolchain: {_toolchain_diff(rec['toolchain'], res.toolchain)}", None
    if res.ir != rec["ir"]:
        target = next((t for t in ("cpp", "cuda", "ptx") if res.ir[t] != rec["ir"].get(t)), "ir")
        return f"ir_match: stored {target} IR differs from a fresh extraction", None
    if not res.verdicts["execute_cpu"].passed:
        return res.verdicts["execute_cpu"].reason, None
    g = res.verdicts["execute_gpu"]
    if g.status == "failed":
        return g.reason, g
    return _compare_outputs(spec, res.outputs, rec["io"]["outputs"]) or _compare_gradient(res, rec), g


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bazel run //validator --", description="Re-validate a dataset directory.")
    p.add_argument("dir", help="directory holding shard-*.jsonl (as written by //generator:cpu or :cuda)")
    p.add_argument("--report", help="where to write the JSON report (default DIR/validation_report.json)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="auto: also execute on the GPU where one exists (default); cpu: CPU only; "
                        "cuda: require a GPU and execute every pair on it too")
    p.add_argument("--workers", type=int, default=None,
                   help="sandboxes validating batches at once (default: all cores; with a GPU, at most 16)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    if args.workers is not None and args.workers < 1:
        print(f"error: --workers must be >= 1, got {args.workers}", file=sys.stderr)
        return 2
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
        workers = args.workers or min(os.cpu_count() or 1, 16 if gpu is not False and warp_adapter.cuda_available() else 1 << 30)
        report = revalidate(directory, gpu, workers, args.quiet)
    except (ValidatorError, RunManifestError, OSError) as e:  # OSError: the directory cannot be read
        print(f"error: {e}", file=sys.stderr)
        return 2
    report["seconds"] = round(time.time() - t0, 2)
    report["workers"] = workers
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
