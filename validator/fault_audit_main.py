"""Fault-injection audit of the re-validator on a dataset directory.

Usage: bazel run //validator:fault_audit -- DIR [--faults N] [--seed S] [--pool P] [--json PATH]

Injects N faults (default 500) into copies of records from DIR, re-validates them, prints the
per-type table and the detection rate. Exit 0 when every fault is caught with the right reason
and every control record passes, 1 otherwise, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile

from runtime.process import caller_dir
from validator import faults
from schemas.dataset_format import pretty_json


def _int_at_least(low: int):
    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid int value: {text!r}")
        if n < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {n}")
        return n
    return parse


_positive, _seed = _int_at_least(1), _int_at_least(0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bazel run //validator:fault_audit --",
                                description="Inject faults into copies of a dataset's records and check the "
                                            "re-validator catches each one with the right reason.")
    p.add_argument("dir", help="a valid dataset directory holding shard-*.jsonl")
    p.add_argument("--faults", type=_positive, default=500, help="how many faults to inject (default 500)")
    p.add_argument("--seed", type=_seed, default=0, help="seed for record choice and mutations (default 0)")
    p.add_argument("--pool", type=_positive, default=60,
                   help="records sampled from DIR to corrupt; each is also re-validated clean as a control (default 60)")
    p.add_argument("--workdir", help="where to write the faulty shards (default: a fresh temporary directory)")
    p.add_argument("--json", help="also write the full result as JSON here")
    args = p.parse_args(argv)
    base = caller_dir()
    directory = os.path.join(base, args.dir)
    if not os.path.isdir(directory):
        print(f"error: {args.dir}: not a directory", file=sys.stderr)
        return 2
    workdir = os.path.join(base, args.workdir) if args.workdir else tempfile.mkdtemp(prefix="fault-audit-")
    try:
        result = faults.audit(directory, workdir, args.faults, args.seed, pool=args.pool)
    except (FileNotFoundError, ValueError, OSError) as e:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(faults.format_table(result))
    if args.json:
        with open(os.path.join(base, args.json), "w") as f:
            f.write(pretty_json(result))
    if result["ok"] and not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)  # nothing to inspect
    else:
        print(f"faulty shards: {workdir}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
