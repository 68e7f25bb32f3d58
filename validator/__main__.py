import sys

from validator.revalidate import main

sys.exit(main())
