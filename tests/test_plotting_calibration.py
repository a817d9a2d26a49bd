"""The calibration figures draw what probnn.metrics computes (Figure API, no pyplot)."""

import numpy as np
import pytest
import tensorflow_probability as tfp

from probnn import metrics, plotting


@pytest.fixture
def data(rng):
    x = np.linspace(-2, 2, 300)
    return x, np.sin(x), np.full(300, 0.2), np.sin(x) + 0.3 * rng.normal(size=300)


def test_calibration_curve_and_pit_histogram_show_the_metrics(data):
    from matplotlib.figure import Figure

    x, mean, std, y = data
    fig = plotting.plot_calibration_curve((mean, std), y, label="model")
    assert isinstance(fig, Figure)
    curve = metrics.calibration_curve((mean, std), y)
    drawn = fig.axes[0].lines[1]
    np.testing.assert_allclose(drawn.get_ydata(), curve.observed.numpy())
    area = float(metrics.miscalibration_area((mean, std), y))
    assert f"(area {area:.3f})" in drawn.get_label()
    plotting.plot_calibration_curve((mean, 1.5 * std), y, ax=fig.axes[0], kind="interval")
    assert len(fig.axes[0].lines) == 3  # one diagonal, two models

    fig = plotting.plot_pit_histogram((mean, std), y, bins=10)
    heights = [p.get_height() for p in fig.axes[0].patches[-10:]]
    expected = np.histogram(metrics.pit((mean, std), y).numpy(), bins=10, range=(0, 1), density=True)[0]
    np.testing.assert_allclose(heights, expected)


def test_predictive_distribution_bands(data):
    x, mean, std, y = data
    fig = plotting.plot_predictive_distribution(x, (mean, std), levels=(0.9,), x_data=x, y_data=y)
    band = fig.axes[0].collections[-1].get_paths()[0].vertices
    upper = mean + 1.6448536269514722 * std
    assert np.isclose(band[:, 1].max(), upper.max(), rtol=1e-6)
    with pytest.raises(ValueError, match="plot_predictive_distribution: dist must hold one prediction per x"):
        plotting.plot_predictive_distribution(x[:10], (mean, std))


def test_reliability_diagram_bars_are_the_bins(rng):
    p = rng.uniform(size=1000)
    y = (rng.uniform(size=1000) < p**2).astype(int)
    dist = tfp.distributions.Bernoulli(probs=p)
    fig = plotting.plot_reliability_diagram(dist, y, num_bins=5)
    bars = [r.get_height() for r in fig.axes[0].patches]
    np.testing.assert_allclose(
        bars, np.nan_to_num(metrics.reliability_bins(dist, y, num_bins=5).accuracy.numpy())
    )
