"""Live outputs: an output that is the same for every seeded input set, or that equals one of
the kernel's input arrays in every set, proves nothing about the kernel's computation.

The generator redraws a spec whose oracle outputs are dead (`generator.families.build_spec`), and
the validator applies the same test to Warp's outputs (`validator.checks`)."""

from __future__ import annotations

import numpy as np

from generator.spec import KernelSpec, scalar_dtype


def _stored(value, dtype: str) -> np.ndarray:
    """An output as the kernel stores it: the oracle's float64 rounded to the array's dtype (two
    float64 results 3e-15 apart are one float32 value: Warp's output does not change)."""
    return np.asarray(value).astype(np.dtype(scalar_dtype(dtype)))


def dead_output(spec: KernelSpec, sets: list[dict], outs: list[dict]) -> str | None:
    """The reason an output is dead, or None. `sets[k]` are the inputs of run k and `outs[k]`
    its outputs by name (the oracle's or Warp's: compared in the output's own dtype)."""
    if len(outs) < 2:
        return None
    for a in spec.args:
        if a.name not in outs[0]:
            continue
        first = _stored(outs[0][a.name], a.dtype)
        if all(np.array_equal(_stored(o[a.name], a.dtype), first) for o in outs[1:]):
            return f"output {a.name} is the same for all {len(outs)} input sets (it does not depend on the inputs)"
        for b in spec.args:
            if b.kind == "array" and b.name != a.name and b.role != "out" and all(
                    np.shape(i[b.name]) == np.shape(o[a.name]) and np.array_equal(i[b.name], o[a.name])
                    for i, o in zip(sets, outs)):
                return f"output {a.name} is a copy of input {b.name}"
    return None
