"""FlowHead versus MixtureNormalHead on a known conditional density (bimodal at some inputs, skewed at others).

Run from the repository root:

    python benchmarks/flow_head.py                       # 20,000 training rows, 2 seeds
    python benchmarks/flow_head.py --rows 5000 --seeds 1 --epochs 60

The data: x ~ Uniform(-1, 1) and, with w(x) = sigmoid(6x),

    p(y | x) = (1 - w) [½ N(-1 - 0.3x, 0.25²) + ½ N(1 + 0.3x, 0.25²)] + w SkewNormal(a=6, loc=-0.8 - 0.4x, scale=1.3)

so the density is bimodal for x < 0, right-skewed for x > 0, and a blend in
between. The true conditional NLL of the test rows is computed with scipy.

Both models share the body `Dense(64, tanh) -> Dense(64, tanh)` and differ only
in the head: `FlowHead(num_bins=8, num_layers=2)` (2·(3·8 - 1) + 2·2 = 50
parameters per row) and `MixtureNormalHead(17)` (3·17 = 51, the nearest
mixture size), so the two models have the same number of weights to within
one output unit. Each trains with `probnn.fit` (Adam 3e-3, batch 256,
`--epochs` epochs, the weights of the best validation NLL on a held-out 10 %
of the training rows restored at the end) and is scored on `--test-rows`
fresh rows. Reported: test NLL, its gap to the true NLL, the flow/mixture
ratio of the gaps, and the time of the first epoch (cold: tracing and XLA
compilation) and the median of the others (warm). Writes
benchmarks/results/flow_head.md.
"""

import argparse
import os
import sys
import time

import _common
import numpy as np


def sample(n, rng):
    """(x, y) from the known conditional density."""
    from scipy import stats

    x = rng.uniform(-1, 1, size=n)
    w = 1 / (1 + np.exp(-6 * x))
    skewed = rng.uniform(size=n) < w
    sign = rng.choice([-1.0, 1.0], size=n)
    bimodal = sign * (1 + 0.3 * x) + 0.25 * rng.standard_normal(n)
    skew = stats.skewnorm.rvs(6, loc=-0.8 - 0.4 * x, scale=1.3, random_state=rng)
    y = np.where(skewed, skew, bimodal)
    return x[:, None].astype("float32"), y[:, None].astype("float32")


def true_nll(x, y):
    """Mean of -log p(y | x) under the generating density (float64, scipy)."""
    from scipy import stats

    x, y = x[:, 0].astype(float), y[:, 0].astype(float)
    w = 1 / (1 + np.exp(-6 * x))
    centre = 1 + 0.3 * x
    bimodal = 0.5 * stats.norm.pdf(y, -centre, 0.25) + 0.5 * stats.norm.pdf(y, centre, 0.25)
    skew = stats.skewnorm.pdf(y, 6, loc=-0.8 - 0.4 * x, scale=1.3)
    return float(-np.mean(np.log((1 - w) * bimodal + w * skew)))


def build(kind, seed):
    import keras

    import probnn

    keras.utils.set_random_seed(seed)
    head = (
        probnn.heads.FlowHead(num_bins=8, num_layers=2)
        if kind == "flow"
        else probnn.heads.MixtureNormalHead(num_components=17)
    )
    model = keras.Sequential(
        [
            keras.Input((1,)),
            keras.layers.Dense(64, activation="tanh"),
            keras.layers.Dense(64, activation="tanh"),
            head,
        ]
    )
    return model, head


def train_and_score(kind, data, epochs, seed):
    import keras

    import probnn

    (x_tr, y_tr), (x_val, y_val), (x_te, y_te) = data
    model, head = build(kind, seed)
    stamps = []

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            stamps.append([time.perf_counter()])

        def on_epoch_end(self, epoch, logs=None):
            stamps[-1].append(time.perf_counter())

    best = keras.callbacks.EarlyStopping("val_loss", patience=epochs, restore_best_weights=True)
    probnn.fit(
        model,
        x_tr,
        y_tr,
        epochs=epochs,
        batch_size=256,
        optimizer=keras.optimizers.Adam(3e-3),
        validation_data=(x_val, y_val),
        callbacks=[EpochTimer(), best],
        verbose=0,
        seed=seed,
    )
    dist = probnn.predict_distribution(model, x_te)
    nll = float(probnn.metrics.nll(dist, y_te if kind == "mixture" else y_te[:, 0]))
    seconds = [end - start for start, end in stamps]
    return dict(
        kind=kind,
        seed=seed,
        params=model.count_params(),
        head_size=head.params_size,
        nll=nll,
        cold=seconds[0],
        warm=float(np.median(seconds[1:])),
    )


def report(results, truth, args, load):
    rows = []
    for kind in ("flow", "mixture"):
        runs = [r for r in results if r["kind"] == kind]
        nlls = [r["nll"] for r in runs]
        rows.append(
            [
                "FlowHead(8 bins, 2 layers)" if kind == "flow" else "MixtureNormalHead(17)",
                f"{runs[0]['head_size']} / {runs[0]['params']}",
                " ".join(f"{v:.4f}" for v in nlls),
                f"{np.mean(nlls) - truth:+.4f}",
                f"{np.mean([r['cold'] for r in runs]):.2f}",
                f"{np.mean([r['warm'] for r in runs]):.3f}",
            ]
        )
    flow = np.mean([r["nll"] for r in results if r["kind"] == "flow"])
    mix = np.mean([r["nll"] for r in results if r["kind"] == "mixture"])
    lines = [
        "# FlowHead versus MixtureNormalHead on a known conditional density",
        "",
        "Generated by `python benchmarks/flow_head.py " + " ".join(sys.argv[1:]) + "`; see the script's",
        "docstring for the density, the models and the protocol.",
        "",
        *_common.machine_description(),
        f"- Load average before the run (1, 5, 15 min): {load}; the machine is shared with other",
        "  sessions, so the times are indicative (the NLLs do not depend on the load).",
        f"- {args.rows} training rows (10 % of them held out for validation), {args.test_rows} test rows,",
        f"  {args.epochs} epochs, seeds {list(range(args.seeds))}.",
        "",
        f"True conditional NLL of the test rows: **{truth:.4f}** nats.",
        "",
        _common.markdown_table(
            [
                "head",
                "outputs / weights",
                "test NLL per seed",
                "mean gap to truth",
                "cold epoch (s)",
                "warm epoch (s)",
            ],
            rows,
        ),
        "",
        f"Flow minus mixture: {flow - mix:+.4f} nats; flow gap {flow - truth:+.4f} nats "
        f"(acceptance: within 0.03 of the truth and no worse than the mixture: "
        f"{'met' if flow - truth <= 0.03 and flow <= mix else 'NOT met'}).",
    ]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--test-rows", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--out", default=str(_common.RESULTS / "flow_head.md"))
    args = parser.parse_args()
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    rng = np.random.default_rng(2025)
    x, y = sample(args.rows, rng)
    n_val = args.rows // 10
    test = sample(args.test_rows, rng)
    data = ((x[n_val:], y[n_val:]), (x[:n_val], y[:n_val]), test)
    truth = true_nll(*test)
    results = []
    for seed in range(args.seeds):
        for kind in ("flow", "mixture"):
            result = train_and_score(kind, data, args.epochs, seed)
            print(result, flush=True)
            results.append(result)
    text = report(results, truth, args, load)
    print(text)
    with open(args.out, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
