"""Values of the manifest that its schema leaves open (counts, run.json, notes, verdicts), as the
report keeps them: each taken only where it has the expected type, names and strings cut, long
mappings capped (the caps are in facts.json as "limits")."""

from __future__ import annotations

import json
import math

# caps: what the report shows of a long list, and of a long cell (facts.json holds them as "limits")
TOP = 50  # reasons, stages, bars of a plot, checks per config
TABLE_ROWS = 200  # rows of a table per config (families)
NAME_CHARS = 200  # a reason or name as facts.json keeps it
VALUE_CHARS = 1000  # a note or other string value as facts.json keeps it


def as_count(x) -> int | None:
    """`x` when it is a count (an integer >= 0, not a bool); else None."""
    return x if isinstance(x, int) and not isinstance(x, bool) and x >= 0 else None


def as_number(x) -> float | int | None:
    """`x` when it is a finite number >= 0 (not a bool; JSON's NaN and Infinity are not); else None."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return x if math.isfinite(x) and x >= 0 else None


def as_bool(x) -> bool | None:
    return x if isinstance(x, bool) else None


def as_dict(x) -> dict:
    return x if isinstance(x, dict) else {}


def dig(x, *keys):
    for k in keys:
        x = as_dict(x).get(k)
    return x


def scalar(x):
    """A JSON leaf as the report shows it: a number, a bool, null or a string (cut); anything
    else as its JSON text, cut."""
    if x is None or isinstance(x, (bool, int)) or (isinstance(x, float) and math.isfinite(x)):
        return x
    text = x if isinstance(x, str) else json.dumps(x, sort_keys=True, default=str)[:VALUE_CHARS + 1]
    return cut(text, VALUE_CHARS)


def cut(text: str, limit: int = NAME_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def top_counts(d, limit: int = TOP, skipped: list | None = None, where: str = "") -> tuple[dict, int, int]:
    """(the `limit` largest counts of the mapping `d` by (-count, name), names cut to NAME_CHARS
    (names equal once cut are summed); how many more names there are; their kernels). A value that
    is not a count is left out, and noted in `skipped`."""
    good = []
    for k, v in as_dict(d).items():
        n = as_count(v)
        if n is None:
            if skipped is not None:
                skipped.append({"where": where, "name": cut(str(k)), "value": scalar(v)})
            continue
        good.append((-n, k))
    good.sort()
    top: dict = {}
    for n, k in good[:limit]:
        key = cut(k)
        top[key] = top.get(key, 0) - n
    return top, max(0, len(good) - limit), -sum(n for n, _ in good[limit:])


def nested(d, depth: int, limit: int = TOP):
    """The mapping `d` with at most `limit` keys per level, `depth` levels of mappings, names cut
    and leaves as `scalar` (verdicts, notes, gpu_execution as the report shows them)."""
    if depth == 0 or not isinstance(d, dict):
        if isinstance(d, list):
            return [scalar(x) for x in d[:limit]]
        return scalar(d)
    return {cut(str(k)): nested(v, depth - 1, limit) for k, v in list(d.items())[:limit]}
