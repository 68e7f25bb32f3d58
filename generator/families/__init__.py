"""The kernel families. Each module exposes `TARGET` ("cpu" or "cuda") and `build(rng, name, seed)`.

`//generator:cpu` draws from the CPU families, `//generator:cuda` from the CUDA ones; every
kernel of either lowers to both backends.
"""

from __future__ import annotations

import random

from generator.families import arith, branch, loop, reduce_atomic, stencil
from generator.spec import KernelSpec, derive_seed

FAMILIES = {m.NAME: m for m in (arith, branch, loop, reduce_atomic, stencil)}


def families_for(target: str) -> list[str]:
    return [name for name, m in FAMILIES.items() if m.TARGET == target]


def kernel_name(family: str, seed: int) -> str:
    return f"{family}_{derive_seed('name', family, seed) & 0xFFFFFFFF:08x}"


def build_spec(family: str, seed: int) -> KernelSpec:
    """(family, seed) -> spec, identical on every machine."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; known: {', '.join(sorted(FAMILIES))}")
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be an integer in [0, 2**63), got {seed!r}")
    rng = random.Random(derive_seed("spec", family, seed))
    return FAMILIES[family].build(rng, kernel_name(family, seed), seed)
