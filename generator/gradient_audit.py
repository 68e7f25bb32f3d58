"""The gradient check's reach per family, read from a generated run's shards: of each family's
float kernels (a float array read and a float array written: something to differentiate), the
share that got a conclusive verdict (execute_backward_cpu passed or failed), and why the others
got none. Issue 29's target: at least 80% in every family.

A kernel without a float input or without a float output (an integer histogram, draws of
random numbers into a float array) has nothing to differentiate and is not counted. An in-place
array, a builtin whose adjoint Warp leaves empty and Warp's own non-differentiable warning do
count: those are float kernels that the check declines."""

from __future__ import annotations

import collections
import os

from generator.spec import KernelSpec, is_float
from schemas.dataset_format import list_shards, read_records
from schemas.files import quote

TARGET = 0.80
CHECK = "execute_backward_cpu"


def float_kernel(spec: KernelSpec) -> bool:
    """A float array read (in or inout) and a float array written (out or inout)."""
    arrays = [a for a in spec.args if a.kind == "array" and is_float(a.dtype)]
    return any(a.role in ("in", "inout") for a in arrays) and any(a.role in ("out", "inout") for a in arrays)


def _why(verdict: dict) -> str:
    """A reason without its particulars: `uses tile_max, whose adjoint ...` keeps the builtin,
    `Warp's codegen declares ...: <Warp's warning>` drops the warning."""
    status, reason = verdict.get("status", "missing"), verdict.get("reason") or ""
    head = reason.split(":")[0].split(" (")[0].split(", whose")[0]
    return quote(f"{status}: {head}" if head else status, 80)  # record text, printed to a terminal


def per_family(directory: str) -> dict[str, dict]:
    """{family: {float_kernels, conclusive, share, others: {reason: count}}} over the run's shards."""
    fams: dict[str, dict] = {}
    for path in list_shards(directory):
        for line_no, record, err in read_records(os.path.join(directory, path)):
            if err:
                raise ValueError(f"{path}:{line_no}: {err}")
            if not float_kernel(KernelSpec.from_json(record["spec"])):
                continue
            d = fams.setdefault(quote(record["family"], 40), {"float_kernels": 0, "conclusive": 0, "others": collections.Counter()})
            d["float_kernels"] += 1
            verdict = record["checks"].get(CHECK, {})
            if verdict.get("status") in ("passed", "failed"):
                d["conclusive"] += 1
            else:
                d["others"][_why(verdict)] += 1
    for d in fams.values():
        d["share"] = d["conclusive"] / d["float_kernels"]
        d["others"] = dict(d["others"].most_common())
    return dict(sorted(fams.items()))


def failures(fams: dict[str, dict]) -> list[str]:
    """One line per family under TARGET, with its most common reasons."""
    return [f"{fam}: gradient verdict on {d['conclusive']} of {d['float_kernels']} float kernels "
            f"({d['share']:.1%} < {TARGET:.0%}): " + ", ".join(f"{r} {n}" for r, n in list(d["others"].items())[:3])
            for fam, d in fams.items() if d["share"] < TARGET]
