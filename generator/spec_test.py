"""The model's specs: (family, seed) gives the same bytes, specs round-trip through JSON, sources
parse and their oracle is finite, families split by target, bad family and seed are rejected with
a reason, sources are distinct once names are ignored, every builtin widened for issue 29 is drawn
by its family, the model writes the dataset format's one canonical JSON; and the Hypothesis
profiles (ci, dev, fuzz) its strategies load."""

import ast
import sys

import numpy as np
import pytest
from hypothesis import given, strategies as st

from generator.families import FAMILIES, build_spec, families_for
from generator.inputs import make_inputs
from generator.oracle import run_oracle
from generator.render import render_source
from generator.spec import KernelSpec, canonical_json
from generator.strategies import seeds, specs


@given(st.sampled_from(sorted(FAMILIES)), seeds)
def test_same_family_and_seed_give_the_same_bytes(family, seed):
    a, b = build_spec(family, seed), build_spec(family, seed)
    assert canonical_json(a.to_json()) == canonical_json(b.to_json())
    assert render_source(a) == render_source(b)
    ia, ib = make_inputs(a), make_inputs(b)
    assert ia.keys() == ib.keys()
    for k in ia:
        assert _bytes(ia[k]) == _bytes(ib[k]), k


def _bytes(value) -> bytes:
    """An input's bytes: an array's or scalar's, or a struct's fields' in name order (the bytes
    of a dict as a NumPy object array would be its address)."""
    if isinstance(value, dict):
        return b"".join(name.encode() + b"=" + _bytes(value[name]) for name in sorted(value))
    return np.asarray(value).tobytes()


@given(specs())
def test_spec_round_trips_through_json(spec):
    again = KernelSpec.from_json(__import__("json").loads(canonical_json(spec.to_json())))
    assert again == spec
    assert render_source(again) == render_source(spec)


@given(specs())
def test_source_parses_and_oracle_is_finite(spec):
    tree = ast.parse(render_source(spec))
    assert any(isinstance(n, ast.FunctionDef) and n.name == spec.name for n in tree.body)
    outs = run_oracle(spec, make_inputs(spec))
    assert outs, "every kernel writes at least one output"
    for name, arr in outs.items():
        assert np.all(np.isfinite(arr)), f"{spec.family}/{spec.seed}: oracle output {name} not finite"


def _branch_coverage(spec) -> tuple[int, int, int]:
    """(branch points, outcomes, outcomes taken on input set 0), as a record's coverage counts them."""
    from generator.oracle import branch_points

    points, taken = branch_points(spec), set()
    run_oracle(spec, make_inputs(spec), taken)
    return len(points), sum(points.values()), sum(1 for node, _ in taken if node in points)


# arith kernels whose finiteness guard (where(isfinite(a), a, lit)) held one node `a`, a wp.where
# inside, in two places: the oracle counted it once, the spec read back from its JSON form twice
# (//validator's coverage differed from the run's on 5 of 300, measured; dtypes' bit_count leaf
# drawn twice did the same, 3 of 2,000 specs). build_spec now hands back a tree.
SHARED_GUARD_SEEDS = (2202009530327101150, 6936511941573055305, 3812388119252342977, 6833305874880394697,
                      7262632993312255048)


@pytest.mark.parametrize("seed", SHARED_GUARD_SEEDS)
def test_a_spec_s_branch_coverage_is_the_same_read_back_from_its_json_form(seed):
    spec = build_spec("arith", seed)
    again = KernelSpec.from_json(__import__("json").loads(canonical_json(spec.to_json())))
    assert _branch_coverage(spec) == _branch_coverage(again)


@given(specs())
def test_a_spec_is_a_tree_no_branch_point_in_two_places(spec):
    """The oracle keys branch points and the outcomes taken by node identity: a where or if node
    reachable twice would count once, where the spec's JSON form (two nodes) counts it twice.
    (Every node, not only branch points, has a list of its own.)"""
    from generator import spec_walk

    ids = [id(n) for n in spec_walk.nodes(*spec_walk.spec_bodies(spec))]
    assert len(ids) == len(set(ids)), f"{spec.family}/{spec.seed}: a node sits in two places"


def test_families_split_by_target():
    assert len(families_for("cpu")) == 17 and len(families_for("cuda")) == 10
    assert set(families_for("cpu")).isdisjoint(families_for("cuda"))


def test_bad_family_and_seed_are_rejected_with_a_reason():
    with pytest.raises(ValueError, match="unknown family 'nope'"):
        build_spec("nope", 1)
    with pytest.raises(ValueError, match="seed must be"):
        build_spec("arith", -1)


def test_sources_are_distinct_once_names_are_ignored():
    for fam in FAMILIES:
        srcs = set()
        for seed in range(200):
            spec = build_spec(fam, seed)
            srcs.add(render_source(spec).replace(spec.name, "K"))
        assert len(srcs) >= 196, f"{fam}: only {len(srcs)} distinct sources in 200"


# the builtins, casts and constructors widened for issue 29, by the family that draws them
WIDENED = {
    "arith": {"float", "int", "static", "sign", "round", "lerp", "radians"},
    "branch": {"bool"},
    "helpers": {"static"},
    "dtypes": {"int8", "uint8", "int16", "uint16", "uint64", "bfloat16", "float", "vec2i", "vec3i", "vec4i", "vec2d",
               "vec3d", "mat22d", "mat33d"},
    "matrix": {"matrix_from_rows", "matrix_from_cols", "identity", "diag", "trace", "ddot", "mat22", "mat22f", "mat33",
               "quat", "quatf"},
    "vecmath": {"len", "float", "vec2f", "vec3f"},
}


def _names(spec) -> set[str]:
    """The builtins (call, kwcall), cast dtypes and constructor types a spec's nodes name."""
    from generator import spec_walk

    return {node[1] for node in spec_walk.nodes(*spec_walk.spec_bodies(spec)) if node[0] in ("call", "kwcall", "vec", "cast")}


@pytest.mark.parametrize("family", sorted(WIDENED))
def test_every_widened_builtin_is_drawn_and_renders_as_warp_spells_it(family):
    """Each builtin the family was widened with appears in its kernels within 3,000 seeds (the
    rarest about once in 200), and renders as Warp's name: bare for Python's casts and len."""
    from generator.oracle_builtins import BARE_CALLS

    want, seen = WIDENED[family], set()
    for seed in range(3000):
        spec = build_spec(family, seed)
        found = _names(spec) & (want - seen)
        if found:
            source = render_source(spec)
            for name in found:
                assert (f"{name}(" if name in BARE_CALLS else f"wp.{name}(") in source, (family, seed, name)
            seen |= found
        if seen == want:
            break
    assert seen == want, f"{family}: never drawn in 3000 seeds: {sorted(want - seen)}"


def test_the_model_writes_the_one_canonical_json_of_the_dataset_format():
    from schemas import dataset_format

    assert canonical_json is dataset_format.canonical_json



@pytest.mark.parametrize("profile, default, own", [("ci", 40, 3), ("dev", 500, 30), ("fuzz", 5000, 300)])
def test_the_hypothesis_profiles_scale_every_search(profile, default, own):
    """HYPOTHESIS_PROFILE picks the search budget: the profile's default and a test's own budget
    (`examples(3)`, for a test whose examples are expensive) both grow from ci to dev to fuzz."""
    import subprocess

    code = ("import hypothesis; from generator.strategies import examples; "
            "print(hypothesis.settings.default.max_examples, examples(3), hypothesis.settings.default.derandomize)")
    env = {**__import__("os").environ, "HYPOTHESIS_PROFILE": profile}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == [str(default), str(own), str(profile == "ci")]

if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
