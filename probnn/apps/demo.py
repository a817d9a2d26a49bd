"""The `probnn demo` job: heteroscedastic regression on built-in data, end to end.

Draws y = x³ + σ(x)·ε with σ(x) = 0.3 + 0.4x² (`probnn.datasets.heteroscedastic_cubic`),
trains a Normal-head MLP with `probnn.fit`, and reports test NLL, RMSE and the
coverage of the central 90 % predictive interval next to the same figures for
the true data-generating distribution; writes a PNG of the predictive mean
and interval over the data.
"""

import dataclasses
import pathlib

import numpy as np
from scipy import stats

INTERVAL_LEVEL = 0.9
FIGURE_NAME = "heteroscedastic.png"


@dataclasses.dataclass
class DemoResult:
    """Test metrics of the trained model and of the true distribution, and the figure path."""

    nll: float
    rmse: float
    coverage: float
    true_nll: float
    true_rmse: float
    true_coverage: float
    max_scale_error: float
    epochs: int
    figure: pathlib.Path


def run_demo(output_dir="probnn-demo", *, epochs=300, n_train=2000, n_test=2000, seed=0, verbose=0):
    """Train the demo model and write `heteroscedastic.png` (`FIGURE_NAME`) into `output_dir`.

    Args:
        output_dir: folder for the figure (created if missing).
        epochs: maximum training epochs (early stopping on validation NLL ends sooner).
        n_train, n_test: sizes of the training and test sets.
        seed: seed of the data and of the weights.
        verbose: progress bar verbosity passed to `probnn.fit`.

    Returns:
        A `DemoResult`.

    Example:
    >>> result = run_demo("/tmp/probnn-demo", epochs=5)  # doctest: +SKIP
    >>> 0.0 <= result.coverage <= 1.0  # doctest: +SKIP
    True
    """
    import keras

    from probnn.datasets import heteroscedastic_cubic

    keras.utils.set_random_seed(seed)
    x_train, y_train = heteroscedastic_cubic(n_train, seed=seed)
    x_val, y_val = heteroscedastic_cubic(n_train // 4, seed=seed + 1)
    x_test, y_test = heteroscedastic_cubic(n_test, seed=seed + 2)
    model, epochs_run = _train(x_train, y_train, x_val, y_val, epochs=epochs, seed=seed, verbose=verbose)
    grid_scale = _plot(model, x_train, y_train, pathlib.Path(output_dir))
    return _test_scores(model, x_test, y_test, grid_scale, epochs_run, pathlib.Path(output_dir) / FIGURE_NAME)


def _train(x_train, y_train, x_val, y_val, *, epochs, seed, verbose):
    """The Normal-head MLP trained with early stopping on the validation NLL: `(model, epochs run)`.

    Called after `keras.utils.set_random_seed(seed)`.
    """
    import keras

    import probnn

    head = probnn.heads.NormalHead()  # made first, as before: layer creation draws from the seeded RNG
    model = keras.Sequential(
        [
            keras.Input((1,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(64, activation="relu"),
            head,
        ],
        name="heteroscedastic_regressor",
    )
    history = probnn.fit(
        model,
        x_train,
        y_train,
        optimizer=keras.optimizers.Adam(3e-3),
        epochs=epochs,
        batch_size=128,
        validation_data=(x_val, y_val),
        callbacks=[keras.callbacks.EarlyStopping(monitor="val_loss", patience=30, restore_best_weights=True)],
        verbose=verbose,
        seed=seed,
    )
    return model, len(history.epoch)


def _plot(model, x_train, y_train, output_dir):
    """Write the figure of the predictive mean and interval on a grid in [-1.9, 1.9]; return the grid's scale."""
    import probnn
    from probnn.datasets import cubic_noise_scale
    from probnn.plotting import plot_predictive_intervals

    z = stats.norm.ppf(0.5 + INTERVAL_LEVEL / 2)
    grid = np.linspace(-1.9, 1.9, 200, dtype="float32")[:, None]
    grid_dist = probnn.predict_distribution(model, grid)
    grid_mean = grid_dist.mean().numpy()[:, 0]
    grid_scale = grid_dist.stddev().numpy()[:, 0]
    grid_true_scale = cubic_noise_scale(grid[:, 0])
    output_dir.mkdir(parents=True, exist_ok=True)
    fig = plot_predictive_intervals(
        grid,
        grid_mean,
        grid_mean - z * grid_scale,
        grid_mean + z * grid_scale,
        x_data=x_train,
        y_data=y_train,
        truth=(grid[:, 0] ** 3, grid[:, 0] ** 3 - z * grid_true_scale, grid[:, 0] ** 3 + z * grid_true_scale),
        level=INTERVAL_LEVEL,
        title="probnn demo: y = x³ + (0.3 + 0.4x²)·ε, NormalHead MLP",
    )
    fig.savefig(output_dir / FIGURE_NAME, dpi=120)
    return grid_scale


def _test_scores(model, x_test, y_test, grid_scale, epochs_run, figure_path):
    """The `DemoResult`: the model's test NLL, RMSE and coverage next to the true distribution's."""
    import probnn
    from probnn.datasets import cubic_noise_scale

    dist = probnn.predict_distribution(model, x_test)
    mean = dist.mean().numpy()[:, 0]
    scale = dist.stddev().numpy()[:, 0]
    y = y_test[:, 0].astype(np.float64)
    z = stats.norm.ppf(0.5 + INTERVAL_LEVEL / 2)
    true_mean = x_test[:, 0].astype(np.float64) ** 3
    true_scale = cubic_noise_scale(x_test[:, 0])
    grid = np.linspace(-1.9, 1.9, 200, dtype="float32")

    def coverage(centre, width):
        return float(np.mean(np.abs(y - centre) <= z * width))

    return DemoResult(
        nll=float(-np.mean(dist.log_prob(y_test).numpy())),
        rmse=float(np.sqrt(np.mean((y - mean) ** 2))),
        coverage=coverage(mean, scale),
        true_nll=float(-np.mean(stats.norm.logpdf(y, true_mean, true_scale))),
        true_rmse=float(np.sqrt(np.mean((y - true_mean) ** 2))),
        true_coverage=coverage(true_mean, true_scale),
        max_scale_error=float(np.max(np.abs(grid_scale / cubic_noise_scale(grid) - 1.0))),
        epochs=epochs_run,
        figure=figure_path,
    )


def format_report(result):
    """The demo's result as a small text table."""
    rows = [
        ("test NLL (nats)", result.nll, result.true_nll),
        ("test RMSE", result.rmse, result.true_rmse),
        (f"{INTERVAL_LEVEL:.0%} interval coverage", result.coverage, result.true_coverage),
    ]
    lines = [f"{'metric':<24}{'model':>10}{'truth':>10}"]
    lines += [f"{name:<24}{model:>10.3f}{truth:>10.3f}" for name, model, truth in rows]
    lines.append(
        f"max |σ_model/σ_true - 1| on [-1.9, 1.9]: {result.max_scale_error:.1%}"
        f"  (trained {result.epochs} epochs)"
    )
    lines.append(f"figure: {result.figure}")
    return "\n".join(lines)
