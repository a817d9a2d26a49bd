"""Scores and reliability diagrams for class probabilities (Categorical and Bernoulli heads)."""

import collections

import tensorflow as tf
import tensorflow_probability as tfp

from probnn._validation import positive_int
from probnn.metrics._reduce import reduce

tfd = tfp.distributions

ReliabilityBins = collections.namedtuple("ReliabilityBins", ["edges", "confidence", "accuracy", "count"])
ReliabilityBins.__doc__ = """Bins of a reliability diagram.

Attributes:
    edges: `num_bins + 1` equal-width bin edges on [0, 1].
    confidence: mean predicted probability in each bin (NaN where empty).
    accuracy: observed frequency in each bin (NaN where empty).
    count: number of predictions in each bin.
"""


def class_probabilities(dist):
    """`("categorical", probs)` or `("binary", p)` for a classification distribution, else None.

    A predictive mixture of Categoricals (`probnn.predict_distribution` of an
    ensemble, MC dropout or posterior draws) gives its mixture probabilities
    `Σ_k w_k p_k`.
    """
    if isinstance(dist, tfd.Categorical):
        return "categorical", dist.probs_parameter()
    if isinstance(dist, tfd.MixtureSameFamily) and isinstance(dist.components_distribution, tfd.Categorical):
        weights = dist.mixture_distribution.probs_parameter()
        probs = dist.components_distribution.probs_parameter()
        return "categorical", tf.einsum("...k,...kc->...c", tf.cast(weights, probs.dtype), probs)
    base = dist.distribution if isinstance(dist, tfd.Independent) else dist
    if isinstance(base, tfd.Bernoulli):
        return "binary", base.probs_parameter()
    return None


def _classification(dist, y, owner):
    found = class_probabilities(dist) if isinstance(dist, tfd.Distribution) else None
    if found is None:
        raise ValueError(
            f"{owner}: dist must be a Categorical or Bernoulli distribution (a classification "
            f"head's), got {type(dist).__name__}"
        )
    kind, probs = found
    y = tf.convert_to_tensor(y)
    if y.dtype.is_floating:
        y = tf.round(y)
    batch = tuple(probs.shape[:-1]) if kind == "categorical" else tuple(probs.shape)
    if tuple(y.shape) != batch:
        if tuple(y.shape) == batch + (1,) or (
            kind == "categorical" and tuple(y.shape[:-1]) == batch and y.shape[-1] == 1
        ):
            y = tf.reshape(y, batch)
        else:
            raise ValueError(f"{owner}: y must have shape {batch} (class labels), got {tuple(y.shape)}")
    return kind, probs, y


def brier_score(dist, y, *, reduction="mean"):
    """Brier score: squared distance between predicted probabilities and the one-hot outcome.

    Categorical: `Σ_k (p_k - 1{y = k})²` per example; Bernoulli: `(p - y)²` per
    output. Lower is better.

    Args:
        dist: a `tfd.Categorical` or (`Independent`) `tfd.Bernoulli`.
        y: class labels (integers, or floats holding integers).
        reduction: "mean" (default), "sum" or "none".

    Example:
    >>> import numpy as np, tensorflow_probability as tfp
    >>> dist = tfp.distributions.Categorical(probs=[[0.5, 0.5], [1.0, 0.0]])
    >>> float(brier_score(dist, [0, 0]))
    0.25
    """
    kind, probs, y = _classification(dist, y, "brier_score")
    if kind == "categorical":
        onehot = tf.one_hot(tf.cast(y, tf.int32), tf.shape(probs)[-1], dtype=probs.dtype)
        values = tf.reduce_sum(tf.square(probs - onehot), axis=-1)
    else:
        values = tf.square(probs - tf.cast(y, probs.dtype))
    return reduce(values, reduction, "brier_score")


def reliability_bins(dist, y, *, num_bins=10):
    """The bins of a reliability diagram, equal width on [0, 1].

    For a Categorical the top-label confidence (the largest probability) is
    binned against whether the top class was right; for a Bernoulli the
    predicted probability of 1 is binned against the frequency of 1s
    (scikit-learn's `calibration_curve` with `strategy="uniform"`). A value on
    an inner edge belongs to the lower bin.

    Args:
        dist: a `tfd.Categorical` or (`Independent`) `tfd.Bernoulli`.
        y: class labels.
        num_bins: number of bins (>= 1).

    Returns:
        `ReliabilityBins(edges, confidence, accuracy, count)`.

    Example:
    >>> import numpy as np, tensorflow_probability as tfp
    >>> dist = tfp.distributions.Bernoulli(probs=[0.1, 0.15, 0.9, 0.95])
    >>> bins = reliability_bins(dist, [0, 1, 1, 1], num_bins=2)
    >>> bins.count.numpy().tolist(), bins.accuracy.numpy().tolist()
    ([2.0, 2.0], [0.5, 1.0])
    """
    num_bins = positive_int("reliability_bins", "num_bins", num_bins, whole_floats=True)
    kind, probs, y = _classification(dist, y, "reliability_bins")
    if kind == "categorical":
        confidence = tf.reduce_max(probs, axis=-1)
        hit = tf.cast(
            tf.equal(tf.argmax(probs, axis=-1, output_type=tf.int32), tf.cast(y, tf.int32)), probs.dtype
        )
    else:
        confidence = probs
        hit = tf.cast(y, probs.dtype)
    confidence, hit = tf.reshape(confidence, [-1]), tf.reshape(hit, [-1])
    index = tf.cast(tf.math.ceil(confidence * num_bins), tf.int32) - 1
    index = tf.clip_by_value(index, 0, num_bins - 1)
    count = tf.math.unsorted_segment_sum(tf.ones_like(confidence), index, num_bins)
    conf_sum = tf.math.unsorted_segment_sum(confidence, index, num_bins)
    hit_sum = tf.math.unsorted_segment_sum(hit, index, num_bins)
    edges = tf.cast(tf.linspace(0.0, 1.0, num_bins + 1), probs.dtype)
    return ReliabilityBins(edges, conf_sum / count, hit_sum / count, count)


def classification_calibration_error(dist, y, *, num_bins=10):
    """Expected calibration error of class probabilities: `Σ_b (n_b / n) |accuracy_b - confidence_b|`.

    Over the bins of `reliability_bins` (Guo et al. 2017); empty bins count zero.

    Example:
    >>> import numpy as np, tensorflow_probability as tfp
    >>> dist = tfp.distributions.Bernoulli(probs=[0.1, 0.15, 0.9, 0.95])
    >>> round(float(classification_calibration_error(dist, [0, 1, 1, 1], num_bins=2)), 4)
    0.225
    """
    bins = reliability_bins(dist, y, num_bins=num_bins)
    gap = tf.where(bins.count > 0, tf.abs(bins.accuracy - bins.confidence), tf.zeros_like(bins.count))
    return tf.reduce_sum(bins.count * gap) / tf.reduce_sum(bins.count)
