"""A fast training loop for probnn models: `probnn.fit`.

Design: the fused epoch
-----------------------
Keras's `model.fit` pays Python and dispatch overhead for every mini-batch (or
every `steps_per_execution` batches).  For the small, tabular models typical
of probabilistic regression that overhead dominates: on one CPU core the
arithmetic of a 16-64-64-Normal MLP step at batch 256 takes about 0.2 ms, while
Keras 3 `model.fit` needs about 2 ms per step (tf_keras about 1 ms).
`probnn.fit` therefore keeps in-memory data on the device and runs a whole
epoch (or `steps_per_execution` steps) inside ONE call of a
`tf.function(jit_compile=True)`: a `tf.while_loop` whose body gathers a
mini-batch from the device-resident arrays, computes the objective and its
gradient and applies the optimizer update.  Python is visited once per epoch,
to report progress, evaluate the validation data, checkpoint and decide on
early stopping.

Shuffling.  Each epoch visits the rows in a fresh permutation that is a pure
function of `(seed, epoch)` (NumPy's generator seeded with both, drawn on the
host: a few hundred microseconds per epoch for 10^5 rows, and identical on every
platform), so epoch `e` sees the same order whether or not training was
interrupted and resumed; the seed is stored in the checkpoint.

The last partial batch (pad + mask).  With `n` rows and batch size `B` an epoch
has `ceil(n / B)` steps.  The permutation is padded to a multiple of `B` with
its own first rows and a 0/1 mask marks the padding, so every step has the
same static shape (one XLA compilation) and the last step's loss is the mean
over its `n mod B` real rows only, exactly Keras's semantics for a smaller
last batch.  Every row is used exactly once per epoch; nothing is dropped.
(Padded rows do pass through the model, so activity regularisers see them:
they are copies of real rows.  A loss callable that returns a scalar instead
of per-example values cannot be masked; it then sees the padded rows too.)

Streaming.  A `tf.data.Dataset` of `(x, y)` batches is streamed: a compiled
loop pulls up to `steps_per_execution` batches from an iterator per call
(the whole epoch with the default `"epoch"`), running one XLA-compiled step
per batch.  The dataset controls batching and order; `batch_size`,
`shuffle` and `seed` do not apply to it.

XLA fallback.  With `jit_compile="auto"` the compiled functions are first
built with XLA; if XLA rejects them (an op without an XLA kernel), a warning
is logged on the `probnn.training` logger and training continues with plain
`tf.function` graphs.  `jit_compile=True` re-raises instead.

Distribution.  With `strategy=` (e.g. `tf.distribute.MirroredStrategy`) the
data is distributed with `strategy.experimental_distribute_dataset`: in-memory
arrays become a per-epoch dataset in the same `(seed, epoch)` order as on one
device, batched by the GLOBAL `batch_size` (the last batch is simply smaller:
no padding is needed off the fused path), and each replica gets a slice of
every global batch.  Each replica computes the SUM of its per-example losses
divided by the global number of rows in the batch (plus `model.losses /
replicas`) and the optimizer all-reduces (sums) the gradients, so the update
equals the single-device update for the same global batch.  Whether a step is
finite is decided on the all-reduced flag, so all replicas skip a bad step
together; the update runs in cross-replica context (`strategy.run` inside the
`tf.cond`), because the optimizer's gradient all-reduce cannot sit inside a
conditional in replica context.  The model and optimizer variables must live
under `strategy.scope()`: construct the model there; `probnn.fit` creates the
default (or named) optimizer there itself and rejects variables created
outside the scope.  With a strategy `jit_compile="auto"` means no XLA (the
collective ops and the update run outside XLA anyway; on CPU the measured
speed was the same and compilation twice as slow); `jit_compile=True`
compiles each replica's forward and backward pass with XLA.

Non-finite losses.  Every step checks that the objective and all gradients
are finite BEFORE applying the update; on failure the update is skipped, the
loop stops and `NonFiniteLossError` (a `FloatingPointError`) names the epoch
and step.  Checkpoints are only written at the end of a completed epoch, so
the last checkpoint on disk is never touched by a diverging epoch.

Checkpoints.  `tf.train.Checkpoint(model=, optimizer=, epoch=, seed=,
history=, ...)` managed by a `tf.train.CheckpointManager` in
`checkpoint_dir` (files `ckpt-<epoch>.index` / `ckpt-<epoch>.data-*` and the
`checkpoint` state file, the three newest kept).  `epoch` counts completed
epochs; `history` is the JSON of the history so far, so a resumed run returns
the full history; the early-stopping counters (best value, epochs without
improvement) are saved too, but not the best-weight snapshot: after a resume,
`restore_best_weights` restores the best weights seen since the resume.  A
checkpoint that cannot be read raises `CheckpointRestoreError` naming it.

Progress goes through `keras.utils.Progbar` (one update per compiled call, so
the bar moves once per epoch by default; `verbose=0` prints nothing); other
messages go to the `probnn.training` logger.  Per-epoch Python work (progress
bar, validation, early stopping) costs well under a millisecond plus the
validation forward pass; a checkpoint costs about 15 ms on a CPU, so for tiny
epochs prefer `checkpoint_every > 1`.

Performance note (CPU).  XLA splits even small matmuls over TensorFlow's
intra-op thread pool.  On a small CPU shared with other busy processes the
fused loop then waits on preempted threads: measured on 2 shared cores, the
benchmark MLP ran at 15-20 ms per epoch with one intra-op thread but 27-41 ms
with the default two.  If that is your situation, call
`tf.config.threading.set_intra_op_parallelism_threads(1)` (or set
`TF_NUM_INTRAOP_THREADS=1`) before TensorFlow starts; `probnn.fit` does not
change this process-wide setting for you.
"""

import contextlib
import json
import logging
import math
import numbers
import os
import re
import time

import keras
import numpy as np
import tensorflow as tf

from probnn.heads.base import find_head
from probnn.losses import NegativeLogLikelihood

__all__ = [
    "CheckpointRestoreError",
    "EarlyStopping",
    "History",
    "NonFiniteLossError",
    "fit",
]

logger = logging.getLogger("probnn.training")

_LOG_KEYS = ["loss", "nll", "val_loss", "val_nll"]


def _print_msg(message):
    """Writes a progress line the way Keras's Progbar does (stdout or absl logging)."""
    try:
        from keras.src.utils.io_utils import print_msg
    except ImportError:  # pragma: no cover - Keras internals moved
        logger.info(message)
    else:
        print_msg(message)


# --------------------------------------------------------------------------- errors


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss (or gradient).

    The update of the offending step was not applied.

    Attributes:
        epoch: 1-based epoch number in which it happened.
        step: 1-based step number within that epoch.
        checkpoint: path of the latest checkpoint on disk (unchanged by the
            failing epoch), or None when not checkpointing.
    """

    def __init__(self, message, *, epoch, step, checkpoint=None):
        super().__init__(message)
        self.epoch = epoch
        self.step = step
        self.checkpoint = checkpoint


class CheckpointRestoreError(RuntimeError):
    """A checkpoint in `checkpoint_dir` exists but cannot be read or does not match."""


# ------------------------------------------------------------------ public helpers


class EarlyStopping:
    """Configuration of early stopping for `probnn.fit`.

    Args:
        monitor: history key to watch; default `"val_loss"` when validation
            data is given, else `"loss"`.
        patience: number of epochs without improvement after which training stops.
        min_delta: minimum decrease (or increase for `mode="max"`) that counts
            as an improvement.
        mode: `"min"` or `"max"`.
        restore_best_weights: at the end of training, set the model's weights
            to those of the best epoch seen in this call.

    Example:
    >>> EarlyStopping(patience=3).patience
    3
    """

    def __init__(self, monitor=None, patience=5, min_delta=0.0, mode="min",
                 restore_best_weights=True):
        if int(patience) != patience or patience < 0:
            raise ValueError(f"EarlyStopping: patience must be a non-negative integer, got {patience!r}")
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'min' or 'max', got {mode!r}")
        if not min_delta >= 0:
            raise ValueError(f"EarlyStopping: min_delta must be >= 0, got {min_delta!r}")
        self.monitor = monitor
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.mode = mode
        self.restore_best_weights = bool(restore_best_weights)

    def __repr__(self):
        return (f"EarlyStopping(monitor={self.monitor!r}, patience={self.patience}, "
                f"min_delta={self.min_delta}, mode={self.mode!r}, "
                f"restore_best_weights={self.restore_best_weights})")


class History:
    """What `probnn.fit` returns, shaped like `keras.callbacks.History`.

    Attributes:
        history: dict mapping metric names (`"loss"`, `"nll"`, `"val_loss"`,
            `"val_nll"`) to per-epoch lists of floats.
        epoch: list of 0-based epoch indices, one per entry of the lists.
        params: dict with `epochs`, `steps` (per epoch), `batch_size`.
        stopped_epoch: 0-based epoch at which early stopping triggered, or None.
        best_epoch: 0-based epoch whose weights were restored, or None.
        epoch_seconds: wall-clock seconds of each epoch run by this call
            (training, validation, progress bar and checkpoint; the first one
            includes tracing and XLA compilation).
    """

    def __init__(self, history=None, epoch=None, params=None):
        self.history = {k: list(v) for k, v in (history or {}).items()}
        self.epoch = list(epoch or [])
        self.params = dict(params or {})
        self.stopped_epoch = None
        self.best_epoch = None
        self.epoch_seconds = []

    def _append(self, epoch, logs):
        self.epoch.append(int(epoch))
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))

    def _to_json(self):
        return json.dumps({"history": self.history, "epoch": self.epoch})

    @classmethod
    def _from_json(cls, text):
        data = json.loads(text) if text else {}
        return cls(data.get("history"), data.get("epoch"))

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, keys={sorted(self.history)})"


# ------------------------------------------------------------------- validation


def _err(message):
    return ValueError(f"probnn.fit: {message}")


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


# ------------------------------------------------------------------ loss helpers


def _default_loss(model):
    try:
        head = find_head(model)
    except ValueError as exc:
        raise _err(
            "loss=None uses the negative log-likelihood of the model's distribution head, "
            f"but the model has none ({exc}); add a probnn.heads.DistributionHead as the "
            "last layer or pass loss="
        ) from exc
    return NegativeLogLikelihood(head)


def _is_nll(loss):
    return isinstance(loss, NegativeLogLikelihood)


def _resolve_loss(loss, model):
    if loss is None:
        return _default_loss(model)
    if isinstance(loss, str):
        try:
            return keras.losses.get(loss)
        except ValueError as exc:
            raise _err(f"unknown loss {loss!r}") from exc
    if not callable(loss):
        raise _err(f"loss must be None, a string, a keras Loss or a callable(y_true, y_pred), "
                   f"got {type(loss).__name__}")
    return loss


def _per_example_fn(loss):
    """Returns fn(y_true, y_pred) -> per-example losses of shape (batch,)."""
    if isinstance(loss, keras.losses.Loss):
        raw = loss.call
    else:
        raw = loss

    def per_example(y_true, y_pred):
        if y_true.dtype.is_floating and y_true.dtype != y_pred.dtype:
            y_true = tf.cast(y_true, y_pred.dtype)
        values = tf.convert_to_tensor(raw(y_true, y_pred))
        values = tf.cast(values, tf.float32)
        if values.shape.rank == 0:
            # A scalar (already reduced) loss: it cannot be masked per row.
            return tf.fill(tf.shape(y_true)[:1], values)
        if values.shape.rank > 1:
            values = tf.reduce_mean(values, axis=list(range(1, values.shape.rank)))
        return values

    return per_example


def _resolve_optimizer(optimizer):
    if optimizer is None:
        return keras.optimizers.Adam(1e-3)
    if isinstance(optimizer, str):
        try:
            return keras.optimizers.get(optimizer)
        except ValueError as exc:
            raise _err(f"unknown optimizer {optimizer!r}") from exc
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return optimizer
    raise _err(f"optimizer must be None, a string or a keras.optimizers.Optimizer, got "
               f"{type(optimizer).__name__} (tf_keras / tf.keras optimizers do not work "
               "with Keras 3 models)")


def _regularization(model):
    losses = model.losses
    if not losses:
        return tf.constant(0.0, tf.float32)
    return tf.add_n([tf.cast(tf.reduce_sum(v), tf.float32) for v in losses])


_XLA_ERROR = re.compile(
    r"XLA|xla|jit_compile|Detected unsupported operations|No registered .* OpKernel|"
    r"must be a compile-time constant|not supported on XLA",
)


def _is_xla_failure(exc):
    return isinstance(exc, (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError,
                            tf.errors.NotFoundError, tf.errors.InternalError)) and bool(
        _XLA_ERROR.search(str(exc)))


def _warn_xla_fallback(what, exc):
    text = str(exc).strip()
    first_line = text.splitlines()[0][:300] if text else ""
    logger.warning(
        "probnn.fit: XLA could not compile the %s (%s: %s); falling back to tf.function "
        "without jit_compile, which is slower. Pass jit_compile=False to silence this.",
        what, type(exc).__name__, first_line)


class _Compiled:
    """A tf.function built with XLA when possible, falling back per `jit_compile`."""

    def __init__(self, make, jit_compile, what):
        self._make = make
        self._mode = jit_compile
        self._what = what
        self._fn = make(jit_compile is not False)
        self._checked = jit_compile is False

    def __call__(self, *args):
        if self._checked:
            return self._fn(*args)
        try:
            out = self._fn(*args)
        except Exception as exc:
            if self._mode != "auto" or not _is_xla_failure(exc):
                raise
            _warn_xla_fallback(self._what, exc)
            self._fn = self._make(False)
            out = self._fn(*args)
        self._checked = True
        return out


# ------------------------------------------------------------------------ runners


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


# ------------------------------------------------------------------ checkpoints


class _Checkpointer:
    def __init__(self, directory, model, optimizer, every, max_to_keep=3):
        self.directory = os.fspath(directory)
        self.every = every
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="probnn_epoch")
        self.seed = tf.Variable(0, dtype=tf.int64, trainable=False, name="probnn_seed")
        self.history = tf.Variable("", dtype=tf.string, trainable=False, name="probnn_history")
        self.es_state = tf.Variable([0.0, 0.0, 0.0], dtype=tf.float64, trainable=False,
                                    name="probnn_early_stopping")  # (valid, best, wait)
        self.ckpt = tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=self.epoch,
                                        seed=self.seed, history=self.history,
                                        early_stopping=self.es_state)
        self.manager = tf.train.CheckpointManager(self.ckpt, self.directory,
                                                  max_to_keep=max_to_keep,
                                                  checkpoint_name="ckpt")

    @property
    def latest(self):
        return self.manager.latest_checkpoint

    def restore(self):
        path = self.latest
        if path is None:
            if os.path.isdir(self.directory) and any(
                    name.startswith("ckpt-") for name in os.listdir(self.directory)):
                raise CheckpointRestoreError(
                    f"probnn.fit: {self.directory!r} contains checkpoint files but no readable "
                    "'checkpoint' state file; delete the directory or pass resume=False")
            return False
        try:
            status = self.ckpt.restore(path)
            status.assert_existing_objects_matched()
        except Exception as exc:
            raise CheckpointRestoreError(
                f"probnn.fit: cannot restore checkpoint {path!r} "
                f"({type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}). "
                "It is corrupt or was written for a different model/optimizer; delete it or "
                "pass resume=False (which overwrites it)") from exc
        return True

    def save(self, epoch):
        self.epoch.assign(epoch)
        return self.manager.save(checkpoint_number=epoch)


# ------------------------------------------------------------------------- fit


def _build(model, sample_x, strategy):
    if model.built and model.trainable_variables:
        return
    with _scope(strategy):
        model(sample_x, training=False)


def _scope(strategy):
    return strategy.scope() if strategy is not None else contextlib.nullcontext()


def fit(model, x=None, y=None, *, loss=None, optimizer=None, epochs=1, batch_size=32,
        validation_data=None, validation_batch_size=None, shuffle=True,
        steps_per_execution="epoch", jit_compile="auto", early_stopping=None,
        checkpoint_dir=None, checkpoint_every=1, resume=True, strategy=None, verbose=1,
        seed=None):
    """Trains a Keras 3 model, by default by maximum likelihood of its distribution head.

    In-memory data is kept on the device and a whole epoch (or
    `steps_per_execution` steps) runs in one XLA-compiled `tf.while_loop`,
    which is many times faster than `model.fit` for small models; see the
    module docstring for the design.

    Args:
        model: a `keras.Model`. With `loss=None` it must contain exactly one
            `probnn.heads.DistributionHead` (found by `probnn.heads.find_head`).
        x: inputs, a NumPy array / tensor with a leading batch axis, or a
            `tf.data.Dataset` yielding `(x, y)` batches (then `y` must be None).
        y: targets, with the same number of rows as `x`.
        loss: None (negative log-likelihood of the model's head, plus
            `sum(model.losses)`), a loss name, a `keras.losses.Loss` or a callable
            `(y_true, y_pred)` returning per-example (or mean) losses. A Keras
            `Loss`'s own reduction is not used: its per-example values
            (`loss.call`) are averaged over the real rows of each batch. The
            objective always adds `sum(model.losses)` (regularisers, KL terms).
            Sample weights are not supported.
        optimizer: None (`Adam(1e-3)`), a name, or a Keras 3 optimizer.
        epochs: total number of epochs; when resuming from a checkpoint the
            epochs already done count towards it (like Keras's `initial_epoch`).
        batch_size: rows per step for in-memory data (the last step of an epoch
            is padded and masked, see the module docstring).
        validation_data: `(x_val, y_val)` arrays or a `tf.data.Dataset` of
            `(x, y)` batches, evaluated after every epoch (`training=False`).
        validation_batch_size: rows per validation step; default
            `max(batch_size, 1024)`.
        shuffle: reshuffle in-memory rows every epoch.
        steps_per_execution: `"epoch"` (one compiled call per epoch) or a
            positive integer K (K steps per call, progress reported between calls).
        jit_compile: `"auto"` (XLA, falling back to plain graphs with a logged
            warning if XLA cannot compile the model; no XLA under a
            `strategy`), True or False.
        early_stopping: None, an `EarlyStopping`, or an int patience
            (`EarlyStopping(patience=...)` on `val_loss` / `loss`).
        checkpoint_dir: directory for `tf.train.CheckpointManager` checkpoints
            (`ckpt-<epoch>`), written every `checkpoint_every` epochs and after
            the last epoch.
        checkpoint_every: epochs between checkpoints.
        resume: restore the latest checkpoint in `checkpoint_dir`, if any, and
            continue with the next epoch. `resume=False` starts afresh (and
            overwrites the numbering).
        strategy: a `tf.distribute.Strategy`. Build the model under
            `strategy.scope()`; the default optimizer is created there for you,
            an optimizer instance must have been created there too.
        verbose: 0 silent, 1 progress bar, 2 one line per epoch.
        seed: seed of the per-epoch shuffles (random when None; stored in
            checkpoints so resumed runs shuffle identically).

    Returns:
        A `History`: `.history` has per-epoch lists `"loss"` (objective
        including `model.losses`), `"nll"` (data term, with the default
        likelihood loss), `"val_loss"` / `"val_nll"` with validation data;
        `.epoch` lists the 0-based epochs (including resumed ones);
        `.epoch_seconds` the wall time of each epoch run by this call.

    Raises:
        ValueError: bad arguments or data (mismatched rows, NaN/inf, ...).
        NonFiniteLossError: the objective or a gradient became NaN/inf.
        CheckpointRestoreError: an existing checkpoint cannot be restored.

    Example:
    >>> import keras, probnn
    >>> from probnn.datasets import heteroscedastic_cubic
    >>> x, y = heteroscedastic_cubic(512, seed=0)
    >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(32, "relu"),
    ...                           probnn.heads.NormalHead()])
    >>> history = probnn.fit(model, x, y, epochs=3, batch_size=64, verbose=0, seed=0)
    >>> len(history.history["loss"])
    3
    """
    # ---- arguments
    if not isinstance(model, keras.Model):
        raise _err(f"model must be a keras.Model (Keras 3), got {type(model).__name__}")
    epochs = _positive_int("epochs", epochs)
    batch_size = _positive_int("batch_size", batch_size)
    checkpoint_every = _positive_int("checkpoint_every", checkpoint_every)
    if validation_batch_size is None:
        validation_batch_size = max(batch_size, 1024)
    validation_batch_size = _positive_int("validation_batch_size", validation_batch_size)
    if steps_per_execution != "epoch":
        steps_per_execution = _positive_int("steps_per_execution (or 'epoch')",
                                            steps_per_execution)
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

    # ---- data
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

    # ---- model, loss, optimizer
    _build(model, sample_x, strategy)
    loss = _resolve_loss(loss, model)
    per_example = _per_example_fn(loss)
    report_nll = _is_nll(loss)
    with _scope(strategy):
        optimizer = _resolve_optimizer(optimizer)
    if strategy is not None:
        outside = [v.path if hasattr(v, "path") else v.name for v in model.variables
                   if not strategy.extended.variable_created_in_scope(
                       getattr(v, "value", v))]
        if outside:
            raise _err(f"with strategy=, the model must be built under strategy.scope(); "
                       f"variables {outside[:3]} were created outside it")
        if getattr(optimizer, "_distribution_strategy", strategy) is not strategy:
            raise _err("with strategy=, create the optimizer under strategy.scope() "
                       "(or pass optimizer=None / a name)")
    if not model.trainable_variables:
        raise _err("the model has no trainable variables")
    if not optimizer.built:
        with _scope(strategy):
            optimizer.build(model.trainable_variables)

    # ---- checkpoint / resume
    history = History()
    start_epoch = 0
    ckpt = None
    es_best, es_wait = None, 0
    if checkpoint_dir is not None:
        ckpt = _Checkpointer(checkpoint_dir, model, optimizer, checkpoint_every)
        if resume and ckpt.restore():
            start_epoch = int(ckpt.epoch.numpy())
            history = History._from_json(ckpt.history.numpy().decode())
            if seed is None:
                seed = int(ckpt.seed.numpy())
            elif seed != int(ckpt.seed.numpy()):
                logger.warning("probnn.fit: seed=%s differs from the checkpoint's seed %s; "
                               "the shuffles of resumed epochs will differ", seed,
                               int(ckpt.seed.numpy()))
            valid, best, wait = ckpt.es_state.numpy()
            if early_stopping is not None and valid:
                es_best, es_wait = float(best), int(wait)
            logger.info("probnn.fit: resumed from %s at epoch %d", ckpt.latest, start_epoch)
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % (2**31 - 1))
    if ckpt is not None:
        ckpt.seed.assign(seed)

    # ---- runners
    if arrays is not None and strategy is None:
        runner = _FusedRunner(model, optimizer, per_example, arrays[0], arrays[1], batch_size,
                              jit_compile)
        steps = runner.steps
    else:
        if arrays is not None:  # in-memory data under a strategy: a reshuffled dataset per epoch
            steps = math.ceil(arrays[0].shape[0] / batch_size)
            stream = _EpochDatasets(arrays, batch_size, shuffle, seed)
        else:
            steps = None
            stream = None
        runner = _StreamRunner(model, optimizer, per_example,
                               dataset if dataset is not None else stream.dataset(0),
                               strategy, jit_compile if strategy is None else
                               (False if jit_compile == "auto" else jit_compile))
        runner.stream = stream
        steps = steps or runner.steps
    chunk = (2**31 - 1) if steps_per_execution == "epoch" else steps_per_execution
    evaluator = None
    if validation_data is not None:
        evaluator = _Evaluator(model, per_example, validation_data, validation_batch_size,
                               jit_compile)
    history.params = {"epochs": epochs, "steps": steps, "batch_size": batch_size}

    monitor = None
    if early_stopping is not None:
        monitor = early_stopping.monitor or ("val_loss" if evaluator is not None else "loss")
        if monitor.startswith("val_") and evaluator is None:
            raise _err(f"early stopping monitors {monitor!r} but no validation_data was given")
        sign = 1.0 if early_stopping.mode == "min" else -1.0
    best_weights, best_epoch = None, None
    if start_epoch >= epochs:
        logger.info("probnn.fit: checkpoint already has %d epochs >= epochs=%d; nothing to do",
                    start_epoch, epochs)

    # ---- epochs
    for epoch in range(start_epoch, epochs):
        epoch_start = time.perf_counter()
        bar = None
        if verbose:
            _print_msg(f"Epoch {epoch + 1}/{epochs}")
            bar = keras.utils.Progbar(steps, verbose=verbose, stateful_metrics=_LOG_KEYS)

        def on_chunk(done, totals, bar=bar):
            # Called between compiled executions (once per epoch by default).
            if bar is not None and totals[2] > 0 and (steps is None or done < steps):
                bar.update(done, values=[("loss", totals[0] / totals[2])])

        if isinstance(runner, _StreamRunner) and runner.stream is not None:
            runner.set_dataset(runner.stream.dataset(epoch))
        totals, bad_step = runner.run_epoch(epoch, seed, shuffle, chunk, on_chunk)
        if bad_step is not None:
            where = ckpt.latest if ckpt is not None else None
            raise NonFiniteLossError(
                f"probnn.fit: the loss became NaN or infinite at epoch {epoch + 1}, step "
                f"{bad_step} (1-based; global step {epoch * (steps or 0) + bad_step}); that "
                "step's update was not applied"
                + (f"; the last good checkpoint is {where!r}" if where else "")
                + ". Lower the learning rate, clip gradients or check the data.",
                epoch=epoch + 1, step=bad_step, checkpoint=where)
        s_obj, s_data, count = totals
        logs = {"loss": s_obj / count}
        if report_nll:
            logs["nll"] = s_data / count
        if evaluator is not None:
            v_data, v_reg = evaluator()
            logs["val_loss"] = v_data + v_reg
            if report_nll:
                logs["val_nll"] = v_data
        history._append(epoch, logs)
        if bar is not None:
            bar.update(steps or int(count), values=list(logs.items()), finalize=True)

        stop = False
        if early_stopping is not None:
            if monitor not in logs:
                raise _err(f"early stopping monitors {monitor!r}, which is not among the "
                           f"logged values {sorted(logs)}")
            value = logs[monitor]
            if es_best is None or sign * (es_best - value) > early_stopping.min_delta:
                es_best, es_wait = value, 0
                best_epoch = epoch
                if early_stopping.restore_best_weights:
                    best_weights = model.get_weights()
            else:
                es_wait += 1
                if es_wait >= early_stopping.patience:
                    stop = True
                    history.stopped_epoch = epoch

        if ckpt is not None and ((epoch + 1) % checkpoint_every == 0 or stop
                                 or epoch + 1 == epochs):
            ckpt.history.assign(history._to_json())
            if early_stopping is not None:
                ckpt.es_state.assign([1.0, es_best, es_wait])
            ckpt.save(epoch + 1)
        history.epoch_seconds.append(time.perf_counter() - epoch_start)
        if stop:
            logger.info("probnn.fit: early stopping at epoch %d (%s did not improve for %d "
                        "epochs)", epoch + 1, monitor, early_stopping.patience)
            break

    if early_stopping is not None and early_stopping.restore_best_weights:
        if best_weights is not None:
            model.set_weights(best_weights)
            history.best_epoch = best_epoch
        elif start_epoch < epochs:
            logger.warning("probnn.fit: no improvement of %s in this call; weights not restored",
                           monitor)
    return history


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
