"""The Warp-free verdicts: schema, safety, spec/source agreement, consistency, and which checks
must pass.

Split from `checks` so that tools reading a dataset (//tools:release, //tools:verify) can apply
them without importing Warp.
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
import functools
import keyword
import re

import jsonschema

import schemas
from generator import records
from generator.families import FAMILIES, build_spec
from generator.inputs import make_inputs, second_launch
from generator.oracle import BUILTINS as ORACLE_BUILTINS
from generator.render import render_source
from generator.spec import DTYPES, KernelSpec

PASSED = {"status": "passed"}


class ValidatorError(Exception):
    """Base of the errors that stop a re-validation before any record is judged (the CLI prints
    one line and exits 2); a bad record is never an exception, it is a failed verdict."""
STATUSES = ("passed", "failed", "not_run", "inconclusive")


def failed(reason: str) -> dict:
    return {"status": "failed", "reason": reason}


def not_run(reason: str) -> dict:
    return {"status": "not_run", "reason": reason}


def split_reason(reason: str) -> tuple[str, str | None]:
    """A failure reason as stored, "code: detail" -> (code, detail). The one place the text form
    is taken apart; past it, the code is a field (`Verdict.reason_code`)."""
    code, sep, detail = reason.partition(":")
    return code, (detail.lstrip() if sep else None)


@dataclasses.dataclass(frozen=True)
class Verdict:
    """One check's outcome for one kernel. `reason_code` says which wall or stage failed
    ("execute_gpu", "io", "sandbox", ...), `detail` what it saw; a not_run or inconclusive
    verdict has no code, only its reason in `detail`. `to_json` is the record's form."""

    check: str
    status: str
    reason_code: str | None = None
    detail: str | None = None
    max_abs_diff: float | None = None  # execute_gpu: the largest |GPU - CPU| over the outputs

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"verdict {self.check}: unknown status {self.status!r}")
        if self.status == "failed" and not self.reason_code:
            raise ValueError(f"verdict {self.check}: a failure needs its reason code")

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def reason(self) -> str | None:
        """The stored text: "code: detail" for a failure, the detail otherwise."""
        if self.reason_code is None:
            return self.detail
        return self.reason_code if self.detail is None else f"{self.reason_code}: {self.detail}"

    def to_json(self) -> dict:
        out: dict = {"status": self.status}
        if self.reason is not None:
            out["reason"] = self.reason
        if self.max_abs_diff is not None:
            out["max_abs_diff"] = self.max_abs_diff
        return out

    @classmethod
    def from_json(cls, check: str, d: dict) -> "Verdict":
        reason = d.get("reason")
        code, detail = split_reason(reason) if reason is not None and d["status"] == "failed" else (None, reason)
        return cls(check, d["status"], code, detail, d.get("max_abs_diff"))

    @classmethod
    def rejection(cls, reason: str) -> "Verdict":
        """A kernel rejected before its checks ran ("codegen: ...", "sandbox: ..."): failed, with
        the reason's code."""
        code, detail = split_reason(reason)
        return cls("kernel", "failed", code, detail)


@dataclasses.dataclass
class KernelResult:
    """What `checks.check_batch` gives back per kernel: either `error` (the kernel was rejected
    as a whole: codegen, compile, load, sandbox) or the cut IR, the first input set and its
    outputs, a `Verdict` per check, the gradient example, branch coverage and the toolchain."""

    error: Verdict | None = None
    ir: dict | None = None
    inputs: dict | None = None
    outputs: dict | None = None
    verdicts: dict[str, Verdict] = dataclasses.field(default_factory=dict)
    grad: dict | None = None
    coverage: dict | None = None
    toolchain: dict | None = None

    @classmethod
    def rejected(cls, reason: str) -> "KernelResult":
        return cls(error=Verdict.rejection(reason))

    def checks_json(self) -> dict[str, dict]:
        return {k: v.to_json() for k, v in self.verdicts.items()}

    def first_failure(self, checks: tuple[str, ...]) -> Verdict | None:
        return next((self.verdicts[k] for k in checks if self.verdicts[k].status == "failed"), None)


@functools.lru_cache(maxsize=None)
def _pair_validator():
    return schemas.validator(schemas.load("pair"))


class _Unsupported(Exception):
    """A schema construct `_compile_schema` does not compile: jsonschema alone judges."""


# keywords that only annotate (jsonschema runs nothing for them); `then`/`else` are read by `if`
_ANNOTATIONS = frozenset({"title", "description", "$comment", "$defs", "examples", "default", "deprecated",
                          "readOnly", "writeOnly", "then", "else"})


def _compile_schema(validator):
    """A predicate equal to `validator.is_valid` for the keywords this project's pair schema uses
    (type, enum, const, pattern, minLength, minimum, maximum, required, properties,
    additionalProperties, propertyNames, minProperties, items, prefixItems, minItems, maxItems,
    if/then/else, allOf, oneOf, local $ref, boolean schemas), each with jsonschema 4's Draft
    2020-12 semantics: a keyword applies only to its instance type, the type checker is
    jsonschema's own for anything but exact JSON types, enum and const compare with
    jsonschema's `equal` (True is not 1). Any other keyword raises `_Unsupported`.

    The predicate only ever says "valid" quickly: `check_schema` asks jsonschema itself for the
    error of any record it does not pass, so the stored reason is jsonschema's, and a record
    jsonschema rejects cannot pass (checks_test compares the two on every mutation of records)."""
    from jsonschema._utils import equal

    root = validator.schema
    checker = validator.TYPE_CHECKER

    def type_test(name):
        table = {str: name == "string", dict: name == "object", list: name == "array", bool: name == "boolean",
                 type(None): name == "null", int: name in ("integer", "number")}
        if name != "integer":  # a float is an integer when integral: jsonschema's checker decides
            table[float] = name == "number"
        for t, want in table.items():  # the table must say what jsonschema's checker says
            sample = {str: "s", dict: {}, list: [], bool: True, type(None): None, int: 1, float: 1.5}[t]
            if checker.is_type(sample, name) != want:
                raise _Unsupported(f"type {name}")

        def test(x):
            r = table.get(type(x))
            return checker.is_type(x, name) if r is None else r
        return test

    types = {n: type_test(n) for n in ("string", "object", "array", "boolean", "null", "integer", "number")}
    is_obj, is_arr, is_str, is_num = types["object"], types["array"], types["string"], types["number"]
    compiled: dict[str, object] = {}

    def ref(pointer):
        if pointer in compiled:
            return lambda x: compiled[pointer](x)
        if not re.fullmatch(r"#(/[A-Za-z0-9_$]+)*", pointer):
            raise _Unsupported(f"$ref {pointer}")
        target = root
        for part in pointer.split("/")[1:]:
            if not isinstance(target, dict) or part not in target:
                raise _Unsupported(f"$ref {pointer}")
            target = target[part]
        compiled[pointer] = None
        compiled[pointer] = node(target)
        return compiled[pointer]

    def node(s, at_root=False):
        if s is True:
            return lambda x: True
        if s is False:
            return lambda x: False
        if not isinstance(s, dict):
            raise _Unsupported("schema not an object or boolean")
        tests = []
        for k, v in s.items():
            if k in _ANNOTATIONS or (at_root and k in ("$schema", "$id")):
                continue
            if k not in KEYWORDS:
                if k in validator.VALIDATORS or k.startswith("$"):
                    raise _Unsupported(k)
                continue  # not a keyword of the draft: jsonschema ignores it too
            tests.append(KEYWORDS[k](v, s))
        if not tests:
            return lambda x: True
        if len(tests) == 1:
            return tests[0]
        return lambda x: all(t(x) for t in tests)

    def k_type(v, s):
        names = v if isinstance(v, list) else [v]
        if any(n not in types for n in names):
            raise _Unsupported(f"type {names}")
        fs = [types[n] for n in names]
        return fs[0] if len(fs) == 1 else (lambda x: any(f(x) for f in fs))

    def k_enum(v, s):
        if not isinstance(v, list):
            raise _Unsupported("enum")
        if all(type(e) is str for e in v):
            strs = frozenset(v)
            return lambda x: (x in strs) if type(x) is str else any(equal(e, x) for e in v)
        return lambda x: any(equal(e, x) for e in v)

    def k_const(v, s):
        return lambda x: equal(x, v)

    def k_pattern(v, s):
        rx = re.compile(schemas.python_pattern(v))
        return lambda x: not is_str(x) or rx.search(x) is not None

    def k_min_length(v, s):
        return lambda x: not is_str(x) or len(x) >= v

    def k_minimum(v, s):
        return lambda x: not is_num(x) or not x < v

    def k_maximum(v, s):
        return lambda x: not is_num(x) or not x > v

    def k_required(v, s):
        return lambda x: not is_obj(x) or all(p in x for p in v)

    def k_properties(v, s):
        subs = [(p, node(sub)) for p, sub in v.items()]
        return lambda x: not is_obj(x) or all(f(x[p]) for p, f in subs if p in x)

    def k_additional(v, s):
        if "patternProperties" in s:
            raise _Unsupported("patternProperties")
        known = s.get("properties", {})
        if is_obj(v):
            f = node(v)
            return lambda x: not is_obj(x) or all(f(x[p]) for p in x if p not in known)
        if not v:
            return lambda x: not is_obj(x) or all(p in known for p in x)
        return lambda x: True

    def k_property_names(v, s):
        f = node(v)
        return lambda x: not is_obj(x) or all(f(p) for p in x)

    def k_min_properties(v, s):
        return lambda x: not is_obj(x) or len(x) >= v

    def k_items(v, s):
        prefix = len(s.get("prefixItems", []))
        if v is False:
            return lambda x: not is_arr(x) or len(x) <= prefix
        f = node(v)
        return lambda x: not is_arr(x) or all(f(x[i]) for i in range(prefix, len(x)))

    def k_prefix_items(v, s):
        fs = [node(sub) for sub in v]
        return lambda x: not is_arr(x) or all(f(item) for item, f in zip(x, fs))

    def k_min_items(v, s):
        return lambda x: not is_arr(x) or len(x) >= v

    def k_max_items(v, s):
        return lambda x: not is_arr(x) or len(x) <= v

    def k_if(v, s):
        cond = node(v)
        then = node(s["then"]) if "then" in s else None
        else_ = node(s["else"]) if "else" in s else None
        return lambda x: (then is None or then(x)) if cond(x) else (else_ is None or else_(x))

    def k_all_of(v, s):
        fs = [node(sub) for sub in v]
        return lambda x: all(f(x) for f in fs)

    def k_one_of(v, s):
        fs = [node(sub) for sub in v]
        return lambda x: sum(1 for f in fs if f(x)) == 1

    def k_ref(v, s):
        return ref(v)

    KEYWORDS = {"type": k_type, "enum": k_enum, "const": k_const, "pattern": k_pattern, "minLength": k_min_length,
                "minimum": k_minimum, "maximum": k_maximum, "required": k_required, "properties": k_properties,
                "additionalProperties": k_additional, "propertyNames": k_property_names,
                "minProperties": k_min_properties, "items": k_items, "prefixItems": k_prefix_items,
                "minItems": k_min_items, "maxItems": k_max_items, "if": k_if, "allOf": k_all_of, "oneOf": k_one_of,
                "$ref": k_ref}
    return node(root, at_root=True)


@functools.lru_cache(maxsize=None)
def _pair_fast_check():
    """The pair schema compiled (`_compile_schema`), or None where it cannot be."""
    try:
        return _compile_schema(_pair_validator())
    except _Unsupported:
        return None


def check_schema(record: dict, built_here: bool = False) -> dict:
    """The pair schema's verdict on `record`, judged by jsonschema. `built_here`: the record was
    just assembled by this process from its own spec and results (the pipeline), and the compiled
    check (`_compile_schema`) may pass it without jsonschema's walk. Records from anywhere else
    (a shard on disk, a release: `check_static`, the release gate) are always judged by
    jsonschema itself, so the compiled check never stands between untrusted data and a pass."""
    fast = _pair_fast_check() if built_here else None
    try:
        if fast is not None and fast(record):
            return PASSED
    except Exception:  # noqa: BLE001 - anything unexpected is jsonschema's to judge
        pass
    errors = sorted(_pair_validator().iter_errors(record), key=lambda e: list(e.path))
    if errors:
        e = errors[0]
        where = "/".join(map(str, e.path)) or "(root)"
        return failed(f"schema: {where}: {e.message[:200]}")
    return PASSED


# ---- bounds: checked without recursion before anything recursive (schema, comparison) runs

MAX_DEPTH = 64  # JSON nesting: twice what generated records reach (tools/untrusted_test.py)
MAX_NODES = 1_000_000  # JSON values in one record: far above what generated records hold (same test)


def check_bounds(record) -> dict:
    """Nesting depth and size of a parsed record, walked iteratively (a crafted record can nest
    deeper than Python's recursion limit or hold enough values to exhaust memory later)."""
    todo, nodes = [(record, 1)], 0
    while todo:
        value, depth = todo.pop()
        nodes += 1
        if depth > MAX_DEPTH:
            return failed(f"bounds: nested deeper than {MAX_DEPTH}")
        if nodes > MAX_NODES:
            return failed(f"bounds: more than {MAX_NODES} JSON values")
        if isinstance(value, dict):
            todo.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            todo.extend((v, depth + 1) for v in value)
    return PASSED


# ---- spec: only the generator's own spec for (family, seed) is ever rendered, let alone imported


def check_spec(record: dict) -> dict:
    """The stored spec must be exactly the spec the generator draws for its (family, seed).

    A spec is a function of (family, seed), so this admits no crafted spec at all: whatever a
    record's strings say, the only source that can pass `spec_source` (and the only one the
    validator imports) is the rendering of a spec this code generated itself. Run after
    check_bounds and check_schema."""
    spec = record.get("spec")
    if not isinstance(spec, dict):
        return failed("spec: not an object")
    family, seed = spec.get("family"), spec.get("seed")
    if not isinstance(family, str) or family not in FAMILIES:
        return failed(f"spec: unknown family {str(family)[:40]!r}")
    if type(seed) is not int or not 0 <= seed < 2 ** 63:
        return failed(f"spec: seed {str(seed)[:40]!r} is not an integer in [0, 2**63)")
    want = build_spec(family, seed).to_json()
    if spec != want:
        key = next((k for k in sorted(set(spec) | set(want)) if spec.get(k) != want.get(k)), "?")
        return failed(f"spec: not the spec the generator draws for ({family}, {seed}): {key} differs")
    return PASSED


# ---- safety: an AST allowlist, so re-validating a downloaded dataset never runs foreign code

_ALLOWED_NODES = (
    ast.Module, ast.FunctionDef, ast.arguments, ast.arg, ast.Return, ast.Assign, ast.AugAssign,
    ast.For, ast.While, ast.If, ast.Break, ast.Continue, ast.Pass, ast.Expr, ast.Call, ast.Name,
    ast.Attribute, ast.Subscript, ast.Tuple, ast.Constant, ast.BinOp, ast.UnaryOp, ast.BoolOp,
    ast.Compare, ast.Load, ast.Store, ast.Import, ast.alias, ast.keyword, ast.Slice,
    ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Mod, ast.USub, ast.UAdd, ast.Not, ast.And, ast.Or,
    ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq, ast.ClassDef, ast.AnnAssign,
)
_ALLOWED_TYPES = frozenset(_ALLOWED_NODES)


# the wp.<name>s the renderer emits: the grammar's builtins (the oracle implements each one),
# the dtypes and vec/mat/quat constructors, and the structural names
WP_NAMES = frozenset(ORACLE_BUILTINS) | frozenset(DTYPES) | frozenset({
    "kernel", "func", "struct", "tid", "where", "atomic_add", "atomic_min", "atomic_max", "randf",
    "array", "array2d", "array3d", "array4d"})
_ARRAY_CTORS = ("array", "array2d", "array3d", "array4d")
_RESERVED = frozenset(dir(builtins)) | frozenset(keyword.kwlist) | {"wp"}


def _wp_name(node) -> str | None:
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "wp":
        return node.attr
    return None


def _annotation_ok(node, structs) -> bool:
    """wp.<dtype>, wp.array[Nd](dtype=wp.<dtype>), or a struct class defined in the file."""
    if _wp_name(node) in DTYPES:
        return True
    if isinstance(node, ast.Name):
        return node.id in structs
    return (isinstance(node, ast.Call) and _wp_name(node.func) in _ARRAY_CTORS and not node.args
            and len(node.keywords) == 1 and node.keywords[0].arg == "dtype" and _wp_name(node.keywords[0].value) in DTYPES)


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
    return ast.unparse(d)


def _exact_form(tree, structs, nodes) -> dict | None:
    """The second wall made exact: nothing Python evaluates at import but the forms the renderer
    emits (decorators, annotations, struct fields), no name that shadows a builtin or `wp`.
    `nodes`: `_walk(tree)`."""
    for n in tree.body:
        if isinstance(n, ast.FunctionDef):
            a = n.args
            if a.posonlyargs or a.vararg or a.kwonlyargs or a.kwarg or a.defaults or a.kw_defaults:
                return failed(f"safety: function {n.name} may only take plain positional parameters (line {n.lineno})")
            for arg in a.args:
                if not _annotation_ok(arg.annotation, structs):
                    return failed(f"safety: parameter {arg.arg} of {n.name} has an annotation the grammar does not emit")
            if n.returns is not None and _wp_name(n.returns) not in DTYPES:
                return failed(f"safety: function {n.name} has a return annotation the grammar does not emit")
        elif isinstance(n, ast.ClassDef):
            for f in n.body:
                if isinstance(f, ast.AnnAssign) and _wp_name(f.annotation) not in DTYPES:
                    return failed(f"safety: struct field at line {f.lineno} has a type the grammar does not emit")
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
            wp = _wp_name(node)  # only an attribute names wp.X
            if wp is not None and wp not in WP_NAMES:
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
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    structs = {n.name: {s.target.id for s in n.body if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)}
               for n in tree.body if isinstance(n, ast.ClassDef)}
    struct_params = {}  # parameter name -> its struct's fields, per function (names are unique here)
    for fn in tree.body:
        if isinstance(fn, ast.FunctionDef):
            for arg in fn.args.args:
                if isinstance(arg.annotation, ast.Name) and arg.annotation.id in structs:
                    struct_params[arg.arg] = structs[arg.annotation.id]
    top_classes = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    field_decls = {id(s) for n in top_classes for s in n.body}
    nodes = _walk(tree)
    # dispatched on the node's exact type: ast.parse makes no subclass of a node type, so
    # `type(node) is T` is `isinstance(node, T)` here (and a subclass would fail the allowlist)
    ClassDef, AnnAssign, Import, Attribute, Name, Call = (ast.ClassDef, ast.AnnAssign, ast.Import, ast.Attribute,
                                                          ast.Name, ast.Call)
    allowed = _ALLOWED_TYPES
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
            field_ok = base in struct_params and node.attr in struct_params[base]
            if not (base == "wp" or field_ok) or node.attr.startswith("_"):
                return failed(f"safety: disallowed attribute access .{node.attr} at line {node.lineno}")
        elif t is Call:
            f = node.func
            ok = type(f) is Attribute or (type(f) is Name and (f.id in defined or f.id in ("range", "float", "int")))
            if not ok:
                return failed(f"safety: call of {ast.unparse(f)} at line {node.lineno} is not a Warp builtin or own helper")
        elif t is ClassDef:
            if node not in top_classes:
                return failed(f"safety: nested class {node.name} at line {node.lineno}")
        elif t is AnnAssign:
            if id(node) not in field_decls:
                return failed(f"safety: annotated assignment outside a struct at line {node.lineno}")
        elif t is Import:
            if [(a.name, a.asname) for a in node.names] != [("warp", "wp")]:
                return failed(f"safety: disallowed import at line {node.lineno}")
    for n in tree.body:
        if isinstance(n, ast.Import):
            continue
        if isinstance(n, ast.ClassDef):
            decos = [_decorator_text(d) for d in n.decorator_list]
            if decos != ["wp.struct"] or n.bases or n.keywords:
                return failed(f"safety: class {n.name} must be a plain @wp.struct")
            for s in n.body:
                if not (isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name) and s.value is None
                        and isinstance(s.annotation, ast.Attribute)):
                    return failed(f"safety: struct {n.name} may only declare typed fields (line {s.lineno})")
            continue
        if not isinstance(n, ast.FunctionDef):
            return failed(f"safety: top-level {type(n).__name__} at line {n.lineno} (only functions allowed)")
        decos = [_decorator_text(d) for d in n.decorator_list]
        if decos not in (["wp.kernel"], ["wp.func"]):
            return failed(f"safety: function {n.name} has decorators {decos} (only @wp.kernel/@wp.func)")
    return _exact_form(tree, set(structs), nodes) or PASSED


def check_spec_source(record: dict) -> dict:
    try:
        spec = KernelSpec.from_json(record["spec"])
        if render_source(spec) != record["source"]:
            return failed("spec_source: the source is not the rendering of the spec")
    except (KeyError, ValueError, TypeError, IndexError) as e:
        return failed(f"spec_source: spec does not render: {type(e).__name__}: {e}")
    return PASSED


def check_static(record) -> dict:
    """Every check that needs no compiler, in the order each relies on the ones before it:
    bounds, schema, spec (the generator's own), safety, spec_source, consistency. The one entry
    for //validator, //tools:verify and //tools:release, so an attack meets the same walls in each."""
    for check in (check_bounds, check_schema, check_spec, lambda r: check_safety(r["source"]), check_spec_source,
                  check_consistency):
        try:
            verdict = check(record)
        except RecursionError:  # e.g. a 100 KB source of one long expression: Python's parser recurses
            return failed("bounds: too deeply nested to check (recursion limit)")
        except MemoryError:
            return failed("bounds: too large to check (out of memory)")
        if verdict["status"] != "passed":
            return verdict
    return PASSED


# the verdicts a stored record must carry: these always run, the others may be not_run
MUST_PASS = ("schema", "safety", "spec_source", "compile_cpu", "compile_cuda", "execute_cpu")
# a pair whose adjoint disagrees with the oracle's gradient is a finding about Warp: its reason
# code, and the name of the run's directory and of the release's config that hold such pairs
FINDING = "gradient_mismatch"
FINDINGS = "adjoint_mismatch"
GRADIENT_CHECKS = ("execute_backward_cpu", "execute_backward_gpu")


def unpublishable(checks: dict, finding: bool = False) -> str | None:
    """Why a record with these stored verdicts ({check: {"status", "reason"?}}) may not stand in
    a release's main config (`finding` False) or in its FINDINGS config (True), or None. Both
    need every MUST_PASS check passed. A main config's record has no failed verdict at all; a
    finding has a gradient check failed as FINDING and no other failure."""
    for check in MUST_PASS:
        v = checks.get(check) or {}
        if v.get("status") != "passed":
            return f"has no passing verdict for {check} ({v.get('status')}: {v.get('reason', '')})"
    found = False
    for check, v in sorted(checks.items()):
        if v.get("status") != "failed":
            continue
        if finding and check in GRADIENT_CHECKS and split_reason(v.get("reason", ""))[0] == FINDING:
            found = True
            continue
        return f"has a failed verdict for {check} ({v.get('reason', '')})"
    if finding and not found:
        return f"is in {FINDINGS} but no gradient check failed as {FINDING}"
    return None


def check_consistency(record: dict) -> dict:
    """Every stored field that follows from the spec and source must equal its recomputation.

    Run after check_spec_source (the source is the spec's rendering)."""
    spec = KernelSpec.from_json(record["spec"])
    derived = {
        "id": records.record_id(record["source"], spec.name),
        "kernel_name": spec.name,
        "family": spec.family,
        "seed": spec.seed,
        "dim": list(spec.dim),
        "args": [records.arg_json(a) for a in spec.args],
    }
    for key, want in derived.items():
        got = record.get(key)
        if got != want or type(got) is not type(want):
            return failed(f"consistency: {key} {str(got)[:60]!r} does not follow from the spec/source ({str(want)[:60]!r})")
    want_inputs = records.inputs_json(spec, make_inputs(spec))
    got_inputs = record["io"]["inputs"]
    if set(got_inputs) != set(want_inputs):
        return failed(f"consistency: io.inputs names {sorted(got_inputs)} != {sorted(want_inputs)}")
    for name, t in want_inputs.items():
        if got_inputs[name] != t:
            return failed(f"consistency: stored input {name} is not the input seeded by the record's spec")
    for check in MUST_PASS:
        if record["checks"][check]["status"] != "passed":
            return failed(f"consistency: stored verdict {check} is {record['checks'][check]['status']}, not passed")
    small = second_launch(spec)
    want_launches = [list(spec.dim)] + ([list(small)] if small else [])
    if record["coverage"]["launch_dims"] != want_launches:
        return failed(f"consistency: coverage.launch_dims {record['coverage']['launch_dims']} are not the launch sizes "
                      f"the kernel is executed at ({want_launches})")
    return PASSED
