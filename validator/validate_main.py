import sys

from validator.revalidate import main

if __name__ == "__main__":
    sys.exit(main())
