"""A kernel of the wheel as a source that imports and compiles on its own.

The source holds the kernel's own lines (dedented when it sits inside a class or a function) and
what it reaches by name at module level: `@wp.func` helpers (with the helpers they call, their
overloads and custom gradients), `@wp.struct`s, constants and other module-level statements, and
the imports those need (an import is cut down to the names used). Nothing else. Names are
resolved as Python would when the kernel runs: an enclosing function's locals first (a closure:
no standalone cut), then the file's module level, then what its `import *`s export, then Python's
builtins. A kernel that cannot be cut is returned with its reason, never dropped:
`closure:<name>`, `generic_unresolved` (a `typing.Any` parameter and no `wp.overload` of it at
module level), `unresolved_name:<name>`, `dedent`.
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
import importlib
import types

import warp

from extractor import warp_adapter
from harvest.discover import Kernel, SourceFile, decorated_as, dotted, first_line, FUNC_DECORATORS
from harvest.names import bound_names, free_names, module_bindings, param_names, target_names

PYTHON_BUILTINS = frozenset(dir(builtins))
OVERLOAD_CALLS = ("wp.overload", "warp.overload")
GRAD_DECORATORS = ("wp.func_grad", "warp.func_grad", "wp.func_replay", "warp.func_replay")
STANDALONE, VERBATIM = "standalone", "verbatim"


@dataclasses.dataclass(frozen=True)
class Extraction:
    """A kernel's standalone source, or why there is none (`reason`, `code:detail`)."""

    source: str | None
    kind: str | None  # STANDALONE, or VERBATIM when nothing but imports was added
    added: tuple[str, ...] = ()  # what was added beside the kernel, in source order
    reason: str | None = None
    generic: bool = False  # a typing.Any kernel with its module-level overloads

    def to_json(self) -> dict:
        return {"kind": self.kind, "added": list(self.added)}


def is_generic(fn: ast.FunctionDef) -> bool:
    """A parameter annotated with typing.Any (itself or inside, as in wp.array(dtype=Any))."""
    for arg in fn.args.args:
        for n in ast.walk(arg.annotation) if arg.annotation else ():
            if (isinstance(n, ast.Name) and n.id == "Any") or (isinstance(n, ast.Attribute) and n.attr == "Any"):
                return True
    return False


def overloads_of(tree: ast.Module, name: str) -> list[ast.stmt]:
    """Module-level `wp.overload(name, ...)` statements and `@wp.overload def name` stubs."""
    out = []
    for stmt in tree.body:
        value = stmt.value if isinstance(stmt, (ast.Expr, ast.Assign)) else None
        if isinstance(value, ast.Call) and dotted(value) in OVERLOAD_CALLS and value.args \
                and isinstance(value.args[0], ast.Name) and value.args[0].id == name:
            out.append(stmt)
        elif isinstance(stmt, ast.FunctionDef) and stmt.name == name and \
                any(dotted(d) in OVERLOAD_CALLS for d in stmt.decorator_list):
            out.append(stmt)
    return out


def _custom_grads(tree: ast.Module, funcs: set[str]) -> list[ast.stmt]:
    """`@wp.func_grad(f)` / `@wp.func_replay(f)` definitions for the helpers in `funcs`."""
    return [stmt for stmt in tree.body if isinstance(stmt, ast.FunctionDef) and any(
        dotted(d) in GRAD_DECORATORS and isinstance(d, ast.Call) and d.args and isinstance(d.args[0], ast.Name)
        and d.args[0].id in funcs for d in stmt.decorator_list)]


def _operator_funcs(nodes: list[ast.AST], bindings: dict) -> list[ast.stmt]:
    """The module's `@wp.func` definitions that an operator in `nodes` calls instead of the builtin
    (Warp's codegen looks `a + b` and `a += b` up as `add` in the module first:
    aux_test_array_slot_operators, whose kernel's replay differed without them)."""
    ops = warp_adapter.overloadable_operators()
    names = [ops[type(n.op)] for node in nodes for n in ast.walk(node)
             if isinstance(n, (ast.BinOp, ast.AugAssign)) and type(n.op) in ops]
    return [stmt for name in dict.fromkeys(names) for stmt in bindings.get(name, ())
            if isinstance(stmt, ast.FunctionDef) and decorated_as(stmt, FUNC_DECORATORS)]


_NOT_BOUND = object()


def _liftable(stmt: ast.stmt, name: str) -> bool:
    """A statement that can move from the kernel's enclosing function to module level with the
    same meaning: an import, a nested def or class, or `name = <expression>` calling nothing but
    Warp (`wp.constant`, `wp.vec3`, `wp.types.vector`, ...)."""
    if isinstance(stmt, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)):
        return True
    single = (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)) or (
        isinstance(stmt, ast.AnnAssign) and stmt.value is not None and isinstance(stmt.target, ast.Name))
    if single:
        return all(dotted(c).split(".")[0] in ("wp", "warp") for c in ast.walk(stmt.value) if isinstance(c, ast.Call))
    return False


def _enclosing_binding(kernel: Kernel, name: str):
    """How a function around the kernel binds `name` (class bodies do not count): _NOT_BOUND;
    the one statement of its body that binds it, when that can be lifted to module level; or
    None (a parameter, a loop variable, bound twice: a closure)."""
    for scope in reversed(kernel.scopes):
        if not isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if name in param_names(scope.args):
            return None
        binders = [s for s in scope.body if name in bound_names([s])]
        if not binders:
            continue
        if len(binders) == 1 and _liftable(binders[0], name):
            return binders[0]
        return None
    return _NOT_BOUND


@dataclasses.dataclass
class _Cut:
    """What the cut has gathered: module-level statements and import aliases, by identity."""

    stmts: dict[int, ast.stmt] = dataclasses.field(default_factory=dict)
    imports: dict[tuple[int, str], None] = dataclasses.field(default_factory=dict)  # (stmt id, bound name)
    star: dict[str, str] = dataclasses.field(default_factory=dict)  # name -> import line from an `import *`
    lifted: dict[int, ast.stmt] = dataclasses.field(default_factory=dict)  # from the enclosing function


class Unresolved(Exception):
    pass


def _star_exports(sf: SourceFile) -> list[tuple[str, object]]:
    """(module name, module) of each module-level `from M import *` (imported to read its names)."""
    out = []
    for stmt in sf.tree.body:
        if isinstance(stmt, ast.ImportFrom) and any(a.name == "*" for a in stmt.names):
            mod = _absolute(stmt, sf)
            try:
                out.append((mod, importlib.import_module(mod)))
            except Exception:  # noqa: BLE001 - a module the wheel cannot import here: its names stay unresolved
                continue
    return out


def _star_line(modname: str, module, name: str) -> str | None:
    exported = getattr(module, "__all__", None)
    if (exported is not None and name not in exported) or name.startswith("_") or not hasattr(module, name):
        return None
    value = getattr(module, name)
    if isinstance(value, types.ModuleType):
        return f"import {value.__name__} as {name}" if value.__name__ != name else f"import {name}"
    return f"from {modname} import {name}"


def _absolute(stmt: ast.ImportFrom, sf: SourceFile) -> str:
    if not stmt.level:
        return stmt.module
    package = sf.module_name.split(".") if sf.path.endswith("__init__.py") else sf.module_name.split(".")[:-1]
    base = package[: len(package) - (stmt.level - 1)]
    return ".".join(base + ([stmt.module] if stmt.module else []))


def _describe(stmt: ast.stmt) -> str:
    """What an added statement is, e.g. `func:helper`, `struct:Particle`, `constant:N`."""
    if isinstance(stmt, ast.FunctionDef):
        kind = ("overload" if any(dotted(d) in OVERLOAD_CALLS for d in stmt.decorator_list) else
                "func_grad" if any(dotted(d) in GRAD_DECORATORS for d in stmt.decorator_list) else
                "func" if decorated_as(stmt, FUNC_DECORATORS) else "function")
        return f"{kind}:{stmt.name}"
    if isinstance(stmt, ast.ClassDef):
        return f"{'struct' if any(dotted(d).endswith('.struct') for d in stmt.decorator_list) else 'class'}:{stmt.name}"
    value = getattr(stmt, "value", None)
    if isinstance(value, ast.Call) and dotted(value) in OVERLOAD_CALLS:
        return f"overload:{ast.unparse(value.args[0])}"
    if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        names = ",".join(n for t in targets for n in target_names(t))
        return f"{'constant' if isinstance(value, ast.Call) and dotted(value).endswith('.constant') else 'assign'}:{names}"
    return f"statement:{','.join(sorted(bound_names([stmt]))) or type(stmt).__name__}"


def _resolve(kernel: Kernel, bindings: dict, stars: list, extra: list[ast.stmt]) -> _Cut:
    """Gather every module-level statement the kernel reaches by name (raises Unresolved)."""
    cut = _Cut()
    seen = {(kernel.name, True), (kernel.name, False)} if not kernel.scopes else set()
    todo = [(n, True) for n in free_names(kernel.node)]
    for stmt in extra:
        cut.stmts[id(stmt)] = stmt
        todo += [(n, False) for n in free_names(stmt)]
    while True:
        while todo:
            name, in_kernel = todo.pop(0)
            if (name, in_kernel) in seen:
                continue
            seen.add((name, in_kernel))
            local = _enclosing_binding(kernel, name) if in_kernel else _NOT_BOUND
            if local is None:
                raise Unresolved(f"closure:{name}")
            if local is not _NOT_BOUND:
                if id(local) not in cut.lifted:
                    cut.lifted[id(local)] = local
                    todo += [(n, True) for n in free_names(local)]
                continue
            if name in bindings:
                for stmt in bindings[name]:
                    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                        cut.imports[(id(stmt), name)] = None
                    elif id(stmt) not in cut.stmts:
                        cut.stmts[id(stmt)] = stmt
                        todo += [(n, False) for n in free_names(stmt)]
                continue
            line = next((text for mod, m in stars if (text := _star_line(mod, m, name))), None)
            if line:
                cut.star[name] = line
            elif name not in PYTHON_BUILTINS and not hasattr(warp, name):  # Warp's codegen resolves its own names
                raise Unresolved(f"unresolved_name:{name}")
        funcs = {s.name for s in cut.stmts.values() if isinstance(s, ast.FunctionDef)}
        more = _custom_grads(kernel.file.tree, funcs) + _operator_funcs([kernel.node, *cut.lifted.values(),
                                                                         *cut.stmts.values()], bindings)
        more = [s for s in dict.fromkeys(more) if id(s) not in cut.stmts]
        if not more:
            return cut
        for stmt in more:
            cut.stmts[id(stmt)] = stmt
            todo += [(n, False) for n in free_names(stmt)]


def _import_lines(cut: _Cut, sf: SourceFile) -> list[str]:
    """The needed imports, each cut down to the names used, in file order; `import *` names after."""
    by_stmt: dict[int, list[str]] = {}
    for sid, name in cut.imports:
        by_stmt.setdefault(sid, []).append(name)
    lines = []
    for stmt in sf.tree.body:
        if isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__":
            lines.append(ast.unparse(stmt))
        elif id(stmt) in by_stmt:
            names = by_stmt[id(stmt)]
            if isinstance(stmt, ast.Import):
                keep = [a for a in stmt.names if (a.asname or a.name).split(".")[0] in names]
                lines.append(ast.unparse(ast.Import(names=keep)))
            else:
                keep = [a for a in stmt.names if (a.asname or a.name) in names]
                lines.append(ast.unparse(ast.ImportFrom(module=_absolute(stmt, sf), names=keep, level=0)))
    return list(dict.fromkeys(lines + list(cut.star.values())))


def _dedented(sf: SourceFile, first: int, last: int, indent: int) -> str:
    """Lines [first, last] of the file with `indent` columns taken off each (Unresolved when a
    line, in a string say, starts further left)."""
    out = []
    for line in sf.lines[first - 1: last]:
        if not line.strip():
            out.append("\n")
        elif line[:indent].strip():
            raise Unresolved("dedent")
        else:
            out.append(line[indent:])
    text = "".join(out)
    return text if text.endswith("\n") else text + "\n"


def _lifted_text(sf: SourceFile, stmt: ast.stmt) -> str:
    if isinstance(stmt, ast.ImportFrom):
        return ast.unparse(ast.ImportFrom(module=_absolute(stmt, sf), names=stmt.names, level=0)) + "\n"
    return _dedented(sf, first_line(stmt), stmt.end_lineno, stmt.col_offset)


def _statement_text(sf: SourceFile, stmt: ast.stmt) -> str:
    text = "".join(sf.lines[first_line(stmt) - 1: stmt.end_lineno])
    return text if text.endswith("\n") else text + "\n"


def extract(kernel: Kernel, bindings: dict | None = None, stars: list | None = None) -> Extraction:
    """The kernel's standalone source (see the module docstring), or the reason it has none.
    `bindings` and `stars` (of `kernel.file`) may be passed in when many kernels of one file are
    cut."""
    sf = kernel.file
    bindings = module_bindings(sf.tree) if bindings is None else bindings
    stars = _star_exports(sf) if stars is None else stars
    generic = is_generic(kernel.node)
    overloads = overloads_of(sf.tree, kernel.name) if generic and not kernel.scopes else []
    if generic and not overloads:
        return Extraction(None, None, reason="generic_unresolved")
    try:
        cut = _resolve(kernel, bindings, stars, overloads)
        body = sorted(cut.stmts.values(), key=first_line)
        kernel_text = _dedented(sf, *kernel.lines, kernel.node.col_offset)
        lifted = sorted(cut.lifted.values(), key=first_line)
        lifted_text = [_lifted_text(sf, s) for s in lifted]
    except Unresolved as e:
        return Extraction(None, None, reason=str(e))
    imports = _import_lines(cut, sf)
    pieces = []
    placed = False
    for stmt in body:
        if not placed and not kernel.scopes and first_line(stmt) > kernel.lines[0]:
            pieces.append(kernel_text)
            placed = True
        pieces.append(_statement_text(sf, stmt))
    if not placed:
        pieces += lifted_text + [kernel_text]
    source = "\n".join(imports) + "\n\n\n" + "\n\n".join(pieces)
    added = (tuple(f"import:{line}" for line in imports) + tuple(_describe(s) for s in body)
             + tuple(f"lifted:{_describe(s)}" for s in lifted))
    try:
        compile(source, f"{kernel.name}.py", "exec")
    except SyntaxError as e:
        return Extraction(None, None, reason=f"syntax:{e.msg}")
    kind = VERBATIM if all(a.startswith("import:") for a in added) else STANDALONE
    return Extraction(source, kind, added, generic=generic)


def extract_all(kernels: list[Kernel]) -> list[Extraction]:
    """`extract` for each kernel, in order (each file's bindings and star imports read once)."""
    cache: dict[str, tuple] = {}
    out = []
    for k in kernels:
        if k.file.path not in cache:
            cache[k.file.path] = (module_bindings(k.file.tree), _star_exports(k.file))
        out.append(extract(k, *cache[k.file.path]))
    return out
