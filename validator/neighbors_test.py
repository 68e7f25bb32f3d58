"""The neighbors family's construct on the real compile: a `wp.HashGrid` argument (kind hash_grid,
passed as its `wp.uint64` id, rebuilt from its points) and the hash-grid query loop. The oracle's
brute force is held to the neighbour sums written out in NumPy here, Warp's CPU run and gradient
to the oracle (a pair exactly at the radius included on both sides), the record to the pair schema
(and the schema to refusing malformed grids), the safety wall to exactly the new forms, and the
spec check to the grid's build parameters (a forged cell width fails it, and the fault audit draws
such forgeries)."""

import sys

import numpy as np
import pytest

from extractor import warp_adapter
from generator import oracle
from generator.inputs import make_inputs
from generator.render import render_source
from generator.spec import HASH_GRID, ArgSpec, KernelSpec
from pipeline.chunk import build_record
from validator import checks, object_testing

V = lambda name: ["v", name]  # noqa: E731 - the spec's own shorthand
N = 12
R = 0.5

_K = "import warp as wp\n\n@wp.kernel\ndef k(grid: wp.uint64, pts: wp.array(dtype=wp.vec3), y: wp.array(dtype=wp.float32)):\n"
# near misses of the family's forms: the safety wall refuses each, for this reason
NEAR_MISSES = {
    _K + "    q = wp.hash_grid_query(grid, pts[0], 0.5)\n    j = int(0)\n    while wp.hash_grid_query_next(q, j):\n"
         "        y[0] = y[0] + 1.0\n": None,  # the forms themselves: admitted
    "import warp as wp\n\n@wp.func\ndef f(grid: wp.uint64) -> wp.float32:\n    return 1.0\n":
        "parameter grid of f",  # an object's id only as a kernel's parameter
    "import warp as wp\n\n@wp.struct\nclass S:\n    g: wp.uint64\n": "struct field at line 5",
    _K + "    g = wp.HashGrid(4, 4, 4)\n": "wp.HashGrid",  # building an object in the kernel
    _K + "    q = wp.mesh_query_point(grid, pts[0], 1.0)\n": "wp.mesh_query_point",  # another object's query
    _K + "    q = wp.hash_grid_query(grid, pts[0], 0.5)\n    y[0] = q.__class__\n": "attribute access .__class__",
    _K + "    y[0] = grid.id\n": "attribute access .id",
}


def _spec() -> KernelSpec:
    """y[i] = sum over the neighbours j within R of x[j] * exp(-d2); count[i] their number."""
    inner = [["atomic", "add", "y", [V("i")], ["bin", "*", ["ld", "x", [V("j")]], ["call", "exp", [["neg", V("d2")]]]]],
             ["atomic", "add", "count", [V("i")], ["c", 1, "int32"]]]
    args = (ArgSpec("pts", "array", "vec3", (N,), low=-1.0, high=1.0),
            ArgSpec("grid", HASH_GRID, "uint64", (4, 4, 4), points="pts", cell=0.25),
            ArgSpec("x", "array", "float32", (N,)), ArgSpec("y", "array", "float32", (N,), role="out"),
            ArgSpec("count", "array", "int32", (N,), role="out"))
    body = [["neighbors", "j", "grid", "pts", V("i"), ["c", R, "float32"], "d2", inner]]
    return KernelSpec("neighbors", 0, "t", (N,), args, body)


def _numpy(inputs) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(inputs["pts"], dtype=np.float64)
    d2 = ((p[:, None, :] - p[None, :, :]) ** 2).sum(axis=2)
    near = d2 <= R * R
    return (near * np.asarray(inputs["x"], dtype=np.float64)[None, :] * np.exp(-d2)).sum(axis=1), near.sum(axis=1)


def _on_the_radius(inputs) -> dict:
    """The inputs with points 1 and 2 exactly R from point 0 (along +x and along -z), and point 3
    1/256 beyond R along +x: the filter's boundary, where float32 and float64 must agree."""
    pts = np.array(inputs["pts"], copy=True)
    pts[1] = pts[0] + np.float32([R, 0, 0])
    pts[2] = pts[0] - np.float32([0, 0, R])
    pts[3] = pts[0] + np.float32([R + 1 / 256, 0, 0])  # just outside
    return {**inputs, "pts": pts}


def test_the_oracle_finds_the_neighbours_numpy_does():
    spec = _spec()
    for variant in range(3):
        inputs = make_inputs(spec, variant)
        assert "grid" not in inputs  # no input of its own: rebuilt from its points
        for case in (inputs, _on_the_radius(inputs)):
            want_y, want_n = _numpy(case)
            got = oracle.run_oracle(spec, case)
            np.testing.assert_allclose(got["y"], want_y, rtol=1e-12)
            np.testing.assert_array_equal(got["count"], want_n)
    assert _numpy(_on_the_radius(make_inputs(spec)))[1][0] >= 3  # itself and the two on the radius


def test_warp_finds_the_same_neighbours_on_the_radius_too(tmp_path):
    spec = _spec()
    source = render_source(spec)
    assert "    while wp.hash_grid_query_next(q_j, j):" in source.split("\n")
    assert checks.check_safety(source) == checks.PASSED
    mod = warp_adapter.import_source(source, str(tmp_path / "t.py"), "neighbors_radius")
    object_testing.assert_warp_runs_as_the_oracle(getattr(mod, "t"), spec,
                                                  (make_inputs(spec), _on_the_radius(make_inputs(spec))), exact=("count",))


@pytest.mark.parametrize("source,reason", list(NEAR_MISSES.items()))
def test_the_safety_wall_admits_the_new_forms_exactly(source, reason):
    object_testing.assert_safety_verdict(source, reason)


def test_warp_runs_drawn_kernels_as_the_oracle_with_gradients():
    spec = _spec()
    object_testing.assert_drawn_kernels_run(spec, "neighbors", "hash_grid_query_next")


def test_the_record_meets_the_pair_schema_and_the_schema_refuses_malformed_grids():
    from validator import verdicts
    record = object_testing.record(_spec(), build_record)
    assert verdicts.check_schema(record) == checks.PASSED
    grid = record["args"][1]
    assert grid == {"name": "grid", "kind": HASH_GRID, "dtype": "uint64", "shape": [4, 4, 4], "role": "in",
                    "points": "pts", "cell": 0.25}
    assert "grid" not in record["io"]["inputs"] and "pts" in record["io"]["inputs"]
    bad = {
        "a grid without points": lambda r: r["args"][1].pop("points"),
        "a grid without its cell width": lambda r: r["args"][1].pop("cell"),
        "a cell width of 0": lambda r: r["args"][1].__setitem__("cell", 0),
        "a grid of another dtype": lambda r: r["args"][1].__setitem__("dtype", "float32"),
        "a grid of two dimensions": lambda r: r["args"][1].__setitem__("shape", [4, 4]),
        "a grid written": lambda r: r["args"][1].__setitem__("role", "out"),
        "points on a plain array": lambda r: r["args"][2].__setitem__("points", "pts"),
        "a plain array of uint64": lambda r: r["args"][2].__setitem__("dtype", "uint64"),
        "an older record": lambda r: r.__setitem__("schema_version", "2.4.0"),
    }
    object_testing.assert_schema_refuses(record, bad)


def test_a_forged_cell_width_is_caught_by_the_spec_check_and_the_fault_audit_draws_one():
    """A record whose grid is built otherwise than (family, seed) draws it fails `spec`, even as a
    coherent forgery (the source, which does not name the cell width, is the same)."""
    object_testing.assert_forged_build_fails("neighbors", 1, " cell ", build_record)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
