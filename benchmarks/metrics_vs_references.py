"""Time probnn.metrics against properscoring, scoringrules and uncertainty-toolbox on 10^6 predictions.

Arms (each also checked for agreement with its reference on the same inputs):

- CRPS of Normals: `probnn.metrics.crps((mean, std), y)` (TF, float64) against
  `properscoring.crps_gaussian` and `scoringrules.crps_normal` (NumPy).
- CRPS of 5-component Normal mixtures: against `scoringrules.crps_mixnorm`.
- CRPS of 50-member ensembles (10^4 predictions x 50 samples): against
  `properscoring.crps_ensemble`.
- Calibration curve (100 levels, central intervals): `probnn.metrics.calibration_curve`
  against uncertainty-toolbox's `get_proportion_lists_vectorized`, and the
  miscalibration area against `uncertainty_toolbox.metrics_calibration.miscalibration_area`.

The arms are interleaved (one repetition of every arm, then the next), the
median of the repetitions is reported, and the load average is recorded before
and after: on a shared machine the absolute times are noisy, the ratios measured
side by side less so.

Usage: python benchmarks/metrics_vs_references.py [--n 1000000] [--repeats 5]
"""

import argparse
import os
import time

import numpy as np
from _common import machine_description, markdown_table, write_result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import properscoring
    import scoringrules
    import tensorflow_probability as tfp
    import uncertainty_toolbox as uct

    from probnn import metrics

    tfd = tfp.distributions
    rng = np.random.default_rng(0)
    n = args.n
    mean, std = rng.normal(size=n), rng.uniform(0.5, 2.0, size=n)
    y = mean + std * rng.standard_t(5, size=n)
    k = 5
    w = rng.dirichlet(np.ones(k), size=n)
    m, s = rng.normal(size=(n, k)), rng.uniform(0.3, 1.5, size=(n, k))
    mixture = tfd.MixtureSameFamily(tfd.Categorical(probs=w), tfd.Normal(m, s))
    n_ens = n // 100  # properscoring loops in Python over ensembles without numba
    ens = rng.normal(size=(n_ens, 50))
    y_ens = rng.normal(size=n_ens)

    arms = {
        "CRPS Normal": [
            ("probnn", lambda: metrics.crps((mean, std), y, reduction="none").numpy()),
            ("properscoring", lambda: properscoring.crps_gaussian(y, mean, std)),
            ("scoringrules", lambda: scoringrules.crps_normal(y, mean, std)),
        ],
        f"CRPS mixture (K={k})": [
            ("probnn", lambda: metrics.crps(mixture, y, reduction="none").numpy()),
            ("scoringrules", lambda: scoringrules.crps_mixnorm(y, m, s, w)),
        ],
        f"CRPS ensemble ({n_ens:,} x 50)": [
            ("probnn", lambda: metrics.crps(ens.T, y_ens, reduction="none").numpy()),
            ("properscoring", lambda: properscoring.crps_ensemble(y_ens, ens)),
        ],
        "calibration curve (100 levels)": [
            ("probnn", lambda: metrics.calibration_curve((mean, std), y).observed.numpy()),
            (
                "uncertainty-toolbox",
                lambda: uct.metrics_calibration.get_proportion_lists_vectorized(mean, std, y)[1],
            ),
        ],
        "miscalibration area": [
            ("probnn", lambda: float(metrics.miscalibration_area((mean, std), y))),
            (
                "uncertainty-toolbox",
                lambda: uct.metrics_calibration.miscalibration_area(mean, std, y, vectorized=True),
            ),
        ],
    }

    # Agreement (and warm-up: TF traces and allocates on the first call).
    agreement = {}
    for task, impls in arms.items():
        outs = [np.asarray(f(), dtype=float) for _, f in impls]
        agreement[task] = max(float(np.max(np.abs(o - outs[0]))) for o in outs[1:])

    load_before = os.getloadavg()
    times = {(task, name): [] for task, impls in arms.items() for name, _ in impls}
    for _ in range(args.repeats):
        for task, impls in arms.items():
            for name, f in impls:
                start = time.perf_counter()
                f()
                times[(task, name)].append(time.perf_counter() - start)
    load_after = os.getloadavg()

    rows = []
    for task, impls in arms.items():
        ours = np.median(times[(task, "probnn")])
        for name, _ in impls:
            t = np.median(times[(task, name)])
            ratio = "1" if name == "probnn" else f"{t / ours:.2f}x"
            rows.append([task, name, f"{t * 1000:.1f}", ratio])
        rows.append([task, "max abs difference", f"{agreement[task]:.1e}", ""])

    text = "\n".join(
        [
            "# probnn.metrics against reference implementations",
            "",
            f"`python benchmarks/metrics_vs_references.py --n {n} --repeats {args.repeats}`: "
            f"{n:,} predictions (ensembles: {n_ens:,} x 50 samples), float64, median of "
            f"{args.repeats} interleaved repetitions after one warm-up call each.",
            "",
            *machine_description(),
            f"- Load average (1, 5, 15 min): before {load_before[0]:.1f}, {load_before[1]:.1f}, "
            f"{load_before[2]:.1f}; after {load_after[0]:.1f}, {load_after[1]:.1f}, {load_after[2]:.1f} "
            f"(2-core machine shared with other jobs: absolute times are noisy, compare the ratios)",
            "",
            "Ratio = reference time / probnn time (above 1: probnn is faster). The 'max abs difference' rows "
            "compare the outputs on the same inputs.",
            "",
            markdown_table(["task", "implementation", "median ms", "ratio"], rows),
            "",
        ]
    )
    write_result("metrics_vs_references.md", text)


if __name__ == "__main__":
    main()
