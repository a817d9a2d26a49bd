"""Epistemic variance grows where there is no data: a 1-D regression with a gap.

Data: x in [-3.5, -1.5] and [1.5, 3.5], y = sin(x) + N(0, 0.1^2). Probes:
-5.5 (outside), -2.5 (inside), 0 (the gap's centre), 2.5 (inside), 5.5
(outside). The epistemic variance (`decompose_uncertainty`) at the gap and
outside is compared with the mean of the two inside probes. Short trainings
(a few seconds each); benchmarks/epistemic_gap.py runs the long version over
several seeds and records the figures point by point.
"""

import keras
import numpy as np
import pytest

import probnn
from probnn.layers import DenseFlipout, MCDropout

PROBES = np.array([[-5.5], [-2.5], [0.0], [2.5], [5.5]], "float32")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-3.5, -1.5, 100), rng.uniform(1.5, 3.5, 100)])
    x = x.astype("float32")[:, None]
    y = (np.sin(x) + 0.1 * rng.normal(size=x.shape)).astype("float32")
    return x, y


def _ratios(name, dist):
    _, epistemic = probnn.decompose_uncertainty(dist)
    e = np.asarray(epistemic)[:, 0]
    inside = e[[1, 3]].mean()
    ratios = {"outside_left": e[0] / inside, "gap": e[2] / inside, "outside_right": e[4] / inside}
    print(f"{name}: epistemic variance at x = {PROBES[:, 0].tolist()}: {np.round(e, 5).tolist()}; "
          f"ratios to inside: " + ", ".join(f"{k} {v:.1f}" for k, v in ratios.items()))
    return ratios


def _relu_net(extra=lambda: [], width=50):
    layers = [keras.Input((1,))]
    for _ in range(2):
        layers += [keras.layers.Dense(width, activation="relu"), *extra()]
    return keras.Sequential(layers + [probnn.heads.NormalHead()])


def test_ensemble(data):
    x, y = data
    keras.utils.set_random_seed(0)
    ensemble = probnn.Ensemble(_relu_net, members=5)
    probnn.fit(ensemble, x, y, epochs=200, batch_size=32, seed=0, verbose=0,
               optimizer=keras.optimizers.Adam(0.01))
    ratios = _ratios("ensemble", probnn.predict_distribution(ensemble, PROBES))
    assert min(ratios.values()) >= 3


def test_mc_dropout(data):
    x, y = data
    keras.utils.set_random_seed(0)
    model = _relu_net(lambda: [MCDropout(0.1, seed=1)], width=100)
    probnn.fit(model, x, y, epochs=200, batch_size=32, seed=0, verbose=0,
               optimizer=keras.optimizers.Adam(0.01))
    dist = probnn.predict_distribution(model, PROBES, num_samples=200, seed=0)
    ratios = _ratios("MC dropout", dist)
    assert min(ratios.values()) >= 2


def test_variational_flipout(data):
    """Outside the data >= 3x. In the gap's centre mean-field VI is known to fail
    (Foong et al. 2019, "'In-Between' Uncertainty in Bayesian Neural Networks"): the
    ratio there is about 1 and is reported, not asserted (see benchmarks/results/
    epistemic_gap.md)."""
    x, y = data
    keras.utils.set_random_seed(0)
    kl = 1 / len(x)
    model = keras.Sequential([
        keras.Input((1,)),
        DenseFlipout(50, activation="relu", kl_weight=kl, seed=1),
        DenseFlipout(50, activation="relu", kl_weight=kl, seed=2),
        DenseFlipout(2, kl_weight=kl, seed=3),
        probnn.heads.NormalHead(),
    ])
    probnn.fit(model, x, y, epochs=150, batch_size=32, seed=0, verbose=0,
               optimizer=keras.optimizers.Adam(0.01))
    ratios = _ratios("variational (Flipout)", probnn.predict_distribution(model, PROBES,
                                                                          num_samples=200, seed=0))
    assert ratios["outside_left"] >= 3 and ratios["outside_right"] >= 3
