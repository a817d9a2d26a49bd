"""Coverage studies of probnn.bayes.glm: repeated simulated data sets, 90 % posterior intervals.

- Negative binomial (issue 22's criterion): the dispersion phi's central 90 % interval covers the
  true phi on at least 18 of 20 simulated data sets. 500 rows, two features, phi = 2.5, default
  priors, 4 chains x (500 + 500).
- Varying intercepts (40 groups, 2-14 rows each, Gaussian): the group scale's 90 % interval, on the
  same number of data sets (a repeat of the single-data-set unit test).

Every data set has the same shapes, so each study compiles its NUTS program once (the first fit)
and reuses it. With perfectly calibrated intervals the number covered out of 20 is
Binomial(20, 0.9): P(>= 18) = 0.68, so 17 is not by itself evidence of miscalibration (P(<= 17) =
0.32); the table also gives the mean interval position of the truth (its posterior quantile),
which should be spread uniformly.

    python benchmarks/glm_calibration.py [--datasets 20]
"""

import argparse
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine_description, markdown_table, write_result  # noqa: E402

PHI, TAU = 2.5, 0.8


def negative_binomial(seed):
    import probnn

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(500, 2))
    mu = np.exp(1.0 + x @ np.array([0.5, -0.3]))
    y = rng.negative_binomial(PHI, PHI / (PHI + mu))  # numpy: n = phi, p = phi / (phi + mu)
    nuts = probnn.bayes.NUTS(num_chains=4, num_samples=500, num_warmup=500, seed=seed, verbose=0)
    idata = probnn.bayes.glm(x, y, family="negative_binomial", sampler=nuts)
    return idata.posterior["phi"].values.ravel(), PHI, idata


def varying_intercepts(seed):
    import probnn

    rng = np.random.default_rng(seed)
    sizes = rng.integers(2, 15, 40)
    g = np.repeat(np.arange(40), sizes)
    padded = np.zeros(600, int)  # same shapes every time: 600 rows, groups cycled after the real ones
    padded[: len(g)] = g
    padded[len(g) :] = np.arange(600 - len(g)) % 40
    x = rng.normal(size=(600, 1))
    y = 1.0 + 0.5 * x[:, 0] + TAU * rng.standard_normal(40)[padded] + rng.standard_normal(600)
    nuts = probnn.bayes.NUTS(num_chains=4, num_samples=500, num_warmup=500, seed=seed, verbose=0)
    idata = probnn.bayes.glm(x, y, groups=padded, sampler=nuts)
    return idata.posterior["group_sd"].values.ravel(), TAU, idata


STUDIES = {"negative binomial: phi": negative_binomial, "varying intercepts: group_sd": varying_intercepts}


def run(study, datasets):
    covered, quantiles, divergent, seconds = 0, [], 0, []
    for seed in range(datasets):
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            draws, truth, idata = STUDIES[study](seed)
        seconds.append(time.perf_counter() - t)
        lo, hi = np.quantile(draws, [0.05, 0.95])
        covered += int(lo < truth < hi)
        quantiles.append(float(np.mean(draws < truth)))
        divergent += int(idata.sample_stats["diverging"].sum())
        print(
            f"{study} data set {seed}: 90% interval [{lo:.3f}, {hi:.3f}], truth {truth}, "
            f"{'covered' if lo < truth < hi else 'MISSED'}",
            flush=True,
        )
    return [
        study,
        f"{covered} / {datasets}",
        f"{np.mean(quantiles):.2f}",
        " ".join(f"{q:.2f}" for q in quantiles),
        str(divergent),
        f"{seconds[0]:.1f}",
        f"{np.median(seconds[1:]):.1f}" if datasets > 1 else "-",
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", type=int, default=20)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    rows = [run(study, args.datasets) for study in STUDIES]
    text = "\n".join(
        [
            "# probnn.bayes.glm: coverage of 90 % posterior intervals on simulated data",
            "",
            f"{args.datasets} simulated data sets per study (seeds 0-{args.datasets - 1}); NUTS, "
            f"4 chains x (500 warm-up + 500 draws), default priors. Negative binomial: 500 rows, "
            f"phi = {PHI}. Varying intercepts: 40 groups (2-14 rows, padded to 600 rows), group sd "
            f"{TAU}, Gaussian noise sd 1.",
            "",
            markdown_table(
                [
                    "parameter",
                    "covered by the 90 % interval",
                    "mean quantile of the truth",
                    "quantile of the truth per data set",
                    "divergent transitions",
                    "first fit s (compile)",
                    "later fits s (median)",
                ],
                rows,
            ),
            "",
            "Perfect calibration gives Binomial(20, 0.9) covered: P(>= 18) = 0.68, and quantiles of "
            "the truth spread uniformly on (0, 1), mean 0.5.",
            "",
            f"Load average (1 min) at the start: {load:.1f} on {os.cpu_count()} cores"
            + (" (a shared machine: the times are inflated)." if load > os.cpu_count() else "."),
            "",
            "## Machine",
            "",
            *machine_description(),
            "",
        ]
    )
    print(text)
    if not args.no_write:
        write_result("glm_calibration.md", text)


if __name__ == "__main__":
    main()
