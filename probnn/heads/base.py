"""The distribution-head contract shared by every head.

A head is a Keras 3 layer with two halves:

- `call(features)` projects the features it receives onto one float tensor of
  unconstrained parameters, shape `batch + (params_size,)`. Keras only ever
  sees that tensor, so functional and sequential models, `model.predict`,
  `model.save`, XLA and `tf.distribute` all work as for any other layer.
- `distribution(params)` turns such a tensor (from `call`, `model.predict` or
  anywhere else) into a `tfd.Distribution`, applying the constraints
  (positive scales, normalised weights) on the way. It uses no weights, so a
  loss only needs the head's configuration to rebuild it.
"""

import keras
import numpy as np
import tensorflow as tf


def check_positive_int(owner, name, value, minimum=1):
    """Return `value` as an int, or raise a ValueError naming `owner` and `name`."""
    if isinstance(value, bool) or not float(value).is_integer() or value < minimum:
        raise ValueError(f"{owner}: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_positive_float(owner, name, value):
    """Return `value` as a float, or raise a ValueError naming `owner` and `name`."""
    if not float(value) > 0.0:
        raise ValueError(f"{owner}: {name} must be a positive number, got {value!r}")
    return float(value)


def positive_scale(raw, min_scale):
    """Map unconstrained values to scales: `softplus(raw) + min_scale`.

    Softplus is linear for large inputs and decays like `exp(raw)` for
    negative ones, so scales neither overflow nor collapse to zero for raw
    values anywhere in float range; the floor keeps log densities finite.
    """
    return tf.math.softplus(raw) + tf.cast(min_scale, raw.dtype)


class DistributionHead(keras.layers.Layer):
    """Base class of probnn's distribution heads.

    Subclasses set `params_size` and `event_shape` and implement
    `distribution(params)`. The base class owns the affine projection from
    the incoming features to the parameter vector, the input checks, the
    target checks used by the likelihood losses and the configuration.

    Args:
        kernel_initializer: initializer of the projection's kernel.
        bias_initializer: initializer of the projection's bias.
        kernel_regularizer: optional regularizer of the projection's kernel.
        **kwargs: standard `keras.layers.Layer` arguments (`name`, `dtype`).
    """

    def __init__(
        self,
        *,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

    # -- what a subclass provides -------------------------------------------------
    @property
    def params_size(self):
        """Length of the parameter vector that `call` returns."""
        raise NotImplementedError

    @property
    def event_shape(self):
        """Event shape of one draw of the distribution, as a tuple."""
        raise NotImplementedError

    def distribution(self, params):
        """Return the `tfd.Distribution` that `params` (`batch + (params_size,)`) defines."""
        raise NotImplementedError

    @property
    def projection_size(self):
        """Outputs of the affine projection; heads that compute some parameters otherwise shrink it."""
        return self.params_size

    # -- Keras layer ----------------------------------------------------------------
    def build(self, input_shape):
        features = input_shape[-1]
        if len(input_shape) < 2 or features is None:
            raise ValueError(
                f"{type(self).__name__}: expected inputs of shape (batch, ..., features) "
                f"with a known number of features, got {tuple(input_shape)}"
            )
        self.kernel = self.add_weight(
            name="kernel",
            shape=(features, self.projection_size),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
        )
        self.bias = self.add_weight(
            name="bias", shape=(self.projection_size,), initializer=self.bias_initializer
        )

    def project(self, inputs):
        """The affine map from features to `projection_size` unconstrained parameters."""
        return keras.ops.matmul(inputs, self.kernel) + self.bias

    def call(self, inputs):
        return self.project(inputs)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.params_size,)

    # -- helpers shared by every head -------------------------------------------------
    def _params(self, params):
        """Convert `params` to a float tensor and check its last axis."""
        params = tf.convert_to_tensor(params)
        if not params.dtype.is_floating:
            params = tf.cast(params, keras.config.floatx())
        if params.shape.rank is not None and (
            params.shape.rank < 1
            or (params.shape[-1] is not None and params.shape[-1] != self.params_size)
        ):
            raise ValueError(
                f"{type(self).__name__}.distribution: expected parameters of shape "
                f"batch + ({self.params_size},), got {tuple(params.shape)}"
            )
        return params

    def log_prob(self, params, y):
        """Log likelihood of targets `y` (`batch + event_shape`) under `distribution(params)`.

        A target of shape `batch + (1,)` is accepted for scalar events. A target
        whose trailing shape does not match the event shape raises a ValueError
        naming this head, instead of broadcasting into a wrong loss.
        """
        params = self._params(params)
        dist = self.distribution(params)
        y = tf.convert_to_tensor(y)
        event = tuple(self.event_shape)
        rank = len(event)
        if y.shape.rank is not None and params.shape.rank is not None:
            batch_rank = params.shape.rank - 1
            if rank == 0 and y.shape.rank == batch_rank + 1 and y.shape[-1] == 1:
                y = tf.squeeze(y, axis=-1)
            trailing = tuple(y.shape[batch_rank:])
            if y.shape.rank != batch_rank + rank or any(
                t is not None and t != e for t, e in zip(trailing, event)
            ):
                raise ValueError(
                    f"{type(self).__name__}: targets must have shape batch + {event} "
                    f"with batch = {tuple(params.shape[:-1])}, got {tuple(y.shape)}"
                )
        return dist.log_prob(self._cast_target(y, dist))

    def check_targets(self, y):
        """Raise a ValueError if a target in `y` lies outside this head's support.

        Checked on the host before training (`probnn.fit` calls it on `y` and
        the validation targets), so a class label out of range or a count of
        2.5 is a clear error instead of a NaN loss or a silent wrong fit. The
        base class accepts any real value; discrete heads restrict it.

        Args:
            y: targets, an array of shape `batch + event_shape` (or
                `batch + (1,)` for scalar events).

        Raises:
            ValueError: naming the head, what it accepts, the first offending
                value and its row.

        Example:
        >>> import probnn
        >>> probnn.heads.PoissonHead().check_targets([[0], [3]])  # counts: fine
        >>> probnn.heads.PoissonHead().check_targets([[0], [2.5]])
        Traceback (most recent call last):
        ...
        ValueError: PoissonHead: targets must be non-negative integer counts, got 2.5 (row 1)
        """
        y = np.atleast_1d(np.asarray(y))
        if y.dtype == object or y.dtype.kind not in "biuf":
            raise ValueError(
                f"{type(self).__name__}: targets must be numeric, got dtype {y.dtype}")
        invalid = self._invalid_targets(y)
        if invalid is None:
            return
        accepted, bad = invalid
        bad_rows = bad.reshape(bad.shape[0], -1).any(axis=1)
        if bad_rows.any():
            row = int(np.argmax(bad_rows))
            value = np.atleast_1d(y[row])[np.atleast_1d(bad[row])][0].item()
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            raise ValueError(
                f"{type(self).__name__}: targets must be {accepted}, got {value!r} (row {row})")

    def _invalid_targets(self, y):
        """`(description of the accepted targets, boolean array of bad entries)`, or None."""
        return None

    def _cast_target(self, y, dist):
        """Bring targets to the dtype the distribution's log_prob expects."""
        return tf.cast(y, dist.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
            kernel_regularizer=keras.regularizers.serialize(self.kernel_regularizer),
        )
        return config


class RealEventHead(DistributionHead):
    """Base of heads over `event_size` real outputs with positive scales floored at `min_scale`.

    Holds and validates `event_size` and `min_scale`, gives the event shape
    `(event_size,)` and their configuration; subclasses define the parameter
    layout and the distribution.
    """

    def __init__(self, event_size=1, *, min_scale=1e-6, **kwargs):
        super().__init__(**kwargs)
        name = type(self).__name__
        self.event_size = check_positive_int(name, "event_size", event_size)
        self.min_scale = check_positive_float(name, "min_scale", min_scale)

    @property
    def event_shape(self):
        return (self.event_size,)

    def get_config(self):
        config = super().get_config()
        config.update(event_size=self.event_size, min_scale=self.min_scale)
        return config


def find_head(model):
    """Return the single `DistributionHead` inside `model` (searched recursively).

    Args:
        model: a Keras model (sequential, functional or subclassed), a
            `probnn.Ensemble` (the head of its template) or a head.

    Returns:
        The head.

    Raises:
        ValueError: if the model holds no head, or more than one.

    Example:
    >>> import keras, probnn
    >>> model = keras.Sequential([keras.Input((3,)), probnn.heads.NormalHead()])
    >>> type(probnn.heads.find_head(model)).__name__
    'NormalHead'
    """
    if isinstance(model, DistributionHead):
        return model
    template = getattr(model, "probnn_template", None)
    if template is not None:  # a probnn.Ensemble: its members share the template's head
        return find_head(template)
    heads = [
        layer
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if isinstance(layer, DistributionHead)
    ]
    if len(heads) != 1:
        found = ", ".join(h.name for h in heads) or "none"
        raise ValueError(
            f"find_head: expected exactly one probnn DistributionHead in model "
            f"{model.name!r}, found {len(heads)} ({found}); pass the head explicitly"
        )
    return heads[0]
