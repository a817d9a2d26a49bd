"""Maximum-likelihood fits of distributions to samples, batched, as TF ops."""

import tensorflow as tf

from probnn.stats import _centering, _common, _results

NormFitResult = _results.result_type(
    "NormFitResult", ("loc", "scale"), __name__, "norm_fit's result: the MLE loc and scale."
)


def norm_fit(data, axis=0, *, keepdims=False):
    """Maximum-likelihood normal fit, the `(loc, scale)` that `scipy.stats.norm.fit` returns.

    The MLE is the sample mean and the biased (ddof=0) standard deviation.
    scipy's `norm.fit` takes 1-D data; here `axis` selects the sample axis.
    A constant sample gives scale 0 (scipy too); the gradient of the scale is
    then nan (square root at 0).

    Args:
        data: sample, any shape.
        axis: the sample axis; None flattens.
        keepdims: keep the reduced axis with length 1.

    Returns:
        `NormFitResult(loc, scale)`, a tuple like scipy's.

    Example:
    >>> loc, scale = norm_fit([1.0, 2.0, 3.0])
    >>> float(loc), round(float(scale), 6)
    (2.0, 0.816497)
    """
    (data,) = _common.to_floats(data)
    ndim = _common.rank("norm_fit", data)
    data, ax = _common.check_axis("norm_fit", data, axis)
    loc, d, s = _centering.centered(data, ax)  # no cancellation, no overflow of squares
    scale = tf.squeeze(s, ax) * tf.sqrt(tf.reduce_mean(d * d, axis=ax))
    loc = tf.squeeze(loc, axis=ax)
    return NormFitResult(
        _common.keep_dims(loc, axis, ndim, keepdims), _common.keep_dims(scale, axis, ndim, keepdims)
    )
