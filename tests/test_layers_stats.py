"""Statistics layers: values against scipy, shapes, training inside compiled models,
gradient through the p-value, and save/load round trips.

Value tolerance: the layers compute in Keras's float32, compared with scipy's
float64 on the same float32 data, rtol 1e-5 (as the float32 op tests; see
stats_helpers; skewness and kurtosis with the absolute floor of
stats_helpers.shape_statistic_atol). p-values are checked at the layer's own t statistic, for the
reason given in stats_helpers.assert_pvalue.
"""

import keras
import numpy as np
import pytest
import scipy.stats
import tensorflow as tf
from stats_helpers import assert_close, assert_pvalue, shape_statistic_atol, t_pvalue

import probnn
from probnn.layers import GaussianFit, Moments, TTest


@pytest.fixture
def features(rng):
    return (rng.normal(size=(16, 7)) * rng.uniform(0.5, 2.0, size=(16, 1))).astype(np.float32)


def test_layer_values_match_scipy(features):
    x = features.astype(np.float64)
    for layer, ddof, bias, fisher in [
        (Moments(), 0, True, True),
        (Moments(ddof=1, bias=False, fisher=False), 1, False, False),
    ]:
        mean, var, skewness, kurt = np.moveaxis(layer(features).numpy(), -1, 0)
        assert_close((mean, var), (np.mean(x, 1), np.var(x, 1, ddof=ddof)), tf.float32, "Moments")
        assert_close(
            skewness,
            scipy.stats.skew(x, 1, bias=bias),
            tf.float32,
            "Moments skewness",
            shape_statistic_atol(x, 1, 3, bias, tf.float32),
        )
        assert_close(
            kurt,
            scipy.stats.kurtosis(x, 1, fisher=fisher, bias=bias),
            tf.float32,
            "Moments kurtosis",
            shape_statistic_atol(x, 1, 4, bias, tf.float32),
        )

    fit = GaussianFit()(features).numpy()
    assert_close((fit[:, 0], fit[:, 1]), (np.mean(x, 1), np.std(x, 1)), tf.float32, "GaussianFit")

    for equal_var in (True, False):
        for alternative in ("two-sided", "greater"):
            out = TTest(3, equal_var=equal_var, return_pvalue=True, alternative=alternative)(features)
            expected = scipy.stats.ttest_ind(
                x[:, :3], x[:, 3:], axis=1, equal_var=equal_var, alternative=alternative
            )
            t = out[:, 0].numpy()
            assert_close(t, expected.statistic, tf.float32, "TTest t")
            df = probnn.stats.ttest_ind(x[:, :3], x[:, 3:], axis=1, equal_var=equal_var).df
            assert_pvalue(
                out[:, 1],
                expected.pvalue,
                tf.float32,
                lambda t=t, df=df, alternative=alternative: t_pvalue(t, df, alternative),
            )
    assert TTest(3)(features).shape == (16, 1)


def test_compute_output_shape_matches_call():
    x = tf.zeros((2, 3, 6)) + tf.range(6, dtype=tf.float32)
    for layer, k in [(Moments(), 4), (GaussianFit(), 2), (TTest(2), 1), (TTest(2, return_pvalue=True), 2)]:
        assert layer.compute_output_shape((None, 3, 6)) == (None, 3, k)
        assert tuple(layer(x).shape) == (2, 3, k)
        symbolic = layer(keras.Input((3, 6)))
        assert tuple(symbolic.shape) == (None, 3, k)


def test_ttest_group_size_is_validated():
    with pytest.raises(ValueError, match="TTest: group_size must be a positive integer"):
        TTest(0)
    with pytest.raises(ValueError, match="TTest: with group_size=4 and 5 features"):
        TTest(4, equal_var=False)(tf.zeros((1, 5)))
    with pytest.raises(ValueError, match="TTest: with group_size=5 and 5 features"):
        TTest(5)(tf.zeros((1, 5)))


def _model(input_dim=5):
    """Features -> Dense(8) -> [t, p of units 0-3 vs 4-7 | Gaussian fit | moments] -> Dense(1)."""
    inputs = keras.Input((input_dim,))
    hidden = keras.layers.Dense(8, activation="tanh")(inputs)
    summary = keras.layers.Concatenate()(
        [
            TTest(4, return_pvalue=True)(hidden),
            GaussianFit()(hidden),
            Moments()(hidden),
        ]
    )
    return keras.Model(inputs, keras.layers.Dense(1)(summary))


def _data(rng, n=64):
    x = rng.normal(size=(n, 5)).astype(np.float32)
    y = (x[:, :1] * 2.0 - x[:, 1:2]).astype(np.float32)
    return x, y


def _mse(model, x, y):
    return float(np.mean((model(x).numpy() - y) ** 2))


@pytest.mark.integration
def test_layers_train_in_compiled_model_fit(rng):
    x, y = _data(rng)
    model = _model()
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse", jit_compile=True)
    before = _mse(model, x, y)  # eagerly: evaluate() would compile a second XLA function
    history = model.fit(x, y, epochs=5, batch_size=16, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert _mse(model, x, y) < before  # trained end to end through the layers

    # Sequential, in a (non-XLA) tf.function graph: XLA was covered above and compiles slowly.
    sequential = keras.Sequential(
        [keras.Input((5,)), keras.layers.Dense(6), TTest(3, return_pvalue=True), keras.layers.Dense(1)]
    )
    sequential.compile(optimizer="adam", loss="mse", jit_compile=False)
    history = sequential.fit(x, y, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))


def test_gradient_flows_through_the_pvalue(rng):
    x = tf.constant(rng.normal(size=(8, 5)), tf.float32)
    dense = keras.layers.Dense(6)
    ttest = TTest(3, return_pvalue=True)
    with tf.GradientTape() as tape:
        p = ttest(dense(x))[:, 1]
        loss = tf.reduce_mean(p)
    kernel_grad = tape.gradient(loss, dense.kernel)
    assert kernel_grad is not None
    assert np.all(np.isfinite(kernel_grad.numpy()))
    assert float(tf.reduce_max(tf.abs(kernel_grad))) > 1e-4
    # One small gradient step lowers the mean p-value: the gradient is a real descent direction.
    dense.kernel.assign_sub(0.01 * kernel_grad / tf.norm(kernel_grad))
    assert float(tf.reduce_mean(ttest(dense(x))[:, 1])) < float(loss)


def test_save_and_load_round_trip(tmp_path, rng):
    x, _ = _data(rng, n=8)
    model = _model()
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)  # safe_mode=True (default)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    for name, cls in [("t_test", TTest), ("gaussian_fit", GaussianFit), ("moments", Moments)]:
        original = next(layer for layer in model.layers if isinstance(layer, cls))
        restored = next(layer for layer in loaded.layers if isinstance(layer, cls))
        assert restored.get_config() == original.get_config(), name


@pytest.mark.integration
def test_layers_train_with_probnn_fit(rng):
    """The same model through probnn's own XLA training loop (jit_compile=True: no fallback)."""
    x, y = _data(rng)
    model = _model()
    before = _mse(model, x, y)
    probnn.fit(
        model,
        x,
        y,
        loss="mse",
        optimizer=keras.optimizers.Adam(0.01),
        epochs=5,
        batch_size=16,
        jit_compile=True,
        verbose=0,
        seed=0,
    )
    after = _mse(model, x, y)
    assert np.isfinite(after) and after < before  # trained end to end through the layers
