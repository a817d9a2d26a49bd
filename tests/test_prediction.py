"""Predictive mixtures: closed-form uncertainty split, vectorised stochastic passes, errors."""

import gc
import weakref

import keras
import numpy as np
import pytest
import tensorflow as tf

import probnn
from probnn.functional import seed_states as _seed_states
from probnn.layers import DenseFlipout, DenseReparameterization, MCDropout
from probnn.prediction import decompose_uncertainty, mixture_distribution


def test_decompose_uncertainty_matches_closed_form(rng):
    head = probnn.heads.NormalHead(event_size=2)
    params = rng.normal(size=(6, 7, 4))  # 6 rows, 7 components, (loc, raw scale) x 2
    dist = mixture_distribution(head, params)
    aleatoric, epistemic = decompose_uncertainty(dist)
    loc, raw = params[..., :2], params[..., 2:]
    scale = np.log1p(np.exp(raw)) + 1e-6
    # Uniform mixture: mean of the variances, population variance of the means (float64).
    np.testing.assert_allclose(aleatoric, (scale**2).mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(epistemic, loc.var(axis=1), rtol=1e-12)
    np.testing.assert_allclose(aleatoric + epistemic, dist.variance(), rtol=1e-12)
    assert dist.batch_shape == [6] and dist.event_shape == [2]

    plain = head.distribution(params[:, 0])
    a, e = decompose_uncertainty(plain)
    np.testing.assert_allclose(a, scale[:, 0] ** 2, rtol=1e-12)
    np.testing.assert_array_equal(e, 0.0)
    with pytest.raises(ValueError, match="decompose_uncertainty: expected a tfd.Distribution"):
        decompose_uncertainty(params)
    with pytest.raises(ValueError, match=r"mixture_distribution: expected parameters of shape"):
        mixture_distribution(head, params[0])


def _linear_variational(scale=0.5):
    """y's mean = x @ W with W ~ N(loc, scale^2) per pass; the head passes h through."""
    model = keras.Sequential(
        [
            keras.Input((3,)),
            DenseReparameterization(1, use_bias=False, posterior_scale=scale, seed=1),
            probnn.heads.NormalHead(),
        ]
    )
    head = model.layers[-1]
    head.kernel.assign([[1.0, 0.0]])
    return model


def test_samples_are_independent_weight_draws(rng):
    model = _linear_variational(0.5)
    x = rng.normal(size=(4, 3)).astype("float32")
    k = 4000
    dist = probnn.predict_distribution(model, x, num_samples=k, seed=7)
    aleatoric, epistemic = decompose_uncertainty(dist)
    expected = (x.astype(np.float64) ** 2).sum(axis=1) * 0.25  # Var(x @ W)
    # Sample variance of 4000 normal draws: relative standard error sqrt(2/4000) = 2.2%;
    # 4 standard errors.
    np.testing.assert_allclose(np.asarray(epistemic)[:, 0], expected, rtol=0.09)
    loc = model.layers[0].kernel_loc.numpy()[:, 0]
    means = np.asarray(dist.components_distribution.mean())[..., 0]  # (4, K)
    se = np.sqrt(expected / k)
    assert np.all(np.abs(means.mean(axis=1) - x @ loc) < 4 * se)
    np.testing.assert_allclose(np.asarray(aleatoric)[:, 0], (np.log(2) + 1e-6) ** 2, rtol=1e-5)


def test_vectorised_passes_equal_a_loop_of_stateless_calls(rng):
    model = keras.Sequential(
        [
            keras.Input((3,)),
            DenseFlipout(8, activation="tanh", seed=1),
            MCDropout(0.3, seed=2),
            DenseReparameterization(4, seed=3),
            probnn.heads.NormalHead(),
        ]
    )
    x = rng.normal(size=(5, 3)).astype("float32")
    dist = probnn.predict_distribution(model, x, num_samples=6, seed=11)
    params = np.asarray(dist.components_distribution.distribution.loc)[..., 0]  # (5, 6)
    states = _seed_states(model, 6, 11)
    trainable = [v.value for v in model.trainable_variables]
    for k in range(6):
        out, _ = model.stateless_call(trainable, [s[k] for s in states], x)
        # pfor's batched matmuls vs plain ones: float32 round-off of O(1) values.
        np.testing.assert_allclose(params[:, k], np.asarray(out)[:, 0], atol=1e-5)
    assert np.std(params, axis=1).min() > 1e-3  # the passes differ
    again = probnn.predict_distribution(model, x, num_samples=6, seed=11)
    np.testing.assert_array_equal(
        again.components_distribution.distribution.loc, dist.components_distribution.distribution.loc
    )
    other = probnn.predict_distribution(model, x, num_samples=6, seed=12)
    assert not np.allclose(
        other.components_distribution.distribution.loc, dist.components_distribution.distribution.loc
    )


def test_chunks_share_each_samples_weight_draw(rng):
    model = _linear_variational()
    x = rng.normal(size=(7, 3)).astype("float32")
    whole = probnn.predict_distribution(model, x, num_samples=5, seed=3)
    chunked = probnn.predict_distribution(model, x, num_samples=5, seed=3, batch_size=3)
    np.testing.assert_allclose(
        chunked.components_distribution.distribution.loc,
        whole.components_distribution.distribution.loc,
        atol=1e-6,
    )


def test_errors_name_the_function():
    deterministic = keras.Sequential([keras.Input((2,)), probnn.heads.NormalHead()])
    x = np.zeros((3, 2), "float32")
    with pytest.raises(ValueError, match="predict_distribution: num_samples=5 needs a stochastic"):
        probnn.predict_distribution(deterministic, x, num_samples=5)
    assert probnn.predict_distribution(deterministic, x, num_samples=1).batch_shape == [3]
    stochastic = keras.Sequential([keras.Input((2,)), MCDropout(0.5), probnn.heads.NormalHead()])
    with pytest.raises(ValueError, match="predict_distribution: model .* has stochastic layers"):
        probnn.predict_distribution(stochastic, x)
    with pytest.raises(ValueError, match="predict_distribution: num_samples must be a positive"):
        probnn.predict_distribution(stochastic, x, num_samples=0)
    with pytest.raises(ValueError, match="predict_distribution: seed must be an integer"):
        probnn.predict_distribution(stochastic, x, num_samples=2, seed=1.5)


def test_custom_layer_can_declare_itself_stochastic(rng):
    class Jitter(keras.layers.Layer):
        probnn_stochastic = True

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.seed_generator = keras.random.SeedGenerator(0)

        def call(self, x):
            return x + keras.random.normal(tf.shape(x), seed=self.seed_generator)

    model = keras.Sequential([keras.Input((1,)), Jitter(), probnn.heads.NormalHead()])
    model.layers[-1].kernel.assign([[1.0, 0.0]])
    dist = probnn.predict_distribution(model, np.zeros((2, 1), "float32"), num_samples=2000, seed=0)
    _, epistemic = decompose_uncertainty(dist)
    # Variance of 2000 standard normal draws: 4 relative standard errors (sqrt(2/2000)).
    np.testing.assert_allclose(epistemic, 1.0, rtol=0.13)


def test_sampler_cache_does_not_keep_the_model_alive():
    model = keras.Sequential([keras.Input((2,)), probnn.layers.MCDropout(0.2), probnn.heads.NormalHead()])
    x = np.zeros((4, 2), "float32")
    first = probnn.predict_distribution(model, x, num_samples=3, seed=0)
    again = probnn.predict_distribution(model, x, num_samples=3, seed=0)
    np.testing.assert_array_equal(first.mean(), again.mean())  # same seed, same cached program
    ref = weakref.ref(model)
    del model, first, again
    gc.collect()
    assert ref() is None
