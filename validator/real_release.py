"""Re-validate the real config of a release (//tools:release's data/real/, kernels of the
warp-lang wheel): its rows are rebuilt into real records (schemas/release_rows.py
`to_real_record`) and judged as a harvest's are (validator/real.py), except that a release holds
a deduplicated subset of a harvest, so no kernel is `missing`:

1. every row rebuilds into a record that meets schemas/real.schema.json (else it fails `schema`);
2. every record's provenance resolves inside the installed wheel, or the release is refused with
   one line (ProvenanceRefused, exit 2) before anything runs, synthetic rows included;
3. the kernels of the harvest the rows come from (the first `limit` kernels of the wheel, as the
   release manifest records it) are found, cut and lowered again from the installed wheel's text
   in the batches //harvest made of them, and each record must equal the validator's own field
   by field (`source_mismatch`,
   `ir_mismatch`, ...; `not_in_wheel`, `duplicate`). The stored text is never imported.
"""

from __future__ import annotations

import os

from schemas import files
from schemas.dataset_format import REAL_CONFIG
from schemas.release_rows import open_parquet, row_groups, to_real_record

import schemas
from harvest import discover as disc
from harvest import run as harvest_run
from validator import real
from validator.reason_groups import CheckTally


def read_rows(directory: str, m: dict) -> tuple[list[tuple[str, dict]], list[dict]]:
    """(records that meet the real schema as (where, record), failures of the other rows) of the
    release's real files (the file rule already applied by the caller)."""
    good, failures = [], []
    for f in m["files"]:
        if f.get("config") != REAL_CONFIG or not f["path"].endswith(".parquet"):
            continue
        n = 0
        try:
            for rows in row_groups(open_parquet(os.path.join(directory, f["path"]), f["path"])):
                for row in rows:
                    n += 1
                    where = f"{f['path']}:{n}"
                    try:
                        rec = to_real_record(row, m["real"]["record_schema_version"])
                        problem = schemas.violation("real", rec)
                    except (KeyError, TypeError, ValueError, RecursionError, MemoryError) as e:
                        problem = f"a row that is no real record ({type(e).__name__})"
                    if problem:
                        failures.append({"where": where, "id": files.quote(row.get("id"), 40), "code": "schema",
                                         "reason": f"schema: {files.quote(problem, 300)}"})
                    else:
                        good.append((where, rec))
        except Exception as e:  # noqa: BLE001 - pyarrow raises several types for a damaged file
            failures.append({"where": f["path"], "id": None, "code": "corrupt",
                             "reason": f"corrupt: {f['path']}: not a readable Parquet file ({type(e).__name__})"})
    return good, failures


def revalidate_rows(directory: str, m: dict, workers: int, quiet: bool = True) -> dict | None:
    """The part of the release's report its real rows make (None when it has none): records,
    passed, failures and the `reharvest` check's tally."""
    if not any(f.get("config") == REAL_CONFIG for f in m["files"]):
        return None
    stored, failures = read_rows(directory, m)
    wheel = disc.wheel()
    real.check_provenance(stored, wheel)
    picks = {(i["limit"], i.get("under")) for i in m["real"]["inputs"]}
    # the harvests' own batches: their one selection, or the whole wheel
    selection = picks.pop() if len(picks) == 1 else (None, None)
    again = real.reharvest(stored, selection, workers, harvest_run.Progress(quiet, "real kernels re-harvested"), wheel,
                           every=True)
    failures += real.judge(stored, again, complete=False)
    records, _, tally = real.tally_of(stored, failures)
    return {"records": records, "failures": failures, "checks": tally.to_json()}


def merge(report: dict, part: dict | None) -> dict:
    """The release's report with its real rows' part added (failures after the synthetic ones)."""
    if part is None:
        return report
    failed = len(part["failures"])
    report["records"] += part["records"]
    report["passed"] += part["records"] - len({f["where"] for f in part["failures"]})
    report["failed"] += failed
    report["failures"] = report["failures"] + part["failures"]
    reasons = dict(report["failures_by_reason"])
    for f in part["failures"]:
        reasons[f["code"]] = reasons.get(f["code"], 0) + 1
    report["failures_by_reason"] = dict(sorted(reasons.items()))
    tally = CheckTally()
    tally.merge(report["checks"])
    tally.merge(part["checks"])
    report["checks"] = tally.to_json()
    return report
