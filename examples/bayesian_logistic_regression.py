"""Bayesian logistic regression with probnn.bayes.glm: NUTS against full-rank ADVI, held-out scores.

    python examples/bayesian_logistic_regression.py                     # scikit-learn's breast cancer data
    python examples/bayesian_logistic_regression.py --data d.csv --target label --out figs

The built-in data are scikit-learn's breast cancer data set (569 tumours, malignant or benign),
five of its features on their raw scale: the default priors are scaled to the data (rstanarm's
Normal(0, 2.5 / sd(x)) on each coefficient). Prints the priors used, arviz.summary, the worst
r-hat and ESS, LOO, the same posterior by full-rank ADVI (and how far its means are from NUTS's
in posterior sds), and the held-out log loss, Brier score and accuracy; saves a trace plot and
a posterior predictive check (PNG) in --out.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import parser, prepare, sampler, save_trace  # noqa: E402

FEATURES = ["mean radius", "mean texture", "mean smoothness", "mean concavity", "mean symmetry"]


def builtin_data(seed):
    """scikit-learn's breast cancer data: 569 rows, five raw features, 1 = malignant."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    columns = [list(data.feature_names).index(f) for f in FEATURES]
    return data.data[:, columns], 1.0 - data.target, [f.replace(" ", "_") for f in FEATURES]


def scores(dist, y):
    """Held-out log loss, Brier score and accuracy of the predictive probabilities."""
    import numpy as np

    prob = np.clip(dist.mean().numpy()[:, 0], 1e-12, 1 - 1e-12)
    log_loss = -np.mean(y * np.log(prob) + (1 - y) * np.log1p(-prob))
    return log_loss, np.mean((prob - y) ** 2), np.mean((prob > 0.5) == y)


def main(argv=None):
    p = parser(__doc__.split("\n")[0], num_samples=1000, num_warmup=1000, out="bayes_logit_out")
    p.add_argument(
        "--vi-steps",
        type=int,
        default=2000,
        help="optimisation steps of the full-rank ADVI fit (default: 2000)",
    )
    args, names, x_train, y_train, x_test, y_test, draws = prepare(p, argv, builtin_data)

    import arviz as az
    import matplotlib.pyplot as plt
    import numpy as np

    import probnn

    print(f"{len(y_train)} training rows, {len(y_test)} test rows, features {names}")
    idata = probnn.bayes.glm(
        x_train,
        y_train,
        family="bernoulli",
        feature_names=names,
        sampler=sampler(args, posterior_predictive=True),
    )
    print("priors:")
    probnn.bayes.prior_summary(idata)
    summary = az.summary(idata, var_names=["intercept", "coef"])
    print(summary.to_string())
    print(
        f"\nworst r-hat: {summary['r_hat'].max():.3f}; min bulk ESS: "
        f"{summary['ess_bulk'].min():.0f}; divergent transitions: "
        f"{int(idata.sample_stats['diverging'].sum())}"
    )
    print(f"\n{az.loo(idata)}")

    vi = probnn.bayes.glm(
        x_train,
        y_train,
        family="bernoulli",
        feature_names=names,
        sampler=probnn.bayes.VI(
            "fullrank",
            num_steps=args.vi_steps,
            num_chains=args.num_chains,
            num_samples=args.num_samples,
            seed=args.seed,
        ),
    )
    gap = [
        (vi.posterior[v].mean(("chain", "draw")) - idata.posterior[v].mean(("chain", "draw")))
        / idata.posterior[v].std(("chain", "draw"))
        for v in ("intercept", "coef")
    ]
    print(
        f"full-rank ADVI ({vi.attrs['fit_seconds']:.1f} s, Pareto k {vi.attrs['vi_pareto_k']:.2f})"
        f": largest |mean - NUTS mean| = "
        f"{max(float(np.abs(g).max()) for g in gap):.3f} NUTS posterior sds"
    )

    for label, fit in (("NUTS", idata), ("full-rank ADVI", vi)):
        dist = probnn.bayes.glm_predictive(fit, x_test, num_draws=draws)
        log_loss, brier, accuracy = scores(dist, y_test)
        print(
            f"test ({label}): log loss {log_loss:.4f}, Brier {brier:.4f}, "
            f"accuracy {accuracy:.3f} ({len(y_test)} held-out rows)"
        )
    os.makedirs(args.out, exist_ok=True)
    save_trace(idata, os.path.join(args.out, "trace.png"), var_names=["intercept", "coef"])
    ax = az.plot_ppc(idata, kind="scatter", num_pp_samples=50)
    path = os.path.join(args.out, "posterior_predictive.png")
    np.ravel(ax)[0].figure.savefig(path, dpi=80)
    plt.close("all")
    print(f"saved {path}")


if __name__ == "__main__":
    main()
