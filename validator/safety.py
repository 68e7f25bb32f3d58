"""The safety wall: an AST allowlist, so re-validating a downloaded dataset never runs foreign
code. `check_safety(source)` admits only the forms the renderer emits. Split from `verdicts`,
which re-exports every name here.
"""

from __future__ import annotations

import ast
import builtins
import keyword

from generator.oracle import BUILTINS as ORACLE_BUILTINS
from generator.oracle_builtins import BARE_CALLS
from generator.spec import (ATOMIC_OPS, BVH_CALLS, CAST_FLOAT_DTYPES, DTYPES, GENERIC, GRID_QUERIES, MESH_QUERIES, RAND_DRAWS,
                            RAND_SAMPLES, SMALL_INT_DTYPES, VALUE_VEC_TYPES, VOLUME_MODES)
from validator.outcomes import PASSED, failed


# ---- safety: an AST allowlist, so re-validating a downloaded dataset never runs foreign code

_ALLOWED_NODES = (
    ast.Module, ast.FunctionDef, ast.arguments, ast.arg, ast.Return, ast.Assign, ast.AugAssign,
    ast.For, ast.While, ast.If, ast.Break, ast.Continue, ast.Pass, ast.Expr, ast.Call, ast.Name,
    ast.Attribute, ast.Subscript, ast.Tuple, ast.Constant, ast.BinOp, ast.UnaryOp, ast.BoolOp,
    ast.Compare, ast.Load, ast.Store, ast.Import, ast.alias, ast.keyword, ast.Slice,
    ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Mod, ast.USub, ast.UAdd, ast.Not, ast.And, ast.Or,
    ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq, ast.ClassDef, ast.AnnAssign, ast.ImportFrom,
)
_ALLOWED_TYPES = frozenset(_ALLOWED_NODES)


# the wp.<name>s the renderer emits: the grammar's builtins (the oracle implements each one),
# the dtypes, the casts to small integer types and bfloat16, the vec/mat/quat constructors (typed ones too:
# wp.vec3i, ...), and the structural names
WP_NAMES = frozenset(ORACLE_BUILTINS) | frozenset(DTYPES) | frozenset(SMALL_INT_DTYPES) | frozenset(CAST_FLOAT_DTYPES) | \
    frozenset(VALUE_VEC_TYPES) | \
    frozenset({f"atomic_{op}" for op in ATOMIC_OPS}) | \
    frozenset({"kernel", "func", "struct", "tid", "where", "constant", *RAND_DRAWS, *RAND_SAMPLES, "array", "array2d", "array3d", "array4d"}) | \
    frozenset(GRID_QUERIES) | frozenset(MESH_QUERIES) | frozenset(BVH_CALLS) | frozenset({"texture_sample"})
# the Python builtins a kernel calls by bare name: range of a loop, the casts float / int / bool, len
BARE_NAMES = BARE_CALLS
# wp.static(e), which Warp evaluates as Python when it builds the kernel: e may only be what the
# grammar writes there, a literal expression of at most STATIC_NODES nodes (int and float
# constants of magnitude <= STATIC_MAX, + - * and unary -), and wp.static appears nowhere else
STATIC_NODES = 7
STATIC_MAX = 2**20
_ARRAY_CTORS = ("array", "array2d", "array3d", "array4d")
_RESERVED = frozenset(dir(builtins)) | frozenset(keyword.kwlist) | {"wp"}


def _field_read(node, own) -> bool:
    """Whether an attribute reads a field of a struct (a parameter, a struct array's element, a nested struct)."""
    cls = own.struct_of(node.value)
    return cls is not None and node.attr in own.structs[cls] and type(node.ctx) is ast.Load


def _volume_mode(node) -> bool:
    """Whether an attribute is `wp.Volume.CLOSEST` or `wp.Volume.LINEAR`, read (a sampling mode)."""
    return type(node.value) is ast.Attribute and _wp_name(node.value) == "Volume" and node.attr in VOLUME_MODES \
        and type(node.ctx) is ast.Load


def _wp_name(node) -> str | None:
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "wp":
        return node.attr
    return None


def _annotation_ok(node, structs, generic: bool = False) -> bool:
    """wp.<dtype>, wp.array[Nd](dtype=wp.<dtype>), a struct class defined in the file, or
    wp.array(dtype=<such a class>) (an array of structs); with `generic` (a @wp.func's parameter
    in a file that imports it), `Any` too."""
    if _wp_name(node) in DTYPES:
        return True
    if isinstance(node, ast.Name):
        return node.id in structs or (generic and node.id == GENERIC)
    return _wp_name(_array_dtype(node)) in DTYPES or _struct_array_of(node, structs) is not None


def _array_dtype(node):
    """The node X of wp.array[Nd](dtype=X), else None."""
    if (isinstance(node, ast.Call) and _wp_name(node.func) in _ARRAY_CTORS and not node.args
            and len(node.keywords) == 1 and node.keywords[0].arg == "dtype"):
        return node.keywords[0].value
    return None


def _struct_array_of(node, structs) -> str | None:
    """S of wp.array(dtype=S), S a struct class of the file (one-dimensional, as the grammar writes it), else None."""
    x = _array_dtype(node)
    if x is not None and _wp_name(node.func) == "array" and type(x) is ast.Name and x.id in structs:
        return x.id
    return None


# the fields of a node type that can hold nodes: all of `_fields` but those ast.parse fills with
# plain values (names, constants, flags), which `_walk` would only test and drop
_PLAIN_FIELDS = frozenset({"id", "attr", "name", "arg", "asname", "module", "level", "type_comment", "kind",
                           "conversion", "is_async", "simple", "tag"})
_CHILD_FIELDS: dict = {}


def _child_fields(t) -> tuple:
    fields = _CHILD_FIELDS.get(t)
    if fields is None:
        skip = _PLAIN_FIELDS | ({"value"} if t is ast.Constant else set())
        fields = _CHILD_FIELDS[t] = tuple(f for f in t._fields if f not in skip)
    return fields


def _walk(tree) -> list:
    """Every node of the tree in `ast.walk`'s order (breadth first, children in field order),
    as a list: walked once, read by both walls. A field of a plain value (`_PLAIN_FIELDS`) is
    not read; were one to hold a node after all, the walk would differ from `ast.walk`, and
    `checks_test` compares the two."""
    nodes, i = [tree], 0
    AST = ast.AST
    append, extend = nodes.append, nodes.extend
    fields_of = _CHILD_FIELDS
    while i < len(nodes):
        node = nodes[i]
        i += 1
        t = type(node)
        fields = fields_of.get(t)
        if fields is None:
            fields = _child_fields(t)
        for name in fields:
            field = getattr(node, name, None)
            if field is None:
                continue
            if type(field) is list:
                extend(item for item in field if isinstance(item, AST))
            elif isinstance(field, AST):
                append(field)
    return nodes


def _decorator_text(d) -> str:
    """`ast.unparse(d)`, without unparsing the one form generated sources hold (`wp.kernel`)."""
    if type(d) is ast.Attribute and type(d.value) is ast.Name:
        return f"{d.value.id}.{d.attr}"
    return _shown(d)


def _shown(node) -> str:
    """`ast.unparse(node)` for a failure's reason; unparse recurses, so an expression Python
    parses but nests deeper than unparse can go is named by its type (a property test found
    such decorators and callees rejected as `bounds` instead of by this wall)."""
    try:
        return ast.unparse(node)
    except RecursionError:
        return f"<a {type(node).__name__} nested too deep to show>"


def _exact_form(tree, structs, nodes) -> dict | None:
    """The second wall made exact: nothing Python evaluates at import but the forms the renderer
    emits (decorators, annotations, struct fields), no name that shadows a builtin or `wp`.
    `nodes`: `_walk(tree)`."""
    imports_any = any(isinstance(n, ast.ImportFrom) for n in tree.body)  # `_top_level`: only typing.Any
    defined_above: set[str] = set()  # the struct classes defined so far
    textures: set[int] = set()  # the wp.Texture2D annotations of kernels' parameters
    for n in tree.body:
        if isinstance(n, ast.FunctionDef):
            a = n.args
            if a.posonlyargs or a.vararg or a.kwonlyargs or a.kwarg or a.defaults or a.kw_defaults:
                return failed(f"safety: function {n.name} may only take plain positional parameters (line {n.lineno})")
            decorators = [_decorator_text(d) for d in n.decorator_list]
            generic = imports_any and decorators == ["wp.func"]
            for arg in a.args:  # a kernel's parameter may be an object's id (a hash grid's, mesh's, volume's, BVH's):
                # wp.uint64, or a texture: wp.Texture2D
                kernel_object = decorators == ["wp.kernel"] and _wp_name(arg.annotation) in ("uint64", "Texture2D")
                if not (_annotation_ok(arg.annotation, structs, generic) or kernel_object):
                    return failed(f"safety: parameter {arg.arg} of {n.name} has an annotation the grammar does not emit")
                if kernel_object and _wp_name(arg.annotation) == "Texture2D":
                    textures.add(id(arg.annotation))
            if n.returns is not None and _wp_name(n.returns) not in DTYPES:
                return failed(f"safety: function {n.name} has a return annotation the grammar does not emit")
        elif isinstance(n, ast.ClassDef):
            for f in n.body:  # wp.<dtype>, or a struct class defined above this one (a nested struct)
                if isinstance(f, ast.AnnAssign) and _wp_name(f.annotation) not in DTYPES and not (
                        type(f.annotation) is ast.Name and f.annotation.id in defined_above):
                    return failed(f"safety: struct field at line {f.lineno} has a type the grammar does not emit")
            defined_above.add(n.name)
    modes = {id(n.value) for n in nodes if type(n) is ast.Attribute and _volume_mode(n)}  # their wp.Volume
    FunctionDef, ClassDef, arg, Name, Attribute, Store = (ast.FunctionDef, ast.ClassDef, ast.arg, ast.Name,
                                                          ast.Attribute, ast.Store)
    for node in nodes:  # the exact types ast.parse makes (see check_safety)
        t = type(node)
        if t is FunctionDef or t is ClassDef:
            name = node.name
        elif t is arg:
            name = node.arg
        elif t is Name and type(node.ctx) is Store:
            name = node.id
        elif t is Attribute:
            name = None
            wp = _wp_name(node)  # only an attribute names wp.X (wp.Volume only as a sampling mode's base)
            if wp is not None and wp not in WP_NAMES and id(node) not in modes and id(node) not in textures:
                return failed(f"safety: wp.{wp} at line {node.lineno} is not a builtin the grammar uses")
        else:
            continue
        if name in _RESERVED:
            return failed(f"safety: the name {name} shadows a Python builtin, a keyword or wp")
    return None


def check_safety(source: str) -> dict:
    """The source may only import warp as wp, use the wp.<name>s the grammar emits, call its own
    helpers, and read fields of its own @wp.struct arguments; at import it evaluates nothing but
    the forms the renderer emits."""
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        return failed(f"safety: source does not parse: {e.msg} (line {e.lineno})")
    except ValueError as e:  # a NUL byte, or a lone surrogate (UnicodeEncodeError): found by a property test
        return failed(f"safety: source does not parse: {type(e).__name__}: {str(e)[:120]}")
    own = _OwnNames(tree)
    nodes = _walk(tree)
    return _allowlist(nodes, own) or _top_level(tree) or _exact_form(tree, set(own.structs), nodes) or PASSED


class _OwnNames:
    """What the source itself defines: its functions, its structs' fields, the parameters typed
    as one of its structs, and its top-level classes and their field declarations."""

    def __init__(self, tree):
        self.defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        self.structs = {n.name: {s.target.id for s in n.body
                                 if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)}
                        for n in tree.body if isinstance(n, ast.ClassDef)}
        # a field's struct class, where the field is a nested struct: class -> {field: class}
        self.nested = {n.name: {s.target.id: s.annotation.id for s in n.body if isinstance(s, ast.AnnAssign)
                                and isinstance(s.target, ast.Name) and type(s.annotation) is ast.Name}
                       for n in tree.body if isinstance(n, ast.ClassDef)}
        self.struct_params = {}  # parameter name -> its struct class, per function (names are unique here)
        self.struct_arrays = {}  # parameter name -> its elements' struct class (wp.array(dtype=S))
        for fn in tree.body:
            if isinstance(fn, ast.FunctionDef):
                for arg in fn.args.args:
                    if isinstance(arg.annotation, ast.Name) and arg.annotation.id in self.structs:
                        self.struct_params[arg.arg] = arg.annotation.id
                    elif (cls := _struct_array_of(arg.annotation, self.structs)) is not None:
                        self.struct_arrays[arg.arg] = cls
        self.top_classes = [n for n in tree.body if isinstance(n, ast.ClassDef)]
        self.field_decls = {id(s) for n in self.top_classes for s in n.body}
        # `NAME = wp.constant(<int or float literal>)` at the top level (`_top_level` admits no
        # other assignment there): the callees `wp.constant` of those calls, by identity
        self.constants = {id(n.value.func) for n in tree.body if isinstance(n, ast.Assign) and _module_constant(n)}

    def struct_of(self, node) -> str | None:
        """The struct class of an expression that reads a struct: a struct parameter `p`, an
        element of a struct array `pts[...]`, or a nested struct field of one (`p.frame`,
        `pts[i].frame`); else None."""
        path = []  # the field names, outermost last (a loop: an attribute chain may be any length)
        while type(node) is ast.Attribute:
            path.append(node.attr)
            node = node.value
        if type(node) is ast.Name:
            cls = self.struct_params.get(node.id)
        elif type(node) is ast.Subscript and type(node.value) is ast.Name:
            cls = self.struct_arrays.get(node.value.id)
        else:
            return None
        for field in reversed(path):
            if cls is None:
                return None
            cls = self.nested.get(cls, {}).get(field)  # a field typed by a name no class has: None
        return cls if cls in self.structs else None


def _allowlist(nodes: list, own: _OwnNames) -> dict | None:
    """The first wall: every node of an allowed type, and names, attributes, calls, classes,
    annotated assignments and imports only of the forms the renderer emits. `nodes`: `_walk(tree)`."""
    defined, top_classes, field_decls = own.defined, own.top_classes, own.field_decls
    # dispatched on the node's exact type: ast.parse makes no subclass of a node type, so
    # `type(node) is T` is `isinstance(node, T)` here (and a subclass would fail the allowlist)
    ClassDef, AnnAssign, Import, Attribute, Name, Call = (ast.ClassDef, ast.AnnAssign, ast.Import, ast.Attribute,
                                                          ast.Name, ast.Call)
    ImportFrom = ast.ImportFrom
    allowed = _ALLOWED_TYPES
    constants = own.constants  # the wp.constant callees of the module's constants of literals
    statics: set[int] = set()  # the wp.static callees of admitted literal calls
    for node in nodes:
        t = type(node)
        if t not in allowed:
            if isinstance(node, _ALLOWED_NODES):  # a subclass of an allowed type: not what ast.parse makes
                return failed(f"safety: disallowed syntax {t.__name__} (a subclass of an allowed node type)")
            return failed(f"safety: disallowed syntax {t.__name__} at line {getattr(node, 'lineno', '?')}")
        if t is Name:
            if node.id.startswith("__"):
                return failed(f"safety: disallowed name {node.id} at line {node.lineno}")
        elif t is Attribute:
            v = node.value
            base = v.id if type(v) is Name else None
            if not (base == "wp" or _volume_mode(node) or _field_read(node, own)) or node.attr.startswith("_"):
                return failed(f"safety: disallowed attribute access .{node.attr} at line {node.lineno}")
            if base == "wp" and node.attr == "constant" and id(node) not in constants:
                return failed(f"safety: wp.constant at line {node.lineno} other than a module constant of a literal")
            if base == "wp" and node.attr == "static" and id(node) not in statics:
                # the walk is breadth first: a call is visited before its callee, so a wp.static
                # not admitted as the callee of a literal call is one used some other way
                return failed(f"safety: wp.static at line {node.lineno} other than called on a literal expression")
        elif t is Call:
            f = node.func
            ok = type(f) is Attribute or (type(f) is Name and (f.id in defined or f.id in BARE_NAMES))
            if not ok:
                return failed(f"safety: call of {_shown(f)} at line {node.lineno} is not a Warp builtin or own helper")
            if type(f) is Attribute and _wp_name(f) == "static":
                if not _literal_static(node):
                    return failed(f"safety: wp.static at line {node.lineno} of anything but a small literal expression")
                statics.add(id(f))
        elif t is ClassDef:
            if node not in top_classes:
                return failed(f"safety: nested class {node.name} at line {node.lineno}")
        elif t is AnnAssign:
            if id(node) not in field_decls:
                return failed(f"safety: annotated assignment outside a struct at line {node.lineno}")
        elif t is Import:
            if [(a.name, a.asname) for a in node.names] != [("warp", "wp")]:
                return failed(f"safety: disallowed import at line {node.lineno}")
        elif t is ImportFrom:
            if (node.module, node.level, [(a.name, a.asname) for a in node.names]) != ("typing", 0, [(GENERIC, None)]):
                return failed(f"safety: disallowed import at line {node.lineno}")
    return None


def _literal_static(call) -> bool:
    """Whether a wp.static(...) call holds one literal expression the grammar writes there."""
    if len(call.args) != 1 or call.keywords:
        return False
    todo, seen = [call.args[0]], 0
    while todo:
        e = todo.pop()
        seen += 1
        if seen > STATIC_NODES:
            return False
        t = type(e)
        if t is ast.Constant:
            if type(e.value) not in (int, float) or not abs(e.value) <= STATIC_MAX:
                return False
        elif t is ast.BinOp and type(e.op) in (ast.Add, ast.Sub, ast.Mult):
            todo += [e.left, e.right]
        elif t is ast.UnaryOp and type(e.op) is ast.USub:
            todo.append(e.operand)
        else:
            return False
    return True


def _module_constant(n: ast.Assign) -> bool:
    """`NAME = wp.constant(c)`: one plain name, and c an int or float literal (or its negation)
    of magnitude at most STATIC_MAX."""
    call = n.value
    if len(n.targets) != 1 or type(n.targets[0]) is not ast.Name or type(call) is not ast.Call:
        return False
    if _wp_name(call.func) != "constant" or len(call.args) != 1 or call.keywords:
        return False
    arg = call.args[0]
    if type(arg) is ast.UnaryOp and type(arg.op) is ast.USub:
        arg = arg.operand
    return type(arg) is ast.Constant and type(arg.value) in (int, float) and abs(arg.value) <= STATIC_MAX


def _top_level(tree) -> dict | None:
    """The module's body: `import warp as wp` (and `from typing import Any`, before it), module
    constants of literals, plain @wp.struct classes of typed fields, and functions decorated
    @wp.kernel or @wp.func; nothing else."""
    for k, n in enumerate(tree.body):
        if isinstance(n, ast.Import):
            continue
        if isinstance(n, ast.ImportFrom):
            if k != 0:
                return failed(f"safety: from-import at line {n.lineno} (only `from typing import Any`, first)")
            continue
        if isinstance(n, ast.Assign):
            if not _module_constant(n):
                return failed(f"safety: top-level Assign at line {n.lineno} other than NAME = wp.constant(<literal>)")
            continue
        if isinstance(n, ast.ClassDef):
            decos = [_decorator_text(d) for d in n.decorator_list]
            if decos != ["wp.struct"] or n.bases or n.keywords:
                return failed(f"safety: class {n.name} must be a plain @wp.struct")
            for s in n.body:  # a field's type: wp.<dtype>, or a struct class defined above (`_exact_form`)
                if not (isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name) and s.value is None
                        and type(s.annotation) in (ast.Attribute, ast.Name)):
                    return failed(f"safety: struct {n.name} may only declare typed fields (line {s.lineno})")
            continue
        if not isinstance(n, ast.FunctionDef):
            return failed(f"safety: top-level {type(n).__name__} at line {n.lineno} (only functions allowed)")
        decos = [_decorator_text(d) for d in n.decorator_list]
        if decos not in (["wp.kernel"], ["wp.func"]):
            return failed(f"safety: function {n.name} has decorators {decos} (only @wp.kernel/@wp.func)")
    return None
