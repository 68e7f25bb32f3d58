import importlib
import sys
import tempfile

import pytest

from extractor import warp_adapter
from generator.families import FAMILIES, build_spec
from generator.render import render_source


def test_every_warp_internal_the_adapter_uses_still_exists():
    for module, symbol in warp_adapter.INTERNAL_SYMBOLS:
        mod = importlib.import_module(module)
        assert hasattr(mod, symbol), f"Warp moved {module}.{symbol}: update extractor/warp_adapter.py"


def _ir(specs):
    with tempfile.TemporaryDirectory() as d:
        module, kernels = warp_adapter.load_batch({s.name: render_source(s) for s in specs}, d)
        return warp_adapter.extract_ir(module, kernels, d)


def test_ir_of_a_kernel_is_the_same_alone_and_in_a_batch():
    specs = [build_spec(f, s) for f in sorted(FAMILIES) for s in range(3)]
    assert any(s.helpers for s in specs)
    batch = _ir(specs)
    for spec in specs:
        alone = _ir([spec])
        assert alone[spec.name] == batch[spec.name], f"{spec.name}: IR depends on its batch"


def test_ir_is_clean_and_complete():
    spec = build_spec("helpers", 1)
    ir = _ir([spec])[spec.name]
    assert set(ir) == {"cpp", "cuda"}
    for target, fb in ir.items():
        assert set(fb) == {"forward", "backward"}
        assert "/tmp" not in fb["forward"] + fb["backward"], "absolute paths leak into the IR"
        assert "#include" not in fb["forward"], "module header leaked into a kernel's IR"
        for h in spec.helpers:  # the chain h_last -> ... -> h0 is all called
            assert f"{h.name}_0(" in fb["forward"], f"{h.name}: the kernel's helpers belong to its IR"
            assert f"adj_{h.name}_0(" in fb["backward"]
    assert f"{spec.name}_cpu_kernel_forward(" in ir["cpp"]["forward"]
    assert f"{spec.name}_cpu_kernel_backward(" in ir["cpp"]["backward"]
    assert f'extern "C" __global__ void {spec.name}_cuda_kernel_forward(' in ir["cuda"]["forward"]
    assert f"{spec.name}_cuda_kernel_backward(" in ir["cuda"]["backward"]
    assert "_cuda_kernel_backward" not in ir["cuda"]["forward"]


def test_a_struct_argument_belongs_to_the_kernels_ir():
    spec = build_spec("structs", 2)
    ir = _ir([spec])[spec.name]
    struct = spec.args[0].dtype
    for target in ("cpp", "cuda"):
        assert f"struct {struct}" in ir[target]["forward"], f"{target}: struct definition missing"


def test_helper_names_do_not_depend_on_what_was_loaded_before():
    spec = build_spec("helpers", 1)
    first = _ir([spec])
    second = _ir([spec])  # same helper name loaded again in this process
    assert first == second


def _ptx(specs, archs=("sm_90",)):
    with tempfile.TemporaryDirectory() as d:
        module, kernels = warp_adapter.load_batch({s.name: render_source(s) for s in specs}, d)
        return warp_adapter.compile_ptx(module, kernels, d, archs)


def test_ptx_of_a_kernel_is_the_same_alone_and_in_a_batch():
    specs = [build_spec(f, s) for f in sorted(FAMILIES) for s in range(2)]
    batch = _ptx(specs)
    # the last kernel sits deep in the batch module, so NVVM's raw label numbers differ
    for spec in (specs[-1], specs[len(specs) // 2]):
        alone = _ptx([spec])
        assert alone[spec.name] == batch[spec.name], f"{spec.name}: PTX depends on its batch"
    assert any("$L__BB0_" in batch[s.name]["sm_90"]["forward"] for s in specs), "no branches: test is vacuous"


def test_ptx_with_calls_is_the_same_alone_and_after_other_callers():
    # float64 pow/asin become non-inlined libdevice calls, which NVVM numbers module-wide
    calls = [s for s in (build_spec("dtypes", k) for k in range(200)) if "float64" in render_source(s)
             and "wp.pow(" in render_source(s)][:3]
    assert len(calls) == 3
    batch = _ptx(calls)
    assert all("// callseq" in batch[s.name]["sm_90"]["forward"] for s in calls), "no calls: test is vacuous"
    for spec in calls:
        assert _ptx([spec]) == {spec.name: batch[spec.name]}, f"{spec.name}: PTX depends on its batch"


def test_ptx_is_per_kernel_and_per_arch():
    spec = build_spec("loop", 3)
    ptx = _ptx([spec], ("sm_80", "sm_90"))[spec.name]
    assert set(ptx) == {"sm_80", "sm_90"}
    for arch, fb in ptx.items():
        assert fb["forward"].startswith(f".visible .entry {spec.name}_cuda_kernel_forward(")
        assert set(fb) == {"forward"}
        assert ".version" not in fb["forward"] and "pnanovdb" not in fb["forward"], "module header leaked"
        assert fb["forward"].rstrip().endswith("}")


def test_ptx_of_tile_kernels_is_reproducible():
    # NVVM's tile PTX is the flakiest part of the toolchain: compile twice, alone and batched
    specs = [build_spec(f, s) for f in ("tile_matmul", "tile_reduce", "tile_scan") for s in (5, 6)]
    first, second = _ptx(specs), _ptx(specs)
    assert first == second
    for spec in specs[::2]:
        assert _ptx([spec]) == {spec.name: first[spec.name]}


def test_nvrtc_archs_include_the_default():
    assert "sm_90" in warp_adapter.nvrtc_archs()


def test_toolchain_fingerprint():
    tc = warp_adapter.toolchain()
    assert tc["warp_lang"] == "1.19.0"
    assert tc["nvrtc"] and tc["nvrtc"][0].isdigit(), "NVRTC version missing"
    assert tc["ptx_archs"] == ["sm_90"]


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
