"""A chunk task: what one chunk of a run needs to be made anywhere (`ChunkTask`), and the faults
a test may inject into it (`Faults`). Both are frozen values that pickle, so they travel as they
are to a spawned worker process or a Ray task."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.config import RunConfig


@dataclasses.dataclass(frozen=True)
class Faults:
    """Faults a test injects into a run; production never sets them (no flag, no environment
    variable reaches them). They travel as data in each chunk task to the worker that runs it,
    wherever it runs (a local process, a Ray task).
    `kill_chunk`: "N" SIGKILLs the worker in the middle of chunk N (after its compile, before its
    write) once per run; "N*" every time it runs chunk N.
    `sticky_kernel`: a batch holding this kernel raises CudaContextLost for it, a CPU stand-in for
    a GPU launch that faults.
    `crash_kernel`: SIGKILL the worker when it starts executing this kernel, a stand-in for a
    native crash in its launch."""

    kill_chunk: str | None = None
    sticky_kernel: str | None = None
    crash_kernel: str | None = None


@dataclasses.dataclass(frozen=True)
class ChunkTask:
    """Chunk `chunk` of the run into `out`. `archs`: NVRTC targets; `gpus_off`: GPU execution
    turned off (--gpus none); `device`: the CUDA device of the worker that runs it (set by the
    LocalExecutor, None elsewhere); `faults`: tests only."""

    out: str
    chunk: int
    target: str
    seed: int
    families: tuple[str, ...]
    archs: tuple[str, ...]
    validate: bool
    gpus_off: bool
    device: str | None = None
    faults: Faults | None = None

    @classmethod
    def of_run(cls, cfg: RunConfig, archs: list[str], chunk: int) -> ChunkTask:
        """Chunk `chunk` of the run `cfg` (its NVRTC targets resolved to `archs`): the one place a
        task is made."""
        return cls(out=cfg.out, chunk=chunk, target=cfg.target, seed=cfg.seed, families=tuple(cfg.families),
                   archs=tuple(archs), validate=cfg.validate, gpus_off=cfg.gpus is not None and not cfg.gpus,
                   faults=cfg.faults)

    def on_device(self, device: str | None) -> ChunkTask:
        """This task for a worker on `device` (None: no device, as it is sent again)."""
        return dataclasses.replace(self, device=device)
