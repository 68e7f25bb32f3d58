"""How close is close enough: Warp's outputs against the float64 oracle (`compare`, per-dtype
TOLERANCES), and a GPU run against the CPU run (`compare_gpu_cpu`, bounded by `gpu_tolerance` of
the kernel's `accumulation_length`). Split from `checks`, which re-exports every name here;
Warp-free (NumPy and the spec only).
"""

from __future__ import annotations

import numpy as np

from generator.inputs import NP_DTYPES
from generator.spec import TILE_BLOCK_DIM, KernelSpec, is_float, scalar_dtype

# rtol/atol per dtype for Warp's result against the float64 oracle.
TOLERANCES = {"float16": (1e-2, 1e-2), "float32": (1e-3, 1e-4), "float64": (1e-9, 1e-12)}


def compare(name: str, actual: np.ndarray, expected: np.ndarray, dtype: str) -> str | None:
    """None when `actual` matches the oracle, else the reason."""
    if actual.shape != expected.shape:
        return f"output {name}: shape {actual.shape} != oracle {expected.shape}"
    if actual.dtype != np.dtype(NP_DTYPES[dtype]):
        return f"output {name}: dtype {actual.dtype} != {dtype}"
    if is_float(dtype):
        if not np.all(np.isfinite(expected)):
            return f"output {name}: oracle produced NaN/Inf (generator bug)"
        if not np.all(np.isfinite(actual)):
            return f"output {name}: NaN/Inf in output"
        rtol, atol = TOLERANCES[scalar_dtype(dtype)]
        a64 = actual.astype(np.float64)
        bad = ~np.isclose(a64, expected, rtol=rtol, atol=atol)
        if bad.any():
            k = int(np.argmax(bad))
            return f"output {name}: mismatch at flat index {k}: {a64.ravel()[k]!r} vs oracle {expected.ravel()[k]!r}"
    elif not np.array_equal(actual.astype(np.int64), expected):
        return f"output {name}: integer mismatch"
    # vacuous: the kernel wrote one constant where the oracle's values differ, even within
    # tolerance; a variation the output dtype cannot represent (tanh saturating at 1.0 in
    # float32 while float64 still moves in the 20th digit) does not count
    if expected.size > 1 and np.ptp(actual) == 0:
        eps = float(np.finfo(NP_DTYPES[scalar_dtype(dtype)]).eps) if is_float(dtype) else 0.0
        if np.ptp(expected) > 4 * eps * float(np.max(np.abs(expected))):
            return f"output {name}: vacuous (constant output while the oracle varies)"
    return None


# the number of operations a kernel's own thread does whose rounding FMA contraction may change
# (a multiply-add fused on one backend, not on the other): a generous constant per output element
FMA_OPS = 16


def accumulation_length(spec: KernelSpec) -> int:
    """An upper bound on how many floating-point terms can be combined into one output element in
    an order (or with a rounding) that differs between the CPU and the GPU: every thread can add
    into one element with an atomic (launch size), and a tile reduction, scan or matmul, or a
    loop, combines at most all elements of one array (largest array); plus FMA_OPS for FMA
    contraction of the thread's own arithmetic."""
    threads = int(np.prod(spec.dim)) * (TILE_BLOCK_DIM if spec.launch == "tiled" else 1)
    largest = max((int(np.prod(a.shape)) for a in spec.args if a.kind == "array"), default=1)
    return max(threads, largest) + FMA_OPS


def gpu_tolerance(dtype: str, n: int) -> float:
    """The bound on |GPU - CPU| for one output element, relative to the sum of the magnitudes of
    the terms combined into it, when at most `n` terms are combined in a different order.

    Recursive summation of n terms in any order gives a result within gamma_(n-1) * sum|x_i| of
    the exact sum, gamma_k = k*u / (1 - k*u) with u the unit roundoff of the dtype (Higham,
    Accuracy and Stability of Numerical Algorithms, 2nd ed., eq. 4.4); two orders (CPU and GPU)
    are each that close to the exact sum, so they differ by at most 2 * gamma_(n-1) * sum|x_i|.
    A fused multiply-add rounds once where a separate multiply and add round twice: one more
    rounding per operation, counted in n. Integers (atomic add/min/max are exact and
    associative, wrap-around included) must agree exactly: 0. Where n*u >= 1 the bound says
    nothing: inf."""
    if not is_float(dtype):
        return 0.0
    u = float(np.finfo(NP_DTYPES[scalar_dtype(dtype)]).eps) / 2
    k = max(n - 1, 1)
    if k * u >= 1:
        return float("inf")
    return 2 * k * u / (1 - k * u)


def compare_gpu_cpu(name: str, gpu: np.ndarray, cpu: np.ndarray, dtype: str, n: int) -> tuple[str | None, float]:
    """(None or the reason, max |GPU - CPU|). The sum of the terms' magnitudes is not known from
    the outputs; it is estimated as the largest |CPU output| of the array, at least 1 (the
    seeded inputs are of order 1), so a cancelling sum is judged at the scale of its terms."""
    if gpu.shape != cpu.shape:
        return f"output {name}: shape {gpu.shape} != CPU {cpu.shape}", float("inf")
    if not is_float(dtype):
        diff = np.abs(gpu.astype(np.int64) - cpu.astype(np.int64))
        worst = float(diff.max()) if diff.size else 0.0
        return (f"output {name}: integer mismatch against CPU (max |diff| {worst:g})" if worst else None), worst
    g, c = gpu.astype(np.float64), cpu.astype(np.float64)
    diff = np.abs(g - c)
    worst = float(np.max(diff)) if diff.size else 0.0
    scale = max(float(np.max(np.abs(c))) if c.size else 0.0, 1.0)
    rtol, atol = TOLERANCES[scalar_dtype(dtype)]
    bound = np.maximum(gpu_tolerance(dtype, n) * scale, atol + rtol * np.abs(c))
    bad = ~(diff <= bound)
    if bad.any():
        k = int(np.argmax(bad))
        return (f"output {name}: against CPU at flat index {k}: {g.ravel()[k]!r} vs {c.ravel()[k]!r} "
                f"(|diff| {diff.ravel()[k]:.3g} > bound {bound.ravel()[k]:.3g}, {n} terms)"), worst
    return None, worst
