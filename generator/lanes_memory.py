"""The kernel's arrays as the lanes see them: element indices, loads, stores and atomics, with a
record of who touched each element so that running the threads together gives the bits of
running them in order, or raises Unsure.
"""

from __future__ import annotations

import numpy as np

from generator import spec_walk
from generator.lanes_values import Unsure, full, is_bool, is_float, is_int, scalar_lanes
from generator.spec import KernelSpec


def written_arrays(spec: KernelSpec) -> set[str]:
    """The arrays some statement of the kernel or a helper stores into or updates atomically."""
    written: set[str] = set()
    for s in spec_walk.statements(*spec_walk.spec_bodies(spec)):
        match s:
            case ["store", name, _, _] | ["atomic", _, name, _, _]:
                written.add(name)
    return written


class _Track:
    """Who touched each element of an array the kernel writes: `writer` the thread that stored
    into it (-1 none), `reader` the highest thread that read it (-1 none), `atomic` whether an
    atomic updated it, `last` the highest thread whose atomic_add reached it.

    One thread after another, a read sees every write of the threads before it and none of the
    threads after it. All at once, a read sees the writes already executed. The two agree when
    an element stored into by thread t is read by no other thread after the store, and was read
    before it only by threads below t (they would have run before t); elements updated
    atomically are not read or stored into at all."""

    __slots__ = ("writer", "reader", "atomic", "last")

    def __init__(self, size: int):
        self.writer = np.full(size, -1, dtype=np.int64)
        self.reader = np.full(size, -1, dtype=np.int64)
        self.atomic = np.zeros(size, dtype=np.bool_)
        self.last = np.full(size, -1, dtype=np.int64)


class Memory:
    """The arrays, one row per element (a vec3 element is a row of 3; views, so writes land in
    the caller's arrays), and a `_Track` of each array in `written`.

    `sets` > 1: that many input sets at once, each array stacked on a leading set axis; set k's
    threads are lanes k*threads .. (k+1)*threads - 1 and index set k's elements only."""

    def __init__(self, spec: KernelSpec, arrays: dict[str, np.ndarray], lane: np.ndarray, sets: int, threads: int,
                 written: set):
        self.shape = {a.name: tuple(a.shape) for a in spec.args if a.kind == "array"}
        lead = 1 if sets > 1 else 0
        self.flat = {name: arr.reshape((-1,) + arr.shape[lead + len(self.shape[name]):]) for name, arr in arrays.items()}
        self.sets = sets
        self.lane = lane
        if sets > 1:  # where each lane's set starts, per array (in elements)
            self.base = {name: (lane // threads) * int(np.prod(self.shape[name], dtype=np.int64)) for name in self.flat}
        self.track = {name: _Track(self.flat[name].shape[0]) for name in written if name in arrays}

    def locate(self, name: str, index: list, evaluate, m):
        """Flat element indices of the active lanes (and the lanes), each index expression
        evaluated (`evaluate`) and checked against the shape in turn."""
        shape = self.shape[name]
        if len(index) != len(shape):
            raise Unsure("an index with a different rank")
        flat = None
        for e, size in zip(index, shape):
            k = evaluate(e)
            if not is_int(k) or not scalar_lanes(k):
                raise Unsure("an index that is not an integer")
            k = full(k, m)[m]
            if k.size and (k.min() < -size or k.max() >= size):
                raise Unsure("an index out of bounds")
            k = k % size
            flat = k if flat is None else flat * size + k
        if self.sets > 1:
            flat = flat + self.base[name][m]
        return flat, self.lane[m]

    def load(self, name: str, flat, lanes, m):
        """The elements `flat` of the active lanes, as one lane value (zeros elsewhere)."""
        self._read(name, flat, lanes)
        src = self.flat[name]
        out = np.zeros((m.shape[0],) + src.shape[1:], dtype=src.dtype)
        out[m] = src[flat]
        return out

    def store(self, name: str, flat, lanes, v, m) -> None:
        dst = self.flat[name]
        if dst.dtype.kind != "f" and is_float(v):
            raise Unsure("a float stored into an integer array")
        if isinstance(v, tuple) or np.shape(v)[1:] != dst.shape[1:] and isinstance(v, np.ndarray):
            raise Unsure("a value stored into an element of another shape")
        if dst.ndim > 1 and not isinstance(v, np.ndarray):
            raise Unsure("a scalar stored into a vector element")
        self._write(name, flat, lanes)
        dst[flat] = full(v, m)[m]

    def atomic(self, op: str, name: str, flat, lanes, v, m) -> None:
        """wp.atomic_<op> of the active lanes' values `v` (`generator.spec.ATOMIC_OPS`)."""
        dst = self.flat[name]
        if op in ("exch", "cas"):
            return self._swap(op, name, flat, v, m)
        if isinstance(v, tuple) or (isinstance(v, np.ndarray) and v.shape[1:] != dst.shape[1:]) or \
                (dst.ndim > 1 and not isinstance(v, np.ndarray)):
            raise Unsure("an atomic of another element shape")
        if dst.ndim > 1 and op not in ("add", "sub"):
            raise Unsure("an atomic min/max of vectors")
        v = full(v, m)[m]
        if is_bool(v):
            v = v.astype(np.int64)
        if dst.dtype.kind != "f" and v.dtype.kind == "f":
            raise Unsure("a float added atomically into an integer array")
        tr = self.track[name]
        if (tr.writer[flat] != -1).any() or (tr.reader[flat] != -1).any():
            raise Unsure("an atomic on an element a plain access touched")
        if dst.dtype.kind == "f" and not np.isfinite(v).all():
            raise Unsure("a non-finite value in an atomic")
        if op in ("add", "sub"):
            if dst.dtype.kind == "f":
                # the float sum's bits depend on its order: the threads' contributions must
                # arrive in thread order, as they do one thread after another
                if (lanes < tr.last[flat]).any():
                    raise Unsure("float atomic_add contributions out of thread order")
                tr.last[flat] = lanes
            (np.add if op == "add" else np.subtract).at(dst, flat, v)
        elif op in ("and", "or", "xor"):
            if dst.dtype.kind == "f" or v.dtype.kind == "f":
                raise Unsure("a bitwise atomic of floats")
            {"and": np.bitwise_and, "or": np.bitwise_or, "xor": np.bitwise_xor}[op].at(dst, flat, v.astype(dst.dtype))
        elif dst.dtype.kind == "f" and ((v == 0).any() or (dst[flat] == 0).any()):
            # Python's min(cur, v) keeps cur unless v < cur: of 0.0 and -0.0 the first stays,
            # where NumPy's minimum may take either; one lane after another, as the threads do
            less = op == "min"
            for f, x in zip(flat.tolist(), v.tolist()):
                if (x < dst[f]) if less else (x > dst[f]):
                    dst[f] = x
        elif op == "min":
            np.minimum.at(dst, flat, v)
        elif op == "max":
            np.maximum.at(dst, flat, v)
        else:
            raise ValueError(op)
        tr.atomic[flat] = True

    def _swap(self, op: str, name: str, flat, v, m) -> None:
        """wp.atomic_exch / atomic_cas of integer values the same in every lane (the grammar's
        flags): the element's final value does not depend on the threads' order."""
        dst, tr = self.flat[name], self.track[name]
        compare, value = v if op == "cas" else (None, v)
        if dst.ndim > 1 or dst.dtype.kind not in "iu" or not all(isinstance(x, int) for x in (value, compare or 0)):
            raise Unsure(f"atomic_{op} of values that differ between lanes or are not integers")
        if (tr.writer[flat] != -1).any() or (tr.reader[flat] != -1).any():
            raise Unsure("an atomic on an element a plain access touched")
        if op == "exch":
            dst[flat] = value
        else:  # the first lane that finds `compare` sets `value`; the rest find `value`
            dst[flat] = np.where(dst[flat] == compare, value, dst[flat])
        tr.atomic[flat] = True

    def _read(self, name, flat, lanes):
        tr = self.track.get(name)
        if tr is None:
            return
        w = tr.writer[flat]
        if ((w != -1) & (w != lanes)).any():
            raise Unsure("a thread reads what another thread stored")
        if tr.atomic[flat].any():
            raise Unsure("a thread reads what threads update atomically")
        np.maximum.at(tr.reader, flat, lanes)

    def _write(self, name, flat, lanes):
        tr = self.track[name]
        w = tr.writer[flat]
        if ((w != -1) & (w != lanes)).any():
            raise Unsure("two threads store into one element")
        if (tr.reader[flat] > lanes).any():
            raise Unsure("a thread stores into what a later thread read")
        if tr.atomic[flat].any():
            raise Unsure("a thread stores into what threads update atomically")
        if flat.size > 1 and np.unique(flat).size < flat.size:
            raise Unsure("two threads store into one element")
        tr.writer[flat] = lanes
