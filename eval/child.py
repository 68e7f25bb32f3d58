"""What runs inside the sandbox for one Python prediction (`python -m eval.child`): a job on stdin,
one result line on stdout (`sandbox.RESULT_PREFIX` + JSON).

The job: {"family", "seed", "source", "variants", "second"}. The prediction's source (already
through the safety allowlist in the parent) is imported, its kernel (named as the spec's) is
built by Warp's CPU backend and launched on each variant's inputs (`generator.inputs.make_inputs`)
at the spec's launch size, and on variant 0 at the second launch size when "second". The result
holds, per run, every array argument as it is after the launch, inputs included: the parent
compares them with the oracle and the inputs, so no verdict is decided in here.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import sys

from eval.sandbox import RESULT_PREFIX


def _answer(result: dict, out: int) -> None:
    with os.fdopen(out, "wb") as f:
        f.write(RESULT_PREFIX + json.dumps(result).encode() + b"\n")


def _failed(stage: str, e: BaseException) -> dict:
    msg = str(e).strip().splitlines()[-1][:300] if str(e).strip() else ""
    return {"stage": stage, "error": f"{type(e).__name__}: {msg}" if msg else type(e).__name__}


def judge(job: dict) -> dict:
    from extractor import warp_adapter
    from generator.families import build_spec
    from generator.inputs import make_inputs, second_launch
    from generator.records import tensor_json
    from validator.launch import arg_values, tile_block_dim

    spec = build_spec(job["family"], job["seed"])
    warp_adapter.init_warp()
    os.makedirs("/tmp/prediction", exist_ok=True)
    try:
        module = warp_adapter.import_source(job["source"], f"/tmp/prediction/{spec.name}.py", "eval_prediction")
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
