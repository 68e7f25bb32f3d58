"""Hostile predictions: 8 C++ answers (system(), writing and deleting outside the sandbox, a
socket, forked processes that would outlive it, a memory bomb, an endless loop, inline assembly),
compiled into Warp's module and run; 14 Python answers of different kinds (file deletion, writing outside the
sandbox, network, fork bomb, memory bomb, os/subprocess imports, dunder and attribute escapes,
code in defaults, annotations and struct fields), each of which would leave a marker file outside
the sandbox if it ran unsandboxed; two that pass the allowlist and misbehave in Warp (an endless
loop, an out-of-bounds write); and the sandbox itself given raw Python that skips the allowlist
(write, delete, network, memory, CPU, processes outliving it). No marker appears, each is one
failed verdict with its reason, and the run goes on (a reference answer among them is correct)."""

import os
import subprocess
import sys
import tempfile
import time

import pytest

from eval import sandbox, testing

TMP = os.environ.get("TEST_TMPDIR") or tempfile.mkdtemp(prefix="eval-hostile-")
MARKS = os.path.join(TMP, "marks")


@pytest.fixture(scope="module")
def dist():
    return testing.small_release(TMP)


@pytest.fixture(scope="module")
def row(dist):
    from eval.rows import read_split

    return read_split(dist, "test")[0]


def _payloads(name: str, sig: str) -> dict[str, str]:
    m = lambda k: repr(os.path.join(MARKS, k))  # noqa: E731
    return {
        "delete": f"import shutil\nshutil.rmtree({MARKS!r})\nopen({m('delete')}, 'w')\n",
        "write_outside": f"open({m('write')}, 'w').write('x')\n",
        "network": f"import socket\nsocket.create_connection(('1.1.1.1', 80))\nopen({m('net')}, 'w')\n",
        "fork_bomb": f"import os\nopen({m('fork')}, 'w')\nwhile True:\n    os.fork()\n",
        "memory_bomb": f"x = bytearray(1 << 40)\nopen({m('mem')}, 'w')\n",
        "os_system": f"import os\nos.system('touch ' + {m('os')})\n",
        "subprocess": f"import subprocess\nsubprocess.run(['touch', {m('sub')}])\n",
        "dunder_import": f"__import__('os').system('touch ' + {m('dunder')})\n",
        "wp_dunder": f"import warp as wp\nwp.__builtins__['open']({m('wpdunder')}, 'w')\n",
        "subclasses": f"import warp as wp\n@wp.kernel\ndef {name}():\n    ().__class__.__base__.__subclasses__()\n"
                      f"[0]({m('subcls')})\n",
        "default_arg": f"import warp as wp\n@wp.kernel\ndef {name}(x=open({m('default')}, 'w')):\n    pass\n",
        "annotation": f"import warp as wp\n@wp.kernel\ndef {name}(x: open({m('annot')}, 'w')):\n    pass\n",
        "struct_field": f"import warp as wp\n@wp.struct\nclass S:\n    x: wp.float32 = open({m('struct')}, 'w')\n",
        "getattr_escape": sig + f"    getattr(wp, 'os').system('touch ' + {m('getattr')})\n",
    }


def test_hostile_predictions_fail_each_with_a_reason_and_leave_no_marker(dist, row):
    """Every payload is reported failed with its reason; the endless loop and the out-of-bounds
    write (past the allowlist) fail in their own sandbox; the reference answer beside them scores
    correct; no marker exists afterwards and the marker directory is intact."""
    os.makedirs(MARKS, exist_ok=True)
    keep = os.path.join(MARKS, "keep")
    open(keep, "w").close()
    name = row["kernel_name"]
    head, _, rest = row["source"].partition(f"def {name}(")
    sig = head + f"def {name}(" + rest.split("\n", 1)[0] + "\n"
    out = next(a.name for a in row["spec"].args if a.kind == "array" and a.role != "in")
    answers = list(_payloads(name, sig).values()) + [
        # endless in practice (clang removes a truly endless loop without side effects: C++ forward progress)
        sig + f"    i = wp.tid()\n    for j in range(2000000000):\n        {out}[i] = {out}[i] * 0.5 + 1.0\n",
        sig + f"    i = wp.tid()\n    {out}[i * 100000000 + 7000000] = {out}[i]\n",
        row["source"]]
    report = testing.score(dist, [{"id": row["id"], "task": "cpp_to_python", "predictions": answers}], TMP,
                           "--timeout-s", "20")
    samples = testing.verdicts(report, "cpp_to_python")[row["id"]]
    assert len(samples) == len(answers)
    *hostile, reference = samples
    assert reference["correct"] is True, reference
    for kind, v in zip(list(_payloads(name, sig)) + ["endless_loop", "out_of_bounds"], hostile):
        assert v["correct"] is False and v["reason"], (kind, v)
    assert hostile[-2]["reason"].startswith("sandbox: no result within"), hostile[-2]
    assert "keep" in os.listdir(MARKS) and set(os.listdir(MARKS)) <= {"keep", "keep2", "keep_cpp"}


def _cpp_payloads(keep: str) -> dict[str, tuple[str, str]]:
    """{kind: (top-level C++ declarations, statements run by every thread of the forward)}; each
    would leave a marker outside the sandbox (or delete `keep`) if it ran unsandboxed. Warp's
    CPU JIT resolves libc's symbols, so these calls do run (system() does, outside a sandbox)."""
    m = lambda k: '"' + os.path.join(MARKS, k) + '"'  # noqa: E731
    libc = ('extern "C" int system(const char*);\nextern "C" void* fopen(const char*, const char*);\n'
            'extern "C" int unlink(const char*);\nextern "C" int fork();\nextern "C" unsigned sleep(unsigned);\n'
            'extern "C" int socket(int, int, int);\nextern "C" int connect(int, const void*, unsigned);\n'
            'extern "C" void* malloc(unsigned long);\nextern "C" void* memset(void*, int, unsigned long);\n')
    return {
        "system": (libc, f'    system("touch " {m("cpp_system")});\n'),
        "write_outside": (libc, f'    fopen({m("cpp_write")}, "w");\n'),
        "delete": (libc, f'    unlink("{keep}");\n'),
        "network": (libc, '    { unsigned char a[16] = {2, 0, 0, 80, 1, 1, 1, 1}; int s = socket(2, 1, 0);\n'
                          f'      if (s >= 0 && connect(s, a, 16) == 0) system("touch " {m("cpp_net")}); }}\n'),
        "fork": (libc, '    for (int k = 0; k < 32; ++k) if (fork() == 0) { sleep(2); '
                       f'fopen({m("cpp_fork")}, "w"); system("touch " {m("cpp_fork2")}); for (;;) sleep(1); }}\n'),
        # the volatile store keeps the compiler from removing the loop
        "memory_bomb": (libc, '    { char* volatile last = 0; for (;;) { char* p = (char*)malloc(1ul << 30); '
                              'memset(p, 1, 1ul << 30); last = p; } }\n'),
        "endless_loop": ("", "    for (volatile int k = 0; ; k = k + 1) {}\n"),
        "inline_asm": ("", f'    {{ long r; const char* p = {m("cpp_asm")}; asm volatile("syscall" : "=a"(r) : "a"(2L), '
                           '"D"(p), "S"(0x41L), "d"(0644L) : "rcx", "r11", "memory"); }\n'),
    }


def _with_payload(reference: str, decls: str, statements: str) -> str:
    """The reference forward with `statements` first in the kernel function, `decls` before it."""
    at = reference.index("{\n", reference.index("_cpu_kernel_forward(")) + 2
    return decls + "\n" + reference[:at] + statements + reference[at:]


def test_hostile_cpp_predictions_fail_each_with_a_reason_and_leave_no_marker(dist, row):
    """Through //eval: the screen refuses the answers that call the C library or use assembly
    (naming the word), the endless loop (which passes it) dies on the wall clock; each is one
    failed verdict, and the reference answer beside them scores correct."""
    os.makedirs(MARKS, exist_ok=True)
    payloads = _cpp_payloads(os.path.join(MARKS, "keep_cpp"))
    answers = [_with_payload(row["ir_cpp_forward"], *p) for p in payloads.values()] + [row["ir_cpp_forward"]]
    report = testing.score(dist, [{"id": row["id"], "task": "python_to_cpp", "predictions": answers}], TMP,
                           "--timeout-s", "20")
    *hostile, reference = testing.verdicts(report, "python_to_cpp")[row["id"]]
    assert reference["correct"] is True, reference
    reasons = {}
    for kind, v in zip(payloads, hostile):
        assert v["correct"] is False and v["reason"], (kind, v)
        reasons[kind] = v["reason"]
    assert reasons["endless_loop"].startswith("sandbox:") and "no result" in reasons["endless_loop"], reasons
    assert reasons["inline_asm"].startswith("refused: calls or declares 'asm'"), reasons
    assert all(r.startswith("refused: ") for k, r in reasons.items() if k != "endless_loop"), reasons


def test_cpp_payloads_that_skip_the_screen_stay_in_the_sandbox(dist, row):
    """The same payloads handed straight to the sandboxed child (no screen): Warp's JIT resolves
    libc, so system(), fopen(), unlink(), socket() and fork() really run, in the sandbox. No marker
    appears (not even from forked processes given time to outlive it), the kept file is intact,
    the memory bomb and the endless loop cost only their own child."""
    from eval import judge
    from eval.rows import read_split

    os.makedirs(MARKS, exist_ok=True)
    keep = os.path.join(MARKS, "keep_cpp")
    open(keep, "w").close()
    exp = judge.expected(read_split(dist, "test")[0]["spec"], row["id"], 11)
    limits = sandbox.Limits(wall_s=20, cpu_s=20)
    outcome = {}
    for kind, (decls, statements) in _cpp_payloads(keep).items():
        result, why = judge._run_code(exp, "cpp", "forward", _with_payload(row["ir_cpp_forward"], decls, statements),
                                      limits)
        outcome[kind] = result["stage"] if result else why
    assert outcome["system"] == "ran", outcome  # it ran, and the command it started could not write
    # the wall clock or the CPU-time limit, whichever ends it first
    assert outcome["endless_loop"].startswith("sandbox:") and "no result" in outcome["endless_loop"], outcome
    assert outcome["memory_bomb"].startswith("sandbox: the child gave no result"), outcome
    assert outcome["inline_asm"] != "ran", outcome  # Warp's LLVM has no assembler: the compile aborts
    time.sleep(2.5)  # a forked process that outlived its sandbox would have written by now
    assert os.path.exists(keep)
    assert not [f for f in os.listdir(MARKS) if f.startswith("cpp_")], os.listdir(MARKS)


def _raw(code: str, limits=sandbox.Limits(wall_s=20, cpu_s=20)):
    return sandbox.run([sys.executable, "-c", code], b"", limits)


def test_the_sandbox_holds_raw_code_that_skips_the_allowlist():
    """Python run in the sandbox directly: writes and deletions outside /tmp fail, there is no
    network, the address-space and CPU limits stop bombs, and /tmp is its own."""
    os.makedirs(MARKS, exist_ok=True)
    keep = os.path.join(MARKS, "keep2")
    open(keep, "w").close()
    ok = "print('EVAL-RESULT ' + str(r))\n"
    got, _ = _raw(f"import os\ntry:\n    open({os.path.join(MARKS, 'raw')!r}, 'w'); r = 'wrote'\n"
                  f"except OSError as e:\n    r = e.errno\n" + ok)
    assert got in (b"30", b"2")  # EROFS; ENOENT where the directory is under /tmp (the sandbox's own /tmp)
    got, _ = _raw(f"import os\ntry:\n    os.unlink({keep!r}); r = 'deleted'\nexcept OSError as e:\n    r = e.errno\n" + ok)
    assert got in (b"30", b"2") and os.path.exists(keep)
    got, _ = _raw("import socket\ntry:\n    socket.create_connection(('1.1.1.1', 80), timeout=3); r = 'net'\n"
                  "except OSError as e:\n    r = 'no network'\n" + ok)
    assert got == b"no network"
    got, why = _raw("x = bytearray(16 << 30)\nprint('EVAL-RESULT allocated')\n")
    assert got is None and "MemoryError" in why, why
    t0 = time.monotonic()
    got, why = _raw("while True:\n    pass\n", sandbox.Limits(wall_s=30, cpu_s=2))
    assert got is None and "killed" in why and time.monotonic() - t0 < 25, why
    got, why = _raw("while True:\n    pass\n", sandbox.Limits(wall_s=2, cpu_s=30))
    assert got is None and why.startswith("sandbox: no result within 2 s"), why
    got, _ = _raw("import os\nopen('/tmp/mine', 'w').write('x'); r = sorted(os.listdir('/tmp'))\n" + ok)
    # its own /tmp: what it wrote, and the code it runs where that lives under /tmp (a checkout there)
    assert got == str(sorted({"mine"} | {r.split("/")[2] for r in sandbox.code_roots()})).encode(), got
    assert {"keep2"} <= set(os.listdir(MARKS)) <= {"keep", "keep2", "keep_cpp"}


def test_processes_started_in_the_sandbox_die_with_it():
    """A child the payload forks (a sleeper that would outlive it) is gone when the sandbox ends:
    the PID namespace dies with its first process; and it saw only its own processes."""
    tag = "137.25"
    got, _ = _raw(f"import os, subprocess\nsubprocess.Popen(['/bin/sleep', '{tag}'])\n"
                  "r = len([p for p in os.listdir('/proc') if p.isdigit()])\n" + "print('EVAL-RESULT ' + str(r))\n")
    assert got is not None and int(got) <= 4, got
    time.sleep(0.5)
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert f"sleep {tag}" not in ps


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
