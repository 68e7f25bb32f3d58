"""The explorer's pages: a static overview (index.html, every value escaped by `html.escape`), and
the list and pair pages, whose content the vendored-free script assets/explore.js builds from the
data files as text nodes. Every page carries a Content-Security-Policy that allows only the
site's own scripts, styles and images: no third-party request, no inline script, no handler."""

from __future__ import annotations

import html
import os
import shutil

from report import explore_data as ed
from report.release_reader import STATUSES
from schemas.dataset_format import REAL_CONFIG

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "base-uri 'none'; form-action 'none'")
ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "explore_assets")
TOP_REASONS = 20


def e(value) -> str:
    return html.escape(str(value), quote=True)


def page(title: str, kind: str, body: str, scripts: bool) -> str:
    js = ('<script src="data/meta.js"></script>\n<script src="assets/explore.js"></script>\n' if scripts else "")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)}</title>
<link rel="stylesheet" href="assets/explore.css"><link rel="stylesheet" href="assets/code.css">
<script src="assets/boot.js"></script>
{js}</head>
<body data-page="{kind}">
<nav><a href="index.html">Overview</a> <a href="list.html">Pairs</a></nav>
{body}
</body></html>
"""


def write_assets(out: str) -> None:
    """explore.js, explore.css and boot.js from the repository; code.css from Pygments."""
    from pygments.formatters import HtmlFormatter

    os.makedirs(os.path.join(out, "assets"), exist_ok=True)
    for name in ("explore.js", "explore.css", "boot.js"):
        shutil.copyfile(os.path.join(ASSETS, name), os.path.join(out, "assets", name))
    with open(os.path.join(out, "assets", "code.css"), "w", encoding="utf-8") as f:
        f.write(HtmlFormatter(style=ed.STYLE).get_style_defs(".code"))


def write_pages(out: str, m: dict, meta: dict, facts: dict, plots: dict) -> None:
    """index.html, list.html, pair.html and data/meta.js."""
    title = f"Warp kernel -> IR pairs, release {m['version']}"
    meta = dict(meta, title=title, version=m["version"])
    ed.write_js(out, "data/meta.js", "meta", meta)
    with open(os.path.join(out, "index.html"), "w", encoding="utf-8") as f:
        f.write(page(title, "overview", overview(m, meta, facts, plots), False))
    with open(os.path.join(out, "list.html"), "w", encoding="utf-8") as f:
        f.write(page(f"Pairs: {title}", "list", '<main id="app"><p id="loading">Loading...</p></main>', True))
    with open(os.path.join(out, "pair.html"), "w", encoding="utf-8") as f:
        f.write(page(f"Pair: {title}", "pair", '<main id="app"><p id="loading">Loading...</p></main>', True))


def _table(head: list, rows: list, cls: str = "") -> str:
    h = "".join(f"<th>{e(x)}</th>" for x in head)
    b = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{h}</tr></thead><tbody>{b}</tbody></table>'


def overview(m: dict, meta: dict, facts: dict, plots: dict) -> str:
    tc = m["toolchain"]
    parts = [f"<h1>{e(meta['title'])}</h1>",
             f"<p>{meta['rows']} pairs. warp-lang {e(tc.get('warp_lang'))}, LLVM {e(tc.get('llvm'))}, "
             f"NVRTC {e(tc.get('nvrtc'))}, PTX for {e(', '.join(map(str, tc.get('ptx_archs', []))))}. "
             f'<a href="list.html">Browse and filter the pairs</a>.</p>', "<h2>Configs, families and splits</h2>"]
    rows = []
    for config in sorted(c for c in m["counts"]["configs"] if c != REAL_CONFIG):
        for fam, v in sorted(m["counts"]["configs"][config]["families"].items()):
            link = f'<a href="list.html#config={_q(config)}&amp;family={_q(fam)}">{e(fam)}</a>'
            rows.append([e(config), link] + [e(v.get(s, 0)) for s in ("train", "validation", "test", "total")])
    parts.append(_table(["config", "family", "train", "validation", "test", "total"], rows, "counts"))
    if REAL_CONFIG in m["counts"]["configs"]:
        parts.append(f"<p>The {REAL_CONFIG} config's {e(m['counts']['configs'][REAL_CONFIG]['records'])} kernels of the "
                     f"warp-lang wheel are not explored here (no spec, inputs or checks to filter by); the report "
                     f"counts them.</p>")
    parts.append("<h2>Checks</h2><p>Every check of every pair by status (a pair page gives each reason).</p>")
    by = {}
    for value, _, n in meta["facets"].get("check", []):
        name, _, status = value.rpartition(": ")
        by.setdefault(name, {})[status] = n
    rows = [[e(name)] + [_status_link(name, s, by[name].get(s, 0)) for s in STATUSES] for name in sorted(by)]
    parts.append(_table(["check", *STATUSES], rows, "checks"))
    cov = facts.get("coverage")
    if cov:
        parts.append(f"<h2>Language coverage</h2><p>The pairs call {e(cov['builtins'])} distinct Warp builtins "
                     f"(the list filters by each); they cover {e(cov['call_site_pct'])}% of the "
                     f"{e(cov['real_call_sites'])} call sites of the installed warp-lang wheel's own kernels "
                     f"(//report's Language coverage section lists the builtins missing).</p>")
    parts.append(_rejects(facts))
    if meta.get("unparsed_sources"):
        parts.append(f"<p>{meta['unparsed_sources']} sources could not be parsed for their builtins.</p>")
    parts.append("<h2>Plots (from the report)</h2>")
    parts += [f'<figure><img src="plots/{e(name)}" alt="{e(key)}"><figcaption>{e(key)}</figcaption></figure>'
              for key, name in sorted(plots.items()) if name]
    return "<main>" + "\n".join(parts) + "</main>"


def _q(value) -> str:
    from urllib.parse import quote

    return e(quote(str(value), safe=""))


def _status_link(name: str, status: str, n: int) -> str:
    if not n:
        return "0"
    return f'<a href="list.html#check={_q(f"{name}: {status}")}">{n}</a>'


def _rejects(facts: dict) -> str:
    """Why kernels were rejected before the release (they are not in it: the manifest counts them)."""
    gen = facts.get("generation", {})
    reasons = gen.get("reasons") or {}
    items = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_REASONS] if isinstance(reasons, dict) else []
    head = (f"<h2>Rejected during generation</h2><p>{e(gen.get('rejected', 0))} of {e(gen.get('attempted', 0))} "
            "kernels were rejected by the pipeline and are not in the release; by reason:</p>")
    if not items:
        return head + "<p>none</p>"
    return head + _table(["reason", "kernels"], [[e(k), e(v)] for k, v in items], "rejects")

