"""The sample pairs of the report: which records are shown (the first by id of a few families),
and the verbatim excerpts of their fields, capped in lines and in UTF-8 bytes."""

from __future__ import annotations

from report.measures import lines
from report.open_values import cut
from report.release_reader import ReleaseError, fetch
from schemas.files import quote

EXCERPT_BYTES = 64 << 10  # a sample excerpt, in UTF-8 bytes, on top of --excerpt-lines


def sample_fields(config: str, archs: list[str]) -> list[str]:
    if config == "cpu":
        return ["source", "ir_cpp_forward"]
    return ["source", "ir_cuda_forward", f"ptx_{sorted(archs)[0]}"]


def excerpt(text: str, max_lines: int, max_bytes: int = EXCERPT_BYTES) -> tuple[str, bool]:
    """(the first `max_lines` lines of `text`, without the newline after the last, cut to at
    most `max_bytes` UTF-8 bytes (at a character boundary), whether the bytes cut it). Looks at
    the first `max_bytes` characters only, so a huge cell costs no more than a small one."""
    head = text[:max_bytes]
    end, pos, seen = None, 0, 0
    while seen < max_lines:
        j = head.find("\n", pos)
        if j < 0:
            break
        seen, pos, end = seen + 1, j + 1, j
    if seen == max_lines:
        ex = head[:end]
    elif len(text) <= max_bytes:
        ex = head[:-1] if head.endswith("\n") else head
    else:
        ex = head
    data = ex.encode("utf-8", "surrogatepass")
    if len(data) <= max_bytes and (seen == max_lines or len(text) <= max_bytes):
        return ex, False
    return data[:max_bytes].decode("utf-8", "ignore"), True


def pick_samples(rows: dict[str, list[dict]], configs: list[str], archs: list[str], n: int, excerpt_lines: int,
                 dist: str, shown: str = "") -> dict:
    """`n` records, alternating configs, each from the next family (by name) of its config: the
    first record by id of that family (chosen by the light rows, its fields fetched from `dist`)."""
    fams = {c: sorted({r["family"] for r in rows.get(c, [])}) for c in configs}
    chosen = []
    for k in range(n):
        live = [c for c in configs if fams[c]]
        if not live:
            break
        config = live[k % len(live)]
        fam_list = fams[config]
        family = fam_list[(k // len(live)) % len(fam_list)]
        r = next(r for r in rows[config] if r["family"] == family)
        if any(s["id"] == r["id"] and s["config"] == config for s in chosen):
            continue
        fields = _excerpts(dist, r, sample_fields(config, archs), excerpt_lines, shown)
        chosen.append({"config": config, "family": cut(family), "id": cut(r["id"]),
                       "kernel_name": cut(r["kernel_name"]), "seed": r["seed"], "split": r["split"], "fields": fields})
    return {"excerpt_lines": excerpt_lines, "excerpt_bytes": EXCERPT_BYTES, "records": chosen}


def _excerpts(dist: str, r: dict, fields: list[str], excerpt_lines: int, shown: str) -> dict:
    """The excerpt of each of `fields` of the row the light row `r` stands for, with its lines
    shown and in all, and the byte cap where that cut it."""
    out = {}
    text = fetch(dist, r, fields, shown)
    if not all(isinstance(text.get(f), str) for f in fields):
        raise ReleaseError(f"{quote(r['at'][0])}: row {r['at'][1]} changed while the report read it")
    for f in fields:
        ex, was_cut = excerpt(text[f], excerpt_lines)
        out[f] = {"excerpt": ex, "lines_total": lines(text[f]), "lines_shown": lines(ex) if was_cut else
                  min(lines(text[f]), excerpt_lines), "cut_at_bytes": EXCERPT_BYTES if was_cut else None}
    return out
