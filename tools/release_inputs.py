"""Reads generator output directories for a release and refuses anything not fit to publish.

The gate, in the order it is applied: the directory holds a complete run (its manifest.json,
which must meet schemas/run_manifest.schema.json);
every shard on disk is listed there with the same sha256, size and record count (else it is
corrupt or unvalidated); every line is UTF-8 and parses; every record stays within the size and nesting bounds, meets the
pair schema, holds the generator's own spec for its (family, seed), passes the safety
allowlist and is its spec's rendering and the fields derived from the spec (id, name, dims, inputs),
carries `passed` for each check in `MUST_PASS` and no
`failed` verdict at all (`validator.verdicts.unpublishable`); the run's findings (its
adjoint_mismatch/ shards, listed in the manifest's `adjoint_mismatch` like the others) pass the same
gate except that a gradient check failed as gradient_mismatch and nothing else did, and go to the
release's adjoint_mismatch config; every record and input manifest carries one and the same toolchain;
every record has a canonical JSON form (no NaN or Infinity, no unpaired surrogate).
The first violation raises `GateError` with a one-line reason naming the file and record.

Records are gated one at a time and not kept: each leaves an entry in its input's `Entries` (its
keys, hashes, verdict statuses and where its line lies, packed: about 0.2 KB), so a release of
any size holds one record at a time; the
release reads a record back with `read_back` when it writes it.
"""

from __future__ import annotations

import array
import hashlib
import json
import os
import struct
from dataclasses import dataclass

import schemas
from schemas import files
from schemas.dataset_format import RUN_INFO, RUN_MANIFEST, canonical_json, decode_line, read_lines, run_files, run_manifest_violation
from tools import dedup, release_real
from validator import real as real_check
from tools import release_format as fmt
from validator.verdicts import (FINDINGS_CONFIG, check_bounds, check_consistency, check_safety, check_schema, check_spec,
                                check_spec_source, unpublishable)


class GateError(Exception):
    """A reason the inputs cannot be released (one line)."""


class Codes:
    """Small integers for the few distinct values entries share (targets, families, status sets,
    shard paths), one table for all inputs."""

    def __init__(self):
        self.values: list = []
        self.index: dict = {}

    def code(self, value) -> int:
        c = self.index.get(value)
        if c is None:
            c = self.index[value] = len(self.values)
            self.values.append(value)
        return c


# an entry: _FIXED (source sha256, IR sha256, line digest, skeleton hash, offset, the codes of
# shard, statuses, target and family), _TAIL (the lengths of what follows), then the bands, the
# seed (signed, little-endian), the id and the kernel name (UTF-8)
_FIXED = struct.Struct("<32s32s16s8sQIIII")
_TAIL = struct.Struct("<HBII")


class Entries:
    """What the release keeps of the gated records of one input, packed into one growing buffer
    (about 0.2 KB per record, one allocation for all of them): per record its sort key (target,
    family, seed, id, kernel_name), the exact-dedup hashes, its skeleton hash, its verdict
    statuses, its near-duplicate bands (`dedup.bands`) and where its line lies (shard path, byte
    offset, and a digest of the line so the record read back is the one gated). Indexing or
    iterating gives `Entry` views. (As one object per field, entries took about 1 KB per record
    of resident memory: 18 MB more at 20,000 records, and a million would not fit in 1 GB.)"""

    def __init__(self, threshold: float, codes: Codes):
        self.threshold, self.codes = threshold, codes
        self.data = bytearray()
        self.starts = array.array("Q")

    def add(self, r: dict, raw: bytes, shard: str, offset: int, config: str | None = None) -> None:
        """`config`: the release config the record goes to (default its target)."""
        c = self.codes.code
        skeleton = bytes.fromhex(fmt.skeleton_hash(r["source"]))
        statuses = tuple((check, v["status"]) for check, v in r["checks"].items())
        bands = dedup.bands(dedup.signature(r["source"], r["kernel_name"])[1], self.threshold)
        seed = r["seed"].to_bytes((r["seed"].bit_length() + 8) // 8, "little", signed=True)
        rid, name = r["id"].encode(), r["kernel_name"].encode()
        self.starts.append(len(self.data))
        self.data += _FIXED.pack(dedup.source_key(r), dedup.ir_key(r), _line_digest(raw), skeleton, offset,
                                 c(shard), c(statuses), c(config or r["target"]), c(r["family"]))
        self.data += _TAIL.pack(len(bands), len(seed), len(rid), len(name)) + bands + seed + rid + name

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> "Entry":
        if not 0 <= i < len(self.starts):
            raise IndexError(i)
        return Entry(self, i)

    def __iter__(self):
        return (Entry(self, i) for i in range(len(self.starts)))

    def _fixed(self, i: int) -> tuple:
        return _FIXED.unpack_from(self.data, self.starts[i])

    def _tail(self, i: int) -> tuple[bytes, int, str, str]:
        """(bands, seed, id, kernel_name) of entry i."""
        at = self.starts[i] + _FIXED.size
        nb, ns, ni, nn = _TAIL.unpack_from(self.data, at)
        at += _TAIL.size
        tail = bytes(self.data[at:at + nb + ns + ni + nn])
        return (tail[:nb], int.from_bytes(tail[nb:nb + ns], "little", signed=True),
                tail[nb + ns:nb + ns + ni].decode(), tail[nb + ns + ni:].decode())


class Entry:
    """One gated record of an `Entries`: `key` (target, family, seed, id, kernel_name),
    `source_key`, `ir_key`, `skeleton`, `statuses`, `bands`, `shard`, `offset`, `digest`.
    Equal when they stand for the same record of the same input."""

    __slots__ = ("_of", "_i")

    def __init__(self, of: Entries, i: int):
        self._of, self._i = of, i

    def __eq__(self, other) -> bool:
        return isinstance(other, Entry) and self._of is other._of and self._i == other._i

    def __hash__(self) -> int:
        return hash((id(self._of), self._i))

    @property
    def key(self) -> tuple:
        fixed, (_, seed, rid, name) = self._of._fixed(self._i), self._of._tail(self._i)
        values = self._of.codes.values
        return (values[fixed[7]], values[fixed[8]], seed, rid, name)

    source_key = property(lambda self: self._of._fixed(self._i)[0])
    ir_key = property(lambda self: self._of._fixed(self._i)[1])
    digest = property(lambda self: self._of._fixed(self._i)[2])
    skeleton = property(lambda self: self._of._fixed(self._i)[3].hex())
    offset = property(lambda self: self._of._fixed(self._i)[4])
    shard = property(lambda self: self._of.codes.values[self._of._fixed(self._i)[5]])
    statuses = property(lambda self: self._of.codes.values[self._of._fixed(self._i)[6]])
    bands = property(lambda self: self._of._tail(self._i)[0])


def _line_digest(raw: bytes) -> bytes:
    return hashlib.blake2b(raw, digest_size=16).digest()


def read_back(e: Entry) -> dict:
    """The record `e` stands for, read again from its shard; a line that changed since it was
    gated is a gate error."""
    with files.open_regular(e.shard) as f:
        f.seek(e.offset)
        raw = f.readline(files.MAX_LINE_BYTES + 1)
    if _line_digest(raw) != e.digest:
        raise GateError(f"{files.quote(e.shard)}: changed while the release read it (line at byte {e.offset})")
    return decode_line(raw)[0]


@dataclass
class InputDir:
    path: str            # as the user typed it (kept for the manifest and card)
    manifest: dict       # the generator's manifest.json
    manifest_sha256: str
    entries: Entries  # one per gated record, in shard and line order
    run: dict | None = None  # the run's run.json (timing, throughput), None when it has none


def _canonical(obj, where: str) -> str:
    """`canonical_json(obj)`; a value it refuses (NaN or Infinity) is a gate error, as is text
    that cannot be written as UTF-8 (an unpaired surrogate from a \\ud800 escape)."""
    try:
        text = canonical_json(obj)
        text.encode("utf-8")
    except (ValueError, UnicodeEncodeError) as e:
        raise GateError(f"{where}: not writable as canonical JSON ({type(e).__name__}: {str(e)[:100]})") from None
    return text


def _gate_record(r: dict, where: str, finding: bool = False) -> None:
    try:
        _gate_checks(r, where, finding)
    except RecursionError:  # e.g. a source of one long expression: Python's parser recurses
        raise GateError(f"{where}: record fails the gate: bounds: too deeply nested to check (recursion limit)") from None
    except MemoryError:
        raise GateError(f"{where}: record fails the gate: bounds: too large to check (out of memory)") from None


def _gate_checks(r: dict, where: str, finding: bool) -> None:
    """`finding`: a record of the run's FINDINGS_CONFIG directory (a wrong adjoint), held to that rule."""
    for check in (check_bounds, check_schema):
        verdict = check(r)
        if verdict["status"] != "passed":
            rid = r.get("id") if isinstance(r, dict) else None
            raise GateError(f"{where}: record {files.quote(rid, 40)} fails the gate: {files.quote(verdict['reason'], 300)}")
    why = unpublishable(r["checks"], finding)
    if why:
        raise GateError(f"{where}: record {r['id']} {why}")
    for check in (check_spec, lambda r: check_safety(r["source"]), check_spec_source, check_consistency):
        verdict = check(r)  # in this order: each assumes the ones before it passed
        if verdict["status"] != "passed":
            raise GateError(f"{where}: record {r['id']} fails the gate: {verdict['reason']}")


def read_input(path: str, shown: str, threshold: float, codes: Codes) -> InputDir:
    """One generator output directory, gated. `shown` is the path as the user typed it;
    `threshold` is the near-duplicate audit's (its LSH bands are cut for it); `codes` is
    shared by the entries of all inputs."""
    shown = files.quote(shown)
    if not os.path.isdir(path):
        raise GateError(f"--in {shown}: not a directory")
    mpath = os.path.join(path, RUN_MANIFEST)
    if not os.path.lexists(mpath):
        raise GateError(f"--in {shown}: no manifest.json (not a finished generator run)")
    try:
        raw = files.read_bytes(mpath, RUN_MANIFEST)
    except files.FileRefused as e:
        raise GateError(f"--in {shown}: {e}") from None
    manifest, why = files.decode_json(raw)
    if why:
        raise GateError(f"--in {shown}: manifest.json is unreadable ({why})")
    readable = schemas.load("pair")["properties"]["schema_version"]["enum"]  # older versions it admits
    if isinstance(manifest, dict) and manifest.get("record_schema_version") not in readable:
        raise GateError(f"--in {shown}: record schema {manifest.get('record_schema_version')} "
                        f"is not one of {', '.join(readable)}")
    problem = run_manifest_violation(manifest)  # the schema //validator holds a run's manifest to
    if problem:
        raise GateError(f"--in {shown}: manifest.json {problem}")
    try:  # the one file set of a run, the one //validator judges: what its manifest lists, nothing else
        run_files(path, manifest)
    except files.FileRefused as e:
        raise GateError(f"--in {shown}: {e}") from None
    listed = {s["path"]: s for s in manifest["shards"]}
    d = InputDir(shown, manifest, hashlib.sha256(raw).hexdigest(), Entries(threshold, codes), run=_read_run(path, shown))
    toolchain = _canonical(manifest["toolchain"], f"--in {shown}: manifest.json toolchain")
    for name in sorted(listed):
        _read_shard(d, path, shown, name, listed[name], toolchain)
    # the findings (a wrong adjoint, with its reproducer) go to their own config
    findings = {s["path"]: s for s in manifest["adjoint_mismatch"]["shards"]}
    n = sum(_read_shard(d, path, shown, name, findings[name], toolchain, FINDINGS_CONFIG) for name in sorted(findings))
    if n != manifest["adjoint_mismatch"]["records"]:
        raise GateError(f"--in {shown}: {FINDINGS_CONFIG} holds {n} records, manifest.json says "
                        f"{manifest['adjoint_mismatch']['records']}")
    if not d.entries:
        raise GateError(f"--in {shown}: no records")
    return d


def _read_shard(d: InputDir, path: str, shown: str, name: str, listed: dict, toolchain: str,
                config: str | None = None) -> int:
    """Gate every record of the listed shard `name` of input `d` into its entries; `config`:
    FINDINGS_CONFIG for the run's findings (default: the records' target). Returns the record count."""
    manifest = d.manifest
    spath = os.path.join(path, name)
    try:
        digest, size = files.sha256_file(spath, name)
    except files.FileRefused as e:
        raise GateError(f"--in {shown}: shard {e}") from None
    if digest != listed["sha256"] or size != listed["bytes"]:
        raise GateError(f"--in {shown}: shard {name} is corrupt (sha256/size differ from manifest.json)")
    n = 0
    for lineno, offset, raw, r, err in read_lines(spath):
        where = f"{shown}/{name}:{lineno}"
        if err:
            raise GateError(f"--in {shown}: {err}")  # corrupt: NAME:LINE: why
        _gate_record(r, where, config == FINDINGS_CONFIG)
        if r["target"] != manifest["generator"]["target"]:
            raise GateError(f"{where}: record {r['id']} has target {r['target']}, "
                            f"the run's is {manifest['generator']['target']}")
        if _canonical(r["toolchain"], f"{where}: record {r['id']} toolchain") != toolchain:
            raise GateError(f"{where}: record {r['id']} was built with another toolchain than "
                            f"its run ({_toolchain_diff(manifest['toolchain'], r['toolchain'])})")
        _canonical(r, f"{where}: record {r['id']}")  # the release writes it so (JSONL, JSON columns)
        d.entries.add(r, raw, spath, offset, config)
        n += 1
    if n != listed["records"]:
        raise GateError(f"--in {shown}: shard {name} holds {n} records, manifest.json says {listed['records']}")
    return n


def _read_run(path: str, shown: str) -> dict | None:
    """run.json (seconds, pairs/s, workers, stage seconds ...; older runs hold fewer keys)."""
    rpath = os.path.join(path, RUN_INFO)
    if not os.path.lexists(rpath):
        return None
    try:
        run = files.read_json(rpath, RUN_INFO)
    except files.FileRefused as e:
        raise GateError(f"--in {shown}: run.json is unreadable ({e})") from None
    if not isinstance(run, dict):
        raise GateError(f"--in {shown}: run.json is not a JSON object")
    return run


def _toolchain_diff(a: dict, b: dict) -> str:
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return ", ".join(f"{k}: {json.dumps(a.get(k), sort_keys=True)} vs {json.dumps(b.get(k), sort_keys=True)}"
                     for k in keys)


def read_inputs(paths: list[tuple[str, str]], threshold: float) -> list[InputDir]:
    """`paths`: (resolved path, path as typed) per --in. All must share one toolchain.
    `threshold`: the near-duplicate audit's."""
    seen = {}
    for real, shown in paths:
        key = os.path.realpath(real)
        if key in seen:
            raise GateError(f"--in {shown}: the same directory as --in {seen[key]}")
        seen[key] = shown
    codes = Codes()
    dirs = []
    for real, shown in paths:
        harvest = os.path.isdir(real) and real_check.harvest_manifest(real) is not None
        dirs.append(release_real.read_real_input(real, shown, Entries(threshold, codes), GateError) if harvest
                    else read_input(real, shown, threshold, codes))
    runs = [d for d in dirs if not isinstance(d, release_real.RealInput)]
    if not runs:
        raise GateError("no generator run among the --in directories: a harvest (the real config) is released "
                        "beside at least one run, whose toolchain the release records")
    first = runs[0]
    for d in dirs:
        if isinstance(d, release_real.RealInput) and d.wheel["warp_lang"] != first.manifest["toolchain"].get("warp_lang"):
            raise GateError(f"--in {d.path}: harvested from warp-lang {d.wheel['warp_lang']}, --in {first.path} was "
                            f"built with {files.quote(first.manifest['toolchain'].get('warp_lang'), 40)}")
    for d in runs[1:]:
        if canonical_json(d.manifest["toolchain"]) != canonical_json(first.manifest["toolchain"]):
            raise GateError(f"toolchains differ between --in {first.path} and --in {d.path} "
                            f"({_toolchain_diff(first.manifest['toolchain'], d.manifest['toolchain'])})")
    return dirs
