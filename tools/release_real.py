"""The `real` config of a release: kernels of the installed warp-lang wheel, as //harvest wrote
them (harvest.jsonl beside a manifest.json whose origin is `real`).

A harvest given to //tools:release with `--in` is gated like a run, by what can be checked
without running anything: its files by the file rule, every line by schemas/real.schema.json,
harvest.jsonl's sha256 the manifest's, every record's provenance resolved inside the installed
wheel (validator/real.py `WheelFiles`: the path one of the files //harvest reads, its sha256
the file's, the wheel's version and licence), and every stored source equal to the standalone
cut //harvest makes of the wheel's text at the record's (path, lines) (`WheelCuts`: read
with `ast`, nothing imported). The stored text is never imported or compiled here; //validator
re-lowers a release's real rows from the wheel (validator/real_release.py).

A record is published when Warp generated its code and both compilers took it (compile.cpu and
compile.cuda passed); every other record is counted in the manifest by reason, and the published
ones whose recorded launch replayed (execute.replay_cpu passed) are counted as `replayed`. The config's
rows have their own columns (`COLUMNS`): a real kernel has no spec, seed, inputs or oracle.
"""

from __future__ import annotations

import collections
import hashlib
import os
from dataclasses import dataclass, field

import pyarrow as pa

import schemas
from schemas import files
from schemas.dataset_format import REAL_CONFIG, canonical_json
from schemas.release_rows import to_real_record  # noqa: F401 (re-exported for //tools:verify)
from tools import release_format as fmt
from validator import real as real_check

SCHEMA_VERSION = schemas.REAL_SCHEMA_VERSION
COLUMNS = [
    ("id", pa.string(), "sha256 prefix of the kernel's provenance (path, lines, overload)"),
    ("origin", pa.string(), "real: a kernel the warp-lang wheel defines (//harvest)"),
    ("wheel_dir", pa.string(), "the wheel's folder it comes from: examples, tests or _src (the config's 'family')"),
    ("kernel_name", pa.string(), "the @wp.kernel function's name"),
    ("overload", pa.string(), "a generic kernel's overload the wheel declares (Warp's argument-type signature); null otherwise"),
    ("source", pa.string(), "the standalone source: the kernel as the wheel writes it, with what it needs"),
    ("ir_cpp_forward", pa.string(), "Warp's C++ (CPU backend), forward"),
    ("ir_cpp_backward", pa.string(), "Warp's C++ (CPU backend), backward (null for a kernel without one)"),
    ("ir_cuda_forward", pa.string(), "Warp's CUDA C++ as NVRTC compiled it, forward"),
    ("ir_cuda_backward", pa.string(), "Warp's CUDA C++, backward (null for a kernel without one)"),
]
TAIL = [
    ("provenance", pa.string(), "path inside the wheel, lines [first, last], the file's sha256, warp_lang, license, "
                                "extraction (verbatim or standalone, with what was added) (JSON)"),
    ("ir_order", pa.string(), "module, or sorted: the wheel's own helpers Warp emitted in a varying order, sorted"),
    ("compile", pa.string(), "compile verdicts: cpu (LLVM) and cuda (NVRTC), both passed for every row (JSON)"),
    ("launch", pa.string(), "the first CPU launch of the kernel by the wheel's own tests: dim, block_dim, each argument "
                            "(arrays as base64 bytes before and after, dtype, shape; values as bytes) (JSON; null when "
                            "none was recorded)"),
    ("execute", pa.string(), "replay_cpu: the kernel launched again on the CPU with the recorded arguments left every "
                             "array as the wheel's run did (passed), or why not (JSON)"),
    ("skeleton_hash", pa.string(), "sha256 prefix of the AST skeleton (identifiers and literals abstracted)"),
    ("split", pa.string(), "train, validation or test (from skeleton_hash)"),
]


def columns(ptx_archs: list[str]) -> list[tuple[str, pa.DataType, str]]:
    return fmt.columns(ptx_archs, COLUMNS, TAIL)


def arrow_schema(ptx_archs: list[str]) -> pa.Schema:
    return fmt.arrow_schema(ptx_archs, COLUMNS, TAIL)


def real_id(rec: dict) -> str:
    p = rec["provenance"]
    return hashlib.sha256(f"{p['path']}:{p['lines'][0]}-{p['lines'][1]}#{rec['overload'] or ''}".encode()).hexdigest()[:16]


def wheel_dir(rec: dict) -> str:
    return rec["provenance"]["path"].split("/")[1]


def to_row(r: dict, split: str, skel_hash: str, ptx_archs: list[str]) -> dict:
    ir = r["ir"]
    row = {"id": real_id(r), "origin": r["origin"], "wheel_dir": wheel_dir(r), "kernel_name": r["name"],
           "overload": r["overload"], "source": r["source"],
           "ir_cpp_forward": ir["cpp"]["forward"], "ir_cpp_backward": ir["cpp"]["backward"],
           "ir_cuda_forward": ir["cuda"]["forward"], "ir_cuda_backward": ir["cuda"]["backward"]}
    for a in sorted(ptx_archs):
        row[f"ptx_{a}"] = ir["ptx"][a]["forward"]
    row.update({"provenance": canonical_json(r["provenance"]), "ir_order": r["ir_order"],
                "compile": canonical_json(r["compile"]), "launch": canonical_json(r["launch"]),
                "execute": canonical_json(r["execute"]), "skeleton_hash": skel_hash, "split": split})
    return row


def source_problem(rec: dict, cut) -> str | None:
    """Why the record's source is not the wheel's text at its provenance as //harvest cuts it
    (`cut`: validator/real.py `WheelCuts`), or None."""
    p = rec["provenance"]
    at = f"{p['path']}:{p['lines'][0]}-{p['lines'][1]}"
    source = cut.source_at(p["path"], p["lines"])
    if source is False:
        return f"the installed wheel defines no kernel at {at}"
    if source != rec["source"]:
        return f"the stored source is not the wheel's text at {at} as //harvest cuts it"
    return None


def left_out(rec: dict) -> str | None:
    """Why a record is not published (None: it is)."""
    if rec["ir"] is None:
        return "no_code_generated"
    if rec["compile"]["cpu"]["status"] != "passed":
        return "cpu_compile_failed"
    if rec["compile"]["cuda"]["status"] != "passed":
        return "cuda_compile_failed"
    return None


def entry_view(rec: dict) -> dict:
    """The fields a release entry (tools/release_inputs.py `Entries.add`) reads, for a real record."""
    return {"source": rec["source"], "kernel_name": rec["name"], "ir": rec["ir"], "seed": 0, "id": real_id(rec),
            "target": REAL_CONFIG, "family": wheel_dir(rec),
            "checks": {f"compile_{t}": rec["compile"][t] for t in ("cpu", "cuda")}}


@dataclass
class RealInput:
    path: str            # as the user typed it
    manifest: dict       # the harvest's manifest.json
    manifest_sha256: str
    entries: object      # tools/release_inputs.py Entries, one per published record
    archs: list[str] = field(default_factory=list)
    records: int = 0
    replayed: int = 0  # published records whose recorded launch replayed (execute.replay_cpu passed)
    left_out: collections.Counter = field(default_factory=collections.Counter)
    wheel: dict = field(default_factory=dict)  # the installed wheel the provenance resolved in

    def to_json(self) -> dict:
        """What the release manifest says of this input: only what the gate checked or counted."""
        return {"path": self.path, "manifest_sha256": self.manifest_sha256,
                "harvest_sha256": self.manifest["harvest_sha256"], "warp_lang": self.wheel["warp_lang"],
                "license": self.wheel["license"], "limit": self.manifest.get("limit"), "under": self.manifest.get("under"),
                "records": self.records,
                "published": len(self.entries), "replayed": self.replayed, "left_out_by_reason": dict(sorted(self.left_out.items()))}


def read_real_input(path: str, shown: str, entries, gate_error) -> RealInput:
    """The harvest at `path`, gated; its publishable records added to `entries`. `gate_error`:
    the exception class a refusal raises (one line). manifest.json and harvest.jsonl are each read
    once: the manifest hashed is the one decoded, the line an entry points at the record gated."""
    shown = files.quote(shown)
    lines: dict = {}
    try:
        raw = files.read_bytes(os.path.join(path, real_check.RUN_MANIFEST), real_check.RUN_MANIFEST)
        stored, failures, digest = real_check.read_stored(path, lines)
    except (files.FileRefused, real_check.HarvestRefused) as e:
        raise gate_error(f"--in {shown}: {e}") from None
    m, why = files.decode_json(raw)
    if why or not isinstance(m, dict) or m.get("origin") != real_check.harvest_run.ORIGIN:
        raise gate_error(f"--in {shown}: manifest.json is not a harvest's ({why or 'origin is not real'})")
    if failures:
        raise gate_error(f"--in {shown}: {failures[0]['where']}: {files.quote(failures[0]['reason'], 300)}")
    if digest != m.get("harvest_sha256"):
        raise gate_error(f"--in {shown}: harvest.jsonl's sha256 is not the manifest's harvest_sha256 "
                         f"(edited after //harvest wrote it)")
    if (why := real_check.selection_problem(m)) is not None:
        raise gate_error(f"--in {shown}: manifest.json {why}")
    resolver = real_check.WheelFiles(real_check.disc.wheel())
    for where, rec in stored:
        if (why := resolver.problem(f"{shown}/{where}", rec)) is not None:
            raise gate_error(why)
    cut = real_check.WheelCuts()
    d = RealInput(shown, m, hashlib.sha256(raw).hexdigest(), entries, records=len(stored), wheel=resolver.wheel)
    _add_records(d, path, shown, stored, lines, cut, gate_error)
    if not d.entries:
        raise gate_error(f"--in {shown}: no record of the harvest is publishable "
                         f"({', '.join(f'{k} {n}' for k, n in sorted(d.left_out.items())) or 'it is empty'})")
    return d


def _add_records(d: RealInput, path: str, shown: str, stored: list, lines: dict, cut, gate_error) -> None:
    """Each stored record's source checked against the wheel's cut, then published (its entry
    points at its line, `lines`: where -> (offset, raw)) or counted."""
    records = os.path.join(path, real_check.harvest_run.RECORDS)
    for where, rec in stored:
        if (why := source_problem(rec, cut)) is not None:
            raise gate_error(f"{shown}/{where}: {why}")
        why = left_out(rec)
        if why:
            d.left_out[why] += 1
            continue
        archs = sorted(rec["ir"]["ptx"])
        if d.archs and archs != d.archs:
            raise gate_error(f"{shown}/{where}: PTX for {', '.join(archs)}, the harvest's other records for {', '.join(d.archs)}")
        d.archs = archs
        d.replayed += rec["execute"]["replay_cpu"]["status"] == "passed"
        offset, raw = lines[where]
        d.entries.add(entry_view(rec), raw, records, offset, REAL_CONFIG)
