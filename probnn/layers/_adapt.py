"""Shared plumbing for layers with a data-driven `adapt` method.

`adapt` may run before the layer is built (no variables yet). The values it
computes are then kept as pending NumPy arrays and written into the variables
at the end of `build`; after build they are written at once. Either way the
adapted state lives in the layer's weights, so it is saved with the model and
never appears in `get_config`.
"""

import keras
import numpy as np


class AdaptMixin:
    """Mixin for `keras.layers.Layer` subclasses: deferred weight assignment and input checks."""

    def _describe(self):
        return f"{type(self).__name__} layer {self.name!r}"

    def _assign(self, values):
        """Write `{attribute_name: array}` into the layer's variables."""
        for attr, value in values.items():
            variable = getattr(self, attr)
            variable.assign(np.asarray(value).astype(variable.dtype).reshape(variable.shape))

    def _assign_or_defer(self, values):
        """Write `{attribute_name: array}` into the variables now, or at build if not built."""
        if self.built:
            self._assign(values)
        else:
            pending = dict(getattr(self, "_pending_adapt", None) or {})
            pending.update(values)
            self._pending_adapt = pending

    def _apply_pending(self):
        """Call at the end of `build`."""
        pending = getattr(self, "_pending_adapt", None)
        if pending:
            self._pending_adapt = None
            self._assign(dict(pending))

    def _check_build_shape(self, input_shape):
        """Return the (known) feature size of `input_shape`, or raise a ValueError."""
        input_shape = tuple(input_shape)
        if len(input_shape) < 2:
            raise ValueError(
                f"{self._describe()}: expected inputs of rank >= 2 (batch, ..., features), "
                f"got shape {input_shape}"
            )
        if input_shape[-1] is None:
            raise ValueError(
                f"{self._describe()}: the last (feature) dimension must be known, got shape {input_shape}"
            )
        features = int(input_shape[-1])
        self.input_spec = keras.layers.InputSpec(min_ndim=2, axes={-1: features})
        expected = getattr(self, "_adapted_features", None)
        if expected is not None and features != expected:
            raise ValueError(
                f"{self._describe()}: adapted on data with {expected} features, "
                f"built with inputs of shape {input_shape}"
            )
        return features

    def _adapt_data(self, x):
        """`x` as a finite floating (num_points, features) array checked against the layer."""
        x = np.asarray(x)
        if not np.issubdtype(x.dtype, np.floating):
            x = x.astype(np.float32)
        if x.ndim < 2:
            raise ValueError(
                f"{self._describe()}: adapt expects data of shape (num_points, ..., features), "
                f"got shape {x.shape}"
            )
        x = x.reshape(-1, x.shape[-1])
        if x.shape[0] == 0:
            raise ValueError(f"{self._describe()}: adapt got no data points")
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{self._describe()}: adapt data contain NaN or infinite values")
        expected = self._features if self.built else getattr(self, "_adapted_features", None)
        if expected is not None and x.shape[1] != expected:
            raise ValueError(
                f"{self._describe()}: expected data with {expected} features, got {x.shape[1]}"
            )
        if not self.built:
            self._adapted_features = int(x.shape[1])
        return x
