"""Every `@wp.kernel` the installed warp-lang wheel defines, read with `ast` from its own files.

The wheel is the one `import warp` finds; its version and licence are read from the running
Warp and the wheel's metadata, never written here. A kernel is found wherever its `def` sits: at
module level, in a class body, inside a function or a test method. Each kernel carries where it
is (`path` inside the wheel, `lines` [first, last] with its decorators) and the sha256 of the
installed file, so anyone holding the same wheel can find it again.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import hashlib
import importlib.metadata
import importlib.util
import os

# the folders of the wheel that are harvested, in this order
DIRECTORIES = ("examples", "tests", "_src")
KERNEL_DECORATORS = ("wp.kernel", "warp.kernel")
FUNC_DECORATORS = ("wp.func", "warp.func")
STRUCT_DECORATORS = ("wp.struct", "warp.struct")
CONSTANT_CALLS = ("wp.constant", "warp.constant")
DISTRIBUTION = "warp-lang"


def warp_root() -> str:
    """The installed `warp` package's folder (what `import warp` loads)."""
    spec = importlib.util.find_spec("warp")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the warp package is not installed")
    return os.path.realpath(list(spec.submodule_search_locations)[0])


def wheel_version() -> str:
    """warp-lang's version, from the running Warp."""
    import warp

    return warp.config.version


def wheel_license() -> str:
    """The licence the wheel's metadata declares (License-Expression, else License)."""
    meta = importlib.metadata.distribution(DISTRIBUTION).metadata
    found = meta.get("License-Expression") or meta.get("License")
    if not found:
        raise RuntimeError(f"the {DISTRIBUTION} metadata declares no licence")
    return found.strip()


def wheel() -> dict:
    """The running wheel as records name it: {"warp_lang": version, "license": licence}."""
    return {"warp_lang": wheel_version(), "license": wheel_license()}


def dotted(node: ast.AST) -> str:
    """`wp.kernel` for the expression wp.kernel, or wp.kernel(...); "" for anything else."""
    if isinstance(node, ast.Call):
        node = node.func
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return ""
    return ".".join([node.id, *reversed(parts)])


def decorated_as(node: ast.AST, names: tuple[str, ...]) -> bool:
    return isinstance(node, (ast.FunctionDef, ast.ClassDef)) and any(dotted(d) in names for d in node.decorator_list)


def first_line(node: ast.AST) -> int:
    """The first line of a definition, its decorators included."""
    return min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", ())])


@dataclasses.dataclass
class SourceFile:
    """One file of the wheel: its text, sha256 and parsed module, with its module-level
    `@wp.func`s, `@wp.struct`s, `wp.constant`s and imports named."""

    path: str  # inside the wheel, e.g. warp/tests/test_mesh.py
    text: str
    sha256: str
    tree: ast.Module
    funcs: list[str] = dataclasses.field(default_factory=list)
    structs: list[str] = dataclasses.field(default_factory=list)
    constants: list[str] = dataclasses.field(default_factory=list)
    imports: list[str] = dataclasses.field(default_factory=list)

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines(keepends=True)

    @property
    def module_name(self) -> str:
        """The dotted module name the file has inside the wheel (`warp.tests.test_mesh`)."""
        return self.path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")


@dataclasses.dataclass
class Kernel:
    """One `@wp.kernel` definition: where it is and the scopes around it (outermost first)."""

    file: SourceFile
    node: ast.FunctionDef
    scopes: tuple  # enclosing ClassDef / FunctionDef nodes, outermost first

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def lines(self) -> tuple[int, int]:
        return first_line(self.node), self.node.end_lineno

    @property
    def scope(self) -> str:
        """`module`, `class` (a class body), or `function` (inside a function or method)."""
        if not self.scopes:
            return "module"
        return "function" if any(isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)) for s in self.scopes) else "class"

    @property
    def directory(self) -> str:
        """The harvested folder it is in (`examples`, `tests` or `_src`)."""
        return self.file.path.split("/")[1]

    def sort_key(self) -> tuple:
        return self.file.path, self.lines

    @property
    def expected_to_raise(self) -> bool:
        """Whether the wheel's own test names this kernel inside an `assertRaises` context (the
        body of a `with self.assertRaises...:` or an argument of a `self.assertRaises...(...)`
        call) in the innermost function around it, or in its module for a module-level kernel:
        the wheel tests that using it raises (a codegen, compile or launch error on purpose)."""
        functions = [s for s in self.scopes if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))]
        return self.name in names_raised_on(functions[-1] if functions else self.file.tree)


def _is_assert_raises(call: ast.AST) -> bool:
    return isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr.startswith("assertRaises")


@functools.lru_cache(maxsize=4096)
def names_raised_on(scope: ast.AST) -> frozenset[str]:
    """The names (and attribute names) used inside the `assertRaises` contexts of `scope`."""
    parts = []
    for n in ast.walk(scope):
        if isinstance(n, ast.With) and any(_is_assert_raises(item.context_expr) for item in n.items):
            parts += n.body
        elif _is_assert_raises(n):
            parts += n.args[1:] + [k.value for k in n.keywords]
    return frozenset(x.id if isinstance(x, ast.Name) else x.attr for part in parts for x in ast.walk(part)
                     if isinstance(x, (ast.Name, ast.Attribute)))


def _module_level(tree: ast.Module, sf: SourceFile) -> None:
    for stmt in tree.body:
        if decorated_as(stmt, FUNC_DECORATORS):
            sf.funcs.append(stmt.name)
        elif decorated_as(stmt, STRUCT_DECORATORS):
            sf.structs.append(stmt.name)
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign)) and isinstance(stmt.value, ast.Call) \
                and dotted(stmt.value) in CONSTANT_CALLS:
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            sf.constants += [t.id for t in targets if isinstance(t, ast.Name)]
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            sf.imports.append(ast.unparse(stmt))


def _kernels_in(node: ast.AST, sf: SourceFile, scopes: tuple, out: list) -> None:
    for child in ast.iter_child_nodes(node):
        inner = scopes
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if isinstance(child, ast.FunctionDef) and decorated_as(child, KERNEL_DECORATORS):
                out.append(Kernel(sf, child, scopes))
            inner = scopes + (child,)
        elif isinstance(child, ast.ClassDef):
            inner = scopes + (child,)
        _kernels_in(child, sf, inner, out)


def read_file(root: str, relpath: str) -> SourceFile:
    """One file of the wheel, `relpath` relative to the folder holding the `warp` package."""
    with open(os.path.join(root, relpath), "rb") as f:
        data = f.read()
    text = data.decode("utf-8")
    tree = ast.parse(text, relpath)
    sf = SourceFile(relpath, text, hashlib.sha256(data).hexdigest(), tree)
    _module_level(tree, sf)
    return sf


def wheel_files(root: str | None = None) -> list[str]:
    """The harvested .py files, as paths inside the wheel, sorted."""
    root = root or warp_root()
    base = os.path.dirname(root)
    found = []
    for sub in DIRECTORIES:
        for d, dirs, names in os.walk(os.path.join(root, sub)):
            dirs[:] = sorted(x for x in dirs if x != "__pycache__")
            found += [os.path.relpath(os.path.join(d, n), base).replace(os.sep, "/") for n in names if n.endswith(".py")]
    return sorted(found)


def discover(root: str | None = None) -> tuple[list[Kernel], dict[str, SourceFile]]:
    """Every kernel of the harvested folders, sorted by (path, lines), and the files read."""
    root = root or warp_root()
    base = os.path.dirname(root)
    kernels: list[Kernel] = []
    files = {}
    for rel in wheel_files(root):
        sf = read_file(base, rel)
        files[rel] = sf
        _kernels_in(sf.tree, sf, (), kernels)
    kernels.sort(key=Kernel.sort_key)
    return kernels, files
