"""Mixture-of-Normals head: a mixture density network output layer."""

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from probnn._validation import int_at_least
from probnn.heads.base import RealEventHead, positive_scale

tfd = tfp.distributions


def normal_mixture(logits, loc, scale):
    """A `MixtureSameFamily` of independent Normals.

    Args:
        logits: mixture logits, shape `batch + (K,)`.
        loc, scale: shape `batch + (K, event_size)`.

    The mixture's `log_prob` is a logsumexp over `log_softmax(logits)` plus the
    component log densities, so it stays finite when one weight underflows.
    """
    components = tfd.Independent(tfd.Normal(loc, scale), reinterpreted_batch_ndims=1)
    return tfd.MixtureSameFamily(tfd.Categorical(logits=logits), components)


class _NormalMixtureLayout(RealEventHead):
    """Parameter layout `[logits (K), loc (K·E), raw_scale (K·E)]` shared by mixture heads."""

    supports_target_scaling = True  # distribution() maps loc and scale with in_target_units

    def __init__(self, num_components, event_size=1, *, min_scale=1e-6, **kwargs):
        super().__init__(event_size, min_scale=min_scale, **kwargs)
        self.num_components = int_at_least(
            type(self).__name__, "num_components", num_components, 1, whole_floats=True
        )

    @property
    def params_size(self):
        return self.num_components * (1 + 2 * self.event_size)

    def distribution(self, params):
        params = self._params(params)
        k, e = self.num_components, self.event_size
        logits, loc, raw_scale = tf.split(params, [k, k * e, k * e], axis=-1)
        shape = tf.concat([tf.shape(params)[:-1], [k, e]], axis=0)
        loc, scale = self.in_target_units(
            tf.reshape(loc, shape), positive_scale(tf.reshape(raw_scale, shape), self.min_scale)
        )
        return normal_mixture(logits, loc, scale)

    def get_config(self):
        config = super().get_config()
        config.update(num_components=self.num_components)
        return config


@keras.saving.register_keras_serializable(package="probnn")
class MixtureNormalHead(_NormalMixtureLayout):
    """A mixture of `num_components` Normals whose weights, means and scales all depend on the input.

    Parameters are `[logits (K), loc (K·E), raw_scale (K·E)]`; component
    scales are `softplus(raw_scale) + min_scale`, weights `softmax(logits)`.

    Args:
        num_components: number of mixture components K (>= 1).
        event_size: dimension E of each output (>= 1).
        min_scale: floor added to every component scale (> 0).
        **kwargs: see `DistributionHead`.

    Example:
    >>> import numpy as np, probnn
    >>> head = probnn.heads.MixtureNormalHead(num_components=3)
    >>> head.params_size
    9
    >>> head.distribution(np.zeros((5, 9), "float32")).batch_shape.as_list()
    [5]
    """
