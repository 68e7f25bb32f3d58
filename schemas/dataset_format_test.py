"""The dataset's on-disk format: file names, listing shards, reading records (every bad line
reported, reading on), the canonical JSON encoding and reading a run's manifest.
"""

import json
import math
import sys

import pytest

import schemas
from schemas import dataset_format as fmt


def test_file_names():
    assert fmt.shard_name(0) == "shard-00000.jsonl"
    assert fmt.stats_name(12) == "shard-00012.stats.json"
    assert fmt.faults_name(3) == "shard-00003.cuda_faults.json"
    assert fmt.is_shard(fmt.shard_name(7))
    assert not any(fmt.is_shard(n) for n in (fmt.stats_name(7), fmt.faults_name(7), "manifest.json", "x.jsonl"))


def test_list_shards_is_sorted_and_holds_only_record_shards(tmp_path):
    for name in ("shard-00002.jsonl", "shard-00000.jsonl", "shard-00000.stats.json", "shard-00001.cuda_faults.json",
                 "manifest.json", "run.json"):
        (tmp_path / name).write_text("")
    (tmp_path / "adjoint_mismatch").mkdir()
    (tmp_path / "adjoint_mismatch" / "shard-00001.jsonl").write_text("")
    assert fmt.list_shards(str(tmp_path)) == ["shard-00000.jsonl", "shard-00002.jsonl"]


def test_read_records_reports_every_bad_line_and_reads_on(tmp_path):
    lines = [b'{"a":1}', b"\xff\xfe", b"{not json", b"[" * 100000 + b"]" * 100000, b"1" * 5000, b"", b'{"b":[2]}']
    path = tmp_path / "shard-00000.jsonl"
    path.write_bytes(b"".join(x + b"\n" for x in lines))
    got = list(fmt.read_records(str(path)))
    assert [n for n, _, _ in got] == list(range(1, len(lines) + 1))
    assert got[0] == (1, {"a": 1}, None) and got[-1] == (7, {"b": [2]}, None)
    errors = {n: err for n, rec, err in got if err}
    assert sorted(errors) == [2, 3, 4, 5, 6]
    assert all(e.startswith(f"corrupt: shard-00000.jsonl:{n}: ") for n, e in errors.items())
    assert "not UTF-8 at byte 0" in errors[2]
    assert "nested deeper than 64" in errors[4]  # measured on the bytes, before json.loads
    assert "digits" in errors[5]  # Python's int-conversion limit: a ValueError, not a JSONDecodeError


def test_canonical_json_is_the_generator_encoding():
    obj = {"b": [1, 2.5, None], "a": {"z": "text", "y": True}, "u": "\u00e9"}
    assert fmt.canonical_json(obj) == '{"a":{"y":true,"z":"text"},"b":[1,2.5,null],"u":"\u00e9"}'
    # for the ASCII, NaN-free values the dataset holds it equals the encoding the release tools used
    ascii_obj = {k: v for k, v in obj.items() if k != "u"}
    assert fmt.canonical_json(ascii_obj) == json.dumps(ascii_obj, sort_keys=True, separators=(",", ":"))
    with pytest.raises(ValueError):
        fmt.canonical_json({"x": math.nan})
    assert fmt.canonical_json({"x": math.nan}, allow_nan=True) == '{"x":NaN}'


def _minimal_run_manifest():
    """A run that kept nothing: the smallest manifest the generator writes."""
    return {"manifest_version": "1.0.0", "record_schema_version": schemas.PAIR_SCHEMA_VERSION,
            "generator": {"target": "cpu", "count": 1, "seed": 0, "families": ["arith"], "chunk_size": 50,
                          "archs": ["sm_90"], "validate": True, "record_schema_version": schemas.PAIR_SCHEMA_VERSION, "devices": ["cpu"]},
            "toolchain": None,
            "counts": {"attempted": 1, "passed": 0, "rejected": 1, "duplicate_ids": 0,
                       "by_family": {"arith": {"attempted": 1, "passed": 0, "rejected": 1}}},
            "rejects_by_reason": {"compile_cpu": 1},
            "reject_examples": {"compile_cpu": {"family": "arith", "seed": 7, "reason": "compile_cpu: failed"}},
            "validation": {}, "validation_notes": {}, "gradient_by_family": {},
            "adjoint_mismatch": {"records": 0, "shards": []}, "shards": []}


def test_read_run_manifest(tmp_path):
    d = str(tmp_path)
    assert fmt.read_run_manifest(d) is None  # no manifest: nothing to check
    path = tmp_path / fmt.RUN_MANIFEST
    path.write_text(json.dumps(_minimal_run_manifest()))
    assert fmt.read_run_manifest(d) == _minimal_run_manifest()
    path.write_text("{torn")
    with pytest.raises(fmt.RunManifestError, match="manifest.json: unreadable"):
        fmt.read_run_manifest(d)
    m = _minimal_run_manifest()
    m["counts"]["rejected"] = "1"
    path.write_text(json.dumps(m))
    with pytest.raises(fmt.RunManifestError) as e:
        fmt.read_run_manifest(d)
    msg = str(e.value)
    assert msg.startswith(f"{path}: breaks schemas/run_manifest.schema.json at counts/rejected (schema path ")
    assert "\n" not in msg


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
