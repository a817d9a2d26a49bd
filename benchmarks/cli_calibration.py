"""Does `probnn fit` give calibrated intervals? Test coverage before and after calibration, over many splits.

For each data set (scikit-learn's diabetes data and UCI sets from
/work/shared/datasets/uci, each written as a CSV file), for seeds 0..S-1:
the job behind `probnn fit DATA.csv --target T --seed s` (default settings:
Normal head, 64-64 MLP, early stopping; `--epochs` caps the epochs) reads and
splits the CSV (55 % train, 15 % validation, 15 % calibration, 15 % test),
trains once, and then every calibration method of `probnn fit --calibration`
is fitted on the same calibration rows of the same network: `none` (the
network's own intervals, what a user gets without calibration), `conformal`
(the default), `std`, `isotonic`. Reported per data set and method: pooled
test coverage of the central 50 % and 90 % intervals (mean over seeds; the
test parts have equal size, so this is the pooled share), its standard error
over seeds, mean interval width relative to the uncalibrated one, and the
test NLL (none for conformal: it calibrates intervals, not a density).

The acceptance band of issue 21 is 0.87-0.93 (90 %) and 0.45-0.55 (50 %).
Conformal's expected coverage at level p with n calibration rows is
⌈(n + 1)p⌉ / (n + 1) (e.g. 0.910 for n = 66, p = 0.9).

    python benchmarks/cli_calibration.py [--seeds 20] [--epochs 1000] [--uci bostonHousing concrete energy]
"""

import argparse
import pathlib
import sys
import tempfile
import time

import numpy as np
from _common import machine_description, markdown_table, write_result

UCI_DIR = pathlib.Path("/work/shared/datasets/uci")
METHODS = ("none", "conformal", "std", "isotonic")


def diabetes_csv(folder):
    from sklearn.datasets import load_diabetes

    path = folder / "diabetes.csv"
    load_diabetes(as_frame=True, scaled=False).frame.to_csv(path, index=False)
    return path, "target"


def uci_csv(name, folder):
    """A UCI set's data.txt (whitespace separated, no header) as a CSV with a header; the target named 'y'."""
    data = np.loadtxt(UCI_DIR / name / "data.txt")
    features = np.loadtxt(UCI_DIR / name / "index_features.txt", dtype=int).reshape(-1)
    target = int(np.loadtxt(UCI_DIR / name / "index_target.txt"))
    table = np.column_stack([data[:, features], data[:, target]])
    path = folder / f"{name}.csv"
    header = ",".join([f"x{i}" for i in features] + ["y"])
    np.savetxt(path, table, delimiter=",", header=header, comments="", fmt="%.10g")
    return path, "y"


def run_seed(path, target, seed, epochs):
    """Train once on seed `seed`'s split; score the test rows under every calibration method."""
    import probnn
    from probnn.apps import tabular
    from probnn.apps.calibrator import CommandCalibrator

    data = tabular.read_training_table(path, target, seed=seed)
    started = time.perf_counter()
    model, epochs_run = tabular._train(data, tabular.FitOptions(epochs=epochs, seed=seed))
    seconds = time.perf_counter() - started
    dist_cal = probnn.predict_distribution(model, data.xs(data.calibration))
    dist_test = probnn.predict_distribution(model, data.xs(data.test))
    z_cal = data.ys(data.calibration).reshape(-1)
    scores = {}
    for method in METHODS:
        calibrator = CommandCalibrator(method)
        if method != "none":
            calibrator.fit(dist_cal, z_cal)
        scores[method] = tabular.interval_scores(
            calibrator, dist_test, data.y[data.test], loc=data.scaling.y_mean, scale=data.scaling.y_std
        )
    return scores, seconds, epochs_run, data


def summarise(name, runs):
    """Table rows for one data set: per method, coverage mean ± s.e. over seeds, relative width, NLL."""
    rows = []
    for method in METHODS:
        cov90 = np.array([r[method]["coverage_90"] for r in runs])
        cov50 = np.array([r[method]["coverage_50"] for r in runs])
        rel90 = np.mean([r[method]["width_90"] / r["none"]["width_90"] for r in runs])
        nll = [r[method]["nll"] for r in runs]
        se = lambda a: a.std(ddof=1) / np.sqrt(a.size) if a.size > 1 else float("nan")
        rows.append(
            [
                name,
                method,
                f"{cov90.mean():.3f} ± {se(cov90):.3f}",
                f"{cov50.mean():.3f} ± {se(cov50):.3f}",
                f"{rel90:.2f}",
                "—" if nll[0] is None else f"{np.mean(nll):.3f}",
            ]
        )
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=1000, help="epoch cap (probnn fit's default: 1000)")
    parser.add_argument(
        "--uci-epochs", type=int, default=None, help="epoch cap for the UCI sets (default: --epochs)"
    )
    parser.add_argument("--uci", nargs="*", default=["bostonHousing", "concrete", "energy"])
    args = parser.parse_args(argv)
    import os
    import subprocess

    load = os.getloadavg()
    folder = pathlib.Path(tempfile.mkdtemp())
    sets = [("diabetes", *diabetes_csv(folder), args.epochs)]
    sets += [(name, *uci_csv(name, folder), args.uci_epochs or args.epochs) for name in args.uci]
    rows, timing = [], []
    for name, path, target, epochs in sets:
        runs, seconds = [], []
        for seed in range(args.seeds):
            scores, secs, epochs_run, data = run_seed(path, target, seed, epochs)
            runs.append(scores)
            seconds.append(secs)
            print(
                f"{name} seed {seed}: {epochs_run} epochs {secs:.1f} s  "
                + "  ".join(
                    f"{m} {scores[m]['coverage_90']:.3f}/{scores[m]['coverage_50']:.3f}" for m in METHODS
                ),
                flush=True,
            )
        rows += summarise(name, runs)
        timing.append(
            [
                name,
                f"{data.train.size}/{data.val.size}/{data.calibration.size}/{data.test.size}",
                epochs,
                f"{seconds[0]:.1f}",
                f"{np.mean(seconds[1:]) if len(seconds) > 1 else seconds[0]:.1f}",
            ]
        )
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    text = "\n".join(
        [
            "# `probnn fit` calibration: test coverage before and after, over many splits",
            "",
            f"`python benchmarks/cli_calibration.py --seeds {args.seeds} --epochs {args.epochs}"
            + (f" --uci-epochs {args.uci_epochs}" if args.uci_epochs else "")
            + f" --uci {' '.join(args.uci)}`",
            "",
            *machine_description(),
            f"- Load average at start {load[0]:.1f}; at the end: `{uptime}` (a shared 2-core machine: the "
            "timings are noisy, the coverages are not affected).",
            "",
            "Per data set, seeds 0..S-1 are S random splits (55 % train, 15 % validation for early stopping, "
            "15 % calibration, 15 % test). One network per split (Normal head, 64-64 ReLU MLP, Adam 1e-3, "
            "batch 64, patience 50: `probnn fit`'s defaults); every calibration method is fitted on the same "
            "calibration rows of the same network. Coverage: mean over splits ± standard error; width: mean "
            "90 % interval width relative to the network's own; NLL in original units (— for conformal, which "
            "calibrates intervals, not a density). Acceptance (issue 21): 90 % coverage in [0.87, 0.93], "
            "50 % in [0.45, 0.55] with the default (`conformal`).",
            "",
            markdown_table(
                [
                    "data set",
                    "calibration",
                    "90 % coverage",
                    "50 % coverage",
                    "90 % width / none",
                    "test NLL",
                ],
                rows,
            ),
            "",
            "Training time per split (train/validation/calibration/test rows; epoch cap; first split cold "
            "with compilation, then the mean of the others):",
            "",
            markdown_table(["data set", "rows", "epoch cap", "first split (s)", "later splits (s)"], timing),
            "",
        ]
    )
    text += (
        "\nConformal's expected coverage with n calibration rows is ⌈(n + 1)p⌉ / (n + 1); the "
        "splits are `probnn fit`'s own random splits by seed (not the UCI standard index files).\n"
    )
    write_result("cli_calibration.md", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
