import doctest

import keras
import numpy as np
import pytest

import probnn.layers.scaling
from probnn.layers import CenteringScaling, Scaling


def as_np(t):
    return keras.ops.convert_to_numpy(t)


def test_parameter_counts():
    s, cs = Scaling(), CenteringScaling()
    s.build((None, 10))
    cs.build((None, 10))
    assert s.count_params() == 10
    assert cs.count_params() == 20


@pytest.mark.parametrize("cls", [Scaling, CenteringScaling])
def test_starts_as_identity(cls, rng):
    x = rng.normal(size=(8, 4)).astype(np.float32)
    np.testing.assert_array_equal(as_np(cls()(x)), x)


def test_adapt_standardises(rng):
    x = rng.normal(loc=[5.0, -2.0, 0.0], scale=[3.0, 0.1, 1.0], size=(5000, 3))
    x[:, 2] = 7.0  # a constant feature: kept at scale 1, not divided by zero
    cs = CenteringScaling()
    cs.adapt(x)
    z = as_np(cs(x)).astype(np.float64)
    # float32 outputs of O(1): mean/std agree with exact standardisation to ~1e-6.
    np.testing.assert_allclose(z[:, :2].mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(z[:, :2].std(0), 1.0, rtol=1e-5)
    np.testing.assert_allclose(as_np(cs.scale)[2], 1.0)
    np.testing.assert_allclose(z[:, 2], 0.0, atol=1e-5)  # centred, not scaled

    s = Scaling()
    s.adapt(x)
    z = as_np(s(x)).astype(np.float64)
    np.testing.assert_allclose(z[:, :2].std(0), 1.0, rtol=1e-5)
    np.testing.assert_allclose(z[:, :2].mean(0), x[:, :2].mean(0) / x[:, :2].std(0), rtol=1e-5)
    np.testing.assert_allclose(z[:, 2], 7.0, rtol=1e-6)


@pytest.mark.parametrize("cls", [Scaling, CenteringScaling])
def test_adapt_before_build_equals_after_build(cls, rng):
    x = rng.normal(2.0, 3.0, size=(200, 5))
    early = cls()
    early.adapt(x)
    late = cls()
    late.build((None, 5))
    late.adapt(x)
    np.testing.assert_array_equal(as_np(early(x)), as_np(late(x)))
    assert not np.allclose(as_np(early.scale), 1.0)


@pytest.mark.parametrize("cls", [Scaling, CenteringScaling])
def test_usable_inside_a_model_on_rank3_inputs_and_survives_save_load(cls, tmp_path, rng):
    x = rng.normal(1.0, 2.0, size=(32, 7, 4)).astype(np.float32)
    layer = cls(name="scaler")
    layer.adapt(x)  # flattens the leading axes: statistics per feature
    inputs = keras.Input((7, 4))
    h = keras.layers.Dense(4)(inputs)
    h = layer(h)
    outputs = cls(name="last")(keras.layers.Dense(3)(h))
    model = keras.Model(inputs, outputs)
    assert model.output_shape == (None, 7, 3)
    model.compile("adam", "mse")
    model.fit(x, x[..., :3], epochs=1, verbose=0)
    path = tmp_path / "scaling.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(as_np(model(x)), as_np(loaded(x)))
    assert type(loaded.get_layer("scaler")) is cls
    assert loaded.get_layer("scaler").get_config() == layer.get_config()


def test_validation_errors(rng):
    with pytest.raises(ValueError, match="Scaling layer 'sc'.*rank >= 2"):
        Scaling(name="sc").build((4,))
    layer = CenteringScaling(name="cs")
    layer.build((None, 3))
    with pytest.raises(ValueError, match="'cs': expected data with 3 features, got 2"):
        layer.adapt(np.ones((5, 2)))
    x = rng.normal(size=(5, 3))
    x[0, 0] = np.nan
    with pytest.raises(ValueError, match="CenteringScaling layer .*NaN"):
        CenteringScaling().adapt(x)
    with pytest.raises(ValueError, match="epsilon must be positive"):
        Scaling(epsilon=0.0)


def test_docstring_examples():
    result = doctest.testmod(probnn.layers.scaling, extraglobs={"np": np})
    assert result.attempted > 0 and result.failed == 0
