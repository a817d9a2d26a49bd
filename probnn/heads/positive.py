"""Heads for positive, bounded and censored real targets: Gamma, log-normal, Beta, censored Normal."""

import math

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from tensorflow_probability.python.distributions import distribution as distribution_lib
from tensorflow_probability.python.internal import dtype_util, parameter_properties

from probnn._validation import finite_number
from probnn.heads.base import positive_scale
from probnn.heads.blocks import ParameterBlocksHead

tfd = tfp.distributions


class _PositiveHead(ParameterBlocksHead):
    def _support(self, y):
        return "positive (> 0)", y > 0


@keras.saving.register_keras_serializable(package="probnn")
class GammaHead(_PositiveHead):
    """Independent Gamma distributions parameterised by their mean and shape.

    Parameters are `[log_mean (E), raw_concentration (E)]`; the shape is
    `a = softplus(raw_concentration) + min_scale` and the rate `a / mean`
    (TFP's `Gamma(a, log_rate=log a - log_mean)`), so the mean is
    `exp(log_mean)` and the coefficient of variation `1/√a`. In scipy's terms
    it is `gamma(a, scale=mean/a)`. Targets must be positive.

    Args:
        event_size: number of positive outputs per example (>= 1).
        min_scale: floor added to the shape a (> 0).
        **kwargs: see `DistributionHead`.

    Example:
    >>> import numpy as np, probnn
    >>> dist = probnn.heads.GammaHead().distribution(np.array([[np.log(2.0), 3.0]]))
    >>> round(float(dist.mean()[0, 0]), 6)
    2.0
    """

    def _base(self, log_mean, raw_concentration):
        concentration = positive_scale(raw_concentration, self.min_scale)
        return tfd.Gamma(concentration, log_rate=tf.math.log(concentration) - log_mean)


@keras.saving.register_keras_serializable(package="probnn")
class LogNormalHead(_PositiveHead):
    """Independent log-normal distributions: `log y ~ Normal(loc, scale)`.

    Parameters are `[loc (E), raw_scale (E)]` of `log y`, with
    `scale = softplus(raw_scale) + min_scale`. In scipy's terms it is
    `lognorm(s=scale, scale=exp(loc))`. Targets must be positive.

    Args:
        event_size: number of positive outputs per example (>= 1).
        min_scale: floor added to the scale of `log y` (> 0).
        **kwargs: see `DistributionHead`.

    Example:
    >>> import numpy as np, probnn
    >>> dist = probnn.heads.LogNormalHead().distribution(np.array([[0.0, 0.0]]))
    >>> round(float(probnn.metrics.quantile(dist, 0.5)[0]), 6)  # the median is exp(loc)
    1.0
    """

    def _base(self, loc, raw_scale):
        return tfd.LogNormal(loc, positive_scale(raw_scale, self.min_scale))


@keras.saving.register_keras_serializable(package="probnn")
class BetaHead(ParameterBlocksHead):
    """Independent Beta distributions for targets in the open interval (0, 1).

    Parameters are `[raw_concentration1 (E), raw_concentration0 (E)]`; each
    concentration is `softplus(raw) + min_scale` (scipy's `beta(a=c1, b=c0)`),
    so the mean is `c1 / (c1 + c0)`. Targets of exactly 0 or 1 have zero
    density under a Beta with concentrations above 1 and infinite density
    below it: they are refused (shrink them into the interval first, e.g.
    `(y (n - 1) + 0.5) / n`, Smithson and Verkuilen 2006).

    Args:
        event_size: number of outputs in (0, 1) per example (>= 1).
        min_scale: floor added to both concentrations (> 0).
        **kwargs: see `DistributionHead`.

    Example:
    >>> import numpy as np, probnn
    >>> dist = probnn.heads.BetaHead().distribution(np.array([[1.0, 1.0]]))
    >>> round(float(dist.mean()[0, 0]), 6)
    0.5
    """

    def _base(self, raw_concentration1, raw_concentration0):
        return tfd.Beta(
            positive_scale(raw_concentration1, self.min_scale),
            positive_scale(raw_concentration0, self.min_scale),
        )

    def _support(self, y):
        return "in the open interval (0, 1)", (y > 0) & (y < 1)


class CensoredNormal(distribution_lib.AutoCompositeTensorDistribution):
    """A Normal censored from below: `Y = max(lower, X)` with `X ~ Normal(loc, scale)`.

    `Y` has an atom `P(Y = lower) = Φ((lower - loc)/scale)` and the Normal
    density above `lower`; `log_prob` is the censored (Tobit) likelihood:
    `log Φ((lower - loc)/scale)` at `y == lower`, the Normal's log density for
    `y > lower`, and `-inf` below. `cdf`, `quantile`, `mean`, `variance` and
    `sample` are exact (closed form). A composite tensor, as TFP's own
    distributions, so `tfd.Independent` over it is a `tfd.Independent`.

    Args:
        loc, scale: parameters of the latent Normal (scale > 0).
        lower: the censoring point (a float).

    Example:
    >>> import numpy as np
    >>> d = CensoredNormal(np.float64(0.0), np.float64(1.0), lower=0.0)
    >>> round(float(d.prob(0.0)), 6), round(float(d.mean()), 6)  # P(Y = 0) = 1/2, E Y = φ(0)
    (0.5, 0.398942)
    """

    def __init__(
        self, loc, scale, lower=0.0, validate_args=False, allow_nan_stats=True, name="CensoredNormal"
    ):
        parameters = dict(locals())
        with tf.name_scope(name) as name:
            dtype = dtype_util.common_dtype([loc, scale], tf.float32)
            self._loc = tf.convert_to_tensor(loc, dtype)
            self._scale = tf.convert_to_tensor(scale, dtype)
            self._lower = float(lower)
            super().__init__(
                dtype=dtype,
                reparameterization_type=tfd.FULLY_REPARAMETERIZED,
                validate_args=validate_args,
                allow_nan_stats=allow_nan_stats,
                parameters=parameters,
                name=name,
            )

    @classmethod
    def _parameter_properties(cls, dtype, num_classes=None):
        return dict(
            loc=parameter_properties.ParameterProperties(), scale=parameter_properties.ParameterProperties()
        )

    @property
    def loc(self):
        return self._loc

    @property
    def scale(self):
        return self._scale

    @property
    def lower(self):
        return self._lower

    def _event_shape(self):
        return tf.TensorShape([])

    def _event_shape_tensor(self):
        return tf.constant([], tf.int32)

    def _latent(self):
        return tfd.Normal(self._loc, self._scale)

    def _z(self):
        return (self._lower - self._loc) / self._scale

    def _log_prob(self, y):
        # log Φ(z): TFP's log_cdf above z = 0 loses relative precision (log of a number
        # near 1); log1p(-Φ(-z)) keeps it. Each branch sees only its own half, so neither
        # produces a NaN gradient.
        z = self._z()
        standard = tfd.Normal(tf.zeros([], self.dtype), tf.ones([], self.dtype))
        censored = tf.where(
            z < 0, standard.log_cdf(tf.minimum(z, 0.0)), tf.math.log1p(-standard.cdf(-tf.maximum(z, 0.0)))
        )
        value = tf.where(tf.equal(y, self._lower), censored, self._latent().log_prob(y))
        return tf.where(y < self._lower, tf.constant(-np.inf, self.dtype), value)

    def _cdf(self, y):
        return tf.where(y < self._lower, tf.zeros([], self.dtype), self._latent().cdf(y))

    def _quantile(self, p):
        return tf.maximum(self._latent().quantile(p), tf.cast(self._lower, self.dtype))

    def _sample_n(self, n, seed=None):
        return tf.maximum(self._latent().sample(n, seed=seed), tf.cast(self._lower, self.dtype))

    def _moments(self):
        """`(P(censored), φ(z))` at z = (lower - loc)/scale."""
        z = self._z()
        return tfd.Normal(tf.zeros([], self.dtype), 1.0).cdf(z), tf.exp(-0.5 * tf.square(z)) / math.sqrt(
            2 * math.pi
        )

    def _mean(self):
        p, pdf = self._moments()
        return self._lower * p + self._loc * (1 - p) + self._scale * pdf

    def _variance(self):
        p, pdf = self._moments()
        mu, sigma, low = self._loc, self._scale, self._lower
        second = low**2 * p + (mu**2 + sigma**2) * (1 - p) + sigma * (mu + low) * pdf
        return tf.maximum(second - tf.square(self._mean()), tf.zeros([], self.dtype))


@keras.saving.register_keras_serializable(package="probnn")
class CensoredNormalHead(ParameterBlocksHead):
    """Independent Normals censored from below at `lower` (Tobit), e.g. precipitation at 0.

    Parameters are `[loc (E), raw_scale (E)]` of the latent Normal,
    `scale = softplus(raw_scale) + min_scale`; a target equal to `lower`
    counts with the probability mass `Φ((lower - loc)/scale)`, a target above
    it with the Normal density (see `CensoredNormal`). Targets below `lower`
    are refused.

    Args:
        event_size: number of outputs per example (>= 1).
        lower: the censoring point (a finite float, default 0.0).
        min_scale: floor added to the scale (> 0).
        **kwargs: see `DistributionHead`.

    Example:
    >>> import numpy as np, probnn
    >>> head = probnn.heads.CensoredNormalHead(lower=0.0)
    >>> round(float(head.log_prob(np.array([[0.0, 0.0]]), np.array([[0.0]]))[0]), 6)  # log ½
    -0.693147
    """

    def __init__(self, event_size=1, *, lower=0.0, min_scale=1e-6, **kwargs):
        super().__init__(event_size, min_scale=min_scale, **kwargs)
        self.lower = finite_number("CensoredNormalHead", "lower", lower)

    def _base(self, loc, raw_scale):
        return CensoredNormal(loc, positive_scale(raw_scale, self.min_scale), lower=self.lower)

    def _support(self, y):
        return f">= lower = {self.lower:g}", y >= self.lower

    def get_config(self):
        config = super().get_config()
        config.update(lower=self.lower)
        return config
