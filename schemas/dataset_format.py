"""The dataset's on-disk format, in one place: file names, how shards are listed and read, the
canonical JSON encoding, and the kind a release manifest declares.

A generator output directory holds, per chunk N, `shard-NNNNN.jsonl` (one pair record per line,
schemas/pair.schema.json), `shard-NNNNN.stats.json` (every attempt of the chunk) and, only while
a chunk whose GPU launch lost its worker is being redone, `shard-NNNNN.cuda_faults.json`; beside
them the run's `manifest.json` (schemas/run_manifest.schema.json).

Every record line, stats file and JSON column of a release is written in `canonical_json`:
sorted keys, no spaces, UTF-8 text as is (no \\u escapes), and no NaN or Infinity (which JSON
does not have). A byte sequence therefore has one meaning and a value one byte sequence, so
equal records hash equal.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Iterator

import schemas
from schemas import files

SHARD_PREFIX = "shard-"
RECORDS_SUFFIX = ".jsonl"
STATS_SUFFIX = ".stats.json"
FAULTS_SUFFIX = ".cuda_faults.json"
RUN_MANIFEST = "manifest.json"  # a generator run's manifest, beside its shards
RELEASE_MANIFEST = "manifest.json"  # a release's manifest, at its root
RUN_CONFIG = "run_config.json"  # a run's configuration, checked when the run resumes
RUN_INFO = "run.json"  # a run's summary: executor, workers, stage seconds
RUNNING_SUFFIX = ".running.json"  # a worker names the kernel it is executing (beside the chunk's shard)
RELEASE_KIND = "warp-ir-release"  # the `kind` of a release's manifest.json
FINDINGS_DIR = "adjoint_mismatch"  # a run's findings (wrong adjoints), beside its shards
SHARD_NAME = re.compile(r"shard-[0-9]{5,}\.jsonl")  # matched in full (files.check_name)
FINDING_NAME = re.compile(FINDINGS_DIR + r"/shard-[0-9]{5,}\.jsonl")
# a run's chunk files other than its records: a chunk's stats and its GPU faults
CHUNK_OTHER = re.compile(r"shard-[0-9]{5,}(\.stats\.json|\.cuda_faults\.json)")


def _run_data(rel: str) -> bool:
    """Whether a file of a run looks like record data (so it must be listed): a `.jsonl` file, a
    file named `shard-*` that is not a chunk's stats or faults, anything in the findings
    directory, or a name with a control character. Other files (notes, plots, reports) are not
    read by any tool and may stay."""
    base = rel.rsplit("/", 1)[-1]
    return (".jsonl" in rel or (base.startswith(SHARD_PREFIX) and not CHUNK_OTHER.fullmatch(base))
            or rel.startswith(FINDINGS_DIR + "/") or files.has_control(rel))


def _chunk_name(chunk: int, suffix: str) -> str:
    return f"{SHARD_PREFIX}{chunk:05d}{suffix}"


def shard_name(chunk: int) -> str:
    """`shard-NNNNN.jsonl`: the records of chunk `chunk`."""
    return _chunk_name(chunk, RECORDS_SUFFIX)


def stats_name(chunk: int) -> str:
    """`shard-NNNNN.stats.json`: every attempt of chunk `chunk` (written when the chunk is done)."""
    return _chunk_name(chunk, STATS_SUFFIX)


def faults_name(chunk: int) -> str:
    """`shard-NNNNN.cuda_faults.json`: kernels whose GPU launch lost a worker of chunk `chunk`."""
    return _chunk_name(chunk, FAULTS_SUFFIX)


def is_shard(name: str) -> bool:
    """Whether a file name is a record shard (`shard-*.jsonl`)."""
    return name.startswith(SHARD_PREFIX) and name.endswith(RECORDS_SUFFIX)


def list_shards(directory: str) -> list[str]:
    """The names of the record shards in `directory`, sorted (chunk order)."""
    return sorted(n for n in os.listdir(directory) if is_shard(n))


def run_files(directory: str, manifest: dict | None) -> list[tuple[str, bool]]:
    """The one file set of a run, for //validator and //tools:release alike: (relative name,
    is a finding) for exactly the shards `manifest` (one that meets its schema) lists (its `shards`, then its
    adjoint_mismatch shards), or, without a manifest (a run still going), the canonically named
    shards on disk. Each name must be canonical (matched in full) and a regular file; a file in
    the run that looks like data (`.jsonl`, or `shard-` and not a chunk's stats) but is not
    listed, or anything that is not a regular file or directory, is refused. Raises
    files.FileRefused with one line naming the first problem (escaped) and how many more."""
    if manifest is not None:
        names = [(files.check_name(s["path"], SHARD_NAME, "manifest.json shards"), False) for s in manifest["shards"]]
        names += [(files.check_name(s["path"], FINDING_NAME, "manifest.json adjoint_mismatch shards"), True)
                  for s in manifest["adjoint_mismatch"]["shards"]]
    else:
        names = [(n, False) for n in sorted(os.listdir(directory)) if SHARD_NAME.fullmatch(n)]
        fdir = os.path.join(directory, FINDINGS_DIR)
        if os.path.isdir(fdir) and not os.path.islink(fdir):
            names += [(f"{FINDINGS_DIR}/{n}", True) for n in sorted(os.listdir(fdir)) if SHARD_NAME.fullmatch(n)]
    seen = set()
    for rel, _ in names:
        if rel in seen:
            raise files.FileRefused(f"{files.quote(rel)}: listed twice in manifest.json")
        seen.add(rel)
        files.regular(os.path.join(directory, rel), rel)
    extra = files.unlisted(directory, seen, _run_data)
    if extra:
        more = f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""
        raise files.FileRefused(f"{files.quote(extra[0])}: in the run but not one of the shards manifest.json lists "
                                f"(an unvalidated shard), nor a chunk's stats: refused{more}")
    return names


# a release's files, each matched in full: its path names its config and split
REAL_CONFIG = "real"  # a release's config of real kernels (a harvest of the warp-lang wheel, //harvest)
RELEASE_DATA = re.compile(r"data/(cpu|cuda|adjoint_mismatch|real)/(train|validation|test)-([0-9]{5})-of-([0-9]{5})\.parquet")
RELEASE_JSONL = re.compile(r"jsonl/(cpu|cuda|adjoint_mismatch|real)/(train|validation|test)\.jsonl")
RELEASE_CARD = "README.md"
RELEASE_FILE = re.compile(f"{RELEASE_DATA.pattern}|{RELEASE_JSONL.pattern}|{re.escape(RELEASE_CARD)}")
RELEASE_REPORT_DIR = "report"  # //report's output inside a release: derived from it, not part of it
RELEASE_EXPLORE_DIR = "explore"  # //report:explore's, likewise
RELEASE_DERIVED_DIRS = (RELEASE_REPORT_DIR, RELEASE_EXPLORE_DIR)  # what no reader of the file set enters


def release_file_problems(dist: str, manifest: dict) -> list[str]:
    """The one file set of a release, for //tools:verify, //validator and //report alike: one
    line per problem (names escaped). Every entry of `manifest["files"]` (a manifest that meets
    its schema) must have a canonical path, matched in full, that agrees with the config and
    split it declares, be listed once, and be a regular file; every file in the release that is
    not listed (manifest.json, and the report/ and explore/ folders that //report and
    //report:explore write into it, aside) or is not a regular file is a problem."""
    problems, listed = [], set()
    for f in manifest["files"]:
        rel = f["path"]
        shown = files.quote(rel)
        m = RELEASE_DATA.fullmatch(rel) or RELEASE_JSONL.fullmatch(rel)
        try:
            files.check_name(rel, RELEASE_FILE, "manifest.json files")
        except files.FileRefused as e:
            problems.append(str(e))
            continue
        if rel in listed:
            problems.append(f"{shown}: listed twice in manifest.json")
            continue
        listed.add(rel)
        if m and (m.group(1), m.group(2)) != (f.get("config"), f.get("split")):
            problems.append(f"{shown}: its path is {m.group(1)}/{m.group(2)}, manifest.json lists it as "
                            f"{files.quote(f.get('config'))}/{files.quote(f.get('split'))}")
        if m and m.re is RELEASE_DATA and int(m.group(3)) >= int(m.group(4)):
            problems.append(f"{shown}: shard {m.group(3)} of {m.group(4)} does not exist")
        try:
            files.regular(os.path.join(dist, rel), rel)
        except files.FileRefused as e:
            problems.append(str(e))
    for rel in files.unlisted(dist, listed | {RUN_MANIFEST}, lambda rel: True, skip_dirs=RELEASE_DERIVED_DIRS):
        problems.append(f"{files.quote(rel)}: present but not listed in manifest.json (or not a regular file)")
    return problems


def decode_line(raw: bytes) -> tuple[Any, str | None]:
    """(value, None) for one JSON line, or (None, why) when it cannot be read: nested deeper than
    files.MAX_JSON_DEPTH (measured on the bytes first), not UTF-8, not JSON, or a number Python
    refuses to convert."""
    return files.decode_json(raw)


def read_records(path: str) -> Iterator[tuple[int, Any, str | None]]:
    """Yield (line number, record, error) for every line of a shard; a corrupt line is reported
    (`corrupt: NAME:N: why`), not skipped. Lines are decoded one by one, so malformed UTF-8 or
    JSON nested past Python's recursion limit costs that line, not the run."""
    for n, _, _, rec, why in read_lines(path):
        yield n, rec, why


def read_lines(path: str) -> Iterator[tuple[int, int, bytes, Any, str | None]]:
    """`read_records` with where each line is: (line number, byte offset of its start, the raw
    line, record, error). The file is opened by the file rule (a regular file, no link followed,
    never blocking); a line over files.MAX_LINE_BYTES is that line's error, read past without
    being held."""
    name, offset = files.quote(os.path.basename(path)), 0
    with files.open_regular(path) as f:
        for n, (raw, whole) in enumerate(files.lines(f), 1):
            if whole:
                rec, why = decode_line(raw)
            else:
                rec, why = None, f"a line over {files.MAX_LINE_BYTES} bytes"
            yield n, offset, raw, rec, (f"corrupt: {name}:{n}: {why}" if why is not None else None)
            offset = f.tell() if not whole else offset + len(raw)


def canonical_json(obj: Any, *, allow_nan: bool = False) -> str:
    """THE JSON encoding of records, stats, JSON columns and hashed values: sorted keys, no
    spaces, non-ASCII text as is, NaN and Infinity refused (ValueError). `allow_nan=True` writes
    them as the non-standard tokens instead: only for lines that are meant to be faulty
    (validator/faults.py)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=allow_nan)


def pretty_json(obj: Any) -> str:
    """THE human-readable JSON of the files people open (a run's and a release's manifest.json,
    reports): sorted keys, two-space indent, ASCII, a final newline. Hashed values and record
    lines use `canonical_json`."""
    return json.dumps(obj, indent=2, sort_keys=True) + "\n"


class RunManifestError(ValueError):
    """A run's manifest.json that cannot be read or breaks schemas/run_manifest.schema.json (one line)."""


def run_manifest_violation(manifest: Any) -> str | None:
    """None when `manifest` meets schemas/run_manifest.schema.json, else one line: where it breaks
    the schema, the schema path of the violated keyword, and why."""
    return schemas.violation("run_manifest", manifest)


def read_run_manifest(directory: str) -> dict | None:
    """DIR/manifest.json checked against schemas/run_manifest.schema.json; None when DIR has
    none (a run still going, or shards put together by hand). Raises RunManifestError."""
    path = os.path.join(directory, RUN_MANIFEST)
    if not os.path.lexists(path):
        return None
    try:
        manifest = files.read_json(path)
    except files.FileRefused as e:
        raise RunManifestError(str(e)) from None
    problem = run_manifest_violation(manifest)
    if problem:
        raise RunManifestError(f"{path}: {problem}")
    return manifest
