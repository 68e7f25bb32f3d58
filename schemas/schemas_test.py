import json
import os
import sys

import jsonschema
import pytest

import schemas

from schemas.dataset_format import RELEASE_KIND

# schema file name -> the version constant of its artifact
VERSIONS = {"pair": schemas.PAIR_SCHEMA_VERSION, "manifest": schemas.RELEASE_MANIFEST_VERSION}


@pytest.mark.parametrize("name", sorted(VERSIONS))
def test_schema_is_valid_draft_2020_12_and_carries_its_version(name):
    s = schemas.load(name)
    jsonschema.Draft202012Validator.check_schema(s)
    assert s["$id"].endswith(f"/{name}/{VERSIONS[name]}")


def test_every_schema_file_has_a_version_constant():
    files = sorted(n[: -len(".schema.json")] for n in os.listdir(schemas.SCHEMA_DIR) if n.endswith(".schema.json"))
    assert files == sorted(VERSIONS)


def test_the_release_manifest_schema_states_its_version_and_kind():
    props = schemas.load("manifest")["properties"]
    assert props["manifest_version"] == {"const": schemas.RELEASE_MANIFEST_VERSION}
    assert props["kind"] == {"const": RELEASE_KIND}


def _semver_key(v):
    return tuple(int(x) for x in v.split("."))


@pytest.mark.parametrize("artifact", sorted(schemas.VERSIONS))
def test_every_artifact_has_a_one_line_note_per_version_the_current_one_newest(artifact):
    notes = schemas.RELEASE_NOTES[artifact]
    current = schemas.VERSIONS[artifact]
    assert current in notes
    assert all(isinstance(n, str) and n.strip() and "\n" not in n for n in notes.values())
    key = _semver_key if isinstance(current, str) else (lambda v: v)
    assert max(notes, key=key) == current, "a note for a version newer than the current one"
    assert list(notes) == sorted(notes, key=key, reverse=True), "notes are listed newest first"


def test_the_notes_cover_exactly_the_artifacts():
    assert set(schemas.RELEASE_NOTES) == set(schemas.VERSIONS)


def test_manifest_schema_rejects_a_file_without_checksum():
    v = jsonschema.Draft202012Validator(schemas.load("manifest"))
    entry = {"path": "data/cpu/train-00000-of-00001.parquet", "bytes": 1, "config": "cpu", "split": "train", "rows": 1}
    errors = list(v.iter_errors({"files": [entry]}))
    assert any("sha256" in e.message for e in errors), [e.message for e in errors]
    entry["sha256"] = "0" * 64
    del entry["rows"]
    assert any("rows" in e.message for e in v.iter_errors({"files": [entry]}))


def test_a_verdict_may_carry_the_gpu_difference():
    v = jsonschema.Draft202012Validator({"$defs": schemas.load("pair")["$defs"], "$ref": "#/$defs/verdict"})
    assert not list(v.iter_errors({"status": "passed", "max_abs_diff": 1.5e-7}))
    assert list(v.iter_errors({"status": "passed", "max_abs_diff": -1.0}))
    assert list(v.iter_errors({"status": "passed", "other": 1}))


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
