"""Matplotlib figures for predictive distributions.

Figures are built with `matplotlib.figure.Figure` directly, not pyplot, so no
GUI backend is started and the functions work on headless machines.
"""

import numpy as np


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
    if not (x.shape == mean.shape == lower.shape == upper.shape):
        raise ValueError(
            "plot_predictive_intervals: x, mean, lower and upper must have the same length, "
            f"got {x.shape}, {mean.shape}, {lower.shape}, {upper.shape}"
        )
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
