import sys

from report.report_main import main

if __name__ == "__main__":
    sys.exit(main())
