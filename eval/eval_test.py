"""//eval and //eval:tasks on a small real release (16 CPU kernels, most in the test split): the
reference answers score 100% correct on every task the sandbox can execute (the CUDA ones
compile); C++ with renamed locals scores correct and hollow C++ wrong; trivial answers (empty, a
kernel that returns nothing, zeros, a copy of an input) score 0%; a semantically equal but
textually different kernel scores correct; a kernel that hard-codes the outputs of every stored
input set is caught by the fresh ones; pass@k against its closed form; edit distance against a
plain dynamic program; deterministic prompts and reports; one-line errors."""

import ast
import itertools
import json
import math
import os
import re
import sys
import tempfile

import pytest

from eval import main as eval_main
from eval import tasks_main, testing
from eval.text import edit_similarity, exact_match, levenshtein, pass_at_k, unfence

TMP = os.environ.get("TEST_TMPDIR") or tempfile.mkdtemp(prefix="eval-test-")


@pytest.fixture(scope="module")
def dist():
    return testing.small_release(TMP)


@pytest.fixture(scope="module")
def rows(dist):
    from eval.rows import read_split

    return read_split(dist, "test")


def _lines(task, answers):
    return [{"id": rid, "task": task, "prediction": a} for rid, a in answers.items()]


CODE = {"python_to_cpp": "ir_cpp_forward", "python_to_cpp_backward": "ir_cpp_backward",
        "python_to_cuda": "ir_cuda_forward", "python_to_cuda_backward": "ir_cuda_backward"}


def test_reference_answers_score_100_percent_on_every_task(dist, rows):
    """Every test row's own source (for both directions), stored outputs and generated C++ are
    judged correct (the C++ forward run against the oracle, the backward against Warp's own
    gradients); the CUDA answers compile and say why they are not executed."""
    from eval import judge

    # each object argument (hash grid, mesh, volume, BVH, texture) goes through the judge
    assert {"neighbors", "mesh", "volume", "bvh", "texture"} <= {r["family"] for r in rows}
    lines = (_lines("cpp_to_python", {r["id"]: r["source"] for r in rows})
             + _lines("cuda_to_python", {r["id"]: r["source"] for r in rows})
             + _lines("outputs", {r["id"]: r["outputs"] for r in rows}))
    for task, column in CODE.items():
        lines += _lines(task, {r["id"]: r[column] for r in rows})
    report = testing.score(dist, lines, TMP)
    for t in ("cpp_to_python", "cuda_to_python", "outputs", "python_to_cpp", "python_to_cpp_backward"):
        g = report["tasks"][t]["all"]
        assert g["n"] == len(rows) and g["correct"] == 1.0 and g["pass_at_1"] == 1.0 and g["exact_match"] == 1.0, g
        unjudged = {s["reason"] for v in testing.verdicts(report, t).values() for s in v if s["correct"] is None}
        assert g["judged"] > 0.5 and unjudged <= {judge.NO_GRADIENT, judge.ZERO_GRADIENT}, (g, unjudged)
    for t in ("cpp_to_python", "cuda_to_python", "python_to_cpp", "python_to_cpp_backward", "python_to_cuda"):
        assert report["tasks"][t]["all"]["compiled"] == 1.0
    assert len(report["tasks"]["outputs"]["families"]) >= 3
    for t in ("python_to_cuda", "python_to_cuda_backward"):
        g = report["tasks"][t]["all"]
        assert g["compiled"] == 1.0 and g["judged"] == 0.0 and g["correct"] == "not_run" and g["exact_match"] == 1.0, g
        assert {s["reason"] for v in testing.verdicts(report, t).values() for s in v} == {judge.NOT_EXECUTED}


def _kernel_function(text: str) -> tuple[str, str]:
    """(everything before the kernel function's body, the body), the kernel function being the
    answer's last top-level item."""
    at = text.rindex("\n{\n")  # the body of the last function begins its own line
    return text[:at + 3], text[at + 3:]


def _renamed(text: str) -> str:
    """Every `var_` local of Warp's code renamed and a comment added: the same code, other text."""
    return "// rewritten\n" + re.sub(r"\bvar_(\w+)", r"renamed_\1_v", text)


def test_equal_cpp_scores_correct_and_trivial_cpp_scores_wrong(dist, rows):
    """C++ forward and backward with every local renamed: correct, not an exact match. Empty
    answers, and the kernel function with an empty body (a forward that writes nothing, a
    backward that gives no gradient): wrong, each with its reason. CUDA renamed: compiles; CUDA
    that does not: not compiled."""
    picked = rows[:4]
    lines = []
    for task, column in CODE.items():
        for r in picked:
            head, _ = _kernel_function(r[column])
            lines.append({"id": r["id"], "task": task, "predictions": [_renamed(r[column]), "", head + "}\n",
                                                                        head + "    undeclared_name;\n}\n"]})
    report = testing.score(dist, lines, TMP)
    for task in CODE:
        for r in picked:
            equal, empty, hollow, broken = testing.verdicts(report, task)[r["id"]]
            assert equal["exact_match"] is False and equal["compiled"] is True, (task, equal)
            assert empty["parsed"] is False and empty["reason"] == "parse: empty answer", (task, empty)
            assert broken["compiled"] is False and "undeclared_name" in broken["reason"], (task, broken)
            if task.startswith("python_to_cpp"):
                assert equal["correct"] is True, (task, equal)
                assert hollow["compiled"] is True and hollow["correct"] is False and hollow["reason"], (task, hollow)
                assert empty["correct"] is False and broken["correct"] is False
            else:
                assert equal["correct"] is None and hollow["compiled"] is True, (task, equal, hollow)


def _signature(source: str, name: str) -> str:
    """The source up to and including the kernel's `def` line (the import and structs too)."""
    head, _, rest = source.partition(f"def {name}(")
    return head + f"def {name}(" + rest.split("\n", 1)[0] + "\n"


def _simple(rows):
    """Rows of one grid dimension whose outputs are 1-D float32 and with a 1-D float32 input."""
    out = []
    for r in rows:
        s = r["spec"]
        ins = [a for a in s.args if a.kind == "array" and a.role == "in" and a.dtype == "float32" and len(a.shape) == 1]
        outs = [a for a in s.args if a.kind == "array" and a.role != "in"]
        if len(s.dim) == 1 and ins and outs and all(a.dtype == "float32" and a.shape == ins[0].shape for a in outs):
            out.append((r, ins[0], outs))
    assert len(out) >= 2, "the small release has too few simple rows"
    return out[:2]


def test_trivial_answers_score_0_percent(dist, rows):
    """Empty, a kernel returning nothing, zeros and a copy of an input (Python); {} and zeros and
    a copy of the input (outputs): all wrong, each with a reason."""
    answers, outputs = [], []
    for r, x, outs in _simple(rows):
        sig = _signature(r["source"], r["kernel_name"])
        zero = "".join(f"    {o.name}[i] = wp.float32(0.0)\n" for o in outs)
        copy = "".join(f"    {o.name}[i] = {x.name}[i]\n" for o in outs)
        for a in ("", sig + "    return\n", sig + "    i = wp.tid()\n" + zero, sig + "    i = wp.tid()\n" + copy):
            answers.append({"id": r["id"], "task": "cpp_to_python", "prediction": a})
        xs = json.loads(r["inputs"])[x.name]["data"]
        for a in ({}, {o.name: [0.0] * len(xs) for o in outs}, {o.name: xs for o in outs}):
            outputs.append({"id": r["id"], "task": "outputs", "prediction": json.dumps(a)})
    for task, lines in (("cpp_to_python", answers), ("outputs", outputs)):
        groups = {}
        for line in lines:  # one prediction line per id: the answers of an id as samples
            groups.setdefault(line["id"], []).append(line["prediction"])
        report = testing.score(dist, [{"id": i, "task": task, "predictions": p} for i, p in groups.items()], TMP)
        judged = [s for p in report["predictions"] if not p["missing"] for s in p["samples"]]
        assert judged and all(s["correct"] is False and s["reason"] for s in judged), judged
        assert report["tasks"][task]["all"]["correct"] == 0.0


class _Equal(ast.NodeTransformer):
    """Renames every local variable and commutes every + and *: the same kernel, other text."""

    def __init__(self, keep):
        self.keep = keep

    def visit_ClassDef(self, node):
        return node  # a @wp.struct's fields are not locals: renamed, p.hi would name no field

    def visit_Name(self, node):
        if node.id not in self.keep:
            node.id = f"renamed_{node.id}"
        return node

    def visit_BinOp(self, node):
        self.generic_visit(node)
        if isinstance(node.op, (ast.Add, ast.Mult)):
            node.left, node.right = node.right, node.left
        return node


def test_a_semantically_equal_kernel_scores_correct(dist, rows):
    """Locals renamed and operands of + and * swapped (exact in IEEE arithmetic): correct, though
    not an exact match."""
    picked = [r for r, _, _ in _simple(rows)][:2]
    lines = []
    for r in picked:
        tree = ast.parse(r["source"])
        keep = {"wp", "range", "float", "int"} | {a.name for a in r["spec"].args} | {
            n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        lines.append({"id": r["id"], "task": "cpp_to_python", "prediction": ast.unparse(_Equal(keep).visit(tree))})
    report = testing.score(dist, lines, TMP)
    judged = testing.verdicts(report, "cpp_to_python")
    for r in picked:
        (v,) = judged[r["id"]]
        assert v["correct"] is True and v["exact_match"] is False and v["edit_similarity"] < 1.0, v


def test_an_answer_right_on_the_stored_inputs_only_is_caught_by_fresh_inputs(dist, rows):
    """A kernel that recognises each stored input set by its first input value and writes that
    set's oracle outputs is right on all stored sets, and wrong on a fresh one."""
    from generator.inputs import INPUT_SETS, make_inputs
    from generator.oracle import run_oracle

    r, x, outs = _simple(rows)[0]
    spec = r["spec"]
    body = "    i = wp.tid()\n"
    for o in outs:
        body += f"    {o.name}[i] = wp.float32(0.0)\n"
    for k in range(INPUT_SETS):
        inputs = make_inputs(spec, k)
        oracle = run_oracle(spec, inputs)
        body += f"    if {x.name}[0] == wp.float32({float(inputs[x.name][0])!r}):\n"
        for o in outs:
            for j, v in enumerate(oracle[o.name]):
                body += f"        if i == {j}:\n            {o.name}[i] = wp.float32({float(v)!r})\n"
    report = testing.score(dist, [{"id": r["id"], "task": "cpp_to_python",
                                   "prediction": _signature(r["source"], r["kernel_name"]) + body}], TMP)
    (v,) = testing.verdicts(report, "cpp_to_python")[r["id"]]
    assert v["compiled"] is True and v["correct"] is False and v["reason"].startswith("fresh input set"), v


def test_cpp_right_on_the_stored_inputs_only_is_caught_by_fresh_inputs(dist, rows):
    """Warp's own C++ forward, made to return at once unless the first input value is that of a
    stored input set: right on every stored set, wrong on a fresh one."""
    from generator.inputs import INPUT_SETS, make_inputs

    r, x, _ = _simple(rows)[0]
    firsts = sorted({float(make_inputs(r["spec"], k)[x.name][0]) for k in range(INPUT_SETS)})
    known = " || ".join(f"first == {v!r}f" for v in firsts)
    guard = (f"    {{ const wp::float32 first = wp::load(wp::address(_wp_args->{x.name}, 0));\n"
             f"      if (!({known})) return; }}\n")
    head, body = _kernel_function(r["ir_cpp_forward"])
    report = testing.score(dist, [{"id": r["id"], "task": "python_to_cpp", "prediction": head + guard + body}], TMP)
    (v,) = testing.verdicts(report, "python_to_cpp")[r["id"]]
    assert v["compiled"] is True and v["correct"] is False and v["reason"].startswith("fresh input set"), v


def test_pass_at_k_is_the_closed_form_and_samples_are_scored_each(dist, rows):
    """pass_at_k equals 1 - C(n-c, k)/C(n, k) over a grid; one right answer of three samples gives
    pass@1 1/3 and pass@3 1; --k 2 gives 2/3."""
    for n, c, k in itertools.product(range(1, 12), range(0, 12), range(1, 12)):
        if c <= n and k <= n:
            assert pass_at_k(n, c, k) == pytest.approx(1 - math.comb(n - c, k) / math.comb(n, k), abs=1e-12)
    r = rows[0]
    lines = [{"id": r["id"], "task": "outputs", "predictions": ["{}", r["outputs"], "[1]"]}]
    report = testing.score(dist, lines, TMP)
    g = report["tasks"]["outputs"]["all"]
    assert report["tasks"]["outputs"]["k"] == 3 and g["missing"] == len(rows) - 1
    mine = report["tasks"]["outputs"]["families"][r["family"]]
    assert g["pass_at_k"] == pytest.approx(1 / len(rows), abs=1e-6) and mine["samples"] >= 3
    report = testing.score(dist, lines, TMP, "--k", "2")
    assert report["tasks"]["outputs"]["all"]["pass_at_k"] == pytest.approx((2 / 3) / len(rows), abs=1e-6)


def test_text_measures():
    """Levenshtein against a plain dynamic program; the kernel name is cleaned; one fence is read
    through."""
    def plain(a, b):
        d = list(range(len(b) + 1))
        for i, x in enumerate(a, 1):
            prev, d[0] = d[0], i
            for j, y in enumerate(b, 1):
                prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (x != y))
        return d[-1]

    for a, b in itertools.product(["", "a", "ab", "kitten", "sitting", "abcabc", "xbxbx"], repeat=2):
        assert levenshtein(list(a), list(b)) == plain(a, b), (a, b)
    assert exact_match("void k_1_abc() {}\n", "void k_1_xyz() {}  ", "k_1_xyz") is False
    assert exact_match("void arith_1() {}\r\n", "void arith_2() {}", "arith_2") is False
    assert exact_match("void kernel() {}", "void arith_2() {}", "arith_2") is True
    assert edit_similarity("a b c d", "a b x d", "") == 0.75
    assert unfence("```python\nx = 1\n```\n") == "x = 1"


def test_prompts_are_deterministic_and_errors_are_one_line(dist, rows, capsys):
    """Two runs of //eval:tasks give the same bytes, one line per test row with the task's fields;
    a bad task, split, release or predictions file is one error line and exit 2."""
    a, b = os.path.join(TMP, "p1.jsonl"), os.path.join(TMP, "p2.jsonl")
    for out in (a, b):
        assert tasks_main.main([dist, "--task", "outputs", "--out", out]) == 0
    with open(a, "rb") as f, open(b, "rb") as g:
        data = f.read()
        assert data == g.read()
    first = json.loads(data.splitlines()[0])
    assert set(first) == {"id", "task", "kernel_name", "source", "inputs"} and len(data.splitlines()) == len(rows)
    capsys.readouterr()
    bad_preds = testing.write_predictions(os.path.join(TMP, "bad.jsonl"), [{"id": "nope", "task": "outputs", "prediction": ""}])
    fifo = os.path.join(TMP, "fifo.jsonl")  # a predictions "file" that would block a plain open()
    if not os.path.exists(fifo):
        os.mkfifo(fifo)
    for code, argv in ((tasks_main.main, [dist, "--task", "nope", "--out", a]),
                       (tasks_main.main, [dist, "--task", "outputs", "--split", "dev", "--out", a]),
                       (tasks_main.main, [os.path.join(TMP, "missing"), "--task", "outputs", "--out", a]),
                       (eval_main.main, [dist, bad_preds]),
                       (eval_main.main, [dist, os.path.join(TMP, "none.jsonl")]),
                       (eval_main.main, [dist, fifo])):
        assert code(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, err


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
