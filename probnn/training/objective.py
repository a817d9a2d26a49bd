"""What `probnn.fit` minimises: the loss per example, `model.losses`, the optimizer."""

import contextlib

import keras
import tensorflow as tf

from probnn.heads.base import find_head
from probnn.losses import NegativeLogLikelihood
from probnn.training.errors import _err


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


def _scope(strategy):
    return strategy.scope() if strategy is not None else contextlib.nullcontext()


def _build(model, sample_x, strategy):
    if model.built and model.trainable_variables:
        return
    with _scope(strategy):
        model(sample_x, training=False)


def _prepare_model(model, sample_x, loss, optimizer, strategy):
    """Builds the model and optimizer; returns `(per_example_loss, report_nll, optimizer)`."""
    _build(model, sample_x, strategy)
    loss = _resolve_loss(loss, model)
    per_example = _per_example_fn(loss)
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
    return per_example, _is_nll(loss), optimizer
