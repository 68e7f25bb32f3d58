"""The run loop: chunks out to an executor in index order, results absorbed, the attempt cap,
dead workers' chunks re-run, then the manifest and run.json."""

from __future__ import annotations

import collections
import dataclasses
import multiprocessing
import os
import shutil
import sys
import tempfile
import time

from schemas.dataset_format import canonical_json
from pipeline.chunk import add_fault, atomic_write, faults_path, read_running, read_stats, running_path
from pipeline.config import RunConfig, claim, resolve
from pipeline.errors import RunStopped, WorkerLost
from pipeline.executors import Executor, InProcessExecutor, LocalExecutor, RayExecutor
from pipeline.manifest import finalize
from pipeline import plan
from pipeline.plan import CHUNK, attempt_cap_chunks, zero_pass_streak

# A chunk whose worker dies more often than this ends the run.
MAX_WORKER_DEATHS = 3
# A kernel that was executing each time its worker died this often is rejected (once could be
# the machine's doing, an out-of-memory kill of a big neighbour; twice is the kernel's).
KERNEL_STRIKES = 2
EXIT_STOPPED = 3




class Progress:
    def __init__(self, total: int, quiet: bool):
        self.total, self.quiet, self.start = total, quiet, time.time()

    def update(self, passed: int, rejected: int, resumed: int = 0) -> None:
        """`resumed` of the `passed` pairs were on disk from an earlier run: not in the rate."""
        if self.quiet:
            return
        rate = (passed - resumed) / max(time.time() - self.start, 1e-9)
        frac = min(passed / self.total, 1.0) if self.total else 1.0
        bar = "#" * int(frac * 30)
        sys.stderr.write(f"\r[{bar:<30}] {min(passed, self.total)}/{self.total} pairs  {rate:6.1f} pairs/s  rejected {rejected}")
        sys.stderr.flush()

    def done(self) -> None:
        if not self.quiet:
            sys.stderr.write("\n")


def local_executor(workers: int, run_dir: str, devices: list[str]) -> Executor:
    """Worker processes, or this process for one worker without GPUs. A worker process per GPU
    context even for --workers 1: a lost context must not take the run."""
    if workers > 1 or devices:
        return LocalExecutor(multiprocessing.get_context("spawn"), workers, run_dir, devices)
    return InProcessExecutor()


def make_executor(cfg: RunConfig, workers: int, run_dir: str, devices: list[str]) -> Executor:
    """The executor `cfg.executor` names: Ray tasks (ExecutorUnavailable when Ray cannot run the
    run), or `local_executor`."""
    if cfg.executor == "ray":
        return RayExecutor(cfg.ray_address, cfg.workers, run_dir, devices)
    if cfg.executor != "local":
        raise ValueError(f"executor {cfg.executor!r}: expected local or ray")
    return local_executor(workers, run_dir, devices)


def run(cfg: RunConfig) -> dict:
    """Generate `cfg.count` pairs into `cfg.out`; returns the manifest (with "_run": run.json).
    Raises RunStopped when the attempt cap ends the run, RunConflict when `cfg.out` holds another
    run, WorkerLost when a chunk keeps killing its worker, ExecutorUnavailable (before anything is
    written) when the executor cannot start."""
    target, count, seed, out, families, validate, gpus = (cfg.target, cfg.count, cfg.seed, cfg.out, cfg.families,
                                                           cfg.validate, cfg.gpus)
    archs, devices, workers, config = resolve(cfg)
    t0 = time.time()  # the executor's start counts (a local Ray instance's takes seconds)
    # the workers' private Warp caches live in this run's temporary directory, removed below
    # even when a worker was killed before its own clean-up ran
    run_dir = tempfile.mkdtemp(prefix="warp-ir-run-")
    try:
        pool = make_executor(cfg, workers, run_dir, devices)
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    workers = pool.workers
    try:
        os.makedirs(out, exist_ok=True)
        claim(out, config)
    except BaseException:
        pool.terminate()
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    progress = Progress(count, cfg.quiet)
    done: dict[int, dict] = {}
    perf: dict = {"seconds": {}, "peak_rss_mb": {}}
    tally = {"passed": 0, "rejected": 0, "resumed": 0}
    deaths: dict[int, int] = {}
    strikes: dict[tuple[int, int], int] = {}
    worker_deaths: list[dict] = []

    def absorb(st: dict, resumed: bool = False) -> None:
        p = st.pop("_perf", None)
        if p:
            for k, v in p["seconds"].items():
                perf["seconds"][k] = perf["seconds"].get(k, 0.0) + v
            perf["peak_rss_mb"][p["pid"]] = max(perf["peak_rss_mb"].get(p["pid"], 0.0), p["peak_rss_mb"])
        done[st["chunk"]] = st
        n_pass = sum(o["status"] == "passed" for o in st["outcomes"])
        tally["passed"] += n_pass
        tally["rejected"] += len(st["outcomes"]) - n_pass
        tally["resumed"] += n_pass if resumed else 0
        progress.update(tally["passed"], tally["rejected"], tally["resumed"])

    # Chunks go out in index order, at most 2 per worker in flight, and only as many as the
    # observed pass rate says are still needed; so no wave barrier and little surplus. A chunk
    # finished by an earlier run (its stats file exists) is taken as is. A chunk lost with its
    # worker goes out again first.
    inflight: set[int] = set()
    retry: collections.deque = collections.deque()
    cap_chunks = attempt_cap_chunks(count)
    stopped = None
    next_c = 0
    try:
        while True:
            rate = (tally["passed"] + 1) / (tally["passed"] + tally["rejected"] + 1)
            while retry:
                pool.submit(retry.popleft())
            while (stopped is None and tally["passed"] + len(inflight) * CHUNK * rate < count
                   and len(inflight) < pool.capacity):
                why = (f"the attempt cap of {cap_chunks * CHUNK} kernels" if next_c >= cap_chunks else
                       f"{plan.ZERO_PASS_CHUNKS} chunks in a row passed nothing" if zero_pass_streak(done) else None)
                if why:
                    stopped = f"stopped drawing kernels after {next_c * CHUNK} ({why})"
                    break
                c, next_c = next_c, next_c + 1
                st = read_stats(out, c)
                if st is not None and st.get("complete"):
                    absorb(st, resumed=True)
                    continue
                task = {"out": out, "chunk": c, "target": target, "seed": seed, "families": families, "archs": archs,
                        "validate": validate, "gpus_off": gpus is not None and not gpus}
                if cfg.faults is not None:  # tests only
                    task["faults"] = dataclasses.asdict(cfg.faults)
                inflight.add(c)
                pool.submit(task)
            if not inflight:
                if tally["passed"] >= count or stopped:
                    break
                continue
            for kind, payload, *rest in pool.wait():
                if kind == "error":
                    raise payload
                if kind == "ok":
                    inflight.discard(payload["chunk"])
                    absorb(payload)
                    continue
                exitcode = rest[0]
                for task in payload:  # "died": its chunks go out again (those it finished are on disk)
                    c = task["chunk"]
                    deaths[c] = deaths.get(c, 0) + 1
                    note = read_running(out, c)  # the kernel it was executing, if it was
                    worker_deaths.append({"chunk": c, "exitcode": exitcode, "device": task.get("device"),
                                          "kernel": note["kernel"] if note else None})
                    if note:
                        os.remove(running_path(out, c))
                        key = (c, note["index"])
                        strikes[key] = strikes.get(key, 0) + 1
                        if strikes[key] >= KERNEL_STRIKES:
                            add_fault(out, c, note["index"], f"worker_died: kernel {note['kernel']} was executing each of "
                                                             f"the {strikes[key]} times its worker died (last exit status "
                                                             f"{exitcode})")
                    st = read_stats(out, c)
                    if st is not None and st.get("complete"):
                        inflight.discard(c)
                        absorb(st)
                    elif deaths[c] > MAX_WORKER_DEATHS:
                        raise WorkerLost(f"chunk {c} lost its worker {deaths[c]} times (last exit status {exitcode}); "
                                           f"see {faults_path(out, c)} if it exists")
                    else:
                        retry.append({k: v for k, v in task.items() if k != "device"})
    except BaseException:
        if pool:
            pool.terminate()
            pool = None
        raise
    finally:
        if pool:
            pool.close()
        shutil.rmtree(run_dir, ignore_errors=True)
    progress.done()
    manifest = finalize(out, done, count, config)
    elapsed = time.time() - t0
    run_info = {
        "seconds": round(elapsed, 3),
        # the pairs this invocation made: those of chunks an earlier run finished took no time here
        "pairs_per_s": round(max(manifest["counts"]["passed"] - tally["resumed"], 0) / max(elapsed, 1e-9), 2),
        "resumed_pairs": tally["resumed"],
        "workers": workers,
        "executor": cfg.executor,
        "validate": validate,
        "devices": config["devices"],
        # summed over workers: where the time went (chunks resumed from disk cost nothing here)
        "stage_seconds": {k: round(v, 3) for k, v in sorted(perf["seconds"].items())},
        "worker_peak_rss_mb": max(perf["peak_rss_mb"].values(), default=None),
        "worker_deaths": worker_deaths,
    }
    if stopped:
        run_info["stopped"] = stopped
    atomic_write(os.path.join(out, "run.json"), canonical_json(run_info).encode())
    manifest["_run"] = run_info
    if stopped and manifest["counts"]["passed"] < count:
        top = ", ".join(f"{k} {v}" for k, v in sorted(manifest["rejects_by_reason"].items(), key=lambda kv: -kv[1])[:3])
        raise RunStopped(f"{stopped}: {manifest['counts']['passed']} of {count} pairs; top rejects: {top or 'none'}; "
                         f"the shards and manifest.json in {out} hold what was written")
    return manifest
