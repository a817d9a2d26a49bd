"""Validation loss after each epoch: compiled, batched, padded and masked like training."""

import math

import numpy as np
import tensorflow as tf

from probnn.training.compiled import _Compiled
from probnn.training.data import _is_dataset
from probnn.training.errors import _err
from probnn.training.objective import _regularization


class _Evaluator:
    """Validation loss (data + model.losses), compiled and batched."""

    def __init__(self, model, per_example, data, batch_size, jit_compile):
        self.model = model
        if _is_dataset(data):
            self.dataset = data

            def step(xb, yb):
                y_pred = model(xb, training=False)
                values = per_example(yb, y_pred)
                rows = tf.cast(tf.shape(values)[0], tf.float32)
                return tf.reduce_sum(values), _regularization(model) * rows, rows

            self._step = _Compiled(
                lambda jit: tf.function(step, jit_compile=jit, reduce_retracing=True),
                jit_compile, "validation step")
            return
        self.dataset = None
        xv, yv = data
        n = int(xv.shape[0])
        bsz = min(batch_size, n)
        steps = math.ceil(n / bsz)
        pad = steps * bsz - n
        order = np.concatenate([np.arange(n), np.resize(np.arange(n), pad)]).astype(np.int32)
        self.args = (tf.constant(xv), tf.constant(yv),
                     tf.constant(order.reshape(steps, bsz)))

        def run(x_all, y_all, order):
            def body(i, s_data, s_reg):
                rows = tf.gather(order, i)  # static shape (bsz,)
                mask = tf.cast(tf.range(bsz) + i * bsz < n, tf.float32)
                real = tf.reduce_sum(mask)
                y_pred = model(tf.gather(x_all, rows), training=False)
                values = per_example(tf.gather(y_all, rows), y_pred)
                return (i + 1, s_data + tf.reduce_sum(values * mask),
                        s_reg + _regularization(model) * real)

            zero = tf.constant(0.0, tf.float32)
            _, s_data, s_reg = tf.while_loop(lambda i, *_: i < steps, body,
                                             (tf.constant(0), zero, zero))
            return s_data, s_reg, tf.constant(float(n))

        self._run = _Compiled(lambda jit: tf.function(run, jit_compile=jit),
                              jit_compile, "validation loop")

    def __call__(self):
        if self.dataset is None:
            s_data, s_reg, n = (float(v) for v in self._run(*self.args))
        else:
            s_data = s_reg = n = 0.0
            for xb, yb in self.dataset:
                d, r, c = self._step(xb, yb)
                s_data, s_reg, n = s_data + float(d), s_reg + float(r), n + float(c)
        if n == 0:
            raise _err("validation_data is empty")
        return s_data / n, s_reg / n
