"""Defence in depth for the code re-validation does run: one child process with resource limits.

What runs is only ever the rendering of the generator's own spec (`verdicts.check_spec`), but a
kernel can still hang or explode in Warp's codegen, a compiler or a launch. So //validator runs
each batch (`checks.check_batch`) in a long-lived child process (Warp initialises once) under:

- RLIMIT_AS, ADDRESS_SPACE bytes of address space, on CPU-only runs (a CUDA context reserves far
  more virtual address space than it uses, so the limit is not set when the child may use a GPU);
- CPU_SECONDS_PER_BATCH seconds of CPU time per batch, enforced by the parent: it reads the
  child's CPU time from /proc once a second and kills it past the budget (a soft RLIMIT_CPU is
  no use here: Warp's LLVM raises the soft limit to the hard one when it compiles); and a hard
  RLIMIT_CPU of CHILD_CPU_SECONDS for the child's whole life, which nothing in it can raise;
- RLIMIT_NOFILE, OPEN_FILES open files; RLIMIT_CORE 0 (no core dumps);
- a wall-clock timeout of BATCH_TIMEOUT_S seconds per batch, after which the child is killed.

A batch whose child dies, runs out of time or memory is split in two and each half retried in a
fresh child, down to the one kernel that does it, which is rejected with reason `sandbox`; the
others are validated as usual. Measured for the default limits: a child validating 60 kernels of
the 20 families of then peaked at 0.9 GB of address space (VmPeak) and 17.5 s of CPU time.
"""

from __future__ import annotations

import concurrent.futures
import errno
import multiprocessing
import os
import resource

from runtime.process import use_run_dir
from validator.verdicts import KernelResult

ADDRESS_SPACE = 8 << 30
CPU_SECONDS_PER_BATCH = 600
CHILD_CPU_SECONDS = 7200
OPEN_FILES = 1024
BATCH_TIMEOUT_S = 900


def _limit(address_space: int | None, run_dir: str | None) -> None:
    if run_dir:
        use_run_dir(run_dir)  # the child's Warp cache and other temporary files live (and die) there
    if address_space:
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    resource.setrlimit(resource.RLIMIT_CPU, (CHILD_CPU_SECONDS, CHILD_CPU_SECONDS))
    resource.setrlimit(resource.RLIMIT_NOFILE, (OPEN_FILES, OPEN_FILES))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))




class Aborted(Exception):
    """The sandbox was stopped (`abort`) while or before it ran a batch."""


def _run(specs, archs, gpu, delay_s: float = 0.0):
    from validator import checks

    if delay_s:  # tests only (Sandbox's delay_s)
        import time

        time.sleep(delay_s)
    return checks.check_batch(specs, archs, gpu=gpu)


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


class Sandbox:
    """Runs `checks.check_batch` in a child process with the limits above. `delay_s` (tests
    only): seconds the child sleeps before each batch, a stand-in for a batch that takes long."""

    def __init__(self, gpu: bool | None, run_dir: str | None = None, cpu_only: bool = True,
                 timeout_s: float = BATCH_TIMEOUT_S, address_space: int = ADDRESS_SPACE,
                 cpu_s: float = CPU_SECONDS_PER_BATCH, delay_s: float = 0.0):
        self.gpu, self.run_dir, self.timeout_s, self.cpu_s, self._pool = gpu, run_dir, timeout_s, cpu_s, None
        self.delay_s = delay_s
        self.address_space = address_space if cpu_only else None
        self.aborted = False

    def _start(self):
        self._pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=_limit,
            initargs=(self.address_space, self.run_dir))

    def _kill(self):
        if self._pool is not None:
            for p in list(getattr(self._pool, "_processes", {}).values()):
                p.kill()
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def abort(self):
        """Stop now, from any thread: the child is killed mid-batch and this sandbox's current
        and later `check_batch` calls raise Aborted (they do not split and retry the batch)."""
        self.aborted = True
        pool = self._pool
        if pool is not None:
            for p in list((getattr(pool, "_processes", None) or {}).values()):
                p.kill()

    def close(self):
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def check_batch(self, specs, archs) -> list[KernelResult]:
        if self.aborted:
            self._kill()
            raise Aborted("sandbox stopped")
        if self._pool is None:
            self._start()
        future = self._pool.submit(_run, specs, archs, self.gpu, self.delay_s)
        pids = list(getattr(self._pool, "_processes", {}))
        start = {p: _cpu_seconds(p) for p in pids}
        waited, why = 0.0, None
        try:
            while why is None:
                try:
                    return future.result(timeout=min(1.0, max(self.timeout_s - waited, 0.01)))
                except concurrent.futures.TimeoutError:
                    if self.aborted:  # stopped before its child was there to kill
                        break
                    waited += 1.0
                    used = max((_cpu_seconds(p) - start.get(p, 0.0) for p in pids), default=0.0)
                    if used > self.cpu_s:
                        why = f"sandbox: more than {self.cpu_s:g} s of CPU time"
                    elif waited >= self.timeout_s:
                        why = f"sandbox: no result within {self.timeout_s:g} s"
        except concurrent.futures.process.BrokenProcessPool:
            why = "sandbox: the child process died (a resource limit or a crash)"
        except MemoryError:
            why = f"sandbox: out of memory (address space limit {self.address_space} bytes)"
        except OSError as e:
            # the same limit met by a system call (ENOMEM: e.g. the batch's temporary directory
            # could not be removed under the cap); any other OSError is not the sandbox's to name
            if e.errno != errno.ENOMEM:
                raise
            why = f"sandbox: out of memory (address space limit {self.address_space} bytes)"
        self._kill()
        if self.aborted:
            raise Aborted("sandbox stopped")
        if len(specs) > 1:
            mid = len(specs) // 2
            return self.check_batch(specs[:mid], archs) + self.check_batch(specs[mid:], archs)
        return [KernelResult.rejected(why)]
