"""The one walk of a spec's body trees: every statement and expression node, in source order.

A node is a list whose first element is its tag (`generator.spec` lists the shapes). This module
is the one place that knows where a node's children sit (an `if`'s condition, branches and else,
a `store`'s indices and value, a call's arguments, ...), so the oracle's branch points, the
lanes' support check and written arrays, and the fault audit's literals all walk the same tree.

    walk(*bodies)         (node, is_statement) for every node, depth first, in source order
    nodes(*bodies)        every node, in the same order
    statements(*bodies)   every statement, nested ones included, in the same order
    spec_bodies(spec)     a KernelSpec's kernel body and its helpers' bodies, the bodies to walk
    referenced_names(*bodies), unused_args(spec)   the names a body uses; the arguments it never does
    statement_children(s), expression_children(e), statement_bodies(s)   one node's children

A body is a list of statements (a KernelSpec's `body`, a helper's `body`, or the same lists of a
spec's JSON form). A node with a tag this walk does not know is visited without children.
"""

from __future__ import annotations

from collections.abc import Iterator

from generator.spec import RAND_SAMPLES, KernelSpec

Node = list  # [tag, ...]: a statement or an expression
Body = list  # [statement, ...]


def spec_bodies(spec: KernelSpec) -> list[Body]:
    """The kernel's body, then each helper's body, in the spec's order."""
    return [spec.body, *(h.body for h in spec.helpers)]


def _in(body: Body) -> list[tuple[Node, bool]]:
    return [(s, True) for s in body]


def _of(exprs: list) -> list[tuple[Node, bool]]:
    return [(e, False) for e in exprs]


def statement_children(s: Node) -> list[tuple[Node, bool]]:
    """A statement's sub-expressions and sub-statements, in source order, each with whether it
    is a statement."""
    match s:
        case ["let" | "set", _, value] | ["aug", _, _, value] | ["ret", value] | ["expr", value] | ["unpack", _, value]:
            return [(value, False)]
        case ["store", _, index, value] | ["atomic", _, _, index, value]:
            return _of([*index, value])
        case ["if", cond, then, elifs, orelse]:
            middle = [part for c, body in elifs for part in (*_of([c]), *_in(body))]
            return [*_of([cond]), *_in(then), *middle, *_in(orelse)]
        case ["for", _, start, stop, body, *_]:
            return [*_of([start, stop]), *_in(body)]
        case ["while", cond, body]:
            return [*_of([cond]), *_in(body)]
        case ["neighbors", _, _, _, center, radius, _, body]:
            return [*_of([center, radius]), *_in(body)]
        case ["closest", _, _, point, max_dist, body]:
            return [*_of([point, max_dist]), *_in(body)]
        case ["boxes", _, _, _, a, b, body]:
            return [*_of([a, b]), *_in(body)]
    return []  # break, continue, ret_kernel (and tags this walk does not know)


def expression_children(e: Node) -> list[Node]:
    """An expression's sub-expressions, in source order (may be the node's own list: read it,
    do not change it)."""
    match e:
        case ["v", _] | ["c", _, _] | ["fld", _, _] | ["arr", _] | ["fnref", _]:
            return []
        case ["ld", _, index] | ["sld", _, index, _]:
            return index
        case ["bin" | "cmp", _, a, b]:
            return [a, b]
        case ["and" | "or" | "mod" | "mmul", a, b]:
            return [a, b]
        case ["neg" | "not", a] | ["cast", _, a] | ["comp", a, _]:
            return [a]
        case ["call" | "hcall" | "vec", _, args] | ["tuple", args]:
            return args
        case ["where", cond, a, b]:
            return [cond, a, b]
        case ["kwcall", _, args, keywords]:
            return [*args, *(value for _, value in keywords)]
        case ["randf" | "randi" | "randu", _, *bounds]:
            return bounds
    return []  # tags this walk does not know


def walk(*bodies: Body) -> Iterator[tuple[Node, bool]]:
    """(node, is_statement) for every node of the bodies, depth first in source order (a node
    before its children), without recursion."""
    todo = [(s, True) for body in reversed(bodies) for s in reversed(body)]
    pop, extend = todo.pop, todo.extend
    while todo:
        node, is_statement = pop()
        yield node, is_statement
        if is_statement:
            extend(reversed(statement_children(node)))
        else:
            extend([(e, False) for e in reversed(expression_children(node))])


def statement_bodies(s: Node) -> list[Body]:
    """The bodies nested in a statement (an `if`'s branches and else, a loop's body)."""
    match s:
        case ["if", _, then, elifs, orelse]:
            return [then, *(body for _, body in elifs), orelse]
        case ["for", _, _, _, body, *_] | ["while", _, body] | ["neighbors", _, _, _, _, _, _, body] | \
                ["closest", _, _, _, _, body] | ["boxes", _, _, _, _, _, body]:
            return [body]
    return []


def nodes(*bodies: Body) -> Iterator[Node]:
    """Every statement and expression node of the bodies, in `walk`'s order."""
    return (node for node, _ in walk(*bodies))


def statements(*bodies: Body) -> Iterator[Node]:
    """Every statement of the bodies, the ones nested in if / for / while included, in `walk`'s
    order (without visiting expressions)."""
    todo = [s for body in reversed(bodies) for s in reversed(body)]
    while todo:
        s = todo.pop()
        yield s
        for body in reversed(statement_bodies(s)):
            todo.extend(reversed(body))


def referenced_names(*bodies: Body) -> set[str]:
    """The names the bodies read or write: locals and scalar arguments (`v`), arrays loaded,
    stored, passed whole or updated atomically, struct arguments whose fields are read, and
    assignment targets. A kernel argument missing from this set is one the kernel never uses."""
    names = set()
    for node in nodes(*bodies):
        match node:
            case ["v" | "arr", name] | ["ld", name, _] | ["sld", name, _, _] | ["fld", name, _] | \
                    ["randf" | "randi" | "randu", name, *_]:
                names.add(name)
            case ["store", name, _, _] | ["atomic", _, name, _, _]:
                names.add(name)
            case [str() as sampler, str() as name] if sampler in RAND_SAMPLES:
                names.add(name)
            case ["let" | "set", name, _] | ["aug", name, _, _]:
                names.add(name)
            case ["unpack", targets, _]:
                names.update(targets)
            case ["for", name, _, _, _, *_]:
                names.add(name)
            case ["neighbors", name, grid, points, _, _, dist, _]:  # the index, the grid, its points, the distance
                names.update((name, grid, points, dist))
            case ["closest", name, mesh, _, _, _]:  # the closest point, the mesh
                names.update((name, mesh))
            case ["boxes", name, bvh, _, _, _, _]:  # the box's index, the BVH
                names.update((name, bvh))
    return names


def unused_args(spec: KernelSpec) -> list[str]:
    """The kernel's arguments its body never names, in argument order (helpers see only what the
    kernel passes them, so the kernel's body is the one to read)."""
    used = referenced_names(spec.body)
    return [a.name for a in spec.args if a.name not in used]
