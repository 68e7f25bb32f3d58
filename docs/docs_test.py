"""Docs that cannot rot: README.md and docs/*.md held against the code.

- Every command shown (`./bazelw run //pkg:target -- ...`, `bazel run ...`, a bare
  `//pkg:target -- ...` in inline code, and `python -m pipeline.cpu ...` / `python
  validator/__main__.py ...` for the programs below) names a real program, and every `--flag` it
  shows appears in that program's own `--help` output. The programs run for real: under Bazel the
  py_binaries listed as `data` of this test, from runfiles; under plain pytest their main files
  with this interpreter and the repository root on PYTHONPATH.
- Every `bash bench/NAME.sh ...` shown names a script of bench/, and every `--flag` it shows is
  in the script's usage (its header comment).
- Every relative link between README.md and docs/*.md resolves, `#anchor` included.
- docs/families.md's generated block is what `build_spec`/`render_source` give today, and every
  Python example headed `# build_spec(family, seed)` anywhere in the docs is that rendering.
- The checkers can fail: a README with a flag that does not exist, a label that names no program,
  and a broken link or anchor are each caught (on modified text; the real files are not touched).
"""

from __future__ import annotations

import functools
import glob
import os
import re
import subprocess
import sys

import pytest

from docs import families
from generator.families import build_spec
from generator.render import render_source

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README_MAX_LINES = 250

# label -> (the py_binary's path under runfiles, its main file); docs/BUILD.bazel lists the same
# binaries as data. A label the docs show that is not here fails the test.
PROGRAMS = {
    "//pipeline:cpu": ("pipeline/cpu", "pipeline/cpu.py"),
    "//pipeline:cuda": ("pipeline/cuda", "pipeline/cuda.py"),
    "//generator:audit": ("generator/audit", "generator/audit_main.py"),
    "//validator:validator": ("validator/validator", "validator/__main__.py"),
    "//validator:fault_audit": ("validator/fault_audit", "validator/fault_audit_main.py"),
    "//tools:stats": ("tools/stats", "tools/dataset_stats.py"),
    "//tools:provenance": ("tools/provenance", "tools/provenance.py"),
    "//tools:release": ("tools/release", "tools/release.py"),
    "//tools:verify": ("tools/verify", "tools/verify.py"),
    "//report:report": ("report/report", "report/__main__.py"),
    "//report:explore": ("report/explore", "report/explore_main.py"),
    "//bench:bench": ("bench/bench", "bench/bench_main.py"),
    "//bench:explore": ("bench/explore", "bench/explore_bench.py"),
    "//bench:eval": ("bench/eval", "bench/eval_bench.py"),
    "//docs:families": ("docs/families", "docs/families.py"),
    "//eval:eval": ("eval/eval", "eval/main.py"),
    "//eval:tasks": ("eval/tasks", "eval/tasks_main.py"),
    "//eval:baseline": ("eval/baseline", "eval/baseline.py"),
    "//harvest:harvest": ("harvest/harvest", "harvest/harvest_main.py"),
}
ALIASES = {"//generator:cpu": "//pipeline:cpu", "//generator:cuda": "//pipeline:cuda"}
# `python -m MODULE` forms of the same programs (other modules the docs run are not checked)
MODULES = {"pipeline.cpu": "//pipeline:cpu", "pipeline.cuda": "//pipeline:cuda",
           "validator": "//validator:validator", "report": "//report:report"}

LABEL = r"//[\w./-]+(?::[\w.-]+)?"
BAZEL_RUN = re.compile(rf"(?:\./bazelw|\bbazel)\s+run\s+({LABEL})(.*)", re.S)
BARE = re.compile(rf"^({LABEL})\s+--\s(.*)", re.S)
PYTHON = re.compile(r"\bpython3?\s+(?:-m\s+([\w.]+)|([\w/]+\.py))(.*)", re.S)
FLAG = re.compile(r"(?<![\w-])--([A-Za-z][\w-]*)")
SCRIPT = re.compile(r"\bbash\s+(bench/[\w.-]+\.sh)(.*)", re.S)
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def doc_files() -> dict[str, str]:
    """{path relative to the root: text} of README.md and docs/*.md."""
    paths = [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
    out = {}
    for p in paths:
        with open(p, encoding="utf-8") as f:
            out[os.path.relpath(p, ROOT)] = f.read()
    return out


def segments(text: str) -> list[tuple[int, str]]:
    """(line, text) of every fenced code line (continuations joined) and every inline code span
    outside the fences."""
    out, prose, fence = [], [], None
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("```"):
            fence = None if fence is not None else i
            prose.append("")
        elif fence is not None:
            start = i
            while line.endswith("\\") and i + 1 < len(lines):
                i += 1
                line = line[:-1] + " " + lines[i]
            out.append((start + 1, line.strip()))
            prose += [""] * (i - start + 1)
        else:
            prose.append(line)
        i += 1
    body = "\n".join(prose)
    for m in re.finditer(r"`([^`]+)`", body):
        out.append((body.count("\n", 0, m.start()) + 1, " ".join(m.group(1).split())))
    return out


def _args(rest: str) -> str:
    """The command's own arguments: up to a shell comment, pipe, `;` or `&&`."""
    return re.split(r"\s#|\s\|\s|;|&&", rest, maxsplit=1)[0]


def commands(text: str) -> list[tuple[int, str, list[str]]]:
    """(line, label, flags) of every command the text shows."""
    found = []
    for line, seg in segments(text):
        for m in BAZEL_RUN.finditer(seg):
            found.append((line, m.group(1), FLAG.findall(_args(m.group(2)))))
        bare = BARE.match(seg)
        if bare and not BAZEL_RUN.search(seg):
            found.append((line, bare.group(1), FLAG.findall(_args(bare.group(2)))))
        for m in PYTHON.finditer(seg):
            module, script = m.group(1), m.group(2)
            label = MODULES.get(module) if module else next(
                (k for k, (_, main) in PROGRAMS.items() if main == script), None)
            if label:
                found.append((line, label, FLAG.findall(_args(m.group(3)))))
    return found


def script_usage(path: str) -> str | None:
    """The header comment of script `path` (relative to the repository root), or None if there is
    no such script."""
    full = os.path.join(ROOT, path)
    if not os.path.isfile(full):
        return None
    with open(full) as f:
        lines = f.read().split("\n")[1:]  # past the #! line
    return "\n".join(line for line in lines[:next((i for i, x in enumerate(lines) if not x.startswith("#")), len(lines))])


def script_problems(docs: dict[str, str], usage_of=script_usage) -> list[str]:
    """One line per `bash bench/NAME.sh` shown whose script does not exist, or per flag its usage
    lacks."""
    problems = []
    for name, text in docs.items():
        for line, seg in segments(text):
            for m in SCRIPT.finditer(seg):
                usage = usage_of(m.group(1))
                if usage is None:
                    problems.append(f"{name}:{line}: {m.group(1)} is no script of the repository")
                    continue
                known = set(FLAG.findall(usage))
                problems += [f"{name}:{line}: {m.group(1)} shows --{f}, which its usage does not list"
                             for f in FLAG.findall(_args(m.group(2))) if f not in known]
    return problems


def normalize(label: str) -> str:
    """`//validator` -> `//validator:validator`; aliases to what they stand for."""
    if ":" not in label:
        label = f"{label}:{label.rsplit('/', 1)[-1]}"
    return ALIASES.get(label, label)


@functools.lru_cache(maxsize=None)
def help_text(label: str) -> str:
    """What the program prints for `--help` (stdout and stderr), run for real."""
    binary, main = PROGRAMS[label]
    env = dict(os.environ)
    if "TEST_SRCDIR" in os.environ:
        argv = [os.path.join(os.environ["TEST_SRCDIR"], os.environ.get("TEST_WORKSPACE", "warp_ir"), binary)]
    else:
        argv = [sys.executable, os.path.join(ROOT, main)]
        env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
    proc = subprocess.run(argv + ["--help"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    return proc.stdout + proc.stderr


def command_problems(docs: dict[str, str], help_of=help_text) -> list[str]:
    """One line per command whose program is unknown or does not run, or per flag its --help lacks."""
    problems = []
    for name, text in docs.items():
        for line, shown, flags in commands(text):
            label = normalize(shown)
            if label not in PROGRAMS:
                problems.append(f"{name}:{line}: {shown} names no program docs/docs_test.py knows "
                                f"(add it to PROGRAMS and to docs/BUILD.bazel's data)")
                continue
            helped = help_of(label)
            if "usage" not in helped.lower():
                problems.append(f"{name}:{line}: {shown} --help printed no usage: {helped.strip()[-300:]}")
                continue
            known = set(FLAG.findall(helped))
            problems += [f"{name}:{line}: {shown} shows --{f}, which its --help does not list"
                         for f in flags if f not in known]
    return problems


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """The anchors of the text's headings (outside code fences), duplicates numbered as GitHub does."""
    seen: dict[str, int] = {}
    out, fence = set(), False
    for line in text.split("\n"):
        if line.lstrip().startswith("```"):
            fence = not fence
        elif not fence and re.match(r"#{1,6} ", line):
            s = slug(line.lstrip("#"))
            out.add(s if s not in seen else f"{s}-{seen[s]}")
            seen[s] = seen.get(s, 0) + 1
    return out


def without_code(text: str) -> str:
    """The text with code fences and inline code blanked (newlines kept, so lines still count)."""
    blank = lambda m: re.sub(r"[^\n]", " ", m.group(0))  # noqa: E731
    return re.sub(r"`[^`]+`", blank, re.sub(r"(?ms)^\s*```.*?^\s*```[^\n]*$", blank, text))


def links(text: str) -> list[tuple[int, str]]:
    """(line, target) of every Markdown link outside code."""
    prose = without_code(text)
    return [(prose.count("\n", 0, m.start()) + 1, m.group(1)) for m in LINK.finditer(prose)]


def link_problems(docs: dict[str, str]) -> list[str]:
    """One line per relative link that leads to no file of `docs` or to no heading in it."""
    problems = []
    for name, text in docs.items():
        for line, target in links(text):
            if re.match(r"[a-z]+:", target):
                continue  # http(s):, mailto: and the like
            path, _, anchor = target.partition("#")
            dest = os.path.normpath(os.path.join(os.path.dirname(name), path)) if path else name
            if dest not in docs:
                problems.append(f"{name}:{line}: link to {target}: no such page among README.md and docs/*.md")
            elif anchor and anchor not in anchors(docs[dest]):
                problems.append(f"{name}:{line}: link to {target}: {dest} has no heading #{anchor}")
    return problems


def build_spec_examples(text: str) -> list[tuple[str, int, str]]:
    """(family, seed, code) of every ```python block whose first line is `# build_spec(family, seed)`."""
    found = []
    for m in re.finditer(r"```python\n(.*?)\n```", text, re.S):
        head = re.match(r"# build_spec\('(\w+)', (\d+)\)\n", m.group(1))
        if head:
            found.append((head.group(1), int(head.group(2)), m.group(1)))
    return found


def test_every_command_and_flag_in_the_docs_exists():
    """Every command in README.md and docs/*.md names a real program, every flag shown is in its
    --help, and every program of the map is shown somewhere (the map holds no stale label)."""
    docs = doc_files()
    assert command_problems(docs) == []
    shown = {normalize(label) for text in docs.values() for _, label, _ in commands(text)}
    assert set(PROGRAMS) - shown == set(), "programs of PROGRAMS the docs never show"


def test_the_checker_fails_on_a_flag_that_does_not_exist():
    """README.md with a made-up flag on the release command and a command naming an unknown
    target: both are reported, by file, line, label and flag."""
    readme = doc_files()["README.md"]
    assert "./bazelw run //tools:release -- --in" in readme
    bad = readme.replace("./bazelw run //tools:release -- --in", "./bazelw run //tools:release -- --shards 3 --in", 1)
    bad += "\n```sh\n./bazelw run //tools:nonesuch -- --count 3\n```\n"
    problems = command_problems({"README.md": bad})
    assert len(problems) == 2, problems
    assert "//tools:release shows --shards, which its --help does not list" in problems[0]
    assert "//tools:nonesuch names no program" in problems[1]
    assert commands("`//generator:cpu -- --count 3 --colour red`")[0][1:] == ("//generator:cpu", ["count", "colour"])


def test_every_bench_script_and_flag_in_the_docs_exists():
    """Every `bash bench/NAME.sh` the docs show is a script of bench/ and every flag shown is in its
    usage; the checker reports a missing script and a made-up flag."""
    docs = doc_files()
    assert any(SCRIPT.search(seg) for text in docs.values() for _, seg in segments(text))
    assert script_problems(docs) == []
    bad = "`bash bench/ab_checkouts.sh --count 3 --colour red 5720159 HEAD` and `bash bench/nonesuch.sh --count 3`"
    assert script_problems({"x.md": bad}) == [
        "x.md:1: bench/ab_checkouts.sh shows --colour, which its usage does not list",
        "x.md:1: bench/nonesuch.sh is no script of the repository"]


def test_every_link_between_the_docs_resolves():
    """Every relative link of README.md and docs/*.md leads to one of those pages, and to a
    heading of it where it names one; README.md links to every page of docs/."""
    docs = doc_files()
    assert link_problems(docs) == []
    linked = {os.path.normpath(target.partition("#")[0]) for _, target in links(docs["README.md"])}
    assert {n for n in docs if n.startswith("docs/")} - linked == set(), "pages the README does not link to"


def test_the_checker_fails_on_a_broken_link():
    """A link to a page that does not exist and a link to a heading that does not exist are
    both reported."""
    docs = doc_files()
    assert "(docs/proof.md)" in docs["README.md"]
    docs["README.md"] += "\nSee [proofs](docs/proofs.md) and [checks](docs/proof.md#no-such-heading).\n"
    problems = link_problems(docs)
    assert len(problems) == 2, problems
    assert "docs/proofs.md: no such page" in problems[0] and "has no heading #no-such-heading" in problems[1]
    assert anchors("# A `b` c, d!\n```\n# not a heading\n```\n## A b c d\n") == {"a-b-c-d", "a-b-c-d-1"}
    assert links("`a[0](x)` [b](c.md)\n```\n[d](e.md)\n```\n") == [(1, "c.md")]


def test_the_family_examples_are_what_the_generator_gives_today():
    """docs/families.md's generated block equals a fresh rendering (re-run `PYTHONPATH=. python3
    docs/families.py --write` after changing the generator)."""
    _, block, _ = families.split_page(doc_files()["docs/families.md"])
    assert block == families.block(), "docs/families.md is stale: run PYTHONPATH=. python3 docs/families.py --write"


def test_every_build_spec_example_is_today_s_rendering():
    """Every Python example headed `# build_spec(family, seed)` in README.md and docs/*.md is
    `render_source(build_spec(family, seed))` without its import line; the README's pair example
    is one of them."""
    found = [(n, *e) for n, text in doc_files().items() for e in build_spec_examples(text)]
    assert any(n == "README.md" for n, *_ in found) and len(found) > len(families.SEEDS)
    stale = [f"{n}: build_spec({fam!r}, {seed})" for n, fam, seed, code in found
             if code != families.example(fam, seed)]
    assert stale == [], f"examples that are not today's rendering: {stale}"
    assert render_source(build_spec("arith", 20)).startswith("import warp as wp\n")


_WORDS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
          "seventeen eighteen nineteen twenty twenty-one twenty-two twenty-three twenty-four twenty-five twenty-six "
          "twenty-seven twenty-eight twenty-nine thirty").split()


def test_the_readme_s_family_counts_and_schema_version_are_the_code_s():
    """What the README says of the generator's families (how many, per target) and of a record's
    schema version is what the code has: a new family or a schema bump without the README fails."""
    from generator.families import FAMILIES, families_for
    from schemas import PAIR_SCHEMA_VERSION

    readme = doc_files()["README.md"]
    assert f"kernels from {_WORDS[len(FAMILIES)]} families" in readme
    assert f"the {_WORDS[len(FAMILIES)]} families, each with a real example" in readme
    for target in ("cpu", "cuda"):
        assert f"pairs from the {_WORDS[len(families_for(target))]} {target.upper()} families" in readme, target
    assert f"(`schemas/pair.schema.json`, version {PAIR_SCHEMA_VERSION})" in readme
    runs = doc_files()[os.path.join("docs", "runs.md")]
    assert f"(schemas/pair.schema.json, version {PAIR_SCHEMA_VERSION})" in runs


def test_the_readme_is_short():
    """The README stays a five-minute read: at most 250 lines."""
    assert doc_files()["README.md"].count("\n") <= README_MAX_LINES


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
