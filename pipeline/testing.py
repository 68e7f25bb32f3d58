"""Helpers shared by the pipeline's tests (testonly): scratch directories under the test's own
temporary directory, a run's files read back, small reference runs made once per process, the
environment of a child process that imports this repository, and waiting for a run's chunks."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import time
from typing import Callable

import pipeline
from pipeline.chunk import RUNNING_SUFFIX, TMP_INFIX
from schemas.dataset_format import FAULTS_SUFFIX, RECORDS_SUFFIX, RUN_MANIFEST, SHARD_PREFIX, STATS_SUFFIX

# How long a test waits for a run's first chunks before it gives up.
CHUNK_WAIT_S = 300


def tmp_root() -> str:
    """The test's own temporary directory (Bazel's TEST_TMPDIR), or /tmp."""
    return os.environ.get("TEST_TMPDIR", "/tmp")


def scratch_dirs(prefix: str = "", fresh: bool = True) -> Callable[[str], str]:
    """name -> a path in the test's temporary directory named `prefix` + name; with `fresh`, what
    an earlier test left there is removed first."""

    def scratch(name: str) -> str:
        path = os.path.join(tmp_root(), f"{prefix}{name}")
        if fresh:
            shutil.rmtree(path, ignore_errors=True)
        return path

    return scratch


def shards(out: str) -> list[str]:
    """The names of a run's chunk files (records and stats), sorted."""
    return sorted(p for p in os.listdir(out) if p.startswith(SHARD_PREFIX))


def records(out: str) -> list[bytes]:
    """Every record line of a run, in shard order."""
    return [line for n in sorted(os.listdir(out)) if n.endswith(RECORDS_SUFFIX)
            for line in open(os.path.join(out, n), "rb")]


def dataset_files(out: str, also: tuple[str, ...] = ()) -> dict[str, bytes]:
    """The dataset's bytes: shards, stats and manifest, and the files named in `also` (run.json is
    an invocation's, not data)."""
    return {n: open(os.path.join(out, n), "rb").read() for n in sorted(os.listdir(out))
            if n.startswith(SHARD_PREFIX) or n == RUN_MANIFEST or n in also}


def leftovers(out: str) -> list[str]:
    """What a finished run must not leave in its --out: temporary files, a chunk's GPU faults or
    its worker's note of the running kernel."""
    return [n for n in os.listdir(out) if TMP_INFIX in n or n.endswith((FAULTS_SUFFIX, RUNNING_SUFFIX))]


@functools.cache
def reference_run(count: int, seed: int, families: tuple[str, ...], validate: bool = True,
                  workers: int = 1) -> tuple[str, dict]:
    """An undisturbed CPU run (`workers` 1: in this process) and its manifest; made once per
    process for each set of arguments, and only read by the tests that share it."""
    out = os.path.join(tmp_root(), f"reference-{count}-{seed}-{'-'.join(families)}-w{workers}"
                                      + ("" if validate else "-nv"))
    shutil.rmtree(out, ignore_errors=True)
    m = pipeline.run(pipeline.RunConfig("cpu", count, seed, out, list(families), workers=workers, quiet=True,
                                        validate=validate))
    return out, m


def child_env(base: dict | None = None, **extra: str) -> dict[str, str]:
    """The environment (`base`, else this process's) of a child Python process that imports this
    repository as this one does, with `extra` set."""
    return {**(os.environ if base is None else base), "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), **extra}


def wait_for_chunks(proc: subprocess.Popen, out: str, n: int) -> None:
    """Wait until the run `proc` has finished `n` chunks into `out`; it must still be running."""
    deadline = time.time() + CHUNK_WAIT_S
    while time.time() < deadline:
        done = [x for x in os.listdir(out) if x.endswith(STATS_SUFFIX)] if os.path.isdir(out) else []
        if len(done) >= n or proc.poll() is not None:
            break
        time.sleep(0.02)
    assert proc.poll() is None, f"the run ended before it could be stopped: {proc.communicate()[1][-2000:]!r}"
