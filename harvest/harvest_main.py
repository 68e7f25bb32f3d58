"""`./bazelw run //harvest -- --out DIR [--workers W] [--limit N] [--under PATH] [--quiet]`: harvest the
kernels of the installed warp-lang wheel into DIR (harvest/run.py says what it writes)."""

from __future__ import annotations

import argparse
import os
import sys

from runtime.process import EXIT_TERMINATED, Terminated, caller_path, sigterm_raises

from harvest import run


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints its usage too)
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)


def _count(flag: str):
    def parse(value: str) -> int:
        try:
            n = int(value)
        except ValueError:
            n = 0
        if n < 1:
            raise argparse.ArgumentTypeError(f"{flag} {value!r}: expected a whole number >= 1")
        return n
    return parse


def _under(value: str) -> str:
    if not run.UNDER.match(value) or ".." in value.split("/"):
        raise argparse.ArgumentTypeError(f"--under {value!r}: expected a path inside the wheel, such as warp/tests/")
    return value


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = _Parser(prog="harvest", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="the directory to write harvest.jsonl and manifest.json into")
    p.add_argument("--workers", type=_count("--workers"), default=1, help="worker processes (default 1)")
    p.add_argument("--limit", type=_count("--limit"), default=None,
                   help="harvest only the first N kernels found, in (path, lines) order")
    p.add_argument("--under", type=_under, default=None,
                   help="harvest only the kernels of the wheel's files under this path (e.g. warp/tests/test_vec.py); "
                        "--limit counts among them")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def summary(m: dict, out: str) -> list[str]:
    """The closing summary: records written, what was found and extracted per folder, skips, and
    the CPU and CUDA compiles with their failures by reason."""
    c = m["counts"]
    lines = [f"wrote {c['records']} records to {os.path.join(out, run.RECORDS)} (+ {run.MANIFEST}) from warp-lang "
             f"{m['warp_lang']} ({m['license']}) in {m['_seconds']} s",
             f"found {c['found']} kernels: {c['standalone']} standalone, {c['verbatim']} verbatim, {c['skipped']} skipped"
             + (": " + ", ".join(f"{k} {v}" for k, v in m["skipped_by_reason"].items()) if c["skipped"] else "")]
    lines += [f"  {d:<10} {x['found']:>5} found {x['records']:>5} records {x['cpu_compiled']:>5} compiled (cpu) "
              f"{x['cuda_compiled']:>5} (cuda) {x['both_compiled']:>5} (both)" for d, x in m["by_directory"].items()]
    lines.append(f"compiled on the CPU (LLVM): {c['cpu_compiled']} of {c['records']}"
                 + ("; failures: " + ", ".join(f"{k} {v}" for k, v in m["failures_by_reason"].items())
                    if m["failures_by_reason"] else ""))
    lines.append(f"compiled for CUDA (NVRTC, PTX): {c['cuda_compiled']} of {c['records']}"
                 + ("; failures: " + ", ".join(f"{k} {v}" for k, v in m["cuda_failures_by_reason"].items())
                    if m["cuda_failures_by_reason"] else ""))
    rest = c["records"] - c["expected_to_raise"]
    lines.append(f"compiled on both: {c['both_compiled']} of {c['records']}; of the {rest} kernels no test of the wheel "
                 f"expects to raise, {c['both_compiled_not_expected_to_raise']}"
                 + (f" ({100 * c['both_compiled_not_expected_to_raise'] / rest:.1f}%)" if rest else "")
                 + f"; {c['expected_to_raise']} named inside an assertRaises, {c['expected_to_raise_not_compiled']} "
                   f"of them not compiled")
    L, mods = m["launches"], m["launches"]["test_modules"]
    lines.append(f"launches recorded from the wheel's {mods['run']} test modules ({mods['ran_to_end']} ran to their end"
                 + "".join(f", {k} {v}" for k, v in mods["failed_by_reason"].items()) + f"): {L['launch_recorded']} "
                 f"records carry one, {L['replay_cpu_passed']} replayed byte for byte"
                 + "".join(f", {k} {v}" for k, v in L["replay_cpu_failed_by_reason"].items()))
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    out = caller_path(args.out)
    try:
        os.makedirs(out, exist_ok=True)
        if not os.access(out, os.W_OK):
            raise PermissionError(f"{out} is not writable")
    except OSError as e:
        print(f"error: --out {args.out}: cannot write there ({e.strerror or e})", file=sys.stderr)
        return 2
    try:
        with sigterm_raises():
            m = run.harvest(out, args.workers, args.limit, run.Progress(args.quiet), args.under)
    except Terminated:
        print("error: terminated (SIGTERM); nothing was written", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("error: interrupted; nothing was written", file=sys.stderr)
        return 130
    for line in summary(m, args.out):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
