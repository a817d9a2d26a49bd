"""What `probnn.fit` minimises: the loss per example, `model.losses`, the optimizer."""

import contextlib

import keras
import numpy as np
import tensorflow as tf

from probnn.heads.base import find_head
from probnn.losses import HeadLoss, NegativeLogLikelihood
from probnn.training.errors import _err


def _loss_dtype(model):
    """The dtype the loss is computed in: float64 for a float64 model, else float32.

    Like Keras's compiled loss, a float16/bfloat16 (mixed precision) output is
    cast to float32 before the loss; unlike a `keras.losses.Loss` built with
    the default dtype (floatx), a float64 model keeps its loss in float64.
    """
    return "float64" if model.compute_dtype == "float64" else "float32"


def _default_loss(model):
    try:
        head = find_head(model)
    except ValueError as exc:  # one line, no chained traceback: the model is the user's to fix
        found = str(exc).split(" found ", 1)[-1].split(";")[0]
        raise _err(
            f"loss=None is the negative log-likelihood of the model's distribution head, but model "
            f"{getattr(model, 'name', '?')!r} has {'none' if found.startswith('0') else found}: add one "
            "probnn.heads.DistributionHead (e.g. NormalHead()) as the last layer, or pass loss="
        ) from None
    return NegativeLogLikelihood(head, dtype=_loss_dtype(model))


def _is_nll(loss):
    return isinstance(loss, NegativeLogLikelihood)


def _resolve_loss(loss, model):
    """A `keras.losses.Loss`: the given one, or names and functions wrapped as Keras does."""
    if loss is None:
        return _default_loss(model)
    if isinstance(loss, str):
        try:
            resolved = keras.losses.get(loss)
        except ValueError as exc:
            raise _err(f"unknown loss {loss!r}") from exc
        if resolved is None:
            raise _err(f"unknown loss {loss!r}")
        if isinstance(resolved, keras.losses.Loss):  # a class name: in the model's dtype
            config = resolved.get_config()
            config["dtype"] = _loss_dtype(model)
            return type(resolved).from_config(config)
        return _FunctionLoss(resolved, _loss_dtype(model))
    if isinstance(loss, keras.losses.Loss):
        return loss
    if not callable(loss):
        raise _err(
            f"loss must be None, a string, a keras Loss or a callable(y_true, y_pred), "
            f"got {type(loss).__name__}"
        )
    return _FunctionLoss(loss, _loss_dtype(model))


def _same_rank(y_true, y_pred):
    """Keras's `squeeze_or_expand_to_same_rank`: (B,) targets against (B, 1) outputs."""
    t_rank, p_rank = y_true.shape.rank, y_pred.shape.rank
    if t_rank is None or p_rank is None or t_rank == p_rank:
        return y_true, y_pred
    if t_rank == p_rank + 1 and y_true.shape[-1] == 1:
        if p_rank == 1:
            return y_true, tf.expand_dims(y_pred, -1)
        return tf.squeeze(y_true, -1), y_pred
    if p_rank == t_rank + 1 and y_pred.shape[-1] == 1:
        if t_rank == 1:
            return tf.expand_dims(y_true, -1), y_pred
        return y_true, tf.squeeze(y_pred, -1)
    return y_true, y_pred


class _FunctionLoss(keras.losses.Loss):
    """A plain `fn(y_true, y_pred)` as Keras's compiled loss wraps it (ranks aligned)."""

    def __init__(self, fn, dtype):
        super().__init__(name=getattr(fn, "__name__", "loss"), dtype=dtype)
        self.fn = fn

    def call(self, y_true, y_pred):
        return self.fn(*_same_rank(y_true, y_pred))


def _members(model):
    """`model.probnn_members` (an ensemble, see the Ensemble protocol), or None."""
    members = getattr(model, "probnn_members", None)
    if members is None:
        return None
    if isinstance(members, bool) or not isinstance(members, int) or members < 1:
        raise _err(f"model.probnn_members must be a positive integer, got {members!r}")
    return members


class _Objective:
    """The resolved loss of one `fit` call.

    Attributes:
        loss: the loss object or callable.
        key: identifies the loss for the compiled-program cache (the head for
            the default likelihood, else the loss object itself).
        report_nll: the loss is the head's negative log-likelihood.
        head: the head of a `probnn.losses.HeadLoss` (its targets are checked), else None.
        members: `model.probnn_members`, or None for a plain model.
    """

    def __init__(self, loss, model):
        given = loss
        self.loss = _resolve_loss(loss, model)
        self.report_nll = _is_nll(self.loss)
        self.head = self.loss.head if isinstance(self.loss, HeadLoss) else None
        self.members = _members(model)
        self.dtype = tf.as_dtype(self.loss.dtype)
        if given is None:
            self.key = ("nll", id(find_head(model)), self.dtype.name)
        else:
            self.key = ("loss", given, self.dtype.name)

    def per_example(self, y_true, y_pred):
        """Per-example losses, shape (batch,), or (batch, members) for an ensemble.

        As `keras.losses.Loss.__call__` without its reduction: targets and
        outputs are first converted to the loss's dtype (float32 under mixed
        precision, float64 for a float64 model), then `loss.call`.
        """
        batch_rank = 1 if self.members is None else 2
        y_pred = tf.cast(y_pred, self.dtype)
        y_true = tf.cast(y_true, self.dtype)
        values = tf.cast(tf.convert_to_tensor(self.loss.call(y_true, y_pred)), self.dtype)
        if values.shape.rank == 0:
            # A scalar (already reduced) loss: it cannot be masked per row.
            return tf.fill(tf.shape(y_true)[:batch_rank], values)
        if values.shape.rank > batch_rank:
            values = tf.reduce_mean(values, axis=list(range(batch_rank, values.shape.rank)))
        return values


def _member_targets(y, members):
    """Targets (batch, ...) broadcast to (batch, members, ...) for an ensemble."""
    if members is None:
        return y
    y = tf.expand_dims(y, 1)
    return tf.broadcast_to(y, tf.concat([tf.shape(y)[:1], [members], tf.shape(y)[2:]], 0))


def _step_terms(values, weights, members):
    """Weighted sums of one step: `(num, den)`, each of shape (members,).

    `values` are per-example losses (batch,) or (batch, members); `weights`
    (batch, 1) or (batch, members) hold the 0/1 padding mask times the sample
    weights. Member m's objective is `num[m] / den[m]`, its weighted mean.
    """
    values = tf.reshape(values, (-1, members))
    weights = tf.cast(weights, values.dtype) * tf.ones_like(values)
    return tf.reduce_sum(values * weights, axis=0), tf.reduce_sum(weights, axis=0)


def _epoch_logs(totals, members, report_nll):
    """`{"loss", "nll"}` of an epoch from the summed step terms of a runner.

    `totals` is `[sum(reg * rows), rows, num_0..num_M-1, den_0..den_M-1]`.
    The data term is the mean over members of each member's weighted mean,
    `loss` adds the mean regularisation per member.
    """
    members = members or 1
    reg_rows, rows = totals[0], totals[1]
    num, den = totals[2 : 2 + members], totals[2 + members :]
    data = float(np.mean(num / np.maximum(den, 1e-300)))
    logs = {"loss": data + float(reg_rows / max(rows, 1.0)) / members}
    if report_nll:
        logs["nll"] = data
    return logs


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
    raise _err(
        f"optimizer must be None, a string or a keras.optimizers.Optimizer, got "
        f"{type(optimizer).__name__} (tf_keras / tf.keras optimizers do not work "
        "with Keras 3 models)"
    )


def _member_optimizer(optimizers, members, strategy):
    """A `MemberAdam` from one Keras Adam/AdamW per member of a stacked model."""
    from probnn.training.member_optimizer import MemberAdam

    if not members:
        raise _err(
            "a list of optimizers (one per member) needs a stacked model (an Ensemble, "
            "probnn_members = M); pass one optimizer"
        )
    if len(optimizers) != members:
        raise _err(
            f"optimizer is a list of {len(optimizers)} optimizers, but the model has "
            f"{members} members; pass one per member"
        )
    if strategy is not None:
        raise _err("one optimizer per member is not supported with strategy=")
    try:
        return MemberAdam.from_optimizers(optimizers)
    except ValueError as exc:
        raise _err(str(exc)) from None


def _regularization(model, dtype=tf.float32):
    losses = model.losses
    if not losses:
        return tf.constant(0.0, dtype)
    return tf.add_n([tf.cast(tf.reduce_sum(v), dtype) for v in losses])


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


def _scope(strategy):
    return strategy.scope() if strategy is not None else contextlib.nullcontext()


def _build(model, sample_x, strategy):
    """Builds the model by calling it on a sample batch (a one-line error if that fails)."""
    if model.built and model.trainable_variables:
        return
    try:
        with _scope(strategy):
            model(sample_x, training=False)
    except Exception as exc:
        shapes = [tuple(t.shape) for t in tf.nest.flatten(sample_x)]
        text = str(exc).strip()
        raise _err(
            f"the model cannot be called on x (a sample batch of shape(s) {shapes}): "
            f"{text.splitlines()[0][:300] if text else type(exc).__name__}"
        ) from None


def _prepare_model(model, loss, optimizer, strategy):
    """Resolves the loss and the optimizer of a built model; returns `(objective, optimizer)`.

    `optimizer=None` reuses `model.optimizer` when the model has one (from an
    earlier `fit` or `model.compile`), else creates `Adam(1e-3)`. The optimizer
    becomes `model.optimizer`, where Keras callbacks look for it.
    """
    objective = _Objective(loss, model)
    if optimizer is None:
        optimizer = getattr(model, "optimizer", None)
    if isinstance(optimizer, (list, tuple)):
        optimizer = _member_optimizer(optimizer, objective.members, strategy)
    with _scope(strategy):
        optimizer = _resolve_optimizer(optimizer)
        if model.dtype_policy.name == "mixed_float16" and not isinstance(
            optimizer, keras.optimizers.LossScaleOptimizer
        ):
            # What model.compile does under mixed_float16: dynamic loss scaling.
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    if strategy is not None:
        outside = [
            v.path if hasattr(v, "path") else v.name
            for v in model.variables
            if not strategy.extended.variable_created_in_scope(getattr(v, "value", v))
        ]
        if outside:
            raise _err(
                f"with strategy=, the model must be built under strategy.scope(); "
                f"variables {outside[:3]} were created outside it"
            )
        if getattr(optimizer, "_distribution_strategy", strategy) is not strategy:
            raise _err(
                "with strategy=, create the optimizer under strategy.scope() "
                "(or pass optimizer=None / a name)"
            )
    if not model.trainable_variables:
        raise _err("the model has no trainable variables")
    if not optimizer.built:
        with _scope(strategy):
            optimizer.build(model.trainable_variables)
    if getattr(model, "optimizer", None) is not optimizer:
        model.optimizer = optimizer
    return objective, optimizer
