"""A small document model, rendered to Markdown and to one self-contained HTML page.

Blocks: ("h", level, text), ("p", text), ("list", [text, ...]), ("table", header, rows),
("code", lang, text), ("img", alt, filename), ("side", [(title, lang, text), ...]) (code
blocks side by side in HTML, one after the other in Markdown). Inline text may hold `code`
and **bold**; nothing else is interpreted.
"""

from __future__ import annotations

import base64
import html
import os
import re

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


def _md_cell(text) -> str:
    return str(text).replace("|", "\\|")


def to_markdown(blocks: list[tuple]) -> str:
    out = []
    for b in blocks:
        kind = b[0]
        if kind == "h":
            out += ["#" * b[1] + " " + b[2], ""]
        elif kind == "p":
            out += [b[1], ""]
        elif kind == "list":
            out += [f"- {item}" for item in b[1]] + [""]
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
                out += [f"**{title}**", "", fence(text) + lang, text, fence(text), ""]
        else:
            raise ValueError(f"unknown block {kind}")
    return "\n".join(out).rstrip("\n") + "\n"


def fence(text: str) -> str:
    """A backtick fence longer than any backtick run in the text."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def inline_html(text: str) -> str:
    parts = re.split(r"(`[^`]+`)", str(text))
    out = []
    for p in parts:
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
           f"<title>{html.escape(title)}</title>", f"<style>{CSS}</style>", "</head>", "<body>"]
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
            out.append(f'<p><img alt="{html.escape(b[1])}" src="{_img_data(img_folder, b[2])}"></p>')
        elif kind == "side":
            cols = "".join(f"<div><h4>{inline_html(t)}</h4><pre><code>{html.escape(x)}</code></pre></div>" for t, _, x in b[1])
            out.append(f'<div class="side">{cols}</div>')
        else:
            raise ValueError(f"unknown block {kind}")
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"
