"""probnn.bayes.sample: NUTS over a Keras model's weights against a closed-form posterior."""

import arviz as az
import keras
import matplotlib
import numpy as np
import pytest
import scipy.stats
import tensorflow as tf
import tensorflow_probability as tfp

import probnn
from probnn.bayes.inference_data import Conversion, run_and_convert
from probnn.heads.base import DistributionHead

matplotlib.use("Agg")
tfd = tfp.distributions
SIGMA = 0.7  # the known noise scale of the conjugate model
QUIET = probnn.bayes.NUTS(verbose=0)


class KnownNoiseHead(DistributionHead):
    """A Normal head with a fixed, known scale: y ~ Normal(x @ kernel + bias, SIGMA)."""

    params_size = 1
    event_shape = (1,)

    def distribution(self, params):
        return tfd.Independent(tfd.Normal(self._params(params), SIGMA), reinterpreted_batch_ndims=1)


@pytest.mark.integration
def test_conjugate_linear_regression_matches_closed_form(rng):
    n, p, tau = 60, 2, 1.5
    x = rng.normal(size=(n, p)).astype("float32")
    y = (0.5 + x @ np.array([1.0, -2.0]) + SIGMA * rng.normal(size=n)).astype("float32")
    model = keras.Sequential([keras.Input((p,)), KnownNoiseHead(name="reg")])
    nuts = probnn.bayes.NUTS(num_chains=4, num_samples=1000, num_warmup=400, seed=1, verbose=0)
    idata = probnn.bayes.sample(model, x, y, prior=tau, sampler=nuts)
    # Exact posterior of w = (kernel, bias) under Normal(0, tau^2) priors and known noise.
    design = np.c_[x, np.ones(n)].astype("float64")
    precision = design.T @ design / SIGMA**2 + np.eye(p + 1) / tau**2
    cov = np.linalg.inv(precision)
    mean = cov @ design.T @ y.astype("float64") / SIGMA**2
    post = idata.posterior
    draws = np.concatenate([post["reg_kernel"].values[..., 0], post["reg_bias"].values], axis=-1)
    summary = az.summary(idata, var_names=["reg_kernel", "reg_bias"], round_to="none")
    mcse = summary["mcse_mean"].values
    est = draws.reshape(-1, p + 1).mean(0)
    # Means: within 4 Monte Carlo standard errors (arviz's, from the bulk ESS).
    assert np.all(np.abs(est - mean) < 4 * mcse), (est, mean, mcse)
    # Standard deviations within 10 % (with ESS ~ 3,000+ their own error is ~1.5 %).
    np.testing.assert_allclose(draws.reshape(-1, p + 1).std(0), np.sqrt(np.diag(cov)), rtol=0.10)
    assert summary["r_hat"].max() < 1.01
    assert post["reg_kernel"].dims == ("chain", "draw", "reg_in", "reg_out")

    # Groups and statistics arviz expects.
    assert {"posterior", "sample_stats", "log_likelihood", "observed_data"} <= set(idata.groups())
    for name in ("diverging", "energy", "tree_depth", "step_size", "lp", "acceptance_rate"):
        assert idata.sample_stats[name].shape == (4, 1000), name
    assert int(idata.sample_stats["diverging"].sum()) == 0
    # Pointwise log likelihood equals scipy's at every draw (independent reference).
    ll = idata.log_likelihood["y"].values
    ref = scipy.stats.norm.logpdf(y, draws[..., :p] @ x.T.astype("float64") + draws[..., p:], SIGMA)
    np.testing.assert_allclose(ll, ref, rtol=1e-4, atol=1e-4)
    # lp is the log posterior up to a constant: check differences between draws.
    lp_ref = ref.sum(-1) + scipy.stats.norm.logpdf(draws, 0, tau).sum(-1)
    lp = idata.sample_stats["lp"].values
    np.testing.assert_allclose(lp - lp.mean(), lp_ref - lp_ref.mean(), atol=2e-2)

    loo = az.loo(idata)
    assert np.isfinite(loo.elpd_loo) and loo.p_loo == pytest.approx(p + 1, abs=1.0)
    assert np.isfinite(az.waic(idata).elpd_waic)
    assert float(az.ess(idata)["reg_bias"].min()) > 1000
    axes = az.plot_trace(idata)
    assert axes.shape == (2, 2)
    matplotlib.pyplot.close("all")


def test_bad_input_is_a_one_line_error(rng):
    x = rng.normal(size=(10, 2)).astype("float32")
    y = rng.normal(size=10).astype("float32")
    model = keras.Sequential([keras.Input((2,)), probnn.heads.NormalHead()])
    bad_x = x.copy()
    bad_x[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"^sample: x has 1 NaN/inf value\(s\) of 20") as err:
        probnn.bayes.sample(model, bad_x, y, sampler=QUIET)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match=r"^sample: y has 1 NaN/inf"):
        probnn.bayes.sample(model, x, np.r_[y[:9], np.inf], sampler=QUIET)
    plain = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match=r"^sample: the model must end in a probnn distribution"):
        probnn.bayes.sample(plain, x, y, sampler=QUIET)
    with pytest.raises(ValueError, match=r"^NUTS: num_chains must be an integer >= 1, got 0$"):
        probnn.bayes.NUTS(num_chains=0)
    with pytest.raises(ValueError, match=r"^sample: sampler must be probnn.bayes.NUTS"):
        probnn.bayes.sample(model, x, y, sampler={"num_chains": 2})
    with pytest.raises(ValueError, match=r"^sample: prior key 'nope' matches no weight"):
        probnn.bayes.sample(model, x, y, prior={"nope": 1.0}, sampler=QUIET)
    with pytest.raises(ValueError, match=r"^sample: y must have shape \(n,\) \+ \(1,\)"):
        probnn.bayes.sample(model, x, np.zeros((10, 3)), sampler=QUIET)


@pytest.mark.integration
def test_bnn_posterior_predictive_covers_held_out_data_and_widens_in_the_gap():
    # 1-D inputs in [-3, -1] and [1, 3], nothing in between.
    rng = np.random.default_rng(3)

    def data(n):
        x = np.r_[rng.uniform(-3, -1, n // 2), rng.uniform(1, 3, n - n // 2)].astype("float32")
        return x[:, None], (np.sin(x) + 0.2 * rng.normal(size=n)).astype("float32")

    x, y = data(60)
    x_test, y_test = data(400)
    model = keras.Sequential(
        [keras.Input((1,)), keras.layers.Dense(5, activation="tanh"), probnn.heads.NormalHead()]
    )
    nuts = probnn.bayes.NUTS(
        num_chains=2, num_samples=200, num_warmup=200, max_tree_depth=6, seed=0, verbose=0
    )
    idata = probnn.bayes.sample(model, x, y, sampler=nuts)
    dist = probnn.predict_distribution(model, x_test, posterior=idata)
    assert type(dist).__name__ == "MixtureSameFamily"
    assert dist.components_distribution.batch_shape.as_list() == [400, 400]
    # 90 % central interval of the posterior predictive on 400 held-out points: binomial
    # standard error 1.5 points; tolerance 5 points (3.3 standard errors).
    coverage = float(probnn.metrics.coverage(dist, y_test[:, None], level=0.9))
    assert abs(coverage - 0.9) < 0.05, coverage

    def width(x_eval):
        d = probnn.predict_distribution(model, x_eval, posterior=idata, num_draws=200)
        draws = d.components_distribution.sample(10, seed=1).numpy()[..., 0]  # (10, n, 200)
        lo, hi = np.quantile(np.moveaxis(draws, 1, 0).reshape(len(x_eval), -1), [0.05, 0.95], axis=1)
        return np.mean(hi - lo)

    gap = np.linspace(-0.6, 0.6, 25, dtype="float32")[:, None]
    seen = np.r_[np.linspace(-2.8, -1.2, 13), np.linspace(1.2, 2.8, 12)].astype("float32")[:, None]
    # Epistemic uncertainty: the interval is clearly wider where there were no data.
    assert width(gap) > 1.5 * width(seen)


@pytest.mark.integration
def test_divergences_are_counted_and_warned_about():
    # Neal's funnel: v ~ N(0, 3), z ~ N(0, exp(v / 2)); its neck makes NUTS diverge.
    def log_prob(theta):
        v, z = theta[:, 0], theta[:, 1]
        return tfd.Normal(0.0, 3.0).log_prob(v) + tfd.Normal(0.0, tf.exp(v / 2)).log_prob(z)

    with pytest.warns(
        RuntimeWarning,
        match=r"^sample: \d+ of 400 transitions after warm-up "
        r"diverged.*target_accept=0.95",
    ) as record:
        idata = run_and_convert(
            "sample",
            log_prob,
            np.zeros((2, 2), "float32"),
            probnn.bayes.NUTS(
                num_chains=2,
                num_samples=200,
                num_warmup=100,
                seed=0,
                target_accept=0.6,
                max_tree_depth=6,
                verbose=0,
            ),
            Conversion(
                unpack=lambda d: {"v": d[..., 0], "z": d[..., 1]},
                log_likelihood=lambda d: np.zeros(d.shape[:2] + (1,)),
                observed=np.zeros(1),
            ),
        )
    count = int(idata.sample_stats["diverging"].sum())
    assert count > 0 and f"sample: {count} of 400 " in str(record[0].message)


def test_progress_is_a_bar_on_a_terminal_and_plain_lines_otherwise():
    import io

    from probnn.bayes.nuts import _Progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    for stream in (io.StringIO(), Terminal()):
        bar = _Progress(2000, 4, verbose=1, stream=stream)
        for done in range(50, 2001, 50):
            bar.update(done, done <= 1000, np.full(4, 0.5), 0, 7.0)
        text = stream.getvalue()
        assert "2000/2000 (sampling)" in text and "warm-up" in text
        if isinstance(stream, Terminal):
            assert text.count("\r") == 40 and text.endswith("\n") and "[" + "#" * 30 + "]" in text
        else:  # about one line per 10 %, no carriage returns
            assert "\r" not in text and 10 <= text.count("\n") <= 12
    silent = io.StringIO()
    _Progress(10, 1, verbose=0, stream=silent).update(10, False, np.ones(1), 0, 1.0)
    assert silent.getvalue() == ""
