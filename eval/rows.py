"""A release's rows of one split, as the tasks read them, each tied to the generator's own spec.

The manifest and the files are checked by the report's reader (`report.release_reader`: manifest
schema, the file rule, caps before decompressing, counts per family and split); the columns the
tasks need are read one row group at a time. A row is scored only against what its (family,
seed) gives back: its stored spec and source must be `build_spec(family, seed)` and its rendering,
else the release is refused (a row forged to make a wrong answer look right never judges one).
"""

from __future__ import annotations

import json

from eval.tasks import COLUMNS, SPLITS
from generator.families import build_spec
from generator.render import render_source
from report.release_reader import ReleaseError, load_release, open_shard
from schemas.dataset_format import REAL_CONFIG
from schemas.files import quote


class RowsError(Exception):
    """Why a release cannot be scored (one line, untrusted parts quoted)."""


def read_split(dist: str, split: str) -> list[dict]:
    """The rows of `split` over every config, sorted by id, each with its `spec` (a KernelSpec)."""
    if split not in SPLITS:
        raise RowsError(f"unknown split {quote(split, 40)}; known: {', '.join(SPLITS)}")
    try:
        manifest, light, _ = load_release(dist, dist)
        rows = []
        for f in manifest["files"]:
            if not f["path"].endswith(".parquet") or f["split"] != split or f["config"] in ("adjoint_mismatch", REAL_CONFIG):
                continue
            with open_shard(dist, f["path"], dist, None, f) as pf:
                for k in range(pf.num_row_groups):
                    rows += pf.read_row_group(k, columns=list(COLUMNS), use_threads=False).to_pylist()
    except ReleaseError as e:
        raise RowsError(str(e)) from None
    rows.sort(key=lambda r: r["id"])
    seen = set()
    for r in rows:
        if r["id"] in seen:
            raise RowsError(f"{quote(dist)}: id {quote(r['id'], 40)} appears twice in split {split}")
        seen.add(r["id"])
        r["spec"] = _own_spec(r, dist)
    return rows


def _own_spec(row: dict, dist: str) -> object:
    """The generator's spec for the row's (family, seed), refused unless the row stores exactly it
    and its rendering."""
    where = f"{quote(dist)}: row {quote(row['id'], 40)}"
    try:
        spec = build_spec(row["family"], row["seed"])
        stored = json.loads(row["spec"])
    except (ValueError, TypeError) as e:
        raise RowsError(f"{where}: no spec from its family and seed ({quote(str(e), 120)})") from None
    if stored != spec.to_json() or row["source"] != render_source(spec) or row["kernel_name"] != spec.name:
        raise RowsError(f"{where}: its spec, source or name is not the generator's for its family and seed "
                        "(run //tools:verify)")
    return spec
