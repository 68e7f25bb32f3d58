"""The harvester over the installed warp-lang wheel: discovery finds kernels read by hand at their
lines (sha256 computed here from the file); standalone sources compile with Warp on their own; a
kernel that closes over a local is counted with its reason, not dropped; every kernel found is
accounted for; two runs of `--limit 30` write the same bytes, and so do one worker and two at
`--limit 400`; a setting a source makes on import stays in its batch; bad input is one line and a
non-zero exit."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile

import pytest

from harvest import discover as disc
from harvest import run
from harvest.lower import Job, lower, plan_batches
from harvest.standalone import STANDALONE, VERBATIM, extract, extract_all

ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
# read by hand in warp-lang 1.19.0: (path, name, [first, last] with decorators, scope)
KNOWN = [
    ("warp/examples/core/example_wave.py", "wave_displace", (36, 62), "module"),
    ("warp/examples/core/example_wave.py", "wave_solve", (65, 90), "module"),
    ("warp/tests/test_codegen.py", "mixed_dyn_static_loop_kernel", (730, 739), "function"),
    ("warp/tests/test_atomic.py", "kernel", (191, 193), "function"),
]


@pytest.fixture(scope="module")
def found():
    kernels, files = disc.discover()
    return kernels, files


def _find(kernels, path, name, lines):
    return [k for k in kernels if (k.file.path, k.name, k.lines) == (path, name, lines)]


def _sha256(path: str) -> str:
    with open(os.path.join(os.path.dirname(disc.warp_root()), path), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.mark.parametrize("path, name, lines, scope", KNOWN)
def test_discovery_finds_a_known_kernel_at_its_lines_with_the_file_s_sha256(found, path, name, lines, scope):
    """Each kernel read by hand is found once, at its lines, with its scope and the sha256 of the
    installed file; its first line is its decorator and its `def` follows."""
    kernels, _ = found
    hits = _find(kernels, path, name, lines)
    assert len(hits) == 1, [(k.file.path, k.name, k.lines) for k in kernels if k.name == name][:10]
    k = hits[0]
    assert k.scope == scope and k.file.sha256 == _sha256(path)
    text = k.file.lines[lines[0] - 1: lines[1]]
    assert text[0].strip().startswith("@wp.kernel") and any(t.strip().startswith(f"def {name}(") for t in text)


def test_discovery_covers_the_three_folders_and_reads_version_and_licence_from_the_wheel(found):
    """examples, tests and _src all hold kernels; warp_lang is the running Warp's version and
    the licence the wheel's metadata's."""
    import importlib.metadata

    import warp

    kernels, files = found
    dirs = {k.directory for k in kernels}
    assert dirs == set(disc.DIRECTORIES) and len(kernels) > 2000
    assert disc.wheel_version() == warp.config.version
    assert disc.wheel_license() == importlib.metadata.metadata("warp-lang")["License"]
    wave = files["warp/examples/core/example_wave.py"]
    assert {"sample", "laplacian"} <= set(wave.funcs) and "import warp as wp" in wave.imports


def test_a_kernel_that_closes_over_a_local_is_counted_with_its_reason(found):
    """A kernel made inside a test function reading the function's `dtype` parameter has no
    standalone cut: its reason is `closure:dtype`, and the manifest counts it as skipped."""
    kernels, _ = found
    (k,) = _find(kernels, "warp/tests/test_atomic.py", "kernel", (191, 193))
    e = extract(k)
    assert e.source is None and e.reason == "closure:dtype"
    m = run.manifest([k], [e], [], {"warp_lang": "x", "license": "y"}, (None, None), 1, {})
    assert m["counts"]["skipped"] == 1 and m["skipped_by_reason"] == {"closure": 1}
    assert m["skipped_kernels"] == [{"path": k.file.path, "lines": [191, 193], "name": "kernel", "reason": "closure:dtype"}]


def test_every_kernel_found_is_extracted_or_skipped_with_a_reason(found):
    """Over the whole wheel: standalone + verbatim + skipped == found, per folder and in all."""
    kernels, _ = found
    extractions = extract_all(kernels)
    m = run.manifest(kernels, extractions, [], {"warp_lang": "x", "license": "y"}, (None, None), len(kernels), {})
    for counts in [m["counts"], *m["by_directory"].values()]:
        assert counts["standalone"] + counts["verbatim"] + counts["skipped"] == counts["found"]
    assert sum(m["skipped_by_reason"].values()) == m["counts"]["skipped"] == len(m["skipped_kernels"])
    assert all(e.kind in (STANDALONE, VERBATIM) for e in extractions if e.source is not None)
    assert m["counts"]["standalone"] + m["counts"]["verbatim"] > 0.8 * len(kernels)


def test_standalone_sources_compile_with_warp_on_their_own(found):
    """A sample of standalone sources (helpers added, a helper lifted out of a test function,
    and verbatim ones) compiles with Warp's CPU backend, and the cut holds the kernel and its
    helpers; the sources hold what was added and nothing from the rest of the file."""
    kernels, _ = found
    want = [("warp/examples/core/example_wave.py", "wave_displace", (36, 62)),
            ("warp/examples/core/example_wave.py", "wave_solve", (65, 90)),
            ("warp/tests/test_codegen.py", "mixed_dyn_static_loop_kernel", (730, 739))]
    sample = [_find(kernels, *w)[0] for w in want]
    ex = [extract(k) for k in sample]
    assert [e.kind for e in ex] == [VERBATIM, STANDALONE, STANDALONE]
    assert "func:sample" in ex[1].added and "func:laplacian" in ex[1].added and "def wave_displace" not in ex[1].source
    assert any(a.startswith("lifted:") for a in ex[2].added)
    jobs = [Job(run.job_key(k), k.name, e.source) for k, e in zip(sample, ex)]
    with tempfile.TemporaryDirectory() as tmp:
        out = {}
        for job in jobs:  # each alone: its source compiles on its own
            lower([job], tmp, out)
    for job in jobs:
        r = out[job.key]
        assert r["cpu"]["status"] == "passed", r
        assert f"{job.name}_cpu_kernel_forward" in r["ir"]["cpp"]["forward"]
        assert f"{job.name}_cuda_kernel_forward" in r["ir"]["cuda"]["forward"]
    assert "sample_0(" in out[jobs[1].key]["ir"]["cpp"]["forward"]


def test_kernels_sharing_structs_in_one_batch_are_cut_as_when_alone(found):
    """Two kernels of warp/tests/test_codegen_instancing.py take the same structs: in one batch,
    the other's CUDA kernel function (its parameters name the structs) and CPU argument struct
    are not part of a kernel's cut (the full harvest stored them until the cut left other kernels'
    items out; the re-harvest in //validator caught it); each record equals its kernel's alone,
    PTX included."""
    kernels, _ = found
    path = "warp/tests/test_codegen_instancing.py"
    pair = [k for k in kernels if k.file.path == path and k.name in ("name_clash_structs_args_kernel",
                                                                      "name_clash_structs_ctor_kernel")]
    assert len(pair) == 2
    jobs = [Job(run.job_key(k), k.name, e.source) for k, e in zip(pair, extract_all(pair))]
    assert len(plan_batches(jobs)) == 1  # one batch
    with tempfile.TemporaryDirectory() as tmp:
        together = lower(jobs, tmp)
        alone = {}
        for job in jobs:
            lower([job], tmp, alone)
    for job, other in zip(jobs, reversed(jobs)):
        ir = together[job.key]["ir"]
        assert together[job.key]["cpu"] == together[job.key]["cuda"] == {"status": "passed"}
        assert ir == alone[job.key]["ir"] and ir["ptx"]["sm_90"]["forward"]
        assert f"{other.name}_cuda_kernel_forward" not in ir["cuda"]["forward"]
        assert f"wp_args_{other.name}" not in ir["cpp"]["forward"]


def test_a_setting_a_source_changes_on_import_does_not_reach_the_next_batch(monkeypatch):
    """Examples set `wp.config` when imported (`enable_backward = False` among them): a batch
    lowered after such a source still gets its backward, as it would in a worker of its own, so
    the records do not depend on how batches are shared among workers. Without the reset the
    second kernel has no backward."""
    import warp as wp

    from harvest import lower as lower_mod

    quiet = ("import warp as wp\nwp.config.enable_backward = False\n\n\n@wp.kernel\n"
             "def quiet_k(x: wp.array(dtype=float)):\n    i = wp.tid()\n    x[i] = x[i] * 2.0\n")
    plain = ("import warp as wp\n\n\n@wp.kernel\n"
             "def plain_k(x: wp.array(dtype=float), y: wp.array(dtype=float)):\n    i = wp.tid()\n"
             "    y[i] = wp.sin(x[i])\n")
    saved = wp.config.enable_backward
    try:
        for reset in (True, False):
            if not reset:
                monkeypatch.setattr(lower_mod, "_reset_config", lambda: None)
            wp.config.enable_backward = saved
            lower_mod._CONFIG.clear()
            with tempfile.TemporaryDirectory() as tmp:
                out = {}
                lower([Job("q", "quiet_k", quiet)], tmp, out)
                lower([Job("p", "plain_k", plain)], tmp, out)
            backward = out["p"]["ir"]["cpp"]["backward"]
            if reset:
                assert backward and "plain_k_cpu_kernel_backward" in backward, out["p"]
            else:
                assert not backward, "the leak this test is for no longer happens: the test proves nothing"
    finally:
        wp.config.enable_backward = saved
        lower_mod._CONFIG.clear()


def _harvest(out: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    return subprocess.run([sys.executable, "-m", "harvest.harvest_main", "--out", out, *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


RAISING = """import unittest
import warp as wp


@wp.kernel
def module_bad(x: wp.array(dtype=float)):
    x[0] = 1.0


@wp.kernel
def module_good(x: wp.array(dtype=float)):
    x[0] = 2.0


def test_module(test):
    with test.assertRaises(RuntimeError):
        wp.launch(module_bad, dim=1, inputs=[None])
    wp.launch(module_good, dim=1, inputs=[None])


class TestRaising(unittest.TestCase):
    def test_with(self):
        @wp.kernel
        def bad(x: wp.array(dtype=float)):
            x[0] = 1.0

        @wp.kernel
        def good(x: wp.array(dtype=float)):
            x[0] = 2.0

        wp.launch(good, dim=1, inputs=[None])
        with self.assertRaisesRegex(TypeError, "bad"):
            wp.launch(bad, dim=1, inputs=[None])

    def test_call(self):
        @wp.kernel
        def by_call(x: wp.array(dtype=float)):
            x[0] = 1.0

        self.assertRaises(ValueError, wp.launch, by_call, dim=1)

    def test_other(self):
        @wp.kernel
        def bad(x: wp.array(dtype=float)):  # the same name as test_with's, not raised on here
            x[0] = 3.0

        wp.launch(bad, dim=1, inputs=[None])
"""


def test_a_kernel_the_wheel_s_test_names_inside_assert_raises_is_expected_to_raise(tmp_path):
    """The innermost function around a kernel (the module for a module-level one) decides: named
    in a `with self.assertRaises...` body or as an argument of a `self.assertRaises(...)` call."""
    (tmp_path / "warp" / "tests").mkdir(parents=True)
    (tmp_path / "warp" / "tests" / "test_raising.py").write_text(RAISING)
    kernels, _ = disc.discover(str(tmp_path / "warp"))
    got = {(k.name, k.lines[0]): k.expected_to_raise for k in kernels}
    assert got == {("module_bad", 5): True, ("module_good", 10): False, ("bad", 23): True, ("good", 27): False,
                   ("by_call", 36): True, ("bad", 43): False}


def test_two_runs_of_limit_30_write_the_same_bytes_and_account_for_every_kernel():
    """`--limit 30 --workers 2` twice: identical harvest.jsonl and manifest.json; every kernel is
    extracted or skipped, each extracted one has a record, each record a CPU verdict, and no
    record's code names this machine's site-packages."""
    with tempfile.TemporaryDirectory() as tmp:
        a, b = os.path.join(tmp, "a"), os.path.join(tmp, "b")
        for out in (a, b):
            p = _harvest(out, "--limit", "30", "--workers", "2", "--quiet")
            assert p.returncode == 0, p.stderr[-3000:]
            assert p.stdout.startswith("wrote ") and p.stderr == ""
        for name in (run.RECORDS, run.MANIFEST):
            with open(os.path.join(a, name), "rb") as fa, open(os.path.join(b, name), "rb") as fb:
                assert fa.read() == fb.read(), name
        with open(os.path.join(a, run.MANIFEST)) as f:
            m = json.load(f)
        with open(os.path.join(a, run.RECORDS)) as f:
            text = f.read()
    assert os.path.dirname(disc.warp_root()) not in text
    records = [json.loads(line) for line in text.splitlines()]
    c = m["counts"]
    assert c["found"] == 30 and c["standalone"] + c["verbatim"] + c["skipped"] == 30
    assert c["both_compiled_not_expected_to_raise"] + c["expected_to_raise"] - c["expected_to_raise_not_compiled"] \
        == c["both_compiled"]
    assert sum(m["skipped_by_reason"].values()) == c["skipped"]
    keys = {(r["provenance"]["path"], tuple(r["provenance"]["lines"])) for r in records}
    assert len(keys) == c["standalone"] + c["verbatim"] and len(records) == c["records"]
    assert all(r["origin"] == "real" and r["compile"]["cpu"]["status"] in ("passed", "failed") for r in records)
    assert records == sorted(records, key=lambda r: (r["provenance"]["path"], r["provenance"]["lines"], r["overload"] or ""))
    r = records[0]
    assert r["provenance"]["sha256"] == _sha256(r["provenance"]["path"])


def test_one_worker_and_two_write_the_same_bytes():
    """`--limit 400` (the library's kernels and the first examples, some of which change
    `wp.config` when imported) with one worker and with two: identical records and manifest,
    and every record compiled on the CPU."""
    with tempfile.TemporaryDirectory() as tmp:
        outs = [os.path.join(tmp, str(w)) for w in (1, 2)]
        for out, w in zip(outs, (1, 2)):
            p = _harvest(out, "--limit", "400", "--workers", str(w), "--quiet")
            assert p.returncode == 0, p.stderr[-3000:]
        for name in (run.RECORDS, run.MANIFEST):
            with open(os.path.join(outs[0], name), "rb") as fa, open(os.path.join(outs[1], name), "rb") as fb:
                assert fa.read() == fb.read(), name
        with open(os.path.join(outs[0], run.MANIFEST)) as f:
            c = json.load(f)["counts"]
    assert c["records"] >= 250 and c["cpu_compiled"] == c["records"], c


@pytest.mark.parametrize("args, expect", [
    (["--limit", "0"], "--limit '0': expected a whole number >= 1"),
    (["--limit", "ten"], "--limit 'ten': expected a whole number >= 1"),
    (["--workers", "-1"], "--workers '-1': expected a whole number >= 1"),
    (["--under", "warp/../etc"], "--under 'warp/../etc': expected a path inside the wheel"),
    (["--under", "/etc"], "--under '/etc': expected a path inside the wheel"),
])
def test_a_bad_count_is_one_line_and_exit_2(args, expect):
    """A bad --limit, --workers or --under: one `error:` line naming it, exit 2, nothing written."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out")
        p = _harvest(out, *args)
        assert p.returncode == 2 and p.stderr.count("\n") == 1 and expect in p.stderr, p.stderr
        assert not os.path.exists(out)


def test_an_out_dir_that_cannot_be_written_is_one_line_and_exit_2():
    """--out under a regular file: one `error:` line, exit 2."""
    with tempfile.NamedTemporaryFile() as f:
        p = _harvest(os.path.join(f.name, "out"), "--limit", "1")
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and p.stderr.startswith("error: --out "), p.stderr


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
