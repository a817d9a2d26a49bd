"""Bayesian linear regression with probnn.bayes: NUTS, arviz diagnostics, predictive checks.

    python examples/bayesian_linear_regression.py                       # built-in data
    python examples/bayesian_linear_regression.py --data houses.csv --target price --out figs

Prints arviz.summary, the worst r-hat and ESS, LOO, and the held-out NLL and 90 % interval
coverage; saves a trace plot and a posterior predictive check (PNG) in --out.
The built-in data are on their raw scale (an intercept of 26, a slope of 0.06 per square metre):
the default priors are scaled to the data, so the posterior is what the data say.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import parser, prepare, report, sampler, save_trace  # noqa: E402


def builtin_data(seed):
    """Flat prices: 26 + 0.06 * size - 0.4 * age + noise (raw units), 300 rows."""
    import numpy as np

    rng = np.random.default_rng(seed)
    size = rng.uniform(30, 250, 300)
    age = rng.uniform(0, 60, 300)
    price = 26 + 0.06 * size - 0.4 * age + rng.normal(0, 3.0, 300)
    return np.column_stack([size, age]), price, ["size_m2", "age_years"]


def main(argv=None):
    p = parser(__doc__.split("\n")[0], num_samples=1000, num_warmup=1000, out="bayes_lr_out")
    p.add_argument(
        "--likelihood", choices=["normal", "studentt"], default="normal", help="noise model (default: normal)"
    )
    args, names, x_train, y_train, x_test, y_test, draws = prepare(p, argv, builtin_data)

    import arviz as az
    import matplotlib.pyplot as plt

    import probnn

    print(f"{len(y_train)} training rows, {len(y_test)} test rows, features {names}")
    idata = probnn.bayes.linear_regression(
        x_train,
        y_train,
        feature_names=names,
        likelihood=args.likelihood,
        sampler=sampler(args, posterior_predictive=True),
    )
    variables = ["intercept", "coef", "sigma"] + (["nu"] if args.likelihood == "studentt" else [])
    report(idata, probnn.bayes.linear_predictive(idata, x_test, num_draws=draws), y_test, var_names=variables)
    os.makedirs(args.out, exist_ok=True)
    save_trace(idata, os.path.join(args.out, "trace.png"), var_names=variables)
    ax = az.plot_ppc(idata, num_pp_samples=100)
    path = os.path.join(args.out, "posterior_predictive.png")
    ax.figure.savefig(path, dpi=80)
    plt.close("all")
    print(f"saved {path}")


if __name__ == "__main__":
    main()
