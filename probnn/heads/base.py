"""The distribution-head contract shared by every head.

A head is a Keras 3 layer with two halves:

- `call(features)` projects the features it receives onto one float tensor of
  unconstrained parameters, shape `batch + (params_size,)`. Keras only ever
  sees that tensor, so functional and sequential models, `model.predict`,
  `model.save`, XLA and `tf.distribute` all work as for any other layer.
- `distribution(params)` turns such a tensor (from `call`, `model.predict` or
  anywhere else) into a `tfd.Distribution`, applying the constraints
  (positive scales, normalised weights) on the way. It uses no trainable
  weights, so a loss only needs the head's configuration to rebuild it.

Real-valued heads (`RealEventHead`) can be adapted to their targets
(`adapt(y)`, like `keras.layers.Normalization.adapt`): the network then
learns in standard units while `distribution` is in the targets' units.
"""

import keras
import numpy as np
import tensorflow as tf

from probnn._validation import finite_array, int_at_least, positive_number


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
            params.shape.rank < 1 or (params.shape[-1] is not None and params.shape[-1] != self.params_size)
        ):
            raise ValueError(
                f"{type(self).__name__}.distribution: expected parameters of shape "
                f"batch + ({self.params_size},), got {tuple(params.shape)}"
            )
        return params

    def log_prob(self, params, y):
        """Log likelihood of targets `y` (`batch + event_shape`) under `distribution(params)`.

        As Keras's own losses, a target of shape `batch + (1,)` is accepted for
        scalar events and a target of shape `batch` for events of shape `(1,)`
        (`model.fit(x, y)` with `y` of shape `(n,)`). A target whose trailing
        shape does not match the event shape raises a ValueError naming this
        head, instead of broadcasting into a wrong loss.

        Example:
        >>> import numpy as np, probnn
        >>> head = probnn.heads.NormalHead()
        >>> params = np.zeros((3, 2), "float32")
        >>> bool(np.allclose(head.log_prob(params, np.ones(3)), head.log_prob(params, np.ones((3, 1)))))
        True
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
            if event == (1,) and y.shape.rank == batch_rank and _compatible(y.shape, params.shape[:-1]):
                y = tf.expand_dims(y, axis=-1)
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
            raise ValueError(f"{type(self).__name__}: targets must be numeric, got dtype {y.dtype}")
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
            raise ValueError(f"{type(self).__name__}: targets must be {accepted}, got {value!r} (row {row})")

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


def _compatible(shape, other):
    """Whether two static shapes of the same rank agree wherever both are known."""
    return len(shape) == len(other) and all(a is None or b is None or a == b for a, b in zip(shape, other))


class RealEventHead(DistributionHead):
    """Base of heads over `event_size` real outputs with positive scales floored at `min_scale`.

    Holds and validates `event_size` and `min_scale`, gives the event shape
    `(event_size,)` and their configuration, and the target scaling of
    `adapt(y)`; subclasses define the parameter layout and the distribution,
    passing its locations and scales through `in_target_units`.

    Target scaling (`adapt(y)`, Keras style; heads whose `distribution` is a
    location-scale family set `supports_target_scaling`: Normal, Student-t,
    the Normal mixtures, the multivariate Normal): the targets' mean and standard
    deviation per output are stored in the non-trainable weights
    `target_location` and `target_scale`, and `distribution` maps the
    network's parameters from standard units to the targets' units
    (location `m + s·loc`, scales `s·scale`; `min_scale` is then a floor in
    standard units). The network thus learns as on standardised targets, and
    the likelihood, `model.predict` parameters read through `distribution`,
    and every metric are in the original units. Adapt before training: the
    likelihood loss keeps a weightless copy of the head made from its
    configuration, so the configuration carries the two vectors too
    (`target_location=`, `target_scale=`; a copy or a loaded model has the
    same scaling).

    Args:
        event_size: number of real outputs per example (>= 1).
        min_scale: floor added to every scale (> 0).
        target_location, target_scale: the target scaling (as `adapt` sets
            it), each a number or `event_size` numbers; None (default): none.
        **kwargs: see `DistributionHead`.
    """

    # Whether `distribution` passes its locations and scales through `in_target_units`;
    # a subclass that does sets it True (heads of other families cannot be adapted).
    supports_target_scaling = False

    def __init__(self, event_size=1, *, min_scale=1e-6, target_location=None, target_scale=None, **kwargs):
        super().__init__(**kwargs)
        name = type(self).__name__
        self.event_size = int_at_least(name, "event_size", event_size, 1, whole_floats=True)
        self.min_scale = positive_number(name, "min_scale", min_scale)
        self.target_location = self.target_scale = None
        if (target_location is None) != (target_scale is None):
            raise ValueError(f"{name}: give both target_location and target_scale, or neither")
        if target_location is not None and not self.supports_target_scaling:
            raise ValueError(
                f"{name}: target scaling (target_location, target_scale, adapt(y)) is only "
                "for location-scale heads such as NormalHead"
            )
        if target_location is not None:
            self._set_target_scaling(target_location, target_scale)

    @property
    def event_shape(self):
        return (self.event_size,)

    @property
    def adapted(self):
        """Whether the head maps its parameters to the targets' units (`adapt` or the configuration)."""
        return self.target_location is not None

    def adapt(self, y):
        """Store the targets' mean and standard deviation per output as the head's target scaling.

        Like `keras.layers.Normalization.adapt`, on the training targets
        before training; see the class docstring. A constant output gets
        scale 1.

        Args:
            y: targets, shape `(n,)` or `(n, event_size)`, finite, n >= 2.

        Example:
        >>> import keras, numpy as np, probnn
        >>> y = 1000.0 + 100.0 * np.random.default_rng(0).normal(size=(500, 1))
        >>> head = probnn.heads.NormalHead()
        >>> head.adapt(y)
        >>> model = keras.Sequential([keras.Input((2,)), head])
        >>> dist = head.distribution(model(np.zeros((1, 2), "float32")))
        >>> round(float(dist.mean()[0, 0]), -1)  # zero parameters: the targets' mean
        1000.0
        """
        return self.adapt_targets(y)

    def adapt_targets(self, y):
        """`adapt(y)` under a name of its own, for heads whose `adapt` sets something else."""
        owner = f"{type(self).__name__}.adapt"
        if not self.supports_target_scaling:
            raise ValueError(
                f"{owner}: target scaling is only for location-scale heads such as NormalHead; "
                f"{type(self).__name__}'s distribution is not mapped to the targets' units"
            )
        y = np.asarray(y, dtype=np.float64)
        if y.ndim == 1 and self.event_size == 1:
            y = y[:, None]
        if y.ndim != 2 or y.shape[1] != self.event_size or y.shape[0] < 2:
            raise ValueError(
                f"{owner}: expected targets of shape (n, {self.event_size}) with n >= 2, got {y.shape}"
            )
        finite_array(owner, "targets", y)
        std = y.std(axis=0)
        self._set_target_scaling(y.mean(axis=0), np.where(std > 0, std, 1.0))

    def _set_target_scaling(self, location, scale):
        name = type(self).__name__
        values = {}
        for key, value in (("target_location", location), ("target_scale", scale)):
            value = np.broadcast_to(np.asarray(value, dtype=np.float64).reshape(-1), (self.event_size,))
            if not np.all(np.isfinite(value)) or (key == "target_scale" and not np.all(value > 0)):
                raise ValueError(
                    f"{name}: {key} must be finite{' and positive' if key == 'target_scale' else ''}, "
                    f"got {value.tolist()}"
                )
            values[key] = value
        if self.adapted:  # adapted again: new values, same variables
            for key, value in values.items():
                getattr(self, key).assign(value.astype(getattr(self, key).dtype))
            return
        locked = self._tracker.locked  # a built layer: adapting adds state, as Keras's own untracking unlocks
        self._tracker.unlock()
        for position, (key, value) in enumerate(values.items()):
            variable = self.add_weight(
                name=key,
                shape=(self.event_size,),
                trainable=False,
                initializer=keras.initializers.Constant(value.tolist()),
            )
            # First among the non-trainable variables, wherever it is created (here, in __init__
            # from the configuration, or after build): the saved weights keep one order.
            others = [v for v in self._non_trainable_variables if v is not variable]
            self._non_trainable_variables[:] = others[:position] + [variable] + others[position:]
            setattr(self, key, variable)
        if locked:
            self._tracker.lock()

    def in_target_units(self, loc, scale, *, matrix=False):
        """Map a location and a scale from standard units to the targets' units (identity if not adapted).

        Args:
            loc: locations, shape `... + (event_size,)`.
            scale: scales of the same shape, or with `matrix=True` a scale
                matrix `... + (event_size, event_size)` (its rows are scaled).

        Returns:
            `(target_location + target_scale · loc, target_scale · scale)`.
        """
        if not self.adapted:
            return loc, scale
        shift = tf.cast(keras.ops.convert_to_tensor(self.target_location), loc.dtype)
        factor = tf.cast(keras.ops.convert_to_tensor(self.target_scale), loc.dtype)
        return shift + factor * loc, (factor[:, None] if matrix else factor) * scale

    def get_config(self):
        config = super().get_config()
        config.update(event_size=self.event_size, min_scale=self.min_scale)
        if self.adapted:
            config.update(
                target_location=keras.ops.convert_to_numpy(self.target_location).tolist(),
                target_scale=keras.ops.convert_to_numpy(self.target_scale).tolist(),
            )
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
