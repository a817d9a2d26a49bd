"""Selective prediction: the error rate among the inputs a classifier is most confident about."""

import collections

import numpy as np
import tensorflow as tf

from probnn.metrics.classification import _classification
from probnn.metrics.ood import max_probability

RiskCoverage = collections.namedtuple("RiskCoverage", ["coverage", "risk", "threshold"])
RiskCoverage.__doc__ = """A risk-coverage curve, one point per distinct confidence, most confident first.

Attributes:
    coverage: fraction of inputs whose confidence is at least `threshold`.
    risk: error rate (top-class 0-1 loss) among those inputs.
    threshold: the confidence at which the point is taken.
"""


def risk_coverage_curve(dist, y, *, confidence=None):
    """The risk-coverage curve of a classifier that abstains below a confidence threshold.

    Inputs are ranked by `confidence` (default: `max_probability(dist)`); at
    each threshold the classifier predicts its top class on the inputs at or
    above it and abstains on the rest (Geifman and El-Yaniv 2017). Tied
    confidences enter together, so the curve does not depend on their order.

    Args:
        dist: a Categorical (or a mixture of them) or Bernoulli predictive.
        y: class labels, one per input.
        confidence: optional per-input confidence (higher = predict first),
            e.g. `-entropy(dist)`; `max_probability(dist)` if omitted.

    Returns:
        `RiskCoverage(coverage, risk, threshold)`, NumPy arrays.

    Example:
    >>> import tensorflow_probability as tfp
    >>> dist = tfp.distributions.Categorical(probs=[[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    >>> curve = risk_coverage_curve(dist, [0, 0, 1])
    >>> curve.coverage.round(2).tolist(), curve.risk.round(2).tolist()
    ([0.33, 0.67, 1.0], [0.0, 0.5, 0.67])
    """
    kind, probs, y = _classification(dist, y, "risk_coverage_curve")
    if kind == "categorical":
        predicted = tf.argmax(probs, axis=-1, output_type=tf.int32)
        wrong = np.asarray(predicted != tf.cast(y, tf.int32)).ravel()
    else:
        wrong = np.asarray(tf.cast(probs > 0.5, y.dtype) != y).ravel()
    score = max_probability(dist) if confidence is None else confidence
    score = np.asarray(score, dtype=float).ravel()
    if score.shape != wrong.shape or not np.all(np.isfinite(score)):
        raise ValueError(
            f"risk_coverage_curve: confidence must be {wrong.size} finite values, got shape {score.shape}"
        )
    order = np.argsort(-score, kind="mergesort")
    score, wrong = score[order], wrong[order]
    last = np.r_[np.flatnonzero(np.diff(score)), score.size - 1]
    covered = last + 1
    return RiskCoverage(covered / score.size, np.cumsum(wrong)[last] / covered, score[last])


def aurc(dist, y, *, confidence=None):
    """Area under the risk-coverage curve (lower is better): the mean risk over the coverages.

    Without tied confidences it is `(1/n) Σ_k risk(k most confident)`
    (Geifman et al. 2019); a tie group counts with its size at the risk
    after it. A classifier that ranks all its errors last has the smallest
    area its error rate allows.

    Example:
    >>> import tensorflow_probability as tfp
    >>> dist = tfp.distributions.Categorical(probs=[[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    >>> round(aurc(dist, [0, 0, 1]), 4)  # (0 + 1/2 + 2/3) / 3
    0.3889
    """
    curve = risk_coverage_curve(dist, y, confidence=confidence)
    return float(np.sum(np.diff(np.r_[0.0, curve.coverage]) * curve.risk))
