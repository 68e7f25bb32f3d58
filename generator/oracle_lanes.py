"""The oracle's fast path: a spec evaluated for all threads at once, one NumPy array per value.

`generator.oracle.Interpreter` runs the threads one after another, in Python. This module runs
the same statements over arrays of lanes (lane k is the k-th thread of that order), with a mask
of the lanes that execute each statement. It must give the bits the thread-by-thread interpreter
gives, or give up: whenever it cannot be sure, it raises `Unsure` and `run_oracle` evaluates the
spec thread by thread from the start. It gives up on
- constructs it does not evaluate (tiles, helpers with vector parameters; checked before it
  starts, `supported`);
- anything that would raise in the thread-by-thread interpreter (a division by zero, a math
  domain error, an index out of bounds, a non-finite value cast to an integer, a helper without
  a return), so that interpreter raises the exception itself, with its message;
- any memory access whose result would depend on running the threads in order rather than
  together (`lanes_memory._Track`): an element stored by one thread and read by another after the store or
  by a later thread before it, or stored by two; a float atomic_add whose contributions would
  not arrive in thread order; a plain access to an element updated atomically; and integers
  that might leave int64.

Values are Python scalars where every lane has the same value (literals, scalar arguments) and
float64, int64 or bool arrays otherwise, lanes first: a vec3 is a (lanes, 3) array, a mat33 a
(lanes, 3, 3) one, a transform a tuple of two. Vector and matrix operations are the NumPy ones the
thread-by-thread interpreter calls, on stacks (matmul, det, cross), or its sums written out in
its order (dot); `generator/oracle_test.py` checks the bits on the machine it runs on. Arithmetic
is IEEE on both paths; the math functions whose NumPy versions may round differently from
Python's `math` (all but sqrt, floor, ceil, trunc, abs, min, max) are called through `math`,
lane by lane, on the lanes that execute.

This module is the entry (`supported`, `run_lanes`, `run_lanes_sets`, `Unsure`); the rooms of the
lanes, one concept each:
  lanes_support   which specs the lanes evaluate (decided from the spec alone)
  lanes_values    lane values: their kinds, truth, casts, assignment under a mask (and `Unsure`)
  lanes_ops       the operators + - * / %, unary -, comparisons
  lanes_builtins  the scalar builtins; lanes_vector the vector, matrix and quaternion ones
  lanes_memory    the arrays: indices, loads, stores, atomics and who touched each element
  lanes_eval      `Lanes`: statements and expressions under masks of the executing lanes
"""

from __future__ import annotations

import numpy as np

from generator.lanes_eval import Lanes
from generator.lanes_support import supported
from generator.lanes_values import Unsure
from generator.spec import KernelSpec

__all__ = ["Lanes", "Unsure", "run_lanes", "run_lanes_sets", "supported"]


def _set_values(values: list, threads: int):
    """One scalar argument's (or struct field's) values in each set, as one lane value: the
    value itself where every set has the same one (bit for bit), else one per lane, set by set."""
    first = values[0]
    if isinstance(first, np.ndarray):  # a vector struct field: a row per lane
        return np.concatenate([np.broadcast_to(v, (threads,) + v.shape) for v in values])
    if all(type(v) is type(first) and repr(v) == repr(first) for v in values[1:]):
        return first
    if {type(v) for v in values} not in ({int}, {float}):
        raise Unsure("scalar arguments of different kinds across input sets")
    return np.repeat(np.array(values, dtype=np.float64 if isinstance(first, float) else np.int64), threads)


def run_lanes_sets(spec: KernelSpec, prepared: list[tuple[dict, dict]]) -> None:
    """`run_lanes` of several input sets at once (each `prepare`d: arrays, scalars), into each
    set's arrays, or raise Unsure. Every lane computes what it computes in its own set's run: the
    sets share no element, and a scalar argument that differs between sets is a lane value."""
    first_arrays, first_scalars = prepared[0]
    stacked = {name: np.stack([p[0][name] for p in prepared]) for name in first_arrays}
    lanes = Lanes(spec, stacked, None, sets=len(prepared))
    env = {}
    for name, value in first_scalars.items():
        if isinstance(value, dict):
            env[name] = {f: _set_values([p[1][name][f] for p in prepared], lanes.threads) for f in value}
        else:
            env[name] = _set_values([p[1][name] for p in prepared], lanes.threads)
    _run_threads(spec, lanes, env)
    for k, (arrays, _) in enumerate(prepared):
        for name in arrays:
            arrays[name][...] = stacked[name][k]


def run_lanes(spec: KernelSpec, arrays: dict[str, np.ndarray], scalars: dict, taken: set | None) -> None:
    """Evaluate every thread of `spec` at once into `arrays` (and `taken`), or raise Unsure."""
    lanes = Lanes(spec, arrays, taken)
    env = dict(scalars)
    for name, value in scalars.items():
        if isinstance(value, dict):  # a struct: its vector fields become lane values
            env[name] = {f: (np.broadcast_to(v, (lanes.n,) + v.shape).copy() if isinstance(v, np.ndarray) else v)
                         for f, v in value.items()}
    _run_threads(spec, lanes, env)


def _run_threads(spec: KernelSpec, lanes: Lanes, env: dict) -> None:
    """The kernel body on every lane, each lane's thread ids bound (a lane's thread within its set)."""
    ids = np.unravel_index(lanes.lane % lanes.threads, spec.dim) if spec.dim else ()
    for name, ix in zip(spec.tid_names, ids):
        env[name] = ix.astype(np.int64)
    with np.errstate(all="ignore"):
        lanes.block(spec.body, env, np.ones(lanes.n, dtype=np.bool_))
