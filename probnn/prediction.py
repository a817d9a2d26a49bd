"""From a trained model and inputs to the predictive distribution."""

import numpy as np
import tensorflow as tf

from probnn.heads.base import find_head


def predict_distribution(model, x, *, batch_size=1024, head=None):
    """Return the predictive `tfd.Distribution` of `model` at inputs `x`.

    The parameters are computed in batches of `batch_size` rows by one
    compiled forward pass (no Keras callbacks, no progress bar), then handed
    to the head's `distribution`, whose batch shape is `(len(x),)`.

    Args:
        model: a Keras model whose output is a probnn head's parameter tensor.
        x: inputs: an array, a tensor, or a (nested) structure the model accepts.
        batch_size: rows per forward pass (positive), to bound memory.
        head: the head to use; found with `probnn.heads.find_head` if omitted.

    Returns:
        A `tfd.Distribution` whose batch shape is the leading shape of `x`.

    Example:
    >>> import keras, numpy as np, probnn
    >>> model = keras.Sequential([keras.Input((2,)), probnn.heads.NormalHead()])
    >>> dist = probnn.predict_distribution(model, np.zeros((5, 2), "float32"))
    >>> dist.batch_shape.as_list(), dist.event_shape.as_list()
    ([5], [1])
    """
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(
            f"predict_distribution: batch_size must be a positive integer, got {batch_size!r}"
        )
    head = find_head(model) if head is None else head
    params = model.predict(x, batch_size=int(batch_size), verbose=0)
    if not np.all(np.isfinite(params)):
        raise ValueError(
            "predict_distribution: the model produced non-finite parameters "
            "(check the inputs for NaN/inf and the weights for divergence)"
        )
    return head.distribution(tf.convert_to_tensor(params))
