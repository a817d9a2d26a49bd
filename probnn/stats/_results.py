"""Result types of `probnn.stats`: named tuples of tensors that print like scipy's results.

`TtestResult(statistic=3.872983346207417, pvalue=0.030466291662170977, df=3.0)`
instead of one `<tf.Tensor: shape=(), dtype=float64, numpy=...>` per field.
The fields stay tensors (with their gradients); only the repr changes.
Non-scalar fields print their shape and dtype and their values to 7 digits
(the first and last three of the flattened values when there are more than
six); symbolic tensors (inside
`tf.function` or a Keras functional model) print their shape and dtype only.
"""

import collections

import numpy as np
import tensorflow as tf


def _format(value):
    if isinstance(value, tuple):
        return "(" + ", ".join(_format(v) for v in value) + ")"
    if isinstance(value, (tf.Tensor, tf.Variable)):
        dtype = value.dtype.name
        if not hasattr(value, "numpy"):  # symbolic (graph) tensor
            return f"<symbolic shape={tuple(value.shape)} {dtype}>"
        value = value.numpy()
    else:
        value = np.asarray(value)
        dtype = value.dtype.name
    if value.ndim == 0:
        return str(value[()])  # numpy's shortest round-trip digits for the value's own dtype
    flat = value.ravel()
    shown = (
        [_short(v) for v in flat]
        if flat.size <= 6
        else ([_short(v) for v in flat[:3]] + ["..."] + [_short(v) for v in flat[-3:]])
    )
    return f"<shape={value.shape} {dtype}: [{', '.join(shown)}]>"


def _short(v):
    """One element of a non-scalar field, to 7 significant digits."""
    return f"{v:.7g}" if np.issubdtype(type(v), np.floating) else str(v)


def _repr(self):
    fields = ", ".join(f"{name}={_format(value)}" for name, value in zip(self._fields, self))
    return f"{type(self).__name__}({fields})"


def result_type(name, fields, module, doc):
    """A named tuple type `name` with `fields`, defined in `module`, with the compact repr."""
    base = collections.namedtuple(name, fields)
    return type(name, (base,), {"__slots__": (), "__repr__": _repr, "__module__": module, "__doc__": doc})
