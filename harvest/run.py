"""One harvest: discover the wheel's kernels, cut each a standalone source, lower them in worker
processes, and write the records and the manifest.

DIR/harvest.jsonl holds one record per harvested kernel (one per declared overload of a generic
one), sorted by (path, lines, overload); DIR/manifest.json counts every kernel found: extracted
(standalone or verbatim) or skipped with its reason, and each record's CPU compile and CUDA text.
Both are a function of the installed wheel and --limit, the same whatever --workers
(`lower_all` says how; `harvest/harvest_test.py` compares one worker and two at --limit 400).
DIR/run.json (this invocation's seconds, workers and each test module's seconds) is not part of them.
"""

from __future__ import annotations

import collections
import concurrent.futures
import hashlib
import multiprocessing
import os
import re
import shutil
import sys
import tempfile
import time

import schemas
from runtime.process import atomic_write, use_run_dir
from schemas.dataset_format import RUN_INFO, RUN_MANIFEST, canonical_json, pretty_json

from extractor.warp_adapter import top_level_items
from harvest import discover as disc
from harvest import launches
from harvest.lower import Job, lower, plan_batches
from harvest.standalone import extract_all

RECORDS = "harvest.jsonl"
MANIFEST = RUN_MANIFEST  # the file names of a run directory, one place (schemas.dataset_format)
ORIGIN = schemas.ORIGIN_REAL


class Progress:
    """The progress bar on stderr (nothing when quiet): kernels lowered of those extracted, for
    //harvest and for //validator's re-harvest (`label` says which)."""

    def __init__(self, quiet: bool, label: str = "kernels", unit: str = "kernels"):
        self.quiet, self.label, self.unit, self.total, self.done_n, self.t0 = quiet, label, unit, 0, 0, time.time()

    def start(self, total: int) -> None:
        self.total, self.t0 = total, time.time()
        self.advance(0)

    def advance(self, n: int) -> None:
        self.done_n += n
        if self.quiet:
            return
        frac = self.done_n / self.total if self.total else 1.0
        rate = self.done_n / max(time.time() - self.t0, 1e-9)
        sys.stderr.write(f"\r[{'#' * int(frac * 30):<30}] {self.done_n}/{self.total} {self.label}  {rate:6.1f} {self.unit}/s")
        sys.stderr.flush()

    def done(self) -> None:
        if not self.quiet:
            sys.stderr.write("\n")


def job_key(kernel: disc.Kernel) -> str:
    return f"{kernel.file.path}:{kernel.lines[0]}-{kernel.lines[1]}"


def _init_worker(run_dir: str) -> None:
    """The worker's temporary files under the run's directory; its stderr (LLVM's diagnostics of
    the wheel's kernels that do not compile, printed by native code) into a log file there: the
    reasons are in the records), and its stdout too (what a replayed kernel prints)."""
    use_run_dir(run_dir)
    log = os.open(os.path.join(run_dir, f"worker-{os.getpid()}.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)


def _lower_share(batches: list[list[Job]], progress_queue) -> dict:
    """One worker's share of the batches, lowered in order in a fresh process (Warp's state
    across batches, helpers of the wheel's own modules built once per process, shapes the order
    of the generated code: the same share in the same order gives the same bytes)."""
    results: dict = {}
    for jobs in batches:
        workdir = tempfile.mkdtemp(prefix="batch-")
        try:
            results.update(lower(jobs, workdir))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        progress_queue.put(len(jobs))
    return results


def lower_all(jobs: list[Job], workers: int, on_done) -> dict:
    """Every job's results: batch i goes to worker i % workers, each worker a fresh spawned
    process that lowers its share in order. A batch's bytes do not depend on what its worker
    lowered before: helper names are pinned per batch (`lower._pin_helper_names`), Warp's global
    settings are put back before each batch (`lower._reset_config`), and the workers hash
    strings alike; `on_done(n)` after each batch of n jobs."""
    results: dict = {}
    batches = plan_batches(jobs)
    run_dir = tempfile.mkdtemp(prefix="harvest-run-")
    ctx = multiprocessing.get_context("spawn")
    # Warp keeps some of what it builds in sets of strings, whose order follows Python's per-process
    # string hashing: the workers hash alike (read at their start, from the environment)
    os.environ["PYTHONHASHSEED"] = "0"
    try:
        with ctx.Manager() as manager, concurrent.futures.ProcessPoolExecutor(
                workers, mp_context=ctx, initializer=_init_worker, initargs=(run_dir,), max_tasks_per_child=1) as pool:
            queue = manager.Queue()
            futures = [pool.submit(_lower_share, batches[i::workers], queue) for i in range(workers)]
            try:
                while not all(f.done() for f in futures) or not queue.empty():
                    try:
                        on_done(queue.get(timeout=0.5))
                    except Exception:  # noqa: BLE001 - queue.Empty, through the manager's proxy
                        continue
                for f in futures:
                    results.update(f.result())
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    return results


def _results_of(key: str, results: dict) -> list[tuple[str | None, dict]]:
    """(overload signature or None, result) of one job, overloads in signature order."""
    if key in results:
        return [(None, results[key])]
    found = sorted((k.split("#", 1)[1], v) for k, v in results.items() if k.startswith(key + "#"))
    return found or [(None, {"error": {"status": "failed", "reason": "lost:no_result", "message": ""}})]


# a helper from one of the wheel's own modules (not copied into the standalone source) leaves this
# comment in the generated code, its path inside the wheel (harvest/lower.py `_cut`)
WHEEL_HELPER = "// warp/"


def canonical_ir(ir: dict | None) -> tuple[dict | None, str]:
    """(ir, order). Warp emits the helpers a kernel reaches in the wheel's own modules in an
    order that changes from run to run (measured: 36 of 2,485 records of the full harvest); the
    items of those texts are sorted, each still verbatim, and the record says `sorted`. Every
    other text keeps Warp's module order (`module`)."""
    if not ir or WHEEL_HELPER not in canonical_json(ir):
        return ir, "module"
    return {t: parts if t == "ptx" else
            {part: "\n\n".join(sorted(top_level_items(text))) if text else text for part, text in parts.items()}
            for t, parts in ir.items()}, "sorted"


def _replay(entry: dict | None, overload, result: dict) -> tuple[dict | None, dict]:
    """(the recorded launch or None, the `replay_cpu` verdict) of one record."""
    if entry is None:
        return None, {"status": "not_run", "reason": launches.NOT_LAUNCHED}
    if entry["launch"] is None or overload is not None:
        return None, {"status": "not_run", "reason": f"not_recordable:{entry['reason'] or 'generic'}"}
    if "replay_cpu" in result:
        return entry["launch"], result["replay_cpu"]
    return entry["launch"], {"status": "not_run", "reason": "not_compiled_for_cpu"}


def _record(kernel: disc.Kernel, extraction, overload, result: dict, wheel: dict, launch: dict | None) -> dict:
    error = result.get("error")
    cpu = error or result["cpu"]
    cuda = error or result["cuda"]
    ir, order = canonical_ir(result.get("ir"))
    recorded, replay = _replay(launch, overload, result)
    return {
        "schema_version": schemas.REAL_SCHEMA_VERSION,
        "name": kernel.name,
        "origin": ORIGIN,
        "source": extraction.source,
        "overload": overload,
        "provenance": {"path": kernel.file.path, "lines": list(kernel.lines), "sha256": kernel.file.sha256,
                       "warp_lang": wheel["warp_lang"], "license": wheel["license"],
                       "extraction": extraction.to_json()},
        "ir": ir,
        "ir_order": order,
        "compile": {"cpu": cpu, "cuda": cuda},
        "launch": recorded,
        "execute": {"replay_cpu": replay},
    }


def _code(reason: str) -> str:
    return reason.split(":", 1)[0]


def _replays(records) -> dict:
    """The records' `replay_cpu` verdicts: how many carry a recorded launch, how many replay it,
    and why the others do not, by reason."""
    not_run, failed = collections.Counter(), collections.Counter()
    for r in records:
        v = r["execute"]["replay_cpu"]
        if v["status"] == "not_run":
            not_run[v["reason"]] += 1
        elif v["status"] == "failed":
            failed[v["reason"]] += 1
    return {"launch_recorded": sum(r["launch"] is not None for r in records),
            "replay_cpu_passed": sum(r["execute"]["replay_cpu"]["status"] == "passed" for r in records),
            "replay_cpu_failed_by_reason": dict(sorted(failed.items())),
            "replay_cpu_not_run_by_reason": dict(sorted(not_run.items()))}


def manifest(kernels, extractions, records, wheel: dict, selection: tuple, found_in_wheel: int, modules: dict) -> dict:
    """The counts: every kernel found is extracted or skipped with its reason; every record's
    CPU (LLVM) and CUDA (NVRTC, PTX) compiles, both, its CUDA text, and the failures of each by
    reason; per folder of the wheel; the launches recorded from the wheel's test modules
    (`modules`: harvest/launches.py's counts) and replayed. `selection`: (limit, under)."""
    limit, under = selection
    by_dir = {d: collections.Counter() for d in disc.DIRECTORIES}
    skipped, skipped_detail, failures = collections.Counter(), collections.Counter(), collections.Counter()
    cuda_failures = collections.Counter()
    skipped_list = []
    for k, e in zip(kernels, extractions):
        c = by_dir[k.directory]
        c["found"] += 1
        if e.source is None:
            c["skipped"] += 1
            skipped[_code(e.reason)] += 1
            skipped_detail[e.reason] += 1
            skipped_list.append({"path": k.file.path, "lines": list(k.lines), "name": k.name, "reason": e.reason})
        else:
            c[e.kind] += 1
    raising = {(k.file.path, k.lines) for k in kernels if k.expected_to_raise}
    for r in records:
        c = by_dir[r["provenance"]["path"].split("/")[1]]
        c["records"] += 1
        cpu, cuda = r["compile"]["cpu"], r["compile"]["cuda"]
        c["cpu_compiled"] += cpu["status"] == "passed"
        c["cuda_compiled"] += cuda["status"] == "passed"
        both = cpu["status"] == cuda["status"] == "passed"
        c["both_compiled"] += both
        # a kernel the wheel's own test expects to raise (named inside an assertRaises) is counted apart
        expected = (r["provenance"]["path"], tuple(r["provenance"]["lines"])) in raising
        c["expected_to_raise"] += expected
        c["expected_to_raise_not_compiled"] += expected and not both
        c["both_compiled_not_expected_to_raise"] += both and not expected
        c["cuda_text"] += bool(r["ir"] and r["ir"].get("cuda", {}).get("forward"))
        if cpu["status"] == "failed":
            failures[cpu["reason"]] += 1
        if cuda["status"] == "failed":
            cuda_failures[cuda["reason"]] += 1
    total = collections.Counter()
    for c in by_dir.values():
        total.update(c)
    keys = ("found", "standalone", "verbatim", "skipped", "records", "cpu_compiled", "cuda_compiled", "both_compiled",
            "cuda_text", "expected_to_raise", "expected_to_raise_not_compiled", "both_compiled_not_expected_to_raise")
    return {
        "origin": ORIGIN, "record_schema_version": schemas.REAL_SCHEMA_VERSION, "warp_lang": wheel["warp_lang"],
        "license": wheel["license"], "limit": limit, "under": under,
        "found_in_wheel": found_in_wheel,
        "counts": {k: total[k] for k in keys},
        "by_directory": {d: {k: c[k] for k in keys} for d, c in by_dir.items()},
        "skipped_by_reason": dict(sorted(skipped.items())),
        "skipped_by_detail": dict(sorted(skipped_detail.items())),
        "failures_by_reason": dict(sorted(failures.items())),
        "cuda_failures_by_reason": dict(sorted(cuda_failures.items())),
        "skipped_kernels": skipped_list,
        "launches": {"test_modules": modules, **_replays(records)},
    }


UNDER = re.compile(r"^warp/[A-Za-z0-9_./-]{0,200}$")


def select(found: list, limit: int | None, under: str | None) -> list:
    """The kernels a harvest takes: those of the files under `under` (a path prefix inside the
    wheel; all when None), the first `limit` of them (all when None), in (path, lines) order."""
    if under is not None:
        found = [k for k in found if k.file.path.startswith(under)]
    return found[:limit] if limit else found


def harvest_records(workers: int, limit: int | None, progress, under: str | None = None,
                    seconds: dict | None = None) -> tuple[list[dict], dict, bytes]:
    """(records, manifest, the bytes of harvest.jsonl) of a harvest of the installed wheel's first
    `limit` kernels (all when None) under `under`; what `harvest` writes and what //validator
    re-derives."""
    wheel = disc.wheel()
    found, _ = disc.discover()
    kernels = select(found, limit, under)
    extractions = extract_all(kernels)
    recorded, modules = launches.record_all({k.file.path for k in kernels}, workers, seconds,
                                            Progress(progress.quiet, "test modules run for launches", "modules"))
    jobs = jobs_of(kernels, extractions, recorded)
    progress.start(len(jobs))
    results = lower_all(jobs, workers, progress.advance) if jobs else {}
    progress.done()
    records = records_of(kernels, extractions, results, wheel, recorded)
    lines = records_bytes(records)
    m = manifest(kernels, extractions, records, wheel, (limit, under), len(found), modules)
    m["harvest_sha256"] = hashlib.sha256(lines).hexdigest()
    return records, m, lines


def launch_key(kernel: disc.Kernel) -> str:
    """How harvest/launches.py names the kernel a launch ran: its file and first line."""
    return f"{kernel.file.path}:{kernel.lines[0]}"


def records_of(kernels, extractions, results: dict, wheel: dict, recorded: dict) -> list[dict]:
    """The records of the extracted kernels whose jobs have results, in (path, lines, overload)
    order; `recorded`: harvest/launches.py's launches."""
    records = []
    for k, e in zip(kernels, extractions):
        if e.source is not None:
            entry = recorded.get(launch_key(k))
            records += [_record(k, e, ov, res, wheel, entry) for ov, res in _results_of(job_key(k), results)]
    return records


def jobs_of(kernels, extractions, recorded: dict) -> list[Job]:
    """The lowering jobs of the extracted kernels, each with its recorded launch (if any)."""
    return [Job(job_key(k), k.name, e.source, (recorded.get(launch_key(k)) or {}).get("launch"))
            for k, e in zip(kernels, extractions) if e.source]


def records_bytes(records: list[dict]) -> bytes:
    return "".join(canonical_json(r) + "\n" for r in records).encode()


def harvest(out: str, workers: int, limit: int | None, progress, under: str | None = None) -> dict:
    """Harvest into `out`; returns the manifest (with "_seconds" added, not written)."""
    t0, module_seconds = time.time(), {}
    _, m, lines = harvest_records(workers, limit, progress, under, module_seconds)
    atomic_write(os.path.join(out, RECORDS), lines)
    atomic_write(os.path.join(out, MANIFEST), pretty_json(m).encode())
    seconds = round(time.time() - t0, 1)
    atomic_write(os.path.join(out, RUN_INFO), pretty_json({"seconds": seconds, "workers": workers,
                                                               "test_module_seconds": module_seconds}).encode())
    return {**m, "_seconds": seconds}
