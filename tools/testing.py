"""Test helpers (testonly): forging releases (a shard rewritten and re-signed, so checksums
alone would pass it and only the content checks can catch it), reading runs and releases, the
gate's one-line refusals, and the small real runs and release the release tests share (made
once per process)."""

import functools
import glob
import hashlib
import json
import os
import shutil

from schemas.dataset_format import RUN_MANIFEST
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
    write_manifest(dist, manifest)


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


def fresh_copy(tmp: str, src: str, name: str) -> str:
    """`src` copied to tmp/name (emptied first)."""
    dst = fresh_dir(tmp, name)
    shutil.copytree(src, dst)
    return dst


def read_manifest(d: str) -> dict:
    """The manifest.json of the run or release `d`."""
    with open(os.path.join(d, RUN_MANIFEST)) as f:
        return json.load(f)


def write_manifest(d: str, manifest: dict) -> None:
    """`manifest` written as the manifest.json of the run or release `d` (not re-signed)."""
    with open(os.path.join(d, RUN_MANIFEST), "w") as f:
        json.dump(manifest, f)


def read_records(d: str) -> list[dict]:
    """The records of the run `d`'s shards, in shard order."""
    out = []
    for name in sorted(glob.glob(os.path.join(d, "shard-*.jsonl"))):
        with open(name) as f:
            out += [json.loads(line) for line in f]
    return out


@functools.cache
def small_runs(tmp: str) -> tuple[str, str]:
    """tmp/in_cpu and tmp/in_cuda: 30 CPU kernels (arith, branch) and 20 CUDA kernels (stencil,
    matvec), seed 3, through the real pipeline (compiled and executed); made once per process.
    Tests copy them before changing anything."""
    import pipeline  # imported here: a test sets `datasets` offline (tmp_root) before its imports

    cpu, cuda = fresh_dir(tmp, "in_cpu"), fresh_dir(tmp, "in_cuda")
    pipeline.run(pipeline.RunConfig("cpu", 30, 3, cpu, ["arith", "branch"], workers=1, quiet=True, archs=["sm_90"]))
    pipeline.run(pipeline.RunConfig("cuda", 20, 3, cuda, ["stencil", "matvec"], workers=1, quiet=True, archs=["sm_90"]))
    return cpu, cuda


@functools.cache
def small_release(tmp: str) -> str:
    """tmp/dist: release 1.0.0 of `small_runs(tmp)` with its JSONL export; made once per process."""
    out = fresh_dir(tmp, "dist")
    rc = release.main(["--in", *small_runs(tmp), "--out", out, "--version", "1.0.0", "--jsonl"])
    if rc != 0:
        raise AssertionError(f"the release of the small runs exited {rc}")
    return out


def release_fixtures(tmp: str):
    """The module-scoped fixtures `inputs` (`small_runs(tmp)`: the small CPU and CUDA runs) and
    `dist` (`small_release(tmp)`: their release with JSONL) that a release test file binds:
    `inputs, dist = release_fixtures(TMP)`."""
    import pytest

    @pytest.fixture(scope="module")
    def inputs():
        return small_runs(tmp)

    @pytest.fixture(scope="module")
    def dist():
        return small_release(tmp)

    return inputs, dist


def release_cli(args: list[str], capsys) -> tuple[int, str]:
    """//tools:release's exit code and what it wrote to stderr."""
    rc = release.main(args)
    err = capsys.readouterr().err
    return rc, err


def refused(args: list[str], capsys, out: str, *words: str) -> str:
    """Asserts the release of `args` into `out` is refused with one line holding every word of
    `words`, and leaves nothing behind (no `out`, no temporary directory beside it)."""
    rc, err = release_cli(args + ["--out", out], capsys)
    assert rc != 0, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for w in words:
        assert w in err, err
    assert not os.path.exists(out)
    assert not [n for n in os.listdir(os.path.dirname(out)) if n.startswith(".release-")]
    return err


def rewrite_run(d: str, edit, shards: int = 1) -> dict:
    """Apply `edit(records)` to the first `shards` shards of the run `d` and re-sign them in d's
    manifest, so only the gate's record checks (not the checksums) can catch the change; returns
    the manifest as written."""
    m = read_manifest(d)
    for shard in m["shards"][:shards]:
        path = os.path.join(d, shard["path"])
        with open(path) as f:
            recs = [json.loads(line) for line in f]
        edit(recs)
        data = "".join(json.dumps(r, sort_keys=True) + "\n" for r in recs).encode()
        with open(path, "wb") as f:
            f.write(data)
        shard.update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest(), records=len(recs))
    write_manifest(d, m)
    return m
