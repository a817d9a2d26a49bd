"""Matplotlib figures for predictive distributions.

Figures are built with `matplotlib.figure.Figure` directly, not pyplot, so no
GUI backend is started and the functions work on headless machines.
"""

import numpy as np

from probnn._validation import same_length


def plot_predictive_intervals(
    x, mean, lower, upper, *, x_data=None, y_data=None, truth=None, level=0.9, ax=None, title=None
):
    """Plot a 1-D predictive mean with a central interval band.

    Args:
        x: grid of inputs, shape `(n,)` or `(n, 1)`, sorted.
        mean, lower, upper: predictive mean and interval bounds on the grid.
        x_data, y_data: optional observed points to scatter.
        truth: optional `(mean, lower, upper)` of the true distribution on the grid.
        level: the interval's probability, for the legend.
        ax: a matplotlib Axes to draw on; a new Figure is made if omitted.
        title: optional axes title.

    Returns:
        The matplotlib `Figure`.

    Example:
    >>> import numpy as np
    >>> x = np.linspace(-1, 1, 50)
    >>> fig = plot_predictive_intervals(x, x, x - 1, x + 1)
    >>> len(fig.axes)
    1
    """
    from matplotlib.figure import Figure

    x, mean, lower, upper = (np.ravel(np.asarray(a, dtype=float)) for a in (x, mean, lower, upper))
    same_length("plot_predictive_intervals", {"x": x, "mean": mean, "lower": lower, "upper": upper})
    if ax is None:
        fig = Figure(figsize=(7, 4.5), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    if x_data is not None and y_data is not None:
        ax.scatter(np.ravel(x_data), np.ravel(y_data), s=4, alpha=0.3, color="0.4", label="data")
    ax.fill_between(x, lower, upper, alpha=0.3, color="C0", label=f"{level:.0%} interval")
    ax.plot(x, mean, color="C0", label="predictive mean")
    if truth is not None:
        t_mean, t_lower, t_upper = (np.ravel(np.asarray(a, dtype=float)) for a in truth)
        ax.plot(x, t_mean, "k--", lw=1, label="true mean")
        ax.plot(x, t_lower, "k:", lw=1, label=f"true {level:.0%} interval")
        ax.plot(x, t_upper, "k:", lw=1)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    if title:
        ax.set_title(title)
    ax.legend(loc="upper left", fontsize="small")
    return fig


def _axes(ax, figsize=(4.5, 4)):
    from matplotlib.figure import Figure

    if ax is None:
        fig = Figure(figsize=figsize, layout="constrained")
        return fig, fig.add_subplot()
    return ax.figure, ax


def plot_predictive_distribution(
    x, dist, *, levels=(0.5, 0.9), x_data=None, y_data=None, ax=None, label="predictive", title=None
):
    """Plot the predictive mean of a 1-D input with central interval bands.

    Args:
        x: sorted 1-D inputs, shape `(n,)` or `(n, 1)`.
        dist: the predictive at `x` (anything `probnn.metrics` accepts:
            a head's distribution, a predictive mixture, `(mean, stddev)`,
            samples or a recalibrated distribution).
        levels: probabilities of the central bands, drawn from widest to narrowest.
        x_data, y_data: optional observed points to scatter.
        ax: a matplotlib Axes to draw on; a new Figure is made if omitted.
        label: legend label of the mean line.
        title: optional axes title.

    Returns:
        The matplotlib `Figure`.

    Example:
    >>> import numpy as np
    >>> x = np.linspace(-1, 1, 20)
    >>> fig = plot_predictive_distribution(x, (np.sin(x), 0.1 + 0 * x))
    >>> len(fig.axes[0].collections)
    2
    """
    from probnn import metrics

    x = np.ravel(np.asarray(x, dtype=float))
    pred, _ = metrics.as_predictive(dist, owner="plot_predictive_distribution")
    if int(np.prod(pred.batch_shape)) != x.size:
        raise ValueError(
            f"plot_predictive_distribution: dist must hold one prediction per x ({x.size}), "
            f"got batch shape {tuple(pred.batch_shape)}"
        )
    fig, ax = _axes(ax, (7, 4.5))
    if x_data is not None and y_data is not None:
        ax.scatter(np.ravel(x_data), np.ravel(y_data), s=4, alpha=0.3, color="0.4", label="data")
    line = ax.plot(x, np.ravel(pred.mean()), label=f"{label} mean")[0]
    for i, level in enumerate(sorted(levels, reverse=True)):
        lower, upper = metrics.interval(pred, level)
        ax.fill_between(
            x,
            np.ravel(lower),
            np.ravel(upper),
            color=line.get_color(),
            alpha=0.15 + 0.15 * i,
            lw=0,
            label=f"{label} {level:.0%}",
        )
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    if title:
        ax.set_title(title)
    ax.legend(loc="upper left", fontsize="small")
    return fig


def plot_calibration_curve(
    dist=None, y=None, *, curve=None, kind="interval", num_levels=100, ax=None, label=None, title=None
):
    """Plot observed against expected proportions, with the miscalibration area shaded.

    Call it again with `ax=fig.axes[0]` to overlay another model (or the same
    model after recalibration).

    Args:
        dist, y: the predictive and the targets (see `probnn.metrics.calibration_curve`).
        curve: instead of `dist` and `y`, a curve already measured: `(expected, observed)`
            arrays (e.g. the coverage of a calibrator's intervals at a grid of levels).
        kind: "interval" (central intervals) or "quantile".
        num_levels: number of levels from 0 to 1 (with `dist` and `y`).
        ax: a matplotlib Axes to draw on; a new Figure is made if omitted.
        label: legend label; the miscalibration area is appended.
        title: optional axes title.

    Returns:
        The matplotlib `Figure`.

    Example:
    >>> import numpy as np
    >>> y = np.random.default_rng(0).normal(size=500)
    >>> fig = plot_calibration_curve((np.zeros(500), np.full(500, 0.5)), y, label="over-confident")
    >>> fig.axes[0].get_xlabel()
    'expected proportion in interval'
    >>> levels = np.linspace(0.01, 0.99, 99)
    >>> _ = plot_calibration_curve(curve=(levels, levels**2), ax=fig.axes[0], label="measured")
    >>> len(fig.axes[0].lines)
    3
    """
    from probnn import metrics

    if (curve is None) == (dist is None or y is None):
        raise ValueError("plot_calibration_curve: pass either dist and y, or curve=(expected, observed)")
    if curve is None:
        curve = metrics.calibration_curve(dist, y, num_levels=num_levels, kind=kind)
        curve = (curve.expected.numpy(), curve.observed.numpy())
    expected, observed = (np.ravel(np.asarray(a, dtype=float)) for a in curve)
    same_length("plot_calibration_curve", {"expected": expected, "observed": observed})
    area = float(metrics.area_between(expected, observed))
    fig, ax = _axes(ax)
    if not ax.lines:
        ax.plot([0, 1], [0, 1], color="0.5", ls="--", lw=1, label="ideal")
    text = f"area {area:.3f}" if label is None else f"{label} (area {area:.3f})"
    line = ax.plot(expected, observed, label=text)[0]
    ax.fill_between(expected, expected, observed, color=line.get_color(), alpha=0.15, lw=0)
    noun = "in interval" if kind == "interval" else "below quantile"
    ax.set_xlabel(f"expected proportion {noun}")
    ax.set_ylabel(f"observed proportion {noun}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    if title:
        ax.set_title(title)
    ax.legend(loc="upper left", fontsize="small")
    return fig


def plot_pit_histogram(dist, y, *, bins=20, ax=None, label=None, title=None):
    """Histogram of PIT values, flat at 1 for calibrated predictions.

    A U shape means over-confidence, a hump under-confidence, a slope bias.
    The grey band is the 95 % range of a bin's height under calibration
    (binomial, normal approximation).

    Example:
    >>> import numpy as np
    >>> y = np.random.default_rng(0).normal(size=500)
    >>> fig = plot_pit_histogram((np.zeros(500), np.ones(500)), y)
    >>> len(fig.axes[0].patches) >= 20
    True
    """
    from probnn import metrics

    u = np.ravel(np.asarray(metrics.pit(dist, y)))
    fig, ax = _axes(ax)
    n = u.size
    p = 1.0 / bins
    band = 1.96 * np.sqrt(p * (1 - p) / n) / p
    ax.axhspan(1 - band, 1 + band, color="0.85", label="95% under calibration")
    ax.axhline(1.0, color="0.5", ls="--", lw=1)
    ax.hist(u, bins=bins, range=(0, 1), density=True, alpha=0.6, edgecolor="white", label=label)
    ax.set_xlabel("PIT value F(y)")
    ax.set_ylabel("density")
    ax.set_xlim(0, 1)
    if title:
        ax.set_title(title)
    ax.legend(loc="upper center", fontsize="small")
    return fig


def plot_reliability_diagram(dist, y, *, num_bins=10, ax=None, label=None, title=None):
    """Reliability diagram of class probabilities: accuracy against confidence per bin.

    Bars show each bin's observed accuracy (top-label for a Categorical, the
    frequency of 1s for a Bernoulli); the diagonal is perfect calibration; the
    legend gives the expected calibration error.

    Example:
    >>> import numpy as np, tensorflow_probability as tfp
    >>> p = np.random.default_rng(0).uniform(size=300)
    >>> y = (np.random.default_rng(1).uniform(size=300) < p).astype(int)
    >>> fig = plot_reliability_diagram(tfp.distributions.Bernoulli(probs=p), y)
    >>> len(fig.axes[0].patches)
    10
    """
    from probnn import metrics

    bins = metrics.reliability_bins(dist, y, num_bins=num_bins)
    edges = bins.edges.numpy()
    accuracy = np.nan_to_num(bins.accuracy.numpy())
    ece = float(metrics.expected_calibration_error(dist, y, num_bins=num_bins))
    fig, ax = _axes(ax)
    ax.plot([0, 1], [0, 1], color="0.5", ls="--", lw=1, label="ideal")
    text = f"ECE {ece:.3f}" if label is None else f"{label} (ECE {ece:.3f})"
    ax.bar(edges[:-1], accuracy, width=np.diff(edges), align="edge", alpha=0.6, edgecolor="k", label=text)
    confidence = bins.confidence.numpy()
    filled = bins.count.numpy() > 0
    ax.plot(confidence[filled], accuracy[filled], "o", color="C3", ms=4, label="mean confidence")
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    if title:
        ax.set_title(title)
    ax.legend(loc="upper left", fontsize="small")
    return fig


def plot_risk_coverage(dist, y, *, confidence=None, ax=None, label=None, title=None):
    """Risk-coverage curve of a classifier that abstains on its least confident inputs.

    The error rate among the most confident inputs (`probnn.metrics.risk_coverage_curve`)
    against the fraction kept; the legend gives the area under the curve
    (AURC, lower is better). Several models can share one `ax`.

    Example:
    >>> import numpy as np, tensorflow_probability as tfp
    >>> p = np.random.default_rng(0).dirichlet(np.ones(3), size=200)
    >>> fig = plot_risk_coverage(tfp.distributions.Categorical(probs=p), p.argmax(1))
    >>> len(fig.axes[0].lines)
    2
    """
    from probnn import metrics

    curve = metrics.risk_coverage_curve(dist, y, confidence=confidence)
    area = float(np.sum(np.diff(np.r_[0.0, curve.coverage]) * curve.risk))
    fig, ax = _axes(ax)
    text = f"AURC {area:.3f}" if label is None else f"{label} (AURC {area:.3f})"
    ax.step(np.r_[0.0, curve.coverage], np.r_[curve.risk[0], curve.risk], where="pre", label=text)
    ax.axhline(curve.risk[-1], color="0.5", ls="--", lw=1, label="error rate without abstaining")
    ax.set_xlabel("coverage (fraction of inputs predicted)")
    ax.set_ylabel("risk (error rate among them)")
    ax.set_xlim(0, 1)
    ax.set_ylim(bottom=0)
    if title:
        ax.set_title(title)
    ax.legend(loc="upper left", fontsize="small")
    return fig
