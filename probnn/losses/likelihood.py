"""The negative log-likelihood loss of a distribution head."""

import keras

from probnn.losses.head_loss import HeadLoss


@keras.saving.register_keras_serializable(package="probnn")
class NegativeLogLikelihood(HeadLoss):
    """Negative log likelihood of the targets under a head's distribution.

    `loss(y_true, y_pred)` reads `y_pred` as the parameter tensor the head
    emitted, builds `head.distribution(y_pred)` and returns the mean of
    `-log_prob(y_true)` (per-example values from `loss.call`). The head's
    distributions work in log space (softplus scales with a floor, logits,
    logsumexp for mixtures), so the loss is finite for any finite parameters.
    Targets whose shape does not match the head's event shape raise a
    ValueError instead of broadcasting.

    The loss keeps its own weightless copy of the head, rebuilt from the
    head's configuration (`distribution` uses no weights), so it is saved and
    restored with `model.save` / `keras.models.load_model` without claiming
    the model's weights. A head with `probnn_loss_updates_state = True`
    (`DUQHead`, whose likelihood moves its centroids) is kept itself; a
    loss restored from a saved model cannot hold the loaded model's head, so
    load such a model with `keras.models.load_model(path, compile=False)`
    and train it with `probnn.fit` (which builds its loss from the model's
    head) or compile it again.

    Args:
        head: the `probnn.heads.DistributionHead` whose output `y_pred` is.
        reduction: Keras loss reduction (default: mean over the batch).
        name: name of the loss.
        dtype: dtype the loss computes in (default: Keras's floatx).

    Example:
    >>> import keras, numpy as np, probnn
    >>> head = probnn.heads.NormalHead()
    >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(16, "relu"), head])
    >>> model.compile("adam", loss=probnn.losses.NegativeLogLikelihood(head))
    >>> x = np.linspace(-1, 1, 64, dtype="float32")[:, None]
    >>> history = model.fit(x, 2 * x, epochs=1, verbose=0)
    """

    def __init__(self, head, reduction="sum_over_batch_size", name="negative_log_likelihood", dtype=None):
        super().__init__(head, reduction=reduction, name=name, dtype=dtype)

    def call(self, y_true, y_pred):
        return -self.head.log_prob(y_pred, y_true)
