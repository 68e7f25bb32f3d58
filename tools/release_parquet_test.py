"""A release's files as readers get them: `datasets.load_dataset` gives each config with the
manifest's counts; the same inputs give byte-identical releases; each Parquet shard, streamed
row group by row group, has the bytes of the in-memory writer's table; and the release and verify
hold a few records at a time, never all of them.
"""

import functools
import hashlib
import os
import sys
import weakref

import pytest

from tools.testing import (  # tmp_root sets datasets offline before it is imported
    release_fixtures, fresh_dir, read_manifest, read_records, tmp_root,
)

TMP = tmp_root("/tmp/release_parquet_test")

from schemas.dataset_format import canonical_json  # noqa: E402
from tools import release, verify  # noqa: E402
from tools import release_format as fmt  # noqa: E402

_tmp = functools.partial(fresh_dir, TMP)  # TMP/name, emptied
inputs, dist = release_fixtures(TMP)  # the small runs and their release (tools/testing.py)


def test_load_dataset_gives_the_manifest_counts(dist):
    import datasets

    m = read_manifest(dist)
    for config, c in m["counts"]["configs"].items():
        ds = datasets.load_dataset(dist, config)
        assert {k: v.num_rows for k, v in ds.items()} == {s: n for s, n in c["splits"].items() if n}
        row = ds["train"][0]
        assert row["target"] == config and isinstance(row["seed"], int) and row["ptx_sm_90"].startswith(".")
        plain = datasets.load_dataset("parquet", data_dir=os.path.join(dist, "data", config))
        assert plain["train"].num_rows == c["splits"]["train"]


def _digests(d):
    out = {}
    for root, _, names in os.walk(d):
        for n in names:
            with open(os.path.join(root, n), "rb") as f:
                out[os.path.relpath(os.path.join(root, n), d)] = hashlib.sha256(f.read()).hexdigest()
    return out


def test_same_inputs_give_byte_identical_releases(inputs, dist):
    first = _digests(dist)
    # a second release into the same --out replaces the first (the manifest records --out as typed)
    assert release.main(["--in", *inputs, "--out", dist, "--version", "1.0.0", "--jsonl"]) == 0
    assert _digests(dist) == first
    assert any(p.endswith(".parquet") for p in first)
    assert not [n for n in os.listdir(os.path.dirname(dist)) if n.startswith(".release-")]


def _write_table_bytes(rows, schema, path):
    """The in-memory writer the release used before it streamed: one table, cut into row groups."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path, compression="zstd", compression_level=9,
                   row_group_size=fmt.ROW_GROUP_ROWS, use_dictionary=False, write_statistics=True,
                   data_page_version="1.0", version="2.6", store_schema=True)
    with open(path, "rb") as f:
        return f.read()


def test_streamed_shards_equal_the_in_memory_release(inputs, monkeypatch):
    """Each Parquet file, written row group by row group from records read back by offset, has
    the bytes of one table of the gated records (sorted by id) written whole, and each JSONL
    file the records' lines; small row groups, so every file has several and a partial last."""
    import pyarrow.parquet as pq

    monkeypatch.setattr(fmt, "ROW_GROUP_ROWS", 4)
    out = _tmp("dist_streamed")
    assert release.main(["--in", *inputs, "--out", out, "--version", "1.0.0", "--shard-rows", "9", "--jsonl"]) == 0
    m = read_manifest(out)
    archs = m["toolchain"]["ptx_archs"]
    recs = {(r["target"], r["id"]): r for d in inputs for r in read_records(d)}
    by_group = {}
    for f in m["files"]:
        if f["path"].endswith(".parquet"):
            by_group.setdefault((f["config"], f["split"]), []).append(f["path"])
    multi = 0
    for (config, split), paths in by_group.items():
        ids = [row["id"] for p in sorted(paths) for row in pq.read_table(os.path.join(out, p), columns=["id"]).to_pylist()]
        group = sorted((recs[(config, i)] for i in ids), key=lambda r: (r["id"], r["kernel_name"]))
        assert [r["id"] for r in group] == ids
        for k, p in enumerate(sorted(paths)):
            rows = [fmt.to_row(r, split, fmt.skeleton_hash(r["source"]), archs) for r in group[k * 9:(k + 1) * 9]]
            with open(os.path.join(out, p), "rb") as f:
                assert f.read() == _write_table_bytes(rows, fmt.arrow_schema(archs), os.path.join(TMP, "ref.parquet")), p
            multi += pq.ParquetFile(os.path.join(out, p)).num_row_groups > 1
        with open(os.path.join(out, "jsonl", config, f"{split}.jsonl"), encoding="utf-8") as f:
            assert f.read() == "".join(canonical_json(dict(r, split=split)) + "\n" for r in group)
    assert multi >= 2


class _Alive:
    """Counts the objects it wraps that are alive at once (`peak`) and all it wrapped (`total`)."""

    def __init__(self):
        self.now = self.peak = self.total = 0

    def track(self, obj):
        self.now, self.total = self.now + 1, self.total + 1
        self.peak = max(self.peak, self.now)
        weakref.finalize(obj, self._gone)
        return obj

    def _gone(self):
        self.now -= 1


class _Record(dict):
    __slots__ = ("__weakref__",)


class _RowGroup(list):
    __slots__ = ("__weakref__",)


def test_release_and_verify_hold_a_few_records_at_a_time(inputs, monkeypatch):
    """Every record the release parses (gating, the audit, writing) and every row group verify
    reads is counted while alive: a few at a time of 50, where the in-memory release held them all."""
    from schemas import dataset_format
    from tools import release_inputs

    records, groups = _Alive(), _Alive()
    decode = dataset_format.decode_line
    counted = lambda raw: (records.track(_Record(decode(raw)[0])), None)  # noqa: E731
    # the gate reads shards with dataset_format.read_lines; the release reads a gated line again itself
    monkeypatch.setattr(dataset_format, "decode_line", counted)
    monkeypatch.setattr(release_inputs, "decode_line", counted)
    row_groups = fmt.row_groups
    monkeypatch.setattr(fmt, "row_groups", lambda *a: (groups.track(_RowGroup(g)) for g in row_groups(*a)))
    monkeypatch.setattr(fmt, "ROW_GROUP_ROWS", 3)
    out = _tmp("dist_memory")
    assert release.main(["--in", *inputs, "--out", out, "--version", "1.0.0", "--jsonl"]) == 0
    m = read_manifest(out)
    assert records.total >= 2 * m["counts"]["records_out"] and records.peak <= 3, vars(records)
    assert verify.verify(out) == []
    assert groups.total >= m["counts"]["records_out"] / 3 and groups.peak <= 2, vars(groups)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
