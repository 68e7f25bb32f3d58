"""A repository rule that builds the project's Python environment from the lock file.

It creates a venv with the system python3 and pip-installs requirements_lock.txt into it. The
py_runtime points at a tiny wrapper script rather than the venv itself (500 MB of runfiles
would make every test slow); a stamp file holding `python -VV` and `pip freeze` is the runtime's
only file, so cached test results are invalidated whenever the environment changes.
"""

def _find_python(rctx):
    if rctx.path("/usr/bin/python3").exists:
        return rctx.path("/usr/bin/python3")
    found = rctx.which("python3")
    if found == None:
        fail("python3 not found: install Debian's python3 and python3-venv")
    return found

def _run(rctx, args, what):
    res = rctx.execute(args, timeout = 3600, quiet = True)
    if res.return_code != 0:
        fail("%s failed (exit %d):\n%s\n%s" % (what, res.return_code, res.stdout, res.stderr))
    return res.stdout

def _python_env_impl(rctx):
    lock = rctx.path(rctx.attr.lock)
    rctx.read(lock)  # makes the lock file's content part of this repository's identity
    python = _find_python(rctx)
    venv = rctx.path("venv")
    rctx.report_progress("creating venv")
    _run(rctx, [python, "-m", "venv", "--clear", str(venv)], "python3 -m venv")
    vpy = str(venv) + "/bin/python3"
    rctx.report_progress("pip install -r requirements_lock.txt (first time takes a few minutes)")
    _run(rctx, [vpy, "-m", "pip", "install", "--no-input", "--disable-pip-version-check", "-q", "-r", str(lock)], "pip install")
    version = _run(rctx, [vpy, "-VV"], "python -VV")
    freeze = _run(rctx, [vpy, "-m", "pip", "freeze", "--all"], "pip freeze")
    rctx.file("stamp.txt", version + freeze)
    rctx.file("python3", "#!/bin/sh\nexec \"%s\" \"$@\"\n" % vpy, executable = True)
    rctx.file("BUILD.bazel", """
load("@bazel_tools//tools/python:toolchain.bzl", "py_runtime_pair")

package(default_visibility = ["//visibility:public"])

exports_files(["stamp.txt"])

py_runtime(
    name = "runtime",
    interpreter = "python3",
    files = ["stamp.txt"],
    python_version = "PY3",
    stub_shebang = "#!/usr/bin/env python3",
)

py_runtime_pair(
    name = "runtime_pair",
    py3_runtime = ":runtime",
)

toolchain(
    name = "python_toolchain",
    toolchain = ":runtime_pair",
    toolchain_type = "@bazel_tools//tools/python:toolchain_type",
)
""")

python_env = repository_rule(
    implementation = _python_env_impl,
    attrs = {"lock": attr.label(mandatory = True, allow_single_file = True)},
    local = False,
)
