"""The UCI regression benchmark from a checkout: `probnn bench uci` with the data in ../shared.

Runs exactly the code of `probnn bench uci` (`probnn.uci_benchmark`); every
argument is passed through, and `--data-dir` defaults to the checkout's
`../shared/datasets/uci`. Presets:

    python benchmarks/uci.py --quick                     # 3 splits of every data set, small grids
    python benchmarks/uci.py --first-look                # bostonHousing and concrete, 5 splits,
                                                         # Normal, MC dropout, ensemble, Flipout
    python benchmarks/uci.py --output results/uci.md     # the full protocol (hours on 2 cores)

See benchmarks/RESULTS.md for the measured tables and the published reference numbers.
"""

import sys

from _common import REPO  # noqa: F401  (puts the checkout on sys.path)

from probnn.cli import main

DEFAULT_DATA = REPO.parent / "shared" / "datasets" / "uci"
FIRST_LOOK = ["--datasets", "bostonHousing", "concrete", "--splits", "5",
              "--methods", "normal", "mc-dropout", "ensemble", "flipout"]


def arguments(argv):
    argv = list(argv)
    if "--first-look" in argv:
        argv.remove("--first-look")
        argv = FIRST_LOOK + argv
    if "--data-dir" not in argv:
        argv = ["--data-dir", str(DEFAULT_DATA)] + argv
    return ["bench", "uci", *argv]


if __name__ == "__main__":
    sys.exit(main(arguments(sys.argv[1:])))
