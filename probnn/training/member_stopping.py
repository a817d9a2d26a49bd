"""Stopping the members of a stack one by one: per-member early stopping and fixed epochs.

A stack (a `probnn.Ensemble`, or the stack `probnn.GridSearch` trains)
trained by `probnn.fit` with a `probnn.training.MemberAdam` (e.g.
`optimizer=[Adam(...), ...]`, one per member) can stop its members one at a
time: a stopped member is frozen (`MemberAdam.freeze`: no further update of
its weights or moments) while the others go on, and training ends when every
member has stopped. Each member then ends exactly where it would have ended
trained alone with Keras's `EarlyStopping` (or for its own number of epochs).
The per-member validation losses come from `model.probnn_member_logs`, which
`probnn.fit` sets after every validation pass of a stacked model.
"""

import keras
import numpy as np

from probnn._validation import error, int_at_least

__all__ = ["MemberEarlyStopping", "MemberEpochs"]


class _MemberStopping(keras.callbacks.Callback):
    """Freezes members as they finish; ends training when all have."""

    owner = "MemberStopping"

    def on_train_begin(self, logs=None):
        from probnn.training.member_optimizer import MemberAdam

        members = getattr(self.model, "probnn_members", None)
        if not members:
            raise error(self.owner, "the model is not a stack of members (an Ensemble)")
        if not isinstance(self.model.optimizer, MemberAdam):
            raise error(
                self.owner,
                "the members need their own optimizer state; pass "
                "optimizer=[keras.optimizers.Adam(...), ...] (one per member) or a "
                "probnn.training.MemberAdam to probnn.fit",
            )
        self.members = members
        self.stopped = ~self.model.optimizer.active_members
        self.stopped_epoch = np.full(members, -1)

    def _stop(self, mask, epoch):
        new = mask & ~self.stopped
        if new.any():
            self.model.optimizer.freeze(np.flatnonzero(new))
            self.stopped |= new
            self.stopped_epoch[new] = epoch
        if self.stopped.all():
            self.model.stop_training = True


class MemberEarlyStopping(_MemberStopping):
    """Keras's `EarlyStopping` for every member of a stack on its own validation loss.

    Member m stops after `patience` epochs without improvement of its own
    `monitor` value (and at least two epochs), as `keras.callbacks.EarlyStopping(
    monitor, patience=patience, min_delta=min_delta, restore_best_weights=True)`
    would stop it trained alone; then its weights (and non-trainable state)
    are restored to those of its best epoch at the end of training.

    Args:
        monitor: the per-member log to minimise: `"val_nll"` (the head's
            negative log-likelihood on `validation_data`; `"val_data_loss"`
            with a custom `loss`).
        patience: epochs without improvement before a member stops.
        min_delta: an improvement must lower the value by more than this.
        restore_best_weights: restore each member's best epoch at the end.

    Attributes (after training): `best` (M,) best values, `best_epoch` (M,)
    0-based epoch of each member's best value, `stopped_epoch` (M,) 0-based
    epoch at which a member stopped, -1 if it never did.

    Example:
    >>> import keras, numpy as np, probnn
    >>> build = lambda: keras.Sequential([keras.Input((1,)), probnn.heads.NormalHead()])
    >>> stack = probnn.Ensemble(build, members=2)
    >>> x = np.linspace(-1, 1, 64, dtype="float32")[:, None]
    >>> stopper = probnn.training.MemberEarlyStopping(patience=2)
    >>> _ = probnn.fit(stack, x, 2 * x, validation_data=(x, 2 * x), epochs=3, verbose=0,
    ...                optimizer=[keras.optimizers.Adam(1e-2), keras.optimizers.Adam(1e-3)],
    ...                callbacks=[stopper], seed=[0, 1])
    >>> stopper.best_epoch.tolist()
    [2, 2]
    """

    owner = "MemberEarlyStopping"

    def __init__(self, monitor="val_nll", patience=0, min_delta=0.0, restore_best_weights=True):
        super().__init__()
        if monitor not in ("val_nll", "val_data_loss"):
            raise error(self.owner, f"monitor must be 'val_nll' or 'val_data_loss', got {monitor!r}")
        self.monitor = monitor
        self.patience = int_at_least(self.owner, "patience", patience, 0)
        self.min_delta = abs(float(min_delta))
        self.restore_best_weights = bool(restore_best_weights)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.wait = np.zeros(self.members, dtype=int)
        self.best = np.full(self.members, np.inf)
        self.best_epoch = np.zeros(self.members, dtype=int)
        self.best_weights = None

    def on_epoch_end(self, epoch, logs=None):
        member_logs = getattr(self.model, "probnn_member_logs", None) or {}
        if self.monitor not in member_logs:
            raise error(
                self.owner,
                f"no per-member {self.monitor!r} to monitor; "
                f"pass validation_data to probnn.fit (available: "
                f"{sorted(member_logs)})",
            )
        current = np.asarray(member_logs[self.monitor], dtype=np.float64)
        running = ~self.stopped
        weights = [np.array(w) for w in self.model.get_weights()] if self.restore_best_weights else None
        if self.best_weights is None and self.restore_best_weights:
            self.best_weights = weights
        self.wait[running] += 1
        # Keras: an improvement when current + min_delta < best (the first epoch always is).
        improved = running & (np.isinf(self.best) | (current + self.min_delta < self.best))
        self.best = np.where(improved, current, self.best)
        self.best_epoch = np.where(improved, epoch, self.best_epoch)
        self.wait[improved] = 0
        if self.restore_best_weights and improved.any():
            for best, now in zip(self.best_weights, weights):
                best[improved] = now[improved]
        if epoch > 0:
            self._stop(running & ~improved & (self.wait >= self.patience), epoch)

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            self.model.set_weights(self.best_weights)


class MemberEpochs(_MemberStopping):
    """Train member m of a stack for exactly `epochs[m]` epochs of this `fit` call.

    Args:
        epochs: a sequence of M positive integers.

    Example:
    >>> import keras, numpy as np, probnn
    >>> build = lambda: keras.Sequential([keras.Input((1,)), probnn.heads.NormalHead()])
    >>> stack = probnn.Ensemble(build, members=2)
    >>> x = np.linspace(-1, 1, 64, dtype="float32")[:, None]
    >>> history = probnn.fit(stack, x, 2 * x, epochs=5, verbose=0, seed=[0, 1],
    ...                      optimizer=[keras.optimizers.Adam(1e-2)] * 2,
    ...                      callbacks=[probnn.training.MemberEpochs([2, 3])])
    >>> len(history.epoch)
    3
    """

    owner = "MemberEpochs"

    def __init__(self, epochs):
        super().__init__()
        epochs = np.asarray(epochs)
        if epochs.ndim != 1 or epochs.dtype.kind not in "iu" or np.any(epochs < 1):
            raise error(
                self.owner, f"epochs must be a sequence of positive integers, got {epochs.tolist()!r}"
            )
        self.epochs = epochs.astype(int)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.epochs.size != self.members:
            raise error(self.owner, f"{self.epochs.size} epoch counts for {self.members} members")
        self._first = None

    def on_epoch_end(self, epoch, logs=None):
        if self._first is None:
            self._first = epoch
        self._stop(epoch - self._first + 1 >= self.epochs, epoch)
