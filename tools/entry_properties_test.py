"""Property tests of //tools:release's gate on drawn hostile record lines: mutants of a real run's
records (a part dropped, retyped, given an unknown key, redrawn from its own JSON Schema with
hypothesis-jsonschema `from_schema`, a verdict flipped), arbitrary JSON (unpaired surrogates
included), JSON nested past every cap, torn lines and arbitrary bytes, each written into a copy
of a small real run beside a real record and re-signed; and the same mutants as rows of a
re-signed release through //tools:verify. Neither ever crashes: it exits 0,
or 1 with one line and nothing left behind; and what it publishes is the generator's own (its
spec and every field derived from it, no failed verdict). Tests beside it plant bugs in the gate
(no consistency wall, no verdict rule, no UTF-8 check) and assert Hypothesis finds each."""

import contextlib
import copy
import functools
import hashlib
import io
import json
import os
import sys

import pytest
from hypothesis import Phase, assume, given, strategies as st
from hypothesis_jsonschema import from_schema

from generator.strategies import examples, settings
from tools.testing import fresh_copy, fresh_dir, read_manifest, resign_shard, tmp_root, write_manifest

TMP = tmp_root("/tmp/entry_properties_test")  # sets `datasets` offline before it is imported

import pipeline  # noqa: E402
import schemas  # noqa: E402
from schemas.dataset_format import decode_line  # noqa: E402
from schemas.drawn import at, walk  # noqa: E402
from tools import release, release_inputs, verify  # noqa: E402
from validator import verdicts  # noqa: E402

DERIVED = ("spec", "source", "id", "kernel_name", "family", "seed", "dim", "args")  # what the gate pins
PAIR = schemas.load("pair")
# a failing example of the planted-bug tests is a whole record line (~30 kB)
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")


@functools.cache
def _clean_run() -> tuple[str, tuple[dict, ...]]:
    """A small real run (2 CPU kernels through the pipeline, ~8 s), made once per process;
    examples copy it."""
    out = fresh_dir(TMP, "clean")
    pipeline.run(pipeline.RunConfig("cpu", 2, 21, out, ["arith", "structs"], workers=1, quiet=True))
    with open(os.path.join(out, "shard-00000.jsonl"), "rb") as f:
        return out, tuple(json.loads(line) for line in f)


# ---- drawn hostile lines

# any text, unpaired surrogates too (a "\ud800" escape decodes to one): joined characters, as
# st.text(characters() | characters(categories=["Cs"])) never draws a surrogate (Hypothesis 6.170)
_text = st.lists(st.characters() | st.characters(categories=["Cs"]), max_size=12).map("".join)
_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | _text
json_values = st.recursive(_scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(_text, c, max_size=4),
                           max_leaves=12)
_SAME_KIND = {int: st.integers(-3, 2 ** 64), float: st.floats(allow_nan=False, allow_infinity=False), str: _text,
              bool: st.booleans()}


_at, _walk = at, walk  # schemas/drawn.py


def _paths(x, pre=()):
    yield pre
    for k, v in (x.items() if isinstance(x, dict) else enumerate(x) if isinstance(x, list) else ()):
        yield from _paths(v, pre + (k,))


def _deref(s):
    while isinstance(s, dict) and "$ref" in s:
        s = PAIR["$defs"][s["$ref"].rsplit("/", 1)[1]]
    return s


def _leaf_schema(path) -> dict | None:
    """The pair schema of the part at `path` where it is a scalar or an array of scalars (drawn by
    from_schema without its object strategy, which hypothesis-jsonschema 0.23.1 cannot run on
    Hypothesis 6.170); None for objects, `oneOf` (grad) and anything untyped (tensor data)."""
    s = PAIR
    for k in path:
        s = _deref(s)
        if not isinstance(s, dict):
            return None
        s = s.get("items") if isinstance(k, int) else s.get("properties", {}).get(k, s.get("additionalProperties"))
    s = _deref(s)
    if not isinstance(s, dict) or s.get("type") == "object":
        return None
    items = _deref(s.get("items"))
    if s.get("type") == "array" and not (isinstance(items, dict) and items.get("type") in ("integer", "string")):
        return None
    return s if "type" in s or "enum" in s or "const" in s else None


OPS = ("drop", "retype", "same_kind", "schema", "unknown", "verdict", "text")


@st.composite
def mutants(draw, record, only: str | None = None):
    """A copy of `record` with one part dropped, retyped, redrawn of its own type (any text:
    unpaired surrogates too), given an unknown key or an extra item, or redrawn from its own
    schema (still valid there: only the later walls can refuse it); or a verdict flipped to
    failed, not_run or inconclusive; or a text field outside the spec redrawn as any text.
    `only`: that one of OPS."""
    m = copy.deepcopy(record)
    path = _walk(draw, m)
    target, op = _at(m, path), only or draw(st.sampled_from(OPS))
    if op == "text":  # outside the spec: the walk reaches its many strings
        texts = [p for p in _paths(m) if isinstance(_at(m, p), str) and p[0] != "spec"]
        where = draw(st.sampled_from(texts))
        _at(m, where[:-1])[where[-1]] = draw(_text)
    elif op == "verdict":
        check = draw(st.sampled_from(sorted(m["checks"])))
        status = draw(st.sampled_from(("failed", "not_run", "inconclusive")))
        m["checks"][check] = {"status": status, "reason": draw(_text)}
    elif op == "drop" and path:
        del _at(m, path[:-1])[path[-1]]
    elif op == "unknown" and isinstance(target, (dict, list)):
        value = draw(json_values)
        target.append(value) if isinstance(target, list) else target.setdefault(draw(_text), value)
    elif path:
        leaf = _leaf_schema(path) if op == "schema" else None
        kind = _SAME_KIND.get(type(target)) if op == "same_kind" else None
        _at(m, path[:-1])[path[-1]] = draw(from_schema(leaf) if leaf else kind if kind is not None else
                                           json_values.filter(lambda v: type(v) is not type(target)))
    return m


def _line(value) -> bytes:
    return json.dumps(value, sort_keys=True).encode()


def _torn(line: bytes, cut: int, byte: int) -> bytes:
    """`line` cut short, a byte of it replaced (malformed UTF-8, a broken token)."""
    cut %= len(line)
    return line[:cut] + bytes([byte]) + line[cut + 1:] if byte != 10 else line[:cut]


_reals = st.deferred(lambda: st.sampled_from(_clean_run()[1]))
record_lines = _reals.flatmap(mutants).map(_line)
# verdict flips alone: among all mutants only about 1 in 50 flips a verdict the gate's other walls
# let through to failed (4 of the 10 checks), too rare for a 300-example search to be sure of
verdict_lines = _reals.flatmap(lambda r: mutants(r, "verdict")).map(_line)
raw_lines = st.one_of(
    json_values.map(_line),
    st.builds(lambda v, n: b"[" * n + _line(v) + b"]" * n, json_values, st.integers(60, 3000)),
    st.builds(_torn, _reals.map(_line), st.integers(0), st.integers(0, 255)),
    st.binary(max_size=300).map(lambda b: b.replace(b"\n", b" ")))


# ---- the property

def _run_with(lines: list[bytes]) -> str:
    """A copy of the clean run whose shard holds `lines`, re-signed in its manifest."""
    d = fresh_copy(TMP, _clean_run()[0], "example")
    data = b"".join(line + b"\n" for line in lines)
    with open(os.path.join(d, "shard-00000.jsonl"), "wb") as f:
        f.write(data)
    m = read_manifest(d)
    m["shards"][0].update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest(), records=len(lines))
    write_manifest(d, m)
    return d


def _publishes_only_the_generators_own(line: bytes):
    _, reals = _clean_run()
    d, out = _run_with([_line(reals[0]), line]), fresh_dir(TMP, "dist")
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = release.main(["--in", d, "--out", out, "--version", "1.0.0"])
    err = err.getvalue()
    assert not [n for n in os.listdir(TMP) if n.startswith(".release-")], "a temporary release was left"
    if rc != 0:
        assert rc == 1 and err.startswith("error: release refused: ") and err.count("\n") == 1, (rc, err)
        assert not os.path.exists(out), "a refused release left its --out"
        return
    r, why = decode_line(line)
    assert why is None and verdicts.check_static(r) == verdicts.PASSED, f"published what check_static fails: {line[:200]!r}"
    assert verdicts.unpublishable(r["checks"]) is None, f"published a failed verdict: {r['checks']}"
    assert any(all(r[k] == c[k] for k in DERIVED) and r["io"]["inputs"] == c["io"]["inputs"] for c in reals)


# a release of a 2-record run costs ~0.03 s (plus copying the run): the profile's examples
@given(record_lines)
def test_the_gate_never_crashes_and_publishes_no_mutant_that_is_not_the_generators(line):
    _publishes_only_the_generators_own(line)


@given(raw_lines)
def test_the_gate_refuses_arbitrary_deep_torn_or_binary_lines_in_one_line(line):
    _publishes_only_the_generators_own(line)


@functools.cache
def _clean_release() -> str:
    """The clean run's release (made once per process); examples copy it."""
    out = fresh_dir(TMP, "clean_dist")
    with contextlib.redirect_stdout(io.StringIO()):
        assert release.main(["--in", _clean_run()[0], "--out", out, "--version", "1.0.0"]) == 0
    return out


def _release_with(mutant: dict, original: dict) -> tuple[str, dict] | None:
    """A copy of the clean release whose row of `original` holds `mutant`, its Parquet file
    re-signed, and the record that row stands for (what a row cannot hold, e.g. an unknown key,
    is not in it); None when the mutant cannot be a row of the release's schema at all."""
    import pyarrow.parquet as pq
    from tools import release_format as fmt

    d = fresh_copy(TMP, _clean_release(), "verify_example")
    m = read_manifest(d)
    for f in (f for f in m["files"] if f["path"].endswith(".parquet")):
        rows = pq.read_table(os.path.join(d, f["path"])).to_pylist()
        at = [i for i, r in enumerate(rows) if r["id"] == original["id"]]
        if at:
            try:
                rows[at[0]] = fmt.to_row(mutant, rows[at[0]]["split"], rows[at[0]]["skeleton_hash"],
                                         m["toolchain"]["ptx_archs"])
                resign_shard(d, f["path"], rows, m)
                stands_for = fmt.to_record(rows[at[0]], m["record_schema_version"], m["toolchain"])
            except (KeyError, TypeError, AttributeError, ValueError, OverflowError, IndexError):
                return None  # not a row (a missing column, a value of another type)
            return d, stands_for
    raise AssertionError("the original record is in no Parquet file")


def _verify_passes_only_the_generators_own(pair):
    original, mutant = pair
    made = _release_with(mutant, original)
    assume(made is not None)
    d, r = made
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = verify.main([d])
    assert rc in (0, 1), (rc, err.getvalue()[-2000:])
    if rc == 1:
        assert err.getvalue().startswith("error: ") and err.getvalue().count("\n") == 1, err.getvalue()[-2000:]
        return
    assert verdicts.check_static(r) == verdicts.PASSED and verdicts.unpublishable(r["checks"]) is None, r["id"]
    assert all(r[k] == original[k] for k in DERIVED) and r["io"]["inputs"] == original["io"]["inputs"]


_pairs = _reals.flatmap(lambda r: st.tuples(st.just(r), mutants(r)))


@settings(max_examples=examples(20))  # an example copies and verifies a release (~0.3 s)
@given(_pairs)
def test_verify_never_crashes_and_passes_no_row_that_is_not_the_generators(pair):
    _verify_passes_only_the_generators_own(pair)


def test_a_verify_without_its_static_checks_is_caught(monkeypatch):
    monkeypatch.setattr(verify, "check_static", lambda r: verdicts.PASSED)
    _fails(_verify_passes_only_the_generators_own, _pairs)


def _fails(prop, strategy, error=AssertionError, n=300):
    """Hypothesis finds an example of `strategy` that `prop` fails on with `error` (generation
    only: whether, not the smallest)."""
    @settings(max_examples=n, phases=[Phase.generate], report_multiple_bugs=False)
    @given(strategy)
    def search(x):
        prop(x)
    with pytest.raises(error):
        search()


def test_a_gate_without_its_consistency_wall_is_caught(monkeypatch):
    monkeypatch.setattr(release_inputs, "check_consistency", lambda r: verdicts.PASSED)
    _fails(_publishes_only_the_generators_own, record_lines)


def test_a_gate_that_publishes_failed_verdicts_is_caught(monkeypatch):
    monkeypatch.setattr(release_inputs, "unpublishable", lambda checks, finding=False: None)
    _fails(_publishes_only_the_generators_own, verdict_lines)


def test_a_gate_that_lets_unwritable_text_through_is_caught(monkeypatch):
    # _canonical without its UTF-8 check: an unpaired surrogate (a "\\ud800" escape) in a field no
    # wall reads (a toolchain or IR string, a verdict's reason) is written, and the write crashes
    monkeypatch.setattr(release_inputs, "_canonical", lambda obj, where: release_inputs.canonical_json(obj))
    _fails(_publishes_only_the_generators_own, record_lines, error=UnicodeEncodeError)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
