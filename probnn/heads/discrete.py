"""Heads for discrete targets: counts (Poisson), binary (Bernoulli) and classes (Categorical)."""

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from probnn._validation import int_at_least
from probnn.heads.base import DistributionHead

tfd = tfp.distributions


def invalid_counts(y):
    """True where `y` is not a non-negative integer count (the check of every count head)."""
    return ~((y >= 0) & (y == np.round(y)))


class _IndependentDiscreteHead(DistributionHead):
    """`event_size` independent discrete outputs, one unconstrained parameter each."""

    def __init__(self, event_size=1, **kwargs):
        super().__init__(**kwargs)
        self.event_size = int_at_least(type(self).__name__, "event_size", event_size, 1, whole_floats=True)

    @property
    def params_size(self):
        return self.event_size

    @property
    def event_shape(self):
        return (self.event_size,)

    def distribution(self, params):
        return tfd.Independent(self._base(self._params(params)), reinterpreted_batch_ndims=1)

    def get_config(self):
        config = super().get_config()
        config.update(event_size=self.event_size)
        return config


@keras.saving.register_keras_serializable(package="probnn")
class PoissonHead(_IndependentDiscreteHead):
    """Independent Poisson counts; the parameters are log rates.

    Working with `log_rate` directly keeps `log_prob` exact and finite for any
    finite parameter (no `exp` followed by `log`).

    Args:
        event_size: number of count outputs per example (>= 1).
        **kwargs: see `DistributionHead`.

    Example:
    >>> import numpy as np, probnn
    >>> dist = probnn.heads.PoissonHead().distribution(np.log([[2.0]]).astype("float32"))
    >>> float(dist.mean()[0, 0])
    2.0
    """

    def _base(self, params):
        return tfd.Poisson(log_rate=params)

    def _invalid_targets(self, y):
        return "non-negative integer counts", invalid_counts(y)


@keras.saving.register_keras_serializable(package="probnn")
class BernoulliHead(_IndependentDiscreteHead):
    """Independent Bernoulli outputs; the parameters are logits.

    Args:
        event_size: number of binary outputs per example (>= 1).
        **kwargs: see `DistributionHead`.

    Example:
    >>> import numpy as np, probnn
    >>> dist = probnn.heads.BernoulliHead().distribution(np.zeros((1, 1), "float32"))
    >>> float(dist.mean()[0, 0])
    0.5
    """

    def _base(self, params):
        return tfd.Bernoulli(logits=params, dtype=params.dtype)

    def _invalid_targets(self, y):
        return "0 or 1", ~((y == 0) | (y == 1))


@keras.saving.register_keras_serializable(package="probnn")
class CategoricalHead(DistributionHead):
    """A Categorical distribution over `num_classes` classes; the parameters are logits.

    Targets are integer class indices of shape `batch` or `batch + (1,)`
    (floats holding integers, as Keras passes them, are accepted).

    Args:
        num_classes: number of classes (>= 2).
        **kwargs: see `DistributionHead`.

    Example:
    >>> import numpy as np, probnn
    >>> head = probnn.heads.CategoricalHead(3)
    >>> head.distribution(np.zeros((2, 3), "float32")).probs_parameter().shape
    TensorShape([2, 3])
    """

    def __init__(self, num_classes, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = int_at_least(type(self).__name__, "num_classes", num_classes, 2, whole_floats=True)

    @property
    def params_size(self):
        return self.num_classes

    @property
    def event_shape(self):
        return ()

    def distribution(self, params):
        return tfd.Categorical(logits=self._params(params), dtype=tf.int32)

    def _invalid_targets(self, y):
        return (
            f"integer class indices in [0, {self.num_classes})",
            ~((y >= 0) & (y < self.num_classes) & (y == np.round(y))),
        )

    def _cast_target(self, y, dist):
        if y.dtype.is_floating:
            y = tf.round(y)
        return tf.cast(y, tf.int32)

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes)
        return config
