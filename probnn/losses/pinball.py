"""The pinball (quantile) loss of a `QuantileHead`."""

import keras
import tensorflow as tf

from probnn.heads.quantile import QuantileHead
from probnn.losses.head_loss import HeadLoss
from probnn.metrics.quantile_scores import pinball


@keras.saving.register_keras_serializable(package="probnn")
class Pinball(HeadLoss):
    """Pinball loss of a `QuantileHead`'s quantiles, averaged over its levels.

    Per example `mean_τ ρ_τ(y - q_τ)` with `ρ_τ(u) = max(τ u, (τ - 1) u)`;
    its minimiser at each level τ is the conditional τ-quantile of y.

    Args:
        head: the `probnn.heads.QuantileHead` whose output `y_pred` is.
        reduction: Keras loss reduction (default: mean over the batch).
        name: name of the loss.
        dtype: dtype the loss computes in.

    Example:
    >>> import numpy as np, probnn
    >>> loss = probnn.losses.Pinball(probnn.heads.QuantileHead(quantiles=(0.1, 0.9)))
    >>> round(float(loss(np.array([[1.0]]), np.array([[0.0, 0.0]]))), 6)
    0.188084
    """

    def __init__(self, head, reduction="sum_over_batch_size", name="pinball", dtype=None):
        super().__init__(head, reduction=reduction, name=name, dtype=dtype)
        if not isinstance(self.head, QuantileHead):
            raise ValueError(
                f"Pinball: head must be a probnn.heads.QuantileHead, got {type(self.head).__name__}"
            )

    def call(self, y_true, y_pred):
        q = self.head.quantiles(y_pred)
        y = tf.reshape(tf.cast(y_true, q.dtype), [-1, 1])
        return tf.reduce_mean(pinball(y - q, tf.constant(self.head.levels, q.dtype)), axis=-1)
