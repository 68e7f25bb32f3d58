"""PTX text: one kernel's PTX out of the module PTX NVRTC wrote for a batch.

The module PTX is split into its functions (`_ptx_functions`); a kernel's PTX is its entry with
every function it calls (`_ptx_of`), renumbered (`_normalize_ptx`) so it is the same whether the
kernel was compiled alone or in any batch. Renumbering cannot undo what NVVM does to a function
several kernels call (it specializes the function for all its callers): `batch_dependent` names
the kernels whose PTX a module of their own must give. Text only, with no Warp import: NVRTC is run, and
its output read, by `extractor/warp_adapter.py` (`compile_ptx`).
"""

from __future__ import annotations

import re

_PTX_FUNC = re.compile(r"^(?:\.visible |\.weak |\.extern )*\.(?:entry|func)\s+(?:\([^)]*\)\s*)?([\w$]+)\(", re.M)
_PTX_CALL = re.compile(r"\bcall(?:\.uni)?\s+(?:\([^)]*\),\s*)?([\w$]+)")


def _ptx_functions(text: str) -> dict[str, str]:
    """Top-level PTX functions by name, each from its header line to its closing brace."""
    out = {}
    for m in _PTX_FUNC.finditer(text):
        end = text.index("\n}\n", m.start()) + 3
        out[m.group(1)] = text[m.start():end]
    return out


_INTERNAL = re.compile(r"(_ZN|_ZZN)(\d+)_INTERNAL_")


def _internal_names(text: str) -> str:
    """A function of internal linkage (a non-inlined helper) has a mangled name whose first
    component, `_INTERNAL_<hash>_<length>_<module file>_cu_<hash>`, names the batch module's file
    (which holds the worker's pid): that component becomes `_INTERNAL`, length prefix and all
    (also in a function's local statics, `_ZZN...`)."""
    out, pos = [], 0
    for m in _INTERNAL.finditer(text):
        if m.start() < pos:
            continue
        out.append(text[pos:m.start()] + m.group(1) + "9_INTERNAL")
        pos = m.start() + len(m.group(1)) + len(m.group(2)) + int(m.group(2))
    return "".join(out) + text[pos:]


def _normalize_ptx(text: str) -> str:
    # NVVM numbers branch labels and local depots by the function's position in the module,
    # and call sequences (`// callseq 4, 0`) module-wide; renumber them so a kernel's PTX is
    # the same alone as in any batch. Internal helpers' names lose the module file's name.
    # (Strings are defined outside the functions cut, so only their uses are renamed.)
    text = _internal_names(text)
    # NVVM moves a module-level .shared variable into the one function that uses it ("demoted"):
    # whether it is demoted depends on the module's other functions, so the declaration goes
    # (NVVM leaves an empty line where it is not demoted, as it leaves after them when it is)
    text = re.sub(r"(\n\t// demoted variable\n\t\.shared [^\n]*;)+", "\n", text)
    text = re.sub(r"\$L__BB\d+_", "$L__BB0_", text)
    text = re.sub(r"__local_depot\d+", "__local_depot0", text)
    # string constants (`$str`, `$str$1`, ...) are numbered module-wide, in the order NVVM meets
    # them: renumbered in the order the kernel's PTX names them
    strings: dict[str, int] = {}
    text = re.sub(r"\$str(?:\$\d+)?(?![\w$])", lambda m: f"$str${strings.setdefault(m.group(0), len(strings))}", text)
    order: dict[str, int] = {}
    return re.sub(r"// callseq (\d+)", lambda m: f"// callseq {order.setdefault(m.group(1), len(order))}", text)


def _reached(funcs: dict[str, str], entry: str) -> list[str]:
    """`entry` and every function of the module it calls, directly or not, in the order met."""
    seen: dict[str, None] = {}
    todo = [entry]
    while todo:
        name = todo.pop(0)
        if name in seen or name not in funcs:
            continue
        seen[name] = None
        todo.extend(_PTX_CALL.findall(funcs[name]))
    return list(seen)


def _ptx_of(funcs: dict[str, str], entry: str) -> str:
    # callees first, entry last: the order a reader (and ptxas) expects
    return _normalize_ptx("\n".join(funcs[name] for name in reversed(_reached(funcs, entry))))


_ENTRY = re.compile(r"(?:\.visible |\.weak )*\.entry\b")


def batch_dependent(funcs: dict[str, str], kernels: dict[str, str]) -> set[str]:
    """The kernels (name -> mangled name) whose forward entry reaches a non-entry function that
    an entry of another kernel of the module reaches too (an entry no kernel of `kernels` owns
    counts as another). NVVM compiles such a function once for the whole module and specializes
    it for all its callers (libdevice's `__internal_accurate_pow` loses a parameter every caller
    passes the same constant for, measured), so its text, and the kernel's PTX, depends on what
    else the module holds. A kernel's own backward entry is no other: it is in a module of the
    kernel alone too."""
    owner = {f"{m}_cuda_kernel_{part}": name for name, m in kernels.items() for part in ("forward", "backward")}
    callers: dict[str, set] = {}
    for entry, text in funcs.items():
        if _ENTRY.match(text):
            for f in _reached(funcs, entry)[1:]:
                if not _ENTRY.match(funcs[f]):
                    callers.setdefault(f, set()).add(owner.get(entry, entry))
    return {name for name, m in kernels.items()
            if any(callers.get(f, set()) - {name} for f in _reached(funcs, f"{m}_cuda_kernel_forward")[1:])}
