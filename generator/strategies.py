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
# (Warp's first compile takes seconds). HYPOTHESIS_PROFILE=dev explores more.
settings = __import__("hypothesis").settings
settings.register_profile("ci", derandomize=True, database=None, deadline=None, max_examples=40, print_blob=True)
settings.register_profile("dev", deadline=None, max_examples=500)
settings.load_profile(__import__("os").environ.get("HYPOTHESIS_PROFILE", "ci"))
