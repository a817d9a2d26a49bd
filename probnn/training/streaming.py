"""The streaming runner: `tf.data` batches (and any data under a `tf.distribute` strategy).

A compiled loop pulls up to `steps_per_execution` batches from an iterator per
call, running one compiled `train_step` per batch. See docs/design.md (Training).
"""

import functools
import math

import tensorflow as tf

from probnn.training.batching import epoch_dataset, member_targets
from probnn.training.compiled import Fallback, cached_program
from probnn.training.step import StepBatch, step_gradients, train_step


class StreamRunner:
    """A dataset (or distributed data): up to K steps per call pulled from an iterator.

    A runner (see `runner.Runner`). `data` is a `tf.data.Dataset`, or
    in-memory arrays (`data.FitData.arrays`), which become a freshly
    shuffled dataset of `batch_size` rows per batch at every epoch (the path
    of in-memory data under a strategy).

    The outer loop is a plain `tf.function` (iterator ops have no XLA kernels);
    the per-batch `train_step` inside it is a nested
    `tf.function(jit_compile=True)` (under a strategy: the gradients).
    The compiled loop is cached on the model (`cached_program`), so a later
    `fit` on the same model, optimizer, loss and strategy reuses it (a dataset
    with the same element shapes is not traced again).
    """

    def __init__(self, model, optimizer, objective, data, strategy, jit_compile, batch_size):
        self.strategy = strategy
        self.steps = None
        self._arrays = None
        if isinstance(data, tf.data.Dataset):
            self._set_dataset(data)
        else:
            self._arrays, self._batch_size = data, batch_size
            self.steps = math.ceil(data.n / batch_size)
        key = (
            "stream",
            optimizer,
            objective.key,
            id(strategy),
            jit_compile,
            tuple(id(v) for v in model.trainable_variables),
        )
        self._program = cached_program(
            model, key, lambda: _StreamProgram(model, optimizer, objective, strategy, jit_compile)
        )

    def _set_dataset(self, dataset):
        self.dataset = dataset
        try:
            card = int(dataset.cardinality())
        except Exception:  # pragma: no cover
            card = -1
        if card > 0:
            self.steps = card
        if self.strategy is not None:
            self.dist_dataset = self.strategy.experimental_distribute_dataset(dataset)

    def run_epoch(self, epoch, seed, shuffle, chunk, before, after):
        """Runs one epoch; returns `(totals, bad_step or None)` (see `runner.Runner`)."""
        if self._arrays is not None:
            self._set_dataset(epoch_dataset(self._arrays, self._batch_size, shuffle, seed, epoch))
        data = self.dist_dataset if self.strategy is not None else self.dataset
        totals, bad_step, done = self._program.run_epoch(data, chunk, before, after)
        if self.steps is None:
            self.steps = done
        return totals, bad_step


def _batch_weights(batch):
    """The `(rows, 1)` weights of a dataset's `(x, y)` or `(x, y, sample_weight)` batch."""
    if len(batch) == 3:
        return tf.reshape(tf.cast(batch[2], tf.float32), (-1, 1))
    return tf.ones((tf.shape(tf.nest.flatten(batch[1])[0])[0], 1), tf.float32)


def _step_batch(batch, members):
    """A dataset's batch as a `StepBatch` (every row real; the targets broadcast to the members)."""
    weights = _batch_weights(batch)
    return StepBatch(batch[0], member_targets(batch[1], members), weights, tf.shape(weights)[0])


class _StreamProgram:
    """The compiled streaming loop of one model, optimizer, loss and strategy.

    Built with XLA for the per-batch step when possible; the first epoch
    retries with AutoGraph or without XLA when tracing or compilation fails
    (before any step is applied): a `compiled.Fallback` whose calls are
    whole epochs.
    """

    def __init__(self, model, optimizer, objective, strategy, jit_compile):
        self._model = model
        self._optimizer = optimizer
        self._objective = objective
        self.strategy = strategy
        self._epoch = Fallback(self._build, jit_compile, "training step")

    @property
    def tracing_count(self):
        return self._run.experimental_get_tracing_count()

    def run_epoch(self, data, chunk, before, after):
        """`(totals, bad_step or None, steps run)` of one pass over `data`."""
        return self._epoch(data, chunk, before, after)

    def _build(self, jit, autograph):
        """The epoch function of one attempt: the loop and its step compiled per `jit` and `autograph`."""
        model, optimizer, objective = self._model, self._optimizer, self._objective
        if self.strategy is None:

            def one_step(batch):
                return train_step(model, optimizer, objective, _step_batch(batch, objective.members))

            one_step = tf.function(one_step, jit_compile=jit, reduce_retracing=True, autograph=autograph)
        else:
            one_step = _distributed_step(model, optimizer, objective, self.strategy, jit, autograph)
        self._run = tf.function(_loop(one_step, 2 + 2 * (objective.members or 1)), autograph=autograph)
        return functools.partial(_run_epoch, self._run)


def _distributed_step(model, optimizer, objective, strategy, jit, autograph):
    """One step under `strategy`: gradients in every replica, the update in cross-replica context."""
    sum_ = tf.distribute.ReduceOp.SUM
    replicas = strategy.num_replicas_in_sync

    def gradients(batch, global_den):
        return step_gradients(
            model, optimizer, objective, _step_batch(batch, objective.members), global_den, replicas
        )

    compiled_gradients = tf.function(gradients, jit_compile=jit, reduce_retracing=True, autograph=autograph)

    def replica_gradients(batch):
        ctx = tf.distribute.get_replica_context()
        global_den = ctx.all_reduce(sum_, tf.reduce_sum(_batch_weights(batch)))
        step, grads, finite = compiled_gradients(batch, global_den)
        return step, tf.cast(tf.logical_not(finite), tf.float32), grads

    def replica_apply(grads):
        optimizer.apply(grads, model.trainable_variables)

    def one_step(batch):
        step, bad, grads = strategy.run(replica_gradients, args=(batch,))
        # Every replica must agree on skipping a bad step: decide on the sum.
        ok = strategy.reduce(sum_, bad, axis=None) == 0

        def apply():
            # Runs in cross-replica context: the optimizer's gradient
            # all-reduce (a merge_call) cannot sit inside a cond in replica context.
            strategy.run(replica_apply, args=(grads,))
            return tf.constant(True)

        tf.cond(ok, apply, lambda: tf.constant(False))
        return strategy.reduce(sum_, step, axis=None), ok

    return one_step


def _loop(one_step, size):
    """`run(iterator, max_steps)`: up to `max_steps` steps on batches pulled from `iterator`.

    Returns `[steps run, all finite, more batches may follow, sums...]` (`size` sums) as one tensor.
    """

    def run(iterator, max_steps):
        def body(i, ok, more, sums):
            optional = iterator.get_next_as_optional()

            def step():
                values, good = one_step(optional.get_value())
                return values, good, tf.constant(1)

            def done():
                return tf.zeros([size], tf.float64), tf.constant(True), tf.constant(0)

            values, good, took = tf.cond(optional.has_value(), step, done)
            return i + took, good, took > 0, sums + values

        i, ok, more, sums = tf.while_loop(
            lambda i, ok, more, sums: tf.logical_and(tf.logical_and(i < max_steps, ok), more),
            body,
            (tf.constant(0), tf.constant(True), tf.constant(True), tf.zeros([size], tf.float64)),
        )
        return tf.concat(
            [[tf.cast(i, tf.float64), tf.cast(ok, tf.float64), tf.cast(more, tf.float64)], sums], axis=0
        )

    return run


def _run_epoch(run, data, chunk, before, after):
    """One pass over `data` by calls of the compiled loop `run`: `(totals, bad_step or None, steps run)`."""
    iterator = iter(data)
    totals = None
    done = 0
    while True:
        before(done)
        out = run(iterator, tf.constant(chunk, tf.int32)).numpy()
        i, ok, more, part = int(out[0]), bool(out[1]), bool(out[2]), out[3:]
        totals = part if totals is None else totals + part
        if not ok:
            return totals, done + i, done + i
        stop = bool(i) and after(done, done + i, totals)
        done += i
        if stop or not more or i < chunk:
            break
    return totals, None, done
