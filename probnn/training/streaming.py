"""The streaming runner: `tf.data` batches (and any data under a `tf.distribute` strategy).

A compiled loop pulls up to `steps_per_execution` batches from an iterator per
call, running one compiled step per batch. See docs/design.md (Training).
"""

import tensorflow as tf

from probnn.training.compiled import _next_attempt, cached_program
from probnn.training.objective import _gradients, _member_targets, _regularization, _step_terms


class _StreamRunner:
    """A dataset (or distributed data): up to K steps per call pulled from an iterator.

    The outer loop is a plain `tf.function` (iterator ops have no XLA kernels);
    the per-batch gradient computation inside it is a nested
    `tf.function(jit_compile=True)`, and so is the update without a strategy.
    The compiled loop is cached on the model (`cached_program`), so a later
    `fit` on the same model, optimizer, loss and strategy reuses it (a dataset
    with the same element shapes is not traced again).
    """

    def __init__(self, model, optimizer, objective, dataset, strategy, jit_compile):
        self.strategy = strategy
        self.steps = None
        self.set_dataset(dataset)
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

    def run_epoch(self, epoch, seed, shuffle, chunk, before, after):
        """Runs one epoch; returns `(totals, bad_step or None)` (see `_FusedRunner.run_epoch`)."""
        data = self.dist_dataset if self.strategy is not None else self.dataset
        totals, bad_step, done = self._program.run_epoch(data, chunk, before, after)
        if self.steps is None:
            self.steps = done
        return totals, bad_step


class _StreamProgram:
    """The compiled streaming loop of one model, optimizer, loss and strategy.

    Built with XLA for the per-batch step when possible; the first epoch
    retries with AutoGraph or without XLA when tracing or compilation fails
    (before any step is applied).
    """

    def __init__(self, model, optimizer, objective, strategy, jit_compile):
        self._model = model
        self._optimizer = optimizer
        self._objective = objective
        self.strategy = strategy
        self._mode = jit_compile
        self._checked = False
        self._autograph = False
        self._jit = jit_compile is not False
        self._build()

    @property
    def tracing_count(self):
        return self._run.experimental_get_tracing_count()

    def _build(self):
        jit, autograph = self._jit, self._autograph
        model, optimizer, objective = self._model, self._optimizer, self._objective
        strategy = self.strategy
        model_vars = model.trainable_variables
        replicas = strategy.num_replicas_in_sync if strategy is not None else 1
        members = objective.members or 1
        sum_ = tf.distribute.ReduceOp.SUM

        def batch_weights(batch):
            if len(batch) == 3:
                return tf.reshape(tf.cast(batch[2], tf.float32), (-1, 1))
            return tf.ones((tf.shape(tf.nest.flatten(batch[1])[0])[0], 1), tf.float32)

        def grads_step(batch, global_den=None):
            xb, yb = batch[0], batch[1]
            weights = batch_weights(batch)
            with tf.GradientTape() as tape:
                y_pred = model(xb, training=True)
                values = objective.per_example(_member_targets(yb, objective.members), y_pred)
                num, den = _step_terms(values, weights, members)
                regularization = _regularization(model, num.dtype)
                divisor = den if global_den is None else tf.cast(global_den, den.dtype)
                objective_value = tf.reduce_sum(num / tf.maximum(divisor, 1e-30)) + regularization / replicas
                scaled = optimizer.scale_loss(objective_value)
            grads, finite = _gradients(tape, scaled, objective_value, optimizer, model_vars)
            rows = tf.cast(tf.shape(weights)[0], regularization.dtype)
            step = tf.concat(
                [
                    [tf.cast(regularization * rows, tf.float64), tf.cast(rows, tf.float64)],
                    tf.cast(num, tf.float64),
                    tf.cast(den, tf.float64),
                ],
                axis=0,
            )
            return step, grads, finite

        if strategy is None:

            def train_step(batch):
                step, grads, finite = grads_step(batch)

                def apply():
                    optimizer.apply(grads, model_vars)
                    return tf.constant(True)

                tf.cond(finite, apply, lambda: tf.constant(False))
                return step, finite

            compiled_step = tf.function(
                train_step, jit_compile=jit, reduce_retracing=True, autograph=autograph
            )
            one_step = compiled_step
        else:
            compiled_grads = tf.function(
                grads_step, jit_compile=jit, reduce_retracing=True, autograph=autograph
            )

            def replica_grads(batch):
                ctx = tf.distribute.get_replica_context()
                global_den = ctx.all_reduce(sum_, tf.reduce_sum(batch_weights(batch)))
                step, grads, finite = compiled_grads(batch, global_den)
                return step, tf.cast(tf.logical_not(finite), tf.float32), grads

            def replica_apply(grads):
                optimizer.apply(grads, model_vars)

            def one_step(batch):
                step, bad, grads = strategy.run(replica_grads, args=(batch,))
                # Every replica must agree on skipping a bad step: decide on the sum.
                ok = strategy.reduce(sum_, bad, axis=None) == 0

                def apply():
                    # Runs in cross-replica context: the optimizer's gradient
                    # all-reduce (a merge_call) cannot sit inside a cond in replica context.
                    strategy.run(replica_apply, args=(grads,))
                    return tf.constant(True)

                tf.cond(ok, apply, lambda: tf.constant(False))
                return strategy.reduce(sum_, step, axis=None), ok

        size = 2 + 2 * members

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

        self._run = tf.function(run, autograph=autograph)

    def run_epoch(self, data, chunk, before, after):
        """`(totals, bad_step or None, steps run)` of one pass over `data`."""
        while not self._checked:
            try:
                result = self._run_epoch(data, chunk, before, after)
                self._checked = True
                return result
            except Exception as exc:
                self._autograph, self._jit = _next_attempt(
                    exc, self._autograph, self._jit, self._mode, "training step"
                )
                self._build()
        return self._run_epoch(data, chunk, before, after)

    def _run_epoch(self, data, chunk, before, after):
        iterator = iter(data)
        totals = None
        done = 0
        while True:
            before(done)
            out = self._run(iterator, tf.constant(chunk, tf.int32)).numpy()
            i, ok, more, part = int(out[0]), bool(out[1]), bool(out[2]), out[3:]
            totals = part if totals is None else totals + part
            if not ok:
                return totals, done + i, done + i
            stop = bool(i) and after(done, done + i, totals)
            done += i
            if stop or not more or i < chunk:
                break
        return totals, None, done
