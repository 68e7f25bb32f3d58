"""Values drawn from the project's own JSON Schemas with hypothesis-jsonschema's `from_schema`,
for the property tests (validator/schema_properties_test.py, report/report_properties_test.py):
`pair_records`, `run_manifests`, `release_manifests`. from_schema draws from a simplified copy
of each schema (below: what it cannot draw fast or at all, and how it is met); the checks under
test always use the real schema.
"""

from __future__ import annotations

import copy
import functools
import types

from hypothesis import strategies as st
from hypothesis.internal.conjecture import utils as cu
from hypothesis_jsonschema import _from_schema, from_schema

import schemas


class _Many(cu.many):
    """hypothesis-jsonschema 0.23.1 drives Hypothesis's old `many` API (`while elements.more()`),
    which Hypothesis 6.170 replaced by iteration inside a with-block: every object schema with
    properties raised AttributeError. The old loop, made of the new class's own steps."""

    def more(self) -> bool:
        if self._depth is None:
            self.__enter__()
        self._finish_element()
        more = self._decide()  # False: the span is closed, the collection done
        self.count, self._in_element, self._rejected = self.count + more, more, False
        return more


if not hasattr(cu.many, "more"):
    _from_schema.cu = types.SimpleNamespace(many=_Many)


# ---- the schemas as from_schema can draw them (a simplified copy; the checks use the real one)

def _merge(a: dict, b: dict) -> dict:
    """`b`'s keywords into `a`: `required` united, `properties` merged per name (False: kept False, so
    a branch of an `if` nested in an `else`, whose own properties are empty, still forbids the name
    its `else` forbids)."""
    for k, v in b.items():
        if k == "required":
            a[k] = sorted(set(a.get(k, [])) | set(v))
        elif k == "properties":
            a[k] = {n: sub for n, sub in a.get(k, {}).items() if v.get(n) is not False}
            a[k].update({n: False if sub is False else _merge(a[k].get(n, {}), sub) for n, sub in v.items()})
        else:
            a[k] = v
    return a


def _split_if(node: dict) -> dict:
    """`if` on one enum property (args' kind, a verdict's status) or one pattern (a release
    file's path) as an anyOf of its two branches (`base` is empty for an `if` nested in an `else`).
    from_schema rewrites if/then/else as anyOf with `not`, drawn by filtering: 40 records took
    minutes, and its copy of the `then` lost the `$defs` its `$ref`s point to (PointerToNowhere)."""
    base = {k: v for k, v in node.items() if k not in ("if", "then", "else")}
    [(key, cond)] = node["if"]["properties"].items()
    # a file path of the release manifest: matching the pattern, or not; likewise an `if` nested
    # in an `else` (an arg's kind: hash_grid or not), whose node does not list the values
    if "pattern" in cond or key not in base.get("properties", {}):
        return {"anyOf": [_merge(_merge(copy.deepcopy(base), {"properties": {key: cond}}), node.get("then", {})),
                          _merge(_merge(copy.deepcopy(base), {"properties": {key: {"not": cond}}}),
                                 node.get("else", {}))]}
    values = cond["enum"] if "enum" in cond else [cond["const"]]
    other = [v for v in base["properties"][key]["enum"] if v not in values]
    return {"anyOf": [_merge(_merge(copy.deepcopy(base), {"properties": {key: {"enum": vs}}}), branch)
                      for vs, branch in ((values, node.get("then", {})), (other, node.get("else", {})))]}


def _simplified(node, defs):
    """`$ref`s inlined (merged with their siblings), annotations dropped, oneOf of disjoint
    branches as anyOf (no filtering), if/then/else split (`_split_if`), open-ended arrays and
    objects capped (3 items, 2 keys past the required: records of ~4 KB, not ~9, drawn 2x faster)."""
    if isinstance(node, list):
        return [_simplified(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _simplified(v, defs) for k, v in node.items()
           if k not in ("description", "title", "$comment", "$schema", "$id", "$defs", "properties")}
    if "properties" in node:  # names of properties (a column's "description") are not annotations
        out["properties"] = {k: _simplified(v, defs) for k, v in node["properties"].items()}
    if "oneOf" in out:
        out["anyOf"] = out.pop("oneOf")
    if "if" in out:
        out = _split_if(out)
    if out.get("type") == "array":
        out.setdefault("maxItems", 3)
    if out.get("type") == "object" and out.get("additionalProperties", True) is not False:
        out.setdefault("maxProperties", len(out.get("required", [])) + 2)
    ref = out.pop("$ref", None)
    return out if ref is None else _merge(_simplified(defs[ref.rsplit("/", 1)[1]], defs), out)


@functools.cache
def _schema_copy(name: str) -> dict:
    s = schemas.load(name)
    # pair's top-level allOf: if/then on nested paths (compile_cuda passed -> ir.ptx, execute_cpu passed ->
    # outputs), not split: every drawn record meets both `then`s; mutants (ptx, outputs dropped) reach the ifs
    conditional = s.pop("allOf", None)
    s = _simplified(s, s.get("$defs", {}))
    if conditional:
        s["properties"]["ir"]["required"].append("ptx")
        s["properties"]["io"]["properties"]["outputs"]["minProperties"] = 1
    return s


pair_records = st.deferred(lambda: from_schema(_schema_copy("pair")))
run_manifests = st.deferred(lambda: from_schema(_schema_copy("run_manifest")))
release_manifests = st.deferred(lambda: from_schema(_schema_copy("manifest")))


# ---- paths into drawn or real values, for mutations

def at(x, path):
    """The part of `x` at `path` (keys and indices from the root)."""
    return functools.reduce(lambda part, k: part[k], path, x)


def walk(draw, value) -> tuple:
    """A path into `value` from the root down, stopping at each level on a draw of 3 of 0..3
    (Hypothesis favours 0): every key of a record is likely, not only its tensors' numbers."""
    path = ()
    while True:
        node = at(value, path)
        kids = list(node) if isinstance(node, dict) else list(range(len(node))) if isinstance(node, list) else []
        if not kids or draw(st.integers(0, 3)) == 3:
            return path
        path += (draw(st.sampled_from(kids)),)
