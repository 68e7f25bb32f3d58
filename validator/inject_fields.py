"""Faults in a record's fields and bytes: a required field dropped or mistyped (the schema's), a
field that follows from the spec and source edited (consistency's), the line cut short
(corrupt). Each `fn(records, i, rng) -> Injection | None` deep-copies record i and corrupts the
copy; the kinds and reason keys are registered in fault_kinds.
"""

from __future__ import annotations

import copy

from validator.injection import Injection, delete_at, dump, element_set, get_at, leaf_paths, path_text, set_at
from validator.outcomes import check_names


_TOP = ["schema_version", "origin", "id", "family", "target", "seed", "kernel_name", "source", "spec", "args", "dim",
        "ir", "io", "checks", "toolchain"]
# the checks whose verdicts the schema requires, less the gradient checks (the audit predates them)
_CHECKS = list(check_names(lambda c: not c.gradient))
_TOOLCHAIN = ["warp_lang", "cuda_toolkit", "nvrtc", "llvm", "ptx_archs", "cpu", "cuda"]
_SPEC = ["spec_version", "family", "seed", "name", "dim", "args", "body"]


def _required_paths(rec) -> dict[str, list[tuple]]:
    """Paths whose removal breaks pair.schema.json, grouped by where they are."""
    ir, io = rec["ir"], rec["io"]
    groups = {
        "top": [(k,) for k in _TOP],
        "ir": [("ir", t) for t in ("cpp", "cuda", "ptx")]
              + [("ir", t, d) for t in ("cpp", "cuda") for d in ("forward", "backward")]
              + [("ir", "ptx", a, d) for a in sorted(ir["ptx"]) for d in sorted(ir["ptx"][a])]
              + ([("ir", "ptx", next(iter(ir["ptx"])))] if len(ir["ptx"]) == 1 else []),
        "io": [("io", "inputs"), ("io", "outputs")]
              + [("io", side, n, k) for side in ("inputs", "outputs") for n in sorted(io[side])
                 for k in ("dtype", "shape", "data")]
              + ([("io", "outputs", next(iter(io["outputs"])))] if len(io["outputs"]) == 1 else []),
        "checks": [("checks", k) for k in _CHECKS] + [("checks", k, "status") for k in _CHECKS],
        "toolchain": [("toolchain", k) for k in _TOOLCHAIN],
        "args": [("args", a, k) for a in range(len(rec["args"])) for k in ("name", "kind", "dtype", "shape", "role")],
        "spec": [("spec", k) for k in _SPEC],
    }
    return groups


def drop_field(records, i, rng):
    """Delete one required field, top-level or nested."""
    rec = copy.deepcopy(records[i])
    groups = _required_paths(rec)
    path = rng.choice(groups[rng.choice(sorted(groups))])
    delete_at(rec, path)
    return Injection(dump(rec), "schema", f"dropped {path_text(path)}")


def _mistypes(rec) -> list[tuple[tuple, object]]:
    """(path, wrong value) pairs that pair.schema.json rejects."""
    a = 0
    out_name = sorted(rec["io"]["outputs"])[0]
    out = rec["io"]["outputs"][out_name]
    return [
        (("seed",), str(rec["seed"])),
        (("seed",), -1 - rec["seed"] % 1000),
        (("dim",), ",".join(map(str, rec["dim"]))),
        (("dim", 0), str(rec["dim"][0])),
        (("dim",), []),
        (("kernel_name",), [rec["kernel_name"]]),
        (("kernel_name",), "1" + rec["kernel_name"]),
        (("schema_version",), 1.1),
        (("id",), rec["id"] + "0"),
        (("family",), rec["family"].upper()),
        (("target",), "gpu"),
        (("source",), ""),
        (("checks", "execute_cpu", "status"), "ok"),
        (("checks", "ir_match", "status"), "PASSED"),
        (("checks", "compile_cuda"), "passed"),
        (("checks", "execute_gpu"), {"status": "failed"}),  # a failed verdict must give its reason
        (("args", a, "role"), "output"),
        (("args", a, "dtype"), "float 32"),  # neither a dtype nor a struct class name
        (("args", a, "shape"), str(rec["args"][a]["shape"])),
        (("io", "outputs", out_name, "shape"), "x".join(map(str, out["shape"]))),
        (("io", "outputs", out_name, "dtype"), None),
        (("io", "outputs"), {}),
        (("ir", "cpp", "forward"), [rec["ir"]["cpp"]["forward"]]),
        (("ir", "cuda", "backward"), ""),
        (("toolchain", "cpu", "compiler"), "O2"),
        (("toolchain", "ptx_archs"), "sm_90"),
    ]


def mistype_field(records, i, rng):
    """Give one field a value of the wrong type (or outside its enum/pattern/range)."""
    rec = copy.deepcopy(records[i])
    path, value = rng.choice(_mistypes(rec))
    old = get_at(rec, path)
    set_at(rec, path, value)
    return Injection(dump(rec), "schema", f"{path_text(path)}: {str(old)[:40]!r} -> {str(value)[:40]!r}")


def truncated_line(records, i, rng):
    """Cut the JSON line short, as an interrupted write or a torn copy would."""
    line = dump(records[i])
    cut = rng.randrange(1, len(line))
    return Injection(line[:cut], "corrupt", f"line cut at byte {cut} of {len(line)}")


def _derived_edits(rec):
    """(path, new value, what) edits of fields that the spec and source determine."""
    edits = []
    name = next((n for n, t in sorted(rec["io"]["inputs"].items()) if leaf_paths(t["data"])), None)
    if name is not None:
        t = rec["io"]["inputs"][name]
        path = leaf_paths(t["data"])[0]
        v = get_at(t["data"], path) if path else t["data"]
        edits.append((("io", "inputs", name, "data") + tuple(path), v + 1, f"io.inputs.{name}{list(path)} += 1"))
    # a plain argument's (an object's dtype, uint64, is the schema's to hold: the edit would test that instead)
    plain = next(k for k, a in enumerate(rec["args"]) if a["kind"] in ("array", "scalar"))
    edits += [
        (("dim", 0), rec["dim"][0] + 1, "dim[0] += 1"),
        (("args", plain, "dtype"), "float64" if rec["args"][plain]["dtype"] != "float64" else "float32",
         f"args[{plain}].dtype changed"),
        (("kernel_name",), rec["kernel_name"] + "_x", "kernel_name += '_x'"),
        (("family",), "stencil" if rec["family"] != "stencil" else "arith", "family changed"),
        (("seed",), float(rec["seed"]), "seed -> float(seed), as a float64 JSON tool writes it"),
        (("id",), "0" * 16 if rec["id"] != "0" * 16 else "1" * 16, "id is not the source's hash"),
        (("checks", "execute_cpu"), {"status": "failed", "reason": "execute_cpu: tampered"}, "checks.execute_cpu -> failed"),
        (("checks", "compile_cuda"), {"status": "not_run", "reason": "tampered"}, "checks.compile_cuda -> not_run"),
    ]
    launches = rec["coverage"]["launch_dims"]
    # a claim of a launch size that never ran (or the drop of one that did)
    edits.append((("coverage", "launch_dims"), launches[:1] if len(launches) > 1 else launches + [[1] * len(rec["dim"])],
                  "coverage.launch_dims: one launch size dropped or added"))
    return edits


def derived_field(records, i, rng):
    """A field that follows from the spec/source (id, names, dim, args, seeded inputs, verdicts, launch sizes) edited."""
    rec = copy.deepcopy(records[i])
    path, value, what = rng.choice(_derived_edits(rec))
    if path[:2] == ("io", "inputs"):
        t = rec["io"]["inputs"][path[2]]
        element_set(t, path[4:], value)
    else:
        set_at(rec, path, value)
    return Injection(dump(rec), "consistency", what)
