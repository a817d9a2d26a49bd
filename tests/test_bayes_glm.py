"""probnn.bayes.glm: families against scipy, GLMs against maximum likelihood, multilevel shrinkage,
the predictive, the formula form and bad input.

The negative-binomial dispersion coverage over 20 simulated data sets is a study, not a unit test:
benchmarks/glm_calibration.py (results in benchmarks/results/glm_calibration.md).
"""

import json
import sys
import warnings

import arviz as az
import matplotlib
import numpy as np
import pandas as pd
import pytest
import scipy.optimize
import scipy.special
import scipy.stats

import probnn
from probnn.bayes import Groups
from probnn.bayes.families import FAMILIES

matplotlib.use("Agg")
QUIET = probnn.bayes.NUTS(verbose=0)
N = 5000


def _summary(idata, names):
    return az.summary(idata, var_names=names, round_to="none")


def _mle(x, y, family):
    """Maximum likelihood (scipy's Newton-CG) and the inverse Fisher information's sds."""
    design = np.c_[np.ones(len(x)), x]

    def mean_and_weight(beta):
        eta = design @ beta
        if family == "bernoulli":
            mu = scipy.special.expit(eta)
            return mu, mu * (1 - mu)
        mu = np.exp(eta)
        return mu, mu

    def nll(beta):
        eta = design @ beta
        if family == "bernoulli":
            return -np.sum(y * eta - np.logaddexp(0, eta))
        return -np.sum(y * eta - np.exp(eta) - scipy.special.gammaln(y + 1))

    def grad(beta):
        return -design.T @ (y - mean_and_weight(beta)[0])

    def hess(beta):
        return design.T @ (design * mean_and_weight(beta)[1][:, None])

    fit = scipy.optimize.minimize(
        nll, np.zeros(design.shape[1]), jac=grad, hess=hess, method="Newton-CG", options={"xtol": 1e-12}
    )
    return fit.x, np.sqrt(np.diag(np.linalg.inv(hess(fit.x))))


def _draws(idata):
    post = idata.posterior
    return np.column_stack(
        [post["intercept"].values.ravel()]
        + [post["coef"].values[..., j].ravel() for j in range(post["coef"].shape[-1])]
    )


@pytest.fixture(scope="module")
def logistic():
    rng = np.random.default_rng(22)
    x = rng.normal(size=(N, 3)) * [1.0, 2.0, 0.5] + [0.0, 1.0, -1.0]
    y = rng.binomial(1, scipy.special.expit(-0.4 + x @ np.array([0.8, -0.3, 0.5])))
    nuts = probnn.bayes.NUTS(num_chains=2, num_samples=1000, num_warmup=500, seed=1, verbose=0)
    idata = probnn.bayes.glm(x, y, family="bernoulli", sampler=nuts)
    return x, y, idata


def _check_against_mle(idata, x, y, family):
    mle, se = _mle(x, y, family)
    draws = _draws(idata)
    mean, sd = draws.mean(0), draws.std(0)
    # 5,000 rows: the priors (sd 2.5 / sd(x)) and the posterior's skew move the mean by far less
    # than 0.1 sd; the Monte Carlo error of the mean is ~0.025 sd at ESS ~1,500.
    assert np.all(np.abs(mean - mle) < 0.1 * sd), (mean, mle, sd)
    # sd from ~1,500 effective draws has a relative error of ~2 %.
    assert np.all(np.abs(sd / se - 1) < 0.10), (sd, se)
    summary = _summary(idata, ["intercept", "coef"])
    assert summary["r_hat"].max() < 1.01
    assert int(idata.sample_stats["diverging"].sum()) == 0
    return np.abs(mean - mle) / sd, sd / se


@pytest.mark.integration
def test_logistic_regression_matches_maximum_likelihood(logistic):
    x, y, idata = logistic
    _check_against_mle(idata, x, y, "bernoulli")
    assert idata.posterior["coef"].dims == ("chain", "draw", "feature")
    assert list(idata.posterior["coef"].coords["feature"].values) == ["x0", "x1", "x2"]
    assert set(json.loads(idata.attrs["priors"])) == {"intercept", "coef"}


@pytest.mark.integration
def test_poisson_regression_with_offset_matches_maximum_likelihood(rng):
    x = rng.normal(size=(N, 2))
    exposure = rng.uniform(0.5, 3.0, N)
    y = rng.poisson(exposure * np.exp(0.3 + x @ np.array([0.4, -0.6])))
    idata = probnn.bayes.glm(
        x,
        y,
        family="poisson",
        offset=np.log(exposure),
        sampler=probnn.bayes.NUTS(num_chains=2, num_samples=1000, num_warmup=500, seed=2, verbose=0),
    )
    # The offset enters the MLE as a known term: fit y / exposure's rate with log(exposure) added.
    design_x = x
    mle, se = _mle_with_offset(design_x, y, np.log(exposure))
    draws = _draws(idata)
    assert np.all(np.abs(draws.mean(0) - mle) < 0.1 * draws.std(0))
    assert np.all(np.abs(draws.std(0) / se - 1) < 0.10)
    assert _summary(idata, ["intercept", "coef"])["r_hat"].max() < 1.01
    assert int(idata.sample_stats["diverging"].sum()) == 0
    # Pointwise log likelihood equals scipy's Poisson pmf at a draw.
    mu = exposure * np.exp(draws[0, 0] + x @ draws[0, 1:])
    np.testing.assert_allclose(
        idata.log_likelihood["y"].values[0, 0], scipy.stats.poisson.logpmf(y, mu), rtol=1e-10
    )


def _mle_with_offset(x, y, offset):
    design = np.c_[np.ones(len(x)), x]

    def nll(beta):
        eta = design @ beta + offset
        return -np.sum(y * eta - np.exp(eta))

    def grad(beta):
        return -design.T @ (y - np.exp(design @ beta + offset))

    def hess(beta):
        return design.T @ (design * np.exp(design @ beta + offset)[:, None])

    fit = scipy.optimize.minimize(
        nll, np.zeros(design.shape[1]), jac=grad, hess=hess, method="Newton-CG", options={"xtol": 1e-12}
    )
    return fit.x, np.sqrt(np.diag(np.linalg.inv(hess(fit.x))))


@pytest.mark.integration
def test_fullrank_advi_matches_nuts_on_the_logistic_regression(logistic):
    x, y, nuts = logistic
    vi = probnn.bayes.glm(
        x, y, family="bernoulli", sampler=probnn.bayes.VI("fullrank", num_chains=2, num_samples=4000, seed=3)
    )
    ref, approx = _draws(nuts), _draws(vi)
    # Means within 0.1 NUTS sd: NUTS's own Monte Carlo error is ~0.025 sd, the 8,000 VI draws'
    # ~0.011 sd. sds within 15 %.
    assert np.all(np.abs(approx.mean(0) - ref.mean(0)) < 0.1 * ref.std(0))
    assert np.all(np.abs(approx.std(0) / ref.std(0) - 1) < 0.15)
    assert vi.attrs["method"] == "fullrank" and vi.attrs["vi_converged"] == 1
    elbo = vi.sample_stats["elbo"]
    assert elbo.dims == ("vi_step",) and elbo.shape == (2000,)
    assert float(elbo[-100:].mean()) > float(elbo[:100].mean())
    assert vi.attrs["vi_pareto_k"] < 0.7
    assert np.isfinite(az.loo(vi).elpd_loo)


@pytest.mark.integration
def test_varying_intercepts_shrink_and_cover_the_group_scale(rng):
    groups, tau, sigma = 40, 0.8, 1.0
    sizes = rng.integers(2, 15, groups)
    g = np.repeat(np.arange(groups), sizes)
    labels = np.array([f"school{k:02d}" for k in range(groups)])[g]
    effect = tau * rng.standard_normal(groups)
    x = rng.normal(size=(len(g), 1))
    y = 1.0 + 0.5 * x[:, 0] + effect[g] + sigma * rng.standard_normal(len(g))
    idata = probnn.bayes.glm(
        x,
        y,
        family="gaussian",
        groups=labels,
        sampler=probnn.bayes.NUTS(
            num_chains=2, num_samples=1000, num_warmup=1000, seed=4, verbose=0, posterior_predictive=True
        ),
    )
    post = idata.posterior
    assert post["group_intercept"].dims == ("chain", "draw", "group")
    assert post["group_intercept"].coords["group"].values[0] == "school00"
    assert int(idata.sample_stats["diverging"].sum()) == 0
    lo, hi = np.quantile(post["group_sd"].values, [0.05, 0.95])
    assert lo < tau < hi, (lo, hi)
    # Group means at x = 0 against the pooled fit (one intercept) and the unpooled one (one
    # intercept per group), both with the common slope, by least squares.
    pooled = np.linalg.lstsq(np.c_[np.ones(len(g)), x], y, rcond=None)[0][0]
    unpooled = np.linalg.lstsq(np.c_[np.eye(groups)[g], x], y, rcond=None)[0][:groups]
    partial = (post["intercept"] + post["group_intercept"]).mean(("chain", "draw")).values
    factor = (partial - pooled) / (unpooled - pooled)
    assert np.all((factor > 0) & (factor < 1)), factor
    # The Normal-Normal shrinkage factor n tau^2 / (n tau^2 + sigma^2), at the posterior means.
    tau_hat, sigma_hat = float(post["group_sd"].mean()), float(post["sigma"].mean())
    theory = sizes * tau_hat**2 / (sizes * tau_hat**2 + sigma_hat**2)
    assert np.abs(factor - theory).mean() < 0.1, np.abs(factor - theory).mean()

    # InferenceData that arviz works with.
    assert {
        "posterior",
        "sample_stats",
        "log_likelihood",
        "observed_data",
        "constant_data",
        "posterior_predictive",
    } <= set(idata.groups())
    assert idata.constant_data["group_index"].shape == (len(g),)
    assert np.isfinite(az.loo(idata).elpd_loo) and np.isfinite(az.waic(idata).elpd_waic)
    az.plot_ppc(idata, num_pp_samples=20)
    # The predictive at a known and at a new group: Normal mixture moments in closed form.
    dist = probnn.bayes.glm_predictive(idata, np.zeros((2, 1)), groups=["school03", "new"], seed=0)
    known = (post["intercept"] + post["group_intercept"].sel(group="school03")).values.ravel()
    s2 = post["sigma"].values.ravel() ** 2
    np.testing.assert_allclose(dist.mean().numpy()[0, 0], known.mean(), rtol=1e-10)
    np.testing.assert_allclose(dist.variance().numpy()[0, 0], s2.mean() + known.var(), rtol=1e-8)
    new_var = s2.mean() + (post["group_sd"].values.ravel() ** 2).mean() + post["intercept"].values.var()
    # New-group effects are drawn (one per posterior draw): a 2,000-draw estimate, within 10 %.
    assert abs(dist.variance().numpy()[1, 0] / new_var - 1) < 0.1
    assert abs(dist.mean().numpy()[1, 0] - float(post["intercept"].mean())) < 3 * np.sqrt(new_var / 2000)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_family_log_likelihoods_match_scipy(name):
    import tensorflow as tf

    rng = np.random.default_rng(0)
    eta = rng.normal(0.3, 0.5, 50)
    mu = {"identity": eta, "logit": scipy.special.expit(eta), "log": np.exp(eta)}
    mu = mu[FAMILIES[name].link]
    trials = rng.integers(1, 10, 50).astype(float)
    aux = {"sigma": 1.3, "nu": 4.5, "phi": 2.5}
    y01, counts = rng.integers(0, 2, 50).astype(float), rng.poisson(2.0, 50).astype(float)
    y, ref = {
        "gaussian": (eta + 1, scipy.stats.norm(mu, 1.3).logpdf(eta + 1)),
        "student_t": (eta + 1, scipy.stats.t(4.5, mu, 1.3).logpdf(eta + 1)),
        "bernoulli": (y01, scipy.stats.bernoulli(mu).logpmf(y01)),
        "binomial": (y01, scipy.stats.binom(trials, mu).logpmf(y01)),
        "poisson": (counts, scipy.stats.poisson(mu).logpmf(counts)),
        # scipy's nbinom(n, p) has mean n (1 - p) / p: n = phi, p = phi / (phi + mu).
        "negative_binomial": (counts, scipy.stats.nbinom(2.5, 2.5 / (2.5 + mu)).logpmf(counts)),
        "gamma": (counts + 0.5, scipy.stats.gamma(2.5, scale=mu / 2.5).logpdf(counts + 0.5)),
    }[name]
    family = FAMILIES[name]
    dist = family.distribution(
        tf.constant(eta), {k: tf.constant(v, tf.float64) for k, v in aux.items()}, tf.constant(trials)
    )
    np.testing.assert_allclose(dist.log_prob(y).numpy(), ref, rtol=1e-9, atol=1e-12)
    if name == "negative_binomial":  # variance mu + mu^2 / phi
        np.testing.assert_allclose(dist.variance().numpy(), mu + mu**2 / 2.5, rtol=1e-10)


def test_bad_input_is_one_clear_line_before_sampling(rng):
    x = rng.normal(size=(30, 2))
    g = np.repeat([0, 1, 2], 10)
    glm = probnn.bayes.glm
    cases = [
        (dict(y=np.r_[np.ones(29), 2.0], family="bernoulli"), r"needs y in \{0, 1\}"),
        (dict(y=np.r_[np.ones(29), -1.0], family="poisson"), r"non-negative integer counts"),
        (dict(y=np.r_[np.ones(29), 1.5], family="negative_binomial"), r"non-negative integer"),
        (dict(y=np.full(30, 4.0), family="binomial", trials=3), r"y must be <= trials"),
        (dict(y=np.ones(30), family="binomial"), r"needs trials"),
        (dict(y=np.ones(30), family="poisson", trials=3), r"trials is only for"),
        (dict(y=np.r_[np.ones(29), np.nan]), r"y has 1 NaN/inf"),
        (dict(y=np.r_[np.ones(29), 0.0], family="gamma"), r"needs y > 0"),
        (dict(y=rng.normal(size=30), groups=np.zeros(30)), r"single group"),
        (dict(y=rng.normal(size=30), family="weibull"), r"family must be one of"),
        (dict(y=rng.normal(size=30), priors={"tau": None}), r"priors has no parameter 'tau'"),
        (dict(y=rng.normal(size=30), priors={"sigma": 1.0}), r"priors\['sigma'\] must be"),
        (dict(y=rng.normal(size=30), groups=Groups(None, "slopes")), r"Groups\(effects=\) must be"),
        (dict(y=rng.normal(size=30), groups=Groups(None, "intercept+slopes")), r"needs labels"),
        (dict(y=rng.normal(size=30), groups=Groups(g, {"h": ["x0"]})), r"names grouping column\(s\) \['h'\]"),
        (dict(y=rng.normal(size=30), sampler=dict(method="advi")), r"sampler must be probnn.bayes.NUTS"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=r"^glm: .*" + message) as info:
            glm(kwargs.pop("x", x), **{"sampler": QUIET, **kwargs})
        assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match=r"^glm: x has 40 features and only 30 rows"):
        glm(rng.normal(size=(30, 40)), rng.normal(size=30), sampler=QUIET)
    with pytest.raises(ValueError, match=r"^VI: method must be 'advi' or 'fullrank', got 'laplace'$"):
        probnn.bayes.VI("laplace")
    with pytest.raises(ValueError, match=r"^glm_predictive: posterior must be the"):
        probnn.bayes.glm_predictive(az.from_dict(posterior={"a": np.zeros((1, 2))}), x)


@pytest.mark.integration
def test_formula_form_builds_the_design_and_names(monkeypatch, rng):
    pytest.importorskip("formulae")
    from probnn.bayes.formula import design_from_formula

    frame = pd.DataFrame(
        {
            "y": rng.poisson(2.0, 60),
            "x1": rng.normal(size=60),
            "x2": rng.normal(size=60),
            "g": np.repeat(list("abcdef"), 10),
            "h": np.tile(list("uvw"), 20),
            "t": np.full(60, 2.0),
        }
    )
    x, y, trials, offset, groups, effects, names = design_from_formula(
        "glm", "y ~ x1 + x2 + (1 + x1 | g) + (1 | h)", frame, None, "t", None, None
    )
    assert list(x.columns) == ["x1", "x2"] and names is None
    np.testing.assert_array_equal(y, frame["y"])
    np.testing.assert_array_equal(offset, frame["t"])
    assert effects == {"g": ["x1"], "h": []} and list(groups) == ["g", "h"]
    # End to end: the formula and the arrays give the same model, hence (same seed, and the
    # same compiled program) the same draws, up to rounding: formulae's design matrix can differ
    # from the array's in the last bit, which the 200 smooth ADVI steps carry along at the level of
    # float64 rounding (observed: 1.7e-16 relative), far below any modelling difference.
    kwargs = dict(
        family="poisson", sampler=probnn.bayes.VI("advi", num_steps=200, num_chains=1, num_samples=50, seed=5)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        by_formula = probnn.bayes.glm("y ~ x1 + x2 + (1 | g)", data=frame, **kwargs)
        by_arrays = probnn.bayes.glm(
            frame[["x1", "x2"]].to_numpy(),
            frame["y"].to_numpy(),
            groups=frame["g"].to_numpy(),
            feature_names=["x1", "x2"],
            **kwargs,
        )
    for name in ("intercept", "coef", "group_intercept", "group_sd"):
        np.testing.assert_allclose(by_formula.posterior[name], by_arrays.posterior[name], rtol=1e-12)
    assert list(by_formula.posterior["group"].values) == list("abcdef")
    with pytest.raises(ValueError, match=r"^glm: cannot use formula .*nope"):
        design_from_formula("glm", "y ~ nope", frame, None, None, None, None)
    with pytest.raises(ValueError, match=r"^glm: with a formula, write the outcome"):
        probnn.bayes.glm("y ~ x1", frame["y"], data=frame)
    monkeypatch.setitem(sys.modules, "formulae", None)
    with pytest.raises(ImportError, match=r'pip install "probnn\[formula\]"'):
        probnn.bayes.glm("y ~ x1", data=frame)


@pytest.mark.integration
def test_predictive_refuses_a_label_that_matches_a_level_only_as_text(rng):
    """[0, "new"] becomes ["0", "new"] in numpy: "0" must not silently count as a new group.

    Varying slopes too: the fast tier's run of that model (the docstring example of
    probnn.bayes.Groups samples it by NUTS, in the integration tier)."""
    g = np.repeat(np.arange(4), 10)
    x = rng.normal(size=(40, 1))
    y = rng.poisson(np.exp(0.5 + 0.3 * x[:, 0]))
    with warnings.catch_warnings():  # 50 ADVI steps: the fit's warnings say it is unconverged
        warnings.simplefilter("ignore", RuntimeWarning)
        idata = probnn.bayes.glm(
            x,
            y,
            family="poisson",
            groups=Groups(g, effects="intercept+slopes"),
            sampler=probnn.bayes.VI("advi", num_steps=50, num_samples=20, seed=0),
        )
    assert idata.posterior["group_slope"].dims == ("chain", "draw", "group", "group_slope_feature")
    dist = probnn.bayes.glm_predictive(idata, np.zeros((2, 1)), groups=[0, 9], seed=0)
    assert dist.batch_shape.as_list() == [2]
    with pytest.raises(ValueError, match=r"^glm_predictive: group label '0' matches the fitted level 0 only"):
        probnn.bayes.glm_predictive(idata, np.zeros((2, 1)), groups=[0, "new"], seed=0)
