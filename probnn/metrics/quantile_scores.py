"""Scores of predicted quantiles: the pinball loss and quantile calibration."""

import numpy as np
import tensorflow as tf

from probnn.metrics._reduce import reduce
from probnn.metrics.predictive import as_predictive


def pinball(u, level):
    """The pinball (check) loss `ρ_τ(u) = max(τ u, (τ - 1) u)` of residuals `u = y - q`, elementwise.

    Example:
    >>> import numpy as np
    >>> [round(float(pinball(np.float64(u), 0.9)), 12) for u in (2.0, -2.0)]
    [1.8, 0.2]
    """
    u = tf.convert_to_tensor(u)
    if not u.dtype.is_floating:
        u = tf.cast(u, tf.float32)
    level = tf.cast(tf.convert_to_tensor(level, dtype_hint=u.dtype), u.dtype)  # 0.9 stays float64
    return tf.maximum(level * u, (level - 1) * u)


def _levels_and_quantiles(owner, dist, y, levels):
    pred, y = as_predictive(dist, y, owner=owner)
    if levels is None:
        levels = getattr(pred, "levels", None)
        if levels is None:
            raise ValueError(f"{owner}: levels are required unless dist comes from a QuantileHead")
    levels = np.asarray(levels, dtype=float)
    if levels.ndim != 1 or levels.size < 1 or np.any(~((levels > 0) & (levels < 1))):
        raise ValueError(f"{owner}: levels must be a 1-D array of probabilities in (0, 1), got {levels!r}")
    q = pred.quantile(levels)  # (L,) + batch
    shape = [-1] + [1] * (q.shape.rank - 1)
    return tf.reshape(tf.cast(levels, q.dtype), shape), q, y


def pinball_loss(dist, y, levels=None, *, reduction="mean"):
    """Pinball loss of the predicted quantiles at `levels`, averaged over the levels.

    `mean_τ ρ_τ(y - q_τ)`; twice its average over a fine grid of levels is
    the CRPS. Lower is better; it has the units of y.

    Args:
        dist: a `QuantileHead`'s distribution (its own levels by default), or
            any predictive `probnn.metrics` accepts (then `levels` is required).
        y: targets.
        levels: the levels, a 1-D array in (0, 1).
        reduction: "mean" (default), "sum" or "none" (per scalar outcome).

    Example:
    >>> import numpy as np, probnn
    >>> head = probnn.heads.QuantileHead(quantiles=(0.1, 0.9))
    >>> dist = head.distribution(np.array([[0.0, 0.0]]))  # quantiles 0 and log 2
    >>> round(float(pinball_loss(dist, np.array([[1.0]]))), 6)  # (0.1·1 + 0.9·(1 - log 2)) / 2
    0.188084
    """
    tau, q, y = _levels_and_quantiles("pinball_loss", dist, y, levels)
    return reduce(tf.reduce_mean(pinball(y[None] - q, tau), axis=0), reduction, "pinball_loss")


def quantile_calibration(dist, y, levels=None):
    """The observed frequency of `y <= q_τ` at each level τ: equal to τ for calibrated quantiles.

    Args:
        dist: a `QuantileHead`'s distribution (its own levels by default), or
            any predictive `probnn.metrics` accepts (then `levels` is required).
        y: targets.
        levels: the levels, a 1-D array in (0, 1).

    Returns:
        A tensor of shape `(L,)`, the fraction of targets at or below each
        predicted quantile (binomial noise `sqrt(τ (1 - τ) / n)`).

    Example:
    >>> import numpy as np
    >>> y = np.random.default_rng(0).normal(size=20000)
    >>> freq = quantile_calibration((np.zeros(20000), np.ones(20000)), y, [0.1, 0.5, 0.9])
    >>> np.round(freq.numpy(), 2)
    array([0.1, 0.5, 0.9])
    """
    _, q, y = _levels_and_quantiles("quantile_calibration", dist, y, levels)
    below = tf.cast(y[None] <= q, q.dtype)
    return tf.reduce_mean(tf.reshape(below, [tf.shape(q)[0], -1]), axis=1)
