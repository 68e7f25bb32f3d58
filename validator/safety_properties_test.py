"""Property tests of the safety wall (`validator.safety.check_safety`) on hypothesmith programs, text,
deep expressions and mutated generated sources: (1) a well-formed verdict, or RecursionError/MemoryError
only where Python's parser gives up (as `check_static` expects); (2) nothing it passes holds what an
independent walk of the documented allowlist refuses; (3) it never imports or runs what it judges.
Each property is shown failing on planted bugs (a recursive walker, a widened allowlist, ...).

Over 400 lines: the allowlist written out independently, the hostile fragments, the properties and
their planted bugs belong in one file, each read against the others."""

import ast
import atexit
import builtins
import contextlib
import importlib
import keyword
import os
import re
import shutil
import sys
import tempfile
import textwrap
import uuid

import hypothesmith
import pytest
from hypothesis import Phase, example, given, settings, strategies as st

from generator.render import render_source
from generator.spec import DTYPES
from generator.strategies import specs  # also loads the Hypothesis profile ($HYPOTHESIS_PROFILE, default ci)
from validator import safety, verdicts
from validator.outcomes import PASSED

pytestmark = pytest.mark.filterwarnings("ignore::SyntaxWarning")  # "'tuple' object is not callable" and kin

# ---- the allowlist, written out here: the walk below is held to this, not to safety's tables

_NODES = frozenset({
    ast.Module, ast.FunctionDef, ast.ClassDef, ast.arguments, ast.arg, ast.Return, ast.Assign, ast.AugAssign,
    ast.AnnAssign, ast.For, ast.While, ast.If, ast.Break, ast.Continue, ast.Pass, ast.Expr, ast.Import, ast.alias,
    ast.Call, ast.keyword, ast.Name, ast.Attribute, ast.Subscript, ast.Slice, ast.Tuple, ast.Constant, ast.BinOp,
    ast.UnaryOp, ast.BoolOp, ast.Compare, ast.Load, ast.Store, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Mod,
    ast.USub, ast.UAdd, ast.Not, ast.And, ast.Or, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq,
    ast.ImportFrom})
_ORIGINAL_CHECK = safety.check_safety
_WP_NAMES = frozenset(safety.WP_NAMES)  # a copy taken at import: a patched table cannot widen it
_NEVER_WP = ("get_module", "compile_aot_module", "load_module", "config", "context", "build", "types")
_DTYPES = frozenset(DTYPES)
_ARRAYS = ("array", "array2d", "array3d", "array4d")
_UNBINDABLE = frozenset(dir(builtins)) | frozenset(keyword.kwlist) | {"wp"}
_CALLABLE_BUILTINS = ("range", "reversed", "float", "int", "bool", "len")
# wp.static(e) runs e as Python when Warp builds the kernel: e may only be a literal expression of
# int / float constants (magnitude <= 2**20) under + - * and unary -, at most 7 such nodes
_STATIC_PARTS = (ast.Constant, ast.BinOp, ast.UnaryOp, ast.Add, ast.Sub, ast.Mult, ast.USub)


def _static_literal(call) -> bool:
    """Whether a wp.static call's argument is the literal expression the grammar writes."""
    if len(call.args) != 1 or call.keywords:
        return False
    parts = list(ast.walk(call.args[0]))
    values = [n for n in parts if type(n) in (ast.Constant, ast.BinOp, ast.UnaryOp)]
    return (len(values) <= 7 and all(type(n) in _STATIC_PARTS for n in parts)
            and all(type(n.value) in (int, float) and abs(n.value) <= 2**20 for n in parts if type(n) is ast.Constant)
            and all(type(n.op) is ast.USub for n in parts if type(n) is ast.UnaryOp))


def _wp(node):
    """X for the expression wp.X, else None."""
    is_wp = type(node) is ast.Attribute and type(node.value) is ast.Name and node.value.id == "wp"
    return node.attr if is_wp else None


def _inert_annotation(node, structs, generic=False) -> bool:
    """wp.<dtype>, a struct of the file, wp.array[Nd](dtype=wp.<dtype>) or wp.array(dtype=<a struct
    of the file>): nothing import would run; `Any` too for a @wp.func's parameter in a file that
    begins `from typing import Any`."""
    return _wp(node) in _DTYPES or (type(node) is ast.Name and (node.id in structs or generic and node.id == "Any")) or (
        type(node) is ast.Call and _wp(node.func) in _ARRAYS and not node.args and len(node.keywords) == 1
        and node.keywords[0].arg == "dtype" and _wp(node.keywords[0].value) in _DTYPES) or _array_of_struct(node, structs)


def _array_of_struct(node, structs) -> bool:
    return (type(node) is ast.Call and _wp(node.func) == "array" and not node.args and len(node.keywords) == 1
            and node.keywords[0].arg == "dtype" and type(node.keywords[0].value) is ast.Name
            and node.keywords[0].value.id in structs)


def _constant_call(n):
    """The call of `NAME = wp.constant(c)`, c an int or float literal (negated or not) of magnitude
    at most 2**20, else None."""
    if type(n) is not ast.Assign or len(n.targets) != 1 or type(n.targets[0]) is not ast.Name:
        return None
    call = n.value
    if type(call) is not ast.Call or _wp(call.func) != "constant" or len(call.args) != 1 or call.keywords:
        return None
    arg = call.args[0]
    if type(arg) is ast.UnaryOp and type(arg.op) is ast.USub:
        arg = arg.operand
    ok = type(arg) is ast.Constant and type(arg.value) in (int, float) and abs(arg.value) <= 2**20
    return call if ok else None


def _imports_any(tree) -> bool:
    first = tree.body[0] if tree.body else None
    return (type(first) is ast.ImportFrom and first.module == "typing" and first.level == 0
            and [(a.name, a.asname) for a in first.names] == [("Any", None)])


def _top_level_problem(tree, structs):
    """Top-level statements beyond `from typing import Any` (first), `import warp as wp`, module
    constants of literals, @wp.struct classes and @wp.kernel/@wp.func defs."""
    generic = _imports_any(tree)
    earlier = []  # the classes above this statement: a field may be typed by one (a nested struct)
    for k, n in enumerate(tree.body):
        decos = [_wp(d) for d in getattr(n, "decorator_list", ())]
        if type(n) is ast.ClassDef:
            if decos != ["struct"] or n.bases or n.keywords or not all(
                    type(s) is ast.AnnAssign and type(s.target) is ast.Name and s.value is None
                    and (_wp(s.annotation) in _DTYPES or type(s.annotation) is ast.Name and s.annotation.id in earlier)
                    for s in n.body):
                return f"class {n.name} that is not a plain @wp.struct of wp.<dtype> or earlier struct fields"
            earlier.append(n.name)
        elif type(n) is ast.FunctionDef:
            a = n.args
            plain = not (a.posonlyargs or a.vararg or a.kwonlyargs or a.kwarg or a.defaults or a.kw_defaults)
            inert = all(_inert_annotation(p.annotation, structs, generic and decos == ["func"])
                        or decos == ["kernel"] and _wp(p.annotation) in ("uint64", "Texture2D")  # an object's id, a texture
                        for p in a.args) and (n.returns is None or _wp(n.returns) in _DTYPES)
            if decos not in (["kernel"], ["func"]) or not plain or not inert:
                return f"function {n.name} with decorators, parameters or annotations the renderer never writes"
        elif type(n) is ast.ImportFrom:
            if not (k == 0 and generic):
                return "a from-import other than `from typing import Any` first"
        elif type(n) is ast.Assign:
            if _constant_call(n) is None:
                return "a top-level assignment other than NAME = wp.constant(<literal>)"
        elif type(n) is not ast.Import:
            return f"a top-level {type(n).__name__}"
    return None


def _node_problem(tree, structs):
    """Any node anywhere outside the allowlist or of a form it does not admit."""
    own = {n.name for n in tree.body if type(n) is ast.FunctionDef} | set(_CALLABLE_BUILTINS)
    fields = {f for fs in structs.values() for f in fs}
    struct_params = {p.arg for n in tree.body if type(n) is ast.FunctionDef for p in n.args.args
                     if type(p.annotation) is ast.Name and p.annotation.id in structs}
    struct_arrays = {p.arg for n in tree.body if type(n) is ast.FunctionDef for p in n.args.args
                     if _array_of_struct(p.annotation, structs)}
    placed = {id(n) for n in tree.body} | {id(s) for c in tree.body if type(c) is ast.ClassDef for s in c.body}
    statics = {id(n.func) for n in ast.walk(tree) if type(n) is ast.Call and _wp(n.func) == "static"
               and _static_literal(n)}
    constants = {id(call.func) for n in tree.body if (call := _constant_call(n)) is not None}
    modes = {id(n.value) for n in ast.walk(tree) if type(n) is ast.Attribute and _wp(n.value) == "Volume"
             and n.attr in ("CLOSEST", "LINEAR") and type(n.ctx) is ast.Load}
    textures = {id(p.annotation) for n in tree.body if type(n) is ast.FunctionDef
                and [_wp(d) for d in n.decorator_list] == ["kernel"] for p in n.args.args if _wp(p.annotation) == "Texture2D"}
    for node in ast.walk(tree):  # the standard library's walk, not safety's `_walk`
        t = type(node)
        if t not in _NODES:
            return f"a {t.__name__} node"
        if t in (ast.ClassDef, ast.AnnAssign) and id(node) not in placed:
            return f"a {t.__name__} where the renderer never writes one"
        if t is ast.Import and [(a.name, a.asname) for a in node.names] != [("warp", "wp")]:
            return "an import other than `import warp as wp`"
        if t is ast.ImportFrom and (node is not tree.body[0] or not _imports_any(tree)):
            return "a from-import other than `from typing import Any` first"
        if t is ast.Name and node.id.startswith("__"):
            return f"the dunder name {node.id}"
        if t is ast.Attribute and (id(node) in modes or id(node) in textures):  # a sampling mode's wp.Volume, a texture parameter's type
            continue
        if t is ast.Attribute and type(node.value) is ast.Attribute and _wp(node.value) == "Volume":
            if node.attr not in ("CLOSEST", "LINEAR") or type(node.ctx) is not ast.Load:
                return f"the attribute wp.Volume.{node.attr}"
            continue
        if t is ast.Attribute:  # wp.<a grammar name>, or a field of a struct parameter (p.f, p.f.g) or element (a[i].f)
            base = node.value.id if type(node.value) is ast.Name else type(node.value).__name__
            root = node.value
            while type(root) is ast.Attribute:
                root = root.value
            of_struct = (type(root) is ast.Name and root.id in struct_params) or (
                type(root) is ast.Subscript and type(root.value) is ast.Name and root.value.id in struct_arrays)
            allowed = _WP_NAMES if base == "wp" else fields if of_struct else ()
            if node.attr.startswith("_") or node.attr not in allowed:
                return f"the attribute {base}.{node.attr}"
            if base == "wp" and node.attr == "static" and id(node) not in statics:
                return "wp.static of anything but a small literal expression"
            if base == "wp" and node.attr == "constant" and id(node) not in constants:
                return "wp.constant other than a module constant of a literal"
        if t is ast.Call and not (type(node.func) is ast.Attribute or getattr(node.func, "id", None) in own):
            return f"a call of {ast.dump(node.func)[:60]}"
        bound = {ast.FunctionDef: "name", ast.ClassDef: "name", ast.arg: "arg"}.get(t)
        name = getattr(node, bound) if bound else (node.id if t is ast.Name and type(node.ctx) is ast.Store else None)
        if name in _UNBINDABLE:
            return f"a binding of {name}, a builtin, keyword or wp"
    return None


def _inadmissible(source: str):
    """Why the independent walk refuses `source`, or None."""
    tree = ast.parse(source)
    structs = {n.name: {s.target.id for s in n.body if type(s) is ast.AnnAssign and type(s.target) is ast.Name}
               for n in tree.body if type(n) is ast.ClassDef}
    return _top_level_problem(tree, structs) or _node_problem(tree, structs)


# ---- what gets drawn: hostile fragments, composed expressions, mutations of generated sources

_HOSTILE_EXPRS = (
    "__import__('os')", "open('/tmp/x', 'w')", "getattr(wp, 'static')", "exec('1')", "eval('1')", "globals()",
    "breakpoint()", "print(1)", "type(wp)", "__builtins__", "lambda: 0", "{k: k for k in range(3)}", "(q := 1.0)",
    "(k for k in range(3))", "wp.static(1)", "wp.static(2.0 * -0.5)", "wp.static(x0)", "wp.static(open('/tmp/x'))",
    "wp.static(1 + 2 + 3 + 4 + 5)", "wp.static(3 ** 99)", "wp.static(1099511627776)", "wp.static(True)", "wp.static(1, x=2)",
    "len(x0)", "bool(q)", "wp.get_module('m')", "x0.numpy()", "p.__class__", "p.lo", "...",
    "{1, 2}", "float(1)", "int(2.0)", "range(3)", "wp.vec3(1.0, 2.0, 3.0)", "x0[i:]", "wp.float32", "q.x")
_HOSTILE_STMTS = (
    "import os", "import os as wp", "from os import path", "import warp as wp", "global q", "del q", "assert q",
    "raise ValueError", "open = 1.0", "wp = 1.0", "range = 2", "__q = 1.0", "q: wp.float32 = 1.0", "q += 1.0",
    "x0.ptr = 0", "for open in range(3):\n    pass", "if q:\n    import os",
    "with open('/tmp/x', 'w') as f:\n    pass", "try:\n    pass\nexcept Exception:\n    pass",
    "def g(open: wp.float32):\n    pass", "def g(a=open('/tmp/x')):\n    pass", "yield q",
    "@wp.kernel\ndef g(a=open('/tmp/x')):\n    pass", "@wp.kernel\ndef g(a: open('/tmp/x')):\n    pass",
    "@wp.kernel\ndef g() -> open('/tmp/x'):\n    pass", "@wp.kernel\ndef g(*a: wp.float32):\n    pass",
    "@wp.func\ndef open(a: wp.float32) -> wp.float32:\n    return a", "@wp.static\ndef g():\n    pass",
    "@wp.kernel\n@wp.func\ndef g():\n    pass", "print = wp.sin", "@wp.struct\nclass T(object):\n    x: wp.float32",
    "@wp.struct\nclass T:\n    x: wp.float32 = open('/tmp/x')", "@wp.struct\nclass T:\n    x: open('/tmp/x')",
    "@wp.kernel\ndef g(a: wp.array(dtype=wp.float32, device=open('/tmp/x'))):\n    pass",
    "@wp.kernel\ndef g(a: wp.float32 = 1.0):\n    pass", "@wp.kernel\ndef g(a: wp.float32, /):\n    pass",
    "exec('import os')", "import sys\nsys.modules['os'] = 1", "import builtins\nbuiltins.os = 1",
    "import os, warp as wp", "import importlib\nimportlib.import_module('os')",
    "@__import__('os').f\ndef g():\n    pass",
    # the module constants and generic helpers of the funcs family, and what is near them
    "from typing import Any", "from typing import List", "from typing import Any as open", "from typing import *",
    "from typing import Any, List", "from .typing import Any", "q = wp.constant(1.5)", "K = wp.constant(open('/tmp/x'))",
    "K = wp.constant(3 ** 99)", "K = wp.constant(1099511627776)", "K = wp.constant(True)", "K = wp.constant('s')",
    "K = wp.constant(wp.vec3(1.0, 2.0, 3.0))", "K = 1.5", "K, L = wp.constant(1), wp.constant(2)",
    "K = L = wp.constant(1)", "K: wp.float32 = wp.constant(1.0)", "K = wp.constant(x=1)", "open = wp.constant(1)",
    "wp.constant(1.0)", "K = wp.constant", "@wp.kernel\ndef g(a: Any):\n    pass",
    "@wp.func\ndef g(a: Any) -> Any:\n    return a", "@wp.func\ndef g(a: typing.Any):\n    return a")
_ATTRS = ("x", "lo", "axis", "__class__", "__globals__", "_src", "numpy", "ptr", "real")
_SAFE_TWO = ("({} + {})", "wp.min({}, {})", "{}[{}]", "({} < {})", "({} and {})", "({}, {})")
_SAFE_ONE = ("-({})", "wp.sin({})", "not ({})", "wp.float32({})")
_HOSTILE_FORMS = ("{}({})", "({})()", "[k for k in {}]", "(lambda: {})", "({} if {} else 1.0)", "({} ** {})",
                  "f'{{{}}}'", "({} is {})", "({} in {})", "[{}, {}]", "{{{}: {}}}", "(*{},)")


def _safe_around(inner):
    return st.one_of(st.tuples(st.sampled_from(_SAFE_TWO), inner, inner).map(lambda t: t[0].format(*t[1:])),
                     st.tuples(st.sampled_from(_SAFE_ONE), inner).map(lambda t: t[0].format(t[1])))


# an expression the renderer could write, with holes (@@) where one hostile piece goes
_CONTEXTS = st.recursive(st.sampled_from(("@@", "1.0", "2", "i", "x0[i]", "wp.tid()", "q")), _safe_around,
                         max_leaves=5)
_HOSTILE = st.one_of(
    st.sampled_from(_HOSTILE_EXPRS),
    st.sampled_from(_NEVER_WP + ("static", "__class__", "__dict__", "_src", "sin.__globals__")).map("wp.{}".format),
    st.tuples(st.sampled_from(_HOSTILE_FORMS), st.lists(_CONTEXTS, min_size=2, max_size=2)).map(
        lambda t: t[0].format(*(c.replace("@@", "i") for c in t[1][:t[0].count("{}")]))),
    st.tuples(_CONTEXTS, st.sampled_from(_ATTRS)).map(lambda t: f"({t[0].replace('@@', 'i')}).{t[1]}"))

# one hostile piece in the first hole of a renderable expression (`i` in the others): a wall that
# admits that one piece passes the whole source, which is what property 2 looks for
EXPRESSIONS = st.builds(lambda c, h: c.replace("@@", f"({h})", 1).replace("@@", "i") if "@@" in c else h,
                        _CONTEXTS, _HOSTILE)
# (where, fragment): an expression goes where the renderer writes one, a statement where statements go
FRAGMENTS = st.one_of(st.tuples(st.sampled_from(("statement", "rhs", "token", "replace") * 2 + ("decorator",)),
                                EXPRESSIONS),
                      st.tuples(st.sampled_from(("statement", "replace", "top")), st.sampled_from(_HOSTILE_STMTS)))


def _splice(source: str, where: str, k: int, fragment: str) -> str:
    """`fragment` put into `source` at its k-th site of kind `where` (k wraps around)."""
    lines = source.splitlines()
    body = [n for n, line in enumerate(lines) if line.startswith("    ")]
    if where == "token" and "\n" not in fragment:  # a name or a wp.<name>(...) call in a body replaced
        token = r"wp\.\w+\([^()]*\)|(?<![.\w])[a-z_]\w*(?![\w(.])"
        spots = [(n, m) for n in body for m in re.finditer(token, lines[n])]
        n, m = spots[k % len(spots)]
        lines[n] = lines[n][:m.start()] + f"({fragment})" + lines[n][m.end():]
    elif where == "rhs" and "\n" not in fragment:
        assigns = [n for n in body if " = " in lines[n]] or body
        n = assigns[k % len(assigns)]
        lines[n] = lines[n].split(" = ", 1)[0] + " = " + fragment
    elif where == "decorator" and "\n" not in fragment:
        decos = [n for n, line in enumerate(lines) if line.startswith("@")]
        lines[decos[k % len(decos)]] = "@" + fragment
    elif where in ("statement", "replace", "rhs", "decorator", "token"):
        n = body[k % len(body)]
        indent = lines[n][:len(lines[n]) - len(lines[n].lstrip())]
        lines[n:n + (where == "replace")] = textwrap.indent(fragment, indent, lambda _: True).splitlines()
    else:  # a top-level statement, before a decorated definition or at the end
        tops = [n for n, line in enumerate(lines) if line.startswith("@")] + [len(lines)]
        n = tops[k % len(tops)]
        lines[n:n] = fragment.splitlines() + [""]
    return "\n".join(lines) + "\n"


def mutated_sources(fragments=FRAGMENTS):
    """A generated source with one drawn fragment spliced in where the renderer writes code."""
    return st.builds(lambda spec, k, wf: _splice(render_source(spec), wf[0], k, wf[1]), specs(),
                     st.integers(0, 60), fragments)


# ---- property 1: a verdict, or a parser limit the callers catch, on any source

_DEEP_FORMS = (("-", ""), ("not ", ""), ("", "[0]"), ("", " + 1.0"), ("", ".x"), ("", " < 1.0"), ("wp.sin(", ")"),
               ("", " ** 2"), ("(", ")"), ("[", "]"))
_KERNEL = "import warp as wp\n\n\n@wp.kernel\ndef k(x0: wp.array(dtype=wp.float32)):\n"
_DEEP_SITES = ("import warp as wp\n\n{}\n", _KERNEL + "    q = {}\n", _KERNEL + "    {}\n",
               "import warp as wp\n\n\n@wp.kernel\ndef k(x0: {}):\n    pass\n")
# sites where check_safety unparses the expression (a decorator, a callee): see the xfail test
_UNPARSED_SITES = ("import warp as wp\n\n\n@{}\ndef k():\n    pass\n", _KERNEL + "    ({})(1.0)\n")


def deep_sources(sites=_DEEP_SITES):
    """One expression nested up to 4000 deep (past the parser's limits), in one of `sites`."""
    return st.builds(lambda form, depth, site: site.format(form[0] * depth + "x0" + form[1] * depth),
                     st.sampled_from(_DEEP_FORMS), st.integers(1, 4000), st.sampled_from(sites))


def _parser_gives_up(source: str, frames: int = 10) -> bool:
    """Whether ast.parse gives up on `source` `frames` calls deeper (its limit shrinks with the stack)."""
    if frames:
        return _parser_gives_up(source, frames - 1)
    try:
        return ast.parse(source) is None  # it parsed: False
    except SyntaxError:
        return False
    except (RecursionError, MemoryError):
        return True


def _assert_verdict(source: str) -> dict:
    """check_safety's verdict on `source`, asserted well formed; a parser limit as callers see it."""
    try:
        verdict = safety.check_safety(source)
    except (RecursionError, MemoryError) as e:  # the documented escape, caught by check_static
        assert _parser_gives_up(source), f"{type(e).__name__} on a source Python parses: {source[:120]!r}"
        return {"status": "failed", "reason": f"bounds: {type(e).__name__}"}
    assert type(verdict) is dict and verdict["status"] in ("passed", "failed"), verdict
    if verdict["status"] == "passed":
        assert verdict == PASSED, verdict
    else:
        assert set(verdict) == {"status", "reason"} and verdict["reason"].startswith("safety: "), verdict
    return verdict


def _property_1(source: str) -> None:
    _assert_verdict(source)


def _fails(request, test) -> BaseException:
    """The error of an inner @given test that must fail; kept from Hypothesis's patch suggestions."""
    try:
        test()
    except Exception as e:  # noqa: BLE001 - the caller says which errors count
        return e
    finally:
        request.node.__dict__.pop("_hypothesis_failing_examples", None)
    pytest.fail("the property held")


# a planted bug is looked for deterministically in every profile, without shrinking what it finds
_SEARCH = settings(max_examples=2000, derandomize=True, database=None, phases=[Phase.explicit, Phase.generate])
# any text at all: NUL bytes and lone surrogates included (found: ast.parse raises ValueError on them)
_TEXT = st.text()


@given(st.one_of(hypothesmith.from_grammar(), hypothesmith.from_node(), _TEXT))
def test_any_program_or_text_gets_a_verdict(source):
    _property_1(source)


@given(deep_sources((*_DEEP_SITES, *_UNPARSED_SITES)))
def test_deep_expressions_get_a_verdict_or_a_parser_limit(source):
    _property_1(source)


# Found by these properties, kept as explicit examples: check_safety let ast.parse's ValueError
# (a NUL byte) and UnicodeEncodeError (a lone surrogate) escape, which check_static does not catch;
# and it unparsed a decorator or callee ~300 deep, whose RecursionError made the reject `bounds`.
@example("import warp as wp\n\x00")
@example("x = '\ud800'")
@example(_UNPARSED_SITES[0].format("x0" + "[0]" * 400))
@example(_UNPARSED_SITES[1].format("x0" + "[0]" * 400))
@given(_TEXT)
def test_every_source_at_all_gets_a_verdict(source):
    _property_1(source)


def _recursive_walk(tree) -> list:
    """The planted bug: safety's `_walk` written as the obvious recursion."""
    return [tree] + [n for child in ast.iter_child_nodes(tree) for n in _recursive_walk(child)]


# ---- property 2: a passed source holds nothing outside the allowlist

def test_the_allowlist_here_is_the_documented_one():
    assert verdicts.check_safety is safety.check_safety  # the wall every caller reaches
    assert frozenset(safety._ALLOWED_NODES) == safety._ALLOWED_TYPES == _NODES
    assert not _WP_NAMES & set(_NEVER_WP) and _WP_NAMES >= _DTYPES
    assert safety._RESERVED == _UNBINDABLE


@pytest.mark.parametrize("expr, admitted", [
    ("wp.static(2 * 3)", True), ("wp.static(-0.5 + 1.25)", True), ("float(len(wp.vec3(1.0, 2.0, 3.0)))", True),
    ("float(bool(i))", True), ("wp.float32(wp.uint8(i))", True), ("wp.static(x0)", False),
    ("wp.static(1 + 2 + 3 + 4 + 5)", False), ("wp.static(1048577)", False), ("wp.static(True)", False),
    ("wp.static(2, 3)", False), ("wp.static(q=2)", False), ("wp.sin(wp.static)", False), ("wp.static", False),
    ("wp.static(wp.static(1))", False), ("wp.static(4 / 2)", False), ("wp.len(x0)", False), ("hex(1)", False)])
def test_wp_static_and_the_bare_builtins_are_admitted_only_in_the_grammar_s_forms(expr, admitted):
    """wp.static (which Warp evaluates as Python when it builds the kernel) only as a call on a
    small literal expression, and of the bare builtins only range, float, int, bool and len: the
    wall and the independent walk here agree on each form."""
    source = _KERNEL + f"    i = wp.tid()\n    q = {expr}\n"
    assert (_assert_verdict(source) == PASSED) == admitted, expr
    assert (_inadmissible(source) is None) == admitted, expr


@given(specs())
def test_generated_sources_pass_both_walls(spec):
    source = render_source(spec)
    assert _assert_verdict(source) == PASSED and _inadmissible(source) is None, source


def _assert_passed_only_if_admissible(source: str):
    if _assert_verdict(source)["status"] == "passed":
        why = _inadmissible(source)
        assert why is None, f"check_safety passed a source holding {why}:\n{source}"


@given(st.one_of(mutated_sources(), hypothesmith.from_grammar()))
def test_a_passed_source_holds_only_allowed_forms(source):
    _assert_passed_only_if_admissible(source)


# ---- property 3: judging a source never imports or runs it

_TRIP = f"safety_tripwire_{uuid.uuid4().hex[:12]}"
_TRIP_DIR = tempfile.mkdtemp(prefix="safety_tripwire_", dir=os.environ.get("TEST_TMPDIR"))
_FLAG = os.path.join(_TRIP_DIR, "flag")
with open(os.path.join(_TRIP_DIR, f"{_TRIP}.py"), "w") as _f:
    _f.write(f"import builtins\nopen({_FLAG!r}, 'w').close()\nsetattr(builtins, {_TRIP!r}, True)\n")
atexit.register(shutil.rmtree, _TRIP_DIR, True)


def _armed(where_fragment: tuple) -> tuple:
    """A hostile fragment with the tripwire for its module and the flag for its file."""
    where, fragment = where_fragment
    return where, re.sub(r"\bos\b", _TRIP, fragment).replace("/tmp/x", _FLAG)


_ARMED = st.one_of(mutated_sources(FRAGMENTS.map(_armed)),
                   st.builds("import {}\n{}".format, st.just(_TRIP), hypothesmith.from_grammar()))


def _assert_nothing_ran(source: str):
    before = set(sys.modules)
    sys.path.insert(0, _TRIP_DIR)
    try:
        _assert_verdict(source)
    finally:
        sys.path.remove(_TRIP_DIR)
        gained, fired, marked = set(sys.modules) - before, os.path.exists(_FLAG), hasattr(builtins, _TRIP)
        sys.modules.pop(_TRIP, None)
        builtins.__dict__.pop(_TRIP, None)
        if fired:
            os.remove(_FLAG)
    assert not gained and not fired and not marked, f"judging ran code: modules {gained}, flag {fired}, {source}"


@given(_ARMED)
def test_judging_a_source_never_imports_or_runs_it(source):
    _assert_nothing_ran(source)


def _resolving_wall(source):
    """The planted bug: a wall that makes sure each imported module exists by importing it."""
    with contextlib.suppress(SyntaxError, ImportError):
        for alias in (a for n in ast.walk(ast.parse(source)) if type(n) is ast.Import for a in n.names):
            if alias.name != "warp":
                importlib.import_module(alias.name)
    return _ORIGINAL_CHECK(source)


# ---- each property fails on its planted bugs

@pytest.mark.parametrize("attr,planted,prop,strategy,error", [
    ("_walk", _recursive_walk, _property_1, deep_sources(), "AssertionError: RecursionError on a source Python parses"),
    ("check_safety", lambda s: ast.parse(s) and _ORIGINAL_CHECK(s), _property_1, _TEXT,
     "SyntaxError"),  # a wall that parses before its own SyntaxError handling
    ("_ALLOWED_TYPES", safety._ALLOWED_TYPES | {ast.Lambda}, _assert_passed_only_if_admissible, mutated_sources(),
     "passed a source holding a Lambda"),  # one more node type
    ("_RESERVED", safety._RESERVED - {"open"}, _assert_passed_only_if_admissible, mutated_sources(),
     "passed a source holding a binding of open"),  # a builtin nothing may bind dropped from the list
    ("WP_NAMES", safety.WP_NAMES | {"get_module"}, _assert_passed_only_if_admissible, mutated_sources(),
     "passed a source holding the attribute wp.get_module"),  # a wp name the grammar never uses
    ("_literal_static", lambda call: True, _assert_passed_only_if_admissible, mutated_sources(),
     "passed a source holding wp.static of anything but"),  # wp.static evaluates its argument at codegen
    ("check_safety", _resolving_wall, _assert_nothing_ran, _ARMED, "AssertionError: judging ran code"),
])
def test_each_property_fails_on_its_planted_bug(request, monkeypatch, attr, planted, prop, strategy, error):
    monkeypatch.setattr(safety, attr, planted)
    e = _fails(request, _SEARCH(given(strategy)(prop)))
    assert error in f"{type(e).__name__}: {e}", e


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
