"""The errors `probnn.fit` raises besides `ValueError`."""

__all__ = ["CheckpointRestoreError", "NonFiniteLossError"]


def _err(message):
    return ValueError(f"probnn.fit: {message}")


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss (or gradient).

    The update of the offending step was not applied.

    Attributes:
        epoch: 1-based epoch number in which it happened.
        step: 1-based step number within that epoch.
        checkpoint: path of the latest checkpoint on disk (unchanged by the
            failing epoch), or None when not checkpointing.
    """

    def __init__(self, message, *, epoch, step, checkpoint=None):
        super().__init__(message)
        self.epoch = epoch
        self.step = step
        self.checkpoint = checkpoint


class CheckpointRestoreError(RuntimeError):
    """A checkpoint in `checkpoint_dir` exists but cannot be read or does not match."""
