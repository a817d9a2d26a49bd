"""The streaming runner: `tf.data` batches (and any data under a `tf.distribute` strategy).

A compiled loop pulls up to `steps_per_execution` batches from an iterator per
call, running one compiled step per batch. See docs/design.md (Training).
"""

import numpy as np
import tensorflow as tf

from probnn.training.compiled import _is_xla_failure, _warn_xla_fallback
from probnn.training.objective import _regularization


class _StreamRunner:
    """A dataset (or distributed data): up to K steps per call pulled from an iterator.

    The outer loop is a plain `tf.function` (iterator ops have no XLA kernels);
    the per-batch gradient computation inside it is a nested
    `tf.function(jit_compile=True)`, and so is the update without a strategy.
    """

    def __init__(self, model, optimizer, per_example, dataset, strategy, jit_compile):
        self.strategy = strategy
        self.steps = None
        self.set_dataset(dataset)
        self._model = model
        self._optimizer = optimizer
        self._per_example = per_example
        self._mode = jit_compile
        self._checked = jit_compile is False
        self._build(jit_compile is not False)

    def set_dataset(self, dataset):
        self.dataset = dataset
        try:
            card = int(dataset.cardinality())
        except Exception:  # pragma: no cover
            card = -1
        if card > 0:
            self.steps = card
        if self.strategy is not None:
            self.dist_dataset = self.strategy.experimental_distribute_dataset(dataset)

    def _build(self, jit):
        model, optimizer, per_example = self._model, self._optimizer, self._per_example
        strategy = self.strategy
        model_vars = model.trainable_variables
        replicas = strategy.num_replicas_in_sync if strategy is not None else 1
        sum_ = tf.distribute.ReduceOp.SUM

        def grads_step(xb, yb, global_rows):
            with tf.GradientTape() as tape:
                y_pred = model(xb, training=True)
                data = tf.reduce_sum(per_example(yb, y_pred)) / global_rows
                objective = data + _regularization(model) / replicas
            grads = tape.gradient(objective, model_vars)
            finite = tf.math.is_finite(objective)
            for g in grads:
                if g is not None:
                    finite = tf.logical_and(finite, tf.reduce_all(tf.math.is_finite(g)))
            return objective, data, grads, finite

        def local_rows(xb):
            return tf.cast(tf.shape(xb)[0], tf.float32)

        if strategy is None:
            def train_step(xb, yb):
                rows = local_rows(xb)
                objective, data, grads, finite = grads_step(xb, yb, rows)

                def apply():
                    optimizer.apply(grads, model_vars)
                    return tf.constant(True)

                tf.cond(finite, apply, lambda: tf.constant(False))
                return objective, data, rows, finite

            compiled_step = tf.function(train_step, jit_compile=jit, reduce_retracing=True)

            def one_step(batch):
                return compiled_step(*batch)
        else:
            compiled_grads = tf.function(grads_step, jit_compile=jit, reduce_retracing=True)

            def replica_grads(xb, yb):
                ctx = tf.distribute.get_replica_context()
                rows = local_rows(xb)
                global_rows = ctx.all_reduce(sum_, rows)
                objective, data, grads, finite = compiled_grads(
                    xb, yb, tf.maximum(global_rows, 1.0))
                return objective, data, rows, tf.cast(tf.logical_not(finite), tf.float32), grads

            def replica_apply(grads):
                optimizer.apply(grads, model_vars)

            def one_step(batch):
                xb, yb = batch
                objective, data, rows, bad, grads = strategy.run(replica_grads, args=(xb, yb))
                # Every replica must agree on skipping a bad step: decide on the sum.
                ok = strategy.reduce(sum_, bad, axis=None) == 0

                def apply():
                    # Runs in cross-replica context: the optimizer's gradient
                    # all-reduce (a merge_call) cannot sit inside a cond in replica context.
                    strategy.run(replica_apply, args=(grads,))
                    return tf.constant(True)

                tf.cond(ok, apply, lambda: tf.constant(False))
                return (strategy.reduce(sum_, objective, axis=None),
                        strategy.reduce(sum_, data, axis=None),
                        strategy.reduce(sum_, rows, axis=None), ok)

        def run(iterator, max_steps):
            zero = tf.constant(0.0, tf.float64)

            def body(i, sum_obj, sum_data, count, ok, more):
                optional = iterator.get_next_as_optional()

                def step():
                    objective, data, rows, good = one_step(optional.get_value())
                    rows = tf.cast(rows, tf.float64)
                    return (tf.cast(objective, tf.float64) * rows,
                            tf.cast(data, tf.float64) * rows, rows, good, tf.constant(1))

                def done():
                    return zero, zero, zero, tf.constant(True), tf.constant(0)

                d_obj, d_data, d_rows, good, took = tf.cond(optional.has_value(), step, done)
                return (i + took, sum_obj + d_obj, sum_data + d_data, count + d_rows, good,
                        took > 0)

            i, s_obj, s_data, count, ok, more = tf.while_loop(
                lambda i, s, d, c, ok, more: tf.logical_and(
                    tf.logical_and(i < max_steps, ok), more),
                body, (tf.constant(0), zero, zero, zero, tf.constant(True), tf.constant(True)))
            return tf.stack([tf.cast(i, tf.float64), s_obj, s_data, count,
                             tf.cast(ok, tf.float64), tf.cast(more, tf.float64)])

        self._run = tf.function(run)

    def run_epoch(self, epoch, seed, shuffle, chunk, on_chunk):
        if not self._checked:
            try:
                return self._run_epoch(chunk, on_chunk)
            except Exception as exc:
                if self._mode != "auto" or not _is_xla_failure(exc):
                    raise
                # XLA compiles a cluster before running it: no step of this
                # epoch was applied, so the epoch restarts without XLA.
                _warn_xla_fallback("training step", exc)
                self._build(False)
            finally:
                self._checked = True
        return self._run_epoch(chunk, on_chunk)

    def _run_epoch(self, chunk, on_chunk):
        data = self.dist_dataset if self.strategy is not None else self.dataset
        iterator = iter(data)
        totals = np.zeros(3)
        done = 0
        while True:
            i, s_obj, s_data, cnt, ok, more = self._run(
                iterator, tf.constant(chunk, tf.int32)).numpy()
            i = int(i)
            totals += (s_obj, s_data, cnt)
            if not ok:
                return totals, done + i
            done += i
            if not more or i < chunk:
                break
            on_chunk(done, totals)
        if self.steps is None:
            self.steps = done
        on_chunk(done, totals)
        return totals, None
