"""Reading a predictions file: JSON lines {"id", "task", "prediction": str} or {"id", "task",
"predictions": [str, ...]} (several samples, for pass@k). Every problem is one line naming the
line number (`Refused`): an unreadable line, an unknown task or id, a repeated (id, task), a line
with both or neither answer field, an answer that is not a string, an empty sample list."""

from __future__ import annotations

import json

from eval.cli import Refused
from eval.tasks import TASKS
from runtime.process import caller_path
from schemas.files import decode_json, quote

MAX_LINE_BYTES = 64 << 20


def read(path: str, ids: set[str]) -> dict[tuple[str, str], list[str]]:
    """{(task, id): [answer, ...]} of the file at `path` (as the user named it); ids must be in `ids`."""
    try:
        f = open(caller_path(path), "rb")
    except OSError as e:
        raise Refused(f"{quote(path)}: cannot read ({e.strerror})") from None
    out: dict = {}
    with f:
        for n, raw in enumerate(f, 1):
            where = f"{quote(path)}: line {n}"
            if len(raw) > MAX_LINE_BYTES:
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
