"""`python -m probnn`: the `probnn` command (see `probnn.apps.cli`)."""

import sys

from probnn.apps.cli import main

if __name__ == "__main__":
    sys.exit(main())
