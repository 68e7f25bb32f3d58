"""The checks, cheapest first. The static checks return the stored verdict {"status", "reason"?};
the kernel checks (compile, execute, GPU, backward) a `Verdict`, gathered in a `KernelResult`.

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
from generator.spec import KernelSpec
from validator import gradients
from validator.launch import arg_values, run_cpu, run_on, tile_block_dim  # noqa: F401 (re-exported)
from validator.outcomes import EXECUTION_CHECKS, KERNEL_CHECKS, Check, check_names  # noqa: F401 (re-exported)
from validator.tolerance import (  # noqa: F401 (re-exported)
    FMA_OPS, TOLERANCES, accumulation_length, compare, compare_gpu_cpu, gpu_tolerance)
from validator.verdicts import (  # noqa: F401 (re-exported)
    FINDINGS_CONFIG, GRADIENT_MISMATCH, MUST_PASS, PASSED, KernelResult, Verdict, check_consistency, check_safety, check_schema, check_spec_source,
    check_static, failed, not_run, split_reason, unpublishable)

NO_VALIDATE = "generated with --no-validate: codegen only"

COMPILE_CPU, COMPILE_CUDA = Check.COMPILE_CPU.value, Check.COMPILE_CUDA.value
EXECUTE_CPU, EXECUTE_GPU = Check.EXECUTE_CPU.value, Check.EXECUTE_GPU.value
BACKWARD_CPU, BACKWARD_GPU = Check.EXECUTE_BACKWARD_CPU.value, Check.EXECUTE_BACKWARD_GPU.value


# ---- execution

tensor_json = records.tensor_json


def tensor_from_json(t: dict) -> np.ndarray:
    return np.array(t["data"], dtype=t["dtype"]).reshape(t["shape"])


def execute_backward(kernel, spec: KernelSpec, inputs: dict, device: str = "cpu",
                     declared: str | None = None) -> tuple[Verdict, dict | None]:
    """The gradient check (`validator.gradients`): (verdict, example or None). `declared`: Warp's
    codegen warning that the kernel may not be differentiable.

    The seeded inputs are multiples of 1/256 and literals of 1/8, so an input or an intermediate
    value can sit exactly on a branch threshold (or on it in float32 but not in float64). So a
    verdict other than passed is checked again at a nearby off-grid point (`gradients.nearby`):
    a kink at the seeded inputs is decided there (the example says which point), and a mismatch
    counts only if it persists there; one that vanishes is `inconclusive` with that reason."""
    check = BACKWARD_CPU if device == "cpu" else BACKWARD_GPU
    ins, outs, why_not = gradients.arrays_to_check(spec, warp_adapter.missing_adjoints(), declared)
    if why_not:
        return Verdict.not_run(check, why_not), None
    verdict, example = _gradient_at(kernel, spec, inputs, ins, outs, device, check)
    if verdict.passed:
        return verdict, example
    near = gradients.nearby(spec, inputs, ins)
    again, example_near = _gradient_at(kernel, spec, near, ins, outs, device, check, "nearby")
    if verdict.status == "inconclusive" and again.status == "inconclusive":
        # a kink near the first nearby point too (a near-tie of two values): one more, elsewhere
        near = gradients.nearby(spec, inputs, ins, 2)
        again, example_near = _gradient_at(kernel, spec, near, ins, outs, device, check, "nearby2")
    if verdict.status == "inconclusive" and again.status != "inconclusive":
        # the kink was the grid's (an input or intermediate exactly on a threshold): decided off it
        return again, example_near
    if verdict.status == "failed" and again.status != "failed":
        verdict = Verdict(check, "inconclusive", None,
                          f"gradient: a mismatch at the seeded inputs that vanishes at a nearby off-grid point "
                          f"(a float32/float64 tie at a branch), {verdict.reason}")
    return verdict, example


def _gradient_at(kernel, spec: KernelSpec, inputs: dict, ins: list, outs: list, device: str, check: str,
                 point: str = "seeded") -> tuple[Verdict, dict]:
    w, vs = gradients.seeded_probe(spec, inputs, ins, outs)
    values, arrays = arg_values(kernel, spec, inputs, device, {a.name for a in ins + outs})
    # Warp is seeded with w rounded to each output's dtype; the oracle's loss uses the same w
    w = {a.name: w[a.name].astype(NP_DTYPES[a.dtype]).astype(np.float64) for a in outs}
    seeds = {k: w[a.name] for k, a in enumerate(spec.args) if a.name in w}
    warp_adapter.launch_with_adjoint(kernel, spec.dim, values, seeds, device, tile_block_dim(spec))
    grads = {a.name: arrays[a.name].grad.numpy() for a in ins}
    verdict, example = gradients.compare(spec, inputs, grads, w, vs)
    return Verdict.from_json(check, verdict), ({**example, "point": point} if example is not None else None)


def execute_and_compare(kernel, spec: KernelSpec, sets: list[dict], taken: set | None = None,
                        launches: list | None = None) -> tuple[Verdict, dict]:
    """Run on the CPU on every input set, and on set 0 at the second launch size where the
    kernel has one (`generator.inputs.second_launch`), compare each run with the oracle (adding
    the branch outcomes it takes to `taken`), then require live outputs and no data race on any
    set (`generator.races`: the CPU runs the threads in order, a GPU does not): (verdict, set
    0's outputs). `launches`, when given, gets every launch size run and matched, in order."""
    outs = []
    for k, inputs in enumerate(sets):
        race = first_race(spec, inputs)
        if race:
            return Verdict.failure(EXECUTE_CPU, f"data_race: input set {k}: {race}"), {}
        outputs = run_cpu(kernel, spec, inputs)
        reason = _match_oracle(spec, inputs, outputs, taken)
        if reason:
            where = f"input set {k}: " if k else ""
            return Verdict.failure(EXECUTE_CPU, f"execute_cpu: {where}{reason}"), outs[0] if outs else outputs
        outs.append(outputs)
    dead = dead_output(spec, sets, outs)
    if dead:
        return Verdict.failure(EXECUTE_CPU, f"dead_output: {dead}"), outs[0]
    if launches is not None and sets:
        launches.append(list(spec.dim))
    small = second_launch(spec)
    if small is not None and sets:
        fewer = dataclasses.replace(spec, dim=small)
        reason = _match_oracle(fewer, sets[0], run_cpu(kernel, fewer, sets[0]), taken)
        if reason:
            return Verdict.failure(EXECUTE_CPU, f"execute_cpu: launch size {list(small)}: {reason}"), outs[0]
        if launches is not None:
            launches.append(list(small))
    return Verdict(EXECUTE_CPU, "passed"), outs[0]


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


def execute_gpu_and_compare(kernel, spec: KernelSpec, inputs: dict, cpu_outputs: dict,
                            device: str = "cuda:0") -> Verdict:
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
                return Verdict.failure(EXECUTE_GPU, f"execute_gpu: {reason}")
            reason, diff = compare_gpu_cpu(a.name, outputs[a.name], cpu_outputs[a.name], a.dtype, n)
            worst = max(worst, diff)
            if reason:
                return dataclasses.replace(Verdict.failure(EXECUTE_GPU, f"execute_gpu: against CPU: {reason}"),
                                           max_abs_diff=diff)
    return Verdict(EXECUTE_GPU, "passed", max_abs_diff=worst)


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


def _raised(check: str, e: Exception) -> Verdict:
    """`check` failed because its run raised `e`."""
    return Verdict.failure(check, f"{check}: {type(e).__name__}: {str(e)[:200]}")


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
    clock = _Stages(timings)
    with tempfile.TemporaryDirectory(prefix="warp-ir-batch-") as workdir:
        batch = _Batch(workdir, archs, device or "cuda:0", clock)
        try:
            batch.build(specs, validate, gpu)
        except warp_adapter.CudaContextLost:
            raise
        except Exception as e:  # noqa: BLE001 - any compiler error becomes a counted reason
            if batch.stage.startswith("execute_gpu"):
                warp_adapter.raise_if_context_lost(e, specs[0].name if len(specs) == 1 else None)
            if len(specs) > 1:
                mid = len(specs) // 2
                return (check_batch(specs[:mid], archs, validate, gpu, timings, device, on_kernel)
                        + check_batch(specs[mid:], archs, validate, gpu, timings, device, on_kernel))
            return [KernelResult.rejected(_error(batch.stage, e))]
        results = batch.execute(specs, on_kernel) if validate else [batch.codegen_only(spec) for spec in specs]
        warp_adapter.unload(batch.module)
        return results


class _Batch:
    """One batch's shared Warp module, built for its kernels' checks (`build`), then executed
    kernel by kernel (`execute`). `stage` names the step under way, for a compiler's reason."""

    def __init__(self, workdir: str, archs, gpu_device: str, clock: _Stages):
        self.workdir, self.archs, self.gpu_device, self.clock = workdir, archs, gpu_device, clock
        self.stage, self.ptx = "codegen", None

    def build(self, specs: list[KernelSpec], validate: bool, gpu: bool | None) -> None:
        """Import the renderings, compile them (or only run codegen), cut the IR and, where GPU
        execution runs, load the CUDA module (timed as "gpu_load", or "nvrtc_load" where NVRTC
        ran a second time, to load)."""
        workdir, archs, clock = self.workdir, self.archs, self.clock
        with clock("import"):
            # the only text ever imported: the renderings of the specs (never a record's source)
            self.module, self.kernels = warp_adapter.load_batch({s.name: render_source(s) for s in specs}, workdir)
        if validate:
            self.stage = "compile_cuda"
            with clock("nvrtc"):
                self.ptx, cu = warp_adapter.compile_ptx(self.module, self.kernels, workdir, archs)
            self.stage = "compile_cpu"
            with clock("llvm"):
                cpp = warp_adapter.compile_cpu(self.module)
        else:
            with clock("codegen"):
                cpp, cu = warp_adapter.codegen_sources(self.module, self.kernels, archs)
        self.stage = "cut"
        with clock("cut"):
            self.ir = warp_adapter.cut_ir(self.kernels, cpp, cu, workdir)
        self.cu = cu
        self.toolchain = warp_adapter.toolchain(cpp, cu, archs)
        self.declared = warp_adapter.declared_nondifferentiable(self.kernels, cu)
        self.use_gpu, self.gpu_reason = gpu_status(gpu) if validate else (False, NO_VALIDATE)
        if self.use_gpu:
            self.stage = "execute_gpu: CUDA module load"
            t_load = time.perf_counter()
            how = warp_adapter.load_cuda_module(self.module, self.gpu_device, workdir, archs, cu)
            if clock.into is not None:
                key = "gpu_load" if how == "aot_ptx" else "nvrtc_load"
                clock.into[key] = clock.into.get(key, 0.0) + time.perf_counter() - t_load

    def codegen_only(self, spec: KernelSpec) -> KernelResult:
        """The --no-validate record: Warp's codegen, every compile and execute check not_run."""
        return KernelResult(ir=self.ir[spec.name], inputs=make_inputs(spec), outputs={},
                            verdicts={k: Verdict.not_run(k, NO_VALIDATE) for k in KERNEL_CHECKS}, grad=None,
                            coverage=coverage(spec, set()), toolchain=self.toolchain)

    def execute(self, specs: list[KernelSpec], on_kernel=None) -> list[KernelResult]:
        """Every kernel's checks, then the batch's: only the compiled variants may have run."""
        # the GPU binary loaded from the stored PTX: no launch may load (or compile) another
        gpu_loaded = warp_adapter.loaded_cuda_variants(self.module, self.gpu_device) if self.use_gpu else None
        results = []
        self.clock.start("execute")
        for spec in specs:
            if on_kernel:
                on_kernel(spec.name)
            results.append(self.check_kernel(spec))
        self.clock.stop()
        self.only_compiled_variants(results, gpu_loaded)
        return results

    def check_kernel(self, spec: KernelSpec) -> KernelResult:
        """One kernel's execute checks: CPU against the oracle, then its gradient on the CPU, then
        the GPU against the oracle and the CPU, then the GPU's gradient."""
        kernel, declared = self.kernels[spec.name], self.declared.get(spec.name)
        sets = [make_inputs(spec, k) for k in range(INPUT_SETS)]
        inputs = sets[0]
        taken: set = set()
        launches: list = []
        try:
            on_cpu, outputs = execute_and_compare(kernel, spec, sets, taken, launches)
        except Exception as e:  # noqa: BLE001
            on_cpu, outputs = _raised(EXECUTE_CPU, e), {}
        backward, grad = Verdict.not_run(BACKWARD_CPU, "CPU execution failed"), None
        if on_cpu.passed:
            try:
                backward, grad = execute_backward(kernel, spec, inputs, "cpu", declared)
            except Exception as e:  # noqa: BLE001
                backward = _raised(BACKWARD_CPU, e)
        on_gpu = self.gpu_forward(kernel, spec, inputs, outputs, on_cpu)
        backward_gpu = self.gpu_backward(kernel, spec, inputs, on_gpu, backward)
        got = {COMPILE_CPU: Verdict(COMPILE_CPU, "passed"), COMPILE_CUDA: Verdict(COMPILE_CUDA, "passed"),
               EXECUTE_CPU: on_cpu, EXECUTE_GPU: on_gpu, BACKWARD_CPU: backward, BACKWARD_GPU: backward_gpu}
        return KernelResult(ir={**self.ir[spec.name], "ptx": self.ptx[spec.name]}, inputs=inputs, outputs=outputs,
                            verdicts={k: got[k] for k in KERNEL_CHECKS}, grad=grad,
                            coverage=coverage(spec, taken, launches), toolchain=self.toolchain)

    def gpu_forward(self, kernel, spec: KernelSpec, inputs: dict, cpu_outputs: dict, on_cpu: Verdict) -> Verdict:
        if not self.use_gpu:
            return Verdict.not_run(EXECUTE_GPU, self.gpu_reason)
        if not on_cpu.passed:
            return Verdict.not_run(EXECUTE_GPU, "CPU execution failed")
        try:
            return execute_gpu_and_compare(kernel, spec, inputs, cpu_outputs, self.gpu_device)
        except Exception as e:  # noqa: BLE001
            warp_adapter.raise_if_context_lost(e, spec.name)
            return _raised(EXECUTE_GPU, e)

    def gpu_backward(self, kernel, spec: KernelSpec, inputs: dict, on_gpu: Verdict, backward: Verdict) -> Verdict:
        if not on_gpu.passed or backward.status == "not_run":
            why = self.gpu_reason if not self.use_gpu else "no GPU run or no CPU gradient check to compare"
            return Verdict.not_run(BACKWARD_GPU, why)
        try:
            verdict = execute_backward(kernel, spec, inputs, self.gpu_device, self.declared.get(spec.name))[0]
            return verdict
        except Exception as e:  # noqa: BLE001
            warp_adapter.raise_if_context_lost(e, spec.name)
            return _raised(BACKWARD_GPU, e)

    def only_compiled_variants(self, results: list[KernelResult], gpu_loaded) -> None:
        """Fail every kernel's execute check where a launch loaded a variant other than the one
        compiled (CPU) or loaded from the stored PTX (GPU): it ran code the record does not hold."""
        variants = warp_adapter.loaded_cpu_variants(self.module)
        if variants != [warp_adapter.CPU_BLOCK_DIM]:
            bad = Verdict.failure(EXECUTE_CPU, f"execute_cpu: CPU launches loaded block_dim variants {variants}, "
                                               f"not only the compiled {warp_adapter.CPU_BLOCK_DIM}")
            for res in results:
                res.verdicts[EXECUTE_CPU] = bad
        if not self.use_gpu:
            return
        gpu_variants = warp_adapter.loaded_cuda_variants(self.module, self.gpu_device)
        block_dim = self.cu.options["block_dim"]
        if gpu_variants != gpu_loaded or list(gpu_variants) != [block_dim]:
            bad = Verdict.failure(EXECUTE_GPU, f"execute_gpu: GPU launches loaded block_dim variants "
                                               f"{sorted(gpu_variants)}, not only the {block_dim} variant loaded "
                                               f"from the stored PTX")
            for res in results:
                res.verdicts[EXECUTE_GPU] = bad
