"""Variational inference (VI("advi") / VI("fullrank")) against closed-form posteriors.

The full-rank fit of the logistic regression against NUTS is in tests/test_bayes_glm.py.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import probnn
from probnn.bayes.vi import fit_vi
from probnn.heads.base import DistributionHead

tfd = tfp.distributions
SIGMA = 0.7


class KnownNoiseHead(DistributionHead):
    """y ~ Normal(x @ kernel + bias, SIGMA): with Normal priors, a Gaussian posterior."""

    params_size = 1
    event_shape = (1,)

    def distribution(self, params):
        return tfd.Independent(tfd.Normal(self._params(params), SIGMA), reinterpreted_batch_ndims=1)


@pytest.mark.integration
def test_fullrank_on_a_bnn_model_recovers_the_exact_gaussian_posterior(rng):
    # The posterior is exactly Normal, so the full-rank family contains it: the fit must find
    # its mean and covariance (correlated: the inputs are correlated and not centred).
    n, p, tau = 40, 2, 1.5
    x = (rng.normal(size=(n, p)) @ np.array([[1.0, 0.8], [0.0, 0.6]]) + 1.0).astype("float32")
    y = (0.5 + x @ np.array([1.0, -2.0]) + SIGMA * rng.normal(size=n)).astype("float32")
    model = keras.Sequential([keras.Input((p,)), KnownNoiseHead(name="reg")])
    vi = probnn.bayes.VI("fullrank", num_chains=2, num_samples=2000, seed=0)
    idata = probnn.bayes.sample(model, x, y, prior=tau, sampler=vi)
    design = np.c_[x, np.ones(n)].astype("float64")
    cov = np.linalg.inv(design.T @ design / SIGMA**2 + np.eye(p + 1) / tau**2)
    mean = cov @ design.T @ y.astype("float64") / SIGMA**2
    post = idata.posterior
    draws = np.concatenate([post["reg_kernel"].values[..., 0], post["reg_bias"].values], axis=-1).reshape(
        -1, p + 1
    )
    sd = np.sqrt(np.diag(cov))
    # 4,000 independent draws: Monte Carlo error 0.016 sd on a mean, 1.1 % on an sd.
    assert np.all(np.abs(draws.mean(0) - mean) < 0.1 * sd), (draws.mean(0), mean)
    np.testing.assert_allclose(draws.std(0), sd, rtol=0.1)
    np.testing.assert_allclose(np.corrcoef(draws.T), cov / np.outer(sd, sd), atol=0.05)
    assert idata.attrs["method"] == "fullrank" and "elbo" in idata.sample_stats
    assert idata.log_likelihood["y"].shape == (2, 2000, n)


@pytest.mark.integration
def test_advi_linear_regression_matches_least_squares(rng):
    n = 300
    x = rng.normal(size=(n, 3)) * [1.0, 10.0, 0.1]  # raw scales; independent columns
    y = 2.0 + x @ np.array([0.5, 0.05, -3.0]) + rng.normal(size=n)
    idata = probnn.bayes.linear_regression(
        x, y, sampler=probnn.bayes.VI("advi", num_chains=2, num_samples=2000, seed=0)
    )
    design = np.c_[np.ones(n), x]
    ols, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = np.std(y - design @ ols, ddof=4)
    se = resid * np.sqrt(np.diag(np.linalg.inv(design.T @ design)))[1:]
    coef = idata.posterior["coef"].values.reshape(-1, 3)
    # Independent, centred-by-construction coordinates: mean-field loses little here; the
    # priors' effect at 300 rows is ~1 % of an sd.
    assert np.all(np.abs(coef.mean(0) - ols[1:]) < 0.15 * se), (coef.mean(0), ols[1:], se)
    np.testing.assert_allclose(coef.std(0), se, rtol=0.15)
    assert abs(float(idata.posterior["sigma"].mean()) - resid) < 0.1


@pytest.mark.integration
def test_an_unfinished_fit_is_reported():
    target = tfd.MultivariateNormalDiag(
        tf.constant([30.0, -20.0], tf.float64), tf.constant([1.0, 2.0], tf.float64)
    )
    with pytest.warns(RuntimeWarning) as record:  # 50 steps from 0 do not reach (30, -20)
        fit_vi(
            lambda z: target.log_prob(z),
            np.zeros((1, 2)),
            probnn.bayes.VI("advi", num_steps=50, num_samples=100, num_chains=1, seed=0),
            owner="demo",
        )
    messages = [str(w.message) for w in record]
    assert messages[0].startswith("demo: the ELBO of method='advi' had not flattened after 50 steps"), (
        messages
    )
    assert messages[1].startswith("demo: Pareto k-hat of the importance ratios p/q is"), messages
    draws, stats, info = fit_vi(
        lambda z: target.log_prob(z),
        np.zeros((1, 2)) + [30, -20],
        probnn.bayes.VI("advi", num_steps=400, num_samples=2000, num_chains=1, seed=0),
    )
    assert info["converged"] and info["pareto_k"] < 0.7
    np.testing.assert_allclose(draws[0].mean(0), [30.0, -20.0], atol=0.15)
    np.testing.assert_allclose(draws[0].std(0), [1.0, 2.0], rtol=0.1)
    assert stats["lp"].shape == (1, 2000) and info["elbo"].shape == (400,)
