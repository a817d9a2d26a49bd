"""A fast training loop for probnn models: `probnn.fit`.

Modules: `fit` (the public function and its epoch loop), `data` (argument
and data checks), `preparation` (building the model, resolving its loss and
optimizer), `objective` (the loss per example and `model.losses`), `step`
(the one `train_step` both runners compile), `batching` (buckets, padding,
member targets, signatures, per-epoch datasets), `compiled` (XLA with
fallback and the compiled-program cache), `runner` (the runner protocol and
the choice of runner), `fused` (in-memory runner), `streaming` (`tf.data` /
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
