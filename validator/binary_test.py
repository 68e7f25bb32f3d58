"""`//validator` as Bazel builds it (the py_binary's own launcher, not an import of its module):
its sandbox child is a spawned process that re-imports the binary's main file, which must not
run the validator a second time there."""

import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest

import pipeline


def _binary() -> str:
    if "TEST_SRCDIR" not in os.environ:
        pytest.skip("needs Bazel's runfiles: ./bazelw test //validator:binary_test")
    return os.path.join(os.environ["TEST_SRCDIR"], os.environ["TEST_WORKSPACE"], "validator", "validator")


def _validator() -> list[str]:
    """The Bazel-built binary under Bazel; `python -m validator` from the repository otherwise."""
    if "TEST_SRCDIR" in os.environ:
        return [_binary()]
    return [sys.executable, "-m", "validator"]


def _session(sid: int) -> list[int]:
    """The pids of the processes in session `sid`."""
    pids = []
    for name in os.listdir("/proc"):
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if name.isdigit() and int(fields[3]) == sid:
            pids.append(int(name))
    return pids


@pytest.mark.parametrize("sig,code,words", [(signal.SIGTERM, 143, "terminated (SIGTERM)"),
                                            (signal.SIGINT, 130, "interrupted")])
def test_a_signal_stops_the_validator_without_waiting_for_its_sandboxes(sig, code, words):
    """`kill PID` or `kill -INT PID` of //validator while a sandbox runs a batch that would take
    10 minutes: it exits within seconds with one error line and its status, no process of it is
    left (the sandbox's child killed, not orphaned), its temporary directory is gone and no report
    is written. Before, SIGTERM killed the parent alone and the child ran on; Ctrl-C waited for
    the batch (a real one may take up to sandbox.BATCH_TIMEOUT_S)."""
    base = tempfile.mkdtemp(prefix="stop-", dir=os.environ.get("TEST_TMPDIR"))
    out, tmp, hook = (os.path.join(base, d) for d in ("run", "tmp", "hook"))
    os.makedirs(tmp)
    os.makedirs(hook)
    pipeline.run(pipeline.RunConfig("cpu", 3, 2, out, ["arith"], workers=1, quiet=True))
    # the test's own stand-in for a 10-minute batch, as data the validator's code never reads
    # from the environment: a sitecustomize (loaded by the binary's interpreter at start, from
    # PYTHONPATH, which Bazel's launcher keeps after its own entries) gives every Sandbox a delay
    with open(os.path.join(hook, "sitecustomize.py"), "w") as f:
        f.write("import functools\nfrom validator import sandbox\n"
                "sandbox.Sandbox.__init__ = functools.partialmethod(sandbox.Sandbox.__init__, delay_s=600)\n")
    env = {**os.environ, "TMPDIR": tmp}
    root = None  # under Bazel the binary's launcher sets up its own path
    if "TEST_SRCDIR" not in os.environ:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (hook, root, env.get("PYTHONPATH")) if p)
    proc = subprocess.Popen(_validator() + [out, "--device", "cpu", "--workers", "1", "--quiet"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, cwd=root)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and len(_session(proc.pid)) < 2:
        time.sleep(0.05)  # until the sandbox's child (a second process of the session) is there
    assert proc.poll() is None, proc.stderr.read().decode()
    time.sleep(1.0)  # the child is in its batch (sleeping)
    proc.send_signal(sig)
    assert proc.wait(timeout=120) == code
    err = proc.stderr.read().decode()
    assert words in err and err.count("error:") == 1 and "Traceback" not in err, err
    for _ in range(100):  # nothing of it left running
        if not _session(proc.pid):
            break
        time.sleep(0.1)
    assert _session(proc.pid) == []
    assert os.listdir(tmp) == [] and not os.path.exists(os.path.join(out, "validation_report.json"))


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
