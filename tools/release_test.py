"""The publish gate: a small real dataset goes through //tools:release and //tools:verify.

Generates 30 CPU and 20 CUDA kernels with the real pipeline (compiled and executed), releases
them, loads the release with `datasets`, checks that releases are byte-identical, that tampering
is caught by verify, and that the gate refuses bad inputs with one line and leaves nothing.
"""

import copy
import glob
import hashlib
import json
import os
import shutil
import sys
import types
import weakref

import pytest

from tools.testing import fresh_dir, tmp_root  # noqa: E402 (sets datasets offline before it is imported)

TMP = tmp_root("/tmp/release_test")

import pipeline  # noqa: E402
from tools import dedup, release, verify  # noqa: E402
from tools import release_format as fmt  # noqa: E402
from schemas.dataset_format import canonical_json  # noqa: E402
from tools.testing import resign_shard  # noqa: E402
from schemas.files import md  # noqa: E402


def _tmp(name):
    return fresh_dir(TMP, name)


@pytest.fixture(scope="module")
def inputs():
    cpu, cuda = _tmp("in_cpu"), _tmp("in_cuda")
    pipeline.run(pipeline.RunConfig("cpu", 30, 3, cpu, ["arith", "branch"], workers=1, quiet=True, archs=["sm_90"]))
    pipeline.run(pipeline.RunConfig("cuda", 20, 3, cuda, ["stencil", "matvec"], workers=1, quiet=True, archs=["sm_90"]))
    return cpu, cuda


def _release(args, capsys):
    rc = release.main(args)
    err = capsys.readouterr().err
    return rc, err


@pytest.fixture(scope="module")
def dist(inputs):
    out = _tmp("dist")
    assert release.main(["--in", *inputs, "--out", out, "--version", "1.0.0", "--jsonl"]) == 0
    return out


def _manifest(d):
    with open(os.path.join(d, "manifest.json")) as f:
        return json.load(f)


def _records(d):
    out = []
    for name in sorted(glob.glob(os.path.join(d, "shard-*.jsonl"))):
        with open(name) as f:
            out += [json.loads(line) for line in f]
    return out


def test_release_holds_every_input_record_once_and_verifies(inputs, dist):
    m = _manifest(dist)
    n_in = sum(len(_records(d)) for d in inputs)
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

    m = _manifest(dist)
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


def test_load_dataset_gives_the_manifest_counts(dist):
    import datasets

    m = _manifest(dist)
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


def _copy(src, name):
    dst = _tmp(name)
    shutil.copytree(src, dst)
    return dst


def _shard(d):
    m = _manifest(d)
    return next(f for f in m["files"] if f["path"].endswith(".parquet") and f["rows"] > 0)["path"]


def test_verify_fails_on_a_flipped_byte(dist, capsys):
    d = _copy(dist, "tamper_flip")
    path = os.path.join(d, _shard(d))
    with open(path, "r+b") as f:
        f.seek(os.path.getsize(path) // 2)
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 0x01]))
    problems = verify.verify(d)
    assert problems and "sha256" in problems[0] and _shard(d) in problems[0]
    assert verify.main([d]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_verify_fails_on_a_deleted_shard(dist):
    d = _copy(dist, "tamper_delete")
    os.remove(os.path.join(d, _shard(d)))
    problems = verify.verify(d)
    assert any("missing" in p for p in problems)
    assert any(p.startswith("counts:") for p in problems)


def test_verify_fails_on_an_edited_count(dist):
    d = _copy(dist, "tamper_count")
    m = _manifest(d)
    m["counts"]["configs"]["cpu"]["splits"]["train"] += 1
    m["counts"]["configs"]["cpu"]["records"] += 1
    m["counts"]["records_out"] += 1
    with open(os.path.join(d, "manifest.json"), "w") as f:
        json.dump(m, f)
    problems = verify.verify(d)
    assert any("counts: cpu/train" in p for p in problems)


def test_verify_fails_on_a_re_signed_forged_row(dist):
    """Checksums alone would pass: the shard is rewritten and re-listed with its new sha256."""
    import pyarrow.parquet as pq

    d = _copy(dist, "tamper_forge")
    rel = _shard(d)
    rows = pq.read_table(os.path.join(d, rel)).to_pylist()
    rows[0]["source"] = rows[0]["source"].replace("wp.tid()", "wp.tid() ", 1)
    m = _manifest(d)
    resign_shard(d, rel, rows, m)
    problems = verify.verify(d)
    assert len(problems) == 1 and "spec_source" in problems[0] and rows[0]["id"] in problems[0], problems


def test_the_validator_re_executes_a_downloaded_release_and_catches_what_verify_cannot(dist, capsys):
    """`//validator -- DIST` on a release (its Parquet files: no run directory): every record is
    re-executed and passes, and the report goes beside the release (a file added to it would fail
    verify). A coherent forgery, one row's stored outputs changed and its shard re-signed, passes
    verify (nothing there executes) and fails the validator, by row and id."""
    import numpy as np
    import pyarrow.parquet as pq
    from validator import revalidate

    report = revalidate.revalidate(dist, gpu=False, workers=2)
    assert report["kind"] == "release" and report["failed"] == 0, report["failures"][:3]
    assert report["records"] == _manifest(dist)["counts"]["records_out"] and report["findings"]["records"] == 0
    d = _copy(dist, "forged_outputs")
    rel = _shard(d)
    rows = pq.read_table(os.path.join(d, rel)).to_pylist()
    outs = json.loads(rows[0]["outputs"])
    name = sorted(outs)[0]
    flat = np.array(outs[name]["data"]).ravel()
    flat[0] = flat[0] + 1
    outs[name]["data"] = flat.reshape(outs[name]["shape"]).tolist()
    rows[0]["outputs"] = canonical_json(outs)
    resign_shard(d, rel, rows, _manifest(d))
    assert verify.verify(d) == []
    assert revalidate.main([d, "--device", "cpu", "--quiet"]) == 1
    out = capsys.readouterr().out
    assert f"{report['records']} records: {report['records'] - 1} passed, 1 failed" in out
    assert f"{rel}:1 {rows[0]['id']}: io: stored output {name} differs from a fresh CPU execution" in out, out
    assert os.path.isfile(d + ".validation_report.json") and verify.verify(d) == []


def test_verify_fails_on_an_unlisted_file_and_a_broken_manifest(dist):
    d = _copy(dist, "tamper_extra")
    shutil.copy(os.path.join(d, _shard(d)), os.path.join(d, "data", "cpu", "train-00009-of-00009.parquet"))
    assert any("not listed" in p for p in verify.verify(d))
    m = _manifest(d)
    del m["files"]
    with open(os.path.join(d, "manifest.json"), "w") as f:
        json.dump(m, f)
    assert "manifest schema" in verify.verify(d)[0]


# ---- the gate: refused with one line, nothing left behind


def _rewrite(d, edit, shards=1):
    """Apply `edit(records)` to the first `shards` shards of input `d` and re-sign them in d's
    manifest, so only the gate's record checks (not the checksums) can catch the change."""
    m = _manifest(d)
    for shard in m["shards"][:shards]:
        path = os.path.join(d, shard["path"])
        with open(path) as f:
            recs = [json.loads(line) for line in f]
        edit(recs)
        data = "".join(json.dumps(r, sort_keys=True) + "\n" for r in recs).encode()
        with open(path, "wb") as f:
            f.write(data)
        shard.update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest(), records=len(recs))
    with open(os.path.join(d, "manifest.json"), "w") as f:
        json.dump(m, f)
    return m


def _refused(args, capsys, out, *words):
    rc, err = _release(args + ["--out", out], capsys)
    assert rc != 0, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for w in words:
        assert w in err, err
    assert not os.path.exists(out)
    assert not [n for n in os.listdir(os.path.dirname(out)) if n.startswith(".release-")]
    return err


def test_run_json_is_optional_but_must_parse(inputs, capsys):
    old = _copy(inputs[0], "no_run_json")
    os.remove(os.path.join(old, "run.json"))  # a run that predates run.json: carried as null
    out = _tmp("out_no_run")
    rc, err = _release(["--in", old, "--out", out, "--version", "1.0.0"], capsys)
    assert rc == 0, err
    assert _manifest(out)["inputs"][0]["run"] is None and verify.verify(out) == []
    with open(os.path.join(old, "run.json"), "w") as f:
        f.write("{not json")
    _refused(["--in", old, "--version", "1.0.0"], capsys, _tmp("out_bad_run"), "run.json is unreadable")


def test_gate_refuses_a_record_without_a_passing_verdict(inputs, capsys):
    bad = _copy(inputs[0], "bad_verdict")

    def fail_one(recs):
        recs[0]["checks"]["execute_cpu"] = {"status": "failed", "reason": "outputs differ"}

    _rewrite(bad, fail_one)
    _refused(["--in", bad, inputs[1], "--version", "1.0.0"], capsys, _tmp("out_verdict"), "execute_cpu")


def test_gate_refuses_a_codegen_only_run(capsys):
    fast = _tmp("no_validate")
    pipeline.run(pipeline.RunConfig("cpu", 4, 3, fast, ["arith"], workers=1, quiet=True, archs=["sm_90"], validate=False))
    _refused(["--in", fast, "--version", "1.0.0"], capsys, _tmp("out_fast"), "no passing verdict", "--no-validate")


def test_gate_refuses_a_record_that_breaks_the_schema(inputs, capsys):
    bad = _copy(inputs[0], "bad_schema")

    def drop_field(recs):
        del recs[1]["dim"]

    _rewrite(bad, drop_field)
    _refused(["--in", bad, "--version", "1.0.0"], capsys, _tmp("out_schema"), "schema", "dim")


def test_gate_refuses_a_record_whose_fields_do_not_follow_from_its_spec(inputs, capsys):
    bad = _copy(inputs[0], "bad_id")

    def forge_id(recs):
        recs[2]["id"] = "0123456789abcdef"

    _rewrite(bad, forge_id)
    _refused(["--in", bad, "--version", "1.0.0"], capsys, _tmp("out_id"), "consistency", "0123456789abcdef")


def test_gate_refuses_a_run_manifest_that_breaks_its_schema(inputs, capsys):
    for name, edit, words in (("key", lambda m: m.pop("validation_notes"), "'validation_notes' is a required property"),
                              ("type", lambda m: m["counts"].update(rejected="0"), "at counts/rejected")):
        bad = _copy(inputs[0], f"bad_run_manifest_{name}")
        m = _manifest(bad)
        edit(m)
        with open(os.path.join(bad, "manifest.json"), "w") as f:
            json.dump(m, f)
        _refused(["--in", bad, "--version", "1.0.0"], capsys, _tmp(f"out_run_manifest_{name}"),
                 "manifest.json breaks schemas/run_manifest.schema.json", words)


def test_gate_refuses_a_record_the_canonical_encoding_cannot_write(inputs, capsys):
    # json.loads reads NaN, and a \ud800 escape as an unpaired surrogate; neither has a canonical
    # JSON (UTF-8) form, so neither may reach the release's JSONL or JSON columns
    for name, edit in (("nan", lambda recs: recs[0]["checks"]["execute_cpu"].update(max_abs_diff=float("nan"))),
                       ("surrogate", lambda recs: recs[0]["checks"]["schema"].update(reason="\ud800"))):
        bad = _copy(inputs[0], f"not_canonical_{name}")
        _rewrite(bad, edit)
        _refused(["--in", bad, "--version", "1.0.0"], capsys, _tmp(f"out_not_canonical_{name}"),
                 "not writable as canonical JSON", "shard-00000.jsonl:1")


def test_gate_refuses_different_toolchains(inputs, capsys):
    # a whole run made with another Warp: consistent in itself, but not with the CPU run
    other = _copy(inputs[1], "other_toolchain")

    def older_all(recs):
        for r in recs:
            r["toolchain"] = dict(r["toolchain"], warp_lang="1.18.0")

    m = _rewrite(other, older_all, shards=len(_manifest(other)["shards"]))
    m["toolchain"]["warp_lang"] = "1.18.0"
    with open(os.path.join(other, "manifest.json"), "w") as f:
        json.dump(m, f)
    assert _release(["--in", other, "--out", _tmp("out_tc0"), "--version", "1.0.0"], capsys)[0] == 0
    _refused(["--in", inputs[0], other, "--version", "1.0.0"], capsys, _tmp("out_tc"), "toolchains differ", "warp_lang")
    # a record built with another toolchain than its run is refused as well
    mixed = _copy(inputs[0], "mixed_toolchain")

    def older(recs):
        recs[0]["toolchain"] = dict(recs[0]["toolchain"], warp_lang="1.18.0")

    _rewrite(mixed, older)
    _refused(["--in", mixed, "--version", "1.0.0"], capsys, _tmp("out_tc2"), "another toolchain")


def test_gate_refuses_a_corrupt_shard_and_bad_arguments(inputs, capsys):
    bad = _copy(inputs[0], "corrupt")
    path = os.path.join(bad, _manifest(bad)["shards"][0]["path"])
    with open(path, "r+b") as f:
        f.write(b"#")  # the first byte of the first record
    out = _tmp("out_bad")
    _refused(["--in", bad, "--version", "1.0.0"], capsys, out, "corrupt")
    _refused(["--in", _tmp("nowhere"), "--version", "1.0.0"], capsys, out, "not a directory")
    _refused(["--in", inputs[0], inputs[0], "--version", "1.0.0"], capsys, out, "same directory")
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
    rc, err = _release(["--in", inputs[0], "--out", out, "--version", "1.0.0"], capsys)
    assert rc == 2 and "not a previous release" in err and os.listdir(out) == ["notes.txt"]


# ---- dedup and the near-duplicate audit on real records


def test_merged_copies_of_one_run_dedup_to_one(inputs, capsys):
    twin = _copy(inputs[0], "twin")
    out = _tmp("dist_twin")
    rc, err = _release(["--in", inputs[0], twin, "--out", out, "--version", "1.0.0"], capsys)
    assert rc == 0, err
    m = _manifest(out)
    n = len(_records(inputs[0]))
    assert m["counts"]["records_out"] == n
    assert m["dedup"]["removed"]["duplicate_source"] == n
    assert verify.verify(out) == []


def _entry(r):
    """The fields of a release entry (tools/release_inputs.py `Entry`) that exact dedup reads."""
    return types.SimpleNamespace(key=dedup.sort_key(r), source_key=dedup.source_key(r), ir_key=dedup.ir_key(r))


def test_exact_dedup_ignores_the_kernel_name_and_catches_equal_ir(inputs):
    r = _records(inputs[0])[0]
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
        recs = _records(path)
        assert len(d.entries) == len(recs) > 0
        for e, r in zip(d.entries, recs):
            assert e.key == dedup.sort_key(r)
            assert (e.source_key, e.ir_key) == (dedup.source_key(r), dedup.ir_key(r))
            assert e.skeleton == fmt.skeleton_hash(r["source"])
            assert e.bands == dedup.bands(dedup.signature(r["source"], r["kernel_name"])[1], 0.9)
            assert e.statuses == tuple((c, v["status"]) for c, v in r["checks"].items())
            assert release_inputs.read_back(e) == r
        assert len(d.entries.data) / len(d.entries) < 300, len(d.entries.data) / len(d.entries)
    store, r = dirs[0].entries, _records(inputs[0])[0]
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
    r = _records(inputs[0])[0]
    twin = copy.deepcopy(r)
    lines = twin["source"].splitlines()
    lines[-1] = lines[-1] + " + 0.0"  # one token pair more: a near twin, not an exact one
    twin["source"] = "\n".join(lines)
    far = _records(inputs[1])[0]
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

    recs = _records(inputs[0]) + _records(inputs[1])
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
    m = _manifest(out)
    archs = m["toolchain"]["ptx_archs"]
    recs = {(r["target"], r["id"]): r for d in inputs for r in _records(d)}
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
    m = _manifest(out)
    assert records.total >= 2 * m["counts"]["records_out"] and records.peak <= 3, vars(records)
    assert verify.verify(out) == []
    assert groups.total >= m["counts"]["records_out"] / 3 and groups.peak <= 2, vars(groups)


# ---- findings: the runs' adjoint_mismatch records, published as their own config

MISMATCH = {"status": "failed", "reason": "gradient_mismatch: direction 0: Warp's <g, v> = 1.5, the oracle's "
                                          "finite differences 0.75 (planted by the test)"}


def _with_finding(src, name, edit=None):
    """A copy of the run `src` in which one record with a passing gradient check has moved from
    its shard to adjoint_mismatch/shard-00000.jsonl, its execute_backward_cpu made a
    gradient_mismatch (no generated kernel has shown a real one), and both shards re-listed in
    the run's manifest; `edit(record)` changes the moved record further. Returns (run, record)."""
    d = _copy(src, name)
    moved = []

    def take(recs):
        k = next(k for k, r in enumerate(recs) if r["checks"]["execute_backward_cpu"]["status"] == "passed")
        moved.append(recs.pop(k))

    m = _rewrite(d, take)
    r = moved[0]
    r["checks"]["execute_backward_cpu"] = dict(MISMATCH)
    if edit:
        edit(r)
    os.makedirs(os.path.join(d, "adjoint_mismatch"))
    data = (canonical_json(r) + "\n").encode()
    with open(os.path.join(d, "adjoint_mismatch", "shard-00000.jsonl"), "wb") as f:
        f.write(data)
    m["adjoint_mismatch"] = {"records": 1, "shards": [{"path": "adjoint_mismatch/shard-00000.jsonl", "records": 1,
                                                       "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}]}
    with open(os.path.join(d, "manifest.json"), "w") as f:
        json.dump(m, f)
    return d, r


def test_findings_are_published_as_their_own_config_and_verify(inputs, capsys):
    import pyarrow.parquet as pq

    run, finding = _with_finding(inputs[0], "with_finding")
    out = _tmp("out_finding")
    rc, err = _release(["--in", run, inputs[1], "--out", out, "--version", "1.0.0", "--jsonl"], capsys)
    assert rc == 0, err
    m = _manifest(out)
    assert set(m["counts"]["configs"]) == {"cpu", "cuda", "adjoint_mismatch"}
    assert m["counts"]["configs"]["adjoint_mismatch"]["records"] == 1
    assert m["validation"]["verdicts"]["adjoint_mismatch"]["execute_backward_cpu"] == {"failed": 1}
    assert "failed" not in m["validation"]["verdicts"]["cpu"]["execute_backward_cpu"]
    rows = [row for f in m["files"] if f["path"].startswith("data/adjoint_mismatch/")
            for row in pq.read_table(os.path.join(out, f["path"])).to_pylist()]
    assert [(r["id"], r["target"]) for r in rows] == [(finding["id"], "cpu")]
    assert json.loads(rows[0]["checks"])["execute_backward_cpu"] == MISMATCH
    assert json.loads(rows[0]["grad"]) == finding["grad"]  # the reproducer travels with it
    cpu_ids = {r["id"] for f in m["files"] if f["path"].startswith("data/cpu/")
               for r in pq.read_table(os.path.join(out, f["path"]), columns=["id"]).to_pylist()}
    assert finding["id"] not in cpu_ids
    with open(os.path.join(out, "README.md")) as f:
        card = f.read()
    assert "config_name: adjoint_mismatch" in card and "is not training data: its 1 pairs" in card
    assert 'data_dir="data/cpu"' in card
    assert verify.verify(out) == []
    # //validator on the release re-checks the finding by its rule: a planted one does not reproduce
    from validator import revalidate

    assert revalidate.main([out, "--device", "cpu", "--workers", "2", "--quiet"]) == 1
    printed = capsys.readouterr().out
    assert "of which 1 findings (adjoint_mismatch/, held to their own rule): 0 reproduced, 1 failed" in printed, printed
    with open(out + ".validation_report.json") as f:
        report = json.load(f)
    assert report["findings"] == {"records": 1, "failed": 1} and report["failed"] == 1, report["failures"]
    assert report["failures"][0]["where"].startswith("data/adjoint_mismatch/")
    assert report["failures"][0]["reason"].startswith("finding: the stored gradient_mismatch does not reproduce")

    # verify: the finding re-signed into the cpu config, and a passing row into adjoint_mismatch
    for name, into, row_from, words in (("tamper_finding_in_cpu", "data/cpu/", "adjoint_mismatch", "failed verdict for execute_backward_cpu"),
                                        ("tamper_passed_in_findings", "data/adjoint_mismatch/", "cpu", "no gradient check failed")):
        d = _copy(out, name)
        dm = _manifest(d)
        target = next(f for f in dm["files"] if f["path"].startswith(into) and f["path"].endswith(".parquet"))
        donor = next(f for f in dm["files"] if f["path"].startswith(f"data/{row_from}/") and f["path"].endswith(".parquet"))
        moved = dict(pq.read_table(os.path.join(d, donor["path"])).to_pylist()[0], split=target["split"])
        kept = pq.read_table(os.path.join(d, target["path"])).to_pylist()
        # the moved row replaces one, so every count still adds up and only the verdict rule can tell
        moved["split"] = kept[0]["split"]
        rows_now = [moved] + kept[1:]
        resign_shard(d, target["path"], rows_now, dm)
        problems = verify.verify(d)
        assert any(words in p and moved["id"] in p for p in problems), problems


def test_the_gate_holds_findings_to_their_rule(inputs, capsys):
    # a "finding" whose gradient check passed: not a finding
    run, _ = _with_finding(inputs[0], "finding_passed",
                           lambda r: r["checks"].update(execute_backward_cpu={"status": "passed"}))
    _refused(["--in", run, "--version", "1.0.0"], capsys, _tmp("out_f1"), "adjoint_mismatch",
             "no gradient check failed as gradient_mismatch")
    # a finding whose forward run failed too
    run, _ = _with_finding(inputs[0], "finding_cpu_failed",
                           lambda r: r["checks"].update(execute_cpu={"status": "failed", "reason": "execute_cpu: x"}))
    _refused(["--in", run, "--version", "1.0.0"], capsys, _tmp("out_f2"), "no passing verdict for execute_cpu")
    # a gradient failure of another kind is not a finding
    run, _ = _with_finding(inputs[0], "finding_other_reason", lambda r: r["checks"].update(
        execute_backward_cpu={"status": "failed", "reason": "execute_backward_cpu: RuntimeError: x"}))
    _refused(["--in", run, "--version", "1.0.0"], capsys, _tmp("out_f3"), "failed verdict for execute_backward_cpu")
    # a findings file the manifest does not list, and a listed count that is wrong
    run, _ = _with_finding(inputs[0], "finding_unlisted")
    shutil.copy(os.path.join(run, "adjoint_mismatch", "shard-00000.jsonl"), os.path.join(run, "adjoint_mismatch", "shard-00001.jsonl"))
    _refused(["--in", run, "--version", "1.0.0"], capsys, _tmp("out_f4"), "adjoint_mismatch/shard-00001.jsonl",
             "unvalidated")
    run, _ = _with_finding(inputs[0], "finding_count")
    m = _manifest(run)
    m["adjoint_mismatch"]["records"] = 2
    with open(os.path.join(run, "manifest.json"), "w") as f:
        json.dump(m, f)
    _refused(["--in", run, "--version", "1.0.0"], capsys, _tmp("out_f5"), "adjoint_mismatch holds 1 records")
    # and a main-config record with a gradient mismatch is refused as before
    bad = _copy(inputs[0], "mismatch_in_main")
    _rewrite(bad, lambda recs: recs[0]["checks"].update(execute_backward_cpu=dict(MISMATCH)))
    _refused(["--in", bad, "--version", "1.0.0"], capsys, _tmp("out_f6"), "failed verdict for execute_backward_cpu")


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
