"""The prompts of one task on one split of a release, as JSON lines.

Usage: ./bazelw run //eval:tasks -- DIST --task TASK [--split test] --out PROMPTS.jsonl

Each line: {"id", "task", and the prompt's fields (eval/tasks.py)}, sorted by id, keys sorted:
the same release gives the same bytes. A bad task, split or release is one `error:` line, exit 2.
"""

from __future__ import annotations

import json
import sys

from eval.cli import OneLineParser, Refused, read_split, write_atomically
from eval.tasks import SPLITS, TASKS, prompt_line
from schemas.files import quote


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="//eval:tasks", description=__doc__.split("\n\n")[0])
    p.add_argument("dist", help="a release directory")
    p.add_argument("--task", required=True, help=f"one of {', '.join(TASKS)}")
    p.add_argument("--split", default="test", help=f"one of {', '.join(SPLITS)} (default test)")
    p.add_argument("--out", required=True, help="the prompts file to write (JSON lines)")
    args = p.parse_args(argv)
    try:
        if args.task not in TASKS:
            raise Refused(f"unknown task {quote(args.task, 40)}; known: {', '.join(TASKS)}")
        task = TASKS[args.task]
        rows = read_split(args.dist, args.split)
        text = "".join(json.dumps(prompt_line(task, r), sort_keys=True) + "\n" for r in rows)
        write_atomically(args.out, text)
    except Refused as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{len(rows)} {task.name} prompts of split {args.split} -> {quote(args.out)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
