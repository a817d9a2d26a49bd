"""probnn.bayes.NUTS / VI: settings checked once, a run continued from its state, the bounded cache."""

import warnings

import numpy as np
import pytest

import probnn
from probnn.bayes import nuts as nuts_module
from probnn.bayes.cache import CompiledCache


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 2))
    return x, 1.0 + x @ np.array([0.5, -1.0]) + rng.normal(size=50)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: probnn.bayes.NUTS(num_samples=0), r"^NUTS: num_samples must be an integer >= 1, got 0$"),
        (lambda: probnn.bayes.NUTS(num_warmup=-1), r"^NUTS: num_warmup must be an integer >= 0, got -1$"),
        (lambda: probnn.bayes.NUTS(num_chains=1.5), r"^NUTS: num_chains must be an integer >= 1, got 1.5$"),
        (lambda: probnn.bayes.NUTS(max_tree_depth=True), r"^NUTS: max_tree_depth must be an integer"),
        (lambda: probnn.bayes.NUTS(target_accept=1.0), r"^NUTS: target_accept must be in \(0, 1\), got 1.0$"),
        (lambda: probnn.bayes.NUTS(target_accept=float("nan")), r"^NUTS: target_accept must be in \(0, 1\)"),
        (lambda: probnn.bayes.NUTS(verbose=3), r"^NUTS: verbose must be 0 or 1, got 3$"),
        (lambda: probnn.bayes.NUTS(seed=-1), r"^NUTS: seed must be an integer >= 0, got -1$"),
        (lambda: probnn.bayes.NUTS(posterior_predictive=1.5), r"^NUTS: posterior_predictive must be True"),
        (lambda: probnn.bayes.NUTS(initial_state=np.zeros(3)), r"^NUTS: initial_state must be the Inference"),
        (lambda: probnn.bayes.VI("laplace"), r"^VI: method must be 'advi' or 'fullrank', got 'laplace'$"),
        (lambda: probnn.bayes.VI(num_steps=10), r"^VI: num_steps must be an integer >= 20, got 10$"),
    ],
)
def test_settings_are_checked_when_made_in_one_line(make, message):
    with pytest.raises(ValueError, match=message) as info:
        make()
    assert "\n" not in str(info.value)


def test_settings_are_frozen_values():
    nuts = probnn.bayes.NUTS(num_samples=np.int64(300), seed=np.int32(2))
    assert nuts == probnn.bayes.NUTS(num_samples=300, seed=2) and type(nuts.num_samples) is int
    with pytest.raises(AttributeError):
        nuts.num_samples = 10
    assert hash(nuts) == hash(probnn.bayes.NUTS(num_samples=300, seed=2))


@pytest.mark.integration
def test_a_continued_run_is_the_uninterrupted_run(data):
    x, y = data
    settings = dict(num_chains=2, num_warmup=150, seed=0, verbose=0)
    whole = probnn.bayes.linear_regression(x, y, sampler=probnn.bayes.NUTS(num_samples=200, **settings))
    first = probnn.bayes.linear_regression(x, y, sampler=probnn.bayes.NUTS(num_samples=100, **settings))
    state = first.sampler_state
    assert state["position"].shape == (2, 4) and state["inverse_metric"].shape == (2, 4)
    # seed=None continues the first run's random stream: its draws are the uninterrupted run's.
    more = probnn.bayes.NUTS(num_samples=100, num_warmup=0, num_chains=2, verbose=0, initial_state=first)
    second = probnn.bayes.linear_regression(x, y, sampler=more)
    for name in ("intercept", "coef", "sigma"):
        np.testing.assert_array_equal(second.posterior[name], whole.posterior[name][:, 100:])
    # Every continued draw was made with the first run's adapted step size and metric.
    step = state["step_size"].values
    np.testing.assert_array_equal(second.sample_stats["step_size"].values, np.repeat(step[:, None], 100, 1))
    np.testing.assert_array_equal(first.sample_stats["step_size"].values[:, -1], step)
    np.testing.assert_array_equal(second.sampler_state["inverse_metric"], state["inverse_metric"])
    # A new seed: other draws, the same adaptation; from the explicit NUTSState as well.
    explicit = probnn.bayes.NUTSState.from_inference_data(first)
    other = probnn.bayes.linear_regression(
        x,
        y,
        sampler=probnn.bayes.NUTS(
            num_samples=100, num_warmup=0, num_chains=2, seed=7, verbose=0, initial_state=explicit
        ),
    )
    assert not np.array_equal(other.posterior["coef"], second.posterior["coef"])
    np.testing.assert_array_equal(other.sample_stats["step_size"].values[:, 0], step)


@pytest.mark.integration
def test_continuing_another_model_or_a_vi_fit_is_one_clear_line(data):
    x, y = data
    first = probnn.bayes.linear_regression(
        x, y, sampler=probnn.bayes.NUTS(num_chains=2, num_samples=20, num_warmup=20, seed=0, verbose=0)
    )
    with pytest.raises(
        ValueError, match=r"^linear_regression: initial_state has 2 chain\(s\) of dimension 4; "
    ):
        probnn.bayes.linear_regression(
            x, y, sampler=probnn.bayes.NUTS(num_chains=3, verbose=0, initial_state=first)
        )
    with warnings.catch_warnings():  # 20 steps: not converged, and said so
        warnings.simplefilter("ignore", RuntimeWarning)
        vi = probnn.bayes.linear_regression(
            x, y, sampler=probnn.bayes.VI(num_steps=20, num_samples=10, num_chains=2, seed=0)
        )
    assert "sampler_state" not in vi.groups()
    with pytest.raises(
        ValueError, match=r"^NUTS: initial_state must be the InferenceData of an earlier NUTS"
    ):
        probnn.bayes.NUTS(initial_state=vi)


def test_compiled_kernels_are_kept_in_a_bounded_cache(data):
    x, y = data
    nuts = probnn.bayes.NUTS(num_chains=2, num_samples=10, num_warmup=10, seed=0, verbose=0)
    probnn.bayes.linear_regression(x, y, sampler=nuts)
    size = len(nuts_module._KERNELS)
    probnn.bayes.linear_regression(x + 1.0, y, sampler=nuts)  # same structure: the same program
    assert len(nuts_module._KERNELS) == size <= nuts_module._KERNELS.maxsize == 8
    cache = CompiledCache(maxsize=2)
    built = []
    for key in ["a", "b", "a", "c", "b"]:
        cache.get_or_build(key, lambda key=key: built.append(key) or key)
    assert built == ["a", "b", "c", "b"] and list(cache.keys()) == ["c", "b"]
