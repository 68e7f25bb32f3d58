"""The checks, cheapest first. Each returns a verdict {"status": ..., "reason": ...}.

`check_static` runs the checks that need no compiler (schema, safety, spec/source agreement);
`check_batch` recompiles and executes a batch of kernels that share one Warp module.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import tempfile
import time

import jsonschema
import numpy as np

import schemas
from extractor import warp_adapter
from generator import records
from generator.inputs import NP_DTYPES, make_inputs
from generator.oracle import run_oracle
from generator.render import render_source
from generator.spec import TILE_BLOCK_DIM, KernelSpec, is_float, scalar_dtype

PASSED = {"status": "passed"}

# rtol/atol per dtype for Warp's result against the float64 oracle.
TOLERANCES = {"float16": (1e-2, 1e-2), "float32": (1e-3, 1e-4), "float64": (1e-9, 1e-12)}


NO_VALIDATE = "generated with --no-validate: codegen only"


def failed(reason: str) -> dict:
    return {"status": "failed", "reason": reason}


def not_run(reason: str) -> dict:
    return {"status": "not_run", "reason": reason}


@functools.lru_cache(maxsize=None)
def _pair_validator():
    return jsonschema.Draft202012Validator(schemas.load("pair"))


def check_schema(record: dict) -> dict:
    errors = sorted(_pair_validator().iter_errors(record), key=lambda e: list(e.path))
    if errors:
        e = errors[0]
        where = "/".join(map(str, e.path)) or "(root)"
        return failed(f"schema: {where}: {e.message[:200]}")
    return PASSED


# ---- safety: an AST allowlist, so re-validating a downloaded dataset never runs foreign code

_ALLOWED_NODES = (
    ast.Module, ast.FunctionDef, ast.arguments, ast.arg, ast.Return, ast.Assign, ast.AugAssign,
    ast.For, ast.While, ast.If, ast.Break, ast.Continue, ast.Pass, ast.Expr, ast.Call, ast.Name,
    ast.Attribute, ast.Subscript, ast.Tuple, ast.Constant, ast.BinOp, ast.UnaryOp, ast.BoolOp,
    ast.Compare, ast.Load, ast.Store, ast.Import, ast.alias, ast.keyword, ast.Slice,
    ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Mod, ast.USub, ast.UAdd, ast.Not, ast.And, ast.Or,
    ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq, ast.ClassDef, ast.AnnAssign,
)


def check_safety(source: str) -> dict:
    """The source may only import warp as wp, use wp.<public name>, call its own helpers, and
    read fields of its own @wp.struct arguments."""
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        return failed(f"safety: source does not parse: {e.msg} (line {e.lineno})")
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    structs = {n.name: {s.target.id for s in n.body if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)}
               for n in tree.body if isinstance(n, ast.ClassDef)}
    struct_params = {}  # parameter name -> its struct's fields, per function (names are unique here)
    for fn in tree.body:
        if isinstance(fn, ast.FunctionDef):
            for arg in fn.args.args:
                if isinstance(arg.annotation, ast.Name) and arg.annotation.id in structs:
                    struct_params[arg.arg] = structs[arg.annotation.id]
    top_classes = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    field_decls = {id(s) for n in top_classes for s in n.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node not in top_classes:
            return failed(f"safety: nested class {node.name} at line {node.lineno}")
        if isinstance(node, ast.AnnAssign) and id(node) not in field_decls:
            return failed(f"safety: annotated assignment outside a struct at line {node.lineno}")
        if not isinstance(node, _ALLOWED_NODES):
            return failed(f"safety: disallowed syntax {type(node).__name__} at line {getattr(node, 'lineno', '?')}")
        if isinstance(node, ast.Import):
            if [(a.name, a.asname) for a in node.names] != [("warp", "wp")]:
                return failed(f"safety: disallowed import at line {node.lineno}")
        elif isinstance(node, ast.Attribute):
            base = node.value.id if isinstance(node.value, ast.Name) else None
            field_ok = base in struct_params and node.attr in struct_params[base]
            if not (base == "wp" or field_ok) or node.attr.startswith("_"):
                return failed(f"safety: disallowed attribute access .{node.attr} at line {node.lineno}")
        elif isinstance(node, ast.Name) and node.id.startswith("__"):
            return failed(f"safety: disallowed name {node.id} at line {node.lineno}")
        elif isinstance(node, ast.Call):
            f = node.func
            ok = isinstance(f, ast.Attribute) or (isinstance(f, ast.Name) and (f.id in defined or f.id in ("range", "float", "int")))
            if not ok:
                return failed(f"safety: call of {ast.unparse(f)} at line {node.lineno} is not a Warp builtin or own helper")
    for n in tree.body:
        if isinstance(n, ast.Import):
            continue
        if isinstance(n, ast.ClassDef):
            decos = [ast.unparse(d) for d in n.decorator_list]
            if decos != ["wp.struct"] or n.bases or n.keywords:
                return failed(f"safety: class {n.name} must be a plain @wp.struct")
            for s in n.body:
                if not (isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name) and s.value is None
                        and isinstance(s.annotation, ast.Attribute)):
                    return failed(f"safety: struct {n.name} may only declare typed fields (line {s.lineno})")
            continue
        if not isinstance(n, ast.FunctionDef):
            return failed(f"safety: top-level {type(n).__name__} at line {n.lineno} (only functions allowed)")
        decos = [ast.unparse(d) for d in n.decorator_list]
        if decos not in (["wp.kernel"], ["wp.func"]):
            return failed(f"safety: function {n.name} has decorators {decos} (only @wp.kernel/@wp.func)")
    return PASSED


def check_spec_source(record: dict) -> dict:
    try:
        spec = KernelSpec.from_json(record["spec"])
        if render_source(spec) != record["source"]:
            return failed("spec_source: the source is not the rendering of the spec")
    except (KeyError, ValueError, TypeError, IndexError) as e:
        return failed(f"spec_source: spec does not render: {type(e).__name__}: {e}")
    return PASSED


# the verdicts a stored record must carry: these always run, the others may be not_run
MUST_PASS = ("schema", "safety", "spec_source", "compile_cpu", "compile_cuda", "execute_cpu")


def check_consistency(record: dict) -> dict:
    """Every stored field that follows from the spec and source must equal its recomputation.

    Run after check_spec_source (the source is the spec's rendering)."""
    spec = KernelSpec.from_json(record["spec"])
    derived = {
        "id": records.record_id(record["source"], spec.name),
        "kernel_name": spec.name,
        "family": spec.family,
        "seed": spec.seed,
        "dim": list(spec.dim),
        "args": [records.arg_json(a) for a in spec.args],
    }
    for key, want in derived.items():
        got = record.get(key)
        if got != want or type(got) is not type(want):
            return failed(f"consistency: {key} {str(got)[:60]!r} does not follow from the spec/source ({str(want)[:60]!r})")
    want_inputs = records.inputs_json(spec, make_inputs(spec))
    got_inputs = record["io"]["inputs"]
    if set(got_inputs) != set(want_inputs):
        return failed(f"consistency: io.inputs names {sorted(got_inputs)} != {sorted(want_inputs)}")
    for name, t in want_inputs.items():
        if got_inputs[name] != t:
            return failed(f"consistency: stored input {name} is not the input seeded by the record's spec")
    for check in MUST_PASS:
        if record["checks"][check]["status"] != "passed":
            return failed(f"consistency: stored verdict {check} is {record['checks'][check]['status']}, not passed")
    return PASSED


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


def run_on(kernel, spec: KernelSpec, inputs: dict, device: str = "cpu") -> dict[str, np.ndarray]:
    values, arrays = [], {}
    for a in spec.args:
        if a.kind == "array":
            arrays[a.name] = warp_adapter.to_device_array(inputs[a.name], a.dtype, device)
            values.append(arrays[a.name])
        elif a.kind == "struct":
            values.append(warp_adapter.make_struct(kernel, a.name, {f: (inputs[a.name][f], t) for f, t in a.fields}))
        else:
            values.append(NP_DTYPES[a.dtype](inputs[a.name]))
    block_dim = TILE_BLOCK_DIM if spec.launch == "tiled" else None
    warp_adapter.launch(kernel, spec.dim, values, device, block_dim)
    return {a.name: arrays[a.name].numpy() for a in spec.args if a.kind == "array" and a.role in ("out", "inout")}


def run_cpu(kernel, spec: KernelSpec, inputs: dict) -> dict[str, np.ndarray]:
    return run_on(kernel, spec, inputs, "cpu")


def execute_and_compare(kernel, spec: KernelSpec, inputs: dict) -> tuple[dict, dict]:
    """Run on CPU, compare with the oracle: (verdict, outputs)."""
    outputs = run_cpu(kernel, spec, inputs)
    expected = run_oracle(spec, inputs)
    for a in spec.args:
        if a.name in expected:
            reason = compare(a.name, outputs[a.name], expected[a.name], a.dtype)
            if reason:
                return failed(f"execute_cpu: {reason}"), outputs
    return PASSED, outputs


def execute_gpu_and_compare(kernel, spec: KernelSpec, inputs: dict, cpu_outputs: dict) -> dict:
    """Run on the CUDA device; the result must match the oracle and the CPU run (per-dtype tolerance)."""
    outputs = run_on(kernel, spec, inputs, "cuda:0")
    expected = run_oracle(spec, inputs)
    for a in spec.args:
        if a.name in expected:
            reason = compare(a.name, outputs[a.name], expected[a.name], a.dtype)
            if reason:
                return failed(f"execute_gpu: {reason}")
            reason = compare(a.name, outputs[a.name], cpu_outputs[a.name].astype(np.float64 if is_float(a.dtype) else np.int64), a.dtype)
            if reason:
                return failed(f"execute_gpu: against CPU: {reason}")
    return PASSED


def gpu_status(want: bool | None = None) -> tuple[bool, str]:
    """(run GPU execution?, reason when not). want=None: wherever a CUDA device exists."""
    if want is False:
        return False, "GPU execution not requested (--device cpu)"
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


def check_batch(specs: list[KernelSpec], sources: list[str], archs=warp_adapter.DEFAULT_ARCHS,
                validate: bool = True, gpu: bool | None = None, timings: dict | None = None) -> list[dict]:
    """Extract, compile (one shared Warp module: LLVM for the CPU, NVRTC to PTX) and execute.

    Returns one result per kernel: {"ir", "compile_cpu", "compile_cuda", "execute_cpu",
    "execute_gpu", "inputs", "outputs"}. A batch-level failure (codegen or compile) is isolated
    by bisection, so one bad kernel costs only its own record, with the compiler's reason.
    With validate=False only Warp's codegen runs (the --no-validate fast path): no PTX, no
    compile, no execution, and those verdicts are not_run with that reason. `timings`, when
    given, accumulates wall seconds per stage (import, codegen, nvrtc, llvm, execute).
    """
    clock = _Stages(timings)
    with tempfile.TemporaryDirectory(prefix="warp-ir-batch-") as workdir:
        stage = "codegen"
        ptx = None
        try:
            with clock("import"):
                module, kernels = warp_adapter.load_batch({s.name: src for s, src in zip(specs, sources)}, workdir)
            with clock("codegen"):
                ir = warp_adapter.extract_ir(module, kernels, workdir)
            if validate:
                stage = "compile_cuda"
                with clock("nvrtc"):
                    ptx = warp_adapter.compile_ptx(module, kernels, workdir, archs)
                stage = "compile_cpu"
                with clock("llvm"):
                    warp_adapter.compile_cpu(module)
        except Exception as e:  # noqa: BLE001 - any compiler error becomes a counted reason
            if len(specs) > 1:
                mid = len(specs) // 2
                return (check_batch(specs[:mid], sources[:mid], archs, validate, gpu, timings)
                        + check_batch(specs[mid:], sources[mid:], archs, validate, gpu, timings))
            return [{"error": _error(stage, e)}]
        if not validate:
            skipped = not_run(NO_VALIDATE)
            results = [{"ir": ir[spec.name], "inputs": make_inputs(spec), "outputs": {}, "compile_cpu": skipped,
                        "compile_cuda": skipped, "execute_cpu": skipped, "execute_gpu": skipped} for spec in specs]
            warp_adapter.unload(module)
            return results
        use_gpu, gpu_reason = gpu_status(gpu)
        gpu_error = None
        if use_gpu:
            try:
                warp_adapter.compile_cuda_device(module)
            except Exception as e:  # noqa: BLE001
                gpu_error = _error("execute_gpu: CUDA module load", e)
        results = []
        clock.start("execute")
        for spec in specs:
            inputs = make_inputs(spec)
            res = {"ir": {**ir[spec.name], "ptx": ptx[spec.name]}, "inputs": inputs,
                   "compile_cpu": PASSED, "compile_cuda": PASSED}
            try:
                verdict, outputs = execute_and_compare(kernels[spec.name], spec, inputs)
            except Exception as e:  # noqa: BLE001
                verdict, outputs = failed(f"execute_cpu: {type(e).__name__}: {str(e)[:200]}"), {}
            if not use_gpu:
                on_gpu = not_run(gpu_reason)
            elif gpu_error:
                on_gpu = failed(gpu_error)
            elif verdict["status"] != "passed":
                on_gpu = not_run("CPU execution failed")
            else:
                try:
                    on_gpu = execute_gpu_and_compare(kernels[spec.name], spec, inputs, outputs)
                except Exception as e:  # noqa: BLE001
                    on_gpu = failed(f"execute_gpu: {type(e).__name__}: {str(e)[:200]}")
            res.update(execute_cpu=verdict, execute_gpu=on_gpu, outputs=outputs)
            results.append(res)
        clock.stop()
        warp_adapter.unload(module)
        return results
