"""Resume as a property: whatever sequence of worker kills (`Faults.kill_chunk`), driver
interrupts (SIGINT, SIGTERM at a drawn point of the run loop) and resumes a run directory goes
through, the run, once it completes, holds the bytes of an uninterrupted run (shards, stats,
manifest), every record once, and nothing temporary (`leftovers`, the run's temporary directory).
A Hypothesis state machine draws the sequences; a @given property draws the kernel, or the file
write, at which an in-process run is interrupted. Each is shown able to fail on a planted bug."""

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import sys
import tempfile

import pytest
from hypothesis import Phase, example, find, given, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from generator.strategies import examples, settings
import pipeline
from pipeline import chunk, scheduler
from pipeline.testing import dataset_files, leftovers, records, reference_run, scratch_dirs
from runtime.process import Terminated, sigterm_raises
from schemas.dataset_format import RUN_CONFIG, RUN_INFO, RUN_MANIFEST, shard_name, stats_name

FAMS = ("arith", "branch")
SEED = 5
# CHUNK (50) is fixed: the spawned workers import it. Three chunks, the last trimmed to 10
# records by the manifest step (so a completed run's last chunk is redone by a resume).
COUNT = 2 * pipeline.CHUNK + 10
CHUNKS = 3
RUN_DIR_PREFIX = "warp-ir-run-"  # scheduler.start's temporary directory
_tmp = scratch_dirs("resume_properties_")


def _cfg(out: str, workers: int, kill_chunk: int | None = None) -> pipeline.RunConfig:
    # --no-validate: codegen only, a run in seconds (validated, about 30 s on two cores); the
    # resume rule, the worker faults and the driver's interrupt take the same paths either way
    faults = None if kill_chunk is None else pipeline.Faults(kill_chunk=str(kill_chunk))
    return pipeline.RunConfig("cpu", COUNT, SEED, out, list(FAMS), workers=workers, quiet=True, validate=False,
                              faults=faults)


def _reference() -> str:
    """The uninterrupted run (one worker, in this process), made once per process."""
    return reference_run(COUNT, SEED, FAMS, validate=False)[0]


def _ids(out: str) -> list[str]:
    return [json.loads(line)["id"] for line in records(out)]


def resume_failures(out: str, ref: str) -> list[str]:
    """Why `out`, a completed run, is not the uninterrupted run `ref`: a file missing, extra or
    with other bytes, a record lost or written twice, something temporary left behind."""
    got, want = dataset_files(out), dataset_files(ref)
    bad = [f"{n}: missing" for n in sorted(set(want) - set(got))]
    bad += [f"{n}: not in the uninterrupted run" for n in sorted(set(got) - set(want))]
    bad += [f"{n}: other bytes" for n in sorted(set(got) & set(want)) if got[n] != want[n]]
    ids, ref_ids = _ids(out), set(_ids(ref))
    bad += [f"record {i}: written twice" for i in sorted({i for i in ids if ids.count(i) > 1})]
    bad += [f"record {i}: lost" for i in sorted(ref_ids - set(ids))]
    return bad + [f"{n}: left over" for n in leftovers(out)]


def chunk_failures(out: str, ref: str) -> list[str]:
    """Why a chunk on disk (its stats file written) is not final: a finished chunk holds the
    uninterrupted run's bytes (its records start with those of the reference's trimmed last
    chunk), and no chunk the uninterrupted run did not need is there."""
    bad = []
    for c in (c for c in range(2 * CHUNKS) if chunk.read_stats(out, c) is not None):
        if chunk.read_stats(ref, c) is None:
            bad.append(f"chunk {c}: not needed by the uninterrupted run")
            continue
        mine, theirs = ([_read(d, name(c)) for name in (shard_name, stats_name)] for d in (out, ref))
        same = mine == theirs if chunk.read_stats(ref, c)["complete"] else mine[0].startswith(theirs[0])
        if not same:
            bad.append(f"chunk {c}: other bytes than the uninterrupted run's")
    return bad


def _read(out: str, name: str) -> bytes:
    with open(os.path.join(out, name), "rb") as f:
        return f.read()


@pytest.fixture(autouse=True, scope="module")
def private_tempdir():
    """The runs' temporary directories go to a directory of this test's own (other tests' runs
    may share the machine's), where `run_dirs_left` looks for them."""
    previous, tempfile.tempdir = tempfile.tempdir, _tmp("tempdir")
    os.makedirs(tempfile.tempdir)
    yield
    tempfile.tempdir = previous


def run_dirs_left() -> list[str]:
    return [n for n in os.listdir(tempfile.gettempdir()) if n.startswith(RUN_DIR_PREFIX)]


@contextlib.contextmanager
def driver_interrupted(after_chunks: int, signum: int):
    """Inside, `signum` reaches this process, the driver, once its run loop has absorbed
    `after_chunks` chunks (0: as soon as it has sent its first ones); the run must stop with
    KeyboardInterrupt (SIGINT) or Terminated (SIGTERM, as under the CLI's `sigterm_raises`)."""
    real = scheduler.Schedule.send

    def send(self):
        real(self)
        if len(self.tally.done) >= after_chunks:
            os.kill(os.getpid(), signum)

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.MonkeyPatch.context() as mp, sigterm_raises(), pytest.raises((KeyboardInterrupt, Terminated)):
            mp.setattr(scheduler.Schedule, "send", send)
            yield
    finally:
        signal.signal(signal.SIGINT, previous)


# a worker killed first: one_of prefers its first branch, and the ci budget is a few programs
KILLS = st.integers(0, CHUNKS - 1) | st.none()
SIGNALS = st.sampled_from([signal.SIGINT, signal.SIGTERM])


class ResumeMachine(RuleBasedStateMachine):
    """One run directory and the invocations of the same run on it (two worker processes)."""

    def __init__(self):
        super().__init__()
        self.ref = _reference()
        self.out = _tmp("machine")
        self.finished = False

    @initialize(after=st.integers(0, CHUNKS), signum=SIGNALS, kill=KILLS)
    def start(self, after, signum, kill):
        """The run begins and is interrupted: its driver gets `signum` once `after` chunks are in
        (its worker SIGKILLed in the middle of chunk `kill` before, if it gets there)."""
        self.interrupt_the_driver(after, signum, kill)

    @rule(after=st.integers(0, CHUNKS), signum=SIGNALS, kill=KILLS)
    def interrupt_the_driver(self, after, signum, kill):
        with driver_interrupted(after, signum):
            pipeline.run(_cfg(self.out, 2, kill))
        self.finished = False

    @rule(kill=KILLS)
    def resume(self, kill=None):
        """The same run again, to its end; its worker SIGKILLed in the middle of chunk `kill`,
        which must then happen (a chunk not finished on disk runs again)."""
        unfinished = kill is not None and not (chunk.read_stats(self.out, kill) or {}).get("complete")
        m = pipeline.run(_cfg(self.out, 2, kill))
        assert m["counts"]["passed"] == COUNT
        deaths = [(d["chunk"], d["exitcode"]) for d in m["_run"]["worker_deaths"]]
        # one entry per chunk the dead worker held: the killed one and any queued behind it
        assert (((kill, -9) in deaths and {e for _, e in deaths} == {-9}) if unfinished else deaths == []), deaths
        self.finished = True

    @invariant()
    def finished_chunks_are_final(self):
        assert not run_dirs_left(), run_dirs_left()
        assert not chunk_failures(self.out, self.ref), chunk_failures(self.out, self.ref)
        if self.finished:
            assert not resume_failures(self.out, self.ref), resume_failures(self.out, self.ref)

    def teardown(self):
        try:
            if not self.finished:
                self.resume()
                self.finished_chunks_are_final()
        finally:
            shutil.rmtree(self.out, ignore_errors=True)


# Each step is a whole run with two spawned workers (3-5 s here): 3 programs of at most 3 steps
# after the interrupted start, plus a resume at teardown, keep the test near a minute on two
# cores. No shrinking: a program is at most five runs, and shrinking one took minutes.
ResumeMachine.TestCase.settings = settings(max_examples=examples(3), stateful_step_count=3, deadline=None,
                                           phases=[Phase.explicit, Phase.reuse, Phase.generate])
TestResumeMachine = ResumeMachine.TestCase


def test_planted_skip_of_a_dead_worker_s_chunk_is_caught_by_the_machine_s_invariant(monkeypatch):
    # the planted bug: a chunk whose worker died is forgotten instead of sent again, so the run
    # draws a chunk more to reach its count (chunk 3 instead of chunk 1)
    monkeypatch.setattr(scheduler.Schedule, "died", lambda self, task, code: self.inflight.discard(task.chunk))
    machine = ResumeMachine()
    try:
        pipeline.run(_cfg(machine.out, 2, 1))  # chunk 1's worker killed
        machine.finished = True
        with pytest.raises(AssertionError, match="chunk 3: not needed"):
            machine.finished_chunks_are_final()
        failures = resume_failures(machine.out, machine.ref)
        assert f"{shard_name(1)}: missing" in failures and any(f.endswith(": lost") for f in failures)
    finally:
        shutil.rmtree(machine.out, ignore_errors=True)


# Where the @given property interrupts an in-process run (one worker): when kernel (chunk, index
# in the chunk) is drawn, or when a file's write has reached the disk but not its name
KERNEL_POINTS = st.tuples(st.integers(0, CHUNKS - 1), st.integers(0, pipeline.CHUNK - 1))
CHUNK_FILES = st.sampled_from([name(c) for c in range(CHUNKS) for name in (shard_name, stats_name)])
DRIVER_FILES = st.sampled_from([RUN_CONFIG, RUN_MANIFEST, RUN_INFO])


def _sigint_at(mp: pytest.MonkeyPatch, point) -> None:
    """SIGINT to this process at `point`: (chunk, index) or a file name (after the fsync of its
    temporary file, before the rename: where a Ctrl-C during a write most likely lands)."""
    me = os.getpid()
    if isinstance(point, tuple):
        kernel = pipeline.kernel_plan(SEED, list(FAMS), point[0] * pipeline.CHUNK + point[1])
        real_build = chunk.build_spec

        def build_spec(family, seed):
            if (family, seed) == kernel:
                os.kill(me, signal.SIGINT)
            return real_build(family, seed)

        mp.setattr(chunk, "build_spec", build_spec)
        return
    real_fsync = os.fsync

    def fsync(fd):
        real_fsync(fd)
        if os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).startswith(f"{point}.tmp-"):
            os.kill(me, signal.SIGINT)

    mp.setattr(os, "fsync", fsync)


def interrupt_and_resume(point, planted=contextlib.nullcontext) -> list[str]:
    """An in-process run stopped by SIGINT at `point`, then resumed as the next invocation
    would be, in another process (another pid: other temporary names), under `planted`;
    `resume_failures` of the result."""
    out = _tmp("given")
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.MonkeyPatch.context() as mp, pytest.raises(KeyboardInterrupt):
            _sigint_at(mp, point)
            pipeline.run(_cfg(out, 1))
    finally:
        signal.signal(signal.SIGINT, previous)
    with pytest.MonkeyPatch.context() as mp, planted():
        pid = os.getpid() + 100_000
        mp.setattr(os, "getpid", lambda: pid)
        assert pipeline.run(_cfg(out, 1))["counts"]["passed"] == COUNT
    assert not run_dirs_left(), run_dirs_left()
    return resume_failures(out, _reference())


# one example is an interrupted run and its resume in this process (about 4 s here)
@settings(max_examples=examples(6))
@given(point=KERNEL_POINTS | CHUNK_FILES)
def test_an_interrupt_anywhere_in_a_chunk_resumes_without_loss_or_duplication(point):
    assert interrupt_and_resume(point) == []


@settings(max_examples=examples(3))
@given(name=DRIVER_FILES)
@example(name=RUN_MANIFEST)
def test_an_interrupt_in_the_driver_s_own_writes_leaves_no_temporary_file(name):
    """Found by this property: NAME.tmp-PID of run_config.json, manifest.json or run.json was
    left in --out for good; the resumed run's finalize now removes them (pipeline/manifest.py)."""
    assert interrupt_and_resume(name) == []


@contextlib.contextmanager
def redraw_finished_chunks_with_another_seed():
    """The planted bug: a resume takes no chunk as finished, and draws those that were with
    another seed."""
    finished = set()

    def read_stats(out, c):
        if chunk.read_stats(out, c) is not None:
            finished.add(c)
        return None

    class Task(pipeline.ChunkTask):
        @classmethod
        def of_run(cls, cfg, archs, c):
            task = pipeline.ChunkTask.of_run(cfg, archs, c)
            return dataclasses.replace(task, seed=task.seed + 1) if c in finished else task

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(scheduler, "read_stats", read_stats)
        mp.setattr(scheduler, "ChunkTask", Task)
        yield


def test_planted_redraw_of_finished_chunks_is_found_by_the_property():
    # only points after a chunk finished show it: the search must get past chunk 0's
    found = []

    def fails(point) -> bool:
        found[:] = interrupt_and_resume(point, redraw_finished_chunks_with_another_seed)
        return bool(found)

    point = find(KERNEL_POINTS | CHUNK_FILES, fails,
                 settings=settings(max_examples=examples(6), phases=[Phase.generate]))
    assert point != (0, 0) and found and all(f.endswith(("other bytes", "lost")) for f in found), (point, found)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
