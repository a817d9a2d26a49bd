"""The base of every loss built from a distribution head."""

import keras

from probnn.heads.base import DistributionHead


class HeadLoss(keras.losses.Loss):
    """A Keras loss that reads `y_pred` as the parameters a head emitted.

    It keeps its own weightless copy of the head, rebuilt from the head's
    configuration (`distribution` uses no weights), so a compiled model is
    saved and restored with `model.save` / `keras.models.load_model` without
    the loss claiming the model's weights (except for a head with
    `probnn_loss_updates_state = True`: see `NegativeLogLikelihood`). `probnn.fit` checks the targets
    with `head.check_targets` before training for every such loss.
    Subclasses implement `call(y_true, y_pred)` (per-example values) and add
    their own arguments to `get_config`.

    Args:
        head: the `probnn.heads.DistributionHead` whose output `y_pred` is.
        reduction: Keras loss reduction (default: mean over the batch).
        name: name of the loss.
        dtype: dtype the loss computes in (default: Keras's floatx).
    """

    def __init__(self, head, reduction="sum_over_batch_size", name=None, dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if not isinstance(head, DistributionHead):
            raise ValueError(
                f"{type(self).__name__}: head must be a probnn DistributionHead, got {type(head).__name__}"
            )
        # A head whose likelihood updates its own state (DUQHead's centroids) is kept itself.
        updates_state = getattr(head, "probnn_loss_updates_state", False)
        self.head = head if updates_state else type(head).from_config(head.get_config())

    def get_config(self):
        return {
            "head": keras.saving.serialize_keras_object(self.head),
            "reduction": self.reduction,
            "name": self.name,
            "dtype": self.dtype,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["head"] = keras.saving.deserialize_keras_object(config["head"])
        return cls(**config)
