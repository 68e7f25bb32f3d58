"""Generation pipeline: spec -> source -> IR -> validated record -> JSONL shards + manifest.

The run is a sequence of fixed chunks of kernel indices. Chunk c holds indices
[c*CHUNK, (c+1)*CHUNK); kernel k's (family, seed) depends only on (run seed, k). Each chunk is
one Warp module (compiled once) and one shard, written to a temporary name and renamed when
complete, with a stats file recording every attempt's outcome. So the records do not depend
on --workers, a killed run resumes by skipping complete chunks, and the manifest is rebuilt
from the chunk files.
"""

from __future__ import annotations

import collections
import gc
import hashlib
import json
import math
import multiprocessing
import multiprocessing.connection
import os
import resource
import shutil
import signal
import sys
import tempfile
import time

import schemas

from generator import records
from generator.families import build_spec
from generator.render import render_source
from generator.spec import canonical_json, derive_seed

CHUNK = 50
# a pair whose adjoint disagrees with the oracle's gradient is a finding about Warp, not a
# generation failure: it is counted under this reason and written to FINDINGS_DIR, not the dataset
FINDING = "gradient_mismatch"
FINDINGS_DIR = "adjoint_mismatch"
EXECUTION_CHECKS = ("execute_cpu", "execute_gpu", "execute_backward_cpu", "execute_backward_gpu")
RESUME_KEYS = ("target", "seed", "families", "chunk_size", "archs", "validate", "record_schema_version")
MANIFEST_VERSION = "1.0.0"
# The attempt cap: a run stops drawing kernels once it has drawn max(ATTEMPT_FACTOR * count,
# ATTEMPT_FLOOR) of them, or once ZERO_PASS_CHUNKS consecutive chunks passed nothing; it then
# writes what it has (shards, manifest with every reject and its reason) and fails (RunStopped).
ATTEMPT_FACTOR = 3
ATTEMPT_FLOOR = 10 * CHUNK
ZERO_PASS_CHUNKS = 4
# Workers per GPU when GPUs execute and --workers is not given. A worker spends nearly all its
# time in NVRTC and LLVM on its CPU core and well under 1% launching on the GPU, so the GPU is
# not the limit; each worker holds a CUDA context of its own (a few hundred MB of GPU memory)
# and the launches of up to this many time-share the device. Measured on one H100 with 16 cores
# (bench/gpu_proof.sh, README "GPU execution"): 800 CUDA pairs at 3.52 pairs/s with 4 workers
# and 12.46 with 16, 1 worker 0.96: the GPU did not limit 16 workers.
WORKERS_PER_GPU = 16
# A worker whose CUDA context was lost (a sticky error) exits with this status; the parent
# starts a fresh worker and re-runs the chunk without the kernel that caused it. A chunk
# whose worker dies more often than MAX_WORKER_DEATHS ends the run.
EXIT_CUDA_LOST = 75
MAX_WORKER_DEATHS = 3
FAULTS_SUFFIX = ".cuda_faults.json"
# test hooks, read by workers (spawned workers cannot be monkeypatched): kill the worker with
# SIGKILL in the middle of chunk N, once; raise a stand-in CudaContextLost for the kernel named K
TEST_KILL_ENV = "WARP_IR_TEST_KILL_CHUNK"
TEST_STICKY_ENV = "WARP_IR_TEST_STICKY_KERNEL"


class RunStopped(RuntimeError):
    """The run ended before `count` pairs: the attempt cap (what was written stays, with its
    manifest). The CLI prints it as one line and exits EXIT_STOPPED."""


EXIT_STOPPED = 3


def kernel_plan(seed: int, families: list[str], index: int) -> tuple[str, int]:
    return families[index % len(families)], derive_seed("kernel", seed, index)


def _reason_key(reason: str) -> str:
    return reason.split(":", 1)[0]


def build_record(spec, source: str, target: str, result: dict) -> dict:
    from validator import checks

    record = {
        "schema_version": schemas.PAIR_SCHEMA_VERSION,
        "id": records.record_id(source, spec.name),
        "family": spec.family,
        "target": target,
        "seed": spec.seed,
        "kernel_name": spec.name,
        "source": source,
        "spec": spec.to_json(),
        "args": [records.arg_json(a) for a in spec.args],
        "dim": list(spec.dim),
        "ir": result["ir"],
        "io": {
            "inputs": records.inputs_json(spec, result["inputs"]),
            "outputs": {k: checks.tensor_json(v) for k, v in result["outputs"].items()},
        },
        "checks": {
            "schema": checks.PASSED,
            "safety": checks.PASSED,
            "spec_source": checks.PASSED,
            "ir_match": checks.not_run("first extraction; compared with a fresh one by //validator"),
            "compile_cpu": result["compile_cpu"],
            "compile_cuda": result["compile_cuda"],
            "execute_cpu": result["execute_cpu"],
            "execute_gpu": result["execute_gpu"],
            "execute_backward_cpu": result["execute_backward_cpu"],
            "execute_backward_gpu": result["execute_backward_gpu"],
        },
        "grad": records.grad_json(result["grad"]),
        "coverage": result["coverage"],
        "toolchain": result["toolchain"],
    }
    return record


def process_chunk(task: dict) -> dict:
    """Generate, extract and validate one chunk; write its shard and stats; return the stats.

    The returned stats also carry "_perf" (stage seconds, this worker's pid and peak RSS),
    which the parent sums into run.json; the stats file on disk holds only the outcomes.
    """
    from extractor import warp_adapter
    from validator import checks

    if not warp_adapter.initialized():
        warp_adapter.init_warp()
        gc.freeze()  # Warp's own objects stay put; the collector then scans only a chunk's garbage
    out, c, target = task["out"], task["chunk"], task["target"]
    archs = task.get("archs", list(warp_adapter.DEFAULT_ARCHS))
    device = task.get("device")  # this worker's CUDA device, or None
    gpu = False if task.get("gpus_off") else (True if device else None)
    faulted = read_faults(out, c)  # kernels whose GPU launch lost a worker's CUDA context before
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    outcomes, specs, sources, pending, names = [], [], [], [], set()
    for k in range(c * CHUNK, (c + 1) * CHUNK):
        family, kseed = kernel_plan(task["seed"], task["families"], k)
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
        specs.append(spec)
        sources.append(source)
        pending.append(outcome)
    timings["spec"] = time.perf_counter() - t0
    try:
        _test_sticky_stand_in(specs)
        results = checks.check_batch(specs, archs, validate=task.get("validate", True), timings=timings,
                                     gpu=gpu, device=device) if specs else []
    except warp_adapter.CudaContextLost as e:
        # this process can no longer use CUDA: note the culprit for the chunk's re-run, then let
        # the worker die (the parent restarts it and re-runs the chunk without the culprit)
        culprit = next((o for o, s in zip(pending, specs) if s.name == e.kernel), None)
        if culprit is not None:
            faulted[str(culprit["index"])] = str(e)[:300]  # "cuda_context_lost: kernel NAME: the error"
            _atomic_write(faults_path(out, c), canonical_json(faulted).encode())
        raise
    _test_kill(c)
    t0 = time.perf_counter()
    kept, findings, toolchain = [], [], None
    for outcome, spec, source, res in zip(pending, specs, sources, results):
        if "error" in res:
            outcome["reason"] = res["error"]
            continue
        bad = next((res[k] for k in EXECUTION_CHECKS if res[k]["status"] == "failed"), None)
        if bad and _reason_key(bad["reason"]) != FINDING:
            outcome["reason"] = bad["reason"]
            continue
        record = build_record(spec, source, target, res)
        toolchain = toolchain or res["toolchain"]
        verdict = checks.check_schema(record)
        if verdict["status"] != "passed":
            outcome["reason"] = verdict["reason"]
            continue
        if bad:  # a wrong adjoint: a finding, kept out of the dataset and written apart with its reproducer
            outcome["reason"] = bad["reason"]
            outcome["finding"] = record["id"]
            findings.append(record)
            continue
        outcome["id"] = record["id"]
        outcome["checks"] = {k: v["status"] for k, v in record["checks"].items()}
        outcome["notes"] = {k: v["reason"] for k, v in record["checks"].items() if v["status"] == "not_run"}
        kept.append(record)
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


def faults_path(out: str, c: int) -> str:
    return os.path.join(out, f"shard-{c:05d}{FAULTS_SUFFIX}")


def read_faults(out: str, c: int) -> dict[str, str]:
    """{kernel index: reason} of the kernels of chunk c that lost a worker's CUDA context."""
    path = faults_path(out, c)
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def _test_sticky_stand_in(specs) -> None:
    """CPU stand-in for a sticky CUDA error (tests only): a batch holding the kernel named
    $WARP_IR_TEST_STICKY_KERNEL raises CudaContextLost for it, as a faulting GPU launch would."""
    want = os.environ.get(TEST_STICKY_ENV)
    if not want:
        return
    from extractor import warp_adapter

    for spec in specs:
        if spec.name == want:
            raise warp_adapter.CudaContextLost(spec.name, "stand-in: an illegal memory access was encountered")


def _test_kill(c: int) -> None:
    """Tests only: SIGKILL this worker in the middle of chunk $WARP_IR_TEST_KILL_CHUNK (after
    its compile, before its write), once per run (a flag file in the run's temporary directory)."""
    if os.environ.get(TEST_KILL_ENV) != str(c):
        return
    flag = os.path.join(os.environ.get("WARP_IR_RUN_DIR", tempfile.gettempdir()), f"killed-{c}")
    if not os.path.exists(flag):
        open(flag, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)


def shard_name(c: int) -> str:
    return f"shard-{c:05d}.jsonl"


def _atomic_write(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def finding_path(out: str, c: int) -> str:
    return os.path.join(out, FINDINGS_DIR, shard_name(c))


def write_chunk(out: str, c: int, records: list[dict], stats: dict, findings: list[dict] | None = None) -> None:
    # findings and shard first, stats last: a chunk counts as done only when its stats file exists
    path = finding_path(out, c)
    if findings:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        _atomic_write(path, "".join(canonical_json(r) + "\n" for r in findings).encode())
    elif os.path.exists(path):
        os.remove(path)
    _atomic_write(os.path.join(out, shard_name(c)), "".join(canonical_json(r) + "\n" for r in records).encode())
    _atomic_write(os.path.join(out, f"shard-{c:05d}.stats.json"), canonical_json(stats).encode())


def read_stats(out: str, c: int) -> dict | None:
    path = os.path.join(out, f"shard-{c:05d}.stats.json")
    if not (os.path.exists(path) and os.path.exists(os.path.join(out, shard_name(c)))):
        return None
    with open(path) as f:
        return json.load(f)


class Progress:
    def __init__(self, total: int, quiet: bool):
        self.total, self.quiet, self.start = total, quiet, time.time()

    def update(self, passed: int, rejected: int) -> None:
        if self.quiet:
            return
        rate = passed / max(time.time() - self.start, 1e-9)
        frac = min(passed / self.total, 1.0) if self.total else 1.0
        bar = "#" * int(frac * 30)
        sys.stderr.write(f"\r[{bar:<30}] {min(passed, self.total)}/{self.total} pairs  {rate:6.1f} pairs/s  rejected {rejected}")
        sys.stderr.flush()

    def done(self) -> None:
        if not self.quiet:
            sys.stderr.write("\n")


def _worker_main(conn, run_dir: str) -> None:
    """A worker process: run the chunks sent to it, in order, and send back each one's stats.
    After a sticky CUDA error its context is unusable: it exits (EXIT_CUDA_LOST) at once."""
    os.environ["WARP_IR_RUN_DIR"] = run_dir  # the private Warp cache goes under the run's directory
    from extractor import warp_adapter

    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        try:
            reply = ("ok", process_chunk(task))
        except warp_adapter.CudaContextLost:
            os._exit(EXIT_CUDA_LOST)
        except BaseException as e:  # noqa: BLE001 - a bug: the parent re-raises it
            reply = ("error", e)
        try:
            conn.send(reply)
        except Exception as e:  # noqa: BLE001 - an unpicklable exception
            conn.send(("error", RuntimeError(f"{type(reply[1]).__name__}: {reply[1]}; not picklable: {e}")))


class WorkerPool:
    """Worker processes, each with a fixed CUDA device (round robin over `devices`) or none.

    Unlike multiprocessing.Pool, it knows which chunks each worker holds: when a worker dies
    (SIGKILL, out of memory, a lost CUDA context) `wait` reports the chunks it lost and a fresh
    worker on the same device takes its place."""

    def __init__(self, ctx, workers: int, run_dir: str, devices: list[str]):
        self.ctx, self.run_dir = ctx, run_dir
        self.devices = [devices[i % len(devices)] if devices else None for i in range(workers)]
        self.slots: list[dict] = [{} for _ in range(workers)]
        for i in range(workers):
            self._start(i)

    def _start(self, i: int) -> None:
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(target=_worker_main, args=(child, self.run_dir), daemon=True)
        proc.start()
        child.close()
        self.slots[i] = {"proc": proc, "conn": parent, "tasks": collections.deque()}

    def submit(self, task: dict) -> None:
        """Send a chunk to the worker holding the fewest, with that worker's device."""
        i = min(range(len(self.slots)), key=lambda j: len(self.slots[j]["tasks"]))
        task = {**task, "device": self.devices[i]}
        self.slots[i]["tasks"].append(task)
        self.slots[i]["conn"].send(task)

    def wait(self) -> list[tuple]:
        """Block until something happens; returns events ("ok", stats), ("error", exception) or
        ("died", lost tasks, exit code)."""
        conns = {s["conn"]: i for i, s in enumerate(self.slots)}
        sentinels = {s["proc"].sentinel: i for i, s in enumerate(self.slots)}
        ready = multiprocessing.connection.wait(list(conns) + list(sentinels))
        events: list[tuple] = []
        dead = []
        for r in ready:
            if r in conns:
                events += self._drain(conns[r])
            else:
                dead.append(sentinels[r])
        for i in dead:
            slot = self.slots[i]
            events += self._drain(i)  # what it sent before it died
            slot["proc"].join()
            lost = list(slot["tasks"])
            slot["conn"].close()
            self._start(i)
            events.append(("died", lost, slot["proc"].exitcode))
        return events

    def _drain(self, i: int) -> list[tuple]:
        slot, events = self.slots[i], []
        try:
            while slot["conn"].poll():
                kind, payload = slot["conn"].recv()
                slot["tasks"].popleft()
                events.append((kind, payload))
        except (EOFError, OSError):
            pass
        return events

    def close(self) -> None:
        for s in self.slots:
            try:
                s["conn"].send(None)
            except OSError:
                pass
        for s in self.slots:
            s["proc"].join(timeout=60)
            if s["proc"].is_alive():
                s["proc"].kill()
                s["proc"].join()

    def terminate(self) -> None:
        for s in self.slots:
            if s["proc"].is_alive():
                s["proc"].kill()
        for s in self.slots:
            s["proc"].join()


def default_workers(devices: list[str]) -> int:
    """All cores; where GPUs execute, at most WORKERS_PER_GPU per GPU."""
    cores = os.cpu_count() or 1
    return min(cores, WORKERS_PER_GPU * len(devices)) if devices else cores


def executing_devices(devices: list[str], validate: bool) -> list[str]:
    """What executes the kernels: "cpu" and each CUDA device with its name; nothing for --no-validate."""
    from extractor import warp_adapter

    return ["cpu"] + [warp_adapter.device_description(d) for d in devices] if validate else []


def _device_kinds(devices: list[str]) -> list[str]:
    """The kinds of executing device (names without the ordinal): what a resume must keep."""
    return sorted({d.split(" ", 1)[1] if d.startswith("cuda:") else d for d in devices})


def _zero_pass_streak(done: dict[int, dict]) -> bool:
    """Whether ZERO_PASS_CHUNKS consecutive chunks (by index) are done and passed nothing."""
    zero = {c for c, st in done.items() if not any(o["status"] == "passed" for o in st["outcomes"])}
    return any(all(c + j in zero for j in range(ZERO_PASS_CHUNKS)) for c in zero)


def run(target: str, count: int, seed: int, out: str, families: list[str], workers: int | None = None,
        quiet: bool = False, archs: list[str] | None = None, validate: bool = True,
        gpus: list[str] | None = None) -> dict:
    """Generate `count` pairs into `out`. `gpus`: the CUDA devices that execute (None: every one
    of this machine; []: none, GPU execution off); workers are assigned to them round robin.
    `workers`: None for `default_workers`. Raises RunStopped when the attempt cap ends the run."""
    from extractor import warp_adapter

    os.makedirs(out, exist_ok=True)
    archs = list(archs or warp_adapter.DEFAULT_ARCHS)
    devices = (warp_adapter.cuda_devices() if gpus is None else list(gpus)) if validate else []
    workers = workers or default_workers(devices)
    config = {"target": target, "count": count, "seed": seed, "families": families, "chunk_size": CHUNK, "archs": archs,
              "validate": validate, "record_schema_version": schemas.PAIR_SCHEMA_VERSION,
              "devices": executing_devices(devices, validate)}
    cfg_path = os.path.join(out, "run_config.json")
    if os.path.exists(cfg_path):
        with open(cfg_path) as f:
            old = json.load(f)
        old.setdefault("validate", True)  # written before --no-validate existed
        old.setdefault("record_schema_version", "1.1.0")  # written before the version was recorded here
        old.setdefault("devices", ["cpu"] if old["validate"] else [])  # before devices were recorded: no GPU had run
        if {k: old.get(k) for k in RESUME_KEYS} != {k: config[k] for k in RESUME_KEYS}:
            raise ValueError(f"{out} holds a run with a different config ({cfg_path}); use another --out")
        if _device_kinds(old["devices"]) != _device_kinds(config["devices"]):
            raise ValueError(f"{out} holds a run executed on {', '.join(old['devices']) or 'no device'}, this one would "
                             f"execute on {', '.join(config['devices']) or 'no device'}; use another --out")
    _atomic_write(cfg_path, canonical_json(config).encode())

    t0 = time.time()
    progress = Progress(count, quiet)
    done: dict[int, dict] = {}
    perf: dict = {"seconds": {}, "peak_rss_mb": {}}
    tally = {"passed": 0, "rejected": 0}
    deaths: dict[int, int] = {}
    worker_deaths: list[dict] = []

    def absorb(st: dict) -> None:
        p = st.pop("_perf", None)
        if p:
            for k, v in p["seconds"].items():
                perf["seconds"][k] = perf["seconds"].get(k, 0.0) + v
            perf["peak_rss_mb"][p["pid"]] = max(perf["peak_rss_mb"].get(p["pid"], 0.0), p["peak_rss_mb"])
        done[st["chunk"]] = st
        n_pass = sum(o["status"] == "passed" for o in st["outcomes"])
        tally["passed"] += n_pass
        tally["rejected"] += len(st["outcomes"]) - n_pass
        progress.update(tally["passed"], tally["rejected"])

    # Chunks go out in index order, at most 2 per worker in flight, and only as many as the
    # observed pass rate says are still needed; so no wave barrier and little surplus. A chunk
    # finished by an earlier run (its stats file exists) is taken as is. A chunk lost with its
    # worker goes out again first.
    ctx = multiprocessing.get_context("spawn")
    # the workers' private Warp caches live in this run's temporary directory, removed below
    # even when a worker was killed before its own clean-up ran
    run_dir = tempfile.mkdtemp(prefix="warp-ir-run-")
    # a worker process per GPU context even for --workers 1: a lost context must not take the run
    pool = WorkerPool(ctx, workers, run_dir, devices) if workers > 1 or devices else None
    inflight: set[int] = set()
    retry: collections.deque = collections.deque()
    cap_chunks = math.ceil(max(ATTEMPT_FACTOR * count, ATTEMPT_FLOOR) / CHUNK)
    stopped = None
    next_c = 0
    try:
        while True:
            rate = (tally["passed"] + 1) / (tally["passed"] + tally["rejected"] + 1)
            while retry:
                pool.submit(retry.popleft())
            while (stopped is None and tally["passed"] + len(inflight) * CHUNK * rate < count
                   and len(inflight) < 2 * workers):
                why = (f"the attempt cap of {cap_chunks * CHUNK} kernels" if next_c >= cap_chunks else
                       f"{ZERO_PASS_CHUNKS} chunks in a row passed nothing" if _zero_pass_streak(done) else None)
                if why:
                    stopped = f"stopped drawing kernels after {next_c * CHUNK} ({why})"
                    break
                c, next_c = next_c, next_c + 1
                st = read_stats(out, c)
                if st is not None and st.get("complete"):
                    absorb(st)
                    continue
                task = {"out": out, "chunk": c, "target": target, "seed": seed, "families": families, "archs": archs,
                        "validate": validate, "gpus_off": gpus is not None and not gpus}
                if pool is None:
                    absorb(process_chunk(task))
                    continue
                inflight.add(c)
                pool.submit(task)
            if not inflight:
                if tally["passed"] >= count or stopped:
                    break
                continue
            for kind, payload, *rest in pool.wait():
                if kind == "error":
                    raise payload
                if kind == "ok":
                    inflight.discard(payload["chunk"])
                    absorb(payload)
                    continue
                exitcode = rest[0]
                for task in payload:  # "died": its chunks go out again (those it finished are on disk)
                    c = task["chunk"]
                    deaths[c] = deaths.get(c, 0) + 1
                    worker_deaths.append({"chunk": c, "exitcode": exitcode, "device": task.get("device")})
                    st = read_stats(out, c)
                    if st is not None and st.get("complete"):
                        inflight.discard(c)
                        absorb(st)
                    elif deaths[c] > MAX_WORKER_DEATHS:
                        raise RuntimeError(f"chunk {c} lost its worker {deaths[c]} times (last exit status {exitcode}); "
                                           f"see {faults_path(out, c)} if it exists")
                    else:
                        retry.append({k: v for k, v in task.items() if k != "device"})
    except BaseException:
        if pool:
            pool.terminate()
            pool = None
        raise
    finally:
        if pool:
            pool.close()
        shutil.rmtree(run_dir, ignore_errors=True)
    progress.done()
    manifest = finalize(out, done, count, config)
    elapsed = time.time() - t0
    run_info = {
        "seconds": round(elapsed, 3),
        "pairs_per_s": round(manifest["counts"]["passed"] / max(elapsed, 1e-9), 2),
        "workers": workers,
        "validate": validate,
        "devices": config["devices"],
        # summed over workers: where the time went (chunks resumed from disk cost nothing here)
        "stage_seconds": {k: round(v, 3) for k, v in sorted(perf["seconds"].items())},
        "worker_peak_rss_mb": max(perf["peak_rss_mb"].values(), default=None),
        "worker_deaths": worker_deaths,
    }
    if stopped:
        run_info["stopped"] = stopped
    _atomic_write(os.path.join(out, "run.json"), canonical_json(run_info).encode())
    manifest["_run"] = run_info
    if stopped and manifest["counts"]["passed"] < count:
        top = ", ".join(f"{k} {v}" for k, v in sorted(manifest["rejects_by_reason"].items(), key=lambda kv: -kv[1])[:3])
        raise RunStopped(f"{stopped}: {manifest['counts']['passed']} of {count} pairs; top rejects: {top or 'none'}; "
                         f"the shards and manifest.json in {out} hold what was written")
    return manifest


def finalize(out: str, done: dict[int, dict], count: int, config: dict) -> dict:
    """Trim to exactly `count` records in index order, drop surplus chunks, write the manifest."""
    kept_chunks, total = [], 0
    for c in sorted(done):
        if total >= count:
            for p in (os.path.join(out, f"shard-{c:05d}.stats.json"), os.path.join(out, shard_name(c)), finding_path(out, c)):
                if os.path.exists(p):
                    os.remove(p)
            continue
        st = done[c]
        n_pass = sum(o["status"] == "passed" for o in st["outcomes"])
        if total + n_pass > count:  # trim this chunk: keep the first records, and only their attempts
            keep = count - total
            with open(os.path.join(out, shard_name(c))) as f:
                lines = f.readlines()[:keep]
            last_id = json.loads(lines[-1])["id"] if lines else None
            cut = next(i for i, o in enumerate(st["outcomes"]) if o.get("id") == last_id) + 1 if lines else 0
            st = {"chunk": c, "complete": False, "outcomes": st["outcomes"][:cut], "toolchain": st.get("toolchain")}
            keep_findings = {o["finding"] for o in st["outcomes"] if "finding" in o}
            write_chunk(out, c, [json.loads(x) for x in lines], st,
                        [r for r in _read_jsonl(finding_path(out, c)) if r["id"] in keep_findings])
            n_pass = keep
        total += n_pass
        kept_chunks.append(st)
    # remove stale chunk files beyond what this run needs (e.g. from a larger earlier run)
    keep_names = {shard_name(s["chunk"]) for s in kept_chunks} | {f"shard-{s['chunk']:05d}.stats.json" for s in kept_chunks}
    for name in os.listdir(out):
        if name.startswith("shard-") and name not in keep_names:
            os.remove(os.path.join(out, name))
    fdir = os.path.join(out, FINDINGS_DIR)
    for name in os.listdir(fdir) if os.path.isdir(fdir) else ():
        if name not in keep_names:
            os.remove(os.path.join(fdir, name))
    return write_manifest(out, kept_chunks, config)


def _read_jsonl(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _file_entry(out: str, rel: str, records: int) -> dict:
    with open(os.path.join(out, rel), "rb") as f:
        data = f.read()
    return {"path": rel, "records": records, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def run_toolchain(chunks: list[dict]) -> dict | None:
    """The one toolchain every chunk's records were made with (None when no chunk kept any)."""
    seen = {canonical_json(s["toolchain"]): s["toolchain"] for s in chunks if s.get("toolchain")}
    if len(seen) > 1:
        raise ValueError(f"the chunks of this run were built with {len(seen)} different toolchains; use another --out")
    return next(iter(seen.values()), None)


def write_manifest(out: str, chunks: list[dict], config: dict) -> dict:
    outcomes = [o for s in chunks for o in s["outcomes"]]
    by_family: dict[str, dict] = {}
    reasons: dict[str, int] = {}
    examples: dict[str, dict] = {}
    for o in outcomes:
        fam = by_family.setdefault(o["family"], {"attempted": 0, "passed": 0, "rejected": 0})
        fam["attempted"] += 1
        fam[o["status"]] += 1
        if o["status"] == "rejected":
            key = _reason_key(o["reason"])
            reasons[key] = reasons.get(key, 0) + 1
            examples.setdefault(key, {"family": o["family"], "seed": o["seed"], "reason": o["reason"][:300]})
    # verdict counts over the written pairs, from each pair's own record of its checks
    validation: dict[str, dict] = {}
    notes: dict[str, str] = {}
    for o in outcomes:
        for k, status in o.get("checks", {}).items():
            validation.setdefault(k, {}).setdefault(status, 0)
            validation[k][status] += 1
        for k, reason in o.get("notes", {}).items():
            notes.setdefault(k, reason)
    validation = {k: dict(sorted(v.items())) for k, v in sorted(validation.items())}
    # the gradient check per family: the written pairs' verdicts plus the findings
    gradient: dict[str, dict] = {}
    for o in outcomes:
        status = o.get("checks", {}).get("execute_backward_cpu") or ("failed" if "finding" in o else None)
        if status:
            fam = gradient.setdefault(o["family"], {})
            fam[status] = fam.get(status, 0) + 1
    findings = [_file_entry(out, os.path.join(FINDINGS_DIR, shard_name(s["chunk"])), n)
                for s in chunks for n in [sum("finding" in o for o in s["outcomes"])] if n]
    notes = dict(sorted(notes.items()))
    shards = []
    ids: set[str] = set()
    duplicates = 0
    for s in chunks:
        path = os.path.join(out, shard_name(s["chunk"]))
        with open(path, "rb") as f:
            data = f.read()
        for o in s["outcomes"]:
            if o["status"] == "passed":
                duplicates += o["id"] in ids
                ids.add(o["id"])
        shards.append({
            "path": shard_name(s["chunk"]),
            "records": sum(o["status"] == "passed" for o in s["outcomes"]),
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        })
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "record_schema_version": schemas.PAIR_SCHEMA_VERSION,
        "generator": config,
        "toolchain": run_toolchain(chunks),
        "counts": {
            "attempted": len(outcomes),
            "passed": sum(o["status"] == "passed" for o in outcomes),
            "rejected": sum(o["status"] == "rejected" for o in outcomes),
            "duplicate_ids": duplicates,
            "by_family": dict(sorted(by_family.items())),
        },
        "rejects_by_reason": dict(sorted(reasons.items())),
        "reject_examples": dict(sorted(examples.items())),
        "validation": validation,
        "validation_notes": notes,
        "gradient_by_family": {k: dict(sorted(v.items())) for k, v in sorted(gradient.items())},
        "adjoint_mismatch": {"records": sum(f["records"] for f in findings), "shards": findings},
        "shards": shards,
    }
    _atomic_write(os.path.join(out, "manifest.json"), (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    return manifest
