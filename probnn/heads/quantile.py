"""Quantile regression head: non-crossing quantiles at fixed levels, trained with the pinball loss."""

import keras
import numpy as np
import tensorflow as tf

from probnn.heads.base import DistributionHead
from probnn.metrics.predictive import UnivariatePredictive


def check_levels(owner, levels):
    """Return `levels` as a tuple of floats strictly increasing inside (0, 1), or raise a ValueError."""
    try:
        values = np.asarray(levels, dtype=float)
    except (TypeError, ValueError):
        values = np.array([np.nan])
    if (
        values.ndim != 1
        or values.size < 1
        or np.any(~((values > 0) & (values < 1)))
        or np.any(np.diff(values) <= 0)
    ):
        raise ValueError(
            f"{owner}: quantiles must be a non-empty increasing sequence of levels in (0, 1), got {levels!r}"
        )
    return tuple(float(v) for v in values)


class QuantilePredictive(UnivariatePredictive):
    """Predicted quantiles at fixed levels, as the metrics and `SplitConformal` read them.

    `quantile(levels)` returns the predicted quantiles at any of the head's
    own levels (exactly those: nothing is interpolated or extrapolated). There
    is no CDF, density or mean: score it with `probnn.metrics.pinball_loss`,
    `quantile_calibration`, `coverage` and `interval` at the head's levels, or
    conformalise it with `SplitConformal(score="cqr")`.

    Args:
        values: predicted quantiles, shape `batch + (L,)`, non-decreasing along the last axis.
        levels: the L increasing levels in (0, 1).
    """

    def __init__(self, values, levels):
        self.values = tf.convert_to_tensor(values)
        self.levels = check_levels("QuantilePredictive", levels)

    @property
    def batch_shape(self):
        return tuple(self.values.shape[:-1])

    @property
    def dtype(self):
        return self.values.dtype

    def quantile(self, levels):
        """The predicted quantiles at `levels` (each one of the head's levels); `(L,) + batch` for 1-D levels."""
        wanted = np.asarray(levels, dtype=float)
        found = [self._index(level) for level in np.atleast_1d(wanted)]
        q = tf.gather(self.values, found, axis=-1)
        q = tf.transpose(q, [q.shape.rank - 1] + list(range(q.shape.rank - 1)))
        return q[0] if wanted.ndim == 0 else q

    def _index(self, level):
        matches = np.flatnonzero(np.isclose(self.levels, level, rtol=0.0, atol=1e-9))
        if matches.size == 0:
            raise ValueError(
                f"QuantilePredictive: quantiles are predicted only at the levels "
                f"{self.levels}, got a request for {float(level)!r}"
            )
        return int(matches[0])

    def _unavailable(self, what):
        raise ValueError(
            f"QuantilePredictive: a quantile head predicts quantiles at {self.levels}, "
            f"not a {what}; use quantile(), pinball_loss or quantile_calibration"
        )

    def cdf(self, y):
        self._unavailable("CDF")

    def mean(self):
        self._unavailable("mean")

    def stddev(self):
        self._unavailable("standard deviation")

    def crps(self, y):
        self._unavailable("CRPS (use pinball_loss)")


@keras.saving.register_keras_serializable(package="probnn")
class QuantileHead(DistributionHead):
    """Quantiles of a scalar target at fixed levels, non-crossing by construction.

    Parameters are `[first quantile, raw increments (L - 1)]`; the quantiles
    are `q_1` and `q_k = q_1 + Σ_{j<k} softplus(raw_j)`, so they never cross
    (they can only touch where an increment underflows). Train with
    `probnn.losses.Pinball(head)`; the head has no likelihood.
    `distribution(params)` is a `QuantilePredictive` that `probnn.metrics`
    (`pinball_loss`, `quantile_calibration`, `coverage`, `interval`) and
    `SplitConformal(score="cqr")` read directly.

    Args:
        quantiles: the levels, strictly increasing in (0, 1).
        **kwargs: see `DistributionHead`.

    Example:
    >>> import numpy as np, probnn
    >>> head = probnn.heads.QuantileHead(quantiles=(0.05, 0.5, 0.95))
    >>> head.quantiles(np.array([[1.0, 0.0, 0.0]])).numpy().round(4)  # 1, 1 + log 2, 1 + 2 log 2
    array([[1.    , 1.6931, 2.3863]])
    """

    def __init__(self, quantiles=(0.05, 0.5, 0.95), **kwargs):
        super().__init__(**kwargs)
        self.levels = check_levels(type(self).__name__, quantiles)

    @property
    def params_size(self):
        return len(self.levels)

    @property
    def event_shape(self):
        return (1,)

    def quantiles(self, params):
        """The predicted quantiles, shape `batch + (L,)`, non-decreasing along the last axis."""
        params = self._params(params)
        first, raw = params[..., :1], params[..., 1:]
        return tf.concat([first, first + tf.cumsum(tf.math.softplus(raw), axis=-1)], axis=-1)

    def distribution(self, params):
        return QuantilePredictive(self.quantiles(params), self.levels)

    def log_prob(self, params, y):
        raise ValueError(
            "QuantileHead: a quantile head has no likelihood; train it with loss=probnn.losses.Pinball(head)"
        )

    def get_config(self):
        config = super().get_config()
        config.update(quantiles=list(self.levels))
        return config
