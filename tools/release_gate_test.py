"""The publish gate of //tools:release and its command line: each bad input (an unreadable
run.json, a failed verdict, a codegen-only run, a record that breaks the schema, fields that do
not follow from the spec, a run manifest that breaks its schema, a record with no canonical JSON,
differing toolchains, a corrupt shard, bad arguments, an --out that is not a release) is refused
with one line that names it, and leaves nothing behind.
"""

import functools
import os
import sys

import pytest

from tools.testing import (  # tmp_root sets datasets offline before it is imported
    release_fixtures, fresh_copy, fresh_dir, read_manifest, refused, release_cli, rewrite_run, tmp_root, write_manifest,
)

TMP = tmp_root("/tmp/release_gate_test")

import pipeline  # noqa: E402
from tools import release, verify  # noqa: E402

_tmp = functools.partial(fresh_dir, TMP)  # TMP/name, emptied
_copy = functools.partial(fresh_copy, TMP)  # a copy of src as TMP/name
inputs, _ = release_fixtures(TMP)  # the small runs (tools/testing.py)


def test_run_json_is_optional_but_must_parse(inputs, capsys):
    old = _copy(inputs[0], "no_run_json")
    os.remove(os.path.join(old, "run.json"))  # a run that predates run.json: carried as null
    out = _tmp("out_no_run")
    rc, err = release_cli(["--in", old, "--out", out, "--version", "1.0.0"], capsys)
    assert rc == 0, err
    assert read_manifest(out)["inputs"][0]["run"] is None and verify.verify(out) == []
    with open(os.path.join(old, "run.json"), "w") as f:
        f.write("{not json")
    refused(["--in", old, "--version", "1.0.0"], capsys, _tmp("out_bad_run"), "run.json is unreadable")


def test_gate_refuses_a_record_without_a_passing_verdict(inputs, capsys):
    bad = _copy(inputs[0], "bad_verdict")

    def fail_one(recs):
        recs[0]["checks"]["execute_cpu"] = {"status": "failed", "reason": "outputs differ"}

    rewrite_run(bad, fail_one)
    refused(["--in", bad, inputs[1], "--version", "1.0.0"], capsys, _tmp("out_verdict"), "execute_cpu")


def test_gate_refuses_a_codegen_only_run(capsys):
    fast = _tmp("no_validate")
    pipeline.run(pipeline.RunConfig("cpu", 4, 3, fast, ["arith"], workers=1, quiet=True, archs=["sm_90"], validate=False))
    refused(["--in", fast, "--version", "1.0.0"], capsys, _tmp("out_fast"), "no passing verdict", "--no-validate")


def test_gate_refuses_a_record_that_breaks_the_schema(inputs, capsys):
    bad = _copy(inputs[0], "bad_schema")

    def drop_field(recs):
        del recs[1]["dim"]

    rewrite_run(bad, drop_field)
    refused(["--in", bad, "--version", "1.0.0"], capsys, _tmp("out_schema"), "schema", "dim")


def test_gate_refuses_a_record_whose_fields_do_not_follow_from_its_spec(inputs, capsys):
    bad = _copy(inputs[0], "bad_id")

    def forge_id(recs):
        recs[2]["id"] = "0123456789abcdef"

    rewrite_run(bad, forge_id)
    refused(["--in", bad, "--version", "1.0.0"], capsys, _tmp("out_id"), "consistency", "0123456789abcdef")


def test_gate_refuses_a_run_manifest_that_breaks_its_schema(inputs, capsys):
    for name, edit, words in (("key", lambda m: m.pop("validation_notes"), "'validation_notes' is a required property"),
                              ("type", lambda m: m["counts"].update(rejected="0"), "at counts/rejected")):
        bad = _copy(inputs[0], f"bad_run_manifest_{name}")
        m = read_manifest(bad)
        edit(m)
        write_manifest(bad, m)
        refused(["--in", bad, "--version", "1.0.0"], capsys, _tmp(f"out_run_manifest_{name}"),
                 "manifest.json breaks schemas/run_manifest.schema.json", words)


def test_gate_refuses_a_record_the_canonical_encoding_cannot_write(inputs, capsys):
    # json.loads reads NaN, and a \ud800 escape as an unpaired surrogate; neither has a canonical
    # JSON (UTF-8) form, so neither may reach the release's JSONL or JSON columns
    for name, edit in (("nan", lambda recs: recs[0]["checks"]["execute_cpu"].update(max_abs_diff=float("nan"))),
                       ("surrogate", lambda recs: recs[0]["checks"]["schema"].update(reason="\ud800"))):
        bad = _copy(inputs[0], f"not_canonical_{name}")
        rewrite_run(bad, edit)
        refused(["--in", bad, "--version", "1.0.0"], capsys, _tmp(f"out_not_canonical_{name}"),
                 "not writable as canonical JSON", "shard-00000.jsonl:1")


def test_gate_refuses_different_toolchains(inputs, capsys):
    # a whole run made with another Warp: consistent in itself, but not with the CPU run
    other = _copy(inputs[1], "other_toolchain")

    def older_all(recs):
        for r in recs:
            r["toolchain"] = dict(r["toolchain"], warp_lang="1.18.0")

    m = rewrite_run(other, older_all, shards=len(read_manifest(other)["shards"]))
    m["toolchain"]["warp_lang"] = "1.18.0"
    write_manifest(other, m)
    assert release_cli(["--in", other, "--out", _tmp("out_tc0"), "--version", "1.0.0"], capsys)[0] == 0
    refused(["--in", inputs[0], other, "--version", "1.0.0"], capsys, _tmp("out_tc"), "toolchains differ", "warp_lang")
    # a record built with another toolchain than its run is refused as well
    mixed = _copy(inputs[0], "mixed_toolchain")

    def older(recs):
        recs[0]["toolchain"] = dict(recs[0]["toolchain"], warp_lang="1.18.0")

    rewrite_run(mixed, older)
    refused(["--in", mixed, "--version", "1.0.0"], capsys, _tmp("out_tc2"), "another toolchain")


def test_gate_refuses_a_corrupt_shard_and_bad_arguments(inputs, capsys):
    bad = _copy(inputs[0], "corrupt")
    path = os.path.join(bad, read_manifest(bad)["shards"][0]["path"])
    with open(path, "r+b") as f:
        f.write(b"#")  # the first byte of the first record
    out = _tmp("out_bad")
    refused(["--in", bad, "--version", "1.0.0"], capsys, out, "corrupt")
    refused(["--in", _tmp("nowhere"), "--version", "1.0.0"], capsys, out, "not a directory")
    refused(["--in", inputs[0], inputs[0], "--version", "1.0.0"], capsys, out, "same directory")
    with pytest.raises(SystemExit) as e:
        release.main(["--in", inputs[0], "--out", out, "--version", "1.0"])
    assert e.value.code == 2 and "semver" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        release.main(["--in", inputs[0], "--out", out, "--version", "1.0.0", "--bogus"])
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--bogus" in err and err.count("\n") == 1
    # an existing directory that is not a release is never overwritten
    os.makedirs(out)
    with open(os.path.join(out, "notes.txt"), "w") as f:
        f.write("mine")
    rc, err = release_cli(["--in", inputs[0], "--out", out, "--version", "1.0.0"], capsys)
    assert rc == 2 and "not a previous release" in err and os.listdir(out) == ["notes.txt"]


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
