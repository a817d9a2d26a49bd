"""Quantiles, central intervals, their coverage and width, and sharpness."""

import numpy as np
import tensorflow as tf

from probnn._validation import probability
from probnn.metrics.predictive import SamplesPredictive, as_predictive

INTERVAL_KINDS = ("central", "hdi")


def quantile(dist, levels):
    """Quantiles of the predictive distribution.

    Closed forms where TFP has them (Normal, Student-t), the empirical
    quantile for samples, and a vectorised bisection on the CDF otherwise
    (mixtures, recalibrated distributions).

    Args:
        dist: a `tfd.Distribution`, recalibrated distribution, `(mean, stddev)` pair or samples.
        levels: a probability, or a 1-D array of L probabilities.

    Returns:
        The quantiles, shape `batch` for a scalar level, `(L,) + batch` otherwise.

    Example:
    >>> import numpy as np, tensorflow_probability as tfp
    >>> tfd = tfp.distributions
    >>> mix = tfd.MixtureSameFamily(tfd.Categorical(probs=[0.5, 0.5]), tfd.Normal([-1.0, 1.0], 0.5))
    >>> abs(round(float(quantile(mix, 0.5)), 4))
    0.0
    """
    pred, _ = as_predictive(dist, owner="quantile")
    levels = np.asarray(levels, dtype=float)
    if levels.ndim > 1 or np.any((levels < 0) | (levels > 1)) or np.any(np.isnan(levels)):
        raise ValueError(
            f"quantile: levels must be a probability or a 1-D array of probabilities, got {levels!r}"
        )
    return pred.quantile(levels)


def interval(dist, level=0.9, *, kind="central"):
    """A predictive interval of probability `level`: `(lower, upper)`, each of the batch shape.

    kind "central": the equal-tailed interval between the quantiles
    `(1 - level)/2` and `(1 + level)/2`. kind "hdi": the highest-density
    interval, computed by `arviz.hdi` from samples (only for samples; draw
    them with `dist.sample(n)` for a distribution), the shortest interval
    with that fraction of the samples.

    Example:
    >>> import numpy as np
    >>> lower, upper = interval((np.zeros(1), np.ones(1)), 0.95)
    >>> round(float(upper[0]), 3)
    1.96
    """
    level = probability("interval", "level", level)
    if kind not in INTERVAL_KINDS:
        raise ValueError(f"interval: kind must be one of {INTERVAL_KINDS}, got {kind!r}")
    pred, _ = as_predictive(dist, owner="interval")
    if kind == "hdi":
        if not isinstance(pred, SamplesPredictive):
            raise ValueError(
                "interval: kind='hdi' needs samples of shape (num_samples,) + batch; draw them with dist.sample(n)"
            )
        import arviz

        samples = np.asarray(pred.samples)
        flat = samples.reshape(samples.shape[0], -1)
        # arviz.hdi reads arrays as (chain, draw, *shape): one chain of S draws over the rows.
        bounds = arviz.hdi(flat[None], hdi_prob=level)
        bounds = np.asarray(bounds).reshape(samples.shape[1:] + (2,))
        return tf.constant(bounds[..., 0], pred.dtype), tf.constant(bounds[..., 1], pred.dtype)
    q = pred.quantile(np.array([(1 - level) / 2, (1 + level) / 2]))
    return q[0], q[1]


def coverage(dist, y, level=0.9):
    """Fraction of targets inside the central predictive interval of probability `level`.

    Close to `level` for calibrated predictions (binomial noise:
    `sqrt(level (1 - level) / n)`).

    Example:
    >>> import numpy as np
    >>> y = np.random.default_rng(0).normal(size=10000)
    >>> round(float(coverage((np.zeros(10000), np.ones(10000)), y, level=0.9)), 2)
    0.9
    """
    level = probability("coverage", "level", level)
    pred, y = as_predictive(dist, y, owner="coverage")
    q = pred.quantile(np.array([(1 - level) / 2, (1 + level) / 2]))
    inside = (y >= q[0]) & (y <= q[1])
    return tf.reduce_mean(tf.cast(inside, pred.dtype))


def mean_interval_width(dist, level=0.9):
    """Mean width of the central predictive intervals of probability `level`.

    Example:
    >>> import numpy as np
    >>> round(float(mean_interval_width((np.zeros(3), np.ones(3)), 0.95)), 3)
    3.92
    """
    lower, upper = interval(dist, level)
    return tf.reduce_mean(upper - lower)


def sharpness(dist):
    """Sharpness: the root mean predictive variance `sqrt(mean(σ²))` (uncertainty-toolbox's definition).

    Example:
    >>> import numpy as np
    >>> float(sharpness((np.zeros(2), np.array([1.0, 7.0]))))
    5.0
    """
    pred, _ = as_predictive(dist, owner="sharpness")
    return tf.sqrt(tf.reduce_mean(tf.square(pred.stddev())))
