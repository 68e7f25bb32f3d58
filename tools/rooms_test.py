"""Inside the rooms: no function over 60 lines, no module over 400 lines without the reason
written at its top ("Over 400 lines" in its docstring), and every test file says in its
docstring what it covers. Each check is shown able to fail on a planted file."""

from __future__ import annotations

import ast
import os
import sys
import tempfile

import pytest

from tools.layering_test import ORDER, ROOT, room_modules

MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 400
REASON = "over 400 lines"


def long_functions(root: str) -> list[str]:
    """'path:line: name is N lines' for every function (nested ones too) over the limit."""
    bad = []
    for _, path, tree in room_modules(root):
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    bad.append(f"{os.path.relpath(path, root)}:{node.lineno}: {node.name} is {n} lines")
    return bad


def long_modules_without_reason(root: str) -> list[str]:
    bad = []
    for _, path, tree in room_modules(root):
        with open(path, encoding="utf-8") as f:
            n = sum(1 for _ in f)
        if n > MAX_MODULE_LINES and REASON not in " ".join((ast.get_docstring(tree) or "").split()).lower():
            bad.append(f"{os.path.relpath(path, root)}: {n} lines and no reason at its top")
    return bad


def silent_test_files(root: str) -> list[str]:
    return [os.path.relpath(path, root) for _, path, tree in room_modules(root, "_test.py")
            if not (ast.get_docstring(tree) or "").strip()]


def test_no_function_is_over_60_lines():
    assert long_functions(ROOT) == []


def test_no_module_is_over_400_lines_without_its_reason():
    assert long_modules_without_reason(ROOT) == []


def test_every_test_file_says_what_it_covers():
    assert silent_test_files(ROOT) == []


def _planted_tree(tmp: str, files: dict[str, str]) -> str:
    for pkg in ORDER:
        os.makedirs(os.path.join(tmp, pkg), exist_ok=True)
    for rel, text in files.items():
        with open(os.path.join(tmp, rel), "w", encoding="utf-8") as f:
            f.write(text)
    return tmp


@pytest.mark.parametrize("lines, caught", [(58, False), (59, True)])
def test_a_long_function_is_caught_at_the_limit(lines, caught):
    body = "".join(f"    x{i} = {i}\n" for i in range(lines))
    with tempfile.TemporaryDirectory() as tmp:
        root = _planted_tree(tmp, {"generator/planted.py": f'"""Planted."""\n\n\ndef f():\n    """Doc."""\n{body}'})
        found = long_functions(root)
        assert found == ([f"generator/planted.py:4: f is {lines + 2} lines"] if caught else [])


def test_a_long_module_needs_its_reason_and_a_test_file_its_docstring():
    filler = "".join(f"X{i} = {i}\n" for i in range(MAX_MODULE_LINES))
    with tempfile.TemporaryDirectory() as tmp:
        root = _planted_tree(tmp, {
            "schemas/long.py": '"""Long."""\n' + filler,
            "schemas/long_ok.py": '"""Long.\n\nOver 400 lines: one table.\n"""\n' + filler,
            "schemas/quiet_test.py": "def test_x():\n    pass\n",
            "schemas/told_test.py": '"""What it covers."""\n\n\ndef test_x():\n    pass\n',
        })
        assert long_modules_without_reason(root) == [f"schemas/long.py: {MAX_MODULE_LINES + 1} lines and no reason at its top"]
        assert silent_test_files(root) == ["schemas/quiet_test.py"]


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
