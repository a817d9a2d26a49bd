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
from hypothesis import HealthCheck, settings  # noqa: E402
from hypothesis.database import DirectoryBasedExampleDatabase  # noqa: E402

# Property-based tests (the probnn.stats tests) run under one of two hypothesis profiles:
#
# * "ci" (default): derandomize=True, so every run draws the same 40 examples per test
#   (chosen from the test's own source); a failure in CI fails the same way on every
#   machine and is replayed by re-running that test. Hypothesis prints the shrunk
#   failing example, and print_blob adds a `@reproduce_failure(...)` line to paste
#   above the test. No example database (nothing to keep between runs).
# * "explore": random examples, 500 per test, failures saved to .hypothesis/examples
#   and replayed first on the next run; replay a whole run with `--hypothesis-seed=N`
#   (the seed is printed on failure). Select it with `pytest --hypothesis-profile=explore`
#   or HYPOTHESIS_PROFILE=explore.
_HYPOTHESIS_COMMON = dict(
    deadline=None,  # TF's first call of an op is slow
    print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile("ci", derandomize=True, max_examples=40, database=None, **_HYPOTHESIS_COMMON)
settings.register_profile(
    "explore",
    derandomize=False,
    max_examples=500,
    database=DirectoryBasedExampleDatabase(".hypothesis/examples"),
    **_HYPOTHESIS_COMMON,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(_cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)


@pytest.fixture
def rng():
    """A NumPy generator with a fixed seed: tests are reproducible."""
    return np.random.default_rng(20261124)
