"""Executors: the seam where chunks are run. Given chunk tasks, an executor yields chunk results.

Every executor runs the same `pipeline.chunk.process_chunk`, so the shards do not depend on
which one ran them. `InProcessExecutor` runs a chunk in the calling process (--workers 1 on a
machine without GPUs); `LocalExecutor` runs worker processes on this machine. A second
executor (a cluster's) implements the same four methods.
"""

from __future__ import annotations

import collections
import multiprocessing
import multiprocessing.connection
import os

from pipeline.chunk import process_chunk

# A worker whose CUDA context was lost (a sticky error) exits with this status; the parent
# starts a fresh worker and re-runs the chunk without the kernel that caused it.
EXIT_CUDA_LOST = 75


class Executor:
    """Runs chunk tasks. `submit` hands one over; `wait` blocks until something happened and
    returns events: ("ok", stats), ("error", exception) or ("died", lost tasks, exit code), the
    last meaning the tasks' worker died (their chunks may run again). `capacity` is how many
    chunks it takes in flight."""

    capacity: int = 1

    def submit(self, task: dict) -> None:
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

    def submit(self, task: dict) -> None:
        self.events.append(("ok", process_chunk(task)))

    def wait(self) -> list[tuple]:
        events, self.events = self.events, []
        return events


def _worker_main(conn, run_dir: str) -> None:
    """A worker process: run the chunks sent to it, in order, and send back each one's stats.
    After a sticky CUDA error its context is unusable: it exits (EXIT_CUDA_LOST) at once."""
    os.environ["WARP_IR_RUN_DIR"] = run_dir  # the private Warp cache goes under the run's directory
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

    def submit(self, task: dict) -> None:
        """Send a chunk to the worker holding the fewest, with that worker's device."""
        i = min(range(len(self.slots)), key=lambda j: len(self.slots[j]["tasks"]))
        task = {**task, "device": self.devices[i]}
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
