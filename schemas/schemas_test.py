"""The JSON Schemas: valid draft 2020-12 with their version, one release note per version, and
real run manifests meet the run-manifest schema while a missing key, a mistyped count or an
unknown key fails it.
"""

import copy
import json
import os
import shutil
import subprocess
import sys

import jsonschema
import pytest

import schemas
from schemas.dataset_format import RELEASE_KIND, RUN_MANIFEST, run_manifest_violation

TMP = os.environ.get("TEST_TMPDIR") or "/tmp/schemas_test"
# //generator:cpu (//pipeline:cpu) as a user runs it (a data dependency of this test)
CPU = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pipeline", "cpu.py")

# schema file name -> the version constant of its artifact
VERSIONS = {"pair": schemas.PAIR_SCHEMA_VERSION, "manifest": schemas.RELEASE_MANIFEST_VERSION,
            "run_manifest": schemas.RUN_MANIFEST_VERSION, "real": schemas.REAL_SCHEMA_VERSION}


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


# ---- the run manifest: real ones from //generator:cpu, then broken copies


def _generate(name, *flags):
    out = os.path.join(TMP, name)
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    p = subprocess.run([sys.executable, CPU, "--count", "2", "--seed", "4", "--families", "arith", "--workers", "1",
                        "--quiet", "--out", out, *flags], env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    with open(os.path.join(out, RUN_MANIFEST)) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def run_manifests():
    """A validated run's manifest and a codegen-only (--no-validate) run's."""
    return {"validated": _generate("run_validated"), "codegen_only": _generate("run_codegen_only", "--no-validate")}


def test_real_run_manifests_meet_the_schema(run_manifests):
    assert run_manifests["validated"]["generator"]["validate"] is True
    assert run_manifests["codegen_only"]["toolchain"]["cpu"]["compiler"] is None
    for kind, m in run_manifests.items():
        assert run_manifest_violation(m) is None, kind
        assert m["manifest_version"] == schemas.RUN_MANIFEST_VERSION
        assert m["record_schema_version"] == schemas.PAIR_SCHEMA_VERSION
    # every key the generator writes is one the schema names, and each is required
    s = schemas.load("run_manifest")
    assert set(run_manifests["validated"]) == set(s["properties"]) == set(s["required"])
    assert s["properties"]["manifest_version"] == {"const": schemas.RUN_MANIFEST_VERSION}


def test_a_run_that_kept_nothing_has_a_null_toolchain(run_manifests):
    m = copy.deepcopy(run_manifests["validated"])
    m.update(toolchain=None, shards=[])
    assert run_manifest_violation(m) is None


@pytest.mark.parametrize("key", sorted(schemas.load("run_manifest")["required"]))
def test_a_run_manifest_without_a_key_fails(run_manifests, key):
    m = copy.deepcopy(run_manifests["validated"])
    del m[key]
    problem = run_manifest_violation(m)
    assert problem and f"'{key}' is a required property" in problem and "schema path required" in problem


def test_a_count_made_a_string_or_an_unknown_key_fails(run_manifests):
    m = copy.deepcopy(run_manifests["validated"])
    m["counts"]["passed"] = str(m["counts"]["passed"])
    problem = run_manifest_violation(m)
    assert problem.startswith("breaks schemas/run_manifest.schema.json at counts/passed (schema path ")
    assert "is not of type 'integer'" in problem
    m = copy.deepcopy(run_manifests["validated"])
    m["shards"][0]["records"] = 2.5
    assert "at shards/0/records" in run_manifest_violation(m)
    m = copy.deepcopy(run_manifests["validated"])
    m["notes"] = "a key no generator writes"
    assert "'notes' was unexpected" in run_manifest_violation(m)
    m = copy.deepcopy(run_manifests["validated"])
    m["generator"]["target"] = "tpu"
    assert "at generator/target" in run_manifest_violation(m)


def test_a_verdict_may_carry_the_gpu_difference():
    v = jsonschema.Draft202012Validator({"$defs": schemas.load("pair")["$defs"], "$ref": "#/$defs/verdict"})
    assert not list(v.iter_errors({"status": "passed", "max_abs_diff": 1.5e-7}))
    assert list(v.iter_errors({"status": "passed", "max_abs_diff": -1.0}))
    assert list(v.iter_errors({"status": "passed", "other": 1}))


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
