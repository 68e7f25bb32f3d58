"""Which CUDA errors leave a process's CUDA context unusable, and the exception that says so.

A sticky error (an illegal address, a device-side fault, ...) poisons the context: every later
CUDA call of the process fails, so the process must exit and a fresh one take over. The
launches in `extractor/warp_adapter.py` turn such an error into `CudaContextLost`, and the
validator and the pipeline catch it by name. The classification reads only the error's text,
so it needs no Warp import.
"""

from __future__ import annotations

import re


class CudaContextLost(RuntimeError):
    """A sticky CUDA error (illegal address, device-side fault, ...): the process's CUDA context
    is unusable from now on, every later CUDA call fails. `kernel` is the kernel whose launch
    (or the synchronize after it) reported it; the process must exit and a fresh one take over."""

    def __init__(self, kernel: str | None, message: str):
        super().__init__(f"cuda_context_lost: kernel {kernel}: {message}")
        self.kernel, self.message = kernel, message


# CUDA errors that leave the context unusable (the driver API's "sticky" errors): illegal
# address 700, device assert 710, hardware stack 714, illegal instruction 715, misaligned
# address 716, invalid address space 717, invalid pc 718, launch failure 719
_STICKY_CODES = ("700", "710", "714", "715", "716", "717", "718", "719")
_STICKY_TEXT = ("illegal memory access", "illegal address", "device-side assert", "hardware stack error",
                "illegal instruction", "misaligned address", "invalid address space", "invalid program counter",
                "unspecified launch failure")


def is_sticky_cuda_error(error: BaseException) -> bool:
    """Whether `error` (from a CUDA launch, synchronize, copy or load) is one that poisons the context."""
    if isinstance(error, CudaContextLost):
        return True
    text = str(error).lower()
    return any(t in text for t in _STICKY_TEXT) or any(
        re.search(rf"(?:cuda )?error {c}\b", text) for c in _STICKY_CODES)


def raise_if_context_lost(error: BaseException, kernel: str | None) -> None:
    """Re-raise a sticky CUDA error as CudaContextLost (naming the kernel); otherwise return."""
    if isinstance(error, CudaContextLost):
        raise error
    if is_sticky_cuda_error(error):
        raise CudaContextLost(kernel, str(error).strip().splitlines()[-1][:300] if str(error).strip() else "") from error
