"""The generator's diversity targets, measured over 20,000 kernels per target (spec + render,
no compiler): distinct sources, distinct AST skeletons (overall and per family), shares."""

import sys

import pytest

from generator import diversity
from generator.families import families_for

COUNT = 20000


@pytest.mark.parametrize("target", ["cpu", "cuda"])
def test_twenty_thousand_kernels_meet_the_diversity_targets(target):
    r = diversity.audit(target, COUNT)
    print(f"\n{target}: sources {r['distinct_sources']:.4f} skeletons {r['distinct_skeletons']:.4f}")
    for f, d in r["families"].items():
        print(f"  {f:<16} {d['share']:.3f} {d['distinct_sources']:.4f} {d['distinct_skeletons']:.4f}")
    assert r["failures"] == [], r["failures"]
    assert set(r["families"]) == set(families_for(target))


def test_seventeen_cpu_and_ten_cuda_families():
    assert len(families_for("cpu")) == 17 and len(families_for("cuda")) == 10
    assert set(families_for("cpu")).isdisjoint(families_for("cuda"))


def test_skeleton_abstracts_names_and_literals_but_not_structure():
    a = "import warp as wp\n\n@wp.kernel\ndef k1(x: wp.array(dtype=wp.float32)):\n    i = wp.tid()\n    x[i] = wp.sin(x[i]) * 2.0\n"
    b = a.replace("k1", "k2").replace("2.0", "3.5").replace("x", "y")
    c = a.replace("wp.sin", "wp.cos")
    d = a.replace("* 2.0", "+ 2.0")
    assert diversity.skeleton(a) == diversity.skeleton(b)
    assert diversity.skeleton(a) != diversity.skeleton(c)
    assert diversity.skeleton(a) != diversity.skeleton(d)


def test_target_failures_are_reported():
    fake = {"distinct_sources": 0.9, "distinct_skeletons": 0.4, "max_share_deviation": 0.02, "unused_args": 0.05,
            "families": {"f": {"distinct_skeletons": 0.1}}}
    msgs = diversity.target_failures(fake)
    assert len(msgs) == 4
    assert any("unused parameter" in m for m in msgs)


def test_every_parameter_is_used_and_the_measure_sees_an_unused_one():
    """build_spec leaves out the inputs a drawn body never names; `unused_args` reads the body
    (loads, stores, atomics, struct fields, whole-array and scalar uses), so a kernel given an
    extra parameter is seen."""
    import dataclasses

    from generator.families import FAMILIES, build_spec
    from generator.spec import ArgSpec
    from generator.spec_walk import unused_args

    for family in FAMILIES:
        for seed in range(40):
            spec = build_spec(family, seed)
            assert unused_args(spec) == [], (family, seed, unused_args(spec))
            extra = ArgSpec("unused_in", "array", "float32", (4,))
            assert unused_args(dataclasses.replace(spec, args=spec.args + (extra,))) == ["unused_in"]


def test_dataset_share_counts_what_was_written():
    m = {"generator": {"families": ["a", "b", "c", "d"]},
         "counts": {"by_family": {"a": {"passed": 250}, "b": {"passed": 250}, "c": {"passed": 255}, "d": {"passed": 245}}}}
    assert diversity.dataset_share_failures(m) == []
    m["counts"]["by_family"]["d"]["passed"] = 235  # d rejected more often: its share shrinks
    assert [x.split(":")[0] for x in diversity.dataset_share_failures(m)] == ["d"]
    del m["counts"]["by_family"]["c"]  # a family with no pair at all
    assert "c" in [x.split(":")[0] for x in diversity.dataset_share_failures(m)]


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-s", "-p", "no:cacheprovider"]))
