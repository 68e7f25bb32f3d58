"""In-kernel assertions, as the wheel's own kernels write them: `wp.expect_eq(a, b)`,
`wp.expect_neq(a, b)` and `wp.expect_near(a, b, tolerance)` (Warp prints an error to stdout when
one does not hold, and goes on).

Each is an identity over float32 inputs in [-2, 2] (multiples of 1/256, `generator.inputs`) that
holds both in float64, where the oracle checks it (`oracle_builtins`: an assertion the oracle
sees fail is a reason, never a record), and in Warp's float32:
- `expect_eq` only of forms float32 evaluates exactly (commutation, negated min/max and
  floor/ceil, doubling), so rounding cannot separate the two sides;
- `expect_neq` of sides at least 1/4 apart;
- `expect_near` of identities float32 meets to a few ulps, with a tolerance 100 or more times that
  error (|sin|^2 + |cos|^2 = 1 is within 2e-7; the tolerance is 1e-5).
The validator runs the kernel with its printed output read back (`extractor.warp_adapter.launch`):
an assertion Warp reports failed fails the execute check, with the printed line as its reason.
"""

from __future__ import annotations

from generator.grammar import bin_, c, call

ASSERTIONS = ("expect_eq", "expect_neq", "expect_near")


def _neg(x):
    return ["neg", x]


def _eq(rng, a, b):
    match rng.randrange(6):
        case 0:
            return call("max", a, b), _neg(call("min", _neg(a), _neg(b)))
        case 1:
            return bin_("+", a, b), bin_("+", b, a)
        case 2:
            return bin_("*", a, b), bin_("*", b, a)
        case 3:
            return call("floor", a), _neg(call("ceil", _neg(a)))
        case 4:
            return call("abs", bin_("-", a, b)), call("abs", bin_("-", b, a))
        case _:
            return bin_("+", a, a), bin_("*", a, c(2.0))


def _neq(rng, a, b):
    match rng.randrange(3):
        case 0:
            return a, bin_("+", a, bin_("+", call("abs", b), c(0.25)))
        case 1:
            return bin_("+", call("abs", a), c(0.25)), c(0.0)
        case _:
            return call("floor", a), bin_("+", call("floor", a), c(1.0))


def _near(rng, a, b):
    """(actual, expected, tolerance)."""
    match rng.randrange(6):
        case 0:
            sq = bin_("+", bin_("*", call("sin", a), call("sin", a)), bin_("*", call("cos", a), call("cos", a)))
            return sq, c(1.0), c(1e-5)
        case 1:
            up = bin_("+", call("abs", a), c(1.0))
            return call("exp", call("log", up)), up, c(1e-4)
        case 2:
            hyp = bin_("-", bin_("*", call("cosh", a), call("cosh", a)), bin_("*", call("sinh", a), call("sinh", a)))
            return hyp, c(1.0), c(1e-4)
        case 3:
            return bin_("*", call("tanh", a), call("cosh", a)), call("sinh", a), c(1e-4)
        case 4:
            return bin_("*", bin_("+", a, b), bin_("-", a, b)), bin_("-", bin_("*", a, a), bin_("*", b, b)), c(1e-4)
        case _:
            return call("atan2", call("sin", a), call("cos", a)), a, c(1e-5)


def assertion(rng, leaves: list) -> list:
    """One `["expr", ["call", "expect_*", ...]]` statement over two of `leaves` (float32 values in
    [-2, 2]: loads or scalar inputs, never computed locals)."""
    a, b = rng.choice(leaves), rng.choice(leaves)
    kind = rng.choice(ASSERTIONS)
    args = {"expect_eq": _eq, "expect_neq": _neq, "expect_near": _near}[kind](rng, a, b)
    return ["expr", call(kind, *args)]


def assertions(rng, leaves: list, p: float = 0.3) -> list:
    """With probability `p`, one or two assertions; else none (the draws come after the family's
    own, so a kernel without them is the one the family drew before)."""
    if not leaves or rng.random() >= p:
        return []
    return [assertion(rng, leaves) for _ in range(rng.randint(1, 2))]
