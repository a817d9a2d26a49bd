"""Multivariate Normal head: correlated real outputs with a learned Cholesky factor."""

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from probnn.heads.base import RealEventHead

tfb = tfp.bijectors
tfd = tfp.distributions


@keras.saving.register_keras_serializable(package="probnn")
class MultivariateNormalHead(RealEventHead):
    """A `MultivariateNormalTriL` over `event_size` correlated outputs.

    Parameters are `[loc (d), tril (d (d + 1) / 2)]`. The lower-triangular
    scale is filled from the second block by `tfb.FillScaleTriL`, with diagonal
    `softplus(raw) + min_scale`, so the covariance `L Lᵀ` is positive definite.

    Args:
        event_size: the dimension d of each output (>= 1).
        min_scale: floor added to the Cholesky diagonal (> 0).
        **kwargs: see `DistributionHead`.

    Example:
    >>> import numpy as np, probnn
    >>> head = probnn.heads.MultivariateNormalHead(event_size=2)
    >>> head.params_size
    5
    >>> head.distribution(np.zeros((4, 5), "float32")).event_shape.as_list()
    [2]
    """

    supports_target_scaling = True  # distribution() maps loc and Cholesky rows with in_target_units

    def __init__(self, event_size, *, min_scale=1e-6, **kwargs):
        super().__init__(event_size, min_scale=min_scale, **kwargs)

    @property
    def params_size(self):
        d = self.event_size
        return d + d * (d + 1) // 2

    def distribution(self, params):
        params = self._params(params)
        loc, raw_tril = tf.split(params, [self.event_size, self.params_size - self.event_size], -1)
        fill = tfb.FillScaleTriL(
            diag_bijector=tfb.Chain([tfb.Shift(tf.cast(self.min_scale, params.dtype)), tfb.Softplus()]),
            diag_shift=None,
        )
        loc, scale_tril = self.in_target_units(loc, fill.forward(raw_tril), matrix=True)
        return tfd.MultivariateNormalTriL(loc=loc, scale_tril=scale_tril)
