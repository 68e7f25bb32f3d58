"""The volume family's construct on the real compile: a `wp.Volume` argument (kind volume, passed
as its `wp.uint64` id, built from its own seeded input, a dense grid of voxels) and the
`volume_*` builtins (world to index space and back, sampling trilinear or closest, a voxel's
lookup). The oracle is held to NumPy's trilinear blend written another way (the voxels padded
with the background, the eight weights as one product), Warp's CPU run and gradient to the oracle
(at voxel centres, at half-voxel ties of the closest sampling and outside the voxels too), the
record to the pair schema (and the schema to refusing malformed volumes), the safety wall to
exactly the new forms (`wp.Volume.LINEAR` and `wp.Volume.CLOSEST` only as read values), and the
spec check to the voxel size (a forged one fails it, and the fault audit draws such forgeries)."""

import sys

import numpy as np
import pytest

from extractor import warp_adapter
from generator import oracle
from generator.inputs import make_inputs
from generator.render import render_source
from generator.spec import VOLUME, VOLUME_MODES, ArgSpec, KernelSpec
from pipeline.chunk import build_record
from validator import checks, object_testing

V = lambda name: ["v", name]  # noqa: E731 - the spec's own shorthand
N = 12
SHAPE = (4, 3, 5)
CELL = 0.5

_K = "import warp as wp\n\n@wp.kernel\ndef k(vol: wp.uint64, q: wp.array(dtype=wp.vec3), y: wp.array(dtype=wp.float32)):\n"
# near misses of the family's forms: the safety wall refuses each, for this reason
NEAR_MISSES = {
    _K + "    u = wp.volume_world_to_index(vol, q[0])\n    y[0] = wp.volume_sample_f(vol, u, wp.Volume.LINEAR)"
         " + wp.volume_sample_f(vol, u, wp.Volume.CLOSEST) + wp.volume_lookup_f(vol, 0, 1, 2)"
         " + wp.volume_index_to_world(vol, u)[0]\n": None,  # the forms themselves: admitted
    _K + "    y[0] = wp.volume_sample_f(vol, q[0], wp.Volume.NEAREST)\n": ".NEAREST",  # no such mode is emitted
    _K + "    v = wp.Volume(q)\n": "wp.Volume",  # building an object in the kernel
    _K + "    v = wp.Volume.load_from_numpy(q)\n": ".load_from_numpy",
    _K + "    wp.Volume.LINEAR = 0\n": "attribute access .LINEAR",  # a mode written
    _K + "    wp.volume_store_f(vol, 0, 0, 0, 1.0)\n": "wp.volume_store_f",  # a volume written
    _K + "    y[0] = wp.volume_sample_grad_f(vol, q[0], wp.Volume.LINEAR, q[1])\n": "wp.volume_sample_grad_f",
    _K + "    y[0] = vol.id\n": "attribute access .id",
    "import warp as wp\n\n@wp.func\ndef g(vol: wp.uint64) -> wp.float32:\n    return 1.0\n": "parameter vol of g",
}


def _spec(mode: str = "LINEAR") -> KernelSpec:
    """y[i] = sample(q[i]) + lookup(i % 4, 1, 2); w[i] = index_to_world(uvw + s)."""
    body = [["let", "uvw", ["call", "volume_world_to_index", [V("vol"), ["ld", "q", [V("i")]]]]],
            ["let", "s", ["call", "volume_sample_f", [V("vol"), V("uvw"), ["vmode", mode]]]],
            ["let", "g", ["call", "volume_lookup_f", [V("vol"), ["mod", V("i"), ["c", 4, "int32"]], ["c", 1, "int32"],
                                                      ["c", 2, "int32"]]]],
            ["store", "y", [V("i")], ["bin", "+", ["bin", "*", V("s"), ["ld", "x", [V("i")]]], V("g")]],
            ["store", "w", [V("i")], ["call", "volume_index_to_world",
                                      [V("vol"), ["bin", "+", V("uvw"), ["vec", "vec3", [V("s"), V("s"), V("s")]]]]]]]
    args = (ArgSpec("vol", VOLUME, "uint64", SHAPE, low=-1.0, high=1.0, cell=CELL),
            ArgSpec("q", "array", "vec3", (N,), low=-1.25, high=1.25), ArgSpec("x", "array", "float32", (N,)),
            ArgSpec("y", "array", "float32", (N,), role="out"), ArgSpec("w", "array", "vec3", (N,), role="out"))
    return KernelSpec("volume", 0, "t", (N,), args, body)


def _numpy(inputs, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """y and w, with the voxels padded by the background (0) on every side."""
    dense = np.pad(np.asarray(inputs["vol"], dtype=np.float64), 2)
    q, x = np.asarray(inputs["q"], dtype=np.float64), np.asarray(inputs["x"], dtype=np.float64)
    u = (q + 1.0) / CELL + 2.0  # index space, shifted by the padding
    if mode == "CLOSEST":  # roundf: half away from zero (before the shift)
        r = np.trunc(np.abs(u - 2.0) + 0.5) * np.sign(u - 2.0) + 2.0
        s = np.array([dense[tuple(np.clip(r[t].astype(int), 0, np.array(dense.shape) - 1))] for t in range(N)])
    else:
        b = np.floor(u).astype(int)
        f = u - b
        s = np.zeros(N)
        for corner in np.ndindex(2, 2, 2):
            w = np.prod(np.where(np.array(corner) == 1, f, 1.0 - f), axis=1)
            idx = np.clip(b + np.array(corner), 0, np.array(dense.shape) - 1)
            s += w * dense[idx[:, 0], idx[:, 1], idx[:, 2]]
    g = dense[np.arange(N) % 4 + 2, 3, 4]
    return s * x + g, -1.0 + (u - 2.0 + s[:, None]) * CELL


def _on_the_edges(inputs) -> dict:
    """q[0] on a voxel centre, q[1] and q[2] half a voxel from one (closest sampling's ties, either
    sign), q[3] outside every voxel, q[4] between the last voxel and the background."""
    q = np.array(inputs["q"], copy=True)
    q[0] = (-1.0 + CELL, -1.0, -1.0 + 2 * CELL)
    q[1] = (-1.0 + 1.5 * CELL, -1.0 + 0.5 * CELL, -1.0)
    q[2] = (-1.0 - 0.5 * CELL, -1.0 + 0.5 * CELL, -1.0 + 3.5 * CELL)
    q[3] = (1.25, 1.25, -1.25)
    q[4] = (-1.0 + (SHAPE[0] - 0.5) * CELL, -1.0 + 0.25, -1.0 + 0.75)
    return {**inputs, "q": q}


def test_the_oracle_s_sampling_modes_are_the_running_warp_s():
    """The oracle reads ["vmode", name] as VOLUME_MODES[name]; the source names wp.Volume.<name>."""
    import warp as wp
    assert VOLUME_MODES == {name: getattr(wp.Volume, name) for name in VOLUME_MODES}


@pytest.mark.parametrize("mode", ["LINEAR", "CLOSEST"])
def test_the_oracle_samples_as_numpy_does(mode):
    spec = _spec(mode)
    for variant in range(3):
        inputs = make_inputs(spec, variant)
        assert inputs["vol"].shape == SHAPE and inputs["vol"].dtype == np.float32  # its own input
        for case in (inputs, _on_the_edges(inputs)):
            got = oracle.run_oracle(spec, case)
            want_y, want_w = _numpy(case, mode)
            np.testing.assert_allclose(got["y"], want_y, rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(got["w"], want_w, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", ["LINEAR", "CLOSEST"])
def test_warp_samples_as_the_oracle_on_the_edges_too(tmp_path, mode):
    spec = _spec(mode)
    source = render_source(spec)
    assert f"    s = wp.volume_sample_f(vol, uvw, wp.Volume.{mode})" in source.split("\n")
    assert checks.check_safety(source) == checks.PASSED
    mod = warp_adapter.import_source(source, str(tmp_path / "t.py"), f"volume_edges_{mode}")
    object_testing.assert_warp_runs_as_the_oracle(getattr(mod, "t"), spec,
                                                  (make_inputs(spec), _on_the_edges(make_inputs(spec))), close=("y", "w"))


@pytest.mark.parametrize("source,reason", list(NEAR_MISSES.items()))
def test_the_safety_wall_admits_the_new_forms_exactly(source, reason):
    object_testing.assert_safety_verdict(source, reason)


def test_warp_runs_drawn_kernels_as_the_oracle_with_gradients():
    spec = _spec()
    object_testing.assert_drawn_kernels_run(spec, "volume", "volume_sample_f", "adj_volume_world_to_index")


def test_the_record_meets_the_pair_schema_and_the_schema_refuses_malformed_volumes():
    from validator import verdicts
    record = object_testing.record(_spec(), build_record)
    assert verdicts.check_schema(record) == checks.PASSED
    assert record["args"][0] == {"name": "vol", "kind": VOLUME, "dtype": "uint64", "shape": list(SHAPE), "role": "in",
                                 "cell": CELL}
    assert record["io"]["inputs"]["vol"]["shape"] == list(SHAPE)
    bad = {
        "a volume without its voxel size": lambda r: r["args"][0].pop("cell"),
        "a voxel size of 0": lambda r: r["args"][0].__setitem__("cell", 0),
        "a volume of another dtype": lambda r: r["args"][0].__setitem__("dtype", "float32"),
        "a volume of two dimensions": lambda r: r["args"][0].__setitem__("shape", [4, 3]),
        "a volume written": lambda r: r["args"][0].__setitem__("role", "out"),
        "a volume with points": lambda r: r["args"][0].__setitem__("points", "q"),
        "a volume with fields": lambda r: r["args"][0].__setitem__("fields", [["a", "float32"]]),
        "a voxel size on a plain array": lambda r: r["args"][1].__setitem__("cell", 0.5),
        "an older record": lambda r: r.__setitem__("schema_version", "2.6.0"),
    }
    object_testing.assert_schema_refuses(record, bad)


def test_a_forged_voxel_size_is_caught_by_the_spec_check_and_the_fault_audit_draws_one():
    """A record whose volume is built otherwise than (family, seed) draws it fails `spec`, even as a
    coherent forgery (the source, which does not name the voxel size, is the same)."""
    object_testing.assert_forged_build_fails("volume", 1, " cell ", build_record)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
