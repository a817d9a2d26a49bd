"""Learnable per-feature scaling layers that can start from the data's standardisation."""

import keras
import numpy as np
from keras import ops

from probnn.layers._adapt import AdaptMixin


def feature_moments(x, chunk_size=8192):
    """Per-feature mean and standard deviation of a (num_points, n) array, in float64.

    Two passes over row chunks, so the extra memory is one chunk, not a
    float64 copy of the data.
    """
    total = np.zeros(x.shape[1])
    for start in range(0, x.shape[0], chunk_size):
        total += x[start : start + chunk_size].sum(axis=0, dtype=np.float64)
    mean = total / x.shape[0]
    sq = np.zeros(x.shape[1])
    for start in range(0, x.shape[0], chunk_size):
        sq += np.sum((x[start : start + chunk_size].astype(np.float64) - mean) ** 2, axis=0)
    return mean, np.sqrt(sq / x.shape[0])


class _FeatureAffine(AdaptMixin, keras.layers.Layer):
    """Shared implementation: `y = x * scale + shift` per feature (shift only if `_with_shift`).

    The shift is added after the factor, so it is in output units: a gradient
    step moves the output by the same amount whatever the input's scale (with
    `(x - offset) * scale` an Adam step on `offset` is amplified by `scale`).
    """

    _with_shift = False

    def __init__(self, *, scale_initializer="ones", epsilon=1e-7, **kwargs):
        super().__init__(**kwargs)
        if not epsilon > 0:
            raise ValueError(f"{self._describe()}: epsilon must be positive, got {epsilon!r}")
        self.scale_initializer = keras.initializers.get(scale_initializer)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        features = self._check_build_shape(input_shape)
        if self.built:  # by adapt or an earlier build: keep the weights
            return
        self._features = features
        self.scale = self.add_weight(
            name="scale", shape=(self._features,), initializer=self.scale_initializer
        )
        if self._with_shift:
            self.shift = self.add_weight(name="shift", shape=(self._features,), initializer="zeros")

    def call(self, inputs):
        y = ops.cast(inputs, self.compute_dtype) * ops.cast(self.scale, self.compute_dtype)
        if self._with_shift:
            y = y + ops.cast(self.shift, self.compute_dtype)
        return y

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def adapt(self, x):
        """Start from the data's standardisation, feature by feature.

        Sets `scale = 1 / std` (and, with a shift, `shift = -mean / std`), so
        the adapted layer outputs `x / std` (`Scaling`) or `(x - mean) / std`
        (`CenteringScaling`). Features whose standard deviation is below
        `epsilon` (constant features) keep scale 1. Builds the layer if it is
        not built (as `keras.layers.Normalization.adapt` does), so `scale`
        (and `shift`) can be read at once; a later call or `build` keeps them.

        Args:
            x: data, array of shape `(num_points, ..., n)`, finite.
        """
        x = self._adapt_data(x)
        mean, std = feature_moments(x)
        scale = np.where(std > self.epsilon, 1.0 / np.maximum(std, self.epsilon), 1.0)
        values = {"scale": scale}
        if self._with_shift:
            values["shift"] = -mean * scale
        self._store_adapted(x.shape[1], values)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "scale_initializer": keras.initializers.serialize(self.scale_initializer),
                "epsilon": self.epsilon,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="probnn")
class Scaling(_FeatureAffine):
    """Learnable factor per feature: `y = x * scale` (n parameters).

    `adapt(x)` starts the factors at `1 / std` of each feature.

    Args:
        scale_initializer: initializer of the factors (default ones: identity).
        epsilon: standard deviations below this count as zero in `adapt`.
        **kwargs: base `keras.layers.Layer` arguments.

    Input shape: `(..., n)`. Output shape: same.

    Example:
    >>> x = np.random.default_rng(0).normal(3.0, 2.0, size=(1000, 10))
    >>> layer = Scaling()
    >>> layer.adapt(x)
    >>> tuple(layer(x).shape), layer.count_params()
    ((1000, 10), 10)
    """


@keras.saving.register_keras_serializable(package="probnn")
class CenteringScaling(_FeatureAffine):
    """Learnable factor and shift per feature: `y = x * scale + shift` (2n parameters).

    `adapt(x)` starts from the standardisation `(x - mean) / std`.

    Args:
        scale_initializer: initializer of the factors (default ones); the
            shifts start at zero, so the layer starts as the identity.
        epsilon: standard deviations below this count as zero in `adapt`.
        **kwargs: base `keras.layers.Layer` arguments.

    Input shape: `(..., n)`. Output shape: same.

    Example:
    >>> x = np.random.default_rng(0).normal(3.0, 2.0, size=(1000, 10))
    >>> layer = CenteringScaling()
    >>> layer.adapt(x)
    >>> z = np.asarray(layer(x))
    >>> bool(np.allclose(z.mean(0), 0, atol=1e-5) and np.allclose(z.std(0), 1, atol=1e-5))
    True
    >>> layer.count_params()
    20
    """

    _with_shift = True
