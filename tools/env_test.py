import sys
import warp
print(sys.version, warp.__version__)
assert warp.__version__ == "1.19.0"
