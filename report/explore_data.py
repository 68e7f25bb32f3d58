"""The explorer's data: one pass over a release's Parquet shards (read by the file rule of
report/release_reader.py) that turns each row into a list entry, a pair entry and its facet and
search keys, written as small JavaScript files the static pages load a chunk at a time.

Row `n` is the n-th row in storage order (configs sorted, then the manifest's file order, then the
row's place in its file). What a page loads:
- data/rows/NNNNNN.js: ROWS_PER_CHUNK list entries (id, kernel name, config, split, family, one
  letter per check: p passed, f failed, i inconclusive, n not_run, - absent);
- data/pairs/NNNNNN.js: PAIRS_PER_CHUNK pair entries (every text field tokenised by Pygments, the
  inputs, outputs and gradient example as small tables, every check with its reason);
- data/facets/NNNNNN.js: the sorted row numbers of one facet value (delta-encoded);
- data/search/HEX.js: the ids and kernel names starting with one prefix (split until small).

Record text is hostile: it is data here (JSON strings in a script file, never markup) and every
page puts it into the document as text (`textContent`), never as HTML.
"""

from __future__ import annotations

import json
import os

from schemas import files

ROWS_PER_CHUNK = 100
PAIRS_PER_CHUNK = 25
SEARCH_BUCKET = 2000  # keys per search file before it is split by one more character
SEARCH_DEPTH = 12
CELLS = 12  # values of an array a table shows
VALUE_CHARS = 80
REASON_CHARS = 400
STATUS_LETTER = {"passed": "p", "failed": "f", "inconclusive": "i", "not_run": "n"}
TEXT_COLUMNS = ("source", "ir_cpp_forward", "ir_cpp_backward", "ir_cuda_forward", "ir_cuda_backward")
JSON_COLUMNS = ("spec", "args", "inputs", "outputs", "checks", "grad", "coverage")
STYLE = "default"  # the Pygments style whose colours assets/code.css holds
MAX_CHECKS = 16  # check names the list shows as letters (a forged release may name thousands)


def js_call(name: str, *args) -> str:
    """`EXPLORE.name(args...);` with each argument as JSON: a script that only hands data over
    (ASCII only, `</` written `<\\/`: a `</script>` or a line separator inside a string can end or
    break nothing, even were the file inlined into a page)."""
    body = ",".join(json.dumps(a, ensure_ascii=True, separators=(",", ":")) for a in args).replace("</", "<\\/")
    return f"EXPLORE.{name}({body});\n"


def write_js(folder: str, rel: str, name: str, *args) -> None:
    path = os.path.join(folder, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="ascii") as f:
        f.write(js_call(name, *args))


class Highlighter:
    """Pygments' lexers for Python, C++, CUDA and PTX; a text becomes [text, runs] with runs a flat
    list of (class index, length) pairs over the text (classes are Pygments' short CSS names)."""

    def __init__(self):
        from pygments.lexers import CppLexer, CudaLexer, PtxLexer, PythonLexer
        from pygments.token import STANDARD_TYPES

        opts = {"stripnl": False, "ensurenl": False}
        self.lexers = {"python": PythonLexer(**opts), "cpp": CppLexer(**opts), "cuda": CudaLexer(**opts),
                       "ptx": PtxLexer(**opts)}
        from pygments.styles import get_style_by_name

        self.classes: list[str] = [""]
        self._index = {"": 0}
        self._standard = STANDARD_TYPES
        style = get_style_by_name(STYLE)
        # the classes the style draws; an unstyled token (names, punctuation) is plain text
        self._styled = {name for ttype, name in STANDARD_TYPES.items()
                        if name and any(style.style_for_token(ttype)[k] for k in ("color", "bold", "italic"))}

    def _class(self, ttype) -> int:
        while ttype not in self._standard and ttype.parent is not None:
            ttype = ttype.parent
        name = self._standard.get(ttype, "")
        name = name if name in self._styled else ""
        if name not in self._index:
            self._index[name] = len(self.classes)
            self.classes.append(name)
        return self._index[name]

    def __call__(self, text: str, language: str) -> list:
        runs: list[int] = []
        for ttype, value in self.lexers[language].get_tokens(text):
            if not value:
                continue
            # white space joins the run before it (it shows the same in any class)
            k = runs[-2] if runs and value.isspace() else self._class(ttype)
            if runs and runs[-2] == k:
                runs[-1] += len(value)
            else:
                runs += [k, len(value)]
        if sum(runs[1::2]) != len(text):  # a lexer that changed the text: shown plain, never wrong
            runs = [0, len(text)]
        return [text, runs]


def language(column: str) -> str:
    if column == "source":
        return "python"
    if column.startswith("ptx_"):
        return "ptx"
    return "cuda" if "cuda" in column else "cpp"


def short(value, limit: int = VALUE_CHARS) -> str:
    """A value as at most `limit` characters of text (JSON for anything but a string)."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


def decoded(raw) -> tuple[object, str]:
    """(the JSON value of a cell, "") or (None, why it is not JSON)."""
    if not isinstance(raw, str):
        return None, "null"
    value, why = files.decode_json(raw.encode("utf-8", "surrogatepass"))
    return (None, why) if why else (value, "")


def _flat(data, out: list, limit: int) -> int:
    """Appends up to `limit` leaves of the nested list `data` to `out`; how many leaves it holds."""
    if not isinstance(data, list):
        if len(out) < limit:
            out.append(short(data, 24))
        return 1
    n = 0
    stack = [iter(data)]
    while stack:
        item = next(stack[-1], StopIteration)
        if item is StopIteration:
            stack.pop()
        elif isinstance(item, list) and len(stack) < 8:
            stack.append(iter(item))
        else:
            n += 1
            if len(out) < limit:
                out.append(short(item, 24))
    return n


def tables(value) -> list:
    """Named arrays ({"name": {"data", "dtype", "shape"}}) as [name, dtype, shape, first CELLS
    values, how many values in all]; anything else as [name, "", "", [its text], 1]."""
    out = []
    if not isinstance(value, dict):
        return [["(value)", "", "", [short(value)], 1]]
    for name, v in list(value.items())[:32]:
        if isinstance(v, dict) and "data" in v:
            cells: list[str] = []
            n = _flat(v.get("data"), cells, CELLS)
            out.append([short(name, 60), short(v.get("dtype", ""), 30), short(v.get("shape", ""), 40), cells, n])
        else:
            out.append([short(name, 60), "", "", [short(v)], 1])
    return out


def gradient(value) -> dict:
    """The gradient example: its point, the directional derivatives (adjoint `dot` against finite
    differences `fd`), and the input gradients `g` as tables."""
    if not isinstance(value, dict):
        return {"note": short(value) if value is not None else "no gradient example"}
    rest = {k: short(v) for k, v in list(value.items())[:12] if k not in ("g", "v")}
    return {"fields": rest, "g": tables(value.get("g", {}))}


def checks(value) -> list:
    """[name, status, reason] of every check (a check that is not an object: status "?")."""
    if not isinstance(value, dict):
        return [["(checks)", "?", short(value, REASON_CHARS)]]
    out = []
    for name, c in sorted(value.items())[:64]:
        if isinstance(c, dict):
            out.append([short(name, 60), short(c.get("status", "?"), 20), short(c.get("reason", ""), REASON_CHARS)])
        else:
            out.append([short(name, 60), "?", short(c, REASON_CHARS)])
    return out
