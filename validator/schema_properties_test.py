"""Property tests, on values drawn from the project's own JSON Schemas (hypothesis-jsonschema
`from_schema`), their mutations and arbitrary JSON: the pair schema's compiled check agrees with
jsonschema; `check_static` never raises, names a known wall for every refusal and passes only
the generator's own records; canonical JSON round-trips byte for byte; the run manifest's
readers accept a manifest or refuse it in one line. Each property is shown able to fail: a test
beside it plants a bug in the code under test and asserts Hypothesis finds an example of it."""

import copy
import functools
import json
import os
import shutil
import sys
import tempfile

import pytest
from hypothesis import Phase, given, strategies as st

import schemas
from generator import records
from generator.families import FAMILIES, build_spec
from generator.inputs import make_inputs, second_launch
from generator.render import render_source
from generator.strategies import settings, specs
from schemas import dataset_format, files
from schemas.drawn import at, pair_records, run_manifests, walk
from validator import schema_check, sources, verdicts

TMP = os.environ.get("TEST_TMPDIR") or tempfile.gettempdir()
KNOWN_WALLS = {"bounds", "schema", "spec", "safety", "spec_source", "consistency"}  # check_static's order
DERIVED = ("spec", "source", "id", "kernel_name", "family", "seed", "dim", "args")  # what check_static pins


# ---- arbitrary JSON and mutations

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12)
json_values = st.recursive(scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                           max_leaves=12)  # arbitrary JSON values (finite numbers)
_SAME_KIND = {int: st.integers(-3, 2 ** 64), float: st.floats(allow_nan=False, allow_infinity=False),
              str: st.text(max_size=20), bool: st.booleans()}


_at, _walk = at, walk  # schemas/drawn.py


@st.composite
def mutants(draw, value):
    """A copy of `value` with one part changed: dropped, replaced by a value of another JSON type
    or of its own (an edge of minimum, pattern, enum), or given an unknown key (an extra item)."""
    m = copy.deepcopy(value)
    path = _walk(draw, m)
    target, op = _at(m, path), draw(st.sampled_from(("drop", "retype", "same_kind", "unknown")))
    if op == "drop" and path:
        del _at(m, path[:-1])[path[-1]]
    elif op == "unknown" and isinstance(target, dict):
        target[draw(st.text(max_size=8).filter(lambda k: k not in target))] = draw(json_values)
    elif op == "unknown" and isinstance(target, list):
        target.append(draw(json_values))
    else:
        kind = _SAME_KIND.get(type(target)) if op == "same_kind" else None
        new = draw(kind if kind is not None else json_values.filter(lambda v: type(v) is not type(target)))
        if not path:
            return new
        _at(m, path[:-1])[path[-1]] = new
    return m


deep_values = st.builds(lambda v, n, brackets: json.loads(brackets[0] * n + json.dumps(v) + brackets[1] * n),
                        json_values, st.integers(0, 150), st.sampled_from([("[", "]"), ('{"k":', "}")]))


def _with_mutant(strategy):
    return strategy.flatmap(lambda v: st.tuples(st.just(v), mutants(v)))


pair_and_mutant = _with_mutant(pair_records)


def _object_paths(value, path=()) -> list:
    """The paths of every object (dict) in `value`, its root included."""
    found = [path] if isinstance(value, dict) else []
    kids = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for k, v in kids:
        found += _object_paths(v, path + (k,))
    return found


@st.composite
def _with_unknown_key(draw, value):
    """A copy of `value` with one unknown key added to one of its objects: the mutant that only
    `additionalProperties: false` refuses (a planted bug's search needs it often, not by chance)."""
    m = copy.deepcopy(value)
    target = _at(m, draw(st.sampled_from(_object_paths(m))))
    target[draw(st.text(min_size=1, max_size=8).filter(lambda k: k not in target))] = draw(json_values)
    return m


pair_and_unknown_key = pair_records.flatmap(lambda v: st.tuples(st.just(v), _with_unknown_key(v)))


def _depth(value) -> int:
    todo, deepest = [(value, 1)], 0
    while todo:
        v, d = todo.pop()
        deepest = max(deepest, d)
        todo.extend((c, d + 1) for c in (v.values() if isinstance(v, dict) else v if isinstance(v, list) else ()))
    return deepest


# ---- 1a: the compiled schema check is jsonschema

def _fast_check_agrees(pair):
    fast, slow = verdicts._pair_fast_check(), verdicts._pair_validator()
    assert fast is not None, "the pair schema no longer compiles"
    for x in pair:
        want = slow.is_valid(x)
        assert fast(x) == want, f"jsonschema says valid={want} of {json.dumps(x)[:300]}"


# 40 examples, each a drawn record (all 40 schema-valid) and one mutant of it
@given(pair_and_mutant)
def test_the_compiled_schema_check_agrees_with_jsonschema_on_drawn_records_and_mutants(pair):
    _fast_check_agrees(pair)


# ---- 1b: check_static never raises, names its wall, passes only the generator's own records

@functools.cache
def _real_records() -> tuple:
    """Records as the pipeline writes them, made without Warp: the stand-in IR, outputs and
    toolchain are not read by check_static. A grid kernel and a struct kernel."""
    out = []
    fb, backend = {"forward": "void f() {}", "backward": "void b() {}"}, {"options": {}, "compiler": None}
    for family, seed in (("arith", 4), ("structs", 3)):
        spec = build_spec(family, seed)
        source, small = render_source(spec), second_launch(spec)
        out.append({
            "schema_version": schemas.PAIR_SCHEMA_VERSION, "origin": schemas.ORIGIN_SYNTHETIC,
            "id": records.record_id(source, spec.name),
            "family": family, "target": "cpu", "seed": seed, "kernel_name": spec.name, "source": source,
            "spec": spec.to_json(), "args": [records.arg_json(a) for a in spec.args], "dim": list(spec.dim),
            "ir": {"cpp": fb, "cuda": fb, "ptx": {"sm_90": {"forward": ".entry f() {}"}}},
            "io": {"inputs": records.inputs_json(spec, make_inputs(spec)),
                   "outputs": {"y": {"dtype": "float32", "shape": [1], "data": [0.0]}}},
            "checks": {k: dict(verdicts.PASSED) for k in schemas.load("pair")["properties"]["checks"]["required"]},
            "grad": None, "toolchain": {"warp_lang": "1.0", "cuda_toolkit": None, "nvrtc": None, "llvm": "18.1",
                                        "ptx_archs": ["sm_90"], "cpu": backend, "cuda": backend},
            "coverage": {"branch_points": 0, "outcomes": 0, "taken": 0,
                         "launch_dims": [list(spec.dim)] + ([list(small)] if small else [])}})
    assert all(verdicts.check_static(r) == verdicts.PASSED for r in out)
    return tuple(out)


def _static_verdict(record) -> dict:
    v = verdicts.check_static(record)
    code = verdicts.split_reason(v["reason"])[0] if v["status"] == "failed" else v["status"]
    assert code in KNOWN_WALLS or (code == "passed" and verdicts.check_spec(record) == verdicts.PASSED), v
    assert code == "bounds" or _depth(record) <= verdicts.MAX_DEPTH, f"nested {_depth(record)} deep, refused: {v}"
    return v


_reals = st.deferred(lambda: st.sampled_from(_real_records()))
hostile_records = st.one_of(pair_records, pair_records.flatmap(mutants), json_values, deep_values,
                            st.builds(lambda r, d: {**r, "spec": {**r["spec"], "body": d}}, _reals, deep_values))


@given(hostile_records)
def test_check_static_never_raises_and_refuses_each_drawn_record_at_a_known_wall(record):
    _static_verdict(record)


def _only_the_generators_own_pass(pair):
    real, m = pair
    if _static_verdict(m)["status"] == "passed":
        changed = [k for k in DERIVED if m.get(k) != real[k]] + ["io.inputs"] * (m["io"]["inputs"] != real["io"]["inputs"])
        assert not changed, f"check_static passed a record whose {changed} are not the generator's"


# and a real record with another drawn spec and its rendering: coherent up to the derived fields
real_mutants = st.one_of(_with_mutant(_reals), st.tuples(_reals, specs()).map(
    lambda rs: (rs[0], {**rs[0], "spec": rs[1].to_json(), "source": render_source(rs[1])})))


@given(real_mutants)
def test_check_static_passes_a_mutant_of_a_real_record_only_when_its_derived_fields_are_untouched(pair):
    _only_the_generators_own_pass(pair)


# ---- 1c: canonical JSON

def _ordered(x, reverse=False):
    """`x` with every object's keys sorted (or reversed): its repr is one text per JSON value,
    strictly (True is not 1, 1.0 is not 1, -0.0 is not 0.0)."""
    if isinstance(x, dict):
        return {k: _ordered(x[k], reverse) for k in sorted(x, reverse=reverse)}
    return [_ordered(v, reverse) for v in x] if isinstance(x, list) else x


def _strings(x) -> list[str]:
    kids = list(x) + list(x.values()) if isinstance(x, dict) else x if isinstance(x, list) else []
    return [x] if isinstance(x, str) else [s for k in kids for s in _strings(k)]


def _round_trips(x):
    text = dataset_format.canonical_json(x)
    value, why = dataset_format.decode_line(text.encode("utf-8"))
    assert why is None and repr(_ordered(value)) == repr(_ordered(x)), (text, value)
    assert dataset_format.canonical_json(value) == text, "not idempotent"
    assert dataset_format.canonical_json(_ordered(x, reverse=True)) == text, "depends on key order"
    plain = [s for s in _strings(x) if all(c >= " " and c not in '"\\' for c in s)]
    assert all(f'"{s}"' in text for s in plain), "text not written as is (escaped)"


finite_json = st.recursive(scalars | st.sampled_from([-0.0, 0.0, 1.0, 1, True, 1e300, -5e-324, "é\u2028😀"]),
                           lambda c: st.lists(c, max_size=5) | st.dictionaries(st.text(max_size=8), c, max_size=5),
                           max_leaves=30)


@given(finite_json)
def test_canonical_json_round_trips_and_is_one_byte_sequence_per_value(x):
    _round_trips(x)


def _decodes_or_says_why(raw: bytes):
    value, why = dataset_format.decode_line(raw)  # a value within the depth cap, or one line saying why not
    assert (why is None and _depth(value) <= files.MAX_JSON_DEPTH) or (value is None and "\n" not in why), (value, why)


raw_lines = st.one_of(st.binary(max_size=200), deep_values.map(lambda v: json.dumps(v).encode()),
                      st.builds(lambda n, b: b"[" * n + b + b"]" * n, st.integers(0, 3000), st.binary(max_size=8)))


@given(raw_lines)
def test_decode_line_reads_any_bytes_or_says_why_in_one_line(raw):
    _decodes_or_says_why(raw)


# ---- 1d: a run's manifest, read by //validator

SHARD0 = {"path": "shard-00000.jsonl", "records": 1, "bytes": 3, "sha256": "0" * 64}  # the one shard on disk
_listing_shard0 = run_manifests.map(lambda m: {**m, "shards": [SHARD0]})
manifests = st.one_of(run_manifests, _listing_shard0, run_manifests.flatmap(mutants), _listing_shard0.flatmap(mutants),
                      json_values)


def _manifest_read_or_refused(m):
    problem = dataset_format.run_manifest_violation(m)
    assert problem is None or (problem.startswith("breaks schemas/run_manifest.schema.json") and "\n" not in problem)
    d = tempfile.mkdtemp(dir=TMP)
    try:
        with open(os.path.join(d, "manifest.json"), "w") as f:
            json.dump(m, f)
        with open(os.path.join(d, "shard-00000.jsonl"), "wb") as f:
            f.write(b"{}\n")
        every, _ = sources._run_sources(d, dataset_format.read_run_manifest(d))
        assert problem is None, "read a manifest that breaks its schema"
        assert [list(rows()) for _, _, rows, _ in every]
    except (verdicts.ValidatorError, dataset_format.RunManifestError) as e:  # revalidate.main's one line
        assert str(e) and "\n" not in str(e)
    finally:
        shutil.rmtree(d)


@given(manifests)
def test_a_drawn_run_manifest_is_read_or_refused_in_one_line(m):
    _manifest_read_or_refused(m)


# ---- each property fails on a planted bug: bug -> (plant it, the property, its strategy[, the error])

def _compiled_check_ignoring_additional_properties(mp):
    mp.setattr(schema_check._SchemaCompiler, "k_additional", lambda self, v, s: (lambda x: True))
    planted = schema_check._compile_schema(schema_check._pair_validator())
    mp.setattr(verdicts, "_pair_fast_check", lambda: planted)


def _check_spec_without_its_type_guard(mp):  # no `isinstance(family, str)`: a list family is unhashable
    real = verdicts.check_spec
    mp.setattr(verdicts, "check_spec", lambda r: real(r) if r["spec"]["family"] in FAMILIES else verdicts.failed("spec: ?"))


def _canonical_json(mp, drop_sign=False, **options):  # json.dumps with other options, or -0.0 written as 0.0
    options = {"sort_keys": True, "separators": (",", ":"), "ensure_ascii": False, **options}
    fix = (lambda o: json.loads(json.dumps(o).replace("-0.0", "0.0"))) if drop_sign else (lambda o: o)
    mp.setattr(dataset_format, "canonical_json", lambda obj, allow_nan=False: json.dumps(fix(obj), **options))


def _stub(obj, name, value):
    return lambda mp: mp.setattr(obj, name, value)


PLANTED = {  # the error each fails with: AssertionError unless named
    "compiled check ignores additionalProperties": (
        _compiled_check_ignoring_additional_properties, _fast_check_agrees, pair_and_unknown_key),
    "check_static without its bounds wall": (
        _stub(verdicts, "check_bounds", lambda r: verdicts.PASSED), _static_verdict, hostile_records),
    "check_spec without its type guard": (_check_spec_without_its_type_guard, _static_verdict, hostile_records, TypeError),
    "check_static without its consistency wall": (
        _stub(verdicts, "check_consistency", lambda r: verdicts.PASSED), _only_the_generators_own_pass, real_mutants),
    "canonical_json keys unsorted": (lambda mp: _canonical_json(mp, sort_keys=False), _round_trips, finite_json),
    "canonical_json non-ASCII escaped": (lambda mp: _canonical_json(mp, ensure_ascii=True), _round_trips, finite_json),
    "canonical_json -0.0 as 0.0": (lambda mp: _canonical_json(mp, drop_sign=True), _round_trips, finite_json),
    "decode_line without its depth cap": (_stub(files, "json_depth", lambda raw: 0), _decodes_or_says_why, raw_lines),
    "run manifest read without its schema": (_stub(dataset_format, "run_manifest_violation", lambda m: None),
                                             _manifest_read_or_refused, manifests, (TypeError, KeyError, AttributeError)),
}


@pytest.mark.parametrize("bug", list(PLANTED))
def test_each_property_fails_on_its_planted_bug(monkeypatch, bug):
    plant, prop, strategy, *error = PLANTED[bug]
    plant(monkeypatch)

    # generation only: whether Hypothesis finds a failing example, not the smallest
    @settings(max_examples=100, phases=[Phase.generate], report_multiple_bugs=False)
    @given(strategy)
    def search(x):
        prop(x)
    with pytest.raises(error[0] if error else AssertionError):
        search()


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
