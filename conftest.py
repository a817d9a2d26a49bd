"""Set-up shared by every test of the repository: tests/ and the docstring examples.

It lives at the root so the docstring examples in probnn/ (run by --doctest-modules)
get the same fresh Keras state as the tests: with pytest-xdist, a worker may run a
docstring example right after any test file, and Keras's layer-name counters are global.
"""

import pytest


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


# Docstring examples that run a whole MCMC fit or grid search (5-10 s each on a quiet
# 2-core machine): the integration tier (pyproject.toml), like the tests marked so.
INTEGRATION_DOCTESTS = {
    "probnn.bayes.linear.linear_regression",
    "probnn.bayes.glm.glm",
    "probnn.bayes.sample.sample",
    "probnn.grid.GridSearch",
}


@pytest.hookimpl(tryfirst=True)  # before pytest's -m selection reads the markers
def pytest_collection_modifyitems(config, items):
    for item in items:
        if isinstance(item, pytest.DoctestItem) and item.name in INTEGRATION_DOCTESTS:
            item.add_marker(pytest.mark.integration)
