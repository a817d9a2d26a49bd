"""Test-session set-up shared by every test module.

Two logical CPU devices are configured before TensorFlow initialises its
runtime, so `tf.distribute.MirroredStrategy` can be tested on a one-CPU
machine; everything else runs on the default device as usual.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2
)


@pytest.fixture
def rng():
    """A NumPy generator with a fixed seed: tests are reproducible."""
    return np.random.default_rng(20261124)


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    """Clear Keras's global name counters and seed TF so tests do not depend on order.

    `free_memory=False` skips the full garbage collection (about 0.2-0.4 s per
    test on a large TF heap); Python's collector still runs on its own schedule.
    """
    import keras

    keras.backend.clear_session(free_memory=False)
    keras.utils.set_random_seed(1234)
    yield
