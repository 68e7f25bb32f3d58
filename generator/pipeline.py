"""Generation pipeline: spec -> source -> IR -> validated record -> JSONL shards + manifest.

The run is a sequence of fixed chunks of kernel indices. Chunk c holds indices
[c*CHUNK, (c+1)*CHUNK); kernel k's (family, seed) depends only on (run seed, k). Each chunk is
one Warp module (compiled once) and one shard, written to a temporary name and renamed when
complete, with a stats file recording every attempt's outcome. So the records do not depend
on --workers, a killed run resumes by skipping complete chunks, and the manifest is rebuilt
from the chunk files.
"""

from __future__ import annotations

import gc
import hashlib
import json
import multiprocessing
import os
import queue
import resource
import shutil
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
        if spec.name in names:  # one Warp module holds the chunk: a second kernel of that name would replace the first
            outcome["reason"] = f"name_collision: kernel name {spec.name} already taken in chunk {c}"
            continue
        names.add(spec.name)
        specs.append(spec)
        sources.append(source)
        pending.append(outcome)
    timings["spec"] = time.perf_counter() - t0
    results = checks.check_batch(specs, archs, validate=task.get("validate", True), timings=timings) if specs else []
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
    timings["write"] = time.perf_counter() - t0
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    return {**stats, "_perf": {"seconds": timings, "pid": os.getpid(), "peak_rss_mb": round(rss_kb / 1024, 1)}}


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


def _start_pool(ctx, workers: int, run_dir: str):
    saved = os.environ.get("WARP_IR_RUN_DIR")
    os.environ["WARP_IR_RUN_DIR"] = run_dir  # spawned workers read it at start-up
    try:
        return ctx.Pool(workers)
    finally:
        if saved is None:
            del os.environ["WARP_IR_RUN_DIR"]
        else:
            os.environ["WARP_IR_RUN_DIR"] = saved


def run(target: str, count: int, seed: int, out: str, families: list[str], workers: int, quiet: bool = False,
        archs: list[str] | None = None, validate: bool = True) -> dict:
    from extractor import warp_adapter

    os.makedirs(out, exist_ok=True)
    archs = list(archs or warp_adapter.DEFAULT_ARCHS)
    config = {"target": target, "count": count, "seed": seed, "families": families, "chunk_size": CHUNK, "archs": archs,
              "validate": validate, "record_schema_version": schemas.PAIR_SCHEMA_VERSION}
    cfg_path = os.path.join(out, "run_config.json")
    if os.path.exists(cfg_path):
        with open(cfg_path) as f:
            old = json.load(f)
        old.setdefault("validate", True)  # written before --no-validate existed
        old.setdefault("record_schema_version", "1.1.0")  # written before the version was recorded here
        if {k: old.get(k) for k in RESUME_KEYS} != {k: config[k] for k in RESUME_KEYS}:
            raise ValueError(f"{out} holds a run with a different config ({cfg_path}); use another --out")
    _atomic_write(cfg_path, canonical_json(config).encode())

    t0 = time.time()
    progress = Progress(count, quiet)
    done: dict[int, dict] = {}
    perf: dict = {"seconds": {}, "peak_rss_mb": {}}
    tally = {"passed": 0, "rejected": 0}

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
    # finished by an earlier run (its stats file exists) is taken as is.
    ctx = multiprocessing.get_context("spawn")
    # the workers' private Warp caches live in this run's temporary directory, removed below
    # even when a worker was killed before its own clean-up ran
    run_dir = tempfile.mkdtemp(prefix="warp-ir-run-")
    pool = _start_pool(ctx, workers, run_dir) if workers > 1 else None
    finished: queue.Queue = queue.Queue()
    inflight: set[int] = set()
    next_c = 0
    try:
        while True:
            rate = (tally["passed"] + 1) / (tally["passed"] + tally["rejected"] + 1)
            while tally["passed"] + len(inflight) * CHUNK * rate < count and len(inflight) < 2 * workers:
                c, next_c = next_c, next_c + 1
                st = read_stats(out, c)
                if st is not None and st.get("complete"):
                    absorb(st)
                    continue
                task = {"out": out, "chunk": c, "target": target, "seed": seed, "families": families, "archs": archs,
                        "validate": validate}
                if pool is None:
                    absorb(process_chunk(task))
                    continue
                inflight.add(c)
                pool.apply_async(process_chunk, (task,), callback=finished.put, error_callback=finished.put)
            if not inflight:
                if tally["passed"] >= count:
                    break
                continue
            item = finished.get()
            if isinstance(item, BaseException):
                raise item
            inflight.discard(item["chunk"])
            absorb(item)
    except BaseException:
        if pool:
            pool.terminate()
            pool = None
        raise
    finally:
        if pool:
            pool.close()
            pool.join()
        shutil.rmtree(run_dir, ignore_errors=True)
    progress.done()
    manifest = finalize(out, done, count, config)
    elapsed = time.time() - t0
    run_info = {
        "seconds": round(elapsed, 3),
        "pairs_per_s": round(manifest["counts"]["passed"] / max(elapsed, 1e-9), 2),
        "workers": workers,
        "validate": validate,
        # summed over workers: where the time went (chunks resumed from disk cost nothing here)
        "stage_seconds": {k: round(v, 3) for k, v in sorted(perf["seconds"].items())},
        "worker_peak_rss_mb": max(perf["peak_rss_mb"].values(), default=None),
    }
    _atomic_write(os.path.join(out, "run.json"), canonical_json(run_info).encode())
    manifest["_run"] = run_info
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
