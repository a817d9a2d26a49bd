"""Every metric that applies, in one call, as a plain dict of Python floats."""

import tensorflow as tf
import tensorflow_probability as tfp

from probnn.metrics.classification import brier_score, class_probabilities, classification_calibration_error
from probnn.metrics.curves import expected_calibration_error, miscalibration_area
from probnn.metrics.intervals import interval, sharpness
from probnn.metrics.predictive import DistributionPredictive, as_predictive
from probnn.metrics.scores import crps, mae, nll, rmse

tfd = tfp.distributions


def report(dist, y, *, levels=(0.5, 0.9, 0.95)):
    """All the metrics that apply to `dist`, as `{name: float}`.

    Regression (any predictive over real outcomes): `nll` (when there is a
    density: not for samples), `crps`, `rmse`, `mae`, `miscalibration_area`,
    `calibration_error` (mean absolute gap of the interval calibration
    curve), `sharpness`, and for each level p in `levels` `coverage_p` and
    `width_p` (p in percent, e.g. `coverage_90`). Classification (Categorical
    or Bernoulli): `nll`, `brier`, `calibration_error` (10-bin ECE) and
    `accuracy`.

    Example:
    >>> import numpy as np
    >>> r = report((np.zeros(1000), np.ones(1000)), np.random.default_rng(0).normal(size=1000))
    >>> sorted(r)[:4], type(r["crps"])
    (['calibration_error', 'coverage_50', 'coverage_90', 'coverage_95'], <class 'float'>)
    """
    if isinstance(dist, tfd.Distribution) and class_probabilities(dist) is not None:
        out = _classification_report(dist, y)
    else:
        pred, y = as_predictive(dist, y, owner="report")
        out = {}
        if isinstance(pred, DistributionPredictive) or _has_density(pred):
            out["nll"] = nll(pred, y)
        out.update(
            crps=crps(pred, y),
            rmse=rmse(pred, y),
            mae=mae(pred, y),
            miscalibration_area=miscalibration_area(pred, y),
            calibration_error=expected_calibration_error(pred, y),
            sharpness=sharpness(pred),
        )
        for level in levels:
            name = f"{100 * level:g}".replace(".", "_")
            lower, upper = interval(pred, level)  # once per level: coverage and width share it
            out[f"coverage_{name}"] = tf.reduce_mean(tf.cast((y >= lower) & (y <= upper), tf.float64))
            out[f"width_{name}"] = tf.reduce_mean(upper - lower)
    return {k: float(v) for k, v in out.items()}


def _has_density(pred):
    try:
        pred.log_prob(tf.zeros(pred.batch_shape, pred.dtype))
    except NotImplementedError:
        return False
    return True


def _classification_report(dist, y):
    kind, probs = class_probabilities(dist)
    labels = tf.convert_to_tensor(y)
    if labels.dtype.is_floating:
        labels = tf.round(labels)
    labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
    if kind == "categorical":
        guess = tf.argmax(probs, axis=-1, output_type=tf.int32)
    else:
        guess = tf.cast(probs > 0.5, tf.int32)
    guess = tf.reshape(guess, [-1])
    if guess.shape != labels.shape:
        raise ValueError(
            f"report: y must hold one label per prediction ({guess.shape[0]}), got shape {tuple(tf.shape(y).numpy())}"
        )
    return {
        "nll": nll(dist, y),
        "brier": brier_score(dist, y),
        "calibration_error": classification_calibration_error(dist, y),
        "accuracy": tf.reduce_mean(tf.cast(tf.equal(guess, labels), tf.float64)),
    }
