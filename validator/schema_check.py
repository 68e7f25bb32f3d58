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
