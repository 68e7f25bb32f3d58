"""The oracle's two paths give the same bits: every thread at once (`generator.oracle_lanes`)
against the threads one by one (`generator.oracle.Interpreter`), on every family's kernels and
on specs written to break the lanes (threads that share memory, atomics out of order, a
division by zero in one thread, loops left by break, continue and return); the builtins widened
for issue 29 (casts, wrap-around, wp.static, constructors, matrix builders) against values NumPy
computes independently; and the one walk of a spec's nodes (`generator.spec_walk`) that the
oracle's branch points and the lanes use.

Over 400 lines: the cases of the widened builtins are one table of small specs, kept next to the
helpers (`_same`, `_spec`) every case runs through."""

import collections
import dataclasses
import json
import math

import sys

import numpy as np
import pytest

from generator import lanes_vector, oracle, oracle_lanes, spec_walk
from generator.families import FAMILIES, INPUT_SETS, build_spec
from generator.inputs import make_inputs
from generator.render import render_source
from generator.lanes_values import cast as lanes_cast
from generator.spec import TILE_BLOCK_DIM, ArgSpec, HelperSpec, KernelSpec
from generator.warp_rng import rand_init, rand_pcg

SEEDS = range(64)  # seeds 12, 13, 17, 38 and 55 once showed signed-zero and `or` bugs


def _one_by_one(spec, inputs):
    taken: set = set()
    with oracle.lanes(False):
        try:
            return oracle.run_oracle(spec, inputs, taken), taken, None
        except Exception as exc:  # noqa: BLE001 - the exception is what is compared
            return None, taken, exc


def _at_once(spec, inputs):
    """The lanes alone (no fallback): (outputs, taken) or None when they are unsure."""
    arrays, scalars = oracle.prepare(spec, inputs)
    taken: set = set()
    try:
        oracle_lanes.run_lanes(spec, arrays, scalars, taken)
    except oracle_lanes.Unsure:
        return None
    return {a.name: arrays[a.name] for a in spec.args if a.kind == "array" and a.role in ("out", "inout")}, taken


def _same(spec, inputs):
    """Both paths agree bit for bit; whether the lanes were sure."""
    want, want_taken, exc = _one_by_one(spec, inputs)
    got = _at_once(spec, inputs)
    if got is not None:
        assert exc is None, f"{spec.name}: the threads one by one raise {exc!r}, the lanes finished"
        outs, taken = got
        for name in want:
            assert outs[name].dtype == want[name].dtype
            assert outs[name].tobytes() == want[name].tobytes(), f"{spec.name}: output {name} differs"
        assert taken == want_taken, f"{spec.name}: branch outcomes differ"
    # and through run_oracle, whichever path it takes
    taken: set = set()
    if exc is None:
        outs = oracle.run_oracle(spec, inputs, taken)
        for name in want:
            assert outs[name].tobytes() == want[name].tobytes()
        assert taken == want_taken
    else:
        with pytest.raises(type(exc)):
            oracle.run_oracle(spec, inputs, taken)
    return got is not None


def test_every_family_s_kernels_get_the_same_bits_on_both_paths():
    sure = collections.Counter()
    tried = collections.Counter()
    for family in sorted(FAMILIES):
        for seed in SEEDS:
            spec = build_spec(family, seed)
            if not oracle_lanes.supported(spec):
                continue
            for k in range(INPUT_SETS):
                tried[family] += 1
                sure[family] += _same(spec, make_inputs(spec, k))
    # the fast path must be the one that runs: at least 10 families, each sure nearly always
    assert len(tried) >= 10, sorted(tried)
    for family, n in tried.items():
        assert sure[family] >= 0.9 * n, f"{family}: the lanes were sure for {sure[family]} of {n} runs"


def _all_statements(stmts):
    for s in stmts:
        yield s
        if s[0] == "if":
            yield from _all_statements(s[2])
            for _, body in s[3]:
                yield from _all_statements(body)
            yield from _all_statements(s[4])


def test_atomic_sub_and_the_bitwise_atomics_match_numpy_on_both_paths():
    """The atomics family's atomic_sub gives the exact negation of atomic_add of the same terms,
    and its or / xor / and masks equal NumPy's reduction of the bin's thread indices (from 0, or
    from all ones for and), for kernels whose atomics are unconditional; both oracle paths agree."""
    seen = collections.Counter()
    for seed in range(1200):
        spec = build_spec("atomics", seed)
        atomics = [s for s in _all_statements(spec.body) if s[0] == "atomic"]
        if any(s[0] == "if" for s in spec.body) or not {s[1] for s in atomics} - {"add"}:
            continue
        inputs = make_inputs(spec, 0)
        _same(spec, inputs)
        outs = oracle.run_oracle(spec, inputs)
        key = np.asarray(inputs["key"])
        for s in atomics:
            op, name, idx = s[1], s[2], s[3]
            if len(idx) != 1:
                continue
            if op in ("or", "xor", "and"):
                fn = {"or": np.bitwise_or, "xor": np.bitwise_xor, "and": np.bitwise_and}[op]
                start = -1 if op == "and" else 0
                want = [fn.reduce(np.flatnonzero(key == b).astype(np.int64), initial=start)
                        for b in range(outs[name].shape[0])]
                assert outs[name].astype(np.int64).tolist() == want, (spec.name, op)
                seen[op] += 1
            elif op == "sub":
                added = dataclasses.replace(spec, body=list(
                    ["atomic", "add", *st[2:]] if st is s else st for st in spec.body))
                assert np.array_equal(oracle.run_oracle(added, inputs)[name], -outs[name]), spec.name
                seen[op] += 1
    assert all(seen[op] >= 3 for op in ("sub", "or", "xor")) and seen["and"] >= 1, seen


def test_atomic_exch_and_cas_flags_are_the_bins_of_the_flagging_threads_on_both_paths():
    """The atomics family's flags: wp.atomic_exch(flag, b, k) and wp.atomic_cas(flag, b, 0, k) under
    `val < t` / `val > t` leave k in exactly the bins of the threads whose value passes, 0
    elsewhere, whatever the threads' order; both oracle paths agree, and the lanes are sure."""
    seen = collections.Counter()
    for seed in range(400):
        spec = build_spec("atomics", seed)
        flag = [s for s in spec.body if s[0] == "if" and s[2][0][0] == "atomic" and s[2][0][2] == "flag"]
        if not flag or len(flag[0][2][0][3]) != 1:
            continue
        (_, (_, op, val, lit), ((_, kind, _, _, value),), _, _), = flag
        k = value[1][1][1] if kind == "cas" else value[1]
        inputs = make_inputs(spec, 0)
        assert _same(spec, inputs), spec.name
        outs = oracle.run_oracle(spec, inputs)
        vals = np.array([oracle.Interpreter(spec, {a: np.array(x) for a, x in inputs.items()}, {}).expr(
            spec.body[1][2], {"i": i, "b": int(inputs["key"][i])}) for i in range(spec.dim[0])])
        passing = vals < lit[1] if op == "<" else vals > lit[1]
        want = np.zeros_like(outs["flag"])
        want[np.asarray(inputs["key"])[passing]] = k
        assert np.array_equal(outs["flag"], want), spec.name
        seen[kind] += 1
    assert seen["exch"] >= 3 and seen["cas"] >= 3, seen


def test_constant_tiles_are_numpy_s_and_always_beside_an_input_s_tile():
    """tile_reduce's tile_ones / tile_full / tile_arange: the oracle gives NumPy's ones, full and
    arange, and every constant tile is the right operand of a + or - whose left operand holds a
    loaded tile (so the mapped tile stays live)."""
    from generator.oracle_builtins import BUILTINS

    assert BUILTINS["tile_ones"]((4,)).tolist() == [1.0] * 4
    assert BUILTINS["tile_full"]((3,), 0.5).tolist() == [0.5] * 3
    assert BUILTINS["tile_arange"](5).tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    consts = {"tile_ones", "tile_full", "tile_arange"}

    def names(e):
        """The builtin and variable names in an expression (the node tags that carry a name)."""
        if not isinstance(e, list) or not e:
            return set()
        own = {e[1]} if e[0] in ("kwcall", "call", "fnref", "v") and isinstance(e[1], str) else set()
        return own | {n for x in e if isinstance(x, list) for n in names(x)}  # an argument list's first item too

    def count(e):
        if not isinstance(e, list) or not e:
            return 0
        return (e[0] == "kwcall" and e[1] in consts) + sum(count(x) for x in e if isinstance(x, list))

    seen, total = collections.Counter(), 0
    for seed in range(200):
        spec = build_spec("tile_reduce", seed)
        total += count(spec.body)
        todo = [s[2] for s in spec.body if s[0] == "let"]
        while todo:
            e = todo.pop()
            if not isinstance(e, list) or not e:
                continue
            if e[0] == "bin" and names(e[3]) & consts and not {n for n in names(e[3]) if n.startswith("t_")}:
                assert e[1] in "+-", e
                assert any(n.startswith("t_") for n in names(e[2])), e  # the left side holds a loaded tile
                seen.update(names(e[3]) & consts)
            todo += [x for x in e if isinstance(x, list)]
    assert all(seen[k] >= 5 for k in consts) and sum(seen.values()) == total, (seen, total)


def test_input_sets_evaluated_together_give_each_set_s_own_bits():
    # the liveness check evaluates input sets 0 and 1 in one lanes run (`run_oracle_sets`): each
    # set's outputs must be the bits of its own run, and the stacked run must be what runs
    stacked = collections.Counter()
    real = oracle_lanes.run_lanes_sets

    def counting(spec, prepared):
        real(spec, prepared)
        stacked[spec.family] += 1

    for family in sorted(FAMILIES):
        for seed in SEEDS:
            spec = build_spec(family, seed)
            sets = [make_inputs(spec, k) for k in range(3)]
            for group in (sets[:2], sets):
                try:
                    want = [oracle.run_oracle(spec, inputs) for inputs in group]
                except Exception as exc:  # noqa: BLE001 - then the sets together raise it too
                    with pytest.raises(type(exc)):
                        oracle.run_oracle_sets(spec, group)
                    continue
                oracle_lanes.run_lanes_sets = counting
                try:
                    got = oracle.run_oracle_sets(spec, group)
                finally:
                    oracle_lanes.run_lanes_sets = real
                assert len(got) == len(group)
                for w, g in zip(want, got):
                    assert w.keys() == g.keys()
                    for name in w:
                        assert (g[name].dtype, g[name].tobytes()) == (w[name].dtype, w[name].tobytes()), (spec.name, name)
    assert len(stacked) >= 10 and min(stacked.values()) >= 0.9 * 2 * len(SEEDS), stacked


def test_a_scalar_that_differs_between_sets_is_a_lane_value_and_unsure_sets_go_one_by_one():
    # out[i] = x[i] * s + float(i): s differs between the sets, so it must be a value per lane
    body = [["store", "out", [I], ["bin", "+", ["bin", "*", ["ld", "x", [I]], ["v", "s"]], ["cast", "float32", I]]]]
    spec = _spec(body, [_arr("x"), ArgSpec("s", "scalar", "float32"), _arr("out", role="out")])
    sets = [{**_inputs(spec, k), "s": float(k + 2)} for k in range(3)]
    got = oracle.run_oracle_sets(spec, sets)
    for inputs, out in zip(sets, got):
        assert out["out"].tobytes() == oracle.run_oracle(spec, inputs)["out"].tobytes()
        assert np.array_equal(out["out"], inputs["x"].astype(np.float64) * inputs["s"] + np.arange(8))
    # thread i reads x[(i + 1) % 8], which thread i + 1 stores: unsure on the lanes, so set by set
    body = [["store", "x", [I], ["bin", "+", ["ld", "x", [["mod", ["bin", "+", I, ["c", 1, "int32"]], ["c", 8, "int32"]]]],
                                ["c", 1.0, "float32"]]]]
    spec = _spec(body, [_arr("x", role="inout")])
    sets = [_inputs(spec, k) for k in range(2)]
    with pytest.raises(oracle_lanes.Unsure):
        oracle_lanes.run_lanes_sets(spec, [oracle.prepare(spec, inputs) for inputs in sets])
    for inputs, out in zip(sets, oracle.run_oracle_sets(spec, sets)):
        assert out["x"].tobytes() == oracle.run_oracle(spec, inputs)["x"].tobytes()


def _spec(body, args, dim=(8,), helpers=()):
    return KernelSpec(family="arith", seed=0, name="k", dim=dim, args=tuple(args), body=body, helpers=tuple(helpers))


def _arr(name, n=8, role="in", dtype="float32"):
    return ArgSpec(name, "array", dtype, (n,), role)


I = ["v", "i"]


def _inputs(spec, k=0):
    rng = np.random.default_rng(k)
    out = {}
    for a in spec.args:
        if a.kind == "array":
            out[a.name] = (rng.uniform(-2, 2, a.shape) if a.dtype.startswith("float") else
                           rng.integers(0, 5, a.shape)).astype(np.float32 if a.dtype == "float32" else np.int32)
        else:
            out[a.name] = 3
    return out


def test_a_thread_that_reads_what_a_later_thread_writes_is_left_to_the_threads_one_by_one():
    # y[i] = 1; then y[i] += y[(i + 1) % 8]: one by one, thread i < 7 sees thread i+1's input
    # element (not yet written), thread 7 sees thread 0's result; all at once every thread
    # would see 1
    body = [["store", "y", [I], ["c", 1.0, "float32"]],
            ["store", "y", [I], ["bin", "+", ["ld", "y", [I]], ["ld", "y", [["mod", ["bin", "+", I, ["c", 1, "int32"]], ["c", 8, "int32"]]]]]]]
    spec = _spec(body, [_arr("y", role="inout")])
    assert oracle_lanes.supported(spec)
    assert not _same(spec, _inputs(spec))
    y = _inputs(spec)["y"].astype(np.float64)
    want, _, _ = _one_by_one(spec, _inputs(spec))
    assert list(want["y"]) == [1.0 + v for v in y[1:]] + [2.0 + y[1]]


def test_a_neighbour_read_before_the_neighbour_s_store_is_sure_only_when_the_reader_comes_first():
    # y[i] = y[i] + y[next]: thread i reads y[next] before thread `next` stores into it. With
    # next = min(i + 1, 7) every reader of an element runs before its writer, one by one as all
    # at once: the lanes are sure. With next = (i + 1) % 8, thread 7 reads y[0] after thread 0
    # stored into it (one by one), before (all at once): they must not be sure.
    for nxt, sure in ((["call", "min", [["bin", "+", I, ["c", 1, "int32"]], ["c", 7, "int32"]]], True),
                      (["mod", ["bin", "+", I, ["c", 1, "int32"]], ["c", 8, "int32"]], False)):
        body = [["let", "a", ["ld", "y", [nxt]]], ["store", "y", [I], ["bin", "+", ["ld", "y", [I]], ["v", "a"]]]]
        spec = _spec(body, [_arr("y", role="inout")])
        assert _same(spec, _inputs(spec)) == sure


def test_two_threads_writing_one_element_is_left_to_the_threads_one_by_one():
    body = [["store", "y", [["mod", I, ["c", 4, "int32"]]], ["ld", "x", [I]]]]
    spec = _spec(body, [_arr("x"), _arr("y", role="out")])
    assert not _same(spec, _inputs(spec))


def test_float_atomics_in_a_loop_are_left_to_the_threads_one_by_one_and_in_order_they_are_not():
    looped = [["for", "k", ["c", 0, "int32"], ["c", 3, "int32"],
               [["atomic", "add", "s", [["c", 0, "int32"]], ["bin", "*", ["ld", "x", [I]], ["c", 0.1, "float32"]]]]]]
    spec = _spec(looped, [_arr("x"), _arr("s", n=1, role="out")])
    assert not _same(spec, _inputs(spec))
    once = [["atomic", "add", "s", [["mod", I, ["c", 2, "int32"]]], ["ld", "x", [I]]],
            ["atomic", "max", "m", [["c", 0, "int32"]], ["ld", "x", [I]]]]
    spec = _spec(once, [_arr("x"), _arr("s", n=2, role="out"), _arr("m", n=1, role="out")])
    assert _same(spec, _inputs(spec))


def test_a_division_by_zero_in_one_thread_raises_as_the_threads_one_by_one_raise():
    body = [["store", "y", [I], ["bin", "/", ["c", 1.0, "float32"], ["bin", "-", ["cast", "float32", I], ["c", 5.0, "float32"]]]]]
    spec = _spec(body, [_arr("y", role="out")])
    _, _, exc = _one_by_one(spec, _inputs(spec))
    assert isinstance(exc, ZeroDivisionError)
    assert not _same(spec, _inputs(spec))
    # a math domain error likewise (log of 0 in thread 3 only)
    body = [["store", "y", [I], ["call", "log", [["call", "abs", [["bin", "-", ["cast", "float32", I], ["c", 3.0, "float32"]]]]]]]]
    spec = _spec(body, [_arr("y", role="out")])
    assert isinstance(_one_by_one(spec, _inputs(spec))[2], ValueError)
    assert not _same(spec, _inputs(spec))


def test_break_continue_and_return_leave_their_loops_thread_by_thread():
    x_i = ["ld", "x", [I]]
    body = [
        ["let", "acc", ["c", 0.0, "float32"]],
        ["for", "k", ["c", 0, "int32"], ["bin", "+", I, ["c", 2, "int32"]], [
            ["if", ["cmp", "==", ["mod", ["v", "k"], ["c", 3, "int32"]], ["c", 1, "int32"]], [["continue"]], [], []],
            ["aug", "acc", "+", ["bin", "*", x_i, ["cast", "float32", ["v", "k"]]]],
            ["if", ["cmp", ">", ["v", "acc"], ["c", 2.0, "float32"]], [["break"]],
             [[["cmp", "<", ["v", "acc"], ["c", -3.0, "float32"]], [["store", "y", [I], ["v", "acc"]], ["ret_kernel"]]]], []],
        ]],
        ["let", "n", ["c", 0, "int32"]],
        ["while", ["cmp", "<", ["v", "n"], ["c", 5, "int32"]], [
            ["aug", "n", "+", ["c", 1, "int32"]],
            ["if", ["cmp", ">", ["hcall", "h", [["v", "acc"], ["v", "n"]]], ["c", 1.0, "float32"]], [["break"]], [], []],
            ["aug", "acc", "*", ["c", 0.5, "float32"]],
        ]],
        ["store", "y", [I], ["bin", "+", ["v", "acc"], ["cast", "float32", ["v", "n"]]]],
    ]
    helper = HelperSpec("h", (("a", "float32"), ("n", "int32")), "float32", [
        ["if", ["cmp", ">", ["v", "a"], ["c", 0.0, "float32"]], [["ret", ["bin", "*", ["v", "a"], ["cast", "float32", ["v", "n"]]]]], [], []],
        ["ret", ["neg", ["v", "a"]]],
    ])
    spec = _spec(body, [_arr("x", n=16), _arr("y", n=16, role="out")], dim=(16,), helpers=[helper])
    sure = [_same(spec, _inputs(spec, k)) for k in range(6)]
    assert all(sure)


def test_a_helper_that_falls_off_its_end_raises_as_the_threads_one_by_one_raise():
    helper = HelperSpec("h", (("a", "float32"),), "float32", [
        ["if", ["cmp", ">", ["v", "a"], ["c", 0.0, "float32"]], [["ret", ["v", "a"]]], [], []]])
    spec = _spec([["store", "y", [I], ["hcall", "h", [["ld", "x", [I]]]]]], [_arr("x"), _arr("y", role="out")],
                 helpers=[helper])
    assert isinstance(_one_by_one(spec, _inputs(spec))[2], ValueError)
    assert not _same(spec, _inputs(spec))


def test_signed_zeros_and_uniform_conditions_come_out_as_one_thread_at_a_time_gives_them():
    x_i = ["ld", "x", [I]]
    even = ["cmp", "==", ["mod", I, ["c", 2, "int32"]], ["c", 0, "int32"]]
    zero = ["where", even, ["c", 0.0, "float32"], ["c", -0.0, "float32"]]
    body = [
        # Python's float(math.ceil(-0.5)) is 0.0, NumPy's ceil -0.0; likewise floor and trunc
        ["store", "y", [I], ["bin", "+", ["call", "ceil", [["bin", "*", x_i, ["c", 0.25, "float32"]]]],
                             ["call", "trunc", [["bin", "*", x_i, ["c", 0.25, "float32"]]]]]],
        # min(0.0, -0.0) keeps the first, one thread after another
        ["atomic", "min", "lo", [["c", 0, "int32"]], zero],
        ["atomic", "max", "hi", [["c", 0, "int32"]], ["neg", zero]],
        # a uniform left operand of `or` / `and` with a per-thread right one
        ["if", ["or", ["cmp", ">", ["v", "s"], ["c", 5, "int32"]], ["cmp", ">", x_i, ["c", 0.0, "float32"]]],
         [["store", "z", [I], ["c", 1.0, "float32"]]], [],
         [["store", "z", [I], ["bin", "*", ["cast", "float32", ["and", ["cmp", "<", ["v", "s"], ["c", 5, "int32"]], even]],
                                ["c", 2.0, "float32"]]]]],
    ]
    args = [_arr("x"), _arr("y", role="out"), _arr("z", role="out"), _arr("lo", n=1, role="out"),
            _arr("hi", n=1, role="out"), ArgSpec("s", "scalar", "int32")]
    spec = _spec(body, args)
    for k in range(4):
        inputs = _inputs(spec, k)
        inputs["lo"][:] = 0.0
        inputs["hi"][:] = -0.0
        assert _same(spec, inputs)


def test_dot_matmul_and_determinant_are_summed_in_one_order_without_blas():
    """The oracle's products and determinants are Warp's formulas in plain float64 (Python floats
    below), the same bits for one thread's values and for a stack of them; BLAS (np.dot, @,
    np.linalg.det) rounds differently: FMA, blocking, LU with pivoting."""
    rng = np.random.default_rng(7)
    differs = collections.Counter()
    for _ in range(200):
        a, b, v = rng.standard_normal((3, 3)), rng.standard_normal((3, 3)), rng.standard_normal(3)
        f = lambda m, i, j: float(m[i, j])  # noqa: E731
        want_mm = [[f(a, i, 0) * f(b, 0, j) + f(a, i, 1) * f(b, 1, j) + f(a, i, 2) * f(b, 2, j)
                    for j in range(3)] for i in range(3)]
        want_mv = [f(a, i, 0) * float(v[0]) + f(a, i, 1) * float(v[1]) + f(a, i, 2) * float(v[2]) for i in range(3)]
        want_dot = float(v[0]) * float(v[0]) + float(v[1]) * float(v[1]) + float(v[2]) * float(v[2])
        m2 = a[:2, :2]
        want_det2 = f(m2, 0, 0) * f(m2, 1, 1) - f(m2, 1, 0) * f(m2, 0, 1)
        r1, r2 = a[1], a[2]
        cross = [float(r1[1] * r2[2] - r1[2] * r2[1]), float(r1[2] * r2[0] - r1[0] * r2[2]),
                 float(r1[0] * r2[1] - r1[1] * r2[0])]
        want_det3 = f(a, 0, 0) * cross[0] + f(a, 0, 1) * cross[1] + f(a, 0, 2) * cross[2]
        assert oracle.linalg.product(a, b).tolist() == want_mm
        assert oracle.linalg.product(a, v).tolist() == want_mv
        assert oracle.BUILTINS["length_sq"](v) == want_dot
        assert oracle.BUILTINS["determinant"](m2) == want_det2
        assert oracle.BUILTINS["determinant"](a) == want_det3
        # the lanes' stacks: each thread's bits are the single thread's
        stack = np.stack([a, b])
        assert oracle.linalg.matmul(stack, stack)[1].tobytes() == oracle.linalg.product(b, b).tobytes()
        assert oracle.linalg.det(stack)[1] == oracle.BUILTINS["determinant"](b)
        differs["det"] += float(np.linalg.det(a)) != want_det3
    m4 = rng.standard_normal((4, 4))
    assert abs(oracle.BUILTINS["determinant"](m4) - float(np.linalg.det(m4))) < 1e-12 * max(1.0, abs(np.linalg.det(m4)))
    assert differs["det"] > 0  # LAPACK's LU rounds differently: the formula is not np.linalg.det in disguise


# ---- the builtins widened for issue 29: each case an expression over x[i] (float32, values with
# signed zeros and halves) and k[i] (int32, 0..40), with its value computed here independently
# from NumPy; both oracle paths must agree with each other and with that value
def _c(value, dtype="float32"):
    return ["c", value, dtype]


X, K = ["ld", "x", [I]], ["ld", "k", [I]]
_EYE3 = ["kwcall", "identity", [], [["n", _c(3, "int32")], ["dtype", ["fnref", "float32"]]]]
_M_ROWS = ["call", "matrix_from_rows", [["vec", "vec2", [X, _c(1.0)]], ["vec", "vec2", [_c(2.0), _c(3.0)]]]]
_M_COLS = ["call", "matrix_from_cols", [["vec", "vec2", [X, _c(1.0)]], ["vec", "vec2", [_c(2.0), _c(3.0)]]]]
_SV = ["call", "spatial_vector", [["vec", "vec3", [_c(1.0), X, _c(2.0)]], ["vec", "vec3", [X, _c(1.0), _c(1.0)]]]]
_WIDENED = [
    # (case, expression, output dtype, expected(x, k) in NumPy)
    ("uint8 wraps", ["cast", "int32", ["cast", "uint8", ["bin", "-", ["bin", "*", K, _c(37, "int32")], _c(500, "int32")]]],
     "int32", lambda x, k: (k.astype(np.int64) * 37 - 500).astype(np.uint8)),
    ("uint16 wraps", ["cast", "int32", ["cast", "uint16", ["bin", "-", ["bin", "*", K, _c(4099, "int32")], _c(9000, "int32")]]],
     "int32", lambda x, k: (k.astype(np.int64) * 4099 - 9000).astype(np.uint16)),
    ("int8 / int16 in range", ["cast", "int32", ["bin", "-", ["cast", "int8", K], ["cast", "int8", ["cast", "int16", _c(20, "int32")]]]],
     "int32", lambda x, k: k - 20),
    ("uint64 arithmetic", ["cast", "int32", ["bin", "*", ["cast", "uint64", K], _c(3, "uint64")]], "int32", lambda x, k: k * 3),
    ("sign", ["call", "sign", [X]], "float32", lambda x, k: np.where(x < 0, -1.0, 1.0)),
    ("round", ["call", "round", [X]], "float32", lambda x, k: np.trunc(x.astype(np.float64) + np.copysign(0.5, x))),
    ("lerp", ["call", "lerp", [X, _c(2.0), _c(0.25)]], "float32", lambda x, k: x * 0.75 + 0.5),
    ("radians", ["call", "radians", [X]], "float32", lambda x, k: np.radians(x.astype(np.float64))),
    ("float(int(x))", ["cast", "float", ["cast", "int", ["bin", "*", X, _c(3.0)]]], "float32", lambda x, k: np.trunc(x * 3.0)),
    ("bool(k)", ["cast", "float", ["cast", "bool", K]], "float32", lambda x, k: (k != 0).astype(np.float64)),
    ("len(v)", ["cast", "float", ["call", "len", [["vec", "vec3f", [X, X, _c(1.0)]]]]], "float32", lambda x, k: np.full(x.shape, 3.0)),
    ("wp.static", ["bin", "*", X, ["call", "static", [["bin", "*", _c(1.5), _c(2.0)]]]], "float32", lambda x, k: x * 3.0),
    ("vec3i", ["comp", ["vec", "vec3i", [K, _c(1, "int32"), ["bin", "*", K, _c(2, "int32")]]], [2]], "int32", lambda x, k: 2 * k),
    ("vec4i", ["comp", ["vec", "vec4i", [K, K, K, ["bin", "+", K, _c(5, "int32")]]], [3]], "int32", lambda x, k: k + 5),
    ("identity", ["bin", "+", ["comp", ["bin", "*", X, _EYE3], [1, 1]], ["comp", _EYE3, [0, 2]]], "float32", lambda x, k: x),
    ("diag and trace", ["call", "trace", [["call", "diag", [["vec", "vec3", [X, _c(1.0), _c(2.0)]]]]]], "float32",
     lambda x, k: x + 3.0),
    ("diag off the diagonal", ["comp", ["call", "diag", [["vec", "vec2", [X, X]]]], [0, 1]], "float32", lambda x, k: 0.0 * x),
    ("matrix_from_rows / _cols and ddot", ["call", "ddot", [_M_ROWS, _M_COLS]], "float32", lambda x, k: x * x + 13.0),
    ("mat22 / mat22f", ["call", "determinant", [["bin", "+", ["vec", "mat22", [X, _c(1.0), _c(2.0), _c(3.0)]],
                                                ["vec", "mat22f", [_c(0.0), _c(0.0), _c(0.0), _c(0.0)]]]]],
     "float32", lambda x, k: 3.0 * x - 2.0),
    ("mat33d", ["cast", "float32", ["call", "trace", [["vec", "mat33d", [["cast", "float64", X]] + [_c(1.0, "float64")] * 8]]]],
     "float32", lambda x, k: x + 2.0),
    ("vec2d / vec3d", ["cast", "float32", ["bin", "+", ["call", "length", [["vec", "vec3d", [["cast", "float64", X], _c(0.0, "float64"), _c(0.0, "float64")]]]],
                                          ["comp", ["vec", "vec2d", [_c(1.0, "float64"), _c(2.0, "float64")]], [1]]]],
     "float32", lambda x, k: np.abs(x) + 2.0),
    ("quat / quatf", ["comp", ["call", "quat_rotate", [["call", "mul", [["vec", "quat", [_c(0.0), _c(0.0), _c(0.0), _c(1.0)]],
                                                                     ["vec", "quatf", [_c(0.0), _c(0.0), _c(0.0), _c(1.0)]]]],
                                                      ["vec", "vec3", [X, _c(1.0), _c(2.0)]]]], [0]],
     "float32", lambda x, k: x),
    ("cw_div", ["comp", ["call", "cw_div", [["vec", "vec3", [X, _c(3.0), X]], ["vec", "vec3", [_c(2.0), _c(4.0), _c(8.0)]]]], [2]],
     "float32", lambda x, k: x / 8.0),
    ("wp.vector", ["comp", ["call", "vector", [_c(1.0), X, _c(2.0)]], [1]], "float32", lambda x, k: x),
    ("spatial_vector, _top, _bottom", ["comp", ["bin", "-", ["call", "spatial_bottom", [_SV]], ["call", "spatial_top", [_SV]]], [0]],
     "float32", lambda x, k: x - 1.0),
    ("spatial_dot", ["call", "spatial_dot", [_SV, _SV]], "float32", lambda x, k: 2.0 * x * x + 7.0),
    ("inverse", ["comp", ["call", "inverse", [["vec", "mat22", [_c(4.0), X, _c(0.0), _c(2.0)]]]], [0, 1]], "float32",
     lambda x, k: -x / 8.0),
    ("mat44 / mat33f / vec4f", ["bin", "+", ["call", "determinant", [["vec", "mat44", [X] + [_c(0.0)] * 4 + [_c(1.0)] + [_c(0.0)] * 4
                                                                     + [_c(2.0)] + [_c(0.0)] * 4 + [_c(1.0)]]]],
                               ["bin", "+", ["call", "trace", [["vec", "mat33f", [X] + [_c(1.0)] * 8]]],
                                ["comp", ["vec", "vec4f", [X, X, X, _c(3.0)]], [3]]]],
     "float32", lambda x, k: 3.0 * x + 5.0),
    ("get_diag", ["call", "dot", [["call", "get_diag", [["vec", "mat22", [X, _c(5.0), _c(6.0), _c(2.0)]]]],
                                  ["vec", "vec2", [_c(1.0), _c(3.0)]]]], "float32", lambda x, k: x + 6.0),
    ("transformation / transformf", ["comp", ["call", "transform_point", [
        ["call", "transform_multiply", [["call", "transformation", [["vec", "vec3", [X, _c(0.0), _c(0.0)]], ["call", "quat_identity", []]]],
                                        ["call", "transformf", [["vec", "vec3", [_c(1.0), _c(0.0), _c(0.0)]], ["call", "quat_identity", []]]]]],
        ["vec", "vec3", [_c(2.0), _c(0.0), _c(0.0)]]]], [0]], "float32", lambda x, k: x + 3.0),
    ("quat_rpy: a roll alone", ["bin", "+", ["comp", ["call", "quat_rpy", [X, _c(0.0), _c(0.0)]], [0]],
                                ["comp", ["call", "quat_rpy", [X, _c(0.0), _c(0.0)]], [3]]],
     "float32", lambda x, k: np.sin(x * 0.5) + np.cos(x * 0.5)),
    ("transformd / quatd / vec3d", ["comp", ["call", "transform_point", [
        ["call", "transformd", [["vec", "vec3d", [X, _c(0.0), _c(0.0)]], ["vec", "quatd", [_c(0.0), _c(0.0), _c(0.0), _c(2.0)]]]],
        ["vec", "vec3d", [_c(1.0), _c(2.0), _c(3.0)]]]], [0]], "float32", lambda x, k: x + 7.0),
    ("mat44d / vec4d", ["bin", "+", ["call", "determinant", [["vec", "mat44d", [X] + [_c(0.0)] * 4 + [_c(1.0)] + [_c(0.0)] * 4
                                                                   + [_c(2.0)] + [_c(0.0)] * 4 + [_c(1.0)]]]],
                        ["call", "length_sq", [["vec", "vec4d", [X, _c(1.0), _c(0.0), _c(2.0)]]]]],
     "float32", lambda x, k: 2.0 * x + x * x + 5.0),
    ("vec3h / mat33h", ["cast", "float32", ["bin", "+", ["call", "dot", [["vec", "vec3h", [["cast", "float16", X], _c(1.0, "float16"), _c(2.0, "float16")]],
                                                                  ["vec", "vec3h", [_c(1.0, "float16"), _c(0.5, "float16"), _c(-1.0, "float16")]]]],
                                           ["call", "trace", [["vec", "mat33h", [["cast", "float16", X]] + [_c(1.5, "float16")] * 8]]]]],
     "float32", lambda x, k: 2.0 * x - 1.5 + 3.0),
    ("transformh / quath: a half turn about z", ["cast", "float32", ["comp", ["call", "transform_point", [
        ["call", "transformh", [["vec", "vec3h", [_c(1.0, "float16"), ["cast", "float16", X], _c(0.0, "float16")]],
                                ["vec", "quath", [_c(0.0, "float16"), _c(0.0, "float16"), _c(1.0, "float16"), _c(0.0, "float16")]]]],
        ["vec", "vec3h", [["cast", "float16", X], _c(2.0, "float16"), _c(3.0, "float16")]]]], [1]]],
     "float32", lambda x, k: x - 2.0),
    ("vec3s", ["cast", "int32", ["bin", "+", ["comp", ["vec", "vec3s", [["cast", "int16", K], _c(3, "int16"), _c(-4, "int16")]], [0]],
                                 ["cast", "int16", ["call", "argmin", [["vec", "vec3s", [["cast", "int16", K], _c(3, "int16"), _c(-4, "int16")]]]]]]],
     "int32", lambda x, k: k + 2),
    ("vec3ui, argmin, argmax: the first of tied components",
     ["cast", "int32", ["bin", "+", ["bin", "*", ["call", "argmin", [["vec", "vec3ui", [K, _c(20, "int32"), _c(7, "int32")]]]],
                                     _c(10, "int32")],
                        ["call", "argmax", [["vec", "vec3ui", [K, _c(20, "int32"), _c(7, "int32")]]]]]],
     "int32", lambda x, k: np.where(k <= 7, 0, 20) + np.where(k >= 20, 0, 1)),
    ("bit_count: two's complement", ["call", "bit_count", [["bin", "-", K, _c(20, "int32")]]], "int32",
     lambda x, k: np.bitwise_count((k - 20).astype(np.uint32))),
    ("erfinv and erfcinv undo erf", ["bin", "+", ["call", "erfinv", [["call", "erf", [["bin", "*", X, _c(0.5)]]]]],
                                     ["call", "erfcinv", [["call", "erfc", [["bin", "*", X, _c(0.25)]]]]]],
     "float32", lambda x, k: 0.75 * x),
    ("wp.matrix(..., shape=(2, 2))", ["call", "determinant", [["kwcall", "matrix", [X, _c(1.0), _c(2.0), _c(3.0)], [
        ["shape", ["tuple", [_c(2, "int32"), _c(2, "int32")]]], ["dtype", ["fnref", "float32"]]]]]],
     "float32", lambda x, k: 3.0 * x - 2.0),
    ("div_approx", ["call", "div_approx", [X, _c(4.0)]], "float32", lambda x, k: x / 4.0),
    ("neg is 0 - x: -(+0.0) is +0.0 (native/builtin.h), as copysign sees",
     ["call", "copysign", [_c(2.0), ["neg", ["bin", "*", X, _c(0.0)]]]], "float32", lambda x, k: np.full_like(x, 2.0)),
    # more scalar math (Warp's native/builtin.h formulas), against NumPy / SciPy-free closed forms
    ("tan", ["call", "tan", [X]], "float32", lambda x, k: np.tan(x)),
    ("degrees", ["call", "degrees", [X]], "float32", lambda x, k: np.degrees(x)),
    ("erf and erfc", ["bin", "+", ["call", "erf", [X]], ["call", "erfc", [X]]], "float32", lambda x, k: np.ones_like(x)),
    ("cbrt", ["call", "cbrt", [X]], "float32", lambda x, k: np.cbrt(x)),
    ("frac", ["call", "frac", [X]], "float32", lambda x, k: x - np.trunc(x)),
    ("rint: half to even", ["call", "rint", [X]], "float32", lambda x, k: np.rint(x)),
    ("copysign", ["call", "copysign", [_c(2.0), X]], "float32", lambda x, k: np.copysign(2.0, x)),
    ("step: 1 below 0", ["call", "step", [X]], "float32", lambda x, k: (x < 0).astype(np.float64)),
    ("nonzero", ["call", "nonzero", [X]], "float32", lambda x, k: (x != 0).astype(np.float64)),
    ("smoothstep", ["call", "smoothstep", [_c(-1.0), _c(2.0), X]], "float32",
     lambda x, k: np.clip((x + 1.0) / 3.0, 0, 1) ** 2 * (3.0 - 2.0 * np.clip((x + 1.0) / 3.0, 0, 1))),
    ("mod: fmod", ["call", "mod", [X, _c(0.75)]], "float32", lambda x, k: np.fmod(x, 0.75)),
    ("floordiv", ["call", "floordiv", [X, _c(0.75)]], "float32", lambda x, k: np.floor(x / 0.75)),
    ("add, sub, div", ["call", "sub", [["call", "add", [X, _c(3.0)]], ["call", "div", [X, _c(4.0)]]]], "float32",
     lambda x, k: x + 3.0 - x / 4.0),
    ("isfinite, isnan, isinf", ["where", ["call", "isfinite", [X]],
                                ["where", ["or", ["call", "isnan", [X]], ["call", "isinf", [X]]], _c(7.0), X], _c(9.0)],
     "float32", lambda x, k: x),
]


@pytest.mark.parametrize("case, expr, dtype, expected", _WIDENED, ids=[c[0] for c in _WIDENED])
def test_each_widened_builtin_gives_numpy_s_value_on_both_paths(case, expr, dtype, expected):
    """Python's casts, wp.static, sign, round, lerp, radians, len, the small integer types (unsigned
    ones wrapping around), typed vector / matrix / quaternion constructors, identity, diag,
    matrix_from_rows / _cols, trace and ddot: the lanes and the threads one by one agree bit for bit
    (and the lanes are sure), and both give what NumPy computes here."""
    spec = _spec([["store", "y", [I], expr]], [_arr("x"), _arr("k", dtype="int32"), _arr("y", role="out", dtype=dtype)])
    assert oracle_lanes.supported(spec)
    x = np.array([-2.5, -0.5, -0.0, 0.0, 0.5, 1.25, 2.5, 0.49999997], dtype=np.float32)
    k = np.array([0, 1, 7, 13, 20, 27, 33, 40], dtype=np.int32)
    inputs = {"x": x, "k": k, "y": np.zeros(8, dtype=np.float32 if dtype == "float32" else np.int32)}
    assert _same(spec, inputs), f"{case}: the lanes were not sure"
    got = oracle.run_oracle(spec, inputs)["y"]
    want = np.asarray(expected(x.astype(np.float64), k.astype(np.int64)), dtype=got.dtype)
    if dtype == "int32":
        assert got.tolist() == want.tolist(), case
    else:
        assert np.allclose(got, want, rtol=1e-15, atol=0.0), (case, got, want)
    if case == "diag off the diagonal":  # zeros, not x * 0.0 (a -0.0 where x < 0)
        assert not np.signbit(got).any()


def test_integer_casts_wrap_as_c_converts_on_both_paths():
    """An integer cast keeps the low bits (two's complement for the signed types), on Python ints
    (the threads one by one) and int64 lanes alike, for values far outside every type's range."""
    values = [-(2**40) - 3, -70000, -500, -129, -128, -1, 0, 127, 128, 255, 256, 1100, 70000, 2**33 + 5]
    numpy_type = {"int8": np.int8, "uint8": np.uint8, "int16": np.int16, "uint16": np.uint16, "int32": np.int32,
                  "uint32": np.uint32}
    lanes = np.array(values, dtype=np.int64)
    m = np.ones(len(values), dtype=np.bool_)
    for dtype, t in numpy_type.items():
        want = lanes.astype(t).astype(np.int64).tolist()
        assert [oracle.wrap_int(dtype, v) for v in values] == want, dtype
        assert lanes_cast(dtype, lanes, m).tolist() == want, dtype
    assert [oracle.wrap_int("uint64", v) for v in (-1, 5)] == [2**64 - 1, 5]
    with pytest.raises(oracle_lanes.Unsure):  # beyond int64 lanes: the threads one by one decide
        lanes_cast("uint64", lanes, m)


def _tagged_lists(x, out):
    """Every list whose first element is a string, depth first: the spec's nodes, found without
    knowing their shapes (a kwcall's [keyword, value] pairs are not nodes, their values are; an
    unpack's list of names is not one)."""
    if not isinstance(x, list):
        return
    if x and isinstance(x[0], str):
        out.append(x)
    for k, y in enumerate(x):
        if x and x[0] == "unpack" and k == 1:  # the names an unpack binds are not nodes
            continue
        if x and x[0] == "kwcall" and k == 3:
            for _, value in y:
                _tagged_lists(value, out)
        else:
            _tagged_lists(y, out)


def test_the_spec_walk_visits_every_node_of_every_family_s_kernels_once_in_source_order():
    for family in sorted(FAMILIES):
        for seed in range(8):
            spec = build_spec(family, seed)
            want: list = []
            for body in [spec.body] + [h.body for h in spec.helpers]:
                _tagged_lists(body, want)
            got = list(spec_walk.nodes(*spec_walk.spec_bodies(spec)))
            assert [id(n) for n in got] == [id(n) for n in want], (family, seed)
            # the JSON form walks the same
            j = spec.to_json()
            assert list(spec_walk.nodes(j["body"], *(h["body"] for h in j["helpers"]))) == got


def test_the_spec_walk_tells_statements_from_expressions_and_counts_branch_points():
    cond = ["cmp", "<", I, ["c", 4, "int32"]]
    where = ["where", cond, ["c", 1.0, "float32"], ["c", 2.0, "float32"]]
    inner = ["store", "y", [I], where]
    loop = ["for", "k", ["c", 0, "int32"], ["c", 2, "int32"], [["aug", "a", "+", ["v", "k"]], ["break"]]]
    branch = ["if", cond, [inner], [[["cmp", ">", I, ["c", 6, "int32"]], [loop]]], [["ret_kernel"]]]
    body = [["let", "a", ["c", 0, "int32"]], branch]
    spec = _spec(body, [_arr("y", role="out")])
    kinds = [(n[0], s) for n, s in spec_walk.walk(body)]
    assert kinds == [("let", True), ("c", False), ("if", True), ("cmp", False), ("v", False), ("c", False),
                     ("store", True), ("v", False), ("where", False), ("cmp", False), ("v", False), ("c", False),
                     ("c", False), ("c", False), ("cmp", False), ("v", False), ("c", False), ("for", True),
                     ("c", False), ("c", False), ("aug", True), ("v", False), ("break", True), ("ret_kernel", True)]
    assert [n[0] for n in spec_walk.statements(body)] == ["let", "if", "store", "for", "aug", "break", "ret_kernel"]
    assert oracle.branch_points(spec) == {id(branch): 3, id(where): 2}


def test_quaternion_and_transform_builtins_keep_their_identities_on_both_paths():
    """quat_to_matrix(q) @ x is quat_rotate(q, x); quat_inverse is the conjugate and undoes the
    rotation; a transform's inverse undoes it and their product is the identity; transform_vector
    plus the translation is transform_point; the lanes give the threads' bits."""
    from generator import lanes_vector
    from generator.oracle_builtins import BUILTINS as B

    rng = np.random.default_rng(5)
    n = 16
    axis = rng.normal(size=(n, 3))
    q = np.concatenate([axis / np.linalg.norm(axis, axis=1)[:, None] * np.sin(0.4), np.full((n, 1), np.cos(0.4))], 1)
    p, x = rng.normal(size=(n, 3)), rng.normal(size=(n, 3))
    m = np.ones(n, dtype=bool)
    lane_tf = lanes_vector.vector_call("transform", [p, q], m)
    lanes = {
        "quat_to_matrix": lanes_vector.vector_call("quat_to_matrix", [q], m),
        "quat_inverse": lanes_vector.vector_call("quat_inverse", [q], m),
        "transform_inverse": lanes_vector.vector_call("transform_inverse", [lane_tf], m),
        "transform_vector": lanes_vector.vector_call("transform_vector", [lane_tf, x], m),
    }
    for i in range(n):
        tf = B["transform"](p[i], q[i])
        mat = B["quat_to_matrix"](q[i])
        assert np.allclose(mat @ x[i], B["quat_rotate"](q[i], x[i]), atol=1e-12)
        assert np.allclose(B["quat_rotate"](B["quat_inverse"](q[i]), B["quat_rotate"](q[i], x[i])), x[i], atol=1e-12)
        inv = B["transform_inverse"](tf)
        assert np.allclose(B["transform_point"](inv, B["transform_point"](tf, x[i])), x[i], atol=1e-12)
        both = B["transform_multiply"](tf, inv)
        assert np.allclose(both[0], 0.0, atol=1e-12) and np.allclose(both[1], [0.0, 0.0, 0.0, 1.0], atol=1e-12)
        assert np.allclose(B["transform_vector"](tf, x[i]) + B["transform_get_translation"](tf),
                           B["transform_point"](tf, x[i]), atol=1e-12)
        assert np.array_equal(B["transform_get_rotation"](B["transform_multiply"](B["transform_identity"](), tf)), q[i])
        assert lanes["quat_to_matrix"][i].tobytes() == mat.tobytes()
        assert lanes["quat_inverse"][i].tobytes() == B["quat_inverse"](q[i]).tobytes()
        assert all(lanes["transform_inverse"][k][i].tobytes() == inv[k].tobytes() for k in (0, 1))
        assert lanes["transform_vector"][i].tobytes() == B["transform_vector"](tf, x[i]).tobytes()


def test_the_inverse_is_numpy_s_and_one_thread_s_bits_in_a_stack():
    """linalg.inverse (adjugate over determinant, no LAPACK) of diagonally dominant 2x2, 3x3 and
    4x4 matrices (the matrix family's m + s I, s > n) is np.linalg.inv's to 1e-12, and a stack of
    matrices gives each one's bits."""
    rng = np.random.default_rng(3)
    for n in (2, 3, 4):
        stack = rng.uniform(-1, 1, (8, n, n)) + (n + 1) * np.eye(n)
        inv = oracle.linalg.inverse(stack)
        assert np.allclose(inv, np.linalg.inv(stack), rtol=1e-12, atol=1e-12)
        for k in range(8):
            assert oracle.BUILTINS["inverse"](stack[k]).tobytes() == inv[k].tobytes()


def test_quat_from_matrix_turns_a_rotation_matrix_back_into_its_quaternion_on_both_paths():
    """Warp's quat_from_matrix (every branch: the trace's, each largest diagonal entry's) of a
    unit quaternion's matrix is +-q to 1e-12, and the lanes give one thread's bits."""
    rng = np.random.default_rng(5)
    qs = rng.standard_normal((64, 4))
    qs[:4] = [[0.0, 0.0, 0.0, 1.0], [1.0, 0.1, 0.0, 0.0], [0.1, 1.0, 0.0, 0.0], [0.0, 0.1, 1.0, 0.0]]
    qs /= np.sqrt((qs * qs).sum(axis=1))[:, None]
    mats = np.stack([oracle.BUILTINS["quat_to_matrix"](q) for q in qs])
    lanes = lanes_vector.vector_call("quat_from_matrix", [mats], np.ones(64, dtype=bool))
    for k, q in enumerate(qs):
        got = oracle.BUILTINS["quat_from_matrix"](mats[k])
        assert np.allclose(got * np.sign(got @ q), q, rtol=0.0, atol=1e-12), (q, got)
        assert lanes[k].tobytes() == got.tobytes()

def test_randi_and_randu_are_warp_s_uint32_arithmetic_on_both_paths():
    """wp.randi(state) (the state's bits as an int32), wp.randi(state, lo, hi) with a negative lo and
    wp.randu(state, lo, hi): rand_pcg's next state, then state % (hi - lo) + lo modulo 2**32, as
    NumPy's uint32 arithmetic computes it here; the lanes agree with the threads bit for bit."""
    seed = ["c", 1234, "int32"]
    body = [["let", "state", ["call", "rand_init", [seed, I]]],
            ["store", "a", [I], ["randi", "state"]],
            ["store", "b", [I], ["randi", "state", _c(-5, "int32"), _c(3, "int32")]],
            ["store", "u", [I], ["cast", "int32", ["randu", "state", _c(7, "uint32"), _c(11, "uint32")]]]]
    spec = _spec(body, [_arr(n, 64, role="out", dtype="int32") for n in "abu"], dim=(64,))
    assert oracle_lanes.supported(spec)
    inputs = {n: np.zeros(64, dtype=np.int32) for n in "abu"}
    assert _same(spec, inputs)
    got = oracle.run_oracle(spec, inputs)
    for i in range(64):
        s = [rand_init(1234, i)]
        for _ in range(3):
            s.append(rand_pcg(s[-1]))
        st = np.array(s[1:], dtype=np.uint32)
        assert got["a"][i] == st[0].astype(np.int32)
        assert got["b"][i] == (st[1:2] % np.uint32(8) + np.uint32(2**32 - 5)).astype(np.int32)[0]  # -5 as a uint32 (wraps)
        assert got["u"][i] == int(st[2] % np.uint32(4) + np.uint32(7))
    assert set(got["b"].tolist()) <= set(range(-5, 3)) and len(set(got["b"].tolist())) > 4

def test_tile_reduce_broadcast_extract_and_the_extreme_scans_are_numpy_s():
    """wp.tile_reduce by wp.add / min / max folds in index order; tile_broadcast, tile_extract and
    the running max / min scans are NumPy's (tile kernels run on the threads one by one only)."""
    B = oracle.BUILTINS
    t = np.array([0.5, -1.25, 3.0, -0.0, 2.0, -4.5, 1.0, 0.25])
    assert B["tile_reduce"](B["add"], t).tolist() == [float(np.cumsum(t)[-1])]
    assert B["tile_reduce"](B["min"], t).tolist() == [-4.5] and B["tile_reduce"](B["max"], t).tolist() == [3.0]
    assert B["tile_broadcast"](np.array([2.5]), (4,)).tolist() == [2.5] * 4
    assert B["tile_extract"](t, 5) == -4.5
    assert B["tile_scan_max_inclusive"](t).tolist() == [0.5, 0.5, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0]
    assert B["tile_scan_min_inclusive"](t).tolist() == [0.5, -1.25, -1.25, -1.25, -1.25, -4.5, -4.5, -4.5]

def test_tile_sort_axpy_dot_astype_view_arg_extremes_and_tile_untile_are_numpy_s():
    """tile_sort permutes keys and values in place (distinct keys only), tile_axpy accumulates in
    place, tile_dot / tile_astype / tile_view / tile_reshape / tile_squeeze are NumPy's dot, a copy,
    a slice, reshape and squeeze, tile_diag_add adds to the diagonal only, tile_argmin /
    argmax give the index of a unique extreme, and wp.tile / untile carry a block-uniform value;
    a tied extreme, tied keys or a tile of differing lanes is refused, not guessed."""
    B = oracle.BUILTINS
    t = np.array([0.5, -1.25, 3.0, -0.0, 2.0, -4.5, 1.0, 0.25])
    keys, vals = t.copy(), np.arange(8.0)
    B["tile_sort"](keys, vals)
    assert keys.tolist() == sorted(t.tolist()) and vals.tolist() == np.argsort(t).astype(float).tolist()
    dest = np.ones(8)
    B["tile_axpy"](2.0, t, dest)
    assert dest.tolist() == (1.0 + 2.0 * t).tolist()
    assert B["tile_dot"](t, t).tolist() == [float(np.dot(t, t))]
    assert B["tile_astype"](t, B["float64"]).tolist() == t.tolist()
    assert B["tile_view"](t, (2,), (3,)).tolist() == [3.0, -0.0, 2.0]
    row = B["tile_view"](B["tile_reshape"](t, (2, 4)), (1, 0), (1, 4))
    assert row.shape == (1, 4) and B["tile_squeeze"](row).tolist() == [2.0, -4.5, 1.0, 0.25]
    m = np.array([[1.0, -0.0], [2.0, 3.0]])
    got = B["tile_diag_add"](m, np.array([0.5, -1.0]))
    assert got.tolist() == [[1.5, -0.0], [2.0, 2.0]] and np.signbit(got[0, 1]) and m[0, 0] == 1.0  # a new tile
    assert B["tile_argmin"](t).tolist() == [5] and B["tile_argmax"](t).tolist() == [2]
    assert B["untile"](B["tile"](1.5)) == 1.5 and B["tile"](1.5).shape == (TILE_BLOCK_DIM,)
    for bad in (lambda: B["tile_argmax"](np.array([1.0, 3.0, 3.0])), lambda: B["untile"](t),
                lambda: B["tile_sort"](np.array([1.0, 1.0]), np.zeros(2))):
        with pytest.raises(ValueError):
            bad()


def test_lower_bound_is_searchsorted_left_capped_at_the_range_s_last_element():
    """wp.lower_bound (native/array.h) starts its upper end at end - 1: NumPy's searchsorted (side
    "left") within [begin, end), except that a value above every element gives end - 1; an unsorted
    range is refused. The dtypes family's searched inputs are drawn sorted, on every input set."""
    lb = oracle.BUILTINS["lower_bound"]
    a = np.array([0, 3, 3, 5, 9, 9, 12, 20, 20, 31])
    assert [lb(a, v) for v in (-2, 0, 3, 4, 9, 21, 31, 40)] == [0, 0, 1, 3, 4, 9, 9, 9]
    assert [lb(a, 2, 7, v) for v in (-2, 4, 9, 12, 13, 40)] == [2, 3, 4, 6, 6, 6]
    with pytest.raises(ValueError):
        lb(np.array([3, 1, 2]), 2)
    specs = [build_spec("dtypes", seed) for seed in range(400)]
    searched = [sp for sp in specs if "lower_bound" in json.dumps(sp.body)]
    assert len(searched) >= 5
    for sp in searched:
        assert sp.arg("sk").ascending and sp.arg("sk").to_json()["ascending"] is True
        assert KernelSpec.from_json(sp.to_json()) == sp
        for variant in range(INPUT_SETS):
            sk = make_inputs(sp, variant)["sk"]
            assert (np.diff(sk) >= 0).all()
        oracle.run_oracle(sp, make_inputs(sp))
    assert all("ascending" not in a.to_json() for sp in specs for a in sp.args if a.name != "sk")


def test_the_samplers_draw_rand_h_s_points_in_order():
    """rand.h's uniform samplers: as many randf draws as the sampler's statements make, in their
    order (a square's x from the first, y from the second), and points where each shape puts
    them: on the unit circle / sphere, in the disk / ball, the upper half for a hemisphere,
    barycentric coordinates summing to at most 1 for a triangle. The random_numbers family draws
    every one, and the lanes give the threads' bits."""
    from generator.spec import RAND_SAMPLES
    from generator.warp_rng import sample, unit_float

    draws = {"sample_unit_square": 2, "sample_unit_cube": 3, "sample_triangle": 2, "sample_unit_ring": 1,
             "sample_unit_disk": 2, "sample_unit_sphere_surface": 2, "sample_unit_sphere": 3,
             "sample_unit_hemisphere_surface": 2, "sample_unit_hemisphere": 3}
    assert set(draws) == set(RAND_SAMPLES)
    for seed in range(200):
        s0 = rand_init(seed, 7)
        for name, k in draws.items():
            s, p = sample(name, s0)
            after = s0
            for _ in range(k):
                after = rand_pcg(after)
            assert s == after, name
            n = float(np.linalg.norm(p))
            if name == "sample_unit_square":
                assert p == [unit_float(rand_pcg(s0)) - 0.5, unit_float(rand_pcg(rand_pcg(s0))) - 0.5]
            elif name.endswith("surface") or name == "sample_unit_ring":
                assert abs(n - 1.0) < 1e-6, (name, p)
            elif name == "sample_triangle":
                assert min(p) >= 0.0 and sum(p) <= 1.0 + 1e-12
            elif name != "sample_unit_cube":
                assert n <= 1.0 + 1e-6, (name, p)
            if "hemisphere" in name:
                assert p[2] >= 0.0
    seen = collections.Counter()
    for seed in range(300):
        spec = build_spec("random_numbers", seed)
        text = json.dumps(spec.body)
        hits = [n for n in RAND_SAMPLES if f'"{n}"' in text]
        seen.update(hits)
        if hits and seed % 3 == 0:
            assert oracle_lanes.supported(spec) and _same(spec, make_inputs(spec)), spec.name
    assert all(seen[n] >= 3 for n in RAND_SAMPLES), seen


def test_closest_point_edge_edge_gives_the_segments_distance():
    """closest_point_edge_edge's (s, t, distance): skew segments meet their common perpendicular
    at the middles, parallel ones end to end, a degenerate edge (squared length <= epsilon) is
    its first point; the vecmath family reads the distance, and the lanes give the threads' bits."""
    ce = oracle.BUILTINS["closest_point_edge_edge"]
    P = lambda *x: np.array(x, dtype=np.float64)  # noqa: E731
    assert ce(P(0, 0, 0), P(1, 0, 0), P(0.5, 1, 1), P(0.5, 1, -1), 1e-4).tolist() == [0.5, 0.5, 1.0]
    assert ce(P(0, 0, 0), P(1, 0, 0), P(2, 1, 0), P(3, 1, 0), 1e-4).tolist() == [1.0, 0.0, math.sqrt(2.0)]
    assert ce(P(0, 0, 2), P(0, 0, 2), P(-1, 0, 0), P(1, 0, 0), 1e-4).tolist() == [0.0, 0.5, 2.0]
    n = 0
    for seed in range(200):
        spec = build_spec("vecmath", seed)
        if "closest_point_edge_edge" in json.dumps(spec.body):
            n += 1
            assert oracle_lanes.supported(spec) and _same(spec, make_inputs(spec)), spec.name
    assert n >= 5


def test_tile_reduce_keys_never_tie():
    """The keys tile_reduce sorts by and takes the extremes of (a loaded tile plus its indices
    scaled by 2**-14) hold distinct values on every input, so Warp's unspecified tie order never
    shows; and the family draws each new tile builtin."""
    from generator.families import tile_reduce

    seen = collections.Counter()
    for seed in range(300):
        spec = build_spec("tile_reduce", seed)
        text = json.dumps(spec.body)
        seen.update(n for n in ("tile_sort", "tile_axpy", "tile_dot", "tile_astype", "tile_view", "tile_argmin",
                                "tile_argmax", '"untile"') if n in text)
        if "tile_sort" in text or "tile_arg" in text:
            assert oracle.run_oracle(spec, make_inputs(spec)) is not None  # the oracle's tie checks pass
    assert all(seen[n] >= 5 for n in ("tile_sort", "tile_axpy", "tile_dot", "tile_astype", "tile_view", '"untile"')), seen
    assert seen["tile_argmin"] + seen["tile_argmax"] >= 10 and tile_reduce._TIE_BREAK * 64 <= 2.0 ** -8, seen


def test_a_reversed_range_counts_down_on_both_paths():
    """for j in reversed(range(1, k[i])): stop - 1 down to start (none when k[i] <= 1), with a break
    in some threads; the lanes agree with the threads bit for bit and with a countdown here."""
    J = ["v", "j"]
    loop = ["for", "j", _c(1, "int32"), K, [["set", "acc", ["bin", "+", ["bin", "*", ["v", "acc"], _c(3, "int32")], J]],
                                            ["if", ["cmp", "==", J, _c(4, "int32")], [["break"]], [], []]], "reversed"]
    spec = _spec([["let", "acc", _c(0, "int32")], loop, ["store", "y", [I], ["v", "acc"]]],
                 [_arr("k", dtype="int32"), _arr("y", role="out", dtype="int32")])
    assert "for j in reversed(range(1, k[i])):" in render_source(spec)
    assert oracle_lanes.supported(spec)
    k = np.array([0, 1, 2, 3, 5, 6, 8, 9], dtype=np.int32)
    inputs = {"k": k, "y": np.zeros(8, dtype=np.int32)}
    assert _same(spec, inputs)
    want = []
    for n in k.tolist():
        acc, j = 0, n - 1
        while j >= 1:
            acc = acc * 3 + j
            if j == 4:
                break
            j -= 1
        want.append(acc)
    assert oracle.run_oracle(spec, inputs)["y"].tolist() == want

def test_no_cross_product_is_of_two_vectors_of_one_direction():
    """cross(-p, normalize(p)) is zero up to rounding (its gradient is noise: a matrix kernel's
    gradient check once failed on it); the grammar crosses no vector with a negation, normalization
    or scaling of itself."""
    from generator.grammar import direction
    for fam in ("vecmath", "matrix", "structs", "particles"):
        for seed in [*range(300), 345628169507950658]:  # the last: the matrix kernel that crossed -p with p / |p|
            for node in spec_walk.nodes(*spec_walk.spec_bodies(build_spec(fam, seed))):
                if node[:2] == ["call", "cross"]:
                    a, b = node[2]
                    assert direction(a) != direction(b), (fam, seed, node)
    assert direction(["neg", ["call", "normalize", [["bin", "*", _c(2.0), X]]]]) == X

if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
