"""The one enumeration of checks (`validator.outcomes.Check`): its order is the record's, and the
lists the rest of the project uses are drawn from it."""

from __future__ import annotations

import json
import os
import sys

import pytest

from validator import outcomes
from validator.outcomes import Check

ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))


def test_the_enumeration_is_the_schemas_checks_in_their_order():
    with open(os.path.join(ROOT, "schemas", "pair.schema.json"), encoding="utf-8") as f:
        schema = json.load(f)
    assert list(outcomes.ALL_CHECKS) == schema["properties"]["checks"]["required"]
    assert list(outcomes.ALL_CHECKS) == list(schema["properties"]["checks"]["properties"])


def test_the_derived_lists_are_the_enumerations_subsets_in_its_order():
    assert outcomes.MUST_PASS == ("schema", "safety", "spec_source", "compile_cpu", "compile_cuda", "execute_cpu")
    assert outcomes.KERNEL_CHECKS == ("compile_cpu", "compile_cuda", "execute_cpu", "execute_gpu",
                                      "execute_backward_cpu", "execute_backward_gpu")
    assert outcomes.EXECUTION_CHECKS == ("execute_cpu", "execute_gpu", "execute_backward_cpu", "execute_backward_gpu")
    assert outcomes.GRADIENT_CHECKS == ("execute_backward_cpu", "execute_backward_gpu")
    # every static check is outside what check_batch judges, and every other check inside it
    assert {c.value for c in Check if c.static} | set(outcomes.KERNEL_CHECKS) == set(outcomes.ALL_CHECKS)
    assert not {c.value for c in Check if c.static} & set(outcomes.KERNEL_CHECKS)


def test_the_finding_names_differ_in_meaning_and_in_spelling():
    # the reason code a gradient check fails with, and the directory/config holding such pairs
    assert outcomes.GRADIENT_MISMATCH == "gradient_mismatch"
    assert outcomes.FINDINGS_CONFIG == "adjoint_mismatch"
    assert outcomes.GRADIENT_MISMATCH not in outcomes.ALL_CHECKS


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
