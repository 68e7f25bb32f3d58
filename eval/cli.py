"""What both command lines share: one-line argument errors, reading a release's split, writing a
file atomically."""

from __future__ import annotations

import argparse
import os
import sys

from eval import rows
from runtime.process import caller_path
from schemas.files import quote, write_text


class Refused(Exception):
    """A bad argument or input: one `error: ...` line, exit 2."""


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one `error: ...` line and exit 2, not a usage block."""

    def error(self, message):
        print(f"error: {message} (usage: {self.format_usage().strip().removeprefix('usage: ')})", file=sys.stderr)
        sys.exit(2)


def read_split(dist: str, split: str) -> list[dict]:
    path = caller_path(dist)
    if not os.path.isdir(path):
        raise Refused(f"{quote(dist)}: not a directory")
    try:
        return rows.read_split(path, split)
    except rows.RowsError as e:
        raise Refused(str(e)) from None


def write_atomically(path: str, text: str) -> None:
    """`text` written to a new file beside `path` (the user's path), renamed onto it (a link there
    is replaced, never written through: `schemas.files.write_text`)."""
    write_text(caller_path(path), text)
