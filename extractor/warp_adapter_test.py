"""The adapter over Warp's internals: every `warp._src` symbol it uses still exists, the stored
C++/CUDA is verbatim what the compilers compiled (cut per kernel, clean, complete, the same alone
and in a batch), PTX is per kernel and per arch and reproducible, the toolchain fingerprint is
what ran, and a reused pid cannot load another run's binary.
"""

import glob
import importlib
import os
import random
import re
import sys
import tempfile

import pytest

from extractor import warp_adapter
from generator.families import FAMILIES, build_spec
from generator.render import render_source


def test_every_warp_internal_the_adapter_uses_still_exists():
    warp_adapter.init_warp()
    for module, symbol in warp_adapter.INTERNAL_SYMBOLS:
        obj = importlib.import_module(module)
        for part in symbol.split("."):
            if part == "execs":  # an instance attribute: look on a real module
                obj = warp_adapter.wp.get_module("warp_ir_contract_probe")
            assert hasattr(obj, part), f"Warp moved {module}.{symbol}: update extractor/warp_adapter.py"
            obj = getattr(obj, part)


def _compiled(specs, d, archs=("sm_90",)):
    module, kernels = warp_adapter.load_batch({s.name: render_source(s) for s in specs}, d)
    ptx, cu = warp_adapter.compile_ptx(module, kernels, d, archs)
    cpp = warp_adapter.compile_cpu(module)
    return module, kernels, ptx, cpp, cu


def _ir(specs):
    with tempfile.TemporaryDirectory() as d:
        module, kernels, _, cpp, cu = _compiled(specs, d)
        return warp_adapter.cut_ir(kernels, cpp, cu, d)


def test_stored_code_is_verbatim_what_the_compilers_compiled():
    # every family x 2 seeds x 2 backends x forward/backward: every paragraph of a stored text is, after the
    # documented cleaning, a verbatim substring of the module source Warp wrote for the compile
    # that ran (the CPU .cpp in the kernel cache, the .cu NVRTC compiled for the PTX), in order.
    specs = [build_spec(f, s) for f in sorted(FAMILIES) for s in range(2)]
    with tempfile.TemporaryDirectory() as d:
        module, kernels, _, cpp, cu = _compiled(specs, d)
        ir = warp_adapter.cut_ir(kernels, cpp, cu, d)
        prefix = d.rstrip("/") + "/"
        compiled = {t: warp_adapter.clean(text, prefix) for t, text in warp_adapter.warp_written_sources(module, d).items()}
    checked = 0
    for spec in specs:
        for target, text in compiled.items():
            for part in ("forward", "backward"):
                stored = ir[spec.name][target][part]
                missing = warp_adapter.missing_from(stored, text)
                assert missing is None, f"{spec.name} {target} {part}: not in the compiled source:\n{missing[:400]}"
                checked += 1
    assert checked == len(FAMILIES) * 2 * 2 * 2
    # what tells the two compiles apart is in the stored text: the CPU launch's contiguous-stride
    # block (block_dim 1) and the CUDA grid-stride loop
    assert sum("wp_contiguous_args" in ir[s.name]["cpp"]["forward"] for s in specs) >= len(specs) // 2
    assert all("_idx += static_cast<size_t>(blockDim.x)" in ir[s.name]["cuda"]["forward"] for s in specs)


def test_codegen_only_cuts_equal_what_the_compilers_are_given():
    # the --no-validate path runs no compiler; its code must still be what a compile is given
    specs = [build_spec(f, 7) for f in sorted(FAMILIES)]
    with tempfile.TemporaryDirectory() as d:
        _, kernels, _, cpp, cu = _compiled(specs, d)
        compiled = warp_adapter.cut_ir(kernels, cpp, cu, d)
    with tempfile.TemporaryDirectory() as d:
        module, kernels = warp_adapter.load_batch({s.name: render_source(s) for s in specs}, d)
        cpp2, cu2 = warp_adapter.codegen_sources(module, kernels)
        generated = warp_adapter.cut_ir(kernels, cpp2, cu2, d)
    assert cpp.options == cpp2.options and cu.options == cu2.options
    assert cpp2.compiler is None and cu2.compiler is None
    assert generated == compiled


def test_the_cut_s_word_matcher_matches_what_its_regular_expressions_match():
    # `_Word` stands in for `_words(pattern)` on the cut's fast path; every shape, on headers
    # built to sit on each edge of the expression (word boundaries, space, what follows "(")
    heads = ["void foo(\n", "void foo (\n  int a", "void foo(x", "void foo( x", "void foo()", "void foo", "foo(",
             "xfoo(", "foox(", "foo_(", "a.foo(", "foo\t\n(", "foo(_", "foo(1", "foo (\t", "foo(\u00e9",
             "struct wp_args_k {", "struct  wp_args_k", "struct\nwp_args_k", "structwp_args_k", "mystruct wp_args_k",
             "_struct wp_args_k", "struct wp_args_kk", "struct wp_args_k_", "x struct wp_args_k", "struct x wp_args_k",
             "wp_args_k struct wp_args_k", "struct\u00a0wp_args_k", "// struct wp_args_k", "", "struct", "k", "foo foo(",
             "static CUDA_CALLABLE void adj_foo(\n    wp::float32 var_a,", "foo\u2003(", "struct\u2003wp_args_k",
             "foofoo(", "xfoo foo(", "foo(foo(", "xstruct struct wp_args_k", "struct wp_args_kstruct wp_args_k"]
    # and headers drawn at random from the pieces those edges are made of
    rng = random.Random(17)
    pieces = ["foo", "struct", "wp_args_k", "k", "adj_foo", " ", "\t", "\n", "(", ")", "x", "_", "1", "\u00a0",
              "\u00e9", "*", ","]
    heads += ["".join(rng.choice(pieces) for _ in range(rng.randrange(1, 9))) for _ in range(3000)]
    for word in ("foo", "wp_args_k", "k", "adj_foo"):
        for shape, regex in (("", re.escape(word)), ("call", re.escape(word) + r"\s*\("),
                             ("struct", rf"struct\s+{re.escape(word)}")):
            fast, slow = warp_adapter._Word(word, shape), warp_adapter._words(regex)
            assert fast.pattern == regex
            for head in heads:
                assert fast.search(head) == bool(slow.search(head)), (word, shape, head)


def test_the_cut_is_the_same_with_and_without_the_word_index():
    specs = [build_spec(f, s) for f in sorted(FAMILIES) for s in range(2)]
    with tempfile.TemporaryDirectory() as d:
        _, kernels, _, cpp, cu = _compiled(specs, d)
        for compiled in (cpp, cu):
            items = [(i, warp_adapter._header(i)) for i in warp_adapter.top_level_items(compiled.source)]
            index = warp_adapter._word_index(items)
            for kernel in kernels.values():
                names = warp_adapter._kernel_names(kernel)
                fast = warp_adapter._cut_kernel(items, names, compiled.backend, index)
                assert fast == warp_adapter._cut_kernel(items, names, compiled.backend, None)
                assert fast["forward"] and fast["backward"]


def test_ir_of_a_kernel_is_the_same_alone_and_in_a_batch():
    specs = [build_spec(f, s) for f in sorted(FAMILIES) for s in range(3)]
    assert any(s.helpers for s in specs)
    batch = _ir(specs)
    for spec in specs:
        alone = _ir([spec])
        assert alone[spec.name] == batch[spec.name], f"{spec.name}: IR depends on its batch"


def test_ir_is_clean_and_complete():
    spec = build_spec("helpers", 1)
    ir = _ir([spec])[spec.name]
    assert set(ir) == {"cpp", "cuda"}
    for target, fb in ir.items():
        assert set(fb) == {"forward", "backward"}
        assert "/tmp" not in fb["forward"] + fb["backward"], "absolute paths leak into the IR"
        assert "#include" not in fb["forward"], "module header leaked into a kernel's IR"
        for h in spec.helpers:  # the chain h_last -> ... -> h0 is all called
            assert f"{h.name}_0(" in fb["forward"], f"{h.name}: the kernel's helpers belong to its IR"
            assert f"adj_{h.name}_0(" in fb["backward"]
    assert f"{spec.name}_cpu_kernel_forward(" in ir["cpp"]["forward"]
    assert f"{spec.name}_cpu_kernel_backward(" in ir["cpp"]["backward"]
    assert f'extern "C" __global__ void {spec.name}_cuda_kernel_forward(' in ir["cuda"]["forward"]
    assert f"{spec.name}_cuda_kernel_backward(" in ir["cuda"]["backward"]
    assert "_cuda_kernel_backward" not in ir["cuda"]["forward"]


def test_a_struct_argument_belongs_to_the_kernels_ir():
    spec = build_spec("structs", 2)
    ir = _ir([spec])[spec.name]
    struct = spec.args[0].dtype
    for target in ("cpp", "cuda"):
        assert f"struct {struct}" in ir[target]["forward"], f"{target}: struct definition missing"


def test_helper_names_do_not_depend_on_what_was_loaded_before():
    spec = build_spec("helpers", 1)
    first = _ir([spec])
    second = _ir([spec])  # same helper name loaded again in this process
    assert first == second


def _ptx(specs, archs=("sm_90",)):
    with tempfile.TemporaryDirectory() as d:
        module, kernels = warp_adapter.load_batch({s.name: render_source(s) for s in specs}, d)
        return warp_adapter.compile_ptx(module, kernels, d, archs)[0]


def test_ptx_of_a_kernel_is_the_same_alone_and_in_a_batch():
    specs = [build_spec(f, s) for f in sorted(FAMILIES) for s in range(2)]
    batch = _ptx(specs)
    # the last kernel sits deep in the batch module, so NVVM's raw label numbers differ
    for spec in (specs[-1], specs[len(specs) // 2]):
        alone = _ptx([spec])
        assert alone[spec.name] == batch[spec.name], f"{spec.name}: PTX depends on its batch"
    assert any("$L__BB0_" in batch[s.name]["sm_90"]["forward"] for s in specs), "no branches: test is vacuous"


def _float64_pow_kernels(n):
    return [s for s in (build_spec("dtypes", k) for k in range(200)) if "float64" in render_source(s)
            and "wp.pow(" in render_source(s)][:n]


def test_ptx_with_calls_is_the_same_alone_and_after_other_callers():
    # float64 pow/asin become non-inlined libdevice calls, which NVVM numbers module-wide, and
    # specializes module-wide: __internal_accurate_pow loses its exponent parameter when every
    # caller passes one constant (alone), not beside a kernel with another exponent (the batch)
    calls = _float64_pow_kernels(3)
    assert len(calls) == 3
    with tempfile.TemporaryDirectory() as d:
        module, kernels = warp_adapter.load_batch({s.name: render_source(s) for s in calls}, d)
        batch = warp_adapter.compile_ptx(module, kernels, d)[0]
        with open(glob.glob(os.path.join(d, "aot_sm_90", "*.sm90.ptx"))[0]) as f:
            funcs = warp_adapter._ptx_functions(f.read())
        raw = {n: warp_adapter._ptx_of(funcs, f"{k.get_mangled_name()}_cuda_kernel_forward") for n, k in kernels.items()}
        warp_adapter.unload(module)
    assert all("// callseq" in batch[s.name]["sm_90"]["forward"] for s in calls), "no calls: test is vacuous"
    alone = {spec.name: _ptx([spec])[spec.name] for spec in calls}
    # not vacuous: cut from the batch module's own PTX, some kernel's text is not its text alone
    assert any(raw[n] != alone[n]["sm_90"]["forward"] for n in alone), "the batch changed no PTX: test is vacuous"
    for spec in calls:
        assert batch[spec.name] == alone[spec.name], f"{spec.name}: PTX depends on its batch"


def test_only_a_kernel_that_shares_a_called_function_is_compiled_again_alone(monkeypatch):
    """The second compile costs an NVRTC run: a kernel that calls no function another kernel
    calls keeps the batch's PTX (and equals its PTX alone all the same)."""
    pow_kernel = _float64_pow_kernels(1)[0]
    plain = [build_spec("arith", 0), build_spec("branch", 1)]
    again: list = []
    alone_ptx = warp_adapter._alone_ptx
    monkeypatch.setattr(warp_adapter, "_alone_ptx", lambda module, name, *a: again.append(name) or alone_ptx(module, name, *a))
    batch = _ptx([pow_kernel] + plain)
    assert again == []  # one caller of __internal_accurate_pow: nothing shared
    batch = _ptx([pow_kernel, _float64_pow_kernels(2)[1]] + plain)
    assert sorted(again) == sorted(s.name for s in _float64_pow_kernels(2))
    for spec in plain:
        assert _ptx([spec])[spec.name] == batch[spec.name]


def test_the_second_compile_imports_only_a_text_load_batch_was_given():
    """tools/untrusted_test checks that every load_batch call passes renderings of specs, but
    this module's own: `_alone_ptx` re-imports, in a module of its own, the text an earlier
    load_batch call was given, kept in `_batch_sources` (which only load_batch fills)."""
    with open(warp_adapter.__file__, encoding="utf-8") as f:
        adapter = f.read()
    assert re.findall(r"\bload_batch\((?!sources: ).*", adapter) == ["load_batch({name: source}, sub)"]
    assert re.findall(r"_batch_sources\[[^\]]*\] *=.*", adapter) == ["_batch_sources[mod_name] = dict(sources)"]
    assert re.findall(r"\b_alone_ptx\((?!module, name: ).*", adapter) == [
        "_alone_ptx(module, name, sources[name], workdir, archs, strip_hash)"]
    assert "    sources = _batch_sources.get(module.name, {})\n" in adapter


def _entry(kind: str, name: str, calls=()) -> str:
    body = "".join(f"\tcall.uni (retval0), {c}, (param0);\n" for c in calls)
    return f"{kind} {name}(\n)\n{{\n{body}\tret;\n}}\n"


def test_a_kernel_is_batch_dependent_when_another_kernel_s_entry_reaches_what_its_forward_calls():
    text = "".join([
        _entry(".func", "leaf"), _entry(".func  (.param .b64 func_retval0)", "pow_h", ["leaf"]),
        _entry(".func", "own_h"), _entry(".func", "x_h"),
        _entry(".visible .entry", "a_cuda_kernel_forward", ["pow_h"]),   # b's backward reaches pow_h too
        _entry(".visible .entry", "a_cuda_kernel_backward"),
        _entry(".visible .entry", "b_cuda_kernel_forward"),
        _entry(".visible .entry", "b_cuda_kernel_backward", ["pow_h"]),
        _entry(".visible .entry", "c_cuda_kernel_forward", ["own_h"]),   # only its own backward
        _entry(".visible .entry", "c_cuda_kernel_backward", ["own_h"]),
        _entry(".visible .entry", "d_cuda_kernel_forward", ["x_h"]),     # an entry of no kernel given
        _entry(".visible .entry", "e_cuda_kernel_forward", ["x_h"]),
        _entry(".visible .entry", "f_cuda_kernel_forward", ["leaf"]),    # reached through pow_h by a and b
    ])
    funcs = warp_adapter._ptx_functions(text)
    assert len(funcs) == 13
    kernels = {k: k for k in "abcdf"}
    assert warp_adapter.batch_dependent(funcs, kernels) == {"a", "d", "f"}
    assert warp_adapter.batch_dependent(funcs, {"c": "c"}) == set()


def test_internal_helper_names_in_ptx_lose_the_module_file_s_name():
    """NVRTC names a non-inlined helper of internal linkage (and its local statics) after the
    module's file, which holds the worker's pid (measured: 10 of 2,485 harvested kernels' PTX
    differed between two harvests): the component goes, the rest of the name stays."""
    a = ("ld.param.f32 %f1, [_ZN54_INTERNAL_00000000_23_wp_harvest_32111_262_cu_3c4335de19scale_out_of_line_0Ef_param_0];\n"
         "mov.u32 %r34, _ZZN50_INTERNAL_00000000_19_wp_harvest_838_6_cu_50404d339reverse_0EN2wp7array_tIiEEiiE1s;\n")
    b = ("ld.param.f32 %f1, [_ZN50_INTERNAL_00000000_19_wp_harvest_617_1_cu_ccc0839919scale_out_of_line_0Ef_param_0];\n"
         "mov.u32 %r34, _ZZN50_INTERNAL_00000000_19_wp_harvest_864_6_cu_50404d339reverse_0EN2wp7array_tIiEEiiE1s;\n")
    assert warp_adapter._normalize_ptx(a) == warp_adapter._normalize_ptx(b)
    assert "_ZN9_INTERNAL19scale_out_of_line_0Ef_param_0" in warp_adapter._normalize_ptx(a)
    assert "_ZZN9_INTERNAL9reverse_0EN2wp7array_tIiEEiiE1s" in warp_adapter._normalize_ptx(a)



def test_string_constants_and_demoted_shared_variables_do_not_depend_on_the_module():
    """NVVM numbers string constants module-wide in the order it meets them, and moves a shared
    variable into the one function using it only when no other function of the module does (a
    harvested kernel alone against its batch): the kernel's PTX reads the same either way."""
    alone = ("\t.reg .b64 \t%rd<3>;\n\t// demoted variable\n\t.shared .align 4 .b8 "
             "_ZZN2wp21tile_shared_storage_t13get_smem_baseEvE9smem_base[1024];\n\n\tmov.u64 \t%rd1, $str;\n"
             "\tmov.u64 \t%rd2, $str$1;\n\tmov.u64 \t%rd3, $str;\n}\n")
    batch = ("\t.reg .b64 \t%rd<3>;\n\n\n\tmov.u64 \t%rd1, $str$7;\n\tmov.u64 \t%rd2, $str$8;\n"
             "\tmov.u64 \t%rd3, $str$7;\n}\n")
    assert warp_adapter._normalize_ptx(alone) == warp_adapter._normalize_ptx(batch)
    assert "$str$0;" in warp_adapter._normalize_ptx(batch) and "$str$1;" in warp_adapter._normalize_ptx(batch)


def test_ptx_is_per_kernel_and_per_arch():
    spec = build_spec("loop", 3)
    ptx = _ptx([spec], ("sm_80", "sm_90"))[spec.name]
    assert set(ptx) == {"sm_80", "sm_90"}
    for arch, fb in ptx.items():
        assert fb["forward"].startswith(f".visible .entry {spec.name}_cuda_kernel_forward(")
        assert set(fb) == {"forward"}
        assert ".version" not in fb["forward"] and "pnanovdb" not in fb["forward"], "module header leaked"
        assert fb["forward"].rstrip().endswith("}")


def test_ptx_of_tile_kernels_is_reproducible():
    # NVVM's tile PTX is the flakiest part of the toolchain: compile twice, alone and batched
    specs = [build_spec(f, s) for f in ("tile_matmul", "tile_reduce", "tile_scan") for s in (5, 6)]
    first, second = _ptx(specs), _ptx(specs)
    assert first == second
    for spec in specs[::2]:
        assert _ptx([spec]) == {spec.name: first[spec.name]}


def test_nvrtc_archs_include_the_default():
    assert "sm_90" in warp_adapter.nvrtc_archs()


def test_toolchain_fingerprint_is_what_ran():
    import warp as wp

    spec = build_spec("loop", 3)
    with tempfile.TemporaryDirectory() as d:
        module, kernels, _, cpp, cu = _compiled([spec], d, ("sm_80", "sm_90"))
        tc = warp_adapter.toolchain(cpp, cu, ("sm_80", "sm_90"))
    assert tc["warp_lang"] == wp.__version__
    assert tc["nvrtc"] and tc["nvrtc"][0].isdigit(), "NVRTC version missing"
    assert tc["ptx_archs"] == ["sm_80", "sm_90"]
    # per backend, from the module's resolved options and the compiler calls that ran
    assert tc["cpu"]["options"]["block_dim"] == warp_adapter.CPU_BLOCK_DIM == tc["cpu"]["compiler"]["block_dim"]
    assert tc["cuda"]["options"]["block_dim"] == module.options["block_dim"]
    assert tc["cuda"]["options"]["grid_stride"] is kernels[spec.name].grid_stride is not None
    assert tc["cuda"]["options"]["enable_mathdx_gemm"] is False and tc["cpu"]["options"]["strip_hash"] is True
    assert isinstance(tc["cpu"]["compiler"]["optimization_level"], int)
    assert isinstance(tc["cuda"]["compiler"]["optimization_level"], int)
    assert tc["cuda"]["compiler"]["fast_math"] is module.options["fast_math"]
    # changing an option changes the fingerprint: nothing in it is a literal
    with tempfile.TemporaryDirectory() as d:
        module, kernels = warp_adapter.load_batch({spec.name: render_source(spec)}, d)
        module.options["optimization_level"] = 1
        cpp1 = warp_adapter.compile_cpu(module)
    assert cpp1.compiler["optimization_level"] == 1 != tc["cpu"]["compiler"]["optimization_level"]


_STALE_CHILD = """
import os, sys, json, tempfile
import numpy as np
os.getpid = lambda: 4242  # a container reusing a pid
sys.path.insert(0, sys.argv[1])
os.environ["WARP_IR_RUN_DIR"] = sys.argv[2]
from generator.spec import KernelSpec
from generator.render import render_source
from generator.inputs import NP_DTYPES, make_inputs
from generator.oracle import run_oracle
from extractor import warp_adapter
spec = KernelSpec.from_json(json.loads(sys.argv[3]))
inputs = make_inputs(spec)
with tempfile.TemporaryDirectory() as d:
    module, kernels = warp_adapter.load_batch({spec.name: render_source(spec)}, d)
    warp_adapter.compile_cpu(module)
    values = [warp_adapter.to_device_array(inputs[a.name], a.dtype) if a.kind == "array" else NP_DTYPES[a.dtype](inputs[a.name])
              for a in spec.args]
    warp_adapter.launch(kernels[spec.name], spec.dim, values)
expected = run_oracle(spec, inputs)
ok = all(np.allclose(v.numpy(), expected[a.name], rtol=1e-3, atol=1e-4)
         for a, v in zip(spec.args, values) if a.name in expected)
print(json.dumps({"matches_oracle": bool(ok), "cache": warp_adapter.kernel_cache_dir()}))
"""


def test_a_reused_pid_cannot_load_another_runs_binary():
    # two runs, same pid, same kernel name and module counter, different bodies: each must run
    # its own code (the old pid-named modules in a shared cache loaded the first run's binary)
    import json
    import subprocess

    spec = build_spec("arith", 11)
    other = dict(spec.to_json())
    text = json.dumps(spec.body)
    m = re.search(r'\["c", (-?[0-9.]+), "float32"\]', text)
    assert m, "no float literal to change: pick another seed"
    text = text[:m.start(1)] + repr(float(m.group(1)) + 1.0) + text[m.end(1):]
    other["body"] = json.loads(text)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with tempfile.TemporaryDirectory() as run_dir:
        outs = []
        for s in (spec.to_json(), other):
            p = subprocess.run([sys.executable, "-c", _STALE_CHILD, root, run_dir, json.dumps(s)],
                               capture_output=True, text=True, timeout=600)
            assert p.returncode == 0, p.stderr[-2000:]
            outs.append(json.loads(p.stdout.strip().splitlines()[-1]))
        for out in outs:
            assert out["matches_oracle"], out
            assert out["cache"].startswith(run_dir)
            assert not os.path.exists(out["cache"]), "a process's Warp cache outlived it"
        assert outs[0]["cache"] != outs[1]["cache"]


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
