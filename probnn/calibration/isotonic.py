"""Isotonic recalibration of predictive CDFs (Kuleshov, Fenner and Ermon 2018)."""

import numpy as np
import tensorflow as tf

from probnn.metrics.predictive import UnivariatePredictive, as_predictive


def isotonic_regression(y, weights=None):
    """The non-decreasing sequence closest to `y` in weighted least squares (pool adjacent violators).

    O(n): each value is pushed once and every merge removes a block.

    Args:
        y: values in the order of their (sorted) inputs, shape `(n,)`.
        weights: positive weights, shape `(n,)`; ones if omitted.

    Returns:
        The fitted values, shape `(n,)`.

    Example:
    >>> isotonic_regression([1.0, 3.0, 2.0, 4.0]).tolist()
    [1.0, 2.5, 2.5, 4.0]
    """
    y = np.asarray(y, dtype=float).ravel()
    w = np.ones_like(y) if weights is None else np.asarray(weights, dtype=float).ravel()
    if w.shape != y.shape or np.any(~(w > 0)):
        raise ValueError(f"isotonic_regression: weights must be positive with the shape of y {y.shape}")
    values, totals, sizes = [], [], []
    for value, weight in zip(y, w):
        values.append(value)
        totals.append(weight)
        sizes.append(1)
        while len(values) > 1 and values[-2] > values[-1]:
            v, t, s = values.pop(), totals.pop(), sizes.pop()
            merged = totals[-1] + t
            values[-1] = (values[-1] * totals[-1] + v * t) / merged
            totals[-1] = merged
            sizes[-1] += s
    return np.repeat(values, sizes)


def _interp(x, xp, fp):
    """Piecewise-linear interpolation in TF, `xp` strictly increasing (ends clamped)."""
    x = tf.convert_to_tensor(x)
    xp = tf.constant(xp, x.dtype)
    fp = tf.constant(fp, x.dtype)
    flat = tf.reshape(x, [1, -1])
    i = tf.searchsorted(xp[None], flat, side="right")[0] - 1
    i = tf.clip_by_value(i, 0, xp.shape[0] - 2)
    x0, x1 = tf.gather(xp, i), tf.gather(xp, i + 1)
    y0, y1 = tf.gather(fp, i), tf.gather(fp, i + 1)
    t = tf.clip_by_value((flat[0] - x0) / (x1 - x0), 0, 1)
    return tf.reshape(y0 + t * (y1 - y0), tf.shape(x)), tf.reshape((y1 - y0) / (x1 - x0), tf.shape(x))


class RecalibratedDistribution(UnivariatePredictive):
    """A predictive distribution composed with a recalibration map R: CDF `R(F(y))`.

    R is continuous, piecewise linear and strictly increasing from (0, 0) to
    (1, 1), so the quantile is `F⁻¹(R⁻¹(p))` and the density
    `R'(F(y)) f(y)`. The metrics in `probnn.metrics` accept it like a
    distribution; its mean, standard deviation and CRPS are integrals over
    quantiles.

    Args:
        base: the predictive it recalibrates (anything `probnn.metrics` accepts).
        knots_x, knots_y: the knots of R, both strictly increasing from 0 to 1.
    """

    def __init__(self, base, knots_x, knots_y):
        self.base, _ = as_predictive(base, owner="RecalibratedDistribution")
        self.knots_x = np.asarray(knots_x, dtype=float)
        self.knots_y = np.asarray(knots_y, dtype=float)

    @property
    def batch_shape(self):
        return self.base.batch_shape

    @property
    def dtype(self):
        return self.base.dtype

    def cdf(self, y):
        return _interp(self.base.cdf(y), self.knots_x, self.knots_y)[0]

    def log_prob(self, y):
        slope = _interp(self.base.cdf(y), self.knots_x, self.knots_y)[1]
        return tf.math.log(slope) + self.base.log_prob(y)

    def quantile(self, levels):
        levels = tf.cast(tf.convert_to_tensor(levels), self.dtype)
        mapped = _interp(levels, self.knots_y, self.knots_x)[0]
        # Levels strictly inside (0, 1) stay strictly inside after the map, so that a base whose CDF
        # rounded to 0 or 1 at some calibration targets still gives finite quantiles there.
        eps = np.finfo(self.dtype.as_numpy_dtype).eps
        inner = (levels > 0) & (levels < 1)
        mapped = tf.where(inner, tf.clip_by_value(mapped, eps, 1 - eps), mapped)
        return self.base.quantile(mapped)

    def _bracket(self):
        return self.base._bracket()


class IsotonicRecalibrator:
    """Recalibrate predictive CDFs with the isotonic map from predicted to observed probability.

    Fitted on a calibration split: with PIT values `u_t = F_t(y_t)`, the map
    R sends each `u_t` to the observed frequency of PIT values at or below
    it, fitted by isotonic regression (Kuleshov et al. 2018). The targets are
    ranks `i/(n + 1)`, already increasing in u, so the fit is the PIT's
    empirical CDF (tied PIT values pooled by pool-adjacent-violators) with
    knots (0, 0) and (1, 1) added; interpolating linearly between knots keeps
    R continuous and strictly increasing, so quantiles and densities exist.
    Applied to new predictions, `recal(dist)` is a `RecalibratedDistribution`
    with CDF `R(F(y))`.

    PAV is 20 lines of NumPy here, checked against scikit-learn's
    `IsotonicRegression` in the tests; scikit-learn is not a runtime
    dependency.

    Example:
    >>> import numpy as np, probnn
    >>> rng = np.random.default_rng(0)
    >>> y = rng.normal(size=2000)
    >>> overconfident = (np.zeros(2000), 0.5 * np.ones(2000))
    >>> recal = probnn.calibration.IsotonicRecalibrator().fit(overconfident, y)
    >>> area = lambda d: float(probnn.metrics.miscalibration_area(d, y))
    >>> area(recal(overconfident)) < 0.1 * area(overconfident)
    True
    """

    def fit(self, dist, y):
        """Fit the map on calibration predictions `dist` and their targets `y`; returns self."""
        u = np.sort(np.asarray(_pit(dist, y, "IsotonicRecalibrator.fit"), dtype=float).ravel())
        n = u.size
        if n < 2 or not np.all(np.isfinite(u)):
            raise ValueError(f"IsotonicRecalibrator.fit: need at least 2 finite PIT values, got {n}")
        ranks = np.arange(1, n + 1) / (n + 1)
        unique, start, counts = np.unique(u, return_index=True, return_counts=True)
        pooled = np.add.reduceat(ranks, start) / counts  # tied PIT values: their mean rank
        fitted = isotonic_regression(pooled, counts)
        inner = (unique > 0) & (unique < 1)
        self.knots_x = np.concatenate([[0.0], unique[inner], [1.0]])
        self.knots_y = np.concatenate([[0.0], fitted[inner], [1.0]])
        self.num_calibration_ = n
        return self

    def __call__(self, dist):
        """The recalibrated predictive distribution of `dist` (anything `probnn.metrics` accepts)."""
        if not hasattr(self, "knots_x"):
            raise ValueError("IsotonicRecalibrator: call fit(dist_cal, y_cal) before applying it")
        return RecalibratedDistribution(dist, self.knots_x, self.knots_y)


def _pit(dist, y, owner):
    pred, y = as_predictive(dist, y, owner=owner)
    return pred.pit(y).numpy()
