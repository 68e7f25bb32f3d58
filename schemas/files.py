"""The files around the records, treated as hostile: one rule for which files a tool reads, how
it opens them, how much it reads before parsing, and how it prints and writes what it found.
Shared by //validator, //tools:release, //tools:verify and //report.

- **Names.** A file is named by its manifest, by a canonical name matched in full (`fullmatch`,
  so no trailing newline slips past a `$`), with no control character and no `..`.
- **Opening.** A listed file must be a regular file, checked with `lstat` (a symlink is not
  followed) and opened with O_NOFOLLOW | O_NONBLOCK (a FIFO never blocks), then checked again
  with `fstat` on what was opened.
- **The set.** Every listed file must exist; a file in the data directories that is not listed
  is refused (`unlisted`): a tool judges exactly what the manifest lists, so the validator and
  the release can never read different files.
- **Sizes before parsing.** Lines are read with a cap (`MAX_LINE_BYTES`), JSON nesting is
  measured on the bytes before decoding (`json_depth`), and Parquet sizes are read from the
  footer before anything is decompressed (`parquet_too_large`).
- **Printing and writing.** Every untrusted string reaches a terminal through `quote`, Markdown
  through `md`, HTML through `html.escape`; reports are written to a temporary file opened
  without following links, then renamed over the target (`write_text`).
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
import tempfile
from typing import Any, Iterator

MAX_LINE_BYTES = 32 << 20  # one record line; generated records are under 1 MB (untrusted_test)
MAX_FILE_BYTES = 8 << 30  # one listed file
MAX_JSON_DEPTH = 64  # as validator.verdicts.MAX_DEPTH: checked on the bytes, before json.loads
MAX_MANIFEST_BYTES = 64 << 20  # a manifest or run.json
MAX_ROW_GROUP_BYTES = 256 << 20  # a release row group, uncompressed, as its footer declares
MAX_CELL_BYTES = 32 << 20  # one Parquet cell (a column chunk of one row group, uncompressed)
MAX_PARQUET_ROW_GROUPS = 1 << 20
QUOTE_CHARS = 200  # untrusted text printed on a terminal is cut to this many characters


class FileRefused(ValueError):
    """A file (or name) that breaks the file rule; the message is one line, already quoted."""


# ---- names ------------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def has_control(text: str) -> bool:
    """Whether `text` holds a character `quote` escapes (a control or bidirectional character)."""
    return _CONTROL.search(text) is not None


def quote(value: Any, limit: int = QUOTE_CHARS) -> str:
    """`value` as text that is safe on a terminal: control characters (escape sequences, newlines,
    carriage returns, bidirectional overrides) written as `\\xNN`/`\\uNNNN` escapes, cut to
    `limit` characters with a `...` mark. The one way untrusted text reaches stdout or stderr."""
    text = value if isinstance(value, str) else str(value)
    cut = len(text) > limit
    text = text[:limit]
    text = text.replace("\\", "\\\\")
    text = _CONTROL.sub(lambda m: ("\\x%02x" % ord(m.group()) if ord(m.group()) < 0x100
                                   else "\\u%04x" % ord(m.group())), text)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text + ("..." if cut else "")


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#!|~$&])")


def md(value: Any, limit: int = 1000) -> str:
    """Untrusted text as inert Markdown inline text (one line): control characters and newlines
    escaped as `quote` does, every Markdown and HTML metacharacter backslash-escaped, `<`, `>`
    and `&` as entities (a renderer that passes HTML through shows them as text)."""
    text = quote(value, limit)
    text = _MD_SPECIAL.sub(r"\\\1", text)
    return text.replace("\\<", "&lt;").replace("\\>", "&gt;").replace("\\&", "&amp;")


def fence(text: str, lang: str = "") -> list[str]:
    """`text` as a fenced Markdown code block (its lines): the fence is longer than any run of
    backticks inside, so no text can close it early."""
    runs = re.findall(r"`+", text)
    ticks = "`" * max(3, 1 + max((len(r) for r in runs), default=0))
    return [ticks + lang, text, ticks]


def check_name(rel: Any, pattern: re.Pattern, what: str) -> str:
    """`rel` when it is a canonical name (matched by `pattern` in full); else FileRefused."""
    if not isinstance(rel, str) or _CONTROL.search(rel) or ".." in rel.split("/") or rel.startswith("/") \
            or pattern.fullmatch(rel) is None:
        raise FileRefused(f"{what}: {quote(rel)!s} is not a canonical file name")
    return rel


# ---- opening ----------------------------------------------------------------------------------

def regular(path: str, shown: str | None = None) -> os.stat_result:
    """The `lstat` of `path` when it is a regular file (a symlink is not followed); else
    FileRefused naming it (missing, a link, a FIFO, a directory...)."""
    shown = quote(shown if shown is not None else path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise FileRefused(f"{shown}: listed but missing") from None
    except OSError as e:
        raise FileRefused(f"{shown}: cannot be read ({quote(e.strerror)})") from None
    if not stat.S_ISREG(st.st_mode):
        kind = ("a symbolic link" if stat.S_ISLNK(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode)
                else "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file")
        raise FileRefused(f"{shown}: is {kind}, not a regular file")
    if st.st_size > MAX_FILE_BYTES:
        raise FileRefused(f"{shown}: {st.st_size} bytes, over the limit of {MAX_FILE_BYTES}")
    return st


def open_regular(path: str, shown: str | None = None):
    """`path` opened for reading in binary mode, only when it is a regular file: checked with
    `lstat`, opened without following a link and without blocking (a FIFO swapped in after the
    check fails `fstat`, it does not hang), then switched back to blocking reads."""
    regular(path, shown)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        why = "a symbolic link" if e.errno == errno.ELOOP else quote(e.strerror)
        raise FileRefused(f"{quote(shown if shown is not None else path)}: cannot be opened ({why})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise FileRefused(f"{quote(shown if shown is not None else path)}: is not a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_bytes(path: str, shown: str | None = None, limit: int = MAX_MANIFEST_BYTES) -> bytes:
    """A small file (a manifest, run.json) whole, by the rule of `open_regular`, at most `limit`
    bytes (FileRefused past it)."""
    with open_regular(path, shown) as f:
        size = os.fstat(f.fileno()).st_size  # read(n) allocates n bytes first: ask for what is there
        data = f.read(min(size, limit) + 1)
    if len(data) > limit:
        raise FileRefused(f"{quote(shown if shown is not None else path)}: over {limit} bytes")
    return data


def read_json(path: str, shown: str | None = None, limit: int = MAX_MANIFEST_BYTES) -> Any:
    """A small JSON file by the rule: regular, at most `limit` bytes, nested at most
    MAX_JSON_DEPTH deep (measured before decoding), UTF-8. FileRefused (one line) otherwise."""
    data = read_bytes(path, shown, limit)
    value, why = decode_json(data)
    if why:
        raise FileRefused(f"{quote(shown if shown is not None else path)}: unreadable ({why})")
    return value


def sha256_file(path: str, shown: str | None = None) -> tuple[str, int]:
    """(sha256, bytes) of a regular file, read by the rule."""
    import hashlib

    h, n = hashlib.sha256(), 0
    with open_regular(path, shown) as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
            n += len(block)
    return h.hexdigest(), n


# ---- the set ----------------------------------------------------------------------------------

def unlisted(directory: str, listed: set[str], is_data: Any, skip_dirs: tuple[str, ...] = ()) -> list[str]:
    """The relative names under `directory` that `is_data(rel)` calls data files but that are not
    in `listed`, and every entry that is neither a regular file nor a directory (a link, a FIFO);
    directories named in `skip_dirs` (at the top) are not entered. Walks with `lstat` only."""
    found = []
    stack = [""]
    while stack:
        sub = stack.pop()
        try:
            entries = sorted(os.scandir(os.path.join(directory, sub) if sub else directory), key=lambda e: e.name)
        except OSError:
            continue
        for e in entries:
            rel = f"{sub}/{e.name}" if sub else e.name
            if e.is_dir(follow_symlinks=False):
                if not (sub == "" and e.name in skip_dirs):
                    stack.append(rel)
                continue
            if rel in listed:
                continue
            if not e.is_file(follow_symlinks=False) or is_data(rel):
                found.append(rel)
    return sorted(found)


# ---- sizes before parsing ---------------------------------------------------------------------

_BRACKETS = re.compile(rb'[\[\]{}"]')
_QUOTE_OR_ESC = re.compile(rb'["\\]')


def json_depth(data: bytes, stop: int = MAX_JSON_DEPTH) -> int:
    """The nesting depth of the JSON text `data`, measured on the bytes (strings skipped, over
    their escapes), up to `stop + 1`: run before `json.loads`, so a line nested a million deep
    is refused without Python's parser recursing into it."""
    depth = top = i = 0
    n = len(data)
    while i < n:
        m = _BRACKETS.search(data, i)
        if m is None:
            break
        c, i = data[m.start()], m.end()
        if c == 0x22:  # a string: skip to its closing quote
            while True:
                q = _QUOTE_OR_ESC.search(data, i)
                if q is None:
                    return top
                i = q.end() + (1 if data[q.start()] == 0x5C else 0)
                if data[q.start()] == 0x22:
                    break
        elif c in (0x5B, 0x7B):
            depth += 1
            if depth > top:
                top = depth
                if top > stop:
                    return top
        else:
            depth -= 1
    return top


def decode_json(raw: bytes) -> tuple[Any, str | None]:
    """(value, None) for one JSON text, or (None, why): over MAX_JSON_DEPTH deep (measured
    first), not UTF-8, not JSON, or a number Python refuses to convert."""
    if json_depth(raw) > MAX_JSON_DEPTH:
        return None, f"JSON nested deeper than {MAX_JSON_DEPTH}"
    try:
        return json.loads(raw.decode("utf-8")), None
    except UnicodeDecodeError as e:
        return None, f"not UTF-8 at byte {e.start}"
    except json.JSONDecodeError as e:
        return None, e.msg
    except RecursionError:
        return None, "JSON nested too deep to read"
    except (ValueError, MemoryError) as e:  # e.g. an integer of more digits than int() converts
        return None, quote(str(e), 100) if not isinstance(e, MemoryError) else "out of memory decoding it"


def lines(f, limit: int = MAX_LINE_BYTES) -> Iterator[tuple[bytes, bool]]:
    """(line, whole) for each line of the binary file `f`; a line over `limit` bytes is yielded
    once as (its first `limit` bytes, False) and the rest of it is skipped without being held."""
    while True:
        raw = f.readline(limit + 1)
        if not raw:
            return
        if len(raw) <= limit:
            yield raw, True
            continue
        head = raw[:limit]
        while not raw.endswith(b"\n"):
            raw = f.readline(1 << 20)
            if not raw:
                break
        yield head, False


def parquet_too_large(pf) -> str | None:
    """Why the Parquet file `pf` (a pyarrow ParquetFile, footer read) may not be decompressed,
    from its footer alone: too many row groups, a row group or a column chunk whose declared
    uncompressed size is over the caps. None when it is within them."""
    md_ = pf.metadata
    if md_.num_row_groups > MAX_PARQUET_ROW_GROUPS:
        return f"{md_.num_row_groups} row groups, over {MAX_PARQUET_ROW_GROUPS}"
    for k in range(md_.num_row_groups):
        rg = md_.row_group(k)
        if rg.total_byte_size > MAX_ROW_GROUP_BYTES:
            return f"row group {k} declares {rg.total_byte_size} bytes uncompressed, over {MAX_ROW_GROUP_BYTES}"
        for c in range(rg.num_columns):
            col = rg.column(c)
            if col.total_uncompressed_size > MAX_CELL_BYTES * max(1, rg.num_rows) or \
                    col.total_uncompressed_size > MAX_ROW_GROUP_BYTES:
                return (f"row group {k} column {quote(col.path_in_schema, 60)} declares "
                        f"{col.total_uncompressed_size} bytes uncompressed, over the caps")
    return None


# ---- writing ----------------------------------------------------------------------------------

def write_text(path: str, text: str) -> None:
    """`text` into `path` as a new file: written to a temporary file in the same directory
    (created exclusively, so no link is followed), then renamed over `path` (a rename replaces a
    symlink at `path`, it never writes through it)."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def inside(path: str, directory: str) -> bool:
    """Whether `path` is `directory` or lies under it (both resolved)."""
    p, d = os.path.realpath(path), os.path.realpath(directory)
    return p == d or p.startswith(d.rstrip(os.sep) + os.sep)
