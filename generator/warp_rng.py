"""Warp's random number generator (native/rand.h), written once for both oracle paths.

The arithmetic is exact uint32 arithmetic kept in Python ints or int64 NumPy arrays (a state is
below 2**32, so every product stays below 2**63): the thread-by-thread oracle calls these on one
thread's ints, the lanes (`generator.lanes_builtins`) on one int64 array of every lane's state.
"""

from __future__ import annotations

_M32 = 0xFFFFFFFF


def rand_pcg(state):
    """Warp's rand_pcg, in exact uint32 arithmetic (an int, or an int64 array lane by lane)."""
    b = (state * 747796405 + 2891336453) & _M32
    c = (((b >> ((b >> 28) + 4)) ^ b) * 277803737) & _M32
    return ((c >> 22) ^ c) & _M32


def rand_init(seed, offset=None):
    """Warp's rand_init(seed) / rand_init(seed, offset): the first state of a generator."""
    if offset is None:
        return rand_pcg(seed & _M32)
    return rand_pcg(((seed & _M32) + rand_pcg(offset & _M32)) & _M32)


def rand_int(kind, state, lo=None, hi=None):
    """wp.randi's (int32) or wp.randu's (uint32) value from an advanced state: the state itself,
    or state % (hi - lo) + lo, in Warp's uint32 arithmetic (int bounds convert modulo 2**32)."""
    r = state if lo is None else ((state % ((hi - lo) & _M32)) + (lo & _M32)) & _M32
    return r if kind == "randu" else (r ^ 0x80000000) - 0x80000000  # randi: the bits as an int32


def unit_float(state):
    """wp.randf's value in [0, 1) from an advanced state: its top 24 bits."""
    return (state >> 8) * (1.0 / 16777216.0)
