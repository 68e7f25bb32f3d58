"""`./bazelw run //bench:eval -- [--kernels 40] [--release DIST] [--split test] [--workers 1]
[--tasks a,b] [--answers reference|trivial] [--json OUT]`: how many predictions //eval scores per second per worker, per task.

Makes a release of KERNELS CPU kernels (every CPU family, released with --split 10,10,80 so most
rows are scored; or takes DIST), writes each task's reference answers for the split as a
predictions file, and times `eval.main.score` on each task alone with WORKERS sandboxed children
(fresh-input seed 1). The reference answers are the realistic case for a judge that runs them:
each Python answer is compiled by Warp and executed on every stored and fresh input set in a
bubblewrap sandbox; a C++ answer is compiled in place of Warp's generated function and executed
the same way (a backward held to Warp's own gradients); a CUDA answer is compiled by NVRTC; an
`outputs` answer is compared with the oracle. Reports answers, seconds, answers per second per
worker, the judged share and the correct rate of the judged (the reference answers must score
100%). `--answers trivial` scores trivial answers instead (they must score 0%).
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


def _zeros(value):
    """`value` (JSON) with every number replaced by 0.0."""
    if isinstance(value, dict):
        return {k: (v if k in ("dtype", "shape") else _zeros(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_zeros(v) for v in value]
    return 0.0 if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def _returns_nothing(source: str, kernel_name: str) -> str:
    """The module `source` with the kernel's body replaced by `return` (signature kept)."""
    import ast

    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == kernel_name:
            node.body = [ast.Return()]
    return ast.unparse(tree) + "\n"


def _hollow(text: str) -> str:
    """Generated C++/CUDA with its kernel function's body (the last function's) emptied."""
    at = text.rindex("\n{\n")
    return text[:at + 3] + "}\n"


def answer(task, row: dict, kind: str) -> str:
    """The `kind` answer of `row` for `task`: its reference, or the trivial answer of the task's
    kind (a kernel that returns nothing; zeros in the outputs' shapes; the C++/CUDA kernel
    function with an empty body)."""
    if kind == "reference":
        return task.reference(row)
    if task.kind == "python":
        return _returns_nothing(task.reference(row), row["kernel_name"])
    if task.kind == "outputs":
        return json.dumps(_zeros(json.loads(task.reference(row))))
    return _hollow(task.reference(row))


def time_task(dist: str, task: str, split: str, workers: int, tmp: str, kind: str = "reference") -> dict:
    """Scores the `kind` answers of `task` on `split`; answers, seconds, rates."""
    from eval import main as eval_main
    from eval.cli import read_split
    from eval.sandbox import Limits
    from eval.tasks import TASKS

    rows = read_split(dist, split)
    preds = os.path.join(tmp, f"{task}.jsonl")
    with open(preds, "w") as f:
        for r in rows:
            f.write(json.dumps({"id": r["id"], "task": task, "prediction": answer(TASKS[task], r, kind)}) + "\n")
    t0 = time.perf_counter()
    report = eval_main.score(dist, preds, split, 1, workers, None, Limits())
    seconds = time.perf_counter() - t0
    scores = report["tasks"][task]["all"]
    return {"answers": len(rows), "seconds": round(seconds, 2), "workers": workers,
            "answers_per_s_per_worker": round(len(rows) / seconds / workers, 3),
            "judged": scores.get("judged"), "correct": scores.get("correct"), "kind": TASKS[task].kind, "answers_kind": kind,
            "exact_match": scores.get("exact_match"), "edit_similarity": scores.get("edit_similarity")}


def main(argv: list[str] | None = None) -> int:
    from eval.tasks import TASKS

    p = argparse.ArgumentParser(prog="bazel run //bench:eval --", description=__doc__.splitlines()[0])
    p.add_argument("--kernels", type=int, default=40, help="CPU kernels generated for the release (default 40)")
    p.add_argument("--release", metavar="DIST", help="an existing release to score instead of making one")
    p.add_argument("--split", default="test", help="the split scored (default test)")
    p.add_argument("--workers", type=int, default=1, help="sandboxed children at a time (default 1)")
    p.add_argument("--tasks", default=",".join(TASKS), help="tasks, comma-separated (default all)")
    p.add_argument("--answers", choices=("reference", "trivial"), default="reference",
                   help="the answers scored: the references (default), or trivial ones (a kernel that "
                        "returns nothing, zeros in the outputs' shapes, a C++/CUDA kernel function with an empty body)")
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
            results[task] = r = time_task(dist, task, args.split, args.workers, tmp, args.answers)
            print(f"{task:24s} {r['kind']:8s} {r['answers']:5d} answers  {r['seconds']:8.2f} s  "
                  f"{r['answers_per_s_per_worker']:8.3f} answers/s/worker  correct {r['correct']}")
    if args.json:
        with open(caller_path(args.json), "w") as f:
            json.dump(results, f, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
