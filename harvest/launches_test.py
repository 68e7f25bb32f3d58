"""Real launches (harvest/launches.py, extractor/launches.py): the wheel's own test module
`warp/tests/test_ref.py` run with Warp's launch hooked records its kernels' first CPU launches,
the same twice; a harvest of that file replays them on its standalone kernels byte for byte; a
launch with one output byte changed, or arguments that do not fit the kernel, fails the replay
with its reason; what cannot be stored as plain data (a struct, an object id, aliased arrays,
arrays over the cap) is counted with its reason, never stored."""

from __future__ import annotations

import base64
import copy
import json
import os
import struct
import sys
import tempfile

import pytest

from extractor import launches as hook
from extractor import warp_adapter
from harvest import launches, run
from harvest.lower import Job, lower

UNDER = "warp/tests/test_ref.py"
TMP = os.environ.get("TEST_TMPDIR") or tempfile.gettempdir()


@pytest.fixture(scope="module")
def harvest_dir():
    out = os.path.join(TMP, "launches_harvest")
    os.makedirs(out, exist_ok=True)
    run.harvest(out, 2, None, run.Progress(True), UNDER)
    return out


def _records(d: str) -> list[dict]:
    with open(os.path.join(d, run.RECORDS)) as f:
        return [json.loads(line) for line in f]


def test_a_harvest_replays_the_launches_the_wheel_s_own_test_made(harvest_dir):
    """Most of test_ref.py's kernels carry a launch its tests made; every one replays; the
    manifest counts them, and every record without a launch says why."""
    records = _records(harvest_dir)
    with open(os.path.join(harvest_dir, run.MANIFEST)) as f:
        m = json.load(f)
    with_launch = [r for r in records if r["launch"] is not None]
    assert len(with_launch) >= 25 and m["launches"]["launch_recorded"] == len(with_launch)
    assert all(r["execute"]["replay_cpu"]["status"] == "passed" for r in with_launch)
    assert m["launches"]["replay_cpu_passed"] == len(with_launch)
    assert m["launches"]["test_modules"] == {"run": 1, "ran_to_end": 1, "skipped_slow": 0, "failed_by_reason": {}}
    assert sum(m["launches"]["replay_cpu_not_run_by_reason"].values()) == len(records) - len(with_launch)
    # a launch that changed something: test_ref.py's kernel_increment_local adds one to result[0]
    (inc,) = [r for r in records if r["name"] == "kernel_increment_local"]
    (arg,) = inc["launch"]["args"]
    assert arg["kind"] == "array" and arg["dtype"] == "int32" and arg["shape"] == [1]
    before, after = (int.from_bytes(base64.b64decode(arg[k]), "little", signed=True) for k in ("in", "out"))
    assert after == before + 1
    assert any(r["execute"]["replay_cpu"]["reason"] == launches.NOT_LAUNCHED
               for r in records if r["launch"] is None)


def test_recording_again_gives_the_same_launches(harvest_dir):
    """The test module recorded again, with another worker count: the same launches."""
    records = _records(harvest_dir)
    again, counts = launches.record_all([UNDER], 1)
    assert counts["ran_to_end"] == 1
    for r in records:
        key = f"{r['provenance']['path']}:{r['provenance']['lines'][0]}"
        if r["launch"] is not None:
            assert again[key]["launch"] == r["launch"], key


def _lower_with(rec: dict, launch: dict) -> dict:
    job = Job(f"{rec['provenance']['path']}:x", rec["name"], rec["source"], launch)
    with tempfile.TemporaryDirectory() as d:
        out = lower([job], d)
    return out[job.key]["replay_cpu"]


def test_a_forged_launch_fails_its_replay_with_its_reason(harvest_dir):
    """Through //harvest's lowering: the recorded launch replays; one output byte changed fails
    `outputs_differ`; an argument renamed or a shape that does not fit the bytes fails `replay:`."""
    rec = next(r for r in _records(harvest_dir) if r["name"] == "kernel_increment_local")
    assert _lower_with(rec, rec["launch"]) == {"status": "passed"}
    forged = copy.deepcopy(rec["launch"])
    raw = bytearray(base64.b64decode(forged["args"][0]["out"]))
    raw[0] ^= 1
    forged["args"][0]["out"] = base64.b64encode(bytes(raw)).decode()
    v = _lower_with(rec, forged)
    assert v["status"] == "failed" and v["reason"] == "outputs_differ" and "result" in v["message"]
    renamed = copy.deepcopy(rec["launch"])
    renamed["args"][0]["name"] = "other"
    assert _lower_with(rec, renamed)["reason"] == "replay:ValueError"
    misfit = copy.deepcopy(rec["launch"])
    misfit["args"][0]["shape"] = [2]
    assert _lower_with(rec, misfit)["reason"] == "replay:ValueError"
    huge = copy.deepcopy(rec["launch"])
    huge["dim"] = [hook.CAP_THREADS + 1]
    assert _lower_with(rec, huge)["reason"] == "replay:ValueError"


KERNELS = '''
import warp as wp

@wp.struct
class S:
    a: float

@wp.kernel
def with_struct(s: S, x: wp.array(dtype=float)):
    x[0] = s.a

@wp.kernel
def with_id(m: wp.uint64, x: wp.array(dtype=float)):
    x[0] = float(m)

@wp.kernel
def noop(x: wp.array(dtype=float)):
    pass

@wp.kernel
def add(x: wp.array(dtype=float), y: wp.array(dtype=float), v: wp.vec3):
    i = wp.tid()
    y[i] = x[i] + v[1]
'''


def test_what_cannot_be_stored_as_data_is_counted_with_its_reason(tmp_path):
    """A struct argument, a uint64 (an object's id), one array passed twice, arrays over the byte
    cap and a launch over the thread cap: each recorded as its reason, with no launch; a plain
    launch is recorded with its vec3 value and its output."""
    import warp as wp

    path = tmp_path / "kernels_for_hook.py"
    path.write_text(KERNELS)
    mod = warp_adapter.import_source(KERNELS, str(path), "kernels_for_hook")
    seen = []
    x = wp.zeros(4, dtype=float, device="cpu")
    y = wp.zeros(4, dtype=float, device="cpu")
    big = wp.zeros(hook.CAP_BYTES // 4 + 1, dtype=float, device="cpu")
    with hook.recording(lambda k, launch, reason: seen.append((k.key, launch, reason))):
        s = mod.S()
        s.a = 2.0
        wp.launch(mod.with_struct, dim=1, inputs=[s, x], device="cpu")
        wp.launch(mod.with_id, dim=1, inputs=[7, x], device="cpu")
        wp.launch(mod.add, dim=4, inputs=[x, x, wp.vec3(1.0, 2.0, 3.0)], device="cpu")
        wp.launch(mod.add, dim=1, inputs=[big, y, wp.vec3(0.0)], device="cpu")
        wp.launch(mod.noop, dim=hook.CAP_THREADS + 1, inputs=[x], device="cpu")
        wp.launch(mod.add, dim=4, inputs=[x, y, wp.vec3(1.0, 2.0, 3.0)], device="cpu")
    reasons = [(k, r) for k, launch, r in seen if launch is None]
    assert reasons == [("with_struct", "struct_argument"), ("with_id", "uint64_value"), ("add", "aliased_arrays"),
                       ("add", "over_byte_cap"), ("noop", "over_thread_cap")]
    (_, launch, _), = [s for s in seen if s[1] is not None]
    assert launch["dim"] == [4] and [a["kind"] for a in launch["args"]] == ["array", "array", "value"]
    assert launch["args"][0]["out"] is None  # x is only read
    assert list(base64.b64decode(launch["args"][1]["out"])) == list(bytes(y.numpy().tobytes()))
    assert hook.replay(mod.add, launch)[1] == launch["args"][1]["out"]


BLOCKS = '''
import warp as wp

@wp.kernel
def scaled(x: wp.array(dtype=int)):
    i = wp.tid()
    x[i] = i * 10000 + wp.block_dim()
'''

def test_a_launch_inside_a_cpu_graph_capture_is_not_recorded(tmp_path):
    """Inside wp.ScopedCapture on the CPU (APIC) a launch goes into a graph and does not run: the
    full harvest's re-validation saw such launches of test_apic, test_graph and
    test_array_subclass record bytes that differ run to run (launch_mismatch). Each is counted as
    graph_capture; the same launch outside the capture is recorded and replays."""
    import warp as wp

    path = tmp_path / "kernels_for_capture.py"
    path.write_text(KERNELS)
    mod = warp_adapter.import_source(KERNELS, str(path), "kernels_for_capture")
    x = wp.array([1.0, 2.0, 3.0, 4.0], dtype=float, device="cpu")
    y = wp.zeros(4, dtype=float, device="cpu")
    seen = []
    wp.load_module(mod.add.module, device="cpu")
    with hook.recording(lambda k, launch, reason: seen.append((launch, reason))):
        with wp.ScopedCapture(device="cpu", force_module_load=False) as capture:
            assert wp.get_device("cpu").is_capturing
            wp.launch(mod.add, dim=4, inputs=[x, y, wp.vec3(1.0, 2.0, 3.0)], device="cpu")
        wp.capture_launch(capture.graph)
        wp.launch(mod.add, dim=4, inputs=[x, y, wp.vec3(1.0, 2.0, 3.0)], device="cpu")
    assert [r for _, r in seen] == ["graph_capture", None]
    launch = seen[1][0]
    assert launch["args"][1]["in"] == base64.b64encode(y.numpy().tobytes()).decode()  # the graph ran: x + 2
    assert launch["args"][1]["out"] is None  # the second launch wrote the same values again
    assert hook.replay(mod.add, launch)[1] == launch["args"][1]["in"]


def test_a_launch_with_cpu_blocks_replays_with_the_block_size_it_ran_with(tmp_path):
    """A test that turns `wp.config.enable_cpu_blocks` on runs blocks of 4 (wp.block_dim() is 4):
    the launch records the block size Warp resolved, 4, where the same call with the setting off
    records 1; both replay byte for byte through //harvest's lowering (whose modules carry no hash,
    where a replay once loaded the binary compiled for blocks of 1 and differed)."""
    import warp as wp

    path = tmp_path / "kernels_blocks.py"
    path.write_text(BLOCKS)
    mod = warp_adapter.import_source(BLOCKS, str(path), "kernels_blocks")
    seen = []
    saved = wp.config.enable_cpu_blocks
    try:
        with hook.recording(lambda k, launch, reason: seen.append(launch)):
            for on in (True, False):
                wp.config.enable_cpu_blocks = on
                wp.launch(mod.scaled, dim=8, inputs=[wp.zeros(8, dtype=int, device="cpu")], device="cpu", block_dim=4)
    finally:
        wp.config.enable_cpu_blocks = saved
    wide, narrow = seen
    assert (wide["block_dim"], narrow["block_dim"]) == (4, 1)
    got = [int.from_bytes(base64.b64decode(w["args"][0]["out"])[4 * i:4 * i + 4], "little") for w in seen for i in (0, 3)]
    assert got == [4, 30004, 1, 30001]
    rec = {"provenance": {"path": "kernels_blocks.py"}, "name": "scaled", "source": BLOCKS}
    assert _lower_with(rec, wide) == {"status": "passed"} and _lower_with(rec, narrow) == {"status": "passed"}
    assert _lower_with(rec, {**wide, "block_dim": 1})["reason"] == "outputs_differ"



def test_an_array_made_without_data_starts_zeroed_while_the_wheel_s_tests_run():
    """`wp.array(shape=...)` holds what the heap held (the full re-validation saw
    test_array_subclass's `make_array(cls, shape=2)` record bytes that differ run to run). Inside
    `zeroed_cpu_memory` every CPU allocation starts zeroed, whatever was freed before it."""
    import numpy as np
    import warp as wp

    def reused():
        a = wp.array(np.full(4096, 7.0, dtype=np.float32), device="cpu")
        del a
        return wp.array(shape=4096, dtype=float, device="cpu").numpy()

    with hook.zeroed_cpu_memory():
        assert all(not reused().any() for _ in range(3))
        assert not wp.empty(100, dtype=wp.vec3, device="cpu").numpy().any()


BF16 = '''
import warp as wp

vec3bf = wp.types.vector(3, wp.bfloat16)

@wp.kernel
def bf16_param_kernel(x: wp.bfloat16, v: vec3bf, output: wp.array(dtype=wp.bfloat16)):
    output[0] = x
    output[1] = v[0] + v[2]
'''


def test_a_bfloat16_value_argument_is_stored_as_the_number_it_was_and_replays():
    """test_bf16's `bf16_param_kernel` got x=3.14: the launch stored the bits of 3 (numpy casts to
    bfloat16's uint16 storage) and its replay wrote 3.0 where the test's run wrote 3.140625
    (outputs_differ in the full harvest). A scalar, a Warp vector and a tuple for a vector."""
    import warp as wp

    path = os.path.join(tempfile.mkdtemp(), "kernels_bf16.py")
    open(path, "w").write(BF16)
    mod = warp_adapter.import_source(BF16, path, "kernels_bf16")
    wp.init()  # a bfloat16 vector is built with the native library
    seen = []
    with hook.recording(lambda k, launch, reason: seen.append((launch, reason))):
        for v in (mod.vec3bf(1.5, 0.0, 2.25), (1.5, 0.0, 2.25)):
            out = wp.zeros(2, dtype=wp.bfloat16, device="cpu")
            wp.launch(mod.bf16_param_kernel, dim=1, inputs=[3.14, v, out], device="cpu")
            assert out.numpy().view("uint16").tolist() == [0x4049, 0x4070]  # 3.140625 and 3.75
    for launch, reason in seen:
        assert reason is None
        assert base64.b64decode(launch["args"][0]["bytes"]) == (0x4049).to_bytes(2, "little")
        assert base64.b64decode(launch["args"][1]["bytes"]) == b"".join(
            b.to_bytes(2, "little") for b in (0x3FC0, 0, 0x4010))
        assert hook.replay(mod.bf16_param_kernel, launch)[2] == launch["args"][2]["out"]



def _vec3(*xs) -> str:
    return base64.b64encode(b"".join(struct.pack("<f", x) for x in xs)).decode()


def test_a_kernel_whose_operators_the_module_overloads_is_cut_with_them_and_replays():
    """aux_test_array_slot_operators defines `@wp.func add` (it subtracts) and `sub` (it
    multiplies): Warp's codegen calls them for `+=` and `-=`. The cut lacked them, and the launch
    the wheel's test made, (3, 3, 3) += 2 giving (1, 1, 6), replayed as (5, 5, 1): outputs_differ
    in the full harvest. Now the cut holds them and the launch replays byte for byte; a kernel of
    the wheel with `+` and no such definition in its module gets none."""
    from harvest import discover as disc
    from harvest.standalone import extract

    kernels, _ = disc.discover()
    (k,) = [k for k in kernels if k.name == "overloaded_slot_augassign"]
    e = extract(k)
    assert e.added == ("import:import warp as wp", "func:add", "func:sub")
    rec = {"provenance": {"path": k.file.path}, "name": k.name, "source": e.source}
    launch = {"dim": [1], "block_dim": 1, "args": [
        {"kind": "array", "name": "values", "dtype": "vec3f", "shape": [1], "in": _vec3(3, 3, 3), "out": _vec3(1, 1, 6)},
        {"kind": "value", "name": "rhs", "bytes": base64.b64encode(struct.pack("<f", 2.0)).decode()}]}
    assert _lower_with(rec, launch) == {"status": "passed"}
    (wave,) = [k for k in kernels if k.name == "wave_solve"]
    assert not any(a in ("func:add", "func:sub", "func:mul") for a in extract(wave).added)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
