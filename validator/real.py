"""Re-validate a harvest (//harvest's DIR: harvest.jsonl and a manifest.json whose origin is
`real`). A real record is not a rendering of a spec, so nothing it stores is imported or
compiled: the validator harvests again from the installed wheel and requires each record to be
its own harvest of the kernel the record's provenance names.

1. **The files** by the file rule (schemas/files.py): manifest.json and harvest.jsonl regular
   files, read with caps; every line meets schemas/real.schema.json (else that record fails).
2. **Provenance, before anything runs.** Every record's `provenance.path` must be one of the
   files //harvest reads in the installed wheel (an exact string among `discover.wheel_files()`:
   no `..`, no absolute path, no link out of the wheel), its `sha256` that file's, its
   `warp_lang` and `license` the running wheel's. One that does not resolve refuses the whole
   directory with one line (ProvenanceRefused, exit 2): nothing is lowered.
3. **Re-harvest.** The kernels at the records' (path, lines) are found again with `ast` in the
   installed files, cut standalone by harvest/standalone.py and lowered by harvest/lower.py in
   the batches //harvest makes of them, and the wheel's test modules are run again to record the
   launches (harvest/launches.py), which each compiled kernel replays. Each record must equal the
   validator's own record of its (path, lines, overload) field by field (`source_mismatch`,
   `ir_mismatch`, `compile_mismatch`, `launch_mismatch`, `execute_mismatch`, ...); a stored launch
   is never fed to a kernel; a record at lines where the wheel has no harvested kernel fails `not_in_wheel`, a second
   record of one kernel `duplicate`.
4. **Nothing hidden.** Every kernel the manifest's harvest (the wheel's first `limit` kernels)
   yields must have its records: one missing fails `missing` under its provenance, so a dataset
   cannot drop what a release would publish unseen. The manifest must equal the one //harvest
   derives from the validated records (its counts, skips and failures; `harvest_sha256` the
   file's).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os

import schemas
from schemas import files
from schemas.dataset_format import RUN_MANIFEST, canonical_json, read_lines

from harvest import discover as disc
from harvest import run as harvest_run
from harvest import launches
from harvest.standalone import extract_all
from validator.reason_groups import CheckTally
from validator.verdicts import ValidatorError

KIND = "real"
CHECK = "reharvest"  # the one check of a real record: equal to the validator's own harvest of it
# fields compared in this order; the first that differs names the failure
FIELDS = ("schema_version", "origin", "name", "overload", "provenance", "source", "ir", "ir_order", "compile",
          "launch", "execute")


class ProvenanceRefused(ValidatorError):
    """A record's provenance does not resolve inside the installed wheel: another warp-lang, a
    path that is not one of the harvested files, or a sha256 that is not the file's."""


class HarvestRefused(ValidatorError):
    """The harvest's own files are unreadable: manifest.json or harvest.jsonl missing, a link, a
    FIFO, too large, or a manifest without a usable limit."""


def harvest_manifest(directory: str) -> dict | None:
    """The manifest of a harvest directory (its `origin` is `real`), or None for any other
    directory (a run, a release). Read by the file rule."""
    path = os.path.join(directory, RUN_MANIFEST)
    if not os.path.lexists(path) or not os.path.lexists(os.path.join(directory, harvest_run.RECORDS)):
        return None
    try:
        m = files.read_json(path, RUN_MANIFEST)
    except files.FileRefused:
        return None  # not a harvest's: the run and release readers say what is wrong with it
    return m if isinstance(m, dict) and m.get("origin") == harvest_run.ORIGIN else None


def _key(rec: dict) -> tuple:
    p = rec["provenance"]
    return p["path"], tuple(p["lines"]), rec["overload"] or ""


def _where(rec: dict) -> str:
    p = rec["provenance"]
    overload = f"#{rec['overload']}" if rec["overload"] else ""
    return f"{p['path']}:{p['lines'][0]}-{p['lines'][1]}{overload}"


def read_stored(directory: str, lines: dict | None = None) -> tuple[list[tuple[str, dict]], list[dict], bytes]:
    """(records that meet the schema as (where, record), failures of the others, the file's
    bytes' sha256 as hex). `lines`: filled with where -> (byte offset, raw line) of each good
    record, from the same read."""
    path = os.path.join(directory, harvest_run.RECORDS)
    try:
        files.regular(path, harvest_run.RECORDS)
        good, failures, h = [], [], hashlib.sha256()
        for n, offset, raw, rec, why in read_lines(path):
            h.update(raw)
            where = f"{harvest_run.RECORDS}:{n}"
            problem = why or schemas.violation("real", rec)
            if problem:
                failures.append(_failure(where, None, "schema", problem if why is None else why))
            else:
                good.append((where, rec))
                if lines is not None:
                    lines[where] = (offset, raw)
    except files.FileRefused as e:
        raise HarvestRefused(f"{files.quote(directory)}: {e}") from None
    return good, failures, h.hexdigest()


def _failure(where: str, rec: dict | None, code: str, detail: str) -> dict:
    return {"where": where, "id": _where(rec) if rec else None, "code": code, "reason": f"{code}: {detail}"}


class WheelFiles:
    """The installed wheel as provenance resolves against it: its version and licence
    (`discover.wheel()`), the files //harvest reads, and their sha256 (each read once)."""

    def __init__(self, wheel: dict):
        self.wheel = wheel
        self.allowed = set(disc.wheel_files())
        self.base = os.path.dirname(disc.warp_root())
        self.digests: dict[str, str] = {}

    def problem(self, where: str, rec: dict) -> str | None:
        """Why the record's provenance does not resolve inside the installed wheel (one line), or None."""
        p, wheel = rec["provenance"], self.wheel
        if p["warp_lang"] != wheel["warp_lang"] or p["license"] != wheel["license"]:
            return (f"{where}: provenance names warp-lang {files.quote(p['warp_lang'], 40)} ({files.quote(p['license'], 40)}); "
                    f"the installed wheel is {wheel['warp_lang']} ({wheel['license']}): re-validate with that wheel")
        if p["path"] not in self.allowed:
            return (f"{where}: provenance path {files.quote(p['path'])} is not a harvested file of "
                    f"the installed warp-lang {wheel['warp_lang']}")
        if p["path"] not in self.digests:
            with open(os.path.join(self.base, p["path"]), "rb") as f:
                self.digests[p["path"]] = hashlib.sha256(f.read()).hexdigest()
        if p["sha256"] != self.digests[p["path"]]:
            return (f"{where}: provenance sha256 {files.quote(p['sha256'], 70)} is not that of the "
                    f"installed {p['path']} ({self.digests[p['path']]})")
        return None


def check_provenance(stored: list[tuple[str, dict]], wheel: dict) -> None:
    """ProvenanceRefused (one line) at the first record whose provenance does not resolve inside
    the installed wheel; nothing else is read or run before this passes."""
    resolver = WheelFiles(wheel)
    for where, rec in stored:
        if (why := resolver.problem(where, rec)) is not None:
            raise ProvenanceRefused(why)


class WheelCuts:
    """The standalone sources //harvest cuts from the installed wheel, by the place a kernel is
    defined (path, (first, last)): the wheel read with `ast` once, on first use, and each kernel
    cut when first asked. Nothing is imported or lowered."""

    def __init__(self):
        self._at: dict | None = None
        self._cache: dict = {}

    def source_at(self, path: str, lines: tuple[int, int]) -> str | None | bool:
        """The cut source of the kernel at (path, lines); None where //harvest cannot cut one;
        False where the wheel defines no kernel there."""
        if self._at is None:
            found, _ = disc.discover()
            self._at = {(k.file.path, k.lines): k for k in found}
        key = (path, tuple(lines))
        if key not in self._cache:
            k = self._at.get(key)
            self._cache[key] = False if k is None else extract_all([k])[0].source
        return self._cache[key]


def selection_problem(m: dict) -> str | None:
    """Why a harvest manifest's (limit, under) cannot say which kernels it harvested, or None."""
    limit, under = m.get("limit"), m.get("under")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        return f"limit {files.quote(limit, 40)} is not null or a whole number >= 1"
    if under is not None and (not isinstance(under, str) or not harvest_run.UNDER.match(under)
                              or ".." in under.split("/")):
        return f"under {files.quote(under, 60)} is not null or a path inside the wheel"
    return None


def _selection(m: dict) -> tuple[int | None, str | None]:
    """(limit, under): which of the wheel's kernels the harvest took (harvest/run.py `select`)."""
    if (why := selection_problem(m)) is not None:
        raise HarvestRefused(f"{RUN_MANIFEST}: {why}")
    return m.get("limit"), m.get("under")


def _first_difference(stored: dict, expected: dict) -> str | None:
    for field in FIELDS:
        if canonical_json(stored.get(field)) != canonical_json(expected.get(field)):
            return field
    return None


@dataclasses.dataclass
class Reharvest:
    """The validator's own harvest of the kernels the stored records name."""

    kernels: list  # the wheel's first `limit` kernels, as //harvest finds them
    extractions: list  # their standalone cuts
    mine: dict  # (path, lines, overload) -> the validator's record, for the kernels the records name
    wheel: dict  # the running warp-lang's version and licence
    found: int  # kernels in the whole wheel (the manifest's found_in_wheel)
    modules: dict  # the test modules run to record launches (harvest/launches.py's counts)


def reharvest(stored: list[tuple[str, dict]], selection: tuple, workers: int, progress, wheel: dict,
              every: bool = False) -> Reharvest:
    """The kernels at the stored records' (path, lines) found, cut and lowered again from the
    installed wheel's text (nothing of the records is used but where they point); `wheel`:
    `discover.wheel()`. `every`: all the first `limit` kernels are lowered, in the batches
    //harvest made of them, not only those the records name (a release holds a subset of a
    harvest: measured, 45 of 2,067 kernels' code differed when lowered in the subset's batches).
    `selection`: the harvest's (limit, under)."""
    found, _ = disc.discover()
    kernels = harvest_run.select(found, *selection)
    extractions = extract_all(kernels)
    named = {(rec["provenance"]["path"], tuple(rec["provenance"]["lines"])) for _, rec in stored}
    pick = [(k, e) for k, e in zip(kernels, extractions)
            if e.source is not None and (every or (k.file.path, k.lines) in named)]
    # the launches recorded again from the wheel's own tests, as //harvest records them
    recorded, modules = launches.record_all({k.file.path for k in kernels}, workers, None,
                                            harvest_run.Progress(progress.quiet, "test modules run for launches", "modules"))
    jobs = harvest_run.jobs_of([k for k, _ in pick], [e for _, e in pick], recorded)
    progress.start(len(jobs))
    results = harvest_run.lower_all(jobs, workers, progress.advance) if jobs else {}
    progress.done()
    mine = harvest_run.records_of([k for k, _ in pick], [e for _, e in pick], results, wheel, recorded)
    return Reharvest(kernels, extractions, {_key(r): r for r in mine}, wheel, len(found), modules)


def judge(stored: list[tuple[str, dict]], again: Reharvest, complete: bool = True) -> list[dict]:
    """The failures of the stored records against the validator's records, then (`complete`: a
    harvest, not a release's deduplicated subset of one) the kernels the harvest yields that no
    stored record holds (`missing`)."""
    failures, seen, mine = [], set(), again.mine
    for where, rec in stored:
        key = _key(rec)
        if key in seen:
            failures.append(_failure(where, rec, "duplicate", "a second record of this kernel and overload"))
            continue
        seen.add(key)
        expected = mine.get(key)
        if expected is None:
            failures.append(_failure(where, rec, "not_in_wheel", "the wheel's harvest has no record at this path, "
                                     "these lines and this overload"))
        elif (field := _first_difference(rec, expected)) is not None:
            failures.append(_failure(where, rec, f"{field}_mismatch",
                                     f"the stored {field} is not what harvesting the installed wheel gives"))
    if not complete:
        return failures
    held = {(p, lines) for p, lines, _ in seen}
    for k, e in zip(again.kernels, again.extractions):
        if e.source is not None and (k.file.path, k.lines) not in held:
            failures.append({"where": harvest_run.RECORDS, "id": harvest_run.job_key(k), "code": "missing",
                             "reason": f"missing: the harvest yields {harvest_run.job_key(k)} ({k.name}); "
                                       f"{harvest_run.RECORDS} has no record of it"})
    failures += [{"where": harvest_run.RECORDS, "id": _where(r), "code": "missing",
                  "reason": f"missing: the harvest yields {_where(r)} ({r['name']}); {harvest_run.RECORDS} has no "
                            f"record of it"} for key, r in mine.items() if key not in seen]
    return failures


def check_files(m: dict, again: Reharvest, selection: tuple, digest: str) -> list[dict]:
    """harvest.jsonl byte for byte the harvest's (its records in order, canonically encoded) and
    the manifest the one //harvest derives from the validator's records; run once every record
    passed and none is missing."""
    records = [again.mine[k] for k in sorted(again.mine)]
    expected = harvest_run.manifest(again.kernels, again.extractions, records, again.wheel, selection, again.found,
                                    again.modules)
    expected["harvest_sha256"] = hashlib.sha256(harvest_run.records_bytes(records)).hexdigest()
    out = []
    if digest != expected["harvest_sha256"]:
        out.append({"where": harvest_run.RECORDS, "id": None, "code": "bytes_mismatch",
                    "reason": f"bytes_mismatch: {harvest_run.RECORDS} holds the harvest's records but not its bytes "
                              f"(their order or encoding differs)"})
    wrong = sorted(k for k in set(expected) | set(m) if canonical_json(expected.get(k)) != canonical_json(m.get(k)))
    if wrong:
        out.append({"where": RUN_MANIFEST, "id": None, "code": "manifest_mismatch",
                    "reason": f"manifest_mismatch: {', '.join(files.quote(k, 40) for k in wrong[:5])} differ from "
                              f"what //harvest derives from the re-harvested records"})
    return out


def tally_of(stored: list, failures: list[dict]) -> tuple[int, int, CheckTally]:
    """(records judged, records passed, the `reharvest` check's tally) of `stored` records (those
    that met the schema) and the `failures` (schema ones included; a file-wide one names no record)."""
    tally = CheckTally()
    for f in failures:
        tally.add(CHECK, "failed", f["code"])
    failed_records = {f["where"] for f in failures} - {harvest_run.RECORDS, RUN_MANIFEST}
    records = len(stored) + sum(1 for f in failures if f["code"] == "schema")
    tally.add(CHECK, "passed", n=records - len(failed_records))
    return records, records - len(failed_records), tally


def revalidate_real(directory: str, m: dict, workers: int, quiet: bool = True) -> dict:
    """The report of re-validating the harvest in `directory` (its manifest `m`)."""
    selection = _selection(m)
    stored, failures, digest = read_stored(directory)
    wheel = disc.wheel()
    check_provenance(stored, wheel)
    again = reharvest(stored, selection, workers, harvest_run.Progress(quiet, "kernels re-harvested"), wheel)
    failures += judge(stored, again)
    if not failures:
        failures += check_files(m, again, selection, digest)
    records, passed, tally = tally_of(stored, failures)
    reasons: dict[str, int] = {}
    for f in failures:
        reasons[f["code"]] = reasons.get(f["code"], 0) + 1
    return {"directory": os.path.abspath(directory), "kind": KIND, "records": records,
            "passed": passed, "findings": {"records": 0, "failed": 0},
            "failed": len(failures), "failures_by_reason": dict(sorted(reasons.items())), "failures": failures,
            "execute_gpu": {}, "execute_gpu_notes": [], "checks": tally.to_json(), "toolchain": again.wheel}
