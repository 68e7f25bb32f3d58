"""The GPU path's parts that can be tested without a GPU: the GPU-vs-CPU tolerance, sticky CUDA
error detection, and check_batch's control flow around a GPU load or launch that fails.

No GPU is available here: tests whose GPU is a monkeypatched stand-in say `cpu_stand_in`."""

import sys

import numpy as np
import pytest

from extractor import warp_adapter
from generator.families import build_spec
from generator.spec import TILE_BLOCK_DIM
from validator import checks


def test_gpu_tolerance_is_twice_gamma_of_the_accumulation_length():
    u32 = 2.0 ** -24
    assert checks.gpu_tolerance("float32", 1) == pytest.approx(2 * u32 / (1 - u32))
    assert checks.gpu_tolerance("float32", 1001) == pytest.approx(2 * 1000 * u32 / (1 - 1000 * u32))
    assert checks.gpu_tolerance("vec3", 100) == checks.gpu_tolerance("float32", 100)  # components are float32
    # grows with the length, and with the unit roundoff of the dtype
    lengths = [1, 2, 16, 256, 4096, 65536]
    for dtype in ("float16", "float32", "float64"):
        tols = [checks.gpu_tolerance(dtype, n) for n in lengths]
        assert tols == sorted(tols)
    tols = [checks.gpu_tolerance("float32", n) for n in lengths]
    assert len(set(tols)) == len(tols) - 1  # n=1 and n=2 both have one reordering step
    assert checks.gpu_tolerance("float64", 256) < checks.gpu_tolerance("float32", 256) < checks.gpu_tolerance("float16", 256)
    # integers: atomics are exact and associative, so CPU and GPU must agree exactly
    assert checks.gpu_tolerance("int32", 10 ** 6) == checks.gpu_tolerance("uint32", 7) == 0.0
    # beyond n*u >= 1 the bound says nothing
    assert checks.gpu_tolerance("float16", 4096) == float("inf")


def test_sums_in_another_order_pass_and_a_wrong_value_fails():
    rng = np.random.default_rng(0)
    n = 4096
    for _ in range(20):
        terms = rng.uniform(-2, 2, n).astype(np.float32)
        forward = np.float32(0)
        for t in terms:  # one order: sequential, as a CPU loop
            forward = np.float32(forward + t)
        tree = terms.copy()  # another: a tree, as a tile reduction or atomics in warp order
        while tree.size > 1:
            tree = (tree[0::2] + tree[1::2]).astype(np.float32)
        cpu, gpu = np.array([forward]), np.array([tree[0]])
        reason, diff = checks.compare_gpu_cpu("y", gpu, cpu, "float32", n)
        assert reason is None and diff == abs(float(gpu[0]) - float(cpu[0]))
    # the bound is relative to the terms' scale (at least 1): a 1% error in an O(1) sum is caught
    reason, diff = checks.compare_gpu_cpu("y", np.array([1.01], np.float32), np.array([1.0], np.float32), "float32", n)
    assert reason and "against CPU at flat index 0" in reason and "4096 terms" in reason
    assert diff == pytest.approx(0.01, rel=1e-4)
    reason, diff = checks.compare_gpu_cpu("k", np.array([3, 4], np.int32), np.array([3, 5], np.int32), "int32", n)
    assert reason and "integer mismatch" in reason and diff == 1.0
    assert checks.compare_gpu_cpu("k", np.array([3, 5], np.int32), np.array([3, 5], np.int32), "int32", n) == (None, 0.0)


def test_accumulation_length_covers_atomics_tiles_and_loops():
    atomic = build_spec("reduce_atomic", 3)  # 256 threads add into 8 bins
    assert checks.accumulation_length(atomic) >= int(np.prod(atomic.dim))
    tiled = build_spec("tile_reduce", 3)  # tiles of the arrays, TILE_BLOCK_DIM threads each
    assert checks.accumulation_length(tiled) >= int(np.prod(tiled.dim)) * TILE_BLOCK_DIM
    matvec = build_spec("matvec", 3)  # a loop over a row of A
    assert checks.accumulation_length(matvec) >= max(int(np.prod(a.shape)) for a in matvec.args if a.kind == "array")


@pytest.mark.parametrize("message,sticky", [
    ("Failed to synchronize device cuda:0: Warp CUDA error 700: an illegal memory access was encountered "
     "(in function wp_cuda_context_synchronize, warp/native/warp.cu:2712)", True),
    ("Warp CUDA error 719: unspecified launch failure", True),
    ("Warp CUDA error 716: misaligned address", True),
    ("device-side assert triggered", True),
    ("Warp CUDA error 2: out of memory (in function wp_alloc_device)", False),
    ("Warp CUDA error 209: no kernel image is available for execution on the device", False),
    ("Failed to load the module: error 7000", False),
    ("output y: mismatch at flat index 3", False),
])
def test_sticky_cuda_errors_are_told_apart(message, sticky):
    assert warp_adapter.is_sticky_cuda_error(RuntimeError(message)) is sticky
    if sticky:
        with pytest.raises(warp_adapter.CudaContextLost, match="cuda_context_lost: kernel k_1: "):
            warp_adapter.raise_if_context_lost(RuntimeError(message), "k_1")
    else:
        warp_adapter.raise_if_context_lost(RuntimeError(message), "k_1")  # returns


def _batch(n):
    return [build_spec("arith", 100 + k) for k in range(n)]


def _gpu_stand_in(monkeypatch, load):
    """A GPU that is not there: GPU execution on, the module load replaced by `load`, the GPU
    launch by one that reproduces the CPU result, the loaded variant the compiled one."""
    monkeypatch.setattr(checks, "gpu_status", lambda want=None: (True, ""))
    monkeypatch.setattr(warp_adapter, "load_cuda_module", load)
    monkeypatch.setattr(warp_adapter, "loaded_cuda_variants", lambda module, device: {TILE_BLOCK_DIM: 1})
    monkeypatch.setattr(checks, "execute_gpu_and_compare",
                        lambda kernel, spec, inputs, cpu, device="cuda:0":
                        checks.Verdict("execute_gpu", "passed", max_abs_diff=0.0))
    monkeypatch.setattr(checks, "execute_backward",
                        lambda *a, **k: (checks.Verdict.not_run("execute_backward_cpu", "stand-in"), None))


def test_a_kernel_that_fails_to_load_on_the_gpu_costs_only_its_record_cpu_stand_in(monkeypatch):
    specs = _batch(4)
    bad = specs[2].name
    loads = []

    def load(module, device, workdir, archs, cu):
        loads.append(device)
        if f"{bad}_cuda_kernel_forward" in cu.source:
            raise RuntimeError("Warp CUDA error 218: a PTX JIT compilation failed (stand-in)")
        return "aot_ptx"

    _gpu_stand_in(monkeypatch, load)
    timings = {}
    results = checks.check_batch(specs, gpu=True, device="cuda:1", timings=timings)
    assert [r.error is not None for r in results] == [False, False, True, False]
    assert results[2].error.reason_code == "execute_gpu"
    assert results[2].error.reason.startswith("execute_gpu: CUDA module load: RuntimeError: Warp CUDA error 218")
    assert all(r.verdicts["execute_gpu"].to_json() == {"status": "passed", "max_abs_diff": 0.0}
               for k, r in enumerate(results) if k != 2)
    assert set(loads) == {"cuda:1"} and "gpu_load" in timings and "nvrtc_load" not in timings


def test_a_sticky_error_in_a_gpu_launch_raises_context_lost_naming_the_kernel_cpu_stand_in(monkeypatch):
    specs = _batch(3)
    _gpu_stand_in(monkeypatch, lambda *a: "aot_ptx")

    def launch(kernel, spec, inputs, cpu, device="cuda:0"):
        if spec.name == specs[1].name:
            raise RuntimeError(f"Failed to synchronize device {device}: Warp CUDA error 700: "
                               "an illegal memory access was encountered (stand-in)")
        return checks.Verdict("execute_gpu", "passed", max_abs_diff=0.0)

    monkeypatch.setattr(checks, "execute_gpu_and_compare", launch)
    with pytest.raises(warp_adapter.CudaContextLost) as e:
        checks.check_batch(specs, gpu=True)
    assert e.value.kernel == specs[1].name and "error 700" in e.value.message


def test_without_a_gpu_nothing_is_loaded_and_the_verdict_is_not_run(monkeypatch):
    if warp_adapter.cuda_available():
        pytest.skip("this machine has a GPU")
    monkeypatch.setattr(warp_adapter, "load_cuda_module", lambda *a: pytest.fail("loaded a CUDA module without a GPU"))
    specs = _batch(1)
    [res] = checks.check_batch(specs)
    assert res.verdicts["execute_gpu"].to_json() == checks.not_run("no CUDA device on this machine")


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
