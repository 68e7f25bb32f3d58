"""What //validator counts and prints at its end: every record's fresh verdict for every check
(`tally_rejected`, `tally_judged`), counted by status with reasons grouped (`reason_groups`),
and the closing summary (`print_summary`), which names no record: each record's own reason is
in the --report JSON (its "failures"), the first few listed above the summary.
"""

from __future__ import annotations

from schemas import files
from validator.outcomes import FINDINGS_CONFIG, KERNEL_CHECKS, Check
from validator.reason_groups import SUMMARY_STATUSES, CheckTally, group, not_reached
from validator.verdicts import split_reason

# check_static's walls in the order it runs them, each with the check whose verdict it is part of
WALLS = (("bounds", Check.SCHEMA.value), ("schema", Check.SCHEMA.value), ("spec", Check.SPEC_SOURCE.value),
         ("safety", Check.SAFETY.value), ("spec_source", Check.SPEC_SOURCE.value),
         ("consistency", Check.SPEC_SOURCE.value))
STATIC_CHECKS = (Check.SCHEMA.value, Check.SAFETY.value, Check.SPEC_SOURCE.value)
IR_MATCH = Check.IR_MATCH.value
# failed records listed above the summary (every one is in the report)
LISTED_FAILURES = 10


def tally_rejected(tally: CheckTally, reason: str) -> None:
    """A record that failed before anything was compiled (`reason`: it is unreadable, a wall of
    check_static, or a finding's rule): each static check passed whose walls all ran before the
    failed one, failed where the failed wall is its own, else not_run, as is every later check.
    A reason of no wall (unreadable: "corrupt") fails schema; a finding's rule runs after every wall."""
    code = split_reason(reason)[0]
    order = [w for w, _ in WALLS]
    at = order.index(code) if code in order else (len(order) if code == "finding" else -1)
    owner = dict(WALLS).get(code, Check.SCHEMA.value if at < 0 else None)
    for check in STATIC_CHECKS:
        if check == owner:
            tally.add(check, "failed", reason)
        elif all(order.index(w) < at for w, c in WALLS if c == check):
            tally.add(check, "passed")
        else:
            tally.add(check, "not_run", not_reached(code))
    for check in (IR_MATCH,) + KERNEL_CHECKS:
        tally.add(check, "not_run", not_reached(code))


def tally_judged(tally: CheckTally, res, rec: dict) -> None:
    """A record that passed check_static and was compiled afresh (`res`: its KernelResult).
    A kernel rejected as a whole fails the check its reason code names (else none: codegen,
    sandbox), and no other check of it ran; otherwise ir_match is the fresh IR (and toolchain)
    against the stored, and each kernel check the fresh verdict."""
    for check in STATIC_CHECKS:
        tally.add(check, "passed")
    if res.error:
        code = res.error.reason_code
        tally.add(IR_MATCH, "not_run", not_reached(code))
        for check in KERNEL_CHECKS:
            if check == code:
                tally.add(check, "failed", res.error.reason)
            else:
                tally.add(check, "not_run", not_reached(code))
        return
    if res.toolchain != rec.get("toolchain"):
        tally.add(IR_MATCH, "failed", "toolchain: the stored toolchain is not the one compiled with")
    elif res.ir != rec.get("ir"):
        tally.add(IR_MATCH, "failed", "ir_match: the stored IR differs from a fresh extraction")
    else:
        tally.add(IR_MATCH, "passed")
    for check in KERNEL_CHECKS:
        v = res.verdicts[check]
        tally.add(check, v.status, v.reason)


def print_summary(report: dict, out: str) -> None:
    """The first failed records (where, id, reason), then the closing summary: records passed and
    failed, findings, failures by reason code, and every check's fresh verdicts by status with
    reasons grouped; no record's own text in it."""
    failures = report["failures"]
    if failures:
        print(f"failed records (the first {min(len(failures), LISTED_FAILURES)} of {len(failures)}; every one in the "
              f"report):")
        for f in failures[:LISTED_FAILURES]:
            print(f"  {files.quote(f['where'], 120)} {files.quote(f['id'], 40)}: {files.quote(f['reason'], 300)}")
    print(f"{report['records']} records: {report['passed']} passed, {report['failed']} failed; report: {files.quote(out)}")
    if report["findings"]["records"]:
        print(f"of which {report['findings']['records']} findings ({FINDINGS_CONFIG}/, held to their own rule): "
              f"{report['findings']['records'] - report['findings']['failed']} reproduced, {report['findings']['failed']} failed")
    if report["failures_by_reason"]:
        groups: dict[str, int] = {}
        for code, n in report["failures_by_reason"].items():
            groups[group("failed", code)] = groups.get(group("failed", code), 0) + n
        by_count = sorted(groups.items(), key=lambda kv: (-kv[1], kv[0]))
        print(f"failed {report['failed']} by reason: " + ", ".join(f"{files.quote(k, 60)} {n}" for k, n in by_count))
    tally = CheckTally()
    tally.merge(report["checks"])
    print(f"checks of the {report['records']} records as this validator ran them, by status "
          f"({', '.join(SUMMARY_STATUSES)}), reasons grouped:")
    for line in tally.lines():
        print(line)
