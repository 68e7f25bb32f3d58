import sys

from validator.revalidate import main

if __name__ == "__main__":  # not in a spawned child, which imports this file as __mp_main__
    sys.exit(main())
