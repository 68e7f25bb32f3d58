"""A screen for C++ and CUDA answers before they are compiled, the counterpart of the Python
allowlist (`validator.safety`): what Warp generates for a kernel never declares external
functions (but for the `extern "C" __global__` of a CUDA kernel), uses assembly or the preprocessor, or calls the C library's process, file, network or
memory functions, so an answer that does is refused with the word that was found, and most
hostile text never reaches the compiler. Comments and the text of string and character
literals are not read (Warp's line comments quote the Python source).

The screen is a convenience, not the wall: an answer that passes it still compiles and runs only
inside the sandbox (eval/sandbox.py), which is tested with payloads that skip the screen.
"""

from __future__ import annotations

import re

_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
_LITERAL = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'')
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DIRECTIVE = re.compile(r"^\s*#", re.M)
_KERNEL_LINKAGE = re.compile(r'\bextern\s+"C"\s+__global__\b')  # how Warp declares a CUDA kernel

REFUSED = frozenset("""
    asm __asm __asm__ extern syscall dlopen dlsym dlmopen
    system popen pclose fork vfork clone clone3 execl execlp execle execv execvp execvpe execve fexecve
    posix_spawn posix_spawnp kill raise abort exit _exit _Exit atexit ptrace prctl setuid setgid chroot
    open openat creat fopen fdopen freopen fwrite fputs fprintf write pwrite writev read fread close
    unlink unlinkat remove rename renameat rmdir mkdir mkdirat chmod chown link symlink truncate ftruncate
    socket connect bind listen accept sendto recvfrom send recv getaddrinfo
    mmap munmap mprotect brk sbrk malloc calloc realloc free alloca memset memcpy memmove
    getenv setenv putenv signal sigaction longjmp setjmp
""".split())


def screen(text: str) -> str | None:
    """None when the answer may be compiled, else why not (one line)."""
    code = _LITERAL.sub('""', _KERNEL_LINKAGE.sub("__global__", _COMMENT.sub(" ", text)))
    if _DIRECTIVE.search(code):
        return "a preprocessor directive (Warp's generated functions have none)"
    for word in _WORD.findall(code):
        if word in REFUSED or word.startswith("__builtin"):
            return f"calls or declares {word!r}, which Warp's generated code never does"
    return None
