"""The measurements behind `//bench`: the naive baseline, codegen-only and full validation.

Every figure comes from a real run: the naive method over the same kernels the pipeline
draws, and `pipeline.run` itself (worker processes, shards, manifest), whose
per-stage seconds and worker peak RSS come back in run.json.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time

from generator.families import build_spec, families_for
from pipeline.plan import kernel_plan
from generator.render import render_source
from schemas.dataset_format import RUN_MANIFEST, pretty_json

WARP_CODEGEN = ("codegen",)                      # Warp's ModuleBuilder (adjoints) and codegen_* calls
WARP_REGISTRATION = ("import",)                   # importing the kernel file: Warp's @wp.kernel decorator
WARP_COMPILE_EXECUTE = ("nvrtc", "llvm", "execute")  # NVRTC to PTX, LLVM for the CPU, launches (+ oracle)


def naive(count: int, seed: int = 0, target: str = "cpu") -> dict:
    """The seed's method, one process, over the kernels the pipeline draws for (target, seed)."""
    from extractor import naive_baseline, warp_adapter

    warp_adapter.init_warp()
    fams = families_for(target)
    t0 = time.perf_counter()
    specs = [build_spec(*kernel_plan(seed, fams, k)) for k in range(count)]
    sources = {s.name: render_source(s) for s in specs}
    pairs = naive_baseline.naive_pairs(sources, "cpu")
    seconds = time.perf_counter() - t0
    return {"mode": "naive", "pairs": len(pairs), "seconds": round(seconds, 3),
            "pairs_per_s": round(len(pairs) / seconds, 2), "workers": 1}


def pipeline_run(count: int, validate: bool, workers: int, seed: int = 0, target: str = "cpu",
                 keep: str | None = None, executor: str = "local") -> dict:
    """One real `//generator:<target>` run into a fresh directory; its run.json, summarised.
    `executor` "ray" runs the chunks as tasks of a local Ray instance the run starts (and
    stops) itself, `workers` of them at once: its start-up is part of the run's seconds."""
    import pipeline

    out = keep or tempfile.mkdtemp(prefix="bench-run-")
    shutil.rmtree(out, ignore_errors=True)
    try:
        m = pipeline.run(pipeline.RunConfig(target, count, seed, out, families_for(target), workers, quiet=True,
                                            validate=validate, executor=executor))
    finally:
        if keep is None:
            shutil.rmtree(out, ignore_errors=True)
    run = m["_run"]
    worker_seconds = run["seconds"] * workers
    stages = run["stage_seconds"]

    def share(keys):
        return round(sum(stages.get(k, 0.0) for k in keys) / worker_seconds, 4)

    return {
        "mode": ("full validation" if validate else "codegen only") + (" on Ray" if executor == "ray" else ""),
        "executor": executor,
        "pairs": m["counts"]["passed"],
        "rejected": m["counts"]["rejected"],
        "seconds": run["seconds"],
        "pairs_per_s": run["pairs_per_s"],
        "workers": workers,
        "stage_seconds": stages,
        "worker_seconds": round(worker_seconds, 3),
        "share_warp_codegen": share(WARP_CODEGEN),
        "share_warp_codegen_and_registration": share(WARP_CODEGEN + WARP_REGISTRATION),
        "share_warp_compile_execute": share(WARP_COMPILE_EXECUTE),
        "share_warp_all": share(WARP_CODEGEN + WARP_REGISTRATION + WARP_COMPILE_EXECUTE),
        "worker_peak_rss_mb": run["worker_peak_rss_mb"],
    }


def _child_env() -> dict:
    """This process's environment with its import path, so a child `python -m tools.release` finds
    the repository's packages as this process does (under Bazel they live in runfiles)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}


def release_memory(run_dir: str) -> dict:
    """`//tools:release` of one validated run, then `//tools:verify` and `//report` of the release,
    each a child process of its own: seconds and peak RSS of each (`bench.memory`)."""
    from bench.memory import module_argv, peak_rss_mb

    with open(os.path.join(run_dir, RUN_MANIFEST)) as f:
        records = json.load(f)["counts"]["passed"]
    dist = tempfile.mkdtemp(prefix="bench-release-")
    shutil.rmtree(dist)
    env, r = _child_env(), {"records": records, "run": run_dir}
    try:
        for step, argv in (("release", module_argv("tools.release", "--in", run_dir, "--out", dist, "--version", "1.0.0")),
                           ("verify", module_argv("tools.verify", dist)),
                           ("report", module_argv("report", dist, "--out", os.path.join(dist, "report")))):
            t0 = time.perf_counter()
            r[f"{step}_peak_rss_mb"] = round(peak_rss_mb(argv, env=env), 1)
            r[f"{step}_seconds"] = round(time.perf_counter() - t0, 2)
    finally:
        shutil.rmtree(dist, ignore_errors=True)
    return r


def release_table(results: dict) -> str:
    """Peak RSS of release, verify and report at the two input sizes, and their ratio."""
    small, large = results.get("release_small"), results.get("release_large")
    sizes = [f"{r['records']} records" for r in (small, large) if r]
    rows = ["| step | " + " | ".join(sizes) + " | large / small |", "|---|" + "---|" * (len(sizes) + 1)]
    for step in ("release", "verify", "report"):
        cells = [f"{r[f'{step}_peak_rss_mb']:.0f} MB in {r[f'{step}_seconds']:.1f} s" for r in (small, large) if r]
        ratio = f"{large[f'{step}_peak_rss_mb'] / small[f'{step}_peak_rss_mb']:.2f}" if small and large else "-"
        rows.append(f"| {step} peak RSS | " + " | ".join(cells) + f" | {ratio} |")
    return "\n".join(rows)


def table(results: dict) -> str:
    """The README's table, from the results of one `//bench` run."""
    base = results.get("naive", {}).get("pairs_per_s")  # absent when --cases left the naive baseline out
    rows = ["| run | pairs | workers | seconds | pairs/s | vs naive | worker ms per pair | inside Warp | worker peak RSS |",
            "|---|---|---|---|---|---|---|---|---|"]
    for key in ("naive", "codegen_only", "full_validation", "rss_small", "rss_large", "local_1", "local_2", "ray"):
        r = results.get(key)
        if not r:
            continue
        if r["mode"] == "naive":
            inside = "-"
        elif r["mode"].startswith("codegen only"):
            inside = (f"{100 * r['share_warp_codegen']:.1f}% codegen "
                      f"({100 * r['share_warp_codegen_and_registration']:.1f}% with @wp.kernel registration)")
        else:
            inside = (f"{100 * r['share_warp_compile_execute']:.1f}% compilers+execution "
                      f"({100 * r['share_warp_all']:.1f}% with codegen)")
        rss = f"{r['worker_peak_rss_mb']:.0f} MB" if r.get("worker_peak_rss_mb") else "-"
        per_pair = 1000 * r["seconds"] * r["workers"] / r["pairs"]
        vs = f"{r['pairs_per_s'] / base:.2f}x" if base else "-"
        rows.append(f"| {key.replace('_', ' ')} ({r['mode']}) | {r['pairs']} | {r['workers']} | {r['seconds']:.1f} | "
                    f"{r['pairs_per_s']:.1f} | {vs} | {per_pair:.2f} | {inside} | {rss} |")
    stage_rows = ["", "| stage (seconds summed over workers) | " + " | ".join(
        k.replace("_", " ") for k in ("codegen_only", "full_validation") if k in results) + " |",
        "|---|" + "---|" * sum(k in results for k in ("codegen_only", "full_validation"))]
    names = sorted({s for k in ("codegen_only", "full_validation") if k in results for s in results[k]["stage_seconds"]},
                   key=STAGE_ORDER.index)
    for s in names:
        cells = []
        for k in ("codegen_only", "full_validation"):
            if k in results:
                r = results[k]
                v = r["stage_seconds"].get(s)
                cells.append("-" if v is None else
                             f"{v:.1f} s, {1000 * v / r['pairs']:.2f} ms/pair ({100 * v / r['worker_seconds']:.1f}%)")
        stage_rows.append(f"| {STAGE_LABEL[s]} | " + " | ".join(cells) + " |")
    if not any(k in results for k in ("codegen_only", "full_validation")):
        stage_rows = []
    if len(rows) == 2:  # --cases ran none of these rows
        return ""
    return "\n".join(rows + stage_rows)


STAGE_ORDER = ["spec", "import", "codegen", "nvrtc", "llvm", "cut", "execute", "record", "write"]
STAGE_LABEL = {
    "spec": "spec + render + safety check",
    "import": "import (Warp's @wp.kernel registration)",
    "codegen": "Warp codegen without compiling (--no-validate: C++ and CUDA module sources)",
    "nvrtc": "Warp codegen + NVRTC to PTX (CUDA module)",
    "llvm": "Warp codegen + LLVM compile for the CPU",
    "cut": "cut each kernel's code from the compiled sources",
    "execute": "execute on CPU + NumPy oracle",
    "record": "record + schema check",
    "write": "write shard",
}


def main(argv: list[str]) -> int:
    """`python -m bench.harness RESULTS.json`: the table again, from a saved `//bench --json` file."""
    with open(argv[0]) as f:
        results = json.load(f)
    text = table(results)  # empty when the run had none of its rows
    if text:
        print(text)
    if "release_small" in results or "release_large" in results:
        if text:
            print()
        print(release_table(results))
    return 0


def save(results: dict, path: str) -> None:
    with open(path, "w") as f:
        f.write(pretty_json(results))
        f.write("\n")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
