"""Out-of-distribution scores of class predictions, and the detection metrics that rank them.

Scores (one value per input, from a classification predictive):
`max_probability` (higher = more confident), and the uncertainties `entropy`,
`mutual_information` and `epistemic_variance` (higher = less like the
training data). The last two are zero for a single deterministic model: they
need a predictive mixture over ensemble members, MC-dropout samples or
posterior draws, as `probnn.predict_distribution` returns.

Metrics (NumPy, Python floats), scikit-learn's convention: `labels` are 1 for
the positive class (out-of-distribution, say) and 0 otherwise, and a higher
score means "more positive" (pass an uncertainty, or `-max_probability`).
"""

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from probnn._validation import finite_array, same_length
from probnn.metrics.classification import class_probabilities

tfd = tfp.distributions


def _probs(dist, owner):
    """`(kind, probs)` of a classification predictive, or a one-line ValueError naming `owner`."""
    found = class_probabilities(dist) if isinstance(dist, tfd.Distribution) else None
    if found is None:
        raise ValueError(
            f"{owner}: dist must be a Categorical or Bernoulli distribution, or a predictive mixture "
            f"of Categoricals, got {type(dist).__name__}"
        )
    return found


def _categorical(dist, owner):
    """Class probabilities `(batch, C)`; a single-output Bernoulli becomes `[1 - p, p]`."""
    kind, probs = _probs(dist, owner)
    if kind == "binary":
        if probs.shape[-1] != 1:
            raise ValueError(
                f"{owner}: needs class probabilities that sum to one (a Categorical or a "
                f"single-output Bernoulli), got {probs.shape[-1]} independent Bernoullis"
            )
        probs = tf.concat([1 - probs, probs], axis=-1)
    return probs


def _components(dist):
    """`(weights (batch, K), probs (batch, K, C))` of a mixture of Categoricals, else None."""
    if isinstance(dist, tfd.MixtureSameFamily) and isinstance(dist.components_distribution, tfd.Categorical):
        probs = dist.components_distribution.probs_parameter()
        return tf.cast(dist.mixture_distribution.probs_parameter(), probs.dtype), probs
    return None


def _entropy(probs):
    # `+ 0.0` turns the -0.0 of a certain prediction into 0.0.
    return -tf.reduce_sum(tf.math.multiply_no_nan(tf.math.log(probs), probs), axis=-1) + 0.0


def max_probability(dist):
    """The largest predicted class probability of each input (the softmax confidence).

    A Categorical (or a mixture of them): `max_c p_c`. A single-output
    Bernoulli: `max(p, 1 - p)`. Several independent Bernoullis (one-vs-all
    classes, as `probnn.heads.DUQHead` predicts): `max_c p_c`, which is small
    far from every class.

    Example:
    >>> import tensorflow_probability as tfp
    >>> dist = tfp.distributions.Categorical(probs=[[0.7, 0.2, 0.1], [0.4, 0.4, 0.2]])
    >>> [round(v, 2) for v in max_probability(dist).numpy().tolist()]
    [0.7, 0.4]
    """
    kind, probs = _probs(dist, "max_probability")
    if kind == "binary" and probs.shape[-1] == 1:
        probs = tf.concat([1 - probs, probs], axis=-1)
    return tf.reduce_max(probs, axis=-1)


def entropy(dist):
    """Entropy of the predictive class probabilities, `-Σ_c p_c log p_c` (nats), per input.

    For a mixture, the entropy of the mixture probabilities (the total
    uncertainty, which `mutual_information` splits).

    Example:
    >>> import tensorflow_probability as tfp
    >>> dist = tfp.distributions.Categorical(probs=[[0.5, 0.5], [1.0, 0.0]])
    >>> [round(v, 4) for v in entropy(dist).numpy().tolist()]  # log 2, 0
    [0.6931, 0.0]
    """
    return _entropy(_categorical(dist, "entropy"))


def mutual_information(dist):
    """Mutual information between the label and the model: `H[Σ_k w_k p_k] - Σ_k w_k H[p_k]`.

    The epistemic part of the entropy (Depeweg et al. 2018; the BALD score):
    zero when the members, samples or draws of the mixture agree, large when
    each is confident about a different class. A single Categorical has none.

    Example:
    >>> import numpy as np, probnn
    >>> head = probnn.heads.CategoricalHead(2)
    >>> params = np.array([[[9.0, -9.0], [-9.0, 9.0]]], "float32")  # two confident members disagree
    >>> dist = probnn.prediction.mixture_distribution(head, params)
    >>> round(float(mutual_information(dist)[0]), 3)  # log 2 = 0.693, minus the members' tiny entropy
    0.693
    """
    probs = _categorical(dist, "mutual_information")
    parts = _components(dist)
    if parts is None:
        return tf.zeros_like(probs[..., 0])
    weights, component_probs = parts
    return _entropy(probs) - tf.reduce_sum(weights * _entropy(component_probs), axis=-1)


def epistemic_variance(dist):
    """The variance between the members of a predictive mixture, summed over the event, per input.

    Classes: `Σ_c Σ_k w_k (p_kc - p̄_c)²`, how much the class probabilities
    of the members, samples or draws disagree. Real-valued heads: the
    epistemic part of `probnn.decompose_uncertainty` (the variance of the
    component means), summed over the event. Zero for a distribution that is
    not a mixture.

    Example:
    >>> import numpy as np, probnn
    >>> head = probnn.heads.NormalHead()
    >>> params = np.array([[[-1.0, 0.0], [1.0, 0.0]]], "float32")  # component means -1 and 1
    >>> float(epistemic_variance(probnn.prediction.mixture_distribution(head, params))[0])
    1.0
    """
    if not isinstance(dist, tfd.Distribution):
        raise ValueError(f"epistemic_variance: dist must be a tfd.Distribution, got {type(dist).__name__}")
    parts = _components(dist)
    if parts is not None:
        weights, component_probs = parts
        mean = tf.reduce_sum(weights[..., None] * component_probs, axis=-2, keepdims=True)
        return tf.reduce_sum(weights * tf.reduce_sum(tf.square(component_probs - mean), axis=-1), axis=-1)
    if class_probabilities(dist) is not None:
        return tf.zeros_like(max_probability(dist))
    from probnn.prediction import decompose_uncertainty  # keeps `import probnn.metrics` free of Keras models

    _, epistemic = decompose_uncertainty(dist)
    event_rank = dist.event_shape.rank
    return tf.reduce_sum(epistemic, axis=list(range(-event_rank, 0))) if event_rank else epistemic


# ------------------------------------------------------------------------------ detection metrics


def _labels_scores(labels, scores, owner):
    labels = np.asarray(labels).ravel()
    scores = np.asarray(scores, dtype=float).ravel()
    same_length(owner, {"labels": labels, "scores": scores})
    if not np.all((labels == 0) | (labels == 1)):
        raise ValueError(f"{owner}: labels must be 0 (negative) or 1 (positive)")
    if labels.min(initial=1) == labels.max(initial=0):
        raise ValueError(f"{owner}: needs both positive (1) and negative (0) labels")
    finite_array(owner, "scores", scores)
    return labels.astype(bool), scores


def _roc_points(labels, scores):
    """Cumulative true and false positives at each distinct threshold, highest score first."""
    order = np.argsort(-scores, kind="mergesort")
    scores, labels = scores[order], labels[order]
    last = np.r_[np.flatnonzero(np.diff(scores)), scores.size - 1]  # end of each tie group
    tp = np.cumsum(labels)[last]
    fp = (last + 1) - tp
    return tp, fp, scores[last]


def auroc(labels, scores):
    """Area under the ROC curve: the probability that a positive scores above a negative (ties count ½).

    Equal to scikit-learn's `roc_auc_score(labels, scores)` (the Mann-Whitney
    statistic with mid-ranks for ties).

    Args:
        labels: 0/1 array (1 = positive, e.g. out-of-distribution), both present.
        scores: array of the same length; higher means "more positive".

    Returns:
        A Python float in [0, 1].

    Example:
    >>> auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    import scipy.stats

    labels, scores = _labels_scores(labels, scores, "auroc")
    ranks = scipy.stats.rankdata(scores)
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def aupr(labels, scores):
    """Area under the precision-recall curve as average precision, `Σ_n (R_n - R_{n-1}) P_n`.

    Over the distinct score thresholds, highest first; equal to
    scikit-learn's `average_precision_score(labels, scores)`. Its chance level
    is the fraction of positives.

    Example:
    >>> round(aupr([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]), 4)
    0.8333
    """
    labels, scores = _labels_scores(labels, scores, "aupr")
    tp, fp, _ = _roc_points(labels, scores)
    precision = tp / (tp + fp)
    recall = tp / tp[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def fpr_at_tpr(labels, scores, tpr=0.95):
    """The false positive rate at the highest threshold whose true positive rate is at least `tpr`.

    With out-of-distribution inputs as positives and an uncertainty as the
    score, `fpr_at_tpr(labels, scores, 0.95)` ("FPR95") is the fraction of
    in-distribution inputs flagged when 95 % of the out-of-distribution ones
    are caught. Lower is better.

    Example:
    >>> fpr_at_tpr([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], 0.95)
    0.5
    """
    if not 0.0 < float(tpr) <= 1.0:
        raise ValueError(f"fpr_at_tpr: tpr must be in (0, 1], got {tpr!r}")
    labels, scores = _labels_scores(labels, scores, "fpr_at_tpr")
    tp, fp, _ = _roc_points(labels, scores)
    first = int(np.argmax(tp / tp[-1] >= float(tpr) - 1e-12))
    return float(fp[first] / fp[-1])
