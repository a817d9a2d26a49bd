"""Keras callbacks around the fused loop, and probnn's progress output.

`probnn.fit` drives a `keras.callbacks.CallbackList`: train begin/end, epoch
begin/end with the epoch's logs, and the batch hooks once per compiled call
(once per epoch by default; `steps_per_execution=K` calls them every K steps,
with the batch index of the first and of the last step of the call, as
Keras does with `steps_per_execution`). `model.stop_training` is honoured
after every compiled call and at the end of every epoch.
"""

import json
import sys
import time

import keras

_LOG_KEYS = ["loss", "nll", "val_loss", "val_nll"]


def _dynamic_terminal():
    """True where progress may redraw one line: a terminal or a Jupyter kernel."""
    stream = sys.stdout
    # A Jupyter kernel replaces sys.stdout by its own stream; ipykernel merely being imported
    # (a test runner or a tool may import it) says nothing about where this output goes.
    in_kernel = type(stream).__module__.startswith("ipykernel")
    return bool(getattr(stream, "isatty", lambda: False)()) or in_kernel


def _format_logs(logs):
    return " - ".join(f"{key}: {value:.4f}" for key, value in logs.items())


class ProgressLogger(keras.callbacks.Callback):
    """probnn's progress output: Keras's bar on a terminal, plain lines elsewhere.

    On a terminal (or in Jupyter) `verbose=1` shows Keras's `Progbar`. When
    stdout is a file, a pipe or a captured stream (logs, CI, `subprocess`),
    it writes one plain line per epoch instead: no ANSI codes, no carriage
    returns, no backspaces. `verbose=2` always writes one plain line per epoch.

    Args:
        verbose: 1 or 2, as in `probnn.fit`.
        dynamic: force (True) or forbid (False) the redrawn bar; default: only
            on a terminal or in Jupyter.

    Example:
    >>> ProgressLogger(verbose=2).verbose
    2
    """

    def __init__(self, verbose=1, dynamic=None):
        super().__init__()
        self.verbose = verbose
        self.dynamic = dynamic
        self._bar = None

    def on_train_begin(self, logs=None):
        self._epochs = self.params.get("epochs")
        self._steps = self.params.get("steps")
        self._use_bar = self.verbose == 1 and (_dynamic_terminal() if self.dynamic is None else self.dynamic)

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()
        if self._use_bar:
            print(f"Epoch {epoch + 1}/{self._epochs}", flush=True)
            self._bar = keras.utils.Progbar(self._steps, verbose=1, stateful_metrics=_LOG_KEYS)

    def on_train_batch_end(self, batch, logs=None):
        if self._bar is not None and logs and (self._steps is None or batch + 1 < self._steps):
            self._bar.update(batch + 1, values=[("loss", logs["loss"])])

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        if self._bar is not None:
            self._bar.update(
                self._steps or self._bar._seen_so_far + 1, values=list(logs.items()), finalize=True
            )
            self._bar = None
            return
        seconds = time.perf_counter() - self._start
        print(
            f"Epoch {epoch + 1}/{self._epochs} - {seconds:.2f}s - {_format_logs(logs)}",
            file=sys.stdout,
            flush=True,
        )


def _callback_list(callbacks, history, model, verbose, epochs, steps):
    """A CallbackList of the user's callbacks, the History and the progress output."""
    extra = [history]
    if verbose:
        extra.append(ProgressLogger(verbose))
    return keras.callbacks.CallbackList(
        callbacks + extra,
        add_history=False,
        add_progbar=False,
        model=model,
        verbose=verbose,
        epochs=epochs,
        steps=steps,
    )


def _resume_history(history, text):
    """Puts a checkpoint's history (JSON) into a fresh `keras.callbacks.History`."""
    data = json.loads(text) if text else {}
    history.epoch = list(data.get("epoch", []))
    history.history = {key: list(values) for key, values in data.get("history", {}).items()}
