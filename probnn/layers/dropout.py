"""Monte Carlo dropout: dropout that stays on at prediction time (Gal and Ghahramani 2016)."""

import keras

from probnn.layers._stochastic import StochasticLayer


@keras.saving.register_keras_serializable(package="probnn")
class MCDropout(StochasticLayer):
    """Dropout that is active in training AND at prediction time.

    `keras.layers.Dropout` is the identity unless `training=True`; this layer
    ignores `training` and drops units (scaling the kept ones by
    `1 / (1 - rate)`) on every call. A network with `MCDropout` layers is a
    stochastic model: `probnn.predict_distribution(model, x, num_samples=K)`
    runs K dropout masks in one compiled program and returns their mixture,
    whose spread between masks is the model's (approximate) epistemic
    uncertainty. It carries `probnn_stochastic = True` for that reason, and
    saves its seed state with the model.

    Args:
        rate: fraction of the units to drop, in [0, 1).
        noise_shape: shape of the binary mask (as `keras.layers.Dropout`), e.g.
            `(batch, 1, features)` to drop the same features at every time step.
        seed: integer seed of the layer's `keras.random.SeedGenerator`, or None.
        **kwargs: standard `keras.layers.Layer` arguments (`name`, `dtype`).

    Example:
    >>> import numpy as np, probnn
    >>> layer = probnn.layers.MCDropout(0.5, seed=3)
    >>> out = layer(np.ones((1, 1000), "float32"), training=False)
    >>> sorted(set(np.round(np.asarray(out)[0], 6).tolist()))  # dropped, or scaled by 2
    [0.0, 2.0]
    """

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
            raise ValueError(f"MCDropout: rate must be a number in [0, 1), got {rate!r}")
        self.rate = float(rate)
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)
        self.supports_masking = True

    def call(self, inputs, training=None):
        if self.rate == 0:
            return inputs
        return self._dropout(inputs, self.rate, self.noise_shape)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(rate=self.rate, noise_shape=self.noise_shape)
        return config
