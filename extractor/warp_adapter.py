"""The one adapter over Warp internals (`warp._src`). Nothing else in the project imports them.

Everything here that touches `warp._src` is listed in `INTERNAL_SYMBOLS`; the contract test
(`extractor/warp_adapter_test.py`) checks each still exists, so a Warp upgrade that moves one
fails loudly with the symbol's name instead of producing wrong data.

What needs no Warp lives beside it, and its public names are re-exported here so callers
keep one entry point: cutting each kernel's text from the compiled module source
(`extractor/cut.py`), its PTX from the module PTX (`extractor/ptx.py`), and telling a CUDA
error that loses the context (`extractor/cuda_errors.py`).

Over 400 lines, on purpose: every function left here touches Warp (init and cache, compile
capture, loads and launches), and the contract that only this module reaches `warp._src` is
checked on this one file; splitting it would spread that contract over several.
"""

from __future__ import annotations

import ast
import atexit
import contextlib
import ctypes
import dataclasses
import functools
import glob
import importlib
import multiprocessing.util
import os
import re
import secrets
import shutil
import sys
import tempfile

import numpy as np
import warp as wp
from warp._src import build as _build
from warp._src import codegen as _codegen
from warp._src import context as _context

from extractor.cuda_errors import CudaContextLost, is_sticky_cuda_error, raise_if_context_lost  # noqa: F401 (re-exported)
from extractor.cut import (  # noqa: F401 (re-exported; the test reaches the private ones here)
    _cut_kernel, _header, _Word, _word_index, _words, clean, missing_from, other_kernel, splice, top_level_items)
from extractor.printed import KernelAssertionFailed, printed, raise_if_failed  # noqa: F401 (re-exported)
from extractor.ptx import _normalize_ptx, _ptx_functions, _ptx_of, batch_dependent  # noqa: F401 (re-exported)

INTERNAL_SYMBOLS = (
    ("warp._src.context", "runtime"),
    ("warp._src.context", "user_modules"),
    ("warp._src.context", "Module"),
    ("warp._src.context", "Module._run_codegen"),
    ("warp._src.context", "Module.get_module_hash"),
    ("warp._src.context", "Module.execs"),
    ("warp._src.build", "build_cpu"),
    ("warp._src.build", "build_cuda"),
    ("warp._src.codegen", "Struct"),
    ("warp._src.codegen", "log_debug"),
    ("warp._src.codegen", "strip_reference"),
    ("warp._src.codegen", "builtin_operators"),
)

_initialized = False
_cache_dir: str | None = None
_run_token = ""
_driver_missing = False

# What Warp's native library prints on stderr (fd 2, past Python) when wp.init() finds no
# libcuda: once per process, so once per worker of a run and per sandbox of a re-validation.
# init_warp holds it back; the run's device line says "no CUDA device" instead (`cuda_driver_missing`)
NO_DRIVER_WARNING = "Warp CUDA warning: Could not find or load the NVIDIA CUDA driver."


def init_warp() -> None:
    """Initialise Warp once per process, with a kernel cache of this process alone.

    Warp skips a compile when its cache already holds a binary under the module's name, and our
    module names carry no hash (`strip_hash`): a persistent cache shared between runs could
    hand a batch another run's binary. So every process gets a fresh cache directory under the
    run's temporary directory ($WARP_IR_RUN_DIR, set by the pipeline and the validator; else
    $TEST_TMPDIR or the system temp dir), removed when the process exits, and module names
    carry a random per-process token.
    """
    global _initialized, _cache_dir, _run_token
    if _initialized:
        return
    wp.config.quiet = True
    wp.config.log_level = wp.LOG_WARNING
    base = os.environ.get("WARP_IR_RUN_DIR") or os.environ.get("TEST_TMPDIR") or tempfile.gettempdir()
    os.makedirs(base, exist_ok=True)
    _cache_dir = tempfile.mkdtemp(prefix=f"warp-cache-{os.getpid()}-", dir=base)
    _run_token = secrets.token_hex(6)
    wp.config.kernel_cache_dir = _cache_dir
    # atexit does not run in multiprocessing workers; multiprocessing's own finalizers do
    multiprocessing.util.Finalize(None, shutil.rmtree, args=(_cache_dir, True), exitpriority=0)
    atexit.register(shutil.rmtree, _cache_dir, True)
    _init_holding_back_the_driver_warning()
    _initialized = True


def _init_holding_back_the_driver_warning() -> None:
    """wp.init() with fd 2 sent to a temporary file; what Warp wrote there is written back to
    stderr (also when wp.init raises) but for NO_DRIVER_WARNING, which is noted
    (`cuda_driver_missing`). Where fd 2 cannot be redirected, a plain wp.init()."""
    global _driver_missing
    sys.stderr.flush()
    try:
        held = tempfile.TemporaryFile()
    except OSError:
        wp.init()
        return
    with held:
        try:
            saved = os.dup(2)
        except OSError:
            wp.init()
            return
        os.dup2(held.fileno(), 2)
        try:
            wp.init()
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            lines = held.read().decode("utf-8", "replace").splitlines(keepends=True)
            rest = [line for line in lines if not line.startswith(NO_DRIVER_WARNING)]
            _driver_missing = len(rest) < len(lines)
            if rest:
                sys.stderr.write("".join(rest))
                sys.stderr.flush()


def cuda_driver_missing() -> bool:
    """This machine has no NVIDIA CUDA driver for Warp: wp.init() said so (NO_DRIVER_WARNING),
    or, before init, libcuda does not load (as Warp looks for it: libcuda.so, then libcuda.so.1)."""
    if _initialized:
        return _driver_missing
    for name in ("libcuda.so", "libcuda.so.1"):
        try:
            ctypes.CDLL(name)
            return False
        except OSError:
            pass
    return True


def initialized() -> bool:
    return _initialized


def kernel_cache_dir() -> str | None:
    """This process's private Warp kernel cache (None before init_warp)."""
    return _cache_dir


DEFAULT_ARCHS = ("sm_90",)


def _version(v) -> str | None:
    return ".".join(map(str, v)) if v else None


def nvrtc_version() -> str | None:
    init_warp()
    try:
        return _version(_context.runtime.get_nvrtc_version())
    except Exception:  # noqa: BLE001 - a Warp build without NVRTC
        return None


def nvrtc_archs() -> list[str]:
    """The sm_XX targets the bundled NVRTC can compile for."""
    init_warp()
    core = _context.runtime.core
    n = int(core.wp_nvrtc_supported_arch_count())
    buf = (ctypes.c_int * n)()
    core.wp_nvrtc_supported_archs(buf)
    return [f"sm_{a}" for a in buf]


def compilers() -> dict:
    """The versions of what compiles a record's code, read from the running Warp."""
    init_warp()
    rt = _context.runtime
    return {
        "warp_lang": wp.__version__,
        "cuda_toolkit": _version(getattr(rt, "toolkit_version", None)),
        "nvrtc": nvrtc_version(),
        "llvm": rt.get_llvm_version(),
    }


@dataclasses.dataclass(frozen=True)
class Compiled:
    """One backend's module source exactly as Warp handed it to the compiler.

    `compiler` holds the arguments of that compiler call (optimisation level, fast math, ...);
    it is None for the --no-validate path, where the source comes from the same Warp
    codegen call that a compile makes, with the options a compile would use, but no compiler
    runs.
    """

    backend: str  # "cpu" or "cuda"
    source: str
    options: dict  # the module's resolved options for this variant (block_dim, mode, ...)
    compiler: dict | None
    # what Warp's codegen said while generating it about differentiability (its own warnings)
    notes: tuple = ()


@contextlib.contextmanager
def _capture_codegen_notes(into: list):
    """Collect the non-differentiability warnings Warp's codegen logs at debug level (a
    variable mutated in a dynamic loop, an array element or struct field overwritten)."""
    real = _codegen.log_debug

    def log_debug(msg, *args, **kw):
        if isinstance(msg, str) and "differentiable" in msg:
            into.append(msg.split("\n", 1)[0])
        return real(msg, *args, **kw)

    _codegen.log_debug = log_debug
    try:
        yield
    finally:
        _codegen.log_debug = real


# `{ // MISSINGADJOINT` or, inside a macro's lines (each ending in a backslash), `{ \ /* MISSINGADJOINT`
# (Warp 1.19's frac, rint, floordiv, step, nonzero, floor, ... are declared that way)
_MISSING = re.compile(r"void\s+adj_(\w+)\s*\([^)]*\)\s*(?:\\\s*)?\{\s*(?:\\\s*)?(?://|/\*)\s*MISSINGADJOINT")


@functools.lru_cache(maxsize=None)
def overloadable_operators() -> dict[type, str]:
    """{ast operator class: the name Warp's codegen looks up}: a binary or augmented operator
    calls the `@wp.func` of that name where the kernel's module defines one (`add`, `sub`, ...),
    read from the running codegen (unary and comparison operators call builtins only)."""
    return {op: name for op, name in _codegen.builtin_operators.items() if issubclass(op, ast.operator)}


@functools.lru_cache(maxsize=None)
def missing_adjoints() -> dict[str, str]:
    """The builtins whose adjoint the installed Warp leaves unimplemented, read from its native
    headers (an empty body marked `// MISSINGADJOINT` or `/* MISSINGADJOINT */`): {name: header file}."""
    native = os.path.join(os.path.dirname(wp.__file__), "native")
    found = {}
    for path in sorted(glob.glob(os.path.join(native, "*.h"))):
        with open(path, encoding="utf-8", errors="replace") as f:
            for m in _MISSING.finditer(f.read()):
                found.setdefault(m.group(1), os.path.basename(path))
    return found


def declared_nondifferentiable(kernels: dict[str, object], compiled: Compiled) -> dict[str, str]:
    """{kernel name: Warp's first codegen warning about it or its helpers}."""
    out = {}
    for name, kernel in kernels.items():
        funcs: dict = {}
        _called_functions(kernel.adj, funcs)
        owners = {kernel.adj.fun_name} | {f.adj.fun_name for f in funcs}
        for note in compiled.notes:
            m = re.search(r'function "?([A-Za-z_][A-Za-z0-9_]*)"?', note)
            if m and m.group(1) in owners:
                out[name] = note.split(" at ", 1)[0]
                break
    return out


@contextlib.contextmanager
def _compiler_calls(before):
    """While open, every call Warp makes to its CPU (LLVM) or CUDA (NVRTC) compiler first goes
    through `before(backend, source path, keyword arguments)`, which returns the keyword
    arguments the compiler gets (it may read or rewrite the source file)."""
    real_cpu, real_cuda = _build.build_cpu, _build.build_cuda

    def build_cpu(obj_path, cpp_path, **kw):
        return real_cpu(obj_path, cpp_path, **before("cpu", cpp_path, kw))

    def build_cuda(cu_path, arch, output_path, **kw):
        call = before("cuda", cu_path, {"arch": arch, **kw})  # the arch is part of what a call records
        return real_cuda(cu_path, arch, output_path, **{k: v for k, v in call.items() if k != "arch"})

    _build.build_cpu, _build.build_cuda = build_cpu, build_cuda
    try:
        yield
    finally:
        _build.build_cpu, _build.build_cuda = real_cpu, real_cuda


def _read(path) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def _capture_compiles(into: list):
    """Record every call Warp makes to its compilers: the source file's text at the moment of the
    call and the call's arguments."""
    def before(backend, path, kw):
        into.append((backend, _read(path), kw))
        return kw
    return _compiler_calls(before)


# the compiler-call arguments that shape the produced code (paths and include dirs are not)
_COMPILER_KEYS = {
    "cpu": ("mode", "optimization_level", "fast_math", "fuse_fp", "verify_fp", "block_dim", "extra_flags",
            "enable_tiles_in_stack_memory"),
    "cuda": ("arch", "config", "optimization_level", "fast_math", "fuse_fp", "verify_fp", "lineinfo", "llvm_cuda",
             "arch_suffix"),
}
# the module options (resolved for the loaded variant) that shape the generated code
_OPTION_KEYS = ("block_dim", "mode", "enable_backward", "strip_hash", "fast_math", "fuse_fp", "enable_mathdx_gemm",
                "default_grid_stride", "optimization_level", "line_directives", "lineinfo")


def _one_compile(calls: list, backend: str) -> tuple[str, dict]:
    mine = [c for c in calls if c[0] == backend]
    if len(mine) != 1:
        # 0: Warp found a cached binary and skipped the compile, so no source can be certified
        raise RuntimeError(f"expected one {backend} compile, Warp made {len(mine)}")
    _, source, kw = mine[0]
    return source, {k: kw[k] for k in _COMPILER_KEYS[backend] if k in kw}


def _resolved(module, block_dim: int) -> dict:
    module.get_module_hash(block_dim)
    opts = module.resolved_options[block_dim]
    return {k: opts.get(k) for k in _OPTION_KEYS}


def _grid_stride(kernels: dict) -> bool | None:
    strides = {k.grid_stride for k in kernels.values()}
    if len(strides) != 1:
        raise RuntimeError(f"kernels of one module resolved grid_stride differently: {sorted(map(str, strides))}")
    return strides.pop()


def cuda_available() -> bool:
    init_warp()
    return wp.is_cuda_available()


_batch_counter = 0
# each load_batch module's kernel sources, by module name (until `unload`): what compile_ptx
# needs to compile one of its kernels in a module of its own
_batch_sources: dict[str, dict[str, str]] = {}


def import_source(source: str, path: str, module_name: str):
    """Write a kernel's source to `path` and import it (Warp reads the file for its line info)."""
    with open(path, "w") as f:
        f.write(source)
    spec = importlib.util.spec_from_file_location(module_name, path)
    pymod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pymod)
    return pymod


def load_batch(sources: dict[str, str], workdir: str) -> tuple[object, dict[str, object]]:
    """Import many kernel sources into ONE Warp module (so they compile together).

    Each source stays in its own file; only its `@wp.kernel` decorator line is pointed at the
    shared module, which keeps every kernel's `<L n>` line comments identical to the file's.
    Returns (module, {kernel name: kernel}).
    """
    global _batch_counter
    init_warp()
    _batch_counter += 1
    # unique per process and run (a random token, not the pid, which containers reuse)
    mod_name = f"warp_ir_{_run_token}_{_batch_counter}"
    module = wp.get_module(mod_name)
    module.options["strip_hash"] = True
    module.options["enable_backward"] = True
    # cuBLASDx LTO for tile_matmul costs ~14 s per kernel in NVRTC; Warp's built-in tile GEMM
    # is what the IR records instead (the fingerprint says so).
    module.options["enable_mathdx_gemm"] = False
    _batch_sources[mod_name] = dict(sources)
    kernels = {}
    for name, src in sources.items():
        batch_src = src.replace("\n@wp.kernel\n", f'\n@wp.kernel(module="{mod_name}")\n', 1)
        pymod = import_source(batch_src, os.path.join(workdir, f"{name}.py"), f"{mod_name}_{name}")
        kernel = getattr(pymod, name)
        kernels[name] = kernel
        # Warp names helpers `<name>_<n>` with a process-wide counter; pin n=0 so a helper's C++
        # name never depends on what else this process happened to load before.
        for value in vars(pymod).values():
            if isinstance(value, wp.Function) and getattr(value, "native_func", None):
                value.native_func = f"{value.key}_0"
    return module, kernels


def _called_functions(adj, seen: dict) -> None:
    for f in getattr(adj, "called_user_functions", ()):
        if f not in seen:
            seen[f] = None
            _called_functions(f.adj, seen)


def _structs_used(kernel, funcs) -> set:
    """The @wp.struct types a kernel or its helpers hold as a value or an array element, and
    the structs those hold as fields (nested structs)."""
    found, todo = set(), []
    for adj in [kernel.adj] + [f.adj for f in funcs]:
        for var in (*adj.args, *adj.variables):
            t = _codegen.strip_reference(var.type)
            todo += [t, getattr(t, "dtype", None)]
    while todo:
        cand = todo.pop()
        if isinstance(cand, _codegen.Struct) and cand not in found:
            found.add(cand)
            todo += [field.type for field in cand.vars.values()]
    return found


def _kernel_names(kernel) -> tuple[str, list[str], list[str]]:
    """A kernel's mangled name, its @wp.func helpers' C++ names and its structs' native names."""
    funcs: dict = {}
    _called_functions(kernel.adj, funcs)
    return (kernel.get_mangled_name(), [f.native_func for f in funcs],
            [s.native_name for s in _structs_used(kernel, list(funcs))])


def cut_ir(kernels: dict[str, object], cpp: Compiled, cu: Compiled, workdir: str) -> dict[str, dict]:
    """Per kernel: {"cpp": {"forward", "backward"}, "cuda": {...}}, cut out of the module
    sources the compilers were given (see `Compiled`): for "cpp" the C++ that LLVM compiled
    for the CPU launch, for "cuda" the CUDA C++ that NVRTC compiled.

    Each kernel's text holds only its own structs, @wp.func helpers (forward code in
    "forward", adjoints in "backward") and its kernel functions: no module header, no
    entry-point thunks. The one cleaning applied (`clean`): the batch's working directory is
    dropped from `// file.py:line` comments, trailing spaces are stripped and runs of blank
    lines collapse to one.
    """
    prefix = workdir.rstrip("/") + "/"
    out: dict[str, dict] = {name: {} for name in kernels}
    names = {name: _kernel_names(kernel) for name, kernel in kernels.items()}  # the same for both targets
    for target, compiled in (("cpp", cpp), ("cuda", cu)):
        items = [(i, _header(i)) for i in top_level_items(compiled.source)]
        index = _word_index(items)
        for name, kernel in kernels.items():
            parts = _cut_kernel(items, names[name], compiled.backend, index)
            out[name][target] = {k: clean(v, prefix) for k, v in parts.items()}
    return out


def compile_ptx(module, kernels: dict[str, object], workdir: str, archs=DEFAULT_ARCHS,
                strip_hash: bool | None = True) -> tuple[dict[str, dict], Compiled]:
    """NVRTC-compile the whole module to PTX per arch (no GPU needed); cut out each kernel.

    Returns ({kernel name: {arch: {"forward": ptx}}}, the CUDA source NVRTC compiled); raises
    on a compile error, or when the source differs between archs. The whole module, adjoints
    included, goes through NVRTC (so the backward CUDA is proven to compile), but only the
    forward entry is kept: NVVM's backward PTX of tile kernels is not reproducible (it varies
    run to run for tile_matmul and with the batch for tile reductions), and a record holds only
    what a re-validation can reproduce byte for byte. `strip_hash` None keeps the module's own
    option (a generic kernel's overloads need their hashes to stay apart).

    A kernel whose PTX calls a function another kernel of the module calls too
    (`ptx.batch_dependent`: NVVM specializes it for all its callers) gets its PTX from a module
    holding it alone (`_alone_ptx`), so every kernel's PTX is the one it has alone, whatever its
    batch. That takes the kernel's source: a module from `load_batch` has it; any other (the
    harvest's, imported from the wheel's own files) keeps the batch's PTX, which a re-lowering
    in the same batch reproduces. (A GPU launch runs the batch module's own PTX.)
    """
    init_warp()
    out: dict[str, dict] = {name: {} for name in kernels}
    mangled = {name: kernel.get_mangled_name() for name, kernel in kernels.items()}
    compiled, shared = None, set()
    for arch in archs:
        source, compiler, notes, funcs = _nvrtc_ptx(module, workdir, arch, strip_hash)
        if compiled is None:
            options = _resolved(module, module.options["block_dim"]) | {"grid_stride": _grid_stride(kernels)}
            compiled = Compiled("cuda", source, options, {k: v for k, v in compiler.items() if k != "arch"},
                                tuple(dict.fromkeys(notes)))
        elif source != compiled.source:
            raise RuntimeError(f"Warp generated different CUDA source for {arch} than for {archs[0]}")
        for name in kernels:
            out[name][arch] = {"forward": _ptx_of(funcs, f"{mangled[name]}_cuda_kernel_forward")}
            if not out[name][arch]["forward"]:
                raise RuntimeError(f"no PTX entry for {mangled[name]} in {arch}")
        shared |= batch_dependent(funcs, mangled)
    sources = _batch_sources.get(module.name, {})
    for name in sorted(shared):
        if name in sources and len(sources) > 1:  # (alone already: nothing to gain)
            out[name] = _alone_ptx(module, name, sources[name], workdir, archs, strip_hash)
    return out, compiled


def _nvrtc_ptx(module, workdir: str, arch: str, strip_hash: bool | None) -> tuple[str, dict, list, dict[str, str]]:
    """NVRTC's compile of the module for one arch: (the CUDA source, the compiler, Warp's codegen
    notes, the module PTX's functions by name)."""
    num = int(arch.removeprefix("sm_"))
    mdir = os.path.join(workdir, f"aot_{arch}")
    calls: list = []
    notes: list = []
    with _capture_compiles(calls), _capture_codegen_notes(notes):
        wp.compile_aot_module(module, arch=num, use_ptx=True, module_dir=mdir, strip_hash=strip_hash)
    source, compiler = _one_compile(calls, "cuda")
    paths = glob.glob(os.path.join(mdir, f"*.sm{num}.ptx"))
    if len(paths) != 1:
        raise RuntimeError(f"NVRTC wrote {len(paths)} PTX files for {arch}")
    with open(paths[0]) as f:
        return source, compiler, notes, _ptx_functions(f.read())


def _alone_ptx(module, name: str, source: str, workdir: str, archs, strip_hash: bool | None) -> dict:
    """{arch: {"forward": ptx}} of kernel `name` (of `source`) compiled in a module of its own,
    under the batch module's options."""
    sub = os.path.join(workdir, f"alone_{name}")
    os.makedirs(sub, exist_ok=True)
    alone, kernels = load_batch({name: source}, sub)
    alone.options.update(module.options)
    try:
        return compile_ptx(alone, kernels, sub, archs, strip_hash)[0][name]
    finally:
        unload(alone)


# every CPU launch resolves block_dim to 1 (Warp's CPU blocks are opt-in), so the CPU module
# is loaded, and its source recorded, for that variant
CPU_BLOCK_DIM = 1


def compile_cpu(module) -> Compiled:
    """Compile the whole module with Warp's LLVM/Clang CPU backend, as a CPU launch loads it;
    returns the C++ source LLVM compiled (raises on failure)."""
    init_warp()
    calls: list = []
    with _capture_compiles(calls):
        module.load("cpu", block_dim=CPU_BLOCK_DIM)
    source, compiler = _one_compile(calls, "cpu")
    return Compiled("cpu", source, _resolved(module, CPU_BLOCK_DIM), compiler)


def _splicing(kernel, part: str, text: str, into: list):
    """While open, every source Warp hands its CPU or CUDA compiler has `kernel`'s `part` replaced
    by `text` (`extractor.cut.splice`) before the compiler reads it; `into` gets the spliced
    texts. Warp writes the module source to its cache directory and then calls the compiler
    with the path: the file is rewritten between the two (the kernel's names are read then, once
    Warp has hashed the module)."""
    def before(backend, path, kw):
        spliced = splice(_read(path), _kernel_names(kernel), backend, part, text)
        with open(path, "w", encoding="utf-8") as f:
            f.write(spliced)
        into.append((backend, spliced))
        # no precompiled header for CUDA: NVRTC writes an ~80 MB one, past a sandbox's file-size
        # limit ("unable to obtain mapped memory"); parsing the headers afresh gives the same code
        return {**kw, "use_precompiled_headers": False} if backend == "cuda" else kw
    return _compiler_calls(before)


def compile_spliced(module, kernel, target: str, part: str, text: str, workdir: str) -> str:
    """Compile `module` as the pipeline does (the CPU load of `compile_cpu`, or NVRTC to PTX for
    DEFAULT_ARCHS[0] as in `compile_ptx`) with `kernel`'s `part` of the generated C++ ("cpp") or
    CUDA ("cuda") source replaced by `text`; returns the source the compiler was given (raises
    on a compile error). After a "cpp" compile the module is loaded, so the kernel launches with
    the replaced code."""
    init_warp()
    spliced: list = []
    with _splicing(kernel, part, text, spliced):
        if target == "cpp":
            module.load("cpu", block_dim=CPU_BLOCK_DIM)
        else:
            num = int(DEFAULT_ARCHS[0].removeprefix("sm_"))
            wp.compile_aot_module(module, arch=num, use_ptx=True, module_dir=os.path.join(workdir, "aot"),
                                  strip_hash=True)
    if len(spliced) != 1:
        raise RuntimeError(f"expected one {target} compile, Warp made {len(spliced)}")
    return spliced[0][1]


def codegen_sources(module, kernels: dict[str, object], archs=DEFAULT_ARCHS) -> tuple[Compiled, Compiled]:
    """The --no-validate path: the C++ and CUDA module sources from the same Warp codegen call a
    compile makes (`Module._run_codegen`), with the options `compile_cpu` and `compile_ptx`
    resolve, but no compiler runs. `extractor/warp_adapter_test.py` checks that they equal
    what the compilers are given."""
    init_warp()
    cpu_opts = _resolved(module, CPU_BLOCK_DIM)
    cpp = module._run_codegen(module.resolved_options[CPU_BLOCK_DIM] | {"output_arch": None}, True)[0]
    cuda_bd = module.options["block_dim"]
    cuda_opts = _resolved(module, cuda_bd) | {"grid_stride": _grid_stride(kernels)}
    arch = int(archs[0].removeprefix("sm_"))
    cu = module._run_codegen(module.resolved_options[cuda_bd] | {"output_arch": arch}, False)[0]
    return Compiled("cpu", cpp, cpu_opts, None), Compiled("cuda", cu, cuda_opts, None)


def toolchain(cpp: Compiled, cu: Compiled, archs=DEFAULT_ARCHS) -> dict:
    """What produced a record's code, read from the running Warp, the module's resolved options
    per backend and the arguments of the compiler calls (null where nothing was compiled)."""
    return {**compilers(), "ptx_archs": list(archs),
            "cpu": {"options": cpp.options, "compiler": cpp.compiler},
            "cuda": {"options": cu.options, "compiler": cu.compiler}}


def warp_written_sources(module, workdir: str) -> dict[str, str]:
    """The module sources Warp itself wrote beside the binaries it built: the CPU `.cpp` in this
    process's kernel cache and the `.cu` of the first PTX compile under `workdir`. Read from
    disk, independently of the capture in `compile_cpu`/`compile_ptx`, so a check can hold the
    stored code against them."""
    out = {}
    for target, root, ext in (("cpp", _cache_dir, "cpp"), ("cuda", workdir, "cu")):
        paths = sorted(p for p in glob.glob(os.path.join(root, "**", f"*.{ext}"), recursive=True)
                       if os.path.basename(p) == f"wp_{module.name}.{ext}")
        if not paths:
            raise FileNotFoundError(f"Warp wrote no {ext} source for {module.name} under {root}")
        with open(paths[0], encoding="utf-8") as f:
            out[target] = f.read()
    return out


def loaded_cpu_variants(module) -> list[int]:
    """The block_dims of the CPU variants this module has loaded (what launches ran)."""
    return sorted(bd for (ctx, bd) in module.execs if ctx is None)


def _driver_device_count() -> int:
    """CUDA devices as the driver counts them, without initialising Warp (0 without a driver)."""
    try:
        lib = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return 0
    count = ctypes.c_int(0)
    if lib.cuInit(0) != 0 or lib.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return 0
    return count.value


def cuda_devices() -> list[str]:
    """The CUDA devices of this machine, by alias ("cuda:0", "cuda:1", ...); [] without a GPU.
    A machine without a CUDA driver is answered without initialising Warp (so a process that
    only schedules work, like the pipeline's parent, makes no Warp cache of its own there)."""
    if not _initialized and _driver_device_count() == 0:
        return []
    init_warp()
    if not wp.is_cuda_available():
        return []
    return [str(d.alias) for d in wp.get_cuda_devices()]


def device_description(device: str) -> str:
    """"cpu", or a CUDA device's alias with its name and arch, e.g. "cuda:0 NVIDIA H100 80GB HBM3 (sm_90)"."""
    init_warp()
    if device == "cpu":
        return "cpu"
    d = wp.get_device(device)
    return f"{d.alias} {d.name} (sm_{d.arch})"


def _ptx_arch_for(device, archs) -> int | None:
    """The highest PTX arch of `archs` a device can JIT (PTX runs on its own arch and newer)."""
    fit = [int(a.removeprefix("sm_")) for a in archs if int(a.removeprefix("sm_")) <= device.arch]
    return max(fit) if fit else None


def load_cuda_module(module, device: str, workdir: str, archs, cu: Compiled) -> str:
    """Load the batch module on a CUDA device; returns how: "aot_ptx" or "nvrtc".

    `compile_ptx` already ran NVRTC on this module and wrote the PTX under `workdir`; loading
    that PTX (`wp.load_aot_module`, the driver JITs it for the device) avoids a second NVRTC
    compile of the same source. When no compiled arch fits the device (PTX for sm_90 cannot run
    on an sm_80 GPU), Warp compiles again for the device; that compile is captured like the
    others, and its source must be the one the stored CUDA text and PTX were cut from, or the
    GPU would run code the record does not hold (RuntimeError)."""
    init_warp()
    dev = wp.get_device(device)
    calls: list = []
    arch = _ptx_arch_for(dev, archs)
    with _capture_compiles(calls):
        if arch is not None:
            wp.load_aot_module(module, device=dev, arch=arch, module_dir=os.path.join(workdir, f"aot_sm_{arch}"),
                               use_ptx=True, strip_hash=True)
        else:
            module.load(dev)
    cuda_calls = [c for c in calls if c[0] == "cuda"]
    for _, source, _kw in cuda_calls:
        if source != cu.source:
            raise RuntimeError(f"the CUDA source Warp compiled to load on {device} differs from the source compiled to PTX")
    if arch is not None and cuda_calls:
        raise RuntimeError(f"loading the AOT PTX (sm_{arch}) on {device} ran NVRTC again")
    return "aot_ptx" if arch is not None else "nvrtc"


def loaded_cuda_variants(module, device: str) -> dict[int, object]:
    """The variants this module has loaded on a CUDA device: {block_dim: the loaded binary's
    object} (compared by identity). Equal before and after the launches: no launch loaded (or
    compiled) anything else."""
    ctx = wp.get_device(device).context
    return {bd: e for (c, bd), e in module.execs.items() if c is not None and c == ctx}




def launch(kernel, dim, arg_values: list, device: str = "cpu", tile_block_dim: int | None = None) -> None:
    """wp.launch, or wp.launch_tiled (dim counts tiles) when tile_block_dim is given; then
    synchronize, so a fault surfaces here (a sticky CUDA error as CudaContextLost), and a failed
    wp.expect_* as KernelAssertionFailed (`extractor.printed`)."""
    text: list = []
    try:
        with printed(text):  # a failed wp.expect_* is seen only in what the kernel prints
            if tile_block_dim:
                wp.launch_tiled(kernel, dim=dim, inputs=arg_values, block_dim=tile_block_dim, device=device)
            else:
                wp.launch(kernel, dim=dim, inputs=arg_values, device=device)
            wp.synchronize_device(device)
    except Exception as e:
        if device != "cpu":
            raise_if_context_lost(e, getattr(kernel, "key", None))
        raise
    raise_if_failed(text[0], getattr(kernel, "key", None))


def launch_with_adjoint(kernel, dim, arg_values: list, out_grads: dict, device: str = "cpu",
                        tile_block_dim: int | None = None) -> None:
    """Run the forward kernel under a `wp.Tape`, seed the adjoints of the arrays in `out_grads`
    ({position in arg_values: NumPy cotangent}) and run the backward kernel; afterwards each
    array argument created with `requires_grad=True` holds its gradient in `.grad`."""
    tape = wp.Tape()
    with tape:
        launch(kernel, dim, arg_values, device, tile_block_dim)
    try:
        grads = {arg_values[k]: wp.array(w, dtype=arg_values[k].dtype, device=device) for k, w in out_grads.items()}
        tape.backward(grads=grads)
        wp.synchronize_device(device)
    except Exception as e:
        if device != "cpu":
            raise_if_context_lost(e, getattr(kernel, "key", None))
        raise




def codegen_forward_only(module, device: str) -> str:
    """Warp's generated source for one backend of `module` with its backward disabled, and no
    compile (the benchmark's naive baseline; the pipeline uses `codegen_sources`)."""
    init_warp()
    module.options["enable_backward"] = False
    options = module.resolve_options(_context.warp.config) | {"output_arch": None}
    return _context.ModuleBuilder(module, options, target=device).codegen(device)


def forget_module(module) -> None:
    """Drop a module from Warp's registry of user modules (without unloading anything)."""
    _context.user_modules.pop(module.name, None)


def make_struct(kernel, arg_name: str, fields: dict):
    """An instance of the @wp.struct type of `kernel`'s argument, fields {name: (value, dtype)}; a
    dotted name sets a field of a nested struct (`frame.origin`)."""
    return _fill(kernel.adj.arg_types[arg_name](), fields)


def make_struct_array(kernel, arg_name: str, fields: dict, device: str = "cpu"):
    """A Warp array of the @wp.struct element type of `kernel`'s array argument, fields {name:
    (values, dtype)}: element k holds values[k] of every field (dotted names as `make_struct`)."""
    struct_type = kernel.adj.arg_types[arg_name].dtype
    n = len(next(iter(fields.values()))[0])
    elements = [_fill(struct_type(), {f: (values[k], dtype) for f, (values, dtype) in fields.items()}) for k in range(n)]
    return wp.array(elements, dtype=struct_type, device=device)


def make_hash_grid(points, dims, cell: float, device: str = "cpu") -> int:
    """The id of a `wp.HashGrid` of dims cells built over the vec3 array `points` with cell width
    `cell`. The grid lives as long as `points` (which holds it): a kernel is passed only its id,
    and a grid collected before the launch would leave the id dangling."""
    grid = wp.HashGrid(*dims, device=device)
    grid.build(points, cell)
    points.warp_ir_grids = [*getattr(points, "warp_ir_grids", []), grid]
    return grid.id


class ObjectId(int):
    """A Warp object's id (what a kernel's `wp.uint64` parameter is passed) that holds the object,
    so the object lives as long as the launch arguments that name it."""

    def __new__(cls, obj):
        new = super().__new__(cls, obj.id)
        new.obj = obj
        return new


def make_mesh(points, faces, device: str = "cpu") -> ObjectId:
    """A `wp.Mesh` of the vertices `points` ((V, 3) float32) and the triangles `faces` ((T, 3) int32)."""
    mesh = wp.Mesh(points=wp.array(np.asarray(points, dtype=np.float32), dtype=wp.vec3, device=device),
                   indices=wp.array(np.asarray(faces, dtype=np.int32).ravel(), dtype=wp.int32, device=device))
    return ObjectId(mesh)


def make_bvh(centres, half: float, device: str = "cpu") -> ObjectId:
    """A `wp.Bvh` of one box per point of `centres` ((n, 3)): the cube of half-width `half` around it
    (lowers and uppers formed in float32; the Bvh holds both arrays)."""
    c = np.asarray(centres, dtype=np.float32)
    lowers, uppers = (wp.array(c + np.float32(s * half), dtype=wp.vec3, device=device) for s in (-1, 1))
    return ObjectId(wp.Bvh(lowers, uppers))


def make_texture2d(data, filter: str, address: str, device: str = "cpu"):
    """A one-channel `wp.Texture2D` of the float32 texels `data` ((height, width)) with the named
    filter and address modes (wp.TextureFilterMode / wp.TextureAddressMode), normalized coordinates:
    the launch argument itself (a kernel's `wp.Texture2D` parameter takes the object)."""
    return wp.Texture2D(np.ascontiguousarray(data, dtype=np.float32), filter_mode=getattr(wp.TextureFilterMode, filter),
                        address_mode=getattr(wp.TextureAddressMode, address), normalized_coords=True, device=device)


def make_volume(dense, origin: float, cell: float, device: str = "cpu") -> ObjectId:
    """A `wp.Volume` of the dense float32 voxels `dense`, voxel (0, 0, 0) at `origin` on every axis,
    voxel size `cell`, background 0."""
    volume = wp.Volume.load_from_numpy(np.ascontiguousarray(dense, dtype=np.float32), min_world=(origin,) * 3,
                                       voxel_size=cell, bg_value=0.0, device=device)
    return ObjectId(volume)


def _fill(inst, fields: dict):
    for name, (value, dtype) in fields.items():
        *outer, leaf = name.split(".")
        target = inst
        for part in outer:  # a nested struct's instance, which Warp creates with the outer one
            target = getattr(target, part)
        t = getattr(wp, dtype)
        value = np.asarray(value)
        setattr(target, leaf, t(*[float(x) for x in value.ravel()]) if value.ndim else t(value.item()))
    return inst


def to_device_array(value, dtype: str, device: str = "cpu", requires_grad: bool = False):
    return wp.array(value, dtype=getattr(wp, dtype), device=device, requires_grad=requires_grad)


def unload(module) -> None:
    """Drop a batch module's compiled code so memory stays flat across batches."""
    _batch_sources.pop(module.name, None)
    try:
        module.unload()
    except Exception:  # noqa: BLE001 - best effort; the module is garbage afterwards
        pass
    # Warp keeps every module it has seen in a registry: the batch module, and one per kernel
    # file that defines @wp.func helpers or @wp.struct types (named after the batch). None of
    # them is used again; left there, they and their adjoints pile up chunk after chunk.
    for name in [n for n in _context.user_modules if n == module.name or n.startswith(module.name + "_")]:
        del _context.user_modules[name]
    # and its build products (about 1 MB per 50-kernel batch): the private cache stays the size
    # of one batch however many a process compiles (each batch module has a name of its own,
    # so nothing is ever reused from the cache)
    if _cache_dir:
        for path in glob.glob(os.path.join(_cache_dir, "*", f"wp_{module.name}")) + glob.glob(
                os.path.join(_cache_dir, "*", f"wp_{module.name}_*")):
            shutil.rmtree(path, ignore_errors=True)


def cache_bytes() -> int:
    """Bytes in this process's private kernel cache now."""
    if not _cache_dir:
        return 0
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, names in os.walk(_cache_dir) for f in names)
