"""Property tests of //report on hostile manifests: a real small release whose manifest.json has
drawn leaves replaced by drawn values of the same kind or of any kind, keys dropped or added
(most stay within the manifest schema and reach the facts), and release manifests drawn from
manifest.schema.json itself (hypothesis-jsonschema, `schemas/drawn.py`) in a directory without
their files. The report never crashes: it writes a report (exit 0) or refuses in one line
(exit 2). A planted bug (the manifest read without its schema check) is found by the property."""

import copy
import functools
import json
import os
import shutil
import sys

import pytest
from hypothesis import Phase, find, given, settings as hsettings, strategies as st

from generator.strategies import examples  # loads the Hypothesis profile
from report import release_reader, report_main
from schemas.drawn import at, release_manifests, walk
from tools.testing import small_release, tmp_root

TMP = tmp_root("/tmp/report_properties_test")

_SAME_KIND = {bool: st.booleans(), int: st.integers(-2, 2 ** 63), float: st.floats(allow_nan=False),
              str: st.text(max_size=30)}
_ANY = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
                    max_leaves=8)


@pytest.fixture(scope="module", autouse=True)
def _built_before_any_draw():
    """The real release is built before Hypothesis draws (the pipeline's own random draws are
    not a strategy's)."""
    _real()


@functools.cache
def _real() -> tuple[str, dict]:
    dist = small_release(TMP)
    with open(os.path.join(dist, "manifest.json")) as f:
        return dist, json.load(f)


@st.composite
def mutated_manifests(draw):
    """The real release's manifest with 1-3 drawn edits: a leaf of the same kind, any value, a
    key dropped or one added."""
    m = copy.deepcopy(_real()[1])
    for _ in range(draw(st.integers(1, 3))):
        path = walk(draw, m)
        if not path:
            continue
        parent = at(m, path[:-1])
        old, how = parent[path[-1]], draw(st.sampled_from(["same_kind", "any", "drop", "add"]))
        if how == "same_kind" and type(old) in _SAME_KIND:
            parent[path[-1]] = draw(_SAME_KIND[type(old)])
        elif how == "drop" and isinstance(parent, dict):
            del parent[path[-1]]
        elif how == "add" and isinstance(old, dict):
            old[draw(st.text(max_size=8))] = draw(_ANY)
        else:
            parent[path[-1]] = draw(_ANY)
    return m


def _report(manifest: dict, with_files: bool) -> tuple[int, str]:
    """//report of a copy of the real release (or an empty directory) holding `manifest`."""
    d = os.path.join(TMP, "drawn_dist")
    shutil.rmtree(d, ignore_errors=True)
    if with_files:
        shutil.copytree(_real()[0], d)
    else:
        os.makedirs(d)
    with open(os.path.join(d, "manifest.json"), "w") as f:
        json.dump(manifest, f)
    err = os.path.join(TMP, "stderr")
    with open(err, "w") as fe:
        saved, sys.stderr = sys.stderr, fe
        try:
            rc = report_main.main([d, "--out", os.path.join(TMP, "report"), "--samples", "1"])
        finally:
            sys.stderr = saved
    with open(err) as f:
        return rc, f.read()


def _verdict_is_a_report_or_one_line(rc: int, err: str) -> None:
    assert rc in (0, 2), (rc, err[-2000:])
    if rc == 2:
        assert err.startswith("error: ") and err.count("\n") == 1, err[-2000:]


@hsettings(max_examples=examples(15))  # a report of the real release takes about a second
@given(mutated_manifests())
def test_a_report_of_a_release_with_a_mutated_manifest_is_written_or_refused_in_one_line(m):
    _verdict_is_a_report_or_one_line(*_report(m, True))


@hsettings(max_examples=examples(15))
@given(release_manifests)
def test_a_drawn_release_manifest_without_its_files_is_refused_in_one_line(m):
    rc, err = _report(m, False)
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1, (rc, err[-2000:])


def test_the_real_release_is_reported():
    assert _report(_real()[1], True)[0] == 0


def test_planted_missing_schema_check_is_found(monkeypatch):
    """The planted bug: the manifest read without its schema check; a drawn mutation then crashes
    the facts (a KeyError or TypeError escapes, not one line)."""
    monkeypatch.setattr(release_reader.schemas, "validator", lambda schema: type("V", (), {"iter_errors": lambda s, m: []})())

    def crashes(m) -> bool:
        try:
            rc, err = _report(m, True)
        except Exception:  # noqa: BLE001 - the crash the property exists to catch
            return True
        return rc not in (0, 2) or (rc == 2 and err.count("\n") != 1)

    find(mutated_manifests(), crashes, settings=hsettings(max_examples=200, phases=[Phase.generate], database=None))


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
