"""A small document model, rendered to Markdown and to one self-contained HTML page.

Blocks: ("h", level, text), ("p", text), ("list", [text, ...]), ("table", header, rows),
("code", lang, text), ("img", alt, filename), ("side", [(title, lang, text), ...]) (code
blocks side by side in HTML, one after the other in Markdown). Inline text may hold `code`
and **bold**; nothing else is interpreted.

Text from the release (a reject reason, a note, a family name, an id) is untrusted: it enters
inline text only through `u(value)` (or `uc(value)`, shown as code in HTML), which marks it with
private-use characters. A renderer writes a marked piece as inert text, whatever it holds:
`schemas.files.md` in Markdown (every metacharacter escaped, `<`, `>`, `&` as entities) and
`html.escape` in HTML, both after `schemas.files.quote` (control characters, newlines and
bidirectional overrides as visible escapes). Code blocks (the samples) are fenced with more
backticks than any run inside them in Markdown and escaped with `html.escape` in HTML.
"""

from __future__ import annotations

import base64
import html
import os
import re

from schemas.files import md, quote

# an untrusted piece of inline text: _U0 text _U1 (plain) or _C0 text _C1 (code in HTML)
_U0, _U1, _C0, _C1 = "\ue000", "\ue001", "\ue002", "\ue003"
_MARKS = re.compile("[\ue000-\ue003]")
_PIECES = re.compile("(\ue000[^\ue001]*\ue001|\ue002[^\ue003]*\ue003)")
UNTRUSTED_CHARS = 300  # an untrusted piece is cut to this many characters unless told


def u(value, limit: int = UNTRUSTED_CHARS) -> str:
    """`value` (untrusted) as a piece of inline text that every renderer writes literally, cut to
    `limit` characters (with a `...` mark)."""
    return _U0 + _mark_free(value, limit) + _U1


def uc(value, limit: int = UNTRUSTED_CHARS) -> str:
    """As `u`, shown as code in HTML (an id, a kernel name)."""
    return _C0 + _mark_free(value, limit) + _C1


def _mark_free(value, limit: int) -> str:
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        text = text[:limit] + "..."
    return _MARKS.sub("\ufffd", text)


def _pieces(text):
    """(trusted, piece) for each piece of inline text, in order: trusted pieces are the report's
    own markup, the others untrusted text (marks removed)."""
    for p in _PIECES.split(str(text)):
        if not p:
            continue
        if p[0] in (_U0, _C0):
            yield False, p[0] == _C0, p[1:-1]
        else:
            yield True, False, _MARKS.sub("\ufffd", p)


def plain(text) -> str:
    """Inline text with the marks dropped (for a plot label or a title): untrusted pieces quoted."""
    return "".join(p if trusted else quote(p, len(p)) for trusted, _, p in _pieces(text))


CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#1b1f24;line-height:1.5}
h1,h2,h3{line-height:1.25}h2{border-bottom:1px solid #d0d7de;padding-bottom:.3em;margin-top:2em}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}th,td{border:1px solid #d0d7de;padding:.3em .6em;text-align:left}
th{background:#f6f8fa}code{background:#f6f8fa;padding:.1em .3em;border-radius:3px;font-size:.9em}
pre{background:#f6f8fa;padding:.8em;overflow:auto;font-size:.8em;line-height:1.35;border-radius:4px}
pre code{background:none;padding:0}img{max-width:100%;border:1px solid #d0d7de}
.side{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:1em}.side h4{margin:.2em 0}
"""


def _md_inline(text, cell: bool = False) -> str:
    """Inline text in Markdown: the report's own markup as written (a `|` escaped in a table
    cell), untrusted pieces through `md` (inert, one line, `|` escaped too)."""
    out = []
    for trusted, _, p in _pieces(text):
        if trusted:
            out.append(p.replace("|", "\\|") if cell else p)
        else:
            out.append(md(p, len(p) + 1))
    return "".join(out)


def _md_cell(text) -> str:
    return _md_inline(text, cell=True)


def to_markdown(blocks: list[tuple]) -> str:
    out = []
    for b in blocks:
        kind = b[0]
        if kind == "h":
            out += ["#" * b[1] + " " + _md_inline(b[2]), ""]
        elif kind == "p":
            out += [_md_inline(b[1]), ""]
        elif kind == "list":
            out += [f"- {_md_inline(item)}" for item in b[1]] + [""]
        elif kind == "table":
            header, rows = b[1], b[2]
            out += ["| " + " | ".join(map(_md_cell, header)) + " |", "|" + "|".join("---" for _ in header) + "|"]
            out += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in rows] + [""]
        elif kind == "code":
            out += [fence(b[2]) + b[1], b[2], fence(b[2]), ""]
        elif kind == "img":
            out += [f"![{b[1]}]({b[2]})", ""]
        elif kind == "side":
            for title, lang, text in b[1]:
                out += [f"**{_md_inline(title)}**", "", fence(text) + lang, text, fence(text), ""]
        else:
            raise ValueError(f"unknown block {kind}")
    return "\n".join(out).rstrip("\n") + "\n"


def fence(text: str) -> str:
    """A backtick fence longer than any backtick run in the text."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def inline_html(text: str) -> str:
    out = []
    for trusted, code, piece in _pieces(text):
        if not trusted:
            shown = html.escape(quote(piece, len(piece)))
            out.append(f"<code>{shown}</code>" if code else shown)
            continue
        for p in re.split(r"(`[^`]+`)", piece):
            if len(p) > 1 and p.startswith("`") and p.endswith("`"):
                out.append(f"<code>{html.escape(p[1:-1])}</code>")
            else:
                out.append(re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html.escape(p)))
    return "".join(out)


def _img_data(folder: str, name: str) -> str:
    with open(os.path.join(folder, name), "rb") as f:
        return "data:image/png;base64," + base64.b64encode(f.read()).decode()


def to_html(blocks: list[tuple], title: str, img_folder: str) -> str:
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           f"<title>{html.escape(plain(title))}</title>", f"<style>{CSS}</style>", "</head>", "<body>"]
    for b in blocks:
        kind = b[0]
        if kind == "h":
            out.append(f"<h{b[1]}>{inline_html(b[2])}</h{b[1]}>")
        elif kind == "p":
            out.append(f"<p>{inline_html(b[1])}</p>")
        elif kind == "list":
            out.append("<ul>" + "".join(f"<li>{inline_html(i)}</li>" for i in b[1]) + "</ul>")
        elif kind == "table":
            head = "".join(f"<th>{inline_html(h)}</th>" for h in b[1])
            body = "".join("<tr>" + "".join(f"<td>{inline_html(c)}</td>" for c in row) + "</tr>" for row in b[2])
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif kind == "code":
            out.append(f"<pre><code>{html.escape(b[2])}</code></pre>")
        elif kind == "img":
            out.append(f'<p><img alt="{html.escape(plain(b[1]))}" src="{_img_data(img_folder, b[2])}"></p>')
        elif kind == "side":
            cols = "".join(f"<div><h4>{inline_html(t)}</h4><pre><code>{html.escape(x)}</code></pre></div>" for t, _, x in b[1])
            out.append(f'<div class="side">{cols}</div>')
        else:
            raise ValueError(f"unknown block {kind}")
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"
