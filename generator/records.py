"""The parts of a record that are derived from its spec and source, computed one way only.

The pipeline writes them and the validator recomputes them, so a stored field that does not
follow from the spec (an edited dim, a renamed kernel, an altered input) is caught.
"""

from __future__ import annotations

import hashlib

import numpy as np

from generator.spec import BVH, HASH_GRID, STRUCT_ARRAY, TEXTURE, VOLUME, fields_json, flat_fields


def record_id(source: str, name: str) -> str:
    """sha256 prefix of the source with the kernel's name normalized."""
    normalized = source.replace(name, "kernel")
    return hashlib.sha256(normalized.encode()).hexdigest()[:16]


def tensor_json(arr) -> dict:
    a = np.asarray(arr)
    return {"dtype": str(a.dtype), "shape": list(a.shape), "data": a.tolist()}


def arg_json(a) -> dict:
    d = {"name": a.name, "kind": a.kind, "dtype": a.dtype, "shape": list(a.shape), "role": a.role}
    if a.fields:
        d["fields"] = fields_json(a.fields)
    if a.kind in (HASH_GRID, BVH):  # how the grid (the boxes) is built: from which input array, with which cell width (half-width)
        d["points"], d["cell"] = a.points, a.cell
    if a.kind == VOLUME:  # its voxel size (its voxels are its input)
        d["cell"] = a.cell
    if a.kind == TEXTURE:  # its filter and address modes (its texels are its input)
        d["sampler"] = a.sampler
    return d


def inputs_json(spec, inputs: dict) -> dict:
    """Every input as a tensor; a struct argument's fields as `arg.field` entries (a nested
    struct's as `arg.inner.field`), a struct array's the same, each the field of every element."""
    out = {}
    for a in spec.args:
        if a.role == "out" or a.kind in (HASH_GRID, BVH):  # a grid or a BVH is rebuilt from its points
            continue
        if a.kind in ("struct", STRUCT_ARRAY):
            for f, _ in flat_fields(a.fields):
                out[f"{a.name}.{f}"] = tensor_json(inputs[a.name][f])
        else:
            out[a.name] = tensor_json(inputs[a.name])
    return out


def grad_json(example: dict | None) -> dict | None:
    """The gradient example (validator.gradients) with its arrays as tensors."""
    if example is None:
        return None
    tensors = lambda d: {k: tensor_json(v) for k, v in sorted(d.items())}  # noqa: E731
    return {"w": tensors(example["w"]), "v": [tensors(v) for v in example["v"]], "g": tensors(example["g"]),
            "dot": [float(x) for x in example["dot"]], "fd": [float(x) for x in example["fd"]],
            "point": example.get("point", "seeded")}
