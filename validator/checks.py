"""The checks, cheapest first. Each returns a verdict {"status": ..., "reason": ...}.

`check_static` runs the checks that need no compiler (schema, safety, spec/source agreement);
`check_batch` recompiles and executes a batch of kernels that share one Warp module.
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
import time

import numpy as np

from extractor import warp_adapter
from generator import records
from generator.inputs import INPUT_SETS, NP_DTYPES, make_inputs, second_launch
from generator.liveness import dead_output
from generator.render import render_source
from generator.oracle import branch_points, run_oracle
from generator.races import first_race
from generator.spec import TILE_BLOCK_DIM, KernelSpec, is_float, scalar_dtype
from validator import gradients
from validator.outcomes import EXECUTION_CHECKS, KERNEL_CHECKS, Check, check_names  # noqa: F401 (re-exported)
from validator.verdicts import (  # noqa: F401 (re-exported)
    FINDINGS_CONFIG, GRADIENT_MISMATCH, MUST_PASS, PASSED, KernelResult, Verdict, check_consistency, check_safety, check_schema, check_spec_source,
    check_static, failed, not_run, split_reason, unpublishable)

# rtol/atol per dtype for Warp's result against the float64 oracle.
TOLERANCES = {"float16": (1e-2, 1e-2), "float32": (1e-3, 1e-4), "float64": (1e-9, 1e-12)}


NO_VALIDATE = "generated with --no-validate: codegen only"


# ---- execution

tensor_json = records.tensor_json


def tensor_from_json(t: dict) -> np.ndarray:
    return np.array(t["data"], dtype=t["dtype"]).reshape(t["shape"])


def compare(name: str, actual: np.ndarray, expected: np.ndarray, dtype: str) -> str | None:
    """None when `actual` matches the oracle, else the reason."""
    if actual.shape != expected.shape:
        return f"output {name}: shape {actual.shape} != oracle {expected.shape}"
    if actual.dtype != np.dtype(NP_DTYPES[dtype]):
        return f"output {name}: dtype {actual.dtype} != {dtype}"
    if is_float(dtype):
        if not np.all(np.isfinite(expected)):
            return f"output {name}: oracle produced NaN/Inf (generator bug)"
        if not np.all(np.isfinite(actual)):
            return f"output {name}: NaN/Inf in output"
        rtol, atol = TOLERANCES[scalar_dtype(dtype)]
        a64 = actual.astype(np.float64)
        bad = ~np.isclose(a64, expected, rtol=rtol, atol=atol)
        if bad.any():
            k = int(np.argmax(bad))
            return f"output {name}: mismatch at flat index {k}: {a64.ravel()[k]!r} vs oracle {expected.ravel()[k]!r}"
    elif not np.array_equal(actual.astype(np.int64), expected):
        return f"output {name}: integer mismatch"
    # vacuous: the kernel wrote one constant where the oracle's values differ, even within
    # tolerance; a variation the output dtype cannot represent (tanh saturating at 1.0 in
    # float32 while float64 still moves in the 20th digit) does not count
    if expected.size > 1 and np.ptp(actual) == 0:
        eps = float(np.finfo(NP_DTYPES[scalar_dtype(dtype)]).eps) if is_float(dtype) else 0.0
        if np.ptp(expected) > 4 * eps * float(np.max(np.abs(expected))):
            return f"output {name}: vacuous (constant output while the oracle varies)"
    return None


def _arg_values(kernel, spec: KernelSpec, inputs: dict, device: str, grad: set = frozenset()) -> tuple[list, dict]:
    """The launch arguments (Warp arrays, struct instances, scalars) and the arrays by name;
    arrays named in `grad` are created with requires_grad."""
    values, arrays = [], {}
    for a in spec.args:
        if a.kind == "array":
            arrays[a.name] = warp_adapter.to_device_array(inputs[a.name], a.dtype, device, requires_grad=a.name in grad)
            values.append(arrays[a.name])
        elif a.kind == "struct":
            values.append(warp_adapter.make_struct(kernel, a.name, {f: (inputs[a.name][f], t) for f, t in a.fields}))
        else:
            values.append(NP_DTYPES[a.dtype](inputs[a.name]))
    return values, arrays


def _tile_block_dim(spec: KernelSpec) -> int | None:
    return TILE_BLOCK_DIM if spec.launch == "tiled" else None


def run_on(kernel, spec: KernelSpec, inputs: dict, device: str = "cpu") -> dict[str, np.ndarray]:
    values, arrays = _arg_values(kernel, spec, inputs, device)
    warp_adapter.launch(kernel, spec.dim, values, device, _tile_block_dim(spec))
    return {a.name: arrays[a.name].numpy() for a in spec.args if a.kind == "array" and a.role in ("out", "inout")}


def execute_backward(kernel, spec: KernelSpec, inputs: dict, device: str = "cpu",
                     declared: str | None = None) -> tuple[dict, dict | None]:
    """The gradient check (`validator.gradients`): (verdict, example or None). `declared`: Warp's
    codegen warning that the kernel may not be differentiable.

    The seeded inputs are multiples of 1/256 and literals of 1/8, so an input or an intermediate
    value can sit exactly on a branch threshold (or on it in float32 but not in float64). So a
    verdict other than passed is checked again at a nearby off-grid point (`gradients.nearby`):
    a kink at the seeded inputs is decided there (the example says which point), and a mismatch
    counts only if it persists there; one that vanishes is `inconclusive` with that reason."""
    ins, outs, why_not = gradients.arrays_to_check(spec, warp_adapter.missing_adjoints(), declared)
    if why_not:
        return not_run(why_not), None
    verdict, example = _gradient_at(kernel, spec, inputs, ins, outs, device)
    if verdict["status"] == "passed":
        return verdict, example
    near = gradients.nearby(spec, inputs, ins)
    again, example_near = _gradient_at(kernel, spec, near, ins, outs, device, "nearby")
    if verdict["status"] == "inconclusive" and again["status"] == "inconclusive":
        # a kink near the first nearby point too (a near-tie of two values): one more, elsewhere
        near = gradients.nearby(spec, inputs, ins, 2)
        again, example_near = _gradient_at(kernel, spec, near, ins, outs, device, "nearby2")
    if verdict["status"] == "inconclusive" and again["status"] != "inconclusive":
        # the kink was the grid's (an input or intermediate exactly on a threshold): decided off it
        return again, example_near
    if verdict["status"] == "failed" and again["status"] != "failed":
        verdict = {"status": "inconclusive",
                   "reason": f"gradient: a mismatch at the seeded inputs that vanishes at a nearby off-grid point "
                             f"(a float32/float64 tie at a branch), {verdict['reason']}"}
    return verdict, example


def _gradient_at(kernel, spec: KernelSpec, inputs: dict, ins: list, outs: list, device: str,
                 point: str = "seeded") -> tuple[dict, dict]:
    w, vs = gradients.seeded_probe(spec, inputs, ins, outs)
    values, arrays = _arg_values(kernel, spec, inputs, device, {a.name for a in ins + outs})
    # Warp is seeded with w rounded to each output's dtype; the oracle's loss uses the same w
    w = {a.name: w[a.name].astype(NP_DTYPES[a.dtype]).astype(np.float64) for a in outs}
    seeds = {k: w[a.name] for k, a in enumerate(spec.args) if a.name in w}
    warp_adapter.launch_with_adjoint(kernel, spec.dim, values, seeds, device, _tile_block_dim(spec))
    grads = {a.name: arrays[a.name].grad.numpy() for a in ins}
    verdict, example = gradients.compare(spec, inputs, grads, w, vs)
    return verdict, ({**example, "point": point} if example is not None else None)


def run_cpu(kernel, spec: KernelSpec, inputs: dict) -> dict[str, np.ndarray]:
    return run_on(kernel, spec, inputs, "cpu")


def execute_and_compare(kernel, spec: KernelSpec, sets: list[dict], taken: set | None = None,
                        launches: list | None = None) -> tuple[dict, dict]:
    """Run on the CPU on every input set, and on set 0 at the second launch size where the
    kernel has one (`generator.inputs.second_launch`), compare each run with the oracle (adding
    the branch outcomes it takes to `taken`), then require live outputs and no data race on any
    set (`generator.races`: the CPU runs the threads in order, a GPU does not): (verdict, set
    0's outputs). `launches`, when given, gets every launch size run and matched, in order."""
    outs = []
    for k, inputs in enumerate(sets):
        race = first_race(spec, inputs)
        if race:
            return failed(f"data_race: input set {k}: {race}"), {}
        outputs = run_cpu(kernel, spec, inputs)
        reason = _match_oracle(spec, inputs, outputs, taken)
        if reason:
            return failed(f"execute_cpu: input set {k}: {reason}" if k else f"execute_cpu: {reason}"), outs[0] if outs else outputs
        outs.append(outputs)
    dead = dead_output(spec, sets, outs)
    if dead:
        return failed(f"dead_output: {dead}"), outs[0]
    if launches is not None and sets:
        launches.append(list(spec.dim))
    small = second_launch(spec)
    if small is not None and sets:
        fewer = dataclasses.replace(spec, dim=small)
        reason = _match_oracle(fewer, sets[0], run_cpu(kernel, fewer, sets[0]), taken)
        if reason:
            return failed(f"execute_cpu: launch size {list(small)}: {reason}"), outs[0]
        if launches is not None:
            launches.append(list(small))
    return PASSED, outs[0]


def _match_oracle(spec: KernelSpec, inputs: dict, outputs: dict, taken: set | None) -> str | None:
    expected = run_oracle(spec, inputs, taken)
    for a in spec.args:
        if a.name in expected:
            reason = compare(a.name, outputs[a.name], expected[a.name], a.dtype)
            if reason:
                return reason
    return None


def coverage(spec: KernelSpec, taken: set, launches: list = ()) -> dict:
    """What execution covered: branch points, their possible and taken outcomes over the input
    sets, and the launch sizes run and matched with the oracle (none when nothing ran)."""
    points = branch_points(spec)
    return {"branch_points": len(points), "outcomes": sum(points.values()),
            "taken": sum(1 for node, _ in taken if node in points), "launch_dims": [list(d) for d in launches]}


# the number of operations a kernel's own thread does whose rounding FMA contraction may change
# (a multiply-add fused on one backend, not on the other): a generous constant per output element
FMA_OPS = 16


def accumulation_length(spec: KernelSpec) -> int:
    """An upper bound on how many floating-point terms can be combined into one output element in
    an order (or with a rounding) that differs between the CPU and the GPU: every thread can add
    into one element with an atomic (launch size), and a tile reduction, scan or matmul, or a
    loop, combines at most all elements of one array (largest array); plus FMA_OPS for FMA
    contraction of the thread's own arithmetic."""
    threads = int(np.prod(spec.dim)) * (TILE_BLOCK_DIM if spec.launch == "tiled" else 1)
    largest = max((int(np.prod(a.shape)) for a in spec.args if a.kind == "array"), default=1)
    return max(threads, largest) + FMA_OPS


def gpu_tolerance(dtype: str, n: int) -> float:
    """The bound on |GPU - CPU| for one output element, relative to the sum of the magnitudes of
    the terms combined into it, when at most `n` terms are combined in a different order.

    Recursive summation of n terms in any order gives a result within gamma_(n-1) * sum|x_i| of
    the exact sum, gamma_k = k*u / (1 - k*u) with u the unit roundoff of the dtype (Higham,
    Accuracy and Stability of Numerical Algorithms, 2nd ed., eq. 4.4); two orders (CPU and GPU)
    are each that close to the exact sum, so they differ by at most 2 * gamma_(n-1) * sum|x_i|.
    A fused multiply-add rounds once where a separate multiply and add round twice: one more
    rounding per operation, counted in n. Integers (atomic add/min/max are exact and
    associative, wrap-around included) must agree exactly: 0. Where n*u >= 1 the bound says
    nothing: inf."""
    if not is_float(dtype):
        return 0.0
    u = float(np.finfo(NP_DTYPES[scalar_dtype(dtype)]).eps) / 2
    k = max(n - 1, 1)
    if k * u >= 1:
        return float("inf")
    return 2 * k * u / (1 - k * u)


def compare_gpu_cpu(name: str, gpu: np.ndarray, cpu: np.ndarray, dtype: str, n: int) -> tuple[str | None, float]:
    """(None or the reason, max |GPU - CPU|). The sum of the terms' magnitudes is not known from
    the outputs; it is estimated as the largest |CPU output| of the array, at least 1 (the
    seeded inputs are of order 1), so a cancelling sum is judged at the scale of its terms."""
    if gpu.shape != cpu.shape:
        return f"output {name}: shape {gpu.shape} != CPU {cpu.shape}", float("inf")
    if not is_float(dtype):
        diff = np.abs(gpu.astype(np.int64) - cpu.astype(np.int64))
        worst = float(diff.max()) if diff.size else 0.0
        return (f"output {name}: integer mismatch against CPU (max |diff| {worst:g})" if worst else None), worst
    g, c = gpu.astype(np.float64), cpu.astype(np.float64)
    diff = np.abs(g - c)
    worst = float(np.max(diff)) if diff.size else 0.0
    scale = max(float(np.max(np.abs(c))) if c.size else 0.0, 1.0)
    rtol, atol = TOLERANCES[scalar_dtype(dtype)]
    bound = np.maximum(gpu_tolerance(dtype, n) * scale, atol + rtol * np.abs(c))
    bad = ~(diff <= bound)
    if bad.any():
        k = int(np.argmax(bad))
        return (f"output {name}: against CPU at flat index {k}: {g.ravel()[k]!r} vs {c.ravel()[k]!r} "
                f"(|diff| {diff.ravel()[k]:.3g} > bound {bound.ravel()[k]:.3g}, {n} terms)"), worst
    return None, worst


def execute_gpu_and_compare(kernel, spec: KernelSpec, inputs: dict, cpu_outputs: dict, device: str = "cuda:0") -> dict:
    """Run on a CUDA device; the result must match the oracle (per-dtype tolerance) and the CPU
    run (`gpu_tolerance` of the kernel's `accumulation_length`). The verdict carries
    `max_abs_diff`, the largest |GPU - CPU| over the outputs."""
    outputs = run_on(kernel, spec, inputs, device)
    expected = run_oracle(spec, inputs)
    n = accumulation_length(spec)
    worst = 0.0
    for a in spec.args:
        if a.name in expected:
            reason = compare(a.name, outputs[a.name], expected[a.name], a.dtype)
            if reason:
                return failed(f"execute_gpu: {reason}")
            reason, diff = compare_gpu_cpu(a.name, outputs[a.name], cpu_outputs[a.name], a.dtype, n)
            worst = max(worst, diff)
            if reason:
                return {**failed(f"execute_gpu: against CPU: {reason}"), "max_abs_diff": diff}
    return {"status": "passed", "max_abs_diff": worst}


def gpu_status(want: bool | None = None) -> tuple[bool, str]:
    """(run GPU execution?, reason when not). want=None: wherever a CUDA device exists."""
    if want is False:
        return False, "GPU execution not requested (--device cpu, or --gpus none)"
    if warp_adapter.cuda_available():
        return True, ""
    return False, "no CUDA device on this machine"


def _error(stage: str, e: Exception) -> str:
    msg = str(e).strip().splitlines()[-1][:300] if str(e).strip() else type(e).__name__
    return f"{stage}: {type(e).__name__}: {msg}"


class _Stages:
    """Wall seconds per stage, accumulated into a dict (or nowhere)."""

    def __init__(self, into: dict | None):
        self.into, self.name, self.t0 = into, None, 0.0

    def start(self, name: str) -> None:
        self.name, self.t0 = name, time.perf_counter()

    def stop(self) -> None:
        if self.into is not None and self.name:
            self.into[self.name] = self.into.get(self.name, 0.0) + time.perf_counter() - self.t0
        self.name = None

    @contextlib.contextmanager
    def __call__(self, name: str):
        self.start(name)
        try:
            yield
        finally:
            self.stop()


def check_batch(specs: list[KernelSpec], archs=warp_adapter.DEFAULT_ARCHS,
                validate: bool = True, gpu: bool | None = None, timings: dict | None = None,
                device: str | None = None, on_kernel=None) -> list[KernelResult]:
    """Extract, compile (one shared Warp module: LLVM for the CPU, NVRTC to PTX) and execute.

    Returns one `KernelResult` per kernel: the kernel's rejection (`error`), or its IR, inputs,
    outputs, a `Verdict` per check (KERNEL_CHECKS), gradient example, coverage and toolchain;
    the IR is cut from the sources the compilers were given (`warp_adapter.cut_ir`). A batch-level failure (codegen or compile) is isolated
    by bisection, so one bad kernel costs only its own record, with the compiler's reason.
    With validate=False only Warp's codegen runs (the --no-validate fast path): no PTX, no
    compile, no execution, and those verdicts are not_run with that reason. `timings`, when
    given, accumulates wall seconds per stage (import, codegen, nvrtc, llvm, cut, execute).
    `device`: the CUDA device to load and launch on where GPU execution runs (default cuda:0).
    The GPU load is part of the bisected block (a kernel that fails to load costs only its own
    record); a sticky CUDA error raises `warp_adapter.CudaContextLost` naming the kernel, for
    the caller to end the process (its CUDA context is unusable). `on_kernel(name)`, when
    given, is called before a kernel's launches begin (so a caller can tell, should the process
    die there, which kernel it was running).
    """
    gpu_device = device or "cuda:0"
    clock = _Stages(timings)
    with tempfile.TemporaryDirectory(prefix="warp-ir-batch-") as workdir:
        stage = "codegen"
        ptx = None
        try:
            with clock("import"):
                # the only text ever imported: the renderings of the specs (never a record's source)
                module, kernels = warp_adapter.load_batch({s.name: render_source(s) for s in specs}, workdir)
            if validate:
                stage = "compile_cuda"
                with clock("nvrtc"):
                    ptx, cu = warp_adapter.compile_ptx(module, kernels, workdir, archs)
                stage = "compile_cpu"
                with clock("llvm"):
                    cpp = warp_adapter.compile_cpu(module)
            else:
                with clock("codegen"):
                    cpp, cu = warp_adapter.codegen_sources(module, kernels, archs)
            stage = "cut"
            with clock("cut"):
                ir = warp_adapter.cut_ir(kernels, cpp, cu, workdir)
            toolchain = warp_adapter.toolchain(cpp, cu, archs)
            declared = warp_adapter.declared_nondifferentiable(kernels, cu)
            use_gpu, gpu_reason = gpu_status(gpu) if validate else (False, NO_VALIDATE)
            if use_gpu:
                stage = "execute_gpu: CUDA module load"
                t_load = time.perf_counter()
                how = warp_adapter.load_cuda_module(module, gpu_device, workdir, archs, cu)
                if timings is not None:  # "nvrtc_load": NVRTC ran a second time, to load
                    key = "gpu_load" if how == "aot_ptx" else "nvrtc_load"
                    timings[key] = timings.get(key, 0.0) + time.perf_counter() - t_load
        except warp_adapter.CudaContextLost:
            raise
        except Exception as e:  # noqa: BLE001 - any compiler error becomes a counted reason
            if stage.startswith("execute_gpu"):
                warp_adapter.raise_if_context_lost(e, specs[0].name if len(specs) == 1 else None)
            if len(specs) > 1:
                mid = len(specs) // 2
                return (check_batch(specs[:mid], archs, validate, gpu, timings, device, on_kernel)
                        + check_batch(specs[mid:], archs, validate, gpu, timings, device, on_kernel))
            return [KernelResult.rejected(_error(stage, e))]
        if not validate:
            skipped = not_run(NO_VALIDATE)
            results = [_typed({"ir": ir[spec.name], "inputs": make_inputs(spec), "outputs": {}, "compile_cpu": skipped,
                               "compile_cuda": skipped, "execute_cpu": skipped, "execute_gpu": skipped,
                               "execute_backward_cpu": skipped, "execute_backward_gpu": skipped, "grad": None,
                               "coverage": coverage(spec, set()), "toolchain": toolchain}) for spec in specs]
            warp_adapter.unload(module)
            return results
        results = []
        # the GPU binary loaded from the stored PTX: no launch may load (or compile) another
        gpu_loaded = warp_adapter.loaded_cuda_variants(module, gpu_device) if use_gpu else None
        clock.start("execute")
        for spec in specs:
            if on_kernel:
                on_kernel(spec.name)
            sets = [make_inputs(spec, k) for k in range(INPUT_SETS)]
            inputs = sets[0]
            res = {"ir": {**ir[spec.name], "ptx": ptx[spec.name]}, "inputs": inputs,
                   "compile_cpu": PASSED, "compile_cuda": PASSED, "toolchain": toolchain}
            taken: set = set()
            launches: list = []
            try:
                verdict, outputs = execute_and_compare(kernels[spec.name], spec, sets, taken, launches)
            except Exception as e:  # noqa: BLE001
                verdict, outputs = failed(f"execute_cpu: {type(e).__name__}: {str(e)[:200]}"), {}
            backward, grad = not_run("CPU execution failed"), None
            if verdict["status"] == "passed":
                try:
                    backward, grad = execute_backward(kernels[spec.name], spec, inputs, "cpu", declared.get(spec.name))
                except Exception as e:  # noqa: BLE001
                    backward = failed(f"execute_backward_cpu: {type(e).__name__}: {str(e)[:200]}")
            if not use_gpu:
                on_gpu = not_run(gpu_reason)
            elif verdict["status"] != "passed":
                on_gpu = not_run("CPU execution failed")
            else:
                try:
                    on_gpu = execute_gpu_and_compare(kernels[spec.name], spec, inputs, outputs, gpu_device)
                except Exception as e:  # noqa: BLE001
                    warp_adapter.raise_if_context_lost(e, spec.name)
                    on_gpu = failed(f"execute_gpu: {type(e).__name__}: {str(e)[:200]}")
            if on_gpu["status"] != "passed" or backward["status"] == "not_run":
                backward_gpu = not_run(gpu_reason if not use_gpu else "no GPU run or no CPU gradient check to compare")
            else:
                try:
                    backward_gpu = execute_backward(kernels[spec.name], spec, inputs, gpu_device, declared.get(spec.name))[0]
                except Exception as e:  # noqa: BLE001
                    warp_adapter.raise_if_context_lost(e, spec.name)
                    backward_gpu = failed(f"execute_backward_gpu: {type(e).__name__}: {str(e)[:200]}")
            res.update(execute_backward_cpu=backward, execute_backward_gpu=backward_gpu, grad=grad,
                       coverage=coverage(spec, taken, launches))
            res.update(execute_cpu=verdict, execute_gpu=on_gpu, outputs=outputs)
            results.append(res)
        clock.stop()
        # the stored C++ is the CPU variant compiled above; a launch that had loaded another
        # one would have run code the record does not hold
        variants = warp_adapter.loaded_cpu_variants(module)
        if variants != [warp_adapter.CPU_BLOCK_DIM]:
            bad = failed(f"execute_cpu: CPU launches loaded block_dim variants {variants}, "
                         f"not only the compiled {warp_adapter.CPU_BLOCK_DIM}")
            for res in results:
                res["execute_cpu"] = bad
        # likewise on the GPU: only the binary loaded from the stored PTX may have run
        gpu_variants = warp_adapter.loaded_cuda_variants(module, gpu_device) if use_gpu else None
        if use_gpu and (gpu_variants != gpu_loaded or list(gpu_variants) != [cu.options["block_dim"]]):
            bad = failed(f"execute_gpu: GPU launches loaded block_dim variants {sorted(gpu_variants)}, "
                         f"not only the {cu.options['block_dim']} variant loaded from the stored PTX")
            for res in results:
                res["execute_gpu"] = bad
        warp_adapter.unload(module)
        return [_typed(res) for res in results]


def _typed(res: dict) -> KernelResult:
    return KernelResult(ir=res["ir"], inputs=res["inputs"], outputs=res["outputs"],
                        verdicts={k: Verdict.from_json(k, res[k]) for k in KERNEL_CHECKS},
                        grad=res["grad"], coverage=res["coverage"], toolchain=res["toolchain"])
