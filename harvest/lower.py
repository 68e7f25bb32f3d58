"""Standalone kernel sources through Warp: imported, generated, compiled for the CPU, cut.

Several kernels share one Warp module (a small module's CPU compile measured about 0.1 s here, a
tile kernel's many seconds, so batching saves little; batches are of 8): each source stays its
own file, imported as its own Python module, and only its kernel's decorator is pointed at the
batch module (on the same lines, so the `// file.py:line` comments of the generated code are the
file's). Kernels whose names or helpers' names would meet in one module go to different batches,
and a kernel with module-wide options (`module_options`, `grid_stride`, `wp.set_module_options`,
...) or overloads is compiled alone. A batch whose codegen fails is split in halves (codegen is
cheap), one whose CPU compile fails is compiled kernel by kernel, until each failure is one
kernel's, counted with its reason.

The stored code comes from extractor/warp_adapter: `ir.cpp` cut from the source LLVM compiled
(`compile_cpu`), `ir.cuda` from the CUDA source NVRTC compiled (`compile_ptx`; the same codegen
call's source, `codegen_sources`, where NVRTC fails) and `ir.ptx` the forward kernel's entry of
NVRTC's PTX (per arch, as for synthetic pairs). A batch whose NVRTC compile fails is compiled
kernel by kernel too.
"""

from __future__ import annotations

import ast
import dataclasses
import os
import re
import types

from extractor import launches, warp_adapter
from extractor.warp_adapter import _Word, _header, clean, other_kernel, top_level_items  # the cut's, re-exported

from harvest.discover import KERNEL_DECORATORS, dotted, warp_root

BATCH_SIZE = 8
# decorator keywords that are the kernel's own, so it can share a module with others
SHAREABLE_KEYWORDS = ("module", "enable_backward")
MESSAGE_CHARS = 300


@dataclasses.dataclass(frozen=True)
class Job:
    """One standalone kernel source to lower; `key` names it in the results."""

    key: str
    name: str
    source: str
    launch: dict | None = None  # the wheel's own run's launch of the kernel (harvest/launches.py)


def _kernel_def(tree: ast.Module, name: str) -> ast.FunctionDef:
    return next(s for s in tree.body if isinstance(s, ast.FunctionDef) and s.name == name
                and any(dotted(d) in KERNEL_DECORATORS for d in s.decorator_list))


def _kernel_decorator(fn: ast.FunctionDef) -> ast.expr:
    return next(d for d in fn.decorator_list if dotted(d) in KERNEL_DECORATORS)


def _calls_a_factory(stmt: ast.stmt) -> bool:
    calls = [dotted(c).split(".")[0] for c in ast.walk(stmt) if isinstance(c, ast.Call)]
    return any(c not in ("wp", "warp", "np", "numpy", "int", "float", "tuple", "len", "range") for c in calls)


def defined_names(source: str) -> set[str]:
    """The top-level names a source defines, or assigns from a call of its own (a factory that
    may make a helper): two sources sharing one would bring the same C++ name into one module."""
    found = set()
    for s in ast.parse(source).body:
        if isinstance(s, (ast.FunctionDef, ast.ClassDef)):
            found.add(s.name)
        elif isinstance(s, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and _calls_a_factory(s):
            targets = s.targets if isinstance(s, ast.Assign) else [s.target]
            found.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
    return found


def must_be_alone(job: Job) -> bool:
    """Module-wide options or overloads: the kernel gets a module of its own."""
    tree = ast.parse(job.source)
    deco = _kernel_decorator(_kernel_def(tree, job.name))
    if isinstance(deco, ast.Call) and (deco.args or any(k.arg not in SHAREABLE_KEYWORDS for k in deco.keywords)):
        return True
    return any(isinstance(n, ast.Call) and dotted(n).split(".")[-1] in ("set_module_options", "overload")
               for n in ast.walk(tree))


def plan_batches(jobs: list[Job], size: int = BATCH_SIZE) -> list[list[Job]]:
    """Jobs in batches, in order: each joins the first open batch where none of its names is
    taken (kernel, helpers, structs), alone when `must_be_alone`. A function of the job list."""
    batches: list[tuple[list[Job], set[str]]] = []
    for job in jobs:
        if must_be_alone(job):
            batches.append(([job], None))
            continue
        names = defined_names(job.source)
        home = next((b for b in batches if b[1] is not None and len(b[0]) < size and not (b[1] & names)), None)
        if home is None:
            batches.append(([job], set(names)))
        else:
            home[0].append(job)
            home[1].update(names)
    return [b[0] for b in batches]


def pointed_at(source: str, name: str, module: str) -> str:
    """The source with its kernel's decorator naming `module`, on the same lines as before."""
    lines = source.splitlines(keepends=True)
    deco = _kernel_decorator(_kernel_def(ast.parse(source), name))
    head = dotted(deco)
    keywords = [ast.unparse(k) for k in getattr(deco, "keywords", []) if k.arg != "module"]
    span = deco.end_lineno - deco.lineno
    text = f'{head}(module="{module}"' + "".join(f", {k}" for k in keywords) + "\n" * span + ")"
    first, last = deco.lineno - 1, deco.end_lineno - 1
    new = lines[first][: deco.col_offset] + text + lines[last][deco.end_col_offset:]
    return "".join(lines[:first] + [new] + lines[last + 1:])


_counter = 0


def _message(e: BaseException, workdir: str, module: str) -> str:
    """An error's first line, with what differs from run to run taken out."""
    text = (str(e).strip().splitlines() or [""])[0]
    text = text.replace(workdir.rstrip("/") + "/", "").replace(os.path.dirname(warp_root()) + "/", "")
    text = text.replace(module, "<module>")
    return re.sub(r"0x[0-9a-fA-F]{6,}", "0x?", text)[:MESSAGE_CHARS]


def _failure(stage: str, e: BaseException, workdir: str, module: str) -> dict:
    return {"status": "failed", "reason": f"{stage}:{type(e).__name__}", "message": _message(e, workdir, module)}


def _import_all(jobs: list[Job], workdir: str, out: dict):
    """A fresh batch module with each job's kernel imported into it; an import that fails is
    recorded in `out`. Returns (module name, module, {job key: (job, kernel)})."""
    global _counter
    warp_adapter.init_warp()
    import warp as wp

    _counter += 1
    mod_name = f"harvest_{os.getpid()}_{_counter}"
    module = wp.get_module(mod_name)
    module.options["strip_hash"] = True
    module.options["enable_mathdx_gemm"] = False
    bdir = os.path.join(workdir, mod_name)
    os.makedirs(bdir, exist_ok=True)
    kernels = {}
    alone = len(jobs) == 1 and must_be_alone(jobs[0])
    for job in jobs:
        try:
            # a kernel alone keeps its decorator: its module, with the options it sets, is the batch
            source = job.source if alone else pointed_at(job.source, job.name, mod_name)
            pymod = warp_adapter.import_source(source, os.path.join(bdir, f"{job.name}.py"), f"{mod_name}_{job.name}")
            kernel = getattr(pymod, job.name)
        except Exception as e:  # noqa: BLE001 - the wheel's own code: anything it raises is its reason
            out[job.key] = {"error": _failure("import", e, bdir, mod_name)}
            continue
        if alone:
            module = kernel.module
            # a generic kernel's overloads share its key: only the hash tells their C++ names apart
            module.options["strip_hash"] = not kernel.is_generic
            module.options["enable_mathdx_gemm"] = False
        kernels[job.key] = (job, kernel)
    return mod_name, module, kernels, bdir


def _pin_helper_names(kernels: dict) -> None:
    """Name each `@wp.func` the kernels call `<key>_<i>`, i counting helpers of one key in call
    order. Warp numbers them with a process-wide counter (overloads a generic helper gets while
    the kernels are built included, hence after a first codegen), so a helper's C++ name would
    depend on what this worker compiled before."""
    funcs: dict = {}
    todo = [k.adj for k in kernels.values()]
    while todo:
        for f in getattr(todo.pop(0), "called_user_functions", ()):
            if f not in funcs:
                funcs[f] = None
                todo.append(f.adj)
    count: dict[str, int] = {}
    for f in funcs:
        f.native_func = f"{f.key}_{count.setdefault(f.key, 0)}"
        count[f.key] += 1


def _targets(kernels: dict) -> dict:
    """{result key: Warp kernel}: a generic kernel's overloads as `key#signature`."""
    out = {}
    for key, (_, kernel) in kernels.items():
        if getattr(kernel, "is_generic", False):
            out.update({f"{key}#{sig}": ov for sig, ov in kernel.overloads.items()})
        else:
            out[key] = kernel
    return out


_CONFIG: dict = {}


def _reset_config() -> None:
    """Warp's global settings (`wp.config`) back to what they were before this process imported any
    of the wheel's sources: examples and tests set them when imported (`enable_backward = False`,
    `mode = "debug"`, `verify_fp`, `kernel_cache_dir`, ...), and without this a setting left by
    one batch would shape every later batch of the same worker, so the records would depend on
    how the batches were shared among the workers (measured: 8 of 280 records of `--limit 400`
    lost their backward with one worker and not with two)."""
    import warp as wp

    warp_adapter.init_warp()  # the settings it makes (the kernel cache, the log level) are part of the snapshot
    if not _CONFIG:
        _CONFIG.update({k: v for k, v in vars(wp.config).items()
                        if not k.startswith("_") and not isinstance(v, (types.ModuleType, types.FunctionType, type))})
    for k, v in _CONFIG.items():
        setattr(wp.config, k, v)


def _halves(jobs: list[Job], workdir: str, out: dict) -> None:
    mid = len(jobs) // 2
    lower(jobs[:mid], workdir, out)
    lower(jobs[mid:], workdir, out)


def replayed(kernel, launch: dict) -> dict:
    """The `replay_cpu` verdict: `kernel` launched on the CPU with the recorded arguments leaves
    every array argument as the wheel's own run left it (byte for byte)."""
    try:
        after = launches.replay(kernel, launch)
    except Exception as e:  # noqa: BLE001 - a launch that does not fit, or Warp's error, is the reason
        text = (str(e).strip().splitlines() or [""])[0]
        return {"status": "failed", "reason": f"replay:{type(e).__name__}", "message": text[:MESSAGE_CHARS]}
    differ = [a["name"] for a, got in zip(launch["args"], after)
              if a["kind"] == "array" and got != (a["out"] if a["out"] is not None else a["in"])]
    if differ:
        return {"status": "failed", "reason": "outputs_differ",
                "message": f"array arguments that differ from the recorded run: {', '.join(differ)}"[:MESSAGE_CHARS]}
    return {"status": "passed"}


def _replay_all(kernels: dict, targets: dict, out: dict) -> None:
    """Each compiled concrete kernel with a recorded launch gets its `replay_cpu` verdict."""
    for key, (job, _) in kernels.items():
        if job.launch is not None and key in targets and key in out:
            out[key]["replay_cpu"] = replayed(targets[key], job.launch)


def lower(jobs: list[Job], workdir: str, out: dict | None = None) -> dict:
    """{result key: {"ir": ..., "cpu": verdict, "cuda": verdict}} or {"error": verdict} for each
    job (a generic kernel gives one result per overload it declares)."""
    out = {} if out is None else out
    _reset_config()
    mod_name, module, kernels, bdir = _import_all(jobs, workdir, out)
    alive = [kernels[j.key][0] for j in jobs if j.key in kernels]
    targets = _targets(kernels)
    try:
        if not targets:
            raise RuntimeError("the kernel declares no overload Warp can compile")
        warp_adapter.codegen_sources(module, targets)  # builds every helper the kernels call
        _pin_helper_names(targets)
        cpp_gen, cu = warp_adapter.codegen_sources(module, targets)
    except Exception as e:  # noqa: BLE001
        _unload(module, mod_name)
        if len(alive) > 1:
            return _halves(alive, workdir, out) or out
        if alive:
            out[alive[0].key] = {"error": _failure("codegen", e, bdir, mod_name)}
        return out
    try:
        cpp, cpu = warp_adapter.compile_cpu(module), {"status": "passed"}
    except Exception as e:  # noqa: BLE001
        _unload(module, mod_name)
        if len(alive) > 1:  # one by one: halving would compile every kernel again at each level
            for job in alive:
                lower([job], workdir, out)
            return out
        cpp, cpu = cpp_gen, _failure("cpu_compile", e, bdir, mod_name)
    try:
        ptx, cu_nvrtc = warp_adapter.compile_ptx(module, targets, bdir, strip_hash=None)
        cu, cuda = cu_nvrtc, {"status": "passed"}
    except Exception as e:  # noqa: BLE001
        if len(alive) > 1:  # one by one, as for the CPU compile
            _unload(module, mod_name)
            for job in alive:
                lower([job], workdir, out)
            return out
        ptx, cuda = None, _failure("cuda_compile", e, bdir, mod_name)
    try:
        ir = _cut(targets, cpp, cu, bdir)
        for key in targets:
            if ptx is not None:
                ir[key]["ptx"] = ptx[key]
            out[key] = {"ir": ir[key], "cpu": cpu, "cuda": cuda}
        if cpu["status"] == "passed":
            _replay_all(kernels, targets, out)
    except Exception as e:  # noqa: BLE001
        if len(alive) > 1:
            _unload(module, mod_name)
            return _halves(alive, workdir, out) or out
        for key in targets:
            out[key] = {"error": _failure("cut", e, bdir, mod_name)}
    _unload(module, mod_name)
    return out


def _unload(module, mod_name: str) -> None:
    """The batch module and, for a kernel alone in a module of its own, the file's modules."""
    warp_adapter.unload(module)
    if module.name != mod_name:
        import warp as wp

        warp_adapter.unload(wp.get_module(mod_name))


def _cut(targets: dict, cpp, cu, workdir: str) -> dict:
    """extractor's `cut_ir` for kernels Warp generated a backward for; the forward half of the
    same cut for the others (`enable_backward=False`), whose `backward` is None."""
    both = {k: v for k, v in targets.items() if f"{v.get_mangled_name()}_cpu_kernel_backward" in cpp.source}
    ir = warp_adapter.cut_ir(both, cpp, cu, workdir) if both else {}
    rest = {k: v for k, v in targets.items() if k not in both}
    if rest:
        ir.update(cut_forward_only(rest, cpp, cu, workdir))
    # helpers from the wheel's own modules carry `// <site-packages>/warp/...py:line` comments:
    # the installation's folder goes, as the batch's working directory does, leaving the path
    # inside the wheel
    site = os.path.dirname(warp_root()) + "/"
    return {k: {t: {part: text.replace(site, "") if text else text for part, text in parts.items()}
                for t, parts in v.items()} for k, v in ir.items()}


def cut_forward_only(kernels: dict, cpp, cu, workdir: str) -> dict:
    """Per kernel {"cpp"|"cuda": {"forward": text, "backward": None}}: what extractor's cut
    keeps under `forward` (structs, helpers, argument struct, forward kernel), for kernels
    without a backward (extractor's cut requires one)."""
    prefix = workdir.rstrip("/") + "/"
    out: dict = {k: {} for k in kernels}
    for target, compiled in (("cpp", cpp), ("cuda", cu)):
        items = [(i, _header(i)) for i in top_level_items(compiled.source)]
        for key, kernel in kernels.items():
            name, helpers, structs = warp_adapter._kernel_names(kernel)
            entry = _Word(f"{name}_{compiled.backend}_kernel_forward", "call")
            pats = [_Word(x) for x in structs] + [_Word(h, "call") for h in helpers]
            pats += [_Word(f"wp_args_{name}", "struct"), entry]
            adjoints = [_Word("adj_" + h, "call") for h in helpers]
            fwd = [i for i, head in items if any(p.search(head) for p in pats)
                   and not any(p.search(head) for p in adjoints) and not other_kernel(head, name, compiled.backend)]
            if not any(entry.search(head) for _, head in items):
                raise RuntimeError(f"{name}: no {compiled.backend} forward kernel in the compiled source")
            out[key][target] = {"forward": clean("\n\n".join(fwd), prefix), "backward": None}
    return out
