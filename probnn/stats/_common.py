"""Helpers shared by every `probnn.stats` module.

Input checking at the boundary (axis, alternative, nan_policy), dtype
promotion like scipy's (integers and booleans become float64, float32 stays
float32, mixed float widths become float64), and the p-value of a statistic
whose null distribution is symmetric about zero (written once, used by every
test).
"""

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

ALTERNATIVES = ("two-sided", "less", "greater")


def _strong_dtype(value):
    """The dtype a value insists on, or None for Python scalars (which adapt)."""
    if isinstance(value, (bool, int, float)):
        return None
    if isinstance(value, (tf.Tensor, tf.Variable, np.ndarray, np.generic)):
        return tf.as_dtype(value.dtype)
    return tf.as_dtype(np.asarray(value).dtype)


def float_dtype(*values):
    """The float dtype scipy would compute in for these inputs.

    float32 only when every array input is float32 (or float16/bfloat16, which
    are computed in float32); float64 otherwise, including for integer or
    boolean input (scipy casts those to float64) and for Python scalars alone.
    """
    dtypes = [d for d in (_strong_dtype(v) for v in values) if d is not None]
    if dtypes and all(d in (tf.float32, tf.float16, tf.bfloat16) for d in dtypes):
        return tf.float32
    return tf.float64


def as_float(value, dtype):
    """`value` as a tensor of float `dtype` (ints and bools are cast, like scipy)."""
    if isinstance(value, (tf.Tensor, tf.Variable)):
        return tf.cast(value, dtype) if value.dtype != dtype else value
    return tf.convert_to_tensor(np.asarray(value).astype(dtype.as_numpy_dtype))


def to_floats(*values):
    """Every value as a tensor of the common float dtype of all of them."""
    dtype = float_dtype(*values)
    return tuple(as_float(v, dtype) for v in values)


def rank(fname, x):
    """The static rank of `x`; a ValueError naming `fname` if it is unknown."""
    if x.shape.rank is None:
        raise ValueError(f"{fname}: the rank of the input must be known statically.")
    return x.shape.rank


def check_axis(fname, x, axis):
    """Validate `axis` for `x`; returns `(x, axis)` with a non-negative int axis.

    `axis=None` flattens `x` and uses axis 0, as scipy does. An axis outside
    `[-rank, rank)` raises a ValueError naming the function.
    """
    ndim = rank(fname, x)
    if axis is None:
        return tf.reshape(x, [-1]), 0
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise ValueError(f"{fname}: axis must be an integer or None; got {axis!r}.")
    if not -ndim <= axis < max(ndim, 1) or ndim == 0:
        raise ValueError(
            f"{fname}: axis {axis} is out of range for an input of rank {ndim}; "
            f"expected an integer in [{-ndim}, {ndim})."
        )
    return x, int(axis) % ndim


def keep_dims(result, axis, ndim, keepdims):
    """Put back the reduced axis (length 1) when `keepdims` is true.

    `axis=None` with keepdims gives a result of rank `ndim` with every
    dimension 1, as numpy and scipy do.
    """
    if not keepdims:
        return result
    if axis is None:
        return tf.reshape(result, [1] * ndim)
    return tf.expand_dims(result, axis % ndim)


def check_alternative(fname, alternative):
    if alternative not in ALTERNATIVES:
        raise ValueError(
            f"{fname}: alternative must be one of {ALTERNATIVES}; got {alternative!r}."
        )


def check_nan_policy(fname, nan_policy):
    """Only scipy's default 'propagate' is supported (NaNs flow into the result)."""
    if nan_policy != "propagate":
        raise ValueError(
            f"{fname}: only nan_policy='propagate' is supported; got {nan_policy!r}."
        )


def sample_size(x, axis):
    """The length of `x` along `axis`, in `x`'s float dtype."""
    return tf.cast(tf.shape(x)[axis], x.dtype)


def static_length(x, axis):
    """The static length along `axis`, or None if unknown."""
    return x.shape[axis]


def symmetric_pvalue(statistic, cdf, alternative):
    """The p-value of `statistic` under a null distribution symmetric about 0.

    `cdf` is the null CDF. Every tail is computed as a CDF at a non-positive
    point when that matters (two-sided: `2 * cdf(-|s|)`, greater:
    `cdf(-s)`), which keeps small p-values accurate instead of computing
    `1 - cdf` and losing them to cancellation.
    """
    if alternative == "less":
        return cdf(statistic)
    if alternative == "greater":
        return cdf(-statistic)
    return 2.0 * cdf(-tf.abs(statistic))


def student_t_cdf(df):
    """The CDF of a standard Student-t with `df` degrees of freedom (TFP)."""

    def cdf(t):
        dist = tfp.distributions.StudentT(
            df=df, loc=tf.zeros_like(df), scale=tf.ones_like(df), validate_args=False
        )
        return dist.cdf(t)

    return cdf


def student_t_pvalue(t, df, alternative):
    """p-value of a t statistic with `df` degrees of freedom."""
    df = tf.broadcast_to(tf.cast(df, t.dtype), tf.shape(t))
    return symmetric_pvalue(t, student_t_cdf(df), alternative)


def f_sf(f, dfn, dfd):
    """Survival function of the F distribution, as a regularised incomplete beta.

    `P(F > f) = I_x(dfd/2, dfn/2)` with `x = dfd / (dfd + dfn f)`: computing
    the upper tail directly keeps small p-values accurate. (TFP 0.25 has no
    F distribution.) `tfp.math.betainc` has gradients in `x` and in the
    parameters, so this is differentiable in `f` and in the degrees of
    freedom (which depend on the data in Welch's ANOVA).
    """
    dfn = tf.cast(dfn, f.dtype)
    dfd = tf.cast(dfd, f.dtype)
    x = dfd / (dfd + dfn * f)
    x = tf.where(tf.math.is_nan(x), x, tf.clip_by_value(x, 0.0, 1.0))
    dfn = tf.broadcast_to(dfn, tf.shape(f))
    dfd = tf.broadcast_to(dfd, tf.shape(f))
    return tfp.math.betainc(dfd / 2.0, dfn / 2.0, x)


def moveaxis_last(x, axis):
    """Transpose `x` so that `axis` (non-negative) is the last dimension."""
    ndim = x.shape.rank
    if axis == ndim - 1:
        return x
    perm = [d for d in range(ndim) if d != axis] + [axis]
    return tf.transpose(x, perm)


def moveaxis_from_last(x, axis):
    """Inverse of `moveaxis_last`: put the last dimension back at `axis`."""
    ndim = x.shape.rank
    if axis == ndim - 1:
        return x
    perm = list(range(ndim - 1))
    perm.insert(axis, ndim - 1)
    return tf.transpose(x, perm)
