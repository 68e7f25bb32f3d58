"""Where a user's relative path points: the directory they ran ./bazelw (or bazel run) from."""

from __future__ import annotations

import os


def caller_dir() -> str:
    # bazelw exports WARP_IR_CALLER_DIR; plain `bazel run` sets BUILD_WORKING_DIRECTORY
    return os.environ.get("WARP_IR_CALLER_DIR") or os.environ.get("BUILD_WORKING_DIRECTORY") or os.getcwd()


def caller_path(path: str) -> str:
    """`path` resolved against the caller's directory (absolute paths are kept)."""
    return os.path.normpath(os.path.join(caller_dir(), path))
