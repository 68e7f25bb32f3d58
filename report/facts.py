"""The facts of a release: every number the report states, computed from manifest.json and the
Parquet shards. The report renders these and nothing else; `facts.json` holds them with the
place each section comes from (`sources`).

Lengths are measured per field and per config: characters, lines, and a token proxy (the count
of regex `TOKEN_PROXY` matches: identifier/number runs and single punctuation characters; no
tokenizer is assumed). Percentiles are nearest-rank, so each is a value some record has.

Reading the release is report/release_reader.py, measuring report/measures.py, the manifest's
open values report/open_values.py and the samples report/samples.py; the names the report and
its test take from those are re-exported here.
"""

from __future__ import annotations

import collections
import dataclasses

from report import coverage, real_section
from report.measures import TOKEN_PROXY, ir_fields, next_pow2, pct, pct_f, percentile, summary, tasks
from report.open_values import (NAME_CHARS, TABLE_ROWS, TOP, VALUE_CHARS, as_bool, as_count, as_dict, as_number, cut,
                                dig, nested, scalar, top_counts)
from report.release_reader import ReleaseError, load_release
from report.samples import EXCERPT_BYTES, excerpt, pick_samples
from schemas.dataset_format import REAL_CONFIG

# what the report (load_release, build, ReleaseError) and its test take from here
__all__ = ["EXCERPT_BYTES", "ReleaseError", "build", "excerpt", "load_release", "next_pow2", "percentile"]


@dataclasses.dataclass
class _Release:
    """What every section of the facts is computed from, and the values left out so far."""
    m: dict  # the manifest
    rows: dict[str, list[dict]]  # the light rows per config, by (id, kernel_name)
    measured: dict  # per config, field and unit: the size of each row
    archs: list[str]
    configs: list[str]
    skipped: list[dict]  # values of an unexpected type, left out of the figures


def build(m: dict, rows: dict[str, list[dict]], measured: dict, samples: int, excerpt_lines: int, dist: str,
          shown: str = "") -> dict:
    """Every fact, from the manifest, the light rows and the measurements of `load_release`; the
    samples' text is fetched from the release `dist`. What the manifest's schema leaves open
    (counts of an input, rejects by reason, run.json, notes, verdicts) is taken only where it has
    the expected type; anything else is left out and listed under `skipped`. Long lists keep
    their TOP largest entries and say how many more there are."""
    # the real config (kernels of the wheel, no oracle) has its own facts: report/real_section.py
    configs = sorted(c for c in m["counts"]["configs"] if c != REAL_CONFIG)
    r = _Release(m, rows, measured, sorted(set(m["toolchain"]["ptx_archs"])), configs, [])
    # in this order: the sections append to `skipped` as they go
    facts = {"limits": {"top": TOP, "table_rows": TABLE_ROWS, "excerpt_bytes": EXCERPT_BYTES,
                        "name_chars": NAME_CHARS, "value_chars": VALUE_CHARS},
             "release": _release(r), "counts": _counts(r), "generation": _generation(r),
             "validation": _validation(r), "dedup": _dedup(r), "near_duplicates": _near_duplicates(r),
             "diversity": _diversity(r), "gradient": _gradient(r), "lengths": _lengths(r),
             "ptx_by_family": _ptx_by_family(r), "training": _training(r), "throughput": _throughput(r),
             "coverage": coverage.facts(r.rows, r.configs), "real": real_section.facts(m, rows, configs, r.skipped),
             "samples": pick_samples(rows, r.configs, r.archs, samples, excerpt_lines, dist, shown),
             "skipped": {"values": r.skipped[:TOP], "more": max(0, len(r.skipped) - TOP)}}
    return {"facts": facts, "sources": _sources(f"ptx_{r.archs[0]}")}


def _sources(ptx: str) -> dict[str, str]:
    """Where each section of the facts comes from."""
    return {
        "limits": "report/facts.py: how much of a long list or cell the report shows",
        "release": "manifest.json: version, toolchain, inputs[].generator.chunk_size, columns, files",
        "counts": "manifest.json: counts (records per config, split and family; skeletons per split)",
        "generation": "manifest.json: inputs[].counts, inputs[].rejects_by_reason",
        "validation": "manifest.json: validation",
        "dedup": "manifest.json: dedup",
        "near_duplicates": "manifest.json: near_duplicates",
        "diversity": "Parquet shards: distinct skeleton_hash per config and family",
        "gradient": "Parquet shards: checks.execute_backward_cpu status and coverage per config and family",
        "lengths": (f"Parquet shards: characters, lines and tokens (regex {TOKEN_PROXY} matches) per field; "
                    "nearest-rank percentiles"),
        "ptx_by_family": f"Parquet shards: lines of {ptx} per config and family",
        "training": ("Parquet shards: token proxy of the task's fields summed per record; context = the "
                     "smallest power of two at or above p99; fits_pct = share of records within it"),
        "throughput": "manifest.json: inputs[].run (the generator's run.json; null where not recorded)",
        "coverage": ("Parquet shards: the Warp builtins each source calls (read with ast); the installed "
                     "warp-lang wheel's examples, tests and library read the same way (generator/coverage.py)"),
        "real": ("manifest.json: real (the harvests, what was left out); the real config's Parquet shards: "
                 "wheel_dir, split, the builtins each source calls (read with ast)"),
        "samples": ("Parquet shards: the first record by id of each chosen family; excerpts are the first lines "
                    "verbatim, at most limits.excerpt_bytes bytes"),
        "skipped": "manifest.json: values of an unexpected type, left out of the figures",
    }


# ---- from the manifest ----

def _release(r: _Release) -> dict:
    m, tc = r.m, r.m["toolchain"]
    return {
        "version": m["version"], "record_schema_version": cut(m["record_schema_version"]),
        "manifest_version": m["manifest_version"], "command": cut(m["command"], 1000), "license": cut(m["license"]),
        "warp_lang": scalar(tc.get("warp_lang")), "nvrtc": scalar(tc.get("nvrtc")),
        "cuda_toolkit": scalar(tc.get("cuda_toolkit")), "llvm": scalar(tc.get("llvm")),
        "optimization_level": scalar(dig(tc, "cuda", "compiler", "optimization_level")),
        "cpu_optimization_level": scalar(dig(tc, "cpu", "compiler", "optimization_level")),
        "ptx_archs": r.archs,
        "chunk_sizes": sorted({n for i in m["inputs"] for n in [as_count(i["generator"].get("chunk_size"))]
                               if n is not None})[:TOP],
        "configs": r.configs, "columns": len(m["columns"]),
        "data_bytes": sum(f["bytes"] for f in m["files"] if f["path"].endswith(".parquet")),
        "parquet_files": sum(1 for f in m["files"] if f["path"].endswith(".parquet")),
    }


def _counts(r: _Release) -> dict:
    mc = r.m["counts"]
    counts = {"records_in": mc["records_in"], "records_out": mc["records_out"], "configs": {}}
    for config in r.configs:
        c = mc["configs"][config]
        counts["configs"][config] = {
            "records": c["records"], "splits": dict(c["splits"]), "skeletons": dict(c["skeletons"]),
            "families": {f: dict(v) for f, v in c["families"].items()}, "family_count": len(c["families"]),
            "split_pct": {s: pct(n, c["records"]) for s, n in c["splits"].items()},
        }
    counts["family_count"] = sum(v["family_count"] for v in counts["configs"].values())
    return counts


def _generation(r: _Release) -> dict:
    """Generation (inputs): the TOP reject reasons by kernels per input and over all, and how many more."""
    gen = {"inputs": []}
    every: collections.Counter = collections.Counter()
    for i in r.m["inputs"]:
        gen["inputs"].append(_generation_input(i, r.skipped))
        for reason, n in as_dict(i["rejects_by_reason"]).items():
            if as_count(n) is not None:
                every[reason] += n
    gen["reasons"], gen["reasons_more"], gen["reasons_more_kernels"] = top_counts(every, TOP)
    gen["reasons_distinct"] = len(every)
    gen["attempted"] = sum(x["attempted"] or 0 for x in gen["inputs"])
    gen["rejected"] = sum(x["rejected"] or 0 for x in gen["inputs"])
    gen["passed"] = sum(x["passed"] or 0 for x in gen["inputs"])
    gen["pass_pct"] = pct(gen["passed"], gen["attempted"])
    return gen


def _generation_input(i: dict, skipped: list[dict]) -> dict:
    """One input's counts (a value that is not a count left out, into `skipped`) and top reasons."""
    cnt = as_dict(i["counts"])
    path = cut(i["path"], 1000)
    for k in ("attempted", "passed", "rejected"):
        if k in cnt and as_count(cnt[k]) is None:
            skipped.append({"where": f"{path}: counts", "name": k, "value": scalar(cnt[k])})
    attempted, passed, rejected = (as_count(cnt.get(k)) for k in ("attempted", "passed", "rejected"))
    top, more, more_kernels = top_counts(as_dict(i["rejects_by_reason"]), TOP, skipped, f"{path}: rejects_by_reason")
    return {"path": path, "target": i["target"], "seed": scalar(i["generator"]["seed"]),
            "attempted": attempted, "passed": passed, "rejected": rejected, "records": i["records"],
            "pass_pct": pct(passed or 0, attempted or 0),
            "rejects_by_reason": top, "reasons_more": more, "reasons_more_kernels": more_kernels}


def _validation(r: _Release) -> dict:
    val = r.m["validation"]
    verdicts = nested(val["verdicts"], 3)
    checks = sorted({k for v in verdicts.values() if isinstance(v, dict) for k in v})
    notes = {k: v if isinstance(v, list) else [v] for k, v in nested(val["notes"], 1).items()}
    return {"checks": checks, "verdicts": verdicts, "gpu_executed": val["gpu_executed"],
            "gpu_execution": nested(val["gpu_execution"], 2), "notes": notes,
            "notes_total": len(val["notes"]), "checks_total": len({k for v in val["verdicts"].values()
                                                                   if isinstance(v, dict) for k in v})}


def _dedup(r: _Release) -> dict:
    dd = r.m["dedup"]
    removed, removed_more, removed_more_kernels = top_counts(dd["removed"], TOP, r.skipped, "dedup.removed")
    return {"removed": removed, "removed_more": removed_more, "removed_more_kernels": removed_more_kernels,
            "removed_total": dd["removed_total"], "removed_by_config": nested(dd["removed_by_config"], 2),
            "removed_pct": pct(dd["removed_total"], r.m["counts"]["records_in"])}


def _near_duplicates(r: _Release) -> dict:
    near = r.m["near_duplicates"]
    out = {k: near[k] for k in ("threshold", "pairs", "within_split_pairs", "cross_split_pairs", "clusters")}
    for k in ("records_in_clusters", "largest_cluster"):
        out[k] = as_count(near[k])
        if near[k] is not None and as_count(near[k]) is None:
            r.skipped.append({"where": "near_duplicates", "name": k, "value": scalar(near[k])})
    in_clusters = out["records_in_clusters"]
    out["records_in_clusters_pct"] = None if in_clusters is None else pct(in_clusters, r.m["counts"]["records_out"])
    return out


def _throughput(r: _Release) -> dict:
    """Each input's run.json as the release carries it (null when not recorded; a value that is not
    a number is left out and listed under skipped)."""
    runs = []
    for i in r.m["inputs"]:
        run = as_dict(i.get("run"))
        path = cut(i["path"], 1000)
        got = {}
        for k, check in (("seconds", as_number), ("pairs_per_s", as_number), ("workers", as_count),
                         ("worker_peak_rss_mb", as_number), ("validate", as_bool)):
            got[k] = check(run.get(k))
            if run.get(k) is not None and got[k] is None:
                r.skipped.append({"where": f"{path}: run.json", "name": k, "value": scalar(run[k])})
        stages, stages_more = _stage_seconds(run, path, r.skipped)
        total = sum(stages.values()) if stages else None
        runs.append({"path": path, "target": i["target"], "records": i["records"], **got,
                     "stage_seconds": stages, "stages_more": stages_more,
                     "stage_pct": {k: pct_f(v, total) for k, v in stages.items()} if stages else None})
    return {"runs": runs}


def _stage_seconds(run: dict, path: str, skipped: list[dict]) -> tuple[dict | None, int]:
    """(the first TOP stages of a run.json's stage_seconds that are numbers, or None; how many more)."""
    if run.get("stage_seconds") is None:
        return None, 0
    raw = run["stage_seconds"]
    if not isinstance(raw, dict):
        skipped.append({"where": f"{path}: run.json", "name": "stage_seconds", "value": scalar(raw)})
        raw = {}
    stages, stages_more = {}, 0
    for k, v in raw.items():
        if as_number(v) is None:
            skipped.append({"where": f"{path}: run.json stage_seconds", "name": cut(str(k)), "value": scalar(v)})
        elif len(stages) < TOP:
            stages[cut(str(k))] = v
        else:
            stages_more += 1
    return stages or None, stages_more


# ---- from the shards ----

def _diversity(r: _Release) -> dict:
    """Distinct AST skeletons per family, from the shards' skeleton_hash column."""
    div = {}
    for config in r.configs:
        rows = r.rows.get(config, [])
        per = collections.defaultdict(set)
        n = collections.Counter()
        for row in rows:
            per[row["family"]].add(row["skeleton_hash"])
            n[row["family"]] += 1
        fams = {f: {"records": n[f], "skeletons": len(per[f]), "skeleton_pct": pct(len(per[f]), n[f])}
                for f in sorted(n)}
        total = len({row["skeleton_hash"] for row in rows})
        div[config] = {"families": fams, "family_count": len(fams), "skeletons": total,
                       "skeleton_pct": pct(total, len(rows))}
    ranked = sorted(((v["skeleton_pct"], c, f) for c in r.configs for f, v in div[c]["families"].items()))
    return {"configs": div, "lowest": [{"config": c, "family": f, "skeleton_pct": p} for p, c, f in ranked[:3]]}


def _gradient(r: _Release) -> dict:
    """The gradient check and branch coverage per family, from the shards' checks and coverage columns."""
    grad = {}
    for config in r.configs:
        per = collections.defaultdict(lambda: {"passed": 0, "failed": 0, "inconclusive": 0, "not_run": 0,
                                               "branch_outcomes": 0, "branch_outcomes_taken": 0, "second_launch": 0})
        for row in r.rows.get(config, []):
            d = per[row["family"]]
            d[row["backward"]] += 1
            d["branch_outcomes"] += row["branch_outcomes"]
            d["branch_outcomes_taken"] += row["branch_taken"]
            d["second_launch"] += row["launches"] > 1
        for d in per.values():
            d["branch_coverage_pct"] = (pct(d["branch_outcomes_taken"], d["branch_outcomes"]) if d["branch_outcomes"]
                                        else None)
        grad[config] = dict(sorted(per.items()))
    return {"configs": grad}


def _lengths(r: _Release) -> dict:
    """Lengths per config and field, and the IR field with the most median tokens per config."""
    lengths = {config: {f: {k: summary(v) for k, v in per.items()} for f, per in r.measured[config].items()}
               for config in r.configs}
    longest = {config: max(ir_fields(r.archs), key=lambda f: (lengths[config][f]["tokens"]["p50"], f))
               for config in r.configs}
    return {"token_proxy": TOKEN_PROXY, "configs": lengths, "longest_target_by_median_tokens": longest}


def _ptx_by_family(r: _Release) -> dict:
    ptx = f"ptx_{r.archs[0]}"
    ptx_fam = {}
    for config in r.configs:
        by = collections.defaultdict(list)
        for row, nlines in zip(r.rows.get(config, []), r.measured[config][ptx]["lines"]):
            by[row["family"]].append(nlines)
        ptx_fam[config] = {f: summary(v) for f, v in sorted(by.items())}
    return {"field": ptx, "unit": "lines", "configs": ptx_fam}


def _training(r: _Release) -> dict:
    """Training tasks: tokens of prompt + answer per record; a context that holds p99."""
    rec = {}
    for config in r.configs:
        rec[config] = {}
        for task, fields in tasks(r.archs).items():
            per = [sum(r.measured[config][f]["tokens"][k] for f in fields) for k in range(len(r.rows.get(config, [])))]
            s = summary(per)
            ctx = next_pow2(s["p99"])
            s.update(context=ctx, fits_pct=pct(sum(x <= ctx for x in per), len(per)))
            rec[config][task] = s
    return {"tasks": {t: f for t, f in tasks(r.archs).items()}, "configs": rec}
