"""The vocabulary of verdicts: the checks a record carries, in one enumeration, and the dicts the
static checks return (PASSED, `failed(reason)`, `not_run(reason)`: the stored form of a check,
{"status", "reason"?}).

A module of its own so that `verdicts`, `checks` and the checks split from them (`safety`) share
it without importing each other. Every list of check names in the project is derived from
`Check`; its order is the record's (pair.schema.json's `checks`, held by outcomes_test).
"""

from __future__ import annotations

import enum

from schemas.dataset_format import FINDINGS_DIR

PASSED = {"status": "passed"}


def failed(reason: str) -> dict:
    return {"status": "failed", "reason": reason}


def not_run(reason: str) -> dict:
    return {"status": "not_run", "reason": reason}


class Check(enum.Enum):
    """Every check a record holds a verdict for, in the record's order. `static`: needs no
    compiler (the Warp-free walls); `must_pass`: a stored record carries it passed; `execution`:
    a launch ran; `gradient`: the backward check, whose failure as GRADIENT_MISMATCH is a finding."""

    SCHEMA = "schema"
    SAFETY = "safety"
    SPEC_SOURCE = "spec_source"
    IR_MATCH = "ir_match"
    COMPILE_CPU = "compile_cpu"
    COMPILE_CUDA = "compile_cuda"
    EXECUTE_CPU = "execute_cpu"
    EXECUTE_GPU = "execute_gpu"
    EXECUTE_BACKWARD_CPU = "execute_backward_cpu"
    EXECUTE_BACKWARD_GPU = "execute_backward_gpu"

    @property
    def static(self) -> bool:
        return self in (Check.SCHEMA, Check.SAFETY, Check.SPEC_SOURCE, Check.IR_MATCH)

    @property
    def must_pass(self) -> bool:
        return self in (Check.SCHEMA, Check.SAFETY, Check.SPEC_SOURCE, Check.COMPILE_CPU, Check.COMPILE_CUDA,
                        Check.EXECUTE_CPU)

    @property
    def execution(self) -> bool:
        return self.value.startswith("execute_")

    @property
    def gradient(self) -> bool:
        return self.value.startswith("execute_backward_")


def check_names(keep=lambda c: True) -> tuple[str, ...]:
    """The names of the checks `keep` selects, in the record's order."""
    return tuple(c.value for c in Check if keep(c))


ALL_CHECKS = check_names()
# the verdicts a stored record must carry passed: these always run, the others may be not_run
MUST_PASS = check_names(lambda c: c.must_pass)
# the checks `checks.check_batch` gives a verdict on (compile and execute), in a record's order
KERNEL_CHECKS = check_names(lambda c: not c.static)
EXECUTION_CHECKS = check_names(lambda c: c.execution)
GRADIENT_CHECKS = check_names(lambda c: c.gradient)

# a pair whose adjoint disagrees with the oracle's gradient is a finding about Warp, not a
# generation failure: the reason code its gradient check fails with...
GRADIENT_MISMATCH = "gradient_mismatch"
# ...and the name of the run's directory and of the release's config that hold such pairs
FINDINGS_CONFIG = FINDINGS_DIR
