"""The fault audit (validator/faults.py, //validator:fault_audit): every kind of the registry's
FAULT_AUDIT (validator/fault_kinds.py) has its injection, really changes the record it copies and
is caught by the re-validator with the reason key the registry gives it, while unmodified
controls pass; the CLI's exit statuses and error lines."""

import json
import math
import os
import random
import sys

import pytest

import pipeline
from generator.families import families_for
from validator import fault_audit_main, fault_kinds, faults, revalidate

TMP = os.environ.get("TEST_TMPDIR", "/tmp")
N_FAULTS = 800  # 50 per fault type
REASON_KEYS = {"corrupt", "bounds", "schema", "spec", "safety", "spec_source", "consistency", "ir_match", "io", "gradient"}


@pytest.fixture(scope="module")
def dataset():
    out = os.path.join(TMP, "faults_test_dataset")
    # every CPU family plus a tile family: vectors, structs, ints, 2-D outputs and tile PTX
    m = pipeline.run(pipeline.RunConfig("cpu", 60, 11, out, families_for("cpu") + ["tile_reduce"], workers=2, quiet=True))
    assert m["counts"]["passed"] == 60
    return out


@pytest.fixture(scope="module")
def records(dataset):
    return faults.sample_records(dataset, 60, random.Random(0))


def test_every_injected_fault_is_caught_with_the_right_reason(dataset, tmp_path, capsys):
    result = faults.audit(dataset, str(tmp_path / "audit"), N_FAULTS, seed=1)
    with capsys.disabled():  # the table is the point: show it even without -s (bazel --test_output=all)
        print("\n" + faults.format_table(result), flush=True)
    table, total = result["by_type"], result["total"]
    assert set(table) == set(faults.FAULTS) and len(table) >= 10
    assert list(table) == [k.name for k in fault_kinds.FAULT_AUDIT]
    assert total["injected"] == N_FAULTS >= 500
    for name, row in table.items():
        assert row["injected"] >= N_FAULTS // len(faults.FAULTS), name
        assert row["expected"] in REASON_KEYS, name
        assert row["undetected_examples"] == [], f"{name}: undetected: {row['undetected_examples']}"
        assert row["wrong_reason_examples"] == [], f"{name}: wrong reason: {row['wrong_reason_examples']}"
        assert row["detected"] == row["right_reason"] == row["injected"], name
        assert row["reasons"] == {row["expected"]: row["injected"]}, name
        assert fault_kinds.kind(name).reasons == {row["expected"]}, name
    assert total["detection_rate"] == total["right_reason_rate"] == 1.0
    assert result["controls"]["count"] == 60 and result["controls"]["false_positives"] == 0
    assert result["unmatched_failures"] == []
    assert result["ok"]


def test_each_fault_really_changes_the_record(records):
    rng = random.Random(2)
    for name, fn in faults.FAULTS.items():
        for i in range(0, len(records), 6):
            before = faults.dump(records[i])
            inj = fn(records, i, rng)
            assert faults.dump(records[i]) == before, f"{name} mutated the original record"
            if name == "grad_perturb" and records[i]["grad"] is None:
                assert inj is None  # no gradient example to forge (the check did not run)
                continue
            if name == "spec_forgery" and inj is None:
                continue  # the drawn edit was to spec_version, which does not render
            assert inj is not None, (name, i)
            assert inj.expected in REASON_KEYS
            assert fault_kinds.kind(name).reasons == {inj.expected}, (name, inj.expected)
            assert inj.line != faults.dump(records[i]), (name, i)
            if name == "truncated_line":
                with pytest.raises(json.JSONDecodeError):
                    json.loads(inj.line)
                continue
            rec = json.loads(inj.line)
            assert rec != records[i], (name, i)
    # a NaN really reaches the line, as JSON's NaN token
    nan = faults.output_nan(records, 0, random.Random(0))
    assert "NaN" in nan.line
    assert any(math.isnan(x) for t in json.loads(nan.line)["io"]["outputs"].values() for x in _flat(t["data"]))


def test_the_audit_injects_exactly_the_registered_fault_kinds():
    """A kind registered for the audit without an injection (or an injection left out of the
    registry) fails here; each is tried through //validator, the audit's entry point."""
    registered = fault_kinds.kinds(fault_kinds.Suite.FAULT_AUDIT)
    assert registered == fault_kinds.FAULT_AUDIT and len(registered) >= 16
    assert list(faults.FAULTS) == [k.name for k in registered] == list(faults.INJECTIONS)
    assert all(k.line and k.entry_points == (fault_kinds.EntryPoint.VALIDATOR,) for k in registered)
    assert all(len(k.reasons) == 1 and k.reasons <= REASON_KEYS for k in registered)


def _flat(data):
    return [y for x in data for y in _flat(x)] if isinstance(data, list) else [data]


def test_detection_depends_on_the_fault_not_on_the_record(records, tmp_path):
    """Mutate, then restore just the mutated part: the restored copy passes, the faulty one does not."""
    rng = random.Random(3)
    lines = []
    for fn, part in ((faults.ir_token, "ir"), (faults.output_perturb, "io"), (faults.output_nan, "io")):
        inj = fn(records, 5, rng)
        bad = json.loads(inj.line)
        restored = dict(bad, **{part: records[5][part]})
        lines += [inj.line, faults.dump(restored)]
    (tmp_path / "shard-00000.jsonl").write_text("".join(x + "\n" for x in lines))
    rep = revalidate.revalidate(str(tmp_path), gpu=False)
    reasons = {f["where"]: f["code"] for f in rep["failures"]}
    assert reasons == {"shard-00000.jsonl:1": "ir_match", "shard-00000.jsonl:3": "io", "shard-00000.jsonl:5": "io"}
    assert rep["passed"] == 3


def test_cli_passes_on_a_valid_dataset(dataset, tmp_path, capsys):
    assert fault_audit_main.main([dataset, "--faults", "11", "--pool", "4", "--seed", "5",
                                  "--workdir", str(tmp_path / "work")]) == 0
    out = capsys.readouterr().out
    assert "detection rate: 100.00% (11/11)" in out and "controls: 4 unmodified records, 0 false positives" in out


def test_cli_fails_when_a_control_is_not_valid(records, tmp_path, capsys):
    d = tmp_path / "dataset"
    d.mkdir()
    bad = json.loads(faults.dump(records[1]))
    bad["ir"]["cpp"]["forward"] += "// tampered\n"
    with open(os.path.join(d, "shard-00000.jsonl"), "w") as f:
        f.write("".join(faults.dump(r) + "\n" for r in (records[0], bad, records[2])))
    assert fault_audit_main.main([str(d), "--faults", "3", "--pool", "3", "--workdir", str(tmp_path / "work")]) == 1
    assert "FALSE POSITIVE" in capsys.readouterr().out


@pytest.mark.parametrize("dirname,msg", [
    ("/nonexistent/dir", "error: /nonexistent/dir: not a directory"),
    ("empty", "no shard-*.jsonl files"),
])
def test_cli_bad_directory_is_a_one_line_error(dirname, msg, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert fault_audit_main.main([str(tmp_path / dirname), "--workdir", str(tmp_path / "work")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and msg in err[0]


def test_cli_bad_arguments_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        fault_audit_main.main([TMP, "--faults", "0"])
    assert e.value.code == 2
    assert "--faults" in capsys.readouterr().err


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
