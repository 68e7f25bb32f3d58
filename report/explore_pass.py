"""The one pass over a release that writes the explorer's data files (see report/explore_data.py
for what each holds). The release has been checked by `release_reader.load_release` first (its
manifest, file sizes and rows per config, family and split); each shard is opened again by the
same rule and read one row group at a time, so memory holds one row group, the facet row numbers
and the search keys, never the release."""

from __future__ import annotations

import array
import collections

from report import explore_data as ed
from report.release_reader import arrow_schema, light_row, open_shard
from schemas.dataset_format import REAL_CONFIG
from schemas.files import quote

LABELS = {"source": "Python", "ir_cpp_forward": "C++ forward", "ir_cpp_backward": "C++ backward",
          "ir_cuda_forward": "CUDA forward", "ir_cuda_backward": "CUDA backward"}


class Pass:
    """State of the pass: facet postings, search keys, the chunk being filled, the counts."""

    def __init__(self, out: str, m: dict, archs: list[str], called_at: dict):
        # called_at: (file, row) -> the builtins its source calls, as `load_release` read them
        # (report/coverage.py), None where it did not parse: each source is parsed once
        self.out, self.m, self.called_at = out, m, called_at
        self.text_columns = list(ed.TEXT_COLUMNS) + [f"ptx_{a}" for a in archs]
        self.hl = ed.Highlighter()
        self.facets: dict[tuple[str, str], array.array] = collections.defaultdict(lambda: array.array("q"))
        self.search: list[tuple[str, int]] = []
        self.check_names: list[str] = []
        self.values = {"config": [], "split": [], "family": []}
        self.rows: list[list] = []
        self.pairs: list[dict] = []
        self.n = 0
        self.unparsed = 0  # sources whose builtins could not be read (counted, shown on the overview)

    def _value(self, kind: str, v: str) -> int:
        vals = self.values[kind]
        if v not in vals:
            vals.append(v)
        return vals.index(v)

    def row(self, r: dict, config: str, rel: str, index: int) -> None:
        n = self.n
        checks, why = ed.decoded(r["checks"])
        for name in (sorted(checks)[:ed.MAX_CHECKS] if isinstance(checks, dict) else []):
            if name not in self.check_names and len(self.check_names) < ed.MAX_CHECKS:
                self.check_names.append(name)
        letters = "".join(_letter(checks, name) for name in self.check_names)
        entry = [r["id"], r["kernel_name"], self._value("config", config), self._value("split", r["split"]),
                 self._value("family", r["family"]), letters]
        for kind, v in (("config", config), ("split", r["split"]), ("family", r["family"])):
            self.facets[(kind, v)].append(n)
        for name, status, _ in ed.checks(checks):
            self.facets[("check", f"{name}: {status}")].append(n)
        used = self._builtins(rel, index)
        for b in used:
            self.facets[("builtin", b)].append(n)
        for key in {r["id"].lower(), r["kernel_name"].lower()}:
            self.search.append((key, n))
        self.rows.append(entry)
        self.pairs.append(self._pair(r, config, rel, index, checks, why, used))
        self.n += 1
        if len(self.rows) == ed.ROWS_PER_CHUNK:
            self._flush_rows()
        if len(self.pairs) == ed.PAIRS_PER_CHUNK:
            self._flush_pairs()

    def _builtins(self, rel: str, index: int) -> list[str]:
        got = self.called_at.get((rel, index))
        if got is None:
            self.unparsed += 1
        return list(got or ())

    def _pair(self, r: dict, config: str, rel: str, index: int, checks, why: str, used: list[str]) -> dict:
        code = []
        for col in self.text_columns:
            text = r.get(col)
            label = LABELS.get(col) or f"PTX {col[len('ptx_'):]}"
            code.append([col, label, ed.language(col), self.hl(text if isinstance(text, str) else "", ed.language(col))])
        values = {}
        notes = [f"checks: not JSON ({why})"] if why else []
        for col in ("inputs", "outputs", "grad", "spec", "args"):
            values[col], bad = ed.decoded(r.get(col))
            if bad:
                notes.append(f"{col}: not JSON ({bad})")
        spec = values["spec"]
        return {"row": self.n, "id": r["id"], "kernel_name": r["kernel_name"], "config": config,
                "split": r["split"], "family": r["family"], "target": r.get("target"),
                "seed": str(r["seed"]), "skeleton_hash": r["skeleton_hash"], "dim": ed.short(r.get("dim")),
                "code": code, "inputs": ed.tables(values["inputs"]), "outputs": ed.tables(values["outputs"]),
                "grad": ed.gradient(values["grad"]), "checks": ed.checks(checks), "builtins": used,
                "provenance": self._provenance(r, rel, index, spec), "notes": notes}

    def _provenance(self, r: dict, rel: str, index: int, spec) -> list:
        tc = self.m["toolchain"]
        return [["origin", "synthetic: rendered from (family, seed) by the generator"],
                ["family", r["family"]], ["seed", str(r["seed"])], ["release", self.m["version"]],
                ["file", f"{rel}, row {index}"], ["warp-lang", ed.short(tc.get("warp_lang"))],
                ["LLVM", ed.short(tc.get("llvm"))], ["NVRTC", ed.short(tc.get("nvrtc"))],
                ["spec", ed.short(spec, 4000)]]

    def _flush_rows(self) -> None:
        k = (self.n - 1) // ed.ROWS_PER_CHUNK
        ed.write_js(self.out, f"data/rows/{k:06d}.js", "rows", k, self.rows)
        self.rows = []

    def _flush_pairs(self) -> None:
        k = (self.n - 1) // ed.PAIRS_PER_CHUNK
        ed.write_js(self.out, f"data/pairs/{k:06d}.js", "pairs", k, self.pairs)
        self.pairs = []

    def finish(self) -> dict:
        """Writes the last chunks, the facet and search files; the meta the pages read."""
        if self.rows:
            self._flush_rows()
        if self.pairs:
            self._flush_pairs()
        facets = collections.defaultdict(list)
        for k, (key, rows) in enumerate(sorted(self.facets.items())):
            deltas = [rows[0]] + [rows[i] - rows[i - 1] for i in range(1, len(rows))]
            ed.write_js(self.out, f"data/facets/{k:06d}.js", "facet", k, deltas)
            facets[key[0]].append([key[1], k, len(rows)])
        buckets = write_search(self.out, sorted(self.search))
        return {"rows": self.n, "rows_per_chunk": ed.ROWS_PER_CHUNK, "pairs_per_chunk": ed.PAIRS_PER_CHUNK,
                "values": self.values, "checks": self.check_names, "facets": dict(facets),
                "search": buckets, "classes": self.hl.classes, "unparsed_sources": self.unparsed}


def _letter(checks, name: str) -> str:
    c = checks.get(name) if isinstance(checks, dict) else None
    return ed.STATUS_LETTER.get(c.get("status"), "?") if isinstance(c, dict) else "-"


def write_search(out: str, keys: list[tuple[str, int]]) -> list[str]:
    """Search files of the sorted (key, row) list: one per prefix, split by a further character
    while it holds more than SEARCH_BUCKET keys; the prefixes, sorted. A file is named by its
    prefix's UTF-8 bytes in hex, so a hostile key never becomes a path."""
    buckets: list[str] = []
    todo = [(2, keys)]
    while todo:
        depth, group = todo.pop()
        by = collections.defaultdict(list)
        for key, row in group:
            by[key[:depth]].append((key, row))
        for prefix, items in by.items():
            if len(items) > ed.SEARCH_BUCKET and depth < ed.SEARCH_DEPTH and any(len(k) > depth for k, _ in items):
                todo.append((depth + 1, items))
                continue
            name = prefix.encode("utf-8", "surrogatepass").hex()
            ed.write_js(out, f"data/search/{name}.js", "search", prefix, [[k, r] for k, r in items])
            buckets.append(prefix)
    return sorted(buckets)


def run_pass(dist: str, shown: str, m: dict, out: str, called_at: dict) -> dict:
    """Reads every listed Parquet file of the release `dist` (configs sorted, the manifest's file
    order within each) into the data files under `out`; the meta of `Pass.finish`. `called_at`:
    see `Pass`."""
    archs = sorted(set(m["toolchain"]["ptx_archs"]))
    p = Pass(out, m, archs, called_at)
    columns = ["id", "family", "target", "seed", "kernel_name", "skeleton_hash", "split", "dim",
               *p.text_columns, *ed.JSON_COLUMNS]
    # the real config's rows (kernels of the wheel) have other columns and no checks to filter by: not explored
    listed = [f for f in m["files"] if f["path"].endswith(".parquet") and f["config"] != REAL_CONFIG]
    for f in sorted(listed, key=lambda f: f["config"]):  # stable: the manifest's order within a config
        where = f"{quote(shown)}/{quote(f['path'])}"
        index = 0
        with open_shard(dist, f["path"], shown, arrow_schema(archs), f) as pf:
            for g in range(pf.num_row_groups):
                table = pf.read_row_group(g, columns=columns, use_threads=False)
                for r in table.to_pylist():
                    light_row(r, f["path"], index, where)  # the reader's rule for a row's small fields
                    p.row(r, f["config"], f["path"], index)
                    index += 1
                del table
    return p.finish()

