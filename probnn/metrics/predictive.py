"""One view of every predictive input the metrics accept, over scalar outcomes.

The metrics take a `tfd.Distribution` (a head's, a predictive mixture over
samples, members or posterior draws), a `(mean, stddev)` pair (read as
Normals), an array of samples with shape `(num_samples,) + y.shape`, or a
recalibrated distribution from `probnn.calibration`. `as_predictive` turns
each into a `UnivariatePredictive`: a batch of distributions over scalars
with `cdf`, `quantile`, `mean`, `stddev`, `crps` (and `log_prob` where there
is a density), so every metric is written once.

Events of size 1 (the heads' `event_shape == (1,)`) are squeezed; an
`Independent` over E outputs is read as E independent scalar outcomes per
example (targets of shape `batch + (E,)`).
"""

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from probnn.metrics import crps_forms as _crps
from probnn.metrics.quantiles import bisect_quantile

tfd = tfp.distributions

#: Levels of the quantile grid that the generic `mean`, `stddev` and `crps` integrate over.
GRID_SIZE = 1000


class UnivariatePredictive:
    """A batch of predictive distributions over scalar outcomes, known at least through their CDF.

    Subclasses implement `cdf`, `batch_shape`, `dtype` and `_bracket` (a rough
    location and scale per element); everything else has a generic
    implementation: `quantile` by bisection on the CDF, `mean`, `stddev` and
    `crps` by integrating over a grid of `GRID_SIZE` quantile levels.
    Subclasses override them with closed forms where they have one.
    """

    #: True where the outcome is discrete (samples): `pit` then uses mid-ranks.
    discrete = False

    @property
    def batch_shape(self):
        raise NotImplementedError

    @property
    def dtype(self):
        raise NotImplementedError

    def cdf(self, y):
        raise NotImplementedError

    def _bracket(self):
        raise NotImplementedError

    def log_prob(self, y):
        raise NotImplementedError(f"{type(self).__name__} has no density")

    def quantile(self, levels):
        """Quantiles at `levels` (scalar, or shape `(L,)` giving `(L,) + batch_shape`)."""
        levels = self._levels(levels)
        center, width = self._bracket()
        return bisect_quantile(self.cdf, levels, center, width)

    def pit(self, y):
        return self.cdf(y)

    def _levels(self, levels):
        levels = tf.cast(tf.convert_to_tensor(levels), self.dtype)
        if levels.shape.rank == 0:
            return levels
        return tf.reshape(levels, [-1] + [1] * len(self.batch_shape))

    def _grid(self):
        if getattr(self, "_grid_cache", None) is None:
            tau = (np.arange(GRID_SIZE) + 0.5) / GRID_SIZE
            self._grid_cache = (tau, self.quantile(tau))
        return self._grid_cache

    def mean(self):
        return tf.reduce_mean(self._grid()[1], axis=0)

    def stddev(self):
        q = self._grid()[1]
        return tf.sqrt(tf.reduce_mean(tf.square(q - tf.reduce_mean(q, axis=0)), axis=0))

    def crps(self, y):
        tau, q = self._grid()
        return _crps.crps_quantile_grid(q, tau, y)


class DistributionPredictive(UnivariatePredictive):
    """A TFP distribution over scalars (after squeezing size-1 events)."""

    def __init__(self, dist, joint=None):
        self.distribution = dist
        self.joint = dist if joint is None else joint

    @property
    def batch_shape(self):
        return tuple(self.distribution.batch_shape.as_list())

    @property
    def dtype(self):
        return self.distribution.dtype

    def cdf(self, y):
        return self.distribution.cdf(y)

    def log_prob(self, y):
        return self.distribution.log_prob(y)

    def _bracket(self):
        return self.distribution.mean(), self.distribution.stddev()

    def mean(self):
        return self.distribution.mean()

    def stddev(self):
        return self.distribution.stddev()

    def quantile(self, levels):
        try:
            return self.distribution.quantile(self._levels(levels))
        except NotImplementedError:
            return super().quantile(levels)

    def crps(self, y):
        value = closed_form_crps(self.distribution, y)
        return super().crps(y) if value is None else value


class NormalPredictive(DistributionPredictive):
    """`(mean, stddev)` arrays read as independent Normals."""

    def __init__(self, mean, stddev):
        mean = tf.convert_to_tensor(mean)
        if not mean.dtype.is_floating:
            mean = tf.cast(mean, tf.float32)
        super().__init__(tfd.Normal(mean, tf.cast(stddev, mean.dtype)))


class SamplesPredictive(UnivariatePredictive):
    """The empirical distribution of samples with shape `(S,) + batch`."""

    discrete = True

    def __init__(self, samples):
        samples = tf.convert_to_tensor(samples)
        if not samples.dtype.is_floating:
            samples = tf.cast(samples, tf.float32)
        self.samples = samples

    @property
    def batch_shape(self):
        return tuple(self.samples.shape[1:])

    @property
    def dtype(self):
        return self.samples.dtype

    def cdf(self, y):
        return tf.reduce_mean(tf.cast(self.samples <= y, self.dtype), axis=0)

    def pit(self, y):
        """Mid-rank PIT `(#{x < y} + ½ + ½·#{x = y}... )`: `(r + ½)/(S + 1)` with r = #{x_i < y}.

        Under calibration the rank r of y among the S samples is uniform on
        {0, ..., S}, so these values are the centres of S + 1 equal bins.
        """
        below = tf.reduce_sum(tf.cast(self.samples < y, self.dtype), axis=0)
        ties = tf.reduce_sum(tf.cast(tf.equal(self.samples, y), self.dtype), axis=0)
        n = tf.cast(tf.shape(self.samples)[0], self.dtype)
        return (below + 0.5 * ties + 0.5) / (n + 1)

    def _bracket(self):
        return self.mean(), self.stddev()

    def mean(self):
        return tf.reduce_mean(self.samples, axis=0)

    def stddev(self):
        return tf.math.reduce_std(self.samples, axis=0)

    def quantile(self, levels):
        """Empirical quantiles with linear interpolation between order statistics (NumPy's default)."""
        levels = tf.cast(tf.convert_to_tensor(levels), self.dtype)
        return tfp.stats.percentile(self.samples, 100 * levels, axis=0, interpolation="linear")

    def crps(self, y):
        return _crps.crps_samples(self.samples, y)


def closed_form_crps(dist, y):
    """The exact CRPS of a scalar `dist` at `y` if probnn has its closed form, else None.

    Closed forms: Normal, Student-t (and its subclasses, such as the
    evidential head's predictive) and (nested) mixtures of Normals.
    """
    if type(dist) is tfd.Normal:
        return _crps.crps_normal(dist.loc, dist.scale, y)
    if isinstance(dist, tfd.StudentT):
        return _crps.crps_student_t(dist.df, dist.loc, dist.scale, y)
    mixture = normal_mixture_parameters(dist)
    if mixture is not None:
        return _crps.crps_normal_mixture(*mixture, y)
    return None


def normal_mixture_parameters(dist):
    """`(weights, loc, scale)` with the component axis last if `dist` is a (nested) mixture of Normals, else None.

    Nested mixtures (a predictive mixture over members whose heads are
    themselves mixtures) are flattened into one mixture of K1·K2 components.
    """
    if type(dist) is tfd.Normal:
        return None
    if type(dist) is not tfd.MixtureSameFamily:
        return None
    components = scalar_distribution(dist.components_distribution)
    probs = dist.mixture_distribution.probs_parameter()
    if type(components) is tfd.Normal:
        loc = tf.broadcast_to(components.loc, tf.shape(probs))
        scale = tf.broadcast_to(components.scale, tf.shape(probs))
        return probs, loc, scale
    inner = normal_mixture_parameters(components)
    if inner is None:
        return None
    w, loc, scale = inner  # shape batch + (K1, K2)
    w = probs[..., None] * w
    flat = tf.concat([tf.shape(w)[:-2], [-1]], axis=0)
    return tf.reshape(w, flat), tf.reshape(loc, flat), tf.reshape(scale, flat)


def scalar_distribution(dist):
    """The same distribution over scalar events: size-1 events squeezed, `Independent` unwrapped.

    Returns None when `dist` cannot be read elementwise (a multivariate
    Normal, a mixture over events of size > 1, ...).
    """
    event = dist.event_shape
    if event.rank == 0:
        return dist
    if event.rank != 1 or event[0] is None:
        return None
    if isinstance(dist, tfd.Independent) and tf.get_static_value(dist.reinterpreted_batch_ndims) == 1:
        base = dist.distribution
        if base.event_shape.rank != 0:
            return None
        return base[..., 0] if event[0] == 1 else base
    if type(dist) is tfd.MixtureSameFamily and event[0] == 1:
        components = scalar_distribution(dist.components_distribution)
        if components is None:
            return None
        if len(components.batch_shape) == len(dist.components_distribution.batch_shape) + 1:
            components = components[..., 0]
        return tfd.MixtureSameFamily(dist.mixture_distribution, components)
    return None


def as_predictive(dist, y=None, *, owner="probnn.metrics"):
    """Return `(predictive, y)`: a `UnivariatePredictive` and the targets cast and reshaped to its batch shape.

    Args:
        dist: a `tfd.Distribution`, a `UnivariatePredictive` (such as a
            recalibrated distribution), a `(mean, stddev)` tuple, or samples
            of shape `(num_samples,) + y.shape` (array or tensor).
        y: targets, or None when the caller needs no targets.
        owner: the public function's name, for error messages.
    """
    if isinstance(dist, UnivariatePredictive):
        pred = dist
    elif isinstance(dist, tfd.Distribution):
        scalar = scalar_distribution(dist)
        if scalar is None:
            raise ValueError(
                f"{owner}: dist must be a distribution over scalars, a size-1 event or an "
                f"Independent over outputs; got {type(dist).__name__} with event shape "
                f"{dist.event_shape.as_list()}"
            )
        pred = DistributionPredictive(scalar, joint=dist)
    elif isinstance(dist, tuple):
        if len(dist) != 2:
            raise ValueError(
                f"{owner}: a tuple dist must be (mean, stddev), got a tuple of length {len(dist)}"
            )
        pred = NormalPredictive(*dist)
    elif isinstance(dist, (np.ndarray, tf.Tensor, list)):
        samples = np.asarray(dist) if isinstance(dist, list) else dist
        if len(samples.shape) < 1:
            raise ValueError(f"{owner}: samples must have shape (num_samples,) + y.shape, got a scalar")
        pred = SamplesPredictive(samples)
    else:
        raise ValueError(
            f"{owner}: dist must be a tfd.Distribution, a recalibrated distribution, a "
            f"(mean, stddev) tuple or an array of samples, got {type(dist).__name__}"
        )
    if y is None:
        return pred, None
    return pred, align_targets(pred, y, owner)


def align_targets(pred, y, owner):
    """Cast `y` to the predictive's dtype and shape it like its batch (squeezing a trailing size-1 axis)."""
    y = tf.cast(tf.convert_to_tensor(y), pred.dtype)
    batch = tuple(pred.batch_shape)
    shape = tuple(y.shape)
    if shape == batch:
        return y
    if shape == batch + (1,):
        return tf.reshape(y, batch)
    joint = getattr(pred, "joint", None)
    if joint is not None and shape == tuple(joint.batch_shape.as_list() + joint.event_shape.as_list()):
        return tf.reshape(y, batch)
    if isinstance(pred, SamplesPredictive):
        expected = "y.shape == samples.shape[1:]"
    else:
        expected = f"shape {batch}"
    raise ValueError(f"{owner}: y must have {expected}, got shape {shape}")
