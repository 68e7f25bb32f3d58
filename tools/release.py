"""Turns validated generator output into a release directory.

Usage: ./bazelw run //tools:release -- --in DIR [DIR ...] --out DIST --version X.Y.Z
           [--split 90,5,5] [--near-dup-threshold 0.9] [--shard-rows 5000] [--jsonl]

An input is a generator run or a harvest of the wheel's kernels (//harvest: the real config,
tools/release_real.py), beside at least one run. Stages: gate the inputs (tools/release_inputs.py), exact dedup, split by skeleton hash, the
near-duplicate audit (tools/dedup.py), then Parquet shards, JSONL if asked, README.md (the
dataset card, tools/card.py) and manifest.json. Memory does not grow with the records: the gate
keeps a small entry per record and the writers read each record back by its offset, one row
group at a time. The release is built in a temporary directory
beside DIST and renamed into place at the end, so a refused or failed run leaves nothing.
An existing DIST is replaced only when it is empty or a previous release (it holds a release
manifest.json); anything else is refused.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import re
import shlex
import sys

import pyarrow as pa
import pyarrow.parquet as pq

import schemas
from runtime.process import EXIT_TERMINATED, Terminated, caller_path, sigterm_raises
from schemas import files
from schemas.files import sha256_file
from tools import card, dedup, release_real
from tools import release_format as fmt
from schemas.dataset_format import REAL_CONFIG, RELEASE_CARD, RELEASE_KIND, RELEASE_MANIFEST, canonical_json, pretty_json
from tools.release_inputs import GateError, read_back, read_inputs

# a release's manifest has a run's file name; schemas/ has no constant of its own for it (yet)
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?\Z")


def write_parquet(rows, schema: pa.Schema, path: str) -> None:
    """Write the rows (any iterable of dicts) as one Parquet file, `fmt.ROW_GROUP_ROWS` rows per
    row group, holding one row group in memory at a time. The bytes are those of
    `pq.write_table(pa.Table.from_pylist(all rows), row_group_size=fmt.ROW_GROUP_ROWS)` with the
    same options: the writer cuts a table into row groups the same way."""
    # fixed writer options; pyarrow embeds only its version string and the Arrow schema
    with pq.ParquetWriter(path, schema, compression="zstd", compression_level=9, use_dictionary=False,
                          write_statistics=True, data_page_version="1.0", version="2.6", store_schema=True) as w:
        batch = []
        for row in rows:
            batch.append(row)
            if len(batch) == fmt.ROW_GROUP_ROWS:
                w.write_table(pa.Table.from_pylist(batch, schema=schema), row_group_size=fmt.ROW_GROUP_ROWS)
                batch = []
        if batch:
            w.write_table(pa.Table.from_pylist(batch, schema=schema), row_group_size=fmt.ROW_GROUP_ROWS)


def _size_category(n: int) -> str:
    for hi, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < hi:
            return label
    return "1M<n<10M"


def build(dirs, tmp: str, version: str, fractions, threshold: float, shard_rows: int, jsonl: bool,
          command: str) -> dict:
    """Write the release into `tmp` and return its manifest. Works on the inputs' entries
    (tools/release_inputs.py) and reads each kept record back from its input only to write it,
    so memory holds the entries and one row group, whatever the number of records."""
    entries = [e for d in dirs for e in d.entries]
    runs, harvests = _by_kind(dirs)
    toolchain = runs[0].manifest["toolchain"]
    archs = sorted(toolchain["ptx_archs"])
    real_archs = sorted({a for d in harvests for a in d.archs})
    kept, exact = dedup.exact_dedup(entries)
    splits = [fmt.split_of(e.skeleton, fractions) for e in kept]
    near = _near_duplicates(kept, splits, threshold)
    written: list[dict] = []
    counts = {"records_in": len(entries), "records_out": len(kept),
              "configs": _write_configs(kept, splits, tmp, (archs, real_archs), shard_rows, jsonl, written)}
    manifest = _manifest(dirs, kept, version, command, archs, toolchain, counts, fractions, exact, near, shard_rows)
    if harvests:
        manifest["real"] = {"record_schema_version": release_real.SCHEMA_VERSION, "ptx_archs": real_archs,
                            "columns": [{"name": n, "type": str(t), "description": d}
                                        for n, t, d in release_real.columns(real_archs)],
                            "inputs": [d.to_json() for d in harvests]}
    _write_card_and_manifest(tmp, manifest, written)
    return manifest


def _near_duplicates(kept: list, splits: list[str], threshold: float) -> dict:
    """The near-duplicate audit of the kept entries (tools/dedup.py), reading a record's source
    back only for a candidate pair."""
    def source_of(i: int) -> tuple[str, str]:
        r = read_back(kept[i])
        return r["source"], r.get("kernel_name", r.get("name"))

    return dedup.near_duplicates([e.bands for e in kept], splits, [f"{e.key[0]}/{e.key[3]}" for e in kept],
                                 source_of, threshold)


def _by_kind(dirs: list) -> tuple[list, list]:
    """(the generator runs, the harvests) among the inputs."""
    harvests = [d for d in dirs if isinstance(d, release_real.RealInput)]
    return [d for d in dirs if d not in harvests], harvests


def _write_configs(kept: list, splits: list[str], tmp: str, archs: tuple[list[str], list[str]], shard_rows: int,
                   jsonl: bool, written: list[dict]) -> dict:
    """Write every config's files into `tmp` (their entries appended to `written`) and return the
    counts per config. `archs`: the PTX archs of the synthetic configs and of the real one."""
    # rows per (config, split), each sorted by id
    groups: dict[tuple[str, str], list[int]] = collections.defaultdict(list)
    for i, e in enumerate(kept):
        groups[(e.key[0], splits[i])].append(i)
    out = {}
    for config in sorted({e.key[0] for e in kept}):
        real = config == REAL_CONFIG
        config_archs = archs[1] if real else archs[0]
        schema = release_real.arrow_schema(config_archs) if real else fmt.arrow_schema(config_archs)
        c = {"records": 0, "splits": {}, "families": {}, "skeletons": {}}
        for split in fmt.SPLITS:
            idx = sorted(groups.get((config, split), []), key=lambda i: (kept[i].key[3], kept[i].key[4]))
            c["splits"][split] = len(idx)
            c["skeletons"][split] = len({kept[i].skeleton for i in idx})
            c["records"] += len(idx)
            for i in idx:
                fam = c["families"].setdefault(kept[i].key[1], {s: 0 for s in fmt.SPLITS})
                fam[split] += 1
            written += _write_split(tmp, config, split, [kept[i] for i in idx], config_archs, schema, shard_rows, jsonl)
        c["families"] = {f: dict(v, total=sum(v.values())) for f, v in sorted(c["families"].items())}
        out[config] = c
    return out


def _write_split(tmp: str, config: str, split: str, entries: list, archs: list[str], schema: pa.Schema,
                 shard_rows: int, jsonl: bool) -> list[dict]:
    """The Parquet shards of one (config, split), `shard_rows` rows each, and its JSONL file when
    asked; returns their file entries (path, config, split, rows)."""
    out = []
    jl = None
    if jsonl:
        rel = f"jsonl/{config}/{split}.jsonl"
        os.makedirs(os.path.dirname(os.path.join(tmp, rel)), exist_ok=True)
        jl = open(os.path.join(tmp, rel), "w", encoding="utf-8")
    with jl or contextlib.nullcontext():
        # an empty split gets no file (datasets cannot read a 0-row Parquet file) and no card entry
        chunks = [entries[k:k + shard_rows] for k in range(0, len(entries), shard_rows)]
        for k, chunk in enumerate(chunks):
            rel = fmt.shard_name(config, split, k, len(chunks))
            os.makedirs(os.path.dirname(os.path.join(tmp, rel)), exist_ok=True)
            write_parquet(_rows(chunk, split, archs, jl, config == REAL_CONFIG), schema, os.path.join(tmp, rel))
            out.append({"path": rel, "config": config, "split": split, "rows": len(chunk)})
    if jsonl:
        out.append({"path": f"jsonl/{config}/{split}.jsonl", "config": config, "split": split, "rows": len(entries)})
    return out


def _validation(dirs, kept: list) -> dict:
    """The manifest's `validation`: the verdicts per config and check, the runs' notes, and
    whether GPU execution ran."""
    verdicts = {}
    for e in kept:
        for check, status in e.statuses:
            per = verdicts.setdefault(e.key[0], {}).setdefault(check, {})
            per[status] = per.get(status, 0) + 1
    verdicts = {t: {k: dict(sorted(v.items())) for k, v in sorted(per.items())} for t, per in sorted(verdicts.items())}
    notes = {}
    for d in dirs:
        for check, note in d.manifest.get("validation_notes", {}).items():
            notes.setdefault(check, set()).add(note)
    gpu = {t: v.get("execute_gpu", {}) for t, v in verdicts.items()}
    return {"verdicts": verdicts, "notes": {k: sorted(v) for k, v in sorted(notes.items())},
            "gpu_execution": gpu,
            "gpu_executed": any(v.get("passed", 0) for v in gpu.values())}


def _manifest(dirs, kept: list, version: str, command: str, archs: list[str], toolchain: dict, counts: dict,
              fractions, exact: dict, near: dict, shard_rows: int) -> dict:
    """The release manifest, all but its `files`."""
    return {
        "kind": RELEASE_KIND,
        "manifest_version": schemas.RELEASE_MANIFEST_VERSION,
        "version": version,
        "record_schema_version": schemas.PAIR_SCHEMA_VERSION,
        "command": command,
        "license": card.LICENSE,
        "size_category": _size_category(len(kept)),
        "columns": [{"name": n, "type": str(t), "description": d} for n, t, d in fmt.columns(archs)],
        "toolchain": toolchain,
        "inputs": [{"path": d.path, "target": d.manifest["generator"]["target"], "manifest_sha256": d.manifest_sha256,
                    "generator": d.manifest["generator"], "records": len(d.entries), "counts": d.manifest["counts"],
                    "rejects_by_reason": d.manifest.get("rejects_by_reason", {}), "run": d.run}
                   for d in _by_kind(dirs)[0]],
        "counts": counts,
        "splits": {"method": "sha256 of the AST skeleton (identifiers and literals abstracted) mapped to [0, 1)",
                   "fractions": dict(zip(fmt.SPLITS, fractions))},
        "dedup": {"key_order": "(target, family, seed, id, kernel_name): the first record of a duplicate group is kept",
                  "removed": exact["removed"], "removed_total": sum(exact["removed"].values()),
                  "removed_by_config": exact["removed_by_config"],
                  "examples": exact["examples"]},
        "near_duplicates": near,
        "validation": _validation(dirs, kept),
        "parquet": {"compression": "zstd", "row_group_rows": fmt.ROW_GROUP_ROWS, "shard_rows": shard_rows,
                    "pyarrow": pa.__version__},
    }


def _write_card_and_manifest(tmp: str, manifest: dict, written: list[dict]) -> None:
    """README.md (the card) and manifest.json, which lists every file written with its sha256
    and size (set on `manifest` as its `files`)."""
    with open(os.path.join(tmp, RELEASE_CARD), "w", encoding="utf-8") as f:
        # rendered from the manifest as written (keys sorted), as //tools:verify renders it again
        f.write(card.render(json.loads(json.dumps(manifest, sort_keys=True))))
    written.append({"path": RELEASE_CARD})
    for entry in written:
        entry["sha256"], entry["bytes"] = sha256_file(os.path.join(tmp, entry["path"]))
    manifest["files"] = sorted(written, key=lambda e: e["path"])
    with open(os.path.join(tmp, RELEASE_MANIFEST), "w", encoding="utf-8") as f:
        f.write(pretty_json(manifest))


def _rows(entries: list, split: str, archs: list[str], jl, real: bool = False):
    """The Parquet rows of the kept records `entries`, read back one at a time; each record is
    also written to the JSONL file `jl` when there is one. `real`: the real config's rows."""
    for e in entries:
        r = read_back(e)
        if jl:
            jl.write(canonical_json(dict(r, split=split)) + "\n")
        yield release_real.to_row(r, split, e.skeleton, archs) if real else fmt.to_row(r, split, e.skeleton, archs)


def is_release(path: str) -> bool:
    try:
        return files.read_json(os.path.join(path, RELEASE_MANIFEST)).get("kind") == RELEASE_KIND
    except (files.FileRefused, AttributeError):
        return False


class _Parser(fmt.OneLineParser):
    usage_hint = "--in DIR... --out DIST --version X.Y.Z"


def parse_args(argv):
    p = _Parser(prog="release", description=__doc__.split("\n")[0])
    p.add_argument("--in", dest="inputs", nargs="+", required=True, metavar="DIR", help="generator output directories")
    p.add_argument("--out", required=True, metavar="DIST", help="release directory to create or replace")
    p.add_argument("--version", required=True, help="release version (semver X.Y.Z)")
    p.add_argument("--split", default="90,5,5", help="train,validation,test percentages (default 90,5,5)")
    p.add_argument("--near-dup-threshold", type=float, default=0.9, help="Jaccard threshold of the audit")
    p.add_argument("--shard-rows", type=int, default=5000, help="rows per Parquet file (default 5000)")
    p.add_argument("--jsonl", action="store_true", help="also write jsonl/<config>/<split>.jsonl")
    args = p.parse_args(argv)
    if not SEMVER.match(args.version):
        p.error(f"--version {args.version!r} is not semver (X.Y.Z)")
    try:
        parts = [float(x) for x in args.split.split(",")]
    except ValueError:
        parts = []
    if len(parts) != 3 or any(x < 0 for x in parts) or abs(sum(parts) - 100) > 1e-9:
        p.error(f"--split {args.split!r} must be three percentages summing to 100")
    args.fractions = tuple(x / 100 for x in parts)
    if not 0 < args.near_dup_threshold <= 1:
        p.error("--near-dup-threshold must be in (0, 1]")
    if why := dedup.banding_problem(args.near_dup_threshold):
        p.error(f"--near-dup-threshold {args.near_dup_threshold}: {why}")
    if args.shard_rows < 1:
        p.error("--shard-rows must be at least 1")
    return args


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    fmt.lean_arrow_memory()
    out = caller_path(args.out)
    for p in args.inputs:
        if files.inside(out, caller_path(p)) or files.inside(caller_path(p), out):
            print(f"error: --out {files.quote(args.out)} and --in {files.quote(p)} overlap (a release is never written "
                  f"inside its input, nor over it)", file=sys.stderr)
            return 2
    if os.path.exists(out) and not (os.path.isdir(out) and (not os.listdir(out) or is_release(out))):
        print(f"error: --out {files.quote(args.out)} exists and is not a previous release; refusing to overwrite it", file=sys.stderr)
        return 2
    try:
        # SIGTERM stops it as Ctrl-C does: the unfinished release removed, one line
        with sigterm_raises(), fmt.built_beside(out, ".release-") as tmp:
            dirs = read_inputs([(caller_path(p), p) for p in args.inputs], args.near_dup_threshold)
            command = "./bazelw run //tools:release -- " + shlex.join(argv)
            m = build(dirs, tmp, args.version, args.fractions, args.near_dup_threshold, args.shard_rows, args.jsonl,
                      command)
    except GateError as e:
        print(f"error: release refused: {files.quote(str(e), 600)}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, Terminated) as e:
        how = "terminated (SIGTERM)" if isinstance(e, Terminated) else "interrupted"
        print(f"error: {how}; nothing written to {files.quote(args.out)}", file=sys.stderr)
        return EXIT_TERMINATED if isinstance(e, Terminated) else 130
    c = m["counts"]
    per = "; ".join(f"{k}: " + ", ".join(f"{s} {n}" for s, n in v["splits"].items()) for k, v in c["configs"].items())
    print(f"release {args.version} -> {files.quote(args.out)}: {c['records_in']} records in, {c['records_out']} out "
          f"({m['dedup']['removed_total']} exact duplicates removed; {per}); near-duplicate pairs "
          f"{m['near_duplicates']['pairs']} ({m['near_duplicates']['cross_split_pairs']} across splits)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
