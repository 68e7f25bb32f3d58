"""//tools:release_test: the release tests (tools/release_*_test.py, one subject a file) run in one
process, so that they share the small runs and release tools/testing.py builds once (six
processes would each build them again)."""

import os
import sys

import pytest

SUBJECTS = ("card", "parquet", "verify", "gate", "dedup", "findings")

if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    files = [os.path.join(here, f"release_{s}_test.py") for s in SUBJECTS]
    sys.exit(pytest.main([*files, "-q", "-p", "no:cacheprovider"]))
