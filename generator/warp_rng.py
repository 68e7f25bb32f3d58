"""Warp's random number generator (native/rand.h), written once for both oracle paths.

The arithmetic is exact uint32 arithmetic kept in Python ints or int64 NumPy arrays (a state is
below 2**32, so every product stays below 2**63): the thread-by-thread oracle calls these on one
thread's ints, the lanes (`generator.lanes_builtins`) on one int64 array of every lane's state.
"""

from __future__ import annotations

import math
import struct

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


def _f32(x: float) -> float:
    return struct.unpack("f", struct.pack("f", x))[0]


_TWO_PI_F = _f32(2.0 * _f32(math.pi))  # rand.h's 2.f * M_PI_F
_THIRD_F = _f32(1.0 / 3.0)


def sample(name: str, state: int) -> tuple[int, list[float]]:
    """wp.<name>(state), one of rand.h's uniform samplers (`generator.spec.RAND_SAMPLES`): the
    advanced state and the sample's components. Each draw is one randf, in the order of rand.h's
    statements; an angle is rounded to float32 as randf(state, 0, 2 pi) rounds it, the rest is
    float64 (within float32's tolerance of Warp's float32)."""
    def u() -> float:
        nonlocal state
        state = rand_pcg(state)
        return unit_float(state)

    def angle() -> float:
        return _f32(_TWO_PI_F * u())

    kind = name.removeprefix("sample_").removeprefix("unit_")
    if kind in ("square", "cube"):
        value = [u() - 0.5 for _ in range(2 if kind == "square" else 3)]
    elif kind == "triangle":
        r = math.sqrt(u())
        value = [1.0 - r, u() * r]
    elif kind in ("ring", "disk"):
        r = math.sqrt(u()) if kind == "disk" else 1.0
        t = angle()
        value = [r * math.cos(t), r * math.sin(t)]
    else:  # sphere / hemisphere, surface or solid: phi from 1 - 2u (1 - u for a hemisphere), then theta, then r
        phi = math.acos(1.0 - (1.0 if kind.startswith("hemi") else 2.0) * u())
        t = angle()
        r = 1.0 if kind.endswith("surface") else u() ** _THIRD_F
        value = [r * math.cos(t) * math.sin(phi), r * math.sin(t) * math.sin(phi), r * math.cos(phi)]
    return state, value
