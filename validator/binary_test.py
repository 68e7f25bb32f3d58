"""`//validator` as Bazel builds it (the py_binary's own launcher, not an import of its module):
its sandbox child is a spawned process that re-imports the binary's main file, which must not
run the validator a second time there."""

import os
import subprocess
import sys
import tempfile

import pytest

import pipeline


def _binary() -> str:
    if "TEST_SRCDIR" not in os.environ:
        pytest.skip("needs Bazel's runfiles: ./bazelw test //validator:binary_test")
    return os.path.join(os.environ["TEST_SRCDIR"], os.environ["TEST_WORKSPACE"], "validator", "validator")


def test_the_validator_binary_validates_a_dataset_and_fails_a_corrupt_one():
    binary = _binary()
    out = tempfile.mkdtemp(prefix="binary-", dir=os.environ.get("TEST_TMPDIR"))
    pipeline.run(pipeline.RunConfig("cpu", 3, 2, out, ["arith"], workers=1, quiet=True))
    done = subprocess.run([binary, out, "--device", "cpu"], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 records: 3 passed, 0 failed" in done.stdout
    # and it can fail: a record's stored output changed
    shard = os.path.join(out, "shard-00000.jsonl")
    lines = open(shard).read().splitlines()
    lines[1] = lines[1].replace('"outputs":{', '"outputs":{"zz":1,', 1)
    open(shard, "w").write("\n".join(lines) + "\n")
    done = subprocess.run([binary, out, "--device", "cpu"], capture_output=True, text=True, timeout=900)
    assert done.returncode == 1 and "3 records: 2 passed, 1 failed" in done.stdout, done.stdout + done.stderr


def test_parallel_sandboxes_give_the_report_one_sandbox_gives(monkeypatch, capsys):
    """Batches of 2 over 8 records, three of them broken in different ways, judged by 1 and by 3
    sandboxes at once: the same report (failures in file order), and a progress bar that counts
    every record."""
    from validator import revalidate

    out = tempfile.mkdtemp(prefix="parallel-", dir=os.environ.get("TEST_TMPDIR"))
    pipeline.run(pipeline.RunConfig("cpu", 8, 4, out, ["arith", "branch"], workers=1, quiet=True))
    shard = os.path.join(out, "shard-00000.jsonl")
    lines = open(shard).read().splitlines()
    lines[1] = lines[1][:40]  # torn
    lines[4] = lines[4].replace('"outputs":{', '"outputs":{"zz":1,', 1)  # outputs the kernel does not write
    lines[6] = lines[6].replace('"kernel_name":"', '"kernel_name":"x', 1)  # name no longer the spec's
    open(shard, "w").write("\n".join(lines) + "\n")
    monkeypatch.setattr(revalidate, "BATCH", 2)
    one = revalidate.revalidate(out, gpu=False, workers=1)
    three = revalidate.revalidate(out, gpu=False, workers=3, quiet=False)
    assert one == three
    assert [f["where"] for f in one["failures"]] == ["shard-00000.jsonl:2", "shard-00000.jsonl:5", "shard-00000.jsonl:7"]
    assert one["passed"] == 5 and one["execute_gpu"] == {"not_run": 5}
    assert "8/8 records" in capsys.readouterr().err


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
