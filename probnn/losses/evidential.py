"""The deep evidential regression loss (Amini et al. 2020) of an `EvidentialHead`."""

import keras
import tensorflow as tf

from probnn.heads.evidential import EvidentialHead
from probnn.losses.head_loss import HeadLoss


@keras.saving.register_keras_serializable(package="probnn")
class EvidentialLoss(HeadLoss):
    """Amini et al.'s evidential loss: the Student-t NLL plus `reg_weight` times the evidence regulariser.

    Per output `L = -log St(y; γ, β(1 + ν)/(ν α), 2α) + λ |y - γ| (2ν + α)`
    (their eq. 8, 9 and 10): the regulariser removes evidence (`2ν + α`, the
    virtual observations of the NIG prior) where the prediction is wrong.
    Summed over the outputs.

    Args:
        head: the `probnn.heads.EvidentialHead` whose output `y_pred` is.
        reg_weight: λ >= 0 (Amini et al. use 1e-2 to 1e-1 on standardised targets).
        reduction: Keras loss reduction (default: mean over the batch).
        name: name of the loss.
        dtype: dtype the loss computes in.

    Example:
    >>> import numpy as np, probnn
    >>> head = probnn.heads.EvidentialHead()
    >>> params, y = np.zeros((1, 4)), np.ones((1, 1))
    >>> nll = probnn.losses.NegativeLogLikelihood(head)(y, params)
    >>> evidence = 2 * np.log(2) + 1 + np.log(2)  # 2ν + α at raw parameters 0
    >>> bool(np.isclose(probnn.losses.EvidentialLoss(head, 0.1)(y, params), nll + 0.1 * evidence))
    True
    """

    def __init__(
        self, head, reg_weight=0.01, reduction="sum_over_batch_size", name="evidential_loss", dtype=None
    ):
        super().__init__(head, reduction=reduction, name=name, dtype=dtype)
        if not isinstance(self.head, EvidentialHead):
            raise ValueError(
                f"EvidentialLoss: head must be a probnn.heads.EvidentialHead, got {type(self.head).__name__}"
            )
        if not float(reg_weight) >= 0.0:
            raise ValueError(f"EvidentialLoss: reg_weight must be >= 0, got {reg_weight!r}")
        self.reg_weight = float(reg_weight)

    def call(self, y_true, y_pred):
        nll = -self.head.log_prob(y_pred, y_true)
        gamma, lam, alpha, _ = self.head.evidence(y_pred)
        y = tf.reshape(tf.cast(y_true, gamma.dtype), tf.shape(gamma))
        evidence = tf.reduce_sum(tf.abs(y - gamma) * (2 * lam + alpha), axis=-1)
        return nll + self.reg_weight * evidence

    def get_config(self):
        config = super().get_config()
        config.update(reg_weight=self.reg_weight)
        return config
