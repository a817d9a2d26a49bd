"""`probnn.fit(validation_samples=K)`: the validation NLL of the mixture of K stochastic passes.

References: `probnn.predict_distribution(model, x, num_samples=K, seed=s)` (a
separate program: `predict_distribution`'s own sampler, not the fit's compiled
validation loop) and, per member of a stack, numpy's `logsumexp` over the K
passes' component log densities. Tolerance: both sides compute the network and
the log densities in float32 (the fit's sums over rows in float64); different
programs (XLA in fit, plain graph in predict_distribution) round differently at
~1e-7 relative per row, so the means over rows agree to rtol 1e-5 (2e-5 where
the NLL is a difference of large per-pass values). A wrong seed, a wrong pass
or member order, or the mean of per-pass NLLs instead of the mixture's changes
them in the first or second digit.

The fits run with `jit_compile=False`: XLA implements the stateless random ops
with its own bit generator, so from the same seed states an XLA-compiled
validation loop draws other (equally distributed) dropout masks and Flipout
perturbations than the plain graph of `predict_distribution`.
"""

import keras
import numpy as np
import pytest
from scipy.special import logsumexp

import probnn

K = 5


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(64, 3)).astype("float32")
    y = (x[:, :1] + 0.3 * rng.normal(size=(64, 1))).astype("float32")
    return x, y, x[:37], y[:37]


def _mc_dropout():
    return keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(8, activation="relu"),
            probnn.layers.MCDropout(0.3),
            probnn.heads.NormalHead(),
        ]
    )


def _flipout():
    return keras.Sequential(
        [
            keras.Input((3,)),
            probnn.layers.DenseFlipout(8, activation="relu", kl_weight=1 / 64),
            probnn.heads.NormalHead(),
        ]
    )


def _mixture_nll(model, xv, yv, seed, batch_size=1024):
    dist = probnn.predict_distribution(model, xv, num_samples=K, seed=seed, batch_size=batch_size)
    return -float(np.mean(dist.log_prob(yv).numpy()))


def test_mc_dropout_validation_nll_is_the_k_pass_mixture():
    x, y, xv, yv = _data()
    keras.utils.set_random_seed(0)
    model = _mc_dropout()
    xv, yv = xv[:32], yv[:32]
    history = probnn.fit(
        model,
        x,
        y,
        validation_data=(xv, yv),
        validation_samples=K,
        # Two batches of 16 rows: each draws its passes' noise from the same K
        # seed states, as predict_distribution does for chunks of batch_size rows.
        validation_batch_size=16,
        epochs=2,
        batch_size=16,
        verbose=0,
        seed=3,
        jit_compile=False,
    )
    assert set(history.history) == {"loss", "nll", "val_loss", "val_nll"}
    expected = _mixture_nll(model, xv, yv, seed=3, batch_size=16)
    np.testing.assert_allclose(history.history["val_nll"][-1], expected, rtol=1e-5)
    np.testing.assert_allclose(history.history["val_loss"][-1], expected, rtol=1e-5)
    # Not the one-pass NLL, nor another seed's mixture.
    assert abs(_mixture_nll(model, xv, yv, seed=4, batch_size=16) - expected) > 1e-3 * abs(expected)


def test_flipout_validation_nll_and_kl():
    x, y, xv, yv = _data(1)
    keras.utils.set_random_seed(1)
    model = _flipout()
    history = probnn.fit(
        model,
        x,
        y,
        validation_data=(xv, yv),
        validation_samples=K,
        epochs=1,
        batch_size=16,
        verbose=0,
        seed=7,
        jit_compile=False,
    )
    np.testing.assert_allclose(history.history["val_nll"][-1], _mixture_nll(model, xv, yv, seed=7), rtol=2e-5)
    # val_loss adds the KL term (closed form for the default Normal prior: the same in every pass).
    kl = float(model.layers[0].kl_divergence()) / 64
    np.testing.assert_allclose(
        history.history["val_loss"][-1] - history.history["val_nll"][-1], kl, rtol=1e-4
    )


@pytest.mark.integration
def test_stack_validation_nll_per_member():
    x, y, xv, yv = _data(2)
    keras.utils.set_random_seed(2)
    ensemble = probnn.Ensemble(_mc_dropout, members=2)
    history = probnn.fit(
        ensemble,
        x,
        y,
        validation_data=(xv, yv),
        validation_samples=K,
        epochs=1,
        batch_size=16,
        verbose=0,
        seed=(5, 6),  # one seed per member, as GridSearch passes them
        jit_compile=False,
    )
    per_member = ensemble.probnn_member_logs["val_nll"]
    from probnn.training.fit import _validation_seed

    dist = probnn.predict_distribution(ensemble, xv, num_samples=K, seed=_validation_seed((5, 6)))
    # Components: pass k of member m is component k * M + m.
    log_p = dist.components_distribution.log_prob(yv[:, None, :]).numpy().reshape(len(yv), K, 2)
    expected = -np.mean(logsumexp(log_p, axis=1) - np.log(K), axis=0)
    np.testing.assert_allclose(per_member, expected, rtol=1e-5)
    np.testing.assert_allclose(history.history["val_nll"][-1], np.mean(expected), rtol=1e-5)
    assert abs(expected[0] - expected[1]) > 1e-3  # the two members really differ


@pytest.mark.parametrize(
    ("samples", "build", "kwargs", "message"),
    [
        (0, _mc_dropout, {}, "validation_samples must be a positive integer"),
        (2.0, _mc_dropout, {}, "validation_samples must be a positive integer"),
        (True, _mc_dropout, {}, "validation_samples must be a positive integer"),
        (
            3,
            lambda: keras.Sequential([keras.Input((3,)), probnn.heads.NormalHead()]),
            {},
            "needs a stochastic model",
        ),
        (3, _mc_dropout, {"validation_data": None}, "validation_samples needs validation_data"),
        (3, _mc_dropout, {"loss": "mse"}, "needs the default loss"),
    ],
)
def test_validation_samples_errors(samples, build, kwargs, message):
    x, y, xv, yv = _data()
    model = build()
    weights = [w.copy() for w in model.get_weights()]
    arguments = {"validation_data": (xv, yv), "epochs": 1, "verbose": 0, **kwargs}
    with pytest.raises(ValueError, match=message):
        probnn.fit(model, x, y, validation_samples=samples, **arguments)
    for before, after in zip(weights, model.get_weights()):  # raised before any training
        np.testing.assert_array_equal(before, after)


def test_grid_search_passes_validation_samples_to_fit():
    x, y, xv, yv = _data()
    deterministic = probnn.GridSearch(
        lambda: keras.Sequential([keras.Input((3,)), probnn.heads.NormalHead()]), {"learning_rate": [1e-3]}
    )
    with pytest.raises(ValueError, match="needs a stochastic model"):
        deterministic.fit(x, y, validation_data=(xv, yv), epochs=1, validation_samples=3)
