"""Reading a release's Parquet files back into pair records, shared by //tools:verify (static
re-checks), //validator (re-execution of a downloaded release) and //report.

A row plus the release manifest's schema version and toolchain gives back the pair record it was
made from (`to_record`); files are read one row group at a time (`row_groups`)."""

from __future__ import annotations

import json

import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from schemas import files


def to_record(row: dict, schema_version: str, toolchain: dict) -> dict:
    """The pair record a row was made from (the toolchain is the release's, one for all)."""
    archs = sorted(k[len("ptx_"):] for k in row if k.startswith("ptx_"))
    return {
        "schema_version": schema_version, "origin": row["origin"], "id": row["id"], "family": row["family"], "target": row["target"],
        "seed": row["seed"], "kernel_name": row["kernel_name"], "source": row["source"],
        "spec": json.loads(row["spec"]), "args": json.loads(row["args"]), "dim": list(row["dim"]),
        "ir": {"cpp": {"forward": row["ir_cpp_forward"], "backward": row["ir_cpp_backward"]},
               "cuda": {"forward": row["ir_cuda_forward"], "backward": row["ir_cuda_backward"]},
               "ptx": {a: {"forward": row[f"ptx_{a}"]} for a in archs}},
        "io": {"inputs": json.loads(row["inputs"]), "outputs": json.loads(row["outputs"])},
        "checks": json.loads(row["checks"]), "grad": json.loads(row["grad"]),
        "coverage": json.loads(row["coverage"]), "toolchain": toolchain,
    }


def to_real_record(row: dict, schema_version: str) -> dict:
    """The real record (schemas/real.schema.json, //harvest) a row of the real config was made
    from: nothing is derived, every field is stored (the PTX per `ptx_<arch>` column)."""
    archs = sorted(k[len("ptx_"):] for k in row if k.startswith("ptx_"))
    return {
        "schema_version": schema_version, "origin": row["origin"], "name": row["kernel_name"],
        "overload": row["overload"], "source": row["source"], "provenance": json.loads(row["provenance"]),
        "ir": {"cpp": {"forward": row["ir_cpp_forward"], "backward": row["ir_cpp_backward"]},
               "cuda": {"forward": row["ir_cuda_forward"], "backward": row["ir_cuda_backward"]},
               "ptx": {a: {"forward": row[f"ptx_{a}"]} for a in archs}},
        "ir_order": row["ir_order"], "compile": json.loads(row["compile"]),
        "launch": json.loads(row["launch"]), "execute": json.loads(row["execute"]),
    }


def open_parquet(path: str, shown: str | None = None) -> pq.ParquetFile:
    """A Parquet file, by the file rule (a regular file, no link followed: files.FileRefused
    otherwise), opened first as `pq.read_table` opens one (so a damaged file raises the same
    error), for `row_groups`; refused (files.FileRefused) when its footer declares row groups or
    cells over the caps, before anything is decompressed."""
    files.regular(path, shown)
    ds.ParquetFileFormat().make_fragment(path, pafs.LocalFileSystem()).physical_schema  # noqa: B018: reads the footer
    pf = pq.ParquetFile(path)
    too_large = files.parquet_too_large(pf)
    if too_large:
        raise files.FileRefused(f"{files.quote(shown if shown is not None else path)}: {too_large}")
    return pf


def row_groups(pf: pq.ParquetFile):
    """The file's rows, one row group (`ROW_GROUP_ROWS` rows in a release) at a time, as lists
    of dicts: a reader of any release holds one row group in memory. Read on this thread
    (Arrow's reader threads would each keep an allocator arena)."""
    for k in range(pf.num_row_groups):
        yield pf.read_row_group(k, use_threads=False).to_pylist()
