"""The fused runner: in-memory data, one XLA call per epoch (or per K steps).

See docs/design.md (Training) for the design: device-resident arrays, a
per-epoch permutation from `(seed, epoch)`, the padded and masked last batch.
"""

import math

import numpy as np
import tensorflow as tf

from probnn.training.compiled import _Compiled
from probnn.training.objective import _regularization


def _pad_permutation(n, steps, batch_size, seed, epoch, shuffle):
    """Row order of one epoch, padded with its own first rows to steps * batch_size."""
    if shuffle:
        order = np.random.default_rng([int(seed), int(epoch)]).permutation(n)
    else:
        order = np.arange(n)
    pad = steps * batch_size - n
    if pad:
        order = np.concatenate([order, np.resize(order, pad)])
    return tf.constant(order.astype(np.int32).reshape(steps, batch_size))


class _FusedRunner:
    """In-memory data, single device: an epoch (or K steps) per XLA call."""

    def __init__(self, model, optimizer, per_example, x, y, batch_size, jit_compile):
        self.n = int(x.shape[0])
        self.batch_size = min(batch_size, self.n)
        self.steps = math.ceil(self.n / self.batch_size)
        self.x = tf.constant(x)
        self.y = tf.constant(y)
        model_vars = model.trainable_variables
        n, bsz = self.n, self.batch_size

        def run(x_all, y_all, order, start, stop):
            def body(i, sum_obj, sum_data, count, ok):
                rows = tf.gather(order, i)  # static shape (bsz,)
                xb = tf.gather(x_all, rows)
                yb = tf.gather(y_all, rows)
                mask = tf.cast(tf.range(bsz) + i * bsz < n, tf.float32)
                real = tf.reduce_sum(mask)
                with tf.GradientTape() as tape:
                    y_pred = model(xb, training=True)
                    data = tf.reduce_sum(per_example(yb, y_pred) * mask) / real
                    objective = data + _regularization(model)
                grads = tape.gradient(objective, model_vars)
                finite = tf.math.is_finite(objective)
                for g in grads:
                    if g is not None:
                        finite = tf.logical_and(finite, tf.reduce_all(tf.math.is_finite(g)))

                def apply():
                    optimizer.apply(grads, model_vars)
                    return tf.constant(True)

                tf.cond(finite, apply, lambda: tf.constant(False))
                real64 = tf.cast(real, tf.float64)
                return (i + 1, sum_obj + tf.cast(objective, tf.float64) * real64,
                        sum_data + tf.cast(data, tf.float64) * real64, count + real64, finite)

            zero = tf.constant(0.0, tf.float64)  # float64 sums: exact for long epochs
            i, s_obj, s_data, count, ok = tf.while_loop(
                lambda i, *rest: tf.logical_and(i < stop, rest[-1]),
                body, (start, zero, zero, zero, tf.constant(True)))
            # One tensor, so the host reads the results with a single transfer.
            return tf.stack([tf.cast(i, tf.float64), s_obj, s_data, count,
                             tf.cast(ok, tf.float64)])

        self._run = _Compiled(
            lambda jit: tf.function(run, jit_compile=jit, reduce_retracing=True),
            jit_compile, "training loop")

    def run_epoch(self, epoch, seed, shuffle, chunk, on_chunk):
        order = _pad_permutation(self.n, self.steps, self.batch_size, seed, epoch, shuffle)
        totals = np.zeros(3)
        start = 0
        while start < self.steps:
            stop = min(start + chunk, self.steps)
            i, s_obj, s_data, cnt, ok = self._run(
                self.x, self.y, order, tf.constant(start, tf.int32),
                tf.constant(stop, tf.int32)).numpy()
            totals += (s_obj, s_data, cnt)
            if not ok:
                # The loop stopped right after the bad step, whose 0-based index is
                # i - 1: its 1-based number is i.
                return totals, int(i)
            start = stop
            on_chunk(stop, totals)
        return totals, None
