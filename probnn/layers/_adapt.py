"""Shared plumbing for layers with a data-driven `adapt` method.

`adapt` builds the layer, as `keras.layers.Normalization.adapt` does: on an
unbuilt layer it calls `build((None, features))` with the data's feature size,
then writes the values it computed into the variables. So the adapted state
can be read at once (`RBF(50).adapt(x)` then `rbf.widths`), lives in the
layer's weights (saved with the model, never in `get_config`), and a later
call, `build` or model construction keeps it: `build` on a built layer only
checks the feature size.
"""

import keras
import numpy as np

from probnn._validation import finite_array


class AdaptMixin:
    """Mixin for `keras.layers.Layer` subclasses: `adapt` builds, `build` is idempotent, input checks."""

    def _describe(self):
        return f"{type(self).__name__} layer {self.name!r}"

    def _store_adapted(self, features, values):
        """Build the layer for `features` input features if it is not built, then write
        `{attribute_name: array}` into its variables."""
        if not self.built:
            self.build((None, features))
        for attr, value in values.items():
            variable = getattr(self, attr)
            variable.assign(np.asarray(value).astype(variable.dtype).reshape(variable.shape))

    def _check_build_shape(self, input_shape):
        """Return the (known) feature size of `input_shape`, or raise a ValueError.

        Call first in `build`, and return from `build` right after it when
        `self.built` is already true (built by `adapt` or an earlier `build`):
        the weights, adapted or trained, are kept.
        """
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
        if self.built and features != self._features:
            raise ValueError(
                f"{self._describe()}: already built (by adapt or an earlier build) for "
                f"{self._features} features, got input shape {input_shape}"
            )
        self.input_spec = keras.layers.InputSpec(min_ndim=2, axes={-1: features})
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
        finite_array(self._describe(), "adapt data", x, dtype=None)
        if self.built and x.shape[1] != self._features:
            raise ValueError(
                f"{self._describe()}: expected data with {self._features} features, got {x.shape[1]}"
            )
        return x
