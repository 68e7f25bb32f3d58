"""A run's configuration: what the user asked for (`RunConfig`), what it resolves to on this
machine (devices, workers), and the resume rule (a run directory holds one configuration).
`Faults` (pipeline.task) is re-exported here: a RunConfig carries them."""

from __future__ import annotations

import dataclasses
import json
import os

import schemas

from schemas.dataset_format import RUN_CONFIG, canonical_json
from pipeline.chunk import atomic_write
from pipeline.errors import RunConflict
from pipeline.plan import CHUNK
from pipeline.task import Faults

# the configuration of the run a directory holds, beside its shards (what a resume must match)

RESUME_KEYS = ("target", "seed", "families", "chunk_size", "archs", "validate", "record_schema_version")
# Workers per GPU when GPUs execute and --workers is not given. A worker spends nearly all its
# time in NVRTC and LLVM on its CPU core and well under 1% launching on the GPU, so the GPU is
# not the limit; each worker holds a CUDA context of its own (a few hundred MB of GPU memory)
# and the launches of up to this many time-share the device. Measured on one H100 with 16 cores
# (bench/gpu_proof.sh, README "GPU execution"): 800 CUDA pairs at 3.52 pairs/s with 4 workers
# and 12.46 with 16, 1 worker 0.96: the GPU did not limit 16 workers.
WORKERS_PER_GPU = 16


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """One generation run. `gpus`: the CUDA devices that execute (None: every one of this
    machine; []: none, GPU execution off); workers are assigned to them round robin.
    `workers`: None for `default_workers`. `archs`: NVRTC targets (None: the adapter's default).
    `executor`: "local" (worker processes here) or "ray" (Ray tasks, CPU only: gpus None means
    none there; `ray_address` None starts a local Ray instance for the run, "auto" or HOST:PORT
    joins a cluster). Not a resume key: the executor does not change a byte of the dataset.
    `faults`: tests only (`pipeline.task.Faults`)."""

    target: str
    count: int
    seed: int
    out: str
    families: list[str]
    workers: int | None = None
    quiet: bool = False
    archs: list[str] | None = None
    validate: bool = True
    gpus: list[str] | None = None
    executor: str = "local"
    ray_address: str | None = None
    faults: Faults | None = None


def default_workers(devices: list[str]) -> int:
    """All cores; where GPUs execute, at most WORKERS_PER_GPU per GPU."""
    cores = os.cpu_count() or 1
    return min(cores, WORKERS_PER_GPU * len(devices)) if devices else cores


def executing_devices(devices: list[str], validate: bool) -> list[str]:
    """What executes the kernels: "cpu" and each CUDA device with its name; nothing for --no-validate."""
    from extractor import warp_adapter

    return ["cpu"] + [warp_adapter.device_description(d) for d in devices] if validate else []


def device_kinds(devices: list[str]) -> list[str]:
    """The kinds of executing device (names without the ordinal): what a resume must keep."""
    return sorted({d.split(" ", 1)[1] if d.startswith("cuda:") else d for d in devices})


def resolve(cfg: RunConfig) -> tuple[list[str], list[str], int, dict]:
    """(archs, executing CUDA devices, workers, the run_config.json written into the output)."""
    from extractor import warp_adapter

    archs = list(cfg.archs or warp_adapter.DEFAULT_ARCHS)
    if not cfg.validate:
        devices = []
    elif cfg.gpus is not None:
        devices = list(cfg.gpus)
    else:  # every device of this machine; Ray workers see none (RayExecutor)
        devices = [] if cfg.executor == "ray" else warp_adapter.cuda_devices()
    workers = cfg.workers or default_workers(devices)
    config = {"target": cfg.target, "count": cfg.count, "seed": cfg.seed, "families": cfg.families, "chunk_size": CHUNK,
              "archs": archs, "validate": cfg.validate, "record_schema_version": schemas.PAIR_SCHEMA_VERSION,
              "devices": executing_devices(devices, cfg.validate)}
    return archs, devices, workers, config


def claim(out: str, config: dict) -> None:
    """Write `config` as out/run_config.json, or, where a run is already there, refuse (RunConflict)
    unless it is the same run on the same kind of device (then this one resumes it)."""
    cfg_path = os.path.join(out, RUN_CONFIG)
    if os.path.exists(cfg_path):
        with open(cfg_path) as f:
            old = json.load(f)
        old.setdefault("validate", True)  # written before --no-validate existed
        old.setdefault("record_schema_version", "1.1.0")  # written before the version was recorded here
        old.setdefault("devices", ["cpu"] if old["validate"] else [])  # before devices were recorded: no GPU had run
        if {k: old.get(k) for k in RESUME_KEYS} != {k: config[k] for k in RESUME_KEYS}:
            raise RunConflict(f"{out} holds a run with a different config ({cfg_path}); use another --out")
        if device_kinds(old["devices"]) != device_kinds(config["devices"]):
            raise RunConflict(f"{out} holds a run executed on {', '.join(old['devices']) or 'no device'}, this one would "
                             f"execute on {', '.join(config['devices']) or 'no device'}; use another --out")
    atomic_write(cfg_path, canonical_json(config).encode())
