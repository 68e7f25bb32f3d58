"""//eval:baseline on a small real release (16 CPU kernels, most in the test split): one line per
test row and task; every prediction is the answer of the nearest train row found by brute force
(plain multiset Jaccard over every train row, ties to the smallest id) with the kernel's name
substituted; the inverted index's similarities equal the plain ones; a train row asked as a
prompt finds itself (the leakage the baseline measures); //eval scores the file with every task
present; the same release gives the same bytes; bad input is one error line."""

import json
import os
import sys
import tempfile

import pytest

from eval import baseline, testing
from eval.tasks import TASKS
from eval.text import edit_similarity

TMP = os.environ.get("TEST_TMPDIR") or tempfile.mkdtemp(prefix="baseline-test-")


@pytest.fixture(scope="module")
def dist():
    return testing.small_release(TMP)


@pytest.fixture(scope="module")
def splits(dist):
    from eval.rows import read_split

    test, train = read_split(dist, "test"), read_split(dist, "train")
    assert test and len(train) >= 2, "the small release needs test rows and two train rows"
    return test, train


@pytest.fixture(scope="module")
def predictions(dist):
    """The baseline's file for every task, written twice: (bytes, bytes)."""
    out = []
    for name in ("b1.jsonl", "b2.jsonl"):
        path = os.path.join(TMP, name)
        assert baseline.main([dist, "--task", "all", "--out", path]) == 0
        with open(path, "rb") as f:
            out.append(f.read())
    return out


def _brute_force(task, prompt, train):
    """The nearest train row by the plain multiset Jaccard, the smallest id among ties."""
    column = {"cpp_to_python": "ir_cpp_forward", "cuda_to_python": "ir_cuda_forward"}.get(task.name, "source")
    q = baseline.tokens(prompt[column], prompt["kernel_name"])
    scored = [(-baseline.jaccard(q, baseline.tokens(r[column], r["kernel_name"])), r["id"], r) for r in train]
    return min(scored, key=lambda s: s[:2])[2]


def test_every_prediction_is_the_nearest_train_answer_with_names_substituted(splits, predictions):
    """One line per (test row, task), tasks in eval/tasks.py's order and rows by id; each is the
    brute-force nearest train row's reference with the prompt's kernel name in place of its own."""
    test, train = splits
    got = [json.loads(line) for line in predictions[0].splitlines()]
    assert [(g["task"], g["id"]) for g in got] == [(t, r["id"]) for t in TASKS for r in test]
    assert all(set(g) == {"id", "task", "prediction"} for g in got)
    by_id = {r["id"]: r for r in test}
    for g in got:
        task, prompt = TASKS[g["task"]], by_id[g["id"]]
        near = _brute_force(task, prompt, train)
        if task.kind == "outputs":
            assert g["prediction"] == near["outputs"]
        else:
            assert g["prediction"] == task.reference(near).replace(near["kernel_name"], prompt["kernel_name"])
            assert near["kernel_name"] not in g["prediction"]
    python = [g for g in got if g["task"] == "cpp_to_python"]
    assert all(f"def {by_id[g['id']]['kernel_name']}(" in g["prediction"] for g in python)


def test_the_index_gives_the_plain_similarities(splits):
    """Index.similarities equals jaccard for every (test, train) pair of every prompt column,
    the empty text included."""
    test, train = splits
    for column in ("source", "ir_cpp_forward", "ir_cuda_forward"):
        bags = [baseline.tokens(r[column], r["kernel_name"]) for r in train]
        index = baseline.Index(bags)
        for r in test:
            q = baseline.tokens(r[column], r["kernel_name"])
            assert list(index.similarities(q)) == [baseline.jaccard(q, b) for b in bags]
    empty = baseline.tokens("", "")
    assert list(baseline.Index([empty, bags[0]]).similarities(empty)) == [1.0, 0.0]


def test_a_train_row_asked_as_a_prompt_finds_itself(splits):
    """A train row put among the prompts (a leak) is answered with its own reference, similarity
    1.0; with leave-one-out (--split train) it gets another row instead."""
    _, train = splits
    leaked = dict(train[-1], id="leaked")
    out, sims = baseline.lines([TASKS["cpp_to_python"], TASKS["outputs"]], [leaked], train)
    assert [o["prediction"] for o in out] == [leaked["source"], leaked["outputs"]]
    assert sims == {"cpp_to_python": [1.0], "outputs": [1.0]}
    out, sims = baseline.lines([TASKS["cpp_to_python"]], train, train, leave_one_out=True)
    assert len(out) == len(train) and all(o["prediction"] != r["source"] for o, r in zip(out, train))


def test_scoring_the_baseline_reports_every_task(dist, splits, predictions):
    """//eval scores the baseline's file: every task is in the report; the text measures are the
    ones computed here; the Python tasks are judged (two rows each, to keep the sandboxed children
    few; the other rows count as missing)."""
    test, _ = splits
    got = [json.loads(line) for line in predictions[0].splitlines()]
    keep = {r["id"] for r in test[:2]}
    lines = [g for g in got if TASKS[g["task"]].kind != "python" or g["id"] in keep]
    report = testing.score(dist, lines, TMP)
    assert set(report["tasks"]) == set(TASKS)
    by_id = {r["id"]: r for r in test}
    for t in ("python_to_cpp", "cuda_to_python"):
        mine = [g for g in lines if g["task"] == t]
        want = sum(edit_similarity(g["prediction"], TASKS[t].reference(by_id[g["id"]]), by_id[g["id"]]["kernel_name"])
                   for g in mine) / len(mine)
        verdicts = [s for p in report["predictions"] if p["task"] == t and not p["missing"] for s in p["samples"]]
        assert sum(s["edit_similarity"] for s in verdicts) / len(verdicts) == pytest.approx(want, abs=1e-6)
    for t in ("cpp_to_python", "cuda_to_python"):
        g = report["tasks"][t]["all"]
        assert g["missing"] == len(test) - len(keep) and g["parsed"] > 0, g
    assert report["tasks"]["outputs"]["all"]["missing"] == 0


def test_the_same_release_gives_the_same_bytes(predictions):
    """Two runs write identical files."""
    assert predictions[0] == predictions[1] and predictions[0]


def _exit_code(argv):
    """baseline.main's status, an argument error's SystemExit included."""
    try:
        return baseline.main(argv)
    except SystemExit as e:
        return e.code


def test_bad_input_is_one_error_line(dist, capsys):
    """An unknown task or split, a missing release or a missing --out: one `error:` line, exit 2,
    nothing written."""
    out = os.path.join(TMP, "bad.jsonl")
    for argv in ([dist, "--task", "nope", "--out", out],
                 [dist, "--task", "all", "--split", "dev", "--out", out],
                 [os.path.join(TMP, "missing"), "--task", "all", "--out", out],
                 [dist, "--task", "all"]):
        assert _exit_code(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, err
    assert not os.path.exists(out)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
