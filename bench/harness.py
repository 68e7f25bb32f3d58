"""The measurements behind `//bench`: the naive baseline, codegen-only and full validation.

Every figure comes from a real run: the naive method over the same kernels the pipeline
draws, and `pipeline.run` itself (worker processes, shards, manifest), whose
per-stage seconds and worker peak RSS come back in run.json.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time

from generator.families import build_spec, families_for
from pipeline.plan import kernel_plan
from generator.render import render_source

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
                 keep: str | None = None) -> dict:
    """One real `//generator:<target>` run into a fresh directory; its run.json, summarised."""
    import pipeline

    out = keep or tempfile.mkdtemp(prefix="bench-run-")
    shutil.rmtree(out, ignore_errors=True)
    try:
        m = pipeline.run(pipeline.RunConfig(target, count, seed, out, families_for(target), workers, quiet=True, validate=validate))
    finally:
        if keep is None:
            shutil.rmtree(out, ignore_errors=True)
    run = m["_run"]
    worker_seconds = run["seconds"] * workers
    stages = run["stage_seconds"]

    def share(keys):
        return round(sum(stages.get(k, 0.0) for k in keys) / worker_seconds, 4)

    return {
        "mode": "full validation" if validate else "codegen only",
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


def table(results: dict) -> str:
    """The README's table, from the results of one `//bench` run."""
    base = results["naive"]["pairs_per_s"]
    rows = ["| run | pairs | workers | seconds | pairs/s | vs naive | worker ms per pair | inside Warp | worker peak RSS |",
            "|---|---|---|---|---|---|---|---|---|"]
    for key in ("naive", "codegen_only", "full_validation", "rss_small", "rss_large"):
        r = results.get(key)
        if not r:
            continue
        if r["mode"] == "naive":
            inside = "-"
        elif r["mode"] == "codegen only":
            inside = (f"{100 * r['share_warp_codegen']:.1f}% codegen "
                      f"({100 * r['share_warp_codegen_and_registration']:.1f}% with @wp.kernel registration)")
        else:
            inside = (f"{100 * r['share_warp_compile_execute']:.1f}% compilers+execution "
                      f"({100 * r['share_warp_all']:.1f}% with codegen)")
        rss = f"{r['worker_peak_rss_mb']:.0f} MB" if r.get("worker_peak_rss_mb") else "-"
        per_pair = 1000 * r["seconds"] * r["workers"] / r["pairs"]
        rows.append(f"| {key.replace('_', ' ')} ({r['mode']}) | {r['pairs']} | {r['workers']} | {r['seconds']:.1f} | "
                    f"{r['pairs_per_s']:.1f} | {r['pairs_per_s'] / base:.2f}x | {per_pair:.2f} | {inside} | {rss} |")
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
        print(table(json.load(f)))
    return 0


def save(results: dict, path: str) -> None:
    with open(path, "w") as f:
        json.dump(results, f, indent=2, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
