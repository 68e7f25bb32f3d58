"""The Warp-free verdicts: schema, safety, spec/source agreement, consistency, and which checks
must pass.

Split from `checks` so that tools reading a dataset (//tools:release, //tools:verify) can apply
them without importing Warp. The safety allowlist lives in `safety`, the schema compiler in
`schema_check`, the verdict dicts in `outcomes`; their names are re-exported here.
"""

from __future__ import annotations

import dataclasses

from generator import records
from generator.families import FAMILIES, build_spec
from generator.inputs import make_inputs, second_launch
from generator.render import render_source
from generator.spec import KernelSpec
from validator.outcomes import (  # noqa: F401 (re-exported)
    FINDINGS_CONFIG, GRADIENT_CHECKS, GRADIENT_MISMATCH, MUST_PASS, PASSED, failed, not_run)
# the safety allowlist and the schema compiler, split out; re-exported for every caller
from validator.safety import (  # noqa: F401 (re-exported)
    WP_NAMES, _ALLOWED_NODES, _ALLOWED_TYPES, _ARRAY_CTORS, _CHILD_FIELDS, _PLAIN_FIELDS, _RESERVED,
    _annotation_ok, _child_fields, _decorator_text, _exact_form, _walk, _wp_name, check_safety)
from validator.schema_check import (  # noqa: F401 (re-exported)
    _ANNOTATIONS, _Unsupported, _compile_schema, _pair_fast_check, _pair_validator)


class ValidatorError(Exception):
    """Base of the errors that stop a re-validation before any record is judged (the CLI prints
    one line and exits 2); a bad record is never an exception, it is a failed verdict."""
STATUSES = ("passed", "failed", "not_run", "inconclusive")


def split_reason(reason: str) -> tuple[str, str | None]:
    """A failure reason as stored, "code: detail" -> (code, detail). The one place the text form
    is taken apart; past it, the code is a field (`Verdict.reason_code`)."""
    code, sep, detail = reason.partition(":")
    return code, (detail.lstrip() if sep else None)


@dataclasses.dataclass(frozen=True)
class Verdict:
    """One check's outcome for one kernel. `reason_code` says which wall or stage failed
    ("execute_gpu", "io", "sandbox", ...), `detail` what it saw; a not_run or inconclusive
    verdict has no code, only its reason in `detail`. `to_json` is the record's form."""

    check: str
    status: str
    reason_code: str | None = None
    detail: str | None = None
    max_abs_diff: float | None = None  # execute_gpu: the largest |GPU - CPU| over the outputs

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"verdict {self.check}: unknown status {self.status!r}")
        if self.status == "failed" and not self.reason_code:
            raise ValueError(f"verdict {self.check}: a failure needs its reason code")

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def reason(self) -> str | None:
        """The stored text: "code: detail" for a failure, the detail otherwise."""
        if self.reason_code is None:
            return self.detail
        return self.reason_code if self.detail is None else f"{self.reason_code}: {self.detail}"

    def to_json(self) -> dict:
        out: dict = {"status": self.status}
        if self.reason is not None:
            out["reason"] = self.reason
        if self.max_abs_diff is not None:
            out["max_abs_diff"] = self.max_abs_diff
        return out

    @classmethod
    def from_json(cls, check: str, d: dict) -> "Verdict":
        reason = d.get("reason")
        code, detail = split_reason(reason) if reason is not None and d["status"] == "failed" else (None, reason)
        return cls(check, d["status"], code, detail, d.get("max_abs_diff"))

    @classmethod
    def failure(cls, check: str, reason: str) -> "Verdict":
        """`check` failed with the stored reason "code: detail"."""
        code, detail = split_reason(reason)
        return cls(check, "failed", code, detail)

    @classmethod
    def not_run(cls, check: str, reason: str) -> "Verdict":
        return cls(check, "not_run", None, reason)

    @classmethod
    def rejection(cls, reason: str) -> "Verdict":
        """A kernel rejected before its checks ran ("codegen: ...", "sandbox: ..."): failed, with
        the reason's code."""
        return cls.failure("kernel", reason)


@dataclasses.dataclass
class KernelResult:
    """What `checks.check_batch` gives back per kernel: either `error` (the kernel was rejected
    as a whole: codegen, compile, load, sandbox) or the cut IR, the first input set and its
    outputs, a `Verdict` per check, the gradient example, branch coverage and the toolchain."""

    error: Verdict | None = None
    ir: dict | None = None
    inputs: dict | None = None
    outputs: dict | None = None
    verdicts: dict[str, Verdict] = dataclasses.field(default_factory=dict)
    grad: dict | None = None
    coverage: dict | None = None
    toolchain: dict | None = None

    @classmethod
    def rejected(cls, reason: str) -> "KernelResult":
        return cls(error=Verdict.rejection(reason))

    def checks_json(self) -> dict[str, dict]:
        return {k: v.to_json() for k, v in self.verdicts.items()}

    def first_failure(self, checks: tuple[str, ...]) -> Verdict | None:
        return next((self.verdicts[k] for k in checks if self.verdicts[k].status == "failed"), None)


# kept here, not in schema_check: it looks `_pair_fast_check` up in this module (checks_test
# patches verdicts._pair_fast_check)
def check_schema(record: dict, built_here: bool = False) -> dict:
    """The pair schema's verdict on `record`, judged by jsonschema. `built_here`: the record was
    just assembled by this process from its own spec and results (the pipeline), and the compiled
    check (`_compile_schema`) may pass it without jsonschema's walk. Records from anywhere else
    (a shard on disk, a release: `check_static`, the release gate) are always judged by
    jsonschema itself, so the compiled check never stands between untrusted data and a pass."""
    fast = _pair_fast_check() if built_here else None
    try:
        if fast is not None and fast(record):
            return PASSED
    except Exception:  # noqa: BLE001 - anything unexpected is jsonschema's to judge
        pass
    errors = sorted(_pair_validator().iter_errors(record), key=lambda e: list(e.path))
    if errors:
        e = errors[0]
        where = "/".join(map(str, e.path)) or "(root)"
        return failed(f"schema: {where}: {e.message[:200]}")
    return PASSED


# ---- bounds: checked without recursion before anything recursive (schema, comparison) runs

MAX_DEPTH = 64  # JSON nesting: twice what generated records reach (tools/untrusted_test.py)
MAX_NODES = 1_000_000  # JSON values in one record: far above what generated records hold (same test)


def check_bounds(record) -> dict:
    """Nesting depth and size of a parsed record, walked iteratively (a crafted record can nest
    deeper than Python's recursion limit or hold enough values to exhaust memory later)."""
    todo, nodes = [(record, 1)], 0
    while todo:
        value, depth = todo.pop()
        nodes += 1
        if depth > MAX_DEPTH:
            return failed(f"bounds: nested deeper than {MAX_DEPTH}")
        if nodes > MAX_NODES:
            return failed(f"bounds: more than {MAX_NODES} JSON values")
        if isinstance(value, dict):
            todo.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            todo.extend((v, depth + 1) for v in value)
    return PASSED


# ---- spec: only the generator's own spec for (family, seed) is ever rendered, let alone imported


def check_spec(record: dict) -> dict:
    """The stored spec must be exactly the spec the generator draws for its (family, seed).

    A spec is a function of (family, seed), so this admits no crafted spec at all: whatever a
    record's strings say, the only source that can pass `spec_source` (and the only one the
    validator imports) is the rendering of a spec this code generated itself. Run after
    check_bounds and check_schema."""
    spec = record.get("spec")
    if not isinstance(spec, dict):
        return failed("spec: not an object")
    family, seed = spec.get("family"), spec.get("seed")
    if not isinstance(family, str) or family not in FAMILIES:
        return failed(f"spec: unknown family {str(family)[:40]!r}")
    if type(seed) is not int or not 0 <= seed < 2 ** 63:
        return failed(f"spec: seed {str(seed)[:40]!r} is not an integer in [0, 2**63)")
    want = build_spec(family, seed).to_json()
    if spec != want:
        key = next((k for k in sorted(set(spec) | set(want)) if spec.get(k) != want.get(k)), "?")
        return failed(f"spec: not the spec the generator draws for ({family}, {seed}): {key} differs")
    return PASSED


def check_spec_source(record: dict) -> dict:
    try:
        spec = KernelSpec.from_json(record["spec"])
        if render_source(spec) != record["source"]:
            return failed("spec_source: the source is not the rendering of the spec")
    except (KeyError, ValueError, TypeError, IndexError) as e:
        return failed(f"spec_source: spec does not render: {type(e).__name__}: {e}")
    return PASSED


def check_static(record) -> dict:
    """Every check that needs no compiler, in the order each relies on the ones before it:
    bounds, schema, spec (the generator's own), safety, spec_source, consistency. The one entry
    for //validator, //tools:verify and //tools:release, so an attack meets the same walls in each."""
    for check in (check_bounds, check_schema, check_spec, lambda r: check_safety(r["source"]), check_spec_source,
                  check_consistency):
        try:
            verdict = check(record)
        except RecursionError:  # e.g. a 100 KB source of one long expression: Python's parser recurses
            return failed("bounds: too deeply nested to check (recursion limit)")
        except MemoryError:
            return failed("bounds: too large to check (out of memory)")
        if verdict["status"] != "passed":
            return verdict
    return PASSED




def unpublishable(checks: dict, finding: bool = False) -> str | None:
    """Why a record with these stored verdicts ({check: {"status", "reason"?}}) may not stand in
    a release's main config (`finding` False) or in its FINDINGS_CONFIG config (True), or None. Both
    need every MUST_PASS check passed. A main config's record has no failed verdict at all; a
    finding has a gradient check failed as GRADIENT_MISMATCH and no other failure."""
    for check in MUST_PASS:
        v = checks.get(check) or {}
        if v.get("status") != "passed":
            return f"has no passing verdict for {check} ({v.get('status')}: {v.get('reason', '')})"
    found = False
    for check, v in sorted(checks.items()):
        if v.get("status") != "failed":
            continue
        if finding and check in GRADIENT_CHECKS and split_reason(v.get("reason", ""))[0] == GRADIENT_MISMATCH:
            found = True
            continue
        return f"has a failed verdict for {check} ({v.get('reason', '')})"
    if finding and not found:
        return f"is in {FINDINGS_CONFIG} but no gradient check failed as {GRADIENT_MISMATCH}"
    return None


def check_consistency(record: dict) -> dict:
    """Every stored field that follows from the spec and source must equal its recomputation.

    Run after check_spec_source (the source is the spec's rendering)."""
    spec = KernelSpec.from_json(record["spec"])
    derived = {
        "id": records.record_id(record["source"], spec.name),
        "kernel_name": spec.name,
        "family": spec.family,
        "seed": spec.seed,
        "dim": list(spec.dim),
        "args": [records.arg_json(a) for a in spec.args],
    }
    for key, want in derived.items():
        got = record.get(key)
        if got != want or type(got) is not type(want):
            return failed(f"consistency: {key} {str(got)[:60]!r} does not follow from the spec/source ({str(want)[:60]!r})")
    want_inputs = records.inputs_json(spec, make_inputs(spec))
    got_inputs = record["io"]["inputs"]
    if set(got_inputs) != set(want_inputs):
        return failed(f"consistency: io.inputs names {sorted(got_inputs)} != {sorted(want_inputs)}")
    for name, t in want_inputs.items():
        if got_inputs[name] != t:
            return failed(f"consistency: stored input {name} is not the input seeded by the record's spec")
    for check in MUST_PASS:
        if record["checks"][check]["status"] != "passed":
            return failed(f"consistency: stored verdict {check} is {record['checks'][check]['status']}, not passed")
    small = second_launch(spec)
    want_launches = [list(spec.dim)] + ([list(small)] if small else [])
    if record["coverage"]["launch_dims"] != want_launches:
        return failed(f"consistency: coverage.launch_dims {record['coverage']['launch_dims']} are not the launch sizes "
                      f"the kernel is executed at ({want_launches})")
    return PASSED
