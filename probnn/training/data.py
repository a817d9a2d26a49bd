"""Data preparation and argument checks for `probnn.fit`.

Arrays are converted to NumPy (1-D becomes a column, floats become floatx),
checked for matching rows and NaN/inf; datasets are checked to yield finite
`(x, y)` batches.
"""

import collections
import numbers

import keras
import numpy as np
import tensorflow as tf

from probnn.training.errors import _err


def _is_dataset(obj):
    return isinstance(obj, tf.data.Dataset)


def _as_array(name, value):
    if isinstance(value, (tf.Tensor, tf.Variable)):
        value = value.numpy()
    try:
        arr = np.asarray(value)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise _err(f"{name} must be a NumPy array or tensor, got {type(value).__name__}") from exc
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise _err(f"{name} must be a numeric array (float, int or bool), got dtype {arr.dtype}")
    if arr.ndim == 0:
        raise _err(f"{name} must have a leading batch dimension, got a scalar")
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.dtype.kind == "f" and arr.dtype != np.dtype(keras.config.floatx()):
        arr = arr.astype(keras.config.floatx())
    return arr


def _check_finite(name, arr):
    if arr.dtype.kind != "f":
        return
    bad = ~np.isfinite(arr.reshape(arr.shape[0], -1)).all(axis=1)
    if bad.any():
        row = int(np.argmax(bad))
        raise _err(
            f"{name} contains NaN or inf (first offending row index {row}, "
            f"{int(bad.sum())} offending rows); remove or impute them before training"
        )


def _check_xy(x, y, x_name="x", y_name="y"):
    if y is None:
        raise _err(f"{y_name} is required when {x_name} is an array (pass targets, or a "
                   "tf.data.Dataset yielding (x, y) batches as x)")
    x = _as_array(x_name, x)
    y = _as_array(y_name, y)
    if x.shape[0] != y.shape[0]:
        raise _err(f"{x_name} and {y_name} must have the same number of rows, got "
                   f"{x.shape[0]} and {y.shape[0]}")
    if x.shape[0] == 0:
        raise _err(f"{x_name} and {y_name} are empty; need at least one row")
    _check_finite(x_name, x)
    _check_finite(y_name, y)
    return x, y


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise _err(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_dataset(name, ds):
    spec = ds.element_spec
    if not (isinstance(spec, tuple) and len(spec) == 2):
        raise _err(f"{name} must be a tf.data.Dataset yielding (x, y) batches; its element "
                   f"spec is {spec!r}")
    if int(ds.cardinality()) == int(tf.data.INFINITE_CARDINALITY):
        raise _err(f"{name} is an infinite tf.data.Dataset (e.g. .repeat() without a count); "
                   "an epoch is one pass over the dataset, so pass a finite one (.take(n))")
    return ds


class _EpochDatasets:
    """In-memory arrays as a per-epoch reshuffled `tf.data.Dataset` (strategy path)."""

    def __init__(self, arrays, batch_size, shuffle, seed):
        self.x, self.y = arrays
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed

    def dataset(self, epoch):
        n = self.x.shape[0]
        if self.shuffle:
            order = np.random.default_rng([int(self.seed), int(epoch)]).permutation(n)
        else:
            order = np.arange(n)
        ds = tf.data.Dataset.from_tensor_slices((self.x[order], self.y[order]))
        return ds.batch(self.batch_size)


_Arguments = collections.namedtuple("_Arguments", [
    "epochs", "batch_size", "checkpoint_every", "validation_batch_size", "chunk",
    "jit_compile", "verbose", "early_stopping", "strategy", "seed"])


def _check_arguments(*, model, epochs, batch_size, checkpoint_every, validation_batch_size,
                     steps_per_execution, jit_compile, verbose, early_stopping, strategy, seed):
    """Checks `fit`'s scalar arguments; returns them normalised as an `_Arguments`."""
    from probnn.training.callbacks import EarlyStopping

    if not isinstance(model, keras.Model):
        raise _err(f"model must be a keras.Model (Keras 3), got {type(model).__name__}")
    epochs = _positive_int("epochs", epochs)
    batch_size = _positive_int("batch_size", batch_size)
    checkpoint_every = _positive_int("checkpoint_every", checkpoint_every)
    if validation_batch_size is None:
        validation_batch_size = max(batch_size, 1024)
    validation_batch_size = _positive_int("validation_batch_size", validation_batch_size)
    if steps_per_execution == "epoch":
        chunk = 2**31 - 1
    else:
        chunk = _positive_int("steps_per_execution (or 'epoch')", steps_per_execution)
    if jit_compile not in ("auto", True, False):
        raise _err(f"jit_compile must be 'auto', True or False, got {jit_compile!r}")
    if verbose not in (0, 1, 2):
        raise _err(f"verbose must be 0, 1 or 2, got {verbose!r}")
    if isinstance(early_stopping, numbers.Integral) and not isinstance(early_stopping, bool):
        early_stopping = EarlyStopping(patience=int(early_stopping))
    if early_stopping is not None and not isinstance(early_stopping, EarlyStopping):
        raise _err("early_stopping must be None, an int patience or a "
                   f"probnn.training.EarlyStopping, got {early_stopping!r}")
    if strategy is not None and not isinstance(strategy, tf.distribute.Strategy):
        raise _err(f"strategy must be a tf.distribute.Strategy, got {type(strategy).__name__}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
        raise _err(f"seed must be an integer or None, got {seed!r}")
    return _Arguments(epochs, batch_size, checkpoint_every, validation_batch_size, chunk,
                      jit_compile, verbose, early_stopping, strategy, seed)


def _prepare_data(x, y, validation_data):
    """Checks the data; returns `(arrays or None, dataset or None, sample_x, validation_data)`."""
    if x is None:
        raise _err("x is required (an array with y, or a tf.data.Dataset of (x, y) batches)")
    if _is_dataset(x):
        if y is not None:
            raise _err("y must be None when x is a tf.data.Dataset (it must yield (x, y))")
        dataset = _check_dataset("x", x)
        arrays = None
        sample_x = next(iter(dataset.take(1)))[0]
    else:
        arrays = _check_xy(x, y)
        dataset = None
        sample_x = arrays[0][:1]
    if validation_data is not None:
        if _is_dataset(validation_data):
            _check_dataset("validation_data", validation_data)
        else:
            if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
                raise _err("validation_data must be (x_val, y_val) or a tf.data.Dataset of "
                           f"(x, y) batches, got {type(validation_data).__name__}")
            validation_data = _check_xy(*validation_data, x_name="validation x",
                                        y_name="validation y")
            if arrays is not None and validation_data[0].shape[1:] != arrays[0].shape[1:]:
                raise _err(f"validation x has row shape {validation_data[0].shape[1:]}, but "
                           f"x has {arrays[0].shape[1:]}")
    return arrays, dataset, sample_x, validation_data
