"""Multilevel Poisson regression with probnn.bayes.glm: pooled, unpooled and partially pooled, by LOO.

    python examples/multilevel_regression.py                          # simulated data
    python examples/multilevel_regression.py --data d.csv --target count --group region

The built-in data are simulated: counts in 30 regions of very different sizes (2 to 40 rows),
one covariate, a log exposure offset and region effects with sd 0.5. Three models of the same
counts:

- pooled: one intercept for all regions (the region is ignored);
- unpooled: one intercept per region (region dummies as features, no sharing);
- partially pooled: varying intercepts `group_intercept ~ Normal(0, group_sd)`.

Prints the three LOO estimates side by side (arviz.compare), how the partially pooled region
effects sit between the pooled and the unpooled ones (small regions are pulled most), and the
predictive for a region the model has never seen; saves a posterior predictive check (PNG).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import load_csv, parser, sampler  # noqa: E402


def builtin_data(seed):
    """(x, counts, region labels, log exposure, feature names): 30 regions, 2-40 rows each."""
    import numpy as np

    rng = np.random.default_rng(seed)
    sizes = np.r_[rng.integers(2, 6, 15), rng.integers(20, 41, 15)]
    region = np.repeat(np.arange(30), sizes)
    effect = 0.5 * rng.standard_normal(30)
    x = rng.normal(size=(len(region), 1))
    exposure = rng.uniform(0.5, 2.0, len(region))
    counts = rng.poisson(exposure * np.exp(0.8 + 0.4 * x[:, 0] + effect[region]))
    return x, counts, region, np.log(exposure), ["x"]


def from_csv(args, error):
    """The same from a CSV: --group names the region column (no exposure)."""
    import numpy as np

    if not args.group:
        error("--data needs --group COLUMN (the grouping labels, numeric)")
    x, y, names = load_csv(args, error)
    if args.group not in names:
        error(f"--group {args.group!r} is not among the feature columns {names}")
    j = names.index(args.group)
    return np.delete(x, j, axis=1), y, x[:, j], None, names[:j] + names[j + 1 :]


def fit_three(x, y, region, offset, names, args):
    import numpy as np

    import probnn

    levels = np.unique(region)
    dummies = (region[:, None] == levels[1:][None]).astype(float)
    settings = dict(family="poisson", offset=offset)
    return {
        "pooled": probnn.bayes.glm(x, y, feature_names=names, sampler=sampler(args), **settings),
        "unpooled": probnn.bayes.glm(
            np.c_[x, dummies],
            y,
            feature_names=names + [f"region_{v}" for v in levels[1:]],
            sampler=sampler(args),
            **settings,
        ),
        "partially pooled": probnn.bayes.glm(
            x,
            y,
            groups=region,
            feature_names=names,
            sampler=sampler(args, posterior_predictive=True),
            **settings,
        ),
    }


def main(argv=None):
    p = parser(__doc__.split("\n")[0], num_samples=1000, num_warmup=1000, out="multilevel_out")
    p.add_argument("--group", help="the CSV column of group labels (with --data)")
    args = p.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    x, y, region, offset, names = builtin_data(args.seed) if args.data is None else from_csv(args, p.error)

    import arviz as az
    import matplotlib.pyplot as plt
    import numpy as np

    import probnn

    print(f"{len(y)} rows in {len(np.unique(region))} groups, features {names}")
    fits = fit_three(x, y, region, offset, names, args)
    partial = fits["partially pooled"]
    print(az.summary(partial, var_names=["intercept", "coef", "group_sd"]).to_string())
    print(f"divergent transitions: {int(partial.sample_stats['diverging'].sum())}")
    print("\nLOO comparison (higher elpd_loo is better):")
    print(az.compare(fits).to_string())

    post = partial.posterior
    levels = post["group_intercept"].coords["group"].values
    sizes = np.array([np.sum(region == v) for v in levels])
    effect = post["group_intercept"].mean(("chain", "draw")).values
    unpooled = fits["unpooled"].posterior["coef"].mean(("chain", "draw")).values[len(names) :]
    unpooled = np.r_[0.0, unpooled] - np.mean(np.r_[0.0, unpooled])  # centred like the effects
    for label, keep in (
        ("small groups", sizes < np.median(sizes)),
        ("large groups", sizes >= np.median(sizes)),
    ):
        ratio = np.mean(np.abs(effect[keep])) / np.mean(np.abs(unpooled[keep]))
        print(f"{label}: mean |group effect| partially pooled / unpooled = {ratio:.2f}")

    unseen = levels.max() + 1  # a region the model has not seen, labelled like the fitted ones
    new = probnn.bayes.glm_predictive(
        partial, np.zeros((2, x.shape[1])), groups=[levels[0], unseen], seed=args.seed
    )
    mean, sd = new.mean().numpy()[:, 0], new.stddev().numpy()[:, 0]
    print(
        f"\npredictive at x = 0, exposure 1: group {levels[0]}: mean {mean[0]:.2f}, sd "
        f"{sd[0]:.2f}; a new group: mean {mean[1]:.2f}, sd {sd[1]:.2f}"
    )
    os.makedirs(args.out, exist_ok=True)
    ax = az.plot_ppc(partial, num_pp_samples=50)
    path = os.path.join(args.out, "posterior_predictive.png")
    np.ravel(ax)[0].figure.savefig(path, dpi=80)
    plt.close("all")
    print(f"saved {path}")


if __name__ == "__main__":
    main()
