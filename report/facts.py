"""The facts of a release: every number the report states, computed from manifest.json and the
Parquet shards. The report renders these and nothing else; `facts.json` holds them with the
place each section comes from (`sources`).

Lengths are measured per field and per config: characters, lines, and a token proxy (the count
of regex `TOKEN_PROXY` matches: identifier/number runs and single punctuation characters; no
tokenizer is assumed). Percentiles are nearest-rank, so each is a value some record has.
"""

from __future__ import annotations

import array
import collections
import json
import math
import os
import re
import sys

import jsonschema

import schemas
from schemas.dataset_format import RELEASE_KIND
from tools.release_format import open_parquet, row_groups

TOKEN_PROXY = r"\w+|[^\w\s]"
_TOKEN = re.compile(TOKEN_PROXY)
PERCENTILES = (50, 90, 99)
IO_FIELDS = ("inputs", "outputs")


class ReleaseError(Exception):
    """Why a directory cannot be reported on (one line)."""


def ir_fields(archs: list[str]) -> list[str]:
    return (["ir_cpp_forward", "ir_cpp_backward", "ir_cuda_forward", "ir_cuda_backward"]
            + [f"ptx_{a}" for a in sorted(archs)])


def load_release(dist: str, shown: str) -> tuple[dict, dict[str, list[dict]], dict]:
    """The manifest (schema-checked), the rows of every Parquet shard per config sorted by
    (id, kernel_name) and, per config and field, the chars, lines and tokens of each row in that
    order. The shards are read one row group at a
    time and each row is kept as its small fields only (`light_row`: what the facts count, and
    where the row lies for `fetch`), so the report holds no text but the samples'."""
    if not os.path.isdir(dist):
        raise ReleaseError(f"{shown}: not a directory")
    path = os.path.join(dist, "manifest.json")
    if not os.path.isfile(path):
        raise ReleaseError(f"{shown}: no manifest.json (not a release directory)")
    try:
        with open(path, encoding="utf-8") as f:
            m = json.load(f)
    except (OSError, ValueError) as e:
        raise ReleaseError(f"{shown}/manifest.json: unreadable ({type(e).__name__}: {e})") from None
    if not isinstance(m, dict) or m.get("kind") != RELEASE_KIND:
        raise ReleaseError(f"{shown}/manifest.json: not a release manifest (kind is not {RELEASE_KIND})")
    errors = sorted(jsonschema.Draft202012Validator(schemas.load("manifest")).iter_errors(m), key=lambda e: list(e.path))
    if errors:
        e = errors[0]
        raise ReleaseError(f"{shown}/manifest.json: breaks the manifest schema at "
                           f"{'/'.join(map(str, e.path)) or '(root)'}: {e.message[:200]}")
    fields = measured_fields(sorted(m["toolchain"]["ptx_archs"]))
    rows: dict[str, list[dict]] = collections.defaultdict(list)
    # per config and field: the chars, lines and tokens of each row in read order, as machine
    # integers (a dict of tuples per row cost about 600 bytes a row, 12 MB at 20,000 records)
    sizes: dict[str, dict] = collections.defaultdict(lambda: {k: (array.array("q"), array.array("q"),
                                                                  array.array("q")) for k in fields})
    for f in m["files"]:
        if not f["path"].endswith(".parquet"):
            continue
        n = 0
        for group in _row_groups(os.path.join(dist, f["path"]), f"{shown}/{f['path']}"):
            for row in group:
                rows[f["config"]].append(light_row(row, f["path"], n))
                per = sizes[f["config"]]
                for k in fields:
                    chars, nlines, ntokens = per[k]
                    chars.append(len(row[k]))
                    nlines.append(lines(row[k]))
                    ntokens.append(tokens(row[k]))
                n += 1
        if n != f["rows"]:
            raise ReleaseError(f"{shown}/{f['path']}: {n} rows, manifest.json says {f['rows']}")
    measured = {}
    for config in rows:
        order = sorted(range(len(rows[config])), key=lambda k: (rows[config][k]["id"], rows[config][k]["kernel_name"]))
        rows[config] = [rows[config][k] for k in order]
        measured[config] = {field: {unit: [sizes[config][field][u][k] for k in order]
                                    for u, unit in enumerate(("chars", "lines", "tokens"))} for field in fields}
        del sizes[config]
    for config, c in m["counts"]["configs"].items():
        got = collections.Counter((r["family"], r["split"]) for r in rows.get(config, []))
        want = {(fam, s): n for fam, v in c["families"].items() for s, n in v.items() if s != "total" and n}
        if dict(got) != want:
            raise ReleaseError(f"{shown}: the {config} shards' counts per family and split differ from "
                               "manifest.json (run //tools:verify)")
    return m, dict(rows), measured


def _row_groups(path: str, shown: str):
    """The rows of a Parquet file one row group at a time; a missing or damaged file is a ReleaseError."""
    try:
        yield from row_groups(open_parquet(path))
    except Exception as e:  # missing or damaged: pyarrow raises several types
        raise ReleaseError(f"{shown}: not a readable Parquet file ({type(e).__name__})") from None


def light_row(row: dict, path: str, index: int) -> dict:
    """What the facts need of a row (the text fields are measured, not kept), and where it is:
    row `index` of the file `path`."""
    cov = json.loads(row["coverage"])
    # the few distinct strings (family, split, status, file) are shared, not one copy per row
    return {"id": row["id"], "family": sys.intern(row["family"]), "kernel_name": row["kernel_name"], "seed": row["seed"],
            "split": sys.intern(row["split"]), "skeleton_hash": row["skeleton_hash"],
            "backward": sys.intern(json.loads(row["checks"])["execute_backward_cpu"]["status"]),
            "branch_outcomes": cov["outcomes"], "branch_taken": cov["taken"],
            "launches": len(cov["launch_dims"]), "at": (sys.intern(path), index)}


def fetch(dist: str, r: dict, columns: list[str]) -> dict:
    """The `columns` of the row that the light row `r` stands for, read from its row group."""
    path, index = r["at"]
    pf = open_parquet(os.path.join(dist, path))
    start = 0
    for k in range(pf.num_row_groups):
        n = pf.metadata.row_group(k).num_rows
        if index < start + n:
            return pf.read_row_group(k, columns=columns, use_threads=False).slice(index - start, 1).to_pylist()[0]
        start += n
    raise ReleaseError(f"{path}: has no row {index}")


def tokens(text: str) -> int:
    return len(_TOKEN.findall(text))


def lines(text: str) -> int:
    """Lines as an editor counts them: a final newline ends the last line, it does not start one."""
    return len(_split_lines(text))


def _split_lines(text: str) -> list[str]:
    parts = text.split("\n")
    if parts and parts[-1] == "":
        parts.pop()
    return parts


def percentile(values: list[int], p: int) -> int:
    """Nearest-rank percentile of integers (a value that occurs)."""
    s = sorted(values)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def summary(values: list[int]) -> dict:
    out = {f"p{p}": percentile(values, p) for p in PERCENTILES}
    out["max"] = max(values)
    return out


def pct(a: int, b: int) -> float | None:
    return round(100 * a / b, 1) if b else None


def next_pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def measured_fields(archs: list[str]) -> list[str]:
    """The fields whose chars, lines and tokens are measured per record (for facts and plots)."""
    return ["source"] + ir_fields(archs) + list(IO_FIELDS)


def tasks(archs: list[str]) -> dict[str, list[str]]:
    """Training tasks and the fields one example of each holds (the prompt and the answer)."""
    ptx = f"ptx_{sorted(archs)[0]}"
    return {"python_to_cpp_forward": ["source", "ir_cpp_forward"],
            "python_to_cpp_forward_backward": ["source", "ir_cpp_forward", "ir_cpp_backward"],
            "python_to_cuda_forward": ["source", "ir_cuda_forward"],
            "python_to_cuda_forward_backward": ["source", "ir_cuda_forward", "ir_cuda_backward"],
            f"python_to_{ptx}": ["source", ptx],
            "execution_prediction": ["source", "inputs", "outputs"]}


def build(m: dict, rows: dict[str, list[dict]], measured: dict, samples: int, excerpt_lines: int, dist: str) -> dict:
    """Every fact, from the manifest, the light rows and the measurements of `load_release`; the
    samples' text is fetched from the release `dist`."""
    archs = sorted(m["toolchain"]["ptx_archs"])
    configs = sorted(m["counts"]["configs"])
    facts, sources = {}, {}

    tc = m["toolchain"]
    facts["release"] = {
        "version": m["version"], "record_schema_version": m["record_schema_version"],
        "manifest_version": m["manifest_version"], "command": m["command"], "license": m["license"],
        "warp_lang": tc.get("warp_lang"), "nvrtc": tc.get("nvrtc"), "cuda_toolkit": tc.get("cuda_toolkit"),
        "llvm": tc.get("llvm"),
        "optimization_level": ((tc.get("cuda") or {}).get("compiler") or {}).get("optimization_level"),
        "cpu_optimization_level": ((tc.get("cpu") or {}).get("compiler") or {}).get("optimization_level"),
        "ptx_archs": archs,
        "chunk_sizes": sorted({i["generator"].get("chunk_size") for i in m["inputs"]} - {None}),
        "configs": configs, "columns": len(m["columns"]),
        "data_bytes": sum(f["bytes"] for f in m["files"] if f["path"].endswith(".parquet")),
        "parquet_files": sum(1 for f in m["files"] if f["path"].endswith(".parquet")),
    }
    sources["release"] = "manifest.json: version, toolchain, inputs[].generator.chunk_size, columns, files"

    counts = {"records_in": m["counts"]["records_in"], "records_out": m["counts"]["records_out"], "configs": {}}
    for config in configs:
        c = m["counts"]["configs"][config]
        counts["configs"][config] = {
            "records": c["records"], "splits": dict(c["splits"]), "skeletons": dict(c["skeletons"]),
            "families": {f: dict(v) for f, v in c["families"].items()}, "family_count": len(c["families"]),
            "split_pct": {s: pct(n, c["records"]) for s, n in c["splits"].items()},
        }
    counts["family_count"] = sum(v["family_count"] for v in counts["configs"].values())
    facts["counts"] = counts
    sources["counts"] = "manifest.json: counts (records per config, split and family; skeletons per split)"

    # generation (inputs) and release-stage removals
    gen = {"inputs": [], "reasons": {}}
    for i in m["inputs"]:
        cnt = i["counts"]
        gen["inputs"].append({"path": i["path"], "target": i["target"], "seed": i["generator"]["seed"],
                              "attempted": cnt.get("attempted"), "passed": cnt.get("passed"),
                              "rejected": cnt.get("rejected"), "records": i["records"],
                              "pass_pct": pct(cnt.get("passed", 0), cnt.get("attempted", 0)),
                              "rejects_by_reason": dict(sorted(i["rejects_by_reason"].items()))})
        for reason, n in i["rejects_by_reason"].items():
            gen["reasons"][reason] = gen["reasons"].get(reason, 0) + n
    gen["reasons"] = dict(sorted(gen["reasons"].items()))
    gen["attempted"] = sum(x["attempted"] or 0 for x in gen["inputs"])
    gen["rejected"] = sum(x["rejected"] or 0 for x in gen["inputs"])
    gen["passed"] = sum(x["passed"] or 0 for x in gen["inputs"])
    gen["pass_pct"] = pct(gen["passed"], gen["attempted"])
    facts["generation"] = gen
    sources["generation"] = "manifest.json: inputs[].counts, inputs[].rejects_by_reason"

    val = m["validation"]
    checks = sorted({k for v in val["verdicts"].values() for k in v})
    facts["validation"] = {"checks": checks, "verdicts": val["verdicts"], "gpu_executed": val["gpu_executed"],
                           "gpu_execution": val["gpu_execution"], "notes": val["notes"]}
    sources["validation"] = "manifest.json: validation"

    dd, near = m["dedup"], m["near_duplicates"]
    facts["dedup"] = {"removed": dict(dd["removed"]), "removed_total": dd["removed_total"],
                      "removed_by_config": dd["removed_by_config"],
                      "removed_pct": pct(dd["removed_total"], m["counts"]["records_in"])}
    facts["near_duplicates"] = {k: near[k] for k in ("threshold", "pairs", "within_split_pairs", "cross_split_pairs",
                                                     "clusters", "records_in_clusters", "largest_cluster")}
    facts["near_duplicates"]["records_in_clusters_pct"] = pct(near["records_in_clusters"], m["counts"]["records_out"])
    sources["dedup"] = "manifest.json: dedup"
    sources["near_duplicates"] = "manifest.json: near_duplicates"

    # diversity: distinct AST skeletons per family, from the shards' skeleton_hash column
    div = {}
    for config in configs:
        per = collections.defaultdict(set)
        n = collections.Counter()
        for r in rows.get(config, []):
            per[r["family"]].add(r["skeleton_hash"])
            n[r["family"]] += 1
        fams = {f: {"records": n[f], "skeletons": len(per[f]), "skeleton_pct": pct(len(per[f]), n[f])} for f in sorted(n)}
        total = len({r["skeleton_hash"] for r in rows.get(config, [])})
        div[config] = {"families": fams, "skeletons": total, "skeleton_pct": pct(total, len(rows.get(config, [])))}
    ranked = sorted(((v["skeleton_pct"], c, f) for c in configs for f, v in div[c]["families"].items()))
    facts["diversity"] = {"configs": div,
                          "lowest": [{"config": c, "family": f, "skeleton_pct": p} for p, c, f in ranked[:3]]}
    sources["diversity"] = "Parquet shards: distinct skeleton_hash per config and family"

    # the gradient check and branch coverage per family, from the shards' checks and coverage columns
    grad = {}
    for config in configs:
        per = collections.defaultdict(lambda: {"passed": 0, "failed": 0, "inconclusive": 0, "not_run": 0,
                                               "branch_outcomes": 0, "branch_outcomes_taken": 0, "second_launch": 0})
        for r in rows.get(config, []):
            d = per[r["family"]]
            d[r["backward"]] += 1
            d["branch_outcomes"] += r["branch_outcomes"]
            d["branch_outcomes_taken"] += r["branch_taken"]
            d["second_launch"] += r["launches"] > 1
        for d in per.values():
            d["branch_coverage_pct"] = pct(d["branch_outcomes_taken"], d["branch_outcomes"]) if d["branch_outcomes"] else None
        grad[config] = dict(sorted(per.items()))
    facts["gradient"] = {"configs": grad}
    sources["gradient"] = "Parquet shards: checks.execute_backward_cpu status and coverage per config and family"

    # lengths per config and field
    lengths = {config: {f: {k: summary(v) for k, v in per.items()} for f, per in measured[config].items()}
               for config in configs}
    longest = {config: max(ir_fields(archs), key=lambda f: (lengths[config][f]["tokens"]["p50"], f)) for config in configs}
    facts["lengths"] = {"token_proxy": TOKEN_PROXY, "configs": lengths, "longest_target_by_median_tokens": longest}
    sources["lengths"] = (f"Parquet shards: characters, lines and tokens (regex {TOKEN_PROXY} matches) per field; "
                          "nearest-rank percentiles")

    # PTX size by family
    ptx = f"ptx_{archs[0]}"
    ptx_fam = {}
    for config in configs:
        by = collections.defaultdict(list)
        for r, nlines in zip(rows.get(config, []), measured[config][ptx]["lines"]):
            by[r["family"]].append(nlines)
        ptx_fam[config] = {f: summary(v) for f, v in sorted(by.items())}
    facts["ptx_by_family"] = {"field": ptx, "unit": "lines", "configs": ptx_fam}
    sources["ptx_by_family"] = f"Parquet shards: lines of {ptx} per config and family"

    # training tasks: tokens of prompt + answer per record; a context that holds p99
    rec = {}
    for config in configs:
        rec[config] = {}
        for task, fields in tasks(archs).items():
            per = [sum(measured[config][f]["tokens"][k] for f in fields) for k in range(len(rows.get(config, [])))]
            s = summary(per)
            ctx = next_pow2(s["p99"])
            s.update(context=ctx, fits_pct=pct(sum(x <= ctx for x in per), len(per)))
            rec[config][task] = s
    facts["training"] = {"tasks": {t: f for t, f in tasks(archs).items()}, "configs": rec}
    sources["training"] = ("Parquet shards: token proxy of the task's fields summed per record; context = the "
                           "smallest power of two at or above p99; fits_pct = share of records within it")

    # throughput: each input's run.json as the release carries it (null when not recorded)
    runs = []
    for i in m["inputs"]:
        run = i.get("run") or {}
        stages = run.get("stage_seconds")
        total = sum(stages.values()) if stages else None
        runs.append({"path": i["path"], "target": i["target"], "records": i["records"],
                     "seconds": run.get("seconds"), "pairs_per_s": run.get("pairs_per_s"),
                     "workers": run.get("workers"), "validate": run.get("validate"),
                     "worker_peak_rss_mb": run.get("worker_peak_rss_mb"),
                     "stage_seconds": stages, "stage_pct": {k: pct_f(v, total) for k, v in stages.items()} if stages else None})
    facts["throughput"] = {"runs": runs}
    sources["throughput"] = "manifest.json: inputs[].run (the generator's run.json; null where not recorded)"

    facts["samples"] = pick_samples(rows, configs, archs, samples, excerpt_lines, dist)
    sources["samples"] = "Parquet shards: the first record by id of each chosen family; excerpts are the first lines verbatim"
    return {"facts": facts, "sources": sources}


def pct_f(a: float, b: float | None) -> float | None:
    return round(100 * a / b, 1) if b else None


def sample_fields(config: str, archs: list[str]) -> list[str]:
    if config == "cpu":
        return ["source", "ir_cpp_forward"]
    return ["source", "ir_cuda_forward", f"ptx_{sorted(archs)[0]}"]


def pick_samples(rows: dict[str, list[dict]], configs: list[str], archs: list[str], n: int, excerpt_lines: int,
                 dist: str) -> dict:
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
        fields = {}
        text = fetch(dist, r, sample_fields(config, archs))
        for f in sample_fields(config, archs):
            text_lines = _split_lines(text[f])
            fields[f] = {"excerpt": "\n".join(text_lines[:excerpt_lines]), "lines_total": lines(text[f]),
                         "lines_shown": min(lines(text[f]), excerpt_lines)}
        chosen.append({"config": config, "family": family, "id": r["id"], "kernel_name": r["kernel_name"],
                       "seed": r["seed"], "split": r["split"], "fields": fields})
    return {"excerpt_lines": excerpt_lines, "records": chosen}
