"""The mesh family's construct on the real compile: a `wp.Mesh` argument (kind mesh, passed as its
`wp.uint64` id, a height field built from its own seeded input) and the closest-point query
(`wp.mesh_query_point_no_sign`, then `wp.mesh_eval_position`). The oracle's brute force is held
to closest points found here another way (the plane's projection where it falls inside a
triangle, else the nearest of its three edges), Warp's CPU run and gradient to the oracle (on the
query's distance limit too, where Warp's test is strict), the record to the pair schema (and the
schema to refusing malformed meshes), the safety wall to exactly the new forms, and the spec check
to the mesh's build (a forged grid of vertices fails it, and the fault audit draws such forgeries)."""

import sys

import numpy as np
import pytest

from extractor import warp_adapter
from generator import oracle
from generator.families import build_spec
from generator.inputs import make_inputs
from generator.render import render_source
from generator.spec import MESH, ArgSpec, KernelSpec, mesh_geometry
from pipeline.chunk import build_record
from validator import checks, object_testing
from validator.launch import run_cpu

V = lambda name: ["v", name]  # noqa: E731 - the spec's own shorthand
N = 8
MAX = 0.75

_K = "import warp as wp\n\n@wp.kernel\ndef k(mesh: wp.uint64, q: wp.array(dtype=wp.vec3), y: wp.array(dtype=wp.float32)):\n"
_QUERY = "    f = int(0)\n    u = float(0.0)\n    v = float(0.0)\n"
# near misses of the family's forms: the safety wall refuses each, for this reason
NEAR_MISSES = {
    _K + _QUERY + "    if wp.mesh_query_point_no_sign(mesh, q[0], 0.5, f, u, v):\n"
         "        y[0] = wp.mesh_eval_position(mesh, f, u, v)[2]\n": None,  # the forms themselves: admitted
    "import warp as wp\n\n@wp.func\ndef g(mesh: wp.uint64) -> wp.float32:\n    return 1.0\n":
        "parameter mesh of g",  # an object's id only as a kernel's parameter
    _K + "    m = wp.Mesh(q, q)\n": "wp.Mesh",  # building an object in the kernel
    _K + "    h = wp.mesh_query_ray(mesh, q[0], q[1], 1.0)\n": "wp.mesh_query_ray",  # a query the grammar does not emit
    _K + "    h = wp.mesh_query_point(mesh, q[0], 1.0)\n": "wp.mesh_query_point",
    _K + "    y[0] = wp.mesh_get_point(mesh, 0)[0]\n": "wp.mesh_get_point",
    _K + "    h = wp.mesh_query_point_no_sign(mesh, q[0], 1.0)\n    y[0] = h.u\n": "attribute access .u",
    _K + "    y[0] = mesh.points\n": "attribute access .points",
}


def _spec(max_dist: float = MAX) -> KernelSpec:
    """y[i] = |cp - q[i]| + cp.z and near[i] = cp, cp the mesh's point closest to q[i], where it
    lies within max_dist; hit[i] = 1 there."""
    inner = [["let", "d", ["call", "length", [["bin", "-", V("cp"), V("p")]]]],
             ["store", "y", [V("i")], ["bin", "+", V("d"), ["comp", V("cp"), [2]]]],
             ["store", "near", [V("i")], V("cp")], ["store", "hit", [V("i")], ["c", 1, "int32"]]]
    args = (ArgSpec("mesh", MESH, "uint64", (3, 5), low=-0.5, high=0.5),
            ArgSpec("q", "array", "vec3", (N,), low=-1.0, high=1.0),
            ArgSpec("y", "array", "float32", (N,), role="out"), ArgSpec("near", "array", "vec3", (N,), role="out"),
            ArgSpec("hit", "array", "int32", (N,), role="out"))
    body = [["let", "p", ["ld", "q", [V("i")]]], ["closest", "cp", "mesh", V("p"), ["c", max_dist, "float32"], inner]]
    return KernelSpec("mesh", 0, "t", (N,), args, body)


def _segment(a, b, p):
    t = np.clip(np.dot(p - a, b - a) / np.dot(b - a, b - a), 0.0, 1.0)
    return a + t * (b - a)


def _closest_numpy(points, faces, p):
    """The closest point of the mesh to p, another way than the oracle's Voronoi regions: the
    projection onto a triangle's plane where it falls inside the triangle, else the nearest point
    of its three edges; the nearest over all triangles."""
    best = None
    for f in faces:
        a, b, c = points[f]
        n = np.cross(b - a, c - a)
        proj = p - np.dot(p - a, n) / np.dot(n, n) * n
        inside = all(np.dot(np.cross(y - x, proj - x), n) >= 0 for x, y in ((a, b), (b, c), (c, a)))
        cands = [proj] if inside else [_segment(a, b, p), _segment(b, c, p), _segment(c, a, p)]
        for cand in cands:
            d2 = float(np.sum((cand - p) ** 2))
            if best is None or d2 < best[0]:
                best = (d2, cand)
    return best


def _points(heights, shape=(3, 5)):
    xy, faces = mesh_geometry(shape)
    return np.column_stack([np.asarray(xy), np.ravel(heights)]).astype(np.float64), np.asarray(faces)


def _at_the_limit(inputs) -> dict:
    """Inputs whose height field peaks at its middle vertex (0, 0, 0.5), every other vertex at
    -0.5, with q[0] exactly MAX above the peak (its closest point, at distance MAX: a miss, Warp's
    test is strict), q[1] 1/256 nearer (a hit), q[2] on the peak itself and q[3] above a corner."""
    heights = np.full((3, 5), -0.5, dtype=np.float32)
    heights[1, 2] = 0.5
    q = np.array(inputs["q"], copy=True)
    q[0], q[1] = (0.0, 0.0, 0.5 + MAX), (0.0, 0.0, 0.5 + MAX - 1 / 256)
    q[2], q[3] = (0.0, 0.0, 0.5), (-1.0, -1.0, 0.0)
    return {**inputs, "mesh": heights, "q": q}


def test_the_oracle_finds_the_closest_points_numpy_does():
    spec = _spec(max_dist=4.0)
    for variant in range(3):
        inputs = make_inputs(spec, variant)
        assert inputs["mesh"].shape == (3, 5) and inputs["mesh"].dtype == np.float32  # its own input
        for case in (inputs, _at_the_limit(inputs)):
            points, faces = _points(case["mesh"])
            got = oracle.run_oracle(spec, case)
            for i, p in enumerate(np.asarray(case["q"], dtype=np.float64)):
                d2, cp = _closest_numpy(points, faces, p)
                np.testing.assert_allclose(got["near"][i], cp, atol=1e-12)
                np.testing.assert_allclose(got["y"][i], np.sqrt(d2) + cp[2], atol=1e-12)
    edge = oracle.run_oracle(_spec(), _at_the_limit(make_inputs(spec)))
    assert list(edge["hit"][:4]) == [0, 1, 1, 1]  # exactly MAX away: no point strictly within


def test_warp_finds_the_same_points_at_the_limit_too(tmp_path):
    spec = _spec()
    source = render_source(spec)
    assert "    if wp.mesh_query_point_no_sign(mesh, p, 0.75, f_cp, u_cp, v_cp):" in source.split("\n")
    assert checks.check_safety(source) == checks.PASSED
    kernel = getattr(warp_adapter.import_source(source, str(tmp_path / "t.py"), "mesh_limit"), "t")
    object_testing.assert_warp_runs_as_the_oracle(kernel, spec, (make_inputs(spec), _at_the_limit(make_inputs(spec))),
                                                  exact=("hit",), close=("near", "y"))
    assert list(run_cpu(kernel, spec, _at_the_limit(make_inputs(spec)))["hit"][:4]) == [0, 1, 1, 1]


@pytest.mark.parametrize("source,reason", list(NEAR_MISSES.items()))
def test_the_safety_wall_admits_the_new_forms_exactly(source, reason):
    object_testing.assert_safety_verdict(source, reason)


def test_warp_runs_drawn_kernels_as_the_oracle_with_gradients():
    spec = _spec()
    object_testing.assert_drawn_kernels_run(spec, "mesh", "mesh_query_point_no_sign", "adj_mesh_eval_position")


def test_the_record_meets_the_pair_schema_and_the_schema_refuses_malformed_meshes():
    from validator import verdicts
    record = object_testing.record(_spec(), build_record)
    assert verdicts.check_schema(record) == checks.PASSED
    assert record["args"][0] == {"name": "mesh", "kind": MESH, "dtype": "uint64", "shape": [3, 5], "role": "in"}
    assert record["io"]["inputs"]["mesh"]["shape"] == [3, 5] and record["io"]["inputs"]["mesh"]["dtype"] == "float32"
    bad = {
        "a mesh of another dtype": lambda r: r["args"][0].__setitem__("dtype", "float32"),
        "a mesh of three dimensions": lambda r: r["args"][0].__setitem__("shape", [3, 5, 2]),
        "a mesh of one row": lambda r: r["args"][0].__setitem__("shape", [1, 5]),
        "a mesh written": lambda r: r["args"][0].__setitem__("role", "out"),
        "a mesh with points": lambda r: r["args"][0].__setitem__("points", "q"),
        "a mesh with a cell width": lambda r: r["args"][0].__setitem__("cell", 0.5),
        "a mesh with fields": lambda r: r["args"][0].__setitem__("fields", [["a", "float32"]]),
        "an older record": lambda r: r.__setitem__("schema_version", "2.5.0"),
    }
    object_testing.assert_schema_refuses(record, bad)


def test_a_forged_mesh_is_caught_by_the_spec_check_and_the_fault_audit_draws_one():
    """A record whose mesh is built otherwise than (family, seed) draws it fails `spec`, even as a
    coherent forgery (the source, which does not name the grid of vertices, is the same)."""
    object_testing.assert_forged_build_fails("mesh", 1, " shape ", build_record)


CP, P, X = V("cp"), V("p"), ["ld", "x", [V("i")]]
GAP = ["bin", "-", CP, P]
# terms the first run at 1,430 kernels drew (each rejected: a constant whose float32 value and Warp
# gradient were rounding noise, 1e-9 to 1e-6, where the oracle's were 0), and terms that vary
CONSTANT_TERMS = [
    ["call", "dot", [["call", "cross", [["bin", "*", X, GAP], ["vec", "vec3", [X, X, X]]]], GAP]],
    ["call", "dot", [["neg", ["call", "cross", [CP, GAP]]], ["call", "normalize", [CP]]]],
    ["call", "dot", [["call", "cross", [["call", "spatial_top", [["call", "spatial_vector", [CP, P]]]],
                                        ["bin", "+", GAP, CP]]], ["neg", ["bin", "*", X, GAP]]]],
    ["call", "length", [["call", "normalize", [["call", "cw_div", [GAP, ["vec", "vec3", [X, X, X]]]]]]]],
]
VARYING_TERMS = [["call", "dot", [GAP, GAP]], ["call", "length", [["call", "cross", [GAP, CP]]]],
                 ["call", "dot", [["call", "cw_div", [["call", "cross", [CP, GAP]], ["vec", "vec3", [X, ["c", 1.5, "float32"],
                                                                                    ["c", 2.0, "float32"]]]]], CP]]]


def test_terms_constant_whatever_the_inputs_are_never_drawn():
    from generator.grammar import vanishes
    assert all(vanishes(t, planar=True) for t in CONSTANT_TERMS)
    assert not any(vanishes(t, planar=True) for t in VARYING_TERMS)
    for seed in (4541398073542222436, 9200929326396067195, 7577925225435244128, 3592174674813652250, *range(300)):
        spec = build_spec("mesh", seed)
        closest = next(s for s in spec.body if s[0] == "closest")
        store = next(s for s in closest[5] if s[:2] == ["store", "y"])
        assert not vanishes(store[3], planar=True), seed


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
