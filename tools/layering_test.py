"""The rooms and their order: no package imports from a package above it.

    runtime < schemas < generator < extractor < harvest < validator < pipeline < tools < report
            < eval < bench < docs

runtime/ is process plumbing (the caller's directory, run directories, SIGTERM);
generator/ is the model (specs, grammar, families, render, oracle, inputs); extractor/ lowers a
spec's module with Warp's JIT; harvest/ finds and lowers the real kernels of the installed
warp-lang wheel; validator/ checks records; pipeline/ runs generation above all three; tools/
(release, verify, provenance) and report/ work on datasets and releases; eval/ scores a model's
answers on a release; bench/ measures everything; docs/ holds the pages to the code. A test file may also import `pipeline`, and nothing else above its own
package: tests of lower rooms build their datasets with the pipeline.
"""

from __future__ import annotations

import ast
import os
import shutil
import sys
import tempfile

import pytest

ORDER = ["runtime", "schemas", "generator", "extractor", "harvest", "validator", "pipeline", "tools", "report", "eval", "bench", "docs"]
LAYER = {name: i for i, name in enumerate(ORDER)}
TEST_MAY_IMPORT = {"pipeline"}
ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))


def imported_packages(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, top-level package) of every import in the module, inside functions too."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name.split(".")[0]) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def room_modules(root: str, suffix: str = ".py"):
    """(room, path, parsed module) of every Python file of the rooms whose name ends in `suffix`."""
    for pkg in ORDER:
        for d, dirs, names in os.walk(os.path.join(root, pkg)):
            dirs[:] = [x for x in dirs if not x.startswith((".", "__pycache__"))]
            for name in sorted(n for n in names if n.endswith(suffix)):
                path = os.path.join(d, name)
                with open(path, encoding="utf-8") as f:
                    yield pkg, path, ast.parse(f.read(), path)


def upward_imports(root: str) -> list[str]:
    """Every import from a higher room, as 'path:line: package imports higher'."""
    bad = []
    for pkg, path, tree in room_modules(root):
        is_test = path.endswith("_test.py")
        for line, top in imported_packages(tree):
            if top in LAYER and LAYER[top] > LAYER[pkg] and not (is_test and top in TEST_MAY_IMPORT):
                bad.append(f"{os.path.relpath(path, root)}:{line}: {pkg} imports {top}, a higher room")
    return bad


def test_every_room_is_a_package_here():
    missing = [p for p in ORDER if not os.path.isdir(os.path.join(ROOT, p))]
    assert not missing, f"rooms without a folder: {missing} (root {ROOT})"
    # and nothing is skipped: every top-level Python package of the repository has its place
    packages = {d for d in os.listdir(ROOT) if os.path.isfile(os.path.join(ROOT, d, "__init__.py"))}
    assert packages <= set(ORDER), f"packages with no place in the order: {sorted(packages - set(ORDER))}"


def test_no_room_imports_from_a_room_above_it():
    assert upward_imports(ROOT) == []


@pytest.mark.parametrize("where, line, expect", [
    ("generator/spec.py", "from pipeline import run", "generator imports pipeline"),
    ("generator/render.py", "    from validator import checks", "generator imports validator"),
    ("extractor/warp_adapter.py", "import validator.checks", "extractor imports validator"),
    ("validator/checks.py", "from tools import release", "validator imports tools"),
    ("validator/gradients_test.py", "from tools import verify", "validator imports tools"),
    ("tools/verify.py", "from report import facts", "tools imports report"),
    ("pipeline/chunk.py", "from tools.release import main", "pipeline imports tools"),
])
def test_a_planted_upward_import_is_found(where, line, expect):
    """The check can fail: a copy of the repository with one upward import planted (at module
    level, or inside a function) fails with that file named."""
    with tempfile.TemporaryDirectory() as tmp:
        for pkg in ORDER:
            shutil.copytree(os.path.join(ROOT, pkg), os.path.join(tmp, pkg),
                            ignore=shutil.ignore_patterns("__pycache__"))
        path = os.path.join(tmp, where)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        planted = (f"def _planted():\n{line}\n" if line.startswith(" ") else f"{line}\n")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text + "\n\n" + planted)
        bad = upward_imports(tmp)
        assert len(bad) == 1 and bad[0].startswith(where + ":") and expect in bad[0], bad


# rooms that must work without Warp: the model, the formats, and the Warp-free verdicts that
# //tools:verify and //tools:release apply
WARP_FREE = ["generator", "schemas", "validator/verdicts.py", "tools/release.py", "tools/verify.py",
             "tools/release_inputs.py", "tools/release_format.py", "tools/dedup.py", "tools/card.py",
             "validator/safety.py", "validator/schema_check.py", "validator/outcomes.py", "validator/sources.py",
             "extractor/cut.py", "extractor/ptx.py", "extractor/cuda_errors.py"]


def warp_imports(root: str) -> list[str]:
    bad = []
    for entry in WARP_FREE:
        path = os.path.join(root, entry)
        files = [path] if entry.endswith(".py") else [
            os.path.join(d, n) for d, _, names in os.walk(path) for n in names if n.endswith(".py")]
        for f in sorted(files):
            with open(f, encoding="utf-8") as fh:
                tree = ast.parse(fh.read(), f)
            bad += [f"{os.path.relpath(f, root)}:{line}: imports {top}" for line, top in imported_packages(tree)
                    if top in ("warp", "extractor")]
    return bad


def test_the_model_the_formats_and_the_static_verdicts_import_no_warp():
    assert warp_imports(ROOT) == []
    with tempfile.TemporaryDirectory() as tmp:  # and the check can fail
        shutil.copytree(os.path.join(ROOT, "generator"), os.path.join(tmp, "generator"),
                        ignore=shutil.ignore_patterns("__pycache__"))
        for entry in WARP_FREE[1:]:
            src = os.path.join(ROOT, entry)
            dst = os.path.join(tmp, entry)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            (shutil.copytree if os.path.isdir(src) else shutil.copy)(src, dst)
        with open(os.path.join(tmp, "generator", "render.py"), "a") as f:
            f.write("\n\ndef _planted():\n    import warp\n")
        assert [b.split(":")[0] for b in warp_imports(tmp)] == ["generator/render.py"]


def test_a_test_may_reach_the_pipeline_and_no_higher():
    tree = ast.parse("import pipeline\nfrom tools import release\n")
    tops = [top for _, top in imported_packages(tree)]
    assert tops == ["pipeline", "tools"]
    assert "pipeline" in TEST_MAY_IMPORT and "tools" not in TEST_MAY_IMPORT


def silent_test_files(root: str) -> list[str]:
    """Test files with test functions that Bazel would run without running them: a py_test runs
    the file as a script, so one without `pytest.main` under `if __name__ == "__main__"` passes
    having collected nothing."""
    bad = []
    for _, path, tree in room_modules(root, "_test.py"):
        tests = any(isinstance(n, ast.FunctionDef) and n.name.startswith("test_") for n in tree.body)
        runs = any(isinstance(n, ast.If) and "__main__" in ast.unparse(n.test) and "pytest.main" in ast.unparse(n)
                   for n in tree.body)
        if tests and not runs:
            bad.append(os.path.relpath(path, root))
    return bad


def test_every_test_file_runs_its_tests_when_bazel_runs_it():
    assert silent_test_files(ROOT) == []
    with tempfile.TemporaryDirectory() as tmp:  # and the check can fail
        os.makedirs(os.path.join(tmp, "generator"))
        with open(os.path.join(tmp, "generator", "planted_test.py"), "w") as f:
            f.write("def test_x():\n    assert False\n")
        with open(os.path.join(tmp, "generator", "script_test.py"), "w") as f:
            f.write("assert 1 + 1 == 2\n")
        assert silent_test_files(tmp) == [os.path.join("generator", "planted_test.py")]


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
