"""A downloaded dataset is untrusted: every attack below is a real record (a coherent forgery
where the attack allows: spec, source, id, name, args, dim and inputs made consistent, shards
re-signed), and each is sent through every entry point: //validator (revalidate), //tools:release
(the gate) and //tools:verify. Each hostile payload would create a marker file if any of its
text ran; the marker must never appear, each attack must be rejected with its reason, and a
refused release must leave nothing behind.

The attacks are the registry's (validator/fault_kinds.py): each hostile record of
HOSTILE_RECORDS is built here and tried through exactly the entry points it lists, each file
attack of this suite by the test marked as trying it; a registered kind without its builder or
its test fails `test_every_registered_attack_is_built_and_tried`."""

import copy
import hashlib
import json
import os
import shutil
import sys

import pytest

import pipeline
from generator import records as fields
from generator.inputs import make_inputs
from generator.render import render_source
from generator.spec import KernelSpec
from tools import release, verify
from tools import release_format as fmt
from tools.testing import resign_shard
from validator import fault_kinds, revalidate
from validator.fault_kinds import EntryPoint, Suite, tries

TMP = os.environ.get("TEST_TMPDIR", "/tmp")
MARKER = os.path.join(TMP, "untrusted_marker")
OPEN = f"open({MARKER!r}, 'w')"


@pytest.fixture(scope="module")
def clean():
    out = os.path.join(TMP, "untrusted_clean")
    shutil.rmtree(out, ignore_errors=True)
    pipeline.run(pipeline.RunConfig("cpu", 6, 21, out, ["arith", "structs"], workers=1, quiet=True))
    with open(os.path.join(out, "shard-00000.jsonl")) as f:
        return out, [json.loads(line) for line in f]


def _line(rec) -> bytes:
    return json.dumps(rec, sort_keys=True).encode()


def _cohere(rec: dict) -> dict:
    """Recompute every field derived from the (possibly crafted) spec and source."""
    spec = KernelSpec.from_json(rec["spec"])
    rec["kernel_name"], rec["dim"] = spec.name, list(spec.dim)
    rec["args"] = [fields.arg_json(a) for a in spec.args]
    rec["id"] = fields.record_id(rec["source"], spec.name)
    return rec


def _source_edit(rec, old, new):
    r = copy.deepcopy(rec)
    assert old in r["source"]
    r["source"] = r["source"].replace(old, new, 1)
    return _line(_cohere(r))


def _spec_edit(rec, edit, inputs=True):
    """A crafted spec, its rendering as the source, and every derived field recomputed."""
    r = copy.deepcopy(rec)
    edit(r["spec"])
    spec = KernelSpec.from_json(r["spec"])
    r["source"] = render_source(spec)
    if inputs:
        r["io"]["inputs"] = fields.inputs_json(spec, make_inputs(spec))
    return _line(_cohere(r))


def _kernel_def(rec) -> str:
    return next(line for line in rec["source"].splitlines() if line.startswith("def "))


def _attack_lines(recs) -> dict[str, bytes]:
    """name -> the shard line of every hostile record (fault_kinds.HOSTILE_RECORDS, its order)."""
    a = recs[0]  # an arith kernel
    kdef = _kernel_def(a)
    first_ann = "wp.array(dtype=wp.float32)"
    return {
        # Python evaluates defaults and annotations at import
        "default_argument": _source_edit(a, kdef, kdef.replace("):", f", zz=({OPEN}, 0)[1]):")),
        "annotation_call": _source_edit(a, first_ann, OPEN),
        "wp_call_in_annotation": _source_edit(a, first_ann, f"wp.array(dtype=wp.float32, device={OPEN})"),
        # a top-level function named like a builtin makes calls to that name look like own helpers
        "builtin_shadow": _source_edit(a, kdef, kdef.replace("):", f", zz=open({MARKER!r}, 'w')):") + "\n    pass\n\n"
                                       "\n@wp.func\ndef open(p: wp.float32, q: wp.float32) -> wp.float32:\n    return p\n\n"
                                       "\n@wp.kernel\n" + kdef.replace("def ", "def shadowed_")),
        # evaluated by Python during Warp's codegen
        "wp_static": _source_edit(a, "wp.tid()", f"wp.tid()\n    zz = wp.static({OPEN})"),
        "aot_module_dir": _source_edit(a, "wp.tid()", f"wp.tid()\n    wp.compile_aot_module(wp.get_module('m'), "
                                                       f"module_dir={MARKER!r})"),
        # the renderer prints spec strings verbatim: a crafted spec renders hostile Python
        "spec_dtype": _spec_edit(a, lambda s: s["args"][0].update(dtype=f"float32, device={OPEN}"), inputs=False),
        "spec_name": _spec_edit(a, lambda s: s.update(name=f"k(a: wp.int32):\n    pass\n\n{OPEN}\n\n\ndef k2"),
                                inputs=False),
        "spec_body_static": _spec_edit(a, lambda s: s["body"].insert(0, ["let", "zz", ["call", "static", [["v", OPEN]]]])),
        # resource exhaustion
        "huge_shape": _spec_edit(a, lambda s: s["args"][0].update(shape=[1 << 40]), inputs=False),
        "huge_dim": _spec_edit(a, lambda s: s.update(dim=[1 << 40]), inputs=False),
        "deep_spec_parseable": _line({**a, "spec": {**a["spec"], "body": json.loads("[" * 300 + "]" * 300)}}),
        "deep_spec_100k": json.dumps({**a, "spec": None}).replace('"spec": null', '"spec": ' + "[" * 100000 + "]" * 100000).encode(),
        # broken bytes
        "malformed_utf8": _line(a).replace(b'"family"', b'"fam\xff\xfeily"', 1),
        "torn_line": _line(a)[:-40],
        # coherent forgeries only re-execution can catch
        "outputs_only": _outputs_only(a),
        "gradient_only": _gradient_only(next(r for r in recs if r["grad"])),
    }


def attacks(recs, entry: EntryPoint) -> dict[str, tuple[bytes, frozenset[str]]]:
    """name -> (the shard line, the reason keys it may be rejected with) of every hostile record
    the registry tries through `entry`."""
    lines = _attack_lines(recs)
    return {k.name: (lines[k.name], k.reasons) for k in fault_kinds.kinds(Suite.HOSTILE_RECORDS, entry, line=True)}


def _bumped(rec, where) -> bytes:
    """A coherent forgery: the first element of the first tensor of `where(rec)` plus one."""
    r = copy.deepcopy(rec)
    flat = next(iter(where(r).values()))["data"]
    while isinstance(flat[0], list):
        flat = flat[0]
    flat[0] = flat[0] + 1.0
    return _line(r)


def _outputs_only(rec) -> bytes:
    return _bumped(rec, lambda r: r["io"]["outputs"])


def _gradient_only(rec) -> bytes:
    return _bumped(rec, lambda r: r["grad"]["g"])


def _shard_dir(clean_dir, name, lines: list[bytes]) -> str:
    """A copy of the clean run whose shard 0 holds `lines`, re-signed in its manifest."""
    d = os.path.join(TMP, f"untrusted_{name}")
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(clean_dir, d)
    data = b"".join(line + b"\n" for line in lines)
    with open(os.path.join(d, "shard-00000.jsonl"), "wb") as f:
        f.write(data)
    with open(os.path.join(d, "manifest.json")) as f:
        m = json.load(f)
    m["shards"][0].update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest(), records=len(lines))
    with open(os.path.join(d, "manifest.json"), "w") as f:
        json.dump(m, f)
    return d


def test_every_registered_attack_is_built_and_tried(clean):
    """The registry is the list: every hostile record it holds is built here (and the entry-point
    tests below try each through the entry points it lists), every file attack has its test."""
    assert list(_attack_lines(clean[1])) == [k.name for k in fault_kinds.kinds(Suite.HOSTILE_RECORDS, line=True)]
    assert fault_kinds.untried(globals(), Suite.HOSTILE_RECORDS) == []
    assert all(EntryPoint.VALIDATOR in k.entry_points for k in fault_kinds.kinds(Suite.HOSTILE_RECORDS, line=True))


@tries("manifest_count_string", "manifest_key_removed")
def test_validator_refuses_a_run_manifest_that_breaks_its_schema(clean, capsys):
    clean_dir, _ = clean
    for name, edit, words in (
            ("manifest_count_string", lambda m: m["counts"].update(passed=str(m["counts"]["passed"])),
             "at counts/passed (schema path "),
            ("manifest_key_removed", lambda m: m.pop("gradient_by_family"), "'gradient_by_family' is a required property")):
        assert fault_kinds.kind(name).reasons == {fault_kinds.REFUSED}
        d = os.path.join(TMP, f"untrusted_{name}")
        shutil.rmtree(d, ignore_errors=True)
        shutil.copytree(clean_dir, d)
        path = os.path.join(d, "manifest.json")
        with open(path) as f:
            m = json.load(f)
        edit(m)
        with open(path, "w") as f:
            json.dump(m, f)
        assert revalidate.main([d]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {path}: breaks schemas/run_manifest.schema.json at ") and err.count("\n") == 1, err
        assert words in err, err


def _no_marker():
    assert not os.path.exists(MARKER), "a record's text ran"


def test_validator_rejects_every_attack_without_running_it(clean):
    clean_dir, recs = clean
    atk = attacks(recs, EntryPoint.VALIDATOR)  # outputs_only and gradient_only: only re-execution can catch them
    controls = [_line(r) for r in recs[1:3]]
    d = _shard_dir(clean_dir, "validator", [line for line, _ in atk.values()] + controls)
    report = revalidate.revalidate(d)
    _no_marker()
    by_line = {int(f["where"].split(":")[1]): f["reason"] for f in report["failures"]}
    for n, (name, (_, keys)) in enumerate(atk.items(), 1):
        print(f"  {name:<22} {by_line.get(n, 'NOT REJECTED')[:110]}")
        assert n in by_line, f"{name}: not rejected"
        assert by_line[n].split(":", 1)[0] in keys, f"{name}: rejected for {by_line[n]!r}, expected {keys}"
    assert report["failed"] == len(atk) and report["passed"] == len(controls), report["failures"]
    print(f"\n{len(atk)} attack kinds through //validator: all rejected; marker absent")
    assert len(atk) >= 17


def test_release_gate_refuses_every_attack_and_leaves_nothing(clean, capsys):
    clean_dir, recs = clean
    tried = 0
    for name, (line, keys) in attacks(recs, EntryPoint.RELEASE).items():
        d = _shard_dir(clean_dir, f"gate_{name}", [_line(recs[1]), line])
        out = os.path.join(TMP, f"untrusted_dist_{name}")
        shutil.rmtree(out, ignore_errors=True)
        rc = release.main(["--in", d, "--out", out, "--version", "1.0.0"])
        err = capsys.readouterr().err
        assert rc != 0 and err.startswith("error: ") and err.count("\n") == 1, (name, err)
        assert any(f"{k}" in err for k in keys | {"corrupt"}), (name, keys, err)
        assert not os.path.exists(out), f"{name}: a refused release left {out}"
        assert not [n for n in os.listdir(TMP) if n.startswith(".release-")], name
        _no_marker()
        tried += 1
    print(f"\n{tried} attack kinds through //tools:release: all refused, nothing left behind")


def _forge_row(dist: str, rec_line: bytes, name: str) -> str:
    """A copy of the release whose first row is replaced by the attack record, re-signed."""
    import pyarrow.parquet as pq

    d = os.path.join(TMP, f"untrusted_verify_{name}")
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(dist, d)
    with open(os.path.join(d, "manifest.json")) as f:
        m = json.load(f)
    rel = next(f["path"] for f in m["files"] if f["path"].endswith(".parquet"))
    rows = pq.read_table(os.path.join(d, rel)).to_pylist()
    try:
        rec = json.loads(rec_line)
        try:
            skel = fmt.skeleton_hash(rec["source"])  # ast.parse only: nothing runs
        except SyntaxError:
            skel = rows[0]["skeleton_hash"]
        row = fmt.to_row(rec, rows[0]["split"], skel, m["toolchain"]["ptx_archs"])
    except (ValueError, RecursionError, KeyError, TypeError):
        return ""
    rows[0] = row
    resign_shard(d, rel, rows, m)
    return d


@tries("torn_parquet")
def test_verify_rejects_every_attack_in_a_re_signed_release(clean):
    clean_dir, recs = clean
    dist = os.path.join(TMP, "untrusted_dist_clean")
    shutil.rmtree(dist, ignore_errors=True)
    assert release.main(["--in", clean_dir, "--out", dist, "--version", "1.0.0"]) == 0
    assert verify.verify(dist) == []
    tried = 0
    through_verify = attacks(recs, EntryPoint.VERIFY)
    for name, (line, _) in attacks(recs, EntryPoint.RELEASE).items():
        if name not in through_verify:  # not a record (torn, not UTF-8, too deep to parse): a release holds Parquet rows
            assert _forge_row(dist, line, name) == "", f"{name}: a release row after all: register it for //tools:verify"
    for name, (line, keys) in through_verify.items():
        d = _forge_row(dist, line, name)
        assert d, f"{name}: registered as tried through //tools:verify, but it is no release row"
        problems = verify.verify(d)
        _no_marker()
        assert problems, f"{name}: verify passed a forged row"
        assert any(f": {k}:" in p or "JSON column" in p for p in problems for k in keys), (name, keys, problems)
        tried += 1
    # the byte-level attacks, at the level of a release: a torn Parquet file and a deep JSON column
    d = os.path.join(TMP, "untrusted_verify_torn")
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(dist, d)
    with open(os.path.join(d, "manifest.json")) as f:
        rel = next(f["path"] for f in json.load(f)["files"] if f["path"].endswith(".parquet"))
    with open(os.path.join(d, rel), "r+b") as f:
        f.truncate(os.path.getsize(os.path.join(d, rel)) // 2)
    assert any("not a readable Parquet file" in p for p in verify.verify(d))
    tried += 1
    print(f"\n{tried} attack kinds through //tools:verify: all rejected; marker absent")
    assert tried >= 12


def _depth_and_nodes(value) -> tuple[int, int]:
    todo, deepest, nodes = [(value, 1)], 0, 0
    while todo:
        v, d = todo.pop()
        deepest, nodes = max(deepest, d), nodes + 1
        todo.extend((x, d + 1) for x in (v.values() if isinstance(v, dict) else v if isinstance(v, list) else ()))
    return deepest, nodes


def test_the_bounds_leave_generated_records_far_inside(clean):
    from generator.families import FAMILIES, build_spec
    from validator.verdicts import MAX_DEPTH, MAX_NODES

    deepest = max(_depth_and_nodes(build_spec(f, s).to_json())[0] for f in FAMILIES for s in range(40))
    assert deepest + 2 <= MAX_DEPTH // 2, deepest  # a record holds its spec two levels down
    assert max(_depth_and_nodes(r)[1] for r in clean[1]) * 20 < MAX_NODES


def test_only_renderings_of_specs_are_ever_imported():
    """How a reader can check that no record-controlled text is imported: Python source is
    imported in one place (`warp_adapter.import_source`), reached from `load_batch` (and the
    benchmark's naive baseline, which renders its own specs), and every `load_batch` call outside
    tests passes `{s.name: render_source(s) ...}` (but compile_ptx's own, of a text an earlier
    call was given); `exec`/`eval`/`exec_module` appear nowhere else."""
    import ast

    root = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    imports_source, load_batch_args, dynamic = set(), [], set()
    for d, dirs, names in os.walk(root):
        dirs[:] = [x for x in dirs if not x.startswith((".", "bazel-"))]
        for n in names:
            if not n.endswith(".py") or n.endswith("_test.py"):
                continue
            rel = os.path.relpath(os.path.join(d, n), root)
            with open(os.path.join(d, n), encoding="utf-8") as f:
                tree = ast.parse(f.read())
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                if name == "import_source":
                    imports_source.add(rel)
                elif name == "load_batch":
                    load_batch_args.append((rel, ast.unparse(node.args[0])))
                elif name in ("exec", "eval", "exec_module", "spec_from_file_location", "__import__"):
                    dynamic.add((rel, name))
    # eval/child.py imports a model's prediction, only inside its bubblewrap sandbox after the
    # safety check; harvest/lower.py imports code cut from the installed warp-lang wheel itself
    assert imports_source == {"extractor/warp_adapter.py", "extractor/naive_baseline.py", "eval/child.py",
                              "harvest/lower.py"}, imports_source
    # but compile_ptx's own, of a text an earlier call was given (extractor/warp_adapter_test pins it)
    load_batch_args = [x for x in load_batch_args if x != ("extractor/warp_adapter.py", "{name: source}")]
    assert load_batch_args and all(a.startswith("{") and "render_source(" in a for _, a in load_batch_args), load_batch_args
    assert {r for r, _ in dynamic} <= {"extractor/warp_adapter.py", "generator/strategies.py"}, dynamic
    assert {n for r, n in dynamic if r == "generator/strategies.py"} == {"__import__"}  # hypothesis settings only


def test_the_sandbox_turns_a_kernel_that_hangs_or_explodes_into_one_rejection_each(clean):
    """Real faults, in a real child: a child whose address space is capped below what Warp needs
    (every kernel is rejected, the run goes on), and a batch that outlives its wall-clock limit or
    its CPU budget (the parent kills the child, bisects the batch down to single kernels, each
    rejected as `sandbox`);
    a sandbox with the default limits then validates the same kernels."""
    from generator.families import build_spec
    from validator import sandbox

    specs = [build_spec("arith", s) for s in (1, 2)]
    for box, want in ((sandbox.Sandbox(False, address_space=256 << 20), None),
                      (sandbox.Sandbox(False, timeout_s=0.05), "sandbox: no result within"),
                      (sandbox.Sandbox(False, cpu_s=0.5), "sandbox: more than 0.5 s of CPU time")):
        try:
            results = box.check_batch(specs, ["sm_90"])
        finally:
            box.close()
        assert len(results) == 2 and all(r.error for r in results), results
        if want:
            assert all(r.error.reason_code == "sandbox" and r.error.reason.startswith(want) for r in results), results
    box = sandbox.Sandbox(False)
    try:
        results = box.check_batch(specs, ["sm_90"])
    finally:
        box.close()
    assert all(r.verdicts["execute_cpu"].to_json() == {"status": "passed"} for r in results), results


def test_a_killed_sandbox_child_leaves_no_file_outside_the_run_directory(monkeypatch):
    """Bounded disk for //validator: its sandbox child is killed, not exited, after a timeout or
    a CPU budget, so nothing it writes may depend on its exit handlers. NVRTC's precompiled
    header (about 80 MB per process, removed by NVRTC at exit only) and the child's Warp cache go
    to the run's directory, which //validator removes; $TMPDIR keeps only that directory."""
    from generator.families import build_spec
    from validator import sandbox

    tmp = os.path.join(TMP, "sandbox_tmpdir")
    shutil.rmtree(tmp, ignore_errors=True)
    run_dir = os.path.join(tmp, "run")
    os.makedirs(run_dir)
    monkeypatch.setenv("TMPDIR", tmp)  # the child inherits it
    box = sandbox.Sandbox(False, run_dir)
    try:
        results = box.check_batch([build_spec("arith", 1)], ["sm_90"])
        assert results[0].verdicts["compile_cuda"].to_json() == {"status": "passed"}, results
        assert os.listdir(run_dir)  # the child's files are there while it lives
    finally:
        box._kill()  # SIGKILL, as after a timeout: no exit handler runs
    assert os.listdir(tmp) == ["run"], os.listdir(tmp)

if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-s", "-p", "no:cacheprovider"]))
