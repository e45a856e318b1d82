"""`python -m tfregimes.models`: the documented entry point; the front end is `tfregimes.cli.models`."""

import sys

from tfregimes.cli.models import main

if __name__ == "__main__":
    sys.exit(main())
