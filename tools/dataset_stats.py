"""Diversity and outcome figures of a generated dataset directory.

Usage: bazel run //tools:stats -- DIR   (prints JSON: per family, records, distinct sources with
the kernel's names ignored, distinct AST skeletons with identifiers and literals abstracted)
"""

from __future__ import annotations

import json
import os
import sys

from generator.diversity import skeleton
from runtime.process import caller_dir
from schemas.dataset_format import list_shards, read_records


def stats(directory: str) -> dict:
    fams: dict[str, dict] = {}
    for name in list_shards(directory):
        for _, r, err in read_records(os.path.join(directory, name)):
            if err:
                raise ValueError(err)
            d = fams.setdefault(r["family"], {"records": 0, "sources": set(), "skeletons": set()})
            d["records"] += 1
            d["sources"].add(r["source"].replace(r["kernel_name"], "K"))
            d["skeletons"].add(skeleton(r["source"]))
    total = {"records": sum(d["records"] for d in fams.values()),
             "distinct_sources": len(set().union(*(d["sources"] for d in fams.values()))) if fams else 0,
             "distinct_skeletons": len(set().union(*(d["skeletons"] for d in fams.values()))) if fams else 0}
    per = {f: {"records": d["records"], "distinct_sources": len(d["sources"]), "distinct_skeletons": len(d["skeletons"])}
           for f, d in sorted(fams.items())}
    return {"total": total, "families": per}


if __name__ == "__main__":
    base = caller_dir()
    if len(sys.argv) != 2 or not os.path.isdir(os.path.join(base, sys.argv[1])):
        print("error: usage: bazel run //tools:stats -- DIR (a generated dataset directory)", file=sys.stderr)
        sys.exit(2)
    print(json.dumps(stats(os.path.join(base, sys.argv[1])), indent=2))
