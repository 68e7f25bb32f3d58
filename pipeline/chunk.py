"""One chunk of a run, as ordered steps: spec -> safety -> extract and check -> record -> write.

A chunk is one Warp module (compiled once) and one shard. Its files are written to temporary
names and renamed when complete: findings, then the shard, then the stats file recording every
attempt's outcome, whose presence marks the chunk done. Any executor runs `process_chunk` on a
`pipeline.task.ChunkTask`.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import signal
import tempfile
import time

import schemas

from generator import records
from generator.families import build_spec
from generator.render import render_source
from schemas.dataset_format import (
    FINDINGS_DIR, RECORDS_SUFFIX, RUNNING_SUFFIX, canonical_json, faults_name, shard_name, stats_name)
from extractor import warp_adapter
from validator import checks
from runtime.process import TMP_INFIX, atomic_write  # noqa: F401 (the run's writers and tests take them from here)
from pipeline.plan import chunk_indices, kernel_plan
from pipeline.task import ChunkTask, Faults

# a pair whose adjoint disagrees with the oracle's gradient is a finding about Warp, not a
# generation failure: it is counted under its reason (GRADIENT_MISMATCH) and written to
# FINDINGS_DIR, not the dataset
GRADIENT_MISMATCH = checks.GRADIENT_MISMATCH
EXECUTION_CHECKS = checks.EXECUTION_CHECKS
# Tests only (`Faults.kill_chunk`): the flag file, in the run's temporary directory, of a chunk
# whose worker was killed once already.
KILLED_FLAG_PREFIX = "killed-"


def reason_code(reason: str) -> str:
    """The code of an outcome's stored reason (stats files keep the text form)."""
    return checks.split_reason(reason)[0]


def build_record(spec, source: str, target: str, result: checks.KernelResult) -> dict:
    record = {
        "schema_version": schemas.PAIR_SCHEMA_VERSION,
        "origin": schemas.ORIGIN_SYNTHETIC,
        "id": records.record_id(source, spec.name),
        "family": spec.family,
        "target": target,
        "seed": spec.seed,
        "kernel_name": spec.name,
        "source": source,
        "spec": spec.to_json(),
        "args": [records.arg_json(a) for a in spec.args],
        "dim": list(spec.dim),
        "ir": result.ir,
        "io": {
            "inputs": records.inputs_json(spec, result.inputs),
            "outputs": {k: checks.tensor_json(v) for k, v in result.outputs.items()},
        },
        "checks": {
            "schema": checks.PASSED,
            "safety": checks.PASSED,
            "spec_source": checks.PASSED,
            "ir_match": checks.not_run("first extraction; compared with a fresh one by //validator"),
            **result.checks_json(),
        },
        "grad": records.grad_json(result.grad),
        "coverage": result.coverage,
        "toolchain": result.toolchain,
    }
    return record


def process_chunk(task: ChunkTask) -> dict:
    """Generate, extract and validate one chunk; write its shard and stats; return the stats.

    The steps, in order: `draw` (spec and source of each kernel index, the safety check),
    `extract_and_check` (one Warp module: compile, cut the IR, execute, compare), `assemble`
    (records, findings and every outcome), `write_chunk`. The returned stats also carry "_perf"
    (stage seconds, this worker's pid and peak RSS), which the parent sums into run.json; the
    stats file on disk holds only the outcomes.
    """
    if not warp_adapter.initialized():
        warp_adapter.init_warp()
        gc.freeze()  # Warp's own objects stay put; the collector then scans only a chunk's garbage
    out, c = task.out, task.chunk
    faulted = read_faults(out, c)  # kernels whose GPU launch lost a worker's CUDA context before
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    outcomes, drawn = draw(task, faulted)
    timings["spec"] = time.perf_counter() - t0
    results = extract_and_check(task, drawn, faulted, timings)
    _test_kill(c, task.faults)
    t0 = time.perf_counter()
    kept, findings, toolchain = assemble(task.target, drawn, results)
    for o in outcomes:
        o["status"] = "rejected" if "reason" in o else "passed"
    stats = {"chunk": c, "complete": True, "outcomes": outcomes, "toolchain": toolchain}
    timings["record"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    write_chunk(out, c, kept, stats, findings)
    if faulted:  # the stats file now holds those rejects
        os.remove(faults_path(out, c))
    timings["write"] = time.perf_counter() - t0
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    return {**stats, "_perf": {"seconds": timings, "pid": os.getpid(), "peak_rss_mb": round(rss_kb / 1024, 1)}}


def draw(task: ChunkTask, faulted: dict[str, str]) -> tuple[list[dict], list[tuple]]:
    """Step 1: each kernel index of the chunk -> its outcome, and (outcome, spec, source) for the
    kernels that go on (generated, safe, not a known CUDA fault, a name not yet taken)."""
    c = task.chunk
    outcomes, drawn, names = [], [], set()
    for k in chunk_indices(c):
        family, kseed = kernel_plan(task.seed, task.families, k)
        outcome = {"index": k, "family": family, "seed": kseed}
        outcomes.append(outcome)
        try:
            spec = build_spec(family, kseed)
            source = render_source(spec)
        except Exception as e:  # noqa: BLE001 - a generator bug is counted, never dropped
            outcome["reason"] = f"generate: {type(e).__name__}: {e}"
            continue
        safety = checks.check_safety(source)
        if safety["status"] != "passed":
            outcome["reason"] = safety["reason"]
            continue
        if str(k) in faulted:
            outcome["reason"] = faulted[str(k)]
            continue
        if spec.name in names:  # one Warp module holds the chunk: a second kernel of that name would replace the first
            outcome["reason"] = f"name_collision: kernel name {spec.name} already taken in chunk {c}"
            continue
        names.add(spec.name)
        drawn.append((outcome, spec, source))
    return outcomes, drawn


def extract_and_check(task: ChunkTask, drawn: list[tuple], faulted: dict[str, str], timings: dict) -> list[checks.KernelResult]:
    """Step 2: one Warp module of the drawn kernels, compiled, cut, executed and compared
    (`validator.checks.check_batch`). A lost CUDA context notes its culprit in the chunk's faults
    file and propagates: the worker must die and the chunk run again without the culprit."""
    device = task.device  # this worker's CUDA device, or None
    gpu = False if task.gpus_off else (True if device else None)
    specs = [spec for _, spec, _ in drawn]
    index = {spec.name: outcome["index"] for outcome, spec, _ in drawn}
    running = running_path(task.out, task.chunk)
    faults = task.faults or Faults()  # tests only
    crash = faults.crash_kernel

    def on_kernel(name: str) -> None:
        with open(running, "w") as f:  # no fsync: a killed process's writes survive it
            f.write(canonical_json({"index": index[name], "kernel": name}))
        if crash == name:  # tests only: a stand-in for a native crash in this kernel's launch
            os.kill(os.getpid(), signal.SIGKILL)

    try:
        _test_sticky_stand_in(specs, faults.sticky_kernel)
        results = checks.check_batch(specs, list(task.archs), validate=task.validate, timings=timings,
                                     gpu=gpu, device=device, on_kernel=on_kernel) if specs else []
        if os.path.exists(running):
            os.remove(running)
        return results
    except warp_adapter.CudaContextLost as e:
        # this process can no longer use CUDA: note the culprit for the chunk's re-run, then let
        # the worker die (the parent restarts it and re-runs the chunk without the culprit)
        culprit = next((o for o, s, _ in drawn if s.name == e.kernel), None)
        if culprit is not None:
            faulted[str(culprit["index"])] = str(e)[:300]  # "cuda_context_lost: kernel NAME: the error"
            atomic_write(faults_path(task.out, task.chunk), canonical_json(faulted).encode())
        raise


def assemble(target: str, drawn: list[tuple], results: list[checks.KernelResult]) -> tuple[list[str], list[str], dict | None]:
    """Step 3: the records that passed, the findings (a wrong adjoint: kept out of the dataset,
    written apart with its reproducer) and the toolchain; each outcome gets its reason or id.
    Records and findings come back as their canonical JSON text: encoded once, to prove them
    writable, and written as that text (`write_chunk`)."""
    kept, findings, toolchain = [], [], None
    for (outcome, spec, source), res in zip(drawn, results):
        if res.error:
            outcome["reason"] = res.error.reason
            continue
        bad = res.first_failure(EXECUTION_CHECKS)
        if bad and bad.reason_code != GRADIENT_MISMATCH:
            outcome["reason"] = bad.reason
            continue
        record = build_record(spec, source, target, res)
        toolchain = toolchain or res.toolchain
        try:  # a value JSON cannot hold (NaN, infinity) must cost this record, not the run
            text = canonical_json(record)
        except ValueError as e:
            outcome["reason"] = f"record: not writable as canonical JSON ({e}); {bad.reason if bad else 'no failure'}"
            continue
        verdict = checks.check_schema(record, built_here=True)
        if verdict["status"] != "passed":
            outcome["reason"] = verdict["reason"]
            continue
        if bad:
            outcome["reason"] = bad.reason
            outcome["finding"] = record["id"]
            findings.append(text)
            continue
        outcome["id"] = record["id"]
        outcome["checks"] = {k: v["status"] for k, v in record["checks"].items()}
        # the reason of every verdict other than passed (not_run, inconclusive): the summary groups them
        outcome["notes"] = {k: v["reason"] for k, v in record["checks"].items() if v["status"] != "passed"}
        kept.append(text)
    return kept, findings, toolchain


def running_path(out: str, c: int) -> str:
    return os.path.join(out, shard_name(c).removesuffix(RECORDS_SUFFIX) + RUNNING_SUFFIX)


def read_running(out: str, c: int) -> dict | None:
    """The kernel chunk c's worker was executing when it stopped (None when it was not executing)."""
    try:
        with open(running_path(out, c)) as f:
            return json.loads(f.read())
    except (OSError, ValueError):
        return None


def add_fault(out: str, c: int, index: int, reason: str) -> None:
    """Reject kernel `index` of chunk c with `reason` when the chunk runs again."""
    faulted = read_faults(out, c)
    faulted[str(index)] = reason
    atomic_write(faults_path(out, c), canonical_json(faulted).encode())


def faults_path(out: str, c: int) -> str:
    return os.path.join(out, faults_name(c))


def read_faults(out: str, c: int) -> dict[str, str]:
    """{kernel index: reason} of the kernels of chunk c that lost a worker's CUDA context."""
    path = faults_path(out, c)
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def _test_sticky_stand_in(specs, want: str | None) -> None:
    """CPU stand-in for a sticky CUDA error (tests only, `Faults.sticky_kernel`): a batch holding
    the kernel named `want` raises CudaContextLost for it, as a faulting GPU launch would."""
    if not want:
        return
    for spec in specs:
        if spec.name == want:
            raise warp_adapter.CudaContextLost(spec.name, "stand-in: an illegal memory access was encountered")


def _test_kill(c: int, faults: Faults | None) -> None:
    """Tests only (`Faults.kill_chunk`): SIGKILL this worker in the middle of chunk N (after its
    compile, before its write), once per run (a flag file in the run's temporary directory);
    "N*" kills it every time it runs chunk N."""
    want = faults.kill_chunk if faults else None
    if want == f"{c}*":
        os.kill(os.getpid(), signal.SIGKILL)
    if want != str(c):
        return
    flag = os.path.join(os.environ.get("WARP_IR_RUN_DIR", tempfile.gettempdir()), f"{KILLED_FLAG_PREFIX}{c}")
    if not os.path.exists(flag):
        open(flag, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)


def finding_path(out: str, c: int) -> str:
    return os.path.join(out, FINDINGS_DIR, shard_name(c))


def _lines(records: list) -> bytes:
    """One canonical JSON line per record; a record given as text (`assemble`) is that text."""
    return "".join((r if isinstance(r, str) else canonical_json(r)) + "\n" for r in records).encode()


def write_chunk(out: str, c: int, records: list, stats: dict, findings: list | None = None) -> None:
    """The chunk's findings, shard and stats; a record or finding is a dict or its canonical
    JSON text."""
    # findings and shard first, stats last: a chunk counts as done only when its stats file exists
    path = finding_path(out, c)
    if findings:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        atomic_write(path, _lines(findings))
    elif os.path.exists(path):
        os.remove(path)
    atomic_write(os.path.join(out, shard_name(c)), _lines(records))
    atomic_write(os.path.join(out, stats_name(c)), canonical_json(stats).encode())


def read_stats(out: str, c: int) -> dict | None:
    path = os.path.join(out, stats_name(c))
    if not (os.path.exists(path) and os.path.exists(os.path.join(out, shard_name(c)))):
        return None
    with open(path) as f:
        return json.load(f)
