"""Compare UCI results directories (one JSON file per data set and method) pair by pair.

Usage: python benchmarks/uci_compare.py [LABEL=]NEW_DIR [LABEL=]OLD_DIR [[LABEL=]OLD_DIR ...]

Prints a Markdown table: for every (data set, method) file in NEW_DIR, the mean
test log likelihood +- its standard error over the splits in each directory,
whether NEW is within one standard error of the first OLD_DIR, the mean RMSE,
the per-split test LL, NEW's epochs per split, and the CPU seconds of each run.
"""

import json
import pathlib
import sys

import numpy as np


def _load(directory, name):
    path = pathlib.Path(directory) / name
    return json.loads(path.read_text()) if path.exists() else None


def _mean_se(values):
    values = np.asarray(values, float)
    se = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else float("nan")
    return values.mean(), se


def _row(name, runs):
    cells = name.removesuffix(".json").split(".", 1)
    lls = [[s["test_ll"] for s in run["splits"]] if run else None for run in runs]
    stats = [_mean_se(ll) if ll else None for ll in lls]
    for stat in stats:
        cells.append(f"{stat[0]:.2f} ± {stat[1]:.2f}" if stat else "-")
    new, ref = stats[0], stats[1]
    cells.append("-" if ref is None else ("yes" if abs(new[0] - ref[0]) <= max(new[1], ref[1]) else "no"))
    for run in runs:
        cells.append(f"{np.mean([s['rmse'] for s in run['splits']]):.2f}" if run else "-")
    per_split = zip(*[ll for ll in lls if ll])
    cells.append("; ".join("/".join(f"{v:.2f}" for v in split) for split in per_split))
    cells.append(", ".join(str(s["epochs"]) for s in runs[0]["splits"]))
    for run in runs:
        cells.append(f"{run['cpu_seconds']:.0f}" if run else "-")
    return "| " + " | ".join(cells) + " |"


def main(new_dir, *old_dirs):
    pairs = [
        arg.split("=", 1) if "=" in arg else (pathlib.Path(arg).name, arg) for arg in (new_dir, *old_dirs)
    ]
    names, dirs = [p[0] for p in pairs], [p[1] for p in pairs]
    header = ["data set", "method"]
    header += [f"test LL {n}" for n in names] + [f"within 1 s.e. of {names[1]}"]
    header += [f"RMSE {n}" for n in names] + ["per split LL " + "/".join(names), f"epochs {names[0]}"]
    header += [f"CPU s {n}" for n in names]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for path in sorted(pathlib.Path(dirs[0]).glob("*.json")):
        print(_row(path.name, [_load(d, path.name) for d in dirs]))


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
