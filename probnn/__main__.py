"""`python -m probnn`: the `probnn` command (see `probnn.cli`)."""

import sys

from probnn.cli import main

if __name__ == "__main__":
    sys.exit(main())
