"""probnn.bayes.laplace against closed forms, scikit-learn's BayesianRidge and autodiff.

Float64 throughout the closed-form checks: a network ending in a
`NormalHead(scale="shared")` (one Dense(1) projection and one global scale)
is, in its last layer, Bayesian linear regression on the frozen features
`phi = [penultimate activations, 1]`: posterior precision
`phi^T phi / sigma^2 + delta I`, mean `(phi^T phi / sigma^2 + delta I)^-1 phi^T y / sigma^2`.
"""

import keras
import numpy as np
import pytest

import probnn

N = 80


@pytest.fixture(scope="module")
def trained():
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, size=(N, 2))
    y = np.sin(x[:, :1]) + 0.1 * rng.normal(size=(N, 1))
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((2,), dtype="float64"),
            keras.layers.Dense(6, activation="tanh", dtype="float64"),
            probnn.heads.NormalHead(scale="shared", dtype="float64", name="head"),
        ]
    )
    probnn.fit(model, x, y, epochs=20, batch_size=16, verbose=0, seed=0)
    hidden = model.layers[0]
    features = np.tanh(x @ hidden.kernel.numpy() + hidden.bias.numpy())
    phi = np.concatenate([features, np.ones((N, 1))], axis=1)
    return model, x, y, phi


def _blr(phi, y, delta, sigma):
    precision = phi.T @ phi / sigma**2 + delta * np.eye(phi.shape[1])
    mean = np.linalg.solve(precision, phi.T @ y[:, 0] / sigma**2)
    return precision, mean


def _last_layer(la):
    return np.concatenate([la.weights[i].ravel() for i in la.indices])


@pytest.mark.parametrize("hessian", ["full", "kron"])
def test_last_layer_is_bayesian_linear_regression(trained, hessian):
    model, x, y, phi = trained
    la = probnn.bayes.laplace(model, x, y, hessian=hessian, prior_precision=2.0, refit_last_layer=True)
    precision, mean = _blr(phi, y, 2.0, la.noise_scale)
    cov = np.linalg.inv(precision)
    la_cov = np.linalg.inv(la.posterior_precision)
    # 1e-5 relative (the acceptance bar); in float64 the agreement is ~1e-13.
    np.testing.assert_allclose(la.posterior_precision, precision, rtol=1e-5, atol=1e-5 * abs(precision).max())
    np.testing.assert_allclose(la_cov, cov, rtol=1e-5, atol=1e-5 * abs(cov).max())
    np.testing.assert_allclose(_last_layer(la), mean, rtol=1e-5, atol=1e-5 * abs(mean).max())


def test_kron_and_diag_against_full_without_refit(trained):
    model, x, y, phi = trained
    full = probnn.bayes.laplace(model, x, y, hessian="full", prior_precision=2.0)
    kron = probnn.bayes.laplace(model, x, y, hessian="kron", prior_precision=2.0)
    diag = probnn.bayes.laplace(model, x, y, hessian="diag", prior_precision=2.0)
    precision, _ = _blr(phi, y, 2.0, full.noise_scale)
    np.testing.assert_allclose(full.posterior_precision, precision, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(kron.posterior_precision, full.posterior_precision, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(diag.posterior_precision, np.diag(precision), rtol=1e-10)
    assert kron.log_marginal_likelihood() == pytest.approx(full.log_marginal_likelihood(), rel=1e-10)


def test_marglik_is_a_maximum(trained):
    """The gradient in (log prior precision, log noise) vanishes (< 1e-4), checked by central differences."""
    model, x, y, _ = trained
    la = probnn.bayes.laplace(model, x, y, hessian="kron", prior_precision="marglik")
    grad = la.log_marginal_likelihood_gradient()
    assert np.all(np.abs(grad) < 1e-4), grad
    h, delta, sigma = 1e-4, la.prior_precision, la.noise_scale
    fd_prior = (
        la.log_marginal_likelihood(delta * np.exp(h)) - la.log_marginal_likelihood(delta * np.exp(-h))
    ) / (2 * h)
    fd_noise = (
        la.log_marginal_likelihood(noise_scale=sigma * np.exp(h))
        - la.log_marginal_likelihood(noise_scale=sigma * np.exp(-h))
    ) / (2 * h)
    assert abs(fd_prior) < 1e-4 and abs(fd_noise) < 1e-4, (fd_prior, fd_noise)
    # away from the maximum the autodiff gradient equals the central difference
    off = probnn.bayes.laplace(model, x, y, hessian="kron", prior_precision=0.3)
    g = off.log_marginal_likelihood_gradient()
    fd = (off.log_marginal_likelihood(0.3 * np.exp(h)) - off.log_marginal_likelihood(0.3 * np.exp(-h))) / (
        2 * h
    )
    assert g[0] == pytest.approx(fd, rel=1e-6)


def test_refit_last_layer_matches_bayesian_ridge(trained):
    from sklearn.linear_model import BayesianRidge

    model, x, y, phi = trained
    la = probnn.bayes.laplace(model, x, y, hessian="full", prior_precision="marglik", refit_last_layer=True)
    # Converged tightly (tol, max_iter) so that its fixed point is the evidence maximum.
    ridge = BayesianRidge(
        fit_intercept=False,
        alpha_1=1e-12,
        alpha_2=1e-12,
        lambda_1=1e-12,
        lambda_2=1e-12,
        compute_score=True,
        tol=1e-12,
        max_iter=10_000,
    )
    ridge.fit(phi, y[:, 0])
    print(
        f"prior precision {la.prior_precision:.10g} vs {ridge.lambda_:.10g}; noise precision "
        f"{la.noise_scale**-2:.10g} vs {ridge.alpha_:.10g}; evidence "
        f"{la.log_marginal_likelihood():.12g} vs {ridge.scores_[-1]:.12g}"
    )
    assert la.prior_precision == pytest.approx(ridge.lambda_, rel=1e-2)
    assert la.noise_scale**-2 == pytest.approx(ridge.alpha_, rel=1e-2)
    assert la.log_marginal_likelihood() == pytest.approx(ridge.scores_[-1], rel=1e-6)
    np.testing.assert_allclose(_last_layer(la), ridge.coef_, rtol=1e-5, atol=1e-8)


def test_linearised_predictive_is_exact_for_the_location(trained):
    """Epistemic variance of the GLM predictive = phi Sigma phi^T (exactly: moment-matched draws);
    with sampled weights it is a Monte Carlo estimate of the same (within 5 sd of its error)."""
    model, x, y, phi = trained
    la = probnn.bayes.laplace(model, x, y, hessian="kron", prior_precision=2.0, refit_last_layer=True)
    cov = np.linalg.inv(la.posterior_precision)
    expected = np.einsum("nd,de,ne->n", phi[:5], cov, phi[:5])
    dist = probnn.predict_distribution(model, x[:5], posterior=la, seed=0)
    aleatoric, epistemic = probnn.decompose_uncertainty(dist)
    np.testing.assert_allclose(np.asarray(epistemic)[:, 0], expected, rtol=1e-8)
    np.testing.assert_allclose(np.asarray(aleatoric)[:, 0], la.noise_scale**2, rtol=1e-8)
    np.testing.assert_allclose(np.asarray(dist.mean())[:, 0], phi[:5] @ _last_layer(la), rtol=1e-8)
    k = 2000
    sampled = probnn.predict_distribution(model, x[:5], posterior=la, num_draws=k, seed=0)
    _, epistemic = probnn.decompose_uncertainty(sampled)
    np.testing.assert_allclose(np.asarray(epistemic)[:, 0], expected, rtol=5 * np.sqrt(2 / k))
    idata = la.to_inference_data(num_draws=10, seed=0)
    assert idata.posterior["head_kernel"].shape == (1, 10, 6, 1)


def test_save_and_load(trained, tmp_path):
    model, x, y, _ = trained
    la = probnn.bayes.laplace(model, x, y, hessian="kron", prior_precision="marglik")
    la.save(tmp_path / "la.npz")
    back = probnn.bayes.Laplace.load(tmp_path / "la.npz", model)
    assert back.log_marginal_likelihood() == la.log_marginal_likelihood()
    np.testing.assert_array_equal(back.posterior_precision, la.posterior_precision)
    a = probnn.predict_distribution(model, x[:4], posterior=la, num_draws=5, seed=1)
    b = probnn.predict_distribution(model, x[:4], posterior=back, num_draws=5, seed=1)
    np.testing.assert_array_equal(a.variance(), b.variance())


def test_shared_scale_head_saves_and_loads(trained, tmp_path):
    model, x, _, _ = trained
    model.save(tmp_path / "m.keras")
    back = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_array_equal(back.predict(x, verbose=0), model.predict(x, verbose=0))
    assert back.layers[-1].scale == "shared"


def test_bad_arguments(trained):
    model, x, y, _ = trained
    with pytest.raises(ValueError, match="laplace: hessian must be"):
        probnn.bayes.laplace(model, x, y, hessian="block")
    with pytest.raises(ValueError, match="laplace: weights must be"):
        probnn.bayes.laplace(model, x, y, weights="first")
    with pytest.raises(ValueError, match="laplace: prior_precision must be"):
        probnn.bayes.laplace(model, x, y, prior_precision=-1)
    with pytest.raises(ValueError, match="laplace: x has 80 rows but y has 3"):
        probnn.bayes.laplace(model, x, y[:3])
    with pytest.raises(ValueError, match="laplace: y has 1 NaN"):
        probnn.bayes.laplace(model, x, np.where(np.arange(N)[:, None] == 3, np.nan, y))
    with pytest.raises(ValueError, match="refit_last_layer=True needs"):
        probnn.bayes.laplace(model, x, y, weights="all", refit_last_layer=True)
    big = keras.Sequential(
        [keras.Input((2,)), keras.layers.Dense(200), keras.layers.Dense(200), probnn.heads.NormalHead()]
    )
    with pytest.raises(ValueError, match="hessian='full' over 41202 weights"):
        probnn.bayes.laplace(big, x, y, weights="all", hessian="full")
    with pytest.raises(ValueError, match="NormalHead: scale must be"):
        probnn.heads.NormalHead(scale="global")


def _finite_difference_ggn(model, x, sigma, h=1e-6):
    """sum_n J_n^T J_n / sigma^2 for the location, J by central differences over every weight
    except the shared scale (an independent check of the autodiff Jacobians)."""
    variables = model.trainable_variables[:-1]
    base = [v.numpy().copy() for v in variables]
    columns = []
    for v, b in zip(variables, base):
        for k in range(b.size):
            shifted = []
            for sign in (1, -1):
                w = b.copy().ravel()
                w[k] += sign * h
                v.assign(w.reshape(b.shape))
                shifted.append(model(x).numpy()[:, 0])
            v.assign(b)
            columns.append((shifted[0] - shifted[1]) / (2 * h))
    jac = np.stack(columns, axis=1)
    return jac.T @ jac / sigma**2


def test_all_weights_and_subnetwork(trained):
    model, x, y, _ = trained
    full = probnn.bayes.laplace(model, x, y, weights="all", hessian="full", prior_precision=1.0)
    expected = _finite_difference_ggn(model, x, full.noise_scale) + np.eye(25)
    np.testing.assert_allclose(full.posterior_precision, expected, rtol=1e-6, atol=1e-6)
    diag = probnn.bayes.laplace(model, x, y, weights="all", hessian="diag", prior_precision=1.0)
    np.testing.assert_allclose(diag.posterior_precision, np.diag(expected), rtol=1e-6)
    sub = probnn.bayes.laplace(
        model,
        x,
        y,
        weights=[model.layers[0].name],
        hessian="full",
        prior_precision={model.layers[0].name: 1.0},
    )
    np.testing.assert_allclose(sub.posterior_precision, expected[:18, :18], rtol=1e-6, atol=1e-6)
    kron = probnn.bayes.laplace(model, x, y, weights="all", hessian="kron", prior_precision=1.0)
    # KFAC is block diagonal over layers and exact for the last layer here
    np.testing.assert_allclose(kron.posterior_precision[18:, 18:], expected[18:, 18:], rtol=1e-6)
    assert np.all(kron.posterior_precision[:18, 18:] == 0)


def test_heteroscedastic_last_layer_ggn():
    """Last layer under a Normal head with an input-dependent scale: H = sum_n phi phi^T (x) F_n,
    F_n = diag(1 / s^2, 2 sigmoid(r)^2 / s^2) (the Fisher in (loc, raw scale))."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 2))
    y = rng.normal(size=(30, 1))
    model = keras.Sequential(
        [
            keras.Input((2,), dtype="float64"),
            keras.layers.Dense(3, activation="tanh", dtype="float64"),
            probnn.heads.NormalHead(dtype="float64"),
        ]
    )
    la = probnn.bayes.laplace(model, x, y, hessian="full", prior_precision=0.5)
    hidden = model.layers[0]
    phi = np.concatenate([np.tanh(x @ hidden.kernel.numpy() + hidden.bias.numpy()), np.ones((30, 1))], axis=1)
    params = model(x).numpy()
    scale = np.logaddexp(0, params[:, 1]) + 1e-6
    fisher = np.stack([1 / scale**2, 2 / (1 + np.exp(-params[:, 1])) ** 2 / scale**2], axis=1)
    expected = np.einsum("ni,nk,nj,jl->ijkl", phi, phi, fisher, np.eye(2)).reshape(8, 8)
    np.testing.assert_allclose(la.posterior_precision, expected + 0.5 * np.eye(8), rtol=1e-10)


def test_classification_probit_predictive():
    """Bernoulli head: the linearised predictive is the probit approximation,
    sigmoid(eta / sqrt(1 + pi/8 v)), v = phi Sigma phi^T; the sampled one averages sigmoids."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(60, 2))
    y = (x[:, :1] + 0.3 * rng.normal(size=(60, 1)) > 0).astype("float64")
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input((2,), dtype="float64"),
            keras.layers.Dense(4, activation="tanh", dtype="float64"),
            probnn.heads.BernoulliHead(dtype="float64"),
        ]
    )
    probnn.fit(model, x, y, epochs=5, batch_size=16, verbose=0, seed=0)
    la = probnn.bayes.laplace(model, x, y, hessian="full", prior_precision="marglik")
    hidden = model.layers[0]
    probe = np.array([[0.5, -1.0], [8.0, 8.0]])
    phi = np.concatenate(
        [np.tanh(probe @ hidden.kernel.numpy() + hidden.bias.numpy()), np.ones((2, 1))], axis=1
    )
    var = np.einsum("nd,de,ne->n", phi, np.linalg.inv(la.posterior_precision), phi)
    eta = model(probe).numpy()[:, 0]
    expected = 1 / (1 + np.exp(-eta / np.sqrt(1 + np.pi / 8 * var)))
    dist = probnn.predict_distribution(model, probe, posterior=la)
    np.testing.assert_allclose(np.asarray(dist.mean())[:, 0], expected, rtol=1e-10)
    assert abs(la.log_marginal_likelihood_gradient()[0]) < 1e-4
    k = 4000
    sampled = probnn.predict_distribution(model, probe, posterior=la, num_draws=k, seed=0)
    # the probit approximation is within ~0.02 of the exact Gaussian-logistic integral
    np.testing.assert_allclose(np.asarray(sampled.mean())[:, 0], expected, atol=0.03)


def test_categorical_probit_predictive_ignores_the_logit_shift():
    """Categorical head: softmax is unchanged by adding one constant to every logit, so the
    exact predictive E softmax(f), f ~ N(eta, S), depends on S only through C S C
    (C = I - 1 1^T / K). The shift direction is not identified by the data (its variance is
    the prior's), so the probit approximation is applied to the centred logits:
    softmax(C eta / sqrt(1 + pi/8 diag(C S C))), checked in closed form and against a
    Monte Carlo integral of the Gaussian-softmax (within 0.03, the probit's accuracy as in
    the Bernoulli test above; the uncentred probit is off by ~0.1 here)."""
    rng = np.random.default_rng(3)
    centres = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
    y = np.repeat(np.arange(3), 30)
    x = centres[y] + 0.6 * rng.normal(size=(90, 2))
    keras.utils.set_random_seed(2)
    model = keras.Sequential(
        [
            keras.Input((2,), dtype="float64"),
            keras.layers.Dense(4, activation="tanh", dtype="float64"),
            probnn.heads.CategoricalHead(3, dtype="float64"),
        ]
    )
    probnn.fit(model, x, y, epochs=60, batch_size=16, verbose=0, seed=0)
    la = probnn.bayes.laplace(model, x, y, hessian="full", prior_precision="marglik")
    hidden = model.layers[0]
    probe = np.array([[2.0, 0.1], [-1.0, 1.5], [0.2, 0.0]])
    phi = np.tanh(probe @ hidden.kernel.numpy() + hidden.bias.numpy())
    # logits f_k = phi . W[:, k] + b_k; weights ordered kernel (row-major), then bias
    jac = np.concatenate(
        [np.stack([np.kron(p[None], np.eye(3)) for p in phi]), np.tile(np.eye(3), (3, 1, 1))], -1
    )
    cov = jac @ np.linalg.inv(la.posterior_precision) @ jac.transpose(0, 2, 1)
    eta = model(probe).numpy()
    centre = np.eye(3) - 1 / 3
    var = np.diagonal(centre @ cov @ centre, axis1=1, axis2=2)
    logits = eta @ centre / np.sqrt(1 + np.pi / 8 * var)
    expected = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    probs = probnn.predict_distribution(model, probe, posterior=la).probs_parameter().numpy()
    draws = np.stack([rng.multivariate_normal(m, c, size=100_000) for m, c in zip(eta, cov)])
    exact = (np.exp(draws) / np.exp(draws).sum(-1, keepdims=True)).mean(1)  # MC standard error < 0.002
    np.testing.assert_allclose(probs, exact, atol=0.03)
    np.testing.assert_allclose(probs, expected, rtol=1e-10)
