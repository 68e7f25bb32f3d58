"""Defence in depth for the code re-validation does run: one child process with resource limits.

What runs is only ever the rendering of the generator's own spec (`verdicts.check_spec`), but a
kernel can still hang or explode in Warp's codegen, a compiler or a launch. So //validator runs
each batch (`checks.check_batch`) in a long-lived child process (Warp initialises once) under:

- RLIMIT_AS, ADDRESS_SPACE bytes of address space, on CPU-only runs (a CUDA context reserves far
  more virtual address space than it uses, so the limit is not set when the child may use a GPU);
- RLIMIT_CPU, CPU_SECONDS_PER_BATCH seconds of CPU time per batch (the soft limit is moved up
  before each batch; past it the kernel sends SIGXCPU and the child dies);
- RLIMIT_NOFILE, OPEN_FILES open files; RLIMIT_CORE 0 (no core dumps);
- a wall-clock timeout of BATCH_TIMEOUT_S seconds per batch, after which the child is killed.

A batch whose child dies, runs out of time or memory is split in two and each half retried in a
fresh child, down to the one kernel that does it, which is rejected with reason `sandbox`; the
others are validated as usual. Measured for the default limits: a child validating 60 kernels of
all 20 families peaked at 0.9 GB of address space (VmPeak) and 17.5 s of CPU time.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import resource

ADDRESS_SPACE = 8 << 30
CPU_SECONDS_PER_BATCH = 600
OPEN_FILES = 1024
BATCH_TIMEOUT_S = 900


def _limit(address_space: int | None, run_dir: str | None) -> None:
    if run_dir:
        os.environ["WARP_IR_RUN_DIR"] = run_dir  # the child's Warp cache lives (and dies) there
    if address_space:
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    resource.setrlimit(resource.RLIMIT_NOFILE, (OPEN_FILES, OPEN_FILES))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _run(specs, archs, gpu):
    from validator import checks

    use = resource.getrusage(resource.RUSAGE_SELF)
    spent = int(use.ru_utime + use.ru_stime) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (spent + CPU_SECONDS_PER_BATCH, resource.RLIM_INFINITY))
    return checks.check_batch(specs, archs, gpu=gpu)


class Sandbox:
    """Runs `checks.check_batch` in a child process with the limits above."""

    def __init__(self, gpu: bool | None, run_dir: str | None = None, cpu_only: bool = True,
                 timeout_s: float = BATCH_TIMEOUT_S, address_space: int = ADDRESS_SPACE):
        self.gpu, self.run_dir, self.timeout_s, self._pool = gpu, run_dir, timeout_s, None
        self.address_space = address_space if cpu_only else None

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

    def close(self):
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def check_batch(self, specs, archs) -> list[dict]:
        if self._pool is None:
            self._start()
        future = self._pool.submit(_run, specs, archs, self.gpu)
        try:
            return future.result(timeout=self.timeout_s)
        except concurrent.futures.TimeoutError:
            why = f"sandbox: no result within {self.timeout_s:g} s"
        except concurrent.futures.process.BrokenProcessPool:
            why = "sandbox: the child process died (a resource limit or a crash)"
        except MemoryError:
            why = f"sandbox: out of memory (address space limit {self.address_space} bytes)"
        self._kill()
        if len(specs) > 1:
            mid = len(specs) // 2
            return self.check_batch(specs[:mid], archs) + self.check_batch(specs[mid:], archs)
        return [{"error": why}]
