"""linear_regression against posteriordb's gold-standard posteriors, and its predictive."""

import json
import pathlib

import arviz as az
import numpy as np
import pytest

import probnn

DATA = pathlib.Path(__file__).parent / "data" / "posteriordb_regressions.json"


def _prior_shift(x, y, ref):
    """First-order effect of the default priors on the posterior means of (beta, sigma).

    Adding a log prior g to a near-Gaussian posterior with covariance C moves its mean by about
    C @ grad g (one Newton step). C is the flat-prior posterior covariance of the regression
    coefficients, sigma^2 (X'X)^-1 at the reference sigma, and the reference variance for sigma.
    """
    design = np.c_[np.ones(len(x)), x]
    sigma = ref["sigma"]["mean"]
    cov = sigma**2 * np.linalg.inv(design.T @ design)
    beta = np.array([ref[f"beta[{k + 1}]"]["mean"] for k in range(design.shape[1])])
    sx, sy = x.std(axis=0, ddof=1), y.std(ddof=1)
    centred = beta[0] + beta[1:] @ x.mean(axis=0)  # the intercept of the centred predictors
    d_centred = -(centred - y.mean()) / (2.5 * sy) ** 2
    grad = np.r_[d_centred, d_centred * x.mean(axis=0) - beta[1:] / (2.5 * sy / sx) ** 2]
    shift_sigma = ref["sigma"]["sd"] ** 2 * (-1.0 / sy)  # Exponential(1/sd(y)): d log p / d sigma
    return np.r_[cov @ grad, shift_sigma]


@pytest.mark.integration
@pytest.mark.parametrize("key", ["mesquite-logmesquite_logvolume", "nes2000-nes"])
def test_default_priors_match_posteriordb_reference(key):
    entry = json.loads(DATA.read_text())[key]
    names = list(entry["x"])
    x = np.column_stack([entry["x"][c] for c in names]).astype(float)
    y = np.asarray(entry["y"], float)
    ref = entry["reference"]
    nuts = probnn.bayes.NUTS(num_chains=4, num_samples=1000, num_warmup=500, seed=3, verbose=0)
    idata = probnn.bayes.linear_regression(x, y, feature_names=names, sampler=nuts)
    post = idata.posterior
    assert list(post["coef"].coords["feature"].values) == names
    draws = np.column_stack(
        [post["intercept"].values.ravel()]
        + [post["coef"].sel(feature=c).values.ravel() for c in names]
        + [post["sigma"].values.ravel()]
    )
    summary = az.summary(idata, var_names=["intercept", "coef", "sigma"], round_to="none")
    mcse, ess = summary["mcse_mean"].values, summary["ess_bulk"].values
    keys = [f"beta[{k + 1}]" for k in range(len(names) + 1)] + ["sigma"]
    ref_mean = np.array([ref[k]["mean"] for k in keys])
    ref_sd = np.array([ref[k]["sd"] for k in keys])
    # Tolerance on the means: 4 Monte Carlo standard errors of ours and of the reference
    # (10,000 near-independent draws: sd / 100), plus the default prior's first-order effect.
    shift = _prior_shift(x, y, ref)
    tol = 4 * np.hypot(mcse, ref_sd / 100) + np.abs(shift)
    assert np.all(np.abs(draws.mean(0) - ref_mean) < tol), (draws.mean(0), ref_mean, tol)
    # The prior's effect is a small part of a posterior sd (rows: 46 and 476).
    assert np.all(np.abs(shift) < 0.1 * ref_sd)
    # Standard deviations: 4 relative standard errors of an sd estimate (1 / sqrt(2 ESS)) + 2 %.
    rtol = 4 / np.sqrt(2 * ess) + 0.02
    assert np.all(np.abs(draws.std(0) / ref_sd - 1) < rtol), (draws.std(0), ref_sd, rtol)
    assert summary["r_hat"].max() < 1.01
    assert int(idata.sample_stats["diverging"].sum()) == 0


@pytest.mark.integration
def test_raw_scale_data_studentt_predictive_and_bad_input(rng):
    # Raw-scale data (intercept 26, slope 0.06 on x in the hundreds) with Student-t noise.
    n = 200
    x = rng.uniform(100, 500, size=(n, 1))
    y = 26 + 0.06 * x[:, 0] + 1.5 * rng.standard_t(5, size=n)
    idata = probnn.bayes.linear_regression(
        x,
        y,
        likelihood="studentt",
        sampler=probnn.bayes.NUTS(
            num_chains=2, num_samples=500, num_warmup=300, seed=0, verbose=0, posterior_predictive=True
        ),
    )
    post = idata.posterior
    design = np.c_[np.ones(n), x]
    ols, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid_sd = np.std(y - design @ ols, ddof=2)
    se = resid_sd * np.sqrt(np.diag(np.linalg.inv(design.T @ design)))
    # Student-t and OLS estimates of a t(5)-noise line agree to within their standard errors.
    assert abs(float(post["intercept"].mean()) - ols[0]) < 2 * se[0]
    assert abs(float(post["coef"].mean()) - ols[1]) < 2 * se[1]
    assert 0.5 < float(post["nu"].median()) < 60
    assert idata.posterior_predictive["y"].shape == (2, 500, n)
    assert np.isfinite(az.loo(idata).elpd_loo)
    dist = probnn.bayes.linear_predictive(idata, x, num_draws=200)
    assert dist.batch_shape.as_list() == [n]
    coverage = float(probnn.metrics.coverage(dist, y[:, None], level=0.9))
    # In-sample 90 % interval coverage at n = 200: binomial sd 2.1 points; allow 3.5 sd.
    assert abs(coverage - 0.9) < 0.075

    with pytest.raises(ValueError, match=r"^linear_regression: x has 1 NaN/inf"):
        probnn.bayes.linear_regression(np.r_[x[:-1], [[np.nan]]], y, sampler=probnn.bayes.NUTS(verbose=0))
    with pytest.raises(ValueError, match=r"^linear_regression: feature\(s\) \['c'\] are constant"):
        probnn.bayes.linear_regression(
            np.c_[x, np.ones(n)], y, feature_names=["s", "c"], sampler=probnn.bayes.NUTS(verbose=0)
        )
    with pytest.raises(ValueError, match=r"^linear_regression: likelihood must be one of"):
        probnn.bayes.linear_regression(x, y, likelihood="cauchy", sampler=probnn.bayes.NUTS(verbose=0))


def test_text_column_is_named_before_sampling():
    """A column of text (a DataFrame's or an object array's) is named in one line, before any sampling."""
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"size": [50.0, 70.0, 90.0, 110.0], "city": ["a", "b", "a", "c"]})
    y = np.array([1.0, 2.0, 2.5, 3.5])
    with pytest.raises(ValueError, match=r"^linear_regression: column 'city' of x is not numeric"):
        probnn.bayes.linear_regression(frame, y)
    with pytest.raises(ValueError, match=r"^linear_regression: column 'x1' of x is not numeric"):
        probnn.bayes.linear_regression(frame.to_numpy(), y)
    with pytest.raises(ValueError, match=r"^linear_regression: column 'town' of x is not numeric"):
        probnn.bayes.linear_regression(frame.to_numpy(), y, feature_names=["area", "town"])
