"""Reading a release for the report: its manifest (schema-checked) and the small fields of every
Parquet row, with the chars, lines and tokens of each measured field; a sample's text is fetched
again by where its row lies.

Every file is hostile: manifest.json is read by `schemas.files.read_json` (a regular file, no
link followed, no FIFO waited on, size and nesting capped before decoding); only the Parquet
files it lists are opened, each by `open_shard` (the same rule, then its footer checked against
the caps before a row group is decompressed).
"""

from __future__ import annotations

import array
import collections
import contextlib
import os
import sys

import schemas
from report.coverage import called
from report.measures import lines, measured_fields, tokens
from report.open_values import as_count
from runtime.process import Terminated
from schemas import files
from schemas.dataset_format import REAL_CONFIG, RELEASE_KIND, RELEASE_MANIFEST, release_file_problems
from schemas.files import quote

LIGHT_COLUMNS = ("id", "family", "kernel_name", "seed", "split", "skeleton_hash", "checks", "coverage")
REAL_LIGHT_COLUMNS = ("id", "wheel_dir", "kernel_name", "split", "source")  # of the real config's rows
STATUSES = ("passed", "failed", "inconclusive", "not_run")
SPLIT_NAMES = ("train", "validation", "test")
UNITS = ("chars", "lines", "tokens")


class ReleaseError(Exception):
    """Why a directory cannot be reported on (one line, untrusted parts already quoted)."""


def load_release(dist: str, shown: str) -> tuple[dict, dict[str, list[dict]], dict]:
    """The manifest (schema-checked), the rows of every Parquet shard per config sorted by
    (id, kernel_name) and, per config and field, the chars, lines and tokens of each row in that
    order. The shards are read one row group at a
    time and each row is kept as its small fields only (`light_row`: what the facts count, and
    where the row lies for `fetch`), so the report holds no text but the samples'.

    Every file is hostile: see the module's note."""
    raw, shown = shown, quote(shown)
    m = _read_manifest(dist, raw, shown)
    fields = measured_fields(sorted(set(m["toolchain"]["ptx_archs"])))
    rows, sizes = _read_shards(dist, raw, shown, m, fields)
    measured = _sort_rows(rows, sizes, fields)
    _check_counts(m, rows, shown)
    return m, dict(rows), measured


def _read_manifest(dist: str, raw: str, shown: str) -> dict:
    """DIST's manifest.json (`raw` as the user named DIST, `shown` quoted), refused unless it is a
    release manifest that keeps its schema and the file rule, with PTX archs."""
    if not os.path.isdir(dist):
        raise ReleaseError(f"{shown}: not a directory")
    path = os.path.join(dist, RELEASE_MANIFEST)
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
    if not sorted(set(m["toolchain"]["ptx_archs"])):
        raise ReleaseError(f"{shown}/manifest.json: toolchain.ptx_archs is empty")
    return m


def _read_shards(dist: str, raw: str, shown: str, m: dict, fields: list[str]) -> tuple[dict, dict]:
    """(the light rows per config in read order, per config and field the chars, lines and tokens
    of each of them) of every Parquet file the manifest `m` lists."""
    rows: dict[str, list[dict]] = collections.defaultdict(list)
    # per config and field: the chars, lines and tokens of each row in read order, as machine
    # integers (a dict of tuples per row cost about 600 bytes a row, 12 MB at 20,000 records)
    sizes: dict[str, dict] = collections.defaultdict(lambda: {k: (array.array("q"), array.array("q"),
                                                                  array.array("q")) for k in fields})
    want_schema = arrow_schema(sorted(set(m["toolchain"]["ptx_archs"])))
    for f in m["files"]:
        if not f["path"].endswith(".parquet"):
            continue
        where = f"{shown}/{quote(f['path'])}"
        n = 0
        real = f["config"] == REAL_CONFIG
        if real and not m.get("real"):
            raise ReleaseError(f"{where}: a {REAL_CONFIG} file in a release whose manifest.json has no real section")
        with open_shard(dist, f["path"], raw, real_schema(m["real"]["ptx_archs"]) if real else want_schema, f) as pf:
            for k in range(pf.num_row_groups):
                if real:
                    table = pf.read_row_group(k, columns=list(REAL_LIGHT_COLUMNS), use_threads=False)
                    n += _read_real_group(table, f["path"], n, where, rows[REAL_CONFIG])
                else:
                    table = pf.read_row_group(k, columns=list(LIGHT_COLUMNS) + fields, use_threads=False)
                    n += _read_row_group(table, f["path"], n, where, fields, rows, sizes, f["config"])
                del table
        if n != f["rows"]:
            raise ReleaseError(f"{where}: {n} rows, manifest.json says {f['rows']}")
    return rows, sizes


def _read_real_group(table, rel: str, n: int, where: str, out: list[dict]) -> int:
    """Appends the light rows of one row group of the real config (its folder of the wheel as its
    `family`, the builtins its source calls) to `out`; its number of rows."""
    for i, row in enumerate(table.to_pylist()):
        for k in REAL_LIGHT_COLUMNS:
            if not isinstance(row[k], str):
                raise ReleaseError(f"{where}: row {n + i} (id {quote(row['id'], 80)}): {k} is null")
        if row["split"] not in SPLIT_NAMES:
            raise ReleaseError(f"{where}: row {n + i} (id {quote(row['id'], 80)}): split is not one of "
                               f"{', '.join(SPLIT_NAMES)}")
        out.append({"id": row["id"], "family": sys.intern(row["wheel_dir"]), "kernel_name": row["kernel_name"],
                    "split": sys.intern(row["split"]), "builtins": called(row["source"]), "at": (sys.intern(rel), n + i)})
    return table.num_rows


def _read_row_group(table, rel: str, n: int, where: str, fields: list[str], rows: dict, sizes: dict,
                    config: str) -> int:
    """Appends the light rows of one row group `table` of config `config` (its first row is row `n`
    of the file `rel`) to `rows[config]` and their measurements to `sizes[config]`; its number of
    rows."""
    light = table.select(list(LIGHT_COLUMNS)).to_pylist()
    for i, row in enumerate(light):
        rows[config].append(light_row(row, rel, n + i, where))
    per = sizes[config]
    first = len(rows[config]) - len(light)
    for field in fields:
        chars, nlines, ntokens = per[field]
        for i, text in enumerate(table.column(field).to_pylist()):
            if not isinstance(text, str):
                raise ReleaseError(f"{where}: row {n + i} (id {quote(light[i]['id'], 80)}): "
                                   f"{field} is null")
            if field == "source":  # the builtins it calls, read with ast (report/coverage.py)
                rows[config][first + i]["builtins"] = called(text)
            chars.append(len(text))
            nlines.append(lines(text))
            ntokens.append(tokens(text))
    return table.num_rows


def _sort_rows(rows: dict, sizes: dict, fields: list[str]) -> dict:
    """Sorts each config's rows by (id, kernel_name) in place; their measurements in that order,
    per config, field and unit (the read-order arrays are let go config by config)."""
    measured = {}
    for config in rows:
        order = sorted(range(len(rows[config])), key=lambda k: (rows[config][k]["id"], rows[config][k]["kernel_name"]))
        rows[config] = [rows[config][k] for k in order]
        if config == REAL_CONFIG:  # counted by folder and builtins, not measured
            continue
        measured[config] = {field: {unit: [sizes[config][field][u][k] for k in order]
                                    for u, unit in enumerate(UNITS)} for field in fields}
        del sizes[config]
    return measured


def _check_counts(m: dict, rows: dict, shown: str) -> None:
    """Refuses shards whose rows per config, family and split are not the manifest's counts."""
    for config, c in m["counts"]["configs"].items():
        got = collections.Counter((r["family"], r["split"]) for r in rows.get(config, []))
        want = {(fam, s): n for fam, v in c["families"].items() for s, n in v.items() if s != "total" and n}
        if dict(got) != want:
            raise ReleaseError(f"{shown}: the {config} shards' counts per family and split differ from "
                               "manifest.json (run //tools:verify)")
    for config in rows:
        if config not in m["counts"]["configs"]:
            raise ReleaseError(f"{shown}: shards of config {config} that manifest.json does not count")


def real_schema(archs: list[str]):
    """The real config's Arrow schema, as //tools:release writes it."""
    from tools.release_real import arrow_schema as schema_of

    return schema_of(archs)


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
    if not (isinstance(cov, dict) and as_count(cov.get("outcomes")) is not None
            and as_count(cov.get("taken")) is not None and isinstance(cov.get("launch_dims"), list)):
        raise ReleaseError(f"{where}: row {index} (id {quote(row['id'], 80)}): coverage lacks outcomes, taken "
                           "or launch_dims")
    if row["split"] not in SPLIT_NAMES:
        raise ReleaseError(f"{where}: row {index} (id {quote(row['id'], 80)}): split is not one of "
                           f"{', '.join(SPLIT_NAMES)}")
    # the few distinct strings (family, split, status, file) are shared, not one copy per row
    return {"id": row["id"], "family": sys.intern(row["family"]), "kernel_name": row["kernel_name"],
            "seed": row["seed"], "split": sys.intern(row["split"]), "skeleton_hash": row["skeleton_hash"],
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
