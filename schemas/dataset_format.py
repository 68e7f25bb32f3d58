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
from typing import Any, Iterator

import schemas

SHARD_PREFIX = "shard-"
RECORDS_SUFFIX = ".jsonl"
STATS_SUFFIX = ".stats.json"
FAULTS_SUFFIX = ".cuda_faults.json"
RUN_MANIFEST = "manifest.json"  # a generator run's manifest, beside its shards
RELEASE_KIND = "warp-ir-release"  # the `kind` of a release's manifest.json


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


def decode_line(raw: bytes) -> tuple[Any, str | None]:
    """(value, None) for one JSON line, or (None, why) when it cannot be read: not UTF-8, not
    JSON, nested past Python's recursion limit, or a number Python refuses to convert."""
    try:
        return json.loads(raw.decode("utf-8")), None
    except UnicodeDecodeError as e:
        return None, f"not UTF-8 at byte {e.start}"
    except json.JSONDecodeError as e:
        return None, e.msg
    except RecursionError:
        return None, "JSON nested too deep to read"
    except ValueError as e:  # e.g. an integer of more digits than int() converts
        return None, str(e)[:100]


def read_records(path: str) -> Iterator[tuple[int, Any, str | None]]:
    """Yield (line number, record, error) for every line of a shard; a corrupt line is reported
    (`corrupt: NAME:N: why`), not skipped. Lines are decoded one by one, so malformed UTF-8 or
    JSON nested past Python's recursion limit costs that line, not the run."""
    for n, _, _, rec, why in read_lines(path):
        yield n, rec, why


def read_lines(path: str) -> Iterator[tuple[int, int, bytes, Any, str | None]]:
    """`read_records` with where each line is: (line number, byte offset of its start, the raw
    line, record, error)."""
    name, offset = os.path.basename(path), 0
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            rec, why = decode_line(raw)
            yield n, offset, raw, rec, (f"corrupt: {name}:{n}: {why}" if why is not None else None)
            offset += len(raw)


def canonical_json(obj: Any, *, allow_nan: bool = False) -> str:
    """THE JSON encoding of records, stats, JSON columns and hashed values: sorted keys, no
    spaces, non-ASCII text as is, NaN and Infinity refused (ValueError). `allow_nan=True` writes
    them as the non-standard tokens instead: only for lines that are meant to be faulty
    (validator/faults.py)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=allow_nan)


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
    if not os.path.isfile(path):
        return None
    try:
        with open(path, "rb") as f:
            manifest = json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError, RecursionError) as e:
        raise RunManifestError(f"{path}: unreadable ({type(e).__name__}: {str(e)[:100]})") from None
    problem = run_manifest_violation(manifest)
    if problem:
        raise RunManifestError(f"{path}: {problem}")
    return manifest
