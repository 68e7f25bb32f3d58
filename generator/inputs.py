"""Seeded inputs for executing a kernel: one NumPy value per argument, fixed by the spec."""

from __future__ import annotations

import numpy as np

from generator.spec import BVH, HASH_GRID, MESH, STRUCT_ARRAY, TEXTURE, VOLUME, VEC_SHAPES, ArgSpec, KernelSpec, derive_seed, flat_fields, is_float

NP_DTYPES = {
    "float16": np.float16,
    "float32": np.float32,
    "float64": np.float64,
    "int32": np.int32,
    "int64": np.int64,
    "uint32": np.uint32,
    **{t: np.float32 for t in VEC_SHAPES},
}


INPUT_SETS = 3  # every kernel is executed on this many seeded input sets; a record's io holds set 0


def second_launch(spec: KernelSpec) -> tuple[int, ...] | None:
    """The second launch size a grid kernel is also executed at (input set 0, the same arrays):
    d // 2 + 1 threads along each grid dimension, so the last threads of every dimension do not
    run and their outputs keep their initial values. Every family's indices are bounded by its
    arrays' sizes, not by the launch size (`min(i + 1, n - 1)` bakes n in as a literal), so a
    smaller launch is as well-defined as the full one and a subset of its threads (no new data
    race). None where no dimension shrinks (every one 2 or less) and for tiled launches (a tile
    kernel's launch is its tile count, one block of TILE_BLOCK_DIM threads per tile, which its
    array shapes fix)."""
    if spec.launch != "grid":
        return None
    small = tuple(d // 2 + 1 for d in spec.dim)
    return small if small != tuple(spec.dim) else None


def make_inputs(spec: KernelSpec, variant: int = 0) -> dict:
    """Arrays and scalars for every argument; outputs start at zero. Same spec and variant,
    same bytes; variant 0 is the record's `io.inputs`."""
    parts = ("inputs", spec.family, spec.seed) + ((variant,) if variant else ())
    rng = np.random.Generator(np.random.PCG64(derive_seed(*parts)))
    values: dict = {}
    for a in spec.args:
        if a.kind in (HASH_GRID, BVH):  # no input of its own: built from its points at launch
            continue
        if a.kind in ("struct", STRUCT_ARRAY):  # one value per field, in field order (a nested struct's
            # depth first); a struct array's: one array per field, that field of every element
            kind, shape = ("array", a.shape) if a.kind == STRUCT_ARRAY else ("scalar", ())
            values[a.name] = {f: _draw(rng, ArgSpec(f, kind, t, shape, low=a.low, high=a.high))
                              for f, t in flat_fields(a.fields)}
            continue
        if a.kind in (MESH, VOLUME, TEXTURE):  # its own input: a height field's z, one float32 per vertex, a volume's voxels or a texture's texels
            values[a.name] = _draw(rng, ArgSpec(a.name, "array", "float32", a.shape, low=a.low, high=a.high))
            continue
        values[a.name] = _draw(rng, a)
    return values


def _draw(rng, a: ArgSpec):
    npt = NP_DTYPES[a.dtype]
    shape = (a.shape if a.kind == "array" else ()) + VEC_SHAPES.get(a.dtype, ())
    if a.kind == "array" and a.role == "out":
        return np.zeros(shape, dtype=npt)
    if is_float(a.dtype):
        # multiples of 1/256: exact in every float dtype, so the oracle sees the same inputs
        raw = np.round(rng.uniform(a.low, a.high, size=shape) * 256.0) / 256.0
    else:
        raw = rng.integers(int(a.low), int(a.high) + 1, size=shape)
    if a.ascending:  # the same draws, sorted (1-D arrays only: wp.lower_bound's)
        raw = np.sort(raw)
    arr = np.asarray(raw).astype(npt)
    return arr if a.kind == "array" or a.dtype in VEC_SHAPES else arr.item()
