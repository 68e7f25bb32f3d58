"""Language coverage: which Warp builtins the generator's kernels call, measured against the
builtins that the installed warp-lang wheel's own kernels call.

Nothing of Warp is imported: the wheel is located with `importlib.util.find_spec` (which does not
run the package) and its sources are read with `ast`. A builtin is a name Warp's
`_src/builtins.py` registers with `add_builtin`, a scalar type (`float`, `int`, `bool`, `uint8`,
`bfloat16`, ...: Warp registers their casts in a loop) or a vector, matrix, quaternion, transform
or spatial type of `_src/types.py` called as a constructor (`wp.vec3(...)`). A call site is a call
of such a name, written `wp.NAME(...)`, `warp.NAME(...)` or bare `NAME(...)`, in the body of a
function decorated `kernel` or `func` (`@wp.kernel`, `@wp.func`, with or without arguments; its
annotations and decorators are not calls it makes).
"""

from __future__ import annotations

import ast
import collections
import dataclasses
import importlib.util
import os
import re

from generator.diversity import drawn_sources

# where the wheel's own kernels are, inside the `warp` package
WHEEL_DIRS = ("examples", "tests", "_src")
# the coverage issue's targets (issue 29)
TARGET_BUILTINS = 200
TARGET_CALL_SITES = 0.90

_COMPOSITE = re.compile(r"(vec\d\w*|mat\d\d\w*|quat[hfd]?|transform[hfd]?|spatial_(vector|matrix)[hfd]?|vector|matrix)")
_DECORATORS = ("kernel", "func")


def wheel_root() -> str:
    """The installed `warp` package's directory, found without importing it."""
    spec = importlib.util.find_spec("warp")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("warp-lang is not installed")
    return list(spec.submodule_search_locations)[0]


def builtin_names(root: str) -> frozenset[str]:
    """Every name a kernel may call as a Warp builtin, read from the wheel's sources."""
    names = set()
    with open(os.path.join(root, "_src", "builtins.py"), encoding="utf-8") as f:
        tree = ast.parse(f.read())
    # the casts Warp registers in a loop over `scalar_types_all = [*scalar_types, bool, int, float]`
    names.update(_tuple_names(tree, "scalar_types_all"))
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "add_builtin"
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            names.add(node.args[0].value)
    with open(os.path.join(root, "_src", "types.py"), encoding="utf-8") as f:
        tree = ast.parse(f.read())
    names.update(_tuple_names(tree, "int_types") | _tuple_names(tree, "float_types"))  # scalar_types' parts
    for node in tree.body:
        targets = (node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign)
                   else [ast.Name(node.name)] if isinstance(node, ast.ClassDef) else [])
        names.update(t.id for t in targets if isinstance(t, ast.Name) and _COMPOSITE.fullmatch(t.id))
    return frozenset(names)


def _tuple_names(tree: ast.Module, name: str) -> set[str]:
    """The plain names listed in the module-level tuple or list assigned to `name`."""
    for node in tree.body:
        if (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
                and isinstance(node.value, (ast.Tuple, ast.List))):
            return {e.id for e in node.value.elts if isinstance(e, ast.Name)}
    raise ValueError(f"the wheel defines no {name} (read from its sources)")


def _is_warp_function(node: ast.AST) -> bool:
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return False
    for d in node.decorator_list:
        d = d.func if isinstance(d, ast.Call) else d
        name = d.attr if isinstance(d, ast.Attribute) else d.id if isinstance(d, ast.Name) else None
        if name in _DECORATORS:
            return True
    return False


def _called_name(call: ast.Call) -> str | None:
    f = call.func
    if isinstance(f, ast.Name):
        return f.id
    if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id in ("wp", "warp"):
        return f.attr
    return None


def call_sites(source: str, builtins: frozenset[str]) -> tuple[int, collections.Counter]:
    """(kernels and funcs found, Counter of builtin -> call sites) in one module's source."""
    tree = ast.parse(source)
    found, sites = 0, collections.Counter()
    for node in ast.walk(tree):
        if not _is_warp_function(node):
            continue
        found += 1
        # the body only: annotations (`wp.array(dtype=float)`) and decorators are not calls a kernel makes
        for inner in (x for stmt in node.body for x in ast.walk(stmt)):
            if isinstance(inner, ast.Call):
                name = _called_name(inner)
                if name in builtins:
                    sites[name] += 1
    return found, sites


@dataclasses.dataclass
class Usage:
    functions: int = 0  # kernels and funcs read
    files: int = 0
    unreadable: int = 0  # files that do not parse (counted, not dropped)
    sites: collections.Counter = dataclasses.field(default_factory=collections.Counter)

    def add(self, source: str, builtins: frozenset[str]) -> None:
        try:
            n, sites = call_sites(source, builtins)
        except (SyntaxError, ValueError):
            self.unreadable += 1
            return
        self.files += 1
        self.functions += n
        self.sites.update(sites)


def wheel_usage(root: str, builtins: frozenset[str]) -> Usage:
    """The builtins the wheel's own kernels and funcs call (examples, tests, library)."""
    usage = Usage()
    for sub in WHEEL_DIRS:
        for d, dirs, names in os.walk(os.path.join(root, sub)):
            dirs[:] = sorted(x for x in dirs if x != "__pycache__")
            for name in sorted(n for n in names if n.endswith(".py")):
                with open(os.path.join(d, name), encoding="utf-8", errors="replace") as f:
                    usage.add(f.read(), builtins)
    return usage


def generator_usage(target: str, count: int, seed: int, builtins: frozenset[str]) -> Usage:
    """The builtins the generator's kernels call: the sources of the `count` kernels a run of
    `target` would draw from `seed` (kernel k -> family, seed, as the run plans it)."""
    usage = Usage()
    for source in drawn_sources(target, count, seed):
        usage.add(source, builtins)
    return usage


def coverage(generated: Usage, real: Usage) -> dict:
    """The generator's distinct builtins, the real ones, the share of real call sites whose
    builtin the generator also calls, and what is missing, most called first."""
    ours, theirs = set(generated.sites), set(real.sites)
    total = sum(real.sites.values())
    covered = sum(n for name, n in real.sites.items() if name in ours)
    missing = sorted(((n, name) for name, n in real.sites.items() if name not in ours), key=lambda x: (-x[0], x[1]))
    return {
        "generator": {"builtins": len(ours), "functions": generated.functions, "names": sorted(ours)},
        "real": {"builtins": len(theirs), "functions": real.functions, "files": real.files,
                 "unreadable_files": real.unreadable, "call_sites": total},
        "covered_builtins": len(ours & theirs),
        "call_site_share": covered / total if total else None,
        "missing": [{"builtin": name, "call_sites": n} for n, name in missing],
        "targets": {"builtins": TARGET_BUILTINS, "call_site_share": TARGET_CALL_SITES},
    }


def failures(cov: dict) -> list[str]:
    out = []
    if cov["generator"]["builtins"] < TARGET_BUILTINS:
        out.append(f"{cov['generator']['builtins']} distinct builtins < {TARGET_BUILTINS}")
    if cov["call_site_share"] is not None and cov["call_site_share"] < TARGET_CALL_SITES:
        out.append(f"{cov['call_site_share']:.1%} of the real call sites covered < {TARGET_CALL_SITES:.0%}")
    return out
