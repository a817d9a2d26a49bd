"""Descriptive statistics: scipy.stats's moments, means, spread and quantiles as TF ops.

Every function reduces along `axis` (default 0, like scipy; `None` flattens),
works on any leading shape, keeps float32 as float32, computes integer input in
float64 (like scipy), runs eagerly and under `tf.function(jit_compile=True)`,
and is differentiable with respect to its input. Quantile-based statistics
(`median`, `quantile`, `iqr`) sort, so their gradient is the sub-gradient that
flows to the order statistics they interpolate between.

Edge cases follow scipy: a constant sample has nan skewness and kurtosis
(scipy's test `m2 <= (eps * mean)**2`), nan z-scores, and a sample of size 1
has nan variance with `ddof=1` (0 / 0).
"""

import numpy as np
import tensorflow as tf

from probnn.stats import _centering, _common, _results, _sorting

DescribeResult = _results.result_type(
    "DescribeResult",
    ("nobs", "minmax", "mean", "variance", "skewness", "kurtosis"),
    __name__,
    "describe's result, field for field as scipy's.",
)


def _prepare(fname, a, axis):
    (a,) = _common.to_floats(a)
    ndim = _common.rank(fname, a)
    a, ax = _common.check_axis(fname, a, axis)
    return a, ax, ndim


def _central_moment(a, order, axis, center):
    """`mean((a - center) ** order)` along `axis`; `center` has kept dims (and keeps its gradient).

    Computed as `s**order * mean(((a - center) / s) ** order)` with `s` a power
    of two near `max|a - center|`, so the powers neither overflow nor underflow.
    """
    (z,), _, s = _centering.rescale([a], axis, shift=center)
    return tf.squeeze(s, axis) ** order * tf.reduce_mean(z**order, axis=axis)


def _shape_moments(a, axis, orders):
    """Central moments shared by skew, kurtosis and describe, from one pass of deviations.

    Returns a dict: the mean, the scale `s`, the scaled moments `2` (and `3` /
    `4` if in `orders`) of `d = (a - mean) / s` (the moment of `a` is
    `s**k` times them; the ratios skewness and kurtosis need no `s`), and
    scipy's 'numerically constant' flag `m2 <= (eps * mean)**2`, evaluated in
    units of `s` so that it does not under- or overflow.
    """
    mean, d, s = _centering.centered(a, axis)
    d2 = d * d
    m = {2: tf.reduce_mean(d2, axis=axis)}
    if 3 in orders:
        m[3] = tf.reduce_mean(d2 * d, axis=axis)
    if 4 in orders:
        m[4] = tf.reduce_mean(d2 * d2, axis=axis)
    eps = np.finfo(a.dtype.as_numpy_dtype).eps
    mean, s = tf.squeeze(mean, axis=axis), tf.squeeze(s, axis=axis)
    m["mean"], m["scale"] = mean, s
    m["constant"] = tf.sqrt(m[2]) <= tf.abs(eps * (mean / s))
    return m


def _skew_from(m, n, bias):
    """scipy's skewness from shared moments (nan where constant; correction where n > 2)."""
    m2, m3, constant = m[2], m[3], m["constant"]
    vals = tf.where(constant, tf.constant(np.nan, m2.dtype), m3 / m2**1.5)
    if not bias:
        corrected = tf.sqrt((n - 1.0) * n) / (n - 2.0) * m3 / m2**1.5
        vals = tf.where(tf.logical_and(~constant, n > 2.0), corrected, vals)
    return vals


def _kurtosis_from(m, n, fisher, bias):
    """scipy's kurtosis from shared moments (nan where constant; correction where n > 3)."""
    m2, m4, constant = m[2], m[4], m["constant"]
    vals = tf.where(constant, tf.constant(np.nan, m2.dtype), m4 / m2**2)
    if not bias:
        corrected = 1.0 / (n - 2) / (n - 3) * ((n**2 - 1.0) * m4 / m2**2 - 3 * (n - 1) ** 2) + 3.0
        vals = tf.where(tf.logical_and(~constant, n > 3.0), corrected, vals)
    return vals - 3.0 if fisher else vals


def _mean_std(a, axis, ddof):
    """The mean and scipy's standard deviation `sqrt(m2 * n / (n - ddof))` (kept dims).

    Also returns the scaled deviations `d` and the scaled std `std / s`, for
    callers that divide by the std (`zscore`) and need no `s` at all.
    """
    mean, d, s = _centering.centered(a, axis)
    m2 = tf.reduce_mean(d * d, axis=axis, keepdims=True)
    if ddof:
        n = _common.sample_size(a, axis)
        m2 = m2 * (n / (n - ddof))
    scaled_std = tf.sqrt(m2)
    return mean, s * scaled_std, d, scaled_std, s


def moment(a, order=1, axis=0, nan_policy="propagate", *, center=None, keepdims=False):
    """Central moment of a sample (about `center`, by default the mean), like `scipy.stats.moment`.

    Args:
        a: sample, any shape.
        order: non-negative integer order. Order 0 is 1 and order 1 about the
            mean is exactly 0, as in scipy.
        axis: axis along which to compute; None flattens.
        nan_policy: only "propagate".
        center: the point the moment is taken about (broadcastable against
            `a` with the axis removed); None means the sample mean.
        keepdims: keep the reduced axis with length 1.

    Returns:
        Tensor with `axis` removed.

    Example:
    >>> float(moment([1.0, 2.0, 3.0, 4.0], order=2))
    1.25
    """
    _common.check_nan_policy("moment", nan_policy)
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 0:
        raise ValueError(f"moment: order must be a non-negative integer; got {order!r}.")
    if center is None:
        a, ax, ndim = _prepare("moment", a, axis)
    else:
        a, center = _common.to_floats(a, center)
        ndim = _common.rank("moment", a)
        a, ax = _common.check_axis("moment", a, axis)
    if order == 0 or (order == 1 and center is None):
        value = 1.0 if order == 0 else 0.0
        result = tf.fill(tf.shape(tf.reduce_sum(a, axis=ax)), tf.constant(value, a.dtype))
        result = result + 0.0 * tf.reduce_sum(a, axis=ax)  # keep a (zero) gradient path
    else:
        if center is None:
            _, d, s = _centering.centered(a, ax)
            result = tf.squeeze(s, ax) ** order * tf.reduce_mean(d**order, axis=ax)
        else:
            center = tf.expand_dims(center, ax) if center.shape.rank else center
            result = _central_moment(a, order, ax, center)
    return _common.keep_dims(result, axis, ndim, keepdims)


def skew(a, axis=0, bias=True, nan_policy="propagate", *, keepdims=False):
    """Sample skewness `m3 / m2**1.5`, like `scipy.stats.skew`.

    Args:
        a: sample, any shape.
        axis: axis along which to compute; None flattens.
        bias: if False, apply the adjusted Fisher-Pearson correction
            `sqrt(n (n-1)) / (n-2)` (only where `n > 2`, as scipy does).
        nan_policy: only "propagate".
        keepdims: keep the reduced axis with length 1.

    Returns:
        Tensor with `axis` removed. nan for a (numerically) constant sample,
        exactly where scipy gives nan.

    Example:
    >>> round(float(skew([2.0, 8.0, 0.0, 4.0, 1.0, 9.0, 9.0, 0.0])), 6)
    0.265055
    """
    _common.check_nan_policy("skew", nan_policy)
    a, ax, ndim = _prepare("skew", a, axis)
    vals = _skew_from(_shape_moments(a, ax, (3,)), _common.sample_size(a, ax), bias)
    return _common.keep_dims(vals, axis, ndim, keepdims)


def kurtosis(a, axis=0, fisher=True, bias=True, nan_policy="propagate", *, keepdims=False):
    """Sample kurtosis `m4 / m2**2` (minus 3 if `fisher`), like `scipy.stats.kurtosis`.

    Args:
        a: sample, any shape.
        axis: axis along which to compute; None flattens.
        fisher: if True (default) return excess kurtosis (normal -> 0.0).
        bias: if False, apply the unbiased-estimator correction (only where
            `n > 3`, as scipy does).
        nan_policy: only "propagate".
        keepdims: keep the reduced axis with length 1.

    Returns:
        Tensor with `axis` removed; nan for a (numerically) constant sample.

    Example:
    >>> float(kurtosis([1.0, 2.0, 3.0, 4.0], fisher=False))
    1.64
    """
    _common.check_nan_policy("kurtosis", nan_policy)
    a, ax, ndim = _prepare("kurtosis", a, axis)
    vals = _kurtosis_from(_shape_moments(a, ax, (4,)), _common.sample_size(a, ax), fisher, bias)
    return _common.keep_dims(vals, axis, ndim, keepdims)


def describe(a, axis=0, ddof=1, bias=True, nan_policy="propagate"):
    """Several descriptive statistics at once, like `scipy.stats.describe`.

    Args:
        a: sample, any shape (must not be empty).
        axis: axis along which to compute; None flattens.
        ddof: delta degrees of freedom of the variance (default 1).
        bias: passed to `skew` and `kurtosis`.
        nan_policy: only "propagate".

    Returns:
        `DescribeResult(nobs, minmax, mean, variance, skewness, kurtosis)`;
        `nobs` is a Python int (an int64 tensor if the length along `axis`
        is only known at run time), `minmax` a `(min, max)` tuple and
        kurtosis is Fisher's (excess), as in scipy.

    Example:
    >>> r = describe([[1.0, 2.0], [3.0, 5.0], [5.0, 8.0]])
    >>> r.mean.numpy().tolist(), r.variance.numpy().tolist()
    ([3.0, 5.0], [4.0, 9.0])
    >>> describe([1.0, 2.0, 3.0, 6.0])
    DescribeResult(nobs=4, minmax=(1.0, 6.0), mean=3.0, variance=4.666666666666666, skewness=0.6872431934890912, kurtosis=-1.0)
    """
    _common.check_nan_policy("describe", nan_policy)
    a, ax, _ = _prepare("describe", a, axis)
    if a.shape.num_elements() == 0:
        raise ValueError("describe: the input must not be empty.")
    # A Python int, as scipy's, when the length is static; else an int64 tensor.
    nobs = a.shape[ax] if a.shape[ax] is not None else tf.shape(a, out_type=tf.int64)[ax]
    minmax = (tf.reduce_min(a, axis=ax), tf.reduce_max(a, axis=ax))
    n = _common.sample_size(a, ax)
    m = _shape_moments(a, ax, (3, 4))  # one pass of deviations for all three
    variance = m["scale"] ** 2 * m[2]
    variance = variance if ddof == 0 else variance * (n / (n - ddof))  # scipy's _var
    return DescribeResult(
        nobs, minmax, m["mean"], variance, _skew_from(m, n, bias), _kurtosis_from(m, n, True, bias)
    )


def sem(a, axis=0, ddof=1, nan_policy="propagate", *, keepdims=False):
    """Standard error of the mean, `std(ddof) / sqrt(n)`, like `scipy.stats.sem`.

    Args:
        a: sample, any shape.
        axis: axis along which to compute; None flattens.
        ddof: delta degrees of freedom (default 1). A sample of size 1 gives nan.
        nan_policy: only "propagate".
        keepdims: keep the reduced axis with length 1.

    Returns:
        Tensor with `axis` removed.

    Example:
    >>> round(float(sem([1.0, 2.0, 3.0, 4.0])), 6)
    0.645497
    """
    _common.check_nan_policy("sem", nan_policy)
    a, ax, ndim = _prepare("sem", a, axis)
    n = _common.sample_size(a, ax)
    result = tf.squeeze(_mean_std(a, ax, ddof)[1], ax) / tf.sqrt(n)
    return _common.keep_dims(result, axis, ndim, keepdims)


def zscore(a, axis=0, ddof=0, nan_policy="propagate"):
    """Standardise a sample: `(a - mean) / std(ddof)`, like `scipy.stats.zscore`.

    Args:
        a: sample, any shape.
        axis: axis along which mean and std are computed; None uses all values.
        ddof: delta degrees of freedom of the std.
        nan_policy: only "propagate".

    Returns:
        Tensor shaped like `a`; nan across a (numerically) constant slice, as
        scipy gives (`std <= |eps * mean|`).

    Example:
    >>> zscore([1.0, 2.0, 3.0]).numpy().round(4).tolist()
    [-1.2247, 0.0, 1.2247]
    """
    _common.check_nan_policy("zscore", nan_policy)
    (a,) = _common.to_floats(a)
    shape = tf.shape(a)
    flat, ax, _ = _prepare("zscore", a, axis)
    mean, _, d, scaled_std, s = _mean_std(flat, ax, ddof)
    eps = np.finfo(flat.dtype.as_numpy_dtype).eps
    constant = scaled_std <= tf.abs(eps * (mean / s))  # scipy's std <= |eps * mean|, in units of s
    z = tf.where(constant, tf.constant(np.nan, flat.dtype), d / scaled_std)
    return tf.reshape(z, shape) if axis is None else z


def variation(a, axis=0, nan_policy="propagate", ddof=0, *, keepdims=False):
    """Coefficient of variation `std(ddof) / mean`, like `scipy.stats.variation`.

    Args:
        a: sample, any shape.
        axis: axis along which to compute; None flattens.
        nan_policy: only "propagate".
        ddof: delta degrees of freedom of the std.
        keepdims: keep the reduced axis with length 1.

    Returns:
        Tensor with `axis` removed. As in scipy: a zero mean gives +-inf (or
        nan for a constant zero sample), and `ddof == n` gives +-inf with
        the sign of the mean where the std is positive, else nan.

    Example:
    >>> round(float(variation([1.0, 2.0, 3.0, 4.0, 5.0])), 6)
    0.471405
    """
    _common.check_nan_policy("variation", nan_policy)
    a, ax, ndim = _prepare("variation", a, axis)
    n = _common.sample_size(a, ax)
    mean, std = (tf.squeeze(v, ax) for v in _mean_std(a, ax, 0)[:2])
    result = std * tf.sqrt(n / (n - ddof)) / mean
    inf = tf.constant(np.inf, a.dtype)
    signed_inf = tf.where(mean < 0, -inf, inf)
    special = tf.where(std > 0, signed_inf, tf.constant(np.nan, a.dtype))
    result = tf.where(tf.equal(n, float(ddof)), special, result)
    return _common.keep_dims(result, axis, ndim, keepdims)


def _weighted_mean(values, weights, axis):
    if weights is None:
        return tf.reduce_mean(values, axis=axis)
    weights = tf.broadcast_to(weights, tf.shape(values))
    return tf.reduce_sum(values * weights, axis=axis) / tf.reduce_sum(weights, axis=axis)


def _means_prepare(fname, a, axis, dtype, weights):
    if dtype is not None:
        a = tf.cast(a, dtype) if isinstance(a, tf.Tensor) else np.asarray(a, dtype=dtype)
    if weights is None:
        (a,) = _common.to_floats(a)
    else:
        a, weights = _common.to_floats(a, weights)
        weights = tf.broadcast_to(weights, tf.shape(a))
    ndim = _common.rank(fname, a)
    if axis is None and weights is not None:
        weights = tf.reshape(weights, [-1])
    a, ax = _common.check_axis(fname, a, axis)
    return a, ax, ndim, weights


def gmean(a, axis=0, dtype=None, weights=None, *, keepdims=False):
    """Weighted geometric mean `exp(mean(log a))`, like `scipy.stats.gmean`.

    Args:
        a: non-negative sample, any shape (a zero gives 0; a negative value nan).
        axis: axis along which to compute; None flattens.
        dtype: cast `a` to this dtype first.
        weights: optional weights broadcastable against `a`.
        keepdims: keep the reduced axis with length 1.

    Returns:
        Tensor with `axis` removed.

    Example:
    >>> float(gmean([1.0, 4.0]))
    2.0
    """
    a, ax, ndim, weights = _means_prepare("gmean", a, axis, dtype, weights)
    result = tf.exp(_weighted_mean(tf.math.log(a), weights, ax))
    return _common.keep_dims(result, axis, ndim, keepdims)


def hmean(a, axis=0, dtype=None, *, weights=None, keepdims=False):
    """Weighted harmonic mean `1 / mean(1 / a)`, like `scipy.stats.hmean`.

    Args:
        a: non-negative sample, any shape. As in scipy, a zero gives 0 and a
            slice containing a negative value gives nan (scipy also warns).
        axis: axis along which to compute; None flattens.
        dtype: cast `a` to this dtype first.
        weights: optional weights broadcastable against `a`.
        keepdims: keep the reduced axis with length 1.

    Returns:
        Tensor with `axis` removed.

    Example:
    >>> float(hmean([1.0, 4.0]))
    1.6
    """
    a, ax, ndim, weights = _means_prepare("hmean", a, axis, dtype, weights)
    a = tf.where(a < 0, tf.constant(np.nan, a.dtype), a)
    # hmean(a) = m * hmean(a / m) with m a power of two at the smallest value:
    # m / a lies in (0, 2), so tiny (subnormal) values do not overflow 1 / a.
    m = _centering.power_of_two_scale(tf.reduce_min(a, axis=ax, keepdims=True))
    result = tf.squeeze(m, ax) / _weighted_mean(m / a, weights, ax)
    return _common.keep_dims(result, axis, ndim, keepdims)


def _sorted_quantiles(sorted_last, p):
    """Linear-interpolation quantiles of samples sorted along the last axis.

    numpy's default method: virtual index `h = (n - 1) p`, interpolating
    between the order statistics `floor(h)` and `floor(h) + 1` with numpy's
    own two-sided lerp formula. `p` is a 1-D tensor; the result has a last
    axis of length `len(p)`.
    """
    dtype = sorted_last.dtype
    n = tf.shape(sorted_last)[-1]
    h = tf.cast(n - 1, dtype) * p
    lo = tf.floor(h)
    gamma = h - lo
    lo_i = tf.cast(lo, tf.int32)
    hi_i = tf.minimum(lo_i + 1, n - 1)
    below = tf.gather(sorted_last, lo_i, axis=-1)
    above = tf.gather(sorted_last, hi_i, axis=-1)
    diff = above - below
    return tf.where(gamma >= 0.5, above - diff * (1.0 - gamma), below + diff * gamma)


def _static_quantiles(x_last, p):
    """The quantiles at static probabilities `p` (NumPy), as a list of tensors (one per p).

    The interpolation indices and weights are computed in NumPy (in the data's
    dtype, as `_sorted_quantiles` does), so only the order statistics that are
    used are computed (`_sorting.order_statistics`: a median of 50 values needs
    2 of them, not a full sort), and the result is combined elementwise.
    """
    dtype = x_last.dtype.as_numpy_dtype
    n = x_last.shape[-1]
    h = dtype(n - 1) * p.astype(dtype)
    lo = np.floor(h)
    gamma = h - lo
    lo_i = lo.astype(np.int64)
    hi_i = np.minimum(lo_i + 1, n - 1)
    ranks = sorted(set(lo_i.tolist()) | set(hi_i.tolist()))
    stats = dict(zip(ranks, _sorting.order_statistics(x_last, ranks)))
    quantiles = []
    for lo_r, hi_r, g in zip(lo_i.tolist(), hi_i.tolist(), gamma):
        below, above = stats[lo_r], stats[hi_r]
        diff = above - below
        quantiles.append(above - diff * (1.0 - g) if g >= 0.5 else below + diff * g)
    return quantiles


def _quantiles(fname, x, p, axis, keepdims):
    """Quantiles of `x` at 1-D or scalar `p` along `axis`; shared by quantile/median/iqr."""
    (x,) = _common.to_floats(x)
    ndim = _common.rank(fname, x)
    x, ax = _common.check_axis(fname, x, axis)
    if x.shape[ax] == 0:
        raise ValueError(f"{fname}: the input must not be empty along axis.")
    p_arr = np.asarray(p, dtype=np.float64) if not isinstance(p, tf.Tensor) else None
    if p_arr is not None and (np.any(p_arr < 0) or np.any(p_arr > 1)):
        raise ValueError(f"{fname}: probabilities must be in [0, 1]; got {p_arr}.")
    p_t = tf.cast(tf.convert_to_tensor(p_arr if p_arr is not None else p), x.dtype)
    scalar = p_t.shape.rank == 0
    if p_t.shape.rank not in (0, 1):
        raise ValueError(f"{fname}: p must be a scalar or 1-D; got shape {p_t.shape}.")
    x_last = _common.moveaxis_last(x, ax)
    n = x_last.shape[-1]
    if scalar and p_arr is not None and n is not None:  # median: two order statistics
        q = _static_quantiles(x_last, np.reshape(p_arr, [-1]))[0]
        return _common.keep_dims(q, axis, ndim, keepdims)
    q = _sorted_quantiles(tf.sort(x_last, axis=-1), tf.reshape(p_t, [-1]))
    if scalar:
        q = q[..., 0]
        return _common.keep_dims(q, axis, ndim, keepdims)
    if axis is None:
        return tf.reshape(q, [1] * (ndim - 1) + [-1]) if keepdims else q
    return _common.moveaxis_from_last(q, ax)


def quantile(x, p, *, method="linear", axis=0, nan_policy="propagate", keepdims=None):
    """Sample quantiles with linear interpolation, like `scipy.stats.quantile`.

    Sort-based: the gradient flows to the two order statistics each quantile
    interpolates between (a sub-gradient where values tie).

    Args:
        x: sample, any shape.
        p: probability in [0, 1], or a 1-D sequence of them.
        method: only "linear" (numpy's and scipy's default).
        axis: axis along which to compute; None flattens.
        nan_policy: only "propagate".
        keepdims: for scalar `p`, keep the reduced axis with length 1. For
            1-D `p` the axis is always kept and has length `len(p)` (scipy's
            result when `p` is shaped to broadcast against `x`).

    Returns:
        Tensor: `axis` removed for scalar `p`, replaced by `len(p)` otherwise.

    Example:
    >>> quantile([1.0, 2.0, 3.0, 4.0], [0.25, 0.5]).numpy().tolist()
    [1.75, 2.5]
    """
    _common.check_nan_policy("quantile", nan_policy)
    if method != "linear":
        raise ValueError(f"quantile: only method='linear' is supported; got {method!r}.")
    return _quantiles("quantile", x, p, axis, bool(keepdims))


def median(a, axis=0, *, keepdims=False):
    """Sample median (linear interpolation between the middle values).

    Note the default `axis=0`, like the rest of `probnn.stats` and
    `scipy.stats`; `numpy.median`'s default is `axis=None`.

    Args:
        a: sample, any shape.
        axis: axis along which to compute; None flattens.
        keepdims: keep the reduced axis with length 1.

    Returns:
        Tensor with `axis` removed.

    Example:
    >>> float(median([3.0, 1.0, 4.0, 2.0]))
    2.5
    """
    return _quantiles("median", a, 0.5, axis, keepdims)


_NORMAL_IQR = 1.3489795003921634  # 2 * sqrt(2) * erfinv(1/2), scipy's 'normal' scale


def iqr(
    x, axis=None, rng=(25, 75), scale=1.0, nan_policy="propagate", interpolation="linear", keepdims=False
):
    """Interquartile range (or any percentile range), like `scipy.stats.iqr`.

    Note scipy's default `axis=None` (all values), kept here.

    Args:
        x: sample, any shape.
        axis: axis along which to compute; None (default) flattens.
        rng: the two percentiles, in [0, 100].
        scale: a divisor, or "normal" for the normal-consistent 1.349.
        nan_policy: only "propagate".
        interpolation: only "linear".
        keepdims: keep the reduced axis with length 1.

    Returns:
        Tensor with `axis` removed.

    Example:
    >>> float(iqr([1.0, 2.0, 3.0, 4.0]))
    1.5
    """
    _common.check_nan_policy("iqr", nan_policy)
    if interpolation != "linear":
        raise ValueError(f"iqr: only interpolation='linear' is supported; got {interpolation!r}.")
    if len(rng) != 2:
        raise ValueError(f"iqr: rng must be a pair of percentiles; got {rng!r}.")
    if scale == "normal":
        scale = _NORMAL_IQR
    elif isinstance(scale, str):
        raise ValueError(f"iqr: scale must be a number or 'normal'; got {scale!r}.")
    lo, hi = sorted(rng)
    if not 0 <= lo <= hi <= 100:
        raise ValueError(f"iqr: rng must be percentiles in [0, 100]; got {rng!r}.")
    (x,) = _common.to_floats(x)
    ndim = _common.rank("iqr", x)
    x, ax = _common.check_axis("iqr", x, axis)
    if x.shape[ax] == 0:
        raise ValueError("iqr: the input must not be empty along axis.")
    x_last = _common.moveaxis_last(x, ax)
    if x_last.shape[-1] is not None:  # the four order statistics needed, combined elementwise
        q_lo, q_hi = _static_quantiles(x_last, np.array([lo / 100.0, hi / 100.0]))
    else:
        q = _sorted_quantiles(tf.sort(x_last, axis=-1), tf.constant([lo / 100.0, hi / 100.0], x.dtype))
        q_lo, q_hi = q[..., 0], q[..., 1]
    result = (q_hi - q_lo) / scale
    return _common.keep_dims(result, axis, ndim, keepdims)
