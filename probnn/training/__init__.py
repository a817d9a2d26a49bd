"""A fast training loop for probnn models: `probnn.fit`.

Modules: `fit` (the public function), `data` (argument and data checks),
`objective` (loss and optimizer), `compiled` (XLA with fallback and the
compiled-program cache), `fused` (in-memory runner), `streaming` (`tf.data` /
`tf.distribute` runner), `evaluation`, `checkpoints`, `callbacks` (Keras
callbacks, progress output), `errors`. The design is in docs/design.md,
section Training.
"""

from probnn.training.callbacks import ProgressLogger
from probnn.training.errors import CheckpointRestoreError, NonFiniteLossError
from probnn.training.fit import fit

__all__ = [
    "CheckpointRestoreError",
    "NonFiniteLossError",
    "ProgressLogger",
    "fit",
]
