"""The retrieval baseline: every prompt answered with the answer of its nearest train row.

Usage: ./bazelw run //eval:baseline -- DIST --task TASK [--split test] --out PREDICTIONS.jsonl

For every row of `--split` and every task (`--task all`: every task of eval/tasks.py, in that
order, into one file), the nearest row of the `train` split is the one whose prompt text (the
task's first prompt column after the kernel's name: the Python source, or the generated forward
code for cpp_to_python and cuda_to_python) shares the most tokens: the Jaccard similarity of the
two token multisets (sum of the smaller counts over sum of the larger), tokens being the matches
of eval/text.py's `\\w+|[^\\w\\s]` after the row's kernel name is replaced by a placeholder (its
`cleaned`). Ties go to the smallest train id. The prediction is that train row's reference answer
with its kernel name replaced by the prompt's (for `outputs`, its outputs JSON as is). Scored by
//eval, this is the score a model gets by recalling training pairs: the leakage between splits.
With `--split train` each row's nearest other train row is taken. Lines: {"id", "task",
"prediction"}, keys sorted, rows by id: the same release gives the same bytes. A bad argument,
release or an empty split is one `error:` line, exit 2.
"""

from __future__ import annotations

import collections
import json
import sys
import time

import numpy as np

from eval.cli import OneLineParser, Refused, read_split, write_atomically
from eval.tasks import SPLITS, TASKS, Task
from eval.text import TOKEN, cleaned  # the report's token proxy, as edit_similarity reads it
from schemas.files import quote


def query_column(task: Task) -> str:
    """The prompt's main text: its first column that is neither the kernel's name nor the inputs."""
    return next(c for c in task.prompt_columns if c not in ("kernel_name", "inputs"))


def tokens(text: str | None, kernel_name: str) -> collections.Counter:
    """The token multiset of a row's text, its kernel name replaced by the placeholder."""
    return collections.Counter(TOKEN.findall(cleaned(text or "", kernel_name)))


def jaccard(a: collections.Counter, b: collections.Counter) -> float:
    """Multiset Jaccard similarity (1.0 for two empty multisets); the plain form of `Index`."""
    union = sum((a | b).values())
    return sum((a & b).values()) / union if union else 1.0


class Index:
    """The train rows' token multisets as an inverted index: per token, the rows holding it and
    their counts, so a query touches only the postings of its own tokens."""

    def __init__(self, bags: list[collections.Counter]):
        self.vocab: dict[str, int] = {}
        entries = [(self.vocab.setdefault(t, len(self.vocab)), j, n) for j, bag in enumerate(bags)
                   for t, n in bag.items()]
        entries.sort()
        ids = np.array([e[0] for e in entries], dtype=np.int64)
        self.rows = np.array([e[1] for e in entries], dtype=np.int64)
        self.counts = np.array([e[2] for e in entries], dtype=np.int64)
        self.starts = np.searchsorted(ids, np.arange(len(self.vocab) + 1))
        self.sizes = np.array([sum(b.values()) for b in bags], dtype=np.int64)

    def similarities(self, bag: collections.Counter) -> np.ndarray:
        """The multiset Jaccard similarity of `bag` with every indexed row."""
        inter = np.zeros(len(self.sizes), dtype=np.int64)
        for t, n in bag.items():
            k = self.vocab.get(t)
            if k is not None:
                s, e = self.starts[k], self.starts[k + 1]
                inter[self.rows[s:e]] += np.minimum(self.counts[s:e], n)  # a token's rows are distinct
        union = sum(bag.values()) + self.sizes - inter
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def nearest(tasks: list[Task], prompts: list[dict], train: list[dict], leave_one_out: bool
            ) -> dict[str, list[tuple[int, float]]]:
    """{task: [(train index, similarity) per prompt]}; one index per prompt column. A train row
    whose answer is missing (null) is no candidate for that task."""
    out: dict[str, list] = {t.name: [] for t in tasks}
    where = {r["id"]: j for j, r in enumerate(train)}
    for column in dict.fromkeys(query_column(t) for t in tasks):
        mine = [t for t in tasks if query_column(t) == column]
        index = Index([tokens(r[column], r["kernel_name"]) for r in train])
        usable = {t.name: np.array([t.reference(r) is not None for r in train]) for t in mine}
        for t in mine:
            if not usable[t.name].any():
                raise Refused(f"no train row has a {t.answer_column} answer: nothing to retrieve for {t.name}")
        for p in prompts:
            sims = index.similarities(tokens(p[column], p["kernel_name"]))
            if leave_one_out:
                sims[where[p["id"]]] = -1.0
            for t in mine:
                j = int(np.argmax(np.where(usable[t.name], sims, -1.0)))  # the first maximum: the smallest id
                if sims[j] < 0:
                    raise Refused(f"the train split has no other row with a {t.answer_column} answer")
                out[t.name].append((j, float(sims[j])))
    return out


def prediction(task: Task, prompt: dict, near: dict) -> str:
    """The nearest train row's answer, its kernel name replaced by the prompt's."""
    answer = task.reference(near)
    if task.kind == "outputs":
        return answer
    return answer.replace(near["kernel_name"], prompt["kernel_name"]) if near["kernel_name"] else answer


def lines(tasks: list[Task], prompts: list[dict], train: list[dict], leave_one_out: bool = False
          ) -> tuple[list[dict], dict[str, list[float]]]:
    """The prediction lines (tasks in the given order, prompts by id) and, per task, the
    similarity of every prompt's nearest train row."""
    found = nearest(tasks, prompts, train, leave_one_out)
    out = [{"id": p["id"], "task": t.name, "prediction": prediction(t, p, train[found[t.name][i][0]])}
           for t in tasks for i, p in enumerate(prompts)]
    return out, {t: [s for _, s in v] for t, v in found.items()}


def _parse(argv):
    p = OneLineParser(prog="//eval:baseline", description=__doc__.split("\n\n")[0])
    p.add_argument("dist", help="a release directory")
    p.add_argument("--task", required=True, help=f"one of {', '.join(TASKS)}, or all")
    p.add_argument("--split", default="test", help=f"the prompts' split: one of {', '.join(SPLITS)} "
                   "(default test; train: each row's nearest other train row)")
    p.add_argument("--out", required=True, help="the predictions file to write (JSON lines)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    t0 = time.perf_counter()
    try:
        if args.task != "all" and args.task not in TASKS:
            raise Refused(f"unknown task {quote(args.task, 40)}; known: {', '.join(TASKS)}, all")
        tasks = list(TASKS.values()) if args.task == "all" else [TASKS[args.task]]
        prompts = read_split(args.dist, args.split)
        train = prompts if args.split == "train" else read_split(args.dist, "train")
        if not prompts:
            raise Refused(f"{quote(args.dist)}: split {args.split} has no rows")
        if len(train) < 1 + (args.split == "train"):
            raise Refused(f"{quote(args.dist)}: the train split has no row to retrieve from")
        t1 = time.perf_counter()
        out, sims = lines(tasks, prompts, train, leave_one_out=args.split == "train")
        t2 = time.perf_counter()
        write_atomically(args.out, "".join(json.dumps(line, sort_keys=True) + "\n" for line in out))
    except Refused as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for t, s in sims.items():
        print(f"{t}: nearest train row's similarity mean {sum(s) / len(s):.3f}, "
              f"{sum(v == 1.0 for v in s)} of {len(s)} with the same token multiset", file=sys.stderr)
    print(f"{len(out)} predictions for {len(prompts)} {args.split} prompts from {len(train)} train rows "
          f"in {time.perf_counter() - t0:.1f} s (reading the release {t1 - t0:.1f} s, retrieval {t2 - t1:.1f} s) "
          f"-> {quote(args.out)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
