"""The gradient check: Warp's backward kernel against float64 finite differences of the oracle.

For a kernel with float input arrays and float output arrays, a seeded random cotangent `w` (one
per output) defines the scalar loss L(x) = <w, f(x)>, with f the NumPy oracle in float64. Warp
runs the forward kernel under a `wp.Tape`, the outputs' adjoints are seeded with `w`, the
backward kernel runs, and the input arrays' gradients `g` are read back. For each of
`DIRECTIONS` seeded random directions v (over all float input arrays at once) the directional
derivative <g, v> must equal the oracle's central difference (L(x + hv) - L(x - hv)) / 2h.

A kink (a branch, clamp, abs, floor, where or integer cast whose switch lies within the step of
x) would make any finite difference meaningless there, so the check first tells smooth from
kinked: with one-sided differences fwd(h) = (L(x+hv) - L(x)) / h and bwd(h) = (L(x) - L(x-hv)) / h,
a smooth L has fwd - bwd = h L''(v, v) + O(h^3), which halves with h; a kink keeps it (a slope
change) or doubles it (a jump). A direction whose difference does not halve makes the verdict
`inconclusive` with that reason, never `passed`.

What is not checked, and why (the verdict is `not_run` with the reason):
- kernels without a float input array or without a float output array (integer-only kernels,
  kernels whose only inputs are scalars or struct fields: Warp does not return gradients of
  scalar or struct kernel arguments);
- kernels with an in-place (`inout`) array: Warp's adjoint of an array overwritten in place
  does not model the overwritten value (a documented limitation of Warp's tape), so the gradient
  of such an array is not a derivative of anything the oracle computes.
Scalars and struct fields are held constant. Atomics (`atomic_add` into an output), tiles
(`tile_load`/`tile_store`/reductions/scans/`tile_matmul`), RNG (`wp.randf`: its state is an
integer, so draws are constants under differentiation) and vec/mat/quat arrays (each component
perturbed and differentiated) are checked like any other kernel; `atomic_min`/`atomic_max`
targets are `inout` arrays and so not run.
"""

from __future__ import annotations

import json

import numpy as np

from generator.oracle import run_oracle
from generator.spec import KernelSpec, derive_seed, is_float

DIRECTIONS = 2
STEP = 2.0 ** -10  # the inputs are multiples of 1/256; a step well below that
# rtol of <g, v> against the finite difference, by the least precise float type in the kernel
RTOL = {"float16": 5e-2, "float32": 2e-3}
# a smooth loss's fwd - bwd difference must shrink to at most this fraction when h halves
KINK_RATIO = 0.75

IN_PLACE = "in-place (inout) array: Warp's adjoint does not model values overwritten in place"
NO_FLOAT_IO = "no float input array or no float output array: nothing to differentiate"
# builtins whose derivative is zero almost everywhere: an unimplemented (zero) adjoint is right
ZERO_DERIVATIVE = frozenset({"floor", "ceil", "trunc", "round", "rint", "sign", "step", "mod", "floordiv", "nonzero"})


def builtins_used(spec: KernelSpec) -> set[str]:
    """The Warp builtins a spec calls (call, kwcall and function-reference nodes), walked iteratively."""
    found, todo = set(), [spec.body] + [h.body for h in spec.helpers]
    while todo:
        node = todo.pop()
        if isinstance(node, list):
            if len(node) >= 2 and node[0] in ("call", "kwcall", "fnref") and isinstance(node[1], str):
                found.add(node[1])
            todo.extend(x for x in node if isinstance(x, list))
    return found


def arrays_to_check(spec: KernelSpec, missing: dict[str, str] | None = None,
                    declared: str | None = None) -> tuple[list, list, str | None]:
    """(float input arrays, float output arrays, reason it cannot run or None).

    `missing`: {builtin: header} whose adjoint Warp leaves unimplemented (read from its headers);
    `declared`: Warp's own codegen warning that this kernel may not be differentiable. In either
    case Warp says the gradient is not to be trusted, so nothing is claimed about it."""
    if any(a.kind == "array" and a.role == "inout" for a in spec.args):
        return [], [], IN_PLACE
    if declared:
        return [], [], f"Warp's codegen declares it non-differentiable: {declared}"
    unimplemented = sorted((builtins_used(spec) & set(missing or ())) - ZERO_DERIVATIVE)
    if unimplemented:
        return [], [], (f"uses {unimplemented[0]}, whose adjoint Warp does not implement "
                        f"(MISSINGADJOINT in warp/native/{missing[unimplemented[0]]})")
    ins = [a for a in spec.args if a.kind == "array" and a.role == "in" and is_float(a.dtype)]
    outs = [a for a in spec.args if a.kind == "array" and a.role == "out" and is_float(a.dtype)]
    if not ins or not outs:
        return ins, outs, NO_FLOAT_IO
    return ins, outs, None


def precision(spec: KernelSpec) -> str:
    """The least precise float type the kernel computes in (literals are float32 by default)."""
    return "float16" if "float16" in json.dumps(spec.to_json()) else "float32"


def seeded_probe(spec: KernelSpec, inputs: dict, ins: list, outs: list) -> tuple[dict, list[dict]]:
    """The cotangent w per output and the DIRECTIONS directions v over the inputs, seeded by the spec."""
    rng = np.random.Generator(np.random.PCG64(derive_seed("gradient", spec.family, spec.seed)))
    w = {a.name: rng.standard_normal(np.shape(inputs[a.name])) for a in outs}
    vs = [{a.name: rng.standard_normal(np.shape(inputs[a.name])) for a in ins} for _ in range(DIRECTIONS)]
    return w, vs


def _loss(spec: KernelSpec, inputs: dict, w: dict) -> float:
    out = run_oracle(spec, inputs)
    return float(sum(np.sum(w[n] * out[n]) for n in w))


def _shifted(inputs: dict, v: dict, t: float) -> dict:
    return {**inputs, **{n: np.asarray(inputs[n], dtype=np.float64) + t * d for n, d in v.items()}}


def compare(spec: KernelSpec, inputs: dict, grads: dict, w: dict, vs: list[dict]) -> tuple[dict, dict]:
    """(verdict, example): Warp's input gradients `grads` against the oracle's differences."""
    rtol = RTOL[precision(spec)]
    l0 = _loss(spec, inputs, w)
    dots, fds = [], []
    for k, v in enumerate(vs):
        gv = float(sum(np.sum(np.asarray(grads[n], dtype=np.float64) * d) for n, d in v.items()))
        terms = float(sum(np.sum(np.abs(np.asarray(grads[n], dtype=np.float64) * d)) for n, d in v.items()))
        one_sided = []
        for h in (STEP, STEP / 2):
            up, down = _loss(spec, _shifted(inputs, v, h), w), _loss(spec, _shifted(inputs, v, -h), w)
            one_sided.append(((up - l0) / h, (l0 - down) / h))
        (f1, b1), (f2, b2) = one_sided
        central = (f2 + b2) / 2
        dots.append(gv)
        fds.append(central)
        scale = max(terms, abs(central), abs(f1), abs(b1), 1e-30)
        d1, d2 = f1 - b1, f2 - b2
        if abs(d1) > rtol * scale and abs(d2) > KINK_RATIO * abs(d1):
            example = {"w": w, "v": vs[:k + 1], "g": grads, "dot": dots, "fd": fds}
            return ({"status": "inconclusive", "reason": f"gradient: kink within the step along direction {k} "
                     f"(one-sided differences {f2:.6g} and {b2:.6g} do not converge as the step halves)"}, example)
        if not np.isfinite(gv) or abs(gv - central) > rtol * scale:
            example = {"w": w, "v": vs[:k + 1], "g": grads, "dot": dots, "fd": fds}
            return ({"status": "failed", "reason": f"gradient_mismatch: direction {k}: Warp's <g, v> = {gv:.6g}, "
                     f"the oracle's finite difference {central:.6g} (rtol {rtol})"}, example)
    return {"status": "passed"}, {"w": w, "v": vs, "g": grads, "dot": dots, "fd": fds}
