"""Validation loss after each epoch: compiled and batched like training (a smaller last batch).

For an ensemble (`probnn_members = M`) every member sees the same validation
rows, the targets are broadcast to `(batch, M, ...)`, and the reported loss is
the mean over members of each member's loss (not the mixture's); each
member's own loss is returned too (per-member early stopping).
"""

import math

import numpy as np
import tensorflow as tf

from probnn.functional import pad_rows
from probnn.training.compiled import _Compiled, cached_program, last_batch_jit
from probnn.training.data import _is_dataset
from probnn.training.errors import _err
from probnn.training.fused import _bucket, _signature
from probnn.training.objective import _member_targets, _regularization


class _Evaluator:
    """Validation loss (data + model.losses), compiled and batched."""

    def __init__(self, model, objective, data, batch_size, jit_compile):
        self.model = model
        members = objective.members

        def batch_terms(xb, yb):
            y_pred = model(xb, training=False)
            values = objective.per_example(_member_targets(yb, members), y_pred)
            return tf.reshape(values, (tf.shape(values)[0], -1))  # (rows, members or 1)

        if _is_dataset(data):
            self.dataset = data

            def step(xb, yb):
                values = batch_terms(xb, yb)
                rows = tf.cast(tf.shape(values)[0], values.dtype)
                return (tf.reduce_sum(values, axis=0), _regularization(model, values.dtype) * rows, rows)

            key = ("eval-dataset", objective.key, jit_compile)
            self._step = cached_program(
                model, key, lambda: _Compiled(step, jit_compile, "validation step", reduce_retracing=True)
            )
            return
        self.dataset = None
        xv, yv = data.x, data.y
        n = data.n
        rows = _bucket(n)
        bsz = min(batch_size, rows)
        steps = math.ceil(rows / bsz)
        full, rest = n // bsz, n % bsz
        order = np.resize(np.arange(n), steps * bsz).astype(np.int32)
        pad = lambda a: tf.constant(pad_rows(a, rows))  # noqa: E731
        x_all, y_all = tf.nest.map_structure(pad, xv), pad(yv)
        self.calls = []

        def program(size, batches, jit):
            # The first `count` of `batches` batches of `size` rows; every batch
            # has a static shape, so activity regularisers (averaged per batch)
            # see only real rows.
            def run(x_all, y_all, order, count):
                def body(i, s_data, s_reg):
                    rows = tf.gather(order, i)  # static shape (size,)
                    values = batch_terms(
                        tf.nest.map_structure(lambda t: tf.gather(t, rows), x_all), tf.gather(y_all, rows)
                    )
                    return (
                        i + 1,
                        s_data + tf.reduce_sum(tf.cast(values, tf.float64), axis=0),
                        s_reg + tf.cast(_regularization(model, values.dtype), tf.float64) * size,
                    )

                zero = tf.constant(0.0, tf.float64)
                _, s_data, s_reg = tf.while_loop(
                    lambda i, *_: i < count,
                    body,
                    (tf.constant(0), tf.zeros([members or 1], tf.float64), zero),
                )
                return s_data, s_reg

            key = ("eval", objective.key, size, batches, _signature(x_all), _signature(y_all), jit)
            return cached_program(model, key, lambda: _Compiled(run, jit, "validation loop"))

        if full:
            self.calls.append(
                (
                    program(bsz, steps, jit_compile),
                    (x_all, y_all, tf.constant(order.reshape(steps, bsz)), tf.constant(full)),
                )
            )
        if rest:
            self.calls.append(
                (
                    program(rest, 1, last_batch_jit(jit_compile)),
                    (x_all, y_all, tf.constant(order[full * bsz : n][None]), tf.constant(1)),
                )
            )
        self.n = n

    def __call__(self):
        """Returns `(data term per member (M,) or (1,), regularisation)`, means over the rows."""
        if self.dataset is None:
            s_data = s_reg = 0.0
            for run, args in self.calls:
                d, r = run(*args)
                s_data, s_reg = s_data + d.numpy(), s_reg + float(r)
            n = float(self.n)
        else:
            s_data = s_reg = n = 0.0
            for xb, yb in self.dataset:
                d, r, c = self._step(xb, yb)
                s_data = s_data + np.asarray(d, np.float64)
                s_reg, n = s_reg + float(r), n + float(c)
        if n == 0:
            raise _err("validation_data is empty")
        return s_data / n, s_reg / n
