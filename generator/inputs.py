"""Seeded inputs for executing a kernel: one NumPy value per argument, fixed by the spec."""

from __future__ import annotations

import numpy as np

from generator.spec import FLOAT_DTYPES, KernelSpec, derive_seed

NP_DTYPES = {
    "float16": np.float16,
    "float32": np.float32,
    "float64": np.float64,
    "int32": np.int32,
    "int64": np.int64,
    "uint32": np.uint32,
}


def make_inputs(spec: KernelSpec) -> dict:
    """Arrays and scalars for every argument; outputs start at zero. Same spec, same bytes."""
    rng = np.random.Generator(np.random.PCG64(derive_seed("inputs", spec.family, spec.seed)))
    values: dict = {}
    for a in spec.args:
        npt = NP_DTYPES[a.dtype]
        shape = a.shape if a.kind == "array" else ()
        if a.kind == "array" and a.role == "out":
            values[a.name] = np.zeros(shape, dtype=npt)
            continue
        if a.dtype in FLOAT_DTYPES:
            # multiples of 1/256: exact in every float dtype, so the oracle sees the same inputs
            raw = np.round(rng.uniform(a.low, a.high, size=shape) * 256.0) / 256.0
        else:
            raw = rng.integers(int(a.low), int(a.high) + 1, size=shape)
        arr = np.asarray(raw).astype(npt)
        values[a.name] = arr if a.kind == "array" else arr.item()
    return values
