"""Checkpoints of a `probnn.fit` run: model, optimizer, epoch, seed, history, early stopping."""

import logging
import os

import tensorflow as tf

from probnn.training.errors import CheckpointRestoreError

logger = logging.getLogger("probnn.training")


class _Checkpointer:
    def __init__(self, directory, model, optimizer, every, max_to_keep=3):
        self.directory = os.fspath(directory)
        self.every = every
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="probnn_epoch")
        self.seed = tf.Variable(0, dtype=tf.int64, trainable=False, name="probnn_seed")
        self.history = tf.Variable("", dtype=tf.string, trainable=False, name="probnn_history")
        self.es_state = tf.Variable([0.0, 0.0, 0.0], dtype=tf.float64, trainable=False,
                                    name="probnn_early_stopping")  # (valid, best, wait)
        self.ckpt = tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=self.epoch,
                                        seed=self.seed, history=self.history,
                                        early_stopping=self.es_state)
        self.manager = tf.train.CheckpointManager(self.ckpt, self.directory,
                                                  max_to_keep=max_to_keep,
                                                  checkpoint_name="ckpt")

    @property
    def latest(self):
        return self.manager.latest_checkpoint

    def restore(self):
        path = self.latest
        if path is None:
            if os.path.isdir(self.directory) and any(
                    name.startswith("ckpt-") for name in os.listdir(self.directory)):
                raise CheckpointRestoreError(
                    f"probnn.fit: {self.directory!r} contains checkpoint files but no readable "
                    "'checkpoint' state file; delete the directory or pass resume=False")
            return False
        try:
            status = self.ckpt.restore(path)
            status.assert_existing_objects_matched()
        except Exception as exc:
            raise CheckpointRestoreError(
                f"probnn.fit: cannot restore checkpoint {path!r} "
                f"({type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}). "
                "It is corrupt or was written for a different model/optimizer; delete it or "
                "pass resume=False (which overwrites it)") from exc
        return True

    def resumed_state(self, seed, stopper):
        """After `restore()`: `(start_epoch, history, seed)`; restores `stopper`'s counters."""
        from probnn.training.callbacks import History

        start_epoch = int(self.epoch.numpy())
        history = History._from_json(self.history.numpy().decode())
        saved_seed = int(self.seed.numpy())
        if seed is None:
            seed = saved_seed
        elif seed != saved_seed:
            logger.warning("probnn.fit: seed=%s differs from the checkpoint's seed %s; "
                           "the shuffles of resumed epochs will differ", seed, saved_seed)
        stopper.set_state(self.es_state.numpy())
        logger.info("probnn.fit: resumed from %s at epoch %d", self.latest, start_epoch)
        return start_epoch, history, seed

    def save(self, epoch, history, stopper):
        self.history.assign(history._to_json())
        if stopper.active:
            self.es_state.assign(stopper.get_state())
        self.epoch.assign(epoch)
        return self.manager.save(checkpoint_number=epoch)
