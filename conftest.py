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


# Docstring examples that run a whole MCMC fit, grid search or a stack's training (3-10 s
# each on a quiet 2-core machine, mostly XLA compiles): the integration tier (pyproject.toml),
# like the tests marked so. Each one's code path has a cheaper test in the fast tier (named).
INTEGRATION_DOCTESTS = {
    "probnn.bayes.linear.linear_regression",
    "probnn.bayes.glm.glm",
    "probnn.bayes.glm.Groups",  # varying slopes by VI: tests/test_bayes_glm.py
    "probnn.bayes.nuts.run_nuts",  # NUTS: tests/test_bayes_settings.py, tests/test_bayes_sample.py
    "probnn.bayes.sample.sample",
    "probnn.grid.GridSearch",
    "probnn.sklearn.classifier.ProbabilisticClassifier",  # tests/test_sklearn.py
    "probnn.training.member_stopping.MemberEarlyStopping",  # tests/test_member_wise_data.py
    "probnn.training.member_stopping.MemberEpochs",  # GridSearch.refit: tests/test_grid_search.py
}


@pytest.hookimpl(tryfirst=True)  # before pytest's -m selection reads the markers
def pytest_collection_modifyitems(config, items):
    for item in items:
        if isinstance(item, pytest.DoctestItem) and item.name in INTEGRATION_DOCTESTS:
            item.add_marker(pytest.mark.integration)
