"""from_predictive: predictive samples of any model as InferenceData that arviz's PPC tools read."""

import arviz as az
import keras
import matplotlib
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import probnn
from probnn.bayes import from_predictive

matplotlib.use("Agg")
tfd = tfp.distributions


def test_array_samples_one_chain_and_chains(rng):
    y = rng.normal(size=30)
    draws = rng.normal(size=(100, 30))
    idata = from_predictive(draws, y)
    assert idata.posterior_predictive["y"].dims == ("chain", "draw", "obs_id")
    assert idata.posterior_predictive["y"].shape == (1, 100, 30)
    np.testing.assert_array_equal(idata.observed_data["y"].values, y)
    # (chains, draws, n) kept as is; a head's trailing event axis of 1 is dropped.
    idata = from_predictive(draws.reshape(4, 25, 30, 1), y, var_name="target")
    assert idata.posterior_predictive["target"].shape == (4, 25, 30)
    np.testing.assert_array_equal(idata.posterior_predictive["target"].values.reshape(100, 30), draws)
    axes = az.plot_ppc(idata, num_pp_samples=20)
    assert np.size(axes) >= 1
    matplotlib.pyplot.close("all")


def test_mixture_distribution_draws_are_components_with_their_log_likelihood(rng):
    # A predictive mixture in probnn's layout: batch n, components (draws/members) K on axis 1.
    n, k = 40, 5
    loc = rng.normal(size=(n, k, 1)).astype("float32")
    comps = tfd.Independent(tfd.Normal(loc, 0.5), reinterpreted_batch_ndims=1)
    mix = tfd.MixtureSameFamily(tfd.Categorical(logits=tf.zeros((n, k))), comps)
    y = rng.normal(size=n).astype("float32")
    idata = from_predictive(mix, y, num_samples=50, seed=3)
    pp = idata.posterior_predictive["y"].values[0]  # (50, n)
    ll = idata.log_likelihood["y"].values[0]  # (50, n)
    assert pp.shape == ll.shape == (50, n)
    # Draw d comes from component d mod K: its spread about that component's mean is 0.5.
    resid = pp - loc[:, np.arange(50) % k, 0].T
    assert abs(resid.std() - 0.5) < 0.5 * 4 / np.sqrt(2 * resid.size)  # 4 standard errors of an sd
    np.testing.assert_allclose(ll, comps.log_prob(y[:, None, None]).numpy().T[np.arange(50) % k], rtol=1e-6)
    # No posterior group (no parameters were sampled): the draws are independent, so reff = 1.
    loglik = idata.log_likelihood["y"].stack(__sample__=("chain", "draw"))
    log_weights, _ = az.psislw(-loglik, reff=1.0)
    pit = az.loo_pit(idata, y="y", log_weights=log_weights)
    assert pit.shape == (n,) and np.all((pit >= 0) & (pit <= 1))


def test_plain_distribution_and_model_prediction(rng):
    model = keras.Sequential([keras.Input((2,)), probnn.heads.NormalHead()])
    x = rng.normal(size=(25, 2)).astype("float32")
    y = rng.normal(size=(25, 1)).astype("float32")
    dist = probnn.predict_distribution(model, x)
    idata = from_predictive(dist, y, num_samples=64, seed=0)
    assert idata.posterior_predictive["y"].shape == (1, 64, 25, 1)
    assert idata.log_likelihood["y"].shape == (1, 64, 25)
    # Every draw from one distribution has the same log likelihood: LOO-PIT is the plain PIT.
    np.testing.assert_allclose(idata.log_likelihood["y"].values[0, 0], dist.log_prob(y).numpy(), rtol=1e-6)


def test_bad_input_is_one_line_error(rng):
    y = rng.normal(size=10)
    with pytest.raises(ValueError, match=r"from_predictive: .*do not match observed"):
        from_predictive(rng.normal(size=(5, 11)), y)
    with pytest.raises(
        ValueError, match=r"from_predictive: observed must be finite, found 1 NaN or infinite"
    ):
        from_predictive(rng.normal(size=(5, 10)), np.r_[y[:9], np.nan])
    with pytest.raises(
        ValueError, match=r"from_predictive: predictive samples must be finite, found 1 NaN or infinite"
    ):
        from_predictive(np.r_[rng.normal(size=9), np.inf][None], y)


def test_predict_distribution_posterior_mixture_from_stored_draws(rng):
    # What sample() stores: one variable per weight and their order in attrs["probnn_weights"].
    model = keras.Sequential([keras.Input((2,)), probnn.heads.NormalHead(name="head")])
    kernel = rng.normal(size=(2, 6, 2, 2)).astype("float32")
    bias = rng.normal(size=(2, 6, 2)).astype("float32")
    idata = az.from_dict(
        posterior={"head_kernel": kernel, "head_bias": bias},
        attrs={"probnn_weights": "head_kernel,head_bias"},
    )
    x = rng.normal(size=(5, 2)).astype("float32")
    dist = probnn.predict_distribution(model, x, posterior=idata)
    comps = dist.components_distribution
    assert dist.batch_shape.as_list() == [5] and comps.batch_shape.as_list() == [5, 12]
    # Component k is the model under draw k (chains flattened first): loc = x @ kernel + bias.
    loc = np.einsum("ni,kij->nkj", x, kernel.reshape(12, 2, 2)) + bias.reshape(12, 2)
    np.testing.assert_allclose(comps.distribution.loc.numpy()[..., 0], loc[..., 0], atol=1e-5)
    thin = probnn.predict_distribution(model, x, posterior=idata, num_draws=3)
    np.testing.assert_allclose(
        thin.components_distribution.distribution.loc.numpy()[..., 0], loc[:, [0, 6, 11], 0], atol=1e-5
    )
    with pytest.raises(ValueError, match=r"num_draws must be an integer in \[1, 12\]"):
        probnn.predict_distribution(model, x, posterior=idata, num_draws=13)
    with pytest.raises(ValueError, match=r"num_draws needs posterior="):
        probnn.predict_distribution(model, x, num_draws=3)
    other = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3), probnn.heads.NormalHead()])
    with pytest.raises(ValueError, match=r"the posterior has 2 weights, model .* has 4"):
        probnn.predict_distribution(other, x, posterior=idata)
