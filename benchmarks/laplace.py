"""Last-layer KFAC Laplace with marglik: its cost against training, on 10,000 x 16 rows and a 2x256 network.

What a user would otherwise do to get epistemic uncertainty from a trained
network is train more (an ensemble: M more trainings). So the reference is
the cost of 10 training epochs of the same network with `probnn.fit`
(batch 128, Adam), and the table gives Laplace's phases as a ratio to it:

- the Jacobian/GGN pass over the data (`prior_precision=1.0`),
- the same plus the evidence maximisation in prior precision and noise
  (`prior_precision="marglik"`), and the gradient left at the maximum,
- the linearised predictive at 10,000 rows,

each cold (first call in the process: tracing included) and warm (again, on
the same model). laplace-torch is not run (torch is not installed here).

    python benchmarks/laplace.py            # 10,000 rows (about a minute on 2 quiet cores)
    python benchmarks/laplace.py --rows 2000
"""

import argparse
import os
import time

import _common
import keras
import numpy as np

import probnn


def _data(rows, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 16)).astype("float32")
    w = rng.normal(size=(16, 1)) / 4
    y = np.sin(x @ w) + 0.5 * np.tanh(x[:, :1] * x[:, 1:2]) + 0.1 * rng.normal(size=(rows, 1))
    return x, y.astype("float32")


def _model():
    return keras.Sequential(
        [
            keras.Input((16,)),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(256, activation="relu"),
            probnn.heads.NormalHead(scale="shared"),
        ]
    )


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    x, y = _data(args.rows)
    keras.utils.set_random_seed(0)
    model = _model()
    fit = lambda: probnn.fit(
        model, x, y, epochs=10, batch_size=128, verbose=0, seed=0, optimizer=keras.optimizers.Adam(1e-3)
    )
    train_cold, _ = _timed(fit)
    train_warm, _ = _timed(fit)
    rows = [("10 training epochs (probnn.fit, batch 128)", train_cold, train_warm, "")]
    pass_only = lambda: probnn.bayes.laplace(model, x, y, hessian="kron", prior_precision=1.0)
    marglik = lambda: probnn.bayes.laplace(model, x, y, hessian="kron", prior_precision="marglik")
    cold, _ = _timed(pass_only)
    warm, _ = _timed(pass_only)
    rows.append(("Laplace GGN pass (last layer, KFAC)", cold, warm, ""))
    cold, _ = _timed(marglik)
    warm, la = _timed(marglik)
    grad = np.abs(la.log_marginal_likelihood_gradient()).max()
    rows.append(
        (
            "Laplace pass + marglik (prior and noise)",
            cold,
            warm,
            f"prior {la.prior_precision:.3g}, noise {la.noise_scale:.3g}, |grad| {grad:.1e}",
        )
    )
    predict = lambda: probnn.predict_distribution(model, x, posterior=la, seed=0)
    cold, _ = _timed(predict)
    warm, _ = _timed(predict)
    rows.append((f"linearised predictive at {args.rows} rows", cold, warm, ""))
    table = _common.markdown_table(
        ["step", "cold (s)", "warm (s)", "cold / training cold", "warm / training warm", "note"],
        [
            (name, f"{c:.2f}", f"{w:.2f}", f"{c / train_cold:.2f}", f"{w / train_warm:.2f}", note)
            for name, c, w, note in rows
        ],
    )
    load = os.getloadavg()
    text = "\n".join(
        [
            "# Last-layer KFAC Laplace with marglik against training",
            "",
            (
                f"{args.rows} rows x 16 features, 16-256-256-NormalHead(scale='shared') (ReLU), float32; "
                "Laplace on the head's 257 x 1 projection. Cold: first call in the process "
                "(tracing and compilation included); warm: the same call again."
            ),
            "",
            *_common.machine_description(),
            f"- Load average at the end (1/5/15 min): {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}"
            + (
                " -- the machine was SHARED and busy: absolute times are inflated, compare ratios"
                if load[0] > 2
                else ""
            ),
            "",
            table,
            "",
        ]
    )
    _common.write_result("laplace.md" if args.rows == 10_000 else f"laplace_{args.rows}.md", text)


if __name__ == "__main__":
    main()
