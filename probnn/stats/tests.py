"""Hypothesis tests: t-tests and one-way ANOVA as differentiable TF ops.

p-values are differentiable with respect to the data. With degrees of
freedom fixed by the sample sizes (Student's tests, the classic F test) they
come from `tf.math.betainc` (fast to XLA-compile; the t CDF's gradient is
its density). With degrees of freedom computed from the data (Welch's t test
and ANOVA) they come from TFP's Student-t CDF and `tfp.math.betainc`, which
are differentiable in the degrees of freedom too, so the gradient also flows
through them; these compile several times slower under XLA. TFP 0.25 has no F
distribution: the F survival function is a regularised incomplete beta.
`alternative` is handled once, in `_common.symmetric_pvalue`.

Edge cases follow scipy: a constant sample gives t = nan (0/0) or +-inf
(different means, zero spread), a sample of size 1 gives nan for
`ttest_1samp`/`ttest_rel` (df = 0), an F test where every group is constant
gives F = inf (or nan if all groups share one value).
"""

import numpy as np
import tensorflow as tf

from probnn.stats import _centering, _common, _results

TtestResult = _results.result_type(
    "TtestResult", ("statistic", "pvalue", "df"), __name__, "A t-test's statistic, p-value and df."
)
F_onewayResult = _results.result_type(
    "F_onewayResult", ("statistic", "pvalue"), __name__, "f_oneway's F statistic and p-value."
)


def _mean_var(a, axis):
    """Mean, unbiased (ddof=1) variance (scipy's `n/(n-1) m2` form) and sample size.

    The callers pass data already shifted and rescaled by `_centering.rescale`
    (every statistic here is invariant to a common shift and scale), so the
    squares neither cancel, overflow nor underflow. The size is a Python float
    when static (see `_common.length`), so the degrees of freedom derived from
    it stay constants.
    """
    mean = tf.reduce_mean(a, axis=axis, keepdims=True)
    m2 = tf.reduce_mean((a - mean) ** 2, axis=axis)
    n = _common.sample_size(a, axis)
    return tf.squeeze(mean, axis), m2 * (n / (n - 1.0)), _common.length(a, axis)


def _t_result(t, df, alternative, axis, ndim, keepdims):
    p = _common.student_t_pvalue(t, df, alternative)
    df = tf.broadcast_to(tf.cast(df, t.dtype), tf.shape(t))
    return TtestResult(*(_common.keep_dims(v, axis, ndim, keepdims) for v in (t, p, df)))


def _check_common(fname, nan_policy, alternative):
    _common.check_nan_policy(fname, nan_policy)
    _common.check_alternative(fname, alternative)


def ttest_1samp(a, popmean, axis=0, nan_policy="propagate", alternative="two-sided", *, keepdims=False):
    """One-sample t-test of H0: the mean of `a` is `popmean`, like `scipy.stats.ttest_1samp`.

    Args:
        a: sample, any shape.
        popmean: hypothesised mean, broadcastable against `a` with `axis` removed.
        axis: axis of the observations; None flattens.
        nan_policy: only "propagate".
        alternative: "two-sided", "less" or "greater".
        keepdims: keep the reduced axis with length 1.

    Returns:
        `TtestResult(statistic, pvalue, df)`. Size-1 samples give nan (df 0);
        a constant sample gives nan (mean equal to popmean) or +-inf.

    Example:
    >>> r = ttest_1samp([1.0, 2.0, 3.0, 4.0], 0.0)
    >>> round(float(r.statistic), 6), round(float(r.pvalue), 6)
    (3.872983, 0.030466)
    >>> ttest_1samp([[1.0, 2.0], [2.0, 3.0], [4.0, 7.0]], 0.0)
    TtestResult(statistic=<shape=(2,) float64: [2.645751, 2.618615]>, pvalue=<shape=(2,) float64: [0.1180829, 0.1201173]>, df=<shape=(2,) float64: [2, 2]>)
    """
    _check_common("ttest_1samp", nan_policy, alternative)
    a, popmean = _common.to_floats(a, popmean)
    ndim = _common.rank("ttest_1samp", a)
    a, ax = _common.check_axis("ttest_1samp", a, axis)
    return _one_sample_t(a, popmean, ax, alternative, axis, ndim, keepdims)


def _one_sample_t(a, popmean, ax, alternative, axis, ndim, keepdims):
    """The one-sample t-test of `a` against `popmean` (also ttest_rel's, on the differences)."""
    # t is invariant to shifting a and popmean together and to rescaling both.
    (a,), c, s = _centering.rescale([a], ax)
    popmean = (popmean - tf.squeeze(c, ax)) / tf.squeeze(s, ax)
    mean, var, n = _mean_var(a, ax)
    t = (mean - popmean) / tf.sqrt(var / n)
    return _t_result(t, n - 1.0, alternative, axis, ndim, keepdims)


def _broadcast_except_axis(fname, a, b, axis):
    """Broadcast `a` and `b` against each other in every dimension but `axis`."""
    ndim = max(_common.rank(fname, a), _common.rank(fname, b))
    a = tf.reshape(a, [1] * (ndim - a.shape.rank) + a.shape.as_list()) if a.shape.rank < ndim else a
    b = tf.reshape(b, [1] * (ndim - b.shape.rank) + b.shape.as_list()) if b.shape.rank < ndim else b
    if axis is None:
        return tf.reshape(a, [-1]), tf.reshape(b, [-1]), 0, ndim
    _, ax = _common.check_axis(fname, a, axis)
    sa, sb = a.shape.as_list(), b.shape.as_list()
    sa_, sb_ = sa[:ax] + sa[ax + 1 :], sb[:ax] + sb[ax + 1 :]
    if sa_ == sb_:  # already aligned (also when batch dimensions are unknown, e.g. in a model)
        return a, b, ax, ndim
    if None in sa_ or None in sb_:
        shape_a, shape_b = tf.shape(a), tf.shape(b)
        batch = tf.broadcast_dynamic_shape(
            tf.concat([shape_a[:ax], shape_a[ax + 1 :]], 0),
            tf.concat([shape_b[:ax], shape_b[ax + 1 :]], 0),
        )
        a = tf.broadcast_to(a, tf.concat([batch[:ax], shape_a[ax : ax + 1], batch[ax:]], 0))
        b = tf.broadcast_to(b, tf.concat([batch[:ax], shape_b[ax : ax + 1], batch[ax:]], 0))
        return a, b, ax, ndim
    try:
        batch = list(np.broadcast_shapes(tuple(sa_), tuple(sb_)))
    except ValueError as err:
        raise ValueError(
            f"{fname}: the inputs must broadcast except along axis {axis}; got shapes {sa} and {sb}."
        ) from err
    a = tf.broadcast_to(a, batch[:ax] + [sa[ax]] + batch[ax:])
    b = tf.broadcast_to(b, batch[:ax] + [sb[ax]] + batch[ax:])
    return a, b, ax, ndim


def ttest_ind(
    a, b, *, axis=0, equal_var=True, nan_policy="propagate", alternative="two-sided", keepdims=False
):
    """Two-sample t-test (Student's, or Welch's if `equal_var=False`), like `scipy.stats.ttest_ind`.

    Args:
        a, b: samples; they may differ in length along `axis` and must
            broadcast in every other dimension.
        axis: axis of the observations; None flattens both.
        equal_var: True for Student's pooled-variance test, False for Welch's.
        nan_policy: only "propagate".
        alternative: "two-sided", "less" or "greater" (mean of a vs b).
        keepdims: keep the reduced axis with length 1.

    Returns:
        `TtestResult(statistic, pvalue, df)`. As scipy: a size-1 sample
        counts as zero variance in the pooled test; Welch's df where both
        variances are zero is set to 1.

    Example:
    >>> r = ttest_ind([1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0])
    >>> round(float(r.statistic), 6), float(r.df)
    (-3.872983, 5.0)
    """
    _check_common("ttest_ind", nan_policy, alternative)
    a, b = _common.to_floats(a, b)
    a, b, ax, ndim = _broadcast_except_axis("ttest_ind", a, b, axis)
    (a, b), _, _ = _centering.rescale([a, b], ax)  # one shift and scale: t and df are invariant
    m1, v1, n1 = _mean_var(a, ax)
    m2, v2, n2 = _mean_var(b, ax)
    if equal_var:
        v1 = tf.where(tf.equal(n1, 1.0), tf.zeros_like(v1), v1)
        v2 = tf.where(tf.equal(n2, 1.0), tf.zeros_like(v2), v2)
        df = n1 + n2 - 2.0
        pooled = ((n1 - 1.0) * v1 + (n2 - 1.0) * v2) / df
        denom = tf.sqrt(pooled * (1.0 / n1 + 1.0 / n2))
    else:
        vn1, vn2 = v1 / n1, v2 / n2
        df = (vn1 + vn2) ** 2 / (vn1**2 / (n1 - 1.0) + vn2**2 / (n2 - 1.0))
        df = tf.where(tf.math.is_nan(df), tf.ones_like(df), df)
        denom = tf.sqrt(vn1 + vn2)
    t = (m1 - m2) / denom
    return _t_result(t, df, alternative, axis, ndim, keepdims)


def ttest_rel(a, b, axis=0, nan_policy="propagate", alternative="two-sided", *, keepdims=False):
    """Paired t-test on `a - b`, like `scipy.stats.ttest_rel`.

    Args:
        a, b: paired samples of the same length along `axis` (otherwise a
            ValueError), broadcastable in the other dimensions.
        axis: axis of the observations; None flattens both.
        nan_policy: only "propagate".
        alternative: "two-sided", "less" or "greater".
        keepdims: keep the reduced axis with length 1.

    Returns:
        `TtestResult(statistic, pvalue, df)`; identical pairs differences
        (all zero) give nan, as scipy does.

    Example:
    >>> r = ttest_rel([1.0, 2.0, 3.0, 4.0], [1.5, 2.0, 3.5, 5.0])
    >>> float(r.df)
    3.0
    """
    _check_common("ttest_rel", nan_policy, alternative)
    a, b = _common.to_floats(a, b)
    a, b, ax, ndim = _broadcast_except_axis("ttest_rel", a, b, axis)
    if a.shape[ax] != b.shape[ax]:
        raise ValueError(
            f"ttest_rel: a and b must have the same length along axis {axis}; "
            f"got {a.shape[ax]} and {b.shape[ax]}."
        )
    return _one_sample_t(a - b, tf.zeros([], a.dtype), ax, alternative, axis, ndim, keepdims)


def f_oneway(*samples, axis=0, equal_var=True):
    """One-way ANOVA F test (or Welch's ANOVA if `equal_var=False`), like `scipy.stats.f_oneway`.

    Args:
        *samples: two or more samples; lengths along `axis` may differ, the
            other dimensions must match.
        axis: axis of the observations; None flattens each sample.
        equal_var: True for the classic F test, False for Welch's.

    Returns:
        `F_onewayResult(statistic, pvalue)`. As scipy: F = inf where every
        group is constant, nan where all groups share one constant value,
        and nan for empty groups or when every group has size 1.

    Example:
    >>> r = f_oneway([1.0, 2.0, 3.0], [2.0, 3.0, 4.0])
    >>> float(r.statistic)
    1.5
    """
    if len(samples) < 2:
        raise TypeError(f"f_oneway: at least two samples are required; got {len(samples)}.")
    if not isinstance(equal_var, bool):
        raise TypeError("f_oneway: equal_var must be a boolean.")
    samples = _common.to_floats(*samples)
    ranks = {_common.rank("f_oneway", s) for s in samples}
    if axis is None:
        samples = [tf.reshape(s, [-1]) for s in samples]
        ax = 0
    else:
        if len(ranks) != 1:
            raise ValueError(f"f_oneway: the samples must have the same rank; got {sorted(ranks)}.")
        ax = _common.check_axis("f_oneway", samples[0], axis)[1]
        batch = [s.shape[:ax] + s.shape[ax + 1 :] for s in samples]
        if any(bs != batch[0] for bs in batch):
            raise ValueError(
                "f_oneway: the samples must have the same shape except along axis "
                f"{axis}; got {[s.shape.as_list() for s in samples]}."
            )
    samples = [_common.moveaxis_last(s, ax) for s in samples]
    lengths = [s.shape[-1] for s in samples]
    alldata = tf.concat(samples, axis=-1)
    dtype = alldata.dtype
    if any(k == 0 for k in lengths) or all(k == 1 for k in lengths):
        nan = tf.fill(tf.shape(alldata)[:-1], tf.constant(np.nan, dtype))
        return F_onewayResult(nan, nan)
    is_const = [tf.reduce_max(s, axis=-1) == tf.reduce_min(s, axis=-1) for s in samples]
    all_const = tf.reduce_all(tf.stack(is_const), axis=0)
    all_same = tf.reduce_max(alldata, axis=-1) == tf.reduce_min(alldata, axis=-1)
    # F is invariant to one common shift and scale of all samples: subtract
    # the first value (the group means then keep every digit on data with a
    # large offset, NIST's SmLs07-09) and rescale to (-2, 2).
    samples, _, _ = _centering.rescale(samples, -1)
    alldata = tf.concat(samples, axis=-1)
    k = len(samples)
    if equal_var:
        # Between- and within-group sums of squares summed directly (not
        # scipy's total-minus-between difference): no cancellation, so a
        # small F keeps its relative accuracy in float32 too.
        bign = float(sum(lengths))
        grand = tf.reduce_mean(alldata, axis=-1)
        ssbn = tf.zeros_like(grand)
        sswn = tf.zeros_like(grand)
        for s, n in zip(samples, lengths):
            mean = tf.reduce_mean(s, axis=-1)
            ssbn = ssbn + float(n) * (mean - grand) ** 2
            sswn = sswn + tf.reduce_sum((s - mean[..., None]) ** 2, axis=-1)
        dfn, dfd = k - 1.0, bign - k
        f = (ssbn / dfn) / (sswn / dfd)
    else:
        y = tf.stack([tf.reduce_mean(s, axis=-1) for s in samples])
        n = tf.reshape(tf.constant(lengths, dtype), [-1] + [1] * (y.shape.rank - 1))
        s2 = tf.stack([_mean_var(s, -1)[1] for s in samples])
        w = n / s2
        sw = tf.reduce_sum(w, axis=0)
        y_hat = tf.reduce_sum(w * y, axis=0) / sw
        numerator = tf.reduce_sum(w * (y - y_hat) ** 2, axis=0) / (k - 1.0)
        lam = tf.reduce_sum((1.0 / (n - 1.0)) * (1.0 - w / sw) ** 2, axis=0)
        f = numerator / (1.0 + 2.0 * (k - 2.0) / (k**2 - 1.0) * lam)
        dfn, dfd = k - 1.0, (k**2 - 1.0) / (3.0 * lam)
    f = tf.where(all_const, tf.constant(np.inf, dtype), f)
    f = tf.where(all_same, tf.constant(np.nan, dtype), f)
    return F_onewayResult(f, _common.f_sf(f, dfn, dfd))
