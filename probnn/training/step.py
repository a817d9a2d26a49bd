"""The training step both runners compile, and the epoch's logs from the steps' sums.

`train_step` is one step on one batch: the objective (each member's weighted
mean loss plus `model.losses`) and its gradients, the optimizer's update
unless the objective or a gradient is not finite, and the step's sums. The
fused runner calls it in the body of its `tf.while_loop`, the streaming
runner once per batch pulled from the iterator. Under a `tf.distribute`
strategy the streaming runner calls `step_gradients` in every replica and
applies the update itself, in cross-replica context, once all replicas agree
that the step is finite.

A step's sums are one float64 vector `[sum(reg * rows), rows, num_0..num_M-1,
den_0..den_M-1]` (`reg` the regularisation, `num[m] / den[m]` member m's
weighted mean loss): the runners add them up over an epoch and `epoch_logs`
turns the totals into `{"loss", "nll"}`.
"""

import collections

import keras
import numpy as np
import tensorflow as tf

from probnn.training.objective import regularization_of

StepBatch = collections.namedtuple("StepBatch", ["x", "y", "weights", "rows"])
StepBatch.__doc__ = """One step's batch, as `train_step` takes it.

Fields: `x` the model's inputs; `y` the targets, `(batch, members, ...)` for a
stack of members; `weights` `(batch, 1)` or `(batch, members)`, the 0/1
padding mask times the sample weights; `rows` the number of real rows (a
scalar tensor).
"""


def step_terms(values, weights, members):
    """Weighted sums of one step: `(num, den)`, each of shape (members,).

    `values` are per-example losses (batch,) or (batch, members); `weights`
    (batch, 1) or (batch, members) hold the 0/1 padding mask times the sample
    weights. Member m's objective is `num[m] / den[m]`, its weighted mean.

    Example:
    >>> import tensorflow as tf
    >>> num, den = step_terms(tf.constant([1.0, 3.0]), tf.constant([[1.0], [0.0]]), 1)
    >>> num.numpy().tolist(), den.numpy().tolist()
    ([1.0], [1.0])
    """
    values = tf.reshape(values, (-1, members))
    weights = tf.cast(weights, values.dtype) * tf.ones_like(values)
    return tf.reduce_sum(values * weights, axis=0), tf.reduce_sum(weights, axis=0)


def _gradients(tape, scaled, objective_value, optimizer, model_vars):
    """Gradients of one step's objective, and whether the step may be applied.

    `scaled` is `optimizer.scale_loss(objective_value)`, recorded on `tape`
    (a `LossScaleOptimizer` multiplies by its scale, other optimizers return
    the loss unchanged), as Keras's train step does.
    `finite` checks the objective and, unless a `LossScaleOptimizer` handles
    overflowing gradients itself (it skips the step and halves its scale, as
    under model.fit), the gradients.
    """
    grads = tape.gradient(scaled, model_vars)
    finite = tf.math.is_finite(objective_value)
    if not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        for g in grads:
            if g is not None:
                finite = tf.logical_and(finite, tf.reduce_all(tf.math.is_finite(g)))
    return grads, finite


def step_gradients(model, optimizer, objective, batch, global_den=None, replicas=1):
    """`(sums, grads, finite)` of one step on a `StepBatch`, without the update.

    Under a strategy each replica passes `global_den`, the sum of the weights
    over all replicas (each member's mean is then over the global batch), and
    `replicas`, the number of replicas (their regularisation terms add up to
    one).
    """
    model_vars = model.trainable_variables
    with tf.GradientTape() as tape:
        y_pred = model(batch.x, training=True)
        num, den = step_terms(objective.per_example(batch.y, y_pred), batch.weights, objective.members or 1)
        regularization = regularization_of(model, num.dtype)
        divisor = den if global_den is None else tf.cast(global_den, den.dtype)
        # One replica (and the fused runner): the regularisation as it is, no division by 1.
        share = regularization / replicas if replicas != 1 else regularization
        objective_value = tf.reduce_sum(num / tf.maximum(divisor, 1e-30)) + share
        scaled = optimizer.scale_loss(objective_value)
    grads, finite = _gradients(tape, scaled, objective_value, optimizer, model_vars)
    rows = tf.cast(batch.rows, regularization.dtype)
    sums = tf.concat(
        [
            [tf.cast(regularization * rows, tf.float64), tf.cast(rows, tf.float64)],
            tf.cast(num, tf.float64),
            tf.cast(den, tf.float64),
        ],
        axis=0,
    )
    return sums, grads, finite


def train_step(model, optimizer, objective, batch):
    """One training step on a `StepBatch`: `(sums, finite)`; the update is applied only when `finite`.

    Example:
    >>> import keras, numpy as np, tensorflow as tf, probnn
    >>> from probnn.training.objective import Objective
    >>> model = keras.Sequential([keras.Input((1,)), probnn.heads.NormalHead()])
    >>> optimizer = keras.optimizers.SGD(0.1)
    >>> optimizer.build(model.trainable_variables)
    >>> batch = StepBatch(tf.ones((4, 1)), tf.zeros((4, 1)), tf.ones((4, 1)), tf.constant(4.0))
    >>> sums, finite = train_step(model, optimizer, Objective(None, model), batch)
    >>> bool(finite), float(sums[1])  # finite, 4 rows
    (True, 4.0)
    """
    sums, grads, finite = step_gradients(model, optimizer, objective, batch)

    def apply():
        optimizer.apply(grads, model.trainable_variables)
        return tf.constant(True)

    tf.cond(finite, apply, lambda: tf.constant(False))
    return sums, finite


def epoch_logs(totals, members, report_nll):
    """`{"loss", "nll"}` of an epoch from the summed step sums of a runner.

    `totals` is `[sum(reg * rows), rows, num_0..num_M-1, den_0..den_M-1]`.
    The data term is the mean over members of each member's weighted mean,
    `loss` adds the mean regularisation per member.

    Example:
    >>> import numpy as np
    >>> epoch_logs(np.array([2.0, 4.0, 6.0, 3.0]), None, True)
    {'loss': 2.5, 'nll': 2.0}
    """
    members = members or 1
    reg_rows, rows = totals[0], totals[1]
    num, den = totals[2 : 2 + members], totals[2 + members :]
    data = float(np.mean(num / np.maximum(den, 1e-300)))
    logs = {"loss": data + float(reg_rows / max(rows, 1.0)) / members}
    if report_nll:
        logs["nll"] = data
    return logs
