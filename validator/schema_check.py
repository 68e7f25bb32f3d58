"""The pair schema's compiled check: `_compile_schema` turns the JSON Schema into a predicate
equal to jsonschema's `is_valid` for the keywords the pair schema uses, so that a record the
pipeline has just built (`verdicts.check_schema(..., built_here=True)`) passes without
jsonschema's walk. Split from `verdicts`, which re-exports every name here.
"""

from __future__ import annotations

import functools
import re


import schemas


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
    (type, enum, const, pattern, minLength, minimum, exclusiveMinimum, maximum, required, properties,
    additionalProperties, propertyNames, minProperties, items, prefixItems, minItems, maxItems,
    if/then/else, allOf, oneOf, local $ref, boolean schemas), each with jsonschema 4's Draft
    2020-12 semantics: a keyword applies only to its instance type, the type checker is
    jsonschema's own for anything but exact JSON types, enum and const compare with
    jsonschema's `equal` (True is not 1). Any other keyword raises `_Unsupported`.

    The predicate only ever says "valid" quickly: `check_schema` asks jsonschema itself for the
    error of any record it does not pass, so the stored reason is jsonschema's, and a record
    jsonschema rejects cannot pass (checks_test compares the two on every mutation of records)."""
    compiler = _SchemaCompiler(validator)
    return compiler.node(validator.schema, at_root=True)


_JSON_TYPES = ("string", "object", "array", "boolean", "null", "integer", "number")


def _type_test(checker, name):
    """`checker.is_type(x, name)`, answered from a table for exact JSON types; the table must
    say what jsonschema's checker says, or `_Unsupported`."""
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


class _SchemaCompiler:
    """One schema's compilation: `node` compiles a (sub)schema to a predicate, one method per
    keyword (`KEYWORDS`: keyword -> method name), each given the keyword's value `v` and its
    schema `s`; local `$ref`s are compiled once and shared (`compiled`, by pointer)."""

    KEYWORDS = {"type": "k_type", "enum": "k_enum", "const": "k_const", "pattern": "k_pattern",
                "minLength": "k_min_length", "minimum": "k_minimum", "maximum": "k_maximum",
                "exclusiveMinimum": "k_exclusive_minimum",
                "required": "k_required", "properties": "k_properties", "additionalProperties": "k_additional",
                "propertyNames": "k_property_names", "minProperties": "k_min_properties", "items": "k_items",
                "prefixItems": "k_prefix_items", "minItems": "k_min_items", "maxItems": "k_max_items", "if": "k_if",
                "allOf": "k_all_of", "oneOf": "k_one_of", "$ref": "k_ref"}

    def __init__(self, validator):
        from jsonschema._utils import equal

        self.equal = equal
        self.validator = validator
        self.root = validator.schema
        self.types = {n: _type_test(validator.TYPE_CHECKER, n) for n in _JSON_TYPES}
        self.is_obj, self.is_arr = self.types["object"], self.types["array"]
        self.is_str, self.is_num = self.types["string"], self.types["number"]
        self.compiled: dict[str, object] = {}

    def ref(self, pointer):
        compiled = self.compiled
        if pointer in compiled:
            return lambda x: compiled[pointer](x)
        if not re.fullmatch(r"#(/[A-Za-z0-9_$]+)*", pointer):
            raise _Unsupported(f"$ref {pointer}")
        target = self.root
        for part in pointer.split("/")[1:]:
            if not isinstance(target, dict) or part not in target:
                raise _Unsupported(f"$ref {pointer}")
            target = target[part]
        compiled[pointer] = None
        compiled[pointer] = self.node(target)
        return compiled[pointer]

    def node(self, s, at_root=False):
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
            if k not in self.KEYWORDS:
                if k in self.validator.VALIDATORS or k.startswith("$"):
                    raise _Unsupported(k)
                continue  # not a keyword of the draft: jsonschema ignores it too
            tests.append(getattr(self, self.KEYWORDS[k])(v, s))
        if not tests:
            return lambda x: True
        if len(tests) == 1:
            return tests[0]
        return lambda x: all(t(x) for t in tests)

    # ---- keywords of any instance type

    def k_type(self, v, s):
        names = v if isinstance(v, list) else [v]
        if any(n not in self.types for n in names):
            raise _Unsupported(f"type {names}")
        fs = [self.types[n] for n in names]
        return fs[0] if len(fs) == 1 else (lambda x: any(f(x) for f in fs))

    def k_enum(self, v, s):
        equal = self.equal
        if not isinstance(v, list):
            raise _Unsupported("enum")
        if all(type(e) is str for e in v):
            strs = frozenset(v)
            return lambda x: (x in strs) if type(x) is str else any(equal(e, x) for e in v)
        return lambda x: any(equal(e, x) for e in v)

    def k_const(self, v, s):
        equal = self.equal
        return lambda x: equal(x, v)

    def k_if(self, v, s):
        cond = self.node(v)
        then = self.node(s["then"]) if "then" in s else None
        else_ = self.node(s["else"]) if "else" in s else None
        return lambda x: (then is None or then(x)) if cond(x) else (else_ is None or else_(x))

    def k_all_of(self, v, s):
        fs = [self.node(sub) for sub in v]
        return lambda x: all(f(x) for f in fs)

    def k_one_of(self, v, s):
        fs = [self.node(sub) for sub in v]
        return lambda x: sum(1 for f in fs if f(x)) == 1

    def k_ref(self, v, s):
        return self.ref(v)

    # ---- strings and numbers

    def k_pattern(self, v, s):
        is_str, rx = self.is_str, re.compile(schemas.python_pattern(v))
        return lambda x: not is_str(x) or rx.search(x) is not None

    def k_min_length(self, v, s):
        is_str = self.is_str
        return lambda x: not is_str(x) or len(x) >= v

    def k_minimum(self, v, s):
        is_num = self.is_num
        return lambda x: not is_num(x) or not x < v

    def k_exclusive_minimum(self, v, s):
        is_num = self.is_num
        return lambda x: not is_num(x) or not x <= v  # as jsonschema: a NaN is not <= v

    def k_maximum(self, v, s):
        is_num = self.is_num
        return lambda x: not is_num(x) or not x > v

    # ---- objects

    def k_required(self, v, s):
        is_obj = self.is_obj
        return lambda x: not is_obj(x) or all(p in x for p in v)

    def k_properties(self, v, s):
        is_obj, subs = self.is_obj, [(p, self.node(sub)) for p, sub in v.items()]
        return lambda x: not is_obj(x) or all(f(x[p]) for p, f in subs if p in x)

    def k_additional(self, v, s):
        is_obj = self.is_obj
        if "patternProperties" in s:
            raise _Unsupported("patternProperties")
        known = s.get("properties", {})
        if is_obj(v):
            f = self.node(v)
            return lambda x: not is_obj(x) or all(f(x[p]) for p in x if p not in known)
        if not v:
            return lambda x: not is_obj(x) or all(p in known for p in x)
        return lambda x: True

    def k_property_names(self, v, s):
        is_obj, f = self.is_obj, self.node(v)
        return lambda x: not is_obj(x) or all(f(p) for p in x)

    def k_min_properties(self, v, s):
        is_obj = self.is_obj
        return lambda x: not is_obj(x) or len(x) >= v

    # ---- arrays

    def k_items(self, v, s):
        is_arr, prefix = self.is_arr, len(s.get("prefixItems", []))
        if v is False:
            return lambda x: not is_arr(x) or len(x) <= prefix
        f = self.node(v)
        return lambda x: not is_arr(x) or all(f(x[i]) for i in range(prefix, len(x)))

    def k_prefix_items(self, v, s):
        is_arr, fs = self.is_arr, [self.node(sub) for sub in v]
        return lambda x: not is_arr(x) or all(f(item) for item, f in zip(x, fs))

    def k_min_items(self, v, s):
        is_arr = self.is_arr
        return lambda x: not is_arr(x) or len(x) >= v

    def k_max_items(self, v, s):
        is_arr = self.is_arr
        return lambda x: not is_arr(x) or len(x) <= v


@functools.lru_cache(maxsize=None)
def _pair_fast_check():
    """The pair schema compiled (`_compile_schema`), or None where it cannot be."""
    try:
        return _compile_schema(_pair_validator())
    except _Unsupported:
        return None
