"""A fast training loop for probnn models: `probnn.fit`.

Modules: `fit` (the public function), `data` (argument and data checks),
`objective` (loss and optimizer), `compiled` (XLA with fallback and the
compiled-program cache), `fused` (in-memory runner), `streaming` (`tf.data` /
`tf.distribute` runner), `evaluation`, `checkpoints`, `callbacks` (Keras
callbacks, progress output), `errors`, and for stacks of members with their
own hyperparameters `member_optimizer` (`MemberAdam`) and `member_stopping`
(`MemberEarlyStopping`, `MemberEpochs`). The design is in docs/design.md,
section Training.
"""

from probnn.training.callbacks import ProgressLogger
from probnn.training.errors import CheckpointRestoreError, NonFiniteLossError
from probnn.training.fit import fit
from probnn.training.member_optimizer import MemberAdam
from probnn.training.member_stopping import MemberEarlyStopping, MemberEpochs

__all__ = [
    "CheckpointRestoreError",
    "MemberAdam",
    "MemberEarlyStopping",
    "MemberEpochs",
    "NonFiniteLossError",
    "ProgressLogger",
    "fit",
]
