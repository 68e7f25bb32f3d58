"""Reason groups: how the closing summaries of //generator:cpu, //generator:cuda and //validator
count every check by status and put each reason in one of a few groups, so that a summary adds
up and names no kernel. A pair's own reason ("Warp's codegen declares it non-differentiable:
Warning: ... in function "loop_1b466e81"") stays where the pair is: its record's checks, the
run's stats files and manifest (`validation_notes`), the validator's --report.

`GROUPS` is the one table from a reason to its group, written from the reasons the code emits
(validator/checks.py, validator/gradients.py, pipeline/chunk.py; reason_groups_test holds every
one of them to a group). A failed verdict is grouped by its reason code (`split_reason`); a
reason no group matches is counted as "other: <its code>", never dropped.
"""

from __future__ import annotations

import re

from validator.outcomes import ALL_CHECKS
from validator.verdicts import split_reason

# the order a summary lists the statuses in
SUMMARY_STATUSES = ("passed", "failed", "inconclusive", "not_run")
# a not_run or inconclusive reason's start (a regular expression) -> its group
GROUPS: tuple[tuple[str, str], ...] = (
    # not_run: what was not asked for, or cannot run here
    (r"generated with --no-validate", "codegen only (--no-validate)"),
    (r"first extraction; compared with a fresh one", "compared by //validator"),
    (r"CPU execution failed", "CPU execution failed"),
    (r"GPU execution not requested", "GPU execution not requested"),
    (r"no CUDA device", "no CUDA device"),
    (r"no GPU run or no CPU gradient check", "no GPU run or no CPU gradient to compare"),
    # not_run: gradients Warp does not give (validator/gradients.py arrays_to_check)
    (r"in-place \(inout\) array", "in-place array"),
    (r"Warp's codegen declares it non-differentiable", "Warp declares non-differentiable"),
    (r"uses [\w.]+, whose adjoint Warp does not implement", "adjoint Warp does not implement"),
    (r"no float input array or no float output array", "no float array"),
    # inconclusive: the gradient check could not decide (validator/gradients.py compare)
    (r"gradient: Warp's gradient holds NaN or infinity", "gradient NaN or infinity"),
    (r"gradient: kink at the inputs", "kink at the inputs"),
    (r"gradient: kink within the step", "kink within the step"),
    (r"gradient: a mismatch at the seeded inputs that vanishes", "mismatch gone off the grid"),
    # the validator's own: a check a record never got to (`not_reached`); {} is the code it failed
    (r"not reached: the record failed ([a-z][a-z_]*) first", "after {} failed"),
)
_PATTERNS = tuple((re.compile(start), label) for start, label in GROUPS)
_CODE = re.compile(r"[a-z][a-z_]*")  # a reason code ("execute_cpu", "data_race"): no digit
NOT_RECORDED = "reason not recorded"


def not_reached(code: str) -> str:
    """The not_run reason of a check the validator never got to, because the record failed first."""
    return f"not reached: the record failed {code} first"


def group(status: str, reason: str | None) -> str | None:
    """The group of a verdict's reason: None for passed; a failure's reason code; the label of
    the first of GROUPS its reason starts with; else "other: <code>" (its code cut short)."""
    if status == "passed":
        return None
    if not reason:
        return NOT_RECORDED
    code = split_reason(reason)[0].strip()
    if status == "failed" and _CODE.fullmatch(code):
        return code
    for pattern, label in _PATTERNS:
        if found := pattern.match(reason):
            return label.format(*found.groups())
    # its first clause, without words that hold a digit (a kernel's name, a line, a value): what
    # may differ from one pair to the next stays out of a summary
    words = [w for w in re.split(r"[;,(]", code, maxsplit=1)[0].split() if not re.search(r"\d", w)]
    return "other: " + (" ".join(words)[:40] or "?")


class CheckTally:
    """check -> status -> group -> count, over verdicts added one by one (`add`) or merged from
    another tally's JSON (`merge`). `lines` is the summary; `to_json` its stored form."""

    def __init__(self):
        self.counts: dict[str, dict[str, dict[str | None, int]]] = {}

    def add(self, check: str, status: str, reason: str | None = None, n: int = 1) -> None:
        groups = self.counts.setdefault(check, {}).setdefault(status, {})
        key = group(status, reason)
        groups[key] = groups.get(key, 0) + n

    def merge(self, stored: dict) -> None:
        """Add a tally's `to_json` form."""
        for check, statuses in stored.items():
            for status, entry in statuses.items():
                for key, n in (entry.get("reasons") or {None: entry["count"]}).items():
                    groups = self.counts.setdefault(check, {}).setdefault(status, {})
                    groups[key] = groups.get(key, 0) + n

    def total(self, check: str, status: str | None = None) -> int:
        """Verdicts of `check` (with `status`, when given)."""
        return sum(n for s, groups in self.counts.get(check, {}).items() if status in (None, s)
                   for n in groups.values())

    def checks(self) -> list[str]:
        """The checks counted: the record's checks in its order, then any other name sorted."""
        return [c for c in ALL_CHECKS if c in self.counts] + sorted(set(self.counts) - set(ALL_CHECKS))

    def _statuses(self, check: str) -> list[str]:
        have = self.counts.get(check, {})
        return [s for s in SUMMARY_STATUSES if s in have] + sorted(set(have) - set(SUMMARY_STATUSES))

    def _groups(self, check: str, status: str) -> list[tuple[str, int]]:
        """The groups of (check, status), most frequent first (ties by name)."""
        groups = self.counts[check][status]
        return sorted(((k, n) for k, n in groups.items() if k is not None), key=lambda kn: (-kn[1], kn[0]))

    def to_json(self) -> dict:
        """{check: {status: {"count", "reasons"?: {group: count}}}}, checks and statuses in summary order."""
        return {c: {s: {"count": self.total(c, s), **({"reasons": dict(g)} if (g := self._groups(c, s)) else {})}
                    for s in self._statuses(c)} for c in self.checks()}

    def line(self, check: str) -> str:
        """One check's counts: "not_run 80: Warp declares non-differentiable 58, in-place array 19"
        for each status, joined by "; "."""
        parts = []
        for s in self._statuses(check):
            groups = self._groups(check, s)
            parts.append(f"{s} {self.total(check, s)}" + (": " + ", ".join(f"{k} {n}" for k, n in groups)
                                                          if groups else ""))
        return "; ".join(parts)

    def lines(self, indent: str = "  ") -> list[str]:
        width = max((len(c) for c in self.counts), default=0)
        return [f"{indent}{c:<{width}}  {self.line(c)}" for c in self.checks()]


def parse_line(text: str) -> dict[str, tuple[int, dict[str, int]]]:
    """A `CheckTally.line` read back: {status: (count, {group: count})} (for the tests that hold a
    printed summary to what it counts)."""
    out = {}
    for part in text.split("; "):
        head, _, rest = part.partition(": ") if re.match(r"\w+ \d+: ", part) else (part, "", "")
        status, n = head.rsplit(" ", 1)
        groups = {}
        for item in rest.split(", ") if rest else ():
            label, count = item.rsplit(" ", 1)
            groups[label] = int(count)
        out[status] = (int(n), groups)
    return out
