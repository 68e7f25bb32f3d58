"""Executors: the seam where chunks are run. Given chunk tasks (`pipeline.task.ChunkTask`), an
executor yields chunk results.

Every executor runs the same `pipeline.chunk.process_chunk`, so the shards do not depend on
which one ran them. `InProcessExecutor` runs a chunk in the calling process (--workers 1 on a
machine without GPUs); `LocalExecutor` runs worker processes on this machine; `RayExecutor`
runs each chunk as a Ray task, on a local Ray instance or a cluster (--executor ray).
"""

from __future__ import annotations

import collections
import multiprocessing
import multiprocessing.connection
import os
import shutil
import tempfile

from runtime.process import use_run_dir
from pipeline.chunk import process_chunk
from pipeline.errors import ExecutorUnavailable
from pipeline.task import ChunkTask

# A worker whose CUDA context was lost (a sticky error) exits with this status; the parent
# starts a fresh worker and re-runs the chunk without the kernel that caused it.
EXIT_CUDA_LOST = 75


class Executor:
    """Runs chunk tasks. `submit` hands one over; `wait` blocks until something happened and
    returns events: ("ok", stats), ("error", exception) or ("died", lost tasks, exit code), the
    last meaning the tasks' worker died (their chunks may run again). `capacity` is how many
    chunks it takes in flight."""

    capacity: int = 1
    workers: int = 1  # chunks it runs at once (run.json's "workers")

    def submit(self, task: ChunkTask) -> None:
        raise NotImplementedError

    def wait(self) -> list[tuple]:
        raise NotImplementedError

    def close(self) -> None:
        """Finish: let workers exit after their current tasks."""

    def terminate(self) -> None:
        """Stop now (after an error or an interrupt)."""


class InProcessExecutor(Executor):
    """Runs each chunk in this process when it is submitted (one at a time)."""

    capacity = 1

    def __init__(self):
        self.events: list[tuple] = []

    def submit(self, task: ChunkTask) -> None:
        self.events.append(("ok", process_chunk(task)))

    def wait(self) -> list[tuple]:
        events, self.events = self.events, []
        return events


def _worker_main(conn, run_dir: str) -> None:
    """A worker process: run the chunks sent to it, in order, and send back each one's stats.
    After a sticky CUDA error its context is unusable: it exits (EXIT_CUDA_LOST) at once."""
    use_run_dir(run_dir)  # the Warp cache and NVRTC's precompiled headers: gone with the run's directory
    from extractor import warp_adapter

    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        try:
            reply = ("ok", process_chunk(task))
        except warp_adapter.CudaContextLost:
            os._exit(EXIT_CUDA_LOST)
        except BaseException as e:  # noqa: BLE001 - a bug: the parent re-raises it
            reply = ("error", e)
        try:
            conn.send(reply)
        except Exception as e:  # noqa: BLE001 - an unpicklable exception
            conn.send(("error", RuntimeError(f"{type(reply[1]).__name__}: {reply[1]}; not picklable: {e}")))


class LocalExecutor(Executor):
    """Worker processes on this machine, each with a fixed CUDA device (round robin over `devices`)
    or none.

    Unlike multiprocessing.Pool, it knows which chunks each worker holds: when a worker dies
    (SIGKILL, out of memory, a lost CUDA context) `wait` reports the chunks it lost and a fresh
    worker on the same device takes its place."""

    def __init__(self, ctx, workers: int, run_dir: str, devices: list[str]):
        self.ctx, self.run_dir = ctx, run_dir
        self.workers = workers
        self.capacity = 2 * workers  # chunks in flight: one running and one queued per worker
        self.devices = [devices[i % len(devices)] if devices else None for i in range(workers)]
        self.slots: list[dict] = [{} for _ in range(workers)]
        for i in range(workers):
            self._start(i)

    def _start(self, i: int) -> None:
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(target=_worker_main, args=(child, self.run_dir), daemon=True)
        proc.start()
        child.close()
        self.slots[i] = {"proc": proc, "conn": parent, "tasks": collections.deque()}

    def submit(self, task: ChunkTask) -> None:
        """Send a chunk to the worker holding the fewest, with that worker's device."""
        i = min(range(len(self.slots)), key=lambda j: len(self.slots[j]["tasks"]))
        task = task.on_device(self.devices[i])
        self.slots[i]["tasks"].append(task)
        self.slots[i]["conn"].send(task)

    def wait(self) -> list[tuple]:
        """Block until something happens; returns events ("ok", stats), ("error", exception) or
        ("died", lost tasks, exit code)."""
        conns = {s["conn"]: i for i, s in enumerate(self.slots)}
        sentinels = {s["proc"].sentinel: i for i, s in enumerate(self.slots)}
        ready = multiprocessing.connection.wait(list(conns) + list(sentinels))
        events: list[tuple] = []
        dead = []
        for r in ready:
            if r in conns:
                events += self._drain(conns[r])
            else:
                dead.append(sentinels[r])
        for i in dead:
            slot = self.slots[i]
            events += self._drain(i)  # what it sent before it died
            slot["proc"].join()
            lost = list(slot["tasks"])
            slot["conn"].close()
            self._start(i)
            events.append(("died", lost, slot["proc"].exitcode))
        return events

    def _drain(self, i: int) -> list[tuple]:
        slot, events = self.slots[i], []
        try:
            while slot["conn"].poll():
                kind, payload = slot["conn"].recv()
                slot["tasks"].popleft()
                events.append((kind, payload))
        except (EOFError, OSError):
            pass
        return events

    def close(self) -> None:
        for s in self.slots:
            try:
                s["conn"].send(None)
            except OSError:
                pass
        for s in self.slots:
            s["proc"].join(timeout=60)
            if s["proc"].is_alive():
                s["proc"].kill()
                s["proc"].join()

    def terminate(self) -> None:
        for s in self.slots:
            if s["proc"].is_alive():
                s["proc"].kill()
        for s in self.slots:
            s["proc"].join()


# The run's name (its temporary directory's), which a Ray worker gets in its environment: its
# Warp cache goes under $TMPDIR/<name> on its node, as a LocalExecutor worker's goes under the
# run's temporary directory, and each node's copy is removed when the run ends.
RAY_RUN_ENV = "WARP_IR_RAY_RUN"
RAY_SWEEP_TIMEOUT_S = 60

_run_dir: str | None = None  # in a Ray worker: the run's temporary directory on this node


def _ray_chunk(task: ChunkTask) -> dict:
    """The Ray task: one chunk, in a Ray worker process that runs chunks of this run only (the
    run's name is in its runtime_env, so Ray starts workers for this run). After a sticky CUDA
    error the process exits at once (EXIT_CUDA_LOST), as a LocalExecutor worker does: the driver
    sees a dead worker. (Ray does not pass a dead worker's exit status to the driver; a task that
    returned first and exited after would leave Ray time to hand the unusable process a chunk.)"""
    global _run_dir
    if _run_dir is None:  # this process's first chunk
        run_dir = _run_dir = os.path.join(tempfile.gettempdir(), os.environ[RAY_RUN_ENV])
        os.makedirs(run_dir, exist_ok=True)
        use_run_dir(run_dir)  # a Ray worker does not exit at the end, it is killed
    from extractor import warp_adapter

    try:
        return process_chunk(task)
    except warp_adapter.CudaContextLost:
        os._exit(EXIT_CUDA_LOST)


def _ray_sweep(name: str) -> None:
    """A Ray task on one node: remove the run's temporary directory there (the Warp caches of its
    workers, also of those that were killed: a Ray worker is killed, not exited, at the end)."""
    shutil.rmtree(os.path.join(tempfile.gettempdir(), name), ignore_errors=True)


class RayExecutor(Executor):
    """Each chunk a Ray task (num_cpus=1) running `process_chunk`, on a local Ray instance started
    for the run (address None; stopped at the end) or a cluster ("auto", HOST:PORT). Every node
    writes into the run's --out, so it must be a directory every node reaches (a shared file
    system); a node needs this repository and the lock file's packages. `workers`: chunks at once
    (None: the cluster's CPUs); twice that many are in flight. CPU only: Ray workers see no CUDA
    device (their verdicts are a CPU machine's), and GPUs asked for are refused.

    Ray does not retry a chunk (max_retries=0): a task whose worker died (SIGKILL, out of memory,
    a lost node) is reported as ("died", [task], None) and the scheduler sends it again, so every
    death goes through the scheduler's accounting, as with LocalExecutor: MAX_WORKER_DEATHS per
    chunk and the kernel strikes. A Ray retry would run the chunk again before the scheduler saw
    the death: the kernel named in the chunk's .running.json would be overwritten by the retry
    without a strike, a kernel that kills every worker would take max_retries + 1 workers per
    death counted, and a chunk could die that many times more than MAX_WORKER_DEATHS allows."""

    def __init__(self, address: str | None, workers: int | None, run_dir: str, devices: list[str]):
        from validator.revalidate import RAY_WORKER_ENV, RayUnavailable, connect_ray, ray_cpus

        if devices:
            raise ExecutorUnavailable(f"--executor ray executes on CPUs only (GPU execution on Ray is not supported); "
                                      f"use --gpus none (asked for {', '.join(devices)}), or --executor local")
        try:
            self.owned = connect_ray(address, workers, run_dir)
        except RayUnavailable as e:
            raise ExecutorUnavailable(str(e)) from None
        import ray

        self.ray, self.name = ray, os.path.basename(run_dir)
        cpus = ray_cpus()
        if cpus < 1:
            self.close()
            raise ExecutorUnavailable(f"the Ray cluster{f' at {address}' if address else ''} has no CPUs")
        self.workers = workers or cpus
        self.capacity = 2 * self.workers  # chunks in flight: as LocalExecutor's, one running and one queued each
        env = {RAY_RUN_ENV: self.name, **RAY_WORKER_ENV}
        self.remote = ray.remote(num_cpus=1, max_retries=0)(_ray_chunk).options(runtime_env={"env_vars": env})
        self.pending: dict = {}  # ObjectRef -> task

    def submit(self, task: ChunkTask) -> None:
        self.pending[self.remote.remote(task)] = task

    def wait(self) -> list[tuple]:
        """Block until a chunk is done; returns its events and those of every other one done by
        then. A task that raised is ("error", its exception, with the remote traceback); one whose
        worker or node Ray lost (SIGKILL, out of memory, a lost CUDA context: EXIT_CUDA_LOST) is
        ("died", [task], None): Ray does not tell the driver the exit status."""
        ray = self.ray
        if not self.pending:
            return []
        refs = list(self.pending)
        ready, rest = ray.wait(refs, num_returns=1)
        if rest:
            ready += ray.wait(rest, num_returns=len(rest), timeout=0)[0]
        events: list[tuple] = []
        for ref in ready:
            task = self.pending.pop(ref)
            try:
                events.append(("ok", ray.get(ref)))
            except ray.exceptions.RayTaskError as e:  # the chunk's own code raised
                events.append(("error", e.as_instanceof_cause()))
            except (ray.exceptions.RuntimeEnvSetupError, ray.exceptions.TaskUnschedulableError) as e:
                events.append(("error", e))  # the cluster cannot run it at all: running it again will not help
            except ray.exceptions.RayError:  # the worker process or its node died (SIGKILL, out of memory, ...)
                events.append(("died", [task], None))
        return events

    def _sweep(self) -> None:
        """Remove the run's temporary directory on every node of a cluster (on this one too: its
        raylet's $TMPDIR need not be the driver's)."""
        ray = self.ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        sweep = ray.remote(num_cpus=0, max_retries=0)(_ray_sweep)
        refs = [sweep.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(self.name)
                for n in ray.nodes() if n.get("Alive")]
        if refs:
            ray.wait(refs, num_returns=len(refs), timeout=RAY_SWEEP_TIMEOUT_S)

    def close(self) -> None:
        try:
            if not self.owned:  # a local instance started for the run: the scheduler removes its directory
                self._sweep()
        finally:
            if self.owned:
                self.ray.shutdown()

    def terminate(self) -> None:
        for ref in list(self.pending):
            try:
                self.ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - done already, or its worker is gone
                pass
        self.pending.clear()
        self.close()
