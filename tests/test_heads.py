"""Distribution heads: densities against scipy, stability, shapes, save/load, errors."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import special, stats

import probnn
from probnn.heads import (
    BernoulliHead,
    CategoricalHead,
    MixtureNormalHead,
    MultivariateNormalHead,
    NormalHead,
    PoissonHead,
    StudentTHead,
)
from probnn.losses import NegativeLogLikelihood

# float64 reference tolerance: TFP and scipy evaluate the same densities with
# different but well-conditioned float64 formulas (lgamma vs gammaln, Cholesky
# vs eigendecomposition for the multivariate normal); their differences seen
# here are below 1e-13 relative. 1e-9 leaves margin while any wrong constant,
# transform or parameter order would be off by more than 1e-3.
RTOL64 = 1e-9
# float32: a handful of roundings of values of order 1-100 (eps = 1.2e-7).
RTOL32 = 1e-5


def softplus(x):
    return np.logaddexp(0.0, x)


def _expected_normal(params, y, min_scale=1e-6):
    loc, raw = np.split(params, 2, axis=-1)
    return stats.norm.logpdf(y, loc, softplus(raw) + min_scale).sum(-1)


def _expected_student_t(params, y, min_scale=1e-6, min_df_excess=1e-3):
    loc, raw, raw_df = np.split(params, 3, axis=-1)
    df = 2.0 + softplus(raw_df) + min_df_excess
    return stats.t.logpdf(y, df, loc, softplus(raw) + min_scale).sum(-1)


def _expected_mvn(params, y, d, min_scale=1e-6):
    out = []
    for p, yi in zip(params, y):
        loc, raw = p[:d], p[d:]
        # FillScaleTriL fills the lower triangle in TFP's (numpy-compatible)
        # order; build it with TFP's own fill_triangular to stay independent of
        # the order convention, then apply the diagonal transform by hand.
        tril = (
            tf.linalg.LinearOperatorLowerTriangular(
                tf.constant(__import__("tensorflow_probability").math.fill_triangular(raw).numpy())
            )
            .to_dense()
            .numpy()
        )
        tril[np.diag_indices(d)] = softplus(np.diag(tril)) + min_scale
        out.append(stats.multivariate_normal.logpdf(yi, loc, tril @ tril.T))
    return np.array(out)


def _expected_mixture(params, y, k, e, min_scale=1e-6):
    logits, loc, raw = np.split(params, [k, k + k * e], axis=-1)
    loc = loc.reshape(len(y), k, e)
    scale = (softplus(raw) + min_scale).reshape(len(y), k, e)
    comp = stats.norm.logpdf(y[:, None, :], loc, scale).sum(-1)
    log_w = logits - special.logsumexp(logits, axis=-1, keepdims=True)
    return special.logsumexp(log_w + comp, axis=-1)


def _cases(rng, n=7):
    """(head, params, targets, expected log density) for every head family."""

    def params(size, scale=1.5):
        return rng.normal(scale=scale, size=(n, size))

    cases = []
    head = NormalHead(event_size=2)
    p, y = params(4), rng.normal(size=(n, 2))
    cases.append((head, p, y, _expected_normal(p, y)))
    head = StudentTHead(event_size=2)
    p, y = params(6), rng.normal(size=(n, 2)) * 3
    cases.append((head, p, y, _expected_student_t(p, y)))
    head = MultivariateNormalHead(event_size=3)
    p, y = params(9, 0.7), rng.normal(size=(n, 3))
    cases.append((head, p, y, _expected_mvn(p, y, 3)))
    head = PoissonHead(event_size=2)
    p, y = params(2), rng.poisson(3.0, size=(n, 2)).astype(float)
    cases.append((head, p, y, stats.poisson.logpmf(y, np.exp(p)).sum(-1)))
    head = BernoulliHead(event_size=3)
    p, y = params(3), rng.integers(0, 2, size=(n, 3)).astype(float)
    cases.append((head, p, y, stats.bernoulli.logpmf(y, special.expit(p)).sum(-1)))
    head = CategoricalHead(num_classes=4)
    p, y = params(4), rng.integers(0, 4, size=(n,))
    log_probs = p - special.logsumexp(p, axis=-1, keepdims=True)
    cases.append((head, p, y, log_probs[np.arange(n), y]))
    head = MixtureNormalHead(num_components=3, event_size=2)
    p, y = params(15), rng.normal(size=(n, 2)) * 2
    cases.append((head, p, y, _expected_mixture(p, y, 3, 2)))
    return cases


def test_log_prob_matches_scipy_float64(rng):
    for head, params, y, expected in _cases(rng):
        got = head.log_prob(tf.constant(params, tf.float64), tf.constant(y)).numpy()
        np.testing.assert_allclose(got, expected, rtol=RTOL64, err_msg=type(head).__name__)


def test_log_prob_matches_scipy_float32(rng):
    for head, params, y, expected in _cases(rng):
        got = head.log_prob(params.astype("float32"), y.astype("float32")).numpy()
        np.testing.assert_allclose(got, expected, rtol=RTOL32, atol=RTOL32, err_msg=type(head).__name__)


def test_distribution_shapes():
    n = 5
    expected = {
        NormalHead(event_size=2): (4, [2]),
        StudentTHead(): (3, [1]),
        MultivariateNormalHead(event_size=3): (9, [3]),
        PoissonHead(event_size=2): (2, [2]),
        BernoulliHead(): (1, [1]),
        CategoricalHead(num_classes=5): (5, []),
        MixtureNormalHead(num_components=4, event_size=2): (20, [2]),
    }
    for head, (size, event) in expected.items():
        assert head.params_size == size
        dist = head.distribution(np.zeros((n, size), "float32"))
        assert dist.batch_shape.as_list() == [n], type(head).__name__
        assert dist.event_shape.as_list() == event, type(head).__name__
        assert list(head.event_shape) == event


def test_student_t_degrees_of_freedom_stay_above_two():
    head = StudentTHead()
    raw_df = np.array([[0.0, 0.0, -50.0], [0.0, 0.0, -1e4]], "float32")
    df = head.distribution(raw_df).distribution.df.numpy()
    assert np.all(df > 2.0)
    assert np.all(np.isfinite(head.distribution(raw_df).variance().numpy()))


@pytest.mark.parametrize(
    "head, size",
    [
        (NormalHead(), 2),
        (StudentTHead(), 3),
        (PoissonHead(), 1),
        (BernoulliHead(), 1),
        (CategoricalHead(3), 3),
        (MixtureNormalHead(3), 9),
        (MultivariateNormalHead(1), 2),
    ],
    ids=lambda v: type(v).__name__ if not isinstance(v, int) else str(v),
)
def test_loss_and_gradient_finite_for_extreme_raw_parameters(head, size):
    """Every raw parameter swept over [-50, 50] (with the others at 0) gives a finite loss and gradient."""
    grid = np.linspace(-50.0, 50.0, 21, dtype="float32")
    rows = []
    for j in range(size):
        block = np.zeros((grid.size, size), "float32")
        block[:, j] = grid
        rows.append(block)
    params = tf.Variable(np.concatenate(rows))
    event = head.event_shape
    y = np.ones((params.shape[0],) + tuple(event), "float32")
    loss = NegativeLogLikelihood(head)
    with tf.GradientTape() as tape:
        values = loss.call(y, params)
    grad = tape.gradient(values, params)
    assert np.all(np.isfinite(values.numpy())), type(head).__name__
    assert np.all(np.isfinite(grad.numpy())), type(head).__name__


def test_mixture_log_prob_finite_when_component_weights_underflow():
    head = MixtureNormalHead(num_components=2)
    # Weights softmax([0, -200]); the target sits on the second component, whose
    # weight exp(-200) ~ 1e-87 underflows in float32, while the first one is 100
    # scales away. Evaluated in log space the mixture is still exact.
    params = np.array([[0.0, -200.0, 100.0, 0.0, 0.0, 0.0]], "float32")
    value = head.log_prob(params, np.zeros((1, 1), "float32")).numpy()[0]
    log_w = np.array([0.0, -200.0]) - special.logsumexp([0.0, -200.0])
    expected = special.logsumexp(log_w + stats.norm.logpdf(0.0, [100.0, 0.0], softplus(0.0)))
    assert np.isfinite(value)
    np.testing.assert_allclose(value, expected, rtol=1e-5)


ALL_HEADS = [
    lambda: NormalHead(event_size=2),
    lambda: StudentTHead(),
    lambda: MultivariateNormalHead(event_size=2),
    lambda: PoissonHead(),
    lambda: BernoulliHead(event_size=2),
    lambda: CategoricalHead(num_classes=3),
    lambda: MixtureNormalHead(num_components=2, event_size=2),
]


@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")
@pytest.mark.parametrize("make_head", ALL_HEADS, ids=lambda f: type(f()).__name__)
def test_save_load_round_trip_gives_identical_outputs(make_head, tmp_path, rng):
    head = make_head()
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(8, "tanh"), head])
    model.compile("adam", loss=NegativeLogLikelihood(head))
    x = rng.normal(size=(16, 3)).astype("float32")
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)  # safe_mode=True is the default
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    loaded_head = probnn.heads.find_head(loaded)
    assert type(loaded_head) is type(head)
    assert loaded_head.get_config() == head.get_config()
    assert isinstance(loaded.loss, NegativeLogLikelihood)
    y = head.distribution(model(x)).sample(seed=1)
    np.testing.assert_array_equal(loaded.loss(y, loaded(x)), model.loss(y, model(x)))


def test_heads_in_functional_and_subclassed_models(rng):
    x = rng.normal(size=(10, 4)).astype("float32")

    inputs = keras.Input((4,))
    head = MixtureNormalHead(num_components=2)
    functional = keras.Model(inputs, head(keras.layers.Dense(8)(inputs)))
    assert functional.predict(x, verbose=0).shape == (10, 6)
    assert probnn.heads.find_head(functional) is head

    class Regressor(keras.Model):
        def __init__(self):
            super().__init__()
            self.hidden = keras.layers.Dense(8, "relu")
            self.head = NormalHead()

        def call(self, inputs):
            return self.head(self.hidden(inputs))

    subclassed = Regressor()
    assert subclassed.predict(x, verbose=0).shape == (10, 2)
    assert probnn.heads.find_head(subclassed) is subclassed.head
    dist = probnn.predict_distribution(subclassed, x)
    assert dist.batch_shape.as_list() == [10]


def test_predict_distribution_batches_large_inputs(rng):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(4), StudentTHead()])
    x = rng.normal(size=(1001, 2)).astype("float32")
    small = probnn.predict_distribution(model, x, batch_size=64)
    whole = probnn.predict_distribution(model, x, batch_size=2048)
    assert small.batch_shape.as_list() == [1001]
    np.testing.assert_allclose(small.mean(), whole.mean(), rtol=1e-6)
    np.testing.assert_allclose(small.mean(), model(x)[:, :1], rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="batch_size"):
        probnn.predict_distribution(model, x, batch_size=0)


def test_model_fit_with_categorical_targets(rng):
    x = rng.normal(size=(256, 2)).astype("float32")
    y = (x[:, 0] > 0).astype("int64") + (x[:, 1] > 0)
    head = CategoricalHead(3)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(16, "relu"), head])
    model.compile(keras.optimizers.Adam(0.05), loss=NegativeLogLikelihood(head))
    history = model.fit(x, y, epochs=20, batch_size=64, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: NormalHead(event_size=0), "event_size must be an integer >= 1"),
        (lambda: NormalHead(event_size=1.5), "event_size"),
        (lambda: NormalHead(event_size=True), "event_size"),
        (lambda: NormalHead(min_scale=0.0), "min_scale must be a positive"),
        (lambda: StudentTHead(min_df_excess=-1.0), "min_df_excess"),
        (lambda: MultivariateNormalHead(event_size=-2), "MultivariateNormalHead: event_size"),
        (lambda: PoissonHead(event_size=0), "PoissonHead: event_size"),
        (lambda: CategoricalHead(num_classes=1), "num_classes must be an integer >= 2"),
        (lambda: MixtureNormalHead(num_components=0), "num_components"),
        (lambda: NegativeLogLikelihood(keras.layers.Dense(2)), "must be a probnn DistributionHead"),
    ],
)
def test_bad_configuration_is_rejected(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_target_shape_mismatch_is_rejected(rng):
    head = NormalHead(event_size=2)
    model = keras.Sequential([keras.Input((3,)), head])
    model.compile("adam", loss=NegativeLogLikelihood(head))
    x = rng.normal(size=(8, 3)).astype("float32")
    with pytest.raises(ValueError, match=r"NormalHead: targets must have shape batch \+ \(2,\)"):
        model.fit(x, np.zeros((8, 3), "float32"), verbose=0)
    with pytest.raises(ValueError, match="NormalHead: targets"):
        head.log_prob(np.zeros((8, 4), "float32"), np.zeros((8,), "float32"))
    with pytest.raises(ValueError, match=r"NormalHead.distribution: expected parameters"):
        head.distribution(np.zeros((8, 3), "float32"))


def test_head_rejects_inputs_without_feature_axis():
    with pytest.raises(ValueError, match="NormalHead: expected inputs of shape"):
        NormalHead()(np.zeros((4,), "float32"))


def test_find_head_needs_exactly_one_head():
    with pytest.raises(ValueError, match="found 0"):
        probnn.heads.find_head(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]))
    inputs = keras.Input((2,))
    two = keras.Model(inputs, [NormalHead()(inputs), PoissonHead()(inputs)])
    with pytest.raises(ValueError, match="found 2"):
        probnn.heads.find_head(two)


@pytest.mark.integration
def test_mixture_head_fits_a_bimodal_target(rng):
    """y = s (1 + x/2) + 0.15 eps with a random sign s: two branches a unimodal head cannot fit."""
    n = 4096
    x = rng.uniform(-1, 1, size=(n, 1)).astype("float32")
    sign = rng.choice([-1.0, 1.0], size=(n, 1))
    y = (sign * (1 + 0.5 * x) + 0.15 * rng.standard_normal((n, 1))).astype("float32")
    centre = 1 + 0.5 * x[:, 0]
    true_nll = -np.mean(
        np.log(0.5 * stats.norm.pdf(y[:, 0], centre, 0.15) + 0.5 * stats.norm.pdf(y[:, 0], -centre, 0.15))
    )
    head = MixtureNormalHead(num_components=2)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(32, "tanh"), head])
    model.compile(keras.optimizers.Adam(0.02), loss=NegativeLogLikelihood(head))
    model.fit(x, y, epochs=40, batch_size=256, verbose=0)
    nll = float(NegativeLogLikelihood(head)(y, model.predict(x, verbose=0)))
    # True NLL here is about 0.21 nats; the best single Normal, N(0, 1.1), gives
    # about 1.5. Within 0.1 nats of the truth means both modes and their widths
    # were found.
    assert nll < true_nll + 0.1, (nll, true_nll)
