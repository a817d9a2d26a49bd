"""One-parameter recalibration: standard-deviation scaling and temperature scaling."""

import numpy as np
import scipy.optimize
import scipy.special
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions


def _normal_parts(dist, owner):
    """`(loc, scale, rebuild)` of a Normal, an Independent Normal or a `(mean, stddev)` pair."""
    if isinstance(dist, tuple) and len(dist) == 2:
        loc = tf.convert_to_tensor(dist[0])
        loc = loc if loc.dtype.is_floating else tf.cast(loc, tf.float32)
        return loc, tf.cast(dist[1], loc.dtype), lambda loc, scale: tfd.Normal(loc, scale)
    if type(dist) is tfd.Normal:
        return dist.loc, dist.scale, lambda loc, scale: tfd.Normal(loc, scale)
    if isinstance(dist, tfd.Independent) and type(dist.distribution) is tfd.Normal:
        ndims = dist.reinterpreted_batch_ndims
        return (
            dist.distribution.loc,
            dist.distribution.scale,
            lambda loc, scale: tfd.Independent(tfd.Normal(loc, scale), reinterpreted_batch_ndims=ndims),
        )
    raise ValueError(
        f"{owner}: dist must be a Normal, an Independent Normal (a NormalHead's) or a (mean, stddev) "
        f"pair, got {type(dist).__name__}"
    )


class StdScaling:
    """Standard-deviation scaling of Gaussian predictions: every predictive stddev times one factor s.

    `s² = mean(((y - μ)/σ)²)` over the calibration split, the maximum-likelihood
    factor for a Gaussian head (Levi et al. 2022; Laves et al. 2020). It
    fixes over- or under-confidence that is the same everywhere, not the
    shape of the predictive distribution.

    Example:
    >>> import numpy as np, probnn
    >>> y = np.random.default_rng(0).normal(size=10000)
    >>> scaler = probnn.calibration.StdScaling().fit((np.zeros(10000), 0.5 * np.ones(10000)), y)
    >>> round(scaler.factor_, 1)
    2.0
    """

    def fit(self, dist, y):
        """Fit the factor on calibration predictions and targets; returns self."""
        loc, scale, _ = _normal_parts(dist, "StdScaling.fit")
        y = tf.cast(tf.reshape(y, tf.shape(loc)), loc.dtype)
        z2 = tf.square((y - loc) / scale).numpy()
        self.factor_ = float(np.sqrt(np.mean(z2)))
        return self

    def __call__(self, dist):
        """The same kind of Normal distribution with every scale multiplied by `factor_`."""
        if not hasattr(self, "factor_"):
            raise ValueError("StdScaling: call fit(dist_cal, y_cal) before applying it")
        loc, scale, rebuild = _normal_parts(dist, "StdScaling")
        return rebuild(loc, scale * tf.cast(self.factor_, scale.dtype))


def _logits(dist, owner):
    """`(logits, rebuild)` of a Categorical, a Bernoulli or an Independent Bernoulli."""
    if isinstance(dist, tfd.Categorical):
        return dist.logits_parameter(), lambda logits: tfd.Categorical(logits=logits, dtype=dist.dtype)
    if isinstance(dist, tfd.Bernoulli):
        return dist.logits_parameter(), lambda logits: tfd.Bernoulli(logits=logits, dtype=dist.dtype)
    if isinstance(dist, tfd.Independent) and isinstance(dist.distribution, tfd.Bernoulli):
        base, ndims = dist.distribution, dist.reinterpreted_batch_ndims
        return base.logits_parameter(), lambda logits: tfd.Independent(
            tfd.Bernoulli(logits=logits, dtype=base.dtype), reinterpreted_batch_ndims=ndims
        )
    raise ValueError(
        f"{owner}: dist must be a Categorical or (Independent) Bernoulli distribution, got {type(dist).__name__}"
    )


class TemperatureScaling:
    """Temperature scaling of class probabilities: logits divided by one temperature T > 0.

    T minimises the negative log likelihood on the calibration split (Guo et
    al. 2017), found by a bounded scalar search over log T in [-5, 5]. T > 1
    softens over-confident probabilities; the predicted class never changes.

    Example:
    >>> import numpy as np, tensorflow_probability as tfp, probnn
    >>> rng = np.random.default_rng(0)
    >>> logits = 3 * rng.normal(size=(5000, 3))
    >>> y = np.array([rng.choice(3, p=np.exp(l) / np.exp(l).sum()) for l in logits / 3])
    >>> ts = probnn.calibration.TemperatureScaling().fit(tfp.distributions.Categorical(logits=logits), y)
    >>> round(ts.temperature_, 1)
    3.0
    """

    def fit(self, dist, y):
        """Fit the temperature on calibration predictions and labels; returns self."""
        logits, _ = _logits(dist, "TemperatureScaling.fit")
        logits = np.asarray(logits, dtype=float)
        y = np.asarray(y)
        if isinstance(dist, tfd.Categorical):
            labels = np.round(y).astype(int).reshape(logits.shape[:-1])
            picked = np.take_along_axis(logits, labels[..., None], axis=-1)[..., 0]

            def loss(log_t):
                t = np.exp(log_t)
                return np.mean(scipy.special.logsumexp(logits / t, axis=-1) - picked / t)
        else:
            labels = np.round(y).reshape(logits.shape)

            def loss(log_t):
                scaled = logits / np.exp(log_t)
                return np.mean(np.logaddexp(0.0, scaled) - labels * scaled)

        result = scipy.optimize.minimize_scalar(loss, bounds=(-5.0, 5.0), method="bounded", options={"xatol": 1e-8})
        self.temperature_ = float(np.exp(result.x))
        return self

    def __call__(self, dist):
        """The same kind of distribution with logits divided by `temperature_`."""
        if not hasattr(self, "temperature_"):
            raise ValueError("TemperatureScaling: call fit(dist_cal, y_cal) before applying it")
        logits, rebuild = _logits(dist, "TemperatureScaling")
        return rebuild(logits / tf.cast(self.temperature_, logits.dtype))
