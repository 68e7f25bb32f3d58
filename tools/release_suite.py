"""//tools:release_test: the release tests (tools/release_*_test.py, one subject a file) run in one
process, so that they share the small runs and release tools/testing.py builds once (six
processes would each build them again)."""

import glob
import os
import sys

import pytest

if __name__ == "__main__":
    # every file the target's srcs glob holds: a new release_*_test.py is run, never skipped
    here = os.path.dirname(os.path.abspath(__file__))
    files = sorted(glob.glob(os.path.join(here, "release_*_test.py")))
    assert len(files) >= 6, files
    sys.exit(pytest.main([*files, "-q", "-p", "no:cacheprovider"]))
