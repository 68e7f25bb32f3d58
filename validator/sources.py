"""The record sources of a dataset directory, read by the file rule (schemas/files.py): a run's
shards and findings as its manifest lists them, or a release's Parquet files as its manifest
lists them, each as (name, finding, rows(), row count), with the toolchain the records were made
with. Split from `revalidate`, which re-exports every name here.
"""

from __future__ import annotations

import functools
import os

import schemas
from schemas import files
from schemas.dataset_format import REAL_CONFIG, RELEASE_KIND, RUN_MANIFEST, read_records, release_file_problems, run_files
from validator.verdicts import FINDINGS_CONFIG, ValidatorError


class NoShards(ValidatorError):
    """The directory holds no shard-*.jsonl file."""


class FileSetRefused(ValidatorError):
    """A file of the dataset breaks the file rule (schemas/files.py): a listed file missing, not
    a regular file or not canonically named, or a data file that is not listed."""


def _run_sources(directory: str, manifest: dict | None) -> tuple[list[tuple], dict | None]:
    """A run directory's record sources: (name, finding, rows(), line count) for exactly the
    shards its manifest lists (the file set //tools:release reads: schemas.dataset_format.run_files)
    and, held to their own rule, its findings (FINDINGS_CONFIG/: wrong adjoints, kept out of the
    dataset); and the first record's toolchain."""
    try:
        names = run_files(directory, manifest)
    except files.FileRefused as e:
        raise FileSetRefused(f"{files.quote(directory)}: {e}") from None
    if not any(not finding for _, finding in names):
        raise NoShards(f"no shard-*.jsonl files in {files.quote(directory)}")
    every = [(name, finding, functools.partial(read_records, os.path.join(directory, name)),
              _count_lines(os.path.join(directory, name))) for name, finding in names]
    return every, _first_toolchain(directory, [n for n, finding in names if not finding])


def _release_manifest(directory: str) -> dict | None:
    """A release's manifest.json (its `kind` is RELEASE_KIND), checked against its schema, or
    None for a run directory. manifest.json is read by the file rule (a link or FIFO there is
    refused: FileSetRefused)."""
    path = os.path.join(directory, RUN_MANIFEST)
    if not os.path.lexists(path):
        return None
    try:
        files.regular(path, RUN_MANIFEST)
    except files.FileRefused as e:
        raise FileSetRefused(f"{files.quote(directory)}: {e}") from None
    try:
        m = files.read_json(path, RUN_MANIFEST)
    except files.FileRefused:
        return None  # a run's manifest: read_run_manifest says what is wrong with it
    if not isinstance(m, dict) or m.get("kind") != RELEASE_KIND:
        return None
    problem = schemas.violation("manifest", m)
    if problem:
        raise NoShards(f"{files.quote(directory)}: the release's manifest.json {files.quote(problem, 300)}")
    return m


def _release_sources(directory: str, m: dict) -> tuple[list[tuple], dict]:
    """A release's record sources: exactly the Parquet files its manifest lists, by the file rule
    //tools:verify applies (schemas.dataset_format.release_file_problems: canonical paths that
    agree with their config and split, regular files, nothing unlisted), their rows rebuilt into
    records with the manifest's schema version and toolchain; the FINDINGS_CONFIG config held to its
    own rule."""
    problems = release_file_problems(directory, m)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise FileSetRefused(f"{files.quote(directory)}: {problems[0]}{more}")
    every = []
    for f in m["files"]:
        rel = f["path"]
        if not rel.endswith(".parquet") or f["config"] == REAL_CONFIG:  # real rows: validator/real_release.py
            continue
        every.append((rel, f["config"] == FINDINGS_CONFIG,
                      functools.partial(_parquet_records, os.path.join(directory, rel), rel, m["record_schema_version"],
                                        m["toolchain"]), f["rows"]))
    if not every:
        raise NoShards(f"no data/<config>/*.parquet files listed in the release {files.quote(directory)}")
    return every, {**m["toolchain"], "_schema_version": m["record_schema_version"]}


def _parquet_records(path: str, rel: str, schema_version: str, toolchain: dict):
    """(row number, record, error) for every row of a release's Parquet file, as read_records
    gives for a shard's lines; a file or row group that cannot be read costs one error."""
    from schemas.release_rows import open_parquet, row_groups, to_record

    n = 0
    archs = [f"ptx_{a}" for a in sorted(toolchain.get("ptx_archs") or [])]
    try:
        for rows in row_groups(open_parquet(path, rel)):
            for row in rows:
                n += 1
                try:
                    if sorted(k for k in row if k.startswith("ptx_")) != archs:
                        raise ValueError("its PTX columns are not the toolchain's archs")
                    yield n, to_record(row, schema_version, toolchain), None
                except (KeyError, TypeError, ValueError, RecursionError, MemoryError) as e:
                    yield n, None, (f"corrupt: {rel}:{n}: a row that is no record "
                                    f"({type(e).__name__}: {files.quote(str(e), 120)})")
    except Exception as e:  # noqa: BLE001 - pyarrow raises several types for a damaged file
        yield n + 1, None, f"corrupt: {rel}: not a readable Parquet file ({type(e).__name__}: {files.quote(str(e), 120)})"


def _first_toolchain(directory: str, shards: list[str]) -> dict | None:
    for shard in shards:
        for _, rec, err in read_records(os.path.join(directory, shard)):
            if not err and isinstance(rec, dict) and isinstance(rec.get("toolchain"), dict):
                return {**rec["toolchain"], "_schema_version": rec.get("schema_version")}
    return None


def _count_lines(path: str) -> int:
    with files.open_regular(path) as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
