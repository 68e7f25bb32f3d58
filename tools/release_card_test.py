"""What a release says about itself (//tools:release on the small real runs of
tools/testing.py): every input record once, counted in and out; each skeleton in the one split
its hash gives; the card (README.md) carrying the computed numbers, the command that reproduces
the release, each run's run.json and the versions it holds with their release notes; the JSONL
export.
"""

import functools
import json
import os
import sys

import pytest

from tools.testing import (  # tmp_root sets datasets offline before it is imported
    release_fixtures, fresh_dir, read_manifest, read_records, tmp_root,
)

TMP = tmp_root("/tmp/release_card_test")

from schemas.files import md  # noqa: E402
from tools import release_format as fmt  # noqa: E402
from tools import verify  # noqa: E402

_tmp = functools.partial(fresh_dir, TMP)  # TMP/name, emptied
inputs, dist = release_fixtures(TMP)  # the small runs and their release (tools/testing.py)


def test_release_holds_every_input_record_once_and_verifies(inputs, dist):
    m = read_manifest(dist)
    n_in = sum(len(read_records(d)) for d in inputs)
    assert m["counts"]["records_in"] == n_in
    assert m["counts"]["records_out"] + m["dedup"]["removed_total"] == n_in
    assert set(m["counts"]["configs"]) == {"cpu", "cuda"}
    assert verify.verify(dist) == []
    # every skeleton lives in exactly one split, and that split follows from its hash
    import pyarrow.parquet as pq
    split_of_skeleton = {}
    for f in m["files"]:
        if f["path"].endswith(".parquet"):
            for row in pq.read_table(os.path.join(dist, f["path"]), columns=["skeleton_hash", "split"]).to_pylist():
                assert split_of_skeleton.setdefault(row["skeleton_hash"], row["split"]) == row["split"]
                assert fmt.split_of(row["skeleton_hash"]) == row["split"]
    # the card carries the computed numbers and the command that reproduces the release
    with open(os.path.join(dist, "README.md")) as f:
        card = f.read()
    assert card.startswith("---\nlicense: apache-2.0\n")
    assert f"{m['counts']['records_in']} records in, {m['counts']['records_out']} released." in card
    assert m["command"] in card and "--in" in m["command"]
    assert f"{m['near_duplicates']['cross_split_pairs']} across splits" in card
    assert "GPU execution ran: " in card
    # each input carries its run.json (throughput, stage timings) for the report
    for entry, d in zip(m["inputs"], inputs):
        with open(os.path.join(d, "run.json")) as f:
            assert entry["run"] == json.load(f)
        assert entry["run"]["pairs_per_s"] > 0 and "stage_seconds" in entry["run"]
        assert f"| {entry['run']['pairs_per_s']} ({entry['run']['workers']}) |" in card
    # the JSONL export is the gated records themselves
    with open(os.path.join(dist, "jsonl", "cpu", "train.jsonl")) as f:
        first = json.loads(f.readline())
    assert first["split"] == "train" and first["checks"]["execute_cpu"]["status"] == "passed"


def test_the_card_carries_the_release_notes_of_the_versions_it_holds(dist):
    import schemas

    m = read_manifest(dist)
    assert m["record_schema_version"] == schemas.PAIR_SCHEMA_VERSION
    assert m["manifest_version"] == schemas.RELEASE_MANIFEST_VERSION
    with open(os.path.join(dist, "README.md")) as f:
        card = f.read()
    section = card[card.index("## Versions"):card.index("## Reproduce")]
    pair_note = schemas.RELEASE_NOTES["pair"][schemas.PAIR_SCHEMA_VERSION]
    assert f"| {schemas.PAIR_SCHEMA_VERSION} | {md(pair_note)} |" in section  # table cells are escaped Markdown
    assert md(schemas.RELEASE_NOTES["release_manifest"][schemas.RELEASE_MANIFEST_VERSION]) in section
    assert md(schemas.RELEASE_NOTES["spec"][schemas.SPEC_VERSION]) in section
    for v, note in schemas.RELEASE_NOTES["pair"].items():  # the history, each version once
        assert section.count(note) + (section.count(md(note)) if md(note) != note else 0) == 1, v


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
