"""The gradient check: Warp's backward kernel against float64 finite differences of the oracle.

For a kernel with float input arrays and float output arrays, a seeded random cotangent `w` (one
per output) defines the scalar loss L(x) = <w, f(x)>, with f the NumPy oracle in float64. Warp
runs the forward kernel under a `wp.Tape`, the outputs' adjoints are seeded with `w`, the
backward kernel runs, and the input arrays' gradients `g` are read back. For each of
`DIRECTIONS` seeded random directions v (over all float input arrays at once) the directional
derivative <g, v> must equal the oracle's central difference (L(x + hv) - L(x - hv)) / 2h.

A kink (a branch, clamp, abs, floor, where or integer cast whose switch lies within the step of
x) would make any finite difference meaningless there, so the check first tells smooth from
kinked, at three steps h: the one-sided differences fwd(h) = (L(x+hv) - L(x)) / h and
bwd(h) = (L(x) - L(x-hv)) / h of a smooth L differ by h L''(v, v) + O(h^3), which shrinks with
h, while a kink at x keeps the gap (a slope change) or grows it (a jump); and the central
differences of a smooth L agree to O(h^2), while a switch within the largest step moves them
apart. Either makes the verdict `inconclusive` with its reason, never `passed`.

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
STEPS = (2.0 ** -12, 2.0 ** -13, 2.0 ** -14)  # the inputs are multiples of 1/256; steps well below that
# rtol of <g, v> against the finite difference, by the least precise float type in the kernel
RTOL = {"float16": 5e-2, "float32": 2e-3}
# a smooth loss's fwd - bwd gap shrinks to a quarter over STEPS; a kink at x keeps it
KINK_RATIO = 0.5

IN_PLACE = "in-place (inout) array: Warp's adjoint does not model values overwritten in place"
NO_FLOAT_IO = "no float input array or no float output array: nothing to differentiate"
# builtins whose derivative is zero almost everywhere: an unimplemented (zero) adjoint is right
ZERO_DERIVATIVE = frozenset({"floor", "ceil", "trunc", "round", "rint", "sign", "step", "mod", "floordiv", "nonzero"})


def builtins_used(spec: KernelSpec, on_values: bool = False) -> set[str]:
    """The Warp builtins a spec calls (call, kwcall and function-reference nodes), walked
    iteratively; with `on_values`, only calls with an operand that reads a variable or an array."""
    found, todo = set(), [spec.body] + [h.body for h in spec.helpers]
    while todo:
        node = todo.pop()
        if isinstance(node, list):
            if len(node) >= 2 and node[0] in ("call", "kwcall", "fnref") and isinstance(node[1], str) \
                    and (not on_values or node[0] == "fnref" or _reads_a_value(node[2:])):
                found.add(node[1])
            todo.extend(x for x in node if isinstance(x, list))
    return found


def _reads_a_value(node) -> bool:
    """Whether an expression reads a variable or an array (so may depend on the inputs)."""
    todo = [node]
    while todo:
        n = todo.pop()
        if isinstance(n, list):
            if n and n[0] in ("v", "arr", "ld", "sld", "fld"):
                return True
            todo.extend(x for x in n if isinstance(x, list))
    return False


def builtins_on_values(spec: KernelSpec) -> set[str]:
    """The builtins a spec calls with at least one operand that reads a variable or an array. A
    call of literals only (e.g. `wp.tile_arange(16, dtype=float)`) is a constant: its derivative
    is zero, so an adjoint Warp leaves empty is right for it."""
    return builtins_used(spec, on_values=True)


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
    unimplemented = sorted((builtins_on_values(spec) & set(missing or ())) - ZERO_DERIVATIVE)
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


def nearby(spec: KernelSpec, inputs: dict, ins: list, which: int = 1) -> dict:
    """The inputs with every float input array moved by a seeded offset below half the 1/256 grid,
    kept inside the argument's [low, high] and rounded to its dtype (so Warp and the oracle see
    the same values)."""
    parts = ("gradient-nearby", spec.family, spec.seed) + ((which,) if which > 1 else ())
    rng = np.random.Generator(np.random.PCG64(derive_seed(*parts)))
    moved = dict(inputs)
    for a in ins:
        x = np.asarray(inputs[a.name])
        off = rng.uniform(-1.0, 1.0, size=x.shape) * 2.0 ** -10
        moved[a.name] = np.clip(x.astype(np.float64) + off, a.low, a.high).astype(x.dtype)
    return moved


def _loss(spec: KernelSpec, inputs: dict, w: dict) -> float:
    out = run_oracle(spec, inputs)
    return float(sum(np.sum(w[n] * out[n]) for n in w))


def _shifted(inputs: dict, v: dict, t: float) -> dict:
    return {**inputs, **{n: np.asarray(inputs[n], dtype=np.float64) + t * d for n, d in v.items()}}


def compare(spec: KernelSpec, inputs: dict, grads: dict, w: dict, vs: list[dict]) -> tuple[dict, dict]:
    """(verdict, example): Warp's input gradients `grads` against the oracle's differences."""
    rtol = RTOL[precision(spec)]
    if not all(np.isfinite(np.asarray(g, dtype=np.float64)).all() for g in grads.values()):
        # seen at 20,000 kernels: an accumulator squared 25 times overflows to inf, a clamp
        # saturates the output (derivative 0), and the chain rule's 0 * inf gives NaN; IEEE
        # arithmetic, not a wrong adjoint, and no finite number to compare or to store
        return ({"status": "inconclusive", "reason": "gradient: Warp's gradient holds NaN or infinity (an "
                 "intermediate overflowed: 0 * inf in the chain rule); nothing finite to compare"}, None)
    l0 = _loss(spec, inputs, w)
    dots, fds = [], []
    for k, v in enumerate(vs):
        gv = float(sum(np.sum(np.asarray(grads[n], dtype=np.float64) * d) for n, d in v.items()))
        terms = float(sum(np.sum(np.abs(np.asarray(grads[n], dtype=np.float64) * d)) for n, d in v.items()))
        fwd, bwd = [], []
        for h in STEPS:
            up, down = _loss(spec, _shifted(inputs, v, h), w), _loss(spec, _shifted(inputs, v, -h), w)
            fwd.append((up - l0) / h)
            bwd.append((l0 - down) / h)
        central = [(f + b) / 2 for f, b in zip(fwd, bwd)]
        gaps = [f - b for f, b in zip(fwd, bwd)]
        dots.append(gv)
        fds.append(central[-1])
        tol = rtol * max(terms, abs(central[-1]), 1e-30)
        example = {"w": w, "v": vs[:k + 1], "g": grads, "dot": dots, "fd": fds}
        # smooth: the one-sided gap is h L''(v, v), a quarter of it at h/4; a kink at x keeps it
        if abs(gaps[0]) > tol and abs(gaps[-1]) > KINK_RATIO * abs(gaps[0]):
            return ({"status": "inconclusive", "reason": f"gradient: kink at the inputs along direction {k} "
                     f"(one-sided differences {fwd[-1]:.6g} and {bwd[-1]:.6g} do not converge as the step shrinks)"},
                    example)
        # smooth: central differences agree to O(h^2); a kink within the step moves them apart
        if max(central) - min(central) > tol:
            return ({"status": "inconclusive", "reason": f"gradient: kink within the step along direction {k} "
                     f"(central differences {', '.join(f'{c:.6g}' for c in central)} at steps "
                     f"{', '.join(f'{h:.3g}' for h in STEPS)})"}, example)
        if not np.isfinite(gv) or abs(gv - central[-1]) > tol:
            return ({"status": "failed", "reason": f"gradient_mismatch: direction {k}: Warp's <g, v> = {gv:.6g}, "
                     f"the oracle's finite difference {central[-1]:.6g} (rtol {rtol})"}, example)
    return {"status": "passed"}, {"w": w, "v": vs, "g": grads, "dot": dots, "fd": fds}
