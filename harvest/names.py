"""What a Python statement reads and binds, by name, read with `ast` (nothing imported): the
names a kernel or helper reaches outside itself (`free_names`) and the module-level statements
that bind each name (`module_bindings`), as `harvest/standalone.py` resolves them."""

from __future__ import annotations

import ast


def target_names(target: ast.AST) -> list[str]:
    return [n.id for n in ast.walk(target) if isinstance(n, ast.Name)]


def _import_binds(stmt: ast.AST) -> list[str]:
    return [(a.asname or a.name).split(".")[0] for a in stmt.names if a.name != "*"]


def bound_names(body: list[ast.stmt]) -> set[str]:
    """Names a scope's statements bind (not descending into nested function or class bodies)."""
    found: set[str] = set()
    todo = list(body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.add(node.name)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.update(_import_binds(node))
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            found.add(node.id)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            found.add(node.name)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            found.difference_update(node.names)
        todo.extend(ast.iter_child_nodes(node))
    return found


def param_names(args: ast.arguments) -> set[str]:
    every = args.posonlyargs + args.args + args.kwonlyargs + [a for a in (args.vararg, args.kwarg) if a]
    return {a.arg for a in every}


def _loads(nodes) -> list[str]:
    out = []
    for node in nodes:
        if node is None:
            continue
        for n in ast.walk(node):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load):
                out.append(n.id)
    return out


def _header_nodes(fn: ast.FunctionDef) -> list:
    a = fn.args
    every = a.posonlyargs + a.args + a.kwonlyargs + [x for x in (a.vararg, a.kwarg) if x]
    return [*fn.decorator_list, *(x.annotation for x in every), *a.defaults, *a.kw_defaults, fn.returns]


def free_names(node: ast.AST) -> list[str]:
    """The names a statement reads from outside itself, first use first."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        local = param_names(node.args) | bound_names(node.body)
        inner = [n for n in _loads(node.body) if n not in local]
        return list(dict.fromkeys(_loads(_header_nodes(node)) + inner))
    if isinstance(node, ast.ClassDef):
        local = bound_names(node.body)
        inner = [n for n in _loads(node.body) if n not in local]
        return list(dict.fromkeys(_loads([*node.decorator_list, *node.bases, *node.keywords]) + inner))
    local = bound_names([node]) if isinstance(node, (ast.If, ast.Try)) else set()
    return list(dict.fromkeys(n for n in _loads([node]) if n not in local))


def module_bindings(tree: ast.Module) -> dict[str, list[ast.stmt]]:
    """{name: the module-level statements that bind it, in file order}."""
    found: dict[str, list[ast.stmt]] = {}
    for stmt in tree.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names = [stmt.name]
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            names = _import_binds(stmt)
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            names = [n for t in targets for n in target_names(t)]
        elif isinstance(stmt, (ast.If, ast.Try)):
            names = sorted(bound_names([stmt]))
        else:
            continue
        for name in dict.fromkeys(names):
            found.setdefault(name, []).append(stmt)
    return found
