"""probnn.calibration.ConformalClassifier, VectorScaling and MatrixScaling.

References: the finite-sample bounds of split conformal prediction (Monte Carlo
over 200 random calibration/test splits of a fixed pool, scored by a
deliberately miscalibrated model), MAPIE's SplitConformalClassifier (LAC, and
APS with randomised sets fed the same uniform draws), and the closed-form
optimum of the scalings on data whose logits are a known multiple of the truth.
"""

import numpy as np
import pytest
import tensorflow_probability as tfp

from probnn import calibration, metrics

tfd = tfp.distributions


def _softmax(logits):
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _pool(seed, n=2000, k=6):
    """Over-confident model probabilities (logits x 2.5) and labels drawn from the true ones."""
    rng = np.random.default_rng(seed)
    logits = 1.2 * rng.normal(size=(n, k))
    y = (rng.uniform(size=(n, 1)) > _softmax(logits).cumsum(1)).sum(1)
    return _softmax(2.5 * logits), np.minimum(y, k - 1)


CASES = [("lac", False), ("aps", False), ("aps", True), ("raps", True), ("top_k", True)]


@pytest.mark.parametrize("score,randomized", CASES)
def test_coverage_within_finite_sample_bounds(score, randomized):
    # Over random splits, the mean coverage estimates P(y in set) up to its standard error;
    # the guarantee is 1 - alpha <= P < 1 - alpha + 1/(n_cal + 1) for tie-free scores.
    probs, y = _pool(0)
    alpha, n_cal = 0.1, 500
    rng = np.random.default_rng(1)
    coverages = []
    for split in range(200):
        order = rng.permutation(len(y))
        cal, test = order[:n_cal], order[n_cal:]
        cp = calibration.ConformalClassifier(score, alpha, randomized=randomized, seed=split)
        sets = cp.fit(probs[cal], y[cal]).predict_set(probs[test])
        coverages.append(sets[np.arange(test.size), y[test]].mean())
    mean, se = np.mean(coverages), np.std(coverages, ddof=1) / np.sqrt(200)
    assert 1 - alpha - 3 * se <= mean <= 1 - alpha + 1 / (n_cal + 1) + 3 * se, (mean, se)


def test_top_k_without_randomisation_covers_at_least_one_minus_alpha():
    probs, y = _pool(2)
    cp = calibration.ConformalClassifier("top_k", 0.1).fit(probs[:1000], y[:1000])
    sets = cp.predict_set(probs[1000:])
    assert np.all(sets.sum(1) == cp.quantile_)  # the same k for every input
    assert sets[np.arange(1000), y[1000:]].mean() >= 0.9 - 3 * np.sqrt(0.09 / 1000)


def test_class_conditional_coverage_per_class():
    # A model that is nearly useless on class 0: marginal sets under-cover it, Mondrian sets do not.
    probs, y = _pool(3, n=6000, k=3)
    probs = probs.copy()
    zero = y == 0
    probs[zero] = probs[zero][:, [1, 0, 2]]  # class 0 gets the probability of class 1
    per_class = {}
    for mondrian in (False, True):
        cp = calibration.ConformalClassifier("lac", 0.1, class_conditional=mondrian).fit(
            probs[:3000], y[:3000]
        )
        sets = cp.predict_set(probs[3000:])
        hit = sets[np.arange(3000), y[3000:]]
        per_class[mondrian] = [hit[y[3000:] == c].mean() for c in range(3)]
    n0 = np.sum(y[3000:] == 0)
    assert min(per_class[True]) >= 0.9 - 3 * np.sqrt(0.09 / n0)
    assert per_class[False][0] < 0.85


def _fixed_estimator():
    from sklearn.base import BaseEstimator, ClassifierMixin

    class Fixed(ClassifierMixin, BaseEstimator):  # MAPIE needs an estimator: it returns its input
        def fit(self, x, y):
            self.classes_ = np.arange(x.shape[1])
            return self

        def predict_proba(self, x):
            return np.asarray(x)

        def predict(self, x):
            return np.argmax(x, 1)

    return Fixed


def test_lac_and_aps_sets_equal_mapie():
    classification = pytest.importorskip("mapie.classification")
    probs, y = _pool(4)
    est = _fixed_estimator()().fit(probs, y)
    cal, test = slice(0, 1000), slice(1000, None)
    ref = classification.SplitConformalClassifier(
        est, confidence_level=0.9, conformity_score="lac", prefit=True
    )
    ref_sets = ref.conformalize(probs[cal], y[cal]).predict_set(probs[test])[1][:, :, 0]
    ours = calibration.ConformalClassifier("lac", 0.1).fit(probs[cal], y[cal]).predict_set(probs[test])
    np.testing.assert_array_equal(ours, ref_sets)
    # APS: MAPIE randomises the calibration scores always; both draw u from the same RandomState stream.
    ref = classification.SplitConformalClassifier(
        est, confidence_level=0.9, conformity_score="aps", prefit=True, random_state=np.random.RandomState(5)
    )
    ref_sets = ref.conformalize(probs[cal], y[cal]).predict_set(
        probs[test], conformity_score_params={"include_last_label": "randomized"}
    )[1][:, :, 0]
    cp = calibration.ConformalClassifier("aps", 0.1, randomized=True, seed=np.random.RandomState(5))
    ours = cp.fit(probs[cal], y[cal]).predict_set(tfd.Categorical(probs=probs[test]))
    np.testing.assert_array_equal(ours, ref_sets)
    assert ours.sum(1).mean() == ref_sets.sum(1).mean()


def test_mixture_of_categoricals_uses_the_mixture_probabilities():
    probs, y = _pool(5, n=200, k=3)
    members = np.stack([probs, probs[:, [1, 2, 0]]], axis=1)  # (n, 2, K)
    mixture = tfd.MixtureSameFamily(
        tfd.Categorical(logits=np.zeros((200, 2))), tfd.Categorical(probs=members)
    )
    a = calibration.ConformalClassifier("lac").fit(mixture, y).predict_set(mixture)
    b = calibration.ConformalClassifier("lac").fit(members.mean(1), y).predict_set(members.mean(1))
    np.testing.assert_array_equal(a, b)


def test_bad_input_is_one_clear_error():
    with pytest.raises(ValueError, match="ConformalClassifier: score must be one of"):
        calibration.ConformalClassifier("softmax")
    with pytest.raises(ValueError, match="alpha must be in"):
        calibration.ConformalClassifier(alpha=1.5)
    with pytest.raises(ValueError, match="fit: y must hold 2 class indices"):
        calibration.ConformalClassifier().fit(np.full((2, 3), 1 / 3), [0, 3])
    with pytest.raises(ValueError, match="before predict_set"):
        calibration.ConformalClassifier().predict_set(np.full((2, 3), 1 / 3))
    with pytest.raises(ValueError, match="fit: dist must be a Categorical"):
        calibration.ConformalClassifier().fit(tfd.Normal(0.0, 1.0), [0])


@pytest.mark.parametrize("scaling", [calibration.VectorScaling, calibration.MatrixScaling])
def test_affine_scalings_undo_a_known_overconfidence(scaling):
    # Logits 3x the true ones: the likelihood's optimum is A = I/3, b = 0 (up to a constant shift
    # of every logit, which softmax ignores), so the fitted probabilities match the true ones.
    rng = np.random.default_rng(6)
    logits = rng.normal(size=(50000, 4))
    y = (rng.uniform(size=(50000, 1)) > _softmax(logits).cumsum(1)).sum(1).clip(0, 3)
    fitted = scaling().fit(tfd.Categorical(logits=3 * logits), y)
    recal = fitted(tfd.Categorical(logits=3 * logits[:1000])).probs_parameter().numpy()
    # sampling error of the 2K or K^2 + K parameters at n = 50000: below 0.01 in probability
    np.testing.assert_allclose(recal, _softmax(logits[:1000]), atol=0.03)


def test_scalings_lower_ece_of_an_overconfident_digits_model(capsys):
    import keras

    import probnn

    x_train, y_train, x_test, y_test = probnn.datasets.load_digits("sklearn", test_size=0.75, seed=0)[:4]
    model = keras.Sequential([keras.Input((64,)), probnn.heads.CategoricalHead(10)])
    probnn.fit(
        model,
        x_train,
        y_train,
        epochs=30,
        batch_size=32,
        optimizer=keras.optimizers.Adam(1e-2),
        verbose=0,
        seed=0,
        jit_compile=False,
    )
    logits = 4.0 * model.predict(x_test, verbose=0)  # deliberately over-confident: logits x 4
    cal, test = slice(0, 674), slice(674, None)
    dist = lambda rows: tfd.Categorical(logits=logits[rows])
    ece = {"uncalibrated": float(metrics.expected_calibration_error(dist(test), y_test[test]))}
    # Plain matrix scaling (l2=0, printed, not asserted) overfits 674 calibration images (see
    # MatrixScaling); with ODIR l2=10 it does not.
    scalers = {
        "temperature": calibration.TemperatureScaling(),
        "vector": calibration.VectorScaling(),
        "matrix (ODIR l2=10)": calibration.MatrixScaling(l2=10.0),
    }
    plain = calibration.MatrixScaling().fit(dist(cal), y_test[cal])
    ece["matrix (l2=0)"] = float(metrics.expected_calibration_error(plain(dist(test)), y_test[test]))
    for name, scaler in scalers.items():
        scaler.fit(dist(cal), y_test[cal])
        ece[name] = float(metrics.expected_calibration_error(scaler(dist(test)), y_test[test]))
    with capsys.disabled():
        print("\nECE on digits (logits x 4):", {k: round(v, 4) for k, v in ece.items()})
    assert ece["uncalibrated"] > 0.03
    for name in scalers:  # the matrix (l2=0) entry is only printed
        assert ece[name] < ece["uncalibrated"], ece
