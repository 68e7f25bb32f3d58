"""The one adapter over Warp internals (`warp._src`). Nothing else in the project imports them.

Everything here that touches `warp._src` is listed in `INTERNAL_SYMBOLS`; the contract test
(`extractor/warp_adapter_test.py`) checks each still exists, so a Warp upgrade that moves one
fails loudly with the symbol's name instead of producing wrong data.
"""

from __future__ import annotations

import ctypes
import glob
import importlib
import os
import re
import tempfile

import warp as wp
from warp._src import codegen as _codegen
from warp._src import context as _context

INTERNAL_SYMBOLS = (
    ("warp._src.context", "ModuleBuilder"),
    ("warp._src.context", "runtime"),
    ("warp._src.context", "user_modules"),
    ("warp._src.codegen", "codegen_kernel"),
    ("warp._src.codegen", "codegen_func"),
    ("warp._src.codegen", "codegen_struct"),
    ("warp._src.codegen", "Struct"),
    ("warp._src.codegen", "cuda_kernel_backward_name"),
    ("warp._src.codegen", "strip_reference"),
)

_initialized = False


def init_warp() -> None:
    """Initialise Warp once per process, with a writable kernel cache.

    Under `bazel test` HOME is unset and /root is read-only, so the cache goes under
    $TEST_TMPDIR; elsewhere $WARP_CACHE_PATH or Warp's default is used.
    """
    global _initialized
    if _initialized:
        return
    wp.config.quiet = True
    wp.config.log_level = wp.LOG_WARNING
    cache = os.environ.get("WARP_CACHE_PATH")
    if not cache and os.environ.get("TEST_TMPDIR"):
        cache = os.path.join(os.environ["TEST_TMPDIR"], "warp-cache")
    if not cache and not os.access(os.path.expanduser("~"), os.W_OK):
        cache = tempfile.mkdtemp(prefix="warp-cache-")
    if cache:
        wp.config.kernel_cache_dir = cache
    wp.init()
    _initialized = True


def initialized() -> bool:
    return _initialized


DEFAULT_ARCHS = ("sm_90",)


def nvrtc_version() -> str | None:
    init_warp()
    core = _context.runtime.core
    if not hasattr(core, "wp_nvrtc_version"):
        return None
    v = int(core.wp_nvrtc_version())  # 13040 -> "13.4"
    return f"{v // 1000}.{(v % 1000) // 10}"


def nvrtc_archs() -> list[str]:
    """The sm_XX targets the bundled NVRTC can compile for."""
    init_warp()
    core = _context.runtime.core
    n = int(core.wp_nvrtc_supported_arch_count())
    buf = (ctypes.c_int * n)()
    core.wp_nvrtc_supported_archs(buf)
    return [f"sm_{a}" for a in buf]


def toolchain(archs=DEFAULT_ARCHS) -> dict:
    """The compilers and options every record's IR was produced with."""
    init_warp()
    rt = _context.runtime
    tk = getattr(rt, "toolkit_version", None)
    level = wp.config.optimization_level
    return {
        "warp_lang": wp.__version__,
        "cuda_toolkit": ".".join(map(str, tk)) if tk else None,
        "nvrtc": nvrtc_version(),
        "ptx_archs": list(archs),
        "llvm": "warp-clang (bundled)",
        "mode": wp.config.mode,
        # NVRTC's level (the stored PTX); Warp compiles the CPU module at its own default, O2
        "optimization_level": 3 if level is None else level,
        "cpu_optimization_level": 2 if level is None else level,
        "codegen_options": {"enable_backward": True, "strip_hash": True, "block_dim": 256, "fast_math": False,
                            "enable_mathdx_gemm": False, "cpu_block_dim": 1},
    }


def cuda_available() -> bool:
    init_warp()
    return wp.is_cuda_available()


_batch_counter = 0


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
    mod_name = f"warp_ir_batch_{os.getpid()}_{_batch_counter}"
    module = wp.get_module(mod_name)
    module.options["strip_hash"] = True
    module.options["enable_backward"] = True
    # cuBLASDx LTO for tile_matmul costs ~14 s per kernel in NVRTC; Warp's built-in tile GEMM
    # is what the IR records instead (the fingerprint says so).
    module.options["enable_mathdx_gemm"] = False
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


def _split_kernel(text: str, kernel, device: str) -> tuple[str, str]:
    name = kernel.get_mangled_name()
    marker = _codegen.cuda_kernel_backward_name(kernel) if device == "cuda" else f"{name}_cpu_kernel_backward("
    at = text.index(marker)
    at = text.rfind("\n\n", 0, at)
    return text[:at].strip("\n") + "\n", text[at:].strip("\n") + "\n"


def extract_ir(module, kernels: dict[str, object], workdir: str) -> dict[str, dict]:
    """Per kernel: {"cpp": {"forward", "backward"}, "cuda": {...}} as Warp generates them.

    Each kernel's text holds only its own structs, @wp.func helpers (forward code in
    "forward", adjoints in "backward") and its forward/backward kernel functions: no module
    header, no entry-point thunks, no hash suffixes, no absolute paths.

    The adjoints are built once (Warp's build is target-neutral for these kernels; the one
    target-dependent path, cuBLASDx tile GEMM, is disabled) and rendered for both devices.
    """
    init_warp()
    # output_arch=None: the portable text, without firing tile LTO (as Warp's own hashing does)
    options = dict(module.options) | {"output_arch": None}
    out: dict[str, dict] = {name: {} for name in kernels}
    prefix = workdir.rstrip("/") + "/"
    builder = _context.ModuleBuilder(module, options, target="cuda")
    func_order = {f: i for i, f in enumerate(builder.functions)}
    struct_order = {s: i for i, s in enumerate(builder.structs)}
    for name, kernel in kernels.items():
        funcs: dict = {}
        _called_functions(kernel.adj, funcs)
        ordered = sorted((f for f in funcs if f in func_order), key=func_order.__getitem__)
        structs = sorted(_structs_used(kernel, ordered) & struct_order.keys(), key=struct_order.__getitem__)
        for device in ("cpu", "cuda"):
            fwd = "".join(_codegen.codegen_struct(s, device=device) for s in structs)
            bwd = ""
            for f in ordered:
                common = dict(c_func_name=f.native_func, device=device, options=options, inline_hint=f.inline_hint)
                fwd += _codegen.codegen_func(f.adj, forward_only=True, **common)
                bwd += _codegen.codegen_func(f.adj, reverse_only=True, **common)
            k_fwd, k_bwd = _split_kernel(_codegen.codegen_kernel(kernel, device, options), kernel, device)
            target = "cpp" if device == "cpu" else "cuda"
            out[name][target] = {
                "forward": _clean(fwd + k_fwd, prefix),
                "backward": _clean(bwd + k_bwd, prefix),
            }
    return out


def _structs_used(kernel, funcs) -> set:
    """The @wp.struct types a kernel or its helpers hold as a value or an array element."""
    found = set()
    for adj in [kernel.adj] + [f.adj for f in funcs]:
        for var in (*adj.args, *adj.variables):
            t = _codegen.strip_reference(var.type)
            for cand in (t, getattr(t, "dtype", None)):
                if isinstance(cand, _codegen.Struct):
                    found.add(cand)
    return found


def _clean(text: str, prefix: str) -> str:
    text = text.replace(prefix, "")
    lines = [ln.rstrip() for ln in text.strip("\n").split("\n")]
    out, blank = [], 0
    for ln in lines:  # collapse runs of blank lines: layout noise, not code
        blank = blank + 1 if not ln else 0
        if blank <= 1:
            out.append(ln)
    return "\n".join(out) + "\n"


_PTX_FUNC = re.compile(r"^(?:\.visible |\.weak |\.extern )*\.(?:entry|func)\s+(?:\([^)]*\)\s*)?([\w$]+)\(", re.M)
_PTX_CALL = re.compile(r"\bcall(?:\.uni)?\s+(?:\([^)]*\),\s*)?([\w$]+)")


def _ptx_functions(text: str) -> dict[str, str]:
    """Top-level PTX functions by name, each from its header line to its closing brace."""
    out = {}
    for m in _PTX_FUNC.finditer(text):
        end = text.index("\n}\n", m.start()) + 3
        out[m.group(1)] = text[m.start():end]
    return out


def _normalize_ptx(text: str) -> str:
    # NVVM numbers branch labels and local depots by the function's position in the module,
    # and call sequences (`// callseq 4, 0`) module-wide; renumber them so a kernel's PTX is
    # the same alone as in any batch.
    text = re.sub(r"\$L__BB\d+_", "$L__BB0_", text)
    text = re.sub(r"__local_depot\d+", "__local_depot0", text)
    order: dict[str, int] = {}
    return re.sub(r"// callseq (\d+)", lambda m: f"// callseq {order.setdefault(m.group(1), len(order))}", text)


def _ptx_of(funcs: dict[str, str], entry: str) -> str:
    parts, seen, todo = [], set(), [entry]
    while todo:
        name = todo.pop(0)
        if name in seen or name not in funcs:
            continue
        seen.add(name)
        parts.append(funcs[name])
        todo.extend(_PTX_CALL.findall(funcs[name]))
    # callees first, entry last: the order a reader (and ptxas) expects
    return _normalize_ptx("\n".join(reversed(parts)))


def compile_ptx(module, kernels: dict[str, object], workdir: str, archs=DEFAULT_ARCHS) -> dict[str, dict]:
    """NVRTC-compile the whole module to PTX per arch (no GPU needed); cut out each kernel.

    Returns {kernel name: {arch: {"forward": ptx}}}; raises on a compile error. The whole
    module, adjoints included, goes through NVRTC (so the backward CUDA is proven to compile),
    but only the forward entry is kept: NVVM's backward PTX of tile kernels is not
    reproducible (it varies run to run for tile_matmul and with the batch for tile
    reductions), and a record holds only what a re-validation can reproduce byte for byte.
    """
    init_warp()
    out: dict[str, dict] = {name: {} for name in kernels}
    for arch in archs:
        num = int(arch.removeprefix("sm_"))
        mdir = os.path.join(workdir, f"aot_{arch}")
        wp.compile_aot_module(module, arch=num, use_ptx=True, module_dir=mdir, strip_hash=True)
        paths = glob.glob(os.path.join(mdir, f"*.sm{num}.ptx"))
        if len(paths) != 1:
            raise RuntimeError(f"NVRTC wrote {len(paths)} PTX files for {arch}")
        with open(paths[0]) as f:
            funcs = _ptx_functions(f.read())
        for name, kernel in kernels.items():
            mangled = kernel.get_mangled_name()
            out[name][arch] = {"forward": _ptx_of(funcs, f"{mangled}_cuda_kernel_forward")}
            if not out[name][arch]["forward"]:
                raise RuntimeError(f"no PTX entry for {mangled} in {arch}")
    return out


def compile_cpu(module) -> None:
    """Compile the whole module with Warp's LLVM/Clang CPU backend (raises on failure)."""
    init_warp()
    module.load("cpu", block_dim=1)  # what every CPU launch resolves block_dim to


def compile_cuda_device(module) -> None:
    """Compile and load the module for the current CUDA device (needs a GPU)."""
    init_warp()
    module.load(wp.get_device("cuda:0"))


def launch(kernel, dim, arg_values: list, device: str = "cpu", tile_block_dim: int | None = None) -> None:
    """wp.launch, or wp.launch_tiled (dim counts tiles) when tile_block_dim is given."""
    if tile_block_dim:
        wp.launch_tiled(kernel, dim=dim, inputs=arg_values, block_dim=tile_block_dim, device=device)
    else:
        wp.launch(kernel, dim=dim, inputs=arg_values, device=device)
    wp.synchronize_device(device)


def launch_cpu(kernel, dim, arg_values: list) -> None:
    launch(kernel, dim, arg_values, "cpu")


def make_struct(kernel, arg_name: str, fields: dict):
    """An instance of the @wp.struct type of `kernel`'s argument, fields {name: (value, dtype)}."""
    struct_type = kernel.adj.arg_types[arg_name]
    inst = struct_type()
    for name, (value, dtype) in fields.items():
        t = getattr(wp, dtype)
        setattr(inst, name, t(*[float(x) for x in value.ravel()]) if hasattr(value, "ravel") and value.ndim else t(value))
    return inst


def to_device_array(value, dtype: str, device: str = "cpu"):
    return wp.array(value, dtype=getattr(wp, dtype), device=device)


def unload(module) -> None:
    """Drop a batch module's compiled code so memory stays flat across batches."""
    try:
        module.unload()
    except Exception:  # noqa: BLE001 - best effort; the module is garbage afterwards
        pass
    # Warp keeps every module it has seen in a registry: the batch module, and one per kernel
    # file that defines @wp.func helpers or @wp.struct types (named after the batch). None of
    # them is used again; left there, they and their adjoints pile up chunk after chunk.
    for name in [n for n in _context.user_modules if n == module.name or n.startswith(module.name + "_")]:
        del _context.user_modules[name]
