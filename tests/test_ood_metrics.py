"""probnn.metrics out-of-distribution scores, detection metrics and risk-coverage curves.

References: scikit-learn's roc_auc_score, average_precision_score and roc_curve
(to 1e-9, with ties), closed-form entropies and variances of small mixtures,
and a direct O(n^2) evaluation of the risk-coverage definition.
"""

import numpy as np
import pytest
import tensorflow_probability as tfp

import probnn
from probnn import metrics

tfd = tfp.distributions


@pytest.mark.parametrize("ties", [False, True])
def test_auroc_aupr_fpr_equal_sklearn(ties):
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0 + ties)
    labels = rng.integers(0, 2, size=500)
    scores = labels + rng.normal(size=500)
    if ties:
        scores = np.round(scores, 1)
    assert abs(metrics.auroc(labels, scores) - sk.roc_auc_score(labels, scores)) < 1e-9
    assert abs(metrics.aupr(labels, scores) - sk.average_precision_score(labels, scores)) < 1e-9
    fpr, tpr, _ = sk.roc_curve(labels, scores, drop_intermediate=False)
    assert abs(metrics.fpr_at_tpr(labels, scores, 0.95) - fpr[np.argmax(tpr >= 0.95)]) < 1e-12


def test_detection_metrics_reject_bad_input():
    with pytest.raises(ValueError, match="auroc: needs both positive"):
        metrics.auroc([1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="aupr: labels and scores must have the same length"):
        metrics.aupr([0, 1], [0.1])
    with pytest.raises(
        ValueError, match=r"fpr_at_tpr: scores must be finite, found 1 NaN or infinite value\(s\)"
    ):
        metrics.fpr_at_tpr([0, 1], [0.1, np.nan])
    with pytest.raises(ValueError, match="entropy: dist must be"):
        metrics.entropy(tfd.Normal(0.0, 1.0))


def _mixture(member_probs):
    member_probs = np.asarray(member_probs, dtype=np.float64)
    weights = np.zeros(member_probs.shape[:-1])
    return tfd.MixtureSameFamily(tfd.Categorical(logits=weights), tfd.Categorical(probs=member_probs))


def test_scores_of_a_mixture_match_closed_forms():
    members = np.array([[[0.9, 0.1], [0.1, 0.9]], [[0.6, 0.4], [0.6, 0.4]]])  # rows: disagree, agree
    dist = _mixture(members)
    h = lambda p: -np.sum(p * np.log(p), -1)
    mean = members.mean(1)
    np.testing.assert_allclose(metrics.max_probability(dist), mean.max(1), rtol=1e-12)
    np.testing.assert_allclose(metrics.entropy(dist), h(mean), rtol=1e-12)
    np.testing.assert_allclose(metrics.mutual_information(dist), h(mean) - h(members).mean(1), atol=1e-12)
    np.testing.assert_allclose(metrics.epistemic_variance(dist), members.var(1).sum(1), atol=1e-12)
    assert float(metrics.mutual_information(dist)[1]) == pytest.approx(0.0, abs=1e-12)
    single = tfd.Categorical(probs=mean)
    np.testing.assert_array_equal(metrics.mutual_information(single), [0.0, 0.0])
    np.testing.assert_array_equal(metrics.epistemic_variance(single), [0.0, 0.0])


def test_scores_of_mc_dropout_predictions_are_per_input_and_non_negative():
    import keras

    x, y = probnn.datasets.two_moons(400, noise=0.1, seed=0)
    model = keras.Sequential(
        [
            keras.Input((2,)),
            keras.layers.Dense(64, "relu"),
            probnn.layers.MCDropout(0.3),
            keras.layers.Dense(64, "relu"),
            probnn.heads.CategoricalHead(2),
        ]
    )
    probnn.fit(model, x, y, epochs=10, batch_size=64, verbose=0, seed=0, jit_compile=False)
    dist = probnn.predict_distribution(model, np.r_[x[:50], 8 + x[:50]], num_samples=30, seed=0)
    mi = metrics.mutual_information(dist).numpy()
    assert mi.shape == (100,) and np.all(mi >= -1e-6)
    assert np.all(metrics.epistemic_variance(dist).numpy() >= 0)


def test_risk_coverage_curve_is_the_definition():
    rng = np.random.default_rng(2)
    probs = rng.dirichlet(np.ones(4), size=300)
    y = rng.integers(0, 4, size=300)
    dist = tfd.Categorical(probs=probs)
    curve = metrics.risk_coverage_curve(dist, y)
    conf, wrong = probs.max(1), probs.argmax(1) != y
    for c, r, t in zip(curve.coverage, curve.risk, curve.threshold):
        kept = conf >= t
        assert c == pytest.approx(kept.mean()) and r == pytest.approx(wrong[kept].mean())
    order = np.argsort(-conf)
    assert metrics.aurc(dist, y) == pytest.approx(np.mean(np.cumsum(wrong[order]) / np.arange(1, 301)))


def test_plot_risk_coverage():
    dist = tfd.Categorical(probs=np.random.default_rng(3).dirichlet(np.ones(3), size=100))
    fig = probnn.plotting.plot_risk_coverage(dist, np.zeros(100, int), label="model")
    assert len(fig.axes[0].lines) == 2
