"""The UCI regression benchmark from a checkout: `probnn bench uci` with the data in ../shared.

Runs exactly the code of `probnn bench uci` (`probnn.apps.uci`, on probnn.GridSearch,
probnn.Ensemble, probnn.fit and probnn.predict_distribution); every
argument is passed through, and `--data-dir` defaults to the checkout's
`../shared/datasets/uci`. Presets:

    python benchmarks/uci.py --quick                     # 3 splits of every data set, small grids
    python benchmarks/uci.py --first-look                # bostonHousing and concrete, 5 splits,
                                                         # Normal, MC dropout, ensemble, Flipout
    python benchmarks/uci.py                             # the full protocol (hours on 2 cores), resumable
    python benchmarks/uci.py --table-only                # the table of every results file so far

The data sets run in 2 processes (`--jobs 2`; XLA's small batched matmuls keep
each close to one core). Results go to one JSON file per (data set, method) in
`--results-dir`, by default
benchmarks/results/uci/ (benchmarks/results/uci_quick/ with --quick); pairs already
there are skipped (`--rerun` replaces them), so an interrupted run continues where
it stopped, across sessions.

See benchmarks/RESULTS.md for the measured tables and the published reference numbers.
"""

import sys

from _common import REPO  # noqa: F401  (puts the checkout on sys.path)

from probnn.apps.cli import main

DEFAULT_DATA = REPO.parent / "shared" / "datasets" / "uci"
DEFAULT_RESULTS = REPO / "benchmarks" / "results" / "uci"
QUICK_RESULTS = REPO / "benchmarks" / "results" / "uci_quick"
FIRST_LOOK = [
    "--datasets",
    "bostonHousing",
    "concrete",
    "--splits",
    "5",
    "--methods",
    "normal",
    "mc-dropout",
    "ensemble",
    "flipout",
]


def arguments(argv):
    argv = list(argv)
    first_look = "--first-look" in argv
    if first_look:
        argv.remove("--first-look")
        argv = FIRST_LOOK + argv
    if "--data-dir" not in argv:
        argv = ["--data-dir", str(DEFAULT_DATA)] + argv
    if "--results-dir" not in argv and not first_look:
        argv = ["--results-dir", str(QUICK_RESULTS if "--quick" in argv else DEFAULT_RESULTS)] + argv
    if "--jobs" not in argv and "--table-only" not in argv and not first_look:
        argv = ["--jobs", "2"] + argv  # the data sets in 2 processes: each runs close to one core
    return ["bench", "uci", *argv]


if __name__ == "__main__":
    sys.exit(main(arguments(sys.argv[1:])))
