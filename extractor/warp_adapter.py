"""The one adapter over Warp internals (`warp._src`). Nothing else in the project imports them.

Everything here that touches `warp._src` is listed in `INTERNAL_SYMBOLS`; the contract test
(`extractor/warp_adapter_test.py`) checks each still exists, so a Warp upgrade that moves one
fails loudly with the symbol's name instead of producing wrong data.
"""

from __future__ import annotations

import importlib
import os
import tempfile

import warp as wp
from warp._src import codegen as _codegen
from warp._src import context as _context

INTERNAL_SYMBOLS = (
    ("warp._src.context", "ModuleBuilder"),
    ("warp._src.context", "runtime"),
    ("warp._src.codegen", "codegen_kernel"),
    ("warp._src.codegen", "codegen_func"),
    ("warp._src.codegen", "codegen_struct"),
    ("warp._src.codegen", "Struct"),
    ("warp._src.codegen", "cuda_kernel_backward_name"),
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


def toolchain() -> dict:
    """The compilers and options every record's IR was produced with."""
    init_warp()
    rt = _context.runtime
    tk = getattr(rt, "toolkit_version", None)
    return {
        "warp_lang": wp.__version__,
        "cuda_toolkit": ".".join(map(str, tk)) if tk else None,
        "nvrtc": ".".join(map(str, tk)) if tk else None,
        "llvm": "warp-clang (bundled)",
        "mode": wp.config.mode,
        "optimization_level": wp.config.optimization_level if wp.config.optimization_level is not None else 3,
        "codegen_options": {"enable_backward": True, "strip_hash": True, "block_dim": 256, "fast_math": False},
    }


def cuda_available() -> bool:
    init_warp()
    return wp.is_cuda_available()


_batch_counter = 0


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
    kernels = {}
    for name, src in sources.items():
        batch_src = src.replace("\n@wp.kernel\n", f'\n@wp.kernel(module="{mod_name}")\n', 1)
        path = os.path.join(workdir, f"{name}.py")
        with open(path, "w") as f:
            f.write(batch_src)
        spec = importlib.util.spec_from_file_location(f"{mod_name}_{name}", path)
        pymod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(pymod)
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
    """
    init_warp()
    options = dict(module.options)
    out: dict[str, dict] = {name: {} for name in kernels}
    prefix = workdir.rstrip("/") + "/"
    for device in ("cpu", "cuda"):
        builder = _context.ModuleBuilder(module, options, target=device)
        for name, kernel in kernels.items():
            funcs: dict = {}
            _called_functions(kernel.adj, funcs)
            ordered = [f for f in builder.functions if f in funcs]
            structs = [s for s in builder.structs if _uses_struct(kernel, ordered, s)]
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


def _uses_struct(kernel, funcs, struct) -> bool:
    for adj in [kernel.adj] + [f.adj for f in funcs]:
        for var in (*adj.args, *adj.variables):
            t = _codegen.strip_reference(var.type)
            if t is struct or getattr(t, "dtype", None) is struct:
                return True
    return False


def _clean(text: str, prefix: str) -> str:
    text = text.replace(prefix, "")
    lines = [ln.rstrip() for ln in text.strip("\n").split("\n")]
    out, blank = [], 0
    for ln in lines:  # collapse runs of blank lines: layout noise, not code
        blank = blank + 1 if not ln else 0
        if blank <= 1:
            out.append(ln)
    return "\n".join(out) + "\n"


def compile_cpu(module) -> None:
    """Compile the whole module with Warp's LLVM/Clang CPU backend (raises on failure)."""
    init_warp()
    module.load("cpu")


def launch_cpu(kernel, dim, arg_values: list) -> None:
    wp.launch(kernel, dim=dim, inputs=arg_values, device="cpu")
    wp.synchronize_device("cpu")


def to_device_array(value, dtype: str, device: str = "cpu"):
    return wp.array(value, dtype=getattr(wp, dtype), device=device)


def unload(module) -> None:
    """Drop a batch module's compiled code so memory stays flat across batches."""
    try:
        module.unload()
    except Exception:  # noqa: BLE001 - best effort; the module is garbage afterwards
        pass
