"""The Warp builtins a release's kernels call, against the kernels of the installed warp-lang
wheel: both read with `ast` by generator/coverage.py (no record text and no wheel module is
imported or run). A source that does not parse is counted, never dropped."""

from __future__ import annotations

import collections
import functools
import sys

from generator import coverage as gc

MISSING_SHOWN = 10


@functools.cache
def _names() -> frozenset[str]:
    return gc.builtin_names(gc.wheel_root())


@functools.cache
def _wheel() -> gc.Usage:
    return gc.wheel_usage(gc.wheel_root(), _names())


def called(source) -> tuple[str, ...] | None:
    """The builtins a record's source calls in its kernels and funcs (sorted); None where it does
    not parse (or is not text)."""
    if not isinstance(source, str):
        return None
    try:
        _, sites = gc.call_sites(source, _names())
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    return tuple(sys.intern(n) for n in sorted(sites))


def facts(rows: dict[str, list[dict]], configs: list[str]) -> dict:
    """Distinct builtins per config and over the release, and the share of the wheel's call sites
    whose builtin the release calls, from the light rows' `builtins`."""
    per, every, unparsed = {}, collections.Counter(), 0
    for config in configs:
        seen = set()
        for row in rows.get(config, []):
            if row.get("builtins") is None:
                unparsed += 1
                continue
            seen.update(row["builtins"])
            every.update(row["builtins"])
        per[config] = len(seen)
    release = gc.Usage(functions=sum(len(rows.get(c, [])) for c in configs), sites=every)
    cov = gc.coverage(release, _wheel())
    share = cov["call_site_share"]
    return {"builtins": cov["generator"]["builtins"], "configs": per, "unparsed_sources": unparsed,
            "real_builtins": cov["real"]["builtins"], "real_functions": cov["real"]["functions"],
            "real_call_sites": cov["real"]["call_sites"],
            "call_site_pct": round(100 * share, 1) if share is not None else None,
            "missing": [[m["builtin"], m["call_sites"]] for m in cov["missing"][:MISSING_SHOWN]],
            "missing_more": max(0, len(cov["missing"]) - MISSING_SHOWN)}
