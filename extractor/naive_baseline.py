"""The naive method, kept only as the benchmark's baseline (the seed's way of making pairs).

One temporary Python module per kernel: write it, import it, build that kernel's Warp module
with backward disabled, generate one backend's code for the whole module, and cut the forward
function out with a regular expression. One process, nothing compiled or executed. It does
strictly less than `//generator:cpu --no-validate` (one backend, no backward, no helpers or
structs cut per kernel, no record, no schema check), which is what makes it a floor.
"""

from __future__ import annotations

import os
import re
import tempfile

from extractor import warp_adapter


def forward_regex(kernel_name: str, device: str) -> re.Pattern:
    if device == "cpu":
        head = rf"void {re.escape(kernel_name)}_[0-9a-f]*_?cpu_kernel_forward\("
    else:
        head = rf"{re.escape(kernel_name)}_[0-9a-f]*_?cuda_kernel_forward\("
    return re.compile(head + r".*?\n}\n", re.S)


def naive_pairs(sources: dict[str, str], device: str = "cpu") -> dict[str, str]:
    """{kernel name: forward function text} by the naive method; raises if a cut fails."""
    warp_adapter.init_warp()
    out = {}
    with tempfile.TemporaryDirectory(prefix="naive-") as tmp:
        for n, (name, src) in enumerate(sources.items()):
            path = os.path.join(tmp, f"naive_{n}_{name}.py")
            kernel = getattr(warp_adapter.import_source(src, path, f"naive_{os.getpid()}_{n}_{name}"), name)
            module = kernel.module
            code = warp_adapter.codegen_forward_only(module, device)
            m = forward_regex(name, device).search(code)
            if m is None:
                raise RuntimeError(f"naive: no forward function for {name} in the generated {device} code")
            out[name] = m.group(0)
            warp_adapter.forget_module(module)
    return out
