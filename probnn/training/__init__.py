"""A fast training loop for probnn models: `probnn.fit`.

Modules: `fit` (the public function), `data` (argument and data checks),
`objective` (loss and optimizer), `compiled` (XLA with fallback), `fused`
(in-memory runner), `streaming` (`tf.data` / `tf.distribute` runner),
`evaluation`, `checkpoints`, `callbacks` (early stopping, history, progress),
`errors`. The design is in docs/design.md, section Training.
"""

from probnn.training.callbacks import EarlyStopping, History
from probnn.training.errors import CheckpointRestoreError, NonFiniteLossError
from probnn.training.fit import fit

__all__ = [
    "CheckpointRestoreError",
    "EarlyStopping",
    "History",
    "NonFiniteLossError",
    "fit",
]
