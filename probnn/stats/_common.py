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
    if ndim == 0 or not -ndim <= axis < ndim:
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
        raise ValueError(f"{fname}: alternative must be one of {ALTERNATIVES}; got {alternative!r}.")


def check_nan_policy(fname, nan_policy):
    """Only scipy's default 'propagate' is supported (NaNs flow into the result)."""
    if nan_policy != "propagate":
        raise ValueError(f"{fname}: only nan_policy='propagate' is supported; got {nan_policy!r}.")


def sample_size(x, axis):
    """The length of `x` along `axis`, in `x`'s float dtype."""
    return tf.cast(tf.shape(x)[axis], x.dtype)


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


def is_constant(value):
    """True for Python / NumPy scalars: parameters that cannot carry a gradient."""
    return isinstance(value, (int, float, np.number))


def length(x, axis):
    """Sample size along `axis`: a Python float when static, else a tensor of x's dtype.

    A static size keeps the degrees of freedom of a test constant, which
    selects the fast-compiling p-value path below.
    """
    n = x.shape[axis]
    return float(n) if n is not None else sample_size(x, axis)


def regularized_beta(a, b, x, one_minus_x):
    """The regularised incomplete beta function `I_x(a, b)`, accurate in both tails.

    `one_minus_x` is `1 - x` computed accurately by the caller (e.g.
    `t^2 / (df + t^2)` next to `df / (df + t^2)`). Above the mean `a/(a+b)`
    the symmetry `I_x(a, b) = 1 - I_{1-x}(b, a)` is used, as cephes does, but
    with the accurate complement instead of a rounded `1 - x`: in float32 a
    rounded `1 - x` loses most of its digits when `x` is close to 1.

    With constant `a`, `b` (degrees of freedom fixed by the sample sizes) this
    is `tf.math.betainc`, a native kernel that compiles fast under XLA and is
    differentiable in `x`. With tensor `a`, `b` (degrees of freedom computed
    from the data, as in Welch's tests) it is `tfp.math.betainc`, which also
    has gradients in `a` and `b` but is several times slower to XLA-compile.
    """
    constant = is_constant(a) and is_constant(b)
    a = tf.broadcast_to(tf.cast(a, x.dtype), tf.shape(x))
    b = tf.broadcast_to(tf.cast(b, x.dtype), tf.shape(x))
    swap = x > a / (a + b)
    betainc = tf.math.betainc if constant else tfp.math.betainc
    value = betainc(tf.where(swap, b, a), tf.where(swap, a, b), tf.where(swap, one_minus_x, x))
    return tf.where(swap, 1.0 - value, value)


def _student_t_cdf_constant_df(df):
    """Standard Student-t CDF for a constant `df`, from `tf.math.betainc`.

    `P(T <= -|t|) = I_x(df/2, 1/2) / 2` with `x = df / (df + t^2)` (and its
    accurate complement for small |t|, see `regularized_beta`). The gradient
    is the density, supplied directly: the chain rule through `betainc`
    would give `inf * 0` at t = 0.
    """
    df = float(df)

    def cdf(t):
        @tf.custom_gradient
        def _cdf(t):
            t2 = t * t
            # P(T <= -|t|) = I_x(df/2, 1/2) / 2 with x = df / (df + t^2).
            lower_tail = 0.5 * regularized_beta(df / 2, 0.5, df / (df + t2), t2 / (df + t2))
            value = tf.where(t < 0, lower_tail, 1.0 - lower_tail)

            def grad(upstream):
                log_norm = (
                    tf.math.lgamma(tf.constant((df + 1) / 2, t.dtype))
                    - tf.math.lgamma(tf.constant(df / 2, t.dtype))
                    - 0.5 * np.log(df * np.pi)
                )
                return upstream * tf.exp(log_norm - (df + 1) / 2 * tf.math.log1p(t2 / df))

            return value, grad

        return _cdf(t)

    return cdf


def _student_t_cdf_tfp(df):
    """Standard Student-t CDF from TFP, differentiable in `df` too (a tensor)."""

    def cdf(t):
        dist = tfp.distributions.StudentT(
            df=df, loc=tf.zeros_like(df), scale=tf.ones_like(df), validate_args=False
        )
        return dist.cdf(t)

    return cdf


def student_t_pvalue(t, df, alternative):
    """p-value of a t statistic with `df` degrees of freedom.

    A constant `df` (Python number) uses `tf.math.betainc`; a tensor `df`
    (Welch's test) uses `tfp.distributions.StudentT`, whose CDF is also
    differentiable in `df`. Both are exact to float64 rounding.
    """
    if is_constant(df):
        if df <= 0:  # size-1 samples: scipy's p-value is nan
            return tf.fill(tf.shape(t), tf.constant(np.nan, t.dtype))
        return symmetric_pvalue(t, _student_t_cdf_constant_df(df), alternative)
    df = tf.broadcast_to(tf.cast(df, t.dtype), tf.shape(t))
    return symmetric_pvalue(t, _student_t_cdf_tfp(df), alternative)


def f_sf(f, dfn, dfd):
    """Survival function of the F distribution, as a regularised incomplete beta.

    `P(F > f) = I_x(dfd/2, dfn/2)` with `x = dfd / (dfd + dfn f)`: computing
    the upper tail directly keeps small p-values accurate. (TFP 0.25 has no
    F distribution.) Differentiable in `f`, and in the degrees of freedom
    when they are tensors (Welch's ANOVA; see `regularized_beta`).
    """
    if not (is_constant(dfn) and is_constant(dfd)):
        dfn, dfd = tf.cast(dfn, f.dtype), tf.cast(dfd, f.dtype)
    f = tf.where(f < 0, tf.zeros_like(f), f)  # rounding can make a zero F slightly negative
    x = dfd / (dfd + dfn * f)
    y = dfn * f / (dfd + dfn * f)
    y = tf.where(tf.math.is_inf(f), tf.ones_like(y), y)  # inf / inf
    return regularized_beta(dfd / 2.0, dfn / 2.0, x, y)


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
