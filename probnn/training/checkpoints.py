"""Checkpoints of a `probnn.fit` run: model, optimizer, epoch, seed, history, callback counters."""

import json
import logging
import os
import uuid

import tensorflow as tf

from probnn.training.errors import CheckpointRestoreError, _err

logger = logging.getLogger("probnn.training")


# How a checkpointed run ended (the `finished` variable).
RUNNING, COMPLETED, STOPPED = 0, 1, 2

# Counters of Keras callbacks that a resumed run continues (not their weights).
_CALLBACK_STATE = ("wait", "best", "best_epoch", "stopped_epoch", "cooldown_counter")


def _check_writable(directory):
    """An unwritable `checkpoint_dir` fails before training, naming the argument."""
    probe = os.path.join(directory, f".probnn-write-test-{uuid.uuid4().hex}")
    try:
        tf.io.gfile.makedirs(directory)
        with tf.io.gfile.GFile(probe, "w") as f:
            f.write("")
        tf.io.gfile.remove(probe)
    except (tf.errors.OpError, OSError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise _err(
            f"checkpoint_dir={directory!r} is not writable ({type(exc).__name__}: "
            f"{reason}); pass a directory you can create and write"
        ) from None


def _callback_state(callbacks):
    state = []
    for callback in callbacks:
        values = {}
        for name in _CALLBACK_STATE:
            value = getattr(callback, name, None)
            if isinstance(value, (int, float)) or hasattr(value, "__float__"):
                values[name] = float(value) if name == "best" else value
        state.append([type(callback).__name__, values])
    return json.dumps(state, default=float)


def _restore_callback_state(callbacks, text):
    """Puts the saved counters back, after `on_train_begin` reset them."""
    saved = json.loads(text) if text else []
    for callback, (name, values) in zip(callbacks, saved):
        if type(callback).__name__ != name:
            continue
        for key, value in values.items():
            if key != "best" and isinstance(value, float):
                value = int(value)
            setattr(callback, key, value)


def _task_id(strategy):
    resolver = getattr(strategy, "cluster_resolver", None)
    return getattr(resolver, "task_id", 0)


class _Checkpointer:
    """Saves and restores a run in `directory`.

    Under a multi-worker strategy every worker takes part in saving (the
    variables are synchronised), but only the chief writes to `directory`;
    the other workers write to `directory/.worker-<id>` and restore from the
    chief's checkpoints (the directory must be shared by all workers).
    """

    def __init__(self, directory, model, optimizer, every, max_to_keep=3, strategy=None):
        self.directory = self.read_directory = os.fspath(directory)
        extended = getattr(strategy, "extended", None)
        if extended is not None and not getattr(extended, "should_checkpoint", True):
            self.directory = os.path.join(self.directory, f".worker-{_task_id(strategy)}")
        _check_writable(self.directory)
        self.every = every
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="probnn_epoch")
        self.seed = tf.Variable(0, dtype=tf.int64, trainable=False, name="probnn_seed")
        self.history = tf.Variable("", dtype=tf.string, trainable=False, name="probnn_history")
        self.callbacks = tf.Variable("", dtype=tf.string, trainable=False, name="probnn_callbacks")
        # How the run ended: RUNNING, COMPLETED (all epochs) or STOPPED (early).
        self.finished = tf.Variable(RUNNING, dtype=tf.int64, trainable=False, name="probnn_finished")
        self.ckpt = tf.train.Checkpoint(
            model=model,
            optimizer=optimizer,
            epoch=self.epoch,
            seed=self.seed,
            history=self.history,
            callbacks=self.callbacks,
            finished=self.finished,
        )
        self.manager = tf.train.CheckpointManager(
            self.ckpt, self.directory, max_to_keep=max_to_keep, checkpoint_name="ckpt"
        )

    @property
    def latest(self):
        if self.read_directory != self.directory:
            return tf.train.latest_checkpoint(self.read_directory)
        return self.manager.latest_checkpoint

    def restore(self):
        path = self.latest
        if path is None:
            if os.path.isdir(self.read_directory) and any(
                name.startswith("ckpt-") for name in os.listdir(self.read_directory)
            ):
                raise CheckpointRestoreError(
                    f"probnn.fit: {self.read_directory!r} contains checkpoint files but no "
                    "readable 'checkpoint' state file; delete the directory or pass resume=False"
                )
            return False
        try:
            status = self.ckpt.restore(path)
            status.assert_existing_objects_matched()
        except Exception as exc:
            raise CheckpointRestoreError(
                f"probnn.fit: cannot restore checkpoint {path!r} "
                f"({type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}). "
                "It is corrupt or was written for a different model/optimizer; delete it or "
                "pass resume=False (which overwrites it)"
            ) from exc
        return True

    def resumed_state(self, seed):
        """After `restore()`: `(start_epoch, history JSON, seed, callback state JSON)`."""
        start_epoch = int(self.epoch.numpy())
        saved_seed = int(self.seed.numpy())
        if seed is None:
            seed = saved_seed
        elif seed != saved_seed:
            logger.warning(
                "probnn.fit: seed=%s differs from the checkpoint's seed %s; "
                "the shuffles of resumed epochs will differ",
                seed,
                saved_seed,
            )
        logger.info("probnn.fit: resumed from %s at epoch %d", self.latest, start_epoch)
        return (start_epoch, self.history.numpy().decode(), seed, self.callbacks.numpy().decode())

    def save(self, epoch, history, callbacks, finished=RUNNING):
        """Writes `ckpt-<epoch>`; `finished` marks the run's final state (weights as returned)."""
        self.history.assign(json.dumps({"history": history.history, "epoch": history.epoch}, default=float))
        self.callbacks.assign(_callback_state(callbacks))
        self.epoch.assign(epoch)
        self.finished.assign(finished)
        return self.manager.save(checkpoint_number=epoch)
