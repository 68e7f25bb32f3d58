"""The report's facts and section for the real config of a release (kernels of the warp-lang
wheel, //harvest): counts by folder of the wheel and split, what each harvest held and what the
release left out with the reason, and the builtins the real kernels call, against those the
release's synthetic kernels call. Read from the manifest (checked against its schema) and the
real rows' light fields (report/release_reader.py); every name from the release stays untrusted
text (report/document.py `u`)."""

from __future__ import annotations

import collections

from report.document import u
from report.open_values import TOP, as_count, top_counts
from schemas.dataset_format import REAL_CONFIG
from tools.release_format import SPLITS


def facts(m: dict, rows: dict[str, list[dict]], synthetic: list[str], skipped: list) -> dict | None:
    """None when the release has no real config."""
    real = m.get("real")
    if not real:
        return None
    own = rows.get(REAL_CONFIG, [])
    by_dir = collections.defaultdict(lambda: {s: 0 for s in SPLITS})
    calls, unparsed = collections.Counter(), 0
    for r in own:
        by_dir[r["family"]][r["split"]] += 1
        if r["builtins"] is None:
            unparsed += 1
        else:
            calls.update(r["builtins"])
    theirs = {b for c in synthetic for r in rows.get(c, []) if r.get("builtins") for b in r["builtins"]}
    top, more, _ = top_counts(calls, TOP, skipped, "real builtins")
    not_synthetic, more_missing, _ = top_counts({b: n for b, n in calls.items() if b not in theirs}, TOP, skipped,
                                                "real builtins missing")
    inputs = [{"path": i["path"], "records": i["records"], "published": i["published"], "replayed": i.get("replayed", 0),
               "left_out": top_counts(i["left_out_by_reason"], TOP, skipped, "left out")[0]} for i in real["inputs"]]
    return {"records": len(own), "by_dir": {d: dict(v, total=sum(v.values())) for d, v in sorted(by_dir.items())},
            "inputs": inputs, "builtins": len(calls), "top_builtins": top, "top_more": more,
            "not_in_synthetic": len([b for b in calls if b not in theirs]), "missing_top": not_synthetic,
            "missing_more": more_missing, "unparsed_sources": unparsed,
            "record_schema_version": real["record_schema_version"]}


def _names(d: dict, more: int) -> str:
    text = ", ".join(f"{u(k)} {as_count(n)}" for k, n in d.items()) or "none"
    return text + (f" and {more} more" if more else "")


def section(F: dict) -> list[tuple]:
    """The section Real kernels (nothing when the release has no real config)."""
    R = F.get("real")
    if not R:
        return []
    rows = [[u(d)] + [str(v[s]) for s in SPLITS] + [str(v["total"])] for d, v in R["by_dir"].items()]
    inputs = "; ".join(f"{u(i['path'])}: {i['records']} records, {i['published']} publishable before deduplication "
                       f"({i['replayed']} of them with a replayed launch), left out: {_names(i['left_out'], 0)}"
                       for i in R["inputs"])
    return [("h", 2, "Real kernels"),
            ("p", f"The `{REAL_CONFIG}` config holds {R['records']} kernels the warp-lang wheel defines, with their "
                  f"provenance (real record schema {u(R['record_schema_version'])}). There is no oracle for a real "
                  f"kernel: where the wheel's own tests launched one on the CPU, that launch is stored (its arguments "
                  f"before and after) and the harvested kernel replays it byte for byte (`execute.replay_cpu`); "
                  f"`//tools:verify` re-cut their text from the installed wheel and `//validator` records the "
                  f"launches and lowers the kernels again and requires equal code and outputs. Harvests: {inputs}."),
            ("table", ["folder of the wheel"] + list(SPLITS) + ["total"], rows),
            ("p", f"They call {R['builtins']} distinct Warp builtins (kernels calling each, most first: "
                  f"{_names(R['top_builtins'], R['top_more'])}). {R['not_in_synthetic']} of them are called by no "
                  f"synthetic kernel of this release: {_names(R['missing_top'], R['missing_more'])}. Sources that did "
                  f"not parse: {R['unparsed_sources']}.")]
