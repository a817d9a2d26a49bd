"""probnn.sklearn on scikit-learn's diabetes data: 5-fold NLL and 90 % coverage vs NGBoost and BayesianRidge.

Four probabilistic regressors, each scored on the same 5 folds (KFold, shuffled, seed 0) of
the 442 rows x 10 features:

  ProbabilisticRegressor()            probnn's defaults (64-64-Normal, early stopping)
  ProbabilisticRegressor(members=5)   a deep ensemble of five
  NGBRegressor()                      NGBoost's defaults (Normal, 500 boosting stages)
  BayesianRidge()                     scikit-learn's Bayesian linear regression (return_std)

Per model: the mean over folds of the test NLL (nats per row, the target's units), the share
of test targets inside the central 90 % interval and its mean width, RMSE, and the fit time
of the first fold (cold: includes probnn's tracing / XLA compilation) and the median of
the four later folds (warm). The spread is the standard error over the 5 folds.

Usage:  python benchmarks/sklearn_diabetes.py [--folds 5]   (needs the bench extra: ngboost)
Writes benchmarks/results/sklearn_diabetes.md.
"""

import argparse
import os
import time

import _common  # noqa: F401  (sys.path, TF log level)
import numpy as np
import scipy.stats
from _common import machine_description, markdown_table, write_result

LEVEL = 0.9


def _probnn(members):
    from probnn.sklearn import ProbabilisticRegressor, nll_scorer

    def scores(model, x, y):
        lower, upper = model.predict_interval(x, confidence=LEVEL).T
        return -nll_scorer(model, x, y), lower, upper, model.predict(x)

    return lambda: ProbabilisticRegressor(members=members, random_state=0), scores


def _ngboost():
    from ngboost import NGBRegressor

    def scores(model, x, y):
        dist = model.pred_dist(x)
        tail = (1 - LEVEL) / 2
        return (-np.mean(dist.logpdf(y)), dist.dist.ppf(tail), dist.dist.ppf(1 - tail), dist.params["loc"])

    return lambda: NGBRegressor(verbose=False, random_state=0), scores


def _bayesian_ridge():
    from sklearn.linear_model import BayesianRidge

    def scores(model, x, y):
        mean, std = model.predict(x, return_std=True)
        tail = (1 - LEVEL) / 2
        return (
            -np.mean(scipy.stats.norm.logpdf(y, mean, std)),
            scipy.stats.norm.ppf(tail, mean, std),
            scipy.stats.norm.ppf(1 - tail, mean, std),
            mean,
        )

    return BayesianRidge, scores


MODELS = {
    "probnn ProbabilisticRegressor()": lambda: _probnn(1),
    "probnn ProbabilisticRegressor(members=5)": lambda: _probnn(5),
    "NGBoost NGBRegressor()": _ngboost,
    "scikit-learn BayesianRidge()": _bayesian_ridge,
}


def evaluate(make, scores, folds, x, y):
    rows = []
    for train, test in folds:
        model = make()
        started = time.perf_counter()
        model.fit(x[train], y[train])
        seconds = time.perf_counter() - started
        nll, lower, upper, mean = scores(model, x[test], y[test])
        inside = (y[test] >= lower) & (y[test] <= upper)
        rows.append(
            dict(
                nll=float(nll),
                coverage=float(np.mean(inside)),
                width=float(np.mean(upper - lower)),
                rmse=float(np.sqrt(np.mean((mean - y[test]) ** 2))),
                seconds=seconds,
            )
        )
    return rows


def _mean_se(values):
    values = np.asarray(values)
    return f"{values.mean():.3f} ± {values.std(ddof=1) / np.sqrt(len(values)):.3f}"


def _versions():
    from importlib.metadata import version

    return ", ".join(f"{name} {version(name)}" for name in ("scikit-learn", "ngboost", "keras"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import KFold

    x, y = load_diabetes(return_X_y=True)
    folds = list(KFold(args.folds, shuffle=True, random_state=0).split(x))
    load_before = os.getloadavg()[0]
    table, results = [], {}
    for name, setup in MODELS.items():
        make, scores = setup()
        runs = evaluate(make, scores, folds, x, y)
        results[name] = runs
        seconds = [r["seconds"] for r in runs]
        table.append(
            [
                name,
                _mean_se([r["nll"] for r in runs]),
                _mean_se([r["coverage"] for r in runs]),
                f"{np.mean([r['width'] for r in runs]):.1f}",
                f"{np.mean([r['rmse'] for r in runs]):.1f}",
                f"{seconds[0]:.3g}",
                f"{np.median(seconds[1:]):.3g}",
            ]
        )
        print(name, table[-1][1:], flush=True)
    load_after = os.getloadavg()[0]
    reference = np.mean([r["nll"] for r in results["scikit-learn BayesianRidge()"]])
    ratios = [
        f"- {name}: NLL {np.mean([r['nll'] for r in runs]) - reference:+.3f} nats per row "
        "against BayesianRidge"
        for name, runs in results.items()
        if name != "scikit-learn BayesianRidge()"
    ]
    text = "\n".join(
        [
            "# probnn.sklearn on the diabetes data",
            "",
            f"scikit-learn's diabetes data (442 rows, 10 features, target in its own units), "
            f"{args.folds}-fold cross-validation (KFold, shuffled, seed 0), every model on the same "
            "folds with its defaults. NLL: mean negative log-likelihood of the test targets (nats "
            "per row, lower is better); coverage and width: the central 90 % predictive interval; "
            "± is the standard error over the folds. Fit time: the first fold (cold: probnn's "
            "tracing and compilation included) and the median of the other folds (warm).",
            "",
            markdown_table(
                ["model", "NLL", "90 % coverage", "90 % width", "RMSE", "fit cold (s)", "fit warm (s)"], table
            ),
            "",
            *ratios,
            "",
            f"Load average (1 min) before / after: {load_before:.1f} / {load_after:.1f} on "
            f"{os.cpu_count()} cores"
            + (
                " — a shared, heavily loaded machine: the times are "
                "inflated and noisy, the scores are not affected."
                if max(load_before, load_after) > os.cpu_count()
                else "."
            ),
            "",
            *machine_description(),
            f"- {_versions()}",
            "",
        ]
    )
    write_result("sklearn_diabetes.md", text)


if __name__ == "__main__":
    main()
