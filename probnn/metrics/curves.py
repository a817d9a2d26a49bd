"""Calibration of predictive distributions over real outcomes: PIT, calibration curves, areas and errors."""

import collections

import tensorflow as tf
import tensorflow_probability as tfp

from probnn._validation import int_at_least
from probnn.metrics.classification import class_probabilities, classification_calibration_error
from probnn.metrics.predictive import as_predictive

tfd = tfp.distributions

CalibrationCurve = collections.namedtuple("CalibrationCurve", ["expected", "observed"])
CalibrationCurve.__doc__ = """Expected against observed proportions.

Attributes:
    expected: the nominal levels p (from 0 to 1).
    observed: the fraction of targets inside the central p-interval
        (kind "interval") or below the p-quantile (kind "quantile").
"""

KINDS = ("interval", "quantile")


def pit(dist, y):
    """Probability integral transform `F(y)` of each target under its predictive CDF.

    Uniform on [0, 1] exactly when the predictions are calibrated (and
    continuous). For samples, the mid-rank `(r + ½)/(S + 1)` with r the
    number of samples below y, uniform on S + 1 bins under calibration.

    Example:
    >>> import numpy as np
    >>> pit((np.zeros(2), np.ones(2)), np.array([0.0, 1.96])).numpy().round(3).tolist()
    [0.5, 0.975]
    """
    pred, y = as_predictive(dist, y, owner="pit")
    return pred.pit(y)


def _check_levels(owner, num_levels, kind):
    int_at_least(owner, "num_levels", num_levels, 2, whole_floats=True)
    if kind not in KINDS:
        raise ValueError(f"{owner}: kind must be one of {KINDS}, got {kind!r}")


def calibration_curve(dist, y, *, num_levels=100, kind="interval"):
    """Expected against observed proportions at `num_levels` equally spaced levels from 0 to 1.

    kind "interval": the fraction of targets inside the central interval of
    probability p, `|2 F(y) - 1| <= p`; kind "quantile": the fraction below
    the p-quantile, `F(y) <= p`. Both need only the PIT values, so any
    predictive works; the levels are uncertainty-toolbox's `linspace(0, 1, 100)`.
    Computed by sorting (O(n log n)), not by an n x levels comparison.

    Returns:
        `CalibrationCurve(expected, observed)`, tensors of shape `(num_levels,)`.

    Example:
    >>> import numpy as np
    >>> curve = calibration_curve((np.zeros(4), np.ones(4)), np.array([-2.0, -0.1, 0.1, 2.0]), num_levels=3)
    >>> curve.observed.numpy().tolist()
    [0.0, 0.5, 1.0]
    """
    _check_levels("calibration_curve", num_levels, kind)
    u = tf.reshape(pit(dist, y), [-1])
    score = tf.abs(2 * u - 1) if kind == "interval" else u
    expected = tf.linspace(tf.constant(0.0, tf.float64), 1.0, int(num_levels))
    ordered = tf.sort(tf.cast(score, tf.float64))
    below = tf.searchsorted(ordered, expected, side="right")
    observed = tf.cast(below, tf.float64) / tf.cast(tf.size(ordered), tf.float64)
    return CalibrationCurve(expected, observed)


def area_between(expected, observed):
    """Area between the piecewise-linear curve (expected, observed) and the diagonal.

    Where the curve crosses the diagonal within a segment, the two triangles
    are added (not cancelled).
    """
    expected = tf.convert_to_tensor(expected, tf.float64)
    d = tf.convert_to_tensor(observed, tf.float64) - expected
    h = expected[1:] - expected[:-1]
    d0, d1 = d[:-1], d[1:]
    same = d0 * d1 >= 0
    plain = 0.5 * h * tf.abs(d0 + d1)
    denom = tf.abs(d0) + tf.abs(d1)
    crossing = 0.5 * h * (tf.square(d0) + tf.square(d1)) / tf.where(denom > 0, denom, tf.ones_like(denom))
    return tf.reduce_sum(tf.where(same, plain, crossing))


def miscalibration_area(dist, y, *, num_levels=100, kind="interval"):
    """Area between the calibration curve and the diagonal (0 = calibrated, at most 0.5).

    As uncertainty-toolbox's `miscalibration_area`, for any predictive. For n
    calibrated predictions it is about `0.31/√n` by sampling noise alone.

    Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = rng.normal(size=5000)
    >>> float(miscalibration_area((np.zeros(5000), np.ones(5000)), y)) < 0.02
    True
    >>> float(miscalibration_area((np.zeros(5000), 0.5 * np.ones(5000)), y)) > 0.1  # over-confident
    True
    """
    curve = calibration_curve(dist, y, num_levels=num_levels, kind=kind)
    return area_between(curve.expected, curve.observed)


def expected_calibration_error(dist, y, *, num_bins=None, kind="interval"):
    """Expected calibration error, for regression or classification.

    Regression (any predictive over real outcomes): the mean absolute gap
    `mean |observed - expected|` over the calibration curve's `num_bins`
    levels (default 100; uncertainty-toolbox's mean absolute calibration
    error). Classification (a Categorical or Bernoulli distribution):
    `Σ_b (n_b / n) |accuracy_b - confidence_b|` over `num_bins` equal-width
    bins of the reliability diagram (default 10; Guo et al. 2017).

    Example:
    >>> import numpy as np, tensorflow_probability as tfp
    >>> dist = tfp.distributions.Categorical(probs=[[0.9, 0.1], [0.6, 0.4]])
    >>> round(float(expected_calibration_error(dist, [0, 1])), 4)
    0.35
    """
    if isinstance(dist, tfd.Distribution) and class_probabilities(dist) is not None:
        return classification_calibration_error(dist, y, num_bins=10 if num_bins is None else num_bins)
    curve = calibration_curve(dist, y, num_levels=100 if num_bins is None else num_bins, kind=kind)
    return tf.reduce_mean(tf.abs(curve.observed - curve.expected))
