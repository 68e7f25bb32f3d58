"""The dataset card (README.md): Hugging Face YAML front matter, then sections computed from the
release manifest. No number here is typed by hand."""

from __future__ import annotations

import json
import shlex

import schemas
from schemas.files import fence, md
from tools.release_format import SPLITS
from schemas.dataset_format import REAL_CONFIG
from validator.verdicts import FINDINGS_CONFIG

LICENSE = "apache-2.0"  # the repository has no LICENSE file; Warp itself is Apache-2.0
TAGS = ["code", "warp", "cuda", "ptx", "compilers"]


def _yaml(manifest: dict) -> list[str]:
    out = ["---", f"license: {LICENSE}", "task_categories:", "- text-generation", "tags:"]
    out += [f"- {t}" for t in TAGS]
    out += ["size_categories:", f"- {json.dumps(manifest['size_category'])}", "configs:"]
    for config, c in manifest["counts"]["configs"].items():
        out += [f"- config_name: {config}", "  data_files:"]
        for split in (s for s in SPLITS if c["splits"][s]):
            out += [f"  - split: {split}", f"    path: data/{config}/{split}-*.parquet"]
    return out + ["---"]


def _table(header: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return out + ["| " + " | ".join(md(x) for x in row) + " |" for row in rows]


def render(m: dict) -> str:
    lines = _yaml(m) + _intro(m) + _counts(m["counts"], m["splits"]["fractions"])
    lines += _dedup(m["dedup"], m["near_duplicates"]) + _validation(m["validation"])
    lines += _schema(m["columns"], m["toolchain"]) + _runs(m["inputs"]) + _real(m.get("real"), m["counts"]["configs"])
    lines += _versions(m) + _reproduce(m)
    return "\n".join(lines)


def _intro(m: dict) -> list[str]:
    """The title, what the pairs are, how to load one config, and what the findings config is."""
    c = m["counts"]
    lines = ["", f"# Warp kernel -> IR pairs, release {md(m['version'])}", "",
             "Randomly generated, well-defined NVIDIA Warp kernels (Python) paired with the code Warp "
             "generates for them: C++ for the CPU backend and CUDA C++ (forward and backward), and PTX "
             "from NVRTC. Every " + ("synthetic " if m.get("real") else "") + "pair was recompiled and executed "
             "against a NumPy oracle before release." + (f" The `{REAL_CONFIG}` config holds real kernels of the "
                                                         "warp-lang wheel instead (below)." if m.get("real") else ""),
             "", "Load one config:", "", "```python", "import datasets",
             f"ds = datasets.load_dataset(\"parquet\", data_dir=\"data/{next((k for k in c['configs'] if k != FINDINGS_CONFIG), 'cpu')}\")",
             "```", ""]
    if FINDINGS_CONFIG in c["configs"]:
        lines += [f"The `{FINDINGS_CONFIG}` config is not training data: its {c['configs'][FINDINGS_CONFIG]['records']} pairs are "
                  "findings about Warp, kernels whose forward run matched the oracle but whose adjoint (Warp's "
                  "backward kernel) disagreed with the oracle's finite-difference gradient at the seeded inputs and "
                  "again at a nearby point (`execute_backward_cpu` or `_gpu` failed as `gradient_mismatch`). Each "
                  "row is a reproducer: spec, source, IR, inputs and the `grad` example (cotangent w, directions v, "
                  "Warp's gradient g, <g, v> and the differences). The cpu and cuda configs hold no such pair.", ""]
    return lines


def _counts(c: dict, fr: dict) -> list[str]:
    """The sections Counts, Families and Splits."""
    lines = ["## Counts", ""]
    rows = [[k, v["records"]] + [v["splits"][s] for s in SPLITS] for k, v in c["configs"].items()]
    lines += _table(["config", "records"] + list(SPLITS), rows)
    lines += ["", f"{c['records_in']} records in, {c['records_out']} released.", "", "## Families", ""]
    rows = [[k, f] + [n[s] for s in SPLITS] + [n["total"]] for k, v in c["configs"].items() for f, n in v["families"].items()]
    lines += _table(["config", "family"] + list(SPLITS) + ["total"], rows)
    lines += ["", "## Splits", "",
              f"Each kernel's split follows from the sha256 of its AST skeleton (identifiers and literals "
              f"abstracted), cut at {', '.join(f'{s} {fr[s]:.0%}' for s in SPLITS)}: kernels with the same "
              "structure never straddle splits, and a kernel keeps its split across releases.", ""]
    rows = [[k] + [v["skeletons"][s] for s in SPLITS] for k, v in c["configs"].items()]
    return lines + _table(["config"] + [f"{s} skeletons" for s in SPLITS], rows)


def _dedup(dd: dict, near: dict) -> list[str]:
    """The section Deduplication: exact duplicates removed, near-duplicates audited."""
    return ["", "## Deduplication", "",
            f"Exact duplicates removed: {dd['removed_total']} "
            f"({', '.join(f'{k}: {v}' for k, v in dd['removed'].items())}; per config: "
            f"{', '.join(f'{c} {sum(v.values())}' for c, v in dd['removed_by_config'].items()) or 'none'}); the source is compared with the "
            "kernel's name normalized, then the IR likewise. Of each duplicate group the record first by "
            f"(target, family, seed, id) is kept, a {REAL_CONFIG} record before any other.", "",
            f"Near-duplicate audit ({near['method']}), Jaccard >= {near['threshold']}: {near['pairs']} pairs "
            f"({near['within_split_pairs']} within a split, {near['cross_split_pairs']} across splits) in "
            f"{near['clusters']} clusters covering {near['records_in_clusters']} records; largest cluster "
            f"{near['largest_cluster']}. Near-duplicates are reported, not removed.", ""]


def _validation(val: dict) -> list[str]:
    """The section Validation: the verdicts per config and check, whether the GPU ran, the notes."""
    lines = ["## Validation", ""]
    checks = sorted({k for v in val["verdicts"].values() for k in v})
    rows = [[t, k, ", ".join(f"{s} {n}" for s, n in v[k].items())] for t, v in val["verdicts"].items() for k in checks if k in v]
    lines += _table(["config", "check", "verdicts"], rows)
    gpu = "yes" if val["gpu_executed"] else "no"
    lines += ["", f"GPU execution ran: {gpu}."]
    for k, notes in val["notes"].items():
        lines += [f"- {md(k)}: {md('; '.join(notes))}"]
    return lines


def _schema(columns: list[dict], tc: dict) -> list[str]:
    """The sections Schema, What the code columns hold, Validating this dataset yourself and
    Toolchain."""
    lines = ["", "## Schema", "", "One row per pair; JSON columns hold JSON text.", ""]
    lines += _table(["column", "type", "description"], [[x["name"], x["type"], x["description"]] for x in columns])
    return lines + [
        "", "## What the code columns hold", "",
        "`ir_cpp_*` are the functions Warp compiled for a CPU launch (the module as loaded with "
        f"block_dim {tc['cpu']['options'].get('block_dim')}) and `ir_cuda_*` the functions NVRTC compiled "
        f"(grid-stride loop: {tc['cuda']['options'].get('grid_stride')}), each cut verbatim from the module "
        "source Warp handed its compiler, with names cleaned (the build directory dropped from "
        "`// file.py:line` comments, trailing spaces stripped, blank-line runs collapsed); the PTX comes "
        "from the same CUDA compile. Pair schema 2.0.0 made this so: 1.x records stored code generated "
        "by a second path that differed from the compiled text.", "",
        "## Validating this dataset yourself", "",
        "`./bazelw run //tools:verify -- DIST` re-checks this release's files, checksums, counts and every row's "
        "static checks; `./bazelw run //validator -- DIST` re-executes every row (this release's Parquet "
        "files, or generator output) and compares it with what is stored. "
        "Neither imports or executes any text a record carries: a record's spec must be exactly the spec the "
        "generator draws for its (family, seed), only its rendering is ever imported, the source must equal "
        "that rendering, and an exact AST allowlist, size and nesting bounds come first. The validator "
        "compiles and executes in a child process with resource limits and a timeout. `//tools:verify` "
        "executes nothing, so it cannot catch wrong outputs or gradients in a consistent record; the "
        "validator re-executes and does.", "",
        "## Toolchain", "", "Measured from the compiles that ran (versions from the running Warp; per "
        "backend, the module's resolved options and the compiler call's arguments):", "",
        *fence(json.dumps(tc, indent=2, sort_keys=True), "json"), ""]


def _runs(inputs: list[dict]) -> list[str]:
    """The section Generator runs: one row per input."""
    rows = [[i["path"], i["target"], i["generator"]["seed"], ", ".join(i["generator"]["families"]),
             i["counts"].get("attempted", "?"), i["counts"].get("rejected", "?"), i["records"], _throughput(i.get("run"))]
            for i in inputs]
    return ["## Generator runs", ""] + _table(
        ["input", "target", "seed", "families", "attempted", "rejected", "records", "pairs/s (workers)"], rows)


def _real(real: dict | None, configs: dict) -> list[str]:
    """The section The real config (only when a harvest was an input): what a real pair is, what
    was checked and what was not, its inputs and its columns."""
    if not real:
        return []
    n = configs.get(REAL_CONFIG, {}).get("records", 0)
    rows = [[i["path"], i["warp_lang"], i["license"], i["limit"] if i["limit"] is not None else "all", i["records"],
             i["published"], i.get("replayed", 0), ", ".join(f"{k} {v}" for k, v in i["left_out_by_reason"].items()) or "none"]
            for i in real["inputs"]]
    lines = ["", f"## The {REAL_CONFIG} config", "",
             f"{n} kernels that the warp-lang wheel itself defines (its examples, tests and library: the "
             "`wheel_dir` column), harvested by `//harvest`, each with its provenance (the file inside the wheel, the "
             "lines of the definition, the file's sha256, the wheel's version and licence) and the code Warp "
             "generates for it, cut from what its compilers were given, as for the synthetic pairs. A row's "
             "`source` is the kernel as the wheel writes it, made standalone (`provenance.extraction` says what was "
             "added). Published: the kernels Warp lowered that compiled on both backends (LLVM and NVRTC); every "
             "other record of the harvest is counted below by reason.", "",
             "What a real pair proves: the text is the wheel's (`//tools:verify` re-cuts it from the installed wheel "
             "at its provenance without importing it) and the code is what Warp generates for it (`//validator` "
             "harvests and lowers it again and requires every field to be equal). Where the wheel's own tests "
             "launched the kernel on the CPU, the row's `launch` holds that launch (dim, and every argument before "
             "and after it ran, small ones only) and `execute` says whether the harvested kernel, launched again with "
             "those arguments, left every array byte for byte as the wheel's run did (`replay_cpu`; //validator runs "
             "the tests and the replays again). What it does not prove: there is no oracle for a real kernel, so "
             "what it computes is checked only against the wheel's own run, and a kernel the tests never launched "
             "(or launched with arguments that are not plain data) was not executed at all.", "",
             f"Use it held out: a model trained on the synthetic configs, scored on `{REAL_CONFIG}`, shows how it "
             "does on real Warp code. Its split follows the same skeleton rule, and the release's exact "
             f"deduplication keeps a kernel's text in `{REAL_CONFIG}`, never in a synthetic config.", ""]
    lines += _table(["harvest", "warp-lang", "license", "limit", "records", "published", "replayed", "left out"], rows)
    lines += ["", f"Columns of `{REAL_CONFIG}` (real record schema {md(real['record_schema_version'])}):", ""]
    return lines + _table(["column", "type", "description"], [[x["name"], x["type"], x["description"]]
                                                            for x in real["columns"]])


def _reproduce(m: dict) -> list[str]:
    """The section Reproduce: the command that made the release, and the one that verifies it."""
    return ["", "## Reproduce", "",
            "From the directory the release was made in (paths as typed there), with the generator outputs above:", "",
            *fence(m["command"].replace("\n", " ").replace("\r", " ") + "\n./bazelw run //tools:verify -- "
                   + _out_arg(m["command"]), "sh"), "",
            f"Pair record schema {m['record_schema_version']}; manifest.json lists every file with its "
            "sha256 and size.", ""]


def _versions(m: dict) -> list[str]:
    """The version of each artifact the release holds, with its note (schemas.RELEASE_NOTES),
    and the earlier pair record versions."""
    notes = schemas.RELEASE_NOTES
    current = [("pair record (schemas/pair.schema.json)", "pair", m["record_schema_version"]),
               ("release manifest (manifest.json, schemas/manifest.schema.json)", "release_manifest",
                m["manifest_version"]),
               ("kernel spec (the `spec` column's spec_version)", "spec", schemas.SPEC_VERSION)]
    out = ["", "## Versions", ""]
    out += _table(["artifact", "version", "note"], [[name, v, notes[key][v]] for name, key, v in current])
    earlier = [v for v in notes["pair"] if v != m["record_schema_version"]]
    if earlier:
        out += ["", "Earlier pair record versions (not in this release):", ""]
        out += [f"- {v}: {notes['pair'][v]}" for v in earlier]
    return out


def _throughput(run: dict | None) -> str:
    if not run or run.get("pairs_per_s") is None:
        return "not recorded"
    return f"{run['pairs_per_s']} ({run.get('workers', '?')})"


def _out_arg(command: str) -> str:
    parts = shlex.split(command)
    for i, p in enumerate(parts):
        if p == "--out" and i + 1 < len(parts):
            return shlex.quote(parts[i + 1])
        if p.startswith("--out="):
            return shlex.quote(p[len("--out="):])
    return "DIST"
