"""What the two Bayesian example scripts share: arguments, data, report and figures."""

import argparse
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, REPO)


def parser(description, num_samples, num_warmup, out):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--data", help="CSV file with a header row (default: built-in data)")
    p.add_argument("--target", help="the CSV column to predict (required with --data)")
    p.add_argument("--features", help="comma-separated CSV columns to use (default: all others)")
    p.add_argument("--out", default=out, help=f"directory for the figures (default: {out})")
    p.add_argument("--num-chains", type=int, default=4, help="MCMC chains (default: 4)")
    p.add_argument(
        "--num-samples", type=int, default=num_samples, help=f"draws per chain (default: {num_samples})"
    )
    p.add_argument(
        "--num-warmup", type=int, default=num_warmup, help=f"warm-up steps per chain (default: {num_warmup})"
    )
    p.add_argument(
        "--test-fraction",
        type=float,
        default=0.25,
        help="share of rows held out for the test NLL and coverage (default: 0.25)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    return p


def load_csv(args, error):
    """(x, y, feature_names) from --data/--target/--features, or None without --data.

    The file is read by `probnn fit`'s reader (`probnn.apps.tabular.read_table`);
    rows with an empty, NaN or infinite cell in a used column are dropped (and
    counted), text that is not a number is an error.
    """
    if args.data is None:
        if args.target or args.features:
            error("--target and --features need --data")
        return None
    if not args.target:
        error("--data needs --target COLUMN")
    import numpy as np

    from probnn.apps.tabular import TableError, read_table

    try:
        table = read_table(args.data, owner="--data")
    except TableError as err:
        error(str(err))
    columns = table.columns
    if args.target not in columns:
        error(f"--target {args.target!r} is not a column of {args.data} (columns: {columns})")
    features = args.features.split(",") if args.features else [c for c in columns if c != args.target]
    missing = [c for c in features if c not in columns]
    if missing or not features:
        error(f"--features: {missing or 'none given'} not among the columns {columns}")
    try:
        x = table.numeric(features, "--data", missing="nan")
        y = table.numeric([args.target], "--data", missing="nan")[:, 0]
    except TableError as err:
        error(str(err))
    keep = np.isfinite(x).all(axis=1) & np.isfinite(y)
    if not keep.all():
        print(f"dropped {int((~keep).sum())} rows with missing values")
    return x[keep], y[keep], features


def split(x, y, fraction, seed):
    """`(x_train, y_train, x_test, y_test)`: a shuffled `fraction` of the rows held out for testing."""
    from probnn.datasets.standardise import shuffled_split

    if not 0 < fraction < 1:
        raise SystemExit(f"--test-fraction must be in (0, 1), got {fraction}")
    test, train = shuffled_split(len(y), (fraction,), seed)
    return x[train], y[train], x[test], y[test]


def prepare(p, argv, builtin_data):
    """Parse the arguments, load the data and split it: `(args, names, x_train, y_train,
    x_test, y_test, draws)`, with matplotlib set to draw into files (Agg).

    `builtin_data(seed)` gives `(x, y, names)` when no `--data` is given; `draws`
    is the number of posterior draws the predictive uses (at most 500).
    """
    args = p.parse_args(argv)
    data = load_csv(args, p.error)
    import matplotlib

    matplotlib.use("Agg")
    x, y, names = data if data is not None else builtin_data(args.seed)
    draws = min(500, args.num_chains * args.num_samples)
    return (args, names, *split(x, y, args.test_fraction, args.seed), draws)


def sampler(args, **settings):
    """The `probnn.bayes.NUTS` settings of the command line (chains, draws, warm-up, seed)."""
    import probnn

    return probnn.bayes.NUTS(
        num_chains=args.num_chains,
        num_samples=args.num_samples,
        num_warmup=args.num_warmup,
        seed=args.seed,
        **settings,
    )


def report(idata, dist_test, y_test, var_names=None, scaling=None):
    """Print arviz.summary, the worst r-hat and ESS, LOO, the test NLL and 90 % coverage.

    With `scaling` (a `probnn.datasets.standardise.Standardisation`), `dist_test`
    predicts standardised targets and the NLL is reported in `y_test`'s units.
    """
    import arviz as az
    import numpy as np

    import probnn

    summary = az.summary(idata, var_names=var_names)
    print(summary.to_string())
    worst = summary["r_hat"].idxmax()
    print(
        f"\nworst r-hat: {summary['r_hat'].max():.3f} ({worst}); "
        f"min bulk ESS: {summary['ess_bulk'].min():.0f} ({summary['ess_bulk'].idxmin()}); "
        f"min tail ESS: {summary['ess_tail'].min():.0f}"
    )
    print(f"divergent transitions: {int(idata.sample_stats['diverging'].sum())}")
    print(f"\n{az.loo(idata)}")
    if scaling is None:
        y_col = np.asarray(y_test, "float32")[:, None]
        nll = float(probnn.metrics.nll(dist_test, y_col))
    else:
        y_col = scaling.standardise_targets(y_test)[:, None]
        nll, _ = scaling.nll_and_rmse(dist_test, y_test)
    cover = float(probnn.metrics.coverage(dist_test, y_col, level=0.9))
    print(f"test NLL: {nll:.4f} per example ({len(y_test)} held-out rows)")
    print(f"test coverage of the 90% predictive interval: {cover:.3f}")
    return summary


def save_trace(idata, path, var_names=None):
    import arviz as az
    import matplotlib.pyplot as plt

    axes = az.plot_trace(idata, var_names=var_names, compact=True)
    axes.ravel()[0].figure.tight_layout()
    axes.ravel()[0].figure.savefig(path, dpi=80)
    plt.close("all")
    print(f"saved {path}")
