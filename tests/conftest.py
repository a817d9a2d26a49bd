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

# pytest-xdist runs one worker per core: each worker's TensorFlow gets its share of the cores
# instead of a thread per core (two workers with two threads each contend on two cores).
_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _workers > 1:
    tf.config.threading.set_intra_op_parallelism_threads(max(1, (os.cpu_count() or 1) // _workers))


def _compile_in_process_tests_for_compile_time():
    """XLA's LLVM back end without its expensive optimisation passes, in this process only.

    The in-process tests compile hundreds of small XLA programs and run each for a few steps, so
    compilation is most of their time. `--xla_llvm_disable_expensive_passes` skips LLVM's costly
    passes and keeps the code generation (and its rounding): an ensemble trained with and without
    it gave bit-identical predictions (tests/test_epistemic_gap.py's ensemble, 3 seeds), whereas
    `--xla_backend_optimization_level=0` changed the last bits and, through them, 200 epochs later,
    that test's outcome. With one TensorFlow thread per worker, six test files ran in 65 s instead
    of 80 s on 2 cores (wall time, two workers).

    XLA reads XLA_FLAGS once, at its first compilation: that compilation happens here, then the
    variable is restored, so the processes the tests start (the docs blocks, notebooks, the
    probnn command, the examples) compile with XLA's defaults, as users' processes do.
    """
    before = os.environ.get("XLA_FLAGS")
    os.environ["XLA_FLAGS"] = f"{before or ''} --xla_llvm_disable_expensive_passes=true".strip()
    try:
        tf.function(tf.identity, jit_compile=True, autograph=False)(tf.constant(0.0))
    finally:
        if before is None:
            del os.environ["XLA_FLAGS"]
        else:
            os.environ["XLA_FLAGS"] = before


_compile_in_process_tests_for_compile_time()


@pytest.fixture
def rng():
    """A NumPy generator with a fixed seed: tests are reproducible."""
    return np.random.default_rng(20261124)
