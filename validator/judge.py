"""One record judged against a fresh check of it: does what a record stores (toolchain, IR,
outputs, gradient verdict and example, branch coverage) agree with what this validator computes
from its spec? Also the check, before any work, that the records were made with this validator's
toolchain. Split from `revalidate`, which re-exports every name here.
"""

from __future__ import annotations

import json

import schemas
from extractor import warp_adapter
from generator import records
from validator import checks
from validator.verdicts import ValidatorError


def _compare_outputs(spec, fresh: dict, stored: dict) -> str | None:
    for a in spec.args:
        if a.name in fresh:
            if a.name not in stored:
                return f"io: stored outputs lack {a.name}"
            try:
                s = checks.tensor_from_json(stored[a.name])
            except (TypeError, ValueError, KeyError) as e:
                return f"io: stored output {a.name} is not a valid tensor: {type(e).__name__}: {str(e)[:100]}"
            if s.shape != fresh[a.name].shape or s.dtype != fresh[a.name].dtype or not (s == fresh[a.name]).all():
                return f"io: stored output {a.name} differs from a fresh CPU execution"
    extra = set(stored) - set(fresh)
    if extra:
        return f"io: stored outputs hold {sorted(extra)[0]}, which the kernel does not write"
    return None


class ToolchainMismatch(ValidatorError):
    """The dataset was made with other compilers than this validator runs: its IR cannot match."""


def check_toolchain(directory: str, stored: dict | None) -> None:
    """Stop before any work when the records were made with another Warp, NVRTC or LLVM
    (`stored`: the first record's toolchain and "_schema_version", or a release's)."""
    if stored is None:
        return
    version = stored.get("_schema_version")
    if version != schemas.PAIR_SCHEMA_VERSION:
        raise ToolchainMismatch(f"{directory}: records of pair schema {version}; this validator reads "
                                f"{schemas.PAIR_SCHEMA_VERSION} (records of another schema lack checks this one "
                                f"requires, or store code Warp did not compile as stored: regenerate them)")
    here = warp_adapter.compilers()
    diff = [k for k in here if stored.get(k) != here[k]]
    if diff:
        made = ", ".join(f"{k} {stored.get(k)}" for k in diff)
        this = ", ".join(f"{k} {here[k]}" for k in diff)
        raise ToolchainMismatch(f"{directory}: made with {made}; this validator runs {this}: "
                                f"re-validate with the same toolchain (see the record's toolchain)")


def _toolchain_diff(stored: dict, fresh: dict) -> str:
    for key in sorted(set(stored) | set(fresh)):
        if stored.get(key) != fresh.get(key):
            if isinstance(stored.get(key), dict) and isinstance(fresh.get(key), dict):
                return f"{key}.{_toolchain_diff(stored[key], fresh[key])}"
            return f"{key}: stored {json.dumps(stored.get(key))[:80]}, compiled with {json.dumps(fresh.get(key))[:80]}"
    return "equal"


def _compare_gradient(res: checks.KernelResult, rec: dict, finding: bool = False) -> str | None:
    """The stored gradient verdict, example and branch coverage must be what a fresh run gives.
    A finding (`finding`: a record of the run's FINDINGS_CONFIG directory) must fail its fresh gradient
    check as GRADIENT_MISMATCH again: the mismatch it reports is Warp's, reproduced here."""
    fresh, stored = res.verdicts["execute_backward_cpu"], rec["checks"]["execute_backward_cpu"]
    if finding:
        if fresh.status != "failed" or checks.split_reason(fresh.reason)[0] != checks.GRADIENT_MISMATCH:
            return (f"finding: the stored {checks.GRADIENT_MISMATCH} does not reproduce: a fresh backward run gives "
                    f"{fresh.status}{': ' + fresh.reason if fresh.reason else ''}"[:400])
    elif fresh.status == "failed":
        return fresh.reason
    if fresh.status != stored["status"]:
        return f"gradient: stored execute_backward_cpu is {stored['status']}, a fresh run gives {fresh.status}"
    if records.grad_json(res.grad) != rec["grad"]:
        return "gradient: the stored gradient example differs from a fresh backward run"
    if res.coverage != rec["coverage"]:
        return "consistency: the stored branch coverage differs from the oracle's"
    return None


def _judge_one(spec, res: checks.KernelResult, rec: dict, finding: bool = False) -> tuple[str | None, checks.Verdict | None]:
    """(why a fresh check of one record disagrees with what it stores, or None; the fresh GPU
    verdict where the record got as far as GPU execution, else None)."""
    if res.error:
        return res.error.reason, None
    if res.toolchain != rec["toolchain"]:
        return f"toolchain: {_toolchain_diff(rec['toolchain'], res.toolchain)}", None
    if res.ir != rec["ir"]:
        target = next((t for t in ("cpp", "cuda", "ptx") if res.ir[t] != rec["ir"].get(t)), "ir")
        return f"ir_match: stored {target} IR differs from a fresh extraction", None
    if not res.verdicts["execute_cpu"].passed:
        return res.verdicts["execute_cpu"].reason, None
    g = res.verdicts["execute_gpu"]
    if g.status == "failed":
        return g.reason, g
    return _compare_outputs(spec, res.outputs, rec["io"]["outputs"]) or _compare_gradient(res, rec, finding), g
