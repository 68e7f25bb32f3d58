"""Hypothesis strategies for kernel specs, next to the model they generate."""

from __future__ import annotations

from hypothesis import strategies as st

from generator.families import FAMILIES, build_spec, families_for

seeds = st.integers(min_value=0, max_value=2**63 - 1)


@st.composite
def specs(draw, target: str | None = None):
    """A KernelSpec from any family (or one target's families) and any seed."""
    names = families_for(target) if target else sorted(FAMILIES)
    return build_spec(draw(st.sampled_from(names)), draw(seeds))

# The CI profile: derandomized, no example database (runfiles are read-only), no deadline
# (Warp's first compile takes seconds). HYPOTHESIS_PROFILE=dev explores more; fuzz searches
# longest, with fresh randomness each run (a failure it finds is kept as an explicit @example):
#   ./bazelw test //... --test_env=HYPOTHESIS_PROFILE=fuzz --test_timeout=3600
# A test that sets its own, smaller budget where one example is expensive writes
# @settings(max_examples=examples(n)): n under ci, more under dev and fuzz.
settings = __import__("hypothesis").settings
settings.register_profile("ci", derandomize=True, database=None, deadline=None, max_examples=40, print_blob=True)
settings.register_profile("dev", deadline=None, max_examples=500)
settings.register_profile("fuzz", deadline=None, database=None, max_examples=5000, print_blob=True)
PROFILE = __import__("os").environ.get("HYPOTHESIS_PROFILE", "ci")
settings.load_profile(PROFILE)
_FACTOR = {"ci": 1, "dev": 10, "fuzz": 100}


def examples(n: int) -> int:
    """A test's own example budget `n` (its ci budget), scaled by the profile loaded."""
    return n * _FACTOR.get(PROFILE, 1)
