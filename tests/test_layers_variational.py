"""Variational layers and MC dropout: KL against TFP, Flipout's variance, training, save/load."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import probnn
from probnn.layers import (
    Conv1DFlipout,
    Conv1DReparameterization,
    Conv2DFlipout,
    Conv2DReparameterization,
    DenseFlipout,
    DenseReparameterization,
    MCDropout,
    NormalPrior,
    ScaleMixturePrior,
)

tfd = tfp.distributions

DENSE = [DenseReparameterization, DenseFlipout]
CONV = [
    (Conv1DReparameterization, (9, 3)),
    (Conv1DFlipout, (9, 3)),
    (Conv2DReparameterization, (6, 6, 2)),
    (Conv2DFlipout, (6, 6, 2)),
]


def _randomise_posterior(layer, rng):
    """Move the posterior away from its initial state, so the KL has every term."""
    for v in layer.trainable_variables:
        if "raw_scale" in v.path:
            v.assign(rng.normal(-1.0, 0.5, size=v.shape).astype("float32"))
        else:
            v.assign(rng.normal(0.0, 0.7, size=v.shape).astype("float32"))


@pytest.mark.parametrize("cls", DENSE + [c for c, _ in CONV])
def test_kl_equals_tfp_closed_form_for_normal_prior(cls, rng):
    shape = {DenseReparameterization: (4, 5), DenseFlipout: (4, 5)}.get(cls)
    if shape is None:
        shape = dict(CONV)[cls]
        shape = (2,) + shape
        layer = cls(3, 2, prior=NormalPrior(0.8), kl_weight=0.01, seed=1)
    else:
        layer = cls(6, prior=NormalPrior(0.8), kl_weight=0.01, seed=1)
    layer.build(shape)
    _randomise_posterior(layer, rng)
    layer(np.ones(shape, "float32"))
    expected = 0.0
    for name in ("kernel", "bias"):
        loc = getattr(layer, f"{name}_loc").numpy().astype(np.float64)
        scale = np.log1p(np.exp(getattr(layer, f"{name}_raw_scale").numpy().astype(np.float64)))
        expected += float(
            tf.reduce_sum(
                tfd.kl_divergence(tfd.Normal(loc, scale), tfd.Normal(np.float64(0.0), np.float64(0.8)))
            )
        )
    (loss,) = layer.losses
    # float32 sum of ~20-70 terms of O(1): relative error ~1e-7; the brief asks 1e-6.
    np.testing.assert_allclose(float(loss) / 0.01, expected, rtol=1e-6)
    np.testing.assert_allclose(float(layer.kl_divergence()), expected, rtol=1e-6)


def test_scale_mixture_kl_is_unbiased_monte_carlo(rng):
    """Mean of the one-sample estimates matches E_q[log q - log p] computed by quadrature."""
    prior = ScaleMixturePrior(scale1=1.0, scale2=0.05, weight=0.3)
    # 2000 kernel entries with the same posterior: each call's KL is a sum of
    # 2000 independent one-sample estimates.
    layer = DenseReparameterization(2000, use_bias=False, prior=prior, seed=2)
    layer.build((None, 1))
    layer.kernel_loc.assign(np.full((1, 2000), 0.3, "float32"))
    layer.kernel_raw_scale.assign(np.full((1, 2000), _inv_softplus(0.2), "float32"))
    draws = np.array([float(layer.kl_divergence()) for _ in range(20)]) / 2000
    w = np.linspace(0.3 - 10 * 0.2, 0.3 + 10 * 0.2, 20001)
    q = np.exp(-0.5 * ((w - 0.3) / 0.2) ** 2) / (0.2 * math.sqrt(2 * math.pi))
    p = 0.3 * np.exp(-0.5 * w**2) / math.sqrt(2 * math.pi) + 0.7 * np.exp(-0.5 * (w / 0.05) ** 2) / (
        0.05 * math.sqrt(2 * math.pi)
    )
    exact = np.trapezoid(q * (np.log(q) - np.log(p)), w)
    # Monte Carlo standard error of the mean of 40,000 one-sample estimates; 4 of them.
    se = draws.std() / math.sqrt(len(draws))
    assert abs(draws.mean() - exact) < 4 * se, (draws.mean(), exact, se)


def _inv_softplus(v):
    return v + math.log(-math.expm1(-v))


def test_flipout_gradient_variance_below_reparameterisation(rng):
    """Same posterior, same batch: variance over draws of the gradient wrt the kernel means."""
    x = rng.normal(size=(64, 8)).astype("float32")
    y = rng.normal(size=(64, 4)).astype("float32")
    variances = {}
    for cls in DENSE:
        layer = cls(4, posterior_scale=0.3, seed=5)
        layer.build((None, 8))
        layer.kernel_loc.assign(rng.normal(0, 0.3, size=(8, 4)).astype("float32"))

        @tf.function
        def grad(layer=layer):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean((layer(x) - y) ** 2)
            return tape.gradient(loss, layer.kernel_loc)

        grads = np.stack([grad().numpy() for _ in range(300)])
        variances[cls.__name__] = grads.var(axis=0).mean()
        rng = np.random.default_rng(20261124)  # same kernel means for both layers
    ratio = variances["DenseFlipout"] / variances["DenseReparameterization"]
    print(f"gradient variance ratio Flipout / reparameterisation: {ratio:.3f}")
    # Flipout decorrelates the 64 examples' perturbations: the variance falls by a
    # large factor (about 1/10 here); 0.5 leaves room for the Monte Carlo noise
    # of 300 draws.
    assert ratio < 0.5


@pytest.mark.integration
def test_trains_with_keras_fit_and_probnn_fit_under_xla(rng):
    x = rng.uniform(-1, 1, size=(256, 1)).astype("float32")
    y = (np.sin(3 * x) + 0.1 * rng.normal(size=x.shape)).astype("float32")

    def build():
        return keras.Sequential(
            [
                keras.Input((1,)),
                DenseReparameterization(32, activation="tanh", kl_weight=1 / len(x), seed=1),
                DenseFlipout(2, kl_weight=1 / len(x), seed=2),
                probnn.heads.NormalHead(),
            ]
        )

    model = build()
    model.compile(
        optimizer=keras.optimizers.Adam(0.03),
        loss=probnn.losses.NegativeLogLikelihood(probnn.heads.find_head(model)),
        jit_compile=True,
    )
    loss = model.fit(x, y, epochs=15, batch_size=64, verbose=0).history["loss"]
    assert loss[-1] < loss[0] - 0.3

    model = build()
    history = probnn.fit(
        model,
        x,
        y,
        epochs=15,
        batch_size=64,
        optimizer=keras.optimizers.Adam(0.03),
        jit_compile=True,
        verbose=0,
    )
    loss = history.history["loss"]
    assert loss[-1] < loss[0] - 0.3
    # The objective includes the KL term: loss - nll is the weighted KL, positive.
    assert history.history["loss"][-1] > history.history["nll"][-1]


def _stochastic_model(rng):
    inputs = keras.Input((4,))
    h = DenseReparameterization(8, activation="relu", seed=1, prior="scale_mixture")(inputs)
    h = DenseFlipout(8, activation="relu", seed=2, kl_weight=0.1)(h)
    h = MCDropout(0.2, seed=3)(h)
    h = keras.layers.Reshape((8, 1))(h)
    h = Conv1DFlipout(2, 3, seed=4)(h)
    h = Conv1DReparameterization(2, 3, seed=5, prior=NormalPrior(0.5))(h)
    h = keras.layers.Reshape((4, 2, 1))(h)
    h = Conv2DFlipout(2, (2, 1), seed=6)(h)
    h = Conv2DReparameterization(2, (2, 1), seed=7, padding="same")(h)
    h = keras.layers.Flatten()(h)
    outputs = probnn.heads.NormalHead()(h)
    return keras.Model(inputs, outputs)


def test_save_load_every_layer_identical_outputs(rng, tmp_path):
    model = _stochastic_model(rng)
    x = rng.normal(size=(5, 4)).astype("float32")
    model(x)  # advance the seed generators: their state is saved with the model
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)  # safe mode
    for _ in range(2):  # same states, same draws, call after call
        np.testing.assert_array_equal(loaded(x), model(x))
    for a, b in zip(model.layers, loaded.layers):
        assert a.get_config() == b.get_config()


def test_mc_dropout_active_at_prediction_and_serializable(rng):
    layer = MCDropout(0.3, seed=0)
    x = np.ones((2000, 10), "float32")
    out = np.asarray(layer(x, training=False))
    # Fraction dropped: binomial with n=20000, p=0.3; 5 standard errors = 0.016.
    assert abs((out == 0).mean() - 0.3) < 0.016
    np.testing.assert_allclose(out[out != 0], 1 / 0.7, rtol=1e-6)
    clone = MCDropout.from_config(layer.get_config())
    assert clone.rate == 0.3 and clone.seed == 0
    np.testing.assert_array_equal(MCDropout(0.0)(x), x)


def test_draws_are_keras_random_outside_xla_and_threefry_inside(rng):
    """The stochastic layers draw as `keras.random` does, from the same seeds, except in a program
    XLA compiles, where TF's default generator made an MC-dropout epoch 10x slower: there they
    use ThreeFry. Checked draw by draw against TF's own ops on the same seed, and the XLA masks
    and signs for their distribution (n = 40,000 draws; bounds 5 binomial standard errors)."""
    x = np.ones((4000, 10), "float32")

    def seed_of(layer):  # the seed the next draw uses, as Keras converts the generator's state
        return tf.cast(tf.math.floormod(layer.seed_generator.state + 0, tf.int32.max - 1), tf.int32)

    layer = MCDropout(0.3, seed=4)
    reference = keras.random.dropout(x, 0.3, seed=keras.random.SeedGenerator(4))
    np.testing.assert_array_equal(layer(x), reference)  # eager: keras.random exactly

    layer = MCDropout(0.3, seed=4)
    seed = seed_of(layer)
    compiled = tf.function(lambda t: layer(t), jit_compile=True)(x)
    threefry = tf.function(
        lambda t, s: tf.nn.experimental.stateless_dropout(t, 0.3, s, rng_alg="threefry"), jit_compile=True
    )(x, seed)
    np.testing.assert_array_equal(compiled, threefry)
    dropped = float(np.mean(np.asarray(compiled) == 0))
    assert abs(dropped - 0.3) < 5 * math.sqrt(0.3 * 0.7 / x.size), dropped

    flipout = DenseFlipout(10, seed=2)
    flipout.build((None, 10))
    signs = tf.function(lambda: flipout._signs(tf.constant(x), 10), jit_compile=True)()
    values, counts = np.unique(np.asarray(signs), return_counts=True)
    assert list(values) == [-1, 1] and abs(counts[1] / x.size - 0.5) < 5 * math.sqrt(0.25 / x.size), counts
    noise = np.asarray(tf.function(lambda: flipout._normal((200, 200), tf.float32), jit_compile=True)())
    # 40,000 standard-normal draws: mean within 5 / 200, variance within 5 * sqrt(2 / 40,000).
    assert abs(noise.mean()) < 5 / 200 and abs(noise.var() - 1) < 5 * math.sqrt(2 / noise.size)


def test_bad_arguments_name_the_layer():
    with pytest.raises(ValueError, match="MCDropout: rate"):
        MCDropout(1.0)
    with pytest.raises(ValueError, match="DenseFlipout: units"):
        DenseFlipout(0)
    with pytest.raises(ValueError, match="DenseReparameterization: kl_weight"):
        DenseReparameterization(2, kl_weight=-1)
    with pytest.raises(ValueError, match="DenseReparameterization: prior"):
        DenseReparameterization(2, prior="laplace")
    with pytest.raises(ValueError, match="Conv2DFlipout: kernel_size"):
        Conv2DFlipout(2, (3, 3, 3))
    with pytest.raises(ValueError, match="Conv1DFlipout: padding"):
        Conv1DFlipout(2, 3, padding="causal")
    with pytest.raises(ValueError, match="Conv2DFlipout: expected inputs of rank 4"):
        Conv2DFlipout(2, 3)(np.ones((2, 5, 1), "float32"))
    with pytest.raises(ValueError, match="ScaleMixturePrior: weight"):
        ScaleMixturePrior(weight=1.0)
    with pytest.raises(ValueError, match="NormalPrior: scale"):
        NormalPrior(0)
