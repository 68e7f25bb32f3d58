"""//bench:eval as a user runs it, at toy size: a real release of 8 CPU kernels is made and the
reference answers of a Python task, the outputs task and a C++ task are scored and timed and
score 100% correct; trivial ones 0%; bad flags are one-line errors."""

import json
import sys

import pytest

from bench import eval_bench


def test_each_task_is_timed_and_its_reference_answers_are_right(tmp_path, capsys):
    """Answers, seconds and answers/s/worker per task; the reference answers are correct (Python
    and C++ executed, outputs compared)."""
    out = tmp_path / "eval.json"
    assert eval_bench.main(["--kernels", "8", "--tasks", "cpp_to_python,outputs,python_to_cpp",
                            "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert set(r) == {"cpp_to_python", "outputs", "python_to_cpp"}
    for task, v in r.items():
        assert v["answers"] >= 1 and v["seconds"] > 0 and v["answers_per_s_per_worker"] > 0, task
    assert r["cpp_to_python"]["correct"] == 1.0 and r["outputs"]["correct"] == 1.0
    assert r["python_to_cpp"]["correct"] == 1.0 and r["python_to_cpp"]["judged"] == 1.0
    assert "answers/s/worker" in capsys.readouterr().out


def test_trivial_answers_score_nothing(tmp_path):
    """A kernel that returns nothing, zeros in the outputs' shapes and a C++ kernel function with
    an empty body: judged, and 0% correct."""
    out = tmp_path / "trivial.json"
    assert eval_bench.main(["--kernels", "8", "--tasks", "cpp_to_python,outputs,python_to_cpp", "--answers", "trivial",
                            "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["cpp_to_python"]["correct"] == 0.0 and r["outputs"]["correct"] == 0.0
    assert r["python_to_cpp"]["correct"] == 0.0 and r["python_to_cpp"]["judged"] == 1.0
    assert r["cpp_to_python"]["answers_kind"] == "trivial"


def test_bad_flags_are_one_line_errors(capsys):
    """An unknown task or a zero size is one error line, exit 2."""
    assert eval_bench.main(["--tasks", "nope"]) == 2
    assert eval_bench.main(["--kernels", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and all(line.startswith("error: ") for line in err.splitlines())


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
