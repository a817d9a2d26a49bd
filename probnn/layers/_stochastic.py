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

The draws (`_dropout`, `_normal`, `_randint`) are `keras.random`'s, with the
same seeds, except inside a program that XLA compiles, where they use the
ThreeFry generator. TF's default stateless generator (Philox) is very slow
under XLA on a CPU: an MC-dropout network's training epoch took 10x longer
with it (0.42 s against 0.037 s; 6 stacked 8-50-2 networks, 46 batches of
128; a Normal head without dropout: 0.018 s). TF has no ThreeFry kernel
outside XLA, so other programs keep the default. The noise is the same in
distribution; the streams differ, as XLA's and TF's Philox streams already
did (TF gives different numbers for the same seed with and without XLA).
"""

import keras
import tensorflow as tf

try:  # TF's own test of "inside a function XLA compiles" (private, stable since TF 1.x)
    from tensorflow.python.ops.control_flow_util import GraphOrParentsInXlaContext
except ImportError:  # pragma: no cover - a TF without it: the default generator everywhere
    GraphOrParentsInXlaContext = None


def _rng_alg():
    """ "threefry" while building a program XLA compiles (`jit_compile=True`), else TF's default."""
    if GraphOrParentsInXlaContext is None or tf.executing_eagerly():
        return "auto_select"
    return "threefry" if GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph()) else "auto_select"


class StochasticLayer(keras.layers.Layer):
    """Base of layers that draw noise on every call from `self.seed_generator`."""

    probnn_stochastic = True

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"{type(self).__name__}: seed must be an integer or None, got {seed!r}")
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _seed(self):
        """The next seed of `self.seed_generator`, as `keras.random` draws and converts it."""
        seed = self.seed_generator.next()
        if seed.dtype != tf.int32:  # Keras's conversion of the int64 state
            seed = tf.cast(tf.math.floormod(seed, tf.int32.max - 1), tf.int32)
        return seed

    def _dropout(self, inputs, rate, noise_shape=None):
        """`keras.random.dropout(inputs, rate, noise_shape, seed=self.seed_generator)`."""
        if noise_shape is not None:
            shape = tf.shape(inputs)
            noise_shape = [shape[i] if d is None else d for i, d in enumerate(noise_shape)]
        return tf.nn.experimental.stateless_dropout(
            inputs, rate=rate, seed=self._seed(), rng_alg=_rng_alg(), noise_shape=noise_shape
        )

    def _normal(self, shape, dtype):
        """`keras.random.normal(shape, dtype=dtype, seed=self.seed_generator)`."""
        return tf.random.stateless_normal(shape, self._seed(), dtype=dtype, alg=_rng_alg())

    def _randint(self, shape, minval, maxval):
        """`keras.random.randint(shape, minval, maxval, seed=self.seed_generator)` (int32)."""
        return tf.random.stateless_uniform(
            shape, self._seed(), minval=minval, maxval=maxval, dtype=tf.int32, alg=_rng_alg()
        )

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
