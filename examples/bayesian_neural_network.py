"""A small Bayesian neural network with probnn.bayes: NUTS over every weight of a Keras model.

    python examples/bayesian_neural_network.py                          # built-in 1-D data
    python examples/bayesian_neural_network.py --data table.csv --target y --out figs

The model is Dense(--hidden, tanh) -> probnn.heads.NormalHead (input-dependent noise), with
Normal(0, 1) priors on the weights; inputs and target are standardised before sampling. Prints
arviz.summary, the worst r-hat and ESS (BNN posteriors are multimodal: a high r-hat across
chains is expected; the predictive is what to judge), LOO, and the held-out NLL and 90 %
coverage; saves a trace plot and the posterior predictive (bands over x for 1-D inputs, else
arviz.plot_ppc).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import parser, prepare, report, sampler, save_trace  # noqa: E402


def builtin_data(seed):
    """y = sin(x) + noise on x in [-3, -1] and [1, 3]: a gap in the middle, 120 rows."""
    import numpy as np

    rng = np.random.default_rng(seed)
    x = np.r_[rng.uniform(-3, -1, 60), rng.uniform(1, 3, 60)]
    return x[:, None], np.sin(x) + 0.2 * rng.normal(size=120), ["x"]


def main(argv=None):
    p = parser(__doc__.split("\n")[0], num_samples=500, num_warmup=500, out="bayes_bnn_out")
    p.add_argument("--hidden", type=int, default=8, help="hidden tanh units (default: 8)")
    p.add_argument("--max-tree-depth", type=int, default=8, help="NUTS tree depth limit (default: 8)")
    args, names, x_train, y_train, x_test, y_test, draws = prepare(p, argv, builtin_data)

    import arviz as az
    import keras
    import matplotlib.pyplot as plt
    import numpy as np

    import probnn
    from probnn.datasets.standardise import Standardisation

    scaling = Standardisation.fit(x_train, y_train)  # the training rows' statistics
    prep = scaling.standardise_inputs
    ym, ys = scaling.y_mean, scaling.y_std

    print(f"{len(y_train)} training rows, {len(y_test)} test rows, features {names}")
    keras.utils.set_random_seed(args.seed)
    model = keras.Sequential(
        [
            keras.Input((x_train.shape[1],)),
            keras.layers.Dense(args.hidden, activation="tanh", name="hidden"),
            probnn.heads.NormalHead(name="head"),
        ]
    )
    idata = probnn.bayes.sample(
        model,
        prep(x_train),
        scaling.standardise_targets(y_train),
        prior=1.0,
        sampler=sampler(args, max_tree_depth=args.max_tree_depth, posterior_predictive=True),
    )
    # The predictive is of standardised targets; report gives the test NLL in y's units.
    dist = probnn.predict_distribution(model, prep(x_test), posterior=idata, num_draws=draws)
    report(idata, dist, y_test, scaling=scaling)
    os.makedirs(args.out, exist_ok=True)
    save_trace(idata, os.path.join(args.out, "trace.png"), var_names=["head_bias"])
    path = os.path.join(args.out, "posterior_predictive.png")
    if x_train.shape[1] == 1:
        x = np.concatenate([x_train, x_test])
        grid = np.linspace(x.min() - 1, x.max() + 1, 200)[:, None]
        comps = probnn.predict_distribution(
            model, prep(grid), posterior=idata, num_draws=draws
        ).components_distribution
        ys_grid = comps.sample(4, seed=args.seed).numpy()[..., 0]  # (4, grid, draws)
        ys_grid = np.moveaxis(ys_grid, 1, 0).reshape(len(grid), -1) * ys + ym
        lo, mid, hi = np.quantile(ys_grid, [0.05, 0.5, 0.95], axis=1)
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.fill_between(grid[:, 0], lo, hi, alpha=0.3, label="90% posterior predictive")
        ax.plot(grid[:, 0], mid, label="median")
        ax.scatter(x_train[:, 0], y_train, s=8, c="k", label="training data")
        ax.scatter(x_test[:, 0], y_test, s=8, c="tab:red", label="test data")
        ax.set_xlabel(names[0])
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=80)
    else:
        az.plot_ppc(idata, num_pp_samples=100).figure.savefig(path, dpi=80)
    plt.close("all")
    print(f"saved {path}")


if __name__ == "__main__":
    main()
