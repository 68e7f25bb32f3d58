"""Where a user's relative path points: the directory they ran ./bazelw (or bazel run) from;
where a worker process keeps its temporary files (`use_run_dir`); how a command stops on
SIGTERM (`sigterm_raises`); and how a file is written whole or not at all (`atomic_write`)."""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile

# the exit status of a command stopped by SIGTERM (128 + 15, as if it had not handled it)
EXIT_TERMINATED = 128 + signal.SIGTERM


class Terminated(Exception):
    """SIGTERM arrived (`kill`, a batch scheduler, a container stopping)."""


_terminated = False  # SIGTERM arrived inside sigterm_raises

# `atomic_write` writes NAME.tmp-PID, then renames it to NAME
TMP_INFIX = ".tmp-"


def atomic_write(path: str, data: bytes) -> None:
    """`data` into `path`, written to NAME.tmp-PID beside it, fsynced, then renamed: never half a
    file (a run's finalize sweep removes what a killed writer left, by TMP_INFIX)."""
    tmp = f"{path}{TMP_INFIX}{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _raise_terminated(signum, frame):
    global _terminated
    _terminated = True
    raise Terminated()


def raise_if_terminated() -> None:
    """Raise Terminated again when SIGTERM arrived inside `sigterm_raises` and the exception was
    swallowed where it landed: library code that catches every exception (Ray's deserialization
    of a task result turned it into a logged DeserializationError, and the run went on to exit
    0). A loop that waits on such code calls this each round."""
    if _terminated:
        raise Terminated()


@contextlib.contextmanager
def sigterm_raises():
    """Inside, SIGTERM raises Terminated in the main thread, so a command stops as on Ctrl-C (its
    cleanup runs, one error line); the previous handler is back after.

    Any other exception that leaves the block after SIGTERM arrived is Terminated too (chained
    from it): the raise can land inside library code that turns it into an error of its own. Ray's
    Cython `CoreWorker.wait` returned with the exception pending, and Python raised `SystemError:
    ... returned a result with an exception set` (a fresh-clone CI run, 2026-12-06)."""
    global _terminated
    _terminated = False
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    except Terminated:
        raise
    except Exception as e:
        if _terminated:
            raise Terminated() from e
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
        _terminated = False


def caller_dir() -> str:
    # bazelw exports WARP_IR_CALLER_DIR; plain `bazel run` sets BUILD_WORKING_DIRECTORY
    return os.environ.get("WARP_IR_CALLER_DIR") or os.environ.get("BUILD_WORKING_DIRECTORY") or os.getcwd()


def caller_path(path: str) -> str:
    """`path` resolved against the caller's directory (absolute paths are kept)."""
    return os.path.normpath(os.path.join(caller_dir(), path))


def use_run_dir(run_dir: str) -> None:
    """Every temporary file of this process goes under `run_dir`, which its parent removes: the
    private Warp kernel cache (extractor/warp_adapter.py reads WARP_IR_RUN_DIR) and everything
    else that uses $TMPDIR, NVRTC's automatic precompiled headers above all (about 80 MB per
    process, removed by NVRTC only at a normal exit, not when the process is killed). Called by
    each worker process (local, Ray, the validator's sandbox children) before it imports Warp."""
    os.environ["WARP_IR_RUN_DIR"] = run_dir
    os.environ["TMPDIR"] = tempfile.tempdir = run_dir
