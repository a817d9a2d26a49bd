"""Gaussian radial basis function layer and its memory-light distance op."""

import math

import keras
import numpy as np
from keras import ops

from probnn._validation import positive_int, positive_number
from probnn.layers._adapt import AdaptMixin
from probnn.layers.prototypes import select_centers, typical_distance

_HALF_PRECISION = ("float16", "bfloat16")


def squared_distances(x, centers):
    """Squared Euclidean distances between inputs and centres, without a (batch, n, m) tensor.

    Uses ``||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2``: one matrix product plus
    two row norms, so memory grows with batch * m instead of batch * n * m.
    Rounding can make the expansion slightly negative when `x` is (almost)
    at a centre; the result is clamped at zero. The absolute rounding error is
    about `eps * (||x||^2 + ||c||^2)` (eps = 1.2e-7 in float32).

    Args:
        x: tensor of shape `(..., n)`.
        centers: tensor of shape `(m, n)`; cast to the dtype of `x`.

    Returns:
        A tensor of shape `(..., m)`, every entry >= 0.

    Example:
    >>> d2 = squared_distances(np.array([[0.0, 0.0], [3.0, 4.0]]), np.array([[3.0, 4.0]]))
    >>> ops.convert_to_numpy(d2).ravel().tolist()
    [25.0, 0.0]
    """
    x = ops.convert_to_tensor(x)
    if not keras.backend.is_float_dtype(x.dtype):
        x = ops.cast(x, keras.backend.floatx())
    centers = ops.cast(ops.convert_to_tensor(centers), x.dtype)
    if len(centers.shape) != 2:
        raise ValueError(f"squared_distances: centers must have shape (m, n), got {tuple(centers.shape)}")
    n_x, n_c = x.shape[-1], centers.shape[-1]
    if n_x is not None and n_c is not None and n_x != n_c:
        raise ValueError(
            f"squared_distances: x has {n_x} features but centers have {n_c} (shapes "
            f"{tuple(x.shape)} and {tuple(centers.shape)})"
        )
    x_sq = ops.sum(ops.square(x), axis=-1, keepdims=True)  # (..., 1)
    c_sq = ops.sum(ops.square(centers), axis=-1)  # (m,)
    cross = ops.matmul(x, ops.transpose(centers))  # (..., m)
    return ops.maximum((x_sq + c_sq) - 2.0 * cross, 0.0)


@keras.saving.register_keras_serializable(package="probnn")
class RBF(AdaptMixin, keras.layers.Layer):
    """Gaussian radial basis function layer: `y_i = w_i * exp(-||x - mu_i||^2 / sigma_i^2)`.

    For an input `x` in R^n the layer returns `m = units` activations, one per
    centre `mu_i` (in R^n), with width `sigma_i > 0` and output weight `w_i`.
    `sigma_i` is the distance from the centre at which the activation falls
    to `w_i / e` (it is not a standard deviation: a Gaussian density with
    standard deviation s has sigma = s * sqrt(2)). The layer has
    `m * n + 2 * m` parameters.

    Parameterisation: the widths are stored as `log_width` (`sigma = exp(log_width)`),
    so they stay positive under any gradient step; `widths` gives sigma.
    The output weights start at 1. Distances come from `squared_distances`
    (no `(batch, n, m)` intermediate). With a float16/bfloat16 compute dtype
    the distances are computed in float32 and the result cast back.

    Random centres far from the data give tiny activations (in high
    dimension they underflow to zero) and vanishing gradients: call `adapt(x, y)` first to put the centres on
    the data and the widths at the typical (in-class) distance.

    Args:
        units: number of centres m, a positive integer.
        width: initial sigma for every centre (positive), used when not adapted.
        centers_initializer: initializer of the `(m, n)` centres.
        trainable_centers, trainable_widths, trainable_output_weights: whether
            each group of parameters is trained (frozen otherwise).
        centers_regularizer, centers_constraint: for the centres.
        output_weights_regularizer, output_weights_constraint: for `w`.
        **kwargs: base `keras.layers.Layer` arguments (name, dtype, ...).

    Input shape: `(..., n)`. Output shape: `(..., units)`.

    Example:
    >>> x = np.random.default_rng(0).normal(size=(200, 4)).astype("float32")
    >>> rbf = RBF(8)
    >>> rbf.adapt(x, seed=0)
    >>> tuple(rbf(x).shape), rbf.count_params()
    ((200, 8), 48)
    """

    def __init__(
        self,
        units,
        *,
        width=1.0,
        centers_initializer="random_normal",
        trainable_centers=True,
        trainable_widths=True,
        trainable_output_weights=True,
        centers_regularizer=None,
        centers_constraint=None,
        output_weights_regularizer=None,
        output_weights_constraint=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = positive_int(self._describe(), "units", units, whole_floats=True)
        self.width = positive_number(self._describe(), "width", width)
        self.centers_initializer = keras.initializers.get(centers_initializer)
        self.trainable_centers = bool(trainable_centers)
        self.trainable_widths = bool(trainable_widths)
        self.trainable_output_weights = bool(trainable_output_weights)
        self.centers_regularizer = keras.regularizers.get(centers_regularizer)
        self.centers_constraint = keras.constraints.get(centers_constraint)
        self.output_weights_regularizer = keras.regularizers.get(output_weights_regularizer)
        self.output_weights_constraint = keras.constraints.get(output_weights_constraint)

    def build(self, input_shape):
        features = self._check_build_shape(input_shape)
        if self.built:  # by adapt or an earlier build: keep the weights
            return
        self._features = features
        self.centers = self.add_weight(
            name="centers",
            shape=(self.units, self._features),
            initializer=self.centers_initializer,
            regularizer=self.centers_regularizer,
            constraint=self.centers_constraint,
            trainable=self.trainable_centers,
        )
        self.log_width = self.add_weight(
            name="log_width",
            shape=(self.units,),
            initializer=keras.initializers.Constant(math.log(self.width)),
            trainable=self.trainable_widths,
        )
        self.output_weights = self.add_weight(
            name="output_weights",
            shape=(self.units,),
            initializer="ones",
            regularizer=self.output_weights_regularizer,
            constraint=self.output_weights_constraint,
            trainable=self.trainable_output_weights,
        )

    @property
    def widths(self):
        """The widths sigma (shape `(units,)`), `exp(log_width)`."""
        return ops.exp(self.log_width)

    def call(self, inputs):
        dtype = self.compute_dtype
        work = "float32" if dtype in _HALF_PRECISION else dtype
        x = ops.cast(inputs, work)
        d2 = squared_distances(x, ops.cast(self.centers, work))
        inv_sq_width = ops.exp(-2.0 * ops.cast(self.log_width, work))  # 1 / sigma^2
        y = ops.cast(self.output_weights, work) * ops.exp(-d2 * inv_sq_width)
        return ops.cast(y, dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)[:-1] + (self.units,)

    def adapt(self, x, y=None, *, method="random", width_scale=1.0, max_samples=2_000, seed=None):
        """Start the centres on the data and the widths at the typical (in-class) distance.

        Centres: `select_centers(x, units, method=method)` (`"random"` data
        points, `"kmeans++"` seeding, or `"kmeans"` cluster means).
        Widths: every sigma is `width_scale * typical_distance(x, y)`, the median
        distance between two data points (of the same class when `y` is
        given) on a random subsample of `max_samples` points. The output
        weights are left as they are (1 at the start). Builds the layer if it
        is not built (as `keras.layers.Normalization.adapt` does), so the
        adapted centres and widths can be read at once; a later call or
        `build` keeps them.

        Args:
            x: data, array of shape `(num_points, ..., n)` with at least `units` points.
            y: optional labels `(num_points,)` or one-hot `(num_points, k)`.
            method: `"random"`, `"kmeans++"` or `"kmeans"`.
            width_scale: positive factor applied to the typical distance.
            max_samples: subsample size for the distance (k-means uses 5 times as many).
            seed: an integer seed, or None for fresh randomness.

        Example:
        >>> x = np.random.default_rng(0).normal(size=(100, 3))
        >>> rbf = RBF(10)
        >>> rbf.adapt(x, method="kmeans++", seed=0)
        >>> rbf.built, tuple(rbf.centers.shape)
        (True, (10, 3))
        >>> bool(np.all(ops.convert_to_numpy(rbf.widths) > 0))
        True
        """
        positive_number(self._describe(), "width_scale", width_scale)
        x = self._adapt_data(x)
        if x.shape[0] < self.units:
            raise ValueError(
                f"{self._describe()}: adapt needs at least units={self.units} data points, got {x.shape[0]}"
            )
        if y is not None:
            y = np.asarray(y)
            if y.ndim == 0 or y.shape[0] != x.shape[0]:
                raise ValueError(
                    f"{self._describe()}: adapt got {x.shape[0]} data points but labels of shape {y.shape}"
                )
        seed_centers, seed_width = np.random.SeedSequence(seed).spawn(2)
        centers = select_centers(
            x, self.units, method=method, seed=seed_centers, max_samples=max(5 * max_samples, self.units)
        )
        sigma = width_scale * typical_distance(x, y, max_samples=max_samples, seed=seed_width)
        self._store_adapted(
            x.shape[1], {"centers": centers, "log_width": np.full(self.units, math.log(sigma))}
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "width": self.width,
                "centers_initializer": keras.initializers.serialize(self.centers_initializer),
                "trainable_centers": self.trainable_centers,
                "trainable_widths": self.trainable_widths,
                "trainable_output_weights": self.trainable_output_weights,
                "centers_regularizer": keras.regularizers.serialize(self.centers_regularizer),
                "centers_constraint": keras.constraints.serialize(self.centers_constraint),
                "output_weights_regularizer": keras.regularizers.serialize(self.output_weights_regularizer),
                "output_weights_constraint": keras.constraints.serialize(self.output_weights_constraint),
            }
        )
        return config
