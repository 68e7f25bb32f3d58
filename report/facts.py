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
import contextlib
import json
import math
import os
import re
import sys

import schemas
from runtime.process import Terminated
from schemas import files
from schemas.dataset_format import RELEASE_KIND, release_file_problems
from schemas.files import quote

TOKEN_PROXY = r"\w+|[^\w\s]"
_TOKEN = re.compile(TOKEN_PROXY)
PERCENTILES = (50, 90, 99)
IO_FIELDS = ("inputs", "outputs")


class ReleaseError(Exception):
    """Why a directory cannot be reported on (one line, untrusted parts already quoted)."""


# caps: what the report shows of a long list, and of a long cell (facts.json holds them as "limits")
TOP = 50  # reasons, stages, bars of a plot, checks per config
TABLE_ROWS = 200  # rows of a table per config (families)
EXCERPT_BYTES = 64 << 10  # a sample excerpt, in UTF-8 bytes, on top of --excerpt-lines
NAME_CHARS = 200  # a reason or name as facts.json keeps it
VALUE_CHARS = 1000  # a note or other string value as facts.json keeps it
LIGHT_COLUMNS = ("id", "family", "kernel_name", "seed", "split", "skeleton_hash", "checks", "coverage")
STATUSES = ("passed", "failed", "inconclusive", "not_run")
SPLIT_NAMES = ("train", "validation", "test")


def ir_fields(archs: list[str]) -> list[str]:
    return (["ir_cpp_forward", "ir_cpp_backward", "ir_cuda_forward", "ir_cuda_backward"]
            + [f"ptx_{a}" for a in sorted(archs)])


def load_release(dist: str, shown: str) -> tuple[dict, dict[str, list[dict]], dict]:
    """The manifest (schema-checked), the rows of every Parquet shard per config sorted by
    (id, kernel_name) and, per config and field, the chars, lines and tokens of each row in that
    order. The shards are read one row group at a
    time and each row is kept as its small fields only (`light_row`: what the facts count, and
    where the row lies for `fetch`), so the report holds no text but the samples'.

    Every file is hostile: manifest.json is read by `schemas.files.read_json` (a regular file, no
    link followed, no FIFO waited on, size and nesting capped before decoding); only the Parquet
    files it lists are opened, each by `open_shard` (the same rule, then its footer checked against
    the caps before a row group is decompressed)."""
    raw, shown = shown, quote(shown)
    if not os.path.isdir(dist):
        raise ReleaseError(f"{shown}: not a directory")
    path = os.path.join(dist, "manifest.json")
    if not os.path.lexists(path):
        raise ReleaseError(f"{shown}: no manifest.json (not a release directory)")
    try:
        m = files.read_json(path, f"{raw}/manifest.json")
    except files.FileRefused as e:
        raise ReleaseError(str(e)) from None
    if not isinstance(m, dict) or m.get("kind") != RELEASE_KIND:
        raise ReleaseError(f"{shown}/manifest.json: not a release manifest (kind is not {RELEASE_KIND})")
    errors = sorted(schemas.validator(schemas.load("manifest")).iter_errors(m), key=lambda e: list(map(str, e.path)))
    if errors:
        e = errors[0]
        raise ReleaseError(f"{shown}/manifest.json: breaks the manifest schema at "
                           f"{quote('/'.join(map(str, e.path)) or '(root)', 100)}: {quote(e.message, 200)}")
    problems = release_file_problems(dist, m)  # the one file rule verify and the validator apply
    if problems:
        more = f" (and {len(problems) - 1} more; run //tools:verify)" if len(problems) > 1 else ""
        raise ReleaseError(f"{shown}: {problems[0]}{more}")
    archs = sorted(set(m["toolchain"]["ptx_archs"]))
    if not archs:
        raise ReleaseError(f"{shown}/manifest.json: toolchain.ptx_archs is empty")
    fields = measured_fields(archs)
    rows: dict[str, list[dict]] = collections.defaultdict(list)
    # per config and field: the chars, lines and tokens of each row in read order, as machine
    # integers (a dict of tuples per row cost about 600 bytes a row, 12 MB at 20,000 records)
    sizes: dict[str, dict] = collections.defaultdict(lambda: {k: (array.array("q"), array.array("q"),
                                                                  array.array("q")) for k in fields})
    want_schema = arrow_schema(archs)
    for f in m["files"]:
        if not f["path"].endswith(".parquet"):
            continue
        rel = f["path"]
        where = f"{shown}/{quote(rel)}"
        n = 0
        with open_shard(dist, rel, raw, want_schema, f) as pf:
            for k in range(pf.num_row_groups):
                table = pf.read_row_group(k, columns=list(LIGHT_COLUMNS) + fields, use_threads=False)
                light = table.select(list(LIGHT_COLUMNS)).to_pylist()
                for i, row in enumerate(light):
                    rows[f["config"]].append(light_row(row, rel, n + i, where))
                per = sizes[f["config"]]
                for field in fields:
                    chars, nlines, ntokens = per[field]
                    for i, text in enumerate(table.column(field).to_pylist()):
                        if not isinstance(text, str):
                            raise ReleaseError(f"{where}: row {n + i} (id {quote(light[i]['id'], 80)}): "
                                               f"{field} is null")
                        chars.append(len(text))
                        nlines.append(lines(text))
                        ntokens.append(tokens(text))
                n += table.num_rows
                del table, light
        if n != f["rows"]:
            raise ReleaseError(f"{where}: {n} rows, manifest.json says {f['rows']}")
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
    for config in rows:
        if config not in m["counts"]["configs"]:
            raise ReleaseError(f"{shown}: shards of config {config} that manifest.json does not count")
    return m, dict(rows), measured


def arrow_schema(archs: list[str]):
    """The release's Arrow schema, as //tools:release writes it."""
    from tools.release_format import arrow_schema as schema_of

    return schema_of(archs)


@contextlib.contextmanager
def open_shard(dist: str, rel: str, shown: str, want_schema=None, entry: dict | None = None):
    """The listed Parquet file `rel` of `dist` (`shown` as the user named it, unquoted) as a
    pyarrow ParquetFile over a file descriptor
    opened by the file rule (`schemas.files.open_regular`: a regular file, no link followed, a
    FIFO never waited on), refused (ReleaseError, one line) unless its size is the manifest's,
    its footer reads, its columns are the release's and `schemas.files.parquet_too_large` finds
    nothing over the caps: checked before any row group is decompressed."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    where = quote(f"{shown}/{rel}")
    try:
        f = files.open_regular(os.path.join(dist, rel), f"{shown}/{rel}")
    except files.FileRefused as e:
        raise ReleaseError(str(e)) from None
    with f:
        size = os.fstat(f.fileno()).st_size
        if entry is not None and size != entry["bytes"]:
            raise ReleaseError(f"{where}: {size} bytes, manifest.json says {entry['bytes']} (run //tools:verify)")
        try:
            pf = pq.ParquetFile(f)
        except Terminated:
            raise
        except Exception as e:  # a damaged footer: pyarrow raises several types
            raise ReleaseError(f"{where}: not a readable Parquet file ({type(e).__name__})") from None
        try:
            too_large = files.parquet_too_large(pf)
            if too_large:
                raise ReleaseError(f"{where}: refused: {too_large}")
            if want_schema is not None:
                have = pf.schema_arrow
                for field in want_schema:
                    k = have.get_field_index(field.name)
                    if k < 0 or not have.field(k).type.equals(field.type):
                        raise ReleaseError(f"{where}: column {field.name} is missing or not {field.type}")
            if entry is not None and pf.metadata.num_rows != entry["rows"]:
                raise ReleaseError(f"{where}: {pf.metadata.num_rows} rows, manifest.json says {entry['rows']}")
            yield pf
        except ReleaseError:
            raise
        except (OSError, ValueError, TypeError, KeyError, IndexError, MemoryError, pa.ArrowException) as e:
            # a damaged row group: pyarrow raises several types
            raise ReleaseError(f"{where}: not a readable Parquet file ({type(e).__name__})") from None
        finally:
            pf.close()


def _json_cell(row: dict, column: str, where: str, index: int):
    raw = row[column]
    if not isinstance(raw, str):
        raise ReleaseError(f"{where}: row {index} (id {quote(row['id'], 80)}): {column} is null")
    value, why = files.decode_json(raw.encode("utf-8", "surrogatepass"))
    if why:
        raise ReleaseError(f"{where}: row {index} (id {quote(row['id'], 80)}): {column} is not JSON ({why})")
    return value


def light_row(row: dict, path: str, index: int, where: str = "") -> dict:
    """What the facts need of a row (the text fields are measured, not kept), and where it is:
    row `index` of the file `path`. A row whose small fields are not what a release writes is a
    ReleaseError naming it (its id quoted)."""
    where = where or quote(path)
    for k in ("id", "family", "kernel_name", "split", "skeleton_hash"):
        if not isinstance(row[k], str):
            raise ReleaseError(f"{where}: row {index} (id {quote(row['id'], 80)}): {k} is null")
    if not isinstance(row["seed"], int):
        raise ReleaseError(f"{where}: row {index} (id {quote(row['id'], 80)}): seed is null")
    cov = _json_cell(row, "coverage", where, index)
    checks = _json_cell(row, "checks", where, index)
    backward = checks.get("execute_backward_cpu") if isinstance(checks, dict) else None
    status = backward.get("status") if isinstance(backward, dict) else None
    if status not in STATUSES:
        raise ReleaseError(f"{where}: row {index} (id {quote(row['id'], 80)}): checks.execute_backward_cpu.status "
                           f"is not one of {', '.join(STATUSES)}")
    if not (isinstance(cov, dict) and _count(cov.get("outcomes")) is not None and _count(cov.get("taken")) is not None
            and isinstance(cov.get("launch_dims"), list)):
        raise ReleaseError(f"{where}: row {index} (id {quote(row['id'], 80)}): coverage lacks outcomes, taken "
                           "or launch_dims")
    if row["split"] not in SPLIT_NAMES:
        raise ReleaseError(f"{where}: row {index} (id {quote(row['id'], 80)}): split is not one of "
                           f"{', '.join(SPLIT_NAMES)}")
    # the few distinct strings (family, split, status, file) are shared, not one copy per row
    return {"id": row["id"], "family": sys.intern(row["family"]), "kernel_name": row["kernel_name"], "seed": row["seed"],
            "split": sys.intern(row["split"]), "skeleton_hash": row["skeleton_hash"],
            "backward": sys.intern(status), "branch_outcomes": cov["outcomes"], "branch_taken": cov["taken"],
            "launches": len(cov["launch_dims"]), "at": (sys.intern(path), index)}


def fetch(dist: str, r: dict, columns: list[str], shown: str = "") -> dict:
    """The `columns` of the row that the light row `r` stands for, read from its row group (the
    file opened again by `open_shard`)."""
    path, index = r["at"]
    with open_shard(dist, path, shown or dist) as pf:
        start = 0
        for k in range(pf.num_row_groups):
            n = pf.metadata.row_group(k).num_rows
            if index < start + n:
                return pf.read_row_group(k, columns=columns, use_threads=False).slice(index - start, 1).to_pylist()[0]
            start += n
    raise ReleaseError(f"{quote(path)}: has no row {index}")


# ---- values of the manifest that its schema leaves open (counts, run.json, notes, verdicts) ----

def _count(x) -> int | None:
    """`x` when it is a count (an integer >= 0, not a bool); else None."""
    return x if isinstance(x, int) and not isinstance(x, bool) and x >= 0 else None


def _number(x) -> float | int | None:
    """`x` when it is a finite number >= 0 (not a bool; JSON's NaN and Infinity are not); else None."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return x if math.isfinite(x) and x >= 0 else None


def _bool(x) -> bool | None:
    return x if isinstance(x, bool) else None


def _dict(x) -> dict:
    return x if isinstance(x, dict) else {}


def _dig(x, *keys):
    for k in keys:
        x = _dict(x).get(k)
    return x


def _scalar(x):
    """A JSON leaf as the report shows it: a number, a bool, null or a string (cut); anything
    else as its JSON text, cut."""
    if x is None or isinstance(x, (bool, int)) or (isinstance(x, float) and math.isfinite(x)):
        return x
    text = x if isinstance(x, str) else json.dumps(x, sort_keys=True, default=str)[:VALUE_CHARS + 1]
    return _cut(text, VALUE_CHARS)


def _cut(text: str, limit: int = NAME_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def top_counts(d, limit: int = TOP, skipped: list | None = None, where: str = "") -> tuple[dict, int, int]:
    """(the `limit` largest counts of the mapping `d` by (-count, name), names cut to NAME_CHARS
    (names equal once cut are summed); how many more names there are; their kernels). A value that
    is not a count is left out, and noted in `skipped`."""
    good = []
    for k, v in _dict(d).items():
        n = _count(v)
        if n is None:
            if skipped is not None:
                skipped.append({"where": where, "name": _cut(str(k)), "value": _scalar(v)})
            continue
        good.append((-n, k))
    good.sort()
    top: dict = {}
    for n, k in good[:limit]:
        key = _cut(k)
        top[key] = top.get(key, 0) - n
    return top, max(0, len(good) - limit), -sum(n for n, _ in good[limit:])


def _nested(d, depth: int, limit: int = TOP):
    """The mapping `d` with at most `limit` keys per level, `depth` levels of mappings, names cut
    and leaves as `_scalar` (verdicts, notes, gpu_execution as the report shows them)."""
    if depth == 0 or not isinstance(d, dict):
        if isinstance(d, list):
            return [_scalar(x) for x in d[:limit]]
        return _scalar(d)
    return {_cut(str(k)): _nested(v, depth - 1, limit) for k, v in list(d.items())[:limit]}


def tokens(text: str) -> int:
    """Matches of TOKEN_PROXY; a large cell's are counted without a list of them."""
    if len(text) <= 1 << 16:
        return len(_TOKEN.findall(text))
    n = 0
    for _ in _TOKEN.finditer(text):
        n += 1
    return n


def lines(text: str) -> int:
    """Lines as an editor counts them: a final newline ends the last line, it does not start one."""
    return text.count("\n") + (1 if text and not text.endswith("\n") else 0)


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


def build(m: dict, rows: dict[str, list[dict]], measured: dict, samples: int, excerpt_lines: int, dist: str,
          shown: str = "") -> dict:
    """Every fact, from the manifest, the light rows and the measurements of `load_release`; the
    samples' text is fetched from the release `dist`. What the manifest's schema leaves open
    (counts of an input, rejects by reason, run.json, notes, verdicts) is taken only where it has
    the expected type; anything else is left out and listed under `skipped`. Long lists keep
    their TOP largest entries and say how many more there are."""
    archs = sorted(set(m["toolchain"]["ptx_archs"]))
    configs = sorted(m["counts"]["configs"])
    facts, sources = {}, {}
    skipped: list[dict] = []
    facts["limits"] = {"top": TOP, "table_rows": TABLE_ROWS, "excerpt_bytes": EXCERPT_BYTES, "name_chars": NAME_CHARS,
                       "value_chars": VALUE_CHARS}
    sources["limits"] = "report/facts.py: how much of a long list or cell the report shows"

    tc = m["toolchain"]
    facts["release"] = {
        "version": m["version"], "record_schema_version": _cut(m["record_schema_version"]),
        "manifest_version": m["manifest_version"], "command": _cut(m["command"], 1000), "license": _cut(m["license"]),
        "warp_lang": _scalar(tc.get("warp_lang")), "nvrtc": _scalar(tc.get("nvrtc")),
        "cuda_toolkit": _scalar(tc.get("cuda_toolkit")), "llvm": _scalar(tc.get("llvm")),
        "optimization_level": _scalar(_dig(tc, "cuda", "compiler", "optimization_level")),
        "cpu_optimization_level": _scalar(_dig(tc, "cpu", "compiler", "optimization_level")),
        "ptx_archs": archs,
        "chunk_sizes": sorted({n for i in m["inputs"] for n in [_count(i["generator"].get("chunk_size"))]
                               if n is not None})[:TOP],
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

    # generation (inputs) and release-stage removals: the TOP reasons by kernels, and how many more
    gen = {"inputs": []}
    every: collections.Counter = collections.Counter()
    for i in m["inputs"]:
        cnt = _dict(i["counts"])
        path = _cut(i["path"], 1000)
        for k in ("attempted", "passed", "rejected"):
            if k in cnt and _count(cnt[k]) is None:
                skipped.append({"where": f"{path}: counts", "name": k, "value": _scalar(cnt[k])})
        attempted, passed, rejected = (_count(cnt.get(k)) for k in ("attempted", "passed", "rejected"))
        reasons = _dict(i["rejects_by_reason"])
        top, more, more_kernels = top_counts(reasons, TOP, skipped, f"{path}: rejects_by_reason")
        gen["inputs"].append({"path": path, "target": i["target"], "seed": _scalar(i["generator"]["seed"]),
                              "attempted": attempted, "passed": passed, "rejected": rejected, "records": i["records"],
                              "pass_pct": pct(passed or 0, attempted or 0),
                              "rejects_by_reason": top, "reasons_more": more, "reasons_more_kernels": more_kernels})
        for reason, n in reasons.items():
            if _count(n) is not None:
                every[reason] += n
    gen["reasons"], gen["reasons_more"], gen["reasons_more_kernels"] = top_counts(every, TOP)
    gen["reasons_distinct"] = len(every)
    del every
    gen["attempted"] = sum(x["attempted"] or 0 for x in gen["inputs"])
    gen["rejected"] = sum(x["rejected"] or 0 for x in gen["inputs"])
    gen["passed"] = sum(x["passed"] or 0 for x in gen["inputs"])
    gen["pass_pct"] = pct(gen["passed"], gen["attempted"])
    facts["generation"] = gen
    sources["generation"] = "manifest.json: inputs[].counts, inputs[].rejects_by_reason"

    val = m["validation"]
    verdicts = _nested(val["verdicts"], 3)
    checks = sorted({k for v in verdicts.values() if isinstance(v, dict) for k in v})
    notes = {k: v if isinstance(v, list) else [v] for k, v in _nested(val["notes"], 1).items()}
    facts["validation"] = {"checks": checks, "verdicts": verdicts, "gpu_executed": val["gpu_executed"],
                           "gpu_execution": _nested(val["gpu_execution"], 2), "notes": notes,
                           "notes_total": len(val["notes"]), "checks_total": len({k for v in val["verdicts"].values()
                                                                                  if isinstance(v, dict) for k in v})}
    sources["validation"] = "manifest.json: validation"

    dd, near = m["dedup"], m["near_duplicates"]
    removed, removed_more, removed_more_kernels = top_counts(dd["removed"], TOP, skipped, "dedup.removed")
    facts["dedup"] = {"removed": removed, "removed_more": removed_more, "removed_more_kernels": removed_more_kernels,
                      "removed_total": dd["removed_total"], "removed_by_config": _nested(dd["removed_by_config"], 2),
                      "removed_pct": pct(dd["removed_total"], m["counts"]["records_in"])}
    facts["near_duplicates"] = {k: near[k] for k in ("threshold", "pairs", "within_split_pairs", "cross_split_pairs",
                                                     "clusters")}
    for k in ("records_in_clusters", "largest_cluster"):
        facts["near_duplicates"][k] = _count(near[k])
        if near[k] is not None and _count(near[k]) is None:
            skipped.append({"where": "near_duplicates", "name": k, "value": _scalar(near[k])})
    in_clusters = facts["near_duplicates"]["records_in_clusters"]
    facts["near_duplicates"]["records_in_clusters_pct"] = (None if in_clusters is None
                                                           else pct(in_clusters, m["counts"]["records_out"]))
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
        div[config] = {"families": fams, "family_count": len(fams), "skeletons": total,
                       "skeleton_pct": pct(total, len(rows.get(config, [])))}
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

    # throughput: each input's run.json as the release carries it (null when not recorded; a
    # value that is not a number is left out and listed under skipped)
    runs = []
    for i in m["inputs"]:
        run = _dict(i.get("run"))
        path = _cut(i["path"], 1000)
        got = {}
        for k, check in (("seconds", _number), ("pairs_per_s", _number), ("workers", _count),
                         ("worker_peak_rss_mb", _number), ("validate", _bool)):
            got[k] = check(run.get(k))
            if run.get(k) is not None and got[k] is None:
                skipped.append({"where": f"{path}: run.json", "name": k, "value": _scalar(run[k])})
        stages, stages_more = None, 0
        if run.get("stage_seconds") is not None:
            raw = run["stage_seconds"]
            if not isinstance(raw, dict):
                skipped.append({"where": f"{path}: run.json", "name": "stage_seconds", "value": _scalar(raw)})
                raw = {}
            stages = {}
            for k, v in raw.items():
                if _number(v) is None:
                    skipped.append({"where": f"{path}: run.json stage_seconds", "name": _cut(str(k)), "value": _scalar(v)})
                elif len(stages) < TOP:
                    stages[_cut(str(k))] = v
                else:
                    stages_more += 1
            stages = stages or None
        total = sum(stages.values()) if stages else None
        runs.append({"path": path, "target": i["target"], "records": i["records"], **got,
                     "stage_seconds": stages, "stages_more": stages_more,
                     "stage_pct": {k: pct_f(v, total) for k, v in stages.items()} if stages else None})
    facts["throughput"] = {"runs": runs}
    sources["throughput"] = "manifest.json: inputs[].run (the generator's run.json; null where not recorded)"

    facts["samples"] = pick_samples(rows, configs, archs, samples, excerpt_lines, dist, shown)
    sources["samples"] = ("Parquet shards: the first record by id of each chosen family; excerpts are the first lines "
                          "verbatim, at most limits.excerpt_bytes bytes")
    facts["skipped"] = {"values": skipped[:TOP], "more": max(0, len(skipped) - TOP)}
    sources["skipped"] = "manifest.json: values of an unexpected type, left out of the figures"
    return {"facts": facts, "sources": sources}


def pct_f(a: float, b: float | None) -> float | None:
    return round(100 * a / b, 1) if b and math.isfinite(100 * a / b) else None


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
        fields = {}
        text = fetch(dist, r, sample_fields(config, archs), shown)
        if not all(isinstance(text.get(f), str) for f in sample_fields(config, archs)):
            raise ReleaseError(f"{quote(r['at'][0])}: row {r['at'][1]} changed while the report read it")
        for f in sample_fields(config, archs):
            ex, cut = excerpt(text[f], excerpt_lines)
            fields[f] = {"excerpt": ex, "lines_total": lines(text[f]), "lines_shown": lines(ex) if cut else
                         min(lines(text[f]), excerpt_lines), "cut_at_bytes": EXCERPT_BYTES if cut else None}
        del text
        chosen.append({"config": config, "family": _cut(family), "id": _cut(r["id"]),
                       "kernel_name": _cut(r["kernel_name"]), "seed": r["seed"], "split": r["split"], "fields": fields})
    return {"excerpt_lines": excerpt_lines, "excerpt_bytes": EXCERPT_BYTES, "records": chosen}
