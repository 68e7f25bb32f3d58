"""Properties of the release formats, searched with Hypothesis over the records of the small real
runs (tools/testing.py `small_runs`) and drawn variations of them: a record survives record ->
Parquet row -> record (tools/release_format.py `to_row`, tools/release.py `write_parquet`,
schemas/release_rows.py); a kernel's split depends on it alone, not on the other records of the
release or their order (tools/release.py `build`); exact dedup (tools/dedup.py) is idempotent,
independent of input order and keeps the first record of a duplicate group by sort key; the
release of the same inputs is byte-identical, and given in the other order differs only in the
manifest's command and inputs (and the card rendered from them). Each of the first three is
shown failing on a planted bug (the `test_planted_*` tests).
"""

import functools
import hashlib
import json
import os
import shlex
import sys
import types
from unittest import mock

import pytest
from hypothesis import Phase, example, given, strategies as st

from tools.testing import fresh_dir, read_records, small_runs, tmp_root

TMP = tmp_root("/tmp/format_properties_test")

from generator.strategies import examples, settings  # noqa: E402 (loads the Hypothesis profile)
from schemas import release_rows  # noqa: E402
from schemas.dataset_format import RELEASE_CARD, RELEASE_MANIFEST, canonical_json  # noqa: E402
from tools import card, dedup, release, release_inputs  # noqa: E402
from tools import release_format as fmt  # noqa: E402


@functools.cache
def _records() -> list[dict]:
    """The pool: the 50 records of the small CPU and CUDA runs."""
    return [r for d in small_runs(TMP) for r in read_records(d)]


@functools.cache
def _entries() -> list:
    """The pool's gated entries (tools/release_inputs.py `Entry`), as the release reads them."""
    dirs = release_inputs.read_inputs([(d, d) for d in small_runs(TMP)], 0.9)
    return [e for d in dirs for e in d.entries]


pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")  # a drawn record is 30 kB


@pytest.fixture(scope="module", autouse=True)
def pool():
    """Made before the first test, so that no example pays for the runs (Hypothesis would call
    that data generation too slow)."""
    return _records(), _entries()


# ---- 1. record -> Parquet row -> record -------------------------------------------------------

_TEXT = st.text(st.characters(codec="utf-8"), max_size=30) | st.sampled_from(
    ["", "\x00", "a\nb\r\nc", "\t\x1b[31m\x7f", "\u2028\u2029\ufeff", "é\U0001F600", "\\u0000\"'"])
_INT64 = st.integers(-2**63, 2**63 - 1)
_NUMBER = st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(
    [-0.0, 2**64, -2**63 - 1, 10**30, 5e-324, -1.5e308])
_JSON = st.recursive(st.none() | st.booleans() | _NUMBER | _TEXT,
                     lambda c: st.lists(c, max_size=4) | st.dictionaries(_TEXT, c, max_size=4), max_leaves=12)
_STRINGS = [("id",), ("family",), ("target",), ("kernel_name",), ("source",), ("ir", "cpp", "forward"),
            ("ir", "cpp", "backward"), ("ir", "cuda", "forward"), ("ir", "cuda", "backward")]
_JSONS = [("spec",), ("args",), ("io", "inputs"), ("io", "outputs"), ("checks",), ("grad",), ("coverage",)]
_INDEX = st.deferred(lambda: st.integers(0, len(_records()) - 1))  # a pool record's index
_ARCHS = st.lists(st.sampled_from(["sm_70", "sm_80", "sm_90", "sm_100a"]), min_size=1, max_size=3, unique=True)


def _set(r: dict, path: tuple, value) -> None:
    for k in path[:-1]:
        r = r[k]
    r[path[-1]] = value


def _with_archs(r: dict, archs: list[str], ptx: dict | None = None) -> dict:
    """`r` (copied) with PTX for exactly `archs` (a release's rows carry its toolchain's archs)."""
    r = json.loads(json.dumps(r))  # a deep copy, faster than copy.deepcopy
    text = next(iter(r["ir"]["ptx"].values()))["forward"]
    r["ir"]["ptx"] = {a: {"forward": (ptx or {}).get(a, text)} for a in archs}
    return r


@st.composite
def _record(draw, archs: list[str]) -> dict:
    """A pool record with drawn values in some of the fields a row carries: strings with any
    Unicode (control characters, newlines, NUL), seeds and dims over int64, JSON columns of any
    shape (-0.0, big integers, nesting), the numbers of an output."""
    r = _with_archs(draw(st.sampled_from(_records())), archs, draw(st.dictionaries(st.sampled_from(archs), _TEXT)))
    for path in draw(st.sets(st.sampled_from(_STRINGS))):
        _set(r, path, draw(_TEXT))
    for path in draw(st.sets(st.sampled_from(_JSONS))):
        _set(r, path, draw(_JSON))
    if draw(st.booleans()):
        r["seed"] = draw(_INT64)
    if draw(st.booleans()):
        r["dim"] = draw(st.lists(_INT64, max_size=4))
    outputs = r["io"]["outputs"]
    if isinstance(outputs, dict) and outputs and isinstance(out := outputs[draw(st.sampled_from(sorted(outputs)))], dict):
        out["data"] = draw(st.lists(_NUMBER, min_size=1, max_size=6))  # an output's numbers, as drawn
    return r


@st.composite
def _rows_of_a_file(draw) -> tuple[list[str], list[dict], str, str, int]:
    """(archs, records, split, skeleton hash, rows per row group) of one Parquet file."""
    archs = draw(_ARCHS)
    recs = draw(st.lists(_record(archs), min_size=1, max_size=5))
    # the writer cuts row groups at fmt.ROW_GROUP_ROWS: a smaller one crosses them with few rows
    group = draw(st.sampled_from([fmt.ROW_GROUP_ROWS, 1, 2, 3]))
    return archs, recs, draw(st.sampled_from(fmt.SPLITS)), draw(st.from_regex(r"[0-9a-f]{16}", fullmatch=True)), group


def _round_trip(drawn) -> None:
    archs, recs, split, skel, group = drawn
    path = os.path.join(TMP, "roundtrip.parquet")
    with mock.patch.object(fmt, "ROW_GROUP_ROWS", group):
        release.write_parquet((fmt.to_row(r, split, skel, archs) for r in recs), fmt.arrow_schema(archs), path)
    pf = release_rows.open_parquet(path)
    assert pf.num_row_groups == -(-len(recs) // group)
    rows = [row for rows in release_rows.row_groups(pf) for row in rows]
    assert len(rows) == len(recs)
    for row, r in zip(rows, recs):
        assert (row["split"], row["skeleton_hash"]) == (split, skel)
        back = release_rows.to_record(row, r["schema_version"], r["toolchain"])
        # canonical JSON tells -0.0 from 0.0 and 1 from 1.0, which == does not
        assert canonical_json(back).encode() == canonical_json(r).encode()


@given(drawn=_rows_of_a_file())
def test_a_record_survives_its_parquet_row(drawn):
    _round_trip(drawn)


def _caught(body, strategy) -> None:
    """Asserts that Hypothesis, searching as the property's test does, finds an example on which
    `body` fails (reported unshrunk: one example is the proof, and shrinking costs minutes)."""
    @settings(phases=[Phase.explicit, Phase.generate])
    @given(strategy)
    def search(drawn):
        body(drawn)

    with pytest.raises(AssertionError):
        search()


def _unsigned_zeros(v):
    if isinstance(v, float):
        return v + 0.0  # -0.0 + 0.0 is 0.0
    if isinstance(v, list):
        return [_unsigned_zeros(x) for x in v]
    return {k: _unsigned_zeros(x) for k, x in v.items()} if isinstance(v, dict) else v


def test_planted_row_conversions_are_caught(monkeypatch):
    """A row conversion that writes the first PTX arch only (the others come back null), or
    one that writes an output's -0.0 as 0.0, breaks the round trip."""
    real = fmt.to_row
    monkeypatch.setattr(fmt, "to_row", lambda r, split, skel, archs: real(r, split, skel, sorted(archs)[:1]))
    _caught(_round_trip, _rows_of_a_file())
    monkeypatch.setattr(fmt, "to_row", lambda r, *a: dict(
        real(r, *a), outputs=canonical_json(_unsigned_zeros(r["io"]["outputs"]))))
    _caught(_round_trip, _rows_of_a_file())


# ---- 2. a kernel's split depends on it alone --------------------------------------------------


@st.composite
def _percentages(draw) -> tuple[int, int, int]:
    a = draw(st.integers(0, 100))
    b = draw(st.integers(0, 100 - a))
    return a, b, 100 - a - b


class _Assigned(Exception):
    """Stops release.build once it has assigned the splits."""


def _splits(entries: list, fractions: tuple) -> dict:
    """{key: (split, skeleton)} of the records release.build keeps of `entries`, as it assigns
    them (the build stopped right after, at the near-duplicate audit)."""
    got = {}

    def stop(kept, splits, threshold):
        got.update((e.key, (s, e.skeleton)) for e, s in zip(kept, splits))
        raise _Assigned

    d = types.SimpleNamespace(entries=entries, manifest={"toolchain": {"ptx_archs": ["sm_90"]}})
    with mock.patch.object(release, "_near_duplicates", stop), pytest.raises(_Assigned):
        release.build([d], os.path.join(TMP, "never_written"), "1.0.0", fractions, 0.9, 5000, False, "")
    return got


_SUBSETS = st.tuples(st.lists(_INDEX, min_size=1, max_size=60), _percentages())


@given(drawn=_SUBSETS)
def test_a_kernel_s_split_depends_on_it_alone(drawn):
    _check_splits(drawn)


def _check_splits(drawn) -> None:
    """Any subset of the pool (repeats included), in any order, with any --split: each kept
    record gets the split it gets in a release of it alone, and one skeleton gets one split."""
    picks, split = drawn
    fractions = tuple(x / 100 for x in split)  # as release.parse_args makes them
    pool = _entries()
    got = _splits([pool[i] for i in picks], fractions)
    by_key = {e.key: e for e in pool}
    for key, assigned in got.items():
        assert _splits([by_key[key]], fractions) == {key: assigned}, key
    per_skeleton = {}
    for s, skel in got.values():
        assert per_skeleton.setdefault(skel, s) == s, skel


def test_planted_positional_split_is_caught(monkeypatch):
    """A split that hashes the record's position in the release (counted from its dedup)."""
    position, real_dedup, real_split = [0], dedup.exact_dedup, fmt.split_of

    def dedup_and_restart(entries):
        position[0] = 0
        return real_dedup(entries)

    def by_position(skel, fractions=fmt.DEFAULT_FRACTIONS):
        position[0] += 1
        return real_split(hashlib.sha256(str(position[0]).encode()).hexdigest()[:16], fractions)

    monkeypatch.setattr(dedup, "exact_dedup", dedup_and_restart)
    monkeypatch.setattr(fmt, "split_of", by_position)
    _caught(_check_splits, _SUBSETS)


# ---- 3. exact dedup ---------------------------------------------------------------------------


@functools.cache
def _fields(i: int) -> tuple:
    r = _records()[i]
    return dedup.sort_key(r), dedup.source_key(r), dedup.ir_key(r)


def _entry(r: dict) -> types.SimpleNamespace:
    """What exact dedup reads of an entry (tools/release_inputs.py `Entry`)."""
    return types.SimpleNamespace(key=dedup.sort_key(r), source_key=dedup.source_key(r), ir_key=dedup.ir_key(r))


def _twin(draw, i: int) -> types.SimpleNamespace:
    """A duplicate of pool record i: itself again, renamed (the name is normalised away), another
    seed (same source), or another source with the same IR (and another seed)."""
    kind = draw(st.sampled_from(["repeat", "renamed", "reseeded", "same_ir"]))
    r = _records()[i]
    if kind == "repeat":
        return types.SimpleNamespace(**dict(zip(("key", "source_key", "ir_key"), _fields(i))))
    if kind == "renamed":
        name = f"{r['family']}_{draw(st.from_regex(r'[0-9a-f]{8}', fullmatch=True))}"
        return _entry(json.loads(json.dumps(r).replace(r["kernel_name"], name)))
    twin = dict(r, seed=draw(st.integers(0, 2**63 - 1)))
    if kind == "same_ir":
        twin["source"] += "\n"
    return _entry(twin)


@st.composite
def _dedup_inputs(draw) -> tuple[list, list]:
    """Pool entries with drawn duplicates among them, in a drawn order and in another one."""
    picks = draw(st.lists(_INDEX, min_size=1, max_size=25))
    entries = [types.SimpleNamespace(**dict(zip(("key", "source_key", "ir_key"), _fields(i)))) for i in picks]
    entries += [_twin(draw, i) for i in draw(st.lists(st.sampled_from(picks), max_size=8))]
    entries = draw(st.permutations(entries))
    return entries, draw(st.permutations(entries))


@given(drawn=_dedup_inputs())
def test_exact_dedup_is_idempotent_order_free_and_keeps_the_first(drawn):
    _check_dedup(drawn)


def _check_dedup(drawn) -> None:
    """"The same" is the same kept keys (target, family, seed, id, kernel_name), in the same
    order, and the same counts and examples: entries with equal keys stand for one record."""
    entries, shuffled = drawn
    kept, info = dedup.exact_dedup(entries)
    keys = [e.key for e in kept]
    other, other_info = dedup.exact_dedup(shuffled)
    assert ([e.key for e in other], other_info) == (keys, info)
    again, again_info = dedup.exact_dedup(kept)
    assert [e.key for e in again] == keys and sum(again_info["removed"].values()) == 0
    assert sum(info["removed"].values()) == len(entries) - len(kept)
    # of each duplicate group the first by key is kept (the manifest's dedup.key_order says so)
    assert keys == sorted(keys)
    assert len({e.source_key for e in kept}) == len({e.ir_key for e in kept}) == len(kept)
    kept_ids = {id(e) for e in kept}
    for d in entries:
        if id(d) not in kept_ids:
            assert any(k.key <= d.key and (k.source_key == d.source_key or k.ir_key == d.ir_key) for k in kept), d.key


def test_planted_dedups_are_caught(monkeypatch):
    """A dedup that keeps the first in input order (its sort dropped), and one that keeps the
    last by key (sorted the other way round): `sorted` replaced inside tools/dedup.py."""
    monkeypatch.setattr(dedup, "sorted", lambda xs, key=None: list(xs) if key else sorted(xs), raising=False)
    _caught(_check_dedup, _dedup_inputs())
    monkeypatch.setattr(dedup, "sorted", lambda xs, key=None: sorted(xs, key=key, reverse=bool(key)), raising=False)
    _caught(_check_dedup, _dedup_inputs())


# ---- 4. the release of the same inputs is byte-identical -------------------------------------


def _files(d: str) -> dict[str, bytes]:
    out = {}
    for root, _, names in os.walk(d):
        for n in names:
            with open(os.path.join(root, n), "rb") as f:
                out[os.path.relpath(os.path.join(root, n), d)] = f.read()
    return out


def _assert_only_command_and_inputs_differ(first: dict, swapped: dict, a: str, b: str) -> None:
    """The release of --in B A against that of --in A B: the same files, the same bytes but for
    manifest.json (its command, its inputs in the other order, the card's checksum) and the card
    (rendered from the manifest)."""
    assert sorted(swapped) == sorted(first)
    assert {p: v for p, v in swapped.items() if p not in (RELEASE_MANIFEST, RELEASE_CARD)} == \
        {p: v for p, v in first.items() if p not in (RELEASE_MANIFEST, RELEASE_CARD)}
    ma, mb = json.loads(first[RELEASE_MANIFEST]), json.loads(swapped[RELEASE_MANIFEST])
    assert mb["command"] == ma["command"].replace(shlex.join(["--in", a, b]), shlex.join(["--in", b, a]))
    assert mb["inputs"] == ma["inputs"][::-1]
    for m in (ma, mb):
        m["files"] = [f for f in m["files"] if f["path"] != RELEASE_CARD]
    expected = dict(ma, command=mb["command"], inputs=mb["inputs"])
    assert mb == expected
    del expected["files"]  # the card is rendered before the files are listed
    assert swapped[RELEASE_CARD].decode() == card.render(json.loads(json.dumps(expected, sort_keys=True)))


@settings(max_examples=examples(5))  # an example is three releases of about 1 s each
@given(split=_percentages(), shard_rows=st.integers(1, 60), jsonl=st.booleans(),
       threshold=st.sampled_from(["0.5", "0.8", "0.9"]))  # over 0.98 is refused: see below
def test_the_release_of_the_same_inputs_is_byte_identical(split, shard_rows, jsonl, threshold):
    a, b = small_runs(TMP)
    out = fresh_dir(TMP, "dist")  # one --out: the manifest records the command as typed
    args = ["--out", out, "--version", "1.0.0", "--split", ",".join(map(str, split)),
            "--shard-rows", str(shard_rows), "--near-dup-threshold", threshold] + (["--jsonl"] if jsonl else [])
    assert release.main(["--in", a, b, *args]) == 0
    first = _files(out)
    assert release.main(["--in", a, b, *args]) == 0
    assert _files(out) == first
    assert release.main(["--in", b, a, *args]) == 0
    _assert_only_command_and_inputs_differ(first, _files(out), a, b)


@example(threshold=1.0)
@given(threshold=st.floats(0, 1, exclude_min=True))
def test_every_threshold_the_command_line_admits_can_band_a_signature(threshold):
    """Found by the byte-identical property's drawn --near-dup-threshold 1: the command line
    admitted (0, 1], MinHashLSH bands only up to about 0.98, and the release crashed with a
    traceback. Now a threshold it cannot band is refused in one line (`dedup.banding_problem`)."""
    try:
        args = release.parse_args(["--in", "x", "--out", "y", "--version", "1.0.0",
                                   "--near-dup-threshold", repr(threshold)])
    except SystemExit:  # refused in one line on the command line: not a crash
        return
    r = _records()[0]
    assert dedup.bands(dedup.signature(r["source"], r["kernel_name"])[1], args.near_dup_threshold)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
