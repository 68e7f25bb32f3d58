"""Re-validate a dataset directory: every record re-checked from scratch, nothing trusted.
A run's manifest.json, where the directory has one, must meet schemas/run_manifest.schema.json.

Usage: bazel run //validator -- DIR [--report PATH] [--device auto|cpu|cuda] [--executor local|ray]
   or, without Bazel (e.g. on a GPU machine): python -m validator DIR --device cuda

With --executor ray each batch is a Ray task run in a sandbox of its own on a Ray node (CPU only),
with a local re-validation's report; `connect_ray` is also how the pipeline's RayExecutor joins Ray.
"""

from __future__ import annotations

import argparse
import os
import sys
import shutil
import queue
import resource
import signal
import tempfile
import threading
import time

from extractor import warp_adapter
from runtime.process import EXIT_TERMINATED, Terminated, caller_dir, sigterm_raises
from generator.spec import KernelSpec
from schemas import files
from schemas.dataset_format import RunManifestError, pretty_json, read_run_manifest
from validator import checks, real, real_release, sandbox, summary
# one record judged against a fresh check, split out; re-exported (gradients_test uses _judge_one)
from validator.judge import ToolchainMismatch, _judge_one, check_toolchain  # noqa: F401 (re-exported)
# Ray and the record sources, split out; re-exported for every caller (pipeline.executors, tests)
from validator.ray_exec import (  # noqa: F401 (re-exported)
    RAY_CONNECT_TIMEOUT_S, RAY_TEMP_DIR_MAX, RAY_WORKER_ENV, RayUnavailable, _instance_token, _probe_ray, _ray_batch,
    _RayBox, connect_ray, ray_cpus)
from validator.sources import (  # noqa: F401 (re-exported)
    FileSetRefused, NoShards, _count_lines, _first_toolchain, _parquet_records, _release_manifest, _release_sources,
    _run_sources)
from validator.reason_groups import CheckTally
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
    """Re-check every record of `directory`. Batches of BATCH records are compiled and executed in
    `workers` sandboxes at once (each its own child process), fed in file order; the report lists
    failures in file order whatever `workers` is. executor "ray": each batch a Ray task running it
    in a sandbox on a Ray node (`connect_ray(ray_address)`; workers None: the cluster's CPUs), CPU
    only, same report. A release's real rows first, by validator/real_release.py."""
    if (harvested := real.harvest_manifest(directory)) is not None:
        if executor == "ray":
            raise RayUnavailable("a harvest (origin real) is re-validated by harvesting again here; use --executor local")
        return real.revalidate_real(directory, harvested, workers or 1, quiet)
    release = _release_manifest(directory)
    if release is None:
        # a run's manifest, where there is one, meets its schema; it lists the shards judged
        every, stored, real_part = *_run_sources(directory, read_run_manifest(directory)), None
    else:
        every, stored = _release_sources(directory, release)
        real_part = real_release.revalidate_rows(directory, release, workers or 1, quiet)
    check_toolchain(directory, stored)
    if executor == "ray" and gpu:
        raise RayUnavailable("--executor ray executes on CPUs only (GPU execution on Ray is not supported); "
                             "use --device auto or cpu, or --executor local")
    run = Revalidation(every, gpu, executor, quiet)
    run.execute(workers, ray_address)
    return real_release.merge(run.report(directory, release), real_part)


class Revalidation:
    """The state of one re-validation: the record sources (`every`), the failures and GPU verdicts
    gathered so far (under `lock`: worker threads judge batches at once), and the sandboxes, queue
    and worker threads that judge the batches the main thread feeds them."""

    def __init__(self, every: list[tuple], gpu: bool | None, executor: str, quiet: bool):
        self.every, self.gpu, self.executor = every, gpu, executor
        self.failures: list[tuple[tuple[int, int], dict]] = []
        self.total = 0
        self.gpu_counts: dict[str, int] = {}
        self.gpu_notes: set[str] = set()
        self.checks = CheckTally()  # every record's fresh verdict per check (validator/summary.py)
        self.lock = threading.Lock()
        self.progress = _Progress(sum(n for _, _, _, n in every), quiet)
        self.errors: list[BaseException] = []
        self.boxes: list = []
        self.pending: list[tuple] = []
        self.run_dir = ""
        self.cpu_only = True
        self.work: queue.Queue = queue.Queue()
        # set by each worker thread as it ends (Thread.join interrupted by a signal can mark a thread
        # that still runs as stopped, CPython 3.11; an Event's wait is safe to interrupt)
        self.ended: list[threading.Event] = []

    def fail(self, key, where: str, rec, reason: str, judged: bool = True) -> None:
        """Record a failure; `judged` False: the record failed before anything was compiled."""
        with self.lock:
            if not judged:
                summary.tally_rejected(self.checks, reason)
            self.failures.append((key, {"where": where, "id": rec.get("id") if isinstance(rec, dict) else None,
                                        "code": checks.split_reason(reason)[0], "reason": reason}))

    def judge(self, box, batch: list[tuple]) -> None:
        archs = sorted(batch[0][2]["ir"]["ptx"])
        specs = [KernelSpec.from_json(r["spec"]) for _, _, r, _ in batch]
        # what is compiled and imported is the rendering of the generator's own spec (check_spec
        # proved the stored spec is it), never the record's text
        results = box.check_batch(specs, archs)
        failed = 0
        for (key, where, rec, finding), spec, res in zip(batch, specs, results):
            reason, g = _judge_one(spec, res, rec, finding)
            with self.lock:
                summary.tally_judged(self.checks, res, rec)
            if g is not None:
                with self.lock:
                    self.gpu_counts[g.status] = self.gpu_counts.get(g.status, 0) + 1
                    if g.status == "not_run":
                        self.gpu_notes.add(g.reason)
            if reason:
                failed += 1
                self.fail(key, where, rec, reason)
        with self.lock:
            self.progress.update(len(batch), failed)

    def execute(self, workers: int | None, ray_address: str | None) -> None:
        """Judge every record: the static checks here, batches in worker threads' sandboxes
        (compile and execute only in sandboxes: child processes with resource limits)."""
        self.run_dir = tempfile.mkdtemp(prefix="warp-ir-validate-")
        self.cpu_only = self.gpu is False or not warp_adapter.cuda_available()
        owned = False
        if self.executor == "ray":
            try:
                owned = connect_ray(ray_address, workers, self.run_dir)
                workers = workers or ray_cpus()
            except BaseException:
                shutil.rmtree(self.run_dir, ignore_errors=True)
                raise
        self.work = queue.Queue(maxsize=2 * workers)
        self.ended = [threading.Event() for _ in range(workers)]
        threads = [threading.Thread(target=self.worker, args=(i,), daemon=True) for i in range(workers)]
        for t in threads:
            t.start()
        try:
            self.feed()
            for _ in threads:
                self.work.put(None)
            for e in self.ended:
                e.wait()
        except BaseException:
            # Ctrl-C, SIGTERM (raised by main's handler) or an error here: stop at once, without
            # waiting for the batches in flight (each may take up to sandbox.BATCH_TIMEOUT_S)
            _stop(self.boxes, self.ended, self.work, self.lock)
            raise
        finally:
            self.progress.close()
            if owned:
                import ray

                ray.shutdown()
            shutil.rmtree(self.run_dir, ignore_errors=True)
        if self.errors:
            raise self.errors[0]

    def worker(self, i: int) -> None:
        try:
            self._work()
        finally:
            self.ended[i].set()

    def _work(self) -> None:
        box = _RayBox(self.gpu) if self.executor == "ray" else sandbox.Sandbox(self.gpu, self.run_dir,
                                                                              cpu_only=self.cpu_only)
        with self.lock:
            self.boxes.append(box)
        try:
            while (batch := self.work.get()) is not None:
                try:
                    if not self.errors:
                        self.judge(box, batch)
                except sandbox.Aborted:
                    pass  # stopped: the caller raises what stopped it
                except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
                    self.errors.append(e)
        finally:
            box.close()

    def feed(self) -> None:
        """Every record through the static checks here, in file order; those that pass queued in
        batches of up to BATCH records that share their PTX archs."""
        for si, (shard, finding, rows, _) in enumerate(self.every):
            for n, rec, err in rows():
                self.total += 1
                self.admit((si, n), f"{shard}:{n}", rec, err, finding)
        self.flush()

    def admit(self, key: tuple[int, int], where: str, rec, err: str | None, finding: bool) -> None:
        if err:
            self.fail(key, where, None, err, judged=False)
            self.progress.update(1, 1)
            return
        v = checks.check_static(rec) if isinstance(rec, dict) else checks.failed("schema: (root): not an object")
        if v["status"] == "passed" and finding and (why := unpublishable(rec["checks"], finding=True)):
            v = checks.failed(f"finding: the record {why}")
        if v["status"] != "passed":
            self.fail(key, where, rec, v["reason"], judged=False)
            self.progress.update(1, 1)
            return
        if self.pending and sorted(rec["ir"]["ptx"]) != sorted(self.pending[0][2]["ir"]["ptx"]):
            self.flush()
        self.pending.append((key, where, rec, finding))
        if len(self.pending) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.work.put(list(self.pending))
            self.pending.clear()

    def report(self, directory: str, release: dict | None) -> dict:
        ordered = [f for _, f in sorted(self.failures, key=lambda kf: kf[0])]
        reasons: dict[str, int] = {}
        for f in ordered:
            reasons[f["code"]] = reasons.get(f["code"], 0) + 1
        finding_files = {name for name, f, _, _ in self.every if f}
        findings = {"records": sum(n for _, f, _, n in self.every if f),
                    "failed": sum(1 for f in ordered if f["where"].rsplit(":", 1)[0] in finding_files)}
        return {"directory": os.path.abspath(directory), "kind": "run" if release is None else "release",
                "records": self.total, "passed": self.total - len(ordered), "findings": findings,
                "failed": len(ordered), "failures_by_reason": dict(sorted(reasons.items())), "failures": ordered,
                "execute_gpu": dict(sorted(self.gpu_counts.items())), "execute_gpu_notes": sorted(self.gpu_notes),
                "checks": self.checks.to_json(),
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


def _address_space() -> int:
    """This process's address space now (VmSize), in bytes."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) << 10 for line in f if line.startswith("VmSize:"))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bazel run //validator --", description="Re-validate a dataset directory.")
    p.add_argument("dir", help="a run directory holding shard-*.jsonl (as written by //generator:cpu or :cuda), "
                               "a release (as written by //tools:release, e.g. downloaded), or a harvest of real "
                               "kernels (as written by //harvest: re-harvested from the installed wheel)")
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
    return p


def _flag_error(args: argparse.Namespace) -> str | None:
    """What is wrong with the flags taken together, or None."""
    if args.workers is not None and args.workers < 1:
        return f"--workers must be >= 1, got {args.workers}"
    if args.ray_address is not None and args.executor != "ray":
        return f"--ray-address {args.ray_address} needs --executor ray"
    if args.executor == "ray" and args.device == "cuda":
        return "--device cuda: --executor ray executes on CPUs only; use --executor local"
    return None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if problem := _flag_error(args):
        print(f"error: {problem}", file=sys.stderr)
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
    outcome = _revalidate_bounded(args, base, directory, gpu)
    if isinstance(outcome, int):
        return outcome
    report, workers = outcome
    report["seconds"] = round(time.time() - t0, 2)
    report["workers"] = workers
    report["executor"] = args.executor
    # a run's report goes into it; a release's beside it (a file added to a release fails //tools:verify)
    default = (os.path.join(directory, "validation_report.json") if report["kind"] in ("run", real.KIND)
               else os.path.normpath(directory) + ".validation_report.json")
    out = os.path.join(base, args.report) if args.report else default
    # written to a new file renamed into place: a link planted at the report's path is replaced,
    # never written through
    files.write_text(out, pretty_json(report))
    summary.print_summary(report, out)
    return 1 if report["failed"] else 0


def _revalidate_bounded(args: argparse.Namespace, base: str, directory: str, gpu: bool | None) -> tuple[dict, int] | int:
    """(the report, the workers it used), or the exit status of a refusal or a stop (its error
    line printed). A CPU-only local re-validation runs under MAIN_ADDRESS_SPACE more address space
    than the process holds now; the limit is given back after."""
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
            return revalidate(directory, gpu, workers, args.quiet, args.executor, args.ray_address), workers
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
