"""Test helpers for forging releases (testonly): a shard rewritten and re-signed, so checksums
alone would pass it and only the content checks can catch it."""

import hashlib
import json
import os
import shutil

from tools import release
from tools import release_format as fmt


def resign_shard(dist: str, rel: str, rows: list[dict], manifest: dict) -> None:
    """Write `rows` as the Parquet shard `rel` of the release `dist` and re-list it in
    `manifest` (written to dist/manifest.json) with its new size and sha256."""
    release.write_parquet(rows, fmt.arrow_schema(manifest["toolchain"]["ptx_archs"]), os.path.join(dist, rel))
    entry = next(f for f in manifest["files"] if f["path"] == rel)
    with open(os.path.join(dist, rel), "rb") as f:
        data = f.read()
    entry.update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    with open(os.path.join(dist, "manifest.json"), "w") as f:
        json.dump(manifest, f)


def tmp_root(default: str) -> str:
    """The test's temporary directory (Bazel's TEST_TMPDIR, else `default`), created; `datasets`
    keeps its caches there and never reaches the network (it reads these at import)."""
    tmp = os.environ.get("TEST_TMPDIR") or default
    os.makedirs(tmp, exist_ok=True)
    os.environ.setdefault("HF_HOME", os.path.join(tmp, "hf"))
    os.environ["HF_DATASETS_CACHE"] = os.path.join(tmp, "hf", "datasets")
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    return tmp


def fresh_dir(tmp: str, name: str) -> str:
    """tmp/name, emptied (not created)."""
    path = os.path.join(tmp, name)
    shutil.rmtree(path, ignore_errors=True)
    return path
