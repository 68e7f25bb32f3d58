"""Warp launches on the CPU, recorded while the wheel's own code runs and replayed on a kernel.

`recording(on_launch)` hooks Warp's launch (the public `wp.launch` and the one `wp.launch_tiled`
and the library call inside Warp): each forward CPU launch of a concrete kernel is handed to
`on_launch(kernel, launch, reason)` with either `launch`, the arguments before and after it ran
(`encode`), or the `reason` it cannot be recorded. `replay(kernel, launch)` builds the recorded
arguments again, launches the kernel on the CPU and returns what each array argument holds
afterwards, for a caller to compare with what the recording saw.

What a launch holds is small by construction (`CAP_BYTES` of array data, `CAP_THREADS`
threads); it is plain data, never code: array arguments as their raw bytes (base64), their dtype
and shape, value arguments as the bytes of the parameter's type. Struct, object-id (`uint64`),
indexed, fabric and generic arguments, arrays that overlap, and launches over the caps are not
recorded, each with its reason; so are launches inside a CPU graph capture, which do not run
when launched. Only this room imports `warp._src`.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import inspect
import math

import numpy as np

import warp as wp
from warp._src import context as _context
from warp._src import types as _types

CAP_BYTES = 16 * 1024  # all array arguments of one launch, before it runs (a release row stays small)
CAP_THREADS = 1 << 16


class NotRecordable(Exception):
    """A launch whose arguments cannot be stored as plain data; the message is the reason code."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def _np_dtype(scalar) -> np.dtype:
    return np.dtype(np.bool_) if scalar is _types.bool else np.dtype(wp.dtype_to_numpy(scalar))


def _value_type(t) -> bool:
    return t in _types.scalar_types or t is _types.bool or _types.type_is_vector(t) or _types.type_is_matrix(t)


def _scalar_of(t):
    return t if t in _types.scalar_types or t is _types.bool else _types.type_scalar_type(t)


def _array_bytes(a) -> bytes:
    return a.numpy().tobytes() if a.size else b""


def _bf16_floats(t, raw) -> list[float]:
    """A bfloat16 value's numbers (not its bits): a Python number, a sequence, or a Warp vector or
    matrix, whose own storage is bits (np.asarray of a vec of bfloat16 gives the uint16 bits)."""
    if t is _types.bfloat16:
        return [float(raw)]
    if isinstance(raw, t):
        return list(_types.bfloat16_bits_to_float(int(b)) for b in np.asarray(raw).reshape(-1))
    return [float(x) for x in np.asarray(raw, dtype=np.float64).reshape(-1)]


def _encode_value(t, value) -> str:
    if t is _types.uint64:
        raise NotRecordable("uint64_value")  # an object's id (a mesh, a volume, ...), not data
    if isinstance(value, _types.array) or _types.type_is_struct(type(value)):
        raise NotRecordable("value_type")
    raw = getattr(value, "value", value)
    try:
        if _scalar_of(t) is _types.bfloat16:  # numpy holds it as uint16 bits: convert as Warp's launch packs it
            flat = np.array([_types.float_to_bfloat16_bits(float(x)) for x in _bf16_floats(t, raw)], np.uint16)
        else:
            flat = np.asarray(raw, dtype=_np_dtype(_scalar_of(t))).reshape(-1)
    except (TypeError, ValueError) as e:
        raise NotRecordable("value_type") from e
    if flat.size != _types.type_length(t):
        raise NotRecordable("value_shape")
    return _b64(flat.tobytes())


def _encode_array(t, value) -> dict:
    if value is None:
        return {"kind": "null"}
    if type(value) is not _types.array or not value.device.is_cpu or not value.is_contiguous:
        raise NotRecordable("array_kind")
    if not _value_type(value.dtype) or not _types.types_equal(value.dtype, t.dtype) or value.ndim != t.ndim:
        raise NotRecordable("array_dtype")
    return {"kind": "array", "dtype": _types.type_repr(value.dtype), "shape": list(value.shape),
            "in": _b64(_array_bytes(value))}


def encode(kernel, bound: dict) -> tuple[dict, list]:
    """(the launch before it runs, the array arguments in order, to read again after it ran);
    raises NotRecordable."""
    if kernel.is_generic:
        raise NotRecordable("generic")
    if _context.runtime.get_device(bound["device"]).is_capturing:
        # a CPU graph capture (APIC) records the launch into a graph: it does not run now, and the
        # arrays hold what the capture's memory holds (measured: bytes that differ run to run)
        raise NotRecordable("graph_capture")
    params = kernel.adj.args
    values = list(bound.get("inputs") or []) + list(bound.get("outputs") or [])
    if len(values) != len(params):
        raise NotRecordable("argument_count")
    dim = [bound["dim"]] if isinstance(bound["dim"], int) else [int(d) for d in bound["dim"]]
    if not _fits(dim):
        raise NotRecordable("over_thread_cap")
    args, arrays, spans, total = [], [], [], 0
    for p, v in zip(params, values):
        if _types.is_array(p.type):
            a = _encode_array(p.type, v)
            if a["kind"] == "array":
                arrays.append(v)
                total += v.capacity
                spans.append((v.ptr, v.ptr + v.capacity))
        elif _value_type(p.type):
            a = {"kind": "value", "bytes": _encode_value(p.type, v)}
            total += len(a["bytes"]) * 3 // 4
        else:
            raise NotRecordable("struct_argument" if _types.type_is_struct(p.type) else "argument_type")
        args.append({"name": p.label, **a})
    if total > CAP_BYTES:
        raise NotRecordable("over_byte_cap")
    spans.sort()
    if any(b[0] < a[1] for a, b in zip(spans, spans[1:]) if a[0] is not None and b[0] is not None):
        raise NotRecordable("aliased_arrays")
    block_dim = bound.get("block_dim")
    if block_dim is not None and not 0 <= int(block_dim) <= 1024:
        raise NotRecordable("block_dim")
    if len(args) > 256:
        raise NotRecordable("argument_count")
    return {"dim": dim, "block_dim": _resolved_block_dim(block_dim), "args": args}, arrays


def _resolved_block_dim(block_dim) -> int:
    """The block size the CPU launch really runs with, read from Warp as it stands (a test that
    turns `wp.config.enable_cpu_blocks` on runs cooperative blocks; with it off, any request runs
    as blocks of 1): what a replay needs to run the same way."""
    return int(_context._resolve_launch_block_dim(_context.runtime.get_device("cpu"), block_dim))


@contextlib.contextmanager
def zeroed_cpu_memory():
    """While open, every allocation of Warp's CPU allocator starts zeroed: an array the wheel's
    test makes without data (`wp.empty`, `wp.array(shape=...)`, Warp's own scratch) would hold
    what the heap held before, and a launch recorded with it would differ run to run (measured:
    `test_array_subclass`'s `make_array(cls, shape=2)`, a launch_mismatch on re-validation)."""
    cls = _context.CpuDefaultAllocator
    original = cls.allocate

    def allocate(self, size_in_bytes):
        ptr = original(self, size_in_bytes)
        if size_in_bytes:
            ctypes.memset(ptr, 0, size_in_bytes)
        return ptr

    cls.allocate = allocate
    try:
        yield
    finally:
        cls.allocate = original


@contextlib.contextmanager
def _cpu_blocks(module, block_dim: int | None):
    """Warp set to run `block_dim` as recorded: cooperative CPU blocks on where it is over 1, and
    the module's names hashed while it loads for it (a module whose names carry no hash,
    `strip_hash`, would load the binary it compiled for blocks of 1 from the cache under the same
    name: measured, the wheel's `test_cpu_block_dim` kernels replayed as blocks of 1)."""
    saved = wp.config.enable_cpu_blocks, module.options["strip_hash"]
    wide = block_dim is not None and block_dim > 1
    wp.config.enable_cpu_blocks = wide
    module.options["strip_hash"] = saved[1] and not wide
    try:
        yield
    finally:
        wp.config.enable_cpu_blocks, module.options["strip_hash"] = saved


def _fits(dim: list) -> bool:
    """At most 4 dimensions, each and their product at most CAP_THREADS (an empty launch with one
    huge dimension too: measured, one test of the wheel launches 0 x 2**31 + 1 threads)."""
    return 1 <= len(dim) <= 4 and all(0 <= d <= CAP_THREADS for d in dim) and math.prod(dim) <= CAP_THREADS


def _bound(kernel, *args, **kwargs) -> dict:
    b = inspect.signature(_ORIGINAL).bind(kernel, *args, **kwargs)
    b.apply_defaults()
    return dict(b.arguments)


_ORIGINAL = _context.launch


def _is_forward_cpu(bound: dict) -> bool:
    if bound["adjoint"] or bound["record_cmd"] or bound["stream"] is not None:
        return False
    return _context.runtime.get_device(bound["device"]).is_cpu


@contextlib.contextmanager
def recording(on_launch):
    """While open, each forward CPU launch calls `on_launch(kernel, launch or None, reason or
    None)` after it ran; the launch itself runs as it would without the hook."""

    def hooked(kernel, *args, **kwargs):
        try:
            bound = _bound(kernel, *args, **kwargs)
            wanted = _is_forward_cpu(bound)
        except Exception:  # noqa: BLE001 - Warp's own launch says what is wrong with the call
            wanted = False
        if not wanted:
            return _ORIGINAL(kernel, *args, **kwargs)
        try:
            launch, arrays = encode(kernel, bound)
            reason = None
        except NotRecordable as e:
            launch, arrays, reason = None, [], str(e)
        result = _ORIGINAL(kernel, *args, **kwargs)
        if launch is not None:
            wp.synchronize_device("cpu")
            after = iter(_b64(_array_bytes(a)) for a in arrays)
            for arg in launch["args"]:
                if arg["kind"] == "array":
                    out = next(after)
                    arg["out"] = None if out == arg["in"] else out
        on_launch(kernel, launch, reason)
        return result

    saved = (wp.launch, _context.launch)
    wp.launch = _context.launch = hooked
    try:
        yield
    finally:
        wp.launch, _context.launch = saved


def _decode_value(t, text: str):
    flat = np.frombuffer(_unb64(text), dtype=_np_dtype(_scalar_of(t)))
    if flat.size != _types.type_length(t):
        raise ValueError("a value argument's bytes do not fit its parameter's type")
    items = [x.item() for x in flat]
    if _scalar_of(t) is _types.bfloat16:  # the bits back to the number they encode
        items = [_types.bfloat16_bits_to_float(b) for b in items]
    if t in _types.scalar_types or t is _types.bool:
        return t(items[0]) if t is not _types.bool else bool(items[0])
    return t(*items)


def _decode_array(t, arg: dict):
    np_dtype = _np_dtype(_scalar_of(t.dtype))
    inner = () if t.dtype in _types.scalar_types or t.dtype is _types.bool else tuple(
        [_types.type_length(t.dtype)] if _types.type_is_vector(t.dtype) else t.dtype._shape_)
    shape = tuple(int(s) for s in arg["shape"])
    data = np.frombuffer(_unb64(arg["in"]), dtype=np_dtype)
    if len(shape) != t.ndim or data.size != math.prod(shape + inner) or _types.type_repr(t.dtype) != arg["dtype"]:
        raise ValueError(f"array argument {arg['name']!r} does not fit its parameter")
    return wp.array(data.reshape(shape + inner).copy(), dtype=t.dtype, shape=shape, device="cpu")


def replay(kernel, launch: dict) -> list[str | None]:
    """Launch `kernel` on the CPU with the recorded arguments; returns, per argument in order, the
    base64 of an array argument's bytes after the launch (None for a value or a null array).
    Raises ValueError where the launch does not fit the kernel's parameters or the caps."""
    params = kernel.adj.args
    if [p.label for p in params] != [a["name"] for a in launch["args"]]:
        raise ValueError("the recorded arguments are not the kernel's parameters")
    if not _fits(launch["dim"]):
        raise ValueError("the recorded launch is over the thread cap")
    if sum(len(a.get("in") or "") * 3 // 4 for a in launch["args"]) > CAP_BYTES + 16 * len(launch["args"]):
        raise ValueError("the recorded arrays are over the byte cap")
    values = []
    for p, a in zip(params, launch["args"]):
        if a["kind"] == "null" and _types.is_array(p.type):
            values.append(None)
        elif a["kind"] == "array" and _types.is_array(p.type):
            values.append(_decode_array(p.type, a))
        elif a["kind"] == "value" and _value_type(p.type):
            values.append(_decode_value(p.type, a["bytes"]))
        else:
            raise ValueError(f"argument {a['name']!r} is not of its parameter's kind")
    block_dim = launch["block_dim"]
    with _cpu_blocks(kernel.module, block_dim):
        _ORIGINAL(kernel, dim=tuple(launch["dim"]), inputs=values, device="cpu", block_dim=block_dim)
        wp.synchronize_device("cpu")
    return [_b64(_array_bytes(v)) if isinstance(v, _types.array) else None for v in values]
