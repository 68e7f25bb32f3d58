"""The one registry of fault and attack kinds: every way the project corrupts or forges data to
prove that its tools reject it. Each kind says what it does, what //validator must answer, the
entry points it is tried through and the test that tries it there:

- the fault audit's injections (validator/faults.py iterates FAULT_AUDIT, validator/faults_test.py
  runs it), each a corrupted copy of a valid record;
- the hostile records of tools/untrusted_test.py (a record line, or a release row), which that
  test's entry-point tests iterate by entry point;
- the hostile files around the records (manifests, shard and Parquet files, report paths), each
  tried by a test marked `@tries(name)` in the test named by its suite.

A kind added here without a builder or a marked test fails its suite's test (`untried`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

# what //validator answers when it refuses the whole input before any work (exit 2, one error line)
REFUSED = "refused"


class EntryPoint(enum.Enum):
    VALIDATOR = "//validator"  # revalidate; the fault audit runs it over its faulty shards
    RELEASE = "//tools:release"  # the release's gate
    VERIFY = "//tools:verify"


class Suite(enum.Enum):
    """The test that makes a kind and tries it through each of its entry points."""

    FAULT_AUDIT = "validator/faults_test.py"
    HOSTILE_RECORDS = "tools/untrusted_test.py"
    HOSTILE_FILES = "tools/hostile_files_test.py"


@dataclass(frozen=True)
class Kind:
    name: str
    does: str  # what is done to the data
    # what //validator's rejection may carry: the reason keys (text before the first ':') of the
    # record it rejects, or REFUSED; empty where //validator is no entry point
    reasons: frozenset[str]
    entry_points: tuple[EntryPoint, ...]
    suite: Suite
    line: bool  # a record's line (a shard line; a release row through //tools:verify), else a file


V, R, F = EntryPoint.VALIDATOR, EntryPoint.RELEASE, EntryPoint.VERIFY


def _kinds(suite: Suite, line: bool, rows: list[tuple]) -> list[Kind]:
    return [Kind(name, does, frozenset(reasons), tuple(entry), suite, line) for name, does, reasons, entry in rows]


# in the fault audit's order (fault k is of kind k % len: the order decides which record each gets)
FAULT_AUDIT = tuple(_kinds(Suite.FAULT_AUDIT, True, [
    ("ir_token", "one token of one IR text (cpp/cuda/ptx, forward/backward) edited", {"ir_match"}, [V]),
    ("output_perturb", "one stored output element changed: +1 (or x0.5), a sign flip or one ulp", {"io"}, [V]),
    ("output_swap", "the stored outputs of another record whose outputs differ", {"io"}, [V]),
    ("output_nan", "a NaN in one element of one float output", {"io"}, [V]),
    ("drop_field", "one required field deleted, top-level or nested", {"schema"}, [V]),
    ("mistype_field", "one field given a wrong type, or a value outside its enum, pattern or range", {"schema"}, [V]),
    ("hostile_import", "an import of os, subprocess, ctypes, ... added to the source", {"safety"}, [V]),
    ("hostile_dunder", "an __import__ call or a dunder attribute walk in the kernel body", {"safety"}, [V]),
    ("hostile_call", "a call of a Python builtin that is no Warp builtin (open, eval, ...) in the kernel body",
     {"safety"}, [V]),
    ("spec_edit", "one literal or operator of the spec changed (or its name, an arg dtype, its version)", {"spec"}, [V]),
    ("truncated_line", "the JSON line cut short, as by an interrupted write", {"corrupt"}, [V]),
    ("output_malformed", "a stored output that is no tensor: unknown dtype, non-numeric data, wrong shape, int NaN",
     {"io"}, [V]),
    ("derived_field", "a field that follows from the spec or source (id, names, dim, args, seeded inputs, "
                      "verdicts, launch sizes) edited", {"consistency"}, [V]),
    ("spec_forgery", "the spec edited, the source re-rendered from it and every derived field recomputed",
     {"spec"}, [V]),
    ("grad_perturb", "one element of Warp's stored input gradient changed", {"gradient"}, [V]),
    ("backward_swap", "another record's backward code (C++ or CUDA)", {"ir_match"}, [V]),
]))

HOSTILE_RECORDS = tuple(_kinds(Suite.HOSTILE_RECORDS, True, [
    ("default_argument", "a default argument that calls open (Python evaluates it at import)", {"safety"}, [V, R, F]),
    ("annotation_call", "an annotation that calls open", {"safety"}, [V, R, F]),
    ("wp_call_in_annotation", "a wp.array annotation whose device argument calls open", {"safety"}, [V, R, F]),
    ("builtin_shadow", "a top-level function named open, so calls of open look like own helpers",
     {"safety"}, [V, R, F]),
    ("wp_static", "wp.static(open(...)), evaluated by Python during Warp's codegen", {"safety"}, [V, R, F]),
    ("aot_module_dir", "wp.compile_aot_module writing to a chosen directory", {"safety"}, [V, R, F]),
    ("spec_dtype", "a crafted spec arg dtype that renders hostile Python", {"schema", "spec"}, [V, R, F]),
    ("spec_name", "a crafted spec name that renders hostile Python", {"schema", "spec"}, [V, R, F]),
    ("spec_body_static", "a spec body that calls static(open(...))", {"spec"}, [V, R, F]),
    ("huge_shape", "an array of 2**40 elements", {"spec"}, [V, R, F]),
    ("huge_dim", "a launch of 2**40 threads", {"spec"}, [V, R, F]),
    # in a shard its depth is measured on the bytes before decoding (corrupt); in a release's
    # JSON column, after (bounds)
    ("deep_spec_parseable", "a spec body nested 300 deep", {"bounds", "corrupt"}, [V, R, F]),
    ("deep_spec_100k", "a spec nested 100000 deep", {"corrupt"}, [V, R]),
    ("malformed_utf8", "bytes that are not UTF-8", {"corrupt"}, [V, R]),
    ("torn_line", "the line cut short", {"corrupt"}, [V, R]),
    ("outputs_only", "one stored output element plus one (only re-execution can tell)", {"io"}, [V]),
    ("gradient_only", "one stored gradient element plus one (only re-execution can tell)", {"gradient"}, [V]),
]))

HOSTILE_FILES = tuple(_kinds(Suite.HOSTILE_RECORDS, False, [
    ("manifest_count_string", "a run manifest whose count is a string", {REFUSED}, [V]),
    ("manifest_key_removed", "a run manifest without a required key", {REFUSED}, [V]),
    ("torn_parquet", "a release's Parquet file cut in half", set(), [F]),
]) + _kinds(Suite.HOSTILE_FILES, False, [
    ("shard_name_newline", "a forged record in a shard listed under a name ending in a newline", {REFUSED}, [V, R]),
    ("unlisted_data_file", "a data file in a run that its manifest does not list", {REFUSED}, [V, R]),
    ("parquet_name_newline", "a row moved to a Parquet file listed under a name ending in a newline, re-signed",
     {REFUSED}, [V, F]),
    ("swapped_splits", "train and test Parquet files swapped, each manifest entry re-signed", {REFUSED}, [V, F]),
    ("report_link", "a link planted at the validator's report path", {REFUSED}, [V]),
    ("release_inside_input", "a release's output directory inside its input run", set(), [R]),
    ("report_inside_release", "the validator's report asked for inside the release it reads", {REFUSED}, [V]),
    ("rows_in_derived_folder", "a release's Parquet file copied under its report/ and explore/ folders "
     "(what //report and //report:explore write there), and unlisted beside its data", {REFUSED}, [V, F]),
    ("long_expression", "a source of one 100 KB expression (Python's parser recurses)", {"bounds"}, [V, R, F]),
    ("null_cells", "null cells in a release's rows (outputs, source): no record, or one that breaks the schema",
     {"corrupt", "schema"}, [V, F]),
    ("ptx_arch_mismatch", "a release's PTX column of an arch not the toolchain's", {"corrupt"}, [V, F]),
    ("parquet_bomb", "a Parquet file of a few MB that decompresses to 1.9 GB", {"corrupt"}, [V, F]),
    ("torn_row_group", "every Parquet file's first row group overwritten, footer intact, re-signed", {"corrupt"},
     [V, F]),
    ("overlong_line", "a shard line of 200 MB", {"corrupt"}, [V]),
    ("fifo", "a FIFO at a listed file's path", {REFUSED}, [V, R, F]),
    ("escape_in_id", "terminal escape sequences in a record's id", {"schema"}, [V]),
    ("escape_in_file_name", "terminal escape sequences in a file's name", {REFUSED}, [V, R]),
    ("markup_in_manifest", "HTML and Markdown in a run manifest's notes (and a card re-written with it raw)",
     set(), [R, F]),
]))

KINDS: tuple[Kind, ...] = FAULT_AUDIT + HOSTILE_RECORDS + HOSTILE_FILES
_BY_NAME = {k.name: k for k in KINDS}
assert len(_BY_NAME) == len(KINDS), "two kinds of one name"


def kind(name: str) -> Kind:
    return _BY_NAME[name]


def kinds(suite: Suite, entry: EntryPoint | None = None, line: bool | None = None) -> tuple[Kind, ...]:
    """The kinds `suite` tries (through `entry`; records' lines or files only), in registry order."""
    return tuple(k for k in KINDS if k.suite is suite and (entry is None or entry in k.entry_points)
                 and (line is None or k.line is line))


def tries(*names: str):
    """Marks a test function as the one that tries these file kinds through their entry points
    (an unregistered name fails at import)."""
    for name in names:
        kind(name)

    def mark(fn):
        fn.tried_kinds = names
        return fn
    return mark


def untried(namespace: dict, suite: Suite) -> list[str]:
    """What is wrong with the marks in a test module's `namespace` (its globals()): each file kind
    of `suite` no test is marked as trying, and each mark of a kind of another suite or a line."""
    marked = {n for v in namespace.values() if callable(v) for n in getattr(v, "tried_kinds", ())}
    problems = [f"{k.name}: registered for {suite.value}, no test is marked as trying it"
                for k in kinds(suite, line=False) if k.name not in marked]
    return problems + [f"{n}: marked here, but registered as {kind(n).suite.value}, line={kind(n).line}"
                       for n in sorted(marked) if kind(n).suite is not suite or kind(n).line]
