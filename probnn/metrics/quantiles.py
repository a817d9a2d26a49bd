"""Quantiles of any predictive distribution: one vectorised bisection on the CDF.

TFP implements `quantile` for Normal and Student-t but not for mixtures, and a
recalibrated distribution is only known through its CDF. `bisect_quantile`
inverts any monotone CDF elementwise, in TF ops; every quantile in
`probnn.metrics` and `probnn.calibration` that has no closed form comes from
here.
"""

import numpy as np
import tensorflow as tf


def bisect_quantile(cdf, p, center, width, *, max_iterations=300):
    """Generalised inverse `inf{y : cdf(y) >= p}` by bracketing and bisection, elementwise.

    The bracket starts at `center ± width` and doubles on the side where it
    does not yet contain the quantile (so heavy tails and bad starting scales
    are fine), then false-position steps (Illinois variant), with a bisection
    step every third iteration as a guarantee, shrink it until every interval
    is a few units in the last place of its end points wide. `p = 0` gives `-inf` and
    `p = 1` gives `+inf`.

    Args:
        cdf: a callable taking a tensor of the broadcast shape of `p` and
            `center` and returning the CDF there (monotone non-decreasing).
        p: probability levels in [0, 1]; broadcast against `center`.
        center, width: a starting location and a positive scale per element
            (the mean and standard deviation, say); non-finite or non-positive
            values fall back to 0 and 1.
        max_iterations: bound on the expansion and on the bisection loops.

    Returns:
        The quantiles, shape `broadcast(p, center)`, dtype of `center`.

    Example:
    >>> import numpy as np, scipy.stats, tensorflow_probability as tfp
    >>> normal = tfp.distributions.Normal(np.float64(1.0), np.float64(2.0))
    >>> q = bisect_quantile(normal.cdf, np.array([0.05, 0.5, 0.975]), np.float64(1.0), np.float64(2.0))
    >>> np.allclose(q, scipy.stats.norm(1, 2).ppf([0.05, 0.5, 0.975]), rtol=1e-12)
    True
    """
    center = tf.convert_to_tensor(center)
    if not center.dtype.is_floating:
        center = tf.cast(center, tf.float32)
    dtype = center.dtype
    p = tf.cast(p, dtype)
    width = tf.cast(width, dtype)
    center = tf.where(tf.math.is_finite(center), center, tf.zeros_like(center))
    width = tf.where(tf.math.is_finite(width) & (width > 0), width, tf.ones_like(width))
    shape = tf.broadcast_dynamic_shape(
        tf.shape(p), tf.broadcast_dynamic_shape(tf.shape(center), tf.shape(width))
    )
    p = tf.broadcast_to(p, shape)
    inner = (p > 0) & (p < 1)
    p_safe = tf.where(inner, p, tf.fill(shape, tf.constant(0.5, dtype)))
    lo = tf.broadcast_to(center - width, shape)
    hi = tf.broadcast_to(center + width, shape)
    eps = tf.constant(np.finfo(dtype.as_numpy_dtype).eps, dtype)

    def excess(y):  # cdf(y) - p: < 0 left of the quantile, >= 0 at and right of it
        return tf.cast(cdf(y), dtype) - p_safe

    # 1. Bracket: double the interval on the side that does not contain the quantile yet.
    def expand_cond(i, lo, hi, f_lo, f_hi):
        return (i < max_iterations) & tf.reduce_any((f_lo >= 0) | (f_hi < 0))

    def expand(i, lo, hi, f_lo, f_hi):
        step = hi - lo
        lo = tf.where(f_lo >= 0, lo - step, lo)
        hi = tf.where(f_hi < 0, hi + step, hi)
        return i + 1, lo, hi, excess(lo), excess(hi)

    _, lo, hi, f_lo, f_hi = tf.while_loop(
        expand_cond, expand, (tf.constant(0), lo, hi, excess(lo), excess(hi))
    )
    floor = eps * (hi - lo)  # absolute resolution, for quantiles at zero
    resolution = 4 * eps * p_safe

    # 2. Shrink: false position with the Illinois modification (superlinear on smooth CDFs),
    # and a plain bisection every third step so the bracket at least halves every three steps.
    def shrink_cond(i, lo, hi, f_lo, f_hi, g_lo, g_hi, last):
        tol = 4 * eps * tf.maximum(tf.abs(lo), tf.abs(hi)) + floor
        # Done where the bracket is a few ulps wide, or where the CDF at both ends is p to rounding.
        return (i < max_iterations) & tf.reduce_any((hi - lo > tol) & (g_hi - g_lo > resolution))

    def shrink(i, lo, hi, f_lo, f_hi, g_lo, g_hi, last):
        mid = lo + (hi - lo) / 2
        secant = lo - f_lo * (hi - lo) / (f_hi - f_lo)
        usable = (secant > lo) & (secant < hi) & (i % 3 != 2)
        x = tf.where(usable, secant, mid)
        g_x = excess(x)
        right = g_x >= 0
        # Where the CDF meets p to its own rounding, x is the answer: collapse the bracket onto it.
        hit = tf.abs(g_x) <= resolution
        lo, hi = tf.where(hit, x, lo), tf.where(hit, x, hi)
        # Illinois: an end kept twice in a row has its (working) function value halved.
        f_lo = tf.where(right & (last > 0), f_lo / 2, f_lo)
        f_hi = tf.where(~right & (last < 0), f_hi / 2, f_hi)
        lo, f_lo, g_lo = (tf.where(right, a, b) for a, b in ((lo, x), (f_lo, g_x), (g_lo, g_x)))
        hi, f_hi, g_hi = (tf.where(right, b, a) for a, b in ((hi, x), (f_hi, g_x), (g_hi, g_x)))
        last = tf.where(right, tf.ones_like(last), -tf.ones_like(last))
        return i + 1, lo, hi, f_lo, f_hi, g_lo, g_hi, last

    _, lo, hi, _, _, _, _, _ = tf.while_loop(
        shrink_cond,
        shrink,
        (tf.constant(0), lo, hi, f_lo, f_hi, f_lo, f_hi, tf.zeros(shape, tf.int8)),
    )
    q = lo + (hi - lo) / 2
    inf = tf.constant(np.inf, dtype)
    return tf.where(inner, q, tf.where(p <= 0, -inf, inf))
