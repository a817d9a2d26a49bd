"""The Markdown table of results beside the published numbers."""

import math

from probnn.apps.uci.methods import METHODS
from probnn.datasets.uci import UCI_DATASETS

PUBLISHED = {
    "MC dropout (grid search)": {
        "bostonHousing": (2.90, 0.18, -2.40, 0.04),
        "concrete": (4.82, 0.16, -2.93, 0.02),
        "energy": (0.54, 0.06, -1.21, 0.01),
        "kin8nm": (0.08, 0.00, 1.14, 0.01),
        "naval-propulsion-plant": (0.00, 0.00, 4.45, 0.00),
        "power-plant": (4.01, 0.04, -2.80, 0.01),
        "protein-tertiary-structure": (4.27, 0.02, -2.87, 0.00),
        "wine-quality-red": (0.62, 0.01, -0.93, 0.01),
        "yacht": (0.67, 0.05, -1.25, 0.01),
    },
    # Deep ensembles and NGBoost publish NLL; stored here as log likelihood = -NLL.
    "Deep ensembles": {
        "bostonHousing": (3.28, 1.00, -2.41, 0.25),
        "concrete": (6.03, 0.58, -3.06, 0.18),
        "energy": (2.09, 0.29, -1.38, 0.22),
        "kin8nm": (0.09, 0.00, 1.20, 0.02),
        "naval-propulsion-plant": (0.00, 0.00, 5.63, 0.05),
        "power-plant": (4.11, 0.17, -2.79, 0.04),
        "protein-tertiary-structure": (4.71, 0.06, -2.83, 0.02),
        "wine-quality-red": (0.64, 0.04, -0.94, 0.12),
        "yacht": (1.58, 0.48, -1.18, 0.21),
    },
    "NGBoost": {
        "bostonHousing": (2.94, 0.53, -2.43, 0.15),
        "concrete": (5.06, 0.61, -3.04, 0.17),
        "energy": (0.46, 0.06, -0.60, 0.45),
        "kin8nm": (0.16, 0.00, 0.49, 0.02),
        "naval-propulsion-plant": (0.00, 0.00, 5.34, 0.04),
        "power-plant": (3.79, 0.18, -2.79, 0.11),
        "protein-tertiary-structure": (4.33, 0.03, -2.81, 0.03),
        "wine-quality-red": (0.63, 0.04, -0.91, 0.06),
        "yacht": (0.50, 0.20, -0.20, 0.26),
    },
}


BASELINE = "MC dropout (grid search)"


def comparable(result):
    """Whether `result`'s test log likelihood is comparable to a continuous model's.

    A mixture head (or a flow head: any `Method.flexible` density) on
    integer-valued targets (wine-quality-red: scores 3-8) can put narrow
    components on the integers and earn density a continuous model of the
    score cannot: its log likelihood grows without bound as the spikes narrow,
    and says nothing about predictive quality. Such a cell is shown, marked, and
    never counted as the best method or as a win over a published number.
    """
    method = METHODS.get(result.method)
    return not (result.integer_target and method is not None and method.flexible)


def _fmt(mean, se, digits):
    if math.isnan(se):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {se:.{digits}f}"


def best_result(results):
    """The comparable `MethodResult` with the highest mean test log likelihood, or None."""
    usable = [r for r in results if comparable(r)]
    return max(usable, key=lambda r: r.summary()[0]) if usable else None


def _header(index, methods, published):
    """The column names of the log-likelihood (`index` 0) or RMSE (`index` 2) table."""
    return (
        ["data set", "splits"]
        + [METHODS[m].label for m in methods]
        + (["best (ours)", f"≥ published {BASELINE}?"] if index == 0 else [])
        + [f"{p} (published)" for p in published]
    )


def _method_cells(by, dataset, methods, index):
    """One cell per method: mean ± standard error of the score, "not run", or a marked incomparable cell."""
    digits = 4 if dataset == "naval-propulsion-plant" and index == 2 else 2
    cells = []
    for m in methods:
        r = by.get((dataset, m))
        if r is None:
            cells.append("not run")
            continue
        s = r.summary()
        cell = _fmt(s[index], s[index + 1], digits)
        cells.append(cell if comparable(r) or index != 0 else cell + " (integer targets: not comparable)")
    return cells


def _verdict_cells(ran, dataset, methods, wins, decided):
    """The best comparable method's cell and whether it is at or above the published baseline.

    The verdict uses results on ALL splits only. A "yes" is final as soon as one such method is at
    or above the published figure (more methods can only raise the best); a "no" is final only when
    every method has run on all splits. A decided data set is appended to `decided` (and to `wins`
    for a "yes").
    """
    whole = [r for r in ran if len(r.splits) == uci_total_splits(dataset)]
    best = best_result(whole) or best_result(ran)
    ref = PUBLISHED[BASELINE].get(dataset)
    if best is None or ref is None:
        return ["", ""]
    ll = best.summary()[0]
    if best in whole and round(ll, 2) >= ref[2]:
        verdict = "yes"
        decided.append(dataset)
        wins.append(dataset)
    elif len(whole) == len(methods):
        verdict = "no"
        decided.append(dataset)
    else:
        verdict = "not yet (" + ("not all splits" if best not in whole else "not all methods") + ")"
    return [f"{METHODS[best.method].label} {ll:.2f}", verdict]


def _published_cells(dataset, published, index):
    """The published mean ± standard error of each reference, or "" where it has none."""
    cells = []
    for p in published:
        ref = PUBLISHED[p].get(dataset)
        cells.append(
            "" if ref is None else _fmt(ref[2], ref[3], 2) if index == 0 else _fmt(ref[0], ref[1], 2)
        )
    return cells


def _footnotes(results, datasets, methods, wins, decided):
    """The lines after the tables: the count of data sets at or above the baseline, and the times."""
    lines = [
        f"Data sets where a comparable method, on all splits, is at or above the published {BASELINE} "
        f"test log likelihood (compared at its 2 published decimals): {len(wins)} "
        f"({', '.join(wins) or 'none'}); decided so far: {len(decided)} of {len(datasets)} "
        f"(a data set below it is decided when all {len(methods)} methods have run on all splits).",
        "",
    ]
    times = [
        f"{r.dataset}/{r.method} {r.seconds:.0f} s wall, {r.cpu_seconds:.0f} s CPU"
        for r in sorted(results, key=lambda r: (_order(r.dataset), list(METHODS).index(r.method)))
    ]
    lines.append(
        "Time per data set and method (validation runs, retraining and test): " + "; ".join(times) + "."
    )
    total_wall = sum(r.seconds for r in results)
    total_cpu = sum(r.cpu_seconds for r in results)
    lines.append(f"Sum: {total_wall:.0f} s wall, {total_cpu:.0f} s CPU.")
    return lines


def format_table(results, *, datasets=None, methods=None, published=(BASELINE, "Deep ensembles", "NGBoost")):
    """Markdown tables (test log likelihood, then RMSE) of `MethodResult`s beside the published numbers.

    `datasets` / `methods` fix the rows and columns (default: those in `results`);
    a (data set, method) pair without a result is shown as "not run". The log-likelihood
    table adds the best comparable method per data set and whether it is at or above the
    published MC-dropout (grid search) figure; a count of such data sets follows.
    """
    datasets = list(datasets or dict.fromkeys(r.dataset for r in results))
    methods = [m for m in METHODS if (m in methods if methods else any(r.method == m for r in results))]
    by = {(r.dataset, r.method): r for r in results}
    lines = []
    wins, decided = [], []
    for title, index in (("Test log likelihood (higher is better)", 0), ("Test RMSE", 2)):
        head = _header(index, methods, published)
        lines += [
            f"**{title}**, mean ± standard error over splits",
            "",
            "| " + " | ".join(head) + " |",
            "|" + "---|" * len(head),
        ]
        for d in datasets:
            ran = [by[(d, m)] for m in methods if (d, m) in by]
            counts = sorted({len(r.splits) for r in ran})
            cells = [d, "/".join(str(c) for c in counts) or "-"] + _method_cells(by, d, methods, index)
            if index == 0:
                cells += _verdict_cells(ran, d, methods, wins, decided)
            cells += _published_cells(d, published, index)
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines + _footnotes(results, datasets, methods, wins, decided))


def _order(dataset):
    return UCI_DATASETS.index(dataset) if dataset in UCI_DATASETS else len(UCI_DATASETS)


def uci_total_splits(dataset):
    """The number of standard splits of a UCI data set (20; protein 5)."""
    return 5 if dataset == "protein-tertiary-structure" else 20
