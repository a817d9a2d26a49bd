"""Early stopping, history and progress output of `probnn.fit`."""

import json
import logging

import keras

from probnn.training.errors import _err

logger = logging.getLogger("probnn.training")

_LOG_KEYS = ["loss", "nll", "val_loss", "val_nll"]


def _print_msg(message):
    """Writes a progress line the way Keras's Progbar does (stdout or absl logging)."""
    try:
        from keras.src.utils.io_utils import print_msg
    except ImportError:  # pragma: no cover - Keras internals moved
        logger.info(message)
    else:
        print_msg(message)


class EarlyStopping:
    """Configuration of early stopping for `probnn.fit`.

    Args:
        monitor: history key to watch; default `"val_loss"` when validation
            data is given, else `"loss"`.
        patience: number of epochs without improvement after which training stops.
        min_delta: minimum decrease (or increase for `mode="max"`) that counts
            as an improvement.
        mode: `"min"` or `"max"`.
        restore_best_weights: at the end of training, set the model's weights
            to those of the best epoch seen in this call.

    Example:
    >>> EarlyStopping(patience=3).patience
    3
    """

    def __init__(self, monitor=None, patience=5, min_delta=0.0, mode="min",
                 restore_best_weights=True):
        if int(patience) != patience or patience < 0:
            raise ValueError(f"EarlyStopping: patience must be a non-negative integer, got {patience!r}")
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'min' or 'max', got {mode!r}")
        if not min_delta >= 0:
            raise ValueError(f"EarlyStopping: min_delta must be >= 0, got {min_delta!r}")
        self.monitor = monitor
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.mode = mode
        self.restore_best_weights = bool(restore_best_weights)

    def __repr__(self):
        return (f"EarlyStopping(monitor={self.monitor!r}, patience={self.patience}, "
                f"min_delta={self.min_delta}, mode={self.mode!r}, "
                f"restore_best_weights={self.restore_best_weights})")


class History:
    """What `probnn.fit` returns, shaped like `keras.callbacks.History`.

    Attributes:
        history: dict mapping metric names (`"loss"`, `"nll"`, `"val_loss"`,
            `"val_nll"`) to per-epoch lists of floats.
        epoch: list of 0-based epoch indices, one per entry of the lists.
        params: dict with `epochs`, `steps` (per epoch), `batch_size`.
        stopped_epoch: 0-based epoch at which early stopping triggered, or None.
        best_epoch: 0-based epoch whose weights were restored, or None.
        epoch_seconds: wall-clock seconds of each epoch run by this call
            (training, validation, progress bar and checkpoint; the first one
            includes tracing and XLA compilation).
    """

    def __init__(self, history=None, epoch=None, params=None):
        self.history = {k: list(v) for k, v in (history or {}).items()}
        self.epoch = list(epoch or [])
        self.params = dict(params or {})
        self.stopped_epoch = None
        self.best_epoch = None
        self.epoch_seconds = []

    def _append(self, epoch, logs):
        self.epoch.append(int(epoch))
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))

    def _to_json(self):
        return json.dumps({"history": self.history, "epoch": self.epoch})

    @classmethod
    def _from_json(cls, text):
        data = json.loads(text) if text else {}
        return cls(data.get("history"), data.get("epoch"))

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, keys={sorted(self.history)})"



class _EarlyStopper:
    """The state of early stopping during one `fit` call (inactive without a config)."""

    def __init__(self, config, has_validation):
        self.config = config
        self.active = config is not None
        self.best, self.wait = None, 0
        self.best_weights, self.best_epoch = None, None
        if self.active:
            self.monitor = config.monitor or ("val_loss" if has_validation else "loss")
            if self.monitor.startswith("val_") and not has_validation:
                raise _err(f"early stopping monitors {self.monitor!r} but no validation_data "
                           "was given")
            self.sign = 1.0 if config.mode == "min" else -1.0

    def get_state(self):
        return [1.0, self.best, self.wait]

    def set_state(self, state):
        valid, best, wait = state
        if self.active and valid:
            self.best, self.wait = float(best), int(wait)

    def update(self, epoch, logs, model, history):
        """Records the epoch's value; returns True when training should stop."""
        if not self.active:
            return False
        if self.monitor not in logs:
            raise _err(f"early stopping monitors {self.monitor!r}, which is not among the "
                       f"logged values {sorted(logs)}")
        value = logs[self.monitor]
        if self.best is None or self.sign * (self.best - value) > self.config.min_delta:
            self.best, self.wait = value, 0
            self.best_epoch = epoch
            if self.config.restore_best_weights:
                self.best_weights = model.get_weights()
            return False
        self.wait += 1
        if self.wait < self.config.patience:
            return False
        history.stopped_epoch = epoch
        logger.info("probnn.fit: early stopping at epoch %d (%s did not improve for %d "
                    "epochs)", epoch + 1, self.monitor, self.config.patience)
        return True

    def finish(self, model, history, trained):
        if not (self.active and self.config.restore_best_weights):
            return
        if self.best_weights is not None:
            model.set_weights(self.best_weights)
            history.best_epoch = self.best_epoch
        elif trained:
            logger.warning("probnn.fit: no improvement of %s in this call; weights not restored",
                           self.monitor)


class _Progress:
    """The progress bar of one epoch (nothing with verbose=0)."""

    def __init__(self, verbose, epoch, epochs, steps):
        self.steps = steps
        self.bar = None
        if verbose:
            _print_msg(f"Epoch {epoch + 1}/{epochs}")
            self.bar = keras.utils.Progbar(steps, verbose=verbose, stateful_metrics=_LOG_KEYS)

    def on_chunk(self, done, totals):
        # Called between compiled executions (once per epoch by default).
        if self.bar is not None and totals[2] > 0 and (self.steps is None or done < self.steps):
            self.bar.update(done, values=[("loss", totals[0] / totals[2])])

    def finish(self, steps, logs):
        if self.bar is not None:
            self.bar.update(steps, values=list(logs.items()), finalize=True)
