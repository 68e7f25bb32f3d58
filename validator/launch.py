"""Launching a spec's kernel with its inputs on a device: the launch arguments built from the
inputs (`arg_values`), and a forward run that gives back the outputs (`run_on`). Split from
`checks`, which re-exports `run_on` and `run_cpu`.
"""

from __future__ import annotations

import numpy as np

from extractor import warp_adapter
from generator.inputs import NP_DTYPES
from generator.spec import (BVH, HASH_GRID, MESH, STRUCT_ARRAY, TEXTURE, TILE_BLOCK_DIM, VOLUME, VOLUME_ORIGIN, KernelSpec, flat_fields,
                            mesh_geometry)


def arg_values(kernel, spec: KernelSpec, inputs: dict, device: str, grad: set = frozenset()) -> tuple[list, dict]:
    """The launch arguments (Warp arrays, struct instances, scalars, a hash grid's, a mesh's, a volume's or a BVH's id)
    and the arrays by name; arrays named in `grad` are created with requires_grad."""
    values, arrays = [], {}
    for a in spec.args:
        if a.kind == HASH_GRID:  # built from its points, an array argument before it, which holds it
            values.append(warp_adapter.make_hash_grid(arrays[a.points], a.shape, a.cell, device))
        elif a.kind == MESH:  # a height field: built from its own input (not read back, held constant)
            xy, faces = mesh_geometry(a.shape)
            points = np.column_stack([np.asarray(xy, dtype=np.float32), np.ravel(inputs[a.name]).astype(np.float32)])
            values.append(warp_adapter.make_mesh(points, faces, device))
        elif a.kind == BVH:  # boxes around its points, an input array (not read back, held constant)
            values.append(warp_adapter.make_bvh(inputs[a.points], a.cell, device))
        elif a.kind == TEXTURE:  # texels: its own input (not read back, held constant); the object itself
            values.append(warp_adapter.make_texture2d(inputs[a.name], *a.sampler.split("/"), device=device))
        elif a.kind == VOLUME:  # dense voxels: its own input (not read back, held constant)
            values.append(warp_adapter.make_volume(inputs[a.name], VOLUME_ORIGIN, a.cell, device))
        elif a.kind == "array":
            arrays[a.name] = warp_adapter.to_device_array(inputs[a.name], a.dtype, device, requires_grad=a.name in grad)
            values.append(arrays[a.name])
        elif a.kind in ("struct", STRUCT_ARRAY):  # a struct array is an input: not among the arrays read back
            fields = {f: (inputs[a.name][f], t) for f, t in flat_fields(a.fields)}
            values.append(warp_adapter.make_struct(kernel, a.name, fields) if a.kind == "struct"
                          else warp_adapter.make_struct_array(kernel, a.name, fields, device))
        else:
            values.append(NP_DTYPES[a.dtype](inputs[a.name]))
    return values, arrays


def tile_block_dim(spec: KernelSpec) -> int | None:
    return TILE_BLOCK_DIM if spec.launch == "tiled" else None


def run_on(kernel, spec: KernelSpec, inputs: dict, device: str = "cpu") -> dict[str, np.ndarray]:
    values, arrays = arg_values(kernel, spec, inputs, device)
    warp_adapter.launch(kernel, spec.dim, values, device, tile_block_dim(spec))
    return {a.name: arrays[a.name].numpy() for a in spec.args if a.kind == "array" and a.role in ("out", "inout")}


def run_cpu(kernel, spec: KernelSpec, inputs: dict) -> dict[str, np.ndarray]:
    return run_on(kernel, spec, inputs, "cpu")
