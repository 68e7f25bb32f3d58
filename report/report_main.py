"""The technical report of a release, generated from its manifest and Parquet shards.

Usage: ./bazelw run //report -- DIST [--out DIR] [--samples N] [--excerpt-lines N]

Writes DIR (default DIST/report/): report.md, report.html (self-contained: CSS inline, plots as
data URIs), the PNG plots, and facts.json: every number the report states, with where it comes
from. No number is typed in the prose (report/sections.py): it takes each one from the facts
(report/facts.py). The directory is built beside DIR and renamed into place; an existing DIR is
replaced only when it is empty or a previous report (it holds facts.json).

Every byte of DIST is treated as hostile (report/release_reader.py reads it by the rule of
schemas/files.py): an unreadable, linked, FIFO, oversized or over-nested file is one `error: ...`
line and exit 2; text from the release reaches report.md and report.html only as inert text
(report/document.py `u`) and the terminal only through `schemas.files.quote`; long lists are
capped. SIGTERM (or Ctrl-C) stops it with one line and exit 143 (130), the half-built directory
removed and DIR untouched.
"""

from __future__ import annotations

import os
import sys

from runtime.process import EXIT_TERMINATED, Terminated, caller_path, sigterm_raises
from report import document, plots
from report import facts as facts_mod
from report.document import u
from report.facts import ReleaseError
from report.sections import blocks
from schemas.files import quote
from schemas.dataset_format import RELEASE_REPORT_DIR, pretty_json
from tools.release_format import OneLineParser, built_beside

EXIT_INTERRUPTED = 128 + 2  # Ctrl-C (SIGINT)


def write(dist: str, shown: str, out: str, samples: int, excerpt_lines: int) -> dict:
    m, rows, measured = facts_mod.load_release(dist, shown)
    built = facts_mod.build(m, rows, measured, samples, excerpt_lines, dist, shown)
    with built_beside(out, ".report-") as tmp:
        figs = plots.draw_all(built["facts"], rows, measured, tmp)
        doc = blocks(built["facts"], figs)
        with open(os.path.join(tmp, "report.md"), "w", encoding="utf-8") as f:
            f.write(document.to_markdown(doc))
        with open(os.path.join(tmp, "report.html"), "w", encoding="utf-8") as f:
            f.write(document.to_html(doc, f"Warp kernel -> IR pairs, release {u(m['version'])}", tmp))
        with open(os.path.join(tmp, "facts.json"), "w", encoding="utf-8") as f:
            f.write(pretty_json(built))
    return built


class _Parser(OneLineParser):
    usage_hint = "DIST [--out DIR] [--samples N] [--excerpt-lines N]"

    def error(self, message):
        super().error(quote(message, 500))


def main(argv=None) -> int:
    p = _Parser(prog="report", description=__doc__.split("\n")[0])
    p.add_argument("dist", metavar="DIST", help="release directory (written by //tools:release)")
    p.add_argument("--out", metavar="DIR", help="where to write the report (default DIST/report)")
    p.add_argument("--samples", type=int, default=4, help="sample pairs to show (default 4)")
    p.add_argument("--excerpt-lines", type=int, default=40, help="lines of each field a sample shows (default 40)")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    if args.samples < 0 or args.excerpt_lines < 1:
        p.error("--samples must be >= 0 and --excerpt-lines >= 1")
    dist = caller_path(args.dist)
    out = caller_path(args.out) if args.out else os.path.join(dist, RELEASE_REPORT_DIR)
    shown_out = quote(args.out or os.path.join(args.dist, RELEASE_REPORT_DIR))
    # SIGTERM stops the report as Ctrl-C does: the temporary directory beside DIR is removed (by
    # `write`'s cleanup), DIR is untouched, one error line
    try:
        with sigterm_raises():
            if os.path.islink(out) or (os.path.lexists(out) and not (
                    os.path.isdir(out) and (not os.listdir(out) or os.path.isfile(os.path.join(out, "facts.json"))))):
                print(f"error: {shown_out} exists and is not a previous report; refusing to overwrite it",
                      file=sys.stderr)
                return 2
            built = write(dist, args.dist, out, args.samples, args.excerpt_lines)
    except ReleaseError as e:
        # its untrusted parts are quoted where it was made; quoted whole should anything slip through
        print(f"error: {e}" if str(e).isprintable() else f"error: {quote(str(e), 2000)}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, Terminated) as e:
        how = "terminated (SIGTERM)" if isinstance(e, Terminated) else "interrupted"
        print(f"error: {how}; no report written", file=sys.stderr)
        return EXIT_TERMINATED if isinstance(e, Terminated) else EXIT_INTERRUPTED
    except OSError as e:  # DIR's parent cannot be written, the disk is full...
        print(f"error: {quote(e.filename or shown_out)}: {quote(e.strerror or type(e).__name__)}", file=sys.stderr)
        return 2
    F = built["facts"]
    print(f"report of release {quote(F['release']['version'])} -> {shown_out}: "
          f"{F['counts']['records_out']} records, {len(F['samples']['records'])} samples")
    return 0


if __name__ == "__main__":
    sys.exit(main())
