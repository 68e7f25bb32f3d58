"""`./bazelw run //bench:eval -- [--kernels 40] [--release DIST] [--split test] [--workers 1]
[--tasks a,b] [--json OUT]`: how many predictions //eval scores per second per worker, per task.

Makes a release of KERNELS CPU kernels (every CPU family, released with --split 10,10,80 so most
rows are scored; or takes DIST), writes each task's reference answers for the split as a
predictions file, and times `eval.main.score` on each task alone with WORKERS sandboxed children
(fresh-input seed 1). The reference answers are the realistic case for a judge that runs them:
each Python answer is compiled by Warp and executed on every stored and fresh input set in a
bubblewrap sandbox; an `outputs` answer is compared with the oracle; C++ and CUDA answers get the
text measures only (their functional judge is not built yet). Reports answers, seconds, answers
per second per worker, and the correct rate (the reference answers must score 100% where judged).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

from runtime.process import caller_path


def make_release(kernels: int, workers: int, tmp: str) -> str:
    import pipeline
    from generator.families import families_for
    from tools import release

    run, dist = os.path.join(tmp, "run"), os.path.join(tmp, "dist")
    pipeline.run(pipeline.RunConfig("cpu", kernels, 0, run, families_for("cpu"), workers, quiet=True))
    if release.main(["--in", run, "--out", dist, "--version", "1.0.0", "--split", "10,10,80"]) != 0:
        raise RuntimeError("the release of the benchmark's run failed")
    return dist


def time_task(dist: str, task: str, split: str, workers: int, tmp: str) -> dict:
    """Scores the reference answers of `task` on `split`; answers, seconds, rates."""
    from eval import main as eval_main
    from eval.cli import read_split
    from eval.sandbox import Limits
    from eval.tasks import TASKS

    rows = read_split(dist, split)
    preds = os.path.join(tmp, f"{task}.jsonl")
    with open(preds, "w") as f:
        for r in rows:
            f.write(json.dumps({"id": r["id"], "task": task, "prediction": TASKS[task].reference(r)}) + "\n")
    t0 = time.perf_counter()
    report = eval_main.score(dist, preds, split, 1, workers, None, Limits())
    seconds = time.perf_counter() - t0
    scores = report["tasks"][task]["all"]
    return {"answers": len(rows), "seconds": round(seconds, 2), "workers": workers,
            "answers_per_s_per_worker": round(len(rows) / seconds / workers, 3),
            "correct": scores.get("correct"), "kind": TASKS[task].kind}


def main(argv: list[str] | None = None) -> int:
    from eval.tasks import TASKS

    p = argparse.ArgumentParser(prog="bazel run //bench:eval --", description=__doc__.splitlines()[0])
    p.add_argument("--kernels", type=int, default=40, help="CPU kernels generated for the release (default 40)")
    p.add_argument("--release", metavar="DIST", help="an existing release to score instead of making one")
    p.add_argument("--split", default="test", help="the split scored (default test)")
    p.add_argument("--workers", type=int, default=1, help="sandboxed children at a time (default 1)")
    p.add_argument("--tasks", default=",".join(TASKS), help="tasks, comma-separated (default all)")
    p.add_argument("--json", help="also write the results here (JSON)")
    args = p.parse_args(argv)
    tasks = [t for t in args.tasks.split(",") if t]
    unknown = [t for t in tasks if t not in TASKS]
    if args.kernels < 1 or args.workers < 1 or unknown or not tasks:
        print(f"error: --kernels and --workers must be >= 1 and --tasks known ({', '.join(TASKS)})", file=sys.stderr)
        return 2
    results = {}
    with tempfile.TemporaryDirectory(prefix="warp-ir-bench-eval-") as tmp:
        dist = caller_path(args.release) if args.release else make_release(args.kernels, 2, tmp)
        for task in tasks:
            results[task] = r = time_task(dist, task, args.split, args.workers, tmp)
            print(f"{task:24s} {r['kind']:8s} {r['answers']:5d} answers  {r['seconds']:8.2f} s  "
                  f"{r['answers_per_s_per_worker']:8.3f} answers/s/worker  correct {r['correct']}")
    if args.json:
        with open(caller_path(args.json), "w") as f:
            json.dump(results, f, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
