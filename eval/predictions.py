"""Reading a predictions file: JSON lines {"id", "task", "prediction": str} or {"id", "task",
"predictions": [str, ...]} (several samples, for pass@k). Every problem is one line naming the
line number (`Refused`): an unreadable line, an unknown task or id, a repeated (id, task), a line
with both or neither answer field, an answer that is not a string, an empty sample list."""

from __future__ import annotations

import os

from eval.cli import Refused
from eval.tasks import TASKS
from runtime.process import caller_path
from schemas.files import FileRefused, decode_json, lines, open_regular, quote

MAX_LINE_BYTES = 64 << 20


def read(path: str, ids: set[str]) -> dict[tuple[str, str], list[str]]:
    """{(task, id): [answer, ...]} of the file at `path` (as the user named it); ids must be in `ids`."""
    if not os.path.lexists(caller_path(path)):
        raise Refused(f"{quote(path)}: no such file")
    try:
        f = open_regular(caller_path(path), path)  # a regular file: no link, FIFO or directory
    except FileRefused as e:
        raise Refused(str(e)) from None
    out: dict = {}
    with f:
        for n, (raw, whole) in enumerate(lines(f, MAX_LINE_BYTES), 1):
            where = f"{quote(path)}: line {n}"
            if not whole:  # read no further than the limit: a huge line is never held whole
                raise Refused(f"{where}: longer than {MAX_LINE_BYTES} bytes")
            if not raw.strip():
                continue
            value, why = decode_json(raw)
            if why or not isinstance(value, dict):
                raise Refused(f"{where}: not a JSON object ({why or type(value).__name__})")
            key, answers = _line(value, where, ids)
            if key in out:
                raise Refused(f"{where}: a second line for task {key[0]} and id {quote(key[1], 40)}")
            out[key] = answers
    if not out:
        raise Refused(f"{quote(path)}: no predictions")
    return out


def _line(value: dict, where: str, ids: set[str]) -> tuple[tuple[str, str], list[str]]:
    task, rid = value.get("task"), value.get("id")
    if not isinstance(task, str) or task not in TASKS:
        raise Refused(f"{where}: unknown task {quote(str(task), 40)}; known: {', '.join(TASKS)}")
    if not isinstance(rid, str) or rid not in ids:
        raise Refused(f"{where}: id {quote(str(rid), 40)} is not a row of the scored split")
    if ("prediction" in value) == ("predictions" in value):
        raise Refused(f"{where}: needs exactly one of prediction (a string) and predictions (a list)")
    answers = [value["prediction"]] if "prediction" in value else value["predictions"]
    if not isinstance(answers, list) or not answers or not all(isinstance(a, str) for a in answers):
        raise Refused(f"{where}: predictions must be a non-empty list of strings, prediction a string")
    return (task, rid), answers
