"""Races: what two threads can do to one array element, and the families' kernels free of it."""

import sys

import numpy as np
import pytest

from generator.families import FAMILIES, INPUT_SETS, build_spec
from generator.inputs import make_inputs
from generator.races import first_race
from generator.spec import ArgSpec, KernelSpec

I = ["v", "i"]
X_I = ["ld", "x", [I]]


def _spec(body, args, dim=(8,)):
    return KernelSpec(family="arith", seed=0, name="k", dim=dim, args=tuple(args), body=body)


def _arr(name, n=8, role="in", dtype="float32"):
    return ArgSpec(name, "array", dtype, (n,), role)


def _inputs(spec):
    return {a.name: (np.linspace(-1, 1, a.shape[0]).astype(np.float32) if a.dtype == "float32"
                     else np.arange(a.shape[0], dtype=np.int32) % 3) for a in spec.args}


def _mod8(e):
    return ["mod", e, ["c", 8, "int32"]]


NEXT = _mod8(["bin", "+", I, ["c", 1, "int32"]])

RACES = {
    # thread i reads y[i + 1] and stores y[i]: in place, a neighbour's element
    "a neighbour's element read where it is stored": (
        [["store", "y", [I], ["bin", "+", ["ld", "y", [I]], ["ld", "y", [NEXT]]]]], [_arr("y", role="inout")]),
    "two threads storing one element": (
        [["store", "y", [["mod", I, ["c", 4, "int32"]]], X_I]], [_arr("x"), _arr("y", role="out")]),
    "an element updated atomically and read plainly": (
        [["atomic", "add", "s", [["c", 0, "int32"]], X_I], ["store", "y", [I], ["ld", "s", [["c", 0, "int32"]]]]],
        [_arr("x"), _arr("s", n=1, role="inout"), _arr("y", role="out")]),
    "an element updated atomically and stored into": (
        [["atomic", "add", "s", [["c", 0, "int32"]], X_I],
         ["if", ["cmp", "==", I, ["c", 3, "int32"]], [["store", "s", [["c", 0, "int32"]], ["c", 0.0, "float32"]]], [], []]],
        [_arr("x"), _arr("s", n=1, role="inout")]),
    # the index comes from the data: threads 0, 3 and 6 of x = arange % 3 all store y[0]
    "a data-dependent index": (
        [["store", "y", [["ld", "x", [I]]], ["c", 1, "int32"]]],
        [_arr("x", dtype="int32"), _arr("y", role="out", dtype="int32")]),
}

NO_RACES = {
    "every thread on its own element, in place": (
        [["store", "y", [I], ["bin", "*", ["ld", "y", [I]], ["c", 2.0, "float32"]]]], [_arr("y", role="inout")]),
    "neighbours read from an input, stored to an output": (
        [["store", "y", [I], ["bin", "+", X_I, ["ld", "x", [NEXT]]]]], [_arr("x"), _arr("y", role="out")]),
    "atomics only, from every thread into one element": (
        [["atomic", "add", "s", [["c", 0, "int32"]], X_I], ["atomic", "max", "m", [["c", 0, "int32"]], X_I]],
        [_arr("x"), _arr("s", n=1, role="out"), _arr("m", n=1, role="out")]),
    "an atomic whose value is read from the target's neighbour input": (
        [["atomic", "add", "s", [_mod8(I)], ["ld", "x", [NEXT]]]], [_arr("x"), _arr("s", role="out")]),
}


@pytest.mark.parametrize("what", sorted(RACES))
def test_a_race_is_found_and_named(what):
    body, args = RACES[what]
    spec = _spec(body, args)
    reason = first_race(spec, _inputs(spec))
    assert reason and "thread" in reason, what


@pytest.mark.parametrize("what", sorted(NO_RACES))
def test_no_race_where_each_element_has_one_owner_or_only_atomics(what):
    body, args = NO_RACES[what]
    spec = _spec(body, args)
    assert first_race(spec, _inputs(spec)) is None, what


def test_no_family_emits_a_kernel_with_a_race():
    # particles wrote its positions in place while reading a neighbour's (half its kernels)
    for family in sorted(FAMILIES):
        for seed in range(24):
            spec = build_spec(family, seed)
            for k in range(INPUT_SETS):
                assert first_race(spec, make_inputs(spec, k)) is None, (family, seed, k)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
