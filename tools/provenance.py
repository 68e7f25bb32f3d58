"""Holds a dataset's stored code against the sources Warp's compilers are given.

Usage: ./bazelw run //tools:provenance -- DIR [--limit N]

For every record of DIR (a generator output directory) the kernel is rebuilt from its spec's
rendering (the record's own text is never imported), compiled again in batches the way the
generator compiles (NVRTC to PTX for the record's archs, LLVM for a CPU launch), and each of
`ir.cpp.forward`, `ir.cpp.backward`, `ir.cuda.forward` and `ir.cuda.backward` must be, after
the documented cleaning, a verbatim cut of the module source Warp wrote beside the binary it
built (`warp_adapter.warp_written_sources`): every paragraph present, in order. Prints the counts
per family and target as JSON; exit 1 when any stored text is not found.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

from extractor import warp_adapter
from runtime.process import caller_path
from generator.render import render_source
from generator.spec import KernelSpec
from schemas.dataset_format import list_shards, read_records
from validator.verdicts import check_spec_source

BATCH = 50
TEXTS = [(t, p) for t in ("cpp", "cuda") for p in ("forward", "backward")]


def _check_batch(records: list[dict], counts: dict, problems: list[str]) -> None:
    specs = [KernelSpec.from_json(r["spec"]) for r in records]
    archs = sorted(records[0]["ir"]["ptx"])
    with tempfile.TemporaryDirectory(prefix="warp-ir-provenance-") as workdir:
        module, kernels = warp_adapter.load_batch({s.name: render_source(s) for s in specs}, workdir)
        warp_adapter.compile_ptx(module, kernels, workdir, archs)
        warp_adapter.compile_cpu(module)
        prefix = workdir.rstrip("/") + "/"
        compiled = {t: warp_adapter.clean(text, prefix) for t, text in warp_adapter.warp_written_sources(module, workdir).items()}
        warp_adapter.unload(module)
    for r in records:
        for target, part in TEXTS:
            key = f"{r['family']}/{target}.{part}"
            c = counts.setdefault(key, {"found": 0, "missing": 0})
            if warp_adapter.missing_from(r["ir"][target][part], compiled[target]) is None:
                c["found"] += 1
            else:
                c["missing"] += 1
                problems.append(f"{r['id']} {key}: not a cut of the compiled source")


def provenance(directory: str, limit: int | None = None) -> dict:
    records = []
    for name in list_shards(directory):
        for _, r, err in read_records(os.path.join(directory, name)):
            if err:
                raise ValueError(err)
            if check_spec_source(r)["status"] != "passed":
                raise ValueError(f"{name}: record {r.get('id')}: its source is not its spec's rendering")
            records.append(r)
    records = records[:limit] if limit else records
    counts: dict = {}
    problems: list[str] = []
    for k in range(0, len(records), BATCH):
        _check_batch(records[k:k + BATCH], counts, problems)
    texts = sum(c["found"] + c["missing"] for c in counts.values())
    return {"directory": directory, "records": len(records), "texts": texts,
            "found": sum(c["found"] for c in counts.values()), "by_family_and_text": dict(sorted(counts.items())),
            "problems": problems[:20]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="./bazelw run //tools:provenance --", description=__doc__.split("\n")[0])
    p.add_argument("dir")
    p.add_argument("--limit", type=int, help="check only the first N records")
    args = p.parse_args(argv)
    directory = caller_path(args.dir)
    if not os.path.isdir(directory):
        print(f"error: {args.dir}: not a directory", file=sys.stderr)
        return 2
    try:
        result = provenance(directory, args.limit)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    print(f"{result['found']} of {result['texts']} stored texts ({result['records']} records) are cuts of the "
          f"sources Warp compiled", file=sys.stderr)
    return 0 if result["found"] == result["texts"] else 1


if __name__ == "__main__":
    sys.exit(main())
