"""Scores a predictions file against a release: the judge of eval/judge.py for every answer.

Usage: ./bazelw run //eval -- DIST PREDICTIONS.jsonl [--out REPORT.json] [--split test]
       [--workers W] [--seed S] [--k K] [--timeout-s T]

The prompts are the rows of `--split` (default test) for each task the file answers; a prompt
it does not answer counts as wrong (`missing`). Fresh input sets are drawn from `--seed` (by
default one drawn now from the system's randomness, so the predictions cannot know it; the
report records it, and the same seed gives the same report bytes). Python answers run in
sandboxed children (eval/sandbox.py), `--workers` at a time. REPORT.json (default: none) holds the
scores per task and per task and family (eval/summary.py) and every answer's verdict and reason;
the Markdown table is printed. A bad argument, release or predictions file is one `error:` line,
exit 2.
"""

from __future__ import annotations

import concurrent.futures
import os
import sys
import time

from eval import judge as judge_mod
from eval import predictions as predictions_mod
from eval import summary
from eval.cli import OneLineParser, Refused, read_split, write_atomically
from eval.sandbox import Limits, SandboxMissing, bwrap
from eval.tasks import SPLITS, TASKS
from schemas.dataset_format import pretty_json


def _parse(argv):
    p = OneLineParser(prog="//eval", description=__doc__.split("\n\n")[0])
    p.add_argument("dist", help="a release directory")
    p.add_argument("predictions", help="JSON lines: id, task, prediction or predictions")
    p.add_argument("--out", help="REPORT.json to write")
    p.add_argument("--split", default="test", help=f"one of {', '.join(SPLITS)} (default test)")
    p.add_argument("--workers", type=int, default=1, help="sandboxed children at a time (default 1)")
    p.add_argument("--seed", type=int, help="seed of the fresh input sets (default: drawn now)")
    p.add_argument("--k", type=int, help="k of pass@k (default per task: the fewest samples of its lines)")
    p.add_argument("--timeout-s", type=float, default=Limits.wall_s, help="wall-clock limit per answer")
    args = p.parse_args(argv)
    if args.workers < 1:
        p.error("--workers must be at least 1")
    if args.seed is not None and not 0 <= args.seed < 2**63:
        p.error("--seed must be in [0, 2**63)")
    if args.k is not None and args.k < 1:
        p.error("--k must be at least 1")
    if not 0 < args.timeout_s <= 3600:
        p.error("--timeout-s must be in (0, 3600]")
    return args


def score(dist: str, preds_path: str, split: str, seed: int, workers: int, k: int | None,
          limits: Limits) -> dict:
    """The report (see the module's note)."""
    rows = read_split(dist, split)
    by_id = {r["id"]: r for r in rows}
    answers = predictions_mod.read(preds_path, set(by_id))
    tasks = sorted({t for t, _ in answers}, key=list(TASKS).index)
    ks = {}
    for t in tasks:
        least = min(len(a) for (task, _), a in answers.items() if task == t)
        if k is not None and k > least:
            raise Refused(f"--k {k} is more than the {least} samples of a {t} line")
        ks[t] = k or least
    need = {r["id"] for r in rows} if tasks else set()
    expected = {rid: judge_mod.expected(by_id[rid]["spec"], rid, seed) for rid in sorted(need)}
    jobs = [(t, r["id"], j, a) for t in tasks for r in rows for j, a in enumerate(answers.get((t, r["id"]), []))]
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        verdicts = list(pool.map(lambda job: judge_mod.judge(TASKS[job[0]], by_id[job[1]], job[3],
                                                               expected.get(job[1]), limits).to_json(), jobs))
    judged: dict = {}
    for (t, rid, _, _), v in zip(jobs, verdicts):
        judged.setdefault((t, rid), []).append(v)
    return _report(tasks, rows, judged, split, seed, ks)


def _missing(task) -> dict:
    return judge_mod.Verdict(False, None if task.kind == "outputs" else False, None if task.kind == "cuda" else False,
                             "missing: no prediction for this prompt").to_json()


def _report(tasks: list[str], rows: list[dict], judged: dict, split: str, seed: int, ks: dict) -> dict:
    per_task, lines = {}, []
    for t in tasks:
        items = []
        for r in rows:
            samples = judged.get((t, r["id"]))
            item = {"samples": samples or [_missing(TASKS[t])], "missing": samples is None}
            items.append((r["family"], item))
            lines.append({"id": r["id"], "task": t, "family": r["family"], **item})
        fams = sorted({f for f, _ in items})
        per_task[t] = {"k": ks[t], "all": summary.group([it for _, it in items], ks[t]),
                       "families": {f: summary.group([it for g, it in items if g == f], ks[t]) for f in fams}}
    return {"split": split, "seed": seed, "fresh_input_sets": judge_mod.FRESH_SETS,
            "tasks": per_task, "predictions": lines}


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(8), "big") >> 1
    limits = Limits(wall_s=args.timeout_s, cpu_s=max(1, int(args.timeout_s)))
    t0 = time.perf_counter()
    try:
        bwrap()
        report = score(args.dist, args.predictions, args.split, seed, args.workers, args.k, limits)
        if args.out:
            write_atomically(args.out, pretty_json(report))
    except (Refused, SandboxMissing) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    sys.stdout.write(summary.table(report["tasks"]))
    n = sum(len(p["samples"]) for p in report["predictions"] if not p["missing"])
    print(f"{n} answers scored in {time.perf_counter() - t0:.1f} s with {args.workers} worker(s); "
          f"fresh-input seed {seed}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
