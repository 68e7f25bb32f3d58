"""Reason groups (validator/reason_groups.py) and the validator's per-record counts
(validator/summary.py): every not_run and inconclusive reason the checks can give (read from
their source, and drawn from real specs) falls in a named group, never in "other"; an unknown
reason falls in "other: <code>" and is still counted; a tally's summary line reads back to what
it counted; a record's verdicts add up to one per check whichever wall it failed.

The not_run reason pipeline/chunk.py gives ir_match ("first extraction; ...") is a higher room's:
pipeline/summary_test.py holds it, with every other reason of a real run, to a named group."""

import ast
import inspect
import sys

import pytest

from generator.families import FAMILIES, build_spec
from validator import checks, gradients, summary
from validator.outcomes import ALL_CHECKS, KERNEL_CHECKS
from validator.reason_groups import GROUPS, NOT_RECORDED, CheckTally, group, not_reached, parse_line
from validator.verdicts import KernelResult, Verdict


def _samples(node, module, tree, depth: int = 0) -> list[str]:
    """The texts a reason expression can take, each formatted value as "x": a literal, an
    f-string, either branch of a conditional, a module constant, or what a local name is assigned."""
    if depth > 3:
        return []
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        return ["".join(v.value if isinstance(v, ast.Constant) else "x" for v in node.values)]
    if isinstance(node, ast.IfExp):
        return _samples(node.body, module, tree, depth + 1) + _samples(node.orelse, module, tree, depth + 1)
    if isinstance(node, ast.Name):
        if isinstance(getattr(module, node.id, None), str):
            return [getattr(module, node.id)]
        return [s for a in ast.walk(tree) if isinstance(a, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == node.id for t in a.targets)
                for s in _samples(a.value, module, tree, depth + 1)]
    return []


def emitted_reasons(module) -> list[tuple[str, str]]:
    """(status, reason text) for every not_run and inconclusive reason `module`'s source gives:
    not_run(...) calls, Verdict(check, status, None, reason), {"status", "reason"} dicts, and the
    reasons gpu_status and arrays_to_check return."""
    tree = ast.parse(inspect.getsource(module))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            if name == "not_run" and node.args:
                found.append(("not_run", node.args[-1]))
            if (name == "Verdict" and len(node.args) >= 4 and isinstance(node.args[1], ast.Constant)
                    and node.args[1].value in ("inconclusive", "not_run")):
                found.append((node.args[1].value, node.args[3]))
        if isinstance(node, ast.Dict):
            d = {k.value: v for k, v in zip(node.keys, node.values) if isinstance(k, ast.Constant)}
            if isinstance(d.get("status"), ast.Constant) and d["status"].value in ("inconclusive", "not_run"):
                found.append((d["status"].value, d["reason"]))
        if isinstance(node, ast.FunctionDef) and node.name in ("gpu_status", "arrays_to_check"):
            at = {"gpu_status": 1, "arrays_to_check": 2}[node.name]
            found += [("not_run", r.value.elts[at]) for r in ast.walk(node)
                      if isinstance(r, ast.Return) and isinstance(r.value, ast.Tuple)]
    return [(status, text) for status, n in found for text in _samples(n, module, tree) if text]


def test_every_reason_the_checks_give_has_a_named_group():
    """Read from the source of the checks: each reason is in a group of GROUPS, and each group but
    the two given elsewhere (the pipeline's ir_match note, the validator's not_reached) is hit."""
    reasons = emitted_reasons(checks) + emitted_reasons(gradients)
    assert len(reasons) >= 14, reasons
    labels = {status_reason: group(*status_reason) for status_reason in reasons}
    assert not [sr for sr, label in labels.items() if label.startswith("other")], labels
    unused = {label for _, label in GROUPS} - set(labels.values())
    assert unused == {"compared by //validator", "after {} failed"}, unused


def test_the_gradient_check_s_reasons_on_real_specs_are_grouped():
    """arrays_to_check on generated specs: in-place arrays, no float array, Warp's own warning and
    a builtin whose adjoint Warp lacks each land in their group."""
    got = {}
    for family in sorted(FAMILIES):
        for seed in range(12):
            spec = build_spec(family, seed)
            why = gradients.arrays_to_check(spec)[2]
            if why is None:
                used = sorted(gradients.builtins_used(spec) - gradients.ZERO_DERIVATIVE)
                why = gradients.arrays_to_check(spec, declared=f"Warning: in function \"{spec.name}\"")[2]
                got[group("not_run", why)] = why
                if used:
                    why = gradients.arrays_to_check(spec, missing={used[0]: "builtin.h"})[2]
            got[group("not_run", why)] = why
    assert {"in-place array", "no float array", "Warp declares non-differentiable",
            "adjoint Warp does not implement"} <= set(got), got


def test_an_unknown_reason_is_counted_as_other_never_dropped():
    """A reason no group matches goes to "other: <code>" (its first clause, no word with a digit such as a kernel's name); a failure is
    grouped by its code; a missing reason is counted as not recorded."""
    assert group("passed", None) is None
    assert group("failed", "execute_cpu: input set 1: y[0] differs") == "execute_cpu"
    assert group("not_run", "a reason from tomorrow; kernel loop_1b466e81: x") == "other: a reason from tomorrow"
    assert group("not_run", "kernel loop_1b466e81 did not run") == "other: kernel did not run"
    assert group("failed", "Not A Code: x") == "other: Not A Code"
    assert group("inconclusive", None) == NOT_RECORDED
    tally = CheckTally()
    tally.add("execute_gpu", "not_run", "a reason from tomorrow")
    assert tally.to_json() == {"execute_gpu": {"not_run": {"count": 1, "reasons": {"other: a reason from tomorrow": 1}}}}


def test_a_tally_s_line_reads_back_to_what_it_counted():
    """Counts by status in summary order, groups most frequent first; merge(to_json) is the same tally."""
    tally = CheckTally()
    for _ in range(3):
        tally.add("execute_backward_cpu", "not_run", gradients.IN_PLACE)
    tally.add("execute_backward_cpu", "not_run", gradients.NO_FLOAT_IO)
    tally.add("execute_backward_cpu", "inconclusive", "gradient: kink at the inputs along direction 0 (...)")
    tally.add("execute_backward_cpu", "passed", n=5)
    line = tally.line("execute_backward_cpu")
    assert line == "passed 5; inconclusive 1: kink at the inputs 1; not_run 4: in-place array 3, no float array 1"
    assert parse_line(line) == {"passed": (5, {}), "inconclusive": (1, {"kink at the inputs": 1}),
                                "not_run": (4, {"in-place array": 3, "no float array": 1})}
    again = CheckTally()
    again.merge(tally.to_json())
    assert again.to_json() == tally.to_json() and again.lines() == tally.lines()


@pytest.mark.parametrize("reason,expect", [
    ("corrupt: shard-00000.jsonl:7: not JSON", ("failed", "not_run", "not_run")),
    ("bounds: nested deeper than 64", ("failed", "not_run", "not_run")),
    ("schema: (root): 'toolchain' is a required property", ("failed", "not_run", "not_run")),
    ("spec: not the spec the generator draws for (arith, 1): dim differs", ("passed", "not_run", "failed")),
    ("safety: disallowed import at line 1", ("passed", "failed", "not_run")),
    ("spec_source: the source is not the rendering of the spec", ("passed", "passed", "failed")),
    ("consistency: stored input a is not the input seeded", ("passed", "passed", "failed")),
    ("finding: the record has no passing verdict for execute_cpu", ("passed", "passed", "passed")),
])
def test_a_record_rejected_before_compiling_gets_one_verdict_per_check(reason, expect):
    """schema, safety and spec_source by the wall that failed (passed only where every wall of it
    ran first); every later check not_run, grouped by what failed first."""
    tally = CheckTally()
    summary.tally_rejected(tally, reason)
    got = tally.to_json()
    assert list(got) == list(ALL_CHECKS) and all(tally.total(c) == 1 for c in ALL_CHECKS)
    assert tuple(next(iter(got[c])) for c in summary.STATIC_CHECKS) == expect
    code = reason.split(":")[0]
    assert got["execute_cpu"] == {"not_run": {"count": 1, "reasons": {f"after {code} failed": 1}}}
    assert group("not_run", not_reached(code)) == f"after {code} failed"


def test_a_compiled_record_gets_its_fresh_verdicts():
    """A kernel rejected at compile_cuda fails that check only; a compiled one gets each fresh verdict."""
    tally = CheckTally()
    summary.tally_judged(tally, KernelResult.rejected("compile_cuda: NVRTC said no"), {})
    verdicts = {k: Verdict(k, "passed") for k in KERNEL_CHECKS}
    verdicts["execute_gpu"] = Verdict.not_run("execute_gpu", "no CUDA device on this machine")
    summary.tally_judged(tally, KernelResult(ir={"cpp": 1}, toolchain={"t": 1}, verdicts=verdicts),
                         {"ir": {"cpp": 1}, "toolchain": {"t": 1}})
    assert all(tally.total(c) == 2 for c in ALL_CHECKS)
    assert tally.line("compile_cuda") == "passed 1; failed 1: compile_cuda 1"
    assert tally.line("execute_cpu") == "passed 1; not_run 1: after compile_cuda failed 1"
    assert tally.line("execute_gpu") == "not_run 2: after compile_cuda failed 1, no CUDA device 1"
    assert tally.line("ir_match") == "passed 1; not_run 1: after compile_cuda failed 1"


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
