"""Warp's random number generator (native/rand.h), written once for both oracle paths.

The arithmetic is exact uint32 arithmetic kept in Python ints or int64 NumPy arrays (a state is
below 2**32, so every product stays below 2**63): the thread-by-thread oracle calls these on one
thread's ints, the lanes (`generator.lanes_builtins`) on one int64 array of every lane's state.
"""

from __future__ import annotations

import math

import numpy as np

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


_F32 = np.float32
_TWO_PI_F = _F32(2.0) * _F32(math.pi)  # 2.f * M_PI_F
_THIRD_F = float(_F32(1.0) / _F32(3.0))  # 1.f / 3.f


def sample(kind: str, state: int) -> tuple[int, np.ndarray]:
    """Warp's sample_<kind>(state) (native/rand.h): (the advanced state, the float vector). Each
    randf is exact (its top 24 bits); randf(state, 0, 2 pi) is rounded to float32 as Warp rounds
    it; the trigonometry, roots and powers of those float32 values are float64 (the oracle's)."""
    def u():
        nonlocal state
        state = rand_pcg(state)
        return unit_float(state)

    def angle():
        return float(_F32(_TWO_PI_F * _F32(u())))

    if kind in ("sample_unit_square", "sample_unit_cube"):
        out = [u() - 0.5 for _ in range(2 if kind == "sample_unit_square" else 3)]
    elif kind == "sample_triangle":
        r = math.sqrt(u())
        out = [1.0 - r, u() * r]
    elif kind in ("sample_unit_ring", "sample_unit_disk"):
        r = math.sqrt(u()) if kind == "sample_unit_disk" else 1.0
        t = angle()
        out = [r * math.cos(t), r * math.sin(t)]
    else:  # the sphere and hemisphere samples: phi, theta, then the radius inside a solid one
        phi = math.acos(1.0 - (1.0 if "hemisphere" in kind else 2.0) * u())
        t = angle()
        r = 1.0 if kind.endswith("_surface") else math.pow(u(), _THIRD_F)
        out = [r * math.cos(t) * math.sin(phi), r * math.sin(t) * math.sin(phi), r * math.cos(phi)]
    return state, np.array(out, dtype=np.float64)
