"""The kernel families. Each module exposes `TARGET` ("cpu" or "cuda") and `build(rng, name, seed)`.

`//generator:cpu` draws from the CPU families, `//generator:cuda` from the CUDA ones; every
kernel of either lowers to both backends.
"""

from __future__ import annotations

import dataclasses
import random

from generator.families import (
    arith, atomics, branch, bvh, cond_reduce, control_flow, dtypes, funcs, helpers, loop, matrix, matvec, mesh, neighbors,
    nested_loops, particles, random_numbers, reduce_atomic, stencil, struct_arrays, structs, tile_matmul, tile_reduce,
    tile_scan, texture, vecmath, volume,
)
from generator.inputs import INPUT_SETS, make_inputs
from generator.liveness import dead_output
from generator.oracle import run_oracle, run_oracle_sets
from generator.spec import KernelSpec, derive_seed
from generator.spec_walk import unused_args

_CPU = (arith, branch, loop, nested_loops, vecmath, matrix, atomics, helpers, structs, dtypes, funcs, struct_arrays,
        neighbors, mesh, volume, bvh, texture)
_CUDA = (reduce_atomic, stencil, matvec, cond_reduce, particles, random_numbers, control_flow,
         tile_reduce, tile_scan, tile_matmul)
FAMILIES = {m.NAME: m for m in _CPU + _CUDA}


def families_for(target: str) -> list[str]:
    return [name for name, m in FAMILIES.items() if m.TARGET == target]


def kernel_name(family: str, seed: int) -> str:
    return f"{family}_{derive_seed('name', family, seed) & 0xFFFFFFFF:08x}"


# how many specs build_spec draws at most before it gives up on a live one (the validator then
# rejects the last draw as dead_output, counted)
MAX_DRAWS = 16


def build_spec(family: str, seed: int) -> KernelSpec:
    """(family, seed) -> spec, identical on every machine.

    A draw whose oracle outputs are dead over the seeded input sets (`generator.liveness`) is
    drawn again from the same random stream, so the result stays a function of (family, seed).
    An argument the drawn body never names (an input no expression happened to pick) is left
    out of the signature: every parameter of a kernel is one it uses."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; known: {', '.join(sorted(FAMILIES))}")
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be an integer in [0, 2**63), got {seed!r}")
    rng = random.Random(derive_seed("spec", family, seed))
    for _ in range(MAX_DRAWS):
        spec = _without_unused_args(FAMILIES[family].build(rng, kernel_name(family, seed), seed))
        if _live(spec):
            break
    return _as_tree(spec)


def _as_tree(spec: KernelSpec) -> KernelSpec:
    """The spec with a list of its own for every node: a family may put one node in two places
    (a leaf drawn twice, the value a finiteness test guards); the oracle keys branch points and
    the outcomes taken by node identity, so a shared `where` would count once here and twice in
    the spec read back from its JSON form (//validator's branch coverage differed from the run's
    on 5 of 300 arith kernels, measured). The JSON form, and so (family, seed), is unchanged."""
    return dataclasses.replace(spec, body=_tree(spec.body),
                               helpers=tuple(dataclasses.replace(h, body=_tree(h.body)) for h in spec.helpers))


def _tree(node):
    return [_tree(x) for x in node] if isinstance(node, list) else node


def _without_unused_args(spec: KernelSpec) -> KernelSpec:
    unused = set(unused_args(spec))
    if not unused:
        return spec
    return dataclasses.replace(spec, args=tuple(a for a in spec.args if a.name not in unused))


def _live(spec: KernelSpec) -> bool:
    # two input sets prove most kernels live (an output that differs between them is not the same
    # for all sets, and one that differs from every input in set 0 is no copy), evaluated together
    # (`run_oracle_sets`); the third set is needed only to confirm a dead output
    try:
        sets = [make_inputs(spec, k) for k in range(2)]
        outs = run_oracle_sets(spec, sets)
        for k in range(2, INPUT_SETS):
            if dead_output(spec, sets, outs) is None:
                return True
            sets.append(make_inputs(spec, k))
            outs.append(run_oracle(spec, sets[-1]))
    except Exception:  # noqa: BLE001 - an oracle failure is the validator's to count, with its reason
        return True
    return dead_output(spec, sets, outs) is None
