"""What probnn's stochastic layers share: the `probnn_stochastic` marker and a saved seed state.

A layer that draws fresh noise on every call, also at prediction time
(`MCDropout`, the variational layers), carries the class attribute
`probnn_stochastic = True`. `probnn.predict_distribution` looks for it (any
layer of yours can declare itself stochastic the same way) to allow
`num_samples > 1`; it must draw its noise with `keras.random` from a
`keras.random.SeedGenerator` attribute, so that K samples can be drawn in one
vectorised call by giving each its own seed state.

Keras does not save a `SeedGenerator`'s state with the model; these layers
do (as one extra entry in their weights store), so a model saved after some
calls continues, once loaded, with the same random stream as the original.
"""

import keras


class StochasticLayer(keras.layers.Layer):
    """Base of layers that draw noise on every call from `self.seed_generator`."""

    probnn_stochastic = True

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"{type(self).__name__}: seed must be an integer or None, got {seed!r}")
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def save_own_variables(self, store):
        super().save_own_variables(store)
        store["seed_state"] = self.seed_generator.state

    def load_own_variables(self, store):
        if "seed_state" in store.keys():
            self.seed_generator.state.assign(store["seed_state"])
            store = {key: store[key] for key in store.keys() if key != "seed_state"}
        super().load_own_variables(store)

    def get_config(self):
        config = super().get_config()
        config.update(seed=self.seed)
        return config
