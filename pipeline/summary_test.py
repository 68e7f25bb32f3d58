"""The closing summaries of a real run and of //validator on it, each run as a user runs it (a child
process: pipeline/cpu.py with two workers, then the validator with two sandboxes): every check is
counted by status, the counts add up to the pairs written (and equal the manifest's), every status
other than passed is split into reason groups that add up to it, no kernel is named, and Warp's
CUDA driver warning shows at most once per command (on a machine without a driver, not at all:
init_warp holds it back, and the run's device line says "no CUDA device")."""

import json
import os
import re
import subprocess
import sys

import pytest

from extractor import warp_adapter
from pipeline.testing import child_env, records, scratch_dirs
from validator.outcomes import ALL_CHECKS
from validator.reason_groups import parse_line

COUNT = 30
FAMILIES = "arith,branch,loop,atomics"
CPU = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cpu.py")
VALIDATOR = "import sys; from validator.revalidate import main; sys.exit(main())"  # as validator/__main__.py
WARNING = "Could not find or load the NVIDIA CUDA driver"
# a generated kernel's name: family_ + 8 hex digits (generator.families.kernel_name)
KERNEL_NAME = re.compile(r"[a-z_]+_[0-9a-f]{8}\b")


@pytest.fixture(scope="module")
def commands():
    """(the run's directory, its manifest, the run's output, the validator's output): each output
    stdout and stderr of one child process."""
    out = scratch_dirs()("summary_run")
    tmp = scratch_dirs()("summary_tmp")
    os.makedirs(tmp)
    env = child_env(TMPDIR=tmp)
    run = subprocess.run([sys.executable, CPU, "--count", str(COUNT), "--seed", "5", "--out", out, "--families",
                          FAMILIES, "--workers", "2", "--quiet"], env=env, capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    val = subprocess.run([sys.executable, "-c", VALIDATOR, out, "--workers", "2", "--quiet"], env=env,
                         capture_output=True, text=True, timeout=1800)
    assert val.returncode == 0, val.stdout + val.stderr[-3000:]
    with open(os.path.join(out, "manifest.json")) as f:
        return out, json.load(f), run, val


def _check_lines(stdout: str, header: str) -> dict[str, dict]:
    """The summary's check lines below the line starting with `header`: {check: parse_line(...)}."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header)) + 1
    got = {}
    for line in lines[start:]:
        if not line.startswith("  "):
            break
        check, rest = line.strip().split(None, 1)
        got[check] = parse_line(rest)
    return got


def _assert_adds_up(got: dict[str, dict], n: int) -> None:
    assert list(got) == list(ALL_CHECKS)  # every check, the backward ones too, in the record's order
    for check, statuses in got.items():
        assert sum(count for count, _ in statuses.values()) == n, (check, statuses)
        for status, (count, groups) in statuses.items():
            if status == "passed":
                assert groups == {}, (check, groups)
            else:  # every verdict other than passed is in a group, and the groups add up
                assert groups and sum(groups.values()) == count, (check, status, count, groups)


def _assert_names_no_kernel(text: str, out: str) -> None:
    names = {json.loads(line)["kernel_name"] for line in records(out)}
    assert len(names) == COUNT
    text = text.replace(out, "OUT")  # the run's directory may hold anything
    assert not [name for name in names if name in text]
    assert not KERNEL_NAME.search(text), KERNEL_NAME.search(text)


def test_the_run_s_summary_counts_every_check_by_status_with_grouped_reasons(commands):
    """Every check's statuses add up to the pairs written and equal the manifest's counts; the
    reasons are grouped, none left as "other"; no kernel named."""
    out, manifest, run, _ = commands
    assert len(records(out)) == COUNT == manifest["counts"]["passed"]
    got = _check_lines(run.stdout, f"checks of the {COUNT} written pairs")
    _assert_adds_up(got, COUNT)
    for check, statuses in got.items():
        assert {s: count for s, (count, _) in statuses.items()} == manifest["validation"][check]
    assert got["ir_match"] == {"not_run": (COUNT, {"compared by //validator": COUNT})}
    assert not [g for s in got.values() for _, groups in s.values() for g in groups if g.startswith("other")]
    _assert_names_no_kernel(run.stdout, out)


def test_the_validator_s_summary_counts_every_check_by_status_with_grouped_reasons(commands):
    """The same for //validator over the run: each record's fresh verdict per check, adding up to
    the records; no kernel named (each record's own reason is in the report)."""
    out, _, _, val = commands
    assert f"{COUNT} records: {COUNT} passed, 0 failed" in val.stdout
    got = _check_lines(val.stdout, f"checks of the {COUNT} records")
    _assert_adds_up(got, COUNT)
    assert got["ir_match"] == {"passed": (COUNT, {})} and got["execute_cpu"] == {"passed": (COUNT, {})}
    with open(os.path.join(out, "validation_report.json")) as f:
        assert {s: e["count"] for s, e in json.load(f)["checks"]["execute_backward_cpu"].items()} == {
            s: count for s, (count, _) in got["execute_backward_cpu"].items()}
    _assert_names_no_kernel(val.stdout, out)


def test_the_cuda_driver_warning_shows_at_most_once_per_command(commands):
    """Each worker process and each sandbox initialises Warp, whose native library prints the
    warning once per process where no driver loads: held back, it shows in neither command, and
    the run's device line says why no GPU executed."""
    _, _, run, val = commands
    for done in (run, val):
        assert (done.stdout + done.stderr).count(WARNING) <= 1, done.stderr
    if warp_adapter.cuda_driver_missing():
        assert WARNING not in run.stdout + run.stderr + val.stdout + val.stderr
        device = next(line for line in run.stdout.splitlines() if "pairs/s" in line)
        assert "no CUDA device (no NVIDIA CUDA driver found)" in device, device


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
