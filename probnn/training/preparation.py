"""Getting a model ready for `probnn.fit`: its inputs checked, built, its loss and optimizer resolved.

`prepare_model` calls the model once on a sample batch if it is not built
yet (under the strategy's scope), resolves the loss into an `Objective` and
the optimizer (`model.optimizer`, a name, an instance, one per member or
Adam), wraps it for loss scaling under mixed precision as `model.compile`
does, and checks that model and optimizer were created under the strategy's
scope.
"""

import contextlib

import keras
import tensorflow as tf

from probnn.training.data import check_inputs, sample_batch
from probnn.training.errors import _err
from probnn.training.objective import Objective, model_members


def prepare_model(model, loss, optimizer, strategy, data):
    """Builds the model and resolves its loss and optimizer; returns `(objective, optimizer)`.

    `data` (from `data.prepare_data`) is checked against the model's declared
    inputs first and gives the sample batch that builds it. `optimizer=None`
    reuses `model.optimizer` when the model has one (from an earlier `fit` or
    `model.compile`), else creates `Adam(1e-3)`. The optimizer becomes
    `model.optimizer`, where Keras callbacks look for it.

    Example:
    >>> import keras, numpy as np, probnn
    >>> from probnn.training.data import prepare_data
    >>> model = keras.Sequential([keras.Input((1,)), probnn.heads.NormalHead()])
    >>> data = prepare_data(np.zeros((4, 1)), np.zeros((4, 1)), None, None)
    >>> objective, optimizer = prepare_model(model, None, None, None, data)
    >>> objective.report_nll, type(optimizer).__name__, model.optimizer is optimizer
    (True, 'Adam', True)
    """
    members = model_members(model)
    check_inputs(model, data.arrays, members)
    _build(model, sample_batch(data.arrays, data.dataset, members)[0], strategy)
    objective = Objective(loss, model)
    optimizer = _optimizer(model, optimizer, objective.members, strategy)
    if strategy is not None:
        _check_strategy_scope(model, optimizer, strategy)
    if not model.trainable_variables:
        raise _err("the model has no trainable variables")
    if not optimizer.built:
        with _scope(strategy):
            optimizer.build(model.trainable_variables)
    if getattr(model, "optimizer", None) is not optimizer:
        model.optimizer = optimizer
    return objective, optimizer


def _optimizer(model, optimizer, members, strategy):
    """The optimizer to train with (see `prepare_model`), created under the strategy's scope."""
    if optimizer is None:
        optimizer = getattr(model, "optimizer", None)
    if isinstance(optimizer, (list, tuple)):
        optimizer = _member_optimizer(optimizer, members, strategy)
    with _scope(strategy):
        optimizer = _resolve_optimizer(optimizer)
        if model.dtype_policy.name == "mixed_float16" and not isinstance(
            optimizer, keras.optimizers.LossScaleOptimizer
        ):
            # What model.compile does under mixed_float16: dynamic loss scaling.
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def _check_strategy_scope(model, optimizer, strategy):
    """The model's variables and the optimizer must belong to `strategy`."""
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
            "with strategy=, create the optimizer under strategy.scope() (or pass optimizer=None / a name)"
        )


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
