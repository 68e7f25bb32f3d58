"""The run manifest: trim a run to exactly its count, then describe it (counts, every reject
with its reason, verdicts, gradient findings, shards with their sha256)."""

from __future__ import annotations

import hashlib
import json
import os
import re

import schemas

from schemas.dataset_format import (FINDINGS_DIR, RUN_CONFIG, RUN_INFO, RUN_MANIFEST, SHARD_PREFIX, canonical_json,
                                    pretty_json, shard_name, stats_name)
from validator.reason_groups import CheckTally
from pipeline.errors import RunConflict
from pipeline.chunk import TMP_INFIX, atomic_write, finding_path, reason_code, write_chunk

# The driver writes its own files through NAME.tmp-PID (chunk.atomic_write): one stopped between
# the temporary file's fsync and its rename leaves that name, which no later process writes again
# (found by pipeline/resume_properties_test.py)
_DRIVER_TMP = re.compile("(" + "|".join(map(re.escape, (RUN_CONFIG, RUN_MANIFEST, RUN_INFO))) + ")"
                         + re.escape(TMP_INFIX) + "[0-9]+")


def finalize(out: str, done: dict[int, dict], count: int, config: dict) -> dict:
    """Trim to exactly `count` records in index order, drop surplus chunks, write the manifest."""
    kept_chunks, total = [], 0
    for c in sorted(done):
        if total >= count:
            for p in (os.path.join(out, stats_name(c)), os.path.join(out, shard_name(c)), finding_path(out, c)):
                if os.path.exists(p):
                    os.remove(p)
            continue
        st = done[c]
        n_pass = sum(o["status"] == "passed" for o in st["outcomes"])
        if total + n_pass > count:  # trim this chunk: keep the first records, and only their attempts
            keep = count - total
            with open(os.path.join(out, shard_name(c))) as f:
                lines = f.readlines()[:keep]
            last_id = json.loads(lines[-1])["id"] if lines else None
            cut = next(i for i, o in enumerate(st["outcomes"]) if o.get("id") == last_id) + 1 if lines else 0
            st = {"chunk": c, "complete": False, "outcomes": st["outcomes"][:cut], "toolchain": st.get("toolchain")}
            keep_findings = {o["finding"] for o in st["outcomes"] if "finding" in o}
            write_chunk(out, c, [json.loads(x) for x in lines], st,
                        [r for r in _read_jsonl(finding_path(out, c)) if r["id"] in keep_findings])
            n_pass = keep
        total += n_pass
        kept_chunks.append(st)
    # remove stale chunk files beyond what this run needs (e.g. from a larger earlier run)
    keep_names = {shard_name(s["chunk"]) for s in kept_chunks} | {stats_name(s["chunk"]) for s in kept_chunks}
    for name in os.listdir(out):
        if name.startswith(SHARD_PREFIX) and name not in keep_names:
            os.remove(os.path.join(out, name))
    for name in os.listdir(out):
        if _DRIVER_TMP.fullmatch(name):
            os.remove(os.path.join(out, name))
    fdir = os.path.join(out, FINDINGS_DIR)
    for name in os.listdir(fdir) if os.path.isdir(fdir) else ():
        if name not in keep_names:
            os.remove(os.path.join(fdir, name))
    return write_manifest(out, kept_chunks, config)


def _read_jsonl(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _file_entry(out: str, rel: str, records: int) -> dict:
    with open(os.path.join(out, rel), "rb") as f:
        data = f.read()
    return {"path": rel, "records": records, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def run_toolchain(chunks: list[dict]) -> dict | None:
    """The one toolchain every chunk's records were made with (None when no chunk kept any)."""
    seen = {canonical_json(s["toolchain"]): s["toolchain"] for s in chunks if s.get("toolchain")}
    if len(seen) > 1:
        raise RunConflict(f"the chunks of this run were built with {len(seen)} different toolchains; use another --out")
    return next(iter(seen.values()), None)


def _rejects(outcomes: list[dict]) -> tuple[dict, dict, dict]:
    """Per family: attempted, passed, rejected; per reason code: the count and a first example."""
    by_family: dict[str, dict] = {}
    reasons: dict[str, int] = {}
    examples: dict[str, dict] = {}
    for o in outcomes:
        fam = by_family.setdefault(o["family"], {"attempted": 0, "passed": 0, "rejected": 0})
        fam["attempted"] += 1
        fam[o["status"]] += 1
        if o["status"] == "rejected":
            key = reason_code(o["reason"])
            reasons[key] = reasons.get(key, 0) + 1
            examples.setdefault(key, {"family": o["family"], "seed": o["seed"], "reason": o["reason"][:300]})
    return by_family, reasons, examples


def _validation(outcomes: list[dict]) -> tuple[dict, dict]:
    """Verdict counts over the written pairs, from each pair's own record of its checks, and the
    first reason each check was not run."""
    validation: dict[str, dict] = {}
    notes: dict[str, str] = {}
    for o in outcomes:
        for k, status in o.get("checks", {}).items():
            validation.setdefault(k, {}).setdefault(status, 0)
            validation[k][status] += 1
        for k, reason in o.get("notes", {}).items():
            notes.setdefault(k, reason)
    return {k: dict(sorted(v.items())) for k, v in sorted(validation.items())}, dict(sorted(notes.items()))


def check_tally(outcomes: list[dict]) -> dict:
    """Every written pair's verdict per check, by status and reason group (`CheckTally.to_json`):
    what the closing summary prints. Not stored: the reasons it groups are each pair's own (its
    record's checks, the stats files), the first per check in `validation_notes`."""
    tally = CheckTally()
    for o in outcomes:
        notes = o.get("notes", {})
        for k, status in o.get("checks", {}).items():
            tally.add(k, status, notes.get(k))
    return tally.to_json()


def _gradient(outcomes: list[dict]) -> dict:
    """The gradient check per family: the written pairs' verdicts plus the findings."""
    gradient: dict[str, dict] = {}
    for o in outcomes:
        status = o.get("checks", {}).get("execute_backward_cpu") or ("failed" if "finding" in o else None)
        if status:
            fam = gradient.setdefault(o["family"], {})
            fam[status] = fam.get(status, 0) + 1
    return {k: dict(sorted(v.items())) for k, v in sorted(gradient.items())}


def _shards(out: str, chunks: list[dict]) -> tuple[list[dict], int]:
    """Each chunk's shard (path, records, bytes, sha256) and how many written ids repeat one before."""
    shards = []
    ids: set[str] = set()
    duplicates = 0
    for s in chunks:
        for o in s["outcomes"]:
            if o["status"] == "passed":
                duplicates += o["id"] in ids
                ids.add(o["id"])
        shards.append(_file_entry(out, shard_name(s["chunk"]), sum(o["status"] == "passed" for o in s["outcomes"])))
    return shards, duplicates


def write_manifest(out: str, chunks: list[dict], config: dict) -> dict:
    """The run's manifest.json over the kept `chunks` (their stats), written and returned, the
    returned one with "_checks" (`check_tally`) too."""
    outcomes = [o for s in chunks for o in s["outcomes"]]
    by_family, reasons, examples = _rejects(outcomes)
    validation, notes = _validation(outcomes)
    findings = [_file_entry(out, os.path.join(FINDINGS_DIR, shard_name(s["chunk"])), n)
                for s in chunks for n in [sum("finding" in o for o in s["outcomes"])] if n]
    shards, duplicates = _shards(out, chunks)
    manifest = {
        "manifest_version": schemas.RUN_MANIFEST_VERSION,
        "record_schema_version": schemas.PAIR_SCHEMA_VERSION,
        "generator": config,
        "toolchain": run_toolchain(chunks),
        "counts": {
            "attempted": len(outcomes),
            "passed": sum(o["status"] == "passed" for o in outcomes),
            "rejected": sum(o["status"] == "rejected" for o in outcomes),
            "duplicate_ids": duplicates,
            "by_family": dict(sorted(by_family.items())),
        },
        "rejects_by_reason": dict(sorted(reasons.items())),
        "reject_examples": dict(sorted(examples.items())),
        "validation": validation,
        "validation_notes": notes,
        "gradient_by_family": _gradient(outcomes),
        "adjoint_mismatch": {"records": sum(f["records"] for f in findings), "shards": findings},
        "shards": shards,
    }
    atomic_write(os.path.join(out, RUN_MANIFEST), pretty_json(manifest).encode())
    manifest["_checks"] = check_tally(outcomes)  # returned, not written (`check_tally`)
    return manifest
