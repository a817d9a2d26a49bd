"""RBFMixtureHead: normalised RBF gates, data-driven prototypes, save/load, training."""

import keras
import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import pdist

import probnn
from probnn.heads import RBFMixtureHead
from probnn.losses import NegativeLogLikelihood


def test_gates_are_normalised_gaussian_rbf_activations(rng):
    x = rng.normal(size=(6, 3))
    head = RBFMixtureHead(num_components=4, event_size=2, dtype="float64")
    head.build((None, 3))
    prototypes = rng.normal(size=(4, 3))
    widths = np.array([0.5, 1.0, 2.0, 3.0])
    head.prototypes.assign(prototypes)
    head.log_width.assign(np.log(widths))
    params = head(x).numpy()
    assert params.shape == (6, 4 * (1 + 2 * 2))

    sq = ((x[:, None, :] - prototypes[None]) ** 2).sum(-1)
    rbf = np.exp(-sq / widths**2)
    expected_weights = rbf / rbf.sum(-1, keepdims=True)
    weights = head.distribution(params).mixture_distribution.probs_parameter().numpy()
    # float64 throughout; the only difference is softmax vs explicit normalisation.
    np.testing.assert_allclose(weights, expected_weights, rtol=1e-10)

    # Means and scales are the affine projection, laid out like MixtureNormalHead.
    proj = x @ head.kernel.numpy() + head.bias.numpy()
    np.testing.assert_allclose(params[:, 4:], proj, rtol=1e-12)


def test_gates_stay_exact_far_from_every_prototype():
    head = RBFMixtureHead(num_components=2, width=0.1)
    head.build((None, 1))
    head.prototypes.assign(np.array([[0.0], [1.0]], "float32"))
    # 1e3 widths away from both: each activation underflows (exp(-1e8)), their
    # ratio exp(-(1e4² - (1e4-1)²)/0.01) does not need them.
    params = head(np.array([[1e3]], "float32"))
    weights = head.distribution(params).mixture_distribution.probs_parameter().numpy()
    assert np.all(np.isfinite(weights))
    np.testing.assert_allclose(weights[0], [0.0, 1.0], atol=1e-6)


@pytest.mark.parametrize("method", ["random", "kmeans++"])
def test_adapt_before_and_after_build_puts_prototypes_on_the_data(method, rng):
    x = rng.normal(size=(300, 2)).astype("float32")
    distances = pdist(x.astype(np.float64))
    for build_first in (False, True):
        head = RBFMixtureHead(num_components=5)
        if build_first:
            head.build((None, 2))
        head.adapt(x, method=method, seed=0)
        model = keras.Sequential([keras.Input((2,)), head])
        model(x[:1])
        prototypes = head.prototypes.numpy()
        nearest = np.min(np.linalg.norm(prototypes[:, None] - x[None], axis=-1), axis=1)
        # Prototypes are chosen among the data rows (float32 copies of them).
        np.testing.assert_allclose(nearest, 0.0, atol=1e-6)
        widths = head.widths.numpy()
        assert np.all(widths > 0) and np.allclose(widths, widths[0])
        # The width is a typical pairwise distance of the data: inside their range.
        assert distances.min() < widths[0] < distances.max()


def test_adapt_rejects_bad_data(rng):
    head = RBFMixtureHead(num_components=3)
    with pytest.raises(ValueError, match="RBFMixtureHead layer .*: adapt expects data of shape"):
        head.adapt(rng.normal(size=(10,)))
    with pytest.raises(ValueError, match="NaN or infinite"):
        head.adapt(np.full((10, 2), np.nan))
    with pytest.raises(ValueError, match="at least num_components=3 data points"):
        head.adapt(rng.normal(size=(2, 2)))
    head.build((None, 2))
    with pytest.raises(ValueError, match="expected data with 2 features, got 3"):
        head.adapt(rng.normal(size=(10, 3)))
    with pytest.raises(ValueError, match="width must be a positive"):
        RBFMixtureHead(num_components=2, width=0.0)


@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")
def test_save_load_round_trip(tmp_path, rng):
    x = rng.normal(size=(32, 2)).astype("float32")
    head = RBFMixtureHead(num_components=3, event_size=2)
    head.adapt(x, seed=1)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2), head])
    model.compile("adam", loss=NegativeLogLikelihood(head))
    path = tmp_path / "rbf_mixture.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    np.testing.assert_array_equal(probnn.heads.find_head(loaded).prototypes.numpy(), head.prototypes.numpy())


@pytest.mark.integration
def test_learns_a_regime_switching_density(rng):
    """y ~ N(-1, 0.1) for x < 0 and N(1 + x, 0.3) for x > 0: the gates must split at 0."""
    n = 4000
    x = rng.uniform(-1, 1, size=(n, 1)).astype("float32")
    left = x[:, 0] < 0
    loc = np.where(left, -1.0, 1.0 + x[:, 0])
    scale = np.where(left, 0.1, 0.3)
    y = (loc + scale * rng.standard_normal(n)).astype("float32")[:, None]
    true_nll = -np.mean(stats.norm.logpdf(y[:, 0], loc, scale))

    head = RBFMixtureHead(num_components=6)
    head.adapt(x, seed=0)
    model = keras.Sequential([keras.Input((1,)), head])
    model.compile(keras.optimizers.Adam(0.03), loss=NegativeLogLikelihood(head))
    model.fit(x, y, epochs=40, batch_size=200, verbose=0)
    nll = float(NegativeLogLikelihood(head)(y, model.predict(x, verbose=0)))
    # True NLL is about -0.21; a single Normal fit to all y gives about 1.3.
    # 0.15 nats of slack covers the soft RBF switch near x = 0.
    assert nll < true_nll + 0.15, (nll, true_nll)
