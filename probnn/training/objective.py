"""What `probnn.fit` minimises: the loss per example and `model.losses`.

How one step weighs and sums them is in `step.py`; the optimizer is resolved
in `preparation.py`.
"""

import keras
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


def model_members(model):
    """`model.probnn_members` (an ensemble, see the Ensemble protocol), or None."""
    members = getattr(model, "probnn_members", None)
    if members is None:
        return None
    if isinstance(members, bool) or not isinstance(members, int) or members < 1:
        raise _err(f"model.probnn_members must be a positive integer, got {members!r}")
    return members


class Objective:
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
        self.members = model_members(model)
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


def regularization_of(model, dtype=tf.float32):
    """`sum(model.losses)` (regularisers, KL terms) in `dtype`; 0 when the model has none."""
    losses = model.losses
    if not losses:
        return tf.constant(0.0, dtype)
    return tf.add_n([tf.cast(tf.reduce_sum(v), dtype) for v in losses])
