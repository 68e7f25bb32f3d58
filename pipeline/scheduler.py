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

from runtime.process import raise_if_terminated
from schemas.dataset_format import RUN_INFO, canonical_json
from pipeline.chunk import add_fault, atomic_write, faults_path, read_running, read_stats, running_path
from pipeline.config import RunConfig, claim, resolve
from pipeline.errors import RunStopped, WorkerLost
from pipeline.executors import Executor, InProcessExecutor, LocalExecutor, RayExecutor
from pipeline.manifest import finalize
from pipeline import plan
from pipeline.plan import CHUNK, attempt_cap_chunks, zero_pass_streak
from pipeline.task import ChunkTask

# A chunk whose worker dies more often than this ends the run.
MAX_WORKER_DEATHS = 3
# A kernel that was executing each time its worker died this often is rejected (once could be
# the machine's doing, an out-of-memory kill of a big neighbour; twice is the kernel's).
KERNEL_STRIKES = 2
EXIT_STOPPED = 3
# this invocation's summary (seconds, rate, workers, deaths), beside the run's shards; not data


class Progress:
    """The progress bar on stderr (nothing with --quiet)."""

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


@dataclasses.dataclass
class Tally:
    """What a run has absorbed so far: the done chunks' stats, pairs passed and rejected (and how
    many of the passed were on disk from an earlier run), and the workers' summed stage seconds
    and peak RSS (from each chunk's "_perf")."""

    progress: Progress
    done: dict[int, dict] = dataclasses.field(default_factory=dict)
    passed: int = 0
    rejected: int = 0
    resumed: int = 0
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)
    peak_rss_mb: dict[int, float] = dataclasses.field(default_factory=dict)

    def absorb(self, st: dict, resumed: bool = False) -> None:
        p = st.pop("_perf", None)
        if p:
            for k, v in p["seconds"].items():
                self.seconds[k] = self.seconds.get(k, 0.0) + v
            self.peak_rss_mb[p["pid"]] = max(self.peak_rss_mb.get(p["pid"], 0.0), p["peak_rss_mb"])
        self.done[st["chunk"]] = st
        n_pass = sum(o["status"] == "passed" for o in st["outcomes"])
        self.passed += n_pass
        self.rejected += len(st["outcomes"]) - n_pass
        self.resumed += n_pass if resumed else 0
        self.progress.update(self.passed, self.rejected, self.resumed)


class Schedule:
    """The run loop's state and steps. Chunks go out in index order, at most `pool.capacity` in
    flight, and only as many as the observed pass rate says are still needed; so no wave barrier
    and little surplus. A chunk finished by an earlier run (its stats file exists) is taken as is.
    A chunk lost with its worker goes out again first."""

    def __init__(self, cfg: RunConfig, archs: list[str], pool: Executor, tally: Tally):
        self.cfg, self.archs, self.pool, self.tally = cfg, archs, pool, tally
        self.inflight: set[int] = set()
        self.retry: collections.deque[ChunkTask] = collections.deque()
        self.cap_chunks = attempt_cap_chunks(cfg.count)
        self.stopped: str | None = None  # why the run stopped drawing kernels, if it did
        self.next_c = 0
        self.deaths: dict[int, int] = {}
        self.strikes: dict[tuple[int, int], int] = {}
        self.worker_deaths: list[dict] = []

    def drive(self) -> None:
        """Until `cfg.count` pairs are done or the run stopped drawing and nothing is in flight."""
        while True:
            raise_if_terminated()  # a SIGTERM that library code (Ray) swallowed stops the run here
            self.send()
            if not self.inflight:
                if self.tally.passed >= self.cfg.count or self.stopped:
                    return
                continue
            for kind, payload, *rest in self.pool.wait():
                raise_if_terminated()
                if kind == "error":
                    raise payload
                if kind == "ok":
                    self.inflight.discard(payload["chunk"])
                    self.tally.absorb(payload)
                    continue
                for task in payload:  # "died": its chunks go out again (those it finished are on disk)
                    self.died(task, rest[0])

    def send(self) -> None:
        """Chunks lost with their worker, then new ones while more are needed and there is room."""
        tally, count = self.tally, self.cfg.count
        rate = (tally.passed + 1) / (tally.passed + tally.rejected + 1)
        while self.retry:
            self.pool.submit(self.retry.popleft())
        while (self.stopped is None and tally.passed + len(self.inflight) * CHUNK * rate < count
               and len(self.inflight) < self.pool.capacity):
            why = (f"the attempt cap of {self.cap_chunks * CHUNK} kernels" if self.next_c >= self.cap_chunks else
                   f"{plan.ZERO_PASS_CHUNKS} chunks in a row passed nothing" if zero_pass_streak(tally.done) else None)
            if why:
                self.stopped = f"stopped drawing kernels after {self.next_c * CHUNK} ({why})"
                break
            c, self.next_c = self.next_c, self.next_c + 1
            st = read_stats(self.cfg.out, c)
            if st is not None and st.get("complete"):
                tally.absorb(st, resumed=True)
                continue
            self.inflight.add(c)
            self.pool.submit(ChunkTask.of_run(self.cfg, self.archs, c))

    def died(self, task: ChunkTask, exitcode: int | None) -> None:
        """`task`'s worker died: note it, strike the kernel it was executing, and send the chunk
        again (unless it was done first; WorkerLost when it lost too many workers)."""
        out, c = self.cfg.out, task.chunk
        self.deaths[c] = self.deaths.get(c, 0) + 1
        note = read_running(out, c)  # the kernel it was executing, if it was
        self.worker_deaths.append({"chunk": c, "exitcode": exitcode, "device": task.device,
                                   "kernel": note["kernel"] if note else None})
        if note:
            os.remove(running_path(out, c))
            self.strike(c, note, exitcode)
        st = read_stats(out, c)
        if st is not None and st.get("complete"):
            self.inflight.discard(c)
            self.tally.absorb(st)
        elif self.deaths[c] > MAX_WORKER_DEATHS:
            raise WorkerLost(f"chunk {c} lost its worker {self.deaths[c]} times (last exit status {exitcode}); "
                             f"see {faults_path(out, c)} if it exists")
        else:
            self.retry.append(task.on_device(None))

    def strike(self, c: int, note: dict, exitcode: int | None) -> None:
        """A strike for the kernel chunk c's worker was executing when it died; KERNEL_STRIKES of
        them reject it when the chunk runs again."""
        key = (c, note["index"])
        self.strikes[key] = self.strikes.get(key, 0) + 1
        if self.strikes[key] >= KERNEL_STRIKES:
            add_fault(self.cfg.out, c, note["index"], f"worker_died: kernel {note['kernel']} was executing each of "
                                                      f"the {self.strikes[key]} times its worker died (last exit status "
                                                      f"{exitcode})")


def start(cfg: RunConfig, workers: int, devices: list[str], config: dict) -> tuple[Executor, str]:
    """The run's executor and its temporary directory (the workers' private Warp caches live there,
    removed at the end even when a worker was killed before its own clean-up ran); then
    `cfg.out` claimed for the run. On a failure, both are gone again."""
    run_dir = tempfile.mkdtemp(prefix="warp-ir-run-")
    try:
        pool = make_executor(cfg, workers, run_dir, devices)
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    try:
        os.makedirs(cfg.out, exist_ok=True)
        claim(cfg.out, config)
    except BaseException:
        pool.terminate()
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    return pool, run_dir


def run(cfg: RunConfig) -> dict:
    """Generate `cfg.count` pairs into `cfg.out`; returns the manifest (with "_run": run.json).
    Raises RunStopped when the attempt cap ends the run, RunConflict when `cfg.out` holds another
    run, WorkerLost when a chunk keeps killing its worker, ExecutorUnavailable (before anything is
    written) when the executor cannot start."""
    archs, devices, workers, config = resolve(cfg)
    t0 = time.time()  # the executor's start counts (a local Ray instance's takes seconds)
    pool, run_dir = start(cfg, workers, devices, config)
    workers = pool.workers
    progress = Progress(cfg.count, cfg.quiet)
    schedule = Schedule(cfg, archs, pool, Tally(progress))
    try:
        schedule.drive()
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
    manifest = finalize(cfg.out, schedule.tally.done, cfg.count, config)
    run_info = run_summary(cfg, schedule, manifest, workers, config, time.time() - t0)
    atomic_write(os.path.join(cfg.out, RUN_INFO), canonical_json(run_info).encode())
    manifest["_run"] = run_info
    if schedule.stopped and manifest["counts"]["passed"] < cfg.count:
        top = ", ".join(f"{k} {v}" for k, v in sorted(manifest["rejects_by_reason"].items(), key=lambda kv: -kv[1])[:3])
        raise RunStopped(f"{schedule.stopped}: {manifest['counts']['passed']} of {cfg.count} pairs; top rejects: "
                         f"{top or 'none'}; the shards and manifest.json in {cfg.out} hold what was written")
    return manifest


def run_summary(cfg: RunConfig, schedule: Schedule, manifest: dict, workers: int, config: dict, elapsed: float) -> dict:
    """run.json: this invocation's seconds, rate, workers, devices, stage seconds and worker deaths."""
    tally = schedule.tally
    run_info = {
        "seconds": round(elapsed, 3),
        # the pairs this invocation made: those of chunks an earlier run finished took no time here
        "pairs_per_s": round(max(manifest["counts"]["passed"] - tally.resumed, 0) / max(elapsed, 1e-9), 2),
        "resumed_pairs": tally.resumed,
        "workers": workers,
        "executor": cfg.executor,
        "validate": cfg.validate,
        "devices": config["devices"],
        # summed over workers: where the time went (chunks resumed from disk cost nothing here)
        "stage_seconds": {k: round(v, 3) for k, v in sorted(tally.seconds.items())},
        "worker_peak_rss_mb": max(tally.peak_rss_mb.values(), default=None),
        "worker_deaths": schedule.worker_deaths,
    }
    if schedule.stopped:
        run_info["stopped"] = schedule.stopped
    return run_info
