"""Re-validate a dataset directory: every record re-checked from scratch, nothing trusted.
A run's manifest.json, where the directory has one, must meet schemas/run_manifest.schema.json.

Usage: bazel run //validator -- DIR [--report PATH] [--device auto|cpu|cuda] [--executor local|ray]
   or, without Bazel (e.g. on a GPU machine): python -m validator DIR --device cuda

With --executor ray each batch is a Ray task that runs it in a sandbox of its own on a Ray node
(CPU only); the report is the same as a local re-validation's. `connect_ray` is also how the
pipeline's RayExecutor joins or starts Ray (the pipeline is the room above this one).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import shutil
import queue
import resource
import signal
import tempfile
import threading
import time

import schemas
from extractor import warp_adapter
from generator import records
from runtime.process import EXIT_TERMINATED, Terminated, caller_dir, sigterm_raises
from generator.spec import KernelSpec
from schemas import files
from schemas.dataset_format import RunManifestError, pretty_json, read_run_manifest
from validator import checks, sandbox
# Ray and the record sources, split out; re-exported for every caller (pipeline.executors, tests)
from validator.ray_exec import (  # noqa: F401 (re-exported)
    RAY_CONNECT_TIMEOUT_S, RAY_TEMP_DIR_MAX, RAY_WORKER_ENV, RayUnavailable, _instance_token, _probe_ray, _ray_batch,
    _RayBox, connect_ray, ray_cpus)
from validator.sources import (  # noqa: F401 (re-exported)
    FileSetRefused, NoShards, _count_lines, _first_toolchain, _parquet_records, _release_manifest, _release_sources,
    _run_sources)
from validator.verdicts import ValidatorError, unpublishable

BATCH = 50
# the validator's own process (it reads the hostile files; its sandboxes compile and execute)
# runs CPU-only local re-validations under this much more address space than it holds at the
# start: measured VmPeak 0.77 GB on a run, and a file's size is capped before it is parsed (schemas/files.py), so only an attack
# the caps missed can reach it, as a MemoryError that costs one record. Not set where a GPU may
# be used (a CUDA context reserves far more address space than it uses) or on Ray.
MAIN_ADDRESS_SPACE = 4 << 30
# the exit status of a re-validation stopped by Ctrl-C: 128 + SIGINT, as if it had not been handled
EXIT_INTERRUPTED = 128 + signal.SIGINT


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


class ToolchainMismatch(ValidatorError):
    """The dataset was made with other compilers than this validator runs: its IR cannot match."""


def check_toolchain(directory: str, stored: dict | None) -> None:
    """Stop before any work when the records were made with another Warp, NVRTC or LLVM
    (`stored`: the first record's toolchain and "_schema_version", or a release's)."""
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


def _compare_gradient(res: checks.KernelResult, rec: dict, finding: bool = False) -> str | None:
    """The stored gradient verdict, example and branch coverage must be what a fresh run gives.
    A finding (`finding`: a record of the run's FINDINGS_CONFIG directory) must fail its fresh gradient
    check as GRADIENT_MISMATCH again: the mismatch it reports is Warp's, reproduced here."""
    fresh, stored = res.verdicts["execute_backward_cpu"], rec["checks"]["execute_backward_cpu"]
    if finding:
        if fresh.status != "failed" or checks.split_reason(fresh.reason)[0] != checks.GRADIENT_MISMATCH:
            return (f"finding: the stored {checks.GRADIENT_MISMATCH} does not reproduce: a fresh backward run gives "
                    f"{fresh.status}{': ' + fresh.reason if fresh.reason else ''}"[:400])
    elif fresh.status == "failed":
        return fresh.reason
    if fresh.status != stored["status"]:
        return f"gradient: stored execute_backward_cpu is {stored['status']}, a fresh run gives {fresh.status}"
    if records.grad_json(res.grad) != rec["grad"]:
        return "gradient: the stored gradient example differs from a fresh backward run"
    if res.coverage != rec["coverage"]:
        return "consistency: the stored branch coverage differs from the oracle's"
    return None


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


def revalidate(directory: str, gpu: bool | None = None, workers: int | None = 1, quiet: bool = True,
               executor: str = "local", ray_address: str | None = None) -> dict:
    """Re-check every record of `directory`. Batches of BATCH records are compiled and executed
    in `workers` sandboxes at once (each its own child process), fed in file order; the report
    lists failures in file order whatever `workers` is. executor "ray": each batch is a Ray task
    running it in a sandbox on a Ray node (`connect_ray(ray_address)`; workers None: the cluster's
    CPUs), CPU only, with the same report."""
    release = _release_manifest(directory)
    if release is None:
        # a run's manifest, where there is one, meets its schema; it lists the shards judged
        every, stored = _run_sources(directory, read_run_manifest(directory))
    else:
        every, stored = _release_sources(directory, release)
    check_toolchain(directory, stored)
    if executor == "ray" and gpu:
        raise RayUnavailable("--executor ray executes on CPUs only (GPU execution on Ray is not supported); "
                             "use --device auto or cpu, or --executor local")
    failures: list[tuple[tuple[int, int], dict]] = []
    total = 0
    gpu_counts: dict[str, int] = {}
    gpu_notes: set[str] = set()
    lock = threading.Lock()
    progress = _Progress(sum(n for _, _, _, n in every), quiet)

    def fail(key, where: str, rec, reason: str):
        with lock:
            failures.append((key, {"where": where, "id": rec.get("id") if isinstance(rec, dict) else None,
                                   "code": checks.split_reason(reason)[0], "reason": reason}))

    def judge(box, batch: list[tuple]) -> None:
        archs = sorted(batch[0][2]["ir"]["ptx"])
        specs = [KernelSpec.from_json(r["spec"]) for _, _, r, _ in batch]
        # what is compiled and imported is the rendering of the generator's own spec (check_spec
        # proved the stored spec is it), never the record's text
        results = box.check_batch(specs, archs)
        failed = 0
        for (key, where, rec, finding), spec, res in zip(batch, specs, results):
            reason, g = _judge_one(spec, res, rec, finding)
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
    owned = False
    if executor == "ray":
        try:
            owned = connect_ray(ray_address, workers, run_dir)
            workers = workers or ray_cpus()
        except BaseException:
            shutil.rmtree(run_dir, ignore_errors=True)
            raise
    work: queue.Queue = queue.Queue(maxsize=2 * workers)
    errors: list[BaseException] = []
    boxes: list = []

    # set by each worker thread as it ends (Thread.join interrupted by a signal can mark a thread
    # that still runs as stopped, CPython 3.11; an Event's wait is safe to interrupt)
    ended = [threading.Event() for _ in range(workers)]

    def worker(i: int) -> None:
        try:
            _work()
        finally:
            ended[i].set()

    def _work() -> None:
        box = _RayBox(gpu) if executor == "ray" else sandbox.Sandbox(gpu, run_dir, cpu_only=cpu_only)
        with lock:
            boxes.append(box)
        try:
            while (batch := work.get()) is not None:
                try:
                    if not errors:
                        judge(box, batch)
                except sandbox.Aborted:
                    pass  # stopped: the caller raises what stopped it
                except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
                    errors.append(e)
        finally:
            box.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(workers)]
    for t in threads:
        t.start()
    pending: list[tuple] = []

    def flush() -> None:
        if pending:
            work.put(list(pending))
            pending.clear()

    try:
        for si, (shard, finding, rows, _) in enumerate(every):
            for n, rec, err in rows():
                total += 1
                key, where = (si, n), f"{shard}:{n}"
                if err:
                    fail(key, where, None, err)
                    progress.update(1, 1)
                    continue
                v = checks.check_static(rec) if isinstance(rec, dict) else checks.failed("schema: (root): not an object")
                if v["status"] == "passed" and finding and (why := unpublishable(rec["checks"], finding=True)):
                    v = checks.failed(f"finding: the record {why}")
                if v["status"] != "passed":
                    fail(key, where, rec, v["reason"])
                    progress.update(1, 1)
                else:
                    if pending and sorted(rec["ir"]["ptx"]) != sorted(pending[0][2]["ir"]["ptx"]):
                        flush()
                    pending.append((key, where, rec, finding))
                    if len(pending) >= BATCH:
                        flush()
        flush()
        for _ in threads:
            work.put(None)
        for e in ended:
            e.wait()
    except BaseException:
        # Ctrl-C, SIGTERM (raised by main's handler) or an error here: stop at once, without
        # waiting for the batches in flight (each may take up to sandbox.BATCH_TIMEOUT_S)
        _stop(boxes, ended, work, lock)
        raise
    finally:
        progress.close()
        if owned:
            import ray

            ray.shutdown()
        shutil.rmtree(run_dir, ignore_errors=True)
    if errors:
        raise errors[0]
    ordered = [f for _, f in sorted(failures, key=lambda kf: kf[0])]
    reasons: dict[str, int] = {}
    for f in ordered:
        reasons[f["code"]] = reasons.get(f["code"], 0) + 1
    finding_files = {name for name, f, _, _ in every if f}
    findings = {"records": sum(n for _, f, _, n in every if f),
                "failed": sum(1 for f in ordered if f["where"].rsplit(":", 1)[0] in finding_files)}
    return {"directory": os.path.abspath(directory), "kind": "run" if release is None else "release",
            "records": total, "passed": total - len(ordered), "findings": findings,
            "failed": len(ordered), "failures_by_reason": dict(sorted(reasons.items())), "failures": ordered,
            "execute_gpu": dict(sorted(gpu_counts.items())), "execute_gpu_notes": sorted(gpu_notes),
            "toolchain": warp_adapter.compilers()}


def _stop(boxes: list, ended: list, work: queue.Queue, lock) -> None:
    """Kill every sandbox's child (their batches raise sandbox.Aborted), empty the queue, let
    the worker threads end (each sets its `ended` event)."""
    for e in ended:
        while not e.is_set():
            with lock:
                for box in boxes:  # again each time: a thread may have made its sandbox since
                    box.abort()
            try:  # a thread waiting on the queue: drop what is queued, hand it its end
                while True:
                    work.get_nowait()
            except queue.Empty:
                pass
            try:
                work.put_nowait(None)
            except queue.Full:
                pass
            e.wait(0.2)


def _judge_one(spec, res: checks.KernelResult, rec: dict, finding: bool = False) -> tuple[str | None, checks.Verdict | None]:
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
    return _compare_outputs(spec, res.outputs, rec["io"]["outputs"]) or _compare_gradient(res, rec, finding), g


def _address_space() -> int:
    """This process's address space now (VmSize), in bytes."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) << 10 for line in f if line.startswith("VmSize:"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bazel run //validator --", description="Re-validate a dataset directory.")
    p.add_argument("dir", help="a run directory holding shard-*.jsonl (as written by //generator:cpu or :cuda), "
                               "or a release (as written by //tools:release, e.g. downloaded)")
    p.add_argument("--report", help="where to write the JSON report (default DIR/validation_report.json for a run, "
                                    "DIR.validation_report.json beside a release)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="auto: also execute on the GPU where one exists (default); cpu: CPU only; "
                        "cuda: require a GPU and execute every pair on it too")
    p.add_argument("--workers", type=int, default=None,
                   help="sandboxes validating batches at once (default: all cores; with a GPU, at most 16)")
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="local: sandboxes on this machine (default); ray: each batch a Ray task in a sandbox on a "
                        "Ray node, CPU only, the same report (every node needs this repository and the lock file's "
                        "packages; only this machine reads DIR)")
    p.add_argument("--ray-address", default=None,
                   help="with --executor ray: auto (the cluster `ray start` made here) or HOST:PORT of a cluster's "
                        "head (default: a local Ray instance started for this run)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    if args.workers is not None and args.workers < 1:
        print(f"error: --workers must be >= 1, got {args.workers}", file=sys.stderr)
        return 2
    if args.ray_address is not None and args.executor != "ray":
        print(f"error: --ray-address {args.ray_address} needs --executor ray", file=sys.stderr)
        return 2
    if args.executor == "ray" and args.device == "cuda":
        print("error: --device cuda: --executor ray executes on CPUs only; use --executor local", file=sys.stderr)
        return 2
    base = caller_dir()
    directory = os.path.join(base, args.dir)
    if not os.path.isdir(directory):
        print(f"error: {files.quote(args.dir)}: not a directory", file=sys.stderr)
        return 2
    gpu = {"auto": None, "cpu": False, "cuda": True}[args.device]
    if gpu and not warp_adapter.cuda_available():
        print("error: --device cuda: no CUDA device on this machine", file=sys.stderr)
        return 2
    t0 = time.time()
    owned = False
    limited = args.executor == "local" and (gpu is False or not warp_adapter.cuda_available())
    address_space = resource.getrlimit(resource.RLIMIT_AS)
    # on top of what the process holds already (a fresh validator: about 0.2 GB; a caller that
    # embeds it, such as a test process holding Ray, may hold more)
    cap = _address_space() + MAIN_ADDRESS_SPACE
    if limited and not 0 <= address_space[0] <= cap:
        resource.setrlimit(resource.RLIMIT_AS, (cap, address_space[1]))  # soft: the sandboxes set their own
    # SIGTERM stops a re-validation as Ctrl-C does: every sandbox's child killed mid-batch, the
    # temporary directory removed, one error line (left alone, SIGTERM killed this process and
    # left its sandboxes running; Ctrl-C waited for each sandbox's batch to end)
    try:
        with sigterm_raises():
            # refused before any work: a file added to a release breaks it
            if args.report and files.inside(os.path.join(base, args.report), directory) and _release_manifest(directory):
                print(f"error: --report {files.quote(args.report)}: inside the release {files.quote(args.dir)} (a file "
                      f"added to a release breaks it); write it elsewhere", file=sys.stderr)
                return 2
            if args.executor == "ray":  # connected here to know the cluster's CPUs; revalidate uses the connection
                owned = connect_ray(args.ray_address, args.workers)
                workers = args.workers or ray_cpus()
            else:
                workers = args.workers or min(os.cpu_count() or 1,
                                              16 if gpu is not False and warp_adapter.cuda_available() else 1 << 30)
            report = revalidate(directory, gpu, workers, args.quiet, args.executor, args.ray_address)
    except (ValidatorError, RunManifestError, OSError) as e:  # OSError: the directory cannot be read
        print(f"error: {files.quote(str(e), 600)}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, Terminated) as e:
        how = "terminated (SIGTERM)" if isinstance(e, Terminated) else "interrupted"
        print(f"error: {how}; no report written, {files.quote(args.dir)} untouched: the same command starts over",
              file=sys.stderr)
        return EXIT_TERMINATED if isinstance(e, Terminated) else EXIT_INTERRUPTED
    finally:
        resource.setrlimit(resource.RLIMIT_AS, address_space)
        if owned:
            import ray

            ray.shutdown()
    report["seconds"] = round(time.time() - t0, 2)
    report["workers"] = workers
    report["executor"] = args.executor
    # a run's report goes into it; a release's beside it (a file added to a release fails //tools:verify)
    default = (os.path.join(directory, "validation_report.json") if report["kind"] == "run"
               else os.path.normpath(directory) + ".validation_report.json")
    out = os.path.join(base, args.report) if args.report else default
    # written to a new file renamed into place: a link planted at the report's path is replaced,
    # never written through
    files.write_text(out, pretty_json(report))
    print(f"{report['records']} records: {report['passed']} passed, {report['failed']} failed; report: {files.quote(out)}")
    if report["findings"]["records"]:
        print(f"of which {report['findings']['records']} findings ({checks.FINDINGS_CONFIG}/, held to their own rule): "
              f"{report['findings']['records'] - report['findings']['failed']} reproduced, {report['findings']['failed']} failed")
    print("GPU execution: " + (", ".join(f"{s} {n}" for s, n in report["execute_gpu"].items()) or "none")
          + (f" ({'; '.join(report['execute_gpu_notes'])})" if report["execute_gpu_notes"] else ""))
    for reason, n in sorted(report["failures_by_reason"].items()):
        print(f"  {files.quote(reason, 80)}: {n}")
    for f in report["failures"][:10]:
        print(f"  {files.quote(f['where'], 120)} {files.quote(f['id'], 40)}: {files.quote(f['reason'], 300)}")
    return 1 if report["failed"] else 0
