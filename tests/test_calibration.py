"""probnn.calibration: recalibration and conformal intervals.

References: scikit-learn's IsotonicRegression (PAV), the first-order condition
of the temperature's likelihood (solved by scipy's brentq), the finite-sample
coverage bounds of split conformal prediction (Monte Carlo over 200 fresh
calibration/test splits with a fixed, badly misspecified model).
"""

import numpy as np
import pytest
import scipy.optimize
import scipy.special
import tensorflow as tf
import tensorflow_probability as tfp

import probnn
from probnn import calibration, metrics

tfd = tfp.distributions


def heteroscedastic(rng, n):
    x = rng.uniform(-2, 2, size=n)
    loc, scale = np.sin(2 * x), 0.2 + 0.4 * np.abs(x)
    return x, loc, scale, loc + scale * rng.normal(size=n)


def test_pav_matches_sklearn(rng):
    isotonic = pytest.importorskip("sklearn.isotonic")
    y = np.cumsum(rng.normal(size=300)) + 5 * rng.normal(size=300)
    w = rng.uniform(0.1, 3.0, size=300)
    ref = isotonic.IsotonicRegression().fit(np.arange(300), y, sample_weight=w).predict(np.arange(300))
    np.testing.assert_allclose(calibration.isotonic_regression(y, w), ref, rtol=1e-12, atol=1e-12)


def test_isotonic_map_is_the_fit_on_pit_ranks(rng):
    # Kuleshov et al.: isotonic regression of the observed frequency on the PIT. With ties
    # (PIT values rounded to 2 decimals) scikit-learn pools them as our fit does.
    isotonic = pytest.importorskip("sklearn.isotonic")
    _, loc, scale, y = heteroscedastic(rng, 500)
    u = np.round(metrics.pit((loc, scale / 2), y).numpy(), 2)
    order = np.argsort(u, kind="stable")
    ranks = np.empty(500)
    ranks[order] = np.arange(1, 501) / 501
    ref = isotonic.IsotonicRegression().fit(u, ranks)
    recal = calibration.IsotonicRecalibrator()
    recal.fit(_FixedPIT(u), np.zeros(500))
    inner = recal.knots_x[1:-1]
    np.testing.assert_allclose(recal.knots_y[1:-1], ref.predict(inner), rtol=1e-12)


class _FixedPIT(metrics.UnivariatePredictive):
    """A predictive whose PIT values are given (to feed exact ties to the recalibrator)."""

    def __init__(self, u):
        self.u = np.asarray(u, dtype=float)

    batch_shape = property(lambda self: self.u.shape)
    dtype = property(lambda self: tf.float64)

    def cdf(self, y):
        return tf.constant(self.u) + 0 * y


@pytest.mark.parametrize("family", ["normal", "mixture"])
def test_isotonic_recalibration_halves_the_miscalibration_area(rng, family):
    _, loc, scale, y = heteroscedastic(rng, 3000)
    if family == "normal":
        dist = tfd.Normal(loc, scale / 3)  # three times over-confident
    else:  # an over-confident, wrongly bimodal mixture: its quantiles come from the CDF bisection
        centres = np.stack([loc - 0.3 * scale, loc + 0.3 * scale], axis=-1)
        dist = tfd.MixtureSameFamily(
            tfd.Categorical(probs=np.full((3000, 2), 0.5)), tfd.Normal(centres, scale[:, None] / 4)
        )
    cal, test = slice(0, 1000), slice(1000, 3000)
    recal = calibration.IsotonicRecalibrator().fit(dist[cal], y[cal])
    before = float(metrics.miscalibration_area(dist[test], y[test]))
    after = float(metrics.miscalibration_area(recal(dist[test]), y[test]))
    assert before > 0.15
    assert after <= 0.5 * before
    # Held-out coverage of the recalibrated 90 % intervals: binomial sd at n = 2000 is 0.007,
    # plus the calibration set's own noise (~0.01 at n = 1000): 0.04.
    assert float(metrics.coverage(recal(dist[test]), y[test], 0.9)) == pytest.approx(0.9, abs=0.04)


def test_recalibrated_distribution_is_consistent(rng):
    _, loc, scale, y = heteroscedastic(rng, 400)
    recal = calibration.IsotonicRecalibrator().fit((loc, scale / 2), y)
    new = recal((loc[:5], scale[:5] / 2))
    levels = np.array([0.01, 0.2, 0.5, 0.9, 0.99])
    q = new.quantile(levels).numpy()  # (5 levels, 5 predictions)
    np.testing.assert_allclose(new.cdf(q).numpy(), np.broadcast_to(levels[:, None], q.shape), atol=1e-9)
    # Its density is the derivative of its CDF (central differences away from the knots).
    z = np.linspace(-1, 1, 7)[:, None] + loc[:5]
    h = 1e-6
    numeric = (new.cdf(z + h).numpy() - new.cdf(z - h).numpy()) / (2 * h)
    density = np.exp(new.log_prob(z).numpy())
    close = np.isclose(numeric, density, rtol=1e-4)
    assert close.mean() > 0.9  # the few misses straddle a knot of R within h
    out = metrics.report(new, y[:5])
    assert {"nll", "crps", "coverage_90"} <= set(out)


def test_std_scaling(rng):
    _, loc, scale, y = heteroscedastic(rng, 4000)
    head = probnn.heads.NormalHead()
    raw = np.log(np.expm1(scale / 3 - head.min_scale))
    dist = head.distribution(np.stack([loc, raw], axis=-1))
    scaler = calibration.StdScaling().fit(dist[:2000], y[:2000, None])
    z = (y[:2000] - loc[:2000]) / (scale[:2000] / 3)
    assert scaler.factor_ == pytest.approx(np.sqrt(np.mean(z**2)), rel=1e-6)  # float32 head
    assert scaler.factor_ == pytest.approx(3.0, rel=0.05)  # chi-square noise at n = 2000: 1.6 %
    scaled = scaler(dist[2000:])
    assert isinstance(scaled, tfd.Independent)
    assert float(metrics.miscalibration_area(scaled, y[2000:])) < 0.25 * float(
        metrics.miscalibration_area(dist[2000:], y[2000:])
    )


@pytest.mark.parametrize("kind", ["categorical", "bernoulli"])
def test_temperature_scaling_solves_the_likelihood_equation(rng, kind):
    n, t_true = 4000, 2.5
    if kind == "categorical":
        logits = 2 * rng.normal(size=(n, 4))
        probs = scipy.special.softmax(logits / t_true, axis=-1)
        y = (probs.cumsum(axis=1) > rng.uniform(size=(n, 1))).argmax(axis=1)
        dist = probnn.heads.CategoricalHead(4).distribution(logits)
    else:
        logits = 3 * rng.normal(size=(n, 1))
        y = (rng.uniform(size=(n, 1)) < scipy.special.expit(logits / t_true)).astype(float)
        dist = probnn.heads.BernoulliHead().distribution(logits)
    ts = calibration.TemperatureScaling().fit(dist, y)

    # d NLL / d beta = 0 at beta = 1/T: mean(E_p[l] - l_y) = 0 (softmax) or mean((p - y) l) = 0.
    def score(beta):
        if kind == "categorical":
            p = scipy.special.softmax(beta * logits, axis=-1)
            return np.mean((p * logits).sum(axis=1) - logits[np.arange(n), y])
        return np.mean((scipy.special.expit(beta * logits) - y) * logits)

    beta = scipy.optimize.brentq(score, 0.01, 10, xtol=1e-12)
    assert ts.temperature_ == pytest.approx(1 / beta, rel=1e-5)  # float32 logits in the head
    assert ts.temperature_ == pytest.approx(t_true, rel=0.1)
    scaled = ts(dist)
    assert type(scaled) is type(dist)
    assert float(metrics.nll(scaled, y)) < float(metrics.nll(dist, y))
    assert float(metrics.expected_calibration_error(scaled, y)) < 0.5 * float(
        metrics.expected_calibration_error(dist, y)
    )


@pytest.mark.parametrize("score", ["normalized", "absolute", "cdf", "quantile"])
def test_conformal_coverage_over_200_splits_with_a_misspecified_head(score):
    # Exchangeable data: skewed, heteroscedastic noise around a parabola. The head is badly wrong:
    # a Gumbel (skewed the other way at a different rate) centred on a straight line, with a
    # scale that shrinks where the noise grows. With a skewed, heteroscedastic head the four
    # scores give four different intervals. 200 independent calibration/test splits (fresh data
    # each time); the model stays fixed (no training).
    rng = np.random.default_rng(8)
    alpha, n_cal, n_test, reps = 0.1, 100, 1000, 200
    x = rng.uniform(-2, 2, size=(reps, n_cal + n_test))
    y = x**2 + (0.2 + np.abs(x)) * (rng.exponential(size=x.shape) - 1)
    loc, scale = 0.5 * x, 1.2 - 0.3 * np.abs(x)
    cal, test = slice(0, n_cal), slice(n_cal, None)
    coverages = []
    for r in range(reps):
        conf = calibration.SplitConformal(alpha, score=score).fit(
            tfd.Gumbel(loc[r, cal], scale[r, cal]), y[r, cal]
        )
        lower, upper = conf.interval(tfd.Gumbel(loc[r, test], scale[r, test]))
        coverages.append(np.mean((y[r, test] >= lower.numpy()) & (y[r, test] <= upper.numpy())))
    coverages = np.array(coverages)
    mean, se = coverages.mean(), coverages.std(ddof=1) / np.sqrt(reps)
    # 1 - alpha <= E[coverage] <= 1 - alpha + 1/(n_cal + 1), each side up to 3 Monte Carlo standard errors.
    assert 1 - alpha - 3 * se <= mean <= 1 - alpha + 1 / (n_cal + 1) + 3 * se, (mean, se)
    assert se < 0.004  # Beta(91, 10) spread of a split's coverage (0.030) plus test noise, over sqrt(200)
    if score == "normalized":  # the head's own 90 % intervals are far off
        naive = metrics.coverage(tfd.Gumbel(loc[:, test], scale[:, test]), y[:, test], 1 - alpha)
        assert float(naive) < 0.8


def test_conformal_edge_cases_and_errors():
    dist = tfd.Normal(np.zeros(5), 1.0)
    conf = calibration.SplitConformal(alpha=0.1).fit(dist, np.arange(5.0))
    assert conf.quantile_ == np.inf  # ceil(6 * 0.9) = 6 > 5 calibration points
    lower, upper = conf.interval(dist)
    assert np.all(np.isinf(lower.numpy())) and np.all(np.isinf(upper.numpy()))
    with pytest.raises(ValueError, match="SplitConformal: alpha must be in"):
        calibration.SplitConformal(alpha=1.5)
    with pytest.raises(ValueError, match="SplitConformal: score must be one of"):
        calibration.SplitConformal(score="hpd")
    with pytest.raises(ValueError, match="call fit"):
        calibration.SplitConformal().interval(dist)
    with pytest.raises(ValueError, match="StdScaling.fit: dist must be a Normal"):
        calibration.StdScaling().fit(tfd.StudentT(3.0, np.zeros(5), 1.0), np.zeros(5))
    with pytest.raises(ValueError, match="TemperatureScaling.fit: dist must be a Categorical"):
        calibration.TemperatureScaling().fit(dist, np.zeros(5))


def test_recalibrated_quantiles_stay_finite_when_the_base_cdf_saturates(rng):
    # float32 Normal CDFs round to exactly 0 or 1 for targets 6+ sd away: such PIT values give
    # knots at the ends of R; quantiles and the CRPS of the recalibrated distribution stay finite.
    loc, scale = np.zeros(300, "float32"), np.full(300, 0.1, "float32")
    y = (rng.standard_t(2, size=300) * 0.3).astype("float32")
    u = metrics.pit((loc, scale), y).numpy()
    assert np.any(u == 0) and np.any(u == 1)
    recal = calibration.IsotonicRecalibrator().fit((loc, scale), y)
    new = recal((loc[:20], scale[:20]))
    assert np.all(np.isfinite(new.quantile(np.array([1e-4, 0.5, 1 - 1e-4])).numpy()))
    assert np.isfinite(float(metrics.crps(new, y[:20])))
