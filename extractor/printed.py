"""What a kernel prints while it runs: Warp's `wp.expect_eq`/`expect_neq`/`expect_near` print
"Error, expect_...() failed" with C's printf (the CPU kernel in this process, a GPU kernel's
buffer when the device synchronizes) and go on, so a failed assertion is seen only on stdout.

`printed()` reads file descriptor 1 for the time it is open (C's buffers flushed on both sides);
`KernelAssertionFailed` is what a launch raises when the text shows a failed assertion.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import tempfile

_LIBC = ctypes.CDLL(None)
FAILED = ("expect_eq() failed", "expect_neq() failed", "expect_near() failed")


class KernelAssertionFailed(RuntimeError):
    """A wp.expect_* of the kernel failed while it ran (the message is Warp's printed line)."""


@contextlib.contextmanager
def printed(into: list):
    """While open, what the process writes to fd 1 goes to a file; on leaving, `into` gets its
    text and fd 1 is what it was."""
    sys.stdout.flush()
    _LIBC.fflush(None)
    saved = os.dup(1)
    with tempfile.TemporaryFile() as f:
        os.dup2(f.fileno(), 1)
        try:
            yield
        finally:
            _LIBC.fflush(None)
            os.dup2(saved, 1)
            os.close(saved)
            f.seek(0)
            into.append(f.read().decode("utf-8", "replace"))


def raise_if_failed(text: str, kernel_key: str | None) -> None:
    """KernelAssertionFailed naming the first failed assertion `text` shows, if any."""
    at = min((text.find(f) for f in FAILED if f in text), default=-1)
    if at >= 0:
        shown = " ".join(text[at:].split())[:300]
        raise KernelAssertionFailed(f"kernel {kernel_key}: {shown} (printed by Warp)")
