"""Running untrusted code: one bubblewrap (`bwrap`) child per prediction, under resource limits.

Why bubblewrap: it is Debian's packaged, widely used unprivileged sandbox (Flatpak's), one small
setuid-free binary that `./bazelw` installs; it gives each child new namespaces without a daemon
or a container image. Each child gets:

- no network (`--unshare-all`: new network, PID, IPC, UTS, user and cgroup namespaces; only a
  loopback device), its own PID namespace (it sees and can signal only its own processes, and
  all of them die with it: `--die-with-parent`, and the parent kills the whole group);
- a read-only view of the file system (`--ro-bind / /`), a fresh minimal /dev and /proc, and one
  writable directory, /tmp, an empty tmpfs of TMP_BYTES that vanishes with it (Warp's kernel
  cache and the prediction's file live there; a checkout under /tmp is bound back read-only,
  `code_roots`); no capabilities (`--cap-drop ALL`), uid 65534
  inside, an empty environment but for what the child needs, a new session (no terminal);
- the rlimits of validator/sandbox.py, set in the parent before exec and inherited: address
  space (RLIMIT_AS), CPU time (RLIMIT_CPU, soft = hard, so nothing can raise it), open files
  (RLIMIT_NOFILE), no core dumps, plus file size (RLIMIT_FSIZE) and processes (RLIMIT_NPROC;
  the kernel does not apply it to uid 0, so when run as root a fork bomb meets the PID namespace
  and the wall clock instead, and Python predictions cannot reach fork at all: the allowlist);
- a wall-clock limit, after which the child's process group is killed.

A child that dies, runs out of time or answers nothing costs its prediction only: `run` returns
the reason.
"""

from __future__ import annotations

import dataclasses
import os
import resource
import shutil
import signal
import subprocess
import sys

TMP_BYTES = 256 << 20
RESULT_PREFIX = b"EVAL-RESULT "
MAX_OUTPUT = 64 << 20


@dataclasses.dataclass(frozen=True)
class Limits:
    wall_s: float = 60.0
    cpu_s: int = 60
    address_space: int = 4 << 30
    open_files: int = 256
    file_bytes: int = 64 << 20
    processes: int = 64


class SandboxMissing(Exception):
    """bwrap is not installed (./bazelw installs Debian's bubblewrap)."""


def bwrap() -> str:
    path = shutil.which("bwrap")
    if path is None:
        raise SandboxMissing("bwrap not found: install Debian's bubblewrap (./bazelw installs it)")
    return path


def _python_path() -> str:
    return os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))


def code_roots() -> list[str]:
    """The directories under /tmp that hold the child's code (a checkout in /tmp: Bazel's runfiles
    link into it), bound read-only back over the sandbox's empty /tmp so the child can import it;
    the outermost of each, in order."""
    paths = {os.path.realpath(p) for p in sys.path if p and os.path.isdir(p)}
    paths.add(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))  # the repository's root
    roots: list[str] = []
    for p in sorted(p for p in paths if p.startswith("/tmp/")):
        if not any(p.startswith(r + "/") for r in roots):
            roots.append(p)
    return roots


def command(inner: list[str]) -> list[str]:
    """The bwrap command line that runs `inner` sandboxed."""
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "WARP_IR_RUN_DIR": "/tmp/run",
           "PYTHONPATH": _python_path(), "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8"}
    argv = [bwrap(), "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
            "--size", str(TMP_BYTES), "--tmpfs", "/tmp", "--unshare-all", "--die-with-parent",
            "--new-session", "--cap-drop", "ALL", "--uid", "65534", "--gid", "65534", "--clearenv"]
    for root in code_roots():
        argv += ["--ro-bind", root, root]
    for k, v in env.items():
        argv += ["--setenv", k, v]
    return argv + ["--chdir", "/tmp", "--", *inner]


def _limit(limits: Limits):
    def apply():
        os.setsid()
        for which, value in ((resource.RLIMIT_AS, limits.address_space), (resource.RLIMIT_CPU, limits.cpu_s),
                             (resource.RLIMIT_NOFILE, limits.open_files), (resource.RLIMIT_CORE, 0),
                             (resource.RLIMIT_FSIZE, limits.file_bytes), (resource.RLIMIT_NPROC, limits.processes)):
            resource.setrlimit(which, (value, value))
    return apply


def run(inner: list[str], stdin: bytes, limits: Limits = Limits()) -> tuple[bytes | None, str]:
    """(the child's result line after RESULT_PREFIX, "") or (None, why it gave none)."""
    p = subprocess.Popen(command(inner), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         preexec_fn=_limit(limits), close_fds=True)
    try:
        out, err = p.communicate(stdin, timeout=limits.wall_s)
    except subprocess.TimeoutExpired:
        _kill(p)
        p.communicate()
        return None, f"sandbox: no result within {limits.wall_s:g} s (killed)"
    finally:
        _kill(p)
    for line in reversed(out[-MAX_OUTPUT:].splitlines()):
        if line.startswith(RESULT_PREFIX):
            return line[len(RESULT_PREFIX):], ""
    # bwrap reports its child's death by signal N as exit status 128 + N
    sig = -p.returncode if p.returncode < 0 else p.returncode - 128 if 128 < p.returncode < 128 + 65 else 0
    if sig:
        why = f"killed by {_signal_name(sig)}"
        if sig in (signal.SIGKILL, signal.SIGXCPU):
            why += " (a resource limit: CPU time or memory)"
    else:
        why = f"exit status {p.returncode}"
    last = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
    return None, f"sandbox: the child gave no result ({why}){': ' + last[0][:200] if last[0] else ''}"


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def _kill(p: subprocess.Popen) -> None:
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
