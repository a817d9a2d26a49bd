"""Closed forms and estimators of the continuous ranked probability score, elementwise.

`CRPS(F, y) = ∫ (F(z) - 1{z >= y})² dz = E|X - y| - ½ E|X - X'|` for X, X'
independent draws from F. Lower is better; it has the units of y. These
functions take parameters and targets of one broadcast shape and return the
score per element, in TF ops (differentiable, usable as training losses);
`probnn.metrics.crps` picks the right one for a distribution.
"""

import math

import tensorflow as tf


def _std_normal_terms(z):
    pdf = tf.exp(-0.5 * tf.square(z)) / math.sqrt(2 * math.pi)
    cdf = 0.5 * tf.math.erfc(-z / math.sqrt(2.0))
    return pdf, cdf


def crps_normal(loc, scale, y):
    """CRPS of Normal(loc, scale) at y: `σ [z (2Φ(z) - 1) + 2φ(z) - 1/√π]`, z = (y - loc)/σ.

    (Gneiting and Raftery 2007, eq. 21.)

    Example:
    >>> import numpy as np
    >>> round(float(crps_normal(np.float64(0.0), np.float64(1.0), np.float64(0.0))), 6)
    0.233695
    """
    loc, scale, y = _as_float(loc, scale, y)
    z = (y - loc) / scale
    pdf, cdf = _std_normal_terms(z)
    return scale * (z * (2 * cdf - 1) + 2 * pdf - 1 / math.sqrt(math.pi))


def crps_student_t(df, loc, scale, y):
    """CRPS of a Student-t with `df > 1` degrees of freedom (Jordan, Krüger and Lerch 2019).

    `σ [z (2F(z) - 1) + 2 f(z) (ν + z²)/(ν - 1) - 2√ν B(½, ν - ½) / ((ν - 1) B(½, ν/2)²)]`
    with z = (y - loc)/σ and F, f the standard t CDF and density. For `df <= 1`
    the mean does not exist and neither does the CRPS: the result is NaN.

    Example:
    >>> import numpy as np
    >>> round(float(crps_student_t(np.float64(5.0), 0.0, 1.0, 0.0)), 6)
    0.257025
    """
    df, loc, scale, y = _as_float(df, loc, scale, y)
    z = (y - loc) / scale
    # The standard t's CDF and density, from the regularised incomplete beta function.
    t2 = tf.square(z)
    tail = 0.5 * tf.math.betainc(0.5 * df, 0.5 * tf.ones_like(df), df / (df + t2))
    cdf = tf.where(z > 0, 1 - tail, tail)
    log_pdf = (
        tf.math.lgamma(0.5 * (df + 1))
        - tf.math.lgamma(0.5 * df)
        - 0.5 * tf.math.log(df * math.pi)
        - 0.5 * (df + 1) * tf.math.log1p(t2 / df)
    )
    pdf = tf.exp(log_pdf)
    half = tf.constant(0.5, df.dtype)

    def log_beta(a, b):
        return tf.math.lgamma(a) + tf.math.lgamma(b) - tf.math.lgamma(a + b)

    spread = 2 * tf.sqrt(df) * tf.exp(log_beta(half, df - 0.5) - 2 * log_beta(half, 0.5 * df)) / (df - 1)
    value = scale * (z * (2 * cdf - 1) + 2 * pdf * (df + t2) / (df - 1) - spread)
    return tf.where(df > 1, value, tf.fill(tf.shape(value), tf.constant(float("nan"), value.dtype)))


def _a_term(mu, var):
    """E|X| for X ~ Normal(mu, var): `2σφ(mu/σ) + mu (2Φ(mu/σ) - 1)`."""
    sigma = tf.sqrt(var)
    pdf, cdf = _std_normal_terms(mu / sigma)
    return 2 * sigma * pdf + mu * (2 * cdf - 1)


def crps_normal_mixture(weights, loc, scale, y):
    """CRPS of a mixture of Normals, exact (Grimit et al. 2006).

    `Σ_k w_k A(y - μ_k, σ_k²) - ½ Σ_jk w_j w_k A(μ_j - μ_k, σ_j² + σ_k²)`, with
    `A(μ, σ²) = E|N(μ, σ²)|`. The component axis is the last one of
    `weights`, `loc` and `scale` (shape `batch + (K,)`); `y` has shape `batch`.
    Memory and time are O(K²) per element.

    Example:
    >>> import numpy as np
    >>> w, m, s = np.array([1.0]), np.array([0.0]), np.array([1.0])
    >>> round(float(crps_normal_mixture(w, m, s, np.float64(0.0))), 6)
    0.233695
    """
    weights, loc, scale, y = _as_float(weights, loc, scale, y)
    var = tf.square(scale)
    to_y = tf.reduce_sum(weights * _a_term(y[..., None] - loc, var), axis=-1)
    pair = _a_term(loc[..., :, None] - loc[..., None, :], var[..., :, None] + var[..., None, :])
    spread = tf.reduce_sum(weights[..., :, None] * weights[..., None, :] * pair, axis=[-2, -1])
    return to_y - 0.5 * spread


def crps_samples(samples, y, *, fair=False):
    """CRPS of the empirical distribution of `samples` (axis 0) at `y`, by the energy form.

    `mean|X_i - y| - ½ mean|X_i - X_j|` over all pairs, computed from the
    sorted samples in O(S log S): `Σ_ij |x_i - x_j| = 2 Σ_i (2i - S - 1) x_(i)`.
    By default this is the score of the empirical CDF itself (as properscoring's
    `crps_ensemble`). With `fair=True` the pair term is divided by S(S - 1)
    instead of S²: an unbiased estimate of the CRPS of the distribution the
    samples are drawn from (Ferro 2014), the right form for a training loss.

    Args:
        samples: shape `(S,) + y.shape`, S >= 2 for `fair=True`.
        y: targets.
        fair: the unbiased estimator instead of the empirical distribution's score.

    Example:
    >>> import numpy as np
    >>> round(float(crps_samples(np.array([0.0, 1.0]), np.float64(0.0))), 6)
    0.25
    """
    samples, y = _as_float(samples, y)
    n = tf.cast(tf.shape(samples)[0], samples.dtype)
    to_y = tf.reduce_mean(tf.abs(samples - y[None]), axis=0)
    ordered = tf.sort(samples, axis=0)
    rank = tf.cast(tf.range(1, tf.shape(samples)[0] + 1), samples.dtype)
    rank = tf.reshape(rank, tf.concat([[-1], tf.ones([tf.rank(samples) - 1], tf.int32)], axis=0))
    pairs = n * (n - 1) if fair else tf.square(n)
    spread = 2 * tf.reduce_sum((2 * rank - n - 1) * ordered, axis=0) / pairs
    return to_y - 0.5 * spread


def crps_quantile_grid(quantiles, levels, y):
    """CRPS from quantiles on a grid of levels: `2 ∫₀¹ ρ_τ(y - q(τ)) dτ` by the midpoint rule.

    `ρ_τ(u) = u (τ - 1{u < 0})` is the pinball loss. With the midpoint levels
    `τ_i = (i - ½)/G` the error is O(1/G²) where the quantile function is
    smooth; the tails beyond 1/(2G) contribute O(E|X| / G).

    Args:
        quantiles: shape `(G,) + y.shape`, the quantiles at `levels`.
        levels: shape `(G,)`, midpoints of G equal cells of (0, 1).
        y: targets.

    Example:
    >>> import numpy as np, scipy.stats
    >>> tau = (np.arange(2000) + 0.5) / 2000
    >>> q = scipy.stats.norm.ppf(tau)
    >>> round(float(crps_quantile_grid(q, tau, np.float64(0.0))), 3)
    0.234
    """
    quantiles, y = _as_float(quantiles, y)
    levels = tf.cast(levels, quantiles.dtype)
    levels = tf.reshape(levels, tf.concat([[-1], tf.ones([tf.rank(quantiles) - 1], tf.int32)], axis=0))
    u = y[None] - quantiles
    pinball = u * (levels - tf.cast(u < 0, u.dtype))
    return 2 * tf.reduce_mean(pinball, axis=0)


def _as_float(*values):
    tensors = [tf.convert_to_tensor(v) for v in values]
    dtype = next((t.dtype for t in tensors if t.dtype.is_floating), tf.float32)
    return [tf.cast(t, dtype) for t in tensors]
