"""`adapt` builds the layer (as keras.layers.Normalization.adapt does) and the adapted state stays.

Covers every layer with the shared `AdaptMixin`: RBF, Scaling, CenteringScaling
and the RBFMixtureHead. References are computed independently here: NumPy
mean/std (ddof=0) for the standardisation, scipy's `pdist` median for the
widths, the data rows themselves for the centres.
"""

import keras
import numpy as np
import pytest
from scipy.spatial.distance import cdist, pdist

from probnn.heads import RBFMixtureHead
from probnn.layers import RBF, CenteringScaling, Scaling


def as_np(t):
    return keras.ops.convert_to_numpy(t)


@pytest.fixture
def data(rng):
    # 300 rows <= max_samples (2000): the width's median is over all pairs, exactly scipy's.
    return rng.normal(loc=[3.0, -1.0, 0.5, 10.0], scale=[2.0, 0.5, 1.0, 4.0], size=(300, 4)).astype(
        np.float32
    )


def test_rbf_adapt_then_read_widths_and_centres(data):
    rbf = RBF(50)
    rbf.adapt(data, seed=0)  # no build, no call before reading
    assert rbf.built
    # float32 log-width -> exp: relative error a few eps32 (~1e-7); 1e-6 leaves margin, no more.
    np.testing.assert_allclose(as_np(rbf.widths), np.median(pdist(data.astype(np.float64))), rtol=1e-6)
    assert cdist(as_np(rbf.centers), data).min(axis=1).max() == 0.0  # "random": every centre is a data row
    assert rbf.count_params() == 50 * 4 + 2 * 50


@pytest.mark.parametrize("cls", [Scaling, CenteringScaling])
def test_scaling_adapt_then_read_scale_and_shift(cls, data):
    layer = cls()
    layer.adapt(data)
    assert layer.built
    x64 = data.astype(np.float64)
    mean, std = x64.mean(axis=0), x64.std(axis=0)
    # Stored in float32: relative rounding 6e-8; the float64 statistics agree to ~1e-15.
    np.testing.assert_allclose(as_np(layer.scale), 1.0 / std, rtol=1e-6)
    if cls is CenteringScaling:
        np.testing.assert_allclose(as_np(layer.shift), -mean / std, rtol=1e-6)
    else:
        assert not hasattr(layer, "shift")


FACTORIES = {
    "RBF": lambda **kw: RBF(20, **kw),
    "Scaling": Scaling,
    "CenteringScaling": CenteringScaling,
    "RBFMixtureHead": lambda **kw: RBFMixtureHead(5, **kw),
}


def _adapt(kind, data, name):
    layer = FACTORIES[kind](name=name)
    if kind in ("RBF", "RBFMixtureHead"):
        layer.adapt(data, seed=0)
    else:
        layer.adapt(data)
    return layer


KINDS = list(FACTORIES)


@pytest.mark.parametrize("kind", KINDS)
def test_adapted_state_survives_build_call_and_model(kind, data):
    layer = _adapt(kind, data, "adapted")
    adapted = [as_np(w).copy() for w in layer.weights]
    default = FACTORIES[kind]()
    default.build((None, 4))
    # The adapted values differ from a fresh layer's, so "unchanged" below is not vacuous
    # (the RBF centres start random_normal, the rest at constants).
    assert any(not np.allclose(a, as_np(b)) for a, b in zip(adapted, default.weights))

    layer.build((None, 4))  # explicit build after adapt: a no-op, not Keras's "already built" error
    layer.build((None, 7, 4))  # any rank >= 2 with the same feature size
    out = layer(data[:8])
    model = keras.Sequential([keras.Input((4,)), layer])
    np.testing.assert_array_equal(as_np(model(data[:8])), as_np(out))
    assert len(layer.weights) == len(adapted)
    for a, w in zip(adapted, layer.weights):
        np.testing.assert_array_equal(as_np(w), a)
    with pytest.raises(
        ValueError, match="'adapted': already built .* for 4 features, got input shape \\(None, 5\\)"
    ):
        layer.build((None, 5))


@pytest.mark.parametrize("kind", KINDS)
def test_adapted_state_survives_save_and_load(kind, data, tmp_path):
    layer = _adapt(kind, data, "adapted")
    model = keras.Sequential([keras.Input((4,)), layer])
    path = tmp_path / "adapted.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    for a, b in zip(layer.weights, loaded.get_layer("adapted").weights):
        assert a.name == b.name
        np.testing.assert_array_equal(as_np(b), as_np(a))
    np.testing.assert_array_equal(as_np(loaded(data)), as_np(model(data)))


@pytest.mark.parametrize("kind", KINDS)
def test_failed_adapt_leaves_the_layer_unbuilt(kind, data):
    # Checks run before the layer is built: a rejected adapt changes nothing.
    bad = data.copy()
    bad[5, 2] = np.nan
    fresh = FACTORIES[kind]()
    with pytest.raises(ValueError, match="NaN or infinite"):
        fresh.adapt(bad)
    assert not fresh.built
