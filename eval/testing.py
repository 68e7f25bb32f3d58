"""Test helpers (testonly): a small real release to score (the real pipeline, compiled and
executed; most rows in the test split), made once per process, and running //eval in-process."""

from __future__ import annotations

import functools
import json
import os
import shutil

FAMILIES = ["arith", "branch", "structs", "loop", "neighbors", "mesh", "volume", "bvh", "texture"]


@functools.cache
def small_release(tmp: str) -> str:
    """tmp/eval_dist: 16 CPU kernels of FAMILIES (one with each object argument: a hash grid, a
    mesh, a volume, a BVH and a texture), seed 5, released with --split 20,10,70 (three train rows
    for the baseline, every object family's kernels in test)."""
    import pipeline
    from tools import release

    run, dist = os.path.join(tmp, "eval_run"), os.path.join(tmp, "eval_dist")
    for d in (run, dist):
        shutil.rmtree(d, ignore_errors=True)
    pipeline.run(pipeline.RunConfig("cpu", 16, 5, run, FAMILIES, workers=1, quiet=True, archs=["sm_90"]))
    if release.main(["--in", run, "--out", dist, "--version", "1.0.0", "--split", "20,10,70"]) != 0:
        raise AssertionError("the release of the small run failed")
    return dist


def write_predictions(path: str, lines: list[dict]) -> str:
    with open(path, "w") as f:
        for line in lines:
            f.write(json.dumps(line) + "\n")
    return path


def score(dist: str, lines: list[dict], tmp: str, *extra: str) -> dict:
    """//eval on `lines` as a predictions file; the report."""
    from eval import main

    preds = write_predictions(os.path.join(tmp, "predictions.jsonl"), lines)
    out = os.path.join(tmp, "report.json")
    assert main.main([dist, preds, "--out", out, "--workers", "2", "--seed", "11", *extra]) == 0
    with open(out) as f:
        return json.load(f)


def verdicts(report: dict, task: str) -> dict[str, list[dict]]:
    """{id: [verdict, ...]} of one task in a report."""
    return {p["id"]: p["samples"] for p in report["predictions"] if p["task"] == task}
