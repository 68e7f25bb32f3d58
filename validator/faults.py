"""Adversarial fault injection: does the re-validator catch every corruption, for the right reason?

Take valid records, corrupt each copy in one realistic way (one IR token edited, one output
element perturbed, outputs swapped between records, a NaN in an output, a field dropped or
mistyped, a hostile import or dunder trick in the source, the spec edited away from the source,
a truncated JSON line), write the faulty lines into shards, run `revalidate` over them and check
that every faulty line fails with the reason key of the FIRST check, in the validator's order,
that sees the fault:

    corrupt (JSON) -> bounds -> schema -> spec -> safety -> spec_source -> consistency -> codegen/compile -> ir_match
    -> execute_cpu -> io

An unmodified copy of every record the faults were drawn from rides along in the same shards (so
in the same compile batches) as a control: each must pass, which proves the faults are caught
because of what was injected, not because the record was bad to begin with.

Each entry of `FAULTS` is `fn(records, i, rng) -> Injection | None`: it deep-copies record i,
corrupts the copy and returns the faulty JSON line, the expected reason key and a short
description; None when the fault does not apply to that record. The kinds, in the audit's order,
are validator/fault_kinds.py's FAULT_AUDIT; the injections live in inject_results (what a fresh
run recomputes), inject_fields (fields and bytes) and inject_source (source and spec).
"""

from __future__ import annotations

import json
import os
import random
import time
from typing import Callable, NamedTuple

from schemas.dataset_format import SHARD_PREFIX, list_shards, shard_name
from validator import fault_kinds, revalidate
# the injections, re-exported: callers (faults_test) name them as faults.<kind>
from validator.inject_fields import derived_field, drop_field, mistype_field, truncated_line
from validator.inject_results import (backward_swap, grad_perturb, ir_token, output_malformed, output_nan,
                                      output_perturb, output_swap)
from validator.inject_source import hostile_call, hostile_dunder, hostile_import, spec_edit, spec_forgery
from validator.injection import Injection, dump  # noqa: F401 (re-exported)

INJECTIONS: dict[str, Callable] = {fn.__name__: fn for fn in (
    ir_token, output_perturb, output_swap, output_nan, drop_field, mistype_field, hostile_import, hostile_dunder,
    hostile_call, spec_edit, truncated_line, output_malformed, derived_field, spec_forgery, grad_perturb,
    backward_swap)}
# kind name -> injection, in the registry's order (a registered kind without an injection: KeyError)
FAULTS: dict[str, Callable] = {k.name: INJECTIONS[k.name] for k in fault_kinds.FAULT_AUDIT}


class _Entry(NamedTuple):
    """One line of the audit's shards: a fault of kind `name` on record i, or a control (name None)."""

    kind: str  # "fault" or "control"
    name: str | None
    i: int
    injection: Injection | None
    line: str


# ---- the audit


def sample_records(dataset_dir: str, pool: int, rng: random.Random) -> list[dict]:
    """Up to `pool` records drawn uniformly from DIR/shard-*.jsonl (reservoir sampling, in file order)."""
    shards = list_shards(dataset_dir)
    if not shards:
        raise FileNotFoundError(f"no shard-*.jsonl files in {dataset_dir}")
    chosen: list[tuple[int, str]] = []
    seen = 0
    for shard in shards:
        with open(os.path.join(dataset_dir, shard), encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                if len(chosen) < pool:
                    chosen.append((seen, line))
                else:
                    k = rng.randrange(seen + 1)
                    if k < pool:
                        chosen[k] = (seen, line)
                seen += 1
    records = []
    for _, line in sorted(chosen):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # not a valid record: nothing to corrupt
        if isinstance(rec, dict):
            records.append(rec)
    return records


def audit(dataset_dir: str, workdir: str, n_faults: int = 500, seed: int = 0, pool: int = 60,
          per_shard: int = 100, types: list[str] | None = None) -> dict:
    """Inject `n_faults` faults into records of `dataset_dir`, re-validate them in `workdir`, score.

    Fault k is of type types[k % len(types)] (so every type gets a near-equal share), on a record
    drawn by random.Random(seed) from a pool of up to `pool` records sampled from the dataset.
    Every pool record is also written unmodified, as a control. Lines are shuffled together and
    written `per_shard` to a shard, so faulty records share compile batches with clean ones.
    """
    t0 = time.time()
    if n_faults < 1:
        raise ValueError("n_faults must be >= 1")
    names = list(types or FAULTS)
    unknown = [n for n in names if n not in FAULTS]
    if unknown:
        raise ValueError(f"unknown fault type {unknown[0]}")
    if os.path.isdir(workdir) and any(p.startswith(SHARD_PREFIX) for p in os.listdir(workdir)):
        raise ValueError(f"{workdir} already holds shard files; give the audit an empty directory")
    rng = random.Random(seed)
    records = sample_records(dataset_dir, pool, rng)
    if len(records) < 2:
        raise ValueError(f"{dataset_dir}: need at least 2 parseable records, found {len(records)}")
    entries = _entries(records, names, n_faults, rng)
    by_where = _write_shards(entries, workdir, per_shard)
    t1 = time.time()
    report = revalidate.revalidate(workdir, gpu=False)
    t2 = time.time()
    table, controls, unmatched = _score(report, by_where, records, names)
    injected = sum(r["injected"] for r in table.values())
    detected = sum(r["detected"] for r in table.values())
    right = sum(r["right_reason"] for r in table.values())
    ok = right == injected and controls["false_positives"] == 0 and not unmatched
    return {
        "dataset": os.path.abspath(dataset_dir),
        "workdir": os.path.abspath(workdir),
        "seed": seed,
        "records_sampled": len(records),
        "lines": len(entries),
        "shards": (len(entries) + per_shard - 1) // per_shard,
        "by_type": table,
        "total": {"injected": injected, "detected": detected, "right_reason": right,
                  "detection_rate": detected / injected, "right_reason_rate": right / injected},
        "controls": controls,
        "unmatched_failures": unmatched[:10],
        "ok": ok,
        "seconds": {"inject": round(t1 - t0, 2), "revalidate": round(t2 - t1, 2), "total": round(time.time() - t0, 2)},
    }


def _entries(records: list[dict], names: list[str], n_faults: int, rng: random.Random) -> list[_Entry]:
    """`n_faults` faults, fault k of kind names[k % len(names)] on a record drawn by `rng` (up to
    100 draws till the kind applies), and every record as a control, shuffled."""
    entries = []
    for k in range(n_faults):
        name = names[k % len(names)]
        inj = None
        for _ in range(100):
            i = rng.randrange(len(records))
            try:
                inj = FAULTS[name](records, i, rng)
            except (KeyError, TypeError, IndexError, ValueError, AttributeError):
                inj = None  # the record lacks what this fault needs: try another
            if inj is not None:
                break
        if inj is None:
            raise ValueError(f"fault type {name} applies to none of the sampled records")
        entries.append(_Entry("fault", name, i, inj, inj.line))
    for i, rec in enumerate(records):
        entries.append(_Entry("control", None, i, None, dump(rec)))
    rng.shuffle(entries)
    return entries


def _write_shards(entries: list[_Entry], workdir: str, per_shard: int) -> dict[str, _Entry]:
    """The entries written `per_shard` to a shard of `workdir`, by where each is ("shard:line")."""
    os.makedirs(workdir, exist_ok=True)
    by_where = {}
    for s in range(0, len(entries), per_shard):
        shard = shard_name(s // per_shard)
        with open(os.path.join(workdir, shard), "w", encoding="utf-8") as f:
            for n, e in enumerate(entries[s:s + per_shard], 1):
                f.write(e.line + "\n")
                by_where[f"{shard}:{n}"] = e
    return by_where


def _score(report: dict, by_where: dict[str, _Entry], records: list[dict], names: list[str]) -> tuple[dict, dict, list]:
    """(the table by fault kind, the controls, the failures at no written line) of a re-validation."""
    failures = {}
    unmatched = []
    for f in report["failures"]:
        if f["where"] in by_where and f["where"] not in failures:
            failures[f["where"]] = f
        else:
            unmatched.append(f)
    table = {n: {"expected": None, "injected": 0, "detected": 0, "right_reason": 0, "reasons": {},
                 "example": None, "wrong_reason_examples": [], "undetected_examples": []} for n in names}
    controls = {"count": 0, "false_positives": 0, "examples": []}
    for where, e in sorted(by_where.items()):
        f = failures.get(where)
        rid = records[e.i].get("id")
        if e.kind == "control":
            controls["count"] += 1
            if f:
                controls["false_positives"] += 1
                if len(controls["examples"]) < 5:
                    controls["examples"].append({"where": where, "id": rid, "reason": f["reason"][:300]})
        else:
            _score_fault(table[e.name], where, rid, e.injection, f)
    return table, controls, unmatched


def _score_fault(row: dict, where: str, rid, inj: Injection, f: dict | None) -> None:
    """One fault counted into its kind's row: detected or not, with the right reason or not."""
    row["expected"] = row["expected"] or inj.expected
    row["injected"] += 1
    if not f:
        if len(row["undetected_examples"]) < 5:
            row["undetected_examples"].append({"where": where, "id": rid, "fault": inj.detail})
        return
    row["detected"] += 1
    key = f["code"]
    row["reasons"][key] = row["reasons"].get(key, 0) + 1
    if key == inj.expected:
        row["right_reason"] += 1
        row["example"] = row["example"] or f["reason"][:200]
    elif len(row["wrong_reason_examples"]) < 5:
        row["wrong_reason_examples"].append({"where": where, "id": rid, "fault": inj.detail,
                                             "expected": inj.expected, "reason": f["reason"][:300]})


def format_table(result: dict) -> str:
    rows = [f"{'fault type':<16} {'expected':<12} {'injected':>8} {'detected':>8} {'right':>6}  example reason"]
    for name, r in result["by_type"].items():
        ex = r["example"] or (r["wrong_reason_examples"][0]["reason"] if r["wrong_reason_examples"] else "-")
        rows.append(f"{name:<16} {r['expected'] or '-':<12} {r['injected']:>8} {r['detected']:>8} "
                    f"{r['right_reason']:>6}  {ex[:80]}")
    t = result["total"]
    rows.append(f"{'total':<16} {'':<12} {t['injected']:>8} {t['detected']:>8} {t['right_reason']:>6}")
    rows.append(f"detection rate: {100 * t['detection_rate']:.2f}% ({t['detected']}/{t['injected']}); "
                f"with the right reason: {100 * t['right_reason_rate']:.2f}% ({t['right_reason']}/{t['injected']})")
    c = result["controls"]
    rows.append(f"controls: {c['count']} unmodified records, {c['false_positives']} false positives")
    for name, r in result["by_type"].items():
        for e in r["undetected_examples"]:
            rows.append(f"  UNDETECTED {name} {e['where']} {e['id']}: {e['fault']}")
        for e in r["wrong_reason_examples"]:
            rows.append(f"  WRONG REASON {name} {e['where']} {e['id']}: {e['fault']}: expected {e['expected']}, "
                        f"got {e['reason'][:120]}")
    for e in c["examples"]:
        rows.append(f"  FALSE POSITIVE {e['where']} {e['id']}: {e['reason'][:120]}")
    for f in result["unmatched_failures"]:
        rows.append(f"  UNMATCHED FAILURE {f['where']}: {f['reason'][:120]}")
    s = result["seconds"]
    rows.append(f"{result['lines']} lines in {result['shards']} shard(s) from {result['records_sampled']} records; "
                f"revalidate {s['revalidate']} s, total {s['total']} s")
    return "\n".join(rows)
