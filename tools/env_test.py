"""The pinned toolchain: the running warp-lang is the 1.19.0 that requirements_lock.txt pins.
"""

import sys
import warp
print(sys.version, warp.__version__)
assert warp.__version__ == "1.19.0"
