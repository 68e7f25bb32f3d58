"""Exact dedup and the near-duplicate audit on real records (tools/dedup.py): merged copies of
one run dedup to one; the kernel's name is ignored and equal IR is caught; a gated entry
(tools/release_inputs.py) gives back the keys, bands and line of its record; the audit counts
pairs within and across splits and finds exactly datasketch MinHashLSH's candidates.
"""

import copy
import functools
import json
import sys
import types

import pytest

from tools.testing import (  # tmp_root sets datasets offline before it is imported
    release_fixtures, fresh_copy, fresh_dir, read_manifest, read_records, release_cli, tmp_root,
)

TMP = tmp_root("/tmp/release_dedup_test")

from tools import dedup, verify  # noqa: E402
from tools import release_format as fmt  # noqa: E402

_tmp = functools.partial(fresh_dir, TMP)  # TMP/name, emptied
_copy = functools.partial(fresh_copy, TMP)  # a copy of src as TMP/name
inputs, _ = release_fixtures(TMP)  # the small runs (tools/testing.py)


def test_merged_copies_of_one_run_dedup_to_one(inputs, capsys):
    twin = _copy(inputs[0], "twin")
    out = _tmp("dist_twin")
    rc, err = release_cli(["--in", inputs[0], twin, "--out", out, "--version", "1.0.0"], capsys)
    assert rc == 0, err
    m = read_manifest(out)
    n = len(read_records(inputs[0]))
    assert m["counts"]["records_out"] == n
    assert m["dedup"]["removed"]["duplicate_source"] == n
    assert verify.verify(out) == []


def _entry(r):
    """The fields of a release entry (tools/release_inputs.py `Entry`) that exact dedup reads."""
    return types.SimpleNamespace(key=dedup.sort_key(r), source_key=dedup.source_key(r), ir_key=dedup.ir_key(r))


def test_exact_dedup_ignores_the_kernel_name_and_catches_equal_ir(inputs):
    r = read_records(inputs[0])[0]
    renamed = json.loads(json.dumps(r).replace(r["kernel_name"], r["kernel_name"][:-1] + "z"))
    renamed["seed"] = r["seed"] + 1  # sorts after r, so r is kept
    same_ir = copy.deepcopy(r)
    same_ir["source"] += "\n"
    same_ir["seed"] = r["seed"] + 2
    entries = [_entry(x) for x in (same_ir, renamed, r)]
    kept, info = dedup.exact_dedup(entries)
    assert kept == [entries[2]]
    assert info["removed"] == {"duplicate_source": 1, "duplicate_ir": 1}


def test_a_gated_entry_gives_back_the_record_s_keys_and_line(inputs):
    """The packed entries (tools/release_inputs.py `Entries`) give back, for every record, what
    dedup, the splits and the audit compute from the record itself, and its line; seeds at both
    ends of the schema's range survive the packing; an entry stays a few hundred bytes."""
    from tools import release_inputs

    dirs = release_inputs.read_inputs([(p, p) for p in inputs], 0.9)
    for d, path in zip(dirs, inputs):
        recs = read_records(path)
        assert len(d.entries) == len(recs) > 0
        for e, r in zip(d.entries, recs):
            assert e.key == dedup.sort_key(r)
            assert (e.source_key, e.ir_key) == (dedup.source_key(r), dedup.ir_key(r))
            assert e.skeleton == fmt.skeleton_hash(r["source"])
            assert e.bands == dedup.bands(dedup.signature(r["source"], r["kernel_name"])[1], 0.9)
            assert e.statuses == tuple((c, v["status"]) for c, v in r["checks"].items())
            assert release_inputs.read_back(e) == r
        assert len(d.entries.data) / len(d.entries) < 300, len(d.entries.data) / len(d.entries)
    store, r = dirs[0].entries, read_records(inputs[0])[0]
    for seed in (0, 2**63 - 1, 255, 256):
        store.add(dict(r, seed=seed), b"line", "shard-x.jsonl", 2**40 + seed)
        e = store[len(store) - 1]
        assert e.key[2] == seed and e.offset == 2**40 + seed and e.shard == "shard-x.jsonl"
    assert store[0] == store[0] and store[0] != store[1] and list(store)[-1] == e
    with pytest.raises(IndexError):
        store[len(store)]


def _audit(recs, splits, threshold=0.9):
    bands = [dedup.bands(dedup.signature(r["source"], r["kernel_name"])[1], threshold) for r in recs]
    return dedup.near_duplicates(bands, splits, [f"{r['target']}/{r['id']}" for r in recs],
                                 lambda i: (recs[i]["source"], recs[i]["kernel_name"]), threshold)


def test_near_duplicate_audit_counts_pairs_across_splits(inputs):
    r = read_records(inputs[0])[0]
    twin = copy.deepcopy(r)
    lines = twin["source"].splitlines()
    lines[-1] = lines[-1] + " + 0.0"  # one token pair more: a near twin, not an exact one
    twin["source"] = "\n".join(lines)
    far = read_records(inputs[1])[0]
    assert dedup.source_key(twin) != dedup.source_key(r)
    audit = _audit([r, twin, far], ["train", "test", "train"])
    assert (audit["pairs"], audit["cross_split_pairs"], audit["within_split_pairs"]) == (1, 1, 0)
    assert audit["clusters"] == 1 and audit["records_in_clusters"] == 2
    audit = _audit([r, twin, far], ["train", "train", "test"])
    assert (audit["cross_split_pairs"], audit["within_split_pairs"]) == (0, 1)


def test_the_audit_finds_the_candidates_of_datasketch_minhash_lsh(inputs):
    """The banding kept per record gives exactly MinHashLSH's candidate pairs (at a low threshold,
    so there are some), and the estimate is MinHash.jaccard's."""
    from datasketch import MinHash, MinHashLSH

    recs = read_records(inputs[0]) + read_records(inputs[1])
    lsh, hashes = MinHashLSH(threshold=0.5, num_perm=dedup.NUM_PERM), []
    for i, r in enumerate(recs):
        m = MinHash(num_perm=dedup.NUM_PERM, seed=dedup.MINHASH_SEED)
        m.update_batch([x.encode() for x in sorted(dedup.shingles(r["source"], r["kernel_name"]))])
        hashes.append(m)
        lsh.insert(i, m)
    want = {(min(i, j), max(i, j)) for i, m in enumerate(hashes) for j in lsh.query(m) if j != i}
    audit = _audit(recs, ["train"] * len(recs), 0.5)
    assert want and audit["candidate_pairs"] == len(want)
    assert audit["minhash_estimated_pairs"] == sum(hashes[i].jaccard(hashes[j]) >= 0.5 for i, j in want)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
