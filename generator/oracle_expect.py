"""The oracle's wp.expect_eq / expect_neq / expect_near (`generator.assertions` draws them): on one
thread's values (`EXPECT`, in `oracle_builtins.BUILTINS`) and where each fails on lanes
(`FAILS`, `lanes_builtins`), as native/builtin.h decides it."""

from __future__ import annotations

import numpy as np


def _expect(kind: str, fails):
    """Warp's wp.expect_* as the oracle sees it: a kernel's assertion must hold on every thread
    (`generator.assertions` draws only identities); one that fails here is the kernel's reason."""
    def check(*args):
        if fails(*(np.asarray(a, dtype=np.float64) for a in args)):
            raise ValueError(f"{kind} does not hold in the oracle: {', '.join(repr(a) for a in args)}")
    return check


# native/builtin.h: expect_eq fails unless actual == expected (vectors: every component),
# expect_neq when they are equal, expect_near when abs(actual - expected) > tolerance (a NaN passes)
EXPECT = {
    "expect_eq": _expect("expect_eq", lambda a, b: not np.all(a == b)),
    "expect_neq": _expect("expect_neq", lambda a, b: bool(np.all(a == b))),
    "expect_near": _expect("expect_near", lambda a, b, t: bool(np.any(np.abs(a - b) > t))),
}


# on lane arrays: True where the assertion fails
FAILS = {
    "expect_eq": lambda a, b: a != b,
    "expect_neq": lambda a, b: a == b,
    "expect_near": lambda a, b, t: np.abs(a - b) > t,
}
