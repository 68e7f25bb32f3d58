"""What runs inside the sandbox for one Python prediction (`python -m eval.child`): a job on stdin,
one result line on stdout (`sandbox.RESULT_PREFIX` + JSON).

The job: {"family", "seed", "source", "variants", "second"}. The prediction's source (already
through the safety allowlist in the parent) is imported, its kernel (named as the spec's) is
built by Warp's CPU backend and launched on each variant's inputs (`generator.inputs.make_inputs`)
at the spec's launch size, and on variant 0 at the second launch size when "second". The result
holds, per run, every array argument as it is after the launch, inputs included: the parent
compares them with the oracle and the inputs, so no verdict is decided in here.

A C++ or CUDA answer (job "target" "cpp" or "cuda", "part" "forward" or "backward", "answer"):
the spec's own kernel (its rendering, batched as the pipeline batches it) is compiled by Warp
with the kernel's `part` of the generated source replaced by the answer
(`warp_adapter.compile_spliced`); a forward is compiled without the backward and launched as
above; a backward is compiled with the forward and run under a tape on each variant with a
seeded cotangent on the float output arrays (`cotangent`), and the result holds the float input
arrays' gradients; "answer" null compiles Warp's own code (the reference gradients). CUDA is
compiled by NVRTC only: the sandbox has no GPU.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
import os
import re
import sys

from eval.sandbox import RESULT_PREFIX

WORK = "/tmp/prediction"


def _answer(result: dict, out: int) -> None:
    with os.fdopen(out, "wb") as f:
        f.write(RESULT_PREFIX + json.dumps(result).encode() + b"\n")


def _failed(stage: str, e: BaseException) -> dict:
    msg = str(e).strip().splitlines()[-1][:300] if str(e).strip() else ""
    return {"stage": stage, "error": f"{type(e).__name__}: {msg}" if msg else type(e).__name__}


def judge(job: dict) -> dict:
    if job.get("target", "python") != "python":
        return judge_code(job)
    from extractor import warp_adapter
    from generator.families import build_spec

    spec = build_spec(job["family"], job["seed"])
    warp_adapter.init_warp()
    os.makedirs(WORK, exist_ok=True)
    try:
        module = warp_adapter.import_source(job["source"], f"{WORK}/{spec.name}.py", "eval_prediction")
        kernel = getattr(module, spec.name, None)
        if kernel is None or type(kernel).__name__ != "Kernel":
            return {"stage": "import", "error": f"no @wp.kernel named {spec.name}"}
        params = list(inspect.signature(kernel.func).parameters)
        want = [a.name for a in spec.args]
        if params != want:
            return {"stage": "import", "error": f"kernel parameters {params} are not {want}"}
    except Exception as e:  # noqa: BLE001 - the prediction's own error, reported as its verdict
        return _failed("import", e)
    try:
        kernel.module.options["enable_backward"] = False  # the forward is what is judged
        warp_adapter.compile_cpu(kernel.module)
    except Exception as e:  # noqa: BLE001
        return _failed("compile", e)
    return _forward_runs(kernel, spec, job)


def _forward_runs(kernel, spec, job: dict) -> dict:
    from extractor import warp_adapter
    from generator.inputs import make_inputs, second_launch
    from generator.records import tensor_json
    from validator.launch import arg_values, tile_block_dim

    runs = []
    small = second_launch(spec) if job["second"] else None
    plan = [(v, spec.dim) for v in job["variants"]] + ([(0, small)] if small else [])
    for variant, dim in plan:
        inputs = make_inputs(spec, variant)
        try:
            values, arrays = arg_values(kernel, dataclasses.replace(spec, dim=tuple(dim)), inputs, "cpu")
            warp_adapter.launch(kernel, tuple(dim), values, "cpu", tile_block_dim(spec))
        except Exception as e:  # noqa: BLE001
            return _failed("launch", e)
        runs.append({"variant": variant, "dim": list(dim),
                     "arrays": {name: tensor_json(arr.numpy()) for name, arr in arrays.items()}})
    return {"stage": "ran", "runs": runs}


def grad_arrays(spec) -> tuple[list, list]:
    """(float input arrays, float output arrays): the gradients a backward answer is held to
    and the outputs seeded with a cotangent."""
    from generator.spec import is_float
    floats = [a for a in spec.args if a.kind == "array" and is_float(a.dtype)]
    return [a for a in floats if a.role == "in"], [a for a in floats if a.role == "out"]


def cotangent(spec, inputs: dict, outs: list, seed: int, variant: int) -> dict:
    """{output name: a standard normal cotangent in the output's dtype}, seeded by (seed, variant)."""
    import numpy as np

    from generator.inputs import NP_DTYPES
    from generator.spec import derive_seed
    rng = np.random.Generator(np.random.PCG64(derive_seed("eval-cotangent", seed, variant)))
    return {a.name: rng.standard_normal(np.shape(inputs[a.name])).astype(NP_DTYPES[a.dtype]) for a in outs}


@contextlib.contextmanager
def _stderr_to(path: str):
    """fd 2 (where Clang and NVRTC print their diagnostics, past Python) goes to `path` meanwhile."""
    saved = os.dup(2)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 2)
    os.close(fd)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _first_error(path: str) -> str:
    """The compiler's first `error:` line, without the file's path."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = [ln.strip() for ln in f if "error" in ln.lower()]
    except OSError:
        return ""
    first = next((ln for ln in lines if re.search(r"\berror:", ln)), lines[0] if lines else "")
    return re.sub(r"^\S*/", "", first)[:300]


def judge_code(job: dict) -> dict:
    from extractor import warp_adapter
    from generator.families import build_spec
    from generator.render import render_source

    spec = build_spec(job["family"], job["seed"])
    warp_adapter.init_warp()
    os.makedirs(WORK, exist_ok=True)
    _, kernels = warp_adapter.load_batch({spec.name: render_source(spec)}, WORK)
    kernel = kernels[spec.name]
    part = job["part"]
    kernel.module.options["enable_backward"] = part == "backward"
    log = os.path.join(WORK, "compiler.log")
    try:
        with _stderr_to(log):
            if job["answer"] is None:
                warp_adapter.compile_cpu(kernel.module)
            else:
                warp_adapter.compile_spliced(kernel.module, kernel, job["target"], part, job["answer"], WORK)
    except Exception as e:  # noqa: BLE001 - the answer's own compile error, reported as its verdict
        failed = _failed("compile", e)
        first = _first_error(log)
        return {**failed, "error": f"{failed['error']}; {first}" if first else failed["error"]}
    if job["target"] == "cuda":
        return {"stage": "compiled"}
    if part == "forward":
        return _forward_runs(kernel, spec, job)
    return _backward_runs(kernel, spec, job)


def _backward_runs(kernel, spec, job: dict) -> dict:
    from extractor import warp_adapter
    from generator.inputs import make_inputs
    from generator.records import tensor_json
    from validator.launch import arg_values, tile_block_dim

    ins, outs = grad_arrays(spec)
    runs = []
    for variant in job["variants"]:
        inputs = make_inputs(spec, variant)
        w = cotangent(spec, inputs, outs, job["cotangent_seed"], variant)
        try:
            values, arrays = arg_values(kernel, spec, inputs, "cpu", {a.name for a in ins + outs})
            seeds = {k: w[a.name] for k, a in enumerate(spec.args) if a.name in w}
            warp_adapter.launch_with_adjoint(kernel, spec.dim, values, seeds, "cpu", tile_block_dim(spec))
        except Exception as e:  # noqa: BLE001
            return _failed("launch", e)
        runs.append({"variant": variant, "grads": {a.name: tensor_json(arrays[a.name].grad.numpy()) for a in ins}})
    return {"stage": "ran", "runs": runs}


def main() -> None:
    """The result goes to the stdout this process was given; everything else (Warp, the
    kernel) writes to /dev/null in its place, so nothing the prediction prints can pose as it."""
    job = json.loads(sys.stdin.read())
    out = os.dup(1)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.close(null)
    _answer(judge(job), out)


if __name__ == "__main__":
    main()
