"""Command line of //generator:cpu and //generator:cuda."""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import NoReturn

from generator.families import FAMILIES, families_for
from runtime.process import EXIT_TERMINATED, Terminated, caller_path, sigterm_raises
from pipeline.config import RunConfig
from pipeline.errors import ExecutorUnavailable, RunConflict, RunStopped, WorkerLost
from validator.reason_groups import SUMMARY_STATUSES, CheckTally, group

DEFAULT_COUNT = 300  # the embedded default config: a small real dataset
DEFAULT_SEED = 0


def _resolve(path: str) -> str:
    """Relative paths are relative to where the user ran ./bazelw (not Bazel's runfiles)."""
    return caller_path(path)


def _bad(msg: str) -> NoReturn:
    """A usage error: one line on stderr, exit status 2."""
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(2)


def _parser(target: str) -> argparse.ArgumentParser:
    workspace = os.environ.get("BUILD_WORKSPACE_DIRECTORY") or os.getcwd()
    p = argparse.ArgumentParser(
        prog=f"bazel run //generator:{target} --",
        description=f"Generate validated Warp kernel -> IR pairs from the {target.upper()} families "
        f"({', '.join(families_for(target))}).",
    )
    p.add_argument("--count", type=int, default=DEFAULT_COUNT, help=f"pairs to write (default {DEFAULT_COUNT})")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="run seed, an integer >= 0 (default 0)")
    p.add_argument("--out", default=os.path.join(workspace, "out", target),
                   help=f"output directory (default out/{target}/ in the workspace); with --executor ray on a "
                        f"cluster, every node writes into it: a directory every node reaches (a shared file system)")
    p.add_argument("--families", default=",".join(families_for(target)),
                   help="comma-separated families to draw from, uniformly (default: all of this target's)")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes (default: all cores; where GPUs execute, at most 16 per GPU)")
    p.add_argument("--gpus", default="auto",
                   help="CUDA devices that execute every pair too: auto (every one of this machine, none without a "
                        "GPU), none, a count N (the first N), or a list like cuda:0,cuda:2; workers are assigned to "
                        "them round robin (default auto)")
    p.add_argument("--arch", default="sm_90",
                   help="comma-separated NVRTC targets for the PTX of every pair (default sm_90)")
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="local: worker processes on this machine (default); ray: each chunk a Ray task (one CPU), "
                        "the same bytes; CPU only (Ray workers see no CUDA device, --gpus must be auto or none); "
                        "every node needs this repository and the lock file's packages; a run begun with one "
                        "executor resumes with the other")
    p.add_argument("--ray-address", default=None,
                   help="with --executor ray: auto (the cluster `ray start` made on this machine) or HOST:PORT of a "
                        "cluster's head (default: a local Ray instance started for this run and stopped at its end)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--no-validate", dest="validate", action="store_false",
                   help="codegen only (the fast path): C++ and CUDA forward+backward from Warp's codegen; no PTX, "
                        "no compile, no execution (those verdicts are not_run, and //tools:release refuses such data)")
    return p


def parse_args(target: str, argv: list[str]) -> argparse.Namespace:
    """The flags, checked in order (the first bad one is the error), with --families, --arch and
    --gpus parsed into lists and --out resolved."""
    args = _parser(target).parse_args(argv)
    if args.count < 1:
        _bad(f"--count must be >= 1, got {args.count}")
    if not 0 <= args.seed < 2**63:
        _bad(f"--seed must be in [0, 2**63), got {args.seed}")
    if args.workers is not None and args.workers < 1:
        _bad(f"--workers must be >= 1, got {args.workers}")
    args.families = _families(args.families)
    args.arch = _archs(args.arch)
    args.gpus = _executor_gpus(args)
    args.out = _resolve(args.out)
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        _bad(f"--out {args.out} exists and is not a directory")
    return args


def _families(value: str) -> list[str]:
    fams = [f.strip() for f in value.split(",") if f.strip()]
    unknown = [f for f in fams if f not in FAMILIES]
    if not fams or unknown:
        _bad(f"unknown family {', '.join(unknown) or '(none given)'}; known: {', '.join(sorted(FAMILIES))}")
    if len(set(fams)) != len(fams):
        _bad(f"--families lists a family twice: {value}")
    return fams


def _archs(value: str) -> list[str]:
    """--arch: distinct targets the bundled NVRTC supports (Warp is loaded only once they are distinct)."""
    archs = [a.strip() for a in value.split(",") if a.strip()]
    if not archs or len(set(archs)) != len(archs):
        _bad(f"--arch must list distinct targets like sm_90, got {value!r}")
    from extractor import warp_adapter

    supported = warp_adapter.nvrtc_archs()
    unsupported = [a for a in archs if a not in supported]
    if unsupported:
        _bad(f"--arch {', '.join(unsupported)} is not supported by the bundled NVRTC; supported: {', '.join(supported)}")
    return archs


def _executor_gpus(args: argparse.Namespace) -> list[str] | None:
    """--ray-address and --gpus against --executor: the devices that execute (`parse_gpus`)."""
    if args.ray_address is not None and args.executor != "ray":
        _bad(f"--ray-address {args.ray_address} needs --executor ray")
    if args.ray_address is not None and not args.ray_address.strip():
        _bad("--ray-address is empty: give auto or HOST:PORT, or leave it out for a local Ray instance")
    if args.executor == "ray":  # Ray workers see no CUDA device: auto finds none there
        if args.gpus.strip() not in ("auto", "none"):
            _bad(f"--gpus {args.gpus}: --executor ray executes on CPUs only (GPU execution on Ray is not supported); "
                 f"use --gpus none or --executor local")
        return None if args.gpus.strip() == "auto" else []
    from extractor import warp_adapter

    return parse_gpus(args.gpus, warp_adapter.cuda_devices(), _bad)


def parse_gpus(value: str, available: list[str], bad) -> list[str] | None:
    """--gpus: None for auto (the pipeline takes every device), [] for none, else the devices."""
    value = value.strip()
    have = f"this machine has {len(available)} CUDA device{'s' * (len(available) != 1)}" + (
        f" ({', '.join(available)})" if available else "")
    if value == "auto":
        return None
    if value == "none":
        return []
    if value.isdigit():
        n = int(value)
        if n < 1:
            bad(f"--gpus {value}: a count must be >= 1 (or none)")
        if n > len(available):
            bad(f"--gpus {value}: {have}")
        return available[:n]
    devices = [d.strip() for d in value.split(",")]
    if not value or not all(re.fullmatch(r"cuda:\d+", d) for d in devices):
        bad(f"--gpus {value!r}: expected auto, none, a count N >= 1 or a list like cuda:0,cuda:1")
    unknown = [d for d in devices if d not in available]
    if unknown:
        bad(f"--gpus {value}: {', '.join(unknown)} is not a device here: {have}")
    if len(set(devices)) != len(devices):
        bad(f"--gpus lists a device twice: {value}")
    return devices


def main(target: str, argv: list[str] | None = None) -> int:
    args = parse_args(target, sys.argv[1:] if argv is None else argv)
    from pipeline import scheduler

    # SIGTERM stops the run as Ctrl-C does: the workers are stopped and the run's temporary
    # directory removed (left alone, the parent died at once, its workers ran on to the end of
    # their chunks and the directory stayed); every finished chunk stays on disk for a resume
    try:
        with sigterm_raises():
            m = scheduler.run(RunConfig(target, args.count, args.seed, args.out, args.families, args.workers,
                                        args.quiet, args.arch, validate=args.validate, gpus=args.gpus,
                                        executor=args.executor, ray_address=args.ray_address))
    except (RunConflict, ExecutorUnavailable) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (RunStopped, WorkerLost) as e:
        print(f"error: {e}", file=sys.stderr)
        return scheduler.EXIT_STOPPED
    except Terminated:
        print(f"error: terminated (SIGTERM); the finished chunks are in {args.out}: the same command resumes the run",
              file=sys.stderr)
        return EXIT_TERMINATED
    for line in summary(m, args):
        print(line)
    return 0


def summary(m: dict, args: argparse.Namespace) -> list[str]:
    """The closing summary: what was written and rejected (by reason code), the rate and devices,
    and every check of the written pairs counted by status, reasons grouped (`reason_groups`). No
    pair's own reason: those are in its record, the stats files and manifest.json."""
    c, run = m["counts"], m["_run"]
    rejects: dict[str, int] = {}
    for code, n in m["rejects_by_reason"].items():  # by reason code (a code of no known form: "other: ...")
        rejects[group("failed", code)] = rejects.get(group("failed", code), 0) + n
    lines = [f"wrote {c['passed']} pairs to {args.out} ({len(m['shards'])} shards + manifest.json)",
             f"attempted {c['attempted']}, rejected {c['rejected']}" + (
                 ": " + ", ".join(f"{k} {n}" for k, n in sorted(rejects.items(), key=lambda kn: (-kn[1], kn[0])))
                 if rejects else "")]
    lines += [f"  {fam:<16} {fc['passed']:>6} passed {fc['rejected']:>4} rejected" for fam, fc in c["by_family"].items()]
    ray = " (Ray tasks)" if run["executor"] == "ray" else ""
    lines.append(f"{run['pairs_per_s']} pairs/s over {run['seconds']} s with {run['workers']} workers{ray}"
                 f" on {', '.join(run['devices']) or 'no device (codegen only)'}{_no_gpu(run, args)}"
                 + (f" ({run['resumed_pairs']} pairs resumed from an earlier run, not in the rate)"
                    if run.get("resumed_pairs") else ""))
    tally = CheckTally()
    tally.merge(m["_checks"])
    lines.append(f"checks of the {c['passed']} written pairs, by status ({', '.join(SUMMARY_STATUSES)}), reasons "
                 f"grouped (each pair's own in its record's checks):")
    return lines + tally.lines()


def _no_gpu(run: dict, args: argparse.Namespace) -> str:
    """Why no GPU executed, where one could have: "; no CUDA device" (and no driver, where Warp
    found none: its warning is held back, `warp_adapter.init_warp`), or --gpus none."""
    if not run["validate"] or any(d != "cpu" for d in run["devices"]):
        return ""
    if args.gpus == []:
        return "; GPU execution off (--gpus none)"
    if args.executor == "ray":
        return "; Ray tasks execute on CPUs only"
    from extractor import warp_adapter

    return "; no CUDA device" + (" (no NVIDIA CUDA driver found)" if warp_adapter.cuda_driver_missing() else "")
