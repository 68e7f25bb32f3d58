"""The bvh family's construct on the real compile: a `wp.Bvh` argument (kind bvh, passed as its
`wp.uint64` id, rebuilt from the points its boxes are built around) and its query loop, an aabb or
a sphere query, then `wp.bvh_query_next`. The oracle's brute force is held to the box tests written
out in NumPy here, Warp's CPU run and gradient to the oracle (boxes that exactly touch the query, on
a face and, for the sphere, at a distance exactly its radius, and boxes 1/256 beyond it), the record
to the pair schema (and the schema to refusing malformed BVHs), the safety wall to exactly the new
forms, and the spec check to the boxes' half-width (a forged one fails it, and the fault audit draws
such forgeries)."""

import sys

import numpy as np
import pytest

from extractor import warp_adapter
from generator import oracle
from generator.inputs import make_inputs
from generator.render import render_source
from generator.spec import BVH, BVH_QUERIES, ArgSpec, KernelSpec
from pipeline.chunk import build_record
from validator import checks, object_testing, verdicts

V = lambda name: ["v", name]  # noqa: E731 - the spec's own shorthand
N = 12
H = 0.25  # the boxes' half-width
E = (0.25, 0.125, 0.5)  # the aabb query's half-extents
R = 0.625  # the sphere query's radius: 5/8, so (3/8, 4/8, 0) past a box's corner lies exactly on it

_K = "import warp as wp\n\n@wp.kernel\ndef k(bvh: wp.uint64, p: wp.array(dtype=wp.vec3), y: wp.array(dtype=wp.float32)):\n"
_LOOP = "    j = int(0)\n    while wp.bvh_query_next(b, j):\n        y[0] = y[0] + 1.0\n"
# near misses of the family's forms: the safety wall refuses each, for this reason
NEAR_MISSES = {
    _K + "    b = wp.bvh_query_aabb(bvh, p[0], p[1])\n" + _LOOP: None,  # the forms themselves: admitted
    _K + "    b = wp.bvh_query_sphere(bvh, p[0], 0.5)\n" + _LOOP: None,
    _K + "    b = wp.bvh_query_ray(bvh, p[0], p[1])\n" + _LOOP: "wp.bvh_query_ray",  # a query the grammar does not write
    _K + "    b = wp.Bvh(p, p)\n": "wp.Bvh",  # building an object in the kernel
    _K + "    b = wp.bvh_query_aabb(bvh, p[0], p[1])\n    y[0] = b.__class__\n": "attribute access .__class__",
    _K + "    y[0] = bvh.id\n": "attribute access .id",
    "import warp as wp\n\n@wp.func\ndef f(bvh: wp.uint64) -> wp.float32:\n    return 1.0\n":
        "parameter bvh of f",  # an object's id only as a kernel's parameter
}


def _spec(query: str = "aabb") -> KernelSpec:
    """y[i] = sum over the boxes j the query around q[i] meets of x[j] * exp(-|ctr[j] - q[i]|^2);
    count[i] their number."""
    gap = ["bin", "-", ["ld", "ctr", [V("j")]], V("p")]
    inner = [["atomic", "add", "y", [V("i")], ["bin", "*", ["ld", "x", [V("j")]],
                                               ["call", "exp", [["neg", ["call", "length_sq", [gap]]]]]]],
             ["atomic", "add", "count", [V("i")], ["c", 1, "int32"]]]
    extent = ["vec", "vec3", [["c", e, "float32"] for e in E]]
    a, b = ((["bin", "-", V("p"), extent], ["bin", "+", V("p"), extent]) if query == "aabb"
            else (V("p"), ["c", R, "float32"]))
    args = (ArgSpec("ctr", "array", "vec3", (N,), low=-1.0, high=1.0),
            ArgSpec("bvh", BVH, "uint64", (N,), points="ctr", cell=H),
            ArgSpec("q", "array", "vec3", (N,), low=-1.0, high=1.0),
            ArgSpec("x", "array", "float32", (N,)), ArgSpec("y", "array", "float32", (N,), role="out"),
            ArgSpec("count", "array", "int32", (N,), role="out"))
    body = [["let", "p", ["ld", "q", [V("i")]]], ["boxes", "j", "bvh", query, a, b, inner]]
    return KernelSpec("bvh", 0, "t", (N,), args, body)


def _numpy(inputs, query: str) -> tuple[np.ndarray, np.ndarray]:
    ctr, q = (np.asarray(inputs[k], dtype=np.float64) for k in ("ctr", "q"))
    apart = np.abs(ctr[None, :, :] - q[:, None, :])  # [thread, box, axis]
    if query == "aabb":
        meets = (apart <= H + np.array(E)).all(axis=2)
    else:
        meets = (np.maximum(apart - H, 0.0) ** 2).sum(axis=2) <= R * R
    d2 = ((ctr[None, :, :] - q[:, None, :]) ** 2).sum(axis=2)
    return (meets * np.asarray(inputs["x"], dtype=np.float64)[None, :] * np.exp(-d2)).sum(axis=1), meets.sum(axis=1)


def _touching(inputs, query: str) -> dict:
    """Boxes 1, 2 and 4 exactly touching thread 0's query (on a face along +x and -z, and for the
    sphere at a corner exactly R away), box 3 1/256 beyond it along +x."""
    ctr = np.array(inputs["ctr"], copy=True)
    q0 = np.array(inputs["q"][0], dtype=np.float64)
    reach = np.array(E) + H if query == "aabb" else np.full(3, R + H)
    ctr[1] = q0 + [reach[0], 0, 0]
    ctr[2] = q0 - [0, 0, reach[2]]
    ctr[3] = q0 + [reach[0] + 1 / 256, 0, 0]
    ctr[4] = q0 + ([H + 0.375, -H - 0.5, 0] if query == "sphere" else [0, reach[1], -reach[2]])
    return {**inputs, "ctr": ctr}


@pytest.mark.parametrize("query", list(BVH_QUERIES))
def test_the_oracle_finds_the_boxes_numpy_does(query):
    spec = _spec(query)
    for variant in range(3):
        inputs = make_inputs(spec, variant)
        assert "bvh" not in inputs  # no input of its own: rebuilt from its points
        for case in (inputs, _touching(inputs, query)):
            want_y, want_n = _numpy(case, query)
            got = oracle.run_oracle(spec, case)
            np.testing.assert_allclose(got["y"], want_y, rtol=1e-12)
            np.testing.assert_array_equal(got["count"], want_n)
    near = _numpy(_touching(make_inputs(spec), query), query)[1][0]
    assert near >= 3  # the three touching boxes (and any drawn one)


@pytest.mark.parametrize("query", list(BVH_QUERIES))
def test_warp_finds_the_same_boxes_touching_ones_too(query, tmp_path):
    spec = _spec(query)
    source = render_source(spec)
    assert f"    b_j = wp.{BVH_QUERIES[query]}(bvh, " in source and "    while wp.bvh_query_next(b_j, j):" in source
    assert checks.check_safety(source) == checks.PASSED
    mod = warp_adapter.import_source(source, str(tmp_path / "t.py"), f"bvh_touching_{query}")
    object_testing.assert_warp_runs_as_the_oracle(getattr(mod, "t"), spec,
                                                  (make_inputs(spec), _touching(make_inputs(spec), query)), exact=("count",))


@pytest.mark.parametrize("source,reason", list(NEAR_MISSES.items()))
def test_the_safety_wall_admits_the_new_forms_exactly(source, reason):
    object_testing.assert_safety_verdict(source, reason)


def test_warp_runs_drawn_kernels_as_the_oracle_with_gradients():
    object_testing.assert_drawn_kernels_run(_spec("sphere"), "bvh", "bvh_query_next")


def test_drawn_kernels_read_the_array_their_boxes_are_built_around():
    """The BVH's points are a live kernel input: every drawn kernel reads ctr[j] (were it unread, the
    spec would drop it and the BVH could not be built), and draws both queries."""
    from generator.families import build_spec
    queries = set()
    for seed in range(200):
        spec = build_spec("bvh", seed)
        assert [a.name for a in spec.args][:2] == ["ctr", "bvh"], seed
        source = render_source(spec)
        assert "ctr[j]" in source, seed
        queries |= {q for q, name in BVH_QUERIES.items() if f"wp.{name}(" in source}
    assert queries == set(BVH_QUERIES)


def test_the_record_meets_the_pair_schema_and_the_schema_refuses_malformed_bvhs():
    record = object_testing.record(_spec(), build_record)
    assert verdicts.check_schema(record) == checks.PASSED
    assert record["args"][1] == {"name": "bvh", "kind": BVH, "dtype": "uint64", "shape": [N], "role": "in",
                                 "points": "ctr", "cell": H}
    assert "bvh" not in record["io"]["inputs"] and "ctr" in record["io"]["inputs"]
    bad = {
        "a BVH without points": lambda r: r["args"][1].pop("points"),
        "a BVH without its half-width": lambda r: r["args"][1].pop("cell"),
        "a half-width of 0": lambda r: r["args"][1].__setitem__("cell", 0),
        "a BVH of another dtype": lambda r: r["args"][1].__setitem__("dtype", "float32"),
        "a BVH of two dimensions": lambda r: r["args"][1].__setitem__("shape", [N, 2]),
        "a BVH written": lambda r: r["args"][1].__setitem__("role", "out"),
        "a BVH with fields": lambda r: r["args"][1].__setitem__("fields", [["a", "float32"]]),
        "points on a plain array": lambda r: r["args"][2].__setitem__("points", "ctr"),
        "an older record": lambda r: r.__setitem__("schema_version", "2.7.0"),
    }
    object_testing.assert_schema_refuses(record, bad)


def test_a_forged_half_width_is_caught_by_the_spec_check_and_the_fault_audit_draws_one():
    """A record whose boxes are built otherwise than (family, seed) draws them fails `spec`, even as
    a coherent forgery (the source, which does not name the half-width, is the same)."""
    object_testing.assert_forged_build_fails("bvh", 1, " cell ", build_record)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
