"""TEMPORARY stand-ins for probnn.heads / probnn.losses until they land on main."""

import keras
import tensorflow as tf
import tensorflow_probability as tfp

import probnn.heads
import probnn.losses

tfd = tfp.distributions


class NormalHead(keras.layers.Layer):
    def __init__(self, event_size=1, **kwargs):
        super().__init__(**kwargs)
        self.event_shape = (event_size,)
        self.params_size = 2 * event_size
        self.proj = keras.layers.Dense(self.params_size)

    def build(self, input_shape):
        self.proj.build(input_shape)

    def call(self, features):
        return self.proj(features)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.params_size,)

    def distribution(self, params):
        loc, raw = tf.split(params, 2, axis=-1)
        return tfd.Independent(tfd.Normal(loc, tf.nn.softplus(raw) + 1e-3), 1)


def find_head(model):
    heads = [l for l in model._flatten_layers() if isinstance(l, NormalHead)]
    if len(heads) != 1:
        raise ValueError(f"model has {len(heads)} distribution heads")
    return heads[0]


class NegativeLogLikelihood(keras.losses.Loss):
    def __init__(self, head, **kwargs):
        super().__init__(name="nll", **kwargs)
        self.head = head

    def call(self, y_true, y_pred):
        return -self.head.distribution(y_pred).log_prob(y_true)


probnn.heads.NormalHead = NormalHead
probnn.heads.find_head = find_head
probnn.losses.NegativeLogLikelihood = NegativeLogLikelihood
