"""The continuous ranked probability score of a head's distribution, as a training loss."""

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from probnn._validation import int_at_least
from probnn.losses.head_loss import HeadLoss
from probnn.metrics.crps_forms import crps_samples
from probnn.metrics.predictive import closed_form_crps, scalar_distribution

tfd = tfp.distributions


@keras.saving.register_keras_serializable(package="probnn")
class CRPS(HeadLoss):
    """CRPS of the targets under a head's distribution, summed over the outputs.

    Exact where `probnn.metrics.crps` has a closed form (Normal, Student-t and
    the evidential head's Student-t predictive, mixtures of Normals); for any
    other head the unbiased ("fair") energy form
    `mean_i |X_i - y| - Σ_{i≠j} |X_i - X_j| / (2 S (S - 1))` over
    `num_samples` reparameterised draws, an unbiased estimate of the CRPS and
    of its gradient. Heads whose draws cannot be differentiated (counts,
    classes) or that are not over scalar outputs are refused when the loss
    is built. Per example it returns the sum over the outputs of their CRPS,
    as the likelihood sums their log densities. It trains with `probnn.fit`
    and `model.fit` alike.

    Args:
        head: the `probnn.heads.DistributionHead` whose output `y_pred` is.
        num_samples: draws per example for the energy form (>= 2).
        reduction: Keras loss reduction (default: mean over the batch).
        name: name of the loss.
        dtype: dtype the loss computes in.

    Example:
    >>> import numpy as np, probnn
    >>> loss = probnn.losses.CRPS(probnn.heads.NormalHead())
    >>> params = np.array([[0.0, np.log(np.e - 1)]])  # Normal(0, 1)
    >>> round(float(loss(np.zeros((1, 1)), params)), 6)
    0.233695
    """

    def __init__(self, head, num_samples=64, reduction="sum_over_batch_size", name="crps", dtype=None):
        super().__init__(head, reduction=reduction, name=name, dtype=dtype)
        self.num_samples = int_at_least("CRPS", "num_samples", num_samples, 2, whole_floats=True)
        probe = self._scalar(np.zeros((1, self.head.params_size)))
        self.closed_form = closed_form_crps(probe, tf.zeros(probe.batch_shape, probe.dtype)) is not None
        if not self.closed_form and probe.reparameterization_type != tfd.FULLY_REPARAMETERIZED:
            raise ValueError(
                f"CRPS: {type(self.head).__name__}'s distribution has no closed-form CRPS and its "
                "draws cannot be differentiated; train it with NegativeLogLikelihood"
            )

    def _scalar(self, params):
        try:
            dist = self.head.distribution(params)
        except ValueError as exc:
            raise ValueError(f"CRPS: {exc}") from None
        scalar = scalar_distribution(dist) if isinstance(dist, tfd.Distribution) else None
        if scalar is None:
            raise ValueError(
                f"CRPS: {type(self.head).__name__} must give a distribution over "
                "scalar outputs (the CRPS is defined for univariate outcomes)"
            )
        return scalar

    def call(self, y_true, y_pred):
        dist = self._scalar(y_pred)
        y = tf.reshape(tf.cast(y_true, dist.dtype), dist.batch_shape_tensor())
        value = closed_form_crps(dist, y)
        if value is None:
            value = crps_samples(dist.sample(self.num_samples), y, fair=True)
        if value.shape.rank is not None and value.shape.rank > 1:
            value = tf.reduce_sum(value, axis=list(range(1, value.shape.rank)))
        return value

    def get_config(self):
        config = super().get_config()
        config.update(num_samples=self.num_samples)
        return config
