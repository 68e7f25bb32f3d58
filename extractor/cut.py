"""Cutting one kernel's text out of the module source Warp handed its compiler.

Warp compiles a batch as one module; a record holds each kernel's own part of it. The module
source is split into its top-level items (`top_level_items`), each item is known by its
declaration (`_header`), and a kernel's items are those whose declaration names it, its
@wp.func helpers or its @wp.struct types (`_cut_kernel`); `clean` is the one cleaning of stored
text, `missing_from` the check that stored text is cut from a compiled source.

Text only, with no Warp import: the names to look for are read from Warp's objects by
`extractor/warp_adapter.py` (`_kernel_names`) and handed in, so the cut can be read and
tested as plain string handling.
"""

from __future__ import annotations

import re

_LINE_COMMENT = re.compile(r"//.*$")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def top_level_items(text: str) -> list[str]:
    """The module source split into its top-level items (a struct, a function with the comment
    and template lines before it, a preprocessor block, an `extern "C"` block): runs of lines
    separated by blank lines at brace depth 0. Braces in comments and strings do not count."""
    lines = text.split("\n")
    items, depth, start = [], 0, None  # the current item: lines[start:k]
    sub_string, sub_comment = _STRING.sub, _LINE_COMMENT.sub
    for k, line in enumerate(lines):
        if "{" in line or "}" in line:
            if start is None:
                start = k
            code = sub_comment("", sub_string('""', line)) if ('"' in line or "/" in line) else line
            depth += code.count("{") - code.count("}")
            if depth < 0:
                raise RuntimeError(f"unbalanced braces in Warp's module source at: {line.strip()[:80]}")
        elif depth == 0 and (not line or line.isspace()):  # a blank line at depth 0 ends an item
            if start is not None:
                items.append("\n".join(lines[start:k]))
                start = None
        elif start is None:
            start = k
    if depth:
        raise RuntimeError("unbalanced braces at the end of Warp's module source")
    if start is not None:
        items.append("\n".join(lines[start:]))
    return items


def _header(item: str) -> str:
    """An item's declaration: its code before the first brace, comments dropped."""
    code = []
    for ln in item.split("\n"):  # up to the first line with a brace: the body is not read
        ln = _LINE_COMMENT.sub("", ln)
        if "{" in ln:
            code.append(ln.split("{", 1)[0])
            break
        code.append(ln)
    return "\n".join(code)


_WORD = re.compile(r"[A-Za-z0-9_]+")
_WORD_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")


def _word_index(items: list[tuple[str, str]]) -> dict[str, list[int]]:
    """Every word of the items' headers -> the positions of the items whose header holds it."""
    index: dict[str, list[int]] = {}
    for k, (_, head) in enumerate(items):
        for w in set(_WORD.findall(head)):
            index.setdefault(w, []).append(k)
    return index


def _words(pattern: str):
    return re.compile(rf"(?<![A-Za-z0-9_]){pattern}(?![A-Za-z0-9_])")


class _Word:
    """What `_words` matches for the three pattern shapes `_cut_kernel` uses, without compiling
    a regular expression per kernel (compiling took 0.7 ms a pattern, 40% of the cut): the
    name as a whole word; `call`: followed by optional space and "(" with no word character
    after it; `struct`: preceded by the word `struct` and space. `pattern` is the regular
    expression it stands for (for messages); `search(head)` gives what that expression's
    search gives, as a truth value (`extractor/warp_adapter_test.py` compares the two)."""

    __slots__ = ("word", "shape", "pattern")

    def __init__(self, word: str, shape: str = ""):
        self.word, self.shape = word, shape
        self.pattern = {"": re.escape(word), "call": re.escape(word) + r"\s*\(",
                        "struct": rf"struct\s+{re.escape(word)}"}[shape]

    def search(self, head: str) -> bool:
        # each whole-word occurrence of the name (a maximal run of word characters equal to
        # it), found with str.find; `word` is all word characters (`_cut_kernel` checks)
        word, shape, n = self.word, self.shape, len(self.word)
        i = head.find(word)
        while i >= 0:
            end = i + n
            if (i == 0 or head[i - 1] not in _WORD_CHARS) and (end == len(head) or head[end] not in _WORD_CHARS):
                if not shape:
                    return True
                if shape == "call":
                    rest = head[end:].lstrip()
                    if rest[:1] == "(" and rest[1:2] not in _WORD_CHARS:
                        return True
                else:
                    # the maximal run `struct` ends where the space before the word starts
                    k = len(head[:i].rstrip())
                    if k < i and head[k - 6:k] == "struct" and (k == 6 or head[k - 7] not in _WORD_CHARS):
                        return True
            i = head.find(word, i + 1)
        return False


def _cut_kernel(items: list[tuple[str, str]], names: tuple, device: str,
                index: dict[str, list[int]] | None = None) -> dict[str, str]:
    """One kernel's forward and backward text, cut from the compiled module's items
    (`_part_items`), each part's items joined by a blank line."""
    fwd, bwd = _part_items(items, names, device, index)
    return {"forward": "\n\n".join(items[k][0] for k in fwd), "backward": "\n\n".join(items[k][0] for k in bwd)}


def splice(source: str, names: tuple, device: str, part: str, text: str) -> str:
    """The module source with one kernel's `part` ("forward" or "backward", as `_cut_kernel`
    cuts it) taken out and `text` put where its last item (the kernel function) was, after every
    item that part may use (a backward's helper adjoints come before the argument struct): how a
    predicted function is put in place of the one Warp generated (eval/judge.py). Raises when
    the part has no item."""
    items = [(i, _header(i)) for i in top_level_items(source)]
    drop = _part_items(items, names, device, _word_index(items), (part,))[0 if part == "forward" else 1]
    if not drop:
        raise RuntimeError(f"no {device} {part} item of {names[0]} in the module source")
    out, dropped = [], set(drop)
    for k, (item, _) in enumerate(items):
        if k not in dropped:
            out.append(item)
        elif k == drop[-1]:
            out.append(text.strip("\n"))
    return "\n\n".join(out) + "\n"


_ENTRY = re.compile(r"\b(\w+?)_(cpu|cuda)_kernel_(forward|backward)\s*\(")
_ARGS_STRUCT = re.compile(r"\bstruct\s+wp_args_(\w+)")


def other_kernel(head: str, name: str, device: str) -> bool:
    """Whether an item's header is another kernel's kernel function or argument struct: a struct
    both kernels use is named in it (a CUDA kernel takes its struct arguments by value, a CPU
    argument struct holds them), and it belongs to that kernel, not to this one."""
    entry = _ENTRY.search(head)
    if entry and entry.group(2) == device and entry.group(1) != name:
        return True
    args = _ARGS_STRUCT.search(head)
    return bool(args and args.group(1) != name)


def _part_items(items: list[tuple[str, str]], names: tuple, device: str,
                index: dict[str, list[int]] | None = None,
                need: tuple[str, ...] = ("forward", "backward")) -> tuple[list[int], list[int]]:
    """The positions of one kernel's forward items and of its backward items in the module's items.

    forward: its @wp.struct types (with the helpers Warp emits beside them), its @wp.func
    helpers' forward functions, its argument struct (CPU) and its forward kernel function;
    backward: the helpers' adjoints and its backward kernel function. In module order.
    `index` (`_word_index(items)`): only the items whose header holds one of the kernel's names
    as a whole word are tried, the only ones a pattern (a name between word boundaries) can
    match; without it, every item. `names`: the kernel's (mangled name, helpers' C++ names,
    structs' native names), as `warp_adapter._kernel_names` reads them from Warp's objects.
    Raises when a part in `need` lacks an item one of its names calls for."""
    name, helpers, structs = names
    words = [*structs, *helpers, *("adj_" + h for h in helpers), f"wp_args_{name}",
             f"{name}_{device}_kernel_forward", f"{name}_{device}_kernel_backward"]
    if index is not None and all(_WORD.fullmatch(w) for w in words):
        candidates = sorted({k for w in words for k in index.get(w, ())})
        forward_pats = [_Word(s) for s in structs] + [_Word(h, "call") for h in helpers]
        forward_pats += [_Word(f"wp_args_{name}", "struct"), _Word(f"{name}_{device}_kernel_forward", "call")]
        backward_pats = [_Word("adj_" + h, "call") for h in helpers]
        backward_pats.append(_Word(f"{name}_{device}_kernel_backward", "call"))
    else:
        candidates = range(len(items))
        forward_pats = [_words(re.escape(s)) for s in structs] + [_words(re.escape(h) + r"\s*\(") for h in helpers]
        forward_pats += [_words(rf"struct\s+wp_args_{re.escape(name)}"), _words(rf"{re.escape(name)}_{device}_kernel_forward\s*\(")]
        backward_pats = [_words("adj_" + re.escape(h) + r"\s*\(") for h in helpers]
        backward_pats.append(_words(rf"{re.escape(name)}_{device}_kernel_backward\s*\("))
    fwd, bwd, fwd_heads, bwd_heads = [], [], [], []
    for k in candidates:
        head = items[k][1]
        if other_kernel(head, name, device):
            continue
        if any(p.search(head) for p in backward_pats):
            bwd.append(k)
            bwd_heads.append(head)
        elif any(p.search(head) for p in forward_pats):
            fwd.append(k)
            fwd_heads.append(head)
    for what, pats, heads in (("forward", forward_pats, fwd_heads), ("backward", backward_pats, bwd_heads)):
        for p in pats if what in need else ():
            if not any(p.search(h) for h in heads) and "wp_args_" not in p.pattern:
                raise RuntimeError(f"{name}: no {device} {what} item matching {p.pattern} in the compiled source")
    return fwd, bwd


def clean(text: str, prefix: str) -> str:
    """The documented name cleaning of stored code: drop `prefix` (the batch's working
    directory), strip trailing spaces, collapse runs of blank lines to one."""
    text = text.replace(prefix, "")
    lines = [ln.rstrip() for ln in text.strip("\n").split("\n")]
    out, blank = [], 0
    for ln in lines:  # collapse runs of blank lines: layout noise, not code
        blank = blank + 1 if not ln else 0
        if blank <= 1:
            out.append(ln)
    return "\n".join(out) + "\n"


def missing_from(stored: str, compiled: str) -> str | None:
    """None when `stored` is cut from `compiled` (both cleaned): every paragraph of it occurs
    verbatim in `compiled`, each after the previous one; else the first paragraph that does not."""
    at = 0
    for piece in (p for p in stored.split("\n\n") if p.strip()):
        k = compiled.find(piece, at)
        if k < 0:
            return piece
        at = k + len(piece)
    return None
