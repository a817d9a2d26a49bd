"""Validation loss after each epoch: compiled and batched like training (a smaller last batch).

For an ensemble (`probnn_members = M`) every member sees the same validation
rows, the targets are broadcast to `(batch, M, ...)` (member-wise data
`(rows, M, ...)`: member m is scored on its own slice), and the reported loss is
the mean over members of each member's loss (not the mixture's); each
member's own loss is returned too (per-member early stopping).

With `validation_samples=K` (a stochastic model: MC dropout, variational
layers) each validation row's loss is the NLL of the uniform mixture of K
stochastic passes, `-(logsumexp_k log p_k(y) - log K)`, the quantity
`probnn.predict_distribution(model, x, num_samples=K, seed=seed)` scores, per
member for a stack. The K passes (K x M for a stack of M members) are ONE
`stacked_call` of the template under the repeated weights and K x M seed
states (`seed_states` of the model, seeded by fit's seed). A stack whose
members share one seed state (`Ensemble.from_models` of members built with
one seed: every `GridSearch` stack) runs pass k with one state shared by the
members, as `predict_distribution` does: K calls of the M members, each
drawing its noise vectorised, where K x M distinct states make pfor draw it
in a sequential loop of K x M iterations. The seed states are the same at
every epoch: the change of `val_nll` between epochs is the model's, not the
noise's.
"""

import functools
import logging
import math

import numpy as np
import tensorflow as tf

from probnn.functional import seed_states, stacked_call
from probnn.training.batching import bucket, member_targets, padded, signature
from probnn.training.compiled import Compiled, cached_program, last_batch_jit
from probnn.training.errors import _err
from probnn.training.objective import regularization_of


class Evaluator:
    """Validation loss (data + model.losses), compiled and batched.

    `data` is a `tf.data.Dataset` of `(x, y)` batches (one compiled step per
    batch) or in-memory arrays (`data.FitData.validation`: compiled loops
    over batches of `batch_size` rows, then the smaller last batch).
    Calling it returns `(data term per member, regularisation)`.
    """

    def __init__(self, model, objective, data, batch_size, jit_compile, samples=None, seed=0):
        self.model = model
        self.state = () if samples is None else tuple(_pass_states(model, samples, seed))
        batch_terms = _batch_terms(model, objective, samples, getattr(data, "member_wise", False))
        if isinstance(data, tf.data.Dataset):
            self.dataset = data
            self._step = _dataset_step(model, objective, batch_terms, jit_compile, samples)
            return
        self.dataset = None
        self.n = data.n
        self.calls = _array_calls(
            model, objective, batch_terms, data, batch_size, jit_compile, samples, self.state
        )

    def __call__(self):
        """Returns `(data term per member (M,) or (1,), regularisation)`, means over the rows."""
        if not self.state:
            return self._evaluate()
        from probnn.prediction import _QuietPfor  # probnn.prediction imports probnn.training

        quiet = _QuietPfor()  # pfor's note that per-pass random ops run in a loop
        tf_logger = logging.getLogger("tensorflow")
        tf_logger.addFilter(quiet)
        try:
            return self._evaluate()
        finally:
            tf_logger.removeFilter(quiet)

    def _evaluate(self):
        if self.dataset is None:
            s_data = s_reg = 0.0
            for run, args in self.calls:
                d, r = run(*args)
                s_data, s_reg = s_data + d.numpy(), s_reg + float(r)
            n = float(self.n)
        else:
            s_data = s_reg = n = 0.0
            for xb, yb in self.dataset:
                d, r, c = self._step(xb, yb, self.state)
                s_data = s_data + np.asarray(d, np.float64)
                s_reg, n = s_reg + float(r), n + float(c)
        if n == 0:
            raise _err("validation_data is empty")
        return s_data / n, s_reg / n


def _batch_terms(model, objective, samples, member_wise=False):
    """`batch_terms(xb, yb, state)`: `(per-example losses (rows, members or 1), regularisation)` of one batch.

    `member_wise`: `xb` and `yb` carry the member axis, `(rows, M, ...)`
    (member m is scored on its own slice), else every member sees the same rows.
    """

    def batch_terms(xb, yb, state):
        if samples is not None:
            return _mixture_terms(model, objective, xb, yb, list(state), samples, member_wise)
        y_pred = model(xb, training=False)
        targets = yb if member_wise else member_targets(yb, objective.members)
        values = objective.per_example(targets, y_pred)
        values = tf.reshape(values, (tf.shape(values)[0], -1))
        return values, regularization_of(model, values.dtype)

    return batch_terms


def _dataset_step(model, objective, batch_terms, jit_compile, samples):
    """The compiled validation step of a dataset's batch: `(data sums, regularisation * rows, rows)`."""

    def step(xb, yb, state):
        values, regularization = batch_terms(xb, yb, state)
        rows = tf.cast(tf.shape(values)[0], values.dtype)
        return (tf.reduce_sum(values, axis=0), regularization * rows, rows)

    key = ("eval-dataset", objective.key, jit_compile, samples)
    return cached_program(
        model, key, lambda: Compiled(step, jit_compile, "validation step", reduce_retracing=True)
    )


def _array_calls(model, objective, batch_terms, data, batch_size, jit_compile, samples, state):
    """`[(program, arguments)]` of in-memory validation data: the full batches, then the rest."""
    n = data.n
    rows = bucket(n)
    bsz = min(batch_size, rows)
    steps = math.ceil(rows / bsz)
    full, rest = n // bsz, n % bsz
    order = np.resize(np.arange(n), steps * bsz).astype(np.int32)
    x_all, y_all = padded(data.x, rows), padded(data.y, rows)
    loop = functools.partial(_validation_loop, model, objective, batch_terms, x_all, y_all, samples)
    calls = []
    if full:
        calls.append(
            (
                loop(bsz, steps, jit_compile),
                (x_all, y_all, tf.constant(order.reshape(steps, bsz)), tf.constant(full), state),
            )
        )
    if rest:
        calls.append(
            (
                loop(rest, 1, last_batch_jit(jit_compile)),
                (x_all, y_all, tf.constant(order[full * bsz : n][None]), tf.constant(1), state),
            )
        )
    return calls


def _validation_loop(model, objective, batch_terms, x_all, y_all, samples, size, batches, jit):
    """The compiled loop over the first `count` of `batches` batches of `size` rows (cached on the model).

    Every batch has a static shape, so activity regularisers (averaged per
    batch) see only real rows. Returns `(data sums per member, regularisation sum)`.
    """
    members = objective.members

    def run(x_all, y_all, order, count, state):
        def body(i, s_data, s_reg):
            rows = tf.gather(order, i)  # static shape (size,)
            values, regularization = batch_terms(
                tf.nest.map_structure(lambda t: tf.gather(t, rows), x_all),
                tf.gather(y_all, rows),
                state,
            )
            return (
                i + 1,
                s_data + tf.reduce_sum(tf.cast(values, tf.float64), axis=0),
                s_reg + tf.cast(regularization, tf.float64) * size,
            )

        zero = tf.constant(0.0, tf.float64)
        _, s_data, s_reg = tf.while_loop(
            lambda i, *_: i < count,
            body,
            (tf.constant(0), tf.zeros([members or 1], tf.float64), zero),
        )
        return s_data, s_reg

    key = ("eval", objective.key, size, batches, signature(x_all), signature(y_all), jit, samples)
    return cached_program(model, key, lambda: Compiled(run, jit, "validation loop"))


def _pass_states(model, samples, seed):
    """Seed states of the K validation passes, one tensor per template state `v`.

    `seed_states(model, K, seed)`, as `predict_distribution(num_samples=K,
    seed=seed)` draws them. A single model: `(K,) + v.shape`. A stack of M
    members: `(K * M,) + v.shape`, pass k of member m at slice `k * M + m`,
    except a state the members share (`model._shared_seeds`): `(K,) + v.shape`,
    pass k's state (member 0's entry, the one `Ensemble.call` runs).
    """
    template = getattr(model, "probnn_template", model)
    shared = getattr(model, "_shared_seeds", ())
    states = seed_states(model, samples, seed)
    return [
        s[:, 0] if j in shared else tf.reshape(s, (-1,) + tuple(v.shape))
        for j, (s, v) in enumerate(zip(states, template.non_trainable_variables))
    ]


def _pass_outputs(model, weights, xb, state, samples, member_wise):
    """Outputs `(K * M, rows, P)` and losses `(K * M,)` of the K passes, slice `k * M + m`.

    `weights` are the members' stacks `(M, ...)` (M = 1 for a single model).
    Without shared seed states: ONE `stacked_call` of K x M slices. With them:
    one `stacked_call` of the M members per pass (its shared state keeps the
    random ops vectorised), concatenated.
    """
    template = getattr(model, "probnn_template", model)
    shared = getattr(model, "_shared_seeds", ())
    if member_wise:  # (rows, M, ...) -> (M, rows, ...): slice m is member m's rows
        xb = tf.nest.map_structure(lambda t: tf.experimental.numpy.swapaxes(t, 0, 1), xb)

    def call(weights, xb, state):
        return stacked_call(
            template,
            weights,
            xb,
            non_trainable=state,
            return_losses=True,
            gradient="vectorized",
            x_stacked=member_wise,
        )

    if not shared:
        tiled = [tf.tile(w, [samples] + [1] * (len(w.shape) - 1)) for w in weights]
        if member_wise:
            xb = tf.nest.map_structure(lambda t: tf.tile(t, [samples] + [1] * (len(t.shape) - 1)), xb)
        outputs, _, losses = call(tiled, xb, state)
        return outputs, losses
    members = weights[0].shape[0]
    passes = []
    for k in range(samples):
        state_k = [s[k] if j in shared else s[k * members : (k + 1) * members] for j, s in enumerate(state)]
        outputs, _, losses = call(weights, xb, state_k)
        passes.append((outputs, losses))
    return tuple(tf.concat(list(parts), 0) for parts in zip(*passes))


def _mixture_terms(model, objective, xb, yb, state, samples, member_wise=False):
    """Per-example NLL of the mixture of `samples` passes (rows, members or 1), and the regularisation.

    The template under the weights of every (pass, member) slice
    (`_pass_outputs`: K x M slices for a stack of M members, slice `k * M + m`)
    and the seed states `state` of `_pass_states`. The regularisation is the
    mean over the passes of `model.losses` (summed over the members, as in
    training). `member_wise`: `xb` and `yb` are `(rows, M, ...)`, member m's
    passes see `xb[:, m]`.
    """
    members = objective.members
    weights = [v.value if members else v.value[None] for v in model.trainable_variables]
    outputs, losses = _pass_outputs(model, weights, xb, state, samples, member_wise)  # (K * M, rows, P)
    width = members or 1
    outputs = tf.reshape(outputs, tf.concat([[samples, width], tf.shape(outputs)[1:]], 0))
    outputs = tf.experimental.numpy.swapaxes(outputs, 1, 2)  # (K, rows, M, P)
    rows = tf.shape(outputs)[1]
    if members:
        y_pred = tf.reshape(outputs, tf.concat([[samples * rows], tf.shape(outputs)[2:]], 0))
    else:
        y_pred = tf.reshape(outputs, tf.concat([[samples * rows], tf.shape(outputs)[3:]], 0))
    targets = yb if member_wise else member_targets(yb, members)
    targets = tf.tile(targets, [samples] + [1] * (len(targets.shape) - 1))
    nll = tf.reshape(objective.per_example(targets, y_pred), (samples, rows, width))
    log_k = tf.math.log(tf.cast(samples, nll.dtype))
    mixture = log_k - tf.reduce_logsumexp(-nll, axis=0)  # (rows, M or 1)
    regularization = tf.reduce_sum(tf.cast(losses, nll.dtype)) / samples
    return mixture, regularization
