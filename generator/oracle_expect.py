"""The oracle's wp.expect_eq / expect_neq / expect_near (`generator.assertions` draws them): on one
thread's values (`EXPECT`, in `oracle_builtins.BUILTINS`) and where each fails on lanes
(`FAILS`, `lanes_builtins`), as native/builtin.h decides it."""

from __future__ import annotations

import numpy as np


# on arrays of values: True where the assertion fails (a lane, or a vector's component)
FAILS = {
    "expect_eq": lambda a, b: a != b,
    "expect_neq": lambda a, b: a == b,
    "expect_near": lambda a, b, t: np.abs(a - b) > t,
}
# native/builtin.h on one thread's values: expect_eq fails where any component differs,
# expect_neq where all are equal, expect_near where any differs by more than the tolerance
# (a NaN passes)
_ON_ONE_THREAD = {"expect_eq": np.any, "expect_neq": np.all, "expect_near": np.any}


def _expect(kind: str):
    """Warp's wp.expect_* as the oracle sees it: a kernel's assertion must hold on every thread
    (`generator.assertions` draws only identities); one that fails here is the kernel's reason."""
    def check(*args):
        if _ON_ONE_THREAD[kind](FAILS[kind](*(np.asarray(a, dtype=np.float64) for a in args))):
            raise ValueError(f"{kind} does not hold in the oracle: {', '.join(repr(a) for a in args)}")
    return check


EXPECT = {kind: _expect(kind) for kind in FAILS}
