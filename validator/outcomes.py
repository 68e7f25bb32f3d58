"""The verdict dicts the static checks return: PASSED, `failed(reason)`, `not_run(reason)` (the
stored form of a check, {"status", "reason"?}).

A module of its own so that `verdicts` and the checks split from it (`safety`) share them
without importing each other.
"""

from __future__ import annotations

PASSED = {"status": "passed"}


def failed(reason: str) -> dict:
    return {"status": "failed", "reason": reason}


def not_run(reason: str) -> dict:
    return {"status": "not_run", "reason": reason}
