"""What a release holds, shared by //tools:release (writes it) and //tools:verify (re-checks it).

The Parquet columns, the record <-> row mapping (a row plus the manifest's toolchain gives back
the pair record, so verify can re-apply the pair schema), the file names, and the split rule.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import sys
import tempfile

import pyarrow as pa

from generator.diversity import skeleton
from schemas.dataset_format import canonical_json
from schemas.release_rows import open_parquet, row_groups, to_record  # noqa: F401 (re-exported)

SPLITS = ("train", "validation", "test")
DEFAULT_FRACTIONS = (0.90, 0.05, 0.05)
ROW_GROUP_ROWS = 100  # a few MB per row group: well under the Hugging Face viewer's limit

# (name, type, description); ptx_<arch> columns are added per PTX arch of the toolchain
BASE_COLUMNS = [
    ("id", pa.string(), "sha256 prefix of the source with the kernel's name normalized"),
    ("origin", pa.string(), "synthetic: a kernel the generator drew (real kernels of the warp-lang wheel: //harvest)"),
    ("family", pa.string(), "generator family (the kernel's pattern)"),
    ("target", pa.string(), "generator target: cpu or cuda (the config)"),
    ("seed", pa.int64(), "seed that reproduces the spec (< 2^63)"),
    ("kernel_name", pa.string(), "the @wp.kernel function's name"),
    ("source", pa.string(), "Warp Python source of the kernel and its helpers"),
    ("ir_cpp_forward", pa.string(), "Warp's C++ (CPU backend), forward"),
    ("ir_cpp_backward", pa.string(), "Warp's C++ (CPU backend), backward (adjoint)"),
    ("ir_cuda_forward", pa.string(), "Warp's CUDA C++, forward"),
    ("ir_cuda_backward", pa.string(), "Warp's CUDA C++, backward (adjoint)"),
]
TAIL_COLUMNS = [
    ("spec", pa.string(), "the KernelSpec the source renders from (JSON)"),
    ("args", pa.string(), "kernel arguments: name, kind, dtype, shape, role, and a struct's fields (JSON)"),
    ("dim", pa.list_(pa.field("element", pa.int64())), "launch dimensions"),
    ("inputs", pa.string(), "seeded input tensors used for execution (JSON: dtype, shape, data)"),
    ("outputs", pa.string(), "outputs of the CPU execution, checked against the NumPy oracle (JSON)"),
    ("checks", pa.string(), "verdict per check: status passed|failed|not_run|inconclusive, reason (JSON)"),
    ("grad", pa.string(), "gradient example of execute_backward_cpu: cotangent w, directions v, Warp's input "
                          "gradients g, <g, v> and the oracle's finite differences (JSON; null when not run)"),
    ("coverage", pa.string(), "what execution covered: branch_points, outcomes and taken over the seeded input sets, launch_dims (JSON)"),
    ("skeleton_hash", pa.string(), "sha256 prefix of the AST skeleton (identifiers and literals abstracted)"),
    ("split", pa.string(), "train, validation or test (from skeleton_hash)"),
]


def columns(ptx_archs: list[str], base: list = BASE_COLUMNS, tail: list = TAIL_COLUMNS) -> list[tuple[str, pa.DataType, str]]:
    """A config's columns: `base`, a PTX column per arch, `tail` (the real config passes its own)."""
    ptx = [(f"ptx_{a}", pa.string(), f"PTX for {a} from NVRTC, forward kernel entry") for a in sorted(ptx_archs)]
    return base + ptx + tail


def arrow_schema(ptx_archs: list[str], base: list = BASE_COLUMNS, tail: list = TAIL_COLUMNS) -> pa.Schema:
    return pa.schema([(name, typ) for name, typ, _ in columns(ptx_archs, base, tail)])


def lean_arrow_memory() -> None:
    """Arrow allocates through the C library's malloc from here on. Its default pool (mimalloc)
    keeps pages a row group freed for reuse: the release's peak RSS over 2,000 records was 246 MB
    with it, 212 MB without (`//bench -- --cases release_memory` measures the tools' peaks).
    Called by the release before it writes. (Verify and report only read, a row group at a
    time: their peaks were 3 to 4 MB higher with it, so they keep the default.)"""
    pa.set_memory_pool(pa.system_memory_pool())


def skeleton_hash(source: str) -> str:
    return hashlib.sha256(skeleton(source).encode()).hexdigest()[:16]


def split_of(skel_hash: str, fractions=DEFAULT_FRACTIONS) -> str:
    """A point in [0, 1) from the skeleton hash, cut at the cumulative fractions.

    Depends on the skeleton alone, so a kernel's split is stable across releases and every
    kernel with the same structure lands in the same split."""
    u = int(skel_hash, 16) / 16 ** len(skel_hash)
    edge = 0.0
    for name, frac in zip(SPLITS, fractions):
        edge += frac
        if u < edge:
            return name
    return SPLITS[-1]


def to_row(r: dict, split: str, skel_hash: str, ptx_archs: list[str]) -> dict:
    row = {
        "id": r["id"], "origin": r["origin"], "family": r["family"], "target": r["target"], "seed": r["seed"],
        "kernel_name": r["kernel_name"], "source": r["source"],
        "ir_cpp_forward": r["ir"]["cpp"]["forward"], "ir_cpp_backward": r["ir"]["cpp"]["backward"],
        "ir_cuda_forward": r["ir"]["cuda"]["forward"], "ir_cuda_backward": r["ir"]["cuda"]["backward"],
    }
    for a in sorted(ptx_archs):
        row[f"ptx_{a}"] = r["ir"]["ptx"][a]["forward"]
    row.update({
        "spec": canonical_json(r["spec"]), "args": canonical_json(r["args"]), "dim": list(r["dim"]),
        "inputs": canonical_json(r["io"]["inputs"]), "outputs": canonical_json(r["io"]["outputs"]),
        "checks": canonical_json(r["checks"]), "grad": canonical_json(r["grad"]),
        "coverage": canonical_json(r["coverage"]), "skeleton_hash": skel_hash, "split": split,
    })
    return row


def shard_name(config: str, split: str, k: int, n: int) -> str:
    return f"data/{config}/{split}-{k:05d}-of-{n:05d}.parquet"


def publish(tmp: str, out: str, old_prefix: str) -> None:
    """Rename a finished directory into place; a previous one at `out` is swapped out first
    (two renames, so a reader sees the old or the new one, briefly neither, never a mix)."""
    if os.path.isdir(out) and not os.listdir(out):
        os.rmdir(out)
    if os.path.exists(out):
        old = tempfile.mkdtemp(prefix=old_prefix, dir=os.path.dirname(out))
        os.rename(out, os.path.join(old, os.path.basename(out) or "old"))
        os.rename(tmp, out)
        shutil.rmtree(old)
    else:
        os.rename(tmp, out)


@contextlib.contextmanager
def built_beside(out: str, prefix: str):
    """A fresh directory beside `out` to build into, with the permissions a new directory gets
    (not mkdtemp's 0700); `publish`ed onto `out` when the block ends normally (a previous one
    swapped out through a `<prefix>old-` directory), removed whatever else happens."""
    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=prefix, dir=parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)
        yield tmp
        publish(tmp, out, f"{prefix}old-")
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp)


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one `error: ...` line and exit 2, not a usage block."""

    usage_hint = ""

    def error(self, message):
        print(f"error: {message} (usage: {self.usage_hint})", file=sys.stderr)
        sys.exit(2)
