"""Re-checks a release directory the way a consumer would, trusting nothing but the data.

Usage: ./bazelw run //tools:verify -- DIST

Checks: manifest.json meets schemas/manifest.schema.json; every listed file exists with its
size and sha256, and no unlisted file is present (the report/ and explore/ folders //report and
//report:explore write are not part of the release and are skipped); every Parquet shard has the release's columns
and its listed row count; every row rebuilds into a pair record that passes `check_static` (size and
nesting bounds, the pair schema, the generator's own spec for its (family, seed), the safety
allowlist, its spec's rendering and the fields derived from the spec, which include the passing
verdicts), and carries the verdicts its config requires (no failed verdict in cpu and cuda; in
adjoint_mismatch a gradient check failed as gradient_mismatch and nothing else); each row sits in the config and split its file names, with the
split its source's skeleton hashes to; ids are unique; the counts per config, split and family
equal the manifest's. A row of the real config (tools/release_real.py) is rebuilt into its real
record and checked against schemas/real.schema.json, its provenance resolved inside the installed
wheel, its source re-cut from the wheel's text at its lines (never imported), its id, folder and
publishability. Exit 1 with the first problem on one line (and how many more) on any
mismatch.
"""

from __future__ import annotations

import collections
import os
import sys

import schemas
from runtime.process import EXIT_TERMINATED, Terminated, caller_path, sigterm_raises
from schemas import files
from schemas.dataset_format import REAL_CONFIG, RELEASE_CARD, RELEASE_KIND, RELEASE_MANIFEST, release_file_problems
from tools import card, release_real
from tools import release_format as fmt
from validator import real as real_check
from validator.verdicts import FINDINGS_CONFIG, check_static, unpublishable



def _load_manifest(dist: str, problems: list[str]) -> dict | None:
    path = os.path.join(dist, RELEASE_MANIFEST)
    try:
        m = files.read_json(path, RELEASE_MANIFEST)
    except files.FileRefused as e:
        problems.append(str(e))
        return None
    if not isinstance(m, dict) or m.get("kind") != RELEASE_KIND:
        problems.append(f"manifest.json: not a release manifest (kind is not {RELEASE_KIND})")
        return None
    errors = sorted(schemas.validator(schemas.load("manifest")).iter_errors(m), key=lambda e: list(e.path))
    if errors:
        e = errors[0]
        problems.append(f"manifest.json: breaks the manifest schema at {files.quote('/'.join(map(str, e.path)) or '(root)')}: "
                        f"{files.quote(e.message)}")
        return None
    return m


def _check_files(dist: str, m: dict, problems: list[str]) -> None:
    """The file rule (schemas.dataset_format.release_file_problems), then each listed file's
    size and sha256, and the card: README.md must be the card the manifest renders to."""
    found = release_file_problems(dist, m)
    problems += found
    for f in m["files"]:
        try:
            digest, size = files.sha256_file(os.path.join(dist, f["path"]), f["path"])
        except files.FileRefused as e:
            if str(e) not in problems:
                problems.append(str(e))
            continue
        if size != f["bytes"]:
            problems.append(f"{f['path']}: {size} bytes, manifest.json says {f['bytes']}")
        elif digest != f["sha256"]:
            problems.append(f"{f['path']}: sha256 {digest[:12]}... differs from manifest.json's {f['sha256'][:12]}...")
    if any(f["path"] == RELEASE_CARD for f in m["files"]):
        try:
            want = card.render({k: v for k, v in m.items() if k != "files"}).encode("utf-8")
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, UnicodeEncodeError) as e:
            problems.append(f"{RELEASE_CARD}: manifest.json does not render to a card ({type(e).__name__})")
            return
        try:
            if files.read_bytes(os.path.join(dist, RELEASE_CARD), RELEASE_CARD, files.MAX_FILE_BYTES) != want:
                problems.append(f"{RELEASE_CARD}: not the card manifest.json renders to (regenerate it with //tools:release)")
        except files.FileRefused:
            pass  # said by the file rule above
    else:
        problems.append(f"{RELEASE_CARD}: not listed in manifest.json")


def _check_row(row: dict, f: dict, m: dict, fractions: tuple, ids: set, seen: set, found: list[str],
               wheel: tuple | None) -> None:
    """The checks of one row of the file `f`; its (target, id) joins `seen` (`ids`: those of the
    files before). `wheel`: (WheelFiles, WheelCuts) of the installed wheel, for a real row."""
    rid = f"{f['path']}: record {files.quote(row['id'], 40)}"
    try:
        if f["config"] == REAL_CONFIG:
            _check_real_row(row, f, m, fractions, found, rid, wheel)
        else:
            _check_row_fields(row, f, m, fractions, found, rid)
    except (KeyError, TypeError, ValueError, AttributeError, SyntaxError, RecursionError, MemoryError) as e:
        # a null cell, a source that does not parse, a cell too deep or too large to parse
        found.append(f"{rid}: a row that cannot be checked ({type(e).__name__})")
    key = (row.get("target", f["config"]), row["id"])
    if key in ids or key in seen:
        found.append(f"{rid}: id appears twice in the release")
    seen.add(key)


def _check_row_fields(row: dict, f: dict, m: dict, fractions: tuple, found: list[str], rid: str) -> None:
    finding = f["config"] == FINDINGS_CONFIG  # a finding keeps its target; the inputs' targets are the others
    in_place = row["target"] in {i["target"] for i in m["inputs"]} if finding else row["target"] == f["config"]
    if not in_place or row["split"] != f["split"]:
        found.append(f"{rid}: is {files.quote(row['target'], 40)}/{files.quote(row['split'], 40)} inside {f['config']}/{f['split']}")
    if fmt.skeleton_hash(row["source"]) != row["skeleton_hash"] or \
            fmt.split_of(row["skeleton_hash"], fractions) != row["split"]:
        found.append(f"{rid}: skeleton hash or split does not follow from its source")
    try:
        record = fmt.to_record(row, m["record_schema_version"], m["toolchain"])
    except (ValueError, RecursionError) as e:
        found.append(f"{rid}: a JSON column does not parse ({type(e).__name__})")
        return
    verdict = check_static(record)
    if verdict["status"] != "passed":
        found.append(f"{rid}: {verdict['reason']}")
    else:
        why = unpublishable(record["checks"], finding)
        if why:
            found.append(f"{rid}: {why}")


def _check_real_row(row: dict, f: dict, m: dict, fractions: tuple, found: list[str], rid: str, wheel: tuple) -> None:
    """A row of the real config: the real record it rebuilds to meets schemas/real.schema.json, was
    published by the release's rule, carries the id and folder its provenance gives, its
    provenance resolves inside the installed wheel and its source is the wheel's text there as
    //harvest cuts it (read with `ast`: the stored text is never imported)."""
    if row["split"] != f["split"]:
        found.append(f"{rid}: is {REAL_CONFIG}/{files.quote(row['split'], 40)} inside {f['config']}/{f['split']}")
    if fmt.skeleton_hash(row["source"]) != row["skeleton_hash"] or \
            fmt.split_of(row["skeleton_hash"], fractions) != row["split"]:
        found.append(f"{rid}: skeleton hash or split does not follow from its source")
    try:
        record = release_real.to_real_record(row, m["real"]["record_schema_version"])
    except (ValueError, RecursionError) as e:
        found.append(f"{rid}: a JSON column does not parse ({type(e).__name__})")
        return
    problem = schemas.violation("real", record)
    if problem is None and sorted(record["ir"]["ptx"]) != sorted(m["real"]["ptx_archs"]):
        problem = "its PTX columns are not the real config's archs"
    for check in (lambda: problem, lambda: wheel[0].problem(rid, record), lambda: release_real.source_problem(record, wheel[1]),
                  lambda: release_real.left_out(record) and f"not publishable ({release_real.left_out(record)})",
                  lambda: row["id"] != release_real.real_id(record) and "its id does not follow from its provenance",
                  lambda: row["wheel_dir"] != release_real.wheel_dir(record) and "its wheel_dir is not its provenance's"):
        if why := check():
            found.append(why if why.startswith(rid) else f"{rid}: {why}")
            return


def _check_rows(dist: str, m: dict, problems: list[str]) -> None:
    """Every Parquet shard, read one row group at a time: only ids and counts are kept."""
    archs = sorted(m["toolchain"]["ptx_archs"])
    want_cols = [(c["name"], c["type"]) for c in m["columns"]]
    wheel = None
    if m.get("real"):
        wheel = (real_check.WheelFiles(real_check.disc.wheel()), real_check.WheelCuts())
    fractions = tuple(m["splits"]["fractions"][s] for s in fmt.SPLITS)
    counted = collections.Counter()
    families = collections.Counter()
    ids = set()
    for f in m["files"]:
        if not f["path"].endswith(".parquet"):
            continue
        tally = _check_shard(dist, f, m, archs, want_cols, fractions, ids, problems, wheel)
        if tally is None:
            continue
        seen, file_counted, file_families = tally
        ids |= seen
        counted.update(file_counted)
        families.update(file_families)
    _check_counts(m, counted, families, problems)


def _check_shard(dist: str, f: dict, m: dict, archs: list[str], want_cols: list[tuple[str, str]], fractions: tuple,
                 ids: set, problems: list[str], wheel: tuple | None = None
                 ) -> tuple[set, collections.Counter, collections.Counter] | None:
    """The checks of the Parquet file `f` and of each of its rows (`ids`: those of the files
    before); returns its (target, id)s and its counts per (config, split) and per (config, family,
    split), or None when the file cannot be read to its end."""
    # one file's findings count only once all of it has been read, as when it was read whole
    found, seen, n_rows = [], set(), 0
    file_counted, file_families = collections.Counter(), collections.Counter()
    where = f["path"]
    unreadable = lambda e: f"{where}: not a readable Parquet file ({type(e).__name__}: {str(e)[:120]})"  # noqa: E731
    try:
        pf = fmt.open_parquet(os.path.join(dist, where), where)
    except files.FileRefused as e:  # each listed file is opened by the rule; said once
        if str(e) not in problems:
            problems.append(str(e))
        return None
    except Exception as e:  # pyarrow raises several types for a damaged file
        problems.append(unreadable(e))
        return None

    cols = [(field.name, str(field.type)) for field in pf.schema_arrow]
    real = f["config"] == REAL_CONFIG
    if real and not m.get("real"):
        problems.append(f"{where}: a {REAL_CONFIG} file in a release whose manifest.json has no real section")
        return None
    if real:
        want_cols = [(c["name"], c["type"]) for c in m["real"]["columns"]]
    names = [n for n, _, _ in (release_real.columns(m["real"]["ptx_archs"]) if real else fmt.columns(archs))]
    if cols != want_cols or names != [n for n, _ in cols]:
        problems.append(f"{where}: columns differ from the manifest's")
        return None
    groups = fmt.row_groups(pf)
    while True:
        try:
            rows = next(groups, None)
        except Exception as e:  # a damaged page, or invalid UTF-8
            problems.append(unreadable(e))
            return None
        if rows is None:
            break
        n_rows += len(rows)
        for row in rows:
            _check_row(row, f, m, fractions, ids, seen, found, wheel)
            file_counted[(f["config"], row["split"])] += 1  # the row's own config is checked above
            file_families[(f["config"], row["wheel_dir" if real else "family"], row["split"])] += 1
    if n_rows != f["rows"]:
        problems.append(f"{where}: {n_rows} rows, manifest.json says {f['rows']}")
    problems += found
    return seen, file_counted, file_families


def _check_counts(m: dict, counted: collections.Counter, families: collections.Counter, problems: list[str]) -> None:
    """The rows counted per (config, split) and per (config, family, split) against the
    manifest's counts."""
    total = 0
    for config, c in m["counts"]["configs"].items():
        for split, n in c["splits"].items():
            total += n
            if counted[(config, split)] != n:
                problems.append(f"counts: {config}/{split} holds {counted[(config, split)]} records, manifest.json says {n}")
        if sum(c["splits"].values()) != c["records"]:
            problems.append(f"counts: {config} records {c['records']} is not the sum of its splits")
        for fam, per in c["families"].items():
            for split in fmt.SPLITS:
                if families[(config, fam, split)] != per[split]:
                    problems.append(f"counts: {config}/{fam}/{split} holds {families[(config, fam, split)]} records, "
                                    f"manifest.json says {per[split]}")
            if sum(per[s] for s in fmt.SPLITS) != per["total"]:
                problems.append(f"counts: {config}/{fam} total {per['total']} is not the sum of its splits")
    if total != m["counts"]["records_out"] or sum(counted.values()) != total:
        problems.append(f"counts: records_out {m['counts']['records_out']}, the splits sum to {total}, "
                        f"the shards hold {sum(counted.values())}")
    for config, fam, split in families:
        if fam not in m["counts"]["configs"].get(config, {}).get("families", {}):
            problems.append(f"counts: family {config}/{fam} is in the shards but not in manifest.json")


def verify(dist: str) -> list[str]:
    """Every problem found, one line each; empty when the release is intact."""
    if not os.path.isdir(dist):
        return [f"{dist}: not a directory"]
    problems: list[str] = []
    m = _load_manifest(dist, problems)
    if m is None:
        return problems
    _check_files(dist, m, problems)
    _check_rows(dist, m, problems)
    return problems


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0].startswith("-"):
        print("error: usage: ./bazelw run //tools:verify -- DIST (a release directory)", file=sys.stderr)
        return 2
    shown = files.quote(argv[0])
    try:
        with sigterm_raises():
            problems = verify(caller_path(argv[0]))
    except (KeyboardInterrupt, Terminated) as e:
        print(f"error: {shown}: {'terminated (SIGTERM)' if isinstance(e, Terminated) else 'interrupted'}; nothing written",
              file=sys.stderr)
        return EXIT_TERMINATED if isinstance(e, Terminated) else 130
    if problems:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        print(f"error: {shown}: {files.quote(problems[0], 400)}{more}", file=sys.stderr)
        return 1
    print(f"ok: {shown} matches its manifest.json (files, checksums, card, schema, counts)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
