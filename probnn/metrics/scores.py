"""Proper scores and point-prediction errors: NLL, CRPS, RMSE and MAE."""

import tensorflow as tf

from probnn.metrics._reduce import reduce
from probnn.metrics.predictive import DistributionPredictive, as_predictive


def nll(dist, y, *, reduction="mean"):
    """Negative log likelihood of targets `y` under the predictive distribution.

    For a `tfd.Distribution` the joint density of each example is used (an
    `Independent` over E outputs sums its E log densities). A recalibrated
    distribution uses its own density; samples have none (ValueError).

    Args:
        dist: a `tfd.Distribution`, a recalibrated distribution or a `(mean, stddev)` pair.
        y: targets, shape `batch` or `batch + event_shape`.
        reduction: "mean" (default), "sum" or "none" (per example).

    Example:
    >>> import numpy as np, tensorflow_probability as tfp
    >>> dist = tfp.distributions.Normal(np.zeros(3), np.ones(3))
    >>> round(float(nll(dist, np.zeros(3))), 6)  # log(2π)/2
    0.918939
    """
    pred, y = as_predictive(dist, y, owner="nll")
    if isinstance(pred, DistributionPredictive):
        joint = pred.joint
        shape = joint.batch_shape.as_list() + joint.event_shape.as_list()
        values = -joint.log_prob(tf.reshape(y, shape))
    else:
        try:
            values = -pred.log_prob(y)
        except NotImplementedError:
            raise ValueError(
                f"nll: dist must have a density; {type(pred).__name__} has none "
                "(samples: use crps, or fit a distribution first)"
            ) from None
    return reduce(values, reduction, "nll")


def crps(dist, y, *, reduction="mean"):
    """Continuous ranked probability score, `∫ (F(z) - 1{z >= y})² dz` (lower is better).

    Exact for Normal and Student-t distributions and for (nested) mixtures of
    Normals, such as a mixture density head or a predictive mixture over
    members, MC-dropout samples or posterior draws (Grimit et al. 2006; O(K²)
    per example for K components). Samples of shape `(num_samples,) + y.shape`
    use the energy form `E|X - y| - ½E|X - X'|` of their empirical
    distribution. Any other distribution (mixtures of Student-t,
    recalibrated distributions) integrates the quantile score over 1000
    quantile levels (relative error about 1e-4).

    Args:
        dist: a `tfd.Distribution`, a recalibrated distribution, a `(mean, stddev)` pair or samples.
        y: targets.
        reduction: "mean" (default), "sum" or "none" (per scalar outcome).

    Example:
    >>> import numpy as np
    >>> round(float(crps((np.zeros(2), np.ones(2)), np.zeros(2))), 6)
    0.233695
    """
    pred, y = as_predictive(dist, y, owner="crps")
    return reduce(pred.crps(y), reduction, "crps")


def rmse(dist, y):
    """Root mean squared error of the predictive mean.

    Example:
    >>> import numpy as np
    >>> float(rmse((np.zeros(2), np.ones(2)), np.array([3.0, 4.0])))
    3.5355339059327378
    """
    pred, y = as_predictive(dist, y, owner="rmse")
    return tf.sqrt(tf.reduce_mean(tf.square(pred.mean() - y)))


def mae(dist, y):
    """Mean absolute error of the predictive mean.

    Example:
    >>> import numpy as np
    >>> float(mae((np.zeros(2), np.ones(2)), np.array([3.0, -4.0])))
    3.5
    """
    pred, y = as_predictive(dist, y, owner="mae")
    return tf.reduce_mean(tf.abs(pred.mean() - y))
