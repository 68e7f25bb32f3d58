"""The version of every artifact the project writes, what each version changed, and the
project's JSON Schemas (data files beside this module)."""

import json
import os

SCHEMA_DIR = os.path.dirname(os.path.abspath(__file__))

# One constant per artifact. A JSON Schema's $id ends with its artifact's version.
PAIR_SCHEMA_VERSION = "2.9.0"  # a pair record, one line of shard-*.jsonl (pair.schema.json)
RUN_MANIFEST_VERSION = "1.0.0"  # a generator run's manifest.json (run_manifest.schema.json)
RELEASE_MANIFEST_VERSION = "1.2.0"  # a release's manifest.json, //tools:release (manifest.schema.json)
# a record's origin: a generated kernel (pair.schema.json) or one of the warp-lang wheel (real.schema.json)
ORIGIN_SYNTHETIC, ORIGIN_REAL = "synthetic", "real"
REAL_SCHEMA_VERSION = "1.1.0"  # a real record, one line of //harvest's harvest.jsonl (real.schema.json)
SPEC_VERSION = 1  # a KernelSpec's JSON, the `spec` of a record (its spec_version)

VERSIONS = {
    "pair": PAIR_SCHEMA_VERSION,
    "run_manifest": RUN_MANIFEST_VERSION,
    "release_manifest": RELEASE_MANIFEST_VERSION,
    "real": REAL_SCHEMA_VERSION,
    "spec": SPEC_VERSION,
}

# artifact -> version -> one line: what that version is (newest first)
RELEASE_NOTES = {
    "pair": {
        "2.9.0": "admits a wp.Texture2D argument (kind texture2d, dtype float32, shape (height, width) of texels, "
                 "sampler its filter and address modes; its own input, the texels, in io.inputs); 2.8.0 records "
                 "hold none and are refused (regenerate them: the other families' specs, sources and IR are unchanged)",
        "2.8.0": "admits a wp.Bvh argument (kind bvh, dtype uint64, shape (n,) its boxes, points the vec3 input "
                 "array they are built around, cell their half-width; no input of its own); 2.7.0 records hold none "
                 "and are refused (regenerate them: the other families' specs, sources and IR are unchanged)",
        "2.7.0": "admits a wp.Volume argument (kind volume, dtype uint64, shape its dense grid of voxels, cell its "
                 "voxel size; its own input, the voxels, in io.inputs); 2.6.0 records hold none and are refused "
                 "(regenerate them: the other families' specs, sources and IR are unchanged)",
        "2.6.0": "admits a wp.Mesh argument (kind mesh, dtype uint64, shape its height field's grid of vertices; "
                 "its own input, the vertices' heights, in io.inputs); 2.5.0 records hold none and are refused "
                 "(regenerate them: the other families' specs, sources and IR are unchanged)",
        "2.5.0": "admits a wp.HashGrid argument (kind hash_grid, dtype uint64, its points and cell width; no input "
                 "of its own, rebuilt from its points); 2.4.0 records hold none and are refused (regenerate them: "
                 "the other families' specs, sources and IR are unchanged)",
        "2.4.0": "admits arrays of @wp.struct elements (an argument of kind struct_array, its inputs one tensor per "
                 "field) and nested struct fields ([name, class, fields]); 2.3.0 records hold neither and are refused "
                 "(regenerate them: the other families' specs, sources and IR are unchanged)",
        "2.3.0": "adds origin, synthetic for every generated record (real kernels are records of real.schema.json, "
                 "origin real), and the release's origin column; 2.2.0 records lack it and are refused",
        "2.2.0": "adds coverage.launch_dims: every grid kernel is also executed at a second launch size (input "
                 "set 0 on d // 2 + 1 threads per dimension) and matched with the oracle; 2.1.0 records lack "
                 "it and are refused",
        "2.1.0": "adds the gradient verdicts execute_backward_cpu and execute_backward_gpu, the inconclusive "
                 "status, the grad and coverage fields, and execute_gpu's max_abs_diff on a verdict; "
                 "2.0.0 records lack them and are refused",
        "2.0.0": "the stored C++ and CUDA are the text Warp's compilers compiled (cut from the sources they "
                 "were given) and the toolchain is measured per backend; 1.x records stored code from a "
                 "second path that differed from the compiled text and are refused",
        "1.2.0": "admits the codegen-only records written by --no-validate; every 1.1.0 record is a valid "
                 "1.2.0 record",
        "1.1.0": "adds the PTX from NVRTC per arch (ir.ptx) and the PTX archs in the toolchain",
        "1.0.0": "the first pair record: spec, source, Warp's C++ and CUDA (forward and backward), "
                 "execution examples, verdicts, toolchain",
    },
    "run_manifest": {
        "1.0.0": "counts per family, rejects by reason with an example each, verdict counts and notes, "
                 "the generator config, the toolchain, every shard with its sha256 and size; "
                 "gradient_by_family and adjoint_mismatch came with pair schema 2.1.0 under the same version",
    },
    "release_manifest": {
        "1.2.0": "admits the real config (kernels of the warp-lang wheel, //harvest) with its own columns, and a "
                 "`real` section: its record schema, columns, PTX archs and, per harvest, what it held and what was "
                 "left out with the reason",
        "1.1.0": "admits the adjoint_mismatch config (the inputs' findings: pairs whose Warp adjoint disagreed "
                 "with the oracle's gradient, each with its reproducer) beside cpu and cuda",
        "1.0.0": "columns, toolchain, inputs (each with its run's run.json since //report), counts per config, "
                 "split and family, splits, dedup, the near-duplicate audit, validation, and every file "
                 "with its sha256 and size",
    },
    "real": {
        "1.1.0": "adds launch (the first CPU launch the wheel's own tests made of the kernel, its arguments before "
                 "and after, as plain data) and execute.replay_cpu (the harvested kernel replays it byte for byte); "
                 "1.0.0 records lack them and are refused",
        "1.0.0": "a kernel of the warp-lang wheel: its standalone source, its provenance (path inside the wheel, "
                 "lines, sha256 of the file, warp-lang version, licence, what the extraction added), the C++ and "
                 "CUDA cut from what Warp generated, and the compile verdicts; re-harvested by //validator",
    },
    "spec": {
        1: "the KernelSpec JSON the source is rendered from (family, seed, name, dim, tid_names, args, "
           "helpers, body; launch for tiled kernels); a spec of another spec_version is refused",
    },
}


def load(name: str) -> dict:
    with open(os.path.join(SCHEMA_DIR, f"{name}.schema.json")) as f:
        return json.load(f)


def python_pattern(pattern: str) -> str:
    """A schema's `pattern` with JSON Schema's meaning in Python's `re`: the schemas are written
    for ECMA-262, where a final `$` ends the text; in Python it also matches before a final
    newline, so `^shard-[0-9]{5,}\\.jsonl$` accepted "shard-00000.jsonl\\n" (a file the validator
    never listed, read by the release). A final unescaped `$` becomes `\\Z`."""
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        return pattern[:-1] + "\\Z"
    return pattern


def validator(schema: dict):
    """A Draft 2020-12 validator of `schema` whose `pattern` keyword has the schema's meaning
    (`python_pattern`); every reader that checks a schema uses this one."""
    import re

    import jsonschema

    def pattern(v, patrn, instance, schema):
        if v.is_type(instance, "string") and not re.search(python_pattern(patrn), instance):
            yield jsonschema.ValidationError(f"{instance!r} does not match {patrn!r}")

    cls = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"pattern": pattern})
    return cls(schema)


def violation(name: str, instance) -> str | None:
    """None when `instance` meets schemas/NAME.schema.json; else one line naming the schema, where
    in the instance it breaks (`a/b/0`, `(root)`), the schema path of the violated keyword and why."""
    import jsonschema  # only readers that check need it

    error = jsonschema.exceptions.best_match(validator(load(name)).iter_errors(instance))
    if error is None:
        return None
    where = "/".join(map(str, error.absolute_path)) or "(root)"
    rule = "/".join(map(str, error.absolute_schema_path))
    return f"breaks schemas/{name}.schema.json at {where} (schema path {rule}): {error.message[:200]}"
