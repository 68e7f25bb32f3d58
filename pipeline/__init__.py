"""The run loop, above the stages: plan (kernel k -> family, seed), chunk (spec -> safety ->
extract and check -> record -> write), executors (where chunks run), manifest, config, cli.

generator/ (the model), extractor/ (Warp's JIT) and validator/ (the checks) never import it."""

from pipeline.config import RunConfig, default_workers
from pipeline.task import ChunkTask, Faults
from pipeline.plan import CHUNK, kernel_plan
from pipeline.errors import PipelineError, RunConflict, RunStopped, WorkerLost
from pipeline.scheduler import EXIT_STOPPED, run

__all__ = ["CHUNK", "ChunkTask", "EXIT_STOPPED", "Faults", "PipelineError", "RunConfig", "RunConflict", "RunStopped", "WorkerLost",
           "default_workers", "kernel_plan", "run"]
