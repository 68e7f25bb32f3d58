"""Browse a release in a web browser: a static site of its pairs, side by side.

Usage: ./bazelw run //report:explore -- DIST [--out DIR]

Writes DIR (default DIST/explore/): index.html (the overview: configs, splits, families, checks,
rejects, the report's plots), list.html (filter by config, split, family, check status and
builtin; search by id or kernel name; paged) and pair.html (the Python source next to the forward
and backward C++, CUDA and PTX, highlighted by Pygments, with line links where Warp's `<L n>`
comments give them; inputs, outputs, the gradient example, every check with its reason, the
provenance). Open DIR/index.html from the file system, or serve DIR with `python3 -m http.server`:
no build step, no third-party request (a Content-Security-Policy forbids them).

The data is cut into small script files (100 list rows, 25 pairs, one facet value, one search
prefix each) that a page loads as it needs them, so a release of a million rows opens as fast as
one of a thousand. Every byte of DIST is hostile: it is read by the rule of
report/release_reader.py, and record text reaches a page only as text, never as markup.
The directory is built beside DIR and renamed into place; an existing DIR is replaced only when it
is empty or a previous explorer (it holds data/meta.js).
"""

from __future__ import annotations

import os
import sys
import time

from report import explore_pass, explore_site
from report import facts as facts_mod
from report import plots
from report.facts import ReleaseError
from runtime.process import EXIT_TERMINATED, Terminated, caller_path, sigterm_raises
from schemas.dataset_format import RELEASE_EXPLORE_DIR
from schemas.files import quote
from tools.release_format import OneLineParser, built_beside

EXIT_INTERRUPTED = 128 + 2


def build(dist: str, shown: str, out: str) -> dict:
    """Writes the explorer of the release `dist` to `out`; its meta (rows, facets, ...)."""
    m, rows, measured = facts_mod.load_release(dist, shown)
    facts = facts_mod.build(m, rows, measured, 0, 1, dist, shown)["facts"]
    with built_beside(out, ".explore-") as tmp:
        os.makedirs(os.path.join(tmp, "plots"))
        figs = plots.draw_all(facts, rows, measured, os.path.join(tmp, "plots"))
        called_at = {r["at"]: r["builtins"] for rs in rows.values() for r in rs}
        del rows, measured
        meta = explore_pass.run_pass(dist, shown, m, tmp, called_at)
        explore_site.write_assets(tmp)
        explore_site.write_pages(tmp, m, meta, facts, figs)
    return meta


class _Parser(OneLineParser):
    usage_hint = "DIST [--out DIR]"

    def error(self, message):
        super().error(quote(message, 500))


def _refuse_out(out: str) -> bool:
    """True where `out` exists and is neither empty nor a previous explorer."""
    if os.path.islink(out):
        return True
    return os.path.lexists(out) and not (os.path.isdir(out) and (
        not os.listdir(out) or os.path.isfile(os.path.join(out, "data", "meta.js"))))


def main(argv=None) -> int:
    p = _Parser(prog="explore", description=__doc__.split("\n")[0])
    p.add_argument("dist", metavar="DIST", help="release directory (written by //tools:release)")
    p.add_argument("--out", metavar="DIR", help="where to write the site (default DIST/explore)")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    dist = caller_path(args.dist)
    out = caller_path(args.out) if args.out else os.path.join(dist, RELEASE_EXPLORE_DIR)
    shown_out = quote(args.out or os.path.join(args.dist, RELEASE_EXPLORE_DIR))
    t0 = time.monotonic()
    try:
        with sigterm_raises():
            if _refuse_out(out):
                print(f"error: {shown_out} exists and is not a previous explorer; refusing to overwrite it",
                      file=sys.stderr)
                return 2
            meta = build(dist, args.dist, out)
    except ReleaseError as e:
        print(f"error: {e}" if str(e).isprintable() else f"error: {quote(str(e), 2000)}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, Terminated) as e:
        how = "terminated (SIGTERM)" if isinstance(e, Terminated) else "interrupted"
        print(f"error: {how}; no explorer written", file=sys.stderr)
        return EXIT_TERMINATED if isinstance(e, Terminated) else EXIT_INTERRUPTED
    except OSError as e:
        print(f"error: {quote(e.filename or shown_out)}: {quote(e.strerror or type(e).__name__)}", file=sys.stderr)
        return 2
    print(f"explorer of {meta['rows']} pairs -> {shown_out}/index.html "
          f"({len(meta['facets'].get('builtin', []))} builtins, {time.monotonic() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
