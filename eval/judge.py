"""One answer's verdict: text measures for every task, and whether it is right (Python kernels
and C++ functions: compiled and executed in the sandbox; outputs: compared with the oracle; CUDA
functions: compiled by NVRTC, not executed, as the sandbox has no GPU). What is compared:

- the oracle (`generator.oracle.run_oracle`) on the spec of the row's (family, seed), never the
  row's stored outputs;
- every stored input set (`generator.inputs.make_inputs` variants 0 .. INPUT_SETS-1) and
  FRESH_SETS more drawn from the scoring seed (variants derived from it and the row's id, so an
  answer cannot know them), at the spec's launch size, and set 0 at the second launch size;
- array inputs must come back unchanged, outputs must match within `validator.tolerance` and be
  live (not one constant where the oracle varies; not the same for every input set).

A C++ or CUDA answer is put in place of the kernel's generated forward (or backward) in the
module source Warp compiles for the spec (`eval.child.judge_code`). A forward is held to the
runs above. A backward is held to Warp's own backward: on every stored and fresh input set, with
a cotangent drawn from the scoring seed on the float outputs, the float inputs' gradients must
equal those Warp's generated backward gives (within `validator.tolerance`'s tolerance of the
dtype; a NaN or infinity where Warp's has the same). Warp's backward itself is what the
validator checks against the oracle's finite differences. Not judged (`correct` null, the reason
says so): a kernel with no float input or output array (no gradient to compare), and one whose
gradients Warp's backward gives as zero everywhere on every input set (an empty backward would
match it, so the row cannot tell a right answer from a trivial one).

The verdict is decided here, in the parent: the sandboxed child only reports the arrays.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import sys
import threading

import numpy as np

from eval import sandbox
from eval.tasks import Task
from eval.child import grad_arrays
from eval.cpp_screen import screen
from eval.text import edit_similarity, exact_match, unfence
from extractor.cut import top_level_items
from generator.inputs import INPUT_SETS, NP_DTYPES, make_inputs, second_launch
from generator.liveness import dead_output
from generator.oracle import run_oracle
from generator.races import first_race
from generator.spec import VEC_SHAPES, derive_seed, scalar_dtype
from schemas.files import decode_json
from validator.safety import check_safety
from validator.tolerance import TOLERANCES, compare

FRESH_SETS = 2
FRESH_TRIES = 20  # fresh variants tried to find FRESH_SETS whose oracle is defined and race-free
MAX_ANSWER_CHARS = 1 << 20
NOT_EXECUTED = ("compiled by NVRTC; not executed: CUDA answers are compiled only "
                "(the sandbox has no GPU)")
NO_GRADIENT = "not judged: no float input or output array, so no gradient to compare"
ZERO_GRADIENT = ("not judged: Warp's own backward gives zero gradients on every input set, so an empty "
                 "backward would match it")


@dataclasses.dataclass(frozen=True)
class Verdict:
    """parsed / compiled / correct: True, False, or None where not judged (`reason` says why)."""
    parsed: bool | None
    compiled: bool | None
    correct: bool | None
    reason: str
    exact_match: bool = False
    edit_similarity: float = 0.0

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Expected:
    """A row's runs and the oracle's arrays for each: [(variant, dim, inputs, oracle outputs)];
    the seed of its backward cotangents; Warp's own gradients, once a backward answer asked
    (`reference_gradients`)."""
    spec: object
    runs: list
    variants: list
    second: bool
    cotangent_seed: int = 0
    gradients: dict = dataclasses.field(default_factory=dict)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)


def expected(spec, row_id: str, scoring_seed: int) -> Expected:
    """The runs an answer for this row is held to, and the oracle's outputs for each."""
    variants = list(range(INPUT_SETS))
    for j in range(FRESH_TRIES):
        if len(variants) == INPUT_SETS + FRESH_SETS:
            break
        v = INPUT_SETS + derive_seed("eval-fresh", scoring_seed, row_id, j) % (1 << 62)
        inputs = make_inputs(spec, v)
        try:
            ok = first_race(spec, inputs) is None and all(
                np.all(np.isfinite(np.asarray(o, dtype=np.float64))) for o in run_oracle(spec, inputs).values())
        except (ArithmeticError, LookupError, TypeError, ValueError):
            ok = False
        if ok:
            variants.append(v)
    small = second_launch(spec)
    plan = [(v, tuple(spec.dim)) for v in variants] + ([(0, small)] if small else [])
    runs = []
    for v, dim in plan:
        inputs = make_inputs(spec, v)
        runs.append((v, dim, inputs, run_oracle(dataclasses.replace(spec, dim=dim), inputs)))
    cotangent_seed = derive_seed("eval-cotangent", scoring_seed, row_id) % (1 << 62)
    return Expected(spec, runs, variants, small is not None, cotangent_seed)


def judge(task: Task, row: dict, answer: str, exp: Expected | None, limits: sandbox.Limits) -> Verdict:
    text = dict(exact_match=exact_match(answer, task.reference(row), row["kernel_name"]),
                edit_similarity=round(edit_similarity(answer, task.reference(row), row["kernel_name"]), 6))
    if len(answer) > MAX_ANSWER_CHARS:
        return Verdict(False, False, None if task.kind == "cuda" else False,
                       f"parse: answer longer than {MAX_ANSWER_CHARS} characters", **text)
    if task.kind in ("cpp", "cuda"):
        return dataclasses.replace(_judge_code(task, unfence(answer), exp, limits), **text)
    if task.kind == "outputs":
        return dataclasses.replace(_judge_outputs(unfence(answer), exp), **text)
    return dataclasses.replace(_judge_python(unfence(answer), exp, limits), **text)


def _judge_outputs(answer: str, exp: Expected) -> Verdict:
    value, why = decode_json(answer.encode("utf-8", "surrogatepass"))
    if why or not isinstance(value, dict):
        return Verdict(False, None, False, f"parse: {why or 'not a JSON object'}")
    _, _, _, oracle = exp.runs[0]
    for a in exp.spec.args:
        if a.name not in oracle:
            continue
        if a.name not in value:
            return Verdict(True, None, False, f"output {a.name}: missing")
        got = _array(value[a.name], a.dtype)
        if isinstance(got, str):
            return Verdict(True, None, False, f"output {a.name}: {got}")
        reason = compare(a.name, got, oracle[a.name], a.dtype)
        if reason:
            return Verdict(True, None, False, reason)
    return Verdict(True, None, True, "matches the oracle")


def _array(value, dtype: str):
    """A NumPy array of the output's dtype from a list or a {"data": ...} tensor, or why not."""
    if isinstance(value, dict):
        value = value.get("data")
    return _numbers(value, NP_DTYPES[dtype])


def _numbers(value, np_dtype):
    """`value` (nested lists of numbers) as an array of `np_dtype`, or why it is not one."""
    try:
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf":
            return "not an array of numbers"
        return arr.astype(np_dtype)
    except (TypeError, ValueError, OverflowError) as e:
        return f"not an array of numbers ({type(e).__name__})"


def _judge_python(source: str, exp: Expected, limits: sandbox.Limits) -> Verdict:
    try:
        ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        return Verdict(False, False, False, f"parse: {type(e).__name__}: {str(e)[:200]}")
    safety = check_safety(source)
    if safety["status"] != "passed":
        return Verdict(True, False, False, safety["reason"])
    spec = exp.spec
    job = {"family": spec.family, "seed": spec.seed, "source": source, "variants": exp.variants,
           "second": exp.second}
    raw, why = sandbox.run([sys.executable, "-m", "eval.child"], json.dumps(job).encode(), limits)
    if raw is None:
        return Verdict(True, False, False, why)
    try:
        result = json.loads(raw)
        stage = result["stage"]
    except (ValueError, KeyError, TypeError):
        return Verdict(True, False, False, "sandbox: the child's result does not parse")
    if stage != "ran":
        return Verdict(True, stage == "launch", False, f"{stage}: {result.get('error', '')}")
    reason = _compare_runs(exp, result.get("runs"))
    return Verdict(True, True, reason is None, reason or "matches the oracle on every input set")


def _set_name(k: int, variant: int, dim) -> str:
    where = f"stored input set {variant}" if variant < INPUT_SETS else f"fresh input set {k - INPUT_SETS}"
    return where if k < INPUT_SETS + FRESH_SETS else f"input set 0 at launch size {list(dim)}"


def _compare_runs(exp: Expected, runs) -> str | None:
    """None when every run's arrays match (inputs unchanged, outputs the oracle's and live)."""
    if not isinstance(runs, list) or len(runs) != len(exp.runs):
        return "sandbox: the child's result does not match the job"
    full_sets, full_outs = [], []
    for k, ((variant, dim, inputs, oracle), run) in enumerate(zip(exp.runs, runs)):
        where = _set_name(k, variant, dim)
        got = {}
        for a in exp.spec.args:
            if a.kind != "array":
                continue
            arr = _tensor(run, a)
            if isinstance(arr, str):
                return f"{where}: {arr}"
            got[a.name] = arr
            if a.role == "in" and not np.array_equal(arr, inputs[a.name]):
                return f"{where}: input {a.name} was modified"
            if a.name in oracle:
                reason = compare(a.name, arr, oracle[a.name], a.dtype)
                if reason:
                    return f"{where}: {reason}"
        if dim == tuple(exp.spec.dim) and k < len(exp.variants):
            full_sets.append(inputs)
            full_outs.append({n: v for n, v in got.items() if n in oracle})
    dead = dead_output(exp.spec, full_sets, full_outs)
    return f"dead output: {dead}" if dead else None


def _tensor(run, a):
    try:
        t = run["arrays"][a.name]
        shape = tuple(a.shape) + VEC_SHAPES.get(a.dtype, ())
        arr = _numbers(t["data"], NP_DTYPES[a.dtype])
        if isinstance(arr, str):
            return f"array {a.name}: {arr}"
        if arr.shape != shape:
            return f"array {a.name}: shape {arr.shape}, expected {shape}"
        return arr
    except (KeyError, TypeError, ValueError, OverflowError):
        return f"array {a.name}: missing or malformed in the child's result"


def _judge_code(task: Task, answer: str, exp: Expected, limits: sandbox.Limits) -> Verdict:
    """A C++ or CUDA function: parsed (its braces balance and it splits into top-level items),
    screened (`eval.cpp_screen`), compiled in place of Warp's, executed (C++) and held to the oracle or to Warp's gradients."""
    wrong = None if task.kind == "cuda" else False  # a CUDA answer is never judged right or wrong
    try:
        if not top_level_items(answer):
            return Verdict(False, False, wrong, "parse: empty answer")
    except RuntimeError:
        return Verdict(False, False, wrong, "parse: the braces do not balance")
    refused = screen(answer)
    if refused:
        return Verdict(True, False, wrong, f"refused: {refused}")
    part = "backward" if task.name.endswith("_backward") else "forward"
    result, why = _run_code(exp, task.kind, part, answer, limits)
    if result is None:
        return Verdict(True, False, wrong, why)
    if result["stage"] == "compile":
        return Verdict(True, False, wrong, f"compile: {result.get('error', '')}")
    if task.kind == "cuda":
        return Verdict(True, True, None, NOT_EXECUTED) if result["stage"] == "compiled" else \
            Verdict(True, False, None, "sandbox: the child's result does not match the job")
    if result["stage"] != "ran":
        return Verdict(True, True, False, f"{result['stage']}: {result.get('error', '')}")
    if part == "forward":
        reason = _compare_runs(exp, result.get("runs"))
        return Verdict(True, True, reason is None, reason or "matches the oracle on every input set")
    ins, outs = grad_arrays(exp.spec)
    if not ins or not outs:
        return Verdict(True, True, None, NO_GRADIENT)
    reference, why = reference_gradients(exp, limits)
    if reference is None:
        return Verdict(True, True, None, f"not judged: Warp's own backward gave no gradients ({why})")
    if _all_zero(reference, ins):
        return Verdict(True, True, None, ZERO_GRADIENT)
    reason = _compare_gradients(exp, ins, result.get("runs"), reference)
    return Verdict(True, True, reason is None, reason or "gradients equal Warp's own on every input set")


def _run_code(exp: Expected, target: str, part: str, answer: str | None, limits: sandbox.Limits,
              ) -> tuple[dict | None, str]:
    spec = exp.spec
    job = {"target": target, "part": part, "answer": answer, "family": spec.family, "seed": spec.seed,
           "variants": exp.variants, "second": exp.second, "cotangent_seed": exp.cotangent_seed}
    raw, why = sandbox.run([sys.executable, "-m", "eval.child"], json.dumps(job).encode(), limits)
    if raw is None:
        return None, why
    try:
        result = json.loads(raw)
        if not isinstance(result, dict) or not isinstance(result.get("stage"), str):
            raise ValueError
    except ValueError:
        return None, "sandbox: the child's result does not parse"
    return result, ""


def reference_gradients(exp: Expected, limits: sandbox.Limits) -> tuple[list | None, str]:
    """The gradients Warp's own backward gives on the row's input sets (computed once per row, in
    a sandboxed child of its own, so no answer's code shares its process)."""
    with exp.lock:
        if "runs" not in exp.gradients:
            result, why = _run_code(exp, "cpp", "backward", None, limits)
            ok = result is not None and result["stage"] == "ran"
            exp.gradients.update(runs=result["runs"] if ok else None,
                                 why=why or (f"{result['stage']}: {result.get('error', '')}" if not ok else ""))
        return exp.gradients["runs"], exp.gradients["why"]


def _all_zero(reference: list, ins: list) -> bool:
    """Whether Warp's own gradients are exactly zero everywhere, on every input set."""
    try:
        return all(not np.any(np.asarray(run["grads"][a.name]["data"], dtype=np.float64)) for run in reference for a in ins)
    except (KeyError, TypeError, ValueError):
        return False


def _compare_gradients(exp: Expected, ins: list, runs, reference: list) -> str | None:
    """None when every input set's gradients equal Warp's (same NaN/infinity places, the rest
    within the dtype's tolerance)."""
    if not isinstance(runs, list) or len(runs) != len(reference):
        return "sandbox: the child's result does not match the job"
    for k, (run, ref) in enumerate(zip(runs, reference)):
        where = _set_name(k, exp.variants[k], exp.spec.dim)
        for a in ins:
            got = _tensor({"arrays": run.get("grads") if isinstance(run, dict) else None}, a)
            want = _tensor({"arrays": ref["grads"]}, a)
            if isinstance(got, str):
                return f"{where}: gradient of {got}"
            g, w = got.astype(np.float64), want.astype(np.float64)
            same_special = np.isfinite(g) == np.isfinite(w)
            specials = ~np.isfinite(w)
            if not same_special.all() or not np.array_equal(g[specials], w[specials], equal_nan=True):
                return f"{where}: gradient of {a.name}: NaN or infinity where Warp's has none, or the reverse"
            rtol, atol = TOLERANCES[scalar_dtype(a.dtype)]
            bad = ~np.isclose(g[~specials], w[~specials], rtol=rtol, atol=atol)
            if bad.any():
                i = int(np.argmax(bad))
                return (f"{where}: gradient of {a.name}: {g[~specials][i]!r} where Warp's backward gives "
                        f"{w[~specials][i]!r}")
    return None
