"""probnn.metrics against independent references.

References: properscoring (CRPS of Normals and of ensembles), scoringrules
(CRPS of Student-t and Normal mixtures), uncertainty-toolbox (calibration
curves, miscalibration area, mean absolute calibration error, sharpness),
scikit-learn (Brier score, reliability bins), scipy (densities, quantiles by
root finding, CRPS by numerical integration) and closed forms.
"""

import numpy as np
import pytest
import scipy.integrate
import scipy.optimize
import scipy.stats
import tensorflow as tf
import tensorflow_probability as tfp

import probnn
from probnn import metrics

tfd = tfp.distributions
properscoring = pytest.importorskip("properscoring")
scoringrules = pytest.importorskip("scoringrules")
uct = pytest.importorskip("uncertainty_toolbox")


def normal_data(rng, n=500):
    mean = rng.normal(size=n)
    std = rng.uniform(0.2, 2.0, size=n)
    y = mean + std * rng.standard_t(4, size=n)  # not exactly the predictive: a non-trivial curve
    return mean, std, y


# -- CRPS ----------------------------------------------------------------------------------


def test_crps_normal_matches_properscoring(rng):
    mean, std, y = normal_data(rng)
    ours = metrics.crps((mean, std), y, reduction="none").numpy()
    np.testing.assert_allclose(ours, properscoring.crps_gaussian(y, mean, std), rtol=1e-12, atol=1e-14)
    # float32 inputs: float32 rounding only.
    ours32 = metrics.crps(
        (mean.astype("float32"), std.astype("float32")), y.astype("float32"), reduction="none"
    )
    np.testing.assert_allclose(
        ours32.numpy(), properscoring.crps_gaussian(y, mean, std), rtol=2e-5, atol=2e-6
    )


def test_crps_of_a_normal_head_distribution(rng):
    # A head's Independent(Normal) with event (1,) and targets (n, 1) or (n,).
    head = probnn.heads.NormalHead()
    params = rng.normal(size=(50, 2))
    dist = head.distribution(params)
    loc = params[:, 0]
    scale = np.log1p(np.exp(params[:, 1])) + head.min_scale
    y = rng.normal(size=(50, 1))
    expected = properscoring.crps_gaussian(y[:, 0], loc, scale)
    np.testing.assert_allclose(metrics.crps(dist, y, reduction="none").numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(float(metrics.crps(dist, y[:, 0])), expected.mean(), rtol=1e-12)


def test_crps_student_t_matches_scoringrules(rng):
    df = rng.uniform(1.5, 30.0, size=300)
    loc, scale = rng.normal(size=300), rng.uniform(0.5, 3.0, size=300)
    y = rng.normal(size=300) * 3
    dist = tfd.StudentT(df, loc, scale)
    expected = scoringrules.crps_t(y, df, loc, scale)
    np.testing.assert_allclose(metrics.crps(dist, y, reduction="none").numpy(), expected, rtol=1e-9)


def test_crps_normal_mixture_matches_scoringrules(rng):
    # The mixture density head's distribution (K = 4 components, event (1,)).
    head = probnn.heads.MixtureNormalHead(num_components=4)
    params = rng.normal(size=(100, head.params_size))
    dist = head.distribution(params)
    w = scipy.special.softmax(params[:, :4], axis=-1)
    m = params[:, 4:8]
    s = np.log1p(np.exp(params[:, 8:12])) + head.min_scale
    y = rng.normal(size=(100, 1))
    expected = scoringrules.crps_mixnorm(y[:, 0], m, s, w)
    np.testing.assert_allclose(metrics.crps(dist, y, reduction="none").numpy(), expected, rtol=1e-10)


def test_crps_predictive_mixture_of_mixtures_is_flattened(rng):
    # Shared piece 2: a predictive mixture over K1 = 3 members (axis 1) of K2 = 2-component heads.
    head = probnn.heads.MixtureNormalHead(num_components=2)
    params = rng.normal(size=(20, 3, head.params_size))
    dist = tfd.MixtureSameFamily(tfd.Categorical(logits=np.zeros((20, 3))), head.distribution(params))
    w = scipy.special.softmax(params[..., :2], axis=-1) / 3
    m, s = params[..., 2:4], np.log1p(np.exp(params[..., 4:6])) + head.min_scale
    y = rng.normal(size=(20, 1))
    expected = scoringrules.crps_mixnorm(y[:, 0], m.reshape(20, 6), s.reshape(20, 6), w.reshape(20, 6))
    np.testing.assert_allclose(metrics.crps(dist, y, reduction="none").numpy(), expected, rtol=1e-10)


def test_crps_samples_matches_properscoring(rng):
    samples = rng.normal(size=(200, 40)) * 2 + 1
    y = rng.normal(size=40)
    expected = properscoring.crps_ensemble(y, samples.T)
    np.testing.assert_allclose(metrics.crps(samples, y, reduction="none").numpy(), expected, rtol=1e-12)


def _crps_by_quad(cdf, y, lo, hi):
    left = scipy.integrate.quad(lambda z: cdf(z) ** 2, lo, y, limit=200, epsabs=1e-12)[0]
    right = scipy.integrate.quad(lambda z: (1 - cdf(z)) ** 2, y, hi, limit=200, epsabs=1e-12)[0]
    return left + right


def test_crps_of_a_student_t_mixture_by_quantile_integration(rng):
    # No closed form: the generic quantile-score integral over 1000 levels,
    # against scipy.integrate.quad of the threshold form. Tolerance 2e-3 relative:
    # the midpoint rule's truncation of the tails at 1/2000 (for heavy tails) dominates.
    w = np.array([0.3, 0.7])
    df, loc, scale = np.array([3.0, 8.0]), np.array([-2.0, 1.0]), np.array([0.5, 1.0])
    dist = tfd.MixtureSameFamily(tfd.Categorical(probs=np.tile(w, (5, 1))), tfd.StudentT(df, loc, scale))
    y = np.array([-3.0, -2.0, 0.0, 1.0, 5.0])

    def cdf(z):
        return float(np.sum(w * scipy.stats.t.cdf(z, df, loc, scale)))

    expected = [_crps_by_quad(cdf, v, -1e4, 1e4) for v in y]
    np.testing.assert_allclose(metrics.crps(dist, y, reduction="none").numpy(), expected, rtol=2e-3)


@pytest.mark.integration
def test_crps_is_differentiable_and_compiles():
    loc = tf.Variable([0.3, -1.0], dtype=tf.float64)
    scale = tf.constant([1.0, 2.0], tf.float64)
    y = tf.constant([1.0, 0.5], tf.float64)
    with tf.GradientTape() as tape:
        value = metrics.crps(tfd.Normal(loc, scale), y, reduction="sum")
    grad = tape.gradient(value, loc).numpy()
    z = (y.numpy() - loc.numpy()) / scale.numpy()
    np.testing.assert_allclose(grad, -(2 * scipy.stats.norm.cdf(z) - 1), rtol=1e-12)  # dCRPS/dmu

    @tf.function(jit_compile=True)
    def objective(loc, scale, y):
        return metrics.crps(tfd.Normal(loc, scale), y)

    np.testing.assert_allclose(float(objective(loc, scale, y)), float(value) / 2, rtol=1e-12)


# -- other scores -------------------------------------------------------------------------------


def test_nll_rmse_mae_sharpness(rng):
    mean, std, y = normal_data(rng)
    np.testing.assert_allclose(
        float(metrics.nll((mean, std), y)), -scipy.stats.norm.logpdf(y, mean, std).mean(), rtol=1e-12
    )
    np.testing.assert_allclose(
        float(metrics.rmse((mean, std), y)), np.sqrt(np.mean((mean - y) ** 2)), rtol=1e-12
    )
    np.testing.assert_allclose(float(metrics.mae((mean, std), y)), np.mean(np.abs(mean - y)), rtol=1e-12)
    np.testing.assert_allclose(
        float(metrics.sharpness((mean, std))), uct.metrics_calibration.sharpness(std), rtol=1e-12
    )
    # A head's Independent over 3 outputs: the joint NLL of each example sums its outputs.
    dist = probnn.heads.NormalHead(3).distribution(rng.normal(size=(10, 6)))
    y3 = rng.normal(size=(10, 3))
    np.testing.assert_allclose(
        float(metrics.nll(dist, y3, reduction="sum")), -np.sum(dist.log_prob(y3).numpy()), rtol=1e-12
    )


def test_brier_and_reliability_match_sklearn(rng):
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    sklearn_calibration = pytest.importorskip("sklearn.calibration")
    p = rng.uniform(size=2000)
    y = (rng.uniform(size=2000) < p**1.5).astype(int)
    dist = probnn.heads.BernoulliHead().distribution(scipy.special.logit(p)[:, None])
    np.testing.assert_allclose(
        float(metrics.brier_score(dist, y[:, None])), sklearn_metrics.brier_score_loss(y, p), rtol=1e-6
    )
    bins = metrics.reliability_bins(dist, y[:, None], num_bins=10)
    prob_true, prob_pred = sklearn_calibration.calibration_curve(y, p, n_bins=10, strategy="uniform")
    nonempty = bins.count.numpy() > 0
    # float32 logits -> probabilities: 1e-6 relative.
    np.testing.assert_allclose(bins.accuracy.numpy()[nonempty], prob_true, rtol=1e-6)
    np.testing.assert_allclose(bins.confidence.numpy()[nonempty], prob_pred, rtol=1e-6)
    counts = np.histogram(p, bins=np.linspace(0, 1, 11))[0]
    ece = np.sum(counts[counts > 0] / 2000 * np.abs(prob_true - prob_pred))
    np.testing.assert_allclose(float(metrics.expected_calibration_error(dist, y[:, None])), ece, rtol=1e-5)


def test_categorical_brier_and_top_label_ece(rng):
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    logits = rng.normal(size=(1000, 4)) * 2
    probs = scipy.special.softmax(logits, axis=-1)
    y = np.array([rng.choice(4, p=row) for row in scipy.special.softmax(logits / 2, axis=-1)])
    dist = probnn.heads.CategoricalHead(4).distribution(logits)
    np.testing.assert_allclose(
        float(metrics.brier_score(dist, y)),
        sklearn_metrics.brier_score_loss(y, probs, scale_by_half=False),
        rtol=1e-10,
    )
    # Top-label ECE by a plain loop over 15 bins (a value on an inner edge goes to the lower bin).
    conf, hit = probs.max(axis=1), (probs.argmax(axis=1) == y)
    edges = np.linspace(0, 1, 16)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (conf > lo) & (conf <= hi)
        if inside.any():
            ece += inside.mean() * abs(hit[inside].mean() - conf[inside].mean())
    np.testing.assert_allclose(
        float(metrics.expected_calibration_error(dist, y, num_bins=15)), ece, rtol=1e-10
    )
    out = metrics.report(dist, y)
    assert set(out) == {"nll", "brier", "calibration_error", "accuracy"}
    assert out["accuracy"] == pytest.approx(hit.mean())
    assert out["nll"] == pytest.approx(-np.mean(np.log(probs[np.arange(1000), y])), rel=1e-10)


# -- calibration curves -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["interval", "quantile"])
def test_calibration_curve_and_area_match_uncertainty_toolbox(rng, kind):
    mean, std, y = normal_data(rng, n=1000)
    curve = metrics.calibration_curve((mean, std), y, kind=kind)
    # uncertainty-toolbox's "quantile" proportions use residuals mean - y, i.e. the mirrored
    # problem; feeding it (-mean, -y) gives the fraction of y below the predicted quantile.
    sign = -1 if kind == "quantile" else 1
    exp, obs = uct.metrics_calibration.get_proportion_lists_vectorized(
        sign * mean, std, sign * y, prop_type=kind
    )
    np.testing.assert_allclose(curve.expected.numpy(), exp, atol=1e-15)
    # The same comparisons up to rounding: |2F(y) - 1| <= p against Φ⁻¹ bounds on z can
    # differ only for a point within an ulp of an interval end (none here).
    np.testing.assert_allclose(curve.observed.numpy(), obs, atol=1e-12)
    area = uct.metrics_calibration.miscalibration_area(sign * mean, std, sign * y, prop_type=kind)
    # Both are exact areas; uncertainty-toolbox finds crossing points by a 2x2 solve (1e-9 rounding).
    np.testing.assert_allclose(float(metrics.miscalibration_area((mean, std), y, kind=kind)), area, atol=1e-8)
    mace = uct.metrics_calibration.mean_absolute_calibration_error(sign * mean, std, sign * y, prop_type=kind)
    np.testing.assert_allclose(
        float(metrics.expected_calibration_error((mean, std), y, kind=kind)), mace, rtol=1e-10
    )


def _null_area_quantile(n, q=0.999, repeats=400, seed=0):
    """The q-quantile of the miscalibration area of n exactly uniform PIT values (by simulation)."""
    rng = np.random.default_rng(seed)
    levels = np.linspace(0, 1, 100)
    areas = []
    for _ in range(repeats):
        v = np.sort(np.abs(2 * rng.uniform(size=n) - 1))
        obs = np.searchsorted(v, levels, side="right") / n
        areas.append(float(metrics.area_between(levels, obs)))
    return np.quantile(areas, q), np.mean(areas)


def test_well_specified_model_is_calibrated(rng):
    # Heteroscedastic data and the true predictive distribution, a Normal head's and a mixture's.
    n = 2000
    x = rng.uniform(-3, 3, size=n)
    loc, scale = np.sin(x), 0.1 + 0.3 * np.abs(x)
    y = loc + scale * rng.normal(size=n)
    limit, mean_area = _null_area_quantile(n)
    # Sampling distribution of the area under calibration: mean ~ 0.31/sqrt(n) = 0.007.
    assert 0.005 < mean_area < 0.009
    u = metrics.pit((loc, scale), y).numpy()
    assert scipy.stats.kstest(u, "uniform").pvalue > 0.01
    assert float(metrics.miscalibration_area((loc, scale), y)) < limit

    # A bimodal truth and its mixture: PIT of MixtureSameFamily through its CDF.
    comp = rng.integers(0, 2, size=n)
    centres = np.stack([loc - 1, loc + 1], axis=-1)
    y2 = centres[np.arange(n), comp] + 0.3 * rng.normal(size=n)
    mix = tfd.MixtureSameFamily(tfd.Categorical(probs=np.full((n, 2), 0.5)), tfd.Normal(centres, 0.3))
    assert scipy.stats.kstest(metrics.pit(mix, y2).numpy(), "uniform").pvalue > 0.01
    assert float(metrics.miscalibration_area(mix, y2)) < limit

    # An over-confident model fails both.
    assert scipy.stats.kstest(metrics.pit((loc, scale / 2), y).numpy(), "uniform").pvalue < 1e-6
    assert float(metrics.miscalibration_area((loc, scale / 2), y)) > 5 * limit


def test_samples_pit_is_uniform_on_ranks(rng):
    samples = rng.normal(size=(19, 3000))
    y = rng.normal(size=3000)
    u = metrics.pit(samples, y).numpy()
    ranks = np.round(u * 20 - 0.5).astype(int)
    counts = np.bincount(ranks, minlength=20)
    assert counts.size == 20
    assert scipy.stats.chisquare(counts).pvalue > 0.01


# -- quantiles, intervals, coverage ---------------------------------------------------------------


def test_bisection_quantiles_of_mixtures_match_root_finding(rng):
    head = probnn.heads.MixtureNormalHead(num_components=3)
    params = rng.normal(size=(4, 3, head.params_size)) * 2
    dist = tfd.MixtureSameFamily(tfd.Categorical(logits=np.zeros((4, 3))), head.distribution(params))
    levels = np.array([1e-4, 0.05, 0.5, 0.9, 0.9999])
    q = metrics.quantile(dist, levels).numpy()
    assert q.shape == (5, 4)
    for j in range(4):
        w = scipy.special.softmax(params[j, :, :3], axis=-1) / 3
        m, s = params[j, :, 3:6], np.log1p(np.exp(params[j, :, 6:9])) + head.min_scale

        def cdf(z, w=w, m=m, s=s):
            return float(np.sum(w * scipy.stats.norm.cdf(z, m, s)))

        for i, p in enumerate(levels):
            ref = scipy.optimize.brentq(lambda z, p=p: cdf(z) - p, -100, 100, xtol=1e-14)
            assert q[i, j] == pytest.approx(ref, rel=1e-9, abs=1e-9)


def test_coverage_width_and_hdi(rng):
    mean, std = np.zeros(20000), np.ones(20000)
    y = rng.normal(size=20000)
    # Binomial noise at n = 20000: sd 0.0021; 4 sd.
    assert float(metrics.coverage((mean, std), y, 0.9)) == pytest.approx(0.9, abs=0.0085)
    assert float(metrics.mean_interval_width((mean, std), 0.9)) == pytest.approx(
        2 * scipy.stats.norm.ppf(0.95), rel=1e-12
    )
    # Samples: empirical quantiles as numpy's default (linear) method.
    samples = rng.exponential(size=(4000, 3))
    lower, upper = metrics.interval(samples, 0.9)
    np.testing.assert_allclose(lower.numpy(), np.quantile(samples, 0.05, axis=0), rtol=1e-12)
    np.testing.assert_allclose(upper.numpy(), np.quantile(samples, 0.95, axis=0), rtol=1e-12)
    # HDI of Exp(1) at 0.9 is [0, -log 0.1]; the central interval is wider.
    lo_h, hi_h = metrics.interval(samples, 0.9, kind="hdi")
    np.testing.assert_allclose(lo_h.numpy(), 0.0, atol=0.01)
    np.testing.assert_allclose(hi_h.numpy(), -np.log(0.1), atol=0.15)
    assert np.all((hi_h - lo_h).numpy() < (upper - lower).numpy())


def test_report_of_a_normal_head(rng):
    head = probnn.heads.NormalHead()
    dist = head.distribution(rng.normal(size=(300, 2)))
    y = dist.sample(seed=1).numpy()
    out = metrics.report(dist, y)
    assert all(type(v) is float for v in out.values())
    assert out["crps"] == pytest.approx(float(metrics.crps(dist, y)))
    assert out["coverage_90"] == pytest.approx(float(metrics.coverage(dist, y, 0.9)))
    assert {"nll", "rmse", "mae", "miscalibration_area", "calibration_error", "sharpness", "width_95"} <= set(
        out
    )
    assert "nll" not in metrics.report(dist.sample(50, seed=2)[..., 0], y[:, 0])


def test_bad_inputs_raise_named_errors(rng):
    dist = probnn.heads.NormalHead().distribution(rng.normal(size=(5, 2)))
    with pytest.raises(ValueError, match=r"crps: y must have shape \(5,\)"):
        metrics.crps(dist, np.zeros(4))
    with pytest.raises(ValueError, match="coverage: level must be in"):
        metrics.coverage(dist, np.zeros(5), level=90)
    mvn = tfd.MultivariateNormalDiag(np.zeros((5, 2)), np.ones((5, 2)))
    with pytest.raises(ValueError, match="pit: dist must be a distribution over scalars"):
        metrics.pit(mvn, np.zeros((5, 2)))
    with pytest.raises(ValueError, match="calibration_curve: kind must be"):
        metrics.calibration_curve(dist, np.zeros(5), kind="central")
    with pytest.raises(ValueError, match="nll: dist must have a density"):
        metrics.nll(rng.normal(size=(10, 5)), np.zeros(5))
    with pytest.raises(ValueError, match="brier_score: dist must be a Categorical or Bernoulli"):
        metrics.brier_score(dist, np.zeros(5))
