"""Normal and Student-t heads: real-valued targets with a learned, input-dependent scale."""

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from probnn._validation import positive_number
from probnn.heads.base import RealEventHead, positive_scale

tfd = tfp.distributions


class _LocationScaleHead(RealEventHead):
    """A head whose parameters are `_blocks` blocks of length `event_size`: loc, raw scale, ..."""

    supports_target_scaling = True  # distribution() maps loc and scale with in_target_units

    _blocks = 2  # location, scale

    @property
    def params_size(self):
        return self._blocks * self.event_size

    def _split(self, params):
        return tf.split(self._params(params), self._blocks, axis=-1)


@keras.saving.register_keras_serializable(package="probnn")
class NormalHead(_LocationScaleHead):
    """Independent Normal distributions over `event_size` real outputs.

    Parameters are `[loc (event_size), raw_scale (event_size)]`; the scale is
    `softplus(raw_scale) + min_scale`. The distribution is
    `Independent(Normal(loc, scale), reinterpreted_batch_ndims=1)`.

    With `scale="shared"` (homoscedastic regression) the projection gives only
    the locations, and `raw_scale` is one learned weight per output (named
    `raw_scale`, initialised at 0), the same for every input; the parameter
    tensor keeps the layout above, so losses and `distribution` are unchanged.

    Args:
        event_size: number of real outputs per example (>= 1).
        min_scale: floor added to every scale (> 0), so log densities stay finite.
        scale: `"input"` (the default: a scale per input, from the features) or
            `"shared"` (one learned scale per output, shared by all inputs).
        **kwargs: see `DistributionHead` (initializers, regularizer, name, dtype).

    Example:
    >>> import keras, numpy as np, probnn
    >>> head = probnn.heads.NormalHead()
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(8), head])
    >>> params = model(np.zeros((4, 3), "float32"))
    >>> head.distribution(params).event_shape.as_list(), params.shape
    ([1], TensorShape([4, 2]))
    >>> shared = probnn.heads.NormalHead(scale="shared")
    >>> model = keras.Sequential([keras.Input((3,)), shared])
    >>> params = model(np.random.default_rng(0).normal(size=(4, 3)).astype("float32"))
    >>> float(np.ptp(params[:, 1])), [w.name for w in shared.weights]
    (0.0, ['kernel', 'bias', 'raw_scale'])
    """

    def __init__(self, event_size=1, *, min_scale=1e-6, scale="input", **kwargs):
        super().__init__(event_size, min_scale=min_scale, **kwargs)
        if scale not in ("input", "shared"):
            raise ValueError(f"NormalHead: scale must be 'input' or 'shared', got {scale!r}")
        self.scale = scale

    @property
    def projection_size(self):
        return self.event_size if self.scale == "shared" else self.params_size

    def build(self, input_shape):
        super().build(input_shape)
        if self.scale == "shared":
            self.raw_scale = self.add_weight(name="raw_scale", shape=(self.event_size,), initializer="zeros")

    def call(self, inputs):
        params = self.project(inputs)
        if self.scale == "shared":
            raw = keras.ops.broadcast_to(self.raw_scale, keras.ops.shape(params))
            params = keras.ops.concatenate([params, keras.ops.cast(raw, params.dtype)], axis=-1)
        return params

    def get_config(self):
        config = super().get_config()
        config.update(scale=self.scale)
        return config

    def distribution(self, params):
        loc, raw_scale = self._split(params)
        loc, scale = self.in_target_units(loc, positive_scale(raw_scale, self.min_scale))
        return tfd.Independent(tfd.Normal(loc, scale), reinterpreted_batch_ndims=1)


@keras.saving.register_keras_serializable(package="probnn")
class StudentTHead(_LocationScaleHead):
    """Independent Student-t distributions with learned degrees of freedom.

    Parameters are `[loc, raw_scale, raw_df]`, each of length `event_size`;
    `scale = softplus(raw_scale) + min_scale` and
    `df = 2 + min_df_excess + softplus(raw_df)`, so the degrees of freedom
    are above 2 by construction and the variance always exists.

    Args:
        event_size: number of real outputs per example (>= 1).
        min_scale: floor added to every scale (> 0).
        min_df_excess: how far above 2 the degrees of freedom stay (> 0); the
            default 1e-3 keeps `df > 2` even in float32.
        **kwargs: see `DistributionHead`.

    Example:
    >>> import numpy as np, probnn
    >>> head = probnn.heads.StudentTHead()
    >>> dist = head.distribution(np.zeros((2, 3), "float32"))
    >>> bool(np.all(dist.distribution.df.numpy() > 2))
    True
    """

    _blocks = 3  # location, scale, degrees of freedom

    def __init__(self, event_size=1, *, min_scale=1e-6, min_df_excess=1e-3, **kwargs):
        super().__init__(event_size, min_scale=min_scale, **kwargs)
        self.min_df_excess = positive_number(type(self).__name__, "min_df_excess", min_df_excess)

    def distribution(self, params):
        loc, raw_scale, raw_df = self._split(params)
        loc, scale = self.in_target_units(loc, positive_scale(raw_scale, self.min_scale))
        df = 2.0 + positive_scale(raw_df, self.min_df_excess)
        return tfd.Independent(tfd.StudentT(df, loc, scale), reinterpreted_batch_ndims=1)

    def get_config(self):
        config = super().get_config()
        config.update(min_df_excess=self.min_df_excess)
        return config
