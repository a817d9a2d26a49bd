"""Count, positive, censored, evidential, quantile and flow heads; the CRPS, pinball and evidential losses."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import integrate, special, stats

import probnn
from probnn.heads import (
    BetaHead,
    CensoredNormalHead,
    EvidentialHead,
    FlowHead,
    GammaHead,
    LogNormalHead,
    NegativeBinomialHead,
    QuantileHead,
    ZeroInflatedPoissonHead,
)
from probnn.losses import CRPS, EvidentialLoss, NegativeLogLikelihood, Pinball

# The acceptance tolerance: float64 log densities agree with scipy's to 1e-6
# relative. The differences seen are below 1e-9 (Gamma: TFP's and scipy's
# lgamma/xlogy paths), so any wrong transform or parameter order (errors of
# order 1e-2 or more) fails while rounding never does.
RTOL = 1e-6
N = 1000


def softplus(x):
    return np.logaddexp(0.0, x)


def _scipy_cases(rng):
    """(head, params, targets, scipy log density) on N random rows, for every head with a scipy reference."""
    p = rng.normal(scale=1.5, size=(N, 2))
    first, raw = p[:, 0], p[:, 1]
    pos = softplus(raw) + 1e-6
    counts = rng.poisson(np.exp(np.clip(first, -3, 3)) * rng.choice([0, 1], size=N))[:, None] * 1.0
    positive = rng.gamma(2.0, size=(N, 1)) + 1e-3
    unit = rng.uniform(0.001, 0.999, size=(N, 1))
    censored = np.maximum(0.0, rng.normal(size=(N, 1)))
    zero_weight = special.expit(raw)
    y = counts[:, 0]
    zip_pmf = zero_weight * (y == 0) + (1 - zero_weight) * stats.poisson.pmf(y, np.exp(first))
    return [
        (NegativeBinomialHead(), p, counts, stats.nbinom.logpmf(y, pos, pos / (pos + np.exp(first)))),
        (ZeroInflatedPoissonHead(), p, counts, np.log(zip_pmf)),
        (GammaHead(), p, positive, stats.gamma.logpdf(positive[:, 0], pos, scale=np.exp(first) / pos)),
        (LogNormalHead(), p, positive, stats.lognorm.logpdf(positive[:, 0], s=pos, scale=np.exp(first))),
        (BetaHead(), p, unit, stats.beta.logpdf(unit[:, 0], softplus(first) + 1e-6, pos)),
        (
            CensoredNormalHead(lower=0.0),
            p,
            censored,
            np.where(
                censored[:, 0] == 0,
                stats.norm.logcdf(0.0, first, pos),
                stats.norm.logpdf(censored[:, 0], first, pos),
            ),
        ),
    ]


def test_log_prob_matches_scipy_on_1000_random_rows(rng):
    for head, params, y, expected in _scipy_cases(rng):
        got = head.log_prob(tf.constant(params), tf.constant(y)).numpy()
        assert np.all(np.isfinite(expected)), type(head).__name__
        np.testing.assert_allclose(got, expected, rtol=RTOL, err_msg=type(head).__name__)


def _evidence(params):
    gamma, raw_lam, raw_alpha, raw_beta = params.T
    return gamma, softplus(raw_lam) + 1e-6, 1 + softplus(raw_alpha) + 1e-6, softplus(raw_beta) + 1e-6


def test_evidential_predictive_is_the_closed_form_student_t(rng):
    head = EvidentialHead()
    params = rng.normal(scale=1.5, size=(N, 4))
    y = rng.normal(scale=3.0, size=(N, 1))
    gamma, lam, alpha, beta = _evidence(params)
    scale = np.sqrt(beta * (1 + lam) / (lam * alpha))
    reference = stats.t(2 * alpha, gamma, scale)
    dist = head.distribution(tf.constant(params))
    np.testing.assert_allclose(dist.log_prob(y), reference.logpdf(y[:, 0]), rtol=RTOL)
    np.testing.assert_allclose(dist.cdf(y), reference.cdf(y[:, 0]), rtol=RTOL)
    np.testing.assert_allclose(dist.variance()[:, 0], reference.var(), rtol=RTOL)
    # Amini et al. (2020), eq. 8, written out: the loss is this NLL plus λ|y - γ|(2ν + α).
    omega = 2 * beta * (1 + lam)
    nll = (
        0.5 * np.log(np.pi / lam)
        - alpha * np.log(omega)
        + (alpha + 0.5) * np.log(lam * (y[:, 0] - gamma) ** 2 + omega)
        + special.gammaln(alpha)
        - special.gammaln(alpha + 0.5)
    )
    loss = EvidentialLoss(head, reg_weight=0.05, reduction="none", dtype="float64")
    expected = nll + 0.05 * np.abs(y[:, 0] - gamma) * (2 * lam + alpha)
    np.testing.assert_allclose(loss(y, params), expected, rtol=RTOL)
    aleatoric, epistemic = probnn.decompose_uncertainty(dist)
    np.testing.assert_allclose(aleatoric[:, 0], beta / (alpha - 1), rtol=RTOL)
    np.testing.assert_allclose(epistemic[:, 0], beta / (lam * (alpha - 1)), rtol=RTOL)
    # The closed-form Student-t CRPS applies to it (the predictive is a tfd.StudentT).
    np.testing.assert_allclose(
        probnn.metrics.crps(dist, y, reduction="none"),
        probnn.metrics.crps_student_t(2 * alpha, gamma, scale, y[:, 0]),
        rtol=RTOL,
    )


def test_flow_log_prob_is_the_change_of_variables_density(rng):
    """log p(y) = log φ(z) - log f'(z) at y = f(z), with scipy's φ and a central-difference f'."""
    head = FlowHead(num_bins=6, num_layers=2)
    params = tf.constant(rng.normal(scale=0.7, size=(N, head.params_size)))
    z = rng.normal(size=N)
    flow = head.bijector(params)
    y = flow.forward(z).numpy()
    h = 1e-5  # central difference: truncation h² f''' ~ 1e-10, rounding eps/h ~ 1e-11 (relative)
    slope = (flow.forward(z + h).numpy() - flow.forward(z - h).numpy()) / (2 * h)
    expected = stats.norm.logpdf(z) - np.log(slope)
    np.testing.assert_allclose(head.log_prob(params, y[:, None]), expected, rtol=RTOL)
    dist = head.distribution(params)
    np.testing.assert_allclose(dist.cdf(y), stats.norm.cdf(z), rtol=1e-9)
    np.testing.assert_allclose(dist.quantile(stats.norm.cdf(z)), y, rtol=1e-6, atol=1e-9)


def test_flow_mean_and_variance_by_quadrature(rng):
    head = FlowHead(num_bins=8, num_layers=2)
    params = tf.constant(rng.normal(scale=0.5, size=(4, head.params_size)))
    dist = head.distribution(params)
    # Reference: the mean of f over 200,000 base quantiles (midpoint rule in probability).
    tau = (np.arange(200_000) + 0.5) / 200_000
    values = head.bijector(params).forward(stats.norm.ppf(tau)[:, None] * np.ones(4)).numpy()
    sd = values.std(0)
    np.testing.assert_allclose(dist.mean(), values.mean(0), atol=1e-4 * sd.max())
    np.testing.assert_allclose(dist.stddev(), sd, rtol=1e-4)


@pytest.mark.parametrize(
    "head, bad, message",
    [
        (
            NegativeBinomialHead(),
            2.5,
            "NegativeBinomialHead: targets must be non-negative integer counts, got 2.5",
        ),
        (
            ZeroInflatedPoissonHead(),
            -1,
            "ZeroInflatedPoissonHead: targets must be non-negative integer counts, got -1",
        ),
        (GammaHead(), 0.0, r"GammaHead: targets must be positive \(> 0\), got 0"),
        (LogNormalHead(), -2.0, r"LogNormalHead: targets must be positive \(> 0\), got -2"),
        (BetaHead(), 1.0, r"BetaHead: targets must be in the open interval \(0, 1\), got 1"),
        (CensoredNormalHead(lower=0.5), 0.25, "CensoredNormalHead: targets must be >= lower = 0.5, got 0.25"),
        (GammaHead(), np.inf, "GammaHead: targets must be positive"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, keras.layers.Layer) else None,
)
def test_check_targets_refuses_invalid_targets_in_one_line(head, bad, message):
    good = {BetaHead: 0.5}.get(type(head), 1.0)
    head.check_targets([[good], [good]])
    with pytest.raises(ValueError, match=message) as info:
        head.check_targets([[good], [bad]])
    assert "\n" not in str(info.value) and "(row 1)" in str(info.value)


def test_probnn_fit_checks_targets_for_every_head_loss(rng):
    head = GammaHead()
    model = keras.Sequential([keras.Input((2,)), head])
    x = rng.normal(size=(8, 2)).astype("float32")
    with pytest.raises(
        ValueError, match="y does not fit the model's head: GammaHead: targets must be positive"
    ):
        probnn.fit(model, x, -np.ones((8, 1), "float32"), loss=CRPS(head), epochs=1, verbose=0)


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda: QuantileHead(quantiles=(0.5, 0.1)),
            "QuantileHead: quantiles must be a non-empty increasing",
        ),
        (lambda: QuantileHead(quantiles=(0.0, 0.5)), "QuantileHead: quantiles"),
        (lambda: FlowHead(num_bins=1), "FlowHead: num_bins must be an integer >= 2"),
        (lambda: FlowHead(bound=-1.0), "FlowHead: bound must be a positive"),
        (lambda: FlowHead(num_bins=10, bound=0.001), "FlowHead: min_bin_size \\* num_bins"),
        (lambda: CensoredNormalHead(lower=np.inf), "CensoredNormalHead: lower must be a finite"),
        (
            lambda: CRPS(NegativeBinomialHead()),
            "CRPS: NegativeBinomialHead's distribution has no closed-form",
        ),
        (lambda: CRPS(probnn.heads.MultivariateNormalHead(2)), "CRPS: MultivariateNormalHead must give"),
        (lambda: CRPS(QuantileHead()), "CRPS: QuantileHead must give"),
        (lambda: Pinball(GammaHead()), "Pinball: head must be a probnn.heads.QuantileHead"),
        (lambda: EvidentialLoss(GammaHead()), "EvidentialLoss: head must be"),
        (lambda: EvidentialLoss(EvidentialHead(), reg_weight=-1), "EvidentialLoss: reg_weight"),
        (
            lambda: QuantileHead().log_prob(np.zeros((1, 3)), np.zeros((1, 1))),
            "QuantileHead: a quantile head has no likelihood",
        ),
    ],
)
def test_bad_configuration_is_rejected(make, message):
    with pytest.raises(ValueError, match=message):
        make()


NEW_HEADS = [
    (lambda: NegativeBinomialHead(event_size=2), NegativeLogLikelihood),
    (lambda: ZeroInflatedPoissonHead(), NegativeLogLikelihood),
    (lambda: GammaHead(), CRPS),
    (lambda: LogNormalHead(event_size=2), CRPS),
    (lambda: BetaHead(), NegativeLogLikelihood),
    (lambda: CensoredNormalHead(lower=-0.5), CRPS),
    (lambda: EvidentialHead(), EvidentialLoss),
    (lambda: QuantileHead(quantiles=(0.1, 0.5, 0.9)), Pinball),
    (lambda: FlowHead(num_bins=4, num_layers=2, interleave_affine=False), NegativeLogLikelihood),
]


@pytest.mark.integration
@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")
def test_save_load_round_trip_gives_identical_outputs(tmp_path, rng):
    """One model with every new head as an output; each loss through Keras's serialisation."""
    inputs = keras.Input((3,))
    hidden = keras.layers.Dense(8, "tanh")(inputs)
    heads = [make() for make, _ in NEW_HEADS]
    model = keras.Model(inputs, [head(hidden) for head in heads])
    x = rng.normal(size=(16, 3)).astype("float32")
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)  # safe_mode=True is the default
    for before, after in zip(model.predict(x, verbose=0), loaded.predict(x, verbose=0)):
        np.testing.assert_array_equal(before, after)
    outputs = model(x)
    for head, (_, loss_type), params in zip(heads, NEW_HEADS, outputs):
        copy = keras.layers.deserialize(keras.layers.serialize(head))
        assert type(copy) is type(head) and copy.get_config() == head.get_config()
        loss = loss_type(head)
        restored = keras.losses.deserialize(keras.losses.serialize(loss))
        assert type(restored) is loss_type and restored.get_config() == loss.get_config()
        dist = head.distribution(params)
        y = (
            dist.quantile(np.array([0.5]))[0][:, None]
            if isinstance(head, QuantileHead)
            else dist.sample(seed=1)
        )
        if isinstance(head, FlowHead):
            y = y[:, None]
        if getattr(loss, "closed_form", True):  # the sampled CRPS draws fresh samples per call
            np.testing.assert_array_equal(restored(y, params), loss(y, params))
        else:
            assert np.isfinite(restored(y, params)), type(head).__name__


def test_quantiles_never_cross(rng):
    head = QuantileHead(quantiles=(0.01, 0.1, 0.5, 0.9, 0.99))
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(32, "tanh"), head])
    for layer in model.layers:  # large random weights: raw increments of both signs and all sizes
        layer.set_weights([rng.normal(scale=5.0, size=w.shape) for w in layer.get_weights()])
    x = rng.normal(scale=3.0, size=(5000, 4)).astype("float32")
    q = head.quantiles(model(x)).numpy()
    assert np.all(np.diff(q, axis=-1) >= 0)
    extreme = rng.uniform(-80, 80, size=(5000, 5)).astype("float32")  # increments underflow to 0
    assert np.all(np.diff(head.quantiles(extreme).numpy(), axis=-1) >= 0)


def test_cqr_with_the_quantile_head_covers_one_minus_alpha_over_200_splits(rng):
    """Conformalised quantile regression on a QuantileHead's output, split after split.

    The quantile "model" is deliberately wrong (too narrow, shifted): a
    QuantileHead's parameters computed by hand from x. Over random splits of
    a pool the conformal bounds are 1 - alpha <= coverage < 1 - alpha + 1/(n + 1);
    the mean of 200 split coverages has a standard error of about 0.0021
    here (calibration 200 rows: Beta spread 0.021; test 200 rows: 0.021),
    so the bounds are checked with a margin of 3 standard errors.
    """
    alpha, n_cal, n_test = 0.1, 200, 200
    x = rng.uniform(-2, 2, size=2000)
    y = np.sin(x) + (0.2 + 0.3 * np.abs(x)) * rng.standard_t(4, size=x.size)
    head = QuantileHead(quantiles=(0.05, 0.5, 0.95))
    width = 0.2 * np.ones_like(x)  # too narrow everywhere
    inc = np.log(np.expm1(width))  # softplus^-1: increments of `width`
    params = np.stack([0.9 * np.sin(x) - 0.1 - width, inc, inc], axis=-1)
    covered = []
    for _ in range(200):
        order = rng.permutation(x.size)
        cal, test = order[:n_cal], order[n_cal : n_cal + n_test]
        conformal = probnn.calibration.SplitConformal(alpha, score="cqr")
        conformal.fit(head.distribution(params[cal]), y[cal, None])
        lower, upper = conformal.interval(head.distribution(params[test]))
        covered.append(np.mean((y[test] >= lower.numpy()) & (y[test] <= upper.numpy())))
    naive = np.mean((y >= params[:, 0]) & (y <= params[:, 0] + 2 * width))
    se = 0.0021
    assert naive < 0.7  # the head alone is far from 90 %
    assert 1 - alpha - 3 * se <= np.mean(covered) <= 1 - alpha + 1 / (n_cal + 1) + 3 * se


def test_pinball_and_quantile_calibration_metrics(rng):
    head = QuantileHead(quantiles=(0.1, 0.5, 0.9))
    params = rng.normal(size=(500, 3))
    y = rng.normal(size=(500, 1))
    q = head.quantiles(params).numpy()
    tau = np.array(head.levels)
    u = y - q
    expected = np.mean(np.maximum(tau * u, (tau - 1) * u), axis=-1)
    dist = head.distribution(params)
    np.testing.assert_allclose(probnn.metrics.pinball_loss(dist, y, reduction="none"), expected, rtol=1e-12)
    np.testing.assert_allclose(
        Pinball(head, reduction="none", dtype="float64")(y, params), expected, rtol=1e-12
    )
    np.testing.assert_allclose(probnn.metrics.quantile_calibration(dist, y), np.mean(y <= q, axis=0))
    # Any predictive, given levels: Normal quantiles at their own levels are calibrated.
    z = rng.normal(size=40000)
    freq = probnn.metrics.quantile_calibration((np.zeros(40000), np.ones(40000)), z, tau).numpy()
    np.testing.assert_allclose(freq, tau, atol=4 * np.sqrt(0.25 / 40000))
    with pytest.raises(ValueError, match="QuantilePredictive: quantiles are predicted only at the levels"):
        probnn.metrics.coverage(dist, y, level=0.5)


def test_crps_loss_closed_form_and_unbiased_energy_form(rng):
    # Closed form: a Normal head's CRPS is crps_normal of its loc and scale.
    params = rng.normal(size=(50, 2))
    y = rng.normal(size=(50, 1))
    expected = probnn.metrics.crps_normal(params[:, 0], softplus(params[:, 1]) + 1e-6, y[:, 0])
    np.testing.assert_allclose(
        CRPS(probnn.heads.NormalHead(), reduction="none", dtype="float64")(y, params), expected, rtol=1e-12
    )
    # Energy form: 400 rows with the same Gamma(a=2, mean 1.5) and y = 1 give 400 independent
    # unbiased estimates; their mean is within 4 standard errors of the CRPS integral.
    a, mean, target = 2.0, 1.5, 1.0
    gamma = stats.gamma(a, scale=mean / a)
    truth = (
        integrate.quad(lambda t: gamma.cdf(t) ** 2, 0, target)[0]
        + integrate.quad(lambda t: gamma.sf(t) ** 2, target, np.inf)[0]
    )
    row = np.array([np.log(mean), np.log(np.expm1(a - 1e-6))])
    values = CRPS(GammaHead(), num_samples=16, reduction="none", dtype="float64")(
        np.full((400, 1), target), np.tile(row, (400, 1))
    ).numpy()
    assert abs(values.mean() - truth) < 4 * values.std() / np.sqrt(400), (values.mean(), truth)


def test_censored_normal_moments_quantiles_and_samples():
    d = probnn.heads.positive.CensoredNormal(np.array([-0.5, 0.3, 2.0]), np.array([1.0, 0.5, 2.0]), lower=0.0)
    for i, (loc, scale) in enumerate([(-0.5, 1.0), (0.3, 0.5), (2.0, 2.0)]):
        pdf = stats.norm(loc, scale).pdf  # E max(0, X)^k = ∫_0^∞ t^k φ (the atom sits at 0)
        mean = integrate.quad(lambda t, pdf=pdf: t * pdf(t), 0, np.inf)[0]
        second = integrate.quad(lambda t, pdf=pdf: t * t * pdf(t), 0, np.inf)[0]
        np.testing.assert_allclose(d.mean()[i], mean, rtol=1e-9)
        np.testing.assert_allclose(d.variance()[i], second - mean**2, rtol=1e-9)
    p = np.array([0.2, 0.5, 0.9])
    np.testing.assert_allclose(
        d.quantile(p), np.maximum(0, stats.norm.ppf(p, [-0.5, 0.3, 2.0], [1.0, 0.5, 2.0]))
    )
    assert np.all(d.sample(100, seed=3).numpy() >= 0)


@pytest.mark.integration
def test_new_heads_train_with_probnn_fit_and_model_fit(rng):
    """Gamma + CRPS (sampled energy form, under XLA) and a 2-layer flow + NLL: the loss falls."""
    x = rng.uniform(-1, 1, size=(256, 1)).astype("float32")
    y_pos = rng.gamma(2.0, np.exp(x) / 2.0).astype("float32")
    head = GammaHead()
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(8, "tanh"), head])
    history = probnn.fit(
        model,
        x,
        y_pos,
        loss=CRPS(head, num_samples=16),
        epochs=8,
        batch_size=64,
        optimizer=keras.optimizers.Adam(0.05),
        verbose=0,
        seed=0,
    )
    assert history.history["loss"][-1] < history.history["loss"][0]
    model.compile(keras.optimizers.Adam(0.01), loss=CRPS(head, num_samples=16), jit_compile=False)
    assert np.isfinite(model.fit(x, y_pos, epochs=1, batch_size=64, verbose=0).history["loss"][-1])

    sign = np.where(rng.uniform(size=(256, 1)) < 0.5, -1.0, 1.0)
    y = (sign * (1 + 0.5 * x) + 0.2 * rng.standard_normal((256, 1))).astype("float32")
    flow = FlowHead(num_bins=4, num_layers=1)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(8, "tanh"), flow])
    history = probnn.fit(
        model, x, y, epochs=8, batch_size=64, optimizer=keras.optimizers.Adam(0.05), verbose=0, seed=0
    )
    assert history.history["loss"][-1] < history.history["loss"][0] - 0.1
    # The trained conditional density integrates to 1 (trapezoid on a fine grid; the tails
    # beyond ±30 hold < 1e-12 of the mass of these standardised targets).
    grid = np.linspace(-30, 30, 60001)
    dist = probnn.predict_distribution(model, np.array([[-0.9], [0.0], [0.8]], "float32"))
    density = np.exp(dist.log_prob(np.repeat(grid[:, None], 3, axis=1).astype("float32")).numpy())
    np.testing.assert_allclose(np.trapezoid(density, grid, axis=0), 1.0, atol=2e-4)


@pytest.mark.parametrize(
    "make_head, loss_type, target",
    [
        (NegativeBinomialHead, NegativeLogLikelihood, 3.0),
        (ZeroInflatedPoissonHead, NegativeLogLikelihood, 0.0),
        (ZeroInflatedPoissonHead, NegativeLogLikelihood, 3.0),
        (GammaHead, NegativeLogLikelihood, 1.0),
        (LogNormalHead, NegativeLogLikelihood, 1.0),
        (BetaHead, NegativeLogLikelihood, 0.3),
        (CensoredNormalHead, NegativeLogLikelihood, 0.0),
        (CensoredNormalHead, NegativeLogLikelihood, 1.0),
        (CensoredNormalHead, CRPS, 0.0),
        (EvidentialHead, EvidentialLoss, 1.0),
        (QuantileHead, Pinball, 1.0),
        (lambda: FlowHead(4, 1), NegativeLogLikelihood, 1.0),
    ],
)
def test_loss_and_gradient_finite_for_extreme_raw_parameters(make_head, loss_type, target):
    """Every raw parameter swept over [-50, 50] (the others at 0), float32: finite loss and gradient."""
    head = make_head()
    grid = np.linspace(-50.0, 50.0, 21, dtype="float32")
    blocks = []
    for j in range(head.params_size):
        block = np.zeros((grid.size, head.params_size), "float32")
        block[:, j] = grid
        blocks.append(block)
    params = tf.Variable(np.concatenate(blocks))
    y = np.full((params.shape[0], 1), target, "float32")
    with tf.GradientTape() as tape:
        values = loss_type(head).call(y, params)
    assert np.all(np.isfinite(values.numpy()))
    assert np.all(np.isfinite(tape.gradient(values, params).numpy()))
