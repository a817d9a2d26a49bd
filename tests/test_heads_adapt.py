"""Target scaling of the real-valued heads (`head.adapt(y)`), 1-D targets for the likelihood, probnn.fit's checks."""

import math
import warnings

import keras
import numpy as np
import pytest

import probnn

LOC, SCALE = 1000.0, 100.0


def data(n, seed):
    """y = 1000 + 100 ε, independent of x: the true conditional density is N(1000, 100²) everywhere."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 2)).astype("float32"), LOC + SCALE * rng.normal(size=n)


def model_with(seed=0):
    """An MLP with a NormalHead, the same initial weights for the same seed; returns (model, head)."""
    keras.utils.set_random_seed(seed)
    head = probnn.heads.NormalHead()  # its initializers draw their seeds when constructed
    return keras.Sequential([keras.Input((2,)), keras.layers.Dense(16, activation="relu"), head]), head


@pytest.mark.integration
def test_adapted_normal_head_learns_raw_targets_as_fast_as_standardised_ones(tmp_path):
    x, y = data(2000, seed=0)
    x_test, y_test = data(4000, seed=1)
    true_nll = -np.mean(-0.5 * ((y_test - LOC) / SCALE) ** 2 - math.log(SCALE * math.sqrt(2 * math.pi)))
    fit = dict(optimizer=keras.optimizers.Adam(1e-2), epochs=20, batch_size=200, verbose=0, seed=0)

    def test_nll(model, loc=0.0, scale=1.0):
        dist = probnn.predict_distribution(model, x_test)
        return float(probnn.metrics.nll(dist, (y_test - loc) / scale)) + math.log(scale)

    # Standardised by hand (what the user had to do): the reference.
    mean, std = y.mean(), y.std()
    standardised, _ = model_with()
    probnn.fit(standardised, x, (y - mean) / std, **fit)
    nll_standardised = test_nll(standardised, mean, std)

    # Adapted: raw targets in, original units out, the same epochs.
    adapted, head = model_with()
    head.adapt(y)
    probnn.fit(adapted, x, y, **{**fit, "optimizer": keras.optimizers.Adam(1e-2)})
    nll_adapted = test_nll(adapted)
    # Within 0.05 nats of the true density's NLL on the same 4000 test points (a fitted
    # Normal with 2 parameters' worth of error is ~1e-3 above it; 0.05 is the issue's bar).
    assert nll_standardised - true_nll < 0.05, (nll_standardised, true_nll)
    assert nll_adapted - true_nll < 0.05, (nll_adapted, true_nll)
    # Same initial weights, and adapt stores exactly the standardisation's mean and std: the
    # network's gradients are those of the standardised run, so the two agree up to float32
    # rounding (measured 1e-5; bound 1e-3).
    assert abs(nll_adapted - nll_standardised) < 1e-3

    # Save / load keeps the scaling: same weights, configuration and distribution.
    adapted.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    loaded_head = probnn.heads.find_head(loaded)
    assert loaded_head.adapted
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded_head.target_location), [mean], rtol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded_head.target_scale), [std], rtol=1e-6)
    a = probnn.predict_distribution(adapted, x_test[:50])
    b = probnn.predict_distribution(loaded, x_test[:50])
    np.testing.assert_array_equal(a.mean(), b.mean())
    np.testing.assert_array_equal(a.stddev(), b.stddev())

    # Not adapted, raw targets, the same epochs: far from the truth, and probnn.fit says why, once.
    raw, _ = model_with()
    with pytest.warns(UserWarning, match=r"not adapted to them; call head.adapt\(y_train\)"):
        probnn.fit(raw, x, y, **{**fit, "optimizer": keras.optimizers.Adam(1e-2)})
    assert test_nll(raw) - true_nll > 0.5
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        probnn.fit(raw, x, y, epochs=1, batch_size=200, verbose=0)  # the same head: no second warning
        probnn.fit(adapted, x, y, epochs=1, batch_size=200, verbose=0)  # adapted: none at all
    assert not [w for w in caught if "not adapted" in str(w.message)]


def test_adapt_maps_every_real_valued_head_to_the_targets_units():
    """Zero parameters give the standard-units distribution loc 0, scale softplus(0); adapt maps it."""
    rng = np.random.default_rng(0)
    y = np.column_stack([LOC + SCALE * rng.normal(size=500), -5.0 + 0.01 * rng.normal(size=500)])
    m, s = y.mean(axis=0), y.std(axis=0)
    base = math.log(2.0)  # softplus(0)
    for head in (
        probnn.heads.NormalHead(2),
        probnn.heads.StudentTHead(2),
        probnn.heads.MixtureNormalHead(3, 2),
        probnn.heads.MultivariateNormalHead(2),
    ):
        head.adapt(y)
        dist = head.distribution(np.zeros((1, head.params_size), "float32"))
        np.testing.assert_allclose(dist.mean()[0], m, rtol=1e-5)
        if isinstance(head, probnn.heads.StudentTHead):
            df = 2.0 + 1e-3 + base  # df = 2 + min_df_excess + softplus(0)
            expected = s * base * math.sqrt(df / (df - 2.0))
        else:
            expected = s * base
        np.testing.assert_allclose(dist.stddev()[0], expected, rtol=1e-4)
        assert type(head).from_config(head.get_config()).adapted  # the loss's copy keeps it
    rbf = probnn.heads.RBFMixtureHead(2)  # adapt(x) sets its prototypes; adapt_targets(y) the scaling
    rbf.adapt_targets(y[:, :1])
    assert rbf.adapted and rbf.event_size == 1
    with pytest.raises(
        ValueError, match="RealEventHead.adapt: target scaling is only for location-scale heads"
    ):
        probnn.heads.RealEventHead().adapt([1.0, 2.0])  # a head family that does not map its parameters
    with pytest.raises(ValueError, match=r"NormalHead.adapt: expected targets of shape \(n, 1\)"):
        probnn.heads.NormalHead().adapt(y)
    with pytest.raises(ValueError, match="NormalHead.adapt: targets must be finite"):
        probnn.heads.NormalHead().adapt([1.0, np.nan, 2.0])


@pytest.mark.integration
def test_likelihood_loss_takes_1d_targets_under_keras_and_probnn_fit():
    x, y = data(256, seed=2)
    z = (y - LOC) / SCALE
    results = {}
    for shape in ("1-D", "2-D"):
        model, head = model_with(seed=3)
        model.compile(keras.optimizers.Adam(1e-3), loss=probnn.losses.NegativeLogLikelihood(head))
        target = z if shape == "1-D" else z[:, None]
        history = model.fit(x, target, epochs=2, batch_size=64, shuffle=False, verbose=0)
        results[shape] = (
            history.history["loss"],
            model.evaluate(x, target, verbose=0),
            probnn.fit(model, x, target, epochs=1, batch_size=64, verbose=0, seed=0).history["loss"],
        )
    np.testing.assert_allclose(results["1-D"][0], results["2-D"][0], rtol=1e-6)
    np.testing.assert_allclose(results["1-D"][1], results["2-D"][1], rtol=1e-6)
    np.testing.assert_allclose(results["1-D"][2], results["2-D"][2], rtol=1e-6)
    # A 1-D target that does not match the batch is still refused, naming the head.
    head = probnn.heads.NormalHead()
    with pytest.raises(ValueError, match=r"NormalHead: targets must have shape batch \+ \(1,\)"):
        head.log_prob(np.zeros((4, 2), "float32"), np.zeros(3, "float32"))


def test_fit_on_a_model_without_a_head_is_one_line():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError) as info:
        probnn.fit(model, np.zeros((8, 2), "float32"), np.zeros(8), epochs=1, verbose=0)
    message = str(info.value)
    assert message.startswith("probnn.fit: loss=None is the negative log-likelihood") and "\n" not in message
    assert "has none: add one probnn.heads.DistributionHead" in message
    assert info.value.__cause__ is None and info.value.__suppress_context__  # no chained traceback
