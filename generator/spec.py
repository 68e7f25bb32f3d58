"""KernelSpec: the typed, JSON-serializable model of one generated Warp kernel.

The spec, not the rendered text, is where correctness lives: it renders to Warp Python
(`generator.render`), evaluates to the NumPy oracle (`generator.oracle`) and fixes the inputs
(`generator.inputs`). Bodies are trees of plain JSON lists so a spec round-trips through a
record byte for byte.

Expressions (first element is the tag):
  ["c", value, dtype]            literal
  ["v", name]                    local variable or scalar argument
  ["ld", array, [index...]]      array element load
  ["bin", op, a, b]              op in + - * /  (the grammar only divides by values >= 1)
  ["neg", a]
  ["call", builtin, [args...]]   Warp builtin (wp.sin, wp.min, ...); `len` is Python's len(v) of a
                                 vector; ["call", "static", [e]] is wp.static(e) of a literal
                                 expression e (c, bin and neg of float32 / int32 literals only)
  ["where", cond, a, b]          wp.where
  ["cmp", op, a, b]              < <= > >= (and == != on integers only)
  ["and", a, b] / ["or", a, b] / ["not", a]
  ["hcall", helper, [args...]]   call of one of the spec's own @wp.func helpers
  ["cast", dtype, a]             wp.float32(a), wp.int32(a), wp.uint8(a), wp.bfloat16(a), ... (an
                                 integer cast wraps modulo 2**bits, as C converts; the float64
                                 oracle leaves a float16 / bfloat16 narrowing to the output's
                                 tolerance); dtype float / int / bool: Python's
                                 float(a), int(a), bool(a) (Warp's float32, int32 and bool casts)
  ["mod", a, k]                  integer a % k with a >= 0 and literal k > 0
  ["vec", type, [comps...]]      wp.vec3(a, b, c), wp.mat22(...), wp.quat(...) constructors (and the
                                 typed ones of VALUE_VEC_TYPES: wp.vec3i(...), wp.vec3d(...), ...)
  ["comp", e, [k...]]            component of a vector / matrix: e[k] or e[r, c]
  ["mmul", a, b]                 matrix product a * b (mat*vec or mat*mat)
  ["arr", name]                  a whole array passed as a value (tile loads and stores)
  ["tuple", [items...]]          (a,) / (a, b): tile shapes and offsets
  ["fnref", builtin]             wp.sin as a value (wp.tile_map); ["fnref", "float"] is Python's float
                                 (the dtype wp.texture_sample takes)
  ["kwcall", builtin, [args...], [[keyword, expr]...]]   wp.tile_load(x, shape=..., offset=...),
                                 wp.identity(n=3, dtype=wp.float32) (a dtype is ["fnref", "float32"])
  ["vmode", mode]                wp.Volume.CLOSEST or wp.Volume.LINEAR (0 or 1), a volume's sampling mode
  ["fld", arg, field]            a field of a @wp.struct argument: arg.field (a dotted path reaches into a
                                 nested struct: arg.frame.origin)
  ["sld", array, [index...], field]   a field of one element of an array of structs: pts[i].mass
                                 (a dotted path reaches into a nested struct: pts[i].frame.scale)
  ["randf", state, [lo, hi]?]    wp.randf(state[, lo, hi]): advances the RNG state variable
  ["randi" | "randu", state, [lo, hi]?]   wp.randi / wp.randu(state[, lo, hi]): an int32 / uint32
                                 draw (the state itself, or state % (hi - lo) + lo), advancing it too
  [sampler, state]               wp.sample_unit_disk(state), ... (RAND_SAMPLES): a uniform point, advancing it too

Statements:
  ["let", name, expr]            first assignment (declares the local)
  ["set", name, expr]            re-assignment
  ["aug", name, op, expr]        name op= expr  (op in + - *)
  ["store", array, [index...], expr]
  ["atomic", op, array, [index...], expr]       wp.atomic_<op>, op in ATOMIC_OPS (cas: expr is
                                 ["tuple", [compare, value]], wp.atomic_cas(array, index, compare, value))
  ["if", cond, [then...], [[cond, [body...]]...], [else...]]
  ["for", var, start, stop, [body...]]          for var in range(start, stop)
  ["for", var, start, stop, [body...], "reversed"]   for var in reversed(range(start, stop)): stop - 1 down to start
  ["while", cond, [body...]]                    the grammar makes every while terminate
  ["break"] / ["continue"]
  ["ret", expr]                                 helpers only (a multi-valued helper returns
                                 ["tuple", [a, b, ...]]: `return (a, b)`)
  ["unpack", [name...], expr]                   first assignment of each name from a multi-valued
                                 helper's call: `p, q = h(x)`
  ["expr", expr]                                a call used as a statement (tile stores)
  ["ret_kernel"]                                an early `return` from the kernel
  ["neighbors", j, grid, points, center, radius, d2, [body...]]   the body for every point j of
                                 `points` within `radius` of points[center] (a hash grid's query),
                                 d2 its squared distance
  ["closest", cp, mesh, point, max_dist, [body...]]   the body once if a point of the mesh lies
                                 (strictly) within max_dist of `point`, cp the closest one
                                 (wp.mesh_query_point_no_sign, then wp.mesh_eval_position)
  ["boxes", j, bvh, query, a, b, [body...]]   the body for every box j of a BVH that the query
                                 meets: query "aabb" (a box from lower a to upper b,
                                 wp.bvh_query_aabb) or "sphere" (centre a, radius b,
                                 wp.bvh_query_sphere); then wp.bvh_query_next

Helpers: a parameter typed GENERIC ("Any") makes the @wp.func generic (`typing.Any`: Warp compiles
one overload per argument type it is called with); a helper whose `ret` is GENERIC has no return
annotation (Warp infers it), and one whose `ret` is a tuple of dtypes returns that many values.
Constants: `constants` [(name, dtype, value)] are module-level `name = wp.constant(value)`s, read
in bodies as ["v", name].

Launch: "grid" is wp.launch(dim=...); "tiled" is wp.launch_tiled(dim=..., block_dim=TILE_BLOCK_DIM)
and the oracle runs the body once per tile index with tiles as NumPy arrays.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import schemas
from schemas.dataset_format import canonical_json  # noqa: F401 (the model's hashes and records use it)

SPEC_VERSION = schemas.SPEC_VERSION


FLOAT_DTYPES = ("float16", "float32", "float64")
# the wp.atomic_<op>s the grammar writes (as statements): add and sub of any value, min and max,
# and the bitwise and, or and xor of integers (which Warp defines for integer arrays only)
ATOMIC_OPS = ("add", "sub", "min", "max", "and", "or", "xor", "exch", "cas")
BITWISE_ATOMICS = ("and", "or", "xor")
INT_DTYPES = ("int32", "int64", "uint32")
# float32 vector types: name -> shape of one element
VEC_SHAPES = {"vec2": (2,), "vec3": (3,), "vec4": (4,), "mat22": (2, 2), "mat33": (3, 3), "mat44": (4, 4), "quat": (4,)}
DTYPES = FLOAT_DTYPES + INT_DTYPES + tuple(VEC_SHAPES)
# integer types kernels compute in (casts, locals), never an array's or argument's dtype (the pair
# schema's dtype enum does not hold them): name -> (bits, signed)
SMALL_INT_DTYPES = {"int8": (8, True), "uint8": (8, False), "int16": (16, True), "uint16": (16, False),
                    "uint64": (64, False)}
INT_BITS = {"int32": (32, True), "int64": (64, True), "uint32": (32, False), **SMALL_INT_DTYPES}
# Python's own casts in a kernel, float(x) / int(x) / bool(x), and the Warp type each one is
PY_CASTS = {"float": "float32", "int": "int32", "bool": "bool"}
# float types kernels round through by a cast (never an array's dtype)
CAST_FLOAT_DTYPES = ("bfloat16",)
# typed vector constructors kernels call (values only, never an array's dtype): name -> (shape, scalar dtype)
VALUE_VEC_TYPES = {
    "vec2i": ((2,), "int32"), "vec3i": ((3,), "int32"), "vec4i": ((4,), "int32"),
    "vec2f": ((2,), "float32"), "vec3f": ((3,), "float32"), "mat22f": ((2, 2), "float32"), "quatf": ((4,), "float32"),
    "vec4f": ((4,), "float32"), "mat33f": ((3, 3), "float32"),
    "vec2ui": ((2,), "uint32"), "vec3ui": ((3,), "uint32"), "vec4ui": ((4,), "uint32"),
    "vec4d": ((4,), "float64"), "quatd": ((4,), "float64"), "mat44d": ((4, 4), "float64"),
    "vec2d": ((2,), "float64"), "vec3d": ((3,), "float64"), "mat22d": ((2, 2), "float64"), "mat33d": ((3, 3), "float64"),
    "vec3h": ((3,), "float16"), "quath": ((4,), "float16"), "mat33h": ((3, 3), "float16"), "vec3s": ((3,), "int16"),
}
# the RNG draws, each an expression that advances its state variable: wp.randf, randi, randu
RAND_DRAWS = ("randf", "randi", "randu")
# rand.h's uniform samplers, each an expression that advances its state variable: a vec2 / vec3 / vec4
RAND_SAMPLES = ("sample_unit_square", "sample_unit_cube", "sample_triangle", "sample_unit_ring",
                "sample_unit_disk", "sample_unit_sphere_surface", "sample_unit_sphere", "sample_unit_hemisphere_surface",
                "sample_unit_hemisphere")
GENERIC = "Any"  # typing.Any: a generic @wp.func parameter, or an inferred return type
TILE_BLOCK_DIM = 256  # Warp's default module block_dim, so the batch compiles once


def scalar_dtype(dtype: str) -> str:
    """The scalar type of one component (vec3 -> float32)."""
    return "float32" if dtype in VEC_SHAPES else dtype


def is_float(dtype: str) -> bool:
    return scalar_dtype(dtype) in FLOAT_DTYPES


@dataclasses.dataclass(frozen=True)
class ArgSpec:
    """One kernel argument. `kind` is "array", "scalar", "struct", STRUCT_ARRAY (an input array of
    @wp.struct elements), HASH_GRID (a `wp.HashGrid` built from an input array), MESH (a `wp.Mesh`
    built from its own input, a height field), BVH (a `wp.Bvh` of boxes around an input array's points),
    TEXTURE (a `wp.Texture2D` of its own input, sampled as `sampler` says) or VOLUME (a `wp.Volume` of its own input, a dense
    grid of voxels); arrays have `shape`.

    A struct argument's (or struct array's) `dtype` is its @wp.struct class name and `fields` its
    typed fields [(name, dtype)], every field drawn from [low, high] like a scalar; a field
    (name, class, fields) is a nested @wp.struct of its own fields (`flat_fields`). An
    `ascending` input array is drawn as any other, then sorted."""

    name: str
    kind: str
    dtype: str
    shape: tuple[int, ...] = ()
    role: str = "in"  # "in", "out" (written by the kernel) or "inout"
    low: float = -2.0  # input value range, used by generator.inputs
    high: float = 2.0
    fields: tuple[tuple[str, str], ...] = ()
    ascending: bool = False  # an input array drawn sorted, ascending (wp.lower_bound searches it)
    points: str = ""  # HASH_GRID, BVH: the vec3 input array the grid (the boxes) is built from
    cell: float = 0.0  # HASH_GRID: the radius `HashGrid.build` is given (its cells' width); VOLUME: its voxel size; BVH: its boxes' half-width
    sampler: str = ""  # TEXTURE: "FILTER/ADDRESS", its filter and address modes (TEXTURE_FILTERS, TEXTURE_ADDRESSES)

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["shape"] = list(self.shape)
        if self.fields:
            d["fields"] = fields_json(self.fields)
        else:
            del d["fields"]
        for key, unset in (("ascending", False), ("points", ""), ("cell", 0.0), ("sampler", "")):
            if d[key] == unset:  # written only where set: every other spec's JSON is as before
                del d[key]
        return d

    @staticmethod
    def from_json(d: dict[str, Any]) -> "ArgSpec":
        return ArgSpec(**{**d, "shape": tuple(d["shape"]), "fields": fields_from(d.get("fields", ()))})


STRUCT_ARRAY = "struct_array"  # ArgSpec.kind of an input array of @wp.struct elements
# ArgSpec.kind of a `wp.HashGrid` built from the input array `points` (its `shape` the grid's cells
# along x, y and z, `cell` the build radius), passed to the kernel as its `wp.uint64` id; it has no
# input of its own, so a record reproduces it from the points
HASH_GRID = "hash_grid"
GRID_QUERIES = ("hash_grid_query", "hash_grid_query_next")  # the builtins its ["neighbors", ...] statement calls
# ArgSpec.kind of a `wp.Mesh` passed as its `wp.uint64` id: a height field over [-1, 1]^2 whose
# `shape` (rows, cols) is its grid of vertices, each z one input value drawn from [low, high] (the
# argument's own input, a float32 array of that shape), x and y fixed by the grid (`mesh_geometry`)
MESH = "mesh"
MESH_QUERIES = ("mesh_query_point_no_sign", "mesh_eval_position")  # the builtins ["closest", ...] calls
MESH_SPANS = (2, 4)  # rows - 1 and cols - 1: the grid's x and y are multiples of 1/2, exact in float32


# ArgSpec.kind of a `wp.Volume` passed as its `wp.uint64` id: a dense float32 grid of voxels, `shape`
# (x, y, z) of them, its own input drawn from [low, high], voxel (0, 0, 0) at VOLUME_ORIGIN on every
# axis and `cell` the voxel size (`wp.Volume.load_from_numpy`; background 0 outside)
VOLUME = "volume"
VOLUME_ORIGIN = -1.0
VOLUME_CALLS = ("volume_world_to_index", "volume_index_to_world", "volume_sample_f", "volume_lookup_f")
VOLUME_MODES = {"CLOSEST": 0, "LINEAR": 1}  # wp.Volume's sampling modes (native/volume.h)
# ArgSpec.kind of a `wp.Bvh` passed as its `wp.uint64` id: one box per point of the vec3 input array
# `points`, a cube of half-width `cell` around it (lowers points - cell, uppers points + cell), `shape`
# (n,) the number of boxes; it has no input of its own, so a record reproduces it from the points
BVH = "bvh"
BVH_QUERIES = {"aabb": "bvh_query_aabb", "sphere": "bvh_query_sphere"}  # ["boxes", ...]'s query -> its builtin
BVH_CALLS = (*BVH_QUERIES.values(), "bvh_query_next")
# ArgSpec.kind of a `wp.Texture2D` of one float32 channel, passed as the texture itself (annotated
# `wp.Texture2D`): `shape` (height, width), its own input drawn from [low, high], normalized
# coordinates, `sampler` its filter and address modes ("LINEAR/WRAP"), read only by
# ["kwcall", "texture_sample", [tex, uv] or [tex, u, v], [["dtype", ["fnref", "float"]]]]
TEXTURE = "texture2d"
TEXTURE_FILTERS = {"CLOSEST": 0, "LINEAR": 1}  # wp.TextureFilterMode's
TEXTURE_ADDRESSES = {"WRAP": 0, "CLAMP": 1, "MIRROR": 2, "BORDER": 3}  # wp.TextureAddressMode's


def mesh_geometry(shape: tuple[int, ...]) -> tuple[list[tuple[float, float]], list[tuple[int, int, int]]]:
    """A MESH argument's vertices' (x, y), row by row (vertex r * cols + c at x = -1 + 2c/(cols-1),
    y = -1 + 2r/(rows-1); its z is heights[r, c]), and its triangles: each grid cell split along the
    diagonal from its lower-left to its upper-right corner, both counter-clockwise seen from +z."""
    rows, cols = shape
    xy = [(-1.0 + 2.0 * c / (cols - 1), -1.0 + 2.0 * r / (rows - 1)) for r in range(rows) for c in range(cols)]
    faces = []
    for r in range(rows - 1):
        for c in range(cols - 1):
            a, b, d, e = r * cols + c, r * cols + c + 1, (r + 1) * cols + c, (r + 1) * cols + c + 1
            faces += [(a, b, e), (a, e, d)]
    return xy, faces


def fields_json(fields) -> list:
    """A struct's fields as JSON lists: [name, dtype], or [name, class, [fields...]] for a nested struct."""
    return [[f[0], f[1], fields_json(f[2])] if len(f) == 3 else list(f) for f in fields]


def fields_from(fields) -> tuple:
    """`fields_json` read back as tuples."""
    return tuple((f[0], f[1], fields_from(f[2])) if len(f) == 3 else tuple(f) for f in fields)


def flat_fields(fields, prefix: str = "") -> list[tuple[str, str]]:
    """(path, dtype) of every value field, depth first in declaration order: a nested struct's
    fields are `name.sub` (the path a kernel reads, `p.frame.origin`)."""
    out: list[tuple[str, str]] = []
    for f in fields:
        if len(f) == 3:
            out += flat_fields(f[2], f"{prefix}{f[0]}.")
        else:
            out.append((prefix + f[0], f[1]))
    return out


def struct_classes(args) -> list[tuple[str, tuple]]:
    """The @wp.struct classes the arguments need, (class name, fields), each once, a nested struct's
    class before the class holding it (Python evaluates a field's annotation when it defines the class)."""
    out: dict[str, tuple] = {}

    def visit(cls: str, fields: tuple) -> None:
        for f in fields:
            if len(f) == 3:
                visit(f[1], f[2])
        out.setdefault(cls, fields)

    for a in args:
        if a.kind in ("struct", STRUCT_ARRAY):
            visit(a.dtype, a.fields)
    return list(out.items())


@dataclasses.dataclass(frozen=True)
class HelperSpec:
    """A user @wp.func: typed parameters (GENERIC: `typing.Any`), return dtype (GENERIC: inferred;
    a tuple of dtypes: that many values) and a body ending in ["ret", ...]."""

    name: str
    params: tuple[tuple[str, str], ...]
    ret: str | tuple[str, ...]
    body: list

    def to_json(self) -> dict[str, Any]:
        ret = list(self.ret) if isinstance(self.ret, tuple) else self.ret
        return {"name": self.name, "params": [list(p) for p in self.params], "ret": ret, "body": self.body}

    @staticmethod
    def from_json(d: dict[str, Any]) -> "HelperSpec":
        ret = tuple(d["ret"]) if isinstance(d["ret"], list) else d["ret"]
        return HelperSpec(d["name"], tuple(tuple(p) for p in d["params"]), ret, d["body"])


@dataclasses.dataclass(frozen=True)
class KernelSpec:
    family: str
    seed: int
    name: str
    dim: tuple[int, ...]
    args: tuple[ArgSpec, ...]
    body: list
    helpers: tuple[HelperSpec, ...] = ()
    tid_names: tuple[str, ...] = ("i",)
    launch: str = "grid"  # or "tiled"
    constants: tuple[tuple[str, str, Any], ...] = ()  # module-level wp.constant(value)s: (name, dtype, value)

    def arg(self, name: str) -> ArgSpec:
        for a in self.args:
            if a.name == name:
                return a
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        return {
            "spec_version": SPEC_VERSION,
            "family": self.family,
            "seed": self.seed,
            "name": self.name,
            "dim": list(self.dim),
            "tid_names": list(self.tid_names),
            "args": [a.to_json() for a in self.args],
            "helpers": [h.to_json() for h in self.helpers],
            "body": self.body,
            **({"launch": self.launch} if self.launch != "grid" else {}),
            **({"constants": [list(k) for k in self.constants]} if self.constants else {}),
        }

    @staticmethod
    def from_json(d: dict[str, Any]) -> "KernelSpec":
        if d.get("spec_version") != SPEC_VERSION:
            raise ValueError(f"unsupported spec_version {d.get('spec_version')!r} (expected {SPEC_VERSION})")
        return KernelSpec(
            family=d["family"],
            seed=d["seed"],
            name=d["name"],
            dim=tuple(d["dim"]),
            args=tuple(ArgSpec.from_json(a) for a in d["args"]),
            body=d["body"],
            helpers=tuple(HelperSpec.from_json(h) for h in d["helpers"]),
            tid_names=tuple(d["tid_names"]),
            launch=d.get("launch", "grid"),
            constants=tuple(tuple(k) for k in d.get("constants", ())),
        )




def derive_seed(*parts: Any) -> int:
    """A 63-bit seed from any parts, identical on every machine and Python version."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1
