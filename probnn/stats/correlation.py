"""Pearson correlation and simple linear regression as differentiable TF ops.

`pearsonr`'s p-value uses the exact null distribution scipy uses: r is
Beta(n/2 - 1, n/2 - 1) on (-1, 1), evaluated with `tf.math.betainc`
(differentiable in r, hence in the data). `linregress`'s p-value is the
Student-t test of the slope, from TFP's Student-t CDF, as in scipy.

Edge cases follow scipy: a constant x or y gives r = nan (and p nan); with two
observations r is exactly +-1 and the p-value 1 (pearsonr) or 0/1
(linregress), and fewer than two observations is an error (pearsonr) or nan
(linregress).
"""

import numpy as np
import tensorflow as tf

from probnn.stats import _centering, _common, _results
from probnn.stats.tests import _broadcast_except_axis

PearsonRResult = _results.result_type(
    "PearsonRResult", ("statistic", "pvalue"), __name__, "pearsonr's result: r and its p-value."
)
LinregressResult = _results.result_type(
    "LinregressResult",
    ("slope", "intercept", "rvalue", "pvalue", "stderr", "intercept_stderr"),
    __name__,
    "linregress's result, field for field as scipy's.",
)

_TINY = 1.0e-20  # scipy's guard in linregress's t statistic


def _paired(fname, x, y, axis):
    x, y = _common.to_floats(x, y)
    x, y, ax, ndim = _broadcast_except_axis(fname, x, y, axis)
    if x.shape[ax] != y.shape[ax]:
        raise ValueError(
            f"{fname}: x and y must have the same length along axis {axis}; "
            f"got {x.shape[ax]} and {y.shape[ax]}."
        )
    return x, y, ax, ndim


def _safe(condition, value, safe_value):
    """`value` with entries where `condition` holds replaced before any op that could
    produce nan gradients (the 'double where' trick)."""
    return tf.where(condition, tf.cast(safe_value, value.dtype), value)


def pearsonr(x, y, *, alternative="two-sided", method=None, axis=0):
    """Pearson correlation coefficient and its exact p-value, like `scipy.stats.pearsonr`.

    Args:
        x, y: samples of equal length (at least 2) along `axis`, broadcastable
            in the other dimensions.
        alternative: "two-sided", "less" or "greater".
        method: only None (the exact beta distribution of r under H0).
        axis: axis of the observations; None flattens both.

    Returns:
        `PearsonRResult(statistic, pvalue)`. A constant input gives nan, as
        scipy does (scipy also warns); with n = 2, r is exactly +-1 and p = 1.

    Example:
    >>> r = pearsonr([1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 5.0])
    >>> round(float(r.statistic), 6), round(float(r.pvalue), 6)
    (0.831522, 0.168478)
    """
    _common.check_alternative("pearsonr", alternative)
    if method is not None:
        raise ValueError("pearsonr: only method=None (the exact test) is supported.")
    x, y, ax, _ = _paired("pearsonr", x, y, axis)
    if x.shape[ax] is not None and x.shape[ax] < 2:
        raise ValueError("pearsonr: x and y must have length at least 2 along axis.")
    dtype = x.dtype
    const_x = tf.reduce_max(x, axis=ax) == tf.reduce_min(x, axis=ax)
    const_y = tf.reduce_max(y, axis=ax) == tf.reduce_min(y, axis=ax)
    constant = tf.logical_or(const_x, const_y)
    # r is invariant to shifting and rescaling x and y separately: deviations
    # scaled to (-4, 4) neither underflow (values ~1e-200) nor overflow (~1e200)
    # when squared, and keep their digits under a large offset.
    _, xm, _ = _centering.centered(x, ax)
    _, ym, _ = _centering.centered(y, ax)
    sxx = _safe(constant, tf.reduce_sum(xm * xm, axis=ax), 1.0)
    syy = _safe(constant, tf.reduce_sum(ym * ym, axis=ax), 1.0)
    r = tf.reduce_sum(xm * ym, axis=ax) / (tf.sqrt(sxx) * tf.sqrt(syy))
    r = tf.clip_by_value(r, -1.0, 1.0)
    n = _common.length(x, ax)
    if x.shape[ax] == 2:
        r = tf.where(constant, tf.constant(np.nan, dtype), tf.round(r))
        p = tf.where(constant, r, tf.ones_like(r))
        return PearsonRResult(r, p)
    r = tf.where(constant, tf.constant(np.nan, dtype), r)
    ab = n / 2.0 - 1.0

    def beta_cdf(s):  # CDF of Beta(ab, ab) on (-1, 1), symmetric about 0
        return _common.regularized_beta(ab, ab, (1.0 + s) / 2.0, (1.0 - s) / 2.0)

    p = _common.symmetric_pvalue(r, beta_cdf, alternative)
    return PearsonRResult(r, p)


def linregress(x, y, alternative="two-sided", *, axis=0, keepdims=False):
    """Least-squares line `y = slope x + intercept`, like `scipy.stats.linregress`.

    Args:
        x, y: paired samples of equal length along `axis`.
        alternative: alternative hypothesis for the slope: "two-sided",
            "less" or "greater".
        axis: axis of the observations; None flattens both.
        keepdims: keep the reduced axis with length 1.

    Returns:
        `LinregressResult(slope, intercept, rvalue, pvalue, stderr,
        intercept_stderr)`. As scipy: constant x gives nan r and inf/nan
        slope; n = 2 gives pvalue 0 (or 1 if the two y are equal) and zero
        standard errors; n < 2 gives nan everywhere.

    Example:
    >>> r = linregress([1.0, 2.0, 3.0], [1.0, 3.0, 2.0])
    >>> float(r.slope), float(r.intercept), round(float(r.pvalue), 6)
    (0.5, 1.0, 0.666667)
    """
    _common.check_alternative("linregress", alternative)
    x, y, ax, ndim = _paired("linregress", x, y, axis)
    dtype = x.dtype
    n_static = x.shape[ax]
    # Deviations from the means in units of the scales sx, sy (powers of two),
    # so that no square cancels, overflows or underflows; the moments below
    # are those of the scaled deviations (scipy's ssxm = sx**2 * ssxm etc.).
    xmean, xm, sx = _centering.centered(x, ax)
    ymean, ym, sy = _centering.centered(y, ax)
    xmean, ymean, sx, sy = (tf.squeeze(v, ax) for v in (xmean, ymean, sx, sy))
    ssxm = tf.reduce_mean(xm * xm, axis=ax)
    ssym = tf.reduce_mean(ym * ym, axis=ax)
    ssxym = tf.reduce_mean(xm * ym, axis=ax)
    degenerate = tf.logical_or(tf.equal(ssxm, 0.0), tf.equal(ssym, 0.0))
    nan = tf.constant(np.nan, dtype)
    r = ssxym / tf.sqrt(_safe(degenerate, ssxm * ssym, 1.0))
    r = tf.where(degenerate, tf.where(tf.equal(ssxym, 0.0), nan, tf.zeros_like(r)), r)
    r = tf.clip_by_value(r, -1.0, 1.0)
    scaled_slope = ssxym / ssxm
    slope = scaled_slope * (sy / sx)
    intercept = ymean - slope * xmean
    if n_static is not None and n_static < 2:
        fields = [tf.fill(tf.shape(xmean), nan)] * 6
    elif n_static == 2:
        y0, y1 = tf.gather(y, 0, axis=ax), tf.gather(y, 1, axis=ax)
        p = tf.where(tf.equal(y0, y1), tf.ones_like(r), tf.zeros_like(r))
        zero = tf.zeros_like(r)
        fields = [slope, intercept, r, p, zero, zero]
    else:
        df = _common.length(x, ax) - 2.0
        t = r * tf.sqrt(df / ((1.0 - r + _TINY) * (1.0 + r + _TINY)))
        p = _common.student_t_pvalue(t, df, alternative)
        # scipy's (1 - r**2) * ssym is the mean squared residual; summing the
        # residuals directly avoids the cancellation in 1 - r**2 when |r| ~ 1
        # (float32 would lose digits). nan where r is nan, as scipy.
        residual = ym - tf.expand_dims(scaled_slope, ax) * xm
        mean_sq_residual = tf.where(tf.math.is_nan(r), nan, tf.reduce_mean(residual * residual, axis=ax))
        slope_stderr = tf.sqrt(mean_sq_residual / ssxm / df) * (sy / sx)
        # scipy's slope_stderr * sqrt(ssxm + xmean**2), without squaring sx.
        intercept_stderr = slope_stderr * _centering.hypot(sx * tf.sqrt(ssxm), xmean)
        fields = [slope, intercept, r, p, slope_stderr, intercept_stderr]
    return LinregressResult(*(_common.keep_dims(f, axis, ndim, keepdims) for f in fields))
