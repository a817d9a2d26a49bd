"""Split conformal prediction intervals on top of any predictive distribution."""

import math

import numpy as np
import tensorflow as tf

from probnn.metrics.predictive import as_predictive

SCORES = ("normalized", "absolute", "cdf", "quantile", "cqr")


class SplitConformal:
    """Split conformal intervals at level 1 - alpha around any probnn prediction.

    Fitted on a calibration split that the model did not train on: each
    calibration example gets a nonconformity score, and `quantile_` is the
    ⌈(n + 1)(1 - alpha)⌉-th smallest of the n scores (infinite when that
    exceeds n). `interval(dist)` returns every y whose score would be at most
    `quantile_`.

    Guarantee (Vovk et al. 2005; Lei et al. 2018): if the calibration and
    test pairs (x, y) are exchangeable (i.i.d., say), then for a new pair
    `P(lower <= y <= upper) >= 1 - alpha`, whatever the model and however
    wrong its distribution. The probability is over the calibration set and
    the test pair together (marginal, not conditional on x or on one
    calibration set). If the scores have no ties (a continuous target), also
    `P(lower <= y <= upper) < 1 - alpha + 1/(n + 1)`.

    Scores:
        "normalized": `|y - mean| / stddev`; intervals `mean ± q·stddev`
            (adaptive width, from the head's own uncertainty).
        "absolute": `|y - mean|`; intervals `mean ± q` (constant width).
        "cdf": `|F(y) - ½|`, the distributional variant (Chernozhukov et al.
            2021); intervals between the predictive quantiles at ½ ∓ q, so
            they follow a skewed or heavy-tailed predictive's own shape. A
            head so wrong that its CDF rounds to 0 or 1 at more than alpha
            of the calibration targets ties their scores at ½: the interval
            is then the whole line (valid, but uninformative).
        "quantile" or its alias "cqr": conformalised quantile regression
            (Romano et al. 2019) on the predicted quantiles `q_lo`, `q_hi` at
            alpha/2 and 1 - alpha/2: score `max(q_lo - y, y - q_hi)`,
            intervals `[q_lo - q, q_hi + q]`. They come from the head's
            quantile function, or directly from a `QuantileHead` whose
            levels include alpha/2 and 1 - alpha/2
            (`head.distribution(params)` or `predict_distribution`).

    Args:
        alpha: miscoverage level in (0, 1).
        score: one of "normalized" (default), "absolute", "cdf", "quantile" ("cqr").

    Example:
    >>> import numpy as np, probnn
    >>> rng = np.random.default_rng(0)
    >>> y = rng.standard_t(3, size=4000)  # heavier tails than the model says
    >>> model = (np.zeros(4000), 0.5 * np.ones(4000))
    >>> conf = probnn.calibration.SplitConformal(alpha=0.1).fit((model[0][:2000], model[1][:2000]), y[:2000])
    >>> lower, upper = conf.interval((model[0][2000:], model[1][2000:]))
    >>> covered = float(np.mean((y[2000:] >= lower) & (y[2000:] <= upper)))
    >>> naive = float(probnn.metrics.coverage((model[0][2000:], model[1][2000:]), y[2000:], 0.9))
    >>> round(naive, 2), 0.87 < covered < 0.93  # binomial noise at n = 2000: sd 0.007
    (0.54, True)
    """

    def __init__(self, alpha=0.1, *, score="normalized"):
        if not 0.0 < float(alpha) < 1.0:
            raise ValueError(f"SplitConformal: alpha must be in (0, 1), got {alpha!r}")
        if score not in SCORES:
            raise ValueError(f"SplitConformal: score must be one of {SCORES}, got {score!r}")
        self.alpha = float(alpha)
        self.score = score

    def scores(self, dist, y):
        """The nonconformity score of each target under its prediction (flattened NumPy array)."""
        pred, y = as_predictive(dist, y, owner="SplitConformal")
        if self.score == "normalized":
            s = tf.abs(y - pred.mean()) / pred.stddev()
        elif self.score == "absolute":
            s = tf.abs(y - pred.mean())
        elif self.score == "cdf":
            s = tf.abs(pred.cdf(y) - 0.5)
        else:
            q = pred.quantile(np.array([self.alpha / 2, 1 - self.alpha / 2]))
            s = tf.maximum(q[0] - y, y - q[1])
        return np.asarray(s, dtype=float).ravel()

    def fit(self, dist, y):
        """Compute the calibration scores of `dist` at `y` and their conformal quantile; returns self."""
        return self.fit_scores(self.scores(dist, y))

    def fit_scores(self, scores):
        """Set `quantile_` from calibration scores already computed (by `scores`); returns self.

        With the scores kept (`probnn fit` stores them in the model folder),
        the conformal quantile can be taken at any level later without the
        calibration data: `SplitConformal(alpha).fit_scores(stored)`.

        Example:
        >>> SplitConformal(alpha=0.5).fit_scores([0.4, 0.1, 0.3, 0.2]).quantile_  # ⌈5 · 0.5⌉ = 3rd
        0.3
        """
        scores = np.sort(np.asarray(scores, dtype=float).ravel())
        n = scores.size
        if n < 1 or np.any(np.isnan(scores)):
            raise ValueError(
                f"SplitConformal.fit: need at least one finite score, got {n} (NaN present: {bool(np.any(np.isnan(scores)))})"
            )
        rank = math.ceil((n + 1) * (1 - self.alpha))
        self.quantile_ = float(scores[rank - 1]) if rank <= n else math.inf
        self.num_calibration_ = n
        return self

    def interval(self, dist):
        """`(lower, upper)` of the conformal interval for each prediction in `dist` (tensors)."""
        if not hasattr(self, "quantile_"):
            raise ValueError("SplitConformal: call fit(dist_cal, y_cal) before interval()")
        pred, _ = as_predictive(dist, owner="SplitConformal.interval")
        q = tf.constant(self.quantile_, pred.dtype)
        if self.score == "normalized":
            mean, half = pred.mean(), q * pred.stddev()
            return mean - half, mean + half
        if self.score == "absolute":
            mean = pred.mean()
            return mean - q, mean + q
        if self.score == "cdf":
            if self.quantile_ >= 0.5:
                inf = tf.fill(pred.batch_shape, tf.constant(np.inf, pred.dtype))
                return -inf, inf
            bounds = pred.quantile(np.array([0.5 - self.quantile_, 0.5 + self.quantile_]))
            return bounds[0], bounds[1]
        bounds = pred.quantile(np.array([self.alpha / 2, 1 - self.alpha / 2]))
        return bounds[0] - q, bounds[1] + q
