"""How training and validation cut data into batches: buckets, padding, member targets, signatures.

Shared by the runners, the validation loop and the data checks of
`probnn.fit`; it imports nothing from the rest of `probnn.training` (only
NumPy, TensorFlow and `probnn.functional.pad_rows`).
"""

import numpy as np
import tensorflow as tf

from probnn.functional import pad_rows


def bucket(n):
    """`n` rounded up to one of 8 sizes per octave (at most 12.5 % more rows).

    Nearby data sizes (cross-validation folds, a few rows more or less) then
    share one compiled program: the arrays are padded to the bucket and the
    padding rows are never gathered.

    Example:
    >>> [bucket(n) for n in (7, 100, 1000, 1025)]
    [7, 104, 1024, 1152]
    """
    quantum = 2 ** max(0, n.bit_length() - 4)
    return -(-n // quantum) * quantum


def padded(nest, rows):
    """Every array of `nest` padded to `rows` rows (`pad_rows`) as a constant tensor; None stays None.

    Example:
    >>> import numpy as np
    >>> padded(np.array([[1.0], [2.0]]), 3).numpy()[:, 0].tolist()
    [1.0, 2.0, 2.0]
    """
    if nest is None:
        return None
    return tf.nest.map_structure(lambda a: tf.constant(pad_rows(a, rows)), nest)


def member_major(nest, rows):
    """Member-wise arrays `(n, M, ...)` padded to `rows` rows (`pad_rows`) as tensors `(M, rows, ...)`.

    None stays None.

    Example:
    >>> import numpy as np
    >>> tuple(member_major(np.zeros((5, 3, 2)), 6).shape)
    (3, 6, 2)
    """
    if nest is None:
        return None
    return tf.nest.map_structure(lambda a: tf.constant(np.swapaxes(pad_rows(a, rows), 0, 1)), nest)


def gather_member_rows(t, rows):
    """Member m's rows from its own column: `out[b, m] = t[m, rows[b, m]]` for member-major `t`.

    `t` is `(M, N, ...)` (`member_major`), `rows` `(B, M)`; the result is `(B, M, ...)`.

    Example:
    >>> import tensorflow as tf
    >>> t = tf.constant([[0, 1, 2], [10, 11, 12]])  # 2 members, 3 rows
    >>> gather_member_rows(t, tf.constant([[2, 0], [1, 1]])).numpy().tolist()
    [[2, 10], [1, 11]]
    """
    out = tf.gather(t, tf.transpose(rows), batch_dims=1)  # (M, B, ...)
    return tf.experimental.numpy.swapaxes(out, 0, 1)


def signature(nest):
    """Structure, shapes and dtypes of a nest of tensors, as a hashable cache key (None for None).

    Example:
    >>> import tensorflow as tf
    >>> signature({"a": tf.zeros((4, 2))})
    "{'a': ((4, 2), 'float32')}"
    """
    if nest is None:
        return None
    return str(tf.nest.map_structure(lambda t: (tuple(t.shape), t.dtype.name), nest))


def member_targets(y, members):
    """Targets `(batch, ...)` broadcast to `(batch, members, ...)` for a stack of members (None: unchanged).

    Example:
    >>> import tensorflow as tf
    >>> tuple(member_targets(tf.zeros((5, 1)), 3).shape)
    (5, 3, 1)
    """
    if members is None:
        return y
    y = tf.expand_dims(y, 1)
    return tf.broadcast_to(y, tf.concat([tf.shape(y)[:1], [members], tf.shape(y)[2:]], 0))


def epoch_dataset(arrays, batch_size, shuffle, seed, epoch):
    """In-memory arrays as the `tf.data.Dataset` of one epoch (the strategy path).

    `arrays` has `x` (a nest), `y`, `weights` (or None) and `n` rows; with
    `shuffle` the rows are in the permutation of `(seed, epoch)`.

    Example:
    >>> import numpy as np, types
    >>> data = types.SimpleNamespace(x=np.arange(5.0)[:, None], y=np.zeros((5, 1)), weights=None, n=5)
    >>> [len(b[0]) for b in epoch_dataset(data, 2, True, 0, 0)]
    [2, 2, 1]
    """
    if shuffle:
        order = np.random.default_rng([int(seed), int(epoch)]).permutation(arrays.n)
    else:
        order = np.arange(arrays.n)
    parts = (tf.nest.map_structure(lambda a: a[order], arrays.x), arrays.y[order])
    if arrays.weights is not None:
        parts += (arrays.weights[order],)
    return tf.data.Dataset.from_tensor_slices(parts).batch(batch_size)
