"""Particle updates: semi-implicit Euler steps of vec3 positions and velocities under gravity,
drag and springs to a neighbour, with ground collisions reflected component-wise.

A kernel with a spring reads its neighbour's position, so it writes the new positions to
`pos_out`, not over `pos`: in place, thread i would read the element thread i+1 stores into,
a data race on a GPU (`generator.races`). Most kernels without a spring write their new state to
`pos_out` and `vel_out` too (the gradient check differentiates those), the rest update in place."""

import dataclasses

from generator.grammar import bin_, c, call, float_literal, ld, v
from generator.spec import ArgSpec, KernelSpec

NAME = "particles"
TARGET = "cuda"
OUT_OF_PLACE = 0.9


def build(rng, name, seed):
    n = rng.choice((32, 64, 128))
    pos = ArgSpec("pos", "array", "vec3", (n,), role="inout")
    vel = ArgSpec("vel", "array", "vec3", (n,), role="inout")
    dt = ArgSpec("dt", "scalar", "float32", low=0.01, high=0.1)
    args = [pos, vel, dt]
    body = [["let", "x", ld("pos", v("i"))], ["let", "u", ld("vel", v("i"))]]
    g = ["vec", "vec3", [c(0.0), float_literal(rng, -10, -1), c(0.0)]]
    force = g
    if rng.random() < 0.5:
        force = bin_("-", force, bin_("*", float_literal(rng, 0.125, 1.0), v("u")))  # drag
    spring = rng.random() < 0.5
    if spring:  # spring to the next particle (clamped index)
        j = call("min", bin_("+", v("i"), c(1, "int32")), c(n - 1, "int32"))
        body.append(["let", "d", bin_("-", ld("pos", j), v("x"))])
        force = bin_("+", force, bin_("*", float_literal(rng, 0.5, 4.0), v("d")))
    if rng.random() < 0.4:
        mass = ArgSpec("inv_mass", "array", "float32", (n,), low=0.25, high=2.0)
        args.append(mass)
        force = bin_("*", ld("inv_mass", v("i")), force)
    if rng.random() < 0.5:  # a random extra force field over position and velocity
        from generator.grammar import FloatExprs, VecExprs

        scal = FloatExprs(rng, [["comp", v("x"), [rng.randrange(3)]], ["comp", v("u"), [rng.randrange(3)]]])
        field = VecExprs(rng, {"vec3": [v("x"), v("u")]}, scal).vec("vec3", rng.randint(1, 2))
        force = bin_("+", force, bin_("*", float_literal(rng, 0.125, 1.0), field))
    body.append(["set", "u", bin_("+", v("u"), bin_("*", v("dt"), force))])
    body.append(["set", "x", bin_("+", v("x"), bin_("*", v("dt"), v("u")))])
    k = rng.randrange(3)
    floor = float_literal(rng, -1, 0)
    rest = float_literal(rng, 0.25, 1.0)
    comps_x = [["comp", v("x"), [m]] if m != k else bin_("-", bin_("*", c(2.0), floor), ["comp", v("x"), [m]]) for m in range(3)]
    comps_u = [["comp", v("u"), [m]] if m != k else bin_("*", ["neg", rest], ["comp", v("u"), [m]]) for m in range(3)]
    body.append(["if", ["cmp", "<", ["comp", v("x"), [k]], floor],
                 [["set", "x", ["vec", "vec3", comps_x]], ["set", "u", ["vec", "vec3", comps_u]]], [], []])
    if rng.random() < 0.3:  # speed limit or damping
        body.append(["set", "u", call("normalize", v("u")) if rng.random() < 0.3 else bin_("*", float_literal(rng, 0.5, 1.0), v("u"))])
    # most kernels write the new state to new arrays (which the gradient check can differentiate),
    # the rest update pos and vel in place
    separate = rng.random() < OUT_OF_PLACE
    if spring or separate:
        args[0] = dataclasses.replace(pos, role="in")
        args.append(ArgSpec("pos_out", "array", "vec3", (n,), role="out"))
    if separate:
        args[1] = dataclasses.replace(vel, role="in")
        args.append(ArgSpec("vel_out", "array", "vec3", (n,), role="out"))
    body.append(["store", "pos_out" if spring or separate else "pos", [v("i")], v("x")])
    body.append(["store", "vel_out" if separate else "vel", [v("i")], v("u")])
    if rng.random() < 0.4:  # per-particle kinetic energy
        args.append(ArgSpec("energy", "array", "float32", (n,), role="out"))
        body.append(["store", "energy", [v("i")], bin_("*", float_literal(rng, 0.25, 1.0), call("dot", v("u"), v("u")))])
    return KernelSpec(NAME, seed, name, (n,), tuple(args), body)
