"""Peak memory of a command, measured in a child process: how `//tools:release`, `//tools:verify`
and `//report` are held to a memory bound that does not grow with the number of records.

API:
    peak_rss_mb(argv, env=None, cwd=None) -> float
        Run `argv` (a full command line, e.g. [sys.executable, "-m", "tools.verify", DIST]) as a
        child process, wait for it, and return its peak resident set size in MiB: the kernel's
        high-water mark of the child (`ru_maxrss` of `wait4`, which counts only that child and
        its own waited-for children). Raises `subprocess.CalledProcessError` when the command
        fails (its stderr is carried in the exception), so a refused run is never measured.
    module_argv(module, *args) -> list[str]
        [sys.executable, "-m", module, *args]: a tool run as `python -m` from the repository
        root (e.g. module_argv("tools.release", "--in", IN, "--out", OUT, "--version", "1.0.0")).

Example (from the repository root, PYTHONPATH=.):
    from bench.memory import module_argv, peak_rss_mb
    peak_rss_mb(module_argv("tools.verify", "/tmp/dist"))  # e.g. 190.3
"""

from __future__ import annotations

import os
import subprocess
import sys


def module_argv(module: str, *args: str) -> list[str]:
    """The command line that runs `module` as `python -m` with this interpreter."""
    return [sys.executable, "-m", module, *args]


def peak_rss_mb(argv: list[str], env: dict | None = None, cwd: str | None = None) -> float:
    """The peak RSS (MiB) of the child process `argv`; see the module docstring."""
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = proc.stderr.read()  # drained while it runs, so a chatty child cannot block on a full pipe
    proc.stderr.close()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, argv, stderr=stderr.decode(errors="replace"))
    return usage.ru_maxrss / 1024  # Linux reports KiB
