"""The texture family's construct on the real compile: a `wp.Texture2D` argument (kind texture2d,
its texels its own input, `sampler` its filter and address modes), passed as the texture itself and
sampled with `wp.texture_sample(..., dtype=float)`. The oracle's sampler is held to a vectorized
NumPy one written here, Warp's CPU run to the oracle for every filter and address mode (on texel
centres, on texel edges, at 0 and 1 and beyond them on either side) and its gradient too, the
record to the pair schema (and the schema to refusing malformed textures), the safety wall to
exactly the new forms, and the spec check to the sampler (a forged one fails it, and the fault
audit draws such forgeries)."""

import sys

import numpy as np
import pytest

from extractor import warp_adapter
from generator import oracle
from generator.inputs import make_inputs
from generator.render import render_source
from generator.spec import TEXTURE, TEXTURE_ADDRESSES, TEXTURE_FILTERS, ArgSpec, KernelSpec
from pipeline.chunk import build_record
from validator import checks, object_testing, verdicts

V = lambda name: ["v", name]  # noqa: E731 - the spec's own shorthand
N = 16
SHAPE = (4, 8)  # (height, width)
SAMPLERS = [f"{f}/{a}" for f in TEXTURE_FILTERS for a in TEXTURE_ADDRESSES]

_K = "import warp as wp\n\n@wp.kernel\ndef k(tex: wp.Texture2D, uv: wp.array(dtype=wp.vec2), y: wp.array(dtype=wp.float32)):\n"
# near misses of the family's forms: the safety wall refuses each, for this reason
NEAR_MISSES = {
    _K + "    y[0] = wp.texture_sample(tex, uv[0], dtype=float)\n": None,  # the forms themselves: admitted
    _K + "    y[0] = wp.texture_sample(tex, uv[0][0], uv[0][1], dtype=float)\n": None,
    _K + "    t = wp.Texture2D()\n": "wp.Texture2D",  # a texture built in the kernel
    _K + "    y[0] = float(tex.width)\n": "attribute access .width",
    _K.replace("wp.Texture2D", "wp.Texture3D") + "    y[0] = 1.0\n": "annotation the grammar does not emit",  # another texture type
    "import warp as wp\n\n@wp.func\ndef f(tex: wp.Texture2D) -> wp.float32:\n    return 1.0\n":
        "parameter tex of f",  # a texture only as a kernel's parameter
    "import warp as wp\n\n@wp.struct\nclass S:\n    t: wp.Texture2D\n": "struct field at line 5",
}


def _spec(sampler: str = "LINEAR/WRAP") -> KernelSpec:
    """y[i] = x[i] * sample(uv[i]) + sample(uv[i][0], uv[i][1] + 1/8)."""
    def sample(*coords):
        return ["kwcall", "texture_sample", [V("tex"), *coords], [["dtype", ["fnref", "float"]]]]
    p = ["ld", "uv", [V("i")]]
    shifted = [["comp", p, [0]], ["bin", "+", ["comp", p, [1]], ["c", 0.125, "float32"]]]
    args = (ArgSpec("tex", TEXTURE, "float32", SHAPE, low=-1.0, high=1.0, sampler=sampler),
            ArgSpec("uv", "array", "vec2", (N,), low=-0.5, high=1.5), ArgSpec("x", "array", "float32", (N,)),
            ArgSpec("y", "array", "float32", (N,), role="out"))
    body = [["store", "y", [V("i")], ["bin", "+", ["bin", "*", ["ld", "x", [V("i")]], sample(p)], sample(*shifted)]]]
    return KernelSpec("texture", 0, "t", (N,), args, body)


def _numpy_sample(data, sampler: str, u, v):
    """Warp's CPU sampler (native/texture.h), vectorized over the points."""
    filt, addr = sampler.split("/")
    height, width = data.shape
    period = {"WRAP": 1.0, "MIRROR": 2.0}.get(addr)

    def index(i, n):
        if addr == "WRAP":
            return np.mod(i, n)
        if addr == "CLAMP":
            return np.clip(i, 0, n - 1)
        if addr == "MIRROR":
            m = np.mod(i, 2 * n)
            return np.where(m >= n, 2 * n - 1 - m, m)
        return i

    def fetch(x, y):
        inside = (x >= 0) & (x < width) & (y >= 0) & (y < height)
        return np.where(inside, data[np.clip(y, 0, height - 1), np.clip(x, 0, width - 1)], 0.0)

    if filt == "CLOSEST":
        def near(c, n):
            t = np.fmod(c, period) * n if period else np.clip(c * n, -1.0, n)
            return index(np.floor(t).astype(np.int64), n)
        return fetch(near(u, width), near(v, height))

    def cell(c, n):
        t = (np.mod(c, period) if period else c) * n - 0.5
        t = np.clip(t, 0.0, n - 1.0) if addr == "CLAMP" else np.clip(t, -2.0, n) if addr == "BORDER" else t
        i = np.floor(t).astype(np.int64)
        return i, t - i

    (x0, fx), (y0, fy) = cell(u, width), cell(v, height)
    x1, y1, x0, y0 = index(x0 + 1, width), index(y0 + 1, height), index(x0, width), index(y0, height)
    return ((fetch(x0, y0) * (1 - fx) + fetch(x1, y0) * fx) * (1 - fy)
            + (fetch(x0, y1) * (1 - fx) + fetch(x1, y1) * fx) * fy)


def _numpy(inputs, sampler: str):
    data = np.asarray(inputs["tex"], dtype=np.float64)
    uv, x = np.asarray(inputs["uv"], dtype=np.float64), np.asarray(inputs["x"], dtype=np.float64)
    return x * _numpy_sample(data, sampler, uv[:, 0], uv[:, 1]) + _numpy_sample(data, sampler, uv[:, 0], uv[:, 1] + 0.125)


def _on_the_edges(inputs) -> dict:
    """Points on texel centres and edges, at 0 and 1, and beyond them on either side."""
    height, width = SHAPE
    uv = np.array(inputs["uv"], copy=True)
    uv[:12] = [(0.5 / width, 0.5 / height), (1 / width, 2 / height), (0.0, 0.0), (1.0, 1.0), (-1 / width, 0.5),
               (1 + 1 / width, -0.5 / height), (-1.0, -0.5), (1.5, 1.25), (-0.5 / width, 1.5 / height),
               (2.0, -1.0), (0.75 + 0.5 / width, 0.25), (-0.25, 1 - 0.5 / height)]
    return {**inputs, "uv": uv}


def test_the_oracle_s_modes_are_the_running_warp_s():
    """The spec names the modes as wp.TextureFilterMode / wp.TextureAddressMode do, with their values."""
    import warp as wp
    assert TEXTURE_FILTERS == {m.name: int(m) for m in wp.TextureFilterMode}
    assert TEXTURE_ADDRESSES == {m.name: int(m) for m in wp.TextureAddressMode}


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_the_oracle_samples_as_numpy_does(sampler):
    spec = _spec(sampler)
    for variant in range(2):
        inputs = make_inputs(spec, variant)
        assert inputs["tex"].shape == SHAPE and inputs["tex"].dtype == np.float32  # its own input
        for case in (inputs, _on_the_edges(inputs)):
            np.testing.assert_allclose(oracle.run_oracle(spec, case)["y"], _numpy(case, sampler), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_warp_samples_as_the_oracle_on_the_edges_too(sampler, tmp_path):
    spec = _spec(sampler)
    source = render_source(spec)
    assert "def t(tex: wp.Texture2D, " in source and "wp.texture_sample(tex, uv[i], dtype=float)" in source
    assert checks.check_safety(source) == checks.PASSED
    mod = warp_adapter.import_source(source, str(tmp_path / "t.py"), "texture_edges_" + sampler.replace("/", "_"))
    object_testing.assert_warp_runs_as_the_oracle(getattr(mod, "t"), spec,
                                                  (make_inputs(spec), _on_the_edges(make_inputs(spec))), rtol=1e-6)


@pytest.mark.parametrize("source,reason", list(NEAR_MISSES.items()))
def test_the_safety_wall_admits_the_new_forms_exactly(source, reason):
    object_testing.assert_safety_verdict(source, reason)


def test_warp_runs_drawn_kernels_as_the_oracle_with_gradients():
    object_testing.assert_drawn_kernels_run(_spec("LINEAR/CLAMP"), "texture", "texture_sample")


def test_the_record_meets_the_pair_schema_and_the_schema_refuses_malformed_textures():
    record = object_testing.record(_spec(), build_record)
    assert verdicts.check_schema(record) == checks.PASSED
    assert record["args"][0] == {"name": "tex", "kind": TEXTURE, "dtype": "float32", "shape": list(SHAPE), "role": "in",
                                 "sampler": "LINEAR/WRAP"}
    assert record["io"]["inputs"]["tex"]["shape"] == list(SHAPE)
    bad = {
        "a texture without its sampler": lambda r: r["args"][0].pop("sampler"),
        "a sampler Warp does not have": lambda r: r["args"][0].__setitem__("sampler", "CUBIC/WRAP"),
        "a texture of another dtype": lambda r: r["args"][0].__setitem__("dtype", "uint64"),
        "a texture of three dimensions": lambda r: r["args"][0].__setitem__("shape", [4, 4, 4]),
        "a texture written": lambda r: r["args"][0].__setitem__("role", "out"),
        "a texture with a cell": lambda r: r["args"][0].__setitem__("cell", 0.5),
        "a texture with points": lambda r: r["args"][0].__setitem__("points", "uv"),
        "a sampler on a plain array": lambda r: r["args"][1].__setitem__("sampler", "LINEAR/WRAP"),
        "an older record": lambda r: r.__setitem__("schema_version", "2.8.0"),
    }
    object_testing.assert_schema_refuses(record, bad)


def test_a_forged_sampler_is_caught_by_the_spec_check_and_the_fault_audit_draws_one():
    """A record whose texture is sampled otherwise than (family, seed) draws it fails `spec`, even as
    a coherent forgery (the source, which does not name the sampler, is the same)."""
    object_testing.assert_forged_build_fails("texture", 1, " sampler ", build_record)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
