"""The pipeline's errors: one base, a subclass per way a run ends early. The CLI catches each by
name and prints it as one line."""


class PipelineError(Exception):
    """Base of the errors a run reports to its user."""


class RunConflict(PipelineError):
    """--out holds another run: another config, another kind of executing device, or chunks
    built with another toolchain. Nothing is written; the user picks another --out."""


class RunStopped(PipelineError):
    """The run ended before `count` pairs: the attempt cap (what was written stays, with its
    manifest). The CLI prints it as one line and exits EXIT_STOPPED."""


class WorkerLost(PipelineError):
    """A chunk lost its worker more often than MAX_WORKER_DEATHS (a kernel that crashes every
    process that runs it, or a machine out of memory). The chunks already written stay."""


class ExecutorUnavailable(PipelineError):
    """The executor asked for cannot run this run: Ray cannot be imported or its cluster cannot be
    reached, or the run asks Ray for what it does not offer (GPU execution). Nothing is written;
    the CLI prints it as one line and exits 2."""
